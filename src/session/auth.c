/*
 * auth — SMTP AUTH (RFC 4954) in the session: PLAIN and LOGIN, the exchange of SASL lines,
 * the failure budget. The credentials are checked by the server (ops->auth_check).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/sasl.h"
#include "session/session_int.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/str.h"

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
	ss_reply(s, "%s", text);
	ss_error(s);
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
void
ss_auth_response(struct session *s, const char *line, size_t len)
{
	unsigned char buf[SASL_LINE_MAX];
	char authz[256], user[256], pass[256];
	size_t n;

	if (sasl_is_cancel(line, len)) {
		ss_slog(s, LOG_INFO, "event=auth-cancelled");
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
		ss_reply(s, "334 UGFzc3dvcmQ6");
		return;
	}
	str_copy(user, sizeof(user), s->login_user);
	auth_check(s, user, (const char *)buf);
	explicit_bzero(buf, sizeof(buf));
}

void
ss_cmd_auth(struct session *s, const char *args)
{
	char mech[32];
	const char *sp;
	size_t ml;

	if (!s->auth_available) {
		ss_reply(s, "503 5.5.1 Error: authentication not enabled");
		ss_error(s);
		return;
	}
	if (!ss_auth_offered(s)) {
		/* RFC 4954 §4: 538 when the mechanism needs an encrypted connection. */
		ss_slog(s, LOG_INFO, "event=auth-refused reason=plaintext-non-loopback");
		metrics_inc(M_AUTH_FAIL_PLAINTEXT);
		ss_reply(s, "538 5.7.11 Encryption required for requested authentication mechanism");
		ss_error(s);
		return;
	}
	if (s->helo_kind != 2) {
		ss_reply(s, "503 5.5.1 Error: send EHLO first");
		ss_error(s);
		return;
	}
	if (s->auth_user[0] != '\0') {
		ss_reply(s, "503 5.5.1 Error: already authenticated");
		ss_error(s);
		return;
	}
	if (s->in_tx) {
		ss_reply(s, "503 5.5.1 Error: AUTH not permitted during a mail transaction");
		ss_error(s);
		return;
	}
	sp = strchr(args, ' ');
	ml = sp ? (size_t)(sp - args) : strlen(args);
	if (ml == 0 || ml >= sizeof(mech)) {
		ss_reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
		ss_error(s);
		return;
	}
	memcpy(mech, args, ml);
	mech[ml] = '\0';
	s->auth_mech = sasl_mech_parse(mech);
	if (s->auth_mech == SASL_UNKNOWN || !(s->auth_mechs & (1u << s->auth_mech))) {
		ss_reply(s, "504 5.5.4 Unrecognized authentication type");
		ss_error(s);
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
		ss_auth_response(s, ir, strlen(ir));
		return;
	}
	s->state = SS_AUTH;
	if (s->auth_mech == SASL_PLAIN)
		ss_reply(s, "334 ");
	else
		ss_reply(s, "334 VXNlcm5hbWU6");
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
		ss_slog(s, LOG_WARN, "event=auth-refused user=%s reason=client-failure-limit", user);
		metrics_inc(M_AUTH_FAIL_LOCKED);
		ss_close(s, "421 4.7.0 %s Too many failed authentications from your address; "
		    "try again later", s->conf->hostname);
	} else if (ok == SESSION_AUTH_TEMPFAIL) {
		/* not the client's fault: no failure counted, no error budget spent */
		metrics_inc(M_AUTH_FAIL_BACKEND);
		ss_slog(s, LOG_WARN, "event=auth-tempfail user=%s mech=%s reason=%s", user, mech,
		    why != NULL ? wbuf : "backend-unavailable");
		ss_reply(s, "454 4.7.0 Temporary authentication failure; try again later");
	} else if (ok) {
		str_copy(s->auth_user, sizeof(s->auth_user),
		    canon != NULL && canon[0] != '\0' ? canon : s->login_user);
		metrics_inc(M_AUTH_OK);
		if (strcmp(s->auth_user, s->login_user) != 0) {
			log_value(cuser, sizeof(cuser), s->auth_user, strlen(s->auth_user));
			ss_slog(s, LOG_INFO, "event=auth-ok user=%s account=%s mech=%s tls=%s", user,
			    cuser, mech, s->tls ? "yes" : "no");
		} else
			ss_slog(s, LOG_INFO, "event=auth-ok user=%s mech=%s tls=%s", user, mech,
			    s->tls ? "yes" : "no");
		ss_reply(s, "235 2.7.0 Authentication successful");
	} else {
		s->auth_failures++;
		metrics_inc(M_AUTH_FAIL_CREDENTIALS);
		if (why != NULL)
			ss_slog(s, LOG_WARN, "event=auth-failed user=%s mech=%s failures=%u reason=%s",
			    user, mech, s->auth_failures, wbuf);
		else
			ss_slog(s, LOG_WARN, "event=auth-failed user=%s mech=%s failures=%u", user,
			    mech, s->auth_failures);
		ss_reply(s, "535 5.7.8 Authentication credentials invalid");
		if (s->auth_failures >= SESSION_AUTH_FAILURES)
			ss_close(s, "421 4.7.0 %s Too many failed authentication attempts; "
			    "closing connection", s->conf->hostname);
		else
			ss_error(s);
	}
	s->login_user[0] = '\0';
}

int
session_auth_mech(const struct session *s)
{
	return s->auth_mech;
}
