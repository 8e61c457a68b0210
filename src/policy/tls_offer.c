/*
 * tls_offer — see tls_offer.h.
 */
#include <stdio.h>

#include "policy/tls_offer.h"

/* Decide whether STARTTLS is offered to a client that connected to `local`. */
void
tls_offer(const struct conf *c, int cert_loaded, const struct netaddr *local,
    struct tls_decision *d)
{
	if (!cert_loaded) {
		d->offer = 0;
		d->why = TLS_WHY_NO_CERT;
		d->reason = "no-certificate";
	} else if (netaddr_is_loopback(local)) {
		d->offer = c->tls_loopback;
		d->why = c->tls_loopback ? TLS_WHY_OFFERED_LOOPBACK : TLS_WHY_LOOPBACK;
		d->reason = c->tls_loopback ? "offered-tls-loopback" : "loopback";
	} else {
		d->offer = 1;
		d->why = TLS_WHY_OFFERED;
		d->reason = "offered";
	}
}

const char *
tls_refusal_text(const struct tls_decision *d)
{
	if (d->why == TLS_WHY_LOOPBACK)
		return "4.7.0 TLS not available on loopback connections; connect to a non-loopback "
		    "address of this server";
	return "4.7.0 TLS not available: no certificate configured";
}

void
tls_explain(const struct tls_decision *d, const char *addr, char *buf, size_t len)
{
	switch (d->why) {
	case TLS_WHY_OFFERED:
		snprintf(buf, len, "STARTTLS is offered to clients connecting to %s: a certificate "
		    "is loaded and %s is not a loopback address.", addr, addr);
		break;
	case TLS_WHY_OFFERED_LOOPBACK:
		snprintf(buf, len, "STARTTLS is offered to clients connecting to %s: it is a "
		    "loopback address, and tls_loopback = yes turns STARTTLS on for loopback "
		    "connections too.", addr);
		break;
	case TLS_WHY_LOOPBACK:
		snprintf(buf, len, "STARTTLS is not offered to clients connecting to %s, by design: "
		    "it is a loopback address (127.0.0.0/8 or ::1), and loopback traffic never "
		    "leaves this host, so TLS adds nothing there. The certificate is fine. Connect "
		    "to a non-loopback address of this server, or set tls_loopback = yes.", addr);
		break;
	case TLS_WHY_NO_CERT:
		snprintf(buf, len, "STARTTLS is not offered to clients connecting to %s: no "
		    "certificate is configured (set tls_cert_file and tls_key_file).", addr);
		break;
	}
}
