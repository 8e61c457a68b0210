/*
 * recipients — the recipients_file: which local addresses exist, and aliases.
 *
 * Entries live in one array in file order; an open-addressing hash table (linear probing,
 * FNV-1a, at most half full) maps a lower-case address to its entry.
 */
#include "policy/recipients.h"
#include "util/hindex.h"
#include "util/intl.h"
#include "util/str.h"
#include "util/textfile.h"
#include "util/utf8.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RCPT_FILE_MAX	(256u << 20)	/* largest recipients_file read */
#define LOCAL_MAX	64		/* RFC 5321 §4.5.3.1.1 */
#define DOMAIN_MAX	255		/* RFC 5321 §4.5.3.1.2 */

struct entry {
	char *addr;		/* lower-case local@domain */
	char **targets;		/* lower-case local@domain each; NULL when not an alias */
	size_t ntargets;
	unsigned line;
	uint64_t hash;
};

struct recipients {
	struct entry *e;
	size_t n, cap;
	struct hindex ix;		/* hash -> entry */
};

/* FNV-1a over the lower-cased bytes of s. */
static uint64_t hash_lc(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++) {
		h ^= (unsigned char)tolower((unsigned char)*s);
		h *= 1099511628211ull;
	}
	return h;
}

/* Quote what the user wrote for an error message (see str_quote). */
static const char *quote(const char *s, char *buf, size_t len)
{
	return str_quote(s, 100, buf, len);
}

#define QBUF 440

static void entry_free(struct entry *e)
{
	free(e->addr);
	for (size_t i = 0; i < e->ntargets; i++)
		free(e->targets[i]);
	free(e->targets);
}

/* Release r and everything it owns. NULL is fine. */
void recipients_free(struct recipients *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		entry_free(&r->e[i]);
	free(r->e);
	hindex_free(&r->ix);
	free(r);
}

/* The entry for addr, or NULL. */
static const struct entry *find(const struct recipients *r, const char *addr, uint64_t h)
{
	size_t pos = 0, k;

	if (r == NULL)
		return NULL;
	while ((k = hindex_next(&r->ix, h, &pos)) != SIZE_MAX) {
		const struct entry *e = &r->e[k];

		if (e->hash == h && strcasecmp(e->addr, addr) == 0)
			return e;
	}
	return NULL;
}

/* The hash of entry i, for rehashing. */
static uint64_t entry_hash(const void *ctx, size_t i)
{
	return ((const struct recipients *)ctx)->e[i].hash;
}

/* Put entry index idx into the table (which has room). */
static void slot_put(struct recipients *r, size_t idx)
{
	hindex_put(&r->ix, r->e[idx].hash, idx);
}

/* Make room for one more entry in the array and the table. -1 on ENOMEM or overflow. */
static int make_room(struct recipients *r)
{
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 64;
		struct entry *ne;

		if (nc > UINT32_MAX - 1 || (ne = realloc(r->e, nc * sizeof *ne)) == NULL)
			return -1;
		r->e = ne;
		r->cap = nc;
	}
	if (hindex_reserve(&r->ix, r->n + 1, r->n, entry_hash, r) < 0)
		return -1;
	return 0;
}

/*
 * Check and normalise one address (s, NUL-terminated): lower-case it and drop a trailing
 * dot of the domain. *out is malloc'd. 0 ok; -1 with why set (*out NULL).
 */
static int addr_norm(const char *s, int is_target, char **out, char *why, size_t wl)
{
	char q[QBUF];
	const char *at = strchr(s, '@');
	size_t len = strlen(s), llen, dlen;
	char *d;

	*out = NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= 0x20 || ch == 0x7f || ch == ',' || ch == '<' || ch == '>' || ch == ':' ||
		    (ch >= 0x80 && !utf8_text_ok(s, len, 0, NULL))) {
			snprintf(why, wl, "%s%s: only printable ASCII or UTF-8, without blanks, ',', "
			    "':', '<' or '>'", is_target ? "target " : "", quote(s, q, sizeof q));
			return -1;
		}
	}
	if (at == NULL && is_target) {
		snprintf(why, wl, "target %s needs a domain", quote(s, q, sizeof q));
		return -1;
	}
	if (at == NULL || strchr(at + 1, '@') != NULL) {
		snprintf(why, wl, "%s%s is not local@domain", is_target ? "target " : "",
		    quote(s, q, sizeof q));
		return -1;
	}
	llen = (size_t)(at - s);
	dlen = len - llen - 1;
	if (dlen > 0 && at[dlen] == '.')
		dlen--;
	if (llen == 0 || dlen == 0 || at[1] == '.') {
		snprintf(why, wl, "%s%s is not local@domain", is_target ? "target " : "",
		    quote(s, q, sizeof q));
		return -1;
	}
	if (llen > LOCAL_MAX || dlen > DOMAIN_MAX) {
		snprintf(why, wl, "%s%s is too long (local part 64, domain 255 at most)",
		    is_target ? "target " : "", quote(s, q, sizeof q));
		return -1;
	}
	if (utf8_has_nonascii(s)) {
		/* RFC 6531: compared as RCPT compares, NFC lower-case local part and A-label
		 * domain (util/intl) */
		char folded[LOCAL_MAX + 1 + DOMAIN_MAX + 1];
		const char *iwhy;

		if (intl_addr_fold(s, folded, sizeof(folded), &iwhy) < 0) {
			snprintf(why, wl, "%s%s: %s", is_target ? "target " : "",
			    quote(s, q, sizeof q), iwhy);
			return -1;
		}
		if ((*out = strdup(folded)) == NULL) {
			snprintf(why, wl, "out of memory");
			return -1;
		}
		return 0;
	}
	d = malloc(llen + 1 + dlen + 1);
	if (d == NULL) {
		snprintf(why, wl, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < llen + 1 + dlen; i++)
		d[i] = (char)tolower((unsigned char)s[i]);
	d[llen + 1 + dlen] = '\0';
	*out = d;
	return 0;
}

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/*
 * Parse one line (NUL-terminated, comment and line ending already removed, not blank)
 * into a new entry of r. 0 ok; -1 with why set.
 */
static int parse_line(struct recipients *r, char *s, unsigned lineno, char *why, size_t wl)
{
	char q[QBUF];
	struct entry e;
	const struct entry *old;
	char *colon, *p, *end;
	size_t cap = 0;

	memset(&e, 0, sizeof e);
	e.line = lineno;
	colon = strchr(s, ':');
	if (colon)
		*colon = '\0';
	end = s + strlen(s);
	while (end > s && is_blank(end[-1]))
		*--end = '\0';
	if (addr_norm(s, 0, &e.addr, why, wl) != 0)
		return -1;

	if (colon) {
		p = colon + 1;
		for (;;) {
			char *t, **nt;

			while (*p == ',' || is_blank(*p))
				p++;
			if (*p == '\0')
				break;
			t = p;
			while (*p && *p != ',' && !is_blank(*p))
				p++;
			if (*p)
				*p++ = '\0';
			if (e.ntargets == cap) {
				cap = cap ? cap * 2 : 4;
				nt = realloc(e.targets, cap * sizeof *nt);
				if (nt == NULL) {
					snprintf(why, wl, "out of memory");
					goto fail;
				}
				e.targets = nt;
			}
			if (addr_norm(t, 1, &e.targets[e.ntargets], why, wl) != 0)
				goto fail;
			e.ntargets++;
		}
		if (e.ntargets == 0) {
			snprintf(why, wl, "%s: no targets after ':'", quote(e.addr, q, sizeof q));
			goto fail;
		}
	}

	e.hash = hash_lc(e.addr);
	old = find(r, e.addr, e.hash);
	if (old) {
		snprintf(why, wl, "%s is listed twice (first on line %u)", quote(e.addr, q, sizeof q),
		    old->line);
		goto fail;
	}
	if (make_room(r) != 0) {
		snprintf(why, wl, "out of memory");
		goto fail;
	}
	r->e[r->n] = e;
	slot_put(r, r->n);
	r->n++;
	return 0;
fail:
	entry_free(&e);
	return -1;
}

/* Parse recipients text; see recipients.h. */
struct recipients *recipients_parse(const char *name, const char *text, size_t len,
    char *err, size_t errlen)
{
	struct recipients *r = calloc(1, sizeof *r);
	struct textlines tl;
	const char *lwhy = "";
	char why[1024], *s;
	int r_;

	if (name == NULL)
		name = "(recipients)";
	if (errlen)
		err[0] = '\0';
	if (r == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	textlines_init(&tl, text, len);
	while ((r_ = textlines_next(&tl, &s, &lwhy)) == 1) {
		if (parse_line(r, s, tl.lineno, why, sizeof why) != 0) {
			snprintf(err, errlen, "%s:%u: %s", name, tl.lineno, why);
			goto fail;
		}
	}
	if (r_ < 0) {
		snprintf(err, errlen, "%s:%u: %s", name, tl.lineno, lwhy);
		goto fail;
	}
	textlines_free(&tl);
	return r;
fail:
	textlines_free(&tl);
	recipients_free(r);
	return NULL;
}

/* Read path and parse it; see recipients.h. */
struct recipients *recipients_load(const char *path, char *err, size_t errlen)
{
	struct recipients *r;
	char *buf;
	size_t len;

	if (textfile_read(path, RCPT_FILE_MAX, &buf, &len, err, errlen) < 0)
		return NULL;
	r = recipients_parse(path, buf ? buf : "", len, err, errlen);
	if (buf != NULL)
		explicit_bzero(buf, len);
	free(buf);
	return r;
}

/* Is addr_lc a known address or alias? See recipients.h. */
int recipients_lookup(const struct recipients *r, const char *addr_lc, char *const **targets,
    size_t *ntargets)
{
	const struct entry *e;

	if (ntargets)
		*ntargets = 0;
	if (targets)
		*targets = NULL;
	if (addr_lc == NULL)
		return 0;
	e = find(r, addr_lc, hash_lc(addr_lc));
	if (e == NULL)
		return 0;
	if (e->ntargets) {
		if (targets)
			*targets = e->targets;
		if (ntargets)
			*ntargets = e->ntargets;
	}
	return 1;
}

/* Number of entries in r (0 for NULL). */
size_t recipients_count(const struct recipients *r)
{
	return r ? r->n : 0;
}

/* ---- the alias expansion (RCPT and explain-recipient) ---- */

struct walk {
	const struct recipients *r;
	int (*is_local)(void *, const char *);
	void *larg;
	recipients_visit_fn visit;
	void *arg;
	size_t count;
	const char **why;
};

static int
walk(struct walk *w, const char *addr, int depth)
{
	char *const *targets;
	size_t nt = 0;

	if (depth > RECIPIENTS_ALIAS_DEPTH_MAX) {
		*w->why = "alias nesting too deep";
		return -1;
	}
	if (w->r != NULL && recipients_lookup(w->r, addr, &targets, &nt) == 1 && nt > 0) {
		if (w->visit(w->arg, RX_ALIAS, addr, targets, nt, depth) < 0)
			goto nomem;
		for (size_t i = 0; i < nt; i++) {
			const char *at = strrchr(targets[i], '@');

			if (strcmp(targets[i], addr) == 0) {
				/* An alias may list itself to keep a copy. */
				if (w->visit(w->arg, RX_MAILBOX, addr, NULL, 0, depth + 1) < 0)
					goto nomem;
				continue;
			}
			if (at == NULL) {
				*w->why = "alias target has no domain";
				return -1;
			}
			if (!w->is_local(w->larg, at + 1)) {
				/* the administrator's alias forwards off-site: relay it */
				if (++w->count > RECIPIENTS_EXPANSION_MAX)
					goto too_many;
				if (w->visit(w->arg, RX_RELAY, targets[i], NULL, 0, depth + 1) < 0)
					goto nomem;
				continue;
			}
			if (walk(w, targets[i], depth + 1) < 0)
				return -1;
		}
		return 0;
	}
	if (++w->count > RECIPIENTS_EXPANSION_MAX)
		goto too_many;
	if (w->visit(w->arg, RX_MAILBOX, addr, NULL, 0, depth) < 0)
		goto nomem;
	return 0;
too_many:
	*w->why = "alias expands to too many addresses";
	return -1;
nomem:
	*w->why = "out of memory";
	return -1;
}

int recipients_expand(const struct recipients *r, const char *addr_lc,
    int (*is_local)(void *larg, const char *domain), void *larg,
    recipients_visit_fn visit, void *arg, const char **why)
{
	struct walk w = { r, is_local, larg, visit, arg, 0, why };

	return walk(&w, addr_lc, 0);
}
