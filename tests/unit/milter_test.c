/*
 * milter_test — the milter protocol codec against the byte layouts of libmilter's mfdef.h and
 * the Sendmail/Postfix MTA side: uint32 length (network order) | letter | data.
 *
 * Decoder inputs are copied into heap buffers of exactly their length, so AddressSanitizer
 * catches a read past the packet.
 */
#include <stdlib.h>

#include "proto/milter.h"
#include "t.h"

static struct sbuf B;

static void
reset(void)
{
	free(B.p);
	memset(&B, 0, sizeof B);
}

/* Does B hold exactly the n bytes of want? */
static int
is(const void *want, size_t n)
{
	return !B.bad && B.len == n && memcmp(B.p, want, n) == 0;
}

#define IS(lit) is(lit, sizeof(lit) - 1)

static struct milter_reply R;
static const char *why;

/* Frame and decode one reply packet given as bytes. */
static int
reply(const void *bytes, size_t n)
{
	static char name[256], value[256];
	unsigned char *copy = malloc(n);
	struct milter_packet pkt;
	size_t used;
	int r;

	memcpy(copy, bytes, n);
	why = NULL;
	memset(&R, 0, sizeof R);
	r = milter_frame(copy, n, MILTER_PACKET_MAX, &pkt, &used, &why);
	if (r == 1) {
		r = used == n ? milter_reply_decode(&pkt, &R, &why) : -2;
		/* pointers into copy are dead once it is freed: keep the strings' bytes */
		if (R.name)
			R.name = strncpy(name, R.name, sizeof name - 1);
		if (R.value)
			R.value = strncpy(value, R.value, sizeof value - 1);
		R.body = NULL;
	} else if (r == 0)
		r = -3;
	free(copy);
	return r;
}

/* A packet of letter c with the n bytes of data d, its length computed. */
static int
reply_data(char c, const void *d, size_t n)
{
	unsigned char *pkt = malloc(n + 5);
	int r;

	pkt[0] = (unsigned char)((n + 1) >> 24);
	pkt[1] = (unsigned char)((n + 1) >> 16);
	pkt[2] = (unsigned char)((n + 1) >> 8);
	pkt[3] = (unsigned char)(n + 1);
	pkt[4] = (unsigned char)c;
	memcpy(pkt + 5, d, n);
	r = reply(pkt, n + 5);
	free(pkt);
	return r;
}

#define REPLY(lit) reply(lit, sizeof(lit) - 1)
/* letter, then the data as a string literal (its NULs written out) */
#define RP(c, lit) reply_data(c, lit, sizeof(lit) - 1)

/* ---- encoders ---- */

TEST(optneg_is_three_network_order_words)
{
	reset();
	milter_put_optneg(&B, 6, SMFIF_ALL, SMFIP_DEFINED);
	CHECK(IS("\x00\x00\x00\x0d" "O" "\x00\x00\x00\x06" "\x00\x00\x01\xff" "\x00\x1f\xff\xff"));
}

TEST(macro_packet_names_its_command_then_name_value_pairs)
{
	const char *nv[] = { "j", "mx.example", "{client_addr}", "192.0.2.1" };

	reset();
	milter_put_macros(&B, SMFIC_CONNECT, nv, 2);
	/* 1 + "C" + "j\0mx.example\0{client_addr}\0192.0.2.1\0" = 1 + 1 + 2 + 11 + 14 + 10 */
	CHECK(IS("\x00\x00\x00\x27" "D" "C" "j\0" "mx.example\0" "{client_addr}\0" "192.0.2.1\0"));
	reset();
	milter_put_macros(&B, SMFIC_HELO, nv, 0);
	CHECK(B.len == 0);
}

TEST(connect_carries_host_family_port_and_address)
{
	reset();
	milter_put_connect(&B, "client.example", SMFIA_INET, 25000, "192.0.2.7");
	/* "client.example\0" 15 + '4' + port 0x61a8 + "192.0.2.7\0" 10 = 28, + 1 */
	CHECK(IS("\x00\x00\x00\x1d" "C" "client.example\0" "4" "\x61\xa8" "192.0.2.7\0"));
	reset();
	milter_put_connect(&B, "[2001:db8::1]", SMFIA_INET6, 1, "2001:db8::1");
	CHECK(IS("\x00\x00\x00\x1e" "C" "[2001:db8::1]\0" "6" "\x00\x01" "2001:db8::1\0"));
	reset();
	milter_put_connect(&B, "localhost", SMFIA_UNKNOWN, 0, NULL);
	CHECK(IS("\x00\x00\x00\x0c" "C" "localhost\0" "U"));
}

TEST(helo_mail_rcpt_header_unknown_are_nul_terminated_strings)
{
	const char *mail[] = { "<a@b.example>", "SIZE=100", "BODY=8BITMIME" };
	const char *rcpt[] = { "<c@d.example>" };

	reset();
	milter_put_helo(&B, "client.example");
	CHECK(IS("\x00\x00\x00\x10" "H" "client.example\0"));
	reset();
	milter_put_args(&B, SMFIC_MAIL, mail, 3);
	CHECK(IS("\x00\x00\x00\x26" "M" "<a@b.example>\0" "SIZE=100\0" "BODY=8BITMIME\0"));
	reset();
	milter_put_args(&B, SMFIC_RCPT, rcpt, 1);
	CHECK(IS("\x00\x00\x00\x0f" "R" "<c@d.example>\0"));
	reset();
	milter_put_header(&B, "Subject", "hello\n\tworld");
	CHECK(IS("\x00\x00\x00\x16" "L" "Subject\0" "hello\n\tworld\0"));
	reset();
	milter_put_unknown(&B, "XFOO bar");
	CHECK(IS("\x00\x00\x00\x0a" "U" "XFOO bar\0"));
}

TEST(body_chunks_are_bounded_and_data_free_commands_are_five_bytes)
{
	static char big[MILTER_CHUNK_MAX + 1];

	reset();
	CHECK(milter_put_body(&B, "line\r\n", 6) == 0);
	CHECK(IS("\x00\x00\x00\x07" "B" "line\r\n"));
	reset();
	CHECK(milter_put_body(&B, big, MILTER_CHUNK_MAX) == 0);
	CHECK(B.len == 5 + MILTER_CHUNK_MAX && memcmp(B.p, "\x00\x01\x00\x00" "B", 5) == 0);
	reset();
	CHECK(milter_put_body(&B, big, MILTER_CHUNK_MAX + 1) == -1 && B.len == 0);
	CHECK(milter_put_body(&B, big, 0) == -1 && B.len == 0);
	milter_put_cmd(&B, SMFIC_DATA);
	milter_put_cmd(&B, SMFIC_EOH);
	milter_put_cmd(&B, SMFIC_BODYEOB);
	milter_put_cmd(&B, SMFIC_ABORT);
	milter_put_cmd(&B, SMFIC_QUIT);
	milter_put_cmd(&B, SMFIC_QUIT_NC);
	CHECK(IS("\0\0\0\1T" "\0\0\0\1N" "\0\0\0\1E" "\0\0\0\1A" "\0\0\0\1Q" "\0\0\0\1K"));
	reset();
}

/* ---- framing ---- */

TEST(framing_waits_for_the_whole_packet_and_bounds_its_length)
{
	const unsigned char two[] = "\0\0\0\1c" "\0\0\0\1a";
	struct milter_packet pkt;
	size_t used;

	CHECK(milter_frame(two, 3, 100, &pkt, &used, &why) == 0 && used == 0);
	CHECK(milter_frame(two, 4, 100, &pkt, &used, &why) == 0 && used == 5);
	CHECK(milter_frame(two, 10, 100, &pkt, &used, &why) == 1 && used == 5);
	CHECK(pkt.cmd == 'c' && pkt.len == 0);
	CHECK(milter_frame(two + 5, 5, 100, &pkt, &used, &why) == 1 && pkt.cmd == 'a');
	CHECK(milter_frame((const unsigned char *)"\0\0\0\0c", 5, 100, &pkt, &used, &why) == -1);
	CHECK(milter_frame((const unsigned char *)"\0\0\0\x65", 4, 100, &pkt, &used, &why) == -1);
	CHECK(milter_frame((const unsigned char *)"\xff\xff\xff\xff", 4, MILTER_PACKET_MAX, &pkt,
	    &used, &why) == -1);
	CHECK(why != NULL);
}

/* ---- replies ---- */

TEST(simple_replies_carry_no_data)
{
	CHECK(REPLY("\0\0\0\1a") == 0 && R.cmd == SMFIR_ACCEPT);
	CHECK(REPLY("\0\0\0\1c") == 0 && R.cmd == SMFIR_CONTINUE);
	CHECK(REPLY("\0\0\0\1d") == 0 && R.cmd == SMFIR_DISCARD);
	CHECK(REPLY("\0\0\0\1r") == 0 && R.cmd == SMFIR_REJECT);
	CHECK(REPLY("\0\0\0\1t") == 0 && R.cmd == SMFIR_TEMPFAIL);
	CHECK(REPLY("\0\0\0\1p") == 0 && R.cmd == SMFIR_PROGRESS);
	CHECK(REPLY("\0\0\0\1s") == 0 && R.cmd == SMFIR_SKIP);
	CHECK(REPLY("\0\0\0\1" "4") == 0 && R.cmd == SMFIR_SHUTDOWN);
	CHECK(REPLY("\0\0\0\2ax") == -1);
	CHECK(REPLY("\0\0\0\1Z") == -1);
}

TEST(replycode_single_line_keeps_code_enhanced_code_and_text)
{
	/* a length beyond the bytes there: the packet is not complete */
	CHECK(REPLY("\0\0\0\x1d" "y" "554 5.7.1 Gtube pattern\0") == -3);
	CHECK(RP('y', "554 5.7.1 Gtube pattern\0") == 0);
	CHECK(R.code == 554 && R.nlines == 1);
	CHECK_STR(R.enh, "5.7.1");
	CHECK_STR(R.text, "5.7.1 Gtube pattern");
	CHECK(RP('y', "451 try later\0") == 0 && R.code == 451 && R.enh[0] == '\0');
	CHECK_STR(R.text, "try later");
	CHECK(RP('y', "550\0") == 0 && R.code == 550 && R.text[0] == '\0');
}

TEST(replycode_multi_line_and_percent_unescaping)
{
	CHECK(RP('y', "550-5.7.1 first\r\n550 5.7.1 100%% sure\0") == 0);
	CHECK(R.code == 550 && R.nlines == 2);
	CHECK_STR(R.enh, "5.7.1");
	CHECK_STR(R.text, "5.7.1 first\n5.7.1 100% sure");
	/* bare LF between lines is taken too */
	CHECK(RP('y', "450-a\n450 b\0") == 0 && R.nlines == 2);
	CHECK_STR(R.text, "a\nb");
}

TEST(replycode_that_is_not_a_4xx_5xx_smtp_reply_is_refused)
{
	CHECK(RP('y', "250 fine\0") == -1);		/* not a refusal */
	CHECK(RP('y', "560 nope\0") == -1);		/* second digit */
	CHECK(RP('y', "55x nope\0") == -1);
	CHECK(RP('y', "550_nope\0") == -1);		/* separator */
	CHECK(RP('y', "550 4.7.1 mixed\0") == -1);	/* class of the enh code */
	CHECK(RP('y', "550-a\r\n451 b\0") == -1);	/* codes differ */
	CHECK(RP('y', "550 a\r\n550 b\0") == -1);	/* ' ' before the last */
	CHECK(RP('y', "550-a\r\n550-b\0") == -1);	/* ends with '-' */
	CHECK(RP('y', "550 a\rb\0\0") == -1);		/* bare CR, 2 strings */
	CHECK(RP('y', "550 a\rbc\0") == -1);		/* bare CR */
	CHECK(RP('y', "550 ") == -1);			/* no NUL */
	CHECK(why != NULL);
}

TEST(replycode_text_with_control_bytes_is_made_printable)
{
	CHECK(RP('y', "550 a\x01\xff" "b\0") == 0);
	CHECK_STR(R.text, "a??b");
}

TEST(header_edits_layout_index_name_value)
{
	CHECK(RP('h', "X-Spam\0" "Yes, score=9\0") == 0);
	CHECK(R.cmd == SMFIR_ADDHEADER);
	CHECK_STR(R.name, "X-Spam");
	CHECK_STR(R.value, "Yes, score=9");
	CHECK(RP('i', "\0\0\0\0" "X-A\0" "one\0") == 0);
	CHECK(R.cmd == SMFIR_INSHEADER && R.index == 0);
	CHECK(RP('m', "\0\0\0\2" "Subject\0" "\0") == 0);
	CHECK(R.cmd == SMFIR_CHGHEADER && R.index == 2 && R.value[0] == '\0');	/* delete */
	CHECK(RP('h', "DKIM-Signature\0" "v=1;\r\n\tb=x\0") == 0);	/* folded */
	CHECK(RP('m', "\0\0\0\1") == -1);			/* no strings */
	CHECK(RP('i', "\0\0") == -1);				/* short index */
}

TEST(header_edit_that_would_inject_a_field_is_refused)
{
	CHECK(RP('h', "X-A\0" "a\nBcc: x@y\0") == -1);
	CHECK(RP('h', "X-A\0" "a\r\n\tb\r\0") == -1);	/* trailing bare CR */
	CHECK(RP('h', "X A\0" "val\0") == -1);		/* space in the name */
	CHECK(RP('h', "X:A\0" "val\0") == -1);
	CHECK(RP('h', "\0" "val\0") == -1);			/* empty name */
	CHECK(RP('h', "X-A\0" "val") == -1);		/* value not terminated */
	CHECK(RP('h', "X-A\0" "val\0z") == -1);		/* bytes after it */
}

TEST(recipient_sender_quarantine_and_body_edits)
{
	CHECK(RP('+', "<x@y.example>\0") == 0 && R.cmd == SMFIR_ADDRCPT);
	CHECK_STR(R.name, "<x@y.example>");
	CHECK(RP('-', "<x@y.example>\0") == 0 && R.cmd == SMFIR_DELRCPT);
	CHECK(RP('2', "<x@y.example>\0" "NOTIFY=NEVER\0") == 0);
	CHECK(R.cmd == SMFIR_ADDRCPT_PAR);
	CHECK_STR(R.value, "NOTIFY=NEVER");
	CHECK(RP('e', "<>\0") == 0 && R.cmd == SMFIR_CHGFROM && R.value == NULL);
	CHECK_STR(R.name, "<>");
	CHECK(RP('e', "<n@b.example>\0" "SIZE=1\0") == 0);
	CHECK_STR(R.value, "SIZE=1");
	CHECK(RP('q', "virus X\0") == 0 && R.cmd == SMFIR_QUARANTINE);
	CHECK_STR(R.name, "virus X");
	CHECK(RP('b', "new\r\n") == 0 && R.cmd == SMFIR_REPLBODY && R.bodylen == 5);
	CHECK(RP('+', "\0") == -1);				/* empty */
	CHECK(RP('+', "a\nb\0") == -1);			/* control byte */
	CHECK(RP('-', "abc") == -1);				/* no NUL */
}

/* ---- negotiation ---- */

static struct milter_optneg O;

static int
optneg(const void *bytes, size_t n)
{
	struct milter_packet pkt;
	size_t used;

	if (milter_frame(bytes, n, MILTER_PACKET_MAX, &pkt, &used, &why) != 1 || used != n)
		return -2;
	return milter_optneg_decode(&pkt, &O, &why);
}

#define OPTNEG(lit) optneg(lit, sizeof(lit) - 1)

TEST(optneg_reply_with_macro_lists_per_stage)
{
	CHECK(OPTNEG("\0\0\0\x0d" "O" "\0\0\0\6" "\0\0\0\x21" "\0\0\0\x10") == 0);
	CHECK(O.version == 6 && O.actions == 0x21 && O.protocol == 0x10);
	for (int i = 0; i < MILTER_STAGES; i++)
		CHECK(O.macros[i] == NULL);
	/* connect: "{client_addr} j", rcpt: "{rcpt_addr}", stage 9 (unknown, ignored) */
	CHECK(OPTNEG("\0\0\0\x37" "O" "\0\0\0\6" "\0\0\1\0" "\0\0\0\0"
	    "\0\0\0\0" "{client_addr} j\0" "\0\0\0\3" "{rcpt_addr}\0" "\0\0\0\x09" "x\0") == 0);
	CHECK_STR(O.macros[MILTER_STAGE_CONNECT], "{client_addr} j");
	CHECK_STR(O.macros[MILTER_STAGE_RCPT], "{rcpt_addr}");
	CHECK(O.macros[MILTER_STAGE_HELO] == NULL && O.unknown_stages == 1);
	CHECK(OPTNEG("\0\0\0\x09" "O" "\0\0\0\6" "\0\0\0\0") == -1);		/* two words */
	CHECK(OPTNEG("\0\0\0\x0f" "O" "\0\0\0\6" "\0\0\0\0" "\0\0\0\0" "\0\0") == -1);
	CHECK(OPTNEG("\0\0\0\x13" "O" "\0\0\0\6" "\0\0\0\0" "\0\0\0\0" "\0\0\0\0" "ab") == -1);
	CHECK(OPTNEG("\0\0\0\1c") == -1);
}

TEST(negotiation_refuses_what_was_not_offered)
{
	struct milter_optneg r = { .version = 6, .actions = SMFIF_ADDHDRS, .protocol = SMFIP_NR_HDR };
	struct milter_agreed a;

	CHECK(milter_negotiate(SMFIF_ALL, SMFIP_DEFINED, &r, &a, &why) == 0);
	CHECK(a.version == 6 && a.actions == SMFIF_ADDHDRS && a.protocol == SMFIP_NR_HDR);
	CHECK(milter_negotiate(SMFIF_ADDRCPT, SMFIP_DEFINED, &r, &a, &why) == -1);
	CHECK(milter_negotiate(SMFIF_ALL, SMFIP_NOCONNECT, &r, &a, &why) == -1);
	r.protocol = SMFIP_MDS_1M | SMFIP_NOBODY;	/* buffer-size bits are not steps */
	CHECK(milter_negotiate(SMFIF_ALL, SMFIP_DEFINED, &r, &a, &why) == 0);
	CHECK(a.protocol == SMFIP_NOBODY);
	r.version = 7;
	CHECK(milter_negotiate(SMFIF_ALL, SMFIP_DEFINED, &r, &a, &why) == -1);
	r.version = 1;
	CHECK(milter_negotiate(SMFIF_ALL, SMFIP_DEFINED, &r, &a, &why) == -1);
}

TEST(what_is_sent_and_answered_follows_the_agreement)
{
	struct milter_optneg r = { .version = 6, .protocol = SMFIP_NOHELO | SMFIP_NR_RCPT |
	    SMFIP_NR_HDR | SMFIP_SKIP };
	struct milter_agreed a;

	CHECK(milter_negotiate(SMFIF_ALL, SMFIP_DEFINED, &r, &a, &why) == 0);
	CHECK(milter_sends(&a, SMFIC_CONNECT) && !milter_sends(&a, SMFIC_HELO));
	CHECK(milter_sends(&a, SMFIC_MACRO) && milter_sends(&a, SMFIC_BODYEOB));
	CHECK(milter_sends(&a, SMFIC_DATA) && milter_sends(&a, SMFIC_UNKNOWN));
	CHECK(milter_replies(&a, SMFIC_MAIL) && !milter_replies(&a, SMFIC_RCPT));
	CHECK(!milter_replies(&a, SMFIC_HEADER) && milter_replies(&a, SMFIC_EOH));
	CHECK(milter_replies(&a, SMFIC_BODYEOB) && !milter_replies(&a, SMFIC_ABORT));
	CHECK(!milter_replies(&a, SMFIC_QUIT) && !milter_replies(&a, SMFIC_MACRO));
	/* version 2 knows neither DATA nor UNKNOWN */
	r.version = 2;
	r.protocol = 0;
	CHECK(milter_negotiate(SMFIF_ALL, SMFIP_DEFINED, &r, &a, &why) == 0);
	CHECK(!milter_sends(&a, SMFIC_DATA) && !milter_sends(&a, SMFIC_UNKNOWN));
	r.version = 3;
	CHECK(milter_negotiate(SMFIF_ALL, SMFIP_DEFINED, &r, &a, &why) == 0);
	CHECK(!milter_sends(&a, SMFIC_DATA) && milter_sends(&a, SMFIC_UNKNOWN));
}

TEST(replies_allowed_per_command)
{
	struct milter_optneg r = { .version = 6, .actions = SMFIF_ADDHDRS | SMFIF_QUARANTINE,
	    .protocol = SMFIP_SKIP };
	struct milter_agreed a;

	CHECK(milter_negotiate(SMFIF_ALL, SMFIP_DEFINED, &r, &a, &why) == 0);
	CHECK(milter_reply_allowed(&a, SMFIC_OPTNEG, SMFIR_OPTNEG));
	CHECK(!milter_reply_allowed(&a, SMFIC_OPTNEG, SMFIR_CONTINUE));
	CHECK(milter_reply_allowed(&a, SMFIC_CONNECT, SMFIR_REPLYCODE));
	CHECK(!milter_reply_allowed(&a, SMFIC_CONNECT, SMFIR_DISCARD));
	CHECK(!milter_reply_allowed(&a, SMFIC_HELO, SMFIR_DISCARD));
	CHECK(milter_reply_allowed(&a, SMFIC_RCPT, SMFIR_DISCARD));
	CHECK(milter_reply_allowed(&a, SMFIC_BODY, SMFIR_SKIP));
	CHECK(!milter_reply_allowed(&a, SMFIC_HEADER, SMFIR_SKIP));
	CHECK(milter_reply_allowed(&a, SMFIC_BODYEOB, SMFIR_ADDHEADER));
	CHECK(milter_reply_allowed(&a, SMFIC_BODYEOB, SMFIR_INSHEADER));
	CHECK(milter_reply_allowed(&a, SMFIC_BODYEOB, SMFIR_QUARANTINE));
	CHECK(!milter_reply_allowed(&a, SMFIC_BODYEOB, SMFIR_CHGHEADER));	/* not agreed */
	CHECK(!milter_reply_allowed(&a, SMFIC_BODYEOB, SMFIR_REPLBODY));
	CHECK(!milter_reply_allowed(&a, SMFIC_EOH, SMFIR_ADDHEADER));	/* not at EOB */
	CHECK(milter_reply_allowed(&a, SMFIC_HEADER, SMFIR_PROGRESS));
	CHECK(!milter_reply_allowed(&a, SMFIC_ABORT, SMFIR_CONTINUE));	/* no answer due */
	/* SKIP needs SMFIP_SKIP */
	r.protocol = 0;
	CHECK(milter_negotiate(SMFIF_ALL, SMFIP_DEFINED, &r, &a, &why) == 0);
	CHECK(!milter_reply_allowed(&a, SMFIC_BODY, SMFIR_SKIP));
	CHECK(milter_reply_final(SMFIR_CONTINUE) && milter_reply_final(SMFIR_REPLYCODE));
	CHECK(!milter_reply_final(SMFIR_PROGRESS) && !milter_reply_final(SMFIR_ADDHEADER));
}

TEST(header_format_writes_crlf_folds_and_the_space_after_the_colon)
{
	reset();
	milter_header_format(&B, "DKIM-Signature", "v=1;\r\n\tb=x", 0);
	CHECK(IS("DKIM-Signature: v=1;\r\n\tb=x\r\n"));
	reset();
	milter_header_format(&B, "X-A", " lead\n b", 1);
	CHECK(IS("X-A: lead\r\n b\r\n"));
	reset();
}

int
main(void)
{
	RUN(optneg_is_three_network_order_words);
	RUN(macro_packet_names_its_command_then_name_value_pairs);
	RUN(connect_carries_host_family_port_and_address);
	RUN(helo_mail_rcpt_header_unknown_are_nul_terminated_strings);
	RUN(body_chunks_are_bounded_and_data_free_commands_are_five_bytes);
	RUN(framing_waits_for_the_whole_packet_and_bounds_its_length);
	RUN(simple_replies_carry_no_data);
	RUN(replycode_single_line_keeps_code_enhanced_code_and_text);
	RUN(replycode_multi_line_and_percent_unescaping);
	RUN(replycode_that_is_not_a_4xx_5xx_smtp_reply_is_refused);
	RUN(replycode_text_with_control_bytes_is_made_printable);
	RUN(header_edits_layout_index_name_value);
	RUN(header_edit_that_would_inject_a_field_is_refused);
	RUN(recipient_sender_quarantine_and_body_edits);
	RUN(optneg_reply_with_macro_lists_per_stage);
	RUN(negotiation_refuses_what_was_not_offered);
	RUN(what_is_sent_and_answered_follows_the_agreement);
	RUN(replies_allowed_per_command);
	RUN(header_format_writes_crlf_folds_and_the_space_after_the_colon);
	T_EXIT();
}
