/*
 * outtls — the outbound TLS policy: what a relay to a destination domain requires.
 *
 * PURE. `smtp_tls` is the default level, `tls_policy = DOMAIN:LEVEL, …` overrides it per
 * destination domain (an entry `.example.com` covers every subdomain of example.com, not
 * example.com itself; an exact entry wins over a subdomain one, the longest suffix over a
 * shorter). The relay (relay.c) and `imsd explain-recipient` both call outtls_level, so
 * what is explained is what is done.
 *
 * The levels (their names, parsing and what each requires) are conf/tlslevel.h's, so that
 * the configuration parser needs nothing from policy/.
 */
#ifndef IMSD_OUTTLS_H
#define IMSD_OUTTLS_H

#include "conf/tlslevel.h"

struct conf;

/* The level for mail to domain (lower-case, no trailing dot), and which setting decided it
 * ("tls_policy" or "smtp_tls"); the matching tls_policy entry in *entry when there is one. */
int outtls_level(const struct conf *c, const char *domain, const char **source,
    const char **entry);

#endif
