/*
 * dmarcop — DMARC. See dmarcop.h.
 */
#include "mailauth/dmarcop.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <libpsl.h>
#include <opendmarc/dmarc.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const psl_ctx_t *psl;

static void
init_once(void)
{
	OPENDMARC_LIB_T l;

	/* the Public Suffix List as Debian ships it (publicsuffix), else libpsl's built-in */
	psl = psl_latest(NULL);
	if (psl == NULL)
		psl = psl_builtin();
	memset(&l, 0, sizeof(l));
	l.tld_type = OPENDMARC_TLD_TYPE_NONE;	/* we use libpsl: see dmarc_org_domain */
	opendmarc_policy_library_init(&l);
}

const char *
dmarc_res_name(enum dmarc_res r)
{
	static const char *n[] = { "none", "pass", "fail", "temperror", "permerror" };
	return (unsigned)r < 5 ? n[r] : "none";
}

const char *
dmarc_pol_name(enum dmarc_pol p)
{
	static const char *n[] = { "none", "quarantine", "reject" };
	return (unsigned)p < 3 ? n[p] : "none";
}

/* libopendmarc's own opendmarc_get_tld leaves its output untouched for a name under a
 * suffix its list lacks (any .test name, for one), so the organizational domain comes
 * from libpsl, whose default rule "*" covers that case as RFC 7489 3.2 asks. */
void
dmarc_org_domain(const char *d, char *out, size_t outlen)
{
	const char *r;

	pthread_once(&once, init_once);
	r = psl ? psl_registrable_domain(psl, d) : NULL;
	snprintf(out, outlen, "%s", r ? r : d);
}

int
dmarc_aligned(const char *a, const char *b, int strict)
{
	char oa[256], ob[256];

	if (strcasecmp(a, b) == 0)
		return 1;
	if (strict)
		return 0;
	dmarc_org_domain(a, oa, sizeof(oa));
	dmarc_org_domain(b, ob, sizeof(ob));
	return strcasecmp(oa, ob) == 0;
}

static enum dmarc_pol
pol_of(int c)
{
	return c == DMARC_RECORD_P_REJECT ? DMP_REJECT : c == DMARC_RECORD_P_QUARANTINE ?
	    DMP_QUARANTINE : DMP_NONE;
}

/* Look up the DMARC record of name: 1 found (*rec malloc'd), 0 none, -1 temporary failure
 * (why filled). */
static int
lookup(struct dnsq *q, const char *domain, char **rec, char *why, size_t wl)
{
	struct dnsq_answer a;
	char name[300];
	int r = 0;

	*rec = NULL;
	snprintf(name, sizeof(name), "_dmarc.%s", domain);
	switch (dnsq_lookup(q, name, 16, &a)) {
	case DNSQ_OK:
		for (size_t i = 0; i < a.ntxt; i++) {
			const char *t = a.txt[i];
			while (*t == ' ')
				t++;
			if (strncasecmp(t, "v=DMARC1", 8) == 0 && (t[8] == ';' || t[8] == ' ' ||
			    t[8] == '\0')) {
				if (*rec != NULL) {	/* RFC 7489 6.6.3: several records: none */
					free(*rec);
					*rec = NULL;
					break;
				}
				*rec = strdup(t);
			}
		}
		r = *rec != NULL;
		break;
	case DNSQ_NXDOMAIN:
	case DNSQ_NODATA:
		break;
	case DNSQ_TEMPFAIL:
		snprintf(why, wl, "the DMARC record %s could not be looked up: %s", name, a.why);
		r = -1;
		break;
	}
	dnsq_answer_free(&a);
	return r;
}

void
dmarc_check(struct dnsq *q, const char *from_domain, const struct spf_verdict *spf,
    const struct dkim_sigres *sigs, size_t nsigs, unsigned random_pct,
    struct dmarc_verdict *v)
{
	char org[256], *rec = NULL, alg[128];
	DMARC_POLICY_T *pctx;
	int r, p = 0, sp = 0, adkim = 0, aspf = 0, pct = 100, from_org = 0, temp = 0;
	const char *pass_by = NULL;

	pthread_once(&once, init_once);
	memset(v, 0, sizeof(*v));
	snprintf(v->from_domain, sizeof(v->from_domain), "%s", from_domain);
	r = lookup(q, from_domain, &rec, v->why, sizeof(v->why));
	if (r == 0) {
		dmarc_org_domain(from_domain, org, sizeof(org));
		if (strcasecmp(org, from_domain) != 0) {
			r = lookup(q, org, &rec, v->why, sizeof(v->why));
			from_org = 1;
		}
	}
	if (r < 0) {
		v->result = DMR_TEMPERROR;
		return;
	}
	if (r == 0) {
		v->result = DMR_NONE;
		snprintf(v->why, sizeof(v->why), "%s publishes no DMARC record", from_domain);
		return;
	}
	snprintf(v->record_domain, sizeof(v->record_domain), "%s", from_org ? org : from_domain);
	if ((pctx = opendmarc_policy_connect_init((u_char *)"0.0.0.0", 4)) == NULL) {
		free(rec);
		v->result = DMR_TEMPERROR;
		snprintf(v->why, sizeof(v->why), "out of memory");
		return;
	}
	if (opendmarc_policy_parse_dmarc(pctx, (u_char *)v->record_domain, (u_char *)rec) !=
	    DMARC_PARSE_OKAY) {
		v->result = DMR_PERMERROR;
		snprintf(v->why, sizeof(v->why), "the DMARC record of %s does not parse: %.200s",
		    v->record_domain, rec);
		free(rec);
		opendmarc_policy_connect_shutdown(pctx);
		return;
	}
	free(rec);
	opendmarc_policy_fetch_p(pctx, &p);
	opendmarc_policy_fetch_sp(pctx, &sp);
	opendmarc_policy_fetch_adkim(pctx, &adkim);
	opendmarc_policy_fetch_aspf(pctx, &aspf);
	opendmarc_policy_fetch_pct(pctx, &pct);
	opendmarc_policy_connect_shutdown(pctx);
	v->published = pol_of(from_org && sp != DMARC_RECORD_P_UNSPECIFIED ? sp : p);

	/* DKIM: any verified signature aligned with From */
	for (size_t i = 0; i < nsigs && pass_by == NULL; i++) {
		if (!dmarc_aligned(sigs[i].domain, from_domain, adkim == DMARC_RECORD_A_STRICT))
			continue;
		if (sigs[i].result == DKR_PASS) {
			snprintf(alg, sizeof(alg), "DKIM signature of %s (aligned, %s)",
			    sigs[i].domain, adkim == DMARC_RECORD_A_STRICT ? "strict" : "relaxed");
			pass_by = alg;
		} else if (sigs[i].result == DKR_TEMPERROR)
			temp = 1;
	}
	/* SPF: the identity's domain aligned with From */
	if (pass_by == NULL && spf != NULL && spf->domain[0] &&
	    dmarc_aligned(spf->domain, from_domain, aspf == DMARC_RECORD_A_STRICT)) {
		if (spf->result == SPFR_PASS) {
			snprintf(alg, sizeof(alg), "SPF pass of %s (aligned, %s)", spf->domain,
			    aspf == DMARC_RECORD_A_STRICT ? "strict" : "relaxed");
			pass_by = alg;
		} else if (spf->result == SPFR_TEMPERROR)
			temp = 1;
	}
	if (pass_by != NULL) {
		v->result = DMR_PASS;
		v->policy = DMP_NONE;
		snprintf(v->why, sizeof(v->why), "%s", pass_by);
		return;
	}
	if (temp) {
		v->result = DMR_TEMPERROR;
		v->policy = v->published;
		snprintf(v->why, sizeof(v->why), "no aligned identity passed, and an aligned one "
		    "could not be checked now (DNS); the policy of %s is p=%s", v->record_domain,
		    dmarc_pol_name(v->published));
		return;
	}
	v->result = DMR_FAIL;
	v->policy = v->published;
	if (pct >= 0 && pct < 100 && random_pct >= (unsigned)pct && v->policy != DMP_NONE)
		v->policy = v->policy == DMP_REJECT ? DMP_QUARANTINE : DMP_NONE;  /* 6.6.4 */
	snprintf(v->why, sizeof(v->why), "neither a DKIM signature nor SPF aligned with %s "
	    "passed (SPF %s for %s; %zu DKIM signature%s); %s policy p=%s%s",
	    from_domain, spf ? spf_res_name(spf->result) : "none",
	    spf && spf->domain[0] ? spf->domain : "-", nsigs, nsigs == 1 ? "" : "s",
	    v->record_domain, dmarc_pol_name(v->published),
	    v->policy != v->published ? " (not applied to this message: pct)" : "");
}
