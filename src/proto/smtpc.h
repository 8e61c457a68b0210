/*
 * smtpc — the client side of an SMTP (RFC 5321) or LMTP (RFC 2033) dialogue, as a pure
 * state machine: replies in, commands out, one result per recipient.
 *
 * PURE: no I/O, no clock, no allocation, no globals. The caller (the relay, an LMTP agent,
 * the local submission client) owns the connection: it feeds the server's bytes to
 * smtpc_feed, sends the command lines that ops->command hands it (each followed by CRLF),
 * sends the message text itself when asked (proto/smtp_body encodes it), and makes the
 * decisions that are not the protocol's: whether to start TLS, whether a host is good
 * enough, whether to reuse a connection. Every such point is an event that smtpc_feed
 * returns, so a unit test or a fuzzer can drive the whole dialogue from a string.
 *
 * The dialogue:
 *   greeting 220 → EHLO (LMTP: LHLO) → SMTPC_READY with the capabilities in c->caps.
 *     EHLO refused with 5xx (not 503) → SMTPC_EHLO_REFUSED: smtpc_helo() falls back to HELO
 *     (RFC 5321 §3.2; LMTP has no fallback: a refused LHLO fails).
 *   At SMTPC_READY: smtpc_starttls() → 220 → SMTPC_TLS (the caller runs the handshake and
 *     calls smtpc_tls_done, which starts over with EHLO, RFC 3207 §4.2), or another code →
 *     SMTPC_TLS_REFUSED; smtpc_mail() → one transaction; smtpc_quit().
 *   A transaction (smtpc_mail): MAIL with the parameters the peer announced (SIZE, BODY,
 *     RET/ENVID under DSN, REQUIRETLS, SMTPUTF8), one RCPT per recipient (NOTIFY and ORCPT
 *     under DSN), then DATA or, to a CHUNKING peer, BDAT. With PIPELINING (RFC 2920) MAIL,
 *     every RCPT and DATA go at once and the replies are matched in order; BDAT waits for
 *     the RCPT replies (no chunk is sent for nobody). 354 → SMTPC_BODY: the caller sends
 *     the text, then smtpc_dot(). BDAT → SMTPC_BDAT: the caller sends each chunk as
 *     smtpc_bdat(size, last) followed by its octets (with PIPELINING it may go on while
 *     smtpc_bdat_more(); without, it waits for the next SMTPC_BDAT). A failed chunk fails
 *     the message (RFC 3030 §2).
 *   SMTPC_DONE ends the transaction: every recipient sent has a result (below), except
 *     those left for the next transaction by split_at_452 and, when rcpt_temp_ends gave
 *     the transaction up before its text, the accepted ones; c->reusable says whether the
 *     connection ended it cleanly (all replies read, final reply positive) and may carry
 *     the next smtpc_mail.
 *   LMTP: after the final dot (or the LAST chunk) one reply per accepted recipient, in the
 *     order of the RCPTs; each is that recipient's result (RFC 2033 §4.2).
 *   SMTPC_FAIL: the connection is no good (greeting refused, EHLO/HELO failed, a malformed
 *     or unexpected reply, MAIL refused for now when tx.mail_temp_fails asks to try another
 *     host); c->why says why; smtpc_delivered_maybe() says whether the message may already
 *     have gone through (then no other host may be tried now).
 *   SMTPC_CLOSED: the reply to QUIT, or any reply while idle (a 421 at timeout, say).
 *
 * Results: rcpt->code is the reply that decided the recipient (0: none; the caller says
 * what happened), rcpt->status its enhanced status (the reply's, else the class default),
 * rcpt->diag "smtp; CODE first line of its text" in printable ASCII, rcpt->accepted
 * whether RCPT was taken. A recipient refused at RCPT has that reply; a message refused
 * at DATA, the dot or a chunk gives that reply to every accepted recipient.
 *
 * Envelope text that would put a line break or NUL into a command is refused (smtpc_mail
 * returns -1): no envelope can smuggle a command.
 */
#ifndef IMSD_SMTPC_H
#define IMSD_SMTPC_H

#include <stddef.h>
#include <stdint.h>

#include "proto/smtp_reply.h"

#define SMTPC_LINE_MAX	1100	/* longest command line built (without CRLF) */
#define SMTPC_DIAG_MAX	300	/* a recipient's diagnostic, with the NUL */
#define SMTPC_WHY_MAX	450	/* a failure's reason, with the NUL */

enum smtpc_dialect { SMTPC_SMTP, SMTPC_LMTP };

enum smtpc_body { SMTPC_BODY_7BIT, SMTPC_BODY_8BIT, SMTPC_BODY_BINARY };

struct smtpc_rcpt {
	/* in */
	const char *addr;
	unsigned notify;		/* NOTIFY (DSN_NOTIFY_* bits), 0 none; sent only under DSN */
	const char *dsn_orcpt;		/* ORCPT ("rfc822;xtext"), NULL none; sent only under DSN */
	/* out */
	int accepted;			/* RCPT got 2xx */
	int code;			/* the reply that decided it; 0 none */
	char status[SMTP_ENH_MAX];
	char diag[SMTPC_DIAG_MAX];
};

struct smtpc_tx {
	const char *sender;		/* "" for <> */
	uint64_t size;			/* SIZE=, when the peer announces SIZE */
	enum smtpc_body body;		/* BODY=8BITMIME only to a peer that announces it */
	int requiretls;			/* REQUIRETLS (RFC 8689) */
	int smtputf8;			/* SMTPUTF8 (RFC 6531), when the peer announces it */
	int dsn_ret;			/* enum dsn_ret: RET=, under DSN */
	const char *envid;		/* ENVID= (xtext), under DSN; NULL or "" none */
	int mail_temp_fails;		/* a 4xx to MAIL is SMTPC_FAIL (another host may take it) */
	int lockstep;			/* never pipeline, even to a PIPELINING peer */
	int split_at_452;		/* a 452 to a RCPT after some were accepted: send the text
					 * to those, leave the rest without a result (code 0)
					 * for the next transaction (RFC 5321 §4.5.3.1.10) */
	int rcpt_temp_ends;		/* lockstep only: any other 4xx to a RCPT ends the
					 * transaction before DATA (the caller gives up on it) */
	struct smtpc_rcpt *rcpts;
	size_t nrcpts;
};

struct smtpc_ops {
	/* One command line, without its CRLF: send it and then CRLF. */
	void (*command)(void *arg, const char *line, size_t len);
	/* Optional: every complete reply, as it arrives (for a debug log). */
	void (*reply)(void *arg, const struct smtp_reply *r);
};

enum smtpc_event {
	SMTPC_MORE,		/* every byte used: feed more when it comes */
	SMTPC_READY,		/* greeting and EHLO/LHLO/HELO done, or a transaction's
				 * follow-up: start TLS, a transaction, or quit */
	SMTPC_EHLO_REFUSED,	/* 5xx to EHLO: smtpc_helo(), or give up */
	SMTPC_TLS,		/* 220 to STARTTLS: handshake, then smtpc_tls_done() */
	SMTPC_TLS_REFUSED,	/* STARTTLS refused (c->reply): go on in plaintext, or give up */
	SMTPC_BODY,		/* 354: send the text, then smtpc_dot() */
	SMTPC_BDAT,		/* send a chunk: smtpc_bdat() and its octets */
	SMTPC_DONE,		/* the transaction is over: results, c->reusable */
	SMTPC_CLOSED,		/* QUIT answered, or a reply while idle: close */
	SMTPC_FAIL,		/* the connection is no good: c->why */
};

enum smtpc_state {
	SC_GREETING, SC_EHLO, SC_HELO, SC_READY, SC_STARTTLS, SC_TLS, SC_MAIL, SC_RCPT,
	SC_DATA, SC_BODY, SC_DOT, SC_BDAT, SC_QUIT, SC_FAILED,
};

/* Treat as opaque apart from the fields marked for the caller. */
struct smtpc {
	enum smtpc_dialect dialect;
	const struct smtpc_ops *ops;
	void *arg;
	char helo[256];
	enum smtpc_state st;
	struct smtp_reply_parser parser;
	struct smtp_reply reply;	/* caller: the last complete reply */
	struct smtp_caps caps;		/* caller: what the peer announced (zero after HELO) */
	char why[SMTPC_WHY_MAX];	/* caller: SMTPC_FAIL's reason */
	int reusable;			/* caller: SMTPC_DONE ended cleanly */
	int tls;			/* a TLS handshake completed on this connection */
	/* the transaction */
	struct smtpc_tx *tx;
	size_t expected;		/* replies still to come */
	size_t rcpt_sent, rcpt_replied, rcpt_end;
	size_t naccepted;
	size_t lmtp_next;		/* LMTP: the accepted recipient the next final reply is for */
	size_t lmtp_left;		/* LMTP: final replies still to come */
	int mail_ok;
	int final;			/* the final reply (dot, LAST chunk) came, or nothing is sent */
	int text_sent;			/* the text (or its first chunk, or the dot) went out */
	int bdat;			/* the text goes by BDAT */
	int bdat_all_sent;
	size_t bdat_unacked;
};

/* Start a dialogue on a fresh connection: the greeting is awaited. helo: the name for
 * EHLO/LHLO/HELO (cut to 255 bytes). */
void smtpc_init(struct smtpc *c, enum smtpc_dialect dialect, const char *helo,
    const struct smtpc_ops *ops, void *arg);

/* Feed the server's bytes: consumes up to the first event and returns it with *used; feed
 * the rest again after handling it. SMTPC_MORE: all used. After SMTPC_TLS, SMTPC_CLOSED
 * and SMTPC_FAIL nothing more is read (bytes after a 220 to STARTTLS are discarded by
 * the caller, RFC 3207 §4.2). */
enum smtpc_event smtpc_feed(struct smtpc *c, const char *buf, size_t len, size_t *used);

/* At SMTPC_EHLO_REFUSED: fall back to HELO (SMTP only; LMTP: -1). */
int smtpc_helo(struct smtpc *c);
/* At SMTPC_READY: send STARTTLS. */
void smtpc_starttls(struct smtpc *c);
/* The TLS handshake after SMTPC_TLS succeeded: reset the reply parser, forget the
 * capabilities, send EHLO/LHLO again. */
void smtpc_tls_done(struct smtpc *c);
/* At SMTPC_READY (or after a reusable SMTPC_DONE): begin the transaction tx (borrowed
 * until SMTPC_DONE or SMTPC_FAIL; its results are cleared). 0 sent; -1 refused (no
 * recipients, or envelope text with a line break or NUL: c->why). */
int smtpc_mail(struct smtpc *c, struct smtpc_tx *tx);
/* After SMTPC_BODY and the text (which must end with CRLF): the final dot. */
void smtpc_dot(struct smtpc *c);
/* After SMTPC_BDAT: the chunk command for size octets, which the caller sends next. */
void smtpc_bdat(struct smtpc *c, uint64_t size, int last);
/* May another chunk go now (PIPELINING, the LAST one not yet sent)? */
int smtpc_bdat_more(const struct smtpc *c);
/* Send QUIT; the reply ends the dialogue (SMTPC_CLOSED). */
void smtpc_quit(struct smtpc *c);

/* Could the message of the transaction in progress have been delivered already (its text
 * or its end was sent)? After a failure then, no other host may be tried for it now. */
int smtpc_delivered_maybe(const struct smtpc *c);
/* What the dialogue waits for, as words for a log line ("greeting", "RCPT", ...). */
const char *smtpc_state_name(const struct smtpc *c);
/* The RFC 5321 §4.5.3.2 time limit of the current state, in seconds. */
unsigned smtpc_timeout(const struct smtpc *c);
/* A reply as a diagnostic: "smtp; 550 5.1.1 first line", control bytes made spaces. */
void smtpc_diag(const struct smtp_reply *r, char *out, size_t outlen);

#endif
