/*
 * imsd explain-recipient ADDRESS — see cli.h.
 *
 * The first word of the output is the verdict: `local` (delivered to Maildirs here, after
 * any aliases), `relay` (sent on to another server) or `refused` (RCPT would be refused).
 * Then, one fact a line: the alias expansion from recipients_file, the mailboxes, the
 * route (relayhost, or the MX list with preferences and addresses from the resolver the
 * relay uses, dns_servers), whether TLS is used, and the queued mail for the address (its
 * last attempt and next retry). Exit 0 whatever the verdict; 1 when ADDRESS is not an
 * address; 2 when the spool cannot be read.
 *
 * The verdict is policy/rcpt's rcpt_decide, the one RCPT asks (judged for a client that
 * may relay; who may is printed beside it), and the alias expansion is recipients_expand,
 * the walk RCPT makes: what is explained is what RCPT does.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "deliver/dns.h"
#include "deliver/route.h"
#include "net/ev.h"
#include "policy/outtls.h"
#include "policy/rcpt.h"
#include "proto/smtp_path.h"
#include "queue/queue.h"
#include "util/log.h"
#include "util/intl.h"
#include "util/str.h"
#include "util/utf8.h"

#define EXPLAIN_DNS_SECONDS	20	/* bound on one lookup (c-ares gives up sooner) */
#define ADDR_MAX		(SMTP_LOCAL_MAX + SMTP_DOMAIN_MAX + 2)

struct explain {
	const struct cfg *c;
	/* addresses the mail ends at (mailboxes and relayed targets), for the queue scan */
	char **finals;
	size_t nfinals;
	int any_local, any_relay, refused;
	FILE *out;		/* where the expansion is written (it precedes its verdict) */
};

static void
lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static void
add_final(struct explain *e, const char *addr)
{
	char **n = realloc(e->finals, (e->nfinals + 1) * sizeof(*n));
	char *d = strdup(addr);

	if (n == NULL || d == NULL) {
		free(d);
		if (n != NULL)
			e->finals = n;
		return;
	}
	e->finals = n;
	e->finals[e->nfinals++] = d;
}

static void
print_list_cidrs(const struct conf *cf)
{
	char b[NETADDR_STRLEN];

	if (cf->nrelay_networks == 0)
		printf(" (none)");
	for (size_t i = 0; i < cf->nrelay_networks; i++)
		printf(" %s/%d", netaddr_str(&cf->relay_networks[i].net, b, sizeof(b)),
		    cf->relay_networks[i].prefix);
}

/* ---- the route: relayhost or MX, through the relay's resolver ---- */

struct lookup {
	struct explain *e;
	struct ev_loop *loop;
	struct dns *dns;
	const char *what;	/* the name looked up */
	uint16_t port;
	int done;
	time_t deadline;
};

/* Is host:port one of this server's own listeners (relay.c's target_is_self)? */
static int
is_self(const struct conf *cf, const char *host, const struct netaddr *a, uint16_t port)
{
	const struct hostport *lists[3] = { cf->listen, cf->submission_listen, cf->smtps_listen };
	size_t ns[3] = { cf->nlisten, cf->nsubmission_listen, cf->nsmtps_listen };

	if (strcasecmp(host, cf->hostname) == 0)
		return 1;
	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < ns[k]; i++)
			if (lists[k][i].port == port && (netaddr_equal(&lists[k][i].addr, a) ||
			    (netaddr_is_any(&lists[k][i].addr) && netaddr_is_loopback(a))))
				return 1;
	return 0;
}

static void
lookup_done(void *arg, const struct dns_result *res)
{
	struct lookup *l = arg;
	const struct conf *cf = &l->e->c->conf;
	char b[NETADDR_STRLEN];

	l->done = 1;
	ev_loop_break(l->loop);
	switch (res->status) {
	case DNS_OK:
		if (res->implicit_mx)
			printf("    no MX records: the domain's own address is used (implicit MX, "
			    "RFC 5321 section 5.1)\n");
		for (size_t h = 0; h < res->nhosts; h++) {
			const struct dns_host *dh = &res->hosts[h];
			int self = 0;

			if (res->implicit_mx)
				printf("    host %s:", dh->name);
			else
				printf("    MX %u %s:", dh->pref, dh->name);
			for (size_t a = 0; a < dh->naddrs; a++) {
				printf(" %s", netaddr_str(&dh->addrs[a], b, sizeof(b)));
				self |= is_self(cf, dh->name, &dh->addrs[a], l->port);
			}
			printf(" port %u%s\n", (unsigned)l->port, self ? "  (this server itself: "
			    "this host and those after it are not used; none left bounces with 5.4.6)" :
			    "");
		}
		printf("    tried in this order (equal preferences in random order), each address "
		    "until one answers\n");
		break;
	case DNS_NXDOMAIN:
	case DNS_NOHOSTS:
		printf("    %s: no route (%s): the recipient bounces with 5.1.2\n", l->what, res->why);
		break;
	case DNS_NULLMX:
		printf("    %s accepts no mail (null MX, RFC 7505): the recipient bounces with "
		    "5.1.10\n", l->what);
		break;
	default:
		printf("    lookup failed for now (%s): delivery is deferred with 4.4.3 and "
		    "retried\n", res->why);
		break;
	}
}

static void
lookup_tick(void *arg)
{
	struct lookup *l = arg;

	dns_tick(l->dns);
	if (!l->done && time(NULL) >= l->deadline) {
		printf("    no answer from the resolver within %d s: delivery would be deferred "
		    "and retried\n", EXPLAIN_DNS_SECONDS);
		l->done = 1;
		ev_loop_break(l->loop);
	}
}

/* Resolve name (host_only: A/AAAA; else MX) and print the hosts; 0 ok, -1 resolver unusable. */
static int
resolve_print(struct explain *e, const char *name, int host_only, uint16_t port)
{
	const struct conf *cf = &e->c->conf;
	struct lookup l = { .e = e, .what = name, .port = port };
	char err[256], b[NETADDR_STRLEN];
	struct dns_query *q;

	printf("    resolver: ");
	if (cf->ndns_servers == 0)
		printf("the nameservers of /etc/resolv.conf (dns_servers unset)");
	for (size_t i = 0; i < cf->ndns_servers; i++)
		printf("%s%s", i ? ", " : "dns_servers ", hostport_str(&cf->dns_servers[i], b,
		    sizeof(b)));
	printf("; %s lookup for %s\n", host_only ? "A/AAAA" : "MX", name);
	fflush(stdout);
	if ((l.loop = ev_loop_new()) == NULL) {
		fprintf(stderr, "imsd: explain-recipient: event loop: out of resources\n");
		return -1;
	}
	if ((l.dns = dns_new(l.loop, cf->dns_servers, cf->ndns_servers, err, sizeof(err))) == NULL) {
		printf("    the resolver cannot be set up: %s\n", err);
		ev_loop_free(l.loop);
		return -1;
	}
	q = host_only ? dns_resolve_host(l.dns, name, lookup_done, &l) :
	    dns_resolve_mail(l.dns, name, lookup_done, &l);
	if (q == NULL)
		printf("    the lookup of %s cannot be started\n", name);
	else {
		l.deadline = time(NULL) + EXPLAIN_DNS_SECONDS;
		ev_loop_run(l.loop, lookup_tick, NULL, &l);
	}
	dns_free(l.dns);
	ev_loop_free(l.loop);
	return 0;
}

/* How mail for addr (of domain) leaves this server: the route the queue manager gives it
 * (deliver/route: relayhost, an address literal or MX hosts), and TLS as the relay judges
 * it for that route. */
static void
print_route(struct explain *e, const char *addr, const char *domain)
{
	const struct conf *cf = &e->c->conf;
	struct route rt;
	struct netaddr a;

	route_decide(cf, addr, &rt);
	if (rt.via == VIA_HOST) {
		printf("  route: relayhost %s%s%s:%u (every non-local domain goes there, no MX lookup "
		    "for %s)\n", rt.no_mx ? "[" : "", rt.nexthop, rt.no_mx ? "]" : "",
		    (unsigned)rt.port, domain);
		if (netaddr_parse(rt.nexthop, &a) == 0)
			printf("    an address: no DNS\n");
		else
			resolve_print(e, rt.nexthop, rt.no_mx, rt.port);
	} else if (rt.via == VIA_LITERAL) {
		printf("  route: the address literal %s itself, port %u (no DNS)\n", rt.nexthop,
		    (unsigned)rt.port);
	} else {
		printf("  route: MX hosts of %s, port %u (smtp_port)\n", rt.nexthop,
		    (unsigned)rt.port);
		resolve_print(e, rt.nexthop, 0, rt.port);
	}
	{
		const char *src, *entry;
		/* the relay looks the level up by the route's destination (its key) */
		int lvl = outtls_level(cf, rt.key, &src, &entry);
		char by[300];

		if (entry != NULL)
			snprintf(by, sizeof(by), "tls_policy entry %s", entry);
		else
			snprintf(by, sizeof(by), "smtp_tls%s", cf->set[CK_SMTP_TLS] ? "" :
			    ", the default");
		if (lvl == OUTTLS_MTASTS)
			printf("  tls: mta-sts (%s): the MTA-STS policy of %s (TXT _mta-sts.%s, then "
			    "https://mta-sts.%s:%u/.well-known/mta-sts.txt verified against %s) "
			    "decides at delivery: in mode enforce, TLS required by %s for %s, only MX "
			    "hosts the policy lists, and their certificates must verify (else the "
			    "message is deferred); mode testing or none, or no policy: "
			    "opportunistic\n", by, rt.key, rt.key, rt.key, (unsigned)cf->mta_sts_port,
			    cf->smtp_tls_ca_file != NULL ? cf->smtp_tls_ca_file : "the system CA store",
			    src, rt.key);
		else if (lvl == OUTTLS_DANE)
			printf("  tls: dane (%s): the TLSA records of each MX host (_%u._tcp.HOST) "
			    "are asked of dns_servers; when that resolver says they are authenticated "
			    "(AD bit, dnssec_trust_resolver = yes), TLS required by %s for %s and the "
			    "certificate must match one of them (else the message is deferred); no "
			    "TLSA records (authenticated denial) or an unsigned zone: opportunistic; "
			    "a failed TLSA lookup defers\n", by, (unsigned)cf->smtp_port, src, rt.key);
		else if (lvl == OUTTLS_VERIFY)
			printf("  tls: verify (%s): TLS required by %s for %s: STARTTLS is required "
			    "and the MX host's certificate must verify against %s and carry the MX "
			    "host name; otherwise the message is deferred, never sent in plaintext\n",
			    by, src, rt.key, cf->smtp_tls_ca_file != NULL ? cf->smtp_tls_ca_file :
			    "the system CA store");
		else
			printf("  tls: opportunistic (%s): STARTTLS is used whenever the receiving "
			    "server offers it (its certificate is not verified); plaintext when it "
			    "does not, or on a new connection after a failed handshake, so TLS is "
			    "expected but not required\n", by);
	}
}

/* ---- local delivery and aliases (session.c's expand_rcpt) ---- */

static void
indent(FILE *o, int depth)
{
	for (int i = 0; i < depth; i++)
		fputs("  ", o);
}

static void
print_mailbox(struct explain *e, const char *addr, int depth)
{
	struct route rt;

	route_decide(&e->c->conf, addr, &rt);
	indent(e->out, depth + 1);
	fprintf(e->out, "%s: local mailbox %s/%s/ (Maildir)\n", addr, e->c->conf.mail_dir,
	    rt.nexthop);
	e->any_local = 1;
	add_final(e, addr);
}

static int
explain_is_local(void *arg, const char *domain)
{
	return conf_is_local_domain(&((struct explain *)arg)->c->conf, domain);
}

/* One node of recipients_expand's walk, the one RCPT makes. */
static int
explain_visit(void *arg, enum recipients_node node, const char *addr, char *const *targets,
    size_t nt, int depth)
{
	struct explain *e = arg;
	const char *at = strrchr(addr, '@');

	switch (node) {
	case RX_ALIAS:
		indent(e->out, depth + 1);
		fprintf(e->out, "%s: alias in %s ->", addr, e->c->conf.recipients_file);
		for (size_t i = 0; i < nt; i++)
			fprintf(e->out, "%s %s", i ? "," : "", targets[i]);
		fprintf(e->out, "\n");
		break;
	case RX_MAILBOX:
		print_mailbox(e, addr, depth);
		break;
	case RX_RELAY:
		indent(e->out, depth + 1);
		fprintf(e->out, "%s: relayed (%s is not a local domain)\n", addr, at + 1);
		e->any_relay = 1;
		add_final(e, addr);
		break;
	}
	return 0;
}

static int
expand(struct explain *e, const char *addr)
{
	const char *why = NULL;

	if (recipients_expand(e->c->recipients, addr, explain_is_local, e, explain_visit, e,
	    &why) == 0)
		return 0;
	fprintf(e->out, "  the expansion stops: %s: RCPT gets 451 4.3.0\n", why);
	return -1;
}

/* ---- the queue ---- */

static int
matches(const struct explain *e, const char *query, const struct qrcpt *r)
{
	if (strcasecmp(r->addr, query) == 0 || (r->orcpt && strcasecmp(r->orcpt, query) == 0))
		return 1;
	for (size_t i = 0; i < e->nfinals; i++)
		if (strcasecmp(r->addr, e->finals[i]) == 0)
			return 1;
	return 0;
}

static void
print_when(time_t t, time_t now)
{
	struct tm tm;
	char buf[32];
	long d = (long)(t - now);

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (d > 0)
		printf("%s (in %lds)", buf, d);
	else
		printf("%s (%lds ago)", buf, -d);
}

static int
print_queue(struct explain *e, const char *query)
{
	char err[1024], **ids;
	struct queue q;
	size_t n, found = 0;
	time_t now = time(NULL);

	if (cli_queue_open(e->c->conf.spool_dir, 0, &q, err, sizeof(err)) < 0 ||
	    queue_list(&q, &ids, &n, err, sizeof(err)) < 0) {
		fprintf(stderr, "imsd: explain-recipient: %s\n", err);
		return 2;
	}
	for (size_t k = 0; k < n; k++) {
		struct qenv env;
		uint64_t off, len;
		int fd;

		if (queue_load(&q, ids[k], &env, &fd, &off, &len, err, sizeof(err)) < 0)
			continue;
		close(fd);
		for (size_t i = 0; i < env.nrcpts; i++) {
			const struct qrcpt *r = &env.rcpts[i];
			char safe[LOG_VALUE_MAX], from[LOG_VALUE_MAX];

			if (!matches(e, query, r))
				continue;
			if (found++ == 0)
				printf("queued:\n");
			/* addresses and errors come from outside: escaped as in the log */
			log_value(safe, sizeof(safe), r->addr, strlen(r->addr));
			log_addr(from, sizeof(from), env.sender);
			printf("  %s to %s (from %s, %llu bytes, arrived ", env.qid, safe, from,
			    (unsigned long long)len);
			print_when(env.arrival, now);
			printf("): ");
			if (r->state == QR_DONE)
				printf("delivered, waiting for the message's other recipients\n");
			else if (r->state == QR_FAILED)
				printf("failed (%s), bounced: %s\n", r->status,
				    log_safe(safe, sizeof(safe), r->last_error, strlen(r->last_error)));
			else if (r->attempts == 0)
				printf("pending, not tried yet; due now\n");
			else {
				log_safe(safe, sizeof(safe), r->last_error, strlen(r->last_error));
				printf("deferred after %u attempt%s, last error%s%s%s: %s; next retry ",
				    r->attempts, r->attempts == 1 ? "" : "s", r->status[0] ? " (" : "",
				    r->status, r->status[0] ? ")" : "", safe);
				if (r->next_try > now)
					print_when(r->next_try, now);
				else
					printf("due now");
				printf("\n");
			}
		}
		qenv_free(&env);
	}
	if (found == 0)
		printf("queued: nothing for this address in %s\n", e->c->conf.spool_dir);
	queue_list_free(ids, n);
	queue_close(&q);
	return 0;
}

/* ---- the command ---- */

int
cli_explain_recipient(const struct cfg *c, const char *address)
{
	const struct conf *cf = &c->conf;
	char buf[ADDR_MAX + 8], addr[RCPT_ADDR_MAX], query[ADDR_MAX + 2];
	char q[SMTP_LOCAL_MAX + 1], d[SMTP_DOMAIN_MAX + 1];
	struct explain e = { .c = c };
	struct rcpt_verdict v;
	struct smtp_path p;
	const char *rest, *why = NULL;
	size_t al = strlen(address), dl;
	int status;

	if (al == 0 || al > ADDR_MAX + 2) {
		fprintf(stderr, "imsd: explain-recipient: an address of 1 to %d characters is "
		    "needed\n", ADDR_MAX);
		return 1;
	}
	snprintf(buf, sizeof(buf), address[0] == '<' ? "%s" : "<%s>", address);
	if (smtp_path_parse(buf, strlen(buf), 0, 1, &p, &rest, &why) != SMTP_PATH_OK ||
	    *rest != '\0') {
		fprintf(stderr, "imsd: explain-recipient: %s is not an address: %s\n", address,
		    why ? why : "text after the address");
		return 1;
	}
	/* what the queue is searched for: the address as given, its domain normalised */
	str_copy(q, sizeof(q), p.local);
	str_copy(d, sizeof(d), p.domain);
	if (p.is_postmaster) {
		/* RFC 5321 section 4.5.1, as the session does */
		str_copy(d, sizeof(d), cf->local_domains[0]);
		str_copy(q, sizeof(q), "postmaster");
	}
	lower(d);
	dl = strlen(d);
	if (dl > 0 && d[dl - 1] == '.')
		d[--dl] = '\0';
	snprintf(query, sizeof(query), "%s@%s", q, d);

	rcpt_decide(cf, c->recipients, 1, &p, &v);
	if (v.refusal == RR_TOO_LONG) {
		printf("refused  %s: RCPT gets 501 5.1.3: the address is too long\n", query);
		goto queue;
	}
	if (v.refusal == RR_BAD_IDN) {
		printf("refused  %s: RCPT gets 553 5.1.3: %s\n", query, v.why);
		goto queue;
	}
	if (!p.is_literal && utf8_has_nonascii(d)) {
		/* a U-label domain is compared and looked up as its A-label */
		char a[SMTP_DOMAIN_MAX + 1];
		if (intl_domain_ascii(d, a, sizeof(a), &why) == 0)
			printf("note: %s is compared and looked up as %s (its A-label, RFC 6531)\n",
			    d, a);
	}
	if (v.refusal == RR_BAD_ROUTED) {
		printf("refused  %s: RCPT gets 501 5.1.3: the local part hides another address, "
		    "and what it hides is not an address\n", query);
		goto queue;
	}
	if (v.routed)
		printf("note: the local part hides another address (%s@%s): it is judged as that "
		    "address\n", v.local, v.domain);

	if (v.kind == RCPT_RELAY) {
		printf("relay  %s@%s: %s is not in local_domains, so the mail is sent on to another "
		    "server\n", v.local, v.domain, v.domain);
		printf("  accepted at RCPT only from relay_networks");
		print_list_cidrs(cf);
		printf(" or after AUTH; from anyone else 554 5.7.1 Relay access denied\n");
		snprintf(addr, sizeof(addr), "%s@%s", v.local, v.domain);
		add_final(&e, addr);
		print_route(&e, addr, v.domain);
		goto queue;
	}
	str_copy(addr, sizeof(addr), v.addr);
	if (v.refusal == RR_BAD_LOCAL_PART) {
		printf("refused  %s: RCPT gets 550 5.1.3: the local part cannot name a mailbox "
		    "(%s)\n", addr, v.why);
		goto queue;
	}
	if (v.refusal == RR_UNKNOWN_USER) {
		printf("refused  %s: RCPT gets 550 5.1.1 User unknown: not in recipients_file %s\n",
		    addr, cf->recipients_file);
		goto queue;
	}
	/* the verdict depends on the expansion: print it after */
	{
		char *out = NULL;
		size_t outlen = 0;
		int r;

		if ((e.out = open_memstream(&out, &outlen)) == NULL) {
			perror("imsd: explain-recipient");
			return 2;
		}
		if (c->recipients == NULL)
			fprintf(e.out, "  recipients_file is unset: every local part of a local domain is "
			    "accepted\n");
		else if (strncmp(addr, "postmaster@", 11) == 0 &&
		    recipients_lookup(c->recipients, addr, NULL, NULL) != 1)
			fprintf(e.out, "  postmaster is accepted in every local domain (RFC 5321 section "
			    "4.5.1), listed or not\n");
		r = expand(&e, addr);
		fclose(e.out);
		e.out = NULL;
		if (r < 0)
			printf("refused  %s: the alias expansion is unusable, RCPT gets 451 4.3.0\n",
			    addr);
		else if (e.any_local && e.any_relay)
			printf("local  %s: %s is a local domain; its aliases also relay to other "
			    "servers\n", addr, v.domain);
		else if (e.any_relay)
			printf("relay  %s: %s is a local domain, but the alias forwards off-site\n",
			    addr, v.domain);
		else
			printf("local  %s: %s is in local_domains\n", addr, v.domain);
		fwrite(out, 1, outlen, stdout);
		free(out);
	}
	for (size_t i = 0; i < e.nfinals; i++) {
		const char *at = strrchr(e.finals[i], '@');
		int seen = 0;

		if (conf_is_local_domain(cf, at + 1))
			continue;
		for (size_t k = 0; k < i; k++)
			seen |= strcasecmp(strrchr(e.finals[k], '@'), at) == 0;
		if (!seen) {
			printf("%s:\n", e.finals[i]);
			print_route(&e, e.finals[i], at + 1);
		}
	}
queue:
	fflush(stdout);
	status = print_queue(&e, query);
	for (size_t i = 0; i < e.nfinals; i++)
		free(e.finals[i]);
	free(e.finals);
	return status;
}
