/*
 * localproc — the local delivery process: the one part of imsd that may switch users, so
 * that mail for a system user is written into that user's own mailbox (/var/mail/USER)
 * with that user's uid. Everything that talks to the network stays unprivileged.
 *
 * localproc_start forks it before the server drops its privileges. It keeps only
 * CAP_SETUID and CAP_SETGID (every other capability, the ambient set included, is
 * dropped; no_new_privs is set), runs as the run user, closes every descriptor but its
 * socket, and answers requests (proto/lda.h) one child per delivery: the child becomes the
 * recipient (supplementary group `mail` for the dot lock in /var/mail, gid and uid of the
 * user), drops the two capabilities too, writes the mailbox (deliver/mbox.h) and replies.
 * A request is a datagram on the process's socket carrying the queue file's descriptor and
 * a reply socket; nothing else is read from the queue manager. It exits when the server's
 * end of the socket closes.
 *
 * localproc_deliver is the queue manager's side (any thread; blocking: a delivery thread).
 */
#ifndef IMSD_LOCALPROC_H
#define IMSD_LOCALPROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/lda.h"

struct localproc;

/*
 * Fork the delivery process. as_root: started as root, become run_user (uid, gid, name)
 * keeping CAP_SETUID/CAP_SETGID; else keep those two of the capabilities this process has
 * (under systemd: AmbientCapabilities). NULL with err when it cannot have them (then
 * system users' mailboxes cannot be written: the caller says so).
 */
struct localproc *localproc_start(int as_root, uid_t uid, gid_t gid, const char *name,
    char *err, size_t errlen);

/* One delivery; LDA_OK, LDA_TEMP or LDA_PERM with reason. */
enum lda_status localproc_deliver(struct localproc *lp, const struct lda_request *r,
    int msg_fd, char *reason, size_t rlen);

pid_t localproc_pid(const struct localproc *lp);

/* Close the socket (the process exits) and reap it. */
void localproc_stop(struct localproc *lp);

/* Does the current process hold CAP_SETUID and CAP_SETGID (permitted)? */
int localproc_can_switch(void);

#endif
