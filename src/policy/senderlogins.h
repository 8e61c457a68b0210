/*
 * senderlogins — sender_login_maps: which AUTH logins may send as which addresses, as
 * Postfix's smtpd_sender_login_maps. PURE apart from senderlogins_load.
 *
 * One entry a line, `KEY LOGIN[, LOGIN ...]` (logins separated by commas and/or blanks),
 * `#` comments, blank lines skipped: KEY is an address (`ann@example.com`) or a whole
 * domain (`@example.com`), matched case-insensitively. An address is owned by the logins
 * of its own entry, or when it has none by those of its domain's; an address neither
 * names is owned by nobody. At most SL_ENTRIES entries and SL_LOGINS logins an entry.
 *
 * An authenticated client (SMTP AUTH) may then use as MAIL FROM only an address its login
 * owns (the null sender always), and a message it sends is DKIM-signed only when every
 * From: address is one its login owns too (server.c refuses it otherwise): any user may no
 * longer get any hosted domain's signature.
 */
#ifndef IMSD_SENDERLOGINS_H
#define IMSD_SENDERLOGINS_H

#include <stddef.h>

#define SL_ENTRIES	100000
#define SL_LOGINS	64
#define SL_FILE_MAX	(16 * 1024 * 1024)

struct senderlogins;

/* Parse text (named path in errors: "PATH:LINE: why"). NULL with err. */
struct senderlogins *senderlogins_parse(const char *path, const char *text, size_t len,
    char *err, size_t errlen);
/* Read and parse the file path. NULL with err. */
struct senderlogins *senderlogins_load(const char *path, char *err, size_t errlen);
void senderlogins_free(struct senderlogins *m);

/* Does login own address ("local@domain", any case; "" the null sender: always)? 1 yes,
 * 0 no. */
int senderlogins_owns(const struct senderlogins *m, const char *login, const char *address);
size_t senderlogins_count(const struct senderlogins *m);

#endif
