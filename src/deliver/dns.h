/*
 * dns — asynchronous mail routing lookups (MX, then A/AAAA) with c-ares, driven by our ev loop.
 *
 * Contract:
 *  - Single-threaded: every function runs on the thread that runs the loop. No blocking, no
 *    threads; c-ares sockets are watched through ev and timeouts are processed by dns_tick,
 *    which the owner calls from the loop's tick (about once a second), so timeouts have a
 *    granularity of about a second.
 *  - Callbacks never run inside dns_resolve_* or dns_cancel, and never inside c-ares: a
 *    finished query is queued and delivered from the loop (a socket event, dns_tick, or an
 *    internal eventfd woken when a query finished synchronously, e.g. an address literal or an
 *    immediate c-ares failure). The handle returned by dns_resolve_* is therefore always valid
 *    until its callback has returned or dns_cancel was called.
 *  - Inside a callback the owner may start new queries and cancel other queries. The result
 *    and everything it points to is valid only during the call.
 *  - dns_cancel(q): the callback will not be called; allowed at any time while the handle is
 *    valid (including from inside another query's callback). Cancelling the query whose
 *    callback is running is a no-op. After the callback returned, the handle is gone.
 *  - dns_free: outstanding queries are cancelled and their callbacks are NOT called; every
 *    handle becomes invalid. Call it after ev_loop_run returned or from the loop's tick —
 *    not from an io callback, dns callbacks included: the loop may still hold events for our
 *    watchers in the batch it is dispatching. (Called from a dns callback delivered by
 *    dns_tick it is safe: the destruction waits until dns_tick returns.)
 *  - Lookups use DNS only (no /etc/hosts, no search domains: names are absolute).
 *    "localhost" and address literals resolve without DNS. At most DNS_MAX_MX hosts, each
 *    with at most DNS_MAX_ADDRS addresses (IPv4 first, then IPv6).
 *  - Classification (RFC 5321 §5.1, RFC 7505): NXDOMAIN on the MX query → DNS_NXDOMAIN;
 *    no MX records (NODATA) → the domain's own A/AAAA with implicit_mx=1, and DNS_NOHOSTS
 *    when it has none; MX records whose targets are all "." → DNS_NULLMX; MX hosts whose
 *    address lookups fail are dropped, and when none is left → DNS_TEMPFAIL ("no MX host has
 *    an address", as Postfix treats it); SERVFAIL, REFUSED, timeouts and unreachable
 *    servers → DNS_TEMPFAIL. A and AAAA are looked up separately so a SERVFAIL on one family
 *    is never mistaken for "no such record" (c-ares 1.18's AF_UNSPEC reports only the
 *    status of whichever answer came last).
 */
#ifndef IMSD_DNS_H
#define IMSD_DNS_H

#include <stddef.h>

#include "deliver/tlsa.h"
#include "net/ev.h"
#include "util/addr.h"

#define DNS_MAX_MX	20
#define DNS_MAX_ADDRS	10
#define DNS_TIMEOUT_MS	3000
#define DNS_TRIES	2
#define DNS_TXT_RRS	8	/* TXT records kept (the rest ignored) */
#define DNS_TXT_MAX	1024	/* bytes of one TXT record kept (longer: dropped whole) */

struct dns;
struct dns_query;

enum dns_status {
	DNS_OK,
	DNS_NXDOMAIN,	/* permanent: the domain does not exist */
	DNS_NOHOSTS,	/* permanent: no MX and no A/AAAA (or: host has no A/AAAA) */
	DNS_NULLMX,	/* RFC 7505 "0 .": the domain accepts no mail */
	DNS_TEMPFAIL,	/* SERVFAIL, timeout, refused, MX hosts that do not resolve (yet) */
};

struct dns_host {
	char name[256];
	unsigned pref;
	struct netaddr *addrs;
	size_t naddrs;
};

struct dns_result {
	enum dns_status status;
	char why[160];		/* "example.org: SERVFAIL", "example.org: null MX (accepts no mail)" */
	int implicit_mx;	/* no MX: hosts[0] is the domain itself (RFC 5321 §5.1) */
	struct dns_host *hosts;	/* in the order to try; only hosts that have addresses */
	size_t nhosts;
	const struct tlsa_answer *tlsa;	/* dns_resolve_tlsa: the parsed answer (OK, NXDOMAIN) */
	char (*txt)[DNS_TXT_MAX + 1];	/* dns_resolve_txt: each record's strings joined */
	size_t ntxt;
};

typedef void (*dns_cb)(void *arg, const struct dns_result *res);

/* A resolver on loop. servers: n entries to query (port 0 = 53), or n = 0 for the
 * nameservers of /etc/resolv.conf. Timeout DNS_TIMEOUT_MS per try (c-ares doubles it on
 * each retry round), DNS_TRIES tries. NULL with err filled on failure. */
struct dns *dns_new(struct ev_loop *loop, const struct hostport *servers, size_t n, char *err,
    size_t errlen);
/* The same with an explicit first-try timeout and number of tries (tests, configuration). */
struct dns *dns_new_opts(struct ev_loop *loop, const struct hostport *servers, size_t n,
    unsigned timeout_ms, unsigned tries, char *err, size_t errlen);
/* Cancel everything (no callbacks) and free. NULL is fine. */
void dns_free(struct dns *d);
/* Process c-ares timeouts and free closed socket watchers; call from the loop's tick. */
void dns_tick(struct dns *d);

/* Route mail for domain: MX hosts by preference (random among equals) with their addresses,
 * or the implicit MX. NULL (errno EINVAL or ENOMEM) when the query could not be started;
 * then cb is never called. */
struct dns_query *dns_resolve_mail(struct dns *d, const char *domain, dns_cb cb, void *arg);
/* A/AAAA of one host (a relayhost in brackets); hosts[0].pref is 0. NXDOMAIN → DNS_NXDOMAIN,
 * no addresses → DNS_NOHOSTS. NULL as for dns_resolve_mail. */
struct dns_query *dns_resolve_host(struct dns *d, const char *host, dns_cb cb, void *arg);
/*
 * TLSA records of name (RFC 6698, "_25._tcp.mx.example.org"), asked with the AD bit set
 * (RFC 6840 §5.7) so a validating resolver says whether the answer is authenticated;
 * res->tlsa has the records and the AD bit as received (the caller decides whether it
 * trusts that resolver). NOERROR (with or without records) → DNS_OK, NXDOMAIN →
 * DNS_NXDOMAIN, anything else (SERVFAIL, timeout, a malformed answer) → DNS_TEMPFAIL.
 * NULL as for dns_resolve_mail.
 */
struct dns_query *dns_resolve_tlsa(struct dns *d, const char *name, dns_cb cb, void *arg);
/* TXT records of name: DNS_OK with res->txt (NOERROR, maybe none), DNS_NXDOMAIN, or
 * DNS_TEMPFAIL. NULL as for dns_resolve_mail. */
struct dns_query *dns_resolve_txt(struct dns *d, const char *name, dns_cb cb, void *arg);
/* The callback will not be called; NULL is fine. */
void dns_cancel(struct dns_query *q);

/* Sort n hosts by ascending preference and shuffle each run of equal preference with
 * rnd(rarg) (uniform enough over unsigned); rnd NULL keeps equal ones in input order. */
void dns_sort_mx(struct dns_host *h, size_t n, unsigned (*rnd)(void *), void *rarg);

#endif
