/*
 * smtp_body — message text on the wire: CRLF lines and dot-stuffing (see smtp_body.h).
 */
#include <string.h>

#include "proto/smtp_body.h"

/* ---- encoding ---- */

void
smtp_body_enc_init(struct smtp_body_enc *e)
{
	e->bol = 1;
	e->cr = 0;
}

/* Lines are found with memchr and copied whole; only a bare CR needs a closer look. */
size_t
smtp_body_encode(struct smtp_body_enc *e, const char *in, size_t n, char *out, int stuff)
{
	size_t o = 0, i = 0;

	while (i < n) {
		if (e->cr) {
			/* any CR is a line end on the wire: never a bare CR */
			e->cr = 0;
			out[o++] = '\r';
			out[o++] = '\n';
			e->bol = 1;
			if (in[i] == '\n') {
				i++;
				continue;
			}
		}
		if (stuff && e->bol && in[i] == '.')
			out[o++] = '.';	/* RFC 5321 §4.5.2 transparency */
		const char *nl = memchr(in + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - in) : n;
		const char *cr = memchr(in + i, '\r', end - i);
		size_t stop = cr ? (size_t)(cr - in) : end;
		if (stop > i) {
			memcpy(out + o, in + i, stop - i);
			o += stop - i;
			e->bol = 0;
		}
		if (cr != NULL) {
			e->cr = 1;	/* decided by the next byte, maybe in the next chunk */
			i = stop + 1;
			continue;
		}
		if (nl != NULL) {
			/* a bare LF: the line ends here too */
			out[o++] = '\r';
			out[o++] = '\n';
			e->bol = 1;
			i = end + 1;
		} else
			i = end;
	}
	return o;
}

size_t
smtp_body_encode_end(struct smtp_body_enc *e, char *out, int dot)
{
	size_t o = 0;

	if (e->cr) {
		e->cr = 0;
		out[o++] = '\r';
		out[o++] = '\n';
		e->bol = 1;
	}
	if (!e->bol) {
		out[o++] = '\r';
		out[o++] = '\n';
		e->bol = 1;
	}
	if (dot) {
		out[o++] = '.';
		out[o++] = '\r';
		out[o++] = '\n';
	}
	return o;
}

/* ---- decoding ---- */

/* Decoder states: DATA uses all of them, BDAT text only MID and CR. */
enum { D_BOL, D_DOT, D_DOTCR, D_MID, D_CR };

void
smtp_body_dec_init(struct smtp_body_dec *d, int dots, size_t line_max, smtp_body_put_fn *put,
    smtp_body_long_fn *toolong, void *arg)
{
	d->st = dots ? D_BOL : D_MID;
	d->dots = dots;
	d->crlf = 1;
	d->linelen = 0;
	d->line_max = line_max;
	d->put = put;
	d->toolong = toolong;
	d->arg = arg;
}

/* Count a content byte against the line limit. */
static inline void
linechar(struct smtp_body_dec *d)
{
	if (++d->linelen > d->line_max)
		d->toolong(d->arg);
}

/* BDAT text: the line rules of DATA without the dot. */
static size_t
decode_text(struct smtp_body_dec *d, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		char c = p[i];

		if (d->st == D_CR) {
			if (c == '\n') {
				d->put(d->arg, "\r\n", 2);
				d->crlf = 1;
				d->linelen = 0;
				d->st = D_MID;
				i++;
				continue;
			}
			linechar(d);	/* a bare CR is content */
			d->put(d->arg, "\r", 1);
			d->crlf = 0;
			d->st = D_MID;
			if (c == '\r') {
				d->st = D_CR;
				i++;
			}
			continue;
		}
		size_t j = i;
		while (j < n && p[j] != '\r' && p[j] != '\n')
			j++;
		if (j > i) {
			d->linelen += j - i;
			if (d->linelen > d->line_max)
				d->toolong(d->arg);
			d->put(d->arg, p + i, j - i);
			d->crlf = 0;
			i = j;
			continue;
		}
		if (c == '\r')
			d->st = D_CR;
		else {
			d->put(d->arg, "\r\n", 2);	/* a bare LF ends the line, stored as CRLF */
			d->crlf = 1;
			d->linelen = 0;
		}
		i++;
	}
	return n;
}

size_t
smtp_body_decode(struct smtp_body_dec *d, const char *buf, size_t len, int *end)
{
	size_t i = 0;

	*end = 0;
	if (!d->dots)
		return decode_text(d, buf, len);
	while (i < len) {
		char c = buf[i];

		switch (d->st) {
		case D_BOL:
			if (c == '.') {
				d->st = D_DOT;
				i++;
				continue;
			}
			d->st = D_MID;
			continue;	/* reprocess c as line content */
		case D_DOT:
			if (c == '\r') {
				d->st = D_DOTCR;
				i++;
				continue;
			}
			if (c == '\n') {
				/* "." ended by a bare LF: not an end of data; keep the dot. */
				d->put(d->arg, ".\r\n", 3);
				d->crlf = 0;
				d->linelen = 0;
				d->st = D_BOL;
				i++;
				continue;
			}
			/* RFC 5321 §4.5.2: remove the stuffed dot. */
			linechar(d);
			d->st = D_MID;
			continue;
		case D_DOTCR:
			if (c == '\n') {
				i++;
				if (d->crlf) {
					*end = 1;
					return i;
				}
				/* ".\r\n" after a bare-LF line: a line holding one dot. */
				d->put(d->arg, ".\r\n", 3);
				d->crlf = 1;
				d->linelen = 0;
				d->st = D_BOL;
				continue;
			}
			/* ".\r" then more: the dot was stuffing; the CR is content. */
			linechar(d);
			d->put(d->arg, "\r", 1);
			linechar(d);
			d->st = D_MID;
			if (c == '\r') {
				d->st = D_CR;
				i++;
			}
			continue;
		case D_MID: {
			/* Fast path: copy a run of ordinary bytes at once. */
			size_t j = i;
			while (j < len && buf[j] != '\r' && buf[j] != '\n')
				j++;
			if (j > i) {
				size_t run = j - i;
				d->linelen += run;
				if (d->linelen > d->line_max)
					d->toolong(d->arg);
				d->put(d->arg, buf + i, run);
				i = j;
				continue;
			}
			if (c == '\r') {
				d->st = D_CR;
			} else {
				/* Bare LF ends the line; stored as CRLF, never ends DATA. */
				d->put(d->arg, "\r\n", 2);
				d->crlf = 0;
				d->linelen = 0;
				d->st = D_BOL;
			}
			i++;
			continue;
		}
		case D_CR:
			if (c == '\n') {
				d->put(d->arg, "\r\n", 2);
				d->crlf = 1;
				d->linelen = 0;
				d->st = D_BOL;
				i++;
				continue;
			}
			/* A bare CR is content. */
			linechar(d);
			d->put(d->arg, "\r", 1);
			if (c == '\r') {
				i++;	/* stay in D_CR for this one */
				continue;
			}
			d->st = D_MID;
			continue;
		}
	}
	return i;
}

void
smtp_body_decode_finish(struct smtp_body_dec *d)
{
	if (d->st == D_CR)
		d->put(d->arg, "\r\n", 2);	/* the final CR was the start of a CRLF */
	else if (!d->crlf)
		d->put(d->arg, "\r\n", 2);
	d->st = D_MID;
	d->crlf = 1;
}
