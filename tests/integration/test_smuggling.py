"""SMTP smuggling (CVE-2023-51764 class): only <CR><LF>.<CR><LF> ends DATA.

Each test sends one message whose body contains a fake end-of-data sequence followed by a
complete second transaction for bob. The server must see one message for alice (containing
the "smuggled" text) and nothing for bob, and answer exactly one 250 after DATA.
"""

import time

from imsdtest import ImsdCase, read_bytes

SMUGGLED = b"MAIL FROM:<evil@x>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\nSmuggled\r\n"


class Smuggling(ImsdCase):

    def smuggle(self, fake_end):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<sender@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: smuggling test\r\n\r\nfirst line" + fake_end + SMUGGLED
               + b"\r\n.\r\nQUIT\r\n")
        replies = c.read_all_replies()
        self.assertEqual([r.code for r in replies], [250, 221],
                         "exactly one 250 after DATA, then 221: %r" % replies)
        files = srv.wait_mail("localhost", "alice", 1)
        time.sleep(1.0)
        files = srv.maildir_files("localhost", "alice")
        self.assertEqual(len(files), 1, files)
        content = read_bytes(files[0])
        self.assertIn(b"Smuggled", content)
        self.assertIn(b"evil@x", content)
        self.assertNoMail(srv, "localhost", "bob")
        self.assertNotIn("localhost/bob", srv.all_mailboxes())
        return content

    def test_lf_dot_lf_does_not_end_data(self):
        self.smuggle(b"\n.\n")

    def test_lf_dot_crlf_does_not_end_data(self):
        self.smuggle(b"\n.\r\n")

    def test_cr_dot_crlf_does_not_end_data(self):
        self.smuggle(b"\r.\r\n")

    def test_crlf_dot_cr_does_not_end_data(self):
        self.smuggle(b"\r\n.\r")

    def test_crlf_dot_lf_does_not_end_data(self):
        self.smuggle(b"\r\n.\n")

    def test_cr_dot_cr_does_not_end_data(self):
        self.smuggle(b"\r.\r")

    def test_fake_end_split_across_tcp_segments_does_not_end_data(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<sender@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        for piece in (b"Subject: split\r\n\r\nfirst line\n", b".", b"\n", SMUGGLED[:10],
                      SMUGGLED[10:], b"\r\n", b".", b"\r", b"\n", b"QUIT\r\n"):
            c.send(piece)
            time.sleep(0.05)
        replies = c.read_all_replies()
        self.assertEqual([r.code for r in replies], [250, 221], replies)
        srv.wait_mail("localhost", "alice", 1)
        time.sleep(1.0)
        self.assertEqual(len(srv.maildir_files("localhost", "alice")), 1)
        self.assertNoMail(srv, "localhost", "bob")

    def test_real_end_split_across_tcp_segments_ends_data(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<sender@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        for piece in (b"Subject: split end\r\n\r\nbody\r", b"\n", b".", b"\r", b"\n"):
            c.send(piece)
            time.sleep(0.05)
        self.assertReply(c.reply(), 250)
        f = srv.wait_mail("localhost", "alice", 1)
        self.assertTrue(read_bytes(f[0]).endswith(b"\n\nbody\n"))
