/*
 * fuzz_qfmt — the queue file decoder and journal reader on arbitrary bytes.
 * A decoded header (DSN records included) must re-encode, and the re-encoding must decode to the same envelope.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/qfmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qenv e, e2;
	size_t hdrlen, hdrlen2, outlen;
	char err[256], *out;
	uint64_t bl;

	(void)qfmt_trailer_decode((const char *)data, size, &bl);
	if (qfmt_header_decode((const char *)data, size, &e, &hdrlen, err, sizeof(err)) != 0)
		return 0;
	if (hdrlen > size)
		abort();
	(void)qfmt_journal_apply((const char *)data + hdrlen, size - hdrlen, &e, err, sizeof(err));
	if (qfmt_header_encode(&e, &out, &outlen) == 0) {
		if (qfmt_header_decode(out, outlen, &e2, &hdrlen2, err, sizeof(err)) != 0 ||
		    hdrlen2 != outlen || e2.nrcpts != e.nrcpts || strcmp(e2.sender, e.sender) != 0 ||
		    strcmp(e2.qid, e.qid) != 0 || e2.smtputf8 != e.smtputf8 ||
		    e2.dsn_ret != e.dsn_ret || strcmp(e2.envid, e.envid) != 0)
			abort();
		for (size_t i = 0; i < e.nrcpts; i++)
			if (strcmp(e.rcpts[i].addr, e2.rcpts[i].addr) != 0 ||
			    strcmp(e.rcpts[i].orcpt, e2.rcpts[i].orcpt) != 0 ||
			    e.rcpts[i].notify != e2.rcpts[i].notify ||
			    (e.rcpts[i].dsn_orcpt == NULL) != (e2.rcpts[i].dsn_orcpt == NULL) ||
			    (e.rcpts[i].dsn_orcpt != NULL &&
			    strcmp(e.rcpts[i].dsn_orcpt, e2.rcpts[i].dsn_orcpt) != 0))
				abort();
		qenv_free(&e2);
		free(out);
	}
	qenv_free(&e);
	return 0;
}
