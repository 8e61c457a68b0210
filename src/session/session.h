/*
 * session — the pure state machine of one inbound SMTP session (RFC 5321, with
 * PIPELINING RFC 2920, SIZE RFC 1870, 8BITMIME RFC 6152, ENHANCEDSTATUSCODES RFC 2034,
 * CHUNKING and BINARYMIME RFC 3030, SMTPUTF8 RFC 6531).
 *
 * Bytes in, replies and transaction actions out; no I/O, no clock, no globals. The server
 * owns the socket and calls session_feed() with whatever it has buffered; the session
 * consumes complete command lines (and DATA bytes as they come) and returns how many bytes
 * it used. Replies go out through ops->output; the server writes them when the batch of
 * input is done, which is how pipelined replies leave in one segment.
 *
 * The end of DATA hands the transaction to ops->tx_commit and the session waits: it
 * consumes nothing until the server calls session_commit_done() (after the queue made the
 * message durable, possibly as part of a group commit), which sends 250 or 451. This is
 * the only place a 250 for a message is produced.
 *
 * Limits (RFC 5321 §4.5.3.1): a command line over 512 octets (CRLF included) is skipped
 * to its LF and refused with 500 5.5.2; a text line over 1000 octets latches an error
 * replied after the final dot; message_size_limit is enforced on the bytes stored; at
 * most recipient_limit recipients. Bad commands and rejected recipients spend an error
 * budget: past SESSION_SOFT_ERRORS each error's reply is held back a growing number of
 * seconds (ops->pause), and when the budget is gone the session ends with 421. Replies are
 * produced only while the server's output bound allows (ops->output_full), so a client
 * that never reads cannot make the server hold more than that bound.
 *
 * DATA ends only at <CR><LF>.<CR><LF>; a bare <LF> ends a line (stored as CRLF) but can
 * never take part in an end of data (SMTP smuggling).
 *
 * BDAT <size> [LAST]: exactly size octets follow and are read as message text whatever
 * they hold (SS_DATA while a chunk is read, SS_CMD between chunks with the spool file
 * open); the same header handling and limits as DATA, committed by tx_commit only after
 * LAST. BODY=BINARYMIME text is stored as sent; other BDAT text gets DATA's line rules.
 * See the BDAT section of data.c.
 */
#ifndef IMSD_SESSION_H
#define IMSD_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf/conf.h"
#include "policy/recipients.h"
#include "proto/dsnparam.h"
#include "proto/smtp_path.h"
#include "util/addr.h"

#define SESSION_CMD_MAX		512	/* octets, CRLF included (RFC 5321 §4.5.3.1.4) */
#define SESSION_RCPT_MAX	(SESSION_CMD_MAX + 520)	/* RFC 3461 §5: a RCPT line may be
					 * longer by its NOTIFY and ORCPT (500) parameters */
#define SESSION_TEXT_MAX	1000	/* octets, CRLF included (RFC 5321 §4.5.3.1.6) */
#define SESSION_ERROR_LIMIT	20	/* bad commands and rejected recipients before 421 */
#define SESSION_SOFT_ERRORS	10	/* after this many, each error's reply is delayed */
#define SESSION_ERROR_DELAY_MAX	3	/* seconds: the delay grows by one a error up to this */
#define SESSION_JUNK_LIMIT	100	/* NOOP/RSET/VRFY/HELP and repeated EHLO/HELO without a
					 * message in between */
#define SESSION_QID_MAX		32
#define SESSION_AUTH_FAILURES	3	/* failed AUTH attempts before 421 */
#define SESSION_HOPS_MAX	100	/* Received headers before a message is a loop */
#define SESSION_AR_HOLD_MAX	8192	/* an Authentication-Results field held to read its id */

/* One accepted recipient after alias expansion: where to deliver, and as what it came. */
struct tx_rcpt {
	char *addr;		/* delivery address, "local@domain" (local ones lower-case) */
	char *orcpt;		/* the address the client gave (RFC 3461 ORCPT), same if no alias */
	unsigned notify;	/* NOTIFY= (DSN_NOTIFY_* bits), 0 when not given */
	char *dsn_orcpt;	/* ORCPT= as dsn_orcpt_parse keeps it, NULL when not given */
};

struct session_tx {
	char qid[SESSION_QID_MAX];
	char sender[SMTP_PATH_MAX + 1];	/* "local@domain", "" for <> */
	struct tx_rcpt *rcpts;
	size_t nrcpts, rcpts_cap;
	size_t naccepted;		/* RCPT commands accepted (the recipient_limit counter) */
	int body_8bit;			/* BODY=8BITMIME (or BINARYMIME) */
	int requiretls;			/* MAIL FROM:<…> REQUIRETLS (RFC 8689) */
	int body_binary;		/* BODY=BINARYMIME (RFC 3030): stored exactly as sent */
	int smtputf8;			/* MAIL had SMTPUTF8 (RFC 6531): addresses may be UTF-8 */
	int dsn_ret;			/* RET= (enum dsn_ret), 0 when not given */
	char envid[DSN_ENVID_MAX + 1];	/* ENVID= (xtext), "" when not given */
	uint64_t declared_size;		/* SIZE= or 0 */
	uint64_t size;			/* bytes stored so far (CRLF form, Received header included) */
	uint64_t own;			/* of those, our own Received header: message_size_limit
					 * counts what the client sent, not what we add */
	int err;			/* latched DATA error (enum session_data_err) */
	int authenticated;		/* MAIL came after a successful AUTH */
};

struct session;

struct session_ops {
	/* Send reply bytes (complete lines). */
	void (*output)(void *arg, const char *buf, size_t len);
	/* Begin the spool file for tx (envelope complete). Fill tx->qid. 0 ok, -1 → 451. */
	int (*tx_open)(void *arg, struct session_tx *tx);
	/* Append body bytes (CRLF lines, unstuffed; BINARYMIME: any octets). 0 ok, -1 → the
	 * DATA (or BDAT chunk) ends in 451. */
	int (*tx_write)(void *arg, const char *buf, size_t len);
	/* The final dot arrived: make it durable, later call session_commit_done. */
	void (*tx_commit)(void *arg, struct session_tx *tx);
	/* Forget the open spool file (error, RSET during DATA is impossible, disconnect). */
	void (*tx_abort)(void *arg);
	/* A log event for this session (already formatted, no newline). */
	void (*log)(void *arg, int level, const char *line);
	/* STARTTLS was accepted and its 220 queued: send it, DISCARD every input byte
	 * buffered after the STARTTLS line (RFC 3207 §4.2, CVE-2011-0411), run the
	 * handshake, then call session_tls_done (or close on failure). */
	void (*starttls)(void *arg);
	/* Check credentials (possibly slow: crypt) and answer with session_auth_done. */
	void (*auth_check)(void *arg, const char *user, const char *pass);
	/* Optional. Non-zero when the replies not yet sent have reached the server's bound:
	 * the session then stops consuming command lines (they stay with the caller) until
	 * the client has read its replies. This is what bounds the memory of a client that
	 * pipelines commands without reading. */
	int (*output_full)(void *arg);
	/* Optional. Hold the replies queued so far, and all further input, for this many
	 * seconds (the error tarpit); session_feed returns at once after asking. The server
	 * resumes by feeding input again when the time is up. */
	void (*pause)(void *arg, unsigned seconds);
	/* Optional. Is there room in the spool for a message of size bytes (0: unknown)
	 * beyond queue_minfree? 1 yes; 0 no (MAIL gets 452 4.3.1). Cheap: the server
	 * answers from a cached figure. */
	int (*space_ok)(void *arg, uint64_t size);
	/* Optional. MAIL FROM is valid; may the client send from sender? (DNS lists, SPF with
	 * spf_reject.) The session consumes nothing until session_mail_done, which may be
	 * called from inside this callback. */
	void (*mail_check)(void *arg, const char *sender, int authenticated);
	/* Optional. A recipient was refused as unknown or not ours to relay: what an address
	 * harvester collects, one session at a time. The client's standing across all its
	 * sessions: 0 go on, N > 0 (at most SESSION_ERROR_DELAY_MAX) hold this reply N
	 * seconds, < 0 it is over its budget (421 4.7.0 and close). */
	int (*rcpt_refused)(void *arg);
};

/* What tx_write returns when the spool's filesystem is full (ENOSPC, EDQUOT): the DATA
 * ends in 452 4.3.1 instead of 451 4.3.0. */
#define SESSION_WRITE_NOSPACE	(-2)
/* The same for session_commit_done: the commit failed for want of space. */
#define SESSION_COMMIT_NOSPACE	(-1)

/* SL_LOCAL: the local submission socket (spool_dir/submit) that `imsd sendmail` and the
 * maildrop pickup use: the peer is a local user, named by uid in the Received header; it may
 * relay, and is offered neither STARTTLS nor AUTH. */
enum session_listener { SL_SMTP, SL_SUBMISSION, SL_SMTPS, SL_LOCAL };

/* What the server knows about the connection when it creates the session. */
struct session_opts {
	enum session_listener kind;
	int cert_loaded;	/* a server certificate is loaded (STARTTLS possible) */
	int auth_available;	/* auth_users_file is loaded, or auth_backend is Dovecot */
	unsigned auth_mechs;	/* the mechanisms offered: (1u << SASL_PLAIN) | (1u << SASL_LOGIN)
				 * as the backend carries them; 0 = both */
	const char *tls_desc;	/* non-NULL when TLS is already up (smtps) */
};

struct session_peer {
	struct netaddr local;	uint16_t local_port;
	struct netaddr remote;	uint16_t remote_port;
	long uid;		/* SL_LOCAL: the submitting user (SO_PEERCRED, or the maildrop
				 * file's owner); unused otherwise */
	int no_client;		/* a PROXY header without addresses (v2 LOCAL or UNSPEC, v1
				 * UNKNOWN): who the client is is not known, local and remote
				 * are the unspecified address. Such a session gets no
				 * exemption, no AUTH, and its MAIL is refused (550 5.7.1);
				 * a balancer's health check may still EHLO, NOOP and QUIT. */
};

enum session_state {
	SS_GREETING,	/* before session_start */
	SS_CMD,		/* reading commands */
	SS_DATA,	/* reading message text */
	SS_COMMIT,	/* waiting for session_commit_done */
	SS_STARTTLS,	/* 220 to STARTTLS sent; waiting for session_tls_done */
	SS_AUTH,	/* AUTH in progress: the next line is a SASL response */
	SS_AUTHWAIT,	/* waiting for session_auth_done */
	SS_MAILWAIT,	/* waiting for session_mail_done */
	SS_CLOSING,	/* said 221/421: the server flushes and closes */
};

/*
 * Create a session; conf and recipients (may be NULL) are borrowed and must outlive it.
 * Returns NULL only on allocation failure.
 */
struct session *session_new(const struct conf *conf, const struct recipients *rcpts,
    const struct session_peer *peer, const struct session_opts *opts, const char *sid,
    const struct session_ops *ops, void *arg);
void session_free(struct session *s);

/* Send the 220 greeting, or "421 4.7.0 <hostname> <refuse>" when refuse is non-NULL. */
void session_start(struct session *s, const char *refuse);

/* Set the clock the session uses for the Received header. */
void session_set_time(struct session *s, time_t now);

/*
 * Consume input: returns the number of bytes used (≤ len). Unused bytes stay with the
 * caller and must be presented again, with more appended, on the next call. A return of
 * less than len with a full command line available means the session is waiting
 * (SS_COMMIT) or closing.
 */
size_t session_feed(struct session *s, const char *buf, size_t len);

/* The queue's answer to tx_commit: 1 durable, 0 failed (451 4.3.0), SESSION_COMMIT_NOSPACE
 * (452 4.3.1). */
void session_commit_done(struct session *s, int ok);

/* The server's answer to tx_commit when the message is refused after all (a DMARC
 * p=reject failure, a policy that needs a DNS answer it cannot get now): reply is the
 * whole reply line ("550 5.7.1 ..."), sent instead of 250; nothing was queued. */
void session_commit_refused(struct session *s, const char *reply);

/* The answer to ops->mail_check: NULL accepts MAIL (250), else the reply line that
 * refuses it ("554 5.7.1 ...", "550 5.7.23 ..."); a refusal spends the error budget. */
void session_mail_done(struct session *s, const char *refusal);

/* The TLS handshake after STARTTLS succeeded: reset the session (RFC 3207 §4.2). desc
 * names protocol and cipher for the Received header, e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384". */
void session_tls_done(struct session *s, const char *desc);

/* The answer to ops->auth_check: 1 good credentials, 0 bad, SESSION_AUTH_LOCKED when the
 * client's address has spent its failure budget (421 4.7.0 and close, no check made). */
#define SESSION_AUTH_LOCKED	(-1)
void session_auth_done(struct session *s, int ok);
/* SESSION_AUTH_TEMPFAIL: the password backend could not say (Dovecot unreachable): 454
 * 4.7.0, which RFC 4954 §6 gives for a temporary failure; nothing is counted against the
 * client. */
#define SESSION_AUTH_TEMPFAIL	(-2)
/* session_auth_done with more to say: canon (NULL: the login name) is the name the backend
 * gives the account, taken as the authenticated user on success; why (NULL: none) is the
 * backend's reason, logged. */
void session_auth_verdict(struct session *s, int ok, const char *canon, const char *why);

/* A timeout fired: reply 421 4.4.2 and close. in_data selects the wording. */
void session_timeout(struct session *s);

/* The server is stopping: 421 4.3.2 to an idle session (SPEC: SIGTERM). */
void session_shutdown(struct session *s);

/* The client vanished: abort any open transaction (nothing is acknowledged). */
void session_disconnected(struct session *s);

enum session_state session_state(const struct session *s);
/* The name the client gave in EHLO/HELO ("" before). */
const char *session_helo(const struct session *s);
/* The AUTH login of the session, "" before a successful AUTH. */
const char *session_auth_user(const struct session *s);
/* The mechanism (enum sasl_mech) of the AUTH exchange in progress or last made. */
int session_auth_mech(const struct session *s);
/* The MAIL FROM address of the open transaction ("" for <>). */
const char *session_mail_sender(const struct session *s);
/* Bytes this session holds (itself, its recipients, its DATA buffer): the server's memory
 * accounting (max_session_memory). */
size_t session_memory(const struct session *s);
/* Completed command lines so far: the server restarts command_timeout when it grows. */
unsigned long session_commands(const struct session *s);

#endif
