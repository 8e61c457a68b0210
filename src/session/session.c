/*
 * session — the pure SMTP server state machine; see session.h for the contract.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/msghdr.h"
#include "policy/tls_offer.h"
#include "proto/sasl.h"
#include "session/session.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/intl.h"
#include "util/str.h"

/* Body scanner states (see body_scan). */
enum body_st { B_BOL, B_DOT, B_DOTCR, B_MID, B_CR };

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
	enum body_st bst;
	int bcrlf;			/* the last line ended with CRLF (or DATA just began) */
	size_t blinelen;
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

static void cmd_helo(struct session *, const char *, int);
static void cmd_mail(struct session *, const char *);
static void cmd_rcpt(struct session *, const char *);
static void cmd_data(struct session *, const char *);
static void cmd_bdat(struct session *, const char *);
static void cmd_rset(struct session *, const char *);
static void cmd_noop(struct session *, const char *);
static void cmd_quit(struct session *, const char *);
static void cmd_vrfy(struct session *, const char *);
static void cmd_expn(struct session *, const char *);
static void cmd_help(struct session *, const char *);
static void cmd_starttls(struct session *, const char *);
static void cmd_auth(struct session *, const char *);

static void
reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Send one reply line; the format carries code and enhanced code. */
static void
reply(struct session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	if (log_level_now() >= LOG_DEBUG) {
		char dbg[1400], v[LOG_VALUE_MAX];
		snprintf(dbg, sizeof(dbg), "sid=%s smtp=out line=%s", s->sid,
		    log_value(v, sizeof(v), line, (size_t)n));
		s->ops->log(s->arg, LOG_DEBUG, dbg);
	}
	line[n++] = '\r';
	line[n++] = '\n';
	s->ops->output(s->arg, line, (size_t)n);
}

static void
slog(struct session *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Log an event with this session's id first. */
static void
slog(struct session *s, int level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	if (level > log_level_now())
		return;
	n = snprintf(line, sizeof(line), "sid=%s ", s->sid);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	s->ops->log(s->arg, level, line);
}

/* Forget the open spool file, if there is one (nothing was acknowledged). */
static void
spool_abort(struct session *s)
{
	if (s->spool_open)
		s->ops->tx_abort(s->arg);
	s->spool_open = 0;
}

static void
tx_clear(struct session *s)
{
	/* Between BDAT chunks the spool file is open in SS_CMD: RSET, EHLO, QUIT, STARTTLS
	 * and closing all drop it here. */
	spool_abort(s);
	s->bdat = 0;
	s->bdat_chunk = 0;
	for (size_t i = 0; i < s->tx.nrcpts; i++) {
		if (s->tx.rcpts[i].orcpt != s->tx.rcpts[i].addr)
			free(s->tx.rcpts[i].orcpt);
		free(s->tx.rcpts[i].addr);
		free(s->tx.rcpts[i].dsn_orcpt);
	}
	free(s->tx.rcpts);
	free(s->hf_hold);
	s->hf_hold = NULL;
	s->hf_holdlen = 0;
	memset(&s->tx, 0, sizeof(s->tx));
	s->rcpt_bytes = 0;
	s->in_tx = 0;
	free(s->chunk);
	s->chunk = NULL;
	s->chunklen = 0;
}

/* Create a session; see session.h. */
struct session *
session_new(const struct conf *conf, const struct recipients *rcpts,
    const struct session_peer *peer, const struct session_opts *opts, const char *sid,
    const struct session_ops *ops, void *arg)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->conf = conf;
	s->recipients = rcpts;
	s->peer = *peer;
	s->kind = opts->kind;
	s->auth_available = opts->auth_available;
	s->auth_mechs = opts->auth_mechs ? opts->auth_mechs :
	    (1u << SASL_PLAIN) | (1u << SASL_LOGIN);
	tls_offer(conf, opts->cert_loaded, &peer->local, &s->tlsd);
	if (opts->tls_desc != NULL) {
		s->tls = 1;
		str_copy(s->tls_desc, sizeof(s->tls_desc), opts->tls_desc);
	}
	snprintf(s->sid, sizeof(s->sid), "%s", sid);
	s->ops = ops;
	s->arg = arg;
	s->state = SS_GREETING;
	return s;
}

/* Free the session and everything it owns. */
void
session_free(struct session *s)
{
	if (s == NULL)
		return;
	tx_clear(s);
	free(s);
}

void
session_set_time(struct session *s, time_t now)
{
	s->now = now;
}

enum session_state
session_state(const struct session *s)
{
	return s->state;
}

unsigned long
session_commands(const struct session *s)
{
	return s->ncommands;
}

/* Greet, or refuse with the given 421 text. */
void
session_start(struct session *s, const char *refuse)
{
	if (refuse != NULL) {
		reply(s, "421 4.7.0 %s %s", s->conf->hostname, refuse);
		s->state = SS_CLOSING;
		return;
	}
	reply(s, "220 %s ESMTP imsd", s->conf->hostname);
	s->state = SS_CMD;
}

static void
session_close(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Say a final 421 line and go to CLOSING, dropping any open transaction. */
static void
session_close(struct session *s, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	spool_abort(s);
	reply(s, "%s", text);
	tx_clear(s);
	s->state = SS_CLOSING;
}

/* Spend one unit of the error budget; end the session when it is gone. */
static void
session_error(struct session *s)
{
	if (++s->errors >= SESSION_ERROR_LIMIT) {
		slog(s, LOG_WARN, "event=too-many-errors errors=%u", s->errors);
		session_close(s, "421 4.7.0 %s Too many errors; closing connection",
		    s->conf->hostname);
		return;
	}
	if (s->errors > SESSION_SOFT_ERRORS && s->ops->pause != NULL) {
		/* The tarpit: a client that keeps getting errors (a harvester trying addresses,
		 * a password guesser, a broken script) gets each answer later than the last. */
		unsigned delay = s->errors - SESSION_SOFT_ERRORS;
		if (delay > SESSION_ERROR_DELAY_MAX)
			delay = SESSION_ERROR_DELAY_MAX;
		if (s->errors == SESSION_SOFT_ERRORS + 1)
			slog(s, LOG_INFO, "event=tarpit errors=%u delay=%us", s->errors, delay);
		s->paused = 1;
		s->ops->pause(s->arg, delay);
	}
}

static void
session_junk(struct session *s)
{
	if (++s->junk > SESSION_JUNK_LIMIT) {
		slog(s, LOG_WARN, "event=too-many-commands junk=%u", s->junk);
		session_close(s, "421 4.7.0 %s Too many commands without a message; closing connection",
		    s->conf->hostname);
	}
}

void
session_timeout(struct session *s)
{
	if (s->state == SS_CLOSING)
		return;
	slog(s, LOG_INFO, "event=timeout state=%s", s->state == SS_DATA ? "data" : "command");
	session_close(s, "421 4.4.2 %s Timeout exceeded; closing connection", s->conf->hostname);
}

void
session_shutdown(struct session *s)
{
	if (s->state == SS_CLOSING)
		return;
	session_close(s, "421 4.3.2 %s Service shutting down; closing connection",
	    s->conf->hostname);
}

void
session_disconnected(struct session *s)
{
	if (s->state == SS_DATA || s->state == SS_COMMIT || s->spool_open) {
		slog(s, LOG_INFO, "event=disconnect-in-data qid=%s received=%llu",
		    s->tx.qid, (unsigned long long)s->tx.size);
		if (s->state == SS_COMMIT)
			s->ops->tx_abort(s->arg);	/* the server still holds the file */
		else
			spool_abort(s);
	}
	tx_clear(s);
	s->state = SS_CLOSING;
}

/* The commit finished: this is the only place a message gets its 250. */
void
session_commit_done(struct session *s, int ok)
{
	if (s->state != SS_COMMIT)
		return;
	if (ok == 1) {
		reply(s, "250 2.0.0 Ok: queued as %s", s->tx.qid);
		s->nmessages++;
		s->junk = 0;
	} else if (ok == SESSION_COMMIT_NOSPACE)
		reply(s, "452 4.3.1 Insufficient system storage; message not accepted, try again "
		    "later");
	else
		reply(s, "451 4.3.0 Local error in processing; message not accepted, try again later");
	tx_clear(s);
	s->state = SS_CMD;
}

/* ---- command dispatch ---- */

struct command {
	const char *verb;
	void (*fn)(struct session *, const char *);
};

static const struct command commands[] = {
	{ "MAIL", cmd_mail },
	{ "RCPT", cmd_rcpt },
	{ "DATA", cmd_data },
	{ "BDAT", cmd_bdat },
	{ "RSET", cmd_rset },
	{ "NOOP", cmd_noop },
	{ "QUIT", cmd_quit },
	{ "VRFY", cmd_vrfy },
	{ "EXPN", cmd_expn },
	{ "HELP", cmd_help },
	{ "STARTTLS", cmd_starttls },
	{ "AUTH", cmd_auth },
};

static int
is_http_verb(const char *line)
{
	static const char *const verbs[] = { "GET ", "POST ", "HEAD ", "PUT ", "CONNECT ",
	    "OPTIONS " };

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strncmp(line, verbs[i], strlen(verbs[i])) == 0)
			return 1;
	return 0;
}

/* Execute one complete command line (no CRLF, NUL-terminated). */
static void
session_command(struct session *s, char *line, size_t len)
{
	char verb[16];
	const char *args;
	size_t vlen = 0;

	s->ncommands++;
	if (log_level_now() >= LOG_DEBUG) {
		char v[LOG_VALUE_MAX];
		/* Never log what follows AUTH: it carries credentials. */
		if (strncasecmp(line, "AUTH ", 5) == 0)
			slog(s, LOG_DEBUG, "smtp=in line=\"AUTH ********\"");
		else
			slog(s, LOG_DEBUG, "smtp=in line=%s", log_value(v, sizeof(v), line, len));
	}
	if (memchr(line, '\0', len) != NULL) {
		reply(s, "500 5.5.2 Syntax error: NUL byte in command");
		session_error(s);
		return;
	}
	if (is_http_verb(line)) {
		slog(s, LOG_WARN, "event=non-smtp-command reason=http");
		session_close(s, "421 4.7.0 %s This is an SMTP server, not a web server; closing",
		    s->conf->hostname);
		return;
	}
	while (vlen < len && line[vlen] != ' ' && vlen < sizeof(verb) - 1) {
		verb[vlen] = (char)toupper((unsigned char)line[vlen]);
		vlen++;
	}
	verb[vlen] = '\0';
	if (vlen < len && line[vlen] != ' ') {
		reply(s, "500 5.5.1 Error: command not recognized");
		session_error(s);
		return;
	}
	args = line + vlen;
	while (*args == ' ')
		args++;

	if (strcmp(verb, "EHLO") == 0 || strcmp(verb, "HELO") == 0) {
		cmd_helo(s, args, verb[0] == 'E' ? 2 : 1);
		return;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(verb, commands[i].verb) == 0) {
			commands[i].fn(s, args);
			return;
		}
	}
	if (strcmp(verb, "PROXY") == 0 && s->ncommands == 1) {
		/* A load balancer's header, from an address that is not in proxy_networks:
		 * believing it would let anyone choose the client address we judge. */
		slog(s, LOG_WARN, "event=proxy-header-refused reason=not-in-proxy_networks");
		session_close(s, "421 4.7.0 %s PROXY header not accepted from your address; "
		    "closing connection", s->conf->hostname);
		return;
	}
	reply(s, "500 5.5.1 Error: command not recognized");
	session_error(s);
}

/* Copy the HELO/EHLO argument, printable ASCII only. 0 ok, -1 invalid. */
static int
helo_arg(const char *args, char *out, size_t outlen)
{
	size_t n = 0;

	for (const char *p = args; *p != '\0' && *p != ' '; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || n + 1 >= outlen)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return n > 0 ? 0 : -1;
}

/* SPEC.md: AUTH is offered under TLS, and on loopback connections without it. */
static int
auth_offered(const struct session *s)
{
	return s->auth_available && (s->tls || netaddr_is_loopback(&s->peer.local));
}

static void
cmd_helo(struct session *s, const char *args, int kind)
{
	char name[256];

	if (helo_arg(args, name, sizeof(name)) < 0) {
		reply(s, "501 5.5.4 Syntax: %s hostname", kind == 2 ? "EHLO" : "HELO");
		session_error(s);
		return;
	}
	/* RFC 5321 §4.1.4: EHLO/HELO resets the transaction. */
	tx_clear(s);
	memcpy(s->helo, name, strlen(name) + 1);
	/* A second greeting in the same session (TLS starts a new one) is allowed but earns
	 * nothing: pipelined EHLO floods are the cheapest way to make a server write. */
	if (s->helo_kind != 0) {
		session_junk(s);
		if (s->state == SS_CLOSING)
			return;
	}
	s->helo_kind = kind;
	if (kind == 1) {
		reply(s, "250 %s", s->conf->hostname);
		return;
	}
	reply(s, "250-%s", s->conf->hostname);
	reply(s, "250-PIPELINING");
	reply(s, "250-SIZE %llu", (unsigned long long)s->conf->message_size_limit);
	reply(s, "250-8BITMIME");
	reply(s, "250-CHUNKING");
	reply(s, "250-BINARYMIME");
	reply(s, "250-SMTPUTF8");
	reply(s, "250-DSN");
	if (s->tlsd.offer && !s->tls)
		reply(s, "250-STARTTLS");
	if (s->tls)
		reply(s, "250-REQUIRETLS");	/* RFC 8689 §4: only once TLS is up */
	if (auth_offered(s))
		reply(s, "250-AUTH%s%s", s->auth_mechs & (1u << SASL_PLAIN) ? " PLAIN" : "",
		    s->auth_mechs & (1u << SASL_LOGIN) ? " LOGIN" : "");
	reply(s, "250 ENHANCEDSTATUSCODES");
}

/* Match "FROM:" / "TO:" case-insensitively, tolerating spaces after the colon. */
static const char *
path_keyword(const char *args, const char *kw)
{
	size_t n = strlen(kw);

	if (strncasecmp(args, kw, n) != 0)
		return NULL;
	args += n;
	while (*args == ' ')
		args++;
	return args;
}

static void
cmd_mail(struct session *s, const char *args)
{
	struct smtp_path path;
	struct smtp_param params[8];
	const char *p, *rest, *why;
	int np, body8 = 0, binary = 0, utf8 = 0, requiretls = 0;
	uint64_t size = 0;
	enum dsn_ret ret = DSN_RET_NONE;
	char envid[DSN_ENVID_MAX + 1] = "";

	if (s->helo_kind == 0) {
		reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		session_error(s);
		return;
	}
	if (s->in_tx) {
		reply(s, "503 5.5.1 Error: nested MAIL command");
		session_error(s);
		return;
	}
	if (s->kind == SL_SUBMISSION && s->auth_user[0] == '\0') {
		/* RFC 6409 §4.3: submission requires authentication. */
		reply(s, "530 5.7.0 Authentication required");
		session_error(s);
		return;
	}
	if ((p = path_keyword(args, "FROM:")) == NULL) {
		reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		session_error(s);
		return;
	}
	switch (smtp_path_parse(p, strlen(p), 1, 0, &path, &rest, &why)) {
	case SMTP_PATH_OK:
		break;
	default:
		reply(s, "501 5.1.7 Bad sender address syntax: %s", why);
		session_error(s);
		return;
	}
	np = smtp_params_parse(rest, strlen(rest), params, sizeof(params) / sizeof(params[0]), &why);
	if (np < 0) {
		reply(s, "501 5.5.4 Bad MAIL parameters: %s", why);
		session_error(s);
		return;
	}
	for (int i = 0; i < np; i++) {
		if (smtp_param_is(&params[i], "SIZE") && params[i].value != NULL) {
			char num[24];
			char *end;
			if (params[i].valuelen == 0 || params[i].valuelen >= sizeof(num)) {
				reply(s, "501 5.5.4 Bad SIZE parameter");
				session_error(s);
				return;
			}
			memcpy(num, params[i].value, params[i].valuelen);
			num[params[i].valuelen] = '\0';
			if (!isdigit((unsigned char)num[0])) {
				reply(s, "501 5.5.4 Bad SIZE parameter");
				session_error(s);
				return;
			}
			size = strtoull(num, &end, 10);
			if (*end != '\0') {
				reply(s, "501 5.5.4 Bad SIZE parameter");
				session_error(s);
				return;
			}
		} else if (smtp_param_is(&params[i], "BODY") && params[i].value != NULL &&
		    s->helo_kind == 2) {
			if (params[i].valuelen == 8 && strncasecmp(params[i].value, "8BITMIME", 8) == 0)
				body8 = 1;
			else if (params[i].valuelen == 10 &&
			    strncasecmp(params[i].value, "BINARYMIME", 10) == 0)
				body8 = binary = 1;	/* RFC 3030 §3 */
			else if (params[i].valuelen == 4 && strncasecmp(params[i].value, "7BIT", 4) == 0)
				body8 = binary = 0;
			else {
				reply(s, "501 5.5.4 Unsupported BODY type");
				session_error(s);
				return;
			}
		} else if (smtp_param_is(&params[i], "SMTPUTF8") && s->helo_kind == 2) {
			/* RFC 6531 §3.4: a keyword without a value */
			if (params[i].value != NULL) {
				reply(s, "501 5.5.4 SMTPUTF8 takes no value");
				session_error(s);
				return;
			}
			utf8 = 1;
		} else if (smtp_param_is(&params[i], "REQUIRETLS") && params[i].value == NULL &&
		    s->helo_kind == 2) {
			if (!s->tls) {
				/* RFC 8689 §4.1: the option exists only over TLS */
				reply(s, "530 5.7.10 REQUIRETLS is accepted only over TLS");
				return;
			}
			requiretls = 1;
		} else if (smtp_param_is(&params[i], "RET") && s->helo_kind == 2) {
			if (ret != DSN_RET_NONE || params[i].value == NULL ||
			    dsn_ret_parse(params[i].value, params[i].valuelen, &ret, &why) < 0) {
				reply(s, "501 5.5.4 Bad RET parameter: %s", ret != DSN_RET_NONE ?
				    "given twice" : params[i].value == NULL ? "no value" : why);
				session_error(s);
				return;
			}
		} else if (smtp_param_is(&params[i], "ENVID") && s->helo_kind == 2) {
			if (envid[0] != '\0' || params[i].value == NULL ||
			    dsn_envid_parse(params[i].value, params[i].valuelen, envid, &why) < 0) {
				reply(s, "501 5.5.4 Bad ENVID parameter: %s", envid[0] != '\0' ?
				    "given twice" : params[i].value == NULL ? "no value" : why);
				session_error(s);
				return;
			}
		} else {
			reply(s, "555 5.5.4 Unsupported MAIL parameter %.*s",
			    (int)(params[i].keylen > 32 ? 32 : params[i].keylen), params[i].key);
			session_error(s);
			return;
		}
	}
	if (path.utf8 && !utf8) {
		/* RFC 6531 §3.5: a non-ASCII address only in an SMTPUTF8 transaction */
		slog(s, LOG_INFO, "event=reject stage=mail status=5.6.7 reason=utf8-without-smtputf8");
		reply(s, "553 5.6.7 Non-ASCII sender address requires the SMTPUTF8 parameter "
		    "(MAIL FROM:<...> SMTPUTF8)");
		session_error(s);
		return;
	}
	if (size > s->conf->message_size_limit) {
		slog(s, LOG_INFO, "event=reject stage=mail reason=size declared=%llu limit=%llu",
		    (unsigned long long)size, (unsigned long long)s->conf->message_size_limit);
		reply(s, "552 5.3.4 Message size exceeds fixed limit of %llu bytes",
		    (unsigned long long)s->conf->message_size_limit);
		return;
	}
	if (s->ops->space_ok != NULL && !s->ops->space_ok(s->arg, size)) {
		/* RFC 3463 4.3.1, RFC 1870: say it before the client sends the message. The
		 * server logged the figures. */
		slog(s, LOG_WARN, "event=reject stage=mail status=4.3.1 reason=spool-full "
		    "declared=%llu", (unsigned long long)size);
		reply(s, "452 4.3.1 Insufficient system storage; try again later");
		return;
	}
	tx_clear(s);
	if (smtp_path_addr(&path, s->tx.sender, sizeof(s->tx.sender)) < 0) {
		reply(s, "501 5.1.7 Bad sender address syntax: too long");
		session_error(s);
		return;
	}
	s->tx.body_8bit = body8;
	s->tx.requiretls = requiretls;
	s->tx.dsn_ret = (int)ret;
	memcpy(s->tx.envid, envid, sizeof(envid));
	s->tx.body_binary = binary;
	s->tx.smtputf8 = utf8;
	s->tx.declared_size = size;
	s->tx.authenticated = s->auth_user[0] != '\0';
	s->in_tx = 1;
	if (s->ops->mail_check != NULL) {
		s->state = SS_MAILWAIT;
		s->ops->mail_check(s->arg, s->tx.sender, s->tx.authenticated);
		return;
	}
	reply(s, "250 2.1.0 Ok");
}

void
session_mail_done(struct session *s, const char *refusal)
{
	char lfrom[LOG_VALUE_MAX], lwhy[LOG_VALUE_MAX];

	if (s->state != SS_MAILWAIT)
		return;
	s->state = SS_CMD;
	if (refusal == NULL) {
		reply(s, "250 2.1.0 Ok");
		return;
	}
	slog(s, LOG_INFO, "event=reject stage=mail from=%s reason=%s",
	    log_addr(lfrom, sizeof(lfrom), s->tx.sender),
	    log_value(lwhy, sizeof(lwhy), refusal, strlen(refusal)));
	reply(s, "%.480s", refusal);
	tx_clear(s);
	session_error(s);
}

void
session_commit_refused(struct session *s, const char *refusal)
{
	char lwhy[LOG_VALUE_MAX];

	if (s->state != SS_COMMIT)
		return;
	slog(s, LOG_INFO, "qid=%s event=reject stage=data reason=%s", s->tx.qid,
	    log_value(lwhy, sizeof(lwhy), refusal, strlen(refusal)));
	reply(s, "%.480s", refusal);
	tx_clear(s);
	s->state = SS_CMD;
}

static void
lowercase(char *p)
{
	for (; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

/* Add a delivery address to the transaction unless it is already there. */
static int
tx_add_rcpt(struct session *s, const char *addr, const char *orcpt, unsigned notify,
    const char *dsn_orcpt)
{
	struct tx_rcpt *r;

	for (size_t i = 0; i < s->tx.nrcpts; i++)
		if (strcmp(s->tx.rcpts[i].addr, addr) == 0)
			return 0;
	if (s->tx.nrcpts == s->tx.rcpts_cap) {
		size_t cap = s->tx.rcpts_cap ? s->tx.rcpts_cap * 2 : 4;
		struct tx_rcpt *n = realloc(s->tx.rcpts, cap * sizeof(*n));
		if (n == NULL)
			return -1;
		s->tx.rcpts = n;
		s->tx.rcpts_cap = cap;
	}
	r = &s->tx.rcpts[s->tx.nrcpts];
	if ((r->addr = strdup(addr)) == NULL)
		return -1;
	r->notify = notify;
	r->dsn_orcpt = NULL;
	if (dsn_orcpt != NULL && (r->dsn_orcpt = strdup(dsn_orcpt)) == NULL) {
		free(r->addr);
		return -1;
	}
	if (strcmp(addr, orcpt) == 0)
		r->orcpt = r->addr;
	else if ((r->orcpt = strdup(orcpt)) == NULL) {
		free(r->addr);
		free(r->dsn_orcpt);
		return -1;
	} else
		s->rcpt_bytes += strlen(orcpt) + 1;
	if (dsn_orcpt != NULL)
		s->rcpt_bytes += strlen(dsn_orcpt) + 1;
	s->rcpt_bytes += strlen(addr) + 1;
	s->tx.nrcpts++;
	return 0;
}

/* recipients_expand's view of the session: local domains, and where its targets go. */
struct expand_ctx {
	struct session *s;
	const char *orcpt;
	unsigned notify;
	const char *dsn_orcpt;
};

static int
expand_is_local(void *arg, const char *domain)
{
	return conf_is_local_domain(((struct expand_ctx *)arg)->s->conf, domain);
}

static int
expand_visit(void *arg, enum recipients_node node, const char *addr, char *const *targets,
    size_t ntargets, int depth)
{
	struct expand_ctx *x = arg;

	if (node == RX_ALIAS)
		return 0;
	return tx_add_rcpt(x->s, addr, x->orcpt, x->notify, x->dsn_orcpt) < 0 ? -1 : 0;
}

/*
 * Expand addr through the aliases of recipients_file into the transaction (the walk is
 * recipients_expand's, shared with imsd explain-recipient). Returns 0, or -1 with *why
 * set when the expansion is unusable (nesting too deep, a target without a domain, too
 * many targets, out of memory).
 */
static int
expand_rcpt(struct session *s, const char *addr, const char *orcpt, unsigned notify,
    const char *dsn_orcpt, const char **why)
{
	struct expand_ctx x = { s, orcpt, notify, dsn_orcpt };

	return recipients_expand(s->recipients, addr, expand_is_local, &x, expand_visit, &x, why);
}

/* A hostname (LDH labels) or an address literal in brackets. */
static int
domain_ok(const char *d)
{
	size_t n = strlen(d);

	if (n == 0 || n > SMTP_DOMAIN_MAX)
		return 0;
	if (d[0] == '[')
		return n > 2 && d[n - 1] == ']';
	if (d[0] == '.' || d[0] == '-' || strstr(d, "..") != NULL)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)d[i]) || d[i] == '-' || d[i] == '.'))
			return 0;
	return 1;
}

/* Relaying is for clients in relay_networks and for authenticated users (SPEC.md). */
static int
session_may_relay(const struct session *s)
{
	if (s->auth_user[0] != '\0' || s->kind == SL_LOCAL)
		return 1;	/* a local user, like Postfix's sendmail: the kernel said who */
	for (size_t i = 0; i < s->conf->nrelay_networks; i++)
		if (cidr_match(&s->conf->relay_networks[i], &s->peer.remote))
			return 1;
	return 0;
}

static void
cmd_rcpt(struct session *s, const char *args)
{
	struct smtp_path path;
	struct smtp_param params[8];
	char addr[SMTP_LOCAL_MAX + SMTP_DOMAIN_MAX + 64], safe[400];
	char lto[LOG_VALUE_MAX], lfrom[LOG_VALUE_MAX];
	const char *p, *rest, *why;
	char *const *targets;
	size_t nt;
	int np, routed = 0;
	unsigned notify = 0;
	char dsn_orcpt[DSN_ORCPT_MAX + 1] = "";

	if (!s->in_tx) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		session_error(s);
		return;
	}
	if ((p = path_keyword(args, "TO:")) == NULL) {
		reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		session_error(s);
		return;
	}
	switch (smtp_path_parse(p, strlen(p), 0, 1, &path, &rest, &why)) {
	case SMTP_PATH_OK:
		if (path.utf8 && !s->tx.smtputf8) {
			/* RFC 6531 §3.5 */
			reply(s, "553 5.6.7 Non-ASCII recipient address requires SMTPUTF8 "
			    "(MAIL FROM:<...> SMTPUTF8)");
			session_error(s);
			return;
		}
		break;
	default:
		reply(s, "501 5.1.3 Bad recipient address syntax: %s", why);
		session_error(s);
		return;
	}
	np = smtp_params_parse(rest, strlen(rest), params, sizeof(params) / sizeof(params[0]), &why);
	if (np < 0) {
		reply(s, "501 5.5.4 Bad RCPT parameters: %s", why);
		session_error(s);
		return;
	}
	for (int i = 0; i < np; i++) {
		if (smtp_param_is(&params[i], "NOTIFY") && s->helo_kind == 2) {
			if (notify != 0 || params[i].value == NULL ||
			    dsn_notify_parse(params[i].value, params[i].valuelen, &notify, &why) < 0) {
				reply(s, "501 5.5.4 Bad NOTIFY parameter: %s", notify != 0 ?
				    "given twice" : params[i].value == NULL ? "no value" : why);
				session_error(s);
				return;
			}
		} else if (smtp_param_is(&params[i], "ORCPT") && s->helo_kind == 2) {
			if (dsn_orcpt[0] != '\0' || params[i].value == NULL ||
			    dsn_orcpt_parse(params[i].value, params[i].valuelen, dsn_orcpt, &why) < 0) {
				reply(s, "501 5.5.4 Bad ORCPT parameter: %s", dsn_orcpt[0] != '\0' ?
				    "given twice" : params[i].value == NULL ? "no value" : why);
				session_error(s);
				return;
			}
		} else {
			reply(s, "555 5.5.4 Unsupported RCPT parameter %.*s",
			    (int)(params[i].keylen > 32 ? 32 : params[i].keylen), params[i].key);
			session_error(s);
			return;
		}
	}
	if (s->tx.naccepted >= s->conf->recipient_limit) {
		reply(s, "452 4.5.3 Error: too many recipients");
		session_error(s);
		return;
	}
	if (path.is_postmaster) {
		/* RFC 5321 §4.5.1: <Postmaster> without a domain is always accepted. */
		snprintf(path.domain, sizeof(path.domain), "%s", s->conf->local_domains[0]);
		snprintf(path.local, sizeof(path.local), "postmaster");
	}
	if (smtp_path_addr(&path, addr, sizeof(addr)) < 0) {
		reply(s, "501 5.1.3 Bad recipient address syntax: too long");
		session_error(s);
		return;
	}
	log_safe(safe, sizeof(safe), addr, strlen(addr));	/* for replies */
	log_addr(lto, sizeof(lto), addr);			/* for the log */
	log_addr(lfrom, sizeof(lfrom), s->tx.sender);

	/* Domains compare case-insensitively, with a trailing dot meaning the same domain. */
	{
		struct smtp_path real = path;
		char *cut;
		char adom[SMTP_DOMAIN_MAX + 1], flocal[SMTP_LOCAL_MAX + 1];
		size_t dl;
		int islocal;

		lowercase(real.domain);
		dl = strlen(real.domain);
		if (dl > 0 && real.domain[dl - 1] == '.')
			real.domain[dl - 1] = '\0';
		/* RFC 6531: a U-label domain compares in A-label form (local_domains are kept
		 * so); the envelope keeps it as the client wrote it */
		if (!real.is_literal && intl_domain_ascii(real.domain, adom, sizeof(adom), &why) < 0) {
			char lwhy[LOG_VALUE_MAX];
			slog(s, LOG_INFO, "event=reject stage=rcpt to=%s status=5.1.3 "
			    "reason=bad-idn-domain why=%s", lto,
			    log_value(lwhy, sizeof(lwhy), why, strlen(why)));
			reply(s, "553 5.1.3 <%s>: Bad recipient domain: %s", safe, why);
			session_error(s);
			return;
		}
		islocal = !real.is_literal && conf_is_local_domain(s->conf, adom);
		if (islocal && (cut = strpbrk(real.local, "@%!")) != NULL) {
			/* A routing trick in a local domain's local part hides another address:
			 * "user@remote"@local, user%remote@local, remote!user@local. Judge the
			 * address it really is. */
			char hidden[SMTP_LOCAL_MAX + 1];
			str_copy(hidden, sizeof(hidden), real.local);
			if ((cut = strrchr(hidden, '@')) != NULL || (cut = strrchr(hidden, '%')) != NULL) {
				*cut = '\0';
				str_copy(real.domain, sizeof(real.domain), cut + 1);
				str_copy(real.local, sizeof(real.local), hidden);
			} else {
				cut = strchr(hidden, '!');
				*cut = '\0';
				str_copy(real.domain, sizeof(real.domain), hidden);
				str_copy(real.local, sizeof(real.local), cut + 1);
			}
			lowercase(real.domain);
			dl = strlen(real.domain);
			if (dl > 0 && real.domain[dl - 1] == '.')
				real.domain[dl - 1] = '\0';
			real.is_literal = real.domain[0] == '[';
			if (real.local[0] == '\0' || !domain_ok(real.domain)) {
				slog(s, LOG_INFO, "event=reject stage=rcpt to=%s status=5.1.3 "
				    "reason=bad-routed-address", lto);
				reply(s, "501 5.1.3 <%s>: Bad recipient address syntax", safe);
				session_error(s);
				return;
			}
			routed = 1;
			str_copy(adom, sizeof(adom), real.domain);	/* ASCII: domain_ok */
			islocal = !real.is_literal && conf_is_local_domain(s->conf, adom);
		}
		if (!islocal) {
			char raddr[SMTP_LOCAL_MAX + SMTP_DOMAIN_MAX + 64];
			if (!session_may_relay(s)) {
				slog(s, LOG_INFO, "event=reject stage=rcpt from=%s to=%s status=5.7.1 "
				    "reason=relay-denied%s", lfrom, lto, routed ? " routed=yes" : "");
				reply(s, "554 5.7.1 <%s>: Relay access denied", safe);
				session_error(s);
				return;
			}
			if (smtp_path_addr(&real, raddr, sizeof(raddr)) < 0 ||
			    tx_add_rcpt(s, raddr, addr, notify, dsn_orcpt[0] ? dsn_orcpt : NULL) < 0) {
				reply(s, "501 5.1.3 Bad recipient address syntax: too long");
				session_error(s);
				return;
			}
			s->tx.naccepted++;
			reply(s, "250 2.1.5 Ok");
			return;
		}
		/* A UTF-8 local part names its mailbox in NFC, lower-cased (util/intl), as ASCII
		 * ones are lower-cased. */
		if (intl_local_fold(real.local, flocal, sizeof(flocal), &why) < 0 ||
		    !smtp_local_mailbox_ok(flocal, &why)) {
			/* SPEC: '/' and a leading '.' are refused; so is anything else that would
			 * make an odd mailbox name or end a header clause early. */
			char lwhy[LOG_VALUE_MAX];
			slog(s, LOG_INFO, "event=reject stage=rcpt from=%s to=%s status=5.1.3 "
			    "reason=bad-local-part why=%s", lfrom, lto,
			    log_value(lwhy, sizeof(lwhy), why, strlen(why)));
			reply(s, "550 5.1.3 <%s>: Bad recipient address: local part cannot name a "
			    "mailbox (%s)", safe, why);
			session_error(s);
			return;
		}
		snprintf(addr, sizeof(addr), "%s@%s", flocal, adom);
	}
	/* Every local domain has a postmaster (RFC 5321 §4.5.1), listed or not. */
	if (s->recipients != NULL && strncmp(addr, "postmaster@", 11) != 0 &&
	    recipients_lookup(s->recipients, addr, &targets, &nt) != 1) {
		slog(s, LOG_INFO, "event=reject stage=rcpt from=%s to=%s status=5.1.1 "
		    "reason=unknown-user", lfrom, lto);
		reply(s, "550 5.1.1 <%s>: Recipient address rejected: User unknown", safe);
		session_error(s);
		return;
	}
	if (expand_rcpt(s, addr, addr, notify, dsn_orcpt[0] ? dsn_orcpt : NULL, &why) < 0) {
		char lwhy[LOG_VALUE_MAX];
		slog(s, LOG_WARN, "event=reject stage=rcpt to=%s status=4.3.0 reason=%s", lto,
		    log_value(lwhy, sizeof(lwhy), why, strlen(why)));
		reply(s, "451 4.3.0 <%s>: Temporary lookup failure: %s", safe, why);
		return;
	}
	s->tx.naccepted++;
	reply(s, "250 2.1.5 Ok");
}

/* RFC 5322 date in UTC for the Received header. Pure apart from gmtime_r. */
static void
rfc5322_date(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* Gather body bytes; one tx_write per BODY_CHUNK. */
static void
body_flush(struct session *s)
{
	if (s->chunklen == 0)
		return;
	if (s->tx.err == DERR_NONE) {
		int r = s->ops->tx_write(s->arg, s->chunk, s->chunklen);
		if (r < 0)
			s->tx.err = r == SESSION_WRITE_NOSPACE ? DERR_NOSPACE : DERR_WRITE;
	}
	s->chunklen = 0;
}

/* Count "Received:" lines of the header section as they are stored (RFC 5321 §6.3). */
static void
hdr_track(struct session *s, const char *p, size_t n)
{
	static const char rcvd[] = "received:";

	for (size_t i = 0; i < n && s->in_headers; i++) {
		char c = p[i];
		if (s->hdr_crbol) {
			s->hdr_crbol = 0;
			if (c == '\n') {
				s->in_headers = 0;	/* CRLF alone: the body starts */
				break;
			}
			/* a bare CR opening a line is content, not the end of the header */
		}
		if (c == '\n') {
			s->hdr_lpos = 0;
			s->hdr_match = 1;
			continue;
		}
		if (s->hdr_lpos == 0 && c == '\r') {
			s->hdr_crbol = 1;
			s->hdr_match = 0;
			s->hdr_lpos++;
			continue;
		}
		if (s->hdr_lpos < 9 && s->hdr_match &&
		    tolower((unsigned char)c) != rcvd[s->hdr_lpos])
			s->hdr_match = 0;
		if (++s->hdr_lpos == 9 && s->hdr_match && ++s->hops > SESSION_HOPS_MAX &&
		    s->tx.err == DERR_NONE)
			s->tx.err = DERR_HOPS;
	}
}

static inline void
body_store(struct session *s, const char *p, size_t n)
{
	if (s->tx.err != DERR_NONE)
		return;
	s->tx.size += n;
	if (s->tx.size > s->conf->message_size_limit + s->tx.own) {
		s->tx.err = DERR_SIZE;
		return;
	}
	/* A BDAT run can be longer than the buffer: fill, write, repeat. */
	while (n > 0) {
		size_t k = BODY_CHUNK - s->chunklen;
		if (k > n)
			k = n;
		memcpy(s->chunk + s->chunklen, p, k);
		s->chunklen += k;
		p += k;
		n -= k;
		if (s->chunklen == BODY_CHUNK)
			body_flush(s);
	}
}

/* A header byte that is kept: hop counting, then the store. */
static inline void
hdr_emit(struct session *s, const char *p, size_t n)
{
	hdr_track(s, p, n);
	body_store(s, p, n);
}

/*
 * RFC 8601 5: an Authentication-Results field from outside that claims our authserv-id
 * (the hostname) would pass for our verdict, so it is removed before the message is
 * stored. Such a field is held whole (continuation lines included, up to
 * SESSION_AR_HOLD_MAX bytes, past which it is dropped unread) until its end shows whose
 * it is; every other field passes through as it comes.
 */
enum hf_mode { HF_NAME, HF_PASS, HF_HOLD, HF_DROP };
static const char ar_name[] = "authentication-results";

static void
hf_finish(struct session *s)
{
	char id[256];
	const char *colon;

	if (s->hf_mode == HF_DROP) {
		s->ar_removed++;
	} else if (s->hf_mode == HF_HOLD && s->hf_hold != NULL) {
		colon = memchr(s->hf_hold, ':', s->hf_holdlen);
		if (colon != NULL && mhdr_authserv_id(colon + 1, s->hf_holdlen -
		    (size_t)(colon + 1 - s->hf_hold), id, sizeof(id)) == 0 &&
		    strcasecmp(id, s->conf->hostname) == 0)
			s->ar_removed++;
		else
			hdr_emit(s, s->hf_hold, s->hf_holdlen);
	} else if (s->hf_mode == HF_NAME && s->hf_nlen > 0)
		hdr_emit(s, s->hf_name, s->hf_nlen);
	s->hf_nmatch = 0;
	s->hf_crbol = 0;
	free(s->hf_hold);
	s->hf_hold = NULL;
	s->hf_holdlen = 0;
	s->hf_nlen = 0;
	s->hf_mode = HF_PASS;
}

static void
hf_hold_add(struct session *s, const char *p, size_t n)
{
	if (s->hf_mode == HF_DROP)
		return;
	if (s->hf_hold == NULL && (s->hf_hold = malloc(SESSION_AR_HOLD_MAX)) == NULL) {
		s->hf_mode = HF_DROP;
		return;
	}
	if (s->hf_holdlen + n > SESSION_AR_HOLD_MAX) {
		free(s->hf_hold);
		s->hf_hold = NULL;
		s->hf_holdlen = 0;
		s->hf_mode = HF_DROP;
		return;
	}
	memcpy(s->hf_hold + s->hf_holdlen, p, n);
	s->hf_holdlen += n;
}

static void
hdr_filter(struct session *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (s->hf_crbol) {
			s->hf_crbol = 0;
			if (c == '\n') {
				/* CRLF alone: the end of the header; the rest is body */
				hdr_emit(s, s->hf_name, s->hf_nlen);
				s->hf_nlen = s->hf_nmatch = 0;
				s->hf_mode = HF_PASS;
				hdr_emit(s, p + i, 1);
				if (i + 1 < n) {
					if (s->in_headers)	/* cannot be: hdr_track saw the CRLF */
						hdr_filter(s, p + i + 1, n - i - 1);
					else
						body_store(s, p + i + 1, n - i - 1);
				}
				return;
			}
			/* a bare CR opening a line: kept in hf_name, the name matched after it */
		} else if (s->hf_bol) {
			s->hf_bol = 0;
			if (c != ' ' && c != '\t') {
				hf_finish(s);		/* the previous field ended */
				s->hf_mode = HF_NAME;
				s->hf_nlen = s->hf_nmatch = 0;
				if (c == '\r') {
					s->hf_name[s->hf_nlen++] = c;
					s->hf_crbol = 1;
					continue;
				}
			}
		}
		switch (s->hf_mode) {
		case HF_NAME:
			if (s->hf_nmatch == sizeof(ar_name) - 1 && (c == ':' || c == ' ' || c == '\t')) {
				/* the whole name ("Name:", or "Name" then spaces, RFC 5322 4.5.8):
				 * held to the field's end, where its authserv-id decides */
				hf_hold_add(s, s->hf_name, s->hf_nlen);
				hf_hold_add(s, &c, 1);
				s->hf_nlen = s->hf_nmatch = 0;
				if (s->hf_mode != HF_DROP)
					s->hf_mode = HF_HOLD;
			} else if (s->hf_nmatch < sizeof(ar_name) - 1 &&
			    tolower((unsigned char)c) == ar_name[s->hf_nmatch] &&
			    s->hf_nlen < sizeof(s->hf_name)) {
				s->hf_name[s->hf_nlen++] = c;
				s->hf_nmatch++;
			} else {
				hdr_emit(s, s->hf_name, s->hf_nlen);
				s->hf_nlen = s->hf_nmatch = 0;
				hdr_emit(s, &c, 1);
				s->hf_mode = HF_PASS;
			}
			break;
		case HF_PASS:
			hdr_emit(s, &c, 1);
			break;
		case HF_HOLD:
		case HF_DROP:
			hf_hold_add(s, &c, 1);
			break;
		}
		if (c == '\n')
			s->hf_bol = 1;
	}
}

static inline void
body_put(struct session *s, const char *p, size_t n)
{
	if (s->in_headers)
		hdr_filter(s, p, n);
	else
		body_store(s, p, n);
}

/*
 * Open the spool file of the transaction and store our Received header: the start of
 * the message text, for DATA and for the first BDAT chunk alike. 0 ok; -1 the spool file
 * cannot be opened (logged; the caller replies 451).
 */
static int
body_begin(struct session *s)
{
	char date[64], hdr[1400], rip[64], forq[SMTP_PATH_MAX + 8];
	const char *proto;
	int n;

	if ((s->chunk = malloc(BODY_CHUNK)) == NULL || s->ops->tx_open(s->arg, &s->tx) < 0) {
		slog(s, LOG_ERROR, "event=queue-error stage=data reason=cannot-open-spool-file");
		free(s->chunk);
		s->chunk = NULL;
		return -1;
	}
	s->spool_open = 1;
	s->bst = B_BOL;
	s->bcrlf = 1;
	s->blinelen = 0;
	s->in_headers = 1;
	s->hdr_lpos = 0;
	s->hdr_match = 1;
	s->hops = 0;
	s->hf_bol = 1;
	s->hf_mode = HF_PASS;
	s->hf_nlen = s->hf_nmatch = 0;
	s->hf_crbol = 0;
	s->hdr_crbol = 0;
	s->ar_removed = 0;

	/* RFC 5321 §4.4: the trace header goes first. */
	/* RFC 3848 protocol keywords: ESMTP, plus S for TLS and A for AUTH; UTF8SMTP and
	 * its S/A forms for an SMTPUTF8 transaction (RFC 6531 §3.7.3). */
	if (s->helo_kind != 2)
		proto = "SMTP";
	else if (s->tx.smtputf8 && s->tls)
		proto = s->auth_user[0] ? "UTF8SMTPSA" : "UTF8SMTPS";
	else if (s->tx.smtputf8)
		proto = s->auth_user[0] ? "UTF8SMTPA" : "UTF8SMTP";
	else if (s->tls)
		proto = s->auth_user[0] ? "ESMTPSA" : "ESMTPS";
	else
		proto = s->auth_user[0] ? "ESMTPA" : "ESMTP";
	rfc5322_date(s->now, date, sizeof(date));
	netaddr_str(&s->peer.remote, rip, sizeof(rip));
	/* The "for" clause carries the address as SMTP writes it: quoted when it must be. */
	if (s->tx.nrcpts != 1 || smtp_addr_requote(s->tx.rcpts[0].orcpt, forq, sizeof(forq)) < 0)
		forq[0] = '\0';
	if (s->kind == SL_LOCAL)
		/* local submission: no network peer; the user is who the kernel said */
		n = snprintf(hdr, sizeof(hdr),
		    "Received: by %s (imsd, from userid %ld)\r\n\twith local id %s%s%s%s;\r\n\t%s\r\n",
		    s->conf->hostname, s->peer.uid, s->tx.qid, forq[0] ? "\r\n\tfor <" : "", forq,
		    forq[0] ? ">" : "", date);
	else
		n = snprintf(hdr, sizeof(hdr),
		    "Received: from %s ([%s%s])\r\n\tby %s (imsd) with %s%s%s%s id %s%s%s%s;\r\n\t%s\r\n",
		    s->helo, s->peer.remote.family == AF_INET6 ? "IPv6:" : "", rip, s->conf->hostname,
		    proto, s->tls ? " (" : "", s->tls ? s->tls_desc : "", s->tls ? ")" : "",
		    s->tx.qid, forq[0] ? "\r\n\tfor <" : "", forq, forq[0] ? ">" : "", date);
	if (n > 0 && (size_t)n < sizeof(hdr)) {
		s->tx.own = (uint64_t)n;
		body_put(s, hdr, (size_t)n);
	}
	return 0;
}

static void
cmd_data(struct session *s, const char *args)
{
	if (*args != '\0') {
		reply(s, "501 5.5.4 Syntax: DATA takes no arguments");
		session_error(s);
		return;
	}
	if (!s->in_tx) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		session_error(s);
		return;
	}
	if (s->bdat) {
		/* RFC 3030 §2: DATA and BDAT are never mixed in one transaction. */
		reply(s, "503 5.5.1 Error: DATA not permitted in a BDAT transaction");
		tx_clear(s);
		session_error(s);
		return;
	}
	if (s->tx.body_binary) {
		/* RFC 3030 §3: BODY=BINARYMIME content can only come by BDAT. */
		reply(s, "503 5.5.1 Error: BODY=BINARYMIME requires BDAT, not DATA");
		session_error(s);
		return;
	}
	if (s->tx.nrcpts == 0) {
		reply(s, "554 5.5.1 Error: no valid recipients");
		session_error(s);
		return;
	}
	if (body_begin(s) < 0) {
		reply(s, "451 4.3.0 Local error in processing: cannot queue message now");
		return;
	}
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	s->state = SS_DATA;
}

/* The final dot arrived: hand over to the queue or refuse. */
static void
data_end(struct session *s)
{
	if (s->in_headers)
		hf_finish(s);	/* a message that is all header */
	if (s->ar_removed)
		slog(s, LOG_INFO, "qid=%s event=ar-removed count=%u authserv_id=%s", s->tx.qid,
		    s->ar_removed, s->conf->hostname);
	body_flush(s);
	free(s->chunk);
	s->chunk = NULL;
	switch (s->tx.err) {
	case DERR_NONE: {
		char lfrom[LOG_VALUE_MAX], luser[LOG_VALUE_MAX];
		s->state = SS_COMMIT;
		char luid[32] = "";
		if (s->kind == SL_LOCAL)
			snprintf(luid, sizeof(luid), " uid=%ld", s->peer.uid);
		slog(s, LOG_INFO, "qid=%s event=received from=%s nrcpt=%zu size=%llu tls=%s%s%s%s",
		    s->tx.qid, log_addr(lfrom, sizeof(lfrom), s->tx.sender), s->tx.nrcpts,
		    (unsigned long long)s->tx.size, s->tls ? "yes" : "no",
		    s->auth_user[0] ? " auth=" : "", s->auth_user[0] ?
		    log_value(luser, sizeof(luser), s->auth_user, strlen(s->auth_user)) : "", luid);
		s->spool_open = 0;	/* the commit owns it now */
		s->ops->tx_commit(s->arg, &s->tx);
		return;
	}
	case DERR_SIZE:
		slog(s, LOG_INFO, "qid=%s event=reject stage=data reason=size limit=%llu", s->tx.qid,
		    (unsigned long long)s->conf->message_size_limit);
		reply(s, "552 5.3.4 Message size exceeds fixed limit of %llu bytes",
		    (unsigned long long)s->conf->message_size_limit);
		break;
	case DERR_HOPS:
		slog(s, LOG_WARN, "qid=%s event=reject stage=data reason=mail-loop hops=%u", s->tx.qid,
		    s->hops);
		reply(s, "554 5.4.6 Too many hops: more than %d Received headers; mail loop?",
		    SESSION_HOPS_MAX);
		break;
	case DERR_LINE:
		slog(s, LOG_INFO, "qid=%s event=reject stage=data reason=line-too-long", s->tx.qid);
		reply(s, "500 5.5.6 Message rejected: a text line exceeds %d octets "
		    "(RFC 5321 4.5.3.1.6)", SESSION_TEXT_MAX);
		break;
	case DERR_NOSPACE:
		slog(s, LOG_WARN, "qid=%s event=reject stage=data status=4.3.1 reason=spool-full",
		    s->tx.qid);
		reply(s, "452 4.3.1 Insufficient system storage; message not accepted, try again "
		    "later");
		break;
	default:
		slog(s, LOG_ERROR, "qid=%s event=queue-error stage=data reason=write-failed",
		    s->tx.qid);
		reply(s, "451 4.3.0 Local error in processing: cannot queue message now");
		break;
	}
	spool_abort(s);
	tx_clear(s);
	s->state = SS_CMD;
}

/* Count a content byte against the line limit. */
static inline void
body_linechar(struct session *s)
{
	if (++s->blinelen > SESSION_TEXT_MAX - 2 && s->tx.err == DERR_NONE)
		s->tx.err = DERR_LINE;
}

/*
 * Scan DATA bytes. Returns the bytes consumed; stops right after the final <CR><LF> of
 * <CR><LF>.<CR><LF> (state changes away from SS_DATA). See session.h for the rules.
 */
static size_t
body_scan(struct session *s, const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		char c = buf[i];

		switch (s->bst) {
		case B_BOL:
			if (c == '.') {
				s->bst = B_DOT;
				i++;
				continue;
			}
			s->bst = B_MID;
			continue;	/* reprocess c as line content */
		case B_DOT:
			if (c == '\r') {
				s->bst = B_DOTCR;
				i++;
				continue;
			}
			if (c == '\n') {
				/* "." ended by a bare LF: not an end of data; keep the dot. */
				body_put(s, ".\r\n", 3);
				s->bcrlf = 0;
				s->blinelen = 0;
				s->bst = B_BOL;
				i++;
				continue;
			}
			/* RFC 5321 §4.5.2: remove the stuffed dot. */
			body_linechar(s);
			s->bst = B_MID;
			continue;
		case B_DOTCR:
			if (c == '\n') {
				i++;
				if (s->bcrlf) {
					data_end(s);
					return i;
				}
				/* ".\r\n" after a bare-LF line: a line holding one dot. */
				body_put(s, ".\r\n", 3);
				s->bcrlf = 1;
				s->blinelen = 0;
				s->bst = B_BOL;
				continue;
			}
			/* ".\r" then more: the dot was stuffing; the CR is content. */
			body_linechar(s);
			body_put(s, "\r", 1);
			body_linechar(s);
			s->bst = B_MID;
			if (c == '\r') {
				s->bst = B_CR;
				i++;
			}
			continue;
		case B_MID: {
			/* Fast path: copy a run of ordinary bytes at once. */
			size_t j = i;
			while (j < len && buf[j] != '\r' && buf[j] != '\n')
				j++;
			if (j > i) {
				size_t run = j - i;
				s->blinelen += run;
				if (s->blinelen > SESSION_TEXT_MAX - 2 && s->tx.err == DERR_NONE)
					s->tx.err = DERR_LINE;
				body_put(s, buf + i, run);
				i = j;
				continue;
			}
			if (c == '\r') {
				s->bst = B_CR;
			} else {
				/* Bare LF ends the line; stored as CRLF, never ends DATA. */
				body_put(s, "\r\n", 2);
				s->bcrlf = 0;
				s->blinelen = 0;
				s->bst = B_BOL;
			}
			i++;
			continue;
		}
		case B_CR:
			if (c == '\n') {
				body_put(s, "\r\n", 2);
				s->bcrlf = 1;
				s->blinelen = 0;
				s->bst = B_BOL;
				i++;
				continue;
			}
			/* A bare CR is content. */
			body_linechar(s);
			body_put(s, "\r", 1);
			if (c == '\r') {
				i++;	/* stay in B_CR for this one */
				continue;
			}
			s->bst = B_MID;
			continue;
		}
	}
	return i;
}

/* ---- BDAT (RFC 3030 CHUNKING, BINARYMIME) ----
 *
 * "BDAT <size> [LAST]" is followed by exactly <size> octets, read whatever they hold:
 * they are never looked at as commands, and no sequence in them ends anything (no dot
 * and no dot-unstuffing). The chunk is streamed through the same path as DATA text
 * (Received header first, hop counting, the Authentication-Results filter,
 * message_size_limit counted across all chunks), BODY_CHUNK bytes at a time, so a
 * client announcing a huge chunk costs no memory. The state is SS_DATA while a chunk
 * is read (the server applies data_timeout), SS_CMD between chunks with the spool file
 * open, and SS_COMMIT after LAST: the message goes through tx_commit like DATA and its
 * 250 comes only from session_commit_done.
 *
 * Line endings. BODY=BINARYMIME content is stored exactly as sent (bare CR and LF
 * included, no line length limit). For a 7bit or 8BITMIME body RFC 3030 §2 still
 * requires CRLF lines of at most 1000 octets; imsd applies the DATA rules to it: the line
 * limit, a bare LF stored as CRLF (SPEC: line endings), a bare CR kept as content, and a
 * text that does not end with a line break gets one. That keeps every non-binary spool
 * file in the CRLF form that local delivery and relaying with DATA rely on.
 *
 * Refusals. A BDAT that cannot be accepted (no MAIL or RCPT, bad LAST argument, spool
 * error) still has its chunk read and discarded; its reply comes after the chunk, and a
 * transaction in progress is dropped (RFC 3030 §2: further pipelined chunks get 503). A
 * chunk size that is not 1 to BDAT_SIZE_DIGITS digits leaves no way to find the chunk's
 * end: 501 and the session closes.
 */
#define BDAT_SIZE_DIGITS	19	/* 9999999999999999999 still fits in a uint64_t */

/* Text-mode chunk bytes (not BINARYMIME): lines as in DATA, without the dot. */
static void
bdat_text(struct session *s, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		char c = p[i];

		if (s->bst == B_CR) {
			if (c == '\n') {
				body_put(s, "\r\n", 2);
				s->bcrlf = 1;
				s->blinelen = 0;
				s->bst = B_MID;
				i++;
				continue;
			}
			body_linechar(s);	/* a bare CR is content */
			body_put(s, "\r", 1);
			s->bcrlf = 0;
			s->bst = B_MID;
			if (c == '\r') {
				s->bst = B_CR;
				i++;
			}
			continue;
		}
		size_t j = i;
		while (j < n && p[j] != '\r' && p[j] != '\n')
			j++;
		if (j > i) {
			s->blinelen += j - i;
			if (s->blinelen > SESSION_TEXT_MAX - 2 && s->tx.err == DERR_NONE)
				s->tx.err = DERR_LINE;
			body_put(s, p + i, j - i);
			s->bcrlf = 0;
			i = j;
			continue;
		}
		if (c == '\r')
			s->bst = B_CR;
		else {
			body_put(s, "\r\n", 2);	/* a bare LF ends the line, stored as CRLF */
			s->bcrlf = 1;
			s->blinelen = 0;
		}
		i++;
	}
}

/* The chunk's last octet was read: reply for it, or hand the message to the commit. */
static void
bdat_chunk_end(struct session *s)
{
	s->bdat_chunk = 0;
	if (s->bdat_refusal[0] != '\0') {
		char text[sizeof(s->bdat_refusal)];
		memcpy(text, s->bdat_refusal, sizeof(text));
		s->bdat_refusal[0] = '\0';
		tx_clear(s);
		s->state = SS_CMD;
		reply(s, "%s", text);
		if (text[0] == '5')
			session_error(s);
		return;
	}
	if (!s->bdat_last) {
		body_flush(s);
		if (s->tx.err == DERR_NONE) {
			s->state = SS_CMD;
			reply(s, "250 2.0.0 %llu octets received", (unsigned long long)s->bdat_octets);
			if (s->bdat_octets == 0)
				session_junk(s);	/* "BDAT 0" moves nothing: a NOOP */
			return;
		}
	} else if (!s->tx.body_binary && s->tx.err == DERR_NONE) {
		if (s->bst == B_CR)
			body_put(s, "\r\n", 2);	/* the final CR was the start of a CRLF */
		else if (!s->bcrlf)
			body_put(s, "\r\n", 2);
	}
	data_end(s);	/* the error's reply, or tx_commit (SS_COMMIT) */
}

/* Read chunk octets; returns how many were used (at most the chunk's rest). */
static size_t
bdat_scan(struct session *s, const char *buf, size_t len)
{
	size_t n = len < s->bdat_left ? len : (size_t)s->bdat_left;

	if (s->bdat_refusal[0] == '\0' && s->tx.err == DERR_NONE) {
		if (s->tx.body_binary)
			body_put(s, buf, n);
		else
			bdat_text(s, buf, n);
	}
	s->bdat_left -= n;
	if (s->bdat_left == 0)
		bdat_chunk_end(s);
	return n;
}

static void
bdat_refuse(struct session *s, const char *text)
{
	str_copy(s->bdat_refusal, sizeof(s->bdat_refusal), text);
}

static void
cmd_bdat(struct session *s, const char *args)
{
	const char *p = args;
	uint64_t size = 0;
	size_t nd = 0;
	int last = 0;

	while (isdigit((unsigned char)*p) && nd <= BDAT_SIZE_DIGITS) {
		size = size * 10 + (uint64_t)(*p - '0');
		p++;
		nd++;
	}
	if (nd == 0 || nd > BDAT_SIZE_DIGITS || (*p != '\0' && *p != ' ')) {
		slog(s, LOG_INFO, "event=bad-input reason=bdat-chunk-size");
		session_close(s, "501 5.5.4 Syntax: BDAT chunk-size [LAST]: bad chunk size, the "
		    "chunk's end cannot be found; closing connection");
		return;
	}
	while (*p == ' ')
		p++;
	s->bdat_refusal[0] = '\0';
	if (*p != '\0') {
		if (strcasecmp(p, "LAST") == 0)
			last = 1;
		else
			bdat_refuse(s, "501 5.5.4 Syntax: BDAT chunk-size [LAST]");
	}
	if (s->bdat_refusal[0] != '\0')
		;
	else if (s->helo_kind != 2)
		bdat_refuse(s, "503 5.5.1 Error: send EHLO first (CHUNKING is an ESMTP extension)");
	else if (!s->in_tx)
		bdat_refuse(s, "503 5.5.1 Error: need MAIL command");
	else if (s->tx.nrcpts == 0)
		bdat_refuse(s, "503 5.5.1 Error: need RCPT command");
	else if (!s->bdat) {
		if (body_begin(s) < 0)
			bdat_refuse(s, "451 4.3.0 Local error in processing: cannot queue message now");
		else
			s->bdat = 1;
	}
	s->state = SS_DATA;
	s->bdat_chunk = 1;
	s->bdat_last = last;
	s->bdat_left = size;
	s->bdat_octets = size;
	if (size == 0)
		bdat_chunk_end(s);
}

static void
cmd_rset(struct session *s, const char *args)
{
	if (*args != '\0') {
		reply(s, "501 5.5.4 Syntax: RSET takes no arguments");
		session_error(s);
		return;
	}
	tx_clear(s);
	reply(s, "250 2.0.0 Ok");
	session_junk(s);
}

static void
cmd_noop(struct session *s, const char *args)
{
	reply(s, "250 2.0.0 Ok");
	session_junk(s);
}

static void
cmd_quit(struct session *s, const char *args)
{
	tx_clear(s);
	reply(s, "221 2.0.0 %s closing connection", s->conf->hostname);
	s->state = SS_CLOSING;
}

static void
cmd_vrfy(struct session *s, const char *args)
{
	if (*args == '\0') {
		reply(s, "501 5.5.4 Syntax: VRFY address");
		session_error(s);
		return;
	}
	/* RFC 5321 §3.5.3: do not confirm or deny, but do not refuse either. */
	reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
	session_junk(s);
}

static void
cmd_expn(struct session *s, const char *args)
{
	reply(s, "502 5.5.1 EXPN is not available");
	session_error(s);
}

static void
cmd_help(struct session *s, const char *args)
{
	/* Only what this session would be offered: STARTTLS and AUTH as EHLO lists them. */
	reply(s, "214-2.0.0 Commands supported:");
	reply(s, "214-2.0.0   EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP%s%s",
	    s->tlsd.offer && !s->tls ? " STARTTLS" : "", auth_offered(s) ? " AUTH" : "");
	reply(s, "214 2.0.0 See RFC 5321");
	session_junk(s);
}

/* ---- STARTTLS (RFC 3207) ---- */

static void
cmd_starttls(struct session *s, const char *args)
{
	char la[64];

	if (*args != '\0') {
		reply(s, "501 5.5.4 Syntax: STARTTLS takes no arguments");
		session_error(s);
		return;
	}
	if (s->tls) {
		reply(s, "503 5.5.1 Error: TLS already active");
		session_error(s);
		return;
	}
	if (!s->tlsd.offer) {
		netaddr_str(&s->peer.local, la, sizeof(la));
		slog(s, LOG_INFO, "event=starttls-refused reason=%s local=%s%s", s->tlsd.reason, la,
		    s->tlsd.why == TLS_WHY_LOOPBACK ? " explain=\"loopback connections do not get "
		    "STARTTLS by design; connect to a non-loopback address or set tls_loopback = yes\"" :
		    " explain=\"set tls_cert_file and tls_key_file\"");
		metrics_inc(s->tlsd.why == TLS_WHY_LOOPBACK ? M_STARTTLS_REFUSED_LOOPBACK :
		    M_STARTTLS_REFUSED_NO_CERT);
		reply(s, "454 %s", tls_refusal_text(&s->tlsd));
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	s->state = SS_STARTTLS;
	s->ops->starttls(s->arg);
}

/* RFC 3207 §4.2: forget everything learned before TLS. */
void
session_tls_done(struct session *s, const char *desc)
{
	if (s->state == SS_GREETING) {
		/* implicit TLS (smtps): up before the greeting */
		s->tls = 1;
		str_copy(s->tls_desc, sizeof(s->tls_desc), desc);
		slog(s, LOG_INFO, "event=tls-established tls=\"%s\"", desc);
		return;
	}
	if (s->state != SS_STARTTLS)
		return;
	tx_clear(s);
	s->helo_kind = 0;
	s->helo[0] = '\0';
	s->auth_user[0] = '\0';
	s->tls = 1;
	str_copy(s->tls_desc, sizeof(s->tls_desc), desc);
	s->state = SS_CMD;
	slog(s, LOG_INFO, "event=tls-established tls=\"%s\"", desc);
}

/* ---- AUTH (RFC 4954) ---- */

static void
auth_fail(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* End the AUTH exchange with an error reply (not a credentials failure). */
static void
auth_fail(struct session *s, const char *fmt, ...)
{
	char text[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	s->state = SS_CMD;
	s->login_user[0] = '\0';
	reply(s, "%s", text);
	session_error(s);
}

/* Decode one base64 SASL response into buf (NUL-terminated). -1 when not base64. */
static int
auth_decode(const char *line, size_t len, unsigned char *buf, size_t cap, size_t *outlen)
{
	if (sasl_b64_decode(line, len, buf, cap - 1, outlen) < 0)
		return -1;
	buf[*outlen] = '\0';
	return 0;
}

static void
auth_check(struct session *s, const char *user, const char *pass)
{
	str_copy(s->login_user, sizeof(s->login_user), user);
	s->state = SS_AUTHWAIT;
	s->ops->auth_check(s->arg, user, pass);
}

/* Handle a SASL response (initial or continuation) for the mechanism in progress. */
static void
auth_response(struct session *s, const char *line, size_t len)
{
	unsigned char buf[SASL_LINE_MAX];
	char authz[256], user[256], pass[256];
	size_t n;

	if (sasl_is_cancel(line, len)) {
		slog(s, LOG_INFO, "event=auth-cancelled");
		auth_fail(s, "501 5.0.0 Authentication cancelled");
		return;
	}
	if (auth_decode(line, len, buf, sizeof(buf), &n) < 0) {
		auth_fail(s, "501 5.5.2 Cannot decode response");
		return;
	}
	if (s->auth_mech == SASL_PLAIN) {
		if (sasl_plain_parse(buf, n, authz, sizeof(authz), user, sizeof(user), pass,
		    sizeof(pass)) < 0) {
			explicit_bzero(buf, sizeof(buf));
			auth_fail(s, "501 5.5.2 Malformed PLAIN response");
			return;
		}
		explicit_bzero(buf, sizeof(buf));
		if (authz[0] != '\0' && strcmp(authz, user) != 0) {
			explicit_bzero(pass, sizeof(pass));
			auth_fail(s, "535 5.7.8 Authentication credentials invalid (authorization "
			    "identity must match)");
			return;
		}
		auth_check(s, user, pass);
		explicit_bzero(pass, sizeof(pass));
		return;
	}
	/* LOGIN: user, then password, each base64 on its own line. */
	if (memchr(buf, '\0', n) != NULL || n == 0 || n > 255) {
		explicit_bzero(buf, sizeof(buf));
		auth_fail(s, "501 5.5.2 Malformed LOGIN response");
		return;
	}
	if (s->auth_step == 0) {
		str_copy(s->login_user, sizeof(s->login_user), (const char *)buf);
		s->auth_step = 1;
		s->state = SS_AUTH;
		reply(s, "334 UGFzc3dvcmQ6");
		return;
	}
	str_copy(user, sizeof(user), s->login_user);
	auth_check(s, user, (const char *)buf);
	explicit_bzero(buf, sizeof(buf));
}

static void
cmd_auth(struct session *s, const char *args)
{
	char mech[32];
	const char *sp;
	size_t ml;

	if (!s->auth_available) {
		reply(s, "503 5.5.1 Error: authentication not enabled");
		session_error(s);
		return;
	}
	if (!auth_offered(s)) {
		/* RFC 4954 §4: 538 when the mechanism needs an encrypted connection. */
		slog(s, LOG_INFO, "event=auth-refused reason=plaintext-non-loopback");
		metrics_inc(M_AUTH_FAIL_PLAINTEXT);
		reply(s, "538 5.7.11 Encryption required for requested authentication mechanism");
		session_error(s);
		return;
	}
	if (s->helo_kind != 2) {
		reply(s, "503 5.5.1 Error: send EHLO first");
		session_error(s);
		return;
	}
	if (s->auth_user[0] != '\0') {
		reply(s, "503 5.5.1 Error: already authenticated");
		session_error(s);
		return;
	}
	if (s->in_tx) {
		reply(s, "503 5.5.1 Error: AUTH not permitted during a mail transaction");
		session_error(s);
		return;
	}
	sp = strchr(args, ' ');
	ml = sp ? (size_t)(sp - args) : strlen(args);
	if (ml == 0 || ml >= sizeof(mech)) {
		reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
		session_error(s);
		return;
	}
	memcpy(mech, args, ml);
	mech[ml] = '\0';
	s->auth_mech = sasl_mech_parse(mech);
	if (s->auth_mech == SASL_UNKNOWN || !(s->auth_mechs & (1u << s->auth_mech))) {
		reply(s, "504 5.5.4 Unrecognized authentication type");
		session_error(s);
		return;
	}
	s->auth_step = 0;
	s->login_user[0] = '\0';
	if (sp != NULL) {
		const char *ir = sp + 1;
		/* RFC 4954 §4: "=" is an empty initial response. */
		if (strcmp(ir, "=") == 0) {
			if (s->auth_mech == SASL_PLAIN)
				auth_fail(s, "501 5.5.2 Malformed PLAIN response");
			else
				auth_fail(s, "501 5.5.2 Malformed LOGIN response");
			return;
		}
		auth_response(s, ir, strlen(ir));
		return;
	}
	s->state = SS_AUTH;
	if (s->auth_mech == SASL_PLAIN)
		reply(s, "334 ");
	else
		reply(s, "334 VXNlcm5hbWU6");
}

/* The verdict on credentials. Failures spend the error budget faster. */
void
session_auth_done(struct session *s, int ok)
{
	session_auth_verdict(s, ok, NULL, NULL);
}

void
session_auth_verdict(struct session *s, int ok, const char *canon, const char *why)
{
	char user[LOG_VALUE_MAX], cuser[LOG_VALUE_MAX], wbuf[LOG_VALUE_MAX];
	const char *mech = s->auth_mech == SASL_PLAIN ? "PLAIN" : "LOGIN";

	if (s->state != SS_AUTHWAIT)
		return;
	s->state = SS_CMD;
	log_value(user, sizeof(user), s->login_user, strlen(s->login_user));
	if (why != NULL)
		log_value(wbuf, sizeof(wbuf), why, strlen(why));
	if (ok == SESSION_AUTH_LOCKED) {
		slog(s, LOG_WARN, "event=auth-refused user=%s reason=client-failure-limit", user);
		metrics_inc(M_AUTH_FAIL_LOCKED);
		session_close(s, "421 4.7.0 %s Too many failed authentications from your address; "
		    "try again later", s->conf->hostname);
	} else if (ok == SESSION_AUTH_TEMPFAIL) {
		/* not the client's fault: no failure counted, no error budget spent */
		metrics_inc(M_AUTH_FAIL_BACKEND);
		slog(s, LOG_WARN, "event=auth-tempfail user=%s mech=%s reason=%s", user, mech,
		    why != NULL ? wbuf : "backend-unavailable");
		reply(s, "454 4.7.0 Temporary authentication failure; try again later");
	} else if (ok) {
		str_copy(s->auth_user, sizeof(s->auth_user),
		    canon != NULL && canon[0] != '\0' ? canon : s->login_user);
		metrics_inc(M_AUTH_OK);
		if (strcmp(s->auth_user, s->login_user) != 0) {
			log_value(cuser, sizeof(cuser), s->auth_user, strlen(s->auth_user));
			slog(s, LOG_INFO, "event=auth-ok user=%s account=%s mech=%s tls=%s", user,
			    cuser, mech, s->tls ? "yes" : "no");
		} else
			slog(s, LOG_INFO, "event=auth-ok user=%s mech=%s tls=%s", user, mech,
			    s->tls ? "yes" : "no");
		reply(s, "235 2.7.0 Authentication successful");
	} else {
		s->auth_failures++;
		metrics_inc(M_AUTH_FAIL_CREDENTIALS);
		if (why != NULL)
			slog(s, LOG_WARN, "event=auth-failed user=%s mech=%s failures=%u reason=%s",
			    user, mech, s->auth_failures, wbuf);
		else
			slog(s, LOG_WARN, "event=auth-failed user=%s mech=%s failures=%u", user,
			    mech, s->auth_failures);
		reply(s, "535 5.7.8 Authentication credentials invalid");
		if (s->auth_failures >= SESSION_AUTH_FAILURES)
			session_close(s, "421 4.7.0 %s Too many failed authentication attempts; "
			    "closing connection", s->conf->hostname);
		else
			session_error(s);
	}
	s->login_user[0] = '\0';
}

int
session_auth_mech(const struct session *s)
{
	return s->auth_mech;
}

const char *
session_mail_sender(const struct session *s)
{
	return s->tx.sender;
}

const char *
session_helo(const struct session *s)
{
	return s->helo;
}

size_t
session_memory(const struct session *s)
{
	size_t m = sizeof(*s) + s->tx.rcpts_cap * sizeof(*s->tx.rcpts) + s->rcpt_bytes;

	if (s->chunk != NULL)
		m += BODY_CHUNK;
	return m;
}

/* An over-long line was discarded up to its LF: say which limit it broke. RFC 4954 §4: a
 * line too long for the authentication buffer fails the AUTH command with 500 5.5.6. */
static void
line_too_long(struct session *s, size_t limit)
{
	if (limit == SASL_LINE_MAX) {
		reply(s, "500 5.5.6 Error: authentication line too long (limit %d octets)",
		    SASL_LINE_MAX);
		slog(s, LOG_INFO, "event=bad-input reason=auth-line-too-long");
	} else {
		reply(s, "500 5.5.2 Error: command line too long (limit %zu octets)", limit);
		slog(s, LOG_INFO, "event=bad-input reason=command-line-too-long");
	}
	session_error(s);
}

/* Consume input; see session.h. */
size_t
session_feed(struct session *s, const char *buf, size_t len)
{
	size_t used = 0;

	s->paused = 0;
	while (used < len) {
		if (s->state == SS_DATA) {
			if (s->bdat_chunk)
				used += bdat_scan(s, buf + used, len - used);
			else
				used += body_scan(s, buf + used, len - used);
			if (s->state == SS_DATA)
				body_flush(s);
			continue;
		}
		if (s->state != SS_CMD && s->state != SS_AUTH)
			break;
		if (s->paused)
			break;	/* the server feeds us again when the pause is over */
		if (s->ops->output_full != NULL && s->ops->output_full(s->arg))
			break;

		const char *p = buf + used;
		size_t avail = len - used;
		/* RFC 4954 §4: in the AUTH exchange (the response to a 334, or AUTH with an
		 * initial response) a line may be SASL_LINE_MAX octets, its line ending excluded.
		 * Command lines are limited with their line ending (RFC 5321 §4.5.3.1.4; RCPT
		 * by RFC 3461 §5). */
		int sasl = s->state == SS_AUTH || (avail >= 5 && strncasecmp(p, "AUTH ", 5) == 0);
		size_t limit = sasl ? SASL_LINE_MAX : (avail >= 5 &&
		    strncasecmp(p, "RCPT ", 5) == 0) ? SESSION_RCPT_MAX : SESSION_CMD_MAX;
		const char *lf = memchr(p, '\n', avail);

		if (s->skipping) {
			if (lf == NULL) {
				used = len;
				break;
			}
			used += (size_t)(lf - p) + 1;
			line_too_long(s, s->skipping);
			s->skipping = 0;
			continue;
		}
		if (lf == NULL) {
			/* a SASL line may still end in CR LF after its SASL_LINE_MAX octets */
			if (avail >= (sasl ? SASL_LINE_MAX + 2 : limit)) {
				s->skipping = limit;
				used = len;
				if (s->state == SS_AUTH)
					s->state = SS_CMD;
			}
			break;
		}
		size_t linelen = (size_t)(lf - p) + 1;	/* with LF */
		size_t n = linelen - 1;			/* without CR LF */
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (sasl ? n > SASL_LINE_MAX : linelen > limit) {
			if (s->state == SS_AUTH)
				s->state = SS_CMD;
			used += linelen;
			line_too_long(s, limit);
			continue;
		}
		char line[SASL_LINE_MAX + 1];
		memcpy(line, p, n);
		line[n] = '\0';
		used += linelen;
		if (s->state == SS_AUTH) {
			s->ncommands++;
			auth_response(s, line, n);
		} else
			session_command(s, line, n);
		explicit_bzero(line, n);
		if (s->state == SS_STARTTLS)
			break;	/* the server discards whatever follows (RFC 3207 §4.2) */
	}
	return used;
}
