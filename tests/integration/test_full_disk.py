"""A full disk is answered early and loses nothing (issue 8, part 4).

Each test mounts its own small tmpfs (root only: "not root" skips; as root a refused mount
fails) for the
spool or the mailboxes, fills it with a filler file, and checks what a client gets, that no
half-written message remains, that what was acknowledged is delivered, and that imsd takes
mail again as soon as space returns, without a restart.
"""

import os
import subprocess
import time

import imsdtest
from imsdtest import ImsdCase, make_message, run_cli, wait_for
import peers


class TmpfsCase(ImsdCase):

    def mount(self, name, size):
        imsdtest.need_root("mounting a tmpfs")
        path = os.path.join(self.tmp, name)
        os.makedirs(path)
        p = subprocess.run([imsdtest.need_tool("mount", "mount"), "-t", "tmpfs", "-o",
                            "size=%s,mode=0755" % size, "tmpfs", path],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            self.fail("cannot mount a tmpfs (%s) as root: %s" % (size, p.stderr.strip()))
        self.addCleanup(subprocess.run, ["umount", "-l", path], capture_output=True)
        return path

    @staticmethod
    def free(path):
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize

    def fill(self, path, leave):
        """A filler file that leaves about `leave` bytes free; returns its path."""
        f = os.path.join(path, "filler")
        with open(f, "wb") as fh:
            chunk = b"\0" * 65536
            while self.free(path) > leave + len(chunk):
                fh.write(chunk)
                fh.flush()
            rest = self.free(path) - leave
            if rest > 0:
                fh.write(b"\0" * rest)
        return f

    def incoming(self, srv):
        d = os.path.join(srv.spool_dir, "incoming")
        return os.listdir(d) if os.path.isdir(d) else []


class SpoolFull(TmpfsCase):

    def server_on_small_spool(self, **conf):
        spool = self.mount("spool", "4m")
        conf.setdefault("message_size_limit", 262144)      # queue_minfree: 3 x 256 KiB
        srv = self.server(spool_dir=os.path.join(spool, "q"), log_level="info", **conf)
        srv.spool_dir = os.path.join(spool, "q")
        self.assertTrue(os.path.isdir(os.path.join(srv.spool_dir, "incoming")))
        return srv, spool

    def test_mail_below_queue_minfree_gets_452_4_3_1_and_recovers_without_restart(self):
        srv, spool = self.server_on_small_spool()
        filler = self.fill(spool, 500 * 1024)
        time.sleep(1.1)                         # the free-space figure is at most 1 s old
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        r = c.cmd("MAIL FROM:<s@example.org>")
        self.assertReply(r, 452, "4.3.1")
        self.assertIn("Insufficient system storage", r.text)
        self.assertRegex(srv.log_text(), r"event=spool-full free=\d+ queue_minfree=786432")
        os.unlink(filler)
        time.sleep(1.1)
        self.assertReply(c.cmd("MAIL FROM:<s@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(make_message("space is back") + b".\r\n")
        self.assertReply(c.reply(), 250)
        srv.wait_mail("localhost", "alice")

    def test_size_parameter_larger_than_free_space_gets_452_4_3_1(self):
        srv, spool = self.server_on_small_spool(message_size_limit=10485760,
                                                queue_minfree="64k")
        self.fill(spool, 1024 * 1024)
        time.sleep(1.1)
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<s@example.org> SIZE=2000000"), 452, "4.3.1")
        self.assertReply(c.cmd("MAIL FROM:<s@example.org> SIZE=100000"), 250)

    def test_a_burst_inside_one_second_is_refused_at_mail_not_after_its_data(self):
        # issue 24, finding 9: the free space is measured at most once a second; ten 200 KB
        # messages inside one second went through a 1 MiB reserve, and the refusal came
        # only after the data. The bytes admitted since the measurement count now.
        srv, spool = self.server_on_small_spool(message_size_limit=10485760,
                                                queue_minfree="1m")
        self.fill(spool, 1024 * 1024 + 350 * 1024)
        time.sleep(1.1)
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        body = ("x" * 998 + "\r\n") * 200                  # about 200 KB
        results = []
        for i in range(10):
            r = c.cmd("MAIL FROM:<s@example.org>")
            if r.code != 250:
                results.append(("MAIL", r.code))
                c.cmd("RSET")
                continue
            self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
            self.assertReply(c.cmd("DATA"), 354)
            c.send(make_message("burst %d" % i, body=body) + b".\r\n")
            results.append(("DATA", c.reply().code))
        self.assertIn(("MAIL", 452), results, results)
        self.assertNotIn(("DATA", 452), results, "refused only after the data: %r" % results)
        self.assertEqual(results[0], ("DATA", 250))

    def test_disk_filling_during_data_gets_4xx_leaves_nothing_and_loses_nothing(self):
        srv, spool = self.server_on_small_spool(message_size_limit=10485760,
                                                queue_minfree="1k")
        # acknowledged before the disk fills: these must all be delivered
        for i in range(3):
            code, _ = peers.submit(srv, "s@example.org", ["alice@localhost"],
                                   make_message("before %d" % i))
            self.assertEqual(code, 250)
        srv.wait_mail("localhost", "alice", 3)
        filler = self.fill(spool, 300 * 1024)
        time.sleep(1.1)
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<s@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        line = b"y" * 998 + b"\r\n"
        c.send(b"Subject: too big for the disk\r\n\r\n" + line * 1024 + b".\r\n")
        r = c.reply()
        self.assertReply(r, 452, "4.3.1")
        self.assertEqual(self.incoming(srv), [], "a half-written message remains")
        self.assertIn("reason=spool-full", srv.log_text())
        os.unlink(filler)
        time.sleep(1.1)
        r = self.transaction(c, "s@example.org", ["alice@localhost"], make_message("after"),
                             ehlo=False)
        self.assertReply(r, 250)
        files = srv.wait_mail("localhost", "alice", 4)
        subjects = sorted(open(f, "rb").read().split(b"Subject: ")[1].split(b"\n")[0]
                          for f in files)
        self.assertEqual(subjects, [b"after", b"before 0", b"before 1", b"before 2"])


class MailDirFull(TmpfsCase):

    def test_full_mail_dir_defers_leaves_no_partial_file_and_delivers_after_flush(self):
        mail = self.mount("mail", "2m")
        srv = self.server(mail_dir=os.path.join(mail, "boxes"), retry_min="1h",
                          log_level="info")
        srv.mail_dir = os.path.join(mail, "boxes")
        os.makedirs(os.path.join(mail, "boxes"), exist_ok=True)
        filler = self.fill(mail, 0)
        body = b"z" * 998 + b"\r\n"
        code, _ = peers.submit(srv, "s@example.org", ["carol@localhost"],
                               make_message("to a full disk", body=(body * 100).decode()))
        self.assertEqual(code, 250)
        ev = peers.wait_event(srv, "deferred", to="<carol@localhost>")
        self.assertIn("No space left on device", ev[0]["reason"])
        box = srv.maildir("localhost", "carol")
        for sub in ("tmp", "new"):
            d = os.path.join(box, sub)
            self.assertEqual(os.listdir(d) if os.path.isdir(d) else [], [], sub)
        self.assertIn("carol@localhost", run_cli(["queue", "-c", srv.conf_path]).stdout)
        os.unlink(filler)
        run_cli(["flush", "-c", srv.conf_path])
        srv.wait_mail("localhost", "carol")
        srv.wait_queue_empty()
