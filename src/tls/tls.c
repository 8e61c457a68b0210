/*
 * tls.c — the OpenSSL 3 wrapper behind tls.h.
 *
 * Everything that touches OpenSSL lives here. Each SSL_* call that can fail is preceded by
 * ERR_clear_error() (OpenSSL reports through a per-thread queue, and a stale entry would
 * make SSL_get_error lie), and every failure path drains the queue into a message so
 * nothing leaks into an unrelated connection's diagnosis.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <poll.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"
#include "tls/tls_int.h"

/* TLS 1.2 suites: forward secret key exchange and AEAD only (TLS 1.3 keeps its defaults). */
#define TLS12_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

#define SELFSIGNED_YEARS	10
#define CN_MAX			64	/* RFC 5280 ub-common-name */

struct tls_conn {
	SSL		*ssl;
	struct tls_ctx	*ctx;
	int		 server;
	int		 fatal;		/* SSL_ERROR_SSL/SYSCALL seen: no SSL_shutdown */
	char		 err[192];
};

static void seterr(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Describe the oldest error in the queue (the root cause; later entries are the callers
 * wrapping it) and empty the queue. Writes "unknown error" when the queue is empty.
 */
static void
ssl_reason(char *buf, size_t len)
{
	unsigned long e;
	const char *r;

	e = ERR_get_error();
	if (e == 0) {
		snprintf(buf, len, "unknown error");
	} else if ((r = ERR_reason_error_string(e)) != NULL) {
		snprintf(buf, len, "%s", r);
	} else {
		ERR_error_string_n(e, buf, len);
	}
	ERR_clear_error();
}

/* Like ssl_reason, but PEM's "no start line" is said the way an operator understands it. */
static void
pem_reason(char *buf, size_t len, const char *what)
{
	unsigned long e = ERR_peek_error();

	if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
		snprintf(buf, len, "no %s found (expected PEM)", what);
		ERR_clear_error();
		return;
	}
	ssl_reason(buf, len);
}

/*
 * Why SSL_CTX_use_PrivateKey_file failed, in an operator's words, from the whole error
 * queue (OpenSSL 3's decoders bury the cause under generic entries); empties the queue.
 */
static void
key_reason(char *buf, size_t len, const char *cert_file)
{
	unsigned long e, first = 0, detail = 0;
	int encrypted = 0, mismatch = 0, nokey = 0;

	while ((e = ERR_get_error()) != 0) {
		int lib = ERR_GET_LIB(e), reason = ERR_GET_REASON(e);

		if (first == 0)
			first = e;
		if (lib == ERR_LIB_PEM && reason == PEM_R_BAD_PASSWORD_READ)
			encrypted = 1;
		else if (lib == ERR_LIB_X509 && reason == X509_R_KEY_VALUES_MISMATCH)
			mismatch = 1;
		else if ((lib == ERR_LIB_PEM && reason == PEM_R_NO_START_LINE) ||
		    (lib == ERR_LIB_OSSL_DECODER && reason == ERR_R_UNSUPPORTED))
			nokey = 1;
		else if (lib != ERR_LIB_SSL && detail == 0)
			detail = e;
	}
	if (mismatch)
		snprintf(buf, len, "private key does not match certificate %s", cert_file);
	else if (encrypted)
		snprintf(buf, len, "private key is encrypted (passphrases are not supported)");
	else if (detail != 0 && ERR_reason_error_string(detail) != NULL)
		snprintf(buf, len, "cannot decode private key: %s",
		    ERR_reason_error_string(detail));
	else if (nokey)
		snprintf(buf, len, "no private key found (expected PEM)");
	else if (first != 0 && ERR_reason_error_string(first) != NULL)
		snprintf(buf, len, "%s", ERR_reason_error_string(first));
	else if (first != 0)
		ERR_error_string_n(first, buf, len);
	else
		snprintf(buf, len, "unknown error");
}

/* Never prompt on a terminal for a key passphrase: encrypted keys simply fail to load. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf; (void)size; (void)rwflag; (void)u;
	return -1;
}

/* Refuse an unreadable file with errno's words before OpenSSL buries them. */
static int
check_readable(const char *file, char *err, size_t errlen)
{
	int fd;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1) {
		seterr(err, errlen, "%s: %s", file, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

static struct tls_ctx *
ctx_wrap(SSL_CTX *ssl, int server)
{
	struct tls_ctx *ctx;

	if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
		return NULL;
	ctx->ssl = ssl;
	ctx->refs = 1;
	ctx->server = server;
	return ctx;
}

/*
 * Load cert chain + key and check that they match. NULL with err filled on failure;
 * the message names the file at fault.
 */
struct tls_ctx *
tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	SSL_CTX *ssl;
	struct tls_ctx *ctx;
	char why[160];

	if (cert_file == NULL || *cert_file == '\0' || key_file == NULL || *key_file == '\0') {
		seterr(err, errlen, "certificate and key files must both be set");
		return NULL;
	}
	if (check_readable(cert_file, err, errlen) == -1 ||
	    check_readable(key_file, err, errlen) == -1)
		return NULL;

	ERR_clear_error();
	if ((ssl = SSL_CTX_new(TLS_server_method())) == NULL) {
		ssl_reason(why, sizeof(why));
		seterr(err, errlen, "cannot create TLS context: %s", why);
		return NULL;
	}
	/* Key exchange by elliptic curves only (the README's promise), in TLS 1.3 as in 1.2:
	 * OpenSSL's default list also accepts the finite-field ffdhe groups. */
	if (!SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ssl, TLS1_3_VERSION) ||
	    !SSL_CTX_set_cipher_list(ssl, TLS12_CIPHERS) ||
	    !SSL_CTX_set1_groups_list(ssl, "X25519:P-256:P-384")) {
		ssl_reason(why, sizeof(why));
		seterr(err, errlen, "cannot configure TLS context: %s", why);
		goto fail;
	}
	SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* No server-side session cache (it would cost memory per session), but one stateless
	 * TLS 1.3 ticket: a client that keeps it can resume, and, more important, the ticket
	 * is what the server writes right after the client's Finished. With nothing to write
	 * there, the ACK for the Finished waits for the delayed-ACK timer, and a client with
	 * Nagle on (Python's ssl, most libraries) holds its first EHLO behind it: 40 ms on
	 * every STARTTLS session. The ticket carries the ACK at once. */
	SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ssl, 1);
	SSL_CTX_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_default_passwd_cb(ssl, no_passphrase);

	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ssl, cert_file) != 1) {
		pem_reason(why, sizeof(why), "certificate");
		seterr(err, errlen, "%s: %s", cert_file, why);
		goto fail;
	}
	ERR_clear_error();
	if (SSL_CTX_use_PrivateKey_file(ssl, key_file, SSL_FILETYPE_PEM) != 1) {
		key_reason(why, sizeof(why), cert_file);
		seterr(err, errlen, "%s: %s", key_file, why);
		goto fail;
	}
	ERR_clear_error();
	if (SSL_CTX_check_private_key(ssl) != 1) {
		ssl_reason(why, sizeof(why));
		seterr(err, errlen, "%s: private key does not match certificate %s (%s)",
		    key_file, cert_file, why);
		goto fail;
	}
	if ((ctx = ctx_wrap(ssl, 1)) == NULL) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ssl);
	ERR_clear_error();
	return NULL;
}

/* Client context for relaying: TLS >= 1.2, peer not verified (opportunistic). */
struct tls_ctx *
tls_client_ctx_new(char *err, size_t errlen)
{
	SSL_CTX *ssl;
	struct tls_ctx *ctx;
	char why[160];

	ERR_clear_error();
	if ((ssl = SSL_CTX_new(TLS_client_method())) == NULL) {
		ssl_reason(why, sizeof(why));
		seterr(err, errlen, "cannot create TLS context: %s", why);
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION)) {
		ssl_reason(why, sizeof(why));
		seterr(err, errlen, "cannot configure TLS context: %s", why);
		SSL_CTX_free(ssl);
		return NULL;
	}
	SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	if ((ctx = ctx_wrap(ssl, 0)) == NULL) {
		seterr(err, errlen, "out of memory");
		SSL_CTX_free(ssl);
		return NULL;
	}
	return ctx;
}

/*
 * A client context whose peers are checked (smtp_tls = verify): the same protocol floor as
 * tls_client_ctx_new, with a trust store: ca_file when given, else the system's default
 * CA paths. The handshake itself never fails on a bad certificate (SSL_VERIFY_NONE): the
 * caller asks tls_conn_verified afterwards, so the reason can be reported precisely.
 */
struct tls_ctx *
tls_client_verify_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	struct tls_ctx *ctx;
	char why[160];

	if (ca_file != NULL && check_readable(ca_file, err, errlen) != 0)
		return NULL;
	if ((ctx = tls_client_ctx_new(err, errlen)) == NULL)
		return NULL;
	ERR_clear_error();
	if (ca_file != NULL ? SSL_CTX_load_verify_locations(ctx->ssl, ca_file, NULL) != 1 :
	    SSL_CTX_set_default_verify_paths(ctx->ssl) != 1) {
		ssl_reason(why, sizeof(why));
		seterr(err, errlen, "%s: cannot load CA certificates: %s",
		    ca_file != NULL ? ca_file : "the system CA store", why);
		tls_ctx_unref(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * A client context for DANE (RFC 7672): no CA store (DANE-TA and DANE-EE bring their own
 * trust anchors), OpenSSL's DANE support enabled for the connections made from it.
 */
struct tls_ctx *
tls_client_dane_ctx_new(char *err, size_t errlen)
{
	struct tls_ctx *ctx;
	char why[160];

	if ((ctx = tls_client_ctx_new(err, errlen)) == NULL)
		return NULL;
	ERR_clear_error();
	if (SSL_CTX_dane_enable(ctx->ssl) <= 0) {
		ssl_reason(why, sizeof(why));
		seterr(err, errlen, "cannot enable DANE: %s", why);
		tls_ctx_unref(ctx);
		return NULL;
	}
	return ctx;
}

/* Take a reference. Safe across threads. */
void
tls_ctx_ref(struct tls_ctx *ctx)
{
	if (ctx != NULL)
		__atomic_add_fetch(&ctx->refs, 1, __ATOMIC_RELAXED);
}

/* Drop a reference; the last one frees the context. NULL is ignored. */
void
tls_ctx_unref(struct tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	if (__atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx);
}

/*
 * Subject ("CN=mx.example.org, O=..."), notAfter ("YYYY-MM-DD HH:MM:SS UTC") and the
 * expiry as time_t of the leaf certificate. Any output pointer may be NULL. 0 ok, -1 none.
 */
int
tls_ctx_cert_info(const struct tls_ctx *ctx, char *subject, size_t subjlen,
    char *not_after, size_t nalen, time_t *expires)
{
	X509 *x;
	BIO *b;
	struct tm tm;
	const ASN1_TIME *na;
	char *p;
	long n;

	if (ctx == NULL || (x = SSL_CTX_get0_certificate(ctx->ssl)) == NULL)
		return -1;
	if (subject != NULL && subjlen > 0) {
		subject[0] = '\0';
		ERR_clear_error();
		if ((b = BIO_new(BIO_s_mem())) == NULL) {
			ERR_clear_error();
			return -1;
		}
		if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0,
		    (XN_FLAG_ONELINE & ~XN_FLAG_SPC_EQ & ~ASN1_STRFLGS_ESC_MSB) |
		    ASN1_STRFLGS_UTF8_CONVERT) >= 0 &&
		    (n = BIO_get_mem_data(b, &p)) > 0)
			snprintf(subject, subjlen, "%.*s", (int)(n > INT_MAX ? INT_MAX : n), p);
		BIO_free(b);
	}
	na = X509_get0_notAfter(x);
	ERR_clear_error();
	memset(&tm, 0, sizeof(tm));
	if (na == NULL || ASN1_TIME_to_tm(na, &tm) != 1) {
		ERR_clear_error();
		return -1;
	}
	if (not_after != NULL && nalen > 0 &&
	    strftime(not_after, nalen, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		not_after[0] = '\0';
	if (expires != NULL)
		*expires = timegm(&tm);
	return 0;
}

/* ---- self-signed certificate ---- */

/* mkdir -p of path's parent directory, new components mode 0700. */
static int
mkdir_parent(const char *path, char *err, size_t errlen)
{
	char buf[PATH_MAX], *p;
	struct stat st;

	if (strlen(path) >= sizeof(buf)) {
		seterr(err, errlen, "%s: path too long", path);
		return -1;
	}
	strcpy(buf, path);
	if ((p = strrchr(buf, '/')) == NULL || p == buf)
		return 0;
	*p = '\0';
	for (p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, 0700) == -1 && errno != EEXIST) {
			seterr(err, errlen, "%s: %s", buf, strerror(errno));
			return -1;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	if (stat(buf, &st) == -1 || !S_ISDIR(st.st_mode)) {
		seterr(err, errlen, "%s: not a directory", buf);
		return -1;
	}
	return 0;
}

/* fsync the directory holding path, so a rename into it is durable. */
static int
fsync_parent(const char *path, char *err, size_t errlen)
{
	char buf[PATH_MAX], *p;
	const char *dir = ".";
	int fd, rc = 0;

	if (strlen(path) >= sizeof(buf)) {
		seterr(err, errlen, "%s: path too long", path);
		return -1;
	}
	strcpy(buf, path);
	if ((p = strrchr(buf, '/')) != NULL) {
		if (p == buf)
			p[1] = '\0';
		else
			*p = '\0';
		dir = buf;
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		seterr(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (fsync(fd) == -1 && errno != EINVAL) {
		seterr(err, errlen, "%s: fsync: %s", dir, strerror(errno));
		rc = -1;
	}
	close(fd);
	return rc;
}

/*
 * Write key and/or cert as PEM to "<file>.tmp.<pid>", fsync'd; tmp receives the name.
 * The temporary file is removed on failure.
 */
static int
pem_write_tmp(const char *file, mode_t mode, EVP_PKEY *key, X509 *cert, char *tmp,
    size_t tmplen, char *err, size_t errlen)
{
	BIO *b = NULL;
	int fd, tries, ok;
	char why[160];

	if ((size_t)snprintf(tmp, tmplen, "%s.tmp.%ld", file, (long)getpid()) >= tmplen) {
		seterr(err, errlen, "%s: path too long", file);
		return -1;
	}
	for (tries = 0; ; tries++) {
		fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
		if (fd != -1 || errno != EEXIST || tries > 0)
			break;
		unlink(tmp);	/* left over by a crashed process that had our pid */
	}
	if (fd == -1) {
		seterr(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	ERR_clear_error();
	ok = (b = BIO_new_fd(fd, BIO_NOCLOSE)) != NULL &&
	    (key == NULL || PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1) &&
	    (cert == NULL || PEM_write_bio_X509(b, cert) == 1) &&
	    BIO_flush(b) == 1;
	if (!ok) {
		ssl_reason(why, sizeof(why));
		seterr(err, errlen, "%s: cannot write PEM: %s", tmp, why);
	} else if (fsync(fd) == -1) {
		seterr(err, errlen, "%s: fsync: %s", tmp, strerror(errno));
		ok = 0;
	}
	BIO_free(b);
	if (close(fd) == -1 && ok) {
		seterr(err, errlen, "%s: close: %s", tmp, strerror(errno));
		ok = 0;
	}
	if (!ok) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int
add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *ext;
	int ok;

	if ((ext = X509V3_EXT_conf_nid(NULL, v3, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* subjectAltName DNS:hostname, built directly so no character of it is parsed as syntax. */
static int
add_san(X509 *x, const char *hostname)
{
	GENERAL_NAMES *gens;
	GENERAL_NAME *gn;
	ASN1_IA5STRING *ia5;
	int ok = 0;

	if ((gens = sk_GENERAL_NAME_new_null()) == NULL)
		return 0;
	if ((gn = GENERAL_NAME_new()) == NULL)
		goto out;
	if ((ia5 = ASN1_IA5STRING_new()) == NULL ||
	    !ASN1_STRING_set(ia5, hostname, (int)strlen(hostname))) {
		ASN1_IA5STRING_free(ia5);
		GENERAL_NAME_free(gn);
		goto out;
	}
	GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
	if (!sk_GENERAL_NAME_push(gens, gn)) {
		GENERAL_NAME_free(gn);
		goto out;
	}
	ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1;
out:
	GENERAL_NAMES_free(gens);
	return ok;
}

static X509 *
make_cert(const char *hostname, EVP_PKEY *key)
{
	X509 *x;
	X509_NAME *name = NULL;
	BIGNUM *bn = NULL;
	X509V3_CTX v3;
	struct tm tm;
	time_t now = time(NULL), until;
	const char *cn = strlen(hostname) <= CN_MAX ? hostname : "imsd self-signed";

	if ((x = X509_new()) == NULL)
		return NULL;
	if (!X509_set_version(x, X509_VERSION_3))
		goto fail;
	/* 128 random bits, made positive and non-zero by forcing the top bit. */
	if ((bn = BN_new()) == NULL || !BN_rand(bn, 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto fail;

	gmtime_r(&now, &tm);
	tm.tm_year += SELFSIGNED_YEARS;
	until = timegm(&tm);
	if (X509_time_adj_ex(X509_getm_notBefore(x), 0, -3600, &now) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), until) == NULL)
		goto fail;

	if ((name = X509_NAME_new()) == NULL ||
	    !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name))
		goto fail;
	if (!X509_set_pubkey(x, key))
		goto fail;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (!add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(x, &v3, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
	    !add_ext(x, &v3, NID_ext_key_usage, "serverAuth") ||
	    !add_ext(x, &v3, NID_subject_key_identifier, "hash") ||
	    !add_san(x, hostname))
		goto fail;

	if (X509_sign(x, key, EVP_sha256()) == 0)
		goto fail;
	X509_NAME_free(name);
	BN_free(bn);
	return x;
fail:
	X509_NAME_free(name);
	BN_free(bn);
	X509_free(x);
	return NULL;
}

/*
 * Create a self-signed EC P-256 certificate for hostname valid for 10 years, written as
 * PEM to cert_file and key_file (key mode 0600) via fsync'd temporaries renamed into
 * place; missing parent directories are created mode 0700. The key is renamed first, so
 * a crash never leaves a new certificate beside an old key. cert_file may equal key_file
 * (then one 0600 file holds both). 0 ok, -1 with err.
 */
int
tls_selfsigned_generate(const char *hostname, const char *cert_file, const char *key_file,
    char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	char why[160], ktmp[PATH_MAX], ctmp[PATH_MAX];
	const char *p;
	int same, rc = -1;

	if (hostname == NULL || *hostname == '\0') {
		seterr(err, errlen, "self-signed certificate: empty host name");
		return -1;
	}
	for (p = hostname; *p != '\0'; p++) {
		if (*p <= ' ' || *p >= 0x7f) {
			seterr(err, errlen, "self-signed certificate: invalid host name \"%s\"",
			    hostname);
			return -1;
		}
	}
	if (cert_file == NULL || *cert_file == '\0' || key_file == NULL || *key_file == '\0') {
		seterr(err, errlen, "self-signed certificate: file names must be set");
		return -1;
	}
	same = strcmp(cert_file, key_file) == 0;
	if (mkdir_parent(key_file, err, errlen) == -1 ||
	    (!same && mkdir_parent(cert_file, err, errlen) == -1))
		return -1;

	ERR_clear_error();
	if ((key = EVP_EC_gen("P-256")) == NULL) {
		ssl_reason(why, sizeof(why));
		seterr(err, errlen, "self-signed certificate: key generation failed: %s", why);
		goto out;
	}
	if ((x = make_cert(hostname, key)) == NULL) {
		ssl_reason(why, sizeof(why));
		seterr(err, errlen, "self-signed certificate for %s: %s", hostname, why);
		goto out;
	}

	if (same) {
		if (pem_write_tmp(key_file, 0600, key, x, ktmp, sizeof(ktmp), err, errlen) == -1)
			goto out;
	} else {
		if (pem_write_tmp(key_file, 0600, key, NULL, ktmp, sizeof(ktmp),
		    err, errlen) == -1)
			goto out;
		if (pem_write_tmp(cert_file, 0644, NULL, x, ctmp, sizeof(ctmp),
		    err, errlen) == -1) {
			unlink(ktmp);
			goto out;
		}
	}
	if (rename(ktmp, key_file) == -1) {
		seterr(err, errlen, "%s: rename: %s", key_file, strerror(errno));
		unlink(ktmp);
		if (!same)
			unlink(ctmp);
		goto out;
	}
	if (!same && rename(ctmp, cert_file) == -1) {
		seterr(err, errlen, "%s: rename: %s", cert_file, strerror(errno));
		unlink(ctmp);
		goto out;
	}
	if (fsync_parent(key_file, err, errlen) == -1 ||
	    (!same && fsync_parent(cert_file, err, errlen) == -1))
		goto out;
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return rc;
}

/* ---- connections ---- */

/*
 * Wrap fd (connected, non-blocking). server: accept side. sni (client side only) is sent
 * unless NULL, empty or an IP literal (RFC 6066). Holds a reference on ctx until
 * tls_conn_free. NULL on failure.
 */
struct tls_conn *
tls_conn_new(struct tls_ctx *ctx, int fd, int server, const char *sni)
{
	struct tls_conn *c;
	unsigned char addr[16];

	if (ctx == NULL || fd < 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	ERR_clear_error();
	if ((c->ssl = SSL_new(ctx->ssl)) == NULL)
		goto fail;
	ERR_clear_error();
	if (SSL_set_fd(c->ssl, fd) != 1)
		goto fail;
	c->server = server;
	if (server) {
		SSL_set_accept_state(c->ssl);
	} else {
		SSL_set_connect_state(c->ssl);
		if (sni != NULL && *sni != '\0' && inet_pton(AF_INET, sni, addr) != 1 &&
		    inet_pton(AF_INET6, sni, addr) != 1) {
			ERR_clear_error();
			if (SSL_set_tlsext_host_name(c->ssl, sni) != 1)
				goto fail;
		}
	}
	tls_ctx_ref(ctx);
	c->ctx = ctx;
	return c;
fail:
	ERR_clear_error();
	SSL_free(c->ssl);
	free(c);
	return NULL;
}

/*
 * Client side, before the handshake: the name the peer's certificate must carry
 * (subjectAltName DNS, wildcards in the left-most label only, RFC 6125). 0 ok, -1.
 */
int
tls_conn_expect_host(struct tls_conn *c, const char *host)
{
	X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);

	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	ERR_clear_error();
	if (SSL_set1_host(c->ssl, host) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/*
 * Client on a DANE context, before the handshake: host is the TLSA base domain (the MX
 * host name; SNI and the name DANE-TA chains must carry). DANE-EE matches the key or
 * certificate alone, names unchecked (RFC 7672 §3.1.1). 0 ok, -1.
 */
int
tls_conn_dane_begin(struct tls_conn *c, const char *host)
{
	ERR_clear_error();
	if (SSL_dane_enable(c->ssl, host) <= 0) {
		ERR_clear_error();
		return -1;
	}
	SSL_dane_set_flags(c->ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	return 0;
}

/* Add one TLSA record: 1 added, 0 OpenSSL finds it unusable, -1 error. */
int
tls_conn_dane_add(struct tls_conn *c, unsigned usage, unsigned selector, unsigned mtype,
    const unsigned char *data, size_t len)
{
	int r;

	ERR_clear_error();
	r = SSL_dane_tlsa_add(c->ssl, (uint8_t)usage, (uint8_t)selector, (uint8_t)mtype, data, len);
	ERR_clear_error();
	return r > 0 ? 1 : r == 0 ? 0 : -1;
}

/*
 * After a DANE handshake: 0 when the chain matched a TLSA record, -1 with why
 * ("no certificate matches the TLSA records: ...").
 */
int
tls_conn_dane_verified(const struct tls_conn *c, char *why, size_t len)
{
	long v = SSL_get_verify_result(c->ssl);

	if (SSL_get0_peer_certificate(c->ssl) == NULL) {
		snprintf(why, len, "DANE: the server sent no certificate");
		return -1;
	}
	if (v != X509_V_OK || SSL_get0_dane_authority(c->ssl, NULL, NULL) < 0) {
		snprintf(why, len, "DANE: no certificate matches the TLSA records: %s",
		    v != X509_V_OK ? X509_verify_cert_error_string(v) : "no match");
		return -1;
	}
	return 0;
}

/*
 * After the handshake: 0 when the peer's chain verified against the context's trust
 * store and matched the name set with tls_conn_expect_host; -1 with why
 * ("certificate verify failed: self-signed certificate", "... Hostname mismatch").
 */
int
tls_conn_verified(const struct tls_conn *c, char *why, size_t len)
{
	X509 *peer = SSL_get0_peer_certificate(c->ssl);
	long v;

	if (peer == NULL) {
		snprintf(why, len, "certificate verify failed: the server sent no certificate");
		return -1;
	}
	v = SSL_get_verify_result(c->ssl);
	if (v != X509_V_OK) {
		snprintf(why, len, "certificate verify failed: %s", X509_verify_cert_error_string(v));
		return -1;
	}
	return 0;
}

/* Wait until fd is ready for ev or deadline passes. 1 ready, 0 timed out, -1 error. */
static int
wait_fd(int fd, short ev, time_t deadline)
{
	for (;;) {
		time_t now = time(NULL);
		struct pollfd p = { .fd = fd, .events = ev };
		int r;
		if (now >= deadline)
			return 0;
		r = poll(&p, 1, (int)(deadline - now) * 1000);
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? -1 : r;
	}
}

/*
 * A blocking HTTPS GET for a worker thread (MTA-STS policies): connect to sa, TLS with SNI
 * host, the certificate verified by ctx (a tls_client_verify_ctx_new context) for host,
 * "GET path HTTP/1.0", the reply read until the peer closes or max bytes are exceeded,
 * everything before deadline. The whole reply (status line, header, body) goes to buf.
 * 0 ok with *len; -1 with err.
 */
int
tls_https_fetch(struct tls_ctx *ctx, const struct sockaddr *sa, socklen_t salen,
    const char *host, const char *path, time_t deadline, char *buf, size_t max, size_t *len,
    char *err, size_t errlen)
{
	SSL *ssl = NULL;
	int fd, rc = -1, r;
	char req[600], why[200];
	size_t n = 0;
	long v;

	*len = 0;
	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		seterr(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, sa, salen) < 0 && errno != EINPROGRESS) {
		seterr(err, errlen, "connect: %s", strerror(errno));
		goto out;
	}
	if ((r = wait_fd(fd, POLLOUT, deadline)) <= 0) {
		seterr(err, errlen, "connect: %s", r == 0 ? "timed out" : strerror(errno));
		goto out;
	}
	{
		int e = 0;
		socklen_t l = sizeof(e);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
		if (e != 0) {
			seterr(err, errlen, "connect: %s", strerror(e));
			goto out;
		}
	}
	ERR_clear_error();
	if ((ssl = SSL_new(ctx->ssl)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1) {
		ssl_reason(why, sizeof(why));
		seterr(err, errlen, "TLS setup: %s", why);
		goto out;
	}
	X509_VERIFY_PARAM_set_hostflags(SSL_get0_param(ssl), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	for (;;) {
		ERR_clear_error();
		r = SSL_connect(ssl);
		if (r == 1)
			break;
		int e = SSL_get_error(ssl, r);
		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
		    wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) <= 0) {
			ssl_reason(why, sizeof(why));
			seterr(err, errlen, "TLS handshake failed: %s", e == SSL_ERROR_WANT_READ ||
			    e == SSL_ERROR_WANT_WRITE ? "timed out" : why);
			goto out;
		}
	}
	if ((v = SSL_get_verify_result(ssl)) != X509_V_OK ||
	    SSL_get0_peer_certificate(ssl) == NULL) {
		seterr(err, errlen, "certificate verify failed: %s", v != X509_V_OK ?
		    X509_verify_cert_error_string(v) : "no certificate");
		goto out;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n"
	    "User-Agent: imsd\r\n\r\n", path, host);
	for (size_t off = 0, rl = strlen(req); off < rl;) {
		ERR_clear_error();
		r = SSL_write(ssl, req + off, (int)(rl - off));
		if (r > 0) {
			off += (size_t)r;
			continue;
		}
		int e = SSL_get_error(ssl, r);
		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
		    wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) <= 0) {
			seterr(err, errlen, "sending the request failed");
			goto out;
		}
	}
	for (;;) {
		ERR_clear_error();
		r = SSL_read(ssl, buf + n, (int)(max + 1 - n > 16384 ? 16384 : max + 1 - n));
		if (r > 0) {
			n += (size_t)r;
			if (n > max) {
				seterr(err, errlen, "the reply is longer than %zu bytes", max);
				goto out;
			}
			continue;
		}
		int e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) ||
		    (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) ==
		    SSL_R_UNEXPECTED_EOF_WHILE_READING))
			break;		/* the end of the reply */
		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
		    wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) <= 0) {
			seterr(err, errlen, "reading the reply: %s", e == SSL_ERROR_WANT_READ ?
			    "timed out" : "failed");
			goto out;
		}
	}
	*len = n;
	rc = 0;
out:
	ERR_clear_error();
	if (ssl != NULL)
		SSL_free(ssl);
	close(fd);
	return rc;
}

/* Free the connection and drop its context reference. Does not close fd. NULL ok. */
void
tls_conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl);
	tls_ctx_unref(c->ctx);
	free(c);
}

/*
 * Map the result of a failed SSL_* call (ret, with the errno saved right after it) to a
 * tls_status and, for TLS_CLOSED/TLS_ERR, a message prefixed by what.
 */
static int
conn_status(struct tls_conn *c, int ret, int saved_errno, const char *what)
{
	unsigned long e;
	char why[160];

	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		snprintf(c->err, sizeof(c->err), "%s: peer closed (close_notify)", what);
		return TLS_CLOSED;
	case SSL_ERROR_SYSCALL:
		c->fatal = 1;
		if (ERR_peek_error() != 0) {
			ssl_reason(why, sizeof(why));
			snprintf(c->err, sizeof(c->err), "%s: %s", what, why);
			return TLS_ERR;
		}
		if (saved_errno == 0) {
			snprintf(c->err, sizeof(c->err), "%s: peer closed connection", what);
			return TLS_CLOSED;
		}
		snprintf(c->err, sizeof(c->err), "%s: %s", what, strerror(saved_errno));
		return TLS_ERR;
	case SSL_ERROR_SSL:
		c->fatal = 1;
		e = ERR_peek_error();
		if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		    ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			snprintf(c->err, sizeof(c->err),
			    "%s: peer closed connection (without close_notify)", what);
			return TLS_CLOSED;
		}
		ssl_reason(why, sizeof(why));
		snprintf(c->err, sizeof(c->err), "%s: protocol error: %s", what, why);
		return TLS_ERR;
	default:
		c->fatal = 1;
		ssl_reason(why, sizeof(why));
		snprintf(c->err, sizeof(c->err), "%s: %s", what, why);
		return TLS_ERR;
	}
}

/*
 * Drive the handshake: TLS_OK when complete, TLS_WANT_* (call again when the fd is ready),
 * or TLS_ERR with tls_conn_error saying why ("handshake failed: peer closed connection",
 * "handshake failed: protocol error: unsupported protocol", ...).
 */
int
tls_handshake(struct tls_conn *c)
{
	int ret, saved, st;

	ERR_clear_error();
	errno = 0;
	ret = SSL_do_handshake(c->ssl);
	saved = errno;
	if (ret == 1)
		return TLS_OK;
	st = conn_status(c, ret, saved, "handshake failed");
	return st == TLS_CLOSED ? TLS_ERR : st;
}

/*
 * Read decrypted bytes: > 0 bytes, TLS_WANT_* (also after a non-data record was
 * processed), TLS_CLOSED on close_notify or EOF, TLS_ERR. Never 0.
 */
ssize_t
tls_read(struct tls_conn *c, void *buf, size_t len)
{
	size_t n = 0;
	int ret, saved;

	if (len == 0) {
		snprintf(c->err, sizeof(c->err), "read: zero-length buffer");
		return TLS_ERR;
	}
	if (len > INT_MAX)
		len = INT_MAX;
	ERR_clear_error();
	errno = 0;
	ret = SSL_read_ex(c->ssl, buf, len, &n);
	saved = errno;
	if (ret == 1 && n > 0)
		return (ssize_t)n;
	return conn_status(c, ret == 1 ? 0 : ret, saved, "read");
}

/*
 * Write: > 0 bytes (possibly fewer than len), or a tls_status. After TLS_WANT_* call
 * again with the same bytes (the buffer may move).
 */
ssize_t
tls_write(struct tls_conn *c, const void *buf, size_t len)
{
	size_t n = 0;
	int ret, saved;

	if (len == 0) {
		snprintf(c->err, sizeof(c->err), "write: zero-length buffer");
		return TLS_ERR;
	}
	if (len > INT_MAX)
		len = INT_MAX;
	ERR_clear_error();
	errno = 0;
	ret = SSL_write_ex(c->ssl, buf, len, &n);
	saved = errno;
	if (ret == 1 && n > 0)
		return (ssize_t)n;
	return conn_status(c, ret == 1 ? 0 : ret, saved, "write");
}

/* Bytes already decrypted and buffered inside OpenSSL. */
size_t
tls_pending(struct tls_conn *c)
{
	int n = SSL_pending(c->ssl);

	return n > 0 ? (size_t)n : 0;
}

/*
 * Send close_notify: one SSL_shutdown call, result ignored, never waits for the peer's.
 * Skipped after a fatal error or before the handshake completed (OpenSSL forbids both).
 */
void
tls_shutdown(struct tls_conn *c)
{
	if (c == NULL || c->fatal || !SSL_is_init_finished(c->ssl))
		return;
	ERR_clear_error();
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
}

/* Negotiated protocol ("TLSv1.3"), or "" before the handshake. */
const char *
tls_conn_version(const struct tls_conn *c)
{
	if (!SSL_is_init_finished(c->ssl))
		return "";
	return SSL_get_version(c->ssl);
}

/* Negotiated cipher suite name, or "" before the handshake. */
const char *
tls_conn_cipher(const struct tls_conn *c)
{
	const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);
	const char *name;

	if (ci == NULL || (name = SSL_CIPHER_get_name(ci)) == NULL)
		return "";
	return name;
}

/* Symmetric key bits of the negotiated cipher, 0 before the handshake. */
int
tls_conn_bits(const struct tls_conn *c)
{
	const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);

	return ci == NULL ? 0 : SSL_CIPHER_get_bits(ci, NULL);
}

/* Last error as text, "" if none. */
const char *
tls_conn_error(const struct tls_conn *c)
{
	return c->err;
}
