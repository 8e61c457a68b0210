/*
 * lda — the request protocol between imsd's queue manager (unprivileged) and its local
 * delivery process (the one part that may switch users): PURE encoding and decoding.
 *
 * One request is one datagram (SOCK_SEQPACKET) carrying the queue file's descriptor
 * (SCM_RIGHTS) and this text, every field required, in this order, each at most
 * LDA_FIELD_MAX bytes, no control characters:
 *
 *     IMSDLDA 1
 *     user alice                    a login name of passwd (the process looks it up)
 *     mailbox mbox | maildir        /var/mail/USER, or ~USER/Maildir/
 *     sender <a@example.org>        the envelope sender, "<>" for the null sender
 *     recipient <alice@localhost>   for the Delivered-To header
 *     offset 1234                   where the message starts in the descriptor
 *     length 5678                   its length in bytes (at most LDA_MESSAGE_MAX)
 *     id 66216E602E7E9000_0         queue id and recipient index: unique per delivery
 *
 * The reply is one datagram: "ok", "temp REASON" or "perm REASON" (REASON at most
 * LDA_REASON_MAX bytes of printable text). Nothing else is accepted: an unknown field,
 * a missing one, a repeated one or a value out of range makes the request invalid, and
 * the delivery process answers "perm invalid request: why" without doing anything.
 */
#ifndef IMSD_LDA_H
#define IMSD_LDA_H

#include <stddef.h>
#include <stdint.h>

#define LDA_FIELD_MAX	512
#define LDA_REQUEST_MAX	4096
#define LDA_REASON_MAX	400
#define LDA_MESSAGE_MAX	(1ull << 40)

enum lda_mailbox { LDA_MBOX, LDA_MAILDIR };

struct lda_request {
	char user[64];
	enum lda_mailbox mailbox;
	char sender[LDA_FIELD_MAX];	/* without the angle brackets; "" = null sender */
	char recipient[LDA_FIELD_MAX];
	uint64_t offset, length;
	char id[128];
};

enum lda_status { LDA_OK, LDA_TEMP, LDA_PERM };

/* Encode r into buf; the length, or -1 when a field does not fit or is not valid. */
int lda_request_encode(const struct lda_request *r, char *buf, size_t len);

/* Decode len bytes; 0 with *r filled, or -1 with why ("missing field user", ...). */
int lda_request_decode(const char *buf, size_t len, struct lda_request *r, char *why,
    size_t whylen);

/* "ok" / "temp REASON" / "perm REASON": encode (the reason is cut to LDA_REASON_MAX and
 * control characters become '?') and decode (-1 when it is none of these). */
int lda_reply_encode(enum lda_status st, const char *reason, char *buf, size_t len);
int lda_reply_decode(const char *buf, size_t len, enum lda_status *st, char *reason,
    size_t rlen);

#endif
