/*
 * senderlogins — sender_login_maps; see senderlogins.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/senderlogins.h"
#include "util/textfile.h"

#define E(...) snprintf(err, errlen, __VA_ARGS__)
#define KEY_MAX 320

struct entry {
	char *key;		/* lower-case address or "@domain" */
	char **logins;
	size_t nlogins;
};

struct senderlogins {
	struct entry *e;	/* sorted by key */
	size_t n;
};

static int
by_key(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key);
}

static void
free_entry(struct entry *e)
{
	for (size_t i = 0; i < e->nlogins; i++)
		free(e->logins[i]);
	free(e->logins);
	free(e->key);
}

void
senderlogins_free(struct senderlogins *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		free_entry(&m->e[i]);
	free(m->e);
	free(m);
}

/* A key: an address with one '@' and something on both sides, or "@domain"; printable
 * ASCII without blanks (UTF-8 octets allowed). */
static int
key_ok(const char *k)
{
	const char *at = strchr(k, '@');

	if (at == NULL || strchr(at + 1, '@') != NULL || at[1] == '\0' || strlen(k) >= KEY_MAX)
		return 0;
	for (const unsigned char *p = (const unsigned char *)k; *p; p++)
		if (*p <= ' ' || *p == 127)
			return 0;
	return 1;
}

struct senderlogins *
senderlogins_parse(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
	struct senderlogins *m = calloc(1, sizeof(*m));
	struct textlines t;
	size_t cap = 0;
	char *line;
	const char *why;
	int r;

	if (m == NULL) {
		E("%s: out of memory", path);
		return NULL;
	}
	textlines_init(&t, text, len);
	while ((r = textlines_next(&t, &line, &why)) > 0) {
		struct entry e = { 0 };
		char *p = line, *k;

		k = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (*p)
			*p++ = '\0';
		for (char *q = k; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		if (!key_ok(k)) {
			E("%s:%u: \"%.80s\" is not an address or @domain", path, t.lineno, k);
			goto fail;
		}
		while (*p) {
			char *l;
			while (*p == ' ' || *p == '\t' || *p == ',')
				p++;
			if (*p == '\0')
				break;
			l = p;
			while (*p && *p != ' ' && *p != '\t' && *p != ',')
				p++;
			if (*p)
				*p++ = '\0';
			if (e.nlogins >= SL_LOGINS) {
				E("%s:%u: more than %d logins for %s", path, t.lineno, SL_LOGINS, k);
				free_entry(&e);
				goto fail;
			}
			char **nl = realloc(e.logins, (e.nlogins + 1) * sizeof(*nl));
			if (nl == NULL || (e.logins = nl, (nl[e.nlogins] = strdup(l)) == NULL)) {
				E("%s: out of memory", path);
				free_entry(&e);
				goto fail;
			}
			e.nlogins++;
		}
		if (e.nlogins == 0) {
			E("%s:%u: %s names no login (KEY LOGIN[, LOGIN ...])", path, t.lineno, k);
			goto fail;
		}
		if (m->n >= SL_ENTRIES) {
			E("%s:%u: more than %d entries", path, t.lineno, SL_ENTRIES);
			free_entry(&e);
			goto fail;
		}
		if ((e.key = strdup(k)) == NULL) {
			E("%s: out of memory", path);
			free_entry(&e);
			goto fail;
		}
		if (m->n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct entry *ne = realloc(m->e, nc * sizeof(*ne));
			if (ne == NULL) {
				E("%s: out of memory", path);
				free_entry(&e);
				goto fail;
			}
			m->e = ne;
			cap = nc;
		}
		m->e[m->n++] = e;
	}
	if (r < 0) {
		E("%s:%u: %s", path, t.lineno, why);
		goto fail;
	}
	textlines_free(&t);
	if (m->n > 1)
		qsort(m->e, m->n, sizeof(*m->e), by_key);
	for (size_t i = 1; i < m->n; i++)
		if (strcmp(m->e[i - 1].key, m->e[i].key) == 0) {
			E("%s: %s is listed twice", path, m->e[i].key);
			senderlogins_free(m);
			return NULL;
		}
	return m;
fail:
	textlines_free(&t);
	senderlogins_free(m);
	return NULL;
}

struct senderlogins *
senderlogins_load(const char *path, char *err, size_t errlen)
{
	struct senderlogins *m;
	char *buf;
	size_t len;

	if (textfile_read(path, SL_FILE_MAX, &buf, &len, err, errlen) < 0)
		return NULL;
	m = senderlogins_parse(path, buf ? buf : "", len, err, errlen);
	free(buf);
	return m;
}

static const struct entry *
find(const struct senderlogins *m, const char *key)
{
	struct entry k = { .key = (char *)key };

	return m->n ? bsearch(&k, m->e, m->n, sizeof(*m->e), by_key) : NULL;
}

int
senderlogins_owns(const struct senderlogins *m, const char *login, const char *address)
{
	char key[KEY_MAX];
	const struct entry *e;
	const char *at;
	size_t n = strlen(address);

	if (n == 0)
		return 1;	/* the null sender: bounces, and nobody's */
	if (m == NULL || login == NULL || login[0] == '\0' || n >= sizeof(key) ||
	    (at = strrchr(address, '@')) == NULL)
		return 0;
	for (size_t i = 0; i <= n; i++)
		key[i] = (char)tolower((unsigned char)address[i]);
	if ((e = find(m, key)) == NULL && (e = find(m, key + (at - address))) == NULL)
		return 0;
	for (size_t i = 0; i < e->nlogins; i++)
		if (strcmp(e->logins[i], login) == 0)
			return 1;
	return 0;
}

size_t
senderlogins_count(const struct senderlogins *m)
{
	return m ? m->n : 0;
}
