"""DATA content: dot-stuffing, 8-bit bodies, size limits, line-length limits."""

import smtplib
import time

from imsdtest import ImsdCase, crlf_to_lf, make_message, read_bytes, split_delivered


class DotStuffing(ImsdCase):

    def test_leading_dot_is_removed_once(self):
        srv = self.server()
        c = self.client(srv)
        data = (b"Subject: dots\r\n\r\n..line starting with a dot\r\n..\r\n...\r\n"
                b".x\r\n. space\r\nend\r\n")
        self.assertReply(self.transaction(c, "a@example.org", ["alice@localhost"], data), 250)
        f = srv.wait_mail("localhost", "alice", 1)
        _, _, rest = split_delivered(read_bytes(f[0]))
        self.assertEqual(rest, b"Subject: dots\n\n.line starting with a dot\n.\n..\nx\n space\nend\n")

    def test_smtplib_dot_lines_round_trip(self):
        srv = self.server()
        body = ".hidden\r\n..two\r\n.\r\nmiddle\r\n.\r\n"
        msg = make_message("round trip", body=body)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.sendmail("a@example.org", ["alice@localhost"], msg)   # smtplib dot-stuffs
        f = srv.wait_mail("localhost", "alice", 1)
        _, _, rest = split_delivered(read_bytes(f[0]))
        self.assertEqual(rest, crlf_to_lf(msg))

    def test_dot_in_the_middle_of_a_line_is_kept(self):
        srv = self.server()
        c = self.client(srv)
        data = b"Subject: mid\r\n\r\na.b\r\nx .\r\n"
        self.assertReply(self.transaction(c, "a@example.org", ["alice@localhost"], data), 250)
        f = srv.wait_mail("localhost", "alice", 1)
        self.assertTrue(read_bytes(f[0]).endswith(b"\n\na.b\nx .\n"))


class EightBit(ImsdCase):

    def test_8bit_body_is_identical_in_maildir_apart_from_crlf(self):
        srv = self.server()
        c = self.client(srv)
        high = bytes(range(0x80, 0x100))
        body = b"".join(high[i:i + 32] + b"\r\n" for i in range(0, len(high), 32))
        body += "Grüße, ĉu vi? 日本語 — \U0001F600\r\n".encode("utf-8")
        data = (b"Subject: 8bit\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
                b"\r\n" + body)
        r = self.transaction(c, "a@example.org", ["alice@localhost"], data,
                             mail_params=" BODY=8BITMIME")
        self.assertReply(r, 250)
        f = srv.wait_mail("localhost", "alice", 1)
        _, _, rest = split_delivered(read_bytes(f[0]))
        self.assertEqual(rest, crlf_to_lf(data))

    def test_body_7bit_parameter_is_accepted(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org> BODY=7BIT"), 250)


class SizeLimit(ImsdCase):

    def test_mail_size_parameter_over_limit_gets_552_5_3_4(self):
        srv = self.server(message_size_limit=2048)
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org> SIZE=4096"), 552, "5.3.4")
        self.assertReply(c.cmd("MAIL FROM:<a@example.org> SIZE=99999999999999999999999"), 552,
                         "5.3.4")
        self.assertReply(c.cmd("MAIL FROM:<a@example.org> SIZE=1000"), 250)

    def test_actual_size_over_limit_gets_552_5_3_4_after_final_dot_and_nothing_delivered(self):
        srv = self.server(message_size_limit=2048)
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        # SIZE= lies (small): the actual size must be enforced anyway
        self.assertReply(c.cmd("MAIL FROM:<a@example.org> SIZE=100"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: too big\r\n\r\n" + (b"z" * 78 + b"\r\n") * 60)   # ~4.8 kB
        time.sleep(0.2)
        c.send(b".\r\n")
        self.assertReply(c.reply(), 552, "5.3.4")
        # the session stays in sync and usable
        self.assertReply(c.cmd("NOOP"), 250)
        r = self.transaction(c, "a@example.org", ["bob@localhost"], make_message("small"),
                             ehlo=False)
        self.assertReply(r, 250)
        srv.wait_mail("localhost", "bob", 1)
        time.sleep(1)
        self.assertNoMail(srv, "localhost", "alice")
        srv.wait_queue_empty()

    def test_message_just_under_the_limit_is_accepted(self):
        srv = self.server(message_size_limit=2048)
        c = self.client(srv)
        data = b"Subject: fits\r\n\r\n" + (b"f" * 60 + b"\r\n") * 20   # ~1.3 kB
        self.assertReply(self.transaction(c, "a@example.org", ["alice@localhost"], data), 250)
        srv.wait_mail("localhost", "alice", 1)

    def test_huge_body_is_drained_without_the_server_growing_or_desynchronising(self):
        srv = self.server(message_size_limit=2048)
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        chunk = (b"q" * 98 + b"\r\n") * 1000      # 100 kB
        for _ in range(30):                        # 3 MB
            c.send(chunk)
        c.send(b".\r\n")
        self.assertReply(c.reply(), 552, "5.3.4")
        self.assertReply(c.cmd("NOOP"), 250)
        time.sleep(1)
        self.assertNoMail(srv, "localhost", "alice")


class TextLineLength(ImsdCase):

    def test_text_line_over_1000_octets_is_rejected_after_final_dot_and_nothing_delivered(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: long line\r\n\r\nshort\r\n" + b"L" * 1200 + b"\r\nafter\r\n.\r\n")
        r = c.reply()
        self.assertReply(r, "5xx")
        self.assertEnhanced(r)
        self.assertReply(c.cmd("NOOP"), 250, msg="session in sync after the rejected message")
        r = self.transaction(c, "a@example.org", ["bob@localhost"], make_message("ok"), ehlo=False)
        self.assertReply(r, 250)
        srv.wait_mail("localhost", "bob", 1)
        time.sleep(1)
        self.assertNoMail(srv, "localhost", "alice")

    def test_text_line_of_exactly_1000_octets_is_accepted(self):
        srv = self.server()
        c = self.client(srv)
        line = b"M" * 998
        data = b"Subject: 1000\r\n\r\n" + line + b"\r\n"
        self.assertReply(self.transaction(c, "a@example.org", ["alice@localhost"], data), 250)
        f = srv.wait_mail("localhost", "alice", 1)
        self.assertTrue(read_bytes(f[0]).endswith(b"\n" + line + b"\n"))
