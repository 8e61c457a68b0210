/*
 * metrics_http — the metrics_listen endpoint: GET (or HEAD) /metrics answers with the
 * Prometheus text format (util/metrics); any other path is 404, any other method on
 * /metrics 405, a malformed request 400/414/431/505 (proto/http).
 *
 * It lives on one event loop (worker 0's, beside the queue manager whose gauges it reads)
 * and never blocks it: sockets are non-blocking, a response is written as the client takes
 * it. Limits: METRICS_HTTP_CLIENTS clients at once and METRICS_HTTP_PER_PEER from one
 * address; a new connection past either evicts the oldest client still waiting for its
 * request (of the same address, or of the address holding the most), so clients that open
 * connections and send nothing cannot keep a scraper out (only a table of clients all
 * being answered turns a new one away); METRICS_HTTP_SECONDS for a client to send its
 * request and read the answer (checked by metrics_http_tick); the head limits of
 * proto/http. No authentication: bind it to an
 * address only the monitoring system reaches. Reading it needs neither root nor the
 * control socket.
 */
#ifndef IMSD_METRICS_HTTP_H
#define IMSD_METRICS_HTTP_H

#include <stddef.h>
#include <time.h>

#include "net/ev.h"
#include "util/addr.h"
#include "util/metrics.h"

#define METRICS_HTTP_CLIENTS	16
#define METRICS_HTTP_PER_PEER	4
#define METRICS_HTTP_SECONDS	10

struct metrics_http;

/* Fills the values computed at scrape time (queue gauges); runs on the loop's thread. */
typedef void (*metrics_collect_fn)(void *arg, struct metrics_dynamic *d);

/* Bind every ADDR:PORT of hp (n of them) and serve on loop. NULL with err on failure. */
struct metrics_http *metrics_http_open(struct ev_loop *loop, const struct hostport *hp, size_t n,
    char *err, size_t errlen);
void metrics_http_set_collect(struct metrics_http *mh, metrics_collect_fn fn, void *arg);
/* Close clients past their deadline; call from the loop's tick. NULL is fine. */
void metrics_http_tick(struct metrics_http *mh, time_t now);
/* Stop serving, close everything. NULL is fine. */
void metrics_http_close(struct metrics_http *mh);

#endif
