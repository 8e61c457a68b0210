/* Unit tests for src/deliver/tlsa.c. */
#include <stdlib.h>

#include "t.h"
#include "deliver/tlsa.h"

static struct tlsa_answer a;
static char why[200];

/* A response for _25._tcp.mx.test: header flags byte 3 = f3, then answers as given. */
static size_t build(unsigned char *b, unsigned f3, unsigned an, const unsigned char *ans, size_t al)
{
	static const unsigned char q[] = "\x03_25\x04_tcp\x02mx\x04test\x00\x00\x34\x00\x01";
	size_t n = 0;

	b[n++] = 0x12; b[n++] = 0x34; b[n++] = 0x81; b[n++] = (unsigned char)f3;
	b[n++] = 0; b[n++] = 1; b[n++] = 0; b[n++] = (unsigned char)an;
	b[n++] = 0; b[n++] = 0; b[n++] = 0; b[n++] = 0;
	memcpy(b + n, q, sizeof(q) - 1);
	n += sizeof(q) - 1;
	if (al > 0)
		memcpy(b + n, ans, al);
	return n + al;
}

/* one answer: pointer to the question name, type, class IN, ttl, rdata */
static size_t rr(unsigned char *b, unsigned type, const unsigned char *rd, size_t rl)
{
	size_t n = 0;

	b[n++] = 0xc0; b[n++] = 0x0c;
	b[n++] = (unsigned char)(type >> 8); b[n++] = (unsigned char)type;
	b[n++] = 0; b[n++] = 1;
	b[n++] = 0; b[n++] = 0; b[n++] = 1; b[n++] = 0x2c;
	b[n++] = (unsigned char)(rl >> 8); b[n++] = (unsigned char)rl;
	memcpy(b + n, rd, rl);
	return n + rl;
}

TEST(authenticated_records_are_kept_with_the_ad_bit)
{
	unsigned char rd[35] = { 3, 1, 1 }, ans[200], b[400];
	size_t al = 0, n;

	for (int i = 0; i < 32; i++)
		rd[3 + i] = (unsigned char)i;
	al += rr(ans + al, 5, (const unsigned char *)"\x02mx\x00", 4);	/* a CNAME: skipped */
	al += rr(ans + al, 52, rd, sizeof(rd));
	n = build(b, 0xa0, 2, ans, al);
	CHECK(tlsa_parse(b, n, &a, why, sizeof why) == 0);
	CHECK(a.ad == 1 && a.rcode == 0 && a.n == 1);
	CHECK(a.rr[0].usage == 3 && a.rr[0].selector == 1 && a.rr[0].mtype == 1);
	CHECK(a.rr[0].len == 32 && a.rr[0].data[31] == 31);
	CHECK(tlsa_usable(&a.rr[0]));
	char s[80];
	tlsa_str(&a.rr[0], s, sizeof s);
	CHECK_STR(s, "3 1 1 0001020304050607…");
}

TEST(nxdomain_and_insecure_answers_are_reported_as_such)
{
	unsigned char b[100];
	size_t n = build(b, 0xa3, 0, NULL, 0);

	CHECK(tlsa_parse(b, n, &a, why, sizeof why) == 0);
	CHECK(a.ad == 1 && a.rcode == 3 && a.n == 0);
	n = build(b, 0x80, 0, NULL, 0);
	CHECK(tlsa_parse(b, n, &a, why, sizeof why) == 0);
	CHECK(a.ad == 0 && a.rcode == 0);
}

TEST(usability_follows_rfc_7672)
{
	struct tlsa_rr r = { .usage = 1, .selector = 1, .mtype = 1, .len = 32 };

	CHECK(!tlsa_usable(&r));		/* PKIX-EE: not for SMTP */
	r.usage = 2;
	CHECK(tlsa_usable(&r));
	r.len = 31;
	CHECK(!tlsa_usable(&r));		/* SHA-256 is 32 bytes */
	r.mtype = 2; r.len = 64;
	CHECK(tlsa_usable(&r));
	r.selector = 2;
	CHECK(!tlsa_usable(&r));
	r.selector = 0; r.mtype = 0; r.len = 0;
	CHECK(!tlsa_usable(&r));
}

TEST(malformed_responses_have_precise_errors)
{
	unsigned char b[400] = { 0 }, ans[100], rd[2] = { 3, 1 };
	size_t n;

	CHECK(tlsa_parse(b, 5, &a, why, sizeof why) == -1);
	CHECK_STR(why, "DNS response shorter than its header (5 bytes)");
	n = build(b, 0xa0, 1, ans, rr(ans, 52, rd, sizeof rd));
	CHECK(tlsa_parse(b, n, &a, why, sizeof why) == -1);
	CHECK_STR(why, "TLSA record 1 has 2 bytes of data (at least 3)");
	n = build(b, 0xa0, 1, ans, rr(ans, 52, rd, sizeof rd));
	CHECK(tlsa_parse(b, n - 1, &a, why, sizeof why) == -1);
	CHECK_STR(why, "truncated answer record 1");
	n = build(b, 0xa0, 2, ans, rr(ans, 52, (const unsigned char *)"\x03\x01\x01", 3));
	CHECK(tlsa_parse(b, n, &a, why, sizeof why) == -1);
	CHECK_STR(why, "malformed answer record 2");
	n = build(b, 0xa0, 0, NULL, 0);
	b[2] = 0x83;
	CHECK(tlsa_parse(b, n, &a, why, sizeof why) == -1);
	CHECK_STR(why, "DNS response truncated (TC)");
	/* a compression pointer to itself */
	n = build(b, 0xa0, 0, NULL, 0);
	b[12] = 0xc0; b[13] = 12;
	CHECK(tlsa_parse(b, n, &a, why, sizeof why) == -1);
	CHECK_STR(why, "malformed question section");
}

TEST(too_many_records_is_an_error_not_a_cut)
{
	unsigned char ans[2000], b[2200], rd[3] = { 3, 1, 1 };
	size_t al = 0, n;

	for (int i = 0; i <= TLSA_MAX_RRS; i++)
		al += rr(ans + al, 52, rd, sizeof rd);
	n = build(b, 0xa0, TLSA_MAX_RRS + 1, ans, al);
	CHECK(tlsa_parse(b, n, &a, why, sizeof why) == -1);
	CHECK_STR(why, "more than 16 TLSA records");
}

int main(void)
{
	RUN(authenticated_records_are_kept_with_the_ad_bit);
	RUN(nxdomain_and_insecure_answers_are_reported_as_such);
	RUN(usability_follows_rfc_7672);
	RUN(malformed_responses_have_precise_errors);
	RUN(too_many_records_is_an_error_not_a_cut);
	T_EXIT();
}
