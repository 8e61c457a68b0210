/*
 * smtp_path — RFC 5321 §4.1.2 paths and ESMTP parameters (contract in smtp_path.h).
 *
 * The parser works on (pointer, length) and never reads past the length; it classifies
 * bytes by hand (no <ctype.h>, so the locale cannot change anything). Lengths are
 * measured as written on the wire: the local part including its quotes and backslashes,
 * the domain including the brackets of an address literal, the path from '<' to '>'
 * inclusive (source route included). The per-part limits are checked first, so an
 * over-long part is reported as such even when the whole path is also too long.
 *
 * Choices the grammar leaves open, or that we make stricter than it:
 *   - an empty quoted local part (<""@x>) is refused, like <@x>;
 *   - General-address-literal ([tag:content]) is refused as a syntax error;
 *   - IPv6 literals are checked by inet_pton plus RFC 5321's rule that "::" stands for
 *     at least two groups; IPv4 literals accept 1-3 digit decimal octets (0-255);
 *   - RFC 6531 §3.3: UTF8-non-ascii is atext and qtextSMTP, and a domain label may hold it
 *     (a U-label; whether it is a valid one is for IDNA, intl.h, to say). Each such
 *     character must be well-formed UTF-8 (utf8.h); a malformed one, or a non-ASCII byte
 *     where none may stand (address literal, quoted pair), is SMTP_PATH_8BIT.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "proto/smtp_path.h"
#include "util/utf8.h"

struct cur {
	const char *p;
	const char *end;
};

static int
c_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
c_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
c_letdig(int c)
{
	return c_alpha(c) || c_digit(c);
}

static int
c_hex(int c)
{
	return c_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 5322 atext */
static int
c_atext(int c)
{
	if (c_letdig(c))
		return 1;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
	case '+': case '-': case '/': case '=': case '?': case '^': case '_':
	case '`': case '{': case '|': case '}': case '~':
		return 1;
	}
	return 0;
}

/* qtextSMTP = %d32-33 / %d35-91 / %d93-126 */
static int
c_qtext(int c)
{
	return c == 32 || c == 33 || (c >= 35 && c <= 91) || (c >= 93 && c <= 126);
}

/* esmtp-value characters: %d33-60 / %d62-126 */
static int
c_esmtp_value(int c)
{
	return (c >= 33 && c <= 60) || (c >= 62 && c <= 126);
}

static int
c_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Next byte as 0..255, or -1 at the end of input. */
static int
peek(const struct cur *c)
{
	return c->p < c->end ? (unsigned char)*c->p : -1;
}

/* Length of a well-formed UTF8-non-ascii character at the cursor, or 0. */
static size_t
u8len(const struct cur *c)
{
	return utf8_seqlen((const unsigned char *)c->p, (size_t)(c->end - c->p));
}

static int
ascii_caseeq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (c_lower((unsigned char)a[i]) != c_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/*
 * Fail at the current position: a non-ASCII byte there makes it SMTP_PATH_8BIT, a space
 * gets its own message (none is allowed outside a quoted string), else msg.
 */
static enum smtp_path_status
fail(const struct cur *c, const char *msg, const char **why)
{
	int ch = peek(c);

	if (ch >= 0x80) {
		*why = u8len(c) ? "non-ASCII character not allowed here" : "malformed UTF-8";
		return SMTP_PATH_8BIT;
	}
	*why = ch == ' ' ? "space in path" : msg;
	return SMTP_PATH_SYNTAX;
}

/*
 * Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]. Copies it to
 * dst (SMTP_DOMAIN_MAX + 1 bytes) when dst is not NULL.
 */
static enum smtp_path_status
parse_domain(struct cur *c, char *dst, int *utf8, const char **why)
{
	const char *start = c->p;
	size_t n, k;

	for (;;) {
		if ((k = u8len(c)) > 0) {
			*utf8 = 1;
			c->p += k;
		} else if (c_letdig(peek(c)))
			c->p++;
		else {
			if (c->p > start && peek(c) == '>')
				return fail(c, "trailing dot in domain", why);
			return fail(c, "bad domain", why);
		}
		for (;;) {
			if (c_letdig(peek(c)) || peek(c) == '-')
				c->p++;
			else if ((k = u8len(c)) > 0) {
				*utf8 = 1;
				c->p += k;
			} else
				break;
		}
		if (c->p[-1] == '-')
			return fail(c, "hyphen at end of domain label", why);
		if (peek(c) != '.')
			break;
		c->p++;
	}
	n = (size_t)(c->p - start);
	if (n > SMTP_DOMAIN_MAX) {
		*why = "domain too long";
		return SMTP_PATH_TOO_LONG;
	}
	if (dst != NULL) {
		memcpy(dst, start, n);
		dst[n] = '\0';
	}
	return SMTP_PATH_OK;
}

/* Snum 3("." Snum), Snum = 1*3DIGIT with a value of 0..255. */
static int
parse_ipv4(struct cur *c)
{
	int i, k, v;

	for (i = 0; i < 4; i++) {
		if (i > 0) {
			if (peek(c) != '.')
				return -1;
			c->p++;
		}
		v = 0;
		for (k = 0; k < 3 && c_digit(peek(c)); k++) {
			v = v * 10 + (peek(c) - '0');
			c->p++;
		}
		if (k == 0 || v > 255)
			return -1;
	}
	return 0;
}

/* The text after "IPv6:" (only [0-9A-Fa-f:.] bytes, NUL-terminated). */
static int
valid_ipv6(const char *a)
{
	struct in6_addr in6;
	const char *q;
	int groups, dotted = 0;

	if (inet_pton(AF_INET6, a, &in6) != 1)
		return -1;
	if (strstr(a, "::") == NULL)
		return 0;
	/* RFC 5321 IPv6-comp: "::" stands for at least two groups, so at most 6 are written. */
	groups = 0;
	for (q = a; *q != '\0'; ) {
		if (*q == ':') {
			q++;
			continue;
		}
		groups++;
		for (; *q != '\0' && *q != ':'; q++)
			if (*q == '.')
				dotted = 1;
	}
	if (dotted)
		groups++;		/* the dotted quad is two groups */
	return groups <= 6 ? 0 : -1;
}

/*
 * address-literal = "[" ( IPv4-address-literal / IPv6-address-literal ) "]"; the
 * General-address-literal is refused. Copies it, brackets included, to dst.
 */
static enum smtp_path_status
parse_literal(struct cur *c, char *dst, const char **why)
{
	const char *start = c->p;
	char buf[INET6_ADDRSTRLEN];
	const char *a;
	size_t n;

	c->p++;				/* '[' */
	if (c->end - c->p >= 5 && ascii_caseeq(c->p, "IPv6:", 5)) {
		c->p += 5;
		a = c->p;
		while (c_hex(peek(c)) || peek(c) == ':' || peek(c) == '.')
			c->p++;
		n = (size_t)(c->p - a);
		if (n == 0 || n >= sizeof(buf))
			return fail(c, "bad IPv6 address literal", why);
		memcpy(buf, a, n);
		buf[n] = '\0';
		if (valid_ipv6(buf) != 0) {
			*why = "bad IPv6 address literal";
			return SMTP_PATH_SYNTAX;
		}
	} else if (c_digit(peek(c))) {
		if (parse_ipv4(c) != 0)
			return fail(c, "bad IPv4 address literal", why);
	} else {
		/* Standardized-tag ":" would make it a General-address-literal. */
		while (c_letdig(peek(c)) || peek(c) == '-')
			c->p++;
		if (peek(c) == ':' && c->p > start + 1) {
			*why = "unsupported address literal";
			return SMTP_PATH_SYNTAX;
		}
		return fail(c, "bad address literal", why);
	}
	if (peek(c) != ']')
		return fail(c, "bad address literal", why);
	c->p++;
	n = (size_t)(c->p - start);
	if (n > SMTP_DOMAIN_MAX) {	/* cannot happen: a literal is at most ~52 octets */
		*why = "domain too long";
		return SMTP_PATH_TOO_LONG;
	}
	memcpy(dst, start, n);
	dst[n] = '\0';
	return SMTP_PATH_OK;
}

/* Local-part = Dot-string / Quoted-string; out->local gets it unquoted. */
static enum smtp_path_status
parse_local(struct cur *c, struct smtp_path *out, const char **why)
{
	const char *start = c->p;
	size_t n = 0, k;
	int ch;

	if (peek(c) == '"') {
		out->quoted = 1;
		c->p++;
		for (;;) {
			ch = peek(c);
			if (ch < 0) {
				*why = "unterminated quoted string";
				return SMTP_PATH_SYNTAX;
			}
			if (ch == '"')
				break;
			if (ch == '\\') {
				c->p++;
				ch = peek(c);
				if (ch < 32 || ch > 126) {
					if (ch < 0) {
						*why = "unterminated quoted string";
						return SMTP_PATH_SYNTAX;
					}
					return fail(c, "bad quoted pair", why);
				}
			} else if (ch >= 0x80 && (k = u8len(c)) > 0) {
				/* RFC 6531 §3.3: qtextSMTP =/ UTF8-non-ascii */
				out->utf8 = 1;
				for (size_t j = 0; j < k; j++, n++)
					if (n < SMTP_LOCAL_MAX)
						out->local[n] = c->p[j];
				c->p += k;
				continue;
			} else if (!c_qtext(ch))
				return fail(c, "bad character in quoted string", why);
			if (n < SMTP_LOCAL_MAX)
				out->local[n] = (char)ch;
			n++;
			c->p++;
		}
		c->p++;			/* closing quote */
		if (n == 0) {
			*why = "empty local part";
			return SMTP_PATH_SYNTAX;
		}
	} else {
		for (;;) {
			const char *atom = c->p;

			/* RFC 6531 §3.3: atext =/ UTF8-non-ascii */
			for (;;) {
				if (c_atext(peek(c)))
					c->p++;
				else if ((k = u8len(c)) > 0) {
					out->utf8 = 1;
					c->p += k;
				} else
					break;
			}
			if (c->p == atom) {
				if (c->p == start && peek(c) == '@')
					return fail(c, "empty local part", why);
				return fail(c, "bad local part", why);
			}
			if (peek(c) != '.')
				break;
			c->p++;
		}
		n = (size_t)(c->p - start);
		if (n <= SMTP_LOCAL_MAX)
			memcpy(out->local, start, n);
	}
	if (c->p - start > SMTP_LOCAL_MAX) {
		*why = "local part too long";
		return SMTP_PATH_TOO_LONG;
	}
	out->local[n] = '\0';
	return SMTP_PATH_OK;
}

/* A-d-l ":" where A-d-l = At-domain *( "," At-domain ), At-domain = "@" Domain. */
static enum smtp_path_status
parse_route(struct cur *c, const char **why)
{
	enum smtp_path_status st;
	int utf8 = 0;		/* a route is stripped: its U-labels do not count */

	for (;;) {
		if (peek(c) != '@')
			return fail(c, "bad source route", why);
		c->p++;
		if ((st = parse_domain(c, NULL, &utf8, why)) != SMTP_PATH_OK)
			return st;
		if (peek(c) == ':') {
			c->p++;
			return SMTP_PATH_OK;
		}
		if (peek(c) == '>')
			return fail(c, "empty local part", why);
		if (peek(c) != ',')
			return fail(c, "bad source route", why);
		c->p++;
	}
}

static enum smtp_path_status
parse_path(struct cur *c, int allow_null, int allow_postmaster, struct smtp_path *out,
    const char **why)
{
	const char *start = c->p;
	enum smtp_path_status st;

	if (peek(c) != '<')
		return fail(c, "missing '<'", why);
	c->p++;
	if (peek(c) == '>') {
		if (!allow_null) {
			*why = "null path not allowed";
			return SMTP_PATH_NULL_NOT_ALLOWED;
		}
		c->p++;
		out->is_null = 1;
		return SMTP_PATH_OK;
	}
	if (allow_postmaster && c->end - c->p >= 11 && ascii_caseeq(c->p, "postmaster", 10) &&
	    c->p[10] == '>') {
		memcpy(out->local, c->p, 10);
		out->local[10] = '\0';
		out->is_postmaster = 1;
		c->p += 11;
		return SMTP_PATH_OK;
	}
	if (peek(c) == '@') {
		if ((st = parse_route(c, why)) != SMTP_PATH_OK)
			return st;
		out->has_route = 1;
	}
	if ((st = parse_local(c, out, why)) != SMTP_PATH_OK)
		return st;
	if (peek(c) != '@')
		return fail(c, peek(c) == '>' ? "missing '@'" : "bad local part", why);
	c->p++;
	if (peek(c) == '[') {
		out->is_literal = 1;
		st = parse_literal(c, out->domain, why);
	} else
		st = parse_domain(c, out->domain, &out->utf8, why);
	if (st != SMTP_PATH_OK)
		return st;
	if (peek(c) != '>')
		return fail(c, peek(c) < 0 ? "missing '>'" : "bad domain", why);
	c->p++;
	if (c->p - start > SMTP_PATH_MAX) {
		*why = "path too long";
		return SMTP_PATH_TOO_LONG;
	}
	return SMTP_PATH_OK;
}

/*
 * Parse "<...>" at the start of s (see smtp_path.h). rest and why may be NULL. On
 * failure *out is zeroed and *rest points where parsing stopped.
 */
enum smtp_path_status
smtp_path_parse(const char *s, size_t len, int allow_null, int allow_postmaster,
    struct smtp_path *out, const char **rest, const char **why)
{
	const char *why_dummy, *rest_dummy;
	struct cur c;
	enum smtp_path_status st;

	if (why == NULL)
		why = &why_dummy;
	if (rest == NULL)
		rest = &rest_dummy;
	if (s == NULL) {
		s = "";
		len = 0;
	}
	c.p = s;
	c.end = s + len;
	memset(out, 0, sizeof(*out));
	st = parse_path(&c, allow_null, allow_postmaster, out, why);
	*rest = c.p;
	if (st != SMTP_PATH_OK)
		memset(out, 0, sizeof(*out));
	else
		*why = "ok";
	return st;
}

/* Dot-string = Atom *("." Atom), Atom = 1*atext */
static int
c_atext_u8(int c)
{
	return c_atext(c) || c >= 0x80;	/* the parser checked the UTF-8 (RFC 6531 §3.3) */
}

static int
is_dot_string(const char *s)
{
	const char *p = s;

	for (;;) {
		if (!c_atext_u8((unsigned char)*p))
			return 0;
		while (c_atext_u8((unsigned char)*p))
			p++;
		if (*p == '\0')
			return 1;
		if (*p != '.')
			return 0;
		p++;
	}
}

/* Write the local part (re-quoted when needed), '@' and the domain; brackets if asked. */
static int
write_addr(const struct smtp_path *p, char *buf, size_t len, int brackets)
{
	size_t n, i, dlen;
	int quote;
	const char *l;

	if (p->is_null) {
		if (brackets) {
			if (len < 3)
				return -1;
			memcpy(buf, "<>", 3);
			return 2;
		}
		if (len < 1)
			return -1;
		buf[0] = '\0';
		return 0;
	}
	quote = !is_dot_string(p->local);
	n = brackets ? 2 : 0;
	for (l = p->local; *l != '\0'; l++)
		n += (quote && (*l == '"' || *l == '\\')) ? 2 : 1;
	if (quote)
		n += 2;
	dlen = p->is_postmaster ? 0 : strnlen(p->domain, sizeof(p->domain));
	if (!p->is_postmaster)
		n += 1 + dlen;
	if (n >= len || n > 0x7fffffff)
		return -1;
	i = 0;
	if (brackets)
		buf[i++] = '<';
	if (quote)
		buf[i++] = '"';
	for (l = p->local; *l != '\0'; l++) {
		if (quote && (*l == '"' || *l == '\\'))
			buf[i++] = '\\';
		buf[i++] = *l;
	}
	if (quote)
		buf[i++] = '"';
	if (!p->is_postmaster) {
		buf[i++] = '@';
		memcpy(buf + i, p->domain, dlen);
		i += dlen;
	}
	if (brackets)
		buf[i++] = '>';
	buf[i] = '\0';
	return (int)i;
}

/* "<>", "<Postmaster>" or "<local@domain>" into buf; length or -1 when it does not fit. */
int
smtp_path_format(const struct smtp_path *p, char *buf, size_t len)
{
	return write_addr(p, buf, len, 1);
}

/* "local@domain" (or "" / "Postmaster") into buf; length or -1 when it does not fit. */
int
smtp_path_addr(const struct smtp_path *p, char *buf, size_t len)
{
	return write_addr(p, buf, len, 0);
}

int
smtp_addr_requote(const char *addr, char *buf, size_t len)
{
	struct smtp_path p;
	const char *at = strrchr(addr, '@');

	memset(&p, 0, sizeof(p));
	if (at == NULL || (size_t)(at - addr) >= sizeof(p.local) ||
	    strlen(at + 1) >= sizeof(p.domain))
		return -1;
	memcpy(p.local, addr, (size_t)(at - addr));
	p.local[at - addr] = '\0';
	memcpy(p.domain, at + 1, strlen(at + 1) + 1);
	return write_addr(&p, buf, len, 0);
}

int
smtp_local_mailbox_ok(const char *local, const char **why)
{
	size_t n = strlen(local);

	if (n == 0) {
		*why = "empty local part";
		return 0;
	}
	if (local[0] == '.') {
		*why = "starts with '.'";
		return 0;
	}
	if (local[0] == ' ' || local[n - 1] == ' ') {
		*why = "space at the start or end";
		return 0;
	}
	for (const unsigned char *c = (const unsigned char *)local; *c; c++) {
		if (*c < 0x20 || *c == 0x7f) {
			*why = "control character";
			return 0;
		}
		if (strchr("/@<>;\"\\", *c) != NULL) {
			*why = "contains one of / @ < > ; \" \\";
			return 0;
		}
	}
	return 1;
}

/*
 * Parameters after the path: each one preceded by one or more spaces (so the text must
 * be empty or start with a space; trailing spaces are allowed). Returns the count or -1.
 */
int
smtp_params_parse(const char *s, size_t len, struct smtp_param *out, size_t max,
    const char **why)
{
	const char *why_dummy;
	size_t i = 0, n = 0, k, keyend, v;
	const char *value;
	size_t valuelen;

	if (why == NULL)
		why = &why_dummy;
	if (s == NULL)
		len = 0;
	while (i < len) {
		if (s[i] != ' ') {
			*why = "missing space before parameter";
			return -1;
		}
		while (i < len && s[i] == ' ')
			i++;
		if (i == len)
			break;
		k = i;
		if (!c_letdig((unsigned char)s[i])) {
			*why = "bad parameter keyword";
			return -1;
		}
		while (i < len && (c_letdig((unsigned char)s[i]) || s[i] == '-'))
			i++;
		keyend = i;
		value = NULL;
		valuelen = 0;
		if (i < len && s[i] == '=') {
			i++;
			v = i;
			while (i < len && c_esmtp_value((unsigned char)s[i]))
				i++;
			if (i == v) {
				*why = "empty parameter value";
				return -1;
			}
			value = s + v;
			valuelen = i - v;
		}
		if (i < len && s[i] != ' ') {
			if ((unsigned char)s[i] >= 0x80)
				*why = "8-bit character in parameter";
			else if (value == NULL)
				*why = "bad parameter keyword";
			else if (s[i] == '=')
				*why = "'=' in parameter value";
			else
				*why = "bad parameter value";
			return -1;
		}
		if (n >= max) {
			*why = "too many parameters";
			return -1;
		}
		out[n].key = s + k;
		out[n].keylen = keyend - k;
		out[n].value = value;
		out[n].valuelen = valuelen;
		n++;
	}
	if (n > 0x7fffffff) {
		*why = "too many parameters";
		return -1;
	}
	*why = "ok";
	return (int)n;
}

/* Does the parameter's keyword equal name, ignoring ASCII case? */
int
smtp_param_is(const struct smtp_param *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->keylen; i++)
		if (name[i] == '\0' ||
		    c_lower((unsigned char)p->key[i]) != c_lower((unsigned char)name[i]))
			return 0;
	return name[i] == '\0';
}
