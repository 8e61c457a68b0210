"""SMTPUTF8 (RFC 6531-6533): UTF-8 addresses in MAIL and RCPT, UTF-8 mailboxes, U-label
domains compared and looked up in A-label form, the UTF8SMTP Received keyword, and relaying
to peers with and without SMTPUTF8 (issue 12, part 1).

Raw sockets for the refusals (the exact bytes matter), smtplib with mail_options=["SMTPUTF8"]
for whole transactions. Nothing leaves 127.0.0.0/8.
"""

import os
import smtplib

import imsdtest
import peers
from imsdtest import ImsdCase, make_message

JORAN = "j\u00f6ran"                     # jöran, NFC
JORAN_NFD = "jo\u0308ran"                # the same name decomposed
BUCHER = "b\u00fccher"                   # bücher
BUCHER_A = "xn--bcher-kva"


def u8cmd(c, line):
    """Send one command line as UTF-8 bytes and return the reply."""
    c.send((line + "\r\n").encode("utf-8"))
    return c.reply()


def submit_utf8(srv, sender, rcpts, msg, host="127.0.0.1"):
    """One SMTPUTF8 transaction with smtplib; returns the reply to the dot as (code, text)."""
    with smtplib.SMTP(host, srv.port, timeout=imsdtest.SOCKET_TIMEOUT) as s:
        s.ehlo("client.imsd.test")
        code, text = s.mail(sender, ["SMTPUTF8"])
        if code != 250:
            raise AssertionError("MAIL FROM:<%s> got %d %r" % (sender, code, text))
        for r in rcpts:
            code, text = s.rcpt(r)
            if code != 250:
                raise AssertionError("RCPT TO:<%s> got %d %r%s" % (r, code, text,
                                                                    srv.log_tail_msg()))
        code, text = s.data(msg)
        return code, text.decode("latin-1")


def utf8_message(subject, sender, to):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <u8-%d@imsd.test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "Gr\u00fc\u00dfe.\r\n" % (sender, to, subject, abs(hash(subject)))).encode("utf-8")


class Inbound(ImsdCase):

    def test_ehlo_advertises_smtputf8(self):
        srv = self.server()
        c = self.client(srv)
        r = c.ehlo()
        self.assertReply(r, 250)
        self.assertIn("250-SMTPUTF8", r.lines)

    def test_utf8_sender_without_the_parameter_gets_553_5_6_7(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        r = u8cmd(c, "MAIL FROM:<%s@example.org>" % JORAN)
        self.assertReply(r, 553, "5.6.7")
        self.assertIn("SMTPUTF8", r.text)
        # the same sender with the parameter is fine
        self.assertReply(u8cmd(c, "MAIL FROM:<%s@example.org> SMTPUTF8" % JORAN), 250)

    def test_utf8_recipient_only_in_an_smtputf8_transaction(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<s@example.org>"), 250)
        r = u8cmd(c, "RCPT TO:<%s@localhost>" % JORAN)
        self.assertReply(r, 553, "5.6.7")
        self.assertIn("SMTPUTF8", r.text)
        self.assertReply(c.cmd("RSET"), 250)
        self.assertReply(c.cmd("MAIL FROM:<s@example.org> SMTPUTF8"), 250)
        self.assertReply(u8cmd(c, "RCPT TO:<%s@localhost>" % JORAN), 250)

    def test_malformed_utf8_and_a_value_on_smtputf8_are_syntax_errors(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        for bad in (b"j\xc3@example.org", b"\xc0\xafx@example.org", b"a\xed\xa0\x80@example.org",
                    b"a\xc2\x85@example.org", b"a\xf4\x90\x80\x80@example.org"):
            c.send(b"MAIL FROM:<" + bad + b"> SMTPUTF8\r\n")
            self.assertReply(c.reply(), 501, "5.1.7", msg=repr(bad))
        self.assertReply(c.cmd("MAIL FROM:<s@example.org> SMTPUTF8=yes"), 501, "5.5.4")
        self.assertReply(c.cmd("MAIL FROM:<s@example.org> SMTPUTF8"), 250)
        c.send(b"RCPT TO:<x\xff@localhost>\r\n")
        self.assertReply(c.reply(), 501, "5.1.3")

    def test_utf8_local_part_is_delivered_to_its_nfc_lower_case_mailbox(self):
        srv = self.server()
        # capitals and the decomposed spelling go to the same mailbox as the NFC name
        for rcpt in ("J\u00d6RAN@localhost", JORAN_NFD + "@localhost"):
            code, text = submit_utf8(srv, "\u7528\u6237@example.org", [rcpt],
                                     utf8_message("to %s" % rcpt, "a@example.org", rcpt))
            self.assertEqual(code, 250, text)
        files = srv.wait_mail("localhost", JORAN, 2)
        self.assertEqual(sorted(os.listdir(os.path.join(srv.mail_dir, "localhost"))), [JORAN])
        with open(files[0], "rb") as f:
            data = f.read()
        head = data.split(b"\n\n", 1)[0].decode("utf-8")
        self.assertIn("Return-Path: <\u7528\u6237@example.org>", head)
        self.assertIn("with UTF8SMTP", head, "RFC 6531 3.7.3 protocol keyword")
        self.assertIn("Gr\u00fc\u00dfe.".encode("utf-8"), data)

    def test_an_ascii_transaction_keeps_the_esmtp_keyword(self):
        srv = self.server()
        code, text = peers.submit(srv, "s@example.org", ["bob@localhost"], make_message("plain"))
        self.assertEqual(code, 250, text)
        with open(srv.wait_mail("localhost", "bob")[0], "rb") as f:
            head = f.read().split(b"\n\n", 1)[0]
        self.assertIn(b"with ESMTP ", head)
        self.assertNotIn(b"UTF8SMTP", head)

    def test_unsafe_utf8_local_parts_name_no_mailbox(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<s@example.org> SMTPUTF8"), 250)
        for rcpt in ('"%s/x"@localhost' % JORAN, '".%s"@localhost' % JORAN):
            r = u8cmd(c, "RCPT TO:<%s>" % rcpt)
            self.assertReply(r, 550, "5.1.3", msg=rcpt)
        self.assertFalse(os.path.isdir(os.path.join(srv.mail_dir, "localhost")))

    def test_u_label_local_domain_matches_either_spelling(self):
        srv = self.server(local_domains="localhost, %s.example" % BUCHER)
        for rcpt in ("anna@B\u00dcCHER.example", "anna@%s.example" % BUCHER_A):
            code, text = submit_utf8(srv, "s@example.org", [rcpt],
                                     utf8_message("idn %s" % rcpt, "s@example.org", rcpt))
            self.assertEqual(code, 250, text)
        # one mailbox, under the domain's A-label (ASCII) name
        srv.wait_mail("%s.example" % BUCHER_A, "anna", 2)
        self.assertEqual(sorted(os.listdir(srv.mail_dir)), ["%s.example" % BUCHER_A])

    def test_invalid_u_label_is_refused_at_rcpt(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<s@example.org> SMTPUTF8"), 250)
        # a label may not start with a combining mark (RFC 5891 4.2.3.2)
        r = u8cmd(c, "RCPT TO:<a@\u0308x.example>")
        self.assertReply(r, 553, "5.1.3")

    def test_recipients_file_may_list_utf8_addresses(self):
        rf = os.path.join(self.tmp, "recipients")
        with open(rf, "w", encoding="utf-8") as f:
            f.write("J\u00d6RAN@localhost\n")
        srv = self.server(recipients_file=rf)
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<s@example.org> SMTPUTF8"), 250)
        self.assertReply(u8cmd(c, "RCPT TO:<%s@localhost>" % JORAN_NFD), 250)
        self.assertReply(u8cmd(c, "RCPT TO:<j\u00f8ran@localhost>"), 550, "5.1.1")


def peer_text(s):
    """The scripted peer decodes lines as latin-1: the UTF-8 text the client sent."""
    return s.encode("latin-1").decode("utf-8")


class Relay(peers.RelayCase):

    DEST = dict(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])

    def test_peer_with_smtputf8_gets_the_parameter_and_utf8_addresses(self):
        dns = self.dns(**self.DEST)
        peer = self.peer("127.0.0.2", ehlo=("PIPELINING", "8BITMIME", "SMTPUTF8",
                                            "ENHANCEDSTATUSCODES"))
        tx = self.sender(dns)
        rcpt = "%s@dest.test" % JORAN
        code, text = submit_utf8(tx, "alice@localhost", [rcpt],
                                 utf8_message("to a utf8 peer", "alice@localhost", rcpt))
        self.assertEqual(code, 250, text)
        t = peer.wait_delivered(1)[0]
        self.assertIn("SMTPUTF8", t.mail_params.upper().split())
        self.assertEqual([peer_text(r) for r in t.rcpts], [rcpt])
        tx.wait_queue_empty()

    def test_peer_without_smtputf8_gets_ascii_recipients_plainly_and_utf8_ones_bounce(self):
        dns = self.dns(**self.DEST)
        peer = self.peer("127.0.0.2")         # PIPELINING 8BITMIME ENHANCEDSTATUSCODES
        tx = self.sender(dns)
        urcpt = "%s@dest.test" % JORAN
        code, text = submit_utf8(tx, "alice@localhost", ["bob@dest.test", urcpt],
                                 utf8_message("mixed", "alice@localhost", "bob@dest.test"))
        self.assertEqual(code, 250, text)
        t = peer.wait_delivered(1)[0]
        self.assertEqual(t.rcpts, ["bob@dest.test"])
        self.assertNotIn("SMTPUTF8", t.mail_params.upper())
        self.assertIn("Gr\u00fc\u00dfe.".encode("utf-8"), t.raw, "the body goes as it is")
        # the UTF-8 recipient was never named to the peer, and bounced with 5.6.7
        self.assertFalse([c for _, c in peer.commands if c.upper().startswith("RCPT")
                          and "dest.test" in c and "bob" not in c])
        dsn = self.wait_dsns(tx)[0]
        _text, groups, _per_msg, _headers = peers.dsn_parts(dsn)
        self.assertEqual(len(groups), 1, groups)
        g = groups[0]
        self.assertEqual(g.get("final-recipient"), "utf-8; j\\x{F6}ran@dest.test")
        self.assertEqual(g.get("status"), "5.6.7")
        self.assertIn("SMTPUTF8", g.get("diagnostic-code", ""))
        tx.wait_queue_empty()

    def test_utf8_sender_to_a_peer_without_smtputf8_bounces_every_recipient(self):
        dns = self.dns(**self.DEST)
        peer = self.peer("127.0.0.2")
        tx = self.sender(dns)
        sender = "%s@localhost" % JORAN
        code, text = submit_utf8(tx, sender, ["bob@dest.test"],
                                 utf8_message("utf8 sender", sender, "bob@dest.test"))
        self.assertEqual(code, 250, text)
        # the bounce comes back to the UTF-8 sender's own (NFC lower-case) mailbox
        dsn = self.wait_dsns(tx, user=JORAN)[0]
        with open(tx.maildir_files("localhost", JORAN)[0], "rb") as f:
            raw = f.read()
        self.assertIn(("To: <%s>" % sender).encode("utf-8"), raw, "the report is addressed "
                      "to the sender, not mangled")
        _text, groups, _m, _h = peers.dsn_parts(dsn)
        self.assertEqual(groups[0].get("final-recipient"), "rfc822; bob@dest.test")
        self.assertEqual(groups[0].get("status"), "5.6.7")
        self.assertEqual(peer.delivered, [])
        self.assertFalse([c for _, c in peer.commands if c.upper().startswith("MAIL")])
        tx.wait_queue_empty()

    def test_idn_domain_is_looked_up_in_a_label_form(self):
        dns = self.dns(mx=[("%s.test" % BUCHER_A, "mx1.%s.test" % BUCHER_A, 10)],
                       hosts=[("mx1.%s.test" % BUCHER_A, "127.0.0.2")])
        peer = self.peer("127.0.0.2", ehlo=("PIPELINING", "8BITMIME", "SMTPUTF8"))
        tx = self.sender(dns)
        rcpt = "anna@%s.test" % BUCHER
        code, text = submit_utf8(tx, "alice@localhost", [rcpt],
                                 utf8_message("idn lookup", "alice@localhost", rcpt))
        self.assertEqual(code, 250, text)
        t = peer.wait_delivered(1)[0]
        # the envelope keeps the domain as the client wrote it
        self.assertEqual([peer_text(r) for r in t.rcpts], [rcpt])
        tx.wait_queue_empty()
        self.assertIn(("MX", "%s.test" % BUCHER_A), dns.queries())
        self.assertFalse([q for q in dns.queries() if not q[1].isascii()], dns.queries())
