/*
 * mbox — append one message to a user's mailbox file (/var/mail/USER), locked the way
 * Debian's mail readers lock it, so that mail(1), mutt and s-nail read it while imsd
 * writes. Called in the local delivery process after it has become the user (never as
 * root, never as imsd): everything here runs with the user's rights.
 *
 * Locking, in this order, both held while writing: the dot lock PATH.lock (created with
 * link(2) from a unique file, as liblockfile does; a lock older than MBOX_STALE_SECONDS is
 * stale and removed), then fcntl(F_SETLK) on the whole file; each is retried for
 * MBOX_LOCK_SECONDS before the delivery is deferred ("mailbox is locked").
 *
 * The file: opened O_APPEND|O_NOFOLLOW, created 0600 when missing; it must be a regular
 * file with one link owned by the user (else the delivery is refused with the reason).
 * Written: a "From SENDER DATE" line (MAILER-DAEMON for the null sender), Return-Path and
 * Delivered-To header fields, the message with CRLF made LF and every line matching
 * ^>*From  given one more '>' (mboxrd), a final newline if missing and an empty line. Then
 * fsync. On any failure the file is cut back to its old size: nothing half-written stays.
 */
#ifndef IMSD_MBOX_H
#define IMSD_MBOX_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MBOX_LOCK_SECONDS	10
#define MBOX_STALE_SECONDS	300

/* 0 delivered; -1 temporary failure; -2 permanent (not a regular file, several links,
 * another owner). err says why, naming the path. now: the time for the From_ line. */
int mbox_deliver(const char *path, const char *sender, const char *recipient, int msg_fd,
    uint64_t off, uint64_t len, time_t now, char *err, size_t errlen);

/* The mboxrd body transformation alone (PURE, for tests and the fuzz target): append the
 * message in[0..n) to out as mbox_deliver writes it (without the From_ line and headers).
 * *state carries the line-start state across calls (start with 0). Returns the bytes
 * written to out, which needs room for 2*n + 2. */
size_t mbox_quote(const char *in, size_t n, char *out, int *state);

#endif
