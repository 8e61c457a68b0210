/*
 * smtp_reply — the SMTP client's reply parser (RFC 5321 §4.2) and EHLO capabilities.
 *
 * PURE: no allocation, no I/O, no globals; the parser state is fixed-size and resumable,
 * so bytes can be fed in any fragmentation (byte by byte, or several pipelined replies in
 * one buffer).
 *
 * Grammar accepted (lenient on receive where RFC 5321 §4.5.3 asks for it):
 *   reply  = *( code "-" [text] EOL ) code [ " " [text] ] EOL
 *   code   = %x32-35 %x30-35 %x30-39            (2xx..5xx, second digit 0-5)
 *   EOL    = CRLF / LF                           (a bare LF ends a line too)
 * Every line of one reply must carry the same code. Errors (return -1): a bad code, codes
 * differing between lines, a byte after the code that is neither '-' nor ' ' nor the end
 * of the line, a line longer than SMTP_REPLY_LINE_MAX octets without its line ending,
 * more than SMTP_REPLY_LINES_MAX lines. "250\r\n" (no text at all) is legal.
 * After -1 the parser stays in error until smtp_reply_init (drop the connection).
 *
 * struct smtp_reply:
 *   code   the reply code;
 *   enh    the RFC 3463 enhanced status code at the start of the LAST line's text
 *          ("5.1.1"), only when its class equals the code's first digit; "" otherwise;
 *   text   each line's text (after "ddd-" / "ddd "), joined with '\n', NUL-terminated;
 *          the enhanced code is left in the text. Control bytes (other than TAB, including
 *          NUL and a stray CR) are replaced by '?'; 8-bit bytes are kept. Text beyond
 *          SMTP_REPLY_TEXT_MAX - 1 bytes is cut off (the reply is still accepted);
 *   nlines the number of lines.
 */
#ifndef IMSD_SMTP_REPLY_H
#define IMSD_SMTP_REPLY_H

#include <stddef.h>

#define SMTP_REPLY_TEXT_MAX	4096	/* bytes of text kept (with the NUL); more is cut */
#define SMTP_REPLY_LINE_MAX	4096	/* longest line accepted, without its line ending */
#define SMTP_REPLY_LINES_MAX	128	/* most lines in one reply */
#define SMTP_ENH_MAX		16	/* room for "5.123.123" and the NUL */

struct smtp_reply {
	int code;
	char enh[SMTP_ENH_MAX];
	char text[SMTP_REPLY_TEXT_MAX];
	unsigned nlines;
};

/* Resumable parser state; treat as opaque. */
struct smtp_reply_parser {
	int failed;			/* sticky error */
	size_t linelen;			/* bytes in line[] */
	char line[SMTP_REPLY_LINE_MAX + 1];	/* partial line (+1: a trailing CR) */
	size_t textlen;			/* bytes in cur.text */
	struct smtp_reply cur;		/* the reply being assembled */
};

/* Reset the parser (before first use and to recover after -1). */
void smtp_reply_init(struct smtp_reply_parser *p);

/*
 * Consume bytes of buf (len octets; need not be NUL-terminated).
 *   1  a complete reply is in *out; *used = bytes consumed up to and including its last
 *      line ending; the rest of buf is untouched (feed it again for the next reply);
 *   0  more input is needed; *used = len (everything buffered; *out untouched);
 *  -1  protocol error; *used = bytes consumed up to the offending point.
 */
int smtp_reply_feed(struct smtp_reply_parser *p, const char *buf, size_t len, size_t *used,
    struct smtp_reply *out);

/* ESMTP extensions announced in an EHLO reply. */
struct smtp_caps {
	int pipelining, starttls, eightbitmime, size_known, smtputf8, chunking,
	    enhancedstatuscodes, dsn, requiretls;
	int binarymime;			/* RFC 3030 */
	unsigned long long size;	/* SIZE limit; 0 = no limit announced (or SIZE 0) */
};

/*
 * Fill *caps from an EHLO reply: all zero unless the code is 250; the first line (the
 * greeting) is skipped; keywords are case-insensitive and end at ' ', '=' or the end of
 * the line. "SIZE" without a (valid) number sets size_known with size 0; a number too
 * large for unsigned long long saturates.
 */
void smtp_caps_parse(const struct smtp_reply *r, struct smtp_caps *caps);

/* Reply classes (RFC 5321 §4.2.1). */
static inline int smtp_reply_positive(int code) { return code >= 200 && code < 400; }
static inline int smtp_reply_completion(int code) { return code >= 200 && code < 300; }
static inline int smtp_reply_intermediate(int code) { return code >= 300 && code < 400; }
static inline int smtp_reply_transient(int code) { return code >= 400 && code < 500; }
static inline int smtp_reply_permanent(int code) { return code >= 500 && code < 600; }

/*
 * The enhanced status to report for a reply: r->enh when present, else "2.0.0" for 2xx
 * and 3xx, "4.0.0" for 4xx, "5.0.0" for 5xx (and "4.0.0" for anything else).
 */
void smtp_reply_status(const struct smtp_reply *r, char out[SMTP_ENH_MAX]);

#endif
