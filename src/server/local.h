/*
 * local — local submission: the socket spool_dir/submit (mode 0666) that `imsd sendmail`
 * talks SMTP to, and the maildrop spool_dir/maildrop (mode 1733) where it leaves messages
 * while no server runs.
 *
 * Who submitted is learned from the kernel, never from the client: SO_PEERCRED on the
 * socket, the file's owner in the maildrop. The session on the socket is an ordinary SMTP
 * session (kind SL_LOCAL): message_size_limit, recipient checks and "250 only after the
 * queue commit" hold as on the network.
 *
 * The maildrop (spool_dir/maildrop) and its pickup, which feeds this socket: pickup.h.
 */
#ifndef IMSD_LOCAL_H
#define IMSD_LOCAL_H

#include <stddef.h>
#include <sys/types.h>

#include "session/session.h"

#define LOCAL_SOCKET	"submit"
#define LOCAL_MAILDROP	"maildrop"
#define LOCAL_CORRUPT	"corrupt"

/* Make spool_dir (open as spoolfd) reachable by local users (0711), create maildrop (1733)
 * and corrupt (0700), and bind spool_dir/submit (0666). All on descriptors, nothing
 * followed: a link or a file where one of them belongs is refused, err naming it. The
 * listening fd, or -1 with err. */
int local_listen(int spoolfd, const char *spool_dir, char *err, size_t errlen);

/* An accepted local connection: fill peer (loopback addresses, the uid). 0, or -1 when the
 * kernel does not say who the peer is. */
int local_peer(int fd, struct session_peer *peer);

#endif
