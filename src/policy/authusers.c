/*
 * authusers — the auth_users_file (contract in authusers.h).
 *
 * Entries live in one array in file order; an open-addressing hash table (linear probing,
 * FNV-1a, at most half full) maps a user name to its entry. Hashes are checked when the
 * file is parsed: by prefix against the methods accepted, by crypt_checksalt (libxcrypt)
 * for what this libcrypt supports, and by shape (the final '$' field has the method's
 * length), so a truncated or mangled hash is an error at load time and not a user who
 * silently can never log in. Checking never runs the (slow) hash function.
 *
 * Verification runs crypt_rn with a struct crypt_data (32 KiB) calloc'd per call, so
 * threads share nothing; for an unknown user it hashes against DUMMY_HASH instead, a
 * default-cost yescrypt hash of a random password nobody knows, and still fails.
 */
#include "policy/authusers.h"
#include "util/hindex.h"
#include "util/textfile.h"
#include "util/str.h"

#include <crypt.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define AUTH_FILE_MAX	(64u << 20)	/* largest auth_users_file read */

/* yescrypt, default cost ("j9T", as crypt_gensalt("$y$", 0) gives). */
static const char DUMMY_HASH[] =
    "$y$j9T$gzdLRtl3iXrIlonDNOPBu1$6Oa3WTBEKCrbZGsdGdrnCr6KAUWjSG0gL7NESBL1PP.";

#define ACCEPTED_LIST	"yescrypt ($y$), gost-yescrypt ($gy$), scrypt ($7$), bcrypt ($2b$), " \
			"SHA-512 ($6$) or SHA-256 ($5$)"

struct entry {
	char *user;
	char *hash;
	unsigned line;
	uint64_t h;
};

struct authusers {
	struct entry *e;
	size_t n, cap;
	struct hindex ix;		/* hash -> entry */
};

/* The methods accepted: prefix, name, length of the final '$' field. */
static const struct method {
	const char *prefix;
	const char *name;
	size_t tail;
} accepted[] = {
	{ "$y$",  "yescrypt",      43 },
	{ "$gy$", "gost-yescrypt", 43 },
	{ "$7$",  "scrypt",        43 },
	{ "$2b$", "bcrypt",        53 },	/* 22 salt + 31 hash */
	{ "$6$",  "SHA-512-crypt", 86 },
	{ "$5$",  "SHA-256-crypt", 43 },
};

/* Known methods that are refused, by prefix. */
static const struct {
	const char *prefix;
	const char *name;
} refused[] = {
	{ "$1$",    "MD5-crypt ($1$)" },
	{ "$2a$",   "bcrypt variant $2a$ (only $2b$ is accepted)" },
	{ "$2x$",   "bcrypt variant $2x$ (only $2b$ is accepted)" },
	{ "$2y$",   "bcrypt variant $2y$ (only $2b$ is accepted)" },
	{ "$3$",    "NT-hash ($3$)" },
	{ "$md5",   "SunMD5 ($md5)" },
	{ "$sha1$", "SHA-1-crypt ($sha1$)" },
	{ "_",      "BSDi extended DES (_)" },
};

/* FNV-1a over the bytes of s. */
static uint64_t hash_str(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

/* Quote what the user wrote for an error message (see str_quote). */
static const char *quote(const char *s, char *buf, size_t len)
{
	return str_quote(s, 100, buf, len);
}

#define QBUF 440

/* Release u and everything it owns. NULL is fine. */
void authusers_free(struct authusers *u)
{
	if (u == NULL)
		return;
	for (size_t i = 0; i < u->n; i++) {
		free(u->e[i].user);
		free(u->e[i].hash);
	}
	free(u->e);
	hindex_free(&u->ix);
	free(u);
}

/* The entry for user, or NULL. */
static const struct entry *find(const struct authusers *u, const char *user, uint64_t h)
{
	size_t pos = 0, k;

	if (u == NULL)
		return NULL;
	while ((k = hindex_next(&u->ix, h, &pos)) != SIZE_MAX) {
		const struct entry *e = &u->e[k];

		if (e->h == h && strcmp(e->user, user) == 0)
			return e;
	}
	return NULL;
}

/* The hash of entry i, for rehashing. */
static uint64_t entry_hash(const void *ctx, size_t i)
{
	return ((const struct authusers *)ctx)->e[i].h;
}

/* Put entry index idx into the table (which has room). */
static void slot_put(struct authusers *u, size_t idx)
{
	hindex_put(&u->ix, u->e[idx].h, idx);
}

/* Make room for one more entry in the array and the table. -1 on ENOMEM or overflow. */
static int make_room(struct authusers *u)
{
	if (u->n == u->cap) {
		size_t nc = u->cap ? u->cap * 2 : 64;
		struct entry *ne;

		if (nc > UINT32_MAX - 1 || (ne = realloc(u->e, nc * sizeof *ne)) == NULL)
			return -1;
		u->e = ne;
		u->cap = nc;
	}
	if (hindex_reserve(&u->ix, u->n + 1, u->n, entry_hash, u) < 0)
		return -1;
	return 0;
}


/* 1 when ch may appear in a crypt hash we accept (the crypt base64 alphabet, '$', and
 * the '=' ',' of parameters such as rounds=N). */
static int hash_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	    ch == '.' || ch == '/' || ch == '$' || ch == '=' || ch == ',';
}

/* 1 when s looks like a traditional DES crypt hash: 13 chars of [./0-9A-Za-z]. */
static int looks_des(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (s[i] == '$' || !hash_char((unsigned char)s[i]) || s[i] == '=' || s[i] == ',')
			return 0;
	return i == 13;
}

/*
 * Check a hash. 0 ok; -1 with why set (saying which method was refused, or that the hash
 * is malformed; the hash itself is not echoed, errors end up in logs).
 */
static int check_hash(const char *hash, char *why, size_t wl)
{
	const struct method *m = NULL;
	const char *body, *last;
	size_t i;
	int cs;

	if (*hash == '\0') {
		snprintf(why, wl, "empty hash; want a crypt hash: " ACCEPTED_LIST);
		return -1;
	}
	for (i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
		if (strncmp(hash, accepted[i].prefix, strlen(accepted[i].prefix)) == 0)
			m = &accepted[i];
	if (m == NULL) {
		const char *what = NULL;

		for (i = 0; i < sizeof refused / sizeof refused[0]; i++)
			if (strncmp(hash, refused[i].prefix, strlen(refused[i].prefix)) == 0)
				what = refused[i].name;
		if (what == NULL && looks_des(hash))
			what = "traditional DES crypt";
		if (what)
			snprintf(why, wl, "%s hash refused (weak or legacy); use " ACCEPTED_LIST,
			    what);
		else if (hash[0] == '$')
			snprintf(why, wl, "unknown crypt method; use " ACCEPTED_LIST);
		else
			snprintf(why, wl, "not a crypt hash; use " ACCEPTED_LIST);
		return -1;
	}
	for (i = 0; hash[i]; i++) {
		if (!hash_char((unsigned char)hash[i])) {
			snprintf(why, wl, "malformed %s hash (byte 0x%02x at offset %zu)", m->name,
			    (unsigned char)hash[i], i);
			return -1;
		}
	}
	cs = crypt_checksalt(hash);
	if (cs == CRYPT_SALT_METHOD_DISABLED) {
		snprintf(why, wl, "%s is disabled in this libcrypt; use another of " ACCEPTED_LIST,
		    m->name);
		return -1;
	}
	if (cs != CRYPT_SALT_OK && cs != CRYPT_SALT_METHOD_LEGACY) {
		snprintf(why, wl, "malformed %s hash, or not supported by this libcrypt", m->name);
		return -1;
	}
	/* shape: prefix, then a non-empty setting, '$', then the hash of m->tail chars */
	body = hash + strlen(m->prefix);
	last = strrchr(hash, '$');
	if (last < body || last == body || strlen(last + 1) != m->tail) {
		snprintf(why, wl, "malformed %s hash (incomplete: want %zu characters after the "
		    "last '$')", m->name, m->tail);
		return -1;
	}
	if (strcmp(m->prefix, "$2b$") == 0 &&
	    !(last == body + 2 && body[0] >= '0' && body[0] <= '9' && body[1] >= '0' &&
	    body[1] <= '9')) {
		snprintf(why, wl, "malformed bcrypt hash (want $2b$NN$ and 53 characters)");
		return -1;
	}
	if ((m->prefix[1] == 'y' || m->prefix[1] == 'g') &&
	    (memchr(body, '$', (size_t)(last - body)) == NULL || body[0] == '$' ||
	    last[-1] == '$')) {
		snprintf(why, wl, "malformed %s hash (want %sPARAMS$SALT$HASH)", m->name,
		    m->prefix);
		return -1;
	}
	return 0;
}

/*
 * Parse one line (NUL-terminated, comment, line ending and surrounding blanks removed,
 * not empty) into a new entry of u. 0 ok; -1 with why set.
 */
static int parse_line(struct authusers *u, char *s, unsigned lineno, char *why, size_t wl)
{
	char q[QBUF], hw[512];
	struct entry e;
	const struct entry *old;
	char *colon = strchr(s, ':');
	size_t ulen;

	if (colon == NULL) {
		snprintf(why, wl, "missing ':' (want user:crypt-hash)");
		return -1;
	}
	*colon = '\0';
	ulen = (size_t)(colon - s);
	if (ulen == 0) {
		snprintf(why, wl, "empty user name before ':'");
		return -1;
	}
	for (size_t i = 0; i < ulen; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= 0x20 || ch == 0x7f) {
			snprintf(why, wl, "user name %s contains whitespace or a control character",
			    quote(s, q, sizeof q));
			return -1;
		}
	}
	if (ulen > AUTHUSERS_USER_MAX) {
		snprintf(why, wl, "user name %s is longer than %d bytes", quote(s, q, sizeof q),
		    AUTHUSERS_USER_MAX);
		return -1;
	}
	if (check_hash(colon + 1, hw, sizeof hw) != 0) {
		snprintf(why, wl, "user %s: %s", quote(s, q, sizeof q), hw);
		return -1;
	}
	memset(&e, 0, sizeof e);
	e.line = lineno;
	e.h = hash_str(s);
	old = find(u, s, e.h);
	if (old) {
		snprintf(why, wl, "user %s is listed twice (lines %u and %u)", quote(s, q, sizeof q),
		    old->line, lineno);
		return -1;
	}
	e.user = strdup(s);
	e.hash = strdup(colon + 1);
	if (e.user == NULL || e.hash == NULL || make_room(u) != 0) {
		free(e.user);
		free(e.hash);
		snprintf(why, wl, "out of memory");
		return -1;
	}
	u->e[u->n] = e;
	slot_put(u, u->n);
	u->n++;
	return 0;
}

/* Parse auth_users_file text; see authusers.h. */
struct authusers *authusers_parse(const char *name, const char *text, size_t len,
    char *err, size_t errlen)
{
	struct authusers *u = calloc(1, sizeof *u);
	struct textlines tl;
	const char *lwhy = "";
	char why[1024], *s;
	int r_;

	if (name == NULL)
		name = "(auth users)";
	if (errlen)
		err[0] = '\0';
	if (u == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	textlines_init(&tl, text, len);
	while ((r_ = textlines_next(&tl, &s, &lwhy)) == 1) {
		if (parse_line(u, s, tl.lineno, why, sizeof why) != 0) {
			snprintf(err, errlen, "%s:%u: %s", name, tl.lineno, why);
			goto fail;
		}
	}
	if (r_ < 0) {
		snprintf(err, errlen, "%s:%u: %s", name, tl.lineno, lwhy);
		goto fail;
	}
	textlines_free(&tl);
	return u;
fail:
	textlines_free(&tl);
	authusers_free(u);
	return NULL;
}

/* Read path and parse it; see authusers.h. */
struct authusers *authusers_load(const char *path, char *err, size_t errlen)
{
	struct authusers *u;
	char *buf;
	size_t len;

	if (textfile_read(path, AUTH_FILE_MAX, &buf, &len, err, errlen) < 0)
		return NULL;
	u = authusers_parse(path, buf ? buf : "", len, err, errlen);
	if (buf != NULL)
		explicit_bzero(buf, len);	/* it held password hashes */
	free(buf);
	return u;
}

/* Verify a password; see authusers.h. */
int authusers_verify(const struct authusers *u, const char *user, const char *pass)
{
	const struct entry *e = NULL;
	const char *setting, *out;
	struct crypt_data *cd;
	size_t n, m, i;
	unsigned char diff;

	if (user != NULL)
		e = find(u, user, hash_str(user));
	setting = e ? e->hash : DUMMY_HASH;
	cd = calloc(1, sizeof *cd);
	if (cd == NULL)
		return 0;
	out = crypt_rn(pass ? pass : "", setting, cd, (int)sizeof *cd);
	if (out == NULL) {
		explicit_bzero(cd, sizeof *cd);
		free(cd);
		return 0;
	}
	/* constant time in the content: every byte of the stored hash is compared */
	n = strlen(setting);
	m = strlen(out);
	diff = (unsigned char)(n != m);
	for (i = 0; i < n; i++)
		diff |= (unsigned char)(setting[i] ^ (i < m ? out[i] : 0));
	explicit_bzero(cd, sizeof *cd);
	free(cd);
	return e != NULL && pass != NULL && diff == 0;
}

/* The stored hash of user; see authusers.h. */
const char *authusers_hash(const struct authusers *u, const char *user)
{
	const struct entry *e;

	if (user == NULL)
		return NULL;
	e = find(u, user, hash_str(user));
	return e ? e->hash : NULL;
}

/* Number of users; see authusers.h. */
size_t authusers_count(const struct authusers *u)
{
	return u ? u->n : 0;
}

/* Whether others can read or write path; see authusers.h. */
int authusers_file_mode_ok(const char *path, char *why, size_t whylen)
{
	struct stat st;
	const char *what;

	if (whylen)
		why[0] = '\0';
	if (stat(path, &st) != 0) {
		snprintf(why, whylen, "%s: cannot stat: %s", path, strerror(errno));
		return -1;
	}
	if ((st.st_mode & (S_IROTH | S_IWOTH)) == 0)
		return 1;
	if ((st.st_mode & (S_IROTH | S_IWOTH)) == (S_IROTH | S_IWOTH))
		what = "readable and writable";
	else if (st.st_mode & S_IROTH)
		what = "readable";
	else
		what = "writable";
	snprintf(why, whylen, "%s is %s by others (mode %04o)", path, what,
	    (unsigned)(st.st_mode & 07777));
	return 0;
}
