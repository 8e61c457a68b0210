/*
 * mbox — locked append to /var/mail/USER; see mbox.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver/mbox.h"

#define E(...) snprintf(err, errlen, __VA_ARGS__)

/*
 * state: 0 at a line start with nothing pending, 1 inside a line; at a line start the
 * '>' run and "From " are looked at directly in the input, so a line is never split in the
 * middle of that test: the caller passes whole lines except for the last piece.
 */
size_t
mbox_quote(const char *in, size_t n, char *out, int *state)
{
	size_t i = 0, o = 0;

	while (i < n) {
		if (*state == 0) {
			size_t j = i;
			while (j < n && in[j] == '>')
				j++;
			if (n - j >= 5 && memcmp(in + j, "From ", 5) == 0)
				out[o++] = '>';
			*state = 1;
		}
		char c = in[i++];
		if (c == '\r' && i < n && in[i] == '\n')
			continue;		/* CRLF -> LF */
		out[o++] = c;
		if (c == '\n')
			*state = 0;
	}
	return o;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The dot lock: PATH.lock made by link(2) from a unique name, as liblockfile does (link is
 * atomic on every file system, O_EXCL not on all). 0 held, -1 errno. */
static int
dotlock(const char *path, char *lock, size_t locklen)
{
	char tmp[4200];
	struct stat st;
	int fd, tries = MBOX_LOCK_SECONDS * 10;

	snprintf(lock, locklen, "%s.lock", path);
	snprintf(tmp, sizeof(tmp), "%s.lk%ld.%lx", path, (long)getpid(), (long)time(NULL));
	while (tries-- > 0) {
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0)
			return -1;
		if (write(fd, "0\n", 2) != 2) {
			/* the lock's content is informational */
		}
		close(fd);
		int r = link(tmp, lock);
		int e = errno;
		if (stat(tmp, &st) == 0 && st.st_nlink == 2) {
			unlink(tmp);
			return 0;	/* link may report failure over NFS and still have worked */
		}
		unlink(tmp);
		if (r == 0)
			return 0;
		if (e != EEXIST) {
			errno = e;
			return -1;
		}
		if (lstat(lock, &st) == 0 && time(NULL) - st.st_mtime > MBOX_STALE_SECONDS)
			unlink(lock);	/* stale: its holder died */
		else
			usleep(100000);
	}
	errno = EWOULDBLOCK;
	return -1;
}

int
mbox_deliver(const char *path, const char *sender, const char *recipient, int msg_fd,
    uint64_t off, uint64_t len, time_t now, char *err, size_t errlen)
{
	char lock[4200], head[2048], date[64], *out = NULL;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct stat st;
	struct tm tm;
	off_t before;
	int fd = -1, ret = -1, tries, state = 0;
	void *map = MAP_FAILED;
	size_t maplen = 0, pgoff;

	if (dotlock(path, lock, sizeof(lock)) < 0) {
		E("%s: %s", lock, errno == EWOULDBLOCK ? "mailbox is locked (dot lock held "
		    "longer than 10 s)" : strerror(errno));
		return -1;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK |
	    O_CLOEXEC, 0600);
	if (fd < 0) {
		E("%s: %s", path, errno == ELOOP ? "a symbolic link: refusing to deliver through "
		    "it" : strerror(errno));
		ret = errno == ELOOP ? -2 : -1;
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		E("%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid()) {
		E("%s: %s; refusing to deliver into it", path, !S_ISREG(st.st_mode) ?
		    "not a regular file" : st.st_nlink != 1 ? "a file with several links" :
		    "the mailbox belongs to another user");
		ret = -2;
		goto out;
	}
	for (tries = MBOX_LOCK_SECONDS * 10; fcntl(fd, F_SETLK, &fl) < 0; tries--) {
		if ((errno != EAGAIN && errno != EACCES) || tries <= 0) {
			E("%s: %s", path, tries <= 0 ? "mailbox is locked (fcntl lock held longer "
			    "than 10 s)" : strerror(errno));
			goto out;
		}
		usleep(100000);
	}
	if (fstat(fd, &st) < 0) {
		E("%s: %s", path, strerror(errno));
		goto out;
	}
	before = st.st_size;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
	int hl = snprintf(head, sizeof(head), "From %s %s\nReturn-Path: <%s>\nDelivered-To: %s\n",
	    sender[0] ? sender : "MAILER-DAEMON", date, sender, recipient);
	if (hl < 0 || (size_t)hl >= sizeof(head)) {
		E("%s: sender or recipient too long", path);
		ret = -2;
		goto out;
	}
	if (write_all(fd, head, (size_t)hl) < 0)
		goto werr;
	if (len > 0) {
		long pg = sysconf(_SC_PAGESIZE);
		pgoff = (size_t)(off % (uint64_t)pg);
		maplen = (size_t)len + pgoff;
		map = mmap(NULL, maplen, PROT_READ, MAP_PRIVATE, msg_fd, (off_t)(off - pgoff));
		if (map == MAP_FAILED) {
			E("reading the queued message: %s", strerror(errno));
			goto cut;
		}
		const char *m = (const char *)map + pgoff;
		size_t chunk = 1 << 20;
		if ((out = malloc(2 * chunk + 2)) == NULL) {
			E("out of memory");
			goto cut;
		}
		for (size_t i = 0; i < len;) {
			size_t n = len - i > chunk ? chunk : len - i;
			/* end a piece at a line end (a '>'-run and "From " are looked at whole) */
			if (i + n < len) {
				const char *nl = memrchr(m + i, '\n', n);
				if (nl != NULL)
					n = (size_t)(nl - (m + i)) + 1;
			}
			size_t o = mbox_quote(m + i, n, out, &state);
			if (write_all(fd, out, o) < 0)
				goto werr;
			i += n;
		}
		if (m[len - 1] != '\n' && write_all(fd, "\n", 1) < 0)
			goto werr;
	}
	if (write_all(fd, "\n", 1) < 0 || fsync(fd) < 0)
		goto werr;
	ret = 0;
	goto out;
werr:
	E("%s: %s", path, strerror(errno));
cut:
	if (ftruncate(fd, before) < 0 || fsync(fd) < 0) {
		/* the reader sees a partial message at worst, after the last complete one */
	}
out:
	if (map != MAP_FAILED)
		munmap(map, maplen);
	free(out);
	if (fd >= 0)
		close(fd);	/* releases the fcntl lock */
	unlink(lock);
	return ret;
}
