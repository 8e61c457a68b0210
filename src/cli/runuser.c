/*
 * runuser — the configuration as the run user reads it (imsd check as root, imsd doctor);
 * see cli.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"

/* The child's side: become pv, load, check; what went wrong is written to fd. */
static void __attribute__((noreturn))
as_user_child(const char *path, const struct cfg *c, int check_dirs, const struct privs *pv,
    int fd)
{
	char err[1024], msg[1400];
	struct cfg *as;
	int n = 0;

	if (initgroups(pv->name, pv->gid) < 0 || setgid(pv->gid) < 0 || setuid(pv->uid) < 0) {
		n = snprintf(msg, sizeof(msg), "check: cannot become %s: %s", pv->name,
		    strerror(errno));
	} else if ((as = cfg_load(path, 0, err, sizeof(err))) == NULL) {
		n = snprintf(msg, sizeof(msg), "%s (read as %s, uid %ld: the server reads its files "
		    "as this user; make them readable by it, e.g. chgrp %s FILE && chmod 0640 "
		    "FILE)", err, pv->name, (long)pv->uid, pv->name);
	} else {
		const char *what[2] = { "spool_dir", "mail_dir" };
		const char *dirs[2] = { c->conf.spool_dir, c->conf.mail_dir };
		cfg_unref(as);
		/* a directory not made yet is made by the server at start, as root */
		for (int i = 0; check_dirs && i < 2 && n == 0; i++)
			if ((access(dirs[i], F_OK) == 0 || errno != ENOENT) &&
			    privs_check_dir(what[i], dirs[i], err, sizeof(err)) < 0)
				n = snprintf(msg, sizeof(msg), "%s, which is %s", err, pv->name);
	}
	if (n > 0 && write(fd, msg, strlen(msg)) < 0)
		_exit(1);
	_exit(n > 0 ? 1 : 0);
}

int
cli_as_run_user(const char *path, const struct cfg *c, int check_dirs, struct privs *pv,
    char *msg, size_t msglen)
{
	char err[1024];
	size_t got = 0;
	ssize_t r;
	pid_t pid;
	int st, p[2];

	msg[0] = '\0';
	if (privs_plan(&c->conf, pv, err, sizeof(err)) < 0) {
		/* a run_user written in the file is the file's error; the default user missing
		 * on this machine (a build host) is the machine's: said, not failed */
		snprintf(msg, msglen, "%s", err);
		memset(pv, 0, sizeof(*pv));
		return c->conf.set[CK_RUN_USER] ? CLI_RUNUSER_FAIL : CLI_RUNUSER_NOTE;
	}
	if (!pv->switch_user)
		return CLI_RUNUSER_OK;
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(msg, msglen, "check: pipe: %s", strerror(errno));
		return CLI_RUNUSER_FAIL;
	}
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0) {
		snprintf(msg, msglen, "check: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return CLI_RUNUSER_FAIL;
	}
	if (pid == 0) {
		close(p[0]);
		as_user_child(path, c, check_dirs, pv, p[1]);
	}
	close(p[1]);
	while (msglen > 1 && got < msglen - 1 &&
	    ((r = read(p[0], msg + got, msglen - 1 - got)) > 0 || (r < 0 && errno == EINTR)))
		if (r > 0)
			got += (size_t)r;
	msg[got] = '\0';
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			snprintf(msg, msglen, "check: waitpid: %s", strerror(errno));
			return CLI_RUNUSER_FAIL;
		}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return CLI_RUNUSER_OK;
	if (msg[0] == '\0')
		snprintf(msg, msglen, "check: the check as %s ended abnormally (status %d)",
		    pv->name, st);
	return CLI_RUNUSER_FAIL;
}
