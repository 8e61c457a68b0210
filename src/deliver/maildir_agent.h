/*
 * maildir_agent — the maildir delivery agent (deliver/agent.h): each recipient of a job
 * into its Maildir below mail_dir (deliver/maildir.c), on the worker threads of a workq,
 * since every delivery blocks on fsync. The results come back on the loop thread.
 *
 * Outcomes: delivered 2.0.0; an address that can never name a mailbox 5.1.3 (bounced at
 * once); anything else (a full disk, a foreign directory, a link in the way) 4.3.0 with
 * the reason, retried.
 */
#ifndef IMSD_MAILDIR_AGENT_H
#define IMSD_MAILDIR_AGENT_H

#include "deliver/agent.h"
#include "net/workq.h"

/* An agent whose jobs run on wq (borrowed, must outlive it). NULL on allocation failure. */
struct agent *maildir_agent_new(struct workq *wq);
void maildir_agent_free(struct agent *a);

#endif
