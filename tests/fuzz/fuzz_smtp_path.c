/*
 * fuzz_smtp_path — libFuzzer target for smtp_path_parse / smtp_params_parse.
 *
 * Byte 0 picks the flags (bit 0 allow_null, bit 1 allow_postmaster); the rest is the
 * text after "MAIL FROM:" / "RCPT TO:". On success the result is checked against the
 * contract of smtp_path.h and the formatted path must parse back to the same thing;
 * any violation abort()s. UTF-8 (RFC 6531) is accepted only well-formed and flagged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp_path.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXPARAMS 8

static void
check(int cond)
{
	if (!cond)
		abort();
}

/* Printable ASCII or well-formed UTF-8 (RFC 6531), at most max octets; *u8 |= non-ASCII. */
static void
check_chars(const char *s, size_t max, int *u8)
{
	size_t n = strnlen(s, max + 1);
	int nonascii;

	check(n <= max);
	check(utf8_text_ok(s, n, 0, &nonascii));
	*u8 |= nonascii;
}

static int
c_alnum(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void
check_params(const char *s, size_t len)
{
	struct smtp_param prm[MAXPARAMS];
	const char *why = NULL;
	size_t i, k;
	int n;

	n = smtp_params_parse(s, len, prm, MAXPARAMS, &why);
	check(why != NULL);
	check(n >= -1 && n <= MAXPARAMS);
	for (i = 0; n > 0 && i < (size_t)n; i++) {
		check(prm[i].key >= s && prm[i].keylen > 0 &&
		    prm[i].key + prm[i].keylen <= s + len);
		check(c_alnum((unsigned char)prm[i].key[0]));
		for (k = 0; k < prm[i].keylen; k++)
			check(c_alnum((unsigned char)prm[i].key[k]) || prm[i].key[k] == '-');
		check(prm[i].key[-1] == ' ');
		if (prm[i].value == NULL) {
			check(prm[i].valuelen == 0);
			continue;
		}
		check(prm[i].value == prm[i].key + prm[i].keylen + 1 &&
		    prm[i].value[-1] == '=');
		check(prm[i].valuelen > 0 && prm[i].value + prm[i].valuelen <= s + len);
		for (k = 0; k < prm[i].valuelen; k++) {
			unsigned char c = (unsigned char)prm[i].value[k];

			check(c >= 33 && c <= 126 && c != '=');
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_path p, q;
	const char *s, *rest = NULL, *rest2 = NULL, *why = NULL;
	char buf[SMTP_PATH_MAX + 1], abuf[SMTP_PATH_MAX + 1];
	enum smtp_path_status st;
	int allow_null, allow_postmaster, n, m, u8 = 0;

	if (size < 1)
		return 0;
	allow_null = data[0] & 1;
	allow_postmaster = (data[0] >> 1) & 1;
	s = (const char *)data + 1;
	size--;

	st = smtp_path_parse(s, size, allow_null, allow_postmaster, &p, &rest, &why);
	check(why != NULL);
	check(rest >= s && rest <= s + size);
	if (st != SMTP_PATH_OK) {
		check(st == SMTP_PATH_SYNTAX || st == SMTP_PATH_TOO_LONG ||
		    st == SMTP_PATH_8BIT || st == SMTP_PATH_NULL_NOT_ALLOWED);
		check(!allow_null || st != SMTP_PATH_NULL_NOT_ALLOWED);
		return 0;
	}

	/* the result obeys the contract */
	check(rest - s >= 2 && rest - s <= SMTP_PATH_MAX && s[0] == '<' && rest[-1] == '>');
	check_chars(p.local, SMTP_LOCAL_MAX, &u8);
	check_chars(p.domain, SMTP_DOMAIN_MAX, &u8);
	/* utf8 is set exactly when the kept address holds non-ASCII, and then the path is
	 * well-formed UTF-8 from '<' to '>' */
	check(p.utf8 == u8);
	check(utf8_text_ok(s, (size_t)(rest - s), 0, NULL));
	if (p.is_null) {
		check(allow_null && rest - s == 2);
		check(p.local[0] == '\0' && p.domain[0] == '\0');
		check(!p.is_postmaster && !p.quoted && !p.has_route && !p.is_literal);
	} else if (p.is_postmaster) {
		check(allow_postmaster && strcasecmp(p.local, "postmaster") == 0);
		check(p.domain[0] == '\0' && !p.quoted && !p.has_route && !p.is_literal);
	} else {
		check(p.local[0] != '\0' && p.domain[0] != '\0');
		check(p.is_literal == (p.domain[0] == '['));
		check(!p.has_route || s[1] == '@');
		check(strlen(p.local) + 1 + strlen(p.domain) + 2 <= (size_t)(rest - s));
	}

	/* format -> parse gives the same path; the formatted form is never longer */
	n = smtp_path_format(&p, buf, sizeof(buf));
	check(n >= 2 && (size_t)n == strlen(buf) && n <= rest - s);
	memset(&q, 0x55, sizeof(q));
	st = smtp_path_parse(buf, (size_t)n, allow_null, allow_postmaster, &q, &rest2, &why);
	check(st == SMTP_PATH_OK && rest2 == buf + n);
	check(strcmp(p.local, q.local) == 0 && strcmp(p.domain, q.domain) == 0);
	check(p.utf8 == q.utf8);
	check(p.is_null == q.is_null && p.is_postmaster == q.is_postmaster &&
	    p.is_literal == q.is_literal && !q.has_route);
	/* format is a fixed point */
	m = smtp_path_format(&q, abuf, sizeof(abuf));
	check(m == n && strcmp(abuf, buf) == 0);
	/* addr is format without the brackets */
	m = smtp_path_addr(&p, abuf, sizeof(abuf));
	check(m == n - 2 && memcmp(abuf, buf + 1, (size_t)m) == 0 && abuf[m] == '\0');
	/* too small a buffer is refused */
	check(smtp_path_format(&p, abuf, (size_t)n) == -1);

	check_params(rest, size - (size_t)(rest - s));
	return 0;
}
