/*
 * dsnparam — DSN parameters of MAIL and RCPT (contract in dsnparam.h).
 */
#include <string.h>

#include "proto/dsnparam.h"

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive: do the len bytes at s spell word? */
static int
word_is(const char *s, size_t len, const char *word)
{
	if (strlen(word) != len)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (lower(s[i]) != lower(word[i]))
			return 0;
	return 1;
}

int
xtext_decode(const char *s, size_t len, char *out, size_t cap, const char **why)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int hi, lo;

		if (c == '+') {
			if (i + 2 >= len) {
				*why = "truncated +XX escape";
				return -1;
			}
			if ((hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0) {
				*why = "'+' not followed by two hex digits";
				return -1;
			}
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		} else if (c < '!' || c > '~' || c == '=') {
			*why = "character not allowed in xtext";
			return -1;
		}
		if (n + 1 >= cap) {
			*why = "too long";
			return -1;
		}
		out[n++] = (char)c;
	}
	if (cap == 0) {
		*why = "too long";
		return -1;
	}
	out[n] = '\0';
	return (int)n;
}

int
xtext_encode(const char *s, size_t len, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= '!' && c <= '~' && c != '+' && c != '=') {
			if (n + 1 >= cap)
				return -1;
			out[n++] = (char)c;
		} else {
			if (n + 3 >= cap)
				return -1;
			out[n++] = '+';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	if (cap == 0)
		return -1;
	out[n] = '\0';
	return (int)n;
}

int
dsn_ret_parse(const char *v, size_t len, enum dsn_ret *ret, const char **why)
{
	if (word_is(v, len, "FULL"))
		*ret = DSN_RET_FULL;
	else if (word_is(v, len, "HDRS"))
		*ret = DSN_RET_HDRS;
	else {
		*why = "RET must be FULL or HDRS";
		return -1;
	}
	return 0;
}

/* Decoded bytes all printable ASCII (space included)? */
static int
printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

int
dsn_envid_parse(const char *v, size_t len, char out[DSN_ENVID_MAX + 1], const char **why)
{
	char dec[DSN_ENVID_MAX + 1];
	int n;

	if (len == 0) {
		*why = "empty ENVID";
		return -1;
	}
	if (len > DSN_ENVID_MAX) {
		*why = "ENVID longer than 100 characters";
		return -1;
	}
	if ((n = xtext_decode(v, len, dec, sizeof(dec), why)) < 0)
		return -1;
	if (!printable(dec, (size_t)n)) {
		*why = "ENVID does not decode to printable ASCII";
		return -1;
	}
	if (xtext_encode(dec, (size_t)n, out, DSN_ENVID_MAX + 1) < 0) {
		*why = "ENVID longer than 100 characters";
		return -1;
	}
	return 0;
}

int
dsn_notify_parse(const char *v, size_t len, unsigned *mask, const char **why)
{
	unsigned m = 0;
	size_t i = 0;

	if (len == 0) {
		*why = "empty NOTIFY";
		return -1;
	}
	while (i <= len) {
		size_t j = i;
		unsigned bit;

		while (j < len && v[j] != ',')
			j++;
		if (word_is(v + i, j - i, "NEVER"))
			bit = DSN_NOTIFY_NEVER;
		else if (word_is(v + i, j - i, "SUCCESS"))
			bit = DSN_NOTIFY_SUCCESS;
		else if (word_is(v + i, j - i, "FAILURE"))
			bit = DSN_NOTIFY_FAILURE;
		else if (word_is(v + i, j - i, "DELAY"))
			bit = DSN_NOTIFY_DELAY;
		else {
			*why = "NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY";
			return -1;
		}
		if (m & bit) {
			*why = "NOTIFY names a keyword twice";
			return -1;
		}
		m |= bit;
		i = j + 1;
	}
	if ((m & DSN_NOTIFY_NEVER) && m != DSN_NOTIFY_NEVER) {
		*why = "NOTIFY=NEVER cannot be combined with other keywords";
		return -1;
	}
	*mask = m;
	return 0;
}

/* RFC 6533 §3 utf-8-addr-xtext: QCHAR (printable ASCII except '+', '=', '\') or
 * "\x{" HEXPOINT "}" naming a code point that needs it (not a QCHAR) and is valid. */
static int
utf8_xtext_ok(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return 0;
	while (i < len) {
		char c = s[i];
		if (c == '\\') {
			unsigned long cp = 0;
			size_t k = i + 3, nd = 0;
			if (i + 3 >= len || s[i + 1] != 'x' || s[i + 2] != '{')
				return 0;
			while (k < len && s[k] != '}' && nd < 7) {
				int h = hexval(s[k]);
				if (h < 0 || (s[k] >= 'a' && s[k] <= 'f'))
					return 0;	/* HEXDIG is upper case */
				cp = cp * 16 + (unsigned long)h;
				k++;
				nd++;
			}
			if (k >= len || s[k] != '}' || !(nd == 2 || nd == 4 || nd == 5 || nd == 6))
				return 0;
			if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
			    (cp >= '!' && cp <= '~' && cp != '+' && cp != '=' && cp != '\\'))
				return 0;
			i = k + 1;
		} else if (c < '!' || c > '~' || c == '+' || c == '=') {
			return 0;
		} else
			i++;
	}
	return 1;
}

int
dsn_orcpt_parse(const char *v, size_t len, char out[DSN_ORCPT_MAX + 1], const char **why)
{
	const char *semi = memchr(v, ';', len);
	size_t tlen, xlen;

	if (len > DSN_ORCPT_MAX) {
		*why = "ORCPT longer than 500 characters";
		return -1;
	}
	if (semi == NULL || semi == v) {
		*why = "ORCPT must be addr-type;xtext";
		return -1;
	}
	tlen = (size_t)(semi - v);
	xlen = len - tlen - 1;
	if (xlen == 0) {
		*why = "ORCPT has no address";
		return -1;
	}
	if (word_is(v, tlen, "rfc822")) {
		char dec[DSN_ORCPT_MAX + 1];
		int n = xtext_decode(semi + 1, xlen, dec, sizeof(dec), why);
		if (n < 0)
			return -1;
		if (!printable(dec, (size_t)n) || memchr(dec, '@', (size_t)n) == NULL) {
			*why = "ORCPT rfc822 address is not a printable address with '@'";
			return -1;
		}
		memcpy(out, "rfc822;", 7);
		/* re-encoding never grows past what was written: "+XX" stays "+XX" */
		if (xtext_encode(dec, (size_t)n, out + 7, DSN_ORCPT_MAX + 1 - 7) < 0) {
			*why = "ORCPT longer than 500 characters";
			return -1;
		}
		return 0;
	}
	if (word_is(v, tlen, "utf-8")) {
		if (!utf8_xtext_ok(semi + 1, xlen)) {
			*why = "ORCPT utf-8 address is not utf-8-addr-xtext (RFC 6533)";
			return -1;
		}
		memcpy(out, "utf-8;", 6);
		memcpy(out + 6, semi + 1, xlen);
		out[6 + xlen] = '\0';
		return 0;
	}
	*why = "ORCPT address type must be rfc822 or utf-8";
	return -1;
}

void
dsn_notify_format(unsigned mask, char *out, size_t cap)
{
	size_t n = 0;
	static const struct { unsigned bit; const char *name; } names[] = {
		{ DSN_NOTIFY_NEVER, "NEVER" }, { DSN_NOTIFY_SUCCESS, "SUCCESS" },
		{ DSN_NOTIFY_FAILURE, "FAILURE" }, { DSN_NOTIFY_DELAY, "DELAY" },
	};

	if (cap == 0)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t l = strlen(names[i].name);
		if (!(mask & names[i].bit))
			continue;
		if (n + l + 2 > cap)
			return;
		if (n > 0)
			out[n++] = ',';
		memcpy(out + n, names[i].name, l + 1);
		n += l;
	}
}

int
dsn_orcpt_field(const char *stored, char *out, size_t cap)
{
	const char *why;
	size_t n;

	if (strncmp(stored, "rfc822;", 7) == 0) {
		char dec[DSN_ORCPT_MAX + 1];
		int d = xtext_decode(stored + 7, strlen(stored + 7), dec, sizeof(dec), &why);
		if (d < 0 || (size_t)d + 9 > cap)
			return -1;
		memcpy(out, "rfc822; ", 8);
		memcpy(out + 8, dec, (size_t)d + 1);
		return d + 8;
	}
	if (strncmp(stored, "utf-8;", 6) == 0) {
		n = strlen(stored + 6);
		if (n + 8 > cap)
			return -1;
		memcpy(out, "utf-8; ", 7);
		memcpy(out + 7, stored + 6, n + 1);
		return (int)n + 7;
	}
	return -1;
}

int
dsn_envid_field(const char *stored, char *out, size_t cap)
{
	const char *why;

	return xtext_decode(stored, strlen(stored), out, cap, &why);
}
