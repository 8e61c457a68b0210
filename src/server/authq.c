/*
 * authq — SMTP AUTH credentials checked on threads: auth_users_file (crypt) or
 * Dovecot's auth socket; the answer goes back to the session on its loop.
 */
#include "server/server_int.h"

struct auth_job {
	struct work w;
	struct conn *c;
	struct cfg *cfg;
	char user[256];
	char pass[256];
	int mech;		/* enum sasl_mech */
	struct session_peer sp;
	int secured;
	char sid[24];
	time_t started;		/* a failure is answered AUTH_FAIL_DELAY after this */
	int ok;			/* 1, 0, or SESSION_AUTH_TEMPFAIL */
	char canon[256];	/* Dovecot: the account's name */
	char why[128];		/* Dovecot: its reason, or what went wrong */
};

static void
auth_run(struct work *w)
{
	struct auth_job *j = (struct auth_job *)w;

	if (j->cfg->dvauth != NULL) {
		struct dvauth_req r = {
			.mech = j->mech, .user = j->user, .pass = j->pass, .session = j->sid,
			.local = &j->sp.local, .remote = &j->sp.remote,
			.lport = j->sp.local_port, .rport = j->sp.remote_port,
			.secured = j->secured,
		};

		switch (dvauth_verify(j->cfg->dvauth, &r, j->canon, sizeof(j->canon), j->why,
		    sizeof(j->why))) {
		case DVAUTH_OK: j->ok = 1; break;
		case DVAUTH_FAIL: j->ok = 0; break;
		default: j->ok = SESSION_AUTH_TEMPFAIL; break;
		}
	} else
		j->ok = authusers_verify(j->cfg->authusers, j->user, j->pass);
	explicit_bzero(j->pass, sizeof(j->pass));
}

static void
auth_done(struct work *w)
{
	struct auth_job *j = (struct auth_job *)w;
	struct conn *c = j->c;

	c->busy--;
	if (j->ok != 0)
		srv_cl_auth_refund(c->srv, &c->peer);	/* see srv_cb_auth_check */
	if (c->dead)
		srv_conn_close(c);
	else if (j->ok != 0) {
		session_auth_verdict(c->s, j->ok, j->canon[0] ? j->canon : NULL,
		    j->why[0] ? j->why : NULL);
		srv_conn_process(c);
		srv_conn_kick(c);
	} else {
		snprintf(c->auth_why, sizeof(c->auth_why), "%s", j->why);
		/* the tick answers, AUTH_FAIL_DELAY after the check began: Dovecot holds back
		 * its own failures (auth_failure_delay, 2 s), which then count toward ours */
		c->auth_fail_at = j->started + AUTH_FAIL_DELAY;
	}
	cfg_unref(j->cfg);
	free(j);
}

void
srv_cb_auth_check(void *arg, const char *user, const char *pass)
{
	struct conn *c = arg;
	struct auth_job *j = calloc(1, sizeof(*j));

	if (j == NULL || (c->cfg->authusers == NULL && c->cfg->dvauth == NULL)) {
		free(j);
		c->auth_why[0] = '\0';
		c->auth_fail_at = time(NULL) + AUTH_FAIL_DELAY;
		return;
	}
	/* Counted as a failure now, refunded if good: checks in flight at once (from parallel
	 * sessions, on any worker) cannot overrun the client's budget. */
	if (!srv_cl_auth_begin(c->srv, &c->peer)) {
		/* This address spent its failures across sessions: no check, no answer on the
		 * password; the tick closes the session after the usual delay. */
		free(j);
		c->auth_locked = 1;
		c->auth_fail_at = time(NULL) + AUTH_FAIL_DELAY;
		return;
	}
	j->w.run = auth_run;
	j->w.done = auth_done;
	j->c = c;
	j->cfg = cfg_ref(c->cfg);
	snprintf(j->user, sizeof(j->user), "%s", user);
	snprintf(j->pass, sizeof(j->pass), "%s", pass);
	j->mech = session_auth_mech(c->s);
	j->sp = c->sp;
	j->secured = c->tstate == CT_TLS || netaddr_is_loopback(&c->sp.local);
	snprintf(j->sid, sizeof(j->sid), "%s", c->sid);
	j->started = time(NULL);
	c->busy++;
	workq_submit(c->wk->authq, &j->w);
}

/* Threads per worker that check AUTH. Hashing a password takes milliseconds; Dovecot holds
 * each failure back for its auth_failure_delay (2 s) before answering, so with Dovecot a
 * thread waits that long per failed login and more are needed to keep good logins moving.
 * XXX chosen at startup: a reload that switches auth_backend keeps the old number. */
int
srv_auth_threads(const struct server *srv)
{
	if (srv->cfg->conf.auth_backend == AUTH_BACKEND_DOVECOT)
		return AUTH_THREADS_DOVECOT;
	return srv->nworkers == 1 ? 2 : 1;
}

/* auth_backend = dovecot: learn Dovecot's mechanisms before the first EHLO needs them. */
struct probe_job {
	struct work w;
	struct cfg *cfg;
	int ok;
	char why[256];
};

static void
probe_run(struct work *w)
{
	struct probe_job *j = (struct probe_job *)w;

	j->ok = dvauth_probe(j->cfg->dvauth, j->why, sizeof(j->why)) == 0;
}

static void
probe_done(struct work *w)
{
	struct probe_job *j = (struct probe_job *)w;
	char why[LOG_VALUE_MAX];
	int known;
	unsigned m = dvauth_mechs(j->cfg->dvauth, &known);

	if (!j->ok)
		log_warn("event=auth-backend-unavailable backend=dovecot socket=%s reason=%s "
		    "action=\"AUTH gets 454 4.7.0 until it answers\"", dvauth_path(j->cfg->dvauth),
		    log_value(why, sizeof(why), j->why, strlen(j->why)));
	else if (m == 0)
		log_warn("event=auth-backend-warning backend=dovecot socket=%s reason=\"Dovecot "
		    "offers neither PLAIN nor LOGIN\" action=\"AUTH not offered\"",
		    dvauth_path(j->cfg->dvauth));
	else
		log_info("event=auth-backend-ready backend=dovecot socket=%s mechanisms=%s%s%s",
		    dvauth_path(j->cfg->dvauth), m & (1u << SASL_PLAIN) ? "PLAIN" : "",
		    m == ((1u << SASL_PLAIN) | (1u << SASL_LOGIN)) ? "," : "",
		    m & (1u << SASL_LOGIN) ? "LOGIN" : "");
	cfg_unref(j->cfg);
	free(j);
}

void
srv_auth_backend_probe(struct workq *q, struct cfg *cfg)
{
	struct probe_job *j;

	if (cfg->dvauth == NULL || (j = calloc(1, sizeof(*j))) == NULL)
		return;
	j->w.run = probe_run;
	j->w.done = probe_done;
	j->cfg = cfg_ref(cfg);
	workq_submit(q, &j->w);
}
