/*
 * transport — the transport_map file: per-domain exceptions to mailbox_transport (how mail
 * for a local domain is stored: imsd's own Maildir, or LMTP to a mailbox server).
 *
 * Text format (SPEC.md "Keys and commands of the next capabilities", transport_map), one
 * entry a line, the rules of util/textfile (comments, blanks, CRLF):
 *
 *     # DOMAIN            TRANSPORT
 *     example.org         lmtp:unix:/run/dovecot/lmtp
 *     lists.example.org   lmtp:inet:[2001:db8::25]:24
 *     legacy.example.org  maildir
 *
 * DOMAIN is a domain name (U-labels are taken in their A-label form, lower-cased, a
 * trailing dot dropped), listed at most once; TRANSPORT is what mailbox_transport takes
 * (conf_transport_parse). Exactly two fields. Errors read "NAME:LINE: why" ("a domain listed
 * twice" names both lines); a file that cannot be read gives "PATH: cannot read: why".
 * Whether each domain is a local one is the loader's question (cfg), which knows the line.
 *
 * A loaded map is immutable: any number of threads may look up in it at once. Lookups are a
 * linear scan (a map has a few entries per local domain, not thousands).
 *
 * PURE apart from transport_map_load, which reads only the file named.
 */
#ifndef IMSD_TRANSPORT_H
#define IMSD_TRANSPORT_H

#include <stddef.h>

#include "conf/conf.h"

#define TRANSPORT_MAP_MAX	(1u << 20)	/* largest file read, bytes */
#define TRANSPORT_MAP_ENTRIES	10000		/* most entries */

struct transport_map;

/* Parse text (len bytes). NULL with "NAME:LINE: why" in err. */
struct transport_map *transport_map_parse(const char *name, const char *text, size_t len,
    char *err, size_t errlen);
/* Read path and parse it. NULL with the reason in err. */
struct transport_map *transport_map_load(const char *path, char *err, size_t errlen);
void transport_map_free(struct transport_map *m);

/* The transport for domain_lc (lower-case A-label, no trailing dot), or NULL: not listed. */
const struct conf_transport *transport_map_lookup(const struct transport_map *m,
    const char *domain_lc);

size_t transport_map_count(const struct transport_map *m);
/* Entry i (< count): its domain, its transport, and the line it was on. */
const char *transport_map_domain(const struct transport_map *m, size_t i);
const struct conf_transport *transport_map_transport(const struct transport_map *m, size_t i);
unsigned transport_map_line(const struct transport_map *m, size_t i);

#endif
