/*
 * workq — worker threads with completion on the loop; see workq.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net/workq.h"

#define WORKQ_MAX_THREADS 8

struct workq {
	struct ev_loop *loop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct work *todo, **todo_tail;
	struct work *done, **done_tail;
	int stop;
	int nthreads;
	pthread_t threads[WORKQ_MAX_THREADS];
	int efd;
	struct ev_io io;
};

static void *
workq_main(void *arg)
{
	struct workq *q = arg;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (q->todo == NULL && !q->stop)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->todo == NULL)
			break;
		struct work *w = q->todo;
		q->todo = w->next;
		if (q->todo == NULL)
			q->todo_tail = &q->todo;
		pthread_mutex_unlock(&q->mu);
		w->run(w);
		pthread_mutex_lock(&q->mu);
		w->next = NULL;
		*q->done_tail = w;
		q->done_tail = &w->next;
		uint64_t one = 1;
		if (write(q->efd, &one, sizeof(one)) < 0) {
			/* cannot overflow at our rates */
		}
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

static void
workq_drain(struct workq *q)
{
	struct work *list, *w;

	pthread_mutex_lock(&q->mu);
	list = q->done;
	q->done = NULL;
	q->done_tail = &q->done;
	pthread_mutex_unlock(&q->mu);
	while ((w = list) != NULL) {
		list = w->next;
		w->done(w);
	}
}

static void
workq_cb(struct ev_io *io, uint32_t events)
{
	struct workq *q = io->arg;
	uint64_t v;

	if (read(q->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	workq_drain(q);
}

struct workq *
workq_start(struct ev_loop *loop, int nthreads)
{
	struct workq *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > WORKQ_MAX_THREADS)
		nthreads = WORKQ_MAX_THREADS;
	q->loop = loop;
	q->todo_tail = &q->todo;
	q->done_tail = &q->done;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	if ((q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    ev_io_start(loop, &q->io, q->efd, EPOLLIN, workq_cb, q) < 0) {
		if (q->efd >= 0)
			close(q->efd);
		free(q);
		return NULL;
	}
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&q->threads[i], NULL, workq_main, q) != 0)
			break;
		q->nthreads++;
	}
	if (q->nthreads == 0) {
		ev_io_stop(loop, &q->io);
		close(q->efd);
		free(q);
		return NULL;
	}
	return q;
}

void
workq_submit(struct workq *q, struct work *w)
{
	w->next = NULL;
	pthread_mutex_lock(&q->mu);
	*q->todo_tail = w;
	q->todo_tail = &w->next;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

void
workq_stop(struct workq *q)
{
	pthread_mutex_lock(&q->mu);
	q->stop = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	for (int i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	workq_drain(q);
	ev_io_stop(q->loop, &q->io);
	close(q->efd);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q);
}
