/*
 * json — JSON string escaping; see json.h.
 */
#include "util/json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when s[0] does not start one. */
static size_t
utf8_seq(const unsigned char *s, size_t len, uint32_t *cp)
{
	size_t n;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2, c = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, c = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4, c = s[0] & 0x07, min = 0x10000;
	} else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

size_t
json_escape(const char *s, size_t len, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t need = 0, i = 0;

#define PUT(str, n) do { \
	for (size_t k_ = 0; k_ < (n); k_++) { \
		if (need + 1 < outlen) \
			out[need] = (str)[k_]; \
		need++; \
	} \
} while (0)

	PUT("\"", 1);
	while (i < len) {
		uint32_t cp;
		size_t n = utf8_seq(p + i, len - i, &cp);
		char esc[8];

		if (n == 0) {
			/* not UTF-8: the byte as its Latin-1 character */
			snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
			PUT(esc, 6);
			i++;
			continue;
		}
		if (cp == '"')
			PUT("\\\"", 2);
		else if (cp == '\\')
			PUT("\\\\", 2);
		else if (cp == '\n')
			PUT("\\n", 2);
		else if (cp == '\r')
			PUT("\\r", 2);
		else if (cp == '\t')
			PUT("\\t", 2);
		else if (cp == '\b')
			PUT("\\b", 2);
		else if (cp == '\f')
			PUT("\\f", 2);
		else if (cp < 0x20 || cp == 0x7f || cp == 0x2028 || cp == 0x2029) {
			snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
			PUT(esc, 6);
		} else
			PUT((const char *)p + i, n);
		i += n;
	}
	PUT("\"", 1);
#undef PUT
	if (outlen > 0)
		out[need < outlen ? need : outlen - 1] = '\0';
	return need;
}

void
json_put_string(FILE *fp, const char *s)
{
	char small[512], *buf = small;
	size_t len, need;

	if (s == NULL) {
		fputs("null", fp);
		return;
	}
	len = strlen(s);
	need = json_escape(s, len, small, sizeof(small));
	if (need >= sizeof(small)) {
		if ((buf = malloc(need + 1)) == NULL) {
			fputs("null", fp);
			return;
		}
		json_escape(s, len, buf, need + 1);
	}
	fwrite(buf, 1, need, fp);
	if (buf != small)
		free(buf);
}
