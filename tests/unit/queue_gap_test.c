/* The gap before the body (qfmt "skip"): fields written into it after the body arrived are
 * read back as the message's first lines, and the file stays consistent. */
#include <stdlib.h>
#include <unistd.h>

#include "queue/qfmt.h"
#include "queue/queue.h"
#include "t.h"

static char dir[64];

static int
commit(struct queue *q, struct queue_writer *w, char *err)
{
	return queue_finish(w, err, 300) == 0 && queue_sync_file(w, err, 300) == 0 &&
	    queue_publish(q, w, err, 300) == 0 ? 0 : -1;
}

static void
load_body(struct queue *q, const char *qid, char *out, size_t cap)
{
	struct qenv e;
	uint64_t off, len;
	char err[300];
	int fd;

	out[0] = '\0';
	CHECK(queue_load(q, qid, &e, &fd, &off, &len, err, sizeof(err)) == 0);
	if (len < cap) {
		CHECK(pread(fd, out, len, (off_t)off) == (ssize_t)len);
		out[len] = '\0';
	}
	close(fd);
	qenv_free(&e);
}

TEST(fields_prepended_into_the_gap_come_first_and_the_file_loads)
{
	struct queue q;
	struct queue_writer w;
	struct qrcpt r = { .addr = "bob@localhost", .orcpt = "bob@localhost" };
	struct qenv env = { .arrival = 1, .sender = "a@b", .rcpts = &r, .nrcpts = 1,
		.has_skip = 1, .skip = 4096 };
	char err[300], body[8192];
	const char *ar = "Authentication-Results: mx; spf=pass\r\n";
	char qid[32];

	CHECK(queue_open(dir, 0, &q, err, sizeof(err)) == 0);
	CHECK(queue_create(&q, &env, &w, err, sizeof(err)) == 0);
	CHECK(queue_append(&w, "Received: x\r\n\r\nbody\r\n", 22, err, sizeof(err)) == 0);
	CHECK(queue_prepend(&w, ar, strlen(ar), err, sizeof(err)) == 0);
	snprintf(qid, sizeof(qid), "%s", w.qid);
	CHECK(commit(&q, &w, err) == 0);
	load_body(&q, qid, body, sizeof(body));
	CHECK_STR(body, "Authentication-Results: mx; spf=pass\r\nReceived: x\r\n\r\nbody\r\n");
	queue_close(&q);
}

TEST(a_gap_left_unused_is_skipped_and_too_much_is_refused)
{
	struct queue q;
	struct queue_writer w;
	struct qrcpt r = { .addr = "bob@localhost", .orcpt = "bob@localhost" };
	struct qenv env = { .arrival = 1, .sender = "", .rcpts = &r, .nrcpts = 1,
		.has_skip = 1, .skip = 64 };
	char err[300], body[8192], big[100];
	char qid[32];

	memset(big, 'x', sizeof(big));
	CHECK(queue_open(dir, 0, &q, err, sizeof(err)) == 0);
	CHECK(queue_create(&q, &env, &w, err, sizeof(err)) == 0);
	CHECK(queue_append(&w, "Subject: s\r\n\r\nb\r\n", 17, err, sizeof(err)) == 0);
	CHECK(queue_prepend(&w, big, sizeof(big), err, sizeof(err)) < 0);
	CHECK(strstr(err, "do not fit") != NULL);
	snprintf(qid, sizeof(qid), "%s", w.qid);
	CHECK(commit(&q, &w, err) == 0);
	load_body(&q, qid, body, sizeof(body));
	CHECK_STR(body, "Subject: s\r\n\r\nb\r\n");
	queue_close(&q);
}

TEST(skip_must_have_exactly_five_digits)
{
	struct qenv e;
	size_t hl;
	char err[200];
	const char *ok = "IMSDQ 1\nid A\narrival 1\nclient 1.2.3.4\nhelo h\nsender \nbody 7bit\n"
	    "rcpt a@b\ta@b\nskip 00010\n\n";
	const char *bad = "IMSDQ 1\nid A\narrival 1\nclient 1.2.3.4\nhelo h\nsender \nbody 7bit\n"
	    "rcpt a@b\ta@b\nskip 10\n\n";

	CHECK(qfmt_header_decode(ok, strlen(ok), &e, &hl, err, sizeof(err)) == 0);
	CHECK(e.has_skip == 1 && e.skip == 10);
	qenv_free(&e);
	CHECK(qfmt_header_decode(bad, strlen(bad), &e, &hl, err, sizeof(err)) < 0);
	CHECK_STR(err, "bad skip");
}

int
main(void)
{
	char cmd[128];

	snprintf(dir, sizeof(dir), "/tmp/imsd-qg-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	RUN(fields_prepended_into_the_gap_come_first_and_the_file_loads);
	RUN(a_gap_left_unused_is_skipped_and_too_much_is_refused);
	RUN(skip_must_have_exactly_five_digits);
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	T_EXIT();
}
