/*
 * conf — the configuration: one schema row per key of SPEC.md, parsed and validated.
 *
 * Text format: `key = value` lines, `#` comments (whole-line, or after whitespace), blank
 * lines ignored, list values separated by commas and/or spaces, sizes in bytes (an optional
 * k/m/g suffix, powers of 1024, is accepted as an extension), durations with a unit suffix
 * (s, m, h, d). Unknown keys, repeated keys and bad values are errors; every error message
 * reads "FILE:LINE: KEY: why". Loading never half-succeeds: on error *out is left untouched
 * (zeroed) and everything allocated is freed.
 *
 * Ownership: a loaded struct conf owns all its strings and arrays; conf_free releases them.
 * conf_load_* do not touch the network, and read only the file named (recipients_file,
 * certificates and the like are loaded by their own modules, after this).
 */
#ifndef IMSD_CONF_H
#define IMSD_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf/filters.h"
#include "util/addr.h"

enum conf_key {
	CK_HOSTNAME, CK_LISTEN, CK_SUBMISSION_LISTEN, CK_SMTPS_LISTEN, CK_SPOOL_DIR, CK_MAIL_DIR,
	CK_LOCAL_DOMAINS, CK_RECIPIENTS_FILE, CK_RELAY_NETWORKS, CK_PROXY_NETWORKS, CK_TLS_CERT_FILE, CK_TLS_KEY_FILE,
	CK_TLS_LOOPBACK, CK_AUTH_USERS_FILE, CK_MESSAGE_SIZE_LIMIT, CK_RECIPIENT_LIMIT,
	CK_MAX_CONNECTIONS, CK_MAX_CONNECTIONS_PER_IP, CK_MAX_SESSION_MEMORY, CK_COMMAND_TIMEOUT, CK_DATA_TIMEOUT,
	CK_RELAYHOST, CK_DNS_SERVERS, CK_SMTP_PORT, CK_RETRY_MIN, CK_RETRY_MAX, CK_QUEUE_LIFETIME,
	CK_DELAY_WARNING, CK_LOG_LEVEL, CK_WORKERS, CK_RUN_USER, CK_QUEUE_MINFREE,
	CK_DKIM_SIGN, CK_INBOUND_CHECKS, CK_DMARC_REJECT, CK_SPF_REJECT, CK_DNSBL, CK_DNSWL,
	CK_DNSBL_THRESHOLD,
	CK_METRICS_LISTEN,
	CK_SMTP_TLS, CK_TLS_POLICY, CK_SMTP_TLS_CA_FILE, CK_DNSSEC_TRUST_RESOLVER,
	CK_MTA_STS_PORT,
	CK_MAILBOX_TRANSPORT, CK_TRANSPORT_MAP, CK_AUTH_BACKEND, CK_RECIPIENT_CHECK,
	CK_MILTERS, CK_SUBMISSION_MILTERS, CK_MILTER_DEFAULT_ACTION, CK_MILTER_CONNECT_TIMEOUT,
	CK_MILTER_COMMAND_TIMEOUT, CK_MILTER_CONTENT_TIMEOUT,
	CK_POLICY_SERVICES, CK_POLICY_DEFAULT_ACTION, CK_POLICY_TIMEOUT, CK_POLICY_CACHE_TTL,
	CK_SENDER_LOGIN_MAPS,
	CK_ALIAS_MAPS, CK_SYSTEM_MAILBOXES,
	CK__COUNT
};

/* dkim_sign: one signing key. */
struct conf_dkim {
	char *domain;		/* lower-case */
	char *selector;
	char *keyfile;
};

/* dnsbl / dnswl: one DNS list and what a listing weighs. */
struct conf_dnsl {
	char *zone;		/* lower-case, no trailing dot */
	unsigned weight;	/* 1 unless written zone=N */
};

/* tls_policy: the outbound TLS level for one destination domain (conf/tlslevel.h). */
struct conf_tls_policy {
	char *domain;		/* lower-case; a leading '.' means "its subdomains" */
	int level;		/* enum outtls_level */
};

/* mailbox_transport, and each transport_map entry: how mail for a local domain is stored. */
enum conf_transport_kind {
	TRANSPORT_MAILDIR,	/* imsd writes MAIL_DIR/domain/local/ itself */
	TRANSPORT_LMTP_UNIX,	/* lmtp:unix:PATH */
	TRANSPORT_LMTP_INET,	/* lmtp:inet:HOST:PORT */
};

#define CONF_SOCKPATH_MAX	108	/* sizeof(sun_path), NUL included */

struct conf_transport {
	int kind;			/* enum conf_transport_kind */
	char path[CONF_SOCKPATH_MAX];	/* LMTP_UNIX: the socket */
	char host[256];			/* LMTP_INET: host name (lower-case) or address */
	uint16_t port;			/* LMTP_INET */
};

/*
 * Parse a transport as written in mailbox_transport or transport_map: `maildir`,
 * `lmtp:unix:PATH` (PATH under CONF_SOCKPATH_MAX bytes), `lmtp:inet:HOST:PORT` (an IPv6
 * address in brackets). 0, or -1 with why.
 */
int conf_transport_parse(const char *s, struct conf_transport *t, char *why, size_t wl);
/* The transport in the same syntax, for imsd check and explain-recipient. */
const char *conf_transport_str(const struct conf_transport *t, char *buf, size_t len);

/* auth_backend */
enum conf_auth_backend {
	AUTH_BACKEND_FILE,	/* auth_users_file */
	AUTH_BACKEND_DOVECOT,	/* dovecot:unix:PATH, Dovecot's auth-client socket */
};

/* recipient_check */
enum conf_recipient_check {
	RCPT_CHECK_LOCAL,	/* recipients_file (every local part when unset) */
	RCPT_CHECK_TRANSPORT,	/* ask the mailbox transport at RCPT time */
};

struct conf {
	char *source;			/* file path, or "(embedded default)" */

	char *hostname;
	struct hostport *listen;		size_t nlisten;
	struct hostport *submission_listen;	size_t nsubmission_listen;
	struct hostport *smtps_listen;		size_t nsmtps_listen;
	char *spool_dir;
	char *mail_dir;
	char **local_domains;		size_t nlocal_domains;	/* lower-case, no trailing dot */
	char *recipients_file;		/* NULL = unset */
	char *sender_login_maps;	/* NULL = unset (policy/senderlogins.h) */
	char *alias_maps;		/* aliases(5) file; NULL = unset */
	int system_mailboxes;		/* passwd users at the host's names: /var/mail/USER */
	struct cidr *relay_networks;	size_t nrelay_networks;
	struct cidr *proxy_networks;	size_t nproxy_networks;	/* PROXY header required */
	char *tls_cert_file;		/* NULL = unset */
	char *tls_key_file;		/* NULL = unset */
	int tls_loopback;
	char *auth_users_file;		/* NULL = unset */
	uint64_t message_size_limit;
	unsigned recipient_limit;
	unsigned max_connections;
	unsigned max_connections_per_ip;
	uint64_t max_session_memory;	/* bytes all sessions may hold before new ones get 421 */
	unsigned command_timeout;	/* seconds */
	unsigned data_timeout;		/* seconds */
	char *relayhost;		/* NULL = unset; the host part, brackets removed */
	int relayhost_literal;		/* written as [addr]: no MX lookup */
	uint16_t relayhost_port;	/* 25 unless given */
	struct hostport *dns_servers;	size_t ndns_servers;	/* 0 = use /etc/resolv.conf */
	uint16_t smtp_port;
	unsigned retry_min, retry_max, queue_lifetime, delay_warning;	/* seconds */
	int log_level;			/* enum log_level */
	unsigned workers;		/* event loops; 0 = one per CPU */
	char *run_user;			/* the user imsd serves as when started as root */
	uint64_t queue_minfree;		/* free bytes the spool keeps; 0 = 3 x message_size_limit */
	struct conf_dkim *dkim_sign;	size_t ndkim_sign;	/* sign mail from these domains */
	int inbound_checks;		/* SPF, DKIM, DMARC (and Authentication-Results) */
	int dmarc_reject;		/* a p=reject failure gets 550 */
	int spf_reject;			/* an SPF fail gets 550 */
	struct conf_dnsl *dnsbl;	size_t ndnsbl;
	struct conf_dnsl *dnswl;	size_t ndnswl;
	unsigned dnsbl_threshold;	/* listed when the blocklist score reaches this */
	struct hostport *metrics_listen;	size_t nmetrics_listen;	/* Prometheus /metrics */
	int smtp_tls;			/* enum outtls_level: the default for relaying */
	struct conf_tls_policy *tls_policy;	size_t ntls_policy;
	char *smtp_tls_ca_file;		/* NULL = the system CA store */
	int dnssec_trust_resolver;	/* believe the AD bit of the dns_servers (DANE) */
	uint16_t mta_sts_port;		/* HTTPS port of mta-sts.DOMAIN (443; tests) */
	struct conf_transport mailbox_transport;	/* local domains' mail (maildir) */
	char *transport_map;		/* NULL = unset: DOMAIN TRANSPORT lines */
	int auth_backend;		/* enum conf_auth_backend */
	char auth_dovecot_socket[CONF_SOCKPATH_MAX];	/* AUTH_BACKEND_DOVECOT */
	int recipient_check;		/* enum conf_recipient_check */
	/* Filters (conf/filters.h): milters in order, for every listener unless
	 * submission_milters is set for submission_listen and smtps_listen. */
	struct conf_milter *milters;		size_t nmilters;
	struct conf_milter *submission_milters;	size_t nsubmission_milters;
	int milter_default_action;		/* enum filter_action */
	unsigned milter_connect_timeout, milter_command_timeout, milter_content_timeout;
	struct conf_policy *policy_services;	size_t npolicy_services;
	int policy_default_action;		/* enum filter_action */
	unsigned policy_timeout;		/* seconds: connect, write and read */
	unsigned policy_cache_ttl;		/* seconds an answer is reused; 0 = never */
	int embedded;			/* the embedded default configuration (no -c) */

	unsigned char set[CK__COUNT];	/* 1 when the key was given in the file */
	unsigned set_line[CK__COUNT];	/* its line number */
};

/* The embedded default configuration (SPEC.md "Command line"), as text. */
extern const char conf_default_text[];

/*
 * Parse configuration text. name is used in error messages. hostname_default is the value
 * of `hostname` when the text does not set it (the system host name, passed in so this
 * stays pure). 0 ok; -1 with "NAME:LINE: KEY: why" in err.
 */
int conf_parse(const char *name, const char *text, size_t len, const char *hostname_default,
    struct conf *out, char *err, size_t errlen);

/* Read FILE (NULL = the embedded default) and parse it; errors as conf_parse, plus
 * "FILE: cannot read: why". */
int conf_load(const char *path, struct conf *out, char *err, size_t errlen);

void conf_free(struct conf *c);

const char *conf_key_name(enum conf_key k);

/*
 * Keys this build parses and validates but does not act on yet. conf_not_in_effect(c, k)
 * is true when the key is set (or defaults to a value that would matter) and its capability
 * is missing; `imsd check` marks such keys "not yet in effect" and `imsd run` warns once.
 */
int conf_not_in_effect(const struct conf *c, enum conf_key k);

/* Print every key with its effective value, one "key = value" line each, marking defaults
 * with "# default" and keys not in effect with "# not yet in effect". */
void conf_print(const struct conf *c, FILE *fp);

/* The milters of a listener: submission (and smtps) listeners use submission_milters when
 * that key is set, every other listener (and they, otherwise) milters. */
const struct conf_milter *conf_listener_milters(const struct conf *c, int submission,
    size_t *n);

/* Helpers shared with other modules (pure). 0 ok, -1 bad. */
int conf_parse_size(const char *s, uint64_t *out);
int conf_parse_duration(const char *s, unsigned *out);
int conf_is_local_domain(const struct conf *c, const char *domain_lc);
/* Is a in relay_networks? */
int conf_relay_client(const struct conf *c, const struct netaddr *a);

#endif
