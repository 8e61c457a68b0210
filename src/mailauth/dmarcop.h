/*
 * dmarcop — DMARC (RFC 7489) for one message.
 *
 * The record is looked up at _dmarc.<From domain>, else at _dmarc.<organizational domain>
 * (RFC 7489 §6.6.3; the organizational domain from the Public Suffix List through libpsl)
 * and parsed by libopendmarc. The verdict is RFC 7489 §6.6.2: pass when a DKIM signature
 * that verified, or an SPF pass of the MAIL FROM (else HELO) identity, is aligned with the
 * From domain (relaxed: same organizational domain; strict: the same name, per adkim/aspf).
 * A failure applies sp= when the record came from the organizational domain and has one,
 * else p=, sampled by pct=. When no aligned pass exists but an aligned identity could not
 * be checked for now (DNS), the result is temperror: the caller decides whether its
 * policy needs the answer.
 */
#ifndef IMSD_DMARCOP_H
#define IMSD_DMARCOP_H

#include "mailauth/dkimop.h"
#include "mailauth/dnsq.h"
#include "mailauth/spfcheck.h"

enum dmarc_res { DMR_NONE, DMR_PASS, DMR_FAIL, DMR_TEMPERROR, DMR_PERMERROR };
enum dmarc_pol { DMP_NONE, DMP_QUARANTINE, DMP_REJECT };

struct dmarc_verdict {
	enum dmarc_res result;
	enum dmarc_pol policy;		/* what the domain asks for this failure (after pct) */
	enum dmarc_pol published;	/* p= (or sp=) as published, before pct */
	char from_domain[256];
	char record_domain[256];	/* where the record was found */
	char why[400];
};

const char *dmarc_res_name(enum dmarc_res r);
const char *dmarc_pol_name(enum dmarc_pol p);

/* The organizational domain of d (lower-case) into out; d itself when d is a public suffix
 * or unknown to the list. */
void dmarc_org_domain(const char *d, char *out, size_t outlen);

/* Aligned? strict: equal names; relaxed: the same organizational domain. */
int dmarc_aligned(const char *a, const char *b, int strict);

/* spf: the MAIL FROM verdict (its domain is the identity's); helo_spf for a null sender. */
void dmarc_check(struct dnsq *q, const char *from_domain, const struct spf_verdict *spf,
    const struct dkim_sigres *sigs, size_t nsigs, unsigned random_pct,
    struct dmarc_verdict *v);

#endif
