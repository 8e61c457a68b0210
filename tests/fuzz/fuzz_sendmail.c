/*
 * fuzz_sendmail — libFuzzer target for the pure parts of the sendmail(1) interface:
 * sm_prepare (header section, To/Cc/Bcc address lists, Bcc removal, CRLF and the lone dot)
 * and sm_drop_parse (maildrop files, which any local user can write).
 *
 * Byte 0: bit 0 dot_ends, bit 1 extract, bit 2 add headers, bit 3 a small size limit,
 * bit 4 parse the rest as a maildrop file instead. The contract is checked: the result is
 * CRLF lines only, holds no Bcc field, every recipient passes sm_addr_ok, a parsed maildrop
 * file round-trips; any violation abort()s.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/sendmail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

static void
check_msg(const struct sm_msg *m, size_t max)
{
	int bol = 1, in_header = 1;

	check(max == 0 || m->len <= max);
	check(m->data != NULL && m->data[m->len] == '\0');
	for (size_t i = 0; i < m->len; i++) {
		if (m->data[i] == '\n')
			check(i > 0 && m->data[i - 1] == '\r');
		if (bol && in_header) {
			if (m->data[i] == '\r')
				in_header = 0;	/* the blank line */
			else
				check(m->len - i < 4 || strncasecmp(m->data + i, "Bcc:", 4) != 0);
		}
		bol = m->data[i] == '\n';
	}
	check(m->len == 0 || bol || m->headers_only == 0 || m->data[m->len - 1] == '\n');
	check(m->nrcpts <= SM_RCPTS_MAX);
	for (size_t i = 0; i < m->nrcpts; i++)
		check(sm_addr_ok(m->rcpts[i]) && strlen(m->rcpts[i]) <= SM_ADDR_MAX);
}

static void
check_drop(const char *buf, size_t len)
{
	struct sm_drop d, d2;
	char err[512];
	char *again;
	size_t n = 0, cap;

	if (sm_drop_parse(buf, len, &d, err, sizeof(err)) < 0) {
		check(err[0] != '\0');
		return;
	}
	check(d.nrcpts > 0 && d.data >= buf && d.data + d.len == buf + len);
	check(d.sender[0] == '\0' || sm_addr_ok(d.sender));
	/* written again the way sendmail writes it, it parses to the same envelope */
	cap = 64 + d.nrcpts * (SM_ADDR_MAX + 4) + d.len;
	again = malloc(cap);
	n += (size_t)snprintf(again + n, cap - n, "%sS %s\n", SM_DROP_MAGIC, d.sender);
	for (size_t i = 0; i < d.nrcpts; i++) {
		check(sm_addr_ok(d.rcpts[i]));
		n += (size_t)snprintf(again + n, cap - n, "R %s\n", d.rcpts[i]);
	}
	again[n++] = '\n';
	memcpy(again + n, d.data, d.len);
	n += d.len;
	check(sm_drop_parse(again, n, &d2, err, sizeof(err)) == 0);
	check(d2.nrcpts == d.nrcpts && strcmp(d2.sender, d.sender) == 0 && d2.len == d.len);
	for (size_t i = 0; i < d.nrcpts; i++)
		check(strcmp(d.rcpts[i], d2.rcpts[i]) == 0);
	sm_drop_free(&d2);
	sm_drop_free(&d);
	free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sm_add add = { "From: <f@example.org>", "Date: x", "Message-ID: <i@example.org>" };
	struct sm_msg m;
	char err[512];
	char *copy;
	size_t max;
	int flags;

	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	if (flags & 16) {
		check_drop(copy, size);
		free(copy);
		return 0;
	}
	max = (flags & 8) ? 200 : 0;
	err[0] = '\0';
	if (sm_prepare(copy, size, flags & 1, (flags >> 1) & 1, "example.org",
	    (flags & 4) ? &add : NULL, max, &m, err, sizeof(err)) == 0) {
		check_msg(&m, max);
		sm_msg_free(&m);
	} else
		check(err[0] != '\0');
	free(copy);
	return 0;
}
