/*
 * policyc — the client of one policy service (Postfix's access policy delegation,
 * proto/policyd), run from the worker threads that wait on slow checks, the way Postfix's
 * smtpd asks check_policy_service: one request, one answer, on a connection kept for the
 * next request.
 *
 * Each ask takes an idle connection from a small pool (or opens one), sends the request and
 * reads the answer; the connection goes back to the pool, at most POLICYC_IDLE_MAX of them.
 * An idle connection that turns out dead (the server restarted, or closed it as Postfix's
 * policy servers may after max_idle) is replaced once, before anything was answered. The
 * whole exchange, connect included, is bounded by the timeout given.
 *
 * A cache of answers, keyed by the request without what identifies one delivery
 * (policyd_request_put with key = 1), holds answers the caller deems reusable for as long as
 * it says (POLICYC_CACHE_MAX entries, the oldest replaced first; expired ones are never
 * returned).
 *
 * Blocking; thread-safe (one struct policyc per service is shared by all the worker threads
 * of a configuration). Low layer: nothing is logged; failures are said in why.
 */
#ifndef IMSD_POLICYC_H
#define IMSD_POLICYC_H

#include <stddef.h>
#include <stdint.h>

#include "proto/policyd.h"

#define POLICYC_IDLE_MAX	8	/* idle connections kept */
#define POLICYC_CACHE_MAX	4096	/* cached answers */
#define POLICYC_PATH_MAX	108	/* sizeof(sun_path) */

struct policyc;

/* A client of unix:path, or of inet:host:port (host an address literal or a name, resolved
 * here: getaddrinfo, which reads /etc/hosts first). NULL with why. */
struct policyc *policyc_new_unix(const char *path, char *why, size_t whylen);
struct policyc *policyc_new_inet(const char *host, uint16_t port, char *why, size_t whylen);
/* Close the idle connections and free. No ask may be running. */
void policyc_free(struct policyc *p);

/*
 * Send the request (req, len bytes: policyd_request_put with key = 0) and read the answer's
 * action into action. 0, or -1 with why (connect, write, read, timeout after timeout_s
 * seconds for the whole exchange, a malformed answer, the server closing before answering).
 */
int policyc_ask(struct policyc *p, const char *req, size_t len, unsigned timeout_s,
    char action[POLICYD_ACTION_MAX], char *why, size_t whylen);

/* The cache: a reusable action for key (keylen bytes), now (CLOCK_MONOTONIC seconds).
 * 1 with action copied when there is one that has not expired, else 0. */
int policyc_cache_get(struct policyc *p, const char *key, size_t keylen, uint64_t now,
    char action[POLICYD_ACTION_MAX]);
/* Keep action for key until now + ttl (ttl 0: nothing is kept). */
void policyc_cache_put(struct policyc *p, const char *key, size_t keylen, const char *action,
    uint64_t now, unsigned ttl);

#endif
