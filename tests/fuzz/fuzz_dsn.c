/*
 * fuzz_dsn — libFuzzer target for dsn_build.
 *
 * Layout: byte 0 flags (bit 0 delayed, bits 1-2 number of recipients 1-3, bit 3
 * remote_mta given, bit 4 orcpt given), bytes 1-8 `now` (little-endian, signed), bytes
 * 9-10 retry_hours_left; then NUL-separated diag, addr, remote_mta, boundary seed,
 * status; everything after the fifth NUL is the original message (NULs allowed).
 * The built message must obey dsn.h: every line CRLF-terminated and at most 998
 * octets, no bare CR or LF, 7-bit only, the boundary occurring exactly where we put it,
 * one Final-Recipient/Action per recipient in the status part, the headers part capped.
 * Any violation abort()s.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/dsn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

static size_t
count(const char *s, size_t n, const char *needle)
{
	size_t k = 0, nl = strlen(needle);
	const char *p = s, *end = s + n;

	while (p < end && (p = memmem(p, (size_t)(end - p), needle, nl)) != NULL) {
		k++;
		p++;
	}
	return k;
}

static void
check_lines(const char *s, size_t n)
{
	size_t i, linelen = 0;

	check(n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r') {
			check(i + 1 < n && s[i + 1] == '\n');
			check(linelen <= DSN_LINE_MAX);
			linelen = 0;
			i++;
			continue;
		}
		check(c != '\n' && c != 0 && c < 0x80);
		linelen++;
	}
}

/* Next NUL-terminated segment from *p (within end) into a malloc'd string. */
static char *
segment(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *z = memchr(*p, 0, (size_t)(end - *p));
	size_t n = z ? (size_t)(z - *p) : (size_t)(end - *p);
	char *s = malloc(n + 1);

	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n + (z ? 1 : 0);
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dsn_info in;
	struct dsn_rcpt r[3];
	const uint8_t *p, *end = data + size;
	char *diag, *addr, *mta, *seed, *status, *origcopy, *m = NULL, b[128], delim[140];
	const char *bp, *q, *parts[5];
	size_t n = 0, i, nr, origlen;
	uint64_t now = 0;
	int ret;

	if (size < 11)
		return 0;
	for (i = 0; i < 8; i++)
		now |= (uint64_t)data[1 + i] << (8 * i);
	p = data + 11;
	diag = segment(&p, end);
	addr = segment(&p, end);
	mta = segment(&p, end);
	seed = segment(&p, end);
	status = segment(&p, end);
	origlen = (size_t)(end - p);
	origcopy = malloc(origlen ? origlen : 1);
	memcpy(origcopy, p, origlen);

	nr = ((data[0] >> 1) & 3) % 3 + 1;
	memset(r, 0, sizeof(r));
	for (i = 0; i < nr; i++) {
		r[i].addr = i == 0 ? addr : i == 1 ? "second@example.org" : diag;
		r[i].orcpt = (data[0] & 16) ? (i == 0 ? diag : addr) : NULL;
		r[i].status = status;
		r[i].diag = i == 2 ? addr : diag;
		r[i].remote_mta = (data[0] & 8) ? mta : NULL;
	}
	memset(&in, 0, sizeof(in));
	in.hostname = "mx.example.net";
	in.qid = "QID0001";
	in.now = (time_t)(int64_t)now;
	in.arrival = (time_t)((int64_t)now / 2);
	in.sender = "sender@example.com";
	in.action = (data[0] & 1) ? DSN_DELAYED : DSN_FAILED;
	in.retry_hours_left = (unsigned)data[9] | (unsigned)data[10] << 8;
	in.rcpts = r;
	in.nrcpts = nr;
	in.orig = origcopy;
	in.origlen = origlen;
	in.boundary_seed = seed;
	in.full = (data[0] & 32) != 0;		/* RET=FULL */
	in.envid = (data[0] & 64) ? seed : NULL;
	if (data[0] & 128) {			/* NOTIFY=SUCCESS among the others */
		r[0].has_action = 1;
		r[0].action = DSN_DELIVERED;
		r[0].orcpt_field = mta;
	}

	ret = dsn_build(&in, &m, &n);
	for (i = 0; i < nr; i++)
		if (r[i].addr[0] == '\0')
			break;
	if (i < nr) {
		check(ret == -1 && m == NULL);
		goto out;
	}
	check(ret == 0 && m != NULL && strlen(m) == n);
	check_lines(m, n);

	/* the boundary: in the Content-Type and at the four delimiters, nowhere else */
	bp = strstr(m, "\r\nContent-Type: multipart/report; report-type=delivery-status; "
	    "boundary=\"");
	check(bp != NULL);
	bp = strchr(bp, '"') + 1;
	q = strchr(bp, '"');
	check(q != NULL && q > bp && (size_t)(q - bp) <= 70);
	memcpy(b, bp, (size_t)(q - bp));
	b[q - bp] = '\0';
	check(count(m, n, b) == 5);
	snprintf(delim, sizeof(delim), "\r\n--%s", b);
	parts[0] = m;
	for (i = 1; i < 5; i++) {
		parts[i] = strstr(parts[i - 1] + (i > 1), delim);
		check(parts[i] != NULL);
	}
	check(strcmp(parts[4] + strlen(delim), "--\r\n") == 0);

	/* the status part: one group per recipient */
	/* "utf-8; " for a UTF-8 address (RFC 6533 §3), still 7-bit (check_lines) */
	check(count(parts[2], (size_t)(parts[3] - parts[2]), "\r\nFinal-Recipient: rfc822; ") +
	    count(parts[2], (size_t)(parts[3] - parts[2]), "\r\nFinal-Recipient: utf-8; ") == nr);
	check(count(parts[2], (size_t)(parts[3] - parts[2]), (in.action == DSN_FAILED) ?
	    "\r\nAction: failed\r\n" : "\r\nAction: delayed\r\n") ==
	    nr - ((data[0] & 128) ? 1 : 0));
	check(count(parts[2], (size_t)(parts[3] - parts[2]), "\r\nStatus: ") == nr);
	check(count(parts[2], (size_t)(parts[3] - parts[2]), "\r\nOriginal-Envelope-Id: ") ==
	    (in.envid != NULL && in.envid[0] != '\0' ? 1 : 0));
	/* the headers part is capped; RET=FULL returns every line, each at most 998 + CRLF */
	if (!in.full)
		check((size_t)(parts[4] - parts[3]) <= DSN_HEADERS_MAX + 200);
out:
	free(m);
	free(origcopy);
	free(status);
	free(seed);
	free(mta);
	free(addr);
	free(diag);
	return 0;
}
