/*
 * session_test — the SMTP state machine driven with bytes, a fake queue and no sockets.
 */
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "proto/sasl.h"
#include "session/session.h"
#include "t.h"

struct fake {
	char out[65536];
	size_t outlen;
	char body[262144];
	size_t bodylen;
	int opened, commits, aborts;
	int fail_open;
	struct session_tx last;	/* shallow copy at commit */
	char rcpts[8][300];
	size_t nrcpts;
	char sender[300];
	unsigned notify[8];		/* DSN requests as tx_open saw them */
	char dsn_orcpt[8][DSN_ORCPT_MAX + 1];
	int dsn_ret;
	char envid[DSN_ENVID_MAX + 1];
	char log[16384];		/* the log lines, one after another */
	size_t loglen;
};

static void
f_output(void *arg, const char *buf, size_t len)
{
	struct fake *f = arg;
	if (f->outlen + len < sizeof(f->out)) {
		memcpy(f->out + f->outlen, buf, len);
		f->outlen += len;
		f->out[f->outlen] = '\0';
	}
}

static int
f_open(void *arg, struct session_tx *tx)
{
	struct fake *f = arg;
	if (f->fail_open)
		return -1;
	f->opened++;
	f->bodylen = 0;
	snprintf(tx->qid, sizeof(tx->qid), "Q%d", f->opened);
	snprintf(f->sender, sizeof(f->sender), "%s", tx->sender);
	f->nrcpts = 0;
	for (size_t i = 0; i < tx->nrcpts && i < 8; i++, f->nrcpts++) {
		snprintf(f->rcpts[i], sizeof(f->rcpts[i]), "%s", tx->rcpts[i].addr);
		f->notify[i] = tx->rcpts[i].notify;
		snprintf(f->dsn_orcpt[i], sizeof(f->dsn_orcpt[i]), "%s",
		    tx->rcpts[i].dsn_orcpt ? tx->rcpts[i].dsn_orcpt : "");
	}
	f->dsn_ret = tx->dsn_ret;
	snprintf(f->envid, sizeof(f->envid), "%s", tx->envid);
	return 0;
}

static int
f_write(void *arg, const char *buf, size_t len)
{
	struct fake *f = arg;
	if (f->bodylen + len < sizeof(f->body)) {
		memcpy(f->body + f->bodylen, buf, len);
		f->bodylen += len;
		f->body[f->bodylen] = '\0';
	}
	return 0;
}

static void
f_commit(void *arg, struct session_tx *tx)
{
	struct fake *f = arg;
	f->commits++;
}

static void
f_abort(void *arg)
{
	struct fake *f = arg;
	f->aborts++;
}

static void
f_log(void *arg, int level, const char *line)
{
	struct fake *f = arg;
	size_t n = strlen(line);

	if (f->loglen + n + 2 < sizeof(f->log)) {
		memcpy(f->log + f->loglen, line, n);
		f->loglen += n;
		f->log[f->loglen++] = '\n';
		f->log[f->loglen] = '\0';
	}
}

static int starttls_calls, auth_calls;
static char auth_user_seen[256], auth_pass_seen[256];

static void
f_starttls(void *arg)
{
	starttls_calls++;
}

static void
f_auth(void *arg, const char *user, const char *pass)
{
	auth_calls++;
	snprintf(auth_user_seen, sizeof(auth_user_seen), "%s", user);
	snprintf(auth_pass_seen, sizeof(auth_pass_seen), "%s", pass);
}

static const struct session_ops ops = { f_output, f_open, f_write, f_commit, f_abort, f_log,
    f_starttls, f_auth, NULL, NULL, NULL, NULL, NULL };

static struct conf conf;
static struct fake fk;

/* The server side of the output bound and the tarpit. */
static int out_full;			/* f_full says "full" */
static unsigned pauses, last_pause;

static int
f_full(void *arg)
{
	return out_full;
}

static void
f_pause(void *arg, unsigned seconds)
{
	pauses++;
	last_pause = seconds;
}

static int space;			/* f_space says there is room */
static uint64_t space_asked;

static int
f_space(void *arg, uint64_t size)
{
	space_asked = size;
	return space;
}

static const struct session_ops ops_bounded = { f_output, f_open, f_write, f_commit, f_abort,
    f_log, f_starttls, f_auth, f_full, f_pause, f_space, NULL, NULL };

static struct session *
start_bounded(void)
{
	struct session_peer peer;
	struct session_opts opts = { .kind = SL_SMTP };
	struct session *s;

	memset(&fk, 0, sizeof(fk));
	out_full = 0;
	pauses = last_pause = 0;
	space = 1;
	memset(&peer, 0, sizeof(peer));
	netaddr_parse("198.51.100.10", &peer.local);
	netaddr_parse("192.0.2.7", &peer.remote);
	s = session_new(&conf, NULL, &peer, &opts, "t2", &ops_bounded, &fk);
	session_set_time(s, 1700000000);
	session_start(s, NULL);
	return s;
}

static struct session *
start_with(const char *local, int cert, int auth, enum session_listener kind)
{
	struct session_peer peer;
	struct session_opts opts = { .kind = kind, .cert_loaded = cert, .auth_available = auth };
	struct session *s;

	memset(&fk, 0, sizeof(fk));
	starttls_calls = auth_calls = 0;
	memset(&peer, 0, sizeof(peer));
	netaddr_parse(local, &peer.local);
	netaddr_parse("192.0.2.7", &peer.remote);
	s = session_new(&conf, NULL, &peer, &opts, "t1", &ops, &fk);
	session_set_time(s, 1700000000);
	session_start(s, NULL);
	return s;
}

static struct session *
start(void)
{
	return start_with("127.0.0.1", 0, 0, SL_SMTP);
}

/* Feed all of str; the session must take every byte unless it is waiting. */
static size_t
feed(struct session *s, const char *str)
{
	return session_feed(s, str, strlen(str));
}

/* Feed one byte at a time (the worst fragmentation a socket can give). */
static void
feed_bytewise(struct session *s, const char *str, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		size_t used = session_feed(s, str + i, 1);
		if (used == 0) {
			/* the session keeps nothing: present the line again with more */
			size_t j = i + 1;
			while (j <= len && session_feed(s, str + i, j - i) == 0)
				j++;
			i = j - 1;
		}
	}
}

static int
count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static const char *
body_after_received(void)
{
	/* the Received header ends with the date line: skip to the first line without
	 * leading whitespace after it */
	const char *p = fk.body;
	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (*p != '\t' && *p != ' ')
			return p;
	}
	return "";
}

TEST(greeting_is_220_and_ehlo_lists_the_four_extensions)
{
	struct session *s = start();
	feed(s, "EHLO client.example\r\n");
	CHECK(strncmp(fk.out, "220 ", 4) == 0);
	CHECK(strstr(fk.out, "250-PIPELINING\r\n") != NULL);
	CHECK(strstr(fk.out, "250-SIZE 10485760\r\n") != NULL);
	CHECK(strstr(fk.out, "250-8BITMIME\r\n") != NULL);
	CHECK(strstr(fk.out, "250 ENHANCEDSTATUSCODES\r\n") != NULL);
	session_free(s);
}

TEST(full_transaction_commits_once_and_250_waits_for_commit_done)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<Alice@LocalHost>\r\nDATA\r\n");
	CHECK(strstr(fk.out, "354 ") != NULL);
	feed(s, "Subject: x\r\n\r\nhello\r\n.\r\n");
	CHECK(fk.commits == 1);
	CHECK(strstr(fk.out, "250 2.0.0 Ok: queued") == NULL);
	CHECK(session_state(s) == SS_COMMIT);
	session_commit_done(s, 1);
	CHECK(strstr(fk.out, "250 2.0.0 Ok: queued as Q1\r\n") != NULL);
	CHECK_STR(fk.rcpts[0], "alice@localhost");
	CHECK_STR(fk.sender, "a@b.example");
	CHECK_STR(body_after_received(), "Subject: x\r\n\r\nhello\r\n");
	CHECK(strncmp(fk.body, "Received: from c ([192.0.2.7])\r\n\tby ", 36) == 0);
	session_free(s);
}

TEST(failed_commit_answers_451_not_250)
{
	struct session *s = start();
	feed(s, "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\nx\r\n.\r\n");
	session_commit_done(s, 0);
	CHECK(strstr(fk.out, "451 4.3.0") != NULL);
	CHECK(strstr(fk.out, "queued as") == NULL);
	session_free(s);
}

TEST(input_after_final_dot_waits_until_commit_is_done)
{
	struct session *s = start();
	const char *in = "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n";
	size_t used = feed(s, in);
	CHECK(used == strlen(in) - strlen("QUIT\r\n"));
	CHECK(strstr(fk.out, "221") == NULL);
	session_commit_done(s, 1);
	used = feed(s, "QUIT\r\n");
	CHECK(used == 6);
	CHECK(strstr(fk.out, "250 2.0.0 Ok: queued as Q1\r\n221 2.0.0") != NULL);
	session_free(s);
}

TEST(dot_stuffing_is_removed)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
	feed(s, "..leading\r\n...\r\n.\r\n");
	CHECK_STR(body_after_received(), ".leading\r\n..\r\n");
	session_free(s);
}

TEST(bare_lf_lines_are_stored_as_crlf_and_never_end_data)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
	feed(s, "a\n.\nMAIL FROM:<evil@x>\n");
	CHECK(fk.commits == 0);
	CHECK(session_state(s) == SS_DATA);
	feed(s, "b\r\n.\r\n");
	CHECK(fk.commits == 1);
	CHECK_STR(body_after_received(), "a\r\n.\r\nMAIL FROM:<evil@x>\r\nb\r\n");
	session_free(s);
}

TEST(smuggling_sequences_do_not_end_data)
{
	static const char *const seqs[] = { "\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r", "\r\n.\n" };
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		struct session *s = start();
		char in[256];
		feed(s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
		snprintf(in, sizeof(in), "x%sMAIL FROM:<e@x>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n"
		    "smuggled\r\n", seqs[i]);
		feed(s, in);
		CHECK(fk.commits == 0);
		CHECK(count(fk.out, "354") == 1);
		feed(s, ".\r\n");
		CHECK(fk.commits == 1);
		CHECK(strstr(fk.body, "smuggled") != NULL);
		session_free(s);
	}
}

TEST(data_split_at_every_byte_gives_the_same_body)
{
	const char *msg = "Subject: y\r\n\r\n..a\r\nb\nc\r\rd\r\n.\r";
	struct session *s = start();
	char whole[4096];

	feed(s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
	feed(s, msg);
	feed(s, "\n.\r\n");
	snprintf(whole, sizeof(whole), "%s", body_after_received());
	session_free(s);

	s = start();
	const char *cmds = "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n";
	feed_bytewise(s, cmds, strlen(cmds));
	feed_bytewise(s, msg, strlen(msg));
	feed_bytewise(s, "\n.\r\n", 4);
	CHECK(fk.commits == 1);
	CHECK_STR(body_after_received(), whole);
	/* "\r\n.\r" + "\n" is the end of data, wherever the split falls */
	CHECK_STR(whole, "Subject: y\r\n\r\n.a\r\nb\r\nc\r\rd\r\n");
	session_free(s);
}

TEST(command_line_over_512_octets_gets_500_5_5_2_and_session_continues)
{
	struct session *s = start();
	char line[700];
	memset(line, 'A', sizeof(line));
	memcpy(line, "NOOP ", 5);
	line[sizeof(line) - 3] = '\r';
	line[sizeof(line) - 2] = '\n';
	line[sizeof(line) - 1] = '\0';
	/* in two pieces, as a socket might deliver it */
	feed(s, line + 0 * 0);
	CHECK(strstr(fk.out, "500 5.5.2") != NULL);
	feed(s, "NOOP\r\n");
	CHECK(strstr(fk.out, "250 2.0.0 Ok\r\n") != NULL);
	session_free(s);
}

TEST(partial_overlong_line_is_skipped_without_buffering)
{
	struct session *s = start();
	char chunk[600];
	memset(chunk, 'B', sizeof(chunk));
	CHECK(session_feed(s, chunk, sizeof(chunk)) == sizeof(chunk));
	CHECK(session_feed(s, chunk, sizeof(chunk)) == sizeof(chunk));
	CHECK(strstr(fk.out, "500") == NULL);
	feed(s, "\r\n");
	CHECK(strstr(fk.out, "500 5.5.2") != NULL);
	session_free(s);
}

TEST(text_line_over_1000_octets_is_refused_after_the_dot)
{
	struct session *s = start();
	char line[1100];
	feed(s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
	memset(line, 'x', sizeof(line));
	line[sizeof(line) - 1] = '\0';
	feed(s, line);
	feed(s, "\r\n.\r\n");
	CHECK(fk.commits == 0);
	CHECK(fk.aborts == 1);
	CHECK(strstr(fk.out, "500 5.5.6") != NULL);
	session_free(s);
}

TEST(line_of_exactly_998_octets_is_accepted)
{
	struct session *s = start();
	char line[999];
	feed(s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
	memset(line, 'x', 998);
	line[998] = '\0';
	feed(s, line);
	feed(s, "\r\n.\r\n");
	CHECK(fk.commits == 1);
	session_free(s);
}

TEST(size_parameter_over_limit_is_552_5_3_4)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<a@b> SIZE=99999999999\r\n");
	CHECK(strstr(fk.out, "552 5.3.4") != NULL);
	feed(s, "MAIL FROM:<a@b> SIZE=1000\r\n");
	CHECK(strstr(fk.out, "250 2.1.0") != NULL);
	session_free(s);
}

TEST(actual_size_over_limit_is_552_after_the_dot_and_aborted)
{
	struct session *s = start();
	char chunk[1001];
	conf.message_size_limit = 4096;
	feed(s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
	memset(chunk, 'y', 900);
	memcpy(chunk + 900, "\r\n", 3);
	for (int i = 0; i < 10; i++)
		feed(s, chunk);
	CHECK(strstr(fk.out, "552") == NULL);
	feed(s, ".\r\n");
	CHECK(strstr(fk.out, "552 5.3.4") != NULL);
	CHECK(fk.commits == 0 && fk.aborts == 1);
	conf.message_size_limit = 10485760;
	session_free(s);
}

TEST(recipient_limit_gives_452_4_5_3)
{
	struct session *s = start();
	conf.recipient_limit = 2;
	feed(s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@localhost>\r\nRCPT TO:<b@localhost>\r\n"
	    "RCPT TO:<c@localhost>\r\n");
	CHECK(strstr(fk.out, "452 4.5.3") != NULL);
	CHECK(count(fk.out, "250 2.1.5") == 2);
	conf.recipient_limit = 1000;
	session_free(s);
}

TEST(non_local_recipient_is_relay_denied_554_5_7_1)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<x@example.org>\r\nRCPT TO:<x@[127.0.0.1]>\r\n");
	CHECK(count(fk.out, "554 5.7.1") == 2);
	session_free(s);
}

TEST(source_route_to_remote_is_judged_by_the_real_address)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<@localhost:x@example.org>\r\n");
	CHECK(strstr(fk.out, "554 5.7.1") != NULL);
	session_free(s);
}

TEST(local_part_with_slash_or_leading_dot_is_550_5_1_3)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<\"a/b\"@localhost>\r\nRCPT TO:<.x@localhost>\r\n");
	CHECK(count(fk.out, "5.1.3") == 2);
	session_free(s);
}

TEST(bad_sequence_is_503_5_5_1)
{
	struct session *s = start();
	feed(s, "MAIL FROM:<>\r\nEHLO c\r\nRCPT TO:<a@localhost>\r\nDATA\r\n");
	CHECK(count(fk.out, "503 5.5.1") == 3);
	session_free(s);
}

TEST(a_commands_preconditions_are_checked_in_its_rows_order)
{
	struct session *s = start();
	/* arguments first, then the transaction: DATA x without MAIL is a syntax error */
	feed(s, "EHLO c\r\nDATA x\r\nDATA\r\nRSET now\r\nVRFY\r\nSTARTTLS x\r\n");
	CHECK(strstr(fk.out, "501 5.5.4 Syntax: DATA takes no arguments\r\n503 5.5.1 Error: need "
	    "MAIL command\r\n501 5.5.4 Syntax: RSET takes no arguments\r\n501 5.5.4 Syntax: "
	    "VRFY address\r\n501 5.5.4 Syntax: STARTTLS takes no arguments\r\n") != NULL);
	/* a nested MAIL says so */
	feed(s, "MAIL FROM:<>\r\nMAIL FROM:<>\r\n");
	CHECK(strstr(fk.out, "503 5.5.1 Error: nested MAIL command\r\n") != NULL);
	session_free(s);
}

TEST(junk_commands_up_to_the_limit_are_served_and_one_more_closes)
{
	struct session *s = start();
	char buf[64];

	feed(s, "EHLO c\r\n");
	for (int i = 0; i < SESSION_JUNK_LIMIT; i++) {
		feed(s, "NOOP\r\n");
		if (session_state(s) == SS_CLOSING)
			break;
	}
	CHECK(session_state(s) != SS_CLOSING);	/* exactly the limit */
	snprintf(buf, sizeof(buf), "NOOP\r\n");
	feed(s, buf);
	CHECK(session_state(s) == SS_CLOSING);	/* one more is too many */
	CHECK(strstr(fk.out, "Too many commands without a message") != NULL);
	session_free(s);
}

TEST(pipelined_group_gets_replies_in_order)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@localhost>\r\nRCPT TO:<y@nowhere.example>\r\n"
	    "RCPT TO:<z@localhost>\r\nDATA\r\n");
	const char *p = strstr(fk.out, "250 2.1.0");
	CHECK(p != NULL);
	p = p ? strstr(p, "250 2.1.5") : NULL;
	CHECK(p != NULL);
	p = p ? strstr(p, "554 5.7.1") : NULL;
	CHECK(p != NULL);
	p = p ? strstr(p, "250 2.1.5") : NULL;
	CHECK(p != NULL);
	p = p ? strstr(p, "354 ") : NULL;
	CHECK(p != NULL);
	session_free(s);
}

TEST(vrfy_is_252_and_unknown_command_500_5_5_1)
{
	struct session *s = start();
	feed(s, "VRFY bob\r\nFROB\r\n");
	CHECK(strstr(fk.out, "252 2.5.0") != NULL);
	CHECK(strstr(fk.out, "500 5.5.1") != NULL);
	session_free(s);
}

TEST(error_budget_ends_the_session_with_421)
{
	struct session *s = start();
	for (int i = 0; i < SESSION_ERROR_LIMIT + 5; i++)
		feed(s, "FROB\r\n");
	CHECK(strstr(fk.out, "421 4.7.0") != NULL);
	CHECK(session_state(s) == SS_CLOSING);
	session_free(s);
}

TEST(http_request_is_refused_and_closed)
{
	struct session *s = start();
	feed(s, "GET / HTTP/1.1\r\nHost: x\r\n");
	CHECK(strstr(fk.out, "421 4.7.0") != NULL);
	CHECK(session_state(s) == SS_CLOSING);
	session_free(s);
}

TEST(every_reply_after_the_greeting_has_an_enhanced_code)
{
	struct session *s = start();
	feed(s, "HELO c\r\nNOOP\r\nRSET\r\nVRFY x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<q@localhost>\r\n"
	    "RCPT TO:<q@else.example>\r\nFROB\r\nDATA x\r\nHELP\r\nQUIT\r\n");
	/* skip "220 ..." and "250 hostname" (HELO: no enhanced code by RFC 2034) */
	const char *p = strstr(fk.out, "\r\n") + 2;
	p = strstr(p, "\r\n") + 2;
	while (*p) {
		CHECK(p[3] == ' ' || p[3] == '-');
		CHECK(p[4] >= '2' && p[4] <= '5' && p[5] == '.');
		p = strstr(p, "\r\n") + 2;
	}
	session_free(s);
}

TEST(timeout_gives_421_4_4_2_and_aborts_data)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\npartial");
	session_timeout(s);
	CHECK(strstr(fk.out, "421 4.4.2") != NULL);
	CHECK(fk.aborts == 1);
	CHECK(session_state(s) == SS_CLOSING);
	session_free(s);
}

/* The body the fake queue got, after our Received header (the first empty-line-free
 * block ending "+0000\r\n"). */
static const char *
stored_text(void)
{
	const char *p = strstr(fk.body, "+0000\r\n");
	return p ? p + 7 : "";
}

#define ENV "EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<bob@localhost>\r\n"

TEST(ehlo_advertises_chunking_and_binarymime)
{
	struct session *s = start();
	feed(s, "EHLO c\r\n");
	CHECK(strstr(fk.out, "250-CHUNKING\r\n") != NULL);
	CHECK(strstr(fk.out, "250-BINARYMIME\r\n") != NULL);
	session_free(s);
}

/* Two chunks whose payload looks like an end of data and a QUIT: stored, not run. */
static const char bdat_msg[] =
    ENV "BDAT 27\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\nBDAT 7 LAST\r\nRSET\r\n\n";

static void
check_bdat_msg(struct session *s)
{
	CHECK(strstr(fk.out, "250 2.0.0 27 octets received\r\n") != NULL);
	CHECK(strstr(fk.out, "221") == NULL);
	CHECK(fk.commits == 1);
	CHECK(session_state(s) == SS_COMMIT);
	CHECK_STR(stored_text(), "Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\nRSET\r\n\r\n");
	CHECK(strstr(fk.out, "Ok: queued") == NULL);	/* not before the commit is done */
	session_commit_done(s, 1);
	CHECK(strstr(fk.out, "250 2.0.0 Ok: queued as Q1\r\n") != NULL);
	CHECK(session_state(s) == SS_CMD);
}

TEST(bdat_payload_with_dot_and_quit_is_stored_not_interpreted)
{
	struct session *s = start();
	CHECK(feed(s, bdat_msg) == strlen(bdat_msg));
	check_bdat_msg(s);
	CHECK(fk.aborts == 0);
	feed(s, "QUIT\r\n");
	CHECK(strstr(fk.out, "221") != NULL);
	session_free(s);
}

TEST(bdat_split_at_every_byte_gives_the_same_message)
{
	size_t len = strlen(bdat_msg);

	for (size_t k = 1; k < len; k++) {
		struct session *s = start();
		size_t u = session_feed(s, bdat_msg, k);
		u += session_feed(s, bdat_msg + u, len - u);
		CHECK(u == len);
		check_bdat_msg(s);
		session_free(s);
	}
	struct session *s = start();
	feed_bytewise(s, bdat_msg, len);
	check_bdat_msg(s);
	session_free(s);
}

TEST(binarymime_content_is_stored_exactly_with_bare_lf_and_cr)
{
	struct session *s = start();
	static const char m[] = "EHLO c\r\nMAIL FROM:<a@example.org> BODY=BINARYMIME\r\n"
	    "RCPT TO:<bob@localhost>\r\nBDAT 14 LAST\r\nA: b\r\n\r\n\x00\n\r.\n\xff";
	CHECK(session_feed(s, m, sizeof(m) - 1) == sizeof(m) - 1);
	CHECK(fk.commits == 1);
	const char *t = stored_text();
	CHECK(memcmp(t, "A: b\r\n\r\n\x00\n\r.\n\xff", 14) == 0);
	CHECK(fk.bodylen == (size_t)(t - fk.body) + 14);
	session_free(s);
}

TEST(text_bdat_gets_crlf_lines_and_a_final_line_break)
{
	struct session *s = start();
	feed(s, ENV "BDAT 9 LAST\r\nA: b\n\nhi\r");
	CHECK(fk.commits == 1);
	CHECK_STR(stored_text(), "A: b\r\n\r\nhi\r\n");
	session_free(s);
	s = start();
	feed(s, ENV "BDAT 7\r\nA: b\r\n\rBDAT 1 LAST\r\n\n");	/* a CRLF split across chunks */
	CHECK(fk.commits == 1);
	CHECK_STR(stored_text(), "A: b\r\n\r\n");
	session_free(s);
}

TEST(bdat_0_last_ends_the_message)
{
	struct session *s = start();
	feed(s, ENV "BDAT 5\r\nA: b\nBDAT 0 LAST\r\n");
	CHECK(strstr(fk.out, "250 2.0.0 5 octets received") != NULL);
	CHECK(fk.commits == 1);
	CHECK_STR(stored_text(), "A: b\r\n");
	session_free(s);
}

TEST(empty_chunks_are_junk_until_421)
{
	struct session *s = start();
	feed(s, ENV);
	for (int i = 0; i <= 100; i++)
		feed(s, "BDAT 0\r\n");
	CHECK(strstr(fk.out, "421 4.7.0") != NULL);
	CHECK(session_state(s) == SS_CLOSING);
	CHECK(fk.aborts == 1 && fk.commits == 0);
	session_free(s);
}

TEST(bdat_without_mail_is_503_and_its_payload_is_consumed)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nBDAT 6 LAST\r\nQUIT\r\nNOOP\r\n");
	CHECK(strstr(fk.out, "503 5.5.1 Error: need MAIL command\r\n") != NULL);
	CHECK(strstr(fk.out, "221") == NULL);
	CHECK(strstr(fk.out, "250 2.0.0 Ok\r\n") != NULL);	/* the NOOP after it */
	CHECK(fk.opened == 0);
	CHECK(session_state(s) == SS_CMD);
	session_free(s);
	s = start();
	feed(s, "HELO c\r\nBDAT 6\r\nQUIT\r\n");
	CHECK(strstr(fk.out, "503 5.5.1 Error: send EHLO first") != NULL);
	CHECK(strstr(fk.out, "221") == NULL);
	session_free(s);
}

TEST(bdat_without_rcpt_is_503_and_later_chunks_too)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<>\r\nBDAT 6\r\nQUIT\r\nBDAT 4 LAST\r\nRSET");
	CHECK(strstr(fk.out, "503 5.5.1 Error: need RCPT command\r\n") != NULL);
	CHECK(strstr(fk.out, "503 5.5.1 Error: need MAIL command\r\n") != NULL);
	CHECK(strstr(fk.out, "221") == NULL);
	CHECK(fk.opened == 0 && fk.commits == 0);
	session_free(s);
}

TEST(data_after_bdat_and_data_with_binarymime_are_503)
{
	struct session *s = start();
	feed(s, ENV "BDAT 3\r\nA: DATA\r\n");
	CHECK(strstr(fk.out, "503 5.5.1 Error: DATA not permitted in a BDAT transaction") != NULL);
	CHECK(fk.aborts == 1 && fk.commits == 0);
	session_free(s);
	s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<> BODY=BINARYMIME\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
	CHECK(strstr(fk.out, "503 5.5.1 Error: BODY=BINARYMIME requires BDAT") != NULL);
	CHECK(fk.opened == 0);
	session_free(s);
}

TEST(bdat_size_that_is_not_a_number_is_501_and_closes)
{
	const char *bad[] = { "BDAT\r\n", "BDAT x\r\n", "BDAT -1\r\n", "BDAT 1x LAST\r\n",
	    "BDAT 99999999999999999999 LAST\r\n" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct session *s = start();
		feed(s, ENV);
		feed(s, bad[i]);
		CHECK(strstr(fk.out, "501 5.5.4") != NULL);
		CHECK(session_state(s) == SS_CLOSING);
		session_free(s);
	}
}

TEST(bdat_with_a_bad_argument_is_501_after_its_chunk)
{
	struct session *s = start();
	feed(s, ENV "BDAT 6 FIRST\r\nQUIT\r\nNOOP\r\n");
	CHECK(strstr(fk.out, "501 5.5.4 Syntax: BDAT chunk-size [LAST]\r\n") != NULL);
	CHECK(strstr(fk.out, "221") == NULL);
	CHECK(session_state(s) == SS_CMD);
	session_free(s);
}

TEST(size_limit_counts_across_chunks_and_552_comes_after_the_chunk)
{
	char buf[4096];
	struct session *s;

	conf.message_size_limit = 1000;
	s = start();
	feed(s, ENV);
	memset(buf, 'a', 600);
	memcpy(buf + 600, "\r\n", 3);
	feed(s, "BDAT 602\r\n");
	feed(s, buf);
	CHECK(strstr(fk.out, "250 2.0.0 602 octets received") != NULL);
	feed(s, "BDAT 602\r\n");
	feed(s, buf);
	feed(s, "BDAT 6 LAST\r\nQUIT\r\n");
	CHECK(strstr(fk.out, "552 5.3.4") != NULL);
	CHECK(strstr(fk.out, "503 5.5.1 Error: need MAIL command") != NULL);
	CHECK(strstr(fk.out, "221") == NULL);
	CHECK(fk.aborts == 1 && fk.commits == 0);
	session_free(s);
	/* one chunk larger than the limit: read and dropped, not buffered */
	s = start();
	feed(s, ENV "BDAT 3000 LAST\r\n");
	for (int i = 0; i < 5; i++)
		CHECK(feed(s, buf) == 602);
	CHECK(strstr(fk.out, "552 5.3.4") != NULL);
	CHECK(session_state(s) == SS_CMD);
	session_free(s);
	conf.message_size_limit = 10485760;
}

TEST(rset_or_disconnect_between_chunks_aborts_the_spool_file)
{
	struct session *s = start();
	feed(s, ENV "BDAT 3\r\nA: RSET\r\n");
	CHECK(fk.aborts == 1 && fk.commits == 0);
	CHECK(strstr(fk.out, "250 2.0.0 Ok\r\n") != NULL);
	feed(s, "BDAT 1 LAST\r\nx");
	CHECK(strstr(fk.out, "503 5.5.1 Error: need MAIL command") != NULL);
	session_free(s);
	s = start();
	feed(s, ENV "BDAT 3\r\nA: ");
	session_disconnected(s);
	CHECK(fk.aborts == 1);
	session_free(s);
	s = start();
	feed(s, ENV "BDAT 30\r\nA: ");
	session_timeout(s);
	CHECK(fk.aborts == 1);
	CHECK(strstr(fk.out, "421 4.4.2") != NULL);
	session_free(s);
}

TEST(bdat_content_gets_hop_counting_and_the_ar_filter)
{
	char msg[8192];
	size_t n = 0;
	struct session *s = start();

	for (int i = 0; i < 101; i++)
		n += (size_t)snprintf(msg + n, sizeof(msg) - n, "Received: x\r\n");
	n += (size_t)snprintf(msg + n, sizeof(msg) - n, "\r\nbody\r\n");
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "BDAT %zu LAST\r\n", n);
	feed(s, ENV);
	feed(s, cmd);
	session_feed(s, msg, n);
	CHECK(strstr(fk.out, "554 5.4.6") != NULL);
	CHECK(fk.commits == 0);
	session_free(s);

	s = start();
	static const char m[] = "Authentication-Results: mx.example; spf=pass\r\n"
	    "Subject: x\r\n\r\nb\r\n";
	snprintf(cmd, sizeof(cmd), "BDAT %zu LAST\r\n", sizeof(m) - 1);
	feed(s, ENV);
	feed(s, cmd);
	feed(s, m);
	CHECK(fk.commits == 1);
	CHECK_STR(stored_text(), "Subject: x\r\n\r\nb\r\n");
	session_free(s);
}

TEST(postmaster_without_domain_is_accepted)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nDATA\r\nx\r\n.\r\n");
	CHECK(fk.commits == 1);
	CHECK_STR(fk.rcpts[0], "postmaster@localhost");
	session_free(s);
}


TEST(starttls_is_advertised_on_non_loopback_with_a_certificate)
{
	struct session *s = start_with("198.51.100.10", 1, 0, SL_SMTP);
	feed(s, "EHLO c\r\n");
	CHECK(strstr(fk.out, "250-STARTTLS\r\n") != NULL);
	session_free(s);
}

TEST(starttls_is_not_advertised_on_loopback_and_gets_the_454_explanation)
{
	struct session *s = start_with("127.0.0.1", 1, 0, SL_SMTP);
	feed(s, "EHLO c\r\nSTARTTLS\r\n");
	CHECK(strstr(fk.out, "STARTTLS\r\n") == NULL);
	CHECK(strstr(fk.out, "454 4.7.0 TLS not available on loopback connections; connect to a "
	    "non-loopback address of this server\r\n") != NULL);
	CHECK(starttls_calls == 0);
	session_free(s);
}

TEST(v4_mapped_loopback_counts_as_loopback)
{
	struct session *s = start_with("::ffff:127.0.0.2", 1, 0, SL_SMTP);
	feed(s, "EHLO c\r\n");
	CHECK(strstr(fk.out, "STARTTLS") == NULL);
	session_free(s);
}

TEST(tls_loopback_yes_offers_starttls_on_loopback)
{
	conf.tls_loopback = 1;
	struct session *s = start_with("::1", 1, 0, SL_SMTP);
	feed(s, "EHLO c\r\n");
	CHECK(strstr(fk.out, "250-STARTTLS\r\n") != NULL);
	conf.tls_loopback = 0;
	session_free(s);
}

TEST(starttls_without_certificate_says_so)
{
	struct session *s = start_with("198.51.100.10", 0, 0, SL_SMTP);
	feed(s, "EHLO c\r\nSTARTTLS\r\n");
	CHECK(strstr(fk.out, "454 4.7.0 TLS not available: no certificate configured\r\n") != NULL);
	session_free(s);
}

TEST(input_pipelined_after_starttls_is_left_unconsumed_for_the_server_to_discard)
{
	struct session *s = start_with("198.51.100.10", 1, 0, SL_SMTP);
	const char *in = "EHLO c\r\nSTARTTLS\r\nRSET\r\nMAIL FROM:<a@b>\r\n";
	size_t used = feed(s, in);
	CHECK(used == strlen("EHLO c\r\nSTARTTLS\r\n"));
	CHECK(starttls_calls == 1);
	CHECK(strstr(fk.out, "220 2.0.0") != NULL);
	CHECK(session_feed(s, "RSET\r\n", 6) == 0);
	CHECK(strstr(fk.out, "250 2.0.0 Ok") == NULL);
	session_free(s);
}

TEST(after_tls_the_session_is_reset_and_starttls_is_not_offered_again)
{
	struct session *s = start_with("198.51.100.10", 1, 0, SL_SMTP);
	feed(s, "EHLO c\r\nMAIL FROM:<a@b>\r\nSTARTTLS\r\n");
	session_tls_done(s, "TLSv1.3 with cipher X (256 bits)");
	fk.outlen = 0;
	fk.out[0] = '\0';
	feed(s, "MAIL FROM:<a@b>\r\nEHLO c\r\nSTARTTLS\r\n");
	CHECK(strstr(fk.out, "503 5.5.1 Error: send HELO/EHLO first") != NULL);
	CHECK(strstr(fk.out, "250-STARTTLS") == NULL);
	CHECK(strstr(fk.out, "503 5.5.1 Error: TLS already active") != NULL);
	session_free(s);
}

TEST(starttls_with_arguments_is_501)
{
	struct session *s = start_with("198.51.100.10", 1, 0, SL_SMTP);
	feed(s, "EHLO c\r\nSTARTTLS now\r\n");
	CHECK(strstr(fk.out, "501 5.5.4") != NULL);
	CHECK(starttls_calls == 0);
	session_free(s);
}

TEST(received_header_says_esmtps_with_the_cipher_after_tls)
{
	struct session *s = start_with("198.51.100.10", 1, 0, SL_SMTP);
	feed(s, "EHLO c\r\nSTARTTLS\r\n");
	session_tls_done(s, "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256 bits)");
	feed(s, "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\nx\r\n.\r\n");
	CHECK(strstr(fk.body, "with ESMTPS (TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256 bits))")
	    != NULL);
	session_free(s);
}

TEST(auth_is_offered_on_loopback_without_tls_but_not_elsewhere)
{
	struct session *s = start_with("127.0.0.1", 1, 1, SL_SMTP);
	feed(s, "EHLO c\r\n");
	CHECK(strstr(fk.out, "250-AUTH PLAIN LOGIN\r\n") != NULL);
	session_free(s);
	s = start_with("198.51.100.10", 1, 1, SL_SMTP);
	feed(s, "EHLO c\r\nAUTH PLAIN AGJvYgBzZWNyZXQ=\r\n");
	CHECK(strstr(fk.out, "AUTH PLAIN") == NULL || strstr(fk.out, "250-AUTH") == NULL);
	CHECK(strstr(fk.out, "538 5.7.11") != NULL);
	CHECK(auth_calls == 0);
	session_free(s);
}

TEST(auth_plain_initial_response_is_decoded_and_checked)
{
	struct session *s = start_with("127.0.0.1", 0, 1, SL_SMTP);
	/* "\0bob\0secret" */
	feed(s, "EHLO c\r\nAUTH PLAIN AGJvYgBzZWNyZXQ=\r\n");
	CHECK(auth_calls == 1);
	CHECK_STR(auth_user_seen, "bob");
	CHECK_STR(auth_pass_seen, "secret");
	CHECK(session_state(s) == SS_AUTHWAIT);
	session_auth_done(s, 1);
	CHECK(strstr(fk.out, "235 2.7.0") != NULL);
	feed(s, "MAIL FROM:<bob@localhost>\r\nRCPT TO:<x@localhost>\r\nDATA\r\nx\r\n.\r\n");
	CHECK(strstr(fk.body, "with ESMTPA id") != NULL);
	session_free(s);
}

TEST(smtputf8_transactions_get_the_utf8smtp_keywords)
{
	/* RFC 6531 §3.7.3: UTF8SMTPS under TLS, UTF8SMTPA after AUTH */
	struct session *s = start_with("198.51.100.10", 1, 0, SL_SMTP);
	feed(s, "EHLO c\r\nSTARTTLS\r\n");
	session_tls_done(s, "TLSv1.3 with cipher X (256 bits)");
	feed(s, "EHLO c\r\nMAIL FROM:<j\xc3\xb6ran@b> SMTPUTF8\r\nRCPT TO:<bob@localhost>\r\n"
	    "DATA\r\nx\r\n.\r\n");
	CHECK(strstr(fk.body, "with UTF8SMTPS (TLSv1.3") != NULL);
	session_free(s);
	s = start_with("127.0.0.1", 0, 1, SL_SMTP);
	feed(s, "EHLO c\r\nAUTH PLAIN AGJvYgBzZWNyZXQ=\r\n");
	session_auth_done(s, 1);
	feed(s, "MAIL FROM:<bob@localhost> SMTPUTF8\r\nRCPT TO:<j\xc3\xb6ran@localhost>\r\n"
	    "DATA\r\nx\r\n.\r\n");
	CHECK(strstr(fk.body, "with UTF8SMTPA id") != NULL);
	session_free(s);
}

TEST(utf8_addresses_need_the_smtputf8_parameter_and_helo_gets_none)
{
	struct session *s = start_with("127.0.0.1", 0, 0, SL_SMTP);
	feed(s, "EHLO c\r\nMAIL FROM:<j\xc3\xb6ran@b>\r\n");
	CHECK(strstr(fk.out, "553 5.6.7") != NULL);
	session_free(s);
	/* SMTPUTF8 is an ESMTP extension: after HELO the parameter is unknown */
	s = start_with("127.0.0.1", 0, 0, SL_SMTP);
	feed(s, "HELO c\r\nMAIL FROM:<a@b> SMTPUTF8\r\n");
	CHECK(strstr(fk.out, "555 5.5.4") != NULL);
	session_free(s);
}

TEST(auth_login_asks_for_user_then_password)
{
	struct session *s = start_with("127.0.0.1", 0, 1, SL_SMTP);
	feed(s, "EHLO c\r\nAUTH LOGIN\r\n");
	CHECK(strstr(fk.out, "334 VXNlcm5hbWU6\r\n") != NULL);
	feed(s, "Ym9i\r\n");
	CHECK(strstr(fk.out, "334 UGFzc3dvcmQ6\r\n") != NULL);
	feed(s, "c2VjcmV0\r\n");
	CHECK(auth_calls == 1);
	CHECK_STR(auth_user_seen, "bob");
	CHECK_STR(auth_pass_seen, "secret");
	session_auth_done(s, 0);
	CHECK(strstr(fk.out, "535 5.7.8") != NULL);
	session_free(s);
}

TEST(three_failed_auth_attempts_close_the_session)
{
	struct session *s = start_with("127.0.0.1", 0, 1, SL_SMTP);
	feed(s, "EHLO c\r\n");
	for (int i = 0; i < 3; i++) {
		feed(s, "AUTH PLAIN AGJvYgB3cm9uZw==\r\n");
		session_auth_done(s, 0);
	}
	CHECK(strstr(fk.out, "421 4.7.0") != NULL);
	CHECK(session_state(s) == SS_CLOSING);
	session_free(s);
}

TEST(auth_cancel_and_garbage_are_501)
{
	struct session *s = start_with("127.0.0.1", 0, 1, SL_SMTP);
	feed(s, "EHLO c\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN !!!!\r\nAUTH CRAM-MD5\r\n");
	CHECK(strstr(fk.out, "501 5.0.0") != NULL);
	CHECK(strstr(fk.out, "501 5.5.2") != NULL);
	CHECK(strstr(fk.out, "504 5.5.4") != NULL);
	CHECK(auth_calls == 0);
	session_free(s);
}

/* A line of n octets of 'A' (valid base64 when n is a multiple of 4) after prefix, CRLF. */
static char *
sasl_line(const char *prefix, size_t n)
{
	size_t pl = strlen(prefix);
	char *l = malloc(pl + n + 3);

	memcpy(l, prefix, pl);
	memset(l + pl, 'A', n);
	memcpy(l + pl + n, "\r\n", 3);
	return l;
}

TEST(sasl_lines_of_12288_octets_are_read_and_12289_get_500_5_5_6)
{
	/* RFC 4954 §4: 12288 octets is the line length a server must take in the exchange
	 * (SASL_LINE_MAX, the line ending excluded); a longer line fails the AUTH command with
	 * 500 and, with enhanced status codes, 5.5.6. Both as the response to 334 and as the
	 * AUTH command with an initial response; whole and split byte by byte; the session
	 * goes on and a good AUTH after them succeeds. */
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		struct session *s = start_with("127.0.0.1", 0, 1, SL_SMTP);
		char *resp_ok = sasl_line("", 12288);		/* 9216 NULs: not a PLAIN message */
		char *resp_long = sasl_line("", 12289);
		char *cmd_ok = sasl_line("AUTH PLAIN ", 12288 - 11);
		char *cmd_long = sasl_line("AUTH PLAIN ", 12289 - 11);
		const char *seq[] = { "AUTH PLAIN\r\n", resp_ok, "AUTH PLAIN\r\n", resp_long,
		    cmd_ok, cmd_long };
		const char *want[] = { "334 ", "501 5.5.2 Malformed PLAIN", "334 ", "500 5.5.6 ",
		    "501 5.5.2 Cannot decode", "500 5.5.6 " };

		feed(s, "EHLO c\r\n");
		for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
			size_t mark = fk.outlen;
			if (bytewise)
				feed_bytewise(s, seq[i], strlen(seq[i]));
			else
				CHECK(feed(s, seq[i]) == strlen(seq[i]));
			if (strncmp(fk.out + mark, want[i], strlen(want[i])) != 0) {
				fprintf(stderr, "  step %zu (%zu octets%s): got \"%.60s\", want \"%s\"\n",
				    i, strlen(seq[i]) - 2, bytewise ? ", bytewise" : "", fk.out + mark,
				    want[i]);
				CHECK(!"the reply to the SASL line");
			}
			CHECK(count(fk.out + mark, "\r\n") == 1);	/* one reply a line */
		}
		CHECK(auth_calls == 0);
		CHECK(session_state(s) == SS_CMD);
		feed(s, "AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n");
		CHECK(auth_calls == 1);
		CHECK_STR(auth_user_seen, "bob");
		session_auth_done(s, 1);
		CHECK(strstr(fk.out, "235 2.7.0") != NULL);
		free(resp_ok);
		free(resp_long);
		free(cmd_ok);
		free(cmd_long);
		session_free(s);
	}
}

TEST(submission_refuses_mail_before_auth_with_530)
{
	struct session *s = start_with("127.0.0.1", 0, 1, SL_SUBMISSION);
	feed(s, "EHLO c\r\nMAIL FROM:<a@b>\r\n");
	CHECK(strstr(fk.out, "530 5.7.0") != NULL);
	feed(s, "AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n");
	session_auth_done(s, 1);
	feed(s, "MAIL FROM:<a@b>\r\n");
	CHECK(strstr(fk.out, "250 2.1.0") != NULL);
	session_free(s);
}


static void
send_with_received_headers(struct session *s, int n)
{
	feed(s, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
	for (int i = 0; i < n; i++)
		feed(s, i % 2 ? "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n" :
		    "RECEIVED: from x\r\n\tby y; Mon, 1 Jan 2024 00:00:00 +0000\r\n");
	feed(s, "Subject: loop\r\n\r\nReceived: in the body does not count\r\n.\r\n");
}

TEST(more_than_100_received_headers_is_a_loop_refused_with_554_5_4_6)
{
	struct session *s = start();
	send_with_received_headers(s, 100);	/* plus ours: 101 hops */
	CHECK(strstr(fk.out, "554 5.4.6") != NULL);
	CHECK(fk.commits == 0 && fk.aborts == 1);
	session_free(s);
}

TEST(exactly_100_hops_are_accepted)
{
	struct session *s = start();
	send_with_received_headers(s, 99);	/* plus ours: 100 */
	CHECK(strstr(fk.out, "554 5.4.6") == NULL);
	CHECK(fk.commits == 1);
	session_free(s);
}


static const char ar_msg[] =
    "Authentication-Results: mx.example; dkim=pass header.d=paypal.com\r\n"
    "Subject: x\r\n"
    "Authentication-Results:\r\n\t(forged) MX.Example;\r\n\tspf=pass smtp.mailfrom=x@paypal.com\r\n"
    "Authentication-Results: other.example; spf=fail\r\n"
    "Authentication-Results-Extra: mx.example; kept\r\n"
    "Authentication-Results : mx.example; obsolete space before the colon\r\n"
    "To: b@c\r\n"
    "\r\n"
    "Authentication-Results: mx.example; in the body: kept\r\n";

static void
check_ar_filtered(void)
{
	const char *b = body_after_received();
	CHECK_STR(b, "Subject: x\r\n"
	    "Authentication-Results: other.example; spf=fail\r\n"
	    "Authentication-Results-Extra: mx.example; kept\r\n"
	    "To: b@c\r\n"
	    "\r\n"
	    "Authentication-Results: mx.example; in the body: kept\r\n");
}

TEST(authentication_results_claiming_our_hostname_are_removed_others_kept)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
	feed(s, ar_msg);
	feed(s, ".\r\n");
	CHECK(fk.commits == 1);
	check_ar_filtered();
	session_free(s);
}

TEST(authentication_results_naming_us_with_a_final_dot_or_an_unreadable_id_are_removed)
{
	/* issue 24, finding 9: "mx.example." is our name too, and a field whose id cannot be
	 * read (an unterminated comment first, nothing but a comment) may be read as ours by
	 * someone more lenient downstream */
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
	feed(s, "Authentication-Results: mx.example.; dkim=pass header.d=paypal.com\r\n"
	    "Authentication-Results: \"MX.EXAMPLE.\"; spf=pass\r\n"
	    "Authentication-Results: (unterminated mx.example; dmarc=pass\r\n"
	    "Authentication-Results: (only a comment)\r\n"
	    "Authentication-Results: mx.example.other; spf=fail\r\n"
	    "Authentication-Results: mx.exampl; spf=fail\r\n"
	    "Subject: dots\r\n\r\nbody\r\n.\r\n");
	CHECK(fk.commits == 1);
	CHECK_STR(body_after_received(), "Authentication-Results: mx.example.other; spf=fail\r\n"
	    "Authentication-Results: mx.exampl; spf=fail\r\n"
	    "Subject: dots\r\n\r\nbody\r\n");
	session_free(s);
}

TEST(authentication_results_filter_holds_across_one_byte_segments)
{
	struct session *s = start();
	char msg[2048];
	feed(s, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
	snprintf(msg, sizeof(msg), "%s.\r\n", ar_msg);
	feed_bytewise(s, msg, strlen(msg));
	CHECK(fk.commits == 1);
	check_ar_filtered();
	session_free(s);
}

TEST(a_bare_cr_line_does_not_end_the_header_for_the_filter)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
	feed(s, "Subject: t2\r\n\rX: y\r\nAuthentication-Results: mx.example; dmarc=pass\r\n"
	    "\rAuthentication-Results: mx.example; dkim=pass\r\n"
	    "Authentication-Results    : mx.example; spaces before the colon\r\n"
	    "To: b@c\r\n\r\nbody\r\n.\r\n");
	CHECK(fk.commits == 1);
	CHECK_STR(body_after_received(), "Subject: t2\r\n\rX: y\r\nTo: b@c\r\n\r\nbody\r\n");
	session_free(s);
}

TEST(an_oversized_authentication_results_field_is_dropped)
{
	struct session *s = start();
	char big[901];
	feed(s, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
	feed(s, "Authentication-Results: other.example;");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* lines under the 1000-octet limit, the field over SESSION_AR_HOLD_MAX */
	for (int i = 0; i <= SESSION_AR_HOLD_MAX / 900; i++) {
		feed(s, "\r\n\t");
		feed(s, big);
	}
	feed(s, "\r\nSubject: y\r\n\r\nbody\r\n.\r\n");
	CHECK(fk.commits == 1);
	CHECK_STR(body_after_received(), "Subject: y\r\n\r\nbody\r\n");
	session_free(s);
}

static int mail_checks;
static char mail_checked[300];

static void
f_mail_check(void *arg, const char *sender, int authenticated)
{
	mail_checks++;
	snprintf(mail_checked, sizeof(mail_checked), "%s", sender);
}

static const struct session_ops ops_mailcheck = { f_output, f_open, f_write, f_commit, f_abort,
    f_log, f_starttls, f_auth, NULL, NULL, NULL, f_mail_check, NULL };

TEST(mail_check_holds_pipelined_commands_until_answered)
{
	struct session_peer peer;
	struct session_opts opts = { .kind = SL_SMTP };
	struct session *s;
	const char *in = "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@localhost>\r\n";
	size_t used;

	memset(&fk, 0, sizeof(fk));
	memset(&peer, 0, sizeof(peer));
	mail_checks = 0;
	netaddr_parse("198.51.100.10", &peer.local);
	netaddr_parse("192.0.2.7", &peer.remote);
	s = session_new(&conf, NULL, &peer, &opts, "t3", &ops_mailcheck, &fk);
	session_start(s, NULL);
	used = feed(s, in);
	CHECK(mail_checks == 1);
	CHECK_STR(mail_checked, "a@b.example");
	CHECK(session_state(s) == SS_MAILWAIT);
	CHECK(used < strlen(in));			/* RCPT waits */
	CHECK(strstr(fk.out, "250 2.1.0") == NULL);
	session_mail_done(s, "554 5.7.1 Service unavailable; client host [192.0.2.7] blocked "
	    "using bl.example (listed as 127.0.0.2)");
	CHECK(strstr(fk.out, "554 5.7.1 Service unavailable; client host [192.0.2.7] blocked "
	    "using bl.example") != NULL);
	feed(s, in + used);
	CHECK(strstr(fk.out, "503 5.5.1") != NULL);	/* no MAIL in effect */
	feed(s, "MAIL FROM:<c@d.example>\r\n");
	session_mail_done(s, NULL);
	CHECK(strstr(fk.out, "250 2.1.0 Ok") != NULL);
	session_free(s);
}

TEST(commit_refused_replies_instead_of_250)
{
	struct session *s = start();
	feed(s, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\nx\r\n.\r\n");
	CHECK(session_state(s) == SS_COMMIT);
	session_commit_refused(s, "550 5.7.1 Message rejected: the DMARC policy of b.example "
	    "says reject");
	CHECK(strstr(fk.out, "550 5.7.1 Message rejected: the DMARC policy") != NULL);
	CHECK(strstr(fk.out, "250 2.0.0") == NULL);
	CHECK(session_state(s) == SS_CMD);
	feed(s, "RCPT TO:<bob@localhost>\r\n");
	CHECK(strstr(fk.out, "503 5.5.1") != NULL);
	session_free(s);
}

TEST(output_bound_stops_consuming_commands)
{
	struct session *s = start_bounded();
	const char *in = "NOOP\r\nNOOP\r\nNOOP\r\n";

	out_full = 1;
	CHECK(feed(s, in) == 0);		/* nothing taken while the client does not read */
	CHECK(count(fk.out, "250 2.0.0 Ok") == 0);
	out_full = 0;
	CHECK(feed(s, in) == strlen(in));	/* it read: all of it now */
	CHECK(count(fk.out, "250 2.0.0 Ok") == 3);
	session_free(s);
}

TEST(output_bound_does_not_stop_data)
{
	struct session *s = start_bounded();
	const char *body = "Subject: x\r\n\r\nbody\r\n";

	feed(s, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@localhost>\r\nDATA\r\n");
	CHECK(session_state(s) == SS_DATA);
	out_full = 1;				/* DATA writes no replies: keep reading */
	CHECK(feed(s, body) == strlen(body));
	session_free(s);
}

TEST(repeated_ehlo_is_junk_until_421)
{
	struct session *s = start_bounded();
	int i;

	for (i = 0; i < 2 * SESSION_JUNK_LIMIT && session_state(s) != SS_CLOSING; i++)
		feed(s, "EHLO a\r\n");
	CHECK(session_state(s) == SS_CLOSING);
	CHECK(i == SESSION_JUNK_LIMIT + 2);	/* the first EHLO is free */
	CHECK(strstr(fk.out, "421 4.7.0 ") != NULL);
	session_free(s);
}

TEST(ehlo_again_after_a_message_is_not_junk)
{
	struct session *s = start_bounded();

	for (int i = 0; i < SESSION_JUNK_LIMIT + 5; i++) {
		feed(s, "EHLO a\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@localhost>\r\nDATA\r\n"
		    "x\r\n.\r\n");
		session_commit_done(s, 1);
	}
	CHECK(session_state(s) == SS_CMD);
	CHECK(strstr(fk.out, "421") == NULL);
	session_free(s);
}

TEST(rejected_recipients_spend_the_error_budget_with_growing_pauses)
{
	struct session *s = start_bounded();
	int i;

	feed(s, "EHLO c\r\nMAIL FROM:<a@b.example>\r\n");
	for (i = 1; i <= SESSION_ERROR_LIMIT && session_state(s) != SS_CLOSING; i++) {
		feed(s, "RCPT TO:<victim@elsewhere.example>\r\n");	/* relay denied */
		if (i <= SESSION_SOFT_ERRORS)
			CHECK(pauses == 0);
		else if (i < SESSION_ERROR_LIMIT) {
			unsigned want = (unsigned)(i - SESSION_SOFT_ERRORS);
			CHECK(last_pause == (want > SESSION_ERROR_DELAY_MAX ? SESSION_ERROR_DELAY_MAX :
			    want));
		}
	}
	CHECK(session_state(s) == SS_CLOSING);
	CHECK(i - 1 == SESSION_ERROR_LIMIT);
	CHECK(pauses == SESSION_ERROR_LIMIT - SESSION_SOFT_ERRORS - 1);
	CHECK(count(fk.out, "554 5.7.1") == SESSION_ERROR_LIMIT);
	CHECK(strstr(fk.out, "421 4.7.0 ") != NULL);
	session_free(s);
}

TEST(a_pause_stops_the_batch_after_the_reply)
{
	struct session *s = start_bounded();
	char in[4096] = "";
	size_t used;

	strcat(in, "EHLO c\r\nMAIL FROM:<a@b.example>\r\n");
	for (int i = 0; i < SESSION_SOFT_ERRORS + 3; i++)
		strcat(in, "RCPT TO:<v@elsewhere.example>\r\n");
	used = feed(s, in);
	/* consumed up to and including the first error past the soft limit, no further */
	CHECK(pauses == 1);
	CHECK(count(fk.out, "554 5.7.1") == SESSION_SOFT_ERRORS + 1);
	CHECK(used < strlen(in));
	CHECK(feed(s, in + used) > 0);		/* fed again after the pause: goes on */
	CHECK(count(fk.out, "554 5.7.1") == SESSION_SOFT_ERRORS + 2);
	session_free(s);
}

TEST(auth_locked_closes_with_421)
{
	struct session *s = start_with("127.0.0.1", 0, 1, SL_SMTP);

	feed(s, "EHLO c\r\nAUTH PLAIN AGJvYgBzZWNyZXQ=\r\n");
	CHECK(session_state(s) == SS_AUTHWAIT);
	session_auth_done(s, SESSION_AUTH_LOCKED);
	CHECK(session_state(s) == SS_CLOSING);
	CHECK(strstr(fk.out, "421 4.7.0 ") != NULL);
	CHECK(strstr(fk.out, "Too many failed authentications from your address") != NULL);
	CHECK(strstr(fk.out, "535") == NULL);
	session_free(s);
}

TEST(mail_below_queue_minfree_gets_452_4_3_1)
{
	struct session *s = start_bounded();

	space = 0;
	feed(s, "EHLO c\r\nMAIL FROM:<a@b.example> SIZE=5000\r\n");
	CHECK(strstr(fk.out, "452 4.3.1 Insufficient system storage") != NULL);
	CHECK(space_asked == 5000);
	feed(s, "RCPT TO:<x@localhost>\r\n");
	CHECK(strstr(fk.out, "503 5.5.1") != NULL);	/* no transaction was started */
	space = 1;
	fk.outlen = 0;
	feed(s, "MAIL FROM:<a@b.example>\r\n");
	CHECK(strstr(fk.out, "250 2.1.0") != NULL);	/* space came back */
	session_free(s);
}

TEST(commit_without_space_gets_452_4_3_1)
{
	struct session *s = start_bounded();

	feed(s, "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@localhost>\r\nDATA\r\n"
	    "x\r\n.\r\n");
	session_commit_done(s, SESSION_COMMIT_NOSPACE);
	CHECK(strstr(fk.out, "452 4.3.1 Insufficient system storage") != NULL);
	CHECK(session_state(s) == SS_CMD);
	session_free(s);
}

/* spool_dir/submit (imsd sendmail): the uid the kernel gave is in the Received header; a
 * local user may relay; neither STARTTLS nor AUTH is offered (the server passes neither). */
TEST(local_submission_names_the_uid_and_may_relay)
{
	struct session_peer peer;
	struct session_opts opts = { .kind = SL_LOCAL };
	struct session *s;

	memset(&fk, 0, sizeof(fk));
	memset(&peer, 0, sizeof(peer));
	netaddr_parse("127.0.0.1", &peer.local);
	netaddr_parse("127.0.0.1", &peer.remote);
	peer.uid = 1000;
	s = session_new(&conf, NULL, &peer, &opts, "t3", &ops, &fk);
	session_set_time(s, 1700000000);
	session_start(s, NULL);
	feed(s, "EHLO mx.example\r\nMAIL FROM:<app@mx.example>\r\n"
	    "RCPT TO:<x@example.org>\r\nDATA\r\nSubject: s\r\n\r\nx\r\n.\r\n");
	CHECK(strstr(fk.out, "STARTTLS") == NULL && strstr(fk.out, "AUTH") == NULL);
	CHECK(strstr(fk.out, "250 2.1.5") != NULL);
	CHECK(fk.commits == 1);
	CHECK(strncmp(fk.body, "Received: by mx.example (imsd, from userid 1000)\r\n\twith local id Q1"
	    "\r\n\tfor <x@example.org>;\r\n\t", 93) == 0);
	CHECK_STR(body_after_received(), "Subject: s\r\n\r\nx\r\n");
	session_commit_done(s, 1);
	CHECK(strstr(fk.out, "250 2.0.0 Ok: queued as Q1") != NULL);
	session_free(s);
}

/* DSN (RFC 3461): EHLO lists it; MAIL RET/ENVID and RCPT NOTIFY/ORCPT reach tx_open; bad
 * values get 501 5.5.4 naming the parameter; after HELO they are unknown parameters. */
TEST(dsn_parameters_are_parsed_and_kept_per_recipient)
{
	struct session *s = start();
	char line[1200];

	feed(s, "EHLO c.example\r\n");
	CHECK(strstr(fk.out, "250-DSN\r\n") != NULL);
	fk.outlen = 0;
	feed(s, "MAIL FROM:<a@example.org> RET=hdrs ENVID=Q+2B1\r\n"
	    "RCPT TO:<bob@localhost> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;B+40x@example.org\r\n"
	    "RCPT TO:<carol@localhost>\r\n"
	    "RCPT TO:<dave@localhost> NOTIFY=BOGUS\r\n"
	    "RCPT TO:<dave@localhost> ORCPT=rfc822;a+4@b\r\n"
	    "RCPT TO:<dave@localhost> NOTIFY=NEVER NOTIFY=NEVER\r\n"
	    "DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n");
	CHECK(strstr(fk.out, "501 5.5.4 Bad NOTIFY parameter: NOTIFY must be NEVER or a list") != NULL);
	CHECK(strstr(fk.out, "501 5.5.4 Bad ORCPT parameter: ") != NULL);
	CHECK(strstr(fk.out, "501 5.5.4 Bad NOTIFY parameter: given twice") != NULL);
	CHECK(fk.nrcpts == 2);
	CHECK(fk.dsn_ret == DSN_RET_HDRS);
	CHECK_STR(fk.envid, "Q+2B1");
	CHECK(fk.notify[0] == (DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE));
	CHECK_STR(fk.dsn_orcpt[0], "rfc822;B@x@example.org");
	CHECK(fk.notify[1] == 0);
	CHECK_STR(fk.dsn_orcpt[1], "");
	session_commit_done(s, 1);
	/* the longest ORCPT (500) fits the longer RCPT line RFC 3461 §5 allows */
	fk.outlen = 0;
	feed(s, "MAIL FROM:<a@example.org>\r\n");
	snprintf(line, sizeof(line), "RCPT TO:<bob@localhost> NOTIFY=SUCCESS,FAILURE,DELAY "
	    "ORCPT=rfc822;%0480d@example.org\r\n", 0);
	feed(s, line);
	CHECK(strstr(fk.out, "250 2.1.5") != NULL);
	feed(s, "RSET\r\nHELO c.example\r\nMAIL FROM:<a@example.org> RET=FULL\r\n");
	CHECK(strstr(fk.out, "555 5.5.4 Unsupported MAIL parameter RET") != NULL);
	session_free(s);
}

static struct session *
start_mechs(unsigned mechs)
{
	struct session_peer peer;
	struct session_opts opts = { .kind = SL_SMTP, .auth_available = 1, .auth_mechs = mechs };
	struct session *s;

	memset(&fk, 0, sizeof(fk));
	starttls_calls = auth_calls = 0;
	memset(&peer, 0, sizeof(peer));
	netaddr_parse("127.0.0.1", &peer.local);
	netaddr_parse("192.0.2.7", &peer.remote);
	s = session_new(&conf, NULL, &peer, &opts, "t3", &ops, &fk);
	session_set_time(s, 1700000000);
	session_start(s, NULL);
	return s;
}

TEST(ehlo_offers_only_the_mechanisms_the_backend_carries)
{
	struct session *s = start_mechs(1u << SASL_PLAIN);

	feed(s, "EHLO c\r\nAUTH LOGIN\r\n");
	CHECK(strstr(fk.out, "250-AUTH PLAIN\r\n") != NULL);
	CHECK(strstr(fk.out, "504 5.5.4") != NULL);
	CHECK(auth_calls == 0);
	feed(s, "AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n");
	CHECK(auth_calls == 1);
	CHECK(session_auth_mech(s) == SASL_PLAIN);
	session_free(s);
	s = start_mechs(1u << SASL_LOGIN);
	feed(s, "EHLO c\r\n");
	CHECK(strstr(fk.out, "250-AUTH LOGIN\r\n") != NULL);
	session_free(s);
	s = start_mechs(0);	/* 0: both, as with auth_users_file */
	feed(s, "EHLO c\r\n");
	CHECK(strstr(fk.out, "250-AUTH PLAIN LOGIN\r\n") != NULL);
	session_free(s);
}

TEST(a_backend_temporary_failure_is_454_and_not_counted)
{
	struct session *s = start_with("127.0.0.1", 0, 1, SL_SMTP);

	feed(s, "EHLO c\r\n");
	for (int i = 0; i < 4; i++) {
		feed(s, "AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n");
		session_auth_verdict(s, SESSION_AUTH_TEMPFAIL, NULL, "connecting: No such file");
	}
	CHECK(strstr(fk.out, "454 4.7.0 Temporary authentication failure") != NULL);
	CHECK(strstr(fk.out, "421") == NULL);
	CHECK(session_state(s) == SS_CMD);
	CHECK(strstr(fk.log, "event=auth-tempfail user=bob mech=PLAIN "
	    "reason=\"connecting: No such file\"") != NULL);
	feed(s, "AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n");
	session_auth_verdict(s, 1, NULL, NULL);
	CHECK(strstr(fk.out, "235 2.7.0") != NULL);
	session_free(s);
}

TEST(the_backends_account_name_becomes_the_authenticated_user)
{
	struct session *s = start_with("127.0.0.1", 0, 1, SL_SMTP);

	/* "\0Bob\0secret" */
	feed(s, "EHLO c\r\nAUTH PLAIN AEJvYgBzZWNyZXQ=\r\n");
	session_auth_verdict(s, 1, "bob@example.org", NULL);
	CHECK(strstr(fk.out, "235 2.7.0") != NULL);
	CHECK(strstr(fk.log, "event=auth-ok user=Bob account=bob@example.org mech=PLAIN") != NULL);
	session_free(s);
}

TEST(a_backends_reason_for_a_failure_is_logged)
{
	struct session *s = start_with("127.0.0.1", 0, 1, SL_SMTP);

	feed(s, "EHLO c\r\nAUTH PLAIN AGJvYgB3cm9uZw==\r\n");
	session_auth_verdict(s, 0, NULL, "Password mismatch");
	CHECK(strstr(fk.out, "535 5.7.8") != NULL);
	CHECK(strstr(fk.log, "event=auth-failed user=bob mech=PLAIN failures=1 "
	    "reason=\"Password mismatch\"") != NULL);
	session_free(s);
}


int
main(void)
{
	char err[512];

	if (conf_parse("test", "", 0, "mx.example", &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "conf: %s\n", err);
		return 1;
	}
	RUN(greeting_is_220_and_ehlo_lists_the_four_extensions);
	RUN(local_submission_names_the_uid_and_may_relay);
	RUN(full_transaction_commits_once_and_250_waits_for_commit_done);
	RUN(failed_commit_answers_451_not_250);
	RUN(input_after_final_dot_waits_until_commit_is_done);
	RUN(dot_stuffing_is_removed);
	RUN(bare_lf_lines_are_stored_as_crlf_and_never_end_data);
	RUN(smuggling_sequences_do_not_end_data);
	RUN(data_split_at_every_byte_gives_the_same_body);
	RUN(command_line_over_512_octets_gets_500_5_5_2_and_session_continues);
	RUN(partial_overlong_line_is_skipped_without_buffering);
	RUN(text_line_over_1000_octets_is_refused_after_the_dot);
	RUN(line_of_exactly_998_octets_is_accepted);
	RUN(size_parameter_over_limit_is_552_5_3_4);
	RUN(actual_size_over_limit_is_552_after_the_dot_and_aborted);
	RUN(recipient_limit_gives_452_4_5_3);
	RUN(non_local_recipient_is_relay_denied_554_5_7_1);
	RUN(source_route_to_remote_is_judged_by_the_real_address);
	RUN(local_part_with_slash_or_leading_dot_is_550_5_1_3);
	RUN(bad_sequence_is_503_5_5_1);
	RUN(a_commands_preconditions_are_checked_in_its_rows_order);
	RUN(junk_commands_up_to_the_limit_are_served_and_one_more_closes);
	RUN(pipelined_group_gets_replies_in_order);
	RUN(vrfy_is_252_and_unknown_command_500_5_5_1);
	RUN(error_budget_ends_the_session_with_421);
	RUN(http_request_is_refused_and_closed);
	RUN(every_reply_after_the_greeting_has_an_enhanced_code);
	RUN(timeout_gives_421_4_4_2_and_aborts_data);
	RUN(ehlo_advertises_chunking_and_binarymime);
	RUN(bdat_payload_with_dot_and_quit_is_stored_not_interpreted);
	RUN(bdat_split_at_every_byte_gives_the_same_message);
	RUN(binarymime_content_is_stored_exactly_with_bare_lf_and_cr);
	RUN(text_bdat_gets_crlf_lines_and_a_final_line_break);
	RUN(bdat_0_last_ends_the_message);
	RUN(empty_chunks_are_junk_until_421);
	RUN(bdat_without_mail_is_503_and_its_payload_is_consumed);
	RUN(bdat_without_rcpt_is_503_and_later_chunks_too);
	RUN(data_after_bdat_and_data_with_binarymime_are_503);
	RUN(bdat_size_that_is_not_a_number_is_501_and_closes);
	RUN(bdat_with_a_bad_argument_is_501_after_its_chunk);
	RUN(size_limit_counts_across_chunks_and_552_comes_after_the_chunk);
	RUN(rset_or_disconnect_between_chunks_aborts_the_spool_file);
	RUN(bdat_content_gets_hop_counting_and_the_ar_filter);
	RUN(postmaster_without_domain_is_accepted);
	RUN(starttls_is_advertised_on_non_loopback_with_a_certificate);
	RUN(starttls_is_not_advertised_on_loopback_and_gets_the_454_explanation);
	RUN(v4_mapped_loopback_counts_as_loopback);
	RUN(tls_loopback_yes_offers_starttls_on_loopback);
	RUN(starttls_without_certificate_says_so);
	RUN(input_pipelined_after_starttls_is_left_unconsumed_for_the_server_to_discard);
	RUN(after_tls_the_session_is_reset_and_starttls_is_not_offered_again);
	RUN(starttls_with_arguments_is_501);
	RUN(received_header_says_esmtps_with_the_cipher_after_tls);
	RUN(auth_is_offered_on_loopback_without_tls_but_not_elsewhere);
	RUN(auth_plain_initial_response_is_decoded_and_checked);
	RUN(smtputf8_transactions_get_the_utf8smtp_keywords);
	RUN(utf8_addresses_need_the_smtputf8_parameter_and_helo_gets_none);
	RUN(auth_login_asks_for_user_then_password);
	RUN(three_failed_auth_attempts_close_the_session);
	RUN(auth_cancel_and_garbage_are_501);
	RUN(sasl_lines_of_12288_octets_are_read_and_12289_get_500_5_5_6);
	RUN(submission_refuses_mail_before_auth_with_530);
	RUN(more_than_100_received_headers_is_a_loop_refused_with_554_5_4_6);
	RUN(exactly_100_hops_are_accepted);
	RUN(output_bound_stops_consuming_commands);
	RUN(output_bound_does_not_stop_data);
	RUN(repeated_ehlo_is_junk_until_421);
	RUN(ehlo_again_after_a_message_is_not_junk);
	RUN(rejected_recipients_spend_the_error_budget_with_growing_pauses);
	RUN(a_pause_stops_the_batch_after_the_reply);
	RUN(auth_locked_closes_with_421);
	RUN(mail_below_queue_minfree_gets_452_4_3_1);
	RUN(commit_without_space_gets_452_4_3_1);
	RUN(authentication_results_claiming_our_hostname_are_removed_others_kept);
	RUN(authentication_results_naming_us_with_a_final_dot_or_an_unreadable_id_are_removed);
	RUN(authentication_results_filter_holds_across_one_byte_segments);
	RUN(an_oversized_authentication_results_field_is_dropped);
	RUN(a_bare_cr_line_does_not_end_the_header_for_the_filter);
	RUN(mail_check_holds_pipelined_commands_until_answered);
	RUN(commit_refused_replies_instead_of_250);
	RUN(dsn_parameters_are_parsed_and_kept_per_recipient);
	conf_free(&conf);
	RUN(ehlo_offers_only_the_mechanisms_the_backend_carries);
	RUN(a_backend_temporary_failure_is_454_and_not_counted);
	RUN(the_backends_account_name_becomes_the_authenticated_user);
	RUN(a_backends_reason_for_a_failure_is_logged);
	T_EXIT();
}
