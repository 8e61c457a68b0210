/*
 * rcpt — the RCPT verdict (see rcpt.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "policy/rcpt.h"
#include "util/intl.h"
#include "util/str.h"

/* What each refusal says. */
static const struct {
	int code;
	const char *status, *reason, *text;	/* text follows "<addr>: " (NULL: no address) */
	int log_from;
} refusals[] = {
	[RR_BAD_IDN] = { 553, "5.1.3", "bad-idn-domain", "Bad recipient domain: ", 0 },
	[RR_BAD_ROUTED] = { 501, "5.1.3", "bad-routed-address", "Bad recipient address syntax",
	    0 },
	[RR_RELAY_DENIED] = { 554, "5.7.1", "relay-denied", "Relay access denied", 1 },
	[RR_TOO_LONG] = { 501, "5.1.3", "too-long", NULL, 0 },
	[RR_BAD_LOCAL_PART] = { 550, "5.1.3", "bad-local-part",
	    "Bad recipient address: local part cannot name a mailbox (", 1 },
	[RR_UNKNOWN_USER] = { 550, "5.1.1", "unknown-user",
	    "Recipient address rejected: User unknown", 1 },
};

static void
lowercase(char *p)
{
	for (; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

/* Lower-case a domain and drop one trailing dot: the same domain. */
static void
domain_norm(char *d)
{
	size_t dl;

	lowercase(d);
	dl = strlen(d);
	if (dl > 0 && d[dl - 1] == '.')
		d[dl - 1] = '\0';
}

/* A hostname (LDH labels) or an address literal in brackets. */
static int
domain_ok(const char *d)
{
	size_t n = strlen(d);

	if (n == 0 || n > SMTP_DOMAIN_MAX)
		return 0;
	if (d[0] == '[')
		return n > 2 && d[n - 1] == ']';
	if (d[0] == '.' || d[0] == '-' || strstr(d, "..") != NULL)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)d[i]) || d[i] == '-' || d[i] == '.'))
			return 0;
	return 1;
}

static enum rcpt_kind
refuse(struct rcpt_verdict *v, enum rcpt_refusal r, const char *why)
{
	v->kind = RCPT_REFUSE;
	v->refusal = r;
	v->code = refusals[r].code;
	v->status = refusals[r].status;
	v->reason = refusals[r].reason;
	v->why = why;
	return v->kind;
}

int
rcpt_may_relay(const struct conf *c, const struct netaddr *remote, int authenticated,
    int local_submission)
{
	if (authenticated || local_submission)
		return 1;	/* a local user, like Postfix's sendmail: the kernel said who */
	for (size_t i = 0; i < c->nrelay_networks; i++)
		if (cidr_match(&c->relay_networks[i], remote))
			return 1;
	return 0;
}

/*
 * A routing trick in a local part hides another address: "user@remote"@local,
 * user%remote@local, remote!user@local. Rewrites real to the address it really is.
 * 0 ok; -1 what it hides is no address.
 */
static int
unroute(struct smtp_path *real)
{
	char hidden[SMTP_LOCAL_MAX + 1], *cut;

	str_copy(hidden, sizeof(hidden), real->local);
	if ((cut = strrchr(hidden, '@')) != NULL || (cut = strrchr(hidden, '%')) != NULL) {
		*cut = '\0';
		str_copy(real->domain, sizeof(real->domain), cut + 1);
		str_copy(real->local, sizeof(real->local), hidden);
	} else {
		cut = strchr(hidden, '!');
		*cut = '\0';
		str_copy(real->domain, sizeof(real->domain), hidden);
		str_copy(real->local, sizeof(real->local), cut + 1);
	}
	domain_norm(real->domain);
	real->is_literal = real->domain[0] == '[';
	return real->local[0] == '\0' || !domain_ok(real->domain) ? -1 : 0;
}

enum rcpt_kind
rcpt_decide(const struct conf *c, const struct recipients *rcpts, int may_relay,
    const struct smtp_path *p, struct rcpt_verdict *v)
{
	struct smtp_path real = *p;
	char adom[SMTP_DOMAIN_MAX + 1], flocal[SMTP_LOCAL_MAX + 1];
	const char *why;
	int islocal;

	memset(v, 0, sizeof(*v));
	if (real.is_postmaster) {
		/* RFC 5321 §4.5.1: <Postmaster> without a domain is always accepted. */
		str_copy(real.domain, sizeof(real.domain), c->local_domains[0]);
		str_copy(real.local, sizeof(real.local), "postmaster");
	}
	if (smtp_path_addr(&real, v->given, sizeof(v->given)) < 0)
		return refuse(v, RR_TOO_LONG, NULL);
	domain_norm(real.domain);
	/* RFC 6531: a U-label domain compares in A-label form (local_domains are kept so);
	 * the envelope keeps it as the client wrote it */
	if (!real.is_literal && intl_domain_ascii(real.domain, adom, sizeof(adom), &why) < 0)
		return refuse(v, RR_BAD_IDN, why);
	if (real.is_literal)
		str_copy(adom, sizeof(adom), real.domain);
	islocal = !real.is_literal && conf_is_local_domain(c, adom);
	if (islocal && strpbrk(real.local, "@%!") != NULL) {
		/* judge the address it really is */
		v->routed = 1;
		if (unroute(&real) < 0)
			return refuse(v, RR_BAD_ROUTED, NULL);
		str_copy(adom, sizeof(adom), real.domain);	/* ASCII: domain_ok */
		islocal = !real.is_literal && conf_is_local_domain(c, adom);
	}
	str_copy(v->local, sizeof(v->local), real.local);
	str_copy(v->domain, sizeof(v->domain), adom);
	if (!islocal) {
		if (!may_relay)
			return refuse(v, RR_RELAY_DENIED, NULL);
		if (smtp_path_addr(&real, v->addr, sizeof(v->addr)) < 0)
			return refuse(v, RR_TOO_LONG, NULL);
		v->kind = RCPT_RELAY;
		return v->kind;
	}
	/* A UTF-8 local part names its mailbox in NFC, lower-cased (util/intl), as ASCII ones
	 * are lower-cased; SPEC: '/' and a leading '.' are refused, and so is anything else
	 * that would make an odd mailbox name or end a header clause early. */
	snprintf(v->addr, sizeof(v->addr), "%s@%s", real.local, adom);
	lowercase(v->addr);
	if (intl_local_fold(real.local, flocal, sizeof(flocal), &why) < 0)
		return refuse(v, RR_BAD_LOCAL_PART, why);
	snprintf(v->addr, sizeof(v->addr), "%s@%s", flocal, adom);
	str_copy(v->local, sizeof(v->local), flocal);
	if (!smtp_local_mailbox_ok(flocal, &why))
		return refuse(v, RR_BAD_LOCAL_PART, why);
	/* Every local domain has a postmaster (RFC 5321 §4.5.1), listed or not. */
	if (rcpts != NULL && strncmp(v->addr, "postmaster@", 11) != 0 &&
	    recipients_lookup(rcpts, v->addr, NULL, NULL) != 1)
		return refuse(v, RR_UNKNOWN_USER, NULL);
	v->kind = RCPT_LOCAL;
	return v->kind;
}

void
rcpt_refusal_reply(const struct rcpt_verdict *v, const char *safe_addr, char *out,
    size_t outlen)
{
	const char *text = refusals[v->refusal].text;

	if (text == NULL)
		snprintf(out, outlen, "%d %s Bad recipient address syntax: too long", v->code,
		    v->status);
	else
		snprintf(out, outlen, "%d %s <%s>: %s%s%s", v->code, v->status, safe_addr, text,
		    v->why != NULL ? v->why : "", v->refusal == RR_BAD_LOCAL_PART ? ")" : "");
}

int
rcpt_refusal_logs_from(const struct rcpt_verdict *v)
{
	return refusals[v->refusal].log_from;
}
