"""The maildrop pickup against what any local user can put into spool_dir/maildrop (issue 24,
findings 2, 3, 6 and 7).

The files are written as nobody (setpriv), as a user would without sendmail, with the
server stopped; the server picks them up when it starts. Needs root (to write as nobody).
"""

import os
import re
import stat
import subprocess
import time
import unittest

from imsdtest import ImsdCase, peak_rss, wait_for

NOBODY = 65534


def as_nobody(*cmd, **kw):
    return subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                           "--clear-groups"] + list(cmd), capture_output=True, timeout=60, **kw)


class Pickup(ImsdCase):

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("writing into the maildrop as another user needs root")
        os.chmod(self.tmp, 0o755)

    def server(self, start=True, **conf):
        srv = super().server(start=False, **conf)
        os.makedirs(srv.dir, exist_ok=True)
        os.chmod(srv.dir, 0o755)
        srv.start()
        srv.stop()                           # the spool and its maildrop exist now
        self.drop = os.path.join(srv.spool_dir, "maildrop")
        self.corrupt = os.path.join(srv.spool_dir, "corrupt")
        if start:
            srv.start()
        return srv

    def put(self, name, data, mode=0o644):
        """As nobody: write maildrop/NAME and make it mode (0644: complete)."""
        path = os.path.join(self.drop, name)
        p = as_nobody("python3", "-c", "import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY|"
                      "os.O_CREAT|os.O_EXCL, 0o600); os.write(fd, sys.stdin.buffer.read()); "
                      "os.fchmod(fd, int(sys.argv[2], 8)); os.close(fd)", path, "%o" % mode,
                      input=data)
        self.assertEqual(p.returncode, 0, p.stderr)
        return path

    def test_a_file_with_lf_endings_ending_in_a_bare_lf_is_delivered_at_once_with_the_others(self):
        # the reviewer's file: before, it sent "\n.\r\n", which never ends DATA; the pickup
        # waited 120 s, deferred, and every later scan took this file first again
        srv = self.server(start=False)
        self.put("0-stall", b"IMSD-MAILDROP 1\nS nobody@localhost\nR bob@localhost\n\n"
                 b"Subject: x\n\nhi\n")
        self.put("1-other", b"IMSD-MAILDROP 1\nS nobody@localhost\nR carol@localhost\n\n"
                 b"Subject: someone else's\r\n\r\nqueued behind it\r\n")
        t0 = time.monotonic()
        srv.start()
        bob = srv.wait_mail("localhost", "bob", 1, timeout=15)
        srv.wait_mail("localhost", "carol", 1, timeout=15)
        self.assertLess(time.monotonic() - t0, 15)
        with open(bob[0], "rb") as f:
            self.assertTrue(f.read().endswith(b"\nSubject: x\n\nhi\n"))
        self.assertTrue(wait_for(lambda: os.listdir(self.drop) == []), os.listdir(self.drop))

    def test_a_sparse_file_past_message_size_limit_is_refused_before_it_is_read(self):
        # truncate -s 300M: no disk blocks, but before, the server malloc'ed and read it all
        srv = self.server(start=False, message_size_limit=1048576)
        path = self.put("sparse", b"IMSD-MAILDROP 1\nS nobody@localhost\nR bob@localhost\n\n")
        self.assertEqual(as_nobody("truncate", "-s", "300M", path).returncode, 0)
        srv.start()
        peak = peak_rss(srv.proc.pid, 3.0)      # the pickup's first scan is at start
        self.assertTrue(wait_for(lambda: not os.path.exists(path), timeout=15))
        self.assertLess(peak, 200 * 1024, "the server grew to %d kB for a 300 MB file" % peak)
        log = srv.log_text()
        self.assertRegex(log, r"event=maildrop-corrupt file=sparse uid=%d reason=\"larger than "
                         r"message_size_limit \(1048576\)" % NOBODY)
        self.assertIn("effect=removed-not-copied", log)
        self.assertEqual(os.listdir(self.corrupt), [], "nothing that large is copied")
        self.assertEqual(srv.maildir_files("localhost", "bob"), [])

    def test_file_names_cannot_forge_log_fields(self):
        srv = self.server(start=False)
        self.put("z uid=0 event=pickup", b"IMSD-MAILDROP 1\nS nobody@localhost\n"
                 b"R bob@localhost\n\nSubject: named\r\n\r\nx\r\n")
        self.put("y uid=0 event=pickup", b"garbage\n")
        srv.start()
        srv.wait_mail("localhost", "bob", 1)
        self.assertTrue(wait_for(lambda: "maildrop-corrupt" in srv.log_text()))
        log = srv.log_text()
        self.assertIn('event=pickup file="z uid=0 event=pickup" uid=%d ' % NOBODY, log)
        self.assertIn('event=maildrop-corrupt file="y uid=0 event=pickup" uid=%d ' % NOBODY, log)
        for line in log.splitlines():
            self.assertNotRegex(line, r"file=[zy] ", "a file name split into fields: " + line)

    def test_corrupt_gets_a_copy_so_a_writer_holding_the_file_open_cannot_grow_it(self):
        srv = self.server(start=False, message_size_limit=65536)
        path = os.path.join(self.drop, "held")
        # nobody writes a bad file, marks it complete, keeps it open, and after the pickup
        # has dealt with it writes 8 MiB more through the same descriptor
        writer = subprocess.Popen(
            ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
             "python3", "-c",
             "import os,sys,time\n"
             "fd=os.open(sys.argv[1], os.O_WRONLY|os.O_CREAT|os.O_EXCL, 0o600)\n"
             "os.write(fd, b'not a maildrop file\\n'); os.fchmod(fd, 0o644)\n"
             "print('ready', flush=True); sys.stdin.readline()\n"
             "for i in range(8): os.write(fd, b'x' * 1048576)\n"
             "print('wrote', flush=True)\n", path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.addCleanup(writer.kill)
        self.assertEqual(writer.stdout.readline().strip(), b"ready")
        srv.start()
        self.assertTrue(wait_for(lambda: os.listdir(self.corrupt) == ["held"]),
                        os.listdir(self.corrupt))
        self.assertFalse(os.path.exists(path))
        writer.stdin.write(b"go\n")
        writer.stdin.flush()
        self.assertEqual(writer.stdout.readline().strip(), b"wrote")
        copy = os.path.join(self.corrupt, "held")
        st = os.stat(copy)
        self.assertEqual(st.st_size, len(b"not a maildrop file\n"), "the copy grew")
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (os.geteuid(), 0o600))
        self.assertRegex(srv.log_text(), r"event=maildrop-corrupt file=held uid=%d reason=\"not "
                         r"a maildrop file.* effect=copied-and-removed copy=corrupt/held" % NOBODY)

    def test_old_copies_in_corrupt_expire_and_a_users_file_there_is_replaced_by_a_copy(self):
        srv = self.server(start=False, queue_lifetime="1d")
        old = os.path.join(self.corrupt, "old")
        with open(old, "w") as f:
            f.write("kept long enough\n")
        os.utime(old, (time.time() - 3 * 86400,) * 2)
        # left by an earlier version, which moved the user's own file in
        theirs = os.path.join(self.corrupt, "theirs")
        with open(theirs, "w") as f:
            f.write("a user's file\n")
        os.chown(theirs, NOBODY, NOBODY)
        srv.start()
        self.assertTrue(wait_for(lambda: not os.path.exists(old)))
        self.assertTrue(wait_for(lambda: os.path.exists(theirs + ".copy")))
        self.assertFalse(os.path.exists(theirs))
        self.assertEqual(os.stat(theirs + ".copy").st_uid, os.geteuid())
        log = srv.log_text()
        self.assertRegex(log, r"event=corrupt-expired file=old age=\d+s")
        self.assertRegex(log, r"event=corrupt-copied file=theirs uid=%d" % NOBODY)

    def test_one_user_may_have_at_most_1000_files_waiting(self):
        srv = self.server(start=False)
        # 1005 files as nobody, in one process; garbage, so each is only copied to corrupt/
        p = as_nobody("python3", "-c",
                      "import os,sys\n"
                      "for i in range(1005):\n"
                      "    fd=os.open(os.path.join(sys.argv[1], 'f%04d' % i), "
                      "os.O_WRONLY|os.O_CREAT|os.O_EXCL, 0o644)\n"
                      "    os.write(fd, b'x\\n'); os.close(fd)\n", self.drop)
        self.assertEqual(p.returncode, 0, p.stderr)
        srv.start()
        self.assertTrue(wait_for(lambda: os.listdir(self.drop) == [], timeout=60))
        log = srv.log_text()
        over = re.findall(r"event=maildrop-over-limit file=(\S+) uid=%d files=1000 " % NOBODY, log)
        self.assertEqual(len(over), 5, over)
        self.assertEqual(len(os.listdir(self.corrupt)), 1000)


if __name__ == "__main__":
    unittest.main()
