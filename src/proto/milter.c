/*
 * milter — the Sendmail milter protocol codec (contract in milter.h).
 *
 * Layouts, per reply (after the uint32 length and the letter):
 *   a c d p r s t 4 f         nothing
 *   y                         "ddd[ -]text[\r\nddd[ -]text...]\0"
 *   q                         reason\0
 *   h                         name\0 value\0
 *   i m                       uint32 index, name\0 value\0
 *   b                         raw body bytes (any, no terminator)
 *   + -                       rcpt\0
 *   2 e                       addr\0 [esmtp-args\0]
 *   O                         uint32 version, uint32 actions, uint32 protocol,
 *                             then any number of (uint32 stage, names\0)
 */
#include <string.h>

#include "proto/milter.h"

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t
get32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The packet head: length (1 + datalen) and the letter. */
static void
put_head(struct sbuf *b, char cmd, size_t datalen)
{
	unsigned char h[5];

	put32(h, (uint32_t)(datalen + 1));
	h[4] = (unsigned char)cmd;
	sbuf_add(b, h, sizeof h);
}

/* A string with its NUL. */
static void
put_str(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s) + 1);
}

char
milter_stage_cmd(enum milter_stage st)
{
	static const char cmd[MILTER_STAGES] = {
		[MILTER_STAGE_CONNECT] = SMFIC_CONNECT, [MILTER_STAGE_HELO] = SMFIC_HELO,
		[MILTER_STAGE_MAIL] = SMFIC_MAIL, [MILTER_STAGE_RCPT] = SMFIC_RCPT,
		[MILTER_STAGE_DATA] = SMFIC_DATA, [MILTER_STAGE_EOM] = SMFIC_BODYEOB,
		[MILTER_STAGE_EOH] = SMFIC_EOH,
	};

	return (unsigned)st < MILTER_STAGES ? cmd[st] : '\0';
}

void
milter_put_optneg(struct sbuf *b, uint32_t version, uint32_t actions, uint32_t protocol)
{
	unsigned char d[12];

	put32(d, version);
	put32(d + 4, actions);
	put32(d + 8, protocol);
	put_head(b, SMFIC_OPTNEG, sizeof d);
	sbuf_add(b, d, sizeof d);
}

void
milter_put_macros(struct sbuf *b, char cmd, const char *const *nv, size_t n)
{
	size_t len = 1;

	if (n == 0)
		return;
	for (size_t i = 0; i < 2 * n; i++)
		len += strlen(nv[i]) + 1;
	put_head(b, SMFIC_MACRO, len);
	sbuf_add(b, &cmd, 1);
	for (size_t i = 0; i < 2 * n; i++)
		put_str(b, nv[i]);
}

void
milter_put_connect(struct sbuf *b, const char *host, char family, uint16_t port,
    const char *addr)
{
	int full = family == SMFIA_INET || family == SMFIA_INET6 || family == SMFIA_UNIX;
	size_t len = strlen(host) + 1 + 1;
	unsigned char p[2];

	if (full)
		len += 2 + strlen(addr) + 1;
	put_head(b, SMFIC_CONNECT, len);
	put_str(b, host);
	sbuf_add(b, &family, 1);
	if (full) {
		p[0] = (unsigned char)(port >> 8);
		p[1] = (unsigned char)port;
		sbuf_add(b, p, 2);
		put_str(b, addr);
	}
}

void
milter_put_helo(struct sbuf *b, const char *helo)
{
	put_head(b, SMFIC_HELO, strlen(helo) + 1);
	put_str(b, helo);
}

void
milter_put_args(struct sbuf *b, char cmd, const char *const *argv, size_t argc)
{
	size_t len = 0;

	for (size_t i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	put_head(b, cmd, len);
	for (size_t i = 0; i < argc; i++)
		put_str(b, argv[i]);
}

void
milter_put_header(struct sbuf *b, const char *name, const char *value)
{
	put_head(b, SMFIC_HEADER, strlen(name) + 1 + strlen(value) + 1);
	put_str(b, name);
	put_str(b, value);
}

int
milter_put_body(struct sbuf *b, const void *data, size_t len)
{
	if (len == 0 || len > MILTER_CHUNK_MAX)
		return -1;
	put_head(b, SMFIC_BODY, len);
	sbuf_add(b, data, len);
	return 0;
}

void
milter_put_unknown(struct sbuf *b, const char *line)
{
	put_head(b, SMFIC_UNKNOWN, strlen(line) + 1);
	put_str(b, line);
}

void
milter_put_cmd(struct sbuf *b, char cmd)
{
	put_head(b, cmd, 0);
}

/* ---- decoding ---- */

int
milter_frame(const unsigned char *buf, size_t len, size_t max, struct milter_packet *pkt,
    size_t *used, const char **why)
{
	uint32_t plen;

	*used = 0;
	if (len < 4)
		return 0;
	plen = get32(buf);
	if (plen == 0) {
		*why = "packet of length 0";
		return -1;
	}
	if (plen > max) {
		*why = "packet longer than the limit";
		return -1;
	}
	*used = 4 + (size_t)plen;
	if (len < *used)
		return 0;
	pkt->cmd = (char)buf[4];
	pkt->data = buf + 5;
	pkt->len = (size_t)plen - 1;
	return 1;
}

/* A reader over a packet's data. */
struct rd {
	const unsigned char *p;
	size_t left;
};

static int
rd_u32(struct rd *r, uint32_t *v)
{
	if (r->left < 4)
		return -1;
	*v = get32(r->p);
	r->p += 4;
	r->left -= 4;
	return 0;
}

/* A NUL-terminated string; -1 when the data ends before its NUL. */
static int
rd_str(struct rd *r, const char **s)
{
	const unsigned char *nul = memchr(r->p, '\0', r->left);
	size_t n;

	if (r->left == 0 || nul == NULL)
		return -1;
	n = (size_t)(nul - r->p) + 1;
	*s = (const char *)r->p;
	r->p += n;
	r->left -= n;
	return 0;
}

int
milter_optneg_decode(const struct milter_packet *pkt, struct milter_optneg *out,
    const char **why)
{
	struct rd r = { pkt->data, pkt->len };

	memset(out, 0, sizeof *out);
	if (pkt->cmd != SMFIR_OPTNEG) {
		*why = "not an option negotiation reply";
		return -1;
	}
	if (rd_u32(&r, &out->version) || rd_u32(&r, &out->actions) ||
	    rd_u32(&r, &out->protocol)) {
		*why = "option negotiation reply shorter than its three words";
		return -1;
	}
	while (r.left > 0) {
		uint32_t st;
		const char *names;

		if (rd_u32(&r, &st) != 0) {
			*why = "option negotiation reply ends inside a macro stage number";
			return -1;
		}
		if (rd_str(&r, &names) != 0) {
			*why = "option negotiation macro list not NUL-terminated";
			return -1;
		}
		if (st < MILTER_STAGES)
			out->macros[st] = names;
		else
			out->unknown_stages++;
	}
	return 0;
}

int
milter_negotiate(uint32_t my_actions, uint32_t my_protocol, const struct milter_optneg *r,
    struct milter_agreed *out, const char **why)
{
	uint32_t steps = r->protocol & SMFIP_DEFINED;

	memset(out, 0, sizeof *out);
	if (r->version < MILTER_VERSION_MIN || r->version > MILTER_VERSION) {
		*why = "the milter speaks a protocol version imsd does not (2 to 6)";
		return -1;
	}
	if ((r->actions & ~my_actions) != 0) {
		*why = "the milter asks for actions that were not offered";
		return -1;
	}
	if ((steps & ~my_protocol) != 0) {
		*why = "the milter asks for protocol steps that were not offered";
		return -1;
	}
	out->version = r->version;
	out->actions = r->actions;
	out->protocol = steps;
	/* Postfix's rule: do not send what the milter's version has no command for. */
	if (r->version < 4)
		out->nosend |= SMFIP_NODATA;
	if (r->version < 3)
		out->nosend |= SMFIP_NOUNKNOWN;
	return 0;
}

/* The "do not send" step flag of a command, 0 for commands that are always sent. */
static uint32_t
nosend_flag(char cmd)
{
	switch (cmd) {
	case SMFIC_CONNECT:	return SMFIP_NOCONNECT;
	case SMFIC_HELO:	return SMFIP_NOHELO;
	case SMFIC_MAIL:	return SMFIP_NOMAIL;
	case SMFIC_RCPT:	return SMFIP_NORCPT;
	case SMFIC_BODY:	return SMFIP_NOBODY;
	case SMFIC_HEADER:	return SMFIP_NOHDRS;
	case SMFIC_EOH:		return SMFIP_NOEOH;
	case SMFIC_UNKNOWN:	return SMFIP_NOUNKNOWN;
	case SMFIC_DATA:	return SMFIP_NODATA;
	default:		return 0;
	}
}

int
milter_sends(const struct milter_agreed *a, char cmd)
{
	uint32_t f = nosend_flag(cmd);

	return f == 0 || ((a->protocol | a->nosend) & f) == 0;
}

int
milter_replies(const struct milter_agreed *a, char cmd)
{
	uint32_t nr;

	switch (cmd) {
	case SMFIC_CONNECT:	nr = SMFIP_NR_CONN; break;
	case SMFIC_HELO:	nr = SMFIP_NR_HELO; break;
	case SMFIC_MAIL:	nr = SMFIP_NR_MAIL; break;
	case SMFIC_RCPT:	nr = SMFIP_NR_RCPT; break;
	case SMFIC_DATA:	nr = SMFIP_NR_DATA; break;
	case SMFIC_UNKNOWN:	nr = SMFIP_NR_UNKN; break;
	case SMFIC_HEADER:	nr = SMFIP_NR_HDR; break;
	case SMFIC_EOH:		nr = SMFIP_NR_EOH; break;
	case SMFIC_BODY:	nr = SMFIP_NR_BODY; break;
	case SMFIC_BODYEOB:	return 1;
	case SMFIC_OPTNEG:	return 1;
	default:		return 0;	/* MACRO, ABORT, QUIT, QUIT_NC */
	}
	return (a->protocol & nr) == 0;
}

static int
c_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* A header field name (RFC 5322 §3.6.8: printable ASCII but ':'), 1..MILTER_HEADER_NAME_MAX. */
static int
field_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MILTER_HEADER_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 33 || c > 126 || c == ':')
			return 0;
	}
	return 1;
}

/* A header value: every line break ("\n" or "\r\n") is followed by SP or TAB (a fold, never
 * the start of another field), no other CR, and at most MILTER_HEADER_VALUE_MAX bytes. */
static int
field_value_ok(const char *s)
{
	size_t n = strlen(s);

	if (n > MILTER_HEADER_VALUE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r') {
			if (s[i + 1] != '\n')
				return 0;
			continue;
		}
		if (s[i] == '\n' && s[i + 1] != ' ' && s[i + 1] != '\t')
			return 0;
	}
	return 1;
}

/* An address as a milter sends it: non-empty, no control bytes or spaces outside what a
 * path can hold; "<...>" or bare. Only the shape is checked here. */
static int
addr_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 1000)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

/* Length of an RFC 3463 enhanced code "c.s.d" (1-3 digits in the last two parts) at s, class
 * cls, followed by ' ' or the end; 0 when there is none. *other is set when s starts like an
 * enhanced code of another class. */
static size_t
enh_at(const char *s, size_t n, char cls, int *other)
{
	size_t i;

	*other = 0;
	if (n < 5 || !c_digit((unsigned char)s[0]) || s[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t k;

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
	if (s[0] != cls) {
		*other = 1;
		return 0;
	}
	return i;
}

/* Append n bytes of line text to out->text ('?' for bytes outside printable ASCII and TAB,
 * "%%" as "%" and a lone '%' dropped, as Postfix does for Sendmail's format strings). */
static void
text_add(struct milter_reply *out, size_t *tl, const char *s, size_t n)
{
	for (size_t i = 0; i < n && *tl < MILTER_REPLY_TEXT_MAX - 1; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			if (i + 1 < n && s[i + 1] == '%')
				i++;
			else
				continue;
		}
		out->text[(*tl)++] = (c == '\t' || (c >= 0x20 && c < 0x7f)) ? (char)c : '?';
	}
	out->text[*tl] = '\0';
}

/* Check and normalise a REPLYCODE string s (len bytes before its NUL). */
static int
replycode(const char *s, size_t len, struct milter_reply *out, const char **why)
{
	size_t pos = 0, tl = 0;

	out->text[0] = '\0';
	out->enh[0] = '\0';
	for (;;) {
		const char *line = s + pos, *eol = memchr(line, '\n', len - pos);
		size_t ll = eol ? (size_t)(eol - line) : len - pos, tstart, e;
		int code, other, last;

		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (ll > MILTER_REPLY_LINE_MAX) {
			*why = "reply code line too long";
			return -1;
		}
		if (++out->nlines > MILTER_REPLY_LINES_MAX) {
			*why = "reply code with too many lines";
			return -1;
		}
		if (ll < 3 || !c_digit((unsigned char)line[0]) || !c_digit((unsigned char)line[1]) ||
		    !c_digit((unsigned char)line[2])) {
			*why = "reply code line does not start with a three-digit code";
			return -1;
		}
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if ((line[0] != '4' && line[0] != '5') || line[1] > '5') {
			*why = "reply code is not a 4xx or 5xx SMTP reply";
			return -1;
		}
		if (out->nlines == 1)
			out->code = code;
		else if (code != out->code) {
			*why = "reply code lines carry different codes";
			return -1;
		}
		last = eol == NULL || (size_t)(eol - s) + 1 == len;
		if (ll == 3) {
			if (!last) {
				*why = "reply code continuation line without '-'";
				return -1;
			}
		} else if (line[3] == '-') {
			if (last) {
				*why = "reply code ends with a continuation line";
				return -1;
			}
		} else if (line[3] == ' ') {
			if (!last) {
				*why = "reply code line with ' ' before its last line";
				return -1;
			}
		} else {
			*why = "reply code not followed by ' ' or '-'";
			return -1;
		}
		tstart = ll > 3 ? 4 : 3;
		e = enh_at(line + tstart, ll - tstart, line[0], &other);
		if (other) {
			*why = "reply code with an enhanced status code of another class";
			return -1;
		}
		if (out->nlines == 1 && e > 0 && e < sizeof out->enh) {
			memcpy(out->enh, line + tstart, e);
			out->enh[e] = '\0';
		}
		if (out->nlines > 1 && tl < MILTER_REPLY_TEXT_MAX - 1) {
			out->text[tl++] = '\n';
			out->text[tl] = '\0';
		}
		for (size_t i = 0; i < ll; i++)
			if (line[i] == '\r') {
				*why = "reply code with a bare CR";
				return -1;
			}
		text_add(out, &tl, line + tstart, ll - tstart);
		if (last)
			return 0;
		pos += (size_t)(eol - line) + 1;
	}
}

int
milter_reply_decode(const struct milter_packet *pkt, struct milter_reply *out,
    const char **why)
{
	struct rd r = { pkt->data, pkt->len };

	memset(out, 0, offsetof(struct milter_reply, text));
	out->text[0] = '\0';
	out->cmd = pkt->cmd;
	switch (pkt->cmd) {
	case SMFIR_ACCEPT: case SMFIR_CONTINUE: case SMFIR_DISCARD: case SMFIR_PROGRESS:
	case SMFIR_REJECT: case SMFIR_SKIP: case SMFIR_TEMPFAIL: case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		if (pkt->len != 0) {
			*why = "data after a reply that carries none";
			return -1;
		}
		return 0;
	case SMFIR_REPLYCODE:
		if (rd_str(&r, &out->name) != 0 || r.left != 0) {
			*why = "reply code not one NUL-terminated string";
			return -1;
		}
		return replycode(out->name, strlen(out->name), out, why);
	case SMFIR_QUARANTINE:
		if (rd_str(&r, &out->name) != 0 || r.left != 0) {
			*why = "quarantine reason not one NUL-terminated string";
			return -1;
		}
		return 0;
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		if (rd_u32(&r, &out->index) != 0) {
			*why = "header edit without its index";
			return -1;
		}
		/* FALLTHROUGH */
	case SMFIR_ADDHEADER:
		if (rd_str(&r, &out->name) != 0 || rd_str(&r, &out->value) != 0 || r.left != 0) {
			*why = "header edit not a name and a value, NUL-terminated";
			return -1;
		}
		if (!field_name_ok(out->name)) {
			*why = "header edit with a name that is not a header field name";
			return -1;
		}
		if (!field_value_ok(out->value)) {
			*why = "header edit with a value whose line breaks do not fold, or too long";
			return -1;
		}
		return 0;
	case SMFIR_REPLBODY:
		out->body = pkt->data;
		out->bodylen = pkt->len;
		return 0;
	case SMFIR_ADDRCPT:
	case SMFIR_DELRCPT:
		if (rd_str(&r, &out->name) != 0 || r.left != 0) {
			*why = "recipient not one NUL-terminated string";
			return -1;
		}
		if (!addr_ok(out->name)) {
			*why = "recipient empty, too long or with control bytes";
			return -1;
		}
		return 0;
	case SMFIR_ADDRCPT_PAR:
	case SMFIR_CHGFROM:
		if (rd_str(&r, &out->name) != 0) {
			*why = "address not NUL-terminated";
			return -1;
		}
		if (r.left > 0 && (rd_str(&r, &out->value) != 0 || r.left != 0)) {
			*why = "ESMTP parameters not one NUL-terminated string";
			return -1;
		}
		/* "<>" is a valid sender; an empty string is not an address */
		if (!addr_ok(out->name) || (out->value && !addr_ok(out->value) && *out->value)) {
			*why = "address empty, too long or with control bytes";
			return -1;
		}
		return 0;
	default:
		*why = "unknown reply";
		return -1;
	}
}

/* The SMFIF_* action an edit needs; 0 for letters that are not edits. */
static uint32_t
edit_action(char r)
{
	switch (r) {
	case SMFIR_ADDHEADER:	return SMFIF_ADDHDRS;
	case SMFIR_INSHEADER:	return SMFIF_ADDHDRS;
	case SMFIR_CHGHEADER:	return SMFIF_CHGHDRS;
	case SMFIR_REPLBODY:	return SMFIF_CHGBODY;
	case SMFIR_ADDRCPT:	return SMFIF_ADDRCPT;
	case SMFIR_ADDRCPT_PAR:	return SMFIF_ADDRCPT_PAR;
	case SMFIR_DELRCPT:	return SMFIF_DELRCPT;
	case SMFIR_CHGFROM:	return SMFIF_CHGFROM;
	case SMFIR_QUARANTINE:	return SMFIF_QUARANTINE;
	default:		return 0;
	}
}

int
milter_reply_final(char r)
{
	switch (r) {
	case SMFIR_ACCEPT: case SMFIR_CONTINUE: case SMFIR_DISCARD: case SMFIR_REJECT:
	case SMFIR_TEMPFAIL: case SMFIR_REPLYCODE: case SMFIR_SKIP: case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		return 1;
	default:
		return 0;
	}
}

int
milter_reply_allowed(const struct milter_agreed *a, char cmd, char r)
{
	uint32_t act;

	if (cmd == SMFIC_OPTNEG)
		return r == SMFIR_OPTNEG;
	if (!milter_replies(a, cmd) && cmd != SMFIC_BODYEOB)
		return 0;
	switch (r) {
	case SMFIR_PROGRESS:
	case SMFIR_ACCEPT: case SMFIR_CONTINUE: case SMFIR_REJECT: case SMFIR_TEMPFAIL:
	case SMFIR_REPLYCODE: case SMFIR_SHUTDOWN: case SMFIR_CONN_FAIL:
		return 1;
	case SMFIR_DISCARD:
		/* a connection cannot be discarded, only a message */
		return cmd != SMFIC_CONNECT && cmd != SMFIC_HELO;
	case SMFIR_SKIP:
		return cmd == SMFIC_BODY && (a->protocol & SMFIP_SKIP) != 0;
	default:
		act = edit_action(r);
		return act != 0 && cmd == SMFIC_BODYEOB && (a->actions & act) == act;
	}
}

void
milter_header_format(struct sbuf *b, const char *name, const char *value, int leadspc)
{
	sbuf_puts(b, name);
	sbuf_add(b, leadspc ? ":" : ": ", leadspc ? 1 : 2);
	for (const char *p = value; *p; p++) {
		if (*p == '\r')
			continue;	/* the value passed field_value_ok: a CR precedes an LF */
		if (*p == '\n')
			sbuf_add(b, "\r\n", 2);
		else
			sbuf_add(b, p, 1);
	}
	sbuf_add(b, "\r\n", 2);
}
