/*
 * fuzz_milter — libFuzzer target for what a milter sends: milter_frame, milter_reply_decode,
 * milter_optneg_decode, milter_negotiate, milter_reply_allowed and milter_header_format.
 *
 * Byte 0 picks the read bound (a small one, to reach the length check, or
 * MILTER_PACKET_MAX); the rest is a stream of packets. The stream is framed twice, in one
 * buffer and with the bytes arriving in chunks of the sizes given by byte 1; both must give
 * the same packets and fail at the same point. Each packet is decoded by its letter, and a
 * decoded reply must keep the contract of milter.h: strings inside the packet and
 * NUL-terminated there, header names that are field names, a formatted header that cannot
 * start a second field, a REPLYCODE with a 4xx/5xx code and printable text. Any violation
 * abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/milter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXPKT 64

static void
check(int cond)
{
	if (!cond)
		abort();
}

/* s lies inside [p, p+n) and its NUL too. */
static void
check_inside(const char *s, const unsigned char *p, size_t n)
{
	const char *base = (const char *)p;

	check(s >= base && s < base + n);
	check(memchr(s, '\0', (size_t)(base + n - s)) != NULL);
}

/* The formatted field: one field, its line breaks all CRLF, each but the last a fold. */
static void
check_formatted(const struct sbuf *b)
{
	check(!b->bad && b->len >= 3);
	check(memcmp(b->p + b->len - 2, "\r\n", 2) == 0);
	for (size_t i = 0; i + 2 < b->len; i++) {
		if (b->p[i] == '\r') {
			check(b->p[i + 1] == '\n');
			check(b->p[i + 2] == ' ' || b->p[i + 2] == '\t');
		} else if (b->p[i] == '\n')
			check(i > 0 && b->p[i - 1] == '\r');
	}
}

static void
check_packet(const struct milter_packet *pkt, uint8_t actions)
{
	struct milter_reply r;
	struct milter_optneg o;
	struct milter_agreed a;
	const char *why = NULL;

	if (pkt->cmd == SMFIR_OPTNEG) {
		if (milter_optneg_decode(pkt, &o, &why) != 0) {
			check(why != NULL);
			return;
		}
		for (int i = 0; i < MILTER_STAGES; i++)
			if (o.macros[i])
				check_inside(o.macros[i], pkt->data, pkt->len);
		if (milter_negotiate(actions & SMFIF_ALL, SMFIP_DEFINED, &o, &a, &why) == 0) {
			check(a.version >= MILTER_VERSION_MIN && a.version <= MILTER_VERSION);
			check((a.actions & ~(uint32_t)(actions & SMFIF_ALL)) == 0);
			check((a.protocol & ~SMFIP_DEFINED) == 0);
			/* edits are allowed only after the end of the body, and only if agreed */
			check(!milter_reply_allowed(&a, SMFIC_HEADER, SMFIR_ADDHEADER));
			if (milter_reply_allowed(&a, SMFIC_BODYEOB, SMFIR_REPLBODY))
				check(a.actions & SMFIF_CHGBODY);
			check(!milter_reply_allowed(&a, SMFIC_CONNECT, SMFIR_DISCARD));
		} else
			check(why != NULL);
		return;
	}
	if (milter_reply_decode(pkt, &r, &why) != 0) {
		check(why != NULL);
		return;
	}
	check(r.cmd == pkt->cmd);
	switch (r.cmd) {
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER: {
		struct sbuf b = { 0 };

		check_inside(r.name, pkt->data, pkt->len);
		check_inside(r.value, pkt->data, pkt->len);
		check(r.name[0] != '\0' && strchr(r.name, ':') == NULL);
		milter_header_format(&b, r.name, r.value, actions & 1);
		check_formatted(&b);
		free(b.p);
		break;
	}
	case SMFIR_REPLYCODE: {
		size_t tl = strlen(r.text), nl = 0;

		check(r.code >= 400 && r.code <= 559 && (r.code / 10) % 10 <= 5);
		check(r.nlines >= 1 && r.nlines <= MILTER_REPLY_LINES_MAX);
		check(tl < MILTER_REPLY_TEXT_MAX);
		for (size_t i = 0; i < tl; i++) {
			unsigned char c = (unsigned char)r.text[i];

			check(c == '\t' || c == '\n' || (c >= 0x20 && c < 0x7f));
			nl += c == '\n';
		}
		check(nl <= r.nlines - 1);
		check(r.enh[0] == '\0' || r.enh[0] == '0' + r.code / 100);
		break;
	}
	case SMFIR_REPLBODY:
		check(r.body == pkt->data && r.bodylen == pkt->len);
		break;
	case SMFIR_ADDRCPT: case SMFIR_DELRCPT: case SMFIR_QUARANTINE:
		check_inside(r.name, pkt->data, pkt->len);
		break;
	case SMFIR_ADDRCPT_PAR: case SMFIR_CHGFROM:
		check_inside(r.name, pkt->data, pkt->len);
		if (r.value)
			check_inside(r.value, pkt->data, pkt->len);
		break;
	default:
		check(pkt->len == 0);
	}
}

struct seen {
	char cmd;
	size_t off, len;
};

static struct seen whole[MAXPKT];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *s;
	size_t len, max, off = 0, n = 0, used, fail_at = (size_t)-1, chunk;
	struct milter_packet pkt;
	const char *why;
	unsigned char *buf;
	size_t have = 0, seen = 0, fed = 0;
	int r;

	if (size < 2)
		return 0;
	max = (data[0] & 1) ? MILTER_PACKET_MAX : (size_t)(data[0] >> 1) + 1;
	chunk = (size_t)data[1] + 1;
	s = data + 2;
	len = size - 2;

	/* in one buffer */
	while (off < len) {
		r = milter_frame(s + off, len - off, max, &pkt, &used, &why);
		if (r < 0) {
			fail_at = off;
			break;
		}
		if (r == 0) {
			check(used == 0 || used > len - off);
			break;
		}
		check(used == pkt.len + 5 && used <= len - off && pkt.len + 1 <= max);
		check(pkt.data == s + off + 5);
		check_packet(&pkt, data[0]);
		if (n < MAXPKT)
			whole[n] = (struct seen){ pkt.cmd, off, pkt.len };
		n++;
		off += used;
	}

	/* the same bytes arriving in chunks, kept in a buffer as a client would */
	buf = malloc(len ? len : 1);
	while (fed < len) {
		size_t k = chunk < len - fed ? chunk : len - fed;

		memcpy(buf + have, s + fed, k);
		have += k;
		fed += k;
		for (;;) {
			r = milter_frame(buf, have, max, &pkt, &used, &why);
			if (r < 0) {
				check(fed - have == fail_at);
				free(buf);
				return 0;
			}
			if (r == 0)
				break;
			check(seen < n);
			if (seen < MAXPKT) {
				check(whole[seen].cmd == pkt.cmd && whole[seen].len == pkt.len);
				check(memcmp(pkt.data, s + whole[seen].off + 5, pkt.len) == 0);
			}
			seen++;
			memmove(buf, buf + used, have - used);
			have -= used;
		}
	}
	free(buf);
	check(seen == n && fail_at == (size_t)-1);
	return 0;
}
