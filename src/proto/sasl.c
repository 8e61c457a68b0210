/*
 * sasl — base64 and the PLAIN / LOGIN messages of SMTP AUTH (contract in sasl.h).
 *
 * Bytes are classified by hand (no <ctype.h>), so the locale cannot change anything.
 */
#include "proto/sasl.h"

#include <stdint.h>
#include <string.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of a base64 character, or -1. */
static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode strict base64; see sasl.h. */
int sasl_b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap,
    size_t *outlen)
{
	size_t i, o = 0, pad = 0, need;

	*outlen = 0;
	if (inlen % 4 != 0)
		return -1;
	if (inlen == 0)
		return 0;
	if (in[inlen - 1] == '=') {
		pad = 1;
		if (in[inlen - 2] == '=')
			pad = 2;
	}
	need = inlen / 4 * 3 - pad;
	if (need > outcap)
		return -1;
	for (i = 0; i < inlen; i += 4) {
		int v[4];
		uint32_t w;
		size_t k, valid = (i + 4 == inlen) ? 4 - pad : 4;

		for (k = 0; k < valid; k++) {
			v[k] = b64_val((unsigned char)in[i + k]);
			if (v[k] < 0)
				return -1;
		}
		for (; k < 4; k++)
			v[k] = 0;
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		    (uint32_t)v[3];
		if (valid == 2 && (w & 0xffff) != 0)
			return -1;	/* "xx==": the low 4 bits of the 2nd char must be 0 */
		if (valid == 3 && (w & 0xff) != 0)
			return -1;	/* "xxx=": the low 2 bits of the 3rd char must be 0 */
		out[o++] = (unsigned char)(w >> 16);
		if (valid >= 3)
			out[o++] = (unsigned char)(w >> 8);
		if (valid == 4)
			out[o++] = (unsigned char)w;
	}
	*outlen = o;
	return 0;
}

/* Encode as padded base64; see sasl.h. */
int sasl_b64_encode(const unsigned char *in, size_t inlen, char *out, size_t outcap)
{
	size_t i, o = 0, need;

	if (outcap)
		out[0] = '\0';
	if (inlen > (size_t)INT32_MAX / 4 * 3 - 3)
		return -1;
	need = SASL_B64_ENCODED_LEN(inlen);
	if (need + 1 > outcap)
		return -1;
	for (i = 0; i + 3 <= inlen; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = b64_alphabet[w >> 18];
		out[o++] = b64_alphabet[(w >> 12) & 63];
		out[o++] = b64_alphabet[(w >> 6) & 63];
		out[o++] = b64_alphabet[w & 63];
	}
	if (inlen - i == 1) {
		uint32_t w = (uint32_t)in[i] << 16;

		out[o++] = b64_alphabet[w >> 18];
		out[o++] = b64_alphabet[(w >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (inlen - i == 2) {
		uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = b64_alphabet[w >> 18];
		out[o++] = b64_alphabet[(w >> 12) & 63];
		out[o++] = b64_alphabet[(w >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return (int)o;
}

/* 1 when s equals upper (all upper-case ASCII) ignoring ASCII case. */
static int eq_upper(const char *s, const char *upper)
{
	for (; *s && *upper; s++, upper++) {
		char c = *s;

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c != *upper)
			return 0;
	}
	return *s == '\0' && *upper == '\0';
}

/* The mechanism named; see sasl.h. */
enum sasl_mech sasl_mech_parse(const char *name)
{
	if (name == NULL)
		return SASL_UNKNOWN;
	if (eq_upper(name, "PLAIN"))
		return SASL_PLAIN;
	if (eq_upper(name, "LOGIN"))
		return SASL_LOGIN;
	return SASL_UNKNOWN;
}

/* Copy n bytes of src to dst (cap bytes) with a NUL. -1 when it does not fit. */
static int put_field(char *dst, size_t cap, const unsigned char *src, size_t n)
{
	if (dst == NULL)
		return 0;
	if (n >= cap)
		return -1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

/* Split a PLAIN message; see sasl.h. */
int sasl_plain_parse(const unsigned char *msg, size_t len, char *authzid, size_t azcap,
    char *user, size_t ucap, char *pass, size_t pcap)
{
	const unsigned char *n1, *n2;
	size_t azlen, ulen, plen;

	if (authzid && azcap)
		authzid[0] = '\0';
	if (user && ucap)
		user[0] = '\0';
	if (pass && pcap)
		pass[0] = '\0';
	if (msg == NULL || user == NULL || pass == NULL)
		return -1;
	n1 = memchr(msg, '\0', len);
	if (n1 == NULL)
		return -1;
	n2 = memchr(n1 + 1, '\0', len - (size_t)(n1 + 1 - msg));
	if (n2 == NULL)
		return -1;
	azlen = (size_t)(n1 - msg);
	ulen = (size_t)(n2 - (n1 + 1));
	plen = len - (size_t)(n2 + 1 - msg);
	if (memchr(n2 + 1, '\0', plen) != NULL)
		return -1;	/* a third NUL */
	if (ulen == 0 || plen == 0)
		return -1;
	if (azlen > SASL_FIELD_MAX || ulen > SASL_FIELD_MAX || plen > SASL_FIELD_MAX)
		return -1;
	if (put_field(authzid, azcap, msg, azlen) != 0 ||
	    put_field(user, ucap, n1 + 1, ulen) != 0 ||
	    put_field(pass, pcap, n2 + 1, plen) != 0)
		goto fail;
	return 0;
fail:
	if (authzid && azcap)
		authzid[0] = '\0';
	if (ucap)
		user[0] = '\0';
	if (pcap)
		pass[0] = '\0';
	return -1;
}

/* 1 when the line is the "*" that cancels; see sasl.h. */
int sasl_is_cancel(const char *line, size_t len)
{
	if (line == NULL)
		return 0;
	if (len >= 1 && line[len - 1] == '\n') {
		len--;
		if (len >= 1 && line[len - 1] == '\r')
			len--;
	}
	return len == 1 && line[0] == '*';
}
