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
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Imsd:
    def __init__(self, binary, **conf):
        self.dir = tempfile.mkdtemp(prefix="imsd-abuse-")
        self.port = free_port()
        c = {"hostname": "mx.imsd.test", "listen": "127.0.0.1:%d" % self.port,
             "spool_dir": self.dir + "/spool", "mail_dir": self.dir + "/mail",
             "local_domains": "localhost", "log_level": "warn",
             "max_connections": "20000", "max_connections_per_ip": "20000",
             "run_user": "root"}
        c.update(conf)
        self.conf_path = self.dir + "/imsd.conf"
        self.write(c)
        # run_user exists from the privilege change on; an older binary refuses the key
        chk = subprocess.run([binary, "check", "-c", self.conf_path], capture_output=True,
                             text=True, cwd=self.dir)
        if chk.returncode != 0 and "run_user" in chk.stdout + chk.stderr:
            del c["run_user"]
            self.write(c)
        self.log = open(self.dir + "/imsd.log", "wb")
        self.proc = subprocess.Popen([binary, "run", "-c", self.conf_path], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, cwd=self.dir,
                                     preexec_fn=raise_nofile)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                s.recv(512)
                s.sendall(b"QUIT\r\n")
                s.close()
                break
            except OSError:
                time.sleep(0.05)

    def write(self, c):
        with open(self.conf_path, "w") as f:
            f.write("".join("%s = %s\n" % kv for kv in c.items()))

    def rss(self):
        return rss_kib(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def connect_many(port, n, greet=True):
    """n connections, each with a small receive window (an attacker chooses it: that is
    what makes the server, not the kernel, hold the replies it cannot send)."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        if greet:
            s.recv(512)
        socks.append(s)
    return socks


def blast(socks, payload, total):
    """Write up to total bytes of payload on every socket without reading; stop at EAGAIN."""
    for s in socks:
        s.setblocking(False)
        sent = 0
        while sent < total:
            try:
                sent += s.send(payload)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break


def settle(srv, seconds=1.5):
    """The highest RSS seen over the next few seconds (sampled every 0.1 s)."""
    peak = 0
    end = time.monotonic() + seconds
    while True:
        peak = max(peak, srv.rss())
        if time.monotonic() >= end:
            return peak
        time.sleep(0.1)


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


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
    srv = Imsd(binary)
    try:
        with open(srv.dir + "/rcpts", "w") as f:
            f.write("alice@localhost\n")
        conf = {"hostname": "mx.imsd.test", "listen": "127.0.0.1:%d" % srv.port}
        srv.proc.terminate()
        srv.proc.wait(10)
        srv2 = Imsd(binary, recipients_file=srv.dir + "/rcpts")
        s = socket.create_connection(("127.0.0.1", srv2.port), timeout=60)
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
        srv2.stop()
    finally:
        shutil.rmtree(srv.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--imsd", default=os.path.join(ROOT, "build", "imsd"))
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--slow", type=int, default=10000)
    ap.add_argument("--which", default="ehlo,noeol,data,slow,harvest")
    a = ap.parse_args()
    raise_nofile()
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
