/*
 * recipients — the recipients_file: which local addresses exist, and aliases.
 *
 * Text format (SPEC.md "Configuration file", recipients_file), one entry a line:
 *
 *     # comment (whole-line, or after whitespace)
 *     alice@example.com
 *     sales@example.com: bob@example.com, carol@example.net dave@example.com
 *
 * An address is `local@domain`: exactly one '@', non-empty local part and domain, no
 * blanks, control bytes, commas or angle brackets. It is stored lower-cased with a
 * trailing dot of the domain removed, so matching is case-insensitive. `addr: targets`
 * makes addr an alias: its targets (separated by commas and/or blanks, at least one,
 * each a full address as above, lower-cased the same way) are where its mail goes. An
 * alias is also a known address. Blank lines are ignored; CRLF line endings are accepted.
 * Errors: a malformed address or target ("target X needs a domain" for one without '@'),
 * an address listed twice (naming both lines), a NUL byte. Every error message reads
 * "NAME:LINE: why"; a file that cannot be read gives "PATH: cannot read: why".
 *
 * Lookups are O(1) (hash table), for files of 100k entries and more. A loaded table is
 * immutable, so any number of threads may look up in it at once.
 *
 * Ownership: struct recipients owns every string it holds; recipients_free releases it.
 * recipients_parse is pure; recipients_load reads only the file named.
 */
#ifndef IMSD_RECIPIENTS_H
#define IMSD_RECIPIENTS_H

#include <stddef.h>

struct recipients;

/* Parse text (len bytes, need not be NUL-terminated). NULL with "NAME:LINE: why" in err. */
struct recipients *recipients_parse(const char *name, const char *text, size_t len,
    char *err, size_t errlen);

/* Read path and parse it; NULL with "PATH: cannot read: why" or a parse error in err. */
struct recipients *recipients_load(const char *path, char *err, size_t errlen);

void recipients_free(struct recipients *r);

/*
 * 1 = known (address or alias), 0 = unknown. On 1 with an alias, *targets / *ntargets are
 * its targets (lower-case full addresses, owned by r), else *ntargets = 0. addr_lc is
 * "local@domain" lower-case (matching is case-insensitive anyway). targets may be NULL
 * when the caller only asks whether the address exists.
 */
int recipients_lookup(const struct recipients *r, const char *addr_lc, char *const **targets,
    size_t *ntargets);

/* Number of addresses (plain and aliases). */
size_t recipients_count(const struct recipients *r);

/*
 * Where mail for a local address goes: the one expansion of aliases that RCPT (the
 * session) and imsd explain-recipient both use. Walks addr_lc (a lower-case address of a
 * local domain; r NULL = no recipients_file, no aliases) depth first, calling visit for
 * each alias (RX_ALIAS, with its targets, before they are walked) and for each address
 * where the mail ends (RX_MAILBOX: a local address that is no alias, or an alias that
 * lists itself to keep a copy; RX_RELAY: a target outside local_domains, per is_local).
 * depth is the alias nesting (0 = addr_lc itself). A visit returning -1 stops the walk
 * ("out of memory"). Returns 0, or -1 with *why: "alias nesting too deep" (past
 * RECIPIENTS_ALIAS_DEPTH_MAX), "alias target has no domain", "alias expands to too many
 * addresses" (past RECIPIENTS_EXPANSION_MAX mailboxes and relays, copies not counted).
 */
#define RECIPIENTS_ALIAS_DEPTH_MAX	10
#define RECIPIENTS_EXPANSION_MAX	1000

enum recipients_node { RX_ALIAS, RX_MAILBOX, RX_RELAY };

typedef int (*recipients_visit_fn)(void *arg, enum recipients_node node, const char *addr,
    char *const *targets, size_t ntargets, int depth);

int recipients_expand(const struct recipients *r, const char *addr_lc,
    int (*is_local)(void *larg, const char *domain), void *larg,
    recipients_visit_fn visit, void *arg, const char **why);

#endif
