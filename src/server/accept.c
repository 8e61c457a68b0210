/*
 * accept — taking connections off the listening sockets: the spare descriptor that
 * refuses politely when out of descriptors, and the PROXY header (v1/v2) a load balancer
 * in proxy_networks sends first.
 */
#include "server/server_int.h"

/* ---- the PROXY header from a load balancer in proxy_networks ---- */

#define PROXY_WAIT_SECONDS 10	/* a balancer sends its header at once */

void
srv_pconn_free(struct pconn *p, int close_fd)
{
	struct worker *wk = p->wk;

	ev_io_stop(wk->loop, &p->io);
	if (p->prev)
		p->prev->next = p->next;
	else
		wk->pconns = p->next;
	if (p->next)
		p->next->prev = p->prev;
	wk->npconns--;
	if (close_fd >= 0)
		close(close_fd);
	cfg_unref(p->cfg);
	free(p);
}

static void
pconn_fail(struct pconn *p, int fd, const char *why)
{
	char ba[64];

	log_warn("event=proxy-header-error balancer=%s:%u reason=\"%s\" action=closed",
	    netaddr_str(&p->sock.remote, ba, sizeof(ba)), p->sock.remote_port, why);
	srv_pconn_free(p, fd);
}

/* Read the header without reading past it: the bytes after it are the client's (TLS on an
 * smtps listener), so peek, and take only what the header needs. */
static void
pconn_cb(struct ev_io *io, uint32_t events)
{
	struct pconn *p = io->arg;
	int fd = io->fd;
	struct proxy_hdr h;
	const char *why;
	ssize_t k = recv(fd, p->buf + p->len, sizeof(p->buf) - p->len, MSG_PEEK);
	int n;

	if (k == 0) {
		pconn_fail(p, fd, "closed before a PROXY header");
		return;
	}
	if (k < 0) {
		if (errno != EAGAIN && errno != EINTR)
			pconn_fail(p, fd, strerror(errno));
		return;
	}
	n = proxy_parse(p->buf, p->len + (size_t)k, &h, &why);
	if (n < 0) {
		pconn_fail(p, fd, why);
		return;
	}
	/* Incomplete: every byte so far is header; complete: take exactly the rest of it. */
	size_t take = n == 0 ? (size_t)k : (size_t)n - p->len;
	if (recv(fd, p->buf + p->len, take, 0) != (ssize_t)take) {
		pconn_fail(p, fd, "short read of a peeked PROXY header");
		return;
	}
	p->len += take;
	if (n == 0)
		return;

	struct session_peer peer = p->sock;
	char via[80], ba[64];
	enum session_listener kind = p->kind;
	struct worker *wk = p->wk;
	struct cfg *cfg = cfg_ref(p->cfg);
	snprintf(via, sizeof(via), "%s:%u", netaddr_str(&p->sock.remote, ba, sizeof(ba)),
	    p->sock.remote_port);
	if (h.has_addr) {
		/* The client, and the address it connected to (the loopback policy's input). */
		peer.remote = h.src;
		peer.remote_port = h.sport;
		peer.local = h.dst;
		peer.local_port = h.dport;
	} else {
		/* v2 LOCAL or UNSPEC, v1 UNKNOWN: the balancer's health check, or a client it
		 * does not name. Keeping the balancer's addresses would hand it the balancer's
		 * trust (loopback, relay_networks: relaying, no DNS lists or SPF, DKIM
		 * signing, AUTH without TLS); the session gets the unspecified address and
		 * refuses mail (session.h, no_client). */
		int fam = p->sock.remote.family;
		netaddr_parse(fam == AF_INET6 ? "::" : "0.0.0.0", &peer.remote);
		netaddr_parse(fam == AF_INET6 ? "::" : "0.0.0.0", &peer.local);
		peer.remote_port = peer.local_port = 0;
		peer.no_client = 1;
		log_info("event=proxy-header version=%d addresses=none balancer=%s "
		    "effect=\"no client named: no mail, no AUTH, no exemption\"", h.version, via);
	}
	srv_pconn_free(p, -1);
	srv_conn_start(wk, fd, kind, &peer, via, cfg);
	cfg_unref(cfg);
}

/*
 * Out of descriptors: the pending connection would keep the listener readable and the loop
 * spinning. Give up the spare descriptor, take the connection, tell it why, close it, and
 * take the spare back (libuv's and nginx's answer). Logged at most once a second.
 */
static void
accept_out_of_fds(struct worker *wk, int lfd)
{
	static const char msg[] = "421 4.3.2 Too many open files; try again later\r\n";
	time_t now = time(NULL);
	int e = errno, fd;

	if (now != wk->fds_logged) {
		wk->fds_logged = now;
		log_error("event=accept-error reason=\"%s\" effect=\"connections are refused with "
		    "421 until descriptors free up; raise LimitNOFILE or lower max_connections\"",
		    strerror(e));
	}
	if (wk->spare_fd < 0)
		return;
	close(wk->spare_fd);
	if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		metrics_inc(M_REFUSED_FDS);
		if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* nothing to do: it is closed either way */
		}
		close(fd);
	}
	wk->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static int
from_proxy_network(const struct conf *cf, const struct netaddr *a)
{
	for (size_t i = 0; i < cf->nproxy_networks; i++)
		if (cidr_match(&cf->proxy_networks[i], a))
			return 1;
	return 0;
}

void
srv_accept_cb(struct ev_io *io, uint32_t events)
{
	struct listener *l = io->arg;
	struct worker *wk = l->wk;

	if (wk->stopping)
		return;		/* the listener was closed earlier in this epoll batch */
	struct cfg *cfg = srv_cfg_current(l->srv);

	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss, ls;
		socklen_t sl = sizeof(ss), lsl = sizeof(ls);
		struct session_peer peer;
		int fd = accept4(l->ls->fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				accept_out_of_fds(wk, l->ls->fd);
			break;
		}
		if (l->kind == SL_LOCAL) {
			/* spool_dir/submit: the kernel names the user (local.c) */
			if (local_peer(fd, &peer) < 0)
				close(fd);
			else
				srv_conn_start(wk, fd, SL_LOCAL, &peer, NULL, cfg);
			continue;
		}
		memset(&peer, 0, sizeof(peer));
		if (getsockname(fd, (struct sockaddr *)&ls, &lsl) < 0 ||
		    netaddr_from_sockaddr((struct sockaddr *)&ss, &peer.remote, &peer.remote_port) < 0 ||
		    netaddr_from_sockaddr((struct sockaddr *)&ls, &peer.local, &peer.local_port) < 0) {
			close(fd);
			continue;
		}
		if (!from_proxy_network(&cfg->conf, &peer.remote)) {
			srv_conn_start(wk, fd, l->kind, &peer, NULL, cfg);
			continue;
		}
		/* A balancer: its header comes first, then the session of the client it names. */
		struct pconn *p;
		if (wk->npconns >= cfg->conf.max_connections ||
		    (p = calloc(1, sizeof(*p))) == NULL) {
			close(fd);
			continue;
		}
		p->wk = wk;
		p->kind = l->kind;
		p->sock = peer;
		p->deadline = time(NULL) + PROXY_WAIT_SECONDS;
		if (ev_io_start(wk->loop, &p->io, fd, EPOLLIN, pconn_cb, p) < 0) {
			free(p);
			close(fd);
			continue;
		}
		p->cfg = cfg_ref(cfg);
		p->next = wk->pconns;
		if (wk->pconns)
			wk->pconns->prev = p;
		wk->pconns = p;
		wk->npconns++;
	}
	cfg_unref(cfg);
}

/* Balancers that have not sent their header in time, or all of them when stopping. */
void
srv_pconn_tick(struct worker *wk, time_t now)
{
	struct pconn *p, *next;

	for (p = wk->pconns; p != NULL; p = next) {
		next = p->next;
		if (wk->stopping || now >= p->deadline)
			pconn_fail(p, p->io.fd, wk->stopping ? "server stopping" :
			    "no PROXY header within 10 s");
	}
}
