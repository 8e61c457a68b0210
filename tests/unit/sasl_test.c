/* Unit tests for src/proto/sasl.c. */
#include <stdlib.h>

#include "t.h"
#include "proto/sasl.h"

/* 1 when in (NUL-terminated) decodes to exactly want (wantlen bytes). */
static int decodes_to(const char *in, const char *want, size_t wantlen)
{
	unsigned char out[256];
	size_t n = 999;

	if (sasl_b64_decode(in, strlen(in), out, sizeof out, &n) != 0) {
		fprintf(stderr, "  \"%s\" did not decode\n", in);
		return 0;
	}
	return n == wantlen && memcmp(out, want, n) == 0;
}

/* 1 when in is refused. */
static int refused(const char *in)
{
	unsigned char out[256];
	size_t n = 999;

	if (sasl_b64_decode(in, strlen(in), out, sizeof out, &n) == 0) {
		fprintf(stderr, "  \"%s\" decoded to %zu bytes\n", in, n);
		return 0;
	}
	return n == 0;
}

TEST(b64_decodes_rfc4648_test_vectors)
{
	CHECK(decodes_to("", "", 0));
	CHECK(decodes_to("Zg==", "f", 1));
	CHECK(decodes_to("Zm8=", "fo", 2));
	CHECK(decodes_to("Zm9v", "foo", 3));
	CHECK(decodes_to("Zm9vYg==", "foob", 4));
	CHECK(decodes_to("Zm9vYmE=", "fooba", 5));
	CHECK(decodes_to("Zm9vYmFy", "foobar", 6));
	CHECK(decodes_to("AGFsaWNlAHNlY3JldA==", "\0alice\0secret", 13));
	CHECK(decodes_to("+/+/", "\xfb\xff\xbf", 3));
}

TEST(b64_encodes_rfc4648_test_vectors)
{
	char out[64];

	CHECK(sasl_b64_encode((const unsigned char *)"", 0, out, sizeof out) == 0);
	CHECK_STR(out, "");
	CHECK(sasl_b64_encode((const unsigned char *)"f", 1, out, sizeof out) == 4);
	CHECK_STR(out, "Zg==");
	CHECK(sasl_b64_encode((const unsigned char *)"fo", 2, out, sizeof out) == 4);
	CHECK_STR(out, "Zm8=");
	CHECK(sasl_b64_encode((const unsigned char *)"foobar", 6, out, sizeof out) == 8);
	CHECK_STR(out, "Zm9vYmFy");
	CHECK(sasl_b64_encode((const unsigned char *)"Username:", 9, out, sizeof out) == 12);
	CHECK_STR(out, SASL_LOGIN_PROMPT_USER);
}

TEST(b64_round_trips_every_length_from_0_to_64)
{
	unsigned char data[64], back[64];
	char text[SASL_B64_ENCODED_LEN(64) + 1];

	for (size_t len = 0; len <= 64; len++) {
		for (int seed = 0; seed < 4; seed++) {
			size_t n = 999;
			int tl;

			for (size_t i = 0; i < len; i++)
				data[i] = (unsigned char)(seed == 0 ? 0 : seed == 1 ? 0xff :
				    (i * 37 + len * 11 + (size_t)seed) & 0xff);
			tl = sasl_b64_encode(data, len, text, sizeof text);
			CHECK(tl >= 0 && (size_t)tl == SASL_B64_ENCODED_LEN(len));
			CHECK(tl >= 0 && strlen(text) == (size_t)tl);
			CHECK(sasl_b64_decode(text, (size_t)(tl < 0 ? 0 : tl), back, sizeof back,
			    &n) == 0);
			CHECK(n == len && memcmp(back, data, len) == 0);
		}
	}
}

TEST(b64_refuses_missing_padding_and_bad_lengths)
{
	CHECK(refused("Zg"));
	CHECK(refused("Zg="));
	CHECK(refused("Zm8"));
	CHECK(refused("Zm9vY"));
	CHECK(refused("="));
	CHECK(refused("=="));
	CHECK(refused("===="));
	CHECK(refused("Z==="));
}

TEST(b64_refuses_whitespace_and_foreign_characters)
{
	CHECK(refused("Zm9v Yg=="));
	CHECK(refused(" Zm9vYg=="));
	CHECK(refused("Zm9vYg==\r\n"));
	CHECK(refused("Zm9v\nYmFy"));
	CHECK(refused("Zm9-"));	/* base64url alphabet */
	CHECK(refused("Zm9_"));
	CHECK(refused("Zm\x80v"));
	CHECK(refused("Zm*v"));
}

TEST(b64_refuses_padding_in_the_middle)
{
	CHECK(refused("Zg==Zg=="));
	CHECK(refused("Zm8=Zm9v"));
	CHECK(refused("Z=9v"));
	CHECK(refused("Zm=v"));
}

TEST(b64_refuses_non_zero_pad_bits)
{
	CHECK(decodes_to("Zg==", "f", 1));
	CHECK(refused("Zh=="));
	CHECK(refused("Zm9="));
	CHECK(decodes_to("Zm8=", "fo", 2));
}

TEST(b64_decode_refuses_output_that_does_not_fit)
{
	unsigned char out[6];
	size_t n = 999;

	CHECK(sasl_b64_decode("Zm9vYmFy", 8, out, 6, &n) == 0 && n == 6);
	CHECK(sasl_b64_decode("Zm9vYmFy", 8, out, 5, &n) == -1 && n == 0);
	CHECK(sasl_b64_decode("Zm9vYmE=", 8, out, 5, &n) == 0 && n == 5);
	CHECK(sasl_b64_decode("Zg==", 4, out, 0, &n) == -1);
	CHECK(sasl_b64_decode("", 0, NULL, 0, &n) == 0 && n == 0);
}

TEST(b64_encode_refuses_a_small_buffer)
{
	char out[9];

	memset(out, 'x', sizeof out);
	CHECK(sasl_b64_encode((const unsigned char *)"foobar", 6, out, 8) == -1);
	CHECK(out[0] == '\0');
	CHECK(sasl_b64_encode((const unsigned char *)"foobar", 6, out, 9) == 8);
	CHECK(sasl_b64_encode((const unsigned char *)"", 0, out, 0) == -1);
}

TEST(login_prompts_decode_to_username_and_password)
{
	char buf[32];
	size_t n = 0;

	CHECK(sasl_b64_decode(SASL_LOGIN_PROMPT_USER, strlen(SASL_LOGIN_PROMPT_USER),
	    (unsigned char *)buf, sizeof buf - 1, &n) == 0);
	buf[n] = '\0';
	CHECK_STR(buf, "Username:");
	CHECK(sasl_b64_decode(SASL_LOGIN_PROMPT_PASS, strlen(SASL_LOGIN_PROMPT_PASS),
	    (unsigned char *)buf, sizeof buf - 1, &n) == 0);
	buf[n] = '\0';
	CHECK_STR(buf, "Password:");
}

TEST(mech_names_are_case_insensitive)
{
	CHECK(sasl_mech_parse("PLAIN") == SASL_PLAIN);
	CHECK(sasl_mech_parse("plain") == SASL_PLAIN);
	CHECK(sasl_mech_parse("PlAiN") == SASL_PLAIN);
	CHECK(sasl_mech_parse("LOGIN") == SASL_LOGIN);
	CHECK(sasl_mech_parse("login") == SASL_LOGIN);
	CHECK(sasl_mech_parse("CRAM-MD5") == SASL_UNKNOWN);
	CHECK(sasl_mech_parse("PLAINX") == SASL_UNKNOWN);
	CHECK(sasl_mech_parse("PLAI") == SASL_UNKNOWN);
	CHECK(sasl_mech_parse("") == SASL_UNKNOWN);
	CHECK(sasl_mech_parse(NULL) == SASL_UNKNOWN);
}

/* Parse a PLAIN message given as bytes. */
static int plain(const char *msg, size_t len, char *az, char *u, char *p)
{
	return sasl_plain_parse((const unsigned char *)msg, len, az, 256, u, 256, p, 256);
}

TEST(plain_without_authzid)
{
	char az[256] = "x", u[256], p[256];

	CHECK(plain("\0alice\0secret", 13, az, u, p) == 0);
	CHECK_STR(az, "");
	CHECK_STR(u, "alice");
	CHECK_STR(p, "secret");
}

TEST(plain_with_authzid)
{
	char az[256], u[256], p[256];

	CHECK(plain("bob\0alice\0s e c r e t", 21, az, u, p) == 0);
	CHECK_STR(az, "bob");
	CHECK_STR(u, "alice");
	CHECK_STR(p, "s e c r e t");
}

TEST(plain_may_ignore_the_authzid)
{
	char u[256], p[256];

	CHECK(sasl_plain_parse((const unsigned char *)"bob\0alice\0pw", 12, NULL, 0, u, sizeof u,
	    p, sizeof p) == 0);
	CHECK_STR(u, "alice");
	CHECK_STR(p, "pw");
}

TEST(plain_refuses_a_missing_nul)
{
	char az[256], u[256] = "x", p[256] = "x";

	CHECK(plain("alice\0secret", 12, az, u, p) == -1);
	CHECK_STR(u, "");
	CHECK_STR(p, "");
	CHECK(plain("alicesecret", 11, az, u, p) == -1);
	CHECK(plain("", 0, az, u, p) == -1);
}

TEST(plain_refuses_three_nuls)
{
	char az[256], u[256], p[256];

	CHECK(plain("\0alice\0sec\0ret", 14, az, u, p) == -1);
	CHECK(plain("\0alice\0secret\0", 14, az, u, p) == -1);
	CHECK(plain("\0\0\0", 3, az, u, p) == -1);
}

TEST(plain_refuses_empty_user_or_password)
{
	char az[256], u[256], p[256];

	CHECK(plain("\0alice\0", 7, az, u, p) == -1);
	CHECK(plain("\0\0secret", 8, az, u, p) == -1);
	CHECK(plain("bob\0\0secret", 11, az, u, p) == -1);
	CHECK(plain("\0\0", 2, az, u, p) == -1);
}

/* A PLAIN message with fields of the given lengths (filled with 'a', 'u', 'p'). */
static size_t build(unsigned char *m, size_t azlen, size_t ulen, size_t plen)
{
	size_t o = 0;

	memset(m + o, 'a', azlen);
	o += azlen;
	m[o++] = '\0';
	memset(m + o, 'u', ulen);
	o += ulen;
	m[o++] = '\0';
	memset(m + o, 'p', plen);
	o += plen;
	return o;
}

TEST(plain_fields_of_255_bytes_are_accepted_and_256_refused)
{
	static unsigned char m[1024];
	static char az[300], u[300], p[300];
	size_t n;

	n = build(m, 255, 255, 255);
	CHECK(sasl_plain_parse(m, n, az, sizeof az, u, sizeof u, p, sizeof p) == 0);
	CHECK(strlen(az) == 255 && strlen(u) == 255 && strlen(p) == 255);
	n = build(m, 256, 5, 5);
	CHECK(sasl_plain_parse(m, n, az, sizeof az, u, sizeof u, p, sizeof p) == -1);
	n = build(m, 0, 256, 5);
	CHECK(sasl_plain_parse(m, n, az, sizeof az, u, sizeof u, p, sizeof p) == -1);
	n = build(m, 0, 5, 256);
	CHECK(sasl_plain_parse(m, n, az, sizeof az, u, sizeof u, p, sizeof p) == -1);
	CHECK(u[0] == '\0' && p[0] == '\0' && az[0] == '\0');
}

TEST(plain_refuses_fields_that_do_not_fit_the_buffers)
{
	char az[4], u[6], p[7];

	CHECK(sasl_plain_parse((const unsigned char *)"\0alice\0secret", 13, az, sizeof az,
	    u, sizeof u, p, sizeof p) == 0);
	CHECK_STR(u, "alice");
	CHECK_STR(p, "secret");
	CHECK(sasl_plain_parse((const unsigned char *)"\0alice\0secret!", 14, az, sizeof az,
	    u, sizeof u, p, sizeof p) == -1);
	CHECK(u[0] == '\0' && p[0] == '\0');
	CHECK(sasl_plain_parse((const unsigned char *)"\0alice!\0secret", 14, az, sizeof az,
	    u, sizeof u, p, sizeof p) == -1);
	CHECK(sasl_plain_parse((const unsigned char *)"abcd\0alice\0secret", 17, az, sizeof az,
	    u, sizeof u, p, sizeof p) == -1);
	CHECK(sasl_plain_parse((const unsigned char *)"\0alice\0secret", 13, az, sizeof az,
	    u, 0, p, sizeof p) == -1);
}

TEST(plain_round_trips_through_base64)
{
	char text[64], az[256], u[256], p[256];
	unsigned char msg[64];
	size_t n = 0;

	CHECK(sasl_b64_encode((const unsigned char *)"\0tim\0tanstaaftanstaaf", 21, text,
	    sizeof text) > 0);
	CHECK_STR(text, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");	/* RFC 4616 §4 */
	CHECK(sasl_b64_decode(text, strlen(text), msg, sizeof msg, &n) == 0);
	CHECK(sasl_plain_parse(msg, n, az, sizeof az, u, sizeof u, p, sizeof p) == 0);
	CHECK_STR(u, "tim");
	CHECK_STR(p, "tanstaaftanstaaf");
}

TEST(star_cancels_and_nothing_else_does)
{
	CHECK(sasl_is_cancel("*", 1) == 1);
	CHECK(sasl_is_cancel("*\r\n", 3) == 1);
	CHECK(sasl_is_cancel("*\n", 2) == 1);
	CHECK(sasl_is_cancel("", 0) == 0);
	CHECK(sasl_is_cancel("**", 2) == 0);
	CHECK(sasl_is_cancel(" *", 2) == 0);
	CHECK(sasl_is_cancel("* ", 2) == 0);
	CHECK(sasl_is_cancel("Kg==", 4) == 0);
	CHECK(sasl_is_cancel("\r\n", 2) == 0);
	CHECK(sasl_is_cancel(NULL, 0) == 0);
}

int main(void)
{
	RUN(b64_decodes_rfc4648_test_vectors);
	RUN(b64_encodes_rfc4648_test_vectors);
	RUN(b64_round_trips_every_length_from_0_to_64);
	RUN(b64_refuses_missing_padding_and_bad_lengths);
	RUN(b64_refuses_whitespace_and_foreign_characters);
	RUN(b64_refuses_padding_in_the_middle);
	RUN(b64_refuses_non_zero_pad_bits);
	RUN(b64_decode_refuses_output_that_does_not_fit);
	RUN(b64_encode_refuses_a_small_buffer);
	RUN(login_prompts_decode_to_username_and_password);
	RUN(mech_names_are_case_insensitive);
	RUN(plain_without_authzid);
	RUN(plain_with_authzid);
	RUN(plain_may_ignore_the_authzid);
	RUN(plain_refuses_a_missing_nul);
	RUN(plain_refuses_three_nuls);
	RUN(plain_refuses_empty_user_or_password);
	RUN(plain_fields_of_255_bytes_are_accepted_and_256_refused);
	RUN(plain_refuses_fields_that_do_not_fit_the_buffers);
	RUN(plain_round_trips_through_base64);
	RUN(star_cancels_and_nothing_else_does);
	T_EXIT();
}
