/*
 * smtpload — the benchmark's SMTP client, modelled on Postfix's smtp-source.
 *
 * smtp-source cannot send "N messages per connection": without -d it sends one message per
 * connection, with -d every session keeps its connection until the global count is used up.
 * The grid needs 1 and 10 messages per connection, and the STARTTLS test needs a client that
 * does STARTTLS; so this is smtp-source's protocol, with those two knobs:
 *
 *   smtpload -s SESSIONS -m TOTAL -r MSGS_PER_CONN -l LENGTH [-T] [-f FROM] [-t TO] HOST:PORT
 *
 * Like smtp-source: one command at a time (no PIPELINING), EHLO, MAIL, RCPT, DATA, headers
 * From/To/Date/Message-Id, a body of LENGTH octets in 80-column lines, QUIT. Each of SESSIONS
 * threads connects, sends up to MSGS_PER_CONN messages (claimed from the shared TOTAL), QUITs
 * and reconnects until TOTAL is used up. -T: STARTTLS (full handshake, no session resumption,
 * no certificate verification) and EHLO again before the first message.
 *
 * Any reply other than the expected one is fatal (exit 1), as in smtp-source. At the end it
 * prints "sent=N connections=N seconds=S" on stdout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static struct sockaddr_in server;
static long total, per_conn = 1, length = 0;
static int use_tls;
static const char *from = "bench@client.example", *to = "rcpt@bench.example";
static char *message;		/* headers + body + ".\r\n", already dot-stuffed (never a leading dot) */
static size_t message_len;
static atomic_long remaining, sent, connections;
static SSL_CTX *ctx;
static int timeout_s = 60;
static char tls_desc[128];	/* protocol and cipher of the first TLS session */
static pthread_mutex_t tls_desc_lock = PTHREAD_MUTEX_INITIALIZER;

struct conn {
	int fd;
	SSL *ssl;
	char buf[8192];
	size_t have;
};

static void
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "smtpload: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void
put(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w;
		if (c->ssl) {
			int r = SSL_write(c->ssl, p, (int)n);
			if (r <= 0)
				die("SSL_write: error %d", SSL_get_error(c->ssl, r));
			w = r;
		} else {
			w = write(c->fd, p, n);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				die("write: %s", strerror(errno));
			}
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Read one complete (possibly multi-line) reply; return its code. */
static int
reply(struct conn *c, const char *what)
{
	for (;;) {
		/* look for the last line of a reply: "NNN " at a line start, ended by LF */
		size_t start = 0;
		for (size_t i = 0; i < c->have; i++) {
			if (c->buf[i] != '\n')
				continue;
			if (i - start >= 3 && (i - start == 3 || c->buf[start + 3] == ' ' ||
			    c->buf[start + 3] == '\r')) {
				int code = atoi(c->buf + start);
				memmove(c->buf, c->buf + i + 1, c->have - i - 1);
				c->have -= i + 1;
				return code;
			}
			start = i + 1;
		}
		if (c->have == sizeof c->buf)
			die("%s: reply too long", what);
		ssize_t r;
		if (c->ssl) {
			int n = SSL_read(c->ssl, c->buf + c->have, (int)(sizeof c->buf - c->have));
			if (n <= 0)
				die("%s: SSL_read: error %d", what, SSL_get_error(c->ssl, n));
			r = n;
		} else {
			r = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				die("%s: read: %s", what, strerror(errno));
			if (r == 0)
				die("%s: connection closed by server", what);
		}
		c->have += (size_t)r;
	}
}

static void
cmd(struct conn *c, int want, const char *what, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 2, fmt, ap);
	va_end(ap);
	memcpy(line + n, "\r\n", 2);
	put(c, line, (size_t)n + 2);
	int code = reply(c, what);
	if (code / 100 != want / 100)
		die("%s: unexpected reply %d", what, code);
}

static void
session(long nmsg)
{
	struct conn c = { .fd = -1 };
	c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c.fd < 0)
		die("socket: %s", strerror(errno));
	struct timeval tv = { .tv_sec = timeout_s };
	setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	int one = 1;
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	int tries = 0;
	while (connect(c.fd, (struct sockaddr *)&server, sizeof server) < 0) {
		if ((errno == ECONNREFUSED || errno == EAGAIN) && ++tries < 5) {
			usleep(100000);
			continue;
		}
		die("connect: %s", strerror(errno));
	}
	atomic_fetch_add(&connections, 1);
	int code = reply(&c, "greeting");
	if (code != 220)
		die("greeting: %d", code);
	cmd(&c, 250, "EHLO", "EHLO client.example");
	if (use_tls) {
		cmd(&c, 220, "STARTTLS", "STARTTLS");
		if (c.have)
			die("STARTTLS: data after 220");
		c.ssl = SSL_new(ctx);
		if (!c.ssl)
			die("SSL_new");
		SSL_set_fd(c.ssl, c.fd);
		if (SSL_connect(c.ssl) != 1) {
			unsigned long e = ERR_get_error();
			die("TLS handshake: %s", e ? ERR_error_string(e, NULL) : "failed");
		}
		pthread_mutex_lock(&tls_desc_lock);
		if (!tls_desc[0])
			snprintf(tls_desc, sizeof tls_desc, "%s/%s", SSL_get_version(c.ssl),
			    SSL_get_cipher_name(c.ssl));
		pthread_mutex_unlock(&tls_desc_lock);
		cmd(&c, 250, "EHLO after STARTTLS", "EHLO client.example");
	}
	for (long i = 0; i < nmsg; i++) {
		cmd(&c, 250, "MAIL", "MAIL FROM:<%s>", from);
		cmd(&c, 250, "RCPT", "RCPT TO:<%s>", to);
		cmd(&c, 354, "DATA", "DATA");
		put(&c, message, message_len);
		code = reply(&c, "end of data");
		if (code != 250)
			die("end of data: unexpected reply %d", code);
		atomic_fetch_add(&sent, 1);
	}
	cmd(&c, 221, "QUIT", "QUIT");
	if (c.ssl) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	close(c.fd);
}

static void *
worker(void *arg)
{
	(void)arg;
	for (;;) {
		long cur = atomic_load(&remaining), take;
		do {
			if (cur <= 0)
				return NULL;
			take = cur < per_conn ? cur : per_conn;
		} while (!atomic_compare_exchange_weak(&remaining, &cur, cur - take));
		session(take);
	}
}

static void
build_message(void)
{
	char date[64];
	time_t now = time(NULL);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", gmtime(&now));
	size_t cap = (size_t)length + (size_t)length / 40 + 1024;
	message = malloc(cap);
	if (!message)
		die("out of memory");
	int n = snprintf(message, cap, "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\n"
	    "Message-Id: <%d.smtpload@client.example>\r\nSubject: benchmark\r\n\r\n",
	    from, to, date, (int)getpid());
	size_t off = (size_t)n;
	/* smtp-source's body: LENGTH octets of 'X', a digit every 80 columns, CRLF every 80 */
	char *body = message + off;
	memset(body, 'X', (size_t)length);
	for (long i = 80; i < length; i += 80) {
		body[i - 80] = "0123456789"[(i / 80) % 10];
		body[i - 2] = '\r';
		body[i - 1] = '\n';
	}
	off += (size_t)length;
	memcpy(message + off, "\r\n.\r\n", 5);
	message_len = off + 5;
}

int
main(int argc, char **argv)
{
	long sessions = 1;
	int ch;
	while ((ch = getopt(argc, argv, "s:m:r:l:Tf:t:w:")) != -1) {
		switch (ch) {
		case 's': sessions = atol(optarg); break;
		case 'm': total = atol(optarg); break;
		case 'r': per_conn = atol(optarg); break;
		case 'l': length = atol(optarg); break;
		case 'T': use_tls = 1; break;
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'w': timeout_s = atoi(optarg); break;
		default:
			die("usage: smtpload -s SESSIONS -m TOTAL -r PER_CONN -l LENGTH [-T] [-f FROM] "
			    "[-t TO] [-w TIMEOUT] HOST:PORT");
		}
	}
	if (optind != argc - 1 || sessions < 1 || total < 1 || per_conn < 1 || length < 0)
		die("bad arguments (smtpload -s SESSIONS -m TOTAL -r PER_CONN -l LENGTH HOST:PORT)");
	char *hp = argv[optind], *colon = strrchr(hp, ':');
	if (!colon)
		die("HOST:PORT expected");
	*colon = 0;
	server.sin_family = AF_INET;
	server.sin_port = htons((unsigned short)atoi(colon + 1));
	if (inet_pton(AF_INET, hp, &server.sin_addr) != 1)
		die("%s: not an IPv4 address", hp);
	signal(SIGPIPE, SIG_IGN);
	build_message();
	if (use_tls) {
		ctx = SSL_CTX_new(TLS_client_method());
		if (!ctx)
			die("SSL_CTX_new");
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	}
	atomic_store(&remaining, total);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_t *th = calloc((size_t)sessions, sizeof *th);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (long i = 0; i < sessions; i++)
		if (pthread_create(&th[i], &attr, worker, NULL) != 0)
			die("pthread_create failed");
	for (long i = 0; i < sessions; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("sent=%ld connections=%ld seconds=%.4f%s%s\n", atomic_load(&sent),
	    atomic_load(&connections), secs, tls_desc[0] ? " tls=" : "", tls_desc);
	return 0;
}
