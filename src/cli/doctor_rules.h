/*
 * doctor_rules — the pure judgements and texts of `imsd doctor` and `imsd dns-records`:
 * which addresses are public, whether a name is a host name the world can use, the
 * reverse-DNS name of an address, the records to publish (zone-file lines), an SPF record
 * with this host's addresses added, the MTA-STS policy and its id, the certificate expiry
 * rule, the forward-confirmed reverse DNS verdict, and how a delivery error is grouped.
 *
 * PURE: no DNS, no files, no clock (the caller passes "now"). Every function writes into
 * the caller's buffer, NUL-terminated and cut to its size, and never fails otherwise.
 */
#ifndef IMSD_DOCTOR_RULES_H
#define IMSD_DOCTOR_RULES_H

#include <stddef.h>

#include "util/addr.h"

#define DOC_CERT_WARN_DAYS	21	/* a certificate expiring sooner is a warning */
#define DOC_MTASTS_MAX_AGE	604800	/* the policy's max_age dns-records proposes (1 week) */
#define DOC_SPF_MAX		450	/* an SPF record longer than this does not fit one UDP
					 * answer beside the others (RFC 7208 3.4) */

enum doc_status { DOC_OK, DOC_WARN, DOC_FAIL };

const char *doc_status_name(enum doc_status s);	/* "ok", "warn", "fail" */

/*
 * Could the world reach this address? Not loopback, unspecified, link-local, private
 * (10/8, 172.16/12, 192.168/16, fc00::/7), shared (100.64/10), 0/8, multicast or reserved.
 * The documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32) count
 * as public: they stand for public addresses in examples and in the tests.
 */
int doc_addr_is_public(const struct netaddr *a);

/* Is name a host name other hosts can look up (two labels at least, not localhost, not a
 * name of a local-only zone: .local, .localdomain, .localhost, .internal, .lan,
 * .home.arpa, .invalid)? 1 yes; 0 no, with why. */
int doc_name_is_fqdn(const char *name, char *why, size_t wl);

/* "10.100.51.198.in-addr.arpa", or the nibble name under ip6.arpa. */
const char *doc_ptr_name(const struct netaddr *a, char *buf, size_t len);

/*
 * A zone-file line: "OWNER. IN TYPE RDATA", the owner padded to a column when pad (names
 * get their trailing dot). TXT data is given unquoted and is written as quoted strings of
 * at most 255 characters each (RFC 1035 3.3.14).
 */
const char *doc_rr(const char *owner, const char *type, const char *rdata, int pad, char *buf,
    size_t len);
const char *doc_rr_txt(const char *owner, const char *text, int pad, char *buf, size_t len);

/*
 * The SPF record allowing addrs: record (a published "v=spf1 ..." or NULL for none) with an
 * ip4:/ip6: term added for each address it does not name literally, placed before its
 * "all" (with whatever qualifier) or redirect=, else at the end; without a record,
 * "v=spf1 ip4:... ip6:... -all". Returns out.
 */
const char *doc_spf_with(const char *record, const struct netaddr *addrs, size_t n,
    char *out, size_t len);

/* The MTA-STS policy (RFC 8461 3.2) for MX host names mx (n of them): mode (testing,
 * enforce), DOC_MTASTS_MAX_AGE; CRLF lines. And its id: 16 hex digits of a hash of the
 * policy text, so the id changes exactly when the policy does. */
const char *doc_mtasts_policy(const char *const *mx, size_t n, const char *mode, char *buf,
    size_t len);
const char *doc_mtasts_id(const char *policy, char *buf, size_t len);

/* The verdict on a certificate that expires at expires (unix time) seen at now: DOC_FAIL
 * when expired, DOC_WARN under DOC_CERT_WARN_DAYS, else DOC_OK; *days (may be negative). */
enum doc_status doc_cert_expiry(long long expires, long long now, long *days);

/*
 * Forward-confirmed reverse DNS (RFC 8601 2.7.3's iprev) of one address: ptr the names its
 * PTR records give (nptr), fwd_ok[i] whether name i's A/AAAA records include the address,
 * helo the name imsd says in EHLO. DOC_OK: a name resolves back and it is helo; DOC_FAIL
 * otherwise: no PTR, no name resolving back (the big providers refuse such a host), or a
 * confirmed name that is not the EHLO name (why says which; *match the index of the
 * confirmed name, or -1).
 */
enum doc_status doc_fcrdns(const char *const *ptr, const int *fwd_ok, size_t nptr,
    const char *helo, int *match, char *why, size_t wl);

/*
 * A TXT record at _smtp._tls.DOMAIN (RFC 8460 3): 0 not a TLS-RPT record (it does not start
 * with "v=TLSRPTv1"), 1 a good one (*nuris: its rua= URIs, each mailto: or https:), -1 a
 * malformed one (why: no rua=, an empty or unknown URI, a field without "=").
 */
int doc_tlsrpt_check(const char *txt, size_t *nuris, char *why, size_t wl);

/*
 * A delivery error as `imsd queue` shows it ("x-imsd; mx1.example.org: connect: Connection
 * refused", "smtp; 550 5.7.1 ...") reduced to what groups alike: the host and the
 * diagnostic type dropped, addresses and numbers other than reply codes replaced by "N".
 */
const char *doc_reason_key(const char *last_error, char *buf, size_t len);

#endif
