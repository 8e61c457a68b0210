/*
 * tls_inspect — certificate and settings facts of a context; see tls_inspect.h.
 */
#include "tls/tls_inspect.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls/tls_int.h"

static X509 *
leaf(const struct tls_ctx *ctx)
{
	return ctx != NULL ? SSL_CTX_get0_certificate(ctx->ssl) : NULL;
}

/* Append s to buf (len) at *o, with sep before it unless first. */
static void
add(char *buf, size_t len, size_t *o, const char *sep, const char *s, size_t sl)
{
	int w;

	if (*o >= len)
		return;
	w = snprintf(buf + *o, len - *o, "%s%.*s", *o ? sep : "", (int)sl, s);
	if (w > 0)
		*o += (size_t)w < len - *o ? (size_t)w : len - *o - 1;
}

int
tls_ctx_cert_names(const struct tls_ctx *ctx, char *buf, size_t len)
{
	X509 *x = leaf(ctx);
	GENERAL_NAMES *gens;
	size_t o = 0;
	int n = 0;

	if (len > 0)
		buf[0] = '\0';
	if (x == NULL)
		return -1;
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_DNS)
			continue;
		add(buf, len, &o, ", ", (const char *)ASN1_STRING_get0_data(g->d.dNSName),
		    (size_t)ASN1_STRING_length(g->d.dNSName));
		n++;
	}
	GENERAL_NAMES_free(gens);
	if (n == 0) {
		char cn[256];
		int l = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
		    sizeof(cn));
		if (l > 0) {
			add(buf, len, &o, ", ", cn, (size_t)l);
			n = 1;
		}
	}
	ERR_clear_error();
	return n;
}

int
tls_ctx_cert_covers(const struct tls_ctx *ctx, const char *host)
{
	X509 *x = leaf(ctx);
	int r;

	if (x == NULL)
		return -1;
	r = X509_check_host(x, host, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL);
	ERR_clear_error();
	return r == 1;
}

int
tls_ctx_cert_issuer(const struct tls_ctx *ctx, char *buf, size_t len, int *self_signed,
    int *nchain)
{
	X509 *x = leaf(ctx);
	STACK_OF(X509) *chain = NULL;
	BIO *b;
	char *p;
	long n;

	if (len > 0)
		buf[0] = '\0';
	if (x == NULL)
		return -1;
	if ((b = BIO_new(BIO_s_mem())) != NULL) {
		if (X509_NAME_print_ex(b, X509_get_issuer_name(x), 0,
		    (XN_FLAG_ONELINE & ~XN_FLAG_SPC_EQ & ~ASN1_STRFLGS_ESC_MSB) |
		    ASN1_STRFLGS_UTF8_CONVERT) >= 0 && (n = BIO_get_mem_data(b, &p)) > 0)
			snprintf(buf, len, "%.*s", (int)n, p);
		BIO_free(b);
	}
	*self_signed = X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0 &&
	    X509_check_issued(x, x) == X509_V_OK;
	*nchain = 0;
	if (SSL_CTX_get0_chain_certs(ctx->ssl, &chain) == 1 && chain != NULL)
		*nchain = sk_X509_num(chain);
	ERR_clear_error();
	return 0;
}

int
tls_ctx_cert_key(const struct tls_ctx *ctx, char *buf, size_t len)
{
	X509 *x = leaf(ctx);
	EVP_PKEY *k;
	char group[80];
	size_t gl = 0;

	if (x == NULL || (k = X509_get0_pubkey(x)) == NULL)
		return -1;
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_RSA:
		snprintf(buf, len, "RSA %d bits", EVP_PKEY_get_bits(k));
		break;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &gl) != 1)
			snprintf(group, sizeof(group), "%d bits", EVP_PKEY_get_bits(k));
		snprintf(buf, len, "EC %s", strcmp(group, "prime256v1") == 0 ? "P-256" :
		    strcmp(group, "secp384r1") == 0 ? "P-384" : group);
		break;
	case EVP_PKEY_ED25519:
		snprintf(buf, len, "Ed25519");
		break;
	default:
		snprintf(buf, len, "%s", OBJ_nid2sn(EVP_PKEY_get_base_id(k)));
		break;
	}
	ERR_clear_error();
	return 0;
}

int
tls_ctx_tlsa(const struct tls_ctx *ctx, unsigned selector, unsigned mtype, char *hex,
    size_t len)
{
	X509 *x = leaf(ctx);
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	int n;

	if (len > 0)
		hex[0] = '\0';
	if (x == NULL || selector > 1 || mtype < 1 || mtype > 2)
		return -1;
	n = selector == 0 ? i2d_X509(x, &der) : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	if (n <= 0 || EVP_Digest(der, (size_t)n, md, &mdlen, mtype == 1 ? EVP_sha256() :
	    EVP_sha512(), NULL) != 1) {
		OPENSSL_free(der);
		ERR_clear_error();
		return -1;
	}
	OPENSSL_free(der);
	if (len < (size_t)mdlen * 2 + 1)
		return -1;
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static const char *
version_name(int v)
{
	switch (v) {
	case TLS1_VERSION:
		return "TLSv1.0";
	case TLS1_1_VERSION:
		return "TLSv1.1";
	case TLS1_2_VERSION:
		return "TLSv1.2";
	case TLS1_3_VERSION:
		return "TLSv1.3";
	case 0:
		return "any";
	default:
		return "?";
	}
}

int
tls_ctx_protocols(const struct tls_ctx *ctx, char *buf, size_t len)
{
	STACK_OF(SSL_CIPHER) *cs;
	char v13[400] = "", v12[600] = "";
	size_t o13 = 0, o12 = 0;
	uint64_t opts;

	if (ctx == NULL)
		return -1;
	cs = SSL_CTX_get_ciphers(ctx->ssl);
	for (int i = 0; cs != NULL && i < sk_SSL_CIPHER_num(cs); i++) {
		const SSL_CIPHER *c = sk_SSL_CIPHER_value(cs, i);
		const char *name = SSL_CIPHER_get_name(c);
		if (strcmp(SSL_CIPHER_get_version(c), "TLSv1.3") == 0)
			add(v13, sizeof(v13), &o13, " ", name, strlen(name));
		else
			add(v12, sizeof(v12), &o12, " ", name, strlen(name));
	}
	opts = SSL_CTX_get_options(ctx->ssl);
	snprintf(buf, len, "%s to %s; TLS 1.3 suites %s; TLS 1.2 suites %s; %s, %s",
	    version_name((int)SSL_CTX_get_min_proto_version(ctx->ssl)),
	    version_name((int)SSL_CTX_get_max_proto_version(ctx->ssl)), v13[0] ? v13 : "none",
	    v12[0] ? v12 : "none", (opts & SSL_OP_NO_COMPRESSION) ? "no compression" :
	    "compression allowed", (opts & SSL_OP_NO_RENEGOTIATION) ? "no renegotiation" :
	    "renegotiation allowed");
	ERR_clear_error();
	return 0;
}
