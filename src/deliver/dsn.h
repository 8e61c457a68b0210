/*
 * dsn — RFC 3464 delivery status notifications: bounces ("failed") and delay warnings
 * ("delayed"), and on request (RFC 3461 NOTIFY=SUCCESS) "delivered" and "relayed".
 *
 * PURE: no I/O, no clock (the times are passed in), no globals; the only side effect is
 * the malloc'd result. The caller sends it from <> to the original envelope sender and
 * never bounces it (RFC 3464 §2, RFC 5321 §4.5.5); that is not this module's business.
 *
 * The message built (every line CRLF-terminated, none longer than 998 octets, no bare CR
 * or LF, 7-bit only, nothing folded):
 *   From: Mail Delivery System <MAILER-DAEMON@hostname>
 *   To: <sender>
 *   Subject: Undelivered Mail Returned to Sender | Delayed Mail (still being retried) |
 *            Successful Mail Delivery Report
 *   Date: (from now, UTC)   Message-ID: <qid.dsn.now@hostname>
 *   Auto-Submitted: auto-replied   MIME-Version: 1.0
 *   Content-Type: multipart/report; report-type=delivery-status; boundary="..."
 * with three parts:
 *   1. text/plain; charset=us-ascii — a human explanation naming each recipient and the
 *      reason (diag); for delayed, that delivery goes on and for how many hours;
 *   2. message/delivery-status — Original-Envelope-Id (when envid is given), Reporting-MTA, X-Imsd-Queue-ID, Arrival-Date; then per
 *      recipient Original-Recipient (orcpt_field when given, else orcpt when it is given
 *      and differs from addr),
 *      Final-Recipient, Action, Status, Remote-MTA (when given), Diagnostic-Code (when
 *      given), Last-Attempt-Date (now), and for delayed Will-Retry-Until;
 *   3. text/rfc822-headers — the original header section (up to the first empty line),
 *      at most DSN_HEADERS_MAX octets of whole lines; or with full (RET=FULL, RFC 3461
 *      §4.3) message/rfc822 — the whole original, lines as below, 8-bit bytes kept when
 *      orig_8bit (the part then says Content-Transfer-Encoding: 8bit and the DSN must be
 *      sent as 8BITMIME), else replaced by '?'.
 *
 * Addresses in the report (Final-Recipient, Original-Recipient) are "rfc822; addr" when
 * ASCII and RFC 6533 §3's "utf-8; " with \x{HEX} escapes otherwise, so the report stays
 * 7-bit (message/global-delivery-status is not produced). With smtputf8 the To: field
 * keeps a UTF-8 sender (the only 8-bit text then).
 *
 * Sanitising: in one-line fields (addresses, diag, remote_mta, hostname, qid) every
 * control byte (CR and LF included) becomes a space and every byte >= 0x7f becomes '?';
 * a field too long for a 998-octet line is cut. In the original headers a line may end
 * in CRLF or bare LF (both become CRLF), a stray CR becomes a space, NUL and bytes
 * >= 0x80 become '?', a line longer than 998 octets is cut.
 *
 * A diag without a "type;" prefix gets "x-imsd; "; a remote_mta without one gets "dns; ".
 * A status that is not "c.sss.ddd" with class 2, 4 or 5 is replaced by 5.0.0 (failed) or
 * 4.0.0 (delayed). The MIME boundary is built from boundary_seed (bchars only) and made
 * longer with a counter until it occurs in none of the parts.
 */
#ifndef IMSD_DSN_H
#define IMSD_DSN_H

#include <stddef.h>
#include <time.h>

#define DSN_LINE_MAX	998		/* RFC 5322 §2.1.1, without CRLF */
#define DSN_HEADERS_MAX	(64 * 1024)	/* most octets of original headers returned */

enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED };

struct dsn_rcpt {
	const char *addr;	/* final recipient, "bob@example.org" (required) */
	const char *orcpt;	/* original recipient address (bare), may equal addr or be NULL */
	const char *status;	/* "5.1.1"; NULL: derived from the action */
	const char *diag;	/* "smtp; 550 5.1.1 <bob@x>: user unknown" or NULL */
	const char *remote_mta;	/* "dns; mx.example.org" or NULL */
	const char *orcpt_field;	/* the client's ORCPT as the field's value ("rfc822; a@b",
				 * dsn_orcpt_field), used instead of orcpt; or NULL */
	int has_action;		/* this recipient's Action differs from the message's: */
	enum dsn_action action;	/* a failure report may say "delivered" for others */
};

struct dsn_info {
	const char *hostname;	/* reporting MTA (required) */
	const char *qid;	/* queue id of the original (required) */
	time_t arrival;		/* when the original was received */
	time_t now;		/* Date, Last-Attempt-Date, Message-ID */
	const char *sender;	/* envelope sender of the original: the DSN's recipient (non-empty) */
	enum dsn_action action;
	unsigned retry_hours_left;	/* delayed: how much longer delivery is attempted */
	const struct dsn_rcpt *rcpts;
	size_t nrcpts;		/* at least 1 */
	const char *orig;	/* the original message, CRLF lines, Received header first */
	size_t origlen;
	const char *boundary_seed;	/* unique text (e.g. qid + time) for the MIME boundary */
	const char *envid;	/* the decoded ENVID (RFC 3461) for Original-Envelope-Id, or NULL */
	int full;		/* RET=FULL: orig is the whole message, returned as message/rfc822 */
	int orig_8bit;		/* with full: the original is 8-bit (BODY=8BITMIME) */
	int smtputf8;		/* the notice goes out as an SMTPUTF8 message (RFC 6531): the
				 * To: field keeps a UTF-8 sender as it is (RFC 6532) */
};

/*
 * Build the complete DSN message into a malloc'd buffer (*out, NUL-terminated for
 * convenience; *outlen excludes the NUL). 0 ok; -1 on bad arguments (a required string
 * NULL or empty, no recipients, orig NULL with origlen > 0, unknown action) or no memory.
 */
int dsn_build(const struct dsn_info *in, char **out, size_t *outlen);

#endif
