/* Unit tests for the journal encoders of src/queue/qfmt.c: what they write is what
 * qfmt_journal_apply reads back, and no reason can break a record. */
#include <stdlib.h>

#include "queue/qfmt.h"
#include "t.h"

static void
env3(struct qenv *e)
{
	memset(e, 0, sizeof(*e));
	e->nrcpts = 3;
	e->rcpts = calloc(3, sizeof(*e->rcpts));
}

TEST(encoded_records_are_the_documented_lines)
{
	char l[QFMT_JOURNAL_LINE_MAX];

	CHECK(qfmt_journal_done(2, l, sizeof(l)) == 7);
	CHECK_STR(l, "done 2\n");
	qfmt_journal_defer(0, 3, 1700000000, "x-imsd; connection refused", l, sizeof(l));
	CHECK_STR(l, "defer 0 3 1700000000 x-imsd; connection refused\n");
	qfmt_journal_fail(1, "5.1.1", "smtp; 550 5.1.1 no such user", l, sizeof(l));
	CHECK_STR(l, "fail 1 5.1.1 smtp; 550 5.1.1 no such user\n");
	CHECK(qfmt_journal_warned(l, sizeof(l)) == 7);
	CHECK_STR(l, "warned\n");
}

TEST(records_round_trip_through_apply)
{
	struct qenv e;
	char buf[4 * QFMT_JOURNAL_LINE_MAX], err[100];
	size_t n = 0;

	env3(&e);
	n += qfmt_journal_done(0, buf + n, sizeof(buf) - n);
	n += qfmt_journal_defer(1, 2, 1234567, "4.4.1 later", buf + n, sizeof(buf) - n);
	n += qfmt_journal_fail(2, "5.7.1", "denied", buf + n, sizeof(buf) - n);
	n += qfmt_journal_warned(buf + n, sizeof(buf) - n);
	CHECK(qfmt_journal_apply(buf, n, &e, err, sizeof(err)) == 0);
	CHECK(e.rcpts[0].state == QR_DONE);
	CHECK(e.rcpts[1].state == QR_PENDING);
	CHECK(e.rcpts[1].attempts == 2);
	CHECK(e.rcpts[1].next_try == 1234567);
	CHECK_STR(e.rcpts[1].last_error, "4.4.1 later");
	CHECK(e.rcpts[2].state == QR_FAILED);
	CHECK_STR(e.rcpts[2].status, "5.7.1");
	CHECK_STR(e.rcpts[2].last_error, "denied");
	CHECK(e.warned == 1);
	qenv_free(&e);
}

TEST(a_reason_with_line_breaks_and_8bit_bytes_stays_one_record)
{
	struct qenv e;
	char l[QFMT_JOURNAL_LINE_MAX], err[100];
	size_t n;

	env3(&e);
	n = qfmt_journal_fail(0, "5.0.0", "bad\r\ndone 1\n\xc3\xa9t\xc3\xa9", l, sizeof(l));
	CHECK_STR(l, "fail 0 5.0.0 bad  done 1   t  \n");
	CHECK(qfmt_journal_apply(l, n, &e, err, sizeof(err)) == 0);
	CHECK(e.rcpts[0].state == QR_FAILED);
	CHECK(e.rcpts[1].state == QR_PENDING);	/* the "done 1" inside was not a record */
	qenv_free(&e);
}

TEST(a_long_reason_is_cut_and_the_record_still_reads)
{
	struct qenv e;
	char l[QFMT_JOURNAL_LINE_MAX], err[100], big[2000];
	size_t n;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	env3(&e);
	n = qfmt_journal_defer(2, 1000000, 4102444800LL, big, l, sizeof(l));
	CHECK(n < sizeof(l));
	CHECK(l[n - 1] == '\n');
	CHECK(qfmt_journal_apply(l, n, &e, err, sizeof(err)) == 0);
	CHECK(e.rcpts[2].attempts == 1000000);
	CHECK(strlen(e.rcpts[2].last_error) == sizeof(e.rcpts[2].last_error) - 1);
	qenv_free(&e);
}

TEST(an_empty_or_odd_status_becomes_one_word)
{
	struct qenv e;
	char l[QFMT_JOURNAL_LINE_MAX], err[100];
	size_t n;

	env3(&e);
	qfmt_journal_fail(0, "", "why", l, sizeof(l));
	CHECK_STR(l, "fail 0 5.0.0 why\n");
	n = qfmt_journal_fail(1, "5.1.1 trailing words", "why", l, sizeof(l));
	CHECK_STR(l, "fail 1 5.1.1 why\n");
	CHECK(qfmt_journal_apply(l, n, &e, err, sizeof(err)) == 0);
	CHECK_STR(e.rcpts[1].status, "5.1.1");
	qenv_free(&e);
}

TEST(an_empty_reason_still_decodes)
{
	struct qenv e;
	char l[QFMT_JOURNAL_LINE_MAX], err[100];
	size_t n;

	env3(&e);
	n = qfmt_journal_defer(0, 1, 99, NULL, l, sizeof(l));
	CHECK_STR(l, "defer 0 1 99 \n");
	CHECK(qfmt_journal_apply(l, n, &e, err, sizeof(err)) == 0);
	CHECK(e.rcpts[0].attempts == 1);
	qenv_free(&e);
}

TEST(a_short_buffer_is_terminated_and_the_length_says_what_is_there)
{
	char l[6];

	CHECK(qfmt_journal_done(12345, l, sizeof(l)) == 5);
	CHECK_STR(l, "done ");
}

int
main(void)
{
	RUN(encoded_records_are_the_documented_lines);
	RUN(records_round_trip_through_apply);
	RUN(a_reason_with_line_breaks_and_8bit_bytes_stays_one_record);
	RUN(a_long_reason_is_cut_and_the_record_still_reads);
	RUN(an_empty_or_odd_status_becomes_one_word);
	RUN(an_empty_reason_still_decodes);
	RUN(a_short_buffer_is_terminated_and_the_length_says_what_is_there);
	T_EXIT();
}
