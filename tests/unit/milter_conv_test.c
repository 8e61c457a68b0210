/*
 * milter_conv_test — one milter conversation, MTA side: what is sent at each stage under
 * each agreement, how answers become verdicts, edits and failures.
 */
#include <stdlib.h>

#include "proto/milter_conv.h"
#include "t.h"

static struct milter_conv C;
static struct sbuf M;		/* what the "milter" sends back */

static void
mreset(void)
{
	free(M.p);
	memset(&M, 0, sizeof M);
}

/* Append a reply packet: letter c, n bytes of data. */
static void
mput(char c, const void *d, size_t n)
{
	unsigned char h[5] = { (unsigned char)((n + 1) >> 24), (unsigned char)((n + 1) >> 16),
	    (unsigned char)((n + 1) >> 8), (unsigned char)(n + 1), (unsigned char)c };

	sbuf_add(&M, h, 5);
	sbuf_add(&M, d, n);
}

#define MPUT(c, lit) mput(c, lit, sizeof(lit) - 1)

static void
optneg_reply(uint32_t version, uint32_t actions, uint32_t protocol, const void *extra, size_t n)
{
	unsigned char d[12];
	uint32_t w[3] = { version, actions, protocol };

	for (int i = 0; i < 3; i++) {
		d[4 * i] = (unsigned char)(w[i] >> 24);
		d[4 * i + 1] = (unsigned char)(w[i] >> 16);
		d[4 * i + 2] = (unsigned char)(w[i] >> 8);
		d[4 * i + 3] = (unsigned char)w[i];
	}
	{
		unsigned char *all = malloc(12 + n);

		memcpy(all, d, 12);
		if (n)
			memcpy(all + 12, extra, n);
		mput('O', all, 12 + n);
		free(all);
	}
}

/* Feed everything in M; returns the last event, and the number of events in *count. */
static struct milter_event last;
static int nedits, nprogress;

static struct milter_event
feed_all(void)
{
	size_t off = 0, used;
	struct milter_event e;

	nedits = nprogress = 0;
	memset(&last, 0, sizeof last);
	for (;;) {
		e = milter_conv_feed(&C, (const unsigned char *)M.p + off, M.len - off, &used);
		off += used;
		if (e.kind == MILTER_EV_EDIT)
			nedits++;
		else if (e.kind == MILTER_EV_PROGRESS)
			nprogress++;
		else {
			last = e;
			break;
		}
	}
	mreset();
	return last;
}

/* Drop what the conversation queued; return it as a copy for inspection. */
static size_t outlen;
static unsigned char outbuf[4096];

static void
take_out(void)
{
	size_t n;
	const void *p = milter_conv_out(&C, &n);

	outlen = n < sizeof outbuf ? n : sizeof outbuf;
	if (n)
		memcpy(outbuf, p, outlen);
	milter_conv_sent(&C, n);
}

static int
out_has(const void *needle, size_t n)
{
	for (size_t i = 0; i + n <= outlen; i++)
		if (memcmp(outbuf + i, needle, n) == 0)
			return 1;
	return 0;
}

#define OUT_HAS(lit) out_has(lit, sizeof(lit) - 1)

static const char *
macro(void *arg, const char *name)
{
	if (strcmp(name, "j") == 0)
		return "mx.imsd.test";
	if (strcmp(name, "{client_addr}") == 0)
		return "192.0.2.7";
	if (strcmp(name, "i") == 0)
		return "QID1";
	if (strcmp(name, "{rcpt_addr}") == 0)
		return "bob@localhost";
	return NULL;	/* the others are not known */
}

/* Open and negotiate with the given answer. */
static void
start(uint32_t version, uint32_t actions, uint32_t protocol, const void *extra, size_t n)
{
	struct milter_event e;

	milter_conv_open(&C);
	take_out();
	optneg_reply(version, actions, protocol, extra, n);
	e = feed_all();
	CHECK(e.kind == MILTER_EV_VERDICT && e.verdict == MILTER_CONTINUE);
}

TEST(open_offers_version_6_every_action_and_all_steps_but_rcpt_rej)
{
	milter_conv_open(&C);
	take_out();
	CHECK(outlen == 17);
	CHECK(memcmp(outbuf, "\0\0\0\x0dO\0\0\0\6\0\0\1\xff\0\x1f\xf7\xff", 17) == 0);
	CHECK(milter_conv_wait(&C) == MILTER_WAIT_CONNECT);
	CHECK(!milter_conv_active(&C));
	optneg_reply(6, SMFIF_ADDHDRS, 0, NULL, 0);
	CHECK(feed_all().verdict == MILTER_CONTINUE && milter_conv_active(&C));
	milter_conv_free(&C);
}

TEST(default_macros_are_postfix_s_and_unknown_ones_are_left_out)
{
	start(6, 0, SMFIP_NR_CONN, NULL, 0);
	CHECK(milter_conv_connect(&C, "client.test", SMFIA_INET, 25, "192.0.2.7", macro, NULL) ==
	    MILTER_STEP_GO);
	take_out();
	/* "j {daemon_name} {daemon_addr} v _": only j is known here */
	CHECK(OUT_HAS("\0\0\0\x11" "D" "C" "j\0" "mx.imsd.test\0"));
	CHECK(OUT_HAS("\0\0\0\x1a" "C" "client.test\0" "4" "\0\x19" "192.0.2.7\0"));
	CHECK_STR(milter_conv_default_macros(MILTER_STAGE_RCPT),
	    "i {rcpt_addr} {rcpt_host} {rcpt_mailer}");
	milter_conv_free(&C);
}

TEST(macros_the_milter_asked_for_are_sent_in_its_order)
{
	static const char lists[] = "\0\0\0\0" "{client_addr} j\0" "\0\0\0\3" "{rcpt_addr}\0";

	start(6, SMFIF_SETSYMLIST, SMFIP_NR_CONN | SMFIP_NR_RCPT, lists, sizeof lists - 1);
	milter_conv_connect(&C, "client.test", SMFIA_INET, 25, "192.0.2.7", macro, NULL);
	take_out();
	CHECK(OUT_HAS("D" "C" "{client_addr}\0" "192.0.2.7\0" "j\0" "mx.imsd.test\0"));
	{
		const char *mail[] = { "<a@b.test>" }, *rcpt[] = { "<bob@localhost>" };

		milter_conv_mail(&C, mail, 1, macro, NULL);
		take_out();
		CHECK(milter_conv_wait(&C) == MILTER_WAIT_COMMAND);
		MPUT('c', "");
		CHECK(feed_all().verdict == MILTER_CONTINUE);
		CHECK(milter_conv_rcpt(&C, rcpt, 1, macro, NULL) == MILTER_STEP_GO);
		take_out();
		/* its rcpt list has no "i" */
		CHECK(OUT_HAS("\0\0\0\x1c" "D" "R" "{rcpt_addr}\0" "bob@localhost\0"));
		CHECK(!OUT_HAS("QID1"));
	}
	milter_conv_free(&C);
}

TEST(rcpt_refusal_with_the_milter_s_own_reply_is_per_recipient)
{
	const char *mail[] = { "<a@b.test>" }, *r1[] = { "<x@localhost>" }, *r2[] = { "<y@localhost>" };
	struct milter_event e;

	start(6, 0, SMFIP_NR_MAIL, NULL, 0);
	CHECK(milter_conv_mail(&C, mail, 1, NULL, NULL) == MILTER_STEP_GO);
	CHECK(milter_conv_rcpt(&C, r1, 1, NULL, NULL) == MILTER_STEP_WAIT);
	MPUT('y', "550 5.1.1 milter says no such user\0");
	e = feed_all();
	CHECK(e.verdict == MILTER_REJECT && e.has_reply && e.reply->code == 550);
	CHECK_STR(e.reply->enh, "5.1.1");
	CHECK(milter_conv_rcpt(&C, r2, 1, NULL, NULL) == MILTER_STEP_WAIT);	/* still asked */
	MPUT('t', "");
	e = feed_all();
	CHECK(e.verdict == MILTER_TEMPFAIL && !e.has_reply);
	MPUT('y', "");		/* nothing is awaited now: a milter that talks out of turn */
	milter_conv_free(&C);
	mreset();
}

TEST(eom_edits_come_before_the_verdict_and_quarantine_is_flagged)
{
	const char *mail[] = { "<a@b.test>" };
	struct milter_event e;

	start(6, SMFIF_ALL, SMFIP_NR_MAIL | SMFIP_NOHDRS | SMFIP_NOBODY | SMFIP_NOEOH | SMFIP_NODATA,
	    NULL, 0);
	milter_conv_mail(&C, mail, 1, NULL, NULL);
	CHECK(milter_conv_data(&C, NULL, NULL) == MILTER_STEP_GO);
	CHECK(milter_conv_header(&C, "Subject", " hi", 3) == MILTER_STEP_GO);
	CHECK(milter_conv_eom(&C, macro, NULL) == MILTER_STEP_WAIT);
	CHECK(milter_conv_wait(&C) == MILTER_WAIT_CONTENT);
	take_out();
	CHECK(OUT_HAS("\0\0\0\1E") && OUT_HAS("D" "E" "i\0" "QID1\0"));
	MPUT('p', "");
	MPUT('h', "X-Spam\0Yes\0");
	MPUT('b', "new\r\n");
	MPUT('q', "virus found\0");
	MPUT('a', "");
	e = feed_all();
	CHECK(nprogress == 1 && nedits == 3);
	CHECK(e.verdict == MILTER_ACCEPT && e.quarantine);
	CHECK_STR(e.quarantine_reason, "virus found");
	/* the next message starts afresh */
	milter_conv_mail(&C, mail, 1, NULL, NULL);
	CHECK(milter_conv_eom(&C, NULL, NULL) == MILTER_STEP_WAIT);
	MPUT('c', "");
	e = feed_all();
	CHECK(e.verdict == MILTER_CONTINUE && !e.quarantine);
	milter_conv_free(&C);
}

TEST(an_edit_not_negotiated_or_out_of_place_is_a_failure)
{
	const char *mail[] = { "<a@b.test>" }, *rcpt[] = { "<x@localhost>" };
	struct milter_event e;

	start(6, SMFIF_ADDHDRS, 0, NULL, 0);
	milter_conv_connect(&C, "h", SMFIA_UNKNOWN, 0, NULL, NULL, NULL);
	MPUT('c', "");
	feed_all();
	milter_conv_mail(&C, mail, 1, NULL, NULL);
	MPUT('c', "");
	feed_all();
	CHECK(milter_conv_rcpt(&C, rcpt, 1, NULL, NULL) == MILTER_STEP_WAIT);
	MPUT('h', "X-A\0b\0");		/* an edit at RCPT */
	e = feed_all();
	CHECK(e.verdict == MILTER_ERROR && e.why != NULL);
	CHECK(!milter_conv_active(&C));
	/* out of the conversation: nothing more is sent, every step goes on */
	take_out();
	CHECK(milter_conv_eom(&C, NULL, NULL) == MILTER_STEP_GO);
	milter_conv_quit(&C);
	take_out();
	CHECK(outlen == 0);
	milter_conv_free(&C);

	start(6, SMFIF_ADDHDRS, SMFIP_NR_MAIL, NULL, 0);
	milter_conv_mail(&C, mail, 1, NULL, NULL);
	milter_conv_eom(&C, NULL, NULL);
	MPUT('m', "\0\0\0\1Subject\0x\0");	/* CHGHDRS was not agreed */
	CHECK(feed_all().verdict == MILTER_ERROR);
	milter_conv_free(&C);
}

TEST(garbage_and_talk_out_of_turn_are_failures)
{
	struct milter_event e;

	start(6, 0, 0, NULL, 0);
	e = milter_conv_feed(&C, (const unsigned char *)"\0\0\0\1c", 5, &outlen);
	CHECK(e.verdict == MILTER_ERROR);		/* nothing was asked */
	milter_conv_free(&C);

	milter_conv_open(&C);
	take_out();
	e = milter_conv_feed(&C, (const unsigned char *)"HTTP/1.0 400 Bad\r\n", 18, &outlen);
	CHECK(e.verdict == MILTER_ERROR);		/* a length of 1.2 GB */
	milter_conv_free(&C);

	milter_conv_open(&C);
	optneg_reply(7, 0, 0, NULL, 0);		/* a version beyond 6 */
	CHECK(feed_all().verdict == MILTER_ERROR);
	milter_conv_free(&C);

	milter_conv_open(&C);
	CHECK(milter_conv_fail(&C, "connect: Connection refused").verdict == MILTER_ERROR);
	CHECK(milter_conv_connect(&C, "h", SMFIA_UNKNOWN, 0, NULL, NULL, NULL) == MILTER_STEP_GO);
	milter_conv_free(&C);
}

TEST(accept_at_mail_skips_the_rest_of_the_message_only)
{
	const char *mail[] = { "<a@b.test>" }, *rcpt[] = { "<x@localhost>" };

	start(6, 0, 0, NULL, 0);
	milter_conv_connect(&C, "h", SMFIA_UNKNOWN, 0, NULL, NULL, NULL);
	MPUT('c', "");
	feed_all();
	CHECK(milter_conv_mail(&C, mail, 1, NULL, NULL) == MILTER_STEP_WAIT);
	MPUT('a', "");
	CHECK(feed_all().verdict == MILTER_ACCEPT);
	take_out();
	CHECK(milter_conv_rcpt(&C, rcpt, 1, NULL, NULL) == MILTER_STEP_GO);
	CHECK(milter_conv_data(&C, NULL, NULL) == MILTER_STEP_GO);
	CHECK(milter_conv_header(&C, "A", " b", 2) == MILTER_STEP_GO);
	CHECK(milter_conv_body(&C, "x\r\n", 3) == MILTER_STEP_GO);
	CHECK(milter_conv_eom(&C, NULL, NULL) == MILTER_STEP_GO);
	take_out();
	CHECK(outlen == 0);
	/* the next message is asked about again */
	CHECK(milter_conv_mail(&C, mail, 1, NULL, NULL) == MILTER_STEP_WAIT);
	milter_conv_free(&C);
}

TEST(a_connection_level_verdict_ends_the_questions_but_quit_is_sent)
{
	struct milter_event e;

	start(6, 0, 0, NULL, 0);
	CHECK(milter_conv_connect(&C, "h", SMFIA_INET, 1, "192.0.2.66", NULL, NULL) ==
	    MILTER_STEP_WAIT);
	MPUT('y', "554 5.7.1 go away\0");
	e = feed_all();
	CHECK(e.verdict == MILTER_REJECT && e.reply->code == 554);
	take_out();
	CHECK(milter_conv_helo(&C, "x", NULL, NULL) == MILTER_STEP_GO);
	milter_conv_quit(&C);
	take_out();
	CHECK(outlen == 5 && memcmp(outbuf, "\0\0\0\1Q", 5) == 0);
	milter_conv_free(&C);

	start(6, 0, 0, NULL, 0);
	milter_conv_connect(&C, "h", SMFIA_UNKNOWN, 0, NULL, NULL, NULL);
	MPUT('y', "421 4.7.0 closing\0");
	CHECK(feed_all().verdict == MILTER_SHUTDOWN);
	milter_conv_free(&C);
}

TEST(abort_ends_a_message_and_abort_while_waiting_is_a_failure)
{
	const char *mail[] = { "<a@b.test>" };

	start(6, 0, SMFIP_NR_MAIL, NULL, 0);
	milter_conv_abort(&C);		/* no message: nothing */
	take_out();
	CHECK(outlen == 0);
	milter_conv_mail(&C, mail, 1, NULL, NULL);
	take_out();
	milter_conv_abort(&C);
	take_out();
	CHECK(outlen == 5 && memcmp(outbuf, "\0\0\0\1A", 5) == 0);
	milter_conv_free(&C);

	start(6, 0, 0, NULL, 0);
	CHECK(milter_conv_mail(&C, mail, 1, NULL, NULL) == MILTER_STEP_WAIT);
	milter_conv_abort(&C);		/* the answer to MAIL is still due */
	CHECK(!milter_conv_active(&C));
	milter_conv_free(&C);
}

TEST(header_values_go_as_sendmail_sends_them)
{
	const char *mail[] = { "<a@b.test>" };
	static const char v[] = " first\r\n\tsecond\r\n";

	start(6, 0, SMFIP_NR_MAIL | SMFIP_NR_HDR, NULL, 0);
	milter_conv_mail(&C, mail, 1, NULL, NULL);
	take_out();
	CHECK(milter_conv_header(&C, "Subject", v, sizeof v - 1) == MILTER_STEP_GO);
	take_out();
	CHECK(OUT_HAS("L" "Subject\0" "first\n\tsecond\0"));
	milter_conv_free(&C);

	start(6, 0, SMFIP_NR_MAIL | SMFIP_NR_HDR | SMFIP_HDR_LEADSPC, NULL, 0);
	milter_conv_mail(&C, mail, 1, NULL, NULL);
	milter_conv_header(&C, "Subject", v, sizeof v - 1);
	take_out();
	CHECK(OUT_HAS("L" "Subject\0" " first\n\tsecond\0"));
	milter_conv_free(&C);
}

TEST(skip_stops_the_body_and_old_versions_get_no_data)
{
	const char *mail[] = { "<a@b.test>" };

	start(6, 0, SMFIP_NR_MAIL | SMFIP_SKIP, NULL, 0);
	milter_conv_mail(&C, mail, 1, NULL, NULL);
	MPUT('c', "");
	CHECK(milter_conv_data(&C, NULL, NULL) == MILTER_STEP_WAIT);
	feed_all();
	CHECK(milter_conv_body(&C, "a\r\n", 3) == MILTER_STEP_WAIT);
	CHECK(milter_conv_wait(&C) == MILTER_WAIT_CONTENT);
	MPUT('s', "");
	CHECK(feed_all().verdict == MILTER_CONTINUE);
	CHECK(milter_conv_body(&C, "b\r\n", 3) == MILTER_STEP_GO);
	CHECK(milter_conv_eom(&C, NULL, NULL) == MILTER_STEP_WAIT);
	milter_conv_free(&C);

	start(2, 0, SMFIP_NR_MAIL, NULL, 0);		/* version 2: no SMFIC_DATA */
	milter_conv_mail(&C, mail, 1, NULL, NULL);
	take_out();
	CHECK(milter_conv_data(&C, NULL, NULL) == MILTER_STEP_GO);
	take_out();
	CHECK(outlen == 0);
	milter_conv_free(&C);
}

int
main(void)
{
	RUN(open_offers_version_6_every_action_and_all_steps_but_rcpt_rej);
	RUN(default_macros_are_postfix_s_and_unknown_ones_are_left_out);
	RUN(macros_the_milter_asked_for_are_sent_in_its_order);
	RUN(rcpt_refusal_with_the_milter_s_own_reply_is_per_recipient);
	RUN(eom_edits_come_before_the_verdict_and_quarantine_is_flagged);
	RUN(an_edit_not_negotiated_or_out_of_place_is_a_failure);
	RUN(garbage_and_talk_out_of_turn_are_failures);
	RUN(accept_at_mail_skips_the_rest_of_the_message_only);
	RUN(a_connection_level_verdict_ends_the_questions_but_quit_is_sent);
	RUN(abort_ends_a_message_and_abort_while_waiting_is_a_failure);
	RUN(header_values_go_as_sendmail_sends_them);
	RUN(skip_stops_the_body_and_old_versions_get_no_data);
	mreset();
	T_EXIT();
}
