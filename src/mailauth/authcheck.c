/*
 * authcheck — see authcheck.h.
 */
#include "mailauth/authcheck.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mailauth/ar.h"
#include "mailauth/dnsq.h"
#include "proto/msghdr.h"
#include "util/log.h"

#define HDR_READ_MAX	(1024 * 1024)	/* a header section past this is not evaluated */

void
authcheck_dnsbl(const struct conf *c, const struct netaddr *client, struct dnsbl_result *r)
{
	size_t n = c->ndnsbl + c->ndnswl;
	struct dnsq_answer *a;
	struct dnsq *q;
	char err[160], name[300], addr[64];
	size_t lo = 0;

	memset(r, 0, sizeof(*r));
	if (n == 0)
		return;
	if ((a = calloc(n, sizeof(*a))) == NULL ||
	    (q = dnsq_new(c->dns_servers, c->ndns_servers, DNSBL_BUDGET_MS, err, sizeof(err))) ==
	    NULL) {
		free(a);
		snprintf(r->log, sizeof(r->log), "dnsbl=unchecked");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct conf_dnsl *l = i < c->ndnsbl ? &c->dnsbl[i] : &c->dnswl[i - c->ndnsbl];
		if (dnsl_query_name(client, l->zone, name, sizeof(name)) < 0) {
			a[i].status = DNSQ_NXDOMAIN;
			continue;
		}
		dnsq_submit(q, name, 1, &a[i]);
	}
	dnsq_wait(q);
	netaddr_str(client, addr, sizeof(addr));
	for (size_t i = 0; i < n; i++) {
		int bl = i < c->ndnsbl;
		const struct conf_dnsl *l = bl ? &c->dnsbl[i] : &c->dnswl[i - c->ndnsbl];
		struct netaddr *hit = NULL;
		char code[64];
		for (size_t k = 0; a[i].status == DNSQ_OK && k < a[i].naddrs; k++)
			if (dnsl_is_listing(&a[i].addrs[k])) {
				hit = &a[i].addrs[k];
				break;
			}
		if (a[i].status == DNSQ_TEMPFAIL && lo < sizeof(r->log))
			lo += (size_t)snprintf(r->log + lo, sizeof(r->log) - lo, "%s%s=%s(no-answer)",
			    lo ? " " : "", bl ? "dnsbl" : "dnswl", l->zone);
		if (hit == NULL)
			continue;
		netaddr_str(hit, code, sizeof(code));
		if (lo < sizeof(r->log))
			lo += (size_t)snprintf(r->log + lo, sizeof(r->log) - lo, "%s%s=%s(%s)",
			    lo ? " " : "", bl ? "dnsbl" : "dnswl", l->zone, code);
		if (bl) {
			r->score += (int)l->weight;
			if (r->reply[0] == '\0')
				snprintf(r->reply, sizeof(r->reply), "554 5.7.1 Service unavailable; "
				    "client host [%s] blocked using %s (listed as %s)", addr, l->zone,
				    code);
		} else
			r->score -= (int)l->weight;
	}
	r->listed = r->score >= (int)c->dnsbl_threshold;
	if (!r->listed)
		r->reply[0] = '\0';
	dnsq_free(q);		/* first: no callback may reach the answers afterwards */
	for (size_t i = 0; i < n; i++)
		dnsq_answer_free(&a[i]);
	free(a);
}

enum auth_action
authcheck_spf_mail(const struct conf *c, const struct netaddr *client, const char *helo,
    const char *sender, struct spf_verdict *v, char *reply, size_t rl)
{
	char err[160];
	struct dnsq *q = dnsq_new(c->dns_servers, c->ndns_servers, AUTH_DNS_BUDGET_MS, err,
	    sizeof(err));

	if (q == NULL) {
		memset(v, 0, sizeof(*v));
		v->result = SPFR_TEMPERROR;
		snprintf(v->why, sizeof(v->why), "%s", err);
		return AUTH_ACCEPT;
	}
	spf_check(q, client, helo, sender, 0, c->hostname, v);
	dnsq_free(q);
	if (v->result == SPFR_FAIL && c->spf_reject) {
		snprintf(reply, rl, "550 5.7.23 SPF: %s is not allowed to send mail from %s: %s",
		    "the client", v->domain, v->why);
		return AUTH_REJECT;
	}
	return AUTH_ACCEPT;
}

/* The header section of the message (at most HDR_READ_MAX bytes), malloc'd; *complete
 * is 0 when its end was not within that. */
static char *
read_headers(int fd, uint64_t off, uint64_t len, size_t *hl, int *complete)
{
	size_t want = len < HDR_READ_MAX ? (size_t)len : HDR_READ_MAX, got = 0;
	char *b = malloc(want + 1);
	const char *e;

	if (b == NULL)
		return NULL;
	while (got < want) {
		ssize_t r = pread(fd, b + got, want - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	e = got >= 2 && b[0] == '\r' && b[1] == '\n' ? b : memmem(b, got, "\r\n\r\n", 4);
	*hl = e ? (size_t)(e - b) + 2 : got;
	if (e == b)
		*hl = 0;
	/* complete: the empty line was seen, or the whole message (no body) was read */
	*complete = e != NULL || (uint64_t)got == len;
	return b;
}

/* The From: domains. -1: no From field, -2: more than one From field, -3: not parsable;
 * else the count (distinct domains collapsed). */
static int
from_domains(const char *h, size_t hl, char dom[MHDR_DOMAINS_MAX][256])
{
	struct mhdr_field f;
	size_t pos = 0, n = 0;
	int nfrom = 0, r;

	while ((r = mhdr_next(h, hl, &pos, &f)) != 0) {
		if (r < 0) {
			/* not a field: skip the line (a malformed line must not hide a From
			 * that follows it) */
			const char *nl = memchr(h + pos, '\n', hl - pos);
			if (nl == NULL)
				break;
			pos = (size_t)(nl - h) + 1;
			continue;
		}
		if (!mhdr_is(&f, "From"))
			continue;
		if (++nfrom > 1)
			return -2;
		if (mhdr_from_domains(f.value, f.valuelen, dom, &n) < 0)
			return -3;
	}
	if (nfrom == 0)
		return -1;
	/* distinct domains */
	{
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			size_t j;
			for (j = 0; j < k && strcmp(dom[j], dom[i]) != 0; j++)
				;
			if (j == k) {
				if (k != i)
					memcpy(dom[k], dom[i], 256);
				k++;
			}
		}
		n = k;
	}
	return (int)n;
}

size_t
authcheck_sign_domains(const struct dkim_keys *keys, int fd, uint64_t off, uint64_t len,
    const char *sender, char (*dom)[256])
{
	char fd_[MHDR_DOMAINS_MAX][256];
	size_t hl, n = 0;
	int complete;
	char *h = read_headers(fd, off, len, &hl, &complete);
	const char *at = strrchr(sender, '@');
	int k;

	if (h != NULL) {
		k = from_domains(h, hl, fd_);
		if (k == 1 && fd_[0][0] && dkim_keys_have(keys, fd_[0]))
			snprintf(dom[n++], 256, "%s", fd_[0]);
		free(h);
	}
	if (at != NULL && at[1]) {
		char s[256];
		size_t i;
		for (i = 0; at[1 + i] && i < sizeof(s) - 1; i++)
			s[i] = (char)((at[1 + i] >= 'A' && at[1 + i] <= 'Z') ? at[1 + i] + 32 : at[1 + i]);
		s[i] = '\0';
		if (dkim_keys_have(keys, s) && (n == 0 || strcmp(dom[0], s) != 0))
			snprintf(dom[n++], 256, "%s", s);
	}
	return n;
}

int
authcheck_from_addrs(int fd, uint64_t off, uint64_t len, char (*addr)[MHDR_ADDR_MAX],
    size_t *n)
{
	struct mhdr_field f;
	size_t hl, pos = 0;
	int complete, nfrom = 0, r, ret = 0;
	char *h = read_headers(fd, off, len, &hl, &complete);

	*n = 0;
	if (h == NULL)
		return -1;
	while (ret == 0 && (r = mhdr_next(h, hl, &pos, &f)) != 0) {
		if (r < 0) {
			const char *nl = memchr(h + pos, '\n', hl - pos);
			if (nl == NULL)
				break;
			pos = (size_t)(nl - h) + 1;
			continue;
		}
		if (mhdr_is(&f, "From") && (++nfrom > 1 ||
		    mhdr_from_addrs(f.value, f.valuelen, addr, n) < 0))
			ret = -1;
	}
	free(h);
	return nfrom == 1 ? ret : -1;
}

void
authcheck_inbound(const struct authcheck_in *in, struct authcheck_out *out)
{
	const struct conf *c = in->conf;
	char err[200], dom[MHDR_DOMAINS_MAX][256];
	struct dnsq *q;
	size_t hl = 0, lo = 0;
	char *h;
	int nd;

	memset(out, 0, sizeof(*out));
	if ((q = dnsq_new(c->dns_servers, c->ndns_servers, AUTH_DNS_BUDGET_MS, err,
	    sizeof(err))) == NULL) {
		/* fail closed: a message is not accepted unchecked (the client retries) */
		out->action = AUTH_TEMPFAIL;
		snprintf(out->reply, sizeof(out->reply), "451 4.7.1 The authentication checks "
		    "cannot run now (%s); try again later", err);
		snprintf(out->log, sizeof(out->log), "auth=unchecked");
		return;
	}
	/* SPF */
	if (in->spf_mfrom != NULL)
		out->mfrom = *in->spf_mfrom;
	else
		spf_check(q, &in->client, in->helo, in->sender, 0, c->hostname, &out->mfrom);
	spf_check(q, &in->client, in->helo, "", 1, c->hostname, &out->helo);
	/* DKIM */
	if (dkim_verify_message(q, in->fd, in->off, in->len, &out->sigs, &out->nsigs, err,
	    sizeof(err)) < 0) {
		out->nsigs = 0;
		snprintf(out->from_note, sizeof(out->from_note), "DKIM not checked: %s", err);
	}
	/* DMARC */
	{
		int complete = 0;
		h = read_headers(in->fd, in->off, in->len, &hl, &complete);
		nd = h == NULL ? -3 : !complete ? -4 : from_domains(h, hl, dom);
		free(h);
	}
	if (nd == 1 && dom[0][0]) {
		dmarc_check(q, dom[0], &out->mfrom, out->sigs, out->nsigs, in->random_pct,
		    &out->dmarc);
		out->have_dmarc = 1;
	} else {
		out->have_dmarc = 1;
		memset(&out->dmarc, 0, sizeof(out->dmarc));
		switch (nd) {
		case -1:
			out->dmarc.result = DMR_NONE;
			snprintf(out->dmarc.why, sizeof(out->dmarc.why), "the message has no From: "
			    "field");
			break;
		case -2:
			out->dmarc.result = DMR_PERMERROR;
			snprintf(out->dmarc.why, sizeof(out->dmarc.why), "the message has more than "
			    "one From: field (RFC 5322 3.6)");
			break;
		case -4:
			out->dmarc.result = DMR_PERMERROR;
			snprintf(out->dmarc.why, sizeof(out->dmarc.why), "the header section is over "
			    "%d bytes", HDR_READ_MAX);
			break;
		default:
			out->dmarc.result = DMR_PERMERROR;
			snprintf(out->dmarc.why, sizeof(out->dmarc.why), nd > 1 ?
			    "the From: field names several domains" : nd == -3 ?
			    "the From: field cannot be read as an address list" :
			    "the From: field holds no usable domain");
			break;
		}
	}
	dnsq_free(q);
	out->ar = ar_format(c->hostname, &out->mfrom, &out->helo, out->sigs, out->nsigs,
	    out->have_dmarc ? &out->dmarc : NULL);

	/* the log fields */
	lo = (size_t)snprintf(out->log, sizeof(out->log), "spf=%s helo_spf=%s",
	    spf_res_name(out->mfrom.result), spf_res_name(out->helo.result));
	if (out->nsigs == 0 && lo < sizeof(out->log))
		lo += (size_t)snprintf(out->log + lo, sizeof(out->log) - lo, " dkim=none");
	for (size_t i = 0; i < out->nsigs && lo < sizeof(out->log); i++) {
		char lv[LOG_VALUE_MAX];	/* d= comes from the message */
		lo += (size_t)snprintf(out->log + lo, sizeof(out->log) - lo, " dkim=%s:%s",
		    dkim_res_name(out->sigs[i].result), log_value(lv, sizeof(lv),
		    out->sigs[i].domain, strlen(out->sigs[i].domain)));
	}
	if (lo < sizeof(out->log))
		lo += (size_t)snprintf(out->log + lo, sizeof(out->log) - lo, " dmarc=%s",
		    dmarc_res_name(out->dmarc.result));
	if (out->dmarc.result == DMR_FAIL && lo < sizeof(out->log))
	{
		char lv[LOG_VALUE_MAX];
		snprintf(out->log + lo, sizeof(out->log) - lo, " dmarc_policy=%s header_from=%s",
		    dmarc_pol_name(out->dmarc.policy), log_value(lv, sizeof(lv),
		    out->dmarc.from_domain, strlen(out->dmarc.from_domain)));
	}

	/* the verdict */
	out->action = AUTH_ACCEPT;
	if (!c->dmarc_reject)
		return;
	if (out->dmarc.result == DMR_FAIL && out->dmarc.policy == DMP_REJECT) {
		out->action = AUTH_REJECT;
		snprintf(out->reply, sizeof(out->reply), "550 5.7.1 Message rejected: the DMARC "
		    "policy of %s says reject, and %s", out->dmarc.record_domain, out->dmarc.why);
	} else if (out->dmarc.result == DMR_TEMPERROR &&
	    (out->dmarc.policy == DMP_REJECT || out->dmarc.record_domain[0] == '\0')) {
		out->action = AUTH_TEMPFAIL;
		snprintf(out->reply, sizeof(out->reply), "451 4.7.1 The DMARC policy of %s cannot "
		    "be evaluated now (%s); try again later", out->dmarc.from_domain,
		    out->dmarc.why);
	} else if (nd == -2 || nd == -3 || nd == -4 || nd > 1) {
		out->action = AUTH_REJECT;
		snprintf(out->reply, sizeof(out->reply), "550 5.7.1 Message rejected: %s, so its "
		    "author cannot be authenticated (DMARC, RFC 7489 6.6.1)", out->dmarc.why);
	}
}

void
authcheck_out_free(struct authcheck_out *out)
{
	free(out->ar);
	free(out->sigs);
	out->ar = NULL;
	out->sigs = NULL;
	out->nsigs = 0;
}
