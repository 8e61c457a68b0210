/*
 * conf_types — the value types of the configuration schema: how each kind of value is
 * parsed (with "why" for an error), printed back in configuration syntax, and judged
 * "active" (does it ask for something?). The rows of conf.c name them.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf/conf_int.h"
#include "conf/tlslevel.h"
#include "util/log.h"
#include "util/intl.h"
#include "util/str.h"
#include "util/utf8.h"

/* ---- small helpers ---- */

/* Quote what the user wrote for an error message (see str_quote). */
const char *conf_quote(const char *s, char *buf, size_t len)
{
	return str_quote(s, 80, buf, len);
}

#define QBUF 400

char *conf_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

static int is_sep(char ch)
{
	return ch == ',' || ch == ' ' || ch == '\t';
}

/* Copy the next list item of *p (items separated by commas and/or blanks) into item
 * (size CONF_LINE_MAX + 1); 0 when there is none left. */
static int next_item(const char **p, char *item)
{
	const char *s = *p, *e;
	size_t n;

	while (*s && is_sep(*s))
		s++;
	if (*s == '\0')
		return 0;
	for (e = s; *e && !is_sep(*e); e++)
		;
	n = (size_t)(e - s);
	if (n > CONF_LINE_MAX)
		n = CONF_LINE_MAX;
	memcpy(item, s, n);
	item[n] = '\0';
	*p = e;
	return 1;
}

/* Grow *arr (elements of size esz) so that it holds at least n + 1; -1 on ENOMEM. */
static int grow(void **arr, size_t *cap, size_t n, size_t esz)
{
	void *p;
	size_t nc;

	if (n < *cap)
		return 0;
	nc = *cap ? *cap * 2 : 4;
	p = realloc(*arr, nc * esz);
	if (p == NULL)
		return -1;
	*arr = p;
	*cap = nc;
	return 0;
}

static int all_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/*
 * Is s[0..len) a syntactically valid domain name (RFC 1035 §2.3.1 letters, digits and
 * hyphens; labels 1..63, at most 253 in all; no trailing dot; last label not all digits)?
 */
int conf_domain_valid(const char *s, size_t len)
{
	size_t i, lab = 0;
	int last_numeric = 1;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i <= len; i++) {
		char ch = i < len ? s[i] : '.';

		if (ch == '.') {
			if (lab == 0 || lab > 63 || s[i - 1] == '-')
				return 0;
			lab = 0;
			continue;
		}
		if (ch == '-') {
			if (lab == 0)
				return 0;
		} else if (!isalnum((unsigned char)ch)) {
			return 0;
		}
		if (lab == 0)
			last_numeric = 1;
		if (!isdigit((unsigned char)ch))
			last_numeric = 0;
		lab++;
	}
	return !last_numeric;
}

/* Duplicate a domain name without its trailing dot, checking it; NULL when invalid
 * (*nomem set when it was memory). lower: lower-case it. */
static char *domain_dup(const char *s, int lower, int *nomem)
{
	size_t len = strlen(s);
	char *d;

	*nomem = 0;
	if (len > 1 && s[len - 1] == '.')
		len--;
	if (!conf_domain_valid(s, len))
		return NULL;
	d = malloc(len + 1);
	if (d == NULL) {
		*nomem = 1;
		return NULL;
	}
	for (size_t i = 0; i < len; i++)
		d[i] = lower ? (char)tolower((unsigned char)s[i]) : s[i];
	d[len] = '\0';
	return d;
}

static int nomem(char *why, size_t wl)
{
	snprintf(why, wl, "out of memory");
	return -1;
}

/* ---- per-type parse, print and "active" functions ---- */

static void emit_list_item(FILE *fp, size_t i, const char *s)
{
	fprintf(fp, "%s%s", i ? ", " : " ", s);
}

static int active_str(const struct conf *c, const struct row *r)
{
	return *CFIELD(c, r, char *) != NULL;
}

static int active_list(const struct conf *c, const struct row *r)
{
	return *CCOUNT(c, r) > 0;
}

static int active_int(const struct conf *c, const struct row *r)
{
	return *CFIELD(c, r, int) != 0;
}

static int active_always(const struct conf *c, const struct row *r)
{
	return 1;
}

/* hostname: a domain name, case kept, trailing dot removed. */
static int parse_hostname(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char q[QBUF];
	int oom;
	char *d;

	if (*v == '\0') {
		snprintf(why, wl, "a host name is required");
		return -1;
	}
	d = domain_dup(v, 0, &oom);
	if (d == NULL) {
		if (oom)
			return nomem(why, wl);
		snprintf(why, wl, "%s is not a valid domain name", conf_quote(v, q, sizeof q));
		return -1;
	}
	free(*FIELD(c, r, char *));
	*FIELD(c, r, char *) = d;
	return 0;
}

/* A path that must be given (spool_dir, mail_dir). */
static int parse_path(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char *d;

	if (*v == '\0') {
		snprintf(why, wl, "a path is required");
		return -1;
	}
	if ((d = conf_xstrdup(v)) == NULL)
		return nomem(why, wl);
	free(*FIELD(c, r, char *));
	*FIELD(c, r, char *) = d;
	return 0;
}

/* An optional path: empty = unset. */
static int parse_optpath(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char *d = NULL;

	if (*v && (d = conf_xstrdup(v)) == NULL)
		return nomem(why, wl);
	free(*FIELD(c, r, char *));
	*FIELD(c, r, char *) = d;
	return 0;
}

/* A user name as the system spells them (useradd's rule, a little wider). */
static int parse_user(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char q[QBUF], *d;
	size_t n = strlen(v);

	if (n == 0 || n > 32 || v[0] == '-' || strspn(v, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n) {
		snprintf(why, wl, "%s is not a user name (letters, digits, '.', '_', '-'; at most "
		    "32)", conf_quote(v, q, sizeof q));
		return -1;
	}
	if ((d = conf_xstrdup(v)) == NULL)
		return nomem(why, wl);
	free(*FIELD(c, r, char *));
	*FIELD(c, r, char *) = d;
	return 0;
}

static void print_str(const struct conf *c, const struct row *r, FILE *fp)
{
	const char *s = *CFIELD(c, r, char *);

	if (s)
		fprintf(fp, " %s", s);
}

/* Listener lists: ADDR:PORT items; r->min 1 = at least one required. */
static int parse_hostports(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char item[CONF_LINE_MAX + 1], q[QBUF];
	struct hostport *arr = NULL, hp;
	size_t n = 0, cap = 0;
	const char *p = v;

	while (next_item(&p, item)) {
		if (hostport_parse(item, &hp) != 0) {
			snprintf(why, wl, "%s is not ADDR:PORT (IPv6 as [ADDR]:PORT, port 1-65535)",
			    conf_quote(item, q, sizeof q));
			goto fail;
		}
		for (size_t i = 0; i < n; i++) {
			if (arr[i].port == hp.port && netaddr_equal(&arr[i].addr, &hp.addr)) {
				snprintf(why, wl, "%s is listed twice", conf_quote(item, q, sizeof q));
				goto fail;
			}
		}
		if (grow((void **)&arr, &cap, n, sizeof *arr) != 0) {
			nomem(why, wl);
			goto fail;
		}
		arr[n++] = hp;
	}
	if (n == 0 && r->min) {
		snprintf(why, wl, "at least one ADDR:PORT is required");
		goto fail;
	}
	free(*FIELD(c, r, struct hostport *));
	*FIELD(c, r, struct hostport *) = arr;
	*COUNT(c, r) = n;
	return 0;
fail:
	free(arr);
	return -1;
}

static void print_hostports(const struct conf *c, const struct row *r, FILE *fp)
{
	const struct hostport *arr = *CFIELD(c, r, struct hostport *);
	char b[NETADDR_STRLEN];

	for (size_t i = 0; i < *CCOUNT(c, r); i++)
		emit_list_item(fp, i, hostport_str(&arr[i], b, sizeof b));
}

/* dns_servers: ADDR, ADDR:PORT, [V6ADDR], [V6ADDR]:PORT or a bare IPv6 address; port 53
 * when not given. Empty = use /etc/resolv.conf. */
static int dns_item(const char *s, struct hostport *out)
{
	char buf[NETADDR_STRLEN];
	size_t len = strlen(s);
	const char *colon = strchr(s, ':');

	memset(out, 0, sizeof *out);
	if (s[0] == '[' && s[len - 1] == ']') {
		if (len - 2 >= sizeof buf)
			return -1;
		memcpy(buf, s + 1, len - 2);
		buf[len - 2] = '\0';
		if (netaddr_parse(buf, &out->addr) != 0)
			return -1;
		out->port = DNS_PORT;
	} else if (s[0] == '[' || (colon && strchr(colon + 1, ':') == NULL)) {
		if (hostport_parse(s, out) != 0)
			return -1;
	} else {
		if (netaddr_parse(s, &out->addr) != 0)	/* dotted quad or bare IPv6 */
			return -1;
		out->port = DNS_PORT;
	}
	return netaddr_is_any(&out->addr) ? -1 : 0;
}

static int parse_dns(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char item[CONF_LINE_MAX + 1], q[QBUF];
	struct hostport *arr = NULL, hp;
	size_t n = 0, cap = 0;
	const char *p = v;

	while (next_item(&p, item)) {
		if (dns_item(item, &hp) != 0) {
			snprintf(why, wl, "%s is not ADDR[:PORT] (IPv6 as [ADDR]:PORT or bare)",
			    conf_quote(item, q, sizeof q));
			free(arr);
			return -1;
		}
		if (grow((void **)&arr, &cap, n, sizeof *arr) != 0) {
			free(arr);
			return nomem(why, wl);
		}
		arr[n++] = hp;
	}
	free(*FIELD(c, r, struct hostport *));
	*FIELD(c, r, struct hostport *) = arr;
	*COUNT(c, r) = n;
	return 0;
}

/* local_domains: domain names, lower-cased, trailing dot removed, repeats dropped. */
static int parse_domains(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char item[CONF_LINE_MAX + 1], q[QBUF];
	char **arr = NULL, *d;
	size_t n = 0, cap = 0, i;
	const char *p = v;
	int oom;

	while (next_item(&p, item)) {
		const char *iwhy;
		char alabel[256];	/* RFC 5321 §4.5.3.1.2: 255 octets */

		/* RFC 6531: a U-label domain is kept in A-label form, as RCPT compares it */
		if (utf8_has_nonascii(item)) {
			if (intl_domain_ascii(item, alabel, sizeof(alabel), &iwhy) < 0) {
				snprintf(why, wl, "%s is not a valid domain name: %s",
				    conf_quote(item, q, sizeof q), iwhy);
				goto fail;
			}
			str_copy(item, sizeof(item), alabel);
		}
		d = domain_dup(item, 1, &oom);
		if (d == NULL) {
			if (oom)
				nomem(why, wl);
			else
				snprintf(why, wl, "%s is not a valid domain name", conf_quote(item, q, sizeof q));
			goto fail;
		}
		for (i = 0; i < n && strcmp(arr[i], d) != 0; i++)
			;
		if (i < n) {
			free(d);
			continue;
		}
		if (grow((void **)&arr, &cap, n, sizeof *arr) != 0) {
			free(d);
			nomem(why, wl);
			goto fail;
		}
		arr[n++] = d;
	}
	{
		char **old = *FIELD(c, r, char **);
		size_t nold = *COUNT(c, r);

		for (i = 0; i < nold; i++)
			free(old[i]);
		free(old);
	}
	*FIELD(c, r, char **) = arr;
	*COUNT(c, r) = n;
	return 0;
fail:
	for (i = 0; i < n; i++)
		free(arr[i]);
	free(arr);
	return -1;
}

static void print_domains(const struct conf *c, const struct row *r, FILE *fp)
{
	char *const *arr = *CFIELD(c, r, char **);

	for (size_t i = 0; i < *CCOUNT(c, r); i++)
		emit_list_item(fp, i, arr[i]);
}

/* relay_networks: ADDR/PREFIX or bare addresses. Empty = nobody relays. */
static int parse_cidrs(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char item[CONF_LINE_MAX + 1], q[QBUF];
	struct cidr *arr = NULL, ci;
	size_t n = 0, cap = 0;
	const char *p = v;

	while (next_item(&p, item)) {
		if (cidr_parse(item, &ci) != 0) {
			snprintf(why, wl, "%s is not an address or network (ADDR/PREFIX)",
			    conf_quote(item, q, sizeof q));
			free(arr);
			return -1;
		}
		if (grow((void **)&arr, &cap, n, sizeof *arr) != 0) {
			free(arr);
			return nomem(why, wl);
		}
		arr[n++] = ci;
	}
	free(*FIELD(c, r, struct cidr *));
	*FIELD(c, r, struct cidr *) = arr;
	*COUNT(c, r) = n;
	return 0;
}

static void print_cidrs(const struct conf *c, const struct row *r, FILE *fp)
{
	const struct cidr *arr = *CFIELD(c, r, struct cidr *);
	char a[NETADDR_STRLEN], b[NETADDR_STRLEN + 8];

	for (size_t i = 0; i < *CCOUNT(c, r); i++) {
		snprintf(b, sizeof b, "%s/%d", netaddr_str(&arr[i].net, a, sizeof a), arr[i].prefix);
		emit_list_item(fp, i, b);
	}
}

/* Booleans: yes/no, true/false, on/off, 1/0 (any case). */
static int parse_bool(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	char q[QBUF];

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*FIELD(c, r, int) = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*FIELD(c, r, int) = 0;
			return 0;
		}
	}
	snprintf(why, wl, "%s is not yes or no", conf_quote(v, q, sizeof q));
	return -1;
}

static void print_bool(const struct conf *c, const struct row *r, FILE *fp)
{
	fprintf(fp, " %s", *CFIELD(c, r, int) ? "yes" : "no");
}

/* Sizes in bytes (uint64_t field), bounds r->min..r->max. */
static int parse_size(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char q[QBUF];
	uint64_t n;

	if (conf_parse_size(v, &n) != 0) {
		snprintf(why, wl, "%s is not a size in bytes (digits, optionally k, m or g)",
		    conf_quote(v, q, sizeof q));
		return -1;
	}
	if (n < r->min || n > r->max) {
		snprintf(why, wl, "%llu is out of range (%llu to %llu bytes)",
		    (unsigned long long)n, r->min, r->max);
		return -1;
	}
	*FIELD(c, r, uint64_t) = n;
	return 0;
}

static void print_size(const struct conf *c, const struct row *r, FILE *fp)
{
	fprintf(fp, " %llu", (unsigned long long)*CFIELD(c, r, uint64_t));
}

/* Counts (unsigned field), bounds r->min..r->max. */
static int parse_count(unsigned long long *out, const struct row *r, const char *v, char *why,
    size_t wl)
{
	char q[QBUF];
	unsigned long long n = 0;

	if (!all_digits(v) || strlen(v) > 10) {
		snprintf(why, wl, "%s is not a number", conf_quote(v, q, sizeof q));
		return -1;
	}
	for (const char *s = v; *s; s++)
		n = n * 10 + (unsigned)(*s - '0');
	if (n < r->min || n > r->max) {
		snprintf(why, wl, "%llu is out of range (%llu to %llu)", n, r->min, r->max);
		return -1;
	}
	*out = n;
	return 0;
}

static int parse_uint(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	unsigned long long n;

	if (parse_count(&n, r, v, why, wl) != 0)
		return -1;
	*FIELD(c, r, unsigned) = (unsigned)n;
	return 0;
}

static void print_uint(const struct conf *c, const struct row *r, FILE *fp)
{
	fprintf(fp, " %u", *CFIELD(c, r, unsigned));
}

static int parse_port(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	unsigned long long n;

	if (parse_count(&n, r, v, why, wl) != 0)
		return -1;
	*FIELD(c, r, uint16_t) = (uint16_t)n;
	return 0;
}

static void print_port(const struct conf *c, const struct row *r, FILE *fp)
{
	fprintf(fp, " %u", (unsigned)*CFIELD(c, r, uint16_t));
}

/* Durations (unsigned seconds), bounds r->min..r->max seconds. */
static int parse_dur(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char q[QBUF];
	unsigned n;

	if (conf_parse_duration(v, &n) != 0) {
		if (all_digits(v) && strlen(v) < 12)
			snprintf(why, wl, "%s needs a unit: s, m, h or d (e.g. %ss)",
			    conf_quote(v, q, sizeof q), v);
		else
			snprintf(why, wl, "%s is not a duration (a number with a unit: s, m, h or d)",
			    conf_quote(v, q, sizeof q));
		return -1;
	}
	if (n < r->min || n > r->max) {
		snprintf(why, wl, "%us is out of range (%llus to %llus)", n, r->min, r->max);
		return -1;
	}
	*FIELD(c, r, unsigned) = n;
	return 0;
}

/* Format seconds with the largest unit that divides them exactly: 300 -> "5m". */
const char *conf_fmt_duration(unsigned s, char *buf, size_t len)
{
	if (s && s % 86400 == 0)
		snprintf(buf, len, "%ud", s / 86400);
	else if (s && s % 3600 == 0)
		snprintf(buf, len, "%uh", s / 3600);
	else if (s && s % 60 == 0)
		snprintf(buf, len, "%um", s / 60);
	else
		snprintf(buf, len, "%us", s);
	return buf;
}

static void print_dur(const struct conf *c, const struct row *r, FILE *fp)
{
	char b[32];

	fprintf(fp, " %s", conf_fmt_duration(*CFIELD(c, r, unsigned), b, sizeof b));
}

static int parse_loglevel(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char q[QBUF];
	int lvl = log_level_parse(v);

	if (lvl < 0) {
		snprintf(why, wl, "%s is not one of error, warn, info, debug", conf_quote(v, q, sizeof q));
		return -1;
	}
	*FIELD(c, r, int) = lvl;
	return 0;
}

static void print_loglevel(const struct conf *c, const struct row *r, FILE *fp)
{
	fprintf(fp, " %s", log_level_name(*CFIELD(c, r, int)));
}

/*
 * relayhost: `host`, `host:port`, `[addr]`, `[addr]:port` (IPv6 only in brackets). As in
 * Postfix, `[host]` (a name in brackets) is accepted too and means "no MX lookup: connect
 * to the A/AAAA of host". Sets relayhost (host without brackets), relayhost_literal (1 for
 * any bracketed form, and for a bare IPv4 address) and relayhost_port. Empty = unset.
 */
static int parse_relayhost(struct conf *c, const struct row *r, const char *v, char *why,
    size_t wl)
{
	char host[CONF_LINE_MAX + 1], q[QBUF], ab[NETADDR_STRLEN];
	const char *port_s = NULL;
	struct netaddr na;
	long port = RELAY_PORT;
	int literal = 0, oom;
	char *d;

	if (*v == '\0') {
		free(c->relayhost);
		c->relayhost = NULL;
		c->relayhost_literal = 0;
		c->relayhost_port = RELAY_PORT;
		return 0;
	}
	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		size_t hl;

		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			goto bad;
		hl = (size_t)(close - v - 1);
		memcpy(host, v + 1, hl);
		host[hl] = '\0';
		if (close[1] == ':')
			port_s = close + 2;
		literal = 1;
	} else {
		const char *colon = strchr(v, ':');
		size_t hl = colon ? (size_t)(colon - v) : strlen(v);

		if (colon && strchr(colon + 1, ':')) {
			snprintf(why, wl, "%s: write an IPv6 address as [ADDR] or [ADDR]:PORT",
			    conf_quote(v, q, sizeof q));
			return -1;
		}
		memcpy(host, v, hl);
		host[hl] = '\0';
		if (colon)
			port_s = colon + 1;
	}
	if (netaddr_parse(host, &na) == 0)
		literal = 2;	/* an address: printed normalised, in brackets */
	if (port_s) {
		port = all_digits(port_s) && strlen(port_s) <= 5 ? strtol(port_s, NULL, 10) : -1;
		if (port < 1 || port > 65535) {
			snprintf(why, wl, "port %s is not 1-65535", conf_quote(port_s, q, sizeof q));
			return -1;
		}
	}
	if (literal == 2) {
		literal = 1;
		d = conf_xstrdup(netaddr_str(&na, ab, sizeof ab));
		if (d == NULL)
			return nomem(why, wl);
	} else {
		d = domain_dup(host, 0, &oom);
		if (d == NULL) {
			if (oom)
				return nomem(why, wl);
			snprintf(why, wl, "%s is not a valid host name", conf_quote(host, q, sizeof q));
			return -1;
		}
	}
	free(c->relayhost);
	c->relayhost = d;
	c->relayhost_literal = literal;
	c->relayhost_port = (uint16_t)port;
	return 0;
bad:
	snprintf(why, wl, "%s is not host, host:port, [addr] or [addr]:port", conf_quote(v, q, sizeof q));
	return -1;
}

static void print_relayhost(const struct conf *c, const struct row *r, FILE *fp)
{
	if (c->relayhost == NULL)
		return;
	fprintf(fp, c->relayhost_literal ? " [%s]" : " %s", c->relayhost);
	if (c->relayhost_port != RELAY_PORT)
		fprintf(fp, ":%u", (unsigned)c->relayhost_port);
}

/* dkim_sign: DOMAIN:SELECTOR:KEYFILE items. The key file itself is read by the DKIM module
 * (imsd check and the server), not here. */
void conf_free_dkim(struct conf_dkim *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].domain);
		free(a[i].selector);
		free(a[i].keyfile);
	}
	free(a);
}

static int selector_ok(const char *s)
{
	/* RFC 6376 3.1: selectors are sub-domain labels */
	size_t lab = 0;

	if (*s == '\0' || *s == '.')
		return 0;
	for (; *s; s++) {
		if (*s == '.') {
			if (lab == 0)
				return 0;
			lab = 0;
			continue;
		}
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return 0;
		if (++lab > 63)
			return 0;
	}
	return lab > 0;
}

static int parse_dkim(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char item[CONF_LINE_MAX + 1], q[QBUF];
	struct conf_dkim *arr = NULL;
	size_t n = 0, cap = 0;
	const char *p = v;
	int oom;

	while (next_item(&p, item)) {
		char *c1 = strchr(item, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		struct conf_dkim k = { 0 };
		if (c1 == NULL || c2 == NULL || c2[1] == '\0') {
			snprintf(why, wl, "%s is not DOMAIN:SELECTOR:KEYFILE", conf_quote(item, q, sizeof q));
			goto fail;
		}
		*c1 = *c2 = '\0';
		if ((k.domain = domain_dup(item, 1, &oom)) == NULL) {
			if (oom)
				nomem(why, wl);
			else
				snprintf(why, wl, "%s is not a valid domain name", conf_quote(item, q, sizeof q));
			goto fail;
		}
		if (!selector_ok(c1 + 1)) {
			free(k.domain);
			snprintf(why, wl, "%s is not a valid DKIM selector (letters, digits, '-', '_' "
			    "and dots between labels)", conf_quote(c1 + 1, q, sizeof q));
			goto fail;
		}
		if (c2[1] != '/') {
			free(k.domain);
			snprintf(why, wl, "the key file %s must be an absolute path",
			    conf_quote(c2 + 1, q, sizeof q));
			goto fail;
		}
		for (size_t i = 0; i < n; i++)
			if (strcmp(arr[i].domain, k.domain) == 0 && strcmp(arr[i].selector, c1 + 1) == 0) {
				snprintf(why, wl, "selector %s of %s is listed twice", c1 + 1, k.domain);
				free(k.domain);
				goto fail;
			}
		k.selector = conf_xstrdup(c1 + 1);
		k.keyfile = conf_xstrdup(c2 + 1);
		if (k.selector == NULL || k.keyfile == NULL ||
		    grow((void **)&arr, &cap, n, sizeof *arr) != 0) {
			free(k.domain);
			free(k.selector);
			free(k.keyfile);
			nomem(why, wl);
			goto fail;
		}
		arr[n++] = k;
	}
	conf_free_dkim(*FIELD(c, r, struct conf_dkim *), *COUNT(c, r));
	*FIELD(c, r, struct conf_dkim *) = arr;
	*COUNT(c, r) = n;
	return 0;
fail:
	conf_free_dkim(arr, n);
	return -1;
}

static void print_dkim(const struct conf *c, const struct row *r, FILE *fp)
{
	const struct conf_dkim *arr = *CFIELD(c, r, struct conf_dkim *);
	char buf[CONF_LINE_MAX + 1];

	for (size_t i = 0; i < *CCOUNT(c, r); i++) {
		snprintf(buf, sizeof buf, "%s:%s:%s", arr[i].domain, arr[i].selector, arr[i].keyfile);
		emit_list_item(fp, i, buf);
	}
}

/* dnsbl, dnswl: ZONE or ZONE=WEIGHT. */
void conf_free_dnsl(struct conf_dnsl *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(a[i].zone);
	free(a);
}

static int parse_dnsl(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char item[CONF_LINE_MAX + 1], q[QBUF];
	struct conf_dnsl *arr = NULL;
	size_t n = 0, cap = 0;
	const char *p = v;
	int oom;

	while (next_item(&p, item)) {
		char *eq = strchr(item, '=');
		struct conf_dnsl d = { .weight = 1 };
		if (eq != NULL) {
			char *end;
			unsigned long w;
			*eq = '\0';
			errno = 0;
			w = strtoul(eq + 1, &end, 10);
			if (!isdigit((unsigned char)eq[1]) || *end != '\0' || errno || w < 1 || w > 100) {
				snprintf(why, wl, "the weight of %s must be a number from 1 to 100, not %s",
				    conf_quote(item, q, sizeof q), eq + 1);
				goto fail;
			}
			d.weight = (unsigned)w;
		}
		if ((d.zone = domain_dup(item, 1, &oom)) == NULL || strchr(d.zone, '.') == NULL) {
			if (oom)
				nomem(why, wl);
			else
				snprintf(why, wl, "%s is not a DNS list zone (a domain such as "
				    "zen.spamhaus.org)", conf_quote(item, q, sizeof q));
			free(d.zone);
			goto fail;
		}
		if (grow((void **)&arr, &cap, n, sizeof *arr) != 0) {
			free(d.zone);
			nomem(why, wl);
			goto fail;
		}
		arr[n++] = d;
	}
	conf_free_dnsl(*FIELD(c, r, struct conf_dnsl *), *COUNT(c, r));
	*FIELD(c, r, struct conf_dnsl *) = arr;
	*COUNT(c, r) = n;
	return 0;
fail:
	conf_free_dnsl(arr, n);
	return -1;
}

static void print_dnsl(const struct conf *c, const struct row *r, FILE *fp)
{
	const struct conf_dnsl *arr = *CFIELD(c, r, struct conf_dnsl *);
	char buf[CONF_LINE_MAX + 1];

	for (size_t i = 0; i < *CCOUNT(c, r); i++) {
		if (arr[i].weight == 1)
			snprintf(buf, sizeof buf, "%s", arr[i].zone);
		else
			snprintf(buf, sizeof buf, "%s=%u", arr[i].zone, arr[i].weight);
		emit_list_item(fp, i, buf);
	}
}

/* smtp_tls: one outbound TLS level (conf/tlslevel.h). */
static int parse_tlslevel(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	return outtls_level_parse(v, FIELD(c, r, int), why, wl);
}

static void print_tlslevel(const struct conf *c, const struct row *r, FILE *fp)
{
	fprintf(fp, " %s", outtls_level_name(*CFIELD(c, r, int)));
}

/* tls_policy: DOMAIN:LEVEL or .DOMAIN:LEVEL (its subdomains); each domain once. */
void conf_free_tlspol(struct conf_tls_policy *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(a[i].domain);
	free(a);
}

static int parse_tlspol(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char item[CONF_LINE_MAX + 1], q[QBUF];
	struct conf_tls_policy *arr = NULL;
	size_t n = 0, cap = 0;
	const char *p = v;
	int oom;

	while (next_item(&p, item)) {
		char *colon = strrchr(item, ':'), lw[200];
		struct conf_tls_policy e = { 0 };
		int sub = item[0] == '.';

		if (colon == NULL) {
			snprintf(why, wl, "%s is not DOMAIN:LEVEL", conf_quote(item, q, sizeof q));
			goto fail;
		}
		*colon = '\0';
		if (outtls_level_parse(colon + 1, &e.level, lw, sizeof lw) != 0) {
			snprintf(why, wl, "%s: %s", conf_quote(item, q, sizeof q), lw);
			goto fail;
		}
		if (n >= OUTTLS_POLICY_MAX) {
			snprintf(why, wl, "more than %d entries", OUTTLS_POLICY_MAX);
			goto fail;
		}
		{
			char *d = domain_dup(item + sub, 1, &oom);
			if (d == NULL) {
				if (oom)
					nomem(why, wl);
				else
					snprintf(why, wl, "%s is not a domain name (DOMAIN:LEVEL, or "
					    ".DOMAIN:LEVEL for its subdomains)", conf_quote(item, q, sizeof q));
				goto fail;
			}
			if (sub) {
				size_t dl = strlen(d);
				e.domain = malloc(dl + 2);
				if (e.domain != NULL) {
					e.domain[0] = '.';
					memcpy(e.domain + 1, d, dl + 1);
				}
				free(d);
				if (e.domain == NULL) {
					nomem(why, wl);
					goto fail;
				}
			} else
				e.domain = d;
		}
		for (size_t i = 0; i < n; i++)
			if (strcmp(arr[i].domain, e.domain) == 0) {
				snprintf(why, wl, "%s is listed twice", e.domain);
				free(e.domain);
				goto fail;
			}
		if (grow((void **)&arr, &cap, n, sizeof *arr) != 0) {
			free(e.domain);
			nomem(why, wl);
			goto fail;
		}
		arr[n++] = e;
	}
	conf_free_tlspol(*FIELD(c, r, struct conf_tls_policy *), *COUNT(c, r));
	*FIELD(c, r, struct conf_tls_policy *) = arr;
	*COUNT(c, r) = n;
	return 0;
fail:
	conf_free_tlspol(arr, n);
	return -1;
}

static void print_tlspol(const struct conf *c, const struct row *r, FILE *fp)
{
	const struct conf_tls_policy *arr = *CFIELD(c, r, struct conf_tls_policy *);
	char buf[CONF_LINE_MAX + 1];

	for (size_t i = 0; i < *CCOUNT(c, r); i++) {
		snprintf(buf, sizeof buf, "%s:%s", arr[i].domain, outtls_level_name(arr[i].level));
		emit_list_item(fp, i, buf);
	}
}

/* ---- mailbox_transport, auth_backend, recipient_check (the Dovecot keys) ---- */

/* A unix socket path after "lmtp:unix:" or "dovecot:unix:": non-empty, fits sun_path, no
 * blanks or control bytes. */
static int sock_path(const char *p, char *out, char *why, size_t wl)
{
	char q[QBUF];
	size_t n = strlen(p);

	if (n == 0) {
		snprintf(why, wl, "the socket path is missing");
		return -1;
	}
	if (n >= CONF_SOCKPATH_MAX) {
		snprintf(why, wl, "socket path %s is longer than %d bytes (a unix socket's limit)",
		    conf_quote(p, q, sizeof q), CONF_SOCKPATH_MAX - 1);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f) {
			snprintf(why, wl, "socket path %s contains a blank or control character",
			    conf_quote(p, q, sizeof q));
			return -1;
		}
	memcpy(out, p, n + 1);
	return 0;
}

/* Parse a transport; see conf.h. */
int conf_transport_parse(const char *s, struct conf_transport *t, char *why, size_t wl)
{
	char q[QBUF], host[CONF_LINE_MAX + 1];
	struct netaddr na;

	memset(t, 0, sizeof *t);
	if (strcmp(s, "maildir") == 0) {
		t->kind = TRANSPORT_MAILDIR;
		return 0;
	}
	if (strncmp(s, "lmtp:unix:", 10) == 0) {
		t->kind = TRANSPORT_LMTP_UNIX;
		return sock_path(s + 10, t->path, why, wl);
	}
	if (strncmp(s, "lmtp:inet:", 10) == 0) {
		const char *hp = s + 10, *port_s;
		size_t hl;
		long port;

		t->kind = TRANSPORT_LMTP_INET;
		if (hp[0] == '[') {
			const char *close = strchr(hp, ']');

			if (close == NULL || close[1] != ':')
				goto inet_bad;
			hl = (size_t)(close - hp - 1);
			memcpy(host, hp + 1, hl);
			host[hl] = '\0';
			port_s = close + 2;
			if (netaddr_parse(host, &na) < 0)
				goto inet_bad;
		} else {
			const char *colon = strrchr(hp, ':');

			if (colon == NULL || memchr(hp, ':', (size_t)(colon - hp)) != NULL)
				goto inet_bad;
			hl = (size_t)(colon - hp);
			memcpy(host, hp, hl);
			host[hl] = '\0';
			port_s = colon + 1;
		}
		port = all_digits(port_s) && strlen(port_s) <= 5 ? strtol(port_s, NULL, 10) : -1;
		if (port < 1 || port > 65535) {
			snprintf(why, wl, "port %s is not 1-65535", conf_quote(port_s, q, sizeof q));
			return -1;
		}
		if (netaddr_parse(host, &na) == 0)
			netaddr_str(&na, t->host, sizeof t->host);
		else {
			int oom;
			char *d = domain_dup(host, 1, &oom);

			if (d == NULL || strlen(d) >= sizeof t->host) {
				free(d);
				if (oom)
					return nomem(why, wl);
				snprintf(why, wl, "%s is not a host name or address",
				    conf_quote(host, q, sizeof q));
				return -1;
			}
			memcpy(t->host, d, strlen(d) + 1);
			free(d);
		}
		t->port = (uint16_t)port;
		return 0;
inet_bad:
		snprintf(why, wl, "%s is not lmtp:inet:HOST:PORT (an IPv6 address as [ADDR]:PORT)",
		    conf_quote(s, q, sizeof q));
		return -1;
	}
	snprintf(why, wl, "%s is not maildir, lmtp:unix:PATH or lmtp:inet:HOST:PORT",
	    conf_quote(s, q, sizeof q));
	return -1;
}

const char *conf_transport_str(const struct conf_transport *t, char *buf, size_t len)
{
	switch (t->kind) {
	case TRANSPORT_LMTP_UNIX:
		snprintf(buf, len, "lmtp:unix:%s", t->path);
		break;
	case TRANSPORT_LMTP_INET:
		snprintf(buf, len, strchr(t->host, ':') ? "lmtp:inet:[%s]:%u" : "lmtp:inet:%s:%u",
		    t->host, t->port);
		break;
	default:
		snprintf(buf, len, "maildir");
	}
	return buf;
}

static int parse_transport(struct conf *c, const struct row *r, const char *v, char *why,
    size_t wl)
{
	struct conf_transport t;

	if (conf_transport_parse(v, &t, why, wl) < 0)
		return -1;
	*FIELD(c, r, struct conf_transport) = t;
	return 0;
}

static void print_transport(const struct conf *c, const struct row *r, FILE *fp)
{
	char b[CONF_SOCKPATH_MAX + 300];

	fprintf(fp, " %s", conf_transport_str(CFIELD(c, r, struct conf_transport), b, sizeof b));
}

static int active_transport(const struct conf *c, const struct row *r)
{
	return CFIELD(c, r, struct conf_transport)->kind != TRANSPORT_MAILDIR;
}

/* auth_backend: `file` or `dovecot:unix:PATH`. */
static int parse_authbackend(struct conf *c, const struct row *r, const char *v, char *why,
    size_t wl)
{
	char q[QBUF], path[CONF_SOCKPATH_MAX];

	if (strcmp(v, "file") == 0) {
		c->auth_backend = AUTH_BACKEND_FILE;
		c->auth_dovecot_socket[0] = '\0';
		return 0;
	}
	if (strncmp(v, "dovecot:unix:", 13) == 0) {
		if (sock_path(v + 13, path, why, wl) < 0)
			return -1;
		c->auth_backend = AUTH_BACKEND_DOVECOT;
		memcpy(c->auth_dovecot_socket, path, sizeof path);
		return 0;
	}
	snprintf(why, wl, "%s is not file or dovecot:unix:PATH", conf_quote(v, q, sizeof q));
	return -1;
}

static void print_authbackend(const struct conf *c, const struct row *r, FILE *fp)
{
	if (c->auth_backend == AUTH_BACKEND_DOVECOT)
		fprintf(fp, " dovecot:unix:%s", c->auth_dovecot_socket);
	else
		fprintf(fp, " file");
}

static int parse_rcptcheck(struct conf *c, const struct row *r, const char *v, char *why,
    size_t wl)
{
	char q[QBUF];

	if (strcmp(v, "local") == 0)
		c->recipient_check = RCPT_CHECK_LOCAL;
	else if (strcmp(v, "transport") == 0)
		c->recipient_check = RCPT_CHECK_TRANSPORT;
	else {
		snprintf(why, wl, "%s is not local or transport", conf_quote(v, q, sizeof q));
		return -1;
	}
	return 0;
}

static void print_rcptcheck(const struct conf *c, const struct row *r, FILE *fp)
{
	fprintf(fp, " %s", c->recipient_check == RCPT_CHECK_TRANSPORT ? "transport" : "local");
}

/* ---- the types ---- */

const struct conf_type conf_t_hostname = { parse_hostname, print_str, active_str };
const struct conf_type conf_t_path = { parse_path, print_str, active_str };
const struct conf_type conf_t_optpath = { parse_optpath, print_str, active_str };
const struct conf_type conf_t_listen = { parse_hostports, print_hostports, active_list };
const struct conf_type conf_t_dns = { parse_dns, print_hostports, active_list };
const struct conf_type conf_t_domains = { parse_domains, print_domains, active_list };
const struct conf_type conf_t_cidrs = { parse_cidrs, print_cidrs, active_list };
const struct conf_type conf_t_bool = { parse_bool, print_bool, active_int };
const struct conf_type conf_t_size = { parse_size, print_size, active_always };
const struct conf_type conf_t_uint = { parse_uint, print_uint, active_always };
const struct conf_type conf_t_port = { parse_port, print_port, active_always };
const struct conf_type conf_t_dur = { parse_dur, print_dur, active_always };
const struct conf_type conf_t_loglevel = { parse_loglevel, print_loglevel, active_always };
const struct conf_type conf_t_relayhost = { parse_relayhost, print_relayhost, active_str };
const struct conf_type conf_t_user = { parse_user, print_str, active_str };
const struct conf_type conf_t_dkimsign = { parse_dkim, print_dkim, active_list };
const struct conf_type conf_t_dnsl = { parse_dnsl, print_dnsl, active_list };
const struct conf_type conf_t_tlslevel = { parse_tlslevel, print_tlslevel, active_always };
const struct conf_type conf_t_tlspol = { parse_tlspol, print_tlspol, active_list };
const struct conf_type conf_t_transport = { parse_transport, print_transport, active_transport };
const struct conf_type conf_t_authbackend = { parse_authbackend, print_authbackend, active_int };
const struct conf_type conf_t_rcptcheck = { parse_rcptcheck, print_rcptcheck, active_int };
