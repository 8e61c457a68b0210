/*
 * sendmail — the PURE parts of the sendmail(1) interface: the command line as Postfix's
 * sendmail reads it, and the message a program hands to `sendmail` turned into what imsd
 * submits: CRLF lines (bare LF accepted), the end at a lone "." unless -i, recipients taken
 * from To/Cc/Bcc with -t, Bcc removed, From/Date/Message-ID added when missing.
 *
 * No I/O, no clock, no globals: the caller passes the text of the headers it wants added.
 */
#ifndef IMSD_PROTO_SENDMAIL_H
#define IMSD_PROTO_SENDMAIL_H

#include <stddef.h>

#define SM_RCPTS_MAX	10000	/* recipients one submission may name (command line + -t) */
#define SM_ADDR_MAX	254	/* octets of one address, RFC 5321 §4.5.3.1.3 less the <> */
#define SM_HEADER_MAX	(256 * 1024)	/* the header section, unfolded fields included */

/* What the command line asks for. */
enum sm_mode {
	SM_DELIVER,	/* -bm (default): read a message from stdin and submit it */
	SM_SMTP,	/* -bs: SMTP on stdin/stdout */
	SM_QUEUE,	/* -bp, or called as mailq: list the queue */
	SM_FLUSH,	/* -q: retry deferred mail now */
	SM_VERIFY,	/* -bv: check the recipients, send nothing */
	SM_NOOP,	/* -bi / -I (newaliases): imsd reads recipients_file directly */
};

struct sm_opts {
	enum sm_mode mode;
	int extract;		/* -t */
	int dot_ends;		/* a line "." ends the input (no -i / -oi) */
	int verbose;		/* -v */
	const char *sender;	/* -f / -r ADDR, NULL = the user */
	const char *fullname;	/* -F NAME, NULL = none */
	const char *conf_path;	/* -c / -C FILE, NULL = the installed default */
	char **rcpts;		/* the recipient arguments (pointers into argv) */
	size_t nrcpts;
};

/*
 * Parse argv[first..argc). as_mailq: the program was called as mailq (default mode -bp).
 * Options Postfix's sendmail accepts and ignores are ignored here too. 0 ok; -1 with a
 * message in err (usage error: EX_USAGE).
 */
int sm_parse_args(int argc, char **argv, int first, int as_mailq, struct sm_opts *o,
    char *err, size_t errlen);

/* What sm_prepare is asked to add when the message lacks it (full header lines without
 * the CRLF, e.g. "Date: Sun, 29 Nov 2026 02:30:00 +0000"; NULL = never add). */
struct sm_add {
	const char *from;
	const char *date;
	const char *msgid;
};

struct sm_msg {
	char *data;		/* the message to submit: CRLF lines, not dot-stuffed */
	size_t len;
	char **rcpts;		/* with extract: the To/Cc/Bcc addresses, qualified */
	size_t nrcpts;
	int headers_only;	/* the input ended inside the header section */
};

/*
 * Turn the input into the message to submit. extract: collect the addresses of To, Cc and
 * Bcc (unqualified ones get "@" qualify); Bcc fields are removed either way. max_size
 * bounds the result (0: none). 0 ok; -1 with a message in err (EX_DATAERR).
 */
int sm_prepare(const char *in, size_t len, int dot_ends, int extract, const char *qualify,
    const struct sm_add *add, size_t max_size, struct sm_msg *out, char *err, size_t errlen);
void sm_msg_free(struct sm_msg *m);

/*
 * Parse an RFC 5322 address-list (a To/Cc/Bcc field body, folded or not): groups, comments,
 * quoted strings, display names, <angle-addr> with an obsolete route. Each address goes to
 * add (qualified with "@" qualify when it has no domain); add returns -1 to stop.
 * Returns the number of addresses, or -1 with err (syntax, an address over SM_ADDR_MAX,
 * or add's refusal).
 */
int sm_addrlist(const char *s, size_t len, const char *qualify,
    int (*add)(void *arg, const char *addr), void *arg, char *err, size_t errlen);

/* Is addr (without <>) something imsd can put in MAIL FROM/RCPT TO? 1 yes, 0 no. */
int sm_addr_ok(const char *addr);

/*
 * The maildrop file: what `imsd sendmail` leaves in spool_dir/maildrop when no server
 * answers, and the pickup hands to the server's local submission socket later:
 *
 *	IMSD-MAILDROP 1\n
 *	S sender\n		(empty for <>)
 *	R recipient\n		(one or more)
 *	\n
 *	the message: CRLF lines, not dot-stuffed
 */
#define SM_DROP_MAGIC	"IMSD-MAILDROP 1\n"

struct sm_drop {
	char sender[SM_ADDR_MAX + 1];
	char **rcpts;		/* malloc'd */
	size_t nrcpts;
	const char *data;	/* into the buffer parsed */
	size_t len;
};

/* Parse a maildrop file held in buf. Every address must pass sm_addr_ok (the sender may
 * be empty). 0 ok; -1 with err. */
int sm_drop_parse(const char *buf, size_t len, struct sm_drop *d, char *err, size_t errlen);
void sm_drop_free(struct sm_drop *d);

#endif
