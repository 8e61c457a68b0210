"""Local delivery never writes through a symbolic link or into someone else's directory.

imsd may run as root (run_user = root) and always writes sender-chosen bytes: if a link under
mail_dir were followed, whoever can create one there could make imsd write a file anywhere.
Each test builds one variant (domain directory, mailbox, tmp/, new/, cur/ as a link; a mailbox
owned by another user), sends mail through it, and proves that nothing was written outside
mail_dir, that the message stayed queued (deferred, with the reason in the log and in
`imsd queue`), and that it is delivered once the mailbox is made right and the queue flushed.
"""

import os
import shutil

from imsdtest import ImsdCase, make_message, run_cli, wait_for
import peers


class SymlinkedMailboxes(ImsdCase):

    def setUp(self):
        super().setUp()
        self.outside = os.path.join(self.tmp, "outside")
        os.makedirs(self.outside)
        self.srv = self.server(local_domains="localhost, linked.test", retry_min="1s",
                               retry_max="2s", log_level="info")
        os.makedirs(self.srv.mail_dir, exist_ok=True)

    def send(self, rcpt, subject):
        code, _ = peers.submit(self.srv, "s@example.org", [rcpt], make_message(subject))
        self.assertEqual(code, 250)

    def outside_files(self):
        out = []
        for d, _, files in os.walk(self.outside):
            out += [os.path.join(d, f) for f in files]
        return out

    def assertRefused(self, rcpt, why_part):
        ev = peers.wait_event(self.srv, "deferred", to="<%s>" % rcpt)
        self.assertIn(why_part, ev[0]["reason"])
        self.assertEqual(self.outside_files(), [], "a file was written through the link")
        q = run_cli(["queue", "-c", self.srv.conf_path])
        self.assertIn(rcpt, q.stdout)
        self.assertIn(why_part, q.stdout)

    def flush_and_expect(self, domain, user):
        run_cli(["flush", "-c", self.srv.conf_path])
        self.srv.wait_mail(domain, user)
        self.srv.wait_queue_empty()

    def link(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(self.outside, path)

    def test_domain_directory_link_is_refused(self):
        d = os.path.join(self.srv.mail_dir, "linked.test")
        self.link(d)
        self.send("bob@linked.test", "domain link")
        self.assertRefused("bob@linked.test", "is a symbolic link")
        os.unlink(d)
        self.flush_and_expect("linked.test", "bob")

    def test_mailbox_directory_link_is_refused(self):
        d = self.srv.maildir("localhost", "dave")
        self.link(d)
        self.send("dave@localhost", "mailbox link")
        self.assertRefused("dave@localhost", "localhost/dave is a symbolic link")
        os.unlink(d)
        self.flush_and_expect("localhost", "dave")

    def test_new_tmp_and_cur_links_are_refused(self):
        for user, sub in (("carl", "new"), ("erin", "tmp"), ("fred", "cur")):
            box = self.srv.maildir("localhost", user)
            for s in ("tmp", "new", "cur"):
                if s != sub:
                    os.makedirs(os.path.join(box, s), exist_ok=True)
            self.link(os.path.join(box, sub))
            self.send("%s@localhost" % user, "%s link" % sub)
            self.assertRefused("%s@localhost" % user, "%s/%s is a symbolic link" % (user, sub))

    def test_mailbox_of_another_owner_is_refused(self):
        box = self.srv.maildir("localhost", "gina")
        os.makedirs(box)
        os.chown(box, 65534, 65534)
        self.send("gina@localhost", "foreign owner")
        ev = peers.wait_event(self.srv, "deferred", to="<gina@localhost>")
        self.assertIn("belongs to uid 65534", ev[0]["reason"])
        self.assertFalse(os.path.exists(os.path.join(box, "new")))
        os.chown(box, os.geteuid(), os.getegid())
        self.flush_and_expect("localhost", "gina")

    def test_mailbox_files_and_directories_are_private(self):
        self.send("hank@localhost", "modes")
        f = self.srv.wait_mail("localhost", "hank")[0]
        self.assertEqual(os.stat(f).st_mode & 0o777, 0o600)
        for d in ("", "tmp", "new", "cur"):
            p = os.path.join(self.srv.maildir("localhost", "hank"), d)
            self.assertEqual(os.stat(p).st_mode & 0o777, 0o700, p)
