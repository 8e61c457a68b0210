/*
 * sendmail — the sendmail(1) client; see sendmail.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cli/sendmail.h"
#include "conf/conf.h"
#include "net/submit.h"
#include "proto/sendmail.h"
#include "server/local.h"

#define SM_INPUT_SLACK	(64 * 1024)	/* input beyond message_size_limit we still read:
					 * the headers we add and the LF to CRLF growth are
					 * judged by the server, not guessed here */

#define SM_BS_LINGER	30	/* -bs: seconds to wait for replies after stdin ended */

static const char sm_usage[] =
    "usage: sendmail [-c FILE] [-t] [-i] [-f SENDER] [-F NAME] [-v] [ADDRESS...]\n"
    "       sendmail -bs | -bp | -bv ADDRESS... | -q     (mailq = sendmail -bp)\n";

struct rcpts {
	char **v;
	size_t n;
};

static int
rcpts_add(void *arg, const char *addr)
{
	struct rcpts *r = arg;
	char **nv;

	if (r->n >= SM_RCPTS_MAX || (nv = realloc(r->v, (r->n + 1) * sizeof(*nv))) == NULL)
		return -1;
	r->v = nv;
	if ((r->v[r->n] = strdup(addr)) == NULL)
		return -1;
	r->n++;
	return 0;
}

static void
rcpts_free(struct rcpts *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One recipient once, however many headers and arguments name it. */
static void
rcpts_unique(struct rcpts *r)
{
	size_t k = 0;

	if (r->n < 2)
		return;
	qsort(r->v, r->n, sizeof(*r->v), cmp_str);
	for (size_t i = 0; i < r->n; i++) {
		if (k > 0 && strcmp(r->v[k - 1], r->v[i]) == 0) {
			free(r->v[i]);
			continue;
		}
		r->v[k++] = r->v[i];
	}
	r->n = k;
}

/* The whole of stdin, up to max bytes. 0 ok; 1 too large; -1 read error. */
static int
read_stdin(size_t max, char **out, size_t *outlen)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		return -1;
	for (;;) {
		if (len == cap) {
			char *nb;
			if (cap > max) {
				free(buf);
				return 1;
			}
			cap *= 2;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				return -1;
			}
			buf = nb;
		}
		ssize_t r = read(0, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max) {
			free(buf);
			return 1;
		}
	}
	*out = buf;
	*outlen = len;
	return 0;
}

static const char *
qualify_domain(const struct conf *c)
{
	return c->nlocal_domains > 0 ? c->local_domains[0] : c->hostname;
}

/* The envelope sender: -f as given (qualified; "" or "<>" is the null sender), else the
 * user who runs us. 0 ok, -1 bad. */
static int
make_sender(const char *f, const struct conf *c, char *out, size_t outlen)
{
	char tmp[SM_ADDR_MAX + 1];
	size_t n;

	if (f == NULL) {
		struct passwd *pw = getpwuid(getuid());
		if (pw != NULL)
			snprintf(tmp, sizeof(tmp), "%s", pw->pw_name);
		else
			snprintf(tmp, sizeof(tmp), "uid%ld", (long)getuid());
	} else {
		n = strlen(f);
		if (n >= 2 && f[0] == '<' && f[n - 1] == '>') {
			f++;
			n -= 2;
		}
		if (n > SM_ADDR_MAX)
			return -1;
		memcpy(tmp, f, n);
		tmp[n] = '\0';
		if (n == 0) {
			out[0] = '\0';
			return 0;
		}
	}
	if (strchr(tmp, '@') == NULL)
		snprintf(out, outlen, "%s@%s", tmp, qualify_domain(c));
	else
		snprintf(out, outlen, "%s", tmp);
	return sm_addr_ok(out) ? 0 : -1;
}

/* "From: Full Name <addr>", the name quoted when it needs to be. */
static void
make_from(const char *name, const char *addr, char *out, size_t outlen)
{
	char q[512];
	size_t k = 0;
	int plain = 1;

	if (name == NULL || name[0] == '\0') {
		snprintf(out, outlen, "From: <%s>", addr);
		return;
	}
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == ' ' || strchr("!#$%&'*+-/=?^_`{|}~", *p)))
			plain = 0;
	if (plain) {
		snprintf(out, outlen, "From: %s <%s>", name, addr);
		return;
	}
	q[k++] = '"';
	for (const char *p = name; *p && k + 3 < sizeof(q); p++) {
		if ((unsigned char)*p < 32 || *p == 127)
			continue;
		if (*p == '"' || *p == '\\')
			q[k++] = '\\';
		q[k++] = *p;
	}
	q[k++] = '"';
	q[k] = '\0';
	snprintf(out, outlen, "From: %s <%s>", q, addr);
}

/*
 * The server's socket, spool_dir/submit. The spool belongs to the user imsd serves as,
 * who could replace the socket with a link to another program's socket: the peer must
 * be a process of the spool's owner (the server runs as that user), or the socket is not
 * used. fd, or -1 (errno; EPERM for another peer, said on stderr).
 */
static int
connect_submit(const struct conf *c)
{
	char path[4200];
	struct stat st;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", c->spool_dir, LOCAL_SOCKET);
	if (stat(c->spool_dir, &st) < 0)
		return -1;
	if ((fd = submit_connect(path)) < 0)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || len != sizeof(cr) ||
	    cr.uid != st.st_uid) {
		fprintf(stderr, "sendmail: %s is answered by uid %ld, not by the owner of %s "
		    "(uid %ld): not used\n", path, len == sizeof(cr) ? (long)cr.uid : -1L,
		    c->spool_dir, (long)st.st_uid);
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/*
 * No server: leave the message in the maildrop for the server to pick up. Written under a
 * random name, mode 0600 until it is complete and on disk, then 0644 (the pickup's sign that
 * it may take it). Everything by descriptor: the maildrop is in the run user's spool, and
 * root (cron, say) writes here too; a maildrop that is a link, not a sticky directory of
 * the spool's owner, is refused. 0 ok; -1 with err.
 */
static int
maildrop_write(const struct conf *c, const char *sender, char **rcpts, size_t n,
    const char *data, size_t len, char *err, size_t errlen)
{
	char path[4200], name[64], hdr[SM_ADDR_MAX + 8];
	unsigned char rnd[16];
	struct stat sst, st;
	FILE *fp;
	int fd, sfd, dfd;

	snprintf(path, sizeof(path), "%s/%s", c->spool_dir, LOCAL_MAILDROP);
	if ((sfd = open(c->spool_dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fstat(sfd, &sst) < 0) {
		snprintf(err, errlen, "%s: %s (has imsd ever run with this configuration?)",
		    c->spool_dir, strerror(errno));
		if (sfd >= 0)
			close(sfd);
		return -1;
	}
	dfd = openat(sfd, LOCAL_MAILDROP, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(sfd);
	if (dfd < 0 || fstat(dfd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, errno == ELOOP || errno == ENOTDIR ?
		    "not a directory but a link or a file: not used" : errno == ENOENT ?
		    "No such file or directory (has imsd ever run with this configuration?)" :
		    strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	if (!(st.st_mode & S_ISVTX) || st.st_uid != sst.st_uid) {
		snprintf(err, errlen, "%s: not the maildrop (mode %04o, owner uid %ld; the spool's "
		    "owner makes it mode 1733): not used", path, (unsigned)(st.st_mode & 07777),
		    (long)st.st_uid);
		close(dfd);
		return -1;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		close(dfd);
		return -1;
	}
	snprintf(name, sizeof(name), "%08lx.", (unsigned long)time(NULL));
	for (size_t i = 0; i < sizeof(rnd); i++) {
		size_t pl = strlen(name);
		snprintf(name + pl, sizeof(name) - pl, "%02x", rnd[i]);
	}
	size_t pl = strlen(path);
	snprintf(path + pl, sizeof(path) - pl, "/%s", name);
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(dfd);
		return -1;
	}
	if (fchmod(fd, 0600) < 0 || (fp = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		unlinkat(dfd, name, 0);
		close(dfd);
		return -1;
	}
	fputs(SM_DROP_MAGIC, fp);
	snprintf(hdr, sizeof(hdr), "S %s\n", sender);
	fputs(hdr, fp);
	for (size_t i = 0; i < n; i++)
		fprintf(fp, "R %s\n", rcpts[i]);
	fputc('\n', fp);
	fwrite(data, 1, len, fp);
	/* durable before it is marked complete; syncfs also makes the directory entry durable
	 * (a user cannot open the 1733 directory to fsync it) */
	if (fflush(fp) != 0 || ferror(fp) || fsync(fd) < 0 || fchmod(fd, 0644) < 0 ||
	    syncfs(fd) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		fclose(fp);
		unlinkat(dfd, name, 0);
		close(dfd);
		return -1;
	}
	if (fclose(fp) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlinkat(dfd, name, 0);
		close(dfd);
		return -1;
	}
	close(dfd);
	return 0;
}

static void
report_rejected(void *arg, const char *rcpt, int code, const char *text)
{
	fprintf(stderr, "sendmail: <%s>: refused: %s\n", rcpt, text);
}

static int
do_deliver(const struct sm_opts *o, const struct conf *c)
{
	char sender[SM_ADDR_MAX + 1], err[1024], from[800], date[64], msgid[300];
	struct rcpts r = { NULL, 0 };
	struct sm_msg m;
	struct sm_add add;
	char *in = NULL;
	size_t inlen = 0, nrej = 0, done = 0;
	int rc, fd, code = 0;
	char why[512] = "imsd is not running";

	if (make_sender(o->sender, c, sender, sizeof(sender)) < 0) {
		fprintf(stderr, "sendmail: -f %s: not a valid sender address\n",
		    o->sender ? o->sender : "");
		return EX_USAGE;
	}
	for (size_t i = 0; i < o->nrcpts; i++)
		if (sm_addrlist(o->rcpts[i], strlen(o->rcpts[i]), qualify_domain(c), rcpts_add, &r,
		    err, sizeof(err)) < 0) {
			fprintf(stderr, "sendmail: recipient '%.100s': %s\n", o->rcpts[i], err);
			rcpts_free(&r);
			return EX_USAGE;
		}
	rc = read_stdin(c->message_size_limit + SM_INPUT_SLACK, &in, &inlen);
	if (rc != 0) {
		if (rc > 0)
			fprintf(stderr, "sendmail: message larger than message_size_limit (%llu "
			    "bytes)\n", (unsigned long long)c->message_size_limit);
		else
			fprintf(stderr, "sendmail: reading the message: %s\n", strerror(errno));
		rcpts_free(&r);
		return rc > 0 ? EX_DATAERR : EX_IOERR;
	}
	/* what a message lacks, added as Postfix's cleanup does */
	{
		time_t now = time(NULL);
		struct tm tm;
		unsigned char rnd[8] = { 0 };
		char d[48];
		localtime_r(&now, &tm);
		strftime(d, sizeof(d), "%a, %d %b %Y %H:%M:%S %z", &tm);
		snprintf(date, sizeof(date), "Date: %s", d);
		if (getrandom(rnd, sizeof(rnd), 0) < 0)
			memset(rnd, 0, sizeof(rnd));
		snprintf(msgid, sizeof(msgid), "Message-ID: <%lld.%ld.%02x%02x%02x%02x%02x%02x%02x%02x@%s>",
		    (long long)now, (long)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
		    rnd[6], rnd[7], c->hostname);
		make_from(o->fullname, sender[0] ? sender : "MAILER-DAEMON", from, sizeof(from));
	}
	add.from = from;
	add.date = date;
	add.msgid = msgid;
	if (sm_prepare(in, inlen, o->dot_ends, o->extract, qualify_domain(c), &add,
	    (size_t)c->message_size_limit * 2 + SM_INPUT_SLACK, &m, err, sizeof(err)) < 0) {
		fprintf(stderr, "sendmail: %s\n", err);
		free(in);
		rcpts_free(&r);
		return EX_DATAERR;
	}
	free(in);
	for (size_t i = 0; i < m.nrcpts; i++)
		if (rcpts_add(&r, m.rcpts[i]) < 0) {
			fprintf(stderr, "sendmail: too many recipients (at most %d)\n", SM_RCPTS_MAX);
			sm_msg_free(&m);
			rcpts_free(&r);
			return EX_USAGE;
		}
	rcpts_unique(&r);
	if (r.n == 0) {
		fprintf(stderr, "sendmail: no recipients: name them as arguments, or use -t with "
		    "To:, Cc: or Bcc: headers\n");
		sm_msg_free(&m);
		rcpts_free(&r);
		return EX_USAGE;
	}
	if ((fd = connect_submit(c)) >= 0) {
		struct submit s;
		submit_init(&s, fd);
		struct submit_src src = { m.data, m.len, -1, 0 };
		code = submit_message(&s, c->hostname, sender, r.v, r.n, &src,
		    report_rejected, NULL, &nrej, &done);
		close(fd);
		if (code >= 200 && code < 300) {
			if (o->verbose)
				fprintf(stderr, "sendmail: %s\n", s.text);
			rc = nrej > 0 ? EX_NOUSER : EX_OK;
			goto out;
		}
		if (code >= 500) {
			fprintf(stderr, "sendmail: the server refused the message at %s: %s\n",
			    s.stage, s.text);
			rc = strcmp(s.stage, "RCPT") == 0 ? EX_NOUSER :
			    strcmp(s.stage, "end of data") == 0 ? EX_DATAERR : EX_UNAVAILABLE;
			goto out;
		}
		/* 4xx, or the connection broke: keep it for the pickup */
		snprintf(why, sizeof(why), "%s", s.text);
		if (o->verbose)
			fprintf(stderr, "sendmail: the server deferred the message at %s (%s): "
			    "leaving it in the maildrop\n", s.stage, s.text);
	} else if (o->verbose)
		fprintf(stderr, "sendmail: imsd is not running (%s/%s: %s): leaving the message "
		    "in the maildrop\n", c->spool_dir, LOCAL_SOCKET, strerror(errno));
	/* what the server already took is not submitted twice */
	if (maildrop_write(c, sender, r.v + done, r.n - done, m.data, m.len, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "sendmail: cannot submit the message: %s; and the maildrop "
		    "failed: %s\n", why, err);
		rc = EX_TEMPFAIL;
		goto out;
	}
	rc = EX_OK;
out:
	sm_msg_free(&m);
	rcpts_free(&r);
	return rc;
}

/* -bv: ask the server about each recipient; nothing is sent. */
static int
do_verify(const struct sm_opts *o, const struct conf *c)
{
	struct rcpts r = { NULL, 0 };
	struct submit s;
	char err[512], line[600];
	int fd, rc = EX_OK, code;

	for (size_t i = 0; i < o->nrcpts; i++)
		if (sm_addrlist(o->rcpts[i], strlen(o->rcpts[i]), qualify_domain(c), rcpts_add, &r,
		    err, sizeof(err)) < 0) {
			printf("%s... undeliverable: %s\n", o->rcpts[i], err);
			rc = EX_NOUSER;
		}
	if (r.n == 0 && rc == EX_OK) {
		fprintf(stderr, "sendmail: -bv: no recipients to verify\n");
		return EX_USAGE;
	}
	if ((fd = connect_submit(c)) < 0) {
		fprintf(stderr, "sendmail: -bv needs the running server: %s/%s: %s\n", c->spool_dir,
		    LOCAL_SOCKET, strerror(errno));
		rcpts_free(&r);
		return EX_UNAVAILABLE;
	}
	submit_init(&s, fd);
	snprintf(line, sizeof(line), "EHLO %s", c->hostname);
	if (submit_reply(&s) != 220 || submit_cmd(&s, line) != 250 ||
	    submit_cmd(&s, "MAIL FROM:<>") != 250) {
		fprintf(stderr, "sendmail: -bv: %s\n", s.text);
		close(fd);
		rcpts_free(&r);
		return s.code >= 500 ? EX_UNAVAILABLE : EX_TEMPFAIL;
	}
	for (size_t i = 0; i < r.n; i++) {
		snprintf(line, sizeof(line), "RCPT TO:<%s>", r.v[i]);
		code = submit_cmd(&s, line);
		if (code >= 200 && code < 300)
			printf("%s... deliverable: %s\n", r.v[i], s.text);
		else {
			printf("%s... undeliverable: %s\n", r.v[i], s.text);
			if (code >= 500 && rc != EX_TEMPFAIL)
				rc = EX_NOUSER;
			else if (code < 500)
				rc = EX_TEMPFAIL;
		}
		if (code == 0)
			break;
	}
	(void)submit_cmd(&s, "RSET");
	(void)submit_cmd(&s, "QUIT");
	close(fd);
	rcpts_free(&r);
	return rc;
}

/* -bs: SMTP on stdin/stdout, relayed to the server's local socket (the server sees our uid). */
static int
do_smtp(const struct conf *c)
{
	char buf[16384];
	int fd = connect_submit(c), in_open = 1;

	if (fd < 0) {
		printf("421 4.3.0 imsd is not running\r\n");
		fflush(stdout);
		fprintf(stderr, "sendmail: -bs needs the running server: %s/%s: %s\n", c->spool_dir,
		    LOCAL_SOCKET, strerror(errno));
		return EX_UNAVAILABLE;
	}
	/* no time limit of our own: the server's command and data timeouts apply */
	struct timeval tv = { 0, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	for (;;) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { 0, in_open ? POLLIN : 0, 0 } };
		/* Once stdin has ended, the server's replies to what it sent are still due (the
		 * 250 after a commit); the write side stays open, since a half-closed session
		 * ends at once. The server closes after QUIT; without one, give up after
		 * SM_BS_LINGER seconds of silence. */
		int r = poll(p, in_open ? 2 : 1, in_open ? -1 : SM_BS_LINGER * 1000);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (r == 0)
			break;
		if (p[0].revents) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			if (n <= 0)
				break;
			if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0)
				break;
		}
		if (in_open && p[1].revents) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n <= 0) {
				in_open = 0;
				continue;
			}
			for (ssize_t off = 0; off < n;) {
				ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
				if (w <= 0) {
					close(fd);
					return EX_IOERR;
				}
				off += w;
			}
		}
	}
	close(fd);
	return EX_OK;
}

int
sendmail_main(int argc, char **argv, int first, int as_mailq,
    int (*subcommand)(int argc, char **argv))
{
	struct sm_opts o;
	struct conf c;
	char err[1024];
	const char *path;
	int rc;

	if (sm_parse_args(argc, argv, first, as_mailq, &o, err, sizeof(err)) < 0) {
		fprintf(stderr, "sendmail: %s\n%s", err, sm_usage);
		return EX_USAGE;
	}
	path = o.conf_path;
	if (path == NULL && access(SENDMAIL_DEFAULT_CONF, F_OK) == 0)
		path = SENDMAIL_DEFAULT_CONF;
	if (o.mode == SM_QUEUE && conf_load(path, &c, err, sizeof(err)) == 0) {
		/* the queue holds other people's mail: only root and the spool's owner read it */
		char q[4200];
		snprintf(q, sizeof(q), "%s/queue", c.spool_dir);
		rc = access(q, R_OK | X_OK) < 0 && errno == EACCES;
		if (rc)
			fprintf(stderr, "mailq: %s: the queue is readable only by root and the user imsd "
			    "runs as\n", q);
		conf_free(&c);
		if (rc)
			return EX_NOPERM;
	}
	if (o.mode == SM_QUEUE || o.mode == SM_FLUSH) {
		char *av[5] = { argv[0], o.mode == SM_QUEUE ? "queue" : "flush", NULL, NULL, NULL };
		int ac = 2;
		if (path != NULL) {
			av[ac++] = "-c";
			av[ac++] = (char *)path;
		}
		rc = subcommand(ac, av);
		return rc == 0 ? EX_OK : rc == 1 ? EX_CONFIG : EX_UNAVAILABLE;
	}
	if (o.mode == SM_NOOP) {
		/* -bi (newaliases): check the alias file; nothing to build */
		char *av[4] = { argv[0], "newaliases", NULL, NULL };
		int ac = 2;
		if (path != NULL) {
			av[ac++] = "-c";
			av[ac++] = (char *)path;
		}
		return subcommand(ac, av) == 0 ? EX_OK : EX_CONFIG;
	}
	if (conf_load(path, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "sendmail: %s\n", err);
		return EX_CONFIG;
	}
	switch (o.mode) {
	case SM_SMTP:
		rc = do_smtp(&c);
		break;
	case SM_VERIFY:
		rc = do_verify(&o, &c);
		break;
	default:
		rc = do_deliver(&o, &c);
		break;
	}
	conf_free(&c);
	return rc;
}
