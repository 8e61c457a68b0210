/* Unit tests for src/conf/conf.c. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <unistd.h>

#include "t.h"
#include "conf/conf.h"
#include "util/log.h"

static char err[1024];

/* Parse text named "t.conf" with system host name "mx.example.org". */
static int P(const char *text, struct conf *c)
{
	err[0] = '\0';
	return conf_parse("t.conf", text, strlen(text), "mx.example.org", c, err, sizeof err);
}

/* 1 when text fails to parse with exactly the error want. */
static int fails_with(const char *text, const char *want)
{
	struct conf c;

	if (P(text, &c) == 0) {
		fprintf(stderr, "  unexpectedly parsed: %s\n", text);
		conf_free(&c);
		return 0;
	}
	if (strcmp(err, want) != 0) {
		fprintf(stderr, "  got  \"%s\"\n  want \"%s\"\n", err, want);
		return 0;
	}
	return 1;
}

/* 1 when text fails and the error starts with prefix. */
static int fails_starting(const char *text, const char *prefix)
{
	struct conf c;

	if (P(text, &c) == 0) {
		fprintf(stderr, "  unexpectedly parsed: %s\n", text);
		conf_free(&c);
		return 0;
	}
	if (strncmp(err, prefix, strlen(prefix)) != 0) {
		fprintf(stderr, "  got  \"%s\"\n  want \"%s...\"\n", err, prefix);
		return 0;
	}
	return 1;
}

static int parses(const char *text)
{
	struct conf c;

	if (P(text, &c) != 0) {
		fprintf(stderr, "  %s\n", err);
		return 0;
	}
	conf_free(&c);
	return 1;
}

/* conf_print into a malloc'd string. */
static char *printed(const struct conf *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	conf_print(c, fp);
	fclose(fp);
	return buf;
}

/* The printed line for key, without the newline, into out. */
static const char *line_of(const char *all, const char *key, char *out, size_t outlen)
{
	size_t kl = strlen(key);

	for (const char *p = all; p && *p; ) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);

		if (ll > kl && strncmp(p, key, kl) == 0 && p[kl] == ' ') {
			snprintf(out, outlen, "%.*s", (int)ll, p);
			return out;
		}
		p = nl ? nl + 1 : NULL;
	}
	return "(missing)";
}

static void check_spec_defaults(const struct conf *c)
{
	char b[NETADDR_STRLEN];

	CHECK(c->nlisten == 1);
	if (c->nlisten == 1)
		CHECK_STR(hostport_str(&c->listen[0], b, sizeof b), "127.0.0.1:2525");
	CHECK(c->nsubmission_listen == 0 && c->nsmtps_listen == 0);
	CHECK_STR(c->spool_dir, "./var/spool");
	CHECK_STR(c->mail_dir, "./var/mail");
	CHECK(c->nlocal_domains == 1);
	if (c->nlocal_domains == 1)
		CHECK_STR(c->local_domains[0], "localhost");
	CHECK(c->recipients_file == NULL);
	CHECK(c->nrelay_networks == 2);
	if (c->nrelay_networks == 2) {
		CHECK(c->relay_networks[0].net.family == AF_INET && c->relay_networks[0].prefix == 8);
		CHECK(c->relay_networks[1].net.family == AF_INET6 && c->relay_networks[1].prefix == 128);
	}
	CHECK(c->tls_loopback == 0);
	CHECK(c->auth_users_file == NULL);
	CHECK(c->message_size_limit == 10485760);
	CHECK(c->recipient_limit == 1000);
	CHECK(c->max_connections == 1000);
	CHECK(c->max_connections_per_ip == 50);
	CHECK(c->command_timeout == 300);
	CHECK(c->data_timeout == 600);
	CHECK(c->relayhost == NULL);
	CHECK(c->ndns_servers == 0);
	CHECK(c->smtp_port == 25);
	CHECK(c->retry_min == 300);
	CHECK(c->retry_max == 3600);
	CHECK(c->queue_lifetime == 5 * 86400);
	CHECK(c->delay_warning == 4 * 3600);
	CHECK(c->log_level == LOG_INFO);
}

TEST(empty_text_gives_spec_defaults)
{
	struct conf c;

	CHECK(P("", &c) == 0);
	check_spec_defaults(&c);
	CHECK_STR(c.hostname, "mx.example.org");
	CHECK_STR(c.source, "t.conf");
	CHECK(c.tls_cert_file == NULL && c.tls_key_file == NULL);
	for (int k = 0; k < CK__COUNT; k++)
		CHECK(c.set[k] == 0);
	conf_free(&c);
}

TEST(default_text_parses_to_spec_defaults)
{
	struct conf c;

	CHECK(conf_parse("(embedded default)", conf_default_text, strlen(conf_default_text),
	    "h.example", &c, err, sizeof err) == 0);
	check_spec_defaults(&c);
	CHECK_STR(c.tls_cert_file, "./var/tls/cert.pem");
	CHECK_STR(c.tls_key_file, "./var/tls/key.pem");
	for (int k = 0; k < CK__COUNT; k++)
		if (k != CK_TLS_CERT_FILE && k != CK_TLS_KEY_FILE)
			CHECK(c.set[k] == 0);
	conf_free(&c);
}

TEST(load_without_path_uses_embedded_default)
{
	struct conf c;

	CHECK(conf_load(NULL, &c, err, sizeof err) == 0);
	CHECK_STR(c.source, "(embedded default)");
	check_spec_defaults(&c);
	CHECK(c.hostname != NULL && c.hostname[0] != '\0');
	conf_free(&c);
}

TEST(every_spec_key_is_accepted)
{
	static const char text[] =
	    "hostname = mail.example.com\n"
	    "listen = 0.0.0.0:25, [::]:25\n"
	    "submission_listen = *:587\n"
	    "smtps_listen = [::1]:465 127.0.0.1:465\n"
	    "spool_dir = /var/spool/imsd\n"
	    "mail_dir = /var/mail/imsd\n"
	    "local_domains = Example.COM, example.net.\n"
	    "recipients_file = /etc/imsd/recipients\n"
	    "relay_networks = 10.0.0.0/8, 2001:db8::/32 192.0.2.1\n"
	    "proxy_networks = 10.1.0.0/16\n"
	    "tls_cert_file = /etc/imsd/cert.pem\n"
	    "tls_key_file = /etc/imsd/key.pem\n"
	    "tls_loopback = yes\n"
	    "auth_users_file = /etc/imsd/users\n"
	    "message_size_limit = 52428800\n"
	    "recipient_limit = 100\n"
	    "max_connections = 200\n"
	    "max_connections_per_ip = 20\n"
	    "max_session_memory = 64m\n"
	    "command_timeout = 2m\n"
	    "data_timeout = 3m\n"
	    "relayhost = [smarthost.example.net]:2525\n"
	    "dns_servers = 9.9.9.9 [2620:fe::fe]:53\n"
	    "smtp_port = 2525\n"
	    "retry_min = 1m\n"
	    "retry_max = 2h\n"
	    "queue_lifetime = 3d\n"
	    "delay_warning = 6h\n"
	    "log_level = debug\n"
	    "workers = 4\n"
	    "run_user = mail\n"
	    "queue_minfree = 100m\n"
	    "dkim_sign = Example.COM:s2026:/etc/imsd/dkim/rsa.key example.com:e2026:/etc/imsd/e.key\n"
	    "inbound_checks = no\n"
	    "dmarc_reject = no\n"
	    "spf_reject = yes\n"
	    "dnsbl = zen.spamhaus.org, bl.example.org=2\n"
	    "dnswl = list.dnswl.org=3\n"
	    "dnsbl_threshold = 2\n"
	    "metrics_listen = 127.0.0.1:9187\n"
	    "smtp_tls = verify\n"
	    "tls_policy = example.org:opportunistic\n"
	    "smtp_tls_ca_file = /etc/imsd/ca.pem\n"
	    "dnssec_trust_resolver = yes\n"
	    "mta_sts_port = 8443\n"
	    "mailbox_transport = lmtp:unix:/run/dovecot/lmtp\n"
	    "transport_map = /etc/imsd/transport\n"
	    "auth_backend = file\n"
	    "recipient_check = transport\n"
	    "milters = inet:127.0.0.1:11332, { unix:/run/opendkim.sock, default_action=accept }\n"
	    "submission_milters = unix:/run/opendkim.sock\n"
	    "milter_default_action = reject\n"
	    "milter_connect_timeout = 5s\n"
	    "milter_command_timeout = 10s\n"
	    "milter_content_timeout = 2m\n"
	    "policy_services = { inet:[::1]:10023, timeout=5s, stage=rcpt, stage=eom }\n"
	    "policy_default_action = accept\n"
	    "policy_timeout = 20s\n"
	    "policy_cache_ttl = 1m\n"
	    "sender_login_maps = /etc/imsd/sender-logins\n"
	    "alias_maps = /etc/aliases\n"
	    "system_mailboxes = yes\n";
	struct conf c;

	CHECK(P(text, &c) == 0);
	CHECK_STR(err, "");
	for (int k = 0; k < CK__COUNT; k++) {
		CHECK(c.set[k] == 1);
		CHECK(c.set_line[k] == (unsigned)k + 1);	/* the text is in enum order */
	}
	CHECK_STR(c.hostname, "mail.example.com");
	CHECK(c.ndkim_sign == 2);
	CHECK_STR(c.dkim_sign[0].domain, "example.com");
	CHECK_STR(c.dkim_sign[0].selector, "s2026");
	CHECK_STR(c.dkim_sign[1].keyfile, "/etc/imsd/e.key");
	CHECK(c.inbound_checks == 0 && c.dmarc_reject == 0 && c.spf_reject == 1);
	CHECK(c.ndnsbl == 2 && c.dnsbl[0].weight == 1 && c.dnsbl[1].weight == 2);
	CHECK_STR(c.dnsbl[1].zone, "bl.example.org");
	CHECK(c.ndnswl == 1 && c.dnswl[0].weight == 3 && c.dnsbl_threshold == 2);
	CHECK(c.nlisten == 2 && c.nsubmission_listen == 1 && c.nsmtps_listen == 2);
	CHECK(c.nlocal_domains == 2);
	if (c.nlocal_domains == 2) {
		CHECK_STR(c.local_domains[0], "example.com");
		CHECK_STR(c.local_domains[1], "example.net");
	}
	CHECK(c.nrelay_networks == 3);
	CHECK(c.tls_loopback == 1);
	CHECK(c.message_size_limit == 52428800);
	CHECK(c.recipient_limit == 100 && c.max_connections == 200 && c.max_connections_per_ip == 20);
	CHECK(c.command_timeout == 120 && c.data_timeout == 180);
	CHECK_STR(c.relayhost, "smarthost.example.net");
	CHECK(c.relayhost_literal == 1 && c.relayhost_port == 2525);
	CHECK(c.ndns_servers == 2);
	if (c.ndns_servers == 2)
		CHECK(c.dns_servers[0].port == 53 && c.dns_servers[1].addr.family == AF_INET6);
	CHECK(c.smtp_port == 2525);
	CHECK(c.retry_min == 60 && c.retry_max == 7200);
	CHECK(c.queue_lifetime == 3 * 86400 && c.delay_warning == 6 * 3600);
	CHECK(c.log_level == LOG_DEBUG);
	CHECK(conf_is_local_domain(&c, "example.com"));
	CHECK(conf_is_local_domain(&c, "example.net"));
	CHECK(!conf_is_local_domain(&c, "example.org"));
	conf_free(&c);
}

TEST(filter_keys_default_to_tempfail_and_postfix_timeouts)
{
	struct conf c;

	CHECK(P("", &c) == 0);
	CHECK(c.nmilters == 0 && c.npolicy_services == 0 && c.nsubmission_milters == 0);
	CHECK(c.milter_default_action == FILTER_TEMPFAIL);
	CHECK(c.policy_default_action == FILTER_TEMPFAIL);
	CHECK(c.milter_connect_timeout == 30 && c.milter_command_timeout == 30);
	CHECK(c.milter_content_timeout == 300 && c.policy_timeout == 100);
	CHECK(c.policy_cache_ttl == 0);
	conf_free(&c);
}

TEST(milters_take_endpoints_and_per_milter_settings)
{
	struct conf c;
	const struct conf_milter *m;
	size_t n;

	CHECK(P("milters = inet:127.0.0.1:11332 {unix:/run/d.sock,default_action=accept,"
	    "connect_timeout=5s,command_timeout=1m,content_timeout=2m} inet:[::1]:1 "
	    "inet:localhost:8891\n", &c) == 0);
	CHECK(c.nmilters == 4);
	if (c.nmilters == 4) {
		CHECK(c.milters[0].ep.kind == CONF_EP_INET && c.milters[0].ep.port == 11332);
		CHECK_STR(c.milters[0].ep.host, "127.0.0.1");
		CHECK(c.milters[0].default_action == FILTER_ACTION_UNSET);
		CHECK(c.milters[0].connect_timeout == 0);
		CHECK(c.milters[1].ep.kind == CONF_EP_UNIX);
		CHECK_STR(c.milters[1].ep.path, "/run/d.sock");
		CHECK_STR(c.milters[1].name, "unix:/run/d.sock");
		CHECK(c.milters[1].default_action == FILTER_ACCEPT);
		CHECK(c.milters[1].connect_timeout == 5 && c.milters[1].command_timeout == 60);
		CHECK(c.milters[1].content_timeout == 120);
		CHECK_STR(c.milters[2].ep.host, "::1");
		CHECK_STR(c.milters[3].ep.host, "localhost");
	}
	/* submission listeners use milters until submission_milters is set */
	m = conf_listener_milters(&c, 1, &n);
	CHECK(m == c.milters && n == 4);
	conf_free(&c);
	CHECK(P("milters = inet:127.0.0.1:1\nsubmission_milters =\n", &c) == 0);
	m = conf_listener_milters(&c, 1, &n);
	CHECK(n == 0);
	m = conf_listener_milters(&c, 0, &n);
	CHECK(n == 1 && m == c.milters);
	conf_free(&c);
}

TEST(bad_milter_and_policy_values_name_file_line_key_and_service)
{
	CHECK(fails_with("\nmilters = tcp:1.2.3.4:5\n",
	    "t.conf:2: milters: \"tcp:1.2.3.4:5\" is not inet:HOST:PORT or unix:PATH"));
	CHECK(fails_with("milters = inet:::1:5\n",
	    "t.conf:1: milters: \"inet:::1:5\": an IPv6 address is written inet:[ADDR]:PORT"));
	CHECK(fails_with("milters = inet:a..b:5\n",
	    "t.conf:1: milters: \"inet:a..b:5\": \"a..b\" is neither an IPv4 address nor a host "
	    "name"));
	CHECK(fails_with("milters = inet:h:70000\n",
	    "t.conf:1: milters: \"inet:h:70000\": the port must be 1 to 65535"));
	CHECK(fails_with("milters = { inet:h:1, default_action=maybe }\n",
	    "t.conf:1: milters: { inet:h:1, ... }: default_action: \"maybe\" is not tempfail, "
	    "accept or reject"));
	CHECK(fails_with("milters = { inet:h:1, timeout=5s }\n",
	    "t.conf:1: milters: { inet:h:1, ... }: \"timeout\" is not a milter setting "
	    "(connect_timeout, command_timeout, content_timeout, default_action)"));
	CHECK(fails_with("milters = { inet:h:1, command_timeout = 5s }\n",
	    "t.conf:1: milters: { inet:h:1, ... }: \"command_timeout\" is not NAME=VALUE (no "
	    "blanks around '=')"));
	CHECK(fails_with("milters = { inet:h:1, command_timeout=5 }\n",
	    "t.conf:1: milters: { inet:h:1, ... }: command_timeout=\"5\" is not a duration from "
	    "1s to 3600s (with a unit: s, m, h or d)"));
	CHECK(fails_with("milters = { inet:h:1, command_timeout=5s, command_timeout=6s }\n",
	    "t.conf:1: milters: { inet:h:1, ... }: command_timeout is given twice"));
	CHECK(fails_with("milters = { inet:h:1\n", "t.conf:1: milters: '{' without its '}'"));
	CHECK(fails_with("milters = inet:h:1 }\n", "t.conf:1: milters: '}' without its '{'"));
	CHECK(fails_with("milters = {}\n", "t.conf:1: milters: '{ }' without a milter endpoint"));
	CHECK(fails_with("milters = unix:/a, unix:/a\n", "t.conf:1: milters: unix:/a is listed "
	    "twice"));
	CHECK(fails_starting("milters = unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	    "t.conf:1: milters: \"unix:/aaa"));
	CHECK(fails_with("milter_default_action = quarantine\n",
	    "t.conf:1: milter_default_action: \"quarantine\" is not tempfail, accept or reject"));
	CHECK(fails_with("policy_services = { inet:h:1, stage=body }\n",
	    "t.conf:1: policy_services: { inet:h:1, ... }: stage=\"body\" is not connect, helo, "
	    "mail, rcpt, data or eom"));
	CHECK(fails_with("policy_services = { inet:h:1, stage=rcpt, stage=rcpt }\n",
	    "t.conf:1: policy_services: { inet:h:1, ... }: stage=rcpt is given twice"));
	CHECK(fails_with("policy_services = inet:h:1 { inet:h:1, stage=mail }\n",
	    "t.conf:1: policy_services: inet:h:1 is listed twice (give one entry several stage= "
	    "settings)"));
	CHECK(fails_with("policy_services = { inet:h:1, cache_ttl=2d }\n",
	    "t.conf:1: policy_services: { inet:h:1, ... }: cache_ttl=\"2d\" is not a duration "
	    "from 0s to 86400s (with a unit: s, m, h or d)"));
	CHECK(fails_with("policy_timeout = 0s\n", "t.conf:1: policy_timeout: 0s is out of range "
	    "(1s to 3600s)"));
}

TEST(policy_services_default_to_rcpt_and_print_back)
{
	struct conf a, b;
	char *pa, *pb, l[512];

	CHECK(P("policy_services = inet:127.0.0.1:10023, { unix:/run/p, timeout=10s, "
	    "default_action=dunno, stage=mail, stage=rcpt, cache_ttl=0s, policy_context=x }\n"
	    "policy_default_action = reject\n", &a) == 0);
	CHECK(a.npolicy_services == 2);
	if (a.npolicy_services == 2) {
		CHECK(a.policy_services[0].stages == POLICY_AT_RCPT);
		CHECK(a.policy_services[0].default_action == FILTER_ACTION_UNSET);
		CHECK(a.policy_services[1].stages == (POLICY_AT_MAIL | POLICY_AT_RCPT));
		CHECK(a.policy_services[1].default_action == FILTER_ACCEPT);
		CHECK(a.policy_services[1].timeout == 10 && a.policy_services[1].cache_ttl_set);
		CHECK_STR(a.policy_services[1].context, "x");
	}
	CHECK(a.policy_default_action == FILTER_REJECT);
	pa = printed(&a);
	CHECK_STR(line_of(pa, "policy_services", l, sizeof l),
	    "policy_services = inet:127.0.0.1:10023, { unix:/run/p, timeout=10s, "
	    "default_action=accept, stage=mail, stage=rcpt, cache_ttl=0s, policy_context=x }"
	    "  # not yet in effect");
	CHECK(P(pa, &b) == 0);
	pb = printed(&b);
	CHECK_STR(line_of(pb, "policy_services", l, sizeof l),
	    "policy_services = inet:127.0.0.1:10023, { unix:/run/p, timeout=10s, "
	    "default_action=accept, stage=mail, stage=rcpt, cache_ttl=0s, policy_context=x }"
	    "  # not yet in effect");
	free(pa);
	free(pb);
	conf_free(&a);
	conf_free(&b);
}

TEST(every_key_has_a_name)
{
	for (int k = 0; k < CK__COUNT; k++)
		CHECK(conf_key_name((enum conf_key)k) != NULL);
	CHECK_STR(conf_key_name(CK_MAX_CONNECTIONS_PER_IP), "max_connections_per_ip");
	CHECK(conf_key_name(CK__COUNT) == NULL);
}

TEST(unknown_key_error_names_file_line_and_key)
{
	CHECK(fails_with("# comment\n\nfrobnicate = 1\n", "t.conf:3: frobnicate: unknown key"));
	CHECK(fails_with("Listen = 1.2.3.4:25\n", "t.conf:1: Listen: unknown key"));
}

TEST(line_without_equals_is_an_error)
{
	CHECK(fails_with("listen 127.0.0.1:25\n", "t.conf:1: expected 'key = value'"));
	CHECK(fails_with("\n = 5\n", "t.conf:2: expected 'key = value'"));
}

TEST(bad_value_error_names_file_line_and_key)
{
	CHECK(fails_with("\n\nrecipient_limit = lots\n",
	    "t.conf:3: recipient_limit: \"lots\" is not a number"));
	CHECK(fails_starting("listen = 127.0.0.1\n", "t.conf:1: listen: \"127.0.0.1\" is not ADDR:PORT"));
	CHECK(fails_starting("tls_loopback = maybe\n", "t.conf:1: tls_loopback: \"maybe\""));
	CHECK(fails_starting("log_level = loud\n", "t.conf:1: log_level: \"loud\""));
}

TEST(authentication_keys_refuse_bad_values_with_file_line_and_key)
{
	CHECK(fails_starting("\ndkim_sign = example.com:s1\n",
	    "t.conf:2: dkim_sign: \"example.com:s1\" is not DOMAIN:SELECTOR:KEYFILE"));
	CHECK(fails_starting("dkim_sign = example.com:s1:key.pem\n",
	    "t.conf:1: dkim_sign: the key file \"key.pem\" must be an absolute path"));
	CHECK(fails_starting("dkim_sign = example.com:bad/sel:/k\n",
	    "t.conf:1: dkim_sign: \"bad/sel\" is not a valid DKIM selector"));
	CHECK(fails_starting("dkim_sign = exa_mple..com:s:/k\n", "t.conf:1: dkim_sign: "));
	CHECK(fails_starting("dkim_sign = a.example:s:/k a.example:s:/j\n",
	    "t.conf:1: dkim_sign: selector s of a.example is listed twice"));
	CHECK(fails_starting("dnsbl = zen.spamhaus.org=0\n",
	    "t.conf:1: dnsbl: the weight of \"zen.spamhaus.org\" must be a number from 1 to 100"));
	CHECK(fails_starting("dnswl = localhost\n", "t.conf:1: dnswl: \"localhost\" is not a DNS "
	    "list zone"));
	CHECK(fails_starting("dnsbl_threshold = 0\n", "t.conf:1: dnsbl_threshold: "));
	CHECK(fails_starting("spf_reject = perhaps\n", "t.conf:1: spf_reject: \"perhaps\""));
}

TEST(duplicate_key_error_names_both_lines)
{
	CHECK(fails_with("listen = 127.0.0.1:25\n# x\nlisten = 127.0.0.1:26\n",
	    "t.conf:3: listen: set twice (first on line 1)"));
}

TEST(comments_blank_lines_and_crlf_are_ignored)
{
	struct conf c;

	CHECK(P("# top\r\n\r\n   \t\n  recipient_limit = 7   # trailing comment\r\n"
	    "spool_dir = /a#b\n", &c) == 0);
	CHECK(c.recipient_limit == 7);
	CHECK_STR(c.spool_dir, "/a#b");
	conf_free(&c);
}

TEST(last_line_without_newline_counts)
{
	struct conf c;

	CHECK(P("recipient_limit = 9", &c) == 0);
	CHECK(c.recipient_limit == 9);
	conf_free(&c);
}

TEST(nul_byte_is_an_error)
{
	static const char text[] = "spool_dir = /a\0b\n";
	struct conf c;

	CHECK(conf_parse("t.conf", text, sizeof text - 1, "h.example", &c, err, sizeof err) == -1);
	CHECK_STR(err, "t.conf:1: NUL byte in line");
}

TEST(overlong_line_is_an_error)
{
	size_t n = 5000;
	char *text = malloc(n + 1);
	struct conf c;

	memset(text, ' ', n);
	memcpy(text, "spool_dir = /", 13);
	memset(text + 13, 'a', n - 13);
	text[n] = '\0';
	CHECK(P(text, &c) == -1);
	CHECK_STR(err, "t.conf:1: line too long (more than 4096 bytes)");
	free(text);

	/* exactly 4096 bytes is fine */
	n = 4096;
	text = malloc(n + 2);
	memcpy(text, "spool_dir = /", 13);
	memset(text + 13, 'a', n - 13);
	text[n] = '\n';
	text[n + 1] = '\0';
	CHECK(P(text, &c) == 0);
	CHECK(c.spool_dir && strlen(c.spool_dir) == n - 12);
	conf_free(&c);
	free(text);
}

TEST(error_leaves_output_zeroed)
{
	struct conf c;

	memset(&c, 0x5a, sizeof c);
	CHECK(P("listen = 127.0.0.1:25\nbogus = 1\n", &c) == -1);
	CHECK(c.listen == NULL && c.hostname == NULL && c.source == NULL && c.nlisten == 0);
	conf_free(&c);	/* harmless on a zeroed conf */
}

TEST(hostname_must_be_a_valid_domain)
{
	struct conf c;

	CHECK(parses("hostname = mail.example.com\n"));
	CHECK(parses("hostname = localhost\n"));
	CHECK(parses("hostname = a-b.c0.example.\n"));
	CHECK(fails_starting("hostname = -bad.example\n", "t.conf:1: hostname: "));
	CHECK(fails_starting("hostname = bad-.example\n", "t.conf:1: hostname: "));
	CHECK(fails_starting("hostname = a..example\n", "t.conf:1: hostname: "));
	CHECK(fails_starting("hostname = under_score.example\n", "t.conf:1: hostname: "));
	CHECK(fails_starting("hostname = 192.0.2.1\n", "t.conf:1: hostname: "));
	CHECK(fails_starting("hostname = two words\n", "t.conf:1: hostname: "));
	CHECK(fails_with("hostname =\n", "t.conf:1: hostname: a host name is required"));
	{
		char text[400];

		snprintf(text, sizeof text, "hostname = %.*s.example\n", 64,
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
		CHECK(fails_starting(text, "t.conf:1: hostname: "));
	}
	CHECK(P("hostname = Mail.Example.COM.\n", &c) == 0);
	CHECK_STR(c.hostname, "Mail.Example.COM");
	conf_free(&c);
}

TEST(invalid_system_hostname_needs_explicit_hostname)
{
	struct conf c;

	CHECK(conf_parse("t.conf", "", 0, "bad_name", &c, err, sizeof err) == -1);
	CHECK(strncmp(err, "t.conf: hostname: ", 18) == 0);
	CHECK(conf_parse("t.conf", "hostname = ok.example\n", 22, "bad_name", &c, err, sizeof err) == 0);
	conf_free(&c);
	CHECK(conf_parse("t.conf", "", 0, NULL, &c, err, sizeof err) == 0);
	CHECK_STR(c.hostname, "localhost");
	conf_free(&c);
}

TEST(local_domains_are_lowercased_and_trailing_dot_stripped)
{
	struct conf c;

	CHECK(P("local_domains = Example.COM. example.com,Other.Example\n", &c) == 0);
	CHECK(c.nlocal_domains == 2);
	if (c.nlocal_domains == 2) {
		CHECK_STR(c.local_domains[0], "example.com");
		CHECK_STR(c.local_domains[1], "other.example");
	}
	CHECK(conf_is_local_domain(&c, "other.example"));
	CHECK(!conf_is_local_domain(&c, "Other.Example"));	/* caller lower-cases */
	CHECK(!conf_is_local_domain(&c, "localhost"));
	conf_free(&c);
	CHECK(fails_starting("local_domains = ok.example bad..example\n",
	    "t.conf:1: local_domains: \"bad..example\""));
	CHECK(parses("local_domains =\n"));
}

TEST(sizes_are_bytes_with_optional_suffix)
{
	uint64_t n;
	struct conf c;

	CHECK(conf_parse_size("1024", &n) == 0 && n == 1024);
	CHECK(conf_parse_size("10k", &n) == 0 && n == 10240);
	CHECK(conf_parse_size("10M", &n) == 0 && n == 10485760);
	CHECK(conf_parse_size("2g", &n) == 0 && n == 2147483648ull);
	CHECK(conf_parse_size("18446744073709551615", &n) == 0 && n == UINT64_MAX);
	CHECK(conf_parse_size("18446744073709551616", &n) == -1);
	CHECK(conf_parse_size("17179869184g", &n) == -1);
	CHECK(conf_parse_size("", &n) == -1);
	CHECK(conf_parse_size("-1", &n) == -1);
	CHECK(conf_parse_size("10 M", &n) == -1);
	CHECK(conf_parse_size("10MB", &n) == -1);
	CHECK(conf_parse_size("1.5m", &n) == -1);
	CHECK(P("message_size_limit = 25m\n", &c) == 0);
	CHECK(c.message_size_limit == 25 * 1048576ull);
	conf_free(&c);
}

TEST(message_size_limit_must_be_at_least_1024)
{
	CHECK(parses("message_size_limit = 1024\n"));
	CHECK(fails_starting("message_size_limit = 1023\n", "t.conf:1: message_size_limit: 1023 is out of range"));
	CHECK(fails_starting("message_size_limit = 0\n", "t.conf:1: message_size_limit: "));
}

TEST(durations_take_s_m_h_d)
{
	unsigned s;

	CHECK(conf_parse_duration("45s", &s) == 0 && s == 45);
	CHECK(conf_parse_duration("5m", &s) == 0 && s == 300);
	CHECK(conf_parse_duration("4h", &s) == 0 && s == 14400);
	CHECK(conf_parse_duration("5d", &s) == 0 && s == 432000);
	CHECK(conf_parse_duration("1h30m", &s) == 0 && s == 5400);
	CHECK(conf_parse_duration("5", &s) == -1);
	CHECK(conf_parse_duration("5x", &s) == -1);
	CHECK(conf_parse_duration("m", &s) == -1);
	CHECK(conf_parse_duration("", &s) == -1);
	CHECK(conf_parse_duration("5 m", &s) == -1);
	CHECK(conf_parse_duration("5M", &s) == -1);
	CHECK(conf_parse_duration("99999999999d", &s) == -1);
	CHECK(conf_parse_duration("49000d", &s) == 0 && s == 49000u * 86400);
	CHECK(conf_parse_duration("50000d50000d", &s) == -1);
}

TEST(duration_without_unit_is_an_error)
{
	CHECK(fails_with("command_timeout = 300\n",
	    "t.conf:1: command_timeout: \"300\" needs a unit: s, m, h or d (e.g. 300s)"));
	CHECK(fails_starting("data_timeout = soon\n", "t.conf:1: data_timeout: \"soon\" is not a duration"));
}

TEST(timeouts_and_limits_must_be_at_least_one)
{
	CHECK(fails_starting("command_timeout = 0s\n", "t.conf:1: command_timeout: 0s is out of range"));
	CHECK(fails_starting("data_timeout = 0m\n", "t.conf:1: data_timeout: "));
	CHECK(fails_starting("recipient_limit = 0\n", "t.conf:1: recipient_limit: 0 is out of range"));
	CHECK(fails_starting("max_connections = 0\n", "t.conf:1: max_connections: "));
	CHECK(fails_starting("max_connections_per_ip = 0\n", "t.conf:1: max_connections_per_ip: "));
	CHECK(fails_starting("recipient_limit = -5\n", "t.conf:1: recipient_limit: "));
	CHECK(fails_starting("recipient_limit = 99999999999\n", "t.conf:1: recipient_limit: "));
	CHECK(parses("command_timeout = 1s\nrecipient_limit = 1\nmax_connections = 1\n"
	    "max_connections_per_ip = 1\n"));
	/* per-IP above the total is allowed (the total then bounds it) */
	CHECK(parses("max_connections = 10\nmax_connections_per_ip = 20\n"));
}

TEST(retry_min_above_retry_max_is_an_error_on_retry_max_line)
{
	CHECK(fails_with("retry_min = 2h\n\nretry_max = 30m\n",
	    "t.conf:3: retry_max: 30m is less than retry_min (2h)"));
	CHECK(fails_with("retry_max = 30m\nretry_min = 2h\n",
	    "t.conf:1: retry_max: 30m is less than retry_min (2h)"));
	/* only retry_min given: its own line */
	CHECK(fails_with("\nretry_min = 2h\n", "t.conf:2: retry_min: 2h is more than retry_max (1h)"));
	CHECK(parses("retry_min = 1h\nretry_max = 1h\n"));
}

TEST(booleans_accept_the_usual_spellings)
{
	static const char *const yes[] = { "yes", "YES", "true", "on", "1", "True" };
	static const char *const no[] = { "no", "No", "false", "off", "0", "OFF" };
	char text[64];
	struct conf c;

	for (size_t i = 0; i < 6; i++) {
		snprintf(text, sizeof text, "tls_loopback = %s\n", yes[i]);
		CHECK(P(text, &c) == 0 && c.tls_loopback == 1);
		conf_free(&c);
		snprintf(text, sizeof text, "tls_loopback = %s\n", no[i]);
		CHECK(P(text, &c) == 0 && c.tls_loopback == 0);
		conf_free(&c);
	}
	CHECK(fails_starting("tls_loopback =\n", "t.conf:1: tls_loopback: "));
	CHECK(fails_starting("tls_loopback = 2\n", "t.conf:1: tls_loopback: "));
}

TEST(listen_must_not_be_empty_but_other_listeners_may)
{
	CHECK(fails_with("listen =\n", "t.conf:1: listen: at least one ADDR:PORT is required"));
	CHECK(fails_with("listen = , ,\n", "t.conf:1: listen: at least one ADDR:PORT is required"));
	CHECK(parses("submission_listen =\nsmtps_listen =\n"));
}

TEST(listen_accepts_lists_and_v6)
{
	struct conf c;
	char b[NETADDR_STRLEN];

	CHECK(P("listen = 127.0.0.1:2525,[::1]:2525   *:25\n", &c) == 0);
	CHECK(c.nlisten == 3);
	if (c.nlisten == 3) {
		CHECK_STR(hostport_str(&c.listen[1], b, sizeof b), "[::1]:2525");
		CHECK_STR(hostport_str(&c.listen[2], b, sizeof b), "0.0.0.0:25");
	}
	conf_free(&c);
	CHECK(fails_starting("listen = ::1:25\n", "t.conf:1: listen: \"::1:25\""));
	CHECK(fails_starting("listen = 127.0.0.1:0\n", "t.conf:1: listen: "));
	CHECK(fails_starting("listen = localhost:25\n", "t.conf:1: listen: "));
}

TEST(same_listener_twice_is_an_error)
{
	CHECK(fails_with("listen = 127.0.0.1:25 127.0.0.1:25\n",
	    "t.conf:1: listen: \"127.0.0.1:25\" is listed twice"));
	CHECK(fails_with("listen = 127.0.0.1:25\nsmtps_listen = 127.0.0.1:25\n",
	    "t.conf:2: smtps_listen: 127.0.0.1:25 is also in listen"));
	CHECK(fails_with("submission_listen = 127.0.0.1:2525\n",
	    "t.conf:1: submission_listen: 127.0.0.1:2525 is also in listen"));
	CHECK(parses("listen = 127.0.0.1:25\nsubmission_listen = 127.0.0.1:587\n"));
}

TEST(metrics_listen_is_unset_by_default_and_checked_like_a_listener)
{
	struct conf c;
	char b[NETADDR_STRLEN];

	CHECK(P("", &c) == 0);
	CHECK(c.nmetrics_listen == 0 && c.metrics_listen == NULL);
	conf_free(&c);
	CHECK(P("metrics_listen = [::1]:9187\n", &c) == 0);
	CHECK(c.nmetrics_listen == 1);
	if (c.nmetrics_listen == 1)
		CHECK_STR(hostport_str(&c.metrics_listen[0], b, sizeof b), "[::1]:9187");
	conf_free(&c);
	CHECK(fails_starting("metrics_listen = localhost:9187\n", "t.conf:1: metrics_listen: "));
	CHECK(fails_starting("\nmetrics_listen = 127.0.0.1\n", "t.conf:2: metrics_listen: "));
	CHECK(fails_with("metrics_listen = 127.0.0.1:2525\n",
	    "t.conf:1: metrics_listen: 127.0.0.1:2525 is also in listen"));
}

TEST(relay_networks_accept_cidrs_and_may_be_empty)
{
	struct conf c;
	struct netaddr a;

	CHECK(P("relay_networks = 192.0.2.0/24, 2001:db8::/32\n", &c) == 0);
	CHECK(c.nrelay_networks == 2);
	netaddr_parse("::ffff:192.0.2.9", &a);
	CHECK(cidr_match(&c.relay_networks[0], &a));
	conf_free(&c);
	CHECK(P("relay_networks =\n", &c) == 0);
	CHECK(c.nrelay_networks == 0);
	conf_free(&c);
	CHECK(fails_starting("relay_networks = 10.0.0.0/40\n", "t.conf:1: relay_networks: \"10.0.0.0/40\""));
}

TEST(relayhost_forms)
{
	struct conf c;

	CHECK(P("relayhost = smtp.example.net\n", &c) == 0);
	CHECK_STR(c.relayhost, "smtp.example.net");
	CHECK(c.relayhost_literal == 0 && c.relayhost_port == 25);
	conf_free(&c);

	CHECK(P("relayhost = smtp.example.net:587\n", &c) == 0);
	CHECK_STR(c.relayhost, "smtp.example.net");
	CHECK(c.relayhost_literal == 0 && c.relayhost_port == 587);
	conf_free(&c);

	/* Postfix style: a name in brackets means no MX lookup */
	CHECK(P("relayhost = [Smtp.Example.net.]:26\n", &c) == 0);
	CHECK_STR(c.relayhost, "Smtp.Example.net");
	CHECK(c.relayhost_literal == 1 && c.relayhost_port == 26);
	conf_free(&c);
	CHECK(fails_starting("relayhost = [bad..name]\n", "t.conf:1: relayhost: "));
	CHECK(fails_starting("relayhost = []\n", "t.conf:1: relayhost: "));

	CHECK(P("relayhost = [192.0.2.25]\n", &c) == 0);
	CHECK_STR(c.relayhost, "192.0.2.25");
	CHECK(c.relayhost_literal == 1 && c.relayhost_port == 25);
	conf_free(&c);

	CHECK(P("relayhost = [192.0.2.25]:2525\n", &c) == 0);
	CHECK(c.relayhost_literal == 1 && c.relayhost_port == 2525);
	conf_free(&c);

	CHECK(P("relayhost = [2001:db8::25]:587\n", &c) == 0);
	CHECK_STR(c.relayhost, "2001:db8::25");
	CHECK(c.relayhost_literal == 1 && c.relayhost_port == 587);
	conf_free(&c);

	CHECK(P("relayhost = 192.0.2.25:26\n", &c) == 0);
	CHECK_STR(c.relayhost, "192.0.2.25");
	CHECK(c.relayhost_literal == 1 && c.relayhost_port == 26);
	conf_free(&c);

	CHECK(fails_starting("relayhost = 2001:db8::25\n", "t.conf:1: relayhost: "));
	CHECK(fails_starting("relayhost = smtp.example.net:0\n", "t.conf:1: relayhost: port"));
	CHECK(fails_starting("relayhost = smtp.example.net:\n", "t.conf:1: relayhost: port"));
	CHECK(fails_starting("relayhost = [192.0.2.1]x\n", "t.conf:1: relayhost: "));
	CHECK(fails_starting("relayhost = bad_host\n", "t.conf:1: relayhost: "));
	CHECK(fails_starting("relayhost = a b\n", "t.conf:1: relayhost: "));

	CHECK(P("relayhost =\n", &c) == 0);
	CHECK(c.relayhost == NULL);
	conf_free(&c);
}

TEST(dns_servers_forms)
{
	struct conf c;
	char b[NETADDR_STRLEN];

	CHECK(P("dns_servers = 192.0.2.53, 192.0.2.54:5353 [2001:db8::53]:53 2001:db8::54 [::1]\n",
	    &c) == 0);
	CHECK(c.ndns_servers == 5);
	if (c.ndns_servers == 5) {
		CHECK_STR(hostport_str(&c.dns_servers[0], b, sizeof b), "192.0.2.53:53");
		CHECK_STR(hostport_str(&c.dns_servers[1], b, sizeof b), "192.0.2.54:5353");
		CHECK_STR(hostport_str(&c.dns_servers[2], b, sizeof b), "[2001:db8::53]:53");
		CHECK_STR(hostport_str(&c.dns_servers[3], b, sizeof b), "[2001:db8::54]:53");
		CHECK_STR(hostport_str(&c.dns_servers[4], b, sizeof b), "[::1]:53");
	}
	conf_free(&c);
	CHECK(fails_starting("dns_servers = resolver.example\n", "t.conf:1: dns_servers: "));
	CHECK(fails_starting("dns_servers = 192.0.2.1:0\n", "t.conf:1: dns_servers: "));
	CHECK(fails_starting("dns_servers = 0.0.0.0\n", "t.conf:1: dns_servers: "));
	CHECK(parses("dns_servers =\n"));
}

TEST(smtp_port_is_1_to_65535)
{
	CHECK(parses("smtp_port = 1\n"));
	CHECK(parses("smtp_port = 65535\n"));
	CHECK(fails_starting("smtp_port = 0\n", "t.conf:1: smtp_port: "));
	CHECK(fails_starting("smtp_port = 65536\n", "t.conf:1: smtp_port: "));
}

TEST(empty_optional_paths_mean_unset)
{
	struct conf c;

	CHECK(P("recipients_file =\ntls_cert_file =\n", &c) == 0);
	CHECK(c.recipients_file == NULL && c.tls_cert_file == NULL);
	CHECK(c.set[CK_RECIPIENTS_FILE] == 1);
	conf_free(&c);
	CHECK(fails_with("spool_dir =\n", "t.conf:1: spool_dir: a path is required"));
}

TEST(unknown_key_with_odd_bytes_is_escaped)
{
	CHECK(fails_with("fr\xc3\xb6" "b = 1\n", "t.conf:1: \"fr\\xc3\\xb6b\": unknown key"));
	CHECK(fails_with("a\tb = 1\n", "t.conf:1: \"a\\x09b\": unknown key"));
	CHECK(fails_with("x\x01y = 1\n", "t.conf:1: control byte in line"));
}

TEST(print_marks_defaults_and_uses_largest_exact_unit)
{
	struct conf c;
	char *out, l[512];

	CHECK(P("command_timeout = 300s\ndata_timeout = 90s\nretry_max = 2d\nrecipient_limit = 5\n",
	    &c) == 0);
	out = printed(&c);
	CHECK_STR(line_of(out, "command_timeout", l, sizeof l), "command_timeout = 5m");
	CHECK_STR(line_of(out, "data_timeout", l, sizeof l), "data_timeout = 90s");
	CHECK_STR(line_of(out, "retry_max", l, sizeof l), "retry_max = 2d");
	CHECK_STR(line_of(out, "retry_min", l, sizeof l), "retry_min = 5m  # default");
	CHECK_STR(line_of(out, "queue_lifetime", l, sizeof l), "queue_lifetime = 5d  # default");
	CHECK_STR(line_of(out, "recipient_limit", l, sizeof l), "recipient_limit = 5");
	CHECK_STR(line_of(out, "listen", l, sizeof l), "listen = 127.0.0.1:2525  # default");
	CHECK_STR(line_of(out, "relay_networks", l, sizeof l),
	    "relay_networks = 127.0.0.0/8, ::1/128  # default");
	CHECK_STR(line_of(out, "hostname", l, sizeof l), "hostname = mx.example.org  # default");
	CHECK_STR(line_of(out, "tls_loopback", l, sizeof l), "tls_loopback = no  # default");
	CHECK_STR(line_of(out, "recipients_file", l, sizeof l), "recipients_file =  # default");
	CHECK_STR(line_of(out, "log_level", l, sizeof l), "log_level = info  # default");
	CHECK_STR(line_of(out, "message_size_limit", l, sizeof l),
	    "message_size_limit = 10485760  # default");
	{
		int lines = 0;

		for (const char *p = out; *p; p++)
			lines += *p == '\n';
		CHECK(lines == CK__COUNT);
	}
	free(out);
	conf_free(&c);
}

TEST(print_marks_no_key_not_yet_in_effect_now_that_all_are_built)
{
	struct conf c;
	char *out, l[512];

	CHECK(P("tls_loopback = yes\nrelayhost = [192.0.2.1]:2525\nsmtp_port = 25\n"
	    "submission_listen = 127.0.0.1:587\nrecipient_limit = 3\nlocal_domains = example.com\n",
	    &c) == 0);
	out = printed(&c);
	CHECK_STR(line_of(out, "tls_loopback", l, sizeof l), "tls_loopback = yes");
	CHECK_STR(line_of(out, "relayhost", l, sizeof l),
	    "relayhost = [192.0.2.1]:2525");
	CHECK_STR(line_of(out, "smtp_port", l, sizeof l), "smtp_port = 25");
	CHECK(strstr(out, "not yet in effect") == NULL);
	CHECK_STR(line_of(out, "submission_listen", l, sizeof l),
	    "submission_listen = 127.0.0.1:587");
	CHECK_STR(line_of(out, "recipient_limit", l, sizeof l), "recipient_limit = 3");
	CHECK_STR(line_of(out, "local_domains", l, sizeof l), "local_domains = example.com");
	free(out);
	conf_free(&c);
}

TEST(every_spec_key_is_in_effect)
{
	struct conf c;

	/* defaults: nothing is reported */
	CHECK(P("", &c) == 0);
	for (int k = 0; k < CK__COUNT; k++)
		CHECK(conf_not_in_effect(&c, (enum conf_key)k) == 0);
	conf_free(&c);

	/* set, but to values that ask for nothing */
	CHECK(P("tls_loopback = no\nsmtps_listen =\nrelayhost =\ndns_servers =\n", &c) == 0);
	CHECK(!conf_not_in_effect(&c, CK_TLS_LOOPBACK));
	CHECK(!conf_not_in_effect(&c, CK_SMTPS_LISTEN));
	CHECK(!conf_not_in_effect(&c, CK_RELAYHOST));
	CHECK(!conf_not_in_effect(&c, CK_DNS_SERVERS));
	conf_free(&c);

	CHECK(P("smtps_listen = [::1]:465\ntls_cert_file = a\ntls_key_file = b\n"
	    "auth_users_file = u\ndns_servers = 192.0.2.53\nrelay_networks = 10.0.0.0/8\n"
	    "queue_lifetime = 5d\ndelay_warning = 1h\nrecipients_file = r\nlog_level = warn\n"
	    "hostname = a.example\nmessage_size_limit = 2048\n", &c) == 0);
	/* TLS, AUTH and the submission/smtps listeners are in effect */
	CHECK(!conf_not_in_effect(&c, CK_SMTPS_LISTEN));
	CHECK(!conf_not_in_effect(&c, CK_TLS_CERT_FILE));
	CHECK(!conf_not_in_effect(&c, CK_TLS_KEY_FILE));
	CHECK(!conf_not_in_effect(&c, CK_AUTH_USERS_FILE));
	/* relaying, DNS and the retry schedule are in effect too: every key of SPEC.md is */
	for (int k = 0; k < CK__COUNT; k++)
		CHECK(!conf_not_in_effect(&c, (enum conf_key)k));
	CHECK(!conf_not_in_effect(&c, CK_RECIPIENTS_FILE));
	CHECK(!conf_not_in_effect(&c, CK_LOG_LEVEL));
	CHECK(!conf_not_in_effect(&c, CK_HOSTNAME));
	CHECK(!conf_not_in_effect(&c, CK_MESSAGE_SIZE_LIMIT));
	CHECK(!conf_not_in_effect(&c, CK__COUNT));
	conf_free(&c);
}

TEST(printed_config_parses_back_to_the_same_print)
{
	static const char text[] =
	    "hostname = mail.example.com\nlisten = 0.0.0.0:25, [::]:25\n"
	    "smtps_listen = [::1]:465\nlocal_domains = a.example b.example\n"
	    "relay_networks = 10.0.0.0/8 ::ffff:192.0.2.0/120\nrelayhost = relay.example:2525\n"
	    "dns_servers = 2001:db8::53\ncommand_timeout = 1h30m\nmessage_size_limit = 1m\n"
	    "tls_loopback = on\nlog_level = error\nrecipients_file = /etc/imsd/r\n";
	struct conf a, b;
	char *pa, *pb;

	CHECK(P(text, &a) == 0);
	pa = printed(&a);
	CHECK(P(pa, &b) == 0);
	pb = printed(&b);
	/* everything is now "set", so only the "# default" marks differ */
	CHECK(strstr(pb, "# default") == NULL);
	CHECK(b.command_timeout == 5400 && b.message_size_limit == 1048576);
	CHECK(b.relay_networks[1].net.family == AF_INET && b.relay_networks[1].prefix == 24);
	CHECK_STR(b.relayhost, "relay.example");
	CHECK(b.relayhost_port == 2525 && !b.relayhost_literal);
	CHECK(b.tls_loopback == 1 && b.log_level == LOG_ERROR);
	CHECK(b.ndns_servers == 1 && b.nlisten == 2 && b.nsmtps_listen == 1);
	free(pa);
	free(pb);
	conf_free(&a);
	conf_free(&b);
}

TEST(load_reads_a_file_and_reports_unreadable_ones)
{
	char path[] = "/tmp/imsd_conf_test_XXXXXX";
	int fd = mkstemp(path);
	struct conf c;
	static const char text[] = "recipient_limit = 42\n";

	CHECK(fd >= 0);
	CHECK(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
	close(fd);
	CHECK(conf_load(path, &c, err, sizeof err) == 0);
	CHECK(c.recipient_limit == 42);
	CHECK_STR(c.source, path);
	conf_free(&c);
	unlink(path);

	CHECK(conf_load("/nonexistent/imsd.conf", &c, err, sizeof err) == -1);
	CHECK_STR(err, "/nonexistent/imsd.conf: cannot read: No such file or directory");
	CHECK(conf_load("/", &c, err, sizeof err) == -1);
	CHECK_STR(err, "/: cannot read: Is a directory");
}

TEST(load_errors_name_the_file)
{
	char path[] = "/tmp/imsd_conf_test_XXXXXX";
	int fd = mkstemp(path);
	struct conf c;
	char want[256];
	static const char text[] = "\nfrobnicate = 1\n";

	CHECK(fd >= 0);
	CHECK(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
	close(fd);
	CHECK(conf_load(path, &c, err, sizeof err) == -1);
	snprintf(want, sizeof want, "%s:2: frobnicate: unknown key", path);
	CHECK_STR(err, want);
	unlink(path);
}

TEST(small_error_buffer_is_not_overrun)
{
	struct conf c;
	char small[8];

	CHECK(conf_parse("t.conf", "frobnicate = 1\n", 15, "h.example", &c, small, sizeof small) == -1);
	CHECK(strlen(small) == 7);
}

TEST(mailbox_transport_takes_maildir_and_lmtp_over_unix_or_tcp)
{
	struct conf c;
	char b[512];

	CHECK(P("", &c) == 0);
	CHECK(c.mailbox_transport.kind == TRANSPORT_MAILDIR);
	CHECK(!conf_not_in_effect(&c, CK_MAILBOX_TRANSPORT));
	conf_free(&c);
	CHECK(P("mailbox_transport = lmtp:unix:/run/dovecot/lmtp\n", &c) == 0);
	CHECK(c.mailbox_transport.kind == TRANSPORT_LMTP_UNIX);
	CHECK_STR(c.mailbox_transport.path, "/run/dovecot/lmtp");
	CHECK_STR(conf_transport_str(&c.mailbox_transport, b, sizeof b), "lmtp:unix:/run/dovecot/lmtp");
	conf_free(&c);
	CHECK(P("mailbox_transport = lmtp:inet:Mail.Example.ORG:24\n", &c) == 0);
	CHECK(c.mailbox_transport.kind == TRANSPORT_LMTP_INET);
	CHECK_STR(c.mailbox_transport.host, "mail.example.org");
	CHECK(c.mailbox_transport.port == 24);
	conf_free(&c);
	CHECK(P("mailbox_transport = lmtp:inet:[::1]:2424\n", &c) == 0);
	CHECK_STR(c.mailbox_transport.host, "::1");
	CHECK_STR(conf_transport_str(&c.mailbox_transport, b, sizeof b), "lmtp:inet:[::1]:2424");
	conf_free(&c);
	CHECK(P("mailbox_transport = lmtp:inet:127.0.0.1:24\n", &c) == 0);
	CHECK_STR(conf_transport_str(&c.mailbox_transport, b, sizeof b), "lmtp:inet:127.0.0.1:24");
	conf_free(&c);
}

TEST(mailbox_transport_errors_name_file_line_and_key)
{
	CHECK(fails_with("\nmailbox_transport = smtp:[mx]:25\n", "t.conf:2: mailbox_transport: "
	    "\"smtp:[mx]:25\" is not maildir, lmtp:unix:PATH or lmtp:inet:HOST:PORT"));
	CHECK(fails_with("mailbox_transport = lmtp:unix:\n",
	    "t.conf:1: mailbox_transport: the socket path is missing"));
	CHECK(fails_with("mailbox_transport = lmtp:inet:host\n", "t.conf:1: mailbox_transport: "
	    "\"lmtp:inet:host\" is not lmtp:inet:HOST:PORT (an IPv6 address as [ADDR]:PORT)"));
	CHECK(fails_with("mailbox_transport = lmtp:inet:::1:24\n", "t.conf:1: mailbox_transport: "
	    "\"lmtp:inet:::1:24\" is not lmtp:inet:HOST:PORT (an IPv6 address as [ADDR]:PORT)"));
	CHECK(fails_with("mailbox_transport = lmtp:inet:host:0\n",
	    "t.conf:1: mailbox_transport: port \"0\" is not 1-65535"));
	CHECK(fails_with("mailbox_transport = lmtp:inet:ho_st!:24\n",
	    "t.conf:1: mailbox_transport: \"ho_st!\" is not a host name or address"));
	CHECK(fails_starting("mailbox_transport = lmtp:unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	    "t.conf:1: mailbox_transport: socket path"));
}

TEST(auth_backend_is_file_or_a_dovecot_socket)
{
	struct conf c;

	CHECK(P("", &c) == 0);
	CHECK(c.auth_backend == AUTH_BACKEND_FILE);
	conf_free(&c);
	CHECK(P("auth_backend = dovecot:unix:/var/spool/postfix/private/auth\n", &c) == 0);
	CHECK(c.auth_backend == AUTH_BACKEND_DOVECOT);
	CHECK_STR(c.auth_dovecot_socket, "/var/spool/postfix/private/auth");
	CHECK(!conf_not_in_effect(&c, CK_AUTH_BACKEND));
	conf_free(&c);
	CHECK(fails_with("auth_backend = sasl\n",
	    "t.conf:1: auth_backend: \"sasl\" is not file or dovecot:unix:PATH"));
	CHECK(fails_with("auth_backend = dovecot:unix:/run/a b\n", "t.conf:1: auth_backend: "
	    "socket path \"/run/a b\" contains a blank or control character"));
	CHECK(fails_with("auth_users_file = /etc/u\nauth_backend = dovecot:unix:/run/a\n",
	    "t.conf:2: auth_backend: auth_users_file is not used with auth_backend = "
	    "dovecot:unix:/run/a; remove one of them"));
}

TEST(recipient_check_transport_needs_a_transport_to_ask)
{
	struct conf c;

	CHECK(P("", &c) == 0);
	CHECK(c.recipient_check == RCPT_CHECK_LOCAL);
	conf_free(&c);
	CHECK(fails_with("recipient_check = transport\n", "t.conf:1: recipient_check: transport "
	    "needs an LMTP mailbox_transport or a transport_map (with maildir there is no one "
	    "to ask)"));
	CHECK(fails_with("recipient_check = dovecot\n",
	    "t.conf:1: recipient_check: \"dovecot\" is not local or transport"));
	CHECK(P("mailbox_transport = lmtp:unix:/run/dovecot/lmtp\nrecipient_check = transport\n",
	    &c) == 0);
	CHECK(c.recipient_check == RCPT_CHECK_TRANSPORT);
	conf_free(&c);
}

int main(void)
{
	RUN(empty_text_gives_spec_defaults);
	RUN(default_text_parses_to_spec_defaults);
	RUN(load_without_path_uses_embedded_default);
	RUN(every_spec_key_is_accepted);
	RUN(filter_keys_default_to_tempfail_and_postfix_timeouts);
	RUN(milters_take_endpoints_and_per_milter_settings);
	RUN(bad_milter_and_policy_values_name_file_line_key_and_service);
	RUN(policy_services_default_to_rcpt_and_print_back);
	RUN(every_key_has_a_name);
	RUN(unknown_key_error_names_file_line_and_key);
	RUN(line_without_equals_is_an_error);
	RUN(bad_value_error_names_file_line_and_key);
	RUN(duplicate_key_error_names_both_lines);
	RUN(comments_blank_lines_and_crlf_are_ignored);
	RUN(last_line_without_newline_counts);
	RUN(nul_byte_is_an_error);
	RUN(overlong_line_is_an_error);
	RUN(error_leaves_output_zeroed);
	RUN(hostname_must_be_a_valid_domain);
	RUN(invalid_system_hostname_needs_explicit_hostname);
	RUN(local_domains_are_lowercased_and_trailing_dot_stripped);
	RUN(sizes_are_bytes_with_optional_suffix);
	RUN(message_size_limit_must_be_at_least_1024);
	RUN(durations_take_s_m_h_d);
	RUN(duration_without_unit_is_an_error);
	RUN(timeouts_and_limits_must_be_at_least_one);
	RUN(retry_min_above_retry_max_is_an_error_on_retry_max_line);
	RUN(booleans_accept_the_usual_spellings);
	RUN(listen_must_not_be_empty_but_other_listeners_may);
	RUN(listen_accepts_lists_and_v6);
	RUN(same_listener_twice_is_an_error);
	RUN(metrics_listen_is_unset_by_default_and_checked_like_a_listener);
	RUN(relay_networks_accept_cidrs_and_may_be_empty);
	RUN(relayhost_forms);
	RUN(dns_servers_forms);
	RUN(authentication_keys_refuse_bad_values_with_file_line_and_key);
	RUN(smtp_port_is_1_to_65535);
	RUN(empty_optional_paths_mean_unset);
	RUN(unknown_key_with_odd_bytes_is_escaped);
	RUN(print_marks_defaults_and_uses_largest_exact_unit);
	RUN(print_marks_no_key_not_yet_in_effect_now_that_all_are_built);
	RUN(every_spec_key_is_in_effect);
	RUN(printed_config_parses_back_to_the_same_print);
	RUN(load_reads_a_file_and_reports_unreadable_ones);
	RUN(load_errors_name_the_file);
	RUN(small_error_buffer_is_not_overrun);
	RUN(mailbox_transport_takes_maildir_and_lmtp_over_unix_or_tcp);
	RUN(mailbox_transport_errors_name_file_line_and_key);
	RUN(auth_backend_is_file_or_a_dovecot_socket);
	RUN(recipient_check_transport_needs_a_transport_to_ask);
	T_EXIT();
}
