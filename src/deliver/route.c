/*
 * route — where mail for a recipient goes (see route.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
	return a == ROUTE_MAILDIR ? "maildir" : a == ROUTE_SMTP ? "smtp" : "lmtp";
}

/* "HOST[:PORT]" or "[HOST][:PORT]" (port required when need_port). */
static int
host_port(const char *s, struct route *r, int need_port, int allow_brackets)
{
	const char *colon;
	size_t hl;

	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close == s + 1)
			return -1;
		hl = (size_t)(close - s - 1);
		if (hl >= sizeof(r->nexthop))
			return -1;
		memcpy(r->nexthop, s + 1, hl);
		r->nexthop[hl] = '\0';
		r->no_mx = allow_brackets;
		colon = close[1] == ':' ? close + 1 : close[1] == '\0' ? NULL : close;
		if (colon != NULL && *colon != ':')
			return -1;
	} else {
		colon = strrchr(s, ':');
		hl = colon != NULL ? (size_t)(colon - s) : strlen(s);
		if (hl == 0 || hl >= sizeof(r->nexthop) || memchr(s, ':', hl) != NULL)
			return -1;
		memcpy(r->nexthop, s, hl);
		r->nexthop[hl] = '\0';
	}
	for (const char *p = r->nexthop; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '/' || (unsigned char)*p >= 0x7f)
			return -1;
	if (colon == NULL)
		return need_port ? -1 : 0;
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port == 0 || port > 65535)
		return -1;
	r->port = (uint16_t)port;
	return 0;
}

int
route_transport_parse(const char *spec, struct route *r, char *why, size_t wl)
{
	memset(r, 0, sizeof(*r));
	if (strcasecmp(spec, "maildir") == 0) {
		r->agent = ROUTE_MAILDIR;
		r->via = VIA_MAILBOX;
		return 0;
	}
	if (strcasecmp(spec, "smtp") == 0) {
		r->agent = ROUTE_SMTP;
		r->via = VIA_MX;
		r->port = 25;
		return 0;
	}
	if (strncasecmp(spec, "smtp:", 5) == 0) {
		r->agent = ROUTE_SMTP;
		r->via = VIA_HOST;
		r->port = 25;
		if (host_port(spec + 5, r, 0, 1) == 0)
			return 0;
	} else if (strncasecmp(spec, "lmtp:unix:", 10) == 0) {
		const char *path = spec + 10;
		r->agent = ROUTE_LMTP;
		r->via = VIA_UNIX;
		/* sockaddr_un holds 107 bytes and the NUL */
		if (path[0] == '/' && strlen(path) < 108 && strpbrk(path, " \t\r\n") == NULL) {
			str_copy(r->nexthop, sizeof(r->nexthop), path);
			return 0;
		}
	} else if (strncasecmp(spec, "lmtp:inet:", 10) == 0) {
		r->agent = ROUTE_LMTP;
		r->via = VIA_HOST;
		if (host_port(spec + 10, r, 1, 0) == 0) {
			r->no_mx = 1;	/* a mailbox server is named, never looked up by MX */
			return 0;
		}
	}
	snprintf(why, wl, "%.80s%s is not a transport (maildir, smtp, smtp:HOST[:PORT], "
	    "lmtp:unix:/PATH, lmtp:inet:HOST:PORT)", spec, strlen(spec) > 80 ? "..." : "");
	memset(r, 0, sizeof(*r));
	return -1;
}
