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

#endif
