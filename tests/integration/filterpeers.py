"""filterpeers — the real filters of the filter tests, from Debian's packages: each is started
with its own configuration under the test's directory, waited for until it answers, and
stopped by its PID.

    rs = filterpeers.Rspamd(self.tmp)          # rspamd's proxy worker in milter mode
    self.addCleanup(rs.stop)
    srv = self.server(milters="inet:127.0.0.1:%d" % rs.port)

* Rspamd: the proxy worker with milter = yes and self_scan (no normal worker), its own
  rspamd.conf: no DNS (the only resolver is 127.0.0.1:1, which answers nothing), a short
  TLD list (a start in about two seconds instead of compiling 9,600 suffixes), actions
  reject = 15 and add_header = 6, milter_headers adding X-Spamd-Result, X-Rspamd-Server and
  X-Rspamd-Queue-Id (for local and authenticated clients too: the tests' are on loopback),
  and one local rule, IMSD_BORDERLINE (8 points: add_header), for a Subject containing
  "imsd borderline". GTUBE is rspamd's own.
* OpenDKIM: a signing milter (Mode s) for one domain with a fresh 2048-bit RSA key;
  dns_txt() is the selector's TXT record, for dkimpy's verifier.
* Clamd + ClamavMilter: clamd with a signature database written here (Imsd-Test.EICAR: the
  bytes of the EICAR test file), since ClamAV's own signatures come only from the network
  (freshclam); clamav-milter rejecting what clamd finds.
* Postgrey: the greylisting policy server, with --delay to keep tests short.
* ScriptMilter: a milter written with Debian's python3-milter (tests/integration/milters/),
  run by Debian's python3 (the one that sees python3-milter).

Every address is 127.0.0.1; every wait is bounded; every process is signalled by the pid
this module started it with (SIGTERM, then SIGKILL to its own process group after a grace
period). A filter that cannot start is a test failure naming its log, never a skip.
"""

import os
import signal
import socket
import subprocess
import time

import imsdtest
from imsdtest import HERE, need_tool, wait_for
from peers import free_port_on, port_accepts

DEBIAN_PY = "/usr/bin/python3"       # Debian's python3, the one with python3-milter, dkimpy
START_TIMEOUT = 60.0                 # rspamd and clamd on a loaded 2-core machine
STOP_TIMEOUT = 10.0
MILTERS = os.path.join(HERE, "milters")

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
# The EICAR anti-virus test file (https://www.eicar.org/download-anti-malware-testfile/),
# 68 bytes; written backwards so this file is no test file itself.
EICAR = "*H+H$!ELIF-TSET-SURIVITNA-DRADNATS-RACIE$}7)CC7)^P(45XZP\\4[PA@%P!O5X"[::-1]


def unix_accepts(path, timeout=0.5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class Daemon:
    """One foreground process, its output in DIR/NAME.out."""

    name = "daemon"

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.out = os.path.join(self.dir, self.name + ".out")

    def spawn(self, argv, ready, env=None):
        """Start argv; wait until ready() or the process dies or START_TIMEOUT passes."""
        with open(self.out, "ab") as f:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         cwd=self.dir, env=env)
        ok = wait_for(lambda: self.proc.poll() is not None or ready(), START_TIMEOUT, 0.1)
        if not ok or self.proc.poll() is not None:
            code = self.proc.poll()
            self.stop()
            raise AssertionError("%s did not start (%s): %s\n%s" % (
                self.name, "exited %s" % code if code is not None else
                "not ready after %.0f s" % START_TIMEOUT, " ".join(argv), self.log()[-3000:]))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM to the pid; after STOP_TIMEOUT, SIGKILL to the process group it leads
        (workers it forked)."""
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)    # the group this module created for it
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass

    def kill(self):
        """SIGKILL now (a filter that dies under the MTA)."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT)

    def log(self):
        try:
            with open(self.out, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


# ---------------------------------------------------------------- rspamd

RSPAMD_LUA = r"""
-- imsd tests: a rule worth 8 points, between add_header (6) and reject (15)
rspamd_config.IMSD_BORDERLINE = {
  callback = function(task)
    local s = task:get_subject()
    return s ~= nil and s:find("imsd borderline", 1, true) ~= nil
  end,
  score = 8.0,
  description = "imsd test: a borderline message",
}
"""


class Rspamd(Daemon):
    """rspamd's proxy worker in milter mode on 127.0.0.1:port (self_scan)."""

    name = "rspamd"

    def __init__(self, tmp, port=None, start=True):
        super().__init__(tmp)
        self.bin = need_tool("/usr/bin/rspamd", "rspamd")
        self.port = port or free_port_on("127.0.0.1")
        d = self.dir
        with open(os.path.join(d, "tld.dat"), "w") as f:
            f.write("com\nnet\norg\nexample\ntest\nlocalhost\n")
        with open(os.path.join(d, "imsd.lua"), "w") as f:
            f.write(RSPAMD_LUA)
        self.conf = os.path.join(d, "rspamd.conf")
        with open(self.conf, "w") as f:
            f.write("""# written by tests/integration/filterpeers.py
options {
  pidfile = "%(d)s/rspamd.pid";
  dns { nameserver = ["127.0.0.1:1"]; timeout = 0.2s; retransmits = 1; }
  filters = "";
  url_tld = "%(d)s/tld.dat";
  hs_cache_dir = "%(d)s/";
  cache_file = "%(d)s/symbols.cache";
  tempdir = "%(d)s";
  explicit_modules = [];
  local_addrs = [];
  task_timeout = 8s;
}
logging { type = "file"; filename = "%(d)s/rspamd.log"; level = "info"; }
actions { reject = 15; add_header = 6; }
lua = "/usr/share/rspamd/rules/rspamd.lua";
lua = "%(d)s/imsd.lua";
modules { path = "/usr/share/rspamd/plugins"; }
milter_headers {
  use = ["x-spamd-result", "x-rspamd-server", "x-rspamd-queue-id"];
  skip_local = false;           # the tests' clients are on loopback
  skip_authenticated = false;
}
worker "rspamd_proxy" {
  bind_socket = "127.0.0.1:%(port)d";
  milter = yes;
  timeout = 120s;
  count = 1;
  upstream "local" { default = yes; self_scan = yes; }
  spam_header = "X-Spam";
}
""" % {"d": d, "port": self.port})
        if start:
            self.start()

    def start(self):
        # -f foreground, -i: as root without dropping to _rspamd (files here are root's)
        self.spawn([self.bin, "-f", "-i", "-c", self.conf],
                   lambda: port_accepts("127.0.0.1", self.port))

    @property
    def milter(self):
        return "inet:127.0.0.1:%d" % self.port

    def log(self):
        text = super().log()
        try:
            with open(os.path.join(self.dir, "rspamd.log"), errors="replace") as f:
                text += f.read()
        except OSError:
            pass
        return text


# ---------------------------------------------------------------- OpenDKIM

class OpenDKIM(Daemon):
    """OpenDKIM signing mail from `domain` (mail from InternalHosts, 127.0.0.1, is signed) with
    selector `selector` on 127.0.0.1:port."""

    name = "opendkim"

    def __init__(self, tmp, domain="example.org", selector="imsdtest", port=None, start=True):
        super().__init__(tmp)
        self.bin = need_tool("/usr/sbin/opendkim", "opendkim")
        openssl = need_tool("openssl", "openssl")
        self.domain, self.selector = domain, selector
        self.port = port or free_port_on("127.0.0.1")
        self.key = os.path.join(self.dir, "%s.private" % selector)
        subprocess.run([openssl, "genrsa", "-out", self.key, "2048"], check=True,
                       capture_output=True, timeout=60)
        os.chmod(self.key, 0o600)
        pub = subprocess.run([openssl, "rsa", "-in", self.key, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True, timeout=60).stdout
        import base64
        self.pubkey_b64 = base64.b64encode(pub).decode()
        self.conf = os.path.join(self.dir, "opendkim.conf")
        with open(self.conf, "w") as f:
            f.write("""# written by tests/integration/filterpeers.py
Syslog no
LogWhy yes
Background no
Mode s
Domain %s
Selector %s
KeyFile %s
Socket inet:%d@127.0.0.1
PidFile %s/opendkim.pid
Canonicalization relaxed/simple
InternalHosts 127.0.0.1
UserID root
RequireSafeKeys no
""" % (domain, selector, self.key, self.port, self.dir))
        if start:
            self.start()

    def start(self):
        self.spawn([self.bin, "-f", "-x", self.conf],
                   lambda: port_accepts("127.0.0.1", self.port))

    @property
    def milter(self):
        return "inet:127.0.0.1:%d" % self.port

    def dns_txt(self):
        """The TXT record of SELECTOR._domainkey.DOMAIN."""
        return "v=DKIM1; k=rsa; p=" + self.pubkey_b64

    def verify(self, message):
        """dkimpy's verdict on a message (bytes) with this key served as the DNS record:
        (ok, output)."""
        code = ("import dkim,sys\n"
                "rec=sys.argv[1].encode()\n"
                "m=sys.stdin.buffer.read()\n"
                "ok=dkim.verify(m,dnsfunc=lambda name,timeout=5:rec)\n"
                "print('ok' if ok else 'fail')\n")
        p = subprocess.run([DEBIAN_PY, "-c", code, self.dns_txt()], input=message,
                           capture_output=True, timeout=60)
        out = (p.stdout + p.stderr).decode(errors="replace")
        return p.returncode == 0 and out.strip().endswith("ok"), out


# ---------------------------------------------------------------- ClamAV

class Clamd(Daemon):
    """clamd on a unix socket with a signature database written here: ClamAV's own
    signatures (main.cvd, daily.cvd) come only from the network, through freshclam. The one
    signature, Imsd-Test.EICAR, matches the 68 bytes of the EICAR test file anywhere in what
    clamd scans (it decodes a message's MIME parts)."""

    name = "clamd"

    def __init__(self, tmp, start=True):
        super().__init__(tmp)
        self.bin = need_tool("/usr/sbin/clamd", "clamav-daemon")
        self.db = os.path.join(self.dir, "db")
        os.makedirs(self.db, exist_ok=True)
        with open(os.path.join(self.db, "imsd-test.ndb"), "w") as f:
            f.write("Imsd-Test.EICAR:0:*:%s\n" % EICAR.encode().hex())
        self.socket = os.path.join(self.dir, "clamd.sock")
        self.conf = os.path.join(self.dir, "clamd.conf")
        with open(self.conf, "w") as f:
            f.write("""# written by tests/integration/filterpeers.py
LocalSocket %(d)s/clamd.sock
DatabaseDirectory %(d)s/db
Foreground yes
LogFile %(d)s/clamd.log
PidFile %(d)s/clamd.pid
TemporaryDirectory %(d)s
User root
ScanMail yes
SelfCheck 0
""" % {"d": self.dir})
        if start:
            self.start()

    def start(self):
        self.spawn([self.bin, "-c", self.conf], lambda: unix_accepts(self.socket))


class ClamavMilter(Daemon):
    """clamav-milter on 127.0.0.1:port, asking clamd; OnInfected Reject (a 5xx naming the
    signature)."""

    name = "clamav-milter"

    def __init__(self, tmp, clamd, port=None, start=True):
        super().__init__(tmp)
        self.bin = need_tool("/usr/sbin/clamav-milter", "clamav-milter")
        self.port = port or free_port_on("127.0.0.1")
        self.conf = os.path.join(self.dir, "clamav-milter.conf")
        with open(self.conf, "w") as f:
            f.write("""# written by tests/integration/filterpeers.py
MilterSocket inet:%(port)d@127.0.0.1
ClamdSocket unix:%(clamd)s
Foreground yes
PidFile %(d)s/clamav-milter.pid
TemporaryDirectory %(d)s
User root
OnInfected Reject
OnFail Defer
AddHeader Replace
LogFile %(d)s/clamav-milter.log
LogInfected Basic
""" % {"port": self.port, "clamd": clamd.socket, "d": self.dir})
        if start:
            self.start()

    def start(self):
        self.spawn([self.bin, "-c", self.conf], lambda: port_accepts("127.0.0.1", self.port))

    @property
    def milter(self):
        return "inet:127.0.0.1:%d" % self.port


# ---------------------------------------------------------------- postgrey

class Postgrey(Daemon):
    """postgrey on 127.0.0.1:port, greylisting for `delay` seconds, its database here."""

    name = "postgrey"

    def __init__(self, tmp, delay=2, port=None, start=True):
        super().__init__(tmp)
        self.bin = need_tool("/usr/sbin/postgrey", "postgrey")
        self.port = port or free_port_on("127.0.0.1")
        self.delay = delay
        self.db = os.path.join(self.dir, "db")
        os.makedirs(self.db, exist_ok=True)
        if start:
            self.start()

    def start(self):
        empty = os.path.join(self.dir, "empty")
        open(empty, "w").close()
        self.spawn([self.bin, "--inet=127.0.0.1:%d" % self.port, "--dbdir=" + self.db,
                    "--delay=%d" % self.delay, "--pidfile=" + os.path.join(self.dir, "pid"),
                    "--whitelist-clients=" + empty, "--whitelist-recipients=" + empty,
                    "--hostname=postgrey.test", "--auto-whitelist-clients=0", "-v",
                    # as root: the test's directory is root's alone (mode 0700)
                    "--user=root", "--group=root"],
                   lambda: port_accepts("127.0.0.1", self.port))

    @property
    def service(self):
        return "inet:127.0.0.1:%d" % self.port


# ---------------------------------------------------------------- scripted milters

class ScriptMilter(Daemon):
    """tests/integration/milters/SCRIPT.py (pymilter) on 127.0.0.1:port; it writes what it
    saw, one JSON object a line, to DIR/seen.jsonl."""

    def __init__(self, tmp, script, port=None, start=True, args=()):
        self.name = script
        super().__init__(tmp)
        need_tool(DEBIAN_PY, "python3")
        self.script = os.path.join(MILTERS, script + ".py")
        self.port = port or free_port_on("127.0.0.1")
        self.seen_file = os.path.join(self.dir, "seen.jsonl")
        self.args = list(args)
        if start:
            self.start()

    def start(self):
        self.spawn([DEBIAN_PY, self.script, "inet:%d@127.0.0.1" % self.port, self.seen_file]
                   + self.args, lambda: port_accepts("127.0.0.1", self.port))

    @property
    def milter(self):
        return "inet:127.0.0.1:%d" % self.port

    def seen(self):
        import json
        try:
            with open(self.seen_file) as f:
                return [json.loads(l) for l in f if l.strip()]
        except OSError:
            return []


def milter_handshake(port, timeout=5.0):
    """Open a connection and exchange SMFIC_OPTNEG: (version, actions, protocol) of the
    milter's answer. Proves a milter answers before a test relies on it."""
    import struct
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(struct.pack(">IcIII", 13, b"O", 6, 0x1FF, 0x1FFFFF))
        head = b""
        while len(head) < 4:
            chunk = s.recv(4 - len(head))
            if not chunk:
                raise AssertionError("milter on port %d closed during OPTNEG" % port)
            head += chunk
        n = struct.unpack(">I", head)[0]
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                raise AssertionError("milter on port %d closed during OPTNEG" % port)
            data += chunk
        if data[:1] != b"O" or len(data) < 13:
            raise AssertionError("milter on port %d answered OPTNEG with %r" % (port, data[:20]))
        return struct.unpack(">III", data[1:13])
    finally:
        s.close()
