/*
 * spool_layout — the table of spool_dir and the judgement of one object; see spool_layout.h.
 */
#include "queue/spool_layout.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

const struct spool_entry spool_layout[] = {
	{ "", SPK_DIR, SPOOL_MODE_TOP, 1, SPC_NONE, "the spool (spool_dir)" },
	{ "incoming", SPK_DIR, SPOOL_MODE_PRIVATE, 1, SPC_RUN_USER_FILES,
	    "messages being received" },
	{ "queue", SPK_DIR, SPOOL_MODE_PRIVATE, 1, SPC_RUN_USER_FILES,
	    "the queued messages and their journals" },
	{ "free", SPK_DIR, SPOOL_MODE_PRIVATE, 1, SPC_RUN_USER_FILES,
	    "files of delivered messages, kept for reuse" },
	{ "corrupt", SPK_DIR, SPOOL_MODE_PRIVATE, 1, SPC_RUN_USER_FILES,
	    "maildrop files the server could not accept" },
	{ "maildrop", SPK_DIR, SPOOL_MODE_MAILDROP, 1, SPC_DROPS,
	    "messages sendmail left while no server answered" },
	{ "lock", SPK_FILE, SPOOL_MODE_FILE, 1, SPC_NONE, "the running server's lock" },
	{ "control", SPK_SOCKET, SPOOL_MODE_FILE, 1, SPC_NONE,
	    "the control socket (imsd flush, imsd delete)" },
	{ "submit", SPK_SOCKET, SPOOL_MODE_SUBMIT, 1, SPC_NONE,
	    "the local submission socket (imsd sendmail)" },
};

const size_t spool_layout_n = sizeof(spool_layout) / sizeof(spool_layout[0]);

const struct spool_entry *
spool_layout_find(const char *name)
{
	for (size_t i = 1; i < spool_layout_n; i++)
		if (strcmp(spool_layout[i].name, name) == 0)
			return &spool_layout[i];
	return NULL;
}

int
spool_kind_of(unsigned st_mode)
{
	switch (st_mode & S_IFMT) {
	case S_IFDIR:
		return SPK_DIR;
	case S_IFREG:
		return SPK_FILE;
	case S_IFSOCK:
		return SPK_SOCKET;
	default:
		return -1;
	}
}

const char *
spool_kind_name(int kind)
{
	switch (kind) {
	case SPK_DIR:
		return "a directory";
	case SPK_FILE:
		return "a file";
	case SPK_SOCKET:
		return "a socket";
	default:
		return "something else";
	}
}

enum spool_verdict
spool_judge(enum spool_kind kind, unsigned mode, unsigned st_mode, uid_t st_uid,
    uid_t want_uid, int any_owner, char *why, size_t wl)
{
	int found = spool_kind_of(st_mode);

	why[0] = '\0';
	if (found != (int)kind) {
		snprintf(why, wl, "%s, where imsd keeps %s", (st_mode & S_IFMT) == S_IFLNK ?
		    "a symbolic link (never followed)" : spool_kind_name(found),
		    spool_kind_name((int)kind));
		return SPV_FAIL;
	}
	if (!any_owner && st_uid != want_uid) {
		snprintf(why, wl, "owned by uid %ld, not by the user imsd runs as (uid %ld)",
		    (long)st_uid, (long)want_uid);
		return SPV_FAIL;
	}
	if ((st_mode & 07777) != mode) {
		snprintf(why, wl, "mode %04o, imsd makes it %04o", st_mode & 07777, mode);
		return SPV_MODE;
	}
	return SPV_OK;
}
