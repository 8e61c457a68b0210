/*
 * dkimop — DKIM signing and verification (RFC 6376; Ed25519 per RFC 8463); verification
 * with libopendkim.
 *
 *  - Keys: dkim_keys_load reads every dkim_sign key file (PEM, RSA of at least 1024 bits or
 *    Ed25519) and says per key what it is; the server loads them at start and reload, and
 *    `imsd check` shows them. Two keys for one domain sign twice (e.g. RSA and Ed25519).
 *  - Signing (imsd's own code; see dkimop.c on why not libopendkim's): relaxed/relaxed,
 *    SHA-256; the header fields DKIM_SIGN_HEADERS when present, From oversigned (an added
 *    From breaks the signature). The result is the DKIM-Signature field(s),
 *    CRLF-terminated, to be put in front of the message.
 *  - Verifying: every DKIM-Signature (at most DKIM_VERIFY_MAX), keys looked up through dnsq
 *    (so with its deadline); results in RFC 8601 terms: pass, fail (bad signature or body
 *    hash), neutral (a signature that cannot be checked: syntax, expired, unsupported),
 *    temperror (the key lookup failed for now), permerror (no key or a bad key record).
 *  - Both read the message from a file descriptor (the spool file): headers in memory (at
 *    most DKIM_HEADER_MAX bytes), the body streamed. They block: worker threads only.
 */
#ifndef IMSD_DKIMOP_H
#define IMSD_DKIMOP_H

#include <stddef.h>
#include <stdint.h>

#include "mailauth/dnsq.h"
#include "conf/conf.h"

#define DKIM_VERIFY_MAX		8
#define DKIM_HEADER_MAX		(256 * 1024)
#define DKIM_SIGN_HEADERS	"from", "to", "cc", "subject", "date", "message-id", \
	"reply-to", "in-reply-to", "references", "mime-version", "content-type", \
	"content-transfer-encoding", "content-disposition", "list-id", "list-unsubscribe", \
	"list-unsubscribe-post", "sender"

struct dkim_key {
	char *domain, *selector, *file;
	unsigned char *pem;	size_t pemlen;
	int ed25519;		/* else RSA */
	int bits;
	char *dns_record;	/* "v=DKIM1; k=rsa; p=..." to publish */
	void *pkey;		/* the decoded key (EVP_PKEY *), shared read-only by threads */
};

struct dkim_keys {
	struct dkim_key *k;
	size_t n;
};

/* Read and check every key of c->dkim_sign. 0 ok; -1 with "KEYFILE: why" in err. */
int dkim_keys_load(const struct conf *c, struct dkim_keys *out, char *err, size_t errlen);
void dkim_keys_free(struct dkim_keys *k);
/* Does any key sign for domain (lower-case)? */
int dkim_keys_have(const struct dkim_keys *k, const char *domain);

/* Generate a key (RSA 2048 or Ed25519) into path (0600, must not exist) and return the
 * DNS TXT value to publish in *record (malloc'd). 0 ok, -1 err. */
int dkim_keygen(int ed25519, const char *path, char **record, char *err, size_t errlen);

/* Sign the message at fd [off, off+len) with the keys of each domain in domains (n of
 * them, lower-case, duplicates ignored). *out: the DKIM-Signature fields (malloc'd, CRLF),
 * *outlen; *nsig signatures made. 0 ok (possibly none), -1 err. */
int dkim_sign_message(const struct dkim_keys *keys, const char *const *domains, size_t n, int fd,
    uint64_t off, uint64_t len, char **out, size_t *outlen, int *nsig, char *err, size_t errlen);

enum dkim_res { DKR_PASS, DKR_FAIL, DKR_NEUTRAL, DKR_TEMPERROR, DKR_PERMERROR, DKR_POLICY };

struct dkim_sigres {
	enum dkim_res result;
	char domain[256];	/* d= */
	char selector[128];	/* s= */
	char alg[24];		/* a= */
	char b[16];		/* the first 8 characters of b= (RFC 6008 header.b) */
	char why[200];
};

const char *dkim_res_name(enum dkim_res r);

/* Verify every signature. *res (malloc'd, *n entries; 0 = no signature). 0 ok; -1 the
 * message could not be read (err). */
int dkim_verify_message(struct dnsq *q, int fd, uint64_t off, uint64_t len,
    struct dkim_sigres **res, size_t *n, char *err, size_t errlen);

#endif
