/*
 * str — small string helpers (pure).
 */
#ifndef IMSD_STR_H
#define IMSD_STR_H

#include <stddef.h>
#include <string.h>

/* Copy src into dst (capacity cap > 0), truncating; always NUL-terminates. Returns dst. */
static inline char *
str_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return dst;
}

/*
 * Write s into buf (size len) as a double-quoted string safe for a terminal or a log:
 * bytes outside printable ASCII, '"' and '\\' as \xHH, cut after maxchars source bytes with
 * "...". Returns buf. For error messages that show what the user wrote.
 */
const char *str_quote(const char *s, size_t maxchars, char *buf, size_t len);

#endif
