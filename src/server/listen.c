/*
 * listen — the listening sockets: bound once, shared by every worker (EPOLLEXCLUSIVE).
 */
#include "server/server_int.h"

/* ---- listeners ---- */

/* Add a bound, listening socket for the workers to watch (takes fd). */
int
srv_lsock_add(struct server *srv, const struct hostport *hp, enum session_listener kind, int fd)
{
	struct lsock *nl;

	if ((nl = realloc(srv->lsocks, (srv->nlsocks + 1) * sizeof(*nl))) == NULL) {
		close(fd);
		return -1;
	}
	srv->lsocks = nl;
	memset(&nl[srv->nlsocks], 0, sizeof(*nl));
	if (hp != NULL)
		nl[srv->nlsocks].hp = *hp;
	nl[srv->nlsocks].kind = kind;
	nl[srv->nlsocks].fd = fd;
	srv->nlsocks++;
	return 0;
}

/* Open one listening socket (before any worker watches it). */
int
srv_listen_on(struct server *srv, const struct hostport *hp, enum session_listener kind, char *err,
    size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = netaddr_to_sockaddr(&hp->addr, hp->port, &ss);
	char buf[NETADDR_STRLEN];
	int fd, one = 1;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "listen %s: socket: %s", hostport_str(hp, buf, sizeof(buf)),
		    strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
		snprintf(err, errlen, "listen %s: %s", hostport_str(hp, buf, sizeof(buf)),
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (srv_lsock_add(srv, hp, kind, fd) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	log_info("event=listening address=%s listener=%s", hostport_str(hp, buf, sizeof(buf)),
	    kind == SL_SMTPS ? "smtps" : kind == SL_SUBMISSION ? "submission" : "smtp");
	return 0;
}

/* Watch every listening socket from this worker's loop. EPOLLEXCLUSIVE: a connection wakes
 * one of the loops waiting on the socket, not all of them. */
int
srv_worker_listen(struct worker *wk)
{
	struct server *srv = wk->srv;

	if ((wk->listeners = calloc(srv->nlsocks ? srv->nlsocks : 1,
	    sizeof(*wk->listeners))) == NULL)
		return -1;
	for (size_t i = 0; i < srv->nlsocks; i++) {
		struct listener *l = &wk->listeners[i];
		l->srv = srv;
		l->wk = wk;
		l->ls = &srv->lsocks[i];
		l->kind = srv->lsocks[i].kind;
		if (ev_io_start(wk->loop, &l->io, l->ls->fd,
		    EPOLLIN | (srv->nworkers > 1 ? EPOLLEXCLUSIVE : 0), srv_accept_cb, l) < 0)
			return -1;
		__atomic_add_fetch(&l->ls->refs, 1, __ATOMIC_ACQ_REL);
		wk->nlisteners++;
	}
	return 0;
}

/* Stop accepting in this worker; the last worker to stop closes the sockets, so that no
 * loop ever watches a closed (or reused) descriptor. The array stays until server_run's
 * teardown: an accept event of the same epoll batch may still point into it (srv_accept_cb
 * sees wk->stopping and does nothing). */
void
srv_close_listeners(struct worker *wk)
{
	for (size_t i = 0; i < wk->nlisteners; i++) {
		struct listener *l = &wk->listeners[i];
		ev_io_stop(wk->loop, &l->io);
		if (__atomic_sub_fetch(&l->ls->refs, 1, __ATOMIC_ACQ_REL) == 0)
			close(l->ls->fd);
	}
	wk->nlisteners = 0;
}
