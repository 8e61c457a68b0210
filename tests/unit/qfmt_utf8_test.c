/*
 * qfmt_utf8_test — queue files carry UTF-8 addresses and the smtputf8 flag (RFC 6531);
 * files written before either existed still load.
 */
#include <stdlib.h>

#include "t.h"
#include "queue/qfmt.h"

static int
decode(const char *text, struct qenv *e)
{
	size_t hl;
	char err[200];

	return qfmt_header_decode(text, strlen(text), e, &hl, err, sizeof(err));
}

TEST(utf8_addresses_and_flag_round_trip)
{
	struct qrcpt r = { .addr = "j\xc3\xb6ran@xn--bcher-kva.example",
		.orcpt = "J\xc3\xb6ran@B\xc3\xbc" "cher.example" };
	struct qenv env = { .qid = "q1", .arrival = 5, .sender = "\xe7\x94\xa8@x.example",
		.smtputf8 = 1, .rcpts = &r, .nrcpts = 1 }, d;
	char *out;
	size_t len;

	CHECK(qfmt_header_encode(&env, &out, &len) == 0);
	CHECK(strstr(out, "\nsmtputf8 yes\n") != NULL);
	CHECK(decode(out, &d) == 0);
	CHECK(d.smtputf8 == 1);
	CHECK_STR(d.sender, env.sender);
	CHECK(d.nrcpts == 1);
	if (d.nrcpts == 1) {
		CHECK_STR(d.rcpts[0].addr, r.addr);
		CHECK_STR(d.rcpts[0].orcpt, r.orcpt);
	}
	qenv_free(&d);
	free(out);
}

TEST(old_file_without_the_flag_loads_as_ascii)
{
	struct qenv d;

	CHECK(decode("IMSDQ 1\nid q\narrival 1\nclient c\nhelo h\nsender a@b\nbody 7bit\n"
	    "rcpt x@y\tx@y\n\n", &d) == 0);
	CHECK(d.smtputf8 == 0);
	qenv_free(&d);
}

TEST(malformed_utf8_and_bad_flags_are_refused)
{
	struct qenv d;
	struct qrcpt r = { .addr = "a\xc0\xaf@x", .orcpt = "a@x" };
	struct qenv env = { .qid = "q1", .sender = "", .rcpts = &r, .nrcpts = 1 };
	char *out;
	size_t len;

	CHECK(decode("IMSDQ 1\nid q\narrival 1\nclient c\nhelo h\nsender a\xed\xa0\x80@b\n"
	    "rcpt x@y\tx@y\n\n", &d) == -1);
	CHECK(decode("IMSDQ 1\nid q\narrival 1\nclient c\nhelo h\nsender a@b\n"
	    "rcpt x\xc2\x85@y\tx@y\n\n", &d) == -1);
	/* UTF-8 only in addresses: not in the helo */
	CHECK(decode("IMSDQ 1\nid q\narrival 1\nclient c\nhelo h\xc3\xa4\nsender a@b\n"
	    "rcpt x@y\tx@y\n\n", &d) == -1);
	CHECK(decode("IMSDQ 1\nid q\narrival 1\nclient c\nhelo h\nsender a@b\nsmtputf8 no\n"
	    "rcpt x@y\tx@y\n\n", &d) == -1);
	CHECK(decode("IMSDQ 1\nid q\narrival 1\nclient c\nhelo h\nsender a@b\nsmtputf8 yes\n"
	    "smtputf8 yes\nrcpt x@y\tx@y\n\n", &d) == -1);
	CHECK(qfmt_header_encode(&env, &out, &len) == -1);
}

int
main(void)
{
	RUN(utf8_addresses_and_flag_round_trip);
	RUN(old_file_without_the_flag_loads_as_ascii);
	RUN(malformed_utf8_and_bad_flags_are_refused);
	T_EXIT();
}
