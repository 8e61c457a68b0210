/*
 * sts — MTA-STS policy discovery and cache (see sts.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "deliver/sts.h"
#include "tls/tls.h"
#include "util/addr.h"
#include "util/log.h"
#include "util/str.h"

#define REPLY_MAX	(MTASTS_POLICY_MAX + 8192)	/* the policy plus an HTTP header */

/* ---- the cache (one per process: every worker's relay shares it) ---- */

struct cached {
	char domain[256];
	char id[MTASTS_ID_MAX + 1];
	time_t expires;
	struct mtasts_policy p;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cached *cache;
static size_t ncache;

/* Copy the unexpired policy of domain (and its id) out of the cache: 1 found, 0 not. */
static int
cache_get(const char *domain, struct mtasts_policy *p, char *id)
{
	int found = 0;
	time_t now = time(NULL);

	pthread_mutex_lock(&cache_mu);
	for (size_t i = 0; i < ncache; i++)
		if (strcasecmp(cache[i].domain, domain) == 0 && cache[i].expires > now) {
			*p = cache[i].p;
			memcpy(id, cache[i].id, sizeof(cache[i].id));
			found = 1;
			break;
		}
	pthread_mutex_unlock(&cache_mu);
	return found;
}

static void
cache_put(const char *domain, const char *id, const struct mtasts_policy *p)
{
	size_t slot = ncache;

	pthread_mutex_lock(&cache_mu);
	if (cache == NULL && (cache = calloc(STS_CACHE_MAX, sizeof(*cache))) == NULL) {
		pthread_mutex_unlock(&cache_mu);
		return;
	}
	for (size_t i = 0; i < ncache; i++)
		if (strcasecmp(cache[i].domain, domain) == 0) {
			slot = i;
			break;
		}
	if (slot == ncache) {
		if (ncache < STS_CACHE_MAX)
			ncache++;
		else {
			/* full: replace the entry that expires first */
			slot = 0;
			for (size_t i = 1; i < ncache; i++)
				if (cache[i].expires < cache[slot].expires)
					slot = i;
		}
	}
	str_copy(cache[slot].domain, sizeof(cache[slot].domain), domain);
	str_copy(cache[slot].id, sizeof(cache[slot].id), id);
	cache[slot].p = *p;
	cache[slot].expires = time(NULL) + (time_t)p->max_age;
	pthread_mutex_unlock(&cache_mu);
}

/* ---- queries ---- */

struct fetch {				/* shared by the loop and the thread */
	int refs;			/* atomic: the thread's and the loop's */
	int efd;
	struct tls_ctx *ctx;
	struct sockaddr_storage ss;
	socklen_t sl;
	char host[300];
	time_t deadline;
	/* results */
	int ok;
	char err[300];
	char *reply;
	size_t len;
};

struct sts_query {
	struct sts *s;
	struct sts_query *prev, *next;
	struct cfg *cfg;
	sts_cb cb;
	void *arg;
	char domain[256];
	char id[MTASTS_ID_MAX + 1];
	struct dns_query *dq;
	struct fetch *f;
	struct ev_io fio;
	int done_queued;
	char note[300];
	int have;			/* p is set */
	struct mtasts_policy p;
};

struct sts {
	struct ev_loop *loop;
	struct dns *dns;
	struct sts_query *active;
	struct sts_query *finished;	/* linked through next, callbacks to run */
	int efd;
	struct ev_io eio;
};

static void
fetch_unref(struct fetch *f)
{
	if (__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	close(f->efd);
	tls_ctx_unref(f->ctx);
	free(f->reply);
	free(f);
}

static void
q_unlink(struct sts_query *q)
{
	struct sts *s = q->s;

	if (q->prev)
		q->prev->next = q->next;
	else
		s->active = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

static void
q_free(struct sts_query *q)
{
	if (q->dq != NULL)
		dns_cancel(q->dq);
	if (q->f != NULL) {
		ev_io_stop(q->s->loop, &q->fio);
		fetch_unref(q->f);
	}
	cfg_unref(q->cfg);
	free(q);
}

/* Finish q: with the policy found, or else a cached one, or none. Runs its callback from
 * the loop soon. */
static void
q_finish(struct sts_query *q, const struct mtasts_policy *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
q_finish(struct sts_query *q, const struct mtasts_policy *p, const char *fmt, ...)
{
	struct sts *s = q->s;
	uint64_t one = 1;
	va_list ap;
	char why[250], id[MTASTS_ID_MAX + 1];

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (p != NULL) {
		q->p = *p;
		q->have = 1;
		snprintf(q->note, sizeof(q->note), "%s", why);
	} else if (cache_get(q->domain, &q->p, id)) {
		q->have = 1;
		snprintf(q->note, sizeof(q->note), "%s; using the cached policy id %s", why, id);
	} else
		snprintf(q->note, sizeof(q->note), "%s", why);
	q_unlink(q);
	q->next = s->finished;
	s->finished = q;
	q->done_queued = 1;
	if (write(s->efd, &one, sizeof(one)) < 0) {
		/* cannot overflow */
	}
}

static void *
fetch_thread(void *arg)
{
	struct fetch *f = arg;
	uint64_t one = 1;

	if ((f->reply = malloc(REPLY_MAX + 1)) == NULL)
		snprintf(f->err, sizeof(f->err), "out of memory");
	else
		f->ok = tls_https_fetch(f->ctx, (struct sockaddr *)&f->ss, f->sl, f->host,
		    "/.well-known/mta-sts.txt", f->deadline, f->reply, REPLY_MAX, &f->len, f->err,
		    sizeof(f->err)) == 0;
	if (write(f->efd, &one, sizeof(one)) < 0) {
		/* cannot overflow */
	}
	fetch_unref(f);
	return NULL;
}

/* The HTTP reply: 200, text/plain, then the policy (RFC 8461 §3.3). */
static void
fetch_cb(struct ev_io *io, uint32_t events)
{
	struct sts_query *q = io->arg;
	struct fetch *f = q->f;
	struct mtasts_policy p;
	char why[200];
	const char *body, *ct;
	size_t hl;

	ev_io_stop(q->s->loop, &q->fio);
	q->f = NULL;
	if (!f->ok) {
		q_finish(q, NULL, "MTA-STS policy fetch from %s failed: %s", f->host, f->err);
		goto out;
	}
	f->reply[f->len] = '\0';
	if (f->len < 12 || strncmp(f->reply, "HTTP/1.", 7) != 0 || strncmp(f->reply + 8, " 200",
	    4) != 0) {
		q_finish(q, NULL, "MTA-STS policy fetch from %s: the answer is not \"200 OK\"",
		    f->host);
		goto out;
	}
	body = strstr(f->reply, "\r\n\r\n");
	if (body == NULL) {
		q_finish(q, NULL, "MTA-STS policy fetch from %s: no end of the HTTP header",
		    f->host);
		goto out;
	}
	hl = (size_t)(body - f->reply);
	body += 4;
	ct = strcasestr(f->reply, "\r\nContent-Type:");
	if (ct == NULL || ct > f->reply + hl || strncasecmp(ct + 15 + strspn(ct + 15, " \t"),
	    "text/plain", 10) != 0) {
		q_finish(q, NULL, "MTA-STS policy fetch from %s: the media type is not text/plain",
		    f->host);
		goto out;
	}
	if (mtasts_policy_parse(body, f->len - (size_t)(body - f->reply), &p, why,
	    sizeof(why)) < 0) {
		q_finish(q, NULL, "MTA-STS policy from %s: %s", f->host, why);
		goto out;
	}
	cache_put(q->domain, q->id, &p);
	q_finish(q, &p, "MTA-STS policy id %s fetched from %s", q->id, f->host);
out:
	fetch_unref(f);
}

/* mta-sts.DOMAIN resolved: start the fetch thread. */
static void
host_done(void *arg, const struct dns_result *res)
{
	struct sts_query *q = arg;
	const struct conf *cf = &q->cfg->conf;
	struct fetch *f;
	pthread_t th;
	pthread_attr_t at;

	q->dq = NULL;
	if (res->status != DNS_OK || res->nhosts == 0 || res->hosts[0].naddrs == 0) {
		q_finish(q, NULL, "MTA-STS policy host mta-sts.%s: %s", q->domain, res->why);
		return;
	}
	if (q->cfg->client_verify == NULL || (f = calloc(1, sizeof(*f))) == NULL) {
		q_finish(q, NULL, "MTA-STS: out of memory");
		return;
	}
	f->refs = 2;
	f->ctx = q->cfg->client_verify;
	tls_ctx_ref(f->ctx);
	snprintf(f->host, sizeof(f->host), "mta-sts.%s", q->domain);
	f->sl = netaddr_to_sockaddr(&res->hosts[0].addrs[0], cf->mta_sts_port, &f->ss);
	f->deadline = time(NULL) + STS_FETCH_SECONDS;
	if ((f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		tls_ctx_unref(f->ctx);
		free(f);
		q_finish(q, NULL, "MTA-STS: eventfd: %s", strerror(errno));
		return;
	}
	q->f = f;
	if (ev_io_start(q->s->loop, &q->fio, f->efd, EPOLLIN, fetch_cb, q) < 0) {
		q->f = NULL;
		f->refs = 1;
		fetch_unref(f);
		q_finish(q, NULL, "MTA-STS: cannot watch the fetch");
		return;
	}
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &at, fetch_thread, f) != 0) {
		pthread_attr_destroy(&at);
		ev_io_stop(q->s->loop, &q->fio);
		q->f = NULL;
		f->refs = 1;
		fetch_unref(f);
		q_finish(q, NULL, "MTA-STS: cannot start the fetch thread");
		return;
	}
	pthread_attr_destroy(&at);
}

/* _mta-sts.DOMAIN TXT. */
static void
txt_done(void *arg, const struct dns_result *res)
{
	struct sts_query *q = arg;
	struct mtasts_policy p;
	char why[200], id[MTASTS_ID_MAX + 1], cid[MTASTS_ID_MAX + 1];
	int found = 0;

	q->dq = NULL;
	if (res->status == DNS_TEMPFAIL) {
		q_finish(q, NULL, "MTA-STS TXT lookup failed: %s", res->why);
		return;
	}
	for (size_t i = 0; res->status == DNS_OK && i < res->ntxt; i++) {
		int r = mtasts_txt_parse(res->txt[i], strlen(res->txt[i]), id, why, sizeof(why));
		if (r < 0) {
			q_finish(q, NULL, "_mta-sts.%s: %s", q->domain, why);
			return;
		}
		if (r == 1) {
			if (found) {
				/* RFC 8461 §3.1: more than one record means none */
				q_finish(q, NULL, "_mta-sts.%s has more than one STSv1 record",
				    q->domain);
				return;
			}
			found = 1;
			memcpy(q->id, id, sizeof(q->id));
		}
	}
	if (!found) {
		q_finish(q, NULL, "no MTA-STS record at _mta-sts.%s", q->domain);
		return;
	}
	if (cache_get(q->domain, &p, cid) && strcmp(cid, q->id) == 0) {
		q_finish(q, &p, "MTA-STS policy id %s (cached)", q->id);
		return;
	}
	{
		char host[300];
		snprintf(host, sizeof(host), "mta-sts.%s", q->domain);
		if ((q->dq = dns_resolve_host(q->s->dns, host, host_done, q)) == NULL)
			q_finish(q, NULL, "MTA-STS: cannot look up %s", host);
	}
}

static void
finished_cb(struct ev_io *io, uint32_t events)
{
	struct sts *s = io->arg;
	uint64_t v;

	if (read(s->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	while (s->finished != NULL) {
		struct sts_query *q = s->finished;
		s->finished = q->next;
		q->cb(q->arg, q->have ? &q->p : NULL, q->note);
		q_free(q);
	}
}

struct sts *
sts_new(struct ev_loop *loop, struct dns *dns)
{
	struct sts *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->loop = loop;
	s->dns = dns;
	if ((s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    ev_io_start(loop, &s->eio, s->efd, EPOLLIN, finished_cb, s) < 0) {
		if (s->efd >= 0)
			close(s->efd);
		free(s);
		return NULL;
	}
	return s;
}

void
sts_free(struct sts *s)
{
	if (s == NULL)
		return;
	while (s->active != NULL) {
		struct sts_query *q = s->active;
		q_unlink(q);
		q_free(q);
	}
	while (s->finished != NULL) {
		struct sts_query *q = s->finished;
		s->finished = q->next;
		q_free(q);
	}
	ev_io_stop(s->loop, &s->eio);
	close(s->efd);
	free(s);
}

struct sts_query *
sts_get(struct sts *s, struct cfg *cfg, const char *domain, sts_cb cb, void *arg)
{
	struct sts_query *q;
	char name[300];

	if (s == NULL || strlen(domain) >= sizeof(q->domain) || (q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->s = s;
	q->cfg = cfg_ref(cfg);
	q->cb = cb;
	q->arg = arg;
	str_copy(q->domain, sizeof(q->domain), domain);
	snprintf(name, sizeof(name), "_mta-sts.%s", domain);
	if ((q->dq = dns_resolve_txt(s->dns, name, txt_done, q)) == NULL) {
		cfg_unref(q->cfg);
		free(q);
		return NULL;
	}
	q->next = s->active;
	if (s->active)
		s->active->prev = q;
	s->active = q;
	return q;
}

void
sts_cancel(struct sts_query *q)
{
	if (q == NULL)
		return;
	if (q->done_queued) {
		/* its callback is queued: take it off the finished list */
		struct sts_query **pp = &q->s->finished;
		while (*pp != NULL && *pp != q)
			pp = &(*pp)->next;
		if (*pp == q)
			*pp = q->next;
	} else
		q_unlink(q);
	q_free(q);
}
