/*
 * ev — a small epoll event loop: fd readiness callbacks and a once-a-second tick.
 *
 * Each watched fd is described by a struct ev_io that the caller owns and embeds (in a
 * connection, a listener...); the loop stores only its address. Timers are coarse on
 * purpose: SMTP timeouts are seconds to minutes, so owners check their deadlines from the
 * tick instead of paying for a timer per connection.
 */
#ifndef IMSD_EV_H
#define IMSD_EV_H

#include <stdint.h>
#include <sys/epoll.h>

struct ev_loop;
struct ev_io;

typedef void (*ev_io_cb)(struct ev_io *io, uint32_t events);

struct ev_io {
	int fd;
	uint32_t events;	/* EPOLLIN / EPOLLOUT currently watched */
	ev_io_cb cb;
	void *arg;
};

struct ev_loop *ev_loop_new(void);
void ev_loop_free(struct ev_loop *l);
/* Watch io->fd for events (0 = registered but idle). 0 ok, -1 errno. */
int ev_io_start(struct ev_loop *l, struct ev_io *io, int fd, uint32_t events, ev_io_cb cb,
    void *arg);
int ev_io_set(struct ev_loop *l, struct ev_io *io, uint32_t events);
void ev_io_stop(struct ev_loop *l, struct ev_io *io);
/* Run until ev_loop_break; tick(arg) runs about once a second and before_sleep(arg) each
 * time the loop is about to wait. */
void ev_loop_run(struct ev_loop *l, void (*tick)(void *), void (*before_sleep)(void *), void *arg);
void ev_loop_break(struct ev_loop *l);

#endif
