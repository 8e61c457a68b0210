/*
 * doctor_test — the pure rules of imsd doctor (cli/doctor_rules) and the spool layout they
 * judge by (queue/spool_layout).
 */
#include <string.h>
#include <sys/stat.h>

#include "cli/doctor_rules.h"
#include "queue/spool_layout.h"
#include "t.h"

static struct netaddr
A(const char *s)
{
	struct netaddr a;

	memset(&a, 0, sizeof(a));
	if (netaddr_parse(s, &a) < 0)
		fprintf(stderr, "bad address %s\n", s);
	return a;
}

TEST(private_loopback_and_link_local_addresses_are_not_public)
{
	const char *no[] = { "127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255",
	    "192.168.1.1", "100.64.0.1", "169.254.1.1", "0.0.0.0", "224.0.0.1", "255.255.255.255",
	    "::1", "::", "fe80::1", "fd00::1", "ff02::1" };
	const char *yes[] = { "198.51.100.10", "203.0.113.5", "8.8.8.8", "172.32.0.1",
	    "2001:db8::10", "2a00:1450:4001::1" };

	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		struct netaddr a = A(no[i]);
		CHECK(!doc_addr_is_public(&a));
	}
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		struct netaddr a = A(yes[i]);
		CHECK(doc_addr_is_public(&a));
	}
}

TEST(a_host_name_needs_two_labels_outside_local_only_zones)
{
	char why[200];

	CHECK(doc_name_is_fqdn("mail.example.org", why, sizeof(why)));
	CHECK(!doc_name_is_fqdn("mail", why, sizeof(why)) && strstr(why, "fully qualified"));
	CHECK(!doc_name_is_fqdn("localhost", why, sizeof(why)));
	CHECK(!doc_name_is_fqdn("box.localdomain", why, sizeof(why)) && strstr(why, "localdomain"));
	CHECK(!doc_name_is_fqdn("box.local", why, sizeof(why)));
	CHECK(!doc_name_is_fqdn("", why, sizeof(why)));
	CHECK(doc_name_is_fqdn("local.example.org", why, sizeof(why)));
}

TEST(reverse_names_of_both_families)
{
	char b[100];
	struct netaddr a4 = A("198.51.100.10"), a6 = A("2001:db8::10");

	CHECK_STR(doc_ptr_name(&a4, b, sizeof(b)), "10.100.51.198.in-addr.arpa");
	CHECK_STR(doc_ptr_name(&a6, b, sizeof(b)), "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"
	    ".8.b.d.0.1.0.0.2.ip6.arpa");
}

TEST(zone_lines_quote_txt_in_strings_of_255)
{
	char b[2000], text[600];

	CHECK_STR(doc_rr("example.org", "MX", "10 mx.example.org.", 0, b, sizeof(b)),
	    "example.org. IN MX 10 mx.example.org.");
	CHECK_STR(doc_rr_txt("_dmarc.example.org.", "v=DMARC1; p=none", 0, b, sizeof(b)),
	    "_dmarc.example.org. IN TXT \"v=DMARC1; p=none\"");
	memset(text, 'a', 300);
	text[300] = '\0';
	doc_rr_txt("x.example", text, 0, b, sizeof(b));
	CHECK(strstr(b, "\" \"aaaa") != NULL);
	CHECK(strlen(b) == strlen("x.example. IN TXT ") + 300 + 5);
	doc_rr("example.org", "MX", "10 mx.", 1, b, sizeof(b));
	CHECK(strncmp(b, "example.org.      ", 18) == 0);
}

TEST(spf_records_get_the_missing_addresses_before_all)
{
	struct netaddr a[2] = { A("198.51.100.10"), A("2001:db8::10") };
	char b[600];

	CHECK_STR(doc_spf_with(NULL, a, 2, b, sizeof(b)),
	    "v=spf1 ip4:198.51.100.10 ip6:2001:db8::10 -all");
	CHECK_STR(doc_spf_with("v=spf1 ip4:192.0.2.1 -all", a, 2, b, sizeof(b)),
	    "v=spf1 ip4:192.0.2.1 ip4:198.51.100.10 ip6:2001:db8::10 -all");
	CHECK_STR(doc_spf_with("v=spf1 include:_spf.google.com ~all", a, 1, b, sizeof(b)),
	    "v=spf1 include:_spf.google.com ip4:198.51.100.10 ~all");
	/* already there: unchanged; one of two there: the other added */
	CHECK_STR(doc_spf_with("v=spf1 ip4:198.51.100.10 -all", a, 1, b, sizeof(b)),
	    "v=spf1 ip4:198.51.100.10 -all");
	CHECK_STR(doc_spf_with("v=spf1 ip4:198.51.100.10/32 -all", a, 2, b, sizeof(b)),
	    "v=spf1 ip4:198.51.100.10/32 ip6:2001:db8::10 -all");
	/* ip4:198.51.100.100 is another address */
	CHECK_STR(doc_spf_with("v=spf1 ip4:198.51.100.100 -all", a, 1, b, sizeof(b)),
	    "v=spf1 ip4:198.51.100.100 ip4:198.51.100.10 -all");
	CHECK_STR(doc_spf_with("v=spf1 redirect=_spf.example.org", a, 1, b, sizeof(b)),
	    "v=spf1 ip4:198.51.100.10 redirect=_spf.example.org");
	CHECK_STR(doc_spf_with("v=spf1 mx", a, 1, b, sizeof(b)), "v=spf1 mx ip4:198.51.100.10");
	CHECK_STR(doc_spf_with("v=spf1 a -ALL", a, 1, b, sizeof(b)),
	    "v=spf1 a ip4:198.51.100.10 -ALL");
}

TEST(mta_sts_policy_and_an_id_that_follows_it)
{
	const char *mx[2] = { "mx1.example.org", "mx2.example.org" };
	char p[600], q[600], id1[40], id2[40];

	CHECK_STR(doc_mtasts_policy(mx, 2, "testing", p, sizeof(p)), "version: STSv1\r\n"
	    "mode: testing\r\nmx: mx1.example.org\r\nmx: mx2.example.org\r\nmax_age: 604800\r\n");
	doc_mtasts_policy(mx, 1, "testing", q, sizeof(q));
	doc_mtasts_id(p, id1, sizeof(id1));
	doc_mtasts_id(q, id2, sizeof(id2));
	CHECK(strlen(id1) == 16 && strspn(id1, "0123456789abcdef") == 16);
	CHECK(strcmp(id1, id2) != 0);
	doc_mtasts_id(p, id2, sizeof(id2));
	CHECK_STR(id1, id2);
}

TEST(certificates_expire_by_the_21_day_rule)
{
	long days;
	long long now = 1800000000LL;

	CHECK(doc_cert_expiry(now + 60 * 86400LL, now, &days) == DOC_OK && days == 60);
	CHECK(doc_cert_expiry(now + 21 * 86400LL, now, &days) == DOC_OK && days == 21);
	CHECK(doc_cert_expiry(now + 21 * 86400LL - 1, now, &days) == DOC_WARN && days == 20);
	CHECK(doc_cert_expiry(now + 3600, now, &days) == DOC_WARN && days == 0);
	CHECK(doc_cert_expiry(now, now, &days) == DOC_FAIL);
	CHECK(doc_cert_expiry(now - 3600, now, &days) == DOC_FAIL && days == -1);
	CHECK(doc_cert_expiry(now - 2 * 86400LL, now, &days) == DOC_FAIL && days == -2);
}

TEST(fcrdns_wants_a_confirmed_name_that_is_the_ehlo_name)
{
	const char *names[2] = { "host-1.provider.example", "MX.Example.ORG." };
	int ok[2] = { 0, 0 }, match;
	char why[300];

	CHECK(doc_fcrdns(names, ok, 0, "mx.example.org", &match, why, sizeof(why)) == DOC_FAIL &&
	    strstr(why, "no PTR") && match == -1);
	ok[0] = 0, ok[1] = 0;
	CHECK(doc_fcrdns(names, ok, 2, "mx.example.org", &match, why, sizeof(why)) == DOC_FAIL &&
	    strstr(why, "do not resolve back") && match == -1);
	ok[0] = 1, ok[1] = 0;
	CHECK(doc_fcrdns(names, ok, 2, "mx.example.org", &match, why, sizeof(why)) == DOC_FAIL &&
	    match == 0 && strstr(why, "EHLO mx.example.org"));
	ok[1] = 1;
	CHECK(doc_fcrdns(names, ok, 2, "mx.example.org", &match, why, sizeof(why)) == DOC_OK &&
	    match == 1);
}

TEST(tls_rpt_records_need_rua_with_mailto_or_https)
{
	char why[200];
	size_t n;

	CHECK(doc_tlsrpt_check("v=TLSRPTv1; rua=mailto:tls@example.org", &n, why, sizeof(why)) ==
	    1 && n == 1);
	CHECK(doc_tlsrpt_check("v=TLSRPTv1;rua=mailto:a@example.org,https://r.example.org/tls",
	    &n, why, sizeof(why)) == 1 && n == 2);
	CHECK(doc_tlsrpt_check("v=spf1 -all", &n, why, sizeof(why)) == 0);
	CHECK(doc_tlsrpt_check("v=TLSRPTv10; rua=mailto:a@b", &n, why, sizeof(why)) == 0);
	CHECK(doc_tlsrpt_check("v=TLSRPTv1", &n, why, sizeof(why)) == -1 && strstr(why, "rua"));
	CHECK(doc_tlsrpt_check("v=TLSRPTv1; rua=postmaster", &n, why, sizeof(why)) == -1);
	CHECK(doc_tlsrpt_check("v=TLSRPTv1; rua=mailto:nobody", &n, why, sizeof(why)) == -1);
	CHECK(doc_tlsrpt_check("v=TLSRPTv1; rua", &n, why, sizeof(why)) == -1);
	CHECK(doc_tlsrpt_check("v=TLSRPTv1; rua=mailto:a@b; rua=mailto:c@d", &n, why,
	    sizeof(why)) == -1);
}

TEST(delivery_errors_group_without_hosts_and_numbers)
{
	char a[300], b[300];

	doc_reason_key("x-imsd; mx1.dest.example: connect: Connection refused", a, sizeof(a));
	doc_reason_key("x-imsd; mx2.other.example: connect: Connection refused", b, sizeof(b));
	CHECK_STR(a, "connect: Connection refused");
	CHECK_STR(a, b);
	doc_reason_key("x-imsd; connect to 192.0.2.7: Network is unreachable", a, sizeof(a));
	CHECK_STR(a, "connect: Network is unreachable");
	doc_reason_key("smtp; 550 5.7.1 [198.51.100.10 19] Our system has detected", a, sizeof(a));
	CHECK_STR(a, "550 5.7.1 [N 19] Our system has detected");
	doc_reason_key("", a, sizeof(a));
	CHECK_STR(a, "");
}

TEST(the_spool_layout_names_every_entry_and_judges_kind_owner_mode)
{
	char why[200];
	const struct spool_entry *e = spool_layout_find("maildrop");

	CHECK(spool_layout[0].name[0] == '\0' && spool_layout[0].mode == SPOOL_MODE_TOP);
	CHECK(e != NULL && e->mode == SPOOL_MODE_MAILDROP && e->content == SPC_DROPS);
	CHECK(spool_layout_find("queue") != NULL && spool_layout_find("evil") == NULL);
	CHECK(spool_layout_find("") == NULL);
	CHECK(spool_judge(SPK_DIR, 0700, S_IFDIR | 0700, 110, 110, 0, why, sizeof(why)) == SPV_OK);
	CHECK(spool_judge(SPK_DIR, 0700, S_IFDIR | 0755, 110, 110, 0, why, sizeof(why)) ==
	    SPV_MODE && strstr(why, "mode 0755, imsd makes it 0700"));
	CHECK(spool_judge(SPK_DIR, 0700, S_IFDIR | 0700, 1001, 110, 0, why, sizeof(why)) ==
	    SPV_FAIL && strstr(why, "uid 1001"));
	CHECK(spool_judge(SPK_DIR, 0700, S_IFDIR | 0700, 1001, 110, 1, why, sizeof(why)) == SPV_OK);
	CHECK(spool_judge(SPK_FILE, 0600, S_IFDIR | 0700, 110, 110, 0, why, sizeof(why)) ==
	    SPV_FAIL && strstr(why, "a directory, where imsd keeps a file"));
	CHECK(spool_judge(SPK_DIR, 0700, S_IFLNK | 0777, 110, 110, 0, why, sizeof(why)) ==
	    SPV_FAIL && strstr(why, "symbolic link"));
	CHECK(spool_judge(SPK_DIR, 01733, S_IFDIR | 0733, 110, 110, 0, why, sizeof(why)) ==
	    SPV_MODE);
}

int
main(void)
{
	RUN(private_loopback_and_link_local_addresses_are_not_public);
	RUN(a_host_name_needs_two_labels_outside_local_only_zones);
	RUN(reverse_names_of_both_families);
	RUN(zone_lines_quote_txt_in_strings_of_255);
	RUN(spf_records_get_the_missing_addresses_before_all);
	RUN(mta_sts_policy_and_an_id_that_follows_it);
	RUN(certificates_expire_by_the_21_day_rule);
	RUN(fcrdns_wants_a_confirmed_name_that_is_the_ehlo_name);
	RUN(tls_rpt_records_need_rua_with_mailto_or_https);
	RUN(delivery_errors_group_without_hosts_and_numbers);
	RUN(the_spool_layout_names_every_entry_and_judges_kind_owner_mode);
	T_EXIT();
}
