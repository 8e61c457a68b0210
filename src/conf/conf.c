/*
 * conf — the configuration: one schema row per key of SPEC.md, parsed and validated.
 *
 * Everything about a key lives in its row of `schema` below: its name, how its value is
 * parsed (and into which field), how it is printed back, its default as configuration
 * text, its bounds, and whether this build acts on it yet. Defaults are applied by parsing
 * the default text of every row before the file's lines, so a default can never be
 * something the parser would refuse.
 */
#include "conf/conf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf/tlslevel.h"
#include "util/log.h"
#include "util/intl.h"
#include "util/str.h"
#include "util/utf8.h"

#define CONF_LINE_MAX	4096		/* longest line, without its line ending */
#define CONF_FILE_MAX	(16u << 20)	/* largest configuration file read */
#define SIZE_MAX_BYTES	(1ull << 40)	/* message_size_limit sanity bound: 1 TiB */
#define DNS_PORT	53
#define RELAY_PORT	25

#define EMBEDDED_NAME	"(embedded default)"

/*
 * The embedded default (SPEC.md "Command line"): every default below is already the
 * schema default, so only the certificate paths are set; the rest is documentation.
 */
const char conf_default_text[] =
	"# imsd embedded default configuration, used when no -c FILE is given.\n"
	"# Keys left out keep their defaults; `imsd check` prints every effective value.\n"
	"#\n"
	"# listen = 127.0.0.1:2525\n"
	"# spool_dir = ./var/spool\n"
	"# mail_dir = ./var/mail\n"
	"# local_domains = localhost\n"
	"#\n"
	"# A self-signed certificate and key are generated here on first start.\n"
	"tls_cert_file = ./var/tls/cert.pem\n"
	"tls_key_file = ./var/tls/key.pem\n";

struct row;
typedef int (*parse_fn)(struct conf *c, const struct row *r, const char *v, char *why, size_t wl);
typedef void (*print_fn)(const struct conf *c, const struct row *r, FILE *fp);
typedef int (*active_fn)(const struct conf *c, const struct row *r);

struct row {
	const char *name;
	parse_fn parse;		/* parse v into the field(s); frees what it replaces */
	print_fn print;		/* print the value in configuration syntax, after "key =" */
	active_fn active;	/* does the value ask for something (non-empty, true)? */
	size_t off;		/* offsetof the field in struct conf */
	size_t noff;		/* offsetof its element count, for lists */
	const char *def;	/* default, as configuration text; NULL = unset */
	unsigned long long min, max;	/* bounds: numbers and durations; min 1 = non-empty list */
	/*
	 * 1 = the capability behind this key is not in this build yet: the key is parsed and
	 * validated, but conf_not_in_effect() reports it when the file sets it to a value
	 * that asks for something (a non-empty list or path, `yes`, any number). Set this to
	 * 0 in the key's row when the capability lands.
	 */
	int not_yet;
};

#define FIELD(c, r, T)	((T *)(void *)((char *)(c) + (r)->off))
#define CFIELD(c, r, T)	((T const *)(const void *)((const char *)(c) + (r)->off))
#define COUNT(c, r)	((size_t *)(void *)((char *)(c) + (r)->noff))
#define CCOUNT(c, r)	((const size_t *)(const void *)((const char *)(c) + (r)->noff))

/* ---- small helpers ---- */

/* Quote what the user wrote for an error message (see str_quote). */
static const char *quote(const char *s, char *buf, size_t len)
{
	return str_quote(s, 80, buf, len);
}

#define QBUF 400

static char *xstrdup(const char *s)
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
static int domain_valid(const char *s, size_t len)
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
	if (!domain_valid(s, len))
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

/* ---- public value parsers ---- */

/* Decimal bytes with an optional k/m/g suffix (either case; powers of 1024). 0 ok, -1 bad
 * (syntax or more than 2^64-1). */
int conf_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	size_t i;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -1;
	for (i = 0; isdigit((unsigned char)s[i]); i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	switch (s[i]) {
	case '\0': break;
	case 'k': case 'K': mult = 1024ull; i++; break;
	case 'm': case 'M': mult = 1024ull * 1024; i++; break;
	case 'g': case 'G': mult = 1024ull * 1024 * 1024; i++; break;
	default: return -1;
	}
	if (s[i] != '\0' || (v && v > UINT64_MAX / mult))
		return -1;
	*out = v * mult;
	return 0;
}

/* A duration in seconds: one or more NUMBER UNIT groups, unit s, m, h or d ("90s", "5m",
 * "1h30m"). A bare number is refused. 0 ok, -1 bad (syntax or more than UINT_MAX s). */
int conf_parse_duration(const char *s, unsigned *out)
{
	unsigned long long total = 0;
	size_t i = 0;

	if (s == NULL || s[0] == '\0')
		return -1;
	while (s[i]) {
		unsigned long long v = 0, unit;
		size_t start = i;

		for (; isdigit((unsigned char)s[i]); i++) {
			v = v * 10 + (unsigned)(s[i] - '0');
			if (v > UINT_MAX)
				return -1;
		}
		if (i == start)
			return -1;
		switch (s[i]) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default: return -1;
		}
		i++;
		total += v * unit;
		if (total > UINT_MAX)
			return -1;
	}
	*out = (unsigned)total;
	return 0;
}

/* 1 when domain_lc (lower-case, no trailing dot) is one of local_domains. */
int conf_is_local_domain(const struct conf *c, const char *domain_lc)
{
	if (domain_lc == NULL)
		return 0;
	for (size_t i = 0; i < c->nlocal_domains; i++)
		if (strcmp(c->local_domains[i], domain_lc) == 0)
			return 1;
	return 0;
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
		snprintf(why, wl, "%s is not a valid domain name", quote(v, q, sizeof q));
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
	if ((d = xstrdup(v)) == NULL)
		return nomem(why, wl);
	free(*FIELD(c, r, char *));
	*FIELD(c, r, char *) = d;
	return 0;
}

/* An optional path: empty = unset. */
static int parse_optpath(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char *d = NULL;

	if (*v && (d = xstrdup(v)) == NULL)
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
		    "32)", quote(v, q, sizeof q));
		return -1;
	}
	if ((d = xstrdup(v)) == NULL)
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
			    quote(item, q, sizeof q));
			goto fail;
		}
		for (size_t i = 0; i < n; i++) {
			if (arr[i].port == hp.port && netaddr_equal(&arr[i].addr, &hp.addr)) {
				snprintf(why, wl, "%s is listed twice", quote(item, q, sizeof q));
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
			    quote(item, q, sizeof q));
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
				    quote(item, q, sizeof q), iwhy);
				goto fail;
			}
			str_copy(item, sizeof(item), alabel);
		}
		d = domain_dup(item, 1, &oom);
		if (d == NULL) {
			if (oom)
				nomem(why, wl);
			else
				snprintf(why, wl, "%s is not a valid domain name", quote(item, q, sizeof q));
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
			    quote(item, q, sizeof q));
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
	snprintf(why, wl, "%s is not yes or no", quote(v, q, sizeof q));
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
		    quote(v, q, sizeof q));
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
		snprintf(why, wl, "%s is not a number", quote(v, q, sizeof q));
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
			    quote(v, q, sizeof q), v);
		else
			snprintf(why, wl, "%s is not a duration (a number with a unit: s, m, h or d)",
			    quote(v, q, sizeof q));
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
static const char *fmt_duration(unsigned s, char *buf, size_t len)
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

	fprintf(fp, " %s", fmt_duration(*CFIELD(c, r, unsigned), b, sizeof b));
}

static int parse_loglevel(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	char q[QBUF];
	int lvl = log_level_parse(v);

	if (lvl < 0) {
		snprintf(why, wl, "%s is not one of error, warn, info, debug", quote(v, q, sizeof q));
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
			    quote(v, q, sizeof q));
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
			snprintf(why, wl, "port %s is not 1-65535", quote(port_s, q, sizeof q));
			return -1;
		}
	}
	if (literal == 2) {
		literal = 1;
		d = xstrdup(netaddr_str(&na, ab, sizeof ab));
		if (d == NULL)
			return nomem(why, wl);
	} else {
		d = domain_dup(host, 0, &oom);
		if (d == NULL) {
			if (oom)
				return nomem(why, wl);
			snprintf(why, wl, "%s is not a valid host name", quote(host, q, sizeof q));
			return -1;
		}
	}
	free(c->relayhost);
	c->relayhost = d;
	c->relayhost_literal = literal;
	c->relayhost_port = (uint16_t)port;
	return 0;
bad:
	snprintf(why, wl, "%s is not host, host:port, [addr] or [addr]:port", quote(v, q, sizeof q));
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
static void free_dkim(struct conf_dkim *a, size_t n)
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
			snprintf(why, wl, "%s is not DOMAIN:SELECTOR:KEYFILE", quote(item, q, sizeof q));
			goto fail;
		}
		*c1 = *c2 = '\0';
		if ((k.domain = domain_dup(item, 1, &oom)) == NULL) {
			if (oom)
				nomem(why, wl);
			else
				snprintf(why, wl, "%s is not a valid domain name", quote(item, q, sizeof q));
			goto fail;
		}
		if (!selector_ok(c1 + 1)) {
			free(k.domain);
			snprintf(why, wl, "%s is not a valid DKIM selector (letters, digits, '-', '_' "
			    "and dots between labels)", quote(c1 + 1, q, sizeof q));
			goto fail;
		}
		if (c2[1] != '/') {
			free(k.domain);
			snprintf(why, wl, "the key file %s must be an absolute path",
			    quote(c2 + 1, q, sizeof q));
			goto fail;
		}
		for (size_t i = 0; i < n; i++)
			if (strcmp(arr[i].domain, k.domain) == 0 && strcmp(arr[i].selector, c1 + 1) == 0) {
				snprintf(why, wl, "selector %s of %s is listed twice", c1 + 1, k.domain);
				free(k.domain);
				goto fail;
			}
		k.selector = xstrdup(c1 + 1);
		k.keyfile = xstrdup(c2 + 1);
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
	free_dkim(*FIELD(c, r, struct conf_dkim *), *COUNT(c, r));
	*FIELD(c, r, struct conf_dkim *) = arr;
	*COUNT(c, r) = n;
	return 0;
fail:
	free_dkim(arr, n);
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
static void free_dnsl(struct conf_dnsl *a, size_t n)
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
				    quote(item, q, sizeof q), eq + 1);
				goto fail;
			}
			d.weight = (unsigned)w;
		}
		if ((d.zone = domain_dup(item, 1, &oom)) == NULL || strchr(d.zone, '.') == NULL) {
			if (oom)
				nomem(why, wl);
			else
				snprintf(why, wl, "%s is not a DNS list zone (a domain such as "
				    "zen.spamhaus.org)", quote(item, q, sizeof q));
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
	free_dnsl(*FIELD(c, r, struct conf_dnsl *), *COUNT(c, r));
	*FIELD(c, r, struct conf_dnsl *) = arr;
	*COUNT(c, r) = n;
	return 0;
fail:
	free_dnsl(arr, n);
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
static void free_tlspol(struct conf_tls_policy *a, size_t n)
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
			snprintf(why, wl, "%s is not DOMAIN:LEVEL", quote(item, q, sizeof q));
			goto fail;
		}
		*colon = '\0';
		if (outtls_level_parse(colon + 1, &e.level, lw, sizeof lw) != 0) {
			snprintf(why, wl, "%s: %s", quote(item, q, sizeof q), lw);
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
					    ".DOMAIN:LEVEL for its subdomains)", quote(item, q, sizeof q));
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
	free_tlspol(*FIELD(c, r, struct conf_tls_policy *), *COUNT(c, r));
	*FIELD(c, r, struct conf_tls_policy *) = arr;
	*COUNT(c, r) = n;
	return 0;
fail:
	free_tlspol(arr, n);
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
		    quote(p, q, sizeof q), CONF_SOCKPATH_MAX - 1);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f) {
			snprintf(why, wl, "socket path %s contains a blank or control character",
			    quote(p, q, sizeof q));
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
			snprintf(why, wl, "port %s is not 1-65535", quote(port_s, q, sizeof q));
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
				    quote(host, q, sizeof q));
				return -1;
			}
			memcpy(t->host, d, strlen(d) + 1);
			free(d);
		}
		t->port = (uint16_t)port;
		return 0;
inet_bad:
		snprintf(why, wl, "%s is not lmtp:inet:HOST:PORT (an IPv6 address as [ADDR]:PORT)",
		    quote(s, q, sizeof q));
		return -1;
	}
	snprintf(why, wl, "%s is not maildir, lmtp:unix:PATH or lmtp:inet:HOST:PORT",
	    quote(s, q, sizeof q));
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
	snprintf(why, wl, "%s is not file or dovecot:unix:PATH", quote(v, q, sizeof q));
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
		snprintf(why, wl, "%s is not local or transport", quote(v, q, sizeof q));
		return -1;
	}
	return 0;
}

static void print_rcptcheck(const struct conf *c, const struct row *r, FILE *fp)
{
	fprintf(fp, " %s", c->recipient_check == RCPT_CHECK_TRANSPORT ? "transport" : "local");
}

/* ---- the schema ---- */

#define OFF(f)		.off = offsetof(struct conf, f)
#define LIST(f)		.off = offsetof(struct conf, f), .noff = offsetof(struct conf, n##f)
#define T_HOSTNAME	.parse = parse_hostname, .print = print_str, .active = active_str
#define T_PATH		.parse = parse_path, .print = print_str, .active = active_str
#define T_OPTPATH	.parse = parse_optpath, .print = print_str, .active = active_str
#define T_LISTEN	.parse = parse_hostports, .print = print_hostports, .active = active_list
#define T_DNS		.parse = parse_dns, .print = print_hostports, .active = active_list
#define T_DOMAINS	.parse = parse_domains, .print = print_domains, .active = active_list
#define T_CIDRS		.parse = parse_cidrs, .print = print_cidrs, .active = active_list
#define T_BOOL		.parse = parse_bool, .print = print_bool, .active = active_int
#define T_SIZE		.parse = parse_size, .print = print_size, .active = active_always
#define T_UINT		.parse = parse_uint, .print = print_uint, .active = active_always
#define T_PORT		.parse = parse_port, .print = print_port, .active = active_always
#define T_DUR		.parse = parse_dur, .print = print_dur, .active = active_always
#define T_LOGLEVEL	.parse = parse_loglevel, .print = print_loglevel, .active = active_always
#define T_RELAYHOST	.parse = parse_relayhost, .print = print_relayhost, .active = active_str
#define T_USER		.parse = parse_user, .print = print_str, .active = active_str
#define T_DKIMSIGN	.parse = parse_dkim, .print = print_dkim, .active = active_list
#define T_DNSL		.parse = parse_dnsl, .print = print_dnsl, .active = active_list
#define T_TLSLEVEL	.parse = parse_tlslevel, .print = print_tlslevel, .active = active_always
#define T_TLSPOL	.parse = parse_tlspol, .print = print_tlspol, .active = active_list
#define T_TRANSPORT	.parse = parse_transport, .print = print_transport, .active = active_transport
#define T_AUTHBACKEND	.parse = parse_authbackend, .print = print_authbackend, .active = active_int
#define T_RCPTCHECK	.parse = parse_rcptcheck, .print = print_rcptcheck, .active = active_int
#define NOT_YET		.not_yet = 1	/* capability not in this build: see struct row */

#define DAY 86400ull

static const struct row schema[CK__COUNT] = {
	[CK_HOSTNAME]		= { "hostname", T_HOSTNAME, OFF(hostname) },	/* default: caller's */
	[CK_LISTEN]		= { "listen", T_LISTEN, LIST(listen), .def = "127.0.0.1:2525", .min = 1 },
	[CK_SUBMISSION_LISTEN]	= { "submission_listen", T_LISTEN, LIST(submission_listen) },
	[CK_SMTPS_LISTEN]	= { "smtps_listen", T_LISTEN, LIST(smtps_listen) },
	[CK_SPOOL_DIR]		= { "spool_dir", T_PATH, OFF(spool_dir), .def = "./var/spool" },
	[CK_MAIL_DIR]		= { "mail_dir", T_PATH, OFF(mail_dir), .def = "./var/mail" },
	[CK_LOCAL_DOMAINS]	= { "local_domains", T_DOMAINS, LIST(local_domains), .def = "localhost" },
	[CK_RECIPIENTS_FILE]	= { "recipients_file", T_OPTPATH, OFF(recipients_file) },
	[CK_RELAY_NETWORKS]	= { "relay_networks", T_CIDRS, LIST(relay_networks),
				    .def = "127.0.0.0/8 ::1/128" },
	[CK_PROXY_NETWORKS]	= { "proxy_networks", T_CIDRS, LIST(proxy_networks) },
	[CK_TLS_CERT_FILE]	= { "tls_cert_file", T_OPTPATH, OFF(tls_cert_file) },
	[CK_TLS_KEY_FILE]	= { "tls_key_file", T_OPTPATH, OFF(tls_key_file) },
	[CK_TLS_LOOPBACK]	= { "tls_loopback", T_BOOL, OFF(tls_loopback), .def = "no" },
	[CK_AUTH_USERS_FILE]	= { "auth_users_file", T_OPTPATH, OFF(auth_users_file) },
	[CK_MESSAGE_SIZE_LIMIT]	= { "message_size_limit", T_SIZE, OFF(message_size_limit),
				    .def = "10485760", .min = 1024, .max = SIZE_MAX_BYTES },
	[CK_RECIPIENT_LIMIT]	= { "recipient_limit", T_UINT, OFF(recipient_limit),
				    .def = "1000", .min = 1, .max = 1000000 },
	[CK_MAX_CONNECTIONS]	= { "max_connections", T_UINT, OFF(max_connections),
				    .def = "1000", .min = 1, .max = 1000000 },
	[CK_MAX_CONNECTIONS_PER_IP] = { "max_connections_per_ip", T_UINT, OFF(max_connections_per_ip),
				    .def = "50", .min = 1, .max = 1000000 },
	[CK_MAX_SESSION_MEMORY]	= { "max_session_memory", T_SIZE, OFF(max_session_memory),
				    .def = "256m", .min = 1024 * 1024, .max = 1024ull * 1024 * 1024 * 1024 },
	[CK_COMMAND_TIMEOUT]	= { "command_timeout", T_DUR, OFF(command_timeout),
				    .def = "5m", .min = 1, .max = DAY },
	[CK_DATA_TIMEOUT]	= { "data_timeout", T_DUR, OFF(data_timeout),
				    .def = "10m", .min = 1, .max = DAY },
	[CK_RELAYHOST]		= { "relayhost", T_RELAYHOST, OFF(relayhost) },
	[CK_DNS_SERVERS]	= { "dns_servers", T_DNS, LIST(dns_servers) },
	[CK_SMTP_PORT]		= { "smtp_port", T_PORT, OFF(smtp_port),
				    .def = "25", .min = 1, .max = 65535 },
	[CK_RETRY_MIN]		= { "retry_min", T_DUR, OFF(retry_min),
				    .def = "5m", .min = 1, .max = 30 * DAY },
	[CK_RETRY_MAX]		= { "retry_max", T_DUR, OFF(retry_max),
				    .def = "1h", .min = 1, .max = 30 * DAY },
	[CK_QUEUE_LIFETIME]	= { "queue_lifetime", T_DUR, OFF(queue_lifetime),
				    .def = "5d", .min = 1, .max = 365 * DAY },
	[CK_DELAY_WARNING]	= { "delay_warning", T_DUR, OFF(delay_warning),
				    .def = "4h", .min = 1, .max = 365 * DAY },
	[CK_LOG_LEVEL]		= { "log_level", T_LOGLEVEL, OFF(log_level), .def = "info" },
	[CK_WORKERS]		= { "workers", T_UINT, OFF(workers), .def = "0", .min = 0, .max = 64 },
	[CK_RUN_USER]		= { "run_user", T_USER, OFF(run_user), .def = "imsd" },
	[CK_QUEUE_MINFREE]	= { "queue_minfree", T_SIZE, OFF(queue_minfree), .def = "0", .min = 0,
				    .max = SIZE_MAX_BYTES },
	[CK_DKIM_SIGN]		= { "dkim_sign", T_DKIMSIGN, LIST(dkim_sign) },
	[CK_INBOUND_CHECKS]	= { "inbound_checks", T_BOOL, OFF(inbound_checks), .def = "yes" },
	[CK_DMARC_REJECT]	= { "dmarc_reject", T_BOOL, OFF(dmarc_reject), .def = "yes" },
	[CK_SPF_REJECT]		= { "spf_reject", T_BOOL, OFF(spf_reject), .def = "no" },
	[CK_DNSBL]		= { "dnsbl", T_DNSL, LIST(dnsbl) },
	[CK_DNSWL]		= { "dnswl", T_DNSL, LIST(dnswl) },
	[CK_DNSBL_THRESHOLD]	= { "dnsbl_threshold", T_UINT, OFF(dnsbl_threshold), .def = "1",
				    .min = 1, .max = 1000 },
	[CK_METRICS_LISTEN]	= { "metrics_listen", T_LISTEN, LIST(metrics_listen) },
	[CK_SMTP_TLS]		= { "smtp_tls", T_TLSLEVEL, OFF(smtp_tls), .def = "opportunistic" },
	[CK_TLS_POLICY]		= { "tls_policy", T_TLSPOL, LIST(tls_policy) },
	[CK_SMTP_TLS_CA_FILE]	= { "smtp_tls_ca_file", T_OPTPATH, OFF(smtp_tls_ca_file) },
	[CK_DNSSEC_TRUST_RESOLVER] = { "dnssec_trust_resolver", T_BOOL, OFF(dnssec_trust_resolver),
				    .def = "no" },
	[CK_MTA_STS_PORT]	= { "mta_sts_port", T_PORT, OFF(mta_sts_port),
				    .def = "443", .min = 1, .max = 65535 },
	[CK_MAILBOX_TRANSPORT]	= { "mailbox_transport", T_TRANSPORT, OFF(mailbox_transport),
				    .def = "maildir", NOT_YET },
	[CK_TRANSPORT_MAP]	= { "transport_map", T_OPTPATH, OFF(transport_map), NOT_YET },
	[CK_AUTH_BACKEND]	= { "auth_backend", T_AUTHBACKEND, OFF(auth_backend), .def = "file" },
	[CK_RECIPIENT_CHECK]	= { "recipient_check", T_RCPTCHECK, OFF(recipient_check),
				    .def = "local", NOT_YET },
	/* aliases(5): read and checked (imsd check, newaliases, reload); delivery through it
	 * is not in this build yet */
	[CK_ALIAS_MAPS]		= { "alias_maps", T_OPTPATH, OFF(alias_maps), .not_yet = 1 },
	[CK_SYSTEM_MAILBOXES]	= { "system_mailboxes", T_BOOL, OFF(system_mailboxes), .def = "no" },
};

/* The name of key k ("hostname", ...); NULL when k is out of range. */
const char *conf_key_name(enum conf_key k)
{
	if ((unsigned)k >= CK__COUNT)
		return NULL;
	return schema[k].name;
}

/* 1 when key k is set by the file to a value that asks for something and this build
 * does not act on it yet (the row's not_yet flag). */
int conf_not_in_effect(const struct conf *c, enum conf_key k)
{
	const struct row *r;

	if ((unsigned)k >= CK__COUNT)
		return 0;
	r = &schema[k];
	return r->not_yet && c->set[k] && r->active(c, r);
}

/* Print "key = value" for every key, in schema order, with "# default" for keys the file
 * did not set and "# not yet in effect" where conf_not_in_effect. */
void conf_print(const struct conf *c, FILE *fp)
{
	for (int k = 0; k < CK__COUNT; k++) {
		const struct row *r = &schema[k];

		fprintf(fp, "%s =", r->name);
		r->print(c, r, fp);
		if (!c->set[k])
			fputs("  # default", fp);
		if (conf_not_in_effect(c, (enum conf_key)k))
			fputs("  # not yet in effect", fp);
		fputc('\n', fp);
	}
}

/* Release everything c owns and zero it. */
void conf_free(struct conf *c)
{
	if (c == NULL)
		return;
	free(c->source);
	free(c->hostname);
	free(c->listen);
	free(c->submission_listen);
	free(c->smtps_listen);
	free(c->metrics_listen);
	free(c->spool_dir);
	free(c->mail_dir);
	for (size_t i = 0; i < c->nlocal_domains; i++)
		free(c->local_domains[i]);
	free(c->local_domains);
	free(c->recipients_file);
	free(c->alias_maps);
	free(c->relay_networks);
	free(c->proxy_networks);
	free(c->tls_cert_file);
	free(c->tls_key_file);
	free(c->auth_users_file);
	free(c->relayhost);
	free(c->run_user);
	free(c->dns_servers);
	free_dkim(c->dkim_sign, c->ndkim_sign);
	free_dnsl(c->dnsbl, c->ndnsbl);
	free_dnsl(c->dnswl, c->ndnswl);
	free_tlspol(c->tls_policy, c->ntls_policy);
	free(c->smtp_tls_ca_file);
	free(c->transport_map);
	memset(c, 0, sizeof *c);
}

/* ---- parsing the text ---- */

static const struct row *row_find(const char *key)
{
	for (int k = 0; k < CK__COUNT; k++)
		if (strcmp(schema[k].name, key) == 0)
			return &schema[k];
	return NULL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

/* Remove a comment: '#' at the start of the line, after a blank, or right after the '='
 * (so "key =#x" means an empty value, as "key = #x" does, and a printed value can never
 * start with '#'). */
static void strip_comment(char *s)
{
	for (char *p = s; *p; p++) {
		if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '=')) {
			*p = '\0';
			return;
		}
	}
}

/* Checks between keys, after the whole text is read. 0 ok, -1 with err set. */
static int cross_check(const char *name, struct conf *c, char *err, size_t errlen)
{
	static const enum conf_key lists[] = { CK_LISTEN, CK_SUBMISSION_LISTEN, CK_SMTPS_LISTEN,
	    CK_METRICS_LISTEN };
	const size_t nlists = sizeof(lists) / sizeof(lists[0]);
	char b[NETADDR_STRLEN];

	if (c->retry_min > c->retry_max) {
		char x[32], y[32];
		enum conf_key k = c->set[CK_RETRY_MAX] ? CK_RETRY_MAX : CK_RETRY_MIN;

		if (k == CK_RETRY_MAX)
			snprintf(err, errlen, "%s:%u: retry_max: %s is less than retry_min (%s)", name,
			    c->set_line[k], fmt_duration(c->retry_max, x, sizeof x),
			    fmt_duration(c->retry_min, y, sizeof y));
		else
			snprintf(err, errlen, "%s:%u: retry_min: %s is more than retry_max (%s)", name,
			    c->set_line[k], fmt_duration(c->retry_min, x, sizeof x),
			    fmt_duration(c->retry_max, y, sizeof y));
		return -1;
	}

	/* DANE rests on the resolver's word that the TLSA records are authentic (the AD bit):
	 * only a resolver the operator named and vouched for may give it. */
	if (outtls_uses(c, OUTTLS_DANE) && (!c->dnssec_trust_resolver || c->ndns_servers == 0)) {
		enum conf_key k = c->smtp_tls == OUTTLS_DANE ? CK_SMTP_TLS : CK_TLS_POLICY;
		snprintf(err, errlen, "%s:%u: %s: dane needs dnssec_trust_resolver = yes and "
		    "dns_servers naming a DNSSEC-validating resolver reached over a trusted path",
		    name, c->set_line[k], conf_key_name(k));
		return -1;
	}

	/* auth_users_file belongs to the file backend: with Dovecot's users it would be read
	 * and never asked, a trap for whoever edits it. */
	if (c->auth_backend == AUTH_BACKEND_DOVECOT && c->auth_users_file != NULL) {
		enum conf_key k = c->set_line[CK_AUTH_USERS_FILE] > c->set_line[CK_AUTH_BACKEND] ?
		    CK_AUTH_USERS_FILE : CK_AUTH_BACKEND;
		snprintf(err, errlen, "%s:%u: %s: auth_users_file is not used with auth_backend = "
		    "dovecot:unix:%s; remove one of them", name, c->set_line[k], conf_key_name(k),
		    c->auth_dovecot_socket);
		return -1;
	}
	/* Asking the transport about recipients needs a transport that can be asked. */
	if (c->recipient_check == RCPT_CHECK_TRANSPORT &&
	    c->mailbox_transport.kind == TRANSPORT_MAILDIR && c->transport_map == NULL) {
		snprintf(err, errlen, "%s:%u: recipient_check: transport needs an LMTP "
		    "mailbox_transport or a transport_map (with maildir there is no one to ask)",
		    name, c->set_line[CK_RECIPIENT_CHECK]);
		return -1;
	}

	/* The same ADDR:PORT in two listener keys could never be bound. */
	for (size_t a = 0; a < nlists; a++) {
		const struct row *ra = &schema[lists[a]];
		const struct hostport *pa = *CFIELD(c, ra, struct hostport *);

		for (size_t bi = a + 1; bi < nlists; bi++) {
			const struct row *rb = &schema[lists[bi]];
			const struct hostport *pb = *CFIELD(c, rb, struct hostport *);

			for (size_t i = 0; i < *CCOUNT(c, ra); i++) {
				for (size_t j = 0; j < *CCOUNT(c, rb); j++) {
					if (pa[i].port != pb[j].port ||
					    !netaddr_equal(&pa[i].addr, &pb[j].addr))
						continue;
					snprintf(err, errlen, "%s:%u: %s: %s is also in %s", name,
					    c->set_line[lists[bi]], rb->name,
					    hostport_str(&pb[j], b, sizeof b), ra->name);
					return -1;
				}
			}
		}
	}
	return 0;
}

/* Parse text (len bytes) into *out; see conf.h. */
int conf_parse(const char *name, const char *text, size_t len, const char *hostname_default,
    struct conf *out, char *err, size_t errlen)
{
	struct conf c;
	char why[CONF_LINE_MAX + 512], q[QBUF];
	size_t pos = 0;
	unsigned lineno = 0;

	memset(&c, 0, sizeof c);
	if (name == NULL)
		name = "(config)";
	if (errlen)
		err[0] = '\0';
	if ((c.source = xstrdup(name)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	for (int k = 0; k < CK__COUNT; k++) {
		const struct row *r = &schema[k];

		if (r->def && r->parse(&c, r, r->def, why, sizeof why) != 0) {
			snprintf(err, errlen, "%s: %s: default %s: %s", name, r->name, r->def, why);
			goto fail;
		}
	}

	while (pos < len) {
		char buf[CONF_LINE_MAX + 1], *s, *eq, *key, *val;
		const char *ls = text + pos, *nl = memchr(ls, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - ls) : len - pos;
		const struct row *r;
		enum conf_key k;

		lineno++;
		pos += ll + (nl != NULL);
		if (ll && ls[ll - 1] == '\r')
			ll--;
		if (ll > CONF_LINE_MAX) {
			snprintf(err, errlen, "%s:%u: line too long (more than %d bytes)", name, lineno,
			    CONF_LINE_MAX);
			goto fail;
		}
		for (size_t i = 0; i < ll; i++) {
			unsigned char ch = (unsigned char)ls[i];

			if (ch == '\0' || (ch < 0x20 && ch != '\t') || ch == 0x7f) {
				snprintf(err, errlen, "%s:%u: %s byte in line", name, lineno,
				    ch == '\0' ? "NUL" : "control");
				goto fail;
			}
		}
		memcpy(buf, ls, ll);
		buf[ll] = '\0';
		strip_comment(buf);
		s = trim(buf);
		if (*s == '\0')
			continue;
		eq = strchr(s, '=');
		if (eq == NULL || eq == s) {
			snprintf(err, errlen, "%s:%u: expected 'key = value'", name, lineno);
			goto fail;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		if (*key == '\0') {
			snprintf(err, errlen, "%s:%u: expected 'key = value'", name, lineno);
			goto fail;
		}
		r = row_find(key);
		if (r == NULL) {
			/* the key is shown as written, escaped; a plain key is shown bare */
			quote(key, q, sizeof q);
			if (strlen(q) == strlen(key) + 2) {
				q[strlen(q) - 1] = '\0';
				snprintf(err, errlen, "%s:%u: %s: unknown key", name, lineno, q + 1);
			} else {
				snprintf(err, errlen, "%s:%u: %s: unknown key", name, lineno, q);
			}
			goto fail;
		}
		k = (enum conf_key)(r - schema);
		if (c.set[k]) {
			snprintf(err, errlen, "%s:%u: %s: set twice (first on line %u)", name, lineno,
			    r->name, c.set_line[k]);
			goto fail;
		}
		if (r->parse(&c, r, val, why, sizeof why) != 0) {
			snprintf(err, errlen, "%s:%u: %s: %s", name, lineno, r->name, why);
			goto fail;
		}
		c.set[k] = 1;
		c.set_line[k] = lineno;
	}

	if (!c.set[CK_HOSTNAME]) {
		const char *h = hostname_default && *hostname_default ? hostname_default : "localhost";

		if (parse_hostname(&c, &schema[CK_HOSTNAME], h, why, sizeof why) != 0) {
			snprintf(err, errlen, "%s: hostname: the system host name %s is not a valid "
			    "domain name; set hostname", name, quote(h, q, sizeof q));
			goto fail;
		}
	}
	if (cross_check(name, &c, err, errlen) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	conf_free(&c);
	memset(out, 0, sizeof *out);
	return -1;
}

/* Read path (NULL = the embedded default) and parse it with the system host name as the
 * default hostname (for the embedded default, "localhost" when the system name is not a
 * valid domain name); see conf.h. */
int conf_load(const char *path, struct conf *out, char *err, size_t errlen)
{
	char host[256];
	char *buf = NULL, *nb;
	size_t len = 0, cap = 0, n;
	FILE *fp;
	int rc, e;

	memset(host, 0, sizeof host);
	if (gethostname(host, sizeof host - 1) != 0)
		host[0] = '\0';
	if (path == NULL) {
		/* The embedded default must serve at once, even on a host whose name is not a
		 * valid domain name (a file gets an error telling the operator to set it). */
		size_t hl = strlen(host);

		if (hl > 1 && host[hl - 1] == '.')
			hl--;
		if (!domain_valid(host, hl))
			snprintf(host, sizeof host, "localhost");
		rc = conf_parse(EMBEDDED_NAME, conf_default_text, strlen(conf_default_text), host,
		    out, err, errlen);
		if (rc == 0)
			out->embedded = 1;
		return rc;
	}

	memset(out, 0, sizeof *out);
	fp = fopen(path, "r");
	if (fp == NULL) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= CONF_FILE_MAX) {
				snprintf(err, errlen, "%s: cannot read: larger than %u bytes", path,
				    CONF_FILE_MAX);
				goto fail;
			}
			cap = cap ? cap * 2 : 8192;
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
				e = errno;
				snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e ? e : EIO));
				goto fail;
			}
			break;
		}
	}
	fclose(fp);
	rc = conf_parse(path, buf ? buf : "", len, host, out, err, errlen);
	free(buf);
	return rc;
fail:
	fclose(fp);
	free(buf);
	return -1;
}

int conf_relay_client(const struct conf *c, const struct netaddr *a)
{
	for (size_t i = 0; i < c->nrelay_networks; i++)
		if (cidr_match(&c->relay_networks[i], a))
			return 1;
	return 0;
}
