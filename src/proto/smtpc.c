/*
 * smtpc — the SMTP/LMTP client dialogue as a pure state machine; see smtpc.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/dsnparam.h"
#include "proto/smtpc.h"

/* RFC 5321 §4.5.3.2 */
#define T_BANNER	300
#define T_CMD		300
#define T_DATA_INIT	120
#define T_DATA_BLOCK	180
#define T_DOT		600

static void
command(struct smtpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Build and hand over one command line (cut at SMTPC_LINE_MAX). */
static void
command(struct smtpc *c, const char *fmt, ...)
{
	char line[SMTPC_LINE_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > SMTPC_LINE_MAX)
		n = SMTPC_LINE_MAX;
	c->ops->command(c->arg, line, (size_t)n);
}

void
smtpc_diag(const struct smtp_reply *r, char *out, size_t outlen)
{
	char first[400];
	const char *nl = strchr(r->text, '\n');
	size_t n = nl ? (size_t)(nl - r->text) : strlen(r->text);

	if (n >= sizeof(first))
		n = sizeof(first) - 1;
	memcpy(first, r->text, n);
	first[n] = '\0';
	for (char *p = first; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = ' ';
	/* the text already starts with the enhanced code when there is one */
	snprintf(out, outlen, "smtp; %d %s", r->code, first);
}

void
smtpc_init(struct smtpc *c, enum smtpc_dialect dialect, const char *helo,
    const struct smtpc_ops *ops, void *arg)
{
	memset(c, 0, sizeof(*c));
	c->dialect = dialect;
	c->ops = ops;
	c->arg = arg;
	snprintf(c->helo, sizeof(c->helo), "%s", helo);
	c->st = SC_GREETING;
	smtp_reply_init(&c->parser);
}

static enum smtpc_event
fail(struct smtpc *c, const char *what, const struct smtp_reply *r)
{
	char d[400];

	if (r != NULL) {
		smtpc_diag(r, d, sizeof(d));
		snprintf(c->why, sizeof(c->why), "%s: %s", what, d);
	} else
		snprintf(c->why, sizeof(c->why), "%s", what);
	c->st = SC_FAILED;
	c->tx = NULL;
	return SMTPC_FAIL;
}

static void
send_ehlo(struct smtpc *c)
{
	command(c, "%s %s", c->dialect == SMTPC_LMTP ? "LHLO" : "EHLO", c->helo);
	c->st = SC_EHLO;
}

static void
set_result(struct smtpc *c, struct smtpc_rcpt *r, const struct smtp_reply *rp)
{
	r->code = rp->code;
	smtp_reply_status(rp, r->status);
	smtpc_diag(rp, r->diag, sizeof(r->diag));
	(void)c;
}

/* Every accepted recipient gets the reply that decided the message. */
static void
set_accepted(struct smtpc *c, const struct smtp_reply *rp)
{
	for (size_t i = 0; i < c->rcpt_end; i++)
		if (c->tx->rcpts[i].accepted)
			set_result(c, &c->tx->rcpts[i], rp);
}

/* RCPT for recipient i, with NOTIFY and ORCPT when the peer announced DSN. */
static void
send_rcpt(struct smtpc *c, size_t i)
{
	const struct smtpc_rcpt *r = &c->tx->rcpts[i];
	char notify[32] = "";

	if (!c->caps.dsn) {
		command(c, "RCPT TO:<%s>", r->addr);
		return;
	}
	dsn_notify_format(r->notify, notify, sizeof(notify));
	command(c, "RCPT TO:<%s>%s%s%s%s", r->addr, notify[0] ? " NOTIFY=" : "", notify,
	    r->dsn_orcpt != NULL ? " ORCPT=" : "", r->dsn_orcpt != NULL ? r->dsn_orcpt : "");
}

static int
pipelining(const struct smtpc *c)
{
	return c->caps.pipelining && !c->tx->lockstep;
}

/* The transaction is over. */
static enum smtpc_event
tx_over(struct smtpc *c, const struct smtp_reply *rp)
{
	c->reusable = c->final && c->expected == 0 && (c->dialect == SMTPC_LMTP ?
	    rp->code != 421 : smtp_reply_completion(rp->code));
	/* nothing of this transaction is in flight any more */
	c->final = 0;
	c->text_sent = 0;
	c->st = SC_READY;
	c->tx = NULL;
	return SMTPC_DONE;
}

static int
has_break(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") != NULL;
}

int
smtpc_mail(struct smtpc *c, struct smtpc_tx *tx)
{
	char size[40] = "", dsn[DSN_ENVID_MAX + 32] = "";
	int bad = has_break(tx->sender) || has_break(tx->envid);

	for (size_t i = 0; i < tx->nrcpts && !bad; i++)
		bad = tx->rcpts[i].addr == NULL || has_break(tx->rcpts[i].addr) ||
		    has_break(tx->rcpts[i].dsn_orcpt);
	if (bad || tx->sender == NULL || tx->nrcpts == 0) {
		snprintf(c->why, sizeof(c->why), "%s", tx->nrcpts == 0 ? "no recipients" :
		    "the envelope holds a line break");
		return -1;
	}
	for (size_t i = 0; i < tx->nrcpts; i++) {
		struct smtpc_rcpt *r = &tx->rcpts[i];
		r->accepted = 0;
		r->code = 0;
		r->status[0] = '\0';
		r->diag[0] = '\0';
	}
	c->tx = tx;
	c->expected = 0;
	c->rcpt_sent = c->rcpt_replied = c->naccepted = 0;
	c->rcpt_end = tx->nrcpts;
	c->lmtp_next = c->lmtp_left = 0;
	c->mail_ok = 0;
	c->final = 0;
	c->text_sent = 0;
	c->reusable = 0;
	c->bdat = c->caps.chunking;
	c->bdat_all_sent = 0;
	c->bdat_unacked = 0;
	if (c->caps.size_known)
		snprintf(size, sizeof(size), " SIZE=%llu", (unsigned long long)tx->size);
	if (c->caps.dsn) {
		/* RFC 3461 §4: pass the requests on; the peer reports from here on */
		if (tx->dsn_ret != DSN_RET_NONE)
			snprintf(dsn, sizeof(dsn), " RET=%s", tx->dsn_ret == DSN_RET_FULL ? "FULL" :
			    "HDRS");
		if (tx->envid != NULL && tx->envid[0] != '\0')
			snprintf(dsn + strlen(dsn), sizeof(dsn) - strlen(dsn), " ENVID=%s", tx->envid);
	}
	command(c, "MAIL FROM:<%s>%s%s%s%s%s", tx->sender, size,
	    tx->body == SMTPC_BODY_BINARY ? " BODY=BINARYMIME" :
	    tx->body == SMTPC_BODY_8BIT && c->caps.eightbitmime ? " BODY=8BITMIME" : "", dsn,
	    tx->requiretls ? " REQUIRETLS" : "", c->caps.smtputf8 && tx->smtputf8 ? " SMTPUTF8" :
	    "");
	c->st = SC_MAIL;
	c->expected = 1;
	if (pipelining(c)) {
		/* RFC 2920: MAIL, every RCPT and DATA in one go; replies come in order. BDAT
		 * waits for the RCPT replies: no chunk is sent for nobody. */
		for (size_t k = 0; k < tx->nrcpts; k++)
			send_rcpt(c, k);
		c->rcpt_sent = tx->nrcpts;
		c->expected += tx->nrcpts;
		if (!c->bdat) {
			command(c, "DATA");
			c->expected++;
		}
	}
	return 0;
}

/* All RCPT replies are in (or the rest is left for later): on to the text. */
static enum smtpc_event
rcpts_done(struct smtpc *c, const struct smtp_reply *rp)
{
	if (c->bdat) {
		if (!c->mail_ok || c->naccepted == 0)
			return tx_over(c, rp);
		c->st = SC_BDAT;
		return SMTPC_BDAT;
	}
	if (!pipelining(c)) {
		if (c->naccepted == 0)
			return tx_over(c, rp);
		command(c, "DATA");
		c->expected = 1;
	}
	c->st = SC_DATA;
	return SMTPC_MORE;
}

/* A final reply after the dot or the LAST chunk. */
static enum smtpc_event
final_reply(struct smtpc *c, const struct smtp_reply *rp)
{
	if (c->dialect == SMTPC_LMTP && c->lmtp_left > 0) {
		/* RFC 2033 §4.2: this one is the next accepted recipient's */
		while (c->lmtp_next < c->rcpt_end && !c->tx->rcpts[c->lmtp_next].accepted)
			c->lmtp_next++;
		if (c->lmtp_next < c->rcpt_end)
			set_result(c, &c->tx->rcpts[c->lmtp_next++], rp);
		if (--c->lmtp_left > 0)
			return SMTPC_MORE;
		c->final = 1;
		return tx_over(c, rp);
	}
	if (!c->final || c->naccepted > 0)
		set_accepted(c, rp);
	c->final = 1;
	return tx_over(c, rp);
}

static enum smtpc_event
on_reply(struct smtpc *c, const struct smtp_reply *rp)
{
	if (c->ops->reply != NULL)
		c->ops->reply(c->arg, rp);
	switch (c->st) {
	case SC_GREETING:
		if (rp->code != 220)
			return fail(c, "greeting", rp);
		send_ehlo(c);
		return SMTPC_MORE;
	case SC_EHLO:
		if (smtp_reply_completion(rp->code)) {
			smtp_caps_parse(rp, &c->caps);
			c->st = SC_READY;
			return SMTPC_READY;
		}
		if (rp->code >= 500 && rp->code != 503 && c->dialect == SMTPC_SMTP)
			return SMTPC_EHLO_REFUSED;
		return fail(c, c->dialect == SMTPC_LMTP ? "LHLO" : "EHLO", rp);
	case SC_HELO:
		if (!smtp_reply_completion(rp->code))
			return fail(c, "HELO", rp);
		memset(&c->caps, 0, sizeof(c->caps));
		c->st = SC_READY;
		return SMTPC_READY;
	case SC_STARTTLS:
		if (rp->code != 220) {
			c->st = SC_READY;
			return SMTPC_TLS_REFUSED;
		}
		c->st = SC_TLS;
		return SMTPC_TLS;
	case SC_MAIL:
		if (c->expected > 0)
			c->expected--;
		if (smtp_reply_transient(rp->code) && c->tx->mail_temp_fails)
			/* RFC 5321 §5.1: a host that cannot take the message now is skipped for
			 * the next one; nothing was sent yet */
			return fail(c, "MAIL FROM refused for now", rp);
		c->mail_ok = smtp_reply_completion(rp->code);
		if (!c->mail_ok)
			for (size_t k = 0; k < c->tx->nrcpts; k++)
				set_result(c, &c->tx->rcpts[k], rp);
		c->st = SC_RCPT;
		if (!pipelining(c)) {
			if (!c->mail_ok)
				return tx_over(c, rp);
			send_rcpt(c, 0);
			c->rcpt_sent = 1;
			c->expected = 1;
		}
		return SMTPC_MORE;
	case SC_RCPT: {
		struct smtpc_rcpt *r;
		if (c->expected > 0)
			c->expected--;
		if (c->rcpt_replied >= c->rcpt_sent)
			return fail(c, "unexpected reply", rp);
		r = &c->tx->rcpts[c->rcpt_replied++];
		if (c->mail_ok) {
			if (smtp_reply_completion(rp->code)) {
				r->accepted = 1;
				c->naccepted++;
			} else if (rp->code == 452 && c->tx->split_at_452 && c->naccepted > 0 &&
			    !pipelining(c)) {
				/* too many recipients: the accepted ones get the text now, this
				 * one and the rest wait for the next transaction */
				c->rcpt_end = c->rcpt_replied - 1;
				return rcpts_done(c, rp);
			} else {
				set_result(c, r, rp);
				if (smtp_reply_transient(rp->code) && c->tx->rcpt_temp_ends &&
				    !pipelining(c)) {
					c->rcpt_end = c->rcpt_replied;
					return tx_over(c, rp);
				}
			}
		}
		if (!pipelining(c) && c->rcpt_replied < c->tx->nrcpts) {
			send_rcpt(c, c->rcpt_sent++);
			c->expected = 1;
			return SMTPC_MORE;
		}
		if (c->rcpt_replied == c->tx->nrcpts)
			return rcpts_done(c, rp);
		return SMTPC_MORE;
	}
	case SC_DATA:
		if (c->expected > 0)
			c->expected--;
		if (rp->code == 354) {
			if (!c->mail_ok || c->naccepted == 0) {
				/* nothing to send for: an empty message would be delivered */
				command(c, ".");
				c->st = SC_DOT;
				c->expected++;
				c->final = 1;
				return SMTPC_MORE;
			}
			c->st = SC_BODY;
			c->text_sent = 1;
			return SMTPC_BODY;
		}
		if (c->mail_ok && c->naccepted > 0)
			set_accepted(c, rp);
		return tx_over(c, rp);
	case SC_DOT:
		if (c->expected > 0)
			c->expected--;
		return final_reply(c, rp);
	case SC_BDAT:
		/* RFC 3030 §2: each chunk is answered; the LAST one's reply is the verdict, and
		 * a failed chunk fails the message (pipelined chunks after it get 503). */
		if (c->expected > 0)
			c->expected--;
		if (c->bdat_all_sent && c->bdat_unacked <= 1 && c->lmtp_left > 0) {
			c->bdat_unacked = 0;
			return final_reply(c, rp);
		}
		if (c->bdat_unacked > 0)
			c->bdat_unacked--;
		if (!smtp_reply_completion(rp->code) || (c->bdat_all_sent && c->bdat_unacked == 0)) {
			set_accepted(c, rp);
			c->final = 1;
			return tx_over(c, rp);
		}
		if (!c->bdat_all_sent && !pipelining(c))
			return SMTPC_BDAT;
		return SMTPC_MORE;
	case SC_QUIT:
	case SC_READY:
		/* an idle connection spoke (421 on timeout, say): drop it */
		c->st = SC_QUIT;
		return SMTPC_CLOSED;
	default:
		return fail(c, "unexpected reply", rp);
	}
}

enum smtpc_event
smtpc_feed(struct smtpc *c, const char *buf, size_t len, size_t *used)
{
	size_t off = 0;

	*used = 0;
	while (off < len) {
		size_t u;
		int r;

		if (c->st == SC_FAILED || c->st == SC_TLS) {
			*used = off;
			return c->st == SC_FAILED ? SMTPC_FAIL : SMTPC_TLS;
		}
		r = smtp_reply_feed(&c->parser, buf + off, len - off, &u, &c->reply);
		off += u;
		if (r < 0) {
			*used = off;
			return fail(c, "malformed reply from server", NULL);
		}
		if (r == 0)
			break;
		enum smtpc_event ev = on_reply(c, &c->reply);
		if (ev != SMTPC_MORE) {
			*used = off;
			return ev;
		}
	}
	*used = off;
	return SMTPC_MORE;
}

int
smtpc_helo(struct smtpc *c)
{
	if (c->dialect != SMTPC_SMTP)
		return -1;
	command(c, "HELO %s", c->helo);
	c->st = SC_HELO;
	return 0;
}

void
smtpc_starttls(struct smtpc *c)
{
	command(c, "STARTTLS");
	c->st = SC_STARTTLS;
}

void
smtpc_tls_done(struct smtpc *c)
{
	smtp_reply_init(&c->parser);
	memset(&c->caps, 0, sizeof(c->caps));
	c->tls = 1;
	send_ehlo(c);	/* RFC 3207 §4.2: start over */
}

void
smtpc_dot(struct smtpc *c)
{
	command(c, ".");
	c->st = SC_DOT;
	c->text_sent = 1;
	if (c->dialect == SMTPC_LMTP && c->naccepted > 0) {
		/* RFC 2033 §4.2: one final reply per accepted recipient */
		c->lmtp_left = c->naccepted;
		c->expected += c->naccepted;
	} else
		c->expected++;
}

void
smtpc_bdat(struct smtpc *c, uint64_t size, int last)
{
	command(c, "BDAT %llu%s", (unsigned long long)size, last ? " LAST" : "");
	c->text_sent = 1;
	c->bdat_unacked++;
	c->expected++;
	if (last) {
		c->bdat_all_sent = 1;
		if (c->dialect == SMTPC_LMTP && c->naccepted > 0) {
			/* one final reply per accepted recipient instead of one */
			c->lmtp_left = c->naccepted;
			c->expected += c->naccepted - 1;
		}
	}
}

int
smtpc_bdat_more(const struct smtpc *c)
{
	return c->st == SC_BDAT && c->tx != NULL && pipelining(c) && !c->bdat_all_sent;
}

void
smtpc_quit(struct smtpc *c)
{
	command(c, "QUIT");
	c->st = SC_QUIT;
	c->tx = NULL;
}

const char *
smtpc_state_name(const struct smtpc *c)
{
	static const char *const names[] = {
		[SC_GREETING] = "greeting", [SC_EHLO] = "EHLO", [SC_HELO] = "HELO",
		[SC_READY] = "idle", [SC_STARTTLS] = "STARTTLS", [SC_TLS] = "TLS handshake",
		[SC_MAIL] = "MAIL", [SC_RCPT] = "RCPT", [SC_DATA] = "DATA",
		[SC_BODY] = "message text", [SC_DOT] = "end of data", [SC_BDAT] = "BDAT",
		[SC_QUIT] = "QUIT", [SC_FAILED] = "failed",
	};

	return c->st < sizeof(names) / sizeof(names[0]) ? names[c->st] : "?";
}

int
smtpc_delivered_maybe(const struct smtpc *c)
{
	return c->final || c->text_sent;
}

unsigned
smtpc_timeout(const struct smtpc *c)
{
	switch (c->st) {
	case SC_GREETING:
		return T_BANNER;
	case SC_DATA:
		return T_DATA_INIT;
	case SC_BODY:
		return T_DATA_BLOCK;
	case SC_DOT:
		return T_DOT;
	case SC_BDAT:
		return c->bdat_all_sent ? T_DOT : T_DATA_BLOCK;
	default:
		return T_CMD;
	}
}
