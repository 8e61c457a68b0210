/*
 * dsn_test — RFC 3464 delivery status notifications: structure, fields, sanitising.
 *
 * Set DSN_TEST_OUT=dir to have the built bounces written there (for checking with
 * another parser, e.g. Python's email package).
 */
#include <stdlib.h>

#include "t.h"
#include "deliver/dsn.h"

static const char orig_msg[] =
    "Received: from client.example (client.example [192.0.2.7])\r\n"
    "\tby mx.local.example (imsd) with ESMTP id 0123ABCD\r\n"
    "From: Alice <alice@local.example>\r\n"
    "To: bob@remote.example, carol@remote.example\r\n"
    "Subject: Quarterly numbers\r\n"
    "Message-ID: <m1@local.example>\r\n"
    "\r\n"
    "Body line one: the secret numbers.\r\n"
    "Subject: not a header, this is the body\r\n";

static const struct dsn_rcpt two_rcpts[] = {
	{ "bob@remote.example", "bob@remote.example", "5.1.1",
	  "smtp; 550 5.1.1 <bob@remote.example>: user unknown", "dns; mx.remote.example", NULL, 0, DSN_FAILED },
	{ "carol@remote.example", "Carol@Remote.Example", "5.2.2",
	  "smtp; 552 5.2.2 mailbox full", NULL, NULL, 0, DSN_FAILED },
};

static void
base_info(struct dsn_info *in)
{
	memset(in, 0, sizeof(*in));
	in->hostname = "mx.local.example";
	in->qid = "0123ABCD";
	in->arrival = 1700000000;	/* Tue, 14 Nov 2023 22:13:20 +0000 */
	in->now = 1700003600;
	in->sender = "alice@local.example";
	in->action = DSN_FAILED;
	in->retry_hours_left = 0;
	in->rcpts = two_rcpts;
	in->nrcpts = 2;
	in->orig = orig_msg;
	in->origlen = sizeof(orig_msg) - 1;
	in->boundary_seed = "0123ABCD.1700003600";
}

/* Number of (possibly overlapping) occurrences of needle in the n bytes at s. */
static size_t
count(const char *s, size_t n, const char *needle)
{
	size_t k = 0, nl = strlen(needle);
	const char *p = s, *end = s + n;

	while ((p = memmem(p, (size_t)(end - p), needle, nl)) != NULL) {
		k++;
		p++;
	}
	return k;
}

/* Every line ends in CRLF and is at most 998 octets; no bare CR or LF; 7-bit only. */
static int
lines_ok(const char *s, size_t n)
{
	size_t i, linelen = 0;

	if (n < 2 || s[n - 2] != '\r' || s[n - 1] != '\n')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r') {
			if (i + 1 >= n || s[i + 1] != '\n')
				return 0;
			if (linelen > DSN_LINE_MAX)
				return 0;
			linelen = 0;
			i++;
			continue;
		}
		if (c == '\n' || c == 0 || c >= 0x80)
			return 0;
		linelen++;
	}
	return 1;
}

/* The boundary from the top-level Content-Type, into b. */
static int
boundary_of(const char *s, char *b, size_t cap)
{
	const char *p = strstr(s, "boundary=\""), *q;

	if (p == NULL)
		return 0;
	p += 10;
	q = strchr(p, '"');
	if (q == NULL || (size_t)(q - p) >= cap)
		return 0;
	memcpy(b, p, (size_t)(q - p));
	b[q - p] = '\0';
	return 1;
}

/* Pointer to the body of part k (1-based) and its length, split at "\r\n--boundary". */
static const char *
part(const char *s, const char *boundary, int k, size_t *len)
{
	char delim[128];
	const char *p = s, *q, *body;
	int i;

	snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	for (i = 0; i < k; i++) {
		p = strstr(p, delim);
		if (p == NULL)
			return NULL;
		p += strlen(delim);
	}
	body = strstr(p, "\r\n\r\n");	/* end of the part's own headers */
	q = strstr(p, delim);
	if (body == NULL || q == NULL || body > q)
		return NULL;
	body += 4;
	*len = (size_t)(q - body);
	return body;
}

static void
save(const char *name, const char *s, size_t n)
{
	const char *dir = getenv("DSN_TEST_OUT");
	char path[512];
	FILE *f;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s.eml", dir, name);
	f = fopen(path, "wb");
	if (f != NULL) {
		fwrite(s, 1, n, f);
		fclose(f);
	}
}

TEST(bounce_with_two_recipients_has_report_structure)
{
	struct dsn_info in;
	char *m = NULL, b[128];
	const char *p;
	size_t n = 0, plen = 0;

	base_info(&in);
	CHECK(dsn_build(&in, &m, &n) == 0);
	if (m == NULL)
		return;
	save("bounce", m, n);
	CHECK(strlen(m) == n);
	CHECK(lines_ok(m, n));
	CHECK(count(m, n, "Content-Type: multipart/report;") == 1);
	CHECK(count(m, n, "\r\nContent-Type: multipart/report; report-type=delivery-status; "
	    "boundary=\"") == 1);
	CHECK(count(m, n, "\r\nFinal-Recipient: rfc822; ") == 2);
	CHECK(count(m, n, "\r\nFinal-Recipient: rfc822; bob@remote.example\r\n") == 1);
	CHECK(count(m, n, "\r\nAction: failed\r\n") == 2);
	CHECK(count(m, n, "\r\nStatus: 5.1.1\r\n") == 1);
	CHECK(count(m, n, "\r\nStatus: 5.2.2\r\n") == 1);
	CHECK(count(m, n, "\r\nRemote-MTA: dns; mx.remote.example\r\n") == 1);
	CHECK(count(m, n, "\r\nDiagnostic-Code: smtp; 550 5.1.1 <bob@remote.example>: user "
	    "unknown\r\n") == 1);
	/* Original-Recipient only where it differs */
	CHECK(count(m, n, "Original-Recipient:") == 1);
	CHECK(count(m, n, "\r\nOriginal-Recipient: rfc822; Carol@Remote.Example\r\n") == 1);
	CHECK(count(m, n, "\r\nReporting-MTA: dns; mx.local.example\r\n") == 1);
	CHECK(count(m, n, "\r\nX-Imsd-Queue-ID: 0123ABCD\r\n") == 1);
	CHECK(count(m, n, "\r\nArrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n") == 1);
	CHECK(count(m, n, "Will-Retry-Until") == 0);

	CHECK(boundary_of(m, b, sizeof(b)));
	CHECK(count(m, n, b) == 5);	/* header + three delimiters + the close */
	CHECK(count(m, n, "--") >= 4);
	p = part(m, b, 1, &plen);
	CHECK(p != NULL && count(p, plen, "\r\n<bob@remote.example>:\r\n") == 1);
	CHECK(p != NULL && count(p, plen, "550 5.1.1 <bob@remote.example>: user unknown") == 1);
	CHECK(p != NULL && count(p, plen, "\r\n<carol@remote.example>:\r\n") == 1);
	CHECK(p != NULL && count(p, plen, "552 5.2.2 mailbox full") == 1);
	CHECK(count(m, n, "\r\nContent-Type: text/plain; charset=us-ascii\r\n") == 1);
	CHECK(count(m, n, "\r\nContent-Type: message/delivery-status\r\n") == 1);
	CHECK(count(m, n, "\r\nContent-Type: text/rfc822-headers\r\n") == 1);
	/* the status part: per-message block, then one block per recipient */
	p = part(m, b, 2, &plen);
	CHECK(p != NULL && strncmp(p, "Reporting-MTA: ", 15) == 0);
	CHECK(p != NULL && count(p, plen, "\r\n\r\n") == 2);
	CHECK(p != NULL && count(p, plen, "\r\n\r\nFinal-Recipient: rfc822; bob@remote.example")
	    == 1);
	/* the headers part: the original header section and not the body */
	p = part(m, b, 3, &plen);
	CHECK(p != NULL && strncmp(p, "Received: from client.example", 29) == 0);
	CHECK(p != NULL && count(p, plen, "\r\nSubject: Quarterly numbers\r\n") == 1);
	CHECK(p != NULL && count(p, plen, "\r\nMessage-ID: <m1@local.example>\r\n") == 1);
	CHECK(p != NULL && plen >= 2 && p[plen - 2] == '\r' && p[plen - 1] == '\n');
	CHECK(count(m, n, "secret numbers") == 0);
	CHECK(count(m, n, "this is the body") == 0);
	/* ends with the close delimiter */
	CHECK(n > strlen(b) + 8 && memcmp(m + n - strlen(b) - 8, "\r\n--", 4) == 0 &&
	    memcmp(m + n - strlen(b) - 4, b, strlen(b)) == 0 && memcmp(m + n - 4, "--\r\n", 4) == 0);
	free(m);
}

TEST(top_level_headers)
{
	struct dsn_info in;
	char *m = NULL;
	size_t n = 0;

	base_info(&in);
	CHECK(dsn_build(&in, &m, &n) == 0);
	if (m == NULL)
		return;
	CHECK(strncmp(m, "From: Mail Delivery System <MAILER-DAEMON@mx.local.example>\r\n",
	    strlen("From: Mail Delivery System <MAILER-DAEMON@mx.local.example>\r\n")) == 0);
	CHECK(count(m, n, "\r\nTo: <alice@local.example>\r\n") == 1);
	CHECK(count(m, n, "\r\nSubject: Undelivered Mail Returned to Sender\r\n") == 1);
	CHECK(count(m, n, "\r\nDate: Tue, 14 Nov 2023 23:13:20 +0000\r\n") == 1);
	CHECK(count(m, n, "\r\nMessage-ID: <0123ABCD.dsn.1700003600@mx.local.example>\r\n")
	    == 1);
	CHECK(count(m, n, "\r\nAuto-Submitted: auto-replied\r\n") == 1);
	CHECK(count(m, n, "\r\nMIME-Version: 1.0\r\n") == 1);
	/* the header section ends before the first part */
	CHECK(strstr(m, "\r\n\r\n") < strstr(m, "Content-Description:"));
	CHECK(strstr(m, "\r\n\r\n") > strstr(m, "Content-Type: multipart/report"));
	free(m);
}

TEST(utf8_addresses_are_not_mangled)
{
	/* RFC 6533 §3: utf-8-addr-xtext in the 7-bit report; the UTF-8 sender in To: */
	static const struct dsn_rcpt r[] = {
		{ .addr = "j\xc3\xb6ran+x@b\xc3\xbc" "cher.example",
		  .orcpt = "J\xc3\xb6ran+x@b\xc3\xbc" "cher.example",
		  .status = "5.6.7", .diag = "x-imsd; peer does not support SMTPUTF8" },
	};
	struct dsn_info in;
	char *m = NULL;
	size_t n = 0;

	base_info(&in);
	in.sender = "\xe7\x94\xa8\xe6\x88\xb7@example.com";
	in.smtputf8 = 1;
	in.rcpts = r;
	in.nrcpts = 1;
	CHECK(dsn_build(&in, &m, &n) == 0);
	if (m == NULL)
		return;
	CHECK(count(m, n, "\r\nTo: <\xe7\x94\xa8\xe6\x88\xb7@example.com>\r\n") == 1);
	CHECK(count(m, n, "\r\nFinal-Recipient: utf-8; j\\x{F6}ran\\x{2B}x@b\\x{FC}cher.example\r\n")
	    == 1);
	CHECK(count(m, n, "\r\nOriginal-Recipient: utf-8; J\\x{F6}ran\\x{2B}x@b\\x{FC}cher.example\r\n")
	    == 1);
	CHECK(count(m, n, "Status: 5.6.7") == 1);
	/* the only 8-bit text is the To: field */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)m[i] >= 0x80) {
			CHECK(i > (size_t)(strstr(m, "\r\nTo: <") - m) &&
			    i < (size_t)(strstr(m, "\r\nSubject:") - m));
			break;
		}
	free(m);
	/* without smtputf8 the To: field stays 7-bit, as every other */
	in.smtputf8 = 0;
	CHECK(dsn_build(&in, &m, &n) == 0);
	if (m == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char)m[i] < 0x80);
	free(m);
}

TEST(delayed_variant)
{
	struct dsn_info in;
	struct dsn_rcpt r = { "dave@slow.example", NULL, "4.4.1",
	    "x-imsd; connection timed out", "dns; mx1.slow.example", NULL, 0, DSN_FAILED };
	char *m = NULL;
	size_t n = 0;

	base_info(&in);
	in.action = DSN_DELAYED;
	in.retry_hours_left = 115;
	in.rcpts = &r;
	in.nrcpts = 1;
	CHECK(dsn_build(&in, &m, &n) == 0);
	if (m == NULL)
		return;
	save("delayed", m, n);
	CHECK(lines_ok(m, n));
	CHECK(count(m, n, "\r\nSubject: Delayed Mail (still being retried)\r\n") == 1);
	CHECK(count(m, n, "\r\nAction: delayed\r\n") == 1);
	CHECK(count(m, n, "Action: failed") == 0);
	CHECK(count(m, n, "\r\nStatus: 4.4.1\r\n") == 1);
	CHECK(count(m, n, "\r\nDiagnostic-Code: x-imsd; connection timed out\r\n") == 1);
	CHECK(count(m, n, "Original-Recipient") == 0);
	/* now + 115 h */
	CHECK(count(m, n, "\r\nWill-Retry-Until: Sun, 19 Nov 2023 18:13:20 +0000\r\n") == 1);
	CHECK(count(m, n, "115 more hours") == 1);
	CHECK(count(m, n, "still being attempted") == 1);
	CHECK(count(m, n, "Subject: Quarterly numbers") == 1);
	free(m);
}

TEST(defaults_for_missing_status_diag_and_types)
{
	struct dsn_info in;
	struct dsn_rcpt r[2] = {
		{ "x@a.example", "x@a.example", NULL, NULL, NULL, NULL, 0, DSN_FAILED },
		{ "y@b.example", NULL, "5.1", "mailbox unavailable", "mx.b.example", NULL, 0, DSN_FAILED },
	};
	char *m = NULL;
	size_t n = 0;

	base_info(&in);
	in.rcpts = r;
	in.nrcpts = 2;
	CHECK(dsn_build(&in, &m, &n) == 0);
	if (m == NULL)
		return;
	CHECK(count(m, n, "\r\nStatus: 5.0.0\r\n") == 2);
	CHECK(count(m, n, "\r\nDiagnostic-Code: x-imsd; mailbox unavailable\r\n") == 1);
	CHECK(count(m, n, "Diagnostic-Code:") == 1);
	CHECK(count(m, n, "\r\nRemote-MTA: dns; mx.b.example\r\n") == 1);
	CHECK(count(m, n, "Original-Recipient") == 0);
	CHECK(count(m, n, "delivery failed, status 5.0.0") == 1);
	free(m);
}

TEST(hostile_diag_and_headers_are_sanitised)
{
	struct dsn_info in;
	struct dsn_rcpt r = { "bob@x.example", NULL, "5.0.0", NULL, "dns; mx\r\nInjected: 1", NULL, 0, DSN_FAILED };
	char *diag = malloc(5000), *orig, *m = NULL;
	size_t n = 0, i, olen;

	i = (size_t)snprintf(diag, 5000, "smtp; 550 no\r\nX-Evil: yes\nstill\rmore caf\xc3\xa9 ");
	for (; i < 4999; i++)
		diag[i] = 'd';
	diag[4999] = '\0';
	r.diag = diag;
	olen = 200000;
	orig = malloc(olen);
	/* bare-LF lines, a stray CR, NUL and 8-bit bytes, an over-long line, and no empty line */
	i = (size_t)snprintf(orig, olen, "Subject: a\nX-A: b\rc\nX-B: \xff");
	orig[i++] = '\0';
	orig[i++] = '\n';
	memcpy(orig + i, "X-Long: ", 8);
	for (i += 8; i < olen; i++)
		orig[i] = (i % 1000 == 999) ? '\n' : 'L';

	base_info(&in);
	in.rcpts = &r;
	in.nrcpts = 1;
	in.orig = orig;
	in.origlen = olen;
	in.hostname = "mx.local.example";
	CHECK(dsn_build(&in, &m, &n) == 0);
	if (m != NULL) {
		save("hostile", m, n);
		CHECK(lines_ok(m, n));
		CHECK(count(m, n, "\r\nX-Evil") == 0);
		CHECK(count(m, n, "\r\nInjected") == 0);
		CHECK(count(m, n, "Remote-MTA: dns; mx  Injected: 1\r\n") == 1);
		CHECK(count(m, n, "Diagnostic-Code: smtp; 550 no  X-Evil: yes still more caf?? ddd")
		    == 1);
		CHECK(count(m, n, "\r\nSubject: a\r\nX-A: b c\r\nX-B: ??\r\nX-Long: LLL") == 1);
		/* the headers part is capped */
		CHECK(n < DSN_HEADERS_MAX + 16384);
		CHECK(n > DSN_HEADERS_MAX - 2048);
	}
	free(m);
	free(orig);
	free(diag);
}

TEST(boundary_is_changed_when_the_content_contains_it)
{
	struct dsn_info in;
	char orig[512], *m = NULL, b[128];
	size_t n = 0;

	base_info(&in);
	in.boundary_seed = "seed";
	snprintf(orig, sizeof(orig), "Subject: x\r\nX-Trap: --=_imsd_seed\r\n"
	    "X-Trap2: =_imsd_seed_00000001\r\n\r\nbody\r\n");
	in.orig = orig;
	in.origlen = strlen(orig);
	CHECK(dsn_build(&in, &m, &n) == 0);
	if (m == NULL)
		return;
	CHECK(boundary_of(m, b, sizeof(b)));
	CHECK_STR(b, "=_imsd_seed_00000002");
	CHECK(count(m, n, b) == 5);
	free(m);

	/* seed bytes outside the boundary alphabet are replaced */
	base_info(&in);
	in.boundary_seed = "a b\"c\r\n";
	CHECK(dsn_build(&in, &m, &n) == 0);
	if (m == NULL)
		return;
	CHECK(boundary_of(m, b, sizeof(b)));
	CHECK_STR(b, "=_imsd_a_b_c__");
	free(m);
}

TEST(empty_or_missing_original)
{
	struct dsn_info in;
	char *m = NULL;
	size_t n = 0;

	base_info(&in);
	in.orig = NULL;
	in.origlen = 0;
	CHECK(dsn_build(&in, &m, &n) == 0);
	CHECK(m != NULL && lines_ok(m, n));
	free(m);
	m = NULL;
	in.orig = "\r\nbody only\r\n";
	in.origlen = 13;
	CHECK(dsn_build(&in, &m, &n) == 0);
	CHECK(m != NULL && lines_ok(m, n) && count(m, n, "body only") == 0);
	free(m);
}

TEST(bad_arguments)
{
	struct dsn_info in;
	struct dsn_rcpt r = { NULL, NULL, NULL, NULL, NULL, NULL, 0, DSN_FAILED };
	char *m = (char *)"x";
	size_t n = 7;

	base_info(&in);
	in.sender = "";
	CHECK(dsn_build(&in, &m, &n) == -1 && m == NULL && n == 0);
	base_info(&in);
	in.sender = NULL;
	CHECK(dsn_build(&in, &m, &n) == -1);
	base_info(&in);
	in.nrcpts = 0;
	CHECK(dsn_build(&in, &m, &n) == -1);
	base_info(&in);
	in.hostname = NULL;
	CHECK(dsn_build(&in, &m, &n) == -1);
	base_info(&in);
	in.qid = "";
	CHECK(dsn_build(&in, &m, &n) == -1);
	base_info(&in);
	in.rcpts = &r;
	in.nrcpts = 1;
	CHECK(dsn_build(&in, &m, &n) == -1);
	base_info(&in);
	in.orig = NULL;
	CHECK(dsn_build(&in, &m, &n) == -1);
	base_info(&in);
	in.action = (enum dsn_action)7;
	CHECK(dsn_build(&in, &m, &n) == -1);
	CHECK(dsn_build(NULL, &m, &n) == -1);
}

/* RFC 3461 requests: Original-Envelope-Id, the client's ORCPT, success actions, and a
 * failure report that also says "delivered" for a recipient that asked for it. */
TEST(success_actions_envid_and_client_orcpt)
{
	struct dsn_info in;
	struct dsn_rcpt r[2] = {
		{ "bob@x.example", "alias@x.example", NULL, NULL, NULL,
		  "rfc822; Bob+x@X.example", 1, DSN_DELIVERED },
		{ "carol@y.example", NULL, "5.1.1", "smtp; 550 no", NULL, NULL, 0, DSN_FAILED },
	};
	char *out;
	size_t len;

	base_info(&in);
	in.rcpts = r;
	in.nrcpts = 1;
	in.action = DSN_DELIVERED;
	in.envid = "QQ+1";
	CHECK(dsn_build(&in, &out, &len) == 0);
	CHECK(lines_ok(out, len));
	CHECK(strstr(out, "Subject: Successful Mail Delivery Report\r\n") != NULL);
	CHECK(strstr(out, "\r\nOriginal-Envelope-Id: QQ+1\r\nReporting-MTA: dns; ") != NULL);
	CHECK(strstr(out, "Original-Recipient: rfc822; Bob+x@X.example\r\n"
	    "Final-Recipient: rfc822; bob@x.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n")
	    != NULL);
	CHECK(strstr(out, "Will-Retry-Until") == NULL);
	free(out);

	r[0].action = DSN_RELAYED;
	in.action = DSN_RELAYED;
	in.envid = NULL;
	CHECK(dsn_build(&in, &out, &len) == 0);
	CHECK(strstr(out, "Action: relayed\r\n") != NULL);
	CHECK(strstr(out, "Original-Envelope-Id") == NULL);
	free(out);

	in.nrcpts = 2;
	in.action = DSN_FAILED;
	CHECK(dsn_build(&in, &out, &len) == 0);
	CHECK(strstr(out, "Subject: Undelivered Mail Returned to Sender\r\n") != NULL);
	CHECK(strstr(out, "Action: relayed\r\n") != NULL);
	CHECK(strstr(out, "Action: failed\r\nStatus: 5.1.1\r\n") != NULL);
	free(out);

	r[0].action = (enum dsn_action)9;
	CHECK(dsn_build(&in, &out, &len) == -1);
}

/* RET=FULL: the whole original as message/rfc822, lines normalised; 8-bit kept only when
 * the original was 8BITMIME (and then said so). */
TEST(ret_full_returns_the_whole_message)
{
	static const char msg8[] = "Subject: x\r\n\r\nbody line\r\nbare\nlf caf\xc3\xa9\r\n";
	struct dsn_info in;
	char *out;
	size_t len;

	base_info(&in);
	in.orig = msg8;
	in.origlen = sizeof(msg8) - 1;
	in.full = 1;
	CHECK(dsn_build(&in, &out, &len) == 0);
	CHECK(lines_ok(out, len));
	CHECK(strstr(out, "Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nbody line\r\n"
	    "bare\r\nlf caf??\r\n") != NULL);
	CHECK(strstr(out, "text/rfc822-headers") == NULL);
	CHECK(strstr(out, "Your message is attached below.") != NULL);
	free(out);
	in.orig_8bit = 1;
	CHECK(dsn_build(&in, &out, &len) == 0);
	CHECK(strstr(out, "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n")
	    != NULL);
	CHECK(strstr(out, "lf caf\xc3\xa9\r\n") != NULL);
	free(out);
}

int
main(void)
{
	RUN(bounce_with_two_recipients_has_report_structure);
	RUN(top_level_headers);
	RUN(utf8_addresses_are_not_mangled);
	RUN(delayed_variant);
	RUN(defaults_for_missing_status_diag_and_types);
	RUN(hostile_diag_and_headers_are_sanitised);
	RUN(boundary_is_changed_when_the_content_contains_it);
	RUN(empty_or_missing_original);
	RUN(bad_arguments);
	RUN(success_actions_envid_and_client_orcpt);
	RUN(ret_full_returns_the_whole_message);
	T_EXIT();
}
