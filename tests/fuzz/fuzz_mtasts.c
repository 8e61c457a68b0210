/* fuzz_mtasts — MTA-STS policy files and TXT records: any bytes; results within limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/mtasts.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mtasts_policy p;
	char why[200], id[MTASTS_ID_MAX + 1];
	int r;

	why[0] = '\0';
	if (mtasts_policy_parse((const char *)data, size, &p, why, sizeof(why)) < 0) {
		if (why[0] == '\0')
			abort();
	} else {
		if (p.nmx > MTASTS_MX_MAX || p.max_age > MTASTS_MAX_AGE_MAX)
			abort();
		if (p.mode != MTASTS_NONE && p.nmx == 0)
			abort();
		for (size_t i = 0; i < p.nmx; i++) {
			if (strlen(p.mx[i]) > 253)
				abort();
			/* a plain pattern matches itself */
			if (p.mx[i][0] != '*' && !mtasts_mx_match(&p, p.mx[i]))
				abort();
		}
	}
	why[0] = '\0';
	r = mtasts_txt_parse((const char *)data, size, id, why, sizeof(why));
	if (r == 1 && (strlen(id) < 1 || strlen(id) > MTASTS_ID_MAX))
		abort();
	if (r < 0 && why[0] == '\0')
		abort();
	return 0;
}
