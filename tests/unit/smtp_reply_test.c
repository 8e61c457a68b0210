/*
 * smtp_reply_test — SMTP reply parser (RFC 5321 §4.2), EHLO capabilities, status helper.
 *
 * Inputs are copied into heap buffers of exactly their length (no NUL after them), so
 * AddressSanitizer catches any read past len.
 */
#include <stdlib.h>

#include "t.h"
#include "proto/smtp_reply.h"

static struct smtp_reply_parser prs;
static struct smtp_reply rep;
static size_t used;

/* Feed all of s (n bytes) in one call to a fresh parser. */
static int
feed_n(const char *s, size_t n)
{
	char *copy = malloc(n ? n : 1);
	int r;

	memcpy(copy, s, n);
	smtp_reply_init(&prs);
	memset(&rep, 0x55, sizeof(rep));
	used = (size_t)-1;
	r = smtp_reply_feed(&prs, copy, n, &used, &rep);
	free(copy);
	return r;
}

static int
feed(const char *s)
{
	return feed_n(s, strlen(s));
}

/* Feed s one byte per call; returns the first non-zero result and the byte index in *at. */
static int
feed_bytes(const char *s, size_t *at)
{
	size_t i, n = strlen(s), u;
	int r = 0;

	smtp_reply_init(&prs);
	for (i = 0; i < n; i++) {
		char *one = malloc(1);

		*one = s[i];
		u = 99;
		r = smtp_reply_feed(&prs, one, 1, &u, &rep);
		free(one);
		if (r == 0 && u != 1)
			return -2;
		if (r != 0) {
			*at = i;
			return r;
		}
	}
	*at = n;
	return 0;
}

TEST(single_line_reply)
{
	CHECK(feed("220 mx.example.org ESMTP ready\r\n") == 1);
	CHECK(rep.code == 220);
	CHECK_STR(rep.text, "mx.example.org ESMTP ready");
	CHECK_STR(rep.enh, "");
	CHECK(rep.nlines == 1);
	CHECK(used == 32);
}

TEST(code_alone_is_legal)
{
	CHECK(feed("250\r\n") == 1);
	CHECK(rep.code == 250 && rep.nlines == 1);
	CHECK_STR(rep.text, "");
	CHECK(feed("250 \r\n") == 1);
	CHECK_STR(rep.text, "");
	CHECK(feed("354\n") == 1 && rep.code == 354);
}

TEST(incomplete_line_needs_more)
{
	CHECK(feed("250 ok") == 0);
	CHECK(used == 6);
	CHECK(feed("250-first\r\n250-second\r\n") == 0);
	CHECK(used == 23);
	CHECK(feed("") == 0 && used == 0);
	CHECK(feed("250 ok\r") == 0);
}

TEST(multiline_ehlo_and_caps)
{
	struct smtp_caps caps;
	const char *s = "250-mx.example.org Hello client [192.0.2.1]\r\n"
	    "250-PIPELINING\r\n250-SIZE 1000000\r\n250-STARTTLS\r\n250-8BITMIME\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-SMTPUTF8\r\n250-AUTH PLAIN LOGIN\r\n"
	    "250 CHUNKING\r\n";

	CHECK(feed(s) == 1);
	CHECK(used == strlen(s));
	CHECK(rep.code == 250 && rep.nlines == 10);
	CHECK(strncmp(rep.text, "mx.example.org Hello client [192.0.2.1]\nPIPELINING\nSIZE 1000000\n",
	    64) == 0);
	smtp_caps_parse(&rep, &caps);
	CHECK(caps.pipelining && caps.starttls && caps.eightbitmime && caps.size_known);
	CHECK(caps.smtputf8 && caps.chunking && caps.enhancedstatuscodes && caps.dsn);
	CHECK(caps.size == 1000000);
	CHECK(!caps.binarymime);
	CHECK(feed("250-x\r\n250-CHUNKING\r\n250 binarymime\r\n") == 1);
	smtp_caps_parse(&rep, &caps);
	CHECK(caps.chunking && caps.binarymime);
}

TEST(caps_size_without_number_lowercase_and_greeting_skipped)
{
	struct smtp_caps caps;

	CHECK(feed("250-PIPELINING\r\n250-size\r\n250-starttls\r\n250 8bitmime\r\n") == 1);
	smtp_caps_parse(&rep, &caps);
	CHECK(!caps.pipelining);	/* the greeting line is not a keyword */
	CHECK(caps.size_known && caps.size == 0);
	CHECK(caps.starttls && caps.eightbitmime);
	CHECK(!caps.dsn && !caps.chunking && !caps.smtputf8 && !caps.binarymime);

	CHECK(feed("250-x\r\n250-SIZE junk\r\n250-SIZEX 5\r\n250 Pipelining\r\n") == 1);
	smtp_caps_parse(&rep, &caps);
	CHECK(caps.size_known && caps.size == 0 && caps.pipelining);

	CHECK(feed("250-x\r\n250 SIZE 99999999999999999999999\r\n") == 1);
	smtp_caps_parse(&rep, &caps);
	CHECK(caps.size_known && caps.size == ~0ULL);

	/* HELO-style single line: nothing announced */
	CHECK(feed("250 mx.example.org\r\n") == 1);
	smtp_caps_parse(&rep, &caps);
	CHECK(!caps.size_known && !caps.pipelining && !caps.starttls);

	/* not a 250 reply: nothing */
	CHECK(feed("502-x\r\n502 PIPELINING\r\n") == 1);
	smtp_caps_parse(&rep, &caps);
	CHECK(!caps.pipelining);
}

TEST(fragmented_byte_by_byte)
{
	const char *s = "250-mx Hello\r\n250-SIZE 52428800\r\n250 PIPELINING\r\n";
	struct smtp_caps caps;
	size_t at = 0;

	CHECK(feed_bytes(s, &at) == 1);
	CHECK(at == strlen(s) - 1);
	CHECK(rep.code == 250 && rep.nlines == 3);
	CHECK_STR(rep.text, "mx Hello\nSIZE 52428800\nPIPELINING");
	smtp_caps_parse(&rep, &caps);
	CHECK(caps.size == 52428800 && caps.pipelining);

	CHECK(feed_bytes("550 5.1.1 <bob@example.org>: no such user\r\n", &at) == 1);
	CHECK(rep.code == 550);
	CHECK_STR(rep.enh, "5.1.1");
}

TEST(pipelined_replies_in_one_buffer)
{
	const char *s = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 unknown\r\n354 go\r\n";
	size_t off = 0, n = strlen(s);
	int r;

	smtp_reply_init(&prs);
	r = smtp_reply_feed(&prs, s, n, &used, &rep);
	CHECK(r == 1 && used == 14 && rep.code == 250);
	CHECK_STR(rep.enh, "2.1.0");
	off += used;
	r = smtp_reply_feed(&prs, s + off, n - off, &used, &rep);
	CHECK(r == 1 && used == 14 && rep.code == 250);
	CHECK_STR(rep.enh, "2.1.5");
	off += used;
	r = smtp_reply_feed(&prs, s + off, n - off, &used, &rep);
	CHECK(r == 1 && rep.code == 550);
	CHECK_STR(rep.text, "5.1.1 unknown");
	off += used;
	r = smtp_reply_feed(&prs, s + off, n - off, &used, &rep);
	CHECK(r == 1 && rep.code == 354 && off + used == n);
	CHECK_STR(rep.enh, "");
	r = smtp_reply_feed(&prs, s + n, 0, &used, &rep);
	CHECK(r == 0 && used == 0);
}

TEST(split_across_feeds_mid_line_and_mid_crlf)
{
	struct smtp_reply_parser p;
	size_t u;

	smtp_reply_init(&p);
	CHECK(smtp_reply_feed(&p, "25", 2, &u, &rep) == 0 && u == 2);
	CHECK(smtp_reply_feed(&p, "0-a\r", 4, &u, &rep) == 0 && u == 4);
	CHECK(smtp_reply_feed(&p, "\n250 b\r", 7, &u, &rep) == 0 && u == 7);
	CHECK(smtp_reply_feed(&p, "\n421 next", 9, &u, &rep) == 1 && u == 1);
	CHECK(rep.code == 250 && rep.nlines == 2);
	CHECK_STR(rep.text, "a\nb");
	CHECK(smtp_reply_feed(&p, "421 next", 8, &u, &rep) == 0 && u == 8);
	CHECK(smtp_reply_feed(&p, "\r\n", 2, &u, &rep) == 1 && u == 2);
	CHECK(rep.code == 421);
	CHECK_STR(rep.text, "next");
}

TEST(bare_lf_lines)
{
	CHECK(feed("250-one\n250-two\r\n250 three\n") == 1);
	CHECK(rep.nlines == 3);
	CHECK_STR(rep.text, "one\ntwo\nthree");
}

TEST(mismatched_codes_are_an_error)
{
	CHECK(feed("250-one\r\n251 two\r\n") == -1);
	CHECK(used == 17);	/* up to the LF of the offending line */
	/* sticky until init */
	CHECK(smtp_reply_feed(&prs, "250 ok\r\n", 8, &used, &rep) == -1 && used == 0);
	smtp_reply_init(&prs);
	CHECK(smtp_reply_feed(&prs, "250 ok\r\n", 8, &used, &rep) == 1);
}

TEST(garbage_codes_are_an_error)
{
	CHECK(feed("abc hello\r\n") == -1);
	CHECK(feed("25 short\r\n") == -1);
	CHECK(feed("\r\n") == -1);
	CHECK(feed("25\r\n") == -1);
	CHECK(feed("150 old\r\n") == -1);
	CHECK(feed("650 no\r\n") == -1);
	CHECK(feed("260 second digit\r\n") == -1);
	CHECK(feed("2500 four digits\r\n") == -1);
	CHECK(feed("250:colon\r\n") == -1);
	CHECK(feed("250\tok\r\n") == -1);
	CHECK(feed(" 250 ok\r\n") == -1);
	CHECK(feed("559 ok\r\n") == 1);
	CHECK(feed("200 ok\r\n") == 1);
}

TEST(over_long_line_is_an_error)
{
	size_t n = SMTP_REPLY_LINE_MAX + 10;
	char *s = malloc(n + 2);

	memset(s, 'x', n);
	memcpy(s, "250 ", 4);
	memcpy(s + n, "\r\n", 2);
	CHECK(feed_n(s, n + 2) == -1);
	CHECK(used == SMTP_REPLY_LINE_MAX);	/* refused as soon as it is too long */

	/* exactly LINE_MAX octets (without CRLF, or with bare LF) is fine */
	memcpy(s + SMTP_REPLY_LINE_MAX, "\r\n", 2);
	CHECK(feed_n(s, SMTP_REPLY_LINE_MAX + 2) == 1);
	CHECK(strlen(rep.text) == SMTP_REPLY_LINE_MAX - 4);
	s[SMTP_REPLY_LINE_MAX] = '\n';
	CHECK(feed_n(s, SMTP_REPLY_LINE_MAX + 1) == 1);
	/* LINE_MAX + 1 octets then CRLF is too long */
	s[SMTP_REPLY_LINE_MAX] = 'x';
	memcpy(s + SMTP_REPLY_LINE_MAX + 1, "\r\n", 2);
	CHECK(feed_n(s, SMTP_REPLY_LINE_MAX + 3) == -1);
	/* a CR inside an over-long line does not help */
	s[SMTP_REPLY_LINE_MAX] = '\r';
	CHECK(feed_n(s, SMTP_REPLY_LINE_MAX + 3) == -1);
	free(s);
}

TEST(too_many_lines_is_an_error_and_text_is_truncated)
{
	size_t cap = (SMTP_REPLY_LINES_MAX + 1) * 40, n = 0, i;
	char *s = malloc(cap);

	for (i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
		n += (size_t)snprintf(s + n, cap - n, "250-line %03zu abcdefghijklmnopqrstuvw\r\n", i);
	n += (size_t)snprintf(s + n, cap - n, "250 last\r\n");
	CHECK(feed_n(s, n) == 1);
	CHECK(rep.nlines == SMTP_REPLY_LINES_MAX);
	CHECK(strlen(rep.text) == SMTP_REPLY_TEXT_MAX - 1);	/* cut, not refused */
	CHECK(strncmp(rep.text, "line 000 abc", 12) == 0);

	n -= 10;
	n += (size_t)snprintf(s + n, cap - n, "250-more\r\n250 last\r\n");
	CHECK(feed_n(s, n) == -1);
	free(s);
}

TEST(enhanced_code_only_when_class_matches)
{
	char st[16];

	CHECK(feed("550 5.1.1 <bob@x>: user unknown\r\n") == 1);
	CHECK_STR(rep.enh, "5.1.1");
	CHECK_STR(rep.text, "5.1.1 <bob@x>: user unknown");
	CHECK(feed("550 2.1.1 x\r\n") == 1);
	CHECK_STR(rep.enh, "");
	CHECK(feed("451 4.7.650 later\r\n") == 1);
	CHECK_STR(rep.enh, "4.7.650");
	CHECK(feed("250 2.0.0\r\n") == 1);
	CHECK_STR(rep.enh, "2.0.0");
	CHECK(feed("550 5.1.1234 x\r\n") == 1);
	CHECK_STR(rep.enh, "");
	CHECK(feed("550 5.1 x\r\n") == 1);
	CHECK_STR(rep.enh, "");
	CHECK(feed("550 5.1.1x\r\n") == 1);
	CHECK_STR(rep.enh, "");
	CHECK(feed("550 5..1 x\r\n") == 1);
	CHECK_STR(rep.enh, "");
	/* from the last line */
	CHECK(feed("550-5.7.1 first\r\n550 5.7.26 second\r\n") == 1);
	CHECK_STR(rep.enh, "5.7.26");
	CHECK(feed("550-5.7.1 first\r\n550 second\r\n") == 1);
	CHECK_STR(rep.enh, "");

	CHECK(feed("550 5.1.1 x\r\n") == 1);
	smtp_reply_status(&rep, st);
	CHECK_STR(st, "5.1.1");
	CHECK(feed("550 2.1.1 x\r\n") == 1);
	smtp_reply_status(&rep, st);
	CHECK_STR(st, "5.0.0");
	CHECK(feed("421 bye\r\n") == 1);
	smtp_reply_status(&rep, st);
	CHECK_STR(st, "4.0.0");
	CHECK(feed("250 ok\r\n") == 1);
	smtp_reply_status(&rep, st);
	CHECK_STR(st, "2.0.0");
}

TEST(control_bytes_in_text_are_replaced)
{
	CHECK(feed_n("250 a\0b\rc\td\r\n", 13) == 1);
	CHECK_STR(rep.text, "a?b?c\td");
	CHECK(feed("250 caf\xc3\xa9\r\n") == 1);
	CHECK_STR(rep.text, "caf\xc3\xa9");
}

TEST(class_helpers)
{
	CHECK(smtp_reply_positive(250) && smtp_reply_positive(354) && !smtp_reply_positive(421));
	CHECK(smtp_reply_completion(221) && !smtp_reply_completion(354));
	CHECK(smtp_reply_intermediate(354));
	CHECK(smtp_reply_transient(450) && !smtp_reply_transient(550));
	CHECK(smtp_reply_permanent(554) && !smtp_reply_permanent(452));
}

int
main(void)
{
	RUN(single_line_reply);
	RUN(code_alone_is_legal);
	RUN(incomplete_line_needs_more);
	RUN(multiline_ehlo_and_caps);
	RUN(caps_size_without_number_lowercase_and_greeting_skipped);
	RUN(fragmented_byte_by_byte);
	RUN(pipelined_replies_in_one_buffer);
	RUN(split_across_feeds_mid_line_and_mid_crlf);
	RUN(bare_lf_lines);
	RUN(mismatched_codes_are_an_error);
	RUN(garbage_codes_are_an_error);
	RUN(over_long_line_is_an_error);
	RUN(too_many_lines_is_an_error_and_text_is_truncated);
	RUN(enhanced_code_only_when_class_matches);
	RUN(control_bytes_in_text_are_replaced);
	RUN(class_helpers);
	T_EXIT();
}
