/*
 * policyc_test — the policy service client against a scripted server in a thread (a unix
 * socket in a temporary directory): answers, connection reuse, a dead idle connection
 * replaced once, timeouts, garbage, an answer out of turn, the cache; and the request's
 * attributes.
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "net/policyc.h"
#include "proto/policyd.h"
#include "t.h"

static char dir[64], sock[128];
static int lfd, accepts;
static int close_after_answer;		/* the server closes every connection after answering */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* The value of "recipient=" in req. */
static void
recipient_of(const char *req, char *out, size_t n)
{
	const char *p = strstr(req, "\nrecipient=");

	out[0] = '\0';
	if (p == NULL)
		return;
	p += 11;
	for (size_t i = 0; i + 1 < n && p[i] && p[i] != '\n'; i++) {
		out[i] = p[i];
		out[i + 1] = '\0';
	}
}

static void *
serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[8192], rcpt[128];
	size_t have = 0;

	for (;;) {
		char *end;
		ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);

		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		if ((end = strstr(buf, "\n\n")) == NULL)
			continue;
		recipient_of(buf, rcpt, sizeof rcpt);
		have = 0;
		if (strcmp(rcpt, "close@x") == 0)
			break;
		if (strcmp(rcpt, "slow@x") == 0) {
			sleep(3);
			break;
		}
		if (strcmp(rcpt, "garbage@x") == 0) {
			write(fd, "garbage\n\n", 9);
			continue;
		}
		if (strcmp(rcpt, "twice@x") == 0) {
			write(fd, "action=OK\n\naction=REJECT\n\n", 26);
			continue;
		}
		if (strcmp(rcpt, "grey@x") == 0)
			write(fd, "action=DEFER_IF_PERMIT Greylisted\n\n", 35);
		else
			write(fd, "action=DUNNO\n\n", 14);
		pthread_mutex_lock(&mu);
		n = close_after_answer;
		pthread_mutex_unlock(&mu);
		if (n)
			break;
	}
	close(fd);
	return NULL;
}

static void *
server(void *arg)
{
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		pthread_t t;

		if (fd < 0)
			return NULL;
		pthread_mutex_lock(&mu);
		accepts++;
		pthread_mutex_unlock(&mu);
		pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}

static int
naccepts(void)
{
	int n;

	pthread_mutex_lock(&mu);
	n = accepts;
	pthread_mutex_unlock(&mu);
	return n;
}

static void
start_server(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	pthread_t t;

	strcpy(dir, "/tmp/imsd-policyc-XXXXXX");
	mkdtemp(dir);
	snprintf(sock, sizeof sock, "%s/policy", dir);
	strcpy(sun.sun_path, sock);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	bind(lfd, (struct sockaddr *)&sun, sizeof sun);
	listen(lfd, 16);
	pthread_create(&t, NULL, server, NULL);
	pthread_detach(t);
}

static char action[POLICYD_ACTION_MAX], why[256];

static int
ask(struct policyc *p, const char *rcpt, unsigned timeout)
{
	struct policyd_request r = { .protocol_state = "RCPT", .recipient = rcpt };
	struct sbuf b = { 0 };
	int rc;

	policyd_request_put(&b, &r, 0);
	why[0] = '\0';
	rc = policyc_ask(p, b.p, b.len, timeout, action, why, sizeof why);
	free(b.p);
	return rc;
}

TEST(answers_come_back_and_the_connection_is_kept)
{
	struct policyc *p = policyc_new_unix(sock, why, sizeof why);
	int before = naccepts();

	CHECK(p != NULL);
	CHECK(ask(p, "a@x", 5) == 0);
	CHECK_STR(action, "DUNNO");
	CHECK(ask(p, "grey@x", 5) == 0);
	CHECK_STR(action, "DEFER_IF_PERMIT Greylisted");
	CHECK(ask(p, "b@x", 5) == 0);
	CHECK(naccepts() - before == 1);		/* one connection for all three */
	policyc_free(p);
}

TEST(a_dead_idle_connection_is_replaced_once)
{
	struct policyc *p = policyc_new_unix(sock, why, sizeof why);
	int before = naccepts();

	pthread_mutex_lock(&mu);
	close_after_answer = 1;
	pthread_mutex_unlock(&mu);
	CHECK(ask(p, "a@x", 5) == 0);
	usleep(100000);				/* the server has closed it meanwhile */
	CHECK(ask(p, "b@x", 5) == 0);
	CHECK_STR(action, "DUNNO");
	CHECK(naccepts() - before == 2);
	pthread_mutex_lock(&mu);
	close_after_answer = 0;
	pthread_mutex_unlock(&mu);
	policyc_free(p);
}

TEST(failures_are_said_and_nothing_hangs)
{
	struct policyc *p = policyc_new_unix(sock, why, sizeof why), *q;
	struct timespec t0, t1;

	CHECK(ask(p, "close@x", 5) == -1);
	CHECK(strstr(why, "closed the connection") != NULL);
	CHECK(ask(p, "garbage@x", 5) == -1);
	CHECK(strstr(why, "malformed") != NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(ask(p, "slow@x", 1) == -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(strstr(why, "timed out") != NULL);
	CHECK(t1.tv_sec - t0.tv_sec <= 2);
	/* an answer out of turn: the first counts, the connection is not kept */
	CHECK(ask(p, "twice@x", 5) == 0);
	CHECK_STR(action, "OK");
	CHECK(ask(p, "c@x", 5) == 0);
	CHECK_STR(action, "DUNNO");
	policyc_free(p);

	q = policyc_new_unix("/nonexistent/policy", why, sizeof why);
	CHECK(q != NULL && ask(q, "a@x", 1) == -1 && strstr(why, "connect") != NULL);
	policyc_free(q);
	q = policyc_new_inet("127.0.0.1", 1, why, sizeof why);	/* nothing listens there */
	CHECK(q != NULL && ask(q, "a@x", 1) == -1);
	policyc_free(q);
	CHECK(policyc_new_inet("no-such-host.invalid", 1, why, sizeof why) == NULL);
}

TEST(the_cache_keeps_answers_for_their_time_only)
{
	struct policyc *p = policyc_new_unix(sock, why, sizeof why);
	char key[32];

	CHECK(policyc_cache_get(p, "k", 1, 100, action) == 0);
	policyc_cache_put(p, "k", 1, "OK", 100, 60);
	CHECK(policyc_cache_get(p, "k", 1, 159, action) == 1);
	CHECK_STR(action, "OK");
	CHECK(policyc_cache_get(p, "k", 1, 160, action) == 0);	/* expired */
	policyc_cache_put(p, "k", 1, "REJECT no", 200, 10);
	CHECK(policyc_cache_get(p, "k", 1, 205, action) == 1);
	CHECK_STR(action, "REJECT no");
	policyc_cache_put(p, "z", 1, "OK", 200, 0);			/* ttl 0: not kept */
	CHECK(policyc_cache_get(p, "z", 1, 200, action) == 0);
	/* far more keys than slots: bounded, and the newest is there */
	for (int i = 0; i < 3 * POLICYC_CACHE_MAX; i++) {
		int n = snprintf(key, sizeof key, "key%d", i);

		policyc_cache_put(p, key, (size_t)n, "DUNNO", 300, 100);
	}
	CHECK(policyc_cache_get(p, key, strlen(key), 301, action) == 1);
	policyc_free(p);
}

TEST(request_attributes_and_the_cache_key)
{
	struct policyd_request r = { .protocol_state = "RCPT", .protocol_name = "ESMTP",
	    .helo_name = "client.example", .queue_id = "Q1", .sender = "a@b.example",
	    .recipient = "c@d.example", .client_address = "192.0.2.1", .client_name = "unknown",
	    .reverse_client_name = "unknown", .client_port = 4000, .server_address = "192.0.2.25",
	    .server_port = 25, .instance = "i.1", .size = 1234, .encryption_protocol = "TLSv1.3",
	    .encryption_keysize = 256, .policy_context = "grey" };
	struct sbuf b = { 0 }, k = { 0 };

	policyd_request_put(&b, &r, 0);
	CHECK(strncmp(b.p, "request=smtpd_access_policy\nprotocol_state=RCPT\n", 48) == 0);
	CHECK(strstr(b.p, "\nsender=a@b.example\nrecipient=c@d.example\n") != NULL);
	CHECK(strstr(b.p, "\nclient_port=4000\n") && strstr(b.p, "\ninstance=i.1\n"));
	CHECK(strstr(b.p, "\nqueue_id=Q1\n") && strstr(b.p, "\nsize=1234\n"));
	CHECK(strstr(b.p, "\nsasl_username=\n") != NULL);		/* unknown: empty */
	CHECK(strstr(b.p, "\nencryption_keysize=256\n") && strstr(b.p, "\npolicy_context=grey\n"));
	CHECK(b.len >= 2 && strcmp(b.p + b.len - 2, "\n\n") == 0);
	policyd_request_put(&k, &r, 1);
	CHECK(strstr(k.p, "instance=") == NULL && strstr(k.p, "queue_id=") == NULL);
	CHECK(strstr(k.p, "client_port=") == NULL && strstr(k.p, "recipient=c@d.example") != NULL);
	free(b.p);
	free(k.p);
}

int
main(void)
{
	start_server();
	RUN(answers_come_back_and_the_connection_is_kept);
	RUN(a_dead_idle_connection_is_replaced_once);
	RUN(failures_are_said_and_nothing_hangs);
	RUN(the_cache_keeps_answers_for_their_time_only);
	RUN(request_attributes_and_the_cache_key);
	close(lfd);
	unlink(sock);
	rmdir(dir);
	T_EXIT();
}
