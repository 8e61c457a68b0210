/*
 * server — `imsd run`; see server.h.
 *
 * Threads: `workers` event loops (one per CPU by default), each on its own thread and each
 * owning the sessions it accepted: their sockets, TLS, timers and AUTH checks. They share
 * the listening sockets (each registered in every loop with EPOLLEXCLUSIVE, so one loop is
 * woken per connection), the per-client table (under climu) and the memory count (atomic).
 * The commit thread makes batches of finished messages durable (group commit) and hands
 * each job back to the loop of its session through that loop's eventfd. Worker 0 also runs
 * the queue manager, the relay client, DNS, the control socket and the signalfd; the other
 * loops pass it the ids of the messages they committed (the inbox). The delivery threads
 * write Maildirs.
 */
#include "server/server_int.h"

/* Serve; see server.h. */
int
server_run(const char *conf_path)
{
	struct server srv;
	char err[1024];
	int n;

	memset(&srv, 0, sizeof(srv));
	srv.conf_path = conf_path;
	srv.sigfd = -1;
	pthread_mutex_init(&srv.cfgmu, NULL);
	pthread_mutex_init(&srv.climu, NULL);
	if (conf_path == NULL && privs_embedded_prepare(err, sizeof(err)) < 0) {
		char lerr[LOG_VALUE_MAX];
		fatal("event=startup-error reason=%s", log_value(lerr, sizeof(lerr), err,
		    strlen(err)));
	}
	if ((srv.cfg = cfg_load(conf_path, 1, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imsd: %s\n", err);
		return 1;
	}
	log_set_level(srv.cfg->conf.log_level);
	srv_warn_not_in_effect(&srv.cfg->conf);
	struct privs pv;
	if (privs_plan(&srv.cfg->conf, &pv, err, sizeof(err)) < 0) {
		fprintf(stderr, "imsd: %s\n", err);
		cfg_unref(srv.cfg);
		return 1;
	}
	if (pv.stay_root)
		log_warn("event=running-as-root reason=\"run_user = root\" effect=\"every session, "
		    "Maildir write and relay connection runs as root\"");
	if (pv.switch_user && srv.cfg->conf.embedded && strcmp(pv.name, "nobody") == 0)
		log_warn("event=run-user-fallback user=nobody reason=\"the embedded default, started "
		    "as root, and no user imsd exists\" fix=\"adduser --system --group "
		    "--no-create-home imsd\"");
	if ((srv.clients = clients_new()) == NULL)
		fatal("event=startup-error reason=\"out of memory\"");
	srv_raise_nofile(&srv.cfg->conf);
	srv.nworkers = srv_worker_count(&srv.cfg->conf);
	if ((srv.workers = calloc((size_t)srv.nworkers, sizeof(*srv.workers))) == NULL)
		fatal("event=startup-error reason=\"out of memory\"");
	for (int i = 0; i < srv.nworkers; i++)
		if (srv_worker_init(&srv, &srv.workers[i], i) < 0)
			fatal("event=startup-error reason=\"event loop: %s\"", strerror(errno));
	srv.loop = srv.workers[0].loop;
	if (srv_server_setup_signals(&srv) < 0)
		fatal("event=startup-error reason=\"signals: %s\"", strerror(errno));
	/* Root works in the spool (the run user's) by descriptor only: spool_dir is opened
	 * once, and nothing inside it is followed (privs.h, queue.h, local.h). */
	{
		char lerr[LOG_VALUE_MAX];
		int sfd;
		if ((pv.switch_user && srv.cfg->conf.embedded &&
		    privs_reclaim(&pv, "var", err, sizeof(err)) < 0) ||
		    (sfd = privs_open_dir(&pv, srv.cfg->conf.spool_dir, 1, err, sizeof(err))) < 0 ||
		    queue_open_at(sfd, srv.cfg->conf.spool_dir, 1, &srv.q, err, sizeof(err)) < 0)
			fatal("event=startup-error reason=%s", log_value(lerr, sizeof(lerr), err,
			    strlen(err)));
	}
	{
		const struct conf *cf = &srv.cfg->conf;
		const struct { const struct hostport *hp; size_t n; enum session_listener k; } ls[] = {
			{ cf->listen, cf->nlisten, SL_SMTP },
			{ cf->submission_listen, cf->nsubmission_listen, SL_SUBMISSION },
			{ cf->smtps_listen, cf->nsmtps_listen, SL_SMTPS },
		};
		for (size_t k = 0; k < 3; k++)
			for (size_t i = 0; i < ls[k].n; i++)
				if (srv_listen_on(&srv, &ls[k].hp[i], ls[k].k, err, sizeof(err)) < 0) {
					log_error("event=startup-error reason=\"%s\"", err);
					return 2;
				}
		/* local submission (imsd sendmail): spool_dir/submit */
		int lfd = local_listen(srv.q.dirfd, cf->spool_dir, err, sizeof(err));
		if (lfd < 0 || srv_lsock_add(&srv, NULL, SL_LOCAL, lfd) < 0) {
			char lerr[LOG_VALUE_MAX];
			if (lfd >= 0)
				snprintf(err, sizeof(err), "out of memory");
			fatal("event=startup-error reason=%s", log_value(lerr, sizeof(lerr), err,
			    strlen(err)));
		}
	}
	if (srv.cfg->conf.nmetrics_listen > 0 && (srv.metrics = metrics_http_open(srv.loop,
	    srv.cfg->conf.metrics_listen, srv.cfg->conf.nmetrics_listen, err, sizeof(err))) == NULL) {
		log_error("event=startup-error reason=\"%s\"", err);
		return 2;
	}
	for (int i = 0; i < srv.nworkers; i++)
		if (srv_worker_listen(&srv.workers[i]) < 0)
			fatal("event=startup-error reason=\"listeners: %s\"", strerror(errno));

	/* Listeners bound, key and files read, spool open: now become run_user, before any
	 * thread exists. What root created for us is given to that user first. */
	{
		const struct conf *cf = &srv.cfg->conf;
		char lerr[LOG_VALUE_MAX];
		int mfd = privs_open_dir(&pv, cf->mail_dir, 1, err, sizeof(err));
		if (mfd < 0 || privs_own_fd(&pv, srv.q.dirfd, cf->spool_dir, 2, err, sizeof(err)) < 0 ||
		    privs_own_fd(&pv, mfd, cf->mail_dir, cf->embedded ? 4 : 0, err, sizeof(err)) < 0 ||
		    (cf->embedded && cf->tls_cert_file != NULL &&
		    privs_share_tls(&pv, err, sizeof(err)) < 0))
			fatal("event=startup-error reason=%s", log_value(lerr, sizeof(lerr), err,
			    strlen(err)));
		close(mfd);
		/* system_mailboxes: the one process that may switch users (to write
		 * /var/mail/USER as USER) is forked now, before this one drops every right */
		if (cf->system_mailboxes && !pv.stay_root &&
		    (srv.localproc = localproc_start(pv.switch_user, pv.uid, pv.gid, pv.name, err,
		    sizeof(err))) == NULL)
			fatal("event=startup-error reason=%s", log_value(lerr, sizeof(lerr), err,
			    strlen(err)));
		if (privs_drop(&pv, err, sizeof(err)) < 0 ||
		    privs_check_dir("spool_dir", cf->spool_dir, err, sizeof(err)) < 0 ||
		    privs_check_dir("mail_dir", cf->mail_dir, err, sizeof(err)) < 0)
			fatal("event=startup-error reason=%s", log_value(lerr, sizeof(lerr), err,
			    strlen(err)));
		log_info("event=privileges user=%s uid=%ld gid=%ld capabilities=%s",
		    pv.switch_user ? pv.name : pv.stay_root ? "root" : "(as started)",
		    (long)getuid(), (long)getgid(), pv.stay_root ? "all" : "none");
	}
	if ((n = queue_clean_incoming(&srv.q)) > 0)
		log_info("event=recovery removed_incomplete=%d", n);
	if ((n = queue_clean_orphans(&srv.q)) > 0)
		log_info("event=recovery removed_orphan_journals=%d", n);

	pthread_mutex_init(&srv.cmu, NULL);
	if ((srv.committer = commit_start(&srv.q)) == NULL)
		fatal("event=startup-error reason=\"commit thread: %s\"", strerror(errno));
	for (int i = 0; i < srv.nworkers; i++)
		if ((srv.workers[i].authq = workq_start(srv.workers[i].loop, srv_auth_threads(&srv))) == NULL ||
		    (srv.workers[i].checkq = workq_start(srv.workers[i].loop, CHECK_THREADS)) == NULL ||
		    (srv.workers[i].dnsblq = workq_start(srv.workers[i].loop, DNSBL_THREADS)) == NULL)
			fatal("event=startup-error reason=\"auth workers\"");
	if ((srv.deliveryq = workq_start(srv.loop, 4)) == NULL)
		fatal("event=startup-error reason=\"delivery workers\"");
	srv_auth_backend_probe(srv.workers[0].authq, srv.cfg);
	if ((srv.dns = dns_new(srv.loop, srv.cfg->conf.dns_servers, srv.cfg->conf.ndns_servers, err,
	    sizeof(err))) == NULL) {
		log_error("event=startup-error reason=\"dns: %s\"", err);
		return 2;
	}
	if ((srv.relay = relay_new(srv.loop, srv.dns, err, sizeof(err))) == NULL) {
		log_error("event=startup-error reason=\"relay: %s\"", err);
		return 2;
	}
	if ((srv.qmgr = qmgr_new(&srv.q, srv.deliveryq, srv.relay, srv.cfg)) == NULL)
		fatal("event=startup-error reason=\"queue manager\"");
	qmgr_set_localproc(srv.qmgr, srv.localproc);
	if (srv.localproc != NULL)
		log_info("event=local-delivery-process pid=%ld capabilities=setuid,setgid "
		    "mailboxes=/var/mail/USER", (long)localproc_pid(srv.localproc));
	n = qmgr_recover(srv.qmgr);
	metrics_http_set_collect(srv.metrics, srv_metrics_collect, &srv);
	if ((srv.ctl = control_open(srv.loop, srv.qmgr, srv.cfg->conf.spool_dir, err,
	    sizeof(err))) == NULL)
		log_warn("event=control-socket-unavailable reason=\"%s\" effect=\"imsd flush and "
		    "imsd delete cannot reach this server\"", err);
	for (int i = 1; i < srv.nworkers; i++)
		if (pthread_create(&srv.workers[i].thread, NULL, srv_worker_main, &srv.workers[i]) != 0)
			fatal("event=startup-error reason=\"worker thread: %s\"", strerror(errno));
	{
		struct pickup_conf pc = { srv.cfg->conf.spool_dir, srv.cfg->conf.hostname,
		    srv.cfg->conf.queue_lifetime, srv.cfg->conf.message_size_limit, 0 };
		if ((srv.pickup = pickup_start(&pc, err, sizeof(err))) == NULL)
			fatal("event=startup-error reason=\"%s\"", err);
	}
	log_info("event=started version=%s config=%s hostname=%s workers=%d queued=%d",
	    IMSD_VERSION, srv.cfg->conf.source, srv.cfg->conf.hostname, srv.nworkers, n);
	/* systemd (Type=notify): listeners bound, privileges dropped, queue recovered, every
	 * thread up; `systemctl start` and `apt install` return only now, and fail when imsd
	 * exits before this. No-op without NOTIFY_SOCKET. */
	sd_notify(0, "READY=1\nSTATUS=serving");

	ev_loop_run(srv.loop, srv_worker_tick, srv_worker_reap, &srv.workers[0]);

	/* Worker 0 has seen every session and commit finish (or the deadline pass); the
	 * others stop at their next turn. */
	for (int i = 1; i < srv.nworkers; i++) {
		uint64_t one = 1;
		if (write(srv.workers[i].wakefd, &one, sizeof(one)) < 0) {
			/* cannot overflow */
		}
		pthread_join(srv.workers[i].thread, NULL);
	}
	/* Drain: sessions still open past the deadline are cut; nothing they sent was
	 * acknowledged. */
	for (int i = 0; i < srv.nworkers; i++) {
		struct worker *wk = &srv.workers[i];
		while (wk->conns != NULL) {
			struct conn *c = wk->conns;
			session_disconnected(c->s);
			srv_conn_close(c);
		}
		while (wk->pconns != NULL)
			srv_pconn_free(wk->pconns, wk->pconns->io.fd);
		workq_stop(wk->authq);
		workq_stop(wk->checkq);
		workq_stop(wk->dnsblq);
	}
	pickup_stop(srv.pickup);	/* its session, if any, was just cut */
	commit_stop(srv.committer);
	/* What the last batches committed stays queued; worker 0 last, for the inbox. */
	for (int i = srv.nworkers - 1; i >= 0; i--)
		srv_commit_done_cb(&srv.workers[i].cio, EPOLLIN);
	qmgr_stop(srv.qmgr);
	workq_stop(srv.deliveryq);
	relay_free(srv.relay);
	dns_free(srv.dns);
	qmgr_free(srv.qmgr);
	srv.qmgr = NULL;
	localproc_stop(srv.localproc);
	while (srv.inbox != NULL) {
		struct inbox_item *it = srv.inbox;
		srv.inbox = it->next;
		free(it);
	}
	close(srv.sigfd);
	control_close(srv.ctl);
	metrics_http_close(srv.metrics);
	for (int i = 0; i < srv.nworkers; i++) {
		struct worker *wk = &srv.workers[i];
		srv_worker_reap(wk);
		if (wk->nlisteners > 0)
			srv_close_listeners(wk);
		free(wk->listeners);
		if (wk->spare_fd >= 0)
			close(wk->spare_fd);
		close(wk->cevfd);
		close(wk->wakefd);
		ev_loop_free(wk->loop);
	}
	free(srv.workers);
	free(srv.lsocks);
	clients_free(srv.clients);
	queue_close(&srv.q);
	log_info("event=stopped");
	cfg_unref(srv.cfg);
	pthread_mutex_destroy(&srv.cmu);
	pthread_mutex_destroy(&srv.cfgmu);
	pthread_mutex_destroy(&srv.climu);
	return 0;
}
