/*
 * privs — the switch from root to run_user; see privs.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "server/privs.h"
#include "util/log.h"

#define E(...) snprintf(err, errlen, __VA_ARGS__)

static const char how_to_create[] =
    "create it with `adduser --system --group --no-create-home imsd` (Debian) or "
    "`useradd --system --user-group --no-create-home --shell /usr/sbin/nologin imsd`, "
    "or set run_user to an existing unprivileged user (run_user = root serves as root: "
    "not recommended)";

int
privs_plan(const struct conf *cf, struct privs *p, char *err, size_t errlen)
{
	const char *want = cf->run_user ? cf->run_user : "imsd";
	int written = cf->set[CK_RUN_USER];
	struct passwd *pw;

	memset(p, 0, sizeof(*p));
	if (geteuid() != 0) {
		/* Not root: we are who we are. A run_user that names someone else cannot be
		 * honoured, and saying nothing would run the server as the wrong user. */
		pw = getpwuid(geteuid());
		if (written && (pw == NULL || strcmp(pw->pw_name, want) != 0)) {
			E("%s:%u: run_user: %s, but imsd was started as %s (uid %ld); only root can "
			    "switch users: start it as root, or as %s, or set run_user = %s",
			    cf->source, cf->set_line[CK_RUN_USER], want, pw ? pw->pw_name : "?",
			    (long)geteuid(), want, pw ? pw->pw_name : "that user");
			return -1;
		}
		return 0;
	}
	if (strcmp(want, "root") == 0) {
		if (!written) {
			E("run_user: root is only used when written in the configuration");
			return -1;
		}
		p->stay_root = 1;
		return 0;
	}
	if ((pw = getpwnam(want)) == NULL && !written && cf->embedded) {
		/* make run as root on a fresh host: serve at once, as nobody */
		pw = getpwnam("nobody");
		if (pw != NULL)
			snprintf(p->name, sizeof(p->name), "nobody");
	}
	if (pw == NULL) {
		E("%s:%u: run_user: no user named %s on this system; %s", cf->source,
		    written ? cf->set_line[CK_RUN_USER] : 0, want, how_to_create);
		return -1;
	}
	if (pw->pw_uid == 0) {
		E("%s:%u: run_user: %s has uid 0; name an unprivileged user (or write run_user = "
		    "root to serve as root, not recommended)", cf->source,
		    cf->set_line[CK_RUN_USER], want);
		return -1;
	}
	p->switch_user = 1;
	if (p->name[0] == '\0')
		snprintf(p->name, sizeof(p->name), "%s", pw->pw_name);
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	return 0;
}

/* Is gid one of the run user's groups (primary or supplementary)? */
static int
in_groups(const struct privs *p, gid_t gid)
{
	gid_t groups[256];
	int n = (int)(sizeof(groups) / sizeof(groups[0]));

	if (gid == p->gid)
		return 1;
	if (getgrouplist(p->name, p->gid, groups, &n) < 0)
		return 1;	/* too many to list: assume the worst */
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return 1;
	return 0;
}

/*
 * Could the run user have put the entry name into the directory dfd (whose status is dir),
 * or replaced it: a link planted there for root to follow? It owns the directory, or may
 * write to it (group or others) without the sticky bit; in a sticky directory it may still
 * remove and replace its own entries, so only an existing link of another owner is safe.
 */
static int
user_can_change(const struct privs *p, int dfd, const struct stat *dir, const char *name)
{
	struct stat st;

	if (dir->st_uid == p->uid)
		return 1;
	if (!(dir->st_mode & S_IWOTH) && !((dir->st_mode & S_IWGRP) && in_groups(p, dir->st_gid)))
		return 0;
	if (!(dir->st_mode & S_ISVTX))
		return 1;
	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode) ||
	    st.st_uid == p->uid;
}

/* Open (create) a directory the configuration names; see privs.h. */
int
privs_open_dir(const struct privs *p, const char *path, int create, char *err, size_t errlen)
{
	char buf[4096], *save = NULL, *comp, *next;
	size_t len = strlen(path);
	int fd, nfd;

	if (len == 0 || len >= sizeof(buf)) {
		E("%s: %s", path, strerror(len ? ENAMETOOLONG : ENOENT));
		return -1;
	}
	memcpy(buf, path, len + 1);
	if ((fd = open(path[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		E("%s: %s", path[0] == '/' ? "/" : ".", strerror(errno));
		return -1;
	}
	for (comp = strtok_r(buf, "/", &save); comp != NULL; comp = next) {
		struct stat dir;
		int guard = 0;

		next = strtok_r(NULL, "/", &save);
		if (p->switch_user) {
			if (fstat(fd, &dir) < 0) {
				E("%s: %s", path, strerror(errno));
				close(fd);
				return -1;
			}
			guard = user_can_change(p, fd, &dir, comp);
		}
		/* what root makes on the way may be passed through by the run user (0711),
		 * the directory itself is private (0700) until it is given away */
		if (create && mkdirat(fd, comp, next != NULL ? 0711 : 0700) < 0 && errno != EEXIST) {
			E("%s: cannot create %s: %s", path, comp, strerror(errno));
			close(fd);
			return -1;
		}
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (guard ? O_NOFOLLOW : 0));
		if (nfd < 0 && guard && (errno == ELOOP || errno == ENOTDIR)) {
			E("%s: %s is not a directory but a symbolic link or a file, in a directory "
			    "that %s can change: root does not follow it; remove it, or name a "
			    "directory of root's in the configuration", path, comp, p->name);
			close(fd);
			return -1;
		}
		if (nfd < 0) {
			E("%s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
		fd = nfd;
	}
	return fd;
}

/*
 * Give one object (and what is below it) to the run user. Root does this in directories
 * the run user could write to before, so nothing is done by name: every object is opened
 * (O_PATH, never following a link), checked on the descriptor, and changed on the
 * descriptor. A link is never followed, and a file with several hard links is left alone
 * (it could be a link to /etc/shadow planted to be given away). Below the top only what
 * root or the top's previous owner made is given: a file of a third user (a maildrop
 * user's) is not, since its owner may still hold it open for writing.
 */
static int
own_fd(const struct privs *p, int fd, const char *shown, int depth, int top, uid_t prev,
    char *err, size_t errlen)
{
	struct stat st;
	char lv[LOG_VALUE_MAX];
	int ret = 0;

	if (fstat(fd, &st) < 0) {
		E("%s: %s", shown, strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode) || (!S_ISDIR(st.st_mode) && st.st_nlink > 1)) {
		log_warn("event=privileges-skipped path=%s reason=\"%s\" effect=\"not followed, "
		    "not given to %s\"", log_value(lv, sizeof(lv), shown, strlen(shown)),
		    S_ISLNK(st.st_mode) ? "a symbolic link" : "a file with several links", p->name);
		return 0;
	}
	if (top)
		prev = st.st_uid;
	if (!top && st.st_uid != 0 && st.st_uid != prev && st.st_uid != p->uid) {
		log_warn("event=privileges-skipped path=%s reason=\"owned by uid %ld\" "
		    "effect=\"not given to %s\"", log_value(lv, sizeof(lv), shown, strlen(shown)),
		    (long)st.st_uid, p->name);
		return 0;
	}
	if ((st.st_uid != p->uid || st.st_gid != p->gid) &&
	    fchownat(fd, "", p->uid, p->gid, AT_EMPTY_PATH) < 0) {
		E("%s: cannot give it to %s: %s", shown, p->name, strerror(errno));
		return -1;
	}
	/* A sticky directory (spool_dir/maildrop, 1733) holds files that belong to whoever
	 * made them: their owner is the submitting user (local.c); never given away. */
	if (S_ISDIR(st.st_mode) && depth > 0 && !(st.st_mode & S_ISVTX)) {
		int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
		struct dirent *de;
		if (d == NULL && dfd >= 0)
			close(dfd);
		while (d != NULL && ret == 0 && (de = readdir(d)) != NULL) {
			char sub[4096];
			int efd;
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", shown, de->d_name);
			if ((efd = openat(dirfd(d), de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0) {
				if (errno == ENOENT)
					continue;
				E("%s: %s", sub, strerror(errno));
				ret = -1;
				break;
			}
			ret = own_fd(p, efd, sub, depth - 1, 0, prev, err, errlen);
			close(efd);
		}
		if (d != NULL)
			closedir(d);
	}
	return ret;
}

int
privs_own_fd(const struct privs *p, int fd, const char *shown, int depth, char *err,
    size_t errlen)
{
	if (!p->switch_user)
		return 0;
	return own_fd(p, fd, shown, depth, 1, 0, err, errlen);
}

int
privs_own(const struct privs *p, const char *path, int depth, char *err, size_t errlen)
{
	int fd, r;

	if (!p->switch_user)
		return 0;
	if ((fd = privs_open_dir(p, path, 0, err, errlen)) < 0)
		return -1;
	r = own_fd(p, fd, path, depth, 1, 0, err, errlen);
	close(fd);
	return r;
}

int
privs_drop(const struct privs *p, char *err, size_t errlen)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (p->switch_user) {
		if (initgroups(p->name, p->gid) < 0 || setgid(p->gid) < 0 || setuid(p->uid) < 0) {
			E("cannot become %s (uid %ld): %s", p->name, (long)p->uid, strerror(errno));
			return -1;
		}
		/* For good: a process that could go back would not have dropped anything. */
		if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0) {
			E("could become root again after switching to %s: refusing to serve", p->name);
			return -1;
		}
	}
	if (p->stay_root)
		return 0;
	/* No capability of any kind: the listeners are bound (CAP_NET_BIND_SERVICE, kept by
	 * systemd's AmbientCapabilities, is not needed again; a reload cannot bind anew). */
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0) {
		E("cannot clear capabilities: %s", strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		E("cannot set no_new_privs: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Take back a directory an earlier version gave away; see privs.h. */
int
privs_reclaim(const struct privs *p, const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (!p->switch_user)
		return 0;
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : (E("%s: %s", path, strerror(errno)), -1);
	/* root's (again), and passable by the run user on its way to the spool: the first
	 * start may have made it 0700 (the self-signed certificate's var/tls) */
	if (fstat(fd, &st) < 0 || (st.st_uid == p->uid && fchown(fd, 0, 0) < 0) ||
	    ((st.st_mode & 0711) != 0711 && fchmod(fd, (st.st_mode & 0755) | 0711) < 0)) {
		E("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Make the directory at/name root's and passable (0711 at least); ENOENT is fine. The
 * descriptor in *out (or -1). 0, or -1 with err. */
static int
root_dir(int at, const char *name, const char *shown, int *out, char *err, size_t errlen)
{
	struct stat st;
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	*out = -1;
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0) {
		E("%s: %s", shown, errno == ELOOP || errno == ENOTDIR ? "not a directory but a "
		    "symbolic link or a file: root does not follow it; remove it" : strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || (st.st_uid != 0 && fchown(fd, 0, 0) < 0) ||
	    ((st.st_mode & 0711) != 0711 && fchmod(fd, (st.st_mode & 0755) | 0711) < 0)) {
		E("%s: %s", shown, strerror(errno));
		close(fd);
		return -1;
	}
	*out = fd;
	return 0;
}

static const char *const tls_files[] = { "cert.pem", "key.pem" };

/* The embedded default as root, before anything is read; see privs.h. */
int
privs_embedded_prepare(char *err, size_t errlen)
{
	int vfd, tfd, r = 0;

	if (geteuid() != 0)
		return 0;
	if (root_dir(AT_FDCWD, "var", "var", &vfd, err, errlen) < 0)
		return -1;
	if (vfd < 0)
		return 0;
	if (root_dir(vfd, "tls", "var/tls", &tfd, err, errlen) < 0) {
		close(vfd);
		return -1;
	}
	for (size_t i = 0; tfd >= 0 && r == 0 && i < sizeof(tls_files) / sizeof(tls_files[0]); i++) {
		struct stat st;
		if (fstatat(tfd, tls_files[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
			E("var/tls/%s: not a plain file (%s): root reads the certificate and key "
			    "there before it switches users; remove it", tls_files[i],
			    S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISREG(st.st_mode) ?
			    "several links" : "not a regular file");
			r = -1;
		}
	}
	if (tfd >= 0)
		close(tfd);
	close(vfd);
	return r;
}

/* The embedded certificate and key, readable by the run user's group; see privs.h. */
int
privs_share_tls(const struct privs *p, char *err, size_t errlen)
{
	int tfd;

	if (!p->switch_user)
		return 0;
	if ((tfd = open("var/tls", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : (E("var/tls: %s", strerror(errno)), -1);
	if (fchmod(tfd, 0711) < 0) {	/* passable: the files themselves say who reads */
		E("var/tls: %s", strerror(errno));
		close(tfd);
		return -1;
	}
	for (size_t i = 0; i < sizeof(tls_files) / sizeof(tls_files[0]); i++) {
		struct stat st;
		int fd = openat(tfd, tls_files[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		    (fchownat(fd, "", 0, p->gid, AT_EMPTY_PATH) < 0 ||
		    fchmodat(tfd, tls_files[i], i == 0 ? 0644 : 0640, 0) < 0)) {
			E("var/tls/%s: %s", tls_files[i], strerror(errno));
			close(fd);
			close(tfd);
			return -1;
		}
		close(fd);
	}
	close(tfd);
	return 0;
}

/* A command run by root on the spool: become its owner; see privs.h. */
int
privs_as_spool_owner(const char *spool_dir, char *err, size_t errlen)
{
	struct stat st;

	if (geteuid() != 0)
		return 0;
	if (stat(spool_dir, &st) < 0) {
		if (errno == ENOENT)
			return 0;	/* nothing there yet: what is made is root's */
		E("%s: %s", spool_dir, strerror(errno));
		return -1;
	}
	if (st.st_uid == 0)
		return 0;
	if (setgroups(0, NULL) < 0 || setgid(st.st_gid) < 0 || setuid(st.st_uid) < 0) {
		E("%s: cannot become its owner (uid %ld): %s", spool_dir, (long)st.st_uid,
		    strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0) {
		E("could become root again after switching to uid %ld", (long)st.st_uid);
		return -1;
	}
	return 0;
}

int
privs_check_dir(const char *what, const char *dir, char *err, size_t errlen)
{
	if (access(dir, R_OK | W_OK | X_OK) == 0)
		return 0;
	E("%s %s: %s for uid %ld (check the modes of the directory and of every directory above "
	    "it)", what, dir, strerror(errno), (long)geteuid());
	return -1;
}
