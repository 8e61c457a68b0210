/*
 * server_int — what the parts of `imsd run` share: the server, its workers, their
 * connections, and the functions the parts call each other with (srv_*). Private to
 * src/server/ (server.h is the contract).
 *
 *   server.c   server_run: the wiring, start to stop
 *   worker.c   the worker loops: tick, signals, reload, stop
 *   listen.c   the listening sockets, shared by the workers
 *   accept.c   accepting: the spare descriptor, PROXY headers from proxy_networks
 *   conn.c     a connection: its session's callbacks, I/O and TLS, memory, limits, the
 *              group commit's answers
 *   checks.c   mail authentication around the session: DNS lists at connect, SPF at MAIL,
 *              DKIM/DMARC checks and signing at the end of the message
 *   authq.c    SMTP AUTH checks on threads (auth_users_file or Dovecot)
 */
#ifndef IMSD_SERVER_INT_H
#define IMSD_SERVER_INT_H

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
#include "policy/admit.h"
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
#include "server/pickup.h"
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
	uint64_t spool_admitted;	/* bytes written into the spool since then */
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

#define CHECK_THREADS		8	/* per loop: the checks mostly wait on DNS */
#define DNSBL_THREADS		2	/* per loop, apart: connects never queue behind DATA checks */

/* A balancer connection waiting for its PROXY header (accept.c). */
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

/* conn.c */
void srv_cb_log(void *arg, int level, const char *line);
void srv_cb_output(void *arg, const char *buf, size_t len);
int srv_cb_output_full(void *arg);
void srv_cb_pause(void *arg, unsigned seconds);
int srv_cb_space_ok(void *arg, uint64_t size);
void srv_cb_starttls(void *arg);
void srv_cb_tx_abort(void *arg);
int srv_cb_tx_open(void *arg, struct session_tx *tx);
int srv_cb_tx_write(void *arg, const char *buf, size_t len);
struct cfg *srv_cfg_current(struct server *srv);
int srv_cl_auth_begin(struct server *srv, const struct netaddr *a);
void srv_cl_auth_refund(struct server *srv, const struct netaddr *a);
void srv_commit_done_cb(struct ev_io *io, uint32_t events);
void srv_commit_now(struct conn *c);
void srv_conn_close(struct conn *c);
void srv_conn_kick(struct conn *c);
void srv_conn_process(struct conn *c);
void srv_conn_start(struct worker *wk, int fd, enum session_listener kind, const struct session_peer *peer, const char *via, struct cfg *cfg);
int srv_worker_drained(struct worker *wk);
void srv_worker_reap(void *arg);

/* checks.c */
void srv_cb_mail_check(void *arg, const char *sender, int authenticated);
void srv_cb_tx_commit(void *arg, struct session_tx *tx);
int srv_conn_checks(const struct conn *c, const struct session_tx *tx);
int srv_conn_signs(const struct conn *c, const struct session_tx *tx);
void srv_dnsbl_start(struct conn *c);

/* authq.c */
void srv_auth_backend_probe(struct workq *q, struct cfg *cfg);
int srv_auth_threads(const struct server *srv);
void srv_cb_auth_check(void *arg, const char *user, const char *pass);

/* accept.c */
void srv_accept_cb(struct ev_io *io, uint32_t events);
void srv_pconn_free(struct pconn *p, int close_fd);
void srv_pconn_tick(struct worker *wk, time_t now);

/* listen.c */
void srv_close_listeners(struct worker *wk);
int srv_listen_on(struct server *srv, const struct hostport *hp, enum session_listener kind, char *err, size_t errlen);
int srv_lsock_add(struct server *srv, const struct hostport *hp, enum session_listener kind, int fd);
int srv_worker_listen(struct worker *wk);

/* worker.c */
void srv_metrics_collect(void *arg, struct metrics_dynamic *d);
void srv_raise_nofile(const struct conf *cf);
int srv_server_setup_signals(struct server *srv);
void srv_warn_not_in_effect(const struct conf *c);
int srv_worker_count(const struct conf *cf);
int srv_worker_init(struct server *srv, struct worker *wk, int id);
void *srv_worker_main(void *arg);
void srv_worker_tick(void *arg);

#endif
