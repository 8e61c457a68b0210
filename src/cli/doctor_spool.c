/*
 * imsd doctor: spool_dir and mail_dir against queue/spool_layout, the table their creators
 * take their modes from; free space against queue_minfree. Nothing is followed, nothing
 * is opened but directories (O_NOFOLLOW), nothing is changed. See doctor.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cli/doctor.h"
#include "queue/queue.h"
#include "queue/spool_layout.h"

#define PROBLEMS_SHOWN	5	/* objects named one by one; the rest are counted */
#define MAILDIR_DEPTH	5	/* mail_dir/DOMAIN/USER/.Folder/cur */
#define MAILDIR_DIRS_MAX 200000	/* directories of mail_dir looked at */

struct walk {
	struct doctor *d;
	const char *check;	/* "spool", "mailboxes" */
	int problems;		/* named so far */
	int more;		/* found beyond PROBLEMS_SHOWN */
	int failed;
	unsigned long objects;
	int cut;		/* a budget ran out */
};

static const char *
owner_name(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		snprintf(buf, len, "%s (uid %ld)", pw->pw_name, (long)uid);
	else
		snprintf(buf, len, "uid %ld (no such user)", (long)uid);
	return buf;
}

/* One object found wrong: a line for the first few, a count for the rest. */
static void
problem(struct walk *w, enum doc_status st, const char *path, const struct stat *sb,
    const char *why, const char *fix)
{
	char found[1200], own[128];

	if (st == DOC_FAIL)
		w->failed = 1;
	if (w->problems >= PROBLEMS_SHOWN) {
		w->more++;
		return;
	}
	w->problems++;
	if (sb != NULL)
		snprintf(found, sizeof(found), "%s, owned by %s, mode %04o", why,
		    owner_name(sb->st_uid, own, sizeof(own)), (unsigned)(sb->st_mode & 07777));
	else
		snprintf(found, sizeof(found), "%s", why);
	doc_add(w->d, st, w->check, path, found, strcmp(w->check, "spool") == 0 ?
	    "the server refuses a spool it cannot trust or write (it does not start, or mail "
	    "waits), and what another user owns there that user can still change" :
	    "imsd delivers only through directories of its own user (deliver/maildir.c): mail "
	    "to this mailbox is deferred, and another user's directory could redirect it", fix);
}

static void
fix_owner(const struct doctor *d, const char *path, int dir, char *fix, size_t len)
{
	snprintf(fix, len, "chown %s%s:%s %s (or remove it, if imsd did not put it there)",
	    dir ? "-R " : "", d->run_user, d->run_user, path);
}

/* What is inside a spool directory whose entry says what belongs there. */
static void
walk_spool_dir(struct walk *w, int dfd, const char *path, const struct spool_entry *e)
{
	struct doctor *d = w->d;
	struct dirent *de;
	unsigned long n = 0;
	DIR *dir;
	int fd;

	if ((fd = openat(dfd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		char why[300];
		snprintf(why, sizeof(why), "what is inside cannot be looked at: %s", strerror(errno));
		doc_add(w->d, DOC_WARN, w->check, path, why, "its contents are not judged",
		    "run imsd doctor as root or as the user the server runs as");
		w->problems++;
		return;
	}
	if ((dir = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		char p[4400], why[300], fix[600];
		struct stat sb;
		enum spool_verdict v;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (++n > SPOOL_WALK_MAX) {
			w->cut = 1;
			break;
		}
		w->objects++;
		if (fstatat(dirfd(dir), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (e->content == SPC_DROPS) {
			/* anyone's files (the owner is who submitted), and only files */
			if (!S_ISREG(sb.st_mode))
				problem(w, DOC_FAIL, p, &sb, S_ISLNK(sb.st_mode) ? "a symbolic link in "
				    "the maildrop" : "not a plain file in the maildrop", "remove it: rm -r "
				    "-- (the pickup takes plain files only)");
			continue;
		}
		v = spool_judge(SPK_FILE, SPOOL_MODE_FILE, sb.st_mode, sb.st_uid, d->run_uid, 0, why,
		    sizeof(why));
		if (v == SPV_OK)
			continue;
		if (v == SPV_MODE)
			snprintf(fix, sizeof(fix), "chmod %04o %s", SPOOL_MODE_FILE, p);
		else if (spool_kind_of(sb.st_mode) == SPK_FILE)
			fix_owner(d, p, 0, fix, sizeof(fix));
		else
			snprintf(fix, sizeof(fix), "remove it (imsd keeps only its own files in "
			    "%s/): rm -r -- %s", e->name, p);
		problem(w, DOC_FAIL, p, &sb, why, fix);
	}
	closedir(dir);
}

static void
check_spool(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;
	struct walk w = { .d = d, .check = "spool" };
	char found[1200], fix[600], why[300], p[4400];
	struct stat sb;
	int dfd, missing = 0;

	if (stat(cf->spool_dir, &sb) < 0) {
		snprintf(found, sizeof(found), "%s", strerror(errno));
		if (errno == ENOENT)
			doc_add(d, DOC_WARN, "spool", cf->spool_dir, "does not exist yet", "the server "
			    "creates it when it first starts; until then nothing can be queued",
			    "start the server (systemctl start imsd, or imsd run)");
		else
			doc_add(d, DOC_FAIL, "spool", cf->spool_dir, found, "the server cannot queue "
			    "mail there", "make the directories above it reachable (chmod o+x)");
		return;
	}
	d->server_running = queue_locked_by_other(cf->spool_dir);
	if ((dfd = open(cf->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(found, sizeof(found), "cannot be opened: %s", strerror(errno));
		doc_add(d, DOC_FAIL, "spool", cf->spool_dir, found, "doctor cannot judge a spool "
		    "it cannot read", "run imsd doctor as root or as the run user");
		return;
	}
	for (size_t i = 0; i < spool_layout_n; i++) {
		const struct spool_entry *e = &spool_layout[i];
		enum spool_verdict v;

		snprintf(p, sizeof(p), "%s%s%s", cf->spool_dir, e->name[0] ? "/" : "", e->name);
		if (e->name[0] == '\0' ? fstat(dfd, &sb) < 0 : fstatat(dfd, e->name, &sb,
		    AT_SYMLINK_NOFOLLOW) < 0) {
			if (e->kind == SPK_SOCKET && !d->server_running)
				continue;	/* the server's sockets exist while it runs */
			missing++;
			snprintf(found, sizeof(found), "missing: %s", e->role);
			if (d->server_running)
				problem(&w, DOC_FAIL, p, NULL, found, "restart the server: it makes "
				    "it at start (systemctl restart imsd)");
			else if (e->at_start)
				problem(&w, DOC_WARN, p, NULL, found, "start the server: it makes "
				    "it at start");
			continue;
		}
		w.objects++;
		v = spool_judge(e->kind, e->mode, sb.st_mode, sb.st_uid, d->run_uid, 0, why,
		    sizeof(why));
		if (v == SPV_MODE)
			snprintf(fix, sizeof(fix), "chmod %04o %s", e->mode, p);
		else if (v == SPV_FAIL && spool_kind_of(sb.st_mode) == (int)e->kind)
			fix_owner(d, p, e->kind == SPK_DIR, fix, sizeof(fix));
		else
			snprintf(fix, sizeof(fix), "remove it, then restart the server, which makes "
			    "%s: rm -r -- %s", e->role, p);
		if (v != SPV_OK) {
			char why2[400];
			snprintf(why2, sizeof(why2), "%s: %s", e->role, why);
			problem(&w, DOC_FAIL, p, &sb, why2, fix);
			continue;
		}
		if (e->kind == SPK_DIR && e->name[0] != '\0')
			walk_spool_dir(&w, dfd, p, e);
	}
	/* what imsd does not put there */
	{
		int fd = dup(dfd);
		DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;

		if (dir == NULL && fd >= 0)
			close(fd);
		while (dir != NULL && (de = readdir(dir)) != NULL) {
			if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || (de->d_name[1] == '.' &&
			    de->d_name[2] == '\0')))
				continue;
			if (spool_layout_find(de->d_name) != NULL ||
			    fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			w.objects++;
			snprintf(p, sizeof(p), "%s/%s", cf->spool_dir, de->d_name);
			if (sb.st_uid != d->run_uid && sb.st_uid != 0) {
				fix_owner(d, p, S_ISDIR(sb.st_mode), fix, sizeof(fix));
				problem(&w, DOC_FAIL, p, &sb, "not imsd's, and another user's", fix);
			} else {
				snprintf(fix, sizeof(fix), "remove it if nothing else needs it: rm -r "
				    "-- %s", p);
				problem(&w, DOC_WARN, p, &sb, "not something imsd keeps in its spool",
				    fix);
			}
		}
		if (dir != NULL)
			closedir(dir);
	}
	close(dfd);
	if (w.more > 0) {
		snprintf(found, sizeof(found), "%d more object%s like the ones above", w.more,
		    w.more == 1 ? "" : "s");
		doc_add(d, w.failed ? DOC_FAIL : DOC_WARN, "spool", cf->spool_dir, found,
		    "see the lines above", "the same repair for each");
	}
	if (w.cut) {
		snprintf(found, sizeof(found), "a directory holds more than %d objects: only the "
		    "first %d of it were looked at", SPOOL_WALK_MAX, SPOOL_WALK_MAX);
		doc_add(d, DOC_WARN, "spool", cf->spool_dir, found, "a huge queue is slow to scan "
		    "and hides other problems", "look at imsd queue");
	}
	if (w.problems == 0) {
		char own[128];
		snprintf(found, sizeof(found), "%lu objects as imsd makes them: the spool and its "
		    "directories owned by %s with modes %04o (top), %04o, %04o (maildrop); nothing "
		    "another user owns%s", w.objects, owner_name(d->run_uid, own, sizeof(own)),
		    SPOOL_MODE_TOP, SPOOL_MODE_PRIVATE, SPOOL_MODE_MAILDROP,
		    d->server_running ? "; a server holds its lock" : "");
		doc_add(d, DOC_OK, "spool", cf->spool_dir, found, NULL, NULL);
	}
	(void)missing;
}

/* Directories below mail_dir, to MAILDIR_DEPTH: each the run user's (maildir.c's rule). */
static void
walk_maildirs(struct walk *w, int dfd, const char *path, int depth)
{
	struct doctor *d = w->d;
	struct dirent *de;
	DIR *dir;
	int fd = dup(dfd);

	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir)) != NULL && !w->cut) {
		char p[4400], why[300], fix[600];
		struct stat sb;
		enum spool_verdict v;
		int sub;

		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || (de->d_name[1] == '.' &&
		    de->d_name[2] == '\0')))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN && de->d_type != DT_LNK)
			continue;	/* messages and index files are not judged */
		if (fstatat(dirfd(dir), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    (!S_ISDIR(sb.st_mode) && !S_ISLNK(sb.st_mode)))
			continue;
		if (++w->objects > MAILDIR_DIRS_MAX) {
			w->cut = 1;
			break;
		}
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		v = spool_judge(SPK_DIR, MAILDIR_MODE_DIR, sb.st_mode, sb.st_uid, d->run_uid, 0, why,
		    sizeof(why));
		if (v == SPV_FAIL) {
			if (S_ISLNK(sb.st_mode))
				snprintf(fix, sizeof(fix), "replace the link by a directory of %s: "
				    "imsd never delivers through a link", d->run_user);
			else
				fix_owner(d, p, 1, fix, sizeof(fix));
			problem(w, DOC_FAIL, p, &sb, why, fix);
			continue;
		}
		if (v == SPV_MODE) {
			snprintf(fix, sizeof(fix), "chmod %04o %s (unless a mailbox server reads it "
			    "through its group)", MAILDIR_MODE_DIR, p);
			problem(w, DOC_WARN, p, &sb, why, fix);
		}
		if (depth + 1 < MAILDIR_DEPTH && (sub = openat(dirfd(dir), de->d_name, O_RDONLY |
		    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
			walk_maildirs(w, sub, p, depth + 1);
			close(sub);
		}
	}
	closedir(dir);
}

static void
check_mailboxes(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;
	struct walk w = { .d = d, .check = "mailboxes" };
	char found[1200], why[300], fix[600], own[128];
	struct stat sb;
	enum spool_verdict v;
	int dfd;

	if (cf->mailbox_transport.kind != TRANSPORT_MAILDIR)
		return;		/* mail goes to the mailbox server, which owns its store */
	if ((dfd = open(cf->mail_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fstat(dfd, &sb) < 0) {
		if (errno == ENOENT)
			doc_add(d, DOC_OK, "mailboxes", cf->mail_dir, "does not exist yet: the first "
			    "local delivery (or the server's start) creates it", NULL, NULL);
		else {
			snprintf(found, sizeof(found), "cannot be opened: %s", strerror(errno));
			doc_add(d, DOC_FAIL, "mailboxes", cf->mail_dir, found, "local mail cannot be "
			    "delivered there", "make it and the directories above it reachable");
		}
		if (dfd >= 0)
			close(dfd);
		return;
	}
	v = spool_judge(SPK_DIR, MAILDIR_MODE_DIR, sb.st_mode, sb.st_uid, d->run_uid, 0, why,
	    sizeof(why));
	if (v == SPV_FAIL) {
		fix_owner(d, cf->mail_dir, 1, fix, sizeof(fix));
		problem(&w, DOC_FAIL, cf->mail_dir, &sb, why, fix);
	} else if (v == SPV_MODE) {
		snprintf(fix, sizeof(fix), "chmod %04o %s", MAILDIR_MODE_DIR, cf->mail_dir);
		problem(&w, DOC_WARN, cf->mail_dir, &sb, why, fix);
	}
	walk_maildirs(&w, dfd, cf->mail_dir, 0);
	close(dfd);
	if (w.more > 0) {
		snprintf(found, sizeof(found), "%d more director%s like the ones above", w.more,
		    w.more == 1 ? "y" : "ies");
		doc_add(d, w.failed ? DOC_FAIL : DOC_WARN, "mailboxes", cf->mail_dir, found,
		    "see the lines above", "the same repair for each");
	}
	if (w.cut) {
		snprintf(found, sizeof(found), "more than %d directories: only those were looked "
		    "at", MAILDIR_DIRS_MAX);
		doc_add(d, DOC_WARN, "mailboxes", cf->mail_dir, found, "the rest may hide a "
		    "problem", "check the rest by hand (find DIR -type d ! -user USER)");
	}
	if (w.problems == 0) {
		snprintf(found, sizeof(found), "%lu mailbox directories, all owned by %s", w.objects,
		    owner_name(d->run_uid, own, sizeof(own)));
		doc_add(d, DOC_OK, "mailboxes", cf->mail_dir, found, NULL, NULL);
	}
}

static void
check_free_space(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;
	unsigned long long minfree = cf->queue_minfree ? cf->queue_minfree :
	    3ULL * cf->message_size_limit, avail;
	char found[600], fix[600];
	struct statvfs vf;

	if (statvfs(cf->spool_dir, &vf) < 0)
		return;
	avail = (unsigned long long)vf.f_bavail * vf.f_frsize;
	snprintf(found, sizeof(found), "%llu MiB free for the spool; queue_minfree keeps %llu MiB",
	    avail >> 20, minfree >> 20);
	snprintf(fix, sizeof(fix), "free space on the file system of %s (or lower "
	    "queue_minfree, or message_size_limit)", cf->spool_dir);
	if (avail < minfree)
		doc_add(d, DOC_FAIL, "spool.space", cf->spool_dir, found, "below queue_minfree "
		    "every MAIL gets 452 4.3.1: no mail is accepted", fix);
	else if (avail < 4 * minfree)
		doc_add(d, DOC_WARN, "spool.space", cf->spool_dir, found, "close to queue_minfree, "
		    "below which every MAIL gets 452 4.3.1", fix);
	else
		doc_add(d, DOC_OK, "spool.space", cf->spool_dir, found, NULL, NULL);
}

void
doc_check_spool(struct doctor *d)
{
	if (!d->run_user_known) {
		doc_add(d, DOC_WARN, "spool", d->c->conf.spool_dir, "the user the server runs as "
		    "is not known, so owners cannot be judged", "see config above",
		    "create the run user (adduser --system --group --no-create-home imsd)");
		return;
	}
	check_spool(d);
	check_free_space(d);
	check_mailboxes(d);
}
