/*
 * local — the local submission socket; see local.h (the pickup: pickup.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "queue/spool_layout.h"
#include "server/local.h"
#include "server/pickup.h"
#include "util/log.h"

#define E(...) snprintf(err, errlen, __VA_ARGS__)

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
	if (fstat(spoolfd, &st) < 0 || ((st.st_mode & 07777) != SPOOL_MODE_TOP &&
	    fchmod(spoolfd, SPOOL_MODE_TOP) < 0)) {
		E("%s: cannot make it reachable for local submission: %s", spool_dir,
		    strerror(errno));
		return -1;
	}
	if ((sub = local_subdir(spoolfd, spool_dir, LOCAL_MAILDROP, SPOOL_MODE_MAILDROP, err,
	    errlen)) < 0)
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
		long u = pickup_current_uid();
		if (u >= 0)
			peer->uid = u;
	}
	netaddr_parse("127.0.0.1", &peer->local);
	netaddr_parse("127.0.0.1", &peer->remote);
	return 0;
}
