/*
 * dns — MX and A/AAAA lookups with c-ares on our ev loop; see dns.h for the contract.
 *
 * Shape: every c-ares socket gets a struct dns_sock (an ev_io) through ARES_OPT_SOCK_STATE_CB;
 * socket events call ares_process_fd, dns_tick calls it with no fds for the timeouts. A
 * query counts its outstanding c-ares callbacks in `pending`; when the last one arrives the
 * result is built and the query is queued on the done list, which is drained (user callbacks
 * run) only from our own loop entry points, never from inside c-ares or dns_resolve_*.
 * Closed socket watchers go to a graveyard freed by dns_tick, because the loop may still hold
 * an event for them in the batch it is dispatching.
 */
#include <arpa/nameser.h>
#include <ares.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "deliver/dns.h"
#include "util/metrics.h"

enum { Q_MAIL, Q_HOST, Q_TLSA, Q_TXT };
/* state of one address family of one host */
enum { LK_PENDING, LK_OK, LK_NX, LK_NODATA, LK_TEMP };

struct dns_sock {
	struct ev_io io;	/* io.arg is the dns_sock */
	struct dns *d;
	int fd;
	int dead;		/* c-ares closed it; waiting in the graveyard */
	struct dns_sock *next;
};

/* One ares_getaddrinfo call: the argument c-ares hands back. */
struct dns_lookup {
	struct dns_query *q;
	unsigned host;
	int family;
};

struct dns_hoststate {
	int st[2];		/* per family, [0] AF_INET, [1] AF_INET6: LK_* */
	int err[2];		/* ares status when LK_TEMP */
	struct netaddr a[2][DNS_MAX_ADDRS];
	size_t n[2];
};

struct dns_query {
	struct dns *d;
	dns_cb cb;
	void *arg;
	int mode;		/* Q_MAIL, Q_HOST */
	int cancelled;		/* no callback; free when pending drops to 0 */
	int queued;		/* on the done list */
	int delivering;		/* its callback is running */
	int pending;		/* outstanding c-ares callbacks (+1 while starting lookups) */
	struct dns_query *prev, *next;	/* d->active */
	struct dns_query *dnext;	/* d->done */
	char name[256];
	int implicit;
	size_t nhosts;
	struct dns_host hosts[DNS_MAX_MX];	/* candidates, in order */
	struct dns_hoststate hs[DNS_MAX_MX];
	struct dns_lookup lk[DNS_MAX_MX][2];
	struct netaddr addrs[DNS_MAX_MX][DNS_MAX_ADDRS];
	struct dns_host out[DNS_MAX_MX];
	struct dns_result res;
	struct tlsa_answer *tlsa;	/* Q_TLSA */
	char txt[DNS_TXT_RRS][DNS_TXT_MAX + 1];	/* Q_TXT */
};

struct dns {
	struct ev_loop *loop;
	ares_channel ch;
	int ch_ok;
	struct dns_sock *socks;		/* live */
	struct dns_sock *grave;		/* closed, freed by dns_tick */
	struct dns_query *active;	/* every query not yet freed */
	struct dns_query *done, *done_tail;
	int wakefd;
	struct ev_io wake_io;
	int wake_armed;
	int depth;		/* inside one of our loop entry points */
	int free_pending;	/* dns_free was called at depth > 0 */
	uint64_t rng;
};

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_status = ARES_SUCCESS;

/* ares_library_init, once per process. */
static void
ares_init_once(void)
{
	ares_init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/* xorshift64*: shuffling equal-preference MX hosts needs no crypto. */
static unsigned
rng_next(void *arg)
{
	uint64_t *s = arg;

	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (unsigned)((*s * 2685821657736338717ULL) >> 32);
}

/* ---------------------------------------------------------------- sorting */

struct mx_key {
	unsigned pref;
	size_t idx;
};

/* qsort order: preference, then input position (a stable sort). */
static int
mx_key_cmp(const void *a, const void *b)
{
	const struct mx_key *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Swap two hosts in place. */
static void
host_swap(struct dns_host *a, struct dns_host *b)
{
	struct dns_host t = *a;

	*a = *b;
	*b = t;
}

void
dns_sort_mx(struct dns_host *h, size_t n, unsigned (*rnd)(void *), void *rarg)
{
	struct mx_key *k;
	struct dns_host *tmp;
	size_t i, j;

	if (n < 2)
		return;
	k = malloc(n * sizeof(*k));
	tmp = malloc(n * sizeof(*tmp));
	if (k != NULL && tmp != NULL) {
		for (i = 0; i < n; i++) {
			k[i].pref = h[i].pref;
			k[i].idx = i;
		}
		qsort(k, n, sizeof(*k), mx_key_cmp);
		for (i = 0; i < n; i++)
			tmp[i] = h[k[i].idx];
		memcpy(h, tmp, n * sizeof(*h));
	} else {
		/* out of memory: a stable insertion sort in place */
		for (i = 1; i < n; i++)
			for (j = i; j > 0 && h[j - 1].pref > h[j].pref; j--)
				host_swap(&h[j - 1], &h[j]);
	}
	free(k);
	free(tmp);
	if (rnd == NULL)
		return;
	/* Fisher-Yates within each run of equal preference */
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && h[j].pref == h[i].pref; j++)
			;
		for (size_t m = j - 1; m > i; m--) {
			size_t r = i + rnd(rarg) % (m - i + 1);

			if (r != m)
				host_swap(&h[r], &h[m]);
		}
	}
}

/* RFC 7505: the MX set consists of "." targets only (normally a single "0 ."). */
static int
dns_is_null_mx(const struct ares_mx_reply *mx)
{
	int n = 0;

	for (; mx != NULL; mx = mx->next, n++)
		if (mx->host == NULL || !(mx->host[0] == '\0' || strcmp(mx->host, ".") == 0))
			return 0;
	return n > 0;
}

/* ---------------------------------------------------------------- helpers */

/* A short name for a c-ares failure, for res.why. */
static const char *
ares_errname(int st)
{
	switch (st) {
	case ARES_ESERVFAIL:
		return "SERVFAIL";
	case ARES_ETIMEOUT:
		return "timeout";
	case ARES_EREFUSED:
		return "REFUSED";
	case ARES_ECONNREFUSED:
		/* c-ares 1.18 drops SERVFAIL/REFUSED answers, tries the other servers and then
		 * reports this */
		return "no usable answer from any DNS server (SERVFAIL, REFUSED or unreachable)";
	case ARES_ENOTIMP:
		return "NOTIMP";
	case ARES_EFORMERR:
		return "FORMERR";
	case ARES_EBADRESP:
		return "malformed DNS response";
	case ARES_ENOMEM:
		return "out of memory";
	case ARES_EDESTRUCTION:
	case ARES_ECANCELLED:
		return "shutting down";
	default:
		return ares_strerror(st);
	}
}

/* printf into res.why. */
__attribute__((format(printf, 2, 3)))
static void
set_why(struct dns_query *q, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->res.why, sizeof(q->res.why), fmt, ap);
	va_end(ap);
}

/* Copy a host name without a trailing dot; -1 when empty or too long. */
static int
copy_name(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n > 0 && src[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || n >= len)
		return -1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

/* Write to the eventfd so the loop drains the done list soon. */
static void
wake(struct dns *d)
{
	uint64_t one = 1;

	if (d->wake_armed)
		return;
	if (write(d->wakefd, &one, sizeof(one)) == (ssize_t)sizeof(one))
		d->wake_armed = 1;
}

/* Unlink and free a query. */
static void
query_free(struct dns_query *q)
{
	struct dns *d = q->d;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		d->active = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	free(q->tlsa);
	free(q);
}

/* Free a cancelled query once c-ares no longer references it and no one delivers it. */
static void
query_maybe_free(struct dns_query *q)
{
	if (q->cancelled && q->pending == 0 && !q->queued && !q->delivering)
		query_free(q);
}

/* The result is ready: queue it for delivery from the loop. */
static void
query_complete(struct dns_query *q, enum dns_status st)
{
	struct dns *d = q->d;
	static const enum metric fails[] = {
		[DNS_NXDOMAIN] = M_DNS_FAIL_NXDOMAIN, [DNS_NOHOSTS] = M_DNS_FAIL_NOHOSTS,
		[DNS_NULLMX] = M_DNS_FAIL_NULLMX, [DNS_TEMPFAIL] = M_DNS_FAIL_TEMPFAIL,
	};

	metrics_inc(M_DNS_LOOKUPS);
	if (st != DNS_OK && (size_t)st < sizeof(fails) / sizeof(fails[0]))
		metrics_inc(fails[st]);
	q->res.status = st;
	q->queued = 1;
	q->dnext = NULL;
	if (d->done_tail != NULL)
		d->done_tail->dnext = q;
	else
		d->done = q;
	d->done_tail = q;
	/* at depth > 0 the entry point we are in drains after c-ares returns */
	if (d->depth == 0)
		wake(d);
}

/* Run the callbacks of finished queries. Callbacks may queue more; those run too. */
static void
drain(struct dns *d)
{
	struct dns_query *q;

	while ((q = d->done) != NULL) {
		d->done = q->dnext;
		if (d->done == NULL)
			d->done_tail = NULL;
		q->queued = 0;
		if (!q->cancelled) {
			q->delivering = 1;
			q->cb(q->arg, &q->res);
			q->delivering = 0;
		}
		query_free(q);
	}
}

/* ---------------------------------------------------------------- result assembly */

/* Merge the per-family addresses of host i into q->addrs[i] (IPv4 first); returns the
 * host's overall LK_* state. */
static int
host_merge(struct dns_query *q, unsigned i, size_t *naddrs)
{
	struct dns_hoststate *h = &q->hs[i];
	size_t n = 0;

	for (int f = 0; f < 2; f++)
		for (size_t k = 0; k < h->n[f] && n < DNS_MAX_ADDRS; k++) {
			size_t m;

			for (m = 0; m < n; m++)
				if (netaddr_equal(&q->addrs[i][m], &h->a[f][k]))
					break;
			if (m == n)
				q->addrs[i][n++] = h->a[f][k];
		}
	*naddrs = n;
	if (n > 0)
		return LK_OK;
	if (h->st[0] == LK_TEMP || h->st[1] == LK_TEMP)
		return LK_TEMP;
	if (h->st[0] == LK_NX && h->st[1] == LK_NX)
		return LK_NX;
	return LK_NODATA;
}

/* The c-ares status of host i's failed family, for res.why. */
static int
host_err(const struct dns_query *q, unsigned i)
{
	return q->hs[i].st[0] == LK_TEMP ? q->hs[i].err[0] : q->hs[i].err[1];
}

/* All address lookups are in: classify and queue the result. */
static void
query_finish_addrs(struct dns_query *q)
{
	size_t nout = 0;
	int first_temp = -1;
	int state = LK_NODATA;

	for (unsigned i = 0; i < q->nhosts; i++) {
		size_t na;
		int st = host_merge(q, i, &na);

		if (i == 0)
			state = st;
		if (st == LK_OK) {
			q->out[nout] = q->hosts[i];
			q->out[nout].addrs = q->addrs[i];
			q->out[nout].naddrs = na;
			nout++;
		} else if (st == LK_TEMP && first_temp < 0)
			first_temp = (int)i;
	}
	q->res.hosts = q->out;
	q->res.nhosts = nout;
	q->res.implicit_mx = q->implicit;
	if (nout > 0) {
		set_why(q, "%s: ok", q->name);
		query_complete(q, DNS_OK);
		return;
	}
	if (q->mode == Q_HOST || q->implicit) {
		const char *what = q->mode == Q_HOST ? "" : "no MX and ";

		if (state == LK_TEMP) {
			set_why(q, "%s: %sA/AAAA lookup failed: %s", q->name, what,
			    ares_errname(host_err(q, 0)));
			query_complete(q, DNS_TEMPFAIL);
		} else if (state == LK_NX && q->mode == Q_HOST) {
			set_why(q, "%s: host not found (NXDOMAIN)", q->name);
			query_complete(q, DNS_NXDOMAIN);
		} else {
			set_why(q, "%s: %sno A/AAAA records", q->name, what);
			query_complete(q, DNS_NOHOSTS);
		}
		return;
	}
	if (first_temp >= 0)
		set_why(q, "%s: no MX host has an address (%s: %s)", q->name,
		    q->hosts[first_temp].name, ares_errname(host_err(q, (unsigned)first_temp)));
	else
		set_why(q, "%s: no MX host has an address", q->name);
	query_complete(q, DNS_TEMPFAIL);
}

/* ---------------------------------------------------------------- c-ares callbacks */

/* One family of one host answered. */
static void
ai_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_lookup *lk = arg;
	struct dns_query *q = lk->q;
	int f = lk->family == AF_INET6;
	struct dns_hoststate *h = &q->hs[lk->host];

	q->pending--;
	if (q->cancelled) {
		ares_freeaddrinfo(res);
		query_maybe_free(q);
		return;
	}
	switch (status) {
	case ARES_SUCCESS:
		for (struct ares_addrinfo_node *n = res ? res->nodes : NULL; n != NULL;
		    n = n->ai_next) {
			struct netaddr a;

			if (h->n[f] >= DNS_MAX_ADDRS)
				break;
			if (netaddr_from_sockaddr(n->ai_addr, &a, NULL) == 0)
				h->a[f][h->n[f]++] = a;
		}
		h->st[f] = h->n[f] > 0 ? LK_OK : LK_NODATA;
		break;
	case ARES_ENOTFOUND:
		h->st[f] = LK_NX;
		break;
	case ARES_ENODATA:
		h->st[f] = LK_NODATA;
		break;
	default:
		h->st[f] = LK_TEMP;
		h->err[f] = status;
		break;
	}
	ares_freeaddrinfo(res);
	if (q->pending == 0)
		query_finish_addrs(q);
}

/* Start the A and AAAA lookups of host i (or fill in a literal / localhost at once). */
static void
host_lookup(struct dns_query *q, unsigned i)
{
	struct dns_hoststate *h = &q->hs[i];
	const char *name = q->hosts[i].name;
	struct netaddr a;

	if (netaddr_parse(name, &a) == 0) {
		int f = a.family == AF_INET6;

		h->a[f][0] = a;
		h->n[f] = 1;
		h->st[0] = h->st[1] = LK_OK;
		return;
	}
	if (strcasecmp(name, "localhost") == 0) {
		netaddr_parse("127.0.0.1", &h->a[0][0]);
		netaddr_parse("::1", &h->a[1][0]);
		h->n[0] = h->n[1] = 1;
		h->st[0] = h->st[1] = LK_OK;
		return;
	}
	for (int f = 0; f < 2; f++) {
		struct ares_addrinfo_hints hints;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = f ? AF_INET6 : AF_INET;
		hints.ai_flags = ARES_AI_NOSORT;
		q->lk[i][f].q = q;
		q->lk[i][f].host = i;
		q->lk[i][f].family = hints.ai_family;
		h->st[f] = LK_PENDING;
		q->pending++;
		ares_getaddrinfo(q->d->ch, name, NULL, &hints, ai_cb, &q->lk[i][f]);
	}
}

/* Look up the addresses of every candidate host; the last answer finishes the query. */
static void
query_lookup_hosts(struct dns_query *q)
{
	q->pending++;		/* callbacks may run synchronously: hold the count */
	for (unsigned i = 0; i < q->nhosts; i++)
		host_lookup(q, i);
	q->pending--;
	if (q->pending == 0)
		query_finish_addrs(q);
}

/* MX records → the sorted candidate list (at most DNS_MAX_MX, no duplicates). */
static void
query_take_mx(struct dns_query *q, const struct ares_mx_reply *mx)
{
	size_t n = 0, k = 0;
	struct dns_host *all;

	for (const struct ares_mx_reply *m = mx; m != NULL; m = m->next)
		n++;
	all = calloc(n ? n : 1, sizeof(*all));
	if (all == NULL) {
		set_why(q, "%s: out of memory", q->name);
		query_complete(q, DNS_TEMPFAIL);
		return;
	}
	for (const struct ares_mx_reply *m = mx; m != NULL; m = m->next) {
		/* a "." among real MX records is not a null MX (RFC 7505 §3): ignore it */
		if (m->host == NULL || copy_name(all[k].name, sizeof(all[k].name), m->host) < 0)
			continue;
		all[k].pref = m->priority;
		k++;
	}
	dns_sort_mx(all, k, rng_next, &q->d->rng);
	q->nhosts = 0;
	for (size_t i = 0; i < k && q->nhosts < DNS_MAX_MX; i++) {
		size_t j;

		for (j = 0; j < q->nhosts; j++)
			if (strcasecmp(q->hosts[j].name, all[i].name) == 0)
				break;
		if (j == q->nhosts)
			q->hosts[q->nhosts++] = all[i];
	}
	free(all);
	if (q->nhosts == 0) {
		set_why(q, "%s: no usable MX host name", q->name);
		query_complete(q, DNS_TEMPFAIL);
		return;
	}
	query_lookup_hosts(q);
}

/* No MX records: the domain itself is the only host (RFC 5321 §5.1). */
static void
query_implicit(struct dns_query *q)
{
	q->implicit = 1;
	q->nhosts = 1;
	snprintf(q->hosts[0].name, sizeof(q->hosts[0].name), "%s", q->name);
	q->hosts[0].pref = 0;
	query_lookup_hosts(q);
}

/* The MX answer. */
static void
mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct ares_mx_reply *mx = NULL;
	int r;

	q->pending--;
	if (q->cancelled) {
		query_maybe_free(q);
		return;
	}
	switch (status) {
	case ARES_SUCCESS:
		r = ares_parse_mx_reply(abuf, alen, &mx);
		if (r == ARES_ENODATA) {
			query_implicit(q);	/* e.g. only a CNAME in the answer */
		} else if (r != ARES_SUCCESS) {
			set_why(q, "%s: MX: %s", q->name, ares_errname(r));
			query_complete(q, DNS_TEMPFAIL);
		} else if (dns_is_null_mx(mx)) {
			set_why(q, "%s: null MX (the domain accepts no mail, RFC 7505)", q->name);
			query_complete(q, DNS_NULLMX);
		} else
			query_take_mx(q, mx);
		if (mx != NULL)
			ares_free_data(mx);
		break;
	case ARES_ENODATA:
		query_implicit(q);
		break;
	case ARES_ENOTFOUND:
		set_why(q, "%s: domain does not exist (NXDOMAIN)", q->name);
		query_complete(q, DNS_NXDOMAIN);
		break;
	case ARES_EBADNAME:
		set_why(q, "%s: invalid domain name", q->name);
		query_complete(q, DNS_NXDOMAIN);
		break;
	default:
		set_why(q, "%s: %s", q->name, ares_errname(status));
		query_complete(q, DNS_TEMPFAIL);
		break;
	}
}

/* ---------------------------------------------------------------- loop integration */

static void dns_destroy(struct dns *d);

/* Leave an entry point; the outermost one carries out a dns_free made from a callback. */
static void
leave(struct dns *d)
{
	if (--d->depth == 0 && d->free_pending)
		dns_destroy(d);
}

/* A c-ares socket is ready. */
static void
sock_io_cb(struct ev_io *io, uint32_t events)
{
	struct dns_sock *s = io->arg;
	struct dns *d = s->d;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
	uint32_t watched = s->io.events;

	if (s->dead)
		return;
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && (watched & EPOLLIN))
		rfd = s->fd;
	if ((events & EPOLLOUT) || ((events & (EPOLLERR | EPOLLHUP)) && (watched & EPOLLOUT)))
		wfd = s->fd;
	if (rfd == ARES_SOCKET_BAD && wfd == ARES_SOCKET_BAD)
		rfd = s->fd;	/* an error on an idle socket: let c-ares read it */
	d->depth++;
	ares_process_fd(d->ch, rfd, wfd);
	drain(d);
	leave(d);
}

/* c-ares opens, changes or closes a socket. */
static void
sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	struct dns_sock *s, **pp;
	uint32_t ev = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);

	for (pp = &d->socks; (s = *pp) != NULL; pp = &s->next)
		if (s->fd == fd)
			break;
	if (ev == 0) {
		if (s == NULL)
			return;
		*pp = s->next;
		ev_io_stop(d->loop, &s->io);
		s->dead = 1;
		s->next = d->grave;
		d->grave = s;
		return;
	}
	if (s != NULL) {
		ev_io_set(d->loop, &s->io, ev);
		return;
	}
	/* a new socket; if we cannot watch it, its queries time out through dns_tick */
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return;
	s->d = d;
	s->fd = fd;
	if (ev_io_start(d->loop, &s->io, fd, ev, sock_io_cb, s) < 0) {
		free(s);
		return;
	}
	s->next = d->socks;
	d->socks = s;
}

/* A query finished outside the loop: deliver it now. */
static void
wake_cb(struct ev_io *io, uint32_t events)
{
	struct dns *d = io->arg;
	uint64_t v;

	if (read(d->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	d->wake_armed = 0;
	d->depth++;
	drain(d);
	leave(d);
}

/* Free closed socket watchers (the current event batch cannot refer to them any more). */
static void
bury(struct dns *d)
{
	struct dns_sock *s;

	while ((s = d->grave) != NULL) {
		d->grave = s->next;
		free(s);
	}
}

void
dns_tick(struct dns *d)
{
	if (d == NULL || d->free_pending)
		return;
	d->depth++;
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	drain(d);
	if (d->depth == 1)
		bury(d);
	leave(d);
}

/* ---------------------------------------------------------------- life cycle */

/* Fill err. */
__attribute__((format(printf, 3, 4)))
static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Hand our server list to c-ares. */
static int
set_servers(struct dns *d, const struct hostport *servers, size_t n, char *err, size_t errlen)
{
	struct ares_addr_port_node *nodes;
	int r;

	if ((nodes = calloc(n, sizeof(*nodes))) == NULL) {
		set_err(err, errlen, "dns: out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct netaddr *a = &servers[i].addr;
		int port = servers[i].port ? servers[i].port : 53;

		nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
		nodes[i].family = a->family;
		if (a->family == AF_INET)
			memcpy(&nodes[i].addr.addr4, a->a, 4);
		else if (a->family == AF_INET6)
			memcpy(&nodes[i].addr.addr6, a->a, 16);
		else {
			free(nodes);
			set_err(err, errlen, "dns: server %zu: unsupported address family", i + 1);
			return -1;
		}
		nodes[i].udp_port = nodes[i].tcp_port = port;
	}
	r = ares_set_servers_ports(d->ch, nodes);
	free(nodes);
	if (r != ARES_SUCCESS) {
		set_err(err, errlen, "dns: setting servers: %s", ares_strerror(r));
		return -1;
	}
	return 0;
}

struct dns *
dns_new_opts(struct ev_loop *loop, const struct hostport *servers, size_t n,
    unsigned timeout_ms, unsigned tries, char *err, size_t errlen)
{
	static char lookups[] = "b";	/* DNS only, no /etc/hosts */
	struct ares_options o;
	struct dns *d;
	int r;

	pthread_once(&ares_once, ares_init_once);
	if (ares_init_status != ARES_SUCCESS) {
		set_err(err, errlen, "dns: ares_library_init: %s", ares_strerror(ares_init_status));
		return NULL;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		set_err(err, errlen, "dns: out of memory");
		return NULL;
	}
	d->loop = loop;
	d->wakefd = -1;
	if (getrandom(&d->rng, sizeof(d->rng), GRND_NONBLOCK) != (ssize_t)sizeof(d->rng))
		d->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (d->rng == 0)
		d->rng = 0x9e3779b97f4a7c15ULL;

	memset(&o, 0, sizeof(o));
	o.timeout = (int)(timeout_ms ? timeout_ms : DNS_TIMEOUT_MS);
	o.tries = (int)(tries ? tries : DNS_TRIES);
	o.sock_state_cb = sock_state_cb;
	o.sock_state_cb_data = d;
	o.domains = NULL;	/* no search list: mail domains are absolute */
	o.ndomains = 0;
	o.lookups = lookups;
	r = ares_init_options(&d->ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	    ARES_OPT_SOCK_STATE_CB | ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS);
	if (r != ARES_SUCCESS) {
		set_err(err, errlen, "dns: ares_init_options: %s", ares_strerror(r));
		free(d);
		return NULL;
	}
	d->ch_ok = 1;
	if (n > 0 && set_servers(d, servers, n, err, errlen) < 0)
		goto fail;
	if ((d->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		set_err(err, errlen, "dns: eventfd: %s", strerror(errno));
		goto fail;
	}
	if (ev_io_start(loop, &d->wake_io, d->wakefd, EPOLLIN, wake_cb, d) < 0) {
		set_err(err, errlen, "dns: watching the eventfd: %s", strerror(errno));
		close(d->wakefd);
		d->wakefd = -1;
		goto fail;
	}
	return d;
fail:
	dns_destroy(d);
	return NULL;
}

struct dns *
dns_new(struct ev_loop *loop, const struct hostport *servers, size_t n, char *err,
    size_t errlen)
{
	return dns_new_opts(loop, servers, n, DNS_TIMEOUT_MS, DNS_TRIES, err, errlen);
}

/* Tear down now: queries cancelled without callbacks, c-ares destroyed, watchers freed. */
static void
dns_destroy(struct dns *d)
{
	struct dns_query *q;
	struct dns_sock *s;

	for (q = d->active; q != NULL; q = q->next)
		q->cancelled = 1;
	while ((q = d->done) != NULL) {
		d->done = q->dnext;
		query_free(q);
	}
	d->done_tail = NULL;
	if (d->ch_ok)
		ares_destroy(d->ch);	/* pending queries call back with EDESTRUCTION */
	while ((q = d->active) != NULL)	/* none expected */
		query_free(q);
	while ((s = d->socks) != NULL) {
		d->socks = s->next;
		ev_io_stop(d->loop, &s->io);
		free(s);
	}
	bury(d);
	if (d->wakefd >= 0) {
		ev_io_stop(d->loop, &d->wake_io);
		close(d->wakefd);
	}
	free(d);
}

void
dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	for (struct dns_query *q = d->active; q != NULL; q = q->next)
		q->cancelled = 1;
	if (d->depth > 0) {
		d->free_pending = 1;
		return;
	}
	dns_destroy(d);
}

/* ---------------------------------------------------------------- queries */

/* A new query in d->active, or NULL (errno set). */
static struct dns_query *
query_new(struct dns *d, const char *name, int mode, dns_cb cb, void *arg)
{
	struct dns_query *q;

	if (d == NULL || name == NULL || cb == NULL || d->free_pending) {
		errno = EINVAL;
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	if (copy_name(q->name, sizeof(q->name), name) < 0) {
		free(q);
		errno = EINVAL;
		return NULL;
	}
	q->d = d;
	q->cb = cb;
	q->arg = arg;
	q->mode = mode;
	q->next = d->active;
	if (d->active != NULL)
		d->active->prev = q;
	d->active = q;
	return q;
}

struct dns_query *
dns_resolve_mail(struct dns *d, const char *domain, dns_cb cb, void *arg)
{
	struct dns_query *q = query_new(d, domain, Q_MAIL, cb, arg);

	if (q == NULL)
		return NULL;
	q->pending++;
	ares_query(d->ch, q->name, ns_c_in, ns_t_mx, mx_cb, q);	/* may call back at once */
	return q;
}

struct dns_query *
dns_resolve_host(struct dns *d, const char *host, dns_cb cb, void *arg)
{
	struct dns_query *q = query_new(d, host, Q_HOST, cb, arg);

	if (q == NULL)
		return NULL;
	q->nhosts = 1;
	snprintf(q->hosts[0].name, sizeof(q->hosts[0].name), "%s", q->name);
	query_lookup_hosts(q);	/* may finish at once (literal, immediate failure) */
	return q;
}

/* The raw TLSA answer. */
static void
tlsa_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	char why[120];

	q->pending--;
	if (q->cancelled) {
		query_maybe_free(q);
		return;
	}
	if (status != ARES_SUCCESS || abuf == NULL) {
		set_why(q, "%s: TLSA: %s", q->name, ares_errname(status));
		query_complete(q, DNS_TEMPFAIL);
		return;
	}
	if (tlsa_parse(abuf, (size_t)alen, q->tlsa, why, sizeof(why)) < 0) {
		set_why(q, "%s: TLSA: %s", q->name, why);
		query_complete(q, DNS_TEMPFAIL);
		return;
	}
	q->res.tlsa = q->tlsa;
	switch (q->tlsa->rcode) {
	case 0:
		query_complete(q, DNS_OK);
		break;
	case 3:
		set_why(q, "%s: no such name (NXDOMAIN)", q->name);
		query_complete(q, DNS_NXDOMAIN);
		break;
	default:
		q->res.tlsa = NULL;
		set_why(q, "%s: TLSA: DNS error code %d", q->name, q->tlsa->rcode);
		query_complete(q, DNS_TEMPFAIL);
		break;
	}
}

struct dns_query *
dns_resolve_tlsa(struct dns *d, const char *name, dns_cb cb, void *arg)
{
	struct dns_query *q = query_new(d, name, Q_TLSA, cb, arg);
	unsigned char *buf = NULL;
	int len = 0;

	if (q == NULL)
		return NULL;
	if ((q->tlsa = malloc(sizeof(*q->tlsa))) == NULL) {
		q->cancelled = 1;
		query_maybe_free(q);
		errno = ENOMEM;
		return NULL;
	}
	if (ares_create_query(q->name, ns_c_in, 52 /* TLSA */, 0, 1, &buf, &len, 0) !=
	    ARES_SUCCESS || len < 12) {
		if (buf != NULL)
			ares_free_string(buf);
		q->cancelled = 1;
		query_maybe_free(q);
		errno = EINVAL;
		return NULL;
	}
	buf[3] |= 0x20;		/* AD: "tell me whether you validated this" */
	q->pending++;
	ares_send(d->ch, buf, len, tlsa_cb, q);	/* may call back at once */
	ares_free_string(buf);
	return q;
}

/* The TXT answer: each record's strings joined. */
static void
txt_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct ares_txt_ext *txt = NULL;
	size_t n = 0, cur = 0;
	int r, bad = 0;

	q->pending--;
	if (q->cancelled) {
		query_maybe_free(q);
		return;
	}
	q->res.txt = q->txt;
	q->res.ntxt = 0;
	if (status == ARES_ENODATA) {
		query_complete(q, DNS_OK);
		return;
	}
	if (status == ARES_ENOTFOUND) {
		set_why(q, "%s: no such name (NXDOMAIN)", q->name);
		query_complete(q, DNS_NXDOMAIN);
		return;
	}
	if (status != ARES_SUCCESS) {
		set_why(q, "%s: TXT: %s", q->name, ares_errname(status));
		query_complete(q, DNS_TEMPFAIL);
		return;
	}
	r = ares_parse_txt_reply_ext(abuf, alen, &txt);
	if (r == ARES_ENODATA) {
		query_complete(q, DNS_OK);
		return;
	}
	if (r != ARES_SUCCESS) {
		set_why(q, "%s: TXT: %s", q->name, ares_errname(r));
		query_complete(q, DNS_TEMPFAIL);
		return;
	}
	for (struct ares_txt_ext *t = txt; t != NULL; t = t->next) {
		if (t->record_start) {
			if (n > 0 && bad)
				n--;	/* the record before was too long: dropped whole */
			if (n >= DNS_TXT_RRS)
				break;
			q->txt[n++][0] = '\0';
			cur = 0;
			bad = 0;
		}
		if (n == 0 || bad)
			continue;
		if (cur + t->length > DNS_TXT_MAX) {
			bad = 1;
			continue;
		}
		memcpy(q->txt[n - 1] + cur, t->txt, t->length);
		cur += t->length;
		q->txt[n - 1][cur] = '\0';
	}
	if (bad && n > 0)
		n--;
	q->res.ntxt = n;
	ares_free_data(txt);
	query_complete(q, DNS_OK);
}

struct dns_query *
dns_resolve_txt(struct dns *d, const char *name, dns_cb cb, void *arg)
{
	struct dns_query *q = query_new(d, name, Q_TXT, cb, arg);

	if (q == NULL)
		return NULL;
	q->pending++;
	ares_query(d->ch, q->name, ns_c_in, ns_t_txt, txt_cb, q);	/* may call back at once */
	return q;
}

void
dns_cancel(struct dns_query *q)
{
	if (q == NULL)
		return;
	q->cancelled = 1;
	query_maybe_free(q);
}
