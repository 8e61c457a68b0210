/*
 * imsd dns-records DOMAIN — the records to publish for DOMAIN, as zone-file lines: MX, the
 * host's A/AAAA, SPF for this host's addresses, each DKIM key, DMARC p=none with reports to
 * postmaster, MTA-STS (the record and the policy file), TLS-RPT; and, as comments, the
 * records that live elsewhere (PTR) or only make sense in a signed zone (TLSA). The texts
 * are doctor_rules', the same the fixes of imsd doctor print. Nothing is looked up: the
 * output depends on the configuration (and --address) only. See doctor.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli/doctor.h"

static void
rr(const char *owner, const char *type, const char *rdata)
{
	char line[4200];

	puts(doc_rr(owner, type, rdata, 1, line, sizeof(line)));
}

static void
txt(const char *owner, const char *text)
{
	char line[4200];

	puts(doc_rr_txt(owner, text, 1, line, sizeof(line)));
}

int
cli_dns_records(const char *conf_path, const char *domain, const char *const *addrs,
    size_t naddrs)
{
	struct doctor d;
	const struct conf *cf;
	char dom[256], err[1024], b[NETADDR_STRLEN], rec[1200], name[320], why[300];
	char pol[1200], id[40], tlsa[200], list[800];
	const char *mx[1];
	int local, signs = 0;
	size_t lo = 0, n = strlen(domain);

	if (n == 0 || n >= sizeof(dom)) {
		fprintf(stderr, "imsd: dns-records: %s is not a domain name\n", domain);
		return 1;
	}
	for (size_t i = 0; i <= n; i++)
		dom[i] = (char)tolower((unsigned char)domain[i]);
	if (n > 1 && dom[n - 1] == '.')
		dom[n - 1] = '\0';
	if (!doc_name_is_fqdn(dom, why, sizeof(why))) {
		fprintf(stderr, "imsd: dns-records: %s\n", why);
		return 1;
	}
	memset(&d, 0, sizeof(d));
	d.quiet = 1;
	d.conf_path = conf_path;
	for (size_t i = 0; i < naddrs && d.naddrs < DOC_ADDRS_MAX; i++) {
		if (netaddr_parse(addrs[i], &d.addrs[d.naddrs]) < 0) {
			fprintf(stderr, "imsd: dns-records: --address %s is not an IP address\n",
			    addrs[i]);
			return 1;
		}
		d.naddrs++;
		d.addrs_given = 1;
	}
	if ((d.c = cfg_load(conf_path, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imsd: %s\n", err);
		return 1;
	}
	cf = &d.c->conf;
	doc_collect_addresses(&d);
	local = conf_is_local_domain(cf, dom);
	for (size_t i = 0; i < d.c->dkim.n; i++)
		signs |= strcasecmp(d.c->dkim.k[i].domain, dom) == 0;
	list[0] = '\0';
	for (size_t i = 0; i < d.naddrs && lo < sizeof(list); i++)
		lo += (size_t)snprintf(list + lo, sizeof(list) - lo, " %s",
		    netaddr_str(&d.addrs[i], b, sizeof(b)));

	printf("; imsd dns-records %s: the records to publish, from %s\n", dom, cf->source);
	printf("; this host: %s, address%s%s (%s)\n", cf->hostname, d.naddrs == 1 ? "" : "es",
	    d.naddrs ? list : " none public: give --address", d.addrs_from);
	if (!local && !signs)
		printf("; note: %s is neither in local_domains nor a dkim_sign domain of this "
		    "configuration\n", dom);
	printf("; names are absolute; the host's own records belong to the zone of %s\n",
	    cf->hostname);

	if (local || !signs) {
		printf("\n; MX: mail for %s comes to this host (RFC 5321 5.1)\n", dom);
		snprintf(rec, sizeof(rec), "10 %s.", cf->hostname);
		rr(dom, "MX", rec);
	}
	if (d.naddrs > 0) {
		printf("\n; the host name: A/AAAA records of every address mail leaves from (the "
		    "PTR of each must name %s)\n", cf->hostname);
		for (size_t i = 0; i < d.naddrs; i++)
			rr(cf->hostname, d.addrs[i].family == AF_INET ? "A" : "AAAA",
			    netaddr_str(&d.addrs[i], b, sizeof(b)));
		printf("\n; SPF (RFC 7208): this host may send as %s; add the include: of every "
		    "other service that sends as it, before -all\n", dom);
		txt(dom, doc_spf_with(NULL, d.addrs, d.naddrs, rec, sizeof(rec)));
		printf("; and for the name this host says in EHLO (receivers check it for "
		    "bounces, which have no sender)\n");
		txt(cf->hostname, doc_spf_with(NULL, d.addrs, d.naddrs, rec, sizeof(rec)));
	} else
		printf("\n; SPF: no public address known: run imsd dns-records --address ADDRESS "
		    "%s\n", dom);

	printf("\n; DKIM (RFC 6376)\n");
	if (!signs)
		printf("; no dkim_sign key for %s: make one with\n;   imsd dkim-keygen %s s1 "
		    "/etc/imsd/dkim/%s.s1.key\n; then add dkim_sign = %s:s1:/etc/imsd/dkim/%s.s1.key "
		    "and run this again\n", dom, dom, dom, dom, dom);
	for (size_t i = 0; i < d.c->dkim.n; i++) {
		const struct dkim_key *k = &d.c->dkim.k[i];
		if (strcasecmp(k->domain, dom) != 0)
			continue;
		printf("; dkim_sign %s:%s:%s (%s)\n", k->domain, k->selector, k->file, k->ed25519 ?
		    "Ed25519" : "RSA");
		snprintf(name, sizeof(name), "%s._domainkey.%s", k->selector, dom);
		txt(name, k->dns_record);
	}

	printf("\n; DMARC (RFC 7489): start with p=none and read the reports, then "
	    "p=quarantine, then p=reject\n");
	snprintf(name, sizeof(name), "_dmarc.%s", dom);
	snprintf(rec, sizeof(rec), "v=DMARC1; p=none; rua=mailto:postmaster@%s", dom);
	txt(name, rec);

	if (local || !signs) {
		mx[0] = cf->hostname;
		doc_mtasts_policy(mx, 1, "testing", pol, sizeof(pol));
		doc_mtasts_id(pol, id, sizeof(id));
		printf("\n; MTA-STS (RFC 8461): senders that support it require verified TLS to the "
		    "MX hosts the policy lists\n");
		snprintf(name, sizeof(name), "_mta-sts.%s", dom);
		snprintf(rec, sizeof(rec), "v=STSv1; id=%s", id);
		txt(name, rec);
		snprintf(name, sizeof(name), "mta-sts.%s", dom);
		for (size_t i = 0; i < d.naddrs; i++)
			rr(name, d.addrs[i].family == AF_INET ? "A" : "AAAA",
			    netaddr_str(&d.addrs[i], b, sizeof(b)));
		printf("; (mta-sts.%s is a web server: this host's address%s above, or your "
		    "web server's)\n", dom, d.naddrs == 1 ? "" : "es");
		printf("; serve this as https://mta-sts.%s/.well-known/mta-sts.txt (Content-Type: "
		    "text/plain; a certificate for mta-sts.%s):\n", dom, dom);
		for (char *p = pol; *p; ) {
			size_t l = strcspn(p, "\r\n");
			printf(";   %.*s\n", (int)l, p);
			p += l;
			p += strspn(p, "\r\n");
		}
		printf("; once TLS reports show no failures, switch to mode: enforce (and change "
		    "the id: it must change with every change of the file)\n");

		printf("\n; TLS-RPT (RFC 8460): where senders report TLS failures to this host\n");
		snprintf(name, sizeof(name), "_smtp._tls.%s", dom);
		snprintf(rec, sizeof(rec), "v=TLSRPTv1; rua=mailto:postmaster@%s", dom);
		txt(name, rec);

		if (doc_tlsa_311(&d, tlsa, sizeof(tlsa))[0]) {
			char line[600];
			snprintf(name, sizeof(name), "_25._tcp.%s", cf->hostname);
			printf("\n; DANE (RFC 7672), only when the zone of %s is DNSSEC-signed: the "
			    "key of %s\n", cf->hostname, cf->tls_cert_file);
			printf("; %s\n", doc_rr(name, "TLSA", tlsa, 1, line, sizeof(line)));
			printf("; renew the certificate with the same key (certbot --reuse-key), or "
			    "publish the new key's record before deploying it\n");
		}
	}
	if (d.naddrs > 0) {
		printf("\n; reverse DNS: set by whoever provides each address (not in this zone)\n");
		for (size_t i = 0; i < d.naddrs; i++) {
			char line[600];
			doc_ptr_name(&d.addrs[i], name, sizeof(name));
			snprintf(rec, sizeof(rec), "%s.", cf->hostname);
			printf("; %s\n", doc_rr(name, "PTR", rec, 1, line, sizeof(line)));
		}
	}
	cfg_unref(d.c);
	return 0;
}
