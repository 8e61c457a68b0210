/*
 * tlslevel — the vocabulary of the outbound TLS levels: the values of `smtp_tls` and of the
 * LEVEL in `tls_policy = DOMAIN:LEVEL, …`, their names, and what each one requires.
 *
 * PURE. The configuration parser (conf.c) and printer use it, so conf/ needs nothing from
 * policy/; the decision "which level for this destination" is policy/outtls.h's.
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
#ifndef IMSD_TLSLEVEL_H
#define IMSD_TLSLEVEL_H

#include <stddef.h>

struct conf;

enum outtls_level { OUTTLS_OPPORTUNISTIC = 0, OUTTLS_VERIFY = 1, OUTTLS_DANE = 2,
	OUTTLS_MTASTS = 3 };

#define OUTTLS_POLICY_MAX	10000	/* tls_policy entries */

/* Parse a level name (case-insensitive). 0 ok; -1 with why ("... is not one of ..."). */
int outtls_level_parse(const char *s, int *level, char *why, size_t wl);
const char *outtls_level_name(int level);

/* Does level require verified TLS whatever DNS says (no plaintext fallback)? (dane
 * requires it only for hosts with authenticated TLSA records.) */
int outtls_required(int level);

/* Is level the default or in some tls_policy entry? */
int outtls_uses(const struct conf *c, int level);

#endif
