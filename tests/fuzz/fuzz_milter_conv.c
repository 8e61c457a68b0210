/*
 * fuzz_milter_conv — libFuzzer target for a whole milter conversation (proto/milter_conv)
 * with a milter whose every byte comes from the input.
 *
 * The input is split at each "\xff\xfe" into the milter's answers; the conversation walks
 * the SMTP stages (OPTNEG, connect, HELO, MAIL, two RCPTs, DATA, two headers, EOH, two body
 * chunks, EOM, then abort or quit) and at every step that waits it is fed the next answer
 * (in pieces of the size byte 0 picks). Whatever the milter sends, the conversation must
 * never queue more than its packets, never be active after an error, and every verdict and
 * edit must be one the contract of milter_conv.h allows. Any violation abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/milter_conv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

static const char *
macro(void *arg, const char *name)
{
	return name[0] == '{' ? "value" : "x";
}

struct input {
	const uint8_t *p;
	size_t left, piece;
};

/* The next answer: the bytes up to the next separator. */
static const uint8_t *
next_answer(struct input *in, size_t *n)
{
	const uint8_t *start = in->p;
	size_t i;

	for (i = 0; i + 1 < in->left; i++)
		if (in->p[i] == 0xff && in->p[i + 1] == 0xfe)
			break;
	if (i + 1 >= in->left)
		i = in->left;
	*n = i;
	in->p += i;
	in->left -= i;
	if (in->left >= 2) {
		in->p += 2;
		in->left -= 2;
	}
	return start;
}

/* Feed one answer in pieces; 1 when a verdict came, 0 when the answer ran out. */
static int
answer(struct milter_conv *c, struct input *in)
{
	size_t n, have = 0, off = 0, used;
	const uint8_t *a = next_answer(in, &n);
	uint8_t *buf = malloc(n ? n : 1);

	for (;;) {
		struct milter_event e;
		size_t add = n - off < in->piece ? n - off : in->piece;

		memcpy(buf + have, a + off, add);
		have += add;
		off += add;
		for (;;) {
			e = milter_conv_feed(c, buf, have, &used);
			check(used <= have);
			memmove(buf, buf + used, have - used);
			have -= used;
			if (e.kind == MILTER_EV_VERDICT) {
				check(e.verdict <= MILTER_ERROR);
				check(e.verdict != MILTER_ERROR || (e.why && !milter_conv_active(c)));
				if (e.has_reply)
					check(e.reply->code >= 400 && e.reply->code < 600);
				free(buf);
				return 1;
			}
			if (e.kind == MILTER_EV_EDIT) {
				check(e.reply != NULL);
				continue;
			}
			if (e.kind == MILTER_EV_PROGRESS)
				continue;
			break;	/* NEED */
		}
		if (off == n) {
			free(buf);
			return 0;
		}
	}
}

static void
step(struct milter_conv *c, enum milter_step s, struct input *in)
{
	size_t n;

	milter_conv_out(c, &n);
	milter_conv_sent(c, n);
	if (s == MILTER_STEP_WAIT && !answer(c, in))
		milter_conv_fail(c, "EOF");
	if (!milter_conv_active(c)) {
		milter_conv_out(c, &n);
		check(n == 0 || c->state == MC_CLOSED || c->state == MC_DONE_CONN);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct milter_conv c;
	const char *mail[] = { "<a@b.test>", "SIZE=10" }, *r1[] = { "<x@y.test>" },
	    *r2[] = { "<z@y.test>" };
	struct input in;
	size_t n;

	if (size < 1)
		return 0;
	in.piece = (size_t)(data[0] % 64) + 1;
	in.p = data + 1;
	in.left = size - 1;
	milter_conv_open(&c);
	step(&c, MILTER_STEP_WAIT, &in);
	step(&c, milter_conv_connect(&c, "h.test", SMFIA_INET, 25, "192.0.2.1", macro, NULL), &in);
	step(&c, milter_conv_helo(&c, "h.test", macro, NULL), &in);
	step(&c, milter_conv_mail(&c, mail, 2, macro, NULL), &in);
	step(&c, milter_conv_rcpt(&c, r1, 1, macro, NULL), &in);
	step(&c, milter_conv_rcpt(&c, r2, 1, macro, NULL), &in);
	step(&c, milter_conv_data(&c, macro, NULL), &in);
	step(&c, milter_conv_header(&c, "Subject", " hi\r\n there", 12), &in);
	step(&c, milter_conv_header(&c, "From", " a@b.test", 9), &in);
	step(&c, milter_conv_eoh(&c, macro, NULL), &in);
	step(&c, milter_conv_body(&c, "line\r\n", 6), &in);
	step(&c, milter_conv_body(&c, "more\r\n", 6), &in);
	if (data[0] & 0x80) {
		milter_conv_abort(&c);
	} else
		step(&c, milter_conv_eom(&c, macro, NULL), &in);
	milter_conv_quit(&c);
	milter_conv_out(&c, &n);
	check(!milter_conv_active(&c));
	milter_conv_free(&c);
	return 0;
}
