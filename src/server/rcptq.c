/*
 * rcptq — recipient_check = transport: at RCPT, a local recipient whose mail goes over LMTP
 * is asked of that server (deliver/lmtp_probe) on a check thread (checkq: eight a loop,
 * made for waiting on peers, so a slow server never holds AUTH up), so that an unknown user
 * gets the server's 550 5.1.1 during the session instead of a bounce later, and a server
 * that cannot be asked gets 451 4.3.0 (the client tries again; nothing is accepted that
 * might bounce). Definite answers are cached server-wide (policy/rcptcache: 5 minutes for
 * "exists", one for "unknown"), so a burst of mail to one address asks once.
 */
#include "server/server_int.h"

struct rcpt_job {
	struct work w;
	struct conn *c;
	struct cfg *cfg;
	struct route rt;
	char addr[SMTP_PATH_MAX + 1];
	enum lmtp_probe_result res;
	char reply[400];
};

/* The reply line for a verdict that refuses (NULL: accept). */
static const char *
verdict_reply(enum lmtp_probe_result res, const char *addr, const char *said, char *buf,
    size_t len)
{
	char safe[400];

	log_safe(safe, sizeof(safe), addr, strlen(addr));
	switch (res) {
	case PROBE_EXISTS:
		return NULL;
	case PROBE_REFUSED: {
		/* the server's own code and status ("550 5.1.1 <x> User doesn't exist: x") */
		size_t sl = strlen(said) > 4 ? strcspn(said + 4, " ") : 0;
		if (strlen(said) >= 9 && said[0] == '5' && said[3] == ' ' && said[4] == '5' &&
		    said[5] == '.' && sl <= 9)
			snprintf(buf, len, "%.3s %.*s <%s>: Recipient address rejected by the mailbox "
			    "server (%.200s)", said, (int)sl, said + 4, safe,
			    said[4 + sl] ? said + 5 + sl : "");
		else
			snprintf(buf, len, "550 5.1.1 <%s>: Recipient address rejected by the mailbox "
			    "server", safe);
		return buf;
	}
	default:
		snprintf(buf, len, "451 4.3.0 <%s>: Recipient address not checked: the mailbox "
		    "server cannot be asked now; try again later", safe);
		return buf;
	}
}

static void
rcpt_run(struct work *w)
{
	struct rcpt_job *j = (struct rcpt_job *)w;

	if (__atomic_load_n(&j->c->dead, __ATOMIC_RELAXED))
		return;
	j->res = lmtp_probe(&j->rt, j->cfg->conf.hostname, j->addr, j->reply, sizeof(j->reply));
}

static void
rcpt_done(struct work *w)
{
	struct rcpt_job *j = (struct rcpt_job *)w;
	struct conn *c = j->c;
	struct server *srv = c->srv;
	char line[600], lto[LOG_VALUE_MAX], lr[LOG_VALUE_MAX];
	const char *refusal;

	c->busy--;
	if (j->res != PROBE_TEMP) {
		pthread_mutex_lock(&srv->rcachemu);
		if (srv->rcache == NULL && (srv->rcache = malloc(sizeof(*srv->rcache))) != NULL)
			rcptcache_init(srv->rcache);
		if (srv->rcache != NULL)
			rcptcache_put(srv->rcache, j->addr, j->res == PROBE_EXISTS ? RCPTC_EXISTS :
			    RCPTC_NO_SUCH_USER, j->reply, time(NULL));
		pthread_mutex_unlock(&srv->rcachemu);
	} else
		log_warn("event=recipient-check-failed to=%s server=%s reason=%s",
		    log_addr(lto, sizeof(lto), j->addr), j->rt.key,
		    log_value(lr, sizeof(lr), j->reply, strlen(j->reply)));
	if (c->dead)
		srv_conn_close(c);
	else {
		refusal = verdict_reply(j->res, j->addr, j->reply, line, sizeof(line));
		session_rcpt_done(c->s, refusal);
		srv_conn_process(c);
		srv_conn_kick(c);
	}
	cfg_unref(j->cfg);
	free(j);
}

void
srv_cb_rcpt_check(void *arg, const char *addr)
{
	struct conn *c = arg;
	struct server *srv = c->srv;
	struct route rt;
	struct rcpt_job *j;
	const char *said = NULL;
	char line[600], copy[400];
	int cached = RCPTC_UNKNOWN_ENTRY;

	if (c->cfg->conf.recipient_check != RCPT_CHECK_TRANSPORT) {
		session_rcpt_done(c->s, NULL);	/* from inside the callback: fine */
		return;
	}
	route_decide(&c->cfg->conf, c->cfg->transports, addr, &rt);
	if (rt.agent != ROUTE_LMTP) {
		session_rcpt_done(c->s, NULL);	/* imsd's own Maildir: no one to ask */
		return;
	}
	pthread_mutex_lock(&srv->rcachemu);
	if (srv->rcache != NULL)
		cached = rcptcache_get(srv->rcache, addr, time(NULL), &said);
	if (cached == RCPTC_NO_SUCH_USER)
		snprintf(copy, sizeof(copy), "%s", said ? said : "");
	pthread_mutex_unlock(&srv->rcachemu);
	if (cached == RCPTC_EXISTS) {
		session_rcpt_done(c->s, NULL);
		return;
	}
	if (cached == RCPTC_NO_SUCH_USER) {
		session_rcpt_done(c->s, verdict_reply(PROBE_REFUSED, addr, copy, line,
		    sizeof(line)));
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		session_rcpt_done(c->s, verdict_reply(PROBE_TEMP, addr, "", line, sizeof(line)));
		return;
	}
	j->w.run = rcpt_run;
	j->w.done = rcpt_done;
	j->c = c;
	j->cfg = cfg_ref(c->cfg);
	j->rt = rt;
	snprintf(j->addr, sizeof(j->addr), "%s", addr);
	j->res = PROBE_TEMP;
	snprintf(j->reply, sizeof(j->reply), "the connection went away");
	c->busy++;
	workq_submit(c->wk->checkq, &j->w);	/* its threads wait (on DNS, here on a peer) */
}
