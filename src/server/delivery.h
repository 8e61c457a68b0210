/*
 * delivery — the local delivery agent: a thread that takes committed messages from the
 * queue, writes each pending recipient into its Maildir, journals partial progress, retries
 * failures with exponential backoff (retry_min doubling up to retry_max), and removes the
 * message from the queue when every recipient is done. It never drops a message: a
 * failure leaves it queued and logged with the reason.
 */
#ifndef IMSD_DELIVERY_H
#define IMSD_DELIVERY_H

#include <time.h>

#include "queue/queue.h"
#include "server/cfg.h"

struct delivery;

/* Start the thread. cfg is referenced. */
struct delivery *delivery_start(struct queue *q, struct cfg *cfg);
/* Schedule qid at time due (0 = now). Thread-safe. */
void delivery_enqueue(struct delivery *d, const char *qid, time_t due);
/* Use a new configuration for later attempts. */
void delivery_set_cfg(struct delivery *d, struct cfg *cfg);
/* Make every scheduled message due now. */
void delivery_flush(struct delivery *d);
/* Finish the message in hand, then stop the thread and free d. */
void delivery_stop(struct delivery *d);
/* Scan the queue and schedule every message (start-up recovery). Returns the count. */
int delivery_recover(struct delivery *d);

#endif
