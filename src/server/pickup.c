/*
 * pickup — the maildrop pickup; see pickup.h.
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
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "net/submit.h"
#include "proto/sendmail.h"
#include "queue/spool_layout.h"
#include "server/local.h"
#include "server/pickup.h"
#include "util/log.h"

#define E(...) snprintf(err, errlen, __VA_ARGS__)
/* The largest envelope a maildrop file can have: SM_RCPTS_MAX addresses and the sender. */
#define DROP_ENVELOPE_MAX ((size_t)SM_RCPTS_MAX * (SM_ADDR_MAX + 3) + 1024)
#define FAILS_KEPT	64		/* files whose session failures are remembered */
#define CORRUPT_SWEEP	600		/* seconds between two looks at corrupt/ */

/* The uid the pickup thread submits for: our own connections to the socket carry it (a
 * connection from this process can only be the pickup's; the kernel says which process). */
static long pickup_uid = -1;

struct failed {
	char name[256];
	ino_t ino;
	unsigned count;
	time_t at;
};

struct pickup {
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	char spool[4096];
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char hostname[256];
	unsigned lifetime;		/* atomic: reload */
	uint64_t size_limit;		/* atomic: reload */
	unsigned timeout;
	int (*connect)(void *arg);
	void *connarg;
	struct failed fails[FAILS_KEPT];
	time_t corrupt_swept;
};

long
pickup_current_uid(void)
{
	return __atomic_load_n(&pickup_uid, __ATOMIC_ACQUIRE);
}

static int
connect_socket(void *arg)
{
	struct pickup *p = arg;
	int fd = submit_connect(p->sock);

	if (fd >= 0 && p->timeout != SUBMIT_TIMEOUT) {
		struct timeval tv = { p->timeout, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

struct pickup *
pickup_new(const struct pickup_conf *pc, char *err, size_t errlen)
{
	struct pickup *p = calloc(1, sizeof(*p));
	int n;

	if (p == NULL) {
		E("out of memory");
		return NULL;
	}
	snprintf(p->spool, sizeof(p->spool), "%s", pc->spool_dir);
	snprintf(p->hostname, sizeof(p->hostname), "%s", pc->hostname);
	n = snprintf(p->sock, sizeof(p->sock), "%s/%s", pc->spool_dir, LOCAL_SOCKET);
	if (n < 0 || (size_t)n >= sizeof(p->sock)) {
		E("%s/%s: path too long for a unix socket", pc->spool_dir, LOCAL_SOCKET);
		free(p);
		return NULL;
	}
	p->lifetime = pc->lifetime;
	p->size_limit = pc->message_size_limit;
	p->timeout = pc->timeout ? pc->timeout : SUBMIT_TIMEOUT;
	p->connect = connect_socket;
	p->connarg = p;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	return p;
}

void
pickup_set_connect(struct pickup *p, int (*fn)(void *arg), void *arg)
{
	p->connect = fn;
	p->connarg = arg;
}

void
pickup_set_limits(struct pickup *p, uint64_t message_size_limit, unsigned lifetime)
{
	if (p == NULL)
		return;
	__atomic_store_n(&p->size_limit, message_size_limit, __ATOMIC_RELAXED);
	__atomic_store_n(&p->lifetime, lifetime, __ATOMIC_RELAXED);
}

static uint64_t
file_max(struct pickup *p)
{
	return __atomic_load_n(&p->size_limit, __ATOMIC_RELAXED) + DROP_ENVELOPE_MAX;
}

static time_t
lifetime(struct pickup *p)
{
	return (time_t)__atomic_load_n(&p->lifetime, __ATOMIC_RELAXED);
}

/* ---- corrupt/ ---- */

static int
corrupt_dir(struct pickup *p)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", p->spool, LOCAL_CORRUPT);
	return open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/*
 * Copy size bytes of fd into a new file of ours in the directory cfd, named after name
 * (name.1 ... name.9 when taken). The name given is written into out. 0, or -1 (errno).
 */
static int
copy_into(int cfd, const char *name, int fd, uint64_t size, char *out, size_t outlen)
{
	char buf[65536];
	uint64_t off = 0;
	int dst = -1;

	for (int i = 0; i < 10 && dst < 0; i++) {
		if (i == 0)
			snprintf(out, outlen, "%s", name);
		else
			snprintf(out, outlen, "%s.%d", name, i);
		dst = openat(cfd, out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (dst < 0 && errno != EEXIST)
			return -1;
	}
	if (dst < 0)
		return -1;
	while (off < size) {
		size_t want = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
		ssize_t n = pread(fd, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;		/* shorter now than it was: what there is */
		for (ssize_t w = 0; w < n;) {
			ssize_t k = write(dst, buf + w, (size_t)(n - w));
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				int e = errno;
				close(dst);
				unlinkat(cfd, out, 0);
				errno = e;
				return -1;
			}
			w += k;
		}
		off += (uint64_t)n;
	}
	close(dst);
	return 0;
}

/*
 * Give up on a maildrop file: with fd (open on it, size bytes, bounded by the caller), a
 * copy of ours goes into corrupt/ and the original is removed; without, it is only removed
 * (a link, a file with several links, one too large: nothing to read). A log line either
 * way.
 */
static void
give_up(struct pickup *p, int dfd, const char *name, int fd, uint64_t size, long uid,
    const char *why)
{
	char lname[LOG_VALUE_MAX], lwhy[LOG_VALUE_MAX], copy[300], lcopy[LOG_VALUE_MAX];
	char leff[LOG_VALUE_MAX], eff[700];
	int cfd;

	log_value(lname, sizeof(lname), name, strlen(name));
	log_value(lwhy, sizeof(lwhy), why, strlen(why));
	if (fd >= 0) {
		if ((cfd = corrupt_dir(p)) < 0 || copy_into(cfd, name, fd, size, copy,
		    sizeof(copy)) < 0) {
			snprintf(eff, sizeof(eff), "cannot copy it to %s/: %s; removed", LOCAL_CORRUPT,
			    strerror(errno));
			unlinkat(dfd, name, 0);
			log_error("event=maildrop-corrupt file=%s uid=%ld reason=%s effect=%s", lname,
			    uid, lwhy, log_value(leff, sizeof(leff), eff, strlen(eff)));
			if (cfd >= 0)
				close(cfd);
			return;
		}
		close(cfd);
		unlinkat(dfd, name, 0);
		snprintf(eff, sizeof(eff), "%s/%s", LOCAL_CORRUPT, copy);
		log_error("event=maildrop-corrupt file=%s uid=%ld reason=%s effect=copied-and-removed "
		    "copy=%s", lname, uid, lwhy, log_value(lcopy, sizeof(lcopy), eff, strlen(eff)));
		return;
	}
	unlinkat(dfd, name, 0);
	log_error("event=maildrop-corrupt file=%s uid=%ld reason=%s effect=removed-not-copied",
	    lname, uid, lwhy);
}

/*
 * corrupt/ keeps its copies for queue_lifetime. A file there of another owner was moved
 * in by an earlier version (which renamed the user's file): its owner may still hold it
 * open, so it is replaced by a copy of ours, bounded like any maildrop file.
 */
static void
corrupt_sweep(struct pickup *p, time_t now)
{
	DIR *d;
	struct dirent *de;
	int cfd = corrupt_dir(p);
	uid_t me = geteuid();

	if (cfd < 0 || (d = fdopendir(cfd)) == NULL) {
		if (cfd >= 0)
			close(cfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		char lname[LOG_VALUE_MAX], copy[300];
		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
		    (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		if (fstatat(cfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		log_value(lname, sizeof(lname), de->d_name, strlen(de->d_name));
		if (S_ISREG(st.st_mode) && st.st_uid != me) {
			int fd = openat(cfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
			    O_CLOEXEC | O_NOCTTY);
			uint64_t n = (uint64_t)st.st_size < file_max(p) ? (uint64_t)st.st_size :
			    file_max(p);
			char base[260];
			snprintf(base, sizeof(base), "%.250s.copy", de->d_name);
			if (fd >= 0 && copy_into(cfd, base, fd, n, copy, sizeof(copy)) == 0)
				log_warn("event=corrupt-copied file=%s uid=%ld reason=\"owned by another "
				    "user, who may still hold it open\" effect=\"copied, the original "
				    "removed\"", lname, (long)st.st_uid);
			if (fd >= 0)
				close(fd);
			unlinkat(cfd, de->d_name, 0);
			continue;
		}
		if (now - st.st_mtime > lifetime(p)) {
			if (unlinkat(cfd, de->d_name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) == 0)
				log_info("event=corrupt-expired file=%s age=%lds", lname,
				    (long)(now - st.st_mtime));
		}
	}
	closedir(d);
}

/* ---- one file ---- */

static struct failed *
fails_of(struct pickup *p, const char *name, ino_t ino, int make, time_t now)
{
	struct failed *oldest = &p->fails[0];

	for (size_t i = 0; i < FAILS_KEPT; i++) {
		struct failed *f = &p->fails[i];
		if (f->count > 0 && f->ino == ino && strcmp(f->name, name) == 0)
			return f;
		if (f->count == 0 || f->at < oldest->at)
			oldest = f;
	}
	if (!make || strlen(name) >= sizeof(oldest->name))
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->name, sizeof(oldest->name), "%s", name);
	oldest->ino = ino;
	oldest->at = now;
	return oldest;
}

static void
fails_forget(struct pickup *p, const char *name, ino_t ino)
{
	struct failed *f = fails_of(p, name, ino, 0, 0);

	if (f != NULL)
		memset(f, 0, sizeof(*f));
}

static void
pickup_rejected(void *arg, const char *rcpt, int code, const char *text)
{
	char la[LOG_VALUE_MAX], lt[LOG_VALUE_MAX], lf[LOG_VALUE_MAX];
	const char *name = arg;

	log_error("event=maildrop-rejected file=%s to=%s reply=%s",
	    log_value(lf, sizeof(lf), name, strlen(name)), log_addr(la, sizeof(la), rcpt),
	    log_value(lt, sizeof(lt), text, strlen(text)));
}

/* Read the envelope: at most DROP_ENVELOPE_MAX bytes from the start of fd. */
static int
read_envelope(int fd, uint64_t size, struct sm_drop *d, uint64_t *body, char *err,
    size_t errlen)
{
	size_t n = size < DROP_ENVELOPE_MAX ? (size_t)size : DROP_ENVELOPE_MAX, got = 0;
	char *buf = malloc(n + 1);
	int r;

	if (buf == NULL) {
		E("out of memory");
		return -1;
	}
	while (got < n) {
		ssize_t k = pread(fd, buf + got, n - got, (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	r = sm_drop_parse(buf, got, d, err, errlen);
	if (r == 0)
		*body = (uint64_t)(d->data - buf);
	d->data = NULL;		/* buf goes; the body is read from the file */
	d->len = 0;
	free(buf);
	return r;
}

/* One file; see pickup.h. */
enum pickup_result
pickup_file(struct pickup *p, int dfd, const char *name, time_t now)
{
	struct stat st;
	struct sm_drop d;
	struct submit s;
	char err[512], lname[LOG_VALUE_MAX], lt[LOG_VALUE_MAX], lstage[64];
	size_t nrej = 0, done = 0;
	uint64_t body = 0;
	int fd, sfd, code;
	enum pickup_result ret = PICKUP_DONE;

	log_value(lname, sizeof(lname), name, strlen(name));
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return PICKUP_DONE;
		if (errno == ELOOP) {
			struct stat ls;
			long uid = fstatat(dfd, name, &ls, AT_SYMLINK_NOFOLLOW) == 0 ?
			    (long)ls.st_uid : -1;
			give_up(p, dfd, name, -1, 0, uid, "a symbolic link");
			return PICKUP_DONE;
		}
		log_warn("event=maildrop-error file=%s reason=%s", lname,
		    log_value(lt, sizeof(lt), strerror(errno), strlen(strerror(errno))));
		return PICKUP_LATER;
	}
	if (fstat(fd, &st) < 0) {
		close(fd);
		return PICKUP_LATER;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		if (S_ISDIR(st.st_mode))
			unlinkat(dfd, name, AT_REMOVEDIR);	/* empty ones only */
		else
			give_up(p, dfd, name, -1, 0, (long)st.st_uid, "not a regular file");
		return PICKUP_DONE;
	}
	if (st.st_nlink != 1) {
		close(fd);
		give_up(p, dfd, name, -1, 0, (long)st.st_uid, "has more than one link");
		return PICKUP_DONE;
	}
	if ((uint64_t)st.st_size > file_max(p)) {
		/* refused before anything is read: a sparse file costs no disk, but would cost
		 * the server its size in memory or time */
		close(fd);
		snprintf(err, sizeof(err), "larger than message_size_limit (%llu) and the largest "
		    "envelope allow: %llu bytes", (unsigned long long)__atomic_load_n(&p->size_limit,
		    __ATOMIC_RELAXED), (unsigned long long)st.st_size);
		give_up(p, dfd, name, -1, 0, (long)st.st_uid, err);
		return PICKUP_DONE;
	}
	if ((st.st_mode & 07777) != SPOOL_MODE_DROPPED) {
		/* still being written; abandoned if its writer died long ago */
		if (now - st.st_mtime > lifetime(p))
			give_up(p, dfd, name, fd, (uint64_t)st.st_size, (long)st.st_uid,
			    "incomplete (never made mode 0644) and older than queue_lifetime");
		close(fd);
		return PICKUP_LATER;
	}
	if (read_envelope(fd, (uint64_t)st.st_size, &d, &body, err, sizeof(err)) < 0) {
		give_up(p, dfd, name, fd, (uint64_t)st.st_size, (long)st.st_uid, err);
		close(fd);
		return PICKUP_DONE;
	}
	__atomic_store_n(&pickup_uid, (long)st.st_uid, __ATOMIC_RELEASE);
	if ((sfd = p->connect(p->connarg)) < 0) {
		int e = errno;
		__atomic_store_n(&pickup_uid, -1L, __ATOMIC_RELEASE);
		snprintf(err, sizeof(err), "%s: %s", p->sock, strerror(e));
		log_warn("event=maildrop-deferred file=%s reason=%s", lname,
		    log_value(lt, sizeof(lt), err, strlen(err)));
		sm_drop_free(&d);
		close(fd);
		return PICKUP_STOP;
	}
	/* the size measured now is what is sent: a writer still holding the file open may
	 * append, but not past this */
	struct submit_src src = { NULL, (size_t)((uint64_t)st.st_size - body), fd, body };
	submit_init(&s, sfd);
	code = submit_message(&s, p->hostname, d.sender, d.rcpts, d.nrcpts, &src,
	    pickup_rejected, (void *)name, &nrej, &done);
	close(sfd);
	__atomic_store_n(&pickup_uid, -1L, __ATOMIC_RELEASE);
	log_value(lt, sizeof(lt), s.text, strlen(s.text));
	log_value(lstage, sizeof(lstage), s.stage, strlen(s.stage));
	if (code >= 200 && code < 300) {
		unlinkat(dfd, name, 0);
		fails_forget(p, name, st.st_ino);
		log_info("event=pickup file=%s uid=%ld nrcpt=%zu rejected=%zu reply=%s", lname,
		    (long)st.st_uid, d.nrcpts, nrej, lt);
	} else if (code >= 500) {
		char why[700];
		snprintf(why, sizeof(why), "refused at %s: %s", s.stage, s.text);
		fails_forget(p, name, st.st_ino);
		give_up(p, dfd, name, fd, (uint64_t)st.st_size, (long)st.st_uid, why);
	} else if (code == 0 && (strcmp(s.stage, "DATA") == 0 ||
	    strcmp(s.stage, "end of data") == 0)) {
		/* The session broke or timed out on this file's data: the next file is not
		 * held up by it, and a file it happens to twice is given up. */
		struct failed *f = fails_of(p, name, st.st_ino, 1, now);
		unsigned n = f != NULL ? ++f->count : PICKUP_FAILS_MAX;
		if (f != NULL)
			f->at = now;
		log_warn("event=maildrop-failed file=%s uid=%ld stage=%s failures=%u reason=%s",
		    lname, (long)st.st_uid, lstage, n, lt);
		if (n >= PICKUP_FAILS_MAX) {
			char why[700];
			snprintf(why, sizeof(why), "the session failed on it %u times, the last at %s: "
			    "%s", n, s.stage, s.text);
			fails_forget(p, name, st.st_ino);
			give_up(p, dfd, name, fd, (uint64_t)st.st_size, (long)st.st_uid, why);
		} else
			ret = PICKUP_LATER;
	} else {
		/* Recipients queued in an earlier transaction of this file (recipient_limit)
		 * get it again when the file is retried: at least once, never lost. */
		log_warn("event=maildrop-deferred file=%s stage=%s done=%zu nrcpt=%zu reply=%s",
		    lname, lstage, done, d.nrcpts, lt);
		if (now - st.st_mtime > lifetime(p))
			give_up(p, dfd, name, fd, (uint64_t)st.st_size, (long)st.st_uid,
			    "deferred for longer than queue_lifetime");
		ret = code == 0 ? PICKUP_STOP : PICKUP_LATER;
	}
	sm_drop_free(&d);
	close(fd);
	return ret;
}

/* ---- the scan ---- */

struct entry {
	char *name;
	uid_t uid;
	time_t mtime;
	uint64_t bytes;
	int regular;
};

static int
by_age(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->name, y->name);
}

struct usage {
	uid_t uid;
	size_t files;
	uint64_t bytes;
};

/*
 * The per-user bound: walking the files oldest first, one that takes its owner past
 * PICKUP_USER_FILES files or PICKUP_USER_BYTES bytes is removed. Root and the run user
 * are not bounded (either could fill the disk anyway).
 */
static void
enforce_user_caps(int dfd, struct entry *e, size_t n)
{
	struct usage *u = calloc(n ? n : 1, sizeof(*u));
	size_t nu = 0;
	uid_t me = geteuid();

	if (u == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		size_t k;
		if (!e[i].regular || e[i].uid == 0 || e[i].uid == me)
			continue;
		for (k = 0; k < nu && u[k].uid != e[i].uid; k++)
			;
		if (k == nu)
			u[nu++].uid = e[i].uid;
		if (u[k].files + 1 > PICKUP_USER_FILES || u[k].bytes + e[i].bytes > PICKUP_USER_BYTES) {
			char lname[LOG_VALUE_MAX];
			if (unlinkat(dfd, e[i].name, 0) == 0)
				log_error("event=maildrop-over-limit file=%s uid=%ld files=%zu "
				    "bytes=%llu limit_files=%d limit_bytes=%llu effect=removed",
				    log_value(lname, sizeof(lname), e[i].name, strlen(e[i].name)),
				    (long)e[i].uid, u[k].files, (unsigned long long)u[k].bytes,
				    PICKUP_USER_FILES, (unsigned long long)PICKUP_USER_BYTES);
			e[i].regular = -1;	/* gone */
			continue;
		}
		u[k].files++;
		u[k].bytes += e[i].bytes;
	}
	free(u);
}

static int
stopping(struct pickup *p)
{
	pthread_mutex_lock(&p->mu);
	int stop = p->stop;
	pthread_mutex_unlock(&p->mu);
	return stop;
}

void
pickup_scan(struct pickup *p)
{
	char path[4200], lt[LOG_VALUE_MAX];
	DIR *dir;
	struct dirent *de;
	struct entry *e = NULL;
	size_t n = 0, cap = 0;
	time_t now = time(NULL);

	if (now - p->corrupt_swept >= CORRUPT_SWEEP) {
		corrupt_sweep(p, now);
		p->corrupt_swept = now;
	}
	snprintf(path, sizeof(path), "%s/%s", p->spool, LOCAL_MAILDROP);
	if ((dir = opendir(path)) == NULL) {
		char why[4400];
		snprintf(why, sizeof(why), "%s: %s", path, strerror(errno));
		log_warn("event=maildrop-error reason=%s", log_value(lt, sizeof(lt), why,
		    strlen(why)));
		return;
	}
	while (n < PICKUP_SCAN_MAX && (de = readdir(dir)) != NULL) {
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct entry *ne = realloc(e, nc * sizeof(*ne));
			if (ne == NULL)
				break;
			e = ne;
			cap = nc;
		}
		if ((e[n].name = strdup(de->d_name)) == NULL)
			break;
		e[n].uid = st.st_uid;
		e[n].mtime = st.st_mtime;
		e[n].bytes = (uint64_t)st.st_blocks * 512;
		e[n].regular = S_ISREG(st.st_mode);
		n++;
	}
	if (n > 1)
		qsort(e, n, sizeof(*e), by_age);
	enforce_user_caps(dirfd(dir), e, n);
	for (size_t i = 0; i < n; i++) {
		if (e[i].regular < 0)
			continue;
		if (stopping(p) || pickup_file(p, dirfd(dir), e[i].name, now) == PICKUP_STOP)
			break;
	}
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
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
pickup_start(const struct pickup_conf *pc, char *err, size_t errlen)
{
	struct pickup *p = pickup_new(pc, err, errlen);

	if (p == NULL)
		return NULL;
	if (pthread_create(&p->thread, NULL, pickup_main, p) != 0) {
		E("pickup thread: %s", strerror(errno));
		pickup_stop(p);
		return NULL;
	}
	p->started = 1;
	return p;
}

void
pickup_stop(struct pickup *p)
{
	if (p == NULL)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->mu);
		p->stop = 1;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
		unlink(p->sock);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
