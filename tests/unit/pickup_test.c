/*
 * pickup_test — the maildrop pickup against a fake server on a socket pair: a file whose
 * session times out does not hold up the next one and goes to corrupt/ (as a copy) after
 * its second failure; what reaches the server always has CRLF line ends and the data end
 * CRLF.CRLF, whatever the file had (issue 24, finding 2).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "server/pickup.h"
#include "t.h"

static char spool[256], drop[300], corrupt[300];

/* What the fake server saw of each message (the bytes after 354, up to the final dot). */
static char seen[8][4096];
static size_t nseen;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void
say(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) < 0) {
		/* the client went away */
	}
}

/* A line-at-a-time SMTP server: 250 to everything, 354 to DATA; it never answers the end
 * of a message whose text has "Subject: stall" (a server that hangs). */
static void *
fake_server(void *arg)
{
	int fd = (int)(long)arg;
	char buf[65536];
	size_t len = 0;
	int data = 0;

	say(fd, "220 fake\r\n");
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		for (;;) {
			if (data) {
				char *end = strstr(buf, "\r\n.\r\n");
				if (end == NULL)
					break;
				pthread_mutex_lock(&mu);
				if (nseen < 8) {
					size_t k = (size_t)(end - buf) + 5;
					if (k >= sizeof(seen[0]))
						k = sizeof(seen[0]) - 1;
					memcpy(seen[nseen], buf, k);
					seen[nseen][k] = '\0';
					nseen++;
				}
				pthread_mutex_unlock(&mu);
				int stall = strstr(buf, "Subject: stall") != NULL;
				size_t used = (size_t)(end - buf) + 5;
				memmove(buf, buf + used, len - used + 1);
				len -= used;
				data = 0;
				if (stall)
					goto hang;
				say(fd, "250 2.0.0 queued\r\n");
				continue;
			}
			char *nl = strstr(buf, "\r\n");
			if (nl == NULL)
				break;
			size_t used = (size_t)(nl - buf) + 2;
			if (strncmp(buf, "DATA", 4) == 0) {
				say(fd, "354 go\r\n");
				data = 1;
			} else if (strncmp(buf, "QUIT", 4) == 0)
				say(fd, "221 bye\r\n");
			else
				say(fd, "250 ok\r\n");
			memmove(buf, buf + used, len - used + 1);
			len -= used;
		}
	}
hang:
	/* wait for the client to give up */
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	return NULL;
}

static int
fake_connect(void *arg)
{
	int sv[2];
	pthread_t t;
	struct timeval tv = { 1, 0 };

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (pthread_create(&t, NULL, fake_server, (void *)(long)sv[1]) != 0)
		return -1;
	pthread_detach(t);
	return sv[0];
}

static void
drop_file(const char *name, const char *text, time_t mtime)
{
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", drop, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	fchmod(fd, 0644);
	close(fd);
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
	utimensat(AT_FDCWD, path, ts, 0);
}

static int
exists(const char *dir, const char *name)
{
	char path[400];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

static struct pickup *
new_pickup(void)
{
	char err[256];
	struct pickup_conf pc = { spool, "client.test", 86400, 10 * 1024 * 1024, 1 };
	struct pickup *p = pickup_new(&pc, err, sizeof(err));

	if (p == NULL)
		abort();
	pickup_set_connect(p, fake_connect, NULL);
	return p;
}

TEST(a_session_that_times_out_moves_on_and_the_file_goes_to_corrupt_after_two)
{
	struct pickup *p = new_pickup();
	time_t now = time(NULL);

	nseen = 0;
	drop_file("a-stall", "IMSD-MAILDROP 1\nS a@localhost\nR b@localhost\n\nSubject: stall\n\n"
	    "x\n", now - 100);
	drop_file("b-ok", "IMSD-MAILDROP 1\nS a@localhost\nR b@localhost\n\nSubject: fine\n\n"
	    "y\n", now - 50);
	time_t t0 = time(NULL);
	pickup_scan(p);
	CHECK(time(NULL) - t0 < 5);		/* one timeout (1 s), not one per file */
	CHECK(exists(drop, "a-stall"));	/* failed once: kept for the next scan */
	CHECK(!exists(drop, "b-ok"));		/* not held up: delivered */
	CHECK(!exists(corrupt, "a-stall"));
	pickup_scan(p);
	CHECK(!exists(drop, "a-stall"));	/* the second failure: given up */
	CHECK(exists(corrupt, "a-stall"));
	char path[400];
	struct stat st;
	snprintf(path, sizeof(path), "%s/a-stall", corrupt);
	CHECK(stat(path, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 0777) == 0600);
	pickup_stop(p);
}

TEST(lf_cr_and_crlf_lines_all_reach_the_server_as_crlf_and_the_end_is_crlf_dot_crlf)
{
	struct pickup *p = new_pickup();
	time_t now = time(NULL);

	nseen = 0;
	/* the reviewer's file (LF only, ending in a bare LF), one ending without any line end,
	 * one with bare CRs and dots */
	drop_file("c-lf", "IMSD-MAILDROP 1\nS a@localhost\nR bob@localhost\n\nSubject: x\n\nhi\n",
	    now - 30);
	drop_file("d-noend", "IMSD-MAILDROP 1\nS a@localhost\nR bob@localhost\n\nSubject: y\r\n\r\n"
	    "no end", now - 20);
	drop_file("e-cr", "IMSD-MAILDROP 1\nS a@localhost\nR bob@localhost\n\nSubject: z\r\r\n.dot\r"
	    "last\r", now - 10);
	pickup_scan(p);
	CHECK(!exists(drop, "c-lf") && !exists(drop, "d-noend") && !exists(drop, "e-cr"));
	CHECK(nseen == 3);
	for (size_t i = 0; i < nseen && i < 3; i++) {
		const char *m = seen[i];
		size_t n = strlen(m);
		CHECK(n >= 5 && strcmp(m + n - 5, "\r\n.\r\n") == 0);
		for (size_t k = 0; k < n; k++) {
			if (m[k] == '\n')
				CHECK(k > 0 && m[k - 1] == '\r');
			if (m[k] == '\r')
				CHECK(k + 1 < n && m[k + 1] == '\n');
		}
	}
	CHECK_STR(seen[0], "Subject: x\r\n\r\nhi\r\n.\r\n");
	CHECK_STR(seen[1], "Subject: y\r\n\r\nno end\r\n.\r\n");
	CHECK_STR(seen[2], "Subject: z\r\n\r\n..dot\r\nlast\r\n.\r\n");
	pickup_stop(p);
}

int
main(void)
{
	snprintf(spool, sizeof(spool), "/tmp/pickup_test.XXXXXX");
	if (mkdtemp(spool) == NULL)
		return 1;
	snprintf(drop, sizeof(drop), "%s/maildrop", spool);
	snprintf(corrupt, sizeof(corrupt), "%s/corrupt", spool);
	mkdir(drop, 0700);
	mkdir(corrupt, 0700);
	RUN(a_session_that_times_out_moves_on_and_the_file_goes_to_corrupt_after_two);
	RUN(lf_cr_and_crlf_lines_all_reach_the_server_as_crlf_and_the_end_is_crlf_dot_crlf);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", spool);
	if (system(cmd) != 0) {
		/* a temporary directory left behind */
	}
	T_EXIT();
}
