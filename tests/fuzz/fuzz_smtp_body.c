/*
 * fuzz_smtp_body — libFuzzer target for proto/smtp_body: the DATA/BDAT decoder the session
 * reads client text with, and the encoder the relay sends with.
 *
 * Byte 0: bit 0 picks DATA (dots) or BDAT text, bits 1-7 the chunk size (+1) the rest is
 * fed in. Checked, abort() on violation:
 *   - decoding in chunks gives the same text and stops at the same byte as in one piece;
 *   - decoded text has no bare LF (every LF is the end of a CRLF);
 *   - the encoder's output, whatever the input, has only CRLF line ends, and decoded as
 *     DATA it ends exactly at its last byte (nothing can end it early: no smuggling), with
 *     the text coming back with every line end as CRLF.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXIN	(64 * 1024)

struct sink {
	char *buf;
	size_t len;
};

static char out1[2 * MAXIN + 16], out2[2 * MAXIN + 16], wire[2 * MAXIN + 16], back[2 * MAXIN + 16];

static void
check(int cond)
{
	if (!cond)
		abort();
}

static void
put(void *arg, const char *p, size_t n)
{
	struct sink *k = arg;

	memcpy(k->buf + k->len, p, n);
	k->len += n;
}

static void
toolong(void *arg)
{
	(void)arg;
}

static size_t
decode(const char *in, size_t n, int dots, size_t step, char *out, size_t *outlen, int *end)
{
	struct smtp_body_dec d;
	struct sink k = { out, 0 };
	size_t used = 0;

	smtp_body_dec_init(&d, dots, 998, put, toolong, &k);
	*end = 0;
	while (used < n && !*end) {
		size_t len = n - used > step ? step : n - used;
		size_t u = smtp_body_decode(&d, in + used, len, end);
		check(u <= len);
		check(*end || u == len);
		used += u;
	}
	if (!dots)
		smtp_body_decode_finish(&d);
	*outlen = k.len;
	return used;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n, l1, l2, u1, u2, wl, bl;
	int dots, e1, e2;
	const char *in;

	if (size < 1 || size - 1 > MAXIN)
		return 0;
	dots = data[0] & 1;
	in = (const char *)data + 1;
	n = size - 1;

	u1 = decode(in, n, dots, n ? n : 1, out1, &l1, &e1);
	u2 = decode(in, n, dots, (size_t)(data[0] >> 1) + 1, out2, &l2, &e2);
	check(u1 == u2 && e1 == e2 && l1 == l2 && memcmp(out1, out2, l1) == 0);
	for (size_t i = 0; i < l1; i++)
		if (out1[i] == '\n')
			check(i > 0 && out1[i - 1] == '\r');

	/* the encoder: what it sends ends where it says, and nowhere before */
	{
		struct smtp_body_enc e;
		size_t step = (size_t)(data[0] >> 1) + 1;

		smtp_body_enc_init(&e);
		wl = 0;
		for (size_t off = 0; off < n; off += step)
			wl += smtp_body_encode(&e, in + off, n - off < step ? n - off : step, wire + wl, 1);
		wl += smtp_body_encode_end(&e, wire + wl, 1);
		for (size_t i = 0; i < wl; i++) {
			if (wire[i] == '\r')
				check(i + 1 < wl && wire[i + 1] == '\n');
			if (wire[i] == '\n')
				check(i > 0 && wire[i - 1] == '\r');
		}
		check(decode(wire, wl, 1, step, back, &bl, &e1) == wl && e1);
		/* the text came back: the input with every line end made CRLF */
		size_t j = 0;
		for (size_t i = 0; i < n; i++) {
			if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
				continue;	/* the LF of this CRLF does it */
			if (in[i] == '\r' || in[i] == '\n') {
				check(j + 2 <= bl && back[j] == '\r' && back[j + 1] == '\n');
				j += 2;
			} else {
				check(j < bl && back[j] == in[i]);
				j++;
			}
		}
		if (n > 0 && in[n - 1] != '\r' && in[n - 1] != '\n')
			j += 2;		/* the CRLF the encoder adds to a last line */
		check(j == bl);
	}
	return 0;
}
