/*
 * metrics — the server's counters, gauges and histograms, and their Prometheus text
 * exposition (format 0.0.4).
 *
 * Every event-loop thread, the commit thread and the delivery threads update the same
 * process-wide values: each is a 64-bit word changed with a relaxed atomic add, no lock,
 * so counting costs one uncontended-in-the-common-case instruction on the hot path and a
 * scrape never blocks an SMTP loop. A scrape reads each word once; values of different
 * words may be a few events apart (Prometheus expects no more). A histogram's _count is
 * the sum of its buckets as read, so it always matches its +Inf bucket.
 *
 * The table in metrics.c is the one place that names a family, its HELP text, its TYPE and
 * its label values; rows of one family are adjacent there. Counters are monotonic from
 * process start (Prometheus handles the reset at a restart).
 */
#ifndef IMSD_METRICS_H
#define IMSD_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metric {
	/* imsd_connections_total */
	M_CONNECTIONS,
	/* imsd_connections_refused_total{reason} */
	M_REFUSED_CONNECTION_LIMIT, M_REFUSED_CLIENT_LIMIT, M_REFUSED_MEMORY, M_REFUSED_FDS,
	/* imsd_messages_{received,delivered,deferred,bounced,expired}_total */
	M_MSG_RECEIVED, M_MSG_DELIVERED, M_MSG_DEFERRED, M_MSG_BOUNCED, M_MSG_EXPIRED,
	/* imsd_recipients_total{outcome} */
	M_RCPT_DELIVERED, M_RCPT_DEFERRED, M_RCPT_BOUNCED,
	/* imsd_tls_handshakes_total, imsd_tls_handshake_failures_total{reason} */
	M_TLS_OK, M_TLS_FAIL_TIMEOUT, M_TLS_FAIL_PROTOCOL, M_TLS_FAIL_SETUP,
	/* imsd_starttls_refused_total{reason}: the loopback policy, counted by itself */
	M_STARTTLS_REFUSED_LOOPBACK, M_STARTTLS_REFUSED_NO_CERT,
	/* imsd_auth_successes_total, imsd_auth_failures_total{reason} */
	M_AUTH_OK, M_AUTH_FAIL_CREDENTIALS, M_AUTH_FAIL_LOCKED, M_AUTH_FAIL_PLAINTEXT,
	M_AUTH_FAIL_BACKEND,
	/* imsd_dns_lookups_total, imsd_dns_failures_total{reason} */
	M_DNS_LOOKUPS, M_DNS_FAIL_NXDOMAIN, M_DNS_FAIL_NOHOSTS, M_DNS_FAIL_NULLMX,
	M_DNS_FAIL_TEMPFAIL,
	/* imsd_metrics_scrapes_total */
	M_SCRAPES,
	M__COUNT
};

enum metric_gauge {
	MG_CONNECTIONS,		/* imsd_connections_open */
	MG__COUNT
};

enum metric_hist {
	MH_COMMIT_BATCH,	/* imsd_commit_batch_size: messages per group commit */
	MH_COMMIT_FSYNC,	/* imsd_commit_fsync_seconds: observed in microseconds */
	MH__COUNT
};

/* Values the scraper computes when it is asked (worker 0 owns the queue manager). */
struct metrics_dynamic {
	int have_queue;			/* 0: the queue gauges are left out */
	uint64_t queue_messages;	/* imsd_queue_messages */
	uint64_t queue_recipients;	/* imsd_queue_recipients (pending ones) */
	uint64_t queue_oldest_age;	/* imsd_queue_oldest_age_seconds; 0 when empty */
	const char *version;		/* imsd_build_info{version}; NULL: left out */
	uint64_t start_time;		/* imsd_start_time_seconds; 0: left out */
};

/* Count one event (any thread). */
void metrics_inc(enum metric m);
void metrics_add(enum metric m, uint64_t n);
/* Move a gauge (any thread). */
void metrics_gauge_add(enum metric_gauge g, int64_t delta);
/* Record one observation, in the histogram's unit (see enum metric_hist; any thread). */
void metrics_observe(enum metric_hist h, uint64_t v);

/* Read one value (tests, the CLI). */
uint64_t metrics_get(enum metric m);
int64_t metrics_gauge_get(enum metric_gauge g);

/*
 * Render every family in the Prometheus text format into a malloc'd buffer (*out, *len;
 * the caller frees it). 0 ok, -1 out of memory. Never blocks.
 */
int metrics_render(const struct metrics_dynamic *d, char **out, size_t *len);

/* Zero everything (unit tests). */
void metrics_reset(void);

#endif
