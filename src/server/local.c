/*
 * local — the local submission socket and the maildrop pickup; see local.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "net/submit.h"
#include "proto/sendmail.h"
#include "queue/spool_layout.h"
#include "server/local.h"
#include "util/log.h"

#define E(...) snprintf(err, errlen, __VA_ARGS__)
/* A maildrop file is at most the envelope (SM_RCPTS_MAX addresses) plus this much message:
 * the server's message_size_limit decides about the message, this only bounds the read. */
#define DROP_MESSAGE_MAX (1024UL * 1024 * 1024)
#define DROP_ENVELOPE_MAX ((size_t)SM_RCPTS_MAX * (SM_ADDR_MAX + 3) + 1024)

/* The uid the pickup thread submits for: our own connections to the socket carry it (a
 * connection from this process can only be the pickup's; the kernel says which process). */
static long pickup_uid = -1;

struct pickup {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	char spool[4096];
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char hostname[256];
	unsigned lifetime;
};

/*
 * A directory of the spool for local users, created when missing and given its mode on
 * the descriptor: never a link followed (root does this at start, in a directory the run
 * user owns). fd, or -1 with err naming the path.
 */
static int
local_subdir(int spoolfd, const char *spool_dir, const char *name, mode_t mode, char *err,
    size_t errlen)
{
	struct stat st;
	int fd;

	if (mkdirat(spoolfd, name, SPOOL_MODE_PRIVATE) < 0 && errno != EEXIST) {
		E("%s/%s: %s", spool_dir, name, strerror(errno));
		return -1;
	}
	fd = openat(spoolfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
		E("%s/%s: not a directory but a symbolic link or a file: imsd does not follow "
		    "links in the spool; remove it", spool_dir, name);
		return -1;
	}
	if (fd < 0 || fstat(fd, &st) < 0 || ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)) {
		E("%s/%s: %s", spool_dir, name, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int
local_listen(int spoolfd, const char *spool_dir, char *err, size_t errlen)
{
	struct stat st;
	char path[4096];
	int fd, n, sub;
	mode_t old;

	/* local users reach the socket and the maildrop, and list nothing */
	if (fstat(spoolfd, &st) < 0 || ((st.st_mode & 07777) != SPOOL_MODE_TOP && fchmod(spoolfd, SPOOL_MODE_TOP) < 0)) {
		E("%s: cannot make it reachable for local submission: %s", spool_dir,
		    strerror(errno));
		return -1;
	}
	if ((sub = local_subdir(spoolfd, spool_dir, LOCAL_MAILDROP, SPOOL_MODE_MAILDROP, err, errlen)) < 0)
		return -1;
	close(sub);
	if ((sub = local_subdir(spoolfd, spool_dir, LOCAL_CORRUPT, SPOOL_MODE_PRIVATE, err, errlen)) < 0)
		return -1;
	close(sub);
	n = snprintf(path, sizeof(path), "%s/%s", spool_dir, LOCAL_SOCKET);
	/* the clients (imsd sendmail, the pickup) connect by the whole path */
	if (n < 0 || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		E("%s/%s: path too long for a unix socket", spool_dir, LOCAL_SOCKET);
		return -1;
	}
	/* We hold the spool lock: a socket left there is stale. Anything else was put there
	 * by someone else (bind would not replace it, and nothing is followed). */
	if (fstatat(spoolfd, LOCAL_SOCKET, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			E("%s: not a socket but %s: imsd does not use it; remove it", path,
			    S_ISLNK(st.st_mode) ? "a symbolic link" : "something else");
			return -1;
		}
		if (unlinkat(spoolfd, LOCAL_SOCKET, 0) < 0) {
			E("%s: %s", path, strerror(errno));
			return -1;
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		E("%s: socket: %s", path, strerror(errno));
		return -1;
	}
	/* Created with its mode (0666: any local user may submit): no chmod by name after
	 * the bind, which a rename in between would turn onto another file. Bound by its
	 * name inside the spool's descriptor (bind never follows the last component, and
	 * no path is walked again); no thread runs yet, so the working directory may move. */
	struct sockaddr_un rel = { .sun_family = AF_UNIX };
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC), e;
	memcpy(rel.sun_path, LOCAL_SOCKET, sizeof(LOCAL_SOCKET));
	if (cwd < 0 || fchdir(spoolfd) < 0) {
		E("%s: %s", spool_dir, strerror(errno));
		if (cwd >= 0)
			close(cwd);
		close(fd);
		return -1;
	}
	old = umask(0777 & ~SPOOL_MODE_SUBMIT);
	n = bind(fd, (struct sockaddr *)&rel, sizeof(rel));
	e = errno;
	umask(old);
	if (fchdir(cwd) < 0)
		fatal("event=startup-error reason=\"cannot return to the working directory: %s\"",
		    strerror(errno));
	close(cwd);
	errno = e;
	if (n < 0 || listen(fd, 128) < 0) {
		E("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	log_info("event=listening address=%s listener=local", path);
	return fd;
}

int
local_peer(int fd, struct session_peer *peer)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	memset(peer, 0, sizeof(*peer));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || len != sizeof(cr))
		return -1;
	peer->uid = (long)cr.uid;
	if (cr.pid == getpid()) {
		long u = __atomic_load_n(&pickup_uid, __ATOMIC_ACQUIRE);
		if (u >= 0)
			peer->uid = u;
	}
	netaddr_parse("127.0.0.1", &peer->local);
	netaddr_parse("127.0.0.1", &peer->remote);
	return 0;
}

/* ---- the pickup ---- */

static void
to_corrupt(struct pickup *p, int dfd, const char *name, const char *why)
{
	char dst[4200], lwhy[LOG_VALUE_MAX];

	snprintf(dst, sizeof(dst), "%s/%s/%s", p->spool, LOCAL_CORRUPT, name);
	if (renameat(dfd, name, AT_FDCWD, dst) < 0) {
		log_error("event=maildrop-corrupt file=%s reason=%s effect=\"cannot move it to "
		    "%s/: %s; removed\"", name, log_value(lwhy, sizeof(lwhy), why, strlen(why)),
		    LOCAL_CORRUPT, strerror(errno));
		unlinkat(dfd, name, 0);
		return;
	}
	log_error("event=maildrop-corrupt file=%s reason=%s effect=\"moved to %s\"", name,
	    log_value(lwhy, sizeof(lwhy), why, strlen(why)), dst);
}

static void
pickup_rejected(void *arg, const char *rcpt, int code, const char *text)
{
	char la[LOG_VALUE_MAX], lt[LOG_VALUE_MAX];

	log_error("event=maildrop-rejected file=%s to=%s reply=%s", (const char *)arg,
	    log_addr(la, sizeof(la), rcpt), log_value(lt, sizeof(lt), text, strlen(text)));
}

/* One file. 1 done (or given up), 0 left for later, -1 the server is not answering. */
static int
pickup_file(struct pickup *p, int dfd, const char *name, time_t now)
{
	struct stat st;
	struct sm_drop d;
	struct submit s;
	char err[512], *buf = NULL;
	size_t got = 0, nrej = 0, done = 0;
	int fd, sfd, code, ret = 1;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		if (errno == ELOOP) {
			to_corrupt(p, dfd, name, "a symbolic link");
			return 1;
		}
		log_warn("event=maildrop-error file=%s reason=\"%s\"", name, strerror(errno));
		return 0;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		if (S_ISDIR(st.st_mode))
			unlinkat(dfd, name, AT_REMOVEDIR);
		else
			to_corrupt(p, dfd, name, "not a regular file");
		return 1;
	}
	if ((st.st_mode & 07777) != 0644) {
		/* still being written; abandoned if its writer died long ago */
		close(fd);
		if (now - st.st_mtime > (time_t)p->lifetime)
			to_corrupt(p, dfd, name, "incomplete (never made mode 0644) and older than "
			    "queue_lifetime");
		return 0;
	}
	if (st.st_nlink != 1) {
		close(fd);
		to_corrupt(p, dfd, name, "has more than one link");
		return 1;
	}
	if ((uint64_t)st.st_size > DROP_MESSAGE_MAX + DROP_ENVELOPE_MAX) {
		close(fd);
		to_corrupt(p, dfd, name, "larger than any message could be");
		return 1;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return 0;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (sm_drop_parse(buf, got, &d, err, sizeof(err)) < 0) {
		free(buf);
		to_corrupt(p, dfd, name, err);
		return 1;
	}
	__atomic_store_n(&pickup_uid, (long)st.st_uid, __ATOMIC_RELEASE);
	if ((sfd = submit_connect(p->sock)) < 0) {
		log_warn("event=maildrop-deferred file=%s reason=\"%s: %s\"", name, p->sock,
		    strerror(errno));
		sm_drop_free(&d);
		free(buf);
		return -1;
	}
	submit_init(&s, sfd);
	code = submit_message(&s, p->hostname, d.sender, d.rcpts, d.nrcpts, d.data, d.len,
	    pickup_rejected, (void *)name, &nrej, &done);
	close(sfd);
	__atomic_store_n(&pickup_uid, -1L, __ATOMIC_RELEASE);
	char lt[LOG_VALUE_MAX];
	log_value(lt, sizeof(lt), s.text, strlen(s.text));
	if (code >= 200 && code < 300) {
		unlinkat(dfd, name, 0);
		log_info("event=pickup file=%s uid=%ld nrcpt=%zu rejected=%zu reply=%s", name,
		    (long)st.st_uid, d.nrcpts, nrej, lt);
	} else if (code >= 500) {
		char why[700];
		snprintf(why, sizeof(why), "refused at %s: %s", s.stage, s.text);
		to_corrupt(p, dfd, name, why);
	} else {
		/* Recipients queued in an earlier transaction of this file (recipient_limit)
		 * get it again when the file is retried: at least once, never lost. */
		log_warn("event=maildrop-deferred file=%s stage=%s done=%zu nrcpt=%zu reply=%s",
		    name, s.stage, done, d.nrcpts, lt);
		if (now - st.st_mtime > (time_t)p->lifetime)
			to_corrupt(p, dfd, name, "deferred for longer than queue_lifetime");
		ret = code == 0 ? -1 : 0;
	}
	sm_drop_free(&d);
	free(buf);
	return ret;
}

static void
pickup_scan(struct pickup *p)
{
	char path[4200];
	DIR *dir;
	struct dirent *de;
	time_t now = time(NULL);

	snprintf(path, sizeof(path), "%s/%s", p->spool, LOCAL_MAILDROP);
	if ((dir = opendir(path)) == NULL) {
		log_warn("event=maildrop-error reason=\"%s: %s\"", path, strerror(errno));
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		pthread_mutex_lock(&p->mu);
		int stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop || pickup_file(p, dirfd(dir), de->d_name, now) < 0)
			break;
	}
	closedir(dir);
}

static void *
pickup_main(void *arg)
{
	struct pickup *p = arg;

	pthread_setname_np(pthread_self(), "imsd-pickup");
	for (;;) {
		struct timespec ts;

		pickup_scan(p);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += PICKUP_SECONDS;
		pthread_mutex_lock(&p->mu);
		while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &ts) != ETIMEDOUT)
			;
		int stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			return NULL;
	}
}

struct pickup *
pickup_start(const char *spool_dir, const char *hostname, unsigned lifetime, char *err,
    size_t errlen)
{
	struct pickup *p = calloc(1, sizeof(*p));
	int n;

	if (p == NULL) {
		E("out of memory");
		return NULL;
	}
	snprintf(p->spool, sizeof(p->spool), "%s", spool_dir);
	snprintf(p->hostname, sizeof(p->hostname), "%s", hostname);
	n = snprintf(p->sock, sizeof(p->sock), "%s/%s", spool_dir, LOCAL_SOCKET);
	if (n < 0 || (size_t)n >= sizeof(p->sock)) {
		E("%s/%s: path too long for a unix socket", spool_dir, LOCAL_SOCKET);
		free(p);
		return NULL;
	}
	p->lifetime = lifetime;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (pthread_create(&p->thread, NULL, pickup_main, p) != 0) {
		E("pickup thread: %s", strerror(errno));
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		free(p);
		return NULL;
	}
	return p;
}

void
pickup_stop(struct pickup *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	unlink(p->sock);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
