/*
 * dkimop — DKIM with libopendkim. See dkimop.h.
 */
#include "mailauth/dkimop.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <opendkim/dkim.h>

#include "proto/msghdr.h"

#define BODY_CHUNK	65536

static pthread_once_t once = PTHREAD_ONCE_INIT;
static DKIM_LIB *lib;

struct vctx {
	struct dnsq *q;
	/* key lookups that failed for now, by "selector._domainkey.domain" */
	char temp[DKIM_VERIFY_MAX][300];
	size_t ntemp;
};

static DKIM_CBSTAT
key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
	struct vctx *ctx = dkim_get_user_context(dkim);
	const char *sel = (const char *)dkim_sig_getselector(sig);
	const char *dom = (const char *)dkim_sig_getdomain(sig);
	struct dnsq_answer a;
	char name[600];
	DKIM_CBSTAT r = DKIM_CBSTAT_NOTFOUND;

	if (ctx == NULL || sel == NULL || dom == NULL)
		return DKIM_CBSTAT_ERROR;
	if (ctx->q == NULL)		/* no DNS (the fuzz target): no key */
		return DKIM_CBSTAT_NOTFOUND;
	if ((size_t)snprintf(name, sizeof(name), "%s._domainkey.%s", sel, dom) >= sizeof(name))
		return DKIM_CBSTAT_NOTFOUND;
	switch (dnsq_lookup(ctx->q, name, 16, &a)) {
	case DNSQ_OK:
		/* RFC 6376 3.6.2.2: several records are an error; take the first */
		if (a.ntxt > 0 && strlen(a.txt[0]) < buflen) {
			memcpy(buf, a.txt[0], strlen(a.txt[0]) + 1);
			r = DKIM_CBSTAT_CONTINUE;
		}
		break;
	case DNSQ_NXDOMAIN:
	case DNSQ_NODATA:
		break;
	case DNSQ_TEMPFAIL:
		if (ctx->ntemp < DKIM_VERIFY_MAX)
			snprintf(ctx->temp[ctx->ntemp++], sizeof(ctx->temp[0]), "%s", name);
		r = DKIM_CBSTAT_TRYAGAIN;
		break;
	}
	dnsq_answer_free(&a);
	return r;
}

static void
init_once(void)
{
	static const char *sign[] = { DKIM_SIGN_HEADERS, NULL };
	static const char *over[] = { "from", NULL };
	unsigned flags = DKIM_LIBFLAGS_BADSIGHANDLES;
	unsigned timeout = 10;

	if ((lib = dkim_init(NULL, NULL)) == NULL)
		return;
	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags));
	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_TIMEOUT, &timeout, sizeof(timeout));
	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, sign, sizeof(char **));
	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, over, sizeof(char **));
	dkim_set_key_lookup(lib, key_lookup);
}

static DKIM_LIB *
get_lib(void)
{
	pthread_once(&once, init_once);
	return lib;
}

const char *
dkim_res_name(enum dkim_res r)
{
	static const char *n[] = { "pass", "fail", "neutral", "temperror", "permerror", "policy" };
	return (unsigned)r < sizeof(n) / sizeof(n[0]) ? n[r] : "neutral";
}

/* ---- keys ---- */

static char *
b64(const unsigned char *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/* The DNS TXT value that publishes pkey's public half. */
static char *
dns_record(EVP_PKEY *pkey, int ed25519)
{
	unsigned char raw[64], *der = NULL;
	size_t rawlen = sizeof(raw);
	char *p64, *rec;
	int n;

	if (ed25519) {
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1)
			return NULL;
		p64 = b64(raw, rawlen);
	} else {
		if ((n = i2d_PUBKEY(pkey, &der)) <= 0)
			return NULL;
		p64 = b64(der, (size_t)n);
		OPENSSL_free(der);
	}
	if (p64 == NULL)
		return NULL;
	n = snprintf(NULL, 0, "v=DKIM1; k=%s; p=%s", ed25519 ? "ed25519" : "rsa", p64);
	if ((rec = malloc((size_t)n + 1)) != NULL)
		snprintf(rec, (size_t)n + 1, "v=DKIM1; k=%s; p=%s", ed25519 ? "ed25519" : "rsa", p64);
	free(p64);
	return rec;
}

static int
read_file(const char *path, unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot read the key: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > 65536) {
		snprintf(err, errlen, "%s: not a key file (empty or over 64 KiB)", path);
		close(fd);
		return -1;
	}
	if ((*out = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r = read(fd, *out, (size_t)st.st_size);
	close(fd);
	if (r != st.st_size) {
		free(*out);
		snprintf(err, errlen, "%s: short read", path);
		return -1;
	}
	(*out)[r] = '\0';
	*outlen = (size_t)r;
	return 0;
}

int
dkim_keys_load(const struct conf *c, struct dkim_keys *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (c->ndkim_sign == 0)
		return 0;
	if (get_lib() == NULL) {
		snprintf(err, errlen, "libopendkim did not initialise");
		return -1;
	}
	if ((out->k = calloc(c->ndkim_sign, sizeof(*out->k))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < c->ndkim_sign; i++) {
		struct dkim_key *k = &out->k[out->n];
		const struct conf_dkim *d = &c->dkim_sign[i];
		EVP_PKEY *pkey;
		BIO *bio;
		int id;

		if (read_file(d->keyfile, &k->pem, &k->pemlen, err, errlen) < 0)
			goto fail;
		out->n++;
		k->domain = strdup(d->domain);
		k->selector = strdup(d->selector);
		k->file = strdup(d->keyfile);
		if (k->domain == NULL || k->selector == NULL || k->file == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		if (strncmp((char *)k->pem, "-----", 5) != 0 ||
		    (bio = BIO_new_mem_buf(k->pem, (int)k->pemlen)) == NULL) {
			snprintf(err, errlen, "%s: not a PEM private key (make one with imsd "
			    "dkim-keygen)", d->keyfile);
			goto fail;
		}
		pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		BIO_free(bio);
		if (pkey == NULL) {
			snprintf(err, errlen, "%s: not a PEM private key (encrypted keys are not "
			    "supported; make one with imsd dkim-keygen)", d->keyfile);
			goto fail;
		}
		id = EVP_PKEY_get_base_id(pkey);
		k->bits = EVP_PKEY_get_bits(pkey);
		if (id == EVP_PKEY_ED25519)
			k->ed25519 = 1;
		else if (id != EVP_PKEY_RSA) {
			EVP_PKEY_free(pkey);
			snprintf(err, errlen, "%s: a DKIM key is RSA or Ed25519, not %s", d->keyfile,
			    OBJ_nid2sn(id));
			goto fail;
		} else if (k->bits < 1024) {
			EVP_PKEY_free(pkey);
			snprintf(err, errlen, "%s: an RSA key of %d bits is too weak for DKIM "
			    "(RFC 8301: at least 1024, 2048 recommended)", d->keyfile, k->bits);
			goto fail;
		}
		k->dns_record = dns_record(pkey, k->ed25519);
		k->pkey = pkey;		/* decoded once: see "signing" below */
		if (k->dns_record == NULL) {
			snprintf(err, errlen, "%s: cannot derive the public key", d->keyfile);
			goto fail;
		}
	}
	return 0;
fail:
	dkim_keys_free(out);
	return -1;
}

void
dkim_keys_free(struct dkim_keys *k)
{
	for (size_t i = 0; i < k->n; i++) {
		free(k->k[i].domain);
		free(k->k[i].selector);
		free(k->k[i].file);
		if (k->k[i].pem)
			explicit_bzero(k->k[i].pem, k->k[i].pemlen);
		free(k->k[i].pem);
		free(k->k[i].dns_record);
		EVP_PKEY_free(k->k[i].pkey);
	}
	free(k->k);
	memset(k, 0, sizeof(*k));
}

int
dkim_keys_have(const struct dkim_keys *k, const char *domain)
{
	for (size_t i = 0; k && i < k->n; i++)
		if (strcmp(k->k[i].domain, domain) == 0)
			return 1;
	return 0;
}

int
dkim_keygen(int ed25519, const char *path, char **record, char *err, size_t errlen)
{
	EVP_PKEY *pkey = ed25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
	    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	FILE *fp;
	int fd;

	if (pkey == NULL) {
		snprintf(err, errlen, "key generation failed");
		return -1;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		snprintf(err, errlen, "%s: %s%s", path, strerror(errno),
		    errno == EEXIST ? " (not overwritten: a published key would stop matching)" : "");
		EVP_PKEY_free(pkey);
		return -1;
	}
	if ((fp = fdopen(fd, "w")) == NULL || !PEM_write_PrivateKey(fp, pkey, NULL, NULL, 0,
	    NULL, NULL) || fflush(fp) != 0 || fsync(fd) != 0) {
		snprintf(err, errlen, "%s: cannot write the key", path);
		if (fp)
			fclose(fp);
		else
			close(fd);
		unlink(path);
		EVP_PKEY_free(pkey);
		return -1;
	}
	fclose(fp);
	*record = dns_record(pkey, ed25519);
	EVP_PKEY_free(pkey);
	if (*record == NULL) {
		snprintf(err, errlen, "cannot derive the public key");
		return -1;
	}
	return 0;
}

/* ---- reading a message into DKIM handles ---- */

static ssize_t
pread_full(int fd, char *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = pread(fd, buf + got, len - got, (off_t)(off + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/*
 * The header section of the message at fd [off, off+len), read in growing steps up to
 * DKIM_HEADER_MAX: *bufp (malloc'd) holds the first *havep bytes of the message, *hendp is
 * the offset just past the header's last CRLF (0 when the message starts with the empty
 * line; *havep when it has no body), *capp the buffer's size. 0 ok, -1 with err.
 */
static int
read_head(int fd, uint64_t off, uint64_t len, char **bufp, size_t *havep, size_t *hendp,
    size_t *capp, char *err, size_t errlen)
{
	size_t cap = 16384, have = 0;
	char *buf = NULL;

	for (;;) {
		char *nb;
		ssize_t got;
		size_t want;
		const char *e;
		if ((nb = realloc(buf, cap)) == NULL) {
			free(buf);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		buf = nb;
		want = cap - have;
		if (want > len - have)
			want = (size_t)(len - have);
		if ((got = pread_full(fd, buf + have, want, off + have)) < 0) {
			free(buf);
			snprintf(err, errlen, "read: %s", strerror(errno));
			return -1;
		}
		have += (size_t)got;
		if (have >= 2 && buf[0] == '\r' && buf[1] == '\n') {
			*hendp = 0;
			break;
		}
		if ((e = memmem(buf, have, "\r\n\r\n", 4)) != NULL) {
			*hendp = (size_t)(e - buf) + 2;
			break;
		}
		if (have == len) {	/* no body: the headers end with the message */
			*hendp = have;
			break;
		}
		if (cap >= DKIM_HEADER_MAX) {
			free(buf);
			snprintf(err, errlen, "header section over %d bytes", DKIM_HEADER_MAX);
			return -1;
		}
		cap *= 2;
	}
	*bufp = buf;
	*havep = have;
	*capp = cap;
	return 0;
}

/*
 * Feed the message to n handles: each header field (without its CRLF), the end of the
 * header, the body. What the caller does with the fields: hdrcb (may be NULL) sees each
 * and returns 0 to feed it, 1 to keep it from the handles.
 */
static int
feed(DKIM **h, size_t n, int fd, uint64_t off, uint64_t len,
    int (*hdrcb)(void *arg, const struct mhdr_field *f), void *arg, char *err, size_t errlen)
{
	size_t cap = 16384, have = 0, hend = 0, pos = 0;
	char *buf = NULL;
	struct mhdr_field f;
	int r;

	if (read_head(fd, off, len, &buf, &have, &hend, &cap, err, errlen) < 0)
		return -1;
	while ((r = mhdr_next(buf, hend, &pos, &f)) == 1) {
		if (hdrcb && hdrcb(arg, &f))
			continue;
		for (size_t i = 0; i < n; i++)
			if (h[i])
				dkim_header(h[i], (u_char *)f.raw, f.rawlen);
	}
	for (size_t i = 0; i < n; i++)
		if (h[i])
			dkim_eoh(h[i]);
	/* the body: after the empty line */
	pos = hend + (hend + 2 <= have && memcmp(buf + hend, "\r\n", 2) == 0 ? 2 : 0);
	if (pos < have)
		for (size_t i = 0; i < n; i++)
			if (h[i])
				dkim_body(h[i], (u_char *)buf + pos, have - pos);
	free(buf);
	buf = malloc(BODY_CHUNK);
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (uint64_t at = have; at < len;) {
		size_t want = len - at > BODY_CHUNK ? BODY_CHUNK : (size_t)(len - at);
		ssize_t got = pread_full(fd, buf, want, off + at);
		if (got <= 0) {
			free(buf);
			snprintf(err, errlen, "read: %s", got < 0 ? strerror(errno) : "short file");
			return -1;
		}
		for (size_t i = 0; i < n; i++)
			if (h[i])
				dkim_body(h[i], (u_char *)buf, (size_t)got);
		at += (uint64_t)got;
	}
	free(buf);
	return 0;
}


/* ---- relaxed canonicalization (RFC 6376 3.4.2, 3.4.4), for signing ---- */

struct canon_body {
	EVP_MD_CTX *md;
	int at_bol;		/* at the start of a line */
	int wsp;		/* whitespace seen and not yet written (inside a line) */
	int cr;			/* a CR waits for its LF */
	size_t empty;		/* empty lines held back (trailing ones are dropped) */
	int any;		/* a non-empty line was written */
};

static void
cb_flush_empty(struct canon_body *c)
{
	for (; c->empty > 0; c->empty--)
		EVP_DigestUpdate(c->md, "\r\n", 2);
}

static void
cb_feed(struct canon_body *c, const unsigned char *p, size_t n)
{
	char ch;

	for (size_t i = 0; i < n; i++) {
		ch = (char)p[i];
		if (c->cr) {
			c->cr = 0;
			if (ch == '\n') {
				/* end of line: trailing whitespace is dropped */
				c->wsp = 0;
				if (c->at_bol)
					c->empty++;
				else
					EVP_DigestUpdate(c->md, "\r\n", 2);
				c->at_bol = 1;
				continue;
			}
			/* a lone CR is content */
			if (c->at_bol) {
				cb_flush_empty(c);
				c->at_bol = 0;
			}
			if (c->wsp) {
				EVP_DigestUpdate(c->md, " ", 1);
				c->wsp = 0;
			}
			EVP_DigestUpdate(c->md, "\r", 1);
			c->any = 1;
		}
		if (ch == '\r') {
			c->cr = 1;
			continue;
		}
		if (ch == ' ' || ch == '\t') {
			c->wsp = 1;
			continue;
		}
		if (c->at_bol) {
			cb_flush_empty(c);
			c->at_bol = 0;
		}
		if (c->wsp) {
			EVP_DigestUpdate(c->md, " ", 1);
			c->wsp = 0;
		}
		EVP_DigestUpdate(c->md, &ch, 1);
		c->any = 1;
	}
}

static void
cb_end(struct canon_body *c)
{
	if (c->cr) {		/* a final lone CR */
		c->cr = 0;
		if (c->at_bol)
			cb_flush_empty(c);
		if (c->wsp)
			EVP_DigestUpdate(c->md, " ", 1);
		EVP_DigestUpdate(c->md, "\r", 1);
		c->at_bol = 0;
		c->any = 1;
	}
	if (!c->at_bol)		/* a last line without CRLF gets one */
		EVP_DigestUpdate(c->md, "\r\n", 2);
}

/* Relaxed header canonicalization of one field (raw: name:value, folded, no final CRLF)
 * into out; crlf: append CRLF. Returns the length, or 0 if out is too small. */
static size_t
canon_header(const char *raw, size_t len, char *out, size_t cap, int crlf)
{
	size_t o = 0, i = 0;
	int wsp = 0;

	/* the name, lower-case, without whitespace before the colon */
	for (; i < len && raw[i] != ':'; i++) {
		if (raw[i] == ' ' || raw[i] == '\t')
			continue;
		if (o + 1 >= cap)
			return 0;
		out[o++] = (char)((raw[i] >= 'A' && raw[i] <= 'Z') ? raw[i] + 32 : raw[i]);
	}
	if (i >= len || o + 1 >= cap)
		return 0;
	out[o++] = ':';
	i++;
	/* the value: unfolded, whitespace runs to one SP, none at either end */
	for (; i < len; i++) {
		if (raw[i] == ' ' || raw[i] == '\t')
			continue;
		if (raw[i] == '\r' && i + 1 < len && raw[i + 1] == '\n') {
			i++;
			continue;
		}
		break;
	}
	for (; i < len; i++) {
		char ch = raw[i];
		if (ch == '\r' && i + 1 < len && raw[i + 1] == '\n') {
			i++;		/* unfolding removes CRLF only (RFC 6376 3.4.2) */
			continue;
		}
		if (ch == ' ' || ch == '\t') {
			wsp = 1;
			continue;
		}
		if (wsp) {
			if (o + 1 >= cap)
				return 0;
			out[o++] = ' ';
			wsp = 0;
		}
		if (o + 1 >= cap)
			return 0;
		out[o++] = ch;
	}
	if (crlf) {
		if (o + 2 >= cap)
			return 0;
		out[o++] = '\r';
		out[o++] = '\n';
	}
	return o;
}

static const char *const sign_headers[] = { DKIM_SIGN_HEADERS, NULL };

/* What every signature of one message shares: its header fields and the body hash. */
struct prepared {
	char *buf;			/* the header section */
	struct mhdr_field *f;		/* every field, malloc'd */
	size_t nf;
	char bh64[64];			/* base64 SHA-256 of the relaxed body */
	size_t hcap;
};

static int
prepare(int fd, uint64_t off, uint64_t len, struct prepared *pm, char *err, size_t errlen)
{
	struct canon_body cb;
	size_t pos = 0, hend = 0, have = 0;
	unsigned char bh[32];
	unsigned int dl = 0;
	EVP_MD_CTX *md = NULL;
	char *chunk = NULL;
	int ret = -1;

	memset(pm, 0, sizeof(*pm));
	if (read_head(fd, off, len, &pm->buf, &have, &hend, &pm->hcap, err, errlen) < 0)
		return -1;
	{
		size_t fcap = 0;
		struct mhdr_field fld;
		int r;
		while ((r = mhdr_next(pm->buf, hend, &pos, &fld)) != 0) {
			if (r < 0) {
				snprintf(err, errlen, "the header section has a line that is not a "
				    "field: not signed");
				goto done;
			}
			if (pm->nf == fcap) {
				struct mhdr_field *nf2;
				fcap = fcap ? fcap * 2 : 64;
				if ((nf2 = realloc(pm->f, fcap * sizeof(*nf2))) == NULL)
					goto oom;
				pm->f = nf2;
			}
			pm->f[pm->nf++] = fld;
		}
	}
	if ((md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    (chunk = malloc(BODY_CHUNK)) == NULL)
		goto oom;
	memset(&cb, 0, sizeof(cb));
	cb.md = md;
	cb.at_bol = 1;
	pos = hend + (hend + 2 <= have && memcmp(pm->buf + hend, "\r\n", 2) == 0 ? 2 : 0);
	for (uint64_t at = pos; at < len;) {
		size_t want = len - at > BODY_CHUNK ? BODY_CHUNK : (size_t)(len - at);
		ssize_t got = pread_full(fd, chunk, want, off + at);
		if (got <= 0) {
			snprintf(err, errlen, "read: short file");
			goto done;
		}
		cb_feed(&cb, (unsigned char *)chunk, (size_t)got);
		at += (uint64_t)got;
	}
	if (len > pos)
		cb_end(&cb);
	if (EVP_DigestFinal_ex(md, bh, &dl) != 1)
		goto oom;
	EVP_EncodeBlock((unsigned char *)pm->bh64, bh, 32);
	ret = 0;
	goto done;
oom:
	snprintf(err, errlen, "out of memory");
done:
	EVP_MD_CTX_free(md);
	free(chunk);
	if (ret < 0) {
		free(pm->buf);
		free(pm->f);
		pm->buf = NULL;
		pm->f = NULL;
	}
	return ret;
}

/* One DKIM-Signature field with key k over the prepared message (malloc'd in *out, CRLF). */
static int
sign_one(const struct dkim_key *k, const struct prepared *pm, char **out, size_t *outlen,
    char *err, size_t errlen)
{
	size_t hl = 0, cap = pm->hcap + 8192, siglen = 1024, n64;
	char hlist[8192], *hdr = NULL, *canon = NULL, *sig64 = NULL, *o = NULL;
	unsigned char digest[32], sig[1024];
	unsigned int dl = 0;
	EVP_MD_CTX *hmd = NULL, *sctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	int ret = -1, n;

	hlist[0] = '\0';
	if ((hdr = malloc(12288)) == NULL || (canon = malloc(cap)) == NULL ||
	    (hmd = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(hmd, EVP_sha256(), NULL) != 1)
		goto oom;
	/* h=: each listed field once per instance, bottom-up (RFC 6376 5.4.2), and From once
	 * more than it occurs (oversigned: an added From breaks the signature) */
	for (const char *const *h = sign_headers; *h; h++) {
		size_t inst = 0;
		for (size_t i = pm->nf; i-- > 0;) {
			size_t cn;
			if (!mhdr_is(&pm->f[i], *h))
				continue;
			inst++;
			if ((cn = canon_header(pm->f[i].raw, pm->f[i].rawlen, canon, cap, 1)) == 0) {
				snprintf(err, errlen, "a header field is too long to sign");
				goto done;
			}
			EVP_DigestUpdate(hmd, canon, cn);
			hl += (size_t)snprintf(hlist + hl, sizeof(hlist) - hl, "%s%.*s", hl ? ":" : "",
			    (int)pm->f[i].namelen, pm->f[i].name);
			if (hl >= sizeof(hlist))
				goto toomany;
		}
		if (strcmp(*h, "from") == 0 && inst > 0) {
			hl += (size_t)snprintf(hlist + hl, sizeof(hlist) - hl, ":from");
			if (hl >= sizeof(hlist))
				goto toomany;
		}
	}
	if (hl == 0) {
		snprintf(err, errlen, "the message has none of the header fields to sign");
		goto done;
	}
	n = snprintf(hdr, 12288, "DKIM-Signature: v=1; a=%s; c=relaxed/relaxed; d=%s;\r\n\ts=%s; "
	    "t=%lld; bh=%s;\r\n\th=%s;\r\n\tb=", k->ed25519 ? "ed25519-sha256" : "rsa-sha256",
	    k->domain, k->selector, (long long)time(NULL), pm->bh64, hlist);
	if (n <= 0 || n >= 12288)
		goto toomany;
	{
		size_t cn = canon_header(hdr, (size_t)n, canon, cap, 0);
		if (cn == 0)
			goto oom;
		EVP_DigestUpdate(hmd, canon, cn);
	}
	if (EVP_DigestFinal_ex(hmd, digest, &dl) != 1)
		goto oom;
	if (k->ed25519) {
		/* RFC 8463 3: PureEdDSA over the SHA-256 of the canonicalized data */
		if ((sctx = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestSignInit(sctx, NULL, NULL, NULL, k->pkey) != 1 ||
		    EVP_DigestSign(sctx, sig, &siglen, digest, sizeof(digest)) != 1)
			goto signfail;
	} else {
		/* RSASSA-PKCS1-v1_5 with SHA-256 (RFC 6376 3.3.1, RFC 8301) */
		if ((pctx = EVP_PKEY_CTX_new(k->pkey, NULL)) == NULL ||
		    EVP_PKEY_sign_init(pctx) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) != 1 ||
		    EVP_PKEY_sign(pctx, sig, &siglen, digest, sizeof(digest)) != 1)
			goto signfail;
	}
	if ((sig64 = malloc(4 * ((siglen + 2) / 3) + 1)) == NULL)
		goto oom;
	EVP_EncodeBlock((unsigned char *)sig64, sig, (int)siglen);
	n64 = strlen(sig64);
	/* b= folded every 64 characters: whitespace in b= is ignored (RFC 6376 3.5) */
	if ((o = malloc((size_t)n + n64 + n64 / 64 * 4 + 8)) == NULL)
		goto oom;
	memcpy(o, hdr, (size_t)n);
	*outlen = (size_t)n;
	for (size_t i = 0; i < n64; i += 64) {
		size_t take = n64 - i > 64 ? 64 : n64 - i;
		if (i > 0) {
			memcpy(o + *outlen, "\r\n\t ", 4);
			*outlen += 4;
		}
		memcpy(o + *outlen, sig64 + i, take);
		*outlen += take;
	}
	memcpy(o + *outlen, "\r\n", 3);
	*outlen += 2;
	*out = o;
	o = NULL;
	ret = 0;
	goto done;
toomany:
	snprintf(err, errlen, "too many header fields to sign");
	goto done;
signfail:
	snprintf(err, errlen, "%s: signing failed", k->file);
	goto done;
oom:
	snprintf(err, errlen, "out of memory");
done:
	EVP_MD_CTX_free(hmd);
	EVP_MD_CTX_free(sctx);
	EVP_PKEY_CTX_free(pctx);
	free(hdr);
	free(canon);
	free(sig64);
	free(o);
	return ret;
}

/* ---- signing ----
 *
 * Signing is imsd's own code (relaxed/relaxed over the same field list and oversigning
 * libopendkim would use); libopendkim verifies. Two reasons, both measured:
 *  - libopendkim 2.11.0~beta2 (Debian 12) releases the signing crypto state only for RSA:
 *    every Ed25519 signature leaked its EVP_PKEY, BIO and buffers (~3 KiB, LeakSanitizer);
 *  - it takes the key as PEM text and decodes it again for every signature; with OpenSSL
 *    3's decoders that is 0.36 ms (RSA) and 0.45 ms (Ed25519) per message, more than an
 *    RSA-2048 signature itself. Here each key is decoded once, at load (and reload).
 */

int
dkim_sign_message(const struct dkim_keys *keys, const char *const *domains, size_t nd, int fd,
    uint64_t off, uint64_t len, char **out, size_t *outlen, int *nsig, char *err, size_t errlen)
{
	struct prepared pm;
	size_t ol = 0, cap = 0;
	char *o = NULL;
	int ret = -1, have = 0;

	*out = NULL;
	*outlen = 0;
	*nsig = 0;
	for (size_t d = 0; d < nd; d++)
		have |= dkim_keys_have(keys, domains[d]);
	if (!have)
		return 0;
	if (prepare(fd, off, len, &pm, err, errlen) < 0)
		return -1;
	for (size_t d = 0; d < nd; d++) {
		int dup = 0;
		for (size_t e = 0; e < d; e++)
			dup |= strcmp(domains[e], domains[d]) == 0;
		if (dup)
			continue;
		for (size_t i = 0; i < keys->n; i++) {
			const struct dkim_key *k = &keys->k[i];
			char *one;
			size_t l;
			if (strcmp(k->domain, domains[d]) != 0)
				continue;
			if (sign_one(k, &pm, &one, &l, err, errlen) < 0)
				goto done;
			if (ol + l + 1 > cap) {
				char *no;
				cap = (ol + l + 1) * 2;
				if ((no = realloc(o, cap)) == NULL) {
					free(one);
					snprintf(err, errlen, "out of memory");
					goto done;
				}
				o = no;
			}
			memcpy(o + ol, one, l);
			ol += l;
			free(one);
			(*nsig)++;
		}
	}
	*out = o;
	*outlen = ol;
	o = NULL;
	ret = 0;
done:
	free(o);
	free(pm.buf);
	free(pm.f);
	return ret;
}

/* ---- verifying ---- */

struct vfeed {
	unsigned nsig;
};

/* Feed at most DKIM_VERIFY_MAX signatures: each costs a DNS lookup and an RSA check. */
static int
limit_sigs(void *arg, const struct mhdr_field *f)
{
	struct vfeed *v = arg;

	if (!mhdr_is(f, "DKIM-Signature"))
		return 0;
	return ++v->nsig > DKIM_VERIFY_MAX;
}

int
dkim_verify_message(struct dnsq *q, int fd, uint64_t off, uint64_t len,
    struct dkim_sigres **res, size_t *nres, char *err, size_t errlen)
{
	struct vctx ctx;
	struct vfeed vf = { 0 };
	DKIM_SIGINFO **sigs = NULL;
	DKIM_STAT st;
	DKIM *h;
	int nsigs = 0;

	*res = NULL;
	*nres = 0;
	if (get_lib() == NULL) {
		snprintf(err, errlen, "libopendkim did not initialise");
		return -1;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.q = q;
	if ((h = dkim_verify(lib, (const u_char *)"imsd", NULL, &st)) == NULL) {
		snprintf(err, errlen, "dkim_verify: %s", dkim_getresultstr(st));
		return -1;
	}
	dkim_set_user_context(h, &ctx);
	if (feed(&h, 1, fd, off, len, limit_sigs, &vf, err, errlen) < 0) {
		dkim_free(h);
		return -1;
	}
	st = dkim_eom(h, NULL);
	if (st == DKIM_STAT_NOSIG || vf.nsig == 0 ||
	    dkim_getsiglist(h, &sigs, &nsigs) != DKIM_STAT_OK || nsigs <= 0) {
		dkim_free(h);
		return 0;
	}
	if ((*res = calloc((size_t)nsigs, sizeof(**res))) == NULL) {
		dkim_free(h);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < nsigs; i++) {
		struct dkim_sigres *r = &(*res)[(*nres)++];
		char keyname[600];
		int temp = 0;
		DKIM_SIGINFO *s = sigs[i];
		unsigned flags = dkim_sig_getflags(s);
		int e = dkim_sig_geterror(s), bh = dkim_sig_getbh(s);
		const char *d = (const char *)dkim_sig_getdomain(s);
		const char *sel = (const char *)dkim_sig_getselector(s);
		const char *alg = (const char *)dkim_sig_getalgorithm(s);
		const u_char *b = dkim_sig_gettagvalue(s, 0, (u_char *)"b");

		snprintf(r->domain, sizeof(r->domain), "%s", d ? d : "");
		for (char *p = r->domain; *p; p++)
			*p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
		snprintf(r->selector, sizeof(r->selector), "%s", sel ? sel : "");
		snprintf(r->alg, sizeof(r->alg), "%s", alg ? alg : "");
		/* a key lookup that failed for now leaves the signature unprocessed with no
		 * error of its own: that is a temperror (never a fail that DMARC would act on) */
		snprintf(keyname, sizeof(keyname), "%s._domainkey.%s", sel ? sel : "", d ? d : "");
		for (size_t t = 0; t < ctx.ntemp; t++)
			if (strcasecmp(ctx.temp[t], keyname) == 0)
				temp = 1;
		if (b != NULL) {
			size_t o = 0;
			for (const u_char *p = b; *p && o < 8; p++)
				if (*p > ' ')
					r->b[o++] = (char)*p;
			r->b[o] = '\0';
		}
		if ((flags & DKIM_SIGFLAG_PASSED) && bh == DKIM_SIGBH_MATCH &&
		    strcasecmp(r->alg, "rsa-sha1") == 0) {
			r->result = DKR_POLICY;	/* RFC 8301 3.1: rsa-sha1 is not valid */
			snprintf(r->why, sizeof(r->why), "rsa-sha1 signatures are not accepted "
			    "(RFC 8301)");
			continue;
		}
		if ((flags & DKIM_SIGFLAG_PASSED) && bh == DKIM_SIGBH_MATCH) {
			r->result = DKR_PASS;
			snprintf(r->why, sizeof(r->why), "signature and body hash verified with the "
			    "key %s._domainkey.%s", r->selector, r->domain);
			continue;
		}
		if (temp && !(flags & DKIM_SIGFLAG_PROCESSED)) {
			r->result = DKR_TEMPERROR;
			snprintf(r->why, sizeof(r->why), "the key %s could not be looked up now",
			    keyname);
			continue;
		}
		if (bh == DKIM_SIGBH_MISMATCH) {
			r->result = DKR_FAIL;
			snprintf(r->why, sizeof(r->why), "body hash did not verify (the body was "
			    "changed after signing)");
			continue;
		}
		switch (e) {
		case DKIM_SIGERROR_KEYFAIL:
			r->result = DKR_TEMPERROR;
			snprintf(r->why, sizeof(r->why), "the key %s._domainkey.%s could not be "
			    "looked up now", r->selector, r->domain);
			break;
		case DKIM_SIGERROR_NOKEY:
		case DKIM_SIGERROR_KEYREVOKED:
		case DKIM_SIGERROR_DNSSYNTAX:
		case DKIM_SIGERROR_KEYTYPEMISSING:
			r->result = DKR_PERMERROR;
			snprintf(r->why, sizeof(r->why), "%s (%s._domainkey.%s)",
			    dkim_sig_geterrorstr(e) ? dkim_sig_geterrorstr(e) : "bad key",
			    r->selector, r->domain);
			break;
		case DKIM_SIGERROR_KEYTOOSMALL:
			r->result = DKR_POLICY;
			snprintf(r->why, sizeof(r->why), "the key is too small");
			break;
		default:
			if (e == DKIM_SIGERROR_OK && (flags & DKIM_SIGFLAG_PROCESSED) &&
			    bh == DKIM_SIGBH_MISMATCH) {
				r->result = DKR_FAIL;
				snprintf(r->why, sizeof(r->why), "body hash did not verify (the body "
				    "was changed after signing)");
			} else if (e == DKIM_SIGERROR_BADSIG || (e == DKIM_SIGERROR_OK &&
			    (flags & DKIM_SIGFLAG_PROCESSED))) {
				r->result = DKR_FAIL;
				snprintf(r->why, sizeof(r->why), "signature did not verify (signed "
				    "header fields were changed, or the wrong key)");
			} else {
				r->result = DKR_NEUTRAL;
				const char *es = e != DKIM_SIGERROR_OK ? dkim_sig_geterrorstr(e) : NULL;
				snprintf(r->why, sizeof(r->why), "%s", es ? es : "signature not checked");
			}
			break;
		}
	}
	dkim_free(h);
	return 0;
}
