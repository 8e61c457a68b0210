/*
 * msgprep — the 7-bit conversion and DKIM re-signing (see msgprep.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "deliver/msgprep.h"
#include "mailauth/authcheck.h"
#include "mailauth/dkimop.h"
#include "proto/mime8.h"
#include "proto/msghdr.h"
#include "util/log.h"

/* Remove from the header section of m the DKIM-Signature fields whose d= is a domain this
 * server signs for (they would no longer verify); returns the new length. */
static size_t
drop_own_signatures(char *m, size_t len, const struct dkim_keys *keys)
{
	size_t pos = 0, hend;
	const char *e = memmem(m, len, "\r\n\r\n", 4);
	struct mhdr_field f;

	hend = e ? (size_t)(e - m) + 2 : len;
	while (pos < hend) {
		size_t start = pos;
		int r = mhdr_next(m, hend, &pos, &f);
		if (r <= 0)
			break;
		if (mhdr_is(&f, "DKIM-Signature")) {
			char d[256] = "";
			const char *p = f.value, *end = f.value + f.valuelen;
			/* d= tag: after ';' or the start, whitespace allowed */
			for (const char *q = p; q < end; q++) {
				if ((q == p || q[-1] == ';' || q[-1] == ' ' || q[-1] == '\t' ||
				    q[-1] == '\n') && q + 2 < end && q[0] == 'd' && q[1] == '=') {
					size_t o = 0;
					for (q += 2; q < end && *q != ';' && o + 1 < sizeof(d); q++)
						if (*q > ' ')
							d[o++] = (char)((*q >= 'A' && *q <= 'Z') ? *q + 32 : *q);
					d[o] = '\0';
					break;
				}
			}
			if (d[0] && dkim_keys_have(keys, d)) {
				memmove(m + start, m + pos, len - pos);
				len -= pos - start;
				hend -= pos - start;
				pos = start;
			}
		}
	}
	return len;
}

/* The 7-bit conversion and its DKIM re-signing; see msgprep.h. */
int
msgprep_7bit(const struct dlv_job *j, const char *host, int *fd_out, uint64_t *len_out,
    int *nsig_out, char *err, size_t errlen)
{
	const struct dkim_keys *keys = &j->cfg->dkim;
	char *msg = NULL, *out = NULL, *sig = NULL, why[200], serr[200];
	size_t outlen = 0, siglen = 0;
	int fd = -1, nsig = 0;

	if (j->body_len > 64ull * 1024 * 1024 || (msg = malloc(j->body_len + 1)) == NULL) {
		snprintf(err, errlen, "the message is too large to convert in memory");
		return -1;
	}
	if (pread(j->fd, msg, j->body_len, (off_t)j->body_off) != (ssize_t)j->body_len) {
		snprintf(err, errlen, "reading the queue file failed");
		free(msg);
		return -1;
	}
	if (mime8_downgrade(msg, j->body_len, &out, &outlen, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s", why);
		free(msg);
		return -1;
	}
	free(msg);
	if (keys->n > 0)
		outlen = drop_own_signatures(out, outlen, keys);
	if ((fd = memfd_create("imsd-7bit", MFD_CLOEXEC)) < 0 ||
	    write(fd, out, outlen) != (ssize_t)outlen) {
		snprintf(err, errlen, "memfd: %s", strerror(errno));
		goto fail;
	}
	if (keys->n > 0) {
		char dom[2][256];
		const char *d[2] = { dom[0], dom[1] };
		size_t nd = authcheck_sign_domains(keys, fd, 0, outlen, j->sender, dom);
		if (nd > 0 && dkim_sign_message(keys, d, nd, fd, 0, outlen, &sig, &siglen, &nsig,
		    serr, sizeof(serr)) < 0)
			log_warn("relay=%s event=dkim-sign-error reason=\"%s\" note=sent-unsigned-after-"
			    "7bit-conversion", host, serr);
		if (nsig > 0) {
			/* the new signatures go first: rewrite the memfd */
			if (ftruncate(fd, 0) < 0 || pwrite(fd, sig, siglen, 0) != (ssize_t)siglen ||
			    pwrite(fd, out, outlen, (off_t)siglen) != (ssize_t)outlen) {
				snprintf(err, errlen, "memfd: %s", strerror(errno));
				goto fail;
			}
			outlen += siglen;
		}
	}
	free(out);
	free(sig);
	*fd_out = fd;
	*len_out = outlen;
	*nsig_out = nsig;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(out);
	free(sig);
	return -1;
}
