/*
 * smtp_body — message text on the SMTP wire and in the queue: the CRLF lines, the
 * dot-stuffing of DATA (RFC 5321 §4.5.2) and the end of data, in both directions.
 *
 * PURE: no allocation, no I/O, no globals; both directions are resumable byte machines,
 * so text can be fed in any fragmentation.
 *
 * Encoding (the client's side: relay, submit, LMTP): every line end leaves as CRLF, never
 * a bare CR or LF (SPEC "Line endings and smuggling": a bare LF ends a line, and so does a
 * bare CR, as on the wire any CR is the start of a line end); with stuffing (DATA) a dot
 * that opens a line is doubled; the end adds a CRLF when the text did not end with one,
 * and for DATA the final ".\r\n". BDAT text goes with the same CRLF lines and no dots.
 *
 * Decoding (the server's side: the session): DATA ends only at <CR><LF>.<CR><LF>; a line
 * ended by a bare LF is stored with CRLF but can never take part in the end of data (SMTP
 * smuggling); a bare CR is content; a stuffed dot is removed. In BDAT text mode (no dots)
 * the same line rules hold and nothing ends the text. Every content byte of a line counts
 * against the text line limit; a line past it is reported (the caller latches its error)
 * and decoding goes on.
 */
#ifndef IMSD_SMTP_BODY_H
#define IMSD_SMTP_BODY_H

#include <stddef.h>

/* ---- encoding ---- */

struct smtp_body_enc {
	int bol;	/* at the start of a line */
	int cr;		/* the last byte was a CR: its line end is decided by the next byte */
};

#define SMTP_BODY_END_MAX	5	/* what smtp_body_encode_end writes at most */

void smtp_body_enc_init(struct smtp_body_enc *e);

/* Encode n text bytes into out, which must hold 2 * n + 2 bytes. stuff: double a dot that
 * opens a line (DATA). Returns the bytes written. */
size_t smtp_body_encode(struct smtp_body_enc *e, const char *in, size_t n, char *out,
    int stuff);

/* The end of the text: a CRLF when the last line has no line end (a trailing CR becomes
 * CRLF), then with dot ".\r\n" (DATA's end of data). out holds SMTP_BODY_END_MAX bytes.
 * Returns the bytes written. */
size_t smtp_body_encode_end(struct smtp_body_enc *e, char *out, int dot);

/* ---- decoding ---- */

/* Receives decoded text: CRLF lines (and bare CRs as content), dots unstuffed. */
typedef void smtp_body_put_fn(void *arg, const char *p, size_t n);
/* A text line has passed the line limit (called for each content byte past it). */
typedef void smtp_body_long_fn(void *arg);

struct smtp_body_dec {
	int st;			/* internal */
	int dots;		/* DATA (dot-unstuffing, end of data) or BDAT text */
	int crlf;		/* the last line ended with CRLF (or the text just began) */
	size_t linelen;		/* content bytes of the current line */
	size_t line_max;	/* content bytes allowed in a line (without its line end) */
	smtp_body_put_fn *put;
	smtp_body_long_fn *toolong;
	void *arg;
};

/* dots: 1 for DATA, 0 for BDAT text. line_max: content bytes allowed per line. */
void smtp_body_dec_init(struct smtp_body_dec *d, int dots, size_t line_max,
    smtp_body_put_fn *put, smtp_body_long_fn *toolong, void *arg);

/*
 * Decode len bytes. Returns the bytes consumed: all of them, or (DATA only) those up to and
 * including the final <CR><LF>.<CR><LF>, with *end set; the rest is not the message.
 */
size_t smtp_body_decode(struct smtp_body_dec *d, const char *buf, size_t len, int *end);

/* BDAT text's end (the LAST chunk): a CRLF when the text did not end with a line break
 * (a trailing CR is taken as the start of its CRLF). */
void smtp_body_decode_finish(struct smtp_body_dec *d);

#endif
