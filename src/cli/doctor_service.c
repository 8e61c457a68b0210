/*
 * imsd doctor: the running service — the systemd unit (through the system bus), each
 * listener answering with its greeting, and the queue (size, oldest message, the most
 * common deferral reasons, the last failures by destination) read from the spool as
 * `imsd queue` reads it. See doctor.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>

#include "cli/cli.h"
#include "cli/doctor.h"
#include "queue/queue.h"
#include "queue/spool_layout.h"
#include "server/local.h"
#include "util/str.h"

#define UNIT		"imsd.service"
#define GREET_MS	5000
#define REASONS_SHOWN	3
#define DESTS_SHOWN	5
#define QUEUE_LOAD_MAX	20000	/* messages whose envelopes are read */

/* ---- systemd ---- */

struct unit {
	char load[32], active[32], sub[32], result[64];
	unsigned restarts;
	uint64_t since_us;
	char err[300];
};

static int
unit_state(struct unit *u)
{
	static const char dest[] = "org.freedesktop.systemd1";
	sd_bus *bus = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *m = NULL;
	const char *path;
	char *s;
	int r;

	memset(u, 0, sizeof(*u));
	if ((r = sd_bus_open_system(&bus)) < 0) {
		snprintf(u->err, sizeof(u->err), "the system bus: %s", strerror(-r));
		return -1;
	}
	r = sd_bus_call_method(bus, dest, "/org/freedesktop/systemd1",
	    "org.freedesktop.systemd1.Manager", "LoadUnit", &e, &m, "s", UNIT);
	if (r < 0 || sd_bus_message_read(m, "o", &path) < 0) {
		snprintf(u->err, sizeof(u->err), "LoadUnit %s: %s", UNIT, e.message ? e.message :
		    strerror(-r));
		sd_bus_error_free(&e);
		sd_bus_message_unref(m);
		sd_bus_unref(bus);
		return -1;
	}
	{
		const struct { const char *iface, *name; char *out; size_t len; } props[] = {
			{ "org.freedesktop.systemd1.Unit", "LoadState", u->load, sizeof(u->load) },
			{ "org.freedesktop.systemd1.Unit", "ActiveState", u->active, sizeof(u->active) },
			{ "org.freedesktop.systemd1.Unit", "SubState", u->sub, sizeof(u->sub) },
			{ "org.freedesktop.systemd1.Service", "Result", u->result, sizeof(u->result) },
		};
		for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
			s = NULL;
			if (sd_bus_get_property_string(bus, dest, path, props[i].iface, props[i].name,
			    &e, &s) >= 0 && s != NULL)
				str_copy(props[i].out, props[i].len, s);
			free(s);
			sd_bus_error_free(&e);
		}
	}
	(void)sd_bus_get_property_trivial(bus, dest, path, "org.freedesktop.systemd1.Service",
	    "NRestarts", &e, 'u', &u->restarts);
	sd_bus_error_free(&e);
	(void)sd_bus_get_property_trivial(bus, dest, path, "org.freedesktop.systemd1.Unit",
	    "ActiveEnterTimestamp", &e, 't', &u->since_us);
	sd_bus_error_free(&e);
	sd_bus_message_unref(m);
	sd_bus_unref(bus);
	return 0;
}

static void
check_systemd(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;
	char found[800], since[64] = "";
	struct unit u;

	if (sd_booted() <= 0) {
		if (d->server_running)
			doc_add(d, DOC_OK, "service", cf->spool_dir, "a server holds the spool's lock "
			    "(this host does not run systemd)", NULL, NULL);
		else
			doc_add(d, DOC_FAIL, "service", cf->spool_dir, "no server is running on this "
			    "spool (nothing holds its lock), and this host does not run systemd",
			    "mail to this host is refused, and local mail waits in the maildrop",
			    "start it: imsd run -c CONFIG (under a supervisor)");
		return;
	}
	if (unit_state(&u) < 0) {
		doc_add(d, d->server_running ? DOC_WARN : DOC_FAIL, "service", UNIT, u.err,
		    "the unit's state cannot be read", d->server_running ? "check the system bus" :
		    "systemctl start imsd");
		return;
	}
	if (u.since_us > 0) {
		time_t t = (time_t)(u.since_us / 1000000);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(since, sizeof(since), " since %Y-%m-%d %H:%M:%S UTC", &tm);
	}
	snprintf(found, sizeof(found), "%s, %s (%s)%s; %u restart%s%s%s", u.load, u.active,
	    u.sub, since, u.restarts, u.restarts == 1 ? "" : "s", u.result[0] &&
	    strcmp(u.result, "success") != 0 ? "; last result " : "", u.result[0] &&
	    strcmp(u.result, "success") != 0 ? u.result : "");
	if (strcmp(u.load, "loaded") != 0) {
		doc_add(d, d->server_running ? DOC_WARN : DOC_FAIL, "service", UNIT, found,
		    d->server_running ? "a server runs, but not as the unit: it does not come "
		    "back after a reboot or a crash" : "no unit, no server: mail to this host is "
		    "refused", "install the package's unit (dist/imsd.service), systemctl enable "
		    "--now imsd");
	} else if (strcmp(u.active, "active") != 0) {
		doc_add(d, DOC_FAIL, "service", UNIT, found, "the server is not running: mail to "
		    "this host is refused, local mail waits in the maildrop", "journalctl -u imsd "
		    "-n 50 says why; then systemctl restart imsd");
	} else if (u.restarts > 0) {
		doc_add(d, DOC_WARN, "service", UNIT, found, "systemd restarted the server after it "
		    "stopped: each time, sessions in progress were cut", "journalctl -u imsd says "
		    "why it stopped");
	} else
		doc_add(d, DOC_OK, "service", UNIT, found, NULL, NULL);
}

/* ---- listeners ---- */

/* Connect to hp (a wildcard: its loopback) and read the greeting into buf. 0 ok. */
static int
greeting(const struct hostport *hp, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	struct netaddr a = hp->addr;
	struct pollfd p;
	socklen_t sl;
	size_t got = 0;
	int fd, r;

	if (netaddr_is_any(&a))
		netaddr_parse(a.family == AF_INET ? "127.0.0.1" : "::1", &a);
	sl = netaddr_to_sockaddr(&a, hp->port, &ss);
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(buf, len, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		snprintf(buf, len, "connect: %s", strerror(errno));
		close(fd);
		return -1;
	}
	p.fd = fd;
	p.events = POLLOUT;
	if (poll(&p, 1, GREET_MS) <= 0) {
		snprintf(buf, len, "connect: no answer within %d s", GREET_MS / 1000);
		close(fd);
		return -1;
	}
	{
		int e = 0;
		socklen_t el = sizeof(e);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
		if (e != 0) {
			snprintf(buf, len, "connect: %s", strerror(e));
			close(fd);
			return -1;
		}
	}
	buf[0] = '\0';
	while (got + 1 < len && memchr(buf, '\n', got) == NULL) {
		p.events = POLLIN;
		if (poll(&p, 1, GREET_MS) <= 0)
			break;
		if ((r = (int)read(fd, buf + got, len - 1 - got)) <= 0)
			break;
		got += (size_t)r;
		buf[got] = '\0';
	}
	if (write(fd, "QUIT\r\n", 6) < 0) {
		/* the greeting is what counts */
	}
	close(fd);
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strncmp(buf, "220", 3) != 0) {
		char t[300];
		snprintf(t, sizeof(t), "no 220 greeting (read \"%.200s\")", buf);
		snprintf(buf, len, "%s", t);
		return -1;
	}
	return 0;
}

static void
check_listeners(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;
	const struct { const struct hostport *hp; size_t n; const char *key; } ls[] = {
		{ cf->listen, cf->nlisten, "listen" },
		{ cf->submission_listen, cf->nsubmission_listen, "submission_listen" },
		{ cf->smtps_listen, cf->nsmtps_listen, "smtps_listen" },
	};
	int port25 = 0, public_domain = 0;

	for (size_t i = 0; i < d->ndomains; i++)
		public_domain |= d->domain_local[i];
	for (size_t k = 0; k < 3; k++)
		for (size_t i = 0; i < ls[k].n; i++) {
			const struct hostport *hp = &ls[k].hp[i];
			char b[NETADDR_STRLEN], g[400], found[600];
			hostport_str(hp, b, sizeof(b));
			if (k == 0 && hp->port == 25 && (netaddr_is_any(&hp->addr) ||
			    doc_addr_is_public(&hp->addr)))
				port25 = 1;
			if (!d->server_running || k == 2)
				continue;	/* smtps: the greeting comes after TLS */
			if (greeting(hp, g, sizeof(g)) == 0) {
				snprintf(found, sizeof(found), "answers: %s", g);
				doc_add(d, DOC_OK, "service.listen", b, found, NULL, NULL);
			} else {
				snprintf(found, sizeof(found), "%s (%s)", g, ls[k].key);
				doc_add(d, DOC_FAIL, "service.listen", b, found, "a server holds the "
				    "spool but does not answer here: clients get connection errors",
				    "journalctl -u imsd (or the server's log) says why; a firewall may "
				    "block the port");
			}
		}
	if (public_domain && !port25)
		doc_add(d, DOC_FAIL, "service.listen", cf->source, "no listen address on port 25 "
		    "that the Internet reaches", "other hosts deliver to the MX on port 25 only",
		    "listen = 0.0.0.0:25, [::]:25 (imsd binds port 25 as root, or with "
		    "CAP_NET_BIND_SERVICE under systemd)");
}

void
doc_check_service(struct doctor *d)
{
	check_systemd(d);
	check_listeners(d);
}

/* ---- the queue ---- */

struct reason {
	char key[220];
	char example[200];
	unsigned n;
};

struct dest {
	char domain[256];
	char last[200];
	unsigned n;
	time_t arrival;		/* of the newest message with this error */
};

static void
count_reason(struct reason *rs, size_t *nr, size_t max, const char *err)
{
	char key[220];

	doc_reason_key(err, key, sizeof(key));
	for (size_t i = 0; i < *nr; i++)
		if (strcmp(rs[i].key, key) == 0) {
			rs[i].n++;
			return;
		}
	if (*nr == max)
		return;
	str_copy(rs[*nr].key, sizeof(rs[0].key), key);
	str_copy(rs[*nr].example, sizeof(rs[0].example), err);
	rs[(*nr)++].n = 1;
}

static void
count_dest(struct dest *ds, size_t *nd, size_t max, const char *addr, const char *err,
    time_t arrival)
{
	const char *at = strrchr(addr, '@');
	const char *dom = at ? at + 1 : addr;

	for (size_t i = 0; i < *nd; i++)
		if (strcasecmp(ds[i].domain, dom) == 0) {
			ds[i].n++;
			if (arrival >= ds[i].arrival) {
				ds[i].arrival = arrival;
				str_copy(ds[i].last, sizeof(ds[0].last), err);
			}
			return;
		}
	if (*nd == max)
		return;
	str_copy(ds[*nd].domain, sizeof(ds[0].domain), dom);
	str_copy(ds[*nd].last, sizeof(ds[0].last), err);
	ds[*nd].arrival = arrival;
	ds[(*nd)++].n = 1;
}

static int
by_count_r(const void *a, const void *b)
{
	const struct reason *x = a, *y = b;
	return x->n < y->n ? 1 : x->n > y->n ? -1 : 0;
}

static int
by_count_d(const void *a, const void *b)
{
	const struct dest *x = a, *y = b;
	return x->n < y->n ? 1 : x->n > y->n ? -1 : 0;
}

static const char *
age_text(time_t secs, char *buf, size_t len)
{
	if (secs < 120)
		snprintf(buf, len, "%lds", (long)secs);
	else if (secs < 7200)
		snprintf(buf, len, "%ldm", (long)(secs / 60));
	else if (secs < 172800)
		snprintf(buf, len, "%ldh", (long)(secs / 3600));
	else
		snprintf(buf, len, "%ldd", (long)(secs / 86400));
	return buf;
}

/* Files in the maildrop older than a minute: what the pickup has not taken. */
static unsigned
stale_drops(const char *spool_dir)
{
	char path[4200];
	struct dirent *de;
	unsigned n = 0;
	time_t now = time(NULL);
	DIR *dir;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", spool_dir, LOCAL_MAILDROP);
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return 0;
	if ((dir = fdopendir(fd)) == NULL) {
		close(fd);
		return 0;
	}
	while ((de = readdir(dir)) != NULL) {
		struct stat st;
		if (de->d_name[0] != '.' && fstatat(dirfd(dir), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) && now - st.st_mtime > 60)
			n++;
	}
	closedir(dir);
	return n;
}

void
doc_check_queue(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;
	struct reason rs[64];
	struct dest ds[256];
	size_t nr = 0, nd = 0, n, loaded = 0;
	unsigned waiting = 0, deferred = 0, failed = 0, unreadable = 0, drops;
	char err[600], path[4200], found[1400], age[32], **ids;
	time_t now = time(NULL), oldest = 0;
	struct stat st;
	struct queue q;

	snprintf(path, sizeof(path), "%s/queue", cf->spool_dir);
	if (stat(path, &st) < 0)
		return;		/* no spool yet: said under spool */
	if (cli_queue_open(cf->spool_dir, 0, &q, err, sizeof(err)) < 0 ||
	    queue_list(&q, &ids, &n, err, sizeof(err)) < 0) {
		doc_add(d, DOC_FAIL, "queue", cf->spool_dir, err, "the queue cannot be read",
		    "see the spool lines above");
		return;
	}
	for (size_t k = 0; k < n && loaded < QUEUE_LOAD_MAX; k++) {
		struct qenv env;
		uint64_t off, len;
		int fd;

		if (queue_load(&q, ids[k], &env, &fd, &off, &len, err, sizeof(err)) < 0) {
			unreadable++;
			continue;
		}
		close(fd);
		loaded++;
		if (oldest == 0 || env.arrival < oldest)
			oldest = env.arrival;
		for (size_t r = 0; r < env.nrcpts; r++) {
			const struct qrcpt *qr = &env.rcpts[r];
			if (qr->state == QR_DONE)
				continue;
			waiting++;
			if (qr->last_error[0] == '\0')
				continue;
			if (qr->state == QR_FAILED)
				failed++;
			else
				deferred++;
			count_reason(rs, &nr, sizeof(rs) / sizeof(rs[0]), qr->last_error);
			count_dest(ds, &nd, sizeof(ds) / sizeof(ds[0]), qr->addr, qr->last_error,
			    env.arrival);
		}
		qenv_free(&env);
	}
	queue_list_free(ids, n);
	queue_close(&q);

	if (n == 0)
		snprintf(found, sizeof(found), "empty");
	else
		snprintf(found, sizeof(found), "%zu message%s, %u recipient%s waiting; the oldest "
		    "arrived %s ago%s", n, n == 1 ? "" : "s", waiting, waiting == 1 ? "" : "s",
		    age_text(now - oldest, age, sizeof(age)), unreadable ? "" : "");
	if (n > 0 && now - oldest > (time_t)cf->delay_warning)
		doc_add(d, DOC_WARN, "queue", cf->spool_dir, found, "mail older than delay_warning "
		    "has cost its senders a delay notice; after queue_lifetime it bounces",
		    "imsd queue shows each message's last error; imsd explain-recipient ADDRESS "
		    "its route");
	else
		doc_add(d, DOC_OK, "queue", cf->spool_dir, found, NULL, NULL);
	if (unreadable > 0) {
		snprintf(found, sizeof(found), "%u queue file%s cannot be read", unreadable,
		    unreadable == 1 ? "" : "s");
		doc_add(d, DOC_FAIL, "queue", cf->spool_dir, found, "their mail is never delivered",
		    "imsd queue names them and says why");
	}
	if (deferred + failed > 0) {
		size_t o = 0;
		qsort(rs, nr, sizeof(rs[0]), by_count_r);
		o = (size_t)snprintf(found, sizeof(found), "%u recipient%s deferred, %u failed; "
		    "most common: ", deferred, deferred == 1 ? "" : "s", failed);
		for (size_t i = 0; i < nr && i < REASONS_SHOWN && o < sizeof(found); i++)
			o += (size_t)snprintf(found + o, sizeof(found) - o, "%s%ux %s", i ? "; " : "",
			    rs[i].n, rs[i].example);
		doc_add(d, DOC_WARN, "queue.deferrals", cf->spool_dir, found, "deferred mail is "
		    "retried until queue_lifetime, then bounced", "imsd explain-recipient ADDRESS "
		    "for one of them; imsd flush retries every message now");
		qsort(ds, nd, sizeof(ds[0]), by_count_d);
		for (size_t i = 0; i < nd && i < DESTS_SHOWN; i++) {
			int auth = strstr(ds[i].last, "5.7.") != NULL || strstr(ds[i].last, "4.7.") !=
			    NULL || strcasestr(ds[i].last, "spf") != NULL ||
			    strcasestr(ds[i].last, "dkim") != NULL ||
			    strcasestr(ds[i].last, "dmarc") != NULL ||
			    strcasestr(ds[i].last, "reverse") != NULL ||
			    strcasestr(ds[i].last, "ptr") != NULL;
			snprintf(found, sizeof(found), "%u recipient%s, the last error: %s", ds[i].n,
			    ds[i].n == 1 ? "" : "s", ds[i].last);
			doc_add(d, DOC_WARN, "queue.failures", ds[i].domain, found, auth ? "the "
			    "receiver refuses this host's mail on policy grounds (authentication, "
			    "reputation)" : "mail to this destination does not get through",
			    auth ? "the dns.* and tls.* lines above say what receivers see; fix "
			    "those marked fail, then imsd flush" : "imsd explain-recipient "
			    "USER@DOMAIN shows the route and the error");
		}
	} else
		doc_add(d, DOC_OK, "queue.deferrals", cf->spool_dir, "no recipient deferred or "
		    "failed", NULL, NULL);
	if (d->server_running && (drops = stale_drops(cf->spool_dir)) > 0) {
		snprintf(found, sizeof(found), "%u message%s older than a minute wait in %s/%s",
		    drops, drops == 1 ? "" : "s", cf->spool_dir, LOCAL_MAILDROP);
		doc_add(d, DOC_WARN, "queue.maildrop", cf->spool_dir, found, "the server picks the "
		    "maildrop up every 10 seconds: these it cannot take", "the server's log says "
		    "why (event=maildrop-error, maildrop-corrupt)");
	}
}
