/*
 * addr — network addresses: parse and format, CIDR match, the loopback test.
 *
 * Pure: the only library calls are inet_pton/inet_ntop and string functions. Every
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is folded into AF_INET as soon as it is
 * parsed or read from a sockaddr, so the rest of the program never sees one.
 */
#include "util/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const unsigned char v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* If a is ::ffff:a.b.c.d, turn it into the AF_INET address a.b.c.d. */
static void fold_v4mapped(struct netaddr *a)
{
	if (a->family == AF_INET6 && memcmp(a->a, v4mapped_prefix, 12) == 0) {
		unsigned char v4[4];

		memcpy(v4, a->a + 12, 4);
		memset(a->a, 0, sizeof a->a);
		memcpy(a->a, v4, 4);
		a->family = AF_INET;
	}
}

/* Parse a literal IPv4 or IPv6 address (no brackets, no port). 0 ok, -1 bad. */
int netaddr_parse(const char *s, struct netaddr *out)
{
	struct netaddr a;

	if (s == NULL)
		return -1;
	memset(&a, 0, sizeof a);
	if (inet_pton(AF_INET, s, a.a) == 1) {
		a.family = AF_INET;
	} else if (inet_pton(AF_INET6, s, a.a) == 1) {
		a.family = AF_INET6;
		fold_v4mapped(&a);
	} else {
		return -1;
	}
	*out = a;
	return 0;
}

/* Fill *out (and *port, when not NULL) from a sockaddr; v4-mapped v6 becomes AF_INET.
 * 0 ok, -1 for a family other than AF_INET/AF_INET6. */
int netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *out, uint16_t *port)
{
	struct netaddr a;

	memset(&a, 0, sizeof a);
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in sin;

		memcpy(&sin, sa, sizeof sin);
		a.family = AF_INET;
		memcpy(a.a, &sin.sin_addr, 4);
		if (port)
			*port = ntohs(sin.sin_port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, sa, sizeof sin6);
		a.family = AF_INET6;
		memcpy(a.a, &sin6.sin6_addr, 16);
		fold_v4mapped(&a);
		if (port)
			*port = ntohs(sin6.sin6_port);
	} else {
		return -1;
	}
	*out = a;
	return 0;
}

/* Build a sockaddr for bind/connect from an address and a port; returns its length
 * (0 when the family is unknown, with *ss zeroed). */
socklen_t netaddr_to_sockaddr(const struct netaddr *a, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, a->a, 4);
		return sizeof *sin;
	}
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, a->a, 16);
		return sizeof *sin6;
	}
	return 0;
}

/* Format an address as "1.2.3.4" or "::1" into buf; returns buf ("?" when it cannot). */
const char *netaddr_str(const struct netaddr *a, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	if ((a->family != AF_INET && a->family != AF_INET6) ||
	    inet_ntop(a->family, a->a, buf, len > (socklen_t)-1 ? (socklen_t)-1 : (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
	return buf;
}

/* Format as "1.2.3.4:25" or "[::1]:25" into buf; returns buf. */
const char *hostport_str(const struct hostport *hp, char *buf, size_t len)
{
	char ab[INET6_ADDRSTRLEN];

	netaddr_str(&hp->addr, ab, sizeof ab);
	if (hp->addr.family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", ab, (unsigned)hp->port);
	else
		snprintf(buf, len, "%s:%u", ab, (unsigned)hp->port);
	return buf;
}

/* Parse 1..maxdigits decimal digits spanning all of s; -1 when s is anything else. */
static long parse_decimal(const char *s, int maxdigits)
{
	long v = 0;
	int n = 0;

	for (; *s; s++, n++) {
		if (*s < '0' || *s > '9' || n >= maxdigits)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return n == 0 ? -1 : v;
}

/* Zero every bit of a past the first prefix bits. */
static void mask_to_prefix(struct netaddr *a, int prefix)
{
	int nbytes = a->family == AF_INET ? 4 : 16;

	for (int i = 0; i < nbytes; i++) {
		int keep = prefix - i * 8;

		if (keep >= 8)
			continue;
		a->a[i] &= keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
	}
}

/* Parse "ADDR/N" or a bare address (a host route: /32 or /128). Host bits beyond the
 * prefix are cleared. A v4-mapped network with a prefix of at least 96 becomes the
 * corresponding IPv4 network. 0 ok, -1 bad. */
int cidr_parse(const char *s, struct cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	struct cidr c;
	const char *slash;
	size_t alen;
	long prefix = -1;

	if (s == NULL)
		return -1;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= INET6_ADDRSTRLEN)
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';

	memset(&c, 0, sizeof c);
	if (inet_pton(AF_INET, buf, c.net.a) == 1)
		c.net.family = AF_INET;
	else if (inet_pton(AF_INET6, buf, c.net.a) == 1)
		c.net.family = AF_INET6;
	else
		return -1;

	if (slash) {
		prefix = parse_decimal(slash + 1, 3);
		if (prefix < 0 || prefix > (c.net.family == AF_INET ? 32 : 128))
			return -1;
	} else {
		prefix = c.net.family == AF_INET ? 32 : 128;
	}
	c.prefix = (int)prefix;

	if (c.net.family == AF_INET6 && c.prefix >= 96 && memcmp(c.net.a, v4mapped_prefix, 12) == 0) {
		fold_v4mapped(&c.net);
		c.prefix -= 96;
	}
	mask_to_prefix(&c.net, c.prefix);
	*out = c;
	return 0;
}

/* Does the network c contain the address a? An IPv4 address also matches an IPv6
 * network that covers its v4-mapped form (e.g. ::/0 or ::ffff:0:0/80). 1 yes, 0 no. */
int cidr_match(const struct cidr *c, const struct netaddr *a)
{
	unsigned char buf[16];
	const unsigned char *bytes = a->a;
	int full, rest;

	if (c->net.family == AF_INET6 && a->family == AF_INET) {
		memcpy(buf, v4mapped_prefix, 12);
		memcpy(buf + 12, a->a, 4);
		bytes = buf;
	} else if (c->net.family != a->family) {
		return 0;
	}
	if (c->prefix < 0 || c->prefix > (c->net.family == AF_INET ? 32 : 128))
		return 0;
	full = c->prefix / 8;
	rest = c->prefix % 8;
	if (memcmp(c->net.a, bytes, (size_t)full) != 0)
		return 0;
	if (rest) {
		unsigned char m = (unsigned char)(0xff << (8 - rest));

		if ((c->net.a[full] & m) != (bytes[full] & m))
			return 0;
	}
	return 1;
}

/* Parse "ADDR:PORT", "[V6ADDR]:PORT" (a bracketed IPv4 address is accepted too),
 * "*:PORT" (0.0.0.0) and "[::]:PORT". PORT is 1..65535 in decimal. 0 ok, -1 bad. */
int hostport_parse(const char *s, struct hostport *out)
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct hostport hp;
	const char *colon, *host;
	size_t hlen;
	long port;

	if (s == NULL)
		return -1;
	memset(&hp, 0, sizeof hp);
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strchr(s, ':');
		if (colon == NULL || strchr(colon + 1, ':') != NULL)
			return -1;	/* no port, or an IPv6 address without brackets */
		host = s;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof buf)
		return -1;
	memcpy(buf, host, hlen);
	buf[hlen] = '\0';
	if (s[0] != '[' && strcmp(buf, "*") == 0) {
		hp.addr.family = AF_INET;	/* 0.0.0.0 */
	} else if (netaddr_parse(buf, &hp.addr) != 0) {
		return -1;
	}
	port = parse_decimal(colon + 1, 5);
	if (port < 1 || port > 65535)
		return -1;
	hp.port = (uint16_t)port;
	*out = hp;
	return 0;
}

/* 1 for 127.0.0.0/8 and ::1 (v4-mapped loopback has been folded into AF_INET). */
int netaddr_is_loopback(const struct netaddr *a)
{
	static const unsigned char v6lo[16] = { [15] = 1 };

	if (a->family == AF_INET)
		return a->a[0] == 127;
	if (a->family == AF_INET6)
		return memcmp(a->a, v6lo, 16) == 0 ||
		    (memcmp(a->a, v4mapped_prefix, 12) == 0 && a->a[12] == 127);
	return 0;
}

/* 1 for the unspecified address, 0.0.0.0 or ::. */
int netaddr_is_any(const struct netaddr *a)
{
	static const unsigned char zero[16];

	if (a->family == AF_INET)
		return memcmp(a->a, zero, 4) == 0;
	if (a->family == AF_INET6)
		return memcmp(a->a, zero, 16) == 0;
	return 0;
}

/* 1 when x and y are the same address (after v4-mapped folding). */
int netaddr_equal(const struct netaddr *x, const struct netaddr *y)
{
	if (x->family != y->family)
		return 0;
	return memcmp(x->a, y->a, x->family == AF_INET ? 4 : 16) == 0;
}
