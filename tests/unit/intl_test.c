/*
 * intl_test — A-label domains (IDNA) and NFC/lower-case local parts (RFC 6531 mailboxes).
 */
#include "t.h"
#include "util/intl.h"
#include "util/utf8.h"

static char out[600];
static const char *why;

TEST(ascii_domain_is_lower_cased)
{
	CHECK(intl_domain_ascii("Example.COM", out, sizeof(out), &why) == 0);
	CHECK_STR(out, "example.com");
	CHECK(intl_domain_ascii("[IPv6:::1]", out, sizeof(out), &why) == 0);
	CHECK_STR(out, "[ipv6:::1]");
}

TEST(u_label_domain_becomes_its_a_label_whatever_its_case)
{
	CHECK(intl_domain_ascii("b\xc3\xbc" "cher.example", out, sizeof(out), &why) == 0);
	CHECK_STR(out, "xn--bcher-kva.example");
	CHECK(intl_domain_ascii("B\xc3\x9c" "CHER.Example", out, sizeof(out), &why) == 0);
	CHECK_STR(out, "xn--bcher-kva.example");
	/* an A-label written by the client is already the normal form */
	CHECK(intl_domain_ascii("XN--bcher-kva.example", out, sizeof(out), &why) == 0);
	CHECK_STR(out, "xn--bcher-kva.example");
	/* decomposed u + COMBINING DIAERESIS is NFC-normalised first */
	CHECK(intl_domain_ascii("bu\xcc\x88" "cher.example", out, sizeof(out), &why) == 0);
	CHECK_STR(out, "xn--bcher-kva.example");
	CHECK(intl_domain_ascii("\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95", out,
	    sizeof(out), &why) == 0);
	CHECK_STR(out, "xn--fsqu00a.xn--0zwm56d");
}

TEST(invalid_u_labels_are_refused_with_a_reason)
{
	why = NULL;
	/* a label may not start with a combining mark (RFC 5891 §4.2.3.2) */
	CHECK(intl_domain_ascii("\xcc\x88" "a.example", out, sizeof(out), &why) == -1);
	CHECK(why != NULL);
	CHECK(intl_domain_ascii("a\xff.example", out, sizeof(out), &why) == -1);
	CHECK_STR(why, "domain is not well-formed UTF-8");
	/* too small an output buffer */
	CHECK(intl_domain_ascii("b\xc3\xbc" "cher.example", out, 10, &why) == -1);
}

TEST(local_part_is_nfc_and_lower_cased)
{
	CHECK(intl_local_fold("J\xc3\x96RAN", out, sizeof(out), &why) == 0);
	CHECK_STR(out, "j\xc3\xb6ran");
	/* decomposed o + COMBINING DIAERESIS composes to U+00F6 */
	CHECK(intl_local_fold("Jo\xcc\x88ran", out, sizeof(out), &why) == 0);
	CHECK_STR(out, "j\xc3\xb6ran");
	CHECK(intl_local_fold("Plain.User", out, sizeof(out), &why) == 0);
	CHECK_STR(out, "plain.user");
	/* Greek capital sigma lower-cases by Unicode, not by the C locale */
	CHECK(intl_local_fold("\xce\xa3\xce\xb1", out, sizeof(out), &why) == 0);
	CHECK(utf8_text_ok(out, strlen(out), 0, NULL));
	CHECK(out[0] == '\xcf' || out[0] == '\xce');
}

TEST(local_part_limit_is_checked_after_folding)
{
	char in[80];

	/* 22 x U+0130 (44 octets) lower-case to i + COMBINING DOT ABOVE (66 octets) */
	for (int i = 0; i < 22; i++)
		memcpy(in + 2 * i, "\xc4\xb0", 2);
	in[44] = '\0';
	CHECK(intl_local_fold(in, out, sizeof(out), &why) == -1);
	CHECK_STR(why, "local part too long after normalisation");
	CHECK(intl_local_fold("a\xc0\xaf", out, sizeof(out), &why) == -1);
	CHECK_STR(why, "local part is not well-formed UTF-8");
}

TEST(address_folds_both_halves)
{
	CHECK(intl_addr_fold("J\xc3\xb6ran@B\xc3\xbc" "cher.Example.", out, sizeof(out), &why) == 0);
	CHECK_STR(out, "j\xc3\xb6ran@xn--bcher-kva.example");
	CHECK(intl_addr_fold("no-at-sign", out, sizeof(out), &why) == -1);
	CHECK_STR(why, "address has no domain");
}

TEST(utf8_seqlen_follows_rfc3629)
{
	CHECK(utf8_seqlen((const unsigned char *)"\xc3\xa4", 2) == 2);
	CHECK(utf8_seqlen((const unsigned char *)"\xe2\x82\xac", 3) == 3);
	CHECK(utf8_seqlen((const unsigned char *)"\xf4\x8f\xbf\xbf", 4) == 4);	/* U+10FFFF */
	CHECK(utf8_seqlen((const unsigned char *)"\xf4\x90\x80\x80", 4) == 0);
	CHECK(utf8_seqlen((const unsigned char *)"\xed\xbf\xbf", 3) == 0);		/* surrogate */
	CHECK(utf8_seqlen((const unsigned char *)"\xe0\x9f\xbf", 3) == 0);		/* overlong */
	CHECK(utf8_seqlen((const unsigned char *)"\xc2\x9f", 2) == 0);		/* C1 */
	CHECK(utf8_seqlen((const unsigned char *)"\xc2\xa0", 2) == 2);		/* U+00A0 */
	CHECK(utf8_seqlen((const unsigned char *)"\xe2\x82", 2) == 0);		/* truncated */
	CHECK(utf8_seqlen((const unsigned char *)"a", 1) == 0);
}

int
main(void)
{
	RUN(ascii_domain_is_lower_cased);
	RUN(u_label_domain_becomes_its_a_label_whatever_its_case);
	RUN(invalid_u_labels_are_refused_with_a_reason);
	RUN(local_part_is_nfc_and_lower_cased);
	RUN(local_part_limit_is_checked_after_folding);
	RUN(address_folds_both_halves);
	RUN(utf8_seqlen_follows_rfc3629);
	T_EXIT();
}
