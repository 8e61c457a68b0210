/*
 * addr — network addresses: parse and format, CIDR match, the loopback test.
 *
 * PURE: no syscalls beyond inet_pton/inet_ntop. IPv4-mapped IPv6 addresses
 * (::ffff:a.b.c.d) are treated as the IPv4 address they carry everywhere.
 */
#ifndef IMSD_ADDR_H
#define IMSD_ADDR_H

#include <stdint.h>
#include <sys/socket.h>

struct netaddr {
	int family;		/* AF_INET or AF_INET6 */
	unsigned char a[16];	/* 4 bytes for AF_INET */
};

struct cidr {
	struct netaddr net;
	int prefix;
};

/* A listener or peer: address and port. */
struct hostport {
	struct netaddr addr;
	uint16_t port;
};

#define NETADDR_STRLEN 64	/* enough for "[v6]:port" */

/* Parse a literal address (IPv4 dotted quad or IPv6, without brackets). 0 ok, -1 bad. */
int netaddr_parse(const char *s, struct netaddr *out);
/* Fill from a sockaddr; v4-mapped v6 becomes AF_INET. 0 ok, -1 unsupported family. */
int netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *out, uint16_t *port);
/* Build a sockaddr for bind/connect. Returns its length. */
socklen_t netaddr_to_sockaddr(const struct netaddr *a, uint16_t port, struct sockaddr_storage *ss);
/* "1.2.3.4" or "::1" */
const char *netaddr_str(const struct netaddr *a, char *buf, size_t len);
/* "1.2.3.4:25" or "[::1]:25" */
const char *hostport_str(const struct hostport *hp, char *buf, size_t len);

/* "ADDR/N" or a bare address (host route). 0 ok, -1 bad. */
int cidr_parse(const char *s, struct cidr *out);
int cidr_match(const struct cidr *c, const struct netaddr *a);

/* "ADDR:PORT" or "[V6ADDR]:PORT"; also "*:PORT" (IPv4 any) and "[::]:PORT". 0 ok, -1 bad. */
int hostport_parse(const char *s, struct hostport *out);

/* 127.0.0.0/8, ::1, and ::ffff:127.0.0.0/104 (already folded into AF_INET). */
int netaddr_is_loopback(const struct netaddr *a);
int netaddr_is_any(const struct netaddr *a);
int netaddr_equal(const struct netaddr *x, const struct netaddr *y);

#endif
