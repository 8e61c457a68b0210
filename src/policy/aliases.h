/*
 * aliases — the system alias file, aliases(5) as Debian's MTAs read it (/etc/aliases).
 *
 *     # comment: a line whose first non-blank character is '#'
 *     postmaster: root
 *     root:       admin@example.org, \root
 *     staff:      alice, bob,
 *                 carol                  (a line starting with a blank continues the entry)
 *     archive:    /var/mail/archive      (append to this file)
 *     tickets:    "|/usr/bin/ticket --queue support"
 *     team:       :include:/etc/mail/team.list
 *     nobody:     /dev/null
 *
 * An entry is `name: value, value, ...`. The name is a local part (case-insensitive,
 * stored lower-case), optionally in double quotes; it may not contain '@', blanks, control
 * bytes or ':'. Values are separated by commas, and by blanks outside a command, a file
 * name or an :include: (which run to the next comma); a value in double quotes may contain
 * commas and blanks. Each value is one of:
 *   - `|command`: run with the message on standard input (AT_COMMAND, value without '|');
 *   - `:include:/path`: the addresses listed in that file, one or more a line (AT_INCLUDE);
 *   - `/dev/null`: discard (AT_DEVNULL); another absolute `/path`: append (AT_FILE);
 *   - `local@domain`: an address (AT_ADDRESS, domain lower-cased);
 *   - `name` or `\name`: a local user or another alias (AT_LOCAL, lower-cased; with the
 *     backslash AT_USER: this user's own mailbox, not looked up again).
 * Errors read "NAME:LINE: why": no ':' after the name, an empty or malformed name, an
 * entry without values, an unterminated quote, an empty command, an :include: or file
 * name that is not absolute, a malformed address, a name listed twice (naming both lines),
 * a NUL byte, an entry longer than ALIASES_ENTRY_MAX bytes, more than ALIASES_MAX entries
 * or ALIASES_VALUES_MAX values in one entry. CRLF line endings are accepted.
 *
 * PURE: aliases_parse reads only its arguments; aliases_load reads only the file named.
 * A table is immutable once made; lookups are O(log n). Ownership: the table owns every
 * string in it; aliases_free releases it.
 */
#ifndef IMSD_ALIASES_H
#define IMSD_ALIASES_H

#include <stddef.h>

#define ALIASES_MAX		100000
#define ALIASES_VALUES_MAX	10000
#define ALIASES_ENTRY_MAX	(256 * 1024)
#define ALIASES_VALUE_MAX	4096

enum alias_kind { AT_ADDRESS, AT_LOCAL, AT_USER, AT_FILE, AT_DEVNULL, AT_COMMAND, AT_INCLUDE };

struct alias_value {
	enum alias_kind kind;
	char *text;		/* the address, name, path or command (without '|', ':include:') */
};

struct alias_entry {
	char *name;		/* lower-case */
	unsigned line;		/* where the entry starts */
	struct alias_value *values;
	size_t nvalues;
};

struct aliases;

/* Parse text (len bytes, need not be NUL-terminated) named name in messages. NULL with
 * "NAME:LINE: why" in err. */
struct aliases *aliases_parse(const char *name, const char *text, size_t len, char *err,
    size_t errlen);

/* Read path and parse it: NULL with "PATH: cannot read: why" or a parse error in err. */
struct aliases *aliases_load(const char *path, char *err, size_t errlen);

void aliases_free(struct aliases *a);

/* The entry for a local part (compared case-insensitively), or NULL. */
const struct alias_entry *aliases_lookup(const struct aliases *a, const char *name);

/* Entries in name order: i < aliases_count(a). */
size_t aliases_count(const struct aliases *a);
const struct alias_entry *aliases_entry(const struct aliases *a, size_t i);

/* "address", "local name", "user", "file", "/dev/null", "command", ":include:" */
const char *alias_kind_name(enum alias_kind k);

#endif
