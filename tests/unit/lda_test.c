/*
 * lda_test — the local delivery request protocol (round trip, every refusal) and the mbox
 * writer (From_ line, mboxrd quoting, CRLF, the locks it takes, what it refuses).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver/mbox.h"
#include "proto/lda.h"
#include "t.h"

static struct lda_request
sample(void)
{
	struct lda_request r;
	memset(&r, 0, sizeof(r));
	strcpy(r.user, "alice");
	r.mailbox = LDA_MBOX;
	strcpy(r.sender, "bob@example.org");
	strcpy(r.recipient, "alice@localhost");
	r.offset = 123;
	r.length = 4567;
	strcpy(r.id, "66216E602E7E9000_0");
	return r;
}

TEST(request_round_trip)
{
	struct lda_request r = sample(), d;
	char buf[LDA_REQUEST_MAX + 1], why[200] = "";
	int n = lda_request_encode(&r, buf, sizeof(buf));

	CHECK(n > 0);
	CHECK(lda_request_decode(buf, (size_t)n, &d, why, sizeof(why)) == 0);
	CHECK_STR(why, "");
	CHECK_STR(d.user, "alice");
	CHECK(d.mailbox == LDA_MBOX);
	CHECK_STR(d.sender, "bob@example.org");
	CHECK_STR(d.recipient, "alice@localhost");
	CHECK(d.offset == 123 && d.length == 4567);
	CHECK_STR(d.id, "66216E602E7E9000_0");
	r.sender[0] = '\0';		/* the null sender */
	n = lda_request_encode(&r, buf, sizeof(buf));
	CHECK(n > 0 && lda_request_decode(buf, (size_t)n, &d, why, sizeof(why)) == 0);
	CHECK_STR(d.sender, "");
}

TEST(request_refusals)
{
	static const struct { const char *text, *why; } cases[] = {
		{ "IMSDLDA 2\n", "not an IMSDLDA 1 request" },
		{ "IMSDLDA 1\nuser ../etc\nmailbox mbox\n", "user: not a login name" },
		{ "IMSDLDA 1\nuser -rf\n", "user: not a login name" },
		{ "IMSDLDA 1\nmailbox mbox\n", "expected field user" },
		{ "IMSDLDA 1\nuser a\nmailbox file\n", "mailbox: neither mbox nor maildir" },
		{ "IMSDLDA 1\nuser a\nmailbox mbox\nsender x\n", "sender: not an address" },
		{ "IMSDLDA 1\nuser a\nmailbox mbox\nsender <>\nrecipient <>\n",
		  "recipient: not an address" },
		{ "IMSDLDA 1\nuser a\nmailbox mbox\nsender <>\nrecipient <a@b>\noffset 01\n",
		  "offset: not a number" },
		{ "IMSDLDA 1\nuser a\nmailbox mbox\nsender <>\nrecipient <a@b>\noffset 1\n"
		  "length 99999999999999999999\n", "length: not a number" },
		{ "IMSDLDA 1\nuser a\nmailbox mbox\nsender <>\nrecipient <a@b>\noffset 1\n"
		  "length 2\nid ../x\n", "id: empty, too long, or a blank or '/'" },
		{ "IMSDLDA 1\nuser a\nmailbox mbox\nsender <>\nrecipient <a@b>\noffset 1\n"
		  "length 2\nid q_0\nextra 1\n", "text after the last field" },
		{ "IMSDLDA 1\nuser a\nmailbox mbox\nsender <a\tb>\n", "field sender: too long or "
		  "a control character" },
		{ "IMSDLDA 1\nuser a\nmailbox mbox\nsender <>\nrecipient <a@b>\noffset 1\n"
		  "length 2\nid q_0", "missing field id" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lda_request d;
		char why[200] = "";
		CHECK(lda_request_decode(cases[i].text, strlen(cases[i].text), &d, why,
		    sizeof(why)) == -1);
		if (strncmp(why, cases[i].why, strlen(cases[i].why)) != 0) {
			fprintf(stderr, "  case %zu: \"%s\"\n", i, why);
			CHECK(0);
		}
	}
	struct lda_request r = sample();
	char buf[LDA_REQUEST_MAX + 1];
	strcpy(r.user, "a/b");
	CHECK(lda_request_encode(&r, buf, sizeof(buf)) == -1);
	r = sample();
	strcpy(r.sender, "a\nuser root");	/* no field smuggled through a value */
	CHECK(lda_request_encode(&r, buf, sizeof(buf)) == -1);
}

TEST(replies)
{
	char buf[600], reason[LDA_REASON_MAX + 1];
	enum lda_status st;
	int n = lda_reply_encode(LDA_TEMP, "mailbox is locked\n", buf, sizeof(buf));

	CHECK(n > 0);
	CHECK_STR(buf, "temp mailbox is locked?");
	CHECK(lda_reply_decode(buf, (size_t)n, &st, reason, sizeof(reason)) == 0);
	CHECK(st == LDA_TEMP);
	CHECK_STR(reason, "mailbox is locked?");
	n = lda_reply_encode(LDA_OK, NULL, buf, sizeof(buf));
	CHECK(lda_reply_decode(buf, (size_t)n, &st, reason, sizeof(reason)) == 0 && st == LDA_OK);
	CHECK(lda_reply_decode("fine", 4, &st, reason, sizeof(reason)) == -1);
	CHECK(lda_reply_decode("perm ", 5, &st, reason, sizeof(reason)) == -1);
}

TEST(quote_is_mboxrd_and_lf)
{
	static const char in[] = "Subject: x\r\n\r\nFrom here\r\n>From there\r\n From not\r\n"
	    ">>From deep\r\nlast";
	char out[2 * sizeof(in) + 2];
	int st = 0;
	size_t n = mbox_quote(in, sizeof(in) - 1, out, &st);
	out[n] = '\0';
	CHECK_STR(out, "Subject: x\n\n>From here\n>>From there\n From not\n>>>From deep\nlast");
}

static char dir[] = "/tmp/imsd-mbox-test-XXXXXX";

static int
message_fd(const char *text, uint64_t *off, uint64_t *len)
{
	char path[200];
	snprintf(path, sizeof(path), "%s/queued", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	/* the queue file: a header before the message, as in the spool */
	if (write(fd, "IMSDQ header\n", 13) != 13 || write(fd, text, strlen(text)) < 0)
		return -1;
	*off = 13;
	*len = strlen(text);
	return fd;
}

static char *
slurp(const char *path)
{
	static char buf[8192];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

TEST(mbox_appends_two_messages_readable_as_mbox)
{
	char box[200], lockp[210], err[300] = "";
	uint64_t off, len;
	int fd = message_fd("Subject: one\r\n\r\nFrom me\r\n", &off, &len);
	struct stat st;

	snprintf(box, sizeof(box), "%s/alice", dir);
	CHECK(mbox_deliver(box, "bob@example.org", "alice@localhost", fd, off, len, 0, err,
	    sizeof(err)) == 0);
	CHECK_STR(err, "");
	close(fd);
	fd = message_fd("Subject: two\r\n\r\nno final newline", &off, &len);
	CHECK(mbox_deliver(box, "", "alice@localhost", fd, off, len, 86400, err, sizeof(err)) == 0);
	close(fd);
	CHECK_STR(slurp(box), "From bob@example.org Thu Jan  1 00:00:00 1970\n"
	    "Return-Path: <bob@example.org>\nDelivered-To: alice@localhost\nSubject: one\n\n"
	    ">From me\n\nFrom MAILER-DAEMON Fri Jan  2 00:00:00 1970\nReturn-Path: <>\n"
	    "Delivered-To: alice@localhost\nSubject: two\n\nno final newline\n\n");
	CHECK(stat(box, &st) == 0 && (st.st_mode & 0777) == 0600);
	snprintf(lockp, sizeof(lockp), "%s.lock", box);
	CHECK(access(lockp, F_OK) < 0);		/* the dot lock is gone */
}

TEST(mbox_waits_for_a_dot_lock_then_defers)
{
	char box[200], lockp[210], err[300] = "";
	uint64_t off, len;
	int fd = message_fd("Subject: locked\r\n\r\nx\r\n", &off, &len);

	snprintf(box, sizeof(box), "%s/carol", dir);
	snprintf(lockp, sizeof(lockp), "%s.lock", box);
	close(open(lockp, O_WRONLY | O_CREAT, 0644));	/* a reader holds the mailbox */
	CHECK(mbox_deliver(box, "b@x", "carol@localhost", fd, off, len, 0, err, sizeof(err)) == -1);
	CHECK(strstr(err, "mailbox is locked") != NULL);
	CHECK(access(box, F_OK) < 0 || slurp(box)[0] == '\0');
	unlink(lockp);
	close(fd);
}

TEST(mbox_refuses_a_link_or_a_file_with_links)
{
	char box[200], target[200], err[300] = "";
	uint64_t off, len;
	int fd = message_fd("Subject: x\r\n\r\nx\r\n", &off, &len);

	snprintf(box, sizeof(box), "%s/dave", dir);
	snprintf(target, sizeof(target), "%s/elsewhere", dir);
	close(open(target, O_WRONLY | O_CREAT, 0600));
	CHECK(symlink(target, box) == 0);
	CHECK(mbox_deliver(box, "b@x", "dave@localhost", fd, off, len, 0, err, sizeof(err)) == -2);
	CHECK(strstr(err, "symbolic link") != NULL);
	unlink(box);
	CHECK(link(target, box) == 0);
	CHECK(mbox_deliver(box, "b@x", "dave@localhost", fd, off, len, 0, err, sizeof(err)) == -2);
	CHECK(strstr(err, "several links") != NULL);
	CHECK_STR(slurp(target), "");
	close(fd);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	RUN(request_round_trip);
	RUN(request_refusals);
	RUN(replies);
	RUN(quote_is_mboxrd_and_lf);
	RUN(mbox_appends_two_messages_readable_as_mbox);
	RUN(mbox_waits_for_a_dot_lock_then_defers);
	RUN(mbox_refuses_a_link_or_a_file_with_links);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	T_EXIT();
}
