/* fuzz_tlsa — the TLSA response parser: any bytes; what it keeps is within its limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/tlsa.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tlsa_answer a;
	char why[200], s[80];

	why[0] = '\0';
	if (tlsa_parse(data, size, &a, why, sizeof(why)) < 0) {
		if (why[0] == '\0')
			abort();
		return 0;
	}
	if (a.n > TLSA_MAX_RRS || a.rcode > 15)
		abort();
	for (size_t i = 0; i < a.n; i++) {
		if (a.rr[i].len > TLSA_DATA_MAX)
			abort();
		(void)tlsa_usable(&a.rr[i]);
		tlsa_str(&a.rr[i], s, sizeof(s));
	}
	return 0;
}
