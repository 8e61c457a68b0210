/*
 * maildir — local delivery; see maildir.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "deliver/maildir.h"
#include "proto/smtp_path.h"
#include "queue/spool_layout.h"
#include "util/fs.h"

#define E(...) snprintf(err, errlen, __VA_ARGS__)
#define SHOWN_MAX 300	/* a domain (255) or local part (64) as a path component */

/* A path component must not be empty, ".", "..", start with '.', or contain '/'. */
static int
component_ok(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == '\0')
			return 0;
	return 1;
}

int
maildir_addr_ok(const char *addr)
{
	const char *at = strrchr(addr, '@');
	char local[SHOWN_MAX];
	const char *why;

	if (at == NULL || (size_t)(at - addr) >= sizeof(local))
		return 0;
	memcpy(local, addr, (size_t)(at - addr));
	local[at - addr] = '\0';
	/* the same rule that RCPT applies (proto/smtp_path), for mail that got here otherwise */
	return smtp_local_mailbox_ok(local, &why) && component_ok(at + 1, strlen(at + 1));
}

/*
 * Open the directory name inside parent, creating it (0700) when missing. Below mail_dir
 * nothing is followed: a symbolic link, or a directory that belongs to another user, would
 * let whoever made it choose where a sender's bytes are written (imsd may run as root), so
 * it is refused with the reason. shown is the path for messages. Returns a fd or -1.
 */
static int
subdir(int parent, const char *name, const char *shown, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (mkdirat(parent, name, MAILDIR_MODE_DIR) < 0 && errno != EEXIST) {
		E("%s: cannot create mailbox directory: %s", shown, strerror(errno));
		return -1;
	}
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			E("%s is a symbolic link; refusing to deliver through it", shown);
		else if (e == ENOTDIR)
			E("%s is not a directory; refusing to deliver", shown);
		else
			E("%s: %s", shown, strerror(e));
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid()) {
		E("%s belongs to uid %ld, not to the user imsd runs as (uid %ld); refusing to "
		    "deliver", shown, (long)st.st_uid, (long)geteuid());
		close(fd);
		return -1;
	}
	return fd;
}

struct wbuf {
	int fd;
	char buf[65536];
	size_t len;
	int bad;
};

static void
wb_flush(struct wbuf *w)
{
	size_t off = 0;

	while (!w->bad && off < w->len) {
		ssize_t n = write(w->fd, w->buf + off, w->len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			w->bad = errno;
			break;
		}
		off += (size_t)n;
	}
	w->len = 0;
}

static void
wb_put(struct wbuf *w, const char *p, size_t n)
{
	while (n > 0) {
		size_t room = sizeof(w->buf) - w->len, k = n < room ? n : room;
		memcpy(w->buf + w->len, p, k);
		w->len += k;
		p += k;
		n -= k;
		if (w->len == sizeof(w->buf))
			wb_flush(w);
	}
}

/* Deliver; see maildir.h. */
int
maildir_deliver(const char *mail_dir, const char *addr, const char *sender, int body_fd,
    uint64_t off, uint64_t len, const char *hostname, const char *unique, char *err,
    size_t errlen)
{
	char root[4096], shown[4400], dom[SHOWN_MAX], loc[SHOWN_MAX], name[256], in[65536];
	const char *at = strrchr(addr, '@');
	struct wbuf *w = NULL;
	struct timeval tv;
	int fd = -1, rootfd = -1, domfd = -1, boxfd = -1, tmpfd = -1, newfd = -1, curfd = -1;
	int pending_cr = 0, ret = -1, created = 0;

	if (!maildir_addr_ok(addr)) {
		E("%s: address does not map to a safe mailbox directory", addr);
		return MAILDIR_PERM;
	}
	if ((size_t)snprintf(root, sizeof(root), "%s", mail_dir) >= sizeof(root) ||
	    (size_t)(at - addr) >= sizeof(loc) || strlen(at + 1) >= sizeof(dom)) {
		E("%s: mailbox path too long", addr);
		return -1;
	}
	memcpy(loc, addr, (size_t)(at - addr));
	loc[at - addr] = '\0';
	snprintf(dom, sizeof(dom), "%s", at + 1);
	/* mail_dir itself is the operator's: it may be a link (/var/mail -> /srv/mail). */
	if (fs_mkdirs(root, MAILDIR_MODE_DIR) < 0 ||
	    (rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		E("%s: cannot open mail_dir: %s", mail_dir, strerror(errno));
		return -1;
	}
	snprintf(shown, sizeof(shown), "%s/%s", mail_dir, dom);
	if ((domfd = subdir(rootfd, dom, shown, err, errlen)) < 0)
		goto out;
	snprintf(shown, sizeof(shown), "%s/%s/%s", mail_dir, dom, loc);
	if ((boxfd = subdir(domfd, loc, shown, err, errlen)) < 0)
		goto out;
	snprintf(shown, sizeof(shown), "%s/%s/%s/tmp", mail_dir, dom, loc);
	if ((tmpfd = subdir(boxfd, "tmp", shown, err, errlen)) < 0)
		goto out;
	snprintf(shown, sizeof(shown), "%s/%s/%s/new", mail_dir, dom, loc);
	if ((newfd = subdir(boxfd, "new", shown, err, errlen)) < 0)
		goto out;
	snprintf(shown, sizeof(shown), "%s/%s/%s/cur", mail_dir, dom, loc);
	if ((curfd = subdir(boxfd, "cur", shown, err, errlen)) < 0)
		goto out;

	gettimeofday(&tv, NULL);
	snprintf(name, sizeof(name), "%lld.M%06ldP%dQ%s.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (int)getpid(), unique, hostname);
	for (char *p = name; *p; p++)
		if (*p == '/' || *p == ':')
			*p = '_';
	snprintf(shown, sizeof(shown), "%s/%s/%s/tmp/%s", mail_dir, dom, loc, name);
	if ((fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    MAILDIR_MODE_FILE)) < 0) {
		E("%s: %s", shown, strerror(errno));
		goto out;
	}
	created = 1;
	if ((w = malloc(sizeof(*w))) == NULL) {
		E("out of memory");
		goto out;
	}
	w->fd = fd;
	w->len = 0;
	w->bad = 0;
	wb_put(w, "Return-Path: <", 14);
	wb_put(w, sender, strlen(sender));
	wb_put(w, ">\n", 2);
	/* Stored lines end in CRLF; Maildir wants LF. A CR not followed by LF is content. */
	while (len > 0) {
		size_t want = len < sizeof(in) ? (size_t)len : sizeof(in), i, start;
		ssize_t r = pread(body_fd, in, want, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			E("queue file read: %s", r < 0 ? strerror(errno) : "unexpected end of file");
			goto out;
		}
		off += (uint64_t)r;
		len -= (uint64_t)r;
		i = 0;
		if (pending_cr) {
			if (in[0] != '\n')
				wb_put(w, "\r", 1);
			pending_cr = 0;
		}
		start = 0;
		for (i = 0; i < (size_t)r; i++) {
			if (in[i] != '\r')
				continue;
			wb_put(w, in + start, i - start);
			if (i + 1 == (size_t)r) {
				pending_cr = 1;
				start = i + 1;
				break;
			}
			if (in[i + 1] != '\n')
				wb_put(w, "\r", 1);
			start = i + 1;
		}
		if (start < (size_t)r)
			wb_put(w, in + start, (size_t)r - start);
	}
	if (pending_cr)
		wb_put(w, "\r", 1);
	wb_flush(w);
	if (w->bad) {
		E("%s: write: %s", shown, strerror(w->bad));
		goto out;
	}
	if (fsync(fd) < 0) {
		E("%s: fsync: %s", shown, strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	if (renameat(tmpfd, name, newfd, name) < 0) {
		E("%s: rename into new/: %s", shown, strerror(errno));
		goto out;
	}
	created = 0;
	if (fsync(newfd) < 0) {
		/* The file is in new/ but not known durable: report failure; a retry may
		 * deliver twice, which is the at-least-once side of the promise. */
		E("%s/%s/%s/new: fsync: %s", mail_dir, dom, loc, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(w);
	if (fd >= 0)
		close(fd);
	if (created)
		unlinkat(tmpfd, name, 0);
	for (int *p = (int[]){ curfd, newfd, tmpfd, boxfd, domfd, rootfd }, k = 0; k < 6; k++)
		if (p[k] >= 0)
			close(p[k]);
	return ret;
}
