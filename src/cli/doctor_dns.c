/*
 * imsd doctor: what the world sees of this host in the DNS, through the configured
 * resolver (dns_servers, else /etc/resolv.conf) and imsd's own DNS code: the relay's
 * resolver (deliver/dns) for routes and TLSA, dnsq for PTR and TXT, authcheck_inbound for
 * SPF, DKIM and DMARC, the relay's MTA-STS discovery (deliver/sts). See doctor.h.
 */
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cli/doctor.h"
#include "deliver/dns.h"
#include "deliver/sts.h"
#include "mailauth/authcheck.h"
#include "mailauth/dnsq.h"
#include "net/ev.h"
#include "policy/mtasts.h"
#include "util/str.h"

#define PTR_NAMES_MAX	5	/* PTR names of one address followed forward */
#define AUTH_MAX_ADDRS	4	/* addresses the SPF/DKIM/DMARC run is made for */

/* ---- this host's addresses ---- */

static void
add_addr(struct doctor *d, const struct netaddr *a)
{
	if (d->naddrs == DOC_ADDRS_MAX || doc_addr_is_ours(d, a) || !doc_addr_is_public(a))
		return;
	d->addrs[d->naddrs++] = *a;
}

void
doc_collect_addresses(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;
	const struct hostport *lists[3] = { cf->listen, cf->submission_listen, cf->smtps_listen };
	size_t ns[3] = { cf->nlisten, cf->nsubmission_listen, cf->nsmtps_listen };
	int any4 = 0, any6 = 0;

	if (!d->addrs_given) {
		for (int k = 0; k < 3; k++)
			for (size_t i = 0; i < ns[k]; i++) {
				const struct netaddr *a = &lists[k][i].addr;
				if (netaddr_is_any(a))
					*(a->family == AF_INET ? &any4 : &any6) = 1;
				else
					add_addr(d, a);
			}
		if (any4 || any6) {
			struct ifaddrs *ifa, *p;
			if (getifaddrs(&ifa) == 0) {
				for (p = ifa; p != NULL; p = p->ifa_next) {
					struct netaddr a;
					if (p->ifa_addr == NULL || netaddr_from_sockaddr(p->ifa_addr, &a,
					    NULL) < 0)
						continue;
					/* imsd binds [::] v6-only (listen.c): each wildcard its family */
					if ((a.family == AF_INET && any4) || (a.family == AF_INET6 && any6))
						add_addr(d, &a);
				}
				freeifaddrs(ifa);
			}
		}
		snprintf(d->addrs_from, sizeof(d->addrs_from), "%s", any4 || any6 ?
		    "the listeners' addresses, wildcards taken as this host's interfaces" :
		    "the listeners' addresses");
	} else
		snprintf(d->addrs_from, sizeof(d->addrs_from), "given with --address");
}

void
doc_find_addresses(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;
	char found[1200], b[NETADDR_STRLEN];
	size_t o = 0;

	doc_collect_addresses(d);
	found[0] = '\0';
	for (size_t i = 0; i < d->naddrs; i++) {
		int w = snprintf(found + o, sizeof(found) - o, "%s%s", i ? ", " : "",
		    netaddr_str(&d->addrs[i], b, sizeof(b)));
		if (w > 0 && (size_t)w < sizeof(found) - o)
			o += (size_t)w;
	}
	if (d->naddrs == 0)
		doc_add(d, DOC_WARN, "dns.addresses", cf->hostname, "no public address among the "
		    "listeners: this host is not reachable from the Internet as configured, or it is "
		    "behind NAT, and the checks of PTR, SPF and MX cannot name the address that "
		    "matters", "receivers judge the address mail comes from: its PTR, SPF and "
		    "blocklist entries", "listen = 0.0.0.0:25, [::]:25 for a host on the Internet; "
		    "behind NAT run imsd doctor --address PUBLIC-ADDRESS");
	else {
		char line[1400];
		snprintf(line, sizeof(line), "%s (%s)", found, d->addrs_from);
		doc_add(d, DOC_OK, "dns.addresses", cf->hostname, line, NULL, NULL);
	}
}

/* ---- the relay's resolver, one lookup at a time ---- */

struct lookup {
	struct ev_loop *loop;
	struct dns *dns;
	struct doc_route *r;
	int done;
	time_t deadline;
};

static void
lookup_done(void *arg, const struct dns_result *res)
{
	struct lookup *l = arg;
	struct doc_route *r = l->r;

	l->done = 1;
	ev_loop_break(l->loop);
	r->status = res->status;
	str_copy(r->why, sizeof(r->why), res->why);
	r->implicit_mx = res->implicit_mx;
	for (size_t h = 0; h < res->nhosts && r->nhosts < DNS_MAX_MX; h++) {
		struct doc_host *dh = &r->hosts[r->nhosts++];
		str_copy(dh->name, sizeof(dh->name), res->hosts[h].name);
		dh->pref = res->hosts[h].pref;
		for (size_t a = 0; a < res->hosts[h].naddrs && dh->naddrs < DNS_MAX_ADDRS; a++)
			dh->addrs[dh->naddrs++] = res->hosts[h].addrs[a];
	}
	if (res->tlsa != NULL) {
		r->tlsa = *res->tlsa;
		r->have_tlsa = 1;
	}
}

static void
lookup_tick(void *arg)
{
	struct lookup *l = arg;

	dns_tick(l->dns);
	if (!l->done && time(NULL) >= l->deadline) {
		l->r->status = DNS_TEMPFAIL;
		snprintf(l->r->why, sizeof(l->r->why), "no answer within %d s", DOC_DNS_SECONDS);
		l->done = 1;
		ev_loop_break(l->loop);
	}
}

int
doc_resolve(const struct doctor *d, enum doc_lookup kind, const char *name, struct doc_route *r)
{
	const struct conf *cf = &d->c->conf;
	struct lookup l = { .r = r };
	char err[256];
	struct dns_query *q;

	memset(r, 0, sizeof(*r));
	r->status = DNS_TEMPFAIL;
	if ((l.loop = ev_loop_new()) == NULL) {
		snprintf(r->why, sizeof(r->why), "event loop: out of resources");
		return -1;
	}
	if ((l.dns = dns_new(l.loop, cf->dns_servers, cf->ndns_servers, err, sizeof(err))) ==
	    NULL) {
		snprintf(r->why, sizeof(r->why), "the resolver cannot be set up: %s", err);
		ev_loop_free(l.loop);
		return -1;
	}
	q = kind == DOC_LOOKUP_MAIL ? dns_resolve_mail(l.dns, name, lookup_done, &l) :
	    kind == DOC_LOOKUP_HOST ? dns_resolve_host(l.dns, name, lookup_done, &l) :
	    dns_resolve_tlsa(l.dns, name, lookup_done, &l);
	if (q == NULL)
		snprintf(r->why, sizeof(r->why), "%s: the lookup cannot be started", name);
	else {
		l.deadline = time(NULL) + DOC_DNS_SECONDS;
		ev_loop_run(l.loop, lookup_tick, NULL, &l);
	}
	dns_free(l.dns);
	ev_loop_free(l.loop);
	return q == NULL ? -1 : 0;
}

static struct dnsq *
new_dnsq(struct doctor *d, unsigned budget_ms)
{
	const struct conf *cf = &d->c->conf;
	char err[200];
	struct dnsq *q = dnsq_new(cf->dns_servers, cf->ndns_servers, budget_ms, err, sizeof(err));

	if (q == NULL)
		doc_add(d, DOC_FAIL, "dns.resolver", cf->hostname, err, "no DNS check can be made",
		    "set dns_servers, or make /etc/resolv.conf name a resolver");
	return q;
}

/* "ADDR, ADDR" of a host */
static const char *
addrs_text(const struct netaddr *a, size_t n, char *buf, size_t len)
{
	char b[NETADDR_STRLEN];
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", netaddr_str(&a[i], b,
		    sizeof(b)));
		if (w < 0 || (size_t)w >= len - o)
			break;
		o += (size_t)w;
	}
	if (n == 0)
		snprintf(buf, len, "no address");
	return buf;
}

/* ---- the host name, PTR, MX ---- */

/* The A/AAAA records of hostname must include every address mail leaves from. */
static void
check_host(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;
	struct doc_route *r = calloc(1, sizeof(*r));
	char found[1400], fix[2000], b[NETADDR_STRLEN], line[400], list[800];
	size_t fo = 0, missing = 0;

	if (r == NULL)
		return;
	if (doc_resolve(d, DOC_LOOKUP_HOST, cf->hostname, r) < 0 ||
	    (r->status == DNS_TEMPFAIL && (strstr(r->why, "no answer within") != NULL ||
	    strstr(r->why, "timeout") != NULL))) {
		snprintf(found, sizeof(found), "%s", r->why);
		doc_add(d, DOC_FAIL, "dns.resolver", cf->ndns_servers ? "dns_servers" :
		    "/etc/resolv.conf", found, "no DNS check can be made (they are skipped), and "
		    "the relay cannot route mail", "set dns_servers to a working resolver (a local "
		    "unbound is best)");
		d->dns_dead = 1;
		free(r);
		return;
	}
	if (r->status != DNS_TEMPFAIL)
		doc_add(d, DOC_OK, "dns.resolver", cf->ndns_servers ? "dns_servers" :
		    "/etc/resolv.conf", "answers", NULL, NULL);
	fix[0] = list[0] = '\0';
	if (r->status == DNS_OK && r->nhosts > 0)
		addrs_text(r->hosts[0].addrs, r->hosts[0].naddrs, list, sizeof(list));
	for (size_t i = 0; i < d->naddrs; i++) {
		int have = 0;
		for (size_t k = 0; r->status == DNS_OK && r->nhosts > 0 && k < r->hosts[0].naddrs; k++)
			have |= netaddr_equal(&r->hosts[0].addrs[k], &d->addrs[i]);
		if (have)
			continue;
		missing++;
		doc_rr(cf->hostname, d->addrs[i].family == AF_INET ? "A" : "AAAA",
		    netaddr_str(&d->addrs[i], b, sizeof(b)), 0, line, sizeof(line));
		fo += (size_t)snprintf(fix + fo, sizeof(fix) > fo ? sizeof(fix) - fo : 0, "%s%s",
		    fo ? "; " : "publish ", line);
	}
	if (r->status != DNS_OK) {
		snprintf(found, sizeof(found), "does not resolve: %s", r->why);
		doc_add(d, DOC_FAIL, "dns.host", cf->hostname, found, "receivers look the EHLO "
		    "name up, and the PTR of this host must lead back to it", fix[0] ? fix :
		    "publish an A (and AAAA) record of the host name");
	} else if (missing > 0) {
		snprintf(found, sizeof(found), "resolves to %s, not to every address of this host",
		    list);
		doc_add(d, DOC_FAIL, "dns.host", cf->hostname, found, "forward-confirmed reverse "
		    "DNS needs the EHLO name to resolve to the address mail comes from", fix);
	} else {
		snprintf(found, sizeof(found), "resolves to %s", list);
		doc_add(d, DOC_OK, "dns.host", cf->hostname, found, NULL, NULL);
	}
	free(r);
}

/* Does name resolve (A or AAAA, by a's family) to a? */
static int
forward_has(struct dnsq *q, const char *name, const struct netaddr *a)
{
	struct dnsq_answer ans;
	int have = 0;

	if (dnsq_lookup(q, name, a->family == AF_INET ? 1 : 28, &ans) == DNSQ_OK)
		for (size_t i = 0; i < ans.naddrs; i++)
			have |= netaddr_equal(&ans.addrs[i], a);
	dnsq_answer_free(&ans);
	return have;
}

static void
check_ptr(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;
	struct dnsq *q = d->naddrs ? new_dnsq(d, 20000) : NULL;

	for (size_t i = 0; q != NULL && i < d->naddrs; i++) {
		const struct netaddr *a = &d->addrs[i];
		char rev[80], b[NETADDR_STRLEN], found[1200], fix[1200], why[400], line[400];
		const char *names[PTR_NAMES_MAX];
		int ok[PTR_NAMES_MAX], match;
		struct dnsq_answer ans;
		size_t n = 0;
		enum dnsq_status s;
		enum doc_status v;

		netaddr_str(a, b, sizeof(b));
		doc_ptr_name(a, rev, sizeof(rev));
		doc_rr(rev, "PTR", cf->hostname, 0, line, sizeof(line));
		s = dnsq_lookup(q, rev, 12, &ans);
		if (s == DNSQ_TEMPFAIL) {
			snprintf(found, sizeof(found), "the PTR lookup of %s failed: %s", rev, ans.why);
			doc_add(d, DOC_WARN, "dns.ptr", b, found, "receivers that cannot look the PTR "
			    "up defer or refuse the mail", "check the reverse zone's name servers");
			dnsq_answer_free(&ans);
			continue;
		}
		for (size_t k = 0; s == DNSQ_OK && k < ans.nnames && n < PTR_NAMES_MAX; k++) {
			names[n] = ans.names[k];
			ok[n] = forward_has(q, ans.names[k], a);
			n++;
		}
		v = doc_fcrdns(names, ok, n, cf->hostname, &match, why, sizeof(why));
		if (v == DOC_OK) {
			snprintf(found, sizeof(found), "PTR %s, which resolves back to %s (FCrDNS) and "
			    "is the EHLO name", names[match], b);
			doc_add(d, DOC_OK, "dns.ptr", b, found, NULL, NULL);
		} else if (n == 0) {
			snprintf(found, sizeof(found), "no PTR record for %s (%s)", b, rev);
			snprintf(fix, sizeof(fix), "ask the provider of %s to set its reverse DNS to "
			    "%s: %s", b, cf->hostname, line);
			doc_add(d, DOC_FAIL, "dns.ptr", b, found, "Gmail, Outlook and most large "
			    "receivers refuse or junk mail from an address without reverse DNS", fix);
		} else if (match < 0) {
			snprintf(found, sizeof(found), "%s", why);
			snprintf(fix, sizeof(fix), "set the reverse DNS of %s to %s (%s) and make "
			    "%s resolve to %s", b, cf->hostname, line, cf->hostname, b);
			doc_add(d, DOC_FAIL, "dns.ptr", b, found, "receivers accept a PTR only when "
			    "its name resolves back to the address (forward-confirmed reverse DNS)",
			    fix);
		} else {
			snprintf(found, sizeof(found), "%s", why);
			snprintf(fix, sizeof(fix), "set hostname = %s, or set the reverse DNS of %s "
			    "to %s (%s)", names[match], b, cf->hostname, line);
			doc_add(d, DOC_FAIL, "dns.ptr", b, found, "receivers compare the EHLO name "
			    "with the PTR name; a mismatch marks the host as misconfigured or forged",
			    fix);
		}
		dnsq_answer_free(&ans);
	}
	if (q != NULL)
		dnsq_free(q);
}

static void
remember_mx(struct doctor *d, const char *name)
{
	for (size_t i = 0; i < d->nmx; i++)
		if (strcasecmp(d->mx[i], name) == 0)
			return;
	if (d->nmx < DOC_MX_MAX)
		str_copy(d->mx[d->nmx++], sizeof(d->mx[0]), name);
}

/* Is this MX host this host: one of its addresses ours (or, without public addresses,
 * its name our host name)? */
static int
host_is_ours(const struct doctor *d, const struct doc_host *h)
{
	if (d->naddrs == 0)
		return strcasecmp(h->name, d->c->conf.hostname) == 0;
	for (size_t a = 0; a < h->naddrs; a++)
		if (doc_addr_is_ours(d, &h->addrs[a]))
			return 1;
	return 0;
}

static void
check_mx(struct doctor *d, const char *dom)
{
	const struct conf *cf = &d->c->conf;
	struct doc_route *r = calloc(1, sizeof(*r));
	char found[1200], fix[800], line[400], al[300];
	size_t fo = 0, ours = 0;

	if (r == NULL)
		return;
	snprintf(line, sizeof(line), "10 %s.", cf->hostname);
	doc_rr(dom, "MX", line, 0, fix, sizeof(fix));
	snprintf(line, sizeof(line), "publish %s", fix);
	str_copy(fix, sizeof(fix), line);
	doc_resolve(d, DOC_LOOKUP_MAIL, dom, r);
	switch (r->status) {
	case DNS_OK:
		found[0] = '\0';
		for (size_t h = 0; h < r->nhosts; h++) {
			int mine = host_is_ours(d, &r->hosts[h]);
			int w;
			if (mine) {
				ours++;
				remember_mx(d, r->hosts[h].name);
			}
			addrs_text(r->hosts[h].addrs, r->hosts[h].naddrs, al, sizeof(al));
			if (r->implicit_mx)
				w = snprintf(found + fo, sizeof(found) - fo, "no MX record; the domain's "
				    "own address %s%s", al, mine ? " (this host)" : "");
			else
				w = snprintf(found + fo, sizeof(found) - fo, "%sMX %u %s (%s)%s",
				    fo ? ", " : "", r->hosts[h].pref, r->hosts[h].name, al,
				    mine ? " this host" : "");
			if (w > 0 && (size_t)w < sizeof(found) - fo)
				fo += (size_t)w;
		}
		if (ours == 0)
			doc_add(d, DOC_FAIL, "dns.mx", dom, found, "mail for a local domain goes to "
			    "its MX hosts, and none of them is this host: it never arrives here", fix);
		else if (r->implicit_mx)
			doc_add(d, DOC_WARN, "dns.mx", dom, found, "senders fall back to the domain's "
			    "address (RFC 5321 5.1), but an explicit MX is what every checker and "
			    "MTA-STS expect", fix);
		else
			doc_add(d, DOC_OK, "dns.mx", dom, found, NULL, NULL);
		break;
	case DNS_NULLMX:
		doc_add(d, DOC_FAIL, "dns.mx", dom, "a null MX (\"0 .\", RFC 7505): the domain says "
		    "it accepts no mail, yet it is in local_domains", "every sender bounces mail "
		    "for it at once", "replace the null MX: publish the MX record of this host");
		break;
	case DNS_NXDOMAIN:
		snprintf(found, sizeof(found), "does not exist in the DNS (%s)", r->why);
		doc_add(d, DOC_FAIL, "dns.mx", dom, found, "mail for it bounces everywhere", fix);
		break;
	case DNS_NOHOSTS:
		snprintf(found, sizeof(found), "no MX record and no address: %s", r->why);
		doc_add(d, DOC_FAIL, "dns.mx", dom, found, "mail for it bounces everywhere", fix);
		break;
	default:
		snprintf(found, sizeof(found), "the lookup fails: %s", r->why);
		doc_add(d, DOC_FAIL, "dns.mx", dom, found, "senders defer mail for it until their "
		    "queue lifetime ends, then bounce it", "check the zone's name servers (dig MX "
		    "DOMAIN): an MX whose host has no address is dropped, and none left fails "
		    "the lookup");
		break;
	}
	free(r);
}

void
doc_check_dns_host(struct doctor *d)
{
	check_host(d);
	if (d->dns_dead)
		return;
	check_ptr(d);
	for (size_t i = 0; i < d->ndomains; i++)
		if (d->domain_local[i])
			check_mx(d, d->domains[i]);
}

/* ---- SPF, DKIM and DMARC of mail this host sends, judged as a receiving imsd would ---- */

/* The published SPF record of name (the first "v=spf1" TXT record), or NULL. */
static char *
spf_record_of(struct dnsq *q, const char *name)
{
	struct dnsq_answer a;
	char *r = NULL;

	if (dnsq_lookup(q, name, 16, &a) == DNSQ_OK)
		for (size_t i = 0; i < a.ntxt && r == NULL; i++)
			if (strncasecmp(a.txt[i], "v=spf1", 6) == 0 && (a.txt[i][6] == ' ' ||
			    a.txt[i][6] == '\0'))
				r = strdup(a.txt[i]);
	dnsq_answer_free(&a);
	return r;
}

/* A message from postmaster@dom as this host would send it: signed by the server's signer
 * with dom's keys. A memfd, and its length in *len; -1 with err. */
static int
message_for(struct doctor *d, const char *dom, uint64_t *len, char *err, size_t errlen)
{
	const struct conf *cf = &d->c->conf;
	const char *doms[1] = { dom };
	char msg[2048], *sig = NULL, date[64];
	size_t siglen = 0, ml;
	time_t now = time(NULL);
	struct tm tm;
	int fd, out, nsig = 0;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	ml = (size_t)snprintf(msg, sizeof(msg), "From: <postmaster@%s>\r\nTo: <postmaster@%s>\r\n"
	    "Subject: imsd doctor\r\nDate: %s\r\nMessage-ID: <doctor.%lld@%s>\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "A message as %s would send it for %s.\r\n", dom, dom, date, (long long)now,
	    cf->hostname, cf->hostname, dom);
	if ((fd = memfd_create("imsd-doctor", MFD_CLOEXEC)) < 0 ||
	    write(fd, msg, ml) != (ssize_t)ml) {
		snprintf(err, errlen, "memfd: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (dkim_sign_message(&d->c->dkim, doms, 1, fd, 0, ml, &sig, &siglen, &nsig, err,
	    errlen) < 0) {
		close(fd);
		return -1;
	}
	if ((out = memfd_create("imsd-doctor-signed", MFD_CLOEXEC)) < 0 ||
	    (siglen > 0 && write(out, sig, siglen) != (ssize_t)siglen) ||
	    write(out, msg, ml) != (ssize_t)ml) {
		snprintf(err, errlen, "memfd: %s", strerror(errno));
		free(sig);
		close(fd);
		if (out >= 0)
			close(out);
		return -1;
	}
	free(sig);
	close(fd);
	*len = siglen + ml;
	return out;
}

static void
spf_line(struct doctor *d, struct dnsq *q, const char *check, const char *identity,
    const char *name, const struct netaddr *a, const struct spf_verdict *v)
{
	char subject[400], found[1200], fix[2000], rec[1200], line[1400], b[NETADDR_STRLEN];
	char *published = NULL;
	const char *why = "receivers (Gmail, Outlook, Yahoo) refuse or junk mail that SPF does "
	    "not allow, and DMARC then rests on DKIM alone";

	netaddr_str(a, b, sizeof(b));
	snprintf(subject, sizeof(subject), "%s from %s", name, b);
	snprintf(found, sizeof(found), "%s for %s: %s%s%s", spf_res_name(v->result), identity,
	    v->why[0] ? v->why : "", v->domain[0] && strcasecmp(v->domain, name) != 0 ?
	    " (record of " : "", v->domain[0] && strcasecmp(v->domain, name) != 0 ? v->domain :
	    "");
	if (v->domain[0] && strcasecmp(v->domain, name) != 0)
		strncat(found, ")", sizeof(found) - strlen(found) - 1);
	if (v->result == SPFR_PASS) {
		doc_add(d, DOC_OK, check, subject, found, NULL, NULL);
		return;
	}
	if (v->result != SPFR_PERMERROR && v->result != SPFR_TEMPERROR)
		published = spf_record_of(q, name);
	doc_spf_with(published, d->addrs, d->naddrs, rec, sizeof(rec));
	doc_rr_txt(name, rec, 0, line, sizeof(line));
	switch (v->result) {
	case SPFR_TEMPERROR:
		doc_add(d, DOC_WARN, check, subject, found, "a receiver that cannot evaluate SPF "
		    "defers the mail or treats it as unauthenticated", "check the name servers of "
		    "the domain and of every include:");
		break;
	case SPFR_PERMERROR:
		snprintf(fix, sizeof(fix), "correct the record (%s); a record for this host "
		    "alone: %s", v->why, line);
		doc_add(d, DOC_FAIL, check, subject, found, "a broken record is treated as no "
		    "record, or as a failure", fix);
		break;
	case SPFR_NEUTRAL:
		snprintf(fix, sizeof(fix), "publish %s", line);
		doc_add(d, DOC_WARN, check, subject, found, "neutral proves nothing: receivers "
		    "treat the mail as unauthenticated", fix);
		break;
	default:
		snprintf(fix, sizeof(fix), "publish %s", line);
		doc_add(d, DOC_FAIL, check, subject, found, why, fix);
		break;
	}
	free(published);
}

static const struct dkim_key *
key_of(const struct dkim_keys *k, const char *dom, const char *sel)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcasecmp(k->k[i].domain, dom) == 0 && strcmp(k->k[i].selector, sel) == 0)
			return &k->k[i];
	return NULL;
}

static void
dkim_lines(struct doctor *d, const char *dom, const struct authcheck_out *out)
{
	const struct dkim_keys *keys = &d->c->dkim;
	char subject[400], found[1400], fix[2400], rec[2000];
	int any = 0;

	for (size_t i = 0; i < keys->n; i++) {
		const struct dkim_key *k = &keys->k[i];
		const struct dkim_sigres *s = NULL;
		if (strcasecmp(k->domain, dom) != 0)
			continue;
		any = 1;
		for (size_t j = 0; j < out->nsigs; j++)
			if (strcasecmp(out->sigs[j].domain, dom) == 0 &&
			    strcmp(out->sigs[j].selector, k->selector) == 0 &&
			    key_of(keys, dom, k->selector) == k)
				s = &out->sigs[j];
		snprintf(subject, sizeof(subject), "%s._domainkey.%s", k->selector, dom);
		doc_rr_txt(subject, k->dns_record, 0, rec, sizeof(rec));
		snprintf(fix, sizeof(fix), "publish %s", rec);
		if (s == NULL) {
			snprintf(found, sizeof(found), "the signer made no signature with %s",
			    k->file);
			doc_add(d, DOC_FAIL, "dns.dkim", subject, found, "mail from the domain goes "
			    "out unsigned", "see imsd check");
		} else if (s->result == DKR_PASS) {
			snprintf(found, sizeof(found), "the published key matches %s (%s %d bits, "
			    "%s): a signature made by this host verifies", k->file, k->ed25519 ?
			    "Ed25519" : "RSA", k->bits, s->alg);
			doc_add(d, k->ed25519 || k->bits >= 2048 ? DOC_OK : DOC_WARN, "dns.dkim",
			    subject, found, "RSA keys under 2048 bits are refused by some receivers "
			    "and weak against all", "imsd dkim-keygen a new 2048-bit key under a new "
			    "selector, publish it, switch dkim_sign to it");
		} else {
			snprintf(found, sizeof(found), "a signature made by this host with %s does "
			    "not verify: %s: %s", k->file, dkim_res_name(s->result), s->why);
			doc_add(d, s->result == DKR_TEMPERROR ? DOC_WARN : DOC_FAIL, "dns.dkim", subject,
			    found, "receivers see a broken signature: DMARC then rests on SPF "
			    "alone, and forwarded mail fails it", fix);
		}
	}
	if (!any) {
		snprintf(found, sizeof(found), "no dkim_sign key: mail from %s goes out unsigned",
		    dom);
		snprintf(fix, sizeof(fix), "imsd dkim-keygen %s s1 /etc/imsd/dkim/%s.s1.key; "
		    "publish the record it prints; add dkim_sign = %s:s1:/etc/imsd/dkim/%s.s1.key",
		    dom, dom, dom, dom);
		doc_add(d, DOC_WARN, "dns.dkim", dom, found, "Gmail and Yahoo want DKIM (bulk "
		    "senders must have it); without it forwarded mail fails DMARC", fix);
	}
}

static void
dmarc_line(struct doctor *d, const char *dom, const struct authcheck_out *out, int spf_known)
{
	const struct dmarc_verdict *v = &out->dmarc;
	char found[1400], fix[1200], rec[600], line[900], name[300];

	snprintf(name, sizeof(name), "_dmarc.%s", dom);
	snprintf(rec, sizeof(rec), "v=DMARC1; p=none; rua=mailto:postmaster@%s", dom);
	doc_rr_txt(name, rec, 0, line, sizeof(line));
	if (v->record_domain[0] == '\0' && v->result != DMR_TEMPERROR) {
		snprintf(found, sizeof(found), "no DMARC record (%s)", v->why[0] ? v->why :
		    dmarc_res_name(v->result));
		snprintf(fix, sizeof(fix), "publish %s (and raise p= once the reports show only "
		    "your own mail)", line);
		doc_add(d, DOC_FAIL, "dns.dmarc", dom, found, "Gmail and Yahoo require a DMARC "
		    "record of bulk senders and trust mail of domains without one less", fix);
		return;
	}
	snprintf(found, sizeof(found), "%s: p=%s at _dmarc.%s; mail from %s sent by this host: "
	    "%s%s%s", dmarc_res_name(v->result), dmarc_pol_name(v->published), v->record_domain,
	    dom, dmarc_res_name(v->result), v->why[0] ? " -- " : "", v->why);
	switch (v->result) {
	case DMR_PASS:
		doc_add(d, DOC_OK, "dns.dmarc", dom, found, NULL, NULL);
		break;
	case DMR_TEMPERROR:
		doc_add(d, DOC_WARN, "dns.dmarc", dom, found, "a receiver that cannot evaluate "
		    "DMARC may defer the mail", "check the domain's name servers");
		break;
	default:
		doc_add(d, v->published == DMP_NONE && v->result == DMR_FAIL ? DOC_WARN : DOC_FAIL,
		    "dns.dmarc", dom, found, v->published == DMP_REJECT ? "receivers refuse mail "
		    "that fails a p=reject policy" : v->published == DMP_QUARANTINE ? "receivers "
		    "put mail that fails a p=quarantine policy in the spam folder" : "mail that "
		    "fails DMARC is trusted less, even under p=none", spf_known ? "make SPF or DKIM "
		    "pass for the domain (the dns.spf and dns.dkim lines)" : "make DKIM pass for "
		    "the domain (dns.dkim), and give doctor the public address (--address)");
		break;
	}
}

static void
check_auth(struct doctor *d, struct dnsq *q, const char *dom, int *helo_done)
{
	const struct conf *cf = &d->c->conf;
	char err[300], sender[300];
	size_t na = d->naddrs ? (d->naddrs < AUTH_MAX_ADDRS ? d->naddrs : AUTH_MAX_ADDRS) : 1;
	struct authcheck_out worst;
	int have_worst = 0;
	uint64_t len;
	int fd;

	memset(&worst, 0, sizeof(worst));
	if ((fd = message_for(d, dom, &len, err, sizeof(err))) < 0) {
		doc_add(d, DOC_FAIL, "dns.dkim", dom, err, "doctor cannot sign a message",
		    "see imsd check");
		return;
	}
	snprintf(sender, sizeof(sender), "postmaster@%s", dom);
	for (size_t i = 0; i < na; i++) {
		struct authcheck_in in;
		struct authcheck_out out;

		memset(&in, 0, sizeof(in));
		in.conf = cf;
		if (d->naddrs)
			in.client = d->addrs[i];
		else
			netaddr_parse("0.0.0.0", &in.client);
		in.helo = cf->hostname;
		in.sender = sender;
		in.fd = fd;
		in.len = len;
		authcheck_inbound(&in, &out);
		if (d->naddrs) {
			spf_line(d, q, "dns.spf", sender, dom, &in.client, &out.mfrom);
			if (!helo_done[i]) {
				spf_line(d, q, "dns.spf-helo", cf->hostname, cf->hostname, &in.client,
				    &out.helo);
				helo_done[i] = 1;
			}
		}
		if (!have_worst || (worst.dmarc.result == DMR_PASS && out.dmarc.result != DMR_PASS)) {
			authcheck_out_free(&worst);
			worst = out;
			have_worst = 1;
		} else
			authcheck_out_free(&out);
	}
	close(fd);
	dkim_lines(d, dom, &worst);
	dmarc_line(d, dom, &worst, d->naddrs > 0);
	authcheck_out_free(&worst);
}

/* ---- MTA-STS and TLS-RPT (published or not: both optional) ---- */

struct stsrun {
	struct ev_loop *loop;
	struct dns *dns;
	int done;
	time_t deadline;
	int have;
	struct mtasts_policy p;
	char note[300];
};

static void
sts_done(void *arg, const struct mtasts_policy *p, const char *note)
{
	struct stsrun *s = arg;

	s->done = 1;
	if (p != NULL) {
		s->p = *p;
		s->have = 1;
	}
	str_copy(s->note, sizeof(s->note), note);
	ev_loop_break(s->loop);
}

static void
sts_tick(void *arg)
{
	struct stsrun *s = arg;

	dns_tick(s->dns);
	if (!s->done && time(NULL) >= s->deadline) {
		snprintf(s->note, sizeof(s->note), "no answer within %d s", STS_FETCH_SECONDS + 10);
		s->done = 1;
		ev_loop_break(s->loop);
	}
}

/* The policy as the relay discovers it (deliver/sts: TXT, then HTTPS): 1 a policy, 0 none
 * (note says why). */
static int
fetch_policy(struct doctor *d, const char *dom, struct stsrun *s)
{
	const struct conf *cf = &d->c->conf;
	struct sts *sts;
	struct sts_query *q;
	char err[300];

	memset(s, 0, sizeof(*s));
	if (d->c->client_verify == NULL &&
	    (d->c->client_verify = tls_client_verify_ctx_new(cf->smtp_tls_ca_file, err,
	    sizeof(err))) == NULL) {
		snprintf(s->note, sizeof(s->note), "%s", err);
		return 0;
	}
	if ((s->loop = ev_loop_new()) == NULL) {
		snprintf(s->note, sizeof(s->note), "event loop: out of resources");
		return 0;
	}
	if ((s->dns = dns_new(s->loop, cf->dns_servers, cf->ndns_servers, err, sizeof(err))) ==
	    NULL || (sts = sts_new(s->loop, s->dns)) == NULL) {
		snprintf(s->note, sizeof(s->note), "resolver: %s", s->dns ? "out of memory" : err);
		dns_free(s->dns);
		ev_loop_free(s->loop);
		return 0;
	}
	if ((q = sts_get(sts, d->c, dom, sts_done, s)) == NULL)
		snprintf(s->note, sizeof(s->note), "the discovery cannot be started");
	else {
		s->deadline = time(NULL) + STS_FETCH_SECONDS + 10;
		ev_loop_run(s->loop, sts_tick, NULL, s);
		if (!s->done)
			sts_cancel(q);
	}
	sts_free(sts);
	dns_free(s->dns);
	ev_loop_free(s->loop);
	return s->have;
}

static void
check_mtasts(struct doctor *d, struct dnsq *q, const char *dom)
{
	char name[300], id[MTASTS_ID_MAX + 1], why[300], found[1400], fix[2000], line[600];
	char pol[1200], pid[40], polshow[1200];
	const char *mx[DOC_MX_MAX];
	struct dnsq_answer a;
	struct stsrun s;
	int records = 0, bad = 0;
	size_t nmx = 0;

	snprintf(name, sizeof(name), "_mta-sts.%s", dom);
	if (dnsq_lookup(q, name, 16, &a) == DNSQ_TEMPFAIL) {
		snprintf(found, sizeof(found), "the TXT lookup of %s failed: %s", name, a.why);
		doc_add(d, DOC_WARN, "dns.mta-sts", dom, found, "senders that cannot look it up "
		    "use a policy they cached, or none", "check the zone's name servers");
		dnsq_answer_free(&a);
		return;
	}
	for (size_t i = 0; i < a.ntxt; i++) {
		int r = mtasts_txt_parse(a.txt[i], strlen(a.txt[i]), id, why, sizeof(why));
		records += r != 0;
		bad |= r < 0;
	}
	dnsq_answer_free(&a);
	for (size_t i = 0; i < d->nmx; i++)
		mx[nmx++] = d->mx[i];
	if (nmx == 0)
		mx[nmx++] = d->c->conf.hostname;
	doc_mtasts_policy(mx, nmx, "testing", pol, sizeof(pol));
	doc_mtasts_id(pol, pid, sizeof(pid));
	snprintf(polshow, sizeof(polshow), "%s", pol);
	for (char *p = polshow; *p; p++)
		if (*p == '\r')
			*p = ' ';
		else if (*p == '\n')
			*p = '|';
	if (records == 0) {
		doc_add(d, DOC_OK, "dns.mta-sts", dom, "not published (optional: with a policy, "
		    "senders such as Gmail require verified TLS to this host; imsd dns-records "
		    "shows one)", NULL, NULL);
		return;
	}
	snprintf(line, sizeof(line), "v=STSv1; id=%s", pid);
	doc_rr_txt(name, line, 0, found, sizeof(found));
	snprintf(fix, sizeof(fix), "publish one record: %s, and serve the policy at "
	    "https://mta-sts.%s/.well-known/mta-sts.txt: %s", found, dom, polshow);
	if (bad || records > 1) {
		snprintf(found, sizeof(found), "%s: %s", name, bad ? "a malformed STSv1 record" :
		    "more than one STSv1 record (RFC 8461 3.1: then there is none)");
		doc_add(d, DOC_FAIL, "dns.mta-sts", dom, found, "senders ignore the policy", fix);
		return;
	}
	if (!fetch_policy(d, dom, &s)) {
		snprintf(found, sizeof(found), "the TXT record is there, the policy is not: %s",
		    s.note);
		doc_add(d, DOC_FAIL, "dns.mta-sts", dom, found, "a published record whose policy "
		    "cannot be fetched makes senders keep an old policy or use none, and is what "
		    "TLS reports complain about", fix);
		return;
	}
	{
		char missing[600] = "", unverified[800] = "";
		size_t mo = 0, uo = 0;
		for (size_t i = 0; i < d->nmx; i++) {
			if (!mtasts_mx_match(&s.p, d->mx[i]))
				mo += (size_t)snprintf(missing + mo, sizeof(missing) > mo ?
				    sizeof(missing) - mo : 0, "%s%s", mo ? ", " : "", d->mx[i]);
			else if (!d->mx_tls_ok[i])
				uo += (size_t)snprintf(unverified + uo, sizeof(unverified) > uo ?
				    sizeof(unverified) - uo : 0, "%s%s (%s)", uo ? "; " : "", d->mx[i],
				    d->mx_tls_why[i]);
		}
		if (mo > 0) {
			snprintf(found, sizeof(found), "%s (mode %s): the policy's mx patterns do "
			    "not match the MX host%s %s", s.note, mtasts_mode_name(s.p.mode),
			    strchr(missing, ',') ? "s" : "", missing);
			doc_add(d, s.p.mode == MTASTS_ENFORCE ? DOC_FAIL : DOC_WARN, "dns.mta-sts", dom,
			    found, s.p.mode == MTASTS_ENFORCE ? "senders enforcing the policy refuse "
			    "to deliver to an MX it does not list" : "in mode testing senders report "
			    "the mismatch; in enforce they would refuse", fix);
		} else if (s.p.mode == MTASTS_ENFORCE && uo > 0) {
			snprintf(found, sizeof(found), "%s (mode enforce), but the certificate does "
			    "not verify for %s", s.note, unverified);
			doc_add(d, DOC_FAIL, "dns.mta-sts", dom, found, "in mode enforce senders "
			    "verify the MX certificate and defer mail when it fails",
			    "a certificate from a public CA naming each MX host (see tls.chain and "
			    "tls.names)");
		} else {
			snprintf(found, sizeof(found), "%s: mode %s, max_age %u, every MX of this "
			    "host listed", s.note, mtasts_mode_name(s.p.mode), s.p.max_age);
			doc_add(d, s.p.mode == MTASTS_NONE ? DOC_WARN : DOC_OK, "dns.mta-sts", dom,
			    found, "mode none withdraws the policy", "switch the policy to mode "
			    "testing or enforce and change its id");
		}
	}
}

static void
check_tlsrpt(struct doctor *d, struct dnsq *q, const char *dom)
{
	char name[300], why[300], found[1200], fix[900], rec[400];
	struct dnsq_answer a;
	int records = 0, bad = 0;
	size_t nuris = 0;

	snprintf(name, sizeof(name), "_smtp._tls.%s", dom);
	snprintf(rec, sizeof(rec), "v=TLSRPTv1; rua=mailto:postmaster@%s", dom);
	doc_rr_txt(name, rec, 0, found, sizeof(found));
	snprintf(fix, sizeof(fix), "publish one record: %s", found);
	if (dnsq_lookup(q, name, 16, &a) == DNSQ_TEMPFAIL) {
		snprintf(found, sizeof(found), "the TXT lookup of %s failed: %s", name, a.why);
		doc_add(d, DOC_WARN, "dns.tls-rpt", dom, found, "senders cannot find where to "
		    "report TLS failures", "check the zone's name servers");
		dnsq_answer_free(&a);
		return;
	}
	why[0] = '\0';
	for (size_t i = 0; i < a.ntxt; i++) {
		size_t n = 0;
		int r = doc_tlsrpt_check(a.txt[i], &n, why, sizeof(why));
		records += r != 0;
		bad |= r < 0;
		nuris += n;
	}
	dnsq_answer_free(&a);
	if (records == 0)
		doc_add(d, DOC_OK, "dns.tls-rpt", dom, "not published (optional: senders report "
		    "failed TLS to the address it names)", NULL, NULL);
	else if (bad || records > 1) {
		snprintf(found, sizeof(found), "%s: %s", name, bad ? why : "more than one "
		    "TLSRPTv1 record (RFC 8460 3: then there is none)");
		doc_add(d, DOC_FAIL, "dns.tls-rpt", dom, found, "senders send no TLS reports", fix);
	} else {
		snprintf(found, sizeof(found), "%s: reports go to %zu address%s", name, nuris,
		    nuris == 1 ? "" : "es");
		doc_add(d, DOC_OK, "dns.tls-rpt", dom, found, NULL, NULL);
	}
}

static void
check_lists(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;

	if (cf->ndnsbl == 0)
		return;
	for (size_t i = 0; i < d->naddrs; i++) {
		struct dnsbl_result r;
		char b[NETADDR_STRLEN], found[800];
		size_t zo = 0;
		char zones[400] = "";

		netaddr_str(&d->addrs[i], b, sizeof(b));
		authcheck_dnsbl(cf, &d->addrs[i], &r);
		for (size_t z = 0; z < cf->ndnsbl; z++)
			zo += (size_t)snprintf(zones + zo, sizeof(zones) > zo ? sizeof(zones) - zo : 0,
			    "%s%s", zo ? ", " : "", cf->dnsbl[z].zone);
		if (r.score > 0) {
			snprintf(found, sizeof(found), "listed: %s", r.log);
			doc_add(d, DOC_FAIL, "dns.blocklist", b, found, "receivers that use these "
			    "lists refuse mail from this address", "find the cause (an open relay, "
			    "a compromised account: see the log), then ask each list to delist the "
			    "address on its lookup page");
		} else {
			snprintf(found, sizeof(found), "not listed on %s (the dnsbl zones of the "
			    "configuration)%s%s", zones, r.log[0] ? "; " : "", r.log);
			doc_add(d, DOC_OK, "dns.blocklist", b, found, NULL, NULL);
		}
	}
}

void
doc_check_dns_auth(struct doctor *d)
{
	struct dnsq *q;
	int helo_done[AUTH_MAX_ADDRS] = { 0 };

	if (d->dns_dead)
		return;
	if (d->ndomains == 0) {
		doc_add(d, DOC_OK, "dns.domains", d->c->conf.hostname, "no local or signing domain "
		    "other hosts can look up (local_domains names only local names): nothing to "
		    "publish", NULL, NULL);
		return;
	}
	/* one dnsq (one deadline) per domain */
	for (size_t i = 0; i < d->ndomains; i++) {
		if ((q = new_dnsq(d, 20000)) == NULL)
			return;
		check_auth(d, q, d->domains[i], helo_done);
		dnsq_free(q);
	}
	for (size_t i = 0; i < d->ndomains; i++)
		if (d->domain_local[i]) {
			if ((q = new_dnsq(d, 20000)) == NULL)
				return;
			check_mtasts(d, q, d->domains[i]);
			check_tlsrpt(d, q, d->domains[i]);
			dnsq_free(q);
		}
	check_lists(d);
}
