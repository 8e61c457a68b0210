/* Unit tests for src/util/addr.c. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "t.h"
#include "util/addr.h"

static struct netaddr A(const char *s)
{
	struct netaddr a;

	memset(&a, 0, sizeof a);
	if (netaddr_parse(s, &a) != 0)
		fprintf(stderr, "  (test setup: cannot parse %s)\n", s);
	return a;
}

static int in_net(const char *net, const char *addr)
{
	struct cidr c;
	struct netaddr a = A(addr);

	if (cidr_parse(net, &c) != 0)
		return -1;
	return cidr_match(&c, &a);
}

TEST(parses_v4_and_v6_literals)
{
	struct netaddr a;
	char b[NETADDR_STRLEN];

	CHECK(netaddr_parse("192.0.2.1", &a) == 0);
	CHECK(a.family == AF_INET);
	CHECK_STR(netaddr_str(&a, b, sizeof b), "192.0.2.1");
	CHECK(netaddr_parse("2001:DB8::1", &a) == 0);
	CHECK(a.family == AF_INET6);
	CHECK_STR(netaddr_str(&a, b, sizeof b), "2001:db8::1");
}

TEST(rejects_malformed_literals)
{
	struct netaddr a;

	CHECK(netaddr_parse("", &a) == -1);
	CHECK(netaddr_parse("1.2.3", &a) == -1);
	CHECK(netaddr_parse("1.2.3.256", &a) == -1);
	CHECK(netaddr_parse("[::1]", &a) == -1);
	CHECK(netaddr_parse("example.com", &a) == -1);
	CHECK(netaddr_parse("1.2.3.4 ", &a) == -1);
	CHECK(netaddr_parse(NULL, &a) == -1);
}

TEST(v4_mapped_v6_literal_folds_to_v4)
{
	struct netaddr a;
	char b[NETADDR_STRLEN];

	CHECK(netaddr_parse("::ffff:10.1.2.3", &a) == 0);
	CHECK(a.family == AF_INET);
	CHECK_STR(netaddr_str(&a, b, sizeof b), "10.1.2.3");
	CHECK(netaddr_equal(&a, &(struct netaddr){ 0 }) == 0);
	struct netaddr v4 = A("10.1.2.3");
	CHECK(netaddr_equal(&a, &v4));
}

TEST(sockaddr_round_trip_v4_and_v6)
{
	struct sockaddr_storage ss;
	struct netaddr a = A("192.0.2.7"), b;
	uint16_t port = 0;
	socklen_t sl;

	sl = netaddr_to_sockaddr(&a, 2525, &ss);
	CHECK(sl == sizeof(struct sockaddr_in));
	CHECK(netaddr_from_sockaddr((struct sockaddr *)&ss, &b, &port) == 0);
	CHECK(netaddr_equal(&a, &b));
	CHECK(port == 2525);

	a = A("2001:db8::5");
	sl = netaddr_to_sockaddr(&a, 25, &ss);
	CHECK(sl == sizeof(struct sockaddr_in6));
	CHECK(netaddr_from_sockaddr((struct sockaddr *)&ss, &b, &port) == 0);
	CHECK(b.family == AF_INET6 && netaddr_equal(&a, &b) && port == 25);
}

TEST(sockaddr_v4_mapped_v6_becomes_v4)
{
	struct sockaddr_in6 sin6;
	struct netaddr a;
	uint16_t port = 0;

	memset(&sin6, 0, sizeof sin6);
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(587);
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6.sin6_addr);
	CHECK(netaddr_from_sockaddr((struct sockaddr *)&sin6, &a, &port) == 0);
	CHECK(a.family == AF_INET);
	CHECK(port == 587);
	CHECK(netaddr_is_loopback(&a));
}

TEST(sockaddr_unknown_family_is_refused)
{
	struct sockaddr sa;
	struct netaddr a;

	memset(&sa, 0, sizeof sa);
	sa.sa_family = AF_UNIX;
	CHECK(netaddr_from_sockaddr(&sa, &a, NULL) == -1);
}

TEST(loopback_is_127_slash_8_and_v6_one)
{
	struct netaddr a;

	a = A("127.0.0.1");	CHECK(netaddr_is_loopback(&a));
	a = A("127.255.3.4");	CHECK(netaddr_is_loopback(&a));
	a = A("::1");		CHECK(netaddr_is_loopback(&a));
	a = A("128.0.0.1");	CHECK(!netaddr_is_loopback(&a));
	a = A("10.0.0.1");	CHECK(!netaddr_is_loopback(&a));
	a = A("::2");		CHECK(!netaddr_is_loopback(&a));
	a = A("::");		CHECK(!netaddr_is_loopback(&a));
	a = A("0.0.0.0");	CHECK(!netaddr_is_loopback(&a));
	a = A("::127.0.0.1");	CHECK(!netaddr_is_loopback(&a));	/* v4-compatible, not mapped */
}

TEST(loopback_includes_v4_mapped_v6)
{
	struct netaddr a = A("::ffff:127.0.0.1"), raw;

	CHECK(netaddr_is_loopback(&a));
	a = A("::ffff:127.9.8.7");
	CHECK(netaddr_is_loopback(&a));
	a = A("::ffff:192.0.2.1");
	CHECK(!netaddr_is_loopback(&a));

	/* even one built by hand without folding */
	memset(&raw, 0, sizeof raw);
	raw.family = AF_INET6;
	raw.a[10] = raw.a[11] = 0xff;
	raw.a[12] = 127;
	raw.a[15] = 1;
	CHECK(netaddr_is_loopback(&raw));
}

TEST(any_address_is_detected)
{
	struct netaddr a;

	a = A("0.0.0.0");	CHECK(netaddr_is_any(&a));
	a = A("::");		CHECK(netaddr_is_any(&a));
	a = A("0.0.0.1");	CHECK(!netaddr_is_any(&a));
	a = A("::1");		CHECK(!netaddr_is_any(&a));
}

TEST(equal_compares_family_and_bytes)
{
	struct netaddr x = A("10.0.0.1"), y = A("10.0.0.1"), z = A("10.0.0.2"), w = A("::a00:1");

	CHECK(netaddr_equal(&x, &y));
	CHECK(!netaddr_equal(&x, &z));
	CHECK(!netaddr_equal(&x, &w));
}

TEST(cidr_v4_matches_inside_and_not_outside)
{
	CHECK(in_net("10.0.0.0/8", "10.200.3.4") == 1);
	CHECK(in_net("10.0.0.0/8", "11.0.0.0") == 0);
	CHECK(in_net("192.168.1.0/24", "192.168.1.255") == 1);
	CHECK(in_net("192.168.1.0/24", "192.168.2.0") == 0);
	CHECK(in_net("192.168.1.128/25", "192.168.1.127") == 0);
	CHECK(in_net("192.168.1.128/25", "192.168.1.129") == 1);
	CHECK(in_net("0.0.0.0/0", "203.0.113.9") == 1);
	CHECK(in_net("203.0.113.9", "203.0.113.9") == 1);
	CHECK(in_net("203.0.113.9", "203.0.113.8") == 0);
	CHECK(in_net("10.0.0.0/8", "::1") == 0);
}

TEST(cidr_v6_matches_inside_and_not_outside)
{
	CHECK(in_net("2001:db8::/32", "2001:db8:ffff::1") == 1);
	CHECK(in_net("2001:db8::/32", "2001:db9::1") == 0);
	CHECK(in_net("2001:db8::/33", "2001:db8:8000::1") == 0);
	CHECK(in_net("::1/128", "::1") == 1);
	CHECK(in_net("::1/128", "127.0.0.1") == 0);
	CHECK(in_net("::/0", "2001:db8::1") == 1);
}

TEST(cidr_v4_matches_v4_mapped_v6_client)
{
	CHECK(in_net("127.0.0.0/8", "::ffff:127.0.0.1") == 1);
	CHECK(in_net("192.0.2.0/24", "::ffff:192.0.2.77") == 1);
	CHECK(in_net("192.0.2.0/24", "::ffff:198.51.100.1") == 0);
}

TEST(cidr_v4_mapped_network_folds_to_v4)
{
	struct cidr c;
	char b[NETADDR_STRLEN];

	CHECK(cidr_parse("::ffff:10.0.0.0/104", &c) == 0);
	CHECK(c.net.family == AF_INET && c.prefix == 8);
	CHECK_STR(netaddr_str(&c.net, b, sizeof b), "10.0.0.0");
	CHECK(in_net("::ffff:10.0.0.0/104", "10.9.9.9") == 1);
	CHECK(in_net("::ffff:0:0/96", "198.51.100.1") == 1);
	/* a v6 network wider than the mapped range still covers v4 clients */
	CHECK(in_net("::/0", "198.51.100.1") == 1);
	CHECK(in_net("2001:db8::/32", "198.51.100.1") == 0);
}

TEST(cidr_clears_host_bits)
{
	struct cidr c;
	char b[NETADDR_STRLEN];

	CHECK(cidr_parse("10.1.2.3/8", &c) == 0);
	CHECK_STR(netaddr_str(&c.net, b, sizeof b), "10.0.0.0");
	CHECK(cidr_parse("2001:db8::ff/120", &c) == 0);
	CHECK_STR(netaddr_str(&c.net, b, sizeof b), "2001:db8::");
}

TEST(cidr_rejects_bad_prefixes_and_addresses)
{
	struct cidr c;

	CHECK(cidr_parse("10.0.0.0/33", &c) == -1);
	CHECK(cidr_parse("::/129", &c) == -1);
	CHECK(cidr_parse("10.0.0.0/", &c) == -1);
	CHECK(cidr_parse("10.0.0.0/-1", &c) == -1);
	CHECK(cidr_parse("10.0.0.0/8x", &c) == -1);
	CHECK(cidr_parse("10.0.0.0/0008", &c) == -1);
	CHECK(cidr_parse("/8", &c) == -1);
	CHECK(cidr_parse("example.com/8", &c) == -1);
	CHECK(cidr_parse("", &c) == -1);
	CHECK(cidr_parse("1.2.3.4/8/8", &c) == -1);
}

TEST(hostport_accepts_documented_forms)
{
	struct hostport hp;
	char b[NETADDR_STRLEN];

	CHECK(hostport_parse("1.2.3.4:25", &hp) == 0);
	CHECK_STR(hostport_str(&hp, b, sizeof b), "1.2.3.4:25");
	CHECK(hostport_parse("[::1]:25", &hp) == 0);
	CHECK(hp.addr.family == AF_INET6 && hp.port == 25);
	CHECK_STR(hostport_str(&hp, b, sizeof b), "[::1]:25");
	CHECK(hostport_parse("[::]:587", &hp) == 0);
	CHECK(netaddr_is_any(&hp.addr) && hp.addr.family == AF_INET6);
	CHECK(hostport_parse("*:25", &hp) == 0);
	CHECK(hp.addr.family == AF_INET && netaddr_is_any(&hp.addr) && hp.port == 25);
	CHECK_STR(hostport_str(&hp, b, sizeof b), "0.0.0.0:25");
	CHECK(hostport_parse("0.0.0.0:65535", &hp) == 0);
	CHECK(hp.port == 65535);
	CHECK(hostport_parse("[::ffff:192.0.2.1]:465", &hp) == 0);
	CHECK(hp.addr.family == AF_INET);
	CHECK_STR(hostport_str(&hp, b, sizeof b), "192.0.2.1:465");
}

TEST(hostport_requires_port_1_to_65535)
{
	struct hostport hp;

	CHECK(hostport_parse("1.2.3.4", &hp) == -1);
	CHECK(hostport_parse("1.2.3.4:", &hp) == -1);
	CHECK(hostport_parse("1.2.3.4:0", &hp) == -1);
	CHECK(hostport_parse("1.2.3.4:65536", &hp) == -1);
	CHECK(hostport_parse("1.2.3.4:999999", &hp) == -1);
	CHECK(hostport_parse("1.2.3.4:-1", &hp) == -1);
	CHECK(hostport_parse("1.2.3.4:+25", &hp) == -1);
	CHECK(hostport_parse("1.2.3.4:25x", &hp) == -1);
	CHECK(hostport_parse("[::1]", &hp) == -1);
	CHECK(hostport_parse("[::1]:", &hp) == -1);
}

TEST(hostport_rejects_malformed_hosts)
{
	struct hostport hp;

	CHECK(hostport_parse("::1:25", &hp) == -1);	/* v6 needs brackets */
	CHECK(hostport_parse("[::1:25", &hp) == -1);
	CHECK(hostport_parse(":25", &hp) == -1);
	CHECK(hostport_parse("[]:25", &hp) == -1);
	CHECK(hostport_parse("[*]:25", &hp) == -1);
	CHECK(hostport_parse("localhost:25", &hp) == -1);
	CHECK(hostport_parse("", &hp) == -1);
	CHECK(hostport_parse(NULL, &hp) == -1);
}

TEST(str_functions_handle_small_buffers)
{
	struct netaddr a = A("2001:db8::1");
	struct hostport hp = { .addr = a, .port = 25 };
	char b[6];

	netaddr_str(&a, b, sizeof b);
	CHECK(strlen(b) < sizeof b);
	hostport_str(&hp, b, sizeof b);
	CHECK(strlen(b) < sizeof b);
}

int main(void)
{
	RUN(parses_v4_and_v6_literals);
	RUN(rejects_malformed_literals);
	RUN(v4_mapped_v6_literal_folds_to_v4);
	RUN(sockaddr_round_trip_v4_and_v6);
	RUN(sockaddr_v4_mapped_v6_becomes_v4);
	RUN(sockaddr_unknown_family_is_refused);
	RUN(loopback_is_127_slash_8_and_v6_one);
	RUN(loopback_includes_v4_mapped_v6);
	RUN(any_address_is_detected);
	RUN(equal_compares_family_and_bytes);
	RUN(cidr_v4_matches_inside_and_not_outside);
	RUN(cidr_v6_matches_inside_and_not_outside);
	RUN(cidr_v4_matches_v4_mapped_v6_client);
	RUN(cidr_v4_mapped_network_folds_to_v4);
	RUN(cidr_clears_host_bits);
	RUN(cidr_rejects_bad_prefixes_and_addresses);
	RUN(hostport_accepts_documented_forms);
	RUN(hostport_requires_port_1_to_65535);
	RUN(hostport_rejects_malformed_hosts);
	RUN(str_functions_handle_small_buffers);
	T_EXIT();
}
