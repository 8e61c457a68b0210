/*
 * aliases — aliases(5) parser and table; see aliases.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/aliases.h"
#include "util/str.h"
#include "util/textfile.h"

#define ALIASES_FILE_MAX	(64u * 1024 * 1024)

struct aliases {
	struct alias_entry *e;
	size_t n, cap;
};

#define E(...) snprintf(err, errlen, __VA_ARGS__)

const char *
alias_kind_name(enum alias_kind k)
{
	static const char *const names[] = { "address", "local name", "user", "file",
		"/dev/null", "command", ":include:" };
	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

static void
entry_free(struct alias_entry *e)
{
	for (size_t i = 0; i < e->nvalues; i++)
		free(e->values[i].text);
	free(e->values);
	free(e->name);
}

void
aliases_free(struct aliases *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->n; i++)
		entry_free(&a->e[i]);
	free(a->e);
	free(a);
}

static char *
dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static void
lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* A local part as an alias name or local value: no '@', blank, control byte, ':', ','
 * or quote; at most 255 bytes. */
static int
good_local(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c == 0x7f || c == '@' || c == ':' || c == ',' || c == '"' ||
		    c == '<' || c == '>' || c == '\\')
			return 0;
	}
	return 1;
}

static int
good_address(const char *s)
{
	const char *at = strchr(s, '@');
	size_t ll;
	char local[256];

	if (at == NULL || strchr(at + 1, '@') != NULL || at[1] == '\0' || strlen(at + 1) > 253)
		return 0;
	ll = (size_t)(at - s);
	if (ll == 0 || ll >= sizeof(local))
		return 0;
	memcpy(local, s, ll);
	local[ll] = '\0';
	if (!good_local(local))
		return 0;
	for (const char *d = at + 1; *d; d++) {
		unsigned char c = (unsigned char)*d;
		if (c <= ' ' || c == 0x7f || c == ',' || c == '"' || c == '<' || c == '>' ||
		    c == '\\' || c == ':' || c == '@')
			return 0;
	}
	return 1;
}

static int
add_value(struct alias_entry *e, size_t *cap, enum alias_kind k, const char *s, size_t n,
    const char *name, unsigned line, char *err, size_t errlen)
{
	char *text;

	if (e->nvalues >= ALIASES_VALUES_MAX) {
		E("%s:%u: %s: more than %d values", name, line, e->name, ALIASES_VALUES_MAX);
		return -1;
	}
	if (n > ALIASES_VALUE_MAX) {
		E("%s:%u: %s: a value longer than %d bytes", name, line, e->name, ALIASES_VALUE_MAX);
		return -1;
	}
	if (e->nvalues == *cap) {
		size_t nc = *cap ? *cap * 2 : 4;
		struct alias_value *nv = realloc(e->values, nc * sizeof(*nv));
		if (nv == NULL) {
			E("%s:%u: out of memory", name, line);
			return -1;
		}
		e->values = nv;
		*cap = nc;
	}
	if ((text = dup_n(s, n)) == NULL) {
		E("%s:%u: out of memory", name, line);
		return -1;
	}
	if (k == AT_ADDRESS || k == AT_LOCAL || k == AT_USER) {
		char *at = strchr(text, '@');
		if (k == AT_LOCAL || k == AT_USER)
			lower(text);
		else if (at != NULL)
			lower(at + 1);	/* the domain; the local part as written (RFC 5321) */
	}
	e->values[e->nvalues].kind = k;
	e->values[e->nvalues].text = text;
	e->nvalues++;
	return 0;
}

/* One value as written (quotes removed): classify and check it. */
static int
classify(struct alias_entry *e, size_t *cap, const char *v, size_t n, const char *name,
    unsigned line, char *err, size_t errlen)
{
	char buf[ALIASES_VALUE_MAX + 1], shown[128];

	if (n > ALIASES_VALUE_MAX) {
		E("%s:%u: %s: a value longer than %d bytes", name, line, e->name, ALIASES_VALUE_MAX);
		return -1;
	}
	memcpy(buf, v, n);
	buf[n] = '\0';
	str_quote(buf, 60, shown, sizeof(shown));
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)buf[i] < ' ' && buf[i] != '\t') {
			E("%s:%u: %s: a control character in %s", name, line, e->name, shown);
			return -1;
		}
	if (buf[0] == '|') {
		const char *c = buf + 1;
		while (*c == ' ' || *c == '\t')
			c++;
		if (*c == '\0') {
			E("%s:%u: %s: an empty command after '|'", name, line, e->name);
			return -1;
		}
		return add_value(e, cap, AT_COMMAND, c, strlen(c), name, line, err, errlen);
	}
	if (strncasecmp(buf, ":include:", 9) == 0) {
		const char *p = buf + 9;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '/') {
			E("%s:%u: %s: %s: an :include: file needs an absolute path", name, line,
			    e->name, shown);
			return -1;
		}
		return add_value(e, cap, AT_INCLUDE, p, strlen(p), name, line, err, errlen);
	}
	if (buf[0] == '/') {
		if (strcmp(buf, "/dev/null") == 0)
			return add_value(e, cap, AT_DEVNULL, buf, n, name, line, err, errlen);
		if (buf[n - 1] == '/') {
			E("%s:%u: %s: %s is a directory name; a file to append to is meant", name,
			    line, e->name, shown);
			return -1;
		}
		return add_value(e, cap, AT_FILE, buf, n, name, line, err, errlen);
	}
	if (buf[0] == '\\') {
		if (!good_local(buf + 1)) {
			E("%s:%u: %s: %s is not a user name", name, line, e->name, shown);
			return -1;
		}
		return add_value(e, cap, AT_USER, buf + 1, n - 1, name, line, err, errlen);
	}
	if (strchr(buf, '@') != NULL) {
		if (!good_address(buf)) {
			E("%s:%u: %s: %s is not an address (local@domain)", name, line, e->name, shown);
			return -1;
		}
		return add_value(e, cap, AT_ADDRESS, buf, n, name, line, err, errlen);
	}
	if (!good_local(buf)) {
		E("%s:%u: %s: %s is not a name, an address, a |command, a /file or an :include:",
		    name, line, e->name, shown);
		return -1;
	}
	return add_value(e, cap, AT_LOCAL, buf, n, name, line, err, errlen);
}

/* The values of one logical entry (after "name:"). */
static int
parse_values(struct alias_entry *e, const char *s, size_t n, const char *name, unsigned line,
    char *err, size_t errlen)
{
	size_t i = 0, cap = 0;

	while (i < n) {
		while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == ','))
			i++;
		if (i >= n)
			break;
		if (s[i] == '"') {
			size_t j = i + 1;
			while (j < n && s[j] != '"')
				j++;
			if (j >= n) {
				E("%s:%u: %s: a quote that is not closed", name, line, e->name);
				return -1;
			}
			if (j == i + 1) {
				E("%s:%u: %s: an empty quoted value", name, line, e->name);
				return -1;
			}
			if (classify(e, &cap, s + i + 1, j - i - 1, name, line, err, errlen) < 0)
				return -1;
			i = j + 1;
			if (i < n && s[i] != ',' && s[i] != ' ' && s[i] != '\t' && s[i] != '\n') {
				E("%s:%u: %s: text right after a closing quote", name, line, e->name);
				return -1;
			}
			continue;
		}
		size_t j = i;
		int to_comma = s[i] == '|' || s[i] == '/' || (n - i >= 9 &&
		    strncasecmp(s + i, ":include:", 9) == 0);
		if (to_comma) {
			while (j < n && s[j] != ',')
				j++;
		} else
			while (j < n && s[j] != ',' && s[j] != ' ' && s[j] != '\t' && s[j] != '\n')
				j++;
		size_t k = j;	/* trim the blanks (and continuation breaks) before the comma */
		while (k > i && (s[k - 1] == ' ' || s[k - 1] == '\t' || s[k - 1] == '\n'))
			k--;
		if (classify(e, &cap, s + i, k - i, name, line, err, errlen) < 0)
			return -1;
		i = j;
	}
	if (e->nvalues == 0) {
		E("%s:%u: %s: no values after the colon", name, line, e->name);
		return -1;
	}
	return 0;
}

/* One logical entry: "name: values" (continuation lines joined with '\n'). */
static int
parse_entry(struct aliases *a, const char *s, size_t n, const char *name, unsigned line,
    char *err, size_t errlen)
{
	struct alias_entry e;
	size_t i = 0, ns, ne;
	char shown[128];

	memset(&e, 0, sizeof(e));
	e.line = line;
	if (a->n >= ALIASES_MAX) {
		E("%s:%u: more than %d aliases", name, line, ALIASES_MAX);
		return -1;
	}
	if (s[0] == '"') {
		for (i = 1; i < n && s[i] != '"'; i++)
			;
		if (i >= n) {
			E("%s:%u: a quote in the name that is not closed", name, line);
			return -1;
		}
		ns = 1;
		ne = i++;
	} else {
		while (i < n && s[i] != ':' && s[i] != ' ' && s[i] != '\t' && s[i] != '\n')
			i++;
		ns = 0;
		ne = i;
	}
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i >= n || s[i] != ':') {
		char nm[128];
		snprintf(nm, sizeof(nm), "%.*s", (int)(ne - ns > 100 ? 100 : ne - ns), s + ns);
		E("%s:%u: %s: no ':' after the name (an entry reads name: value, value)", name,
		    line, str_quote(nm, 60, shown, sizeof(shown)));
		return -1;
	}
	if ((e.name = dup_n(s + ns, ne - ns)) == NULL) {
		E("%s:%u: out of memory", name, line);
		return -1;
	}
	if (!good_local(e.name)) {
		E("%s:%u: %s is not a name for an alias (a local part without '@', blanks or "
		    "control characters)", name, line, str_quote(e.name, 60, shown, sizeof(shown)));
		entry_free(&e);
		return -1;
	}
	lower(e.name);
	if (parse_values(&e, s + i + 1, n - i - 1, name, line, err, errlen) < 0) {
		entry_free(&e);
		return -1;
	}
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 16;
		struct alias_entry *ne2 = realloc(a->e, nc * sizeof(*ne2));
		if (ne2 == NULL) {
			E("%s:%u: out of memory", name, line);
			entry_free(&e);
			return -1;
		}
		a->e = ne2;
		a->cap = nc;
	}
	a->e[a->n++] = e;
	return 0;
}

static int
by_name_then_line(const void *x, const void *y)
{
	const struct alias_entry *a = x, *b = y;
	int c = strcmp(a->name, b->name);
	return c != 0 ? c : a->line < b->line ? -1 : a->line > b->line;
}

struct aliases *
aliases_parse(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
	struct aliases *a = calloc(1, sizeof(*a));
	char *ent = NULL;
	size_t entlen = 0, pos = 0;
	unsigned lineno = 0, entline = 0;

	if (a == NULL || (ent = malloc(ALIASES_ENTRY_MAX + 1)) == NULL) {
		E("%s: out of memory", name);
		free(a);
		return NULL;
	}
	for (;;) {
		const char *l = text + pos;
		size_t ll = 0;
		int eof = pos >= len;

		if (!eof) {
			while (pos + ll < len && text[pos + ll] != '\n')
				ll++;
			pos += ll + (pos + ll < len);
			lineno++;
			if (memchr(l, '\0', ll) != NULL) {
				E("%s:%u: a NUL byte in the line", name, lineno);
				goto fail;
			}
			if (ll > 0 && l[ll - 1] == '\r')
				ll--;
		}
		/* a continuation: blanks first, something after them */
		size_t b = 0;
		while (!eof && b < ll && (l[b] == ' ' || l[b] == '\t'))
			b++;
		int blank = eof || b == ll;
		int comment = !blank && l[b] == '#';
		if (!eof && !blank && !comment && b > 0) {
			if (entlen == 0) {
				E("%s:%u: a line starting with a blank continues an entry, but none "
				    "is open", name, lineno);
				goto fail;
			}
			if (entlen + 1 + (ll - b) > ALIASES_ENTRY_MAX) {
				E("%s:%u: an entry longer than %d bytes", name, entline,
				    ALIASES_ENTRY_MAX);
				goto fail;
			}
			ent[entlen++] = '\n';
			memcpy(ent + entlen, l + b, ll - b);
			entlen += ll - b;
			continue;
		}
		if (blank || comment) {
			if (!eof)
				continue;	/* comments and blank lines end nothing */
		}
		/* a new entry (or the end): finish the open one */
		if (entlen > 0) {
			while (entlen > 0 && (ent[entlen - 1] == ' ' || ent[entlen - 1] == '\t'))
				entlen--;
			if (parse_entry(a, ent, entlen, name, entline, err, errlen) < 0)
				goto fail;
			entlen = 0;
		}
		if (eof)
			break;
		if (ll > ALIASES_ENTRY_MAX) {
			E("%s:%u: an entry longer than %d bytes", name, lineno, ALIASES_ENTRY_MAX);
			goto fail;
		}
		memcpy(ent, l, ll);
		entlen = ll;
		entline = lineno;
	}
	free(ent);
	ent = NULL;
	if (a->n > 1)
		qsort(a->e, a->n, sizeof(*a->e), by_name_then_line);
	for (size_t i = 1; i < a->n; i++)
		if (strcmp(a->e[i - 1].name, a->e[i].name) == 0) {
			E("%s:%u: %s is listed twice (also at line %u)", name, a->e[i].line,
			    a->e[i].name, a->e[i - 1].line);
			goto fail;
		}
	return a;
fail:
	free(ent);
	aliases_free(a);
	return NULL;
}

struct aliases *
aliases_load(const char *path, char *err, size_t errlen)
{
	struct aliases *a;
	char *buf;
	size_t len;

	if (textfile_read(path, ALIASES_FILE_MAX, &buf, &len, err, errlen) < 0)
		return NULL;
	a = aliases_parse(path, buf ? buf : "", len, err, errlen);
	free(buf);
	return a;
}

const struct alias_entry *
aliases_lookup(const struct aliases *a, const char *name)
{
	char key[256];
	size_t lo = 0, hi, n = strlen(name);

	if (a == NULL || n == 0 || n >= sizeof(key))
		return NULL;
	for (size_t i = 0; i <= n; i++)
		key[i] = (char)tolower((unsigned char)name[i]);
	hi = a->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, a->e[mid].name);
		if (c == 0)
			return &a->e[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

size_t
aliases_count(const struct aliases *a)
{
	return a ? a->n : 0;
}

const struct alias_entry *
aliases_entry(const struct aliases *a, size_t i)
{
	return a != NULL && i < a->n ? &a->e[i] : NULL;
}
