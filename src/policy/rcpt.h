/*
 * rcpt — the RCPT verdict: is mail to this address taken, and as what?
 *
 * PURE (the recipients table is read, never changed). The session asks it for every RCPT
 * and turns the verdict into its reply and log line; `imsd explain-recipient` asks it the
 * same question and prints the answer, so what is explained is what RCPT does.
 *
 * The judgement, in order (SPEC "Local delivery", "Relaying"):
 *   - a bare <Postmaster> is postmaster of the first local domain (RFC 5321 §4.5.1);
 *   - the domain compares case-insensitively, without a trailing dot, a U-label domain in
 *     its A-label form (RFC 6531; not valid IDNA: refused 553 5.1.3);
 *   - a routing trick in a local domain's local part ("user@remote"@local,
 *     user%remote@local, remote!user@local) is judged as the address it hides (a hidden
 *     address that is none: 501 5.1.3);
 *   - not a local domain: relayed when the client may relay (relay_networks, AUTH, the
 *     local submission socket), else 554 5.7.1;
 *   - a local domain: the mailbox is named by the NFC lower-case local part, which must be
 *     able to name a Maildir (550 5.1.3); with a recipients_file it must be listed (550
 *     5.1.1), except postmaster, which every local domain has.
 * What follows a local verdict (the alias expansion, the recipient limit, the
 * transaction) is the caller's.
 */
#ifndef IMSD_RCPT_H
#define IMSD_RCPT_H

#include "conf/conf.h"
#include "policy/recipients.h"
#include "proto/smtp_path.h"
#include "util/addr.h"

#define RCPT_ADDR_MAX	(SMTP_LOCAL_MAX + SMTP_DOMAIN_MAX + 64)

enum rcpt_kind { RCPT_LOCAL, RCPT_RELAY, RCPT_REFUSE };

enum rcpt_refusal {
	RR_NONE,
	RR_BAD_IDN,		/* 553 5.1.3 the domain is not valid IDNA */
	RR_BAD_ROUTED,		/* 501 5.1.3 a routing trick hides no address */
	RR_RELAY_DENIED,	/* 554 5.7.1 not local, and the client may not relay */
	RR_TOO_LONG,		/* 501 5.1.3 the address is too long to write */
	RR_BAD_LOCAL_PART,	/* 550 5.1.3 the local part cannot name a mailbox */
	RR_UNKNOWN_USER,	/* 550 5.1.1 not in recipients_file */
};

struct rcpt_verdict {
	enum rcpt_kind kind;
	enum rcpt_refusal refusal;	/* RCPT_REFUSE: which */
	int code;			/* RCPT_REFUSE: the reply code */
	const char *status;		/* RCPT_REFUSE: the enhanced status */
	const char *reason;		/* RCPT_REFUSE: a word for the log (reason=...) */
	const char *why;		/* the detail some refusals carry (NULL: none) */
	int routed;			/* a routing trick in the local part was looked through */
	char given[RCPT_ADDR_MAX];	/* the address as the client gave it (postmaster filled) */
	char addr[RCPT_ADDR_MAX];	/* LOCAL: the mailbox address (local@domain, folded);
					 * RELAY: the address to relay to, as SMTP writes it */
	char local[SMTP_LOCAL_MAX + 1];	/* the address judged: local part and domain */
	char domain[SMTP_DOMAIN_MAX + 1];	/* (A-label form) */
};

/* May a client relay (send to domains that are not local)? From relay_networks, after AUTH,
 * or on the local submission socket. */
int rcpt_may_relay(const struct conf *c, const struct netaddr *remote, int authenticated,
    int local_submission);

/* Judge the recipient path p (as smtp_path_parse gave it) for a client that may_relay or
 * not; rcpts is the recipients_file table (NULL: unset). Fills *v; returns v->kind. */
enum rcpt_kind rcpt_decide(const struct conf *c, const struct recipients *rcpts,
    int may_relay, const struct smtp_path *p, struct rcpt_verdict *v);

/* The whole reply line of a refusal, safe_addr the given address made safe for a reply:
 * "550 5.1.1 <a@b>: Recipient address rejected: User unknown". */
void rcpt_refusal_reply(const struct rcpt_verdict *v, const char *safe_addr, char *out,
    size_t outlen);

/* Does the refusal's log line name the sender (from=), carry why=, and routed=yes? */
int rcpt_refusal_logs_from(const struct rcpt_verdict *v);

#endif
