/*
 * milter_conv — one milter conversation, MTA side (contract in milter_conv.h).
 */
#include <stdlib.h>
#include <string.h>

#include "proto/milter_conv.h"

#define MACROS_MAX	32	/* macros sent at one stage */

/* Postfix's defaults (postconf(5): milter_*_macros). */
static const char *const default_macros[MILTER_STAGES] = {
	[MILTER_STAGE_CONNECT] = "j {daemon_name} {daemon_addr} v _",
	[MILTER_STAGE_HELO] = "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
	[MILTER_STAGE_MAIL] = "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
	[MILTER_STAGE_RCPT] = "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
	[MILTER_STAGE_DATA] = "i",
	[MILTER_STAGE_EOM] = "i",
	[MILTER_STAGE_EOH] = "i",
};

const char *
milter_conv_default_macros(enum milter_stage st)
{
	return (unsigned)st < MILTER_STAGES ? default_macros[st] : "";
}

static void
clear(struct milter_conv *c)
{
	for (int i = 0; i < MILTER_STAGES; i++)
		free(c->macros[i]);
	free(c->out.p);
	memset(c, 0, sizeof *c);
}

void
milter_conv_open(struct milter_conv *c)
{
	clear(c);
	c->max = MILTER_PACKET_MAX;
	milter_put_optneg(&c->out, MILTER_VERSION, MILTER_CONV_ACTIONS, MILTER_CONV_PROTOCOL);
	c->state = MC_NEGOTIATING;
	c->await = SMFIC_OPTNEG;
}

void
milter_conv_free(struct milter_conv *c)
{
	clear(c);
}

const void *
milter_conv_out(const struct milter_conv *c, size_t *len)
{
	*len = c->out.bad ? 0 : c->out.len;
	return c->out.p;
}

void
milter_conv_sent(struct milter_conv *c, size_t n)
{
	if (n >= c->out.len) {
		c->out.len = 0;
		if (c->out.p)
			c->out.p[0] = '\0';
		return;
	}
	memmove(c->out.p, c->out.p + n, c->out.len - n);
	c->out.len -= n;
	c->out.p[c->out.len] = '\0';
}

enum milter_wait
milter_conv_wait(const struct milter_conv *c)
{
	switch (c->await) {
	case SMFIC_OPTNEG:	return MILTER_WAIT_CONNECT;
	case SMFIC_BODY:
	case SMFIC_BODYEOB:	return MILTER_WAIT_CONTENT;
	default:		return MILTER_WAIT_COMMAND;
	}
}

int
milter_conv_active(const struct milter_conv *c)
{
	return c->state == MC_READY || c->state == MC_ACCEPT_MSG;
}

static struct milter_event
event(enum milter_ev k)
{
	struct milter_event e;

	memset(&e, 0, sizeof e);
	e.kind = k;
	return e;
}

struct milter_event
milter_conv_fail(struct milter_conv *c, const char *why)
{
	struct milter_event e = event(MILTER_EV_VERDICT);

	if (c->state != MC_FAILED) {
		c->state = MC_FAILED;
		c->why = why;
	}
	c->await = 0;
	c->in_message = 0;
	c->out.len = 0;		/* nothing more goes to a milter out of sync */
	e.verdict = MILTER_ERROR;
	e.why = c->why;
	return e;
}

/* Copy the milter's macro lists out of its OPTNEG answer (the packet goes away). */
static int
keep_macros(struct milter_conv *c, const struct milter_optneg *o)
{
	for (int i = 0; i < MILTER_STAGES; i++) {
		size_t n;

		if (o->macros[i] == NULL)
			continue;
		n = strlen(o->macros[i]) + 1;
		if ((c->macros[i] = malloc(n)) == NULL)
			return -1;
		memcpy(c->macros[i], o->macros[i], n);
	}
	return 0;
}

/* The answer to the awaited command is in: the state it leaves behind. */
static struct milter_event
verdict(struct milter_conv *c, enum milter_verdict v, int has_reply)
{
	struct milter_event e = event(MILTER_EV_VERDICT);
	char cmd = c->await;
	int conn_level = cmd == SMFIC_CONNECT || cmd == SMFIC_HELO;

	c->await = 0;
	e.verdict = v;
	e.has_reply = has_reply;
	e.reply = has_reply ? &c->reply : NULL;
	if (v == MILTER_SHUTDOWN || (conn_level && v != MILTER_CONTINUE))
		c->state = MC_DONE_CONN;
	else if (v == MILTER_ACCEPT || v == MILTER_DISCARD)
		c->state = MC_ACCEPT_MSG;
	if (cmd == SMFIC_BODYEOB) {
		e.quarantine = c->quarantine;
		e.quarantine_reason = c->quarantine_reason;
		c->quarantine = 0;
		c->in_message = 0;
		c->skip_body = 0;
		if (c->state == MC_ACCEPT_MSG)
			c->state = MC_READY;
	}
	return e;
}

struct milter_event
milter_conv_feed(struct milter_conv *c, const unsigned char *buf, size_t len, size_t *used)
{
	struct milter_packet pkt;
	struct milter_optneg o;
	const char *why = NULL;
	int r;

	*used = 0;
	if (len == 0)
		return event(MILTER_EV_NEED);
	if (c->state == MC_FAILED || c->state == MC_CLOSED) {
		*used = len;	/* a milter that is out: its bytes mean nothing */
		return event(MILTER_EV_NEED);
	}
	if (c->await == 0)
		return milter_conv_fail(c, "the milter sent a packet when no answer was due");
	r = milter_frame(buf, len, c->max, &pkt, used, &why);
	if (r == 0) {
		*used = 0;
		return event(MILTER_EV_NEED);
	}
	if (r < 0)
		return milter_conv_fail(c, why);

	if (c->await == SMFIC_OPTNEG) {
		if (milter_optneg_decode(&pkt, &o, &why) != 0 ||
		    milter_negotiate(MILTER_CONV_ACTIONS, MILTER_CONV_PROTOCOL, &o, &c->agreed,
		    &why) != 0)
			return milter_conv_fail(c, why);
		if (keep_macros(c, &o) != 0)
			return milter_conv_fail(c, "out of memory");
		c->state = MC_READY;
		return verdict(c, MILTER_CONTINUE, 0);
	}

	if (milter_reply_decode(&pkt, &c->reply, &why) != 0)
		return milter_conv_fail(c, why);
	if (!milter_reply_allowed(&c->agreed, c->await, pkt.cmd))
		return milter_conv_fail(c, "the milter sent a reply that is not allowed there "
		    "(or an edit it did not negotiate)");

	switch (pkt.cmd) {
	case SMFIR_PROGRESS:
		return event(MILTER_EV_PROGRESS);
	case SMFIR_CONTINUE:
		return verdict(c, MILTER_CONTINUE, 0);
	case SMFIR_ACCEPT:
		return verdict(c, MILTER_ACCEPT, 0);
	case SMFIR_REJECT:
		return verdict(c, MILTER_REJECT, 0);
	case SMFIR_TEMPFAIL:
		return verdict(c, MILTER_TEMPFAIL, 0);
	case SMFIR_DISCARD:
		return verdict(c, MILTER_DISCARD, 0);
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		return verdict(c, MILTER_SHUTDOWN, 0);
	case SMFIR_REPLYCODE:
		if (c->reply.code == 421)
			return verdict(c, MILTER_SHUTDOWN, 1);
		return verdict(c, c->reply.code >= 500 ? MILTER_REJECT : MILTER_TEMPFAIL, 1);
	case SMFIR_SKIP:
		c->skip_body = 1;
		return verdict(c, MILTER_CONTINUE, 0);
	case SMFIR_QUARANTINE: {
		size_t n = strlen(c->reply.name);

		if (n >= sizeof c->quarantine_reason)
			n = sizeof c->quarantine_reason - 1;
		memcpy(c->quarantine_reason, c->reply.name, n);
		c->quarantine_reason[n] = '\0';
		c->quarantine = 1;
	}
		/* reported as an edit too, and in the verdict */
		/* FALLTHROUGH */
	default: {
		struct milter_event e = event(MILTER_EV_EDIT);

		e.reply = &c->reply;
		return e;
	}
	}
}

/* Queue the stage's SMFIC_MACRO: the milter's list or the default, values from fn. */
static void
put_macros(struct milter_conv *c, enum milter_stage st, milter_macro_fn fn, void *arg)
{
	const char *list = c->macros[st] ? c->macros[st] : default_macros[st];
	const char *nv[2 * MACROS_MAX];
	char names[MACROS_MAX][64];
	size_t n = 0;

	if (fn == NULL || list == NULL)
		return;
	for (const char *p = list; *p && n < MACROS_MAX;) {
		size_t k = 0;
		const char *v;

		while (*p == ' ' || *p == ',')
			p++;
		while (p[k] && p[k] != ' ' && p[k] != ',')
			k++;
		if (k == 0)
			break;
		if (k < sizeof names[n]) {
			memcpy(names[n], p, k);
			names[n][k] = '\0';
			if ((v = fn(arg, names[n])) != NULL) {
				nv[2 * n] = names[n];
				nv[2 * n + 1] = v;
				n++;
			}
		}
		p += k;
	}
	milter_put_macros(&c->out, milter_stage_cmd(st), nv, n);
}

/* The common part of every step: is the milter in the conversation, with no answer
 * outstanding, and (for message_level steps) not done with this message? */
static int
takes(struct milter_conv *c, char cmd, int message_level)
{
	if (!milter_conv_active(c) || c->await != 0)
		return 0;
	if (message_level && c->state == MC_ACCEPT_MSG)
		return 0;
	return 1;
}

static enum milter_step
sent(struct milter_conv *c, char cmd)
{
	if (!milter_replies(&c->agreed, cmd))
		return MILTER_STEP_GO;
	c->await = cmd;
	return MILTER_STEP_WAIT;
}

enum milter_step
milter_conv_connect(struct milter_conv *c, const char *host, char family, uint16_t port,
    const char *addr, milter_macro_fn fn, void *arg)
{
	if (!takes(c, SMFIC_CONNECT, 0) || c->state != MC_READY)
		return MILTER_STEP_GO;
	put_macros(c, MILTER_STAGE_CONNECT, fn, arg);
	if (!milter_sends(&c->agreed, SMFIC_CONNECT))
		return MILTER_STEP_GO;
	milter_put_connect(&c->out, host, family, port, addr);
	return sent(c, SMFIC_CONNECT);
}

enum milter_step
milter_conv_helo(struct milter_conv *c, const char *helo, milter_macro_fn fn, void *arg)
{
	if (!takes(c, SMFIC_HELO, 0))
		return MILTER_STEP_GO;
	put_macros(c, MILTER_STAGE_HELO, fn, arg);
	if (!milter_sends(&c->agreed, SMFIC_HELO))
		return MILTER_STEP_GO;
	milter_put_helo(&c->out, helo);
	return sent(c, SMFIC_HELO);
}

enum milter_step
milter_conv_mail(struct milter_conv *c, const char *const *argv, size_t argc,
    milter_macro_fn fn, void *arg)
{
	if (c->state == MC_ACCEPT_MSG && !c->in_message)
		c->state = MC_READY;
	if (!takes(c, SMFIC_MAIL, 0))
		return MILTER_STEP_GO;
	c->in_message = 1;
	put_macros(c, MILTER_STAGE_MAIL, fn, arg);
	if (!milter_sends(&c->agreed, SMFIC_MAIL))
		return MILTER_STEP_GO;
	milter_put_args(&c->out, SMFIC_MAIL, argv, argc);
	return sent(c, SMFIC_MAIL);
}

enum milter_step
milter_conv_rcpt(struct milter_conv *c, const char *const *argv, size_t argc,
    milter_macro_fn fn, void *arg)
{
	if (!takes(c, SMFIC_RCPT, 1))
		return MILTER_STEP_GO;
	put_macros(c, MILTER_STAGE_RCPT, fn, arg);
	if (!milter_sends(&c->agreed, SMFIC_RCPT))
		return MILTER_STEP_GO;
	milter_put_args(&c->out, SMFIC_RCPT, argv, argc);
	return sent(c, SMFIC_RCPT);
}

enum milter_step
milter_conv_data(struct milter_conv *c, milter_macro_fn fn, void *arg)
{
	if (!takes(c, SMFIC_DATA, 1))
		return MILTER_STEP_GO;
	put_macros(c, MILTER_STAGE_DATA, fn, arg);
	if (!milter_sends(&c->agreed, SMFIC_DATA))
		return MILTER_STEP_GO;
	milter_put_cmd(&c->out, SMFIC_DATA);
	return sent(c, SMFIC_DATA);
}

enum milter_step
milter_conv_header(struct milter_conv *c, const char *name, const char *value, size_t vlen)
{
	char *v;
	size_t n = 0, i = 0;

	if (!takes(c, SMFIC_HEADER, 1) || !milter_sends(&c->agreed, SMFIC_HEADER))
		return MILTER_STEP_GO;
	/* Sendmail's form: one leading space eaten (unless HDR_LEADSPC), folds as "\n". */
	if (!(c->agreed.protocol & SMFIP_HDR_LEADSPC) && vlen > 0 && value[0] == ' ')
		i = 1;
	if ((v = malloc(vlen + 1)) == NULL) {
		milter_conv_fail(c, "out of memory");
		return MILTER_STEP_GO;
	}
	for (; i < vlen; i++) {
		if (value[i] == '\r' && i + 1 < vlen && value[i + 1] == '\n')
			continue;
		if (value[i] == '\0')
			continue;
		v[n++] = value[i];
	}
	while (n > 0 && v[n - 1] == '\n')
		n--;
	v[n] = '\0';
	milter_put_header(&c->out, name, v);
	free(v);
	return sent(c, SMFIC_HEADER);
}

enum milter_step
milter_conv_eoh(struct milter_conv *c, milter_macro_fn fn, void *arg)
{
	if (!takes(c, SMFIC_EOH, 1))
		return MILTER_STEP_GO;
	put_macros(c, MILTER_STAGE_EOH, fn, arg);
	if (!milter_sends(&c->agreed, SMFIC_EOH))
		return MILTER_STEP_GO;
	milter_put_cmd(&c->out, SMFIC_EOH);
	return sent(c, SMFIC_EOH);
}

enum milter_step
milter_conv_body(struct milter_conv *c, const void *data, size_t len)
{
	if (!takes(c, SMFIC_BODY, 1) || c->skip_body || !milter_sends(&c->agreed, SMFIC_BODY) ||
	    len == 0)
		return MILTER_STEP_GO;
	if (milter_put_body(&c->out, data, len) != 0) {
		milter_conv_fail(c, "a body chunk larger than the protocol allows (imsd bug)");
		return MILTER_STEP_GO;
	}
	return sent(c, SMFIC_BODY);
}

enum milter_step
milter_conv_eom(struct milter_conv *c, milter_macro_fn fn, void *arg)
{
	if (!takes(c, SMFIC_BODYEOB, 1)) {
		if (c->state == MC_ACCEPT_MSG && c->await == 0) {
			c->state = MC_READY;
			c->in_message = 0;
		}
		return MILTER_STEP_GO;
	}
	put_macros(c, MILTER_STAGE_EOM, fn, arg);
	milter_put_cmd(&c->out, SMFIC_BODYEOB);
	c->await = SMFIC_BODYEOB;
	return MILTER_STEP_WAIT;
}

void
milter_conv_abort(struct milter_conv *c)
{
	if (!milter_conv_active(c) || !c->in_message)
		return;
	if (c->await != 0) {
		milter_conv_fail(c, "the transaction ended while an answer was due");
		return;
	}
	milter_put_cmd(&c->out, SMFIC_ABORT);
	c->in_message = 0;
	c->skip_body = 0;
	c->quarantine = 0;
	c->state = MC_READY;
}

void
milter_conv_quit(struct milter_conv *c)
{
	if (c->state == MC_READY || c->state == MC_ACCEPT_MSG || c->state == MC_DONE_CONN) {
		if (c->await == 0)
			milter_put_cmd(&c->out, SMFIC_QUIT);
		c->state = MC_CLOSED;
	}
}
