/*
 * sts — MTA-STS policy discovery for the relay (RFC 8461 §3, §5), on the event loop.
 *
 * sts_get looks up the _mta-sts TXT record of a domain through the relay's resolver; when
 * there is an STSv1 record whose id differs from the cached policy's (or nothing valid is
 * cached), it resolves mta-sts.DOMAIN through the same resolver and fetches
 * https://mta-sts.DOMAIN:PORT/.well-known/mta-sts.txt in a worker thread (blocking I/O with
 * a deadline of STS_FETCH_SECONDS, so the loop never blocks), the certificate verified
 * against the CA store or smtp_tls_ca_file. A policy fetched and parsed is cached in memory
 * (the process, shared by the workers) until max_age. When discovery fails (no record, DNS
 * or HTTPS failure, a bad policy), a cached policy that has not expired is used; else there
 * is no policy. The callback runs once, from the loop, never inside sts_get.
 */
#ifndef IMSD_STS_H
#define IMSD_STS_H

#include "deliver/dns.h"
#include "net/ev.h"
#include "policy/mtasts.h"
#include "cfg/cfg.h"

#define STS_FETCH_SECONDS	20
#define STS_CACHE_MAX		1024	/* domains cached; the oldest is replaced */

struct sts;
struct sts_query;

/* p: the policy to apply, NULL = none. note: how it was found, or why there is none. */
typedef void (*sts_cb)(void *arg, const struct mtasts_policy *p, const char *note);

struct sts *sts_new(struct ev_loop *loop, struct dns *dns);
/* Cancels everything (no callbacks); fetches in flight finish in their threads. */
void sts_free(struct sts *s);
/* NULL when it cannot start (then cb is never called). cfg is referenced until the end. */
struct sts_query *sts_get(struct sts *s, struct cfg *cfg, const char *domain, sts_cb cb,
    void *arg);
void sts_cancel(struct sts_query *q);

#endif
