/*
 * imsd queue --json — see cli.h.
 *
 * One document:
 *   {"spool_dir": "...", "now": T, "count": N,
 *    "messages": [{"id", "sender", "arrival", "arrival_time", "age_seconds", "size",
 *                  "client", "helo",
 *                  "recipients": [{"address", "original", "state", "attempts", "status",
 *                                  "last_error", "next_retry", "next_retry_time"}]}],
 *    "unreadable": [{"id", "error"}]}
 * Times are seconds since the epoch, with an RFC 3339 UTC twin (*_time). state is
 * "pending", "delivered" or "failed"; next_retry is null when the recipient is not
 * pending or is due now. Every string goes through json_put_string.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "queue/queue.h"
#include "util/json.h"

static void
put_time(FILE *fp, time_t t)
{
	struct tm tm;
	char buf[32];

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_put_string(fp, buf);
}

static const char *
state_name(enum qrcpt_state s)
{
	return s == QR_DONE ? "delivered" : s == QR_FAILED ? "failed" : "pending";
}

static void
put_rcpt(FILE *fp, const struct qrcpt *r, time_t now)
{
	fputs("{\"address\": ", fp);
	json_put_string(fp, r->addr);
	fputs(", \"original\": ", fp);
	json_put_string(fp, r->orcpt && r->orcpt[0] ? r->orcpt : r->addr);
	fputs(", \"state\": ", fp);
	json_put_string(fp, state_name(r->state));
	fprintf(fp, ", \"attempts\": %u, \"status\": ", r->attempts);
	json_put_string(fp, r->status[0] ? r->status : NULL);
	fputs(", \"last_error\": ", fp);
	json_put_string(fp, r->last_error[0] ? r->last_error : NULL);
	if (r->state == QR_PENDING && r->next_try > now) {
		fprintf(fp, ", \"next_retry\": %lld, \"next_retry_time\": ", (long long)r->next_try);
		put_time(fp, r->next_try);
	} else
		fputs(", \"next_retry\": null, \"next_retry_time\": null", fp);
	fputc('}', fp);
}

int
cli_queue_json(const struct cfg *c)
{
	char err[1024], **ids;
	struct queue q;
	size_t n, nbad = 0, ngood = 0;
	time_t now = time(NULL);
	FILE *fp = stdout;

	if (cli_queue_open(c->conf.spool_dir, 0, &q, err, sizeof(err)) < 0 ||
	    queue_list(&q, &ids, &n, err, sizeof(err)) < 0) {
		fprintf(stderr, "imsd: %s\n", err);
		return 2;
	}
	char (*bad)[2][1024] = n ? calloc(n, sizeof(*bad)) : NULL;

	fputs("{\"spool_dir\": ", fp);
	json_put_string(fp, c->conf.spool_dir);
	fprintf(fp, ", \"now\": %lld, \"messages\": [", (long long)now);
	for (size_t k = 0; k < n; k++) {
		struct qenv env;
		uint64_t off, len;
		int fd;

		if (queue_load(&q, ids[k], &env, &fd, &off, &len, err, sizeof(err)) < 0) {
			if (bad != NULL) {
				snprintf(bad[nbad][0], sizeof(bad[nbad][0]), "%s", ids[k]);
				snprintf(bad[nbad][1], sizeof(bad[nbad][1]), "%s", err);
				nbad++;
			}
			continue;
		}
		close(fd);
		fputs(ngood++ ? ",\n  {\"id\": " : "\n  {\"id\": ", fp);
		json_put_string(fp, env.qid);
		fputs(", \"sender\": ", fp);
		json_put_string(fp, env.sender);
		fprintf(fp, ", \"arrival\": %lld, \"arrival_time\": ", (long long)env.arrival);
		put_time(fp, env.arrival);
		fprintf(fp, ", \"age_seconds\": %lld, \"size\": %llu, \"client\": ",
		    (long long)(now > env.arrival ? now - env.arrival : 0), (unsigned long long)len);
		json_put_string(fp, env.client);
		fputs(", \"helo\": ", fp);
		json_put_string(fp, env.helo);
		fputs(", \"recipients\": [", fp);
		for (size_t r = 0; r < env.nrcpts; r++) {
			fputs(r ? ", " : "", fp);
			put_rcpt(fp, &env.rcpts[r], now);
		}
		fputs("]}", fp);
		qenv_free(&env);
	}
	fprintf(fp, "%s], \"count\": %zu, \"unreadable\": [", ngood ? "\n" : "", ngood);
	for (size_t k = 0; k < nbad; k++) {
		fputs(k ? ", {\"id\": " : "{\"id\": ", fp);
		json_put_string(fp, bad[k][0]);
		fputs(", \"error\": ", fp);
		json_put_string(fp, bad[k][1]);
		fputc('}', fp);
	}
	fputs("]}\n", fp);
	free(bad);
	queue_list_free(ids, n);
	queue_close(&q);
	if (fflush(fp) != 0 || ferror(fp)) {
		perror("imsd: queue --json: stdout");
		return 2;
	}
	return 0;
}
