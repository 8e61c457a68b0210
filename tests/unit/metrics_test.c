/* metrics_test — counters from many threads, and the exposition format. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "util/metrics.h"

#define THREADS 4
#define PER_THREAD 100000

static void *
hammer(void *arg)
{
	for (int i = 0; i < PER_THREAD; i++) {
		metrics_inc(M_MSG_RECEIVED);
		metrics_gauge_add(MG_CONNECTIONS, 1);
		metrics_gauge_add(MG_CONNECTIONS, -1);
		metrics_observe(MH_COMMIT_BATCH, (uint64_t)(i % 300));
	}
	return NULL;
}

static const char *
line(const char *text, const char *prefix)
{
	static char buf[256];
	const char *p = text;

	while (p != NULL && *p) {
		if (strncmp(p, prefix, strlen(prefix)) == 0) {
			size_t n = strcspn(p, "\n");
			if (n >= sizeof(buf))
				n = sizeof(buf) - 1;
			memcpy(buf, p, n);
			buf[n] = '\0';
			return buf;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return "(none)";
}

TEST(counters_from_several_threads_lose_nothing)
{
	pthread_t t[THREADS];

	metrics_reset();
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, hammer, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK(metrics_get(M_MSG_RECEIVED) == THREADS * PER_THREAD);
	CHECK(metrics_gauge_get(MG_CONNECTIONS) == 0);

	char *out;
	size_t len;
	CHECK(metrics_render(NULL, &out, &len) == 0);
	CHECK(strlen(out) == len);
	CHECK_STR(line(out, "imsd_commit_batch_size_count"), "imsd_commit_batch_size_count 400000");
	CHECK_STR(line(out, "imsd_commit_batch_size_bucket{le=\"+Inf\"}"),
	    "imsd_commit_batch_size_bucket{le=\"+Inf\"} 400000");
	/* values 0 and 1 of every 300 go to le="1" */
	CHECK_STR(line(out, "imsd_commit_batch_size_bucket{le=\"1\"}"),
	    "imsd_commit_batch_size_bucket{le=\"1\"} 2672");
	free(out);
}

TEST(exposition_has_help_type_suffixes_and_histograms)
{
	struct metrics_dynamic d = { .have_queue = 1, .queue_messages = 3, .queue_recipients = 5,
	    .queue_oldest_age = 42, .version = "1.2\"x", .start_time = 1700000000 };
	char *out;
	size_t len;

	metrics_reset();
	metrics_inc(M_STARTTLS_REFUSED_LOOPBACK);
	metrics_add(M_RCPT_DELIVERED, 7);
	metrics_observe(MH_COMMIT_FSYNC, 1500);		/* 1.5 ms */
	metrics_observe(MH_COMMIT_FSYNC, 3000000);	/* 3 s: only +Inf */
	CHECK(metrics_render(&d, &out, &len) == 0);
	CHECK(strstr(out, "# HELP imsd_messages_received_total ") != NULL);
	CHECK(strstr(out, "# TYPE imsd_messages_received_total counter\n") != NULL);
	CHECK(strstr(out, "imsd_starttls_refused_total{reason=\"loopback\"} 1\n") != NULL);
	CHECK(strstr(out, "imsd_recipients_total{outcome=\"delivered\"} 7\n") != NULL);
	CHECK(strstr(out, "imsd_queue_messages 3\n") != NULL);
	CHECK(strstr(out, "imsd_queue_oldest_age_seconds 42\n") != NULL);
	CHECK(strstr(out, "imsd_build_info{version=\"1.2\\\"x\"} 1\n") != NULL);
	CHECK(strstr(out, "# TYPE imsd_commit_fsync_seconds histogram\n") != NULL);
	CHECK(strstr(out, "imsd_commit_fsync_seconds_bucket{le=\"0.001\"} 0\n") != NULL);
	CHECK(strstr(out, "imsd_commit_fsync_seconds_bucket{le=\"0.0025\"} 1\n") != NULL);
	CHECK(strstr(out, "imsd_commit_fsync_seconds_bucket{le=\"2.5\"} 1\n") != NULL);
	CHECK(strstr(out, "imsd_commit_fsync_seconds_bucket{le=\"+Inf\"} 2\n") != NULL);
	CHECK(strstr(out, "imsd_commit_fsync_seconds_sum 3.0015\n") != NULL);
	CHECK(strstr(out, "imsd_commit_fsync_seconds_count 2\n") != NULL);
	/* every family: one HELP, one TYPE, and each counter's name ends in _total */
	for (const char *p = out; (p = strstr(p, "# TYPE ")) != NULL; p++) {
		char name[128], type[32];
		CHECK(sscanf(p, "# TYPE %127s %31s", name, type) == 2);
		if (strcmp(type, "counter") == 0)
			CHECK(strlen(name) > 6 && strcmp(name + strlen(name) - 6, "_total") == 0);
		char help[160];
		snprintf(help, sizeof(help), "# HELP %s ", name);
		CHECK(strstr(out, help) != NULL);
		const char *second = strstr(strstr(out, help) + 1, help);
		CHECK(second == NULL);
	}
	CHECK(out[len - 1] == '\n');
	free(out);
}

int
main(void)
{
	RUN(counters_from_several_threads_lose_nothing);
	RUN(exposition_has_help_type_suffixes_and_histograms);
	T_EXIT();
}
