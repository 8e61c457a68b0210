/*
 * dvauth — SMTP AUTH checked by Dovecot (auth_backend = dovecot:unix:PATH): the client of
 * Dovecot's auth-client socket, run from the worker threads that check AUTH passwords, the
 * way Postfix's `smtpd_sasl_type = dovecot` and Exim's dovecot authenticator use it.
 *
 * The protocol is proto/dovecot_auth. Each check takes an idle connection from a small pool
 * (or opens one and does the handshake), sends one AUTH request and reads its answer;
 * connections are kept for the next check, at most DVAUTH_IDLE_MAX of them. A connection
 * that was idle and turns out dead (Dovecot restarted) is replaced once, before anything was
 * answered. Every read and write is bounded by DVAUTH_TIMEOUT for the whole exchange.
 *
 * Mechanisms: imsd's session decodes PLAIN and LOGIN itself and hands over user and
 * password; dvauth sends them to Dovecot in the same mechanism when Dovecot lists it, else
 * in the other one (both carry the same two strings). Which of the two Dovecot lists is
 * remembered from each handshake (dvauth_mechs), for the EHLO reply.
 *
 * Blocking; thread-safe (one struct dvauth is shared by all the worker threads of a
 * configuration). Low layer: nothing is logged; failures are said in why.
 */
#ifndef IMSD_DVAUTH_H
#define IMSD_DVAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"

#define DVAUTH_TIMEOUT	20	/* seconds for one check, handshake included */
#define DVAUTH_IDLE_MAX	16	/* idle connections kept */
#define DVAUTH_PATH_MAX	108	/* sizeof(sun_path) */

struct dvauth;

/* A client of the socket at path (no I/O yet). NULL when out of memory or the path does not
 * fit a unix socket address. */
struct dvauth *dvauth_new(const char *path);
/* Close the idle connections and free. No check may be running. */
void dvauth_free(struct dvauth *d);
const char *dvauth_path(const struct dvauth *d);

/*
 * What the last handshake listed, as a mask of (1u << SASL_PLAIN) and (1u << SASL_LOGIN)
 * (proto/sasl.h); *known is 0 (and the mask 0) before any handshake succeeded. A mask of 0
 * with *known set means Dovecot offers neither: AUTH cannot be carried.
 */
unsigned dvauth_mechs(const struct dvauth *d, int *known);

enum dvauth_result {
	DVAUTH_OK,	/* good credentials */
	DVAUTH_FAIL,	/* bad credentials (or a disabled account) */
	DVAUTH_TEMP,	/* Dovecot could not say: unreachable, broken answer, its own temp */
};

struct dvauth_req {
	int mech;			/* enum sasl_mech the client used */
	const char *user, *pass;
	const char *session;		/* the SMTP session id, for Dovecot's log */
	const struct netaddr *local, *remote;	/* NULL: not sent */
	uint16_t lport, rport;
	int secured;			/* TLS, or a loopback connection */
};

/*
 * Ask Dovecot whether user and pass are good. DVAUTH_OK with canon set to the name Dovecot
 * gives the account (its user=, else the login name); otherwise why says what happened
 * (Dovecot's reason, or which step of the exchange failed). canon and why are always
 * NUL-terminated.
 */
enum dvauth_result dvauth_verify(struct dvauth *d, const struct dvauth_req *req, char *canon,
    size_t canoncap, char *why, size_t whylen);

/* Connect and handshake only (refreshes dvauth_mechs); the connection joins the pool.
 * 0, or -1 with why. */
int dvauth_probe(struct dvauth *d, char *why, size_t whylen);

#endif
