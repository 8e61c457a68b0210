"""Never serve as root (issue 8, part 1) and the hardened systemd unit (part 2).

Runs as root (CI does): creates a throwaway system user for the run_user tests and deletes it
afterwards; a non-root run uses the same user. The serving process is checked from /proc:
Uid/Gid, CapEff/CapPrm/CapAmb and NoNewPrivs.
"""

import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
import unittest

import imsdtest
from imsdtest import ImsdCase, ROOT, make_message, wait_for
import peers

UNIT = os.path.join(ROOT, "dist", "imsd.service")


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


class AsAnotherUser(ImsdCase):
    user = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        imsdtest.need_root("these tests switch users")
        cls.user = "imsdt%s" % secrets.token_hex(3)
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
        os.chmod(self.tmp, 0o755)      # the run user must reach the spool and mail dirs

    def as_user_server(self, **conf):
        conf.setdefault("run_user", self.user)
        srv = self.server(start=False, **conf)
        os.makedirs(srv.dir, exist_ok=True)
        os.chmod(srv.dir, 0o755)
        srv.start()
        return srv

    def test_root_start_switches_to_run_user_for_good(self):
        srv = self.as_user_server()
        st = status(srv.proc.pid)
        self.assertEqual(st["Uid"], [str(self.uid)] * 4)
        self.assertEqual(st["Gid"], [str(self.gid)] * 4)
        for cap in ("CapEff", "CapPrm", "CapAmb", "CapInh"):
            self.assertEqual(int(st[cap][0], 16), 0, cap)
        self.assertEqual(st["NoNewPrivs"], ["1"])
        for t in os.listdir("/proc/%d/task" % srv.proc.pid):   # every thread, not only main
            self.assertEqual(status(int(t))["Uid"][1], str(self.uid))
        self.assertRegex(srv.log_text(), r"event=privileges user=%s uid=%d gid=%d "
                         r"capabilities=none" % (self.user, self.uid, self.gid))

    def test_everything_written_belongs_to_the_run_user_and_is_private(self):
        srv = self.as_user_server()
        code, _ = peers.submit(srv, "s@example.org", ["alice@localhost"], make_message("own"))
        self.assertEqual(code, 250)
        f = srv.wait_mail("localhost", "alice")[0]
        st = os.stat(f)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777), (self.uid, self.gid, 0o600))
        box = srv.maildir("localhost", "alice")
        for d in (os.path.join(srv.mail_dir, "localhost"), box, box + "/new", box + "/tmp",
                  box + "/cur"):
            st = os.stat(d)
            self.assertEqual((st.st_uid, st.st_mode & 0o777), (self.uid, 0o700), d)
        st = os.stat(srv.spool_dir)
        self.assertEqual(st.st_uid, self.uid)
        # others may search it (0711: spool_dir/submit and the maildrop are for local users,
        # see test_sendmail.py), never list or write it
        self.assertEqual(st.st_mode & 0o777, 0o711, "the spool is readable by others")
        ctl = os.path.join(srv.spool_dir, "control")
        st = os.stat(ctl)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (self.uid, 0o600))
        for d, _, files in os.walk(srv.spool_dir):
            for n in files:
                self.assertEqual(os.stat(os.path.join(d, n)).st_uid, self.uid, n)

    def test_check_as_root_judges_files_as_the_run_user_reads_them(self):
        srv = self.server(start=False, run_user=self.user)
        os.makedirs(srv.dir, exist_ok=True)
        os.chmod(srv.dir, 0o755)
        rcpt = srv.write_file("recipients", "alice@localhost\n")
        os.chmod(rcpt, 0o600)           # root's only: the server could not read it on reload
        srv.set_conf(recipients_file=rcpt)
        p = subprocess.run([srv.binary, "check", "-c", srv.conf_path], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("recipients_file", p.stderr)
        self.assertIn("Permission denied", p.stderr)
        self.assertIn("read as %s, uid %d" % (self.user, self.uid), p.stderr)
        os.chown(rcpt, 0, self.gid)
        os.chmod(rcpt, 0o640)           # root:RUNUSER 0640, as the README says
        p = subprocess.run([srv.binary, "check", "-q", "-c", srv.conf_path],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.count("\n"), 1, "-q prints the one line: " + p.stdout)
        self.assertIn("is valid", p.stdout)

    def test_missing_run_user_is_refused_with_how_to_create_it(self):
        srv = self.server(start=False, run_user="imsd-nosuchuser")
        p = subprocess.run([srv.binary, "run", "-c", srv.conf_path], capture_output=True,
                           text=True, timeout=30, cwd=srv.dir)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("run_user: no user named imsd-nosuchuser", p.stderr)
        self.assertIn("adduser --system", p.stderr)
        self.assertRegex(p.stderr, r"imsd\.conf:\d+: run_user")

    def test_run_user_root_written_keeps_root_and_warns(self):
        srv = self.server(run_user="root")
        self.assertEqual(status(srv.proc.pid)["Uid"][1], "0")
        self.assertIn("event=running-as-root", srv.log_text())

    def test_started_as_an_ordinary_user_it_runs_as_that_user(self):
        srv = self.server(start=False, run_user=None)
        os.makedirs(srv.dir, exist_ok=True)
        for d in (srv.dir,):
            os.chown(d, self.uid, self.gid)
        uid, gid = self.uid, self.gid

        def drop():
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        log = open(srv.log_path, "ab")
        srv.proc = subprocess.Popen([srv.binary, "run", "-c", srv.conf_path], stdout=log,
                                    stderr=log, cwd=srv.dir, preexec_fn=drop)
        log.close()
        srv.wait_listening()
        self.assertEqual(status(srv.proc.pid)["Uid"][1], str(uid))
        code, _ = peers.submit(srv, "s@example.org", ["bob@localhost"], make_message("user"))
        self.assertEqual(code, 250)
        self.assertEqual(os.stat(srv.wait_mail("localhost", "bob")[0]).st_uid, uid)
        self.assertIn("event=privileges user=(as started)", srv.log_text())

    def test_run_user_naming_someone_else_without_root_is_an_error(self):
        srv = self.server(start=False, run_user="mail")
        os.makedirs(srv.dir, exist_ok=True)
        os.chown(srv.dir, self.uid, self.gid)
        uid, gid = self.uid, self.gid

        def drop():
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        p = subprocess.run([srv.binary, "run", "-c", srv.conf_path], capture_output=True,
                           text=True, timeout=30, cwd=srv.dir, preexec_fn=drop)
        self.assertEqual(p.returncode, 1)
        self.assertIn("only root can switch users", p.stderr)

    def test_embedded_default_as_root_serves_as_nobody_when_there_is_no_imsd_user(self):
        """`imsd run` without a configuration, as root, on a host without an imsd user. The
        host itself may have one (the package makes it) and may have 127.0.0.1:2525 (the
        embedded default's port) in use, so imsd runs in a network namespace of this test's
        own (where 2525 is free) and a mount namespace whose /etc/passwd and /etc/group are
        copies of the host's without imsd."""
        import netns
        ns = netns.NetNS.create()
        self.addCleanup(ns.delete)
        etc = os.path.join(self.tmp, "etc")
        os.makedirs(etc)
        for name in ("passwd", "group"):
            with open("/etc/" + name) as f:
                kept = [l for l in f if l.split(":", 1)[0] != "imsd"]
            with open(os.path.join(etc, name), "w") as f:
                f.writelines(kept)
        work = os.path.join(self.tmp, "run")
        os.makedirs(work)
        os.chmod(work, 0o755)
        srv = netns.NsServer(ns, work)
        srv.port = 2525
        log = open(srv.log_path, "ab")
        # ip, unshare and sh each exec the next: the child's pid is imsd's
        srv.proc = subprocess.Popen(ns.argv([
            imsdtest.need_tool("unshare", "util-linux"), "--mount", "--propagation", "private",
            "sh", "-c", 'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && '
            'exec "$3" run', "sh", os.path.join(etc, "passwd"), os.path.join(etc, "group"),
            srv.binary]), stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=work)
        log.close()
        self.servers.append(srv)
        self.addCleanup(srv.close)
        srv.wait_listening()
        self.assertEqual(status(srv.proc.pid)["Uid"][1], str(pwd.getpwnam("nobody").pw_uid))
        self.assertIn("event=run-user-fallback user=nobody", srv.log_text())
        srv.mail_dir = os.path.join(work, "var", "mail")
        srv.spool_dir = os.path.join(work, "var", "spool")
        res = netns.client(ns, "smtplib", "--host", "127.0.0.1", "--port", "2525",
                           "--mail", "s@example.org", "--rcpt", "alice@localhost",
                           "--subject", "run")
        self.assertTrue(res.get("sent") and not res.get("refused"), res)
        srv.wait_mail("localhost", "alice")


class SystemdUnit(unittest.TestCase):

    def analyze(self, *args):
        exe = imsdtest.need_tool("systemd-analyze", "systemd")
        return subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=60)

    def test_unit_exposure_is_at_most_2_0(self):
        p = self.analyze("security", "--offline=yes", UNIT)
        m = re.search(r"Overall exposure level for imsd\.service: (\d+\.\d+) (\w+)", p.stdout)
        self.assertIsNotNone(m, p.stdout[-2000:] + p.stderr)
        print("    systemd-analyze security: %s %s" % (m.group(1), m.group(2)), flush=True)
        self.assertLessEqual(float(m.group(1)), 2.0)

    def test_unit_runs_as_imsd_with_the_bind_and_switch_capabilities_only(self):
        with open(UNIT) as f:
            text = f.read()
        for line in ("User=imsd", "AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID",
                     "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID",
                     "ProtectSystem=strict",
                     "ReadWritePaths=/var/spool/imsd /var/mail", "ProtectHome=yes",
                     "PrivateTmp=yes", "NoNewPrivileges=yes", "SystemCallFilter=@system-service",
                     "Type=notify",
                     "ExecReload=/usr/sbin/imsd check -q -c /etc/imsd/imsd.conf",
                     "RestartPreventExitStatus=1",
                     "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"):
            self.assertIn(line + "\n", text)

    def test_unit_verifies(self):
        tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "imsd-unit-%s" % secrets.token_hex(4))
        os.makedirs(tmp)
        self.addCleanup(shutil.rmtree, tmp, True)
        binary = os.environ.get("IMSD") or os.path.join(ROOT, "build", "asan", "imsd")
        with open(UNIT) as f:
            text = f.read().replace("/usr/sbin/imsd", binary)
        text = re.sub(r"^Documentation=.*\n", "", text, flags=re.M)
        path = os.path.join(tmp, "imsd.service")
        with open(path, "w") as f:
            f.write(text)
        p = self.analyze("verify", path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
