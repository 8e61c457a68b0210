/*
 * fs — file-system helpers shared by the spool, the mailboxes and the server.
 */
#ifndef IMSD_FS_H
#define IMSD_FS_H

#include <sys/types.h>

/* mkdir -p: create path and any missing parent, each with mode. 0 ok (also when it all
 * exists), -1 with errno (ENAMETOOLONG past 4095 bytes). */
int fs_mkdirs(const char *path, mode_t mode);

#endif
