/*
 * spfcheck — SPF (RFC 7208) for the MAIL FROM and HELO identities, with libspf2.
 *
 * libspf2 evaluates the record (macros, include/redirect, the limit of 10 DNS mechanisms);
 * its DNS comes from our layer over dnsq (so: our servers, our deadline, no libresolv),
 * which also enforces what libspf2 lacks: the void lookup limit of RFC 7208 §4.6.4 (more
 * than 2 lookups answering NXDOMAIN or no records is a permerror). The obsolete SPF RR
 * type (99) is never queried. Runs on a worker thread (it blocks in DNS).
 */
#ifndef IMSD_SPFCHECK_H
#define IMSD_SPFCHECK_H

#include "mailauth/dnsq.h"
#include "util/addr.h"

enum spf_res {
	SPFR_NONE, SPFR_NEUTRAL, SPFR_PASS, SPFR_FAIL, SPFR_SOFTFAIL, SPFR_TEMPERROR,
	SPFR_PERMERROR,
};

#define SPF_VOID_LOOKUPS_MAX	2

struct spf_verdict {
	enum spf_res result;
	char domain[256];	/* the domain whose record was evaluated */
	char identity[320];	/* the checked identity ("user@domain", or the HELO name) */
	char why[400];		/* which record/mechanism, or what went wrong */
};

const char *spf_res_name(enum spf_res r);	/* "pass", "fail", ... (RFC 8601 names) */

/*
 * Check one identity: the MAIL FROM address (sender "" → postmaster@helo, RFC 7208 §2.4)
 * when helo_only is 0, or the HELO name alone when 1. hostname: ours (the receiving
 * domain for macros). Fills v; never fails (errors become temperror/permerror).
 */
void spf_check(struct dnsq *q, const struct netaddr *ip, const char *helo, const char *sender,
    int helo_only, const char *hostname, struct spf_verdict *v);

#endif
