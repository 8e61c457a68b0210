/*
 * http — a strict HTTP/1.x request-head parser; see http.h.
 */
#include "proto/http.h"

#include <string.h>

/* RFC 9110 §5.6.2 tchar */
static int
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static enum http_status
fail(struct http_req *r, int status, const char *why)
{
	r->state = 3;
	r->status = status;
	r->why = why;
	return HTTP_ERROR;
}

void
http_req_init(struct http_req *r)
{
	memset(r, 0, sizeof(*r));
}

static int
ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a, y = *b;
		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (char)(y - 'A' + 'a');
		if (x != y)
			return 0;
	}
	return *a == *b;
}

/* METHOD SP origin-form SP HTTP/1.x (RFC 9112 §3) */
static enum http_status
request_line(struct http_req *r)
{
	char *l = r->line, *sp1, *sp2;
	size_t ml, tl;

	if ((sp1 = strchr(l, ' ')) == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL)
		return fail(r, 400, "malformed request line");
	if (strchr(sp2 + 1, ' ') != NULL)
		return fail(r, 400, "malformed request line");
	ml = (size_t)(sp1 - l);
	if (ml == 0 || ml > HTTP_METHOD_MAX)
		return fail(r, 400, "bad method");
	for (size_t i = 0; i < ml; i++)
		if (!is_tchar((unsigned char)l[i]))
			return fail(r, 400, "bad method");
	memcpy(r->method_name, l, ml);
	r->method_name[ml] = '\0';
	tl = (size_t)(sp2 - sp1 - 1);
	if (tl == 0 || sp1[1] != '/')
		return fail(r, 400, "the target must be an absolute path");
	for (size_t i = 0; i < tl; i++) {
		unsigned char c = (unsigned char)sp1[1 + i];
		if (c <= 0x20 || c >= 0x7f)
			return fail(r, 400, "bad character in target");
	}
	memcpy(r->target, sp1 + 1, tl);
	r->target[tl] = '\0';
	const char *v = sp2 + 1;
	if (strncmp(v, "HTTP/", 5) != 0 || !(v[5] >= '0' && v[5] <= '9') || v[6] != '.' ||
	    !(v[7] >= '0' && v[7] <= '9') || v[8] != '\0')
		return fail(r, 400, "bad HTTP version");
	if (v[5] != '1')
		return fail(r, 505, "only HTTP/1.0 and HTTP/1.1 are served");
	if (v[7] != '0' && v[7] != '1')
		return fail(r, 505, "only HTTP/1.0 and HTTP/1.1 are served");
	r->minor = v[7] - '0';
	r->method = strcmp(r->method_name, "GET") == 0 ? HTTP_GET :
	    strcmp(r->method_name, "HEAD") == 0 ? HTTP_HEAD : HTTP_OTHER;
	r->state = 1;
	return HTTP_MORE;
}

/* field-name ":" OWS field-value OWS (RFC 9112 §5) */
static enum http_status
header_line(struct http_req *r)
{
	char *l = r->line, *colon, *val, *end;

	if (l[0] == ' ' || l[0] == '\t')
		return fail(r, 400, "obsolete line folding");
	if (++r->nheaders > HTTP_HEADERS_MAX)
		return fail(r, 431, "too many header fields");
	if ((colon = strchr(l, ':')) == NULL || colon == l)
		return fail(r, 400, "malformed header field");
	for (char *p = l; p < colon; p++)
		if (!is_tchar((unsigned char)*p))
			return fail(r, 400, "bad header field name");
	*colon = '\0';
	val = colon + 1;
	while (*val == ' ' || *val == '\t')
		val++;
	end = val + strlen(val);
	while (end > val && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	for (char *p = val; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return fail(r, 400, "bad character in header field value");
	}
	if (ieq(l, "host")) {
		if (++r->nhost > 1)
			return fail(r, 400, "more than one Host header field");
	} else if (ieq(l, "transfer-encoding")) {
		return fail(r, 400, "a request body is not accepted");
	} else if (ieq(l, "content-length")) {
		if (strcmp(val, "0") != 0)
			return fail(r, 400, "a request body is not accepted");
	}
	return HTTP_MORE;
}

enum http_status
http_req_feed(struct http_req *r, const char *buf, size_t len, size_t *used)
{
	size_t i;

	*used = 0;
	if (r->state == 2)
		return HTTP_DONE;
	if (r->state == 3)
		return HTTP_ERROR;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		enum http_status st;

		if (++r->total > HTTP_HEAD_MAX) {
			*used = i + 1;
			return fail(r, 431, "request head too large");
		}
		if (r->cr) {
			r->cr = 0;
			if (c != '\n') {
				*used = i + 1;
				return fail(r, 400, "bare CR");
			}
			r->line[r->linelen] = '\0';
			if (r->state == 0) {
				if (r->linelen == 0) {
					*used = i + 1;
					return fail(r, 400, "empty request line");
				}
				st = request_line(r);
			} else if (r->linelen == 0) {
				*used = i + 1;
				if (r->minor == 1 && r->nhost == 0)
					return fail(r, 400, "HTTP/1.1 request without Host");
				r->state = 2;
				return HTTP_DONE;
			} else
				st = header_line(r);
			r->linelen = 0;
			if (st == HTTP_ERROR) {
				*used = i + 1;
				return st;
			}
			continue;
		}
		if (c == '\r') {
			r->cr = 1;
			continue;
		}
		if (c == '\n') {
			*used = i + 1;
			return fail(r, 400, "bare LF");
		}
		if (c == '\0') {
			*used = i + 1;
			return fail(r, 400, "NUL byte");
		}
		if (r->linelen >= HTTP_LINE_MAX) {
			*used = i + 1;
			return r->state == 0 ? fail(r, 414, "request line too long") :
			    fail(r, 431, "header line too long");
		}
		r->line[r->linelen++] = (char)c;
	}
	*used = len;
	return HTTP_MORE;
}

void
http_req_path(const struct http_req *r, char *out, size_t outlen)
{
	size_t n = strcspn(r->target, "?");

	if (outlen == 0)
		return;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, r->target, n);
	out[n] = '\0';
}

const char *
http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}
