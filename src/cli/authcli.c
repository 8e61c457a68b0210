/*
 * authcli — see authcli.h.
 */
#include "cli/authcli.h"
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailauth/authcheck.h"
#include "mailauth/dkimop.h"
#include "util/addr.h"

void
authcli_print_record(FILE *fp, const char *domain, const char *selector, const char *record)
{
	size_t n = strlen(record);

	fprintf(fp, "%s._domainkey.%s. IN TXT", selector, domain);
	for (size_t i = 0; i < n; i += 255)
		fprintf(fp, " \"%.*s\"", (int)(n - i > 255 ? 255 : n - i), record + i);
	fputc('\n', fp);
}

int
authcli_keygen(int argc, char **argv)
{
	int i = 2, ed = 0;
	char *rec = NULL, err[512];

	if (i < argc && strcmp(argv[i], "--ed25519") == 0) {
		ed = 1;
		i++;
	}
	if (argc - i != 3) {
		fprintf(stderr, "usage: imsd dkim-keygen [--ed25519] DOMAIN SELECTOR KEYFILE\n");
		return 1;
	}
	if (dkim_keygen(ed, argv[i + 2], &rec, err, sizeof(err)) < 0) {
		fprintf(stderr, "imsd: dkim-keygen: %s\n", err);
		return 1;
	}
	fprintf(stderr, "imsd: wrote %s key %s (mode 0600). Publish this record, then add\n"
	    "  dkim_sign = %s:%s:%s\nto the configuration and run imsd check:\n",
	    ed ? "an Ed25519" : "a 2048-bit RSA", argv[i + 2], argv[i], argv[i + 1], argv[i + 2]);
	authcli_print_record(stdout, argv[i], argv[i + 1], rec);
	free(rec);
	return 0;
}

void
authcli_check_report(const struct cfg *c, FILE *fp)
{
	const struct conf *cf = &c->conf;

	if (c->dkim.n == 0)
		fprintf(fp, "# DKIM: no dkim_sign keys: relayed mail is not signed\n");
	for (size_t i = 0; i < c->dkim.n; i++) {
		const struct dkim_key *k = &c->dkim.k[i];
		fprintf(fp, "# DKIM: mail from %s is signed with selector %s: %s (%s) from %s; "
		    "its DNS record:\n#   ", k->domain, k->selector,
		    k->ed25519 ? "Ed25519" : "RSA", k->ed25519 ? "ed25519-sha256" : "rsa-sha256",
		    k->file);
		authcli_print_record(fp, k->domain, k->selector, k->dns_record);
	}
	if (c->dkim.n > 0)
		fprintf(fp, "# DKIM: signed are messages from authenticated clients and "
		    "relay_networks whose From: (or envelope sender) domain is listed\n");
	fprintf(fp, "# inbound checks: %s\n", cf->inbound_checks ? "SPF, DKIM and DMARC on mail "
	    "from outside relay_networks and loopback, without AUTH; an Authentication-Results "
	    "field is added" : "off (inbound_checks = no)");
	if (cf->inbound_checks)
		fprintf(fp, "#   DMARC p=reject failures are %s; SPF fail is %s\n",
		    cf->dmarc_reject ? "refused (550 5.7.1)" : "delivered with the header",
		    cf->spf_reject ? "refused at MAIL (550 5.7.23)" : "recorded, not refused");
	if (cf->ndnsbl > 0)
		fprintf(fp, "# DNS lists: %zu blocklist(s), %zu allow-list(s); a client scoring %u "
		    "or more gets 554 5.7.1 at MAIL\n", cf->ndnsbl, cf->ndnswl, cf->dnsbl_threshold);
}

/* explain-auth FILE --client-ip ADDR --helo NAME --mail-from ADDR [-c CONF] */
int
authcli_explain(int argc, char **argv)
{
	const char *path = NULL, *file = NULL, *ip = NULL, *helo = NULL, *from = NULL;
	struct authcheck_out out;
	struct authcheck_in in;
	struct cfg *c;
	struct netaddr addr;
	char err[1024], *raw, *msg;
	size_t rawlen = 0, cap = 65536, ml = 0;
	FILE *fp;
	int fd;

	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-c") == 0 && v) {
			path = v;
			i++;
		} else if (strcmp(a, "--client-ip") == 0 && v) {
			ip = v;
			i++;
		} else if (strcmp(a, "--helo") == 0 && v) {
			helo = v;
			i++;
		} else if (strcmp(a, "--mail-from") == 0 && v) {
			from = v;
			i++;
		} else if (a[0] != '-' && file == NULL)
			file = a;
		else {
			file = NULL;
			break;
		}
	}
	path = cli_conf_path(path);
	if (file == NULL || ip == NULL || helo == NULL || from == NULL) {
		fprintf(stderr, "usage: imsd explain-auth [-c FILE] MESSAGE.eml --client-ip ADDR "
		    "--helo NAME --mail-from ADDRESS\n");
		return 1;
	}
	if (netaddr_parse(ip, &addr) < 0) {
		fprintf(stderr, "imsd: explain-auth: %s is not an IP address\n", ip);
		return 1;
	}
	if ((c = cfg_load(path, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imsd: %s\n", err);
		return 1;
	}
	if (strcmp(from, "<>") == 0)
		from = "";
	if ((fp = fopen(file, "rb")) == NULL) {
		fprintf(stderr, "imsd: explain-auth: %s: %s\n", file, strerror(errno));
		cfg_unref(c);
		return 1;
	}
	raw = malloc(cap);
	for (size_t n; raw && (n = fread(raw + rawlen, 1, cap - rawlen, fp)) > 0;) {
		rawlen += n;
		if (rawlen == cap) {
			char *nr = cap < 64 * 1024 * 1024 ? realloc(raw, cap * 2) : NULL;
			if (nr == NULL) {
				free(raw);
				raw = NULL;
				break;
			}
			raw = nr;
			cap *= 2;
		}
	}
	fclose(fp);
	/* stored form: CRLF lines (a file saved with LF is what most tools write) */
	if (raw == NULL || (msg = malloc(rawlen * 2 + 2)) == NULL) {
		fprintf(stderr, "imsd: explain-auth: %s: too large or out of memory\n", file);
		free(raw);
		cfg_unref(c);
		return 1;
	}
	for (size_t i = 0; i < rawlen; i++) {
		if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r'))
			msg[ml++] = '\r';
		msg[ml++] = raw[i];
	}
	free(raw);
	if ((fd = memfd_create("imsd-explain", MFD_CLOEXEC)) < 0 || write(fd, msg, ml) !=
	    (ssize_t)ml) {
		fprintf(stderr, "imsd: explain-auth: memfd: %s\n", strerror(errno));
		free(msg);
		cfg_unref(c);
		return 1;
	}
	free(msg);
	memset(&in, 0, sizeof(in));
	in.conf = &c->conf;
	in.client = addr;
	in.helo = helo;
	in.sender = from;
	in.fd = fd;
	in.off = 0;
	in.len = ml;
	in.random_pct = 0;
	authcheck_inbound(&in, &out);
	close(fd);

	printf("SPF (MAIL FROM %s): %s\n  %s\n", out.mfrom.identity, spf_res_name(out.mfrom.result),
	    out.mfrom.why[0] ? out.mfrom.why : "-");
	printf("SPF (HELO %s): %s\n  %s\n", out.helo.identity, spf_res_name(out.helo.result),
	    out.helo.why[0] ? out.helo.why : "-");
	if (out.nsigs == 0)
		printf("DKIM: none\n  the message carries no DKIM-Signature%s%s\n",
		    out.from_note[0] ? "; " : "", out.from_note);
	for (size_t i = 0; i < out.nsigs; i++)
		printf("DKIM signature %zu (d=%s s=%s a=%s): %s\n  %s\n", i + 1, out.sigs[i].domain,
		    out.sigs[i].selector, out.sigs[i].alg, dkim_res_name(out.sigs[i].result),
		    out.sigs[i].why);
	printf("DMARC (From: %s): %s", out.dmarc.from_domain[0] ? out.dmarc.from_domain : "-",
	    dmarc_res_name(out.dmarc.result));
	if (out.dmarc.record_domain[0])
		printf(" (record of %s, p=%s)", out.dmarc.record_domain,
		    dmarc_pol_name(out.dmarc.published));
	printf("\n  %s\n", out.dmarc.why[0] ? out.dmarc.why : "-");
	printf("Verdict: %s\n", out.action == AUTH_ACCEPT ? "accept (with the header below)" :
	    out.reply);
	if (out.ar)
		fputs(out.ar, stdout);
	authcheck_out_free(&out);
	cfg_unref(c);
	return 0;
}
