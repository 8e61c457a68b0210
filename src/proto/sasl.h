/*
 * sasl — the SASL pieces of SMTP AUTH (RFC 4954): base64, mechanism names, and the
 * messages of PLAIN (RFC 4616) and LOGIN.
 *
 * PURE: no I/O, no allocation, no globals; every function works on caller buffers and
 * never writes past the capacity it is given.
 *
 * Base64 is strict RFC 4648 §4 (the standard alphabet): the length must be a multiple of
 * 4, '=' padding only at the very end (one or two), no whitespace, no line breaks, no
 * other byte, and the unused bits before the padding must be zero (so every accepted
 * input is the canonical encoding of what it decodes to). The empty string decodes to
 * nothing; RFC 4954's "=" for an empty initial response is for the caller to handle.
 *
 * A PLAIN message is [authzid] NUL authcid NUL passwd: exactly two NULs, authcid and
 * passwd non-empty, each field at most 255 octets (RFC 4616 §2). The bytes are not
 * checked for UTF-8; they may be anything but NUL.
 *
 * LOGIN (no RFC; draft-murchison-sasl-login): the server sends the two prompts below as
 * 334 continuations, the client answers each with base64 of user name and password.
 *
 * A client cancels an exchange by answering a challenge with "*" (RFC 4954 §4); the
 * server then replies 501.
 */
#ifndef IMSD_SASL_H
#define IMSD_SASL_H

#include <stddef.h>

/* RFC 4954 §4: a client's response line may be up to 12288 octets (CRLF excluded). */
#define SASL_LINE_MAX		12288

/* RFC 4616 §2: authzid, authcid and passwd are 255 octets at most. */
#define SASL_FIELD_MAX		255

/* The LOGIN prompts, base64 of "Username:" and "Password:". */
#define SASL_LOGIN_PROMPT_USER	"VXNlcm5hbWU6"
#define SASL_LOGIN_PROMPT_PASS	"UGFzc3dvcmQ6"

/* Bytes of base64 text for n bytes of data (no NUL), and the most bytes n chars decode to. */
#define SASL_B64_ENCODED_LEN(n)	(((n) + 2) / 3 * 4)
#define SASL_B64_DECODED_MAX(n)	((n) / 4 * 3)

enum sasl_mech { SASL_PLAIN, SASL_LOGIN, SASL_UNKNOWN };

/*
 * Decode inlen chars of strict base64 (see above) into out (outcap bytes; no NUL is
 * added). 0 with *outlen set; -1 when the text is not strict base64 or the result does not
 * fit (out may then hold a partial result; *outlen is 0).
 */
int sasl_b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap,
    size_t *outlen);

/*
 * Encode inlen bytes as padded base64 into out, NUL-terminated; outcap must be at least
 * SASL_B64_ENCODED_LEN(inlen) + 1. The length of the text, or -1 (out is then "" when
 * outcap > 0).
 */
int sasl_b64_encode(const unsigned char *in, size_t inlen, char *out, size_t outcap);

/* The mechanism named (case-insensitive "PLAIN" / "LOGIN"); SASL_UNKNOWN otherwise or NULL. */
enum sasl_mech sasl_mech_parse(const char *name);

/*
 * Split a decoded PLAIN message (len bytes) into NUL-terminated authzid, user (authcid)
 * and pass. authzid may be NULL (azcap 0) when the caller ignores it; it is "" when the
 * client sent none. 0 ok; -1 when malformed (see above) or a field does not fit its
 * buffer (cap must exceed the field length); on -1 every buffer with room is "".
 */
int sasl_plain_parse(const unsigned char *msg, size_t len, char *authzid, size_t azcap,
    char *user, size_t ucap, char *pass, size_t pcap);

/* 1 when the response line (len bytes, a trailing CRLF or LF allowed) is the "*" that
 * cancels the exchange; 0 otherwise. */
int sasl_is_cancel(const char *line, size_t len);

#endif
