/*
 * rconn — one connection of the smtp agent (see relay.h, relay_int.h): non-blocking I/O
 * and TLS, the dialogue on proto/smtpc and what is decided around it (the peer's limits,
 * REQUIRETLS, BINARYMIME, 8BITMIME and the 7-bit conversion, SMTPUTF8), the message text,
 * and the idle connections kept for the next message to the same host.
 */
#include "deliver/relay_int.h"

/* ---- results from the dialogue ---- */

/* Recipient i of the job takes the result the dialogue gave r (none: left as it is). */
static void
set_result(struct rtask *t, size_t i, const struct smtpc_rcpt *r, int peer_dsn)
{
	struct dlv_result *res = &t->job->results[i];

	if (r->code == 0)
		return;
	res->outcome = smtp_reply_completion(r->code) ? DLV_OK :
	    smtp_reply_permanent(r->code) ? DLV_PERM : DLV_TEMP;
	str_copy(res->status, sizeof(res->status), r->status);
	str_copy(res->diag, sizeof(res->diag), r->diag);
	res->peer_dsn = peer_dsn;
}

/* What the current transaction on c said for each recipient so far, into the job. */
static void
task_take_results(struct rtask *t, const struct rconn *c)
{
	for (size_t k = 0; k < t->tx.nrcpts; k++)
		set_result(t, t->send[k], &t->srcpts[k], c->sc.caps.dsn);
}

/* ---- connection I/O ---- */

static void
rc_out(struct rconn *c, const char *p, size_t n)
{
	if (c->outlen + n > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 1024;
		while (cap < c->outlen + n)
			cap *= 2;
		char *np = realloc(c->out, cap);
		if (np == NULL)
			return;
		c->out = np;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, p, n);
	c->outlen += n;
}

/* The dialogue's commands: logged at debug, sent with CRLF. */
static void
sc_command(void *arg, const char *line, size_t n)
{
	struct rconn *c = arg;

	if (log_level_now() >= LOG_DEBUG) {
		char lh[LOG_VALUE_MAX], ll[LOG_VALUE_MAX];
		log_debug("relay=%s smtp=out line=%s", log_value(lh, sizeof(lh), c->t.host,
		    strlen(c->t.host)), log_value(ll, sizeof(ll), line, n));
	}
	rc_out(c, line, n);
	rc_out(c, "\r\n", 2);
}

static void
sc_reply(void *arg, const struct smtp_reply *rp)
{
	struct rconn *c = arg;

	if (log_level_now() >= LOG_DEBUG) {
		/* a multi-line reply is one value: its line breaks are escaped, not lines */
		char lh[LOG_VALUE_MAX], lt[LOG_VALUE_MAX];
		log_debug("relay=%s smtp=in code=%d text=%s", log_value(lh, sizeof(lh), c->t.host,
		    strlen(c->t.host)), rp->code, log_value(lt, sizeof(lt), rp->text,
		    strlen(rp->text)));
	}
}

const struct smtpc_ops rl_sc_ops = { sc_command, sc_reply };

static ssize_t
rc_write(struct rconn *c, const void *p, size_t n)
{
	if (!c->tls_up)
		return send(c->io.fd, p, n, MSG_NOSIGNAL);
	ssize_t r = tls_write(c->tls, p, n);
	if (r > 0)
		return r;
	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
		c->tls_want = r == TLS_WANT_READ ? EPOLLIN : EPOLLOUT;
		errno = EAGAIN;
		return -1;
	}
	errno = EPIPE;
	return -1;
}

static ssize_t
rc_read(struct rconn *c, void *p, size_t n)
{
	if (!c->tls_up)
		return recv(c->io.fd, p, n, 0);
	ssize_t r = tls_read(c->tls, p, n);
	if (r > 0)
		return r;
	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
		c->tls_want = r == TLS_WANT_WRITE ? EPOLLOUT : 0;
		errno = EAGAIN;
		return -1;
	}
	if (r == TLS_CLOSED)
		return 0;
	errno = EIO;
	return -1;
}

static void
rc_update(struct rconn *c)
{
	uint32_t ev = EPOLLIN;

	if (c->dead || c->io.fd < 0)
		return;
	if (c->st == RC_CONNECTING)
		ev = EPOLLOUT;
	else if (c->st == RC_HANDSHAKE)
		ev = (uint32_t)(c->tls_want ? c->tls_want : EPOLLIN);
	else {
		/* while the text goes the socket taking more is what brings the next chunk;
		 * so for BDAT when chunks may be pipelined (RFC 3030 §4.2) */
		if (c->outoff < c->outlen || c->tls_want == EPOLLOUT ||
		    (c->task != NULL && (c->sc.st == SC_BODY || smtpc_bdat_more(&c->sc))))
			ev |= EPOLLOUT;
	}
	ev_io_set(c->r->loop, &c->io, ev);
}

/* A connection-level failure: this target did not work out. */
void
rl_rc_fail(struct rconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void
rl_rc_fail(struct rconn *c, const char *fmt, ...)
{
	struct rtask *t = c->task;
	char why[250];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (t == NULL) {
		rl_rc_close(c);
		return;
	}
	if (!t->policy_failing)
		t->other_failed = 1;
	t->policy_failing = 0;
	{
		char a[NETADDR_STRLEN], lh[LOG_VALUE_MAX], lwhy[LOG_VALUE_MAX];
		log_info("qid=%s event=relay-attempt-failed host=%s addr=%s port=%u reason=%s",
		    t->job->qid, log_value(lh, sizeof(lh), c->t.host, strlen(c->t.host)),
		    netaddr_str(&c->t.addr, a, sizeof(a)), c->t.port,
		    log_value(lwhy, sizeof(lwhy), why, strlen(why)));
	}
	snprintf(t->err, sizeof(t->err), "x-imsd; %s: %s", c->t.host, why);
	if (c->st == RC_SMTP)
		task_take_results(t, c);	/* what the recipients were told so far */
	t->c = NULL;
	c->task = NULL;
	rl_rc_close(c);
	if (c->st == RC_SMTP && smtpc_delivered_maybe(&c->sc)) {
		/* the message may have gone through: do not try another host now */
		rl_task_done(t);
		return;
	}
	t->cur++;
	rl_task_next_target(t);
}

/* A TLS level that requires TLS was not met on c: this host is not used (the next one is
 * tried; when none is left the message is deferred with this reason). Never plaintext. */
static void
tls_policy_fail(struct rconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
tls_policy_fail(struct rconn *c, const char *fmt, ...)
{
	struct rtask *t = c->task;
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (t->job->requiretls && strcmp(t->rtls_status, "5.7.30") != 0)
		str_copy(t->rtls_status, sizeof(t->rtls_status), "5.7.10");
	t->policy_failing = 1;
	rl_rc_fail(c, "TLS required by %s for %s: %s%s", t->tls_source, t->job->domain,
	    t->sts != NULL && t->sts->mode == MTASTS_ENFORCE ? "MTA-STS policy (mode enforce): " :
	    "", why);
}

/* Write what is queued; the dialogue's time limit starts again with each step. */
void
rl_rc_flush(struct rconn *c)
{
	if (c->dead)
		return;
	while (c->outoff < c->outlen) {
		ssize_t n = rc_write(c, c->out + c->outoff, c->outlen - c->outoff);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			rl_rc_fail(c, "write: %s", strerror(errno));
			return;
		}
		c->outoff += (size_t)n;
	}
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	if (c->st == RC_SMTP)
		c->deadline = time(NULL) + smtpc_timeout(&c->sc);
	rc_update(c);
}

void
rl_rc_close(struct rconn *c)
{
	struct relay *r = c->r;
	uint64_t one = 1;

	if (c->dead)
		return;
	c->dead = 1;
	if (c->io.fd >= 0) {
		int fd = c->io.fd;
		ev_io_stop(r->loop, &c->io);
		if (c->tls_up)
			tls_shutdown(c->tls);
		close(fd);
	}
	if (c->st == RC_IDLE) {
		/* on the idle list */
		if (c->prev)
			c->prev->next = c->next;
		else
			r->idle = c->next;
		if (c->next)
			c->next->prev = c->prev;
		r->nidle--;
	}
	if (c->aprev)
		c->aprev->anext = c->anext;
	else if (r->conns == c)
		r->conns = c->anext;
	if (c->anext)
		c->anext->aprev = c->aprev;
	c->aprev = c->anext = NULL;
	/* freed from the loop later: callers up the stack may still hold c */
	c->grave = r->graveyard;
	r->graveyard = c;
	if (write(r->efd, &one, sizeof(one)) < 0) {
		/* cannot overflow */
	}
}

/* ---- the message: 7-bit conversion and re-signing (deliver/msgprep) ---- */

/* Convert for c's peer; 0 done (t->src_* point at the converted copy), -1 with t->err. */
static int
downgrade(struct rtask *t, struct rconn *c)
{
	uint64_t len;
	int fd, nsig;

	if (msgprep_7bit(t->job, c->t.host, &fd, &len, &nsig, t->err, sizeof(t->err)) < 0)
		return -1;
	t->src_fd = fd;
	t->src_off = 0;
	t->src_len = len;
	t->converted = 1;
	log_info("qid=%s relay=%s event=converted-to-7bit reason=no-8bitmime size=%llu "
	    "resigned=%d", t->job->qid, c->t.host, (unsigned long long)len, nsig);
	return 0;
}

/* ---- the body: CRLF only, dot-stuffed (proto/smtp_body) ---- */

static char pump_in[BODY_CHUNK];
static char pump_out[2 * BODY_CHUNK + 2 + SMTP_BODY_END_MAX];	/* worst case: every byte
						 * a bare CR (smtp_body_encode), then the end */

/* Read the next up to BODY_CHUNK body bytes into pump_in: their number, or -1 on error
 * (c is closed). */
static ssize_t
body_read(struct rtask *t, struct rconn *c)
{
	uint64_t left = t->src_len - t->body_sent;
	size_t want = left < sizeof(pump_in) ? (size_t)left : sizeof(pump_in);
	ssize_t r = 0;

	if (want > 0) {
		r = pread(t->src_fd, pump_in, want, (off_t)(t->src_off + t->body_sent));
		if (r <= 0) {
			rl_rc_fail(c, "reading the queue file: %s", r < 0 ? strerror(errno) : "short file");
			return -1;
		}
	}
	return r;
}

/* Queue up to BODY_CHUNK transformed bytes; at the end of the body the final dot (the
 * dialogue then waits for its reply). Returns 1 when all is queued, 0 when more is to
 * come, -1 on error (c is closed). */
static int
body_pump(struct rtask *t, struct rconn *c)
{
	ssize_t n = body_read(t, c);

	if (n < 0)
		return -1;
	size_t o = smtp_body_encode(&t->enc, pump_in, (size_t)n, pump_out, 1);
	t->body_sent += (uint64_t)n;
	rc_out(c, pump_out, o);
	if (t->body_sent < t->src_len)
		return 0;
	o = smtp_body_encode_end(&t->enc, pump_out, 0);
	rc_out(c, pump_out, o);
	log_debug("relay=%s smtp=out line=\"<%llu bytes of message>\"", c->t.host,
	    (unsigned long long)t->src_len);
	smtpc_dot(&c->sc);
	return 1;
}

/*
 * RFC 3030: queue the next "BDAT <n>[ LAST]" and its n octets (at most BODY_CHUNK bytes
 * of the queue file, so at most 2 * BODY_CHUNK + 2 on the wire). A BINARYMIME body goes
 * as stored; any other body with the CRLF lines of DATA (no dot-stuffing: BDAT has no
 * end marker), so a peer gets the same text either way. Returns 1 when the LAST chunk is
 * queued, 0 when more is to come, -1 on error (c is closed).
 */
static int
bdat_pump(struct rtask *t, struct rconn *c)
{
	ssize_t n = body_read(t, c);
	size_t o;
	int last;

	if (n < 0)
		return -1;
	if (t->job->body_binary) {
		memcpy(pump_out, pump_in, (size_t)n);
		o = (size_t)n;
	} else
		o = smtp_body_encode(&t->enc, pump_in, (size_t)n, pump_out, 0);
	t->body_sent += (uint64_t)n;
	last = t->body_sent >= t->src_len;
	if (last && !t->job->body_binary)
		o += smtp_body_encode_end(&t->enc, pump_out + o, 0);
	smtpc_bdat(&c->sc, o, last);
	rc_out(c, pump_out, o);
	return last;
}

/* ---- the dialogue (proto/smtpc) and what is decided around it ---- */

/* Does the message need SMTPUTF8 (RFC 6531 §3.4): an SMTPUTF8 transaction or a UTF-8
 * address in its envelope? */
static int
job_needs_smtputf8(const struct dlv_job *j)
{
	if (j->smtputf8 || utf8_has_nonascii(j->sender))
		return 1;
	for (size_t i = 0; i < j->nrcpts; i++)
		if (utf8_has_nonascii(j->rcpts[i]))
			return 1;
	return 0;
}

/* End the transaction before MAIL: every recipient has a result; say goodbye. */
static void
task_quit_before_mail(struct rtask *t, struct rconn *c)
{
	c->task = NULL;
	t->c = NULL;
	smtpc_quit(&c->sc);
	rl_rc_flush(c);
	rl_task_done(t);
}

/* The message cannot go to this peer at all: every recipient left gets status and diag,
 * and the connection is quit. */
static void
task_refuse_all(struct rtask *t, struct rconn *c, const char *status, const char *diag)
{
	rl_task_fail_rest(t, DLV_PERM, status, diag);
	task_quit_before_mail(t, c);
}

/*
 * RFC 6531 §3.2: to a peer that does not announce SMTPUTF8, a message whose sender is a
 * UTF-8 address cannot go at all, and a UTF-8 recipient cannot be named: those recipients
 * bounce with 5.6.7 and the reason; an all-ASCII envelope is sent plainly (UTF-8 in the
 * header section goes as it is: imsd does not downgrade messages, RFC 6857). Fills
 * t->send with the recipients to name. 0 go on; -1 the transaction is over (c closed or
 * quit).
 */
static int
smtputf8_filter(struct rtask *t, struct rconn *c)
{
	const struct dlv_job *j = t->job;
	char diag[300];

	if (t->send == NULL) {
		size_t n = j->nrcpts ? j->nrcpts : 1;
		t->send = calloc(n, sizeof(*t->send));
		t->srcpts = calloc(n, sizeof(*t->srcpts));
		t->utf8_refused = calloc(n, 1);
		if (t->send == NULL || t->srcpts == NULL || t->utf8_refused == NULL) {
			snprintf(t->err, sizeof(t->err), "x-imsd; out of memory");
			task_quit_before_mail(t, c);
			return -1;
		}
	}
	if (!c->sc.caps.smtputf8 && utf8_has_nonascii(j->sender)) {
		snprintf(diag, sizeof(diag), "x-imsd; the sender address is not ASCII and %s "
		    "does not support SMTPUTF8", c->t.host);
		task_refuse_all(t, c, "5.6.7", diag);
		return -1;
	}
	t->nsend = 0;
	for (size_t i = 0; i < j->nrcpts; i++) {
		if (t->utf8_refused[i])
			continue;
		if (!c->sc.caps.smtputf8 && utf8_has_nonascii(j->rcpts[i])) {
			struct dlv_result *res = &j->results[i];
			snprintf(diag, sizeof(diag), "x-imsd; the recipient address is not ASCII "
			    "and %s does not support SMTPUTF8", c->t.host);
			res->outcome = DLV_PERM;
			str_copy(res->status, sizeof(res->status), "5.6.7");
			str_copy(res->diag, sizeof(res->diag), diag);
			t->utf8_refused[i] = 1;
			continue;
		}
		t->send[t->nsend++] = i;
	}
	if (t->nsend == 0) {
		task_quit_before_mail(t, c);
		return -1;
	}
	return 0;
}

/* What the peer announced decides whether the message may go to it, and how. */
void
rl_task_begin_tx(struct rtask *t)
{
	struct rconn *c = t->c;
	const struct dlv_job *j = t->job;
	const struct smtp_caps *caps = &c->sc.caps;
	char diag[400];

	c->st = RC_SMTP;
	if (caps->size_known && caps->size > 0 && j->body_len > caps->size) {
		snprintf(diag, sizeof(diag), "x-imsd; message size %llu exceeds the limit of %llu "
		    "bytes announced by %s", (unsigned long long)j->body_len,
		    (unsigned long long)caps->size, c->t.host);
		task_refuse_all(t, c, "5.3.4", diag);
		return;
	}
	if (j->requiretls) {
		const char *why = NULL;
		if (strcasecmp(c->vhost, t->targets[t->cur].host) != 0 ||
		    !(c->tls_verified == 2 || (c->tls_verified == 1 && t->sts != NULL &&
		    t->sts->mode == MTASTS_ENFORCE)))
			why = "TLS to it is not verified by DANE or an enforced MTA-STS policy";
		else if (!caps->requiretls)
			why = "it does not offer REQUIRETLS";
		if (why != NULL) {
			/* RFC 8689 4.2.1: QUIT, and the next MX host; when none is left the message
			 * is returned (rl_task_done), never sent less protected */
			char lh[LOG_VALUE_MAX], lw[LOG_VALUE_MAX];
			snprintf(t->err, sizeof(t->err), "x-imsd; the message requires TLS "
			    "(REQUIRETLS) and %s: %s", c->t.host, why);
			str_copy(t->rtls_status, sizeof(t->rtls_status), "5.7.30");
			log_info("qid=%s event=relay-attempt-failed host=%s reason=%s", j->qid,
			    log_value(lh, sizeof(lh), c->t.host, strlen(c->t.host)),
			    log_value(lw, sizeof(lw), t->err + 8, strlen(t->err + 8)));
			c->task = NULL;
			t->c = NULL;
			smtpc_quit(&c->sc);
			rl_rc_flush(c);
			t->cur++;
			rl_task_next_target(t);
			return;
		}
	}
	if (j->body_binary && !(caps->chunking && caps->binarymime)) {
		/* RFC 3030 §3: BODY=BINARYMIME only by BDAT to a server that announced both.
		 * imsd does not convert binary MIME to base64, so the message is returned. */
		snprintf(diag, sizeof(diag), "x-imsd; the message has binary content "
		    "(BODY=BINARYMIME) and %s does not support %s", c->t.host,
		    caps->chunking ? "BINARYMIME" : "CHUNKING and BINARYMIME");
		task_refuse_all(t, c, "5.6.3", diag);
		return;
	}
	if (j->body_8bit && !j->body_binary && !caps->eightbitmime && !t->converted &&
	    downgrade(t, c) == 0) {
		/* sent as quoted-printable: see downgrade() */
	} else if (j->body_8bit && !j->body_binary && !caps->eightbitmime && !t->converted) {
		/* RFC 6152 §3: 8-bit data only to a server that announced 8BITMIME; what the
		 * conversion to 7 bit could not do returns the message (RFC 3463 5.6.3) */
		snprintf(diag, sizeof(diag), "x-imsd; the message has 8-bit content, %s does not "
		    "support 8BITMIME, and it cannot be converted to 7 bit: %s", c->t.host, t->err);
		task_refuse_all(t, c, "5.6.3", diag);
		return;
	}
	if (smtputf8_filter(t, c) < 0)
		return;
	c->used = 1;
	memset(&t->tx, 0, sizeof(t->tx));
	t->tx.sender = j->sender;
	t->tx.size = t->src_len;
	t->tx.body = j->body_binary ? SMTPC_BODY_BINARY : j->body_8bit && !t->converted ?
	    SMTPC_BODY_8BIT : SMTPC_BODY_7BIT;
	t->tx.requiretls = j->requiretls;
	t->tx.smtputf8 = job_needs_smtputf8(j);
	t->tx.dsn_ret = j->dsn_ret;
	t->tx.envid = j->envid;
	/* RFC 5321 §5.1: a host that cannot take the message now is skipped for the next */
	t->tx.mail_temp_fails = t->cur + 1 < t->ntargets;
	for (size_t k = 0; k < t->nsend; k++) {
		struct smtpc_rcpt *r = &t->srcpts[k];
		size_t i = t->send[k];
		memset(r, 0, sizeof(*r));
		r->addr = j->rcpts[i];
		r->notify = j->notify != NULL ? j->notify[i] : 0;
		r->dsn_orcpt = j->dsn_orcpts != NULL ? j->dsn_orcpts[i] : NULL;
	}
	t->tx.rcpts = t->srcpts;
	t->tx.nrcpts = t->nsend;
	if (smtpc_mail(&c->sc, &t->tx) < 0) {
		snprintf(diag, sizeof(diag), "x-imsd; the envelope cannot be sent: %s", c->sc.why);
		task_refuse_all(t, c, "5.6.0", diag);
		return;
	}
	rl_rc_flush(c);
}

static void
rc_to_idle(struct rconn *c)
{
	struct relay *r = c->r;

	if (r->nidle >= IDLE_MAX || !c->used) {
		smtpc_quit(&c->sc);
		rl_rc_flush(c);
		return;
	}
	c->st = RC_IDLE;
	c->idle_since = time(NULL);
	c->deadline = c->idle_since + IDLE_KEEP;
	c->prev = NULL;
	c->next = r->idle;
	if (r->idle)
		r->idle->prev = c;
	r->idle = c;
	r->nidle++;
	rc_update(c);
}

/* The transaction is over: the results, then the connection kept or quit. */
static void
task_tx_over(struct rtask *t, struct rconn *c)
{
	task_take_results(t, c);
	snprintf(t->job->remote_mta, sizeof(t->job->remote_mta), "dns; %s", c->t.host);
	t->c = NULL;
	c->task = NULL;
	if (c->sc.reusable)
		rc_to_idle(c);
	else {
		/* it ended badly, or pipelined replies are still to come: do not reuse */
		smtpc_quit(&c->sc);
		rl_rc_flush(c);
	}
	rl_task_done(t);
}

/* STARTTLS was accepted: the TLS session for this host as its level wants it. */
static void
rc_start_tls(struct rconn *c)
{
	struct rtask *t = c->task;
	struct netaddr lit;
	/* SNI carries a host name, never an address (RFC 6066 §3) */
	int is_ip = netaddr_parse(c->t.host, &lit) == 0 || c->t.host[0] == '[';

	if (rl_task_tls_required(t) == 2) {
		size_t added = 0;
		c->tls = tls_conn_new(t->job->cfg->client_dane, c->io.fd, 0, c->t.host);
		if (c->tls != NULL && tls_conn_dane_begin(c->tls, c->t.host) == 0)
			for (size_t i = 0; i < t->dane->n; i++) {
				const struct tlsa_rr *rr = &t->dane->rr[i];
				if (tlsa_usable(rr) && tls_conn_dane_add(c->tls, rr->usage,
				    rr->selector, rr->mtype, rr->data, rr->len) > 0)
					added++;
			}
		if (c->tls != NULL && added == 0) {
			tls_policy_fail(c, "DANE: no TLSA record of %s could be loaded", c->t.host);
			return;
		}
	} else if (rl_task_tls_required(t) == 1) {
		/* the certificate must carry the MX host name (RFC 7817 §3) */
		c->tls = tls_conn_new(t->job->cfg->client_verify, c->io.fd, 0,
		    is_ip ? NULL : c->t.host);
		if (c->tls != NULL && tls_conn_expect_host(c->tls, c->t.host) < 0) {
			tls_conn_free(c->tls);
			c->tls = NULL;
		}
	} else
		c->tls = tls_conn_new(c->r->client_tls, c->io.fd, 0, is_ip ? NULL : c->t.host);
	if (c->tls == NULL) {
		rl_rc_fail(c, "cannot start TLS");
		return;
	}
	c->st = RC_HANDSHAKE;
	c->tls_want = EPOLLOUT;
	c->deadline = time(NULL) + T_CMD;
	rc_update(c);
}

/* What the dialogue asks of us after a reply. */
static void
rc_event(struct rconn *c, enum smtpc_event ev)
{
	struct rtask *t = c->task;
	char d[400];

	switch (ev) {
	case SMTPC_MORE:
		rl_rc_flush(c);
		return;
	case SMTPC_CLOSED:
		rl_rc_close(c);
		return;
	case SMTPC_FAIL:
		rl_rc_fail(c, "%s", c->sc.why);
		return;
	default:
		break;
	}
	if (t == NULL) {
		/* an idle or quitting connection spoke: drop it */
		rl_rc_close(c);
		return;
	}
	switch (ev) {
	case SMTPC_READY:
		if (c->sc.caps.starttls && !c->tls_up && !c->no_tls && c->r->client_tls != NULL) {
			smtpc_starttls(&c->sc);
			break;
		}
		if (rl_task_tls_required(t) && !c->tls_verified) {
			/* never downgrade: no STARTTLS, no mail */
			tls_policy_fail(c, "the server does not offer STARTTLS");
			return;
		}
		rl_task_begin_tx(t);
		return;
	case SMTPC_EHLO_REFUSED:
		if (rl_task_tls_required(t) && !c->tls_verified) {
			smtpc_diag(&c->sc.reply, d, sizeof(d));
			tls_policy_fail(c, "EHLO refused (no STARTTLS without it): %s", d);
			return;
		}
		smtpc_helo(&c->sc);	/* an old server (RFC 5321 §3.2) */
		break;
	case SMTPC_TLS_REFUSED:
		if (rl_task_tls_required(t)) {
			smtpc_diag(&c->sc.reply, d, sizeof(d));
			tls_policy_fail(c, "STARTTLS refused: %s", d);
			return;
		}
		/* the offer was not meant: go on in plaintext on this connection */
		log_info("qid=%s event=relay-starttls-refused host=%s code=%d", t->job->qid,
		    c->t.host, c->sc.reply.code);
		rl_task_begin_tx(t);
		return;
	case SMTPC_TLS:
		rc_start_tls(c);
		return;
	case SMTPC_BODY:
		t->body_sent = 0;
		smtp_body_enc_init(&t->enc);
		if (body_pump(t, c) < 0)
			return;
		break;
	case SMTPC_BDAT:
		if (!c->sc.text_sent) {
			/* all recipients are answered and some accepted: the first chunk */
			t->body_sent = 0;
			smtp_body_enc_init(&t->enc);
		}
		if (bdat_pump(t, c) < 0)
			return;
		break;
	case SMTPC_DONE:
		task_tx_over(t, c);
		return;
	default:
		break;
	}
	rl_rc_flush(c);
}

static void
rc_handshake(struct rconn *c)
{
	int r = tls_handshake(c->tls);

	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
		c->tls_want = r == TLS_WANT_READ ? EPOLLIN : EPOLLOUT;
		rc_update(c);
		return;
	}
	if (r != TLS_OK && c->task != NULL && rl_task_tls_required(c->task)) {
		tls_policy_fail(c, "%s", tls_conn_error(c->tls));
		return;
	}
	if (r != TLS_OK) {
		struct rtask *t = c->task;
		log_info("qid=%s event=relay-tls-failed host=%s reason=\"%s\" action=retry-plaintext",
		    t ? t->job->qid : "-", c->t.host, tls_conn_error(c->tls));
		if (t != NULL) {
			/* RFC 3207 allows going on without TLS; do it on a fresh connection */
			t->no_tls_for_cur = 1;
			t->c = NULL;
			c->task = NULL;
			rl_rc_close(c);
			rl_task_next_target(t);
			return;
		}
		rl_rc_close(c);
		return;
	}
	c->tls_up = 1;
	c->tls_want = 0;
	if (c->task != NULL && rl_task_tls_required(c->task)) {
		char why[200];
		int how = rl_task_tls_required(c->task);
		if (how != 3 && (how == 2 ? tls_conn_dane_verified(c->tls, why, sizeof(why)) :
		    tls_conn_verified(c->tls, why, sizeof(why))) < 0) {
			tls_policy_fail(c, "%s", why);
			return;
		}
		c->tls_verified = how;
		str_copy(c->vhost, sizeof(c->vhost), c->t.host);
	}
	if (c->task != NULL)
		log_info("qid=%s event=relay-tls host=%s tls=\"%s %s\"", c->task->job->qid, c->t.host,
		    tls_conn_version(c->tls), tls_conn_cipher(c->tls));
	c->st = RC_SMTP;
	smtpc_tls_done(&c->sc);	/* RFC 3207 §4.2: start over with EHLO */
	rl_rc_flush(c);
}

void
rl_rc_io(struct ev_io *io, uint32_t events)
{
	struct rconn *c = io->arg;
	char buf[16384];

	if (c->dead)
		return;
	if (c->st == RC_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
			rl_rc_fail(c, "connect: %s", strerror(err ? err : ECONNREFUSED));
			return;
		}
		c->st = RC_SMTP;	/* the greeting is awaited */
		c->deadline = time(NULL) + smtpc_timeout(&c->sc);
		rc_update(c);
		return;
	}
	if (c->st == RC_HANDSHAKE) {
		rc_handshake(c);
		return;
	}
	if ((events & EPOLLOUT) || c->tls_want == EPOLLOUT) {
		c->tls_want = 0;
		if (c->outoff == c->outlen && c->task != NULL && smtpc_bdat_more(&c->sc)) {
			if (bdat_pump(c->task, c) < 0)
				return;
		} else if (c->outoff == c->outlen && c->task != NULL && c->sc.st == SC_BODY) {
			if (body_pump(c->task, c) < 0)
				return;
		}
		rl_rc_flush(c);
		if (c->dead)
			return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		ssize_t n = rc_read(c, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			if (c->task == NULL) {
				rl_rc_close(c);
				return;
			}
			rl_rc_fail(c, "connection lost%s%s", n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
			return;
		}
		if (n < 0)
			break;
		size_t off = 0;
		while (off < (size_t)n) {
			size_t used;
			enum smtpc_event ev = smtpc_feed(&c->sc, buf + off, (size_t)n - off, &used);
			off += used;
			rc_event(c, ev);
			/* c may be closed, idle or in a handshake now: stop reading then (what
			 * followed a 220 to STARTTLS is never read, RFC 3207 §4.2) */
			if (c->dead || c->st != RC_SMTP)
				return;
			if (ev == SMTPC_MORE)
				break;
		}
	}
	rc_update(c);
}
