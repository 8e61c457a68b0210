/*
 * relay_int — what the two halves of the smtp agent share: relay.c (jobs, targets, the
 * TLS requirement of each, the public face) and rconn.c (a connection: its I/O and TLS, the
 * dialogue on proto/smtpc, the message text, the pool of idle connections). Private to
 * src/deliver/.
 */
#ifndef IMSD_RELAY_INT_H
#define IMSD_RELAY_INT_H

#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deliver/dns.h"
#include "deliver/msgprep.h"
#include "deliver/relay.h"
#include "deliver/sts.h"
#include "policy/outtls.h"
#include "cfg/cfg.h"
#include "proto/smtp_body.h"
#include "proto/smtp_reply.h"
#include "proto/smtpc.h"
#include "tls/tls.h"
#include "util/log.h"
#include "util/str.h"
#include "util/utf8.h"

#define T_CONNECT	30
#define T_CMD		300	/* the TLS handshake (the dialogue's own are smtpc_timeout's) */
#define IDLE_KEEP	5	/* seconds an idle connection waits for the next message */
#define IDLE_MAX	64
#define TARGETS_MAX	64
#define BODY_CHUNK	65536

/* The connection; while RC_SMTP the dialogue's state is c->sc's (proto/smtpc). */
enum rc_state { RC_CONNECTING, RC_HANDSHAKE, RC_SMTP, RC_IDLE };

struct target {
	char host[256];
	struct netaddr addr;
	uint16_t port;
};

struct rtask;

struct rconn {
	struct ev_io io;
	struct relay *r;
	struct rconn *prev, *next;	/* idle list */
	struct rconn *aprev, *anext;	/* every open connection (r->conns) */
	struct target t;
	enum rc_state st;
	struct tls_conn *tls;
	int tls_up, tls_want, no_tls;
	int tls_verified;		/* 1: the certificate verified for vhost; 2: by DANE;
					 * 3: TLS without authentication (DANE, no usable TLSA) */
	char vhost[256];		/* the MX host name tls_verified holds for: a reuse
					 * for another name on the same address is another
					 * destination (rl_conn_fits) */
	struct smtpc sc;		/* the SMTP dialogue (proto/smtpc) */
	char *out;
	size_t outlen, outoff, outcap;
	time_t deadline, idle_since;
	struct rtask *task;
	int used;			/* has carried a transaction */
	int dead;			/* closed; freed by the reaper */
	struct rconn *grave;
};

struct rtask {
	struct relay *r;
	struct rtask *prev, *next;
	struct dlv_job *job;
	struct dns_query *dq;
	struct target *targets;		/* grown as needed, up to TARGETS_MAX */
	size_t targets_cap;
	size_t ntargets, cur;
	int no_tls_for_cur;		/* retry the current target without STARTTLS */
	int tls_level;			/* enum outtls_level for job->domain */
	const char *tls_source;		/* "tls_policy" or "smtp_tls" */
	struct dns_query *tq;		/* TLSA lookup in flight (dane) */
	char dane_host[256];		/* the host dane_state is about */
	int dane_state;			/* DS_* */
	char dane_why[200];		/* DS_FAIL: why */
	struct tlsa_answer *dane;	/* DS_TLSA: the authenticated records */
	struct sts_query *sq;		/* MTA-STS discovery in flight (mta-sts) */
	struct mtasts_policy *sts;	/* the domain's policy, mode testing or enforce */
	struct rconn *c;
	/* transaction */
	struct smtpc_tx tx;		/* what the dialogue sends (smtpc_mail) */
	struct smtpc_rcpt *srcpts;	/* its recipients: send[k] of the job is srcpts[k] */
	uint64_t body_sent;
	struct smtp_body_enc enc;	/* the body's CRLF lines and dots (proto/smtp_body) */
	char err[300];			/* the last connection-level error, for temp results */
	int err_perm;
	/* REQUIRETLS (RFC 8689 4.2.1): a host met could not take the message over verified
	 * TLS ("5.7.10") or did not offer REQUIRETLS ("5.7.30"); when every host failed that
	 * way the message is returned at once with this status, never deferred */
	char rtls_status[8];
	int other_failed;		/* a host failed otherwise (connection, DNS): defer */
	int policy_failing;		/* rl_rc_fail is called by tls_policy_fail */
	/* what is sent: the queue file, or its 7-bit conversion for a peer without 8BITMIME */
	int src_fd;
	uint64_t src_off, src_len;
	int converted;			/* src_fd is our memfd */
	/* the recipients this transaction sends RCPT for (job indexes): all but those a peer
	 * without SMTPUTF8 cannot take (RFC 6531 §3.2) */
	size_t *send;
	size_t nsend;
	unsigned char *utf8_refused;	/* per job index: bounced 5.6.7 by that rule */
};

struct relay {
	struct agent agent;		/* the relay as the smtp delivery agent */
	struct ev_loop *loop;
	struct dns *dns;
	struct tls_ctx *client_tls;
	struct sts *sts;		/* MTA-STS discovery on this loop */
	struct rconn *idle;
	unsigned nidle;
	struct rconn *conns;		/* every open connection, busy, idle or quitting */
	struct rtask *tasks;
	unsigned ntasks;
	struct rtask *finished;		/* done() to call from the loop */
	struct rconn *graveyard;	/* closed connections to free */
	int efd;
	struct ev_io eio;
};

/* What DANE found for the current host (RFC 7672 §2.2). */
enum { DS_UNKNOWN, DS_NONE, DS_TLSA, DS_FAIL, DS_ENCRYPT };

/* relay.c */
void rl_task_done(struct rtask *t);
void rl_task_fail_rest(struct rtask *t, enum dlv_outcome oc, const char *status, const char *diag);
void rl_task_next_target(struct rtask *t);
int rl_task_tls_required(const struct rtask *t);

/* rconn.c */
extern const struct smtpc_ops rl_sc_ops;	/* the dialogue's commands and replies, logged */
void rl_rc_close(struct rconn *c);
void rl_rc_flush(struct rconn *c);
void rl_rc_io(struct ev_io *io, uint32_t events);
void rl_task_begin_tx(struct rtask *t);
void rl_rc_fail(struct rconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
