/*
 * mbox_agent — system users' mailboxes through the local delivery process (see
 * mbox_agent.h).
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "deliver/mbox_agent.h"
#include "util/str.h"

struct mbox_impl {
	struct workq *wq;
	struct localproc *lp;
};

struct bjob {
	struct work w;
	struct dlv_job *job;
	struct localproc *lp;
};

int
mbox_agent_user(const struct cfg *c, const char *addr, char *user, size_t len)
{
	const char *at = strrchr(addr, '@'), *dom;
	struct passwd pw, *pwp = NULL;
	char buf[4096];
	size_t ll;
	int own, local = 0;

	if (!c->conf.system_mailboxes || at == NULL)
		return 0;
	dom = at + 1;
	ll = (size_t)(at - addr);
	own = strcmp(dom, "localhost") == 0 || (c->conf.hostname != NULL &&
	    strcasecmp(dom, c->conf.hostname) == 0) || (c->mailname[0] != '\0' &&
	    strcmp(dom, c->mailname) == 0);
	for (size_t i = 0; i < c->conf.nlocal_domains && !local; i++)
		local = strcmp(dom, c->conf.local_domains[i]) == 0;
	if (!own || !local || ll == 0 || ll >= len)
		return 0;
	memcpy(user, addr, ll);
	user[ll] = '\0';
	if (getpwnam_r(user, &pw, buf, sizeof(buf), &pwp) != 0 || pwp == NULL ||
	    pw.pw_uid == getuid() || strcmp(pw.pw_name, user) != 0)
		return 0;
	return 1;
}

/* Worker thread: every recipient, then the queue file is closed. */
static void
bjob_run(struct work *w)
{
	struct bjob *bj = (struct bjob *)w;
	struct dlv_job *j = bj->job;
	char reason[DLV_DIAG_MAX];

	for (size_t k = 0; k < j->nrcpts; k++) {
		struct dlv_result *res = &j->results[k];
		struct lda_request req;
		enum lda_status st = LDA_TEMP;

		memset(&req, 0, sizeof(req));
		res->peer_dsn = 0;
		if (!mbox_agent_user(j->cfg, j->rcpts[k], req.user, sizeof(req.user))) {
			str_copy(reason, sizeof(reason), "no longer a system user at this host");
		} else {
			req.mailbox = LDA_MBOX;
			str_copy(req.sender, sizeof(req.sender), j->sender);
			str_copy(req.recipient, sizeof(req.recipient), j->rcpts[k]);
			req.offset = j->body_off;
			req.length = j->body_len;
			snprintf(req.id, sizeof(req.id), "%s_%zu", j->qid, j->idx[k]);
			st = localproc_deliver(bj->lp, &req, j->fd, reason, sizeof(reason));
		}
		res->outcome = st == LDA_OK ? DLV_OK : DLV_TEMP;
		str_copy(res->status, sizeof(res->status), st == LDA_OK ? "2.0.0" : "4.3.0");
		if (st == LDA_OK)
			res->diag[0] = '\0';
		else
			snprintf(res->diag, sizeof(res->diag), "x-imsd; /var/mail/%s: %s", req.user,
			    reason);
	}
	close(j->fd);
	j->fd = -1;
}

/* Loop thread: hand the results back. */
static void
bjob_done(struct work *w)
{
	struct bjob *bj = (struct bjob *)w;
	struct dlv_job *j = bj->job;

	free(bj);
	j->done(j);
}

static void
mbox_start(struct agent *a, struct dlv_job *job)
{
	struct mbox_impl *mi = a->impl;
	struct bjob *bj = calloc(1, sizeof(*bj));

	if (bj == NULL)
		abort();	/* out of memory with a job in hand: nothing sane remains */
	bj->job = job;
	bj->lp = mi->lp;
	bj->w.run = bjob_run;
	bj->w.done = bjob_done;
	workq_submit(mi->wq, &bj->w);
}

struct agent *
mbox_agent_new(struct workq *wq, struct localproc *lp)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct mbox_impl *mi = calloc(1, sizeof(*mi));

	if (a == NULL || mi == NULL) {
		free(a);
		free(mi);
		return NULL;
	}
	mi->wq = wq;
	mi->lp = lp;
	a->name = "mbox";
	a->final = 1;
	a->start = mbox_start;
	a->impl = mi;
	return a;
}

void
mbox_agent_free(struct agent *a)
{
	if (a == NULL)
		return;
	free(a->impl);
	free(a);
}
