"""Connections: dropped clients, timeouts, connection limits, many concurrent sessions."""

import socket
import threading
import time

from imsdtest import Client, ImsdCase, make_message, read_bytes


class DroppedConnection(ImsdCase):

    def test_connection_dropped_mid_data_delivers_nothing_and_server_keeps_serving(self):
        srv = self.server()
        c = srv.client()
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: half\r\n\r\nthe first half of the body\r\n" + b"h" * 5000)
        time.sleep(0.2)
        c.close()
        time.sleep(0.5)
        srv.wait_queue_empty(timeout=10)
        self.deliver_sentinel(srv, "bob")
        self.assertNoMail(srv, "localhost", "alice")
        srv.wait_queue_empty()

    def test_connection_reset_mid_data_delivers_nothing(self):
        srv = self.server()
        c = srv.client()
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: reset\r\n\r\nbody\r\n")
        # RST instead of FIN
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
        self.deliver_sentinel(srv, "bob")
        self.assertNoMail(srv, "localhost", "alice")
        srv.wait_queue_empty()

    def test_connection_closed_after_final_dot_still_delivers(self):
        # The 250 was sent (or is being sent) once the dot arrived: the message is committed.
        srv = self.server()
        c = srv.client()
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(make_message("closed after dot") + b".\r\n")
        self.assertReply(c.reply(), 250)
        c.close()
        f = srv.wait_mail("localhost", "alice", 1)
        self.assertIn(b"closed after dot", read_bytes(f[0]))

    def test_client_closing_without_quit_at_every_stage_leaves_server_healthy(self):
        srv = self.server()
        stages = [b"", b"EHLO x\r\n", b"EHLO x\r\nMAIL FROM:<a@example.org>\r\n",
                  b"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@localhost>\r\n",
                  b"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n",
                  b"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n"
                  b"Subject: x\r\n\r\npartial line without end"]
        for data in stages * 3:
            c = srv.client()
            if data:
                c.send(data)
            c.close()
        self.deliver_sentinel(srv, "bob")
        self.assertNoMail(srv, "localhost", "alice")
        srv.wait_queue_empty()


class Timeouts(ImsdCase):

    def test_idle_client_gets_421_4_4_2_after_command_timeout_and_is_closed(self):
        srv = self.server(command_timeout="2s")
        c = self.client(srv, timeout=8)
        t0 = time.monotonic()
        r = c.reply()
        took = time.monotonic() - t0
        self.assertReply(r, 421, "4.4.2")
        self.assertGreater(took, 1.0, "timed out too early")
        self.assertLess(took, 6.0, "timed out too late")
        self.assertTrue(c.closed_by_server(3))

    def test_client_dribbling_a_command_is_cut_off_after_command_timeout(self):
        """A byte every 0.4 s never leaves the connection idle for the 2 s of
        command_timeout: if partial input restarted the timer, the client would never be cut
        off. It is, with 421 4.4.2, while it still dribbles (the dribble lasts up to 30 s,
        15 timeouts) and not before the timeout (a lower bound, which load cannot break)."""
        srv = self.server(command_timeout="2s")
        c = self.client(srv, timeout=8)
        self.assertReply(c.ehlo(), 250)
        t0 = time.monotonic()
        got = None
        c.sock.settimeout(0.4)
        sent = 0
        for ch in ("NOOP please let me keep going forever and ever, " * 2)[:75]:
            try:
                c.sock.sendall(ch.encode())
                sent += 1
            except OSError:
                break
            try:
                data = c.sock.recv(4096)
                got = data
                break
            except socket.timeout:
                pass
        took = time.monotonic() - t0
        self.assertIsNotNone(got, "no reply after dribbling %d bytes for %.1f s: partial input "
                             "restarts the command timer" % (sent, took))
        self.assertRegex(got.decode("latin-1"), r"^421[ -]4\.4\.2")
        self.assertGreater(took, 1.5, "cut off before command_timeout")

    def test_active_client_is_not_cut_off_before_timeout(self):
        srv = self.server(command_timeout="2s")
        c = self.client(srv)
        for _ in range(5):
            time.sleep(0.8)
            self.assertReply(c.cmd("NOOP"), 250)

    def test_idle_client_in_data_gets_421_4_4_2_after_data_timeout_and_nothing_delivered(self):
        srv = self.server(data_timeout="2s")
        c = self.client(srv, timeout=8)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: stalled\r\n\r\nsome body\r\n")
        t0 = time.monotonic()
        r = c.reply()
        self.assertReply(r, 421, "4.4.2")
        self.assertLess(time.monotonic() - t0, 6.0)
        self.assertTrue(c.closed_by_server(3))
        self.deliver_sentinel(srv, "bob")
        self.assertNoMail(srv, "localhost", "alice")


class ConnectionLimits(ImsdCase):

    def test_third_connection_from_one_ip_gets_421_4_7_0_when_per_ip_limit_is_2(self):
        srv = self.server(max_connections_per_ip=2)
        c1 = self.client(srv)
        c2 = self.client(srv)
        c3 = self.client(srv, greet=False)
        r = c3.reply()
        self.assertReply(r, 421, "4.7.0")
        self.assertTrue(c3.closed_by_server(5))
        # the two sessions still work
        self.assertReply(c1.cmd("NOOP"), 250)
        self.assertReply(c2.cmd("NOOP"), 250)
        # another source address is not limited by 127.0.0.1's count
        c4 = Client(srv.port, source="127.0.0.2")
        self.clients.append(c4)
        self.addCleanup(c4.close)
        self.assertReply(c4.reply(), 220)
        # when one leaves, a new one is accepted again
        self.assertReply(c1.cmd("QUIT"), 221)
        self.assertTrue(c1.closed_by_server(5))

        def try_connect():
            c = srv.client(greet=False)
            r = c.reply()
            c.close()
            return r.code == 220
        self.assertTrue(self._retry(try_connect), "a slot freed by QUIT is reusable")

    def test_connection_over_max_connections_gets_421_4_7_0(self):
        srv = self.server(max_connections=2, max_connections_per_ip=10)
        c1 = self.client(srv)
        c2 = Client(srv.port, source="127.0.0.2")
        self.clients.append(c2)
        self.addCleanup(c2.close)
        self.assertReply(c2.reply(), 220)
        c3 = Client(srv.port, source="127.0.0.3")
        self.clients.append(c3)
        self.addCleanup(c3.close)
        self.assertReply(c3.reply(), 421, "4.7.0")
        self.assertTrue(c3.closed_by_server(5))
        self.assertReply(c1.cmd("NOOP"), 250)

    def _retry(self, fn, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if fn():
                return True
            time.sleep(0.1)
        return False


class Concurrency(ImsdCase):

    def test_many_concurrent_sessions_each_deliver(self):
        srv = self.server()
        n = 40
        clients = []
        for i in range(n):
            c = self.client(srv)
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<c%d@example.org>" % i), 250)
            self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
            self.assertReply(c.cmd("DATA"), 354)
            c.send(b"Subject: concurrent %d\r\n\r\n" % i)
            clients.append(c)
        # all sessions are mid-DATA at once; now finish them from threads, all together
        errors = []

        def finish(i, c):
            try:
                c.send(b"body %d\r\n.\r\n" % i)
                r = c.reply()
                if r.code != 250:
                    errors.append((i, r))
            except Exception as e:                 # noqa: BLE001 - reported below
                errors.append((i, e))
        threads = [threading.Thread(target=finish, args=(i, c)) for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        files = srv.wait_mail("localhost", "alice", n, timeout=30)
        subjects = sorted(int(read_bytes(f).split(b"Subject: concurrent ")[1].split(b"\n")[0])
                          for f in files)
        self.assertEqual(subjects, list(range(n)))
