/*
 * spool_layout — what spool_dir and mail_dir hold, of which kind, whose and with which mode:
 * the one table that the code creating them takes its modes from (queue_fs.c, server/local.c,
 * server/control.c, deliver/maildir.c) and that `imsd doctor` judges a host by, so the two
 * cannot disagree. PURE: no system calls; the caller stats and this says what it means.
 *
 *   spool_dir/            0711  the run user's; local users pass through to submit, maildrop
 *     incoming/ queue/ free/ corrupt/   0700  the run user's, with its files (0600) only
 *     maildrop/           1733  anyone may drop a file (its owner is the submitter), nobody
 *                               else may list, read or remove one
 *     lock                0600  the running server's flock
 *     control             0600  unix socket: imsd flush, imsd delete
 *     submit              0666  unix socket: imsd sendmail
 *   mail_dir/ DOMAIN/ USER/ {tmp,new,cur}/   0700  the run user's; messages 0600
 *
 * The owner rule below mail_dir is maildir.c's: a directory there that belongs to another
 * user is never delivered through (it would let that user choose where mail is written).
 */
#ifndef IMSD_SPOOL_LAYOUT_H
#define IMSD_SPOOL_LAYOUT_H

#include <stddef.h>
#include <sys/types.h>

#define SPOOL_MODE_TOP		0711	/* spool_dir */
#define SPOOL_MODE_PRIVATE	0700	/* incoming/, queue/, free/, corrupt/ */
#define SPOOL_MODE_FILE		0600	/* what is in them; lock; control */
#define SPOOL_MODE_MAILDROP	01733	/* maildrop/ */
#define SPOOL_MODE_SUBMIT	0666	/* the submit socket */
#define SPOOL_MODE_DROPPED	0644	/* a maildrop file its writer has completed */
#define MAILDIR_MODE_DIR	0700	/* mail_dir and every directory below it */
#define MAILDIR_MODE_FILE	0600	/* a delivered message */

#define SPOOL_WALK_MAX		100000	/* objects doctor looks at in one directory */

enum spool_kind { SPK_DIR, SPK_FILE, SPK_SOCKET };

enum spool_content {
	SPC_NONE,		/* nothing inside (not a directory) */
	SPC_RUN_USER_FILES,	/* plain files of the run user, mode SPOOL_MODE_FILE */
	SPC_DROPS,		/* plain files of any local user (the submitter) */
};

struct spool_entry {
	const char *name;		/* below spool_dir ("" is spool_dir itself) */
	enum spool_kind kind;
	unsigned mode;			/* permission bits, sticky included */
	int at_start;			/* made when the server starts (so absent: never started) */
	enum spool_content content;
	const char *role;		/* what it is for, in messages */
};

extern const struct spool_entry spool_layout[];
extern const size_t spool_layout_n;

/* The entry named name (no slash), or NULL when imsd puts nothing of that name there. */
const struct spool_entry *spool_layout_find(const char *name);

enum spool_verdict {
	SPV_OK,
	SPV_MODE,	/* kind and owner right, the permission bits not */
	SPV_FAIL,	/* another kind of object, or another owner */
};

/*
 * One object as found: kind (S_IFMT bits of st_mode), permission bits and owner, against
 * what is wanted of it (kind, mode; owner want_uid, or any owner when any_owner). SPV_OK, or
 * SPV_MODE / SPV_FAIL with why ("mode 0755, imsd makes it 0700", "a directory, where imsd
 * keeps a file", "owned by uid 1001, not by the user imsd runs as (uid 110)").
 */
enum spool_verdict spool_judge(enum spool_kind kind, unsigned mode, unsigned st_mode,
    uid_t st_uid, uid_t want_uid, int any_owner, char *why, size_t wl);

/* The kind of an st_mode, or -1 for anything else (a link, a device, a FIFO). */
int spool_kind_of(unsigned st_mode);
const char *spool_kind_name(int kind);	/* "a directory", "a file", "a socket", "something else" */

#endif
