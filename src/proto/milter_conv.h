/*
 * milter_conv — the MTA side of one milter conversation (one SMTP connection, one milter),
 * as a pure state machine over proto/milter's codec.
 *
 * PURE: no I/O, no clock. The caller owns the socket and the timers: it sends what
 * milter_conv_out() holds after each call, feeds back what the milter sent, and arms the
 * timeout the step calls for (MILTER_WAIT_* below). Postfix's milter8.c is the model for
 * the states and for what is (not) sent to a milter that accepted or failed.
 *
 * Steps, in SMTP order: milter_conv_open (OPTNEG), then per stage connect, helo, mail,
 * rcpt (each recipient), data, header (each field), eoh, body (chunks), eom; abort ends a
 * transaction that does not reach eom (RSET, a refused MAIL, QUIT inside a transaction);
 * quit ends the conversation. Each step returns
 *
 *   MILTER_STEP_WAIT     a command was queued whose answer must be read: feed bytes until
 *                        milter_conv_feed returns MILTER_EV_VERDICT;
 *   MILTER_STEP_GO       nothing to wait for (the command was queued without an answer due,
 *                        or not sent at all: the milter skips that step, accepted the
 *                        message or connection, or failed): the verdict is "continue".
 *
 * Macros: before each stage's command the SMFIC_MACRO for that stage is queued with the
 * macros the milter asked for in its OPTNEG (SMFIF_SETSYMLIST), or else Postfix's default
 * list for the stage; the values come from the caller's lookup function (NULL: the macro
 * is not sent).
 *
 * The verdict of an answered step is in the event: continue, accept (no more questions for
 * the message, or at connect/helo for the connection), reject / tempfail (with the
 * milter's own SMTP reply when it sent REPLYCODE: code, enh, text), discard (the message),
 * shutdown (421 and close the session), or error: the milter failed (protocol violation,
 * a packet it may not send here, garbage, EOF reported by the caller through
 * milter_conv_fail) and is out of the conversation for good; the caller applies its
 * default action. After eom the edits come first, one MILTER_EV_EDIT each, in the order
 * sent (SMFIR_QUARANTINE among them, and again as the verdict's quarantine flag); they are
 * only valid if the verdict that follows is not an error.
 */
#ifndef IMSD_MILTER_CONV_H
#define IMSD_MILTER_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "proto/milter.h"
#include "util/sbuf.h"

/* What imsd lets a milter do, and the steps it may skip (all of version 6 but
 * SMFIP_RCPT_REJ: imsd does not show milters the recipients it refused itself). */
#define MILTER_CONV_ACTIONS	SMFIF_ALL
#define MILTER_CONV_PROTOCOL	(SMFIP_DEFINED & ~SMFIP_RCPT_REJ)

typedef const char *(*milter_macro_fn)(void *arg, const char *name);

enum milter_step { MILTER_STEP_GO, MILTER_STEP_WAIT };

/* Which timeout an awaited answer runs under. */
enum milter_wait { MILTER_WAIT_CONNECT, MILTER_WAIT_COMMAND, MILTER_WAIT_CONTENT };

enum milter_verdict {
	MILTER_CONTINUE,
	MILTER_ACCEPT,
	MILTER_REJECT,
	MILTER_TEMPFAIL,
	MILTER_DISCARD,
	MILTER_SHUTDOWN,
	MILTER_ERROR
};

/* NEED: more bytes; PROGRESS: the milter asked for more time (restart the timer); EDIT: one
 * edit after eom; VERDICT: the answer to the awaited command. */
enum milter_ev { MILTER_EV_NEED, MILTER_EV_PROGRESS, MILTER_EV_EDIT, MILTER_EV_VERDICT };

struct milter_event {
	enum milter_ev kind;
	enum milter_verdict verdict;		/* MILTER_EV_VERDICT */
	int has_reply;				/* REJECT / TEMPFAIL came with a REPLYCODE */
	const struct milter_reply *reply;	/* the REPLYCODE, or the edit (MILTER_EV_EDIT);
						 * valid until the next call */
	const char *why;			/* MILTER_ERROR: what went wrong */
	int quarantine;				/* the message is to be held (SMFIR_QUARANTINE
						 * seen before this verdict) */
	const char *quarantine_reason;		/* copied into the conversation */
};

/* MC_DONE_CONN: the milter gave its last word on the connection at connect or HELO
 * (accept, reject, tempfail or shutdown): nothing more is sent but QUIT. */
enum milter_conv_state {
	MC_NEW, MC_NEGOTIATING, MC_READY, MC_ACCEPT_MSG, MC_DONE_CONN, MC_FAILED, MC_CLOSED
};

struct milter_conv {
	enum milter_conv_state state;
	struct milter_agreed agreed;
	char *macros[MILTER_STAGES];	/* the milter's lists (malloc'd), NULL = defaults */
	char await;			/* the command whose answer is due, or 0 */
	int in_message;			/* MAIL was sent and no eom/abort since */
	int skip_body;			/* SMFIR_SKIP: no more body chunks */
	int quarantine;
	char quarantine_reason[256];
	struct milter_reply reply;	/* the last reply decoded */
	struct sbuf out;		/* bytes to send */
	size_t max;			/* the largest packet accepted */
	const char *why;		/* the failure, once MC_FAILED */
};

/* Postfix's macros for a stage when the milter asked for none (space-separated). */
const char *milter_conv_default_macros(enum milter_stage st);

/* Start: queue SMFIC_OPTNEG; the answer is awaited (MILTER_WAIT_CONNECT). */
void milter_conv_open(struct milter_conv *c);
void milter_conv_free(struct milter_conv *c);

/* Bytes queued to send (the caller sends them, then calls milter_conv_sent). */
const void *milter_conv_out(const struct milter_conv *c, size_t *len);
void milter_conv_sent(struct milter_conv *c, size_t n);

/* The timeout the awaited answer runs under (meaningful while an answer is due). */
enum milter_wait milter_conv_wait(const struct milter_conv *c);
/* Is the milter still in the conversation (negotiated, not failed, not done with this
 * connection)? */
int milter_conv_active(const struct milter_conv *c);

/*
 * Feed bytes the milter sent (buf, len: everything received and not yet consumed). Returns
 * one event; *used bytes of buf are consumed (the caller drops them before feeding the
 * rest; pointers in the event point into buf, so use the event before that).
 * MILTER_EV_NEED: more bytes are needed. Bytes when no answer is due are a protocol error.
 */
struct milter_event milter_conv_feed(struct milter_conv *c, const unsigned char *buf, size_t len,
    size_t *used);

/* The caller's transport failed (connect refused, EOF, timeout, write error): the milter is
 * out; returns the MILTER_ERROR verdict event to act on. */
struct milter_event milter_conv_fail(struct milter_conv *c, const char *why);

/* The steps. host is the client's name ("[192.0.2.1]" when it has none); family SMFIA_*. */
enum milter_step milter_conv_connect(struct milter_conv *c, const char *host, char family,
    uint16_t port, const char *addr, milter_macro_fn fn, void *arg);
enum milter_step milter_conv_helo(struct milter_conv *c, const char *helo, milter_macro_fn fn,
    void *arg);
enum milter_step milter_conv_mail(struct milter_conv *c, const char *const *argv, size_t argc,
    milter_macro_fn fn, void *arg);
enum milter_step milter_conv_rcpt(struct milter_conv *c, const char *const *argv, size_t argc,
    milter_macro_fn fn, void *arg);
enum milter_step milter_conv_data(struct milter_conv *c, milter_macro_fn fn, void *arg);
/* One header field: its name and everything after the colon as received (leading space and
 * folds, CRLF or LF); the value is sent as Sendmail does, folds as "\n", one leading space
 * dropped unless SMFIP_HDR_LEADSPC was agreed. */
enum milter_step milter_conv_header(struct milter_conv *c, const char *name, const char *value,
    size_t vlen);
enum milter_step milter_conv_eoh(struct milter_conv *c, milter_macro_fn fn, void *arg);
/* A chunk of the body (CRLF lines), at most MILTER_CHUNK_MAX bytes; the caller splits. */
enum milter_step milter_conv_body(struct milter_conv *c, const void *data, size_t len);
enum milter_step milter_conv_eom(struct milter_conv *c, milter_macro_fn fn, void *arg);
/* The transaction ends before eom: queue SMFIC_ABORT when a message was under way. */
void milter_conv_abort(struct milter_conv *c);
/* The SMTP connection ends: queue SMFIC_QUIT (unless the milter is out). */
void milter_conv_quit(struct milter_conv *c);

#endif
