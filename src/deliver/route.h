/*
 * route — where mail for a recipient goes: which delivery agent, and which target.
 *
 * PURE: the configuration and the address in, a route out. The queue manager asks it for
 * every recipient it delivers (and groups recipients by the route's key), the SMTP agent
 * follows the route it is given, and `imsd explain-recipient` prints the same route, so
 * what is explained is what is done.
 *
 * Routes of this build:
 *   maildir  a recipient in local_domains: the Maildir MAIL_DIR/DOMAIN/LOCAL/ (via mailbox,
 *            nexthop "DOMAIN/LOCAL")
 *   smtp     any other: relayhost when set (via host: its MX hosts, or written [host] its
 *            A/AAAA only; relayhost_port), else an address literal itself (via literal) or
 *            the MX hosts of the domain in its A-label form (via mx; smtp_port)
 * A route can also name an LMTP server by unix socket or host and port (via unix, via
 * host): route_of_transport turns a configured transport (conf_transport_parse:
 * mailbox_transport, transport_map entries) into the route of a local recipient. Those
 * keys are not in effect in this build: route_decide does not consult them yet.
 */
#ifndef IMSD_ROUTE_H
#define IMSD_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

#define ROUTE_NEXTHOP_MAX	320	/* a domain/local pair, a host, a socket path */

/* ROUTE_MBOX: a system user's /var/mail/USER (deliver/mbox_agent.h); not route_decide's
 * (it reads no passwd): the queue manager turns a maildir route into it. */
enum route_agent { ROUTE_MAILDIR, ROUTE_SMTP, ROUTE_LMTP, ROUTE_MBOX };

enum route_via {
	VIA_MAILBOX,	/* a mailbox of this host: nexthop "domain/local" */
	VIA_MX,		/* the MX hosts of the domain nexthop (A/AAAA when it has none) */
	VIA_HOST,	/* the host nexthop: its MX hosts, or with no_mx its A/AAAA; port */
	VIA_LITERAL,	/* the address literal nexthop ("[192.0.2.1]"); port */
	VIA_UNIX,	/* the unix socket at the path nexthop */
};

struct route {
	enum route_agent agent;
	enum route_via via;
	char nexthop[ROUTE_NEXTHOP_MAX];
	uint16_t port;			/* VIA_MX, VIA_HOST, VIA_LITERAL */
	int no_mx;			/* VIA_HOST written [host]: no MX lookup */
	char key[ROUTE_NEXTHOP_MAX + 8];	/* recipients with the same key share a job
					 * ("maildir", "relayhost", the domain) */
};

/* The route for a delivery address ("local@domain"; local ones as RCPT folded them). */
void route_decide(const struct conf *c, const char *addr, struct route *r);

/* The agent's name as the log and explain-recipient say it: maildir, smtp, lmtp. */
const char *route_agent_name(enum route_agent a);

/* The route a configured transport gives a local recipient addr: maildir (as route_decide
 * does), lmtp by unix socket, or lmtp to HOST:PORT (never looked up by MX). The key groups
 * every recipient of one LMTP server. */
void route_of_transport(const struct conf_transport *t, const char *addr, struct route *r);

#endif
