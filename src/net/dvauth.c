/*
 * dvauth — SMTP AUTH checked by Dovecot's auth-client socket (contract in dvauth.h).
 */
#include "net/dvauth.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proto/dovecot_auth.h"
#include "proto/sasl.h"

/* One connection to Dovecot's socket, after its handshake. */
struct dvconn {
	int fd;
	unsigned long next_id;
	size_t len;			/* bytes in buf not yet taken as lines */
	char buf[DVA_LINE_MAX + 2];
};

struct dvauth {
	char path[DVAUTH_PATH_MAX];
	pthread_mutex_t mu;
	struct dvconn *idle[DVAUTH_IDLE_MAX];
	unsigned nidle;
	unsigned mechs;			/* atomic: the mask of dvauth_mechs */
	int known;			/* atomic */
};

#define MECH_BIT(m)	(1u << (m))

struct dvauth *
dvauth_new(const char *path)
{
	struct dvauth *d;

	if (strlen(path) >= DVAUTH_PATH_MAX || (d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	memcpy(d->path, path, strlen(path) + 1);
	pthread_mutex_init(&d->mu, NULL);
	return d;
}

static void
conn_close(struct dvconn *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c);
}

void
dvauth_free(struct dvauth *d)
{
	if (d == NULL)
		return;
	for (unsigned i = 0; i < d->nidle; i++)
		conn_close(d->idle[i]);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

const char *
dvauth_path(const struct dvauth *d)
{
	return d->path;
}

unsigned
dvauth_mechs(const struct dvauth *d, int *known)
{
	*known = __atomic_load_n(&d->known, __ATOMIC_ACQUIRE);
	return __atomic_load_n(&d->mechs, __ATOMIC_RELAXED);
}

/* Milliseconds left until deadline (CLOCK_MONOTONIC seconds), at least 0. */
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
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	do
		r = poll(&p, 1, ms_left(deadline));
	while (r < 0 && errno == EINTR);
	if (r == 0)
		errno = ETIMEDOUT;
	return r > 0 ? 0 : -1;
}

/* Write all of buf. 0, or -1 with errno. */
static int
send_all(int fd, const char *buf, size_t len, const struct timespec *deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
			if (wait_fd(fd, POLLOUT, deadline) < 0)
				return -1;
			continue;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Read the next line into line (LF and a CR before it removed, NUL-terminated). 1 with
 * a line; 0 at end of stream; -1 with why (timeout, error, a line over the limit).
 */
static int
read_line(struct dvconn *c, char *line, const struct timespec *deadline, char *why,
    size_t whylen)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);

		if (nl != NULL) {
			size_t ll = (size_t)(nl - c->buf);

			memcpy(line, c->buf, ll);
			line[ll] = '\0';
			c->len -= ll + 1;
			memmove(c->buf, nl + 1, c->len);
			return 1;
		}
		if (c->len > DVA_LINE_MAX) {
			snprintf(why, whylen, "a line from Dovecot longer than %d bytes",
			    DVA_LINE_MAX);
			return -1;
		}
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);

		if (n == 0)
			return 0;
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if ((errno != EAGAIN && errno != EWOULDBLOCK) || wait_fd(c->fd, POLLIN, deadline) < 0) {
			snprintf(why, whylen, "reading from Dovecot: %s", strerror(errno));
			return -1;
		}
	}
}

static void
publish_mechs(struct dvauth *d, const struct dva_handshake *h)
{
	unsigned m = 0;

	if (dva_handshake_has(h, "PLAIN"))
		m |= MECH_BIT(SASL_PLAIN);
	if (dva_handshake_has(h, "LOGIN"))
		m |= MECH_BIT(SASL_LOGIN);
	__atomic_store_n(&d->mechs, m, __ATOMIC_RELAXED);
	__atomic_store_n(&d->known, 1, __ATOMIC_RELEASE);
}

/* Open a connection and do the handshake. NULL with why. */
static struct dvconn *
conn_open(struct dvauth *d, const struct timespec *deadline, char *why, size_t whylen)
{
	struct sockaddr_un sun;
	struct dva_handshake h;
	struct dva_msg m;
	struct dvconn *c;
	char hello[64], *ln;
	int n, r;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	c->next_id = 1;
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		free(c);
		return NULL;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, d->path, strlen(d->path) + 1);
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		snprintf(why, whylen, "connecting to %s: %s", d->path, strerror(errno));
		conn_close(c);
		return NULL;
	}
	n = dva_hello(hello, sizeof(hello), (unsigned long)getpid());
	if (n < 0 || send_all(c->fd, hello, (size_t)n, deadline) < 0) {
		snprintf(why, whylen, "sending the handshake: %s", strerror(errno));
		conn_close(c);
		return NULL;
	}
	if ((ln = malloc(DVA_LINE_MAX + 2)) == NULL) {
		snprintf(why, whylen, "out of memory");
		conn_close(c);
		return NULL;
	}
	dva_handshake_init(&h);
	for (;;) {
		int hs = DVA_HS_ERROR;

		r = read_line(c, ln, deadline, why, whylen);
		if (r == 0)
			snprintf(why, whylen, "Dovecot closed the connection during the handshake");
		else if (r > 0 && dva_parse(ln, strlen(ln), &m) < 0)
			snprintf(why, whylen, "a malformed handshake line from Dovecot");
		else if (r > 0 && (hs = dva_handshake_feed(&h, &m)) == DVA_HS_ERROR) {
			if (h.version_seen || m.kind != DVA_VERSION)
				snprintf(why, whylen, "an unexpected handshake from Dovecot");
			else
				snprintf(why, whylen, "Dovecot speaks auth protocol %u, not %d",
				    m.major, DVA_MAJOR);
		}
		if (hs == DVA_HS_DONE)
			break;
		if (hs == DVA_HS_ERROR) {
			free(ln);
			conn_close(c);
			return NULL;
		}
	}
	free(ln);
	publish_mechs(d, &h);
	return c;
}

/* An idle connection, or NULL. */
static struct dvconn *
pool_take(struct dvauth *d)
{
	struct dvconn *c = NULL;

	pthread_mutex_lock(&d->mu);
	if (d->nidle > 0)
		c = d->idle[--d->nidle];
	pthread_mutex_unlock(&d->mu);
	return c;
}

static void
pool_put(struct dvauth *d, struct dvconn *c)
{
	pthread_mutex_lock(&d->mu);
	if (d->nidle < DVAUTH_IDLE_MAX && c->len == 0 && c->next_id < 0xffffffffUL) {
		d->idle[d->nidle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&d->mu);
	conn_close(c);
}

static void
deadline_in(struct timespec *t, int seconds)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += seconds;
}

int
dvauth_probe(struct dvauth *d, char *why, size_t whylen)
{
	struct timespec deadline;
	struct dvconn *c;

	deadline_in(&deadline, DVAUTH_TIMEOUT);
	if ((c = conn_open(d, &deadline, why, whylen)) == NULL)
		return -1;
	pool_put(d, c);
	return 0;
}

/* Base64 of len bytes into out (cap bytes). -1 when it does not fit. */
static int
b64(const void *data, size_t len, char *out, size_t cap)
{
	return sasl_b64_encode(data, len, out, cap) < 0 ? -1 : 0;
}

/* Outcome of one exchange on one connection. */
enum xres { XR_OK, XR_FAIL, XR_TEMP, XR_BROKEN_UNANSWERED };

/*
 * One AUTH exchange on c. XR_BROKEN_UNANSWERED: the connection failed before Dovecot
 * answered anything (a dead idle connection: worth one more try on a fresh one). *reusable
 * is set when c is clean afterwards.
 */
static enum xres
exchange(struct dvauth *d, struct dvconn *c, const struct dvauth_req *req, int mech,
    const struct timespec *deadline, char *canon, size_t canoncap, char *why, size_t whylen,
    int *reusable)
{
	/* the largest piece: base64 of NUL user NUL pass, and the line around it */
	char plain[2 * SASL_FIELD_MAX + 3], resp[SASL_B64_ENCODED_LEN(sizeof(plain)) + 1];
	char lip[NETADDR_STRLEN], rip[NETADDR_STRLEN], out[sizeof(resp) + 1024];
	struct dva_auth_req ar;
	struct dva_msg m;
	char *line = NULL;
	unsigned long id = c->next_id++;
	int answered = 0, step = 0, n, r;
	enum xres res = XR_TEMP;
	size_t ul = strlen(req->user), pl = strlen(req->pass);

	*reusable = 0;
	if (ul > SASL_FIELD_MAX || pl > SASL_FIELD_MAX) {
		snprintf(why, whylen, "user name or password over %d bytes", SASL_FIELD_MAX);
		return XR_FAIL;
	}
	memset(&ar, 0, sizeof(ar));
	ar.id = id;
	ar.service = "smtp";
	ar.session = req->session;
	if (req->local != NULL)
		ar.lip = netaddr_str(req->local, lip, sizeof(lip));
	if (req->remote != NULL)
		ar.rip = netaddr_str(req->remote, rip, sizeof(rip));
	ar.lport = req->lport;
	ar.rport = req->rport;
	ar.secured = req->secured;
	/* imsd counts and delays failures per client address itself (as with auth_users_file);
	 * Dovecot's own penalty would add its delay to ours and hold a worker thread. */
	ar.no_penalty = 1;
	if (mech == SASL_PLAIN) {
		ar.mech = "PLAIN";
		plain[0] = '\0';
		memcpy(plain + 1, req->user, ul);
		plain[1 + ul] = '\0';
		memcpy(plain + 2 + ul, req->pass, pl);
		if (b64(plain, 2 + ul + pl, resp, sizeof(resp)) < 0)
			goto internal;
		explicit_bzero(plain, sizeof(plain));
		ar.resp = resp;
	} else
		ar.mech = "LOGIN";
	n = dva_auth_line(out, sizeof(out), &ar);
	explicit_bzero(resp, sizeof(resp));
	if (n < 0)
		goto internal;
	r = send_all(c->fd, out, (size_t)n, deadline);
	explicit_bzero(out, sizeof(out));
	if (r < 0) {
		snprintf(why, whylen, "sending to Dovecot: %s", strerror(errno));
		return XR_BROKEN_UNANSWERED;
	}
	if ((line = malloc(DVA_LINE_MAX + 2)) == NULL)
		goto internal;
	for (;;) {
		r = read_line(c, line, deadline, why, whylen);
		if (r == 0) {
			snprintf(why, whylen, "Dovecot closed the connection");
			res = answered ? XR_TEMP : XR_BROKEN_UNANSWERED;
			break;
		}
		if (r < 0) {
			res = XR_TEMP;
			break;
		}
		answered = 1;
		if (dva_parse(line, strlen(line), &m) < 0) {
			snprintf(why, whylen, "a malformed answer from Dovecot");
			res = XR_TEMP;
			break;
		}
		if (m.kind == DVA_OTHER)
			continue;
		if ((m.kind != DVA_OK && m.kind != DVA_FAIL && m.kind != DVA_CONT) || m.id != id) {
			snprintf(why, whylen, "an unexpected answer from Dovecot");
			res = XR_TEMP;
			break;
		}
		if (m.kind == DVA_OK) {
			snprintf(canon, canoncap, "%s", m.user[0] ? m.user : req->user);
			res = XR_OK;
			*reusable = 1;
			break;
		}
		if (m.kind == DVA_FAIL) {
			snprintf(why, whylen, "%s", m.reason[0] ? m.reason :
			    m.temp ? "temporary failure" : "authentication failed");
			res = m.temp ? XR_TEMP : XR_FAIL;
			*reusable = 1;
			break;
		}
		/* CONT: LOGIN asks for the user name, then the password; PLAIN never asks, as
		 * its response went with the request */
		if (mech != SASL_LOGIN || step >= 2) {
			snprintf(why, whylen, "Dovecot asked for more than %s gives", ar.mech);
			res = XR_TEMP;
			break;
		}
		if (b64(step == 0 ? req->user : req->pass, step == 0 ? ul : pl, resp,
		    sizeof(resp)) < 0 || (n = dva_cont_line(out, sizeof(out), id, resp)) < 0)
			goto internal;
		explicit_bzero(resp, sizeof(resp));
		step++;
		r = send_all(c->fd, out, (size_t)n, deadline);
		explicit_bzero(out, sizeof(out));
		if (r < 0) {
			snprintf(why, whylen, "sending to Dovecot: %s", strerror(errno));
			res = XR_TEMP;
			break;
		}
	}
	free(line);
	return res;
internal:
	explicit_bzero(plain, sizeof(plain));
	explicit_bzero(resp, sizeof(resp));
	explicit_bzero(out, sizeof(out));
	free(line);
	snprintf(why, whylen, "cannot build the request (out of memory or too long)");
	return XR_TEMP;
}

enum dvauth_result
dvauth_verify(struct dvauth *d, const struct dvauth_req *req, char *canon, size_t canoncap,
    char *why, size_t whylen)
{
	struct timespec deadline;
	unsigned mechs;
	int known, mech = req->mech, reusable;
	enum xres res = XR_TEMP;

	if (canoncap > 0)
		canon[0] = '\0';
	if (whylen > 0)
		why[0] = '\0';
	deadline_in(&deadline, DVAUTH_TIMEOUT);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct dvconn *c = attempt == 0 ? pool_take(d) : NULL;
		int reused = c != NULL;

		if (c == NULL && (c = conn_open(d, &deadline, why, whylen)) == NULL)
			return DVAUTH_TEMP;
		mechs = dvauth_mechs(d, &known);
		/* the client's mechanism when Dovecot has it, else the other (the same two
		 * strings travel either way) */
		if (!(mechs & MECH_BIT(mech)))
			mech = mech == SASL_PLAIN ? SASL_LOGIN : SASL_PLAIN;
		if (!(mechs & MECH_BIT(mech))) {
			snprintf(why, whylen, "Dovecot offers neither PLAIN nor LOGIN");
			pool_put(d, c);
			return DVAUTH_TEMP;
		}
		res = exchange(d, c, req, mech, &deadline, canon, canoncap, why, whylen, &reusable);
		if (reusable)
			pool_put(d, c);
		else
			conn_close(c);
		if (res != XR_BROKEN_UNANSWERED || !reused)
			break;
	}
	switch (res) {
	case XR_OK:
		return DVAUTH_OK;
	case XR_FAIL:
		return DVAUTH_FAIL;
	default:
		return DVAUTH_TEMP;
	}
}
