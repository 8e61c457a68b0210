/*
 * tls — the only module that includes OpenSSL.
 *
 * Contexts: a server context is built from a PEM certificate chain and a key, checked to
 * match; TLS 1.2 and 1.3 only, a modern cipher list (ECDHE + AEAD for 1.2), no compression,
 * no renegotiation, no session tickets needed for correctness. A client context (for
 * relaying) does not verify the peer by default, as MTAs do opportunistically.
 *
 * Connections: tls_conn wraps a connected non-blocking socket. Every call returns at once;
 * TLS_WANT_READ / TLS_WANT_WRITE tell the event loop which readiness to wait for.
 *
 * Errors are returned as values with a human-readable message in a caller-supplied buffer
 * (or via tls_conn_error); this module never logs and never exits.
 */
#ifndef IMSD_TLS_H
#define IMSD_TLS_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

struct tls_ctx;
struct tls_conn;

enum tls_status {
	TLS_OK = 0,
	TLS_WANT_READ = -2,
	TLS_WANT_WRITE = -3,
	TLS_CLOSED = -4,	/* orderly close_notify or EOF */
	TLS_ERR = -1,
};

/*
 * Load cert chain + key and check that they match. NULL with err filled on failure;
 * the message names the file at fault ("/etc/x.pem: no certificate found", ...).
 */
struct tls_ctx *tls_server_ctx_new(const char *cert_file, const char *key_file,
    char *err, size_t errlen);
struct tls_ctx *tls_client_ctx_new(char *err, size_t errlen);
/* A client context with a trust store: ca_file (PEM), or the system CA paths when NULL. */
struct tls_ctx *tls_client_verify_ctx_new(const char *ca_file, char *err, size_t errlen);
/* A client context for DANE (RFC 7672): TLSA records are the only trust anchors. */
struct tls_ctx *tls_client_dane_ctx_new(char *err, size_t errlen);
/* Reference counted: a reload swaps contexts while old sessions keep theirs. */
void tls_ctx_ref(struct tls_ctx *ctx);
void tls_ctx_unref(struct tls_ctx *ctx);

/* Certificate facts for `imsd explain-tls` and logs. 0 ok, -1 none. */
int tls_ctx_cert_info(const struct tls_ctx *ctx, char *subject, size_t subjlen,
    char *not_after, size_t nalen, time_t *expires);

/*
 * Create a self-signed certificate for hostname (CN and subjectAltName DNS:hostname),
 * valid for 10 years, key EC P-256, written as PEM to cert_file and key_file (key mode
 * 0600), using the OpenSSL API (no external command). Files are written to temporary
 * names, fsync'd and renamed into place. 0 ok, -1 with err.
 */
int tls_selfsigned_generate(const char *hostname, const char *cert_file, const char *key_file,
    char *err, size_t errlen);

/* Wrap fd (already connected, non-blocking). server: accept side. sni may be NULL. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd, int server, const char *sni);
void tls_conn_free(struct tls_conn *c);	/* does not close fd */

/* Client, before the handshake: the host name the certificate must match. 0 ok, -1. */
int tls_conn_expect_host(struct tls_conn *c, const char *host);
/* Client, after the handshake: 0 when the chain verified (and the name matched), else -1
 * with "certificate verify failed: ..." in why. */
int tls_conn_verified(const struct tls_conn *c, char *why, size_t len);
/* DANE (a connection from tls_client_dane_ctx_new): before the handshake, the TLSA base
 * host and each record (1 added, 0 unusable, -1 error); after it, 0 when a record matched,
 * else -1 with "DANE: ..." in why. */
int tls_conn_dane_begin(struct tls_conn *c, const char *host);
int tls_conn_dane_add(struct tls_conn *c, unsigned usage, unsigned selector, unsigned mtype,
    const unsigned char *data, size_t len);
int tls_conn_dane_verified(const struct tls_conn *c, char *why, size_t len);

/* Blocking HTTPS GET (for a worker thread: MTA-STS) to sa with SNI and verified name host,
 * before deadline; the raw reply in buf (at most max bytes). 0 ok, -1 with err. */
int tls_https_fetch(struct tls_ctx *ctx, const struct sockaddr *sa, socklen_t salen,
    const char *host, const char *path, time_t deadline, char *buf, size_t max, size_t *len,
    char *err, size_t errlen);

/* Drive the handshake: TLS_OK when complete, TLS_WANT_*, or TLS_ERR. */
int tls_handshake(struct tls_conn *c);
/* > 0 bytes read, or a tls_status (never 0). */
ssize_t tls_read(struct tls_conn *c, void *buf, size_t len);
/* > 0 bytes written, or a tls_status. */
ssize_t tls_write(struct tls_conn *c, const void *buf, size_t len);
/* Bytes already decrypted and buffered inside OpenSSL (read them before waiting on fd). */
size_t tls_pending(struct tls_conn *c);
/* Send close_notify (best effort, non-blocking). */
void tls_shutdown(struct tls_conn *c);

/* After the handshake: "TLSv1.3", "TLS_AES_256_GCM_SHA384", bits. */
const char *tls_conn_version(const struct tls_conn *c);
const char *tls_conn_cipher(const struct tls_conn *c);
int tls_conn_bits(const struct tls_conn *c);
/* Last error as text ("handshake failed: ...", "peer closed", ...). */
const char *tls_conn_error(const struct tls_conn *c);

#endif
