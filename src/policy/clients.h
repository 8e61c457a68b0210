/*
 * clients — what imsd remembers about each client address across its connections:
 * how many sessions it has open (max_connections_per_ip) and how many AUTH failures it
 * has spent recently (a guesser cannot get around the per-session limit of three by
 * opening more sessions).
 *
 * An IPv6 client is counted by its /64: one host is routinely given a whole /64, so
 * counting single IPv6 addresses would let it open 2^64 "clients". IPv4 addresses count
 * one by one.
 *
 * AUTH failures fill a leaky bucket per client: CLIENTS_AUTH_BURST failures are allowed
 * at once, then one more every CLIENTS_AUTH_LEAK seconds. Refused recipients (unknown
 * users, relaying denied: what an address harvester collects, a session at a time) fill
 * another: past CLIENTS_RCPT_SOFT each further one is answered CLIENTS_RCPT_DELAY seconds
 * late, past CLIENTS_RCPT_HARD the client is cut off (421), and it forgets one every
 * CLIENTS_RCPT_LEAK seconds. The table is bounded: past
 * CLIENTS_MAX entries a new client's failures are not remembered (its connections still
 * are counted), which fails open rather than locking out everyone.
 *
 * Pure: memory and the time the caller passes in; no clock, no I/O, no globals.
 */
#ifndef IMSD_CLIENTS_H
#define IMSD_CLIENTS_H

#include <stddef.h>
#include <time.h>

#include "util/addr.h"

#define CLIENTS_AUTH_BURST	10	/* failures allowed at once from one client */
#define CLIENTS_AUTH_LEAK	60	/* seconds for the bucket to forget one failure */
#define CLIENTS_MAX		100000	/* entries remembered at most */
#define CLIENTS_RCPT_SOFT	30	/* refused recipients before each next one waits */
#define CLIENTS_RCPT_HARD	60	/* refused recipients before the client is cut off */
#define CLIENTS_RCPT_LEAK	10	/* seconds for that bucket to forget one */
#define CLIENTS_RCPT_DELAY	2	/* seconds each answer waits past the soft limit */

struct clients;

struct clients *clients_new(void);
void clients_free(struct clients *t);

/* The key an address is counted under: itself, or its /64 for IPv6. */
void clients_key(const struct netaddr *a, struct netaddr *key);

/* Open sessions from a's client. */
unsigned clients_conns(struct clients *t, const struct netaddr *a);
/* A session from a opened (+1) or closed (-1). 0 ok, -1 out of memory (not counted). */
int clients_conn_add(struct clients *t, const struct netaddr *a, int delta);

/* May a try AUTH now? 1 yes, 0 its failure budget is spent. */
int clients_auth_allowed(struct clients *t, const struct netaddr *a, time_t now);
/* a failed an AUTH attempt at now. The server counts an attempt as failed when it starts
 * checking it (so attempts in flight at once cannot overrun the budget) and takes it back
 * with clients_auth_refund when the credentials were good. */
void clients_auth_failed(struct clients *t, const struct netaddr *a, time_t now);
void clients_auth_refund(struct clients *t, const struct netaddr *a);

/* What a refused recipient means for its client: go on, answer it late, or cut it off. */
enum clients_rcpt { CLIENTS_RCPT_GO, CLIENTS_RCPT_SLOW, CLIENTS_RCPT_CUT };
/* A recipient from a was refused at now: count it, and say what its client has earned. */
enum clients_rcpt clients_rcpt_refused(struct clients *t, const struct netaddr *a, time_t now);

/* Forget clients with no session and nothing left in their bucket; returns how many. */
size_t clients_expire(struct clients *t, time_t now);
/* Entries held (for tests and the log). */
size_t clients_count(const struct clients *t);

#endif
