/*
 * admit — may a new connection be served? The one decision behind max_connections,
 * max_connections_per_ip and max_session_memory.
 *
 * PURE: the counts are the server's, passed in. The server asks at accept time (the
 * session is already built, so its memory is known) and turns a refusal into the greeting
 * "421 4.7.0 <hostname> <reply>" (SPEC: over either connection limit, 421 4.7.0), a log
 * line with the reason word and a metric.
 */
#ifndef IMSD_ADMIT_H
#define IMSD_ADMIT_H

#include <stddef.h>

#include "conf/conf.h"

struct admit_counts {
	unsigned sessions;	/* sessions open on the whole server, this one included */
	unsigned from_client;	/* sessions open from the client's address, before this one */
	size_t mem_used;	/* bytes the other sessions hold */
	size_t mem_new;		/* bytes this session holds */
};

enum admit_refusal {
	ADMIT_OK = 0,
	ADMIT_CONNECTION_LIMIT,		/* max_connections */
	ADMIT_CLIENT_LIMIT,		/* max_connections_per_ip */
	ADMIT_MEMORY_LIMIT,		/* max_session_memory */
};

struct admit_verdict {
	enum admit_refusal refusal;	/* ADMIT_OK: serve it */
	const char *reply;		/* the greeting's text after "421 4.7.0 <hostname> " */
	const char *reason;		/* a word for the log: connection-limit, ... */
};

/* Judge a new connection; the limits are checked in the order above. Returns v->refusal. */
enum admit_refusal admit_decide(const struct conf *c, const struct admit_counts *n,
    struct admit_verdict *v);

#endif
