/*
 * dnsq — DNS lookups for the mail-authentication checks (SPF, DKIM keys, DMARC records,
 * DNS lists), made on a worker thread with a deadline.
 *
 * Contract:
 *  - A struct dnsq belongs to one thread at a time (a check job creates one, uses it and
 *    frees it). Lookups block the calling thread, never an event loop: the checks run on
 *    worker threads (server: checkq), and the command-line explainers call them directly.
 *  - The same servers as the relay's resolver (dns_servers, else /etc/resolv.conf) through
 *    c-ares; DNS only, no /etc/hosts, no search list. Each try waits DNSQ_TRY_MS, two
 *    tries; and no lookup of this dnsq goes past its deadline (dnsq_new's budget): what is
 *    still open then ends in DNSQ_TEMPFAIL "timeout". A slow DNS server therefore costs a
 *    check job at most the budget, and the session waiting for it gets a 4xx, never a hang.
 *  - dnsq_submit + dnsq_wait run several lookups at once (the DNS lists at connect).
 */
#ifndef IMSD_DNSQ_H
#define IMSD_DNSQ_H

#include <stddef.h>

#include "util/addr.h"

#define DNSQ_TRY_MS	2000
#define DNSQ_TXT_MAX	8192	/* bytes of one TXT record, strings joined */
#define DNSQ_ANSWERS_MAX 64	/* records of one answer we look at */

enum dnsq_status {
	DNSQ_OK,
	DNSQ_NXDOMAIN,	/* the name does not exist */
	DNSQ_NODATA,	/* it exists, with no record of this type */
	DNSQ_TEMPFAIL,	/* SERVFAIL, REFUSED, timeout, unreachable server, malformed answer */
};

struct dnsq;

struct dnsq_answer {
	enum dnsq_status status;
	char why[128];			/* "SERVFAIL", "timeout", ... for TEMPFAIL */
	/* filled on DNSQ_OK, by type */
	char **txt;	size_t ntxt;	/* TXT: each record's strings joined */
	struct netaddr *addrs; size_t naddrs;	/* A, AAAA */
	char **names;	size_t nnames;	/* MX exchanges (by preference), PTR names */
	/* internal */
	int type;
	struct dnsq *q;
	int pending;
};

/* servers: n entries (port 0 = 53), or n = 0 for /etc/resolv.conf. budget_ms: the deadline
 * for everything this dnsq will look up. NULL with err on failure. */
struct dnsq *dnsq_new(const struct hostport *servers, size_t n, unsigned budget_ms, char *err,
    size_t errlen);
void dnsq_free(struct dnsq *q);

/* One lookup (type: 1 A, 28 AAAA, 15 MX, 12 PTR, 16 TXT), blocking. Returns a->status; free
 * the answer with dnsq_answer_free. */
enum dnsq_status dnsq_lookup(struct dnsq *q, const char *name, int type, struct dnsq_answer *a);
/* Start a lookup without waiting; dnsq_wait runs every started lookup to its end. */
void dnsq_submit(struct dnsq *q, const char *name, int type, struct dnsq_answer *a);
void dnsq_wait(struct dnsq *q);
void dnsq_answer_free(struct dnsq_answer *a);

/* Parse a raw DNS answer of type (as dnsq_lookup would): fills a (status, records). For
 * the fuzz target; the lookups use it on every answer. */
void dnsq_parse(int type, unsigned char *abuf, int alen, struct dnsq_answer *a);

/* Milliseconds left of the budget (0 when spent). */
unsigned dnsq_left_ms(const struct dnsq *q);

#endif
