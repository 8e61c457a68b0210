/*
 * doctor — `imsd doctor`: the host checks itself and says what to publish; and
 * `imsd dns-records DOMAIN`: the records to publish, ready to paste into a zone file.
 *
 * Every check judges with the code the server (or a sending MTA built like imsd's relay)
 * uses for the same decision, never a restatement: the configuration is loaded by cfg_load,
 * as the run user too; the spool and mailboxes are judged by queue/spool_layout, the table
 * their creators take their modes from; the certificate by a TLS handshake inside this
 * process between the server's own context and the relay's verifying and DANE contexts;
 * MX routes by the relay's resolver (deliver/dns); SPF, DKIM and DMARC by authcheck_inbound
 * on a message signed by the server's signer, exactly as a receiving imsd would judge mail
 * from this host; MTA-STS by the relay's discovery (deliver/sts); STARTTLS by tls_offer.
 *
 * Each check gives one line: ok / warn / fail, the check's name and subject, what was
 * found, and for warn and fail why it matters and the exact fix. The parts:
 *   doctor.c          the run, the lines, text and JSON output, dns-records
 *   doctor_conf.c     configuration (as the run user), host name, /etc/mailname
 *   doctor_spool.c    spool_dir and mail_dir: kinds, owners, modes, free space
 *   doctor_tls.c      certificate, chain, names, expiry, protocols, STARTTLS offer, DANE
 *   doctor_dns.c      addresses, A/AAAA, PTR, MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, lists
 *   doctor_service.c  systemd unit, listeners, the queue
 *   doctor_rules.c    the pure judgements and record texts (unit-tested)
 */
#ifndef IMSD_DOCTOR_H
#define IMSD_DOCTOR_H

#include <stdio.h>
#include <sys/types.h>

#include "cfg/cfg.h"
#include "cli/doctor_rules.h"
#include "deliver/dns.h"
#include "util/addr.h"

#define DOC_ADDRS_MAX	16	/* public addresses of this host looked at */
#define DOC_DOMAINS_MAX	64	/* domains checked (local and signing) */
#define DOC_MX_MAX	16	/* MX host names of this host kept */
#define DOC_DNS_SECONDS	20	/* bound on one lookup through the relay's resolver */

struct doc_line {
	enum doc_status st;
	char check[32];		/* "dns.spf" */
	char subject[256];	/* "example.org", "198.51.100.10", a path */
	char found[1200];
	char why[600];
	char fix[2400];
};

struct doctor {
	struct cfg *c;			/* the configuration, loaded as the server loads it */
	const char *conf_path;		/* NULL: the embedded default */
	int json;
	int quiet;			/* dns-records: the lines are not printed */
	FILE *out;
	struct doc_line *lines;
	size_t nlines, cap;
	/* this host, as the world should see it */
	struct netaddr addrs[DOC_ADDRS_MAX];
	size_t naddrs;
	int addrs_given;		/* --address */
	char addrs_from[300];		/* how they were found */
	/* the run user */
	char run_user[64];
	uid_t run_uid;
	gid_t run_gid;
	int run_user_known;
	/* domains to look at: local_domains and dkim_sign domains the world can look up */
	char domains[DOC_DOMAINS_MAX][256];
	int domain_local[DOC_DOMAINS_MAX];
	size_t ndomains;
	/* MX host names found pointing at this host (TLS names, DANE, MTA-STS), and whether
	 * a verifying sender accepts the certificate for each (doctor_tls.c) */
	char mx[DOC_MX_MAX][256];
	size_t nmx;
	int mx_tls_ok[DOC_MX_MAX];
	char mx_tls_why[DOC_MX_MAX][200];
	int server_running;		/* a server holds the spool lock */
	int dns_dead;			/* the resolver does not answer: DNS checks skipped */
};

/* Add a line (printed at once in text mode). found, why, fix: plain text ("" or NULL for
 * none; why and fix are left out of ok lines). */
void doc_add(struct doctor *d, enum doc_status st, const char *check, const char *subject,
    const char *found, const char *why, const char *fix);

/* The parts, in the order they run. */
int doc_check_config(struct doctor *d);	/* 0: d->c loaded; -1: nothing else can run */
void doc_check_spool(struct doctor *d);
void doc_find_addresses(struct doctor *d);	/* with its line */
void doc_collect_addresses(struct doctor *d);	/* the same, silently */
void doc_check_dns_host(struct doctor *d);	/* A/AAAA, PTR, MX (fills d->mx) */
void doc_check_tls(struct doctor *d);
void doc_check_dns_auth(struct doctor *d);	/* SPF, DKIM, DMARC, MTA-STS, TLS-RPT, lists */
void doc_check_service(struct doctor *d);
void doc_check_queue(struct doctor *d);	/* last: may become the spool's owner for good */

/* Shared by the parts. */

/* One lookup through the relay's resolver (deliver/dns), run to its end: the route of a
 * domain (MX, else implicit MX), the addresses of a host, or a TLSA answer. */
enum doc_lookup { DOC_LOOKUP_MAIL, DOC_LOOKUP_HOST, DOC_LOOKUP_TLSA };

struct doc_host {
	char name[256];
	unsigned pref;
	struct netaddr addrs[DNS_MAX_ADDRS];
	size_t naddrs;
};

struct doc_route {
	enum dns_status status;
	char why[160];
	int implicit_mx;
	struct doc_host hosts[DNS_MAX_MX];
	size_t nhosts;
	int have_tlsa;
	struct tlsa_answer tlsa;
};

/* 0 answered (r->status says how), -1 the lookup could not be made (r->why). */
int doc_resolve(const struct doctor *d, enum doc_lookup kind, const char *name,
    struct doc_route *r);
int doc_addr_is_ours(const struct doctor *d, const struct netaddr *a);
/* The TLSA record "3 1 1 HEX" of the server's certificate, or "" when there is none. */
const char *doc_tlsa_311(const struct doctor *d, char *buf, size_t len);

/* imsd doctor and imsd dns-records (main.c parses -c and the flags). */
int cli_doctor(const char *conf_path, int json, const char *const *addrs, size_t naddrs);
int cli_dns_records(const char *conf_path, const char *domain, const char *const *addrs,
    size_t naddrs);

#endif
