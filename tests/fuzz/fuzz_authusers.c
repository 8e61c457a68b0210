/*
 * fuzz_authusers — authusers_parse on arbitrary bytes, then lookups of the user part of
 * every line (and of a couple of fixed names). authusers_verify is not called: yescrypt
 * is far too slow for fuzzing. Invariants: a failure always says why, in the form
 * "fuzz:LINE: ..."; every user found has a stored hash that is a complete line remainder
 * of an accepted method; the count never exceeds the number of lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/authusers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 when h starts with one of the accepted method prefixes. */
static int accepted_prefix(const char *h)
{
	static const char *const p[] = { "$y$", "$gy$", "$7$", "$2b$", "$6$", "$5$" };

	for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
		if (strncmp(h, p[i], strlen(p[i])) == 0)
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct authusers *u;
	char err[512];
	char *copy;
	size_t pos = 0, lines = 0, found = 0;

	u = authusers_parse("fuzz", (const char *)data, size, err, sizeof err);
	if (u == NULL) {
		if (strncmp(err, "fuzz:", 5) != 0)
			abort();	/* every failure says where and why */
		return 0;
	}
	copy = malloc(size + 1);
	if (copy == NULL)
		abort();
	while (pos < size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t ll = nl ? (size_t)(nl - (data + pos)) : size - pos;
		const char *h;
		char *s;

		lines++;
		memcpy(copy, data + pos, ll);
		copy[ll] = '\0';
		pos += ll + 1;
		for (s = copy; *s == ' ' || *s == '\t'; s++)
			;
		s[strcspn(s, ":")] = '\0';
		h = authusers_hash(u, s);
		if (h != NULL) {
			found++;
			if (!accepted_prefix(h) || strchr(h, ':') != NULL || strchr(h, ' ') != NULL)
				abort();
			if (*s == '\0' || strlen(s) > AUTHUSERS_USER_MAX)
				abort();
		}
	}
	if (authusers_count(u) > lines || found > lines || found < authusers_count(u))
		abort();
	(void)authusers_hash(u, "alice");
	(void)authusers_hash(u, "");
	free(copy);
	authusers_free(u);
	return 0;
}
