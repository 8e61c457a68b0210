/*
 * json — JSON text for the operator commands (imsd queue --json): strings escaped per
 * RFC 8259 §7, so that nothing from outside (addresses, server replies, HELO names) can
 * break the document.
 *
 * PURE apart from json_put_string, which writes the result to a FILE. Escaped: '"', '\\',
 * every control character (U+0000..U+001F, as \b \f \n \r \t or \u00XX) and DEL, and
 * U+2028/U+2029 (harmless in JSON, but not in JavaScript). Valid UTF-8 is kept as it is;
 * a byte that is not part of valid UTF-8 (overlong, surrogate, truncated, beyond
 * U+10FFFF) is written as \u00XX, the Latin-1 character of that byte, so the output is
 * always valid UTF-8 and loses no byte value.
 */
#ifndef IMSD_JSON_H
#define IMSD_JSON_H

#include <stddef.h>
#include <stdio.h>

/*
 * Write s (len bytes) as a JSON string, with its quotes, into out (outlen bytes, NUL
 * terminated when outlen > 0). Returns the length the whole string needs (without the
 * NUL), like snprintf: the output is complete when that is < outlen.
 */
size_t json_escape(const char *s, size_t len, char *out, size_t outlen);

/* Write s (NUL-terminated; NULL writes null) as a JSON string to fp. */
void json_put_string(FILE *fp, const char *s);

#endif
