/*
 * relay — the outbound SMTP client; see relay.h.
 *
 * One task per job: resolve → a list of targets (host, address) → connect to each until
 * one takes the transaction. One rconn per TCP connection, with its own reply parser,
 * output buffer and optional TLS. Timeouts follow RFC 5321 §4.5.3.2.
 */
#include "deliver/relay_int.h"

/* Must the current host be reached over authenticated TLS? 1: verified by the CA store,
 * 2: by DANE; 0: opportunistic. */
int
rl_task_tls_required(const struct rtask *t)
{
	if (outtls_required(t->tls_level))
		return 1;
	if (t->sts != NULL && t->sts->mode == MTASTS_ENFORCE)
		return 1;
	if (t->tls_level == OUTTLS_DANE && t->dane_state == DS_TLSA)
		return 2;
	if (t->tls_level == OUTTLS_DANE && t->dane_state == DS_ENCRYPT)
		return 3;	/* TLS, not authenticated */
	return 0;
}

/*
 * May the idle connection c carry t's message to the target tg? It must go to the same
 * address and port. When t needs anything of TLS (a level that requires it here, or
 * REQUIRETLS), c must also have been verified for that very MX host name: two names on
 * one address are two destinations, and a connection DANE-verified for mx-a says nothing
 * about mx-b. And what was verified must be what t needs now, or more: the certificate
 * (verify, MTA-STS) for a certificate, DANE for TLSA records, any verified TLS where only
 * encryption is required. REQUIRETLS alone (the host has no TLSA records and no enforced
 * policy) gets a verified connection for the same name, and rl_task_begin_tx judges it.
 */
static int
conn_fits(const struct rconn *c, const struct rtask *t, const struct target *tg)
{
	int need = rl_task_tls_required(t);

	if (!netaddr_equal(&c->t.addr, &tg->addr) || c->t.port != tg->port)
		return 0;
	if (need == 0 && !t->job->requiretls)
		return 1;
	if (c->tls_verified == 0 || strcasecmp(c->vhost, tg->host) != 0)
		return 0;
	switch (need) {
	case 1:
		return c->tls_verified == 1;
	case 2:
		return c->tls_verified == 2;
	default:
		return 1;	/* 3 (encryption only), or REQUIRETLS alone */
	}
}

/* ---- completion ---- */

static void
task_finish_later(struct rtask *t)
{
	struct relay *r = t->r;
	uint64_t one = 1;

	if (t->prev)
		t->prev->next = t->next;
	else
		r->tasks = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->prev = NULL;
	t->next = r->finished;
	r->finished = t;
	if (write(r->efd, &one, sizeof(one)) < 0) {
		/* cannot overflow */
	}
}

static void
finished_cb(struct ev_io *io, uint32_t events)
{
	struct relay *r = io->arg;
	uint64_t v;

	if (read(r->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	while (r->graveyard != NULL) {
		struct rconn *c = r->graveyard;
		r->graveyard = c->grave;
		if (c->tls != NULL)
			tls_conn_free(c->tls);
		free(c->out);
		free(c);
	}
	while (r->finished != NULL) {
		struct rtask *t = r->finished;
		r->finished = t->next;
		r->ntasks--;
		close(t->job->fd);
		t->job->fd = -1;
		if (t->converted)
			close(t->src_fd);
		t->job->done(t->job);
		free(t->send);
		free(t->utf8_refused);
		free(t->srcpts);
		free(t->targets);
		free(t->dane);
		free(t->sts);
		free(t);
	}
}

/* Give every recipient still without a result the same outcome. */
void
rl_task_fail_rest(struct rtask *t, enum dlv_outcome oc, const char *status, const char *diag)
{
	for (size_t i = 0; i < t->job->nrcpts; i++) {
		struct dlv_result *res = &t->job->results[i];
		if (res->status[0] != '\0')
			continue;
		res->outcome = oc;
		str_copy(res->status, sizeof(res->status), status);
		str_copy(res->diag, sizeof(res->diag), diag);
	}
}

void
rl_task_done(struct rtask *t)
{
	if (t->dq != NULL) {
		dns_cancel(t->dq);
		t->dq = NULL;
	}
	if (t->tq != NULL) {
		dns_cancel(t->tq);
		t->tq = NULL;
	}
	if (t->sq != NULL) {
		sts_cancel(t->sq);
		t->sq = NULL;
	}
	if (t->c != NULL) {
		t->c->task = NULL;
		t->c = NULL;
	}
	if (t->rtls_status[0] != '\0' && !t->other_failed && !t->err_perm)
		/* RFC 8689 4.2.1: no MX host could take it as it requires; then the client MUST
		 * NOT transmit it and MUST send a non-delivery notification: returned now, not
		 * retried (the same hosts would be asked the same way) */
		rl_task_fail_rest(t, DLV_PERM, t->rtls_status, t->err);
	rl_task_fail_rest(t, t->err_perm ? DLV_PERM : DLV_TEMP, t->err_perm ? "5.4.4" : "4.4.1",
	    t->err[0] ? t->err : "x-imsd; delivery did not complete");
	task_finish_later(t);
}

/* ---- targets ---- */

static int
target_is_self(const struct rtask *t, const struct target *tg)
{
	const struct conf *cf = &t->job->cfg->conf;
	const struct hostport *lists[3] = { cf->listen, cf->submission_listen, cf->smtps_listen };
	size_t ns[3] = { cf->nlisten, cf->nsubmission_listen, cf->nsmtps_listen };

	if (strcasecmp(tg->host, cf->hostname) == 0)
		return 1;
	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < ns[k]; i++) {
			const struct hostport *hp = &lists[k][i];
			if (hp->port != tg->port)
				continue;
			if (netaddr_equal(&hp->addr, &tg->addr) ||
			    (netaddr_is_any(&hp->addr) && netaddr_is_loopback(&tg->addr)))
				return 1;
		}
	return 0;
}

/* The TLSA answer for t->dane_host: what DANE asks of it (RFC 7672 §2.1, §2.2). */
static void
tlsa_done(void *arg, const struct dns_result *res)
{
	struct rtask *t = arg;
	const struct conf *cf = &t->job->cfg->conf;
	const char *what;
	size_t usable = 0;

	t->tq = NULL;
	if (res->status == DNS_TEMPFAIL || res->tlsa == NULL) {
		/* a failed lookup may hide records: never treat it as "no TLSA" */
		t->dane_state = DS_FAIL;
		snprintf(t->dane_why, sizeof(t->dane_why), "DANE: TLSA lookup failed: %s", res->why);
		what = "lookup-failed";
	} else if (!res->tlsa->ad || !cf->dnssec_trust_resolver) {
		t->dane_state = DS_NONE;
		what = "insecure";
	} else if (res->status == DNS_NXDOMAIN || res->tlsa->n == 0) {
		t->dane_state = DS_NONE;
		what = "no-tlsa";
	} else {
		for (size_t i = 0; i < res->tlsa->n; i++)
			usable += tlsa_usable(&res->tlsa->rr[i]) ? 1 : 0;
		if (usable == 0) {
			/* RFC 7672 2.2: TLSA records exist but none is usable: TLS is still
			 * mandatory (the records say the server has it), without authentication;
			 * never plaintext. Postfix's "encrypt" level does the same. */
			t->dane_state = DS_ENCRYPT;
			snprintf(t->dane_why, sizeof(t->dane_why), "DANE: the %zu TLSA records of %s "
			    "are all unusable (only DANE-TA(2) and DANE-EE(3) are): TLS without "
			    "authentication", res->tlsa->n, t->dane_host);
			what = "unusable";
		} else if (t->dane == NULL && (t->dane = malloc(sizeof(*t->dane))) == NULL) {
			t->dane_state = DS_FAIL;
			snprintf(t->dane_why, sizeof(t->dane_why), "DANE: out of memory");
			what = "lookup-failed";
		} else {
			memcpy(t->dane, res->tlsa, sizeof(*t->dane));
			t->dane_state = DS_TLSA;
			what = "tlsa";
		}
	}
	log_info("qid=%s event=relay-dane host=%s dane=%s usable=%zu", t->job->qid, t->dane_host,
	    what, usable);
	rl_task_next_target(t);
}

void
rl_task_next_target(struct rtask *t)
{
	struct relay *r = t->r;
	struct rconn *c;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	while (t->cur < t->ntargets) {
		struct target *tg = &t->targets[t->cur];

		if (t->tls_level == OUTTLS_DANE && strcmp(t->dane_host, tg->host) != 0) {
			/* RFC 7672 §2.2: the TLSA records of this MX host decide first */
			struct netaddr lit;
			char qn[300];
			str_copy(t->dane_host, sizeof(t->dane_host), tg->host);
			if (tg->host[0] == '[' || netaddr_parse(tg->host, &lit) == 0) {
				t->dane_state = DS_NONE;	/* an address has no TLSA name */
			} else {
				t->dane_state = DS_UNKNOWN;
				snprintf(qn, sizeof(qn), "_%u._tcp.%s", tg->port, tg->host);
				if ((t->tq = dns_resolve_tlsa(r->dns, qn, tlsa_done, t)) != NULL)
					return;
				t->dane_state = DS_FAIL;
				snprintf(t->dane_why, sizeof(t->dane_why), "DANE: cannot look up %s",
				    qn);
			}
		}
		if (t->tls_level == OUTTLS_DANE && t->dane_state == DS_FAIL) {
			char lh[LOG_VALUE_MAX], lw[LOG_VALUE_MAX];
			t->other_failed = 1;	/* DNS: nothing learned about its TLS */
			snprintf(t->err, sizeof(t->err), "x-imsd; %s: TLS required by %s for %s: %s",
			    tg->host, t->tls_source, t->job->domain, t->dane_why);
			log_info("qid=%s event=relay-attempt-failed host=%s reason=%s", t->job->qid,
			    log_value(lh, sizeof(lh), tg->host, strlen(tg->host)),
			    log_value(lw, sizeof(lw), t->err + 8, strlen(t->err + 8)));
			t->cur++;
			continue;
		}

		/* an idle connection to the same place is the cheapest way there */
		for (c = r->idle; c != NULL && !t->no_tls_for_cur; c = c->next) {
			if (conn_fits(c, t, tg)) {
				if (c->prev)
					c->prev->next = c->next;
				else
					r->idle = c->next;
				if (c->next)
					c->next->prev = c->prev;
				r->nidle--;
				c->prev = c->next = NULL;
				c->task = t;
				t->c = c;
				str_copy(c->t.host, sizeof(c->t.host), tg->host);
				rl_task_begin_tx(t);
				return;
			}
		}
		sl = netaddr_to_sockaddr(&tg->addr, tg->port, &ss);
		fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(t->err, sizeof(t->err), "x-imsd; socket: %s", strerror(errno));
			t->other_failed = 1;
			t->cur++;
			continue;
		}
		if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
			snprintf(t->err, sizeof(t->err), "x-imsd; connect to %s: %s", tg->host,
			    strerror(errno));
			t->other_failed = 1;
			close(fd);
			t->cur++;
			continue;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			break;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->r = r;
		c->t = *tg;
		c->st = RC_CONNECTING;
		c->no_tls = t->no_tls_for_cur;
		c->deadline = time(NULL) + T_CONNECT;
		c->task = t;
		smtpc_init(&c->sc, SMTPC_SMTP, t->job->cfg->conf.hostname, &rl_sc_ops, c);
		t->c = c;
		t->no_tls_for_cur = 0;
		if (ev_io_start(r->loop, &c->io, fd, EPOLLOUT, rl_rc_io, c) < 0) {
			close(fd);
			free(c);
			t->c = NULL;
			break;
		}
		c->anext = r->conns;
		if (r->conns)
			r->conns->aprev = c;
		r->conns = c;
		return;
	}
	rl_task_done(t);
}

static void
add_target(struct rtask *t, const char *host, const struct netaddr *a, uint16_t port)
{
	struct target *tg;

	if (t->ntargets >= TARGETS_MAX)
		return;
	if (t->ntargets == t->targets_cap) {
		/* most destinations have one or two addresses: no need to clear 64 slots */
		size_t cap = t->targets_cap ? t->targets_cap * 2 : 2;
		struct target *nt = realloc(t->targets, cap * sizeof(*nt));
		if (nt == NULL)
			return;
		t->targets = nt;
		t->targets_cap = cap;
	}
	tg = &t->targets[t->ntargets];
	str_copy(tg->host, sizeof(tg->host), host);
	tg->addr = *a;
	tg->port = port;
	if (target_is_self(t, tg)) {
		t->err_perm = 1;
		snprintf(t->err, sizeof(t->err), "x-imsd; mail for %s loops back to myself (%s)",
		    t->job->domain, host);
		return;
	}
	t->ntargets++;
}

static void
dns_done(void *arg, const struct dns_result *res)
{
	struct rtask *t = arg;
	uint16_t port = t->job->route.port;

	t->dq = NULL;
	switch (res->status) {
	case DNS_OK: {
		/* RFC 5321 §5.1: when we are one of the MX hosts, only hosts preferred over us
		 * may be used; none left means the mail loops back to us. */
		unsigned self_pref = UINT_MAX;
		for (size_t h = 0; h < res->nhosts; h++)
			for (size_t a = 0; a < res->hosts[h].naddrs; a++) {
				struct target tg;
				str_copy(tg.host, sizeof(tg.host), res->hosts[h].name);
				tg.addr = res->hosts[h].addrs[a];
				tg.port = port;
				if (target_is_self(t, &tg) && res->hosts[h].pref < self_pref)
					self_pref = res->hosts[h].pref;
			}
		for (size_t h = 0; h < res->nhosts; h++) {
			if (res->hosts[h].pref >= self_pref) {
				t->err_perm = 1;
				snprintf(t->err, sizeof(t->err), "x-imsd; mail for %s loops back to "
				    "myself (%s is an MX host of the domain)", t->job->domain,
				    res->hosts[h].name);
				continue;
			}
			if (t->sts != NULL && !mtasts_mx_match(t->sts, res->hosts[h].name)) {
				/* RFC 8461 §4.1: only MX hosts the policy names */
				char lh[LOG_VALUE_MAX];
				log_info("qid=%s event=relay-mta-sts-mismatch host=%s mode=%s "
				    "action=%s", t->job->qid, log_value(lh, sizeof(lh),
				    res->hosts[h].name, strlen(res->hosts[h].name)),
				    mtasts_mode_name(t->sts->mode), t->sts->mode == MTASTS_ENFORCE ?
				    "skip" : "deliver-anyway");
				if (t->sts->mode == MTASTS_ENFORCE) {
					snprintf(t->err, sizeof(t->err), "x-imsd; %s: TLS required by "
					    "%s for %s: MTA-STS policy (mode enforce): the policy does "
					    "not list this MX host", res->hosts[h].name, t->tls_source,
					    t->job->domain);
					if (t->job->requiretls && t->rtls_status[0] == '\0')
						str_copy(t->rtls_status, sizeof(t->rtls_status),
						    "5.7.10");
					continue;
				}
			}
			for (size_t a = 0; a < res->hosts[h].naddrs; a++)
				add_target(t, res->hosts[h].name, &res->hosts[h].addrs[a], port);
		}
		if (t->ntargets == 0 && t->err_perm)
			rl_task_fail_rest(t, DLV_PERM, "5.4.6", t->err);
		break;
	}
	case DNS_NXDOMAIN:
	case DNS_NOHOSTS:
		snprintf(t->err, sizeof(t->err), "x-imsd; %s", res->why);
		rl_task_fail_rest(t, DLV_PERM, "5.1.2", t->err);
		break;
	case DNS_NULLMX:
		snprintf(t->err, sizeof(t->err), "x-imsd; %s does not accept mail (null MX, RFC 7505)",
		    t->job->domain);
		rl_task_fail_rest(t, DLV_PERM, "5.1.10", t->err);
		break;
	default:
		snprintf(t->err, sizeof(t->err), "x-imsd; DNS lookup failed: %s", res->why);
		rl_task_fail_rest(t, DLV_TEMP, "4.4.3", t->err);
		break;
	}
	t->err_perm = 0;
	if (t->ntargets == 0) {
		rl_task_done(t);
		return;
	}
	rl_task_next_target(t);
}

/* The MX lookup of the job's domain. */
static void
task_lookup_mx(struct rtask *t)
{
	t->dq = dns_resolve_mail(t->r->dns, t->job->domain, dns_done, t);
	if (t->dq == NULL) {
		snprintf(t->err, sizeof(t->err), "x-imsd; cannot look up %s", t->job->domain);
		rl_task_done(t);
	}
}

/* MTA-STS discovery finished: p is the policy to apply (NULL: none). */
static void
sts_done(void *arg, const struct mtasts_policy *p, const char *note)
{
	struct rtask *t = arg;
	char ln[LOG_VALUE_MAX];

	t->sq = NULL;
	log_info("qid=%s event=relay-mta-sts domain=%s mode=%s note=%s", t->job->qid,
	    t->job->domain, p != NULL ? mtasts_mode_name(p->mode) : "no-policy",
	    log_value(ln, sizeof(ln), note, strlen(note)));
	if (p != NULL && p->mode != MTASTS_NONE) {
		if ((t->sts = malloc(sizeof(*t->sts))) == NULL) {
			snprintf(t->err, sizeof(t->err), "x-imsd; out of memory");
			rl_task_done(t);
			return;
		}
		*t->sts = *p;
	}
	task_lookup_mx(t);
}

/* ---- public ---- */

static void
agent_start(struct agent *a, struct dlv_job *job)
{
	relay_start(a->impl, job);
}

struct agent *
relay_agent(struct relay *r)
{
	return &r->agent;
}

struct relay *
relay_new(struct ev_loop *loop, struct dns *dns, char *err, size_t errlen)
{
	struct relay *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->agent.name = "smtp";
	r->agent.start = agent_start;
	r->agent.impl = r;
	r->loop = loop;
	r->dns = dns;
	if ((r->client_tls = tls_client_ctx_new(err, errlen)) == NULL) {
		free(r);
		return NULL;
	}
	if ((r->sts = sts_new(loop, dns)) == NULL) {
		snprintf(err, errlen, "MTA-STS: out of memory");
		tls_ctx_unref(r->client_tls);
		free(r);
		return NULL;
	}
	if ((r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    ev_io_start(loop, &r->eio, r->efd, EPOLLIN, finished_cb, r) < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		sts_free(r->sts);
		tls_ctx_unref(r->client_tls);
		free(r);
		return NULL;
	}
	return r;
}

void
relay_start(struct relay *r, struct dlv_job *job)
{
	struct rtask *t = calloc(1, sizeof(*t));
	const struct conf *cf = &job->cfg->conf;

	for (size_t i = 0; i < job->nrcpts; i++)
		job->results[i].status[0] = '\0';
	if (t == NULL)
		abort();	/* out of memory with a job in hand: nothing sane remains */
	t->r = r;
	t->job = job;
	t->tls_level = outtls_level(cf, job->domain, &t->tls_source, NULL);
	if (job->requiretls && t->tls_level != OUTTLS_DANE && t->tls_level != OUTTLS_MTASTS) {
		/* RFC 8689 §5: only DANE or MTA-STS can vouch for the next hop; DANE when a
		 * resolver is trusted for it, else the domain's MTA-STS policy */
		t->tls_level = cf->dnssec_trust_resolver && cf->ndns_servers > 0 ? OUTTLS_DANE :
		    OUTTLS_MTASTS;
		t->tls_source = "REQUIRETLS";
	}
	t->src_fd = job->fd;
	t->src_off = job->body_off;
	t->src_len = job->body_len;
	t->next = r->tasks;
	if (r->tasks)
		r->tasks->prev = t;
	r->tasks = t;
	r->ntasks++;
	if (job->route.via == VIA_HOST) {
		/* a named host (relayhost): its MX hosts, or written [host] its addresses */
		const struct route *rt = &job->route;
		struct netaddr a;
		if (netaddr_parse(rt->nexthop, &a) == 0) {
			add_target(t, rt->nexthop, &a, rt->port);
			if (t->ntargets == 0) {
				rl_task_fail_rest(t, DLV_PERM, "5.4.6", t->err);
				rl_task_done(t);
				return;
			}
			rl_task_next_target(t);
			return;
		}
		t->dq = rt->no_mx ? dns_resolve_host(r->dns, rt->nexthop, dns_done, t) :
		    dns_resolve_mail(r->dns, rt->nexthop, dns_done, t);
		if (t->dq == NULL) {
			snprintf(t->err, sizeof(t->err), "x-imsd; cannot look up %s", rt->nexthop);
			rl_task_done(t);
		}
		return;
	}
	if (job->route.via == VIA_LITERAL) {
		/* an address literal: no DNS (RFC 5321 §5.1) */
		char lit[256];
		struct netaddr a;
		const char *p = job->route.nexthop + 1;
		if (strncasecmp(p, "IPv6:", 5) == 0)
			p += 5;
		str_copy(lit, sizeof(lit), p);
		char *e = strchr(lit, ']');
		if (e != NULL)
			*e = '\0';
		if (netaddr_parse(lit, &a) == 0)
			add_target(t, job->route.nexthop, &a, job->route.port);
		if (t->ntargets == 0) {
			if (t->err[0] == '\0')
				snprintf(t->err, sizeof(t->err), "x-imsd; bad address literal %s",
				    job->route.nexthop);
			rl_task_fail_rest(t, DLV_PERM, t->err_perm ? "5.4.6" : "5.1.2", t->err);
			rl_task_done(t);
			return;
		}
		rl_task_next_target(t);
		return;
	}
	if (t->tls_level == OUTTLS_MTASTS) {
		/* the policy first: it says which MX hosts may be used (RFC 8461 §5) */
		if ((t->sq = sts_get(r->sts, job->cfg, job->domain, sts_done, t)) == NULL) {
			snprintf(t->err, sizeof(t->err), "x-imsd; MTA-STS: cannot look up the policy "
			    "of %s", job->domain);
			rl_task_done(t);
		}
		return;
	}
	task_lookup_mx(t);
}

void
relay_tick(struct relay *r, time_t now)
{
	struct rtask *t, *tn;
	struct rconn *c, *cn;

	for (c = r->idle; c != NULL; c = cn) {
		cn = c->next;
		if (now >= c->deadline) {
			/* polite, but do not wait for the answer */
			smtpc_quit(&c->sc);
			rl_rc_flush(c);
			rl_rc_close(c);
		}
	}
	for (t = r->tasks; t != NULL; t = tn) {
		tn = t->next;
		if (t->c != NULL && !t->c->dead && now >= t->c->deadline)
			rl_rc_fail(t->c, "timeout in state %s", t->c->st == RC_CONNECTING ? "connect" :
			    t->c->st == RC_HANDSHAKE ? "TLS handshake" : smtpc_state_name(&t->c->sc));
	}
	for (c = r->conns; c != NULL; c = cn) {
		/* a connection saying goodbye whose peer does not answer */
		cn = c->anext;
		if (c->task == NULL && c->st == RC_SMTP && now >= c->deadline)
			rl_rc_close(c);
	}
}

unsigned
relay_active(const struct relay *r)
{
	return r->ntasks;
}

void
relay_free(struct relay *r)
{
	while (r->idle != NULL)
		rl_rc_close(r->idle);
	while (r->tasks != NULL) {
		struct rtask *t = r->tasks;
		struct rconn *c = t->c;
		snprintf(t->err, sizeof(t->err), "x-imsd; server shutting down");
		if (c != NULL) {
			c->task = NULL;
			t->c = NULL;
			rl_rc_close(c);
		}
		rl_task_done(t);
	}
	while (r->conns != NULL)
		rl_rc_close(r->conns);	/* those that were saying goodbye */
	finished_cb(&r->eio, EPOLLIN);
	ev_io_stop(r->loop, &r->eio);
	close(r->efd);
	sts_free(r->sts);
	tls_ctx_unref(r->client_tls);
	free(r);
}
