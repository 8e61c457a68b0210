/*
 * commit — the group commit: one thread makes finished messages durable in batches.
 *
 * A session's message, once queue_finish'd, is handed over with commit_submit. The thread
 * takes everything submitted since its last batch and makes it durable together: one
 * syncfs of the spool's filesystem for a batch of two or more (one fdatasync for a single
 * file), then the renames into queue/, then ONE fsync of queue/. While it waits for the
 * disk the next batch gathers, which is why one thread beats several (measured with
 * smtp-source, 50 sessions, 1 KiB: one thread 2,700 msgs/s received, four 1,100-2,100).
 *
 * Each job is then decided (ok = durable, or err says why not) and given back through its
 * own done callback, ON THE COMMIT THREAD: the callback must only hand the job to its owner
 * (a list under a lock and an eventfd, say) and return. Only a job with ok set may be
 * answered with 250.
 */
#ifndef IMSD_COMMIT_H
#define IMSD_COMMIT_H

#include "queue/queue.h"

struct commit_job {
	struct commit_job *next;	/* free for the owner once done is called */
	struct queue_writer w;		/* finished; published into queue/ when ok */
	int ok;
	char err[256];
	void (*done)(struct commit_job *j);
};

struct committer;

/* Start the commit thread for q (call before anything is submitted). NULL on failure. */
struct committer *commit_start(struct queue *q);
void commit_submit(struct committer *c, struct commit_job *j);
/* Commit what was submitted, then stop the thread and free c. */
void commit_stop(struct committer *c);

#endif
