/*
 * tlsa — parse a DNS response for TLSA records (see tlsa.h).
 */
#include <stdio.h>
#include <string.h>

#include "deliver/tlsa.h"

#define T_TLSA		52
#define C_IN		1
#define NAME_MAX_WIRE	255

/* Skip the name at *off (labels or one compression pointer). 0 ok, -1 malformed. */
static int
skip_name(const unsigned char *m, size_t len, size_t *off)
{
	size_t p = *off, total = 0;

	for (;;) {
		if (p >= len)
			return -1;
		unsigned l = m[p];
		if (l == 0) {
			*off = p + 1;
			return 0;
		}
		if ((l & 0xc0) == 0xc0) {
			if (p + 1 >= len)
				return -1;
			/* a pointer must point back into what was read (no loops) */
			if ((((l & 0x3fu) << 8) | m[p + 1]) >= p)
				return -1;
			*off = p + 2;
			return 0;
		}
		if ((l & 0xc0) != 0)
			return -1;	/* 0x40/0x80: extended label types, not in use */
		total += l + 1;
		if (total > NAME_MAX_WIRE)
			return -1;
		p += l + 1;
	}
}

static unsigned
u16(const unsigned char *p)
{
	return ((unsigned)p[0] << 8) | p[1];
}

int
tlsa_parse(const unsigned char *m, size_t len, struct tlsa_answer *out, char *why, size_t wl)
{
	size_t off = 12;
	unsigned qd, an;

	out->n = 0;
	out->rcode = 0;
	out->ad = 0;
	if (len < 12) {
		snprintf(why, wl, "DNS response shorter than its header (%zu bytes)", len);
		return -1;
	}
	if (!(m[2] & 0x80)) {
		snprintf(why, wl, "DNS message is not a response");
		return -1;
	}
	if (m[2] & 0x02) {
		snprintf(why, wl, "DNS response truncated (TC)");
		return -1;
	}
	out->ad = (m[3] & 0x20) != 0;
	out->rcode = m[3] & 0x0f;
	qd = u16(m + 4);
	an = u16(m + 6);
	for (unsigned i = 0; i < qd; i++) {
		if (skip_name(m, len, &off) < 0 || off + 4 > len) {
			snprintf(why, wl, "malformed question section");
			return -1;
		}
		off += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		unsigned type, class, rdlen;
		if (skip_name(m, len, &off) < 0 || off + 10 > len) {
			snprintf(why, wl, "malformed answer record %u", i + 1);
			return -1;
		}
		type = u16(m + off);
		class = u16(m + off + 2);
		rdlen = u16(m + off + 8);
		off += 10;
		if (rdlen > len - off) {
			snprintf(why, wl, "truncated answer record %u", i + 1);
			return -1;
		}
		if (type == T_TLSA && class == C_IN) {
			struct tlsa_rr *rr;
			if (rdlen < 3) {
				snprintf(why, wl, "TLSA record %u has %u bytes of data (at least 3)",
				    i + 1, rdlen);
				return -1;
			}
			if (rdlen - 3 > TLSA_DATA_MAX) {
				snprintf(why, wl, "TLSA record %u: %u bytes of association data "
				    "(at most %d)", i + 1, rdlen - 3, TLSA_DATA_MAX);
				return -1;
			}
			if (out->n >= TLSA_MAX_RRS) {
				snprintf(why, wl, "more than %d TLSA records", TLSA_MAX_RRS);
				return -1;
			}
			rr = &out->rr[out->n++];
			rr->usage = m[off];
			rr->selector = m[off + 1];
			rr->mtype = m[off + 2];
			rr->len = (uint16_t)(rdlen - 3);
			memcpy(rr->data, m + off + 3, rdlen - 3);
		}
		off += rdlen;
	}
	return 0;
}

int
tlsa_usable(const struct tlsa_rr *rr)
{
	if (rr->usage != TLSA_DANE_TA && rr->usage != TLSA_DANE_EE)
		return 0;
	if (rr->selector != TLSA_SEL_CERT && rr->selector != TLSA_SEL_SPKI)
		return 0;
	switch (rr->mtype) {
	case TLSA_MT_FULL:
		return rr->len > 0;
	case TLSA_MT_SHA256:
		return rr->len == 32;
	case TLSA_MT_SHA512:
		return rr->len == 64;
	default:
		return 0;
	}
}

void
tlsa_str(const struct tlsa_rr *rr, char *buf, size_t len)
{
	char hex[40];
	size_t n = rr->len < 8 ? rr->len : 8;

	for (size_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, sizeof(hex) - 2 * i, "%02x", rr->data[i]);
	hex[2 * n] = '\0';
	snprintf(buf, len, "%u %u %u %s%s", rr->usage, rr->selector, rr->mtype, hex,
	    rr->len > 8 ? "…" : "");
}
