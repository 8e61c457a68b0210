/*
 * intl — the normal forms of internationalised addresses (RFC 6531, RFC 5890).
 *
 * Pure computation (libidn2, libunistring; no I/O, no globals of imsd's): every function
 * writes into a caller-supplied buffer and returns 0, or -1 with *why set to a constant
 * string saying what is wrong.
 *
 * Domains compare, and are looked up in the DNS, in A-label form: ASCII, lower-case
 * (IDNA2008 with the UTS #46 non-transitional mapping, so "Bücher.example",
 * "bücher.example" and "xn--bcher-kva.example" are all "xn--bcher-kva.example"). The
 * envelope keeps the domain as the client wrote it.
 *
 * Local parts that name mailboxes compare in NFC, lower-cased (u8_tolower, full Unicode
 * case mapping with NFC output); ASCII local parts are lower-cased as before.
 */
#ifndef IMSD_INTL_H
#define IMSD_INTL_H

#include <stddef.h>

/*
 * domain (NUL-terminated, UTF-8 or ASCII, no trailing dot needed) into out as a lower-case
 * A-label domain. An address literal ("[...]") is copied lower-cased. Fails when a label is
 * not a valid U-label, or the result does not fit outlen or is longer than 255 octets.
 */
int intl_domain_ascii(const char *domain, char *out, size_t outlen, const char **why);

/*
 * A local part (NUL-terminated, unquoted) into out in NFC, lower-cased. Fails on malformed
 * UTF-8 or when the result is longer than 64 octets or than outlen allows.
 */
int intl_local_fold(const char *local, char *out, size_t outlen, const char **why);

/*
 * "local@domain" (split at the last '@') into "folded-local@a-label-domain" by the two
 * functions above; a trailing dot of the domain is dropped. Fails as they do, or when
 * there is no '@'.
 */
int intl_addr_fold(const char *addr, char *out, size_t outlen, const char **why);

#endif
