/*
 * conn — one connection of `imsd run`: the callbacks its session calls (output, the spool
 * file, STARTTLS, the tarpit), its I/O and TLS, memory accounting, per-client counts, spool
 * space, the group commit's answers, and the start and end of a connection.
 */
#include "server/server_int.h"

static void conn_flush(struct conn *c);
static void conn_read(struct conn *c);
static void conn_handshake(struct conn *c);
static void conn_start_tls(struct conn *c);
static void commit_answer(struct commit_job *cj);

/* ---- memory accounting ---- */

/* Count what c holds now in srv->mem (shared by the workers). */
static void
conn_account(struct conn *c)
{
	size_t m = 0;

	if (!c->dead)
		m = sizeof(*c) + c->incap + c->outcap + session_memory(c->s) +
		    (c->tls != NULL ? TLS_CONN_COST : 0);
	if (m < c->acct) {
		c->wk->freed += c->acct - m;
		__atomic_sub_fetch(&c->srv->mem, c->acct - m, __ATOMIC_RELAXED);
	} else if (m > c->acct)
		__atomic_add_fetch(&c->srv->mem, m - c->acct, __ATOMIC_RELAXED);
	c->acct = m;
}

/* ---- the per-client table, shared by the workers ---- */

/* Count a new session from a and return how many there were before it: one hold of the
 * lock, so that workers accepting from one client at once cannot all pass the limit. */
static unsigned
cl_conn_open(struct server *srv, const struct netaddr *a)
{
	pthread_mutex_lock(&srv->climu);
	unsigned n = clients_conns(srv->clients, a);
	clients_conn_add(srv->clients, a, 1);
	pthread_mutex_unlock(&srv->climu);
	return n;
}

static void
cl_conn_add(struct server *srv, const struct netaddr *a, int delta)
{
	pthread_mutex_lock(&srv->climu);
	clients_conn_add(srv->clients, a, delta);
	pthread_mutex_unlock(&srv->climu);
}

/* May a try AUTH? If so, the attempt is counted now (see srv_cb_auth_check). */
int
srv_cl_auth_begin(struct server *srv, const struct netaddr *a)
{
	time_t now = time(NULL);

	pthread_mutex_lock(&srv->climu);
	int ok = clients_auth_allowed(srv->clients, a, now);
	if (ok)
		clients_auth_failed(srv->clients, a, now);
	pthread_mutex_unlock(&srv->climu);
	return ok;
}

void
srv_cl_auth_refund(struct server *srv, const struct netaddr *a)
{
	pthread_mutex_lock(&srv->climu);
	clients_auth_refund(srv->clients, a);
	pthread_mutex_unlock(&srv->climu);
}

/* ---- spool space (queue_minfree) ---- */

/* Bytes the spool keeps free: queue_minfree, or three maximum-size messages. */
static uint64_t
spool_minfree(const struct conf *cf)
{
	return cf->queue_minfree ? cf->queue_minfree : 3 * cf->message_size_limit;
}

/* Free bytes on the spool's filesystem for an unprivileged writer, measured at most once a
 * second (force: now), less what was written into the spool since the measurement: a
 * burst of messages inside one second must not pass through the reserve. Shared by the
 * workers; a race measures twice, no harm. */
static uint64_t
spool_free(struct server *srv, const char *spool_dir, int force)
{
	time_t now = time(NULL);
	struct statvfs st;

	if (!force && __atomic_load_n(&srv->spool_free_at, __ATOMIC_RELAXED) == now) {
		uint64_t f = __atomic_load_n(&srv->spool_free, __ATOMIC_RELAXED);
		uint64_t a = __atomic_load_n(&srv->spool_admitted, __ATOMIC_RELAXED);
		return f > a ? f - a : 0;
	}
	if (statvfs(spool_dir, &st) < 0)
		return UINT64_MAX;	/* cannot tell: do not refuse mail for it */
	uint64_t f = (uint64_t)st.f_bavail * st.f_frsize;
	__atomic_store_n(&srv->spool_free, f, __ATOMIC_RELAXED);
	__atomic_store_n(&srv->spool_admitted, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&srv->spool_free_at, now, __ATOMIC_RELAXED);
	return f;
}

/* Is the spool below queue_minfree (force: measured now)? */
static int
spool_full(struct conn *c, uint64_t need, int force)
{
	const struct conf *cf = &c->cfg->conf;
	uint64_t f = spool_free(c->srv, cf->spool_dir, force), min = spool_minfree(cf);

	if (f >= min && f - min >= need)
		return 0;
	/* Recycled spool files hold blocks for reuse: the first thing to give back. */
	int n = queue_free_release(&c->srv->q);
	if (n > 0) {
		f = spool_free(c->srv, cf->spool_dir, 1);
		log_info("event=spool-low action=released-recycled-files files=%d free=%llu", n,
		    (unsigned long long)f);
		if (f >= min && f - min >= need)
			return 0;
	}
	time_t now = time(NULL);
	if (__atomic_exchange_n(&c->srv->spool_full_logged, now, __ATOMIC_RELAXED) != now)
		log_warn("sid=%s event=spool-full free=%llu queue_minfree=%llu needed=%llu "
		    "effect=\"new mail gets 452 4.3.1 until space returns\"", c->sid,
		    (unsigned long long)f, (unsigned long long)min, (unsigned long long)need);
	return 1;
}

/* The configuration new sessions get (a reference: cfg_unref it). */
struct cfg *
srv_cfg_current(struct server *srv)
{
	pthread_mutex_lock(&srv->cfgmu);
	struct cfg *c = cfg_ref(srv->cfg);
	pthread_mutex_unlock(&srv->cfgmu);
	return c;
}

#define AUTH_HEADER_ROOM	16384	/* reserved before the body for checks and signatures:
					 * the A-R field's worst case (8 DKIM results, reasons
					 * capped) is under 8 KiB, four RSA-4096 signatures 5 */

/* ---- session callbacks ---- */

void
srv_cb_output(void *arg, const char *buf, size_t len)
{
	struct conn *c = arg;

	if (c->dead)
		return;
	if (c->outlen + len > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 512;
		while (cap < c->outlen + len)
			cap *= 2;
		char *n = realloc(c->out, cap);
		if (n == NULL) {
			c->closing = 1;
			return;
		}
		c->out = n;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, buf, len);
	c->outlen += len;
}

int
srv_cb_tx_open(void *arg, struct session_tx *tx)
{
	struct conn *c = arg;
	struct qenv env;
	struct qrcpt *r;
	int ret;

	memset(&env, 0, sizeof(env));
	env.arrival = time(NULL);
	netaddr_str(&c->peer, env.client, sizeof(env.client));
	env.sender = tx->sender;
	env.body_8bit = tx->body_8bit;
	env.smtputf8 = tx->smtputf8;
	env.requiretls = tx->requiretls;
	env.body_binary = tx->body_binary;
	if ((r = calloc(tx->nrcpts, sizeof(*r))) == NULL)
		return -1;
	for (size_t i = 0; i < tx->nrcpts; i++) {
		r[i].addr = tx->rcpts[i].addr;
		r[i].orcpt = tx->rcpts[i].orcpt;
		r[i].notify = tx->rcpts[i].notify;
		r[i].dsn_orcpt = tx->rcpts[i].dsn_orcpt;
	}
	env.dsn_ret = tx->dsn_ret;
	memcpy(env.envid, tx->envid, sizeof(env.envid));
	env.rcpts = r;
	env.nrcpts = tx->nrcpts;
	if (srv_conn_checks(c, tx) || srv_conn_signs(c, tx)) {
		env.has_skip = 1;	/* room for Authentication-Results / DKIM-Signature */
		env.skip = AUTH_HEADER_ROOM;
	}
	ret = queue_create(&c->srv->q, &env, &c->w, c->werr, sizeof(c->werr));
	free(r);
	if (ret < 0) {
		log_error("sid=%s event=queue-error reason=\"%s\"", c->sid, c->werr);
		return -1;
	}
	memcpy(tx->qid, env.qid, sizeof(tx->qid));
	return 0;
}

int
srv_cb_tx_write(void *arg, const char *buf, size_t len)
{
	struct conn *c = arg;

	__atomic_add_fetch(&c->srv->spool_admitted, (uint64_t)len, __ATOMIC_RELAXED);
	if (queue_append(&c->w, buf, len, c->werr, sizeof(c->werr)) < 0) {
		int e = errno;
		log_error("sid=%s event=queue-error reason=\"%s\"", c->sid, c->werr);
		if (e == ENOSPC || e == EDQUOT || spool_full(c, 0, 1))
			return SESSION_WRITE_NOSPACE;
		return -1;
	}
	return 0;
}

int
srv_cb_space_ok(void *arg, uint64_t size)
{
	return !spool_full(arg, size, 0);
}

void
srv_cb_tx_abort(void *arg)
{
	struct conn *c = arg;

	if (c->w.fd >= 0 || c->w.qid[0] != '\0')
		queue_discard(&c->srv->q, &c->w);
	c->w.fd = -1;
	c->w.qid[0] = '\0';
}

/* The message is complete (and checked): hand it to the group commit. */
void
srv_commit_now(struct conn *c)
{
	struct server *srv = c->srv;
	struct cjob *j;

	if (queue_finish(&c->w, c->werr, sizeof(c->werr)) < 0 ||
	    (j = calloc(1, sizeof(*j))) == NULL) {
		log_error("sid=%s qid=%s event=queue-error reason=\"%s\"", c->sid, c->w.qid,
		    c->werr);
		srv_cb_tx_abort(c);
		session_commit_done(c->s, spool_full(c, 0, 1) ? SESSION_COMMIT_NOSPACE : 0);
		return;
	}
	j->conn = c;
	j->wk = c->wk;
	j->cj.w = c->w;
	j->cj.done = commit_answer;
	c->w.fd = -1;
	c->w.qid[0] = '\0';
	c->busy++;
	c->wk->commits_in_flight++;
	__atomic_add_fetch(&srv->commits_in_flight, 1, __ATOMIC_RELAXED);
	commit_submit(srv->committer, &j->cj);
}


void
srv_cb_log(void *arg, int level, const char *line)
{
	log_msg((enum log_level)level, "%s", line);
}

int
srv_cb_output_full(void *arg)
{
	struct conn *c = arg;

	return c->outlen - c->outoff >= OUT_MAX;
}

void
srv_cb_pause(void *arg, unsigned seconds)
{
	struct conn *c = arg;

	c->hold_until = time(NULL) + seconds;	/* server_tick resumes it */
}

void
srv_cb_starttls(void *arg)
{
	struct conn *c = arg;

	c->starttls_pending = 1;	/* srv_conn_process discards input; conn_flush starts TLS */
}

/* ---- group commit ---- */

/* On the commit thread: hand the decided job to the loop of its session. */
static void
commit_answer(struct commit_job *cj)
{
	struct cjob *j = (struct cjob *)cj;
	struct server *srv = j->wk->srv;
	uint64_t one = 1;

	pthread_mutex_lock(&srv->cmu);
	j->cj.next = j->wk->done;
	j->wk->done = &j->cj;
	pthread_mutex_unlock(&srv->cmu);
	if (write(j->wk->cevfd, &one, sizeof(one)) < 0) {
		/* eventfd counter overflow is impossible here; nothing to do */
	}
}

/* A worker's side: its committed messages come back here. Worker 0 also takes the other
 * workers' committed ids (the inbox) to its queue manager. */
void
srv_commit_done_cb(struct ev_io *io, uint32_t events)
{
	struct worker *wk = io->arg;
	struct server *srv = wk->srv;
	struct commit_job *list, *j, *rev = NULL;
	struct inbox_item *in = NULL, *it, *post = NULL, **post_tail = &post;
	uint64_t v;

	if (read(wk->cevfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&srv->cmu);
	list = wk->done;
	wk->done = NULL;
	if (wk->id == 0) {
		in = srv->inbox;
		srv->inbox = NULL;
	}
	pthread_mutex_unlock(&srv->cmu);
	while ((it = in) != NULL) {
		in = it->next;
		qmgr_add(srv->qmgr, it->qid);
		free(it);
	}
	/* The list is newest-first; answer in arrival order. */
	while (list != NULL) {
		j = list;
		list = list->next;
		j->next = rev;
		rev = j;
	}
	while ((j = rev) != NULL) {
		struct conn *c = ((struct cjob *)j)->conn;
		rev = j->next;
		wk->commits_in_flight--;
		__atomic_sub_fetch(&srv->commits_in_flight, 1, __ATOMIC_RELAXED);
		if (j->ok)
			metrics_inc(M_MSG_RECEIVED);
		if (j->ok && wk->id == 0)
			qmgr_add(srv->qmgr, j->w.qid);
		else if (j->ok) {
			/* The queue manager lives on worker 0. Should the item not be had, the
			 * message is still durable in queue/ and found at the next start. */
			if ((it = calloc(1, sizeof(*it))) != NULL) {
				memcpy(it->qid, j->w.qid, sizeof(it->qid));
				*post_tail = it;
				post_tail = &it->next;
			}
		} else {
			log_error("qid=%s event=queue-error stage=commit reason=\"%s\"", j->w.qid,
			    j->err);
			if (j->w.fd >= 0)
				queue_discard(&srv->q, &j->w);
		}
		if (c != NULL) {
			c->busy--;
			if (c->dead) {
				if (j->ok)
					log_info("sid=%s qid=%s event=committed-after-disconnect "
					    "note=client-not-told-250", c->sid, j->w.qid);
				srv_conn_close(c);
			} else {
				session_set_time(c->s, time(NULL));
				session_commit_done(c->s, j->ok ? 1 : spool_full(c, 0, 1) ?
				    SESSION_COMMIT_NOSPACE : 0);
				srv_conn_process(c);
				srv_conn_kick(c);
			}
		}
		free(j);
	}
	if (post != NULL) {
		/* this batch's ids to worker 0 in one hold of the lock */
		uint64_t one = 1;
		pthread_mutex_lock(&srv->cmu);
		*post_tail = srv->inbox;
		srv->inbox = post;
		pthread_mutex_unlock(&srv->cmu);
		if (write(srv->workers[0].cevfd, &one, sizeof(one)) < 0) {
			/* cannot overflow */
		}
	}
}

/* ---- connections ---- */

static time_t
conn_deadline(struct conn *c)
{
	const struct conf *cf = &c->cfg->conf;

	if (c->tstate == CT_HANDSHAKE)
		return time(NULL) + (cf->command_timeout < HANDSHAKE_SECONDS ? cf->command_timeout :
		    HANDSHAKE_SECONDS);
	return time(NULL) + (session_state(c->s) == SS_DATA ? cf->data_timeout : cf->command_timeout);
}

/* Does the session want input now? */
static int
conn_wants_input(struct conn *c)
{
	enum session_state st = session_state(c->s);

	return !c->closing && !c->starttls_pending && c->hold_until == 0 && st != SS_CLOSING &&
	    st != SS_STARTTLS && c->inlen < IN_MAX && c->outlen - c->outoff < OUT_MAX;
}

static void
conn_update_events(struct conn *c)
{
	uint32_t ev = 0;

	if (c->dead)
		return;
	if (c->tstate == CT_HANDSHAKE)
		ev = (uint32_t)c->tls_want;
	else {
		if (c->outoff < c->outlen && c->hold_until == 0)
			ev |= EPOLLOUT;
		if (conn_wants_input(c))
			ev |= EPOLLIN;
		if (c->tstate == CT_TLS && c->tls_want)
			ev |= (uint32_t)c->tls_want;
	}
	ev_io_set(c->wk->loop, &c->io, ev);
}

/* recv(2) or TLS read: > 0 bytes, 0 end of stream, -1 with errno (EAGAIN: wait). */
static ssize_t
conn_recv(struct conn *c, void *buf, size_t len)
{
	ssize_t n;

	if (c->tstate != CT_TLS)
		return recv(c->io.fd, buf, len, 0);
	n = tls_read(c->tls, buf, len);
	c->tls_want = 0;
	if (n > 0)
		return n;
	switch (n) {
	case TLS_WANT_READ:
		errno = EAGAIN;
		return -1;
	case TLS_WANT_WRITE:
		c->tls_want = EPOLLOUT;
		errno = EAGAIN;
		return -1;
	case TLS_CLOSED:
		return 0;
	default:
		log_info("sid=%s event=tls-error reason=\"%s\"", c->sid, tls_conn_error(c->tls));
		errno = EIO;
		return -1;
	}
}

static ssize_t
conn_send(struct conn *c, const void *buf, size_t len)
{
	ssize_t n;

	if (c->tstate != CT_TLS)
		return send(c->io.fd, buf, len, MSG_NOSIGNAL);
	n = tls_write(c->tls, buf, len);
	if (n > 0)
		return n;
	if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
		c->tls_want = n == TLS_WANT_READ ? EPOLLIN : EPOLLOUT;
		errno = EAGAIN;
		return -1;
	}
	errno = EPIPE;
	return -1;
}

/* Feed buffered input to the session, as far as it takes it; write the replies. The
 * session stops at the output bound, so go on while the client reads what we write. */
void
srv_conn_process(struct conn *c)
{
	for (;;) {
		size_t before = c->inlen;

		if (c->dead)
			return;
		if (c->inlen > 0 && !c->starttls_pending && c->hold_until == 0) {
			session_set_time(c->s, time(NULL));
			size_t used = session_feed(c->s, c->in, c->inlen);
			if (used > 0) {
				memmove(c->in, c->in + used, c->inlen - used);
				c->inlen -= used;
			}
		}
		if (c->starttls_pending && c->inlen > 0) {
			/* RFC 3207 §4.2: nothing the client sent after STARTTLS in the clear may
			 * be executed (CVE-2011-0411). */
			log_info("sid=%s event=starttls-discarded-input bytes=%zu", c->sid, c->inlen);
			c->inlen = 0;
		}
		if (c->inlen == 0 && c->in != NULL) {
			free(c->in);
			c->in = NULL;
			c->incap = 0;
		}
		if (session_commands(c->s) != c->last_cmds) {
			c->last_cmds = session_commands(c->s);
			c->deadline = conn_deadline(c);
		}
		if (session_state(c->s) == SS_CLOSING)
			c->closing = 1;
		conn_flush(c);
		if (c->dead)
			return;
		conn_account(c);
		/* Stop when nothing moved, or the session waits for something else (the tarpit,
		 * a commit, TLS), or the client is not reading (EPOLLOUT resumes us). */
		if (c->inlen == 0 || c->inlen == before || c->hold_until != 0 || c->closing ||
		    c->starttls_pending || c->outlen - c->outoff >= OUT_MAX)
			break;
	}
}

/* Write what we can; close when closing and drained; start TLS when the 220 is out. */
static void
conn_flush(struct conn *c)
{
	if (c->dead)
		return;
	if (c->hold_until != 0) {
		conn_update_events(c);	/* the tarpit: nothing leaves until the tick */
		return;
	}
	while (c->outoff < c->outlen) {
		ssize_t n = conn_send(c, c->out + c->outoff, c->outlen - c->outoff);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			session_disconnected(c->s);
			srv_conn_close(c);
			return;
		}
		c->outoff += (size_t)n;
	}
	if (c->outoff == c->outlen) {
		c->outoff = c->outlen = 0;
		if (c->outcap > 4096) {
			free(c->out);
			c->out = NULL;
			c->outcap = 0;
		}
		if (c->closing) {
			srv_conn_close(c);
			return;
		}
		if (c->starttls_pending) {
			c->starttls_pending = 0;
			conn_start_tls(c);
			return;
		}
	}
	conn_update_events(c);
}

/* Begin the TLS handshake on c's socket (after the 220 to STARTTLS, or at once on smtps). */
static void
conn_start_tls(struct conn *c)
{
	if ((c->tls = tls_conn_new(c->cfg->tls, c->io.fd, 1, NULL)) == NULL) {
		log_error("sid=%s event=tls-error reason=\"cannot create TLS session\"", c->sid);
		metrics_inc(M_TLS_FAIL_SETUP);
		session_disconnected(c->s);
		srv_conn_close(c);
		return;
	}
	c->tstate = CT_HANDSHAKE;
	c->tls_want = EPOLLIN;
	c->deadline = conn_deadline(c);
	conn_handshake(c);
}

/* Drive the TLS handshake (after STARTTLS, or first thing on an smtps listener). */
static void
conn_handshake(struct conn *c)
{
	char desc[128];
	int r = tls_handshake(c->tls);

	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
		c->tls_want = r == TLS_WANT_READ ? EPOLLIN : EPOLLOUT;
		conn_update_events(c);
		return;
	}
	if (r != TLS_OK) {
		log_info("sid=%s event=tls-handshake-failed reason=\"%s\"", c->sid,
		    tls_conn_error(c->tls));
		metrics_inc(M_TLS_FAIL_PROTOCOL);
		session_disconnected(c->s);
		srv_conn_close(c);
		return;
	}
	c->tstate = CT_TLS;
	c->tls_want = 0;
	metrics_inc(M_TLS_OK);
	snprintf(desc, sizeof(desc), "%s with cipher %s (%d bits)", tls_conn_version(c->tls),
	    tls_conn_cipher(c->tls), tls_conn_bits(c->tls));
	session_set_time(c->s, time(NULL));
	if (session_state(c->s) == SS_GREETING) {
		/* smtps: TLS first, then the greeting (RFC 8314 §3.3). */
		session_tls_done(c->s, desc);
		session_start(c->s, NULL);
	} else
		session_tls_done(c->s, desc);
	c->last_cmds = session_commands(c->s);
	c->deadline = conn_deadline(c);
	srv_conn_process(c);
	srv_conn_kick(c);
}

/* Read what TLS already decrypted: epoll cannot report it. */
void
srv_conn_kick(struct conn *c)
{
	if (!c->dead && c->tstate == CT_TLS && tls_pending(c->tls) > 0 && conn_wants_input(c))
		conn_read(c);
}

/* Keep n more input bytes (n ≤ IN_MAX - inlen); the buffer grows by doubling, so a
 * client that sends half a line costs IN_MIN, not IN_MAX. 0 ok, -1 out of memory. */
static int
conn_keep(struct conn *c, const char *p, size_t n)
{
	if (c->inlen + n > c->incap) {
		size_t cap = c->incap ? c->incap : IN_MIN;
		while (cap < c->inlen + n)
			cap *= 2;
		if (cap > IN_MAX)
			cap = IN_MAX;
		char *m = realloc(c->in, cap);
		if (m == NULL)
			return -1;
		c->in = m;
		c->incap = cap;
	}
	memcpy(c->in + c->inlen, p, n);
	c->inlen += n;
	return 0;
}

static void
conn_read(struct conn *c)
{
	char *rbuf = c->wk->rbuf;
	int eof = 0;

	for (int round = 0; round < 16 && !eof; round++) {
		ssize_t n;
		size_t room = IN_MAX - c->inlen;
		if (room == 0 || !conn_wants_input(c))
			break;
		n = conn_recv(c, rbuf, room < READ_CHUNK ? room : READ_CHUNK);
		if (n > 0) {
			size_t used = 0;
			if (c->inlen == 0 && c->hold_until == 0) {
				/* The common case: the session reads straight from rbuf and only a
				 * partial line (or what it cannot take yet) is copied. */
				session_set_time(c->s, time(NULL));
				used = session_feed(c->s, rbuf, (size_t)n);
			}
			if (used < (size_t)n && c->starttls_pending)
				log_info("sid=%s event=starttls-discarded-input bytes=%zu", c->sid,
				    (size_t)n - used);
			else if (used < (size_t)n && conn_keep(c, rbuf + used, (size_t)n - used) < 0) {
				session_disconnected(c->s);
				srv_conn_close(c);
				return;
			}
			if (c->inlen > 0) {
				srv_conn_process(c);
				if (c->dead)
					return;
			}
		}
		if (n == 0)
			eof = 1;
		else if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				eof = 1;
			break;
		} else {
			if (session_state(c->s) == SS_DATA)
				c->deadline = conn_deadline(c);
			if ((size_t)n < room && (c->tstate != CT_TLS || tls_pending(c->tls) == 0))
				break;
		}
	}
	if (c->dead)
		return;
	if (eof) {
		session_disconnected(c->s);
		srv_conn_close(c);
		return;
	}
	srv_conn_process(c);
}

static void
conn_cb(struct ev_io *io, uint32_t events)
{
	struct conn *c = io->arg;

	if (c->dead)
		return;
	if (c->tstate == CT_HANDSHAKE) {
		conn_handshake(c);
		return;
	}
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		session_disconnected(c->s);
		srv_conn_close(c);
		return;
	}
	if (c->tstate == CT_TLS && c->tls_want == EPOLLOUT && (events & EPOLLOUT) &&
	    c->outoff == c->outlen) {
		/* a read was waiting for the socket to take a TLS write */
		conn_read(c);
		return;
	}
	if (events & EPOLLIN) {
		conn_read(c);
		return;	/* conn may be gone */
	}
	if (events & EPOLLOUT) {
		conn_flush(c);
		/* The client read its replies: take the commands that waited for that. */
		if (!c->dead && c->inlen > 0 && c->outlen - c->outoff < OUT_MAX)
			srv_conn_process(c);
	}
}

/* Tear down a connection; while a job still points at it the struct waits. */
void
srv_conn_close(struct conn *c)
{
	struct server *srv = c->srv;
	struct worker *wk = c->wk;

	if (!c->dead) {
		int fd = c->io.fd;
		__atomic_store_n(&c->dead, 1, __ATOMIC_RELAXED);	/* jobs on other threads read it */
		ev_io_stop(wk->loop, &c->io);
		if (c->tstate == CT_TLS)
			tls_shutdown(c->tls);
		if (c->w.fd >= 0 || c->w.qid[0] != '\0')
			queue_discard(&srv->q, &c->w);
		/* the session stops counting before the client can see the close: one that
		 * reconnects at once is not refused for the connection it just ended */
		cl_conn_add(srv, &c->peer, -1);
		wk->nconns--;
		__atomic_sub_fetch(&srv->nconns, 1, __ATOMIC_RELAXED);
		metrics_gauge_add(MG_CONNECTIONS, -1);
		close(fd);
		if (c->prev)
			c->prev->next = c->next;
		else
			wk->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		log_info("sid=%s event=disconnect", c->sid);
		conn_account(c);	/* dead: counts nothing now */
	}
	if (c->busy > 0 || c->buried)
		return;	/* the job's completion calls us again */
	c->buried = 1;
	/* Freed later: callers up the stack may still hold c during this loop turn. */
	c->grave = wk->graveyard;
	wk->graveyard = c;
}

/* Has this worker finished all it must finish before it stops? Worker 0 waits for all the
 * others' sessions and commits too, and for the queue manager. */
int
srv_worker_drained(struct worker *wk)
{
	struct server *srv = wk->srv;

	if (wk->nconns != 0 || wk->commits_in_flight != 0)
		return 0;
	if (wk->id != 0)
		return 1;
	/* A relay delivery still talking to a slow server is given a few seconds, then cut:
	 * its message stays queued (at worst it is sent twice). Local work always finishes. */
	return __atomic_load_n(&srv->nconns, __ATOMIC_RELAXED) == 0 &&
	    __atomic_load_n(&srv->commits_in_flight, __ATOMIC_RELAXED) == 0 &&
	    (srv->qmgr == NULL || (qmgr_busy_local(srv->qmgr) == 0 &&
	    (qmgr_busy(srv->qmgr) == 0 || time(NULL) >= srv->stop_relay_deadline)));
}

/* Before the loop sleeps: free closed connections; when stopping and nothing is left to
 * finish, stop now rather than at the next tick. */
void
srv_worker_reap(void *arg)
{
	struct worker *wk = arg;
	struct conn *c;

	if (wk->stopping && srv_worker_drained(wk))
		ev_loop_break(wk->loop);

	while ((c = wk->graveyard) != NULL) {
		wk->graveyard = c->grave;
		session_free(c->s);
		if (c->tls != NULL)
			tls_conn_free(c->tls);
		cfg_unref(c->cfg);
		free(c->in);
		free(c->out);
		free(c->dnsbl_reply);
		free(c->spf);
		free(c);
	}
}

/* The refusal counter of an admission refusal. */
static enum metric
refuse_metric(enum admit_refusal r)
{
	return r == ADMIT_CONNECTION_LIMIT ? M_REFUSED_CONNECTION_LIMIT :
	    r == ADMIT_CLIENT_LIMIT ? M_REFUSED_CLIENT_LIMIT : M_REFUSED_MEMORY;
}

/* A recipient refused: counted for the client address across its sessions (clients.h).
 * Local users (the socket, the maildrop) are not counted: the kernel says who they are. */
static int
cb_rcpt_refused(void *arg)
{
	struct conn *c = arg;
	enum clients_rcpt r;

	if (c->kind == SL_LOCAL)
		return 0;
	pthread_mutex_lock(&c->srv->climu);
	r = clients_rcpt_refused(c->srv->clients, &c->peer, time(NULL));
	pthread_mutex_unlock(&c->srv->climu);
	if (r == CLIENTS_RCPT_SLOW)
		return CLIENTS_RCPT_DELAY;
	return r == CLIENTS_RCPT_CUT ? -1 : 0;
}

static const struct session_ops session_ops = {
	.output = srv_cb_output,
	.tx_open = srv_cb_tx_open,
	.tx_write = srv_cb_tx_write,
	.tx_commit = srv_cb_tx_commit,
	.tx_abort = srv_cb_tx_abort,
	.log = srv_cb_log,
	.starttls = srv_cb_starttls,
	.auth_check = srv_cb_auth_check,
	.output_full = srv_cb_output_full,
	.pause = srv_cb_pause,
	.space_ok = srv_cb_space_ok,
	.mail_check = srv_cb_mail_check,
	.rcpt_refused = cb_rcpt_refused,
};

/*
 * Begin serving an accepted connection: its session, the limits, the greeting (or the TLS
 * handshake on an smtps listener). peer holds the addresses the policies see: the socket's,
 * or those a PROXY header carried (via names the balancer then).
 */
void
srv_conn_start(struct worker *wk, int fd, enum session_listener kind,
    const struct session_peer *peer, const char *via, struct cfg *cfg)
{
	struct server *srv = wk->srv;
	struct session_opts opts;
	struct conn *c;
	const char *refuse = NULL, *why = NULL;
	char ra[64], la[64];

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->srv = srv;
	c->wk = wk;
	c->cfg = cfg_ref(cfg);
	c->peer = peer->remote;
	c->sp = *peer;
	c->kind = kind;
	c->w.fd = -1;
	snprintf(c->sid, sizeof(c->sid), "%llx%04llx", (unsigned long long)time(NULL),
	    __atomic_add_fetch(&srv->nsessions, 1, __ATOMIC_RELAXED) & 0xffff);
	memset(&opts, 0, sizeof(opts));
	opts.kind = kind;
	opts.cert_loaded = c->cfg->tls != NULL && kind != SL_LOCAL;
	opts.auth_available = (c->cfg->authusers != NULL || c->cfg->dvauth != NULL) &&
	    kind != SL_LOCAL;
	if (c->cfg->dvauth != NULL) {
		int known;

		/* what Dovecot's last handshake listed; before one, both (either is carried) */
		opts.auth_mechs = dvauth_mechs(c->cfg->dvauth, &known);
		if (known && opts.auth_mechs == 0)
			opts.auth_available = 0;
	}
	c->s = session_new(&c->cfg->conf, c->cfg->recipients, peer, &opts, c->sid,
	    &session_ops, c);
	if (c->s == NULL || ev_io_start(wk->loop, &c->io, fd, 0, conn_cb, c) < 0) {
		session_free(c->s);
		cfg_unref(c->cfg);
		free(c);
		close(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->next = wk->conns;
	if (wk->conns)
		wk->conns->prev = c;
	wk->conns = c;
	wk->nconns++;
	struct admit_counts counts;
	struct admit_verdict verdict;
	const struct conf *cf = &c->cfg->conf;
	counts.sessions = __atomic_add_fetch(&srv->nconns, 1, __ATOMIC_RELAXED);
	counts.mem_used = __atomic_load_n(&srv->mem, __ATOMIC_RELAXED);
	counts.from_client = cl_conn_open(srv, &c->peer);
	counts.mem_new = sizeof(*c) + session_memory(c->s);
	if (admit_decide(cf, &counts, &verdict) != ADMIT_OK) {
		refuse = verdict.reply;
		why = verdict.reason;
	}
	conn_account(c);
	metrics_inc(M_CONNECTIONS);
	metrics_gauge_add(MG_CONNECTIONS, 1);
	if (why != NULL)
		metrics_inc(refuse_metric(verdict.refusal));
	if (verdict.refusal == ADMIT_MEMORY_LIMIT)
		log_warn("sid=%s event=connect-refused reason=%s used=%zu limit=%llu "
		    "sessions=%u", c->sid, why, counts.mem_used,
		    (unsigned long long)cf->max_session_memory, counts.sessions);
	log_info("sid=%s event=connect client=%s:%u local=%s:%u listener=%s worker=%d%s%s%s%s",
	    c->sid, netaddr_str(&peer->remote, ra, sizeof(ra)), peer->remote_port,
	    netaddr_str(&peer->local, la, sizeof(la)), peer->local_port,
	    kind == SL_SMTPS ? "smtps" : kind == SL_SUBMISSION ? "submission" :
	    kind == SL_LOCAL ? "local" : "smtp", wk->id,
	    via ? " proxy=" : "", via ? via : "",
	    refuse ? " action=refused reason=" : "", refuse ? why : "");
	if (kind == SL_SMTPS && refuse == NULL) {
		c->exempt = !peer->no_client && (netaddr_is_loopback(&c->peer) ||
		    conf_relay_client(cf, &c->peer));
		if (!peer->no_client)
			srv_dnsbl_start(c);
		conn_start_tls(c);	/* RFC 8314: the handshake first, whatever the address */
		return;
	}
	c->exempt = !peer->no_client && (kind == SL_LOCAL || netaddr_is_loopback(&c->peer) ||
	    conf_relay_client(cf, &c->peer));
	if (refuse == NULL && !peer->no_client)
		srv_dnsbl_start(c);
	c->deadline = conn_deadline(c);
	session_start(c->s, refuse);
	c->last_cmds = session_commands(c->s);
	srv_conn_process(c);
}
