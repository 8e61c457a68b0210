/*
 * checks — mail authentication around the sessions: DNS lists at connect, SPF at MAIL,
 * DKIM/DMARC checks and DKIM signing at the end of the message, each on a worker thread.
 * The decisions are mailauth/authcheck's; this is where they meet the sessions.
 */
#include "server/server_int.h"

static void mail_check_go(struct conn *c);

/* ---- mail authentication: DNS lists at connect, SPF at MAIL, checks at the end of DATA,
 * DKIM signing. The decisions are mailauth/authcheck's; this is where they meet the sessions. */

/* Inbound checks for this transaction? Mail from the Internet: not loopback, not a relay
 * network, not an authenticated client. */
int
srv_conn_checks(const struct conn *c, const struct session_tx *tx)
{
	return c->cfg->conf.inbound_checks && !c->exempt && !tx->authenticated;
}

/* DKIM signing for this transaction? Keys, and a client allowed to send as us; or an
 * authenticated client whose From: sender_login_maps checks first. */
int
srv_conn_signs(const struct conn *c, const struct session_tx *tx)
{
	return (c->cfg->dkim.n > 0 && (c->exempt || tx->authenticated)) ||
	    (tx->authenticated && c->cfg->senderlogins != NULL);
}

struct dnsbl_job {
	struct work w;
	struct conn *c;
	struct cfg *cfg;
	struct netaddr addr;
	struct dnsbl_result r;
};

/* A job whose client has gone does no work (it may have waited behind slow ones; at stop
 * every queued job runs, and must then be quick). c stays allocated while busy > 0. */
static int
job_orphaned(struct conn *c)
{
	return __atomic_load_n(&c->dead, __ATOMIC_RELAXED) != 0;
}

static void
dnsbl_run(struct work *w)
{
	struct dnsbl_job *j = (struct dnsbl_job *)w;

	if (job_orphaned(j->c))
		return;
	authcheck_dnsbl(&j->cfg->conf, &j->addr, &j->r);
}

static void
dnsbl_done(struct work *w)
{
	struct dnsbl_job *j = (struct dnsbl_job *)w;
	struct conn *c = j->c;

	c->busy--;
	c->dnsbl_state = 2;
	if (j->r.log[0] || j->r.listed)
		log_info("sid=%s event=dnsbl listed=%s score=%d %s", c->sid, j->r.listed ? "yes" :
		    "no", j->r.score, j->r.log);
	if (j->r.listed)
		c->dnsbl_reply = strdup(j->r.reply);
	if (c->dead)
		srv_conn_close(c);
	else if (c->mail_wait) {
		c->mail_wait = 0;
		mail_check_go(c);
	}
	cfg_unref(j->cfg);
	free(j);
}

/* At connect: ask the DNS lists, in the background; MAIL waits for the answer. */
void
srv_dnsbl_start(struct conn *c)
{
	struct dnsbl_job *j;

	if (c->exempt || c->cfg->conf.ndnsbl == 0 || (j = calloc(1, sizeof(*j))) == NULL)
		return;
	j->w.run = dnsbl_run;
	j->w.done = dnsbl_done;
	j->c = c;
	j->cfg = cfg_ref(c->cfg);
	j->addr = c->peer;
	c->dnsbl_state = 1;
	c->busy++;
	workq_submit(c->wk->dnsblq, &j->w);
}

struct spf_job {
	struct work w;
	struct conn *c;
	struct cfg *cfg;
	struct netaddr addr;
	char helo[256];
	char sender[SMTP_PATH_MAX + 1];
	struct spf_verdict v;
	enum auth_action act;
	char reply[512];
};

static void
spf_run(struct work *w)
{
	struct spf_job *j = (struct spf_job *)w;

	if (job_orphaned(j->c))
		return;
	j->act = authcheck_spf_mail(&j->cfg->conf, &j->addr, j->helo, j->sender, &j->v, j->reply,
	    sizeof(j->reply));
}

static void
spf_done(struct work *w)
{
	struct spf_job *j = (struct spf_job *)w;
	struct conn *c = j->c;

	c->busy--;
	if (c->dead)
		srv_conn_close(c);
	else {
		free(c->spf);
		if ((c->spf = malloc(sizeof(*c->spf))) != NULL)
			*c->spf = j->v;
		session_mail_done(c->s, j->act == AUTH_REJECT ? j->reply : NULL);
		srv_conn_process(c);
		srv_conn_kick(c);
	}
	cfg_unref(j->cfg);
	free(j);
}

/* MAIL may go on once the DNS lists answered: refuse a listed client, run SPF when
 * spf_reject needs its verdict now, else accept. */
static void
mail_check_go(struct conn *c)
{
	struct spf_job *j;

	if (c->dnsbl_reply != NULL) {
		session_mail_done(c->s, c->dnsbl_reply);
		srv_conn_process(c);
		srv_conn_kick(c);
		return;
	}
	if (!c->cfg->conf.spf_reject || !c->cfg->conf.inbound_checks ||
	    (j = calloc(1, sizeof(*j))) == NULL) {
		session_mail_done(c->s, NULL);
		srv_conn_process(c);
		srv_conn_kick(c);
		return;
	}
	j->w.run = spf_run;
	j->w.done = spf_done;
	j->c = c;
	j->cfg = cfg_ref(c->cfg);
	j->addr = c->peer;
	snprintf(j->helo, sizeof(j->helo), "%s", session_helo(c->s));
	snprintf(j->sender, sizeof(j->sender), "%s", session_mail_sender(c->s));
	c->busy++;
	workq_submit(c->wk->checkq, &j->w);
}

void
srv_cb_mail_check(void *arg, const char *sender, int authenticated)
{
	struct conn *c = arg;

	free(c->spf);
	c->spf = NULL;
	if (authenticated && c->cfg->senderlogins != NULL &&
	    !senderlogins_owns(c->cfg->senderlogins, session_auth_user(c->s), sender)) {
		/* sender_login_maps: a login sends only as the addresses it owns */
		char reply[700], ls[LOG_VALUE_MAX], lu[LOG_VALUE_MAX];
		const char *u = session_auth_user(c->s);
		log_value(ls, sizeof(ls), sender, strlen(sender));
		log_value(lu, sizeof(lu), u, strlen(u));
		log_info("sid=%s event=sender-login-mismatch stage=mail from=%s login=%s", c->sid,
		    ls, lu);
		snprintf(reply, sizeof(reply), "553 5.7.1 <%s>: Sender address rejected: not "
		    "owned by user %s", sender, lu);
		session_mail_done(c->s, reply);
		return;
	}
	if (c->exempt || authenticated) {
		session_mail_done(c->s, NULL);	/* from inside the callback: fine */
		return;
	}
	if (c->dnsbl_state == 1) {
		c->mail_wait = 1;		/* dnsbl_done goes on */
		return;
	}
	if (c->dnsbl_reply == NULL && !c->cfg->conf.spf_reject) {
		session_mail_done(c->s, NULL);
		return;
	}
	mail_check_go(c);
}

struct check_job {
	struct work w;
	struct conn *c;
	struct cfg *cfg;
	int sign;			/* else: inbound checks */
	int fd;				/* the incoming file, for reading */
	uint64_t off, len;
	struct netaddr addr;
	char helo[256];
	char sender[SMTP_PATH_MAX + 1];
	struct spf_verdict spf;
	int have_spf;
	unsigned pct;
	/* results */
	struct authcheck_out out;
	char *sig;
	size_t siglen;
	int nsig;
	char err[256];
	char domains[2][256];
	size_t ndomains;
	char login[256];		/* sender_login_maps: the AUTH login to check From for */
	char refuse[600];		/* its verdict: the reply refusing the message, or "" */
};

static void
check_run(struct work *w)
{
	struct check_job *j = (struct check_job *)w;

	if (job_orphaned(j->c))
		return;		/* check_done only cleans up */
	if (j->sign) {
		const char *d[2] = { j->domains[0], j->domains[1] };
		if (j->login[0] != '\0') {
			/* sender_login_maps: signed (and sent) only when the login owns every
			 * From: address */
			char addr[MHDR_DOMAINS_MAX][MHDR_ADDR_MAX], la[LOG_VALUE_MAX];
			size_t n = 0, i;
			int r = authcheck_from_addrs(j->fd, j->off, j->len, addr, &n);
			for (i = 0; r == 0 && i < n; i++)
				if (!senderlogins_owns(j->cfg->senderlogins, j->login, addr[i]))
					break;
			if (r < 0 || n == 0)
				snprintf(j->refuse, sizeof(j->refuse), "550 5.7.1 The message needs "
				    "exactly one From: field with addresses that user %s owns",
				    j->login);
			else if (i < n)
				snprintf(j->refuse, sizeof(j->refuse), "550 5.7.1 From: address %s is "
				    "not owned by user %s", log_value(la, sizeof(la), addr[i],
				    strlen(addr[i])), j->login);
			if (j->refuse[0] != '\0')
				return;
			if (j->cfg->dkim.n == 0)
				return;		/* checked; nothing to sign with */
		}
		j->ndomains = authcheck_sign_domains(&j->cfg->dkim, j->fd, j->off, j->len, j->sender,
		    j->domains);
		if (j->ndomains > 0 && dkim_sign_message(&j->cfg->dkim, d, j->ndomains, j->fd, j->off,
		    j->len, &j->sig, &j->siglen, &j->nsig, j->err, sizeof(j->err)) < 0)
			j->nsig = -1;
		return;
	}
	struct authcheck_in in = {
		.conf = &j->cfg->conf, .client = j->addr, .helo = j->helo, .sender = j->sender,
		.fd = j->fd, .off = j->off, .len = j->len,
		.spf_mfrom = j->have_spf ? &j->spf : NULL, .random_pct = j->pct,
	};
	authcheck_inbound(&in, &j->out);
}

static void
check_done(struct work *w)
{
	struct check_job *j = (struct check_job *)w;
	struct conn *c = j->c;
	const char *prepend = NULL;
	size_t plen = 0;

	c->busy--;
	close(j->fd);
	if (c->dead || session_state(c->s) != SS_COMMIT || c->w.fd < 0) {
		if (c->dead)
			srv_conn_close(c);
		goto out;
	}
	if (j->sign && j->refuse[0] != '\0') {
		char lu[LOG_VALUE_MAX], lr[LOG_VALUE_MAX];
		log_info("sid=%s qid=%s event=sender-login-mismatch login=%s reply=%s", c->sid,
		    c->w.qid, log_value(lu, sizeof(lu), j->login, strlen(j->login)),
		    log_value(lr, sizeof(lr), j->refuse, strlen(j->refuse)));
		srv_cb_tx_abort(c);
		session_commit_refused(c->s, j->refuse);
		srv_conn_process(c);
		srv_conn_kick(c);
		goto out;
	}
	if (j->sign) {
		if (j->nsig < 0)
			log_error("sid=%s qid=%s event=dkim-sign-error reason=%s", c->sid, c->w.qid,
			    j->err);
		else if (j->nsig > 0) {
			log_info("sid=%s qid=%s event=dkim-signed domains=%s%s%s signatures=%d",
			    c->sid, c->w.qid, j->domains[0], j->ndomains > 1 ? "," : "",
			    j->ndomains > 1 ? j->domains[1] : "", j->nsig);
			prepend = j->sig;
			plen = j->siglen;
		}
	} else {
		log_info("sid=%s qid=%s event=auth-checks %s%s", c->sid, c->w.qid, j->out.log,
		    j->out.action == AUTH_REJECT ? " action=reject" :
		    j->out.action == AUTH_TEMPFAIL ? " action=tempfail" : "");
		if (j->out.action != AUTH_ACCEPT) {
			srv_cb_tx_abort(c);
			session_commit_refused(c->s, j->out.reply);
			srv_conn_process(c);
			srv_conn_kick(c);
			goto out;
		}
		prepend = j->out.ar;
		plen = j->out.ar ? strlen(j->out.ar) : 0;
	}
	if (prepend != NULL && queue_prepend(&c->w, prepend, plen, c->werr, sizeof(c->werr)) < 0)
		log_error("sid=%s qid=%s event=queue-error reason=\"%s\"", c->sid, c->w.qid,
		    c->werr);	/* the message still goes: without the field */
	srv_commit_now(c);
	srv_conn_kick(c);
out:
	free(j->sig);
	authcheck_out_free(&j->out);
	cfg_unref(j->cfg);
	free(j);
}

void
srv_cb_tx_commit(void *arg, struct session_tx *tx)
{
	struct conn *c = arg;
	struct check_job *j;
	int checks = srv_conn_checks(c, tx), sign = !checks && srv_conn_signs(c, tx);

	if ((!checks && !sign) || !c->w.has_skip || (j = calloc(1, sizeof(*j))) == NULL) {
		srv_commit_now(c);
		return;
	}
	if ((j->fd = queue_open_incoming(&c->srv->q, c->w.qid)) < 0) {
		free(j);
		srv_commit_now(c);
		return;
	}
	j->w.run = check_run;
	j->w.done = check_done;
	j->c = c;
	j->cfg = cfg_ref(c->cfg);
	j->sign = sign;
	j->off = c->w.hdrlen + c->w.skip;
	j->len = c->w.bodylen;
	j->addr = c->peer;
	snprintf(j->helo, sizeof(j->helo), "%s", session_helo(c->s));
	snprintf(j->sender, sizeof(j->sender), "%s", tx->sender);
	if (sign && tx->authenticated && c->cfg->senderlogins != NULL)
		snprintf(j->login, sizeof(j->login), "%s", session_auth_user(c->s));
	if (c->spf != NULL) {
		j->spf = *c->spf;
		j->have_spf = 1;
	}
	j->pct = (unsigned)(random() % 100);
	c->busy++;
	workq_submit(c->wk->checkq, &j->w);
}
