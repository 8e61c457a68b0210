/*
 * transport — the transport_map file (contract in transport.h).
 */
#include "policy/transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/intl.h"
#include "util/str.h"
#include "util/textfile.h"

struct tm_entry {
	char domain[256];
	struct conf_transport t;
	unsigned line;
};

struct transport_map {
	struct tm_entry *e;
	size_t n;
};

void
transport_map_free(struct transport_map *m)
{
	if (m == NULL)
		return;
	free(m->e);
	free(m);
}

/* A lower-case A-label domain name of at least two labels: letters, digits and hyphens,
 * labels of 1 to 63 octets that neither start nor end with a hyphen. */
static int
hostname_ok(const char *d)
{
	size_t label = 0, labels = 1;

	if (*d == '\0' || strlen(d) > 253)
		return 0;
	for (const char *p = d; ; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || p[-1] == '-')
				return 0;
			if (*p == '\0')
				break;
			labels++;
			label = 0;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    (*p == '-' && label > 0)))
			return 0;
		label++;
	}
	return labels >= 2;
}

/* Split line into two blank-separated fields; -1 unless there are exactly two. */
static int
two_fields(char *line, char **a, char **b)
{
	char *p = line;

	*a = p;
	p += strcspn(p, " \t");
	if (*p == '\0')
		return -1;
	*p++ = '\0';
	p += strspn(p, " \t");
	*b = p;
	p += strcspn(p, " \t");
	if (**b == '\0')
		return -1;
	if (*p != '\0') {
		*p++ = '\0';
		p += strspn(p, " \t");
		if (*p != '\0')
			return -1;
	}
	return 0;
}

/* Parse text; see transport.h. */
struct transport_map *
transport_map_parse(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
	struct transport_map *m = calloc(1, sizeof(*m));
	struct textlines tl;
	const char *lwhy;
	char *line, *dom, *tr, why[400], q[200], dlc[256];
	size_t cap = 0;
	int r;

	if (m == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	textlines_init(&tl, text, len);
	while ((r = textlines_next(&tl, &line, &lwhy)) > 0) {
		struct tm_entry e;

		memset(&e, 0, sizeof(e));
		str_quote(line, 80, q, sizeof(q));	/* before two_fields cuts it */
		if (two_fields(line, &dom, &tr) < 0) {
			snprintf(err, errlen, "%s:%u: %s is not `DOMAIN TRANSPORT`", name, tl.lineno, q);
			goto fail;
		}
		{
			size_t dl = strlen(dom);
			char *d = dom;

			if (dl > 1 && d[dl - 1] == '.')
				d[dl - 1] = '\0';
			if (d[0] == '.' || d[0] == '[' || strchr(d, '@') != NULL ||
			    intl_domain_ascii(d, dlc, sizeof(dlc), &lwhy) < 0 || !hostname_ok(dlc)) {
				snprintf(err, errlen, "%s:%u: %s is not a domain name", name, tl.lineno,
				    str_quote(dom, 80, q, sizeof(q)));
				goto fail;
			}
		}
		if (conf_transport_parse(tr, &e.t, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%u: %s", name, tl.lineno, why);
			goto fail;
		}
		memcpy(e.domain, dlc, strlen(dlc) + 1);
		e.line = tl.lineno;
		for (size_t i = 0; i < m->n; i++)
			if (strcmp(m->e[i].domain, e.domain) == 0) {
				snprintf(err, errlen, "%s:%u: %s is listed twice (first on line %u)", name,
				    tl.lineno, e.domain, m->e[i].line);
				goto fail;
			}
		if (m->n >= TRANSPORT_MAP_ENTRIES) {
			snprintf(err, errlen, "%s:%u: more than %u entries", name, tl.lineno,
			    TRANSPORT_MAP_ENTRIES);
			goto fail;
		}
		if (m->n == cap) {
			size_t nc = cap ? cap * 2 : 8;
			struct tm_entry *ne = realloc(m->e, nc * sizeof(*ne));

			if (ne == NULL) {
				snprintf(err, errlen, "%s: out of memory", name);
				goto fail;
			}
			m->e = ne;
			cap = nc;
		}
		m->e[m->n++] = e;
	}
	if (r < 0) {
		snprintf(err, errlen, "%s:%u: %s", name, tl.lineno, lwhy);
		goto fail;
	}
	textlines_free(&tl);
	return m;
fail:
	textlines_free(&tl);
	transport_map_free(m);
	return NULL;
}

struct transport_map *
transport_map_load(const char *path, char *err, size_t errlen)
{
	struct transport_map *m;
	char *buf = NULL;
	size_t len = 0;

	if (textfile_read(path, TRANSPORT_MAP_MAX, &buf, &len, err, errlen) < 0)
		return NULL;
	m = transport_map_parse(path, buf ? buf : "", len, err, errlen);
	free(buf);
	return m;
}

const struct conf_transport *
transport_map_lookup(const struct transport_map *m, const char *domain_lc)
{
	for (size_t i = 0; m != NULL && i < m->n; i++)
		if (strcmp(m->e[i].domain, domain_lc) == 0)
			return &m->e[i].t;
	return NULL;
}

size_t
transport_map_count(const struct transport_map *m)
{
	return m ? m->n : 0;
}

const char *
transport_map_domain(const struct transport_map *m, size_t i)
{
	return m->e[i].domain;
}

const struct conf_transport *
transport_map_transport(const struct transport_map *m, size_t i)
{
	return &m->e[i].t;
}

unsigned
transport_map_line(const struct transport_map *m, size_t i)
{
	return m->e[i].line;
}
