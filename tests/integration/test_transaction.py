"""A complete SMTP transaction, pipelining, and the delivered Maildir file's shape."""

import os
import smtplib
import time

from imsdtest import (ImsdCase, crlf_to_lf, make_message, read_bytes, split_delivered)


class FullTransaction(ImsdCase):

    def test_smtplib_message_lands_in_maildir_with_return_path_and_received(self):
        srv = self.server()
        msg = make_message("full transaction", body="Line one.\r\nLine two.\r\n\r\nBye.\r\n")
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.ehlo("client.imsd.test")
            refused = s.sendmail("sender@example.org", ["alice@localhost"], msg)
            self.assertEqual(refused, {})
        files = srv.wait_mail("localhost", "alice", 1)
        self.assertEqual(len(files), 1, files)
        content = read_bytes(files[0])
        self.assertNotIn(b"\r", content, "delivered file must have LF line endings")
        rp, received, rest = split_delivered(content)
        self.assertEqual(rp, b"Return-Path: <sender@example.org>")
        self.assertTrue(received.startswith(b"Received:"),
                        "second header must be this server's Received:, file starts %r"
                        % content[:300])
        self.assertIn(b"mx.imsd.test", received, "Received names the configured hostname")
        self.assertEqual(rest, crlf_to_lf(msg), "the message as received follows the trace headers")
        # Maildir layout: tmp/ new/ cur/, nothing left in tmp/
        md = srv.maildir("localhost", "alice")
        for sub in ("tmp", "new", "cur"):
            self.assertTrue(os.path.isdir(os.path.join(md, sub)), sub)
        self.assertEqual(srv.maildir_files("localhost", "alice", "tmp"), [])
        srv.wait_queue_empty()

    def test_two_messages_on_one_connection_are_two_files(self):
        srv = self.server()
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["alice@localhost"], make_message("one"))
            s.sendmail("a@example.org", ["alice@localhost"], make_message("two"))
        files = srv.wait_mail("localhost", "alice", 2)
        subjects = sorted(b"one" if b"Subject: one" in read_bytes(f) else b"two" for f in files)
        self.assertEqual(subjects, [b"one", b"two"])

    def test_one_message_to_two_recipients_reaches_both(self):
        srv = self.server()
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["alice@localhost", "bob@localhost"], make_message("both"))
        for user in ("alice", "bob"):
            f = srv.wait_mail("localhost", user, 1)
            self.assertIn(b"Subject: both", read_bytes(f[0]))

    def test_recipient_address_is_lower_cased_for_the_maildir(self):
        srv = self.server()
        with srv.client() as c:
            self.assertReply(self.transaction(c, "a@example.org", ["ALICE@LocalHost"],
                                              make_message("case")), 250)
        f = srv.wait_mail("localhost", "alice", 1)
        self.assertIn(b"Subject: case", read_bytes(f[0]))

    def test_null_sender_is_accepted_and_delivered_with_empty_return_path(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(make_message("bounce-ish") + b".\r\n")
        self.assertReply(c.reply(), 250)
        f = srv.wait_mail("localhost", "alice", 1)
        self.assertTrue(read_bytes(f[0]).startswith(b"Return-Path: <>\n"), read_bytes(f[0])[:100])

    def test_bare_lf_lines_are_accepted_and_stored_as_lines(self):
        srv = self.server()
        c = self.client(srv)
        data = b"Subject: bare lf\n\nline one\nline two\r\nline three\nline four\r\n"
        r = self.transaction(c, "a@example.org", ["alice@localhost"], data)
        self.assertReply(r, 250)
        f = srv.wait_mail("localhost", "alice", 1)
        _, _, rest = split_delivered(read_bytes(f[0]))
        self.assertEqual(rest, b"Subject: bare lf\n\nline one\nline two\nline three\nline four\n")

    def test_rset_discards_the_transaction(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        r = self.transaction(c, "b@example.org", ["bob@localhost"], make_message("after rset"),
                             ehlo=False)
        self.assertReply(r, 250)
        srv.wait_mail("localhost", "bob", 1)
        time.sleep(1)
        self.assertNoMail(srv, "localhost", "alice")


class Pipelining(ImsdCase):

    def test_mail_rcpt_rcpt_data_in_one_write_get_replies_in_order_and_deliver(self):
        srv = self.server()
        c = self.client(srv)
        ehlo = c.ehlo()
        self.assertReply(ehlo, 250)
        self.assertIn("PIPELINING", [l[4:].split()[0].upper() for l in ehlo.lines[1:]])
        c.send(b"MAIL FROM:<p@example.org>\r\nRCPT TO:<alice@localhost>\r\n"
               b"RCPT TO:<bob@localhost>\r\nDATA\r\n")
        rs = c.replies(4)
        self.assertEqual([r.code for r in rs], [250, 250, 250, 354], rs)
        c.send(make_message("pipelined") + b".\r\n")
        self.assertReply(c.reply(), 250)
        self.assertReply(c.cmd("QUIT"), 221)
        for user in ("alice", "bob"):
            f = srv.wait_mail("localhost", user, 1)
            self.assertIn(b"Subject: pipelined", read_bytes(f[0]))

    def test_pipelined_group_with_a_refused_recipient_keeps_reply_order(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        c.send(b"MAIL FROM:<p@example.org>\r\nRCPT TO:<alice@localhost>\r\n"
               b"RCPT TO:<someone@example.org>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n")
        rs = c.replies(5)
        self.assertEqual([r.code for r in rs], [250, 250, 554, 250, 354], rs)
        c.send(make_message("partly refused") + b".\r\n")
        self.assertReply(c.reply(), 250)
        srv.wait_mail("localhost", "alice", 1)
        srv.wait_mail("localhost", "bob", 1)

    def test_whole_session_in_one_write_after_ehlo(self):
        # A client that does not wait for 354 (not allowed by RFC 2920, but the server must
        # neither lose bytes nor desynchronise): all commands, body and QUIT in one write.
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        c.send(b"MAIL FROM:<p@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n"
               + make_message("one write") + b".\r\nQUIT\r\n")
        rs = c.read_all_replies()
        self.assertEqual([r.code for r in rs], [250, 250, 354, 250, 221], rs)
        f = srv.wait_mail("localhost", "alice", 1)
        self.assertIn(b"Subject: one write", read_bytes(f[0]))

    def test_two_transactions_pipelined_back_to_back(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        c.send(b"MAIL FROM:<p@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n")
        self.assertEqual([r.code for r in c.replies(3)], [250, 250, 354])
        c.send(make_message("first") + b".\r\nRSET\r\nMAIL FROM:<q@example.org>\r\n"
               b"RCPT TO:<bob@localhost>\r\nDATA\r\n")
        self.assertEqual([r.code for r in c.replies(5)], [250, 250, 250, 250, 354])
        c.send(make_message("second") + b".\r\n")
        self.assertReply(c.reply(), 250)
        self.assertIn(b"Subject: first", read_bytes(srv.wait_mail("localhost", "alice")[0]))
        self.assertIn(b"Subject: second", read_bytes(srv.wait_mail("localhost", "bob")[0]))


class Logging(ImsdCase):

    def test_delivery_is_logged_with_key_value_fields_and_debug_logs_smtp_lines(self):
        srv = self.server()
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("logger@example.org", ["alice@localhost"], make_message("logged"))
        srv.wait_mail("localhost", "alice", 1)
        srv.wait_queue_empty()
        time.sleep(0.3)
        log = srv.log_text()
        self.assertRegex(log, r"from=<?logger@example\.org>?")
        self.assertRegex(log, r"to=<?alice@localhost>?")
        self.assertRegex(log, r"status=")
        self.assertRegex(log, r"(?i)MAIL FROM:<logger@example\.org>",
                         "log_level debug logs every SMTP line")
        self.assertRegex(log, r"250 2\.0\.0", "replies are logged too")
