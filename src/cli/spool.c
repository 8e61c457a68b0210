/*
 * spool — how the commands open the spool; see cli.h.
 */
#include "cli/cli.h"
#include "server/privs.h"

int
cli_queue_open(const char *spool_dir, int lock, struct queue *q, char *err, size_t errlen)
{
	if (privs_as_spool_owner(spool_dir, err, errlen) < 0)
		return -1;
	return queue_open(spool_dir, lock, q, err, errlen);
}
