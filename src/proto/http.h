/*
 * http — a small, strict HTTP/1.x request-head parser (RFC 9112), for the metrics listener.
 *
 * PURE: bytes in, a verdict out; no I/O, no clock, no globals. It reads the request line
 * and the header fields up to the empty line and nothing more (a request that announces a
 * body is refused: the metrics endpoint takes none). Strict: lines end in CRLF (a bare CR
 * or LF is an error), no obsolete line folding, header names are tokens, values visible
 * characters, exactly one Host in HTTP/1.1 and at most one in HTTP/1.0, origin-form
 * targets only.
 *
 * Limits: HTTP_LINE_MAX bytes a line (request line: 414; header line: 431),
 * HTTP_HEADERS_MAX header fields (431), HTTP_HEAD_MAX bytes in all (431). The time a
 * client is allowed is the caller's to enforce.
 */
#ifndef IMSD_HTTP_H
#define IMSD_HTTP_H

#include <stddef.h>

#define HTTP_LINE_MAX		1024
#define HTTP_HEADERS_MAX	32
#define HTTP_HEAD_MAX		8192
#define HTTP_METHOD_MAX		16

enum http_status {
	HTTP_MORE,	/* the head is not complete yet: feed more */
	HTTP_DONE,	/* the head is complete and valid */
	HTTP_ERROR,	/* invalid: answer r->status with r->why, then close */
};

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_OTHER };

struct http_req {
	/* results */
	enum http_method method;
	char method_name[HTTP_METHOD_MAX + 1];
	char target[HTTP_LINE_MAX + 1];	/* origin-form: starts with '/' */
	int minor;			/* HTTP/1.minor: 0 or 1 */
	unsigned nheaders;
	int status;			/* on HTTP_ERROR: 400, 414, 431 or 505 */
	const char *why;		/* on HTTP_ERROR: a short reason (static text) */

	/* parser state */
	int state;			/* 0 request line, 1 headers, 2 done, 3 error */
	size_t total;			/* bytes of the head consumed */
	size_t linelen;
	int cr;				/* the previous byte was CR */
	int nhost;
	char line[HTTP_LINE_MAX + 1];
};

void http_req_init(struct http_req *r);

/*
 * Feed len bytes. HTTP_MORE: all consumed, the head goes on. HTTP_DONE: *used bytes were
 * the rest of the head (what follows is not looked at). HTTP_ERROR: r->status and r->why
 * say why. After DONE or ERROR further calls return the same verdict and consume nothing.
 */
enum http_status http_req_feed(struct http_req *r, const char *buf, size_t len, size_t *used);

/* The path of the target without its query ("/metrics?x=1" -> "/metrics"), into out. */
void http_req_path(const struct http_req *r, char *out, size_t outlen);

/* The reason phrase of a status code this project sends ("Not Found"); "Error" otherwise. */
const char *http_reason(int status);

#endif
