/*
 * maildir — deliver one message to one local mailbox (SPEC.md "Local delivery").
 *
 * MAIL_DIR/domain/local/{tmp,new,cur} are created as needed (mode 0700). The message is
 * written to tmp/ (mode 0600) as "Return-Path: <sender>" followed by the stored message
 * with CRLF turned into LF, fsync'd, renamed into new/, and new/ is fsync'd; only then is
 * success returned. Blocking: call it from a delivery thread, never from the event loop.
 *
 * Every directory below MAIL_DIR is opened relative to its parent with O_NOFOLLOW, and
 * must belong to the user imsd runs as: a symbolic link or a foreign directory anywhere
 * in domain/local/{tmp,new,cur} fails the delivery (temporarily: the message stays queued)
 * with the reason, so nobody who can write under MAIL_DIR can make imsd write a sender's
 * bytes elsewhere. MAIL_DIR itself is the operator's and may be a link.
 */
#ifndef IMSD_MAILDIR_H
#define IMSD_MAILDIR_H

#include <stddef.h>
#include <stdint.h>

/* Check that addr ("local@domain", lower-case) maps to a safe directory. 0 ok, -1 bad. */
int maildir_addr_ok(const char *addr);

/*
 * Deliver len bytes of body_fd starting at off to the Maildir of addr. unique is a string
 * that makes the file name unique (queue id and recipient index). 0 ok; -1 with err (the
 * reason names the path and the system error: a retry may succeed); MAILDIR_PERM with err
 * when addr can never name a mailbox (maildir_addr_ok: mail that reached the queue some
 * other way than RCPT, an alias target say), so retrying is pointless.
 */
#define MAILDIR_PERM	(-2)
int maildir_deliver(const char *mail_dir, const char *addr, const char *sender, int body_fd,
    uint64_t off, uint64_t len, const char *hostname, const char *unique, char *err,
    size_t errlen);

#endif
