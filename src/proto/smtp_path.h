/*
 * smtp_path — RFC 5321 §4.1.2 paths and ESMTP parameters of MAIL FROM / RCPT TO.
 *
 * PURE: no allocation, no I/O, no globals; every buffer is fixed-size and every limit
 * of RFC 5321 §4.5.3.1 is enforced (local part 64 octets, domain 255, path 256).
 *
 * Accepted forms:
 *   <>                                  null reverse-path (only when allow_null)
 *   <local@domain>                      dot-string or quoted-string local part
 *   <local@[192.0.2.1]> <l@[IPv6:::1]>  address literals (validated)
 *   <@a.example,@b.example:local@domain> source route: parsed, validated, stripped
 *                                       (RFC 5321 §C); has_route is set
 *   <Postmaster>                        only when allow_postmaster (RCPT TO, §4.5.1),
 *                                       case-insensitive; domain left empty
 * The angle brackets are required (a bare address is a syntax error, as in RFC 5321).
 * UTF-8 (RFC 6531 §3.3) is accepted in the local part (dot-string and quoted-string) and
 * in domain labels (U-labels), and sets utf8; it must be well-formed (util/utf8.h: no
 * overlong forms, surrogates, code points beyond U+10FFFF or C1 controls), else
 * SMTP_PATH_8BIT. Whether SMTPUTF8 was asked for is the caller's decision. Limits stay
 * in octets.
 *
 * Normal form kept in struct smtp_path: `local` is the local part with quoting removed
 * (quoted-pairs resolved), `domain` as written (case kept), address literal with brackets.
 */
#ifndef IMSD_SMTP_PATH_H
#define IMSD_SMTP_PATH_H

#include <stddef.h>

#define SMTP_LOCAL_MAX	64
#define SMTP_DOMAIN_MAX	255
#define SMTP_PATH_MAX	256

enum smtp_path_status {
	SMTP_PATH_OK = 0,
	SMTP_PATH_SYNTAX,	/* malformed */
	SMTP_PATH_TOO_LONG,	/* a §4.5.3.1 limit exceeded */
	SMTP_PATH_8BIT,		/* malformed UTF-8, or non-ASCII where none may stand */
	SMTP_PATH_NULL_NOT_ALLOWED,
};

struct smtp_path {
	int is_null;		/* <> */
	int is_postmaster;	/* bare <Postmaster> */
	int quoted;		/* local part was a quoted-string */
	int has_route;		/* a source route was present (and stripped) */
	int is_literal;		/* domain is an address literal */
	int utf8;		/* local part or domain holds non-ASCII (needs SMTPUTF8) */
	char local[SMTP_LOCAL_MAX + 1];
	char domain[SMTP_DOMAIN_MAX + 1];
};

/*
 * Parse a path at the start of s (len bytes; s need not be NUL-terminated). On success,
 * *rest points just after '>' (parameters may follow there). *why gets a short
 * human-readable reason on failure (static string).
 */
enum smtp_path_status smtp_path_parse(const char *s, size_t len, int allow_null,
    int allow_postmaster, struct smtp_path *out, const char **rest, const char **why);

/*
 * Write the path as it should appear on the wire ("<>" or "<local@domain>", re-quoting
 * the local part when it is not a valid dot-string). Returns the length written
 * (excluding NUL), or -1 when it does not fit.
 */
int smtp_path_format(const struct smtp_path *p, char *buf, size_t len);

/* "local@domain" without brackets, quoted as needed; "" for the null path. Same return. */
int smtp_path_addr(const struct smtp_path *p, char *buf, size_t len);

/*
 * "local@domain" (split at the last '@', the local part unquoted) written as RFC 5321 wants
 * it in a Received "for" clause or on the wire: the local part quoted, with '"' and '\\'
 * escaped, when it is not a dot-string. Same return as smtp_path_addr.
 */
int smtp_addr_requote(const char *addr, char *buf, size_t len);

/*
 * May this (unquoted) local part name a mailbox directory? Not empty; no '/', '@', '<',
 * '>', ';', '"', '\\' or control character; no space at either end; not starting with '.'.
 * 1 yes; 0 no, with *why saying what is wrong (a constant string).
 */
int smtp_local_mailbox_ok(const char *local, const char **why);

/* One ESMTP parameter: KEYWORD[=VALUE] (RFC 5321 §4.1.2 esmtp-param). */
struct smtp_param {
	const char *key;	size_t keylen;
	const char *value;	size_t valuelen;	/* value NULL when absent */
};

/*
 * Split what follows the path into parameters separated by one or more spaces.
 * Keywords are checked against RFC 5321's esmtp-keyword grammar, values against
 * esmtp-value (printable ASCII except '=' and SP). Returns the number of parameters
 * (0..max), or -1 on syntax error or more than max parameters (*why set).
 */
int smtp_params_parse(const char *s, size_t len, struct smtp_param *out, size_t max,
    const char **why);

/* Case-insensitive comparison of a parameter keyword with a NUL-terminated name. */
int smtp_param_is(const struct smtp_param *p, const char *name);

#endif
