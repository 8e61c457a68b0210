/*
 * conf_int — what the configuration parser (conf.c: the schema, the text, the checks) and
 * its value types (conf_types.c: per-type parse, print and "active" functions) share.
 * Private to src/conf/.
 */
#ifndef IMSD_CONF_INT_H
#define IMSD_CONF_INT_H

#include <stddef.h>
#include <stdio.h>

#include "conf/conf.h"

#define CONF_LINE_MAX	4096		/* longest line, without its line ending */
#define QBUF 400
#define DNS_PORT	53
#define RELAY_PORT	25

struct row;
typedef int (*parse_fn)(struct conf *c, const struct row *r, const char *v, char *why, size_t wl);
typedef void (*print_fn)(const struct conf *c, const struct row *r, FILE *fp);
typedef int (*active_fn)(const struct conf *c, const struct row *r);

/* A value type: how a value is parsed, printed back and judged. */
struct conf_type {
	parse_fn parse;		/* parse v into the field(s); frees what it replaces */
	print_fn print;		/* print the value in configuration syntax, after "key =" */
	active_fn active;	/* does the value ask for something (non-empty, true)? */
};

struct row {
	const char *name;
	const struct conf_type *type;
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

/* The value types, for the schema's rows (conf_types.c). */
extern const struct conf_type conf_t_hostname;
extern const struct conf_type conf_t_path;
extern const struct conf_type conf_t_optpath;
extern const struct conf_type conf_t_listen;
extern const struct conf_type conf_t_dns;
extern const struct conf_type conf_t_domains;
extern const struct conf_type conf_t_cidrs;
extern const struct conf_type conf_t_bool;
extern const struct conf_type conf_t_size;
extern const struct conf_type conf_t_uint;
extern const struct conf_type conf_t_port;
extern const struct conf_type conf_t_dur;
extern const struct conf_type conf_t_loglevel;
extern const struct conf_type conf_t_relayhost;
extern const struct conf_type conf_t_user;
extern const struct conf_type conf_t_dkimsign;
extern const struct conf_type conf_t_dnsl;
extern const struct conf_type conf_t_tlslevel;
extern const struct conf_type conf_t_tlspol;
extern const struct conf_type conf_t_transport;
extern const struct conf_type conf_t_authbackend;
extern const struct conf_type conf_t_rcptcheck;
/* conf/filters.c */
extern const struct conf_type conf_t_milters;	/* milters, submission_milters */
extern const struct conf_type conf_t_policies;	/* policy_services */
extern const struct conf_type conf_t_faction;	/* tempfail | accept | reject */

/* Helpers the parser shares with the types. */
const char *conf_quote(const char *s, char *buf, size_t len);
char *conf_xstrdup(const char *s);
int conf_domain_valid(const char *s, size_t len);
const char *conf_fmt_duration(unsigned s, char *buf, size_t len);
void conf_free_dkim(struct conf_dkim *a, size_t n);
void conf_free_dnsl(struct conf_dnsl *a, size_t n);
void conf_free_tlspol(struct conf_tls_policy *a, size_t n);

#endif
