/* fuzz_msghdr — header fields, From: domains and authserv-ids of any bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/msghdr.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *b = (const char *)data;
	struct mhdr_field f;
	size_t pos = 0, last = 0;
	int r;

	while ((r = mhdr_next(b, size, &pos, &f)) == 1) {
		char dom[MHDR_DOMAINS_MAX][256], id[256];
		size_t n;
		if (pos <= last || pos > size || f.raw < b || f.raw + f.rawlen > b + size ||
		    f.value < f.raw || f.value + f.valuelen > f.raw + f.rawlen + 2)
			abort();
		last = pos;
		if (mhdr_from_domains(f.value, f.valuelen, dom, &n) == 0) {
			if (n > MHDR_DOMAINS_MAX)
				abort();
			for (size_t i = 0; i < n; i++)
				if (strlen(dom[i]) > 253 + 2)
					abort();
		}
		if (mhdr_authserv_id(f.value, f.valuelen, id, sizeof(id)) == 0 && id[0] == '\0')
			abort();
	}
	if (pos > size)
		abort();
	return 0;
}
