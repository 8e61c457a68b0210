/*
 * authcheck — the mail-authentication decisions of one session or message, put together
 * from spfcheck, dkimop, dmarcop and the DNS lists. Blocking (DNS): worker threads, and the
 * command-line explainers.
 *
 *  - authcheck_dnsbl: the client's address against every dnsbl and dnswl zone at once;
 *    listed when the blocklist weights minus the allow-list weights reach dnsbl_threshold.
 *    A list that does not answer counts as not listing (a dead list must not stop mail).
 *  - authcheck_spf_mail: SPF of MAIL FROM at MAIL time (spf_reject = yes needs it there).
 *  - authcheck_inbound: SPF (MAIL FROM and HELO, unless given), DKIM of every signature,
 *    DMARC, the Authentication-Results field, and the verdict: a DMARC p=reject failure
 *    gets 550 5.7.1 when dmarc_reject is on; an answer the policy needs but DNS could not
 *    give now gets 451 4.7.1; everything else is accepted with the field.
 */
#ifndef IMSD_AUTHCHECK_H
#define IMSD_AUTHCHECK_H

#include <stdint.h>

#include "mailauth/dkimop.h"
#include "mailauth/dmarcop.h"
#include "mailauth/spfcheck.h"
#include "proto/msghdr.h"
#include "conf/conf.h"

#define AUTH_DNS_BUDGET_MS	20000	/* one message's SPF + DKIM keys + DMARC lookups */
#define DNSBL_BUDGET_MS		8000	/* all lists, in parallel */

enum auth_action { AUTH_ACCEPT, AUTH_REJECT, AUTH_TEMPFAIL };

struct dnsbl_result {
	int listed;
	int score;
	char reply[400];	/* "554 5.7.1 ..." when listed */
	char log[400];		/* "dnsbl=zen.example(127.0.0.2) dnswl=..." */
};

void authcheck_dnsbl(const struct conf *c, const struct netaddr *client,
    struct dnsbl_result *r);

/* SPF at MAIL: fills v; returns AUTH_REJECT (reply: 550 5.7.23) for fail when spf_reject,
 * else AUTH_ACCEPT. */
enum auth_action authcheck_spf_mail(const struct conf *c, const struct netaddr *client,
    const char *helo, const char *sender, struct spf_verdict *v, char *reply, size_t rl);

struct authcheck_in {
	const struct conf *conf;
	struct netaddr client;
	const char *helo;
	const char *sender;		/* "" for <> */
	int fd;				/* the message: [off, off+len) */
	uint64_t off, len;
	const struct spf_verdict *spf_mfrom;	/* made at MAIL time, or NULL */
	unsigned random_pct;		/* 0..99, for DMARC pct= */
};

struct authcheck_out {
	enum auth_action action;
	char *ar;			/* the Authentication-Results field (malloc'd, CRLF) */
	char reply[512];		/* for REJECT and TEMPFAIL */
	char log[700];			/* "spf=pass dkim=pass:example.com dmarc=pass" */
	/* the details, for explain-auth */
	struct spf_verdict mfrom, helo;
	struct dkim_sigres *sigs;	size_t nsigs;
	struct dmarc_verdict dmarc;
	int have_dmarc;
	char from_note[200];		/* why DMARC was not evaluated, when it was not */
};

void authcheck_inbound(const struct authcheck_in *in, struct authcheck_out *out);
void authcheck_out_free(struct authcheck_out *out);

/* The domains a message from this sender should be signed for: the From: domain, then the
 * envelope sender's, each only when a key signs it. Reads the header section at fd. */
size_t authcheck_sign_domains(const struct dkim_keys *keys, int fd, uint64_t off,
    uint64_t len, const char *sender, char (*dom)[256]);

/* The From: mailboxes of the message at fd (at most MHDR_DOMAINS_MAX), for the
 * sender_login_maps check. 0 ok; -1 no From: field, more than one, or not an address list. */
int authcheck_from_addrs(int fd, uint64_t off, uint64_t len, char (*addr)[MHDR_ADDR_MAX],
    size_t *n);

#endif
