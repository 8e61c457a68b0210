/*
 * fuzz_smtp_reply — libFuzzer target for smtp_reply_feed / smtp_caps_parse /
 * smtp_reply_status.
 *
 * Byte 0 (mod 8) is the number of split-length bytes that follow; they give the sizes of
 * the chunks (value + 1, used cyclically) in which the rest is fed. The same stream is
 * also fed in one piece; both runs must yield the same sequence of replies and fail at
 * the same offset, and every reply must obey the contract of smtp_reply.h. Any violation
 * abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXREPLIES 32

struct result {
	int code;
	unsigned nlines;
	char enh[SMTP_ENH_MAX];
	char text[SMTP_REPLY_TEXT_MAX];
};

static struct result whole[MAXREPLIES];
static struct smtp_reply_parser parser;	/* large: static, not on the stack */
static struct smtp_reply rep;

static void
check(int cond)
{
	if (!cond)
		abort();
}

static int
c_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* A well-formed "c.s.d" with 1-3 digit parts and class c. */
static void
check_enh(const char *e, int cls)
{
	int part, k;

	check(e[0] == '0' + cls && e[1] == '.');
	e += 2;
	for (part = 0; part < 2; part++) {
		for (k = 0; c_digit((unsigned char)*e); k++)
			e++;
		check(k >= 1 && k <= 3);
		check(*e == (part == 0 ? '.' : '\0'));
		if (part == 0)
			e++;
	}
}

/* The contract of one complete reply, fed from the bytes ending at last (its LF). */
static void
check_reply(const struct smtp_reply *r, const char *last)
{
	struct smtp_caps caps;
	char st[SMTP_ENH_MAX];
	size_t tl, i, nl = 0;

	check(*last == '\n');
	check(r->code >= 200 && r->code <= 559);
	check((r->code / 10) % 10 <= 5);
	check(r->nlines >= 1 && r->nlines <= SMTP_REPLY_LINES_MAX);
	tl = strnlen(r->text, SMTP_REPLY_TEXT_MAX);
	check(tl < SMTP_REPLY_TEXT_MAX);
	for (i = 0; i < tl; i++) {
		unsigned char c = (unsigned char)r->text[i];

		check(c == '\t' || c == '\n' || (c >= 0x20 && c != 0x7f));
		nl += c == '\n';
	}
	check(nl <= r->nlines - 1);
	check(tl == SMTP_REPLY_TEXT_MAX - 1 || nl == r->nlines - 1);
	check(strnlen(r->enh, SMTP_ENH_MAX) < SMTP_ENH_MAX);
	if (r->enh[0] != '\0')
		check_enh(r->enh, r->code / 100);

	smtp_reply_status(r, st);
	check(strnlen(st, SMTP_ENH_MAX) < SMTP_ENH_MAX);
	check_enh(st, r->code / 100 == 3 ? 2 : r->code / 100);
	check(r->enh[0] == '\0' || strcmp(st, r->enh) == 0);

	smtp_caps_parse(r, &caps);
	if (r->code != 250 || r->nlines < 2)
		check(!caps.pipelining && !caps.starttls && !caps.size_known && caps.size == 0);
	check(caps.size_known || caps.size == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *splits;
	const char *s;
	size_t nsplits, len, off, u, k = 0, nwhole = 0, seen = 0, fail_whole = (size_t)-1;
	int r;

	if (size < 1)
		return 0;
	nsplits = data[0] % 8;
	if (size < 1 + nsplits)
		return 0;
	splits = data + 1;
	s = (const char *)data + 1 + nsplits;
	len = size - 1 - nsplits;

	/* in one piece */
	smtp_reply_init(&parser);
	for (off = 0; off <= len;) {
		u = (size_t)-1;
		r = smtp_reply_feed(&parser, s + off, len - off, &u, &rep);
		check(u <= len - off);
		if (r == 0) {
			check(u == len - off);
			break;
		}
		if (r < 0) {
			fail_whole = off + u;
			/* sticky */
			check(smtp_reply_feed(&parser, s, len, &u, &rep) == -1 && u == 0);
			break;
		}
		check(r == 1 && u >= 4);
		check_reply(&rep, s + off + u - 1);
		if (nwhole < MAXREPLIES) {
			whole[nwhole].code = rep.code;
			whole[nwhole].nlines = rep.nlines;
			memcpy(whole[nwhole].enh, rep.enh, sizeof(rep.enh));
			memcpy(whole[nwhole].text, rep.text, sizeof(rep.text));
		}
		nwhole++;
		off += u;
	}

	/* in chunks: the same replies, the same failure offset */
	smtp_reply_init(&parser);
	for (off = 0; off < len;) {
		size_t chunk = nsplits ? (size_t)splits[k++ % nsplits] + 1 : len - off, done = 0;

		if (chunk > len - off)
			chunk = len - off;
		while (done <= chunk) {
			u = (size_t)-1;
			r = smtp_reply_feed(&parser, s + off + done, chunk - done, &u, &rep);
			check(u <= chunk - done);
			if (r < 0) {
				check(off + done + u == fail_whole);
				return 0;
			}
			if (r == 0) {
				check(u == chunk - done);
				break;
			}
			check(seen < nwhole);
			check_reply(&rep, s + off + done + u - 1);
			if (seen < MAXREPLIES) {
				const struct result *w = &whole[seen];

				check(w->code == rep.code && w->nlines == rep.nlines);
				check(strcmp(w->enh, rep.enh) == 0 && strcmp(w->text, rep.text) == 0);
			}
			seen++;
			done += u;
		}
		off += chunk;
	}
	check(seen == nwhole && fail_whole == (size_t)-1);
	return 0;
}
