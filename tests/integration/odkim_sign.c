/* odkim_sign — sign a message with OpenDKIM's library as the opendkim milter does by default
 * (rsa-sha256, relaxed/simple), for test_mailauth.py: opendkim-testmsg, the command-line
 * tool, signs with rsa-sha1, which RFC 8301 forbids verifiers to accept.
 *
 *   odkim_sign DOMAIN SELECTOR KEYFILE < message > signed-message
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <opendkim/dkim.h>

int
main(int argc, char **argv)
{
	static char msg[8 << 20], key[65536];
	size_t n, kn;
	FILE *kf;
	DKIM_LIB *lib;
	DKIM *d;
	DKIM_STAT st;
	unsigned char *hdr;
	size_t hl;

	if (argc != 4 || (kf = fopen(argv[3], "r")) == NULL)
		return 2;
	kn = fread(key, 1, sizeof(key) - 1, kf);
	key[kn] = '\0';
	fclose(kf);
	n = fread(msg, 1, sizeof(msg), stdin);
	if ((lib = dkim_init(NULL, NULL)) == NULL)
		return 3;
	d = dkim_sign(lib, (unsigned char *)"t", NULL, (dkim_sigkey_t)key, (unsigned char *)argv[2],
	    (unsigned char *)argv[1], DKIM_CANON_RELAXED, DKIM_CANON_SIMPLE, DKIM_SIGN_RSASHA256, -1,
	    &st);
	if (d == NULL || dkim_chunk(d, (unsigned char *)msg, n) != DKIM_STAT_OK ||
	    dkim_chunk(d, NULL, 0) != DKIM_STAT_OK || dkim_eom(d, NULL) != DKIM_STAT_OK ||
	    dkim_getsighdr_d(d, strlen("DKIM-Signature: "), &hdr, &hl) != DKIM_STAT_OK) {
		fprintf(stderr, "odkim_sign: %s\n", d ? dkim_geterror(d) : dkim_getresultstr(st));
		return 1;
	}
	printf("DKIM-Signature: ");
	for (size_t i = 0; i < hl; i++) {
		if (hdr[i] == '\n')
			putchar('\r');
		putchar(hdr[i]);
	}
	printf("\r\n");
	fwrite(msg, 1, n, stdout);
	dkim_free(d);
	dkim_close(lib);
	return 0;
}
