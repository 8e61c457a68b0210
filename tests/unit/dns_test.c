/*
 * dns_test — MX ordering (pure), and live lookups against a private dnsmasq on a loopback
 * port: MX order, implicit MX, NXDOMAIN, null MX, unresolvable MX hosts, REFUSED, and
 * SERVFAIL / timeout / unreachable servers played by sockets of this test. All traffic goes
 * to 127.0.0.1. Without a working /usr/sbin/dnsmasq each live test prints "FAIL FILE NAME —
 * reason" (a missing tool is a failure, never a skip: tests/run.py).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deliver/dns.h"
#include "net/ev.h"
#include "util/addr.h"
#include "t.h"

#define DNSMASQ "/usr/sbin/dnsmasq"

/* ---------------------------------------------------------------- pure: dns_sort_mx */

static unsigned
lcg(void *arg)
{
	uint32_t *s = arg;

	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void
mkhosts(struct dns_host *h, const char *names, const unsigned *prefs, size_t n)
{
	memset(h, 0, n * sizeof(*h));
	for (size_t i = 0; i < n; i++) {
		h[i].name[0] = names[i];
		h[i].pref = prefs[i];
	}
}

static void
order(const struct dns_host *h, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = h[i].name[0];
	out[n] = '\0';
}

TEST(sort_by_preference_stable)
{
	static const unsigned prefs[] = { 20, 10, 30, 10, 5, 10 };
	struct dns_host h[6];
	char o[8];

	mkhosts(h, "abcdef", prefs, 6);
	dns_sort_mx(h, 6, NULL, NULL);
	order(h, 6, o);
	CHECK_STR(o, "ebdfac");
	dns_sort_mx(h, 0, NULL, NULL);
	dns_sort_mx(h, 1, lcg, NULL);	/* n < 2: rnd never called */
}

TEST(sort_shuffles_equal_preference)
{
	static const unsigned prefs[] = { 20, 10, 30, 10, 5, 10 };
	char seen[6][8];
	int nseen = 0;

	for (uint32_t seed = 1; seed <= 60; seed++) {
		struct dns_host h[6], h2[6];
		uint32_t s = seed, s2 = seed;
		char o[8], o2[8];
		int k;

		mkhosts(h, "abcdef", prefs, 6);
		dns_sort_mx(h, 6, lcg, &s);
		order(h, 6, o);
		CHECK(o[0] == 'e' && o[4] == 'a' && o[5] == 'c');
		CHECK(strchr(o + 1, 'b') && strchr(o + 1, 'd') && strchr(o + 1, 'f'));
		for (int i = 1; i < 6; i++)
			CHECK(h[i - 1].pref <= h[i].pref);
		/* deterministic for a given generator state */
		mkhosts(h2, "abcdef", prefs, 6);
		dns_sort_mx(h2, 6, lcg, &s2);
		order(h2, 6, o2);
		CHECK_STR(o, o2);
		for (k = 0; k < nseen; k++)
			if (strcmp(seen[k], o) == 0)
				break;
		if (k == nseen && nseen < 6)
			strcpy(seen[nseen++], o);
	}
	/* 3 equal hosts have 6 orders; 60 draws must show most of them */
	CHECK(nseen >= 5);
}

/* ---------------------------------------------------------------- live harness */

static struct ev_loop *loop;
static pid_t dnsmasq_pid = -1;	/* the watchdog process that runs dnsmasq */
static int dnsmasq_lifeline = -1;	/* closing it stops dnsmasq */
static uint16_t dnsmasq_port;
static int outstanding;		/* callbacks still expected; the loop stops at 0 */
static long long deadline;

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct got {
	int n;
	enum dns_status st;
	int implicit;
	char why[160];
	char flat[4096];	/* "name/pref=addr,addr name/pref=addr" */
};

/* Record a result in a struct got. */
static void
record(void *arg, const struct dns_result *res)
{
	struct got *g = arg;
	size_t off = 0;

	g->n++;
	g->st = res->status;
	g->implicit = res->implicit_mx;
	snprintf(g->why, sizeof(g->why), "%s", res->why);
	g->flat[0] = '\0';
	for (size_t i = 0; i < res->nhosts; i++) {
		const struct dns_host *h = &res->hosts[i];

		off += (size_t)snprintf(g->flat + off, sizeof(g->flat) - off, "%s%s/%u=",
		    i ? " " : "", h->name, h->pref);
		for (size_t k = 0; k < h->naddrs && off < sizeof(g->flat); k++) {
			char b[NETADDR_STRLEN];

			off += (size_t)snprintf(g->flat + off, sizeof(g->flat) - off, "%s%s",
			    k ? "," : "", netaddr_str(&h->addrs[k], b, sizeof(b)));
		}
		if (off >= sizeof(g->flat))
			break;
	}
	if (getenv("DNS_TEST_VERBOSE") != NULL)
		fprintf(stderr, "  [%d] %s | %s\n", (int)g->st, g->why, g->flat);
	if (--outstanding == 0)
		ev_loop_break(loop);
}

static void
tick(void *arg)
{
	dns_tick(arg);
	if (now_ms() > deadline)
		ev_loop_break(loop);
}

/* Run the loop until every expected callback ran, or for at most secs seconds. */
static void
run(struct dns *d, int secs)
{
	deadline = now_ms() + secs * 1000LL;
	if (outstanding > 0)
		ev_loop_run(loop, tick, NULL, d);
}

static struct dns *
dns_at(uint16_t port, unsigned timeout_ms, unsigned tries)
{
	struct hostport hp;
	char err[200] = "";
	struct dns *d;

	memset(&hp, 0, sizeof(hp));
	netaddr_parse("127.0.0.1", &hp.addr);
	hp.port = port;
	d = dns_new_opts(loop, &hp, 1, timeout_ms, tries, err, sizeof(err));
	if (d == NULL)
		fprintf(stderr, "  dns_new: %s\n", err);
	return d;
}

/* A UDP socket on 127.0.0.1 with an ephemeral port. */
static int
udp_socket(uint16_t *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A port free for both UDP and TCP on 127.0.0.1 (racy, but we retry). */
static uint16_t
free_port(void)
{
	for (int i = 0; i < 20; i++) {
		uint16_t p;
		int u = udp_socket(&p), t;
		struct sockaddr_in sin;
		int ok;

		if (u < 0)
			continue;
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin.sin_port = htons(p);
		t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ok = t >= 0 && bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		if (t >= 0)
			close(t);
		close(u);
		if (ok)
			return p;
	}
	return 0;
}

/* Send one MX query for a.test and wait up to ms for any answer. */
static int
dns_ping(uint16_t port, int ms)
{
	static const unsigned char pkt[] = {
		0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		1, 'a', 4, 't', 'e', 's', 't', 0, 0, 15, 0, 1,
	};
	struct sockaddr_in sin;
	struct pollfd pfd;
	unsigned char buf[512];
	uint16_t myport;
	int fd = udp_socket(&myport), ok = 0;

	if (fd < 0)
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&sin, sizeof(sin)) == sizeof(pkt)) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, ms) == 1 && recv(fd, buf, sizeof(buf), 0) >= 12)
			ok = 1;
	}
	close(fd);
	return ok;
}

/* Start dnsmasq on a free loopback port; 0 ok. */
static int
start_dnsmasq(void)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		char portarg[32];
		uint16_t port = free_port();
		pid_t pid;

		if (port == 0)
			return -1;
		snprintf(portarg, sizeof(portarg), "--port=%u", port);
		char *argv[] = {
			/* -k, not --no-daemon: in debug mode dnsmasq serves a TCP client in its
			 * only process until the client hangs up, and c-ares keeps its TCP
			 * connection open, so every later UDP query would time out */
			DNSMASQ, "--keep-in-foreground", "--log-facility=-",
			"--conf-file=/dev/null", "--pid-file=",
			"--no-resolv", "--no-hosts", "--listen-address=127.0.0.1",
			"--bind-interfaces", portarg, "--local=/test/",
			"--mx-host=a.test,mx1.a.test,10", "--mx-host=a.test,mx2.a.test,20",
			"--host-record=mx1.a.test,127.0.0.2", "--host-record=mx2.a.test,127.0.0.3",
			"--host-record=nomx.test,127.0.0.4",
			"--host-record=dual.test,127.0.0.5,::5",
			"--mx-host=null.test,.,0",
			"--mx-host=dead.test,gone.test,10",
			"--mx-host=mix.test,gone.test,5", "--mx-host=mix.test,mx2.a.test,20",
			"--mx-host=eq.test,mx1.a.test,10", "--mx-host=eq.test,mx2.a.test,10",
			"--txt-record=txtonly.test,hello",
			NULL,
		};
		/* big.test: 25 MX (too large for UDP: c-ares retries over TCP), prefs 99..75,
		 * each with an address; many.test: 12 addresses */
		char extra[64][80];
		char *all[sizeof(argv) / sizeof(argv[0]) + 64];
		size_t na = 0, ne = 0;

		for (; argv[na] != NULL; na++)
			all[na] = argv[na];
		for (int i = 1; i <= 25; i++) {
			snprintf(extra[ne], sizeof(extra[ne]),
			    "--mx-host=big.test,a-rather-long-mail-exchanger-name-%d.big.test,%d",
			    i, 100 - i);
			all[na++] = extra[ne++];
			snprintf(extra[ne], sizeof(extra[ne]),
			    "--host-record=a-rather-long-mail-exchanger-name-%d.big.test,127.0.2.%d",
			    i, i);
			all[na++] = extra[ne++];
		}
		for (int i = 1; i <= 12; i++) {
			snprintf(extra[ne], sizeof(extra[ne]), "--host-record=many.test,127.0.1.%d", i);
			all[na++] = extra[ne++];
		}
		all[na] = NULL;

		int lifeline[2];

		if (pipe2(lifeline, O_CLOEXEC) < 0)
			return -1;
		pid = fork();
		if (pid < 0) {
			close(lifeline[0]);
			close(lifeline[1]);
			return -1;
		}
		if (pid == 0) {
			/* The watchdog: runs dnsmasq and kills it when the lifeline closes, which
			 * also happens when this test crashes, so no dnsmasq is ever left behind. */
			int fd = open("/dev/null", O_RDWR);
			pid_t child;

			close(lifeline[1]);
			if (fd >= 0) {
				dup2(fd, 0);
				dup2(fd, 1);
				dup2(fd, 2);
			}
			if ((child = fork()) == 0) {
				execv(DNSMASQ, all);
				_exit(127);
			}
			if (child < 0)
				_exit(1);
			for (;;) {
				struct pollfd pfd = { .fd = lifeline[0], .events = POLLIN };

				if (waitpid(child, NULL, WNOHANG) == child)
					_exit(1);	/* dnsmasq gave up */
				if (poll(&pfd, 1, 200) != 0)
					break;		/* EOF (or error): the test is gone */
			}
			kill(child, SIGTERM);
			waitpid(child, NULL, 0);
			_exit(0);
		}
		close(lifeline[0]);
		for (int i = 0; i < 30; i++) {
			if (waitpid(pid, NULL, WNOHANG) == pid) {
				pid = -1;	/* dnsmasq exited: port taken? try another */
				break;
			}
			if (dns_ping(port, 100)) {
				dnsmasq_pid = pid;
				dnsmasq_lifeline = lifeline[1];
				dnsmasq_port = port;
				return 0;
			}
		}
		close(lifeline[1]);
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
	return -1;
}

static void
stop_dnsmasq(void)
{
	if (dnsmasq_pid > 0) {
		close(dnsmasq_lifeline);	/* the watchdog stops dnsmasq and exits */
		waitpid(dnsmasq_pid, NULL, 0);
		dnsmasq_pid = -1;
	}
}

/* Resolve one mail domain against dnsmasq into g. */
static void
mail1(const char *domain, struct got *g)
{
	struct dns *d = dns_at(dnsmasq_port, 1000, 2);

	memset(g, 0, sizeof(*g));
	CHECK(d != NULL);
	if (d == NULL)
		return;
	outstanding = 1;
	CHECK(dns_resolve_mail(d, domain, record, g) != NULL);
	CHECK(g->n == 0);	/* never called back synchronously */
	run(d, 5);
	CHECK(g->n == 1);
	dns_free(d);
}

/* Resolve one host against dnsmasq into g. */
static void
host1(const char *host, struct got *g)
{
	struct dns *d = dns_at(dnsmasq_port, 1000, 2);

	memset(g, 0, sizeof(*g));
	CHECK(d != NULL);
	if (d == NULL)
		return;
	outstanding = 1;
	CHECK(dns_resolve_host(d, host, record, g) != NULL);
	CHECK(g->n == 0);
	run(d, 5);
	CHECK(g->n == 1);
	dns_free(d);
}

/* ---------------------------------------------------------------- live tests */

TEST(live_mx_order)
{
	struct got g;

	mail1("a.test", &g);
	CHECK(g.st == DNS_OK);
	CHECK(g.implicit == 0);
	CHECK_STR(g.flat, "mx1.a.test/10=127.0.0.2 mx2.a.test/20=127.0.0.3");
	mail1("A.Test.", &g);	/* trailing dot, case */
	CHECK(g.st == DNS_OK);
	CHECK_STR(g.flat, "mx1.a.test/10=127.0.0.2 mx2.a.test/20=127.0.0.3");
}

TEST(live_no_mx_implicit_a)
{
	struct got g;

	mail1("nomx.test", &g);
	CHECK(g.st == DNS_OK);
	CHECK(g.implicit == 1);
	CHECK_STR(g.flat, "nomx.test/0=127.0.0.4");
}

TEST(live_nxdomain)
{
	struct got g;

	mail1("nx.test", &g);
	CHECK(g.st == DNS_NXDOMAIN);
	CHECK(strstr(g.why, "nx.test") != NULL);
	CHECK_STR(g.flat, "");
}

TEST(live_null_mx)
{
	struct got g;

	mail1("null.test", &g);
	CHECK(g.st == DNS_NULLMX);
	CHECK(strstr(g.why, "null MX") != NULL);
	CHECK_STR(g.flat, "");
}

TEST(live_no_mx_no_address)
{
	struct got g;

	mail1("txtonly.test", &g);	/* exists (TXT), no MX, no A/AAAA */
	CHECK(g.st == DNS_NOHOSTS);
	CHECK_STR(g.why, "txtonly.test: no MX and no A/AAAA records");
}

TEST(live_mx_hosts_unresolvable)
{
	struct got g;

	mail1("dead.test", &g);	/* MX gone.test, which is NXDOMAIN */
	CHECK(g.st == DNS_TEMPFAIL);
	CHECK_STR(g.why, "dead.test: no MX host has an address");
	mail1("mix.test", &g);		/* the unresolvable better MX is dropped */
	CHECK(g.st == DNS_OK);
	CHECK_STR(g.flat, "mx2.a.test/20=127.0.0.3");
}

TEST(live_equal_preference_both_orders)
{
	int first1 = 0, first2 = 0;

	for (int i = 0; i < 24; i++) {
		struct got g;

		mail1("eq.test", &g);
		CHECK(g.st == DNS_OK);
		if (strcmp(g.flat, "mx1.a.test/10=127.0.0.2 mx2.a.test/10=127.0.0.3") == 0)
			first1++;
		else if (strcmp(g.flat, "mx2.a.test/10=127.0.0.3 mx1.a.test/10=127.0.0.2") == 0)
			first2++;
		else
			CHECK_STR(g.flat, "either order of mx1 and mx2");
	}
	CHECK(first1 > 0 && first2 > 0);
}

TEST(live_limits_and_tcp)
{
	struct got g;
	char want[4096];
	size_t off = 0;

	mail1("big.test", &g);		/* the answer is truncated over UDP: TCP retry */
	CHECK(g.st == DNS_OK);
	for (int i = 25; i > 5; i--)	/* the 20 best: prefs 75..94 */
		off += (size_t)snprintf(want + off, sizeof(want) - off,
		    "%sa-rather-long-mail-exchanger-name-%d.big.test/%d=127.0.2.%d",
		    i < 25 ? " " : "", i, 100 - i, i);
	CHECK_STR(g.flat, want);
	host1("many.test", &g);		/* 12 addresses, in dnsmasq's rotating order */
	CHECK(g.st == DNS_OK);
	CHECK(strncmp(g.flat, "many.test/0=", 12) == 0);
	{
		int n = 0, seen[13] = { 0 };

		for (char *p = g.flat + 12; *p != '\0'; n++) {
			int k = 0;

			CHECK(strncmp(p, "127.0.1.", 8) == 0);
			if (strncmp(p, "127.0.1.", 8) != 0)
				break;
			k = atoi(p + 8);
			CHECK(k >= 1 && k <= 12 && !seen[k]);
			if (k >= 1 && k <= 12)
				seen[k] = 1;
			p += strcspn(p, ",");
			if (*p == ',')
				p++;
		}
		CHECK(n == DNS_MAX_ADDRS);
	}
}

TEST(live_host_lookups)
{
	struct got g;

	host1("mx1.a.test", &g);
	CHECK(g.st == DNS_OK);
	CHECK(g.implicit == 0);
	CHECK_STR(g.flat, "mx1.a.test/0=127.0.0.2");
	host1("dual.test", &g);
	CHECK(g.st == DNS_OK);
	CHECK_STR(g.flat, "dual.test/0=127.0.0.5,::5");
	host1("gone.test", &g);
	CHECK(g.st == DNS_NXDOMAIN);
	host1("a.test", &g);		/* has MX records only */
	CHECK(g.st == DNS_NOHOSTS);
	host1("127.0.0.9", &g);	/* literal: finishes at once, delivered from the loop */
	CHECK(g.st == DNS_OK);
	CHECK_STR(g.flat, "127.0.0.9/0=127.0.0.9");
	host1("::1", &g);
	CHECK_STR(g.flat, "::1/0=::1");
	host1("localhost", &g);
	CHECK_STR(g.flat, "localhost/0=127.0.0.1,::1");
}

TEST(live_refused_is_tempfail)
{
	struct got g;

	mail1("outside.example", &g);	/* dnsmasq: REFUSED outside its local domain */
	CHECK(g.st == DNS_TEMPFAIL);
	CHECK(strstr(g.why, "outside.example: ") == g.why);
}

static void
must_not_run(void *arg, const struct dns_result *res)
{
	int *called = arg;

	(*called)++;
}

struct canceller {
	struct dns_query **victims;
	size_t n;
	struct got g;
};

/* The first callback cancels the others, queued ones and in-flight ones alike. */
static void
cancel_others(void *arg, const struct dns_result *res)
{
	struct canceller *c = arg;

	for (size_t i = 0; i < c->n; i++)
		dns_cancel(c->victims[i]);
	record(&c->g, res);
}

TEST(live_cancel)
{
	struct dns *d = dns_at(dnsmasq_port, 1000, 2);
	struct dns_query *v[3], *q;
	struct canceller c;
	struct got g;
	int called = 0;

	CHECK(d != NULL);
	if (d == NULL)
		return;
	memset(&g, 0, sizeof(g));
	memset(&c, 0, sizeof(c));
	/* cancelled right away, before any answer */
	q = dns_resolve_mail(d, "a.test", must_not_run, &called);
	CHECK(q != NULL);
	dns_cancel(q);
	/* cancelled right away after finishing synchronously */
	q = dns_resolve_host(d, "127.0.0.7", must_not_run, &called);
	dns_cancel(q);
	/* cancelled from inside another query's callback */
	c.victims = v;
	c.n = 3;
	outstanding = 2;
	CHECK(dns_resolve_host(d, "127.0.0.8", cancel_others, &c) != NULL);
	v[0] = dns_resolve_host(d, "127.0.0.9", must_not_run, &called);	/* queued behind */
	v[1] = dns_resolve_mail(d, "a.test", must_not_run, &called);		/* in flight */
	v[2] = dns_resolve_host(d, "mx2.a.test", must_not_run, &called);	/* in flight */
	CHECK(dns_resolve_mail(d, "nomx.test", record, &g) != NULL);		/* not cancelled */
	run(d, 5);
	CHECK(c.g.n == 1 && c.g.st == DNS_OK);
	CHECK(g.n == 1 && g.st == DNS_OK);
	/* let the cancelled in-flight queries' answers arrive, then check nobody was called */
	outstanding = 1;
	memset(&g, 0, sizeof(g));
	CHECK(dns_resolve_mail(d, "mix.test", record, &g) != NULL);
	run(d, 5);
	CHECK(g.n == 1);
	CHECK(called == 0);
	dns_free(d);
}

/* A fake server answering every query with SERVFAIL. */
struct servfail {
	struct ev_io io;
	int fd;
	int answered;
};

static void
servfail_cb(struct ev_io *io, uint32_t events)
{
	struct servfail *s = io->arg;
	unsigned char buf[512];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	ssize_t n;

	while ((n = recvfrom(s->fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl)) >= 12) {
		buf[2] = 0x81;		/* QR, RD */
		buf[3] = 0x82;		/* RA, rcode 2 = SERVFAIL */
		sendto(s->fd, buf, (size_t)n, 0, (struct sockaddr *)&ss, sl);
		s->answered++;
		sl = sizeof(ss);
	}
}

TEST(tempfail_servfail)
{
	struct servfail s;
	uint16_t port;
	struct dns *d;
	struct got g;
	long long t0;

	memset(&s, 0, sizeof(s));
	memset(&g, 0, sizeof(g));
	s.fd = udp_socket(&port);
	CHECK(s.fd >= 0);
	if (s.fd < 0)
		return;
	CHECK(ev_io_start(loop, &s.io, s.fd, EPOLLIN, servfail_cb, &s) == 0);
	d = dns_at(port, 1000, 2);
	CHECK(d != NULL);
	if (d != NULL) {
		t0 = now_ms();
		outstanding = 1;
		CHECK(dns_resolve_mail(d, "example.org", record, &g) != NULL);
		run(d, 5);
		CHECK(g.n == 1 && g.st == DNS_TEMPFAIL);
		CHECK(strstr(g.why, "example.org: ") == g.why && strstr(g.why, "SERVFAIL"));
		CHECK(s.answered >= 1);
		CHECK(now_ms() - t0 < 2000);	/* an answer, not a timeout */
		dns_free(d);
	}
	ev_io_stop(loop, &s.io);
	close(s.fd);
}

TEST(tempfail_timeout)
{
	uint16_t port;
	int fd = udp_socket(&port);	/* bound, never read: queries go unanswered */
	struct dns *d;
	struct got g, h;
	long long t0, dt;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	memset(&g, 0, sizeof(g));
	memset(&h, 0, sizeof(h));
	d = dns_at(port, 500, 2);	/* 0.5 s + 1 s, processed by the 1 s tick */
	CHECK(d != NULL);
	if (d != NULL) {
		t0 = now_ms();
		outstanding = 2;
		CHECK(dns_resolve_mail(d, "example.org", record, &g) != NULL);
		CHECK(dns_resolve_host(d, "relay.example.org", record, &h) != NULL);
		run(d, 8);
		dt = now_ms() - t0;
		CHECK(g.n == 1 && g.st == DNS_TEMPFAIL);
		CHECK_STR(g.why, "example.org: timeout");
		CHECK(h.n == 1 && h.st == DNS_TEMPFAIL);
		CHECK_STR(h.why, "relay.example.org: A/AAAA lookup failed: timeout");
		CHECK(dt >= 1000 && dt <= 4000);
		dns_free(d);
	}
	close(fd);
}

TEST(tempfail_unreachable)
{
	uint16_t port;
	int fd = udp_socket(&port);
	struct dns *d;
	struct got g;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	close(fd);		/* nothing listens there now: ICMP port unreachable */
	memset(&g, 0, sizeof(g));
	d = dns_at(port, 500, 2);
	CHECK(d != NULL);
	if (d == NULL)
		return;
	outstanding = 1;
	CHECK(dns_resolve_mail(d, "example.org", record, &g) != NULL);
	run(d, 8);
	CHECK(g.n == 1 && g.st == DNS_TEMPFAIL);
	dns_free(d);
}

TEST(free_with_outstanding_queries)
{
	uint16_t port;
	int fd = udp_socket(&port);
	struct dns *d;
	int called = 0;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	d = dns_at(port, 500, 2);
	CHECK(d != NULL);
	if (d != NULL) {
		CHECK(dns_resolve_mail(d, "example.org", must_not_run, &called) != NULL);
		CHECK(dns_resolve_host(d, "relay.example.org", must_not_run, &called) != NULL);
		CHECK(dns_resolve_host(d, "127.0.0.1", must_not_run, &called) != NULL);
		dns_free(d);	/* no callbacks, nothing leaked (ASan) */
	}
	CHECK(called == 0);
	/* bad input: no query, no callback */
	d = dns_at(port, 500, 2);
	if (d != NULL) {
		char longname[300];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		CHECK(dns_resolve_mail(d, "", must_not_run, &called) == NULL);
		CHECK(dns_resolve_mail(d, ".", must_not_run, &called) == NULL);
		CHECK(dns_resolve_host(d, longname, must_not_run, &called) == NULL);
		dns_free(d);
	}
	CHECK(called == 0);
	close(fd);
}

/* A live test that cannot run: scripts/deps.sh test installs dnsmasq, so its absence (or
 * a dnsmasq that does not start) is a broken machine, counted as each test's failure. */
static void
fail_unrun(const char *name, const char *why)
{
	printf("FAIL %s %s — %s\n", __FILE__, name, why);
	fflush(stdout);
	t_tests_failed++;
}

int
main(void)
{
	static const char *const live[] = {
		"live_mx_order", "live_no_mx_implicit_a", "live_nxdomain", "live_null_mx",
		"live_no_mx_no_address", "live_mx_hosts_unresolvable",
		"live_equal_preference_both_orders", "live_limits_and_tcp",
		"live_host_lookups",
		"live_refused_is_tempfail", "live_cancel",
	};
	const char *why = NULL;

	signal(SIGPIPE, SIG_IGN);
	RUN(sort_by_preference_stable);
	RUN(sort_shuffles_equal_preference);

	loop = ev_loop_new();
	if (loop == NULL) {
		printf("FAIL %s ev_loop_new\n", __FILE__);
		return 1;
	}
	RUN(tempfail_servfail);
	RUN(tempfail_timeout);
	RUN(tempfail_unreachable);
	RUN(free_with_outstanding_queries);

	if (access(DNSMASQ, X_OK) != 0)
		why = DNSMASQ " is not installed (Debian package dnsmasq-base; scripts/deps.sh test)";
	else if (start_dnsmasq() < 0)
		why = DNSMASQ " is installed but did not start";
	if (why != NULL) {
		for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
			fail_unrun(live[i], why);
	} else {
		RUN(live_mx_order);
		RUN(live_no_mx_implicit_a);
		RUN(live_nxdomain);
		RUN(live_null_mx);
		RUN(live_no_mx_no_address);
		RUN(live_mx_hosts_unresolvable);
		RUN(live_equal_preference_both_orders);
		RUN(live_limits_and_tcp);
		RUN(live_host_lookups);
		RUN(live_refused_is_tempfail);
		RUN(live_cancel);
		stop_dnsmasq();
	}
	ev_loop_free(loop);
	T_EXIT();
}
