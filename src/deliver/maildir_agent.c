/*
 * maildir_agent — Maildir delivery on worker threads (see maildir_agent.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "deliver/maildir.h"
#include "deliver/maildir_agent.h"
#include "util/str.h"

struct mjob {
	struct work w;
	struct dlv_job *job;
};

/* Worker thread: every recipient, then the queue file is closed. */
static void
mjob_run(struct work *w)
{
	struct dlv_job *j = ((struct mjob *)w)->job;
	const struct conf *cf = &j->cfg->conf;
	char err[DLV_DIAG_MAX], unique[64];

	for (size_t k = 0; k < j->nrcpts; k++) {
		struct dlv_result *res = &j->results[k];
		int r;

		snprintf(unique, sizeof(unique), "%s_%zu", j->qid, j->idx[k]);
		r = maildir_deliver(cf->mail_dir, j->rcpts[k], j->sender, j->fd, j->body_off,
		    j->body_len, cf->hostname, unique, err, sizeof(err));
		res->peer_dsn = 0;
		res->outcome = r == 0 ? DLV_OK : r == MAILDIR_PERM ? DLV_PERM : DLV_TEMP;
		str_copy(res->status, sizeof(res->status), r == 0 ? "2.0.0" : r == MAILDIR_PERM ?
		    "5.1.3" : "4.3.0");
		str_copy(res->diag, sizeof(res->diag), r == 0 ? "" : err);
	}
	close(j->fd);
	j->fd = -1;
}

/* Loop thread: hand the results back. */
static void
mjob_done(struct work *w)
{
	struct mjob *mj = (struct mjob *)w;
	struct dlv_job *j = mj->job;

	free(mj);
	j->done(j);
}

static void
maildir_start(struct agent *a, struct dlv_job *job)
{
	struct mjob *mj = calloc(1, sizeof(*mj));

	if (mj == NULL) {
		/* never synchronous: the workq reports back from the loop */
		abort();	/* out of memory with a job in hand: nothing sane remains */
	}
	mj->job = job;
	mj->w.run = mjob_run;
	mj->w.done = mjob_done;
	workq_submit(a->impl, &mj->w);
}

struct agent *
maildir_agent_new(struct workq *wq)
{
	struct agent *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->name = "maildir";
	a->final = 1;
	a->start = maildir_start;
	a->impl = wq;
	return a;
}

void
maildir_agent_free(struct agent *a)
{
	free(a);
}
