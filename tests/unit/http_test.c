/* http_test — the strict HTTP/1.x request-head parser of the metrics listener. */
#include <stdlib.h>
#include <string.h>

#include "proto/http.h"
#include "t.h"

/* Feed s in pieces of step bytes; the verdict, with *used summed. */
static enum http_status
feed(struct http_req *r, const char *s, size_t step, size_t *total)
{
	size_t len = strlen(s), off = 0, used;
	enum http_status st = HTTP_MORE;

	http_req_init(r);
	*total = 0;
	while (off < len) {
		size_t n = len - off < step ? len - off : step;
		st = http_req_feed(r, s + off, n, &used);
		*total += used;
		off += n;
		if (st != HTTP_MORE)
			break;
	}
	return st;
}

static int
status_of(const char *s)
{
	struct http_req r;
	size_t used;
	enum http_status st = feed(&r, s, 1 << 20, &used);

	return st == HTTP_DONE ? 200 : st == HTTP_ERROR ? r.status : 0;
}

TEST(a_prometheus_scrape_is_accepted_in_any_split)
{
	const char *req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n"
	    "User-Agent: Prometheus/2.42.0\r\nAccept: text/plain;version=0.0.4;q=1,*/*;q=0.1\r\n"
	    "Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n";
	for (size_t step = 1; step <= strlen(req); step++) {
		struct http_req r;
		size_t used;
		CHECK(feed(&r, req, step, &used) == HTTP_DONE);
		CHECK(used == strlen(req));
		CHECK(r.method == HTTP_GET);
		CHECK_STR(r.target, "/metrics");
		CHECK(r.minor == 1);
		CHECK(r.nheaders == 5);
	}
}

TEST(head_and_http10_and_query)
{
	struct http_req r;
	size_t used;
	char path[64];

	CHECK(feed(&r, "HEAD /metrics?x=1 HTTP/1.0\r\n\r\nleftover", 1000, &used) == HTTP_DONE);
	CHECK(used == strlen("HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"));
	CHECK(r.method == HTTP_HEAD);
	CHECK(r.minor == 0);
	http_req_path(&r, path, sizeof(path));
	CHECK_STR(path, "/metrics");
	/* another method parses; the endpoint answers it 405 */
	CHECK(feed(&r, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 1000, &used) == HTTP_DONE);
	CHECK(r.method == HTTP_OTHER);
	CHECK_STR(r.method_name, "POST");
}

TEST(malformed_heads_get_precise_statuses)
{
	CHECK(status_of("GET /metrics HTTP/1.1\r\n\r\n") == 400);		/* no Host */
	CHECK(status_of("GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400);
	CHECK(status_of("GET /metrics HTTP/1.1\nHost: a\n\n") == 400);	/* bare LF */
	CHECK(status_of("GET /metrics HTTP/1.1\rHost: a\r\n\r\n") == 400);	/* bare CR */
	CHECK(status_of("GET  /metrics HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
	CHECK(status_of("GET /metrics HTTP/1.1 x\r\nHost: a\r\n\r\n") == 400);
	CHECK(status_of("GET http://a/metrics HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
	CHECK(status_of("GET /metrics HTTP/2.0\r\nHost: a\r\n\r\n") == 505);
	CHECK(status_of("GET /metrics HTTP/1.2\r\nHost: a\r\n\r\n") == 505);
	CHECK(status_of("GET /metrics HTTP/1\r\nHost: a\r\n\r\n") == 400);
	CHECK(status_of("GET /metrics HTTP/1.1\r\n Host: a\r\n\r\n") == 400);	/* folding */
	CHECK(status_of("GET /metrics HTTP/1.1\r\nHo st: a\r\n\r\n") == 400);
	CHECK(status_of("GET /metrics HTTP/1.1\r\n: a\r\n\r\n") == 400);
	CHECK(status_of("GET /metrics HTTP/1.1\r\nHost a\r\n\r\n") == 400);
	CHECK(status_of("GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n") == 400);
	CHECK(status_of("GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n") == 200);
	CHECK(status_of("GET /metrics HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n") ==
	    400);
	CHECK(status_of("GET /metrics HTTP/1.1\r\nHost: a\x01\r\n\r\n") == 400);
	CHECK(status_of("\r\n") == 400);
	CHECK(status_of("G(T /metrics HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
	CHECK(status_of("GETGETGETGETGETGET /metrics HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
	CHECK(status_of("GET /met\x7frics HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
	CHECK(status_of("GET /metrics HTTP/1.1\r\nHost: a\r\n") == 0);	/* needs more */
}

TEST(limits_on_line_length_header_count_and_head_size)
{
	char *big = malloc(HTTP_HEAD_MAX * 2);
	size_t n;

	/* request line */
	n = (size_t)sprintf(big, "GET /");
	memset(big + n, 'a', HTTP_LINE_MAX);
	strcpy(big + n + HTTP_LINE_MAX, " HTTP/1.1\r\nHost: a\r\n\r\n");
	CHECK(status_of(big) == 414);
	/* exactly the limit is fine */
	n = (size_t)sprintf(big, "GET /");
	memset(big + n, 'a', HTTP_LINE_MAX - n - 9);
	strcpy(big + HTTP_LINE_MAX - 9, " HTTP/1.1\r\nHost: a\r\n\r\n");
	CHECK(status_of(big) == 200);
	/* a header line */
	n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	memset(big + n, 'b', HTTP_LINE_MAX);
	strcpy(big + n + HTTP_LINE_MAX, "\r\n\r\n");
	CHECK(status_of(big) == 431);
	/* header count */
	n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < HTTP_HEADERS_MAX; i++)
		n += (size_t)sprintf(big + n, "X-%d: y\r\n", i);
	strcpy(big + n, "\r\n");
	CHECK(status_of(big) == 431);
	/* the whole head: many long-ish lines under the count limit */
	n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < 20; i++) {
		n += (size_t)sprintf(big + n, "X-%d: ", i);
		memset(big + n, 'c', 500);
		n += 500;
		n += (size_t)sprintf(big + n, "\r\n");
	}
	strcpy(big + n, "\r\n");
	CHECK(status_of(big) == 431);
	free(big);
}

TEST(after_a_verdict_nothing_more_is_consumed)
{
	struct http_req r;
	size_t used;

	CHECK(feed(&r, "GET / HTTP/1.0\r\n\r\n", 100, &used) == HTTP_DONE);
	CHECK(http_req_feed(&r, "more", 4, &used) == HTTP_DONE && used == 0);
	CHECK(feed(&r, "BAD\r\n", 100, &used) == HTTP_ERROR);
	CHECK(http_req_feed(&r, "more", 4, &used) == HTTP_ERROR && used == 0);
	CHECK_STR(http_reason(404), "Not Found");
	CHECK_STR(http_reason(431), "Request Header Fields Too Large");
}

int
main(void)
{
	RUN(a_prometheus_scrape_is_accepted_in_any_split);
	RUN(head_and_http10_and_query);
	RUN(malformed_heads_get_precise_statuses);
	RUN(limits_on_line_length_header_count_and_head_size);
	RUN(after_a_verdict_nothing_more_is_consumed);
	T_EXIT();
}
