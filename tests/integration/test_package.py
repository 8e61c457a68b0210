"""The Debian package as an administrator gets it: `apt install ./imsd_VERSION_amd64.deb` on a
Debian 12 system booted under real systemd, then the service, the mail and the lifecycle
checked from inside that system.

The system is a cached Debian 12 root (debroot.py: mmdebstrap once, then an overlay per run)
booted with `systemd-nspawn -b --private-network`: its only network is its own loopback, and
nothing is installed on this machine (the package Conflicts with mail-transport-agent and
would replace the test peers' Postfix). Every check runs inside the container through nsenter
into its PID 1: systemctl and `systemd-analyze security` ask the container's systemd, the
serving process is read from the container's /proc, mail goes through the installed
/usr/sbin/sendmail, mail(1) and SMTP on the container's 127.0.0.1:25.

One container serves the whole class, in the order of ORDER below (each test leaves the
service as it found it; the last one purges). The package is the one `make deb` built when
it is newer than every file it is made from; otherwise this test runs `make deb`.
"""

import json
import os
import re
import smtplib
import subprocess
import time
import unittest

import debroot
from imsdtest import ROOT

SOURCES = ("src", "debian", "man", "dist", "Makefile")
CONF = "/etc/imsd/imsd.conf"
SETTLE = 5.0            # the service must stay up this long with no restart
DELIVERY_TIMEOUT = 20.0

# What may differ between the system before installing and after purging: Debian policy
# keeps system users and the users' mail; dpkg, apt, systemd and the journal keep records.
KEPT = re.compile(r"^/(var/mail(/.*)?|etc/(passwd|group|shadow|gshadow|subuid|subgid)-?|"
                  r"var/lib/(dpkg|apt|systemd|ucf|dbus)(/.*)?|var/log(/.*)?|"
                  r"var/cache(/.*)?|tmp(/.*)?|var/tmp(/.*)?|run(/.*)?|etc/ld\.so\.cache|etc/aliases|"
                  r"etc/systemd/system/.*\.wants|var/lib/systemd/deb-systemd-helper-.*)$")


def newest_source():
    t = 0.0
    for name in SOURCES:
        p = os.path.join(ROOT, name)
        if os.path.isfile(p):
            t = max(t, os.path.getmtime(p))
            continue
        for d, _, files in os.walk(p):
            for f in files:
                t = max(t, os.path.getmtime(os.path.join(d, f)))
    return t


def version():
    with open(os.path.join(ROOT, "src", "util", "version.h")) as f:
        return re.search(r'IMSD_VERSION "([^"]+)"', f.read()).group(1)


def build_package():
    deb = os.path.join(ROOT, "build", "imsd_%s_amd64.deb" % version())
    if not os.path.exists(deb) or os.path.getmtime(deb) < newest_source():
        p = subprocess.run(["make", "-C", ROOT, "--no-print-directory", "deb"],
                           capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            raise AssertionError("make deb:\n" + p.stdout[-3000:] + p.stderr[-3000:])
    return deb


def status_fields(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k] = v.split()
    return out


class InstalledUnderSystemd(unittest.TestCase):
    c = None

    @classmethod
    def setUpClass(cls):
        debroot.skip_unless_possible()
        t0 = time.monotonic()
        cls.deb = build_package()       # make deb runs lintian (--fail-on error)
        root = debroot.cached_root()
        t1 = time.monotonic()
        cls.c = debroot.Container(root, files={"/root/imsd.deb": cls.deb})
        cls.addClassCleanup(cls.c.close)
        cls.c.boot()
        c = cls.c
        c.run("useradd", "--create-home", "--shell", "/bin/sh", "alice")
        # exim4-config (pulled by bsd-mailx) made /etc/aliases; a system without one gets
        # the package's
        c.run("rm", "-f", "/etc/aliases")
        cls.before = set(c.run("find", "/", "-xdev").stdout.split("\n"))
        t2 = time.monotonic()
        cls.install = c.run("apt-get", "install", "-y", "-q",
                            "/root/imsd.deb", check=False,
                            timeout=300)
        cls.installed_at = time.monotonic()
        print("    package test: package and root ready in %.1fs, booted in %.1fs, "
              "apt install in %.1fs" % (t1 - t0, t2 - t1, cls.installed_at - t2), flush=True)

    # ------------------------------------------------------------ helpers

    def show(self, *props):
        p = self.c.run("systemctl", "show", "imsd.service", "-p", ",".join(props))
        return dict(line.partition("=")[::2] for line in p.stdout.splitlines())

    def journal(self, n=40):
        return self.c.run("journalctl", "-u", "imsd.service", "-n", str(n), "--no-pager",
                          "-o", "cat", check=False).stdout

    def wait_state(self, want, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            st = self.show("ActiveState", "SubState", "NRestarts", "MainPID", "Result")
            if st["ActiveState"] in want or time.monotonic() > deadline:
                return st
            time.sleep(0.2)

    def assert_running(self, st=None):
        st = st or self.show("ActiveState", "SubState", "NRestarts", "MainPID")
        self.assertEqual((st["ActiveState"], st["SubState"]), ("active", "running"),
                         "%s\n---- journal ----\n%s" % (st, self.journal()))
        return st

    SYSTEM_USERS = ("root", "alice", "nobody")

    def mails(self, user):
        """{Subject: message bytes} of what user's mailbox holds: /var/mail/USER (mbox) for
        a system user, the Maildir /var/mail/imsd/localhost/USER/new for another."""
        if user in self.SYSTEM_USERS:
            p = self.c.run("sh", "-c", '[ ! -e "$1" ] || cat "$1"', "sh", "/var/mail/" + user,
                           text=False)
            parts = re.split(rb"(?:^|\n)From [^\n]*\n", p.stdout)
        else:
            p = self.c.run("sh", "-c", 'for f in "$1"/*; do [ -f "$f" ] && cat "$f" && '
                           'printf "\\n@@END@@\\n"; done; true', "sh",
                           "/var/mail/imsd/localhost/%s/new" % user, text=False)
            parts = p.stdout.split(b"\n@@END@@\n")
        out = {}
        for m in parts:
            s = re.search(rb"(?m)^Subject: (.*)$", m)
            if s:
                out[s.group(1).decode()] = m
        return out

    def wait_mail(self, user, subject):
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while True:
            got = self.mails(user)
            if subject in got:
                return got[subject]
            if time.monotonic() > deadline:
                self.fail("%r did not reach %s's mailbox (it has %s)\n---- mailq ----\n%s"
                          "---- journal ----\n%s" % (subject, user, sorted(got),
                                                     self.c.run("mailq", check=False).stdout,
                                                     self.journal()))
            time.sleep(0.2)

    def start(self, verb="start"):
        """systemctl start (or restart), the start limit's count reset first: these tests
        start the unit more often than its StartLimitBurst allows in 10 s."""
        self.c.run("systemctl", "reset-failed", "imsd", check=False)
        return self.c.run("systemctl", verb, "imsd", check=False, timeout=60)

    def write_conf(self, text):
        self.c.run("sh", "-c", 'cat > "$1"', "sh", CONF, input=text)

    # ------------------------------------------------------------ the tests, in ORDER

    def test_apt_install_exits_0_and_starts_the_service(self):
        self.assertEqual(self.install.returncode, 0, self.install.stdout + self.install.stderr)
        st = self.wait_state(("active", "failed"))
        self.assert_running(st)

    def test_service_stays_active_with_no_restarts(self):
        left = self.installed_at + SETTLE - time.monotonic()
        if left > 0:
            time.sleep(left)
        st = self.show("ActiveState", "SubState", "NRestarts", "MainPID", "Type",
                       "ExecMainStartTimestamp")
        print("    systemd: imsd.service %s (%s), NRestarts=%s, Type=%s, %.0fs after install"
              % (st["ActiveState"], st["SubState"], st["NRestarts"], st["Type"],
                 time.monotonic() - self.installed_at), flush=True)
        self.assert_running(st)
        self.assertEqual(st["NRestarts"], "0", self.journal())

    def test_doctor_reads_the_unit_over_the_system_bus_and_finds_the_spool_as_installed(self):
        p = self.c.run("imsd", "doctor", "-c", CONF, "--json", check=False)
        doc = json.loads(p.stdout)
        lines = {(c["check"], c["subject"]): c for c in doc["checks"]}
        svc = lines.get(("service", "imsd.service"))
        self.assertIsNotNone(svc, p.stdout)
        self.assertEqual(svc["status"], "ok", svc)
        self.assertRegex(svc["found"], r"^loaded, active \(running\) since .*; 0 restarts")
        spool = lines.get(("spool", "/var/spool/imsd"))
        self.assertIsNotNone(spool, p.stdout)
        self.assertEqual(spool["status"], "ok", [c for c in doc["checks"]
                                                 if c["check"] == "spool"])
        self.assertEqual(lines[("mailboxes", "/var/mail/imsd")]["status"], "ok", p.stdout)
        self.assertEqual(lines[("config", CONF)]["status"], "ok", p.stdout)
        print("    imsd doctor in the container: %s; %s" % (svc["found"], spool["found"]),
              flush=True)

    def test_serving_process_runs_as_imsd_without_capabilities(self):
        st = self.assert_running()
        pid = st["MainPID"]
        uid = self.c.run("id", "-u", "imsd").stdout.strip()
        gid = self.c.run("id", "-g", "imsd").stdout.strip()
        tasks = self.c.run("ls", "/proc/%s/task" % pid).stdout.split()
        self.assertTrue(tasks)
        for t in tasks:
            s = status_fields(self.c.run("cat", "/proc/%s/task/%s/status" % (pid, t)).stdout)
            self.assertEqual(s["Uid"], [uid] * 4, t)
            self.assertEqual(s["Gid"], [gid] * 4, t)
            for cap in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
                self.assertEqual(int(s[cap][0], 16), 0, "%s of task %s: %s" % (cap, t, s[cap]))
            self.assertEqual(s["NoNewPrivs"], ["1"])
            self.assertEqual(s["Seccomp"], ["2"], "the system call filter is in force")
        print("    serving process %s: uid %s gid %s, CapEff=CapPrm=CapInh=CapAmb=0, "
              "NoNewPrivs=1, Seccomp=2, %d threads" % (pid, uid, gid, len(tasks)), flush=True)
        self.assertIn("event=privileges", self.journal(200))

    def test_exposure_measured_inside_the_container(self):
        p = self.c.run("systemd-analyze", "security", "--no-pager", "imsd.service", check=False)
        m = re.search(r"Overall exposure level for imsd\.service: (\d+\.\d+) (\w+)", p.stdout)
        self.assertIsNotNone(m, p.stdout[-3000:] + p.stderr)
        print("    systemd-analyze security imsd.service (in the container): %s %s"
              % (m.group(1), m.group(2)), flush=True)
        self.assertLessEqual(float(m.group(1)), 2.0, p.stdout)

    def test_sendmail_and_mail_reach_the_mailboxes(self):
        c = self.c
        c.run("sendmail", "-t", "-i",
              input="To: root\nSubject: cron as root\n\nfrom root's sendmail\n")
        c.run("mail", "-s", "mail from alice", "root", input="hello root\n", user="alice")
        c.run("sendmail", "alice", input="Subject: to alice\n\nfrom root\n")
        m = self.wait_mail("root", "cron as root")
        self.assertIn(b"(imsd, from userid 0)", m)
        uid = c.run("id", "-u", "alice").stdout.strip()
        m = self.wait_mail("root", "mail from alice")
        self.assertIn(b"(imsd, from userid %s)" % uid.encode(), m)
        self.wait_mail("alice", "to alice")
        print("    delivered: root <- 'cron as root' (sendmail -t), 'mail from alice' "
              "(mail(1) as alice); alice <- 'to alice' (sendmail)", flush=True)

    def test_mailboxes_belong_to_their_users_and_mail_reads_them(self):
        c = self.c
        self.wait_mail("alice", "to alice")
        for user in ("root", "alice"):
            st = c.run("stat", "-c", "%U %G %a %F", "/var/mail/" + user).stdout.split()
            self.assertEqual(st[:3], [user, "mail", "600"], "/var/mail/%s: %s" % (user, st))
        # bsd-mailx, as each user, reads its own mailbox: the header summary, then `x`
        # (quit, changing nothing)
        p = c.run("mail", input="x\n", user="alice")
        self.assertIn("to alice", p.stdout)
        p = c.run("mail", input="x\n")
        self.assertIn("cron as root", p.stdout)
        self.assertIn("mail from alice", p.stdout)
        self.assertRegex(self.journal(400), r"event=delivered to=<alice@localhost> .*"
                         r"mailer=mbox status=2\.0\.0")
        # a virtual user (no passwd entry) keeps the Maildir under mail_dir
        c.run("sendmail", "virtual@localhost", input="Subject: to a virtual user\n\nhi\n")
        self.wait_mail("virtual", "to a virtual user")
        st = c.run("stat", "-c", "%U %G %a", "/var/mail/imsd/localhost/virtual").stdout.split()
        self.assertEqual(st, ["imsd", "imsd", "700"])
        print("    mailboxes: /var/mail/root root:mail 600, /var/mail/alice alice:mail 600 "
              "(mail lists them); virtual@localhost -> /var/mail/imsd/localhost/virtual/ "
              "imsd:imsd 700", flush=True)

    def test_local_delivery_process_keeps_only_the_right_to_switch_users(self):
        c = self.c
        main = self.assert_running()["MainPID"]
        kids = c.run("cat", "/proc/%s/task/%s/children" % (main, main)).stdout.split()
        names = {k: c.run("cat", "/proc/%s/comm" % k).stdout.strip() for k in kids}
        lp = [k for k, n in names.items() if n == "imsd-local"]
        self.assertEqual(len(lp), 1, names)
        s = status_fields(c.run("cat", "/proc/%s/status" % lp[0]).stdout)
        uid = c.run("id", "-u", "imsd").stdout.strip()
        self.assertEqual(s["Uid"], [uid] * 4)
        setid = (1 << 6) | (1 << 7)             # CAP_SETGID, CAP_SETUID
        self.assertEqual(int(s["CapEff"][0], 16), setid, s["CapEff"])
        self.assertEqual(int(s["CapPrm"][0], 16), setid, s["CapPrm"])
        for cap in ("CapInh", "CapAmb"):
            self.assertEqual(int(s[cap][0], 16), 0, cap)
        self.assertEqual(s["NoNewPrivs"], ["1"])
        self.assertEqual(s["Seccomp"], ["2"])
        print("    local delivery process %s: uid %s, CapEff=CapPrm=%s (setuid, setgid), "
              "CapAmb=0, NoNewPrivs=1" % (lp[0], uid, s["CapEff"][0]), flush=True)
        self.assertIn("event=local-delivery-process", self.journal(400))

    def test_smtp_on_loopback_port_25(self):
        code = ("import smtplib,sys\n"
                "s=smtplib.SMTP('127.0.0.1',25,timeout=20)\n"
                "s.sendmail('peer@example.org',['alice@localhost'],"
                "'Subject: over smtp\\r\\n\\r\\nhi\\r\\n')\n"
                "s.quit()\n")
        # the container's network namespace only: this machine's python, its loopback
        self.c.run("python3", "-c", code, net_only=True)
        m = self.wait_mail("alice", "over smtp")
        self.assertIn(b"Return-Path: <peer@example.org>", m)

    def test_reload_with_a_good_configuration_takes_effect(self):
        old = self.c.read(CONF).decode()
        self.addCleanup(self.write_conf, old)
        pid = self.assert_running()["MainPID"]
        self.write_conf(old.replace("local_domains = localhost",
                                    "local_domains = localhost, reload.test"))
        p = self.c.run("systemctl", "reload", "imsd", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + self.journal())
        time.sleep(1.5)      # SIGHUP takes effect for new sessions within a second
        code = ("import smtplib\n"
                "s=smtplib.SMTP('127.0.0.1',25,timeout=20)\n"
                "s.ehlo('t'); s.mail('a@example.org'); print(s.rcpt('bob@reload.test')[0])\n")
        out = self.c.run("python3", "-c", code, net_only=True).stdout.strip()
        self.assertEqual(out, "250", self.journal())
        st = self.assert_running()
        self.assertEqual(st["MainPID"], pid, "a reload is not a restart")

    def test_reload_with_a_bad_configuration_fails_and_keeps_serving(self):
        old = self.c.read(CONF).decode()
        self.addCleanup(self.write_conf, old)
        pid = self.assert_running()["MainPID"]
        self.write_conf(old + "\nno_such_key = 1\n")
        p = self.c.run("systemctl", "reload", "imsd", check=False)
        self.assertNotEqual(p.returncode, 0, "systemctl reload accepted a bad configuration")
        j = self.journal()
        self.assertRegex(j, r"imsd\.conf:\d+: no_such_key", j)
        st = self.assert_running()
        self.assertEqual(st["MainPID"], pid)

    def test_a_configuration_error_fails_the_restart_at_once(self):
        old = self.c.read(CONF).decode()
        self.write_conf(old + "\nno_such_key = 1\n")
        t0 = time.monotonic()
        p = self.start("restart")
        st = self.wait_state(("failed",), timeout=20)
        ended = time.monotonic() - t0
        j = self.journal()
        self.write_conf(old)
        self.assertEqual(self.start().returncode, 0)
        self.assertNotEqual(p.returncode, 0, "systemctl restart reported success for a "
                            "service that cannot start")
        self.assertEqual(st["ActiveState"], "failed", st)
        self.assertEqual(st["NRestarts"], "0", "a configuration error is not retried")
        self.assertRegex(j, r"imsd\.conf:\d+: no_such_key")
        print("    configuration error: systemctl restart exited %d; failed after %.1fs, "
              "NRestarts=%s" % (p.returncode, ended, st["NRestarts"]), flush=True)
        self.assert_running(self.wait_state(("active",)))

    def test_a_start_that_keeps_failing_ends_failed_within_seconds(self):
        c = self.c
        c.run("systemctl", "stop", "imsd")
        # someone else holds 127.0.0.1:25: imsd exits 2 (a runtime failure) at every start
        hold = subprocess.Popen(
            ["nsenter", "-t", str(c.leader), "-n", "python3", "-c",
             "import socket,time\ns=socket.socket()\n"
             "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
             "s.bind(('127.0.0.1',25)); s.listen(); print('held', flush=True); time.sleep(90)"],
            stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(hold.stdout.readline().strip(), "held")
            t0 = time.monotonic()
            p = self.start()
            st = self.wait_state(("failed",), timeout=30)
            ended = time.monotonic() - t0
        finally:
            hold.kill()
            hold.wait()
        j = self.journal()
        self.assertEqual(self.start().returncode, 0)
        self.assertNotEqual(p.returncode, 0, "systemctl start reported success")
        self.assertEqual(st["ActiveState"], "failed", "%s\n%s" % (st, j))
        self.assertLess(ended, 15, "a failing start should end `failed` in seconds")
        self.assertIn("Address already in use", j)
        print("    failing start (port taken): systemctl start exited %d; failed after %.1fs, "
              "NRestarts=%s" % (p.returncode, ended, st["NRestarts"]), flush=True)
        self.assert_running(self.wait_state(("active",)))

    def test_stop_then_maildrop_then_restart(self):
        c = self.c
        c.run("systemctl", "stop", "imsd")
        self.assertEqual(self.show("ActiveState")["ActiveState"], "inactive")
        # while stopped, sendmail leaves the message in the maildrop
        c.run("sendmail", "root", input="Subject: while stopped\n\nwaited\n", user="nobody")
        out = c.run("mailq", check=False).stdout
        self.assertRegex(out, r"waiting for pickup[^\n]*\n\S+\s+\d+\s+\S+\s+from nobody "
                         r"\(uid 65534\)", "mailq lists the maildrop")
        self.assertEqual(self.start("restart").returncode, 0)
        self.assert_running(self.wait_state(("active",)))
        m = self.wait_mail("root", "while stopped")
        self.assertIn(b"(imsd, from userid 65534)", m, out)

    def test_root_commands_before_the_first_start_leave_the_spool_to_imsd(self):
        c = self.c
        c.run("systemctl", "stop", "imsd")
        # as on a system where root runs mailq before the service ever started
        c.run("rm", "-rf", "/var/spool/imsd/queue", "/var/spool/imsd/incoming")
        c.run("mailq")
        c.run("imsd", "queue")
        owners = c.run("stat", "-c", "%n %U", "/var/spool/imsd/queue",
                       "/var/spool/imsd/incoming").stdout
        self.assertEqual(owners.split(), ["/var/spool/imsd/queue", "imsd",
                                          "/var/spool/imsd/incoming", "imsd"], owners)
        self.assertEqual(self.start().returncode, 0)
        self.assert_running()
        # a directory given away by hand: the start fails naming owner, mode and the repair
        c.run("systemctl", "stop", "imsd")
        c.run("chown", "root:root", "/var/spool/imsd/queue")
        p = self.start()
        j = self.journal()
        fix = re.search(r"give it back: (chown -R imsd: /var/spool/imsd/queue)", j)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(j, r"/var/spool/imsd/queue: Permission denied: it belongs to "
                         r"root:root, mode 0700, and imsd runs as imsd \(uid \d+\)")
        self.assertIsNotNone(fix, j)
        c.run("sh", "-c", fix.group(1))
        self.assertEqual(self.start().returncode, 0)
        self.assert_running()

    def test_commands_without_c_use_the_installed_configuration(self):
        c = self.c
        for argv in (["imsd", "check"], ["imsd", "queue"], ["imsd", "flush"],
                     ["imsd", "queue", "--json"]):
            p = c.run("sh", "-c", 'cd /root && exec "$@"', "sh", *argv, check=False)
            self.assertEqual(p.returncode, 0, "%s: %s%s" % (argv, p.stdout, p.stderr))
            if argv[1] == "check":
                self.assertIn("configuration /etc/imsd/imsd.conf is valid", p.stdout)
            if argv[1] == "queue" and len(argv) == 2:
                self.assertIn("Mail queue is empty", p.stdout)
        self.assertEqual(c.run("test", "-e", "/root/var", check=False).returncode, 1,
                         "a command without -c made ./var: it ignored /etc/imsd/imsd.conf")

    def test_debian_mta_conventions(self):
        c = self.c
        al = c.read("/etc/aliases").decode()
        for role in ("postmaster", "abuse", "mailer-daemon"):
            self.assertRegex(al, r"(?m)^%s: root$" % role, "seeded by the package")
        p = c.run("newaliases")
        self.assertIn("/etc/aliases: 3 aliases, no errors", p.stdout)
        c.run("sendmail", "-bi")
        c.sh("printf 'postmaster: root\\nbroken line\\n' > /root/aliases.bad")
        p = c.run("sh", "-c", "printf 'alias_maps = /root/aliases.bad\\n' > /root/al.conf; "
                  "newaliases -c /root/al.conf", check=False)
        self.assertEqual(p.returncode, 1)
        c.run("rm", "/root/aliases.bad", "/root/al.conf")
        self.assertIn("newaliases: /root/aliases.bad:2: \"broken\": no ':' after the name",
                      p.stderr)
        c.run("/usr/lib/sendmail", "-t", "-i",
              input="To: root\nSubject: through /usr/lib/sendmail\n\nold path\n")
        self.wait_mail("root", "through /usr/lib/sendmail")

    def test_the_package_carries_its_docs(self):
        c = self.c
        p = c.run("sh", "-c", "ls /usr/share/doc/imsd /usr/share/doc/imsd/examples "
                  "/usr/share/man/man8/imsd.8.gz /usr/share/man/man5/imsd.conf.5.gz "
                  "/usr/share/man/man5/aliases.5.gz")
        for name in ("README.md", "changelog", "copyright", "imsd.conf"):
            self.assertRegex(p.stdout, r"(?m)^%s(\.gz)?$" % re.escape(name), p.stdout)

    def test_purge_leaves_only_what_debian_policy_keeps(self):
        c = self.c
        p = c.run("apt-get", "purge", "-y", "-q", "imsd", check=False, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        after = set(c.run("find", "/", "-xdev").stdout.split("\n"))
        left = sorted(x for x in after - self.before if x and not KEPT.match(x))
        self.assertEqual(left, [], "left behind by apt purge")
        for x in ("/usr/sbin/imsd", "/usr/sbin/sendmail", "/usr/bin/mailq", "/etc/imsd",
                  "/var/spool/imsd", "/lib/systemd/system/imsd.service"):
            self.assertEqual(c.run("test", "-e", x, check=False).returncode, 1, x)
        self.assertEqual(c.run("systemctl", "is-active", "imsd", check=False).stdout.strip(),
                         "inactive")


ORDER = ["test_apt_install_exits_0_and_starts_the_service",
         "test_service_stays_active_with_no_restarts",
         "test_doctor_reads_the_unit_over_the_system_bus_and_finds_the_spool_as_installed",
         "test_serving_process_runs_as_imsd_without_capabilities",
         "test_exposure_measured_inside_the_container",
         "test_sendmail_and_mail_reach_the_mailboxes",
         "test_mailboxes_belong_to_their_users_and_mail_reads_them",
         "test_local_delivery_process_keeps_only_the_right_to_switch_users",
         "test_smtp_on_loopback_port_25",
         "test_reload_with_a_good_configuration_takes_effect",
         "test_reload_with_a_bad_configuration_fails_and_keeps_serving",
         "test_a_configuration_error_fails_the_restart_at_once",
         "test_a_start_that_keeps_failing_ends_failed_within_seconds",
         "test_stop_then_maildrop_then_restart",
         "test_root_commands_before_the_first_start_leave_the_spool_to_imsd",
         "test_commands_without_c_use_the_installed_configuration",
         "test_debian_mta_conventions",
         "test_the_package_carries_its_docs",
         "test_purge_leaves_only_what_debian_policy_keeps"]


def load_tests(loader, tests, pattern):
    """One container for the class, so the tests run in ORDER (install first, purge last)."""
    names = loader.getTestCaseNames(InstalledUnderSystemd)
    assert sorted(names) == sorted(ORDER), "ORDER must list every test"
    return unittest.TestSuite(InstalledUnderSystemd(n) for n in ORDER)


if __name__ == "__main__":
    unittest.main()
