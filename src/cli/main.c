/*
 * imsd — command-line entry: a table of subcommands (SPEC.md "Command line").
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "cli/authcli.h"
#include "cli/cli.h"
#include "cli/doctor.h"
#include "cli/sendmail.h"
#include "conf/conf.h"
#include "policy/aliases.h"
#include "policy/tls_offer.h"
#include "queue/queue.h"
#include "cfg/cfg.h"
#include "server/privs.h"
#include "server/server.h"
#include "util/log.h"
#include "util/version.h"

static const char usage_text[] =
    "usage: imsd run     [-c FILE]            serve in the foreground; logs to stderr\n"
    "       imsd check   [-c FILE] [-q]       validate the configuration (as run_user too), print effective settings\n"
    "       imsd queue   [-c FILE] [--json]   list queued messages (--json: one JSON document)\n"
    "       imsd flush   [-c FILE]            retry every deferred message now\n"
    "       imsd delete  [-c FILE] ID...|ALL  remove messages from the queue\n"
    "       imsd explain-tls [-c FILE] ADDRESS  would a client connecting to ADDRESS get STARTTLS?\n"
    "       imsd explain-auth [-c FILE] MSG.eml --client-ip ADDR --helo NAME --mail-from ADDR\n"
    "                                         run SPF, DKIM and DMARC on a stored message\n"
    "       imsd dkim-keygen [--ed25519] DOMAIN SELECTOR KEYFILE  new signing key + DNS record\n"
    "       imsd explain-recipient [-c FILE] ADDRESS  how mail to ADDRESS is routed, and its queue\n"
    "       imsd doctor  [-c FILE] [--json] [--address ADDR]...  check this host: configuration,\n"
    "                                         spool, TLS, DNS, the service; exit 1 when a check fails\n"
    "       imsd dns-records [-c FILE] [--address ADDR]... DOMAIN  the records to publish\n"
    "       imsd newaliases [-c FILE]           check the alias file (alias_maps, or /etc/aliases)\n"
    "       imsd version\n"
    "       imsd sendmail [-c FILE] [sendmail options] [ADDRESS...]  (also as sendmail, mailq)\n";

static int
usage(void)
{
	fputs(usage_text, stderr);
	return 1;
}

/* Parse "[-c FILE]" (defaulting as cli_conf_path does) and return the remaining arguments'
 * index, or -1. */
static int
parse_c(int argc, char **argv, const char **conf_path)
{
	int i = 2;

	*conf_path = NULL;
	if (i < argc && strcmp(argv[i], "-c") == 0) {
		if (i + 1 >= argc)
			return -1;
		*conf_path = argv[i + 1];
		i += 2;
	} else if (i < argc && strncmp(argv[i], "-c", 2) == 0 && argv[i][2] != '\0') {
		*conf_path = argv[i] + 2;
		i++;
	}
	*conf_path = cli_conf_path(*conf_path);
	return i;
}

/* Without -c: the installed configuration when there is one (the package's), else NULL,
 * the embedded default (SPEC.md "Command line"). Every subcommand, as sendmail does, so
 * that `imsd queue` run from / by an administrator reads the spool the server uses. */
const char *
cli_conf_path(const char *given)
{
	if (given == NULL && access(SENDMAIL_DEFAULT_CONF, F_OK) == 0)
		return SENDMAIL_DEFAULT_CONF;
	return given;
}

static int take_flag(int *argc, char **argv, const char *flag);

static int
cmd_run(int argc, char **argv)
{
	const char *path;
	int i = parse_c(argc, argv, &path);

	if (i < 0 || i != argc)
		return usage();
	return server_run(path);
}

/* Root's check of a configuration the server will read as run_user (cli_as_run_user):
 * 0 readable, 1 not (said on stderr). */
static int
check_as_run_user(const char *path, const struct cfg *c)
{
	char msg[1400];
	struct privs pv;

	switch (cli_as_run_user(path, c, 0, &pv, msg, sizeof(msg))) {
	case CLI_RUNUSER_OK:
		return 0;
	case CLI_RUNUSER_NOTE:
		fprintf(stderr, "imsd: note: %s\n", msg);
		return 0;
	default:
		fprintf(stderr, "imsd: %s\n", msg);
		return 1;
	}
}

static int
cmd_check(int argc, char **argv)
{
	const char *path;
	char err[1024];
	struct cfg *c;
	int quiet = take_flag(&argc, argv, "-q");
	int i = parse_c(argc, argv, &path);

	if (i < 0 || i != argc)
		return usage();
	if ((c = cfg_load(path, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imsd: %s\n", err);
		return 1;
	}
	if (geteuid() == 0 && check_as_run_user(path, c) != 0) {
		cfg_unref(c);
		return 1;
	}
	printf("# imsd %s: configuration %s is valid\n", IMSD_VERSION, c->conf.source);
	if (!quiet) {
		conf_print(&c->conf, stdout);
		authcli_check_report(c, stdout);
	}
	cfg_unref(c);
	return 0;
}

static void
print_age(time_t secs, char *buf, size_t len)
{
	if (secs < 120)
		snprintf(buf, len, "%lds", (long)secs);
	else if (secs < 7200)
		snprintf(buf, len, "%ldm", (long)(secs / 60));
	else if (secs < 172800)
		snprintf(buf, len, "%ldh", (long)(secs / 3600));
	else
		snprintf(buf, len, "%ldd", (long)(secs / 86400));
}

/* Remove option flag from the arguments after the subcommand; 1 when it was there. */
static int
take_flag(int *argc, char **argv, const char *flag)
{
	for (int i = 2; i < *argc; i++)
		if (strcmp(argv[i], flag) == 0) {
			memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i) * sizeof(*argv));
			(*argc)--;
			return 1;
		}
	return 0;
}

/*
 * The maildrop (spool_dir/maildrop): what sendmail left there while no server answered,
 * not yet in the queue. Listed after the queue, one line each: the file, its size, its age
 * and the submitting user (the file's owner, as the pickup will record it). Returns how
 * many; nothing printed when the directory cannot be read (as a user: the maildrop is 1733).
 */
static size_t
print_maildrop(const char *spool_dir)
{
	char path[4200], age[32];
	struct dirent *de;
	size_t n = 0;
	DIR *d;
	int dfd;

	snprintf(path, sizeof(path), "%s/maildrop", spool_dir);
	if ((dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return 0;
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		struct passwd *pw;
		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (n++ == 0)
			printf("maildrop (%s), waiting for pickup by the server:\n", path);
		print_age(time(NULL) - st.st_mtime, age, sizeof(age));
		pw = getpwuid(st.st_uid);
		printf("%s  %8llu  %5s  from %s (uid %ld)%s\n", de->d_name,
		    (unsigned long long)st.st_size, age, pw ? pw->pw_name : "?", (long)st.st_uid,
		    (st.st_mode & 0444) == 0444 ? "" : "  (still being written)");
	}
	closedir(d);
	return n;
}

/* List the queue straight from the spool (read-only; works with or without a server). */
static int
cmd_queue(int argc, char **argv)
{
	const char *path;
	char err[1024], **ids;
	struct cfg *c;
	struct queue q;
	size_t n;
	int json = take_flag(&argc, argv, "--json");
	int i = parse_c(argc, argv, &path);

	if (i < 0 || i != argc)
		return usage();
	if ((c = cfg_load(path, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imsd: %s\n", err);
		return 1;
	}
	if (json) {
		int r = cli_queue_json(c);
		cfg_unref(c);
		return r;
	}
	if (cli_queue_open(c->conf.spool_dir, 0, &q, err, sizeof(err)) < 0 ||
	    queue_list(&q, &ids, &n, err, sizeof(err)) < 0) {
		fprintf(stderr, "imsd: %s\n", err);
		cfg_unref(c);
		return 2;
	}
	for (size_t k = 0; k < n; k++) {
		struct qenv env;
		uint64_t off, len;
		char age[32];
		int fd;

		if (queue_load(&q, ids[k], &env, &fd, &off, &len, err, sizeof(err)) < 0) {
			printf("%s  (unreadable: %s)\n", ids[k], err);
			continue;
		}
		close(fd);
		print_age(time(NULL) - env.arrival, age, sizeof(age));
		printf("%s  %8llu  %5s  <%s>\n", env.qid, (unsigned long long)len, age, env.sender);
		for (size_t r = 0; r < env.nrcpts; r++) {
			const struct qrcpt *qr = &env.rcpts[r];
			if (qr->state == QR_DONE)
				continue;
			printf("    <%s>", qr->addr);
			if (qr->state == QR_FAILED)
				printf("  failed (%s): %s", qr->status, qr->last_error);
			else if (qr->attempts > 0)
				printf("  %u attempt%s, last error: %s", qr->attempts,
				    qr->attempts == 1 ? "" : "s", qr->last_error);
			printf("\n");
		}
		qenv_free(&env);
	}
	size_t nd = print_maildrop(c->conf.spool_dir);
	if (n == 0 && nd == 0)
		printf("Mail queue is empty\n");
	else
		printf("-- %zu message%s in the queue%s\n", n, n == 1 ? "" : "s",
		    nd == 0 ? "" : nd == 1 ? ", 1 in the maildrop" : "");
	if (nd > 1)
		printf("-- %zu messages in the maildrop\n", nd);
	queue_list_free(ids, n);
	queue_close(&q);
	cfg_unref(c);
	return 0;
}

/* Does a listener of this list accept connections on addr? */
static int
listens_on(const struct hostport *hp, size_t n, const struct netaddr *addr)
{
	for (size_t i = 0; i < n; i++)
		if (netaddr_equal(&hp[i].addr, addr) ||
		    (netaddr_is_any(&hp[i].addr) && hp[i].addr.family == addr->family))
			return 1;
	return 0;
}

/*
 * explain-tls: the same decision the server makes at EHLO, for a client connecting to
 * ADDRESS. The first word is yes or no; exit 0 either way.
 */
static int
cmd_explain_tls(int argc, char **argv)
{
	const char *path, *arg;
	char err[1024], text[1024], abuf[NETADDR_STRLEN], subj[512], na[64], host[300];
	struct tls_decision d;
	struct netaddr addr;
	struct cfg *c;
	int cert_loaded, generated_later = 0;
	int i = parse_c(argc, argv, &path);
	size_t al;

	if (i < 0 || i + 1 != argc)
		return usage();
	arg = argv[i];
	/* accept [v6] too */
	al = strlen(arg);
	if (al >= 2 && al < sizeof(host) && arg[0] == '[' && arg[al - 1] == ']') {
		memcpy(host, arg + 1, al - 2);
		host[al - 2] = '\0';
	} else
		snprintf(host, sizeof(host), "%s", arg);
	if (netaddr_parse(host, &addr) < 0) {
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
		int r = getaddrinfo(host, NULL, &hints, &res);
		if (r != 0 || netaddr_from_sockaddr(res->ai_addr, &addr, NULL) < 0) {
			fprintf(stderr, "imsd: explain-tls: %s is not an address and does not resolve%s%s\n",
			    arg, r ? ": " : "", r ? gai_strerror(r) : "");
			if (r == 0)
				freeaddrinfo(res);
			return 1;
		}
		freeaddrinfo(res);
	}
	if ((c = cfg_load(path, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imsd: %s\n", err);
		return 1;
	}
	cert_loaded = c->tls != NULL;
	if (!cert_loaded && path == NULL && c->conf.tls_cert_file != NULL) {
		/* the embedded default creates its certificate on first start */
		cert_loaded = 1;
		generated_later = 1;
	}
	tls_offer(&c->conf, cert_loaded, &addr, &d);
	netaddr_str(&addr, abuf, sizeof(abuf));
	tls_explain(&d, abuf, text, sizeof(text));
	printf("%s  %s\n", d.offer ? "yes" : "no", text);
	if (d.offer && c->tls != NULL &&
	    tls_ctx_cert_info(c->tls, subj, sizeof(subj), na, sizeof(na), NULL) == 0)
		printf("certificate: %s (%s), subject %s, expires %s\n", c->conf.tls_cert_file,
		    c->conf.tls_key_file, subj, na);
	else if (d.offer && generated_later)
		printf("certificate: a self-signed certificate for %s is generated under %s on "
		    "first start\n", c->conf.hostname, c->conf.tls_cert_file);
	if (!listens_on(c->conf.listen, c->conf.nlisten, &addr) &&
	    !listens_on(c->conf.submission_listen, c->conf.nsubmission_listen, &addr))
		printf("note: no listen or submission_listen address of this configuration "
		    "accepts connections on %s\n", abuf);
	if (listens_on(c->conf.smtps_listen, c->conf.nsmtps_listen, &addr))
		printf("note: smtps_listen on %s uses implicit TLS, which the loopback policy "
		    "does not affect\n", abuf);
	cfg_unref(c);
	return 0;
}

/*
 * Send one request line to a running server's control socket and print its answer.
 * Returns 0 answered ok, 1 answered with an error, -1 no server listening.
 */
static int
control_request(const char *spool_dir, const char *req)
{
	struct sockaddr_un sun;
	char buf[512];
	int fd, n, status = 0;
	ssize_t r;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/control", spool_dir);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path))
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s\n", req);
	if (write(fd, buf, strlen(buf)) < 0) {
		close(fd);
		return -1;
	}
	while ((r = read(fd, buf, sizeof(buf) - 1)) > 0) {
		buf[r] = '\0';
		if (strncmp(buf, "error", 5) == 0)
			status = 1;
		fputs(buf, status ? stderr : stdout);
	}
	close(fd);
	return status;
}

static int
cmd_flush(int argc, char **argv)
{
	const char *path;
	char err[1024];
	struct cfg *c;
	int i = parse_c(argc, argv, &path), r;

	if (i < 0 || i != argc)
		return usage();
	if ((c = cfg_load(path, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imsd: %s\n", err);
		return 1;
	}
	/* the control socket is in the run user's spool: connected to as its owner */
	if (privs_as_spool_owner(c->conf.spool_dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "imsd: %s\n", err);
		cfg_unref(c);
		return 2;
	}
	r = control_request(c->conf.spool_dir, "FLUSH");
	if (r < 0) {
		if (queue_locked_by_other(c->conf.spool_dir))
			fprintf(stderr, "imsd: flush: a server holds %s but its control socket does "
			    "not answer\n", c->conf.spool_dir);
		else
			fprintf(stderr, "imsd: flush: imsd is not running on %s; every queued "
			    "message is tried as soon as it starts (imsd run)\n", c->conf.spool_dir);
		cfg_unref(c);
		return 2;
	}
	cfg_unref(c);
	return r == 0 ? 0 : 2;
}

/* Remove messages: through the running server, or straight from the spool when none runs. */
static int
cmd_delete(int argc, char **argv)
{
	const char *path;
	char err[1024], req[128];
	struct cfg *c;
	struct queue q;
	int i = parse_c(argc, argv, &path), status = 0;

	if (i < 0 || i >= argc)
		return usage();
	if ((c = cfg_load(path, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imsd: %s\n", err);
		return 1;
	}
	if (privs_as_spool_owner(c->conf.spool_dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "imsd: %s\n", err);
		cfg_unref(c);
		return 2;
	}
	snprintf(req, sizeof(req), "DELETE %.100s", argv[i]);
	int r = control_request(c->conf.spool_dir, req);
	if (r >= 0) {
		/* a server answered the first; it gets the rest too */
		status = r == 0 ? 0 : 2;
		for (i++; i < argc; i++) {
			snprintf(req, sizeof(req), "DELETE %.100s", argv[i]);
			if (control_request(c->conf.spool_dir, req) != 0)
				status = 2;
		}
		cfg_unref(c);
		return status;
	}
	/* no server: take the spool lock ourselves so none starts meanwhile */
	if (cli_queue_open(c->conf.spool_dir, 1, &q, err, sizeof(err)) < 0) {
		fprintf(stderr, "imsd: %s\n", err);
		cfg_unref(c);
		return 2;
	}
	for (; i < argc; i++) {
		char **ids;
		size_t n, found = 0;
		if (queue_list(&q, &ids, &n, err, sizeof(err)) < 0) {
			fprintf(stderr, "imsd: %s\n", err);
			status = 2;
			break;
		}
		for (size_t k = 0; k < n; k++) {
			if (strcmp(argv[i], "ALL") != 0 && strcmp(argv[i], ids[k]) != 0)
				continue;
			if (queue_remove(&q, ids[k], 1, err, sizeof(err)) == 0) {
				printf("deleted %s\n", ids[k]);
				found++;
			} else {
				fprintf(stderr, "imsd: %s\n", err);
				status = 2;
			}
		}
		queue_list_free(ids, n);
		if (found == 0 && strcmp(argv[i], "ALL") != 0) {
			fprintf(stderr, "imsd: %s: no such message in the queue\n", argv[i]);
			status = 2;
		}
	}
	queue_close(&q);
	cfg_unref(c);
	return status;
}

static int
cmd_explain_recipient(int argc, char **argv)
{
	const char *path;
	char err[1024];
	struct cfg *c;
	int i = parse_c(argc, argv, &path), r;

	if (i < 0 || i + 1 != argc)
		return usage();
	if ((c = cfg_load(path, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imsd: %s\n", err);
		return 1;
	}
	r = cli_explain_recipient(c, argv[i]);
	cfg_unref(c);
	return r;
}

/*
 * doctor and dns-records: [-c FILE] [--json] [--address ADDR]... [DOMAIN] (without -c, the
 * configuration cli_conf_path names). The addresses (at most DOC_ADDRS_MAX) replace those
 * the listeners give, for a host behind NAT.
 */
static int
doctor_args(int argc, char **argv, const char **path, int *json, const char **addrs,
    size_t *naddrs, const char **arg)
{
	*path = NULL;
	*json = 0;
	*naddrs = 0;
	*arg = NULL;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-c") == 0 && i + 1 < argc)
			*path = argv[++i];
		else if (strncmp(a, "-c", 2) == 0 && a[2] != '\0')
			*path = a + 2;
		else if (strcmp(a, "--json") == 0 && json != NULL)
			*json = 1;
		else if (strcmp(a, "--address") == 0 && i + 1 < argc) {
			if (*naddrs == DOC_ADDRS_MAX)
				return -1;
			addrs[(*naddrs)++] = argv[++i];
		} else if (a[0] != '-' && arg != NULL && *arg == NULL)
			*arg = a;
		else
			return -1;
	}
	*path = cli_conf_path(*path);
	return 0;
}

static int
cmd_doctor(int argc, char **argv)
{
	const char *path, *addrs[DOC_ADDRS_MAX], *arg;
	size_t n;
	int json;

	if (doctor_args(argc, argv, &path, &json, addrs, &n, &arg) < 0 || arg != NULL)
		return usage();
	return cli_doctor(path, json, addrs, n);
}

static int
cmd_dns_records(int argc, char **argv)
{
	const char *path, *addrs[DOC_ADDRS_MAX], *domain;
	size_t n;
	int json;

	if (doctor_args(argc, argv, &path, &json, addrs, &n, &domain) < 0 || domain == NULL ||
	    json)
		return usage();
	return cli_dns_records(path, domain, addrs, n);
}

/* newaliases: read and check the alias file as the server will. Nothing is built: the
 * file is read as it is at every start and reload. 0 ok, 1 an error (file:line). */
static int
cmd_newaliases(int argc, char **argv)
{
	const char *path, *file;
	char err[1024];
	struct conf cf;
	struct aliases *a;
	int i = parse_c(argc, argv, &path);

	if (i < 0 || i != argc)
		return usage();
	if (conf_load(path, &cf, err, sizeof(err)) < 0) {
		fprintf(stderr, "newaliases: %s\n", err);
		return 1;
	}
	file = cf.alias_maps != NULL ? cf.alias_maps : "/etc/aliases";
	if ((a = aliases_load(file, err, sizeof(err))) == NULL) {
		fprintf(stderr, "newaliases: %s\n", err);
		conf_free(&cf);
		return 1;
	}
	printf("newaliases: %s: %zu alias%s, no errors%s\n", file, aliases_count(a),
	    aliases_count(a) == 1 ? "" : "es", cf.alias_maps != NULL ? "" :
	    " (alias_maps is unset in the configuration: the server does not read it)");
	aliases_free(a);
	conf_free(&cf);
	return 0;
}

static int
cmd_version(int argc, char **argv)
{
	printf("imsd %s\n", IMSD_VERSION);
	return 0;
}

static int run_subcommand(int argc, char **argv);

/* sendmail(1): see cli/sendmail.c */
static int
cmd_sendmail(int argc, char **argv)
{
	return sendmail_main(argc, argv, 2, 0, run_subcommand);
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
} subcommands[] = {
	{ "run", cmd_run },
	{ "check", cmd_check },
	{ "queue", cmd_queue },
	{ "explain-tls", cmd_explain_tls },
	{ "explain-recipient", cmd_explain_recipient },
	{ "flush", cmd_flush },
	{ "delete", cmd_delete },
	{ "version", cmd_version },
	{ "newaliases", cmd_newaliases },
	{ "explain-auth", authcli_explain },
	{ "dkim-keygen", authcli_keygen },
	{ "doctor", cmd_doctor },
	{ "dns-records", cmd_dns_records },
	{ "sendmail", cmd_sendmail },
};

static int
run_subcommand(int argc, char **argv)
{
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].fn(argc, argv);
	return usage();
}

int
main(int argc, char **argv)
{
	/* installed as /usr/sbin/sendmail and /usr/bin/mailq */
	const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (strcmp(base, "sendmail") == 0 || strcmp(base, "mailq") == 0)
		return sendmail_main(argc, argv, 1, base[0] == 'm', run_subcommand);
	if (strcmp(base, "newaliases") == 0) {
		/* installed as /usr/bin/newaliases: "newaliases [-c FILE]" */
		char *av[4] = { argv[0], "newaliases", NULL, NULL };
		int ac = 2;
		for (int k = 1; k < argc && ac < 4; k++)
			av[ac++] = argv[k];
		if (argc > 3)
			return usage();
		return cmd_newaliases(ac, av);
	}
	if (argc < 2)
		return usage();
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].fn(argc, argv);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	fprintf(stderr, "imsd: unknown command '%s'\n", argv[1]);
	return usage();
}
