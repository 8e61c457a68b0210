#!/usr/bin/env python3
"""abuse — what hostile clients cost imsd: memory per connection and harvesting speed.

    bench/abuse.py [--imsd build/imsd] [--conns 1000] [--which ehlo,noeol,data,slow,harvest]

Starts the given imsd on a free loopback port in a temporary directory and measures, from
/proc/PID/status (VmRSS), what each kind of abusive client costs:

  ehlo     every connection writes up to 1 MiB of pipelined "EHLO a" and reads nothing
  noeol    every connection writes 64 KiB of a command line that never ends
  data     every connection streams 4 MiB of DATA past a 1 MiB message_size_limit
  slow     --slow connections (default 10,000) each with half a command line sent
  harvest  300 unknown RCPTs then a valid one on one connection: time and outcome

Figures only (no assertion): the integration tests in tests/integration/test_limits.py
assert the bounds. Traffic goes to 127.0.0.1 only; every loop is bounded.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from imsdtest import (Server, blast, close_all, connect_many, peak_rss,  # noqa: E402
                      raise_nofile, rss_kib)


class Imsd:
    """The test harness's server with a few settings for many connections, in a
    temporary directory; an older binary without run_user gets it dropped."""

    def __init__(self, binary, **conf):
        self.tmp = tempfile.mkdtemp(prefix="imsd-abuse-")
        c = {"log_level": "warn", "max_connections": 20000, "max_connections_per_ip": 20000}
        c.update(conf)
        self.srv = Server(os.path.join(self.tmp, "srv"), start=False, binary=binary, **c)
        chk = subprocess.run([binary, "check", "-c", self.srv.conf_path], capture_output=True,
                             text=True, cwd=self.srv.dir)
        if chk.returncode != 0 and "run_user" in chk.stdout + chk.stderr:
            self.srv.set_conf(run_user=None)
        raise_nofile(40000)
        self.srv.start()
        self.port = self.srv.port
        self.dir = self.srv.dir

    def rss(self):
        return rss_kib(self.srv.proc.pid)

    def stop(self):
        try:
            self.srv.stop(expect_status=None)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def settle(srv, seconds=1.5):
    return peak_rss(srv.srv.proc.pid, seconds)


def measure_flood(binary, conns, payload, total, label, **conf):
    srv = Imsd(binary, **conf)
    try:
        base = settle(srv, 0.5)
        socks = connect_many(srv.port, conns)
        blast(socks, payload, total)
        peak = settle(srv, 4.0)
        close_all(socks)
        time.sleep(2.5)
        after = srv.rss()
        print("%-8s %5d conns: RSS %7d -> %7d KiB (+%.1f KiB/conn), %7d KiB after close"
              % (label, conns, base, peak, (peak - base) / conns, after), flush=True)
        return base, peak, after
    finally:
        srv.stop()


def measure_slow(binary, conns):
    srv = Imsd(binary)
    try:
        base = settle(srv, 0.5)
        socks = connect_many(srv.port, conns)
        for s in socks:
            s.sendall(b"EHLO slow.example\r\nMAIL FROM:<half-a-line@exa")
        peak = settle(srv, 4.0)
        close_all(socks)
        time.sleep(2.5)
        after = srv.rss()
        print("slow     %5d conns: RSS %7d -> %7d KiB (+%.2f KiB/conn), %7d KiB after close"
              % (conns, base, peak, (peak - base) / conns, after), flush=True)
    finally:
        srv.stop()


def measure_harvest(binary, n=300):
    rdir = tempfile.mkdtemp(prefix="imsd-abuse-rcpts-")
    rfile = os.path.join(rdir, "rcpts")
    with open(rfile, "w") as f:
        f.write("alice@localhost\n")
    srv = Imsd(binary, recipients_file=rfile)
    try:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=60)
        f = s.makefile("rb")
        f.readline()
        t0 = time.monotonic()
        s.sendall(b"EHLO h\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        s.sendall(b"MAIL FROM:<h@example.org>\r\n")
        f.readline()
        rejected = 0
        outcome = "all %d answered" % n
        deadline = time.monotonic() + 120
        for i in range(n):
            if time.monotonic() > deadline:
                outcome = "stopped after 120 s"
                break
            try:
                s.sendall(b"RCPT TO:<user%d@localhost>\r\n" % i)
                line = f.readline()
            except OSError:
                line = b""
            if not line:
                outcome = "closed by the server after %d rejections" % rejected
                break
            if line.startswith(b"421"):
                outcome = "421 after %d rejections: %s" % (rejected, line.decode().strip())
                break
            rejected += 1
        else:
            s.sendall(b"RCPT TO:<alice@localhost>\r\n")
            outcome += "; valid one: " + f.readline().decode().strip()
        print("harvest  %d unknown RCPTs: %.2f s, %s" % (n, time.monotonic() - t0, outcome),
              flush=True)
        s.close()
    finally:
        srv.stop()
        shutil.rmtree(rdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--imsd", default=os.path.join(ROOT, "build", "imsd"))
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--slow", type=int, default=10000)
    ap.add_argument("--which", default="ehlo,noeol,data,slow,harvest")
    a = ap.parse_args()
    raise_nofile(max(a.conns, a.slow) + 200)
    which = a.which.split(",")
    print("imsd: %s" % a.imsd, flush=True)
    if "ehlo" in which:
        measure_flood(a.imsd, a.conns, b"EHLO a\r\n" * 1024, 1024 * 1024, "ehlo")
    if "noeol" in which:
        measure_flood(a.imsd, a.conns, b"x" * 8192, 64 * 1024, "noeol")
    if "data" in which:
        n = max(1, a.conns // 10)
        measure_flood(a.imsd, n, b"EHLO d\r\nMAIL FROM:<d@example.org>\r\nRCPT TO:<alice@localhost>\r\n"
                      b"DATA\r\n" + b"y" * 998 + b"\r\n" + (b"z" * 998 + b"\r\n") * 4000,
                      4 * 1024 * 1024, "data", message_size_limit="1048576")
    if "slow" in which:
        measure_slow(a.imsd, a.slow)
    if "harvest" in which:
        measure_harvest(a.imsd)


if __name__ == "__main__":
    main()
