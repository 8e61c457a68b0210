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

/*
 * Open the directory path (creating it, mode 0700, and any missing parent, mode 0711, with
 * create) for root to work in by descriptor. The path is the administrator's: a symbolic link on it is
 * followed only where the run user could not have put it, i.e. in a directory it does not
 * own and cannot write to; elsewhere a link (or a file) where a directory is expected is
 * refused, with err naming it. Not switching users: a plain open. fd, or -1 with err.
 */
int privs_open_dir(const struct privs *p, const char *path, int create, char *err,
    size_t errlen);

/* Give the directory fd (shown as shown in messages) and, with depth > 0, what is below
 * it, that many levels, to the run user, so that it can go on writing what root created
 * before the switch. Nothing is followed, a file with several links is left alone, and
 * below the top only objects of root's or of the top's previous owner are given (never a
 * third user's file, which its owner may still hold open); each object left alone gets a
 * log line naming it. No-op unless switching. 0 ok, -1 with err. */
int privs_own_fd(const struct privs *p, int fd, const char *shown, int depth, char *err,
    size_t errlen);
/* The same for the directory path, opened with privs_open_dir. */
int privs_own(const struct privs *p, const char *path, int depth, char *err, size_t errlen);

/* The embedded default's ./var: root's, since root walks through it to var/spool,
 * var/mail and var/tls by name, and mode 0711 at least, so the run user passes through.
 * An earlier version gave it to the run user; when it still belongs to that user it is
 * taken back. 0 (also when there is none), -1 with err. */
int privs_reclaim(const struct privs *p, const char *path, char *err, size_t errlen);

/*
 * The embedded default (make run) started as root, before its configuration is loaded:
 * ./var and ./var/tls are made root's (an earlier version gave var/tls to the run user,
 * who could have put links there), and var/tls/cert.pem and key.pem must be plain files
 * with one link: root reads the key there and the server keeps it after switching users,
 * so a link to another service's key would hand that key to the run user. Not root:
 * nothing. 0, or -1 with err naming the file.
 */
int privs_embedded_prepare(char *err, size_t errlen);

/* After that: the certificate (0644) and key (0640) in var/tls, root's, of the run user's
 * group, so that a reload as the run user reads them; the directory stays root's. */
int privs_share_tls(const struct privs *p, char *err, size_t errlen);

/*
 * For a command that root runs on the spool (imsd queue, delete, flush, explain-recipient,
 * mailq): become the owner of spool_dir, for good, before opening anything in it, as
 * Postfix's tools become mail_owner. The spool belongs to the user imsd serves as, who
 * may have planted a link there for root to follow; as that user there is nothing to gain.
 * Not root, or a spool of root's (or none yet): nothing changes. 0, or -1 with err.
 */
int privs_as_spool_owner(const char *spool_dir, char *err, size_t errlen);

/* Switch for good and clear every capability. Call before any thread exists. 0 ok, -1. */
int privs_drop(const struct privs *p, char *err, size_t errlen);

/* Can the user we now are reach and write dir? 0 yes; -1 with a reason naming dir. */
int privs_check_dir(const char *what, const char *dir, char *err, size_t errlen);

#endif
