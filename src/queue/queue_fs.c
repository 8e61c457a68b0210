/*
 * queue_fs — the spool directory; see queue.h.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/queue.h"
#include "queue/spool_layout.h"
#include "util/fs.h"

#define E(...) snprintf(err, errlen, __VA_ARGS__)

static void free_scan(struct queue *q);

/*
 * Open a file of the spool: never through a link, never anything but a regular file (the
 * spool belongs to the run user, and commands run by root read it too; a link there could
 * name a file of root's, a FIFO could block). -1 with errno (ELOOP for a link or a file
 * that is not regular).
 */
static int
spool_openat(int dfd, const char *name, int flags, mode_t mode)
{
	struct stat st;
	int fd = openat(dfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = ELOOP;
		return -1;
	}
	return fd;
}

/* A subdirectory of the spool, created when missing; never a link followed (the spool
 * belongs to the run user, and root opens it at start): ELOOP or ENOTDIR for anything but
 * a directory. */
static int
open_subdir(int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, SPOOL_MODE_PRIVATE) < 0 && errno != EEXIST)
		return -1;
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* "owner:group, mode 0NNN" of name in dirfd, for an error that says whom it belongs to. */
static void
describe_owner(int dirfd, const char *name, char *out, size_t len, uid_t *uid)
{
	struct stat st;
	struct passwd *pw;
	struct group *gr;
	char u[64], g[64];

	*uid = (uid_t)-1;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		snprintf(out, len, "?");
		return;
	}
	*uid = st.st_uid;
	if ((pw = getpwuid(st.st_uid)) != NULL)
		snprintf(u, sizeof(u), "%s", pw->pw_name);
	else
		snprintf(u, sizeof(u), "%ld", (long)st.st_uid);
	if ((gr = getgrgid(st.st_gid)) != NULL)
		snprintf(g, sizeof(g), "%s", gr->gr_name);
	else
		snprintf(g, sizeof(g), "%ld", (long)st.st_gid);
	snprintf(out, len, "%s:%s, mode %04o", u, g, (unsigned)(st.st_mode & 07777));
}

/* A spool directory that cannot be opened: what it is, whose it is, and the repair. */
static void
access_error(int dirfd, const char *name, const char *shown, int e, char *err, size_t errlen)
{
	char owner[200], me[64];
	struct passwd *pw = getpwuid(geteuid());
	uid_t uid;

	snprintf(me, sizeof(me), "%s", pw ? pw->pw_name : "?");	/* before getpwuid again */
	describe_owner(dirfd, name, owner, sizeof(owner), &uid);
	if (e == EACCES && uid != geteuid())
		E("%s: %s: it belongs to %s, and imsd runs as %s (uid %ld); give it back: "
		    "chown -R %s: %s", shown, strerror(e), owner, me, (long)geteuid(), me, shown);
	else
		E("%s: %s (%s; imsd runs as %s, uid %ld)", shown, strerror(e), owner, me,
		    (long)geteuid());
}

static void
subdir_error(int dirfd, const char *spool_dir, const char *name, char *err, size_t errlen)
{
	char shown[4200];
	int e = errno;

	if (e == ELOOP || e == ENOTDIR)
		E("%s/%s: not a directory but a symbolic link or a file: imsd does not follow "
		    "links in the spool; remove it", spool_dir, name);
	else {
		snprintf(shown, sizeof(shown), "%s/%s", spool_dir, name);
		access_error(dirfd, name, shown, e, err, errlen);
	}
}

/* Open (and create) the spool; see queue.h. */
int
queue_open(const char *spool_dir, int lock, struct queue *q, char *err, size_t errlen)
{
	int fd;

	if (fs_mkdirs(spool_dir, SPOOL_MODE_PRIVATE) < 0) {
		E("%s: cannot create spool directory: %s", spool_dir, strerror(errno));
		memset(q, 0, sizeof(*q));
		q->dirfd = q->incfd = q->qfd = q->lockfd = q->freefd = -1;
		return -1;
	}
	if ((fd = open(spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		int e = errno;
		access_error(AT_FDCWD, spool_dir, spool_dir, e, err, errlen);
		memset(q, 0, sizeof(*q));
		q->dirfd = q->incfd = q->qfd = q->lockfd = q->freefd = -1;
		return -1;
	}
	return queue_open_at(fd, spool_dir, lock, q, err, errlen);
}

int
queue_open_at(int fd, const char *spool_dir, int lock, struct queue *q, char *err,
    size_t errlen)
{
	struct stat st;

	memset(q, 0, sizeof(*q));
	q->incfd = q->qfd = q->lockfd = q->freefd = -1;
	q->dirfd = fd;
	if ((q->incfd = open_subdir(q->dirfd, "incoming")) < 0) {
		subdir_error(q->dirfd, spool_dir, "incoming", err, errlen);
		goto fail;
	}
	if ((q->qfd = open_subdir(q->dirfd, "queue")) < 0) {
		subdir_error(q->dirfd, spool_dir, "queue", err, errlen);
		goto fail;
	}
	if (lock) {
		/* never followed, never anything but our own plain file: a link planted here
		 * would have root create or open its target */
		q->lockfd = openat(q->dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
		    O_NOCTTY | O_CLOEXEC, SPOOL_MODE_FILE);
		if (q->lockfd < 0 && (errno == ELOOP || errno == EISDIR || errno == ENXIO)) {
			E("%s/lock: not a plain file but a symbolic link or something else: imsd "
			    "does not follow links in the spool; remove it", spool_dir);
			goto fail;
		}
		if (q->lockfd < 0) {
			E("%s/lock: %s", spool_dir, strerror(errno));
			goto fail;
		}
		if (fstat(q->lockfd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
			E("%s/lock: not a plain file of its own (%s): imsd does not use it; "
			    "remove it", spool_dir, S_ISREG(st.st_mode) ? "it has several links" :
			    "not a regular file");
			goto fail;
		}
		if (flock(q->lockfd, LOCK_EX | LOCK_NB) < 0) {
			E("%s: another imsd is already using this spool (%s/lock is locked)",
			    spool_dir, spool_dir);
			goto fail;
		}
	}
	if ((q->dir = strdup(spool_dir)) == NULL) {
		E("out of memory");
		goto fail;
	}
	if (lock) {
		/* only the lock holder recycles files */
		if ((q->freefd = open_subdir(q->dirfd, "free")) < 0) {
			subdir_error(q->dirfd, spool_dir, "free", err, errlen);
			goto fail;
		}
		if ((q->freelock = malloc(sizeof(pthread_mutex_t))) == NULL ||
		    (q->freenames = calloc(QUEUE_FREE_MAX, sizeof(unsigned))) == NULL) {
			E("out of memory");
			goto fail;
		}
		pthread_mutex_init(q->freelock, NULL);
		free_scan(q);
	}
	return 0;
fail:
	queue_close(q);
	return -1;
}

void
queue_close(struct queue *q)
{
	if (q->freelock != NULL) {
		pthread_mutex_destroy(q->freelock);
		free(q->freelock);
	}
	free(q->freenames);
	if (q->freefd >= 0)
		close(q->freefd);
	if (q->lockfd >= 0)
		close(q->lockfd);
	if (q->qfd >= 0)
		close(q->qfd);
	if (q->incfd >= 0)
		close(q->incfd);
	if (q->dirfd >= 0)
		close(q->dirfd);
	free(q->dir);
	memset(q, 0, sizeof(*q));
	q->dirfd = q->incfd = q->qfd = q->lockfd = q->freefd = -1;
}

/* 1 when some other process holds spool_dir/lock. */
int
queue_locked_by_other(const char *spool_dir)
{
	char path[4096];
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/lock", spool_dir);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0)
		return 0;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK)
		r = 1;
	close(fd);
	return r;
}

/* Time-ordered ids: microseconds since the epoch (13 hex digits) + a 12-bit counter. */
void
queue_new_id(char out[32])
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static unsigned long long last;
	struct timespec ts;
	unsigned long long v;

	clock_gettime(CLOCK_REALTIME, &ts);
	v = ((unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000)
	    << 12;
	pthread_mutex_lock(&mu);
	if (v <= last)
		v = last + 1;
	last = v;
	pthread_mutex_unlock(&mu);
	snprintf(out, 32, "%016llX", v);
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Learn the recycled files in free/ (start-up). */
static void
free_scan(struct queue *q)
{
	int fd = dup(q->freefd);
	DIR *d;
	struct dirent *de;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		char *end;
		unsigned long n;
		if (de->d_name[0] != 'f')
			continue;
		n = strtoul(de->d_name + 1, &end, 10);
		if (*end != '\0' || end == de->d_name + 1 || n > 0xffffffffUL)
			continue;
		if (q->nfree < QUEUE_FREE_MAX) {
			q->freenames[q->nfree++] = (unsigned)n;
			if ((unsigned)n >= q->freeseq)
				q->freeseq = (unsigned)n + 1;
		} else
			unlinkat(q->freefd, de->d_name, 0);
	}
	closedir(d);
}

/* Give back the space of every recycled file (the filesystem is short of it). Count. */
int
queue_free_release(struct queue *q)
{
	unsigned *names;
	size_t n;
	int count = 0;

	if (q->freelock == NULL)
		return 0;
	pthread_mutex_lock(q->freelock);
	n = q->nfree;
	names = malloc(n ? n * sizeof(*names) : 1);
	if (names != NULL) {
		memcpy(names, q->freenames, n * sizeof(*names));
		q->nfree = 0;
	}
	pthread_mutex_unlock(q->freelock);
	if (names == NULL)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%u", names[i]);
		count += unlinkat(q->freefd, name, 0) == 0;
	}
	free(names);
	return count;
}

/* Take a recycled file as incoming/<qid>. Returns an fd open for writing, or -1. */
static int
free_take(struct queue *q, const char *qid)
{
	char name[16];
	unsigned n;
	int fd;

	if (q->freelock == NULL)
		return -1;
	pthread_mutex_lock(q->freelock);
	if (q->nfree == 0) {
		pthread_mutex_unlock(q->freelock);
		return -1;
	}
	n = q->freenames[--q->nfree];
	pthread_mutex_unlock(q->freelock);
	snprintf(name, sizeof(name), "f%u", n);
	if (renameat(q->freefd, name, q->incfd, qid) < 0)
		return -1;
	if ((fd = spool_openat(q->incfd, qid, O_WRONLY, 0)) < 0)
		unlinkat(q->incfd, qid, 0);
	return fd;
}

/* Move a removed message's file into free/ for reuse. 0 done, -1 caller unlinks. */
static int
free_put(struct queue *q, const char *qid)
{
	char name[16];
	unsigned n;

	if (q->freelock == NULL)
		return -1;
	pthread_mutex_lock(q->freelock);
	if (q->nfree >= QUEUE_FREE_MAX) {
		pthread_mutex_unlock(q->freelock);
		return -1;
	}
	n = q->freeseq++;
	pthread_mutex_unlock(q->freelock);
	snprintf(name, sizeof(name), "f%u", n);
	if (renameat(q->qfd, qid, q->freefd, name) < 0)
		return -1;
	pthread_mutex_lock(q->freelock);
	if (q->nfree < QUEUE_FREE_MAX) {
		q->freenames[q->nfree++] = n;
		n = 0;
	}
	pthread_mutex_unlock(q->freelock);
	if (n != 0)
		unlinkat(q->freefd, name, 0);	/* filled up meanwhile */
	return 0;
}

/* Start incoming/<qid> with the header; env->qid is filled in. */
int
queue_create(struct queue *q, struct qenv *env, struct queue_writer *w, char *err, size_t errlen)
{
	char *hdr;
	size_t hlen;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	queue_new_id(env->qid);
	if ((w->fd = free_take(q, env->qid)) >= 0)
		w->recycled = 1;
	for (int tries = 0; w->fd < 0 && tries < 5; tries++) {
		queue_new_id(env->qid);
		w->fd = spool_openat(q->incfd, env->qid, O_WRONLY | O_CREAT | O_EXCL, SPOOL_MODE_FILE);
		if (w->fd >= 0 || errno != EEXIST)
			break;
	}
	if (w->fd < 0) {
		E("%s/incoming: cannot create queue file: %s", q->dir, strerror(errno));
		return -1;
	}
	memcpy(w->qid, env->qid, sizeof(w->qid));
	if (qfmt_header_encode(env, &hdr, &hlen) < 0) {
		E("cannot encode envelope");
		queue_discard(q, w);
		return -1;
	}
	if (env->has_skip) {
		/* the gap: filler the reader skips (blank, so a person reading the file sees
		 * nothing odd) */
		char *nh = realloc(hdr, hlen + env->skip);
		if (nh == NULL) {
			E("out of memory");
			free(hdr);
			queue_discard(q, w);
			return -1;
		}
		hdr = nh;
		memset(hdr + hlen, ' ', env->skip);
		if (env->skip > 0)
			hdr[hlen + env->skip - 1] = '\n';
	}
	if (write_all(w->fd, hdr, hlen + (env->has_skip ? env->skip : 0)) < 0) {
		E("%s/incoming/%s: write: %s", q->dir, w->qid, strerror(errno));
		free(hdr);
		queue_discard(q, w);
		return -1;
	}
	free(hdr);
	w->hdrlen = hlen;
	w->has_skip = env->has_skip;
	w->skip = env->has_skip ? env->skip : 0;
	return 0;
}

int
queue_prepend(struct queue_writer *w, const void *buf, size_t len, char *err, size_t errlen)
{
	char digits[QFMT_SKIP_DIGITS + 1];
	size_t nskip;

	if (len == 0)
		return 0;
	if (!w->has_skip || len > w->skip) {
		E("queue file %s: %zu bytes of header fields do not fit the %zu reserved", w->qid,
		    len, w->skip);
		errno = EOVERFLOW;
		return -1;
	}
	nskip = w->skip - len;
	snprintf(digits, sizeof(digits), "%0*zu", QFMT_SKIP_DIGITS, nskip);
	if (pwrite_all(w->fd, buf, len, (off_t)(w->hdrlen + nskip)) < 0 ||
	    pwrite_all(w->fd, digits, QFMT_SKIP_DIGITS,
	    (off_t)(w->hdrlen - 2 - QFMT_SKIP_DIGITS)) < 0) {
		E("queue file %s: write: %s", w->qid, strerror(errno));
		return -1;
	}
	w->skip = nskip;
	w->bodylen += len;
	return 0;
}

int
queue_open_incoming(struct queue *q, const char *qid)
{
	return spool_openat(q->incfd, qid, O_RDONLY, 0);
}

int
queue_append(struct queue_writer *w, const void *buf, size_t len, char *err, size_t errlen)
{
	if (write_all(w->fd, buf, len) < 0) {
		E("queue file %s: write: %s", w->qid, strerror(errno));
		return -1;
	}
	w->bodylen += len;
	return 0;
}

int
queue_finish(struct queue_writer *w, char *err, size_t errlen)
{
	char t[QFMT_TRAILER_LEN];

	qfmt_trailer_encode(w->bodylen, t);
	if (write_all(w->fd, t, sizeof(t)) < 0) {
		E("queue file %s: write: %s", w->qid, strerror(errno));
		return -1;
	}
	/* a recycled file may have been longer: the trailer must be the last bytes */
	if (w->recycled &&
	    ftruncate(w->fd, (off_t)(w->hdrlen + w->skip + w->bodylen + sizeof(t))) < 0) {
		E("queue file %s: ftruncate: %s", w->qid, strerror(errno));
		return -1;
	}
	return 0;
}

/* Drop an unacknowledged message. */
void
queue_discard(struct queue *q, struct queue_writer *w)
{
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	if (w->qid[0] != '\0')
		unlinkat(q->incfd, w->qid, 0);
	w->qid[0] = '\0';
}

int
queue_sync_file(struct queue_writer *w, char *err, size_t errlen)
{
	if (fdatasync(w->fd) < 0) {
		E("queue file %s: fdatasync: %s", w->qid, strerror(errno));
		return -1;
	}
	return 0;
}

int
queue_publish(struct queue *q, struct queue_writer *w, char *err, size_t errlen)
{
	if (renameat(q->incfd, w->qid, q->qfd, w->qid) < 0) {
		E("queue file %s: rename into queue/: %s", w->qid, strerror(errno));
		return -1;
	}
	close(w->fd);
	w->fd = -1;
	return 0;
}

int
queue_sync_data(struct queue *q, char *err, size_t errlen)
{
	if (syncfs(q->incfd) < 0) {
		E("%s: syncfs: %s", q->dir, strerror(errno));
		return -1;
	}
	return 0;
}

int
queue_sync_dir(struct queue *q, char *err, size_t errlen)
{
	if (fsync(q->qfd) < 0) {
		E("%s/queue: fsync: %s", q->dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int
read_at(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return -1;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Load and verify queue/<qid>; see queue.h. */
int
queue_load(struct queue *q, const char *qid, struct qenv *env, int *fdp, uint64_t *body_off,
    uint64_t *body_len, char *err, size_t errlen)
{
	struct stat st;
	char trailer[QFMT_TRAILER_LEN], jname[48];
	char *buf = NULL;
	size_t cap = 8192, have = 0, hdrlen = 0;
	uint64_t blen;
	int fd, jfd, r;

	memset(env, 0, sizeof(*env));
	if ((fd = spool_openat(q->qfd, qid, O_RDONLY, 0)) < 0) {
		E("%s: open: %s", qid, errno == ELOOP ? "a symbolic link or not a regular file (never "
		    "followed)" : strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < QFMT_TRAILER_LEN) {
		E("%s: truncated queue file", qid);
		goto fail;
	}
	if (read_at(fd, trailer, sizeof(trailer), st.st_size - QFMT_TRAILER_LEN) < 0 ||
	    qfmt_trailer_decode(trailer, sizeof(trailer), &blen) < 0) {
		E("%s: queue file has no valid trailer (truncated or corrupt)", qid);
		goto fail;
	}
	for (;;) {
		char *nb = realloc(buf, cap);
		size_t want;
		ssize_t n;
		if (nb == NULL) {
			E("out of memory");
			goto fail;
		}
		buf = nb;
		want = cap - have;
		if ((uint64_t)have + want > (uint64_t)st.st_size)
			want = (size_t)st.st_size - have;
		n = want ? pread(fd, buf + have, want, (off_t)have) : 0;
		if (n < 0) {
			E("%s: read: %s", qid, strerror(errno));
			goto fail;
		}
		have += (size_t)n;
		r = qfmt_header_decode(buf, have, env, &hdrlen, err, errlen);
		if (r == 0)
			break;
		if (r < 0 || n == 0 || cap >= QFMT_HEADER_MAX * 2) {
			if (r > 0)
				E("%s: queue file header incomplete", qid);
			goto fail;
		}
		cap *= 2;
	}
	free(buf);
	buf = NULL;
	if ((uint64_t)hdrlen + env->skip + blen + QFMT_TRAILER_LEN != (uint64_t)st.st_size) {
		E("%s: body length does not match the trailer", qid);
		qenv_free(env);
		goto fail;
	}
	if (strcmp(env->qid, qid) != 0) {
		E("%s: queue file names another id", qid);
		qenv_free(env);
		goto fail;
	}
	snprintf(jname, sizeof(jname), "%s.j", qid);
	if ((jfd = spool_openat(q->qfd, jname, O_RDONLY, 0)) >= 0) {
		struct stat js;
		env->has_journal = 1;
		if (fstat(jfd, &js) == 0 && js.st_size > 0 && js.st_size < 64 * 1024 * 1024) {
			char *j = malloc((size_t)js.st_size);
			if (j == NULL || read_at(jfd, j, (size_t)js.st_size, 0) < 0 ||
			    qfmt_journal_apply(j, (size_t)js.st_size, env, err, errlen) < 0) {
				if (j == NULL)
					E("out of memory");
				free(j);
				close(jfd);
				qenv_free(env);
				goto fail;
			}
			free(j);
		}
		close(jfd);
	}
	*fdp = fd;
	*body_off = hdrlen + env->skip;
	*body_len = blen;
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}

int
queue_journal(struct queue *q, const char *qid, const char *line, char *err, size_t errlen)
{
	char jname[48];
	struct stat st;
	int fd;

	snprintf(jname, sizeof(jname), "%s.j", qid);
	fd = spool_openat(q->qfd, jname, O_WRONLY | O_CREAT | O_APPEND, SPOOL_MODE_FILE);
	if (fd < 0) {
		E("%s: journal: %s", jname, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		E("%s: journal: fstat: %s", jname, strerror(errno));
		close(fd);
		return -1;
	}
	if (write_all(fd, line, strlen(line)) < 0 || fdatasync(fd) < 0) {
		int e = errno;

		/* A full disk may have taken part of the line: cut it off, or the next record
		 * would be glued onto a torn one and the journal refused at start-up. The
		 * events are not recorded; their delivery may be repeated (at-least-once). */
		if (ftruncate(fd, st.st_size) < 0)
			E("%s: journal write: %s; cutting the torn record: %s", jname,
			    strerror(e), strerror(errno));
		else
			E("%s: journal write: %s", jname, strerror(e));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
queue_open_message(struct queue *q, const char *qid, char *err, size_t errlen)
{
	int fd = spool_openat(q->qfd, qid, O_RDONLY, 0);

	if (fd < 0)
		E("%s: open: %s", qid, strerror(errno));
	return fd;
}

int
queue_remove(struct queue *q, const char *qid, int has_journal, char *err, size_t errlen)
{
	char jname[48];

	snprintf(jname, sizeof(jname), "%s.j", qid);
	if (free_put(q, qid) == 0) {
		if (has_journal)
			unlinkat(q->qfd, jname, 0);
		return 0;
	}
	if (unlinkat(q->qfd, qid, 0) < 0 && errno != ENOENT) {
		E("%s: unlink: %s", qid, strerror(errno));
		return -1;
	}
	if (has_journal)
		unlinkat(q->qfd, jname, 0);
	return 0;
}

static int
is_qid(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'A' && s[n] <= 'F')))
			return 0;
	return n == 16;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
queue_list(struct queue *q, char ***idsp, size_t *np, char *err, size_t errlen)
{
	int fd = dup(q->qfd);
	DIR *d;
	struct dirent *de;
	char **ids = NULL;
	size_t n = 0, cap = 0;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		E("%s/queue: %s", q->dir, strerror(errno));
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!is_qid(de->d_name))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **nids = realloc(ids, ncap * sizeof(*nids));
			if (nids == NULL)
				break;
			ids = nids;
			cap = ncap;
		}
		if ((ids[n] = strdup(de->d_name)) == NULL)
			break;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(ids, n, sizeof(*ids), cmp_str);
	*idsp = ids;
	*np = n;
	return 0;
}

void
queue_list_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* Remove journals whose message is gone (a crash between the two unlinks of
 * queue_remove). Returns the count. */
int
queue_clean_orphans(struct queue *q)
{
	int fd = dup(q->qfd), count = 0;
	DIR *d;
	struct dirent *de;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		char qid[64];
		size_t n = strlen(de->d_name);
		struct stat st;
		if (n != 18 || strcmp(de->d_name + 16, ".j") != 0)
			continue;
		memcpy(qid, de->d_name, 16);
		qid[16] = '\0';
		if (!is_qid(qid))
			continue;
		if (fstatat(q->qfd, qid, &st, 0) < 0 && errno == ENOENT &&
		    unlinkat(q->qfd, de->d_name, 0) == 0)
			count++;
	}
	closedir(d);
	return count;
}

int
queue_clean_incoming(struct queue *q)
{
	int fd = dup(q->incfd), count = 0;
	DIR *d;
	struct dirent *de;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(q->incfd, de->d_name, 0) == 0)
			count++;
	}
	closedir(d);
	return count;
}
