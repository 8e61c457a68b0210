/*
 * session_int — what the parts of the session (session.c: the commands and the dialogue;
 * data.c: the message text of DATA and BDAT; auth.c: the AUTH exchange) share. Private to
 * src/session/: nothing outside includes it (session.h is the contract).
 */
#ifndef IMSD_SESSION_INT_H
#define IMSD_SESSION_INT_H

#include <stddef.h>
#include <stdint.h>

#include "policy/tls_offer.h"
#include "proto/smtp_body.h"
#include "session/session.h"

enum session_data_err {
	DERR_NONE = 0,
	DERR_SIZE,	/* message_size_limit exceeded */
	DERR_LINE,	/* text line over 1000 octets */
	DERR_WRITE,	/* spool write failed */
	DERR_NOSPACE,	/* spool write failed: the filesystem is full */
	DERR_HOPS,	/* too many Received headers: a mail loop */
};

#define BODY_CHUNK	16384	/* bytes gathered before one tx_write */

struct session {
	const struct conf *conf;
	const struct recipients *recipients;
	struct session_peer peer;
	char sid[24];
	const struct session_ops *ops;
	void *arg;
	time_t now;

	enum session_listener kind;
	int auth_available;
	unsigned auth_mechs;		/* 1u << enum sasl_mech, for each one offered */
	struct tls_decision tlsd;	/* STARTTLS offered here, and why */
	int tls;			/* TLS is up */
	char tls_desc[128];
	char auth_user[256];		/* authenticated as (empty: not) */
	int auth_mech;			/* enum sasl_mech in progress */
	int auth_step;			/* LOGIN: 0 = want user, 1 = want password */
	char login_user[256];
	unsigned auth_failures;

	enum session_state state;
	int helo_kind;			/* 0 none, 1 HELO, 2 EHLO */
	char helo[256];
	int in_tx;			/* MAIL accepted */
	struct session_tx tx;

	size_t skipping;		/* discarding an over-long line up to its LF: the limit
					 * it broke (0: not skipping) */
	int paused;			/* asked ops->pause: stop consuming until fed again */
	size_t rcpt_bytes;		/* strings held by tx.rcpts (session_memory) */
	unsigned errors, junk;
	unsigned long ncommands;
	unsigned long nmessages;

	/* DATA */
	struct smtp_body_dec dec;	/* DATA's and BDAT text's line rules (proto/smtp_body) */
	int in_headers;			/* still in the header section (hop counting) */
	unsigned hdr_lpos;		/* bytes into the current header line */
	int hdr_match;			/* the line so far matches "Received:" */
	unsigned hops;
	int hdr_crbol;			/* a CR opened the line: the header ends if LF follows */
	/* the Authentication-Results filter (header section only) */
	int hf_bol;			/* at the start of a header line */
	int hf_mode;			/* enum hf_mode */
	char hf_name[32];		/* the field's first bytes, while it may be A-R */
	size_t hf_nlen;			/* bytes in hf_name */
	size_t hf_nmatch;		/* of them, letters matching "authentication-results" */
	int hf_crbol;			/* the line began with CR: an empty line if LF follows */
	char *hf_hold;			/* a held Authentication-Results field */
	size_t hf_holdlen;
	unsigned ar_removed;
	char *chunk;			/* BODY_CHUNK bytes while in DATA, else NULL */
	size_t chunklen;
	int spool_open;			/* tx_open succeeded and neither commit nor abort yet */

	/* BDAT (RFC 3030): SS_DATA reads exactly bdat_left octets of a chunk */
	int bdat;			/* this transaction's body came by BDAT (no DATA now) */
	int bdat_chunk;			/* SS_DATA is reading a BDAT chunk, not DATA text */
	int bdat_last;			/* the chunk being read is the LAST one */
	uint64_t bdat_left;		/* octets of the chunk still to read */
	uint64_t bdat_octets;		/* the chunk's size, for its 250 */
	char bdat_refusal[160];		/* non-empty: the chunk is read and discarded, then
					 * this is the reply */
};

/* session.c */
void ss_reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ss_slog(struct session *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ss_close(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ss_error(struct session *s);
void ss_junk(struct session *s);
void ss_tx_clear(struct session *s);
void ss_spool_abort(struct session *s);
int ss_auth_offered(const struct session *s);

/* data.c */
void ss_cmd_data(struct session *s, const char *args);
void ss_cmd_bdat(struct session *s, const char *args);
size_t ss_body_scan(struct session *s, const char *buf, size_t len);
size_t ss_bdat_scan(struct session *s, const char *buf, size_t len);
void ss_body_flush(struct session *s);

/* auth.c */
void ss_cmd_auth(struct session *s, const char *args);
void ss_auth_response(struct session *s, const char *line, size_t len);

#endif
