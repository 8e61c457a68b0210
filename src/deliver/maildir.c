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

#define E(...) snprintf(err, errlen, __VA_ARGS__)

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

	return at != NULL && component_ok(addr, (size_t)(at - addr)) &&
	    component_ok(at + 1, strlen(at + 1));
}

static int
mkdir_p(char *path, mode_t mode)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, mode) < 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
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
	char dir[4096], tmpp[4400], newp[4400], name[256], in[65536];
	const char *at = strrchr(addr, '@');
	struct wbuf *w = NULL;
	struct timeval tv;
	int fd = -1, dfd = -1, pending_cr = 0;
	size_t n;

	if (!maildir_addr_ok(addr)) {
		E("%s: address does not map to a safe mailbox directory", addr);
		return -1;
	}
	n = (size_t)snprintf(dir, sizeof(dir), "%s/%s/%.*s", mail_dir, at + 1, (int)(at - addr),
	    addr);
	if (n >= sizeof(dir)) {
		E("%s: mailbox path too long", addr);
		return -1;
	}
	gettimeofday(&tv, NULL);
	snprintf(name, sizeof(name), "%lld.M%06ldP%dQ%s.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (int)getpid(), unique, hostname);
	for (char *p = name; *p; p++)
		if (*p == '/' || *p == ':')
			*p = '_';
	for (const char *sub = "tmp\0new\0cur\0"; *sub; sub += 4) {
		char p[4200];
		snprintf(p, sizeof(p), "%s/%s", dir, sub);
		if (mkdir_p(p, 0700) < 0) {
			E("%s: cannot create mailbox directory: %s", p, strerror(errno));
			return -1;
		}
	}
	snprintf(tmpp, sizeof(tmpp), "%s/tmp/%s", dir, name);
	snprintf(newp, sizeof(newp), "%s/new/%s", dir, name);
	if ((fd = open(tmpp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		E("%s: %s", tmpp, strerror(errno));
		return -1;
	}
	if ((w = malloc(sizeof(*w))) == NULL) {
		E("out of memory");
		goto fail;
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
			goto fail;
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
		E("%s: write: %s", tmpp, strerror(w->bad));
		goto fail;
	}
	if (fsync(fd) < 0) {
		E("%s: fsync: %s", tmpp, strerror(errno));
		goto fail;
	}
	close(fd);
	fd = -1;
	if (rename(tmpp, newp) < 0) {
		E("%s: rename into new/: %s", tmpp, strerror(errno));
		goto fail;
	}
	snprintf(dir + n, sizeof(dir) - n, "/new");
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(dfd) < 0) {
		E("%s: fsync: %s", dir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		/* The file is in new/ but not known durable: report failure; a retry may
		 * deliver twice, which is the at-least-once side of the promise. */
		free(w);
		return -1;
	}
	close(dfd);
	free(w);
	return 0;
fail:
	free(w);
	if (fd >= 0)
		close(fd);
	unlink(tmpp);
	return -1;
}
