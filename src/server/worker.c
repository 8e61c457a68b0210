/*
 * worker — the worker loops: the tick (timeouts, the tarpit, the queue manager), signals,
 * SIGHUP reload, the graceful stop.
 */
#include "server/server_int.h"

/* ---- configuration ---- */

void
srv_warn_not_in_effect(const struct conf *c)
{
	for (int k = 0; k < CK__COUNT; k++)
		if (conf_not_in_effect(c, (enum conf_key)k))
			log_warn("event=config-warning key=%s reason=\"set, but not yet in effect "
			    "in this version of imsd\"", conf_key_name((enum conf_key)k));
}

/* The same ADDR:PORT lists, in the same order (metrics_listen at a reload). */
static int
hostports_equal(const struct hostport *a, size_t na, const struct hostport *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (!netaddr_equal(&a[i].addr, &b[i].addr) || a[i].port != b[i].port)
			return 0;
	return 1;
}

static int
listeners_equal(const struct conf *a, const struct conf *b)
{
	if (a->nlisten != b->nlisten)
		return 0;
	for (size_t i = 0; i < a->nlisten; i++)
		if (!netaddr_equal(&a->listen[i].addr, &b->listen[i].addr) ||
		    a->listen[i].port != b->listen[i].port)
			return 0;
	return 1;
}

static void
server_reload(struct server *srv)
{
	char err[1024];
	struct cfg *n;

	/* systemd (Type=notify): reloading until READY=1 again, whatever the outcome */
	sd_notify(0, "RELOADING=1");
	if ((n = cfg_load(srv->conf_path, 1, err, sizeof(err))) == NULL) {
		log_error("event=reload-failed reason=\"%s\" action=kept-old-configuration", err);
		sd_notifyf(0, "READY=1\nSTATUS=reload failed, serving with the previous "
		    "configuration: %s", err);
		return;
	}
	if (!listeners_equal(&srv->cfg->conf, &n->conf))
		log_warn("event=reload-warning reason=\"listen changed; new listeners take effect "
		    "after a restart\"");
	if (!hostports_equal(srv->cfg->conf.metrics_listen, srv->cfg->conf.nmetrics_listen,
	    n->conf.metrics_listen, n->conf.nmetrics_listen))
		log_warn("event=reload-warning reason=\"metrics_listen changed; takes effect after "
		    "a restart\"");
	if (strcmp(srv->cfg->conf.spool_dir, n->conf.spool_dir) != 0)
		log_warn("event=reload-warning reason=\"spool_dir changed; takes effect after a "
		    "restart\"");
	log_set_level(n->conf.log_level);
	srv_warn_not_in_effect(&n->conf);
	qmgr_set_cfg(srv->qmgr, n);
	pickup_set_limits(srv->pickup, n->conf.message_size_limit, n->conf.queue_lifetime);
	pthread_mutex_lock(&srv->cfgmu);
	struct cfg *old = srv->cfg;
	srv->cfg = n;
	pthread_mutex_unlock(&srv->cfgmu);
	cfg_unref(old);
	srv_auth_backend_probe(srv->workers[0].authq, n);
	log_info("event=reloaded config=%s", n->conf.source);
	sd_notify(0, "READY=1\nSTATUS=serving");
}

/* ---- signals, tick ---- */

/* This worker stops: no more accepting; idle sessions get 421 4.3.2. */
static void
worker_begin_stop(struct worker *wk)
{
	struct conn *c, *next;

	if (wk->stopping)
		return;
	wk->stopping = 1;
	srv_close_listeners(wk);
	for (c = wk->conns; c != NULL; c = next) {
		next = c->next;
		if (session_state(c->s) == SS_COMMIT)
			continue;	/* gets its 250, then the 421 below on the next tick */
		session_shutdown(c->s);
		srv_conn_process(c);
	}
}

static void
wake_cb(struct ev_io *io, uint32_t events)
{
	struct worker *wk = io->arg;
	uint64_t v;

	if (read(wk->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	if (__atomic_load_n(&wk->srv->stopping, __ATOMIC_ACQUIRE))
		worker_begin_stop(wk);
}

/* On worker 0 (the signal): every worker stops within SPEC's 10 seconds. */
static void
server_begin_stop(struct server *srv)
{
	if (srv->stopping)
		return;
	srv->stop_deadline = time(NULL) + DRAIN_SECONDS;
	srv->stop_relay_deadline = time(NULL) + RELAY_DRAIN_SECONDS;
	__atomic_store_n(&srv->stopping, 1, __ATOMIC_RELEASE);
	sd_notify(0, "STOPPING=1");
	log_info("event=stopping connections=%u commits_in_flight=%u",
	    __atomic_load_n(&srv->nconns, __ATOMIC_RELAXED),
	    __atomic_load_n(&srv->commits_in_flight, __ATOMIC_RELAXED));
	for (int i = 1; i < srv->nworkers; i++) {
		uint64_t one = 1;
		if (write(srv->workers[i].wakefd, &one, sizeof(one)) < 0) {
			/* cannot overflow */
		}
	}
	worker_begin_stop(&srv->workers[0]);
}

static void
signal_cb(struct ev_io *io, uint32_t events)
{
	struct server *srv = io->arg;
	struct signalfd_siginfo si;

	while (read(srv->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			server_reload(srv);
		else
			server_begin_stop(srv);
	}
}

void
srv_worker_tick(void *arg)
{
	struct worker *wk = arg;
	struct server *srv = wk->srv;
	time_t now = time(NULL);
	struct conn *c, *next;

	if (!wk->stopping && __atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE))
		worker_begin_stop(wk);	/* the wake-up was missed: never mind */
	for (c = wk->conns; c != NULL; c = next) {
		next = c->next;
		/* ">": auth_fail_at is whole seconds, so ">=" could answer after only 1 s of
		 * the 2 (seen as a 1.4 s delay under load); this way it is 2 to 3 s */
		if (c->auth_fail_at != 0 && now > c->auth_fail_at) {
			c->auth_fail_at = 0;
			session_auth_verdict(c->s, c->auth_locked ? SESSION_AUTH_LOCKED : 0, NULL,
			    c->auth_why[0] ? c->auth_why : NULL);
			c->auth_why[0] = '\0';
			c->auth_locked = 0;
			srv_conn_process(c);
			if (c->dead)
				continue;
		}
		if (c->hold_until != 0 && now >= c->hold_until) {
			c->hold_until = 0;
			srv_conn_process(c);
			if (c->dead)
				continue;
		}
		if (c->tstate == CT_HANDSHAKE) {
			if (now >= c->deadline || wk->stopping) {
				log_info("sid=%s event=tls-handshake-failed reason=timeout", c->sid);
				metrics_inc(M_TLS_FAIL_TIMEOUT);
				session_disconnected(c->s);
				srv_conn_close(c);
			}
			continue;
		}
		if (wk->stopping && session_state(c->s) != SS_COMMIT &&
		    session_state(c->s) != SS_CLOSING) {
			session_shutdown(c->s);
			srv_conn_process(c);
			continue;
		}
		if (now >= c->deadline && session_state(c->s) != SS_COMMIT) {
			if (c->closing) {
				/* The client does not read its 421: give up on it. */
				srv_conn_close(c);
				continue;
			}
			session_timeout(c->s);
			c->deadline = now + 5;
			srv_conn_process(c);
		}
	}
	srv_pconn_tick(wk, now);
	if (wk->freed >= TRIM_AFTER) {
		/* A flood's buffers were freed: return the memory instead of holding the peak. */
		wk->freed = 0;
		TRIM_MEMORY();
	}
	if (wk->id == 0) {
		if (now % 60 == 0) {
			pthread_mutex_lock(&srv->climu);
			clients_expire(srv->clients, now);
			pthread_mutex_unlock(&srv->climu);
		}
		if (!srv->stopping)
			qmgr_tick(srv->qmgr, now);
		relay_tick(srv->relay, now);
		dns_tick(srv->dns);
		metrics_http_tick(srv->metrics, now);
	}
	if (wk->stopping && (srv_worker_drained(wk) || now >= srv->stop_deadline))
		ev_loop_break(wk->loop);
}

void *
srv_worker_main(void *arg)
{
	struct worker *wk = arg;
	char name[16];

	snprintf(name, sizeof(name), "imsd-loop-%d", wk->id);
	pthread_setname_np(pthread_self(), name);	/* top -H, /proc/PID/task/N/comm */
	ev_loop_run(wk->loop, srv_worker_tick, srv_worker_reap, wk);
	return NULL;
}

int
srv_server_setup_signals(struct server *srv)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Blocked before any thread starts, so only the signalfd sees them. */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	srv->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (srv->sigfd < 0)
		return -1;
	return ev_io_start(srv->loop, &srv->sigio, srv->sigfd, EPOLLIN, signal_cb, srv);
}

/* Every session needs a descriptor (two while it relays nothing, one for its spool file in
 * DATA): raise the soft limit to the hard one and say when max_connections cannot fit. */
void
srv_raise_nofile(const struct conf *cf)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)cf->max_connections * 2 + 64 > rl.rlim_cur)
		log_warn("event=fd-limit nofile=%llu max_connections=%u effect=\"past about %llu "
		    "sessions accept fails; raise the limit (LimitNOFILE=) or lower max_connections\"",
		    (unsigned long long)rl.rlim_cur, cf->max_connections,
		    (unsigned long long)(rl.rlim_cur > 64 ? (rl.rlim_cur - 64) / 2 : 0));
}

/* workers = 0: one event loop per CPU this process may run on. */
int
srv_worker_count(const struct conf *cf)
{
	cpu_set_t set;
	int n = (int)cf->workers;

	if (n > 0)
		return n;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		n = CPU_COUNT(&set);
	else
		n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : n;
}

int
srv_worker_init(struct server *srv, struct worker *wk, int id)
{
	wk->id = id;
	wk->srv = srv;
	wk->cevfd = wk->wakefd = -1;
	wk->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if ((wk->loop = ev_loop_new()) == NULL ||
	    (wk->cevfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    (wk->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    ev_io_start(wk->loop, &wk->cio, wk->cevfd, EPOLLIN, srv_commit_done_cb, wk) < 0 ||
	    ev_io_start(wk->loop, &wk->wakeio, wk->wakefd, EPOLLIN, wake_cb, wk) < 0)
		return -1;
	return 0;
}

/* Scrape-time values for metrics_listen (worker 0, which owns the queue manager). */
void
srv_metrics_collect(void *arg, struct metrics_dynamic *d)
{
	struct server *srv = arg;
	time_t oldest;

	if (srv->qmgr == NULL)
		return;
	d->have_queue = 1;
	qmgr_stats(srv->qmgr, &d->queue_messages, &d->queue_recipients, &oldest);
	d->queue_oldest_age = oldest != 0 && time(NULL) > oldest ? (uint64_t)(time(NULL) - oldest) : 0;
}
