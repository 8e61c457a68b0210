/*
 * dovecot_auth — Dovecot's authentication protocol, client side (contract in dovecot_auth.h).
 */
#include "proto/dovecot_auth.h"

#include <stdio.h>
#include <string.h>

#include <strings.h>

#define ESC	'\001'

/* Tab-unescape; see dovecot_auth.h. */
int
dva_unescape(const char *s, size_t len, char *buf, size_t cap)
{
	size_t o = 0;

	if (cap == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == ESC) {
			if (++i == len)
				return -1;
			switch (s[i]) {
			case '0': return -1;	/* a NUL: no place in a C string */
			case '1': c = ESC; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'n': case 'l': c = '\n'; break;
			default: c = s[i]; break;
			}
		}
		if (c == '\0')
			return -1;
		if (o + 1 >= cap)
			return -1;
		buf[o++] = c;
	}
	buf[o] = '\0';
	return (int)o;
}

/* Tab-escape; see dovecot_auth.h. */
int
dva_escape(const char *s, char *buf, size_t cap)
{
	size_t o = 0;

	if (cap == 0)
		return -1;
	for (; *s != '\0'; s++) {
		char e = 0;

		switch (*s) {
		case ESC: e = '1'; break;
		case '\t': e = 't'; break;
		case '\r': e = 'r'; break;
		case '\n': e = 'n'; break;
		}
		if (o + (e ? 2 : 1) >= cap)
			return -1;
		if (e) {
			buf[o++] = ESC;
			buf[o++] = e;
		} else
			buf[o++] = *s;
	}
	buf[o] = '\0';
	return (int)o;
}

/* A field of a line: [p, p+len). */
struct field {
	const char *p;
	size_t len;
};

#define FIELDS_MAX	64	/* more than any reply has; the rest are ignored */

/* Split line at TABs into f (at most FIELDS_MAX); the count. */
static size_t
split(const char *line, size_t len, struct field *f)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= len && n < FIELDS_MAX; i++)
		if (i == len || line[i] == '\t') {
			f[n].p = line + start;
			f[n].len = i - start;
			n++;
			start = i + 1;
		}
	return n;
}

static int
field_is(const struct field *f, const char *word)
{
	size_t wl = strlen(word);

	return f->len == wl && memcmp(f->p, word, wl) == 0;
}

/* A decimal number of 1 to 10 digits that fits max. -1 when not. */
static int
field_num(const struct field *f, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (f->len == 0 || f->len > 10)
		return -1;
	for (size_t i = 0; i < f->len; i++) {
		if (f->p[i] < '0' || f->p[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(f->p[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* When f is "name=VALUE": 1 with *val the value. */
static int
field_param(const struct field *f, const char *name, struct field *val)
{
	size_t nl = strlen(name);

	if (f->len <= nl || memcmp(f->p, name, nl) != 0 || f->p[nl] != '=')
		return 0;
	val->p = f->p + nl + 1;
	val->len = f->len - nl - 1;
	return 1;
}

/* A SASL mechanism name (RFC 4422 §3.1: upper-case letters, digits, '-', '_'; at most 20);
 * Dovecot sends them upper-case, lower case is tolerated and upper-cased. */
static int
mech_name(const char *p, size_t len, char *out)
{
	if (len == 0 || len >= DVA_MECH_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return -1;
		out[i] = c;
	}
	out[len] = '\0';
	return 0;
}

/* A user name: unescaped, no control characters. */
static int
user_value(const struct field *v, char *out)
{
	int n = dva_unescape(v->p, v->len, out, DVA_USER_MAX);

	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			return -1;
	return 0;
}

/* A reason: unescaped, cut to fit, control characters made spaces (it is logged). */
static void
reason_value(const struct field *v, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < v->len && o + 1 < DVA_REASON_MAX; i++) {
		unsigned char c = (unsigned char)v->p[i];

		if (c == ESC && i + 1 < v->len) {
			c = (unsigned char)v->p[++i];
			if (c == '0' || c == '1' || c == 't' || c == 'r' || c == 'n' || c == 'l')
				c = ' ';
		}
		out[o++] = (char)(c < 0x20 || c == 0x7f ? ' ' : c);
	}
	out[o] = '\0';
}

static int
b64_chars(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '+' || c == '/' || c == '='))
			return 0;
	}
	return 1;
}

/* Parse one server line; see dovecot_auth.h. */
int
dva_parse(const char *line, size_t len, struct dva_msg *m)
{
	struct field f[FIELDS_MAX], v;
	size_t n;

	memset(m, 0, sizeof(*m));
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > DVA_LINE_MAX || memchr(line, '\0', len) != NULL)
		return -1;
	n = split(line, len, f);
	if (field_is(&f[0], "VERSION")) {
		unsigned long a, b;

		if (n < 3 || field_num(&f[1], 1000000, &a) < 0 || field_num(&f[2], 1000000, &b) < 0)
			return -1;
		m->kind = DVA_VERSION;
		m->major = (unsigned)a;
		m->minor = (unsigned)b;
		return 0;
	}
	if (field_is(&f[0], "MECH")) {
		if (n < 2 || mech_name(f[1].p, f[1].len, m->mech) < 0)
			return -1;
		m->kind = DVA_MECH;
		for (size_t i = 2; i < n; i++) {
			if (field_is(&f[i], "plaintext"))
				m->mech_flags |= DVA_MECH_PLAINTEXT;
			else if (field_is(&f[i], "anonymous"))
				m->mech_flags |= DVA_MECH_ANONYMOUS;
			else if (field_is(&f[i], "private"))
				m->mech_flags |= DVA_MECH_PRIVATE;
		}
		return 0;
	}
	if (field_is(&f[0], "SPID") || field_is(&f[0], "CUID")) {
		m->kind = f[0].p[0] == 'S' ? DVA_SPID : DVA_CUID;
		if (n < 2 || field_num(&f[1], 0xffffffffUL, &m->id) < 0)
			return -1;
		return 0;
	}
	if (field_is(&f[0], "COOKIE")) {
		m->kind = DVA_COOKIE;
		return n < 2 ? -1 : 0;
	}
	if (field_is(&f[0], "DONE")) {
		m->kind = DVA_DONE;
		return 0;
	}
	if (field_is(&f[0], "OK") || field_is(&f[0], "FAIL") || field_is(&f[0], "CONT")) {
		m->kind = f[0].p[0] == 'O' ? DVA_OK : f[0].p[0] == 'F' ? DVA_FAIL : DVA_CONT;
		if (n < 2 || field_num(&f[1], 0xffffffffUL, &m->id) < 0 || m->id == 0)
			return -1;
		if (m->kind == DVA_CONT) {
			/* the challenge is the whole rest of the line (no TAB in base64) */
			if (n != 3 || !b64_chars(f[2].p, f[2].len))
				return -1;
			m->data = f[2].p;
			m->datalen = f[2].len;
			return 0;
		}
		for (size_t i = 2; i < n; i++) {
			if (field_param(&f[i], "user", &v)) {
				if (user_value(&v, m->user) < 0)
					return -1;
			} else if (m->kind == DVA_FAIL && field_param(&f[i], "reason", &v))
				reason_value(&v, m->reason);
			else if (m->kind == DVA_FAIL && field_is(&f[i], "temp"))
				m->temp = 1;
			else if (m->kind == DVA_FAIL && field_param(&f[i], "code", &v)) {
				if (v.len == 9 && memcmp(v.p, "temp_fail", 9) == 0)
					m->temp = 1;
				else if ((v.len == 13 && memcmp(v.p, "user_disabled", 13) == 0) ||
				    (v.len == 12 && memcmp(v.p, "pass_expired", 12) == 0))
					m->disabled = 1;
			}
		}
		return 0;
	}
	if (f[0].len == 0)
		return -1;
	m->kind = DVA_OTHER;
	return 0;
}

void
dva_handshake_init(struct dva_handshake *h)
{
	memset(h, 0, sizeof(*h));
}

/* Take one handshake message; see dovecot_auth.h. */
int
dva_handshake_feed(struct dva_handshake *h, const struct dva_msg *m)
{
	if (h->done)
		return DVA_HS_ERROR;
	if (!h->version_seen) {
		if (m->kind != DVA_VERSION || m->major != DVA_MAJOR)
			return DVA_HS_ERROR;
		h->version_seen = 1;
		h->major = m->major;
		h->minor = m->minor;
		return DVA_HS_MORE;
	}
	switch (m->kind) {
	case DVA_VERSION:
		return DVA_HS_ERROR;
	case DVA_MECH:
		if ((m->mech_flags & DVA_MECH_PRIVATE) || h->nmechs >= DVA_MECHS_MAX ||
		    dva_handshake_has(h, m->mech))
			return DVA_HS_MORE;
		memcpy(h->mechs[h->nmechs], m->mech, sizeof(m->mech));
		h->mech_flags[h->nmechs] = m->mech_flags;
		h->nmechs++;
		return DVA_HS_MORE;
	case DVA_SPID:
		h->spid = m->id;
		return DVA_HS_MORE;
	case DVA_DONE:
		h->done = 1;
		return DVA_HS_DONE;
	case DVA_OK: case DVA_FAIL: case DVA_CONT:
		return DVA_HS_ERROR;
	default:
		return DVA_HS_MORE;
	}
}

int
dva_handshake_has(const struct dva_handshake *h, const char *name)
{
	for (unsigned i = 0; i < h->nmechs; i++)
		if (strcasecmp(h->mechs[i], name) == 0)
			return 1;
	return 0;
}

int
dva_hello(char *buf, size_t cap, unsigned long pid)
{
	int n = snprintf(buf, cap, "VERSION\t%d\t%d\nCPID\t%lu\n", DVA_MAJOR, DVA_MINOR, pid);

	return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* Append "\tname=ESCAPED(value)" (name alone when value is NULL) at *o. -1: no room. */
static int
put_param(char *buf, size_t cap, size_t *o, const char *name, const char *value)
{
	size_t nl = strlen(name);
	int n;

	if (*o + 1 + nl + 1 >= cap)
		return -1;
	buf[(*o)++] = '\t';
	memcpy(buf + *o, name, nl);
	*o += nl;
	if (value == NULL) {
		buf[*o] = '\0';
		return 0;
	}
	buf[(*o)++] = '=';
	if ((n = dva_escape(value, buf + *o, cap - *o)) < 0)
		return -1;
	*o += (size_t)n;
	return 0;
}

/* The AUTH line; see dovecot_auth.h. */
int
dva_auth_line(char *buf, size_t cap, const struct dva_auth_req *req)
{
	char mech[DVA_MECH_MAX], num[16];
	size_t o;
	int n;

	if (req->id == 0 || req->id > 0xffffffffUL || req->mech == NULL ||
	    mech_name(req->mech, strlen(req->mech), mech) < 0 || req->service == NULL)
		return -1;
	n = snprintf(buf, cap, "AUTH\t%lu\t%s", req->id, mech);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	o = (size_t)n;
	if (put_param(buf, cap, &o, "service", req->service) < 0)
		return -1;
	if (req->session != NULL && put_param(buf, cap, &o, "session", req->session) < 0)
		return -1;
	if (req->lip != NULL && put_param(buf, cap, &o, "lip", req->lip) < 0)
		return -1;
	if (req->rip != NULL && put_param(buf, cap, &o, "rip", req->rip) < 0)
		return -1;
	if (req->lport) {
		snprintf(num, sizeof(num), "%u", req->lport);
		if (put_param(buf, cap, &o, "lport", num) < 0)
			return -1;
	}
	if (req->rport) {
		snprintf(num, sizeof(num), "%u", req->rport);
		if (put_param(buf, cap, &o, "rport", num) < 0)
			return -1;
	}
	if (req->secured && put_param(buf, cap, &o, "secured", NULL) < 0)
		return -1;
	if (req->no_penalty && put_param(buf, cap, &o, "no-penalty", NULL) < 0)
		return -1;
	if (req->resp != NULL) {
		if (!b64_chars(req->resp, strlen(req->resp)) ||
		    put_param(buf, cap, &o, "resp", req->resp) < 0)
			return -1;
	}
	if (o + 2 > cap)
		return -1;
	buf[o++] = '\n';
	buf[o] = '\0';
	return (int)o;
}

int
dva_cont_line(char *buf, size_t cap, unsigned long id, const char *b64)
{
	int n;

	if (id == 0 || id > 0xffffffffUL || !b64_chars(b64, strlen(b64)))
		return -1;
	n = snprintf(buf, cap, "CONT\t%lu\t%s\n", id, b64);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}
