"""metrics_listen: GET /metrics in the Prometheus text format, checked by `promtool check
metrics` and scraped by a real Prometheus server; what each family counts (mail received,
delivered and deferred, the queue, DNS, the loopback STARTTLS policy, TLS handshakes, AUTH,
the group commit); and the strict little HTTP server in front of it.

Everything listens on 127.0.0.1; the Prometheus server the test starts is stopped by its pid.
"""

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import unittest
import urllib.parse
import urllib.request

import imsdtest
import peers
from imsdtest import free_port, run_cli, wait_for

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
PROMETHEUS_START = 30.0      # seconds for the Prometheus server to be ready
PROMETHEUS_SEE = 30.0        # seconds for a scraped value to show in a query
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$")


def scrape(port, path="/metrics", method="GET", timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def samples(text):
    """{'name{labels}': float} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if m is None:
            raise AssertionError("not a sample line: %r" % line)
        out[m.group(1)] = float(m.group(2))
    return out


def raw_request(port, data, timeout=5):
    """Send bytes, read the answer until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return buf
            buf += chunk
    finally:
        s.close()


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=mx.imsd.test"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError("openssl req: %s" % p.stderr)
    return cert, key


class MetricsCase(peers.RelayCase):

    def metrics_server(self, dns=None, relay=False, **conf):
        mport = free_port()
        if relay:
            srv = self.sender(dns, start=False, metrics_listen="127.0.0.1:%d" % mport, **conf)
        else:
            srv = self.server(start=False, metrics_listen="127.0.0.1:%d" % mport, **conf)
        srv.mport = mport
        srv.start()
        self.assertTrue(wait_for(lambda: peers.port_accepts("127.0.0.1", mport), 5),
                        "metrics_listen 127.0.0.1:%d does not accept" % mport)
        return srv

    def metrics(self, srv):
        status, headers, body = scrape(srv.mport)
        self.assertEqual(status, 200)
        self.assertTrue(headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
                        headers)
        return body.decode()

    def value(self, srv, name):
        return samples(self.metrics(srv)).get(name)

    def wait_value(self, srv, name, pred, timeout=imsdtest.DELIVERY_TIMEOUT):
        # [value] so that a wanted 0 counts as found
        v = wait_for(lambda: (lambda x: [x] if x is not None and pred(x) else None)(
            self.value(srv, name)), timeout)
        if not v:
            self.fail("%s never satisfied the condition; last %r" % (name, self.value(srv, name)))
        return v[0]


class Exposition(MetricsCase):

    def test_promtool_accepts_the_exposition_after_mail_was_received_and_delivered(self):
        if not os.access(PROMTOOL, os.X_OK):
            self.fail("%s missing: scripts/deps.sh test installs the Debian package prometheus"
                      % PROMTOOL)
        srv = self.metrics_server()
        before = samples(self.metrics(srv))
        self.assertEqual(before["imsd_messages_received_total"], 0)
        conns = before["imsd_connections_total"]      # the harness's start-up probe
        for i in range(3):
            peers.submit(srv, "alice@example.org", ["bob@localhost"],
                         imsdtest.make_message("metrics %d" % i, to="bob@localhost"))
        srv.wait_mail("localhost", "bob", 3)
        self.wait_value(srv, "imsd_messages_delivered_total", lambda v: v == 3)
        text = self.metrics(srv)
        s = samples(text)
        self.assertEqual(s["imsd_messages_received_total"], 3)
        self.assertEqual(s['imsd_recipients_total{outcome="delivered"}'], 3)
        self.assertEqual(s["imsd_connections_total"], conns + 3)
        self.assertEqual(s["imsd_connections_open"], 0)
        self.assertEqual(s["imsd_queue_messages"], 0)
        self.assertEqual(s["imsd_commit_batch_size_sum"], 3)
        self.assertGreaterEqual(s["imsd_commit_fsync_seconds_count"], 1)
        self.assertEqual(s['imsd_commit_fsync_seconds_bucket{le="+Inf"}'],
                         s["imsd_commit_fsync_seconds_count"])
        # every family has HELP and TYPE; counters end in _total
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        helps = set(re.findall(r"^# HELP (\S+) ", text, re.M))
        self.assertEqual(set(types), helps)
        for name, t in types.items():
            if t == "counter":
                self.assertTrue(name.endswith("_total"), name)
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, "promtool: %s%s" % (p.stdout, p.stderr))
        self.assertEqual((p.stdout + p.stderr).strip(), "", "promtool has remarks")

    def test_head_gets_the_headers_only_and_other_paths_get_404(self):
        srv = self.metrics_server()
        status, headers, body = scrape(srv.mport, method="HEAD")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        self.assertGreater(int(headers["Content-Length"]), 1000)
        for path in ("/", "/metric", "/metrics/", "/metricsx", "/favicon.ico"):
            self.assertEqual(scrape(srv.mport, path)[0], 404, path)
        self.assertEqual(scrape(srv.mport, "/metrics?format=x")[0], 200)
        status, headers, _ = scrape(srv.mport, method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("Allow"), "GET, HEAD")

    def test_malformed_requests_get_precise_errors_and_the_server_goes_on(self):
        srv = self.metrics_server()
        cases = [
            (b"GET /metrics HTTP/1.1\r\n\r\n", b"400"),                    # no Host
            (b"GET /metrics HTTP/1.1\nHost: a\n\n", b"400"),               # bare LF
            (b"GET /metrics HTTP/2.0\r\nHost: a\r\n\r\n", b"505"),
            (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", b"414"),
            (b"GET /metrics HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 2000 + b"\r\n\r\n", b"431"),
            (b"GET /metrics HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: y\r\n" % i
                                                           for i in range(40)) + b"\r\n", b"431"),
            (b"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", b"400"),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, b"400"),  # TLS
        ]
        for req, code in cases:
            answer = raw_request(srv.mport, req)
            self.assertTrue(answer.startswith(b"HTTP/1.1 " + code + b" "),
                            "%r -> %r" % (req[:60], answer[:80]))
        self.assertEqual(scrape(srv.mport)[0], 200)

    def test_a_silent_scraper_blocks_neither_smtp_nor_other_scrapes(self):
        srv = self.metrics_server()
        idle = [socket.create_connection(("127.0.0.1", srv.mport), timeout=5) for _ in range(3)]
        half = socket.create_connection(("127.0.0.1", srv.mport), timeout=5)
        half.sendall(b"GET /metrics HTTP/1.1\r\nHo")
        try:
            t0 = time.monotonic()
            code, text = peers.submit(srv, "alice@example.org", ["bob@localhost"],
                                      imsdtest.make_message("while idle", to="bob@localhost"))
            self.assertEqual(code, 250)
            self.assertEqual(scrape(srv.mport)[0], 200)
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            for s in idle + [half]:
                s.close()

    def test_idle_connections_cannot_keep_a_scraper_out(self):
        # issue 24, finding 8: 16 connections that send nothing used to fill the table, and
        # every scrape got a reset, renewable every 10 s
        srv = self.metrics_server()

        def idle_from(source, n):
            out = []
            for _ in range(n):
                s = socket.socket()
                s.bind((source, 0))
                s.settimeout(5)
                s.connect(("127.0.0.1", srv.mport))
                out.append(s)
                time.sleep(0.02)        # accepted in this order
            self.addCleanup(lambda: [x.close() for x in out])
            return out

        def closed_by_server(s, wait=2):
            s.settimeout(wait)
            try:
                return s.recv(1) == b""
            except ConnectionResetError:
                return True
            except socket.timeout:
                return False

        # one address: at most METRICS_HTTP_PER_PEER (4) at once, its oldest idle go first
        first = idle_from("127.0.0.2", 8)
        self.assertEqual([closed_by_server(s) for s in first[:4]], [True] * 4)
        # the table full of idle clients from four addresses; a scrape still gets its answer
        crowd = idle_from("127.0.0.3", 4) + idle_from("127.0.0.4", 4) + idle_from("127.0.0.5", 4)
        for _ in range(3):
            self.assertEqual(scrape(srv.mport)[0], 200)
        self.assertTrue(any(closed_by_server(s, 0.3) for s in crowd + first[4:]),
                        "a scrape found room only by evicting an idle client")

    def test_an_unprivileged_user_reads_the_metrics(self):
        # no root and no control socket: any local user with a TCP client will do
        imsdtest.need_root("running a client as nobody")
        setpriv = imsdtest.need_tool("setpriv", "util-linux")
        srv = self.metrics_server()
        p = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                            "python3", "-c",
                            "import urllib.request,sys; r=urllib.request.urlopen("
                            "'http://127.0.0.1:%d/metrics', timeout=10); "
                            "sys.stdout.write(r.read().decode())" % srv.mport],
                           capture_output=True, text=True, timeout=30, cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("imsd_messages_received_total 0\n", p.stdout)

    def test_a_reload_that_changes_metrics_listen_says_it_needs_a_restart(self):
        srv = self.metrics_server()
        srv.set_conf(metrics_listen="127.0.0.1:%d" % free_port())
        srv.send_signal(signal.SIGHUP)
        peers.wait_event(srv, "reload-warning")
        self.assertIn("metrics_listen changed", srv.log_text())
        self.assertEqual(scrape(srv.mport)[0], 200)

    def test_metrics_listen_is_checked_and_shown_by_imsd_check(self):
        srv = self.server(start=False, metrics_listen="127.0.0.1:9187")
        p = run_cli(["check", "-c", srv.conf_path])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("metrics_listen = 127.0.0.1:9187\n", p.stdout)
        srv.set_conf(metrics_listen=None)
        p = run_cli(["check", "-c", srv.conf_path])
        self.assertIn("metrics_listen =  # default\n", p.stdout)
        srv.set_conf(metrics_listen="localhost:9187")
        p = run_cli(["check", "-c", srv.conf_path])
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"imsd\.conf:\d+: metrics_listen: \"localhost:9187\" is not "
                         r"ADDR:PORT")

    def test_a_metrics_address_in_use_stops_the_start_with_a_reason(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        try:
            srv = self.server(start=False,
                              metrics_listen="127.0.0.1:%d" % busy.getsockname()[1])
            # a start-up error exits at once without freeing what was set up (as a
            # `listen` address in use does): no leak report for that exit
            env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1")
            p = subprocess.run([srv.binary, "run", "-c", srv.conf_path], capture_output=True,
                               text=True, timeout=20, stdin=subprocess.DEVNULL, env=env)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("metrics_listen 127.0.0.1:%d: Address already in use"
                          % busy.getsockname()[1], p.stderr)
        finally:
            busy.close()


class WhatIsCounted(MetricsCase):

    def test_deferred_relay_mail_shows_in_queue_gauges_dns_and_deferrals(self):
        dns = self.dns(mx=[("dest.test", "mx1.dest.test", 10)],
                       hosts=[("mx1.dest.test", "127.0.0.3")])
        tx = self.metrics_server(dns, relay=True, retry_min="30s", retry_max="1h")
        qid = self.send(tx, ["bob@dest.test", "carol@dest.test"], "deferred one")
        peers.wait_event(tx, "deferred", count=2, qid=qid)
        s = samples(self.metrics(tx))
        self.assertEqual(s["imsd_queue_messages"], 1)
        self.assertEqual(s["imsd_queue_recipients"], 2)
        self.assertGreaterEqual(s["imsd_queue_oldest_age_seconds"], 0)
        self.assertEqual(s['imsd_recipients_total{outcome="deferred"}'], 2)
        self.assertEqual(s["imsd_messages_deferred_total"], 1)
        self.assertGreaterEqual(s["imsd_dns_lookups_total"], 1)
        self.assertEqual(s["imsd_messages_delivered_total"], 0)
        # a domain that does not exist: a DNS failure by its reason, and a bounce
        self.send(tx, ["dave@nx.test"], "to nowhere")
        self.wait_value(tx, 'imsd_dns_failures_total{reason="nxdomain"}', lambda v: v >= 1)
        self.wait_value(tx, "imsd_messages_bounced_total", lambda v: v >= 1)
        time.sleep(1.5)
        self.assertGreaterEqual(self.value(tx, "imsd_queue_oldest_age_seconds"), 1)

    def test_loopback_starttls_refusal_is_counted_by_itself_and_handshakes_by_outcome(self):
        cert, key = make_cert(self.tmp)
        sport = free_port()
        srv = self.server(start=False, tls_cert_file=cert, tls_key_file=key)
        mport = free_port()
        srv.set_conf(smtps_listen="127.0.0.1:%d" % sport, metrics_listen="127.0.0.1:%d" % mport)
        srv.mport = mport
        srv.start()
        c = srv.client()
        c.ehlo()
        self.assertEqual(c.cmd("STARTTLS").code, 454)
        c.close()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", sport), timeout=10) as raw:
            with ctx.wrap_socket(raw) as t:
                self.assertTrue(t.recv(512).startswith(b"220 "))
        with socket.create_connection(("127.0.0.1", sport), timeout=10) as raw:
            raw.sendall(b"EHLO not-tls\r\n\r\n")
            try:
                raw.recv(512)       # an alert, or a reset: the server closes
            except ConnectionResetError:
                pass
        self.wait_value(srv, 'imsd_tls_handshake_failures_total{reason="protocol"}',
                        lambda v: v == 1)
        s = samples(self.metrics(srv))
        self.assertEqual(s['imsd_starttls_refused_total{reason="loopback"}'], 1)
        self.assertEqual(s['imsd_starttls_refused_total{reason="no-certificate"}'], 0)
        self.assertEqual(s["imsd_tls_handshakes_total"], 1)

    def test_auth_successes_and_failures_are_counted(self):
        import netns
        users = netns.write_users(os.path.join(self.tmp, "users"))
        srv = self.metrics_server(auth_users_file=users)
        c = srv.client()
        c.ehlo()
        self.assertEqual(c.cmd("AUTH PLAIN " + netns.plain_token("alice", netns.PASSWORD)).code,
                         235)
        c.close()
        c = srv.client()
        c.ehlo()
        self.assertEqual(c.cmd("AUTH PLAIN " + netns.plain_token("alice", "wrong")).code, 535)
        c.close()
        s = samples(self.metrics(srv))
        self.assertEqual(s["imsd_auth_successes_total"], 1)
        self.assertEqual(s['imsd_auth_failures_total{reason="credentials"}'], 1)

    def test_connections_refused_by_the_limit_are_counted_by_reason(self):
        srv = self.metrics_server(max_connections_per_ip=1)
        conns = self.value(srv, "imsd_connections_total")     # the harness's probe
        c1 = srv.client()
        c2 = srv.client(greet=False)
        self.assertEqual(c2.reply().code, 421)
        self.assertEqual(self.value(srv, "imsd_connections_open"), 1)
        c1.close()
        c2.close()
        self.wait_value(srv, "imsd_connections_open", lambda v: v == 0)
        s = samples(self.metrics(srv))
        self.assertEqual(s['imsd_connections_refused_total{reason="client-connection-limit"}'], 1)
        self.assertEqual(s["imsd_connections_total"], conns + 2)


class RealPrometheus(MetricsCase):
    """A Prometheus server (Debian's) on 127.0.0.1 scrapes imsd every second; its HTTP API
    must show imsd_messages_received_total, and show it grow after mail is sent."""

    def start_prometheus(self, target_port):
        if not os.access(PROMETHEUS, os.X_OK):
            self.fail("%s missing: scripts/deps.sh test installs the Debian package prometheus"
                      % PROMETHEUS)
        d = os.path.join(self.tmp, "prometheus")
        os.makedirs(os.path.join(d, "data"))
        conf = os.path.join(d, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: imsd\n    scrape_timeout: 1s\n"
                    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % target_port)
        port = free_port()
        log = open(os.path.join(d, "prometheus.log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen([PROMETHEUS, "--config.file=" + conf,
                                 "--storage.tsdb.path=" + os.path.join(d, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port,
                                 "--log.level=warn"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=d)

        def stop():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self.addCleanup(stop)
        self.prom_log = os.path.join(d, "prometheus.log")

        def ready():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=2) as r:
                    return r.status == 200
            except OSError:
                return proc.poll() is not None and "exited"
        r = wait_for(ready, PROMETHEUS_START, 0.2)
        if r is not True:
            with open(self.prom_log, errors="replace") as f:
                self.fail("Prometheus not ready on 127.0.0.1:%d within %.0f s:\n%s"
                          % (port, PROMETHEUS_START, f.read()[-3000:]))
        return port

    def query(self, port, expr):
        url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (port, urllib.parse.quote(expr))
        with urllib.request.urlopen(url, timeout=5) as r:
            doc = json.load(r)
        self.assertEqual(doc["status"], "success", doc)
        res = doc["data"]["result"]
        return float(res[0]["value"][1]) if res else None

    def wait_query(self, port, expr, pred):
        v = wait_for(lambda: (lambda x: [x] if x is not None and pred(x) else None)(
            self.query(port, expr)), PROMETHEUS_SEE, 0.5)
        if not v:
            with open(self.prom_log, errors="replace") as f:
                self.fail("Prometheus never saw %s as wanted (last %r)\n%s"
                          % (expr, self.query(port, expr), f.read()[-3000:]))
        return v[0]

    def test_prometheus_scrapes_and_sees_received_mail_grow(self):
        srv = self.metrics_server()
        port = self.start_prometheus(srv.mport)
        self.assertEqual(self.wait_query(port, "imsd_messages_received_total",
                                         lambda v: v >= 0), 0)
        self.assertEqual(self.wait_query(port, 'up{job="imsd"}', lambda v: v == 1), 1)
        for i in range(2):
            peers.submit(srv, "alice@example.org", ["bob@localhost"],
                         imsdtest.make_message("seen by prometheus %d" % i, to="bob@localhost"))
        self.assertEqual(self.wait_query(port, "imsd_messages_received_total",
                                         lambda v: v == 2), 2)
        self.wait_query(port, "imsd_messages_delivered_total", lambda v: v == 2)
        self.assertGreaterEqual(self.wait_query(
            port, "sum(imsd_commit_fsync_seconds_count)", lambda v: v >= 1), 1)


if __name__ == "__main__":
    unittest.main()
