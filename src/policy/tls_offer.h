/*
 * tls_offer — the one decision "is STARTTLS offered on this connection, and why".
 *
 * PURE. SPEC.md: STARTTLS is offered when a certificate is loaded, except on loopback
 * connections (local address in 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104), unless
 * tls_loopback = yes. The decision depends on the address the client connected TO.
 * The session (EHLO and STARTTLS), the log and `imsd explain-tls` all call tls_offer, so
 * they can never disagree.
 *
 * This is the INBOUND decision; the key `tls_policy` is the outbound per-domain level
 * (policy/outtls.h).
 */
#ifndef IMSD_TLS_OFFER_H
#define IMSD_TLS_OFFER_H

#include "conf/conf.h"
#include "util/addr.h"

enum tls_why {
	TLS_WHY_OFFERED,		/* certificate loaded, not loopback */
	TLS_WHY_OFFERED_LOOPBACK,	/* loopback, but tls_loopback = yes */
	TLS_WHY_NO_CERT,		/* no certificate configured/loaded */
	TLS_WHY_LOOPBACK,		/* loopback connection, by design */
};

struct tls_decision {
	int offer;
	enum tls_why why;
	const char *reason;	/* a grep-able word for logs: offered, no-certificate, loopback */
};

void tls_offer(const struct conf *c, int cert_loaded, const struct netaddr *local,
    struct tls_decision *d);

/* The 454 reply text (without code) for a refused STARTTLS. */
const char *tls_refusal_text(const struct tls_decision *d);

/* A full sentence explaining d for a connection to addr_text (for explain-tls and logs). */
void tls_explain(const struct tls_decision *d, const char *addr_text, char *buf, size_t len);

#endif
