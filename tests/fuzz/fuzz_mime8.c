/* fuzz_mime8 — the 8bit-to-quoted-printable MIME walker on any message: no crash, output
 * bounded, and converting the output again changes nothing (it is 7 bit where it must be). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mime8.h"

int
LLVMFuzzerTestOneInput(const uint8_t *raw, size_t rawsize)
{
	char *out = NULL, *again = NULL, why[200] = "";	/* "": a refusal must fill it */
	size_t ol, al, size = 0;
	char *data = malloc(2 * rawsize + 1);

	/* the stored form: every line ends in CRLF (a bare LF was made CRLF at receipt) */
	for (size_t i = 0; i < rawsize; i++) {
		if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r'))
			data[size++] = '\r';
		data[size++] = (char)raw[i];
	}
	if (mime8_downgrade(data, size, &out, &ol, why, sizeof(why)) < 0) {
		free(data);
		if (why[0] == '\0')
			abort();	/* a refusal always says why */
		return 0;
	}
	if (ol > 4 * size + 4096)
		abort();
	if (mime8_downgrade(out, ol, &again, &al, why, sizeof(why)) < 0 || al != ol ||
	    memcmp(out, again, ol) != 0)
		abort();
	free(out);
	free(again);
	free(data);
	return 0;
}
