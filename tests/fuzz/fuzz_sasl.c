/*
 * fuzz_sasl — libFuzzer target for src/proto/sasl.c.
 *
 * The input is taken as base64 text: when it decodes, the result must re-encode to exactly
 * the input (strict base64 has one spelling per value) and is then parsed as a PLAIN
 * message; the raw input is parsed as PLAIN too, with buffers both large and tight. On
 * success every field must be NUL-terminated within its buffer, non-empty where required,
 * at most 255 bytes, and the three fields with two NULs must rebuild the message; on
 * failure the buffers must be "". The input is also tried as a mechanism name and as a
 * cancel line. Any violation abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

/* Parse msg as PLAIN with caps of cap bytes each and check the contract. */
static void plain(const unsigned char *msg, size_t len, size_t cap)
{
	char az[300], u[300], p[300];
	size_t al, ul, pl;

	memset(az, 'A', sizeof az);
	memset(u, 'U', sizeof u);
	memset(p, 'P', sizeof p);
	if (sasl_plain_parse(msg, len, az, cap, u, cap, p, cap) != 0) {
		check(az[0] == '\0' && u[0] == '\0' && p[0] == '\0');
		return;
	}
	check(memchr(az, '\0', cap) != NULL && memchr(u, '\0', cap) != NULL &&
	    memchr(p, '\0', cap) != NULL);
	al = strlen(az);
	ul = strlen(u);
	pl = strlen(p);
	check(ul > 0 && pl > 0);
	check(al <= SASL_FIELD_MAX && ul <= SASL_FIELD_MAX && pl <= SASL_FIELD_MAX);
	check(al + 1 + ul + 1 + pl == len);
	check(memcmp(msg, az, al) == 0 && msg[al] == '\0');
	check(memcmp(msg + al + 1, u, ul) == 0 && msg[al + 1 + ul] == '\0');
	check(memcmp(msg + al + 2 + ul, p, pl) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *dec;
	char *enc, *name;
	size_t cap = SASL_B64_DECODED_MAX(size) + 1, n = 0;
	size_t enccap = SASL_B64_ENCODED_LEN(size + cap) + 1;	/* room for both encodings */

	dec = malloc(cap);
	enc = malloc(enccap);
	name = malloc(size + 1);
	if (dec == NULL || enc == NULL || name == NULL)
		abort();

	if (sasl_b64_decode((const char *)data, size, dec, cap, &n) == 0) {
		int el = sasl_b64_encode(dec, n, enc, enccap);

		check(n <= SASL_B64_DECODED_MAX(size));
		check(el >= 0 && (size_t)el == size && memcmp(enc, data, size) == 0);
		plain(dec, n, 256);
		plain(dec, n, 8);
		/* and it must not fit one byte less */
		if (n > 0) {
			size_t n2 = 99;

			check(sasl_b64_decode((const char *)data, size, dec, n - 1, &n2) == -1);
			check(n2 == 0);
		}
	} else {
		check(n == 0);
	}

	/* encode arbitrary bytes and decode back */
	{
		int el = sasl_b64_encode(data, size, enc, enccap);
		unsigned char *back = malloc(size + 1);
		size_t bn = 0;

		if (back == NULL)
			abort();
		check(el >= 0 && (size_t)el == SASL_B64_ENCODED_LEN(size));
		check(sasl_b64_decode(enc, (size_t)el, back, size, &bn) == 0);
		check(bn == size && memcmp(back, data, size) == 0);
		free(back);
	}

	plain(data, size, 256);
	plain(data, size, 300);
	plain(data, size, 4);

	memcpy(name, data, size);
	name[size] = '\0';
	{
		enum sasl_mech m = sasl_mech_parse(name);

		check(m == SASL_PLAIN || m == SASL_LOGIN || m == SASL_UNKNOWN);
		if (m != SASL_UNKNOWN)
			check(strlen(name) == 5);
	}
	if (sasl_is_cancel((const char *)data, size))
		check(size >= 1 && size <= 3 && data[0] == '*');

	free(dec);
	free(enc);
	free(name);
	return 0;
}
