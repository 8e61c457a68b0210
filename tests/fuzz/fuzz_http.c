/* fuzz_http — the metrics listener's HTTP/1.x request-head parser: any bytes, in one piece
 * and split at a point the input picks, reach the same verdict within the limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_req a, b;
	size_t used_a, used_b1 = 0, used_b2 = 0, split;
	enum http_status sa, sb;

	if (size < 1)
		return 0;
	split = data[0] % (size);
	data++;
	size--;
	if (split > size)
		split = size;

	http_req_init(&a);
	sa = http_req_feed(&a, (const char *)data, size, &used_a);
	if (used_a > size)
		abort();

	http_req_init(&b);
	sb = http_req_feed(&b, (const char *)data, split, &used_b1);
	if (sb == HTTP_MORE && used_b1 != split)
		abort();
	if (sb == HTTP_MORE)
		sb = http_req_feed(&b, (const char *)data + split, size - split, &used_b2);
	if (sa != sb || used_a != used_b1 + used_b2)
		abort();
	if (sa == HTTP_ERROR) {
		if (a.why == NULL || a.status != b.status ||
		    (a.status != 400 && a.status != 414 && a.status != 431 && a.status != 505))
			abort();
	} else if (sa == HTTP_DONE) {
		if (a.target[0] != '/' || (a.minor != 0 && a.minor != 1) ||
		    strcmp(a.target, b.target) != 0 || a.method != b.method ||
		    a.nheaders > HTTP_HEADERS_MAX || used_a > HTTP_HEAD_MAX)
			abort();
		if (a.minor == 1 && a.nhost != 1)
			abort();
		char path[HTTP_LINE_MAX + 1];
		http_req_path(&a, path, sizeof(path));
		if (path[0] != '/' || strchr(path, '?') != NULL)
			abort();
	} else if (size > HTTP_HEAD_MAX) {
		abort();	/* never waits past the bound */
	}
	return 0;
}
