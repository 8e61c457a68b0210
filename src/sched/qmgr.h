/*
 * qmgr — the queue manager, on the event loop.
 *
 * It keeps every queued message's per-recipient state in memory (loaded from the queue
 * file and its journal), hands due recipients to the delivery agent their route names
 * (deliver/route.h, deliver/agent.h: maildir on worker threads for local domains, smtp for
 * the rest), one job per route (all local recipients of a message together, each remote
 * destination its own), and records what came back: delivered, retry later (sched/retry:
 * retry_min doubling up to retry_max), or failed. Failures become one RFC 3464 bounce per batch to the
 * envelope sender (never for the null sender); a message still undelivered after
 * delay_warning gets one delay notice; after queue_lifetime it is bounced. State changes
 * reach the journal (fdatasync'd) before the next attempt, so a restart neither repeats a
 * delivery that was recorded nor forgets a retry schedule. A message is removed from the
 * queue when every recipient is delivered or bounced.
 *
 * Concurrency: at most QMGR_LOCAL_MAX maildir jobs, QMGR_RELAY_MAX smtp jobs and
 * QMGR_DEST_MAX per destination.
 */
#ifndef IMSD_QMGR_H
#define IMSD_QMGR_H

#include <stdint.h>
#include <time.h>

#include "net/ev.h"
#include "queue/queue.h"
#include "cfg/cfg.h"

#define QMGR_RELAY_MAX	32
#define QMGR_DEST_MAX	8
#define QMGR_LOCAL_MAX	4	/* local delivery jobs in flight */
#define QMGR_OPEN_MAX	1000	/* messages whose file stays open until first delivery */

struct qmgr;
struct relay;
struct workq;

/* Local addresses of this server, for loop detection. */
struct qmgr *qmgr_new(struct queue *q, struct workq *wq, struct relay *relay, struct cfg *cfg);
void qmgr_set_cfg(struct qmgr *m, struct cfg *cfg);

/* The local delivery process (deliver/localproc.h) for system_mailboxes; NULL = none. Set
 * before the first delivery. */
struct localproc;
void qmgr_set_localproc(struct qmgr *m, struct localproc *lp);
/* A message was committed (or recovered): load it and schedule what is due. */
void qmgr_add(struct qmgr *m, const char *qid);
/* Load every message in the queue. Returns the count. */
int qmgr_recover(struct qmgr *m);
void qmgr_tick(struct qmgr *m, time_t now);
/* Retry every deferred recipient now. Returns the number of messages. */
int qmgr_flush(struct qmgr *m);
/* Remove a message ("ALL" for every one). Returns how many were removed or marked. */
int qmgr_delete(struct qmgr *m, const char *qid);
/* Stop starting work: what is in flight still reports back, but nothing new is scheduled
 * and no bookkeeping is written (the journal on disk is the truth for the next start). */
void qmgr_stop(struct qmgr *m);
/* For the metrics: messages queued, recipients still pending, the oldest arrival (0 when
 * the queue is empty). */
void qmgr_stats(const struct qmgr *m, uint64_t *messages, uint64_t *pending, time_t *oldest);
/* Jobs in flight (delivery or bookkeeping). */
unsigned qmgr_busy(const struct qmgr *m);
/* Jobs in flight on this host (Maildir writes, bookkeeping): not relay deliveries. */
unsigned qmgr_busy_local(const struct qmgr *m);
void qmgr_free(struct qmgr *m);

#endif
