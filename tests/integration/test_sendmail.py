"""The sendmail(1) interface: `imsd sendmail`, and the binary called as sendmail or mailq.

Real programs send through it: bsd-mailx (`mail -s`), `git send-email --sendmail-cmd`,
Python's subprocess feeding `sendmail -t`, and a cron-like `sendmail -t -i` with a
header-only message. The server learns the submitting uid from the kernel (SO_PEERCRED, the
maildrop file's owner) and writes it into the Received header; with the server down the
message waits in the maildrop and is delivered when the server starts.

The programs reach our binary through a wrapper (`exec imsd sendmail -C CONF "$@"`) or a
symbolic link named sendmail/mailq, never through /usr/sbin/sendmail (that is Postfix's on
the test machine). Tests that submit as another user need root (setpriv to nobody).
"""

import os
import re
import stat
import subprocess
import textwrap
import time
import unittest

import imsdtest
from imsdtest import ImsdCase, imsd_binary, read_bytes, wait_for, SANITIZER_RE

NOBODY = 65534
EX_USAGE, EX_DATAERR, EX_NOUSER, EX_NOPERM, EX_CONFIG = 64, 65, 67, 77, 78


class SendmailCase(ImsdCase):

    def setUp(self):
        super().setUp()
        # another user must reach the configuration and the spool's socket
        os.chmod(self.tmp, 0o755)
        self.bindir = os.path.join(self.tmp, "bin")
        os.makedirs(self.bindir)
        for name in ("sendmail", "mailq"):
            os.symlink(os.path.abspath(imsd_binary()), os.path.join(self.bindir, name))

    def server(self, start=True, **conf):
        srv = super().server(start=False, **conf)
        os.makedirs(srv.dir, exist_ok=True)
        os.chmod(srv.dir, 0o755)
        if start:
            srv.start()
        return srv

    def wrapper(self, srv):
        """A sendmail command for programs that take one path: our binary with -C."""
        path = os.path.join(self.bindir, "sendmail-%d" % len(os.listdir(self.bindir)))
        with open(path, "w") as f:
            f.write('#!/bin/sh\nexec %s sendmail -C %s "$@"\n'
                    % (os.path.abspath(imsd_binary()), srv.conf_path))
        os.chmod(path, 0o755)
        return path

    def sendmail(self, srv, args, data, user=None, argv0="sendmail", expect=0):
        """Run sendmail (called by its link name) with -C; returns the CompletedProcess."""
        cmd = [os.path.join(self.bindir, argv0), "-C", srv.conf_path] + list(args)
        if user is not None:
            imsdtest.need_root("submitting as another user")
            cmd = [imsdtest.need_tool("setpriv", "util-linux"), "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
        p = subprocess.run(cmd, input=data, capture_output=True, timeout=60)
        err = p.stderr.decode("utf-8", "replace")
        self.assertIsNone(SANITIZER_RE.search(err), err)
        if expect is not None:
            self.assertEqual(p.returncode, expect, "sendmail %s: %s" % (args, err))
        return p

    def delivered(self, srv, user, count=1, domain="localhost"):
        return [read_bytes(f) for f in srv.wait_mail(domain, user, count)]


class Programs(SendmailCase):
    """Real programs that send mail through sendmail."""

    def test_bsd_mailx_mail_s(self):
        imsdtest.need_tool("bsd-mailx", "bsd-mailx")
        srv = self.server()
        rc = os.path.join(self.tmp, "mailrc")
        with open(rc, "w") as f:
            f.write("set sendmail=%s\n" % self.wrapper(srv))
        p = subprocess.run(["bsd-mailx", "-s", "mailx subject", "alice@localhost"],
                           input=b"Hello from mailx.\n", capture_output=True, timeout=60,
                           env=dict(os.environ, MAILRC=rc, HOME=self.tmp))
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.delivered(srv, "alice")[0]
        self.assertIn(b"Subject: mailx subject", m)
        self.assertIn(b"\nHello from mailx.\n", m)
        self.assertIn(b"(imsd, from userid 0)", m)

    def test_git_send_email(self):
        imsdtest.need_tool("git", "git")
        if subprocess.run(["git", "send-email", "-h"], capture_output=True,
                          timeout=60).returncode == 128:
            self.fail("git send-email is not installed (Debian package git-email, which "
                      "`scripts/deps.sh test` installs)")
        # git wants a domain with a dot in it
        srv = self.server(local_domains="localhost lists.imsd.test")
        repo = os.path.join(self.tmp, "repo")
        env = dict(os.environ, HOME=self.tmp, GIT_AUTHOR_NAME="Dev", GIT_AUTHOR_EMAIL="dev@localhost",
                   GIT_COMMITTER_NAME="Dev", GIT_COMMITTER_EMAIL="dev@localhost")
        run = lambda *a: subprocess.run(a, cwd=repo, env=env, capture_output=True, timeout=60,
                                        check=True)
        os.makedirs(repo)
        run("git", "init", "-q")
        with open(os.path.join(repo, "f.c"), "w") as f:
            f.write("int x;\n")
        run("git", "add", "f.c")
        run("git", "commit", "-q", "-m", "Add f.c\n\nA line.\n.\nA lone dot above.")
        run("git", "format-patch", "-1", "-o", "out")
        patch = os.path.join(repo, "out", os.listdir(os.path.join(repo, "out"))[0])
        p = subprocess.run(["git", "send-email", "--sendmail-cmd=" + self.wrapper(srv),
                            "--to=maintainer@lists.imsd.test",
                            "--from=Dev <dev@lists.imsd.test>",
                            "--confirm=never", "--suppress-cc=all", "--no-validate", patch],
                           cwd=repo, env=env, capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode() + p.stdout.decode())
        self.assertIn(b"Result: OK", p.stdout + p.stderr)
        m = self.delivered(srv, "maintainer", domain="lists.imsd.test")[0]
        self.assertIn(b"Subject: [PATCH] Add f.c", m)
        self.assertIn(b"\n.\nA lone dot above.", m)   # git passes -i: the dot is text
        self.assertIn(b"+int x;", m)

    def test_python_subprocess_sendmail_t_removes_bcc(self):
        srv = self.server()
        msg = textwrap.dedent("""\
            From: App <app@localhost>
            To: Alice <alice@localhost>, bob
            Cc: carol@localhost
            Bcc: dave@localhost
            Subject: from python

            Body line.
            """).encode()
        self.sendmail(srv, ["-t", "-oi"], msg)
        for user in ("alice", "bob", "carol", "dave"):
            m = self.delivered(srv, user)[0]
            self.assertIn(b"Subject: from python", m)
            self.assertNotIn(b"Bcc", m, user)
            self.assertNotIn(b"dave@", m.split(b"\n\n", 1)[0].split(b"\n", 4)[4], user)
        # one copy each: bob (unqualified) is bob@localhost, not a second recipient
        self.assertEqual(len(srv.maildir_files("localhost", "bob")), 1)

    def test_cron_header_only_message(self):
        """cron runs `sendmail -FCronDaemon -i -B8BITMIME -oem root` or `-t -i` with headers."""
        srv = self.server()
        self.sendmail(srv, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "-t"],
                      b"To: root\nSubject: Cron <root@host> /usr/bin/true\n"
                      b"Content-Type: text/plain; charset=UTF-8")
        m = self.delivered(srv, "root")[0]
        self.assertIn(b"Subject: Cron <root@host> /usr/bin/true\n", m)
        self.assertIn(b"From: CronDaemon <root@localhost>\n", m)
        self.assertIn(b"\nDate: ", m)
        self.assertIn(b"\nMessage-ID: <", m)


class Behaviour(SendmailCase):

    def test_uid_in_received_comes_from_the_kernel(self):
        srv = self.server()
        self.sendmail(srv, ["alice@localhost"], b"Subject: as nobody\n\nx\n", user=NOBODY)
        m = self.delivered(srv, "alice")[0]
        rec = m.split(b"\n", 1)[1]
        self.assertTrue(rec.startswith(b"Received: by mx.imsd.test (imsd, from userid %d)"
                                       % NOBODY), rec[:200])
        self.assertIn(b"Return-Path: <nobody@localhost>", m)
        self.assertRegex(srv.log_text(), r"event=received from=<nobody@localhost> nrcpt=1 "
                         r"size=\d+ tls=no uid=%d" % NOBODY)
        # a client cannot claim another uid: -bs as nobody still shows nobody
        p = self.sendmail(srv, ["-bs"], b"EHLO x\r\nMAIL FROM:<x@localhost>\r\n"
                          b"RCPT TO:<bob@localhost>\r\nDATA\r\nReceived: by x (imsd, from "
                          b"userid 0)\r\nSubject: bs\r\n\r\nhi\r\n.\r\nQUIT\r\n", user=NOBODY)
        self.assertIn(b"250 2.0.0", p.stdout)
        self.assertTrue(p.stdout.startswith(b"220 "), p.stdout)
        m = self.delivered(srv, "bob")[0]
        self.assertIn(b"Received: by mx.imsd.test (imsd, from userid %d)" % NOBODY,
                      m.split(b"\n")[1])

    def test_server_down_message_waits_in_the_maildrop(self):
        srv = self.server()
        srv.stop()
        p = self.sendmail(srv, ["-v", "alice@localhost"], b"Subject: while down\n\nkept\n",
                          user=NOBODY)
        self.assertIn(b"maildrop", p.stderr)
        drop = os.path.join(srv.spool_dir, "maildrop")
        st = os.stat(drop)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o1733)
        files = os.listdir(drop)
        self.assertEqual(len(files), 1)
        fst = os.stat(os.path.join(drop, files[0]))
        self.assertEqual((fst.st_uid, stat.S_IMODE(fst.st_mode)), (NOBODY, 0o644))
        self.assertEqual(srv.maildir_files("localhost", "alice"), [])
        srv.start()
        m = self.delivered(srv, "alice")[0]
        self.assertIn(b"Subject: while down", m)
        self.assertIn(b"(imsd, from userid %d)" % NOBODY, m)
        self.assertTrue(wait_for(lambda: not os.listdir(drop)), os.listdir(drop))
        self.assertRegex(srv.log_text(), r"event=pickup file=\S+ uid=%d nrcpt=1" % NOBODY)

    def test_maildrop_is_validated(self):
        """What a local user can put into the maildrop: garbage, a symbolic link, a file not
        yet complete, a hard link. Only complete, well-formed regular files are taken."""
        imsdtest.need_root("validating the maildrop as the spool's owner")
        srv = self.server()
        srv.stop()
        drop = os.path.join(srv.spool_dir, "maildrop")
        secret = os.path.join(self.tmp, "secret")
        with open(secret, "w") as f:
            f.write("IMSD-MAILDROP 1\nS a@localhost\nR eve@localhost\n\nSubject: stolen\r\n")
        os.chmod(secret, 0o644)
        os.symlink(secret, os.path.join(drop, "link"))
        with open(os.path.join(drop, "garbage"), "w") as f:
            f.write("not a maildrop file\n")
        os.chmod(os.path.join(drop, "garbage"), 0o644)
        with open(os.path.join(drop, "partial"), "w") as f:
            f.write("IMSD-MAILDROP 1\nS a@localhost\nR eve@localhost\n\nSubject: partial\r\n")
        os.chmod(os.path.join(drop, "partial"), 0o600)   # its writer has not finished
        os.link(secret, os.path.join(drop, "hardlink"))
        srv.start()
        corrupt = os.path.join(srv.spool_dir, "corrupt")
        # garbage is kept as a copy; a link and a file with two links are only removed
        # (nothing is read through them: the content may be someone else's)
        self.assertTrue(wait_for(lambda: os.listdir(drop) == ["partial"]), os.listdir(drop))
        self.assertEqual(os.listdir(corrupt), ["garbage"])
        self.assertEqual(srv.maildir_files("localhost", "eve"), [])
        log = srv.log_text()
        self.assertRegex(log, r"event=maildrop-corrupt file=garbage uid=0 reason=\"not a "
                         r"maildrop.* effect=copied-and-removed")
        self.assertRegex(log, r"event=maildrop-corrupt file=link uid=0 reason=\"a symbolic "
                         r"link\" effect=removed-not-copied")
        self.assertRegex(log, r"event=maildrop-corrupt file=hardlink uid=0 reason=\"has more "
                         r"than one link\" effect=removed-not-copied")
        self.assertTrue(os.path.exists(secret), "the link's target is untouched")

    def test_size_limit_and_dots_and_bare_lf(self):
        srv = self.server(message_size_limit=2000)
        p = self.sendmail(srv, ["alice@localhost"], b"Subject: big\n\n" + b"x" * 70 + b"\n" * 1
                          + (b"y" * 70 + b"\n") * 40, expect=EX_DATAERR)
        self.assertIn(b"552 5.3.4", p.stderr)
        # without -i a lone dot ends the message; ".." and ".x" lines stay as they are
        self.sendmail(srv, ["bob@localhost"], b"Subject: dots\n\n.x\n..y\n.\nnot sent\n")
        m = self.delivered(srv, "bob")[0]
        self.assertTrue(m.endswith(b"\n.x\n..y\n"), m)
        self.sendmail(srv, ["-i", "carol@localhost"], b"Subject: dots\r\n\r\na\r\n.\r\nb\n")
        m = self.delivered(srv, "carol")[0]
        self.assertTrue(m.endswith(b"\na\n.\nb\n"), m)
        self.assertEqual(srv.maildir_files("localhost", "alice"), [])

    def test_more_recipients_than_recipient_limit(self):
        """The server says 452 4.5.3 past recipient_limit: sendmail sends the message to
        those it took and starts a new transaction for the rest, live and from the maildrop."""
        srv = self.server(recipient_limit=2)
        users = ["u%d" % i for i in range(5)]
        self.sendmail(srv, ["%s@localhost" % u for u in users], b"Subject: many\n\nx\n")
        for u in users:
            self.delivered(srv, u)
        srv.stop()
        self.sendmail(srv, ["%s@localhost" % u for u in users], b"Subject: many\n\ny\n")
        srv.start()
        for u in users:
            self.delivered(srv, u, count=2)
        self.assertEqual(len(re.findall(r"event=received ", srv.log_text())), 6)

    def test_bv_mailq_flush_and_exit_codes(self):
        srv = self.server(recipients_file=None)
        rf = srv.write_file("recipients", "alice@localhost\n")
        srv.stop()
        srv.set_conf(recipients_file=rf)
        srv.start()
        p = self.sendmail(srv, ["-bv", "alice@localhost", "nobody-here@localhost"], b"",
                          expect=EX_NOUSER)
        self.assertRegex(p.stdout, rb"alice@localhost\.\.\. deliverable: 250")
        self.assertRegex(p.stdout, rb"nobody-here@localhost\.\.\. undeliverable: 550")
        p = self.sendmail(srv, [], b"", argv0="mailq")
        self.assertIn(b"Mail queue is empty", p.stdout)
        p = self.sendmail(srv, [], b"", argv0="mailq", user=NOBODY, expect=EX_NOPERM)
        self.assertIn(b"readable only by root", p.stderr)
        p = self.sendmail(srv, ["-bp"], b"")
        self.assertIn(b"Mail queue is empty", p.stdout)
        p = self.sendmail(srv, ["-q"], b"")
        self.assertIn(b"scheduled for delivery", p.stdout)
        # a refused recipient: the others get it, the exit status says so
        p = self.sendmail(srv, ["alice@localhost", "nobody-here@localhost"], b"Subject: s\n\nx\n",
                          expect=EX_NOUSER)
        self.assertIn(b"<nobody-here@localhost>: refused: 550", p.stderr)
        self.delivered(srv, "alice")
        # usage and configuration errors
        p = self.sendmail(srv, ["-Z"], b"", expect=EX_USAGE)
        self.assertIn(b"-Z: unknown option", p.stderr)
        p = self.sendmail(srv, [], b"Subject: nobody\n\nx\n", expect=EX_USAGE)
        self.assertIn(b"no recipients", p.stderr)
        p = self.sendmail(srv, ["-t"], b"To: Just A Name\n\nx\n", expect=EX_DATAERR)
        self.assertIn(b"To: header", p.stderr)
        bad = srv.write_file("bad.conf", "no_such_key = 1\n")
        p = subprocess.run([imsd_binary(), "sendmail", "-C", bad, "a@localhost"], input=b"x",
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertIn(b"no_such_key", p.stderr)

    def test_imsd_sendmail_subcommand_and_options_ignored(self):
        srv = self.server()
        p = subprocess.run([imsd_binary(), "sendmail", "-c", srv.conf_path, "-oi", "-odi", "-U",
                            "-N", "never", "-f", "<app@example.org>", "-F", "The App",
                            "--", "alice@localhost"], input=b"Subject: sub\n\nx\n",
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        m = self.delivered(srv, "alice")[0]
        self.assertTrue(m.startswith(b"Return-Path: <app@example.org>\n"), m[:100])
        self.assertIn(b"From: The App <app@example.org>\n", m)


if __name__ == "__main__":
    unittest.main()
