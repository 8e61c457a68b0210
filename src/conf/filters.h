/*
 * conf/filters — the values of the filter keys: milters, submission_milters,
 * policy_services and the default actions (part of conf; pure, no I/O).
 *
 * A list item is an endpoint, or Postfix's per-service form (postconf(5), Postfix 3.0) with
 * settings that override the global keys for that one service:
 *
 *   milters = inet:127.0.0.1:11332, { unix:/run/opendkim/opendkim.sock, default_action=accept,
 *             connect_timeout=5s, command_timeout=10s, content_timeout=1m }
 *   policy_services = { inet:127.0.0.1:10023, timeout=10s, default_action=accept,
 *             stage=rcpt, cache_ttl=0s, policy_context=greylist }
 *
 * Endpoints: inet:HOST:PORT (HOST an IPv4 address, [IPv6] or a host name resolved when the
 * configuration is loaded) and unix:PATH (at most 107 bytes, the size of sun_path).
 * Settings are NAME=VALUE without blanks around '='; an unknown name, a repeated one or a
 * bad value is an error naming it. stage may be given more than once (connect, helo, mail,
 * rcpt, data, eom); a policy service without a stage is asked at rcpt.
 *
 * Parse functions return 0, or -1 with why (no key name or line: conf.c adds them) and
 * nothing allocated; the arrays they fill are owned by the struct conf.
 */
#ifndef IMSD_CONF_FILTERS_H
#define IMSD_CONF_FILTERS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* What is done when a filter cannot be reached, times out or speaks garbage. */
enum filter_action {
	FILTER_TEMPFAIL,	/* 451 4.7.1 / 4.3.5: nothing is let through unexamined */
	FILTER_ACCEPT,		/* go on as if the filter had said nothing */
	FILTER_REJECT		/* 550 5.7.1 */
};
#define FILTER_ACTION_UNSET	(-1)	/* a per-service default_action not given */

enum conf_ep_kind { CONF_EP_INET, CONF_EP_UNIX };

#define CONF_UNIX_PATH_MAX	107

struct conf_endpoint {
	int kind;		/* enum conf_ep_kind */
	char *host;		/* inet: an address literal (brackets removed) or a host name */
	uint16_t port;
	char *path;		/* unix */
};

struct conf_milter {
	char *name;		/* the endpoint as written: "inet:127.0.0.1:11332" */
	struct conf_endpoint ep;
	unsigned connect_timeout, command_timeout, content_timeout;	/* 0 = the global key */
	int default_action;	/* enum filter_action, or FILTER_ACTION_UNSET */
};

/* Policy stages (bits of conf_policy.stages). */
#define POLICY_AT_CONNECT	0x01u
#define POLICY_AT_HELO		0x02u
#define POLICY_AT_MAIL		0x04u
#define POLICY_AT_RCPT		0x08u
#define POLICY_AT_DATA		0x10u
#define POLICY_AT_EOM		0x20u

struct conf_policy {
	char *name;
	struct conf_endpoint ep;
	unsigned timeout;	/* 0 = policy_timeout */
	int default_action;	/* enum filter_action, or FILTER_ACTION_UNSET */
	unsigned stages;	/* POLICY_AT_* (POLICY_AT_RCPT when none was given) */
	int cache_ttl_set;
	unsigned cache_ttl;	/* seconds, when cache_ttl_set; else policy_cache_ttl */
	char *context;		/* policy_context=, sent as the attribute; NULL = none */
};

int conf_filter_action_parse(const char *v, int *out, char *why, size_t wl);
const char *conf_filter_action_name(int a);

int conf_milters_parse(const char *v, struct conf_milter **arr, size_t *n, char *why, size_t wl);
void conf_milters_print(const struct conf_milter *arr, size_t n, FILE *fp);
void conf_milters_free(struct conf_milter *arr, size_t n);

int conf_policies_parse(const char *v, struct conf_policy **arr, size_t *n, char *why,
    size_t wl);
void conf_policies_print(const struct conf_policy *arr, size_t n, FILE *fp);
void conf_policies_free(struct conf_policy *arr, size_t n);

/* The name of one stage bit ("rcpt"), for logs and the protocol_state attribute's callers. */
const char *conf_policy_stage_name(unsigned bit);

#endif
