/*
 * imsd — command-line entry: a table of subcommands (SPEC.md "Command line").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netdb.h>

#include "conf/conf.h"
#include "policy/tls_policy.h"
#include "queue/queue.h"
#include "server/cfg.h"
#include "server/server.h"
#include "util/log.h"
#include "util/version.h"

static const char usage_text[] =
    "usage: imsd run     [-c FILE]            serve in the foreground; logs to stderr\n"
    "       imsd check   [-c FILE]            validate the configuration, print effective settings\n"
    "       imsd queue   [-c FILE]            list queued messages\n"
    "       imsd explain-tls [-c FILE] ADDRESS  would a client connecting to ADDRESS get STARTTLS?\n"
    "       imsd version\n";

static int
usage(void)
{
	fputs(usage_text, stderr);
	return 1;
}

/* Parse "[-c FILE]" and return the remaining arguments' index, or -1. */
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
	return i;
}

static int
cmd_run(int argc, char **argv)
{
	const char *path;
	int i = parse_c(argc, argv, &path);

	if (i < 0 || i != argc)
		return usage();
	return server_run(path);
}

static int
cmd_check(int argc, char **argv)
{
	const char *path;
	char err[1024];
	struct cfg *c;
	int i = parse_c(argc, argv, &path);

	if (i < 0 || i != argc)
		return usage();
	if ((c = cfg_load(path, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imsd: %s\n", err);
		return 1;
	}
	printf("# imsd %s: configuration %s is valid\n", IMSD_VERSION, c->conf.source);
	conf_print(&c->conf, stdout);
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

/* List the queue straight from the spool (read-only; works with or without a server). */
static int
cmd_queue(int argc, char **argv)
{
	const char *path;
	char err[1024], **ids;
	struct cfg *c;
	struct queue q;
	size_t n;
	int i = parse_c(argc, argv, &path);

	if (i < 0 || i != argc)
		return usage();
	if ((c = cfg_load(path, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imsd: %s\n", err);
		return 1;
	}
	if (queue_open(c->conf.spool_dir, 0, &q, err, sizeof(err)) < 0 ||
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
			if (env.rcpts[r].state == QR_DONE)
				continue;
			printf("    <%s>%s%s%s\n", env.rcpts[r].addr,
			    env.rcpts[r].last_error[0] ? "  last error: " : "",
			    env.rcpts[r].last_error, "");
		}
		qenv_free(&env);
	}
	if (n == 0)
		printf("Mail queue is empty\n");
	else
		printf("-- %zu message%s in the queue\n", n, n == 1 ? "" : "s");
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

static int
cmd_version(int argc, char **argv)
{
	printf("imsd %s\n", IMSD_VERSION);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
} subcommands[] = {
	{ "run", cmd_run },
	{ "check", cmd_check },
	{ "queue", cmd_queue },
	{ "explain-tls", cmd_explain_tls },
	{ "version", cmd_version },
};

int
main(int argc, char **argv)
{
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
