/* fuzz_authrec — what mail authentication reads from DNS: raw DNS answers (TXT, A, AAAA, MX,
 * PTR) through our parser, SPF records through libspf2's compiler, DMARC records through
 * libopendmarc's parser, and whole messages (DKIM-Signature fields) through libopendkim's
 * verifier without DNS. The first byte chooses. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <arpa/nameser.h>
#include <netinet/in.h>
#include <spf2/spf.h>
#include <opendmarc/dmarc.h>

#include "mailauth/dkimop.h"
#include "mailauth/dnsq.h"

static SPF_server_t *spf;

static void
quiet(const char *f, int l, const char *m)
{
	(void)f;
	(void)l;
	(void)m;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0: {
		static const int types[] = { 16, 1, 28, 15, 12 };
		struct dnsq_answer a;
		unsigned char *buf;
		if (size < 2)
			break;
		buf = malloc(size);
		memcpy(buf, data + 2, size - 2);
		dnsq_parse(types[data[1] % 5], buf, (int)(size - 2), &a);
		for (size_t i = 0; i < a.ntxt; i++)
			if (strlen(a.txt[i]) >= DNSQ_TXT_MAX)
				abort();
		dnsq_answer_free(&a);
		free(buf);
		break;
	}
	case 1: {
		SPF_response_t *resp;
		SPF_record_t *rec = NULL;
		if (spf == NULL) {
			SPF_warning_handler = quiet;
			SPF_info_handler = quiet;
			SPF_debug_handler = quiet;
			spf = SPF_server_new(SPF_DNS_CACHE, 0);
		}
		s = strndup((const char *)data + 1, size - 1);
		resp = SPF_response_new(NULL);
		SPF_record_compile(spf, resp, &rec, s);
		if (rec)
			SPF_record_free(rec);
		SPF_response_free(resp);
		free(s);
		break;
	}
	case 2: {
		DMARC_POLICY_T *p = opendmarc_policy_connect_init((u_char *)"192.0.2.1", 4);
		s = strndup((const char *)data + 1, size - 1);
		opendmarc_policy_parse_dmarc(p, (u_char *)"example.com", (u_char *)s);
		opendmarc_policy_connect_shutdown(p);
		free(s);
		break;
	}
	default: {
		struct dkim_sigres *res;
		size_t n;
		char err[256];
		int fd = memfd_create("fuzz", 0);
		if (fd < 0 || write(fd, data + 1, size - 1) != (ssize_t)(size - 1)) {
			if (fd >= 0)
				close(fd);
			break;
		}
		if (dkim_verify_message(NULL, fd, 0, size - 1, &res, &n, err, sizeof(err)) == 0)
			free(res);
		close(fd);
		break;
	}
	}
	return 0;
}
