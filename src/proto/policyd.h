/*
 * policyd — Postfix's SMTP access policy delegation protocol (SMTPD_POLICY_README), as the
 * MTA speaks it: a pure codec, and the mapping of a policy server's action to a verdict.
 *
 * PURE: no I/O, no clock, no globals, no allocation except through the caller's sbuf.
 *
 * The request is "name=value" lines ending in LF, then an empty line; the reply is the same
 * shape and must carry "action=...". One connection carries many requests, one at a time.
 * Names must not hold '=', NUL or LF, values not NUL or LF (RFC-free, the README's rule):
 * policyd_put_attr replaces a CR or LF in a value by '?' so the framing cannot be broken
 * by what a client sent.
 *
 * Actions are those of Postfix's access(5) that make sense for a policy service, matched
 * case-insensitively: OK, DUNNO, REJECT [text], DEFER [text], DEFER_IF_REJECT [text],
 * DEFER_IF_PERMIT [text], 4NN text, 5NN text, DISCARD [text], HOLD [text], PREPEND
 * header: value, REDIRECT addr, BCC addr, INFO text, WARN text, the restriction names
 * permit / reject / defer / dunno, and an all-numerical value (treated as OK, as access(5)
 * says). Anything else (FILTER, restriction classes) is refused: POLICYD_ERROR, and the
 * caller applies its default action, as Postfix answers 451 4.3.5 for an action it cannot
 * carry out.
 */
#ifndef IMSD_POLICYD_H
#define IMSD_POLICYD_H

#include <stddef.h>
#include <stdint.h>

#include "util/sbuf.h"

#define POLICYD_LINE_MAX	2048	/* one reply line, without its LF */
#define POLICYD_REPLY_MAX	16384	/* a whole reply, empty line included */
#define POLICYD_TEXT_MAX	512	/* text kept for a reply or a header (with the NUL) */
#define POLICYD_ACTION_MAX	(POLICYD_LINE_MAX + 1)

/* Append "name=value\n". -1 (nothing appended) when name is empty or holds '=', CR or LF. */
int policyd_put_attr(struct sbuf *b, const char *name, const char *value);
/* Append "name=N\n". */
void policyd_put_num(struct sbuf *b, const char *name, unsigned long long n);
/* The empty line that ends a request. */
void policyd_put_end(struct sbuf *b);

/*
 * Read one reply from the start of buf (len bytes received so far).
 *   1  complete: the value of its action attribute copied into action (NUL-terminated),
 *      *used = bytes through the empty line;
 *   0  not complete yet (*used = 0);
 *  -1  malformed, *why: a line over POLICYD_LINE_MAX, a line without '=', a reply over
 *      POLICYD_REPLY_MAX, no action attribute, an action with a NUL or control byte.
 * A CR before an LF is dropped; attributes other than "action" are ignored; the first
 * action counts.
 */
int policyd_reply_parse(const char *buf, size_t len, char action[POLICYD_ACTION_MAX],
    size_t *used, const char **why);

enum policyd_kind {
	POLICYD_DUNNO,		/* no opinion: the next check decides */
	POLICYD_OK,		/* accept at this stage */
	POLICYD_REJECT,		/* refuse with code/enh/text (4xx or 5xx) */
	POLICYD_DEFER_IF_PERMIT,	/* code/enh/text (4xx) unless a later check rejects */
	POLICYD_DEFER_IF_REJECT,	/* a later rejection becomes code/enh/text (4xx) */
	POLICYD_DISCARD,	/* accept the message and drop it */
	POLICYD_HOLD,		/* accept the message and hold it (quarantine) */
	POLICYD_PREPEND,	/* add the header field in text ("Name: value"), go on */
	POLICYD_REDIRECT,	/* deliver to text (an address) instead of the recipients */
	POLICYD_BCC,		/* deliver to text (an address) as well */
	POLICYD_INFO,		/* log text, go on */
	POLICYD_WARN,		/* log text as a warning, go on */
	POLICYD_ERROR		/* an action imsd cannot carry out (text says which) */
};

struct policyd_verdict {
	enum policyd_kind kind;
	int code;			/* REJECT, DEFER_*: the SMTP code */
	char enh[16];			/* and its enhanced status code ("4.7.1") */
	int disconnect;			/* 421 / 521: close the session after replying */
	char text[POLICYD_TEXT_MAX];	/* reply text (without the code and enhanced code),
					 * header field, address or log text; printable
					 * ASCII, other bytes as '?' */
};

/* Map an action to a verdict. Always fills *v; 0 ok, -1 for POLICYD_ERROR with *why. */
int policyd_action_parse(const char *action, struct policyd_verdict *v, const char **why);

/* The name of a kind, for logs ("dunno", "defer_if_permit", ...). */
const char *policyd_kind_name(enum policyd_kind k);

#endif
