/*
 * tlsa — the DNS answer to a TLSA query (RFC 6698, RFC 7672), parsed from the wire.
 *
 * PURE. c-ares 1.18 has no TLSA parser and hides the header's AD bit, so the raw response is
 * read here: the header (RCODE, AD, TC), the question section skipped, and every TLSA
 * record of class IN in the answer section kept (CNAMEs the resolver followed are skipped;
 * their targets' TLSA records are in the same section). Limits: at most TLSA_MAX_RRS
 * records (more is an error, not a silent cut), data of at most TLSA_DATA_MAX bytes each,
 * names as RFC 1035 limits them, compression pointers only backwards.
 */
#ifndef IMSD_TLSA_H
#define IMSD_TLSA_H

#include <stddef.h>
#include <stdint.h>

#define TLSA_MAX_RRS	16
#define TLSA_DATA_MAX	4096

/* RFC 7218 names */
enum { TLSA_DANE_TA = 2, TLSA_DANE_EE = 3 };
enum { TLSA_SEL_CERT = 0, TLSA_SEL_SPKI = 1 };
enum { TLSA_MT_FULL = 0, TLSA_MT_SHA256 = 1, TLSA_MT_SHA512 = 2 };

struct tlsa_rr {
	uint8_t usage, selector, mtype;
	uint16_t len;
	unsigned char data[TLSA_DATA_MAX];
};

struct tlsa_answer {
	int rcode;		/* 0 NOERROR, 3 NXDOMAIN, ... */
	int ad;			/* the AD bit of the header */
	size_t n;		/* TLSA records kept */
	struct tlsa_rr rr[TLSA_MAX_RRS];
};

/* Parse a DNS response. 0 ok; -1 with why ("truncated answer record", ...). */
int tlsa_parse(const unsigned char *msg, size_t len, struct tlsa_answer *out, char *why,
    size_t wl);

/* Is rr one imsd can use: DANE-TA(2) or DANE-EE(3), selector Cert(0) or SPKI(1), matching
 * Full(0), SHA2-256(1) with 32 bytes or SHA2-512(2) with 64 bytes (RFC 7672 §3.1)? */
int tlsa_usable(const struct tlsa_rr *rr);

/* "3 1 1 2a0c…" (data cut after 16 hex digits) for logs. */
void tlsa_str(const struct tlsa_rr *rr, char *buf, size_t len);

#endif
