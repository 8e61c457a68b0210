/*
 * mime8 — 8-bit MIME bodies to 7 bit for a peer without 8BITMIME (RFC 6152 §3, RFC 2045).
 * PURE.
 *
 * The message (CRLF lines) is walked as MIME: a leaf part whose content is not 7-bit gets
 * quoted-printable (its Content-Transfer-Encoding field replaced, or added with
 * MIME-Version when the message had none); multipart parts are walked part by part up to
 * MIME8_DEPTH_MAX levels, boundaries kept; an 8-bit message/rfc822 part is walked as the
 * message it holds. 7-bit parts, base64 and quoted-printable parts are copied unchanged.
 * The header fields are left as they are (8-bit header text is SMTPUTF8's business, not
 * 8BITMIME's). Parts that cannot be made 7-bit without changing their meaning — BINARYMIME
 * content ("binary"), message/global, a multipart whose boundary never closes — make the
 * conversion fail with a reason; the caller returns the message (5.6.3).
 */
#ifndef IMSD_MIME8_H
#define IMSD_MIME8_H

#include <stddef.h>

#define MIME8_DEPTH_MAX		20
#define MIME8_QP_LINE		76	/* RFC 2045 6.7 (5) */

/* Convert msg[0..len) into a malloc'd *out (*outlen). 0 ok; -1 with why (not convertible,
 * or out of memory). */
int mime8_downgrade(const char *msg, size_t len, char **out, size_t *outlen, char *why,
    size_t wl);

/* Does buf hold a byte over 127 or a NUL (not 7bit)? */
int mime8_has_8bit(const char *buf, size_t len);

#endif
