"""Command replies: EHLO extensions, enhanced status codes, errors, sequence, syntax, limits."""

import re

from imsdtest import ImsdCase, make_message, read_bytes


def ehlo_keywords(reply):
    """{KEYWORD: [params]} from an EHLO reply (lines after the first)."""
    out = {}
    for line in reply.lines[1:]:
        words = line[4:].split()
        if words:
            out[words[0].upper()] = words[1:]
    return out


class Greeting(ImsdCase):

    def test_banner_and_ehlo_name_the_configured_hostname(self):
        srv = self.server()
        c = self.client(srv)
        self.assertRegex(c.greeting.lines[0], r"^220[ -]mx\.imsd\.test\b")
        r = c.ehlo()
        self.assertReply(r, 250)
        self.assertRegex(r.lines[0], r"^250[ -]mx\.imsd\.test\b")

    def test_ehlo_advertises_pipelining_size_8bitmime_enhancedstatuscodes(self):
        srv = self.server()
        c = self.client(srv)
        kw = ehlo_keywords(c.ehlo())
        for ext in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE"):
            self.assertIn(ext, kw, kw)
        self.assertEqual(kw["SIZE"], ["10485760"], "SIZE advertises the default limit")

    def test_size_advertises_the_configured_limit(self):
        srv = self.server(message_size_limit=2048)
        c = self.client(srv)
        self.assertEqual(ehlo_keywords(c.ehlo())["SIZE"], ["2048"])

    def test_no_starttls_without_certificate(self):
        srv = self.server()
        c = self.client(srv)
        self.assertNotIn("STARTTLS", ehlo_keywords(c.ehlo()))

    def test_helo_is_accepted_and_allows_a_transaction(self):
        srv = self.server()
        c = self.client(srv)
        r = c.cmd("HELO client.imsd.test")
        self.assertReply(r, 250)
        self.assertEqual(len(r.lines), 1, "HELO reply is one line")
        r = self.transaction(c, "a@example.org", ["alice@localhost"], make_message("helo"),
                             ehlo=False)
        self.assertReply(r, 250)
        srv.wait_mail("localhost", "alice", 1)

    def test_second_ehlo_resets_the_transaction(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 503, "5.5.1")

    def test_quit_gets_221_and_close(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.cmd("QUIT"), 221)
        self.assertTrue(c.closed_by_server(5))


class SimpleCommands(ImsdCase):

    def test_vrfy_gets_252(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        r = c.cmd("VRFY alice")
        self.assertReply(r, 252)
        self.assertEnhanced(r)

    def test_noop_help_rset(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        self.assertReply(c.cmd("HELP"), (211, 214))
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")

    def test_commands_are_case_insensitive(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.cmd("ehlo client.imsd.test"), 250)
        self.assertReply(c.cmd("mail from:<a@example.org>"), 250)
        self.assertReply(c.cmd("rcpt to:<alice@localhost>"), 250)
        self.assertReply(c.cmd("data"), 354)
        c.send(make_message("lower case") + b".\r\n")
        self.assertReply(c.reply(), 250)
        srv.wait_mail("localhost", "alice", 1)

    def test_unknown_command_gets_500_5_5_1_and_session_goes_on(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.cmd("FOOBAR baz"), 500, "5.5.1")
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("NOOP"), 250)


class BadSequence(ImsdCase):

    def test_rcpt_before_mail_gets_503_5_5_1(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 503, "5.5.1")

    def test_data_before_rcpt_gets_503_5_5_1(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        # RFC 5321 3.3: with no RCPT, 503 (bad sequence) or 554 (no valid recipients)
        self.assertReply(c.cmd("DATA"), (503, 554), "5.5.1")

    def test_nested_mail_gets_503_5_5_1(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        self.assertReply(c.cmd("MAIL FROM:<b@example.org>"), 503, "5.5.1")

    def test_data_with_only_refused_recipients_gets_503_or_554_and_no_354(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<x@example.org>"), 554)
        r = c.cmd("DATA")
        self.assertIn(r.code, (503, 554), r)
        self.assertReply(c.cmd("NOOP"), 250)


class Syntax(ImsdCase):

    def setUp(self):
        super().setUp()
        self.srv = self.server()
        self.c = self.client(self.srv)
        self.assertReply(self.c.ehlo(), 250)

    def test_mail_without_argument_is_501(self):
        self.assertReply(self.c.cmd("MAIL"), 501)
        self.assertEnhanced(self.c.cmd("MAIL"))

    def test_mail_with_bad_sender_address_is_501_5_1_7(self):
        for bad in ("<a@@example.org>", "<a b@example.org>", "<@>", "<a@example.org",
                    "<a@exa mple.org>", "<a@.example.org>"):
            with self.subTest(bad=bad):
                self.assertReply(self.c.cmd("MAIL FROM:" + bad), 501, "5.1.7")
        self.assertReply(self.c.cmd("MAIL FROM:<good@example.org>"), 250)

    def test_rcpt_with_bad_address_is_501_5_1_3(self):
        self.assertReply(self.c.cmd("MAIL FROM:<a@example.org>"), 250)
        for bad in ("<b@@localhost>", "<b c@localhost>", "<>", "<b@localhost"):
            with self.subTest(bad=bad):
                self.assertReply(self.c.cmd("RCPT TO:" + bad), 501, "5.1.3")
        self.assertReply(self.c.cmd("RCPT TO:<alice@localhost>"), 250)

    def test_unknown_mail_parameter_is_rejected_with_5_5_4(self):
        r = self.c.cmd("MAIL FROM:<a@example.org> FROBNICATE=yes")
        self.assertIn(r.code, (501, 555), r)
        self.assertEqual(r.enhanced, "5.5.4")

    def test_bad_size_and_body_parameters_are_rejected(self):
        for params in (" SIZE=abc", " SIZE=", " BODY=9BITMIME"):
            with self.subTest(params=params):
                r = self.c.cmd("MAIL FROM:<a@example.org>" + params)
                self.assertIn(r.code, (501, 555), r)
                self.assertEnhanced(r)

    def test_rfc5321_address_forms_are_accepted(self):
        for sender in ('<"john smith"@example.org>', "<user@[192.0.2.1]>",
                       "<user@[IPv6:2001:db8::1]>", "<@relay.example.org:user@example.org>",
                       "<first.last+tag@sub.example.org>"):
            with self.subTest(sender=sender):
                self.assertReply(self.c.cmd("MAIL FROM:" + sender), 250)
                self.assertReply(self.c.cmd("RSET"), 250)

    def test_source_route_in_rcpt_is_ignored_and_mail_delivered(self):
        c = self.c
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<@relay.example.org,@other.example.org:alice@localhost>"),
                         250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(make_message("source route") + b".\r\n")
        self.assertReply(c.reply(), 250)
        f = self.srv.wait_mail("localhost", "alice", 1)
        self.assertIn(b"Subject: source route", read_bytes(f[0]))


class CommandLineLength(ImsdCase):

    def test_command_line_over_512_octets_gets_500_5_5_2_and_session_still_usable(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        long_line = "MAIL FROM:<" + "a" * 600 + "@example.org>"
        self.assertReply(c.cmd(long_line), 500, "5.5.2")
        self.assertReply(c.cmd("NOOP"), 250)
        r = self.transaction(c, "a@example.org", ["alice@localhost"], make_message("after long"),
                             ehlo=False)
        self.assertReply(r, 250)
        srv.wait_mail("localhost", "alice", 1)

    def test_very_long_command_line_is_rejected_without_desync(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        # 100 kB without a line end, then more commands: exactly one 500 for the long line
        c.send("NOOP " + "x" * 100000 + "\r\nNOOP\r\n")
        r = c.reply()
        self.assertReply(r, 500, "5.5.2")
        self.assertReply(c.reply(), 250)

    def test_command_line_of_exactly_512_octets_is_accepted(self):
        srv = self.server()
        c = self.client(srv)
        line = "NOOP " + "x" * (510 - 5)          # 510 + CRLF = 512 octets
        self.assertEqual(len(line) + 2, 512)
        self.assertReply(c.cmd(line), 250)
        self.assertReply(c.cmd(line + "y"), 500, "5.5.2")


class EnhancedStatusCodes(ImsdCase):

    def test_every_reply_except_greeting_ehlo_and_354_carries_an_enhanced_code(self):
        srv = self.server(message_size_limit=4096, recipient_limit=2)
        c = self.client(srv)
        seen = []

        def check(reply, what):
            seen.append((what, reply))
            if reply.code // 100 == 3:
                return       # RFC 3463 has no class 3: 354 carries no enhanced code
            self.assertEnhanced(reply, what)

        self.assertReply(c.ehlo(), 250)
        for line in ("NOOP", "HELP", "VRFY alice", "EXPN staff", "RSET", "FOO",
                     "RCPT TO:<alice@localhost>", "DATA", "MAIL", "MAIL FROM:<a@@b>",
                     "MAIL FROM:<a@example.org> SIZE=999999", "NOOP " + "x" * 600):
            check(c.cmd(line), line)
        check(c.cmd("MAIL FROM:<a@example.org>"), "MAIL")
        check(c.cmd("MAIL FROM:<b@example.org>"), "nested MAIL")
        for line in ("RCPT TO:<x@example.org>", "RCPT TO:<b@@c>", "RCPT TO:<alice@localhost>",
                     "RCPT TO:<bob@localhost>", "RCPT TO:<carol@localhost>"):
            check(c.cmd(line), line)
        check(c.cmd("DATA"), "DATA")
        c.send(make_message("enhanced") + b".\r\n")
        check(c.reply(), "end of data")
        check(c.cmd("MAIL FROM:<a@example.org>"), "MAIL 2")
        check(c.cmd("RCPT TO:<alice@localhost>"), "RCPT 2")
        check(c.cmd("DATA"), "DATA 2")
        c.send(b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 100 + b".\r\n")
        check(c.reply(), "oversize end of data")
        check(c.cmd("QUIT"), "QUIT")
        codes = [r.code for _, r in seen]
        self.assertIn(552, codes)
        self.assertIn(452, codes)
        srv.wait_mail("localhost", "alice", 1)

    def test_reply_lines_are_well_formed(self):
        srv = self.server()
        c = self.client(srv)
        for line in c.greeting.lines + c.ehlo().lines:
            self.assertRegex(line, r"^\d{3}[ -]")
            self.assertLessEqual(len(line) + 2, 512)
            self.assertFalse(re.search(r"[\x00-\x1f\x7f]", line), repr(line))
