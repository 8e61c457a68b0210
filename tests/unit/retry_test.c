/* Unit tests for src/sched/retry.c: the backoff, expiry and delay-warning schedule. */
#include "sched/retry.h"
#include "t.h"

static const struct retry_params spec = { 300, 3600, 5 * 86400, 4 * 3600 };	/* SPEC defaults */

TEST(first_retry_after_retry_min_then_doubling_up_to_retry_max)
{
	CHECK(retry_backoff(&spec, 1) == 300);
	CHECK(retry_backoff(&spec, 2) == 600);
	CHECK(retry_backoff(&spec, 3) == 1200);
	CHECK(retry_backoff(&spec, 4) == 2400);
	CHECK(retry_backoff(&spec, 5) == 3600);		/* 4800 capped */
	CHECK(retry_backoff(&spec, 6) == 3600);
}

TEST(backoff_never_overflows_for_huge_attempt_counts)
{
	struct retry_params p = { 4000000000u, 4294967295u, 1, 1 };

	CHECK(retry_backoff(&p, 1) == 4000000000u);
	CHECK(retry_backoff(&p, 2) == 4294967295u);
	CHECK(retry_backoff(&spec, 1000000) == 3600);
}

TEST(backoff_with_min_equal_max_is_constant)
{
	struct retry_params p = { 60, 60, 86400, 3600 };

	for (unsigned a = 1; a < 10; a++)
		CHECK(retry_backoff(&p, a) == 60);
}

TEST(attempt_zero_reads_as_the_first_retry)
{
	CHECK(retry_backoff(&spec, 0) == 300);
}

TEST(a_young_message_is_attempted)
{
	CHECK(retry_judge(&spec, 1000, 1000, 0, 0) == RETRY_ATTEMPT);
	CHECK(retry_judge(&spec, 1000, 1000 + 4 * 3600 - 1, 0, 0) == RETRY_ATTEMPT);
}

TEST(after_delay_warning_one_notice_then_attempts)
{
	CHECK(retry_judge(&spec, 1000, 1000 + 4 * 3600, 0, 0) == RETRY_WARN);
	CHECK(retry_judge(&spec, 1000, 1000 + 4 * 3600, 1, 0) == RETRY_ATTEMPT);
}

TEST(the_null_sender_is_never_warned)
{
	CHECK(retry_judge(&spec, 1000, 1000 + 4 * 3600, 0, 1) == RETRY_ATTEMPT);
}

TEST(after_queue_lifetime_the_message_expires_even_unwarned)
{
	CHECK(retry_judge(&spec, 1000, 1000 + 5 * 86400, 0, 0) == RETRY_EXPIRE);
	CHECK(retry_judge(&spec, 1000, 1000 + 5 * 86400, 1, 1) == RETRY_EXPIRE);
	CHECK(retry_judge(&spec, 1000, 1000 + 5 * 86400 - 1, 1, 0) == RETRY_ATTEMPT);
}

TEST(a_clock_that_went_back_does_not_expire_anything)
{
	CHECK(retry_judge(&spec, 100000, 50000, 0, 0) == RETRY_ATTEMPT);
}

TEST(expired_diag_names_the_lifetime_in_its_largest_unit_and_the_last_error)
{
	char d[300];
	struct retry_params p = spec;

	retry_expired_diag(&p, "x-imsd; connection refused", d, sizeof(d));
	CHECK_STR(d, "x-imsd; message expired after 5 days in the queue (queue_lifetime); "
	    "last error: x-imsd; connection refused");
	p.queue_lifetime = 7200;
	retry_expired_diag(&p, "", d, sizeof(d));
	CHECK_STR(d, "x-imsd; message expired after 2 hours in the queue (queue_lifetime); "
	    "last error: none");
	p.queue_lifetime = 120;
	retry_expired_diag(&p, NULL, d, sizeof(d));
	CHECK_STR(d, "x-imsd; message expired after 2 minutes in the queue (queue_lifetime); "
	    "last error: none");
	p.queue_lifetime = 30;
	retry_expired_diag(&p, NULL, d, sizeof(d));
	CHECK_STR(d, "x-imsd; message expired after 30 seconds in the queue (queue_lifetime); "
	    "last error: none");
}

int
main(void)
{
	RUN(first_retry_after_retry_min_then_doubling_up_to_retry_max);
	RUN(backoff_never_overflows_for_huge_attempt_counts);
	RUN(backoff_with_min_equal_max_is_constant);
	RUN(attempt_zero_reads_as_the_first_retry);
	RUN(a_young_message_is_attempted);
	RUN(after_delay_warning_one_notice_then_attempts);
	RUN(the_null_sender_is_never_warned);
	RUN(after_queue_lifetime_the_message_expires_even_unwarned);
	RUN(a_clock_that_went_back_does_not_expire_anything);
	RUN(expired_diag_names_the_lifetime_in_its_largest_unit_and_the_last_error);
	T_EXIT();
}
