/*
 * retry — the retry schedule (see retry.h).
 */
#include <stdio.h>

#include "sched/retry.h"

unsigned
retry_backoff(const struct retry_params *p, unsigned attempts)
{
	unsigned long long v = p->retry_min;

	for (unsigned i = 1; i < attempts && v < p->retry_max; i++)
		v *= 2;
	return v > p->retry_max ? p->retry_max : (unsigned)v;
}

enum retry_verdict
retry_judge(const struct retry_params *p, time_t arrival, time_t now, int warned,
    int null_sender)
{
	if (now - arrival >= (time_t)p->queue_lifetime)
		return RETRY_EXPIRE;
	if (!warned && now - arrival >= (time_t)p->delay_warning && !null_sender)
		return RETRY_WARN;
	return RETRY_ATTEMPT;
}

void
retry_expired_diag(const struct retry_params *p, const char *last_error, char *out,
    size_t outlen)
{
	unsigned lt = p->queue_lifetime;

	snprintf(out, outlen, "x-imsd; message expired after %u %s in the queue "
	    "(queue_lifetime); last error: %s",
	    lt >= 86400 ? lt / 86400 : lt >= 3600 ? lt / 3600 : lt >= 60 ? lt / 60 : lt,
	    lt >= 86400 ? "days" : lt >= 3600 ? "hours" : lt >= 60 ? "minutes" : "seconds",
	    last_error != NULL && last_error[0] != '\0' ? last_error : "none");
}
