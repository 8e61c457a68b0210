/*
 * fuzz_recipients — recipients_parse on arbitrary bytes, then lookups of every line of
 * the input (as written and lower-cased) and of its alias targets, and the alias
 * expansion RCPT makes from each (bounded in depth and size whatever the aliases).
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/recipients.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Domains starting with 'l' are local. */
static int
is_local(void *arg, const char *domain)
{
	return domain[0] == 'l';
}

static int
visit(void *arg, enum recipients_node node, const char *addr, char *const *targets,
    size_t nt, int depth)
{
	size_t *visits = arg;

	if (depth < 0 || depth > RECIPIENTS_ALIAS_DEPTH_MAX + 1 || addr == NULL ||
	    (node == RX_ALIAS && nt == 0) || ++*visits > 4 * RECIPIENTS_EXPANSION_MAX *
	    (RECIPIENTS_ALIAS_DEPTH_MAX + 2))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct recipients *r;
	char err[512];
	char *copy;
	size_t pos = 0;

	r = recipients_parse("fuzz", (const char *)data, size, err, sizeof err);
	if (r == NULL) {
		if (err[0] == '\0')
			abort();	/* every failure says why */
		return 0;
	}
	copy = malloc(size + 1);
	if (copy == NULL)
		abort();
	while (pos < size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t ll = nl ? (size_t)(nl - (data + pos)) : size - pos;
		char *const *t;
		size_t n, i;

		memcpy(copy, data + pos, ll);
		copy[ll] = '\0';
		pos += ll + 1;
		/* the text before ':' or a blank is the address, if the line holds one */
		copy[strcspn(copy, ": \t\r#")] = '\0';
		for (i = 0; copy[i]; i++)
			copy[i] = (char)tolower((unsigned char)copy[i]);
		if (recipients_lookup(r, copy, &t, &n) == 1) {
			for (i = 0; i < n; i++) {
				if (t[i] == NULL || strchr(t[i], '@') == NULL)
					abort();
				(void)recipients_lookup(r, t[i], NULL, NULL);
			}
			size_t visits = 0;
			const char *why = NULL;
			if (recipients_expand(r, copy, is_local, NULL, visit, &visits, &why) < 0 &&
			    why == NULL)
				abort();	/* every refusal says why */
		} else if (n != 0) {
			abort();
		}
	}
	(void)recipients_count(r);
	free(copy);
	recipients_free(r);
	return 0;
}
