/*
 * control — the control socket spool_dir/control (mode 0600), through which `imsd flush`
 * and `imsd delete` reach the running server. One request line a connection ("FLUSH",
 * "DELETE ID|ALL"), one answer line ("ok: ..." or "error: ..."). It lives on the loop of
 * the queue manager (worker 0) and asks only the queue manager.
 */
#ifndef IMSD_CONTROL_H
#define IMSD_CONTROL_H

#include <stddef.h>

#include "net/ev.h"
#include "sched/qmgr.h"

struct control;

/* Bind spool_dir/control and serve it on loop. NULL with err when it cannot be had. */
struct control *control_open(struct ev_loop *loop, struct qmgr *qmgr, const char *spool_dir,
    char *err, size_t errlen);
/* Stop serving and remove the socket (NULL: nothing). */
void control_close(struct control *ctl);

#endif
