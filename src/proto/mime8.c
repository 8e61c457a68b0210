/*
 * mime8 — 8bit to quoted-printable, MIME-aware. See mime8.h. PURE.
 */
#include "proto/mime8.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/sbuf.h"

int
mime8_has_8bit(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)buf[i] > 127 || buf[i] == '\0')
			return 1;
	return 0;
}

/* Quoted-printable of a CRLF body (RFC 2045 6.7): hard line breaks stay CRLF, soft breaks
 * keep lines at most 76 characters, trailing whitespace is encoded. */
static void
qp_encode(struct sbuf *o, const char *b, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b[i];
		char enc[4];
		size_t el;
		int at_eol;

		if (c == '\r' && i + 1 < n && b[i + 1] == '\n') {
			sbuf_puts(o, "\r\n");
			i++;
			col = 0;
			continue;
		}
		at_eol = i + 1 == n || (b[i + 1] == '\r' && i + 2 < n && b[i + 2] == '\n');
		if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol)) {
			enc[0] = (char)c;
			el = 1;
		} else {
			enc[0] = '=';
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			el = 3;
		}
		/* a soft break leaves room for the "=" that ends the line */
		if (col + el > MIME8_QP_LINE - 1 && !(at_eol && col + el <= MIME8_QP_LINE)) {
			sbuf_puts(o, "=\r\n");
			col = 0;
		}
		sbuf_add(o, enc, el);
		col += el;
	}
}

/* The value of header field name in the header hdr[0..hl), unfolded into v (empty if
 * absent). Returns 1 if present. */
static int
field(const char *hdr, size_t hl, const char *name, char *v, size_t vl)
{
	size_t nl = strlen(name), i = 0, o = 0;

	v[0] = '\0';
	while (i < hl) {
		size_t ls = i;
		const char *e = memchr(hdr + i, '\n', hl - i);
		size_t le = e ? (size_t)(e - hdr) : hl;
		if (le - ls > nl && strncasecmp(hdr + ls, name, nl) == 0 && hdr[ls + nl] == ':') {
			size_t j = ls + nl + 1;
			for (;;) {
				for (; j < le; j++)
					if (hdr[j] != '\r' && o + 1 < vl)
						v[o++] = hdr[j] == '\t' ? ' ' : hdr[j];
				if (le + 1 < hl && (hdr[le + 1] == ' ' || hdr[le + 1] == '\t')) {
					j = le + 1;
					e = memchr(hdr + j, '\n', hl - j);
					le = e ? (size_t)(e - hdr) : hl;
					continue;
				}
				break;
			}
			v[o] = '\0';
			return 1;
		}
		i = le + 1;
	}
	return 0;
}

/* The media type (lower-case, "type/subtype") and the boundary parameter of a
 * Content-Type value. */
static void
ctype(const char *v, char *type, size_t tl, char *boundary, size_t bl)
{
	size_t o = 0;
	const char *p = v;

	while (*p == ' ')
		p++;
	for (; *p && *p != ';' && *p != ' ' && *p != '(' && o + 1 < tl; p++)
		type[o++] = (char)tolower((unsigned char)*p);
	type[o] = '\0';
	if (o == 0)
		snprintf(type, tl, "text/plain");
	boundary[0] = '\0';
	for (const char *b = v; (b = strchr(b, ';')) != NULL;) {
		b++;
		while (*b == ' ')
			b++;
		if (strncasecmp(b, "boundary", 8) != 0)
			continue;
		b += 8;
		while (*b == ' ')
			b++;
		if (*b != '=')
			continue;
		b++;
		while (*b == ' ')
			b++;
		o = 0;
		if (*b == '"') {
			for (b++; *b && *b != '"' && o + 1 < bl; b++)
				boundary[o++] = *b;
		} else {
			for (; *b && *b != ';' && *b != ' ' && o + 1 < bl; b++)
				boundary[o++] = *b;
		}
		boundary[o] = '\0';
		break;
	}
}

static int convert_entity(struct sbuf *o, const char *m, size_t len, int depth, int in_msg,
    char *why, size_t wl);

/* Copy the header hdr[0..hl) (without its empty line) dropping Content-Transfer-Encoding. */
static void
copy_header_without_cte(struct sbuf *o, const char *hdr, size_t hl)
{
	size_t i = 0;
	int skipping = 0;

	while (i < hl) {
		const char *e = memchr(hdr + i, '\n', hl - i);
		size_t le = e ? (size_t)(e - hdr) + 1 : hl;
		int cont = hdr[i] == ' ' || hdr[i] == '\t';
		if (!cont)
			skipping = le - i > 26 &&
			    strncasecmp(hdr + i, "Content-Transfer-Encoding:", 26) == 0;
		if (!skipping)
			sbuf_add(o, hdr + i, le - i);
		i = le;
	}
}

/* A multipart body: preamble, parts, epilogue; each part converted. */
static int
convert_multipart(struct sbuf *o, const char *b, size_t n, const char *boundary, int depth,
    char *why, size_t wl)
{
	char delim[120];
	size_t dl, i = 0, part_start = 0;
	int in_part = 0, closed = 0;

	if (boundary[0] == '\0') {
		snprintf(why, wl, "a multipart part has no boundary");
		return -1;
	}
	dl = (size_t)snprintf(delim, sizeof(delim), "--%s", boundary);
	while (i < n && !closed) {
		const char *e = memchr(b + i, '\n', n - i);
		size_t le = e ? (size_t)(e - b) + 1 : n;
		int is_delim = le - i >= dl && memcmp(b + i, delim, dl) == 0, last = 0;
		if (is_delim) {
			/* "--boundary" then "--" for the last, then only whitespace to the CRLF
			 * (RFC 2046 5.1.1): "--boundaryX" is content */
			size_t k = i + dl;
			if (k + 2 <= le && memcmp(b + k, "--", 2) == 0) {
				last = 1;
				k += 2;
			}
			while (k < le && (b[k] == ' ' || b[k] == '\t'))
				k++;
			is_delim = (k + 2 == le && b[k] == '\r' && b[k + 1] == '\n') || k == le;
		}
		if (is_delim) {
			if (in_part) {
				/* the CRLF before the delimiter belongs to it (RFC 2046 5.1.1) */
				size_t pe = i >= part_start + 2 ? i - 2 : part_start;
				if (convert_entity(o, b + part_start, pe - part_start, depth + 1, 0, why,
				    wl) < 0)
					return -1;
				if (pe < i)
					sbuf_add(o, b + pe, i - pe);
			} else {
				/* the preamble: ignored by readers; 8-bit bytes there become '?' */
				for (size_t k = 0; k < i; k++) {
					char c = (unsigned char)b[k] > 127 || b[k] == '\0' ? '?' : b[k];
					sbuf_add(o, &c, 1);
				}
			}
			sbuf_add(o, b + i, le - i);
			in_part = !last;
			closed = last;
			part_start = le;
		}
		i = le;
	}
	if (!closed) {
		snprintf(why, wl, "a multipart part never closes its boundary");
		return -1;
	}
	/* the epilogue */
	for (size_t k = i; k < n; k++) {
		char c = (unsigned char)b[k] > 127 || b[k] == '\0' ? '?' : b[k];
		sbuf_add(o, &c, 1);
	}
	return 0;
}

/* One entity (header, empty line, body). in_msg: the top-level message (MIME-Version is
 * added there when a Content-Transfer-Encoding field has to be). */
static int
convert_entity(struct sbuf *o, const char *m, size_t len, int depth, int in_msg, char *why,
    size_t wl)
{
	char cte[128], ct[1024], type[128], boundary[100], mv[32];
	const char *e;
	size_t hl, bstart;

	if (depth > MIME8_DEPTH_MAX) {
		snprintf(why, wl, "MIME parts nested deeper than %d", MIME8_DEPTH_MAX);
		return -1;
	}
	if (len >= 2 && m[0] == '\r' && m[1] == '\n') {
		hl = 0;
		bstart = 2;
	} else if ((e = memmem(m, len, "\r\n\r\n", 4)) != NULL) {
		hl = (size_t)(e - m) + 2;
		bstart = hl + 2;
	} else {
		hl = len;	/* all header */
		bstart = len;
	}
	if (!mime8_has_8bit(m + bstart, len - bstart)) {
		sbuf_add(o, m, len);		/* already 7 bit */
		return 0;
	}
	field(m, hl, "Content-Transfer-Encoding", cte, sizeof(cte));
	field(m, hl, "Content-Type", ct, sizeof(ct));
	ctype(ct, type, sizeof(type), boundary, sizeof(boundary));
	for (char *p = cte; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	{
		char *s = cte;
		while (*s == ' ')
			s++;
		memmove(cte, s, strlen(s) + 1);
		for (size_t k = strlen(cte); k > 0 && cte[k - 1] == ' '; k--)
			cte[k - 1] = '\0';
	}
	if (strcmp(cte, "binary") == 0) {
		snprintf(why, wl, "a part is binary (BINARYMIME): it cannot be sent as 7 bit");
		return -1;
	}
	if (strncmp(type, "multipart/", 10) == 0) {
		sbuf_add(o, m, bstart);
		return convert_multipart(o, m + bstart, len - bstart, boundary, depth, why, wl);
	}
	if (strcmp(type, "message/rfc822") == 0) {
		/* the enclosed message, converted; the part itself becomes 7bit */
		copy_header_without_cte(o, m, hl);
		sbuf_puts(o, "Content-Transfer-Encoding: 7bit\r\n\r\n");
		return convert_entity(o, m + bstart, len - bstart, depth + 1, 1, why, wl);
	}
	if (strncmp(type, "message/", 8) == 0) {
		snprintf(why, wl, "a %s part holds 8-bit data that cannot be encoded", type);
		return -1;
	}
	/* a leaf: quoted-printable */
	copy_header_without_cte(o, m, hl);
	if (in_msg && !field(m, hl, "MIME-Version", mv, sizeof(mv)))
		sbuf_puts(o, "MIME-Version: 1.0\r\n");
	sbuf_puts(o, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	qp_encode(o, m + bstart, len - bstart);
	return 0;
}

int
mime8_downgrade(const char *msg, size_t len, char **out, size_t *outlen, char *why, size_t wl)
{
	struct sbuf o = { 0 };

	if (convert_entity(&o, msg, len, 0, 1, why, wl) < 0 || o.bad) {
		if (o.bad)
			snprintf(why, wl, "out of memory");
		free(o.p);
		return -1;
	}
	if (o.p == NULL && (o.p = malloc(1)) == NULL) {	/* an empty message: empty output */
		snprintf(why, wl, "out of memory");
		return -1;
	}
	*out = o.p;
	*outlen = o.len;
	return 0;
}
