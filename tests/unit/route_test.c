/* Unit tests for src/deliver/route.c: which agent and which target a recipient gets. */
#include "deliver/route.h"
#include "t.h"

static struct conf plain, smarthost, literal_host;

static int
load(struct conf *c, const char *text)
{
	char err[300];

	if (conf_parse("test", text, strlen(text), "mx.example", c, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

TEST(a_local_domain_goes_to_its_maildir)
{
	struct route r;

	route_decide(&plain, "alice@example.com", &r);
	CHECK(r.agent == ROUTE_MAILDIR && r.via == VIA_MAILBOX);
	CHECK_STR(r.nexthop, "example.com/alice");
	CHECK_STR(r.key, "maildir");
	CHECK_STR(route_agent_name(r.agent), "maildir");
	route_decide(&plain, "bob@EXAMPLE.com", &r);	/* the domain compares in any case */
	CHECK(r.agent == ROUTE_MAILDIR);
}

TEST(a_remote_domain_goes_by_smtp_to_its_mx_hosts)
{
	struct route r;

	route_decide(&plain, "bob@Remote.Example", &r);
	CHECK(r.agent == ROUTE_SMTP && r.via == VIA_MX);
	CHECK_STR(r.nexthop, "remote.example");
	CHECK_STR(r.key, "remote.example");
	CHECK(r.port == 2526);
	CHECK_STR(route_agent_name(r.agent), "smtp");
}

TEST(a_utf8_domain_is_routed_by_its_a_label)
{
	struct route r;

	route_decide(&plain, "x@b\xc3\xbc" "cher.example", &r);
	CHECK_STR(r.nexthop, "xn--bcher-kva.example");
	/* not valid IDNA: as written, and the lookup says so */
	route_decide(&plain, "x@\xe2\x98\x83.example", &r);
	CHECK_STR(r.nexthop, "\xe2\x98\x83.example");
}

TEST(an_address_literal_goes_to_itself)
{
	struct route r;

	route_decide(&plain, "u@[192.0.2.1]", &r);
	CHECK(r.agent == ROUTE_SMTP && r.via == VIA_LITERAL);
	CHECK_STR(r.nexthop, "[192.0.2.1]");
	CHECK(r.port == 2526);
}

TEST(relayhost_takes_every_remote_recipient_but_no_local_one)
{
	struct route r;

	route_decide(&smarthost, "bob@remote.example", &r);
	CHECK(r.agent == ROUTE_SMTP && r.via == VIA_HOST);
	CHECK_STR(r.nexthop, "smart.example");
	CHECK(r.port == 587 && !r.no_mx);
	CHECK_STR(r.key, "relayhost");
	route_decide(&smarthost, "u@[192.0.2.1]", &r);
	CHECK(r.via == VIA_HOST);
	route_decide(&smarthost, "alice@example.com", &r);
	CHECK(r.agent == ROUTE_MAILDIR);
	route_decide(&literal_host, "bob@remote.example", &r);
	CHECK(r.via == VIA_HOST && r.no_mx && r.port == 25);
}

TEST(a_configured_lmtp_transport_is_a_route_by_socket_or_host)
{
	struct conf_transport t;
	struct route r;
	char why[300];

	CHECK(conf_transport_parse("lmtp:unix:/run/dovecot/lmtp", &t, why, sizeof(why)) == 0);
	route_of_transport(&t, "alice@example.com", &r);
	CHECK(r.agent == ROUTE_LMTP && r.via == VIA_UNIX);
	CHECK_STR(r.nexthop, "/run/dovecot/lmtp");
	CHECK_STR(r.key, "lmtp:unix:/run/dovecot/lmtp");
	CHECK_STR(route_agent_name(r.agent), "lmtp");
	CHECK(conf_transport_parse("lmtp:inet:[::1]:24", &t, why, sizeof(why)) == 0);
	route_of_transport(&t, "alice@example.com", &r);
	CHECK(r.agent == ROUTE_LMTP && r.via == VIA_HOST && r.no_mx && r.port == 24);
	CHECK_STR(r.nexthop, "::1");
	CHECK(conf_transport_parse("maildir", &t, why, sizeof(why)) == 0);
	route_of_transport(&t, "Alice@Example.COM", &r);
	CHECK(r.agent == ROUTE_MAILDIR && r.via == VIA_MAILBOX);
	CHECK_STR(r.nexthop, "example.com/Alice");
}

TEST(mailbox_transport_is_not_in_effect_yet_local_mail_stays_maildir)
{
	struct conf c;
	struct route r;
	char err[300];
	const char *text = "local_domains = example.com\nmailbox_transport = lmtp:unix:/x/lmtp\n";

	CHECK(conf_parse("test", text, strlen(text), "mx.example", &c, err, sizeof(err)) == 0);
	route_decide(&c, "alice@example.com", &r);
	CHECK(r.agent == ROUTE_MAILDIR);
	conf_free(&c);
}

int
main(void)
{
	if (load(&plain, "local_domains = example.com\nsmtp_port = 2526\n") < 0 ||
	    load(&smarthost, "local_domains = example.com\nrelayhost = smart.example:587\n") < 0 ||
	    load(&literal_host, "relayhost = [smart.example]\n") < 0)
		return 1;
	RUN(a_local_domain_goes_to_its_maildir);
	RUN(a_remote_domain_goes_by_smtp_to_its_mx_hosts);
	RUN(a_utf8_domain_is_routed_by_its_a_label);
	RUN(an_address_literal_goes_to_itself);
	RUN(relayhost_takes_every_remote_recipient_but_no_local_one);
	RUN(a_configured_lmtp_transport_is_a_route_by_socket_or_host);
	RUN(mailbox_transport_is_not_in_effect_yet_local_mail_stays_maildir);
	conf_free(&plain);
	conf_free(&smarthost);
	conf_free(&literal_host);
	T_EXIT();
}
