/*
 * tls_inspect — facts about a server context's certificate and settings, for `imsd doctor`
 * and `imsd dns-records`: the names it covers (judged by the rule the relay verifies with),
 * its issuer and chain, its key, its DANE TLSA data, the protocols and suites the server
 * context allows. Read-only; errors are returned as -1 (nothing is logged).
 */
#ifndef IMSD_TLS_INSPECT_H
#define IMSD_TLS_INSPECT_H

#include <stddef.h>

#include "tls/tls.h"

/* The certificate's DNS names (subjectAltName; the subject CN when it has none), joined
 * with ", ". The count, or -1 when the context has no certificate. */
int tls_ctx_cert_names(const struct tls_ctx *ctx, char *buf, size_t len);

/* Does the certificate name host, by the relay's rule (tls_conn_expect_host: the
 * subjectAltName DNS names, a wildcard only as the whole left-most label)? 1 yes, 0 no,
 * -1 no certificate. */
int tls_ctx_cert_covers(const struct tls_ctx *ctx, const char *host);

/* The issuer (one line), whether the certificate is self-signed, and how many
 * certificates the server sends after it (the chain file's intermediates). 0, or -1. */
int tls_ctx_cert_issuer(const struct tls_ctx *ctx, char *buf, size_t len, int *self_signed,
    int *nchain);

/* "EC P-256", "RSA 2048 bits", "Ed25519". 0, or -1. */
int tls_ctx_cert_key(const struct tls_ctx *ctx, char *buf, size_t len);

/* The data of a TLSA record for the certificate (RFC 6698): selector 0 (the certificate)
 * or 1 (its SubjectPublicKeyInfo), matching type 1 (SHA-256) or 2 (SHA-512), as lower-case
 * hex. 0, or -1. */
int tls_ctx_tlsa(const struct tls_ctx *ctx, unsigned selector, unsigned mtype, char *hex,
    size_t len);

/* The versions and suites the context allows ("TLSv1.2 to TLSv1.3; TLS 1.3 suites ...;
 * TLS 1.2 suites ...; no compression, no renegotiation"). 0, or -1. */
int tls_ctx_protocols(const struct tls_ctx *ctx, char *buf, size_t len);

#endif
