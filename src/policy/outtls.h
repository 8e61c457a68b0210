/*
 * outtls — the outbound TLS policy: what a relay to a destination domain requires.
 *
 * PURE. `smtp_tls` is the default level, `tls_policy = DOMAIN:LEVEL, …` overrides it per
 * destination domain (an entry `.example.com` covers every subdomain of example.com, not
 * example.com itself; an exact entry wins over a subdomain one, the longest suffix over a
 * shorter). The relay (relay.c) and `imsd explain-recipient` both call outtls_level, so
 * what is explained is what is done.
 *
 * Levels in this build:
 *   opportunistic  STARTTLS when offered, unverified; plaintext otherwise
 *   verify         STARTTLS required, the certificate must verify against the CA store
 *                  (or smtp_tls_ca_file) and match the MX host name; else defer
 *   dane           RFC 7672: TLSA records of each MX host, trusted only when the resolver
 *                  (dns_servers, dnssec_trust_resolver = yes) says they are authenticated:
 *                  then TLS is required and the certificate must match a record; no
 *                  TLSA (authenticated denial) or an unsigned zone: opportunistic
 *   mta-sts        RFC 8461: the domain's MTA-STS policy (deliver/sts.c); in mode enforce
 *                  only MX hosts the policy names, over TLS verified as for verify;
 *                  mode testing or none, or no policy: opportunistic
 */
#ifndef IMSD_OUTTLS_H
#define IMSD_OUTTLS_H

#include <stddef.h>

struct conf;

enum outtls_level { OUTTLS_OPPORTUNISTIC = 0, OUTTLS_VERIFY = 1, OUTTLS_DANE = 2,
	OUTTLS_MTASTS = 3 };

#define OUTTLS_POLICY_MAX	10000	/* tls_policy entries */

/* Parse a level name (case-insensitive). 0 ok; -1 with why ("... is not one of ..."). */
int outtls_level_parse(const char *s, int *level, char *why, size_t wl);
const char *outtls_level_name(int level);

/* The level for mail to domain (lower-case, no trailing dot), and which setting decided it
 * ("tls_policy" or "smtp_tls"); the matching tls_policy entry in *entry when there is one. */
int outtls_level(const struct conf *c, const char *domain, const char **source,
    const char **entry);

/* Does level require verified TLS whatever DNS says (no plaintext fallback)? (dane
 * requires it only for hosts with authenticated TLSA records.) */
int outtls_required(int level);

/* Is level the default or in some tls_policy entry? */
int outtls_uses(const struct conf *c, int level);

#endif
