/*
 * msghdr — header fields, From: domains, authserv-ids. See msghdr.h. PURE.
 */
#include "proto/msghdr.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

int
mhdr_next(const char *buf, size_t len, size_t *pos, struct mhdr_field *f)
{
	size_t p = *pos, start = p, colon = 0, end;
	int have_colon = 0;

	if (p >= len)
		return 0;
	if (buf[p] == '\r' && p + 1 < len && buf[p + 1] == '\n') {
		*pos = p + 2;
		return 0;
	}
	if (buf[p] == '\n') {
		*pos = p + 1;
		return 0;
	}
	if (buf[p] == ' ' || buf[p] == '\t')
		return -1;	/* a continuation with nothing to continue */
	for (;;) {
		const char *nl = memchr(buf + p, '\n', len - p);
		size_t lend = nl ? (size_t)(nl - buf) : len;
		if (!have_colon) {
			const char *c = memchr(buf + p, ':', lend - p);
			if (c == NULL)
				return -1;
			colon = (size_t)(c - buf);
			have_colon = 1;
		}
		p = nl ? lend + 1 : len;
		if (p >= len || (buf[p] != ' ' && buf[p] != '\t'))
			break;
	}
	end = p;
	if (end > start && buf[end - 1] == '\n')
		end--;
	if (end > start && buf[end - 1] == '\r')
		end--;
	f->raw = buf + start;
	f->rawlen = end - start;
	f->name = buf + start;
	f->namelen = colon - start;
	while (f->namelen > 0 && (f->name[f->namelen - 1] == ' ' || f->name[f->namelen - 1] == '\t'))
		f->namelen--;
	if (f->namelen == 0)
		return -1;
	for (size_t i = 0; i < f->namelen; i++)
		if ((unsigned char)f->name[i] <= 32 || (unsigned char)f->name[i] >= 127)
			return -1;
	f->value = buf + colon + 1;
	f->valuelen = end - colon - 1;
	*pos = p;
	return 1;
}

int
mhdr_is(const struct mhdr_field *f, const char *name)
{
	return strlen(name) == f->namelen && strncasecmp(f->name, name, f->namelen) == 0;
}

/* Skip a comment starting at v[i] == '('; returns the index after it, or len. */
static size_t
skip_comment(const char *v, size_t len, size_t i)
{
	int depth = 0;

	for (; i < len; i++) {
		if (v[i] == '\\') {
			i++;
			continue;
		}
		if (v[i] == '(')
			depth++;
		else if (v[i] == ')' && --depth == 0)
			return i + 1;
	}
	return len;
}

static size_t
skip_quoted(const char *v, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (v[i] == '\\') {
			i++;
			continue;
		}
		if (v[i] == '"')
			return i + 1;
	}
	return len;
}

/* The domain of an addr-spec (comments and whitespace already gone) into out. */
static void
spec_domain(const char *spec, size_t n, char out[256])
{
	size_t at = n, o = 0;
	int inq = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (spec[i] == '\\' && inq) {
			i++;
			continue;
		}
		if (spec[i] == '"')
			inq = !inq;
		else if (spec[i] == '@' && !inq)
			at = i;
	}
	/* an obsolete route "@a,@b:user@dom": the last '@' is still the mailbox's */
	if (at >= n)
		return;
	for (size_t i = at + 1; i < n && o < 255; i++) {
		unsigned char c = (unsigned char)spec[i];
		if (!(isalnum(c) || c == '-' || c == '.' || c == '_')) {
			out[0] = '\0';	/* a literal or junk: no usable domain */
			return;
		}
		out[o++] = (char)tolower(c);
	}
	if (o == 255) {
		out[0] = '\0';
		return;
	}
	while (o > 0 && out[o - 1] == '.')
		o--;
	out[o] = '\0';
	if (o == 0 || out[0] == '.' || strstr(out, "..") != NULL)
		out[0] = '\0';
}

/*
 * Walk an RFC 5322 address list (display names, quoted strings, comments, angle
 * addresses, groups, obsolete routes): each mailbox's addr-spec, comments and whitespace
 * gone, goes to emit. 0 ok (*n mailboxes), -1 not an address list.
 */
static int
from_walk(const char *v, size_t len, void (*emit)(void *arg, size_t i, const char *spec,
    size_t sl), void *arg, size_t *n)
{
	char spec[512], angle[512];
	size_t sl = 0, al = 0, count = 0;
	int in_angle = 0, have_angle = 0, any = 0;

	*n = 0;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? v[i] : ',';
		if (i < len && c == '(') {
			i = skip_comment(v, len, i) - 1;
			continue;
		}
		if (i < len && c == '"') {
			size_t e = skip_quoted(v, len, i);
			/* quoted text inside an address (a quoted local part) is kept */
			if (in_angle) {
				if (al + (e - i) < sizeof(angle)) {
					memcpy(angle + al, v + i, e - i);
					al += e - i;
				}
			} else if (sl + (e - i) < sizeof(spec)) {
				memcpy(spec + sl, v + i, e - i);
				sl += e - i;
			}
			i = e - 1;
			continue;
		}
		if (in_angle) {
			if (c == '>') {
				in_angle = 0;
				have_angle = 1;
			} else if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && al + 1 < sizeof(angle))
				angle[al++] = c;
			if (i == len)
				return -1;	/* unterminated <...> */
			continue;
		}
		if (c == '<') {
			in_angle = 1;
			al = 0;
			continue;
		}
		if (c == ':' && i < len) {
			sl = 0;		/* "group:": what came before is the group's name */
			continue;
		}
		if (c == ',' || c == ';') {
			if (have_angle || sl > 0) {
				const char *s = have_angle ? angle : spec;
				size_t l = have_angle ? al : sl;
				emit(arg, count, s, l);
				count++;
				any = 1;
			}
			sl = al = 0;
			have_angle = 0;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (sl + 1 < sizeof(spec))
			spec[sl++] = c;
	}
	if (!any)
		return -1;
	*n = count;
	return 0;
}

static void
emit_domain(void *arg, size_t i, const char *spec, size_t sl)
{
	char (*dom)[256] = arg;

	if (i < MHDR_DOMAINS_MAX)
		spec_domain(spec, sl, dom[i]);
}

int
mhdr_from_domains(const char *v, size_t len, char dom[][256], size_t *n)
{
	if (from_walk(v, len, emit_domain, dom, n) < 0)
		return -1;
	if (*n > MHDR_DOMAINS_MAX)
		*n = MHDR_DOMAINS_MAX;
	return 0;
}

static void
emit_addr(void *arg, size_t i, const char *spec, size_t sl)
{
	char (*addr)[MHDR_ADDR_MAX] = arg;

	if (i >= MHDR_DOMAINS_MAX)
		return;
	if (sl >= MHDR_ADDR_MAX)
		sl = 0;		/* longer than any address: an empty one, owned by nobody */
	memcpy(addr[i], spec, sl);
	addr[i][sl] = '\0';
}

int
mhdr_from_addrs(const char *v, size_t len, char addr[][MHDR_ADDR_MAX], size_t *n)
{
	if (from_walk(v, len, emit_addr, addr, n) < 0)
		return -1;
	if (*n > MHDR_DOMAINS_MAX)
		*n = MHDR_DOMAINS_MAX;
	return 0;
}

int
mhdr_authserv_id(const char *v, size_t len, char *out, size_t outlen)
{
	size_t i = 0, o = 0;

	while (i < len) {
		if (v[i] == '(') {
			i = skip_comment(v, len, i);
			continue;
		}
		if (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n') {
			i++;
			continue;
		}
		break;
	}
	if (i < len && v[i] == '"') {	/* a quoted-string id (RFC 8601 allows value) */
		for (i++; i < len && v[i] != '"'; i++) {
			if (v[i] == '\\' && i + 1 < len)
				i++;
			if ((unsigned char)v[i] < ' ')
				return -1;	/* not an id anyone could mean */
			if (o + 1 < outlen)
				out[o++] = (char)tolower((unsigned char)v[i]);
		}
	} else {
		/* a token ends at ';', a comment, or any space or control byte */
		for (; i < len && v[i] != ';' && v[i] != '(' && (unsigned char)v[i] > ' ' &&
		    v[i] != 127; i++)
			if (o + 1 < outlen)
				out[o++] = (char)tolower((unsigned char)v[i]);
	}
	if (o == 0)
		return -1;
	out[o] = '\0';
	return 0;
}
