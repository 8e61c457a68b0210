/*
 * control — spool_dir/control for imsd flush and imsd delete; see control.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "queue/spool_layout.h"
#include "server/control.h"
#include "util/log.h"

struct control {
	struct ev_loop *loop;
	struct qmgr *qmgr;
	struct ev_io io;
	int fd;
	char path[108];
};

struct ctl_client {
	struct ev_io io;
	struct control *ctl;
	char buf[512];
	size_t len;
	time_t deadline;
};

static void
ctl_answer(struct ctl_client *cc, const char *text)
{
	size_t off = 0, len = strlen(text);

	/* a few bytes to a local client; it is waiting for them */
	while (off < len) {
		ssize_t n = send(cc->io.fd, text + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
}

static void
ctl_close(struct ctl_client *cc)
{
	int fd = cc->io.fd;

	ev_io_stop(cc->ctl->loop, &cc->io);
	close(fd);
	free(cc);
}

static void
ctl_read_cb(struct ev_io *io, uint32_t events)
{
	struct ctl_client *cc = io->arg;
	struct control *ctl = cc->ctl;
	char out[256];
	ssize_t n = recv(io->fd, cc->buf + cc->len, sizeof(cc->buf) - 1 - cc->len, 0);
	char *nl;

	if (n <= 0) {
		ctl_close(cc);
		return;
	}
	cc->len += (size_t)n;
	cc->buf[cc->len] = '\0';
	if ((nl = strchr(cc->buf, '\n')) == NULL) {
		if (cc->len >= sizeof(cc->buf) - 1) {
			ctl_answer(cc, "error: request too long\n");
			ctl_close(cc);
		}
		return;
	}
	*nl = '\0';
	if (strcmp(cc->buf, "FLUSH") == 0) {
		int cnt = qmgr_flush(ctl->qmgr);
		log_info("event=flush source=control messages=%d", cnt);
		snprintf(out, sizeof(out), "ok: %d message%s scheduled for delivery now\n", cnt,
		    cnt == 1 ? "" : "s");
		ctl_answer(cc, out);
	} else if (strncmp(cc->buf, "DELETE ", 7) == 0) {
		const char *id = cc->buf + 7;
		int cnt = qmgr_delete(ctl->qmgr, id);
		if (cnt > 0 || strcmp(id, "ALL") == 0)
			snprintf(out, sizeof(out), "ok: deleted %d message%s\n", cnt, cnt == 1 ? "" : "s");
		else
			snprintf(out, sizeof(out), "error: %.40s: no such message in the queue\n", id);
		ctl_answer(cc, out);
	} else
		ctl_answer(cc, "error: unknown request\n");
	ctl_close(cc);
}

static void
ctl_accept_cb(struct ev_io *io, uint32_t events)
{
	struct control *ctl = io->arg;
	int fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct ctl_client *cc;

	if (fd < 0)
		return;
	if ((cc = calloc(1, sizeof(*cc))) == NULL ||
	    ev_io_start(ctl->loop, &cc->io, fd, EPOLLIN, ctl_read_cb, cc) < 0) {
		free(cc);
		close(fd);
		return;
	}
	cc->ctl = ctl;
}

struct control *
control_open(struct ev_loop *loop, struct qmgr *qmgr, const char *spool_dir, char *err,
    size_t errlen)
{
	struct sockaddr_un sun;
	struct control *ctl;
	mode_t old;
	int n;

	if ((ctl = calloc(1, sizeof(*ctl))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ctl->loop = loop;
	ctl->qmgr = qmgr;
	ctl->fd = -1;
	n = snprintf(ctl->path, sizeof(ctl->path), "%s/control", spool_dir);
	if (n < 0 || (size_t)n >= sizeof(ctl->path) || (size_t)n >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s/control: path too long for a unix socket", spool_dir);
		free(ctl);
		return NULL;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, ctl->path, (size_t)n + 1);
	unlink(ctl->path);	/* we hold the spool lock: a leftover is stale */
	if ((ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "control socket: %s", strerror(errno));
		free(ctl);
		return NULL;
	}
	old = umask(0777 & ~SPOOL_MODE_FILE);	/* only the owner may flush or delete */
	n = bind(ctl->fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (n == 0)
		n = chmod(ctl->path, SPOOL_MODE_FILE);
	if (n < 0 || listen(ctl->fd, 16) < 0 ||
	    ev_io_start(loop, &ctl->io, ctl->fd, EPOLLIN, ctl_accept_cb, ctl) < 0) {
		snprintf(err, errlen, "%s: %s", ctl->path, strerror(errno));
		close(ctl->fd);
		free(ctl);
		return NULL;
	}
	return ctl;
}

void
control_close(struct control *ctl)
{
	if (ctl == NULL)
		return;
	ev_io_stop(ctl->loop, &ctl->io);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl);
}
