/*
 * dovecot_auth — the client side of Dovecot's authentication protocol (version 1), the one
 * Dovecot's auth-client socket speaks to its login processes and to Postfix's
 * `smtpd_sasl_type = dovecot`: lines in, messages out; messages in, lines out.
 *
 * PURE: no I/O, no allocation, no globals; every function works on caller buffers and
 * never writes past the capacity it is given.
 *
 * The protocol (Dovecot's "Dovecot Authentication Protocol" document). Lines end in LF,
 * fields are separated by TAB; values use Dovecot's tab-escaping, \001 followed by
 * '0' (NUL), '1' (\001), 't' (TAB), 'r' (CR), 'n' or 'l' (LF), any other byte standing for
 * itself. Optional parameters are `name=value` or a bare boolean `name`; unknown ones are
 * ignored.
 *
 *   C: VERSION TAB 1 TAB <minor>            C: CPID TAB <pid>
 *   S: VERSION TAB 1 TAB <minor>            S: MECH TAB <name> [TAB <flag>]...  (repeated)
 *   S: SPID TAB <pid>   S: CUID TAB <n>     S: COOKIE TAB <hex>     S: DONE
 *   C: AUTH TAB <id> TAB <mech> TAB service=smtp [TAB secured] [TAB lip=..] ... [TAB resp=<b64>]
 *   S: CONT TAB <id> TAB <b64>          (C answers CONT TAB <id> TAB <b64>)
 *   S: OK TAB <id> [TAB user=<name>] ...
 *   S: FAIL TAB <id> [TAB reason=<text>] [TAB temp] [TAB code=<code>] [TAB user=<name>] ...
 *
 * A server whose major version is not 1 is not spoken to. Ids are decimal, 1 to 2^32-1.
 *
 * Limits: a line is at most DVA_LINE_MAX bytes (Dovecot's own maximum, LF excluded); a user
 * name at most DVA_USER_MAX-1 bytes, a reason at most DVA_REASON_MAX-1 (longer reasons are
 * cut, longer user names make the line malformed); at most DVA_MECHS_MAX mechanisms.
 */
#ifndef IMSD_DOVECOT_AUTH_H
#define IMSD_DOVECOT_AUTH_H

#include <stddef.h>

#define DVA_LINE_MAX	16384
#define DVA_USER_MAX	256
#define DVA_REASON_MAX	256
#define DVA_MECH_MAX	32		/* a mechanism name, NUL included (RFC 4422: 20 chars) */
#define DVA_MECHS_MAX	32
#define DVA_MAJOR	1
#define DVA_MINOR	1		/* what this client speaks */

enum dva_kind {
	DVA_VERSION, DVA_MECH, DVA_SPID, DVA_CUID, DVA_COOKIE, DVA_DONE,
	DVA_OK, DVA_FAIL, DVA_CONT, DVA_OTHER	/* DVA_OTHER: a command this client ignores */
};

/* MECH flags. */
#define DVA_MECH_PLAINTEXT	0x01	/* the password travels in the clear (PLAIN, LOGIN) */
#define DVA_MECH_ANONYMOUS	0x02
#define DVA_MECH_PRIVATE	0x04	/* not to be advertised to clients */

/* One server line, parsed. Strings are NUL-terminated copies (tab-unescaped); data points
 * into the parsed line. */
struct dva_msg {
	enum dva_kind kind;
	unsigned major, minor;		/* VERSION */
	char mech[DVA_MECH_MAX];	/* MECH: the name, upper-cased */
	unsigned mech_flags;		/* MECH: DVA_MECH_* */
	unsigned long id;		/* OK, FAIL, CONT */
	char user[DVA_USER_MAX];	/* OK, FAIL: user= ("" when absent) */
	char reason[DVA_REASON_MAX];	/* FAIL: reason= ("" when absent) */
	int temp;			/* FAIL: temporary (the `temp` flag or code=temp_fail) */
	int disabled;			/* FAIL: code=user_disabled or code=pass_expired */
	const char *data;		/* CONT: the base64 challenge, not NUL-terminated */
	size_t datalen;
};

/*
 * Parse one line (len bytes, the LF removed; a trailing CR is tolerated). 0 with *m filled,
 * -1 when malformed: longer than DVA_LINE_MAX, a NUL byte, a known command with missing or
 * bad required fields, a user name that does not fit or unescapes to a NUL or a control
 * character, a CONT challenge that is not base64 characters.
 */
int dva_parse(const char *line, size_t len, struct dva_msg *m);

/* The server's handshake, gathered line by line. */
struct dva_handshake {
	int version_seen;
	unsigned major, minor;
	unsigned long spid;
	unsigned nmechs;			/* mechanisms listed (not private), up to the max */
	char mechs[DVA_MECHS_MAX][DVA_MECH_MAX];
	unsigned mech_flags[DVA_MECHS_MAX];
	int done;
};

#define DVA_HS_MORE	0
#define DVA_HS_DONE	1
#define DVA_HS_ERROR	(-1)

/* Start gathering. */
void dva_handshake_init(struct dva_handshake *h);

/*
 * Take one parsed server message during the handshake. DVA_HS_MORE: go on; DVA_HS_DONE: the
 * DONE line arrived after a VERSION of major 1; DVA_HS_ERROR: the first line was not VERSION,
 * the major version is not 1, DONE came without VERSION, or a reply (OK/FAIL/CONT) came
 * before DONE. Unknown commands are ignored, as the protocol asks.
 */
int dva_handshake_feed(struct dva_handshake *h, const struct dva_msg *m);

/* 1 when the handshake listed mechanism name (case-insensitive), else 0. */
int dva_handshake_has(const struct dva_handshake *h, const char *name);

/* The client's half of the handshake ("VERSION\t1\t1\nCPID\t<pid>\n") into buf. Its length,
 * or -1 when cap is too small. */
int dva_hello(char *buf, size_t cap, unsigned long pid);

/* One authentication request. */
struct dva_auth_req {
	unsigned long id;		/* 1 .. 2^32-1, unique on the connection */
	const char *mech;		/* "PLAIN", "LOGIN" */
	const char *service;		/* "smtp" */
	const char *session;		/* the SMTP session id, for Dovecot's log; NULL: none */
	const char *lip, *rip;		/* local and remote address; NULL: none */
	unsigned lport, rport;		/* 0: none */
	int secured;			/* TLS, or a loopback connection */
	int no_penalty;			/* imsd counts and delays failures itself */
	const char *resp;		/* the initial response, base64; NULL: none ("" is
					 * an empty one) */
};

/* The AUTH line for req, LF included, into buf. Its length, or -1 when cap is too small or
 * a field is unusable (id 0 or over 2^32-1, a mechanism name that is not a SASL name). */
int dva_auth_line(char *buf, size_t cap, const struct dva_auth_req *req);

/* The CONT line answering a challenge, "CONT\t<id>\t<b64>\n", into buf; -1 as above. */
int dva_cont_line(char *buf, size_t cap, unsigned long id, const char *b64);

/* Tab-escape s into buf (NUL-terminated). Its length, or -1 when it does not fit. */
int dva_escape(const char *s, char *buf, size_t cap);

/* Tab-unescape len bytes into buf (NUL-terminated). Its length, or -1 when it does not fit,
 * ends in a lone \001, or unescapes to a NUL byte. */
int dva_unescape(const char *s, size_t len, char *buf, size_t cap);

#endif
