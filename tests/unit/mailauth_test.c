/* The pure parts of mail authentication: header fields, From: domains, authserv-ids, the
 * Authentication-Results field, DNS list names, DMARC alignment. */
#include <stdlib.h>

#include "mailauth/ar.h"
#include "mailauth/dmarcop.h"
#include "proto/msghdr.h"
#include "t.h"

static int
from1(const char *v, const char *want)
{
	char d[MHDR_DOMAINS_MAX][256];
	size_t n;

	if (mhdr_from_domains(v, strlen(v), d, &n) < 0 || n != 1)
		return 0;
	return strcmp(d[0], want) == 0;
}

TEST(from_domains_read_display_names_comments_quotes_and_groups)
{
	char d[MHDR_DOMAINS_MAX][256];
	size_t n;
	const char *v;

	CHECK(from1(" a@Example.COM", "example.com"));
	CHECK(from1(" \"Smith, John\" <john@mail.example.org.>", "mail.example.org"));
	CHECK(from1(" (comment <x@evil.test>) Alice <alice@good.test> (more)", "good.test"));
	CHECK(from1(" \"x@evil.test\" <y@good.test>", "good.test"));
	CHECK(from1(" \"a>b\"@quoted.test", "quoted.test"));
	CHECK(from1(" <@route.test,@r2.test:u@real.test>", "real.test"));
	CHECK(from1(" Friends: a@one.test;", "one.test"));
	v = " a@one.test, \"B\" <b@two.test>";
	CHECK(mhdr_from_domains(v, strlen(v), d, &n) == 0 && n == 2);
	CHECK_STR(d[1], "two.test");
	v = " Undisclosed:;";
	CHECK(mhdr_from_domains(v, strlen(v), d, &n) < 0);
	v = " <unterminated@x.test";
	CHECK(mhdr_from_domains(v, strlen(v), d, &n) < 0);
	v = " user@[192.0.2.1]";
	CHECK(mhdr_from_domains(v, strlen(v), d, &n) == 0 && n == 1 && d[0][0] == '\0');
	CHECK(mhdr_from_domains("", 0, d, &n) < 0);
}

TEST(authserv_id_skips_comments_and_folding)
{
	char id[256];

	CHECK(mhdr_authserv_id(" mx.example; spf=pass", 21, id, sizeof(id)) == 0);
	CHECK_STR(id, "mx.example");
	CHECK(mhdr_authserv_id("\r\n\t(forged) MX.Example;", 23, id, sizeof(id)) == 0);
	CHECK_STR(id, "mx.example");
	CHECK(mhdr_authserv_id(" \"q.example\"; none", 18, id, sizeof(id)) == 0);
	CHECK_STR(id, "q.example");
	CHECK(mhdr_authserv_id("  (only a comment)", 18, id, sizeof(id)) < 0);
}

TEST(header_fields_are_walked_with_their_continuation_lines)
{
	const char *h = "A: 1\r\nB: two\r\n\tlines\r\nC:3\r\n\r\nbody";
	struct mhdr_field f;
	size_t pos = 0;

	CHECK(mhdr_next(h, strlen(h), &pos, &f) == 1 && mhdr_is(&f, "a"));
	CHECK(mhdr_next(h, strlen(h), &pos, &f) == 1 && mhdr_is(&f, "B"));
	CHECK(f.rawlen == strlen("B: two\r\n\tlines"));
	CHECK(mhdr_next(h, strlen(h), &pos, &f) == 1 && f.valuelen == 1 && f.value[0] == '3');
	CHECK(mhdr_next(h, strlen(h), &pos, &f) == 0);
	CHECK(strcmp(h + pos, "body") == 0);
	pos = 0;
	CHECK(mhdr_next("no colon here\r\n", 15, &pos, &f) < 0);
	pos = 0;
	CHECK(mhdr_next(" leading\r\n", 10, &pos, &f) < 0);
}

TEST(authentication_results_quotes_what_needs_it_and_strips_controls)
{
	struct spf_verdict m = { .result = SPFR_FAIL };
	struct spf_verdict h = { .result = SPFR_NONE };
	struct dkim_sigres sig = { .result = DKR_FAIL };
	struct dmarc_verdict dm = { .result = DMR_FAIL, .policy = DMP_NONE,
		.published = DMP_REJECT };
	char *ar;

	snprintf(m.identity, sizeof(m.identity), "\"odd user\"@x.test");
	snprintf(m.why, sizeof(m.why), "bad \"quote\"\r\ninjected: yes");
	snprintf(h.identity, sizeof(h.identity), "helo.test");
	snprintf(sig.domain, sizeof(sig.domain), "x.test");
	snprintf(sig.selector, sizeof(sig.selector), "s1");
	snprintf(sig.alg, sizeof(sig.alg), "rsa-sha256");
	snprintf(sig.b, sizeof(sig.b), "abcdefgh");
	snprintf(sig.why, sizeof(sig.why), "body hash did not verify");
	snprintf(dm.from_domain, sizeof(dm.from_domain), "x.test");
	snprintf(dm.record_domain, sizeof(dm.record_domain), "x.test");
	snprintf(dm.why, sizeof(dm.why), "no aligned pass");
	ar = ar_format("mx.test", &m, &h, &sig, 1, &dm);
	CHECK(ar != NULL);
	CHECK(strncmp(ar, "Authentication-Results: mx.test;\r\n\tspf=fail reason=\"bad "
	    "\\\"quote\\\"??injected: yes\" smtp.mailfrom=\"\\\"odd user\\\"@x.test\";\r\n", 108) == 0);
	CHECK(strstr(ar, "\tspf=none smtp.helo=helo.test;\r\n") != NULL);
	CHECK(strstr(ar, "\tdkim=fail reason=\"body hash did not verify\" header.d=x.test "
	    "header.s=s1 header.a=rsa-sha256 header.b=abcdefgh;\r\n") != NULL);
	CHECK(strstr(ar, "\tdmarc=fail (p=reject, applied none) reason=\"no aligned pass\" "
	    "header.from=x.test\r\n") != NULL);
	/* one field: every line after the first is a continuation */
	for (const char *p = strstr(ar, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n"))
		CHECK(p[2] == '\t');
	free(ar);
	ar = ar_format("mx.test", NULL, NULL, NULL, 0, NULL);
	CHECK_STR(ar, "Authentication-Results: mx.test;\r\n\tdkim=none\r\n");
	free(ar);
}

TEST(dns_list_names_and_listing_codes_follow_rfc_5782)
{
	struct netaddr a;
	char name[300];

	netaddr_parse("192.0.2.99", &a);
	CHECK(dnsl_query_name(&a, "zen.example", name, sizeof(name)) == 0);
	CHECK_STR(name, "99.2.0.192.zen.example");
	netaddr_parse("2001:db8::1", &a);
	CHECK(dnsl_query_name(&a, "bl.example", name, sizeof(name)) == 0);
	CHECK_STR(name, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example");
	netaddr_parse("127.0.0.2", &a);
	CHECK(dnsl_is_listing(&a));
	netaddr_parse("127.0.0.1", &a);
	CHECK(!dnsl_is_listing(&a));
	netaddr_parse("127.255.255.254", &a);	/* Spamhaus: query refused */
	CHECK(!dnsl_is_listing(&a));
	netaddr_parse("10.0.0.2", &a);
	CHECK(!dnsl_is_listing(&a));
}

TEST(dmarc_alignment_relaxed_uses_the_organizational_domain)
{
	char org[256];

	dmarc_org_domain("mail.example.co.uk", org, sizeof(org));
	CHECK_STR(org, "example.co.uk");
	dmarc_org_domain("a.b.imsd.test", org, sizeof(org));
	CHECK_STR(org, "imsd.test");
	CHECK(dmarc_aligned("mail.example.com", "example.com", 0));
	CHECK(!dmarc_aligned("mail.example.com", "example.com", 1));
	CHECK(dmarc_aligned("Example.com", "example.COM", 1));
	CHECK(!dmarc_aligned("example.co.uk", "other.co.uk", 0));
	CHECK(!dmarc_aligned("evil-example.com", "example.com", 0));
}

int
main(void)
{
	RUN(from_domains_read_display_names_comments_quotes_and_groups);
	RUN(authserv_id_skips_comments_and_folding);
	RUN(header_fields_are_walked_with_their_continuation_lines);
	RUN(authentication_results_quotes_what_needs_it_and_strips_controls);
	RUN(dns_list_names_and_listing_codes_follow_rfc_5782);
	RUN(dmarc_alignment_relaxed_uses_the_organizational_domain);
	T_EXIT();
}
