"""PROXY protocol (HAProxy's v1 and v2) from proxy_networks: the client address and the address
it connected to come from the header, and every policy uses them.

The "balancer" in the raw tests is a client bound to 127.0.0.3 (proxy_networks =
127.0.0.3/32), so the harness's own probe from 127.0.0.1 is an ordinary client. The last class
puts a real HAProxy in TCP mode in front of two imsd instances, one with send-proxy (v1) and
one with send-proxy-v2.
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import time

from imsdtest import Client, ImsdCase, free_port, make_message, wait_for
import netns

BALANCER = "127.0.0.3"
V2SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, dst, sport=40000, dport=25):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def v2(src, dst, sport=40000, dport=25, local=False):
    if local:
        return V2SIG + bytes([0x20, 0x00, 0, 0])
    a = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return V2SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(a)) + a


class ProxyHeader(ImsdCase):

    def proxied(self, srv, header, source=BALANCER):
        c = Client(srv.port, source=source, timeout=10)
        self.clients.append(c)
        self.addCleanup(c.close)
        c.send(header)
        return c

    def proxy_server(self, **conf):
        cert, key = netns.make_cert(self.tmp)
        conf.setdefault("proxy_networks", BALANCER + "/32")
        return self.server(tls_cert_file=cert, tls_key_file=key, **conf)

    def test_v1_client_and_destination_come_from_the_header(self):
        srv = self.proxy_server()
        c = self.proxied(srv, v1("192.0.2.7", "198.51.100.10", 40001, 25))
        self.assertReply(c.reply(), 220)
        ehlo = c.ehlo()
        # connected-to = 198.51.100.10, not loopback: STARTTLS is offered although the
        # socket itself is a loopback one
        self.assertIn("STARTTLS", ehlo.text)
        self.assertReply(c.cmd("MAIL FROM:<p@example.org>"), 250)
        # relay_networks (192.0.2.0/24 in the harness) judges the client of the header
        self.assertReply(c.cmd("RCPT TO:<someone@remote.example>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(make_message("via proxy") + b".\r\n")
        self.assertReply(c.reply(), 250)
        f = srv.wait_mail("localhost", "alice")
        with open(f[0], "rb") as fh:
            head = fh.read(600)
        self.assertIn(b"[192.0.2.7]", head)
        self.assertNotIn(b"127.0.0.3", head)
        self.assertRegex(srv.log_text(), r"event=connect client=192\.0\.2\.7:40001 "
                         r"local=198\.51\.100\.10:25 listener=smtp worker=\d+ proxy=127\.0\.0\.3:\d+")

    def test_v1_loopback_destination_gets_no_starttls_and_other_clients_no_relay(self):
        srv = self.proxy_server()
        c = self.proxied(srv, v1("203.0.113.5", "127.0.0.1"))
        self.assertReply(c.reply(), 220)
        self.assertNotIn("STARTTLS", c.ehlo().text)
        self.assertReply(c.cmd("MAIL FROM:<p@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<someone@remote.example>"), 554, "5.7.1")

    def test_v2_header_and_v2_local_health_check(self):
        srv = self.proxy_server()
        c = self.proxied(srv, v2("192.0.2.8", "198.51.100.10", 40002, 25))
        self.assertReply(c.reply(), 220)
        self.assertIn("STARTTLS", c.ehlo().text)
        self.assertRegex(srv.log_text(), r"client=192\.0\.2\.8:40002 local=198\.51\.100\.10:25")
        h = self.proxied(srv, v2(None, None, local=True))
        self.assertReply(h.reply(), 220)
        # a health check: no client named, so not the balancer's addresses either
        self.assertRegex(srv.log_text(), r"client=0\.0\.0\.0:0 local=0\.0\.0\.0:0 "
                         r"listener=smtp worker=\d+ proxy=127\.0\.0\.3:\d+")

    def test_headers_without_addresses_get_no_exemption_and_no_mail(self):
        # issue 24, finding 5: a balancer in relay_networks (and on loopback); its LOCAL,
        # UNKNOWN and UNSPEC headers used to hand every such session its trust: relaying to
        # any domain, no DNS lists or SPF, DKIM signing, AUTH without TLS
        users = netns.write_users(self.tmp + "/users")
        srv = self.proxy_server(relay_networks="127.0.0.0/8", auth_users_file=users)
        named = self.proxied(srv, v1("203.0.113.9", "127.0.0.1"))
        self.assertReply(named.reply(), 220)
        self.assertIn("AUTH", named.ehlo().text)        # loopback destination: AUTH offered
        self.assertReply(named.cmd("MAIL FROM:<p@example.org>"), 250)
        self.assertReply(named.cmd("RCPT TO:<x@remote.example>"), 554, "5.7.1")
        for name, header in (("v2 LOCAL", v2(None, None, local=True)),
                             ("v1 UNKNOWN", b"PROXY UNKNOWN\r\n"),
                             ("v1 UNKNOWN with addresses", b"PROXY UNKNOWN 192.0.2.1 127.0.0.1 "
                                                           b"1 25\r\n"),
                             ("v2 UNSPEC", V2SIG + bytes([0x21, 0x00, 0, 0]))):
            with self.subTest(header=name):
                c = self.proxied(srv, header)
                self.assertReply(c.reply(), 220)
                ehlo = c.ehlo()
                self.assertEqual(ehlo.code, 250)             # a health check still works
                self.assertNotIn("AUTH", ehlo.text)
                self.assertReply(c.cmd("NOOP"), 250)
                self.assertIn(c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==").code, (503, 538))
                r = c.cmd("MAIL FROM:<p@example.org>")
                self.assertReply(r, 550, "5.7.1")
                self.assertIn("names no client", r.text)
                self.assertReply(c.cmd("RCPT TO:<x@remote.example>"), 503)
                self.assertReply(c.cmd("QUIT"), 221)
        self.assertIn("event=reject stage=mail status=5.7.1 reason=proxy-no-address",
                      srv.log_text())

    def test_per_client_limit_counts_the_client_of_the_header(self):
        srv = self.proxy_server(max_connections_per_ip=1)
        a = self.proxied(srv, v1("192.0.2.20", "198.51.100.10"))
        self.assertReply(a.reply(), 220)
        b = self.proxied(srv, v1("192.0.2.20", "198.51.100.10"))
        self.assertReply(b.reply(), 421, "4.7.0")
        c = self.proxied(srv, v1("192.0.2.21", "198.51.100.10"))
        self.assertReply(c.reply(), 220)

    def test_header_from_outside_proxy_networks_is_refused(self):
        srv = self.proxy_server()
        c = Client(srv.port, source="127.0.0.4", timeout=10)
        self.addCleanup(c.close)
        self.assertReply(c.reply(), 220)
        r = c.cmd("PROXY TCP4 192.0.2.7 198.51.100.10 40000 25")
        self.assertReply(r, 421, "4.7.0")
        self.assertIn("PROXY header not accepted", r.text)
        self.assertTrue(c.closed_by_server())
        self.assertIn("event=proxy-header-refused", srv.log_text())

    def test_malformed_header_closes_with_a_log_line(self):
        srv = self.proxy_server()
        for bad in (b"EHLO no-header\r\n", b"PROXY TCP4 192.0.2.7 198.51.100.10 1\r\n",
                    V2SIG + bytes([0x21, 0x11, 0, 4]) + b"abcd"):
            c = self.proxied(srv, bad)
            self.assertTrue(c.closed_by_server(), bad)
            self.assertFalse(any(t.startswith(b"S: 220") for t in c.transcript),
                             "a session was started for %r" % bad)
        log = srv.log_text()
        self.assertEqual(log.count("event=proxy-header-error"), 3, log)
        self.assertIn('reason="no PROXY header (v1 or v2) where one is required"', log)
        with srv.client() as c:          # ordinary clients are still served
            self.assertReply(c.ehlo(), 250)


HAPROXY_CFG = """
global
    maxconn 200
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend smtp
    bind 127.0.0.1:{front}
    default_backend imsd
backend imsd
    balance roundrobin
    server a 127.0.0.1:{pa} source {bal} send-proxy check check-send-proxy inter 200ms fall 1 rise 2
    server b 127.0.0.1:{pb} source {bal} send-proxy-v2 check check-send-proxy inter 200ms fall 1 rise 2
"""


class BehindHAProxy(ImsdCase):

    def start_haproxy(self, pa, pb):
        exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not os.access(exe, os.X_OK):
            self.fail("haproxy is not installed (scripts/deps.sh installs it for make test)")
        self.front = free_port()
        cfg = os.path.join(self.tmp, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY_CFG.format(front=self.front, pa=pa, pb=pb, bal=BALANCER))
        log = open(os.path.join(self.tmp, "haproxy.log"), "wb")
        proc = subprocess.Popen([exe, "-db", "-f", cfg], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log)

        def stop():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)     # our own child, by pid
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            log.close()
        self.addCleanup(stop)
        wait_for(lambda: self._accepts(self.front), timeout=10)
        return proc

    @staticmethod
    def _accepts(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def send_via(self, n, tag):
        ok = []
        for i in range(n):
            try:
                c = Client(self.front, source="127.0.0.9", timeout=10)
            except OSError:
                continue
            with c:
                g = c.reply()
                if g.code != 220:
                    continue
                r = self.transaction(c, "h@example.org", ["alice@localhost"],
                                     make_message("%s %d" % (tag, i)))
                if r.code == 250:
                    ok.append("%s %d" % (tag, i))
                c.cmd("QUIT")
        return ok

    def delivered_subjects(self, *servers):
        subj = []
        for srv in servers:
            for f in srv.maildir_files("localhost", "alice"):
                with open(f, "rb") as fh:
                    for line in fh.read().split(b"\n"):
                        if line.startswith(b"Subject: "):
                            subj.append(line[9:].decode().strip())
                            break
        return subj

    def test_mail_is_spread_over_two_instances_and_none_is_lost_when_one_is_killed(self):
        a = self.server(proxy_networks=BALANCER + "/32", log_level="info")
        b = self.server(proxy_networks=BALANCER + "/32", log_level="info")
        self.start_haproxy(a.port, b.port)
        time.sleep(0.8)                       # both marked up (rise 2 x 200 ms)
        first = self.send_via(20, "before")
        self.assertEqual(len(first), 20)
        wait_for(lambda: len(self.delivered_subjects(a, b)) >= 20, timeout=20)
        na, nb = len(self.delivered_subjects(a)), len(self.delivered_subjects(b))
        self.assertGreater(na, 0, "nothing reached instance a")
        self.assertGreater(nb, 0, "nothing reached instance b")
        # both saw the real client (v1 for a, v2 for b)
        for srv in (a, b):
            self.assertIn("client=127.0.0.9:", srv.log_text())
            f = srv.maildir_files("localhost", "alice")[0]
            with open(f, "rb") as fh:
                self.assertIn(b"[127.0.0.9]", fh.read(600))
        a.kill9()
        time.sleep(0.8)                       # the health check marks a down (fall 1)
        second = self.send_via(10, "after")
        self.assertEqual(len(second), 10, "sessions were not moved to the live instance")
        a.start()                             # the same spool: what a acknowledged survives
        want = set(first + second)
        wait_for(lambda: want <= set(self.delivered_subjects(a, b)), timeout=30)
        got = self.delivered_subjects(a, b)
        self.assertEqual(set(got), want)
        print("    HAProxy: %d + %d messages before the kill (a, b), %d after; all delivered"
              % (na, nb, len(second)), flush=True)
