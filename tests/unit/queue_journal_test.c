/* queue_journal: a failed append (a full disk) leaves no torn record behind. */
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/queue.h"
#include "t.h"

static char dir[64];

static size_t
read_journal(const char *qid, char *buf, size_t cap)
{
	char path[200];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/queue/%s.j", dir, qid);
	if ((f = fopen(path, "rb")) == NULL)
		return 0;
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

/* RLIMIT_FSIZE cuts a write short and then fails it (EFBIG), as a filling disk does
 * with ENOSPC: the first part of the record reaches the file. */
TEST(failed_append_cuts_the_torn_record_and_the_next_append_is_clean)
{
	struct queue q;
	struct rlimit old, lim;
	char err[300], buf[256];
	const char *qid = "0123456789ABCDEF";

	memset(&q, 0, sizeof(q));
	CHECK(queue_open(dir, 0, &q, err, sizeof(err)) == 0);
	CHECK(queue_journal(&q, qid, "done 0\n", err, sizeof(err)) == 0);
	CHECK(read_journal(qid, buf, sizeof(buf)) == 7);

	signal(SIGXFSZ, SIG_IGN);
	CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = 7 + 4;	/* "fail" fits, the rest does not */
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	CHECK(queue_journal(&q, qid, "fail 1 5.1.1 no such user\n", err, sizeof(err)) < 0);
	CHECK(strstr(err, "journal write") != NULL);
	CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, SIG_DFL);

	CHECK(read_journal(qid, buf, sizeof(buf)) == 7);
	CHECK_STR(buf, "done 0\n");
	CHECK(queue_journal(&q, qid, "done 1\n", err, sizeof(err)) == 0);
	read_journal(qid, buf, sizeof(buf));
	CHECK_STR(buf, "done 0\ndone 1\n");
	queue_close(&q);
}

int
main(void)
{
	char cmd[128];

	snprintf(dir, sizeof(dir), "/tmp/imsd-qj-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	RUN(failed_append_cuts_the_torn_record_and_the_next_append_is_clean);
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	T_EXIT();
}
