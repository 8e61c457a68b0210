/*
 * dsn — RFC 3464 delivery status notifications (contract in dsn.h).
 *
 * The three part bodies are built first into growable buffers, then a boundary that
 * occurs in none of them is chosen, then the whole message is assembled. Every line goes
 * through one of two writers: line_field() for one-line fields (sanitised and cut to fit
 * DSN_LINE_MAX) and the original-header copier; fixed text is written as literal lines.
 * Dates are formatted by hand from gmtime_r (no strftime: no locale, no TZ).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/dsn.h"
#include "util/sbuf.h"
#include "util/utf8.h"

#define BOUNDARY_SEED_MAX	40

/* One byte of a one-line field: controls become ' ', DEL and 8-bit become '?'. */
static char
clean_byte(unsigned char c)
{
	if (c < 0x20)
		return ' ';
	if (c >= 0x7f)
		return '?';
	return (char)c;
}

/*
 * Write one line: pre + sanitised val + suf + CRLF, val cut so the line stays within
 * DSN_LINE_MAX octets (pre and suf are our own short literals).
 */
static void
line_field(struct sbuf *b, const char *pre, const char *val, const char *suf)
{
	size_t fixed = strlen(pre) + strlen(suf), n, i;
	char tmp[DSN_LINE_MAX];

	n = strlen(val);
	if (fixed >= DSN_LINE_MAX)
		n = 0;
	else if (n > DSN_LINE_MAX - fixed)
		n = DSN_LINE_MAX - fixed;
	for (i = 0; i < n; i++)
		tmp[i] = clean_byte((unsigned char)val[i]);
	sbuf_puts(b, pre);
	sbuf_add(b, tmp, n);
	sbuf_puts(b, suf);
	sbuf_add(b, "\r\n", 2);
}

static void line_lit(struct sbuf *b, const char *s);

/*
 * line_field for a header that may hold UTF-8 (an SMTPUTF8 notice, RFC 6532 §3.2):
 * well-formed UTF-8 sequences are kept, everything else is sanitised as in line_field; the
 * value is cut only between characters.
 */
static void
line_field_u8(struct sbuf *b, const char *pre, const char *val, const char *suf)
{
	size_t fixed = strlen(pre) + strlen(suf), n = strlen(val), i = 0, o = 0, k;
	size_t room = fixed >= DSN_LINE_MAX ? 0 : DSN_LINE_MAX - fixed;
	char tmp[DSN_LINE_MAX];

	while (i < n) {
		k = utf8_seqlen((const unsigned char *)val + i, n - i);
		if (k == 0)
			k = 1;
		if (o + k > room)
			break;
		if (k == 1)
			tmp[o] = clean_byte((unsigned char)val[i]);
		else
			memcpy(tmp + o, val + i, k);
		o += k;
		i += k;
	}
	sbuf_puts(b, pre);
	sbuf_add(b, tmp, o);
	sbuf_puts(b, suf);
	sbuf_add(b, "\r\n", 2);
}

/*
 * An address field of message/delivery-status: "rfc822; addr" when addr is ASCII, else
 * RFC 6533 §3's "utf-8; " with utf-8-addr-xtext (7-bit: '+', '=', '\\', controls and every
 * non-ASCII character as \x{HEXPOINT}), so the report stays 7-bit and the address is
 * not mangled. An address that is not well-formed UTF-8 (the session refuses those) is
 * written as "rfc822; " with its 8-bit bytes as '?', as before.
 */
static void
addr_field(struct sbuf *b, const char *name, const char *addr)
{
	char tmp[DSN_LINE_MAX + 16];
	size_t n = strlen(addr), i = 0, o, k;

	if (!utf8_has_nonascii(addr) || !utf8_text_ok(addr, n, 0, NULL)) {
		/* ASCII; or not UTF-8 at all (never from the session): sanitised as before */
		snprintf(tmp, sizeof(tmp), "%s: rfc822; ", name);
		line_field(b, tmp, addr, "");
		return;
	}
	o = (size_t)snprintf(tmp, sizeof(tmp), "%s: utf-8; ", name);
	while (i < n && o + 12 < DSN_LINE_MAX) {
		const unsigned char *p = (const unsigned char *)addr + i;
		unsigned long cp;

		k = utf8_seqlen(p, n - i);
		if (k == 0 && p[0] > 0x20 && p[0] < 0x7f && p[0] != '+' && p[0] != '=' &&
		    p[0] != '\\') {
			tmp[o++] = (char)p[0];
			i++;
			continue;
		}
		if (k == 0) {
			cp = p[0];
			k = 1;
		} else {
			cp = p[0] & (k == 2 ? 0x1f : k == 3 ? 0x0f : 0x07);
			for (size_t j = 1; j < k; j++)
				cp = (cp << 6) | (p[j] & 0x3f);
		}
		o += (size_t)snprintf(tmp + o, sizeof(tmp) - o, "\\x{%02lX}", cp);
		i += k;
	}
	tmp[o] = '\0';
	line_lit(b, tmp);
}

/* Write a literal line of our own text. */
static void
line_lit(struct sbuf *b, const char *s)
{
	sbuf_puts(b, s);
	sbuf_add(b, "\r\n", 2);
}

static const char *const wdays[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
	"Aug", "Sep", "Oct", "Nov", "Dec" };

/* RFC 5322 date-time in UTC; a time that cannot be represented as such prints the epoch. */
static void
fmt_date(time_t t, char *out, size_t cap)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < 0 || tm.tm_year > 9999 - 1900) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d +0000", wdays[tm.tm_wday % 7],
	    tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	    tm.tm_sec);
}

static int
c_alnum(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Copy s into out (cap > 0) keeping [A-Za-z0-9._-] and turning anything else into '_'. */
static void
clean_token(const char *s, char *out, size_t cap)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = (c_alnum(c) || c == '.' || c == '-' || c == '_') ? (char)c : '_';
	}
	out[i] = '\0';
}

/* Length of a leading "type;" (atom of letters, digits, '-'), the ';' included; 0 if none. */
static size_t
type_prefix(const char *s)
{
	size_t i;

	for (i = 0; c_alnum((unsigned char)s[i]) || s[i] == '-'; i++)
		;
	return (i > 0 && s[i] == ';') ? i + 1 : 0;
}

/* Skip a leading "type;" and the spaces after it (for the human-readable text). */
static const char *
skip_type(const char *s)
{
	s += type_prefix(s);
	while (*s == ' ')
		s++;
	return s;
}

/* Is s an RFC 3463 status code "c.sss.ddd" with class 2, 4 or 5? */
static int
status_ok(const char *s)
{
	int part, k;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	s += 2;
	for (part = 0; part < 2; part++) {
		for (k = 0; k < 3 && *s >= '0' && *s <= '9'; k++)
			s++;
		if (k == 0 || *s != (part == 0 ? '.' : '\0'))
			return 0;
		if (part == 0)
			s++;
	}
	return 1;
}

static enum dsn_action
rcpt_action(const struct dsn_info *in, const struct dsn_rcpt *r)
{
	return r->has_action ? r->action : in->action;
}

static const char *
default_status(enum dsn_action a)
{
	return a == DSN_FAILED ? "5.0.0" : a == DSN_DELAYED ? "4.0.0" : "2.0.0";
}

static const char *
action_word(enum dsn_action a)
{
	return a == DSN_FAILED ? "failed" : a == DSN_DELAYED ? "delayed" :
	    a == DSN_DELIVERED ? "delivered" : "relayed";
}

/* The human-readable first part. */
static void
build_text(struct sbuf *b, const struct dsn_info *in, const char *arrival)
{
	char tmp[128];
	size_t i;

	line_field(b, "This is the mail delivery system at ", in->hostname, ".");
	line_lit(b, "");
	if (in->action == DSN_FAILED) {
		line_lit(b, "Your message could not be delivered to one or more recipients.");
		line_lit(b, "It is returned to you; delivery will not be attempted again.");
	} else if (in->action == DSN_DELIVERED || in->action == DSN_RELAYED) {
		line_lit(b, "Your message was delivered, as you asked to be told (NOTIFY=SUCCESS).");
		if (in->action == DSN_RELAYED) {
			line_lit(b, "It was handed to a server that does not report deliveries, so");
			line_lit(b, "this is the last report about it you will get.");
		}
	} else {
		line_lit(b, "Your message has not yet been delivered to one or more recipients.");
		line_lit(b, "Delivery is still being attempted; you do not need to send it again.");
		if (in->retry_hours_left > 0) {
			snprintf(tmp, sizeof(tmp), "The mail system will keep trying for up to "
			    "%u more hour%s.", in->retry_hours_left,
			    in->retry_hours_left == 1 ? "" : "s");
			line_lit(b, tmp);
		} else
			line_lit(b, "The mail system will keep trying for a short while longer.");
	}
	line_lit(b, "");
	line_lit(b, "For each recipient, the reason reported:");
	for (i = 0; i < in->nrcpts; i++) {
		const struct dsn_rcpt *r = &in->rcpts[i];
		struct sbuf reason = { 0 };

		if (r->remote_mta != NULL && r->remote_mta[0] != '\0') {
			sbuf_puts(&reason, "host ");
			sbuf_puts(&reason, skip_type(r->remote_mta));
			sbuf_puts(&reason, " said: ");
		}
		if (r->diag != NULL && r->diag[0] != '\0')
			sbuf_puts(&reason, skip_type(r->diag));
		else if (rcpt_action(in, r) == DSN_DELIVERED)
			sbuf_puts(&reason, "delivered to the mailbox");
		else if (rcpt_action(in, r) == DSN_RELAYED)
			sbuf_puts(&reason, "relayed; no further reports will come");
		else {
			sbuf_puts(&reason, in->action == DSN_FAILED ? "delivery failed, status " :
			    "delivery delayed, status ");
			sbuf_puts(&reason, status_ok(r->status) ? r->status :
			    default_status(rcpt_action(in, r)));
		}
		if (reason.bad)
			b->bad = 1;
		line_lit(b, "");
		/* "<addr>: reason" on one line, cut at DSN_LINE_MAX */
		line_field(b, "<", r->addr, ">:");
		line_field(b, "    ", reason.p ? reason.p : "", "");
		free(reason.p);
	}
	line_lit(b, "");
	line_field(b, "Queue ID: ", in->qid, "");
	line_field(b, "It arrived on ", arrival, ".");
	line_lit(b, "");
	line_lit(b, in->full ? "Your message is attached below." :
	    "The headers of your message are attached below.");
}

/* The machine-readable message/delivery-status part. */
static void
build_status(struct sbuf *b, const struct dsn_info *in, const char *arrival,
    const char *nowdate, const char *until)
{
	size_t i;

	if (in->envid != NULL && in->envid[0] != '\0')
		line_field(b, "Original-Envelope-Id: ", in->envid, "");
	line_field(b, "Reporting-MTA: dns; ", in->hostname, "");
	line_field(b, "X-Imsd-Queue-ID: ", in->qid, "");
	line_field(b, "Arrival-Date: ", arrival, "");
	for (i = 0; i < in->nrcpts; i++) {
		const struct dsn_rcpt *r = &in->rcpts[i];
		enum dsn_action a = rcpt_action(in, r);
		const char *st = status_ok(r->status) ? r->status : default_status(a);

		line_lit(b, "");
		if (r->orcpt_field != NULL && r->orcpt_field[0] != '\0')
			line_field(b, "Original-Recipient: ", r->orcpt_field, "");
		else if (r->orcpt != NULL && r->orcpt[0] != '\0' && strcmp(r->orcpt, r->addr) != 0)
			addr_field(b, "Original-Recipient", r->orcpt);
		addr_field(b, "Final-Recipient", r->addr);
		line_field(b, "Action: ", action_word(a), "");
		line_field(b, "Status: ", st, "");
		if (r->remote_mta != NULL && r->remote_mta[0] != '\0')
			line_field(b, type_prefix(r->remote_mta) ? "Remote-MTA: " :
			    "Remote-MTA: dns; ", r->remote_mta, "");
		if (r->diag != NULL && r->diag[0] != '\0')
			line_field(b, type_prefix(r->diag) ? "Diagnostic-Code: " :
			    "Diagnostic-Code: x-imsd; ", r->diag, "");
		line_field(b, "Last-Attempt-Date: ", nowdate, "");
		if (a == DSN_DELAYED)
			line_field(b, "Will-Retry-Until: ", until, "");
	}
}

/* The original header section, sanitised line by line, at most DSN_HEADERS_MAX octets. */
static void
build_headers(struct sbuf *b, const char *s, size_t len)
{
	char tmp[DSN_LINE_MAX];
	size_t pos = 0, out = 0;

	while (pos < len) {
		const char *lf = memchr(s + pos, '\n', len - pos);
		size_t end = lf ? (size_t)(lf - s) : len, n, i;

		n = end - pos;
		if (lf != NULL && n > 0 && s[end - 1] == '\r')
			n--;
		if (n == 0)
			break;		/* the empty line: end of the header section */
		if (n > DSN_LINE_MAX)
			n = DSN_LINE_MAX;
		if (out + n + 2 > DSN_HEADERS_MAX)
			break;
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[pos + i];

			tmp[i] = c == '\r' ? ' ' : (c == 0 || c >= 0x80) ? '?' : (char)c;
		}
		sbuf_add(b, tmp, n);
		sbuf_add(b, "\r\n", 2);
		out += n + 2;
		pos = lf ? end + 1 : len;
	}
}

/* The whole original for RET=FULL: every line CRLF-terminated, at most DSN_LINE_MAX octets,
 * a stray CR a space, NUL '?', bytes >= 0x80 kept only when allow8. */
static void
build_full(struct sbuf *b, const char *s, size_t len, int allow8)
{
	char tmp[DSN_LINE_MAX];
	size_t pos = 0;

	while (pos < len) {
		const char *lf = memchr(s + pos, '\n', len - pos);
		size_t end = lf ? (size_t)(lf - s) : len, n, i;

		n = end - pos;
		if (lf != NULL && n > 0 && s[end - 1] == '\r')
			n--;
		if (n > DSN_LINE_MAX)
			n = DSN_LINE_MAX;
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[pos + i];

			tmp[i] = c == '\r' ? ' ' : (c == 0 || (c >= 0x80 && !allow8)) ? '?' : (char)c;
		}
		sbuf_add(b, tmp, n);
		sbuf_add(b, "\r\n", 2);
		pos = lf ? end + 1 : len;
	}
}

/* Does needle occur in the n bytes at hay? */
static int
contains(const char *hay, size_t n, const char *needle)
{
	return hay != NULL && memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* A boundary from the seed that none of the parts contains. */
static void
pick_boundary(const char *seed, struct sbuf *parts, size_t nparts, char *out, size_t cap)
{
	char clean[BOUNDARY_SEED_MAX + 1];
	unsigned long k;
	size_t i;

	clean_token(seed, clean, sizeof(clean));
	snprintf(out, cap, "=_imsd_%s", clean);
	for (k = 1;; k++) {
		for (i = 0; i < nparts; i++)
			if (contains(parts[i].p, parts[i].len, out))
				break;
		if (i == nparts)
			return;
		snprintf(out, cap, "=_imsd_%s_%08lx", clean, k);
	}
}

/* Append a part: delimiter line, its own header lines, an empty line, its body. */
static void
put_part(struct sbuf *m, const char *boundary, const char *hdr1, const char *hdr2,
    const struct sbuf *body)
{
	sbuf_puts(m, "\r\n--");
	sbuf_puts(m, boundary);
	sbuf_add(m, "\r\n", 2);
	line_lit(m, hdr1);
	line_lit(m, hdr2);
	sbuf_add(m, "\r\n", 2);
	if (body->p != NULL)
		sbuf_add(m, body->p, body->len);
}

int
dsn_build(const struct dsn_info *in, char **out, size_t *outlen)
{
	struct sbuf parts[3] = { { 0 }, { 0 }, { 0 } }, m = { 0 };
	char arrival[64], nowdate[64], until[64], boundary[96], hostid[256], qidid[128];
	char tmp[512];
	long long add;
	size_t i;
	int ret = -1;

	if (in == NULL || out == NULL || outlen == NULL)
		return -1;
	*out = NULL;
	*outlen = 0;
	if (in->hostname == NULL || in->hostname[0] == '\0' || in->qid == NULL ||
	    in->qid[0] == '\0' || in->sender == NULL || in->sender[0] == '\0' ||
	    in->rcpts == NULL || in->nrcpts == 0 || (in->orig == NULL && in->origlen > 0) ||
	    (in->action != DSN_FAILED && in->action != DSN_DELAYED &&
	    in->action != DSN_DELIVERED && in->action != DSN_RELAYED))
		return -1;
	for (i = 0; i < in->nrcpts; i++)
		if (in->rcpts[i].addr == NULL || in->rcpts[i].addr[0] == '\0' ||
		    (in->rcpts[i].has_action && in->rcpts[i].action != DSN_FAILED &&
		    in->rcpts[i].action != DSN_DELAYED && in->rcpts[i].action != DSN_DELIVERED &&
		    in->rcpts[i].action != DSN_RELAYED))
			return -1;

	fmt_date(in->arrival, arrival, sizeof(arrival));
	fmt_date(in->now, nowdate, sizeof(nowdate));
	add = (long long)in->retry_hours_left * 3600;
	fmt_date((long long)in->now > LLONG_MAX - add ? in->now : (time_t)(in->now + add), until,
	    sizeof(until));

	build_text(&parts[0], in, arrival);
	build_status(&parts[1], in, arrival, nowdate, until);
	if (in->orig != NULL && in->full)
		build_full(&parts[2], in->orig, in->origlen, in->orig_8bit);
	else if (in->orig != NULL)
		build_headers(&parts[2], in->orig, in->origlen);
	for (i = 0; i < 3; i++)
		if (parts[i].bad)
			goto done;
	pick_boundary(in->boundary_seed ? in->boundary_seed : in->qid, parts, 3, boundary,
	    sizeof(boundary));

	line_field(&m, "From: Mail Delivery System <MAILER-DAEMON@", in->hostname, ">");
	if (in->smtputf8)
		line_field_u8(&m, "To: <", in->sender, ">");
	else
		line_field(&m, "To: <", in->sender, ">");
	line_lit(&m, in->action == DSN_FAILED ? "Subject: Undelivered Mail Returned to Sender" :
	    in->action == DSN_DELAYED ? "Subject: Delayed Mail (still being retried)" :
	    "Subject: Successful Mail Delivery Report");
	line_field(&m, "Date: ", nowdate, "");
	clean_token(in->hostname, hostid, sizeof(hostid));
	clean_token(in->qid, qidid, sizeof(qidid));
	snprintf(tmp, sizeof(tmp), "Message-ID: <%s.dsn.%lld@%s>", qidid, (long long)in->now,
	    hostid);
	line_lit(&m, tmp);
	line_lit(&m, "Auto-Submitted: auto-replied");
	line_lit(&m, "MIME-Version: 1.0");
	line_field(&m, "Content-Type: multipart/report; report-type=delivery-status; "
	    "boundary=\"", boundary, "\"");
	line_lit(&m, "");
	line_lit(&m, "This is a MIME-encapsulated message.");
	put_part(&m, boundary, "Content-Description: Notification",
	    "Content-Type: text/plain; charset=us-ascii", &parts[0]);
	put_part(&m, boundary, "Content-Description: Delivery report",
	    "Content-Type: message/delivery-status", &parts[1]);
	if (in->full)
		put_part(&m, boundary, "Content-Description: Undelivered message",
		    in->orig_8bit ? "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit" :
		    "Content-Type: message/rfc822", &parts[2]);
	else
		put_part(&m, boundary, in->action == DSN_DELIVERED || in->action == DSN_RELAYED ?
		    "Content-Description: Message headers" :
		    "Content-Description: Undelivered message headers",
		    "Content-Type: text/rfc822-headers", &parts[2]);
	sbuf_puts(&m, "\r\n--");
	sbuf_puts(&m, boundary);
	sbuf_puts(&m, "--\r\n");
	if (m.bad || m.p == NULL)
		goto done;
	*out = m.p;
	*outlen = m.len;
	m.p = NULL;
	ret = 0;
done:
	for (i = 0; i < 3; i++)
		free(parts[i].p);
	free(m.p);
	return ret;
}
