/*
 * metrics_http — the Prometheus scrape endpoint; see metrics_http.h.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/http.h"
#include "util/addr.h"
#include "server/metrics_http.h"
#include "util/log.h"
#include "util/version.h"

struct mh_listener {
	struct ev_io io;
	struct metrics_http *mh;
};

struct mh_client {
	struct ev_io io;
	struct metrics_http *mh;
	struct mh_client *prev, *next;
	struct http_req req;
	struct netaddr peer;
	unsigned long seq;	/* accepted as the seq-th: lower is older */
	time_t deadline;
	char *out;		/* the response, while it is being sent */
	size_t outlen, outoff;
};

struct metrics_http {
	struct ev_loop *loop;
	struct mh_listener *ls;
	size_t nls;
	struct mh_client *clients;
	unsigned nclients;
	metrics_collect_fn collect;
	void *collect_arg;
	time_t started;
	time_t paused_until;	/* out of descriptors: accepting waits until then */
	unsigned long seq;
};

static void
client_close(struct mh_client *c)
{
	struct metrics_http *mh = c->mh;
	int fd = c->io.fd;

	ev_io_stop(mh->loop, &c->io);
	close(fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		mh->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	mh->nclients--;
	free(c->out);
	free(c);
}

/* Send what the socket takes; close when all is sent or the client is gone. */
static void
client_flush(struct mh_client *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->io.fd, c->out + c->outoff, c->outlen - c->outoff,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_set(c->mh->loop, &c->io, EPOLLOUT);
			return;
		}
		if (n <= 0) {
			client_close(c);
			return;
		}
		c->outoff += (size_t)n;
	}
	shutdown(c->io.fd, SHUT_WR);
	client_close(c);
}

/* Build the whole response (head, and the body unless HEAD) and start sending it. */
static void
client_respond(struct mh_client *c, int status, const char *ctype, const char *body,
    size_t blen, int head_only, const char *extra)
{
	char head[512];
	int hl = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n%sConnection: close\r\n\r\n", status, http_reason(status),
	    ctype, blen, extra ? extra : "");
	size_t total = (size_t)hl + (head_only ? 0 : blen);

	if (hl < 0 || (size_t)hl >= sizeof(head) || (c->out = malloc(total)) == NULL) {
		client_close(c);
		return;
	}
	memcpy(c->out, head, (size_t)hl);
	if (!head_only && blen > 0)
		memcpy(c->out + hl, body, blen);
	c->outlen = total;
	c->outoff = 0;
	ev_io_set(c->mh->loop, &c->io, 0);
	client_flush(c);
}

static void
client_error(struct mh_client *c, int status, const char *why)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, http_reason(status), why);

	client_respond(c, status, "text/plain; charset=utf-8", body,
	    n > 0 && (size_t)n < sizeof(body) ? (size_t)n : 0, c->req.method == HTTP_HEAD,
	    status == 405 ? "Allow: GET, HEAD\r\n" : NULL);
}

static void
client_serve(struct mh_client *c)
{
	struct metrics_http *mh = c->mh;
	struct metrics_dynamic d;
	char path[HTTP_LINE_MAX + 1], *body;
	size_t blen;

	http_req_path(&c->req, path, sizeof(path));
	if (strcmp(path, "/metrics") != 0) {
		client_error(c, 404, "only /metrics is served here");
		return;
	}
	if (c->req.method == HTTP_OTHER) {
		client_error(c, 405, "use GET or HEAD");
		return;
	}
	memset(&d, 0, sizeof(d));
	d.version = IMSD_VERSION;
	d.start_time = (uint64_t)mh->started;
	if (mh->collect != NULL)
		mh->collect(mh->collect_arg, &d);
	metrics_inc(M_SCRAPES);
	if (metrics_render(&d, &body, &blen) < 0) {
		client_error(c, 500, "out of memory");
		return;
	}
	client_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, blen,
	    c->req.method == HTTP_HEAD, NULL);
	free(body);
}

static void
client_cb(struct ev_io *io, uint32_t events)
{
	struct mh_client *c = io->arg;
	char buf[2048];
	size_t used;
	ssize_t n;

	if (c->out != NULL) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			client_flush(c);
		return;
	}
	n = recv(io->fd, buf, sizeof(buf), 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(c);	/* gone before its request was complete */
		return;
	}
	switch (http_req_feed(&c->req, buf, (size_t)n, &used)) {
	case HTTP_MORE:
		return;
	case HTTP_DONE:
		client_serve(c);
		return;
	case HTTP_ERROR:
		log_debug("event=metrics-request-refused status=%d reason=\"%s\"", c->req.status,
		    c->req.why);
		client_error(c, c->req.status, c->req.why);
		return;
	}
}

static unsigned
peer_clients(const struct metrics_http *mh, const struct netaddr *a)
{
	unsigned n = 0;

	for (const struct mh_client *c = mh->clients; c != NULL; c = c->next)
		n += netaddr_equal(&c->peer, a);
	return n;
}

/* The oldest client still waiting for its request, of the address a (NULL: of the address
 * holding the most connections); NULL when there is none. */
static struct mh_client *
oldest_idle(struct metrics_http *mh, const struct netaddr *a)
{
	struct mh_client *best = NULL;
	unsigned most = 0;

	if (a == NULL)
		for (struct mh_client *c = mh->clients; c != NULL; c = c->next) {
			unsigned n = c->out == NULL ? peer_clients(mh, &c->peer) : 0;
			if (n > most) {
				most = n;
				a = &c->peer;
			}
		}
	if (a == NULL)
		return NULL;
	for (struct mh_client *c = mh->clients; c != NULL; c = c->next)
		if (c->out == NULL && netaddr_equal(&c->peer, a) && (best == NULL || c->seq < best->seq))
			best = c;
	return best;
}

/*
 * Room for a client from a: past METRICS_HTTP_PER_PEER from a, or METRICS_HTTP_CLIENTS in
 * all, the oldest idle client (of a; else of the address holding the most) is closed. 1
 * there is room now, 0 not (every candidate is being answered).
 */
static int
make_room(struct metrics_http *mh, const struct netaddr *a)
{
	struct mh_client *v = NULL;
	char b[NETADDR_STRLEN];

	if (peer_clients(mh, a) >= METRICS_HTTP_PER_PEER) {
		if ((v = oldest_idle(mh, a)) == NULL)
			return 0;
	} else if (mh->nclients >= METRICS_HTTP_CLIENTS) {
		if ((v = oldest_idle(mh, NULL)) == NULL)
			return 0;
	} else
		return 1;
	log_debug("event=metrics-client-evicted client=%s reason=\"idle, and a new connection "
	    "needed its place\"", netaddr_str(&v->peer, b, sizeof(b)));
	client_close(v);
	return 1;
}

static void
accept_cb(struct ev_io *io, uint32_t events)
{
	struct mh_listener *l = io->arg;
	struct metrics_http *mh = l->mh;

	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct netaddr peer;
		struct mh_client *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* level-triggered: stop watching for a second rather than spin */
				for (size_t k = 0; k < mh->nls; k++)
					ev_io_set(mh->loop, &mh->ls[k].io, 0);
				mh->paused_until = time(NULL) + 1;
			}
			return;
		}
		memset(&peer, 0, sizeof(peer));
		netaddr_from_sockaddr((struct sockaddr *)&ss, &peer, NULL);
		if (!make_room(mh, &peer) || (c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);	/* every place is taken by a client being answered */
			continue;
		}
		c->mh = mh;
		c->peer = peer;
		c->seq = ++mh->seq;
		http_req_init(&c->req);
		c->deadline = time(NULL) + METRICS_HTTP_SECONDS;
		if (ev_io_start(mh->loop, &c->io, fd, EPOLLIN, client_cb, c) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->next = mh->clients;
		if (mh->clients)
			mh->clients->prev = c;
		mh->clients = c;
		mh->nclients++;
	}
}

struct metrics_http *
metrics_http_open(struct ev_loop *loop, const struct hostport *hp, size_t n, char *err,
    size_t errlen)
{
	struct metrics_http *mh = calloc(1, sizeof(*mh));
	char b[NETADDR_STRLEN];

	if (mh == NULL || (n > 0 && (mh->ls = calloc(n, sizeof(*mh->ls))) == NULL)) {
		free(mh);
		snprintf(err, errlen, "metrics_listen: out of memory");
		return NULL;
	}
	mh->loop = loop;
	mh->started = time(NULL);
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = netaddr_to_sockaddr(&hp[i].addr, hp[i].port, &ss);
		int one = 1, fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd >= 0) {
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (ss.ss_family == AF_INET6)
				setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		}
		if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 64) < 0) {
			snprintf(err, errlen, "metrics_listen %s: %s",
			    hostport_str(&hp[i], b, sizeof(b)), strerror(errno));
			if (fd >= 0)
				close(fd);
			metrics_http_close(mh);
			return NULL;
		}
		mh->ls[i].mh = mh;
		if (ev_io_start(loop, &mh->ls[i].io, fd, EPOLLIN, accept_cb, &mh->ls[i]) < 0) {
			snprintf(err, errlen, "metrics_listen %s: %s",
			    hostport_str(&hp[i], b, sizeof(b)), strerror(errno));
			close(fd);
			metrics_http_close(mh);
			return NULL;
		}
		mh->nls++;
		log_info("event=listening address=%s listener=metrics",
		    hostport_str(&hp[i], b, sizeof(b)));
	}
	return mh;
}

void
metrics_http_set_collect(struct metrics_http *mh, metrics_collect_fn fn, void *arg)
{
	if (mh == NULL)
		return;
	mh->collect = fn;
	mh->collect_arg = arg;
}

void
metrics_http_tick(struct metrics_http *mh, time_t now)
{
	struct mh_client *c, *next;

	if (mh == NULL)
		return;
	if (mh->paused_until != 0 && now >= mh->paused_until) {
		mh->paused_until = 0;
		for (size_t k = 0; k < mh->nls; k++)
			ev_io_set(mh->loop, &mh->ls[k].io, EPOLLIN);
	}
	for (c = mh->clients; c != NULL; c = next) {
		next = c->next;
		if (now < c->deadline)
			continue;
		if (c->out == NULL) {
			c->req.method = HTTP_GET;	/* an answer with a body */
			client_error(c, 408, "the request did not arrive in time");
		} else
			client_close(c);	/* does not read its answer */
	}
}

void
metrics_http_close(struct metrics_http *mh)
{
	if (mh == NULL)
		return;
	while (mh->clients != NULL)
		client_close(mh->clients);
	for (size_t i = 0; i < mh->nls; i++) {
		int fd = mh->ls[i].io.fd;
		ev_io_stop(mh->loop, &mh->ls[i].io);
		close(fd);
	}
	free(mh->ls);
	free(mh);
}
