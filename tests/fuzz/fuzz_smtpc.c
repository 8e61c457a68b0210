/*
 * fuzz_smtpc — libFuzzer target for proto/smtpc, the SMTP/LMTP client dialogue: what a
 * server (any server, hostile or broken) answers cannot break the client's contract.
 *
 * Byte 0: bit 0 the dialect (SMTP/LMTP), bit 1 lockstep with split_at_452 and
 * rcpt_temp_ends (the local submission's way), bit 2 mail_temp_fails, bits 3-5 the number
 * of recipients (1-8), bits 6-7 the transactions to try (1-4). Byte 1: the chunk size the
 * rest is fed in (+1). The rest is the server's byte stream; the client's choices at each
 * event (STARTTLS or not, LAST chunk or not) come from the bytes fed so far.
 * Checked, abort() on violation:
 *   - smtpc_feed uses at most what it is given, and all of it when it returns SMTPC_MORE;
 *   - every command is one line: no CR, LF or NUL, at most SMTPC_LINE_MAX bytes;
 *   - at SMTPC_DONE every accepted recipient has a result (unless rcpt_temp_ends gave the
 *     transaction up before its text), every result is a reply code
 *     2xx-5xx with a well-formed enhanced status and a printable "smtp; " diagnostic;
 *   - after SMTPC_FAIL or SMTPC_CLOSED nothing more is consumed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/smtpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct smtpc cl;

static void
check(int cond)
{
	if (!cond)
		abort();
}

static void
f_command(void *arg, const char *line, size_t len)
{
	(void)arg;
	check(len <= SMTPC_LINE_MAX);
	for (size_t i = 0; i < len; i++)
		check(line[i] != '\r' && line[i] != '\n' && line[i] != '\0');
}

static const struct smtpc_ops ops = { f_command, NULL };

static int text_sent;	/* this transaction's text went out (SMTPC_BODY or SMTPC_BDAT) */

static void
check_results(const struct smtpc_tx *tx)
{
	for (size_t i = 0; i < tx->nrcpts; i++) {
		const struct smtpc_rcpt *r = &tx->rcpts[i];
		/* accepted and no result: only when the transaction was given up before the
		 * text (rcpt_temp_ends) */
		if (r->accepted && r->code == 0)
			check(tx->rcpt_temp_ends && !text_sent);
		if (r->code == 0)
			continue;
		check(r->code >= 200 && r->code <= 559);
		check(r->status[0] >= '2' && r->status[0] <= '5' && r->status[1] == '.');
		check(strncmp(r->diag, "smtp; ", 6) == 0);
		for (const char *p = r->diag; *p; p++)
			check((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *addrs[] = { "a@x.example", "b@x.example", "c@x.example",
	    "d@x.example", "e@x.example", "f@x.example", "g@x.example", "h@x.example" };
	struct smtpc_rcpt rc[8];
	struct smtpc_tx tx;
	size_t off = 0, step, len;
	const char *in;
	unsigned txleft;
	int done = 0;

	text_sent = 0;

	if (size < 2)
		return 0;
	step = (size_t)data[1] + 1;
	in = (const char *)data + 2;
	len = size - 2;
	txleft = (unsigned)(data[0] >> 6) + 1;
	memset(&tx, 0, sizeof(tx));
	memset(rc, 0, sizeof(rc));
	tx.sender = "s@here.example";
	tx.size = 100;
	tx.nrcpts = (size_t)((data[0] >> 3) & 7) + 1;
	tx.rcpts = rc;
	tx.lockstep = tx.split_at_452 = tx.rcpt_temp_ends = (data[0] >> 1) & 1;
	tx.mail_temp_fails = (data[0] >> 2) & 1;
	for (size_t i = 0; i < tx.nrcpts; i++)
		rc[i].addr = addrs[i];
	smtpc_init(&cl, data[0] & 1 ? SMTPC_LMTP : SMTPC_SMTP, "client.example", &ops, NULL);

	while (off < len && !done) {
		size_t n = len - off < step ? len - off : step, used = 0;
		enum smtpc_event ev = smtpc_feed(&cl, in + off, n, &used);
		unsigned char choice = (unsigned char)in[off];

		check(used <= n);
		if (ev == SMTPC_MORE)
			check(used == n);
		off += used;
		switch (ev) {
		case SMTPC_MORE:
			break;
		case SMTPC_READY:
			if (cl.caps.starttls && !cl.tls && (choice & 1))
				smtpc_starttls(&cl);
			else if (txleft-- > 0) {
				text_sent = 0;
				check(smtpc_mail(&cl, &tx) == 0);
			} else
				smtpc_quit(&cl);
			break;
		case SMTPC_EHLO_REFUSED:
			if (smtpc_helo(&cl) < 0)
				done = 1;
			break;
		case SMTPC_TLS:
			smtpc_tls_done(&cl);
			off = len;	/* what followed the 220 is discarded */
			break;
		case SMTPC_TLS_REFUSED:
			text_sent = 0;
			check(smtpc_mail(&cl, &tx) == 0);
			break;
		case SMTPC_BODY:
			check(smtpc_delivered_maybe(&cl));
			text_sent = 1;
			smtpc_dot(&cl);
			break;
		case SMTPC_BDAT: {
			/* one chunk, or with PIPELINING up to three in a row */
			text_sent = 1;
			for (int k = 0;; k++) {
				int last = (choice & 2) || k == 2;
				smtpc_bdat(&cl, 10, last);
				if (last || !smtpc_bdat_more(&cl))
					break;
			}
			break;
		}
		case SMTPC_DONE:
			check_results(&tx);
			check(!smtpc_delivered_maybe(&cl));
			if (cl.reusable && txleft-- > 0) {
				text_sent = 0;
				check(smtpc_mail(&cl, &tx) == 0);
			} else
				smtpc_quit(&cl);
			break;
		case SMTPC_CLOSED:
		case SMTPC_FAIL: {
			size_t u = 1;
			if (ev == SMTPC_FAIL && off < len) {
				check(smtpc_feed(&cl, in + off, len - off, &u) == SMTPC_FAIL);
				check(u == 0);
			}
			done = 1;
			break;
		}
		}
		(void)smtpc_timeout(&cl);
	}
	return 0;
}
