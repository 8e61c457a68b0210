/*
 * tls_test.c — the OpenSSL wrapper: self-signed generation, context loading and its error
 * messages, and non-blocking handshake/read/write over a socketpair.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "t.h"
#include "tls/tls.h"

#define HOST	"mx.test.example"
#define ROUNDS	200

static char tdir[PATH_MAX - 64];
static char cert1[PATH_MAX], key1[PATH_MAX], cert2[PATH_MAX], key2[PATH_MAX];
static struct tls_ctx *srv_ctx, *cli_ctx;

static void
rm_tree(void)
{
	const char *files[] = { cert1, key1, cert2, key2 };
	char sub[PATH_MAX + 8];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i][0] != '\0')
			unlink(files[i]);
	snprintf(sub, sizeof(sub), "%s/a/b", tdir);
	rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/a", tdir);
	rmdir(sub);
	rmdir(tdir);
}

static void
nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Alternate handshake calls until both sides finish, one fails, or ROUNDS run out. */
static int
handshake_pair(struct tls_conn *s, struct tls_conn *c, int *srv_st, int *cli_st)
{
	int i;

	*srv_st = *cli_st = TLS_WANT_READ;
	for (i = 0; i < ROUNDS; i++) {
		if (*cli_st != TLS_OK && *cli_st != TLS_ERR)
			*cli_st = tls_handshake(c);
		if (*srv_st != TLS_OK && *srv_st != TLS_ERR)
			*srv_st = tls_handshake(s);
		if ((*srv_st == TLS_OK && *cli_st == TLS_OK) ||
		    *srv_st == TLS_ERR || *cli_st == TLS_ERR)
			break;
	}
	return *srv_st == TLS_OK && *cli_st == TLS_OK ? 0 : -1;
}

/* Read into buf until something arrives or a status other than TLS_WANT_READ comes back. */
static ssize_t
read_some(struct tls_conn *c, char *buf, size_t len)
{
	ssize_t n = TLS_WANT_READ;
	int i;

	for (i = 0; i < ROUNDS && n == TLS_WANT_READ; i++)
		n = tls_read(c, buf, len);
	return n;
}

TEST(selfsigned_cert_loads_and_matches_key)
{
	char err[512], subj[256], na[64];
	struct stat st;
	time_t exp = 0, now = time(NULL);
	double years;

	err[0] = '\0';
	CHECK(tls_selfsigned_generate(HOST, cert1, key1, err, sizeof(err)) == 0);
	if (err[0] != '\0')
		fprintf(stderr, "  generate: %s\n", err);
	CHECK(stat(key1, &st) == 0 && (st.st_mode & 07777) == 0600);
	CHECK(stat(cert1, &st) == 0 && S_ISREG(st.st_mode));

	srv_ctx = tls_server_ctx_new(cert1, key1, err, sizeof(err));
	CHECK(srv_ctx != NULL);
	if (srv_ctx == NULL) {
		fprintf(stderr, "  load: %s\n", err);
		return;
	}
	CHECK(tls_ctx_cert_info(srv_ctx, subj, sizeof(subj), na, sizeof(na), &exp) == 0);
	CHECK(strstr(subj, HOST) != NULL);
	years = difftime(exp, now) / (365.25 * 86400);
	CHECK(years > 9.9 && years < 10.1);
	CHECK(strlen(na) == strlen("YYYY-MM-DD HH:MM:SS UTC"));
	CHECK(strstr(na, " UTC") != NULL);
}

TEST(mismatched_key_is_an_error_naming_the_key_file)
{
	char err[512];
	struct tls_ctx *ctx;

	err[0] = '\0';
	CHECK(tls_selfsigned_generate(HOST, cert2, key2, err, sizeof(err)) == 0);
	ctx = tls_server_ctx_new(cert1, key2, err, sizeof(err));
	CHECK(ctx == NULL);
	CHECK(strstr(err, key2) != NULL);
	tls_ctx_unref(ctx);
	ctx = tls_server_ctx_new(cert2, key1, err, sizeof(err));
	CHECK(ctx == NULL);
	CHECK(strstr(err, key1) != NULL);
	tls_ctx_unref(ctx);
}

TEST(missing_cert_file_error_names_it)
{
	char err[512], missing[PATH_MAX + 16], bogus[PATH_MAX + 16];
	struct tls_ctx *ctx;
	FILE *fp;

	snprintf(missing, sizeof(missing), "%s/nope.pem", tdir);
	ctx = tls_server_ctx_new(missing, key1, err, sizeof(err));
	CHECK(ctx == NULL);
	CHECK(strstr(err, missing) != NULL);

	/* A readable file holding no certificate is named too. */
	snprintf(bogus, sizeof(bogus), "%s/bogus.pem", tdir);
	if ((fp = fopen(bogus, "w")) != NULL) {
		fputs("not a certificate\n", fp);
		fclose(fp);
	}
	ctx = tls_server_ctx_new(bogus, key1, err, sizeof(err));
	CHECK(ctx == NULL);
	CHECK(strstr(err, bogus) != NULL);
	CHECK(strstr(err, "no certificate") != NULL);
	unlink(bogus);
}

TEST(nonblocking_handshake_and_echo_over_socketpair)
{
	int sv[2], ss, cs;
	struct tls_conn *s, *c;
	char buf[64];
	ssize_t n;
	const char *v;

	if (srv_ctx == NULL || cli_ctx == NULL) {
		CHECK(!"contexts");
		return;
	}
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	nonblock(sv[0]);
	nonblock(sv[1]);
	s = tls_conn_new(srv_ctx, sv[0], 1, NULL);
	c = tls_conn_new(cli_ctx, sv[1], 0, HOST);
	CHECK(s != NULL && c != NULL);
	if (s == NULL || c == NULL)
		goto out;
	CHECK(handshake_pair(s, c, &ss, &cs) == 0);
	if (ss != TLS_OK || cs != TLS_OK) {
		fprintf(stderr, "  server: %s; client: %s\n", tls_conn_error(s),
		    tls_conn_error(c));
		goto out;
	}
	CHECK(tls_write(c, "hello", 5) == 5);
	n = read_some(s, buf, sizeof(buf));
	CHECK(n == 5 && memcmp(buf, "hello", 5) == 0);
	CHECK(tls_pending(s) == 0);
	CHECK(tls_write(s, "world", 5) == 5);
	n = read_some(c, buf, sizeof(buf));
	CHECK(n == 5 && memcmp(buf, "world", 5) == 0);

	v = tls_conn_version(s);
	CHECK(strcmp(v, "TLSv1.2") == 0 || strcmp(v, "TLSv1.3") == 0);
	CHECK_STR(tls_conn_version(c), v);
	CHECK(tls_conn_cipher(s)[0] != '\0');
	CHECK_STR(tls_conn_cipher(c), tls_conn_cipher(s));
	CHECK(tls_conn_bits(s) >= 128);

	/* Nothing to read yet: want-read, not 0. */
	CHECK(tls_read(s, buf, sizeof(buf)) == TLS_WANT_READ);
out:
	tls_conn_free(s);
	tls_conn_free(c);
	close(sv[0]);
	close(sv[1]);
}

TEST(tls_1_1_client_is_refused)
{
	int sv[2], i, r, e, st = TLS_WANT_READ, cdone = 0;
	SSL_CTX *old;
	SSL *cl = NULL;
	struct tls_conn *s = NULL;

	if (srv_ctx == NULL) {
		CHECK(!"server context");
		return;
	}
	/* A client that would speak TLS 1.1 at most (security level 0 lets it try). */
	old = SSL_CTX_new(TLS_client_method());
	CHECK(old != NULL);
	if (old == NULL)
		return;
	SSL_CTX_set_security_level(old, 0);
	SSL_CTX_set_cipher_list(old, "DEFAULT:@SECLEVEL=0");
	SSL_CTX_set_min_proto_version(old, TLS1_VERSION);
	CHECK(SSL_CTX_set_max_proto_version(old, TLS1_1_VERSION) == 1);

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	nonblock(sv[0]);
	nonblock(sv[1]);
	s = tls_conn_new(srv_ctx, sv[0], 1, NULL);
	cl = SSL_new(old);
	CHECK(s != NULL && cl != NULL);
	if (s == NULL || cl == NULL)
		goto out;
	SSL_set_fd(cl, sv[1]);
	SSL_set_connect_state(cl);
	for (i = 0; i < ROUNDS; i++) {
		if (!cdone) {
			ERR_clear_error();
			r = SSL_do_handshake(cl);
			e = SSL_get_error(cl, r);
			if (r == 1 || (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE))
				cdone = 1;
			ERR_clear_error();
		}
		if (st == TLS_WANT_READ || st == TLS_WANT_WRITE)
			st = tls_handshake(s);
		if (st == TLS_OK || st == TLS_ERR)
			break;
	}
	CHECK(st == TLS_ERR);
	CHECK(strstr(tls_conn_error(s), "handshake") != NULL);
	CHECK(strstr(tls_conn_error(s), "protocol") != NULL);
	if (st != TLS_ERR)
		fprintf(stderr, "  server status %d, version %s\n", st, tls_conn_version(s));
	tls_shutdown(s);	/* must be harmless after a failed handshake */
out:
	SSL_free(cl);
	SSL_CTX_free(old);
	tls_conn_free(s);
	close(sv[0]);
	close(sv[1]);
}

TEST(peer_close_reads_as_tls_closed)
{
	int sv[2], ss, cs, round;
	struct tls_conn *s, *c;
	char buf[64];
	ssize_t n;

	if (srv_ctx == NULL || cli_ctx == NULL) {
		CHECK(!"contexts");
		return;
	}
	/* Round 0: orderly close_notify. Round 1: bare EOF, no close_notify. */
	for (round = 0; round < 2; round++) {
		CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
		nonblock(sv[0]);
		nonblock(sv[1]);
		s = tls_conn_new(srv_ctx, sv[0], 1, NULL);
		c = tls_conn_new(cli_ctx, sv[1], 0, NULL);
		CHECK(s != NULL && c != NULL);
		if (s != NULL && c != NULL && handshake_pair(s, c, &ss, &cs) == 0) {
			if (round == 0)
				tls_shutdown(c);
			else
				shutdown(sv[1], SHUT_WR);
			n = read_some(s, buf, sizeof(buf));
			CHECK(n == TLS_CLOSED);
			CHECK(strstr(tls_conn_error(s), "closed") != NULL);
			if (n != TLS_CLOSED)
				fprintf(stderr, "  round %d: %zd %s\n", round, n,
				    tls_conn_error(s));
			/* Again: still closed, never 0. */
			n = tls_read(s, buf, sizeof(buf));
			CHECK(n == TLS_CLOSED || n == TLS_ERR);
			tls_shutdown(s);
		} else
			CHECK(!"handshake");
		tls_conn_free(s);
		tls_conn_free(c);
		close(sv[0]);
		close(sv[1]);
	}
}

TEST(handshake_with_vanished_peer_fails_saying_so)
{
	int sv[2], st, i;
	struct tls_conn *s;

	if (srv_ctx == NULL) {
		CHECK(!"server context");
		return;
	}
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	nonblock(sv[0]);
	close(sv[1]);
	s = tls_conn_new(srv_ctx, sv[0], 1, NULL);
	CHECK(s != NULL);
	if (s == NULL) {
		close(sv[0]);
		return;
	}
	st = TLS_WANT_READ;
	for (i = 0; i < ROUNDS && (st == TLS_WANT_READ || st == TLS_WANT_WRITE); i++)
		st = tls_handshake(s);
	CHECK(st == TLS_ERR);
	CHECK(strstr(tls_conn_error(s), "peer closed") != NULL);
	tls_conn_free(s);
	close(sv[0]);
}

TEST(context_outlives_its_last_unref_while_a_conn_holds_it)
{
	char err[512];
	struct tls_ctx *ctx;
	struct tls_conn *c;
	int sv[2];

	ctx = tls_server_ctx_new(cert1, key1, err, sizeof(err));
	CHECK(ctx != NULL);
	if (ctx == NULL)
		return;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	c = tls_conn_new(ctx, sv[0], 1, NULL);
	CHECK(c != NULL);
	tls_ctx_ref(ctx);
	tls_ctx_unref(ctx);
	tls_ctx_unref(ctx);	/* the conn still holds one; ASan would catch a use after free */
	CHECK(tls_conn_version(c)[0] == '\0');
	tls_conn_free(c);
	close(sv[0]);
	close(sv[1]);
}

int
main(void)
{
	char err[512];

	signal(SIGPIPE, SIG_IGN);
	snprintf(tdir, sizeof(tdir), "%s/tls_test.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	/* Nested, not yet existing directories: generation must create them. */
	snprintf(cert1, sizeof(cert1), "%s/a/b/cert1.pem", tdir);
	snprintf(key1, sizeof(key1), "%s/a/b/key1.pem", tdir);
	snprintf(cert2, sizeof(cert2), "%s/a/cert2.pem", tdir);
	snprintf(key2, sizeof(key2), "%s/a/key2.pem", tdir);
	if ((cli_ctx = tls_client_ctx_new(err, sizeof(err))) == NULL)
		fprintf(stderr, "client ctx: %s\n", err);

	RUN(selfsigned_cert_loads_and_matches_key);
	RUN(mismatched_key_is_an_error_naming_the_key_file);
	RUN(missing_cert_file_error_names_it);
	RUN(nonblocking_handshake_and_echo_over_socketpair);
	RUN(tls_1_1_client_is_refused);
	RUN(peer_close_reads_as_tls_closed);
	RUN(handshake_with_vanished_peer_fails_saying_so);
	RUN(context_outlives_its_last_unref_while_a_conn_holds_it);

	tls_ctx_unref(srv_ctx);
	tls_ctx_unref(cli_ctx);
	rm_tree();
	T_EXIT();
}
