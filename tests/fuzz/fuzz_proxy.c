/* fuzz_proxy — the PROXY protocol header parser: any bytes, every prefix consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proto/proxy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr h;
	const char *why;
	int n = proxy_parse(data, size, &h, &why);

	if (n > (int)size || why == NULL)
		abort();
	if (n > 0) {
		if (h.version != 1 && h.version != 2)
			abort();
		if (h.has_addr && h.src.family != AF_INET && h.src.family != AF_INET6)
			abort();
		/* a complete header stays complete, with the same length, when more follows */
		uint8_t *more = malloc(size + 8);
		memcpy(more, data, size);
		memcpy(more + size, "EHLO x\r\n", 8);
		struct proxy_hdr h2;
		if (proxy_parse(more, size + 8, &h2, &why) != n)
			abort();
		free(more);
	} else if (n == 0 && size > PROXY_V2_MAX + 16)
		abort();	/* never wait for more than the bound */
	return 0;
}
