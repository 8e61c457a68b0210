/* Unit tests for src/proto/smtp_body.c: CRLF lines, dot-stuffing and the end of data, both
 * ways, in any fragmentation. */
#include <stdlib.h>

#include "proto/smtp_body.h"
#include "t.h"

struct sink {
	char buf[8192];
	size_t len;
	unsigned toolong;
};

static void
put(void *arg, const char *p, size_t n)
{
	struct sink *k = arg;

	memcpy(k->buf + k->len, p, n);
	k->len += n;
	k->buf[k->len] = '\0';
}

static void
toolong(void *arg)
{
	((struct sink *)arg)->toolong++;
}

/* Encode in whole, with the end; out is NUL-terminated. */
static size_t
enc(const char *in, int stuff, char *out)
{
	struct smtp_body_enc e;
	size_t o;

	smtp_body_enc_init(&e);
	o = smtp_body_encode(&e, in, strlen(in), out, stuff);
	o += smtp_body_encode_end(&e, out + o, stuff);
	out[o] = '\0';
	return o;
}

/* Encode one byte at a time. */
static size_t
enc_bytewise(const char *in, int stuff, char *out)
{
	struct smtp_body_enc e;
	size_t o = 0, n = strlen(in);

	smtp_body_enc_init(&e);
	for (size_t i = 0; i < n; i++)
		o += smtp_body_encode(&e, in + i, 1, out + o, stuff);
	o += smtp_body_encode_end(&e, out + o, stuff);
	out[o] = '\0';
	return o;
}

/* Decode DATA; returns bytes consumed, *end set at the end of data. */
static size_t
dec(const char *in, size_t n, struct sink *k, int *end, size_t step)
{
	struct smtp_body_dec d;
	size_t used = 0;

	memset(k, 0, sizeof(*k));
	smtp_body_dec_init(&d, 1, 998, put, toolong, k);
	*end = 0;
	while (used < n && !*end) {
		size_t len = step && n - used > step ? step : n - used;
		used += smtp_body_decode(&d, in + used, len, end);
	}
	return used;
}

TEST(encoding_makes_every_line_end_crlf_and_stuffs_leading_dots)
{
	char out[256];

	enc("a\nb\r\nc\rd", 1, out);
	CHECK_STR(out, "a\r\nb\r\nc\r\nd\r\n.\r\n");
	enc(".hidden\n..two\nx.y\n", 1, out);
	CHECK_STR(out, "..hidden\r\n...two\r\nx.y\r\n.\r\n");
	enc("", 1, out);
	CHECK_STR(out, ".\r\n");
}

TEST(encoding_never_lets_a_lone_dot_line_end_the_data_early)
{
	char out[256];

	/* the smuggling shapes: each becomes a stuffed dot line, not an end */
	enc("x\n.\nrest\n", 1, out);
	CHECK_STR(out, "x\r\n..\r\nrest\r\n.\r\n");
	enc("x\r.\rrest", 1, out);
	CHECK_STR(out, "x\r\n..\r\nrest\r\n.\r\n");
	enc("x\r\n.\r\nrest\r\n", 1, out);
	CHECK_STR(out, "x\r\n..\r\nrest\r\n.\r\n");
}

TEST(bdat_text_gets_crlf_lines_without_dots)
{
	char out[256];

	enc(".a\nb\r", 0, out);
	CHECK_STR(out, ".a\r\nb\r\n");
	enc("ends\r\n", 0, out);
	CHECK_STR(out, "ends\r\n");
}

TEST(encoding_is_the_same_in_any_fragmentation)
{
	const char *cases[] = { "a\r\nb", "\r\r\n.\r.\n", ".\r", "x\r", "..\r\n\r\n.", "\n\n." };
	char a[256], b[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (int stuff = 0; stuff <= 1; stuff++) {
			enc(cases[i], stuff, a);
			enc_bytewise(cases[i], stuff, b);
			CHECK_STR(a, b);
		}
}

TEST(encoding_worst_case_fits_twice_the_input_plus_two)
{
	struct smtp_body_enc e;
	char in[64], out[2 * 64 + 2];
	size_t o;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = i % 2 ? '.' : '\r';
	smtp_body_enc_init(&e);
	e.cr = 1;	/* a CR pending from the chunk before */
	o = smtp_body_encode(&e, in, sizeof(in), out, 1);
	CHECK(o <= sizeof(out));
}

TEST(decoding_ends_only_at_crlf_dot_crlf_and_unstuffs)
{
	struct sink k;
	int end;
	const char *in = "..one\r\ntwo\r\n.\r\nQUIT\r\n";
	size_t used = dec(in, strlen(in), &k, &end, 0);

	CHECK(end);
	CHECK(used == strlen(in) - strlen("QUIT\r\n"));
	CHECK_STR(k.buf, ".one\r\ntwo\r\n");
}

TEST(bare_lf_dot_sequences_never_end_the_data)
{
	struct sink k;
	int end;
	const char *in = "a\n.\nb\r\n.\rc\n.\r\nd\r\n.\r\n";
	size_t used = dec(in, strlen(in), &k, &end, 0);

	CHECK(end);
	CHECK(used == strlen(in));
	/* "\n.\n" keeps its dot line; ".\r" then 'c' is a stuffed dot and a bare CR;
	 * "\n.\r\n" after a bare LF is a line holding a dot */
	CHECK_STR(k.buf, "a\r\n.\r\nb\r\n\rc\r\n.\r\nd\r\n");
}

TEST(decoding_is_the_same_byte_by_byte)
{
	const char *in = "x\r\r\n..\r\n.a\n.\n\r.\r\n.\r\n";
	struct sink a, b;
	int ea, eb;
	size_t ua = dec(in, strlen(in), &a, &ea, 0), ub = dec(in, strlen(in), &b, &eb, 1);

	CHECK(ea && eb);
	CHECK(ua == ub);
	CHECK_STR(a.buf, b.buf);
}

TEST(a_line_past_the_limit_is_reported_and_decoding_goes_on)
{
	struct sink k;
	int end;
	char *in = malloc(3000);
	size_t n = 0;

	memset(in, 'x', 998);
	n = 998;
	memcpy(in + n, "\r\n", 2);
	n += 2;
	memset(in + n, 'y', 999);
	n += 999;
	memcpy(in + n, "\r\n.\r\n", 5);
	n += 5;
	dec(in, n, &k, &end, 7);
	CHECK(end);
	CHECK(k.toolong > 0);
	CHECK(k.len == n - 3);
	free(in);

	in = malloc(1100);
	memset(in, 'x', 998);
	memcpy(in + 998, "\r\n.\r\n", 5);
	dec(in, 1003, &k, &end, 0);
	CHECK(end);
	CHECK(k.toolong == 0);	/* 998 octets and CRLF: exactly the limit */
	free(in);
}

TEST(bdat_text_decoding_keeps_dots_and_finishes_the_last_line)
{
	struct smtp_body_dec d;
	struct sink k;
	int end;

	memset(&k, 0, sizeof(k));
	smtp_body_dec_init(&d, 0, 998, put, toolong, &k);
	CHECK(smtp_body_decode(&d, ".\r\n.\nx\r", 7, &end) == 7);
	CHECK(!end);
	smtp_body_decode_finish(&d);
	CHECK_STR(k.buf, ".\r\n.\r\nx\r\n");

	memset(&k, 0, sizeof(k));
	smtp_body_dec_init(&d, 0, 998, put, toolong, &k);
	smtp_body_decode(&d, "a\r\n", 3, &end);
	smtp_body_decode_finish(&d);
	CHECK_STR(k.buf, "a\r\n");		/* nothing added after a complete line */

	memset(&k, 0, sizeof(k));
	smtp_body_dec_init(&d, 0, 998, put, toolong, &k);
	smtp_body_decode(&d, "a\rb", 3, &end);
	smtp_body_decode_finish(&d);
	CHECK_STR(k.buf, "a\rb\r\n");		/* a bare CR inside is content */
}

TEST(what_is_encoded_decodes_to_its_end_and_no_further)
{
	const char *cases[] = { "a\n.\nb", ".\r\n.\r\n", "\r\r.\r", "x\r\n.", "" };
	char wire[256];
	struct sink k;
	int end;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = enc(cases[i], 1, wire);
		CHECK(dec(wire, n, &k, &end, 0) == n);
		CHECK(end);
	}
}

int
main(void)
{
	RUN(encoding_makes_every_line_end_crlf_and_stuffs_leading_dots);
	RUN(encoding_never_lets_a_lone_dot_line_end_the_data_early);
	RUN(bdat_text_gets_crlf_lines_without_dots);
	RUN(encoding_is_the_same_in_any_fragmentation);
	RUN(encoding_worst_case_fits_twice_the_input_plus_two);
	RUN(decoding_ends_only_at_crlf_dot_crlf_and_unstuffs);
	RUN(bare_lf_dot_sequences_never_end_the_data);
	RUN(decoding_is_the_same_byte_by_byte);
	RUN(a_line_past_the_limit_is_reported_and_decoding_goes_on);
	RUN(bdat_text_decoding_keeps_dots_and_finishes_the_last_line);
	RUN(what_is_encoded_decodes_to_its_end_and_no_further);
	T_EXIT();
}
