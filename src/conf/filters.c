/*
 * conf/filters — milters and policy services in the configuration (contract in filters.h).
 */
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/conf_int.h"
#include "conf/filters.h"
#include "util/addr.h"
#include "util/str.h"

#define ITEM_MAX	1024	/* one item or group as written */
#define FILTERS_MAX	32	/* milters, or policy services, in one list */
#define TIMEOUT_MAX	3600	/* seconds: no filter answer is worth waiting longer */
#define CACHE_TTL_MAX	86400
#define CONTEXT_MAX	256

static const char *
q(const char *s, char *buf, size_t len)
{
	return str_quote(s, 80, buf, len);
}

static int
is_sep(char ch)
{
	return ch == ',' || ch == ' ' || ch == '\t';
}

static char *
dup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

/*
 * The next item of a list: a bare word, or "{ ... }" (grouped set, the inner text in buf).
 * 1 an item, 0 none left, -1 error.
 */
static int
next_entry(const char **p, char *buf, int *grouped, char *why, size_t wl)
{
	const char *s = *p, *e;
	size_t n;

	while (*s && is_sep(*s))
		s++;
	if (*s == '\0')
		return 0;
	*grouped = *s == '{';
	if (*grouped) {
		s++;
		e = strchr(s, '}');
		if (e == NULL) {
			snprintf(why, wl, "'{' without its '}'");
			return -1;
		}
		if (memchr(s, '{', (size_t)(e - s)) != NULL) {
			snprintf(why, wl, "'{' inside '{ ... }'");
			return -1;
		}
		n = (size_t)(e - s);
		*p = e + 1;
	} else {
		for (e = s; *e && !is_sep(*e) && *e != '{' && *e != '}'; e++)
			;
		if (*e == '}') {
			snprintf(why, wl, "'}' without its '{'");
			return -1;
		}
		n = (size_t)(e - s);
		*p = e;
	}
	if (n >= ITEM_MAX) {
		snprintf(why, wl, "an item longer than %d bytes", ITEM_MAX - 1);
		return -1;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	return 1;
}

/* The next word of a group's inner text (separated by commas and/or blanks). */
static int
next_word(char **p, char **word)
{
	char *s = *p;

	while (*s && is_sep(*s))
		s++;
	if (*s == '\0')
		return 0;
	*word = s;
	while (*s && !is_sep(*s))
		s++;
	if (*s)
		*s++ = '\0';
	*p = s;
	return 1;
}

/* A host name: letters, digits, '-' and dots; labels of 1..63; at most 253 in all. */
static int
hostname_ok(const char *s)
{
	size_t n = strlen(s), lab = 0;

	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (lab == 0 || s[i - 1] == '-')
				return 0;
			lab = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-'))
			return 0;
		if (c == '-' && lab == 0)
			return 0;
		if (++lab > 63)
			return 0;
	}
	return s[n - 1] != '-';
}

static void
endpoint_free(struct conf_endpoint *ep)
{
	free(ep->host);
	free(ep->path);
	memset(ep, 0, sizeof *ep);
}

/* inet:HOST:PORT, inet:[V6]:PORT or unix:PATH. */
static int
endpoint_parse(const char *s, struct conf_endpoint *ep, char *why, size_t wl)
{
	char qb[400], host[300];
	const char *hp, *colon;
	struct netaddr a;
	unsigned long port = 0;

	memset(ep, 0, sizeof *ep);
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] == '\0') {
			snprintf(why, wl, "%s: unix: needs a socket path", q(s, qb, sizeof qb));
			return -1;
		}
		if (strlen(s + 5) > CONF_UNIX_PATH_MAX) {
			snprintf(why, wl, "%s: the socket path is longer than %d bytes",
			    q(s, qb, sizeof qb), CONF_UNIX_PATH_MAX);
			return -1;
		}
		ep->kind = CONF_EP_UNIX;
		if ((ep->path = dup(s + 5)) == NULL)
			goto nomem;
		return 0;
	}
	if (strncmp(s, "inet:", 5) != 0) {
		snprintf(why, wl, "%s is not inet:HOST:PORT or unix:PATH", q(s, qb, sizeof qb));
		return -1;
	}
	hp = s + 5;
	if (*hp == '[') {
		const char *rb = strchr(hp, ']');

		if (rb == NULL || rb[1] != ':' || (size_t)(rb - hp - 1) >= sizeof host) {
			snprintf(why, wl, "%s: an IPv6 address is written inet:[ADDR]:PORT",
			    q(s, qb, sizeof qb));
			return -1;
		}
		memcpy(host, hp + 1, (size_t)(rb - hp - 1));
		host[rb - hp - 1] = '\0';
		colon = rb + 1;
		if (netaddr_parse(host, &a) != 0 || strchr(host, ':') == NULL) {
			snprintf(why, wl, "%s: %s is not an IPv6 address", q(s, qb, sizeof qb),
			    q(host, qb + 200, sizeof qb - 200));
			return -1;
		}
	} else {
		colon = strrchr(hp, ':');
		if (colon == NULL || (size_t)(colon - hp) >= sizeof host || colon == hp) {
			snprintf(why, wl, "%s is not inet:HOST:PORT", q(s, qb, sizeof qb));
			return -1;
		}
		memcpy(host, hp, (size_t)(colon - hp));
		host[colon - hp] = '\0';
		if (strchr(host, ':') != NULL) {
			snprintf(why, wl, "%s: an IPv6 address is written inet:[ADDR]:PORT",
			    q(s, qb, sizeof qb));
			return -1;
		}
		if (netaddr_parse(host, &a) != 0 && !hostname_ok(host)) {
			snprintf(why, wl, "%s: %s is neither an IPv4 address nor a host name",
			    q(s, qb, sizeof qb), q(host, qb + 200, sizeof qb - 200));
			return -1;
		}
	}
	for (const char *d = colon + 1; *d; d++) {
		if (*d < '0' || *d > '9' || port > 65535) {
			port = 0;
			break;
		}
		port = port * 10 + (unsigned long)(*d - '0');
	}
	if (port < 1 || port > 65535) {
		snprintf(why, wl, "%s: the port must be 1 to 65535", q(s, qb, sizeof qb));
		return -1;
	}
	ep->kind = CONF_EP_INET;
	ep->port = (uint16_t)port;
	if ((ep->host = dup(host)) == NULL)
		goto nomem;
	return 0;
nomem:
	snprintf(why, wl, "out of memory");
	endpoint_free(ep);
	return -1;
}

static int
endpoint_equal(const struct conf_endpoint *a, const struct conf_endpoint *b)
{
	if (a->kind != b->kind)
		return 0;
	if (a->kind == CONF_EP_UNIX)
		return strcmp(a->path, b->path) == 0;
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

int
conf_filter_action_parse(const char *v, int *out, char *why, size_t wl)
{
	char qb[400];

	if (strcmp(v, "tempfail") == 0)
		*out = FILTER_TEMPFAIL;
	else if (strcmp(v, "accept") == 0 || strcmp(v, "dunno") == 0)
		*out = FILTER_ACCEPT;	/* dunno: Postfix's word for a policy service */
	else if (strcmp(v, "reject") == 0)
		*out = FILTER_REJECT;
	else {
		snprintf(why, wl, "%s is not tempfail, accept or reject", q(v, qb, sizeof qb));
		return -1;
	}
	return 0;
}

const char *
conf_filter_action_name(int a)
{
	switch (a) {
	case FILTER_ACCEPT:	return "accept";
	case FILTER_REJECT:	return "reject";
	default:		return "tempfail";
	}
}

/* A duration setting within bounds (lo..hi seconds). */
static int
dur_setting(const char *ep, const char *name, const char *v, unsigned lo, unsigned hi,
    unsigned *out, char *why, size_t wl)
{
	char qb[400];

	if (conf_parse_duration(v, out) != 0 || *out < lo || *out > hi) {
		snprintf(why, wl, "{ %s, ... }: %s=%s is not a duration from %us to %us (with a "
		    "unit: s, m, h or d)", ep, name, q(v, qb, sizeof qb), lo, hi);
		return -1;
	}
	return 0;
}

/* Split "name=value" in place; -1 with why when there is no '=' or nothing around it. */
static int
setting_split(char *w, char **name, char **value, const char *ep, char *why, size_t wl)
{
	char qb[400], *eq = strchr(w, '=');

	if (eq == NULL || eq == w) {
		snprintf(why, wl, "{ %s, ... }: %s is not NAME=VALUE (no blanks around '=')", ep,
		    q(w, qb, sizeof qb));
		return -1;
	}
	*eq = '\0';
	*name = w;
	*value = eq + 1;
	return 0;
}

/* One milter: an endpoint, or a group with settings. */
static int
milter_parse(char *item, int grouped, struct conf_milter *m, char *why, size_t wl)
{
	char *p = item, *w, *name, *value, qb[400];
	unsigned seen = 0;

	memset(m, 0, sizeof *m);
	m->default_action = FILTER_ACTION_UNSET;
	if (!next_word(&p, &w)) {
		snprintf(why, wl, "'{ }' without a milter endpoint");
		return -1;
	}
	if (endpoint_parse(w, &m->ep, why, wl) != 0)
		return -1;
	if ((m->name = dup(w)) == NULL) {
		snprintf(why, wl, "out of memory");
		goto fail;
	}
	while (grouped && next_word(&p, &w)) {
		static const char *const names[] = { "connect_timeout", "command_timeout",
		    "content_timeout", "default_action" };
		unsigned k;

		if (setting_split(w, &name, &value, m->name, why, wl) != 0)
			goto fail;
		for (k = 0; k < 4 && strcmp(name, names[k]) != 0; k++)
			;
		if (k == 4) {
			snprintf(why, wl, "{ %s, ... }: %s is not a milter setting (connect_timeout, "
			    "command_timeout, content_timeout, default_action)", m->name,
			    q(name, qb, sizeof qb));
			goto fail;
		}
		if (seen & (1u << k)) {
			snprintf(why, wl, "{ %s, ... }: %s is given twice", m->name, name);
			goto fail;
		}
		seen |= 1u << k;
		if (k == 3) {
			char w2[300];

			if (conf_filter_action_parse(value, &m->default_action, w2, sizeof w2) != 0) {
				snprintf(why, wl, "{ %s, ... }: default_action: %s", m->name, w2);
				goto fail;
			}
			continue;
		}
		if (dur_setting(m->name, name, value, 1, TIMEOUT_MAX, k == 0 ? &m->connect_timeout :
		    k == 1 ? &m->command_timeout : &m->content_timeout, why, wl) != 0)
			goto fail;
	}
	return 0;
fail:
	endpoint_free(&m->ep);
	free(m->name);
	memset(m, 0, sizeof *m);
	return -1;
}

void
conf_milters_free(struct conf_milter *arr, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		endpoint_free(&arr[i].ep);
		free(arr[i].name);
	}
	free(arr);
}

int
conf_milters_parse(const char *v, struct conf_milter **arr, size_t *n, char *why, size_t wl)
{
	struct conf_milter *out = NULL, m;
	size_t cnt = 0;
	char item[ITEM_MAX];
	int grouped, r;

	while ((r = next_entry(&v, item, &grouped, why, wl)) == 1) {
		struct conf_milter *na;

		if (milter_parse(item, grouped, &m, why, wl) != 0)
			goto fail;
		for (size_t i = 0; i < cnt; i++)
			if (endpoint_equal(&out[i].ep, &m.ep)) {
				snprintf(why, wl, "%s is listed twice", m.name);
				endpoint_free(&m.ep);
				free(m.name);
				goto fail;
			}
		if (cnt == FILTERS_MAX) {
			snprintf(why, wl, "more than %d milters", FILTERS_MAX);
			endpoint_free(&m.ep);
			free(m.name);
			goto fail;
		}
		if ((na = realloc(out, (cnt + 1) * sizeof *out)) == NULL) {
			snprintf(why, wl, "out of memory");
			endpoint_free(&m.ep);
			free(m.name);
			goto fail;
		}
		out = na;
		out[cnt++] = m;
	}
	if (r < 0)
		goto fail;
	conf_milters_free(*arr, *n);
	*arr = out;
	*n = cnt;
	return 0;
fail:
	conf_milters_free(out, cnt);
	return -1;
}

static void
put_dur(FILE *fp, const char *name, unsigned s)
{
	if (s % 3600 == 0)
		fprintf(fp, ", %s=%uh", name, s / 3600);
	else if (s % 60 == 0)
		fprintf(fp, ", %s=%um", name, s / 60);
	else
		fprintf(fp, ", %s=%us", name, s);
}

void
conf_milters_print(const struct conf_milter *arr, size_t n, FILE *fp)
{
	for (size_t i = 0; i < n; i++) {
		const struct conf_milter *m = &arr[i];
		int grouped = m->connect_timeout || m->command_timeout || m->content_timeout ||
		    m->default_action != FILTER_ACTION_UNSET;

		fprintf(fp, "%s%s%s", i ? ", " : " ", grouped ? "{ " : "", m->name);
		if (m->connect_timeout)
			put_dur(fp, "connect_timeout", m->connect_timeout);
		if (m->command_timeout)
			put_dur(fp, "command_timeout", m->command_timeout);
		if (m->content_timeout)
			put_dur(fp, "content_timeout", m->content_timeout);
		if (m->default_action != FILTER_ACTION_UNSET)
			fprintf(fp, ", default_action=%s", conf_filter_action_name(m->default_action));
		if (grouped)
			fputs(" }", fp);
	}
}

static const struct {
	const char *name;
	unsigned bit;
} stages[] = {
	{ "connect", POLICY_AT_CONNECT }, { "helo", POLICY_AT_HELO },
	{ "mail", POLICY_AT_MAIL }, { "rcpt", POLICY_AT_RCPT }, { "data", POLICY_AT_DATA },
	{ "eom", POLICY_AT_EOM },
};
#define NSTAGES (sizeof stages / sizeof stages[0])

const char *
conf_policy_stage_name(unsigned bit)
{
	for (size_t i = 0; i < NSTAGES; i++)
		if (stages[i].bit == bit)
			return stages[i].name;
	return "?";
}

static void
policy_clear(struct conf_policy *p)
{
	endpoint_free(&p->ep);
	free(p->name);
	free(p->context);
	memset(p, 0, sizeof *p);
}

/* The settings of one policy service's group. */
static int
policy_setting(struct conf_policy *p, char *w, unsigned *seen, char *why, size_t wl)
{
	static const char *const names[] = { "timeout", "default_action", "stage", "cache_ttl",
	    "policy_context" };
	char *name, *value, qb[400];
	unsigned k;

	if (setting_split(w, &name, &value, p->name, why, wl) != 0)
		return -1;
	for (k = 0; k < 5 && strcmp(name, names[k]) != 0; k++)
		;
	if (k == 5) {
		snprintf(why, wl, "{ %s, ... }: %s is not a policy service setting (timeout, "
		    "default_action, stage, cache_ttl, policy_context)", p->name,
		    q(name, qb, sizeof qb));
		return -1;
	}
	if (k != 2 && (*seen & (1u << k))) {
		snprintf(why, wl, "{ %s, ... }: %s is given twice", p->name, name);
		return -1;
	}
	*seen |= 1u << k;
	switch (k) {
	case 0:
		return dur_setting(p->name, name, value, 1, TIMEOUT_MAX, &p->timeout, why, wl);
	case 1: {
		char w2[300];

		if (conf_filter_action_parse(value, &p->default_action, w2, sizeof w2) == 0)
			return 0;
		snprintf(why, wl, "{ %s, ... }: default_action: %s", p->name, w2);
		return -1;
	}
	case 2:
		for (size_t i = 0; i < NSTAGES; i++)
			if (strcmp(value, stages[i].name) == 0) {
				if (p->stages & stages[i].bit) {
					snprintf(why, wl, "{ %s, ... }: stage=%s is given twice",
					    p->name, value);
					return -1;
				}
				p->stages |= stages[i].bit;
				return 0;
			}
		snprintf(why, wl, "{ %s, ... }: stage=%s is not connect, helo, mail, rcpt, data or "
		    "eom", p->name, q(value, qb, sizeof qb));
		return -1;
	case 3:
		p->cache_ttl_set = 1;
		return dur_setting(p->name, name, value, 0, CACHE_TTL_MAX, &p->cache_ttl, why, wl);
	default:
		if (*value == '\0' || strlen(value) > CONTEXT_MAX) {
			snprintf(why, wl, "{ %s, ... }: policy_context must be 1 to %d bytes", p->name,
			    CONTEXT_MAX);
			return -1;
		}
		if ((p->context = dup(value)) == NULL) {
			snprintf(why, wl, "out of memory");
			return -1;
		}
		return 0;
	}
}

void
conf_policies_free(struct conf_policy *arr, size_t n)
{
	for (size_t i = 0; i < n; i++)
		policy_clear(&arr[i]);
	free(arr);
}

int
conf_policies_parse(const char *v, struct conf_policy **arr, size_t *n, char *why, size_t wl)
{
	struct conf_policy *out = NULL, p;
	size_t cnt = 0;
	char item[ITEM_MAX], *ip, *w;
	int grouped, r;

	while ((r = next_entry(&v, item, &grouped, why, wl)) == 1) {
		struct conf_policy *na;
		unsigned seen = 0;

		memset(&p, 0, sizeof p);
		p.default_action = FILTER_ACTION_UNSET;
		ip = item;
		if (!next_word(&ip, &w)) {
			snprintf(why, wl, "'{ }' without a policy service endpoint");
			goto fail;
		}
		if (endpoint_parse(w, &p.ep, why, wl) != 0)
			goto fail;
		if ((p.name = dup(w)) == NULL) {
			snprintf(why, wl, "out of memory");
			goto fail_p;
		}
		while (grouped && next_word(&ip, &w))
			if (policy_setting(&p, w, &seen, why, wl) != 0)
				goto fail_p;
		if (p.stages == 0)
			p.stages = POLICY_AT_RCPT;
		for (size_t i = 0; i < cnt; i++)
			if (endpoint_equal(&out[i].ep, &p.ep)) {
				snprintf(why, wl, "%s is listed twice (give one entry several stage= "
				    "settings)", p.name);
				goto fail_p;
			}
		if (cnt == FILTERS_MAX) {
			snprintf(why, wl, "more than %d policy services", FILTERS_MAX);
			goto fail_p;
		}
		if ((na = realloc(out, (cnt + 1) * sizeof *out)) == NULL) {
			snprintf(why, wl, "out of memory");
			goto fail_p;
		}
		out = na;
		out[cnt++] = p;
	}
	if (r < 0)
		goto fail;
	conf_policies_free(*arr, *n);
	*arr = out;
	*n = cnt;
	return 0;
fail_p:
	policy_clear(&p);
fail:
	conf_policies_free(out, cnt);
	return -1;
}

void
conf_policies_print(const struct conf_policy *arr, size_t n, FILE *fp)
{
	for (size_t i = 0; i < n; i++) {
		const struct conf_policy *p = &arr[i];
		int grouped = p->timeout || p->default_action != FILTER_ACTION_UNSET ||
		    p->stages != POLICY_AT_RCPT || p->cache_ttl_set || p->context;

		fprintf(fp, "%s%s%s", i ? ", " : " ", grouped ? "{ " : "", p->name);
		if (p->timeout)
			put_dur(fp, "timeout", p->timeout);
		if (p->default_action != FILTER_ACTION_UNSET)
			fprintf(fp, ", default_action=%s", conf_filter_action_name(p->default_action));
		if (p->stages != POLICY_AT_RCPT)
			for (size_t k = 0; k < NSTAGES; k++)
				if (p->stages & stages[k].bit)
					fprintf(fp, ", stage=%s", stages[k].name);
		if (p->cache_ttl_set) {
			if (p->cache_ttl == 0)
				fputs(", cache_ttl=0s", fp);
			else
				put_dur(fp, "cache_ttl", p->cache_ttl);
		}
		if (p->context)
			fprintf(fp, ", policy_context=%s", p->context);
		if (grouped)
			fputs(" }", fp);
	}
}

/* ---- the value types of the schema's rows (conf_int.h) ---- */

static int
parse_milters(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	return conf_milters_parse(v, FIELD(c, r, struct conf_milter *), COUNT(c, r), why, wl);
}

static void
print_milters(const struct conf *c, const struct row *r, FILE *fp)
{
	conf_milters_print(*CFIELD(c, r, struct conf_milter *), *CCOUNT(c, r), fp);
}

static int
parse_policies(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	return conf_policies_parse(v, FIELD(c, r, struct conf_policy *), COUNT(c, r), why, wl);
}

static void
print_policies(const struct conf *c, const struct row *r, FILE *fp)
{
	conf_policies_print(*CFIELD(c, r, struct conf_policy *), *CCOUNT(c, r), fp);
}

static int
active_list(const struct conf *c, const struct row *r)
{
	return *CCOUNT(c, r) > 0;
}

static int
parse_faction(struct conf *c, const struct row *r, const char *v, char *why, size_t wl)
{
	return conf_filter_action_parse(v, FIELD(c, r, int), why, wl);
}

static void
print_faction(const struct conf *c, const struct row *r, FILE *fp)
{
	fprintf(fp, " %s", conf_filter_action_name(*CFIELD(c, r, int)));
}

static int
active_always(const struct conf *c, const struct row *r)
{
	return 1;
}

const struct conf_type conf_t_milters = { parse_milters, print_milters, active_list };
const struct conf_type conf_t_policies = { parse_policies, print_policies, active_list };
const struct conf_type conf_t_faction = { parse_faction, print_faction, active_always };

const struct conf_milter *
conf_listener_milters(const struct conf *c, int submission, size_t *n)
{
	if (submission && c->set[CK_SUBMISSION_MILTERS]) {
		*n = c->nsubmission_milters;
		return c->submission_milters;
	}
	*n = c->nmilters;
	return c->milters;
}
