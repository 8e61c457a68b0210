/*
 * dsnparam — the ESMTP parameters of DSN (RFC 3461): xtext, RET, ENVID, NOTIFY, ORCPT.
 *
 * PURE: no allocation, no I/O, no globals; every output is a caller's fixed buffer.
 *
 *   xtext  (RFC 3461 §4): printable ASCII '!'..'~' except '+' and '=', which are written
 *          "+XX" (two hex digits; upper case on output, either case accepted on input).
 *   RET    FULL | HDRS (case-insensitive).
 *   ENVID  xtext, at most DSN_ENVID_MAX characters as written, decoding to printable
 *          ASCII (RFC 3461 §4.4). Kept in canonical xtext form.
 *   NOTIFY NEVER, or a comma-separated list of SUCCESS, FAILURE, DELAY (case-insensitive,
 *          each at most once; RFC 3461 §4.1).
 *   ORCPT  addr-type ";" xtext, at most DSN_ORCPT_MAX characters (RFC 3461 §4.2).
 *          Types understood: "rfc822" (the xtext must decode to printable ASCII with an
 *          '@') and "utf-8" (RFC 6533 §3 utf-8-addr-xtext: QCHARs and \x{HEX} escapes,
 *          no '+' or '='). Kept as "<type lower-case>;<xtext as given, hex in upper case>".
 */
#ifndef IMSD_DSNPARAM_H
#define IMSD_DSNPARAM_H

#include <stddef.h>

#define DSN_ENVID_MAX	100	/* RFC 3461 §4.4 */
#define DSN_ORCPT_MAX	500	/* RFC 3461 §4.2 */

/* NOTIFY bits; 0 means "not given" (the server's default behaviour). */
#define DSN_NOTIFY_SUCCESS	0x1u
#define DSN_NOTIFY_FAILURE	0x2u
#define DSN_NOTIFY_DELAY	0x4u
#define DSN_NOTIFY_NEVER	0x8u

enum dsn_ret { DSN_RET_NONE = 0, DSN_RET_FULL = 1, DSN_RET_HDRS = 2 };

/* Decode xtext s (len bytes) into out (NUL-terminated). Decoded length, or -1 with *why
 * (malformed, or does not fit in cap-1). */
int xtext_decode(const char *s, size_t len, char *out, size_t cap, const char **why);
/* Encode len bytes as xtext into out. Length written, or -1 when it does not fit. */
int xtext_encode(const char *s, size_t len, char *out, size_t cap);

/* Each parser: 0 ok, -1 with *why (a constant string naming what is wrong). */
int dsn_ret_parse(const char *v, size_t len, enum dsn_ret *ret, const char **why);
int dsn_envid_parse(const char *v, size_t len, char out[DSN_ENVID_MAX + 1], const char **why);
int dsn_notify_parse(const char *v, size_t len, unsigned *mask, const char **why);
int dsn_orcpt_parse(const char *v, size_t len, char out[DSN_ORCPT_MAX + 1], const char **why);

/* "NEVER" or "SUCCESS,FAILURE,DELAY" (those set, in that order); "" for 0. out needs 24. */
void dsn_notify_format(unsigned mask, char *out, size_t cap);
/* The value for a DSN's Original-Recipient field from a stored ORCPT: "rfc822; decoded"
 * (the xtext decoded) or "utf-8; xtext" (left encoded, as the field is 7-bit). Length,
 * or -1 when stored is malformed or it does not fit. */
int dsn_orcpt_field(const char *stored, char *out, size_t cap);
/* The decoded ENVID for Original-Envelope-Id. Same return. */
int dsn_envid_field(const char *stored, char *out, size_t cap);

#endif
