/*
 * proxy — the PROXY protocol header (HAProxy's, versions 1 and 2) that a load balancer in
 * proxy_networks sends before the first SMTP byte, carrying the real client's address and
 * the address it connected to.
 *
 * Pure: bytes in, a verdict out; no I/O, no allocation. proxy_parse is called with all the
 * bytes received so far on the connection (from its first byte) and says whether a whole
 * header is there, how long it is, and what it carries, or that it is malformed and why.
 *
 * Accepted: v1 "PROXY TCP4|TCP6 src dst sport dport\r\n" and "PROXY UNKNOWN...\r\n"
 * (at most 107 bytes with its CRLF); v2 with command PROXY over TCP/IPv4 or TCP/IPv6, or
 * command LOCAL (a health check: the connection's own addresses stand), with any TLVs, which
 * are skipped, up to PROXY_V2_MAX bytes in all. PROXY UNKNOWN and v2 with an unspecified
 * or non-TCP family carry no address: the caller keeps the connection's own.
 */
#ifndef IMSD_PROXY_H
#define IMSD_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"

#define PROXY_V1_MAX	107
#define PROXY_V2_MAX	4096	/* header + addresses + TLVs; HAProxy's are far smaller */

struct proxy_hdr {
	int version;		/* 1 or 2 */
	int has_addr;		/* 0: LOCAL, UNKNOWN or an address family we do not use */
	struct netaddr src, dst;
	uint16_t sport, dport;
};

/*
 * > 0: a complete header of that many bytes, *out filled.
 *   0: not complete yet (read more; the caller bounds how long it waits).
 *  -1: not a valid PROXY header; *why says what is wrong (a constant string).
 */
int proxy_parse(const unsigned char *buf, size_t len, struct proxy_hdr *out, const char **why);

#endif
