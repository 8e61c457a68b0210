/*
 * utf8 — UTF-8 well-formedness (contract in utf8.h). Table 3-7 of the Unicode standard.
 */
#include "util/utf8.h"

size_t
utf8_seqlen(const unsigned char *p, size_t avail)
{
	unsigned c;
	size_t n, i;
	unsigned long cp;

	if (avail == 0 || p[0] < 0x80)
		return 0;
	c = p[0];
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else
		return 0;		/* continuation byte, C0/C1 overlong lead, or > U+10FFFF */
	if (avail < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
		return 0;		/* overlong */
	if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	if (cp <= 0x9f)
		return 0;		/* C1 control */
	return n;
}

int
utf8_text_ok(const char *s, size_t n, int tab_ok, int *nonascii)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;

	if (nonascii != NULL)
		*nonascii = 0;
	while (i < n) {
		if (p[i] < 0x80) {
			if ((p[i] < 0x20 && !(tab_ok && p[i] == '\t')) || p[i] == 0x7f)
				return 0;
			i++;
			continue;
		}
		if ((k = utf8_seqlen(p + i, n - i)) == 0)
			return 0;
		if (nonascii != NULL)
			*nonascii = 1;
		i += k;
	}
	return 1;
}

int
utf8_has_nonascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}
