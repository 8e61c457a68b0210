/*
 * admit — connection admission (see admit.h).
 */
#include "policy/admit.h"

enum admit_refusal
admit_decide(const struct conf *c, const struct admit_counts *n, struct admit_verdict *v)
{
	v->refusal = ADMIT_OK;
	v->reply = NULL;
	v->reason = NULL;
	if (n->sessions > c->max_connections) {
		v->refusal = ADMIT_CONNECTION_LIMIT;
		v->reply = "Too many connections; try again later";
		v->reason = "connection-limit";
	} else if (n->from_client >= c->max_connections_per_ip) {
		v->refusal = ADMIT_CLIENT_LIMIT;
		v->reply = "Too many connections from your address; try again later";
		v->reason = "client-connection-limit";
	} else if (n->mem_used + n->mem_new > c->max_session_memory) {
		v->refusal = ADMIT_MEMORY_LIMIT;
		v->reply = "Too much memory in use by other sessions; try again later";
		v->reason = "session-memory-limit";
	}
	return v->refusal;
}
