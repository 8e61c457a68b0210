/* dsnparam and the queue format's DSN records: xtext, RET/ENVID/NOTIFY/ORCPT, qfmt. */
#include <stdlib.h>

#include "proto/dsnparam.h"
#include "queue/qfmt.h"
#include "t.h"

TEST(xtext_decodes_hex_escapes_and_refuses_bad_bytes)
{
	char out[64];
	const char *why = NULL;

	CHECK(xtext_decode("a+2Bb+3Dc", 9, out, sizeof(out), &why) == 5);
	CHECK_STR(out, "a+b=c");
	CHECK(xtext_decode("x+2b", 4, out, sizeof(out), &why) == 2);	/* lower-case hex too */
	CHECK_STR(out, "x+");
	CHECK(xtext_decode("a+2", 3, out, sizeof(out), &why) < 0);
	CHECK(xtext_decode("a+", 2, out, sizeof(out), &why) < 0);
	CHECK(xtext_decode("a+G0", 4, out, sizeof(out), &why) < 0);
	CHECK(xtext_decode("a=b", 3, out, sizeof(out), &why) < 0);
	CHECK(xtext_decode("a b", 3, out, sizeof(out), &why) < 0);
	CHECK(xtext_decode("a\x80", 2, out, sizeof(out), &why) < 0);
	CHECK(xtext_decode("abcdef", 6, out, 4, &why) < 0);	/* does not fit */
	CHECK(xtext_decode("", 0, out, sizeof(out), &why) == 0);
}

TEST(xtext_encode_round_trips)
{
	char enc[64], dec[64];
	const char *why;
	const char *s = "a b+c=d\x01~";

	CHECK(xtext_encode(s, strlen(s), enc, sizeof(enc)) > 0);
	CHECK_STR(enc, "a+20b+2Bc+3Dd+01~");
	CHECK(xtext_decode(enc, strlen(enc), dec, sizeof(dec), &why) == (int)strlen(s));
	CHECK_STR(dec, s);
	CHECK(xtext_encode("++", 2, enc, 6) < 0);	/* needs 7 */
	CHECK(xtext_encode("++", 2, enc, 7) == 6);
}

TEST(ret_accepts_full_and_hdrs_only)
{
	enum dsn_ret r;
	const char *why;

	CHECK(dsn_ret_parse("FULL", 4, &r, &why) == 0 && r == DSN_RET_FULL);
	CHECK(dsn_ret_parse("hdrs", 4, &r, &why) == 0 && r == DSN_RET_HDRS);
	CHECK(dsn_ret_parse("BODY", 4, &r, &why) < 0);
	CHECK(dsn_ret_parse("", 0, &r, &why) < 0);
}

TEST(envid_limits_and_canonical_form)
{
	char out[DSN_ENVID_MAX + 1], big[200];
	const char *why;

	CHECK(dsn_envid_parse("QQ+2b1", 6, out, &why) == 0);
	CHECK_STR(out, "QQ+2B1");
	memset(big, 'x', sizeof(big));
	CHECK(dsn_envid_parse(big, 100, out, &why) == 0);
	CHECK(dsn_envid_parse(big, 101, out, &why) < 0);
	CHECK(strstr(why, "100") != NULL);
	CHECK(dsn_envid_parse("a+0Ab", 5, out, &why) < 0);	/* decodes to a control byte */
	CHECK(dsn_envid_parse("", 0, out, &why) < 0);
	CHECK(dsn_envid_field("QQ+2B1", out, sizeof(out)) == 4);
	CHECK_STR(out, "QQ+1");
}

TEST(notify_lists_and_never)
{
	unsigned m;
	const char *why;
	char buf[32];

	CHECK(dsn_notify_parse("NEVER", 5, &m, &why) == 0 && m == DSN_NOTIFY_NEVER);
	CHECK(dsn_notify_parse("success,Delay", 13, &m, &why) == 0 &&
	    m == (DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY));
	CHECK(dsn_notify_parse("SUCCESS,FAILURE,DELAY", 21, &m, &why) == 0 && m == 7);
	CHECK(dsn_notify_parse("NEVER,SUCCESS", 13, &m, &why) < 0);
	CHECK(dsn_notify_parse("SUCCESS,SUCCESS", 15, &m, &why) < 0);
	CHECK(dsn_notify_parse("SUCCESS,", 8, &m, &why) < 0);
	CHECK(dsn_notify_parse("", 0, &m, &why) < 0);
	CHECK(dsn_notify_parse("ALWAYS", 6, &m, &why) < 0);
	dsn_notify_format(DSN_NOTIFY_DELAY | DSN_NOTIFY_SUCCESS, buf, sizeof(buf));
	CHECK_STR(buf, "SUCCESS,DELAY");
	dsn_notify_format(DSN_NOTIFY_NEVER, buf, sizeof(buf));
	CHECK_STR(buf, "NEVER");
	dsn_notify_format(0, buf, sizeof(buf));
	CHECK_STR(buf, "");
}

TEST(orcpt_types_xtext_and_limit)
{
	char out[DSN_ORCPT_MAX + 1], field[600], big[600];
	const char *why;
	const char *u = "utf-8;j\\x{00F6}ran@example.com";

	CHECK(dsn_orcpt_parse("RFC822;bob+2Bx@example.org", 26, out, &why) == 0);
	CHECK_STR(out, "rfc822;bob+2Bx@example.org");
	CHECK(dsn_orcpt_field(out, field, sizeof(field)) > 0);
	CHECK_STR(field, "rfc822; bob+x@example.org");
	CHECK(dsn_orcpt_parse(u, strlen(u), out, &why) == 0);
	CHECK_STR(out, "utf-8;j\\x{00F6}ran@example.com");
	CHECK(dsn_orcpt_field(out, field, sizeof(field)) > 0);
	CHECK_STR(field, "utf-8; j\\x{00F6}ran@example.com");
	CHECK(dsn_orcpt_parse("utf-8;a\\x{41}@b", 15, out, &why) < 0);	/* 'A' needs no escape */
	CHECK(dsn_orcpt_parse("utf-8;a\\x{0}@b", 14, out, &why) < 0);
	CHECK(dsn_orcpt_parse("utf-8;a+2B@b", 12, out, &why) < 0);
	CHECK(dsn_orcpt_parse("x400;foo", 8, out, &why) < 0);
	CHECK(dsn_orcpt_parse("rfc822", 6, out, &why) < 0);
	CHECK(dsn_orcpt_parse("rfc822;", 7, out, &why) < 0);
	CHECK(dsn_orcpt_parse(";a@b", 4, out, &why) < 0);
	CHECK(dsn_orcpt_parse("rfc822;nobody", 13, out, &why) < 0);	/* no '@' */
	CHECK(dsn_orcpt_parse("rfc822;a+0A@b", 13, out, &why) < 0);	/* LF */
	memcpy(big, "rfc822;", 7);
	memset(big + 7, 'a', sizeof(big) - 7);
	big[300] = '@';
	CHECK(dsn_orcpt_parse(big, 500, out, &why) == 0);
	CHECK(dsn_orcpt_parse(big, 501, out, &why) < 0);
	CHECK(strstr(why, "500") != NULL);
}

static const char OLD[] =
    "IMSDQ 1\nid Q1\narrival 100\nclient 127.0.0.1\nhelo h\nsender a@x\nbody 7bit\n"
    "rcpt b@y\tb@y\n\n";

TEST(qfmt_old_file_without_dsn_records_loads_as_nothing_requested)
{
	struct qenv e;
	size_t hl;
	char err[128];

	CHECK(qfmt_header_decode(OLD, sizeof(OLD) - 1, &e, &hl, err, sizeof(err)) == 0);
	CHECK(e.dsn_ret == DSN_RET_NONE && e.envid[0] == '\0');
	CHECK(e.nrcpts == 1 && e.rcpts[0].notify == 0 && e.rcpts[0].dsn_orcpt == NULL);
	qenv_free(&e);
}

TEST(qfmt_dsn_records_round_trip)
{
	struct qenv e, d;
	struct qrcpt r[2];
	char *out, err[128];
	size_t outlen, hl;

	memset(&e, 0, sizeof(e));
	memset(r, 0, sizeof(r));
	strcpy(e.qid, "Q2");
	e.arrival = 5;
	e.sender = (char *)"s@x";
	e.dsn_ret = DSN_RET_HDRS;
	strcpy(e.envid, "ENV+2B1");
	r[0].addr = (char *)"b@y";
	r[0].orcpt = (char *)"alias@y";
	r[0].notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE;
	r[0].dsn_orcpt = (char *)"rfc822;B@Y";
	r[1].addr = (char *)"c@y";
	r[1].orcpt = (char *)"c@y";
	e.rcpts = r;
	e.nrcpts = 2;
	CHECK(qfmt_header_encode(&e, &out, &outlen) == 0);
	CHECK(strstr(out, "ret HDRS\nenvid ENV+2B1\n") != NULL);
	CHECK(strstr(out, "rcpt b@y\talias@y\nrdsn SUCCESS,FAILURE\trfc822;B@Y\nrcpt c@y\tc@y\n\n")
	    != NULL);
	CHECK(qfmt_header_decode(out, outlen, &d, &hl, err, sizeof(err)) == 0);
	CHECK(hl == outlen);
	CHECK(d.dsn_ret == DSN_RET_HDRS);
	CHECK_STR(d.envid, "ENV+2B1");
	CHECK(d.nrcpts == 2 && d.rcpts[0].notify == 3 && d.rcpts[1].notify == 0);
	CHECK_STR(d.rcpts[0].dsn_orcpt, "rfc822;B@Y");
	CHECK(d.rcpts[1].dsn_orcpt == NULL);
	qenv_free(&d);
	free(out);
}

static int
decodes(const char *hdr)
{
	struct qenv e;
	size_t hl;
	char err[128];
	int r = qfmt_header_decode(hdr, strlen(hdr), &e, &hl, err, sizeof(err));

	if (r == 0)
		qenv_free(&e);
	return r;
}

TEST(qfmt_refuses_misplaced_or_malformed_dsn_records)
{
#define H "IMSDQ 1\nid Q1\narrival 100\nsender a@x\n"
	CHECK(decodes(H "rcpt b@y\tb@y\nrdsn NEVER\t\n\n") == 0);
	CHECK(decodes(H "rdsn NEVER\t\nrcpt b@y\tb@y\n\n") < 0);		/* before any rcpt */
	CHECK(decodes(H "rcpt b@y\tb@y\nrdsn NEVER\t\nrdsn NEVER\t\n\n") < 0);	/* twice */
	CHECK(decodes(H "rcpt b@y\tb@y\nbody 7bit\nrdsn NEVER\t\n\n") < 0);	/* not right after */
	CHECK(decodes(H "rcpt b@y\tb@y\nrdsn NEVER\n\n") < 0);			/* no tab */
	CHECK(decodes(H "rcpt b@y\tb@y\nrdsn \t\n\n") < 0);			/* empty */
	CHECK(decodes(H "rcpt b@y\tb@y\nrdsn BOGUS\t\n\n") < 0);
	CHECK(decodes(H "rcpt b@y\tb@y\nrdsn \tx400;a\n\n") < 0);
	CHECK(decodes(H "ret FULL\nrcpt b@y\tb@y\n\n") == 0);
	CHECK(decodes(H "ret FULL\nret HDRS\nrcpt b@y\tb@y\n\n") < 0);
	CHECK(decodes(H "ret ALL\nrcpt b@y\tb@y\n\n") < 0);
	CHECK(decodes(H "envid a=b\nrcpt b@y\tb@y\n\n") < 0);
	CHECK(decodes(H "envid ab\nenvid ab\nrcpt b@y\tb@y\n\n") < 0);
#undef H
}

int
main(void)
{
	RUN(xtext_decodes_hex_escapes_and_refuses_bad_bytes);
	RUN(xtext_encode_round_trips);
	RUN(ret_accepts_full_and_hdrs_only);
	RUN(envid_limits_and_canonical_form);
	RUN(notify_lists_and_never);
	RUN(orcpt_types_xtext_and_limit);
	RUN(qfmt_old_file_without_dsn_records_loads_as_nothing_requested);
	RUN(qfmt_dsn_records_round_trip);
	RUN(qfmt_refuses_misplaced_or_malformed_dsn_records);
	return t_tests_failed != 0;
}
