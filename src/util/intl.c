/*
 * intl — IDNA and NFC/lower-case folding (contract in intl.h).
 */
#include <idn2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unicase.h>
#include <uninorm.h>

#include "util/intl.h"
#include "util/utf8.h"

#define INTL_DOMAIN_MAX	255	/* RFC 5321 §4.5.3.1.2, also in A-label form */
#define INTL_LOCAL_MAX	64	/* RFC 5321 §4.5.3.1.1, octets */

static void
ascii_lower_copy(char *out, const char *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] - 'A' + 'a') : in[i];
	out[n] = '\0';
}

int
intl_domain_ascii(const char *domain, char *out, size_t outlen, const char **why)
{
	size_t n = strlen(domain);
	char *a = NULL;
	int rc;

	if (!utf8_has_nonascii(domain)) {
		if (n > INTL_DOMAIN_MAX || n >= outlen) {
			*why = "domain too long";
			return -1;
		}
		ascii_lower_copy(out, domain, n);
		return 0;
	}
	if (domain[0] == '[' || !utf8_text_ok(domain, n, 0, NULL)) {
		*why = "domain is not well-formed UTF-8";
		return -1;
	}
	/* UTS #46 non-transitional mapping (case folding included) with NFC input, then
	 * IDNA2008 (RFC 5891) checks of each label. */
	rc = idn2_to_ascii_8z(domain, &a, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	if (rc != IDN2_OK) {
		*why = rc == IDN2_TOO_BIG_DOMAIN || rc == IDN2_TOO_BIG_LABEL ?
		    "domain too long in A-label form" : "domain is not a valid IDNA name";
		return -1;
	}
	n = strlen(a);
	if (n > INTL_DOMAIN_MAX || n >= outlen) {
		free(a);
		*why = "domain too long in A-label form";
		return -1;
	}
	ascii_lower_copy(out, a, n);
	free(a);
	return 0;
}

int
intl_local_fold(const char *local, char *out, size_t outlen, const char **why)
{
	size_t n = strlen(local), m = 0;
	uint8_t *f;

	if (!utf8_has_nonascii(local)) {
		if (n > INTL_LOCAL_MAX || n >= outlen) {
			*why = "local part too long";
			return -1;
		}
		ascii_lower_copy(out, local, n);
		return 0;
	}
	if (!utf8_text_ok(local, n, 0, NULL)) {
		*why = "local part is not well-formed UTF-8";
		return -1;
	}
	f = u8_tolower((const uint8_t *)local, n, NULL, UNINORM_NFC, NULL, &m);
	if (f == NULL) {
		*why = "local part cannot be normalised";
		return -1;
	}
	if (m > INTL_LOCAL_MAX || m >= outlen) {
		free(f);
		*why = "local part too long after normalisation";
		return -1;
	}
	memcpy(out, f, m);
	out[m] = '\0';
	free(f);
	if (strlen(out) != m) {		/* cannot happen: the input had no NUL */
		*why = "local part cannot be normalised";
		return -1;
	}
	return 0;
}

int
intl_addr_fold(const char *addr, char *out, size_t outlen, const char **why)
{
	const char *at = strrchr(addr, '@');
	char local[INTL_LOCAL_MAX * 4 + 1], dom[INTL_DOMAIN_MAX * 4 + 1];
	char flocal[INTL_LOCAL_MAX + 1], fdom[INTL_DOMAIN_MAX + 1];
	size_t ln, dn;

	if (at == NULL) {
		*why = "address has no domain";
		return -1;
	}
	ln = (size_t)(at - addr);
	dn = strlen(at + 1);
	if (dn > 0 && at[dn] == '.')
		dn--;
	if (ln >= sizeof(local) || dn >= sizeof(dom)) {
		*why = "address too long";
		return -1;
	}
	memcpy(local, addr, ln);
	local[ln] = '\0';
	memcpy(dom, at + 1, dn);
	dom[dn] = '\0';
	if (intl_local_fold(local, flocal, sizeof(flocal), why) < 0 ||
	    intl_domain_ascii(dom, fdom, sizeof(fdom), why) < 0)
		return -1;
	if (strlen(flocal) + 1 + strlen(fdom) >= outlen) {
		*why = "address too long";
		return -1;
	}
	memcpy(out, flocal, strlen(flocal));
	out[strlen(flocal)] = '@';
	memcpy(out + strlen(flocal) + 1, fdom, strlen(fdom) + 1);
	return 0;
}
