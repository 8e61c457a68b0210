/*
 * fuzz_dovecot_auth — libFuzzer target for src/proto/dovecot_auth.c: what Dovecot's auth
 * socket sends to imsd.
 *
 * The input is split at LF into lines, each parsed with dva_parse and, while it lasts, fed
 * to a handshake; after the handshake the lines are replies. Checked: every parsed string
 * is NUL-terminated within its field and free of control characters where the contract
 * says so, a CONT challenge lies inside the line and is base64 characters, the handshake
 * never lists more than its maximum nor a mechanism twice, and a line that parses still
 * parses with a CR appended. Each line is also tab-unescaped and the result escaped and
 * unescaped again, which must give it back. Any violation abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/dovecot_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

static struct dva_msg m, m2;
static struct dva_handshake hs;
static char a[DVA_LINE_MAX + 2], b[2 * DVA_LINE_MAX + 4], c[DVA_LINE_MAX + 2];

static void
check_msg(const struct dva_msg *x, const char *line, size_t len)
{
	check(strnlen(x->mech, DVA_MECH_MAX) < DVA_MECH_MAX);
	check(strnlen(x->user, DVA_USER_MAX) < DVA_USER_MAX);
	check(strnlen(x->reason, DVA_REASON_MAX) < DVA_REASON_MAX);
	for (const char *p = x->user; *p; p++)
		check((unsigned char)*p >= 0x20 && *p != 0x7f);
	for (const char *p = x->reason; *p; p++)
		check((unsigned char)*p >= 0x20 && *p != 0x7f);
	for (const char *p = x->mech; *p; p++)
		check((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_');
	if (x->kind == DVA_MECH)
		check(x->mech[0] != '\0');
	if (x->kind == DVA_OK || x->kind == DVA_FAIL || x->kind == DVA_CONT)
		check(x->id >= 1 && x->id <= 0xffffffffUL);
	if (x->kind == DVA_CONT) {
		check(x->data >= line && x->data + x->datalen <= line + len);
		for (size_t i = 0; i < x->datalen; i++)
			check(x->data[i] != '\t' && x->data[i] != '\n' && x->data[i] != '\r');
	} else
		check(x->data == NULL && x->datalen == 0);
}

static void
one_line(const char *line, size_t len)
{
	int r = dva_parse(line, len, &m);
	int u;

	if (r == 0) {
		check_msg(&m, line, len);
		if (len < DVA_LINE_MAX && (len == 0 || line[len - 1] != '\r')) {
			memcpy(c, line, len);
			c[len] = '\r';
			check(dva_parse(c, len + 1, &m2) == 0 && m2.kind == m.kind && m2.id == m.id);
			check(strcmp(m2.user, m.user) == 0 && m2.temp == m.temp);
		}
		if (!hs.done) {
			int h = dva_handshake_feed(&hs, &m);

			check(hs.nmechs <= DVA_MECHS_MAX);
			for (unsigned i = 0; i < hs.nmechs; i++)
				for (unsigned j = i + 1; j < hs.nmechs; j++)
					check(strcasecmp(hs.mechs[i], hs.mechs[j]) != 0);
			check(h != DVA_HS_DONE || (hs.done && hs.version_seen && hs.major == DVA_MAJOR));
			if (h == DVA_HS_ERROR)
				hs.done = 1;	/* the client would hang up: the rest are replies */
		}
	} else
		check(r == -1);

	/* unescape, escape, unescape: the same string */
	if (len <= DVA_LINE_MAX && (u = dva_unescape(line, len, a, sizeof(a))) >= 0) {
		check((size_t)u == strlen(a) && (size_t)u <= len);
		int e = dva_escape(a, b, sizeof(b));
		check(e >= u && strchr(b, '\t') == NULL && strchr(b, '\n') == NULL);
		check(dva_unescape(b, (size_t)e, c, sizeof(c)) == u && memcmp(a, c, (size_t)u) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	size_t off = 0;

	dva_handshake_init(&hs);
	while (off < size) {
		const char *nl = memchr(s + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (s + off)) : size - off;

		one_line(s + off, len);
		off += len + 1;
	}
	return 0;
}
