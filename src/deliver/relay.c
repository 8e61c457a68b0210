/*
 * relay — the outbound SMTP client; see relay.h.
 *
 * One task per job: resolve → a list of targets (host, address) → connect to each until
 * one takes the transaction. One rconn per TCP connection, with its own reply parser,
 * output buffer and optional TLS. Timeouts follow RFC 5321 §4.5.3.2.
 */
#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deliver/dns.h"
#include "deliver/relay.h"
#include "deliver/sts.h"
#include "policy/outtls.h"
#include "mailauth/authcheck.h"
#include "mailauth/dkimop.h"
#include "proto/msghdr.h"
#include "proto/dsnparam.h"
#include "proto/mime8.h"
#include "cfg/cfg.h"
#include "proto/smtp_reply.h"
#include "tls/tls.h"
#include "util/log.h"
#include "util/str.h"
#include "util/utf8.h"

#define T_CONNECT	30
#define T_BANNER	300	/* RFC 5321 §4.5.3.2.1 */
#define T_CMD		300	/* MAIL, RCPT (§4.5.3.2.2, .3) */
#define T_DATA_INIT	120	/* §4.5.3.2.4 */
#define T_DATA_BLOCK	180	/* §4.5.3.2.5 */
#define T_DOT		600	/* §4.5.3.2.6 */
#define IDLE_KEEP	5	/* seconds an idle connection waits for the next message */
#define IDLE_MAX	64
#define TARGETS_MAX	64
#define BODY_CHUNK	65536

enum rc_state {
	RC_CONNECTING, RC_BANNER, RC_EHLO, RC_HELO, RC_STARTTLS, RC_HANDSHAKE, RC_READY,
	RC_MAIL, RC_RCPT, RC_DATA, RC_BODY, RC_DOT, RC_BDAT, RC_QUIT,
};

struct target {
	char host[256];
	struct netaddr addr;
	uint16_t port;
};

struct rtask;

struct rconn {
	struct ev_io io;
	struct relay *r;
	struct rconn *prev, *next;	/* idle list or active list */
	struct target t;
	enum rc_state st;
	struct tls_conn *tls;
	int tls_up, tls_want, no_tls;
	int tls_verified;		/* 1: the certificate verified for vhost; 2: by DANE;
					 * 3: TLS without authentication (DANE, no usable TLSA) */
	char vhost[256];		/* the MX host name tls_verified holds for: a reuse
					 * for another name on the same address is another
					 * destination (conn_fits) */
	struct smtp_reply_parser parser;
	struct smtp_reply reply;
	struct smtp_caps caps;
	char *out;
	size_t outlen, outoff, outcap;
	time_t deadline, idle_since;
	struct rtask *task;
	int used;			/* has carried a transaction */
	int dead;			/* closed; freed by the reaper */
	struct rconn *grave;
};

struct rtask {
	struct relay *r;
	struct rtask *prev, *next;
	struct relay_job *job;
	struct dns_query *dq;
	struct target *targets;		/* grown as needed, up to TARGETS_MAX */
	size_t targets_cap;
	size_t ntargets, cur;
	int no_tls_for_cur;		/* retry the current target without STARTTLS */
	int tls_level;			/* enum outtls_level for job->domain */
	const char *tls_source;		/* "tls_policy" or "smtp_tls" */
	struct dns_query *tq;		/* TLSA lookup in flight (dane) */
	char dane_host[256];		/* the host dane_state is about */
	int dane_state;			/* DS_* */
	char dane_why[200];		/* DS_FAIL: why */
	struct tlsa_answer *dane;	/* DS_TLSA: the authenticated records */
	struct sts_query *sq;		/* MTA-STS discovery in flight (mta-sts) */
	struct mtasts_policy *sts;	/* the domain's policy, mode testing or enforce */
	struct rconn *c;
	/* transaction */
	size_t replies_expected;	/* pipelined replies still to read */
	size_t mail_rcpt_sent;		/* RCPTs sent */
	size_t rcpt_replied;
	int mail_ok;
	int *accepted;
	size_t naccepted;
	int final;			/* results are in */
	uint64_t body_sent;
	int body_bol, body_cr;
	int bdat;			/* the peer offers CHUNKING: BDAT instead of DATA */
	int bdat_all_sent;		/* the LAST chunk is queued */
	size_t bdat_unacked;		/* BDAT replies still to come */
	char err[300];			/* the last connection-level error, for temp results */
	int err_perm;
	/* REQUIRETLS (RFC 8689 4.2.1): a host met could not take the message over verified
	 * TLS ("5.7.10") or did not offer REQUIRETLS ("5.7.30"); when every host failed that
	 * way the message is returned at once with this status, never deferred */
	char rtls_status[8];
	int other_failed;		/* a host failed otherwise (connection, DNS): defer */
	int policy_failing;		/* rc_fail is called by tls_policy_fail */
	/* what is sent: the queue file, or its 7-bit conversion for a peer without 8BITMIME */
	int src_fd;
	uint64_t src_off, src_len;
	int converted;			/* src_fd is our memfd */
	/* the recipients this transaction sends RCPT for (job indexes): all but those a peer
	 * without SMTPUTF8 cannot take (RFC 6531 §3.2) */
	size_t *send;
	size_t nsend;
	unsigned char *utf8_refused;	/* per job index: bounced 5.6.7 by that rule */
};

struct relay {
	struct ev_loop *loop;
	struct dns *dns;
	struct tls_ctx *client_tls;
	struct sts *sts;		/* MTA-STS discovery on this loop */
	struct rconn *idle;
	unsigned nidle;
	struct rtask *tasks;
	unsigned ntasks;
	struct rtask *finished;		/* done() to call from the loop */
	struct rconn *graveyard;	/* closed connections to free */
	int efd;
	struct ev_io eio;
};

/* What DANE found for the current host (RFC 7672 §2.2). */
enum { DS_UNKNOWN, DS_NONE, DS_TLSA, DS_FAIL, DS_ENCRYPT };

static void rc_close(struct rconn *c);
static void rc_send_cmd(struct rconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void task_next_target(struct rtask *t);
static void task_begin_tx(struct rtask *t);
static void rc_io(struct ev_io *io, uint32_t events);
static void rc_update(struct rconn *c);

/* Must the current host be reached over authenticated TLS? 1: verified by the CA store,
 * 2: by DANE; 0: opportunistic. */
static int
task_tls_required(const struct rtask *t)
{
	if (outtls_required(t->tls_level))
		return 1;
	if (t->sts != NULL && t->sts->mode == MTASTS_ENFORCE)
		return 1;
	if (t->tls_level == OUTTLS_DANE && t->dane_state == DS_TLSA)
		return 2;
	if (t->tls_level == OUTTLS_DANE && t->dane_state == DS_ENCRYPT)
		return 3;	/* TLS, not authenticated */
	return 0;
}

/*
 * May the idle connection c carry t's message to the target tg? It must go to the same
 * address and port. When t needs anything of TLS (a level that requires it here, or
 * REQUIRETLS), c must also have been verified for that very MX host name: two names on
 * one address are two destinations, and a connection DANE-verified for mx-a says nothing
 * about mx-b. And what was verified must be what t needs now, or more: the certificate
 * (verify, MTA-STS) for a certificate, DANE for TLSA records, any verified TLS where only
 * encryption is required. REQUIRETLS alone (the host has no TLSA records and no enforced
 * policy) gets a verified connection for the same name, and task_begin_tx judges it.
 */
static int
conn_fits(const struct rconn *c, const struct rtask *t, const struct target *tg)
{
	int need = task_tls_required(t);

	if (!netaddr_equal(&c->t.addr, &tg->addr) || c->t.port != tg->port)
		return 0;
	if (need == 0 && !t->job->requiretls)
		return 1;
	if (c->tls_verified == 0 || strcasecmp(c->vhost, tg->host) != 0)
		return 0;
	switch (need) {
	case 1:
		return c->tls_verified == 1;
	case 2:
		return c->tls_verified == 2;
	default:
		return 1;	/* 3 (encryption only), or REQUIRETLS alone */
	}
}

/* ---- completion ---- */

static void
task_finish_later(struct rtask *t)
{
	struct relay *r = t->r;
	uint64_t one = 1;

	if (t->prev)
		t->prev->next = t->next;
	else
		r->tasks = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->prev = NULL;
	t->next = r->finished;
	r->finished = t;
	if (write(r->efd, &one, sizeof(one)) < 0) {
		/* cannot overflow */
	}
}

static void
finished_cb(struct ev_io *io, uint32_t events)
{
	struct relay *r = io->arg;
	uint64_t v;

	if (read(r->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	while (r->graveyard != NULL) {
		struct rconn *c = r->graveyard;
		r->graveyard = c->grave;
		if (c->tls != NULL)
			tls_conn_free(c->tls);
		free(c->out);
		free(c);
	}
	while (r->finished != NULL) {
		struct rtask *t = r->finished;
		r->finished = t->next;
		r->ntasks--;
		close(t->job->fd);
		t->job->fd = -1;
		if (t->converted)
			close(t->src_fd);
		t->job->done(t->job);
		free(t->send);
		free(t->utf8_refused);
		free(t->accepted);
		free(t->targets);
		free(t->dane);
		free(t->sts);
		free(t);
	}
}

/* Give every recipient still without a result the same outcome. */
static void
task_fail_rest(struct rtask *t, enum relay_outcome oc, const char *status, const char *diag)
{
	for (size_t i = 0; i < t->job->nrcpts; i++) {
		struct relay_result *res = &t->job->results[i];
		if (res->status[0] != '\0')
			continue;
		res->outcome = oc;
		str_copy(res->status, sizeof(res->status), status);
		str_copy(res->diag, sizeof(res->diag), diag);
	}
}

static void
task_done(struct rtask *t)
{
	if (t->dq != NULL) {
		dns_cancel(t->dq);
		t->dq = NULL;
	}
	if (t->tq != NULL) {
		dns_cancel(t->tq);
		t->tq = NULL;
	}
	if (t->sq != NULL) {
		sts_cancel(t->sq);
		t->sq = NULL;
	}
	if (t->c != NULL) {
		t->c->task = NULL;
		t->c = NULL;
	}
	if (t->rtls_status[0] != '\0' && !t->other_failed && !t->err_perm)
		/* RFC 8689 4.2.1: no MX host could take it as it requires; then the client MUST
		 * NOT transmit it and MUST send a non-delivery notification: returned now, not
		 * retried (the same hosts would be asked the same way) */
		task_fail_rest(t, RELAY_PERM, t->rtls_status, t->err);
	task_fail_rest(t, t->err_perm ? RELAY_PERM : RELAY_TEMP, t->err_perm ? "5.4.4" : "4.4.1",
	    t->err[0] ? t->err : "x-imsd; delivery did not complete");
	task_finish_later(t);
}

/* ---- results from replies ---- */

static void
diag_of(const struct smtp_reply *rp, char *out, size_t len)
{
	char first[400];
	const char *nl = strchr(rp->text, '\n');
	size_t n = nl ? (size_t)(nl - rp->text) : strlen(rp->text);

	if (n >= sizeof(first))
		n = sizeof(first) - 1;
	memcpy(first, rp->text, n);
	first[n] = '\0';
	for (char *p = first; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = ' ';
	/* the text already starts with the enhanced code when there is one */
	snprintf(out, len, "smtp; %d %s", rp->code, first);
}

static void
set_result(struct rtask *t, size_t i, const struct smtp_reply *rp)
{
	struct relay_result *res = &t->job->results[i];

	res->outcome = smtp_reply_completion(rp->code) ? RELAY_OK :
	    smtp_reply_permanent(rp->code) ? RELAY_PERM : RELAY_TEMP;
	smtp_reply_status(rp, res->status);
	diag_of(rp, res->diag, sizeof(res->diag));
	res->peer_dsn = t->c != NULL && t->c->caps.dsn;
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

static void
rc_send_cmd(struct rconn *c, const char *fmt, ...)
{
	char line[1100];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	if (log_level_now() >= LOG_DEBUG) {
		char lh[LOG_VALUE_MAX], ll[LOG_VALUE_MAX];
		log_debug("relay=%s smtp=out line=%s", log_value(lh, sizeof(lh), c->t.host,
		    strlen(c->t.host)), log_value(ll, sizeof(ll), line, (size_t)n));
	}
	line[n++] = '\r';
	line[n++] = '\n';
	rc_out(c, line, (size_t)n);
}

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
		/* in RC_BODY the socket taking more is what brings the next chunk; so in
		 * RC_BDAT when chunks may be pipelined (RFC 3030 §4.2) */
		if (c->outoff < c->outlen || c->tls_want == EPOLLOUT || c->st == RC_BODY ||
		    (c->st == RC_BDAT && c->caps.pipelining && c->task != NULL &&
		    !c->task->bdat_all_sent))
			ev |= EPOLLOUT;
	}
	ev_io_set(c->r->loop, &c->io, ev);
}

/* A connection-level failure: this target did not work out. */
static void
rc_fail(struct rconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
rc_fail(struct rconn *c, const char *fmt, ...)
{
	struct rtask *t = c->task;
	char why[250];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (t == NULL) {
		rc_close(c);
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
	t->c = NULL;
	c->task = NULL;
	rc_close(c);
	if (t->final || t->body_sent > 0 || c->st == RC_DOT || c->st == RC_BDAT) {
		/* the message may have gone through: do not try another host now */
		task_done(t);
		return;
	}
	t->cur++;
	task_next_target(t);
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
	rc_fail(c, "TLS required by %s for %s: %s%s", t->tls_source, t->job->domain,
	    t->sts != NULL && t->sts->mode == MTASTS_ENFORCE ? "MTA-STS policy (mode enforce): " :
	    "", why);
}

static void
rc_flush(struct rconn *c)
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
			rc_fail(c, "write: %s", strerror(errno));
			return;
		}
		c->outoff += (size_t)n;
	}
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	rc_update(c);
}

static void
rc_close(struct rconn *c)
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
	if (c->st == RC_READY && c->task == NULL) {
		/* on the idle list */
		if (c->prev)
			c->prev->next = c->next;
		else
			r->idle = c->next;
		if (c->next)
			c->next->prev = c->prev;
		r->nidle--;
	}
	/* freed from the loop later: callers up the stack may still hold c */
	c->grave = r->graveyard;
	r->graveyard = c;
	if (write(r->efd, &one, sizeof(one)) < 0) {
		/* cannot overflow */
	}
}

/* ---- the body: CRLF only, dot-stuffed ---- */


/* Remove from the header section of m the DKIM-Signature fields whose d= is a domain this
 * server signs for (they would no longer verify); returns the new length. */
static size_t
drop_own_signatures(char *m, size_t len, const struct dkim_keys *keys)
{
	size_t pos = 0, hend;
	const char *e = memmem(m, len, "\r\n\r\n", 4);
	struct mhdr_field f;

	hend = e ? (size_t)(e - m) + 2 : len;
	while (pos < hend) {
		size_t start = pos;
		int r = mhdr_next(m, hend, &pos, &f);
		if (r <= 0)
			break;
		if (mhdr_is(&f, "DKIM-Signature")) {
			char d[256] = "";
			const char *p = f.value, *end = f.value + f.valuelen;
			/* d= tag: after ';' or the start, whitespace allowed */
			for (const char *q = p; q < end; q++) {
				if ((q == p || q[-1] == ';' || q[-1] == ' ' || q[-1] == '\t' ||
				    q[-1] == '\n') && q + 2 < end && q[0] == 'd' && q[1] == '=') {
					size_t o = 0;
					for (q += 2; q < end && *q != ';' && o + 1 < sizeof(d); q++)
						if (*q > ' ')
							d[o++] = (char)((*q >= 'A' && *q <= 'Z') ? *q + 32 : *q);
					d[o] = '\0';
					break;
				}
			}
			if (d[0] && dkim_keys_have(keys, d)) {
				memmove(m + start, m + pos, len - pos);
				len -= pos - start;
				hend -= pos - start;
				pos = start;
			}
		}
	}
	return len;
}

/*
 * RFC 6152 §3 and RFC 1652's advice: a peer without 8BITMIME gets the message converted to
 * 7 bit (proto/mime8: quoted-printable parts, MIME-aware) rather than a bounce. The
 * conversion reads the whole message into memory and runs on the relay's loop: peers
 * without 8BITMIME are rare and the work is a copy (measured about 5 ms per MiB), so a
 * thread hand-off is not worth its complexity here. DKIM: a signature over the 8-bit body
 * no longer verifies after conversion; signatures this server made (a key in dkim_sign for
 * their d=) are dropped and made again over the converted message; other signers'
 * signatures are left as they are (the receiver sees them fail, as RFC 6376 5.3 warns).
 * 0 done (t->src_* point at a memfd), -1 with the reason in t->err.
 */
static int
downgrade(struct rtask *t, struct rconn *c)
{
	const struct relay_job *j = t->job;
	const struct dkim_keys *keys = &j->cfg->dkim;
	char *msg = NULL, *out = NULL, *sig = NULL, why[200], serr[200];
	size_t outlen = 0, siglen = 0;
	int fd = -1, nsig = 0;

	(void)c;
	if (j->body_len > 64ull * 1024 * 1024 || (msg = malloc(j->body_len + 1)) == NULL) {
		snprintf(t->err, sizeof(t->err), "the message is too large to convert in memory");
		return -1;
	}
	if (pread(j->fd, msg, j->body_len, (off_t)j->body_off) != (ssize_t)j->body_len) {
		snprintf(t->err, sizeof(t->err), "reading the queue file failed");
		free(msg);
		return -1;
	}
	if (mime8_downgrade(msg, j->body_len, &out, &outlen, why, sizeof(why)) < 0) {
		snprintf(t->err, sizeof(t->err), "%s", why);
		free(msg);
		return -1;
	}
	free(msg);
	if (keys->n > 0)
		outlen = drop_own_signatures(out, outlen, keys);
	if ((fd = memfd_create("imsd-7bit", MFD_CLOEXEC)) < 0 ||
	    write(fd, out, outlen) != (ssize_t)outlen) {
		snprintf(t->err, sizeof(t->err), "memfd: %s", strerror(errno));
		goto fail;
	}
	if (keys->n > 0) {
		char dom[2][256];
		const char *d[2] = { dom[0], dom[1] };
		size_t nd = authcheck_sign_domains(keys, fd, 0, outlen, j->sender, dom);
		if (nd > 0 && dkim_sign_message(keys, d, nd, fd, 0, outlen, &sig, &siglen, &nsig,
		    serr, sizeof(serr)) < 0)
			log_warn("relay=%s event=dkim-sign-error reason=\"%s\" note=sent-unsigned-after-"
			    "7bit-conversion", c->t.host, serr);
		if (nsig > 0) {
			/* the new signatures go first: rewrite the memfd */
			if (ftruncate(fd, 0) < 0 || pwrite(fd, sig, siglen, 0) != (ssize_t)siglen ||
			    pwrite(fd, out, outlen, (off_t)siglen) != (ssize_t)outlen) {
				snprintf(t->err, sizeof(t->err), "memfd: %s", strerror(errno));
				goto fail;
			}
			outlen += siglen;
		}
	}
	free(out);
	free(sig);
	t->src_fd = fd;
	t->src_off = 0;
	t->src_len = outlen;
	t->converted = 1;
	log_info("qid=%s relay=%s event=converted-to-7bit reason=no-8bitmime size=%llu "
	    "resigned=%d", j->qid, c->t.host, (unsigned long long)outlen, nsig);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(out);
	free(sig);
	return -1;
}

static char pump_in[BODY_CHUNK];
static char pump_out[2 * BODY_CHUNK + 16];	/* worst case: every byte a bare CR */

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
			rc_fail(c, "reading the queue file: %s", r < 0 ? strerror(errno) : "short file");
			return -1;
		}
	}
	return r;
}

/* Turn n body bytes into wire form in out: every line end CRLF, never a bare CR or LF;
 * with stuff, a leading dot doubled (DATA). Returns the bytes written to out. Lines are
 * found with memchr and copied whole; only a bare CR needs a closer look. */
static size_t
body_lines(struct rtask *t, const char *in, size_t n, char *out, int stuff)
{
	size_t o = 0, i = 0;

	while (i < n) {
		if (t->body_cr) {
			/* any CR is a line end on the wire: never a bare CR */
			t->body_cr = 0;
			out[o++] = '\r';
			out[o++] = '\n';
			t->body_bol = 1;
			if (in[i] == '\n') {
				i++;
				continue;
			}
		}
		if (stuff && t->body_bol && in[i] == '.')
			out[o++] = '.';	/* RFC 5321 §4.5.2 transparency */
		const char *nl = memchr(in + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - in) : n;
		const char *cr = memchr(in + i, '\r', end - i);
		size_t stop = cr ? (size_t)(cr - in) : end;
		if (stop > i) {
			memcpy(out + o, in + i, stop - i);
			o += stop - i;
			t->body_bol = 0;
		}
		if (cr != NULL) {
			t->body_cr = 1;	/* decided by the next byte, maybe in the next chunk */
			i = stop + 1;
			continue;
		}
		if (nl != NULL) {
			/* a bare LF: the line ends here too */
			out[o++] = '\r';
			out[o++] = '\n';
			t->body_bol = 1;
			i = end + 1;
		} else
			i = end;
	}
	return o;
}

/* Queue up to BODY_CHUNK transformed bytes; returns 1 when the whole body and the final
 * dot are queued, 0 when more is to come, -1 on error (c is closed). */
static int
body_pump(struct rtask *t, struct rconn *c)
{
	ssize_t n = body_read(t, c);

	if (n < 0)
		return -1;
	size_t o = body_lines(t, pump_in, (size_t)n, pump_out, 1);
	t->body_sent += (uint64_t)n;
	rc_out(c, pump_out, o);
	if (t->body_sent < t->src_len)
		return 0;
	if (t->body_cr) {
		t->body_cr = 0;
		rc_out(c, "\r\n", 2);
		t->body_bol = 1;
	}
	if (!t->body_bol)
		rc_out(c, "\r\n", 2);
	rc_out(c, ".\r\n", 3);
	log_debug("relay=%s smtp=out line=\"<%llu bytes of message>\" then \".\"", c->t.host,
	    (unsigned long long)t->src_len);
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
		o = body_lines(t, pump_in, (size_t)n, pump_out, 0);
	t->body_sent += (uint64_t)n;
	last = t->body_sent >= t->src_len;
	if (last && !t->job->body_binary) {
		if (t->body_cr) {
			t->body_cr = 0;
			pump_out[o++] = '\r';
			pump_out[o++] = '\n';
			t->body_bol = 1;
		}
		if (!t->body_bol) {
			pump_out[o++] = '\r';
			pump_out[o++] = '\n';
		}
	}
	rc_send_cmd(c, "BDAT %zu%s", o, last ? " LAST" : "");
	rc_out(c, pump_out, o);
	t->bdat_unacked++;
	t->replies_expected++;
	if (last)
		t->bdat_all_sent = 1;
	c->deadline = time(NULL) + (last ? T_DOT : T_DATA_BLOCK);
	return last;
}

/* All recipients are answered and some accepted: send the body by BDAT. -1: c closed. */
static int
bdat_start(struct rtask *t, struct rconn *c)
{
	c->st = RC_BDAT;
	t->body_sent = 0;
	t->body_bol = 1;
	t->body_cr = 0;
	t->bdat_all_sent = 0;
	t->bdat_unacked = 0;
	return bdat_pump(t, c) < 0 ? -1 : 0;
}

/* ---- the dialogue ---- */

/* RCPT TO for recipient i, with NOTIFY and ORCPT when the peer advertised DSN. */
static void
send_rcpt(struct rconn *c, const struct relay_job *j, size_t i)
{
	char notify[32] = "";

	if (!c->caps.dsn) {
		rc_send_cmd(c, "RCPT TO:<%s>", j->rcpts[i]);
		return;
	}
	if (j->notify != NULL)
		dsn_notify_format(j->notify[i], notify, sizeof(notify));
	rc_send_cmd(c, "RCPT TO:<%s>%s%s%s%s", j->rcpts[i], notify[0] ? " NOTIFY=" : "", notify,
	    j->dsn_orcpts != NULL && j->dsn_orcpts[i] != NULL ? " ORCPT=" : "",
	    j->dsn_orcpts != NULL && j->dsn_orcpts[i] != NULL ? j->dsn_orcpts[i] : "");
}

static void
send_ehlo(struct rconn *c)
{
	rc_send_cmd(c, "EHLO %s", c->task ? c->task->job->cfg->conf.hostname : "localhost");
	c->st = RC_EHLO;
	c->deadline = time(NULL) + T_CMD;
}

/* Does the message need SMTPUTF8 (RFC 6531 §3.4): an SMTPUTF8 transaction or a UTF-8
 * address in its envelope? */
static int
job_needs_smtputf8(const struct relay_job *j)
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
	rc_send_cmd(c, "QUIT");
	c->st = RC_QUIT;
	rc_flush(c);
	task_done(t);
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
	const struct relay_job *j = t->job;
	char diag[300];

	if (t->send == NULL) {
		t->send = calloc(j->nrcpts ? j->nrcpts : 1, sizeof(*t->send));
		t->utf8_refused = calloc(j->nrcpts ? j->nrcpts : 1, 1);
		if (t->send == NULL || t->utf8_refused == NULL) {
			snprintf(t->err, sizeof(t->err), "x-imsd; out of memory");
			task_quit_before_mail(t, c);
			return -1;
		}
	}
	if (!c->caps.smtputf8 && utf8_has_nonascii(j->sender)) {
		snprintf(diag, sizeof(diag), "x-imsd; the sender address is not ASCII and %s "
		    "does not support SMTPUTF8", c->t.host);
		task_fail_rest(t, RELAY_PERM, "5.6.7", diag);
		task_quit_before_mail(t, c);
		return -1;
	}
	t->nsend = 0;
	for (size_t i = 0; i < j->nrcpts; i++) {
		if (t->utf8_refused[i])
			continue;
		if (!c->caps.smtputf8 && utf8_has_nonascii(j->rcpts[i])) {
			struct relay_result *res = &j->results[i];
			snprintf(diag, sizeof(diag), "x-imsd; the recipient address is not ASCII "
			    "and %s does not support SMTPUTF8", c->t.host);
			res->outcome = RELAY_PERM;
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

static void
task_begin_tx(struct rtask *t)
{
	struct rconn *c = t->c;
	const struct relay_job *j = t->job;
	char size[40] = "", dsn[DSN_ENVID_MAX + 32] = "";

	if (c->caps.size_known && c->caps.size > 0 && j->body_len > c->caps.size) {
		char diag[200];
		snprintf(diag, sizeof(diag), "x-imsd; message size %llu exceeds the limit of %llu "
		    "bytes announced by %s", (unsigned long long)j->body_len,
		    (unsigned long long)c->caps.size, c->t.host);
		task_fail_rest(t, RELAY_PERM, "5.3.4", diag);
		c->task = NULL;
		t->c = NULL;
		rc_send_cmd(c, "QUIT");
		c->st = RC_QUIT;
		rc_flush(c);
		task_done(t);
		return;
	}
	if (j->requiretls) {
		const char *why = NULL;
		if (strcasecmp(c->vhost, t->targets[t->cur].host) != 0 ||
		    !(c->tls_verified == 2 || (c->tls_verified == 1 && t->sts != NULL &&
		    t->sts->mode == MTASTS_ENFORCE)))
			why = "TLS to it is not verified by DANE or an enforced MTA-STS policy";
		else if (!c->caps.requiretls)
			why = "it does not offer REQUIRETLS";
		if (why != NULL) {
			/* RFC 8689 4.2.1: QUIT, and the next MX host; when none is left the message
			 * is returned (task_done), never sent less protected */
			char lh[LOG_VALUE_MAX], lw[LOG_VALUE_MAX];
			snprintf(t->err, sizeof(t->err), "x-imsd; the message requires TLS "
			    "(REQUIRETLS) and %s: %s", c->t.host, why);
			str_copy(t->rtls_status, sizeof(t->rtls_status), "5.7.30");
			log_info("qid=%s event=relay-attempt-failed host=%s reason=%s", j->qid,
			    log_value(lh, sizeof(lh), c->t.host, strlen(c->t.host)),
			    log_value(lw, sizeof(lw), t->err + 8, strlen(t->err + 8)));
			c->task = NULL;
			t->c = NULL;
			rc_send_cmd(c, "QUIT");
			c->st = RC_QUIT;
			rc_flush(c);
			t->cur++;
			task_next_target(t);
			return;
		}
	}
	if (j->body_binary && !(c->caps.chunking && c->caps.binarymime)) {
		/* RFC 3030 §3: BODY=BINARYMIME only by BDAT to a server that announced both.
		 * imsd does not convert binary MIME to base64, so the message is returned. */
		char diag[300];
		snprintf(diag, sizeof(diag), "x-imsd; the message has binary content "
		    "(BODY=BINARYMIME) and %s does not support %s", c->t.host,
		    c->caps.chunking ? "BINARYMIME" : "CHUNKING and BINARYMIME");
		task_fail_rest(t, RELAY_PERM, "5.6.3", diag);
		c->task = NULL;
		t->c = NULL;
		rc_send_cmd(c, "QUIT");
		c->st = RC_QUIT;
		rc_flush(c);
		task_done(t);
		return;
	}
	if (j->body_8bit && !j->body_binary && !c->caps.eightbitmime && !t->converted &&
	    downgrade(t, c) == 0) {
		/* sent as quoted-printable: see downgrade() */
	} else if (j->body_8bit && !j->body_binary && !c->caps.eightbitmime && !t->converted) {
		/* RFC 6152 §3: 8-bit data only to a server that announced 8BITMIME; what the
		 * conversion to 7 bit could not do returns the message (RFC 3463 5.6.3) */
		char diag[400];
		snprintf(diag, sizeof(diag), "x-imsd; the message has 8-bit content, %s does not "
		    "support 8BITMIME, and it cannot be converted to 7 bit: %s", c->t.host, t->err);
		task_fail_rest(t, RELAY_PERM, "5.6.3", diag);
		c->task = NULL;
		t->c = NULL;
		rc_send_cmd(c, "QUIT");
		c->st = RC_QUIT;
		rc_flush(c);
		task_done(t);
		return;
	}
	if (smtputf8_filter(t, c) < 0)
		return;
	c->used = 1;
	if (c->caps.size_known)
		snprintf(size, sizeof(size), " SIZE=%llu", (unsigned long long)t->src_len);
	t->mail_ok = 0;
	t->mail_rcpt_sent = 0;
	t->rcpt_replied = 0;
	t->naccepted = 0;
	t->bdat = c->caps.chunking;
	if (c->caps.dsn) {
		/* RFC 3461 §4: pass the requests on; the peer reports from here on */
		if (j->dsn_ret != DSN_RET_NONE)
			snprintf(dsn, sizeof(dsn), " RET=%s", j->dsn_ret == DSN_RET_FULL ? "FULL" :
			    "HDRS");
		if (j->envid != NULL && j->envid[0] != '\0')
			snprintf(dsn + strlen(dsn), sizeof(dsn) - strlen(dsn), " ENVID=%s", j->envid);
	}
	rc_send_cmd(c, "MAIL FROM:<%s>%s%s%s%s%s", j->sender, size, j->body_binary ?
	    " BODY=BINARYMIME" : j->body_8bit && !t->converted && c->caps.eightbitmime ?
	    " BODY=8BITMIME" : "", dsn, j->requiretls ? " REQUIRETLS" : "",
	    c->caps.smtputf8 && job_needs_smtputf8(j) ? " SMTPUTF8" : "");
	c->st = RC_MAIL;
	c->deadline = time(NULL) + T_CMD;
	t->replies_expected = 1;
	if (c->caps.pipelining) {
		/* RFC 2920: MAIL, every RCPT and DATA in one go; replies come in order. BDAT
		 * waits for the RCPT replies: no chunk is sent for nobody. */
		for (size_t k = 0; k < t->nsend; k++)
			send_rcpt(c, j, t->send[k]);
		t->mail_rcpt_sent = t->nsend;
		t->replies_expected = 1 + t->nsend;
		if (!t->bdat) {
			rc_send_cmd(c, "DATA");
			t->replies_expected++;
		}
	}
	rc_flush(c);
}

static void
rc_to_idle(struct rconn *c)
{
	struct relay *r = c->r;

	if (r->nidle >= IDLE_MAX || !c->used) {
		rc_send_cmd(c, "QUIT");
		c->st = RC_QUIT;
		rc_flush(c);
		return;
	}
	c->st = RC_READY;
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

/* One complete reply arrived on c. */
static void
rc_reply(struct rconn *c)
{
	struct rtask *t = c->task;
	const struct smtp_reply *rp = &c->reply;
	char d[400];

	if (log_level_now() >= LOG_DEBUG) {
		/* a multi-line reply is one value: its line breaks are escaped, not lines */
		char lh[LOG_VALUE_MAX], lt[LOG_VALUE_MAX];
		log_debug("relay=%s smtp=in code=%d text=%s", log_value(lh, sizeof(lh), c->t.host,
		    strlen(c->t.host)), rp->code, log_value(lt, sizeof(lt), rp->text,
		    strlen(rp->text)));
	}
	if (c->st == RC_QUIT) {
		rc_close(c);
		return;
	}
	if (t == NULL) {
		/* an idle connection spoke (421 on timeout, say): drop it */
		rc_close(c);
		return;
	}
	switch (c->st) {
	case RC_BANNER:
		if (rp->code != 220) {
			diag_of(rp, d, sizeof(d));
			rc_fail(c, "greeting: %s", d);
			return;
		}
		send_ehlo(c);
		break;
	case RC_EHLO:
		if (smtp_reply_completion(rp->code)) {
			smtp_caps_parse(rp, &c->caps);
			if (c->caps.starttls && !c->tls_up && !c->no_tls && c->r->client_tls != NULL) {
				rc_send_cmd(c, "STARTTLS");
				c->st = RC_STARTTLS;
				break;
			}
			if (task_tls_required(t) && !c->tls_verified) {
				/* never downgrade: no STARTTLS, no mail */
				tls_policy_fail(c, "the server does not offer STARTTLS");
				return;
			}
			task_begin_tx(t);
			return;
		}
		if (rp->code >= 500 && rp->code != 503 && task_tls_required(t) &&
		    !c->tls_verified) {
			diag_of(rp, d, sizeof(d));
			tls_policy_fail(c, "EHLO refused (no STARTTLS without it): %s", d);
			return;
		}
		if (rp->code >= 500 && rp->code != 503) {
			/* an old server: fall back to HELO (RFC 5321 §3.2) */
			rc_send_cmd(c, "HELO %s", t->job->cfg->conf.hostname);
			c->st = RC_HELO;
			break;
		}
		diag_of(rp, d, sizeof(d));
		rc_fail(c, "EHLO: %s", d);
		return;
	case RC_HELO:
		if (!smtp_reply_completion(rp->code)) {
			diag_of(rp, d, sizeof(d));
			rc_fail(c, "HELO: %s", d);
			return;
		}
		memset(&c->caps, 0, sizeof(c->caps));
		task_begin_tx(t);
		return;
	case RC_STARTTLS:
		if (rp->code != 220 && task_tls_required(t)) {
			diag_of(rp, d, sizeof(d));
			tls_policy_fail(c, "STARTTLS refused: %s", d);
			return;
		}
		if (rp->code != 220) {
			/* the offer was not meant: go on in plaintext on this connection */
			log_info("qid=%s event=relay-starttls-refused host=%s code=%d", t->job->qid,
			    c->t.host, rp->code);
			task_begin_tx(t);
			return;
		}
		{
			struct netaddr lit;
			/* SNI carries a host name, never an address (RFC 6066 §3) */
			int is_ip = netaddr_parse(c->t.host, &lit) == 0 || c->t.host[0] == '[';
			if (task_tls_required(t) == 2) {
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
					tls_policy_fail(c, "DANE: no TLSA record of %s could be loaded",
					    c->t.host);
					return;
				}
			} else if (task_tls_required(t) == 1) {
				/* the certificate must carry the MX host name (RFC 7817 §3) */
				c->tls = tls_conn_new(t->job->cfg->client_verify, c->io.fd, 0,
				    is_ip ? NULL : c->t.host);
				if (c->tls != NULL && tls_conn_expect_host(c->tls, c->t.host) < 0) {
					tls_conn_free(c->tls);
					c->tls = NULL;
				}
			} else
				c->tls = tls_conn_new(c->r->client_tls, c->io.fd, 0,
				    is_ip ? NULL : c->t.host);
		}
		if (c->tls == NULL) {
			rc_fail(c, "cannot start TLS");
			return;
		}
		c->st = RC_HANDSHAKE;
		c->tls_want = EPOLLOUT;
		smtp_reply_init(&c->parser);
		c->deadline = time(NULL) + T_CMD;
		rc_update(c);
		return;
	case RC_MAIL:
	case RC_RCPT:
	case RC_DATA:
		if (t->replies_expected > 0)
			t->replies_expected--;
		if (c->st == RC_MAIL) {
			if (smtp_reply_transient(rp->code) && t->cur + 1 < t->ntargets) {
				/* RFC 5321 §5.1: a host that cannot take the message now is
				 * skipped for the next one; nothing was sent yet */
				diag_of(rp, d, sizeof(d));
				rc_fail(c, "MAIL FROM refused for now: %s", d);
				return;
			}
			t->mail_ok = smtp_reply_completion(rp->code);
			if (!t->mail_ok) {
				diag_of(rp, d, sizeof(d));
				for (size_t k = 0; k < t->nsend; k++)
					set_result(t, t->send[k], rp);
			}
			c->st = RC_RCPT;
			if (!c->caps.pipelining) {
				if (!t->mail_ok)
					goto tx_over;
				send_rcpt(c, t->job, t->send[0]);
				t->mail_rcpt_sent = 1;
				t->replies_expected = 1;
			}
			break;
		}
		if (c->st == RC_RCPT && t->rcpt_replied < t->mail_rcpt_sent) {
			size_t i = t->send[t->rcpt_replied++];
			if (t->mail_ok) {
				if (smtp_reply_completion(rp->code)) {
					t->accepted[i] = 1;
					t->naccepted++;
				} else
					set_result(t, i, rp);
			}
			if (!c->caps.pipelining) {
				if (t->rcpt_replied < t->nsend) {
					send_rcpt(c, t->job, t->send[t->rcpt_replied]);
					t->mail_rcpt_sent++;
					t->replies_expected = 1;
					break;
				}
				if (t->naccepted == 0)
					goto tx_over;
				if (!t->bdat) {
					rc_send_cmd(c, "DATA");
					t->replies_expected = 1;
				}
			}
			if (t->rcpt_replied == t->nsend && t->bdat) {
				if (!t->mail_ok || t->naccepted == 0)
					goto tx_over;
				if (bdat_start(t, c) < 0)
					return;
				break;
			}
			if (t->rcpt_replied == t->nsend)
				c->st = RC_DATA;
			c->deadline = time(NULL) + (c->st == RC_DATA ? T_DATA_INIT : T_CMD);
			break;
		}
		/* the DATA reply */
		if (rp->code == 354) {
			if (!t->mail_ok || t->naccepted == 0) {
				/* nothing to send for: an empty message would be delivered */
				rc_send_cmd(c, ".");
				c->st = RC_DOT;
				t->final = 1;
				c->deadline = time(NULL) + T_DOT;
				break;
			}
			c->st = RC_BODY;
			c->deadline = time(NULL) + T_DATA_BLOCK;
			t->body_sent = 0;
			t->body_bol = 1;
			t->body_cr = 0;
			if (body_pump(t, c) == 1) {
				c->st = RC_DOT;
				c->deadline = time(NULL) + T_DOT;
			}
			break;
		}
		if (t->mail_ok && t->naccepted > 0)
			for (size_t i = 0; i < t->job->nrcpts; i++)
				if (t->accepted[i])
					set_result(t, i, rp);
		goto tx_over;
	case RC_BDAT:
		/* RFC 3030 §2: each chunk is answered; the LAST one's reply is the verdict, and
		 * a failed chunk fails the message (pipelined chunks after it get 503). */
		if (t->replies_expected > 0)
			t->replies_expected--;
		if (t->bdat_unacked > 0)
			t->bdat_unacked--;
		if (!smtp_reply_completion(rp->code) || (t->bdat_all_sent && t->bdat_unacked == 0)) {
			for (size_t i = 0; i < t->job->nrcpts; i++)
				if (t->accepted[i])
					set_result(t, i, rp);
			t->final = 1;
			goto tx_over;
		}
		if (!t->bdat_all_sent && !c->caps.pipelining && bdat_pump(t, c) < 0)
			return;
		break;
	case RC_DOT:
		if (!t->final || t->naccepted > 0) {
			for (size_t i = 0; i < t->job->nrcpts; i++)
				if (t->accepted[i])
					set_result(t, i, rp);
		}
		t->final = 1;
		snprintf(t->job->remote_mta, sizeof(t->job->remote_mta), "dns; %s", c->t.host);
		goto tx_over;
	default:
		rc_fail(c, "unexpected reply %d", rp->code);
		return;
	}
	rc_flush(c);
	return;

tx_over:
	/* the transaction is over; keep the connection only if it ended cleanly */
	snprintf(t->job->remote_mta, sizeof(t->job->remote_mta), "dns; %s", c->t.host);
	t->c = NULL;
	c->task = NULL;
	{
		int clean = t->final && smtp_reply_completion(rp->code) && t->replies_expected == 0;
		if (!clean && t->replies_expected > 0) {
			/* pipelined replies still to come: do not reuse */
			rc_send_cmd(c, "QUIT");
			c->st = RC_QUIT;
			rc_flush(c);
		} else if (clean)
			rc_to_idle(c);
		else {
			rc_send_cmd(c, "QUIT");
			c->st = RC_QUIT;
			rc_flush(c);
		}
	}
	t->final = 1;
	task_done(t);
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
	if (r != TLS_OK && c->task != NULL && task_tls_required(c->task)) {
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
			rc_close(c);
			task_next_target(t);
			return;
		}
		rc_close(c);
		return;
	}
	c->tls_up = 1;
	c->tls_want = 0;
	if (c->task != NULL && task_tls_required(c->task)) {
		char why[200];
		int how = task_tls_required(c->task);
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
	send_ehlo(c);	/* RFC 3207 §4.2: start over */
	c->st = RC_EHLO;
	rc_flush(c);
}

static void
rc_io(struct ev_io *io, uint32_t events)
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
			rc_fail(c, "connect: %s", strerror(err ? err : ECONNREFUSED));
			return;
		}
		c->st = RC_BANNER;
		c->deadline = time(NULL) + T_BANNER;
		rc_update(c);
		return;
	}
	if (c->st == RC_HANDSHAKE) {
		rc_handshake(c);
		return;
	}
	if ((events & EPOLLOUT) || c->tls_want == EPOLLOUT) {
		c->tls_want = 0;
		if (c->st == RC_BDAT && c->outoff == c->outlen && c->task != NULL &&
		    !c->task->bdat_all_sent && c->caps.pipelining) {
			if (bdat_pump(c->task, c) < 0)
				return;
		} else if (c->st == RC_BODY && c->outoff == c->outlen && c->task != NULL) {
			int r = body_pump(c->task, c);
			if (r < 0)
				return;
			if (r == 1) {
				c->st = RC_DOT;
				c->deadline = time(NULL) + T_DOT;
			} else
				c->deadline = time(NULL) + T_DATA_BLOCK;
		}
		rc_flush(c);
		if (c->dead)
			return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		ssize_t n = rc_read(c, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			if (c->task == NULL) {
				rc_close(c);
				return;
			}
			rc_fail(c, "connection lost%s%s", n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
			return;
		}
		if (n < 0)
			break;
		size_t off = 0;
		while (off < (size_t)n) {
			size_t used;
			int r = smtp_reply_feed(&c->parser, buf + off, (size_t)n - off, &used, &c->reply);
			off += used;
			if (r < 0) {
				rc_fail(c, "malformed reply from server");
				return;
			}
			if (r == 0)
				break;
			rc_reply(c);
			/* c may be closed, idle or in a handshake now: stop reading then */
			if (c->dead || c->st == RC_HANDSHAKE || c->st == RC_READY)
				return;
		}
		if (c->st == RC_HANDSHAKE)
			return;
	}
	rc_update(c);
}

/* ---- targets ---- */

static int
target_is_self(const struct rtask *t, const struct target *tg)
{
	const struct conf *cf = &t->job->cfg->conf;
	const struct hostport *lists[3] = { cf->listen, cf->submission_listen, cf->smtps_listen };
	size_t ns[3] = { cf->nlisten, cf->nsubmission_listen, cf->nsmtps_listen };

	if (strcasecmp(tg->host, cf->hostname) == 0)
		return 1;
	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < ns[k]; i++) {
			const struct hostport *hp = &lists[k][i];
			if (hp->port != tg->port)
				continue;
			if (netaddr_equal(&hp->addr, &tg->addr) ||
			    (netaddr_is_any(&hp->addr) && netaddr_is_loopback(&tg->addr)))
				return 1;
		}
	return 0;
}

/* The TLSA answer for t->dane_host: what DANE asks of it (RFC 7672 §2.1, §2.2). */
static void
tlsa_done(void *arg, const struct dns_result *res)
{
	struct rtask *t = arg;
	const struct conf *cf = &t->job->cfg->conf;
	const char *what;
	size_t usable = 0;

	t->tq = NULL;
	if (res->status == DNS_TEMPFAIL || res->tlsa == NULL) {
		/* a failed lookup may hide records: never treat it as "no TLSA" */
		t->dane_state = DS_FAIL;
		snprintf(t->dane_why, sizeof(t->dane_why), "DANE: TLSA lookup failed: %s", res->why);
		what = "lookup-failed";
	} else if (!res->tlsa->ad || !cf->dnssec_trust_resolver) {
		t->dane_state = DS_NONE;
		what = "insecure";
	} else if (res->status == DNS_NXDOMAIN || res->tlsa->n == 0) {
		t->dane_state = DS_NONE;
		what = "no-tlsa";
	} else {
		for (size_t i = 0; i < res->tlsa->n; i++)
			usable += tlsa_usable(&res->tlsa->rr[i]) ? 1 : 0;
		if (usable == 0) {
			/* RFC 7672 2.2: TLSA records exist but none is usable: TLS is still
			 * mandatory (the records say the server has it), without authentication;
			 * never plaintext. Postfix's "encrypt" level does the same. */
			t->dane_state = DS_ENCRYPT;
			snprintf(t->dane_why, sizeof(t->dane_why), "DANE: the %zu TLSA records of %s "
			    "are all unusable (only DANE-TA(2) and DANE-EE(3) are): TLS without "
			    "authentication", res->tlsa->n, t->dane_host);
			what = "unusable";
		} else if (t->dane == NULL && (t->dane = malloc(sizeof(*t->dane))) == NULL) {
			t->dane_state = DS_FAIL;
			snprintf(t->dane_why, sizeof(t->dane_why), "DANE: out of memory");
			what = "lookup-failed";
		} else {
			memcpy(t->dane, res->tlsa, sizeof(*t->dane));
			t->dane_state = DS_TLSA;
			what = "tlsa";
		}
	}
	log_info("qid=%s event=relay-dane host=%s dane=%s usable=%zu", t->job->qid, t->dane_host,
	    what, usable);
	task_next_target(t);
}

static void
task_next_target(struct rtask *t)
{
	struct relay *r = t->r;
	struct rconn *c;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	while (t->cur < t->ntargets) {
		struct target *tg = &t->targets[t->cur];

		if (t->tls_level == OUTTLS_DANE && strcmp(t->dane_host, tg->host) != 0) {
			/* RFC 7672 §2.2: the TLSA records of this MX host decide first */
			struct netaddr lit;
			char qn[300];
			str_copy(t->dane_host, sizeof(t->dane_host), tg->host);
			if (tg->host[0] == '[' || netaddr_parse(tg->host, &lit) == 0) {
				t->dane_state = DS_NONE;	/* an address has no TLSA name */
			} else {
				t->dane_state = DS_UNKNOWN;
				snprintf(qn, sizeof(qn), "_%u._tcp.%s", tg->port, tg->host);
				if ((t->tq = dns_resolve_tlsa(r->dns, qn, tlsa_done, t)) != NULL)
					return;
				t->dane_state = DS_FAIL;
				snprintf(t->dane_why, sizeof(t->dane_why), "DANE: cannot look up %s",
				    qn);
			}
		}
		if (t->tls_level == OUTTLS_DANE && t->dane_state == DS_FAIL) {
			char lh[LOG_VALUE_MAX], lw[LOG_VALUE_MAX];
			t->other_failed = 1;	/* DNS: nothing learned about its TLS */
			snprintf(t->err, sizeof(t->err), "x-imsd; %s: TLS required by %s for %s: %s",
			    tg->host, t->tls_source, t->job->domain, t->dane_why);
			log_info("qid=%s event=relay-attempt-failed host=%s reason=%s", t->job->qid,
			    log_value(lh, sizeof(lh), tg->host, strlen(tg->host)),
			    log_value(lw, sizeof(lw), t->err + 8, strlen(t->err + 8)));
			t->cur++;
			continue;
		}

		/* an idle connection to the same place is the cheapest way there */
		for (c = r->idle; c != NULL && !t->no_tls_for_cur; c = c->next) {
			if (conn_fits(c, t, tg)) {
				if (c->prev)
					c->prev->next = c->next;
				else
					r->idle = c->next;
				if (c->next)
					c->next->prev = c->prev;
				r->nidle--;
				c->prev = c->next = NULL;
				c->task = t;
				t->c = c;
				str_copy(c->t.host, sizeof(c->t.host), tg->host);
				task_begin_tx(t);
				return;
			}
		}
		sl = netaddr_to_sockaddr(&tg->addr, tg->port, &ss);
		fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(t->err, sizeof(t->err), "x-imsd; socket: %s", strerror(errno));
			t->other_failed = 1;
			t->cur++;
			continue;
		}
		if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
			snprintf(t->err, sizeof(t->err), "x-imsd; connect to %s: %s", tg->host,
			    strerror(errno));
			t->other_failed = 1;
			close(fd);
			t->cur++;
			continue;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			break;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->r = r;
		c->t = *tg;
		c->st = RC_CONNECTING;
		c->no_tls = t->no_tls_for_cur;
		c->deadline = time(NULL) + T_CONNECT;
		c->task = t;
		smtp_reply_init(&c->parser);
		t->c = c;
		t->no_tls_for_cur = 0;
		if (ev_io_start(r->loop, &c->io, fd, EPOLLOUT, rc_io, c) < 0) {
			close(fd);
			free(c);
			t->c = NULL;
			break;
		}
		return;
	}
	task_done(t);
}

static void
add_target(struct rtask *t, const char *host, const struct netaddr *a, uint16_t port)
{
	struct target *tg;

	if (t->ntargets >= TARGETS_MAX)
		return;
	if (t->ntargets == t->targets_cap) {
		/* most destinations have one or two addresses: no need to clear 64 slots */
		size_t cap = t->targets_cap ? t->targets_cap * 2 : 2;
		struct target *nt = realloc(t->targets, cap * sizeof(*nt));
		if (nt == NULL)
			return;
		t->targets = nt;
		t->targets_cap = cap;
	}
	tg = &t->targets[t->ntargets];
	str_copy(tg->host, sizeof(tg->host), host);
	tg->addr = *a;
	tg->port = port;
	if (target_is_self(t, tg)) {
		t->err_perm = 1;
		snprintf(t->err, sizeof(t->err), "x-imsd; mail for %s loops back to myself (%s)",
		    t->job->domain, host);
		return;
	}
	t->ntargets++;
}

static void
dns_done(void *arg, const struct dns_result *res)
{
	struct rtask *t = arg;
	const struct conf *cf = &t->job->cfg->conf;
	uint16_t port = cf->relayhost != NULL ? cf->relayhost_port : cf->smtp_port;

	t->dq = NULL;
	switch (res->status) {
	case DNS_OK: {
		/* RFC 5321 §5.1: when we are one of the MX hosts, only hosts preferred over us
		 * may be used; none left means the mail loops back to us. */
		unsigned self_pref = UINT_MAX;
		for (size_t h = 0; h < res->nhosts; h++)
			for (size_t a = 0; a < res->hosts[h].naddrs; a++) {
				struct target tg;
				str_copy(tg.host, sizeof(tg.host), res->hosts[h].name);
				tg.addr = res->hosts[h].addrs[a];
				tg.port = port;
				if (target_is_self(t, &tg) && res->hosts[h].pref < self_pref)
					self_pref = res->hosts[h].pref;
			}
		for (size_t h = 0; h < res->nhosts; h++) {
			if (res->hosts[h].pref >= self_pref) {
				t->err_perm = 1;
				snprintf(t->err, sizeof(t->err), "x-imsd; mail for %s loops back to "
				    "myself (%s is an MX host of the domain)", t->job->domain,
				    res->hosts[h].name);
				continue;
			}
			if (t->sts != NULL && !mtasts_mx_match(t->sts, res->hosts[h].name)) {
				/* RFC 8461 §4.1: only MX hosts the policy names */
				char lh[LOG_VALUE_MAX];
				log_info("qid=%s event=relay-mta-sts-mismatch host=%s mode=%s "
				    "action=%s", t->job->qid, log_value(lh, sizeof(lh),
				    res->hosts[h].name, strlen(res->hosts[h].name)),
				    mtasts_mode_name(t->sts->mode), t->sts->mode == MTASTS_ENFORCE ?
				    "skip" : "deliver-anyway");
				if (t->sts->mode == MTASTS_ENFORCE) {
					snprintf(t->err, sizeof(t->err), "x-imsd; %s: TLS required by "
					    "%s for %s: MTA-STS policy (mode enforce): the policy does "
					    "not list this MX host", res->hosts[h].name, t->tls_source,
					    t->job->domain);
					if (t->job->requiretls && t->rtls_status[0] == '\0')
						str_copy(t->rtls_status, sizeof(t->rtls_status),
						    "5.7.10");
					continue;
				}
			}
			for (size_t a = 0; a < res->hosts[h].naddrs; a++)
				add_target(t, res->hosts[h].name, &res->hosts[h].addrs[a], port);
		}
		if (t->ntargets == 0 && t->err_perm)
			task_fail_rest(t, RELAY_PERM, "5.4.6", t->err);
		break;
	}
	case DNS_NXDOMAIN:
	case DNS_NOHOSTS:
		snprintf(t->err, sizeof(t->err), "x-imsd; %s", res->why);
		task_fail_rest(t, RELAY_PERM, "5.1.2", t->err);
		break;
	case DNS_NULLMX:
		snprintf(t->err, sizeof(t->err), "x-imsd; %s does not accept mail (null MX, RFC 7505)",
		    t->job->domain);
		task_fail_rest(t, RELAY_PERM, "5.1.10", t->err);
		break;
	default:
		snprintf(t->err, sizeof(t->err), "x-imsd; DNS lookup failed: %s", res->why);
		task_fail_rest(t, RELAY_TEMP, "4.4.3", t->err);
		break;
	}
	t->err_perm = 0;
	if (t->ntargets == 0) {
		task_done(t);
		return;
	}
	task_next_target(t);
}

/* The MX lookup of the job's domain. */
static void
task_lookup_mx(struct rtask *t)
{
	t->dq = dns_resolve_mail(t->r->dns, t->job->domain, dns_done, t);
	if (t->dq == NULL) {
		snprintf(t->err, sizeof(t->err), "x-imsd; cannot look up %s", t->job->domain);
		task_done(t);
	}
}

/* MTA-STS discovery finished: p is the policy to apply (NULL: none). */
static void
sts_done(void *arg, const struct mtasts_policy *p, const char *note)
{
	struct rtask *t = arg;
	char ln[LOG_VALUE_MAX];

	t->sq = NULL;
	log_info("qid=%s event=relay-mta-sts domain=%s mode=%s note=%s", t->job->qid,
	    t->job->domain, p != NULL ? mtasts_mode_name(p->mode) : "no-policy",
	    log_value(ln, sizeof(ln), note, strlen(note)));
	if (p != NULL && p->mode != MTASTS_NONE) {
		if ((t->sts = malloc(sizeof(*t->sts))) == NULL) {
			snprintf(t->err, sizeof(t->err), "x-imsd; out of memory");
			task_done(t);
			return;
		}
		*t->sts = *p;
	}
	task_lookup_mx(t);
}

/* ---- public ---- */

struct relay *
relay_new(struct ev_loop *loop, struct dns *dns, char *err, size_t errlen)
{
	struct relay *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->loop = loop;
	r->dns = dns;
	if ((r->client_tls = tls_client_ctx_new(err, errlen)) == NULL) {
		free(r);
		return NULL;
	}
	if ((r->sts = sts_new(loop, dns)) == NULL) {
		snprintf(err, errlen, "MTA-STS: out of memory");
		tls_ctx_unref(r->client_tls);
		free(r);
		return NULL;
	}
	if ((r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    ev_io_start(loop, &r->eio, r->efd, EPOLLIN, finished_cb, r) < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		sts_free(r->sts);
		tls_ctx_unref(r->client_tls);
		free(r);
		return NULL;
	}
	return r;
}

void
relay_start(struct relay *r, struct relay_job *job)
{
	struct rtask *t = calloc(1, sizeof(*t));
	const struct conf *cf = &job->cfg->conf;

	for (size_t i = 0; i < job->nrcpts; i++)
		job->results[i].status[0] = '\0';
	if (t == NULL || (t->accepted = calloc(job->nrcpts ? job->nrcpts : 1, sizeof(int))) == NULL) {
		/* report through the normal path so done() is never synchronous */
		free(t);
		t = calloc(1, sizeof(*t));
		if (t == NULL)
			abort();	/* out of memory with a job in hand: nothing sane remains */
	}
	t->r = r;
	t->job = job;
	t->tls_level = outtls_level(cf, job->domain, &t->tls_source, NULL);
	if (job->requiretls && t->tls_level != OUTTLS_DANE && t->tls_level != OUTTLS_MTASTS) {
		/* RFC 8689 §5: only DANE or MTA-STS can vouch for the next hop; DANE when a
		 * resolver is trusted for it, else the domain's MTA-STS policy */
		t->tls_level = cf->dnssec_trust_resolver && cf->ndns_servers > 0 ? OUTTLS_DANE :
		    OUTTLS_MTASTS;
		t->tls_source = "REQUIRETLS";
	}
	t->src_fd = job->fd;
	t->src_off = job->body_off;
	t->src_len = job->body_len;
	t->next = r->tasks;
	if (r->tasks)
		r->tasks->prev = t;
	r->tasks = t;
	r->ntasks++;
	if (t->accepted == NULL) {
		snprintf(t->err, sizeof(t->err), "x-imsd; out of memory");
		task_done(t);
		return;
	}
	if (cf->relayhost != NULL) {
		struct netaddr a;
		if (netaddr_parse(cf->relayhost, &a) == 0) {
			add_target(t, cf->relayhost, &a, cf->relayhost_port);
			if (t->ntargets == 0) {
				task_fail_rest(t, RELAY_PERM, "5.4.6", t->err);
				task_done(t);
				return;
			}
			task_next_target(t);
			return;
		}
		t->dq = cf->relayhost_literal ? dns_resolve_host(r->dns, cf->relayhost, dns_done, t) :
		    dns_resolve_mail(r->dns, cf->relayhost, dns_done, t);
		if (t->dq == NULL) {
			snprintf(t->err, sizeof(t->err), "x-imsd; cannot look up %s", cf->relayhost);
			task_done(t);
		}
		return;
	}
	if (job->domain[0] == '[') {
		/* an address literal: no DNS (RFC 5321 §5.1) */
		char lit[256];
		struct netaddr a;
		const char *p = job->domain + 1;
		if (strncasecmp(p, "IPv6:", 5) == 0)
			p += 5;
		str_copy(lit, sizeof(lit), p);
		char *e = strchr(lit, ']');
		if (e != NULL)
			*e = '\0';
		if (netaddr_parse(lit, &a) == 0)
			add_target(t, job->domain, &a, cf->smtp_port);
		if (t->ntargets == 0) {
			if (t->err[0] == '\0')
				snprintf(t->err, sizeof(t->err), "x-imsd; bad address literal %s",
				    job->domain);
			task_fail_rest(t, RELAY_PERM, t->err_perm ? "5.4.6" : "5.1.2", t->err);
			task_done(t);
			return;
		}
		task_next_target(t);
		return;
	}
	if (t->tls_level == OUTTLS_MTASTS) {
		/* the policy first: it says which MX hosts may be used (RFC 8461 §5) */
		if ((t->sq = sts_get(r->sts, job->cfg, job->domain, sts_done, t)) == NULL) {
			snprintf(t->err, sizeof(t->err), "x-imsd; MTA-STS: cannot look up the policy "
			    "of %s", job->domain);
			task_done(t);
		}
		return;
	}
	task_lookup_mx(t);
}

void
relay_tick(struct relay *r, time_t now)
{
	struct rtask *t, *tn;
	struct rconn *c, *cn;

	for (c = r->idle; c != NULL; c = cn) {
		cn = c->next;
		if (now >= c->deadline) {
			/* polite, but do not wait for the answer */
			rc_send_cmd(c, "QUIT");
			rc_flush(c);
			rc_close(c);
		}
	}
	for (t = r->tasks; t != NULL; t = tn) {
		tn = t->next;
		if (t->c != NULL && !t->c->dead && now >= t->c->deadline)
			rc_fail(t->c, "timeout in state %d", (int)t->c->st);
	}
}

unsigned
relay_active(const struct relay *r)
{
	return r->ntasks;
}

void
relay_free(struct relay *r)
{
	while (r->idle != NULL)
		rc_close(r->idle);
	while (r->tasks != NULL) {
		struct rtask *t = r->tasks;
		struct rconn *c = t->c;
		snprintf(t->err, sizeof(t->err), "x-imsd; server shutting down");
		if (c != NULL) {
			c->task = NULL;
			t->c = NULL;
			c->st = RC_QUIT;
			rc_close(c);
		}
		task_done(t);
	}
	finished_cb(&r->eio, EPOLLIN);
	ev_io_stop(r->loop, &r->eio);
	close(r->efd);
	sts_free(r->sts);
	tls_ctx_unref(r->client_tls);
	free(r);
}
