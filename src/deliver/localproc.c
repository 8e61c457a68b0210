/*
 * localproc — the privileged local delivery process; see localproc.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deliver/localproc.h"
#include "deliver/mbox.h"

#define E(...) snprintf(err, errlen, __VA_ARGS__)
#define SPOOL		"/var/mail"
#define CHILDREN_MAX	16
#define REPLY_TIMEOUT_MS (60 * 1000)	/* two 10 s lock waits and a large write */

struct localproc {
	int fd;
	pid_t pid;
};

static int
caps_set(uint32_t bits)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	d[0].effective = d[0].permitted = bits;
	return (int)syscall(SYS_capset, &h, d);
}

int
localproc_can_switch(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	uint32_t need = (1u << CAP_SETUID) | (1u << CAP_SETGID);

	if (syscall(SYS_capget, &h, d) < 0)
		return 0;
	return (d[0].permitted & need) == need;
}

static void
reply(int fd, enum lda_status st, const char *reason)
{
	char buf[LDA_REASON_MAX + 16];
	int n = lda_reply_encode(st, reason, buf, sizeof(buf));

	if (n > 0 && send(fd, buf, (size_t)n, MSG_NOSIGNAL) < 0) {
		/* the queue manager gave up waiting: it retries the delivery */
	}
}

/* One delivery, in a child of its own: become the user, write, reply, exit. */
static void
deliver_one(const char *req, size_t reqlen, int msg_fd, int reply_fd, gid_t mail_gid)
{
	struct lda_request r;
	struct passwd pw, *pwp = NULL;
	char why[300], pwbuf[4096], path[sizeof(SPOOL) + 80];
	int ret;

	if (lda_request_decode(req, reqlen, &r, why, sizeof(why)) < 0) {
		char msg[400];
		snprintf(msg, sizeof(msg), "invalid request: %s", why);
		reply(reply_fd, LDA_PERM, msg);
		return;
	}
	if (r.mailbox != LDA_MBOX) {
		reply(reply_fd, LDA_PERM, "only /var/mail/USER mailboxes are delivered by this "
		    "version");
		return;
	}
	if (getpwnam_r(r.user, &pw, pwbuf, sizeof(pwbuf), &pwp) != 0 || pwp == NULL) {
		snprintf(why, sizeof(why), "no system user named %s", r.user);
		reply(reply_fd, LDA_PERM, why);
		return;
	}
	/* the user, with group mail for the dot lock in /var/mail (root:mail 2775), and no
	 * capability left: from here on this process can do what the user can, nothing more */
	if ((mail_gid != (gid_t)-1 ? setgroups(1, &mail_gid) : setgroups(0, NULL)) < 0 ||
	    setgid(pw.pw_gid) < 0 || setuid(pw.pw_uid) < 0 || caps_set(0) < 0) {
		snprintf(why, sizeof(why), "cannot become %s (uid %ld): %s", r.user,
		    (long)pw.pw_uid, strerror(errno));
		reply(reply_fd, LDA_TEMP, why);
		return;
	}
	umask(077);
	snprintf(path, sizeof(path), SPOOL "/%s", r.user);
	ret = mbox_deliver(path, r.sender, r.recipient, msg_fd, r.offset, r.length, time(NULL),
	    why, sizeof(why));
	reply(reply_fd, ret == 0 ? LDA_OK : ret == -2 ? LDA_PERM : LDA_TEMP, why);
}

static void
serve(int fd, gid_t mail_gid)
{
	int children = 0;

	for (;;) {
		char buf[LDA_REQUEST_MAX + 1];
		char cbuf[CMSG_SPACE(2 * sizeof(int))];
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			.msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm;
		int fds[2] = { -1, -1 }, nfds = 0;
		ssize_t n;

		while (children > 0 && waitpid(-1, NULL, children >= CHILDREN_MAX ? 0 : WNOHANG) > 0)
			children--;
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);	/* the server is gone */
		for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
				size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				for (size_t i = 0; i < k; i++) {
					int x;
					memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
					if (nfds < 2)
						fds[nfds++] = x;
					else
						close(x);
				}
			}
		if (nfds == 2 && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
			pid_t pid = fork();
			if (pid == 0) {
				deliver_one(buf, (size_t)n, fds[0], fds[1], mail_gid);
				_exit(0);
			}
			if (pid > 0)
				children++;
			else
				reply(fds[1], LDA_TEMP, "the local delivery process cannot fork");
		} else if (nfds == 2)
			reply(fds[1], LDA_PERM, "invalid request: too long");
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
	}
}

struct localproc *
localproc_start(int as_root, uid_t uid, gid_t gid, const char *name, char *err, size_t errlen)
{
	uint32_t keep = (1u << CAP_SETUID) | (1u << CAP_SETGID);
	struct localproc *lp;
	struct group *gr = getgrnam("mail");
	gid_t mail_gid = gr != NULL ? gr->gr_gid : (gid_t)-1;
	int sv[2];
	pid_t pid;

	if (!as_root && !localproc_can_switch()) {
		E("the local delivery process needs CAP_SETUID and CAP_SETGID (started as root, "
		    "or under systemd with AmbientCapabilities=CAP_SETUID CAP_SETGID) to write "
		    "system users' mailboxes; this process has neither");
		return NULL;
	}
	if ((lp = calloc(1, sizeof(*lp))) == NULL) {
		E("out of memory");
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		E("local delivery process: socketpair: %s", strerror(errno));
		free(lp);
		return NULL;
	}
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0) {
		E("local delivery process: fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		free(lp);
		return NULL;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_IGN);
		signal(SIGCHLD, SIG_DFL);
		prctl(PR_SET_NAME, "imsd-local", 0, 0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
		unsetenv("NOTIFY_SOCKET");	/* only the server speaks to systemd */
		if (dup2(sv[1], 3) < 0)
			_exit(1);
		for (int f = 4; f < 65536; f++)	/* nothing of the server's: listeners, spool */
			close(f);
		if (as_root) {
			if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || initgroups(name, gid) < 0 ||
			    setgid(gid) < 0 || setuid(uid) < 0) {
				fprintf(stderr, "imsd: local delivery process: cannot become %s: %s\n",
				    name, strerror(errno));
				_exit(1);
			}
			prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
		}
		/* two capabilities and nothing else, for good: no ambient set (nothing is
		 * executed), no_new_privs */
		prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
		if (caps_set(keep) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
			fprintf(stderr, "imsd: local delivery process: capabilities: %s\n",
			    strerror(errno));
			_exit(1);
		}
		serve(3, mail_gid);
		_exit(0);
	}
	close(sv[1]);
	lp->fd = sv[0];
	lp->pid = pid;
	return lp;
}

enum lda_status
localproc_deliver(struct localproc *lp, const struct lda_request *r, int msg_fd, char *reason,
    size_t rlen)
{
	char buf[LDA_REQUEST_MAX + 1], cbuf[CMSG_SPACE(2 * sizeof(int))], rb[LDA_REASON_MAX + 16];
	struct iovec iov;
	struct msghdr mh;
	struct cmsghdr *cm;
	struct pollfd pfd;
	enum lda_status st;
	int rp[2], fds[2], n;
	ssize_t got;

	if ((n = lda_request_encode(r, buf, sizeof(buf))) < 0) {
		snprintf(reason, rlen, "local delivery: the request does not fit the protocol");
		return LDA_PERM;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rp) < 0) {
		snprintf(reason, rlen, "local delivery: socketpair: %s", strerror(errno));
		return LDA_TEMP;
	}
	memset(&mh, 0, sizeof(mh));
	memset(cbuf, 0, sizeof(cbuf));
	iov.iov_base = buf;
	iov.iov_len = (size_t)n;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
	fds[0] = msg_fd;
	fds[1] = rp[1];
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	if (sendmsg(lp->fd, &mh, MSG_NOSIGNAL) < 0) {
		snprintf(reason, rlen, "the local delivery process is not running (%s)",
		    strerror(errno));
		close(rp[0]);
		close(rp[1]);
		return LDA_TEMP;
	}
	close(rp[1]);
	pfd.fd = rp[0];
	pfd.events = POLLIN;
	while ((n = poll(&pfd, 1, REPLY_TIMEOUT_MS)) < 0 && errno == EINTR)
		;
	got = n > 0 ? recv(rp[0], rb, sizeof(rb) - 1, 0) : -1;
	close(rp[0]);
	if (got <= 0) {
		snprintf(reason, rlen, "the local delivery process did not answer%s",
		    n == 0 ? " within 60 s" : "");
		return LDA_TEMP;
	}
	if (lda_reply_decode(rb, (size_t)got, &st, reason, rlen) < 0) {
		snprintf(reason, rlen, "the local delivery process answered nonsense");
		return LDA_TEMP;
	}
	return st;
}

pid_t
localproc_pid(const struct localproc *lp)
{
	return lp->pid;
}

void
localproc_stop(struct localproc *lp)
{
	if (lp == NULL)
		return;
	close(lp->fd);
	while (waitpid(lp->pid, NULL, 0) < 0 && errno == EINTR)
		;
	free(lp);
}
