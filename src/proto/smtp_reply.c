/*
 * smtp_reply — SMTP reply parser and EHLO capabilities (contract in smtp_reply.h).
 *
 * Bytes are collected into p->line until LF; a CR right before the LF is dropped. A line
 * is then checked (code, separator) and its text appended to p->cur; the last line
 * (separator ' ' or none) completes the reply, which is copied to *out and the state
 * reset for the next one. Bytes are classified by hand (no <ctype.h>, no locale).
 */
#include <string.h>

#include "proto/smtp_reply.h"

static int
c_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
c_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Reset the per-reply part of the state. */
static void
reply_reset(struct smtp_reply_parser *p)
{
	p->textlen = 0;
	p->cur.code = 0;
	p->cur.enh[0] = '\0';
	p->cur.text[0] = '\0';
	p->cur.nlines = 0;
}

void
smtp_reply_init(struct smtp_reply_parser *p)
{
	p->failed = 0;
	p->linelen = 0;
	reply_reset(p);
}

/*
 * Length of an RFC 3463 status code "c.sss.ddd" at s (n bytes) whose class is cls,
 * followed by ' ' or the end; 0 when there is none.
 */
static size_t
enh_len(const char *s, size_t n, char cls)
{
	size_t i = 0, k;
	int part;

	/* RFC 3463 §3.1: the class is 2, 4 or 5; a 3xx reply has no enhanced code */
	if (n < 5 || s[0] != cls || (cls != '2' && cls != '4' && cls != '5') || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (k = 0; k < 3 && i < n && c_digit((unsigned char)s[i]); k++)
			i++;
		if (k == 0)
			return 0;
		if (part == 0) {
			if (i >= n || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < n && s[i] != ' ')
		return 0;
	return i;
}

/* Append text (n bytes) to the reply, '\n' first unless it is the first line; cut at the cap. */
static void
text_append(struct smtp_reply_parser *p, const char *s, size_t n)
{
	size_t room, i;

	if (p->cur.nlines > 1 && p->textlen < SMTP_REPLY_TEXT_MAX - 1)
		p->cur.text[p->textlen++] = '\n';
	room = SMTP_REPLY_TEXT_MAX - 1 - p->textlen;
	if (n > room)
		n = room;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		p->cur.text[p->textlen++] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
	}
	p->cur.text[p->textlen] = '\0';
}

/* Handle one complete line (without its ending): 1 reply complete, 0 more lines, -1 error. */
static int
line_done(struct smtp_reply_parser *p, const char *s, size_t n)
{
	int code, last;
	size_t off, el;

	if (n < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '5' ||
	    !c_digit((unsigned char)s[2]))
		return -1;
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (n == 3)
		last = 1;
	else if (s[3] == ' ')
		last = 1;
	else if (s[3] == '-')
		last = 0;
	else
		return -1;
	if (p->cur.nlines > 0 && code != p->cur.code)
		return -1;
	if (p->cur.nlines >= SMTP_REPLY_LINES_MAX)
		return -1;
	p->cur.code = code;
	p->cur.nlines++;
	off = n > 3 ? 4 : 3;
	text_append(p, s + off, n - off);
	if (!last)
		return 0;
	el = enh_len(s + off, n - off, s[0]);
	if (el > 0 && el < SMTP_ENH_MAX) {
		memcpy(p->cur.enh, s + off, el);
		p->cur.enh[el] = '\0';
	}
	return 1;
}

int
smtp_reply_feed(struct smtp_reply_parser *p, const char *buf, size_t len, size_t *used,
    struct smtp_reply *out)
{
	size_t i;
	int r;

	*used = 0;
	if (p->failed)
		return -1;
	for (i = 0; i < len; i++) {
		char c = buf[i];

		if (c != '\n') {
			/* room for LINE_MAX bytes plus one CR that must be followed by LF */
			if (p->linelen > SMTP_REPLY_LINE_MAX ||
			    (p->linelen == SMTP_REPLY_LINE_MAX && c != '\r')) {
				p->failed = 1;
				*used = i;
				return -1;
			}
			p->line[p->linelen++] = c;
			continue;
		}
		if (p->linelen > 0 && p->line[p->linelen - 1] == '\r')
			p->linelen--;
		r = line_done(p, p->line, p->linelen);
		p->linelen = 0;
		if (r < 0) {
			p->failed = 1;
			*used = i;
			return -1;
		}
		if (r > 0) {
			*out = p->cur;
			reply_reset(p);
			*used = i + 1;
			return 1;
		}
	}
	*used = len;
	return 0;
}

/* Does the keyword at s (n bytes) equal name (lower case), ignoring case? */
static int
kw_is(const char *s, size_t n, const char *name)
{
	size_t i;

	if (strlen(name) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (c_lower((unsigned char)s[i]) != name[i])
			return 0;
	return 1;
}

/* The SIZE argument at s (n bytes, after the keyword); 0 when absent or not a number. */
static unsigned long long
size_arg(const char *s, size_t n)
{
	unsigned long long v = 0;
	size_t i = 0;

	while (i < n && s[i] == ' ')
		i++;
	if (i == n || !c_digit((unsigned char)s[i]))
		return 0;
	for (; i < n && c_digit((unsigned char)s[i]); i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (~0ULL - d) / 10)
			v = ~0ULL;
		else
			v = v * 10 + d;
	}
	if (i < n && s[i] != ' ')
		return 0;
	return v;
}

void
smtp_caps_parse(const struct smtp_reply *r, struct smtp_caps *caps)
{
	const char *s, *nl, *end;
	size_t n, k;

	memset(caps, 0, sizeof(*caps));
	if (r->code != 250)
		return;
	s = strchr(r->text, '\n');	/* skip the greeting line */
	while (s != NULL) {
		s++;
		nl = strchr(s, '\n');
		end = nl ? nl : s + strlen(s);
		n = (size_t)(end - s);
		for (k = 0; k < n && s[k] != ' ' && s[k] != '='; k++)
			;
		if (kw_is(s, k, "pipelining"))
			caps->pipelining = 1;
		else if (kw_is(s, k, "starttls"))
			caps->starttls = 1;
		else if (kw_is(s, k, "8bitmime"))
			caps->eightbitmime = 1;
		else if (kw_is(s, k, "smtputf8"))
			caps->smtputf8 = 1;
		else if (kw_is(s, k, "chunking"))
			caps->chunking = 1;
		else if (kw_is(s, k, "requiretls"))
			caps->requiretls = 1;
		else if (kw_is(s, k, "binarymime"))
			caps->binarymime = 1;
		else if (kw_is(s, k, "enhancedstatuscodes"))
			caps->enhancedstatuscodes = 1;
		else if (kw_is(s, k, "dsn"))
			caps->dsn = 1;
		else if (kw_is(s, k, "size")) {
			caps->size_known = 1;
			caps->size = size_arg(s + k, n - k);
		}
		s = nl;
	}
}

void
smtp_reply_status(const struct smtp_reply *r, char out[SMTP_ENH_MAX])
{
	const char *d;

	if (r->enh[0] != '\0' && strlen(r->enh) < SMTP_ENH_MAX) {
		memcpy(out, r->enh, strlen(r->enh) + 1);
		return;
	}
	if (r->code >= 200 && r->code < 400)
		d = "2.0.0";
	else if (r->code >= 500 && r->code < 600)
		d = "5.0.0";
	else
		d = "4.0.0";
	memcpy(out, d, 6);
}
