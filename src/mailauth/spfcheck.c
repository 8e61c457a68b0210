/*
 * spfcheck — SPF with libspf2 over our DNS. See spfcheck.h.
 */
#include "mailauth/spfcheck.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <spf2/spf.h>

#define SPF_TARGETS_MAX 64

struct layer_ctx {
	struct dnsq *q;
	unsigned voids;		/* terms whose lookup found nothing */
	/* names that MX and PTR answers returned: their address lookups belong to the mx/ptr
	 * term that asked, and RFC 7208 4.6.4 counts void lookups per term, not per query */
	char *targets[SPF_TARGETS_MAX];
	size_t ntargets;
	unsigned lookups;
	char temp[200];		/* the first temporary DNS failure */
};

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
quiet(const char *file, int line, const char *msg)
{
	(void)file;
	(void)line;
	(void)msg;
}

static void
init_once(void)
{
	/* libspf2 prints warnings to stderr by default; its verdicts reach us anyway */
	SPF_warning_handler = quiet;
	SPF_info_handler = quiet;
	SPF_debug_handler = quiet;
}

const char *
spf_res_name(enum spf_res r)
{
	static const char *n[] = { "none", "neutral", "pass", "fail", "softfail", "temperror",
		"permerror" };
	return (unsigned)r < sizeof(n) / sizeof(n[0]) ? n[r] : "none";
}

static SPF_dns_rr_t *
layer_lookup(SPF_dns_server_t *srv, const char *domain, ns_type type, int should_cache)
{
	struct layer_ctx *ctx = srv->hook;
	struct dnsq_answer a;
	SPF_dns_rr_t *rr;
	int herr = NETDB_SUCCESS;

	(void)should_cache;
	if (type == ns_t_spf)		/* RFC 7208 §3.1: the SPF RR type is not used */
		return SPF_dns_rr_new_init(srv, domain, type, 0, NO_DATA);
	if (ctx->voids > SPF_VOID_LOOKUPS_MAX)	/* already a permerror: end quickly */
		return SPF_dns_rr_new_init(srv, domain, type, 0, NO_DATA);
	ctx->lookups++;
	switch (dnsq_lookup(ctx->q, domain, type, &a)) {
	case DNSQ_OK:
		break;
	case DNSQ_NXDOMAIN:
		herr = HOST_NOT_FOUND;
		break;
	case DNSQ_NODATA:
		herr = NO_DATA;
		break;
	case DNSQ_TEMPFAIL:
		herr = TRY_AGAIN;
		if (ctx->temp[0] == '\0')
			snprintf(ctx->temp, sizeof(ctx->temp), "%s: %s", domain, a.why);
		break;
	}
	int counts = 1;
	if (type == ns_t_a || type == ns_t_aaaa)
		for (size_t t = 0; t < ctx->ntargets; t++)
			if (strcasecmp(ctx->targets[t], domain) == 0)
				counts = 0;
	if ((herr == HOST_NOT_FOUND || herr == NO_DATA) && counts)
		ctx->voids++;
	if (herr == NETDB_SUCCESS && (type == ns_t_mx || type == ns_t_ptr))
		for (size_t t = 0; t < a.nnames && ctx->ntargets < SPF_TARGETS_MAX; t++)
			if ((ctx->targets[ctx->ntargets] = strdup(a.names[t])) != NULL)
				ctx->ntargets++;
	rr = SPF_dns_rr_new_init(srv, domain, type, 0, herr);
	if (rr == NULL || herr != NETDB_SUCCESS) {
		dnsq_answer_free(&a);
		return rr;
	}
	switch (type) {
	case ns_t_txt:
		for (size_t i = 0; i < a.ntxt; i++) {
			size_t l = strlen(a.txt[i]) + 1;
			if (SPF_dns_rr_buf_realloc(rr, rr->num_rr, l) != SPF_E_SUCCESS)
				break;
			memcpy(rr->rr[rr->num_rr]->txt, a.txt[i], l);
			rr->num_rr++;
		}
		break;
	case ns_t_a:
	case ns_t_aaaa:
		for (size_t i = 0; i < a.naddrs; i++) {
			size_t l = type == ns_t_a ? sizeof(struct in_addr) : sizeof(struct in6_addr);
			if (SPF_dns_rr_buf_realloc(rr, rr->num_rr, l) != SPF_E_SUCCESS)
				break;
			memcpy(type == ns_t_a ? (void *)&rr->rr[rr->num_rr]->a :
			    (void *)&rr->rr[rr->num_rr]->aaaa, a.addrs[i].a, l);
			rr->num_rr++;
		}
		break;
	case ns_t_mx:
	case ns_t_ptr:
		for (size_t i = 0; i < a.nnames; i++) {
			size_t l = strlen(a.names[i]) + 1;
			if (SPF_dns_rr_buf_realloc(rr, rr->num_rr, l) != SPF_E_SUCCESS)
				break;
			memcpy(type == ns_t_mx ? rr->rr[rr->num_rr]->mx : rr->rr[rr->num_rr]->ptr,
			    a.names[i], l);
			rr->num_rr++;
		}
		break;
	default:
		break;
	}
	if (rr->num_rr == 0) {
		rr->herrno = NO_DATA;
		if (counts)
			ctx->voids++;
	}
	dnsq_answer_free(&a);
	return rr;
}

static enum spf_res
map(SPF_result_t r)
{
	switch (r) {
	case SPF_RESULT_PASS:		return SPFR_PASS;
	case SPF_RESULT_FAIL:		return SPFR_FAIL;
	case SPF_RESULT_SOFTFAIL:	return SPFR_SOFTFAIL;
	case SPF_RESULT_NEUTRAL:	return SPFR_NEUTRAL;
	case SPF_RESULT_TEMPERROR:	return SPFR_TEMPERROR;
	case SPF_RESULT_PERMERROR:	return SPFR_PERMERROR;
	case SPF_RESULT_NONE:
	default:			return SPFR_NONE;
	}
}

/* A domain name SPF can look up: letters, digits, '-', '_', dots between labels. */
static int
domain_ok(const char *d)
{
	size_t lab = 0, n = 0;

	if (*d == '\0')
		return 0;
	for (; *d; d++, n++) {
		if (*d == '.') {
			if (lab == 0)
				return 0;
			lab = 0;
		} else if ((*d >= 'a' && *d <= 'z') || (*d >= 'A' && *d <= 'Z') ||
		    (*d >= '0' && *d <= '9') || *d == '-' || *d == '_') {
			if (++lab > 63)
				return 0;
		} else
			return 0;
	}
	return n <= 253 && lab > 0;
}

void
spf_check(struct dnsq *q, const struct netaddr *ip, const char *helo, const char *sender,
    int helo_only, const char *hostname, struct spf_verdict *v)
{
	SPF_dns_server_t layer;
	struct layer_ctx ctx;
	SPF_server_t *srv = NULL;
	SPF_request_t *req = NULL;
	SPF_response_t *resp = NULL;
	const char *at, *dom;
	char idbuf[320];

	pthread_once(&once, init_once);
	memset(v, 0, sizeof(*v));
	memset(&ctx, 0, sizeof(ctx));
	ctx.q = q;
	if (helo_only || sender[0] == '\0') {
		dom = helo;
		snprintf(idbuf, sizeof(idbuf), helo_only ? "%s" : "postmaster@%s", helo);
	} else {
		at = strrchr(sender, '@');
		dom = at ? at + 1 : "";
		snprintf(idbuf, sizeof(idbuf), "%s", sender);
	}
	snprintf(v->identity, sizeof(v->identity), "%s", idbuf);
	snprintf(v->domain, sizeof(v->domain), "%s", dom);
	if (!domain_ok(dom)) {
		/* RFC 7208 §4.3: a malformed domain or a HELO literal gives none */
		v->result = SPFR_NONE;
		snprintf(v->why, sizeof(v->why), "%s is not a domain SPF can be looked up for",
		    dom[0] ? "the identity's domain" : "an empty name");
		return;
	}
	memset(&layer, 0, sizeof(layer));
	layer.lookup = layer_lookup;
	layer.name = "imsd";
	layer.hook = &ctx;
	if ((srv = SPF_server_new_dns(&layer, 0)) == NULL)
		goto oom;
	SPF_server_set_rec_dom(srv, hostname);
	SPF_server_set_explanation(srv, "%{d} does not list %{i} as a permitted sender", &resp);
	if (resp != NULL) {
		SPF_response_free(resp);
		resp = NULL;
	}
	if ((req = SPF_request_new(srv)) == NULL)
		goto oom;
	if (ip->family == AF_INET) {
		struct in_addr a;
		memcpy(&a, ip->a, 4);
		SPF_request_set_ipv4(req, a);
	} else {
		struct in6_addr a;
		memcpy(&a, ip->a, 16);
		SPF_request_set_ipv6(req, a);
	}
	SPF_request_set_helo_dom(req, helo_only ? dom : helo);
	if (SPF_request_set_env_from(req, idbuf) != 0)
		goto oom;
	SPF_request_query_mailfrom(req, &resp);
	if (resp == NULL)
		goto oom;
	v->result = map(SPF_response_result(resp));
	/* libspf2 leaves the result unset (SPF_RESULT_INVALID) when the record does not
	 * compile; RFC 7208 4.6 makes a syntax error a permerror */
	if (SPF_response_result(resp) == SPF_RESULT_INVALID && SPF_response_errors(resp) > 0)
		v->result = SPFR_PERMERROR;
	/* ... and so does libspf2 1.2.10 when the record's own lookup failed for now; that
	 * is a temperror (RFC 7208 4.4), never a permanent verdict */
	if (SPF_response_result(resp) == SPF_RESULT_INVALID && ctx.temp[0])
		v->result = SPFR_TEMPERROR;
	if (ctx.voids > SPF_VOID_LOOKUPS_MAX && v->result != SPFR_TEMPERROR) {
		v->result = SPFR_PERMERROR;
		snprintf(v->why, sizeof(v->why), "more than %d void DNS lookups in the record of %s "
		    "(RFC 7208 4.6.4)", SPF_VOID_LOOKUPS_MAX, dom);
	} else if (v->result == SPFR_TEMPERROR && ctx.temp[0]) {
		snprintf(v->why, sizeof(v->why), "DNS lookup failed: %s", ctx.temp);
	} else {
		const char *c = SPF_response_get_header_comment(resp);
		const char *e = SPF_response_errors(resp) > 0 && SPF_response_message(resp, 0) ?
		    SPF_error_message(SPF_response_message(resp, 0)) : NULL;
		if (v->result == SPFR_PERMERROR && e) {
			/* the compile error names the bad term; the last message says which domain */
			int n = SPF_response_messages(resp);
			const char *last = n > 1 && SPF_response_message(resp, n - 1) ?
			    SPF_error_message(SPF_response_message(resp, n - 1)) : NULL;
			snprintf(v->why, sizeof(v->why), "%s%s%s", e, last && last != e ? ": " : "",
			    last && last != e ? last : "");
		}
		else if (v->result == SPFR_NONE)
			snprintf(v->why, sizeof(v->why), "%s publishes no SPF record", dom);
		else if (c)
			snprintf(v->why, sizeof(v->why), "%s", c);
	}
	SPF_response_free(resp);
	SPF_request_free(req);
	SPF_server_free(srv);
	for (size_t t = 0; t < ctx.ntargets; t++)
		free(ctx.targets[t]);
	return;
oom:
	for (size_t t = 0; t < ctx.ntargets; t++)
		free(ctx.targets[t]);
	if (resp)
		SPF_response_free(resp);
	if (req)
		SPF_request_free(req);
	if (srv)
		SPF_server_free(srv);
	v->result = SPFR_TEMPERROR;
	snprintf(v->why, sizeof(v->why), "out of memory");
}
