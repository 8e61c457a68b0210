/*
 * delivery — local delivery thread; see delivery.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver/maildir.h"
#include "server/delivery.h"
#include "util/log.h"
#include "util/str.h"

struct djob {
	time_t due;
	unsigned long long seq;	/* FIFO among equal due times */
	char qid[32];
};

struct delivery {
	struct queue *q;
	struct cfg *cfg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	struct djob *heap;
	size_t n, cap;
	unsigned long long seq;
};

static int
job_less(const struct djob *a, const struct djob *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void
heap_push(struct delivery *d, const struct djob *j)
{
	size_t i;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		struct djob *h = realloc(d->heap, cap * sizeof(*h));
		if (h == NULL) {
			log_error("event=delivery-error reason=out-of-memory qid=%s", j->qid);
			return;
		}
		d->heap = h;
		d->cap = cap;
	}
	i = d->n++;
	d->heap[i] = *j;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!job_less(&d->heap[i], &d->heap[p]))
			break;
		struct djob t = d->heap[p];
		d->heap[p] = d->heap[i];
		d->heap[i] = t;
		i = p;
	}
}

static struct djob
heap_pop(struct delivery *d)
{
	struct djob top = d->heap[0];
	size_t i = 0;

	d->heap[0] = d->heap[--d->n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < d->n && job_less(&d->heap[l], &d->heap[m]))
			m = l;
		if (r < d->n && job_less(&d->heap[r], &d->heap[m]))
			m = r;
		if (m == i)
			break;
		struct djob t = d->heap[m];
		d->heap[m] = d->heap[i];
		d->heap[i] = t;
		i = m;
	}
	return top;
}

/* The delay before attempt number `attempts`+1: retry_min doubled per attempt, capped. */
static unsigned
backoff(const struct conf *c, unsigned attempts)
{
	unsigned long long v = c->retry_min;

	for (unsigned i = 1; i < attempts && v < c->retry_max; i++)
		v *= 2;
	return v > c->retry_max ? c->retry_max : (unsigned)v;
}

/* One delivery attempt of a message. Returns the time it is next due, or 0 when gone. */
static time_t
deliver_one(struct delivery *d, struct cfg *cfg, const char *qid)
{
	struct qenv env;
	uint64_t off, len;
	char err[512], unique[64];
	int fd, ndone = 0, nfail = 0;
	time_t now = time(NULL), next = 0;
	int *ok;

	if (queue_load(d->q, qid, &env, &fd, &off, &len, err, sizeof(err)) < 0) {
		/* A committed file that does not verify is kept for the operator, not guessed at. */
		log_error("qid=%s event=queue-corrupt reason=\"%s\" action=kept-in-queue", qid, err);
		return 0;
	}
	if ((ok = calloc(env.nrcpts, sizeof(*ok))) == NULL) {
		close(fd);
		qenv_free(&env);
		return now + cfg->conf.retry_min;
	}
	for (size_t i = 0; i < env.nrcpts; i++) {
		struct qrcpt *r = &env.rcpts[i];
		if (r->state == QR_DONE) {
			ok[i] = 1;
			continue;
		}
		snprintf(unique, sizeof(unique), "%s_%zu", qid, i);
		if (maildir_deliver(cfg->conf.mail_dir, r->addr, env.sender, fd, off, len,
		    cfg->conf.hostname, unique, err, sizeof(err)) == 0) {
			ok[i] = 1;
			ndone++;
			log_info("qid=%s event=delivered to=<%s> orcpt=<%s> from=<%s> size=%llu "
			    "mailer=maildir status=2.0.0 delay=%lds", qid, r->addr, r->orcpt, env.sender,
			    (unsigned long long)len, (long)(now - env.arrival));
		} else {
			r->attempts++;
			r->next_try = now + backoff(&cfg->conf, r->attempts);
			str_copy(r->last_error, sizeof(r->last_error), err);
			nfail++;
			log_warn("qid=%s event=deferred to=<%s> mailer=maildir status=4.3.0 "
			    "attempts=%u retry_in=%lds reason=\"%s\"", qid, r->addr, r->attempts,
			    (long)(r->next_try - now), err);
		}
	}
	close(fd);
	if (nfail == 0) {
		if (queue_remove(d->q, qid, err, sizeof(err)) < 0)
			log_error("qid=%s event=queue-error reason=\"%s\"", qid, err);
		else
			log_info("qid=%s event=removed", qid);
	} else {
		/* Journal what happened so a restart neither repeats deliveries nor forgets
		 * the retry schedule. */
		for (size_t i = 0; i < env.nrcpts; i++) {
			char line[512];
			struct qrcpt *r = &env.rcpts[i];
			if (r->state == QR_DONE)
				continue;
			if (ok[i])
				snprintf(line, sizeof(line), "done %zu\n", i);
			else {
				char reason[240];
				size_t k;
				str_copy(reason, sizeof(reason), r->last_error);
				for (k = 0; reason[k]; k++)
					if ((unsigned char)reason[k] < 0x20 || reason[k] == 0x7f)
						reason[k] = ' ';
				snprintf(line, sizeof(line), "defer %zu %u %lld %s\n", i, r->attempts,
				    (long long)r->next_try, reason);
				if (next == 0 || r->next_try < next)
					next = r->next_try;
			}
			if (queue_journal(d->q, qid, line, err, sizeof(err)) < 0)
				log_error("qid=%s event=queue-error reason=\"%s\"", qid, err);
		}
	}
	free(ok);
	qenv_free(&env);
	return next;
}

static void *
delivery_main(void *arg)
{
	struct delivery *d = arg;

	pthread_mutex_lock(&d->mu);
	while (!d->stop) {
		time_t now = time(NULL);
		if (d->n == 0) {
			pthread_cond_wait(&d->cv, &d->mu);
			continue;
		}
		if (d->heap[0].due > now) {
			struct timespec ts = { .tv_sec = d->heap[0].due, .tv_nsec = 0 };
			pthread_cond_timedwait(&d->cv, &d->mu, &ts);
			continue;
		}
		struct djob j = heap_pop(d);
		struct cfg *cfg = cfg_ref(d->cfg);
		pthread_mutex_unlock(&d->mu);
		time_t next = deliver_one(d, cfg, j.qid);
		cfg_unref(cfg);
		pthread_mutex_lock(&d->mu);
		if (next != 0) {
			j.due = next;
			j.seq = d->seq++;
			heap_push(d, &j);
		}
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

struct delivery *
delivery_start(struct queue *q, struct cfg *cfg)
{
	struct delivery *d = calloc(1, sizeof(*d));
	pthread_condattr_t ca;

	if (d == NULL)
		return NULL;
	d->q = q;
	d->cfg = cfg_ref(cfg);
	pthread_mutex_init(&d->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_REALTIME);
	pthread_cond_init(&d->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&d->thread, NULL, delivery_main, d) != 0) {
		cfg_unref(d->cfg);
		free(d);
		return NULL;
	}
	return d;
}

void
delivery_enqueue(struct delivery *d, const char *qid, time_t due)
{
	struct djob j = { .due = due };

	snprintf(j.qid, sizeof(j.qid), "%s", qid);
	pthread_mutex_lock(&d->mu);
	j.seq = d->seq++;
	heap_push(d, &j);
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

void
delivery_set_cfg(struct delivery *d, struct cfg *cfg)
{
	struct cfg *old;

	pthread_mutex_lock(&d->mu);
	old = d->cfg;
	d->cfg = cfg_ref(cfg);
	pthread_mutex_unlock(&d->mu);
	cfg_unref(old);
}

void
delivery_flush(struct delivery *d)
{
	pthread_mutex_lock(&d->mu);
	for (size_t i = 0; i < d->n; i++)
		d->heap[i].due = 0;	/* all equal: the heap order still holds */
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

void
delivery_stop(struct delivery *d)
{
	pthread_mutex_lock(&d->mu);
	d->stop = 1;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->thread, NULL);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	cfg_unref(d->cfg);
	free(d->heap);
	free(d);
}

int
delivery_recover(struct delivery *d)
{
	char **ids, err[256];
	size_t n;

	if (queue_list(d->q, &ids, &n, err, sizeof(err)) < 0) {
		log_error("event=queue-error reason=\"%s\"", err);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		delivery_enqueue(d, ids[i], 0);
	queue_list_free(ids, n);
	return (int)n;
}
