/*
 * mtasts — parse MTA-STS TXT records and policies (see mtasts.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/mtasts.h"

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int
mtasts_txt_parse(const char *txt, size_t len, char *id, char *why, size_t wl)
{
	size_t i = 0, field = 0;
	int have_id = 0;

	while (i < len) {
		size_t ks, ke, vs, ve;
		while (i < len && is_blank(txt[i]))
			i++;
		if (i == len)
			break;
		ks = i;
		while (i < len && txt[i] != '=' && txt[i] != ';')
			i++;
		ke = i;
		if (i == len || txt[i] != '=') {
			if (field == 0)
				return 0;
			snprintf(why, wl, "field %zu has no '='", field + 1);
			return -1;
		}
		vs = ++i;
		while (i < len && txt[i] != ';')
			i++;
		ve = i;
		while (ve > vs && is_blank(txt[ve - 1]))
			ve--;
		if (i < len)
			i++;	/* the ';' */
		if (field == 0) {
			/* v=STSv1 must come first, exactly */
			if (ke - ks != 1 || txt[ks] != 'v' || ve - vs != 5 ||
			    memcmp(txt + vs, "STSv1", 5) != 0)
				return 0;
		} else if (ke - ks == 2 && memcmp(txt + ks, "id", 2) == 0) {
			size_t n = ve - vs;
			if (have_id) {
				snprintf(why, wl, "id appears twice");
				return -1;
			}
			if (n < 1 || n > MTASTS_ID_MAX) {
				snprintf(why, wl, "id must be 1 to %d letters and digits", MTASTS_ID_MAX);
				return -1;
			}
			for (size_t k = vs; k < ve; k++)
				if (!isalnum((unsigned char)txt[k])) {
					snprintf(why, wl, "id must be 1 to %d letters and digits",
					    MTASTS_ID_MAX);
					return -1;
				}
			memcpy(id, txt + vs, n);
			id[n] = '\0';
			have_id = 1;
		}
		field++;
	}
	if (field == 0)
		return 0;
	if (!have_id) {
		snprintf(why, wl, "no id field");
		return -1;
	}
	return 1;
}

/* A host name or "*." + host name, lower-cased into out (254 bytes). 0 ok, -1 bad. */
static int
mx_pattern(const char *s, size_t n, char *out)
{
	size_t i = 0, lab = 0, o = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n >= 2 && s[0] == '*' && s[1] == '.') {
		out[o++] = '*';
		out[o++] = '.';
		i = 2;
	}
	if (n - i == 0 || n > 253)
		return -1;
	for (; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (lab == 0 || s[i - 1] == '-')
				return -1;
			lab = 0;
		} else if (isalnum((unsigned char)c) || (c == '-' && lab > 0) || c == '_') {
			if (++lab > 63)
				return -1;
		} else
			return -1;
		out[o++] = (char)tolower((unsigned char)c);
	}
	if (lab == 0 || out[o - 1] == '-')
		return -1;
	out[o] = '\0';
	return 0;
}

int
mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *p, char *why,
    size_t wl)
{
	int have_version = 0, have_mode = 0, have_age = 0;
	size_t i = 0, line = 0;

	memset(p, 0, sizeof(*p));
	if (len > MTASTS_POLICY_MAX) {
		snprintf(why, wl, "the policy has %zu bytes (at most %d)", len, MTASTS_POLICY_MAX);
		return -1;
	}
	while (i < len) {
		size_t ls = i, le, ks, ke, vs, ve;
		const char *nl = memchr(text + i, '\n', len - i);
		le = nl != NULL ? (size_t)(nl - text) : len;
		i = nl != NULL ? le + 1 : len;
		line++;
		if (le > ls && text[le - 1] == '\r')
			le--;
		if (le == ls)
			continue;	/* blank line (a trailing one is common) */
		ks = ls;
		for (ke = ks; ke < le && text[ke] != ':'; ke++)
			;
		if (ke == le) {
			snprintf(why, wl, "line %zu: not \"key: value\"", line);
			return -1;
		}
		vs = ke + 1;
		while (vs < le && is_blank(text[vs]))
			vs++;
		ve = le;
		while (ve > vs && is_blank(text[ve - 1]))
			ve--;
#define KEY(k)	(ke - ks == sizeof(k) - 1 && memcmp(text + ks, k, sizeof(k) - 1) == 0)
#define VAL(v)	(ve - vs == sizeof(v) - 1 && memcmp(text + vs, v, sizeof(v) - 1) == 0)
		if (KEY("version")) {
			if (have_version++) {
				snprintf(why, wl, "line %zu: version appears twice", line);
				return -1;
			}
			if (!VAL("STSv1")) {
				snprintf(why, wl, "line %zu: version is not STSv1", line);
				return -1;
			}
		} else if (KEY("mode")) {
			if (have_mode++) {
				snprintf(why, wl, "line %zu: mode appears twice", line);
				return -1;
			}
			if (VAL("enforce"))
				p->mode = MTASTS_ENFORCE;
			else if (VAL("testing"))
				p->mode = MTASTS_TESTING;
			else if (VAL("none"))
				p->mode = MTASTS_NONE;
			else {
				snprintf(why, wl, "line %zu: mode is not enforce, testing or none", line);
				return -1;
			}
		} else if (KEY("max_age")) {
			unsigned long long v = 0;
			if (have_age++) {
				snprintf(why, wl, "line %zu: max_age appears twice", line);
				return -1;
			}
			if (ve == vs || ve - vs > 10) {
				snprintf(why, wl, "line %zu: max_age must be 0 to %u seconds", line,
				    MTASTS_MAX_AGE_MAX);
				return -1;
			}
			for (size_t k = vs; k < ve; k++) {
				if (!isdigit((unsigned char)text[k])) {
					snprintf(why, wl, "line %zu: max_age must be 0 to %u seconds",
					    line, MTASTS_MAX_AGE_MAX);
					return -1;
				}
				v = v * 10 + (unsigned)(text[k] - '0');
			}
			if (v > MTASTS_MAX_AGE_MAX) {
				snprintf(why, wl, "line %zu: max_age must be 0 to %u seconds", line,
				    MTASTS_MAX_AGE_MAX);
				return -1;
			}
			p->max_age = (unsigned)v;
		} else if (KEY("mx")) {
			if (p->nmx >= MTASTS_MX_MAX) {
				snprintf(why, wl, "line %zu: more than %d mx lines", line, MTASTS_MX_MAX);
				return -1;
			}
			if (mx_pattern(text + vs, ve - vs, p->mx[p->nmx]) < 0) {
				snprintf(why, wl, "line %zu: mx is not a host name or *.name", line);
				return -1;
			}
			p->nmx++;
		}
		/* other keys: ignored (RFC 8461 §3.2 extension fields) */
#undef KEY
#undef VAL
	}
	if (!have_version || !have_mode || !have_age) {
		snprintf(why, wl, "no %s line", !have_version ? "version" : !have_mode ? "mode" :
		    "max_age");
		return -1;
	}
	if (p->mode != MTASTS_NONE && p->nmx == 0) {
		snprintf(why, wl, "no mx line (required in mode %s)", mtasts_mode_name(p->mode));
		return -1;
	}
	return 0;
}

int
mtasts_mx_match(const struct mtasts_policy *p, const char *host)
{
	char h[256];
	size_t n = strlen(host);

	if (n > 0 && host[n - 1] == '.')
		n--;
	if (n == 0 || n >= sizeof(h))
		return 0;
	for (size_t i = 0; i < n; i++)
		h[i] = (char)tolower((unsigned char)host[i]);
	h[n] = '\0';
	for (size_t i = 0; i < p->nmx; i++) {
		const char *pat = p->mx[i];
		if (pat[0] == '*') {
			/* "*.example.com" matches exactly one more label (RFC 8461 §4.1) */
			const char *dot = strchr(h, '.');
			if (dot != NULL && dot > h && strcmp(dot, pat + 1) == 0)
				return 1;
		} else if (strcmp(h, pat) == 0)
			return 1;
	}
	return 0;
}

const char *
mtasts_mode_name(enum mtasts_mode m)
{
	switch (m) {
	case MTASTS_ENFORCE:
		return "enforce";
	case MTASTS_TESTING:
		return "testing";
	default:
		return "none";
	}
}
