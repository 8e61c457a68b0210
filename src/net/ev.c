/*
 * ev — epoll loop; see ev.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/ev.h"

#define EV_BATCH 256

struct ev_loop {
	int epfd;
	int stop;
};

struct ev_loop *
ev_loop_new(void)
{
	struct ev_loop *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		free(l);
		return NULL;
	}
	return l;
}

void
ev_loop_free(struct ev_loop *l)
{
	if (l == NULL)
		return;
	close(l->epfd);
	free(l);
}

int
ev_io_start(struct ev_loop *l, struct ev_io *io, int fd, uint32_t events, ev_io_cb cb, void *arg)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	io->fd = fd;
	io->events = events;
	io->cb = cb;
	io->arg = arg;
	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int
ev_io_set(struct ev_loop *l, struct ev_io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	if (io->events == events)
		return 0;
	io->events = events;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

void
ev_io_stop(struct ev_loop *l, struct ev_io *io)
{
	if (io->fd >= 0)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->fd = -1;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
ev_loop_run(struct ev_loop *l, void (*tick)(void *), void (*before_sleep)(void *), void *arg)
{
	struct epoll_event evs[EV_BATCH];
	long long next_tick = now_ms() + 1000;

	l->stop = 0;
	while (!l->stop) {
		long long now = now_ms();
		int timeout, n;

		if (now >= next_tick) {
			next_tick = now + 1000;
			if (tick != NULL)
				tick(arg);
			if (l->stop)
				break;
		}
		if (before_sleep != NULL)
			before_sleep(arg);
		if (l->stop)
			break;
		timeout = (int)(next_tick - now_ms());
		if (timeout < 0)
			timeout = 0;
		n = epoll_wait(l->epfd, evs, EV_BATCH, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct ev_io *io = evs[i].data.ptr;
			io->cb(io, evs[i].events);
		}
	}
}

void
ev_loop_break(struct ev_loop *l)
{
	l->stop = 1;
}
