/*
 * metrics — counters, gauges, histograms and their exposition; see metrics.h.
 */
#include "util/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/sbuf.h"

/* One row per exported sample of a counter: its family, and its labels (NULL = none). */
struct crow {
	const char *family;
	const char *help;	/* on the first row of a family */
	const char *labels;
};

static const struct crow counters[M__COUNT] = {
	[M_CONNECTIONS] = { "imsd_connections_total",
	    "SMTP connections accepted (including those refused with 421).", NULL },
	[M_REFUSED_CONNECTION_LIMIT] = { "imsd_connections_refused_total",
	    "SMTP connections refused with 421, by the limit that refused them.",
	    "reason=\"connection-limit\"" },
	[M_REFUSED_CLIENT_LIMIT] = { "imsd_connections_refused_total", NULL,
	    "reason=\"client-connection-limit\"" },
	[M_REFUSED_MEMORY] = { "imsd_connections_refused_total", NULL,
	    "reason=\"session-memory-limit\"" },
	[M_REFUSED_FDS] = { "imsd_connections_refused_total", NULL,
	    "reason=\"out-of-descriptors\"" },
	[M_MSG_RECEIVED] = { "imsd_messages_received_total",
	    "Messages accepted and committed to the queue (250 after DATA or BDAT).", NULL },
	[M_MSG_DELIVERED] = { "imsd_messages_delivered_total",
	    "Messages that left the queue with every recipient delivered.", NULL },
	[M_MSG_DEFERRED] = { "imsd_messages_deferred_total",
	    "Delivery attempts of a message that left at least one recipient for a retry.", NULL },
	[M_MSG_BOUNCED] = { "imsd_messages_bounced_total",
	    "Messages that left the queue with at least one recipient failed (bounced).", NULL },
	[M_MSG_EXPIRED] = { "imsd_messages_expired_total",
	    "Messages whose queue_lifetime ran out with recipients still pending.", NULL },
	[M_RCPT_DELIVERED] = { "imsd_recipients_total",
	    "Recipient delivery outcomes (local Maildir or relay).", "outcome=\"delivered\"" },
	[M_RCPT_DEFERRED] = { "imsd_recipients_total", NULL, "outcome=\"deferred\"" },
	[M_RCPT_BOUNCED] = { "imsd_recipients_total", NULL, "outcome=\"bounced\"" },
	[M_TLS_OK] = { "imsd_tls_handshakes_total",
	    "Inbound TLS handshakes completed (STARTTLS and smtps).", NULL },
	[M_TLS_FAIL_TIMEOUT] = { "imsd_tls_handshake_failures_total",
	    "Inbound TLS handshakes that failed, by reason.", "reason=\"timeout\"" },
	[M_TLS_FAIL_PROTOCOL] = { "imsd_tls_handshake_failures_total", NULL,
	    "reason=\"protocol\"" },
	[M_TLS_FAIL_SETUP] = { "imsd_tls_handshake_failures_total", NULL, "reason=\"setup\"" },
	[M_STARTTLS_REFUSED_LOOPBACK] = { "imsd_starttls_refused_total",
	    "STARTTLS commands answered 454: on a loopback connection (the loopback policy) or "
	    "with no certificate.", "reason=\"loopback\"" },
	[M_STARTTLS_REFUSED_NO_CERT] = { "imsd_starttls_refused_total", NULL,
	    "reason=\"no-certificate\"" },
	[M_AUTH_OK] = { "imsd_auth_successes_total", "SMTP AUTH successes.", NULL },
	[M_AUTH_FAIL_CREDENTIALS] = { "imsd_auth_failures_total",
	    "SMTP AUTH failures, by reason.", "reason=\"credentials\"" },
	[M_AUTH_FAIL_LOCKED] = { "imsd_auth_failures_total", NULL,
	    "reason=\"client-failure-limit\"" },
	[M_AUTH_FAIL_PLAINTEXT] = { "imsd_auth_failures_total", NULL,
	    "reason=\"plaintext-non-loopback\"" },
	[M_AUTH_FAIL_BACKEND] = { "imsd_auth_failures_total", NULL,
	    "reason=\"backend-unavailable\"" },
	[M_DNS_LOOKUPS] = { "imsd_dns_lookups_total",
	    "Mail routing lookups (MX with A/AAAA, or a relayhost's A/AAAA).", NULL },
	[M_DNS_FAIL_NXDOMAIN] = { "imsd_dns_failures_total",
	    "Mail routing lookups that found no route, by reason.", "reason=\"nxdomain\"" },
	[M_DNS_FAIL_NOHOSTS] = { "imsd_dns_failures_total", NULL, "reason=\"no-hosts\"" },
	[M_DNS_FAIL_NULLMX] = { "imsd_dns_failures_total", NULL, "reason=\"null-mx\"" },
	[M_DNS_FAIL_TEMPFAIL] = { "imsd_dns_failures_total", NULL, "reason=\"tempfail\"" },
	[M_SCRAPES] = { "imsd_metrics_scrapes_total", "Requests for /metrics answered.", NULL },
};

static const struct {
	const char *name, *help;
} gauges[MG__COUNT] = {
	[MG_CONNECTIONS] = { "imsd_connections_open", "SMTP sessions open now." },
};

/* Bucket upper bounds in the histogram's unit; rendered divided by scale. */
#define HIST_BUCKETS_MAX 16

struct hdef {
	const char *name, *help;
	unsigned scale;		/* unit per rendered unit: 1, or 1000000 for us -> s */
	size_t nb;
	uint64_t le[HIST_BUCKETS_MAX];
};

static const struct hdef hists[MH__COUNT] = {
	[MH_COMMIT_BATCH] = { "imsd_commit_batch_size",
	    "Messages made durable together by one group commit.", 1,
	    9, { 1, 2, 4, 8, 16, 32, 64, 128, 256 } },
	[MH_COMMIT_FSYNC] = { "imsd_commit_fsync_seconds",
	    "Time one group commit spent making its batch durable (file and directory fsync).",
	    1000000, 12, { 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	    1000000, 2500000 } },
};

/* The values: written with relaxed atomics by any thread. */
static uint64_t cvals[M__COUNT];
static int64_t gvals[MG__COUNT];
static struct {
	uint64_t buckets[HIST_BUCKETS_MAX + 1];	/* non-cumulative; the last is +Inf */
	uint64_t sum;
} hvals[MH__COUNT];

void
metrics_inc(enum metric m)
{
	if ((unsigned)m < M__COUNT)
		__atomic_fetch_add(&cvals[m], 1, __ATOMIC_RELAXED);
}

void
metrics_add(enum metric m, uint64_t n)
{
	if ((unsigned)m < M__COUNT)
		__atomic_fetch_add(&cvals[m], n, __ATOMIC_RELAXED);
}

void
metrics_gauge_add(enum metric_gauge g, int64_t delta)
{
	if ((unsigned)g < MG__COUNT)
		__atomic_fetch_add(&gvals[g], delta, __ATOMIC_RELAXED);
}

void
metrics_observe(enum metric_hist h, uint64_t v)
{
	size_t i;

	if ((unsigned)h >= MH__COUNT)
		return;
	for (i = 0; i < hists[h].nb && v > hists[h].le[i]; i++)
		;
	__atomic_fetch_add(&hvals[h].buckets[i], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&hvals[h].sum, v, __ATOMIC_RELAXED);
}

uint64_t
metrics_get(enum metric m)
{
	return (unsigned)m < M__COUNT ? __atomic_load_n(&cvals[m], __ATOMIC_RELAXED) : 0;
}

int64_t
metrics_gauge_get(enum metric_gauge g)
{
	return (unsigned)g < MG__COUNT ? __atomic_load_n(&gvals[g], __ATOMIC_RELAXED) : 0;
}

void
metrics_reset(void)
{
	for (size_t i = 0; i < M__COUNT; i++)
		__atomic_store_n(&cvals[i], 0, __ATOMIC_RELAXED);
	for (size_t i = 0; i < MG__COUNT; i++)
		__atomic_store_n(&gvals[i], 0, __ATOMIC_RELAXED);
	for (size_t h = 0; h < MH__COUNT; h++) {
		for (size_t i = 0; i <= HIST_BUCKETS_MAX; i++)
			__atomic_store_n(&hvals[h].buckets[i], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&hvals[h].sum, 0, __ATOMIC_RELAXED);
	}
}

/* ---- exposition ---- */

static void
out_family(struct sbuf *o, const char *name, const char *help, const char *type)
{
	sbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* v in the histogram's unit, rendered in its exposed unit (decimal, exact). */
static void
out_scaled(struct sbuf *o, uint64_t v, unsigned scale)
{
	if (scale == 1) {
		sbuf_printf(o, "%llu", (unsigned long long)v);
		return;
	}
	/* scale is 10^6 here: six fractional digits, trailing zeros trimmed */
	char frac[16];
	unsigned long long f = v % scale;
	int n = snprintf(frac, sizeof(frac), "%06llu", f);
	while (n > 0 && frac[n - 1] == '0')
		frac[--n] = '\0';
	sbuf_printf(o, "%llu%s%s", (unsigned long long)(v / scale), n > 0 ? "." : "", frac);
}

int
metrics_render(const struct metrics_dynamic *d, char **outp, size_t *lenp)
{
	struct sbuf o = { 0 };

	if (d != NULL && d->version != NULL) {
		out_family(&o, "imsd_build_info", "The imsd version serving, as a label.", "gauge");
		sbuf_printf(&o, "imsd_build_info{version=\"");
		/* label value escaping: backslash, quote, newline */
		for (const char *s = d->version; *s; s++) {
			if (*s == '\\' || *s == '"')
				sbuf_printf(&o, "\\%c", *s);
			else if (*s == '\n')
				sbuf_printf(&o, "\\n");
			else
				sbuf_printf(&o, "%c", *s);
		}
		sbuf_printf(&o, "\"} 1\n");
	}
	if (d != NULL && d->start_time != 0) {
		out_family(&o, "imsd_start_time_seconds",
		    "When this server started, in seconds since the Unix epoch.", "gauge");
		sbuf_printf(&o, "imsd_start_time_seconds %llu\n", (unsigned long long)d->start_time);
	}
	for (size_t g = 0; g < MG__COUNT; g++) {
		out_family(&o, gauges[g].name, gauges[g].help, "gauge");
		sbuf_printf(&o, "%s %lld\n", gauges[g].name,
		    (long long)__atomic_load_n(&gvals[g], __ATOMIC_RELAXED));
	}
	for (size_t m = 0; m < M__COUNT; m++) {
		const struct crow *r = &counters[m];

		if (m == 0 || strcmp(counters[m - 1].family, r->family) != 0)
			out_family(&o, r->family, r->help, "counter");
		sbuf_printf(&o, "%s%s%s%s %llu\n", r->family, r->labels ? "{" : "",
		    r->labels ? r->labels : "", r->labels ? "}" : "",
		    (unsigned long long)__atomic_load_n(&cvals[m], __ATOMIC_RELAXED));
	}
	if (d != NULL && d->have_queue) {
		out_family(&o, "imsd_queue_messages", "Messages in the queue.", "gauge");
		sbuf_printf(&o, "imsd_queue_messages %llu\n", (unsigned long long)d->queue_messages);
		out_family(&o, "imsd_queue_recipients",
		    "Recipients in the queue still to be delivered.", "gauge");
		sbuf_printf(&o, "imsd_queue_recipients %llu\n",
		    (unsigned long long)d->queue_recipients);
		out_family(&o, "imsd_queue_oldest_age_seconds",
		    "Age of the oldest message in the queue (0 when it is empty).", "gauge");
		sbuf_printf(&o, "imsd_queue_oldest_age_seconds %llu\n",
		    (unsigned long long)d->queue_oldest_age);
	}
	for (size_t h = 0; h < MH__COUNT; h++) {
		const struct hdef *hd = &hists[h];
		uint64_t cum = 0;

		out_family(&o, hd->name, hd->help, "histogram");
		for (size_t i = 0; i <= hd->nb; i++) {
			cum += __atomic_load_n(&hvals[h].buckets[i], __ATOMIC_RELAXED);
			sbuf_printf(&o, "%s_bucket{le=\"", hd->name);
			if (i < hd->nb)
				out_scaled(&o, hd->le[i], hd->scale);
			else
				sbuf_printf(&o, "+Inf");
			sbuf_printf(&o, "\"} %llu\n", (unsigned long long)cum);
		}
		sbuf_printf(&o, "%s_sum ", hd->name);
		out_scaled(&o, __atomic_load_n(&hvals[h].sum, __ATOMIC_RELAXED), hd->scale);
		sbuf_printf(&o, "\n%s_count %llu\n", hd->name, (unsigned long long)cum);
	}
	if (o.bad || o.p == NULL) {
		free(o.p);
		return -1;
	}
	*outp = o.p;
	*lenp = o.len;
	return 0;
}
