/*
 * policyd — the policy delegation codec and the action table (contract in policyd.h).
 *
 * Reply codes and default texts follow Postfix's defaults for access(5) results:
 * REJECT 554 5.7.1, DEFER and DEFER_IF_* 450 4.7.1, "Access denied" when no text is given.
 * A 4NN/5NN result without an enhanced code gets X.7.1 of its class.
 */
#include <stdio.h>
#include <string.h>

#include "proto/policyd.h"

#define REJECT_CODE	554
#define DEFER_CODE	450
#define DEFAULT_TEXT	"Access denied"

int
policyd_put_attr(struct sbuf *b, const char *name, const char *value)
{
	if (name[0] == '\0' || strpbrk(name, "=\r\n") != NULL)
		return -1;
	sbuf_puts(b, name);
	sbuf_add(b, "=", 1);
	for (const char *p = value; *p; p++) {
		const char *run = p;

		while (*p && *p != '\r' && *p != '\n')
			p++;
		sbuf_add(b, run, (size_t)(p - run));
		if (*p == '\0')
			break;
		sbuf_add(b, "?", 1);
	}
	sbuf_add(b, "\n", 1);
	return 0;
}

void
policyd_put_num(struct sbuf *b, const char *name, unsigned long long n)
{
	sbuf_printf(b, "%s=%llu\n", name, n);
}

void
policyd_put_end(struct sbuf *b)
{
	sbuf_add(b, "\n", 1);
}

int
policyd_reply_parse(const char *buf, size_t len, char action[POLICYD_ACTION_MAX],
    size_t *used, const char **why)
{
	size_t pos = 0;
	int have = 0;

	*used = 0;
	for (;;) {
		const char *line = buf + pos, *nl, *eq;
		size_t ll;

		if (pos >= len)
			goto more;
		nl = memchr(line, '\n', len - pos);
		if (nl == NULL) {
			if (len - pos > POLICYD_LINE_MAX + 1) {
				*why = "reply line too long";
				return -1;
			}
			goto more;
		}
		ll = (size_t)(nl - line);
		pos += ll + 1;
		if (pos > POLICYD_REPLY_MAX) {
			*why = "reply too long";
			return -1;
		}
		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (ll > POLICYD_LINE_MAX) {
			*why = "reply line too long";
			return -1;
		}
		if (ll == 0) {
			if (!have) {
				*why = "reply without an action";
				return -1;
			}
			*used = pos;
			return 1;
		}
		eq = memchr(line, '=', ll);
		if (eq == NULL || eq == line) {
			*why = "reply line is not name=value";
			return -1;
		}
		if (!have && (size_t)(eq - line) == 6 && memcmp(line, "action", 6) == 0) {
			size_t vl = ll - 7;

			for (size_t i = 0; i < vl; i++) {
				unsigned char c = (unsigned char)eq[1 + i];

				if (c < 0x20 && c != '\t') {
					*why = "action with a control byte";
					return -1;
				}
			}
			memcpy(action, eq + 1, vl);
			action[vl] = '\0';
			have = 1;
		}
	}
more:
	if (len > POLICYD_REPLY_MAX) {
		*why = "reply too long";
		return -1;
	}
	return 0;
}

static int
c_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int
c_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Does word (case-insensitive) stand at the start of s, followed by a blank or the end?
 * Then *rest is the text after the blanks. */
static int
word(const char *s, const char *w, const char **rest)
{
	size_t n = strlen(w);

	for (size_t i = 0; i < n; i++)
		if (c_lower((unsigned char)s[i]) != w[i])
			return 0;
	if (s[n] != '\0' && s[n] != ' ' && s[n] != '\t')
		return 0;
	s += n;
	while (*s == ' ' || *s == '\t')
		s++;
	*rest = s;
	return 1;
}

/* Copy text into v->text: printable ASCII and TAB kept, other bytes '?', trailing blanks
 * dropped, cut to fit. */
static void
set_text(struct policyd_verdict *v, const char *s)
{
	size_t n = 0;

	for (; *s && n < sizeof v->text - 1; s++) {
		unsigned char c = (unsigned char)*s;

		v->text[n++] = (c == '\t' || (c >= 0x20 && c < 0x7f)) ? (char)c : '?';
	}
	while (n > 0 && (v->text[n - 1] == ' ' || v->text[n - 1] == '\t'))
		n--;
	v->text[n] = '\0';
}

/* Length of an enhanced status code of class cls at s followed by a blank or the end;
 * 0 when there is none. */
static size_t
enh_len(const char *s, char cls)
{
	size_t i = 2;

	if (s[0] != cls || s[1] != '.')
		return 0;
	for (int part = 0; part < 2; part++) {
		size_t k;

		for (k = 0; k < 3 && c_digit((unsigned char)s[i]); k++)
			i++;
		if (k == 0)
			return 0;
		if (part == 0) {
			if (s[i] != '.')
				return 0;
			i++;
		}
	}
	return (s[i] == '\0' || s[i] == ' ' || s[i] == '\t') ? i : 0;
}

/* A refusal: code, an enhanced code from text or the class default, then the text. */
static void
refuse(struct policyd_verdict *v, enum policyd_kind kind, int code, const char *text)
{
	char cls = (char)('0' + code / 100);
	size_t e = enh_len(text, cls);

	v->kind = kind;
	v->code = code;
	if (e > 0) {
		memcpy(v->enh, text, e);
		v->enh[e] = '\0';
		text += e;
		while (*text == ' ' || *text == '\t')
			text++;
	} else
		snprintf(v->enh, sizeof v->enh, "%c.7.1", cls);
	set_text(v, *text ? text : DEFAULT_TEXT);
	v->disconnect = code == 421 || code == 521;
}

/* A header field "Name: value": a field name (printable ASCII but ':') then ':'. */
static int
header_ok(const char *s)
{
	const char *p = s;

	while ((unsigned char)*p > 32 && (unsigned char)*p < 127 && *p != ':')
		p++;
	return p > s && *p == ':';
}

int
policyd_action_parse(const char *action, struct policyd_verdict *v, const char **why)
{
	const char *a = action, *rest;
	int alldig = 1;

	memset(v, 0, sizeof *v);
	while (*a == ' ' || *a == '\t')
		a++;
	for (const char *p = a; *p; p++)
		if (!c_digit((unsigned char)*p))
			alldig = 0;
	if (*a != '\0' && alldig) {
		v->kind = POLICYD_OK;	/* access(5): an all-numerical result is OK */
		return 0;
	}
	if (word(a, "ok", &rest) || word(a, "permit", &rest)) {
		v->kind = POLICYD_OK;
		return 0;
	}
	if (word(a, "dunno", &rest)) {
		v->kind = POLICYD_DUNNO;
		return 0;
	}
	if (word(a, "reject", &rest)) {
		refuse(v, POLICYD_REJECT, REJECT_CODE, rest);
		return 0;
	}
	if (word(a, "defer", &rest)) {
		refuse(v, POLICYD_REJECT, DEFER_CODE, rest);
		return 0;
	}
	if (word(a, "defer_if_permit", &rest)) {
		refuse(v, POLICYD_DEFER_IF_PERMIT, DEFER_CODE, rest);
		return 0;
	}
	if (word(a, "defer_if_reject", &rest)) {
		refuse(v, POLICYD_DEFER_IF_REJECT, DEFER_CODE, rest);
		return 0;
	}
	if ((a[0] == '4' || a[0] == '5') && c_digit((unsigned char)a[1]) &&
	    c_digit((unsigned char)a[2]) && (a[3] == ' ' || a[3] == '\t' || a[3] == '\0')) {
		rest = a + 3;
		while (*rest == ' ' || *rest == '\t')
			rest++;
		refuse(v, POLICYD_REJECT, (a[0] - '0') * 100 + (a[1] - '0') * 10 + (a[2] - '0'),
		    rest);
		return 0;
	}
	if (word(a, "discard", &rest)) {
		v->kind = POLICYD_DISCARD;
		set_text(v, rest);
		return 0;
	}
	if (word(a, "hold", &rest)) {
		v->kind = POLICYD_HOLD;
		set_text(v, rest);
		return 0;
	}
	if (word(a, "prepend", &rest)) {
		if (!header_ok(rest)) {
			v->kind = POLICYD_ERROR;
			set_text(v, a);
			*why = "PREPEND without a header field (PREPEND Name: value)";
			return -1;
		}
		v->kind = POLICYD_PREPEND;
		set_text(v, rest);
		return 0;
	}
	if (word(a, "redirect", &rest) || word(a, "bcc", &rest)) {
		int redirect = c_lower((unsigned char)a[0]) == 'r';

		if (*rest == '\0' || strchr(rest, '@') == NULL || strpbrk(rest, " \t<>") != NULL) {
			v->kind = POLICYD_ERROR;
			set_text(v, a);
			*why = redirect ? "REDIRECT without an address" : "BCC without an address";
			return -1;
		}
		v->kind = redirect ? POLICYD_REDIRECT : POLICYD_BCC;
		set_text(v, rest);
		return 0;
	}
	if (word(a, "info", &rest)) {
		v->kind = POLICYD_INFO;
		set_text(v, rest);
		return 0;
	}
	if (word(a, "warn", &rest)) {
		v->kind = POLICYD_WARN;
		set_text(v, rest);
		return 0;
	}
	v->kind = POLICYD_ERROR;
	set_text(v, a);
	*why = "an action imsd does not carry out";
	return -1;
}

const char *
policyd_kind_name(enum policyd_kind k)
{
	static const char *const names[] = {
		[POLICYD_DUNNO] = "dunno", [POLICYD_OK] = "ok", [POLICYD_REJECT] = "reject",
		[POLICYD_DEFER_IF_PERMIT] = "defer_if_permit",
		[POLICYD_DEFER_IF_REJECT] = "defer_if_reject", [POLICYD_DISCARD] = "discard",
		[POLICYD_HOLD] = "hold", [POLICYD_PREPEND] = "prepend",
		[POLICYD_REDIRECT] = "redirect", [POLICYD_BCC] = "bcc", [POLICYD_INFO] = "info",
		[POLICYD_WARN] = "warn", [POLICYD_ERROR] = "error",
	};

	return (unsigned)k <= POLICYD_ERROR ? names[k] : "?";
}

void
policyd_request_put(struct sbuf *b, const struct policyd_request *r, int key)
{
	static const char *const empty = "";
#define S(name, v)	policyd_put_attr(b, name, (v) ? (v) : empty)

	S("request", "smtpd_access_policy");
	S("protocol_state", r->protocol_state);
	S("protocol_name", r->protocol_name);
	S("helo_name", r->helo_name);
	if (!key)
		S("queue_id", r->queue_id);
	S("sender", r->sender);
	S("recipient", r->recipient);
	policyd_put_num(b, "recipient_count", r->recipient_count);
	S("client_address", r->client_address);
	S("client_name", r->client_name);
	S("reverse_client_name", r->reverse_client_name);
	if (!key) {
		S("instance", r->instance);
		policyd_put_num(b, "client_port", r->client_port);
	}
	S("server_address", r->server_address);
	policyd_put_num(b, "server_port", r->server_port);
	S("sasl_method", r->sasl_method);
	S("sasl_username", r->sasl_username);
	S("sasl_sender", r->sasl_sender);
	policyd_put_num(b, "size", r->size);
	S("ccert_subject", r->ccert_subject);
	S("ccert_issuer", r->ccert_issuer);
	S("ccert_fingerprint", r->ccert_fingerprint);
	S("ccert_pubkey_fingerprint", r->ccert_pubkey_fingerprint);
	S("encryption_protocol", r->encryption_protocol);
	S("encryption_cipher", r->encryption_cipher);
	policyd_put_num(b, "encryption_keysize", r->encryption_keysize);
	S("etrn_domain", NULL);
	S("stress", NULL);
	if (r->policy_context)
		S("policy_context", r->policy_context);
#undef S
	policyd_put_end(b);
}

const char *
policyd_state_name(enum policyd_stage st, int esmtp)
{
	switch (st) {
	case POLICYD_AT_CONNECT:	return "CONNECT";
	case POLICYD_AT_HELO:		return esmtp ? "EHLO" : "HELO";
	case POLICYD_AT_MAIL:		return "MAIL";
	case POLICYD_AT_RCPT:		return "RCPT";
	case POLICYD_AT_DATA:		return "DATA";
	default:			return "END-OF-MESSAGE";
	}
}

void
policyd_format_refusal(const struct policyd_verdict *v, enum policyd_stage st,
    const char *what, char out[POLICYD_REPLY_LINE_MAX])
{
	static const char *const says[] = {
		[POLICYD_AT_CONNECT] = "Client host rejected",
		[POLICYD_AT_HELO] = "Helo command rejected",
		[POLICYD_AT_MAIL] = "Sender address rejected",
		[POLICYD_AT_RCPT] = "Recipient address rejected",
		[POLICYD_AT_DATA] = "Data command rejected",
		[POLICYD_AT_EOM] = "End-of-data rejected",
	};
	char who[300] = "";
	int code = v->code >= 400 && v->code <= 599 ? v->code : 451;
	const char *enh = v->enh[0] ? v->enh : (code >= 500 ? "5.7.1" : "4.7.1");

	if (what != NULL) {
		size_t n = 0;

		/* printable ASCII only, and short: it came from the client */
		for (const char *p = what; *p && n < 200; p++)
			who[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
		who[n] = '\0';
	}
	if (st == POLICYD_AT_MAIL || st == POLICYD_AT_RCPT)
		snprintf(out, POLICYD_REPLY_LINE_MAX, "%d %s <%s>: %s: %s", code, enh, who,
		    says[st], v->text);
	else if (what != NULL && (st == POLICYD_AT_HELO || st == POLICYD_AT_CONNECT))
		snprintf(out, POLICYD_REPLY_LINE_MAX, "%d %s <%s>: %s: %s", code, enh, who,
		    says[st], v->text);
	else
		snprintf(out, POLICYD_REPLY_LINE_MAX, "%d %s %s: %s", code, enh,
		    says[(unsigned)st <= POLICYD_AT_EOM ? st : POLICYD_AT_EOM], v->text);
}

void
policyd_chain_init(struct policyd_chain *c)
{
	memset(c, 0, sizeof *c);
}

static int
chain_refuse(struct policyd_chain *c, const struct policyd_verdict *v)
{
	c->done = 1;
	c->refused = 1;
	c->refusal = *v;
	/* DEFER_IF_REJECT: a refusal after it becomes its temporary one */
	if (c->dir)
		c->refusal = c->dir_v;
	return 1;
}

int
policyd_chain_add(struct policyd_chain *c, const struct policyd_verdict *v)
{
	if (c->done)
		return 1;
	switch (v->kind) {
	case POLICYD_OK:
		c->done = 1;
		return 1;
	case POLICYD_REJECT:
		return chain_refuse(c, v);
	case POLICYD_DEFER_IF_PERMIT:
		if (!c->dip) {
			c->dip = 1;
			c->dip_v = *v;
		}
		return 0;
	case POLICYD_DEFER_IF_REJECT:
		if (!c->dir) {
			c->dir = 1;
			c->dir_v = *v;
		}
		return 0;
	case POLICYD_PREPEND:
		if (c->nprepend < POLICYD_PREPEND_MAX)
			memcpy(c->prepend[c->nprepend++], v->text, sizeof v->text);
		return 0;
	default:		/* DUNNO, INFO, WARN: the next one decides */
		return 0;
	}
}

int
policyd_chain_default(struct policyd_chain *c, int action)
{
	struct policyd_verdict v;

	memset(&v, 0, sizeof v);
	if (action == 1)
		return policyd_chain_add(c, &v);	/* accept: DUNNO */
	v.kind = POLICYD_REJECT;
	if (action == 2) {
		v.code = 550;
		snprintf(v.enh, sizeof v.enh, "5.7.1");
		snprintf(v.text, sizeof v.text, "Policy service unavailable");
	} else {
		v.code = 451;
		snprintf(v.enh, sizeof v.enh, "4.3.5");
		snprintf(v.text, sizeof v.text, "Server configuration problem");
	}
	return chain_refuse(c, &v);
}

int
policyd_chain_result(const struct policyd_chain *c, enum policyd_stage st, const char *what,
    char out[POLICYD_REPLY_LINE_MAX])
{
	const struct policyd_verdict *v = NULL;

	if (c->refused)
		v = &c->refusal;
	else if (c->dip)
		v = &c->dip_v;		/* not refused, so permitted: the defer applies */
	if (v == NULL)
		return 0;
	policyd_format_refusal(v, st, what, out);
	return 1;
}
