/* Unit tests for src/proto/dovecot_auth.c. */
#include <stdlib.h>

#include "t.h"
#include "proto/dovecot_auth.h"

static int
parse(const char *line, struct dva_msg *m)
{
	return dva_parse(line, strlen(line), m);
}

/* Feed the lines of text (LF-separated) to a handshake; the last result. */
static int
handshake(const char *text, struct dva_handshake *h)
{
	struct dva_msg m;
	const char *p = text;
	int r = DVA_HS_MORE;

	dva_handshake_init(h);
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (dva_parse(p, len, &m) < 0)
			return -2;
		r = dva_handshake_feed(h, &m);
		if (r != DVA_HS_MORE)
			return r;
		p += len + (nl != NULL);
	}
	return r;
}

/* What Dovecot 2.3 sends on its auth-client socket (auth_mechanisms = plain login). */
static const char dovecot23[] =
	"VERSION\t1\t2\n"
	"MECH\tPLAIN\tplaintext\n"
	"MECH\tLOGIN\tplaintext\n"
	"SPID\t4242\n"
	"CUID\t7\n"
	"COOKIE\t0123456789abcdef0123456789abcdef\n"
	"DONE\n";

TEST(handshake_of_dovecot_23_lists_plain_and_login)
{
	struct dva_handshake h;

	CHECK(handshake(dovecot23, &h) == DVA_HS_DONE);
	CHECK(h.major == 1 && h.minor == 2);
	CHECK(h.spid == 4242);
	CHECK(h.nmechs == 2);
	CHECK(dva_handshake_has(&h, "PLAIN"));
	CHECK(dva_handshake_has(&h, "login"));
	CHECK(!dva_handshake_has(&h, "CRAM-MD5"));
	CHECK(h.mech_flags[0] & DVA_MECH_PLAINTEXT);
}

TEST(handshake_refuses_another_major_version)
{
	struct dva_handshake h;

	CHECK(handshake("VERSION\t2\t0\nMECH\tPLAIN\nDONE\n", &h) == DVA_HS_ERROR);
}

TEST(handshake_refuses_done_before_version_and_a_reply_before_done)
{
	struct dva_handshake h;

	CHECK(handshake("DONE\n", &h) == DVA_HS_ERROR);
	CHECK(handshake("MECH\tPLAIN\nVERSION\t1\t2\nDONE\n", &h) == DVA_HS_ERROR);
	CHECK(handshake("VERSION\t1\t2\nOK\t1\tuser=a\nDONE\n", &h) == DVA_HS_ERROR);
	CHECK(handshake("VERSION\t1\t2\nVERSION\t1\t2\nDONE\n", &h) == DVA_HS_ERROR);
}

TEST(handshake_ignores_unknown_commands_and_private_mechanisms)
{
	struct dva_handshake h;

	CHECK(handshake("VERSION\t1\t3\nFUTURE\tthing\nMECH\tXOAUTH2\tprivate\n"
	    "MECH\tSCRAM-SHA-256\tmutual-auth\nDONE\n", &h) == DVA_HS_DONE);
	CHECK(h.nmechs == 1);
	CHECK(dva_handshake_has(&h, "SCRAM-SHA-256"));
	CHECK(!dva_handshake_has(&h, "XOAUTH2"));
}

TEST(handshake_keeps_at_most_the_maximum_of_mechanisms)
{
	struct dva_handshake h;
	struct dva_msg m;
	char line[64];

	dva_handshake_init(&h);
	CHECK(parse("VERSION\t1\t2", &m) == 0 && dva_handshake_feed(&h, &m) == DVA_HS_MORE);
	for (int i = 0; i < DVA_MECHS_MAX + 10; i++) {
		snprintf(line, sizeof(line), "MECH\tX-%d", i);
		CHECK(parse(line, &m) == 0 && dva_handshake_feed(&h, &m) == DVA_HS_MORE);
	}
	CHECK(h.nmechs == DVA_MECHS_MAX);
	CHECK(parse("DONE", &m) == 0 && dva_handshake_feed(&h, &m) == DVA_HS_DONE);
	CHECK(dva_handshake_feed(&h, &m) == DVA_HS_ERROR);
}

TEST(ok_carries_the_canonical_user_name)
{
	struct dva_msg m;

	CHECK(parse("OK\t17\tuser=alice@example.org\tnologin", &m) == 0);
	CHECK(m.kind == DVA_OK && m.id == 17);
	CHECK_STR(m.user, "alice@example.org");
	CHECK(parse("OK\t1", &m) == 0 && m.kind == DVA_OK && m.user[0] == '\0');
}

TEST(fail_tells_temporary_from_permanent)
{
	struct dva_msg m;

	CHECK(parse("FAIL\t3\tuser=bob", &m) == 0);
	CHECK(m.kind == DVA_FAIL && m.id == 3 && !m.temp && !m.disabled);
	CHECK_STR(m.user, "bob");
	CHECK(parse("FAIL\t4\ttemp\treason=passdb unavailable", &m) == 0);
	CHECK(m.temp);
	CHECK_STR(m.reason, "passdb unavailable");
	CHECK(parse("FAIL\t5\tcode=temp_fail", &m) == 0 && m.temp);
	CHECK(parse("FAIL\t6\tcode=user_disabled", &m) == 0 && !m.temp && m.disabled);
	CHECK(parse("FAIL\t7\tcode=pass_expired", &m) == 0 && m.disabled);
	CHECK(parse("FAIL\t8\ttemporary", &m) == 0 && !m.temp);
}

TEST(cont_points_at_the_base64_challenge)
{
	struct dva_msg m;

	CHECK(parse("CONT\t2\tVXNlcm5hbWU6", &m) == 0);
	CHECK(m.kind == DVA_CONT && m.id == 2 && m.datalen == 12);
	CHECK(memcmp(m.data, "VXNlcm5hbWU6", 12) == 0);
	CHECK(parse("CONT\t2\t", &m) == 0 && m.datalen == 0);
	CHECK(parse("CONT\t2\tnot base64!", &m) == -1);
	CHECK(parse("CONT\t2", &m) == -1);
	CHECK(parse("CONT\t2\tAAAA\textra", &m) == -1);
}

TEST(replies_need_a_valid_id)
{
	struct dva_msg m;

	CHECK(parse("OK", &m) == -1);
	CHECK(parse("OK\t0", &m) == -1);
	CHECK(parse("OK\t-1", &m) == -1);
	CHECK(parse("OK\t4294967295", &m) == 0 && m.id == 4294967295UL);
	CHECK(parse("OK\t4294967296", &m) == -1);
	CHECK(parse("FAIL\tx", &m) == -1);
	CHECK(parse("OK\t12345678901", &m) == -1);
}

TEST(user_names_are_unescaped_and_control_characters_refused)
{
	struct dva_msg m;

	CHECK(parse("OK\t1\tuser=a\001tb", &m) == -1);	/* a TAB in a user name */
	CHECK(parse("OK\t1\tuser=a\0011b", &m) == -1);	/* \001 is a control character */
	CHECK(parse("OK\t1\tuser=a\001=b", &m) == 0);
	CHECK_STR(m.user, "a=b");
	CHECK(parse("OK\t1\tuser=a\0010", &m) == -1);	/* a NUL */
	CHECK(parse("OK\t1\tuser=a\001", &m) == -1);	/* a lone escape */
}

TEST(a_user_name_that_does_not_fit_makes_the_line_malformed)
{
	struct dva_msg m;
	char line[DVA_USER_MAX + 32];

	memcpy(line, "OK\t1\tuser=", 10);
	memset(line + 10, 'u', DVA_USER_MAX - 1);
	line[10 + DVA_USER_MAX - 1] = '\0';
	CHECK(parse(line, &m) == 0 && strlen(m.user) == DVA_USER_MAX - 1);
	line[10 + DVA_USER_MAX - 1] = 'u';
	line[10 + DVA_USER_MAX] = '\0';
	CHECK(parse(line, &m) == -1);
}

TEST(a_long_reason_is_cut_and_its_control_characters_blanked)
{
	struct dva_msg m;
	static char line[DVA_LINE_MAX];

	CHECK(parse("FAIL\t1\treason=bad\001nnews\001tx", &m) == 0);
	CHECK_STR(m.reason, "bad news x");
	memcpy(line, "FAIL\t1\treason=", 14);
	memset(line + 14, 'r', 1000);
	line[1014] = '\0';
	CHECK(parse(line, &m) == 0 && strlen(m.reason) == DVA_REASON_MAX - 1);
}

TEST(lines_over_the_limit_or_with_nul_are_malformed)
{
	struct dva_msg m;
	static char line[DVA_LINE_MAX + 2];

	memcpy(line, "FAIL\t1\treason=", 14);
	memset(line + 14, 'r', DVA_LINE_MAX - 14);
	CHECK(dva_parse(line, DVA_LINE_MAX, &m) == 0);
	line[DVA_LINE_MAX] = 'r';
	CHECK(dva_parse(line, DVA_LINE_MAX + 1, &m) == -1);
	CHECK(dva_parse("OK\t1\0x", 6, &m) == -1);
	CHECK(parse("", &m) == -1);
}

TEST(a_trailing_cr_is_tolerated)
{
	struct dva_msg m;

	CHECK(parse("DONE\r", &m) == 0 && m.kind == DVA_DONE);
	CHECK(parse("OK\t9\r", &m) == 0 && m.kind == DVA_OK && m.id == 9);
}

TEST(unknown_commands_are_other_and_mech_names_are_checked)
{
	struct dva_msg m;

	CHECK(parse("NEWTHING\ta\tb", &m) == 0 && m.kind == DVA_OTHER);
	CHECK(parse("MECH\tplain\tplaintext", &m) == 0);
	CHECK_STR(m.mech, "PLAIN");
	CHECK(parse("MECH\tBAD MECH", &m) == -1);
	CHECK(parse("MECH", &m) == -1);
	CHECK(parse("MECH\tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &m) == -1);
	CHECK(parse("VERSION\t1", &m) == -1);
	CHECK(parse("SPID\tabc", &m) == -1);
}

TEST(hello_is_version_and_cpid)
{
	char buf[64];

	CHECK(dva_hello(buf, sizeof(buf), 123) == (int)strlen("VERSION\t1\t1\nCPID\t123\n"));
	CHECK_STR(buf, "VERSION\t1\t1\nCPID\t123\n");
	CHECK(dva_hello(buf, 10, 123) == -1);
}

TEST(auth_line_carries_service_addresses_flags_and_response)
{
	char buf[512];
	struct dva_auth_req r = {
		.id = 5, .mech = "plain", .service = "smtp", .session = "66a1b2c30001",
		.lip = "127.0.0.1", .rip = "127.0.0.2", .lport = 587, .rport = 40000,
		.secured = 1, .no_penalty = 1, .resp = "AGFsaWNlAHNlY3JldA==",
	};

	CHECK(dva_auth_line(buf, sizeof(buf), &r) > 0);
	CHECK_STR(buf, "AUTH\t5\tPLAIN\tservice=smtp\tsession=66a1b2c30001\tlip=127.0.0.1"
	    "\trip=127.0.0.2\tlport=587\trport=40000\tsecured\tno-penalty"
	    "\tresp=AGFsaWNlAHNlY3JldA==\n");
	r.secured = 0;
	r.no_penalty = 0;
	r.session = r.lip = r.rip = NULL;
	r.lport = r.rport = 0;
	r.resp = NULL;
	CHECK(dva_auth_line(buf, sizeof(buf), &r) > 0);
	CHECK_STR(buf, "AUTH\t5\tPLAIN\tservice=smtp\n");
	r.resp = "";
	CHECK(dva_auth_line(buf, sizeof(buf), &r) > 0);
	CHECK_STR(buf, "AUTH\t5\tPLAIN\tservice=smtp\tresp=\n");
}

TEST(auth_line_escapes_values_and_refuses_what_cannot_be_sent)
{
	char buf[512];
	struct dva_auth_req r = { .id = 1, .mech = "LOGIN", .service = "smtp",
	    .session = "a\tb\nc" };

	CHECK(dva_auth_line(buf, sizeof(buf), &r) > 0);
	CHECK_STR(buf, "AUTH\t1\tLOGIN\tservice=smtp\tsession=a\001tb\001nc\n");
	r.session = NULL;
	r.resp = "not\tbase64";
	CHECK(dva_auth_line(buf, sizeof(buf), &r) == -1);
	r.resp = NULL;
	r.id = 0;
	CHECK(dva_auth_line(buf, sizeof(buf), &r) == -1);
	r.id = 1;
	r.mech = "PL AIN";
	CHECK(dva_auth_line(buf, sizeof(buf), &r) == -1);
	r.mech = "PLAIN";
	CHECK(dva_auth_line(buf, 20, &r) == -1);
	CHECK(dva_auth_line(buf, 26, &r) == -1);	/* one short of the LF and NUL */
	CHECK(dva_auth_line(buf, 27, &r) == 26);
}

TEST(cont_line_answers_a_challenge)
{
	char buf[64];

	CHECK(dva_cont_line(buf, sizeof(buf), 2, "YWxpY2U=") > 0);
	CHECK_STR(buf, "CONT\t2\tYWxpY2U=\n");
	CHECK(dva_cont_line(buf, sizeof(buf), 2, "a\tb") == -1);
	CHECK(dva_cont_line(buf, 8, 2, "YWxpY2U=") == -1);
}

TEST(escape_and_unescape_round_trip)
{
	const char *s = "a\tb\rc\nd\001e";
	char esc[64], back[64];

	CHECK(dva_escape(s, esc, sizeof(esc)) == 13);
	CHECK(strchr(esc, '\t') == NULL && strchr(esc, '\n') == NULL);
	CHECK(dva_unescape(esc, strlen(esc), back, sizeof(back)) == (int)strlen(s));
	CHECK_STR(back, s);
	CHECK(dva_escape(s, esc, 13) == -1);
	CHECK(dva_unescape("abc", 3, back, 3) == -1);
	CHECK(dva_unescape("abc", 3, back, 4) == 3);
	CHECK(dva_unescape("a\001\0b", 4, back, sizeof(back)) == -1);	/* an escaped NUL */
	CHECK(dva_unescape("a\0b", 3, back, sizeof(back)) == -1);
}

int main(void)
{
	RUN(handshake_of_dovecot_23_lists_plain_and_login);
	RUN(handshake_refuses_another_major_version);
	RUN(handshake_refuses_done_before_version_and_a_reply_before_done);
	RUN(handshake_ignores_unknown_commands_and_private_mechanisms);
	RUN(handshake_keeps_at_most_the_maximum_of_mechanisms);
	RUN(ok_carries_the_canonical_user_name);
	RUN(fail_tells_temporary_from_permanent);
	RUN(cont_points_at_the_base64_challenge);
	RUN(replies_need_a_valid_id);
	RUN(user_names_are_unescaped_and_control_characters_refused);
	RUN(a_user_name_that_does_not_fit_makes_the_line_malformed);
	RUN(a_long_reason_is_cut_and_its_control_characters_blanked);
	RUN(lines_over_the_limit_or_with_nul_are_malformed);
	RUN(a_trailing_cr_is_tolerated);
	RUN(unknown_commands_are_other_and_mech_names_are_checked);
	RUN(hello_is_version_and_cpid);
	RUN(auth_line_carries_service_addresses_flags_and_response);
	RUN(auth_line_escapes_values_and_refuses_what_cannot_be_sent);
	RUN(cont_line_answers_a_challenge);
	RUN(escape_and_unescape_round_trip);
	T_EXIT();
}
