/*
 * msghdr — the header section of a message as the authentication checks read it. PURE.
 *
 *  - mhdr_next walks header fields: a field is its first line and every continuation line
 *    (starting with SP or HTAB), CRLF-terminated; the walk ends at the empty line. A line
 *    without a colon in the name part is malformed (the walk stops with -1).
 *  - mhdr_from_domains reads an RFC 5322 From: value (display names, quoted strings,
 *    comments, angle addresses, groups, obsolete routes) and returns each mailbox's domain,
 *    lower-case, without a trailing dot. DMARC (RFC 7489 §6.6.1) needs exactly one.
 *  - mhdr_authserv_id returns the first token of an Authentication-Results value (RFC 8601
 *    §2.2), comments and folding skipped: whose verdict the field claims to be.
 */
#ifndef IMSD_MSGHDR_H
#define IMSD_MSGHDR_H

#include <stddef.h>

#define MHDR_DOMAINS_MAX 16

struct mhdr_field {
	const char *name;	size_t namelen;		/* without the colon */
	const char *value;	size_t valuelen;	/* after the colon, folding kept, no final CRLF */
	const char *raw;	size_t rawlen;		/* the whole field, final CRLF excluded */
};

/* 1 a field (f filled, *pos advanced past its CRLF); 0 the empty line or the end of buf
 * (*pos past the empty line's CRLF when there was one); -1 malformed. */
int mhdr_next(const char *buf, size_t len, size_t *pos, struct mhdr_field *f);

/* Is the field named name (case-insensitive)? */
int mhdr_is(const struct mhdr_field *f, const char *name);

/* 0 ok (*n domains, at most MHDR_DOMAINS_MAX; a mailbox without a usable domain is
 * counted as the empty string); -1 not an address list. */
int mhdr_from_domains(const char *v, size_t len, char dom[][256], size_t *n);

/* The same list's mailboxes as addr-specs ("local@domain", comments and blanks gone, a
 * quoted local part as written; one longer than MHDR_ADDR_MAX - 1 comes back empty). */
#define MHDR_ADDR_MAX 512
int mhdr_from_addrs(const char *v, size_t len, char addr[][MHDR_ADDR_MAX], size_t *n);

/* 0 ok (out: the authserv-id, lower-case); -1 none found. */
int mhdr_authserv_id(const char *v, size_t len, char *out, size_t outlen);

#endif
