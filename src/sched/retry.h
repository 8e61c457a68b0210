/*
 * retry — the retry schedule of a queued message (SPEC: "Relaying, retries and bounces").
 *
 * PURE: numbers in, a verdict out; no clock (now is passed in), no I/O. The queue manager
 * asks retry_judge before each attempt and retry_backoff after each temporary failure, so
 * the schedule can be tested without a queue.
 *
 *   backoff   the first retry after retry_min, each later interval doubled up to retry_max
 *             (attempts counts the failures so far, 1 for the first);
 *   expire    after queue_lifetime in the queue the message is bounced (5.4.7) for every
 *             recipient still pending;
 *   warn      after delay_warning, one delay notice to the sender (never to <>).
 */
#ifndef IMSD_RETRY_H
#define IMSD_RETRY_H

#include <stddef.h>
#include <time.h>

struct retry_params {
	unsigned retry_min, retry_max;		/* seconds */
	unsigned queue_lifetime, delay_warning;	/* seconds */
};

/* Seconds to wait after the attempts-th temporary failure (attempts >= 1). */
unsigned retry_backoff(const struct retry_params *p, unsigned attempts);

enum retry_verdict {
	RETRY_ATTEMPT,	/* deliver what is due */
	RETRY_EXPIRE,	/* too old: bounce every pending recipient */
	RETRY_WARN,	/* send the delay notice first (then attempt) */
};

/* What is due for a message that arrived at arrival, judged at now; warned: its delay
 * notice was sent; null_sender: its sender is <> (never warned). Expiry wins over the
 * warning. */
enum retry_verdict retry_judge(const struct retry_params *p, time_t arrival, time_t now,
    int warned, int null_sender);

/* The diagnostic of an expired recipient: "x-imsd; message expired after 5 days in the
 * queue (queue_lifetime); last error: ..." (last_error NULL or "" reads "none"). */
void retry_expired_diag(const struct retry_params *p, const char *last_error, char *out,
    size_t outlen);

#endif
