/*
 * workq — run blocking work (password hashing, ...) on worker threads and hand the result
 * back to the event loop. A job's run() executes on a worker; its done() executes on the
 * loop thread, in completion order, woken through an eventfd.
 */
#ifndef IMSD_WORKQ_H
#define IMSD_WORKQ_H

#include "net/ev.h"

struct work {
	struct work *next;
	void (*run)(struct work *w);	/* worker thread */
	void (*done)(struct work *w);	/* loop thread; owns w afterwards */
};

struct workq;

struct workq *workq_start(struct ev_loop *loop, int nthreads);
void workq_submit(struct workq *q, struct work *w);
/* Finish queued jobs, join the workers, run the remaining done() callbacks, free q. */
void workq_stop(struct workq *q);

#endif
