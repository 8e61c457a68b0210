/*
 * doctor_rules — the pure judgements and texts of imsd doctor; see doctor_rules.h.
 */
#include "cli/doctor_rules.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "util/str.h"

const char *
doc_status_name(enum doc_status s)
{
	return s == DOC_OK ? "ok" : s == DOC_WARN ? "warn" : "fail";
}

/* Is a in net/prefix (family of a)? */
static int
in_net(const struct netaddr *a, const char *net, int prefix)
{
	struct cidr c;

	if (cidr_parse(net, &c) < 0)
		return 0;
	c.prefix = prefix;
	return cidr_match(&c, a);
}

int
doc_addr_is_public(const struct netaddr *a)
{
	static const struct {
		const char *net;
		int prefix;
	} private[] = {
		{ "0.0.0.0", 8 }, { "10.0.0.0", 8 }, { "100.64.0.0", 10 }, { "127.0.0.0", 8 },
		{ "169.254.0.0", 16 }, { "172.16.0.0", 12 }, { "192.168.0.0", 16 },
		{ "224.0.0.0", 3 },	/* multicast and the reserved 240/4 */
		{ "fc00::", 7 }, { "fe80::", 10 }, { "ff00::", 8 },
	};

	if (netaddr_is_loopback(a) || netaddr_is_any(a))
		return 0;
	for (size_t i = 0; i < sizeof(private) / sizeof(private[0]); i++)
		if (in_net(a, private[i].net, private[i].prefix))
			return 0;
	return 1;
}

int
doc_name_is_fqdn(const char *name, char *why, size_t wl)
{
	static const char *const local[] = { ".local", ".localdomain", ".localhost", ".internal",
	    ".lan", ".home.arpa", ".invalid" };
	size_t n = strlen(name);

	why[0] = '\0';
	if (n == 0 || strchr(name, '.') == NULL || strcasecmp(name, "localhost") == 0) {
		snprintf(why, wl, "%s is not a fully qualified domain name: other hosts cannot "
		    "look it up", n ? name : "(empty)");
		return 0;
	}
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		size_t l = strlen(local[i]);
		if (n > l && strcasecmp(name + n - l, local[i]) == 0) {
			snprintf(why, wl, "%s is in %s, a name only this network knows", name,
			    local[i] + 1);
			return 0;
		}
	}
	return 1;
}

const char *
doc_ptr_name(const struct netaddr *a, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (a->family == AF_INET) {
		snprintf(buf, len, "%u.%u.%u.%u.in-addr.arpa", a->a[3], a->a[2], a->a[1], a->a[0]);
		return buf;
	}
	for (int i = 15; i >= 0 && o + 4 < len; i--) {
		buf[o++] = hex[a->a[i] & 15];
		buf[o++] = '.';
		buf[o++] = hex[a->a[i] >> 4];
		buf[o++] = '.';
	}
	buf[o] = '\0';
	if (o + 9 <= len)
		memcpy(buf + o, "ip6.arpa", 9);
	return buf;
}

/* name with exactly one trailing dot */
static void
dotted(const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	snprintf(buf, len, "%s%s", name, n > 0 && name[n - 1] == '.' ? "" : ".");
}

const char *
doc_rr(const char *owner, const char *type, const char *rdata, int pad, char *buf, size_t len)
{
	char o[300];

	dotted(owner, o, sizeof(o));
	if (pad)
		snprintf(buf, len, "%-32s IN %-5s %s", o, type, rdata);
	else
		snprintf(buf, len, "%s IN %s %s", o, type, rdata);
	return buf;
}

const char *
doc_rr_txt(const char *owner, const char *text, int pad, char *buf, size_t len)
{
	char rd[4096];
	size_t n = strlen(text), o = 0;

	rd[0] = '\0';
	for (size_t i = 0; i < n || i == 0; i += 255) {
		size_t k = n - i > 255 ? 255 : n - i;
		int w = snprintf(rd + o, sizeof(rd) - o, "%s\"%.*s\"", i ? " " : "", (int)k,
		    text + i);
		if (w < 0 || (size_t)w >= sizeof(rd) - o)
			break;
		o += (size_t)w;
		if (n == 0)
			break;
	}
	return doc_rr(owner, "TXT", rd, pad, buf, len);
}

/* Append s to out (len), keeping it terminated. */
static void
cat(char *out, size_t len, size_t *o, const char *s)
{
	size_t n = strlen(s);

	if (*o >= len)
		return;
	if (n >= len - *o)
		n = len - *o - 1;
	memcpy(out + *o, s, n);
	*o += n;
	out[*o] = '\0';
}

/* Does the record name addr literally as ip4:A or ip6:A (a /32 or /128, or bare)? */
static int
names_addr(const char *record, const struct netaddr *a)
{
	char want[80], b[NETADDR_STRLEN];
	const char *p = record;

	netaddr_str(a, b, sizeof(b));
	snprintf(want, sizeof(want), "%s:%s", a->family == AF_INET ? "ip4" : "ip6", b);
	while ((p = strcasestr(p, want)) != NULL) {
		const char *e = p + strlen(want);
		int start = p == record || p[-1] == ' ' || p[-1] == '+';
		if (start && (*e == '\0' || *e == ' ' || strncmp(e, a->family == AF_INET ? "/32" :
		    "/128", a->family == AF_INET ? 3 : 4) == 0))
			return 1;
		p = e;
	}
	return 0;
}

const char *
doc_spf_with(const char *record, const struct netaddr *addrs, size_t n, char *out, size_t len)
{
	char terms[1024], b[NETADDR_STRLEN];
	size_t t = 0, o = 0;
	const char *cut = NULL, *p;

	terms[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (record != NULL && names_addr(record, &addrs[i]))
			continue;
		cat(terms, sizeof(terms), &t, t ? " " : "");
		cat(terms, sizeof(terms), &t, addrs[i].family == AF_INET ? "ip4:" : "ip6:");
		cat(terms, sizeof(terms), &t, netaddr_str(&addrs[i], b, sizeof(b)));
	}
	out[0] = '\0';
	if (record == NULL) {
		snprintf(out, len, "v=spf1%s%s -all", t ? " " : "", terms);
		return out;
	}
	if (t == 0) {
		str_copy(out, len, record);
		return out;
	}
	/* the first term that ends evaluation: [qualifier]all, or redirect= */
	for (p = record; *p; ) {
		const char *s = p, *q;
		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		q = s + strcspn(s, " ");
		{
			const char *m = (*s == '+' || *s == '-' || *s == '~' || *s == '?') ? s + 1 : s;
			size_t ml = (size_t)(q - m);
			if ((ml == 3 && strncasecmp(m, "all", 3) == 0) ||
			    strncasecmp(s, "redirect=", 9) == 0) {
				cut = s;
				break;
			}
		}
		p = q;
	}
	if (cut == NULL) {
		size_t rl = strlen(record);
		while (rl > 0 && record[rl - 1] == ' ')
			rl--;
		snprintf(out, len, "%.*s %s", (int)rl, record, terms);
		return out;
	}
	snprintf(out, len, "%.*s", (int)(cut - record), record);
	o = strlen(out);
	cat(out, len, &o, terms);
	cat(out, len, &o, " ");
	cat(out, len, &o, cut);
	return out;
}

const char *
doc_mtasts_policy(const char *const *mx, size_t n, const char *mode, char *buf, size_t len)
{
	size_t o = 0;
	char line[320];

	buf[0] = '\0';
	snprintf(line, sizeof(line), "version: STSv1\r\nmode: %s\r\n", mode);
	cat(buf, len, &o, line);
	for (size_t i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "mx: %s\r\n", mx[i]);
		cat(buf, len, &o, line);
	}
	snprintf(line, sizeof(line), "max_age: %u\r\n", (unsigned)DOC_MTASTS_MAX_AGE);
	cat(buf, len, &o, line);
	return buf;
}

const char *
doc_mtasts_id(const char *policy, char *buf, size_t len)
{
	uint64_t h = 14695981039346656037ULL;	/* FNV-1a, 64 bits */

	for (const unsigned char *p = (const unsigned char *)policy; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	snprintf(buf, len, "%016llx", (unsigned long long)h);
	return buf;
}

enum doc_status
doc_cert_expiry(long long expires, long long now, long *days)
{
	long long left = expires - now;

	/* whole days left, rounded toward minus infinity: expired an hour ago is day -1 */
	*days = (long)(left >= 0 ? left / 86400 : -((-left + 86399) / 86400));
	if (left <= 0)
		return DOC_FAIL;
	if (*days < DOC_CERT_WARN_DAYS)
		return DOC_WARN;
	return DOC_OK;
}

/* Are two host names the same (any case, a trailing dot ignored)? */
static int
same_name(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

enum doc_status
doc_fcrdns(const char *const *ptr, const int *fwd_ok, size_t nptr, const char *helo,
    int *match, char *why, size_t wl)
{
	int first_ok = -1;

	*match = -1;
	why[0] = '\0';
	if (nptr == 0) {
		snprintf(why, wl, "no PTR record");
		return DOC_FAIL;
	}
	for (size_t i = 0; i < nptr; i++) {
		if (!fwd_ok[i])
			continue;
		if (first_ok < 0)
			first_ok = (int)i;
		if (same_name(ptr[i], helo)) {
			*match = (int)i;
			return DOC_OK;
		}
	}
	if (first_ok < 0) {
		snprintf(why, wl, "the PTR name%s %s%s do%s not resolve back to the address",
		    nptr > 1 ? "s" : "", ptr[0], nptr > 1 ? ", ..." : "", nptr > 1 ? "" : "es");
		return DOC_FAIL;
	}
	*match = first_ok;
	snprintf(why, wl, "the PTR name %s resolves back, but imsd says EHLO %s", ptr[first_ok],
	    helo);
	return DOC_FAIL;
}

const char *
doc_reason_key(const char *e, char *buf, size_t len)
{
	const char *p = e, *colon;
	size_t o = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	/* the diagnostic type: "x-imsd; ", "smtp; " */
	if ((colon = strstr(p, "; ")) != NULL && colon - p < 16 && strchr(p, ' ') > colon)
		p = colon + 2;
	/* "HOST: " or "connect to HOST: " where HOST has a dot or is an address */
	if (strncmp(p, "connect to ", 11) == 0) {
		const char *h = p + 11, *c = strstr(h, ": ");
		if (c != NULL && memchr(h, ' ', (size_t)(c - h)) == NULL) {
			cat(buf, len, &o, "connect: ");
			p = c + 2;
		}
	} else if ((colon = strstr(p, ": ")) != NULL && memchr(p, ' ', (size_t)(colon - p)) ==
	    NULL && (memchr(p, '.', (size_t)(colon - p)) != NULL || memchr(p, ':', (size_t)(colon -
	    p)) != NULL))
		p = colon + 2;
	/* numbers of 4 digits or more, and dotted quads, become N */
	while (*p && o + 1 < len) {
		if (isdigit((unsigned char)*p)) {
			size_t n = strspn(p, "0123456789");
			size_t dq = strspn(p, "0123456789.");
			if (dq > n && dq >= 7 && memchr(p, '.', dq) != NULL && p[dq - 1] != '.' &&
			    (p == e || !isdigit((unsigned char)p[-1]))) {
				int dots = 0;
				for (size_t i = 0; i < dq; i++)
					dots += p[i] == '.';
				if (dots == 3) {
					cat(buf, len, &o, "N");
					p += dq;
					continue;
				}
			}
			if (n >= 4) {
				cat(buf, len, &o, "N");
				p += n;
				continue;
			}
			char d[8];
			snprintf(d, sizeof(d), "%.*s", (int)n, p);
			cat(buf, len, &o, d);
			p += n;
			continue;
		}
		char c[2] = { *p++, '\0' };
		cat(buf, len, &o, c);
	}
	return buf;
}

/* s[0..n) without blanks at both ends */
static void
trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

int
doc_tlsrpt_check(const char *txt, size_t *nuris, char *why, size_t wl)
{
	const char *p = txt;
	int first = 1, rua = 0;

	*nuris = 0;
	why[0] = '\0';
	if (strncmp(txt, "v=TLSRPTv1", 10) != 0 || (txt[10] != '\0' && txt[10] != ';' &&
	    txt[10] != ' ' && txt[10] != '\t'))
		return 0;
	while (*p) {
		const char *f = p, *eq;
		size_t n = strcspn(p, ";");

		p += n;
		if (*p == ';')
			p++;
		trim(&f, &n);
		if (n == 0)
			continue;
		if ((eq = memchr(f, '=', n)) == NULL) {
			snprintf(why, wl, "the field \"%.*s\" has no \"=\"", (int)(n > 40 ? 40 : n), f);
			return -1;
		}
		if (first) {
			first = 0;
			continue;	/* v=TLSRPTv1, checked above */
		}
		if ((size_t)(eq - f) == 3 && strncmp(f, "rua", 3) == 0) {
			const char *u = eq + 1, *end = f + n;
			if (rua++) {
				snprintf(why, wl, "rua= is given twice");
				return -1;
			}
			while (u <= end) {
				const char *c = memchr(u, ',', (size_t)(end - u));
				const char *ue = c ? c : end;
				size_t ul = (size_t)(ue - u);
				trim(&u, &ul);
				if (ul < 8 || (strncasecmp(u, "mailto:", 7) != 0 &&
				    strncasecmp(u, "https://", 8) != 0) ||
				    (strncasecmp(u, "mailto:", 7) == 0 && memchr(u, '@', ul) == NULL)) {
					snprintf(why, wl, "rua= holds \"%.*s\", neither a mailto: address "
					    "nor an https: URI", (int)(ul > 60 ? 60 : ul), u);
					return -1;
				}
				(*nuris)++;
				if (c == NULL)
					break;
				u = c + 1;
			}
		}
	}
	if (!rua) {
		snprintf(why, wl, "no rua= field: reports have nowhere to go");
		return -1;
	}
	return 1;
}
