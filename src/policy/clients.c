/*
 * clients — per-client connection counts and AUTH failure buckets; see clients.h.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/clients.h"

#define BUCKETS 4096

struct client {
	struct client *next;
	struct netaddr key;
	unsigned conns;
	unsigned fails;		/* failures in the bucket */
	time_t leak_at;		/* when the bucket last leaked (or filled) */
	unsigned rcpt_refused;	/* refused recipients in their bucket */
	time_t rcpt_leak_at;
};

struct clients {
	struct client *b[BUCKETS];
	size_t n;
};

struct clients *
clients_new(void)
{
	return calloc(1, sizeof(struct clients));
}

void
clients_free(struct clients *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < BUCKETS; i++)
		while (t->b[i] != NULL) {
			struct client *c = t->b[i];
			t->b[i] = c->next;
			free(c);
		}
	free(t);
}

void
clients_key(const struct netaddr *a, struct netaddr *key)
{
	memset(key, 0, sizeof(*key));
	key->family = a->family;
	if (a->family == AF_INET)
		memcpy(key->a, a->a, 4);
	else
		memcpy(key->a, a->a, 8);	/* the /64 */
}

static unsigned
hash(const struct netaddr *k)
{
	unsigned h = 2166136261u;
	int n = k->family == AF_INET ? 4 : 8;

	for (int i = 0; i < n; i++)
		h = (h ^ k->a[i]) * 16777619u;
	return h % BUCKETS;
}

static struct client **
find(struct clients *t, const struct netaddr *a, struct netaddr *key)
{
	struct client **pp;

	clients_key(a, key);
	pp = &t->b[hash(key)];
	while (*pp != NULL && !netaddr_equal(&(*pp)->key, key))
		pp = &(*pp)->next;
	return pp;
}

static struct client *
get(struct clients *t, const struct netaddr *a, int create)
{
	struct netaddr key;
	struct client **pp = find(t, a, &key), *c;

	if (*pp != NULL || !create)
		return *pp;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->key = key;
	*pp = c;
	t->n++;
	return c;
}

static void
drop_if_idle(struct clients *t, const struct netaddr *a)
{
	struct netaddr key;
	struct client **pp = find(t, a, &key), *c = *pp;

	if (c != NULL && c->conns == 0 && c->fails == 0 && c->rcpt_refused == 0) {
		*pp = c->next;
		free(c);
		t->n--;
	}
}

unsigned
clients_conns(struct clients *t, const struct netaddr *a)
{
	struct client *c = get(t, a, 0);

	return c != NULL ? c->conns : 0;
}

int
clients_conn_add(struct clients *t, const struct netaddr *a, int delta)
{
	struct client *c = get(t, a, delta > 0);

	if (c == NULL)
		return delta > 0 ? -1 : 0;
	if (delta < 0 && c->conns < (unsigned)-delta)
		c->conns = 0;
	else
		c->conns += (unsigned)delta;
	if (c->conns == 0)
		drop_if_idle(t, a);
	return 0;
}

/* Let a bucket forget one entry per period seconds since it last did. */
static void
leak_bucket(unsigned *n, time_t *at, time_t now, time_t period)
{
	if (*n == 0 || now <= *at)
		return;
	time_t gone = (now - *at) / period;
	if (gone <= 0)
		return;
	if ((time_t)*n <= gone) {
		*n = 0;
		*at = now;
	} else {
		*n -= (unsigned)gone;
		*at += gone * period;
	}
}

static void
leak(struct client *c, time_t now)
{
	leak_bucket(&c->fails, &c->leak_at, now, CLIENTS_AUTH_LEAK);
	leak_bucket(&c->rcpt_refused, &c->rcpt_leak_at, now, CLIENTS_RCPT_LEAK);
}

enum clients_rcpt
clients_rcpt_refused(struct clients *t, const struct netaddr *a, time_t now)
{
	struct client *c = get(t, a, 0);

	if (c == NULL) {
		if (t->n >= CLIENTS_MAX || (c = get(t, a, 1)) == NULL)
			return CLIENTS_RCPT_GO;
	}
	leak(c, now);
	if (c->rcpt_refused == 0)
		c->rcpt_leak_at = now;
	if (c->rcpt_refused <= CLIENTS_RCPT_HARD)
		c->rcpt_refused++;
	return c->rcpt_refused > CLIENTS_RCPT_HARD ? CLIENTS_RCPT_CUT :
	    c->rcpt_refused > CLIENTS_RCPT_SOFT ? CLIENTS_RCPT_SLOW : CLIENTS_RCPT_GO;
}

int
clients_auth_allowed(struct clients *t, const struct netaddr *a, time_t now)
{
	struct client *c = get(t, a, 0);

	if (c == NULL)
		return 1;
	leak(c, now);
	return c->fails < CLIENTS_AUTH_BURST;
}

void
clients_auth_failed(struct clients *t, const struct netaddr *a, time_t now)
{
	struct client *c = get(t, a, 0);

	if (c == NULL) {
		if (t->n >= CLIENTS_MAX || (c = get(t, a, 1)) == NULL)
			return;
	}
	leak(c, now);
	if (c->fails == 0)
		c->leak_at = now;
	if (c->fails < CLIENTS_AUTH_BURST * 2)
		c->fails++;
}

void
clients_auth_refund(struct clients *t, const struct netaddr *a)
{
	struct client *c = get(t, a, 0);

	if (c != NULL && c->fails > 0)
		c->fails--;
	if (c != NULL && c->conns == 0 && c->fails == 0)
		drop_if_idle(t, a);	/* keeps it while recipients are remembered */
}

size_t
clients_expire(struct clients *t, time_t now)
{
	size_t dropped = 0;

	for (size_t i = 0; i < BUCKETS; i++) {
		struct client **pp = &t->b[i];
		while (*pp != NULL) {
			struct client *c = *pp;
			leak(c, now);
			if (c->conns == 0 && c->fails == 0 && c->rcpt_refused == 0) {
				*pp = c->next;
				free(c);
				t->n--;
				dropped++;
			} else
				pp = &c->next;
		}
	}
	return dropped;
}

size_t
clients_count(const struct clients *t)
{
	return t->n;
}
