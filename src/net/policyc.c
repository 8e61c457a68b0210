/*
 * policyc — the client of one policy service (contract in policyc.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "net/policyc.h"

struct centry {
	uint64_t hash;
	char *key;
	size_t klen;
	char *action;
	uint64_t expires;
	uint64_t stamp;		/* when it was put: the older of two is replaced */
};

struct policyc {
	struct sockaddr_storage addr;
	socklen_t alen;
	pthread_mutex_t lock;	/* idle[] and the cache */
	int idle[POLICYC_IDLE_MAX];
	size_t nidle;
	struct centry *cache;	/* POLICYC_CACHE_MAX slots, allocated on first put */
	uint64_t stamps;
};

static struct policyc *
alloc(char *why, size_t whylen)
{
	struct policyc *p = calloc(1, sizeof *p);

	if (p == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

struct policyc *
policyc_new_unix(const char *path, char *why, size_t whylen)
{
	struct sockaddr_un *sun;
	struct policyc *p;

	if (strlen(path) >= sizeof sun->sun_path) {
		snprintf(why, whylen, "%s: longer than a unix socket path can be", path);
		return NULL;
	}
	if ((p = alloc(why, whylen)) == NULL)
		return NULL;
	sun = (struct sockaddr_un *)&p->addr;
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, strlen(path) + 1);
	p->alen = (socklen_t)sizeof *sun;
	return p;
}

struct policyc *
policyc_new_inet(const char *host, uint16_t port, char *why, size_t whylen)
{
	struct addrinfo hints, *res = NULL;
	struct policyc *p;
	char ps[8];
	int r;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(ps, sizeof ps, "%u", (unsigned)port);
	if ((r = getaddrinfo(host, ps, &hints, &res)) != 0 || res == NULL) {
		snprintf(why, whylen, "%s: %s", host, r ? gai_strerror(r) : "no address");
		return NULL;
	}
	if ((p = alloc(why, whylen)) == NULL) {
		freeaddrinfo(res);
		return NULL;
	}
	memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
	p->alen = res->ai_addrlen;
	freeaddrinfo(res);
	return p;
}

void
policyc_free(struct policyc *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nidle; i++)
		close(p->idle[i]);
	if (p->cache)
		for (size_t i = 0; i < POLICYC_CACHE_MAX; i++) {
			free(p->cache[i].key);
			free(p->cache[i].action);
		}
	free(p->cache);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Milliseconds left until deadline (CLOCK_MONOTONIC), at least 0. */
static int
ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
	    (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : ms > 3600000 ? 3600000 : (int)ms;
}

static int
wait_fd(int fd, short ev, const struct timespec *deadline)
{
	struct pollfd pf = { .fd = fd, .events = ev };
	int r;

	do
		r = poll(&pf, 1, ms_left(deadline));
	while (r < 0 && errno == EINTR);
	if (r == 0)
		errno = ETIMEDOUT;
	return r > 0 ? 0 : -1;
}

/* A new connection, non-blocking. -1 with why. */
static int
conn_open(struct policyc *p, const struct timespec *deadline, char *why, size_t whylen)
{
	int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err = 0;
	socklen_t el = sizeof err;

	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&p->addr, p->alen) < 0) {
		if (errno != EINPROGRESS && errno != EAGAIN) {
			snprintf(why, whylen, "connect: %s", strerror(errno));
			close(fd);
			return -1;
		}
		if (wait_fd(fd, POLLOUT, deadline) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
			snprintf(why, whylen, "connect: %s", strerror(err ? err : errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

static int
send_all(int fd, const char *buf, size_t len, const struct timespec *deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if ((errno != EAGAIN && errno != EWOULDBLOCK) || wait_fd(fd, POLLOUT, deadline) < 0)
				return -1;
			continue;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

enum xr { XR_OK, XR_FAIL, XR_DEAD_UNANSWERED };

/* One exchange on fd. *reusable when the connection may serve the next request. */
static enum xr
exchange(int fd, const char *req, size_t len, const struct timespec *deadline,
    char action[POLICYD_ACTION_MAX], int *reusable, char *why, size_t whylen)
{
	char *buf = malloc(POLICYD_REPLY_MAX + 1);
	size_t have = 0, used;
	const char *perr = NULL;
	enum xr res = XR_FAIL;

	*reusable = 0;
	if (buf == NULL) {
		snprintf(why, whylen, "out of memory");
		return XR_FAIL;
	}
	if (send_all(fd, req, len, deadline) < 0) {
		snprintf(why, whylen, "sending the request: %s", strerror(errno));
		res = errno == EPIPE || errno == ECONNRESET ? XR_DEAD_UNANSWERED : XR_FAIL;
		goto out;
	}
	for (;;) {
		ssize_t n;
		int r = policyd_reply_parse(buf, have, action, &used, &perr);

		if (r < 0) {
			snprintf(why, whylen, "a malformed answer: %s", perr);
			goto out;
		}
		if (r == 1) {
			*reusable = used == have;	/* nothing said out of turn */
			res = XR_OK;
			goto out;
		}
		if (have > POLICYD_REPLY_MAX) {
			snprintf(why, whylen, "an answer longer than %d bytes", POLICYD_REPLY_MAX);
			goto out;
		}
		n = recv(fd, buf + have, POLICYD_REPLY_MAX + 1 - have, MSG_DONTWAIT);
		if (n == 0) {
			snprintf(why, whylen, "the server closed the connection without answering");
			res = have == 0 ? XR_DEAD_UNANSWERED : XR_FAIL;
			goto out;
		}
		if (n > 0) {
			have += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == ECONNRESET && have == 0) {
			snprintf(why, whylen, "reading the answer: %s", strerror(errno));
			res = XR_DEAD_UNANSWERED;
			goto out;
		}
		if ((errno != EAGAIN && errno != EWOULDBLOCK) || wait_fd(fd, POLLIN, deadline) < 0) {
			snprintf(why, whylen, "reading the answer: %s", strerror(errno));
			goto out;
		}
	}
out:
	free(buf);
	return res;
}

int
policyc_ask(struct policyc *p, const char *req, size_t len, unsigned timeout_s,
    char action[POLICYD_ACTION_MAX], char *why, size_t whylen)
{
	struct timespec deadline;
	int fd = -1, reusable, was_idle;
	enum xr r;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_s;
	for (int attempt = 0; attempt < 2; attempt++) {
		pthread_mutex_lock(&p->lock);
		was_idle = p->nidle > 0;
		if (was_idle)
			fd = p->idle[--p->nidle];
		pthread_mutex_unlock(&p->lock);
		if (!was_idle && (fd = conn_open(p, &deadline, why, whylen)) < 0)
			return -1;
		r = exchange(fd, req, len, &deadline, action, &reusable, why, whylen);
		if (r == XR_OK) {
			pthread_mutex_lock(&p->lock);
			if (reusable && p->nidle < POLICYC_IDLE_MAX) {
				p->idle[p->nidle++] = fd;
				fd = -1;
			}
			pthread_mutex_unlock(&p->lock);
			if (fd >= 0)
				close(fd);
			return 0;
		}
		close(fd);
		/* a kept connection that died while idle: once more, on a fresh one */
		if (!(r == XR_DEAD_UNANSWERED && was_idle))
			return -1;
	}
	return -1;
}

/* FNV-1a, 64 bits. */
static uint64_t
hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* The two slots a key may live in. */
static void
slots(uint64_t h, size_t *a, size_t *b)
{
	*a = (size_t)(h % POLICYC_CACHE_MAX);
	*b = (size_t)((h >> 32) % POLICYC_CACHE_MAX);
}

static int
match(const struct centry *e, uint64_t h, const char *key, size_t klen)
{
	return e->key && e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0;
}

int
policyc_cache_get(struct policyc *p, const char *key, size_t keylen, uint64_t now,
    char action[POLICYD_ACTION_MAX])
{
	uint64_t h = hash(key, keylen);
	size_t a, b;
	int found = 0;

	slots(h, &a, &b);
	pthread_mutex_lock(&p->lock);
	if (p->cache) {
		const struct centry *e = match(&p->cache[a], h, key, keylen) ? &p->cache[a] :
		    match(&p->cache[b], h, key, keylen) ? &p->cache[b] : NULL;

		if (e && now < e->expires) {
			size_t n = strlen(e->action);

			memcpy(action, e->action, n + 1 < POLICYD_ACTION_MAX ? n + 1 : 0);
			found = n + 1 < POLICYD_ACTION_MAX;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return found;
}

void
policyc_cache_put(struct policyc *p, const char *key, size_t keylen, const char *action,
    uint64_t now, unsigned ttl)
{
	uint64_t h = hash(key, keylen);
	size_t a, b, alen = strlen(action);
	struct centry *e;
	char *k, *v;

	if (ttl == 0 || alen >= POLICYD_ACTION_MAX)
		return;
	k = malloc(keylen ? keylen : 1);
	v = malloc(alen + 1);
	if (k == NULL || v == NULL) {
		free(k);
		free(v);
		return;
	}
	memcpy(k, key, keylen);
	memcpy(v, action, alen + 1);
	slots(h, &a, &b);
	pthread_mutex_lock(&p->lock);
	if (p->cache == NULL && (p->cache = calloc(POLICYC_CACHE_MAX, sizeof *p->cache)) == NULL) {
		pthread_mutex_unlock(&p->lock);
		free(k);
		free(v);
		return;
	}
	/* the key's own slot, else a free or expired one, else the older of the two */
	if (match(&p->cache[a], h, key, keylen))
		e = &p->cache[a];
	else if (match(&p->cache[b], h, key, keylen))
		e = &p->cache[b];
	else if (p->cache[a].key == NULL || p->cache[a].expires <= now)
		e = &p->cache[a];
	else if (p->cache[b].key == NULL || p->cache[b].expires <= now)
		e = &p->cache[b];
	else
		e = p->cache[a].stamp <= p->cache[b].stamp ? &p->cache[a] : &p->cache[b];
	free(e->key);
	free(e->action);
	e->hash = h;
	e->key = k;
	e->klen = keylen;
	e->action = v;
	e->expires = now + ttl;
	e->stamp = ++p->stamps;
	pthread_mutex_unlock(&p->lock);
}
