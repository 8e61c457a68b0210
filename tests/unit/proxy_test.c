/* proxy_test — PROXY protocol v1 and v2 headers. */
#include <string.h>
#include <sys/socket.h>

#include "proto/proxy.h"
#include "t.h"

static struct proxy_hdr h;
static const char *why;

static int
P(const void *buf, size_t len)
{
	return proxy_parse(buf, len, &h, &why);
}

static int
PS(const char *s)
{
	return P(s, strlen(s));
}

static const char *
A(const struct netaddr *a)
{
	static char buf[2][64];
	static int k;

	k ^= 1;
	return netaddr_str(a, buf[k], sizeof(buf[k]));
}

TEST(v1_tcp4)
{
	const char *s = "PROXY TCP4 192.0.2.7 198.51.100.10 56324 25\r\nEHLO x\r\n";
	CHECK(PS(s) == (int)strlen("PROXY TCP4 192.0.2.7 198.51.100.10 56324 25\r\n"));
	CHECK(h.version == 1 && h.has_addr);
	CHECK_STR(A(&h.src), "192.0.2.7");
	CHECK_STR(A(&h.dst), "198.51.100.10");
	CHECK(h.sport == 56324 && h.dport == 25);
}

TEST(v1_tcp6_and_unknown)
{
	CHECK(PS("PROXY TCP6 2001:db8::7 2001:db8::10 4000 587\r\n") > 0);
	CHECK(h.src.family == AF_INET6 && h.dport == 587);
	CHECK_STR(A(&h.dst), "2001:db8::10");
	CHECK(PS("PROXY UNKNOWN\r\n") == 15);
	CHECK(!h.has_addr);
	CHECK(PS("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n") > 0 && !h.has_addr);
}

TEST(v1_incomplete_waits)
{
	CHECK(PS("PROX") == 0);
	CHECK(PS("PROXY TCP4 192.0.2.7 198.51.") == 0);
	CHECK(PS("PROXY TCP4 192.0.2.7 198.51.100.10 1 2\r") == 0);
}

TEST(v1_malformed)
{
	CHECK(PS("EHLO client\r\n") == -1);
	CHECK(PS("PROXY TCP4 192.0.2.7 198.51.100.10 1\r\n") == -1);		/* a port missing */
	CHECK(PS("PROXY TCP4 2001:db8::1 198.51.100.10 1 2\r\n") == -1);	/* family */
	CHECK(PS("PROXY TCP6 192.0.2.7 2001:db8::1 1 2\r\n") == -1);
	CHECK(PS("PROXY TCP4 192.0.2.7 198.51.100.10 65536 25\r\n") == -1);
	CHECK(PS("PROXY TCP4 192.0.2.7 198.51.100.10 025 25\r\n") == -1);
	CHECK(PS("PROXY TCP4 192.0.2.7  198.51.100.10 1 25\r\n") == -1);	/* two spaces */
	CHECK(PS("PROXY UDP4 192.0.2.7 198.51.100.10 1 25\r\n") == -1);
	CHECK(PS("PROXY TCP4 192.0.2.7 198.51.100.10 1 25\n") == -1);	/* bare LF */
	CHECK(PS("PROXY TCP4 192.0.2.7 198.51.100.10 1 25 junk\r\n") == -1);	/* 7 fields */
	CHECK(PS("PROXY TCP4 192.0.2.7 198.51.100.10 1 25 \r\n") == -1);	/* trailing space */
	char longline[200];
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "PROXY ", 6);
	CHECK(P(longline, sizeof(longline)) == -1);
	CHECK(why != NULL && why[0] != '\0');
}

static size_t
v2(unsigned char *b, unsigned cmd, unsigned fam, const unsigned char *addr, unsigned alen)
{
	static const unsigned char sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51,
	    0x55, 0x49, 0x54, 0x0a };
	memcpy(b, sig, 12);
	b[12] = (unsigned char)(0x20 | cmd);
	b[13] = (unsigned char)fam;
	b[14] = (unsigned char)(alen >> 8);
	b[15] = (unsigned char)alen;
	memcpy(b + 16, addr, alen);
	return 16 + alen;
}

TEST(v2_ipv4_with_tlv)
{
	unsigned char b[128], a[12 + 7] = { 192, 0, 2, 7, 198, 51, 100, 10, 0xdc, 0x04, 0, 25,
	    0x05, 0x00, 0x04, 'a', 'b', 'c', 'd' };	/* PP2_TYPE_UNIQUE_ID TLV */
	size_t n = v2(b, 1, 0x11, a, sizeof(a));
	CHECK(P(b, n) == (int)n);
	CHECK(h.version == 2 && h.has_addr);
	CHECK_STR(A(&h.src), "192.0.2.7");
	CHECK_STR(A(&h.dst), "198.51.100.10");
	CHECK(h.sport == 0xdc04 && h.dport == 25);
	for (size_t k = 0; k < n; k++)
		CHECK(P(b, k) == 0);		/* every prefix: wait for more */
}

TEST(v2_ipv6_local_and_unspec)
{
	unsigned char b[128], a[36] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 7,
	    [16] = 0x20, 0x01, 0x0d, 0xb8, [31] = 0x10, [32] = 1, 2, 0, 25 };
	size_t n = v2(b, 1, 0x21, a, sizeof(a));
	CHECK(P(b, n) == (int)n);
	CHECK_STR(A(&h.src), "2001:db8::7");
	CHECK_STR(A(&h.dst), "2001:db8::10");
	n = v2(b, 0, 0x00, a, 0);			/* LOCAL: a health check */
	CHECK(P(b, n) == 16 && !h.has_addr);
	n = v2(b, 1, 0x00, a, 0);			/* PROXY UNSPEC */
	CHECK(P(b, n) == 16 && !h.has_addr);
}

TEST(v2_malformed)
{
	unsigned char b[128], a[12] = { 0 };
	size_t n = v2(b, 1, 0x11, a, 8);		/* too short for IPv4 */
	CHECK(P(b, n) == -1);
	n = v2(b, 2, 0x11, a, 12);			/* command 2 */
	CHECK(P(b, n) == -1);
	n = v2(b, 1, 0x11, a, 12);
	b[12] = 0x11;					/* version 1 in a v2 signature */
	CHECK(P(b, n) == -1);
	n = v2(b, 1, 0x11, a, 0);
	b[14] = 0xff;					/* 65 KiB of TLVs */
	CHECK(P(b, n) == -1);
}

int
main(void)
{
	RUN(v1_tcp4);
	RUN(v1_tcp6_and_unknown);
	RUN(v1_incomplete_waits);
	RUN(v1_malformed);
	RUN(v2_ipv4_with_tlv);
	RUN(v2_ipv6_local_and_unspec);
	RUN(v2_malformed);
	T_EXIT();
}
