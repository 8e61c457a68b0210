"""Several event loops (`workers`): each owns the sessions it accepted; the listeners, the
queue, the per-client limits and the memory bound are shared, and nothing is delivered twice."""

import os
import socket
import threading
import time

from imsdtest import Client, ImsdCase, make_message, wait_for


def loop_threads(pid):
    names = []
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return sorted(n for n in names if n.startswith("imsd-loop-"))


class Workers(ImsdCase):

    def test_workers_setting_starts_that_many_loops(self):
        srv = self.server(workers=3)
        self.assertIn("workers=3", srv.log_text())
        self.assertEqual(loop_threads(srv.proc.pid), ["imsd-loop-1", "imsd-loop-2"],
                         "worker 0 runs on the main thread, the others on their own")
        one = self.server(workers=1)
        self.assertIn("workers=1", one.log_text())
        self.assertEqual(loop_threads(one.proc.pid), [])

    def test_default_is_one_loop_per_cpu(self):
        srv = self.server()
        self.assertIn("workers=%d" % len(os.sched_getaffinity(0)), srv.log_text())

    def test_concurrent_sessions_use_every_loop_and_each_message_is_delivered_once(self):
        srv = self.server(workers=2, log_level="info")
        n_threads, per = 20, 10
        errors = []

        def send(k):
            try:
                with Client(srv.port, timeout=30) as c:
                    c.reply()
                    for i in range(per):
                        r = self.transaction(c, "w@example.org", ["alice@localhost"],
                                             make_message("w %d %d" % (k, i)), ehlo=(i == 0))
                        if r.code != 250:
                            errors.append(repr(r))
                    c.cmd("QUIT")
            except Exception as e:       # noqa: BLE001 - reported below
                errors.append(repr(e))
        ts = [threading.Thread(target=send, args=(k,)) for k in range(n_threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(errors, [])
        files = srv.wait_mail("localhost", "alice", n_threads * per, timeout=60)
        subjects = []
        for f in files:
            with open(f, "rb") as fh:
                for line in fh.read().split(b"\n"):
                    if line.startswith(b"Subject: "):
                        subjects.append(line)
                        break
        self.assertEqual(len(subjects), n_threads * per)
        self.assertEqual(len(set(subjects)), n_threads * per, "a message was delivered twice")
        srv.wait_queue_empty()
        log = srv.log_text()
        self.assertIn("worker=0", log)
        self.assertIn("worker=1", log, "one loop took every session")

    def test_per_client_limit_is_counted_across_loops(self):
        srv = self.server(workers=2, max_connections_per_ip=5)
        # the harness's readiness probe is a session from 127.0.0.1 too: let it be gone
        self.assertTrue(wait_for(lambda: "event=disconnect" in srv.log_text(), 10),
                        "the start-up probe's session did not end")
        socks, greetings = [], []
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            socks.append(s)
        for s in socks:
            greetings.append(s.recv(200)[:3])
        for s in socks:
            s.close()
        self.assertEqual(greetings.count(b"220"), 5, greetings)
        self.assertEqual(greetings.count(b"421"), 5, greetings)

    def test_sigterm_stops_every_loop_in_time(self):
        srv = self.server(workers=3)
        held = [Client(srv.port, timeout=10) for _ in range(12)]
        for c in held:
            c.reply()
        t0 = time.monotonic()
        srv.stop()                  # asserts exit status 0 and no sanitizer report
        self.assertLess(time.monotonic() - t0, 10)
        for c in held:
            r = c.reply()
            self.assertEqual((r.code, r.enhanced), (421, "4.3.2"))
            c.close()
