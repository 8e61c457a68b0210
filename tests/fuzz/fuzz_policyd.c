/*
 * fuzz_policyd — libFuzzer target for what a policy server sends: policyd_reply_parse over a
 * stream of replies (in one buffer, and again growing one byte at a time: the same replies,
 * the same failure), and policyd_action_parse on every action found. The verdict must keep
 * policyd.h's contract: printable text, refusals with a 4xx/5xx code and an enhanced code
 * of its class, 4xx for the DEFER_IF_* kinds. Any violation abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/policyd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXREPLY 16

static char act[POLICYD_ACTION_MAX];
static struct policyd_chain chain;
static size_t ends[MAXREPLY];

static void
check(int cond)
{
	if (!cond)
		abort();
}

static void
check_verdict(const char *a)
{
	struct policyd_verdict v;
	const char *why = NULL;
	int r = policyd_action_parse(a, &v, &why);
	size_t tl = strnlen(v.text, sizeof v.text);

	check(tl < sizeof v.text);
	for (size_t i = 0; i < tl; i++) {
		unsigned char c = (unsigned char)v.text[i];

		check(c == '\t' || (c >= 0x20 && c < 0x7f));
	}
	check((r == -1) == (v.kind == POLICYD_ERROR));
	check(r == 0 || why != NULL);
	if (v.kind == POLICYD_REJECT || v.kind == POLICYD_DEFER_IF_PERMIT ||
	    v.kind == POLICYD_DEFER_IF_REJECT) {
		check(v.code >= 400 && v.code <= 599);
		check(v.enh[0] == '0' + v.code / 100 && v.enh[1] == '.');
		check(v.text[0] != '\0');
		check(v.disconnect == (v.code == 421 || v.code == 521));
	}
	if (v.kind == POLICYD_DEFER_IF_PERMIT || v.kind == POLICYD_DEFER_IF_REJECT)
		check(v.code / 100 == 4);
	if (v.kind == POLICYD_PREPEND)
		check(strchr(v.text, ':') != NULL && v.text[0] != ':');
	if (v.kind == POLICYD_REDIRECT || v.kind == POLICYD_BCC)
		check(strchr(v.text, '@') != NULL);
	check(strcmp(policyd_kind_name(v.kind), "?") != 0);
	/* every reply is one more service asked at the same stage */
	if (r == 0)
		policyd_chain_add(&chain, &v);
	else
		policyd_chain_default(&chain, (int)(strlen(a) % 3));
}

/* The combined outcome: nothing, or one reply line of a 4xx/5xx code that fits. */
static void
check_chain(const char *what)
{
	char line[POLICYD_REPLY_LINE_MAX];

	if (policyd_chain_result(&chain, (enum policyd_stage)(strlen(what) % 6), what, line)) {
		size_t n = strnlen(line, sizeof line);

		check(n < sizeof line && n >= 4);
		check((line[0] == '4' || line[0] == '5') && line[3] == ' ');
		check(strchr(line, '\r') == NULL && strchr(line, '\n') == NULL);
	}
	check(chain.nprepend <= POLICYD_PREPEND_MAX);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *why;
	size_t off = 0, n = 0, used, fail_at = (size_t)-1, start = 0, k = 0;
	int r;

	policyd_chain_init(&chain);
	while (off <= size) {
		r = policyd_reply_parse(s + off, size - off, act, &used, &why);
		if (r < 0) {
			check(why != NULL);
			fail_at = off;
			break;
		}
		if (r == 0) {
			check(used == 0);
			break;
		}
		check(used >= 2 && used <= size - off && s[off + used - 1] == '\n');
		check(strlen(act) < POLICYD_ACTION_MAX);
		check_verdict(act);
		if (n < MAXREPLY)
			ends[n] = off + used;
		n++;
		off += used;
	}

	check_chain(size > 0 && data[0] & 1 ? "bob@example.org" : "");

	/* growing: each prefix [start, i] in turn, as bytes arrive */
	for (size_t i = 0; i <= size && size <= 4096; i++) {
		r = policyd_reply_parse(s + start, i - start, act, &used, &why);
		if (r < 0) {
			/* the stream fails at the same reply; a long line may be noticed before
			 * its LF arrives, never after */
			check(start == fail_at);
			return 0;
		}
		if (r == 1) {
			check(k < n);
			if (k < MAXREPLY)
				check(start + used == ends[k]);
			k++;
			start += used;
		}
	}
	if (size <= 4096)
		check(k == n && fail_at == (size_t)-1);
	return 0;
}
