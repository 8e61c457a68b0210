/*
 * sendmail — command line and message preparation of the sendmail(1) interface; see
 * sendmail.h. PURE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/sendmail.h"
#include "proto/smtp_path.h"

#define E(...) snprintf(err, errlen, __VA_ARGS__)

/* ---- the command line ---- */

/* Option letters that take a value, attached (-fADDR) or as the next argument. Of these
 * -f -r -F -c -C matter; the others are sendmail's and Postfix ignores them too. */
static const char with_value[] = "BCFLNRVXcfhr";

int
sm_parse_args(int argc, char **argv, int first, int as_mailq, struct sm_opts *o, char *err,
    size_t errlen)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->mode = as_mailq ? SM_QUEUE : SM_DELIVER;
	o->dot_ends = 1;
	for (i = first; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		for (size_t k = 1; a[k] != '\0'; k++) {
			char c = a[k];
			const char *val = NULL;

			if (c == 'b') {
				/* -bX: the mode; the rest of the argument is its letter */
				switch (a[k + 1]) {
				case 'm': o->mode = SM_DELIVER; break;
				case 's': o->mode = SM_SMTP; break;
				case 'p': o->mode = SM_QUEUE; break;
				case 'v': o->mode = SM_VERIFY; break;
				case 'i': o->mode = SM_NOOP; break;
				case 'd': case 'D': case 'h': case 'H': case 'l':
					E("-b%c: running the daemon this way is not supported; use "
					    "`imsd run`", a[k + 1]);
					return -1;
				default:
					E("-b%s: unknown mode (use -bm, -bs, -bp, -bv or -bi)",
					    a[k + 1] ? a + k + 1 : "");
					return -1;
				}
				if (a[k + 2] != '\0') {
					E("%s: unknown mode", a);
					return -1;
				}
				break;
			}
			if (c == 'o') {
				/* -oX[value]: sendmail.cf options; -oi is the only one that
				 * matters (= -i), the others are ignored as Postfix does */
				if (a[k + 1] == 'i' && a[k + 2] == '\0')
					o->dot_ends = 0;
				else if (a[k + 1] == '\0') {
					/* "-o x value": the option letter and value follow */
					if (i + 1 < argc && strcmp(argv[i + 1], "i") == 0)
						o->dot_ends = 0;
					i += i + 2 < argc ? 2 : argc - 1 - i;
				}
				break;
			}
			if (c == 'q') {
				/* -q: flush now; -qINTERVAL (a daemon's period) likewise */
				o->mode = SM_FLUSH;
				break;
			}
			if (strchr(with_value, c) != NULL) {
				if (a[k + 1] != '\0')
					val = a + k + 1;
				else if (i + 1 < argc)
					val = argv[++i];
				else {
					E("-%c: option needs a value", c);
					return -1;
				}
				switch (c) {
				case 'f': case 'r': o->sender = val; break;
				case 'F': o->fullname = val; break;
				case 'c': case 'C': o->conf_path = val; break;
				default: break;	/* -B -L -N -R -V -X -h: ignored */
				}
				break;
			}
			switch (c) {
			case 't': o->extract = 1; break;
			case 'i': o->dot_ends = 0; break;
			case 'v': o->verbose = 1; break;
			case 'I': o->mode = SM_NOOP; break;
			case 'G': case 'U': case 'n': case 'm': case 'e': case 'd': case 'x': break;
			default:
				E("-%c: unknown option", c);
				return -1;
			}
		}
	}
	o->rcpts = argv + i;
	o->nrcpts = (size_t)(argc - i);
	if (o->nrcpts > SM_RCPTS_MAX) {
		E("too many recipients: %zu (at most %d)", o->nrcpts, SM_RCPTS_MAX);
		return -1;
	}
	for (size_t k = 0; k < o->nrcpts; k++)
		if (strlen(o->rcpts[k]) > 4 * SM_ADDR_MAX) {
			E("recipient argument %zu is longer than %d bytes", k + 1, 4 * SM_ADDR_MAX);
			return -1;
		}
	if (o->sender != NULL && strlen(o->sender) > SM_ADDR_MAX) {
		E("-f: sender address longer than %d bytes", SM_ADDR_MAX);
		return -1;
	}
	if (o->fullname != NULL && strlen(o->fullname) > 200) {
		E("-F: full name longer than 200 bytes");
		return -1;
	}
	return 0;
}

/* ---- addresses ---- */

int
sm_addr_ok(const char *addr)
{
	char buf[SM_ADDR_MAX + 3];
	struct smtp_path p;
	const char *rest, *why;
	size_t n = strlen(addr);

	if (n == 0 || n > SM_ADDR_MAX)
		return 0;
	buf[0] = '<';
	memcpy(buf + 1, addr, n);
	buf[n + 1] = '>';
	buf[n + 2] = '\0';
	return smtp_path_parse(buf, n + 2, 0, 0, &p, &rest, &why) == SMTP_PATH_OK &&
	    rest == buf + n + 2 && !p.has_route && !p.is_postmaster;
}

struct tok {
	char buf[SM_ADDR_MAX + 1];
	size_t len;
	int over;		/* more than SM_ADDR_MAX */
	int space;		/* whitespace since the last character */
	int spaced;		/* two words with nothing but space between: a display name */
};

static void
tok_put(struct tok *t, char c, int word)
{
	if (t->space && t->len > 0 && word && t->buf[t->len - 1] != '.' &&
	    t->buf[t->len - 1] != '@' && c != '.' && c != '@')
		t->spaced = 1;
	t->space = 0;
	if (t->len >= SM_ADDR_MAX) {
		t->over = 1;
		return;
	}
	t->buf[t->len++] = c;
}

static void
tok_reset(struct tok *t)
{
	t->len = 0;
	t->over = t->space = t->spaced = 0;
}

/* Skip a comment starting at s[*i] == '('; nested, with quoted pairs. -1 unterminated. */
static int
skip_comment(const char *s, size_t len, size_t *i)
{
	int depth = 0;

	for (; *i < len; (*i)++) {
		if (s[*i] == '\\') {
			(*i)++;
			continue;
		}
		if (s[*i] == '(')
			depth++;
		else if (s[*i] == ')' && --depth == 0)
			return 0;
	}
	return -1;
}

/* Copy a quoted string starting at s[*i] == '"' into t, quotes and escapes kept. */
static int
copy_quoted(const char *s, size_t len, size_t *i, struct tok *t)
{
	tok_put(t, '"', 1);
	for ((*i)++; *i < len; (*i)++) {
		char c = s[*i];
		if (c == '\r' || c == '\n')
			continue;	/* folding inside a quoted string */
		if (c == '\\' && *i + 1 < len) {
			tok_put(t, c, 0);
			tok_put(t, s[++(*i)], 0);
			continue;
		}
		tok_put(t, c, 0);
		if (c == '"')
			return 0;
	}
	return -1;
}

/* Where the domain's '@' is: the last one outside a quoted local part. */
static const char *
addr_at(const char *a)
{
	const char *p = a;

	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++)
			if (*p == '\\' && p[1] != '\0')
				p++;
		if (*p == '\0')
			return NULL;
	}
	return strrchr(p, '@');
}

static int
finish(struct tok *t, int angle, const char *qualify, int (*add)(void *, const char *),
    void *arg, int *count, char *err, size_t errlen)
{
	char addr[SM_ADDR_MAX + 1];

	if (t->over) {
		E("address longer than %d bytes", SM_ADDR_MAX);
		return -1;
	}
	if (t->len == 0) {
		tok_reset(t);
		return 0;	/* an empty list element, "<>", or a group with no members */
	}
	t->buf[t->len] = '\0';
	if (!angle && t->spaced) {
		E("'%.80s': a name without an <address>", t->buf);
		return -1;
	}
	if (addr_at(t->buf) == NULL && qualify != NULL && qualify[0] != '\0') {
		if (t->len + 1 + strlen(qualify) > SM_ADDR_MAX) {
			E("address longer than %d bytes", SM_ADDR_MAX);
			return -1;
		}
		snprintf(addr, sizeof(addr), "%s@%s", t->buf, qualify);
	} else
		snprintf(addr, sizeof(addr), "%s", t->buf);
	if (!sm_addr_ok(addr)) {
		E("'%.80s' is not a valid address", addr);
		return -1;
	}
	if (add(arg, addr) < 0) {
		E("too many recipients (at most %d)", SM_RCPTS_MAX);
		return -1;
	}
	(*count)++;
	tok_reset(t);
	return 0;
}

int
sm_addrlist(const char *s, size_t len, const char *qualify,
    int (*add)(void *arg, const char *addr), void *arg, char *err, size_t errlen)
{
	struct tok t;
	int count = 0, in_group = 0, angle = 0;

	tok_reset(&t);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case ' ': case '\t': case '\r': case '\n':
			t.space = 1;
			break;
		case '(':
			if (skip_comment(s, len, &i) < 0) {
				E("unterminated comment");
				return -1;
			}
			t.space = 1;
			break;
		case '"':
			if (angle) {
				E("text after an <address>");
				return -1;
			}
			if (copy_quoted(s, len, &i, &t) < 0) {
				E("unterminated quoted string");
				return -1;
			}
			break;
		case '<': {
			/* the display name so far is dropped; the address is inside */
			if (angle) {
				E("two <addresses> in one mailbox");
				return -1;
			}
			tok_reset(&t);
			size_t j = i + 1;
			if (j < len && s[j] == '@') {
				/* obsolete route "@a,@b:" */
				while (j < len && s[j] != ':' && s[j] != '>')
					j++;
				if (j >= len || s[j] != ':') {
					E("bad route in <address>");
					return -1;
				}
				j++;
			}
			for (; j < len && s[j] != '>'; j++) {
				unsigned char d = (unsigned char)s[j];
				if (d == '"') {
					if (copy_quoted(s, len, &j, &t) < 0) {
						E("unterminated quoted string");
						return -1;
					}
					continue;
				}
				if (d == ' ' || d == '\t' || d == '\r' || d == '\n') {
					t.space = 1;
					continue;
				}
				if (d == '(') {
					if (skip_comment(s, len, &j) < 0) {
						E("unterminated comment");
						return -1;
					}
					continue;
				}
				if (d < 32 || d == 127 || d == '<') {
					E("bad character in <address>");
					return -1;
				}
				tok_put(&t, (char)d, 1);
			}
			if (j >= len) {
				E("unterminated <address>");
				return -1;
			}
			t.spaced = 0;	/* "<a . b@c>" is obsolete but one address */
			i = j;
			angle = 1;
			break;
		}
		case ':':
			if (angle) {
				E("text after an <address>");
				return -1;
			}
			if (in_group) {
				E("group inside a group");
				return -1;
			}
			in_group = 1;	/* "name:" of a group: the name is not an address */
			tok_reset(&t);
			break;
		case ';':
			if (!in_group) {
				E("';' outside a group");
				return -1;
			}
			/* FALLTHROUGH */
		case ',':
			if (finish(&t, angle, qualify, add, arg, &count, err, errlen) < 0)
				return -1;
			angle = 0;
			if (c == ';')
				in_group = 0;
			break;
		case '[':
			/* a domain literal: copied as it is up to ']' */
			for (; i < len && s[i] != ']'; i++) {
				if ((unsigned char)s[i] < 32) {
					E("bad character in a domain literal");
					return -1;
				}
				tok_put(&t, s[i], 1);
			}
			if (i >= len) {
				E("unterminated domain literal");
				return -1;
			}
			tok_put(&t, ']', 0);
			break;
		default:
			if (angle) {
				E("text after an <address>");
				return -1;
			}
			if (c < 32 || c == 127 || c == '>' || c == ')' || c == ']' || c == '\\') {
				E("bad character 0x%02x in an address list", c);
				return -1;
			}
			tok_put(&t, (char)c, 1);
		}
	}
	if (in_group) {
		E("group without its ';'");
		return -1;
	}
	if (finish(&t, angle, qualify, add, arg, &count, err, errlen) < 0)
		return -1;
	return count;
}

/* ---- the message ---- */

struct obuf {
	char *p;
	size_t len, cap, max;
	int over;
};

static int
ob_put(struct obuf *b, const char *s, size_t n)
{
	if (b->max != 0 && b->len + n > b->max) {
		b->over = 1;
		return -1;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((np = realloc(b->p, cap)) == NULL)
			return -1;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int
rlist_add(void *arg, const char *addr)
{
	struct sm_msg *m = arg;
	char **np;

	if (m->nrcpts >= SM_RCPTS_MAX)
		return -1;
	if ((np = realloc(m->rcpts, (m->nrcpts + 1) * sizeof(*np))) == NULL)
		return -1;
	m->rcpts = np;
	if ((m->rcpts[m->nrcpts] = strdup(addr)) == NULL)
		return -1;
	m->nrcpts++;
	return 0;
}

/* "Name:" at the start of a line: the length of the name, or 0. */
static size_t
field_name(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && s[i] != ':'; i++)
		if ((unsigned char)s[i] <= 32 || (unsigned char)s[i] >= 127)
			return 0;
	return i < n && i > 0 ? i : 0;
}

static int
name_is(const char *s, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

struct hstate {
	size_t start;		/* offset in the output of the current field, or (size_t)-1 */
	size_t namelen;
	int seen_from, seen_date, seen_msgid;
};

/* The current field is complete: note it, take its recipients, drop it if Bcc. */
static int
field_end(struct hstate *h, struct obuf *b, int extract, const char *qualify,
    struct sm_msg *m, char *err, size_t errlen)
{
	const char *f;
	size_t n;
	int is_bcc;

	if (h->start == (size_t)-1)
		return 0;
	f = b->p + h->start;
	n = h->namelen;
	h->start = (size_t)-1;
	if (name_is(f, n, "From"))
		h->seen_from = 1;
	else if (name_is(f, n, "Date"))
		h->seen_date = 1;
	else if (name_is(f, n, "Message-ID"))
		h->seen_msgid = 1;
	is_bcc = name_is(f, n, "Bcc");
	if (extract && (is_bcc || name_is(f, n, "To") || name_is(f, n, "Cc"))) {
		char why[256], name[8];
		snprintf(name, sizeof(name), "%.*s", (int)n, f);
		if (sm_addrlist(f + n + 1, (size_t)(b->p + b->len - f) - n - 1, qualify, rlist_add,
		    m, why, sizeof(why)) < 0) {
			E("%s: header: %s", name, why);
			return -1;
		}
	}
	if (is_bcc) {
		b->len = (size_t)(f - b->p);	/* RFC 5322 §3.6.3: Bcc is not transmitted */
		b->p[b->len] = '\0';
	}
	return 0;
}

static int
add_missing(struct hstate *h, struct obuf *b, const struct sm_add *add)
{
	const char *l[3];

	l[0] = h->seen_from ? NULL : add ? add->from : NULL;
	l[1] = h->seen_date ? NULL : add ? add->date : NULL;
	l[2] = h->seen_msgid ? NULL : add ? add->msgid : NULL;
	for (int i = 0; i < 3; i++)
		if (l[i] != NULL && (ob_put(b, l[i], strlen(l[i])) < 0 || ob_put(b, "\r\n", 2) < 0))
			return -1;
	return 0;
}

int
sm_prepare(const char *in, size_t len, int dot_ends, int extract, const char *qualify,
    const struct sm_add *add, size_t max_size, struct sm_msg *out, char *err, size_t errlen)
{
	struct obuf b = { NULL, 0, 0, max_size, 0 };
	struct hstate h = { (size_t)-1, 0, 0, 0, 0 };
	int in_header = 1;
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	if (ob_put(&b, "", 0) < 0)
		goto nomem;
	while (pos < len) {
		const char *line = in + pos, *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;

		pos += n + (nl ? 1 : 0);
		if (n > 0 && line[n - 1] == '\r')
			n--;	/* CRLF, or a bare LF: both end the line */
		if (dot_ends && n == 1 && line[0] == '.')
			break;
		if (in_header) {
			size_t fn;
			if (n > 0 && (line[0] == ' ' || line[0] == '\t') && h.start != (size_t)-1) {
				/* a folded continuation of the current field */
			} else if ((fn = field_name(line, n)) > 0) {
				if (field_end(&h, &b, extract, qualify, out, err, errlen) < 0)
					goto fail;
				h.start = b.len;
				h.namelen = fn;
			} else {
				/* the blank line, or the body starting without one */
				if (field_end(&h, &b, extract, qualify, out, err, errlen) < 0)
					goto fail;
				if (add_missing(&h, &b, add) < 0 || ob_put(&b, "\r\n", 2) < 0)
					goto fail_size;
				in_header = 0;
				if (n == 0)
					continue;
			}
			if (in_header && b.len + n + 2 > SM_HEADER_MAX) {
				E("the header section is longer than %d bytes", SM_HEADER_MAX);
				goto fail;
			}
		}
		if (ob_put(&b, line, n) < 0 || ob_put(&b, "\r\n", 2) < 0)
			goto fail_size;
	}
	if (in_header) {
		out->headers_only = 1;
		if (field_end(&h, &b, extract, qualify, out, err, errlen) < 0)
			goto fail;
		if (add_missing(&h, &b, add) < 0)
			goto fail_size;
	}
	out->data = b.p;
	out->len = b.len;
	return 0;
fail_size:
	if (b.over) {
		E("message larger than the limit of %zu bytes", max_size);
		goto fail;
	}
nomem:
	E("out of memory");
fail:
	free(b.p);
	sm_msg_free(out);
	return -1;
}

void
sm_msg_free(struct sm_msg *m)
{
	for (size_t i = 0; i < m->nrcpts; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	free(m->data);
	memset(m, 0, sizeof(*m));
}

/* ---- the maildrop file ---- */

int
sm_drop_parse(const char *buf, size_t len, struct sm_drop *d, char *err, size_t errlen)
{
	size_t ml = strlen(SM_DROP_MAGIC), pos;
	int have_sender = 0;

	memset(d, 0, sizeof(*d));
	if (len < ml || memcmp(buf, SM_DROP_MAGIC, ml) != 0) {
		E("not a maildrop file (no \"IMSD-MAILDROP 1\" first line)");
		return -1;
	}
	for (pos = ml;;) {
		const char *line = buf + pos, *nl;
		size_t n;
		char addr[SM_ADDR_MAX + 1];

		if (pos >= len || (nl = memchr(line, '\n', len - pos)) == NULL) {
			E("envelope not terminated by an empty line");
			goto fail;
		}
		n = (size_t)(nl - line);
		pos += n + 1;
		if (n == 0)
			break;
		if (n < 2 || line[1] != ' ' || (line[0] != 'S' && line[0] != 'R')) {
			E("bad envelope line (expected \"S addr\" or \"R addr\")");
			goto fail;
		}
		if (n - 2 > SM_ADDR_MAX) {
			E("envelope address longer than %d bytes", SM_ADDR_MAX);
			goto fail;
		}
		memcpy(addr, line + 2, n - 2);
		addr[n - 2] = '\0';
		if (memchr(line + 2, '\0', n - 2) != NULL ||
		    ((line[0] == 'R' || addr[0] != '\0') && !sm_addr_ok(addr))) {
			E("bad envelope address '%.80s'", addr);
			goto fail;
		}
		if (line[0] == 'S') {
			if (have_sender) {
				E("two senders in the envelope");
				goto fail;
			}
			have_sender = 1;
			memcpy(d->sender, addr, n - 1);
		} else {
			char **np;
			if (d->nrcpts >= SM_RCPTS_MAX) {
				E("more than %d recipients", SM_RCPTS_MAX);
				goto fail;
			}
			if ((np = realloc(d->rcpts, (d->nrcpts + 1) * sizeof(*np))) == NULL ||
			    (d->rcpts = np, (np[d->nrcpts] = strdup(addr)) == NULL)) {
				E("out of memory");
				goto fail;
			}
			d->nrcpts++;
		}
	}
	if (!have_sender || d->nrcpts == 0) {
		E("envelope without %s", have_sender ? "recipients" : "a sender");
		goto fail;
	}
	d->data = buf + pos;
	d->len = len - pos;
	return 0;
fail:
	sm_drop_free(d);
	return -1;
}

void
sm_drop_free(struct sm_drop *d)
{
	for (size_t i = 0; i < d->nrcpts; i++)
		free(d->rcpts[i]);
	free(d->rcpts);
	d->rcpts = NULL;
	d->nrcpts = 0;
}
