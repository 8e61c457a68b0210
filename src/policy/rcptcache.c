/*
 * rcptcache — recent verdicts of the mailbox server on recipients (contract in rcptcache.h).
 */
#include "policy/rcptcache.h"

#include <stdio.h>
#include <string.h>

void
rcptcache_init(struct rcptcache *c)
{
	memset(c, 0, sizeof(*c));
}

static struct rcptc_entry *
find(const struct rcptcache *c, const char *addr)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->e[i].addr, addr) == 0)
			return (struct rcptc_entry *)&c->e[i];
	return NULL;
}

int
rcptcache_get(const struct rcptcache *c, const char *addr_lc, time_t now, const char **reply)
{
	const struct rcptc_entry *e = find(c, addr_lc);

	*reply = NULL;
	if (e == NULL || e->expires <= now)
		return RCPTC_UNKNOWN_ENTRY;
	*reply = e->reply;
	return e->verdict;
}

void
rcptcache_put(struct rcptcache *c, const char *addr_lc, int verdict, const char *reply,
    time_t now)
{
	struct rcptc_entry *e;

	if ((verdict != RCPTC_EXISTS && verdict != RCPTC_NO_SUCH_USER) ||
	    strlen(addr_lc) >= RCPTC_ADDR_MAX)
		return;
	if ((e = find(c, addr_lc)) == NULL) {
		if (c->n < RCPTC_SLOTS)
			e = &c->e[c->n++];
		else {
			/* full: the entry that expires first makes room */
			e = &c->e[0];
			for (size_t i = 1; i < c->n; i++)
				if (c->e[i].expires < e->expires)
					e = &c->e[i];
		}
		memcpy(e->addr, addr_lc, strlen(addr_lc) + 1);
	}
	e->verdict = verdict;
	e->expires = now + (verdict == RCPTC_EXISTS ? RCPTC_POS_TTL : RCPTC_NEG_TTL);
	snprintf(e->reply, sizeof(e->reply), "%s", reply ? reply : "");
}
