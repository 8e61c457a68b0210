/*
 * sbuf — a growable byte buffer for building text (queue headers, reports, header fields,
 * converted messages, metrics pages). PURE.
 *
 * Start from { 0 }. The contents stay NUL-terminated once anything was added (p is NULL
 * before). An allocation failure sets bad and every later call does nothing, so a builder
 * appends freely and checks bad once at the end; the owner frees p.
 */
#ifndef IMSD_SBUF_H
#define IMSD_SBUF_H

#include <stddef.h>

struct sbuf {
	char *p;
	size_t len, cap;
	int bad;
};

void sbuf_add(struct sbuf *b, const void *s, size_t n);
void sbuf_puts(struct sbuf *b, const char *s);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
