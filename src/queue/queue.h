/*
 * queue — the durable spool on disk (spool_dir).
 *
 *   spool_dir/lock        flock'd by the running server (one server per spool)
 *   spool_dir/incoming/   messages being received; never acknowledged; removed at start
 *   spool_dir/queue/      committed messages "<qid>" and their journals "<qid>.j"
 *   spool_dir/free/       files of removed messages, kept for reuse
 *
 * Recycling: creating a file costs ext4 an inode allocation, and right after many
 * deletions that search dominates the whole receive path (profiled: ~40% of CPU in
 * find_inode_bit/recently_deleted). So a removed message's file is renamed into free/
 * and the next message is written into it (overwritten, then cut to length), with no
 * inode allocated or freed. Nothing in free/ is ever read.
 *
 * Writing (event-loop thread): queue_create writes the header into incoming/<qid>;
 * queue_append adds body bytes; queue_finish adds the trailer. Making it durable is split
 * so that many messages share the expensive part (group commit): queue_sync_file
 * (fdatasync, any thread), queue_publish (rename into queue/), then ONE queue_sync_dir for
 * the whole batch. Only after queue_sync_dir returns 0 may the 250 be sent.
 *
 * Reading (delivery): queue_load reads and verifies a committed message (header, body
 * length against the trailer, journal) and returns the envelope and the body's offset.
 *
 * All functions return 0 or -1 with a reason in err (no logging here), and are safe to
 * call from several threads on different messages.
 */
#ifndef IMSD_QUEUE_H
#define IMSD_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "queue/qfmt.h"

#define QUEUE_FREE_MAX 4096	/* recycled files kept at most */

struct queue {
	char *dir;
	int dirfd, incfd, qfd, freefd;	/* spool_dir, incoming/, queue/, free/ */
	int lockfd;
	/* recycled files in free/: a stack of names, shared by threads */
	void *freelock;			/* pthread_mutex_t, opaque to keep pthread out */
	unsigned *freenames;		/* numbers N of free/fN */
	size_t nfree;
	unsigned freeseq;
};

struct queue_writer {
	int fd;
	char qid[32];
	uint64_t bodylen;
	size_t hdrlen;
	size_t skip;		/* gap left before the body (see qfmt.h); 0 without one */
	int has_skip;
	int recycled;		/* the file had content: cut it to length at the end */
};

/* Create the directories if needed and open them. lock: take spool_dir/lock exclusively
 * (the server does; read-only tools do not). */
int queue_open(const char *spool_dir, int lock, struct queue *q, char *err, size_t errlen);
/* The same on the spool directory already open as dirfd (which the queue then owns and
 * closes, also on failure): for root at start, which opens spool_dir itself (privs.h).
 * Nothing inside is followed: a link or a file where a subdirectory or the lock belongs is
 * refused, err naming it. */
int queue_open_at(int dirfd, const char *spool_dir, int lock, struct queue *q, char *err,
    size_t errlen);
void queue_close(struct queue *q);
/* Is a server holding the lock? 1 yes, 0 no. */
int queue_locked_by_other(const char *spool_dir);

/* A new queue id: 16 upper-case hex digits, time-ordered, unique within this spool. */
void queue_new_id(char out[32]);

int queue_create(struct queue *q, struct qenv *env, struct queue_writer *w, char *err, size_t errlen);
int queue_append(struct queue_writer *w, const void *buf, size_t len, char *err, size_t errlen);
/* Write header fields in front of the body, into the gap queue_create reserved (env->skip
 * with env->has_skip): before queue_finish. -1 (err) when they do not fit or on I/O error. */
int queue_prepend(struct queue_writer *w, const void *buf, size_t len, char *err, size_t errlen);
/* Open incoming/<qid> (a message being received) for reading; the body starts at
 * w->hdrlen + w->skip and is w->bodylen bytes so far. -1 on error. */
int queue_open_incoming(struct queue *q, const char *qid);
int queue_finish(struct queue_writer *w, char *err, size_t errlen);
void queue_discard(struct queue *q, struct queue_writer *w);
int queue_sync_file(struct queue_writer *w, char *err, size_t errlen);
/* Rename incoming/<qid> to queue/<qid> and close the writer's fd. */
int queue_publish(struct queue *q, struct queue_writer *w, char *err, size_t errlen);
int queue_sync_dir(struct queue *q, char *err, size_t errlen);
/* Make every file written so far durable at once (syncfs of the spool's filesystem):
 * the group commit of a batch. Errors of any write-back on the filesystem fail it. */
int queue_sync_data(struct queue *q, char *err, size_t errlen);

/* Load queue/<qid>: fills env (qenv_free it), opens the file (*fd, positioned nowhere in
 * particular), *body_off and *body_len. */
int queue_load(struct queue *q, const char *qid, struct qenv *env, int *fd, uint64_t *body_off,
    uint64_t *body_len, char *err, size_t errlen);
/* Open queue/<qid> for reading the body again (its offsets are known from queue_load). */
int queue_open_message(struct queue *q, const char *qid, char *err, size_t errlen);
/* Append one journal line (ending in \n) and fdatasync it. */
int queue_journal(struct queue *q, const char *qid, const char *line, char *err, size_t errlen);
/* Remove a message and (when has_journal) its journal. */
int queue_remove(struct queue *q, const char *qid, int has_journal, char *err, size_t errlen);
/* List committed qids (malloc'd array of malloc'd strings), sorted. */
int queue_list(struct queue *q, char ***ids, size_t *n, char *err, size_t errlen);
void queue_list_free(char **ids, size_t n);
/* The filesystem is short of space: unlink every recycled file in free/ (their blocks are
 * freed; recycling starts again with the next removed message). Returns the count. */
int queue_free_release(struct queue *q);
/* Remove journals left without their message (a crash inside queue_remove). Count. */
int queue_clean_orphans(struct queue *q);
/* Remove everything in incoming/ (unacknowledged leftovers of a crash). Returns count. */
int queue_clean_incoming(struct queue *q);

#endif
