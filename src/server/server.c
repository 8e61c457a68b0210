/*
 * server — `imsd run`; see server.h.
 *
 * Threads: `workers` event loops (one per CPU by default), each on its own thread and each
 * owning the sessions it accepted: their sockets, TLS, timers and AUTH checks. They share
 * the listening sockets (each registered in every loop with EPOLLEXCLUSIVE, so one loop is
 * woken per connection), the per-client table (under climu) and the memory count (atomic).
 * The commit thread makes batches of finished messages durable (group commit) and hands
 * each job back to the loop of its session through that loop's eventfd. Worker 0 also runs
 * the queue manager, the relay client, DNS, the control socket and the signalfd; the other
 * loops pass it the ids of the messages they committed (the inbox). The delivery threads
 * write Maildirs.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/statvfs.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "net/ev.h"
#include "policy/clients.h"
#include "proto/proxy.h"
#include "proto/sasl.h"
#include "queue/commit.h"
#include "queue/queue.h"
#include "cfg/cfg.h"
#include "deliver/dns.h"
#include "deliver/localproc.h"
#include "deliver/relay.h"
#include "sched/qmgr.h"
#include "server/control.h"
#include "server/metrics_http.h"
#include "server/local.h"
#include "server/privs.h"
#include "server/server.h"
#include "net/workq.h"
#include "mailauth/authcheck.h"
#include "session/session.h"
#include "tls/tls.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/version.h"

#define IN_MAX		(64 * 1024)	/* input held while a session waits (pipelining) */
#define IN_MIN		1024		/* the input buffer starts this small and doubles */
/* Unsent replies at which the session stops taking commands (and we stop reading): a
 * client that pipelines without reading its replies costs at most this plus one reply. */
#define OUT_MAX		(16 * 1024)
#define READ_CHUNK	(64 * 1024)
/* What a TLS session costs beyond our own buffers (OpenSSL's SSL object, keys and, while
 * busy, its records): an estimate for max_session_memory. Measured with bench/bench.py:
 * 16.6 KiB of RSS per idle TLS session in all, of which ~13.5 KiB is OpenSSL's. */
#define TLS_CONN_COST	(14 * 1024)
/* Freed this much since the last trim: give it back to the system (a flood's buffers). */
#define TRIM_AFTER	(8 * 1024 * 1024)
/* malloc_trim is glibc's allocator's: under AddressSanitizer, whose allocator replaces it,
 * glibc's arena is never set up and malloc_trim crashes. */
#if defined(__SANITIZE_ADDRESS__)
#define TRIM_MEMORY() ((void)0)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TRIM_MEMORY() ((void)0)
#endif
#endif
#ifndef TRIM_MEMORY
#define TRIM_MEMORY() ((void)malloc_trim(0))
#endif
#define RELAY_DRAIN_SECONDS 3		/* how long SIGTERM waits for relay deliveries */
#define DRAIN_SECONDS	8		/* SIGTERM: SPEC says finish within 10 s; leave room
					 * for the threads to wind down after the drain */
#define HANDSHAKE_SECONDS 60		/* a TLS handshake must finish within this */
#define AUTH_FAIL_DELAY	2		/* seconds before a failed AUTH is answered */
#define AUTH_THREADS_DOVECOT 8	/* per worker, with auth_backend = dovecot (see auth_threads) */

struct pconn;
struct worker;

enum conn_tls { CT_PLAIN, CT_HANDSHAKE, CT_TLS };

struct conn {
	struct ev_io io;
	struct server *srv;
	struct worker *wk;	/* the loop that owns this session */
	struct cfg *cfg;
	struct session *s;
	struct netaddr peer;
	struct session_peer sp;	/* both ends, as the policies see them (for Dovecot's log) */
	struct conn *prev, *next;
	char sid[24];

	char *in;		/* leftover input (malloc'd only while non-empty) */
	size_t inlen, incap;
	char *out;		/* unsent reply bytes */
	size_t outlen, outoff, outcap;

	struct queue_writer w;	/* the message being received (w.fd >= 0) */
	char werr[256];
	unsigned busy;		/* jobs in flight (commit, auth) that point at this conn */

	enum session_listener kind;
	enum conn_tls tstate;
	struct tls_conn *tls;
	int tls_want;		/* EPOLLIN/EPOLLOUT the TLS layer is waiting for */
	int starttls_pending;	/* 220 queued: discard input, then handshake */
	time_t auth_fail_at;	/* answer a failed AUTH at this time */
	int auth_locked;	/* ... with SESSION_AUTH_LOCKED rather than a failure */
	char auth_why[128];	/* ... and the backend's reason for it ("" none) */
	time_t hold_until;	/* the error tarpit: no output, no input until then */
	size_t acct;		/* bytes counted for this conn in srv->mem */

	int exempt;		/* loopback or relay_networks: no DNS lists, no inbound checks */
	int dnsbl_state;	/* 0 not asked, 1 lookups running, 2 answered */
	char *dnsbl_reply;	/* the refusal when the client is listed */
	int mail_wait;		/* MAIL waits for the DNS lists */
	struct spf_verdict *spf;	/* SPF of MAIL FROM made at MAIL (spf_reject) */

	time_t deadline;	/* command or data timeout */
	unsigned long last_cmds;
	int closing;		/* close after output drains */
	int dead;		/* socket gone; waiting for the commit job to return */
	struct conn *grave;	/* next in the server's list of conns to free */
	int buried;		/* on that list */
};

/* A message handed to the group commit (queue/commit), and where its answer goes. */
struct cjob {
	struct commit_job cj;	/* first: the commit thread's view */
	struct worker *wk;	/* the loop the answer goes to */
	struct conn *conn;	/* NULL once the client is gone */
};

/* One listening socket, shared by every worker. */
struct lsock {
	struct hostport hp;
	enum session_listener kind;
	int fd;
	int refs;		/* workers still watching fd; the last one to stop closes it */
};

/* A worker's watch on a listening socket. */
struct listener {
	struct ev_io io;
	struct server *srv;
	struct worker *wk;
	struct lsock *ls;
	enum session_listener kind;
};

struct worker {
	int id;
	struct server *srv;
	struct ev_loop *loop;
	pthread_t thread;
	struct listener *listeners;	/* one per srv->lsocks */
	size_t nlisteners;
	struct conn *conns;
	unsigned nconns;
	struct conn *graveyard;	/* closed conns, freed before the loop sleeps */
	struct pconn *pconns;	/* balancer connections waiting for their PROXY header */
	unsigned npconns;
	struct workq *authq;
	struct workq *checkq;	/* SPF, DKIM, DMARC: they wait on DNS */
	struct workq *dnsblq;	/* the DNS lists at connect */
	struct commit_job *done;	/* answered commits, struct cjob (under srv->cmu) */
	int cevfd;
	struct ev_io cio;
	unsigned commits_in_flight;
	int wakefd;		/* server_begin_stop wakes the loop through it */
	struct ev_io wakeio;
	int stopping;
	size_t freed;		/* bytes freed since the last malloc_trim */
	int spare_fd;		/* /dev/null, given up to refuse a connection when out of fds */
	time_t fds_logged;
	char rbuf[READ_CHUNK];
};

/* A message another worker committed, for worker 0's queue manager. */
struct inbox_item {
	struct inbox_item *next;
	char qid[32];
};

struct server {
	const char *conf_path;
	struct cfg *cfg;	/* the current configuration; swapped under cfgmu */
	pthread_mutex_t cfgmu;
	struct ev_loop *loop;	/* worker 0's: queue manager, relay, DNS, control, signals */
	struct worker *workers;
	int nworkers;
	struct lsock *lsocks;
	size_t nlsocks;
	struct queue q;
	struct dns *dns;
	struct relay *relay;
	struct qmgr *qmgr;
	struct localproc *localproc;	/* system_mailboxes: the local delivery process */
	struct workq *deliveryq;
	struct clients *clients;	/* per-client session counts and AUTH failures */
	pthread_mutex_t climu;
	/* shared by the workers: atomics */
	size_t mem;		/* bytes the sessions hold (max_session_memory) */
	unsigned nconns;	/* sessions open in all workers */
	unsigned commits_in_flight;
	unsigned long long nsessions;
	uint64_t spool_free;	/* bytes free for us on the spool's filesystem (cached) */
	time_t spool_free_at;	/* when it was measured */
	time_t spool_full_logged;	/* one spool-full line a second is enough */
	struct inbox_item *inbox;	/* under cmu */

	struct ev_io sigio;
	int sigfd;

	struct committer *committer;	/* the group commit thread */
	pthread_mutex_t cmu;	/* the workers' done lists and the inbox */

	struct control *ctl;	/* spool_dir/control: flush and delete while running */
	struct metrics_http *metrics;	/* metrics_listen, on worker 0 */
	struct pickup *pickup;	/* spool_dir/maildrop into spool_dir/submit (local.c) */

	int stopping;		/* set by worker 0, read by all (atomic) */
	time_t stop_deadline;
	time_t stop_relay_deadline;	/* after this, relay deliveries in flight are cut */
	int exit_status;
};

static void conn_close(struct conn *c);
static void conn_process(struct conn *c);
static void conn_flush(struct conn *c);
static void conn_read(struct conn *c);
static void conn_kick(struct conn *c);
static void conn_handshake(struct conn *c);
static void conn_start_tls(struct conn *c);
static void commit_answer(struct commit_job *cj);
static void mail_check_go(struct conn *c);
static int conn_checks(const struct conn *c, const struct session_tx *tx);
static int conn_signs(const struct conn *c, const struct session_tx *tx);
static void cb_tx_abort(void *arg);

/* ---- memory accounting ---- */

/* Count what c holds now in srv->mem (shared by the workers). */
static void
conn_account(struct conn *c)
{
	size_t m = 0;

	if (!c->dead)
		m = sizeof(*c) + c->incap + c->outcap + session_memory(c->s) +
		    (c->tls != NULL ? TLS_CONN_COST : 0);
	if (m < c->acct) {
		c->wk->freed += c->acct - m;
		__atomic_sub_fetch(&c->srv->mem, c->acct - m, __ATOMIC_RELAXED);
	} else if (m > c->acct)
		__atomic_add_fetch(&c->srv->mem, m - c->acct, __ATOMIC_RELAXED);
	c->acct = m;
}

/* ---- the per-client table, shared by the workers ---- */

/* Count a new session from a and return how many there were before it: one hold of the
 * lock, so that workers accepting from one client at once cannot all pass the limit. */
static unsigned
cl_conn_open(struct server *srv, const struct netaddr *a)
{
	pthread_mutex_lock(&srv->climu);
	unsigned n = clients_conns(srv->clients, a);
	clients_conn_add(srv->clients, a, 1);
	pthread_mutex_unlock(&srv->climu);
	return n;
}

static void
cl_conn_add(struct server *srv, const struct netaddr *a, int delta)
{
	pthread_mutex_lock(&srv->climu);
	clients_conn_add(srv->clients, a, delta);
	pthread_mutex_unlock(&srv->climu);
}

/* May a try AUTH? If so, the attempt is counted now (see cb_auth_check). */
static int
cl_auth_begin(struct server *srv, const struct netaddr *a)
{
	time_t now = time(NULL);

	pthread_mutex_lock(&srv->climu);
	int ok = clients_auth_allowed(srv->clients, a, now);
	if (ok)
		clients_auth_failed(srv->clients, a, now);
	pthread_mutex_unlock(&srv->climu);
	return ok;
}

static void
cl_auth_refund(struct server *srv, const struct netaddr *a)
{
	pthread_mutex_lock(&srv->climu);
	clients_auth_refund(srv->clients, a);
	pthread_mutex_unlock(&srv->climu);
}

/* ---- spool space (queue_minfree) ---- */

/* Bytes the spool keeps free: queue_minfree, or three maximum-size messages. */
static uint64_t
spool_minfree(const struct conf *cf)
{
	return cf->queue_minfree ? cf->queue_minfree : 3 * cf->message_size_limit;
}

/* Free bytes on the spool's filesystem for an unprivileged writer, measured at most once a
 * second (force: now). Shared by the workers; a race measures twice, no harm. */
static uint64_t
spool_free(struct server *srv, const char *spool_dir, int force)
{
	time_t now = time(NULL);
	struct statvfs st;

	if (!force && __atomic_load_n(&srv->spool_free_at, __ATOMIC_RELAXED) == now)
		return __atomic_load_n(&srv->spool_free, __ATOMIC_RELAXED);
	if (statvfs(spool_dir, &st) < 0)
		return UINT64_MAX;	/* cannot tell: do not refuse mail for it */
	uint64_t f = (uint64_t)st.f_bavail * st.f_frsize;
	__atomic_store_n(&srv->spool_free, f, __ATOMIC_RELAXED);
	__atomic_store_n(&srv->spool_free_at, now, __ATOMIC_RELAXED);
	return f;
}

/* Is the spool below queue_minfree (force: measured now)? */
static int
spool_full(struct conn *c, uint64_t need, int force)
{
	const struct conf *cf = &c->cfg->conf;
	uint64_t f = spool_free(c->srv, cf->spool_dir, force), min = spool_minfree(cf);

	if (f >= min && f - min >= need)
		return 0;
	/* Recycled spool files hold blocks for reuse: the first thing to give back. */
	int n = queue_free_release(&c->srv->q);
	if (n > 0) {
		f = spool_free(c->srv, cf->spool_dir, 1);
		log_info("event=spool-low action=released-recycled-files files=%d free=%llu", n,
		    (unsigned long long)f);
		if (f >= min && f - min >= need)
			return 0;
	}
	time_t now = time(NULL);
	if (__atomic_exchange_n(&c->srv->spool_full_logged, now, __ATOMIC_RELAXED) != now)
		log_warn("sid=%s event=spool-full free=%llu queue_minfree=%llu needed=%llu "
		    "effect=\"new mail gets 452 4.3.1 until space returns\"", c->sid,
		    (unsigned long long)f, (unsigned long long)min, (unsigned long long)need);
	return 1;
}

/* The configuration new sessions get (a reference: cfg_unref it). */
static struct cfg *
cfg_current(struct server *srv)
{
	pthread_mutex_lock(&srv->cfgmu);
	struct cfg *c = cfg_ref(srv->cfg);
	pthread_mutex_unlock(&srv->cfgmu);
	return c;
}

#define AUTH_HEADER_ROOM	16384	/* reserved before the body for checks and signatures:
					 * the A-R field's worst case (8 DKIM results, reasons
					 * capped) is under 8 KiB, four RSA-4096 signatures 5 */
#define CHECK_THREADS		8	/* per loop: the checks mostly wait on DNS */
#define DNSBL_THREADS		2	/* per loop, apart: connects never queue behind DATA checks */

/* ---- session callbacks ---- */

static void
cb_output(void *arg, const char *buf, size_t len)
{
	struct conn *c = arg;

	if (c->dead)
		return;
	if (c->outlen + len > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 512;
		while (cap < c->outlen + len)
			cap *= 2;
		char *n = realloc(c->out, cap);
		if (n == NULL) {
			c->closing = 1;
			return;
		}
		c->out = n;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, buf, len);
	c->outlen += len;
}

static int
cb_tx_open(void *arg, struct session_tx *tx)
{
	struct conn *c = arg;
	struct qenv env;
	struct qrcpt *r;
	int ret;

	memset(&env, 0, sizeof(env));
	env.arrival = time(NULL);
	netaddr_str(&c->peer, env.client, sizeof(env.client));
	env.sender = tx->sender;
	env.body_8bit = tx->body_8bit;
	env.smtputf8 = tx->smtputf8;
	env.requiretls = tx->requiretls;
	env.body_binary = tx->body_binary;
	if ((r = calloc(tx->nrcpts, sizeof(*r))) == NULL)
		return -1;
	for (size_t i = 0; i < tx->nrcpts; i++) {
		r[i].addr = tx->rcpts[i].addr;
		r[i].orcpt = tx->rcpts[i].orcpt;
		r[i].notify = tx->rcpts[i].notify;
		r[i].dsn_orcpt = tx->rcpts[i].dsn_orcpt;
	}
	env.dsn_ret = tx->dsn_ret;
	memcpy(env.envid, tx->envid, sizeof(env.envid));
	env.rcpts = r;
	env.nrcpts = tx->nrcpts;
	if (conn_checks(c, tx) || conn_signs(c, tx)) {
		env.has_skip = 1;	/* room for Authentication-Results / DKIM-Signature */
		env.skip = AUTH_HEADER_ROOM;
	}
	ret = queue_create(&c->srv->q, &env, &c->w, c->werr, sizeof(c->werr));
	free(r);
	if (ret < 0) {
		log_error("sid=%s event=queue-error reason=\"%s\"", c->sid, c->werr);
		return -1;
	}
	memcpy(tx->qid, env.qid, sizeof(tx->qid));
	return 0;
}

static int
cb_tx_write(void *arg, const char *buf, size_t len)
{
	struct conn *c = arg;

	if (queue_append(&c->w, buf, len, c->werr, sizeof(c->werr)) < 0) {
		int e = errno;
		log_error("sid=%s event=queue-error reason=\"%s\"", c->sid, c->werr);
		if (e == ENOSPC || e == EDQUOT || spool_full(c, 0, 1))
			return SESSION_WRITE_NOSPACE;
		return -1;
	}
	return 0;
}

static int
cb_space_ok(void *arg, uint64_t size)
{
	return !spool_full(arg, size, 0);
}

static void
cb_tx_abort(void *arg)
{
	struct conn *c = arg;

	if (c->w.fd >= 0 || c->w.qid[0] != '\0')
		queue_discard(&c->srv->q, &c->w);
	c->w.fd = -1;
	c->w.qid[0] = '\0';
}

/* The message is complete (and checked): hand it to the group commit. */
static void
commit_now(struct conn *c)
{
	struct server *srv = c->srv;
	struct cjob *j;

	if (queue_finish(&c->w, c->werr, sizeof(c->werr)) < 0 ||
	    (j = calloc(1, sizeof(*j))) == NULL) {
		log_error("sid=%s qid=%s event=queue-error reason=\"%s\"", c->sid, c->w.qid,
		    c->werr);
		cb_tx_abort(c);
		session_commit_done(c->s, spool_full(c, 0, 1) ? SESSION_COMMIT_NOSPACE : 0);
		return;
	}
	j->conn = c;
	j->wk = c->wk;
	j->cj.w = c->w;
	j->cj.done = commit_answer;
	c->w.fd = -1;
	c->w.qid[0] = '\0';
	c->busy++;
	c->wk->commits_in_flight++;
	__atomic_add_fetch(&srv->commits_in_flight, 1, __ATOMIC_RELAXED);
	commit_submit(srv->committer, &j->cj);
}

/* ---- mail authentication: DNS lists at connect, SPF at MAIL, checks at the end of DATA,
 * DKIM signing. The decisions are mailauth/authcheck's; this is where they meet the sessions. */

/* Inbound checks for this transaction? Mail from the Internet: not loopback, not a relay
 * network, not an authenticated client. */
static int
conn_checks(const struct conn *c, const struct session_tx *tx)
{
	return c->cfg->conf.inbound_checks && !c->exempt && !tx->authenticated;
}

/* DKIM signing for this transaction? Keys, and a client allowed to send as us. */
static int
conn_signs(const struct conn *c, const struct session_tx *tx)
{
	return c->cfg->dkim.n > 0 && (c->exempt || tx->authenticated);
}

struct dnsbl_job {
	struct work w;
	struct conn *c;
	struct cfg *cfg;
	struct netaddr addr;
	struct dnsbl_result r;
};

/* A job whose client has gone does no work (it may have waited behind slow ones; at stop
 * every queued job runs, and must then be quick). c stays allocated while busy > 0. */
static int
job_orphaned(struct conn *c)
{
	return __atomic_load_n(&c->dead, __ATOMIC_RELAXED) != 0;
}

static void
dnsbl_run(struct work *w)
{
	struct dnsbl_job *j = (struct dnsbl_job *)w;

	if (job_orphaned(j->c))
		return;
	authcheck_dnsbl(&j->cfg->conf, &j->addr, &j->r);
}

static void
dnsbl_done(struct work *w)
{
	struct dnsbl_job *j = (struct dnsbl_job *)w;
	struct conn *c = j->c;

	c->busy--;
	c->dnsbl_state = 2;
	if (j->r.log[0] || j->r.listed)
		log_info("sid=%s event=dnsbl listed=%s score=%d %s", c->sid, j->r.listed ? "yes" :
		    "no", j->r.score, j->r.log);
	if (j->r.listed)
		c->dnsbl_reply = strdup(j->r.reply);
	if (c->dead)
		conn_close(c);
	else if (c->mail_wait) {
		c->mail_wait = 0;
		mail_check_go(c);
	}
	cfg_unref(j->cfg);
	free(j);
}

/* At connect: ask the DNS lists, in the background; MAIL waits for the answer. */
static void
dnsbl_start(struct conn *c)
{
	struct dnsbl_job *j;

	if (c->exempt || c->cfg->conf.ndnsbl == 0 || (j = calloc(1, sizeof(*j))) == NULL)
		return;
	j->w.run = dnsbl_run;
	j->w.done = dnsbl_done;
	j->c = c;
	j->cfg = cfg_ref(c->cfg);
	j->addr = c->peer;
	c->dnsbl_state = 1;
	c->busy++;
	workq_submit(c->wk->dnsblq, &j->w);
}

struct spf_job {
	struct work w;
	struct conn *c;
	struct cfg *cfg;
	struct netaddr addr;
	char helo[256];
	char sender[SMTP_PATH_MAX + 1];
	struct spf_verdict v;
	enum auth_action act;
	char reply[512];
};

static void
spf_run(struct work *w)
{
	struct spf_job *j = (struct spf_job *)w;

	if (job_orphaned(j->c))
		return;
	j->act = authcheck_spf_mail(&j->cfg->conf, &j->addr, j->helo, j->sender, &j->v, j->reply,
	    sizeof(j->reply));
}

static void
spf_done(struct work *w)
{
	struct spf_job *j = (struct spf_job *)w;
	struct conn *c = j->c;

	c->busy--;
	if (c->dead)
		conn_close(c);
	else {
		free(c->spf);
		if ((c->spf = malloc(sizeof(*c->spf))) != NULL)
			*c->spf = j->v;
		session_mail_done(c->s, j->act == AUTH_REJECT ? j->reply : NULL);
		conn_process(c);
		conn_kick(c);
	}
	cfg_unref(j->cfg);
	free(j);
}

/* MAIL may go on once the DNS lists answered: refuse a listed client, run SPF when
 * spf_reject needs its verdict now, else accept. */
static void
mail_check_go(struct conn *c)
{
	struct spf_job *j;

	if (c->dnsbl_reply != NULL) {
		session_mail_done(c->s, c->dnsbl_reply);
		conn_process(c);
		conn_kick(c);
		return;
	}
	if (!c->cfg->conf.spf_reject || !c->cfg->conf.inbound_checks ||
	    (j = calloc(1, sizeof(*j))) == NULL) {
		session_mail_done(c->s, NULL);
		conn_process(c);
		conn_kick(c);
		return;
	}
	j->w.run = spf_run;
	j->w.done = spf_done;
	j->c = c;
	j->cfg = cfg_ref(c->cfg);
	j->addr = c->peer;
	snprintf(j->helo, sizeof(j->helo), "%s", session_helo(c->s));
	snprintf(j->sender, sizeof(j->sender), "%s", session_mail_sender(c->s));
	c->busy++;
	workq_submit(c->wk->checkq, &j->w);
}

static void
cb_mail_check(void *arg, const char *sender, int authenticated)
{
	struct conn *c = arg;

	(void)sender;
	free(c->spf);
	c->spf = NULL;
	if (c->exempt || authenticated) {
		session_mail_done(c->s, NULL);	/* from inside the callback: fine */
		return;
	}
	if (c->dnsbl_state == 1) {
		c->mail_wait = 1;		/* dnsbl_done goes on */
		return;
	}
	if (c->dnsbl_reply == NULL && !c->cfg->conf.spf_reject) {
		session_mail_done(c->s, NULL);
		return;
	}
	mail_check_go(c);
}

struct check_job {
	struct work w;
	struct conn *c;
	struct cfg *cfg;
	int sign;			/* else: inbound checks */
	int fd;				/* the incoming file, for reading */
	uint64_t off, len;
	struct netaddr addr;
	char helo[256];
	char sender[SMTP_PATH_MAX + 1];
	struct spf_verdict spf;
	int have_spf;
	unsigned pct;
	/* results */
	struct authcheck_out out;
	char *sig;
	size_t siglen;
	int nsig;
	char err[256];
	char domains[2][256];
	size_t ndomains;
};

static void
check_run(struct work *w)
{
	struct check_job *j = (struct check_job *)w;

	if (job_orphaned(j->c))
		return;		/* check_done only cleans up */
	if (j->sign) {
		const char *d[2] = { j->domains[0], j->domains[1] };
		j->ndomains = authcheck_sign_domains(&j->cfg->dkim, j->fd, j->off, j->len, j->sender,
		    j->domains);
		if (j->ndomains > 0 && dkim_sign_message(&j->cfg->dkim, d, j->ndomains, j->fd, j->off,
		    j->len, &j->sig, &j->siglen, &j->nsig, j->err, sizeof(j->err)) < 0)
			j->nsig = -1;
		return;
	}
	struct authcheck_in in = {
		.conf = &j->cfg->conf, .client = j->addr, .helo = j->helo, .sender = j->sender,
		.fd = j->fd, .off = j->off, .len = j->len,
		.spf_mfrom = j->have_spf ? &j->spf : NULL, .random_pct = j->pct,
	};
	authcheck_inbound(&in, &j->out);
}

static void
check_done(struct work *w)
{
	struct check_job *j = (struct check_job *)w;
	struct conn *c = j->c;
	const char *prepend = NULL;
	size_t plen = 0;

	c->busy--;
	close(j->fd);
	if (c->dead || session_state(c->s) != SS_COMMIT || c->w.fd < 0) {
		if (c->dead)
			conn_close(c);
		goto out;
	}
	if (j->sign) {
		if (j->nsig < 0)
			log_error("sid=%s qid=%s event=dkim-sign-error reason=%s", c->sid, c->w.qid,
			    j->err);
		else if (j->nsig > 0) {
			log_info("sid=%s qid=%s event=dkim-signed domains=%s%s%s signatures=%d",
			    c->sid, c->w.qid, j->domains[0], j->ndomains > 1 ? "," : "",
			    j->ndomains > 1 ? j->domains[1] : "", j->nsig);
			prepend = j->sig;
			plen = j->siglen;
		}
	} else {
		log_info("sid=%s qid=%s event=auth-checks %s%s", c->sid, c->w.qid, j->out.log,
		    j->out.action == AUTH_REJECT ? " action=reject" :
		    j->out.action == AUTH_TEMPFAIL ? " action=tempfail" : "");
		if (j->out.action != AUTH_ACCEPT) {
			cb_tx_abort(c);
			session_commit_refused(c->s, j->out.reply);
			conn_process(c);
			conn_kick(c);
			goto out;
		}
		prepend = j->out.ar;
		plen = j->out.ar ? strlen(j->out.ar) : 0;
	}
	if (prepend != NULL && queue_prepend(&c->w, prepend, plen, c->werr, sizeof(c->werr)) < 0)
		log_error("sid=%s qid=%s event=queue-error reason=\"%s\"", c->sid, c->w.qid,
		    c->werr);	/* the message still goes: without the field */
	commit_now(c);
	conn_kick(c);
out:
	free(j->sig);
	authcheck_out_free(&j->out);
	cfg_unref(j->cfg);
	free(j);
}

static void
cb_tx_commit(void *arg, struct session_tx *tx)
{
	struct conn *c = arg;
	struct check_job *j;
	int checks = conn_checks(c, tx), sign = !checks && conn_signs(c, tx);

	if ((!checks && !sign) || !c->w.has_skip || (j = calloc(1, sizeof(*j))) == NULL) {
		commit_now(c);
		return;
	}
	if ((j->fd = queue_open_incoming(&c->srv->q, c->w.qid)) < 0) {
		free(j);
		commit_now(c);
		return;
	}
	j->w.run = check_run;
	j->w.done = check_done;
	j->c = c;
	j->cfg = cfg_ref(c->cfg);
	j->sign = sign;
	j->off = c->w.hdrlen + c->w.skip;
	j->len = c->w.bodylen;
	j->addr = c->peer;
	snprintf(j->helo, sizeof(j->helo), "%s", session_helo(c->s));
	snprintf(j->sender, sizeof(j->sender), "%s", tx->sender);
	if (c->spf != NULL) {
		j->spf = *c->spf;
		j->have_spf = 1;
	}
	j->pct = (unsigned)(random() % 100);
	c->busy++;
	workq_submit(c->wk->checkq, &j->w);
}

static void
cb_log(void *arg, int level, const char *line)
{
	log_msg((enum log_level)level, "%s", line);
}

static int
cb_output_full(void *arg)
{
	struct conn *c = arg;

	return c->outlen - c->outoff >= OUT_MAX;
}

static void
cb_pause(void *arg, unsigned seconds)
{
	struct conn *c = arg;

	c->hold_until = time(NULL) + seconds;	/* server_tick resumes it */
}

static void
cb_starttls(void *arg)
{
	struct conn *c = arg;

	c->starttls_pending = 1;	/* conn_process discards input; conn_flush starts TLS */
}

struct auth_job {
	struct work w;
	struct conn *c;
	struct cfg *cfg;
	char user[256];
	char pass[256];
	int mech;		/* enum sasl_mech */
	struct session_peer sp;
	int secured;
	char sid[24];
	time_t started;		/* a failure is answered AUTH_FAIL_DELAY after this */
	int ok;			/* 1, 0, or SESSION_AUTH_TEMPFAIL */
	char canon[256];	/* Dovecot: the account's name */
	char why[128];		/* Dovecot: its reason, or what went wrong */
};

static void
auth_run(struct work *w)
{
	struct auth_job *j = (struct auth_job *)w;

	if (j->cfg->dvauth != NULL) {
		struct dvauth_req r = {
			.mech = j->mech, .user = j->user, .pass = j->pass, .session = j->sid,
			.local = &j->sp.local, .remote = &j->sp.remote,
			.lport = j->sp.local_port, .rport = j->sp.remote_port,
			.secured = j->secured,
		};

		switch (dvauth_verify(j->cfg->dvauth, &r, j->canon, sizeof(j->canon), j->why,
		    sizeof(j->why))) {
		case DVAUTH_OK: j->ok = 1; break;
		case DVAUTH_FAIL: j->ok = 0; break;
		default: j->ok = SESSION_AUTH_TEMPFAIL; break;
		}
	} else
		j->ok = authusers_verify(j->cfg->authusers, j->user, j->pass);
	explicit_bzero(j->pass, sizeof(j->pass));
}

static void
auth_done(struct work *w)
{
	struct auth_job *j = (struct auth_job *)w;
	struct conn *c = j->c;

	c->busy--;
	if (j->ok != 0)
		cl_auth_refund(c->srv, &c->peer);	/* see cb_auth_check */
	if (c->dead)
		conn_close(c);
	else if (j->ok != 0) {
		session_auth_verdict(c->s, j->ok, j->canon[0] ? j->canon : NULL,
		    j->why[0] ? j->why : NULL);
		conn_process(c);
		conn_kick(c);
	} else {
		snprintf(c->auth_why, sizeof(c->auth_why), "%s", j->why);
		/* the tick answers, AUTH_FAIL_DELAY after the check began: Dovecot holds back
		 * its own failures (auth_failure_delay, 2 s), which then count toward ours */
		c->auth_fail_at = j->started + AUTH_FAIL_DELAY;
	}
	cfg_unref(j->cfg);
	free(j);
}

static void
cb_auth_check(void *arg, const char *user, const char *pass)
{
	struct conn *c = arg;
	struct auth_job *j = calloc(1, sizeof(*j));

	if (j == NULL || (c->cfg->authusers == NULL && c->cfg->dvauth == NULL)) {
		free(j);
		c->auth_why[0] = '\0';
		c->auth_fail_at = time(NULL) + AUTH_FAIL_DELAY;
		return;
	}
	/* Counted as a failure now, refunded if good: checks in flight at once (from parallel
	 * sessions, on any worker) cannot overrun the client's budget. */
	if (!cl_auth_begin(c->srv, &c->peer)) {
		/* This address spent its failures across sessions: no check, no answer on the
		 * password; the tick closes the session after the usual delay. */
		free(j);
		c->auth_locked = 1;
		c->auth_fail_at = time(NULL) + AUTH_FAIL_DELAY;
		return;
	}
	j->w.run = auth_run;
	j->w.done = auth_done;
	j->c = c;
	j->cfg = cfg_ref(c->cfg);
	snprintf(j->user, sizeof(j->user), "%s", user);
	snprintf(j->pass, sizeof(j->pass), "%s", pass);
	j->mech = session_auth_mech(c->s);
	j->sp = c->sp;
	j->secured = c->tstate == CT_TLS || netaddr_is_loopback(&c->sp.local);
	snprintf(j->sid, sizeof(j->sid), "%s", c->sid);
	j->started = time(NULL);
	c->busy++;
	workq_submit(c->wk->authq, &j->w);
}

/* Threads per worker that check AUTH. Hashing a password takes milliseconds; Dovecot holds
 * each failure back for its auth_failure_delay (2 s) before answering, so with Dovecot a
 * thread waits that long per failed login and more are needed to keep good logins moving.
 * XXX chosen at startup: a reload that switches auth_backend keeps the old number. */
static int
auth_threads(const struct server *srv)
{
	if (srv->cfg->conf.auth_backend == AUTH_BACKEND_DOVECOT)
		return AUTH_THREADS_DOVECOT;
	return srv->nworkers == 1 ? 2 : 1;
}

/* auth_backend = dovecot: learn Dovecot's mechanisms before the first EHLO needs them. */
struct probe_job {
	struct work w;
	struct cfg *cfg;
	int ok;
	char why[256];
};

static void
probe_run(struct work *w)
{
	struct probe_job *j = (struct probe_job *)w;

	j->ok = dvauth_probe(j->cfg->dvauth, j->why, sizeof(j->why)) == 0;
}

static void
probe_done(struct work *w)
{
	struct probe_job *j = (struct probe_job *)w;
	char why[LOG_VALUE_MAX];
	int known;
	unsigned m = dvauth_mechs(j->cfg->dvauth, &known);

	if (!j->ok)
		log_warn("event=auth-backend-unavailable backend=dovecot socket=%s reason=%s "
		    "action=\"AUTH gets 454 4.7.0 until it answers\"", dvauth_path(j->cfg->dvauth),
		    log_value(why, sizeof(why), j->why, strlen(j->why)));
	else if (m == 0)
		log_warn("event=auth-backend-warning backend=dovecot socket=%s reason=\"Dovecot "
		    "offers neither PLAIN nor LOGIN\" action=\"AUTH not offered\"",
		    dvauth_path(j->cfg->dvauth));
	else
		log_info("event=auth-backend-ready backend=dovecot socket=%s mechanisms=%s%s%s",
		    dvauth_path(j->cfg->dvauth), m & (1u << SASL_PLAIN) ? "PLAIN" : "",
		    m == ((1u << SASL_PLAIN) | (1u << SASL_LOGIN)) ? "," : "",
		    m & (1u << SASL_LOGIN) ? "LOGIN" : "");
	cfg_unref(j->cfg);
	free(j);
}

static void
auth_backend_probe(struct workq *q, struct cfg *cfg)
{
	struct probe_job *j;

	if (cfg->dvauth == NULL || (j = calloc(1, sizeof(*j))) == NULL)
		return;
	j->w.run = probe_run;
	j->w.done = probe_done;
	j->cfg = cfg_ref(cfg);
	workq_submit(q, &j->w);
}

static const struct session_ops session_ops = {
	.output = cb_output,
	.tx_open = cb_tx_open,
	.tx_write = cb_tx_write,
	.tx_commit = cb_tx_commit,
	.tx_abort = cb_tx_abort,
	.log = cb_log,
	.starttls = cb_starttls,
	.auth_check = cb_auth_check,
	.output_full = cb_output_full,
	.pause = cb_pause,
	.space_ok = cb_space_ok,
	.mail_check = cb_mail_check,
};

/* ---- group commit ---- */

/* On the commit thread: hand the decided job to the loop of its session. */
static void
commit_answer(struct commit_job *cj)
{
	struct cjob *j = (struct cjob *)cj;
	struct server *srv = j->wk->srv;
	uint64_t one = 1;

	pthread_mutex_lock(&srv->cmu);
	j->cj.next = j->wk->done;
	j->wk->done = &j->cj;
	pthread_mutex_unlock(&srv->cmu);
	if (write(j->wk->cevfd, &one, sizeof(one)) < 0) {
		/* eventfd counter overflow is impossible here; nothing to do */
	}
}

/* A worker's side: its committed messages come back here. Worker 0 also takes the other
 * workers' committed ids (the inbox) to its queue manager. */
static void
commit_done_cb(struct ev_io *io, uint32_t events)
{
	struct worker *wk = io->arg;
	struct server *srv = wk->srv;
	struct commit_job *list, *j, *rev = NULL;
	struct inbox_item *in = NULL, *it, *post = NULL, **post_tail = &post;
	uint64_t v;

	if (read(wk->cevfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&srv->cmu);
	list = wk->done;
	wk->done = NULL;
	if (wk->id == 0) {
		in = srv->inbox;
		srv->inbox = NULL;
	}
	pthread_mutex_unlock(&srv->cmu);
	while ((it = in) != NULL) {
		in = it->next;
		qmgr_add(srv->qmgr, it->qid);
		free(it);
	}
	/* The list is newest-first; answer in arrival order. */
	while (list != NULL) {
		j = list;
		list = list->next;
		j->next = rev;
		rev = j;
	}
	while ((j = rev) != NULL) {
		struct conn *c = ((struct cjob *)j)->conn;
		rev = j->next;
		wk->commits_in_flight--;
		__atomic_sub_fetch(&srv->commits_in_flight, 1, __ATOMIC_RELAXED);
		if (j->ok)
			metrics_inc(M_MSG_RECEIVED);
		if (j->ok && wk->id == 0)
			qmgr_add(srv->qmgr, j->w.qid);
		else if (j->ok) {
			/* The queue manager lives on worker 0. Should the item not be had, the
			 * message is still durable in queue/ and found at the next start. */
			if ((it = calloc(1, sizeof(*it))) != NULL) {
				memcpy(it->qid, j->w.qid, sizeof(it->qid));
				*post_tail = it;
				post_tail = &it->next;
			}
		} else {
			log_error("qid=%s event=queue-error stage=commit reason=\"%s\"", j->w.qid,
			    j->err);
			if (j->w.fd >= 0)
				queue_discard(&srv->q, &j->w);
		}
		if (c != NULL) {
			c->busy--;
			if (c->dead) {
				if (j->ok)
					log_info("sid=%s qid=%s event=committed-after-disconnect "
					    "note=client-not-told-250", c->sid, j->w.qid);
				conn_close(c);
			} else {
				session_set_time(c->s, time(NULL));
				session_commit_done(c->s, j->ok ? 1 : spool_full(c, 0, 1) ?
				    SESSION_COMMIT_NOSPACE : 0);
				conn_process(c);
				conn_kick(c);
			}
		}
		free(j);
	}
	if (post != NULL) {
		/* this batch's ids to worker 0 in one hold of the lock */
		uint64_t one = 1;
		pthread_mutex_lock(&srv->cmu);
		*post_tail = srv->inbox;
		srv->inbox = post;
		pthread_mutex_unlock(&srv->cmu);
		if (write(srv->workers[0].cevfd, &one, sizeof(one)) < 0) {
			/* cannot overflow */
		}
	}
}

/* ---- connections ---- */

static time_t
conn_deadline(struct conn *c)
{
	const struct conf *cf = &c->cfg->conf;

	if (c->tstate == CT_HANDSHAKE)
		return time(NULL) + (cf->command_timeout < HANDSHAKE_SECONDS ? cf->command_timeout :
		    HANDSHAKE_SECONDS);
	return time(NULL) + (session_state(c->s) == SS_DATA ? cf->data_timeout : cf->command_timeout);
}

/* Does the session want input now? */
static int
conn_wants_input(struct conn *c)
{
	enum session_state st = session_state(c->s);

	return !c->closing && !c->starttls_pending && c->hold_until == 0 && st != SS_CLOSING &&
	    st != SS_STARTTLS && c->inlen < IN_MAX && c->outlen - c->outoff < OUT_MAX;
}

static void
conn_update_events(struct conn *c)
{
	uint32_t ev = 0;

	if (c->dead)
		return;
	if (c->tstate == CT_HANDSHAKE)
		ev = (uint32_t)c->tls_want;
	else {
		if (c->outoff < c->outlen && c->hold_until == 0)
			ev |= EPOLLOUT;
		if (conn_wants_input(c))
			ev |= EPOLLIN;
		if (c->tstate == CT_TLS && c->tls_want)
			ev |= (uint32_t)c->tls_want;
	}
	ev_io_set(c->wk->loop, &c->io, ev);
}

/* recv(2) or TLS read: > 0 bytes, 0 end of stream, -1 with errno (EAGAIN: wait). */
static ssize_t
conn_recv(struct conn *c, void *buf, size_t len)
{
	ssize_t n;

	if (c->tstate != CT_TLS)
		return recv(c->io.fd, buf, len, 0);
	n = tls_read(c->tls, buf, len);
	c->tls_want = 0;
	if (n > 0)
		return n;
	switch (n) {
	case TLS_WANT_READ:
		errno = EAGAIN;
		return -1;
	case TLS_WANT_WRITE:
		c->tls_want = EPOLLOUT;
		errno = EAGAIN;
		return -1;
	case TLS_CLOSED:
		return 0;
	default:
		log_info("sid=%s event=tls-error reason=\"%s\"", c->sid, tls_conn_error(c->tls));
		errno = EIO;
		return -1;
	}
}

static ssize_t
conn_send(struct conn *c, const void *buf, size_t len)
{
	ssize_t n;

	if (c->tstate != CT_TLS)
		return send(c->io.fd, buf, len, MSG_NOSIGNAL);
	n = tls_write(c->tls, buf, len);
	if (n > 0)
		return n;
	if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
		c->tls_want = n == TLS_WANT_READ ? EPOLLIN : EPOLLOUT;
		errno = EAGAIN;
		return -1;
	}
	errno = EPIPE;
	return -1;
}

/* Feed buffered input to the session, as far as it takes it; write the replies. The
 * session stops at the output bound, so go on while the client reads what we write. */
static void
conn_process(struct conn *c)
{
	for (;;) {
		size_t before = c->inlen;

		if (c->dead)
			return;
		if (c->inlen > 0 && !c->starttls_pending && c->hold_until == 0) {
			session_set_time(c->s, time(NULL));
			size_t used = session_feed(c->s, c->in, c->inlen);
			if (used > 0) {
				memmove(c->in, c->in + used, c->inlen - used);
				c->inlen -= used;
			}
		}
		if (c->starttls_pending && c->inlen > 0) {
			/* RFC 3207 §4.2: nothing the client sent after STARTTLS in the clear may
			 * be executed (CVE-2011-0411). */
			log_info("sid=%s event=starttls-discarded-input bytes=%zu", c->sid, c->inlen);
			c->inlen = 0;
		}
		if (c->inlen == 0 && c->in != NULL) {
			free(c->in);
			c->in = NULL;
			c->incap = 0;
		}
		if (session_commands(c->s) != c->last_cmds) {
			c->last_cmds = session_commands(c->s);
			c->deadline = conn_deadline(c);
		}
		if (session_state(c->s) == SS_CLOSING)
			c->closing = 1;
		conn_flush(c);
		if (c->dead)
			return;
		conn_account(c);
		/* Stop when nothing moved, or the session waits for something else (the tarpit,
		 * a commit, TLS), or the client is not reading (EPOLLOUT resumes us). */
		if (c->inlen == 0 || c->inlen == before || c->hold_until != 0 || c->closing ||
		    c->starttls_pending || c->outlen - c->outoff >= OUT_MAX)
			break;
	}
}

/* Write what we can; close when closing and drained; start TLS when the 220 is out. */
static void
conn_flush(struct conn *c)
{
	if (c->dead)
		return;
	if (c->hold_until != 0) {
		conn_update_events(c);	/* the tarpit: nothing leaves until the tick */
		return;
	}
	while (c->outoff < c->outlen) {
		ssize_t n = conn_send(c, c->out + c->outoff, c->outlen - c->outoff);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			session_disconnected(c->s);
			conn_close(c);
			return;
		}
		c->outoff += (size_t)n;
	}
	if (c->outoff == c->outlen) {
		c->outoff = c->outlen = 0;
		if (c->outcap > 4096) {
			free(c->out);
			c->out = NULL;
			c->outcap = 0;
		}
		if (c->closing) {
			conn_close(c);
			return;
		}
		if (c->starttls_pending) {
			c->starttls_pending = 0;
			conn_start_tls(c);
			return;
		}
	}
	conn_update_events(c);
}

/* Begin the TLS handshake on c's socket (after the 220 to STARTTLS, or at once on smtps). */
static void
conn_start_tls(struct conn *c)
{
	if ((c->tls = tls_conn_new(c->cfg->tls, c->io.fd, 1, NULL)) == NULL) {
		log_error("sid=%s event=tls-error reason=\"cannot create TLS session\"", c->sid);
		metrics_inc(M_TLS_FAIL_SETUP);
		session_disconnected(c->s);
		conn_close(c);
		return;
	}
	c->tstate = CT_HANDSHAKE;
	c->tls_want = EPOLLIN;
	c->deadline = conn_deadline(c);
	conn_handshake(c);
}

/* Drive the TLS handshake (after STARTTLS, or first thing on an smtps listener). */
static void
conn_handshake(struct conn *c)
{
	char desc[128];
	int r = tls_handshake(c->tls);

	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
		c->tls_want = r == TLS_WANT_READ ? EPOLLIN : EPOLLOUT;
		conn_update_events(c);
		return;
	}
	if (r != TLS_OK) {
		log_info("sid=%s event=tls-handshake-failed reason=\"%s\"", c->sid,
		    tls_conn_error(c->tls));
		metrics_inc(M_TLS_FAIL_PROTOCOL);
		session_disconnected(c->s);
		conn_close(c);
		return;
	}
	c->tstate = CT_TLS;
	c->tls_want = 0;
	metrics_inc(M_TLS_OK);
	snprintf(desc, sizeof(desc), "%s with cipher %s (%d bits)", tls_conn_version(c->tls),
	    tls_conn_cipher(c->tls), tls_conn_bits(c->tls));
	session_set_time(c->s, time(NULL));
	if (session_state(c->s) == SS_GREETING) {
		/* smtps: TLS first, then the greeting (RFC 8314 §3.3). */
		session_tls_done(c->s, desc);
		session_start(c->s, NULL);
	} else
		session_tls_done(c->s, desc);
	c->last_cmds = session_commands(c->s);
	c->deadline = conn_deadline(c);
	conn_process(c);
	conn_kick(c);
}

/* Read what TLS already decrypted: epoll cannot report it. */
static void
conn_kick(struct conn *c)
{
	if (!c->dead && c->tstate == CT_TLS && tls_pending(c->tls) > 0 && conn_wants_input(c))
		conn_read(c);
}

/* Keep n more input bytes (n ≤ IN_MAX - inlen); the buffer grows by doubling, so a
 * client that sends half a line costs IN_MIN, not IN_MAX. 0 ok, -1 out of memory. */
static int
conn_keep(struct conn *c, const char *p, size_t n)
{
	if (c->inlen + n > c->incap) {
		size_t cap = c->incap ? c->incap : IN_MIN;
		while (cap < c->inlen + n)
			cap *= 2;
		if (cap > IN_MAX)
			cap = IN_MAX;
		char *m = realloc(c->in, cap);
		if (m == NULL)
			return -1;
		c->in = m;
		c->incap = cap;
	}
	memcpy(c->in + c->inlen, p, n);
	c->inlen += n;
	return 0;
}

static void
conn_read(struct conn *c)
{
	char *rbuf = c->wk->rbuf;
	int eof = 0;

	for (int round = 0; round < 16 && !eof; round++) {
		ssize_t n;
		size_t room = IN_MAX - c->inlen;
		if (room == 0 || !conn_wants_input(c))
			break;
		n = conn_recv(c, rbuf, room < READ_CHUNK ? room : READ_CHUNK);
		if (n > 0) {
			size_t used = 0;
			if (c->inlen == 0 && c->hold_until == 0) {
				/* The common case: the session reads straight from rbuf and only a
				 * partial line (or what it cannot take yet) is copied. */
				session_set_time(c->s, time(NULL));
				used = session_feed(c->s, rbuf, (size_t)n);
			}
			if (used < (size_t)n && c->starttls_pending)
				log_info("sid=%s event=starttls-discarded-input bytes=%zu", c->sid,
				    (size_t)n - used);
			else if (used < (size_t)n && conn_keep(c, rbuf + used, (size_t)n - used) < 0) {
				session_disconnected(c->s);
				conn_close(c);
				return;
			}
			if (c->inlen > 0) {
				conn_process(c);
				if (c->dead)
					return;
			}
		}
		if (n == 0)
			eof = 1;
		else if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				eof = 1;
			break;
		} else {
			if (session_state(c->s) == SS_DATA)
				c->deadline = conn_deadline(c);
			if ((size_t)n < room && (c->tstate != CT_TLS || tls_pending(c->tls) == 0))
				break;
		}
	}
	if (c->dead)
		return;
	if (eof) {
		session_disconnected(c->s);
		conn_close(c);
		return;
	}
	conn_process(c);
}

static void
conn_cb(struct ev_io *io, uint32_t events)
{
	struct conn *c = io->arg;

	if (c->dead)
		return;
	if (c->tstate == CT_HANDSHAKE) {
		conn_handshake(c);
		return;
	}
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		session_disconnected(c->s);
		conn_close(c);
		return;
	}
	if (c->tstate == CT_TLS && c->tls_want == EPOLLOUT && (events & EPOLLOUT) &&
	    c->outoff == c->outlen) {
		/* a read was waiting for the socket to take a TLS write */
		conn_read(c);
		return;
	}
	if (events & EPOLLIN) {
		conn_read(c);
		return;	/* conn may be gone */
	}
	if (events & EPOLLOUT) {
		conn_flush(c);
		/* The client read its replies: take the commands that waited for that. */
		if (!c->dead && c->inlen > 0 && c->outlen - c->outoff < OUT_MAX)
			conn_process(c);
	}
}

/* Tear down a connection; while a job still points at it the struct waits. */
static void
conn_close(struct conn *c)
{
	struct server *srv = c->srv;
	struct worker *wk = c->wk;

	if (!c->dead) {
		int fd = c->io.fd;
		__atomic_store_n(&c->dead, 1, __ATOMIC_RELAXED);	/* jobs on other threads read it */
		ev_io_stop(wk->loop, &c->io);
		if (c->tstate == CT_TLS)
			tls_shutdown(c->tls);
		if (c->w.fd >= 0 || c->w.qid[0] != '\0')
			queue_discard(&srv->q, &c->w);
		/* the session stops counting before the client can see the close: one that
		 * reconnects at once is not refused for the connection it just ended */
		cl_conn_add(srv, &c->peer, -1);
		wk->nconns--;
		__atomic_sub_fetch(&srv->nconns, 1, __ATOMIC_RELAXED);
		metrics_gauge_add(MG_CONNECTIONS, -1);
		close(fd);
		if (c->prev)
			c->prev->next = c->next;
		else
			wk->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		log_info("sid=%s event=disconnect", c->sid);
		conn_account(c);	/* dead: counts nothing now */
	}
	if (c->busy > 0 || c->buried)
		return;	/* the job's completion calls us again */
	c->buried = 1;
	/* Freed later: callers up the stack may still hold c during this loop turn. */
	c->grave = wk->graveyard;
	wk->graveyard = c;
}

/* Has this worker finished all it must finish before it stops? Worker 0 waits for all the
 * others' sessions and commits too, and for the queue manager. */
static int
worker_drained(struct worker *wk)
{
	struct server *srv = wk->srv;

	if (wk->nconns != 0 || wk->commits_in_flight != 0)
		return 0;
	if (wk->id != 0)
		return 1;
	/* A relay delivery still talking to a slow server is given a few seconds, then cut:
	 * its message stays queued (at worst it is sent twice). Local work always finishes. */
	return __atomic_load_n(&srv->nconns, __ATOMIC_RELAXED) == 0 &&
	    __atomic_load_n(&srv->commits_in_flight, __ATOMIC_RELAXED) == 0 &&
	    (srv->qmgr == NULL || (qmgr_busy_local(srv->qmgr) == 0 &&
	    (qmgr_busy(srv->qmgr) == 0 || time(NULL) >= srv->stop_relay_deadline)));
}

/* Before the loop sleeps: free closed connections; when stopping and nothing is left to
 * finish, stop now rather than at the next tick. */
static void
worker_reap(void *arg)
{
	struct worker *wk = arg;
	struct conn *c;

	if (wk->stopping && worker_drained(wk))
		ev_loop_break(wk->loop);

	while ((c = wk->graveyard) != NULL) {
		wk->graveyard = c->grave;
		session_free(c->s);
		if (c->tls != NULL)
			tls_conn_free(c->tls);
		cfg_unref(c->cfg);
		free(c->in);
		free(c->out);
		free(c->dnsbl_reply);
		free(c->spf);
		free(c);
	}
}

/* The refusal counter of a connect-refused reason. */
static enum metric
refuse_metric(const char *why)
{
	return strcmp(why, "connection-limit") == 0 ? M_REFUSED_CONNECTION_LIMIT :
	    strcmp(why, "client-connection-limit") == 0 ? M_REFUSED_CLIENT_LIMIT : M_REFUSED_MEMORY;
}

/*
 * Begin serving an accepted connection: its session, the limits, the greeting (or the TLS
 * handshake on an smtps listener). peer holds the addresses the policies see: the socket's,
 * or those a PROXY header carried (via names the balancer then).
 */
static void
conn_start(struct worker *wk, int fd, enum session_listener kind,
    const struct session_peer *peer, const char *via, struct cfg *cfg)
{
	struct server *srv = wk->srv;
	struct session_opts opts;
	struct conn *c;
	const char *refuse = NULL, *why = NULL;
	char ra[64], la[64];

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->srv = srv;
	c->wk = wk;
	c->cfg = cfg_ref(cfg);
	c->peer = peer->remote;
	c->sp = *peer;
	c->kind = kind;
	c->w.fd = -1;
	snprintf(c->sid, sizeof(c->sid), "%llx%04llx", (unsigned long long)time(NULL),
	    __atomic_add_fetch(&srv->nsessions, 1, __ATOMIC_RELAXED) & 0xffff);
	memset(&opts, 0, sizeof(opts));
	opts.kind = kind;
	opts.cert_loaded = c->cfg->tls != NULL && kind != SL_LOCAL;
	opts.auth_available = (c->cfg->authusers != NULL || c->cfg->dvauth != NULL) &&
	    kind != SL_LOCAL;
	if (c->cfg->dvauth != NULL) {
		int known;

		/* what Dovecot's last handshake listed; before one, both (either is carried) */
		opts.auth_mechs = dvauth_mechs(c->cfg->dvauth, &known);
		if (known && opts.auth_mechs == 0)
			opts.auth_available = 0;
	}
	c->s = session_new(&c->cfg->conf, c->cfg->recipients, peer, &opts, c->sid,
	    &session_ops, c);
	if (c->s == NULL || ev_io_start(wk->loop, &c->io, fd, 0, conn_cb, c) < 0) {
		session_free(c->s);
		cfg_unref(c->cfg);
		free(c);
		close(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->next = wk->conns;
	if (wk->conns)
		wk->conns->prev = c;
	wk->conns = c;
	wk->nconns++;
	unsigned total = __atomic_add_fetch(&srv->nconns, 1, __ATOMIC_RELAXED);
	size_t used = __atomic_load_n(&srv->mem, __ATOMIC_RELAXED);
	const struct conf *cf = &c->cfg->conf;
	unsigned from_client = cl_conn_open(srv, &c->peer);
	if (total > cf->max_connections) {
		refuse = "Too many connections; try again later";
		why = "connection-limit";
	} else if (from_client >= cf->max_connections_per_ip) {
		refuse = "Too many connections from your address; try again later";
		why = "client-connection-limit";
	} else if (used + sizeof(*c) + session_memory(c->s) > cf->max_session_memory) {
		refuse = "Too much memory in use by other sessions; try again later";
		why = "session-memory-limit";
	}
	conn_account(c);
	metrics_inc(M_CONNECTIONS);
	metrics_gauge_add(MG_CONNECTIONS, 1);
	if (why != NULL)
		metrics_inc(refuse_metric(why));
	if (why != NULL && strcmp(why, "session-memory-limit") == 0)
		log_warn("sid=%s event=connect-refused reason=%s used=%zu limit=%llu "
		    "sessions=%u", c->sid, why, used, (unsigned long long)cf->max_session_memory,
		    total);
	log_info("sid=%s event=connect client=%s:%u local=%s:%u listener=%s worker=%d%s%s%s%s",
	    c->sid, netaddr_str(&peer->remote, ra, sizeof(ra)), peer->remote_port,
	    netaddr_str(&peer->local, la, sizeof(la)), peer->local_port,
	    kind == SL_SMTPS ? "smtps" : kind == SL_SUBMISSION ? "submission" :
	    kind == SL_LOCAL ? "local" : "smtp", wk->id,
	    via ? " proxy=" : "", via ? via : "",
	    refuse ? " action=refused reason=" : "", refuse ? why : "");
	if (kind == SL_SMTPS && refuse == NULL) {
		c->exempt = kind == SL_LOCAL || netaddr_is_loopback(&c->peer) ||
		    conf_relay_client(cf, &c->peer);
		dnsbl_start(c);
		conn_start_tls(c);	/* RFC 8314: the handshake first, whatever the address */
		return;
	}
	c->exempt = kind == SL_LOCAL || netaddr_is_loopback(&c->peer) ||
		    conf_relay_client(cf, &c->peer);
	if (refuse == NULL)
		dnsbl_start(c);
	c->deadline = conn_deadline(c);
	session_start(c->s, refuse);
	c->last_cmds = session_commands(c->s);
	conn_process(c);
}

/* ---- the PROXY header from a load balancer in proxy_networks ---- */

#define PROXY_WAIT_SECONDS 10	/* a balancer sends its header at once */

struct pconn {
	struct ev_io io;
	struct worker *wk;
	struct cfg *cfg;		/* as it was when the balancer connected */
	struct pconn *prev, *next;
	enum session_listener kind;
	struct session_peer sock;	/* the socket's own addresses: the balancer's */
	time_t deadline;
	size_t len;
	unsigned char buf[PROXY_V2_MAX];
};

static void
pconn_free(struct pconn *p, int close_fd)
{
	struct worker *wk = p->wk;

	ev_io_stop(wk->loop, &p->io);
	if (p->prev)
		p->prev->next = p->next;
	else
		wk->pconns = p->next;
	if (p->next)
		p->next->prev = p->prev;
	wk->npconns--;
	if (close_fd >= 0)
		close(close_fd);
	cfg_unref(p->cfg);
	free(p);
}

static void
pconn_fail(struct pconn *p, int fd, const char *why)
{
	char ba[64];

	log_warn("event=proxy-header-error balancer=%s:%u reason=\"%s\" action=closed",
	    netaddr_str(&p->sock.remote, ba, sizeof(ba)), p->sock.remote_port, why);
	pconn_free(p, fd);
}

/* Read the header without reading past it: the bytes after it are the client's (TLS on an
 * smtps listener), so peek, and take only what the header needs. */
static void
pconn_cb(struct ev_io *io, uint32_t events)
{
	struct pconn *p = io->arg;
	int fd = io->fd;
	struct proxy_hdr h;
	const char *why;
	ssize_t k = recv(fd, p->buf + p->len, sizeof(p->buf) - p->len, MSG_PEEK);
	int n;

	if (k == 0) {
		pconn_fail(p, fd, "closed before a PROXY header");
		return;
	}
	if (k < 0) {
		if (errno != EAGAIN && errno != EINTR)
			pconn_fail(p, fd, strerror(errno));
		return;
	}
	n = proxy_parse(p->buf, p->len + (size_t)k, &h, &why);
	if (n < 0) {
		pconn_fail(p, fd, why);
		return;
	}
	/* Incomplete: every byte so far is header; complete: take exactly the rest of it. */
	size_t take = n == 0 ? (size_t)k : (size_t)n - p->len;
	if (recv(fd, p->buf + p->len, take, 0) != (ssize_t)take) {
		pconn_fail(p, fd, "short read of a peeked PROXY header");
		return;
	}
	p->len += take;
	if (n == 0)
		return;

	struct session_peer peer = p->sock;
	char via[80], ba[64];
	enum session_listener kind = p->kind;
	struct worker *wk = p->wk;
	struct cfg *cfg = cfg_ref(p->cfg);
	snprintf(via, sizeof(via), "%s:%u", netaddr_str(&p->sock.remote, ba, sizeof(ba)),
	    p->sock.remote_port);
	if (h.has_addr) {
		/* The client, and the address it connected to (the loopback policy's input). */
		peer.remote = h.src;
		peer.remote_port = h.sport;
		peer.local = h.dst;
		peer.local_port = h.dport;
	} else
		log_debug("event=proxy-header version=%d addresses=none (LOCAL or UNKNOWN) "
		    "balancer=%s", h.version, via);
	pconn_free(p, -1);
	conn_start(wk, fd, kind, &peer, via, cfg);
	cfg_unref(cfg);
}

/*
 * Out of descriptors: the pending connection would keep the listener readable and the loop
 * spinning. Give up the spare descriptor, take the connection, tell it why, close it, and
 * take the spare back (libuv's and nginx's answer). Logged at most once a second.
 */
static void
accept_out_of_fds(struct worker *wk, int lfd)
{
	static const char msg[] = "421 4.3.2 Too many open files; try again later\r\n";
	time_t now = time(NULL);
	int e = errno, fd;

	if (now != wk->fds_logged) {
		wk->fds_logged = now;
		log_error("event=accept-error reason=\"%s\" effect=\"connections are refused with "
		    "421 until descriptors free up; raise LimitNOFILE or lower max_connections\"",
		    strerror(e));
	}
	if (wk->spare_fd < 0)
		return;
	close(wk->spare_fd);
	if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		metrics_inc(M_REFUSED_FDS);
		if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* nothing to do: it is closed either way */
		}
		close(fd);
	}
	wk->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static int
from_proxy_network(const struct conf *cf, const struct netaddr *a)
{
	for (size_t i = 0; i < cf->nproxy_networks; i++)
		if (cidr_match(&cf->proxy_networks[i], a))
			return 1;
	return 0;
}

static void
accept_cb(struct ev_io *io, uint32_t events)
{
	struct listener *l = io->arg;
	struct worker *wk = l->wk;

	if (wk->stopping)
		return;		/* the listener was closed earlier in this epoll batch */
	struct cfg *cfg = cfg_current(l->srv);

	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss, ls;
		socklen_t sl = sizeof(ss), lsl = sizeof(ls);
		struct session_peer peer;
		int fd = accept4(l->ls->fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				accept_out_of_fds(wk, l->ls->fd);
			break;
		}
		if (l->kind == SL_LOCAL) {
			/* spool_dir/submit: the kernel names the user (local.c) */
			if (local_peer(fd, &peer) < 0)
				close(fd);
			else
				conn_start(wk, fd, SL_LOCAL, &peer, NULL, cfg);
			continue;
		}
		memset(&peer, 0, sizeof(peer));
		if (getsockname(fd, (struct sockaddr *)&ls, &lsl) < 0 ||
		    netaddr_from_sockaddr((struct sockaddr *)&ss, &peer.remote, &peer.remote_port) < 0 ||
		    netaddr_from_sockaddr((struct sockaddr *)&ls, &peer.local, &peer.local_port) < 0) {
			close(fd);
			continue;
		}
		if (!from_proxy_network(&cfg->conf, &peer.remote)) {
			conn_start(wk, fd, l->kind, &peer, NULL, cfg);
			continue;
		}
		/* A balancer: its header comes first, then the session of the client it names. */
		struct pconn *p;
		if (wk->npconns >= cfg->conf.max_connections ||
		    (p = calloc(1, sizeof(*p))) == NULL) {
			close(fd);
			continue;
		}
		p->wk = wk;
		p->kind = l->kind;
		p->sock = peer;
		p->deadline = time(NULL) + PROXY_WAIT_SECONDS;
		if (ev_io_start(wk->loop, &p->io, fd, EPOLLIN, pconn_cb, p) < 0) {
			free(p);
			close(fd);
			continue;
		}
		p->cfg = cfg_ref(cfg);
		p->next = wk->pconns;
		if (wk->pconns)
			wk->pconns->prev = p;
		wk->pconns = p;
		wk->npconns++;
	}
	cfg_unref(cfg);
}

/* Balancers that have not sent their header in time, or all of them when stopping. */
static void
pconn_tick(struct worker *wk, time_t now)
{
	struct pconn *p, *next;

	for (p = wk->pconns; p != NULL; p = next) {
		next = p->next;
		if (wk->stopping || now >= p->deadline)
			pconn_fail(p, p->io.fd, wk->stopping ? "server stopping" :
			    "no PROXY header within 10 s");
	}
}

/* ---- listeners ---- */

/* Add a bound, listening socket for the workers to watch (takes fd). */
static int
lsock_add(struct server *srv, const struct hostport *hp, enum session_listener kind, int fd)
{
	struct lsock *nl;

	if ((nl = realloc(srv->lsocks, (srv->nlsocks + 1) * sizeof(*nl))) == NULL) {
		close(fd);
		return -1;
	}
	srv->lsocks = nl;
	memset(&nl[srv->nlsocks], 0, sizeof(*nl));
	if (hp != NULL)
		nl[srv->nlsocks].hp = *hp;
	nl[srv->nlsocks].kind = kind;
	nl[srv->nlsocks].fd = fd;
	srv->nlsocks++;
	return 0;
}

/* Open one listening socket (before any worker watches it). */
static int
listen_on(struct server *srv, const struct hostport *hp, enum session_listener kind, char *err,
    size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = netaddr_to_sockaddr(&hp->addr, hp->port, &ss);
	char buf[NETADDR_STRLEN];
	int fd, one = 1;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "listen %s: socket: %s", hostport_str(hp, buf, sizeof(buf)),
		    strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
		snprintf(err, errlen, "listen %s: %s", hostport_str(hp, buf, sizeof(buf)),
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (lsock_add(srv, hp, kind, fd) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	log_info("event=listening address=%s listener=%s", hostport_str(hp, buf, sizeof(buf)),
	    kind == SL_SMTPS ? "smtps" : kind == SL_SUBMISSION ? "submission" : "smtp");
	return 0;
}

/* Watch every listening socket from this worker's loop. EPOLLEXCLUSIVE: a connection wakes
 * one of the loops waiting on the socket, not all of them. */
static int
worker_listen(struct worker *wk)
{
	struct server *srv = wk->srv;

	if ((wk->listeners = calloc(srv->nlsocks ? srv->nlsocks : 1,
	    sizeof(*wk->listeners))) == NULL)
		return -1;
	for (size_t i = 0; i < srv->nlsocks; i++) {
		struct listener *l = &wk->listeners[i];
		l->srv = srv;
		l->wk = wk;
		l->ls = &srv->lsocks[i];
		l->kind = srv->lsocks[i].kind;
		if (ev_io_start(wk->loop, &l->io, l->ls->fd,
		    EPOLLIN | (srv->nworkers > 1 ? EPOLLEXCLUSIVE : 0), accept_cb, l) < 0)
			return -1;
		__atomic_add_fetch(&l->ls->refs, 1, __ATOMIC_ACQ_REL);
		wk->nlisteners++;
	}
	return 0;
}

/* Stop accepting in this worker; the last worker to stop closes the sockets, so that no
 * loop ever watches a closed (or reused) descriptor. The array stays until server_run's
 * teardown: an accept event of the same epoll batch may still point into it (accept_cb
 * sees wk->stopping and does nothing). */
static void
close_listeners(struct worker *wk)
{
	for (size_t i = 0; i < wk->nlisteners; i++) {
		struct listener *l = &wk->listeners[i];
		ev_io_stop(wk->loop, &l->io);
		if (__atomic_sub_fetch(&l->ls->refs, 1, __ATOMIC_ACQ_REL) == 0)
			close(l->ls->fd);
	}
	wk->nlisteners = 0;
}

/* ---- configuration ---- */

static void
warn_not_in_effect(const struct conf *c)
{
	for (int k = 0; k < CK__COUNT; k++)
		if (conf_not_in_effect(c, (enum conf_key)k))
			log_warn("event=config-warning key=%s reason=\"set, but not yet in effect "
			    "in this version of imsd\"", conf_key_name((enum conf_key)k));
}

/* The same ADDR:PORT lists, in the same order (metrics_listen at a reload). */
static int
hostports_equal(const struct hostport *a, size_t na, const struct hostport *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (!netaddr_equal(&a[i].addr, &b[i].addr) || a[i].port != b[i].port)
			return 0;
	return 1;
}

static int
listeners_equal(const struct conf *a, const struct conf *b)
{
	if (a->nlisten != b->nlisten)
		return 0;
	for (size_t i = 0; i < a->nlisten; i++)
		if (!netaddr_equal(&a->listen[i].addr, &b->listen[i].addr) ||
		    a->listen[i].port != b->listen[i].port)
			return 0;
	return 1;
}

static void
server_reload(struct server *srv)
{
	char err[1024];
	struct cfg *n;

	/* systemd (Type=notify): reloading until READY=1 again, whatever the outcome */
	sd_notify(0, "RELOADING=1");
	if ((n = cfg_load(srv->conf_path, 1, err, sizeof(err))) == NULL) {
		log_error("event=reload-failed reason=\"%s\" action=kept-old-configuration", err);
		sd_notifyf(0, "READY=1\nSTATUS=reload failed, serving with the previous "
		    "configuration: %s", err);
		return;
	}
	if (!listeners_equal(&srv->cfg->conf, &n->conf))
		log_warn("event=reload-warning reason=\"listen changed; new listeners take effect "
		    "after a restart\"");
	if (!hostports_equal(srv->cfg->conf.metrics_listen, srv->cfg->conf.nmetrics_listen,
	    n->conf.metrics_listen, n->conf.nmetrics_listen))
		log_warn("event=reload-warning reason=\"metrics_listen changed; takes effect after "
		    "a restart\"");
	if (strcmp(srv->cfg->conf.spool_dir, n->conf.spool_dir) != 0)
		log_warn("event=reload-warning reason=\"spool_dir changed; takes effect after a "
		    "restart\"");
	log_set_level(n->conf.log_level);
	warn_not_in_effect(&n->conf);
	qmgr_set_cfg(srv->qmgr, n);
	pthread_mutex_lock(&srv->cfgmu);
	struct cfg *old = srv->cfg;
	srv->cfg = n;
	pthread_mutex_unlock(&srv->cfgmu);
	cfg_unref(old);
	auth_backend_probe(srv->workers[0].authq, n);
	log_info("event=reloaded config=%s", n->conf.source);
	sd_notify(0, "READY=1\nSTATUS=serving");
}

/* ---- signals, tick ---- */

/* This worker stops: no more accepting; idle sessions get 421 4.3.2. */
static void
worker_begin_stop(struct worker *wk)
{
	struct conn *c, *next;

	if (wk->stopping)
		return;
	wk->stopping = 1;
	close_listeners(wk);
	for (c = wk->conns; c != NULL; c = next) {
		next = c->next;
		if (session_state(c->s) == SS_COMMIT)
			continue;	/* gets its 250, then the 421 below on the next tick */
		session_shutdown(c->s);
		conn_process(c);
	}
}

static void
wake_cb(struct ev_io *io, uint32_t events)
{
	struct worker *wk = io->arg;
	uint64_t v;

	if (read(wk->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	if (__atomic_load_n(&wk->srv->stopping, __ATOMIC_ACQUIRE))
		worker_begin_stop(wk);
}

/* On worker 0 (the signal): every worker stops within SPEC's 10 seconds. */
static void
server_begin_stop(struct server *srv)
{
	if (srv->stopping)
		return;
	srv->stop_deadline = time(NULL) + DRAIN_SECONDS;
	srv->stop_relay_deadline = time(NULL) + RELAY_DRAIN_SECONDS;
	__atomic_store_n(&srv->stopping, 1, __ATOMIC_RELEASE);
	sd_notify(0, "STOPPING=1");
	log_info("event=stopping connections=%u commits_in_flight=%u",
	    __atomic_load_n(&srv->nconns, __ATOMIC_RELAXED),
	    __atomic_load_n(&srv->commits_in_flight, __ATOMIC_RELAXED));
	for (int i = 1; i < srv->nworkers; i++) {
		uint64_t one = 1;
		if (write(srv->workers[i].wakefd, &one, sizeof(one)) < 0) {
			/* cannot overflow */
		}
	}
	worker_begin_stop(&srv->workers[0]);
}

static void
signal_cb(struct ev_io *io, uint32_t events)
{
	struct server *srv = io->arg;
	struct signalfd_siginfo si;

	while (read(srv->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			server_reload(srv);
		else
			server_begin_stop(srv);
	}
}

static void
worker_tick(void *arg)
{
	struct worker *wk = arg;
	struct server *srv = wk->srv;
	time_t now = time(NULL);
	struct conn *c, *next;

	if (!wk->stopping && __atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE))
		worker_begin_stop(wk);	/* the wake-up was missed: never mind */
	for (c = wk->conns; c != NULL; c = next) {
		next = c->next;
		/* ">": auth_fail_at is whole seconds, so ">=" could answer after only 1 s of
		 * the 2 (seen as a 1.4 s delay under load); this way it is 2 to 3 s */
		if (c->auth_fail_at != 0 && now > c->auth_fail_at) {
			c->auth_fail_at = 0;
			session_auth_verdict(c->s, c->auth_locked ? SESSION_AUTH_LOCKED : 0, NULL,
			    c->auth_why[0] ? c->auth_why : NULL);
			c->auth_why[0] = '\0';
			c->auth_locked = 0;
			conn_process(c);
			if (c->dead)
				continue;
		}
		if (c->hold_until != 0 && now >= c->hold_until) {
			c->hold_until = 0;
			conn_process(c);
			if (c->dead)
				continue;
		}
		if (c->tstate == CT_HANDSHAKE) {
			if (now >= c->deadline || wk->stopping) {
				log_info("sid=%s event=tls-handshake-failed reason=timeout", c->sid);
				metrics_inc(M_TLS_FAIL_TIMEOUT);
				session_disconnected(c->s);
				conn_close(c);
			}
			continue;
		}
		if (wk->stopping && session_state(c->s) != SS_COMMIT &&
		    session_state(c->s) != SS_CLOSING) {
			session_shutdown(c->s);
			conn_process(c);
			continue;
		}
		if (now >= c->deadline && session_state(c->s) != SS_COMMIT) {
			if (c->closing) {
				/* The client does not read its 421: give up on it. */
				conn_close(c);
				continue;
			}
			session_timeout(c->s);
			c->deadline = now + 5;
			conn_process(c);
		}
	}
	pconn_tick(wk, now);
	if (wk->freed >= TRIM_AFTER) {
		/* A flood's buffers were freed: return the memory instead of holding the peak. */
		wk->freed = 0;
		TRIM_MEMORY();
	}
	if (wk->id == 0) {
		if (now % 60 == 0) {
			pthread_mutex_lock(&srv->climu);
			clients_expire(srv->clients, now);
			pthread_mutex_unlock(&srv->climu);
		}
		if (!srv->stopping)
			qmgr_tick(srv->qmgr, now);
		relay_tick(srv->relay, now);
		dns_tick(srv->dns);
		metrics_http_tick(srv->metrics, now);
	}
	if (wk->stopping && (worker_drained(wk) || now >= srv->stop_deadline))
		ev_loop_break(wk->loop);
}

static void *
worker_main(void *arg)
{
	struct worker *wk = arg;
	char name[16];

	snprintf(name, sizeof(name), "imsd-loop-%d", wk->id);
	pthread_setname_np(pthread_self(), name);	/* top -H, /proc/PID/task/N/comm */
	ev_loop_run(wk->loop, worker_tick, worker_reap, wk);
	return NULL;
}

static int
server_setup_signals(struct server *srv)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Blocked before any thread starts, so only the signalfd sees them. */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	srv->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (srv->sigfd < 0)
		return -1;
	return ev_io_start(srv->loop, &srv->sigio, srv->sigfd, EPOLLIN, signal_cb, srv);
}

/* Every session needs a descriptor (two while it relays nothing, one for its spool file in
 * DATA): raise the soft limit to the hard one and say when max_connections cannot fit. */
static void
raise_nofile(const struct conf *cf)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)cf->max_connections * 2 + 64 > rl.rlim_cur)
		log_warn("event=fd-limit nofile=%llu max_connections=%u effect=\"past about %llu "
		    "sessions accept fails; raise the limit (LimitNOFILE=) or lower max_connections\"",
		    (unsigned long long)rl.rlim_cur, cf->max_connections,
		    (unsigned long long)(rl.rlim_cur > 64 ? (rl.rlim_cur - 64) / 2 : 0));
}

/* workers = 0: one event loop per CPU this process may run on. */
static int
worker_count(const struct conf *cf)
{
	cpu_set_t set;
	int n = (int)cf->workers;

	if (n > 0)
		return n;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		n = CPU_COUNT(&set);
	else
		n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : n;
}

static int
worker_init(struct server *srv, struct worker *wk, int id)
{
	wk->id = id;
	wk->srv = srv;
	wk->cevfd = wk->wakefd = -1;
	wk->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if ((wk->loop = ev_loop_new()) == NULL ||
	    (wk->cevfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    (wk->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    ev_io_start(wk->loop, &wk->cio, wk->cevfd, EPOLLIN, commit_done_cb, wk) < 0 ||
	    ev_io_start(wk->loop, &wk->wakeio, wk->wakefd, EPOLLIN, wake_cb, wk) < 0)
		return -1;
	return 0;
}

/* Scrape-time values for metrics_listen (worker 0, which owns the queue manager). */
static void
metrics_collect(void *arg, struct metrics_dynamic *d)
{
	struct server *srv = arg;
	time_t oldest;

	if (srv->qmgr == NULL)
		return;
	d->have_queue = 1;
	qmgr_stats(srv->qmgr, &d->queue_messages, &d->queue_recipients, &oldest);
	d->queue_oldest_age = oldest != 0 && time(NULL) > oldest ? (uint64_t)(time(NULL) - oldest) : 0;
}

/* Serve; see server.h. */
int
server_run(const char *conf_path)
{
	struct server srv;
	char err[1024];
	int n;

	memset(&srv, 0, sizeof(srv));
	srv.conf_path = conf_path;
	srv.sigfd = -1;
	pthread_mutex_init(&srv.cfgmu, NULL);
	pthread_mutex_init(&srv.climu, NULL);
	if ((srv.cfg = cfg_load(conf_path, 1, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imsd: %s\n", err);
		return 1;
	}
	log_set_level(srv.cfg->conf.log_level);
	warn_not_in_effect(&srv.cfg->conf);
	struct privs pv;
	if (privs_plan(&srv.cfg->conf, &pv, err, sizeof(err)) < 0) {
		fprintf(stderr, "imsd: %s\n", err);
		cfg_unref(srv.cfg);
		return 1;
	}
	if (pv.stay_root)
		log_warn("event=running-as-root reason=\"run_user = root\" effect=\"every session, "
		    "Maildir write and relay connection runs as root\"");
	if (pv.switch_user && srv.cfg->conf.embedded && strcmp(pv.name, "nobody") == 0)
		log_warn("event=run-user-fallback user=nobody reason=\"the embedded default, started "
		    "as root, and no user imsd exists\" fix=\"adduser --system --group "
		    "--no-create-home imsd\"");
	if ((srv.clients = clients_new()) == NULL)
		fatal("event=startup-error reason=\"out of memory\"");
	raise_nofile(&srv.cfg->conf);
	srv.nworkers = worker_count(&srv.cfg->conf);
	if ((srv.workers = calloc((size_t)srv.nworkers, sizeof(*srv.workers))) == NULL)
		fatal("event=startup-error reason=\"out of memory\"");
	for (int i = 0; i < srv.nworkers; i++)
		if (worker_init(&srv, &srv.workers[i], i) < 0)
			fatal("event=startup-error reason=\"event loop: %s\"", strerror(errno));
	srv.loop = srv.workers[0].loop;
	if (server_setup_signals(&srv) < 0)
		fatal("event=startup-error reason=\"signals: %s\"", strerror(errno));
	/* Root works in the spool (the run user's) by descriptor only: spool_dir is opened
	 * once, and nothing inside it is followed (privs.h, queue.h, local.h). */
	{
		char lerr[LOG_VALUE_MAX];
		int sfd;
		if ((pv.switch_user && srv.cfg->conf.embedded &&
		    privs_reclaim(&pv, "var", err, sizeof(err)) < 0) ||
		    (sfd = privs_open_dir(&pv, srv.cfg->conf.spool_dir, 1, err, sizeof(err))) < 0 ||
		    queue_open_at(sfd, srv.cfg->conf.spool_dir, 1, &srv.q, err, sizeof(err)) < 0)
			fatal("event=startup-error reason=%s", log_value(lerr, sizeof(lerr), err,
			    strlen(err)));
	}
	{
		const struct conf *cf = &srv.cfg->conf;
		const struct { const struct hostport *hp; size_t n; enum session_listener k; } ls[] = {
			{ cf->listen, cf->nlisten, SL_SMTP },
			{ cf->submission_listen, cf->nsubmission_listen, SL_SUBMISSION },
			{ cf->smtps_listen, cf->nsmtps_listen, SL_SMTPS },
		};
		for (size_t k = 0; k < 3; k++)
			for (size_t i = 0; i < ls[k].n; i++)
				if (listen_on(&srv, &ls[k].hp[i], ls[k].k, err, sizeof(err)) < 0) {
					log_error("event=startup-error reason=\"%s\"", err);
					return 2;
				}
		/* local submission (imsd sendmail): spool_dir/submit */
		int lfd = local_listen(srv.q.dirfd, cf->spool_dir, err, sizeof(err));
		if (lfd < 0 || lsock_add(&srv, NULL, SL_LOCAL, lfd) < 0) {
			char lerr[LOG_VALUE_MAX];
			if (lfd >= 0)
				snprintf(err, sizeof(err), "out of memory");
			fatal("event=startup-error reason=%s", log_value(lerr, sizeof(lerr), err,
			    strlen(err)));
		}
	}
	if (srv.cfg->conf.nmetrics_listen > 0 && (srv.metrics = metrics_http_open(srv.loop,
	    srv.cfg->conf.metrics_listen, srv.cfg->conf.nmetrics_listen, err, sizeof(err))) == NULL) {
		log_error("event=startup-error reason=\"%s\"", err);
		return 2;
	}
	for (int i = 0; i < srv.nworkers; i++)
		if (worker_listen(&srv.workers[i]) < 0)
			fatal("event=startup-error reason=\"listeners: %s\"", strerror(errno));

	/* Listeners bound, key and files read, spool open: now become run_user, before any
	 * thread exists. What root created for us is given to that user first. */
	{
		const struct conf *cf = &srv.cfg->conf;
		char lerr[LOG_VALUE_MAX];
		int mfd = privs_open_dir(&pv, cf->mail_dir, 1, err, sizeof(err));
		if (mfd < 0 || privs_own_fd(&pv, srv.q.dirfd, cf->spool_dir, 2, err, sizeof(err)) < 0 ||
		    privs_own_fd(&pv, mfd, cf->mail_dir, cf->embedded ? 4 : 0, err, sizeof(err)) < 0 ||
		    (cf->embedded && cf->tls_cert_file != NULL &&
		    privs_own(&pv, "var/tls", 1, err, sizeof(err)) < 0))
			fatal("event=startup-error reason=%s", log_value(lerr, sizeof(lerr), err,
			    strlen(err)));
		close(mfd);
		/* system_mailboxes: the one process that may switch users (to write
		 * /var/mail/USER as USER) is forked now, before this one drops every right */
		if (cf->system_mailboxes && !pv.stay_root &&
		    (srv.localproc = localproc_start(pv.switch_user, pv.uid, pv.gid, pv.name, err,
		    sizeof(err))) == NULL)
			fatal("event=startup-error reason=%s", log_value(lerr, sizeof(lerr), err,
			    strlen(err)));
		if (privs_drop(&pv, err, sizeof(err)) < 0 ||
		    privs_check_dir("spool_dir", cf->spool_dir, err, sizeof(err)) < 0 ||
		    privs_check_dir("mail_dir", cf->mail_dir, err, sizeof(err)) < 0)
			fatal("event=startup-error reason=%s", log_value(lerr, sizeof(lerr), err,
			    strlen(err)));
		log_info("event=privileges user=%s uid=%ld gid=%ld capabilities=%s",
		    pv.switch_user ? pv.name : pv.stay_root ? "root" : "(as started)",
		    (long)getuid(), (long)getgid(), pv.stay_root ? "all" : "none");
	}
	if ((n = queue_clean_incoming(&srv.q)) > 0)
		log_info("event=recovery removed_incomplete=%d", n);
	if ((n = queue_clean_orphans(&srv.q)) > 0)
		log_info("event=recovery removed_orphan_journals=%d", n);

	pthread_mutex_init(&srv.cmu, NULL);
	if ((srv.committer = commit_start(&srv.q)) == NULL)
		fatal("event=startup-error reason=\"commit thread: %s\"", strerror(errno));
	for (int i = 0; i < srv.nworkers; i++)
		if ((srv.workers[i].authq = workq_start(srv.workers[i].loop, auth_threads(&srv))) == NULL ||
		    (srv.workers[i].checkq = workq_start(srv.workers[i].loop, CHECK_THREADS)) == NULL ||
		    (srv.workers[i].dnsblq = workq_start(srv.workers[i].loop, DNSBL_THREADS)) == NULL)
			fatal("event=startup-error reason=\"auth workers\"");
	if ((srv.deliveryq = workq_start(srv.loop, 4)) == NULL)
		fatal("event=startup-error reason=\"delivery workers\"");
	auth_backend_probe(srv.workers[0].authq, srv.cfg);
	if ((srv.dns = dns_new(srv.loop, srv.cfg->conf.dns_servers, srv.cfg->conf.ndns_servers, err,
	    sizeof(err))) == NULL) {
		log_error("event=startup-error reason=\"dns: %s\"", err);
		return 2;
	}
	if ((srv.relay = relay_new(srv.loop, srv.dns, err, sizeof(err))) == NULL) {
		log_error("event=startup-error reason=\"relay: %s\"", err);
		return 2;
	}
	if ((srv.qmgr = qmgr_new(&srv.q, srv.deliveryq, srv.relay, srv.cfg)) == NULL)
		fatal("event=startup-error reason=\"queue manager\"");
	qmgr_set_localproc(srv.qmgr, srv.localproc);
	if (srv.localproc != NULL)
		log_info("event=local-delivery-process pid=%ld capabilities=setuid,setgid "
		    "mailboxes=/var/mail/USER", (long)localproc_pid(srv.localproc));
	n = qmgr_recover(srv.qmgr);
	metrics_http_set_collect(srv.metrics, metrics_collect, &srv);
	if ((srv.ctl = control_open(srv.loop, srv.qmgr, srv.cfg->conf.spool_dir, err,
	    sizeof(err))) == NULL)
		log_warn("event=control-socket-unavailable reason=\"%s\" effect=\"imsd flush and "
		    "imsd delete cannot reach this server\"", err);
	for (int i = 1; i < srv.nworkers; i++)
		if (pthread_create(&srv.workers[i].thread, NULL, worker_main, &srv.workers[i]) != 0)
			fatal("event=startup-error reason=\"worker thread: %s\"", strerror(errno));
	if ((srv.pickup = pickup_start(srv.cfg->conf.spool_dir, srv.cfg->conf.hostname,
	    srv.cfg->conf.queue_lifetime, err, sizeof(err))) == NULL)
		fatal("event=startup-error reason=\"%s\"", err);
	log_info("event=started version=%s config=%s hostname=%s workers=%d queued=%d",
	    IMSD_VERSION, srv.cfg->conf.source, srv.cfg->conf.hostname, srv.nworkers, n);
	/* systemd (Type=notify): listeners bound, privileges dropped, queue recovered, every
	 * thread up; `systemctl start` and `apt install` return only now, and fail when imsd
	 * exits before this. No-op without NOTIFY_SOCKET. */
	sd_notify(0, "READY=1\nSTATUS=serving");

	ev_loop_run(srv.loop, worker_tick, worker_reap, &srv.workers[0]);

	/* Worker 0 has seen every session and commit finish (or the deadline pass); the
	 * others stop at their next turn. */
	for (int i = 1; i < srv.nworkers; i++) {
		uint64_t one = 1;
		if (write(srv.workers[i].wakefd, &one, sizeof(one)) < 0) {
			/* cannot overflow */
		}
		pthread_join(srv.workers[i].thread, NULL);
	}
	/* Drain: sessions still open past the deadline are cut; nothing they sent was
	 * acknowledged. */
	for (int i = 0; i < srv.nworkers; i++) {
		struct worker *wk = &srv.workers[i];
		while (wk->conns != NULL) {
			struct conn *c = wk->conns;
			session_disconnected(c->s);
			conn_close(c);
		}
		while (wk->pconns != NULL)
			pconn_free(wk->pconns, wk->pconns->io.fd);
		workq_stop(wk->authq);
		workq_stop(wk->checkq);
		workq_stop(wk->dnsblq);
	}
	pickup_stop(srv.pickup);	/* its session, if any, was just cut */
	commit_stop(srv.committer);
	/* What the last batches committed stays queued; worker 0 last, for the inbox. */
	for (int i = srv.nworkers - 1; i >= 0; i--)
		commit_done_cb(&srv.workers[i].cio, EPOLLIN);
	qmgr_stop(srv.qmgr);
	workq_stop(srv.deliveryq);
	relay_free(srv.relay);
	dns_free(srv.dns);
	qmgr_free(srv.qmgr);
	srv.qmgr = NULL;
	localproc_stop(srv.localproc);
	while (srv.inbox != NULL) {
		struct inbox_item *it = srv.inbox;
		srv.inbox = it->next;
		free(it);
	}
	close(srv.sigfd);
	control_close(srv.ctl);
	metrics_http_close(srv.metrics);
	for (int i = 0; i < srv.nworkers; i++) {
		struct worker *wk = &srv.workers[i];
		worker_reap(wk);
		if (wk->nlisteners > 0)
			close_listeners(wk);
		free(wk->listeners);
		if (wk->spare_fd >= 0)
			close(wk->spare_fd);
		close(wk->cevfd);
		close(wk->wakefd);
		ev_loop_free(wk->loop);
	}
	free(srv.workers);
	free(srv.lsocks);
	clients_free(srv.clients);
	queue_close(&srv.q);
	log_info("event=stopped");
	cfg_unref(srv.cfg);
	pthread_mutex_destroy(&srv.cmu);
	pthread_mutex_destroy(&srv.cfgmu);
	pthread_mutex_destroy(&srv.climu);
	return 0;
}
