"""imsdtest — harness for the integration tests: start the real imsd on a loopback port.

    class MyTest(imsdtest.ImsdCase):
        def test_something(self):
            srv = self.server(message_size_limit=2048)    # config overrides; None drops a key
            c = srv.client()                               # raw SMTP client, greeting read
            self.assertReply(c.cmd("EHLO t"), 250)
            ...
            files = srv.wait_mail("localhost", "alice", 1)

Only 127.0.0.1 is ever used. The harness only signals processes it started itself (by pid).
Every bounded wait raises or returns; nothing here can hang forever.

Skips (tests/run.py): the one legitimate reason is "not root", raised by need_root(what).
A missing tool (need_tool), an environment that refuses or a peer that cannot start is a
failure with its reason, never a skip.
"""

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0          # SPEC: SIGTERM finishes within 10 seconds
DELIVERY_TIMEOUT = 10.0
SOCKET_TIMEOUT = 10.0
SETTLE = 1.0                 # extra wait before asserting that something did *not* happen

ENH_RE = re.compile(r"^(\d{3})[ -]([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)")
SANITIZER_RE = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                          r"SUMMARY: (?:Address|Undefined|Leak)Sanitizer")


# ---------------------------------------------------------------- skips and tools

NOT_ROOT = "not root"        # the one skip reason tests/run.py accepts (LEGITIMATE_SKIPS)


def need_root(what):
    """Skip the test, legitimately, when this process is not root; what says what needs it
    ("network namespaces", "a throwaway user"). As root it returns."""
    if os.geteuid() != 0:
        raise unittest.SkipTest("%s: %s (euid %d)" % (NOT_ROOT, what, os.geteuid()))


def need_tool(name, package):
    """The path of a command the test needs (a name looked up in PATH, or an absolute path).
    A missing one fails the test, naming the Debian package: `scripts/deps.sh test` installs
    every tool a test needs, so its absence is a broken machine, not a reason to skip."""
    path = name if os.path.isabs(name) else shutil.which(name)
    if not path or not os.access(path, os.X_OK):
        raise AssertionError("%s is not installed (Debian package %s, which `scripts/deps.sh "
                             "test` installs)" % (name, package))
    return path


def imsd_binary():
    path = os.environ.get("IMSD")
    if path:
        return path
    for cand in ("build/asan/imsd", "build/imsd"):
        p = os.path.join(ROOT, cand)
        if os.access(p, os.X_OK):
            return p
    raise AssertionError("no imsd binary: set IMSD or build with `make asan`")


def release_binary():
    """The optimised build, for figures that a sanitizer build distorts (RSS): ASan keeps
    freed memory in quarantine and adds shadow memory, so only the real build's memory says
    anything. `make test` builds it; IMSD_RELEASE overrides."""
    path = os.environ.get("IMSD_RELEASE") or os.path.join(ROOT, "build", "imsd")
    if os.access(path, os.X_OK):
        return path
    raise AssertionError("no optimised imsd at %s: build it with `make` (`make test` does)"
                         % path)


def rss_kib(pid):
    """Resident set size of a process, from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_for(predicate, timeout=DELIVERY_TIMEOUT, interval=0.05):
    """Poll predicate until it returns something truthy or timeout passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def run_cli(args, timeout=30, env=None):
    """Run `imsd ARGS...`; return CompletedProcess with text stdout/stderr."""
    return subprocess.run([imsd_binary()] + list(args), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          env=env, text=True, errors="replace")


# ---------------------------------------------------------------- hostile clients
# (test_limits.py and bench/abuse.py)

SMALL_WINDOW = 4096      # the client's receive buffer: an attacker picks a small one


def raise_nofile(need):
    """Raise this process's open-file limit toward need (as root the hard limit too, else up
    to the hard limit); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < need and os.geteuid() == 0:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), need))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def connect_many(port, n, greet=True):
    """n connections with a small receive window (an attacker chooses it: that is what makes
    the server, not the kernel, hold the replies it cannot send)."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_WINDOW)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        if greet:
            s.recv(512)
        socks.append(s)
    return socks


def blast(socks, payload, total):
    """Write up to total bytes on each socket without reading; stop at the first EAGAIN
    (the server stopped reading) or error. Returns the bytes written."""
    written = 0
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
        written += sent
    return written


def peak_rss(pid, seconds):
    """The highest RSS of pid seen over the next seconds (sampled every 0.1 s)."""
    peak = 0
    end = time.monotonic() + seconds
    while True:
        peak = max(peak, rss_kib(pid))
        if time.monotonic() >= end:
            return peak
        time.sleep(0.1)


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def read_until_closed(s, limit=4 * 1024 * 1024, timeout=20):
    s.setblocking(True)
    s.settimeout(timeout)
    data = b""
    while len(data) < limit:
        try:
            d = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not d:
            break
        data += d
    return data


# ---------------------------------------------------------------- SMTP client

class Reply:
    """One complete (possibly multi-line) SMTP reply."""

    def __init__(self, lines):
        self.lines = lines                       # str lines without CRLF (latin-1 decoded)
        self.code = int(lines[-1][:3])

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def enhanced(self):
        """Enhanced status code of the first line ("5.1.1"), or None."""
        m = ENH_RE.match(self.lines[0])
        return "%s.%s.%s" % m.group(2, 3, 4) if m else None

    def __repr__(self):
        return "Reply(%r)" % self.text


class Client:
    """A raw SMTP client over a blocking socket with a timeout (never hangs forever)."""

    def __init__(self, port, host="127.0.0.1", timeout=SOCKET_TIMEOUT, source=None):
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.buf = b""
        self.eof = False
        self.transcript = []

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.transcript.append(b"C: " + data[:300])
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            self.eof = True
            raise EOFError("server closed the connection")
        self.buf += chunk

    def readline(self):
        while b"\n" not in self.buf:
            if self.eof:
                raise EOFError("server closed the connection")
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        if line.endswith(b"\r"):
            line = line[:-1]
        self.transcript.append(b"S: " + line)
        return line.decode("latin-1")

    def reply(self):
        """Read one complete reply; raise EOFError if the connection closes first."""
        lines = []
        while True:
            line = self.readline()
            if not re.match(r"^\d{3}([ -]|$)", line):
                raise AssertionError("malformed reply line %r (after %r)" % (line, lines))
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                if any(l[:3] != line[:3] for l in lines):
                    raise AssertionError("inconsistent codes in multi-line reply %r" % lines)
                return Reply(lines)

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def ehlo(self, name="client.imsd.test"):
        return self.cmd("EHLO " + name)

    def read_all_replies(self):
        """Read replies until the server closes the connection (bounded by the socket timeout)."""
        out = []
        while True:
            try:
                out.append(self.reply())
            except EOFError:
                return out

    def closed_by_server(self, timeout=SOCKET_TIMEOUT):
        """True if the server closes the connection (EOF or reset) within timeout."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            while True:
                try:
                    data = self.sock.recv(65536)
                except ConnectionResetError:
                    return True
                except socket.timeout:
                    return False
                if not data:
                    return True
        finally:
            self.sock.settimeout(old)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# ---------------------------------------------------------------- the server

class Server:
    """One imsd process with its own config, spool and mail directories under a temp dir."""

    def __init__(self, tmpdir=None, start=True, binary=None, **conf_overrides):
        self.binary = binary or imsd_binary()
        self.dir = tmpdir or tempfile.mkdtemp(prefix="imsd-test-")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.spool_dir = os.path.join(self.dir, "spool")
        self.mail_dir = os.path.join(self.dir, "mail")
        self.conf_path = os.path.join(self.dir, "imsd.conf")
        self.log_path = os.path.join(self.dir, "imsd.log")
        self.conf = {
            "hostname": "mx.imsd.test",
            "listen": "127.0.0.1:%d" % self.port,
            "spool_dir": self.spool_dir,
            "mail_dir": self.mail_dir,
            "local_domains": "localhost",
            # keep 127.0.0.1 out of relay_networks so "relaying denied" holds even once
            # relaying is implemented
            "relay_networks": "192.0.2.0/24",
            "log_level": "debug",
            # The tests run as root in throwaway directories; test_privileges.py covers the
            # switch to an unprivileged run_user (the default is `imsd`).
            "run_user": "root",
            # SPF/DKIM/DMARC need DNS; the tests that check them (test_mailauth.py) run their
            # own DNS server and turn them on. Elsewhere no lookup may leave the machine.
            "inbound_checks": "no",
        }
        self.set_conf(**conf_overrides)
        self.proc = None
        self.starts = 0
        self._log_cache = ""
        if start:
            self.start()

    # -- configuration
    def set_conf(self, **overrides):
        for k, v in overrides.items():
            if v is None:
                self.conf.pop(k, None)
            else:
                self.conf[k] = str(v)
        self.write_conf()

    def write_conf(self, text=None):
        if text is None:
            text = "# written by tests/integration/imsdtest.py\n" + "".join(
                "%s = %s\n" % kv for kv in self.conf.items())
        with open(self.conf_path, "w") as f:
            f.write(text)

    def write_file(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    # -- process control
    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        assert not self.running, "already running"
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(b"==== harness: start #%d\n" % self.starts)
            log.flush()
            self.proc = subprocess.Popen([self.binary, "run", "-c", self.conf_path],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.dir)
        self.wait_listening()

    def wait_listening(self, timeout=START_TIMEOUT):
        """Wait until the port accepts and greets; the probe says QUIT and waits for the close
        so that it no longer counts against connection limits when this returns."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("imsd exited with status %s during start-up%s"
                                     % (self.proc.returncode, self.log_tail_msg()))
            try:
                c = Client(self.port, timeout=max(0.5, deadline - time.monotonic()))
            except OSError as e:
                last = e
                time.sleep(0.05)
                continue
            try:
                c.reply()
                c.send("QUIT\r\n")
                c.closed_by_server(timeout=max(0.5, deadline - time.monotonic()))
                return
            except (OSError, EOFError, AssertionError) as e:
                last = e
            finally:
                c.close()
            time.sleep(0.05)
        raise AssertionError("imsd did not accept connections on 127.0.0.1:%d within %.0f s (%s)%s"
                             % (self.port, timeout, last, self.log_tail_msg()))

    def send_signal(self, sig):
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)        # our own child, by pid

    def stop(self, expect_status=0, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Stop with SIGTERM (or sig); assert it exits within timeout with expect_status
        (None: any) and that no sanitizer report was logged. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            t0 = time.monotonic()
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("imsd did not exit within %.0f s of signal %d%s"
                                     % (timeout, sig, self.log_tail_msg()))
            self.stop_seconds = time.monotonic() - t0
        rc = self.proc.returncode
        self._log_cache = self.log_text()
        self.check_sanitizers()
        if expect_status is not None and rc != expect_status:
            raise AssertionError("imsd exited with status %s, expected %s%s"
                                 % (rc, expect_status, self.log_tail_msg()))
        return rc

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()                  # SIGKILL to our own child
            self.proc.wait(10)
        self.check_sanitizers()

    def restart(self):
        if self.running:
            self.stop()
        self.start()

    def close(self):
        """Cleanup: a running server is stopped gracefully (exit 0 expected, so every test also
        checks shutdown and leaks); otherwise only the sanitizer check."""
        if self.running:
            self.stop()
        else:
            self.check_sanitizers()

    def check_sanitizers(self):
        text = self.log_text()
        m = SANITIZER_RE.search(text)
        if m:
            start = text.rfind("\n", 0, max(0, m.start() - 2000)) + 1
            raise AssertionError("sanitizer report in the imsd log:\n" + text[start:start + 8000])

    # -- observation
    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return self._log_cache

    def log_tail(self, n=50):
        return "\n".join(self.log_text().splitlines()[-n:])

    def log_tail_msg(self, n=50):
        return "\n---- last %d lines of the imsd log (%s) ----\n%s\n----" % (
            n, self.log_path, self.log_tail(n))

    def maildir(self, domain, user):
        return os.path.join(self.mail_dir, domain, user)

    def maildir_files(self, domain, user, sub="new"):
        d = os.path.join(self.maildir(domain, user), sub)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return []
        return sorted(os.path.join(d, n) for n in names
                      if os.path.isfile(os.path.join(d, n)))

    def all_mailboxes(self):
        """{"domain/user": [files in new/]} for every mailbox that exists."""
        out = {}
        if not os.path.isdir(self.mail_dir):
            return out
        for dom in sorted(os.listdir(self.mail_dir)):
            dpath = os.path.join(self.mail_dir, dom)
            if not os.path.isdir(dpath):
                continue
            for user in sorted(os.listdir(dpath)):
                out["%s/%s" % (dom, user)] = self.maildir_files(dom, user)
        return out

    def wait_mail(self, domain, user, count=1, timeout=DELIVERY_TIMEOUT):
        """Wait until domain/user/new holds at least count files; return the list, or raise."""
        files = wait_for(lambda: len(self.maildir_files(domain, user)) >= count
                         and self.maildir_files(domain, user), timeout)
        if not files:
            raise AssertionError("expected %d message(s) in %s/%s/new within %.0f s, found %d%s"
                                 % (count, domain, user, timeout,
                                    len(self.maildir_files(domain, user)), self.log_tail_msg()))
        return files

    # Spool entries that are not messages (src/queue/queue.h): the server's lock file and
    # free/, the recycled files of removed messages. Anything else counts, so a new layout
    # makes queue checks fail loudly instead of passing silently.
    SPOOL_NOT_MESSAGES = ("lock", "free")

    def queue_files(self):
        """Regular files under spool_dir that may hold messages (the queue is empty when
        every message is delivered)."""
        out = []
        for dirpath, dirs, files in os.walk(self.spool_dir):
            if dirpath == self.spool_dir:
                dirs[:] = [d for d in dirs if d not in self.SPOOL_NOT_MESSAGES]
            for n in files:
                p = os.path.join(dirpath, n)
                if dirpath == self.spool_dir and n in self.SPOOL_NOT_MESSAGES:
                    continue
                if os.path.isfile(p) and not os.path.islink(p):
                    out.append(p)
        return sorted(out)

    def wait_queue_empty(self, timeout=DELIVERY_TIMEOUT):
        if not wait_for(lambda: not self.queue_files(), timeout):
            left = self.queue_files()
            raise AssertionError("queue not empty after %.0f s: %s%s"
                                 % (timeout, left[:10], self.log_tail_msg()))

    def client(self, greet=True, **kw):
        c = Client(self.port, **kw)
        if greet:
            r = c.reply()
            if r.code != 220:
                c.close()
                raise AssertionError("expected a 220 greeting, got %r%s" % (r, self.log_tail_msg()))
            c.greeting = r
        return c


# ---------------------------------------------------------------- message helpers

def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def split_delivered(content):
    """Split a delivered Maildir file into (return_path_line, received_header, rest).
    received_header is the first header after Return-Path when it is a Received: header
    (with its folded continuation lines), else b""."""
    first, _, rest = content.partition(b"\n")
    received = b""
    if rest[:9].lower() == b"received:":
        lines = rest.split(b"\n")
        i = 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
        received = b"\n".join(lines[:i]) + b"\n"
        rest = b"\n".join(lines[i:])
    return first, received, rest


def crlf_to_lf(data):
    return data.replace(b"\r\n", b"\n")


def make_message(subject="test", body="Hello.\r\n", sender="sender@example.org",
                 to="alice@localhost", extra_headers=""):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@imsd.test>\r\n%s\r\n%s"
            % (sender, to, subject, re.sub(r"\W", "-", subject), extra_headers, body)).encode()


# ---------------------------------------------------------------- the test case base

class ImsdCase(unittest.TestCase):
    """Base class: self.server(**conf) starts a server that is stopped at cleanup; a failing or
    erroring test gets the last 50 log lines of each of its servers attached."""

    maxDiff = 4000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="imsd-test-%s-" % self._testMethodName[:40])
        self.addCleanup(self._remove_tmp)
        self.servers = []
        self.clients = []

    def _remove_tmp(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def server(self, start=True, **conf):
        d = os.path.join(self.tmp, "srv%d" % len(self.servers))
        srv = Server(d, start=False, **conf)
        self.servers.append(srv)
        self.addCleanup(srv.close)
        if start:
            srv.start()
        return srv

    def client(self, srv, **kw):
        c = srv.client(**kw)
        self.clients.append(c)
        self.addCleanup(c.close)
        return c

    def _callTestMethod(self, method):
        try:
            super()._callTestMethod(method)
        except unittest.SkipTest:
            raise
        except BaseException as e:
            if hasattr(e, "add_note"):
                for srv in self.servers:
                    if srv.log_path not in str(e):
                        e.add_note(srv.log_tail_msg())
                for c in self.clients:
                    e.add_note("---- client transcript (last 30) ----\n" + "\n".join(
                        t.decode("latin-1") for t in c.transcript[-30:]))
            raise

    # -- assertions
    def assertReply(self, reply, code, enhanced=None, msg=None):
        what = "%s%r" % ((msg + ": ") if msg else "", reply)
        if isinstance(code, (tuple, list, set)):
            self.assertIn(reply.code, code, what)
        elif isinstance(code, str):          # "5xx"-style class
            self.assertEqual(str(reply.code)[0], code[0], what)
        else:
            self.assertEqual(reply.code, code, what)
        if enhanced is not None:
            self.assertEqual(reply.enhanced, enhanced, "enhanced status code of " + what)

    def assertEnhanced(self, reply, msg=None):
        """Every line of the reply carries an enhanced status code whose class matches."""
        for line in reply.lines:
            m = ENH_RE.match(line)
            self.assertTrue(m, "%sno enhanced status code in %r" % ((msg + ": ") if msg else "",
                                                                    line))
            self.assertEqual(m.group(1)[0], m.group(2),
                             "enhanced code class differs from reply class in %r" % line)

    def assertNoMail(self, srv, domain, user):
        self.assertEqual(srv.maildir_files(domain, user), [],
                         "%s/%s should have no mail" % (domain, user))

    def transaction(self, c, sender, rcpts, data, ehlo=True, mail_params=""):
        """A plain transaction on client c; data is the message without the final dot, already
        dot-stuffed if needed. Returns the reply to the final dot."""
        if ehlo:
            self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<%s>%s" % (sender, mail_params)), 250)
        for r in rcpts:
            self.assertReply(c.cmd("RCPT TO:<%s>" % r), 250, msg="RCPT TO:<%s>" % r)
        self.assertReply(c.cmd("DATA"), 354)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        c.send(data + b".\r\n")
        return c.reply()

    def deliver_sentinel(self, srv, user="sentinel", count=1):
        """Send one small message to user@localhost and wait for it: after it is delivered,
        anything sent before it that was going to be delivered most likely has been too."""
        with srv.client() as c:
            r = self.transaction(c, "sentinel@example.org", ["%s@localhost" % user],
                                 make_message("sentinel", to="%s@localhost" % user))
            self.assertReply(r, 250)
            c.cmd("QUIT")
        srv.wait_mail("localhost", user, count)
        time.sleep(SETTLE)
