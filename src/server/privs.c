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

/*
 * Give one object (and what is below it) to the run user. Root does this in directories
 * the run user could write to before, so nothing is done by name after a check: the object
 * is opened (O_PATH, never following a link), checked on the descriptor, and changed on
 * the descriptor. A file with several hard links is left alone: it could be a link to
 * /etc/shadow planted there to be given away.
 */
static int
own_at(const struct privs *p, int at, const char *name, const char *shown, int depth,
    char *err, size_t errlen)
{
	struct stat st;
	int fd, ret = 0;

	if ((fd = openat(at, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		E("%s: %s", shown, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		E("%s: %s", shown, strerror(errno));
		close(fd);
		return -1;
	}
	if (S_ISLNK(st.st_mode) || (!S_ISDIR(st.st_mode) && st.st_nlink > 1)) {
		close(fd);	/* never followed, never given away */
		return 0;
	}
	if ((st.st_uid != p->uid || st.st_gid != p->gid) &&
	    fchownat(fd, "", p->uid, p->gid, AT_EMPTY_PATH) < 0) {
		E("%s: cannot give it to %s: %s", shown, p->name, strerror(errno));
		close(fd);
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
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", shown, de->d_name);
			ret = own_at(p, dirfd(d), de->d_name, sub, depth - 1, err, errlen);
		}
		if (d != NULL)
			closedir(d);
	}
	close(fd);
	return ret;
}

int
privs_own(const struct privs *p, const char *path, int depth, char *err, size_t errlen)
{
	if (!p->switch_user)
		return 0;
	return own_at(p, AT_FDCWD, path, path, depth, err, errlen);
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

int
privs_check_dir(const char *what, const char *dir, char *err, size_t errlen)
{
	if (access(dir, R_OK | W_OK | X_OK) == 0)
		return 0;
	E("%s %s: %s for uid %ld (check the modes of the directory and of every directory above "
	    "it)", what, dir, strerror(errno), (long)geteuid());
	return -1;
}
