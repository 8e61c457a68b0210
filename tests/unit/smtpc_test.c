/*
 * smtpc_test — the SMTP/LMTP client dialogue driven with server bytes and no sockets: what
 * goes out for what comes in, and the result each recipient ends with.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/dsnparam.h"
#include "proto/smtpc.h"
#include "t.h"

static char sent[16384];	/* the commands, each with CRLF */
static size_t sentlen;
static unsigned nreplies;

static void
f_command(void *arg, const char *line, size_t len)
{
	(void)arg;
	if (sentlen + len + 2 < sizeof(sent)) {
		memcpy(sent + sentlen, line, len);
		memcpy(sent + sentlen + len, "\r\n", 2);
		sentlen += len + 2;
		sent[sentlen] = '\0';
	}
}

static void
f_reply(void *arg, const struct smtp_reply *r)
{
	(void)arg;
	(void)r;
	nreplies++;
}

static const struct smtpc_ops ops = { f_command, f_reply };

static struct smtpc cl;	/* large: static */

static void
reset(enum smtpc_dialect d)
{
	sentlen = 0;
	sent[0] = '\0';
	nreplies = 0;
	smtpc_init(&cl, d, "mx.example.org", &ops, NULL);
}

/* The commands sent since the last take(), then forgotten. */
static const char *
take(void)
{
	static char copy[sizeof(sent)];

	memcpy(copy, sent, sentlen + 1);
	sentlen = 0;
	sent[0] = '\0';
	return copy;
}

/* Feed all of s, expecting exactly the events listed (terminated by SMTPC_MORE). */
static enum smtpc_event
feed(const char *s)
{
	size_t used;
	enum smtpc_event ev = smtpc_feed(&cl, s, strlen(s), &used);

	if (ev == SMTPC_MORE)
		CHECK(used == strlen(s));
	return ev;
}

/* Feed s byte by byte; returns the first event other than MORE (or MORE). */
static enum smtpc_event
feed_bytes(const char *s)
{
	size_t used, n = strlen(s);

	for (size_t i = 0; i < n; i++) {
		enum smtpc_event ev = smtpc_feed(&cl, s + i, 1, &used);
		CHECK(used == 1);
		if (ev != SMTPC_MORE)
			return ev;
	}
	return SMTPC_MORE;
}

static struct smtpc_rcpt rc[4];
static struct smtpc_tx tx;

static void
tx_init(size_t n)
{
	static const char *addrs[] = { "a@dest.example", "b@dest.example", "c@dest.example",
	    "d@dest.example" };

	memset(rc, 0, sizeof(rc));
	memset(&tx, 0, sizeof(tx));
	for (size_t i = 0; i < n; i++)
		rc[i].addr = addrs[i];
	tx.sender = "s@here.example";
	tx.size = 1234;
	tx.rcpts = rc;
	tx.nrcpts = n;
}

static const char *caps_plain = "250-mx\r\n250 8BITMIME\r\n";
static const char *caps_pipe = "250-mx\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 8BITMIME\r\n";

/* Greeting and EHLO with the given capabilities: READY. */
static void
ready(const char *caps)
{
	CHECK(feed("220 mx ESMTP\r\n") == SMTPC_MORE);
	CHECK_STR(take(), "EHLO mx.example.org\r\n");
	CHECK(feed(caps) == SMTPC_READY);
}

TEST(greeting_then_ehlo_then_ready_with_capabilities)
{
	reset(SMTPC_SMTP);
	ready(caps_pipe);
	CHECK(cl.caps.pipelining && cl.caps.size_known && cl.caps.size == 100000);
	CHECK(cl.caps.eightbitmime && !cl.caps.starttls);
	CHECK(nreplies == 2);
}

TEST(a_greeting_other_than_220_fails_the_connection)
{
	reset(SMTPC_SMTP);
	CHECK(feed("554 5.7.1 go away\r\n") == SMTPC_FAIL);
	CHECK_STR(cl.why, "greeting: smtp; 554 5.7.1 go away");
	CHECK_STR(take(), "");
	CHECK(!smtpc_delivered_maybe(&cl));
}

TEST(ehlo_refused_falls_back_to_helo_without_capabilities)
{
	reset(SMTPC_SMTP);
	CHECK(feed("220 old\r\n") == SMTPC_MORE);
	take();
	CHECK(feed("502 what\r\n") == SMTPC_EHLO_REFUSED);
	CHECK(smtpc_helo(&cl) == 0);
	CHECK_STR(take(), "HELO mx.example.org\r\n");
	CHECK(feed("250 hi\r\n") == SMTPC_READY);
	CHECK(!cl.caps.pipelining && !cl.caps.eightbitmime);
}

TEST(ehlo_temporary_failure_or_503_fails_instead_of_helo)
{
	reset(SMTPC_SMTP);
	feed("220 x\r\n");
	CHECK(feed("421 4.3.2 shutting down\r\n") == SMTPC_FAIL);
	CHECK_STR(cl.why, "EHLO: smtp; 421 4.3.2 shutting down");
	reset(SMTPC_SMTP);
	feed("220 x\r\n");
	CHECK(feed("503 bad sequence\r\n") == SMTPC_FAIL);
}

TEST(starttls_then_ehlo_again_with_fresh_capabilities)
{
	reset(SMTPC_SMTP);
	ready("250-mx\r\n250-STARTTLS\r\n250 PIPELINING\r\n");
	CHECK(cl.caps.starttls);
	smtpc_starttls(&cl);
	CHECK_STR(take(), "STARTTLS\r\n");
	/* bytes after the 220 are never read as replies */
	size_t used;
	const char *in = "220 go ahead\r\n250 injected\r\n";
	CHECK(smtpc_feed(&cl, in, strlen(in), &used) == SMTPC_TLS);
	CHECK(used == strlen("220 go ahead\r\n"));
	smtpc_tls_done(&cl);
	CHECK(cl.tls && !cl.caps.starttls && !cl.caps.pipelining);
	CHECK_STR(take(), "EHLO mx.example.org\r\n");
	CHECK(feed("250-mx\r\n250 SIZE\r\n") == SMTPC_READY);
	CHECK(cl.caps.size_known && !cl.caps.starttls);
}

TEST(starttls_refused_is_the_callers_decision)
{
	reset(SMTPC_SMTP);
	ready("250-mx\r\n250 STARTTLS\r\n");
	smtpc_starttls(&cl);
	take();
	CHECK(feed("454 4.7.0 TLS not available\r\n") == SMTPC_TLS_REFUSED);
	CHECK(cl.reply.code == 454);
	tx_init(1);
	CHECK(smtpc_mail(&cl, &tx) == 0);	/* on in plaintext */
	CHECK_STR(take(), "MAIL FROM:<s@here.example>\r\n");
}

TEST(lockstep_transaction_without_pipelining)
{
	reset(SMTPC_SMTP);
	ready(caps_plain);
	tx_init(2);
	tx.body = SMTPC_BODY_8BIT;
	CHECK(smtpc_mail(&cl, &tx) == 0);
	CHECK_STR(take(), "MAIL FROM:<s@here.example> BODY=8BITMIME\r\n");
	CHECK(feed("250 ok\r\n") == SMTPC_MORE);
	CHECK_STR(take(), "RCPT TO:<a@dest.example>\r\n");
	CHECK(feed("250 ok\r\n") == SMTPC_MORE);
	CHECK_STR(take(), "RCPT TO:<b@dest.example>\r\n");
	CHECK(feed("550 5.1.1 no such user\r\n") == SMTPC_MORE);
	CHECK_STR(take(), "DATA\r\n");
	CHECK(smtpc_timeout(&cl) == 120);
	CHECK(feed("354 go\r\n") == SMTPC_BODY);
	CHECK(smtpc_delivered_maybe(&cl));
	smtpc_dot(&cl);
	CHECK_STR(take(), ".\r\n");
	CHECK(smtpc_timeout(&cl) == 600);
	CHECK(feed("250 2.0.0 queued as X\r\n") == SMTPC_DONE);
	CHECK(cl.reusable);
	CHECK(rc[0].accepted && rc[0].code == 250);
	CHECK_STR(rc[0].status, "2.0.0");
	CHECK_STR(rc[0].diag, "smtp; 250 2.0.0 queued as X");
	CHECK(!rc[1].accepted && rc[1].code == 550);
	CHECK_STR(rc[1].status, "5.1.1");
	CHECK_STR(rc[1].diag, "smtp; 550 5.1.1 no such user");
}

TEST(pipelining_sends_mail_rcpts_and_data_at_once_and_matches_replies_in_order)
{
	reset(SMTPC_SMTP);
	ready(caps_pipe);
	tx_init(3);
	CHECK(smtpc_mail(&cl, &tx) == 0);
	CHECK_STR(take(), "MAIL FROM:<s@here.example> SIZE=1234\r\nRCPT TO:<a@dest.example>\r\n"
	    "RCPT TO:<b@dest.example>\r\nRCPT TO:<c@dest.example>\r\nDATA\r\n");
	CHECK(feed_bytes("250 ok\r\n250 ok\r\n450 4.2.1 try later\r\n250 ok\r\n") == SMTPC_MORE);
	CHECK(feed("354 go\r\n") == SMTPC_BODY);
	smtpc_dot(&cl);
	take();
	CHECK(feed("250 done\r\n") == SMTPC_DONE);
	CHECK(cl.reusable);
	CHECK(rc[0].code == 250 && rc[2].code == 250);
	CHECK(rc[1].code == 450 && !rc[1].accepted);
	CHECK_STR(rc[1].status, "4.2.1");
}

TEST(a_refused_mail_gives_every_recipient_its_reply)
{
	reset(SMTPC_SMTP);
	ready(caps_pipe);
	tx_init(2);
	smtpc_mail(&cl, &tx);
	take();
	CHECK(feed("553 5.1.8 bad sender\r\n554 no valid\r\n554 no valid\r\n") == SMTPC_MORE);
	/* DATA gets 354 from a lax server: nothing is sent for nobody but the dot */
	CHECK(feed("354 go\r\n") == SMTPC_MORE);
	CHECK_STR(take(), ".\r\n");
	CHECK(smtpc_delivered_maybe(&cl));
	CHECK(feed("250 empty\r\n") == SMTPC_DONE);
	CHECK(rc[0].code == 553 && rc[1].code == 553);
	CHECK_STR(rc[1].status, "5.1.8");
}

TEST(without_pipelining_a_refused_mail_ends_at_once_and_is_not_reused)
{
	reset(SMTPC_SMTP);
	ready(caps_plain);
	tx_init(2);
	smtpc_mail(&cl, &tx);
	take();
	CHECK(feed("451 4.3.0 later\r\n") == SMTPC_DONE);
	CHECK(!cl.reusable);
	CHECK(rc[0].code == 451 && rc[1].code == 451);
	CHECK_STR(take(), "");
}

TEST(mail_refused_for_now_fails_when_another_host_may_take_it)
{
	reset(SMTPC_SMTP);
	ready(caps_plain);
	tx_init(1);
	tx.mail_temp_fails = 1;
	smtpc_mail(&cl, &tx);
	CHECK(feed("421 4.7.0 too busy\r\n") == SMTPC_FAIL);
	CHECK_STR(cl.why, "MAIL FROM refused for now: smtp; 421 4.7.0 too busy");
	CHECK(!smtpc_delivered_maybe(&cl));
	CHECK(rc[0].code == 0);
}

TEST(data_refused_gives_the_accepted_their_reply_and_no_reuse)
{
	reset(SMTPC_SMTP);
	ready(caps_pipe);
	tx_init(2);
	smtpc_mail(&cl, &tx);
	take();
	CHECK(feed("250 ok\r\n250 ok\r\n550 5.1.1 nope\r\n554 5.5.1 no data for you\r\n") ==
	    SMTPC_DONE);
	CHECK(!cl.reusable);
	CHECK(rc[0].code == 554 && rc[1].code == 550);
}

TEST(a_final_reply_of_failure_is_every_accepted_recipients)
{
	reset(SMTPC_SMTP);
	ready(caps_plain);
	tx_init(1);
	smtpc_mail(&cl, &tx);
	feed("250 ok\r\n");
	feed("250 ok\r\n");
	CHECK(feed("354 go\r\n") == SMTPC_BODY);
	smtpc_dot(&cl);
	CHECK(feed("552 5.3.4 too big\r\n") == SMTPC_DONE);
	CHECK(!cl.reusable);
	CHECK(rc[0].code == 552);
	CHECK_STR(rc[0].status, "5.3.4");
}

TEST(parameters_follow_what_the_peer_announced)
{
	reset(SMTPC_SMTP);
	ready("250-mx\r\n250-DSN\r\n250-SMTPUTF8\r\n250-SIZE\r\n250 CHUNKING\r\n");
	tx_init(2);
	tx.body = SMTPC_BODY_8BIT;	/* no 8BITMIME announced: no BODY= */
	tx.requiretls = 1;
	tx.smtputf8 = 1;
	tx.dsn_ret = DSN_RET_HDRS;
	tx.envid = "QID+2B1";
	rc[0].notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE;
	rc[0].dsn_orcpt = "rfc822;a@dest.example";
	smtpc_mail(&cl, &tx);
	CHECK_STR(take(), "MAIL FROM:<s@here.example> SIZE=1234 RET=HDRS ENVID=QID+2B1 "
	    "REQUIRETLS SMTPUTF8\r\n");
	feed("250 ok\r\n");
	CHECK_STR(take(), "RCPT TO:<a@dest.example> NOTIFY=SUCCESS,FAILURE "
	    "ORCPT=rfc822;a@dest.example\r\n");
	feed("250 ok\r\n");
	CHECK_STR(take(), "RCPT TO:<b@dest.example>\r\n");
}

TEST(without_dsn_no_notify_orcpt_ret_or_envid_is_sent)
{
	reset(SMTPC_SMTP);
	ready(caps_plain);
	tx_init(1);
	tx.dsn_ret = DSN_RET_FULL;
	tx.envid = "X";
	tx.smtputf8 = 1;
	tx.body = SMTPC_BODY_BINARY;
	rc[0].notify = DSN_NOTIFY_NEVER;
	rc[0].dsn_orcpt = "rfc822;x@y";
	smtpc_mail(&cl, &tx);
	CHECK_STR(take(), "MAIL FROM:<s@here.example> BODY=BINARYMIME\r\n");
	feed("250 ok\r\n");
	CHECK_STR(take(), "RCPT TO:<a@dest.example>\r\n");
}

TEST(bdat_waits_for_the_rcpt_replies_and_the_last_chunk_decides)
{
	reset(SMTPC_SMTP);
	ready("250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
	tx_init(2);
	smtpc_mail(&cl, &tx);
	CHECK_STR(take(), "MAIL FROM:<s@here.example>\r\nRCPT TO:<a@dest.example>\r\n"
	    "RCPT TO:<b@dest.example>\r\n");
	CHECK(feed("250 ok\r\n250 ok\r\n250 ok\r\n") == SMTPC_BDAT);
	CHECK(smtpc_bdat_more(&cl));
	smtpc_bdat(&cl, 65536, 0);
	CHECK(smtpc_timeout(&cl) == 180);
	smtpc_bdat(&cl, 10, 1);
	CHECK(!smtpc_bdat_more(&cl));
	CHECK(smtpc_timeout(&cl) == 600);
	CHECK_STR(take(), "BDAT 65536\r\nBDAT 10 LAST\r\n");
	CHECK(feed("250 2.0.0 65536 octets\r\n") == SMTPC_MORE);
	CHECK(feed("250 2.0.0 queued\r\n") == SMTPC_DONE);
	CHECK(cl.reusable);
	CHECK(rc[0].code == 250 && rc[1].code == 250);
	CHECK_STR(rc[1].diag, "smtp; 250 2.0.0 queued");
}

TEST(bdat_without_pipelining_asks_for_each_chunk_and_a_failed_chunk_fails_the_message)
{
	reset(SMTPC_SMTP);
	ready("250-mx\r\n250 CHUNKING\r\n");
	tx_init(1);
	smtpc_mail(&cl, &tx);
	feed("250 ok\r\n");
	CHECK(feed("250 ok\r\n") == SMTPC_BDAT);
	CHECK(!smtpc_bdat_more(&cl));
	smtpc_bdat(&cl, 100, 0);
	CHECK(feed("250 ok\r\n") == SMTPC_BDAT);
	smtpc_bdat(&cl, 100, 0);
	CHECK(feed("452 4.3.1 disk full\r\n") == SMTPC_DONE);
	CHECK(rc[0].code == 452);
	CHECK(!cl.reusable);
}

TEST(bdat_for_nobody_is_never_sent)
{
	reset(SMTPC_SMTP);
	ready("250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
	tx_init(1);
	smtpc_mail(&cl, &tx);
	take();
	CHECK(feed("250 ok\r\n550 5.1.1 unknown\r\n") == SMTPC_DONE);
	CHECK_STR(take(), "");
	CHECK(rc[0].code == 550);
	CHECK(!cl.reusable);	/* it ended before the message: QUIT, not reuse */
}

TEST(lmtp_says_lhlo_and_gives_one_final_reply_per_accepted_recipient)
{
	reset(SMTPC_LMTP);
	CHECK(feed("220 dovecot LMTP\r\n") == SMTPC_MORE);
	CHECK_STR(take(), "LHLO mx.example.org\r\n");
	CHECK(feed("250-dovecot\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n")
	    == SMTPC_READY);
	tx_init(3);
	smtpc_mail(&cl, &tx);
	CHECK_STR(take(), "MAIL FROM:<s@here.example>\r\nRCPT TO:<a@dest.example>\r\n"
	    "RCPT TO:<b@dest.example>\r\nRCPT TO:<c@dest.example>\r\nDATA\r\n");
	CHECK(feed("250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n250 ok\r\n354 go\r\n") == SMTPC_BODY);
	smtpc_dot(&cl);
	CHECK_STR(take(), ".\r\n");
	/* a over quota, c delivered: each its own */
	CHECK(feed("552 5.2.2 a is over quota\r\n") == SMTPC_MORE);
	CHECK(rc[0].code == 552 && rc[2].code == 0);
	CHECK(feed("250 2.0.0 c saved\r\n") == SMTPC_DONE);
	CHECK(cl.reusable);
	CHECK_STR(rc[0].status, "5.2.2");
	CHECK(rc[1].code == 550);
	CHECK(rc[2].code == 250);
	CHECK_STR(rc[2].diag, "smtp; 250 2.0.0 c saved");
}

TEST(lmtp_bdat_last_gets_one_reply_per_recipient)
{
	reset(SMTPC_LMTP);
	feed("220 lmtp\r\n");
	CHECK(feed("250-x\r\n250-PIPELINING\r\n250 CHUNKING\r\n") == SMTPC_READY);
	tx_init(2);
	smtpc_mail(&cl, &tx);
	take();
	CHECK(feed("250 ok\r\n250 ok\r\n250 ok\r\n") == SMTPC_BDAT);
	smtpc_bdat(&cl, 5, 0);
	smtpc_bdat(&cl, 5, 1);
	CHECK(feed("250 5 octets\r\n") == SMTPC_MORE);
	CHECK(feed("250 a done\r\n") == SMTPC_MORE);
	CHECK(feed("451 4.3.0 b later\r\n") == SMTPC_DONE);
	CHECK(rc[0].code == 250 && rc[1].code == 451);
	CHECK(cl.reusable);
}

TEST(lmtp_has_no_helo_fallback)
{
	reset(SMTPC_LMTP);
	feed("220 lmtp\r\n");
	CHECK(feed("500 what\r\n") == SMTPC_FAIL);
	CHECK_STR(cl.why, "LHLO: smtp; 500 what");
	CHECK(smtpc_helo(&cl) == -1);
}

TEST(a_reused_connection_carries_the_next_transaction)
{
	reset(SMTPC_SMTP);
	ready(caps_pipe);
	for (int round = 0; round < 2; round++) {
		tx_init(1);
		CHECK(smtpc_mail(&cl, &tx) == 0);
		take();
		CHECK(feed("250 ok\r\n250 ok\r\n354 go\r\n") == SMTPC_BODY);
		smtpc_dot(&cl);
		CHECK(feed("250 ok\r\n") == SMTPC_DONE);
		CHECK(cl.reusable && rc[0].code == 250);
	}
}

TEST(a_reply_while_idle_or_to_quit_closes)
{
	reset(SMTPC_SMTP);
	ready(caps_plain);
	CHECK(feed("421 4.4.2 idle timeout\r\n") == SMTPC_CLOSED);
	reset(SMTPC_SMTP);
	ready(caps_plain);
	smtpc_quit(&cl);
	CHECK_STR(take(), "QUIT\r\n");
	CHECK(feed("221 bye\r\n") == SMTPC_CLOSED);
}

TEST(a_malformed_reply_fails_and_nothing_more_is_read)
{
	reset(SMTPC_SMTP);
	CHECK(feed("HTTP/1.1 400 Bad Request\r\n") == SMTPC_FAIL);
	CHECK_STR(cl.why, "malformed reply from server");
	size_t used;
	CHECK(smtpc_feed(&cl, "220 x\r\n", 7, &used) == SMTPC_FAIL && used == 0);
}

TEST(an_envelope_with_a_line_break_is_refused_before_anything_is_sent)
{
	reset(SMTPC_SMTP);
	ready(caps_plain);
	tx_init(2);
	rc[1].addr = "b@dest.example>\r\nRSET";
	CHECK(smtpc_mail(&cl, &tx) == -1);
	CHECK_STR(take(), "");
	tx_init(1);
	tx.sender = "x\n@y";
	CHECK(smtpc_mail(&cl, &tx) == -1);
	tx_init(0);
	CHECK(smtpc_mail(&cl, &tx) == -1);
	CHECK_STR(cl.why, "no recipients");
}

TEST(split_at_452_sends_to_the_accepted_and_leaves_the_rest)
{
	reset(SMTPC_SMTP);
	ready(caps_pipe);
	tx_init(3);
	tx.lockstep = 1;
	tx.split_at_452 = 1;
	tx.rcpt_temp_ends = 1;
	smtpc_mail(&cl, &tx);
	CHECK_STR(take(), "MAIL FROM:<s@here.example> SIZE=1234\r\n");
	feed("250 ok\r\n");
	feed("250 ok\r\n");
	CHECK_STR(take(), "RCPT TO:<a@dest.example>\r\nRCPT TO:<b@dest.example>\r\n");
	CHECK(feed("452 4.5.3 too many recipients\r\n") == SMTPC_MORE);
	CHECK_STR(take(), "DATA\r\n");
	CHECK(feed("354 go\r\n") == SMTPC_BODY);
	smtpc_dot(&cl);
	CHECK(feed("250 ok\r\n") == SMTPC_DONE);
	CHECK(rc[0].code == 250 && rc[1].code == 0 && rc[2].code == 0);
	CHECK(cl.reusable);
}

TEST(rcpt_temp_ends_gives_up_at_the_first_other_4xx)
{
	reset(SMTPC_SMTP);
	ready(caps_plain);
	tx_init(3);
	tx.lockstep = 1;
	tx.split_at_452 = 1;
	tx.rcpt_temp_ends = 1;
	smtpc_mail(&cl, &tx);
	feed("250 ok\r\n");
	CHECK(feed("550 5.1.1 unknown\r\n") == SMTPC_MORE);	/* a 5xx: on to the next */
	take();
	CHECK(feed("452 4.5.3 too many\r\n") == SMTPC_DONE);	/* none accepted: no split */
	CHECK(!cl.reusable);
	CHECK(rc[0].code == 550 && rc[1].code == 452 && rc[2].code == 0);
	CHECK_STR(take(), "");
}

TEST(timeouts_follow_rfc_5321)
{
	reset(SMTPC_SMTP);
	CHECK(smtpc_timeout(&cl) == 300);
	ready(caps_plain);
	CHECK(smtpc_timeout(&cl) == 300);
	tx_init(1);
	smtpc_mail(&cl, &tx);
	CHECK(smtpc_timeout(&cl) == 300);
	feed("250 ok\r\n");
	feed("250 ok\r\n");
	CHECK(smtpc_timeout(&cl) == 120);
	feed("354 go\r\n");
	CHECK(smtpc_timeout(&cl) == 180);
}

TEST(a_long_reply_text_is_cut_in_the_diagnostic_not_the_dialogue)
{
	char big[3000];

	reset(SMTPC_SMTP);
	ready(caps_plain);
	tx_init(1);
	smtpc_mail(&cl, &tx);
	feed("250 ok\r\n");
	memcpy(big, "550 5.1.1 ", 10);
	memset(big + 10, 'x', 2000);
	memcpy(big + 2010, "\r\n", 3);
	CHECK(feed(big) == SMTPC_DONE);
	CHECK(rc[0].code == 550);
	CHECK(strlen(rc[0].diag) == SMTPC_DIAG_MAX - 1);
}

int
main(void)
{
	RUN(greeting_then_ehlo_then_ready_with_capabilities);
	RUN(a_greeting_other_than_220_fails_the_connection);
	RUN(ehlo_refused_falls_back_to_helo_without_capabilities);
	RUN(ehlo_temporary_failure_or_503_fails_instead_of_helo);
	RUN(starttls_then_ehlo_again_with_fresh_capabilities);
	RUN(starttls_refused_is_the_callers_decision);
	RUN(lockstep_transaction_without_pipelining);
	RUN(pipelining_sends_mail_rcpts_and_data_at_once_and_matches_replies_in_order);
	RUN(a_refused_mail_gives_every_recipient_its_reply);
	RUN(without_pipelining_a_refused_mail_ends_at_once_and_is_not_reused);
	RUN(mail_refused_for_now_fails_when_another_host_may_take_it);
	RUN(data_refused_gives_the_accepted_their_reply_and_no_reuse);
	RUN(a_final_reply_of_failure_is_every_accepted_recipients);
	RUN(parameters_follow_what_the_peer_announced);
	RUN(without_dsn_no_notify_orcpt_ret_or_envid_is_sent);
	RUN(bdat_waits_for_the_rcpt_replies_and_the_last_chunk_decides);
	RUN(bdat_without_pipelining_asks_for_each_chunk_and_a_failed_chunk_fails_the_message);
	RUN(bdat_for_nobody_is_never_sent);
	RUN(lmtp_says_lhlo_and_gives_one_final_reply_per_accepted_recipient);
	RUN(lmtp_bdat_last_gets_one_reply_per_recipient);
	RUN(lmtp_has_no_helo_fallback);
	RUN(a_reused_connection_carries_the_next_transaction);
	RUN(a_reply_while_idle_or_to_quit_closes);
	RUN(a_malformed_reply_fails_and_nothing_more_is_read);
	RUN(an_envelope_with_a_line_break_is_refused_before_anything_is_sent);
	RUN(split_at_452_sends_to_the_accepted_and_leaves_the_rest);
	RUN(rcpt_temp_ends_gives_up_at_the_first_other_4xx);
	RUN(timeouts_follow_rfc_5321);
	RUN(a_long_reply_text_is_cut_in_the_diagnostic_not_the_dialogue);
	T_EXIT();
}
