/*
 * imsd doctor: the certificate as senders see it. The judgement is a TLS handshake inside
 * this process, over a socket pair, between the server's own context (the one cfg_load
 * built, as `imsd run` does) and the relay's client contexts: verifying (the system CA store
 * or smtp_tls_ca_file, as smtp_tls = verify and MTA-STS enforce use it) and DANE (the TLSA
 * records the DNS gives). What tls_conn_verified and tls_conn_dane_verified say is what a
 * sender built like imsd's relay concludes. See doctor.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/doctor.h"
#include "policy/tls_offer.h"
#include "tls/tls.h"
#include "tls/tls_inspect.h"
#include "util/str.h"

#define HANDSHAKE_MS	10000

struct hs {
	int fds[2];
	struct tls_conn *srv, *cli;
};

static void
hs_close(struct hs *h)
{
	if (h->srv != NULL)
		tls_conn_free(h->srv);
	if (h->cli != NULL)
		tls_conn_free(h->cli);
	if (h->fds[0] >= 0)
		close(h->fds[0]);
	if (h->fds[1] >= 0)
		close(h->fds[1]);
	memset(h, 0, sizeof(*h));
	h->fds[0] = h->fds[1] = -1;
}

/* A connected pair: the server's end on server, the client's on client with SNI sni. */
static int
hs_open(struct hs *h, struct tls_ctx *server, struct tls_ctx *client, const char *sni,
    char *why, size_t wl)
{
	memset(h, 0, sizeof(*h));
	h->fds[0] = h->fds[1] = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, h->fds) < 0) {
		snprintf(why, wl, "socketpair: %s", strerror(errno));
		return -1;
	}
	if ((h->srv = tls_conn_new(server, h->fds[0], 1, NULL)) == NULL ||
	    (h->cli = tls_conn_new(client, h->fds[1], 0, sni)) == NULL) {
		snprintf(why, wl, "out of memory");
		hs_close(h);
		return -1;
	}
	return 0;
}

/* Drive both ends until both are done. 0, or -1 with the failing side's error. */
static int
hs_run(struct hs *h, char *why, size_t wl)
{
	struct timespec t0, t;
	int sdone = 0, cdone = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!sdone || !cdone) {
		struct pollfd p[2] = { { .fd = h->fds[0], .events = POLLIN },
		    { .fd = h->fds[1], .events = POLLIN } };
		int r;

		if (!cdone) {
			r = tls_handshake(h->cli);
			if (r == TLS_OK)
				cdone = 1;
			else if (r != TLS_WANT_READ && r != TLS_WANT_WRITE) {
				snprintf(why, wl, "the handshake failed on the sender's side: %s",
				    tls_conn_error(h->cli));
				return -1;
			}
		}
		if (!sdone) {
			r = tls_handshake(h->srv);
			if (r == TLS_OK)
				sdone = 1;
			else if (r != TLS_WANT_READ && r != TLS_WANT_WRITE) {
				snprintf(why, wl, "the handshake failed on the server's side: %s",
				    tls_conn_error(h->srv));
				return -1;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >
		    HANDSHAKE_MS) {
			snprintf(why, wl, "the handshake did not finish within %d ms", HANDSHAKE_MS);
			return -1;
		}
		if (!sdone || !cdone)
			(void)poll(p, 2, 50);
	}
	return 0;
}

/* A verifying sender's view of the certificate for host (NULL: the chain only, no name).
 * 1 verified; 0 not (why); -1 the handshake itself failed (why). version/cipher: what
 * was negotiated. */
static int
verify_as_sender(struct doctor *d, struct tls_ctx *vctx, const char *host, char *why,
    size_t wl, char *version, size_t vl)
{
	struct hs h;
	int r;

	if (hs_open(&h, d->c->tls, vctx, host ? host : d->c->conf.hostname, why, wl) < 0)
		return -1;
	if (host != NULL && tls_conn_expect_host(h.cli, host) < 0) {
		snprintf(why, wl, "cannot check the name %s", host);
		hs_close(&h);
		return -1;
	}
	if (hs_run(&h, why, wl) < 0) {
		hs_close(&h);
		return -1;
	}
	if (version != NULL)
		snprintf(version, vl, "%s with %s", tls_conn_version(h.cli), tls_conn_cipher(h.cli));
	r = tls_conn_verified(h.cli, why, wl) == 0;
	hs_close(&h);
	return r;
}

const char *
doc_tlsa_311(const struct doctor *d, char *buf, size_t len)
{
	char hex[200];

	buf[0] = '\0';
	if (d->c->tls != NULL && tls_ctx_tlsa(d->c->tls, 1, 1, hex, sizeof(hex)) == 0)
		snprintf(buf, len, "3 1 1 %s", hex);
	return buf;
}

/* STARTTLS on each public address the SMTP and submission listeners take: tls_offer. */
static void
check_offer(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;
	const struct hostport *lists[2] = { cf->listen, cf->submission_listen };
	size_t ns[2] = { cf->nlisten, cf->nsubmission_listen };

	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < ns[k]; i++) {
			const struct hostport *hp = &lists[k][i];
			for (size_t a = 0; a < d->naddrs; a++) {
				struct tls_decision dec;
				char text[600], subject[NETADDR_STRLEN + 8], b[NETADDR_STRLEN];
				const struct netaddr *addr = &d->addrs[a];
				if (!netaddr_equal(&hp->addr, addr) && !(netaddr_is_any(&hp->addr) &&
				    hp->addr.family == addr->family))
					continue;
				tls_offer(cf, d->c->tls != NULL, addr, &dec);
				netaddr_str(addr, b, sizeof(b));
				snprintf(subject, sizeof(subject), "%s%s%s:%u", addr->family == AF_INET6 ?
				    "[" : "", b, addr->family == AF_INET6 ? "]" : "", (unsigned)hp->port);
				tls_explain(&dec, b, text, sizeof(text));
				if (dec.offer)
					doc_add(d, DOC_OK, "tls.starttls", subject, text, NULL, NULL);
				else
					doc_add(d, DOC_FAIL, "tls.starttls", subject, text, "without "
					    "STARTTLS mail to this host travels in plaintext; Gmail marks "
					    "it so, and MTA-STS and DANE are impossible", "set tls_cert_file "
					    "and tls_key_file (see tls.certificate)");
			}
		}
}

/* TLSA records for each MX of this host, judged by the DANE handshake. */
static void
check_dane(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;
	char rec311[200];

	doc_tlsa_311(d, rec311, sizeof(rec311));
	for (size_t m = 0; m < d->nmx && !d->dns_dead; m++) {
		struct doc_route *r = calloc(1, sizeof(*r));
		char name[300], found[1200], fix[800], why[400], line[500];
		size_t usable = 0;

		if (r == NULL)
			return;
		snprintf(name, sizeof(name), "_25._tcp.%s", d->mx[m]);
		doc_rr(name, "TLSA", rec311, 0, line, sizeof(line));
		snprintf(fix, sizeof(fix), "publish %s (and the next certificate's record before "
		    "it is deployed: certbot --reuse-key keeps the key, and this record, the same)",
		    line);
		doc_resolve(d, DOC_LOOKUP_TLSA, name, r);
		if (r->status == DNS_TEMPFAIL) {
			snprintf(found, sizeof(found), "the TLSA lookup fails: %s", r->why);
			doc_add(d, DOC_FAIL, "tls.dane", d->mx[m], found, "a DANE sender (Postfix, "
			    "Exim, Microsoft 365 with DANE) defers all mail to an MX whose TLSA lookup "
			    "fails: it may be an attacker hiding the records", "repair the zone's "
			    "DNSSEC (a broken signature gives SERVFAIL)");
			free(r);
			continue;
		}
		if (!r->have_tlsa || r->tlsa.n == 0) {
			if (r->have_tlsa && r->tlsa.ad)
				doc_add(d, DOC_WARN, "tls.dane", d->mx[m], "the zone is signed (the "
				    "resolver says the answer is authenticated) but has no TLSA record",
				    "with a TLSA record DANE senders require verified TLS to this host",
				    fix);
			else
				doc_add(d, DOC_OK, "tls.dane", d->mx[m], "no TLSA records, and no DNSSEC "
				    "seen: DANE does not apply (it needs a signed zone)", NULL, NULL);
			free(r);
			continue;
		}
		{
			struct hs h;
			int ok = 0;
			if (d->c->client_dane == NULL) {
				char err[300];
				d->c->client_dane = tls_client_dane_ctx_new(err, sizeof(err));
			}
			if (d->c->client_dane != NULL && hs_open(&h, d->c->tls, d->c->client_dane,
			    d->mx[m], why, sizeof(why)) == 0) {
				if (tls_conn_dane_begin(h.cli, d->mx[m]) == 0) {
					for (size_t i = 0; i < r->tlsa.n; i++)
						if (tlsa_usable(&r->tlsa.rr[i]) &&
						    tls_conn_dane_add(h.cli, r->tlsa.rr[i].usage,
						    r->tlsa.rr[i].selector, r->tlsa.rr[i].mtype,
						    r->tlsa.rr[i].data, r->tlsa.rr[i].len) == 1)
							usable++;
					if (hs_run(&h, why, sizeof(why)) == 0)
						ok = usable > 0 && tls_conn_dane_verified(h.cli, why,
						    sizeof(why)) == 0;
				}
				hs_close(&h);
			}
			if (usable == 0)
				snprintf(why, sizeof(why), "none of the %zu TLSA records is usable "
				    "(DANE-TA or DANE-EE, SHA-256 or SHA-512)", r->tlsa.n);
			if (ok) {
				snprintf(found, sizeof(found), "%zu TLSA record%s, and the certificate "
				    "matches%s", r->tlsa.n, r->tlsa.n == 1 ? "" : "s", r->tlsa.ad ?
				    " (the answer is DNSSEC-authenticated)" : "; the answer is not "
				    "DNSSEC-authenticated (no AD bit), so DANE senders do not use it yet");
				doc_add(d, DOC_OK, "tls.dane", d->mx[m], found, NULL, NULL);
			} else {
				snprintf(found, sizeof(found), "%zu TLSA record%s, and the certificate "
				    "does not match: %s%s", r->tlsa.n, r->tlsa.n == 1 ? "" : "s", why,
				    r->tlsa.ad ? "" : " (the answer has no AD bit: DANE senders ignore it "
				    "until the zone is signed)");
				doc_add(d, r->tlsa.ad ? DOC_FAIL : DOC_WARN, "tls.dane", d->mx[m], found,
				    "DANE senders defer every message to an MX whose certificate matches "
				    "none of its TLSA records", fix);
			}
		}
		free(r);
	}
	(void)cf;
}

void
doc_check_tls(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;
	char names[1000], issuer[400], key[80], subj[400], na[64], found[1600], why[400];
	char fix[1200], ver[160], err[400], store[600];
	struct tls_ctx *vctx;
	time_t expires;
	long days;
	int self, nchain, r;
	enum doc_status st;

	if (d->c->tls == NULL) {
		if (cf->tls_cert_file != NULL && cf->embedded)
			doc_add(d, DOC_WARN, "tls.certificate", cf->tls_cert_file, "not made yet: "
			    "the embedded default makes a self-signed certificate at first start",
			    "a self-signed certificate is enough for opportunistic TLS only",
			    "configure a certificate from a public CA (tls_cert_file, tls_key_file)");
		else
			doc_add(d, DOC_FAIL, "tls.certificate", cf->source, "no certificate "
			    "(tls_cert_file and tls_key_file are not set): STARTTLS is not offered",
			    "mail to this host then travels in plaintext, Gmail flags it, and "
			    "MTA-STS and DANE are impossible", "certbot certonly --standalone -d "
			    "HOSTNAME, then tls_cert_file = /etc/letsencrypt/live/HOSTNAME/fullchain.pem "
			    "and tls_key_file = /etc/letsencrypt/live/HOSTNAME/privkey.pem (readable by "
			    "the run user)");
		check_offer(d);
		return;
	}
	tls_ctx_cert_names(d->c->tls, names, sizeof(names));
	tls_ctx_cert_issuer(d->c->tls, issuer, sizeof(issuer), &self, &nchain);
	tls_ctx_cert_key(d->c->tls, key, sizeof(key));
	tls_ctx_cert_info(d->c->tls, subj, sizeof(subj), na, sizeof(na), &expires);
	snprintf(found, sizeof(found), "%s: names %s; key %s; %s; %d more certificate%s in the "
	    "chain file; the key matches", cf->tls_cert_file, names[0] ? names : "none", key,
	    self ? "self-signed" : issuer, nchain, nchain == 1 ? "" : "s");
	doc_add(d, DOC_OK, "tls.certificate", subj, found, NULL, NULL);

	st = doc_cert_expiry((long long)expires, (long long)time(NULL), &days);
	if (st == DOC_FAIL)
		snprintf(found, sizeof(found), "expired %s (%ld day%s ago)", na, -days,
		    days == -1 ? "" : "s");
	else
		snprintf(found, sizeof(found), "expires %s, in %ld day%s", na, days,
		    days == 1 ? "" : "s");
	snprintf(fix, sizeof(fix), "renew it (certbot renew), then reload: systemctl reload imsd "
	    "(or kill -HUP the server): imsd reads %s again on SIGHUP", cf->tls_cert_file);
	doc_add(d, st, "tls.expiry", cf->tls_cert_file, found, st == DOC_FAIL ? "senders that "
	    "verify (MTA-STS enforce, DANE-TA, smtp_tls = verify) refuse an expired certificate; "
	    "the rest see an error in their logs" : "renewal has fewer than 21 days left, and a "
	    "failed renewal leaves the host with an expired certificate", fix);

	/* the chain, as a verifying sender checks it */
	snprintf(store, sizeof(store), "%s", cf->smtp_tls_ca_file ? cf->smtp_tls_ca_file :
	    "the system CA store");
	if ((vctx = tls_client_verify_ctx_new(cf->smtp_tls_ca_file, err, sizeof(err))) == NULL) {
		doc_add(d, DOC_WARN, "tls.chain", cf->tls_cert_file, err, "the chain cannot be "
		    "checked", "install ca-certificates");
	} else {
		r = verify_as_sender(d, vctx, NULL, why, sizeof(why), ver, sizeof(ver));
		if (r == 1) {
			snprintf(found, sizeof(found), "verifies against %s (a sender's TLS 1.2+ "
			    "handshake: %s)", store, ver);
			doc_add(d, DOC_OK, "tls.chain", cf->tls_cert_file, found, NULL, NULL);
		} else if (r == 0) {
			snprintf(found, sizeof(found), "does not verify against %s: %s", store, why);
			doc_add(d, strstr(why, "expired") != NULL ? DOC_FAIL : DOC_WARN, "tls.chain",
			    cf->tls_cert_file, found, "opportunistic senders (most) still use TLS, "
			    "but senders that verify (MTA-STS enforce, smtp_tls = verify) refuse it",
			    self ? "a certificate from a public CA: certbot certonly --standalone -d "
			    "HOSTNAME" : "give the whole chain: tls_cert_file = fullchain.pem (the "
			    "certificate and its intermediates), not cert.pem");
		} else {
			snprintf(found, sizeof(found), "no TLS handshake with the server's own "
			    "context: %s", why);
			doc_add(d, DOC_FAIL, "tls.chain", cf->tls_cert_file, found, "senders cannot "
			    "use TLS with this server", "see imsd check; replace the certificate");
		}
		/* the names: the host name and every MX name pointing here */
		{
			char missing[800] = "", fix2[1200];
			size_t mo = 0;
			int host_ok = tls_ctx_cert_covers(d->c->tls, cf->hostname) == 1;
			if (!host_ok)
				mo += (size_t)snprintf(missing, sizeof(missing), "%s", cf->hostname);
			for (size_t m = 0; m < d->nmx; m++) {
				int cov = tls_ctx_cert_covers(d->c->tls, d->mx[m]) == 1;
				d->mx_tls_ok[m] = cov && verify_as_sender(d, vctx, d->mx[m],
				    d->mx_tls_why[m], sizeof(d->mx_tls_why[m]), NULL, 0) == 1;
				if (!cov) {
					snprintf(d->mx_tls_why[m], sizeof(d->mx_tls_why[m]), "the "
					    "certificate does not name it");
					if (strcasecmp(d->mx[m], cf->hostname) != 0)
						mo += (size_t)snprintf(missing + mo, sizeof(missing) > mo ?
						    sizeof(missing) - mo : 0, "%s%s", mo ? ", " : "", d->mx[m]);
				}
			}
			if (mo == 0) {
				snprintf(found, sizeof(found), "covers %s%s%s", cf->hostname,
				    d->nmx ? " and every MX name of this host" : "", d->nmx ? "" :
				    " (no MX of a local domain points here)");
				doc_add(d, DOC_OK, "tls.names", names, found, NULL, NULL);
			} else {
				snprintf(found, sizeof(found), "the certificate does not name %s",
				    missing);
				{
					size_t fo = (size_t)snprintf(fix2, sizeof(fix2), "a certificate "
					    "naming them all: certbot certonly --standalone -d %s",
					    cf->hostname);
					for (size_t m = 0; m < d->nmx; m++)
						if (strcasecmp(d->mx[m], cf->hostname) != 0 &&
						    fo < sizeof(fix2))
							fo += (size_t)snprintf(fix2 + fo, sizeof(fix2) - fo,
							    " -d %s", d->mx[m]);
				}
				doc_add(d, DOC_WARN, "tls.names", names, found, "senders that verify "
				    "(MTA-STS enforce, DANE-TA, smtp_tls = verify) check the MX name in "
				    "the certificate and refuse a mismatch", fix2);
			}
		}
		tls_ctx_unref(vctx);
	}
	if (tls_ctx_protocols(d->c->tls, found, sizeof(found)) == 0)
		doc_add(d, DOC_OK, "tls.protocols", cf->tls_cert_file, found, NULL, NULL);
	check_offer(d);
	check_dane(d);
}
