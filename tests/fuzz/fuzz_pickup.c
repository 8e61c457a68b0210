/*
 * fuzz_pickup — the maildrop pickup end to end: a maildrop file, as any local user could
 * write it, goes through pickup_file (open, checks, envelope, streamed submission with
 * line ends normalised and dot-stuffing) over a socket pair to the real SMTP session.
 *
 * The first byte picks the shape: bit 0 a tiny message_size_limit, bit 1 a tiny
 * recipient_limit, bit 2 a file not yet complete (mode 0600). The rest is the file.
 * What must hold: the session never waits for more data after the client ends it (the
 * data end is always CRLF.CRLF: a stall is finding 2 of issue 24), the client never times
 * out, every message the session commits is the file's text with every line ending in
 * CRLF, and the file is gone from the maildrop unless the pickup says it waits.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "proto/sendmail.h"
#include "server/pickup.h"
#include "session/session.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct conf conf;
static int ready, dropfd, corruptfd;
static char spool[256];

/* the session side, one per input */
struct serve {
	int fd;
	struct session *s;
	char *got;		/* tx_write bytes of the open transaction */
	size_t gotlen, gotcap;
	const char *expect;	/* the normalised body, or NULL: no comparison */
	size_t expectlen;
	int stalled;		/* the client went away while the session waited for data */
	int commits;
};

static void
sv_output(void *arg, const char *buf, size_t len)
{
	struct serve *v = arg;

	while (len > 0) {
		ssize_t w = send(v->fd, buf, len, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		buf += w;
		len -= (size_t)w;
	}
}

static int
sv_open(void *arg, struct session_tx *tx)
{
	struct serve *v = arg;

	v->gotlen = 0;
	memcpy(tx->qid, "FUZZ", 5);
	return 0;
}

static int
sv_write(void *arg, const char *buf, size_t len)
{
	struct serve *v = arg;

	if (v->gotlen + len > v->gotcap) {
		size_t nc = (v->gotlen + len) * 2;
		char *n = realloc(v->got, nc);
		if (n == NULL)
			abort();
		v->got = n;
		v->gotcap = nc;
	}
	memcpy(v->got + v->gotlen, buf, len);
	v->gotlen += len;
	return 0;
}

static void
sv_commit(void *arg, struct session_tx *tx)
{
	struct serve *v = arg;

	v->commits++;
	if (tx->own > v->gotlen)
		abort();
	/* what was stored after our own Received header is the file's text, line ends CRLF */
	if (v->expect != NULL && (v->gotlen - tx->own != v->expectlen ||
	    memcmp(v->got + tx->own, v->expect, v->expectlen) != 0))
		abort();
}

static void sv_abort(void *arg) { }
static void sv_log(void *arg, int level, const char *line) { }
static void sv_starttls(void *arg) { abort(); }
static void sv_auth(void *arg, const char *u, const char *p) { abort(); }

static const struct session_ops ops = { sv_output, sv_open, sv_write, sv_commit, sv_abort,
    sv_log, sv_starttls, sv_auth, NULL, NULL, NULL, NULL, NULL };

static void *
serve_main(void *arg)
{
	struct serve *v = arg;
	char *pend = NULL;
	size_t pendlen = 0, cap = 0;

	session_start(v->s, NULL);
	for (;;) {
		char buf[16384];
		ssize_t r = recv(v->fd, buf, sizeof(buf), 0);
		if (r <= 0) {
			if (session_state(v->s) == SS_DATA)
				v->stalled = 1;
			break;
		}
		if (pendlen + (size_t)r > cap) {
			cap = (pendlen + (size_t)r) * 2;
			if ((pend = realloc(pend, cap)) == NULL)
				abort();
		}
		memcpy(pend + pendlen, buf, (size_t)r);
		pendlen += (size_t)r;
		for (;;) {
			size_t used = session_feed(v->s, pend, pendlen);
			memmove(pend, pend + used, pendlen - used);
			pendlen -= used;
			if (session_state(v->s) == SS_COMMIT) {
				session_commit_done(v->s, 1);
				continue;
			}
			if (used == 0 || session_state(v->s) == SS_CLOSING)
				break;
		}
		if (session_state(v->s) == SS_CLOSING)
			break;
	}
	free(pend);
	shutdown(v->fd, SHUT_RDWR);
	return NULL;
}

static struct serve *current;
static pthread_t server_thread;
static int connects;

/* the pickup's connection: a socket pair whose other end the session serves */
static int
fz_connect(void *arg)
{
	int sv[2];
	struct timeval tv = { 2, 0 };
	struct session_peer peer;
	struct session_opts opts = { .kind = SL_LOCAL };

	if (connects++ > 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&peer, 0, sizeof(peer));
	netaddr_parse("127.0.0.1", &peer.local);
	netaddr_parse("127.0.0.1", &peer.remote);
	peer.uid = 1000;
	current->fd = sv[1];
	current->s = session_new(&conf, NULL, &peer, &opts, "fz", &ops, current);
	if (current->s == NULL || pthread_create(&server_thread, NULL, serve_main, current) != 0)
		abort();
	return sv[0];
}

/* The body as it must arrive: every CR, LF or CRLF a CRLF, the last line ended. */
static char *
normalise(const char *b, size_t n, size_t *outlen)
{
	char *o = malloc(2 * n + 3);
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (b[i] == '\r' || b[i] == '\n') {
			if (b[i] == '\r' && i + 1 < n && b[i + 1] == '\n')
				i++;
			o[k++] = '\r';
			o[k++] = '\n';
		} else
			o[k++] = b[i];
	}
	if (k > 0 && o[k - 1] != '\n') {
		o[k++] = '\r';
		o[k++] = '\n';
	}
	*outlen = k;
	return o;
}

/* The spool made for the run goes when the process does (libFuzzer ends by exit()). */
static void
remove_spool(void)
{
	char path[300];

	unlinkat(dropfd, "f", 0);
	for (int i = 0; i < 10; i++) {
		char n[8];
		snprintf(n, sizeof(n), i ? "f.%d" : "f", i);
		unlinkat(corruptfd, n, 0);
	}
	snprintf(path, sizeof(path), "%s/maildrop", spool);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/corrupt", spool);
	rmdir(path);
	rmdir(spool);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct pickup *p;
	struct serve v;
	struct sm_drop d;
	char *expect = NULL;
	size_t expectlen = 0;

	if (!ready) {
		char path[300];
		log_set_level(-1);
		if (conf_parse("fuzz", "", 0, "mx.example", &conf, err, sizeof(err)) < 0)
			abort();
		snprintf(spool, sizeof(spool), "/tmp/fuzz_pickup.XXXXXX");
		if (mkdtemp(spool) == NULL)
			abort();
		snprintf(path, sizeof(path), "%s/maildrop", spool);
		mkdir(path, 0700);
		dropfd = open(path, O_RDONLY | O_DIRECTORY);
		snprintf(path, sizeof(path), "%s/corrupt", spool);
		mkdir(path, 0700);
		corruptfd = open(path, O_RDONLY | O_DIRECTORY);
		if (dropfd < 0 || corruptfd < 0)
			abort();
		atexit(remove_spool);
		ready = 1;
	}
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;
	conf.message_size_limit = (mode & 1) ? 2048 : 10485760;
	conf.recipient_limit = (mode & 2) ? 2 : 1000;

	int fd = openat(dropfd, "f", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size ||
	    fchmod(fd, (mode & 4) ? 0600 : 0644) < 0)
		abort();
	close(fd);

	/* the oracle for the text: only for files whose body the session keeps as it is */
	if (sm_drop_parse((const char *)data, size, &d, err, sizeof(err)) == 0) {
		/* the session removes Authentication-Results fields that could be taken for
		 * ours: no comparison for a text that names the field in any case */
		char *low = malloc(d.len + 1);
		if (low == NULL)
			abort();
		for (size_t i = 0; i < d.len; i++)
			low[i] = (char)tolower((unsigned char)d.data[i]);
		if (memmem(low, d.len, "authentication-results", 22) == NULL)
			expect = normalise(d.data, d.len, &expectlen);
		free(low);
		sm_drop_free(&d);
	}

	struct pickup_conf pc = { spool, "mx.example", 86400, conf.message_size_limit, 2 };
	if ((p = pickup_new(&pc, err, sizeof(err))) == NULL)
		abort();
	memset(&v, 0, sizeof(v));
	v.fd = -1;
	v.expect = expect;
	v.expectlen = expectlen;
	current = &v;
	connects = 0;
	pickup_set_connect(p, fz_connect, NULL);

	time_t t0 = time(NULL);
	enum pickup_result r = pickup_file(p, dropfd, "f", time(NULL));
	if (connects > 0) {
		pthread_join(server_thread, NULL);
		session_free(v.s);
		close(v.fd);
	}
	if (v.stalled)
		abort();	/* the session still wanted data when the client gave up */
	if (time(NULL) - t0 > 1)
		abort();	/* a timeout: something waited for the other side */
	struct stat st;
	if (r != PICKUP_LATER && fstatat(dropfd, "f", &st, AT_SYMLINK_NOFOLLOW) == 0)
		abort();	/* given up or done, but still in the maildrop */
	unlinkat(dropfd, "f", 0);
	for (int i = 0; i < 10; i++) {
		char n[8];
		snprintf(n, sizeof(n), i ? "f.%d" : "f", i);
		unlinkat(corruptfd, n, 0);
	}
	free(v.got);
	free(expect);
	pickup_stop(p);
	return 0;
}
