/*
 * conf — the configuration: one schema row per key of SPEC.md, parsed and validated.
 *
 * Everything about a key lives in its row of `schema` below: its name, how its value is
 * parsed (and into which field), how it is printed back, its default as configuration
 * text, its bounds, and whether this build acts on it yet. Defaults are applied by parsing
 * the default text of every row before the file's lines, so a default can never be
 * something the parser would refuse.
 */
#include "conf/conf.h"
#include "conf/conf_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf/tlslevel.h"
#include "util/log.h"
#include "util/intl.h"
#include "util/str.h"
#include "util/utf8.h"

#define CONF_FILE_MAX	(16u << 20)	/* largest configuration file read */
#define SIZE_MAX_BYTES	(1ull << 40)	/* message_size_limit sanity bound: 1 TiB */

#define EMBEDDED_NAME	"(embedded default)"

/*
 * The embedded default (SPEC.md "Command line"): every default below is already the
 * schema default, so only the certificate paths are set; the rest is documentation.
 */
const char conf_default_text[] =
	"# imsd embedded default configuration, used when no -c FILE is given.\n"
	"# Keys left out keep their defaults; `imsd check` prints every effective value.\n"
	"#\n"
	"# listen = 127.0.0.1:2525\n"
	"# spool_dir = ./var/spool\n"
	"# mail_dir = ./var/mail\n"
	"# local_domains = localhost\n"
	"#\n"
	"# A self-signed certificate and key are generated here on first start.\n"
	"tls_cert_file = ./var/tls/cert.pem\n"
	"tls_key_file = ./var/tls/key.pem\n";

/* ---- public value parsers ---- */

/* Decimal bytes with an optional k/m/g suffix (either case; powers of 1024). 0 ok, -1 bad
 * (syntax or more than 2^64-1). */
int conf_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	size_t i;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -1;
	for (i = 0; isdigit((unsigned char)s[i]); i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	switch (s[i]) {
	case '\0': break;
	case 'k': case 'K': mult = 1024ull; i++; break;
	case 'm': case 'M': mult = 1024ull * 1024; i++; break;
	case 'g': case 'G': mult = 1024ull * 1024 * 1024; i++; break;
	default: return -1;
	}
	if (s[i] != '\0' || (v && v > UINT64_MAX / mult))
		return -1;
	*out = v * mult;
	return 0;
}

/* A duration in seconds: one or more NUMBER UNIT groups, unit s, m, h or d ("90s", "5m",
 * "1h30m"). A bare number is refused. 0 ok, -1 bad (syntax or more than UINT_MAX s). */
int conf_parse_duration(const char *s, unsigned *out)
{
	unsigned long long total = 0;
	size_t i = 0;

	if (s == NULL || s[0] == '\0')
		return -1;
	while (s[i]) {
		unsigned long long v = 0, unit;
		size_t start = i;

		for (; isdigit((unsigned char)s[i]); i++) {
			v = v * 10 + (unsigned)(s[i] - '0');
			if (v > UINT_MAX)
				return -1;
		}
		if (i == start)
			return -1;
		switch (s[i]) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default: return -1;
		}
		i++;
		total += v * unit;
		if (total > UINT_MAX)
			return -1;
	}
	*out = (unsigned)total;
	return 0;
}

/* 1 when domain_lc (lower-case, no trailing dot) is one of local_domains. */
int conf_is_local_domain(const struct conf *c, const char *domain_lc)
{
	if (domain_lc == NULL)
		return 0;
	for (size_t i = 0; i < c->nlocal_domains; i++)
		if (strcmp(c->local_domains[i], domain_lc) == 0)
			return 1;
	return 0;
}

/* ---- the schema ---- */

#define OFF(f)		.off = offsetof(struct conf, f)
#define LIST(f)		.off = offsetof(struct conf, f), .noff = offsetof(struct conf, n##f)
#define T_HOSTNAME	.type = &conf_t_hostname
#define T_PATH	.type = &conf_t_path
#define T_OPTPATH	.type = &conf_t_optpath
#define T_LISTEN	.type = &conf_t_listen
#define T_DNS	.type = &conf_t_dns
#define T_DOMAINS	.type = &conf_t_domains
#define T_CIDRS	.type = &conf_t_cidrs
#define T_BOOL	.type = &conf_t_bool
#define T_SIZE	.type = &conf_t_size
#define T_UINT	.type = &conf_t_uint
#define T_PORT	.type = &conf_t_port
#define T_DUR	.type = &conf_t_dur
#define T_LOGLEVEL	.type = &conf_t_loglevel
#define T_RELAYHOST	.type = &conf_t_relayhost
#define T_USER	.type = &conf_t_user
#define T_DKIMSIGN	.type = &conf_t_dkimsign
#define T_DNSL	.type = &conf_t_dnsl
#define T_TLSLEVEL	.type = &conf_t_tlslevel
#define T_TLSPOL	.type = &conf_t_tlspol
#define T_TRANSPORT	.type = &conf_t_transport
#define T_AUTHBACKEND	.type = &conf_t_authbackend
#define T_RCPTCHECK	.type = &conf_t_rcptcheck
#define T_MILTERS	.type = &conf_t_milters
#define T_POLICIES	.type = &conf_t_policies
#define T_FACTION	.type = &conf_t_faction
#define NOT_YET		.not_yet = 1	/* capability not in this build: see struct row */

#define DAY 86400ull

static const struct row schema[CK__COUNT] = {
	[CK_HOSTNAME]		= { "hostname", T_HOSTNAME, OFF(hostname) },	/* default: caller's */
	[CK_LISTEN]		= { "listen", T_LISTEN, LIST(listen), .def = "127.0.0.1:2525", .min = 1 },
	[CK_SUBMISSION_LISTEN]	= { "submission_listen", T_LISTEN, LIST(submission_listen) },
	[CK_SMTPS_LISTEN]	= { "smtps_listen", T_LISTEN, LIST(smtps_listen) },
	[CK_SPOOL_DIR]		= { "spool_dir", T_PATH, OFF(spool_dir), .def = "./var/spool" },
	[CK_MAIL_DIR]		= { "mail_dir", T_PATH, OFF(mail_dir), .def = "./var/mail" },
	[CK_LOCAL_DOMAINS]	= { "local_domains", T_DOMAINS, LIST(local_domains), .def = "localhost" },
	[CK_RECIPIENTS_FILE]	= { "recipients_file", T_OPTPATH, OFF(recipients_file) },
	[CK_RELAY_NETWORKS]	= { "relay_networks", T_CIDRS, LIST(relay_networks),
				    .def = "127.0.0.0/8 ::1/128" },
	[CK_PROXY_NETWORKS]	= { "proxy_networks", T_CIDRS, LIST(proxy_networks) },
	[CK_TLS_CERT_FILE]	= { "tls_cert_file", T_OPTPATH, OFF(tls_cert_file) },
	[CK_TLS_KEY_FILE]	= { "tls_key_file", T_OPTPATH, OFF(tls_key_file) },
	[CK_TLS_LOOPBACK]	= { "tls_loopback", T_BOOL, OFF(tls_loopback), .def = "no" },
	[CK_AUTH_USERS_FILE]	= { "auth_users_file", T_OPTPATH, OFF(auth_users_file) },
	[CK_SENDER_LOGIN_MAPS]	= { "sender_login_maps", T_OPTPATH, OFF(sender_login_maps) },
	[CK_MESSAGE_SIZE_LIMIT]	= { "message_size_limit", T_SIZE, OFF(message_size_limit),
				    .def = "10485760", .min = 1024, .max = SIZE_MAX_BYTES },
	[CK_RECIPIENT_LIMIT]	= { "recipient_limit", T_UINT, OFF(recipient_limit),
				    .def = "1000", .min = 1, .max = 1000000 },
	[CK_MAX_CONNECTIONS]	= { "max_connections", T_UINT, OFF(max_connections),
				    .def = "1000", .min = 1, .max = 1000000 },
	[CK_MAX_CONNECTIONS_PER_IP] = { "max_connections_per_ip", T_UINT, OFF(max_connections_per_ip),
				    .def = "50", .min = 1, .max = 1000000 },
	[CK_MAX_SESSION_MEMORY]	= { "max_session_memory", T_SIZE, OFF(max_session_memory),
				    .def = "256m", .min = 1024 * 1024, .max = 1024ull * 1024 * 1024 * 1024 },
	[CK_COMMAND_TIMEOUT]	= { "command_timeout", T_DUR, OFF(command_timeout),
				    .def = "5m", .min = 1, .max = DAY },
	[CK_DATA_TIMEOUT]	= { "data_timeout", T_DUR, OFF(data_timeout),
				    .def = "10m", .min = 1, .max = DAY },
	[CK_RELAYHOST]		= { "relayhost", T_RELAYHOST, OFF(relayhost) },
	[CK_DNS_SERVERS]	= { "dns_servers", T_DNS, LIST(dns_servers) },
	[CK_SMTP_PORT]		= { "smtp_port", T_PORT, OFF(smtp_port),
				    .def = "25", .min = 1, .max = 65535 },
	[CK_RETRY_MIN]		= { "retry_min", T_DUR, OFF(retry_min),
				    .def = "5m", .min = 1, .max = 30 * DAY },
	[CK_RETRY_MAX]		= { "retry_max", T_DUR, OFF(retry_max),
				    .def = "1h", .min = 1, .max = 30 * DAY },
	[CK_QUEUE_LIFETIME]	= { "queue_lifetime", T_DUR, OFF(queue_lifetime),
				    .def = "5d", .min = 1, .max = 365 * DAY },
	[CK_DELAY_WARNING]	= { "delay_warning", T_DUR, OFF(delay_warning),
				    .def = "4h", .min = 1, .max = 365 * DAY },
	[CK_LOG_LEVEL]		= { "log_level", T_LOGLEVEL, OFF(log_level), .def = "info" },
	[CK_WORKERS]		= { "workers", T_UINT, OFF(workers), .def = "0", .min = 0, .max = 64 },
	[CK_RUN_USER]		= { "run_user", T_USER, OFF(run_user), .def = "imsd" },
	[CK_QUEUE_MINFREE]	= { "queue_minfree", T_SIZE, OFF(queue_minfree), .def = "0", .min = 0,
				    .max = SIZE_MAX_BYTES },
	[CK_DKIM_SIGN]		= { "dkim_sign", T_DKIMSIGN, LIST(dkim_sign) },
	[CK_INBOUND_CHECKS]	= { "inbound_checks", T_BOOL, OFF(inbound_checks), .def = "yes" },
	[CK_DMARC_REJECT]	= { "dmarc_reject", T_BOOL, OFF(dmarc_reject), .def = "yes" },
	[CK_SPF_REJECT]		= { "spf_reject", T_BOOL, OFF(spf_reject), .def = "no" },
	[CK_DNSBL]		= { "dnsbl", T_DNSL, LIST(dnsbl) },
	[CK_DNSWL]		= { "dnswl", T_DNSL, LIST(dnswl) },
	[CK_DNSBL_THRESHOLD]	= { "dnsbl_threshold", T_UINT, OFF(dnsbl_threshold), .def = "1",
				    .min = 1, .max = 1000 },
	[CK_METRICS_LISTEN]	= { "metrics_listen", T_LISTEN, LIST(metrics_listen) },
	[CK_SMTP_TLS]		= { "smtp_tls", T_TLSLEVEL, OFF(smtp_tls), .def = "opportunistic" },
	[CK_TLS_POLICY]		= { "tls_policy", T_TLSPOL, LIST(tls_policy) },
	[CK_SMTP_TLS_CA_FILE]	= { "smtp_tls_ca_file", T_OPTPATH, OFF(smtp_tls_ca_file) },
	[CK_DNSSEC_TRUST_RESOLVER] = { "dnssec_trust_resolver", T_BOOL, OFF(dnssec_trust_resolver),
				    .def = "no" },
	[CK_MTA_STS_PORT]	= { "mta_sts_port", T_PORT, OFF(mta_sts_port),
				    .def = "443", .min = 1, .max = 65535 },
	[CK_MAILBOX_TRANSPORT]	= { "mailbox_transport", T_TRANSPORT, OFF(mailbox_transport),
				    .def = "maildir", NOT_YET },
	[CK_TRANSPORT_MAP]	= { "transport_map", T_OPTPATH, OFF(transport_map), NOT_YET },
	[CK_AUTH_BACKEND]	= { "auth_backend", T_AUTHBACKEND, OFF(auth_backend), .def = "file" },
	[CK_RECIPIENT_CHECK]	= { "recipient_check", T_RCPTCHECK, OFF(recipient_check),
				    .def = "local", NOT_YET },
	[CK_MILTERS]		= { "milters", T_MILTERS, LIST(milters), NOT_YET },
	[CK_SUBMISSION_MILTERS]	= { "submission_milters", T_MILTERS, LIST(submission_milters),
				    NOT_YET },
	[CK_MILTER_DEFAULT_ACTION] = { "milter_default_action", T_FACTION,
				    OFF(milter_default_action), .def = "tempfail", NOT_YET },
	[CK_MILTER_CONNECT_TIMEOUT] = { "milter_connect_timeout", T_DUR,
				    OFF(milter_connect_timeout), .def = "30s", .min = 1, .max = 3600,
				    NOT_YET },
	[CK_MILTER_COMMAND_TIMEOUT] = { "milter_command_timeout", T_DUR,
				    OFF(milter_command_timeout), .def = "30s", .min = 1, .max = 3600,
				    NOT_YET },
	[CK_MILTER_CONTENT_TIMEOUT] = { "milter_content_timeout", T_DUR,
				    OFF(milter_content_timeout), .def = "5m", .min = 1, .max = 3600,
				    NOT_YET },
	[CK_POLICY_SERVICES]	= { "policy_services", T_POLICIES, LIST(policy_services), NOT_YET },
	[CK_POLICY_DEFAULT_ACTION] = { "policy_default_action", T_FACTION,
				    OFF(policy_default_action), .def = "tempfail", NOT_YET },
	[CK_POLICY_TIMEOUT]	= { "policy_timeout", T_DUR, OFF(policy_timeout), .def = "100s",
				    .min = 1, .max = 3600, NOT_YET },
	[CK_POLICY_CACHE_TTL]	= { "policy_cache_ttl", T_DUR, OFF(policy_cache_ttl),
				    .def = "0s", .min = 0, .max = 86400, NOT_YET },
	/* aliases(5): read and checked (imsd check, newaliases, reload); delivery through it
	 * is not in this build yet */
	[CK_ALIAS_MAPS]		= { "alias_maps", T_OPTPATH, OFF(alias_maps), .not_yet = 1 },
	[CK_SYSTEM_MAILBOXES]	= { "system_mailboxes", T_BOOL, OFF(system_mailboxes), .def = "no" },
};

/* The name of key k ("hostname", ...); NULL when k is out of range. */
const char *conf_key_name(enum conf_key k)
{
	if ((unsigned)k >= CK__COUNT)
		return NULL;
	return schema[k].name;
}

/* 1 when key k is set by the file to a value that asks for something and this build
 * does not act on it yet (the row's not_yet flag). */
int conf_not_in_effect(const struct conf *c, enum conf_key k)
{
	const struct row *r;

	if ((unsigned)k >= CK__COUNT)
		return 0;
	r = &schema[k];
	return r->not_yet && c->set[k] && r->type->active(c, r);
}

/* Print "key = value" for every key, in schema order, with "# default" for keys the file
 * did not set and "# not yet in effect" where conf_not_in_effect. */
void conf_print(const struct conf *c, FILE *fp)
{
	for (int k = 0; k < CK__COUNT; k++) {
		const struct row *r = &schema[k];

		fprintf(fp, "%s =", r->name);
		r->type->print(c, r, fp);
		if (!c->set[k])
			fputs("  # default", fp);
		if (conf_not_in_effect(c, (enum conf_key)k))
			fputs("  # not yet in effect", fp);
		fputc('\n', fp);
	}
}

/* Release everything c owns and zero it. */
void conf_free(struct conf *c)
{
	if (c == NULL)
		return;
	free(c->source);
	free(c->hostname);
	free(c->listen);
	free(c->submission_listen);
	free(c->smtps_listen);
	free(c->metrics_listen);
	free(c->spool_dir);
	free(c->mail_dir);
	for (size_t i = 0; i < c->nlocal_domains; i++)
		free(c->local_domains[i]);
	free(c->local_domains);
	free(c->recipients_file);
	free(c->sender_login_maps);
	free(c->alias_maps);
	free(c->relay_networks);
	free(c->proxy_networks);
	free(c->tls_cert_file);
	free(c->tls_key_file);
	free(c->auth_users_file);
	free(c->relayhost);
	free(c->run_user);
	free(c->dns_servers);
	conf_free_dkim(c->dkim_sign, c->ndkim_sign);
	conf_free_dnsl(c->dnsbl, c->ndnsbl);
	conf_free_dnsl(c->dnswl, c->ndnswl);
	conf_free_tlspol(c->tls_policy, c->ntls_policy);
	free(c->smtp_tls_ca_file);
	free(c->transport_map);
	conf_milters_free(c->milters, c->nmilters);
	conf_milters_free(c->submission_milters, c->nsubmission_milters);
	conf_policies_free(c->policy_services, c->npolicy_services);
	memset(c, 0, sizeof *c);
}

/* ---- parsing the text ---- */

static const struct row *row_find(const char *key)
{
	for (int k = 0; k < CK__COUNT; k++)
		if (strcmp(schema[k].name, key) == 0)
			return &schema[k];
	return NULL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

/* Remove a comment: '#' at the start of the line, after a blank, or right after the '='
 * (so "key =#x" means an empty value, as "key = #x" does, and a printed value can never
 * start with '#'). */
static void strip_comment(char *s)
{
	for (char *p = s; *p; p++) {
		if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '=')) {
			*p = '\0';
			return;
		}
	}
}

/* Checks between keys, after the whole text is read. 0 ok, -1 with err set. */
static int cross_check(const char *name, struct conf *c, char *err, size_t errlen)
{
	static const enum conf_key lists[] = { CK_LISTEN, CK_SUBMISSION_LISTEN, CK_SMTPS_LISTEN,
	    CK_METRICS_LISTEN };
	const size_t nlists = sizeof(lists) / sizeof(lists[0]);
	char b[NETADDR_STRLEN];

	if (c->retry_min > c->retry_max) {
		char x[32], y[32];
		enum conf_key k = c->set[CK_RETRY_MAX] ? CK_RETRY_MAX : CK_RETRY_MIN;

		if (k == CK_RETRY_MAX)
			snprintf(err, errlen, "%s:%u: retry_max: %s is less than retry_min (%s)", name,
			    c->set_line[k], conf_fmt_duration(c->retry_max, x, sizeof x),
			    conf_fmt_duration(c->retry_min, y, sizeof y));
		else
			snprintf(err, errlen, "%s:%u: retry_min: %s is more than retry_max (%s)", name,
			    c->set_line[k], conf_fmt_duration(c->retry_min, x, sizeof x),
			    conf_fmt_duration(c->retry_max, y, sizeof y));
		return -1;
	}

	/* DANE rests on the resolver's word that the TLSA records are authentic (the AD bit):
	 * only a resolver the operator named and vouched for may give it. */
	if (outtls_uses(c, OUTTLS_DANE) && (!c->dnssec_trust_resolver || c->ndns_servers == 0)) {
		enum conf_key k = c->smtp_tls == OUTTLS_DANE ? CK_SMTP_TLS : CK_TLS_POLICY;
		snprintf(err, errlen, "%s:%u: %s: dane needs dnssec_trust_resolver = yes and "
		    "dns_servers naming a DNSSEC-validating resolver reached over a trusted path",
		    name, c->set_line[k], conf_key_name(k));
		return -1;
	}

	/* auth_users_file belongs to the file backend: with Dovecot's users it would be read
	 * and never asked, a trap for whoever edits it. */
	if (c->auth_backend == AUTH_BACKEND_DOVECOT && c->auth_users_file != NULL) {
		enum conf_key k = c->set_line[CK_AUTH_USERS_FILE] > c->set_line[CK_AUTH_BACKEND] ?
		    CK_AUTH_USERS_FILE : CK_AUTH_BACKEND;
		snprintf(err, errlen, "%s:%u: %s: auth_users_file is not used with auth_backend = "
		    "dovecot:unix:%s; remove one of them", name, c->set_line[k], conf_key_name(k),
		    c->auth_dovecot_socket);
		return -1;
	}
	/* Asking the transport about recipients needs a transport that can be asked. */
	if (c->recipient_check == RCPT_CHECK_TRANSPORT &&
	    c->mailbox_transport.kind == TRANSPORT_MAILDIR && c->transport_map == NULL) {
		snprintf(err, errlen, "%s:%u: recipient_check: transport needs an LMTP "
		    "mailbox_transport or a transport_map (with maildir there is no one to ask)",
		    name, c->set_line[CK_RECIPIENT_CHECK]);
		return -1;
	}

	/* The same ADDR:PORT in two listener keys could never be bound. */
	for (size_t a = 0; a < nlists; a++) {
		const struct row *ra = &schema[lists[a]];
		const struct hostport *pa = *CFIELD(c, ra, struct hostport *);

		for (size_t bi = a + 1; bi < nlists; bi++) {
			const struct row *rb = &schema[lists[bi]];
			const struct hostport *pb = *CFIELD(c, rb, struct hostport *);

			for (size_t i = 0; i < *CCOUNT(c, ra); i++) {
				for (size_t j = 0; j < *CCOUNT(c, rb); j++) {
					if (pa[i].port != pb[j].port ||
					    !netaddr_equal(&pa[i].addr, &pb[j].addr))
						continue;
					snprintf(err, errlen, "%s:%u: %s: %s is also in %s", name,
					    c->set_line[lists[bi]], rb->name,
					    hostport_str(&pb[j], b, sizeof b), ra->name);
					return -1;
				}
			}
		}
	}
	return 0;
}

/* Parse text (len bytes) into *out; see conf.h. */
int conf_parse(const char *name, const char *text, size_t len, const char *hostname_default,
    struct conf *out, char *err, size_t errlen)
{
	struct conf c;
	char why[CONF_LINE_MAX + 512], q[QBUF];
	size_t pos = 0;
	unsigned lineno = 0;

	memset(&c, 0, sizeof c);
	if (name == NULL)
		name = "(config)";
	if (errlen)
		err[0] = '\0';
	if ((c.source = conf_xstrdup(name)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	for (int k = 0; k < CK__COUNT; k++) {
		const struct row *r = &schema[k];

		if (r->def && r->type->parse(&c, r, r->def, why, sizeof why) != 0) {
			snprintf(err, errlen, "%s: %s: default %s: %s", name, r->name, r->def, why);
			goto fail;
		}
	}

	while (pos < len) {
		char buf[CONF_LINE_MAX + 1], *s, *eq, *key, *val;
		const char *ls = text + pos, *nl = memchr(ls, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - ls) : len - pos;
		const struct row *r;
		enum conf_key k;

		lineno++;
		pos += ll + (nl != NULL);
		if (ll && ls[ll - 1] == '\r')
			ll--;
		if (ll > CONF_LINE_MAX) {
			snprintf(err, errlen, "%s:%u: line too long (more than %d bytes)", name, lineno,
			    CONF_LINE_MAX);
			goto fail;
		}
		for (size_t i = 0; i < ll; i++) {
			unsigned char ch = (unsigned char)ls[i];

			if (ch == '\0' || (ch < 0x20 && ch != '\t') || ch == 0x7f) {
				snprintf(err, errlen, "%s:%u: %s byte in line", name, lineno,
				    ch == '\0' ? "NUL" : "control");
				goto fail;
			}
		}
		memcpy(buf, ls, ll);
		buf[ll] = '\0';
		strip_comment(buf);
		s = trim(buf);
		if (*s == '\0')
			continue;
		eq = strchr(s, '=');
		if (eq == NULL || eq == s) {
			snprintf(err, errlen, "%s:%u: expected 'key = value'", name, lineno);
			goto fail;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		if (*key == '\0') {
			snprintf(err, errlen, "%s:%u: expected 'key = value'", name, lineno);
			goto fail;
		}
		r = row_find(key);
		if (r == NULL) {
			/* the key is shown as written, escaped; a plain key is shown bare */
			conf_quote(key, q, sizeof q);
			if (strlen(q) == strlen(key) + 2) {
				q[strlen(q) - 1] = '\0';
				snprintf(err, errlen, "%s:%u: %s: unknown key", name, lineno, q + 1);
			} else {
				snprintf(err, errlen, "%s:%u: %s: unknown key", name, lineno, q);
			}
			goto fail;
		}
		k = (enum conf_key)(r - schema);
		if (c.set[k]) {
			snprintf(err, errlen, "%s:%u: %s: set twice (first on line %u)", name, lineno,
			    r->name, c.set_line[k]);
			goto fail;
		}
		if (r->type->parse(&c, r, val, why, sizeof why) != 0) {
			snprintf(err, errlen, "%s:%u: %s: %s", name, lineno, r->name, why);
			goto fail;
		}
		c.set[k] = 1;
		c.set_line[k] = lineno;
	}

	if (!c.set[CK_HOSTNAME]) {
		const char *h = hostname_default && *hostname_default ? hostname_default : "localhost";

		if (schema[CK_HOSTNAME].type->parse(&c, &schema[CK_HOSTNAME], h, why, sizeof why) != 0) {
			snprintf(err, errlen, "%s: hostname: the system host name %s is not a valid "
			    "domain name; set hostname", name, conf_quote(h, q, sizeof q));
			goto fail;
		}
	}
	if (cross_check(name, &c, err, errlen) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	conf_free(&c);
	memset(out, 0, sizeof *out);
	return -1;
}

/* Read path (NULL = the embedded default) and parse it with the system host name as the
 * default hostname (for the embedded default, "localhost" when the system name is not a
 * valid domain name); see conf.h. */
int conf_load(const char *path, struct conf *out, char *err, size_t errlen)
{
	char host[256];
	char *buf = NULL, *nb;
	size_t len = 0, cap = 0, n;
	FILE *fp;
	int rc, e;

	memset(host, 0, sizeof host);
	if (gethostname(host, sizeof host - 1) != 0)
		host[0] = '\0';
	if (path == NULL) {
		/* The embedded default must serve at once, even on a host whose name is not a
		 * valid domain name (a file gets an error telling the operator to set it). */
		size_t hl = strlen(host);

		if (hl > 1 && host[hl - 1] == '.')
			hl--;
		if (!conf_domain_valid(host, hl))
			snprintf(host, sizeof host, "localhost");
		rc = conf_parse(EMBEDDED_NAME, conf_default_text, strlen(conf_default_text), host,
		    out, err, errlen);
		if (rc == 0)
			out->embedded = 1;
		return rc;
	}

	memset(out, 0, sizeof *out);
	fp = fopen(path, "r");
	if (fp == NULL) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= CONF_FILE_MAX) {
				snprintf(err, errlen, "%s: cannot read: larger than %u bytes", path,
				    CONF_FILE_MAX);
				goto fail;
			}
			cap = cap ? cap * 2 : 8192;
			if ((nb = realloc(buf, cap)) == NULL) {
				snprintf(err, errlen, "%s: cannot read: %s", path, strerror(ENOMEM));
				goto fail;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (n == 0) {
			if (ferror(fp)) {
				e = errno;
				snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e ? e : EIO));
				goto fail;
			}
			break;
		}
	}
	fclose(fp);
	rc = conf_parse(path, buf ? buf : "", len, host, out, err, errlen);
	free(buf);
	return rc;
fail:
	fclose(fp);
	free(buf);
	return -1;
}

int conf_relay_client(const struct conf *c, const struct netaddr *a)
{
	for (size_t i = 0; i < c->nrelay_networks; i++)
		if (cidr_match(&c->relay_networks[i], a))
			return 1;
	return 0;
}
