/*
 * lmtp_probe — ask an LMTP server whether it takes a recipient, without sending a message
 * (recipient_check = transport): LHLO, MAIL FROM:<>, RCPT TO:<addr>, and as soon as the RCPT
 * is answered the connection is closed (an accepted RCPT is followed by DATA or BDAT, which
 * is never given its text: the server drops the transaction). Dovecot answers the RCPT from
 * its userdb: `550 5.1.1 <addr> User doesn't exist`.
 *
 * The dialogue is proto/smtpc's, in its LMTP dialect and in lockstep; this module only moves
 * its bytes over a blocking socket (a unix socket or TCP, as the route names it), every
 * step bounded by LMTP_PROBE_TIMEOUT for the whole probe. It runs on a worker thread.
 * Thread-safe; nothing is logged (the caller logs the verdict).
 */
#ifndef IMSD_LMTP_PROBE_H
#define IMSD_LMTP_PROBE_H

#include <stddef.h>

#include "deliver/route.h"

#define LMTP_PROBE_TIMEOUT	10	/* seconds for the whole probe */

enum lmtp_probe_result {
	PROBE_EXISTS,		/* the RCPT got 2xx */
	PROBE_REFUSED,		/* the RCPT got 5xx: reply holds it ("550 5.1.1 ...") */
	PROBE_TEMP,		/* the server could not be asked, or said 4xx: reply says why */
};

/*
 * Probe addr at the LMTP server of route rt (ROUTE_LMTP: VIA_UNIX or VIA_HOST), introducing
 * ourselves as helo. reply (always NUL-terminated) is the server's reply line for
 * PROBE_REFUSED and a 4xx, or what went wrong.
 */
enum lmtp_probe_result lmtp_probe(const struct route *rt, const char *helo, const char *addr,
    char *reply, size_t replylen);

#endif
