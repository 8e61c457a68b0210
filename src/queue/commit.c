/*
 * commit — the group-commit thread; see commit.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "queue/commit.h"
#include "util/metrics.h"

#define COMMIT_SYNCFS_MIN 2	/* batches this large sync the filesystem once */

struct committer {
	struct queue *q;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct commit_job *pending, **tail;
	int stop;
};

/* Make one batch durable; decide every job in it. */
static void
commit_batch(struct queue *q, struct commit_job *batch)
{
	struct commit_job *j;
	int published = 0, n = 0, synced = 0;
	char serr[256];
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);

	/* Every file of the batch reaches the disk, then the directory once. A batch of
	 * several files is made durable by one syncfs of the spool's filesystem instead of
	 * an fdatasync each: on ext4 every fdatasync is a journal commit of its own, while
	 * one syncfs writes all the batch's data and commits once. Data first, then the
	 * renames, then the directory: a file reaches queue/ only complete. */
	for (j = batch; j != NULL; j = j->next)
		n++;
	if (n >= COMMIT_SYNCFS_MIN) {
		if (queue_sync_data(q, serr, sizeof(serr)) == 0)
			synced = 1;
		else
			for (j = batch; j != NULL; j = j->next)
				snprintf(j->err, sizeof(j->err), "%s", serr);
	}
	for (j = batch; j != NULL; j = j->next) {
		if (n >= COMMIT_SYNCFS_MIN && !synced) {
			j->ok = 0;
			continue;
		}
		j->ok = (synced || queue_sync_file(&j->w, j->err, sizeof(j->err)) == 0) &&
		    queue_publish(q, &j->w, j->err, sizeof(j->err)) == 0;
		published += j->ok;
	}
	if (published > 0 && queue_sync_dir(q, serr, sizeof(serr)) < 0)
		for (j = batch; j != NULL; j = j->next) {
			/* Published but not known durable: it will still be delivered, but the
			 * client is not told 250. */
			if (j->ok)
				snprintf(j->err, sizeof(j->err), "%s", serr);
			j->ok = 0;
		}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	metrics_observe(MH_COMMIT_BATCH, (uint64_t)n);
	metrics_observe(MH_COMMIT_FSYNC, (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000));
}

static void *
commit_main(void *arg)
{
	struct committer *c = arg;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (c->pending == NULL && !c->stop)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->pending == NULL && c->stop)
			break;
		struct commit_job *batch = c->pending, *j;
		c->pending = NULL;
		c->tail = &c->pending;
		pthread_mutex_unlock(&c->mu);
		commit_batch(c->q, batch);
		for (j = batch; j != NULL; j = batch) {
			batch = j->next;
			j->done(j);	/* j belongs to its owner from here on */
		}
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

struct committer *
commit_start(struct queue *q)
{
	struct committer *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->q = q;
	c->tail = &c->pending;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->thread, NULL, commit_main, c) != 0) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
		free(c);
		return NULL;
	}
	return c;
}

void
commit_submit(struct committer *c, struct commit_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&c->mu);
	*c->tail = j;
	c->tail = &j->next;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void
commit_stop(struct committer *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}
