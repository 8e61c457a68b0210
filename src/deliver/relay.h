/*
 * relay — the outbound SMTP client (RFC 5321), non-blocking, on the event loop.
 *
 * A relay job carries one message and the recipients that share one destination (a
 * domain, or the relayhost). The client resolves the destination (MX in preference order,
 * A/AAAA when there is none; relayhost replaces the MX lookup), connects to each host in
 * turn until one answers, speaks EHLO (HELO as fallback), uses STARTTLS when offered
 * (opportunistic, unverified; falls back to plaintext on a new connection only when the
 * handshake fails; at a level of policy/outtls.h that requires TLS, a host without
 * verified TLS is skipped and the job deferred, never plaintext), PIPELINING, SIZE and
 * 8BITMIME, sends the body dot-stuffed with CRLF line ends only (or, to a peer that
 * offers CHUNKING, in BDAT chunks of at most 64 KiB with the same CRLF lines and no
 * dots; BINARYMIME bodies exactly as stored), and reports one result per recipient:
 * delivered, temporary or permanent
 * failure, with the enhanced status and the server's words. Idle connections are kept a
 * few seconds for the next message to the same host.
 */
#ifndef IMSD_RELAY_H
#define IMSD_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "net/ev.h"
#include "cfg/cfg.h"

struct relay;
struct dns;

enum relay_outcome { RELAY_TEMP = 0, RELAY_OK = 1, RELAY_PERM = 2 };

struct relay_result {
	enum relay_outcome outcome;
	char status[16];	/* "2.0.0", "4.4.1", "5.1.1" */
	char diag[300];		/* "smtp; 550 5.1.1 ..." or "x-imsd; connection refused" */
	int peer_dsn;		/* the server that answered advertised DSN (RFC 3461) */
};

struct relay_job {
	/* filled by the caller */
	char qid[32];
	char *sender;			/* "" = null sender */
	int body_8bit;
	int requiretls;			/* RFC 8689: MTA-STS- or DANE-verified TLS only */
	int body_binary;		/* BODY=BINARYMIME: only to a CHUNKING+BINARYMIME peer */
	int smtputf8;			/* an SMTPUTF8 transaction (RFC 6531) */
	int fd;				/* queue file; the job closes it */
	uint64_t body_off, body_len;
	char domain[256];		/* destination domain (lower-case) */
	char **rcpts;			/* delivery addresses */
	size_t nrcpts;
	/* DSN requests (RFC 3461), passed on when the peer advertises DSN */
	int dsn_ret;			/* enum dsn_ret: RET=, 0 none */
	const char *envid;		/* ENVID= (xtext), "" none */
	unsigned *notify;		/* per recipient NOTIFY bits, 0 none */
	char **dsn_orcpts;		/* per recipient ORCPT ("rfc822;xtext"), NULL none */
	struct cfg *cfg;		/* referenced by the caller for the job's life */
	void (*done)(struct relay_job *job);
	void *arg;
	/* filled by the relay */
	struct relay_result *results;	/* nrcpts entries */
	char remote_mta[300];		/* "dns; mx.example.org ([192.0.2.1]:25)" */
};

struct relay *relay_new(struct ev_loop *loop, struct dns *dns, char *err, size_t errlen);
void relay_free(struct relay *r);
/* Start a job; done() is called exactly once, later (never from inside relay_start). */
void relay_start(struct relay *r, struct relay_job *job);
/* Timeouts and idle-connection expiry; call every second. */
void relay_tick(struct relay *r, time_t now);
/* Jobs in flight. */
unsigned relay_active(const struct relay *r);

#endif
