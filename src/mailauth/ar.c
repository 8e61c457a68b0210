/*
 * ar — Authentication-Results and DNS list names. See ar.h. PURE.
 */
#include "mailauth/ar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/sbuf.h"

/* A value: bare when it is a plain token (RFC 2045 token chars, '@' allowed in pvalue),
 * else a quoted-string; control and 8-bit bytes become '?'. */
static void
putval(struct sbuf *b, const char *v)
{
	int plain = *v != '\0';
	char c[2] = { 0, 0 };

	for (const char *p = v; *p; p++) {
		unsigned char u = (unsigned char)*p;
		if (u <= ' ' || u >= 127 || strchr("()<>,;:\\\"/[]?=", u) != NULL)
			plain = 0;
	}
	if (!plain)
		sbuf_puts(b, "\"");
	for (const char *p = v; *p; p++) {
		unsigned char u = (unsigned char)*p;
		if (u < ' ' || u >= 127)
			c[0] = '?';
		else if (!plain && (u == '"' || u == '\\')) {
			sbuf_puts(b, "\\");
			c[0] = (char)u;
		} else
			c[0] = (char)u;
		sbuf_add(b, c, 1);
	}
	if (!plain)
		sbuf_puts(b, "\"");
}

/* reason="..." (RFC 8601 2.7), at most AR_REASON_MAX characters: the field must fit the
 * room the queue file keeps for it however many results there are */
#define AR_REASON_MAX 160
static void
putreason(struct sbuf *b, const char *why)
{
	if (why == NULL || *why == '\0')
		return;
	sbuf_puts(b, " reason=\"");
	for (const char *p = why; *p && p - why < AR_REASON_MAX; p++) {
		unsigned char u = (unsigned char)*p;
		char c = (u < ' ' || u >= 127) ? '?' : (char)u;
		if (c == '"' || c == '\\')
			sbuf_puts(b, "\\");
		sbuf_add(b, &c, 1);
	}
	sbuf_puts(b, "\"");
}

char *
ar_format(const char *hostname, const struct spf_verdict *mfrom,
    const struct spf_verdict *helo, const struct dkim_sigres *sigs, size_t nsigs,
    const struct dmarc_verdict *dmarc)
{
	struct sbuf b = { 0 };

	sbuf_puts(&b, "Authentication-Results: ");
	sbuf_puts(&b, hostname);
	if (mfrom != NULL) {
		sbuf_puts(&b, ";\r\n\tspf=");
		sbuf_puts(&b, spf_res_name(mfrom->result));
		if (mfrom->result != SPFR_PASS)
			putreason(&b, mfrom->why);
		sbuf_puts(&b, " smtp.mailfrom=");
		putval(&b, mfrom->identity);
	}
	if (helo != NULL) {
		sbuf_puts(&b, ";\r\n\tspf=");
		sbuf_puts(&b, spf_res_name(helo->result));
		if (helo->result != SPFR_PASS && helo->result != SPFR_NONE)
			putreason(&b, helo->why);
		sbuf_puts(&b, " smtp.helo=");
		putval(&b, helo->identity);
	}
	if (nsigs == 0)
		sbuf_puts(&b, ";\r\n\tdkim=none");
	for (size_t i = 0; i < nsigs; i++) {
		sbuf_puts(&b, ";\r\n\tdkim=");
		sbuf_puts(&b, dkim_res_name(sigs[i].result));
		if (sigs[i].result != DKR_PASS)
			putreason(&b, sigs[i].why);
		sbuf_puts(&b, " header.d=");
		putval(&b, sigs[i].domain[0] ? sigs[i].domain : "unknown");
		if (sigs[i].selector[0]) {
			sbuf_puts(&b, " header.s=");
			putval(&b, sigs[i].selector);
		}
		if (sigs[i].alg[0]) {
			sbuf_puts(&b, " header.a=");
			putval(&b, sigs[i].alg);
		}
		if (sigs[i].b[0]) {
			sbuf_puts(&b, " header.b=");
			putval(&b, sigs[i].b);
		}
	}
	if (dmarc != NULL) {
		sbuf_puts(&b, ";\r\n\tdmarc=");
		sbuf_puts(&b, dmarc_res_name(dmarc->result));
		if ((dmarc->result == DMR_FAIL || dmarc->result == DMR_TEMPERROR) &&
		    dmarc->record_domain[0]) {
			sbuf_puts(&b, " (p=");
			sbuf_puts(&b, dmarc_pol_name(dmarc->published));
			if (dmarc->policy != dmarc->published) {
				sbuf_puts(&b, ", applied ");
				sbuf_puts(&b, dmarc_pol_name(dmarc->policy));
			}
			sbuf_puts(&b, ")");
		}
		if (dmarc->result != DMR_PASS)
			putreason(&b, dmarc->why);
		if (dmarc->from_domain[0]) {
			sbuf_puts(&b, " header.from=");
			putval(&b, dmarc->from_domain);
		}
	}
	sbuf_puts(&b, "\r\n");
	if (b.bad) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

int
dnsl_query_name(const struct netaddr *addr, const char *zone, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t n;

	if (addr->family == AF_INET)
		n = (size_t)snprintf(out, outlen, "%u.%u.%u.%u.%s", addr->a[3], addr->a[2],
		    addr->a[1], addr->a[0], zone);
	else {
		char nib[64];
		size_t o = 0;
		for (int i = 15; i >= 0; i--) {
			nib[o++] = hex[addr->a[i] & 15];
			nib[o++] = '.';
			nib[o++] = hex[addr->a[i] >> 4];
			nib[o++] = '.';
		}
		n = (size_t)snprintf(out, outlen, "%.*s%s", (int)o, nib, zone);
	}
	return n < outlen && n <= 253 ? 0 : -1;
}

int
dnsl_is_listing(const struct netaddr *a)
{
	if (a->family != AF_INET || a->a[0] != 127)
		return 0;
	if (a->a[1] == 0 && a->a[2] == 0 && a->a[3] == 1)
		return 0;
	if (a->a[1] == 255 && a->a[2] == 255)
		return 0;	/* list error codes (query refused, typing error) */
	if (a->a[1] == 0 && a->a[2] == 0 && a->a[3] == 255)
		return 0;	/* dnswl.org's "query refused" */
	return 1;
}
