/*
 * lmtp_probe — does an LMTP server take a recipient (contract in lmtp_probe.h)?
 */
#include "deliver/lmtp_probe.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proto/smtpc.h"
#include "util/addr.h"
#include "util/str.h"

struct probe {
	int fd;
	struct timespec deadline;
	char out[2 * SMTPC_LINE_MAX];
	size_t outlen;
	int overflow;
};

static int
ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
	    (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (int)ms;
}

static int
wait_fd(int fd, short ev, const struct timespec *deadline)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	do
		r = poll(&p, 1, ms_left(deadline));
	while (r < 0 && errno == EINTR);
	if (r == 0)
		errno = ETIMEDOUT;
	return r > 0 ? 0 : -1;
}

/* smtpc's commands, collected until flushed. */
static void
pr_command(void *arg, const char *line, size_t len)
{
	struct probe *p = arg;

	if (p->outlen + len + 2 > sizeof(p->out)) {
		p->overflow = 1;
		return;
	}
	memcpy(p->out + p->outlen, line, len);
	memcpy(p->out + p->outlen + len, "\r\n", 2);
	p->outlen += len + 2;
}

static const struct smtpc_ops pr_ops = { .command = pr_command };

static int
pr_flush(struct probe *p)
{
	size_t off = 0;

	while (off < p->outlen) {
		ssize_t n = send(p->fd, p->out + off, p->outlen - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if ((errno != EAGAIN && errno != EWOULDBLOCK) ||
			    wait_fd(p->fd, POLLOUT, &p->deadline) < 0)
				return -1;
			continue;
		}
		off += (size_t)n;
	}
	p->outlen = 0;
	return 0;
}

/* A connected socket to the route's server, or -1 with why. */
static int
pr_connect(const struct route *rt, const struct timespec *deadline, char *why, size_t wl)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct netaddr a;
	int fd, err = 0;
	socklen_t el = sizeof(err);

	memset(&ss, 0, sizeof(ss));
	if (rt->via == VIA_UNIX) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&ss;

		sun->sun_family = AF_UNIX;
		str_copy(sun->sun_path, sizeof(sun->sun_path), rt->nexthop);
		sl = sizeof(*sun);
	} else if (netaddr_parse(rt->nexthop, &a) == 0)
		sl = netaddr_to_sockaddr(&a, rt->port, &ss);
	else {
		/* lmtp:inet:HOST:PORT with a name: its first address (a worker thread may block) */
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
		int g = getaddrinfo(rt->nexthop, NULL, &hints, &res);

		if (g != 0 || res == NULL) {
			snprintf(why, wl, "cannot resolve %s: %s", rt->nexthop, gai_strerror(g));
			return -1;
		}
		if (netaddr_from_sockaddr(res->ai_addr, &a, NULL) < 0) {
			freeaddrinfo(res);
			snprintf(why, wl, "no usable address for %s", rt->nexthop);
			return -1;
		}
		freeaddrinfo(res);
		sl = netaddr_to_sockaddr(&a, rt->port, &ss);
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(why, wl, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
			snprintf(why, wl, "connect to %s: %s", rt->nexthop,
			    strerror(err ? err : errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

enum lmtp_probe_result
lmtp_probe(const struct route *rt, const char *helo, const char *addr, char *reply,
    size_t replylen)
{
	static const struct smtpc smtpc_zero;
	struct probe p = { .fd = -1 };
	struct smtpc sc = smtpc_zero;
	struct smtpc_rcpt rc;
	struct smtpc_tx tx;
	char buf[4096];
	size_t len = 0, off = 0;
	int started = 0;
	enum lmtp_probe_result res = PROBE_TEMP;

	snprintf(reply, replylen, "no answer");
	clock_gettime(CLOCK_MONOTONIC, &p.deadline);
	p.deadline.tv_sec += LMTP_PROBE_TIMEOUT;
	if (rt->agent != ROUTE_LMTP) {
		snprintf(reply, replylen, "not an LMTP route");
		return PROBE_TEMP;
	}
	if ((p.fd = pr_connect(rt, &p.deadline, reply, replylen)) < 0)
		return PROBE_TEMP;
	memset(&rc, 0, sizeof(rc));
	rc.addr = addr;
	memset(&tx, 0, sizeof(tx));
	tx.sender = "";
	tx.lockstep = 1;		/* nothing after the RCPT until it is answered */
	tx.rcpts = &rc;
	tx.nrcpts = 1;
	smtpc_init(&sc, SMTPC_LMTP, helo, &pr_ops, &p);
	for (;;) {
		size_t used = 0;
		enum smtpc_event ev = SMTPC_MORE;

		if (off < len) {
			ev = smtpc_feed(&sc, buf + off, len - off, &used);
			off += used;
		}
		if (ev == SMTPC_MORE) {
			ssize_t n;

			if (p.overflow || pr_flush(&p) < 0) {
				snprintf(reply, replylen, "sending to %s: %s", rt->nexthop,
				    strerror(errno));
				break;
			}
			off = len = 0;
			if (wait_fd(p.fd, POLLIN, &p.deadline) < 0) {
				snprintf(reply, replylen, "%s: %s (waiting for %s)", rt->nexthop,
				    strerror(errno), smtpc_state_name(&sc));
				break;
			}
			n = recv(p.fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n == 0) {
				snprintf(reply, replylen, "%s closed the connection (%s)", rt->nexthop,
				    smtpc_state_name(&sc));
				break;
			}
			if (n < 0) {
				if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
					continue;
				snprintf(reply, replylen, "reading from %s: %s", rt->nexthop,
				    strerror(errno));
				break;
			}
			len = (size_t)n;
			continue;
		}
		if (ev == SMTPC_READY && !started) {
			started = 1;
			if (smtpc_mail(&sc, &tx) < 0) {
				snprintf(reply, replylen, "%s", sc.why);
				break;
			}
			continue;
		}
		if (ev == SMTPC_BODY || ev == SMTPC_BDAT) {
			/* RCPT accepted: the text is never sent; closing drops the transaction */
			res = PROBE_EXISTS;
			snprintf(reply, replylen, "%s", rc.diag);
			break;
		}
		if (ev == SMTPC_DONE) {
			/* the recipient was refused, so no text was asked for */
			snprintf(reply, replylen, "%d %s %s", rc.code, rc.status,
			    rc.diag[0] ? rc.diag : "");
			if (rc.code >= 500 && rc.code < 600) {
				/* "smtp; 550 5.1.1 text" -> the reply line itself */
				const char *d = strncmp(rc.diag, "smtp; ", 6) == 0 ? rc.diag + 6 : rc.diag;
				snprintf(reply, replylen, "%s", d);
				res = PROBE_REFUSED;
			} else if (rc.accepted)
				res = PROBE_EXISTS;
			if (!p.overflow) {
				smtpc_quit(&sc);
				(void)pr_flush(&p);
			}
			break;
		}
		/* anything else (a refused LHLO or MAIL, a broken reply, a 421) */
		snprintf(reply, replylen, "%s", sc.why[0] ? sc.why : smtpc_state_name(&sc));
		break;
	}
	close(p.fd);
	return res;
}
