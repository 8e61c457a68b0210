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
 *
 * policyd_request_put writes a request from the session's facts; policyd_format_refusal
 * words a refusing verdict as Postfix's smtpd does ("<rcpt>: Recipient address rejected:
 * text"); policyd_chain combines the verdicts of several services asked in turn.
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

/* One request (SMTPD_POLICY_README's attributes). NULL strings are sent empty ("name="),
 * as Postfix does for what it does not know; numbers are sent as decimal. */
struct policyd_request {
	const char *protocol_state;	/* CONNECT, EHLO, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE */
	const char *protocol_name;	/* SMTP or ESMTP */
	const char *helo_name, *queue_id, *sender, *recipient;
	unsigned recipient_count;	/* DATA and END-OF-MESSAGE; 0 before */
	const char *client_address, *client_name, *reverse_client_name;
	unsigned client_port;
	const char *server_address;
	unsigned server_port;
	const char *instance;		/* the same for every request about one message */
	const char *sasl_method, *sasl_username, *sasl_sender;
	unsigned long long size;	/* SIZE= at MAIL, the message's size at END-OF-MESSAGE */
	const char *ccert_subject, *ccert_issuer, *ccert_fingerprint, *ccert_pubkey_fingerprint;
	const char *encryption_protocol, *encryption_cipher;
	unsigned encryption_keysize;
	const char *policy_context;	/* NULL: not sent */
};

/*
 * Append the request, "request=smtpd_access_policy" first and the empty line last. key:
 * leave out what identifies one delivery rather than what it is (instance, queue_id,
 * client_port): the text then serves as the key of a cache of answers.
 */
void policyd_request_put(struct sbuf *b, const struct policyd_request *r, int key);

/* Where a policy service was asked, for the wording of a refusal. */
enum policyd_stage {
	POLICYD_AT_CONNECT, POLICYD_AT_HELO, POLICYD_AT_MAIL, POLICYD_AT_RCPT, POLICYD_AT_DATA,
	POLICYD_AT_EOM
};

/* The protocol_state attribute of a stage (CONNECT, EHLO or HELO, MAIL, RCPT, DATA,
 * END-OF-MESSAGE). */
const char *policyd_state_name(enum policyd_stage st, int esmtp);

/*
 * The SMTP reply (one line, CRLF not included) for a refusing verdict (REJECT, or a DEFER_*
 * that applies) at stage st, worded as Postfix words it: "550 5.7.1 <bob@example.org>:
 * Recipient address rejected: TEXT" at RCPT (what is the recipient, the sender at MAIL, the
 * HELO name at HELO, the client "name[addr]" at connect; NULL: left out). At most
 * POLICYD_REPLY_LINE_MAX bytes; the text is cut to fit.
 */
#define POLICYD_REPLY_LINE_MAX	512
void policyd_format_refusal(const struct policyd_verdict *v, enum policyd_stage st,
    const char *what, char out[POLICYD_REPLY_LINE_MAX]);

/*
 * The verdicts of the policy services asked in turn at one stage, combined as Postfix's
 * restriction lists combine them: a refusal (REJECT, DEFER, 4NN, 5NN) or OK ends the stage;
 * DUNNO, INFO, WARN and PREPEND go on to the next service (PREPEND's header is kept for the
 * message); DEFER_IF_PERMIT is kept and refuses at the end unless something refused first;
 * DEFER_IF_REJECT turns a later refusal into its 4xx. A verdict the caller could not carry out
 * is given as the stage's default action (policyd_chain_default).
 */
#define POLICYD_PREPEND_MAX	8	/* header fields kept for one message */

struct policyd_chain {
	int done;			/* the stage is decided: ask no more services */
	int refused;			/* ... by this refusal: */
	struct policyd_verdict refusal;
	int dip, dir;			/* a DEFER_IF_PERMIT / DEFER_IF_REJECT seen */
	struct policyd_verdict dip_v, dir_v;
	unsigned nprepend;
	char prepend[POLICYD_PREPEND_MAX][POLICYD_TEXT_MAX];
};

void policyd_chain_init(struct policyd_chain *c);
/* One service's verdict. Returns 1 when the stage is decided. */
int policyd_chain_add(struct policyd_chain *c, const struct policyd_verdict *v);
/* A service that failed (unreachable, garbage, an action imsd does not carry out): its
 * default action, tempfail (451 4.3.5 Server configuration problem), accept (as DUNNO) or
 * reject (550 5.7.1 ... Policy service unavailable), given as enum filter_action's values
 * 0, 1, 2. Returns 1 when the stage is decided. */
int policyd_chain_default(struct policyd_chain *c, int action);
/* The outcome after the last service (or once decided): 1 with the reply line in out when
 * the stage is refused, 0 when it goes on. */
int policyd_chain_result(const struct policyd_chain *c, enum policyd_stage st, const char *what,
    char out[POLICYD_REPLY_LINE_MAX]);

#endif
