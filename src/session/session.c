/*
 * session — the pure SMTP server state machine; see session.h for the contract. The
 * message text (DATA, BDAT) is data.c's, the AUTH exchange auth.c's.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/rcpt.h"
#include "proto/sasl.h"
#include "session/session_int.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/intl.h"
#include "util/str.h"

static void cmd_helo(struct session *, const char *, int);
static void cmd_mail(struct session *, const char *);
static void cmd_rcpt(struct session *, const char *);
static void cmd_rset(struct session *, const char *);
static void cmd_noop(struct session *, const char *);
static void cmd_quit(struct session *, const char *);
static void cmd_vrfy(struct session *, const char *);
static void cmd_expn(struct session *, const char *);
static void cmd_help(struct session *, const char *);
static void cmd_starttls(struct session *, const char *);

/* Send one reply line; the format carries code and enhanced code. */
void
ss_reply(struct session *s, const char *fmt, ...)
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

/* Log an event with this session's id first. */
void
ss_slog(struct session *s, int level, const char *fmt, ...)
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
void
ss_spool_abort(struct session *s)
{
	if (s->spool_open)
		s->ops->tx_abort(s->arg);
	s->spool_open = 0;
}

void
ss_tx_clear(struct session *s)
{
	/* Between BDAT chunks the spool file is open in SS_CMD: RSET, EHLO, QUIT, STARTTLS
	 * and closing all drop it here. */
	ss_spool_abort(s);
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
	ss_tx_clear(s);
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
		ss_reply(s, "421 4.7.0 %s %s", s->conf->hostname, refuse);
		s->state = SS_CLOSING;
		return;
	}
	ss_reply(s, "220 %s ESMTP imsd", s->conf->hostname);
	s->state = SS_CMD;
}

/* Say a final 421 line and go to CLOSING, dropping any open transaction. */
void
ss_close(struct session *s, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ss_spool_abort(s);
	ss_reply(s, "%s", text);
	ss_tx_clear(s);
	s->state = SS_CLOSING;
}

/* Spend one unit of the error budget; end the session when it is gone. */
void
ss_error(struct session *s)
{
	if (++s->errors >= SESSION_ERROR_LIMIT) {
		ss_slog(s, LOG_WARN, "event=too-many-errors errors=%u", s->errors);
		ss_close(s, "421 4.7.0 %s Too many errors; closing connection",
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
			ss_slog(s, LOG_INFO, "event=tarpit errors=%u delay=%us", s->errors, delay);
		s->paused = 1;
		s->ops->pause(s->arg, delay);
	}
}

/*
 * A recipient refused as unknown or not ours to relay: an error of this session (its
 * tarpit), and one of its client across sessions (ops->rcpt_refused), so that a harvester
 * opening a new session every few guesses is slowed down and then cut off all the same.
 */
static void
rcpt_refused(struct session *s)
{
	int r = s->ops->rcpt_refused != NULL ? s->ops->rcpt_refused(s->arg) : 0;

	if (r < 0) {
		ss_slog(s, LOG_WARN, "event=too-many-rejected-recipients scope=client-address");
		ss_close(s, "421 4.7.0 %s Too many rejected recipients from your address; "
		    "try again later", s->conf->hostname);
		return;
	}
	ss_error(s);
	if (r > 0 && s->state != SS_CLOSING && !s->paused && s->ops->pause != NULL) {
		if (r > SESSION_ERROR_DELAY_MAX)
			r = SESSION_ERROR_DELAY_MAX;
		s->paused = 1;
		s->ops->pause(s->arg, (unsigned)r);
	}
}

void
ss_junk(struct session *s)
{
	if (++s->junk > SESSION_JUNK_LIMIT) {
		ss_slog(s, LOG_WARN, "event=too-many-commands junk=%u", s->junk);
		ss_close(s, "421 4.7.0 %s Too many commands without a message; closing connection",
		    s->conf->hostname);
	}
}

void
session_timeout(struct session *s)
{
	if (s->state == SS_CLOSING)
		return;
	ss_slog(s, LOG_INFO, "event=timeout state=%s", s->state == SS_DATA ? "data" : "command");
	ss_close(s, "421 4.4.2 %s Timeout exceeded; closing connection", s->conf->hostname);
}

void
session_shutdown(struct session *s)
{
	if (s->state == SS_CLOSING)
		return;
	ss_close(s, "421 4.3.2 %s Service shutting down; closing connection",
	    s->conf->hostname);
}

void
session_disconnected(struct session *s)
{
	if (s->state == SS_DATA || s->state == SS_COMMIT || s->spool_open) {
		ss_slog(s, LOG_INFO, "event=disconnect-in-data qid=%s received=%llu",
		    s->tx.qid, (unsigned long long)s->tx.size);
		if (s->state == SS_COMMIT)
			s->ops->tx_abort(s->arg);	/* the server still holds the file */
		else
			ss_spool_abort(s);
	}
	ss_tx_clear(s);
	s->state = SS_CLOSING;
}

/* The commit finished: this is the only place a message gets its 250. */
void
session_commit_done(struct session *s, int ok)
{
	if (s->state != SS_COMMIT)
		return;
	if (ok == 1) {
		ss_reply(s, "250 2.0.0 Ok: queued as %s", s->tx.qid);
		s->nmessages++;
		s->junk = 0;
	} else if (ok == SESSION_COMMIT_NOSPACE)
		ss_reply(s, "452 4.3.1 Insufficient system storage; message not accepted, try again "
		    "later");
	else
		ss_reply(s, "451 4.3.0 Local error in processing; message not accepted, try again later");
	ss_tx_clear(s);
	s->state = SS_CMD;
}

/* ---- command dispatch ----
 *
 * Each row of the command table says what its command needs before its handler runs;
 * the dispatcher checks that, in the order of the PRE_ bits below, so the handlers hold
 * only their own rules. A command that moves no mail (CMD_JUNK) counts against
 * SESSION_JUNK_LIMIT after it succeeded. line_max is the longest line the command may
 * come in (RFC 5321 §4.5.3.1.4; RCPT with DSN parameters, RFC 3461 §5; AUTH with an
 * initial response, RFC 4954 §4).
 */
#define PRE_NOARGS	0x01	/* 501 5.5.4 Syntax: VERB takes no arguments */
#define PRE_ARGS	0x02	/* 501 5.5.4 Syntax: <usage> */
#define PRE_HELO	0x04	/* 503 5.5.1 Error: send HELO/EHLO first */
#define PRE_NO_TX	0x08	/* 503 5.5.1 Error: <notx>, in a mail transaction */
#define PRE_TX		0x10	/* 503 5.5.1 Error: need MAIL command */
#define CMD_JUNK	0x20	/* moves no mail */

struct command {
	const char *verb;
	void (*fn)(struct session *, const char *);
	unsigned flags;
	const char *text;	/* PRE_ARGS: the usage; PRE_NO_TX: what is refused */
	size_t line_max;
};

static void
cmd_ehlo(struct session *s, const char *args)
{
	cmd_helo(s, args, 2);
}

static void
cmd_helo1(struct session *s, const char *args)
{
	cmd_helo(s, args, 1);
}

static const struct command commands[] = {
	{ "EHLO", cmd_ehlo, 0, NULL, SESSION_CMD_MAX },
	{ "HELO", cmd_helo1, 0, NULL, SESSION_CMD_MAX },
	{ "MAIL", cmd_mail, PRE_HELO | PRE_NO_TX, "nested MAIL command", SESSION_CMD_MAX },
	{ "RCPT", cmd_rcpt, PRE_TX, NULL, SESSION_RCPT_MAX },
	{ "DATA", ss_cmd_data, PRE_NOARGS | PRE_TX, NULL, SESSION_CMD_MAX },
	{ "BDAT", ss_cmd_bdat, 0, NULL, SESSION_CMD_MAX },
	{ "RSET", cmd_rset, PRE_NOARGS | CMD_JUNK, NULL, SESSION_CMD_MAX },
	{ "NOOP", cmd_noop, CMD_JUNK, NULL, SESSION_CMD_MAX },
	{ "QUIT", cmd_quit, 0, NULL, SESSION_CMD_MAX },
	{ "VRFY", cmd_vrfy, PRE_ARGS | CMD_JUNK, "VRFY address", SESSION_CMD_MAX },
	{ "EXPN", cmd_expn, 0, NULL, SESSION_CMD_MAX },
	{ "HELP", cmd_help, CMD_JUNK, NULL, SESSION_CMD_MAX },
	{ "STARTTLS", cmd_starttls, PRE_NOARGS, NULL, SESSION_CMD_MAX },
	{ "AUTH", ss_cmd_auth, 0, NULL, SASL_LINE_MAX },
};

/* The row of a verb (upper case), or NULL. */
static const struct command *
command_find(const char *verb)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(verb, commands[i].verb) == 0)
			return &commands[i];
	return NULL;
}

/* The longest line allowed for the command that starts at p ("VERB " then arguments). */
static size_t
command_line_max(const char *p, size_t avail)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		size_t vl = strlen(commands[i].verb);
		if (avail > vl && p[vl] == ' ' && strncasecmp(p, commands[i].verb, vl) == 0)
			return commands[i].line_max;
	}
	return SESSION_CMD_MAX;
}

/* Does the session meet what the row needs? If not, the refusal is sent. */
static int
command_allowed(struct session *s, const struct command *c, const char *args)
{
	if ((c->flags & PRE_NOARGS) && *args != '\0')
		ss_reply(s, "501 5.5.4 Syntax: %s takes no arguments", c->verb);
	else if ((c->flags & PRE_ARGS) && *args == '\0')
		ss_reply(s, "501 5.5.4 Syntax: %s", c->text);
	else if ((c->flags & PRE_HELO) && s->helo_kind == 0)
		ss_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
	else if ((c->flags & PRE_NO_TX) && s->in_tx)
		ss_reply(s, "503 5.5.1 Error: %s", c->text);
	else if ((c->flags & PRE_TX) && !s->in_tx)
		ss_reply(s, "503 5.5.1 Error: need MAIL command");
	else
		return 1;
	ss_error(s);
	return 0;
}

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
	const struct command *cmd;
	size_t vlen = 0;

	s->ncommands++;
	if (log_level_now() >= LOG_DEBUG) {
		char v[LOG_VALUE_MAX];
		/* Never log what follows AUTH: it carries credentials. */
		if (strncasecmp(line, "AUTH ", 5) == 0)
			ss_slog(s, LOG_DEBUG, "smtp=in line=\"AUTH ********\"");
		else
			ss_slog(s, LOG_DEBUG, "smtp=in line=%s", log_value(v, sizeof(v), line, len));
	}
	if (memchr(line, '\0', len) != NULL) {
		ss_reply(s, "500 5.5.2 Syntax error: NUL byte in command");
		ss_error(s);
		return;
	}
	if (is_http_verb(line)) {
		ss_slog(s, LOG_WARN, "event=non-smtp-command reason=http");
		ss_close(s, "421 4.7.0 %s This is an SMTP server, not a web server; closing",
		    s->conf->hostname);
		return;
	}
	while (vlen < len && line[vlen] != ' ' && vlen < sizeof(verb) - 1) {
		verb[vlen] = (char)toupper((unsigned char)line[vlen]);
		vlen++;
	}
	verb[vlen] = '\0';
	if (vlen < len && line[vlen] != ' ') {
		ss_reply(s, "500 5.5.1 Error: command not recognized");
		ss_error(s);
		return;
	}
	args = line + vlen;
	while (*args == ' ')
		args++;

	if ((cmd = command_find(verb)) != NULL) {
		if (!command_allowed(s, cmd, args))
			return;
		cmd->fn(s, args);
		if ((cmd->flags & CMD_JUNK) && s->state != SS_CLOSING)
			ss_junk(s);
		return;
	}
	if (strcmp(verb, "PROXY") == 0 && s->ncommands == 1) {
		/* A load balancer's header, from an address that is not in proxy_networks:
		 * believing it would let anyone choose the client address we judge. */
		ss_slog(s, LOG_WARN, "event=proxy-header-refused reason=not-in-proxy_networks");
		ss_close(s, "421 4.7.0 %s PROXY header not accepted from your address; "
		    "closing connection", s->conf->hostname);
		return;
	}
	ss_reply(s, "500 5.5.1 Error: command not recognized");
	ss_error(s);
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
int
ss_auth_offered(const struct session *s)
{
	return s->auth_available && !s->peer.no_client &&
	    (s->tls || netaddr_is_loopback(&s->peer.local));
}

static void
cmd_helo(struct session *s, const char *args, int kind)
{
	char name[256];

	if (helo_arg(args, name, sizeof(name)) < 0) {
		ss_reply(s, "501 5.5.4 Syntax: %s hostname", kind == 2 ? "EHLO" : "HELO");
		ss_error(s);
		return;
	}
	/* RFC 5321 §4.1.4: EHLO/HELO resets the transaction. */
	ss_tx_clear(s);
	memcpy(s->helo, name, strlen(name) + 1);
	/* A second greeting in the same session (TLS starts a new one) is allowed but earns
	 * nothing: pipelined EHLO floods are the cheapest way to make a server write. */
	if (s->helo_kind != 0) {
		ss_junk(s);
		if (s->state == SS_CLOSING)
			return;
	}
	s->helo_kind = kind;
	if (kind == 1) {
		ss_reply(s, "250 %s", s->conf->hostname);
		return;
	}
	ss_reply(s, "250-%s", s->conf->hostname);
	ss_reply(s, "250-PIPELINING");
	ss_reply(s, "250-SIZE %llu", (unsigned long long)s->conf->message_size_limit);
	ss_reply(s, "250-8BITMIME");
	ss_reply(s, "250-CHUNKING");
	ss_reply(s, "250-BINARYMIME");
	ss_reply(s, "250-SMTPUTF8");
	ss_reply(s, "250-DSN");
	if (s->tlsd.offer && !s->tls)
		ss_reply(s, "250-STARTTLS");
	if (s->tls)
		ss_reply(s, "250-REQUIRETLS");	/* RFC 8689 §4: only once TLS is up */
	if (ss_auth_offered(s))
		ss_reply(s, "250-AUTH%s%s", s->auth_mechs & (1u << SASL_PLAIN) ? " PLAIN" : "",
		    s->auth_mechs & (1u << SASL_LOGIN) ? " LOGIN" : "");
	ss_reply(s, "250 ENHANCEDSTATUSCODES");
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

	if (s->peer.no_client) {
		/* A PROXY header without addresses: whoever this is, the balancer's own
		 * address (loopback, relay_networks) must not vouch for it. */
		ss_slog(s, LOG_INFO, "event=reject stage=mail status=5.7.1 reason=proxy-no-address");
		ss_reply(s, "550 5.7.1 This connection names no client (a PROXY header without "
		    "addresses): no mail is accepted on it");
		ss_error(s);
		return;
	}
	if (s->kind == SL_SUBMISSION && s->auth_user[0] == '\0') {
		/* RFC 6409 §4.3: submission requires authentication. */
		ss_reply(s, "530 5.7.0 Authentication required");
		ss_error(s);
		return;
	}
	if ((p = path_keyword(args, "FROM:")) == NULL) {
		ss_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		ss_error(s);
		return;
	}
	switch (smtp_path_parse(p, strlen(p), 1, 0, &path, &rest, &why)) {
	case SMTP_PATH_OK:
		break;
	default:
		ss_reply(s, "501 5.1.7 Bad sender address syntax: %s", why);
		ss_error(s);
		return;
	}
	np = smtp_params_parse(rest, strlen(rest), params, sizeof(params) / sizeof(params[0]), &why);
	if (np < 0) {
		ss_reply(s, "501 5.5.4 Bad MAIL parameters: %s", why);
		ss_error(s);
		return;
	}
	for (int i = 0; i < np; i++) {
		if (smtp_param_is(&params[i], "SIZE") && params[i].value != NULL) {
			char num[24];
			char *end;
			if (params[i].valuelen == 0 || params[i].valuelen >= sizeof(num)) {
				ss_reply(s, "501 5.5.4 Bad SIZE parameter");
				ss_error(s);
				return;
			}
			memcpy(num, params[i].value, params[i].valuelen);
			num[params[i].valuelen] = '\0';
			if (!isdigit((unsigned char)num[0])) {
				ss_reply(s, "501 5.5.4 Bad SIZE parameter");
				ss_error(s);
				return;
			}
			size = strtoull(num, &end, 10);
			if (*end != '\0') {
				ss_reply(s, "501 5.5.4 Bad SIZE parameter");
				ss_error(s);
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
				ss_reply(s, "501 5.5.4 Unsupported BODY type");
				ss_error(s);
				return;
			}
		} else if (smtp_param_is(&params[i], "SMTPUTF8") && s->helo_kind == 2) {
			/* RFC 6531 §3.4: a keyword without a value */
			if (params[i].value != NULL) {
				ss_reply(s, "501 5.5.4 SMTPUTF8 takes no value");
				ss_error(s);
				return;
			}
			utf8 = 1;
		} else if (smtp_param_is(&params[i], "REQUIRETLS") && params[i].value == NULL &&
		    s->helo_kind == 2) {
			if (!s->tls) {
				/* RFC 8689 §4.1: the option exists only over TLS */
				ss_reply(s, "530 5.7.10 REQUIRETLS is accepted only over TLS");
				return;
			}
			requiretls = 1;
		} else if (smtp_param_is(&params[i], "RET") && s->helo_kind == 2) {
			if (ret != DSN_RET_NONE || params[i].value == NULL ||
			    dsn_ret_parse(params[i].value, params[i].valuelen, &ret, &why) < 0) {
				ss_reply(s, "501 5.5.4 Bad RET parameter: %s", ret != DSN_RET_NONE ?
				    "given twice" : params[i].value == NULL ? "no value" : why);
				ss_error(s);
				return;
			}
		} else if (smtp_param_is(&params[i], "ENVID") && s->helo_kind == 2) {
			if (envid[0] != '\0' || params[i].value == NULL ||
			    dsn_envid_parse(params[i].value, params[i].valuelen, envid, &why) < 0) {
				ss_reply(s, "501 5.5.4 Bad ENVID parameter: %s", envid[0] != '\0' ?
				    "given twice" : params[i].value == NULL ? "no value" : why);
				ss_error(s);
				return;
			}
		} else {
			ss_reply(s, "555 5.5.4 Unsupported MAIL parameter %.*s",
			    (int)(params[i].keylen > 32 ? 32 : params[i].keylen), params[i].key);
			ss_error(s);
			return;
		}
	}
	if (path.utf8 && !utf8) {
		/* RFC 6531 §3.5: a non-ASCII address only in an SMTPUTF8 transaction */
		ss_slog(s, LOG_INFO, "event=reject stage=mail status=5.6.7 reason=utf8-without-smtputf8");
		ss_reply(s, "553 5.6.7 Non-ASCII sender address requires the SMTPUTF8 parameter "
		    "(MAIL FROM:<...> SMTPUTF8)");
		ss_error(s);
		return;
	}
	if (size > s->conf->message_size_limit) {
		ss_slog(s, LOG_INFO, "event=reject stage=mail reason=size declared=%llu limit=%llu",
		    (unsigned long long)size, (unsigned long long)s->conf->message_size_limit);
		ss_reply(s, "552 5.3.4 Message size exceeds fixed limit of %llu bytes",
		    (unsigned long long)s->conf->message_size_limit);
		return;
	}
	if (s->ops->space_ok != NULL && !s->ops->space_ok(s->arg, size)) {
		/* RFC 3463 4.3.1, RFC 1870: say it before the client sends the message. The
		 * server logged the figures. */
		ss_slog(s, LOG_WARN, "event=reject stage=mail status=4.3.1 reason=spool-full "
		    "declared=%llu", (unsigned long long)size);
		ss_reply(s, "452 4.3.1 Insufficient system storage; try again later");
		return;
	}
	ss_tx_clear(s);
	if (smtp_path_addr(&path, s->tx.sender, sizeof(s->tx.sender)) < 0) {
		ss_reply(s, "501 5.1.7 Bad sender address syntax: too long");
		ss_error(s);
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
	ss_reply(s, "250 2.1.0 Ok");
}

void
session_mail_done(struct session *s, const char *refusal)
{
	char lfrom[LOG_VALUE_MAX], lwhy[LOG_VALUE_MAX];

	if (s->state != SS_MAILWAIT)
		return;
	s->state = SS_CMD;
	if (refusal == NULL) {
		ss_reply(s, "250 2.1.0 Ok");
		return;
	}
	ss_slog(s, LOG_INFO, "event=reject stage=mail from=%s reason=%s",
	    log_addr(lfrom, sizeof(lfrom), s->tx.sender),
	    log_value(lwhy, sizeof(lwhy), refusal, strlen(refusal)));
	ss_reply(s, "%.480s", refusal);
	ss_tx_clear(s);
	ss_error(s);
}

void
session_commit_refused(struct session *s, const char *refusal)
{
	char lwhy[LOG_VALUE_MAX];

	if (s->state != SS_COMMIT)
		return;
	ss_slog(s, LOG_INFO, "qid=%s event=reject stage=data reason=%s", s->tx.qid,
	    log_value(lwhy, sizeof(lwhy), refusal, strlen(refusal)));
	ss_reply(s, "%.480s", refusal);
	ss_tx_clear(s);
	s->state = SS_CMD;
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

/* Relaying is for clients in relay_networks and for authenticated users (SPEC.md). */
static int
session_may_relay(const struct session *s)
{
	if (s->peer.no_client)
		return 0;
	return rcpt_may_relay(s->conf, &s->peer.remote, s->auth_user[0] != '\0',
	    s->kind == SL_LOCAL);
}

static void
cmd_rcpt(struct session *s, const char *args)
{
	struct smtp_path path;
	struct smtp_param params[8];
	struct rcpt_verdict v;
	char safe[400];
	char lto[LOG_VALUE_MAX], lfrom[LOG_VALUE_MAX];
	const char *p, *rest, *why;
	int np;
	unsigned notify = 0;
	char dsn_orcpt[DSN_ORCPT_MAX + 1] = "";

	if ((p = path_keyword(args, "TO:")) == NULL) {
		ss_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		ss_error(s);
		return;
	}
	switch (smtp_path_parse(p, strlen(p), 0, 1, &path, &rest, &why)) {
	case SMTP_PATH_OK:
		if (path.utf8 && !s->tx.smtputf8) {
			/* RFC 6531 §3.5 */
			ss_reply(s, "553 5.6.7 Non-ASCII recipient address requires SMTPUTF8 "
			    "(MAIL FROM:<...> SMTPUTF8)");
			ss_error(s);
			return;
		}
		break;
	default:
		ss_reply(s, "501 5.1.3 Bad recipient address syntax: %s", why);
		ss_error(s);
		return;
	}
	np = smtp_params_parse(rest, strlen(rest), params, sizeof(params) / sizeof(params[0]), &why);
	if (np < 0) {
		ss_reply(s, "501 5.5.4 Bad RCPT parameters: %s", why);
		ss_error(s);
		return;
	}
	for (int i = 0; i < np; i++) {
		if (smtp_param_is(&params[i], "NOTIFY") && s->helo_kind == 2) {
			if (notify != 0 || params[i].value == NULL ||
			    dsn_notify_parse(params[i].value, params[i].valuelen, &notify, &why) < 0) {
				ss_reply(s, "501 5.5.4 Bad NOTIFY parameter: %s", notify != 0 ?
				    "given twice" : params[i].value == NULL ? "no value" : why);
				ss_error(s);
				return;
			}
		} else if (smtp_param_is(&params[i], "ORCPT") && s->helo_kind == 2) {
			if (dsn_orcpt[0] != '\0' || params[i].value == NULL ||
			    dsn_orcpt_parse(params[i].value, params[i].valuelen, dsn_orcpt, &why) < 0) {
				ss_reply(s, "501 5.5.4 Bad ORCPT parameter: %s", dsn_orcpt[0] != '\0' ?
				    "given twice" : params[i].value == NULL ? "no value" : why);
				ss_error(s);
				return;
			}
		} else {
			ss_reply(s, "555 5.5.4 Unsupported RCPT parameter %.*s",
			    (int)(params[i].keylen > 32 ? 32 : params[i].keylen), params[i].key);
			ss_error(s);
			return;
		}
	}
	if (s->tx.naccepted >= s->conf->recipient_limit) {
		ss_reply(s, "452 4.5.3 Error: too many recipients");
		ss_error(s);
		return;
	}
	/* The verdict is policy/rcpt's (shared with imsd explain-recipient); the reply, the
	 * log line and the transaction are ours. */
	rcpt_decide(s->conf, s->recipients, session_may_relay(s), &path, &v);
	log_safe(safe, sizeof(safe), v.given, strlen(v.given));	/* for replies */
	log_addr(lto, sizeof(lto), v.given);			/* for the log */
	log_addr(lfrom, sizeof(lfrom), s->tx.sender);
	switch (v.kind) {
	case RCPT_REFUSE: {
		char line[600], lwhy[LOG_VALUE_MAX];
		if (v.refusal != RR_TOO_LONG)
			ss_slog(s, LOG_INFO, "event=reject stage=rcpt%s%s to=%s status=%s reason=%s%s%s%s",
			    rcpt_refusal_logs_from(&v) ? " from=" : "", rcpt_refusal_logs_from(&v) ?
			    lfrom : "", lto, v.status, v.reason, v.why != NULL ? " why=" : "",
			    v.why != NULL ? log_value(lwhy, sizeof(lwhy), v.why, strlen(v.why)) : "",
			    v.refusal == RR_RELAY_DENIED && v.routed ? " routed=yes" : "");
		rcpt_refusal_reply(&v, safe, line, sizeof(line));
		ss_reply(s, "%s", line);
		if (v.refusal == RR_RELAY_DENIED || v.refusal == RR_UNKNOWN_USER ||
		    v.refusal == RR_BAD_LOCAL_PART)
			rcpt_refused(s);	/* a guess that missed */
		else
			ss_error(s);
		return;
	}
	case RCPT_RELAY:
		if (tx_add_rcpt(s, v.addr, v.given, notify, dsn_orcpt[0] ? dsn_orcpt : NULL) < 0) {
			ss_reply(s, "501 5.1.3 Bad recipient address syntax: too long");
			ss_error(s);
			return;
		}
		s->tx.naccepted++;
		ss_reply(s, "250 2.1.5 Ok");
		return;
	case RCPT_LOCAL:
		break;
	}
	if (expand_rcpt(s, v.addr, v.addr, notify, dsn_orcpt[0] ? dsn_orcpt : NULL, &why) < 0) {
		char lwhy[LOG_VALUE_MAX];
		ss_slog(s, LOG_WARN, "event=reject stage=rcpt to=%s status=4.3.0 reason=%s", lto,
		    log_value(lwhy, sizeof(lwhy), why, strlen(why)));
		ss_reply(s, "451 4.3.0 <%s>: Temporary lookup failure: %s", safe, why);
		return;
	}
	s->tx.naccepted++;
	ss_reply(s, "250 2.1.5 Ok");
}

static void
cmd_rset(struct session *s, const char *args)
{
	ss_tx_clear(s);
	ss_reply(s, "250 2.0.0 Ok");
}

static void
cmd_noop(struct session *s, const char *args)
{
	ss_reply(s, "250 2.0.0 Ok");
}

static void
cmd_quit(struct session *s, const char *args)
{
	ss_tx_clear(s);
	ss_reply(s, "221 2.0.0 %s closing connection", s->conf->hostname);
	s->state = SS_CLOSING;
}

static void
cmd_vrfy(struct session *s, const char *args)
{
	/* RFC 5321 §3.5.3: do not confirm or deny, but do not refuse either. */
	ss_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static void
cmd_expn(struct session *s, const char *args)
{
	ss_reply(s, "502 5.5.1 EXPN is not available");
	ss_error(s);
}

static void
cmd_help(struct session *s, const char *args)
{
	/* Only what this session would be offered: STARTTLS and AUTH as EHLO lists them. */
	ss_reply(s, "214-2.0.0 Commands supported:");
	ss_reply(s, "214-2.0.0   EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP%s%s",
	    s->tlsd.offer && !s->tls ? " STARTTLS" : "", ss_auth_offered(s) ? " AUTH" : "");
	ss_reply(s, "214 2.0.0 See RFC 5321");
}

/* ---- STARTTLS (RFC 3207) ---- */

static void
cmd_starttls(struct session *s, const char *args)
{
	char la[64];

	if (s->tls) {
		ss_reply(s, "503 5.5.1 Error: TLS already active");
		ss_error(s);
		return;
	}
	if (!s->tlsd.offer) {
		netaddr_str(&s->peer.local, la, sizeof(la));
		ss_slog(s, LOG_INFO, "event=starttls-refused reason=%s local=%s%s", s->tlsd.reason, la,
		    s->tlsd.why == TLS_WHY_LOOPBACK ? " explain=\"loopback connections do not get "
		    "STARTTLS by design; connect to a non-loopback address or set tls_loopback = yes\"" :
		    " explain=\"set tls_cert_file and tls_key_file\"");
		metrics_inc(s->tlsd.why == TLS_WHY_LOOPBACK ? M_STARTTLS_REFUSED_LOOPBACK :
		    M_STARTTLS_REFUSED_NO_CERT);
		ss_reply(s, "454 %s", tls_refusal_text(&s->tlsd));
		return;
	}
	ss_reply(s, "220 2.0.0 Ready to start TLS");
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
		ss_slog(s, LOG_INFO, "event=tls-established tls=\"%s\"", desc);
		return;
	}
	if (s->state != SS_STARTTLS)
		return;
	ss_tx_clear(s);
	s->helo_kind = 0;
	s->helo[0] = '\0';
	s->auth_user[0] = '\0';
	s->tls = 1;
	str_copy(s->tls_desc, sizeof(s->tls_desc), desc);
	s->state = SS_CMD;
	ss_slog(s, LOG_INFO, "event=tls-established tls=\"%s\"", desc);
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

const char *
session_auth_user(const struct session *s)
{
	return s->auth_user;
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
		ss_reply(s, "500 5.5.6 Error: authentication line too long (limit %d octets)",
		    SASL_LINE_MAX);
		ss_slog(s, LOG_INFO, "event=bad-input reason=auth-line-too-long");
	} else {
		ss_reply(s, "500 5.5.2 Error: command line too long (limit %zu octets)", limit);
		ss_slog(s, LOG_INFO, "event=bad-input reason=command-line-too-long");
	}
	ss_error(s);
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
				used += ss_bdat_scan(s, buf + used, len - used);
			else
				used += ss_body_scan(s, buf + used, len - used);
			if (s->state == SS_DATA)
				ss_body_flush(s);
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
		 * by RFC 3461 §5): the command table's line_max. */
		size_t limit = s->state == SS_AUTH ? SASL_LINE_MAX : command_line_max(p, avail);
		int sasl = limit == SASL_LINE_MAX;
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
			ss_auth_response(s, line, n);
		} else
			session_command(s, line, n);
		explicit_bzero(line, n);
		if (s->state == SS_STARTTLS)
			break;	/* the server discards whatever follows (RFC 3207 §4.2) */
	}
	return used;
}
