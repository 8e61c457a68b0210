/* Unit tests for src/policy/outtls.c and the smtp_tls / tls_policy configuration keys. */
#include <stdlib.h>

#include "t.h"
#include "conf/conf.h"
#include "policy/outtls.h"

static char err[1024];

static int P(const char *text, struct conf *c)
{
	err[0] = '\0';
	return conf_parse("t.conf", text, strlen(text), "mx.example.org", c, err, sizeof err);
}

TEST(default_is_opportunistic_everywhere)
{
	struct conf c;
	const char *src, *entry;

	CHECK(P("", &c) == 0);
	CHECK(c.smtp_tls == OUTTLS_OPPORTUNISTIC);
	CHECK(outtls_level(&c, "example.com", &src, &entry) == OUTTLS_OPPORTUNISTIC);
	CHECK_STR(src, "smtp_tls");
	CHECK(entry == NULL);
	CHECK(!outtls_required(OUTTLS_OPPORTUNISTIC));
	CHECK(outtls_required(OUTTLS_VERIFY));
	conf_free(&c);
}

TEST(policy_overrides_the_default_exact_and_for_subdomains)
{
	struct conf c;
	const char *src, *entry;

	CHECK(P("smtp_tls = verify\n"
	    "tls_policy = Example.COM:opportunistic, .bank.test:VERIFY .x.bank.test:opportunistic\n",
	    &c) == 0);
	CHECK(c.smtp_tls == OUTTLS_VERIFY);
	CHECK(c.ntls_policy == 3);
	CHECK(outtls_level(&c, "example.com", &src, &entry) == OUTTLS_OPPORTUNISTIC);
	CHECK_STR(src, "tls_policy");
	CHECK_STR(entry, "example.com");
	/* a subdomain entry does not cover the domain itself */
	CHECK(outtls_level(&c, "bank.test", &src, &entry) == OUTTLS_VERIFY);
	CHECK_STR(src, "smtp_tls");
	CHECK(outtls_level(&c, "mail.bank.test", &src, &entry) == OUTTLS_VERIFY);
	CHECK_STR(entry, ".bank.test");
	/* the longest suffix wins */
	CHECK(outtls_level(&c, "a.x.bank.test", &src, &entry) == OUTTLS_OPPORTUNISTIC);
	CHECK_STR(entry, ".x.bank.test");
	CHECK(outtls_level(&c, "sub.example.com", &src, NULL) == OUTTLS_VERIFY);
	conf_free(&c);
}

TEST(bad_levels_and_entries_are_errors_with_file_line_and_key)
{
	struct conf c;

	CHECK(P("smtp_tls = strict\n", &c) == -1);
	CHECK_STR(err, "t.conf:1: smtp_tls: strict is not one of opportunistic, dane, mta-sts, "
	    "verify");
	CHECK(P("\nsmtp_tls = dane\n", &c) == -1);
	CHECK_STR(err, "t.conf:2: smtp_tls: dane needs dnssec_trust_resolver = yes and dns_servers "
	    "naming a DNSSEC-validating resolver reached over a trusted path");
	CHECK(P("dnssec_trust_resolver = yes\nsmtp_tls = dane\n", &c) == -1);	/* resolv.conf */
	CHECK(P("dnssec_trust_resolver = yes\ndns_servers = 127.0.0.1\n"
	    "tls_policy = a.test:dane\n", &c) == 0);
	CHECK(outtls_level(&c, "a.test", NULL, NULL) == OUTTLS_DANE);
	CHECK(!outtls_required(OUTTLS_DANE));
	CHECK(outtls_uses(&c, OUTTLS_DANE) && !outtls_uses(&c, OUTTLS_VERIFY));
	conf_free(&c);
	CHECK(P("tls_policy = example.com\n", &c) == -1);
	CHECK_STR(err, "t.conf:1: tls_policy: \"example.com\" is not DOMAIN:LEVEL");
	CHECK(P("tls_policy = example.com:MTA-STS\n", &c) == 0);
	CHECK(c.tls_policy[0].level == OUTTLS_MTASTS && c.mta_sts_port == 443);
	conf_free(&c);
	CHECK(P("tls_policy = example.com:sts\n", &c) == -1);
	CHECK_STR(err, "t.conf:1: tls_policy: \"example.com\": sts is not one of opportunistic, "
	    "dane, mta-sts, verify");
	CHECK(P("tls_policy = exa_mple.com:verify\n", &c) == -1);
	CHECK_STR(err, "t.conf:1: tls_policy: \"exa_mple.com\" is not a domain name (DOMAIN:LEVEL, "
	    "or .DOMAIN:LEVEL for its subdomains)");
	CHECK(P("tls_policy = a.test:verify A.test.:opportunistic\n", &c) == -1);
	CHECK_STR(err, "t.conf:1: tls_policy: a.test is listed twice");
	CHECK(P("tls_policy = :verify\n", &c) == -1);
	CHECK(P("tls_policy = .:verify\n", &c) == -1);
}

TEST(printed_policy_parses_back)
{
	struct conf c, d;
	char *buf = NULL;
	size_t len = 0;
	FILE *fp;

	CHECK(P("smtp_tls = verify\ntls_policy = a.test:opportunistic, .b.test:verify\n"
	    "smtp_tls_ca_file = /x/ca.pem\n", &c) == 0);
	fp = open_memstream(&buf, &len);
	conf_print(&c, fp);
	fclose(fp);
	CHECK(strstr(buf, "smtp_tls = verify\n") != NULL);
	CHECK(strstr(buf, "tls_policy = a.test:opportunistic, .b.test:verify\n") != NULL);
	CHECK(strstr(buf, "smtp_tls_ca_file = /x/ca.pem\n") != NULL);
	CHECK(P(buf, &d) == 0);
	CHECK(d.ntls_policy == 2 && d.tls_policy[1].level == OUTTLS_VERIFY);
	CHECK_STR(d.tls_policy[1].domain, ".b.test");
	conf_free(&d);
	conf_free(&c);
	free(buf);
}

int main(void)
{
	RUN(default_is_opportunistic_everywhere);
	RUN(policy_overrides_the_default_exact_and_for_subdomains);
	RUN(bad_levels_and_entries_are_errors_with_file_line_and_key);
	RUN(printed_policy_parses_back);
	T_EXIT();
}
