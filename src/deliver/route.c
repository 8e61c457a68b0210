/*
 * route — where mail for a recipient goes (see route.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "deliver/route.h"
#include "util/intl.h"
#include "util/str.h"

void
route_decide(const struct conf *c, const char *addr, struct route *r)
{
	const char *at = strrchr(addr, '@');
	char dom[256], a[256];
	const char *why;

	memset(r, 0, sizeof(*r));
	str_copy(dom, sizeof(dom), at != NULL ? at + 1 : "");
	for (char *p = dom; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (dom[0] != '[' && conf_is_local_domain(c, dom)) {
		r->agent = ROUTE_MAILDIR;
		r->via = VIA_MAILBOX;
		snprintf(r->nexthop, sizeof(r->nexthop), "%s/%.*s", dom,
		    (int)(at != NULL ? at - addr : 0), addr);
		str_copy(r->key, sizeof(r->key), "maildir");
		return;
	}
	r->agent = ROUTE_SMTP;
	if (c->relayhost != NULL) {
		/* every non-local domain goes there */
		r->via = VIA_HOST;
		str_copy(r->nexthop, sizeof(r->nexthop), c->relayhost);
		r->port = c->relayhost_port;
		r->no_mx = c->relayhost_literal;
		str_copy(r->key, sizeof(r->key), "relayhost");
		return;
	}
	r->port = c->smtp_port;
	if (dom[0] == '[') {
		/* an address literal: no DNS (RFC 5321 §5.1) */
		r->via = VIA_LITERAL;
		str_copy(r->nexthop, sizeof(r->nexthop), dom);
	} else {
		/* RFC 6531: a U-label domain is looked up in its A-label form (both spellings
		 * go together); a domain that is not valid IDNA stays as written: the lookup
		 * then fails and says so */
		r->via = VIA_MX;
		str_copy(r->nexthop, sizeof(r->nexthop),
		    intl_domain_ascii(dom, a, sizeof(a), &why) == 0 ? a : dom);
	}
	str_copy(r->key, sizeof(r->key), r->nexthop);
}

const char *
route_agent_name(enum route_agent a)
{
	return a == ROUTE_MAILDIR ? "maildir" : a == ROUTE_SMTP ? "smtp" : a == ROUTE_MBOX ?
	    "mbox" : "lmtp";
}

void
route_of_transport(const struct conf_transport *t, const char *addr, struct route *r)
{
	const char *at = strrchr(addr, '@');
	char dom[256];

	memset(r, 0, sizeof(*r));
	switch (t->kind) {
	case TRANSPORT_LMTP_UNIX:
		r->agent = ROUTE_LMTP;
		r->via = VIA_UNIX;
		str_copy(r->nexthop, sizeof(r->nexthop), t->path);
		snprintf(r->key, sizeof(r->key), "lmtp:unix:%s", t->path);
		return;
	case TRANSPORT_LMTP_INET:
		r->agent = ROUTE_LMTP;
		r->via = VIA_HOST;
		r->no_mx = 1;
		r->port = t->port;
		str_copy(r->nexthop, sizeof(r->nexthop), t->host);
		snprintf(r->key, sizeof(r->key), "lmtp:inet:%s:%u", t->host, (unsigned)t->port);
		return;
	default:
		str_copy(dom, sizeof(dom), at != NULL ? at + 1 : "");
		for (char *p = dom; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		r->agent = ROUTE_MAILDIR;
		r->via = VIA_MAILBOX;
		snprintf(r->nexthop, sizeof(r->nexthop), "%s/%.*s", dom,
		    (int)(at != NULL ? at - addr : 0), addr);
		str_copy(r->key, sizeof(r->key), "maildir");
		return;
	}
}
