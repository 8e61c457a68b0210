/*
 * msgprep — a queued message made fit for a peer: the 7-bit conversion for a server that
 * does not announce 8BITMIME, and the DKIM signatures that conversion breaks, made again.
 *
 * RFC 6152 §3 and RFC 1652's advice: a peer without 8BITMIME gets the message converted to
 * 7 bit (proto/mime8: quoted-printable parts, MIME-aware) rather than a bounce. The
 * conversion reads the whole message into memory and runs on the relay's loop: peers
 * without 8BITMIME are rare and the work is a copy (measured about 5 ms per MiB), so a
 * thread hand-off is not worth its complexity here. DKIM: a signature over the 8-bit body
 * no longer verifies after conversion; signatures this server made (a key in dkim_sign for
 * their d=) are dropped and made again over the converted message; other signers'
 * signatures are left as they are (the receiver sees them fail, as RFC 6376 5.3 warns).
 */
#ifndef IMSD_MSGPREP_H
#define IMSD_MSGPREP_H

#include <stddef.h>
#include <stdint.h>

#include "deliver/agent.h"

/* Convert j's message (j->fd, body_off, body_len) for host (named in logs). 0: *fd_out is
 * a memfd holding *len_out bytes of the converted message, re-signed with *nsig_out
 * signatures; -1 with the reason in err (too large, unreadable, not convertible). */
int msgprep_7bit(const struct dlv_job *j, const char *host, int *fd_out, uint64_t *len_out,
    int *nsig_out, char *err, size_t errlen);

#endif
