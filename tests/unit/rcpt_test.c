/* Unit tests for src/policy/rcpt.c: the RCPT verdict the session and explain-recipient share. */
#include <stdlib.h>

#include "policy/rcpt.h"
#include "t.h"

static struct conf conf;
static struct recipients *table;

static void
path(const char *text, struct smtp_path *p)
{
	const char *rest, *why;

	CHECK(smtp_path_parse(text, strlen(text), 0, 1, p, &rest, &why) == SMTP_PATH_OK);
}

static enum rcpt_kind
judge(const char *text, int may_relay, const struct recipients *r, struct rcpt_verdict *v)
{
	struct smtp_path p;

	path(text, &p);
	return rcpt_decide(&conf, r, may_relay, &p, v);
}

TEST(a_local_domain_is_local_whatever_the_case)
{
	struct rcpt_verdict v;

	CHECK(judge("<Alice@Example.COM>", 0, NULL, &v) == RCPT_LOCAL);
	CHECK_STR(v.addr, "alice@example.com");
	CHECK_STR(v.given, "Alice@Example.COM");
	CHECK_STR(v.domain, "example.com");
	CHECK(!v.routed);
}

TEST(a_remote_domain_is_relayed_only_for_a_client_that_may)
{
	struct rcpt_verdict v;
	char line[300];

	CHECK(judge("<bob@Remote.example>", 0, NULL, &v) == RCPT_REFUSE);
	CHECK(v.refusal == RR_RELAY_DENIED && v.code == 554);
	CHECK_STR(v.status, "5.7.1");
	CHECK_STR(v.reason, "relay-denied");
	CHECK(rcpt_refusal_logs_from(&v));
	rcpt_refusal_reply(&v, "bob@Remote.example", line, sizeof(line));
	CHECK_STR(line, "554 5.7.1 <bob@Remote.example>: Relay access denied");
	CHECK(judge("<bob@Remote.example>", 1, NULL, &v) == RCPT_RELAY);
	CHECK_STR(v.addr, "bob@remote.example");	/* the domain as it compares */
	CHECK_STR(v.domain, "remote.example");
}

TEST(who_may_relay_relay_networks_auth_or_the_local_socket)
{
	struct netaddr in, out;

	CHECK(netaddr_parse("127.0.0.1", &in) == 0);
	CHECK(netaddr_parse("203.0.113.9", &out) == 0);
	CHECK(rcpt_may_relay(&conf, &in, 0, 0));
	CHECK(!rcpt_may_relay(&conf, &out, 0, 0));
	CHECK(rcpt_may_relay(&conf, &out, 1, 0));
	CHECK(rcpt_may_relay(&conf, &out, 0, 1));
}

TEST(routing_tricks_in_a_local_part_are_judged_as_the_address_they_hide)
{
	struct rcpt_verdict v;
	const char *tricks[] = { "<\"bob@remote.example\"@example.com>",
	    "<bob%remote.example@example.com>", "<remote.example!bob@example.com>" };

	for (size_t i = 0; i < 3; i++) {
		CHECK(judge(tricks[i], 0, NULL, &v) == RCPT_REFUSE);
		CHECK(v.refusal == RR_RELAY_DENIED && v.routed);
		CHECK_STR(v.local, "bob");
		CHECK_STR(v.domain, "remote.example");
	}
	/* hiding a local address is just that address */
	CHECK(judge("<carol%Example.com@example.com>", 0, NULL, &v) == RCPT_LOCAL);
	CHECK(v.routed);
	CHECK_STR(v.addr, "carol@example.com");
}

TEST(a_routing_trick_that_hides_no_address_is_a_syntax_error)
{
	struct rcpt_verdict v;
	char line[300];

	CHECK(judge("<\"bob@bad..domain\"@example.com>", 1, NULL, &v) == RCPT_REFUSE);
	CHECK(v.refusal == RR_BAD_ROUTED && v.code == 501);
	CHECK_STR(v.status, "5.1.3");
	CHECK(!rcpt_refusal_logs_from(&v));
	rcpt_refusal_reply(&v, "x", line, sizeof(line));
	CHECK_STR(line, "501 5.1.3 <x>: Bad recipient address syntax");
	CHECK(judge("<user%@example.com>", 1, NULL, &v) == RCPT_REFUSE);
	CHECK(v.refusal == RR_BAD_ROUTED);
}

TEST(a_local_part_that_cannot_name_a_mailbox_is_refused_with_why)
{
	struct rcpt_verdict v;
	char line[300];

	CHECK(judge("<\"a/b\"@example.com>", 0, NULL, &v) == RCPT_REFUSE);
	CHECK(v.refusal == RR_BAD_LOCAL_PART && v.code == 550);
	CHECK_STR(v.status, "5.1.3");
	CHECK(v.why != NULL);
	rcpt_refusal_reply(&v, "\"a/b\"@example.com", line, sizeof(line));
	CHECK(strncmp(line, "550 5.1.3 <\"a/b\"@example.com>: Bad recipient address: local part "
	    "cannot name a mailbox (", 82) == 0);
	CHECK(line[strlen(line) - 1] == ')');
	CHECK(judge("<\".hidden\"@example.com>", 0, NULL, &v) == RCPT_REFUSE);
	CHECK(v.refusal == RR_BAD_LOCAL_PART);
}

TEST(with_a_recipients_file_unknown_users_are_refused_but_postmaster_never)
{
	struct rcpt_verdict v;
	char line[300];

	CHECK(judge("<alice@example.com>", 0, table, &v) == RCPT_LOCAL);
	CHECK(judge("<ALICE@example.com>", 0, table, &v) == RCPT_LOCAL);
	CHECK(judge("<mallory@example.com>", 0, table, &v) == RCPT_REFUSE);
	CHECK(v.refusal == RR_UNKNOWN_USER && v.code == 550);
	CHECK_STR(v.status, "5.1.1");
	rcpt_refusal_reply(&v, "mallory@example.com", line, sizeof(line));
	CHECK_STR(line, "550 5.1.1 <mallory@example.com>: Recipient address rejected: User unknown");
	CHECK(judge("<postmaster@example.com>", 0, table, &v) == RCPT_LOCAL);
	CHECK(judge("<Postmaster>", 0, table, &v) == RCPT_LOCAL);
	CHECK_STR(v.addr, "postmaster@example.com");	/* the first local domain's */
	CHECK_STR(v.given, "postmaster");	/* as smtp_path_addr writes it */
}

TEST(a_utf8_domain_compares_as_its_a_label_and_a_bad_one_is_refused)
{
	struct rcpt_verdict v;
	char line[300];

	CHECK(judge("<jos\xc3\xa9@b\xc3\xbc" "cher.example>", 1, NULL, &v) == RCPT_RELAY);
	CHECK_STR(v.domain, "xn--bcher-kva.example");
	CHECK(judge("<x@\xe2\x98\x83.example>", 1, NULL, &v) == RCPT_REFUSE);
	CHECK(v.refusal == RR_BAD_IDN && v.code == 553 && v.why != NULL);
	rcpt_refusal_reply(&v, "x", line, sizeof(line));
	CHECK(strncmp(line, "553 5.1.3 <x>: Bad recipient domain: ", 37) == 0);
}

TEST(a_utf8_local_part_names_its_mailbox_in_nfc_lower_case)
{
	struct rcpt_verdict v;

	/* "JOSE" with a combining acute, upper case: folded to NFC lower case */
	CHECK(judge("<JOSE\xcc\x81@example.com>", 0, NULL, &v) == RCPT_LOCAL);
	CHECK_STR(v.addr, "jos\xc3\xa9@example.com");
}

TEST(an_address_literal_is_never_local)
{
	struct rcpt_verdict v;

	CHECK(judge("<u@[192.0.2.1]>", 0, NULL, &v) == RCPT_REFUSE);
	CHECK(v.refusal == RR_RELAY_DENIED);
	CHECK(judge("<u@[192.0.2.1]>", 1, NULL, &v) == RCPT_RELAY);
	CHECK_STR(v.addr, "u@[192.0.2.1]");
}

int
main(void)
{
	char err[300];
	const char *text = "local_domains = example.com other.example\n";
	const char *list = "alice@example.com\n";

	if (conf_parse("test", text, strlen(text), "mx.example", &conf, err, sizeof(err)) < 0 ||
	    (table = recipients_parse("list", list, strlen(list), err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	RUN(a_local_domain_is_local_whatever_the_case);
	RUN(a_remote_domain_is_relayed_only_for_a_client_that_may);
	RUN(who_may_relay_relay_networks_auth_or_the_local_socket);
	RUN(routing_tricks_in_a_local_part_are_judged_as_the_address_they_hide);
	RUN(a_routing_trick_that_hides_no_address_is_a_syntax_error);
	RUN(a_local_part_that_cannot_name_a_mailbox_is_refused_with_why);
	RUN(with_a_recipients_file_unknown_users_are_refused_but_postmaster_never);
	RUN(a_utf8_domain_compares_as_its_a_label_and_a_bad_one_is_refused);
	RUN(a_utf8_local_part_names_its_mailbox_in_nfc_lower_case);
	RUN(an_address_literal_is_never_local);
	recipients_free(table);
	conf_free(&conf);
	T_EXIT();
}
