/*
 * sendmail_test — the pure parts of the sendmail(1) interface: options as Postfix's
 * sendmail reads them, address lists of To/Cc/Bcc, the message turned into what imsd
 * submits (CRLF, the lone dot, Bcc removed, headers added when missing), maildrop files.
 *
 * Inputs are copied into heap buffers of exactly their length so that AddressSanitizer
 * catches a read past the end.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "t.h"
#include "proto/sendmail.h"

static struct sm_opts o;
static char err[512];

static int
args(const char *a0, ...)
{
	static char *v[32];
	va_list ap;
	int n = 0;

	v[n++] = (char *)"sendmail";
	va_start(ap, a0);
	for (const char *a = a0; a != NULL && n < 31; a = va_arg(ap, const char *))
		v[n++] = (char *)a;
	va_end(ap);
	v[n] = NULL;
	err[0] = '\0';
	return sm_parse_args(n, v, 1, 0, &o, err, sizeof(err));
}

TEST(options_common)
{
	CHECK(args("-t", "-i", NULL) == 0);
	CHECK(o.mode == SM_DELIVER && o.extract && !o.dot_ends && o.nrcpts == 0);
	CHECK(args("-oi", "-f", "bob@example.org", "--", "-alice@x", NULL) == 0);
	CHECK(!o.dot_ends && o.sender && strcmp(o.sender, "bob@example.org") == 0);
	CHECK(o.nrcpts == 1 && strcmp(o.rcpts[0], "-alice@x") == 0);
	CHECK(args("-fbob", "-FBob Smith", "alice", "carol", NULL) == 0);
	CHECK_STR(o.sender, "bob");
	CHECK_STR(o.fullname, "Bob Smith");
	CHECK(o.nrcpts == 2 && o.dot_ends);
	CHECK(args("-ti", NULL) == 0);
	CHECK(o.extract && !o.dot_ends);
	CHECK(args("-C", "/etc/x.conf", "a", NULL) == 0);
	CHECK_STR(o.conf_path, "/etc/x.conf");
	CHECK(args("-c/etc/y.conf", NULL) == 0);
	CHECK_STR(o.conf_path, "/etc/y.conf");
}

TEST(options_modes)
{
	CHECK(args("-bs", NULL) == 0 && o.mode == SM_SMTP);
	CHECK(args("-bp", NULL) == 0 && o.mode == SM_QUEUE);
	CHECK(args("-bv", "a@b", NULL) == 0 && o.mode == SM_VERIFY && o.nrcpts == 1);
	CHECK(args("-q", NULL) == 0 && o.mode == SM_FLUSH);
	CHECK(args("-q30m", NULL) == 0 && o.mode == SM_FLUSH);
	CHECK(args("-bi", NULL) == 0 && o.mode == SM_NOOP);
	CHECK(args("-I", NULL) == 0 && o.mode == SM_NOOP);
	CHECK(args("-bd", NULL) == -1 && strstr(err, "imsd run") != NULL);
	CHECK(args("-bz", NULL) == -1);
	CHECK(args("-bsx", NULL) == -1);
}

TEST(options_ignored)
{
	/* what programs pass and Postfix ignores */
	CHECK(args("-oem", "-odi", "-oQ/tmp", "-om", "-U", "-n", "-G", "-L", "lbl", "-N",
	    "never", "-R", "hdrs", "-V", "envid", "-X", "/tmp/log", "-h", "20", "-B", "8BITMIME",
	    "a@b", NULL) == 0);
	CHECK(o.nrcpts == 1 && o.dot_ends && o.mode == SM_DELIVER);
	/* "-o x value": both taken */
	CHECK(args("-o", "A", "value", "x@y", NULL) == 0 && o.dot_ends && o.nrcpts == 1);
	CHECK(args("-Z", NULL) == -1 && strstr(err, "-Z") != NULL);
	CHECK(args("-f", NULL) == -1 && strstr(err, "needs a value") != NULL);
	CHECK(args("-r", "x@y", NULL) == 0 && strcmp(o.sender, "x@y") == 0);
}

TEST(options_mailq)
{
	char *v[] = { "mailq", NULL };
	CHECK(sm_parse_args(1, v, 1, 1, &o, err, sizeof(err)) == 0 && o.mode == SM_QUEUE);
}

struct col {
	char a[16][SM_ADDR_MAX + 1];
	int n;
};

static int
col_add(void *arg, const char *addr)
{
	struct col *c = arg;
	if (c->n >= 16)
		return -1;
	snprintf(c->a[c->n++], sizeof(c->a[0]), "%s", addr);
	return 0;
}

static struct col cl;

static int
alist(const char *s)
{
	size_t n = strlen(s);
	char *copy = malloc(n ? n : 1);
	int r;

	memcpy(copy, s, n);
	memset(&cl, 0, sizeof(cl));
	err[0] = '\0';
	r = sm_addrlist(copy, n, "example.org", col_add, &cl, err, sizeof(err));
	free(copy);
	return r;
}

TEST(addrlist_forms)
{
	CHECK(alist(" alice@x.test") == 1);
	CHECK_STR(cl.a[0], "alice@x.test");
	CHECK(alist(" Alice Smith <alice@x.test>, \"Bob, Jr.\" <bob@y.test>,carol") == 3);
	CHECK_STR(cl.a[0], "alice@x.test");
	CHECK_STR(cl.a[1], "bob@y.test");
	CHECK_STR(cl.a[2], "carol@example.org");
	CHECK(alist(" root (Cron Daemon)") == 1);
	CHECK_STR(cl.a[0], "root@example.org");
	CHECK(alist(" undisclosed-recipients:;") == 0);
	CHECK(alist(" team: a@x.test, b@x.test;, c@x.test") == 3);
	CHECK_STR(cl.a[2], "c@x.test");
	CHECK(alist(" <@relay.test:d@x.test>") == 1);
	CHECK_STR(cl.a[0], "d@x.test");
	CHECK(alist(" \"odd local\"@x.test") == 1);
	CHECK_STR(cl.a[0], "\"odd local\"@x.test");
	CHECK(alist("\r\n\tfolded@x.test,\r\n second@x.test") == 2);
	CHECK(alist(" a@[192.0.2.1]") == 1);
	CHECK_STR(cl.a[0], "a@[192.0.2.1]");
	CHECK(alist("") == 0);
	CHECK(alist(" , ,") == 0);
}

TEST(addrlist_errors)
{
	CHECK(alist(" Alice Smith") == -1 && strstr(err, "name without") != NULL);
	CHECK(alist(" <a@x.test") == -1 && strstr(err, "unterminated") != NULL);
	CHECK(alist(" \"a@x.test") == -1);
	CHECK(alist(" (comment a@x.test") == -1);
	CHECK(alist(" a@x.test;") == -1);
	CHECK(alist(" g: a@x.test") == -1);
	CHECK(alist(" <a@x.test> trailing") == -1);
	CHECK(alist(" a\001b@x.test") == -1);
	CHECK(alist(" a@@x.test") == -1);
	char big[600];
	memset(big, 'a', sizeof(big));
	memcpy(big + sizeof(big) - 8, "@x.test", 8);
	CHECK(alist(big) == -1 && strstr(err, "longer") != NULL);
}

static struct sm_msg m;

static int
prep(const char *in, int dot_ends, int extract, const struct sm_add *add, size_t max)
{
	size_t n = strlen(in);
	char *copy = malloc(n ? n : 1);
	int r;

	memcpy(copy, in, n);
	sm_msg_free(&m);
	err[0] = '\0';
	r = sm_prepare(copy, n, dot_ends, extract, "example.org", add, max, &m, err, sizeof(err));
	free(copy);
	return r;
}

TEST(prepare_crlf_and_dot)
{
	CHECK(prep("Subject: x\n\nline1\r\n.\nafter\n", 1, 0, NULL, 0) == 0);
	CHECK_STR(m.data, "Subject: x\r\n\r\nline1\r\n");
	CHECK(prep("Subject: x\n\nline1\n.\nafter\n", 0, 0, NULL, 0) == 0);
	CHECK_STR(m.data, "Subject: x\r\n\r\nline1\r\n.\r\nafter\r\n");
	CHECK(prep("Subject: x\n\n..two\nno newline", 1, 0, NULL, 0) == 0);
	CHECK_STR(m.data, "Subject: x\r\n\r\n..two\r\nno newline\r\n");
	CHECK(!m.headers_only);
}

TEST(prepare_extract_bcc)
{
	CHECK(prep("To: a@x.test,\n b@x.test\nCc: C <c@x.test>\nBcc: secret@x.test\n"
	    "Subject: s\nbcc: d\n\nbody\n", 1, 1, NULL, 0) == 0);
	CHECK(m.nrcpts == 5);
	CHECK_STR(m.rcpts[0], "a@x.test");
	CHECK_STR(m.rcpts[1], "b@x.test");
	CHECK_STR(m.rcpts[2], "c@x.test");
	CHECK_STR(m.rcpts[3], "secret@x.test");
	CHECK(strstr(m.data, "secret") == NULL && strstr(m.data, "bcc") == NULL);
	CHECK_STR(m.data, "To: a@x.test,\r\n b@x.test\r\nCc: C <c@x.test>\r\nSubject: s\r\n\r\nbody\r\n");
	CHECK_STR(m.rcpts[4], "d@example.org");
	CHECK(prep("Bcc: d\n\n", 1, 1, NULL, 0) == 0 && m.nrcpts == 1);
	CHECK_STR(m.rcpts[0], "d@example.org");
	/* Bcc removed without -t too, recipients not taken */
	CHECK(prep("To: a@x.test\nBcc: b@x.test\n\nx\n", 1, 0, NULL, 0) == 0 && m.nrcpts == 0);
	CHECK_STR(m.data, "To: a@x.test\r\n\r\nx\r\n");
	CHECK(prep("To: Broken Name\n\n", 1, 1, NULL, 0) == -1 && strstr(err, "To: header") != NULL);
}

TEST(prepare_headers_only_and_added)
{
	struct sm_add add = { "From: <root@example.org>", "Date: D", "Message-ID: <m@x>" };

	/* cron: sendmail -t -i with headers and no body */
	CHECK(prep("To: root\nSubject: cron <root@h> job", 0, 1, &add, 0) == 0);
	CHECK(m.headers_only && m.nrcpts == 1);
	CHECK_STR(m.rcpts[0], "root@example.org");
	CHECK_STR(m.data, "To: root\r\nSubject: cron <root@h> job\r\nFrom: <root@example.org>\r\n"
	    "Date: D\r\nMessage-ID: <m@x>\r\n");
	/* present ones are kept, not doubled */
	CHECK(prep("from: me@x.test\nDATE: d\nmessage-id: <a@b>\n\nx\n", 1, 0, &add, 0) == 0);
	CHECK_STR(m.data, "from: me@x.test\r\nDATE: d\r\nmessage-id: <a@b>\r\n\r\nx\r\n");
	/* a body that starts without the blank line gets one */
	CHECK(prep("Subject: s\nnot a header line\n", 1, 0, NULL, 0) == 0);
	CHECK_STR(m.data, "Subject: s\r\n\r\nnot a header line\r\n");
	/* no headers at all */
	CHECK(prep("just text\n", 1, 0, &add, 0) == 0);
	CHECK_STR(m.data, "From: <root@example.org>\r\nDate: D\r\nMessage-ID: <m@x>\r\n\r\njust text\r\n");
}

TEST(prepare_limits)
{
	CHECK(prep("Subject: x\n\n0123456789\n", 1, 0, NULL, 16) == -1 &&
	    strstr(err, "larger") != NULL);
	size_t n = SM_HEADER_MAX + 100;
	char *big = malloc(n + 1);
	memcpy(big, "X-Long: ", 8);
	memset(big + 8, 'a', n - 8);
	big[n] = '\0';
	CHECK(prep(big, 1, 0, NULL, 0) == -1 && strstr(err, "header section") != NULL);
	free(big);
	sm_msg_free(&m);
}

static struct sm_drop d;

static int
drop(const char *s)
{
	size_t n = strlen(s);
	char *copy = malloc(n ? n : 1);
	int r;

	memcpy(copy, s, n);
	err[0] = '\0';
	r = sm_drop_parse(copy, n, &d, err, sizeof(err));
	if (r == 0) {
		/* data points into copy: compare before freeing */
		r = (int)d.len;
	}
	free(copy);
	return r;
}

TEST(maildrop_files)
{
	CHECK(drop("IMSD-MAILDROP 1\nS a@x.test\nR b@x.test\nR c@x.test\n\nHi\r\n") == 4);
	CHECK_STR(d.sender, "a@x.test");
	CHECK(d.nrcpts == 2);
	CHECK_STR(d.rcpts[1], "c@x.test");
	sm_drop_free(&d);
	CHECK(drop("IMSD-MAILDROP 1\nS \nR b@x.test\n\n") == 0 && d.sender[0] == '\0');
	sm_drop_free(&d);
	CHECK(drop("IMSD-MAILDROP 2\nS a@x.test\nR b@x.test\n\n") == -1);
	CHECK(drop("IMSD-MAILDROP 1\nS a@x.test\n\n") == -1 && strstr(err, "recipients") != NULL);
	CHECK(drop("IMSD-MAILDROP 1\nR b@x.test\n\n") == -1 && strstr(err, "sender") != NULL);
	CHECK(drop("IMSD-MAILDROP 1\nS a@x.test\nS a@x.test\nR b@x.test\n\n") == -1);
	CHECK(drop("IMSD-MAILDROP 1\nS a@x.test\nR b@x.test\n") == -1);
	CHECK(drop("IMSD-MAILDROP 1\nS a@x.test\nR <b@x.test>\n\n") == -1);
	CHECK(drop("IMSD-MAILDROP 1\nS a@x.test\nX b@x.test\n\n") == -1);
	CHECK(drop("") == -1);
}

int
main(void)
{
	RUN(options_common);
	RUN(options_modes);
	RUN(options_ignored);
	RUN(options_mailq);
	RUN(addrlist_forms);
	RUN(addrlist_errors);
	RUN(prepare_crlf_and_dot);
	RUN(prepare_extract_bcc);
	RUN(prepare_headers_only_and_added);
	RUN(prepare_limits);
	RUN(maildrop_files);
	sm_msg_free(&m);
	T_EXIT();
}
