"""Limits on what a client can make imsd hold or do: memory per hostile connection, the total
session memory bound, the error tarpit against recipient harvesting, AUTH failures counted per
client across connections.

The memory tests run the optimised binary (imsdtest.release_binary): a sanitizer build's RSS is
mostly shadow memory and quarantine. Each measures VmRSS from /proc before and while the abuse
goes on, and asserts a per-connection bound with room for allocator noise but far below what an
unbounded buffer costs (the first round grew 1.3 MB per connection on an EHLO flood).
"""

import sys
import socket
import threading
import time

from imsdtest import (Client, ImsdCase, SMALL_WINDOW, blast, close_all, connect_many,
                      peak_rss, raise_nofile, read_until_closed, release_binary, rss_kib)
import imsdtest
import netns

class HostileClientMemory(ImsdCase):
    """RSS per connection stays bounded whatever the client sends and however little it reads."""

    def mem_server(self, **conf):
        conf.setdefault("log_level", "warn")
        conf.setdefault("max_connections", 20000)
        conf.setdefault("max_connections_per_ip", 20000)
        srv = self.server(binary=release_binary(), **conf)
        time.sleep(0.3)
        return srv

    def report(self, what, base, peak, n):
        per = (peak - base) / n
        print("    %s: RSS %d -> %d KiB, %.1f KiB per connection" % (what, base, peak, per),
              flush=True)
        return per

    def test_pipelined_ehlo_flood_is_cut_off_and_memory_per_connection_is_bounded(self):
        srv = self.mem_server()
        n = 300
        raise_nofile(n + 100)
        base = rss_kib(srv.proc.pid)
        socks = connect_many(srv.port, n)
        blast(socks, b"EHLO a\r\n" * 1024, 1024 * 1024)
        peak = peak_rss(srv.proc.pid, 3.0)
        per = self.report("EHLO flood, 1 MiB offered per connection", base, peak, n)
        self.assertLess(per, 64, "an unread EHLO flood must not grow the server per connection")
        # The flood is junk: after SESSION_JUNK_LIMIT greetings every session ends with 421.
        # (Its unread input makes the kernel reset the connection, so the client may not see
        # the 421 itself; the log and the end of the stream say it.)
        got = read_until_closed(socks[0])
        self.assertLessEqual(got.count(b"250-PIPELINING"), 101)
        close_all(socks)
        self.assertEqual(srv.log_text().count("event=too-many-commands"), n)

    def test_pipelined_commands_without_reading_stop_at_the_output_bound(self):
        # Valid recipients are no junk and no error: only the output bound stops them.
        srv = self.mem_server(recipient_limit=1000000)
        n = 200
        raise_nofile(n + 100)
        base = rss_kib(srv.proc.pid)
        socks = connect_many(srv.port, n)
        head = b"EHLO p\r\nMAIL FROM:<p@example.org>\r\n"
        for s in socks:
            s.sendall(head)
        written = blast(socks, b"RCPT TO:<alice@localhost>\r\n" * 2000, 4 * 1024 * 1024)
        peak = peak_rss(srv.proc.pid, 3.0)
        per = self.report("pipelined RCPTs, replies unread", base, peak, n)
        # 64 KiB of input + 16 KiB of replies (+ one batch) + the session: well under 160 KiB
        self.assertLess(per, 160)
        self.assertLess(written, n * 4 * 1024 * 1024, "the server must stop reading")
        # reading resumes the session: the client gets every reply in order
        s = socks[0]
        s.setblocking(True)
        s.settimeout(10)
        got = b""
        while got.count(b"\r\n") < 50:
            got += s.recv(65536)
        self.assertTrue(got.startswith(b"250-mx.imsd.test"), got[:200])
        self.assertIn(b"250 2.1.5 Ok\r\n", got)
        close_all(socks)

    def test_command_line_without_end_costs_a_bounded_amount(self):
        srv = self.mem_server()
        n = 300
        raise_nofile(n + 100)
        base = rss_kib(srv.proc.pid)
        socks = connect_many(srv.port, n)
        blast(socks, b"x" * 8192, 1024 * 1024)
        peak = peak_rss(srv.proc.pid, 3.0)
        per = self.report("endless command line, 1 MiB per connection", base, peak, n)
        self.assertLess(per, 16)
        s = socks[0]
        s.setblocking(True)
        s.sendall(b"\r\n")
        s.settimeout(10)
        self.assertIn(b"500 5.5.2", s.recv(4096))
        close_all(socks)

    def test_endless_data_past_message_size_limit_costs_a_bounded_amount(self):
        srv = self.mem_server(message_size_limit=1048576)
        n = 50
        raise_nofile(n + 100)
        base = rss_kib(srv.proc.pid)
        socks = connect_many(srv.port, n)
        for s in socks:
            s.sendall(b"EHLO d\r\nMAIL FROM:<d@example.org>\r\nRCPT TO:<alice@localhost>\r\n"
                      b"DATA\r\n")
        line = b"z" * 998 + b"\r\n"
        written = blast(socks, line * 64, 6 * 1024 * 1024)
        peak = peak_rss(srv.proc.pid, 3.0)
        per = self.report("DATA past message_size_limit", base, peak, n)
        self.assertGreater(written, n * 1024 * 1024, "the flood must pass the size limit")
        self.assertLess(per, 64)
        s = socks[0]
        s.setblocking(True)
        s.settimeout(30)
        blast([s], b"", 0)
        s.setblocking(True)
        s.sendall(b"\r\n.\r\n")
        got = read_until_closed(s, timeout=5)
        self.assertIn(b"552 5.3.4", got)
        close_all(socks)
        self.assertEqual(srv.maildir_files("localhost", "alice"), [])

    def test_ten_thousand_slow_clients_cost_a_few_kib_each(self):
        n = 10000
        if raise_nofile(n + 200) < n + 200:
            imsdtest.need_root("raising the open-file hard limit to %d" % (n + 200))
            self.fail("RLIMIT_NOFILE stays below %d even as root" % (n + 200))
        srv = self.mem_server()
        base = rss_kib(srv.proc.pid)
        socks = connect_many(srv.port, n)
        for s in socks:
            s.sendall(b"EHLO slow.example\r\nMAIL FROM:<half-a-line@exa")
        peak = peak_rss(srv.proc.pid, 2.0)
        per = self.report("%d slow clients with half a line each" % n, base, peak, n)
        self.assertLess(per, 8)
        # they are all still served
        s = socks[-1]
        s.settimeout(10)
        s.sendall(b"mple.org>\r\n")
        got = b""
        while b"250 2.1.0" not in got:
            d = s.recv(4096)
            self.assertTrue(d, got)
            got += d
        close_all(socks)
        time.sleep(2.5)     # a tick trims what the sessions freed
        after = rss_kib(srv.proc.pid)
        print("    after closing them all: %d KiB" % after, flush=True)
        self.assertLess(after - base, (peak - base) / 2,
                        "memory freed by closed sessions is returned to the system")


class SessionMemoryLimit(ImsdCase):

    def test_new_sessions_get_421_once_sessions_hold_max_session_memory(self):
        srv = self.server(max_session_memory="2m", recipient_limit=1000000,
                          max_connections_per_ip=1000)
        raise_nofile(400)
        hogs = []
        refused = None
        for i in range(200):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_WINDOW)
            s.settimeout(10)
            s.connect(("127.0.0.1", srv.port))
            greeting = s.recv(512)
            if greeting.startswith(b"421"):
                refused = greeting
                s.close()
                break
            s.sendall(b"EHLO hog\r\nMAIL FROM:<h@example.org>\r\n")
            blast([s], b"RCPT TO:<alice@localhost>\r\n" * 2000, 4 * 1024 * 1024)
            hogs.append(s)
            time.sleep(0.02)
        self.assertIsNotNone(refused, "no session was refused under a 2 MiB bound")
        self.assertTrue(refused.startswith(b"421 4.7.0 mx.imsd.test Too much memory in use"),
                        refused)
        self.assertGreater(len(hogs), 5)
        self.assertRegex(srv.log_text(), r"event=connect-refused reason=session-memory-limit "
                         r"used=\d+ limit=2097152")
        close_all(hogs)
        time.sleep(1.0)
        with srv.client() as c:      # the memory came back: served again
            self.assertReply(c.ehlo(), 250)


class Tarpit(ImsdCase):

    def test_recipient_harvesting_is_slowed_then_cut_off(self):
        srv = self.server()
        srv.write_file("rcpts", "alice@localhost\n")
        srv.set_conf(recipients_file=srv.dir + "/rcpts")
        srv.stop()
        srv.start()
        c = self.client(srv, timeout=30)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<h@example.org>"), 250)
        times = []
        for i in range(20):
            t0 = time.monotonic()
            r = c.cmd("RCPT TO:<user%d@localhost>" % i)
            times.append(time.monotonic() - t0)
            self.assertReply(r, 550, "5.1.1")
        last = c.reply()            # the 20th rejection ends the session
        self.assertReply(last, 421, "4.7.0")
        self.assertIn("Too many errors", last.text)
        self.assertTrue(c.closed_by_server())
        self.assertLess(max(times[:10]), 0.5, "the first ten errors are answered at once")
        for i in range(10, 19):
            self.assertGreater(times[i], 0.9, "error %d must be delayed: %r" % (i + 1, times))
        total = sum(times)
        print("    20 unknown recipients took %.1f s, then 421" % total, flush=True)
        self.assertGreater(total, 15)
        log = srv.log_text()
        self.assertIn("event=tarpit errors=11", log)
        self.assertIn("event=too-many-errors errors=20", log)

    def test_recipient_guesses_are_counted_per_client_across_sessions(self):
        # issue 24, finding 4: a harvester reconnecting every 10 guesses never reached the
        # per-session tarpit (300 guesses in 0.02 s); now the client address is counted:
        # past 30 refused recipients each answer waits 2 s, past 60 it is cut off
        srv = self.server()
        srv.write_file("rcpts", "alice@localhost\n")
        srv.set_conf(recipients_file=srv.dir + "/rcpts")
        srv.stop()
        srv.start()
        lock = threading.Lock()
        refused, slow, cut = [], [], []
        deadline = time.monotonic() + 60

        def harvester(k):
            for n in range(12):                      # sessions, bounded
                if cut or time.monotonic() > deadline:
                    return
                c = Client(srv.port, timeout=20)
                try:
                    c.reply()
                    c.ehlo()
                    c.cmd("MAIL FROM:<h@example.org>")
                    for i in range(10):
                        t0 = time.monotonic()
                        r = c.cmd("RCPT TO:<g%d-%d-%d@localhost>" % (k, n, i))
                        dt = time.monotonic() - t0
                        with lock:
                            if r.code == 421:
                                cut.append(r.text)
                                return
                            refused.append(r.code)
                            if dt > 1.5:
                                slow.append(dt)
                finally:
                    c.close()

        threads = [threading.Thread(target=harvester, args=(k,)) for k in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        self.assertTrue(cut, "never cut off after %d refused recipients" % len(refused))
        self.assertIn("Too many rejected recipients from your address", cut[0])
        self.assertEqual(set(refused), {550})
        self.assertGreaterEqual(len(refused), 60)
        self.assertLessEqual(len(refused), 61 + 10, "one in flight per harvester at most")
        self.assertGreater(len(slow), 10, "answers past the 30th were not delayed")
        print("    %d guesses from 10 parallel harvesters, %d answered late, then 421"
              % (len(refused), len(slow)), flush=True)
        # a new session: its first guess is refused and cut off at once
        c = self.client(srv, timeout=20)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<h@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)     # real mail still goes
        self.assertReply(c.cmd("RCPT TO:<again@localhost>"), 550, "5.1.1")
        self.assertReply(c.reply(), 421, "4.7.0")
        self.assertIn("event=too-many-rejected-recipients scope=client-address",
                      srv.log_text())

    def test_relay_denied_recipients_spend_the_budget_too(self):
        srv = self.server(relay_networks="192.0.2.0/24")
        c = self.client(srv, timeout=30)
        c.send(b"EHLO r\r\nMAIL FROM:<r@example.org>\r\n" +
               b"".join(b"RCPT TO:<v%d@elsewhere.example>\r\n" % i for i in range(12)))
        replies = c.replies(2 + 12)
        self.assertEqual([r.code for r in replies[2:]], [554] * 12)
        self.assertIn("event=tarpit errors=11", srv.log_text())


class AuthFailuresPerClient(ImsdCase):
    """AUTH guesses are limited per client address across connections, not only per session."""

    def auth_server(self):
        srv = self.server()
        users = srv.write_file("users", "")
        netns.write_users(users)
        srv.set_conf(auth_users_file=users)
        srv.stop()
        srv.start()
        return srv

    def guess(self, srv, source, password, results):
        try:
            with Client(srv.port, source=source, timeout=30) as c:
                c.reply()
                c.ehlo()
                for _ in range(3):
                    r = c.cmd("AUTH PLAIN " + netns.plain_token("alice", password))
                    results.append(r.code)
                    if r.code != 535:
                        break
        except OSError as e:
            results.append(str(e))

    def test_failures_from_many_connections_lock_the_address_not_others(self):
        srv = self.auth_server()
        results = []
        threads = [threading.Thread(target=self.guess, args=(srv, "127.0.0.1", "wrong", results))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # exactly the client's budget of guesses was checked, in flight at once or not
        self.assertEqual(results.count(535), 10, results)
        self.assertEqual(results.count(421), 2, results)
        # the right password from the same address is not even checked now
        with Client(srv.port, source="127.0.0.1", timeout=30) as c:
            c.reply()
            c.ehlo()
            r = c.cmd("AUTH PLAIN " + netns.plain_token("alice", netns.PASSWORD))
            self.assertReply(r, 421, "4.7.0")
            self.assertIn("Too many failed authentications from your address", r.text)
        # another client address is not affected
        with Client(srv.port, source="127.0.0.2", timeout=30) as c:
            c.reply()
            c.ehlo()
            r = c.cmd("AUTH PLAIN " + netns.plain_token("alice", netns.PASSWORD))
            self.assertReply(r, 235)
        self.assertIn("event=auth-refused", srv.log_text())


TWO_CLIENTS = r"""
import json, socket, sys
port = int(sys.argv[1])
held, out = [], {}
for src in sys.argv[2:]:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((src, 0))
    s.connect(("2001:db8::10", port))
    f = s.makefile("rb")
    out[src] = f.readline().decode().strip()
    held.append((s, f))
print(json.dumps(out))
"""


class PerClientIPv6Prefix(netns.NsCase):
    """max_connections_per_ip counts an IPv6 client by its /64: one host is given a whole /64,
    so counting single addresses would give it 2^64 connections."""

    server_conf = {"max_connections_per_ip": 1}
    with_cert = False
    with_users = False

    def test_two_addresses_of_one_slash64_share_the_limit_another_prefix_does_not(self):
        for a in ("2001:db8::11/128", "2001:db8:0:1::10/128"):
            p = self.ns.run(["ip", "addr", "add", a, "dev", "lo", "nodad"])
            self.assertEqual(p.returncode, 0, p.stderr)
        p = self.ns.run([sys.executable, "-c", TWO_CLIENTS, str(netns.PORT), "2001:db8::10",
                         "2001:db8::11", "2001:db8:0:1::10"])
        self.assertEqual(p.returncode, 0, p.stderr)
        got = __import__("json").loads(p.stdout)
        self.assertTrue(got["2001:db8::10"].startswith("220 "), got)
        self.assertTrue(got["2001:db8::11"].startswith(
            "421 4.7.0 mx.imsd.test Too many connections from your address"), got)
        self.assertTrue(got["2001:db8:0:1::10"].startswith("220 "), got)
        self.assertIn("reason=client-connection-limit", self.srv.log_text())
