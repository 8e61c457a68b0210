"""Root never follows a link that the run user put into the spool (issue 24, finding 1).

The spool belongs to the user imsd serves as; whoever runs as that user (anyone who took
over imsd, or with run_user = nobody any other daemon running as nobody) can put links
there. Started as root, imsd opens spool_dir once and works inside it by descriptor only: a
link (or a file) where one of its directories, the lock or the socket belongs makes it
refuse to start with a log line naming the path, and nothing outside the spool changes.
Commands that root runs on the spool (imsd queue, imsd flush, sendmail) become the spool's
owner first, or check what they talk to.

Needs root (it creates a throwaway system user, as test_privileges.py does).
"""

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import threading
import time
import unittest

import imsdtest
from imsdtest import ImsdCase, imsd_binary, make_message, wait_for, SANITIZER_RE
import peers


def snapshot(paths):
    """What a change to these paths would show: mode, owner, size, mtime, content."""
    out = {}
    for p in paths:
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            out[p] = None
            continue
        data = None
        if os.path.isfile(p) and not os.path.islink(p):
            with open(p, "rb") as f:
                data = f.read()
        out[p] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, data)
    return out


class FakeSocket:
    """A unix socket of root's outside the spool that records whatever talks to it."""

    def __init__(self, path, greeting=b""):
        self.path = path
        self.got = b""
        self.accepted = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.greeting = greeting
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            c.settimeout(2)
            try:
                if self.greeting:
                    c.sendall(self.greeting)
                while True:
                    d = c.recv(4096)
                    if not d:
                        break
                    self.got += d
                    if self.greeting:
                        c.sendall(b"250 ok\r\n")
            except OSError:
                pass
            c.close()

    def close(self):
        self.stop = True
        self.t.join(5)
        self.sock.close()


class SpoolLinks(ImsdCase):
    user = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        imsdtest.need_root("these tests start imsd as root with another run_user")
        cls.user = "imsdl%s" % secrets.token_hex(3)
        p = subprocess.run([imsdtest.need_tool("useradd", "passwd"), "--system",
                            "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            cls.user], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            cls.user = None
            raise AssertionError("useradd failed as root: %s" % p.stderr.strip())
        pw = pwd.getpwnam(cls.user)
        cls.uid, cls.gid = pw.pw_uid, pw.pw_gid

    @classmethod
    def tearDownClass(cls):
        if cls.user:
            subprocess.run(["userdel", cls.user], capture_output=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)
        # root's things outside the spool, which the run user must not be able to change
        self.outside = os.path.join(self.tmp, "outside")
        os.makedirs(self.outside)
        os.chmod(self.outside, 0o700)
        self.victim = os.path.join(self.outside, "shadow")
        with open(self.victim, "w") as f:
            f.write("root:secret:1:0:99999:7:::\n")
        os.chmod(self.victim, 0o600)
        self.victimdir = os.path.join(self.outside, "etc")
        os.makedirs(self.victimdir)
        os.chmod(self.victimdir, 0o755)
        self.created = os.path.join(self.outside, "ld.so.preload")
        self.watched = [self.outside, self.victim, self.victimdir, self.created]

    def as_run_user(self, *cmd):
        p = subprocess.run(["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % self.gid,
                            "--clear-groups"] + list(cmd), capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, "%s: %s" % (cmd, p.stderr))

    def plant(self, srv, name, target):
        """As the run user: replace spool/NAME with a symbolic link to target."""
        path = os.path.join(srv.spool_dir, name)
        self.as_run_user("rm", "-rf", path)
        self.as_run_user("ln", "-s", target, path)
        return path

    def spool_server(self, **conf):
        """A server started as root with run_user = the throwaway user, then stopped: its
        spool now belongs to the run user, as after any real start."""
        conf.setdefault("run_user", self.user)
        srv = self.server(start=False, **conf)
        os.makedirs(srv.dir, exist_ok=True)
        os.chmod(srv.dir, 0o755)
        srv.start()
        return srv

    def start_refused(self, srv):
        p = subprocess.run([srv.binary, "run", "-c", srv.conf_path], capture_output=True,
                           text=True, timeout=30, cwd=srv.dir, errors="replace")
        self.assertIsNone(SANITIZER_RE.search(p.stderr), p.stderr)
        return p

    def test_root_start_refuses_links_in_the_spool_and_changes_nothing_outside(self):
        srv = self.spool_server()
        srv.stop()
        self.assertEqual(os.stat(srv.spool_dir).st_uid, self.uid)
        before = snapshot(self.watched)
        cases = [("maildrop", self.victimdir), ("maildrop", self.victim),
                 ("lock", self.created), ("lock", self.victim), ("submit", self.victim),
                 ("corrupt", self.victimdir), ("queue", self.victimdir),
                 ("incoming", self.victimdir), ("free", self.victimdir)]
        for name, target in cases:
            with self.subTest(name=name, target=target):
                saved = os.path.join(self.tmp, "saved-" + name)
                path = os.path.join(srv.spool_dir, name)
                if os.path.lexists(path) and not os.path.exists(saved):
                    os.rename(path, saved)      # keep the real one to put back
                self.plant(srv, name, target)
                p = self.start_refused(srv)
                self.assertEqual(p.returncode, 2, p.stderr[-2000:])
                self.assertRegex(p.stderr, r"event=startup-error reason=.*%s/%s"
                                 % (srv.spool_dir, name))
                self.assertEqual(snapshot(self.watched), before,
                                 "root changed something outside the spool through %s" % name)
                os.unlink(path)
                if os.path.lexists(saved):
                    os.rename(saved, path)
        # with the links gone it starts, and still nothing outside changed
        srv.start()
        code, _ = peers.submit(srv, "s@example.org", ["alice@localhost"], make_message("ok"))
        self.assertEqual(code, 250)
        srv.wait_mail("localhost", "alice")
        srv.stop()
        self.assertEqual(snapshot(self.watched), before)

    def test_links_deeper_in_the_spool_are_not_followed_or_given_away_and_are_logged(self):
        srv = self.spool_server()
        srv.stop()
        before = snapshot(self.watched)
        link = os.path.join(srv.spool_dir, "queue", "0000000000000000")
        self.as_run_user("ln", "-s", self.victim, link)
        srv.start()
        srv.stop()
        self.assertEqual(snapshot(self.watched), before)
        self.assertRegex(srv.log_text(), r"event=privileges-skipped path=%s "
                         r"reason=\"a symbolic link\"" % link)

    def test_imsd_queue_as_root_does_not_open_a_link_in_the_queue(self):
        # a deferred message: its relay host refuses connections
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        srv = self.spool_server(relayhost="[127.0.0.1]:%d" % port, relay_networks="127.0.0.0/8")
        code, text = peers.submit(srv, "marker-sender@example.org", ["x@remote.example"],
                                  make_message("queued"))
        self.assertEqual(code, 250)
        qid = peers.qid_of(text)
        srv.stop()
        # root's own copy of that queue file, outside the spool, and a link to it in queue/
        q = os.path.join(srv.spool_dir, "queue", qid)
        rootonly = os.path.join(self.outside, "rootonly")
        shutil.copyfile(q, rootonly)
        os.chmod(rootonly, 0o600)
        with open(rootonly, "rb") as f:
            self.assertIn(b"marker-sender@example.org", f.read())
        for j in (q, q + ".j"):
            if os.path.exists(j):
                os.unlink(j)
        self.as_run_user("ln", "-s", rootonly, q)
        for args in (["queue"], ["queue", "--json"]):
            p = subprocess.run([imsd_binary()] + args + ["-c", srv.conf_path],
                               capture_output=True, text=True, timeout=30)
            self.assertIsNone(SANITIZER_RE.search(p.stderr), p.stderr)
            self.assertNotIn("marker-sender", p.stdout + p.stderr,
                             "imsd %s as root read root's file through the link" % args)
            self.assertIn(qid, p.stdout)        # listed, as unreadable

    def test_sendmail_as_root_refuses_a_linked_maildrop_and_a_foreign_socket(self):
        srv = self.spool_server()
        srv.stop()
        sendmail = [imsd_binary(), "sendmail", "-C", srv.conf_path, "alice@localhost"]
        # the server is down and the maildrop is a link to a directory of root's: root's
        # sendmail (cron, say) must not write its file there
        drop = os.path.join(srv.spool_dir, "maildrop")
        saved = os.path.join(self.tmp, "saved-maildrop")
        os.rename(drop, saved)
        self.plant(srv, "maildrop", self.victimdir)
        p = subprocess.run(sendmail, input=b"Subject: cron\n\nout\n", capture_output=True,
                           timeout=30)
        self.assertEqual(p.returncode, 75, p.stderr)
        self.assertIn(b"maildrop: not a directory but a link", p.stderr)
        self.assertEqual(os.listdir(self.victimdir), [])
        os.unlink(drop)
        os.rename(saved, drop)
        # spool/submit is a link to another program's socket (of root's): not talked to
        fake = FakeSocket(os.path.join(self.outside, "other.sock"), greeting=b"220 other\r\n")
        self.addCleanup(fake.close)
        self.plant(srv, "submit", fake.path)
        p = subprocess.run(sendmail, input=b"Subject: cron\n\nout\n", capture_output=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)     # left in the maildrop instead
        self.assertIn(b"not by the owner of", p.stderr)
        self.assertEqual(fake.got, b"")
        self.assertEqual(len(os.listdir(drop)), 1)
        # imsd flush as root: spool/control is a link to the same socket
        self.plant(srv, "control", fake.path)
        p = subprocess.run([imsd_binary(), "flush", "-c", srv.conf_path], capture_output=True,
                           timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(fake.got, b"")
        os.unlink(os.path.join(srv.spool_dir, "submit"))
        os.unlink(os.path.join(srv.spool_dir, "control"))
        srv.start()
        srv.wait_mail("localhost", "alice")
        self.assertEqual(snapshot(self.watched)[self.victim][5], b"root:secret:1:0:99999:7:::\n")

    def test_embedded_default_refuses_a_key_linked_into_var_tls(self):
        # `make run` as root: an earlier version gave ./var/tls to the run user (nobody),
        # who could link key.pem to another service's key; root read it and the server,
        # once nobody, held that key. Now var/tls is taken back and a link is refused
        # before anything is read (the start stops before any port is bound).
        work = os.path.join(self.tmp, "run")
        tls = os.path.join(work, "var", "tls")
        os.makedirs(tls)
        os.chmod(work, 0o755)
        os.chown(tls, 65534, 65534)
        os.chmod(tls, 0o700)
        other = os.path.join(self.outside, "privkey.pem")
        with open(other, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n")
        os.chmod(other, 0o600)
        before = snapshot(self.watched + [other])
        for name in ("cert.pem", "key.pem"):
            p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "ln", "-s", other, os.path.join(tls, name)],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
        try:
            p = subprocess.run([imsd_binary(), "run"], capture_output=True, text=True,
                               timeout=20, cwd=work, errors="replace")
        except subprocess.TimeoutExpired:
            self.fail("imsd served with a key read through a link in var/tls")
        self.assertIsNone(SANITIZER_RE.search(p.stderr), p.stderr)
        self.assertEqual(p.returncode, 2, p.stderr[-2000:])
        self.assertRegex(p.stderr, r"event=startup-error reason=\"var/tls/cert\.pem: not a "
                         r"plain file \(a symbolic link\)")
        st = os.stat(tls)
        self.assertEqual(st.st_uid, 0, "var/tls taken back by root")
        self.assertEqual(snapshot(self.watched + [other]), before)


if __name__ == "__main__":
    unittest.main()
