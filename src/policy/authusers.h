/*
 * authusers — the auth_users_file: who may log in with SMTP AUTH, and their passwords.
 *
 * Text format (SPEC.md "Configuration file", auth_users_file), one user a line:
 *
 *     # comment (whole-line, or after whitespace)
 *     alice:$y$j9T$...salt...$...hash...
 *
 * The user name is everything before the first ':'; it is non-empty, at most 255 bytes
 * (the SASL limit), and free of whitespace and control bytes (bytes >= 0x80 are allowed,
 * for UTF-8 names). Names match exactly (case-sensitive). The rest of the line is a
 * crypt(3) hash of one of the methods accepted: yescrypt ($y$), gost-yescrypt ($gy$),
 * scrypt ($7$), bcrypt ($2b$), SHA-512-crypt ($6$), SHA-256-crypt ($5$), which this
 * libcrypt must support (crypt_checksalt) and which must be complete (the hash part of
 * the method's length). Weaker methods (DES, MD5-crypt, other bcrypt variants, ...) are
 * refused by name. Blanks around a line are ignored; CRLF line endings are accepted.
 * Errors: missing ':', empty or bad user name, refused hash, a user listed twice (naming
 * both lines), a NUL byte. Every error message reads "NAME:LINE: why"; a file that cannot
 * be read gives "PATH: cannot read: why". This module logs nothing.
 *
 * Lookups are O(1) (hash table). A loaded table is immutable, so any number of threads
 * may verify against it at once; authusers_verify allocates its own crypt state.
 *
 * Ownership: struct authusers owns every string it holds; authusers_free releases it.
 * authusers_parse is pure; authusers_load reads only the file named.
 */
#ifndef IMSD_AUTHUSERS_H
#define IMSD_AUTHUSERS_H

#include <stddef.h>

#define AUTHUSERS_USER_MAX	255

struct authusers;

/* Parse text (len bytes, need not be NUL-terminated). NULL with "NAME:LINE: why" in err. */
struct authusers *authusers_parse(const char *name, const char *text, size_t len,
    char *err, size_t errlen);

/* Read path and parse it; NULL with "PATH: cannot read: why" or a parse error in err. */
struct authusers *authusers_load(const char *path, char *err, size_t errlen);

void authusers_free(struct authusers *u);

/*
 * 1 when user is listed and pass is its password, 0 otherwise (unknown user, wrong
 * password, out of memory). Takes as long for an unknown user as for a known one with a
 * default-cost yescrypt hash (a dummy hash is computed), and compares in constant time.
 * Slow on purpose (tens of milliseconds): call it off the event loop. Thread-safe.
 */
int authusers_verify(const struct authusers *u, const char *user, const char *pass);

/* The stored hash of user, or NULL when not listed. For tests and diagnostics: answering
 * a client from this would tell it which users exist. */
const char *authusers_hash(const struct authusers *u, const char *user);

/* Number of users. */
size_t authusers_count(const struct authusers *u);

/*
 * Whether the file's permissions keep the hashes private: 1 when others can neither read
 * nor write it; 0 when they can (why says so, e.g. "PATH is readable by others (mode
 * 0644)"); -1 when it cannot be stat'ed (why says why). The server logs a warning on 0.
 */
int authusers_file_mode_ok(const char *path, char *why, size_t whylen);

#endif
