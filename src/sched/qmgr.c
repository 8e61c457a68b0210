/*
 * qmgr — the queue manager; see qmgr.h.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "deliver/agent.h"
#include "deliver/dsn.h"
#include "deliver/maildir_agent.h"
#include "deliver/mbox_agent.h"
#include "deliver/relay.h"
#include "deliver/route.h"
#include "proto/smtp_path.h"
#include "sched/qmgr.h"
#include "sched/retry.h"
#include "net/workq.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/intl.h"
#include "util/str.h"
#include "util/utf8.h"

#define HEADER_SCAN_MAX	(64 * 1024)
#define RET_FULL_MAX	(1024 * 1024)	/* RET=FULL returns a message up to this size whole;
					 * a larger one gets its headers only */

struct qm_msg {
	struct qm_msg *prev, *next;
	struct qenv env;
	uint64_t size;
	uint64_t body_off;
	int fd;			/* the queue file, open from loading until the first delivery */
	unsigned inflight;	/* delivery jobs out */
	int updating;		/* a bookkeeping job is out */
	int deleted;
	/* results waiting for the next bookkeeping job */
	char *journal;
	size_t jlen, jcap;
	int bounce_pending;	/* some recipients newly failed */
	unsigned char *newly_failed;	/* per recipient, for the next report: NF_* bits */
	int warn_pending;
	int notify_pending;	/* some recipients asked for a success report (NOTIFY=SUCCESS) */
	struct qm_msg *wnext;	/* on the wait list for a delivery slot */
	int waiting;
	time_t book_after;	/* a bookkeeping job failed (full disk): not before this */
	time_t deferred_at;	/* last counted in imsd_messages_deferred_total */
};

#define BOOK_RETRY_SECONDS 10

/* newly_failed bits: what the next report says about a recipient */
#define NF_FAILED	1
#define NF_DELIVERED	2	/* into a local mailbox, NOTIFY=SUCCESS */
#define NF_RELAYED	4	/* to a peer without DSN, NOTIFY=SUCCESS */

/* RFC 3461 §4.1: no NOTIFY means the server's default (failures and delays reported). */
static int
wants(const struct qrcpt *r, unsigned bit)
{
	return r->notify == 0 ? bit != DSN_NOTIFY_SUCCESS : (r->notify & bit) != 0;
}

/* A success report for recipient i, when it asked for one. */
static void
note_success(struct qm_msg *msg, size_t i, unsigned char how)
{
	if (!wants(&msg->env.rcpts[i], DSN_NOTIFY_SUCCESS) || msg->newly_failed == NULL ||
	    msg->env.sender[0] == '\0')
		return;
	msg->newly_failed[i] |= how;
	msg->notify_pending = 1;
}

/* An agent and its limits: jobs in flight, and per destination (route key) when set. */
struct agent_slot {
	struct agent *agent;
	unsigned jobs, max, per_dest_max;
};

struct qmgr {
	struct queue *q;
	struct workq *wq;
	struct cfg *cfg;
	struct qm_msg *msgs;
	unsigned nmsgs;
	struct agent_slot slots[ROUTE_MBOX + 1];	/* by enum route_agent */
	struct agent *maildir;		/* ours: the maildir agent on wq */
	struct agent *mbox;		/* ours, with system_mailboxes: /var/mail/USER */
	unsigned book_jobs;
	int stopping;
	struct destcount { char dom[ROUTE_NEXTHOP_MAX + 8]; unsigned n; } dests[QMGR_RELAY_MAX];
	struct qm_msg *whead, *wtail;	/* messages waiting for a delivery slot, FIFO */
};

static void qm_schedule(struct qmgr *m, struct qm_msg *msg, time_t now);
static void qm_kick(struct qmgr *m);
static void qm_maybe_book(struct qmgr *m, struct qm_msg *msg);

/* ---- helpers ---- */

/* Remember that msg has due recipients but no free slot. */
static void
wait_push(struct qmgr *m, struct qm_msg *msg)
{
	if (msg->waiting)
		return;
	msg->waiting = 1;
	msg->wnext = NULL;
	if (m->wtail)
		m->wtail->wnext = msg;
	else
		m->whead = msg;
	m->wtail = msg;
}

static void
wait_remove(struct qmgr *m, struct qm_msg *msg)
{
	struct qm_msg **pp = &m->whead, *prev = NULL;

	if (!msg->waiting)
		return;
	while (*pp != NULL && *pp != msg) {
		prev = *pp;
		pp = &(*pp)->wnext;
	}
	if (*pp == msg) {
		*pp = msg->wnext;
		if (m->wtail == msg)
			m->wtail = prev;
	}
	msg->waiting = 0;
}

/* A slot freed: give it to the messages that have been waiting longest. */
static void
qm_kick(struct qmgr *m)
{
	time_t now = time(NULL);
	unsigned budget = QMGR_LOCAL_MAX + QMGR_RELAY_MAX;

	while (m->whead != NULL && budget-- > 0) {
		struct qm_msg *msg = m->whead;
		m->whead = msg->wnext;
		if (m->whead == NULL)
			m->wtail = NULL;
		msg->waiting = 0;
		qm_schedule(m, msg, now);
		if (msg->waiting)
			break;	/* still no slot: the rest waits too */
	}
}

static void
msg_free(struct qm_msg *msg)
{
	if (msg->fd >= 0)
		close(msg->fd);
	qenv_free(&msg->env);
	free(msg->journal);
	free(msg->newly_failed);
	free(msg);
}

static void
jappend(struct qm_msg *msg, const char *line)
{
	size_t n = strlen(line);

	if (msg->jlen + n + 1 > msg->jcap) {
		size_t cap = msg->jcap ? msg->jcap * 2 : 256;
		while (cap < msg->jlen + n + 1)
			cap *= 2;
		char *p = realloc(msg->journal, cap);
		if (p == NULL)
			return;	/* state stays in memory; a restart retries (at-least-once) */
		msg->journal = p;
		msg->jcap = cap;
	}
	memcpy(msg->journal + msg->jlen, line, n + 1);
	msg->jlen += n;
}

static void
retry_params_of(const struct conf *c, struct retry_params *p)
{
	p->retry_min = c->retry_min;
	p->retry_max = c->retry_max;
	p->queue_lifetime = c->queue_lifetime;
	p->delay_warning = c->delay_warning;
}

static struct destcount *
dest_slot(struct qmgr *m, const char *dom, int create)
{
	struct destcount *free_slot = NULL;

	for (int i = 0; i < QMGR_RELAY_MAX; i++) {
		if (m->dests[i].n > 0 && strcmp(m->dests[i].dom, dom) == 0)
			return &m->dests[i];
		if (m->dests[i].n == 0 && free_slot == NULL)
			free_slot = &m->dests[i];
	}
	if (create && free_slot != NULL)
		str_copy(free_slot->dom, sizeof(free_slot->dom), dom);
	return create ? free_slot : NULL;
}

/* ---- results ---- */

/* Record one recipient's outcome in memory and in the journal-to-be. */
static void
qm_result(struct qmgr *m, struct qm_msg *msg, size_t i, enum dlv_outcome oc,
    const char *status, const char *diag, time_t now)
{
	struct qrcpt *r = &msg->env.rcpts[i];
	struct retry_params rp;
	char line[QFMT_JOURNAL_LINE_MAX], d[QFMT_JOURNAL_REASON_MAX + 1];
	char lto[LOG_VALUE_MAX], lwhy[LOG_VALUE_MAX];

	/* the reason as the journal keeps it: one line of printable ASCII */
	str_copy(d, sizeof(d), diag ? diag : "");
	for (char *p = d; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = ' ';
	switch (oc) {
	case DLV_OK:
		r->state = QR_DONE;
		metrics_inc(M_RCPT_DELIVERED);
		qfmt_journal_done(i, line, sizeof(line));
		break;
	case DLV_PERM:
		r->state = QR_FAILED;
		metrics_inc(M_RCPT_BOUNCED);
		str_copy(r->status, sizeof(r->status), status && status[0] ? status : "5.0.0");
		str_copy(r->last_error, sizeof(r->last_error), d);
		qfmt_journal_fail(i, r->status, d, line, sizeof(line));
		if (msg->newly_failed != NULL)
			msg->newly_failed[i] |= NF_FAILED;
		msg->bounce_pending = 1;
		log_info("qid=%s event=bounced to=%s status=%s reason=%s", msg->env.qid,
		    log_addr(lto, sizeof(lto), r->addr), r->status,
		    log_value(lwhy, sizeof(lwhy), d, strlen(d)));
		break;
	default:
		r->attempts++;
		retry_params_of(&m->cfg->conf, &rp);
		r->next_try = now + retry_backoff(&rp, r->attempts);
		metrics_inc(M_RCPT_DEFERRED);
		if (msg->deferred_at != now) {
			/* one count per delivery attempt of the message, not per recipient */
			msg->deferred_at = now;
			metrics_inc(M_MSG_DEFERRED);
		}
		str_copy(r->status, sizeof(r->status), status && status[0] ? status : "4.0.0");
		str_copy(r->last_error, sizeof(r->last_error), d);
		qfmt_journal_defer(i, r->attempts, r->next_try, d, line, sizeof(line));
		log_info("qid=%s event=deferred to=%s status=%s attempts=%u retry_in=%lds "
		    "reason=%s", msg->env.qid, log_addr(lto, sizeof(lto), r->addr), r->status,
		    r->attempts, (long)(r->next_try - now), log_value(lwhy, sizeof(lwhy), d, strlen(d)));
		break;
	}
	jappend(msg, line);
}

/* ---- delivery: a job per route, on the route's agent (deliver/agent.h) ---- */

struct qjob {
	struct dlv_job job;
	struct qmgr *m;
	struct qm_msg *msg;
	enum route_agent agent;
};

/* Give back what a job took from the message and the limits. */
static void
qjob_free(struct qjob *qj)
{
	cfg_unref(qj->job.cfg);
	free(qj->job.results);
	free(qj->job.rcpts);
	free(qj->job.idx);
	free(qj->job.notify);
	free(qj->job.dsn_orcpts);
	free(qj);
}

static void
qjob_done(struct dlv_job *job)
{
	struct qjob *qj = job->arg;
	struct qmgr *m = qj->m;
	struct qm_msg *msg = qj->msg;
	struct agent_slot *as = &m->slots[qj->agent];
	const struct agent *a = as->agent;
	struct destcount *dc = as->per_dest_max > 0 ? dest_slot(m, job->domain, 0) : NULL;
	time_t now = time(NULL);

	as->jobs--;
	if (dc != NULL && dc->n > 0)
		dc->n--;
	msg->inflight--;
	for (size_t k = 0; k < job->nrcpts; k++) {
		const struct dlv_result *res = &job->results[k];
		struct qrcpt *r = &msg->env.rcpts[job->idx[k]];
		char lto[LOG_VALUE_MAX], lorcpt[LOG_VALUE_MAX], lfrom[LOG_VALUE_MAX];
		char lrelay[LOG_VALUE_MAX], lreply[LOG_VALUE_MAX];
		if (res->outcome == DLV_OK)
			log_info("qid=%s event=delivered to=%s orcpt=%s from=%s size=%llu "
			    "mailer=%s%s%s status=%s delay=%lds%s%s", msg->env.qid,
			    log_addr(lto, sizeof(lto), r->addr), log_addr(lorcpt, sizeof(lorcpt), r->orcpt),
			    log_addr(lfrom, sizeof(lfrom), msg->env.sender), (unsigned long long)msg->size,
			    a->name, job->remote_mta[0] ? " relay=" : "", job->remote_mta[0] ?
			    log_value(lrelay, sizeof(lrelay), job->remote_mta, strlen(job->remote_mta)) :
			    "", res->status, (long)(now - msg->env.arrival),
			    job->remote_mta[0] ? " reply=" : "", job->remote_mta[0] ?
			    log_value(lreply, sizeof(lreply), res->diag, strlen(res->diag)) : "");
		if (job->remote_mta[0] != '\0')
			str_copy(r->remote_mta, sizeof(r->remote_mta), job->remote_mta);
		qm_result(m, msg, job->idx[k], res->outcome, res->status, res->diag, now);
		/* a final delivery says "delivered"; a peer that speaks DSN got NOTIFY and
		 * reports itself (RFC 3461 §4.1), one that does not is reported as "relayed" */
		if (res->outcome == DLV_OK && (a->final || !res->peer_dsn))
			note_success(msg, job->idx[k], a->final ? NF_DELIVERED : NF_RELAYED);
	}
	qjob_free(qj);
	qm_maybe_book(m, msg);
	qm_kick(m);
}

/*
 * Start one job: the n recipients idx of msg on route rt. 0 started (or, when the queue
 * file cannot be opened, recorded as a temporary failure of each); -1 the agent or the
 * destination is at its limit (the caller waits for a slot).
 */
static int
start_job(struct qmgr *m, struct qm_msg *msg, const struct route *rt, const size_t *idx,
    size_t n)
{
	struct agent_slot *as = &m->slots[rt->agent];
	struct destcount *dc = NULL;
	struct qjob *qj;
	char err[256];
	int fd;

	if (as->agent == NULL || as->jobs >= as->max)
		return -1;
	if (as->per_dest_max > 0 && ((dc = dest_slot(m, rt->key, 1)) == NULL ||
	    dc->n >= as->per_dest_max))
		return -1;
	if ((qj = calloc(1, sizeof(*qj))) == NULL ||
	    (qj->job.idx = calloc(n, sizeof(*qj->job.idx))) == NULL ||
	    (qj->job.rcpts = calloc(n, sizeof(char *))) == NULL ||
	    (qj->job.results = calloc(n, sizeof(*qj->job.results))) == NULL ||
	    (qj->job.notify = calloc(n, sizeof(*qj->job.notify))) == NULL ||
	    (qj->job.dsn_orcpts = calloc(n, sizeof(char *))) == NULL) {
		if (qj != NULL) {
			qj->job.cfg = NULL;
			qjob_free(qj);
		}
		return -1;
	}
	if ((fd = msg->fd) >= 0)
		msg->fd = -1;	/* the job owns it now */
	else if ((fd = queue_open_message(m->q, msg->env.qid, err, sizeof(err))) < 0) {
		time_t now = time(NULL);
		log_error("qid=%s event=queue-error reason=\"%s\"", msg->env.qid, err);
		for (size_t k = 0; k < n; k++)
			qm_result(m, msg, idx[k], DLV_TEMP, "4.3.0", err, now);
		qjob_free(qj);
		return 0;
	}
	qj->m = m;
	qj->msg = msg;
	qj->agent = rt->agent;
	qj->job.route = *rt;
	qj->job.body_off = msg->body_off;
	qj->job.body_len = msg->size;
	memcpy(qj->job.idx, idx, n * sizeof(*idx));
	str_copy(qj->job.qid, sizeof(qj->job.qid), msg->env.qid);
	str_copy(qj->job.domain, sizeof(qj->job.domain), rt->key);
	qj->job.sender = msg->env.sender;
	qj->job.body_8bit = msg->env.body_8bit;
	qj->job.requiretls = msg->env.requiretls;
	qj->job.body_binary = msg->env.body_binary;
	qj->job.smtputf8 = msg->env.smtputf8;
	qj->job.fd = fd;
	for (size_t k = 0; k < n; k++) {
		qj->job.rcpts[k] = msg->env.rcpts[idx[k]].addr;
		qj->job.notify[k] = msg->env.rcpts[idx[k]].notify;
		qj->job.dsn_orcpts[k] = msg->env.rcpts[idx[k]].dsn_orcpt;
	}
	qj->job.dsn_ret = msg->env.dsn_ret;
	qj->job.envid = msg->env.envid;
	qj->job.nrcpts = n;
	qj->job.cfg = cfg_ref(m->cfg);
	qj->job.done = qjob_done;
	qj->job.arg = qj;
	if (dc != NULL)
		dc->n++;
	as->jobs++;
	msg->inflight++;
	as->agent->start(as->agent, &qj->job);
	return 0;
}

/* ---- bookkeeping (worker threads): journal, bounces, removal ---- */

struct book_job {
	struct work w;
	struct qmgr *m;
	struct qm_msg *msg;
	struct cfg *cfg;
	char *journal;
	int remove;
	int dsn_action;		/* -1 none, DSN_FAILED or DSN_DELAYED */
	struct dsn_rcpt *drcpts;
	size_t ndrcpts;
	char dsn_to[SMTP_PATH_MAX + 1];	/* where the notice goes (normalised sender) */
	/* What the job took from the message, given back if the job fails (a full disk):
	 * nothing that was to be written or sent is forgotten. */
	int failed;
	int had_bounce, had_warn, had_notify;
	unsigned char *nf;
	char newqid[32];
	char err[300];
};

/*
 * Where a notice to sender goes. A sender in a local domain gets it in its mailbox, so the
 * address is unquoted and lower-cased as RCPT does for local recipients, and must name a
 * mailbox by the same rule: a notice that could never be delivered is dropped (0, *why)
 * at once rather than retried for queue_lifetime. Remote senders are used as they are.
 */
static int
bounce_target(const struct conf *cf, const char *sender, char *out, size_t outlen,
    const char **why)
{
	char wrapped[SMTP_PATH_MAX + 4];
	struct smtp_path p;
	const char *rest;

	str_copy(out, outlen, sender);
	snprintf(wrapped, sizeof(wrapped), "<%s>", sender);
	char adom[SMTP_DOMAIN_MAX + 1], flocal[SMTP_LOCAL_MAX + 1];

	if (smtp_path_parse(wrapped, strlen(wrapped), 0, 0, &p, &rest, why) != SMTP_PATH_OK)
		return 1;	/* not ours to judge: the relay says what it thinks */
	for (char *c = p.domain; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	size_t dl = strlen(p.domain);
	if (dl > 0 && p.domain[dl - 1] == '.')
		p.domain[dl - 1] = '\0';
	/* RFC 6531: a UTF-8 sender's domain compares in A-label form and its local part in
	 * NFC lower case, as RCPT does (util/intl) */
	if (p.is_literal || intl_domain_ascii(p.domain, adom, sizeof(adom), why) < 0 ||
	    !conf_is_local_domain(cf, adom))
		return 1;
	if (intl_local_fold(p.local, flocal, sizeof(flocal), why) < 0 ||
	    !smtp_local_mailbox_ok(flocal, why))
		return 0;
	snprintf(out, outlen, "%s@%s", flocal, adom);
	return 1;
}

/* Write a DSN as a new queued message; it is durable before this returns 0. */
static int
book_write_dsn(struct book_job *j)
{
	struct queue *q = j->m->q;
	struct qm_msg *msg = j->msg;
	struct qenv env, dsnenv;
	struct qrcpt r;
	struct queue_writer w;
	struct dsn_info in;
	uint64_t off, len;
	char *orig = NULL, *out = NULL, seed[64], envid[DSN_ENVID_MAX + 1];
	size_t outlen;
	ssize_t n = 0;
	int fd, ret = -1, full;
	time_t now = time(NULL);

	if (queue_load(q, msg->env.qid, &env, &fd, &off, &len, j->err, sizeof(j->err)) < 0)
		return -1;
	qenv_free(&env);
	/* RFC 3461 §4.3: RET=FULL asks for the whole message in a failure report */
	full = j->dsn_action == DSN_FAILED && msg->env.dsn_ret == DSN_RET_FULL &&
	    len <= RET_FULL_MAX;
	if (!full && len > HEADER_SCAN_MAX)
		len = HEADER_SCAN_MAX;
	if ((orig = malloc((size_t)len + 1)) != NULL)
		n = pread(fd, orig, (size_t)len, (off_t)off);
	close(fd);
	if (orig == NULL || n < 0) {
		snprintf(j->err, sizeof(j->err), "cannot read the original message");
		goto out;
	}
	snprintf(seed, sizeof(seed), "%s.%lld", msg->env.qid, (long long)now);
	memset(&in, 0, sizeof(in));
	in.hostname = j->cfg->conf.hostname;
	in.qid = msg->env.qid;
	in.arrival = msg->env.arrival;
	in.now = now;
	in.sender = msg->env.sender;
	in.action = (enum dsn_action)j->dsn_action;
	if (msg->env.envid[0] != '\0' && dsn_envid_field(msg->env.envid, envid,
	    sizeof(envid)) > 0)
		in.envid = envid;
	in.retry_hours_left = (unsigned)((j->cfg->conf.queue_lifetime -
	    (unsigned)(now - msg->env.arrival < 0 ? 0 : now - msg->env.arrival)) / 3600);
	in.rcpts = j->drcpts;
	in.nrcpts = j->ndrcpts;
	in.orig = orig;
	in.origlen = (size_t)n;
	in.boundary_seed = seed;
	in.full = full;
	in.orig_8bit = full && msg->env.body_8bit;
	in.smtputf8 = utf8_has_nonascii(msg->env.sender);
	if (dsn_build(&in, &out, &outlen) < 0) {
		snprintf(j->err, sizeof(j->err), "cannot build the delivery status notification");
		goto out;
	}
	memset(&dsnenv, 0, sizeof(dsnenv));
	memset(&r, 0, sizeof(r));
	dsnenv.arrival = now;
	str_copy(dsnenv.client, sizeof(dsnenv.client), "local");
	str_copy(dsnenv.helo, sizeof(dsnenv.helo), j->cfg->conf.hostname);
	dsnenv.sender = (char *)"";
	dsnenv.body_8bit = in.orig_8bit;
	r.addr = j->dsn_to;
	r.orcpt = msg->env.sender;
	/* RFC 6531: a notice to a UTF-8 sender is an SMTPUTF8 message */
	dsnenv.smtputf8 = msg->env.smtputf8 || utf8_has_nonascii(j->dsn_to);
	dsnenv.rcpts = &r;
	dsnenv.nrcpts = 1;
	/* our own trace header first, as for every message we queue */
	if (queue_create(q, &dsnenv, &w, j->err, sizeof(j->err)) < 0)
		goto out;
	{
		char date[64], hdr[600];
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
		int hl = snprintf(hdr, sizeof(hdr), "Received: by %s (imsd) id %s;\r\n\t%s\r\n",
		    j->cfg->conf.hostname, w.qid, date);
		if (hl < 0 || (size_t)hl >= sizeof(hdr) ||
		    queue_append(&w, hdr, (size_t)hl, j->err, sizeof(j->err)) < 0 ||
		    queue_append(&w, out, outlen, j->err, sizeof(j->err)) < 0 ||
		    queue_finish(&w, j->err, sizeof(j->err)) < 0 ||
		    queue_sync_file(&w, j->err, sizeof(j->err)) < 0 ||
		    queue_publish(q, &w, j->err, sizeof(j->err)) < 0 ||
		    queue_sync_dir(q, j->err, sizeof(j->err)) < 0) {
			queue_discard(q, &w);
			goto out;
		}
	}
	str_copy(j->newqid, sizeof(j->newqid), w.qid);
	ret = 0;
out:
	free(orig);
	free(out);
	return ret;
}

static void
book_run(struct work *w)
{
	struct book_job *j = (struct book_job *)w;

	/* The notice goes into the queue before the journal says "fail": a crash in
	 * between sends it twice rather than never. */
	if (j->dsn_action >= 0 && book_write_dsn(j) < 0) {
		/* Not the journal either: the recipients stay pending on disk until the
		 * notice is written (book_done gives everything back and retries). */
		j->remove = 0;
		j->failed = 1;
		log_error("qid=%s event=bounce-error reason=\"%s\"", j->msg->env.qid, j->err);
		return;
	}
	if (j->journal != NULL && j->journal[0] != '\0' && !(j->remove && j->dsn_action < 0)) {
		if (queue_journal(j->m->q, j->msg->env.qid, j->journal, j->err, sizeof(j->err)) < 0) {
			log_error("qid=%s event=queue-error reason=\"%s\"", j->msg->env.qid, j->err);
			j->remove = 0;
			j->failed = j->dsn_action < 0;	/* a notice written is not written again */
		}
		j->msg->env.has_journal = 1;	/* even on error: it may exist */
	}
	if (j->remove && queue_remove(j->m->q, j->msg->env.qid, j->msg->env.has_journal, j->err,
	    sizeof(j->err)) < 0) {
		log_error("qid=%s event=queue-error reason=\"%s\"", j->msg->env.qid, j->err);
		j->remove = 0;
	}
}

static void
book_done(struct work *w)
{
	struct book_job *j = (struct book_job *)w;
	struct qmgr *m = j->m;
	struct qm_msg *msg = j->msg;
	char newqid[32];

	m->book_jobs--;
	msg->updating = 0;
	str_copy(newqid, sizeof(newqid), j->newqid);
	if (j->failed) {
		/* Give back what the job took; try again in a while (the disk may be full). */
		if (j->journal != NULL && j->journal[0] != '\0') {
			char *rest = msg->journal;
			msg->journal = NULL;
			msg->jlen = msg->jcap = 0;
			jappend(msg, j->journal);
			if (rest != NULL) {
				jappend(msg, rest);
				free(rest);
			}
		}
		msg->bounce_pending |= j->had_bounce;
		msg->warn_pending |= j->had_warn;
		msg->notify_pending |= j->had_notify;
		for (size_t i = 0; j->nf != NULL && msg->newly_failed != NULL &&
		    i < msg->env.nrcpts; i++)
			msg->newly_failed[i] |= j->nf[i];
		msg->book_after = time(NULL) + BOOK_RETRY_SECONDS;
		log_warn("qid=%s event=bookkeeping-deferred retry_in=%ds reason=\"%s\"",
		    msg->env.qid, BOOK_RETRY_SECONDS, j->err);
	} else
		msg->book_after = 0;
	if (newqid[0] != '\0') {
		char lto[LOG_VALUE_MAX];
		log_info("qid=%s event=%s dsn_qid=%s to=%s", msg->env.qid,
		    j->dsn_action == DSN_DELAYED ? "delay-notice" : j->dsn_action == DSN_FAILED ?
		    "bounce-queued" : "success-notice", newqid,
		    log_addr(lto, sizeof(lto), msg->env.sender));
	}
	if (j->remove) {
		log_info("qid=%s event=removed", msg->env.qid);
		if (!msg->deleted) {
			int failed = 0;
			for (size_t i = 0; i < msg->env.nrcpts; i++)
				failed |= msg->env.rcpts[i].state == QR_FAILED;
			metrics_inc(failed ? M_MSG_BOUNCED : M_MSG_DELIVERED);
		}
		wait_remove(m, msg);
		if (msg->prev)
			msg->prev->next = msg->next;
		else
			m->msgs = msg->next;
		if (msg->next)
			msg->next->prev = msg->prev;
		m->nmsgs--;
		msg_free(msg);
		msg = NULL;
	}
	for (size_t i = 0; i < j->ndrcpts; i++) {
		free((char *)j->drcpts[i].diag);
		free((char *)j->drcpts[i].status);
		free((char *)j->drcpts[i].remote_mta);
		free((char *)j->drcpts[i].orcpt_field);
	}
	free(j->drcpts);
	free(j->journal);
	free(j->nf);
	cfg_unref(j->cfg);
	free(j);
	if (newqid[0] != '\0')
		qmgr_add(m, newqid);
	if (msg != NULL) {
		if (msg->jlen > 0 || msg->bounce_pending || msg->warn_pending ||
		    msg->notify_pending)
			qm_maybe_book(m, msg);
		else
			qm_schedule(m, msg, time(NULL));
	}
}

/* When no delivery is out, write down what happened (and bounce / warn / remove). */
static void
qm_maybe_book(struct qmgr *m, struct qm_msg *msg)
{
	struct book_job *j;
	int all_final = 1;
	char warned_line[16];

	if (msg->inflight > 0 || msg->updating || m->stopping || time(NULL) < msg->book_after)
		return;
	for (size_t i = 0; i < msg->env.nrcpts; i++)
		if (msg->env.rcpts[i].state == QR_PENDING)
			all_final = 0;
	if (msg->deleted)
		all_final = 1;
	if (msg->jlen == 0 && !msg->bounce_pending && !msg->warn_pending &&
	    !msg->notify_pending && !all_final) {
		qm_schedule(m, msg, time(NULL));
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return;
	j->m = m;
	j->msg = msg;
	j->cfg = cfg_ref(m->cfg);
	j->remove = all_final;
	j->dsn_action = -1;
	/* a failure or success report goes first; a delay notice due at the same time waits
	 * for the next job */
	int report = msg->bounce_pending || msg->notify_pending;
	int keep_warn = msg->warn_pending && report;
	j->had_bounce = msg->bounce_pending;
	j->had_warn = msg->warn_pending && !keep_warn;
	j->had_notify = msg->notify_pending;
	if (msg->newly_failed != NULL && (j->nf = malloc(msg->env.nrcpts)) != NULL)
		memcpy(j->nf, msg->newly_failed, msg->env.nrcpts);
	const char *why = NULL;
	char lfrom[LOG_VALUE_MAX];

	qfmt_journal_warned(warned_line, sizeof(warned_line));
	if ((report || msg->warn_pending) && msg->env.sender[0] != '\0' &&
	    !msg->deleted && !bounce_target(&j->cfg->conf, msg->env.sender, j->dsn_to,
	    sizeof(j->dsn_to), &why)) {
		char reason[200], lwhy[LOG_VALUE_MAX];
		snprintf(reason, sizeof(reason), "the sender's local part cannot name a local "
		    "mailbox (%s)", why);
		log_info("qid=%s event=bounce-dropped to=%s reason=%s", msg->env.qid,
		    log_addr(lfrom, sizeof(lfrom), msg->env.sender),
		    log_value(lwhy, sizeof(lwhy), reason, strlen(reason)));
		if (!report)
			jappend(msg, warned_line);
		keep_warn = 0;
	} else if ((report || msg->warn_pending) && msg->env.sender[0] != '\0' &&
	    !msg->deleted) {
		size_t cnt = 0, nfailed = 0, ndelivered = 0;
		int delayed = !report;
		j->drcpts = calloc(msg->env.nrcpts, sizeof(*j->drcpts));
		for (size_t i = 0; j->drcpts != NULL && i < msg->env.nrcpts; i++) {
			struct qrcpt *r = &msg->env.rcpts[i];
			struct dsn_rcpt *d = &j->drcpts[cnt];
			unsigned char nf = msg->newly_failed[i];
			char field[DSN_ORCPT_MAX + 16];
			if (delayed ? r->state != QR_PENDING || !wants(r, DSN_NOTIFY_DELAY) :
			    !((nf & NF_FAILED) && wants(r, DSN_NOTIFY_FAILURE)) &&
			    !(nf & (NF_DELIVERED | NF_RELAYED)))
				continue;
			d->addr = r->addr;
			d->orcpt = r->orcpt;
			if (r->dsn_orcpt != NULL && dsn_orcpt_field(r->dsn_orcpt, field,
			    sizeof(field)) > 0)
				d->orcpt_field = strdup(field);
			if (!delayed && !(nf & NF_FAILED)) {
				d->has_action = 1;
				d->action = (nf & NF_DELIVERED) ? DSN_DELIVERED : DSN_RELAYED;
				ndelivered += (nf & NF_DELIVERED) != 0;
				d->status = strdup("2.0.0");
				d->diag = NULL;
			} else {
				nfailed += !delayed;
				d->status = strdup(r->status[0] ? r->status :
				    (delayed ? "4.0.0" : "5.0.0"));
				d->diag = strdup(r->last_error);
			}
			d->remote_mta = r->remote_mta[0] ? strdup(r->remote_mta) : NULL;
			cnt++;
		}
		j->ndrcpts = cnt;
		if (cnt > 0)
			j->dsn_action = delayed ? DSN_DELAYED : nfailed > 0 ? DSN_FAILED :
			    ndelivered > 0 ? DSN_DELIVERED : DSN_RELAYED;
		if (delayed)
			jappend(msg, warned_line);
	} else if (msg->bounce_pending && msg->env.sender[0] == '\0')
		log_info("qid=%s event=bounce-dropped reason=\"null sender: a failed bounce is "
		    "never bounced\"", msg->env.qid);
	/* the job takes the journal lines gathered so far ("warned" included) */
	j->journal = msg->journal;
	msg->journal = NULL;
	msg->jlen = msg->jcap = 0;
	msg->bounce_pending = 0;
	msg->warn_pending = keep_warn;
	msg->notify_pending = 0;
	if (msg->newly_failed != NULL)
		memset(msg->newly_failed, 0, msg->env.nrcpts);
	msg->updating = 1;
	m->book_jobs++;
	j->w.run = book_run;
	j->w.done = book_done;
	workq_submit(m->wq, &j->w);
}

/* route_decide, and a local recipient who is a system user goes to /var/mail/USER */
static void
local_route(const struct qmgr *m, const struct cfg *c, const char *addr, struct route *rt)
{
	char user[64];

	route_decide(&c->conf, addr, rt);
	if (rt->agent == ROUTE_MAILDIR && m->mbox != NULL &&
	    mbox_agent_user(c, addr, user, sizeof(user))) {
		rt->agent = ROUTE_MBOX;
		snprintf(rt->key, sizeof(rt->key), "mbox");
	}
}

/* ---- scheduling ---- */

static void
qm_schedule(struct qmgr *m, struct qm_msg *msg, time_t now)
{
	const struct conf *c = &m->cfg->conf;
	size_t n = msg->env.nrcpts;
	size_t *idx;
	unsigned char *taken;
	int any_pending = 0;
	struct retry_params rp;
	enum retry_verdict verdict;

	if (msg->inflight > 0 || msg->updating || msg->deleted || m->stopping)
		return;
	if (msg->book_after != 0 && now >= msg->book_after &&
	    (msg->jlen > 0 || msg->bounce_pending || msg->warn_pending || msg->notify_pending)) {
		qm_maybe_book(m, msg);		/* the retry of a failed bookkeeping job */
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (msg->env.rcpts[i].state == QR_PENDING)
			any_pending = 1;
	if (!any_pending) {
		qm_maybe_book(m, msg);
		return;
	}
	retry_params_of(c, &rp);
	verdict = retry_judge(&rp, msg->env.arrival, now, msg->env.warned,
	    msg->env.sender[0] == '\0');
	if (verdict == RETRY_EXPIRE) {
		metrics_inc(M_MSG_EXPIRED);
		for (size_t i = 0; i < n; i++) {
			struct qrcpt *r = &msg->env.rcpts[i];
			char diag[300];
			if (r->state != QR_PENDING)
				continue;
			retry_expired_diag(&rp, r->last_error, diag, sizeof(diag));
			qm_result(m, msg, i, DLV_PERM, "5.4.7", diag, now);
		}
		qm_maybe_book(m, msg);
		return;
	}
	if (verdict == RETRY_WARN) {
		msg->env.warned = 1;
		msg->warn_pending = 1;
		qm_maybe_book(m, msg);
		return;
	}
	if ((idx = calloc(n, sizeof(*idx))) == NULL || (taken = calloc(n, 1)) == NULL) {
		free(idx);
		return;
	}
	/* every due recipient goes on its route; one job per route key: all the local ones
	 * together, each remote destination (or the relayhost) its own */
	for (size_t i = 0; i < n; i++) {
		struct qrcpt *r = &msg->env.rcpts[i];
		struct route rt, rt2;
		size_t k = 0;
		if (taken[i] || r->state != QR_PENDING || r->next_try > now)
			continue;
		local_route(m, m->cfg, r->addr, &rt);
		for (size_t i2 = i; i2 < n; i2++) {
			struct qrcpt *r2 = &msg->env.rcpts[i2];
			if (taken[i2] || r2->state != QR_PENDING || r2->next_try > now)
				continue;
			if (i2 != i) {
				local_route(m, m->cfg, r2->addr, &rt2);
				if (rt2.agent != rt.agent || strcmp(rt2.key, rt.key) != 0)
					continue;
			}
			idx[k++] = i2;
			taken[i2] = 1;
		}
		if (start_job(m, msg, &rt, idx, k) < 0)
			wait_push(m, msg);	/* at a limit: wait for a slot */
	}
	if (msg->inflight == 0 && msg->jlen > 0)
		qm_maybe_book(m, msg);	/* the queue file could not be opened: write that down */
	free(idx);
	free(taken);
}

/* ---- public ---- */

struct qmgr *
qmgr_new(struct queue *q, struct workq *wq, struct relay *relay, struct cfg *cfg)
{
	struct qmgr *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	if ((m->maildir = maildir_agent_new(wq)) == NULL) {
		free(m);
		return NULL;
	}
	m->q = q;
	m->wq = wq;
	m->slots[ROUTE_MAILDIR] = (struct agent_slot){ m->maildir, 0, QMGR_LOCAL_MAX, 0 };
	m->slots[ROUTE_SMTP] = (struct agent_slot){ relay_agent(relay), 0, QMGR_RELAY_MAX,
	    QMGR_DEST_MAX };
	m->cfg = cfg_ref(cfg);
	return m;
}

void
qmgr_set_localproc(struct qmgr *m, struct localproc *lp)
{
	if (lp == NULL || m->mbox != NULL || (m->mbox = mbox_agent_new(m->wq, lp)) == NULL)
		return;
	m->slots[ROUTE_MBOX] = (struct agent_slot){ m->mbox, 0, QMGR_LOCAL_MAX, 0 };
}

void
qmgr_set_cfg(struct qmgr *m, struct cfg *cfg)
{
	struct cfg *old = m->cfg;

	m->cfg = cfg_ref(cfg);
	cfg_unref(old);
}

static void qm_add(struct qmgr *m, const char *qid, int due_now);

void
qmgr_add(struct qmgr *m, const char *qid)
{
	qm_add(m, qid, 0);
}

/* Load a message; due_now makes every pending recipient due (start-up: a restart is a
 * flush, so an operator who fixed a problem and restarted sees the mail go). */
static void
qm_add(struct qmgr *m, const char *qid, int due_now)
{
	struct qm_msg *msg;
	char err[300];
	uint64_t off, len;
	int fd;

	/* ids are unique: commits and bounces make new ones, recovery lists each once */
	if ((msg = calloc(1, sizeof(*msg))) == NULL)
		return;
	msg->fd = -1;
	if (queue_load(m->q, qid, &msg->env, &fd, &off, &len, err, sizeof(err)) < 0) {
		log_error("qid=%s event=queue-corrupt reason=\"%s\" action=kept-in-queue", qid, err);
		free(msg);
		return;
	}
	msg->size = len;
	msg->body_off = off;
	if (m->nmsgs < QMGR_OPEN_MAX)
		msg->fd = fd;	/* the first delivery reads through it */
	else
		close(fd);
	if (due_now)
		for (size_t i = 0; i < msg->env.nrcpts; i++)
			msg->env.rcpts[i].next_try = 0;
	msg->newly_failed = calloc(msg->env.nrcpts, 1);
	msg->next = m->msgs;
	if (m->msgs)
		m->msgs->prev = msg;
	m->msgs = msg;
	m->nmsgs++;
	qm_schedule(m, msg, time(NULL));
}

int
qmgr_recover(struct qmgr *m)
{
	char **ids, err[256];
	size_t n;

	if (queue_list(m->q, &ids, &n, err, sizeof(err)) < 0) {
		log_error("event=queue-error reason=\"%s\"", err);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		qm_add(m, ids[i], 1);
	queue_list_free(ids, n);
	return (int)n;
}

void
qmgr_tick(struct qmgr *m, time_t now)
{
	struct qm_msg *msg, *next;

	for (msg = m->msgs; msg != NULL; msg = next) {
		next = msg->next;	/* qm_schedule never frees synchronously */
		qm_schedule(m, msg, now);
	}
}

int
qmgr_flush(struct qmgr *m)
{
	int count = 0;

	for (struct qm_msg *msg = m->msgs; msg != NULL; msg = msg->next) {
		for (size_t i = 0; i < msg->env.nrcpts; i++)
			msg->env.rcpts[i].next_try = 0;
		count++;
	}
	qmgr_tick(m, time(NULL));
	return count;
}

int
qmgr_delete(struct qmgr *m, const char *qid)
{
	int count = 0, all = strcmp(qid, "ALL") == 0;

	for (struct qm_msg *msg = m->msgs; msg != NULL; msg = msg->next) {
		if (!all && strcmp(msg->env.qid, qid) != 0)
			continue;
		if (!msg->deleted) {
			msg->deleted = 1;
			log_info("qid=%s event=deleted-by-operator", msg->env.qid);
			count++;
			qm_maybe_book(m, msg);
		}
	}
	return count;
}

void
qmgr_stop(struct qmgr *m)
{
	m->stopping = 1;
}

void
qmgr_stats(const struct qmgr *m, uint64_t *messages, uint64_t *pending, time_t *oldest)
{
	uint64_t np = 0;

	*oldest = 0;
	for (const struct qm_msg *msg = m->msgs; msg != NULL; msg = msg->next) {
		if (*oldest == 0 || msg->env.arrival < *oldest)
			*oldest = msg->env.arrival;
		for (size_t i = 0; i < msg->env.nrcpts; i++)
			np += msg->env.rcpts[i].state == QR_PENDING;
	}
	*messages = m->nmsgs;
	*pending = np;
}

unsigned
qmgr_busy(const struct qmgr *m)
{
	unsigned n = m->book_jobs;

	for (size_t i = 0; i < sizeof(m->slots) / sizeof(m->slots[0]); i++)
		n += m->slots[i].jobs;
	return n;
}

unsigned
qmgr_busy_local(const struct qmgr *m)
{
	return m->slots[ROUTE_MAILDIR].jobs + m->book_jobs;
}

void
qmgr_free(struct qmgr *m)
{
	while (m->msgs != NULL) {
		struct qm_msg *msg = m->msgs;
		m->msgs = msg->next;
		msg_free(msg);
	}
	cfg_unref(m->cfg);
	maildir_agent_free(m->maildir);
	mbox_agent_free(m->mbox);
	free(m);
}
