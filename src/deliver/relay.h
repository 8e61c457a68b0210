/*
 * relay — the outbound SMTP client (RFC 5321), non-blocking, on the event loop.
 *
 * The smtp delivery agent (deliver/agent.h). A job carries one message and the recipients
 * that share one route (deliver/route.h: a domain's MX hosts, the relayhost, an address
 * literal). The client resolves the destination (MX in preference order,
 * A/AAAA when there is none; relayhost replaces the MX lookup), connects to each host in
 * turn until one answers, speaks EHLO (HELO as fallback), uses STARTTLS when offered
 * (opportunistic, unverified; falls back to plaintext on a new connection only when the
 * handshake fails; at a level of policy/outtls.h that requires TLS, a host without
 * verified TLS is skipped and the job deferred, never plaintext), PIPELINING, SIZE and
 * 8BITMIME, sends the body dot-stuffed with CRLF line ends only (or, to a peer that
 * offers CHUNKING, in BDAT chunks of at most 64 KiB with the same CRLF lines and no
 * dots; BINARYMIME bodies exactly as stored), and reports one result per recipient:
 * delivered, temporary or permanent
 * failure, with the enhanced status and the server's words. Idle connections are kept a
 * few seconds for the next message to the same host.
 */
#ifndef IMSD_RELAY_H
#define IMSD_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "deliver/agent.h"
#include "net/ev.h"

struct relay;
struct dns;

struct relay *relay_new(struct ev_loop *loop, struct dns *dns, char *err, size_t errlen);
void relay_free(struct relay *r);
/* Start a job on its route (job->route: VIA_MX, VIA_HOST or VIA_LITERAL); done() is called
 * exactly once, later (never from inside relay_start). */
void relay_start(struct relay *r, struct dlv_job *job);
/* The relay as the smtp delivery agent (deliver/agent.h); owned by r. */
struct agent *relay_agent(struct relay *r);
/* Timeouts and idle-connection expiry; call every second. */
void relay_tick(struct relay *r, time_t now);
/* Jobs in flight. */
unsigned relay_active(const struct relay *r);

#endif
