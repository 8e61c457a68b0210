/*
 * outtls — the outbound TLS policy (see outtls.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "policy/outtls.h"

static const char *const names[] = {
	[OUTTLS_OPPORTUNISTIC] = "opportunistic",
	[OUTTLS_VERIFY] = "verify",
	[OUTTLS_DANE] = "dane",
	[OUTTLS_MTASTS] = "mta-sts",
};

int
outtls_level_parse(const char *s, int *level, char *why, size_t wl)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i]) == 0) {
			*level = (int)i;
			return 0;
		}
	snprintf(why, wl, "%.80s%s is not one of opportunistic, dane, mta-sts, verify", s,
		    strlen(s) > 80 ? "..." : "");
	return -1;
}

const char *
outtls_level_name(int level)
{
	if (level < 0 || (size_t)level >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[level];
}

int
outtls_required(int level)
{
	return level == OUTTLS_VERIFY;
}

int
outtls_uses(const struct conf *c, int level)
{
	if (c->smtp_tls == level)
		return 1;
	for (size_t i = 0; i < c->ntls_policy; i++)
		if (c->tls_policy[i].level == level)
			return 1;
	return 0;
}

int
outtls_level(const struct conf *c, const char *domain, const char **source, const char **entry)
{
	const struct conf_tls_policy *best = NULL;
	size_t dl = strlen(domain), bestlen = 0;

	for (size_t i = 0; i < c->ntls_policy; i++) {
		const struct conf_tls_policy *p = &c->tls_policy[i];
		size_t pl = strlen(p->domain);
		if (p->domain[0] == '.') {
			/* ".example.com": a proper subdomain only */
			if (dl > pl && strcasecmp(domain + dl - pl, p->domain) == 0 &&
			    (best == NULL || (best->domain[0] == '.' && pl > bestlen))) {
				best = p;
				bestlen = pl;
			}
		} else if (strcasecmp(domain, p->domain) == 0) {
			best = p;
			break;
		}
	}
	if (entry != NULL)
		*entry = best != NULL ? best->domain : NULL;
	if (best != NULL) {
		if (source != NULL)
			*source = "tls_policy";
		return best->level;
	}
	if (source != NULL)
		*source = "smtp_tls";
	return c->smtp_tls;
}
