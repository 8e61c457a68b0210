/* fuzz_doctor — what imsd doctor reads from outside and rewrites: published SPF records
 * (the fix adds this host's addresses), _smtp._tls TLS-RPT records, and the delivery errors
 * remote servers sent (grouped by reason). Any bytes; outputs terminated and within their
 * buffers, verdicts in range, a -1 always explained. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/doctor_rules.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const addr[] = { "198.51.100.10", "2001:db8::10", "192.0.2.1" };
	struct netaddr a[3];
	char *s, out[700], small[24], why[200];
	size_t n;
	int r;

	if (size > 8192 || (s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	for (int i = 0; i < 3; i++)
		netaddr_parse(addr[i], &a[i]);

	memset(out, 'x', sizeof(out));
	doc_spf_with(s, a, 3, out, sizeof(out));
	if (memchr(out, '\0', sizeof(out)) == NULL)
		abort();
	doc_spf_with(s, a, 2, small, sizeof(small));
	if (memchr(small, '\0', sizeof(small)) == NULL)
		abort();
	/* a record that names nothing new comes back as it was (cut to the buffer) */
	if (strlen(s) < sizeof(out) && strstr(s, "ip4:") == NULL && strstr(s, "ip6:") == NULL &&
	    strlen(doc_spf_with(s, a, 0, out, sizeof(out))) != strlen(s))
		abort();

	why[0] = '\0';
	r = doc_tlsrpt_check(s, &n, why, sizeof(why));
	if (r < -1 || r > 1 || (r == -1 && why[0] == '\0') || (r == 1 && n == 0))
		abort();

	doc_reason_key(s, out, sizeof(out));
	if (memchr(out, '\0', sizeof(out)) == NULL)
		abort();
	doc_reason_key(s, small, sizeof(small));
	if (memchr(small, '\0', sizeof(small)) == NULL)
		abort();
	free(s);
	return 0;
}
