/*
 * lda — the local delivery request protocol; see lda.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/lda.h"

#define W(...) snprintf(why, whylen, __VA_ARGS__)

static const char *const fields[] = { "user", "mailbox", "sender", "recipient", "offset",
	"length", "id" };
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* printable ASCII and UTF-8 bytes, nothing below space, no DEL */
static int
clean(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return 0;
	return 1;
}

static int
good_user(const char *s, size_t n)
{
	if (n == 0 || n >= sizeof(((struct lda_request *)0)->user) || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '-' || c == '.' || (c == '$' && i == n - 1)))
			return 0;
	}
	return !(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' && s[1] == '.');
}

static int
parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

int
lda_request_encode(const struct lda_request *r, char *buf, size_t len)
{
	size_t ul = strlen(r->user), sl = strlen(r->sender), rl = strlen(r->recipient),
	    il = strlen(r->id);
	int n;

	if (!good_user(r->user, ul) || !clean(r->sender, sl) || !clean(r->recipient, rl) ||
	    il == 0 || !clean(r->id, il) || strchr(r->id, ' ') != NULL || rl == 0 ||
	    r->length > LDA_MESSAGE_MAX || r->offset > LDA_MESSAGE_MAX ||
	    (r->mailbox != LDA_MBOX && r->mailbox != LDA_MAILDIR))
		return -1;
	n = snprintf(buf, len, "IMSDLDA 1\nuser %s\nmailbox %s\nsender <%s>\nrecipient <%s>\n"
	    "offset %llu\nlength %llu\nid %s\n", r->user, r->mailbox == LDA_MBOX ? "mbox" :
	    "maildir", r->sender, r->recipient, (unsigned long long)r->offset,
	    (unsigned long long)r->length, r->id);
	if (n < 0 || (size_t)n >= len || (size_t)n > LDA_REQUEST_MAX)
		return -1;
	return n;
}

int
lda_request_decode(const char *buf, size_t len, struct lda_request *r, char *why,
    size_t whylen)
{
	size_t pos = 0, k = 0;
	static const char magic[] = "IMSDLDA 1\n";

	memset(r, 0, sizeof(*r));
	if (len > LDA_REQUEST_MAX) {
		W("request longer than %d bytes", LDA_REQUEST_MAX);
		return -1;
	}
	if (len < sizeof(magic) - 1 || memcmp(buf, magic, sizeof(magic) - 1) != 0) {
		W("not an IMSDLDA 1 request");
		return -1;
	}
	pos = sizeof(magic) - 1;
	for (k = 0; k < NFIELDS; k++) {
		const char *line = buf + pos, *nl = memchr(line, '\n', len - pos), *v;
		size_t fl = strlen(fields[k]), ll, vl;
		if (nl == NULL) {
			W("missing field %s", fields[k]);
			return -1;
		}
		ll = (size_t)(nl - line);
		if (ll < fl + 1 || memcmp(line, fields[k], fl) != 0 || line[fl] != ' ') {
			W("expected field %s", fields[k]);
			return -1;
		}
		v = line + fl + 1;
		vl = ll - fl - 1;
		if (vl > LDA_FIELD_MAX - 1 || !clean(v, vl)) {
			W("field %s: too long or a control character", fields[k]);
			return -1;
		}
		switch (k) {
		case 0:
			if (!good_user(v, vl)) {
				W("user: not a login name");
				return -1;
			}
			memcpy(r->user, v, vl);
			break;
		case 1:
			if (vl == 4 && memcmp(v, "mbox", 4) == 0)
				r->mailbox = LDA_MBOX;
			else if (vl == 7 && memcmp(v, "maildir", 7) == 0)
				r->mailbox = LDA_MAILDIR;
			else {
				W("mailbox: neither mbox nor maildir");
				return -1;
			}
			break;
		case 2:
		case 3:
			if (vl < 2 || v[0] != '<' || v[vl - 1] != '>' ||
			    memchr(v + 1, '>', vl - 2) != NULL || memchr(v + 1, '<', vl - 2) != NULL ||
			    (k == 3 && vl == 2)) {
				W("%s: not an address in angle brackets", fields[k]);
				return -1;
			}
			memcpy(k == 2 ? r->sender : r->recipient, v + 1, vl - 2);
			break;
		case 4:
		case 5:
			if (parse_u64(v, vl, LDA_MESSAGE_MAX, k == 4 ? &r->offset : &r->length) < 0) {
				W("%s: not a number up to %llu", fields[k],
				    (unsigned long long)LDA_MESSAGE_MAX);
				return -1;
			}
			break;
		case 6:
			if (vl == 0 || vl >= sizeof(r->id) || memchr(v, ' ', vl) != NULL ||
			    memchr(v, '/', vl) != NULL) {
				W("id: empty, too long, or a blank or '/' in it");
				return -1;
			}
			memcpy(r->id, v, vl);
			break;
		}
		pos += ll + 1;
	}
	if (pos != len) {
		W("text after the last field");
		return -1;
	}
	return 0;
}

int
lda_reply_encode(enum lda_status st, const char *reason, char *buf, size_t len)
{
	const char *word = st == LDA_OK ? "ok" : st == LDA_TEMP ? "temp" : "perm";
	size_t o, rl;
	int n;

	if (st == LDA_OK || reason == NULL)
		reason = "";
	n = snprintf(buf, len, "%s%s", word, reason[0] != '\0' ? " " : "");
	if (n < 0 || (size_t)n >= len)
		return -1;
	o = (size_t)n;
	rl = strlen(reason);
	if (rl > LDA_REASON_MAX)
		rl = LDA_REASON_MAX;
	for (size_t i = 0; i < rl && o + 1 < len; i++) {
		unsigned char c = (unsigned char)reason[i];
		buf[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	buf[o] = '\0';
	return (int)o;
}

int
lda_reply_decode(const char *buf, size_t len, enum lda_status *st, char *reason, size_t rlen)
{
	size_t wl;

	if (rlen > 0)
		reason[0] = '\0';
	if (len == 2 && memcmp(buf, "ok", 2) == 0) {
		*st = LDA_OK;
		return 0;
	}
	if (len > 5 && memcmp(buf, "temp ", 5) == 0) {
		*st = LDA_TEMP;
		wl = 5;
	} else if (len > 5 && memcmp(buf, "perm ", 5) == 0) {
		*st = LDA_PERM;
		wl = 5;
	} else
		return -1;
	if (len - wl > LDA_REASON_MAX || !clean(buf + wl, len - wl))
		return -1;
	snprintf(reason, rlen, "%.*s", (int)(len - wl), buf + wl);
	return 0;
}
