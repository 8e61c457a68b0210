/*
 * privs — never serve as root.
 *
 * Started as root, imsd binds its listeners, reads the TLS key and the files the
 * configuration names, opens the spool, and then permanently becomes run_user (default
 * `imsd`) before it accepts a connection or starts a thread: supplementary groups, gid and
 * uid switched, every capability cleared (effective, permitted, inheritable, ambient) and
 * no_new_privs set, so nothing can regain root. run_user = root keeps root, and only when
 * written (with a warning). The embedded default (make run), started as root on a host
 * without an `imsd` user, uses `nobody` and says how to create the real one.
 *
 * Started as another user, imsd runs as that user: a run_user that names someone else is
 * an error (only root can switch), unless it is the default. Under systemd (User=imsd,
 * AmbientCapabilities=CAP_NET_BIND_SERVICE) the capability is dropped once the listeners
 * are bound.
 */
#ifndef IMSD_PRIVS_H
#define IMSD_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

#include "conf/conf.h"

struct privs {
	int switch_user;	/* started as root and becoming name */
	int stay_root;		/* run_user = root, written */
	char name[64];
	uid_t uid;
	gid_t gid;
};

/* Decide who to become. 0 ok; -1 with the reason and what to do in err (exit status 1). */
int privs_plan(const struct conf *cf, struct privs *p, char *err, size_t errlen);

/* Give path (and, with depth > 0, what is below it, that many levels) to the run user, so
 * that it can go on writing what root created before the switch. Nothing is followed.
 * No-op unless switching. 0 ok, -1 with err. */
int privs_own(const struct privs *p, const char *path, int depth, char *err, size_t errlen);

/* Switch for good and clear every capability. Call before any thread exists. 0 ok, -1. */
int privs_drop(const struct privs *p, char *err, size_t errlen);

/* Can the user we now are reach and write dir? 0 yes; -1 with a reason naming dir. */
int privs_check_dir(const char *what, const char *dir, char *err, size_t errlen);

#endif
