/*
 * agent — what every delivery agent is to the queue manager: a job (one message and the
 * recipients that share one route) in, one outcome per recipient out.
 *
 * The agents of this build: maildir (deliver/maildir_agent.c: MAIL_DIR Maildirs, on worker
 * threads) and smtp (deliver/relay.c: the SMTP client on the event loop, MX or relayhost).
 * Which agent and which target a recipient gets is deliver/route.h's decision; the queue
 * manager groups recipients by route, starts jobs within each agent's limits and records
 * what comes back. A new agent (LMTP to a mailbox server, a local delivery process for
 * system users) is a new struct agent and a route that names it.
 *
 * Contract of start(): the agent owns the job until it calls job->done(job) exactly once,
 * later (never from inside start), with job->results[i] filled for every recipient: OK
 * (delivered or handed on), TEMP (retry later) or PERM (bounce), each with an enhanced
 * status and a diagnostic ("smtp; 550 5.1.1 ..." as the peer said it, "x-imsd; ..." for
 * our own). The queue file descriptor is the agent's to close.
 */
#ifndef IMSD_AGENT_H
#define IMSD_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "cfg/cfg.h"
#include "deliver/route.h"

enum dlv_outcome { DLV_TEMP = 0, DLV_OK = 1, DLV_PERM = 2 };

#define DLV_DIAG_MAX	300

struct dlv_result {
	enum dlv_outcome outcome;
	char status[16];	/* "2.0.0", "4.4.1", "5.1.1" */
	char diag[DLV_DIAG_MAX];	/* "smtp; 550 5.1.1 ..." or "x-imsd; connection refused" */
	int peer_dsn;		/* the receiver announced DSN (RFC 3461): it reports success */
};

struct dlv_job {
	/* filled by the caller */
	char qid[32];
	char *sender;			/* "" = null sender */
	int body_8bit;
	int requiretls;			/* RFC 8689: MTA-STS- or DANE-verified TLS only */
	int body_binary;		/* BODY=BINARYMIME: only to a CHUNKING+BINARYMIME peer */
	int smtputf8;			/* an SMTPUTF8 transaction (RFC 6531) */
	int fd;				/* queue file; the agent closes it */
	uint64_t body_off, body_len;
	struct route route;		/* where the recipients go */
	char domain[256];		/* destination domain (lower-case) or route key */
	char **rcpts;			/* delivery addresses */
	size_t *idx;			/* each recipient's index in its message */
	size_t nrcpts;
	/* DSN requests (RFC 3461), passed on when the peer advertises DSN */
	int dsn_ret;			/* enum dsn_ret: RET=, 0 none */
	const char *envid;		/* ENVID= (xtext), "" none */
	unsigned *notify;		/* per recipient NOTIFY bits, 0 none */
	char **dsn_orcpts;		/* per recipient ORCPT ("rfc822;xtext"), NULL none */
	struct cfg *cfg;		/* referenced by the caller for the job's life */
	void (*done)(struct dlv_job *job);
	void *arg;
	/* filled by the agent */
	struct dlv_result *results;	/* nrcpts entries */
	char remote_mta[300];		/* "dns; mx.example.org": who took it (relaying agents) */
};

struct agent {
	const char *name;		/* the log's mailer= */
	int final;			/* an OK is final delivery (DSN "delivered"), not a relay */
	void (*start)(struct agent *a, struct dlv_job *job);
	void *impl;
};

#endif
