/*
 * outtls — the outbound TLS policy (see outtls.h): which level for a destination domain.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "policy/outtls.h"

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
