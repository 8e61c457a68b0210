/*
 * tlslevel — the outbound TLS level vocabulary (see tlslevel.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "conf/tlslevel.h"

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
