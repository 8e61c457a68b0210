/*
 * pickup — the maildrop pickup: spool_dir/maildrop (mode 1733), where `imsd sendmail`
 * leaves messages while no server runs, fed to the local submission socket (local.h).
 *
 * As Postfix's postdrop does it: anyone may create a file there but nobody else may list,
 * read or remove it; a file is complete when its writer has made it mode 0644. The pickup
 * (a thread of the server, running as the run user) opens it without following links,
 * takes only regular files with one link of at most message_size_limit plus the largest
 * envelope, parses the envelope, and streams the message to the socket in chunks (never
 * the whole file in memory), where an ordinary SMTP session takes it (limits, recipient
 * checks, "250 only after the queue commit"); the file is removed after the server's 250.
 * Who submitted is the file's owner, never what the file says.
 *
 * What it cannot accept (malformed, refused with 5xx, a session that failed twice on it,
 * deferred past queue_lifetime) is copied into spool_dir/corrupt (a copy of the run
 * user's: the writer may still hold the original open) and removed, with a log line; what
 * must not be read (a link, a file with several links, one too large) is removed without
 * a copy. corrupt/ keeps its copies for queue_lifetime. One user (not root, not the run
 * user) may have at most PICKUP_USER_FILES files and PICKUP_USER_BYTES bytes waiting; past
 * that the newest are removed, each with a log line. A temporary failure (4xx) leaves the
 * file for the next scan; a session that times out or breaks in the data moves on to the
 * next file. Every value logged goes through log_value().
 */
#ifndef IMSD_PICKUP_H
#define IMSD_PICKUP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PICKUP_SECONDS	10	/* the maildrop is scanned at start and this often */
#define PICKUP_FAILS_MAX 2	/* a file the session failed on this often goes to corrupt/ */
#define PICKUP_USER_FILES 1000	/* files one user may have waiting in the maildrop */
#define PICKUP_USER_BYTES (256ULL * 1024 * 1024)	/* and bytes (disk blocks) */
#define PICKUP_SCAN_MAX	20000	/* entries looked at per scan; the rest the next */

struct pickup;

/* What the pickup needs to know; the sizes and times may change on reload. */
struct pickup_conf {
	const char *spool_dir;
	const char *hostname;
	unsigned lifetime;		/* queue_lifetime, seconds */
	uint64_t message_size_limit;
	unsigned timeout;		/* seconds for one read or write of the session */
};

/* A pickup without its thread (tests, the fuzz target). NULL with err. */
struct pickup *pickup_new(const struct pickup_conf *pc, char *err, size_t errlen);
/* How it reaches the server: a connected stream socket, or -1 (errno). Default: the
 * socket spool_dir/submit, with pc->timeout on every read and write. */
void pickup_set_connect(struct pickup *p, int (*fn)(void *arg), void *arg);
/* Reload: the new message_size_limit and queue_lifetime. */
void pickup_set_limits(struct pickup *p, uint64_t message_size_limit, unsigned lifetime);

enum pickup_result {
	PICKUP_DONE,		/* submitted, or given up (copied to corrupt/, or removed) */
	PICKUP_LATER,		/* left in the maildrop for a later scan */
	PICKUP_STOP,		/* the server does not answer: end this scan */
};
/* One file name of the maildrop directory dfd, at time now. */
enum pickup_result pickup_file(struct pickup *p, int dfd, const char *name, time_t now);
/* One scan of the maildrop (and, now and then, of corrupt/). */
void pickup_scan(struct pickup *p);

/* Start the thread (after the listeners are served): pickup_new + a scan now and every
 * PICKUP_SECONDS. NULL with err. */
struct pickup *pickup_start(const struct pickup_conf *pc, char *err, size_t errlen);
/* Stop it (NULL: nothing), remove the socket, free. Also frees a pickup_new one. */
void pickup_stop(struct pickup *p);

/* The uid the pickup is submitting for right now, or -1: the server's local_peer names
 * it for the pickup's own connections (the kernel says they come from this process). */
long pickup_current_uid(void);

#endif
