/*
 * qfmt — encode/decode of queue files and journals; see qfmt.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/qfmt.h"
#include "util/sbuf.h"
#include "util/utf8.h"

/* An address value (sender, rcpt): printable ASCII or well-formed UTF-8 (RFC 6531). */
static int
addr_ok(const char *s)
{
	return utf8_text_ok(s, strlen(s), 0, NULL);
}

/* Printable ASCII only (TAB too when tab_ok). */
static int
value_ok(const char *s, int tab_ok)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c < 0x20 && !(tab_ok && c == '\t')) || c > 0x7e)
			return 0;
	}
	return 1;
}

static void
sb_rec(struct sbuf *b, const char *tag, const char *v1, const char *v2)
{
	sbuf_add(b, tag, strlen(tag));
	sbuf_add(b, " ", 1);
	sbuf_add(b, v1, strlen(v1));
	if (v2 != NULL) {
		sbuf_add(b, "\t", 1);
		sbuf_add(b, v2, strlen(v2));
	}
	sbuf_add(b, "\n", 1);
}

/* Encode the header; see qfmt.h. */
int
qfmt_header_encode(const struct qenv *e, char **out, size_t *outlen)
{
	struct sbuf b = { 0 };
	char num[32];

	if (!value_ok(e->qid, 0) || !value_ok(e->client, 0) || !value_ok(e->helo, 0) ||
	    !addr_ok(e->sender) || e->qid[0] == '\0')
		return -1;
	for (size_t i = 0; i < e->nrcpts; i++)
		if (!addr_ok(e->rcpts[i].addr) || !addr_ok(e->rcpts[i].orcpt) ||
		    e->rcpts[i].addr[0] == '\0' || (e->rcpts[i].dsn_orcpt != NULL &&
		    (!value_ok(e->rcpts[i].dsn_orcpt, 0) || e->rcpts[i].dsn_orcpt[0] == '\0')) ||
		    (e->rcpts[i].notify & ~(DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE |
		    DSN_NOTIFY_DELAY | DSN_NOTIFY_NEVER)) != 0)
			return -1;
	if (!value_ok(e->envid, 0) || e->dsn_ret < DSN_RET_NONE || e->dsn_ret > DSN_RET_HDRS)
		return -1;
	sbuf_add(&b, QFMT_MAGIC, strlen(QFMT_MAGIC));
	sb_rec(&b, "id", e->qid, NULL);
	snprintf(num, sizeof(num), "%lld", (long long)e->arrival);
	sb_rec(&b, "arrival", num, NULL);
	sb_rec(&b, "client", e->client, NULL);
	sb_rec(&b, "helo", e->helo, NULL);
	sb_rec(&b, "sender", e->sender, NULL);
	sb_rec(&b, "body", e->body_binary ? "binarymime" : e->body_8bit ? "8bit" : "7bit", NULL);
	if (e->smtputf8)
		sb_rec(&b, "smtputf8", "yes", NULL);
	if (e->requiretls)
		sb_rec(&b, "requiretls", "yes", NULL);	/* absent in older files: no */
	if (e->dsn_ret != DSN_RET_NONE)
		sb_rec(&b, "ret", e->dsn_ret == DSN_RET_FULL ? "FULL" : "HDRS", NULL);
	if (e->envid[0] != '\0')
		sb_rec(&b, "envid", e->envid, NULL);
	for (size_t i = 0; i < e->nrcpts; i++) {
		const struct qrcpt *r = &e->rcpts[i];
		sb_rec(&b, "rcpt", r->addr, r->orcpt);
		if (r->notify != 0 || r->dsn_orcpt != NULL) {
			char notify[32];
			dsn_notify_format(r->notify, notify, sizeof(notify));
			sb_rec(&b, "rdsn", notify, r->dsn_orcpt ? r->dsn_orcpt : "");
		}
	}
	if (e->has_skip) {
		if (e->skip > QFMT_SKIP_MAX) {
			free(b.p);
			return -1;
		}
		snprintf(num, sizeof(num), "%0*zu", QFMT_SKIP_DIGITS, e->skip);
		sb_rec(&b, "skip", num, NULL);
	}
	sbuf_add(&b, "\n", 1);
	if (b.bad) {
		free(b.p);
		return -1;
	}
	*out = b.p;
	*outlen = b.len;
	return 0;
}

static char *
xstrndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* Copy a value of at most cap-1 bytes. -1 if longer. */
static int
copy_fixed(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= cap)
		return -1;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

static int
parse_i64(const char *v, size_t n, long long *out)
{
	char tmp[24];
	char *end;

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, v, n);
	tmp[n] = '\0';
	if (tmp[0] == '-' ? !(tmp[1] >= '0' && tmp[1] <= '9') : !(tmp[0] >= '0' && tmp[0] <= '9'))
		return -1;
	errno = 0;
	*out = strtoll(tmp, &end, 10);
	return (*end != '\0' || errno != 0) ? -1 : 0;
}

/* Decode a header; see qfmt.h. */
int
qfmt_header_decode(const char *buf, size_t len, struct qenv *e, size_t *hdrlen, char *err,
    size_t errlen)
{
	size_t mlen = strlen(QFMT_MAGIC), pos, cap = 0;
	int have_id = 0, have_sender = 0, have_arrival = 0, have_ret = 0, have_envid = 0;
	int rdsn_ok = 0;	/* the last record was a rcpt without its rdsn yet */
	int was_rcpt;

	memset(e, 0, sizeof(*e));
	if (len < mlen)
		return memcmp(buf, QFMT_MAGIC, len) == 0 ? 1 : (snprintf(err, errlen,
		    "not a queue file (bad magic)"), -1);
	if (memcmp(buf, QFMT_MAGIC, mlen) != 0) {
		snprintf(err, errlen, "not a queue file or unknown version");
		return -1;
	}
	pos = mlen;
	for (;;) {
		const char *line = buf + pos, *nl, *sp, *v;
		size_t llen, tlen, vlen;

		if (pos >= len || pos > QFMT_HEADER_MAX) {
			qenv_free(e);
			if (pos > QFMT_HEADER_MAX) {
				snprintf(err, errlen, "header too large");
				return -1;
			}
			return 1;
		}
		nl = memchr(line, '\n', len - pos);
		if (nl == NULL) {
			qenv_free(e);
			return 1;
		}
		llen = (size_t)(nl - line);
		pos += llen + 1;
		if (llen == 0)
			break;
		sp = memchr(line, ' ', llen);
		if (sp == NULL) {
			snprintf(err, errlen, "malformed record");
			goto bad;
		}
		tlen = (size_t)(sp - line);
		v = sp + 1;
		vlen = llen - tlen - 1;
#define TAG(s) (tlen == strlen(s) && memcmp(line, s, tlen) == 0)
		if (TAG("sender") || TAG("rcpt")) {
			/* addresses: UTF-8 too (RFC 6531); the rcpt's TAB is checked below */
			if (!utf8_text_ok(v, vlen, TAG("rcpt"), NULL)) {
				snprintf(err, errlen, "bad byte in record");
				goto bad;
			}
		} else
			for (size_t i = 0; i < vlen; i++) {
				unsigned char c = (unsigned char)v[i];
				if ((c < 0x20 && c != '\t') || c > 0x7e || c == '\0') {
					snprintf(err, errlen, "bad byte in record");
					goto bad;
				}
			}
		was_rcpt = 0;
		if (TAG("id")) {
			if (vlen == 0 || copy_fixed(e->qid, sizeof(e->qid), v, vlen) < 0 ||
			    memchr(v, '\t', vlen) != NULL) {
				snprintf(err, errlen, "bad id");
				goto bad;
			}
			have_id = 1;
		} else if (TAG("arrival")) {
			long long t;
			if (parse_i64(v, vlen, &t) < 0) {
				snprintf(err, errlen, "bad arrival");
				goto bad;
			}
			e->arrival = (time_t)t;
			have_arrival = 1;
		} else if (TAG("client")) {
			if (copy_fixed(e->client, sizeof(e->client), v, vlen) < 0) {
				snprintf(err, errlen, "bad client");
				goto bad;
			}
		} else if (TAG("helo")) {
			if (copy_fixed(e->helo, sizeof(e->helo), v, vlen) < 0) {
				snprintf(err, errlen, "bad helo");
				goto bad;
			}
		} else if (TAG("sender")) {
			if (have_sender || (e->sender = xstrndup(v, vlen)) == NULL) {
				snprintf(err, errlen, "bad sender");
				goto bad;
			}
			have_sender = 1;
		} else if (TAG("body")) {
			if (vlen == 4 && memcmp(v, "8bit", 4) == 0)
				e->body_8bit = 1;
			else if (vlen == 4 && memcmp(v, "7bit", 4) == 0)
				e->body_8bit = 0;
			else if (vlen == 10 && memcmp(v, "binarymime", 10) == 0)
				e->body_8bit = e->body_binary = 1;
			else {
				snprintf(err, errlen, "bad body type");
				goto bad;
			}
		} else if (TAG("smtputf8")) {
			if (e->smtputf8 || vlen != 3 || memcmp(v, "yes", 3) != 0) {
				snprintf(err, errlen, "bad smtputf8");
				goto bad;
			}
			e->smtputf8 = 1;
		} else if (TAG("requiretls")) {
			if (e->requiretls || vlen != 3 || memcmp(v, "yes", 3) != 0) {
				snprintf(err, errlen, "bad requiretls");
				goto bad;
			}
			e->requiretls = 1;
		} else if (TAG("skip")) {
			size_t k = 0;
			if (e->has_skip || vlen != QFMT_SKIP_DIGITS) {
				snprintf(err, errlen, "bad skip");
				goto bad;
			}
			for (size_t i = 0; i < vlen; i++) {
				if (v[i] < '0' || v[i] > '9') {
					snprintf(err, errlen, "bad skip");
					goto bad;
				}
				k = k * 10 + (size_t)(v[i] - '0');
			}
			e->has_skip = 1;
			e->skip = k;
		} else if (TAG("rcpt")) {
			const char *tab = memchr(v, '\t', vlen);
			struct qrcpt *r;
			if (tab == NULL || tab == v || memchr(tab + 1, '\t',
			    vlen - (size_t)(tab - v) - 1) != NULL) {
				snprintf(err, errlen, "bad rcpt");
				goto bad;
			}
			if (e->nrcpts >= QFMT_RCPT_MAX) {
				snprintf(err, errlen, "too many recipients");
				goto bad;
			}
			if (e->nrcpts == cap) {
				size_t ncap = cap ? cap * 2 : 4;
				struct qrcpt *n = realloc(e->rcpts, ncap * sizeof(*n));
				if (n == NULL) {
					snprintf(err, errlen, "out of memory");
					goto bad;
				}
				e->rcpts = n;
				cap = ncap;
			}
			r = &e->rcpts[e->nrcpts];
			memset(r, 0, sizeof(*r));
			r->addr = xstrndup(v, (size_t)(tab - v));
			r->orcpt = xstrndup(tab + 1, vlen - (size_t)(tab - v) - 1);
			e->nrcpts++;
			if (r->addr == NULL || r->orcpt == NULL) {
				snprintf(err, errlen, "out of memory");
				goto bad;
			}
			was_rcpt = 1;
		} else if (TAG("ret")) {
			enum dsn_ret ret;
			const char *why;
			if (have_ret || memchr(v, '\t', vlen) != NULL ||
			    dsn_ret_parse(v, vlen, &ret, &why) < 0) {
				snprintf(err, errlen, "bad ret");
				goto bad;
			}
			e->dsn_ret = (int)ret;
			have_ret = 1;
		} else if (TAG("envid")) {
			const char *why;
			if (have_envid || memchr(v, '\t', vlen) != NULL ||
			    dsn_envid_parse(v, vlen, e->envid, &why) < 0) {
				snprintf(err, errlen, "bad envid");
				goto bad;
			}
			have_envid = 1;
		} else if (TAG("rdsn")) {
			const char *tab = memchr(v, '\t', vlen), *why, *o;
			struct qrcpt *r;
			char ob[DSN_ORCPT_MAX + 1];
			size_t olen;
			if (!rdsn_ok || tab == NULL) {
				snprintf(err, errlen, "bad rdsn (not after its rcpt)");
				goto bad;
			}
			r = &e->rcpts[e->nrcpts - 1];	/* rdsn_ok: there is one */
			o = tab + 1;
			olen = vlen - (size_t)(tab - v) - 1;
			if ((tab > v && dsn_notify_parse(v, (size_t)(tab - v), &r->notify, &why) < 0) ||
			    (olen > 0 && dsn_orcpt_parse(o, olen, ob, &why) < 0) ||
			    (tab == v && olen == 0)) {
				snprintf(err, errlen, "bad rdsn");
				goto bad;
			}
			if (olen > 0 && (r->dsn_orcpt = xstrndup(ob, strlen(ob))) == NULL) {
				snprintf(err, errlen, "out of memory");
				goto bad;
			}
		} else {
			snprintf(err, errlen, "unknown record type");
			goto bad;
		}
		rdsn_ok = was_rcpt;
#undef TAG
	}
	if (!have_id || !have_sender || !have_arrival || e->nrcpts == 0) {
		snprintf(err, errlen, "incomplete header");
		goto bad;
	}
	*hdrlen = pos;
	return 0;
bad:
	qenv_free(e);
	return -1;
}

/* Write the fixed-size trailer for a body of bodylen bytes. */
void
qfmt_trailer_encode(uint64_t bodylen, char out[QFMT_TRAILER_LEN])
{
	char tmp[QFMT_TRAILER_LEN + 1];

	snprintf(tmp, sizeof(tmp), "\nEND %020" PRIu64 "\n", bodylen);
	memcpy(out, tmp, QFMT_TRAILER_LEN);
}

/* Parse a trailer (exactly QFMT_TRAILER_LEN bytes). */
int
qfmt_trailer_decode(const char *buf, size_t len, uint64_t *bodylen)
{
	uint64_t v = 0;

	if (len != QFMT_TRAILER_LEN || memcmp(buf, "\nEND ", 5) != 0 || buf[25] != '\n')
		return -1;
	for (int i = 5; i < 25; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(buf[i] - '0');
	}
	*bodylen = v;
	return 0;
}

/* Apply journal lines; see qfmt.h. */
int
qfmt_journal_apply(const char *buf, size_t len, struct qenv *e, char *err, size_t errlen)
{
	size_t pos = 0;

	while (pos < len) {
		const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
		char tmp[512];
		long long idx, att, next;
		int n = 0;

		if (nl == NULL)
			break;	/* torn final line: the event never completed */
		size_t llen = (size_t)(nl - line);
		pos += llen + 1;
		if (llen == 0 || llen >= sizeof(tmp)) {
			snprintf(err, errlen, "malformed journal line");
			return -1;
		}
		memcpy(tmp, line, llen);
		tmp[llen] = '\0';
		if (memchr(tmp, '\0', llen) != NULL) {
			snprintf(err, errlen, "malformed journal line");
			return -1;
		}
		char st[16];
		if (strcmp(tmp, "warned") == 0) {
			e->warned = 1;
		} else if (sscanf(tmp, "fail %lld %15s %n", &idx, st, &n) == 2 && n > 0) {
			if (idx < 0 || (size_t)idx >= e->nrcpts) {
				snprintf(err, errlen, "bad fail record");
				return -1;
			}
			e->rcpts[idx].state = QR_FAILED;
			snprintf(e->rcpts[idx].status, sizeof(e->rcpts[idx].status), "%s", st);
			snprintf(e->rcpts[idx].last_error, sizeof(e->rcpts[idx].last_error), "%s",
			    tmp + n);
		} else if (sscanf(tmp, "done %lld%n", &idx, &n) == 1 && tmp[n] == '\0') {
			if (idx < 0 || (size_t)idx >= e->nrcpts) {
				snprintf(err, errlen, "journal names recipient %lld of %zu", idx,
				    e->nrcpts);
				return -1;
			}
			e->rcpts[idx].state = QR_DONE;
		} else if (sscanf(tmp, "defer %lld %lld %lld %n", &idx, &att, &next, &n) == 3 &&
		    n > 0) {
			if (idx < 0 || (size_t)idx >= e->nrcpts || att < 0 || att > 1000000) {
				snprintf(err, errlen, "bad defer record");
				return -1;
			}
			e->rcpts[idx].attempts = (unsigned)att;
			e->rcpts[idx].next_try = (time_t)next;
			snprintf(e->rcpts[idx].last_error, sizeof(e->rcpts[idx].last_error), "%s",
			    tmp + n);
		} else {
			snprintf(err, errlen, "unknown journal record");
			return -1;
		}
	}
	return 0;
}

/* A reason as one journal-safe line: printable ASCII, at most QFMT_JOURNAL_REASON_MAX. */
static void
journal_reason(const char *reason, char *out)
{
	size_t n = 0;

	for (; reason != NULL && reason[n] != '\0' && n < QFMT_JOURNAL_REASON_MAX; n++)
		out[n] = (unsigned char)reason[n] < 0x20 || (unsigned char)reason[n] >= 0x7f ? ' ' :
		    reason[n];
	out[n] = '\0';
}

static size_t
journal_len(int n, size_t outlen)
{
	if (n < 0)
		return 0;
	return (size_t)n < outlen ? (size_t)n : outlen > 0 ? outlen - 1 : 0;
}

size_t
qfmt_journal_done(size_t i, char *out, size_t outlen)
{
	return journal_len(snprintf(out, outlen, "done %zu\n", i), outlen);
}

size_t
qfmt_journal_defer(size_t i, unsigned attempts, time_t next_try, const char *reason, char *out,
    size_t outlen)
{
	char r[QFMT_JOURNAL_REASON_MAX + 1];

	journal_reason(reason, r);
	return journal_len(snprintf(out, outlen, "defer %zu %u %lld %s\n", i, attempts,
	    (long long)next_try, r), outlen);
}

size_t
qfmt_journal_fail(size_t i, const char *status, const char *reason, char *out, size_t outlen)
{
	char r[QFMT_JOURNAL_REASON_MAX + 1], st[16];
	size_t n = 0;

	/* the status is one word of printable ASCII, as apply's %15s reads it */
	for (; status != NULL && status[n] > ' ' && status[n] < 0x7f && n < sizeof(st) - 1; n++)
		st[n] = status[n];
	st[n] = '\0';
	journal_reason(reason, r);
	return journal_len(snprintf(out, outlen, "fail %zu %s %s\n", i, n > 0 ? st : "5.0.0", r),
	    outlen);
}

size_t
qfmt_journal_warned(char *out, size_t outlen)
{
	return journal_len(snprintf(out, outlen, "warned\n"), outlen);
}

/* Free what a decode allocated; e is left zeroed. */
void
qenv_free(struct qenv *e)
{
	for (size_t i = 0; i < e->nrcpts; i++) {
		free(e->rcpts[i].addr);
		free(e->rcpts[i].orcpt);
		free(e->rcpts[i].dsn_orcpt);
	}
	free(e->rcpts);
	free(e->sender);
	memset(e, 0, sizeof(*e));
}
