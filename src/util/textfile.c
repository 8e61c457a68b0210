/*
 * textfile — see textfile.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/textfile.h"

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Read a whole file; see textfile.h. */
int
textfile_read(const char *path, size_t max, char **out, size_t *lenp, char *err, size_t errlen)
{
	char *buf = NULL, *nb;
	size_t len = 0, cap = 0, n;
	FILE *fp = fopen(path, "r");

	*out = NULL;
	*lenp = 0;
	if (fp == NULL) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= max) {
				snprintf(err, errlen, "%s: cannot read: larger than %zu bytes", path, max);
				goto fail;
			}
			cap = cap ? cap * 2 : 65536;
			if ((nb = realloc(buf, cap)) == NULL) {
				snprintf(err, errlen, "%s: cannot read: %s", path, strerror(ENOMEM));
				goto fail;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (n == 0) {
			if (ferror(fp)) {
				int e = errno;
				snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e ? e : EIO));
				goto fail;
			}
			break;
		}
	}
	fclose(fp);
	*out = buf;
	*lenp = len;
	return 0;
fail:
	fclose(fp);
	free(buf);
	return -1;
}

void
textlines_init(struct textlines *t, const char *text, size_t len)
{
	memset(t, 0, sizeof(*t));
	t->text = text;
	t->len = len;
}

/* The next meaningful line; see textfile.h. */
int
textlines_next(struct textlines *t, char **line, const char **why)
{
	while (t->pos < t->len) {
		const char *ls = t->text + t->pos, *nl = memchr(ls, '\n', t->len - t->pos);
		size_t ll = nl ? (size_t)(nl - ls) : t->len - t->pos;
		char *s, *e;

		t->lineno++;
		t->pos += ll + (nl != NULL);
		if (ll && ls[ll - 1] == '\r')
			ll--;
		if (memchr(ls, '\0', ll) != NULL) {
			*why = "NUL byte in line";
			return -1;
		}
		if (ll + 1 > t->cap) {
			char *nb = realloc(t->buf, ll + 1);
			if (nb == NULL) {
				*why = "out of memory";
				return -1;
			}
			t->buf = nb;
			t->cap = ll + 1;
		}
		memcpy(t->buf, ls, ll);
		t->buf[ll] = '\0';
		for (s = t->buf; *s; s++)
			if (*s == '#' && (s == t->buf || is_blank(s[-1]))) {
				*s = '\0';
				break;
			}
		for (s = t->buf; is_blank(*s); s++)
			;
		for (e = s + strlen(s); e > s && is_blank(e[-1]); )
			*--e = '\0';
		if (*s == '\0')
			continue;
		*line = s;
		return 1;
	}
	return 0;
}

void
textlines_free(struct textlines *t)
{
	if (t->buf != NULL)
		explicit_bzero(t->buf, t->cap);
	free(t->buf);
	t->buf = NULL;
	t->cap = 0;
}
