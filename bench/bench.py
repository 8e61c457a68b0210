#!/usr/bin/env python3
"""imsd vs Postfix, side by side on this machine (make bench -> bench/run.sh -> this).

Everything runs on 127.0.0.1 in one temporary directory under /var/tmp (the spools of both
MTAs and the fsync test share its filesystem). smtp-sink is the relay host of both MTAs and
counts what it receives; a rate is "messages / (time from the start of the client until the
sink has counted every message)". Every loop here is bounded in iterations and in time.

Subcommands (used by the main run):  bench.py idle-client PORT N   (open N idle sessions)
"""
import argparse
import datetime
import os
import platform
import random
import re
import resource
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
SIZES = [(1024, "1 KiB"), (102400, "100 KiB")]
SESSIONS = [1, 10, 50]
PER_CONN = [1, 10]
RCPT = "rcpt@bench.example"      # a non-local domain for both MTAs: relayed to the sink
SENDER = "bench@client.example"

# ---------------------------------------------------------------------------------------------
# small helpers


def log(msg):
    print(msg, flush=True)


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1, below the ephemeral range."""
    out = []
    for p in random.sample(range(20000, 32000), 400):
        s = socket.socket()
        try:
            s.bind((HOST, p))
        except OSError:
            continue
        finally:
            s.close()
        out.append(p)
        if len(out) == n:
            return out
    raise SystemExit("bench: no free ports")


def wait_port(port, timeout, greeting=True):
    """Wait until something on port answers with a 220 greeting; bounded by timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection((HOST, port), timeout=5) as s:
                if not greeting:
                    return True
                data = s.recv(512)
                if data.startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    try:
                        s.recv(512)
                    except OSError:
                        pass
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def proc_status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def proc_pss(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def descendants(root):
    """root and all its descendant PIDs."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fmt_rate(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


# ---------------------------------------------------------------------------------------------
# the sink


class Sink:
    """smtp-sink -c: parse its running counter (sess=N quit=N mesg=N, CR separated)."""

    def __init__(self, port, tmp):
        self.port = port
        self.cmd = ["smtp-sink", "-c", "-u", "nobody", "-m", "1024", f"{HOST}:{port}", "1024"]
        self.count = 0
        self.expected = 0       # messages this sink must have counted so far
        self.last_change = time.monotonic()
        self.when = {}          # target count -> monotonic time it was reached
        self.targets = set()
        self.lock = threading.Lock()
        self.cv = threading.Condition(self.lock)
        self.errlog = open(os.path.join(tmp, f"sink-{port}.stderr"), "wb")
        self.p = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.errlog)
        self.t = threading.Thread(target=self._reader, daemon=True)
        self.t.start()
        if not wait_port(port, 10):
            raise SystemExit("bench: smtp-sink did not start")

    def _reader(self):
        rx = re.compile(rb"mesg=(\d+)")
        tail = b""
        while True:
            data = os.read(self.p.stdout.fileno(), 65536)
            if not data:
                return
            now = time.monotonic()
            chunk = tail + data
            ms = rx.findall(chunk)
            cut = chunk.rfind(b"\r")
            tail = chunk[cut + 1:] if cut >= 0 else chunk
            if len(tail) > 4096:
                tail = tail[-4096:]
            if ms:
                n = int(ms[-1])
                with self.cv:
                    if n > self.count:
                        self.count = n
                        self.last_change = now
                        for t in list(self.targets):
                            if n >= t:
                                self.when[t] = now
                                self.targets.discard(t)
                        self.cv.notify_all()

    def expect(self, target):
        with self.cv:
            if self.count >= target:
                self.when[target] = time.monotonic()
            else:
                self.targets.add(target)

    def forget(self, target):
        with self.cv:
            self.targets.discard(target)
            self.when.pop(target, None)

    def wait(self, target, deadline, stall=None):
        """Block until count >= target; None at the monotonic deadline, or when the count
        has not moved for `stall` seconds. Returns the time the target was reached."""
        with self.cv:
            start = time.monotonic()
            while self.count < target:
                now = time.monotonic()
                if now >= deadline:
                    return None
                if stall is not None and now - max(self.last_change, start) > stall:
                    return None
                self.cv.wait(min(deadline - now, 0.5))
            return self.when.pop(target, time.monotonic())

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)


# ---------------------------------------------------------------------------------------------
# the two MTAs


class Postfix:
    name = "Postfix"

    def __init__(self, tmp, port, sink_port):
        self.dir = os.path.join(tmp, "postfix")
        self.etc = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        self.data = os.path.join(self.dir, "data")
        self.maillog = os.path.join(self.dir, "maillog")
        self.port = port
        self.sink_port = sink_port
        for d in (self.etc, self.queue, self.data):
            os.makedirs(d, exist_ok=True)
        shutil.chown(self.data, "postfix", "postfix")
        self.main_cf = f"""# private Postfix instance for imsd's benchmark
compatibility_level = 3.6
queue_directory = {self.queue}
data_directory = {self.data}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.localdomain
mydestination = localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{sink_port}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
default_process_limit = 200
default_destination_concurrency_limit = 20
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_client_new_tls_session_rate_limit = 0
smtpd_client_auth_rate_limit = 0
smtp_tls_security_level = none
smtpd_tls_security_level = none
message_size_limit = 10240000
maillog_file = {self.maillog}
alias_maps =
alias_database =
local_recipient_maps =
append_dot_mydomain = no
biff = no
"""
        # chroot off everywhere (the private instance has no chroot jail); smtpd's maxproc
        # is 1100 so the 1,000-idle-session memory test gets one smtpd per session.
        self.master_cf = f"""{HOST}:{port} inet n - n - 1100 smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(self.main_cf)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(self.master_cf)
        self.running = False

    def postfix(self, *args, check=True):
        r = subprocess.run(["postfix", "-c", self.etc, *args], capture_output=True, text=True,
                           timeout=120)
        if check and r.returncode != 0:
            raise SystemExit(f"bench: postfix -c {self.etc} {' '.join(args)} failed: "
                             f"{r.stdout}{r.stderr}{self.tail_log()}")
        return r

    def tail_log(self, n=20):
        try:
            with open(self.maillog, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def start(self):
        self.postfix("check", check=False)   # creates the queue directories
        self.postfix("start")
        self.running = True
        if not wait_port(self.port, 30):
            raise SystemExit("bench: Postfix does not answer on port "
                             f"{self.port}\n{self.tail_log()}")

    def enable_tls(self, cert, key):
        subprocess.run(["postconf", "-c", self.etc, "-e", f"smtpd_tls_cert_file = {cert}",
                        f"smtpd_tls_key_file = {key}", "smtpd_tls_security_level = may",
                        "smtpd_tls_loglevel = 0"], check=True, timeout=60)
        self.postfix("reload")
        time.sleep(1.5)
        wait_port(self.port, 30)

    def master_pid(self):
        try:
            with open(os.path.join(self.data, "master.lock")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        if self.running:
            r = self.postfix("stop", check=False)
            if r.returncode != 0:
                self.postfix("abort", check=False)
            self.running = False

    def problems(self):
        """warning/error/fatal/panic lines from the maillog (count, first few)."""
        out = []
        try:
            with open(self.maillog, errors="replace") as f:
                for line in f:
                    if re.search(r"\b(warning|error|fatal|panic):", line):
                        out.append(line.rstrip("\n"))
        except OSError:
            pass
        return out


class Imsd:
    name = "imsd"

    def __init__(self, binary, tmp, port, sink_port, tag="imsd"):
        self.binary = os.path.abspath(binary)
        self.dir = os.path.join(tmp, tag)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port
        self.sink_port = sink_port
        self.conf = os.path.join(self.dir, "imsd.conf")
        self.logfile = os.path.join(self.dir, "imsd.log")
        self.settings = {
            "hostname": "imsd-bench.localdomain",
            "listen": f"{HOST}:{port}",
            "spool_dir": os.path.join(self.dir, "spool"),
            "mail_dir": os.path.join(self.dir, "mail"),
            "local_domains": "localhost",
            "relay_networks": "127.0.0.0/8",
            "relayhost": f"[127.0.0.1]:{sink_port}",
            "log_level": "warn",
            "max_connections": "20000",
            "max_connections_per_ip": "20000",
            "message_size_limit": "10m",
            "run_user": "root",     # a throwaway spool under /var/tmp; see README, Security
        }
        self.p = None
        self.logs = []

    def write_conf(self, **extra):
        s = dict(self.settings)
        s.update(extra)
        with open(self.conf, "w") as f:
            for k, v in s.items():
                f.write(f"{k} = {v}\n")
        r = subprocess.run([self.binary, "check", "-c", self.conf], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise SystemExit(f"bench: imsd check failed:\n{r.stdout}{r.stderr}")
        with open(self.conf) as f:
            return f.read()

    def start(self, wrapper=(), timeout=20):
        lf = open(self.logfile, "ab")
        self.logs.append(self.logfile)
        self.p = subprocess.Popen([*wrapper, self.binary, "run", "-c", self.conf],
                                  stdout=lf, stderr=lf, preexec_fn=raise_nofile)
        lf.close()
        if not wait_port(self.port, timeout):
            self.stop()
            raise SystemExit(f"bench: imsd does not answer on {self.port}:\n" +
                             open(self.logfile, errors="replace").read()[-3000:])

    def stop(self, timeout=30):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(10)
        self.p = None

    def problems(self):
        out = []
        try:
            with open(self.logfile, errors="replace") as f:
                for line in f:
                    if re.search(r"\b(warn|warning|error|fatal)\b", line):
                        out.append(line.rstrip("\n"))
        except OSError:
            pass
        return out


# ---------------------------------------------------------------------------------------------
# one measured run


class Target:
    """Where the client connects (port) and the sink that counts what arrives."""

    def __init__(self, name, port, sink, reset=None, queue_cmd=None):
        self.name, self.port, self.sink, self.reset = name, port, sink, reset
        self.queue_cmd = queue_cmd      # lists the MTA's queue, for the report on a failure


class Bench:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.failures = []
        self.progress = []
        self.tls_seen = {}      # target name -> "TLSv1.3/TLS_AES_256_GCM_SHA384"

    def load_cmd(self, port, size, sess, per_conn, total, tls=False):
        cmd = [self.args.smtpload, "-s", str(sess), "-m", str(total), "-r", str(per_conn),
               "-l", str(size), "-f", SENDER, "-t", RCPT, "-w", "120"]
        if tls:
            cmd.append("-T")
        cmd.append(f"{HOST}:{port}")
        return cmd

    def drain(self, tg, timeout=60):
        """Wait until tg's sink has every message sent so far (a previous run's tail)."""
        sink = tg.sink
        if sink.wait(sink.expected, time.monotonic() + timeout, stall=20) is None:
            self.failures.append(f"{tg.name}: the sink has {sink.count} of {sink.expected} "
                                 "messages; emptying the queue")
            self.reset(tg)

    def reset(self, tg):
        if tg.queue_cmd:
            try:
                r = subprocess.run(tg.queue_cmd, capture_output=True, text=True, timeout=30)
                lines = (r.stdout + r.stderr).strip().splitlines()
                self.failures.append(f"{tg.name} queue before it is emptied ({len(lines)} "
                                     "lines, first 4): " + " | ".join(lines[:4]))
            except (OSError, subprocess.TimeoutExpired):
                pass
        if tg.reset:
            tg.reset()
        time.sleep(0.5)
        tg.sink.expected = tg.sink.count

    def run(self, label, tg, size, sess, per_conn, total, tls=False, timeout=180, cmd=None):
        """One run; returns (end-to-end msgs/s, client-side msgs/s) or (None, None).

        The end-to-end wait gives up when the sink makes no progress for 20 s."""
        sink = tg.sink
        self.drain(tg)
        target = sink.expected + total
        sink.expect(target)
        custom = cmd is not None
        if not custom:
            cmd = self.load_cmd(tg.port, size, sess, per_conn, total, tls)
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            err = (err or "") + " (client timed out)"
        t_client = time.monotonic() - t0
        m = re.search(r"sent=(\d+)", out or "")
        mt = re.search(r"tls=(\S+)", out or "")
        if mt:
            self.tls_seen.setdefault(tg.name, mt.group(1))
        sent = int(m.group(1)) if m else 0
        if custom and p.returncode == 0:
            sent = total
        if p.returncode != 0 or sent != total:
            self.failures.append(f"{label}: client exit {p.returncode}, sent {sent}/{total}: "
                                 f"{(err or '').strip()[:300]}")
            sink.forget(target)
            self.reset(tg)
            return None, None
        sink.expected = target
        t_end = sink.wait(target, t0 + timeout + 120, stall=20)
        if t_end is None:
            self.failures.append(f"{label}: the sink got {sink.count - (target - total)} of "
                                 f"{total} messages (no progress for 20 s after the client "
                                 f"finished in {t_client:.1f} s)")
            sink.forget(target)
            self.reset(tg)
            return None, total / t_client
        self.progress.append(f"{label}: {total} msgs, client {t_client:.2f} s, "
                             f"end to end {t_end - t0:.2f} s, load {os.getloadavg()[0]:.1f}")
        if self.args.verbose:
            log("    " + self.progress[-1])
        return total / (t_end - t0), total / t_client


# ---------------------------------------------------------------------------------------------
# the parts of the benchmark


def plan_total(rate, sess, per_conn, seconds, cap):
    """Messages for a run of about `seconds` at `rate`, a multiple of sess*per_conn, >= 4 rounds."""
    unit = sess * per_conn
    n = max(int(rate * seconds), 2 * unit, 50)
    n = min(n, cap)
    return max(unit, (n + unit - 1) // unit * unit)


def grid(b, targets, reps, seconds, results):
    """targets: [ceiling, Postfix, imsd] Target objects; fills results as it goes."""
    for size, size_name in SIZES:
        cap = 40000 if size <= 4096 else 6000
        for sess in SESSIONS:
            for per_conn in PER_CONN:
                key = (size, sess, per_conn)
                point = f"{size_name} s={sess} r={per_conn}"
                totals = {}
                ok = {}
                # warm-up / pilot per target (not counted): spawns Postfix's processes,
                # warms imsd's buffers, and sizes the measured runs to ~`seconds` each.
                for tg in targets:
                    pilot = max(sess * per_conn, 40)
                    e2e, _ = b.run(f"{point} {tg.name} pilot", tg, size, sess, per_conn, pilot)
                    ok[tg.name] = e2e is not None
                    totals[tg.name] = plan_total(e2e or 50, sess, per_conn, seconds, cap)
                runs = {tg.name: [] for tg in targets}
                results[key] = {"runs": runs, "median": {}, "totals": totals}
                for rep in range(reps):
                    order = targets if rep % 2 == 0 else [targets[0], targets[2], targets[1]]
                    for tg in order:
                        if not ok[tg.name]:
                            continue        # failed at this point: not again (bounded time)
                        e2e, _ = b.run(f"{point} {tg.name} rep {rep + 1}", tg, size, sess,
                                       per_conn, totals[tg.name])
                        if e2e is None:
                            ok[tg.name] = False
                        else:
                            runs[tg.name].append(e2e)
                            # the pilot ran cold: resize when a run was far from `seconds`
                            took = totals[tg.name] / e2e
                            if took < 0.6 * seconds or took > 2 * seconds:
                                totals[tg.name] = plan_total(e2e, sess, per_conn, seconds, cap)
                med = {n: (statistics.median(v) if v else None) for n, v in runs.items()}
                results[key]["median"] = med
                log(f"  {point:22} ceiling {fmt_rate(med['ceiling']):>8}  Postfix "
                    f"{fmt_rate(med['Postfix']):>7}  imsd {fmt_rate(med['imsd']):>7}  "
                    f"imsd/Postfix {fmt_ratio(med['imsd'], med['Postfix'])}  "
                    f"(n: {totals['Postfix']}/{totals['imsd']})")
    return results


def fsync_rate(directory, seconds=3.0, max_ops=20000):
    path = os.path.join(directory, "fsync-test")
    buf = os.urandom(4096)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    n = 0
    t0 = time.monotonic()
    try:
        while n < max_ops and time.monotonic() - t0 < seconds:
            os.write(fd, buf)
            os.fdatasync(fd)
            n += 1
    finally:
        os.close(fd)
        os.unlink(path)
    append_rate = n / (time.monotonic() - t0)
    # one file per message: create, write 4 KiB, fdatasync, rename, fsync the directory
    d = os.path.join(directory, "fsync-dir")
    os.makedirs(d, exist_ok=True)
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    n = 0
    t0 = time.monotonic()
    try:
        while n < max_ops and time.monotonic() - t0 < seconds:
            tmpf = os.path.join(d, f"t{n}")
            fd = os.open(tmpf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, buf)
            os.fdatasync(fd)
            os.close(fd)
            os.rename(tmpf, os.path.join(d, f"q{n}"))
            os.fsync(dfd)
            n += 1
    finally:
        os.close(dfd)
    file_rate = n / (time.monotonic() - t0)
    shutil.rmtree(d, ignore_errors=True)
    return append_rate, file_rate


def idle_sessions(port, n, timeout=180):
    """Start `bench.py idle-client`; returns (process, opened) once all greetings arrived."""
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "idle-client", str(port),
                          str(n), str(timeout)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, preexec_fn=raise_nofile)
    line = ""
    end = time.monotonic() + timeout + 10
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    while time.monotonic() < end:
        if sel.select(1):
            line = p.stdout.readline()
            break
        if p.poll() is not None:
            break
    sel.close()
    m = re.match(r"ready (\d+)", line or "")
    return p, (int(m.group(1)) if m else 0), line.strip()


def close_idle(p):
    try:
        p.stdin.close()
    except OSError:
        pass
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(10)


def idle_client_main(port, n, timeout):
    """Open n connections to port, read each greeting, print 'ready N', hold until stdin EOF."""
    raise_nofile()
    sel = selectors.DefaultSelector()
    socks, greeted = [], 0
    end = time.monotonic() + timeout
    batch = 200
    i = 0
    while i < n and time.monotonic() < end:
        pending = {}
        for _ in range(min(batch, n - i)):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect_ex((HOST, port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            pending[s.fileno()] = (s, b"")
            sel.register(s, selectors.EVENT_READ)
            i += 1
        bend = min(end, time.monotonic() + 60)
        while pending and time.monotonic() < bend:
            for key, _ in sel.select(1):
                s, buf = pending.get(key.fd, (None, b""))
                if s is None:
                    continue
                try:
                    data = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                buf += data
                if not data or b"\n" in buf:
                    sel.unregister(s)
                    del pending[key.fd]
                    if buf.startswith(b"220"):
                        greeted += 1
                else:
                    pending[key.fd] = (s, buf)
        for fd, (s, _) in pending.items():
            sel.unregister(s)
    print(f"ready {greeted} of {n}", flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()


def memory(b, pf, im_binary, tmp, sink, n_imsd, n_pf):
    out = {}
    # imsd: a fresh instance, idle, then n_imsd idle sessions (and 1,000 for comparison)
    port = free_ports(1)[0]
    im = Imsd(im_binary, tmp, port, sink.port, tag="imsd-mem")
    out["imsd_conf"] = im.write_conf()
    im.start()
    b.imsd_logs.append(im)
    try:
        time.sleep(1.0)
        pid = im.p.pid
        out["imsd_idle"] = (proc_status(pid, "VmRSS"), proc_pss(pid))
        for n in (1000, n_imsd):
            p, got, line = idle_sessions(port, n)
            time.sleep(1.0)
            out[f"imsd_{n}"] = (proc_status(pid, "VmRSS"), proc_pss(pid), got)
            close_idle(p)
            if got != n:
                b.failures.append(f"memory: imsd greeted {got} of {n} sessions ({line})")
            time.sleep(1.0)
        out["imsd_after"] = (proc_status(pid, "VmRSS"), proc_pss(pid))
    finally:
        im.stop()

    # Postfix: restarted so that no smtpd left idle by the grid is counted or reused;
    # then the sum over master and all its children
    pf.stop()
    pf.start()
    def pf_sum():
        mp = pf.master_pid()
        if not mp:
            return (0, 0, 0, 0)
        pids = descendants(mp)
        smtpd = 0
        for q in pids:
            try:
                with open(f"/proc/{q}/comm") as f:
                    smtpd += f.read().strip() == "smtpd"
            except OSError:
                pass
        return (sum(proc_status(q, "VmRSS") for q in pids), sum(proc_pss(q) for q in pids),
                len(pids), smtpd)
    time.sleep(1.0)
    out["pf_idle"] = pf_sum()
    p, got, line = idle_sessions(pf.port, n_pf)
    time.sleep(2.0)
    out[f"pf_{n_pf}"] = pf_sum() + (got,)
    close_idle(p)
    if got != n_pf:
        b.failures.append(f"memory: Postfix greeted {got} of {n_pf} sessions ({line})")
    return out


def first_reply_latency(port, rounds=20, timeout=10):
    """The first round trip after the STARTTLS handshake (EHLO), for a client with Nagle's
    algorithm on as most are, and a later one in the same session (MAIL FROM, then RSET): a
    server that has nothing to write when the client's Finished arrives makes the EHLO wait
    for the delayed-ACK timer (40 ms). Medians in ms: (handshake, EHLO, MAIL), or None."""
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def reply(f):
        while True:
            line = f.readline()
            if not line or line[3:4] != b"-":
                return line

    hs, ehlo, mail = [], [], []
    end = time.monotonic() + 120
    for _ in range(rounds):
        if time.monotonic() > end:
            break
        try:
            with socket.create_connection((HOST, port), timeout=timeout) as s:
                f = s.makefile("rb")
                reply(f)
                s.sendall(b"EHLO latency.example\r\n")
                reply(f)
                s.sendall(b"STARTTLS\r\n")
                if not reply(f).startswith(b"220"):
                    return None
                t = time.perf_counter()
                ss = ctx.wrap_socket(s, server_hostname="bench.localdomain")
                hs.append(time.perf_counter() - t)
                f = ss.makefile("rb")
                t = time.perf_counter()
                ss.sendall(b"EHLO latency.example\r\n")
                reply(f)
                ehlo.append(time.perf_counter() - t)
                t = time.perf_counter()
                ss.sendall(b"MAIL FROM:<" + SENDER.encode() + b">\r\n")
                reply(f)
                mail.append(time.perf_counter() - t)
                ss.sendall(b"RSET\r\nQUIT\r\n")
                reply(f)
                ss.close()
        except OSError:
            return None
    if not ehlo:
        return None
    return tuple(statistics.median(v) * 1000 for v in (hs, ehlo, mail))


def tls_test(b, tpf, tim, pf, im, cert, key, reps, seconds):
    out = {}
    pf.enable_tls(cert, key)
    im.stop()
    im.write_conf(tls_loopback="yes", tls_cert_file=cert, tls_key_file=key)
    im.start()
    targets = [tpf, tim]
    out["latency"] = {tg.name: first_reply_latency(tg.port) for tg in targets}
    for name, lat in out["latency"].items():
        log(f"  first reply after the handshake, {name}: " + (
            "failed" if lat is None else
            f"handshake {lat[0]:.2f} ms, EHLO {lat[1]:.2f} ms, later MAIL {lat[2]:.2f} ms"))
    for sess in (10, 50):
        totals, ok = {}, {}
        for tg in targets:
            e2e, cl = b.run(f"TLS s={sess} {tg.name} pilot", tg, 1024, sess, 1,
                            max(2 * sess, 40), tls=True)
            ok[tg.name] = cl is not None
            totals[tg.name] = plan_total(cl or 20, sess, 1, seconds, 20000)
        runs = {tg.name: [] for tg in targets}
        for rep in range(reps):
            order = targets if rep % 2 == 0 else targets[::-1]
            for tg in order:
                if not ok[tg.name]:
                    continue
                e2e, cl = b.run(f"TLS s={sess} {tg.name} rep {rep + 1}", tg, 1024, sess, 1,
                                totals[tg.name], tls=True)
                if cl is None:
                    ok[tg.name] = False
                else:
                    runs[tg.name].append((cl, e2e))
        med = {}
        for n, v in runs.items():
            e2es = [x[1] for x in v if x[1] is not None]
            med[n] = (statistics.median([x[0] for x in v]) if v else None,
                      statistics.median(e2es) if e2es else None)
        out[sess] = {"median": med, "totals": totals}
        log(f"  TLS s={sess}: Postfix {fmt_rate(med['Postfix'][0])} imsd "
            f"{fmt_rate(med['imsd'][0])} sessions/s")
    # The same CPU-bound STARTTLS load (50 sessions) against imsd with 1 and 2 event loops.
    wk = {}
    total = out[50]["totals"]["imsd"]
    for w in (1, 2):
        im.stop()
        im.write_conf(tls_loopback="yes", tls_cert_file=cert, tls_key_file=key, workers=str(w))
        im.start()
        rates = []
        for rep in range(reps):
            e2e, cl = b.run(f"TLS s=50 imsd workers={w} rep {rep + 1}", tim, 1024, 50, 1, total,
                            tls=True)
            if cl is not None:
                rates.append(cl)
        wk[w] = statistics.median(rates) if rates else None
        log(f"  TLS s=50 imsd workers={w}: {fmt_rate(wk[w])} sessions/s")
    out["workers"] = wk
    return out


def idle_tls_client_main(port, n, timeout):
    """Open n STARTTLS sessions to port (EHLO, STARTTLS, handshake, EHLO), print 'ready N',
    hold them until stdin EOF."""
    import ssl
    raise_nofile()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    keep, ok = [], 0
    end = time.monotonic() + timeout

    def reply(f):
        while True:
            line = f.readline()
            if not line or line[3:4] != b"-":
                return line
    for _ in range(n):
        if time.monotonic() > end:
            break
        try:
            s = socket.create_connection((HOST, port), timeout=10)
            f = s.makefile("rb")
            reply(f)
            s.sendall(b"EHLO idle.example\r\n")
            reply(f)
            s.sendall(b"STARTTLS\r\n")
            if not reply(f).startswith(b"220"):
                s.close()
                continue
            t = ctx.wrap_socket(s, server_hostname="bench.localdomain")
            t.sendall(b"EHLO idle.example\r\n")
            if reply(t.makefile("rb")).startswith(b"250"):
                ok += 1
            keep.append(t)
        except OSError:
            continue
    print(f"ready {ok} of {n}", flush=True)
    sys.stdin.read()
    for t in keep:
        t.close()


def tls_idle_memory(b, im_binary, tmp, sink, cert, key, n):
    """RSS per idle TLS session: a fresh imsd, n sessions after STARTTLS doing nothing."""
    port = free_ports(1)[0]
    im = Imsd(im_binary, tmp, port, sink.port, tag="imsd-tlsmem")
    im.write_conf(tls_loopback="yes", tls_cert_file=cert, tls_key_file=key)
    im.start()
    b.imsd_logs.append(im)
    try:
        time.sleep(1.0)
        pid = im.p.pid
        idle = proc_status(pid, "VmRSS")
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "idle-tls-client",
                              str(port), str(n), "300"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=raise_nofile)
        line = p.stdout.readline()
        m = re.match(r"ready (\d+)", line or "")
        got = int(m.group(1)) if m else 0
        time.sleep(1.0)
        rss = proc_status(pid, "VmRSS")
        close_idle(p)
        if got != n:
            b.failures.append(f"tls memory: {got} of {n} TLS sessions ({line.strip()})")
        return {"idle": idle, "rss": rss, "n": got}
    finally:
        im.stop()


def callgrind_total(path):
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    return None


def instructions(b, im_binary, tmp, sink, n_msgs):
    """valgrind --tool=callgrind: Ir(n messages) - Ir(start + stop), divided by n."""
    out = {}
    for label, n in (("base", 0), ("work", n_msgs)):
        port = free_ports(1)[0]
        im = Imsd(im_binary, tmp, port, sink.port, tag=f"imsd-cg-{label}")
        im.write_conf()
        cgout = os.path.join(im.dir, "callgrind.out")
        wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={cgout}",
                   "--dump-instr=no", "--quiet"]
        out[f"cmd_{label}"] = " ".join(wrapper) + f" {im_binary} run -c {im.conf}"
        im.start(wrapper=wrapper, timeout=90)
        b.imsd_logs.append(im)
        try:
            if n:
                tg = Target("imsd under callgrind", port, sink)
                e2e, _ = b.run(f"callgrind {n} messages", tg, 1024, 1, 1, n, timeout=600)
                out["rate_under_valgrind"] = e2e
            time.sleep(0.5)
        finally:
            im.stop(timeout=120)
        out[label] = callgrind_total(cgout) if os.path.exists(cgout) else None
        out[f"file_{label}"] = cgout
    if out.get("base") is not None and out.get("work") is not None:
        out["per_msg"] = (out["work"] - out["base"]) / n_msgs
        # where the instructions go: per function, the work run minus the start+stop run
        prof = {}
        for label, sign in (("work", 1), ("base", -1)):
            try:
                r = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100",
                                    "--auto=no",
                                    out[f"file_{label}"]], capture_output=True, text=True,
                                   timeout=120)
            except (OSError, subprocess.TimeoutExpired):
                continue
            for line in r.stdout.splitlines():
                m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*)$", line)
                if m and "PROGRAM TOTALS" not in line and "=>" not in line \
                        and "events annotated" not in line:
                    fn = re.sub(r"^\S*?/(src/)", r"\1", m.group(2))
                    prof[fn] = prof.get(fn, 0) + sign * int(m.group(1).replace(",", ""))
        total = out["work"] - out["base"]
        top = sorted(prof.items(), key=lambda kv: -kv[1])[:20]
        out["top"] = [(f"{v / n_msgs:,.0f}", f"{100 * v / total:.1f}", fn) for fn, v in top]
    return out


# ---------------------------------------------------------------------------------------------
# the report


def report(ctx):
    L = []
    a = L.append
    g = ctx["grid"]
    a(f"imsd benchmark — {ctx['date']}")
    a(f"machine: {ctx['machine']}")
    a(f"spool filesystem: {ctx['fs']}; load average at start: {ctx['load0']}, at end: "
      f"{ctx['load1']}; wall time of this script: {ctx['elapsed']:.0f} s")
    a("")
    a("END TO END, messages/second (median of %d runs, from the start of the client until "
      "smtp-sink has counted every message)" % ctx["reps"])
    a("client: bench/smtpload (smtp-source's protocol, no pipelining, s sessions, r messages "
      "per connection); each MTA relays everything to its own smtp-sink")
    hdr = (f"{'size':8} {'sess':>4} {'msg/conn':>8} | {'Postfix':>8} {'imsd':>8} "
           f"{'imsd/Postfix':>12} | {'ceiling':>8} {'imsd/ceiling':>12} | runs (msgs) pf / imsd")
    a(hdr)
    a("-" * len(hdr))
    for size, size_name in SIZES:
        for sess in SESSIONS:
            for per_conn in PER_CONN:
                r = g.get((size, sess, per_conn))
                if not r:
                    continue
                md = r["median"]
                a(f"{size_name:8} {sess:>4} {per_conn:>8} | {fmt_rate(md['Postfix']):>8} "
                  f"{fmt_rate(md['imsd']):>8} {fmt_ratio(md['imsd'], md['Postfix']):>12} | "
                  f"{fmt_rate(md['ceiling']):>8} {fmt_ratio(md['imsd'], md['ceiling']):>12} | "
                  f"{len(r['runs']['Postfix'])}x{r['totals']['Postfix']} / "
                  f"{len(r['runs']['imsd'])}x{r['totals']['imsd']}")
    a("all runs (msgs/s): " + "; ".join(
        f"{sn} s{s} r{pc}: pf " + ",".join(fmt_rate(x) for x in g[(sz, s, pc)]['runs']['Postfix'])
        + " imsd " + ",".join(fmt_rate(x) for x in g[(sz, s, pc)]['runs']['imsd'])
        + " ceil " + ",".join(fmt_rate(x) for x in g[(sz, s, pc)]['runs']['ceiling'])
        for sz, sn in SIZES for s in SESSIONS for pc in PER_CONN if (sz, s, pc) in g))
    a("")
    fs = ctx.get("fsync")
    if fs:
        a(f"DISK durable writes on the spool filesystem: {fs[0]:,.0f}/s (append 4 KiB + "
          f"fdatasync); {fs[1]:,.0f}/s (create + write 4 KiB + fdatasync + rename + fsync dir)")
    mem = ctx.get("memory")
    if mem:
        n = ctx["n_imsd"]
        npf = ctx["n_pf"]
        ii = mem["imsd_idle"]
        a("MEMORY (KiB; RSS = VmRSS, PSS = proportional set size, shared pages split)")
        for k in (1000, n):
            if f"imsd_{k}" in mem:
                m = mem[f"imsd_{k}"]
                a(f"  imsd: idle RSS {ii[0]:,}, {m[2]:,} idle sessions RSS {m[0]:,} -> "
                  f"{(m[0] - ii[0]) / max(m[2], 1):.2f} KiB/session (PSS {ii[1]:,} -> {m[1]:,}, "
                  f"{(m[1] - ii[1]) / max(m[2], 1):.2f} KiB/session)")
        if "imsd_after" in mem:
            a(f"  imsd after the sessions closed: RSS {mem['imsd_after'][0]:,}, "
              f"PSS {mem['imsd_after'][1]:,}")
        pi = mem["pf_idle"]
        pm = mem.get(f"pf_{npf}")
        if pm:
            a(f"  Postfix (sum over master and children): idle RSS {pi[0]:,} ({pi[2]} processes), "
              f"{pm[4]:,} idle sessions RSS {pm[0]:,} ({pm[2]} processes, {pm[3]} smtpd) -> "
              f"{(pm[0] - pi[0]) / max(pm[4], 1):.1f} KiB/session; PSS {pi[1]:,} -> {pm[1]:,} "
              f"-> {(pm[1] - pi[1]) / max(pm[4], 1):.1f} KiB/session")
    tls = ctx.get("tls")
    if tls:
        seen = ", ".join(f"{k} {v}" for k, v in sorted(ctx.get("tls_seen", {}).items()))
        a("STARTTLS (full handshake, ECDSA P-256 certificate, no resumption, 1 message of 1 KiB "
          f"per connection; negotiated: {seen or '?'}), sessions/second, median:")
        for sess, r in tls.items():
            if not isinstance(sess, int):
                continue
            md = r["median"]
            a(f"  {sess:>2} sessions: Postfix {fmt_rate(md['Postfix'][0]):>6} "
              f"imsd {fmt_rate(md['imsd'][0]):>6}  imsd/Postfix "
              f"{fmt_ratio(md['imsd'][0], md['Postfix'][0])}   (end to end incl. relay: Postfix "
              f"{fmt_rate(md['Postfix'][1])}, imsd {fmt_rate(md['imsd'][1])}; runs of "
              f"{r['totals']['Postfix']} / {r['totals']['imsd']})")
    if tls and tls.get("latency"):
        lat = tls["latency"]

        def ms(name, i):
            v = lat.get(name)
            return "failed" if v is None else f"{v[i]:.2f} ms"
        a(f"  first reply after the handshake (a client with Nagle on; median of 20 sessions): "
          f"EHLO Postfix {ms('Postfix', 1)}, imsd {ms('imsd', 1)}; a later MAIL FROM "
          f"Postfix {ms('Postfix', 2)}, imsd {ms('imsd', 2)}; the handshake Postfix "
          f"{ms('Postfix', 0)}, imsd {ms('imsd', 0)}")
    if tls and tls.get("workers"):
        wk = tls["workers"]
        a(f"  50 sessions, imsd by event loops: workers=1 {fmt_rate(wk.get(1)):>6}, workers=2 "
          f"{fmt_rate(wk.get(2)):>6}  ({fmt_ratio(wk.get(2), wk.get(1))})")
    tm = ctx.get("tls_memory")
    if tm and tm["n"]:
        a(f"MEMORY per idle TLS session (STARTTLS done, {tm['n']:,} sessions): RSS {tm['idle']:,} "
          f"-> {tm['rss']:,} KiB = {(tm['rss'] - tm['idle']) / tm['n']:.2f} KiB/session")
    ins = ctx.get("instr")
    if ins:
        if ins.get("per_msg") is not None:
            a(f"INSTRUCTIONS per received message (valgrind --tool=callgrind, all threads): "
              f"{ins['per_msg']:,.0f} Ir/message  (= (Ir with {ctx['n_cg']} messages "
              f"{ins['work']:,} - Ir of start+stop {ins['base']:,}) / {ctx['n_cg']}; workload: "
              f"1 session, 1 message of 1 KiB per connection, relayed to smtp-sink)")
        else:
            a("INSTRUCTIONS per message: callgrind run failed")
    a("")
    a("TARGETS (issues 5 and 11)")
    for line in ctx["targets"]:
        a("  " + line)
    if ctx.get("crosscheck"):
        a("")
        a("CROSS-CHECKS")
        for line in ctx["crosscheck"]:
            a("  " + line)
    if ins and ins.get("top"):
        a("")
        a(f"callgrind, where a message's instructions go (self cost per message, the "
          f"{ctx['n_cg']}-message run minus the start+stop run, top 20):")
        for ir, pct, fn in ins["top"]:
            a(f"  {ir:>15} {pct:>6}%  {fn[:110]}")
    a("")
    a("PROBLEMS")
    if not ctx["failures"] and not ctx["imsd_problems"] and not ctx["pf_problems"]:
        a("  none: every run completed, no warn/error lines in imsd's log, none in Postfix's")
    for f in ctx["failures"]:
        a("  run: " + f)
    if ctx["imsd_problems"]:
        a(f"  imsd log, {len(ctx['imsd_problems'])} warn/error lines (first 20):")
        for line in ctx["imsd_problems"][:20]:
            a("    " + line)
    if ctx["pf_problems"]:
        a(f"  Postfix maillog, {len(ctx['pf_problems'])} warning/error/fatal lines (first 10):")
        for line in ctx["pf_problems"][:10]:
            a("    " + line)
    a("")
    a("COMMANDS")
    for c in ctx["commands"]:
        a("  " + c)
    a("")
    a("imsd configuration (grid):")
    a("".join("  " + x + "\n" for x in ctx["imsd_conf"].splitlines()).rstrip())
    a("Postfix main.cf (grid; the STARTTLS test adds smtpd_tls_cert_file/key_file, "
      "smtpd_tls_security_level = may):")
    a("".join("  " + x + "\n" for x in ctx["pf_main"].splitlines() if not x.startswith("#"))
      .rstrip())
    a("Postfix master.cf smtpd line: " + ctx["pf_master"].splitlines()[0]
      + "   (other services as Debian's master.cf, chroot off)")
    if ctx.get("progress"):
        a("")
        a("EVERY RUN (label: messages, client time, end-to-end time)")
        for line in ctx["progress"]:
            a("  " + line)
    return "\n".join(L) + "\n"


def targets(ctx):
    g = ctx["grid"]
    out = []

    def med(k, n):
        r = g.get(k)
        return r["median"][n] if r else None

    def check(desc, ok, detail):
        out.append(f"[{'met' if ok else 'NOT met'}] {desc}: {detail}")

    for sess in (10, 50):
        for pc in PER_CONN:
            i, p = med((1024, sess, pc), "imsd"), med((1024, sess, pc), "Postfix")
            if i and p:
                check(f">= 3x Postfix, 1 KiB, {sess} sessions, {pc} msg/conn", i >= 3 * p,
                      f"{i / p:.2f}x")
    for sess in SESSIONS:
        for pc in PER_CONN:
            i, p = med((102400, sess, pc), "imsd"), med((102400, sess, pc), "Postfix")
            if i and p:
                check(f">= 2x Postfix, 100 KiB, {sess} sessions, {pc} msg/conn", i >= 2 * p,
                      f"{i / p:.2f}x")
    for pc in PER_CONN:
        i, p = med((1024, 1, pc), "imsd"), med((1024, 1, pc), "Postfix")
        if i and p:
            check(f">= 3x Postfix, 1 KiB, 1 session, {pc} msg/conn", i >= 3 * p, f"{i / p:.2f}x")
    for pc in PER_CONN:
        i, c = med((1024, 50, pc), "imsd"), med((1024, 50, pc), "ceiling")
        if i and c:
            check(f">= 50% of the no-MTA ceiling, 1 KiB, 50 sessions, {pc} msg/conn",
                  i >= 0.5 * c, f"{100 * i / c:.1f}%")
    mem = ctx.get("memory")
    n = ctx["n_imsd"]
    if mem and f"imsd_{n}" in mem:
        m, ii = mem[f"imsd_{n}"], mem["imsd_idle"]
        per = (m[0] - ii[0]) / max(m[2], 1)
        check(f"<= 10 KiB RSS per idle session at {n:,} sessions", per <= 10 and m[2] == n,
              f"{per:.2f} KiB/session ({m[2]:,} sessions open)")
    tls = ctx.get("tls")
    if tls:
        for sess, r in tls.items():
            if not isinstance(sess, int):
                continue
            i, p = r["median"]["imsd"][0], r["median"]["Postfix"][0]
            if i and p:
                check(f"STARTTLS sessions/s >= Postfix at {sess} sessions", i >= p,
                      f"{i / p:.2f}x")
        lat = (tls.get("latency") or {}).get("imsd")
        if lat:
            # the goal tests/integration/test_tls_latency.py left to the benchmark
            check("first reply after the STARTTLS handshake < 15 ms (no delayed-ACK stall)",
                  lat[1] < 15, f"{lat[1]:.2f} ms")
    tm = ctx.get("tls_memory")
    if tm and tm["n"]:
        per = (tm["rss"] - tm["idle"]) / tm["n"]
        check(f"<= 8 KiB RSS per idle TLS session at {tm['n']:,} sessions", per <= 8,
              f"{per:.2f} KiB/session")
    return out


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--imsd", default="build/imsd")
    ap.add_argument("--smtpload", required=True)
    ap.add_argument("--out", default="bench/results-latest.txt")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="target length of one run")
    ap.add_argument("--sessions-imsd", type=int, default=10000)
    ap.add_argument("--sessions-postfix", type=int, default=1000)
    ap.add_argument("--tls-sessions", type=int, default=10000,
                    help="idle TLS sessions for the TLS memory figure")
    ap.add_argument("--callgrind-messages", type=int, default=200)
    ap.add_argument("--skip", default="", help="comma list of: grid,fsync,memory,tls,instr")
    ap.add_argument("--verbose", action="store_true", help="print every run")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    started = time.monotonic()

    nofile = raise_nofile()
    if nofile < args.sessions_imsd + 200:
        log(f"bench: RLIMIT_NOFILE is {nofile}; the idle-session test uses "
            f"{nofile - 200} sessions instead of {args.sessions_imsd}")
        args.sessions_imsd = max(1000, nofile - 200)

    base = "/var/tmp" if os.path.isdir("/var/tmp") else None
    tmp = tempfile.mkdtemp(prefix="imsd-bench.", dir=base)
    os.chmod(tmp, 0o755)
    fs = subprocess.run(["stat", "-f", "-c", "%T", tmp], capture_output=True, text=True).stdout
    dev = subprocess.run(["df", "--output=source", tmp], capture_output=True,
                         text=True).stdout.split()[-1:]
    pf_version = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True,
                                text=True).stdout.strip()
    imsd_version = subprocess.run([args.imsd, "version"], capture_output=True,
                                  text=True).stdout.strip()
    ctx = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
                   f"Postfix {pf_version}, {imsd_version}",
        "fs": f"{tmp} ({fs.strip()} on {' '.join(dev)})",
        "load0": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "reps": args.reps, "n_imsd": args.sessions_imsd, "n_pf": args.sessions_postfix,
        "n_cg": args.callgrind_messages, "grid": {},
    }
    if fs.strip() == "tmpfs":
        log(f"bench: warning: {tmp} is on tmpfs; fsync costs nothing there")

    sinks = []
    pf = im = None
    b = Bench(args, tmp)
    b.imsd_logs = []

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    interrupted = False
    try:
        ceil_port, pfsink_port, imsink_port, pf_port, im_port = free_ports(5)
        log(f"bench: temporary directory {tmp}; Postfix :{pf_port} -> sink :{pfsink_port}, "
            f"imsd :{im_port} -> sink :{imsink_port}, ceiling sink :{ceil_port}")
        # one sink per target, so that one MTA's stragglers can never be counted for another
        ceil_sink = Sink(ceil_port, tmp)
        sinks.append(ceil_sink)
        pf_sink = Sink(pfsink_port, tmp)
        sinks.append(pf_sink)
        im_sink = Sink(imsink_port, tmp)
        sinks.append(im_sink)
        pf = Postfix(tmp, pf_port, pfsink_port)
        pf.start()
        im = Imsd(args.imsd, tmp, im_port, imsink_port)
        ctx["imsd_conf"] = im.write_conf()
        im.start()
        b.imsd_logs.append(im)
        ctx["pf_main"], ctx["pf_master"] = pf.main_cf, pf.master_cf

        def reset_pf():
            subprocess.run(["postsuper", "-c", pf.etc, "-d", "ALL"], capture_output=True,
                           timeout=60)

        def reset_im():
            im.stop()
            shutil.rmtree(im.settings["spool_dir"], ignore_errors=True)
            im.start()

        t_ceil = Target("ceiling", ceil_port, ceil_sink)
        t_pf = Target("Postfix", pf_port, pf_sink, reset_pf,
                      ["postqueue", "-c", pf.etc, "-p"])
        t_im = Target("imsd", im_port, im_sink, reset_im,
                      [os.path.abspath(args.imsd), "queue", "-c", im.conf])
        ctx["commands"] = [
            "make bench   (= make deps all; bench/run.sh -> python3 bench/bench.py)",
            "sinks:   " + shlex.join(ceil_sink.cmd) + "   (one each for the ceiling, Postfix "
            "and imsd; the rate's end is when the sink's counter -c reaches the total)",
            f"Postfix: postfix -c {pf.etc} start   (main.cf/master.cf below)",
            f"imsd:    {os.path.abspath(args.imsd)} run -c {im.conf}   (RLIMIT_NOFILE {nofile})",
            f"client:  {args.smtpload} -s SESS -m TOTAL -r PER_CONN -l SIZE -f {SENDER} "
            f"-t {RCPT} -w 120 127.0.0.1:PORT   (PORT = Postfix, imsd, or the ceiling's sink; "
            "-T adds STARTTLS)",
            "each grid point: one unmeasured pilot run per target (warm-up, sizes TOTAL for "
            f"~{args.seconds:g} s runs), then {args.reps} runs each, ceiling/Postfix/imsd "
            "alternating (Postfix/imsd order swapped every other repetition)",
        ]

        if "grid" not in skip:
            log("grid (end to end, msgs/s):")
            grid(b, [t_ceil, t_pf, t_im], args.reps, args.seconds, ctx["grid"])
            # cross-checks: Postfix's own smtp-source against the same targets
            cc = []
            for tg in (t_ceil, t_im, t_pf):
                total = ctx["grid"].get((1024, 10, 1), {}).get("totals", {}).get(tg.name, 1000)
                cmd = ["smtp-source", "-s", "10", "-m", str(total), "-l", "1024", "-f", SENDER,
                       "-t", RCPT, f"{HOST}:{tg.port}"]
                e2e, _ = b.run(f"smtp-source -> {tg.name}", tg, 1024, 10, 1, total, cmd=cmd)
                mine, _ = b.run(f"smtpload -> {tg.name}", tg, 1024, 10, 1, total)
                cc.append(f"1 KiB, 10 sessions, 1 msg/conn, {total} msgs -> {tg.name}: "
                          f"smtp-source {fmt_rate(e2e)} msgs/s, smtpload right after it "
                          f"{fmt_rate(mine)} msgs/s (end to end)")
            ctx["crosscheck"] = cc
            ctx["commands"].append("cross-check: smtp-source -s 10 -m TOTAL -l 1024 -f "
                                   f"{SENDER} -t {RCPT} 127.0.0.1:PORT")
            # imsd at log_level = info (Postfix logs every message; imsd's grid runs at warn)
            im.stop()
            im.write_conf(log_level="info")
            im.start()
            n = ctx["grid"].get((1024, 10, 1), {}).get("totals", {}).get("imsd", 1000)
            b.run("imsd log_level=info pilot", t_im, 1024, 10, 1, 200)
            e2e, _ = b.run("imsd log_level=info", t_im, 1024, 10, 1, n)
            ctx["crosscheck"].append(f"imsd with log_level = info, 1 KiB s=10 r=1, {n} msgs: "
                                     f"{fmt_rate(e2e)} msgs/s end to end (the grid runs use "
                                     "warn; Postfix logs ~5 lines per message)")
            im.stop()
            ctx["imsd_conf"] = im.write_conf()
            im.start()

        if "fsync" not in skip:
            log("fsync rate ...")
            ctx["fsync"] = fsync_rate(tmp)
            log(f"  {ctx['fsync'][0]:,.0f} appends+fdatasync/s, {ctx['fsync'][1]:,.0f} "
                "file+fsync+rename+dirsync/s")

        if "memory" not in skip:
            log("memory ...")
            ctx["memory"] = memory(b, pf, args.imsd, tmp, im_sink, args.sessions_imsd,
                                   args.sessions_postfix)
            ctx["commands"].append("memory: python3 bench/bench.py idle-client PORT N "
                                   "(N sessions, each reads the 220 greeting and stays idle); "
                                   "a fresh imsd, a restarted Postfix; VmRSS / Pss from /proc")

        if "tls" not in skip:
            log("STARTTLS ...")
            cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            gen = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj",
                   "/CN=bench.localdomain", "-keyout", key, "-out", cert]
            subprocess.run(gen, check=True, capture_output=True, timeout=60)
            os.chmod(key, 0o644)
            ctx["commands"].append("cert: " + shlex.join(gen))
            ctx["tls"] = tls_test(b, t_pf, t_im, pf, im, cert, key, args.reps, args.seconds)
            im.stop()
            log("TLS memory ...")
            ctx["tls_memory"] = tls_idle_memory(b, args.imsd, tmp, im_sink, cert, key,
                                                args.tls_sessions)
            ctx["commands"].append("tls memory: python3 bench/bench.py idle-tls-client PORT N "
                                   "(N sessions: EHLO, STARTTLS, handshake, EHLO, then idle); "
                                   "a fresh imsd; VmRSS from /proc")

        if "instr" not in skip:
            log("callgrind ...")
            ctx["instr"] = instructions(b, args.imsd, tmp, im_sink, args.callgrind_messages)
            ctx["commands"].append(ctx["instr"].get("cmd_work", ""))
            ctx["commands"].append(f"  with {args.smtpload} -s 1 -m "
                                   f"{args.callgrind_messages} -r 1 -l 1024 ... ; and once "
                                   "with no messages (start + SIGTERM) to subtract")
    except KeyboardInterrupt as e:
        interrupted = True
        b.failures.append(f"interrupted ({e})")
    finally:
        if im:
            im.stop()
        ctx["pf_problems"] = pf.problems() if pf else []
        if pf:
            pf.stop()
        for sk in sinks:
            sk.stop()
        probs = []
        for x in b.imsd_logs:
            for line in x.problems():
                if line not in probs:
                    probs.append(line)
        ctx["imsd_problems"] = probs
        ctx["failures"] = b.failures
        ctx["progress"] = b.progress
        ctx["tls_seen"] = b.tls_seen
        ctx["load1"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        ctx["elapsed"] = time.monotonic() - started
        ctx.setdefault("imsd_conf", "")
        ctx.setdefault("pf_main", "")
        ctx.setdefault("pf_master", "\n")
        ctx.setdefault("commands", [])
        ctx["targets"] = targets(ctx)
        text = report(ctx)
        if not args.out == "-":
            with open(args.out, "w") as f:
                f.write(text)
        print()
        print(text, end="")
        if os.environ.get("BENCH_KEEP"):
            log(f"bench: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if interrupted else 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "idle-tls-client":
        idle_tls_client_main(int(sys.argv[2]), int(sys.argv[3]),
                             float(sys.argv[4]) if len(sys.argv) > 4 else 300)
        sys.exit(0)
    if len(sys.argv) >= 2 and sys.argv[1] == "idle-client":
        idle_client_main(int(sys.argv[2]), int(sys.argv[3]),
                         float(sys.argv[4]) if len(sys.argv) > 4 else 180)
        sys.exit(0)
    sys.exit(main())
