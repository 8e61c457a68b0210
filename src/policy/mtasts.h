/*
 * mtasts — MTA-STS (RFC 8461) texts: the _mta-sts TXT record and the policy file.
 *
 * PURE. The TXT record (§3.1): "v=STSv1; id=ID" with fields separated by ';' and optional
 * blanks, v first, id 1 to 32 letters and digits, unknown fields ignored. The policy
 * (§3.2): "key: value" lines ending in CRLF or LF; version STSv1, mode enforce | testing |
 * none, max_age 0 to 31557600 seconds, and mx patterns (a host name, or "*." and a name
 * for exactly one more label) are required (mx except in mode none); unknown keys are
 * ignored; a repeated version, mode or max_age is an error. Limits: the policy at most
 * MTASTS_POLICY_MAX bytes, MTASTS_MX_MAX mx lines, names of at most 253 bytes.
 */
#ifndef IMSD_MTASTS_H
#define IMSD_MTASTS_H

#include <stddef.h>

#define MTASTS_POLICY_MAX	65536	/* bytes of the policy file (RFC 8461 §3.3: "64 KB") */
#define MTASTS_MX_MAX		32
#define MTASTS_ID_MAX		32
#define MTASTS_MAX_AGE_MAX	31557600u

enum mtasts_mode { MTASTS_NONE = 0, MTASTS_TESTING, MTASTS_ENFORCE };

struct mtasts_policy {
	enum mtasts_mode mode;
	unsigned max_age;		/* seconds */
	size_t nmx;
	char mx[MTASTS_MX_MAX][254];	/* lower-case, no trailing dot; "*.example.com" */
};

/* 1: an STSv1 record, its id in id (MTASTS_ID_MAX + 1 bytes); 0: not an MTA-STS record
 * (another TXT record); -1: an STSv1 record that is malformed, why says how. */
int mtasts_txt_parse(const char *txt, size_t len, char *id, char *why, size_t wl);

/* 0 ok; -1 with why ("line 3: max_age: 99999999999 is out of range", ...). */
int mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *p, char *why,
    size_t wl);

/* Does MX host name host (any case, trailing dot allowed) match one of p's mx patterns? */
int mtasts_mx_match(const struct mtasts_policy *p, const char *host);

const char *mtasts_mode_name(enum mtasts_mode m);

#endif
