/*
 * ar — the Authentication-Results header field (RFC 8601) imsd adds, and the DNS list
 * helpers. PURE.
 */
#ifndef IMSD_AR_H
#define IMSD_AR_H

#include <stddef.h>

#include "mailauth/dkimop.h"
#include "mailauth/dmarcop.h"
#include "mailauth/spfcheck.h"
#include "util/addr.h"

/*
 * "Authentication-Results: HOSTNAME;\r\n\tspf=...;\r\n\tdkim=...;\r\n\tdmarc=...\r\n" into
 * a malloc'd string. helo may be NULL (not checked); dmarc NULL when not evaluated. Values
 * from outside are quoted where RFC 8601's grammar needs it and stripped of control bytes.
 */
char *ar_format(const char *hostname, const struct spf_verdict *mfrom,
    const struct spf_verdict *helo, const struct dkim_sigres *sigs, size_t nsigs,
    const struct dmarc_verdict *dmarc);

/* The DNS list query name for addr in zone: "4.3.2.1.zone" or the 32 nibbles of an IPv6
 * address, reversed. 0 ok, -1 too long. */
int dnsl_query_name(const struct netaddr *addr, const char *zone, char *out, size_t outlen);

/* Is a DNS list answer a listing? RFC 5782 §2.1: an A record in 127.0.0.0/8 other than
 * 127.0.0.1 (which lists report for errors, e.g. Spamhaus's 127.255.255.x "query refused"
 * codes are 127.255.255.0/24 and are not listings either). */
int dnsl_is_listing(const struct netaddr *a);

#endif
