"""netns — run imsd and its clients inside a private network namespace (the TLS/AUTH tests).

The loopback policy (SPEC.md, first section) depends on the address a client connects *to*, so
these tests need a non-loopback address on the server host. Each test class gets its own
namespace `imsdt-<random>` with `lo` up and 198.51.100.10/32 (TEST-NET-2) and 2001:db8::10/128
on it; imsd runs inside it listening on 0.0.0.0 and [::], and so do the clients
(tls_client.py, `openssl s_client`), so no traffic ever leaves the namespace.

    class MyTests(netns.NsCase):
        server_conf = {"tls_loopback": "yes"}          # overrides; None drops a key
        def test_x(self):
            r = self.raw(netns.NS_ADDR, [["read"], ["cmd", "EHLO c"]])
            ...

When the run is not as root every test of the class skips with the reason "not root" (the
one legitimate skip, tests/run.py); when a namespace cannot be made as root (no `ip`, `ip
netns add` refused) every test of the class fails with the reason: that is a broken
machine, not a test to leave out.
Only processes started here are signalled, by pid; the namespace is deleted in tearDownClass.
"""

import atexit
import base64
import ctypes
import hashlib
import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

import imsdtest
from imsdtest import ImsdCase, Server, imsd_binary

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "tls_client.py")

NS_ADDR = "198.51.100.10"        # the namespace's non-loopback IPv4 address
NS_ADDR6 = "2001:db8::10"        # and IPv6 address
SERVER_NAME = "mx.imsd.test"     # hostname and certificate name
PORT = 2525                      # ports are free in a fresh namespace
SUBMISSION_PORT = 5587
SMTPS_PORT = 4465
CMD_TIMEOUT = 30

PASSWORD = "correct horse"
USERS = {"alice": "yescrypt", "bob": "sha512"}  # user -> hash scheme in the users file


# ---------------------------------------------------------------- the namespace

class NetNS:
    """A network namespace created (and deleted) by this process."""

    def __init__(self, name):
        self.name = name

    @classmethod
    def create(cls):
        """A new namespace with lo up and NS_ADDR, NS_ADDR6 on lo. Not root: SkipTest
        ("not root"); root but the namespace cannot be made: AssertionError with the reason."""
        imsdtest.need_root("network namespaces (`ip netns add`)")
        imsdtest.need_tool("ip", "iproute2")
        ns = cls("imsdt-" + secrets.token_hex(4))
        p = subprocess.run(["ip", "netns", "add", ns.name], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=CMD_TIMEOUT)
        if p.returncode != 0:
            raise AssertionError("`ip netns add %s` failed (status %d): %s"
                                 % (ns.name, p.returncode, p.stderr.strip()))
        ns.deleted = False
        atexit.register(ns.delete)       # in case tearDownClass is never reached
        try:
            for args in (["ip", "link", "set", "lo", "up"],
                         ["ip", "addr", "add", NS_ADDR + "/32", "dev", "lo"],
                         ["ip", "-6", "addr", "add", NS_ADDR6 + "/128", "dev", "lo", "nodad"]):
                p = ns.run(args)
                if p.returncode != 0:
                    raise AssertionError("`ip netns exec %s %s` failed (status %d): %s"
                                         % (ns.name, " ".join(args), p.returncode,
                                            p.stderr.strip()))
        except BaseException:
            ns.delete()
            raise
        return ns

    def argv(self, args):
        return ["ip", "netns", "exec", self.name] + list(args)

    def run(self, args, timeout=CMD_TIMEOUT, input=None):
        """Run a command inside the namespace; CompletedProcess with text output."""
        return subprocess.run(self.argv(args), input=input,
                              stdin=None if input is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace", timeout=timeout)

    def delete(self):
        if getattr(self, "deleted", True):
            return
        self.deleted = True
        subprocess.run(["ip", "netns", "delete", self.name], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=CMD_TIMEOUT)


# ---------------------------------------------------------------- credentials

def make_cert(directory, name=SERVER_NAME, days=30):
    """A self-signed EC certificate for name (CN and subjectAltName); returns (cert, key)."""
    cert = os.path.join(directory, "%s.crt" % name)
    key = os.path.join(directory, "%s.key" % name)
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", key, "-out", cert, "-days", str(days),
                        "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=CMD_TIMEOUT)
    if p.returncode != 0:
        raise AssertionError("openssl req failed: %s" % p.stderr)
    return cert, key


_libcrypt = None


def _crypt_lib():
    global _libcrypt
    if _libcrypt is None:
        lib = ctypes.CDLL("libcrypt.so.1")
        lib.crypt_gensalt_rn.restype = ctypes.c_char_p
        lib.crypt_gensalt_rn.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p,
                                         ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.crypt.restype = ctypes.c_char_p
        lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        _libcrypt = lib
    return _libcrypt


def cert_sha256(cert_file):
    """SHA-256 of the DER form of the (first) certificate in a PEM file."""
    with open(cert_file) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def yescrypt_hash(password):
    """A `$y$` hash made by the system libcrypt (libxcrypt), the library imsd verifies with."""
    lib = _crypt_lib()
    buf = ctypes.create_string_buffer(256)
    salt = lib.crypt_gensalt_rn(b"$y$", 0, None, 0, buf, len(buf))
    if not salt:
        raise AssertionError("crypt_gensalt_rn($y$) failed: libcrypt without yescrypt?")
    h = lib.crypt(password.encode(), salt)
    if not h or not h.startswith(b"$y$"):
        raise AssertionError("crypt() did not return a yescrypt hash: %r" % h)
    return h.decode()


def sha512_hash(password):
    """A `$6$` SHA-512 crypt hash from `openssl passwd -6`."""
    p = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n",
                       capture_output=True, text=True, timeout=CMD_TIMEOUT)
    h = p.stdout.strip()
    if p.returncode != 0 or not h.startswith("$6$"):
        raise AssertionError("openssl passwd -6 failed: %s %s" % (h, p.stderr))
    return h


def write_users(path, users=USERS, password=PASSWORD):
    lines = []
    for user, scheme in users.items():
        lines.append("%s:%s\n" % (user, yescrypt_hash(password) if scheme == "yescrypt"
                                  else sha512_hash(password)))
    with open(path, "w") as f:
        f.write("# written by tests/integration/netns.py\n" + "".join(lines))
    return path


def plain_token(user, password):
    return base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


# ---------------------------------------------------------------- the server

class NsServer(Server):
    """imsd inside a namespace: `ip netns exec NS imsd run -c CONF` (ip execs imsd, so the
    child's pid is imsd's and Server.stop signals imsd itself)."""

    def __init__(self, ns, tmpdir, **conf):
        self.ns = ns
        super().__init__(tmpdir, start=False, **conf)
        self.port = PORT
        base = {"listen": "0.0.0.0:%d, [::]:%d" % (PORT, PORT)}
        base.update(conf)
        self.set_conf(**base)

    def start(self):
        assert not self.running, "already running"
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(b"==== netns harness: start #%d in %s\n" % (self.starts,
                                                                   self.ns.name.encode()))
            log.flush()
            self.proc = subprocess.Popen(self.ns.argv([self.binary, "run", "-c", self.conf_path]),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.dir)
        self.wait_listening()

    def wait_listening(self, timeout=imsdtest.START_TIMEOUT):
        """Probe 127.0.0.1:PORT from inside the namespace until it greets with 220."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("imsd exited with status %s during start-up%s"
                                     % (self.proc.returncode, self.log_tail_msg()))
            res = client(self.ns, "raw", "--host", "127.0.0.1", "--port", str(self.port),
                         "--timeout", "2", json.dumps([["read"], ["cmd", "QUIT"]]))
            ev = res.get("events", [])
            if ev and ev[0]["reply"]["code"] == 220:
                return
            last = res.get("error", res)
            time.sleep(0.1)
        raise AssertionError("imsd did not greet on 127.0.0.1:%d in %s within %.0f s (%s)%s"
                             % (self.port, self.ns.name, timeout, last, self.log_tail_msg()))

    def cli(self, *args):
        """`imsd ARGS... -c CONF`-style command run inside the namespace; args are given whole."""
        return self.ns.run([self.binary] + list(args))


def client(ns, *args, timeout=60):
    """Run tls_client.py inside ns; its JSON result (or {"error": ...})."""
    try:
        p = ns.run([sys.executable, CLIENT] + list(args), timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": "tls_client.py did not finish within %d s" % timeout}
    try:
        out = json.loads(p.stdout)
    except ValueError:
        return {"error": "tls_client.py printed no JSON (status %d): %s %s"
                % (p.returncode, p.stdout[-2000:], p.stderr[-2000:])}
    if p.stderr.strip():
        out["stderr"] = p.stderr[-2000:]
    return out


class Transcript:
    """What ImsdCase prints for a failing test (it reads .transcript of each self.clients)."""

    def __init__(self, title, res):
        self.transcript = [("-- " + title).encode("latin-1", "replace")]
        for ev in res.get("events", []):
            op = ev["op"]
            if op == "cmd":
                self.transcript.append(b"C: " + ev["line"].encode("latin-1"))
            elif op == "send":
                self.transcript.append(b"C: " + repr(ev["data"]).encode("latin-1"))
            elif op == "starttls":
                self.transcript.append(("-- TLS %s" % ev["tls"]).encode("latin-1", "replace"))
            elif op in ("silent", "closed"):
                self.transcript.append(("-- %s: %r" % (op, ev)).encode("latin-1", "replace"))
            elif op.startswith("auth_"):
                self.transcript.append(b"C: AUTH " + op[5:].upper().encode() + b" ...")
            for rep in ev.get("replies", [ev["reply"]] if "reply" in ev else []):
                self.transcript.extend(b"S: " + l.encode("latin-1", "replace")
                                       for l in rep["lines"])
        if "events" not in res:
            self.transcript.append(json.dumps(res).encode("latin-1", "replace")[:3000])
        if "error" in res:
            self.transcript.append(b"!! " + res["error"].encode("latin-1", "replace"))


# ---------------------------------------------------------------- the test case base

class NsCase(ImsdCase):
    """One namespace and one imsd per class. server_conf: overrides of the harness defaults
    (plus tls_cert_file/tls_key_file/auth_users_file, set unless with_cert/with_users say no).
    Not root: each test skips with the reason "not root"; a namespace or server that cannot
    be made as root fails setUpClass, which tests/run.py counts once per test of the class."""

    server_conf = {}
    with_cert = True
    with_users = True
    _skip_reason = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ns = cls.srv = None
        cls.dir = tempfile.mkdtemp(prefix="imsd-netns-%s-" % cls.__name__[:30])
        try:
            cls.binary = imsd_binary()
            cls.ns = NetNS.create()
        except unittest.SkipTest as e:
            cls._skip_reason = str(e)      # "not root": every test reports it (see setUp)
            return
        except BaseException:
            shutil.rmtree(cls.dir, ignore_errors=True)
            raise
        try:
            conf = {}
            if cls.with_cert:
                cls.cert, cls.key = make_cert(cls.dir)
                conf.update(tls_cert_file=cls.cert, tls_key_file=cls.key)
            else:
                cls.cert = cls.key = None
            if cls.with_users:
                conf["auth_users_file"] = write_users(os.path.join(cls.dir, "users"))
            conf.update(cls.server_conf)
            cls.srv = NsServer(cls.ns, os.path.join(cls.dir, "srv"), **conf)
            cls.srv.start()
        except BaseException:
            cls._cleanup_class()
            raise

    @classmethod
    def _cleanup_class(cls):
        try:
            if cls.srv is not None:
                cls.srv.close()          # SIGTERM, expects exit 0 and no sanitizer report
        finally:
            if cls.ns is not None:
                cls.ns.delete()
            shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        try:
            cls._cleanup_class()
        finally:
            super().tearDownClass()

    def setUp(self):
        if self._skip_reason:
            self.skipTest(self._skip_reason)
        super().setUp()
        self.servers.append(self.srv)

    # -- clients inside the namespace
    def raw(self, host, steps, port=PORT, smtps=False, source=None, cafile=True, timeout=10):
        args = ["raw", "--host", host, "--port", str(port), "--timeout", str(timeout)]
        if smtps:
            args.append("--smtps")
        if source:
            args += ["--source", source]
        args += ["--cafile", (self.cert or "") if cafile is True else (cafile or "")]
        res = client(self.ns, *(args + [json.dumps(steps)]))
        self.clients.append(Transcript("tls_client.py %s:%d %s" % (host, port, steps), res))
        return res

    def smtp(self, host, port=PORT, smtps=False, starttls=False, login=None, auth_method=None,
             mail=None, rcpt=(), subject="tls test"):
        args = ["smtplib", "--host", host, "--port", str(port), "--cafile", self.cert or ""]
        if smtps:
            args.append("--smtps")
        if starttls:
            args.append("--starttls")
        if login:
            args += ["--login", login[0], login[1]]
        if auth_method:
            args += ["--auth-method", auth_method]
        if mail:
            args += ["--mail", mail, "--subject", subject]
            for r in rcpt:
                args += ["--rcpt", r]
        res = client(self.ns, *args)
        self.clients.append(Transcript("smtplib %s:%d" % (host, port), res))
        return res

    def explain(self, address):
        """`imsd explain-tls -c CONF ADDRESS` inside the namespace -> (first word, stdout)."""
        p = self.srv.cli("explain-tls", "-c", self.srv.conf_path, address)
        self.assertEqual(p.returncode, 0, "explain-tls %s exited %d: %s%s"
                         % (address, p.returncode, p.stdout, p.stderr))
        words = p.stdout.split()
        self.assertTrue(words, "explain-tls %s printed nothing (stderr %r)" % (address, p.stderr))
        return words[0], p.stdout

    # -- assertions on tls_client.py results
    def ok(self, res):
        """res without an error; returns its replies in order (one per reply-reading step)."""
        self.assertNotIn("error", res, "client failed: %s" % json.dumps(res, indent=1))
        return [ev["reply"] for ev in res.get("events", []) if "reply" in ev]

    def assertCode(self, reply, code, enhanced=None, msg=None):
        self.assertReply(imsdtest.Reply(reply["lines"]), code, enhanced, msg)

    @staticmethod
    def ehlo_keywords(reply):
        """The EHLO keywords (upper case, first word of each line after the first)."""
        return [l[4:].split(" ")[0].upper() for l in reply["lines"][1:]]

    @staticmethod
    def ehlo_line(reply, keyword):
        for l in reply["lines"][1:]:
            if l[4:].split(" ")[0].upper() == keyword:
                return l[4:]
        return None
