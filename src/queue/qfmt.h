/*
 * qfmt — the on-disk format of a queued message. PURE: encode and decode only.
 *
 * A queue file is   HEADER  BODY  TRAILER
 *   HEADER  = "IMSDQ 1\n" then records "<tag> <value>\n" and an empty line. Tags:
 *             id, arrival (unix seconds), client (address), helo, sender ("" = <>),
 *             body (7bit|8bit|binarymime), optionally smtputf8 ("yes": an SMTPUTF8
 *             transaction, RFC 6531; files without it read as before), rcpt
 *             ("<addr>\t<orcpt>", one per recipient, in order),
 *             the DSN requests of RFC 3461 when the client made them: ret (FULL|HDRS)
 *             and envid (xtext) once, and after a rcpt record its "rdsn <notify>\t<orcpt>"
 *             (NOTIFY as "NEVER" or "SUCCESS,FAILURE,DELAY", "" when not given; the
 *             client's ORCPT parameter "type;xtext", "" when not given; files written
 *             before DSN have none of these and load as "nothing requested"),
 *             and optionally skip (QFMT_SKIP_DIGITS zero-padded decimal digits, written
 *             last). Values are printable ASCII (plus TAB in rcpt); sender and rcpt may
 *             also hold well-formed UTF-8 (util/utf8.h). Unknown tags are refused.
 *   GAP     = "skip" bytes of filler between the header and the body (none without the
 *             tag). A receiver reserves room there for header fields it only knows once
 *             the whole message is in (DKIM-Signature, Authentication-Results): they are
 *             written at the end of the gap, the skip value shrinks by as much, and the
 *             fixed-width value is rewritten in place before the file is made durable.
 *   BODY    = the message exactly as stored: CRLF lines, our own trace fields first
 *             (a binarymime body is stored exactly as received: any octets).
 *   TRAILER = "\nEND " + 20-digit zero-padded body length + "\n" (QFMT_TRAILER_LEN bytes).
 * A file is complete only when the trailer is present and its length matches what lies
 * between header and trailer; a reader never guesses about anything else.
 *
 * Beside it, an append-only journal "<qid>.j" records per-recipient progress, one line
 * per event: "done <i>\n" (delivered), "defer <i> <attempts> <next-unix> <reason>\n"
 * (temporary failure, retry then), "fail <i> <status> <reason>\n" (permanent failure,
 * bounced), "warned\n" (the delay notice was sent). A torn last line (no newline) is
 * ignored; anything else malformed is refused.
 */
#ifndef IMSD_QFMT_H
#define IMSD_QFMT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "proto/dsnparam.h"

#define QFMT_MAGIC		"IMSDQ 1\n"
#define QFMT_TRAILER_LEN	26	/* "\nEND " (5) + 20 digits + "\n" */
#define QFMT_HEADER_MAX		(1024 * 1024)
#define QFMT_RCPT_MAX		100000
#define QFMT_SKIP_DIGITS	5	/* the skip tag's value: "00000".."99999" */
#define QFMT_SKIP_MAX		99999

enum qrcpt_state { QR_PENDING = 0, QR_DONE = 1, QR_FAILED = 2 };

struct qrcpt {
	char *addr;
	char *orcpt;
	enum qrcpt_state state;
	unsigned attempts;
	time_t next_try;
	char last_error[200];
	char status[16];	/* enhanced status of the last failure ("4.4.1", "5.1.1") */
	char remote_mta[128];	/* who said it (memory only, for the bounce) */
	unsigned notify;	/* DSN_NOTIFY_* bits; 0 = NOTIFY not given */
	char *dsn_orcpt;	/* the client's ORCPT parameter ("rfc822;xtext"), or NULL */
};

struct qenv {
	char qid[32];
	time_t arrival;
	char client[64];
	char helo[256];
	char *sender;		/* "" for the null sender */
	int body_8bit;
	int requiretls;		/* RFC 8689: relay only over TLS verified by MTA-STS or DANE */
	int dsn_ret;		/* enum dsn_ret: RET=, 0 when not given */
	char envid[DSN_ENVID_MAX + 1];	/* ENVID= (xtext), "" when not given */
	int body_binary;	/* BODY=BINARYMIME (RFC 3030): relayed only by BDAT; implies
				 * body_8bit. Files without it (7bit/8bit) read as before. */
	int smtputf8;		/* MAIL had SMTPUTF8 (RFC 6531): addresses may be UTF-8 */
	int warned;		/* delay notice sent */
	int has_journal;	/* a journal file exists (set by queue_load) */
	int has_skip;		/* the header carries a skip tag (encode: write one) */
	size_t skip;		/* filler bytes between header and body */
	struct qrcpt *rcpts;
	size_t nrcpts;
};

/* Encode the header into a malloc'd buffer (*out, *outlen). 0 ok, -1 bad value/no memory.
 * With e->has_skip, the skip tag is the last record, so its digits end 2 bytes before the
 * end of the header (the record's \n and the empty line's). */
int qfmt_header_encode(const struct qenv *e, char **out, size_t *outlen);
/*
 * Decode a header at the start of buf. On success fills e (caller frees with qenv_free)
 * and *hdrlen (bytes up to and including the empty line). 0 ok; 1 need more bytes
 * (no empty line yet within len); -1 malformed (err says why).
 */
int qfmt_header_decode(const char *buf, size_t len, struct qenv *e, size_t *hdrlen,
    char *err, size_t errlen);
void qfmt_trailer_encode(uint64_t bodylen, char out[QFMT_TRAILER_LEN]);
/* 0 ok, -1 not a trailer. */
int qfmt_trailer_decode(const char *buf, size_t len, uint64_t *bodylen);
/* Apply journal text to e (states, attempts, errors). 0 ok, -1 malformed (err). */
int qfmt_journal_apply(const char *buf, size_t len, struct qenv *e, char *err, size_t errlen);

/*
 * Journal records, encoded as qfmt_journal_apply reads them: one line with its newline in
 * out (NUL-terminated). A reason is made one printable ASCII line (control and 8-bit bytes
 * become spaces) and cut to QFMT_JOURNAL_REASON_MAX bytes; an empty status becomes the
 * class default ("5.0.0"). Return the line's length (out is always terminated; a record
 * never needs more than QFMT_JOURNAL_LINE_MAX bytes with its NUL).
 */
#define QFMT_JOURNAL_REASON_MAX	319
#define QFMT_JOURNAL_LINE_MAX	(QFMT_JOURNAL_REASON_MAX + 80)
size_t qfmt_journal_done(size_t i, char *out, size_t outlen);
size_t qfmt_journal_defer(size_t i, unsigned attempts, time_t next_try, const char *reason,
    char *out, size_t outlen);
size_t qfmt_journal_fail(size_t i, const char *status, const char *reason, char *out,
    size_t outlen);
size_t qfmt_journal_warned(char *out, size_t outlen);
void qenv_free(struct qenv *e);

#endif
