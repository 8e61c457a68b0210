/*
 * dnsq — blocking DNS with a deadline, for the authentication checks. See dnsq.h.
 */
#include "mailauth/dnsq.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct dnsq {
	ares_channel ch;
	uint64_t deadline;	/* monotonic ms */
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int lib_status = -1;

static void
lib_init(void)
{
	lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

unsigned
dnsq_left_ms(const struct dnsq *q)
{
	uint64_t n = now_ms();

	return n >= q->deadline ? 0 : (unsigned)(q->deadline - n);
}

struct dnsq *
dnsq_new(const struct hostport *servers, size_t n, unsigned budget_ms, char *err, size_t errlen)
{
	static char lookups[] = "b";
	struct ares_options o;
	struct dnsq *q;
	int r;

	pthread_once(&once, lib_init);
	if (lib_status != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(lib_status));
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memset(&o, 0, sizeof(o));
	o.timeout = DNSQ_TRY_MS;
	o.tries = 2;
	o.lookups = lookups;
	r = ares_init_options(&q->ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_DOMAINS |
	    ARES_OPT_LOOKUPS);
	if (r != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(r));
		free(q);
		return NULL;
	}
	if (n > 0) {
		struct ares_addr_port_node *nodes = calloc(n, sizeof(*nodes));
		if (nodes == NULL) {
			snprintf(err, errlen, "out of memory");
			dnsq_free(q);
			return NULL;
		}
		for (size_t i = 0; i < n; i++) {
			const struct netaddr *a = &servers[i].addr;
			nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
			nodes[i].family = a->family;
			if (a->family == AF_INET)
				memcpy(&nodes[i].addr.addr4, a->a, 4);
			else
				memcpy(&nodes[i].addr.addr6, a->a, 16);
			nodes[i].udp_port = nodes[i].tcp_port = servers[i].port ? servers[i].port : 53;
		}
		r = ares_set_servers_ports(q->ch, nodes);
		free(nodes);
		if (r != ARES_SUCCESS) {
			snprintf(err, errlen, "c-ares: setting servers: %s", ares_strerror(r));
			dnsq_free(q);
			return NULL;
		}
	}
	q->deadline = now_ms() + budget_ms;
	return q;
}

void
dnsq_free(struct dnsq *q)
{
	if (q == NULL)
		return;
	ares_destroy(q->ch);	/* open queries end with ARES_EDESTRUCTION first */
	free(q);
}

void
dnsq_answer_free(struct dnsq_answer *a)
{
	for (size_t i = 0; i < a->ntxt; i++)
		free(a->txt[i]);
	free(a->txt);
	free(a->addrs);
	for (size_t i = 0; i < a->nnames; i++)
		free(a->names[i]);
	free(a->names);
	a->txt = NULL;
	a->ntxt = 0;
	a->addrs = NULL;
	a->naddrs = 0;
	a->names = NULL;
	a->nnames = 0;
}

static void
tempfail(struct dnsq_answer *a, const char *why)
{
	dnsq_answer_free(a);
	a->status = DNSQ_TEMPFAIL;
	snprintf(a->why, sizeof(a->why), "%s", why);
}

static int
push_name(struct dnsq_answer *a, const char *name)
{
	char **n;

	if (a->nnames >= DNSQ_ANSWERS_MAX)
		return 0;
	if ((n = realloc(a->names, (a->nnames + 1) * sizeof(*n))) == NULL)
		return -1;
	a->names = n;
	if ((n[a->nnames] = strdup(name)) == NULL)
		return -1;
	a->nnames++;
	return 0;
}

static void
parse_txt(struct dnsq_answer *a, unsigned char *abuf, int alen)
{
	struct ares_txt_ext *txt = NULL, *t;
	char *cur = NULL;
	size_t curlen = 0;

	if (ares_parse_txt_reply_ext(abuf, alen, &txt) != ARES_SUCCESS) {
		tempfail(a, "malformed TXT answer");
		return;
	}
	for (t = txt; t != NULL; t = t->next) {
		if (t->record_start && cur != NULL) {
			if (a->ntxt < DNSQ_ANSWERS_MAX) {
				char **n = realloc(a->txt, (a->ntxt + 1) * sizeof(*n));
				if (n == NULL)
					goto oom;
				a->txt = n;
				a->txt[a->ntxt++] = cur;
			} else
				free(cur);
			cur = NULL;
			curlen = 0;
		}
		if (cur == NULL && (cur = calloc(1, 1)) == NULL)
			goto oom;
		if (curlen + t->length < DNSQ_TXT_MAX) {
			char *n = realloc(cur, curlen + t->length + 1);
			if (n == NULL)
				goto oom;
			cur = n;
			memcpy(cur + curlen, t->txt, t->length);
			curlen += t->length;
			cur[curlen] = '\0';
		}
	}
	if (cur != NULL) {
		char **n = realloc(a->txt, (a->ntxt + 1) * sizeof(*n));
		if (n == NULL)
			goto oom;
		a->txt = n;
		a->txt[a->ntxt++] = cur;
		cur = NULL;
	}
	ares_free_data(txt);
	return;
oom:
	free(cur);
	ares_free_data(txt);
	tempfail(a, "out of memory");
}

static void
parse_answer(struct dnsq_answer *a, unsigned char *abuf, int alen)
{
	switch (a->type) {
	case ns_t_txt:
		parse_txt(a, abuf, alen);
		break;
	case ns_t_a:
	case ns_t_aaaa: {
		struct ares_addrttl v4[DNSQ_ANSWERS_MAX];
		struct ares_addr6ttl v6[DNSQ_ANSWERS_MAX];
		int n = DNSQ_ANSWERS_MAX, r;
		r = a->type == ns_t_a ? ares_parse_a_reply(abuf, alen, NULL, v4, &n) :
		    ares_parse_aaaa_reply(abuf, alen, NULL, v6, &n);
		if (r == ARES_ENODATA) {
			a->status = DNSQ_NODATA;
			return;
		}
		if (r != ARES_SUCCESS) {
			tempfail(a, "malformed A or AAAA answer");
			return;
		}
		if ((a->addrs = calloc((size_t)n + 1, sizeof(*a->addrs))) == NULL) {
			tempfail(a, "out of memory");
			return;
		}
		for (int i = 0; i < n; i++) {
			struct netaddr *x = &a->addrs[a->naddrs++];
			if (a->type == ns_t_a) {
				x->family = AF_INET;
				memcpy(x->a, &v4[i].ipaddr, 4);
			} else {
				x->family = AF_INET6;
				memcpy(x->a, &v6[i].ip6addr, 16);
			}
		}
		if (a->naddrs == 0)
			a->status = DNSQ_NODATA;
		break;
	}
	case ns_t_mx: {
		struct ares_mx_reply *mx = NULL, *m, *best;
		size_t count = 0;
		if (ares_parse_mx_reply(abuf, alen, &mx) != ARES_SUCCESS) {
			tempfail(a, "malformed MX answer");
			return;
		}
		for (m = mx; m; m = m->next)
			count++;
		/* by preference: selection, the lists are short */
		for (size_t k = 0; k < count && k < DNSQ_ANSWERS_MAX; k++) {
			best = NULL;
			for (m = mx; m; m = m->next)
				if (m->priority != 0xffff && (best == NULL || m->priority < best->priority))
					best = m;
			if (best == NULL)
				break;
			if (push_name(a, best->host) < 0) {
				ares_free_data(mx);
				tempfail(a, "out of memory");
				return;
			}
			best->priority = 0xffff;	/* taken (a real 65535 is looked at last) */
		}
		ares_free_data(mx);
		if (a->nnames == 0)
			a->status = DNSQ_NODATA;
		break;
	}
	case ns_t_ptr: {
		struct hostent *he = NULL;
		unsigned char dummy[16] = { 0 };
		if (ares_parse_ptr_reply(abuf, alen, dummy, 4, AF_INET, &he) != ARES_SUCCESS) {
			tempfail(a, "malformed PTR answer");
			return;
		}
		if (he->h_name != NULL && push_name(a, he->h_name) < 0)
			tempfail(a, "out of memory");
		/* c-ares lists every PTR name among the aliases, the first one included */
		for (char **al = he->h_aliases; a->status == DNSQ_OK && al && *al; al++) {
			int dup = 0;
			for (size_t i = 0; i < a->nnames && !dup; i++)
				dup = strcasecmp(a->names[i], *al) == 0;
			if (!dup && push_name(a, *al) < 0)
				tempfail(a, "out of memory");
		}
		ares_free_hostent(he);
		break;
	}
	default:
		tempfail(a, "unsupported type");
	}
}

void
dnsq_parse(int type, unsigned char *abuf, int alen, struct dnsq_answer *a)
{
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->status = DNSQ_OK;
	parse_answer(a, abuf, alen);
}

static void
query_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dnsq_answer *a = arg;

	(void)timeouts;
	a->pending = 0;
	switch (status) {
	case ARES_SUCCESS:
		a->status = DNSQ_OK;
		parse_answer(a, abuf, alen);
		break;
	case ARES_ENOTFOUND:
		a->status = DNSQ_NXDOMAIN;
		break;
	case ARES_ENODATA:
		a->status = DNSQ_NODATA;
		break;
	case ARES_ESERVFAIL:
		tempfail(a, "SERVFAIL");
		break;
	case ARES_EREFUSED:
		tempfail(a, "REFUSED");
		break;
	case ARES_ETIMEOUT:
		tempfail(a, "timeout");
		break;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		tempfail(a, "timeout (lookup budget spent)");
		break;
	case ARES_ECONNREFUSED:
		tempfail(a, "DNS server refused the connection");
		break;
	default:
		tempfail(a, ares_strerror(status));
		break;
	}
}

void
dnsq_submit(struct dnsq *q, const char *name, int type, struct dnsq_answer *a)
{
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->q = q;
	if (name[0] == '\0' || strlen(name) > 253) {
		a->status = DNSQ_NXDOMAIN;	/* not a name DNS could hold */
		return;
	}
	if (dnsq_left_ms(q) == 0) {
		tempfail(a, "timeout (lookup budget spent)");
		return;
	}
	a->pending = 1;
	ares_query(q->ch, name, ns_c_in, type, query_cb, a);
}

void
dnsq_wait(struct dnsq *q)
{
	for (;;) {
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct timeval tv, *tvp, maxtv;
		int bits, n = 0, ms;
		unsigned left = dnsq_left_ms(q);

		/* (c-ares's own ARES_GETSOCK_* macros shift a signed 1 into the sign bit) */
		bits = ares_getsock(q->ch, socks, ARES_GETSOCK_MAXNUM);
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			unsigned rd = (unsigned)bits & (1u << i);
			unsigned wr = (unsigned)bits & (1u << (i + ARES_GETSOCK_MAXNUM));
			if (!rd && !wr)
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events = (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0));
			pfd[n].revents = 0;
			n++;
		}
		if (n == 0)
			return;		/* nothing open */
		if (left == 0) {
			ares_cancel(q->ch);	/* the callbacks say "budget spent" */
			return;
		}
		maxtv.tv_sec = left / 1000;
		maxtv.tv_usec = (left % 1000) * 1000;
		tvp = ares_timeout(q->ch, &maxtv, &tv);
		ms = (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000);
		if (poll(pfd, (nfds_t)n, ms) < 0 && errno != EINTR) {
			ares_cancel(q->ch);	/* no query may outlive this call */
			return;
		}
		for (int i = 0; i < n; i++) {
			ares_socket_t r = (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ?
			    pfd[i].fd : ARES_SOCKET_BAD;
			ares_socket_t w = (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD;
			if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD)
				ares_process_fd(q->ch, r, w);
		}
		ares_process_fd(q->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);	/* timeouts */
	}
}

enum dnsq_status
dnsq_lookup(struct dnsq *q, const char *name, int type, struct dnsq_answer *a)
{
	dnsq_submit(q, name, type, a);
	if (a->pending)
		dnsq_wait(q);
	if (a->pending) {		/* cannot happen: wait ends every query */
		ares_cancel(q->ch);	/* (and if it did, c-ares must forget a now) */
		a->pending = 0;
		tempfail(a, "timeout");
	}
	return a->status;
}
