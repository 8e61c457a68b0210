/*
 * mbox_agent — the delivery agent (deliver/agent.h) for system users' mailboxes: each
 * recipient of a job is handed to the local delivery process (deliver/localproc.h), which
 * appends it to /var/mail/USER as USER; on worker threads of a workq, since each delivery
 * blocks on the process's answer.
 *
 * Outcomes: delivered 2.0.0; anything else (the mailbox locked, a link or a foreign file
 * where the mailbox belongs, a full disk, the process gone) 4.3.0 with the reason, retried:
 * nothing is bounced for a mailbox the administrator can repair.
 *
 * mbox_agent_user says which recipients are its (system_mailboxes): see the function.
 */
#ifndef IMSD_MBOX_AGENT_H
#define IMSD_MBOX_AGENT_H

#include <stddef.h>

#include "deliver/agent.h"
#include "deliver/localproc.h"
#include "net/workq.h"

/* An agent whose jobs run on wq and go to lp (both borrowed). NULL on allocation failure. */
struct agent *mbox_agent_new(struct workq *wq, struct localproc *lp);
void mbox_agent_free(struct agent *a);

/*
 * With system_mailboxes: is addr ("local@domain", lower-case) a passwd user (not the one
 * imsd runs as) at one of the host's own names (localhost, hostname, /etc/mailname) that
 * is in local_domains? 1 with the login name in user, else 0. One mailbox per user:
 * alice@localhost and alice@HOSTNAME are the same /var/mail/alice.
 */
int mbox_agent_user(const struct cfg *c, const char *addr, char *user, size_t len);

#endif
