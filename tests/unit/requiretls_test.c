/* REQUIRETLS in the queue file (src/queue/qfmt.c): written only when set, read back, and
 * files written before it existed still load. */
#include <stdlib.h>

#include "t.h"
#include "queue/qfmt.h"

TEST(requiretls_round_trips_and_old_files_load)
{
	struct qenv e, d;
	struct qrcpt r = { .addr = "bob@dest.test", .orcpt = "bob@dest.test" };
	char *buf, err[200];
	size_t len, hl;

	memset(&e, 0, sizeof(e));
	strcpy(e.qid, "Q1");
	e.arrival = 1;
	e.sender = "alice@localhost";
	e.rcpts = &r;
	e.nrcpts = 1;
	e.requiretls = 1;
	CHECK(qfmt_header_encode(&e, &buf, &len) == 0);
	CHECK(strstr(buf, "\nrequiretls yes\n") != NULL);
	CHECK(qfmt_header_decode(buf, len, &d, &hl, err, sizeof(err)) == 0);
	CHECK(d.requiretls == 1);
	qenv_free(&d);
	free(buf);

	e.requiretls = 0;
	CHECK(qfmt_header_encode(&e, &buf, &len) == 0);
	CHECK(strstr(buf, "requiretls") == NULL);	/* unchanged for ordinary mail */
	free(buf);

	const char *old = "IMSDQ 1\nid A\narrival 1\nclient 1.2.3.4\nhelo h\nsender \nbody 7bit\n"
	    "rcpt a@b\ta@b\n\n";
	CHECK(qfmt_header_decode(old, strlen(old), &d, &hl, err, sizeof(err)) == 0);
	CHECK(d.requiretls == 0);
	qenv_free(&d);
	const char *bad = "IMSDQ 1\nid A\narrival 1\nclient 1.2.3.4\nhelo h\nsender \nbody 7bit\n"
	    "requiretls no\nrcpt a@b\ta@b\n\n";
	CHECK(qfmt_header_decode(bad, strlen(bad), &d, &hl, err, sizeof(err)) < 0);
	CHECK_STR(err, "bad requiretls");
}

int main(void)
{
	RUN(requiretls_round_trips_and_old_files_load);
	T_EXIT();
}
