/*
 * policyd_test — Postfix's policy delegation protocol: the request lines, the reply reader
 * (whole, split, malformed) and every action of access(5) a policy server may return.
 */
#include <stdlib.h>

#include "proto/policyd.h"
#include "t.h"

static char action[POLICYD_ACTION_MAX];
static size_t used;
static const char *why;
static struct policyd_verdict V;

/* Parse s (exactly its length, on the heap so ASan sees a read past it). */
static int
parse_n(const char *s, size_t n)
{
	char *copy = malloc(n ? n : 1);
	int r;

	memcpy(copy, s, n);
	action[0] = '\0';
	why = NULL;
	r = policyd_reply_parse(copy, n, action, &used, &why);
	free(copy);
	return r;
}

static int
parse(const char *s)
{
	return parse_n(s, strlen(s));
}

static int
act(const char *a)
{
	why = NULL;
	return policyd_action_parse(a, &V, &why);
}

TEST(request_is_name_value_lines_and_an_empty_line)
{
	struct sbuf b = { 0 };

	CHECK(policyd_put_attr(&b, "request", "smtpd_access_policy") == 0);
	CHECK(policyd_put_attr(&b, "protocol_state", "RCPT") == 0);
	policyd_put_num(&b, "size", 12345);
	CHECK(policyd_put_attr(&b, "sender", "") == 0);
	policyd_put_end(&b);
	CHECK_STR(b.p, "request=smtpd_access_policy\nprotocol_state=RCPT\nsize=12345\nsender=\n\n");
	free(b.p);
}

TEST(request_values_cannot_break_the_framing)
{
	struct sbuf b = { 0 };

	CHECK(policyd_put_attr(&b, "helo_name", "a\r\nrecipient=evil\n") == 0);
	CHECK_STR(b.p, "helo_name=a??recipient=evil?\n");
	CHECK(policyd_put_attr(&b, "bad=name", "x") == -1);
	CHECK(policyd_put_attr(&b, "bad\nname", "x") == -1);
	CHECK(policyd_put_attr(&b, "", "x") == -1);
	CHECK_STR(b.p, "helo_name=a??recipient=evil?\n");
	free(b.p);
}

TEST(reply_complete_incomplete_and_pipelined)
{
	const char *two = "action=DUNNO\n\naction=OK\n\n";

	CHECK(parse("action=DEFER_IF_PERMIT Greylisted, see http://x/\n\n") == 1);
	CHECK_STR(action, "DEFER_IF_PERMIT Greylisted, see http://x/");
	CHECK(parse("action=dunno\r\n\r\n") == 1 && used == 16);
	CHECK_STR(action, "dunno");
	CHECK(parse("action=OK\n") == 0 && used == 0);
	CHECK(parse("action=O") == 0);
	CHECK(parse("") == 0);
	CHECK(parse(two) == 1 && used == 14);
	CHECK_STR(action, "DUNNO");
	CHECK(parse(two + used) == 1);
	CHECK_STR(action, "OK");
	/* other attributes are ignored; the first action counts */
	CHECK(parse("x=1\naction=REJECT no\naction=OK\n\n") == 1);
	CHECK_STR(action, "REJECT no");
}

TEST(reply_split_byte_by_byte_completes_only_at_the_empty_line)
{
	const char *s = "action=HOLD spam\n\n";
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++)
		CHECK(parse_n(s, i) == 0);
	CHECK(parse_n(s, n) == 1 && used == n);
}

TEST(malformed_replies_are_errors)
{
	char big[POLICYD_REPLY_MAX + 100];

	CHECK(parse("\n") == -1);				/* no action */
	CHECK(parse("foo=bar\n\n") == -1);
	CHECK(parse("action DUNNO\n\n") == -1);		/* not name=value */
	CHECK(parse("=DUNNO\n\n") == -1);
	CHECK(parse("action=a\x01z\n\n") == -1);		/* control byte */
	memset(big, 'a', sizeof big);
	memcpy(big, "action=", 7);
	CHECK(parse_n(big, POLICYD_LINE_MAX + 10) == -1);	/* a line too long, no LF yet */
	for (size_t i = 100; i + 2 < sizeof big; i += 100) {
		big[i] = '\n';				/* lines "x=aaa..." */
		big[i + 1] = 'x';
		big[i + 2] = '=';
	}
	CHECK(parse_n(big, sizeof big) == -1);			/* too long in all */
	CHECK_STR(why, "reply too long");
}

TEST(accepting_and_neutral_actions)
{
	CHECK(act("OK") == 0 && V.kind == POLICYD_OK);
	CHECK(act("ok") == 0 && V.kind == POLICYD_OK);
	CHECK(act("permit") == 0 && V.kind == POLICYD_OK);
	CHECK(act("12345") == 0 && V.kind == POLICYD_OK);	/* all-numerical */
	CHECK(act("DUNNO") == 0 && V.kind == POLICYD_DUNNO);
	CHECK(act("  dunno") == 0 && V.kind == POLICYD_DUNNO);
	CHECK(act("INFO looked at it") == 0 && V.kind == POLICYD_INFO);
	CHECK_STR(V.text, "looked at it");
	CHECK(act("WARN odd client") == 0 && V.kind == POLICYD_WARN);
}

TEST(refusals_get_codes_enhanced_codes_and_default_text)
{
	CHECK(act("REJECT") == 0 && V.kind == POLICYD_REJECT && V.code == 554);
	CHECK_STR(V.enh, "5.7.1");
	CHECK_STR(V.text, "Access denied");
	CHECK(act("reject You are not welcome") == 0 && V.code == 554);
	CHECK_STR(V.text, "You are not welcome");
	CHECK(act("DEFER come back later") == 0 && V.kind == POLICYD_REJECT && V.code == 450);
	CHECK_STR(V.enh, "4.7.1");
	CHECK(act("DEFER_IF_PERMIT Greylisted, see http://postgrey/") == 0);
	CHECK(V.kind == POLICYD_DEFER_IF_PERMIT && V.code == 450);
	CHECK_STR(V.text, "Greylisted, see http://postgrey/");
	CHECK(act("defer_if_reject maybe") == 0 && V.kind == POLICYD_DEFER_IF_REJECT);
	CHECK(act("550 5.1.1 no such user") == 0 && V.kind == POLICYD_REJECT && V.code == 550);
	CHECK_STR(V.enh, "5.1.1");
	CHECK_STR(V.text, "no such user");
	CHECK(act("451 try again") == 0 && V.code == 451);
	CHECK_STR(V.enh, "4.7.1");
	CHECK(act("550 4.1.1 wrong class") == 0);		/* not its class: kept as text */
	CHECK_STR(V.enh, "5.7.1");
	CHECK_STR(V.text, "4.1.1 wrong class");
	CHECK(act("421 go away") == 0 && V.disconnect);
	CHECK(act("521 go away") == 0 && V.disconnect);
	CHECK(act("550 bye\x01") == 0);
	CHECK_STR(V.text, "bye?");
}

TEST(message_actions)
{
	CHECK(act("DISCARD spam") == 0 && V.kind == POLICYD_DISCARD);
	CHECK(act("HOLD") == 0 && V.kind == POLICYD_HOLD && V.text[0] == '\0');
	CHECK(act("PREPEND X-Greylist: delayed 61 seconds by postgrey-1.37") == 0);
	CHECK(V.kind == POLICYD_PREPEND);
	CHECK_STR(V.text, "X-Greylist: delayed 61 seconds by postgrey-1.37");
	CHECK(act("REDIRECT abuse@example.com") == 0 && V.kind == POLICYD_REDIRECT);
	CHECK_STR(V.text, "abuse@example.com");
	CHECK(act("BCC archive@example.com") == 0 && V.kind == POLICYD_BCC);
}

TEST(actions_imsd_cannot_carry_out_are_errors)
{
	CHECK(act("FILTER smtp:[127.0.0.1]:10025") == -1 && V.kind == POLICYD_ERROR);
	CHECK(act("reject_unauth_destination") == -1);
	CHECK(act("250 fine") == -1);
	CHECK(act("PREPEND not a header") == -1);
	CHECK(act("PREPEND") == -1);
	CHECK(act("REDIRECT") == -1);
	CHECK(act("REDIRECT <a@b>") == -1);
	CHECK(act("") == -1);
	CHECK(act("OKAY") == -1);
	CHECK(why != NULL);
	CHECK_STR(policyd_kind_name(POLICYD_DEFER_IF_PERMIT), "defer_if_permit");
}

TEST(refusals_are_worded_as_postfix_words_them)
{
	struct policyd_verdict v;
	char line[POLICYD_REPLY_LINE_MAX];

	CHECK(act("DEFER_IF_PERMIT 4.2.0 Greylisted, see http://postgrey/") == 0);
	policyd_format_refusal(&V, POLICYD_AT_RCPT, "bob@example.org", line);
	CHECK_STR(line, "450 4.2.0 <bob@example.org>: Recipient address rejected: Greylisted, "
	    "see http://postgrey/");
	CHECK(act("REJECT") == 0);
	policyd_format_refusal(&V, POLICYD_AT_MAIL, "", line);
	CHECK_STR(line, "554 5.7.1 <>: Sender address rejected: Access denied");
	policyd_format_refusal(&V, POLICYD_AT_HELO, "bad\x01helo", line);
	CHECK_STR(line, "554 5.7.1 <bad?helo>: Helo command rejected: Access denied");
	policyd_format_refusal(&V, POLICYD_AT_EOM, NULL, line);
	CHECK_STR(line, "554 5.7.1 End-of-data rejected: Access denied");
	memset(&v, 0, sizeof v);
	v.kind = POLICYD_REJECT;
	policyd_format_refusal(&v, POLICYD_AT_DATA, NULL, line);
	CHECK_STR(line, "451 4.7.1 Data command rejected: ");
	CHECK_STR(policyd_state_name(POLICYD_AT_HELO, 1), "EHLO");
	CHECK_STR(policyd_state_name(POLICYD_AT_EOM, 0), "END-OF-MESSAGE");
}

static struct policyd_chain CH;
static char LINE[POLICYD_REPLY_LINE_MAX];

static int
chain(const char *const *actions, size_t n)
{
	struct policyd_verdict v;
	const char *w;

	policyd_chain_init(&CH);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(actions[i], "!tempfail") == 0) {
			if (policyd_chain_default(&CH, 0))
				break;
			continue;
		}
		if (strcmp(actions[i], "!accept") == 0) {
			if (policyd_chain_default(&CH, 1))
				break;
			continue;
		}
		if (strcmp(actions[i], "!reject") == 0) {
			if (policyd_chain_default(&CH, 2))
				break;
			continue;
		}
		policyd_action_parse(actions[i], &v, &w);
		if (policyd_chain_add(&CH, &v))
			break;
	}
	return policyd_chain_result(&CH, POLICYD_AT_RCPT, "bob@x.example", LINE);
}

TEST(services_in_turn_combine_as_postfix_restrictions_do)
{
	const char *a[] = { "DUNNO", "OK", "REJECT never asked" };
	const char *b[] = { "DUNNO", "REJECT no" };
	const char *c[] = { "DEFER_IF_PERMIT 4.2.0 Greylisted", "DUNNO" };
	const char *d[] = { "DEFER_IF_PERMIT grey", "550 5.1.1 unknown" };
	const char *e[] = { "DEFER_IF_REJECT maybe", "REJECT no" };
	const char *f[] = { "DEFER_IF_REJECT maybe", "DUNNO" };
	const char *g[] = { "PREPEND X-A: 1", "PREPEND X-B: 2", "OK" };
	const char *h[] = { "!tempfail" };
	const char *i2[] = { "!accept", "DUNNO" };
	const char *j[] = { "!reject" };
	const char *k[] = { "DEFER_IF_PERMIT grey", "OK" };

	CHECK(chain(a, 3) == 0);
	CHECK(chain(b, 2) == 1);
	CHECK_STR(LINE, "554 5.7.1 <bob@x.example>: Recipient address rejected: no");
	CHECK(chain(c, 2) == 1);
	CHECK_STR(LINE, "450 4.2.0 <bob@x.example>: Recipient address rejected: Greylisted");
	CHECK(chain(d, 2) == 1);
	CHECK_STR(LINE, "550 5.1.1 <bob@x.example>: Recipient address rejected: unknown");
	CHECK(chain(e, 2) == 1);
	CHECK_STR(LINE, "450 4.7.1 <bob@x.example>: Recipient address rejected: maybe");
	CHECK(chain(f, 2) == 0);
	CHECK(chain(g, 3) == 0 && CH.nprepend == 2);
	CHECK_STR(CH.prepend[1], "X-B: 2");
	CHECK(chain(h, 1) == 1);
	CHECK_STR(LINE, "451 4.3.5 <bob@x.example>: Recipient address rejected: Server "
	    "configuration problem");
	CHECK(chain(i2, 2) == 0);
	CHECK(chain(j, 1) == 1);
	CHECK_STR(LINE, "550 5.7.1 <bob@x.example>: Recipient address rejected: Policy service "
	    "unavailable");
	CHECK(chain(k, 2) == 1);		/* an OK permits, so the defer applies */
}

int
main(void)
{
	RUN(request_is_name_value_lines_and_an_empty_line);
	RUN(request_values_cannot_break_the_framing);
	RUN(reply_complete_incomplete_and_pipelined);
	RUN(reply_split_byte_by_byte_completes_only_at_the_empty_line);
	RUN(malformed_replies_are_errors);
	RUN(accepting_and_neutral_actions);
	RUN(refusals_get_codes_enhanced_codes_and_default_text);
	RUN(message_actions);
	RUN(actions_imsd_cannot_carry_out_are_errors);
	RUN(refusals_are_worded_as_postfix_words_them);
	RUN(services_in_turn_combine_as_postfix_restrictions_do);
	T_EXIT();
}
