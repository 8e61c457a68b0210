/*
 * utf8 — well-formedness of UTF-8 text (RFC 3629), for SMTPUTF8 (RFC 6531). PURE.
 *
 * A sequence is accepted only in its shortest form, never encodes a surrogate
 * (U+D800..U+DFFF) or a code point above U+10FFFF, and is never a C1 control
 * (U+0080..U+009F): RFC 6531 §3.3 allows UTF8-non-ascii, and a control character has no
 * place in an address or a header value.
 */
#ifndef IMSD_UTF8_H
#define IMSD_UTF8_H

#include <stddef.h>

/*
 * Length (2..4) of the well-formed non-ASCII UTF-8 sequence at p (avail bytes there), or 0
 * when p[0] is ASCII, the sequence is malformed, overlong, a surrogate, beyond U+10FFFF,
 * truncated, or a C1 control.
 */
size_t utf8_seqlen(const unsigned char *p, size_t avail);

/*
 * Is s (n bytes) printable text: ASCII 0x20..0x7e (and TAB when tab_ok) or well-formed
 * UTF-8 as utf8_seqlen accepts it? 1 yes, 0 no. *nonascii (may be NULL) is set to 1 when
 * a non-ASCII character was seen.
 */
int utf8_text_ok(const char *s, size_t n, int tab_ok, int *nonascii);

/* Does the NUL-terminated s contain a byte >= 0x80? */
int utf8_has_nonascii(const char *s);

#endif
