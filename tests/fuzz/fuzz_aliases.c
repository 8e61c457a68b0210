/*
 * fuzz_aliases — aliases_parse on arbitrary bytes: a table, or an error naming the file and
 * a line; every entry found again by its name (any case), every value of a known kind and
 * within the limits.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/aliases.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512] = "";
	struct aliases *a = aliases_parse("aliases", (const char *)data, size, err, sizeof(err));

	if (a == NULL) {
		if (strncmp(err, "aliases:", 8) != 0)
			abort();
		return 0;
	}
	for (size_t i = 0; i < aliases_count(a); i++) {
		const struct alias_entry *e = aliases_entry(a, i);
		char up[256];
		size_t n = strlen(e->name);
		if (n == 0 || n >= sizeof(up) || e->nvalues == 0 || e->nvalues > ALIASES_VALUES_MAX)
			abort();
		for (size_t k = 0; k <= n; k++)
			up[k] = (char)toupper((unsigned char)e->name[k]);
		if (aliases_lookup(a, up) != e)
			abort();
		for (size_t v = 0; v < e->nvalues; v++)
			if (e->values[v].kind > AT_INCLUDE || e->values[v].text == NULL ||
			    strlen(e->values[v].text) > ALIASES_VALUE_MAX)
				abort();
	}
	aliases_free(a);
	return 0;
}
