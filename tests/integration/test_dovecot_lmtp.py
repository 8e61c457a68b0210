"""LMTP delivery to a real Dovecot, and recipients checked against it (issue 19, parts 1-3).

imsd receives over SMTP and delivers example.org's mail over LMTP (RFC 2033) to a private
Dovecot (dovecot.py); localhost stays imsd's own Maildir (transport_map), which is where the
senders' bounces arrive. The mail is read back over IMAP with imaplib. Each test keeps what
Dovecot logged for it when IMSD_DOVECOT_LOGS names a directory.
"""

import os
import re
import signal
import time

import dovecot
import imsdtest
from imsdtest import ImsdCase, read_bytes, wait_for

SIEVE = """require ["fileinto"];
if header :contains "subject" "[list]" {
  fileinto "Lists";
  stop;
}
"""
USERS = {"alice@example.org": "alice pw", "bob@example.org": "bob pw",
         "full@example.org": "full pw", "carol@example.org": "carol pw"}
SENDER = "postmaster@localhost"


def message(subject, body=b"Hello from imsd.\r\n", to="alice@example.org"):
    return (b"From: Postmaster <postmaster@localhost>\r\nTo: <%s>\r\nSubject: %s\r\n"
            b"Message-ID: <%s@imsd.test>\r\n\r\n" % (to.encode(), subject.encode(),
                                                     subject.replace(" ", ".").encode())
            + body)


class LmtpCase(ImsdCase):
    transport = "unix"          # or "inet"
    quota_tempfail = False

    def setUp(self):
        super().setUp()
        self.dv = dovecot.Dovecot(self.tmp, users=USERS, quota={"full@example.org": "1K"},
                                  sieve={"alice@example.org": SIEVE},
                                  quota_tempfail=self.quota_tempfail)
        self.addCleanup(self.dv.close)
        self.addCleanup(lambda: dovecot.keep_log(self.dv, self._testMethodName))
        self.dv.start()
        self.dv.mark_log()

    def lmtp_target(self):
        if self.transport == "inet":
            return "lmtp:inet:127.0.0.1:%d" % self.dv.lmtp_port
        return "lmtp:unix:" + self.dv.lmtp_socket

    def mta(self, **conf):
        tmap = os.path.join(self.tmp, "transport")
        with open(tmap, "w") as f:
            f.write("# localhost stays in imsd's own Maildirs\nlocalhost maildir\n")
        base = dict(local_domains="localhost example.org", mailbox_transport=self.lmtp_target(),
                    transport_map=tmap, retry_min="1s", retry_max="2s")
        base.update(conf)
        return self.server(**base)

    def send(self, srv, rcpts, data, sender=SENDER):
        with srv.client() as c:
            r = self.transaction(c, sender, rcpts, data)
            c.cmd("QUIT")
        self.assertReply(r, 250, "2.0.0")
        return r

    def imap(self, user, mailbox="INBOX", count=1, timeout=imsdtest.DELIVERY_TIMEOUT):
        got = self.dv.wait_messages(user, USERS[user], count, mailbox, timeout=timeout)
        self.assertEqual(len(got), count, "%s/%s over IMAP: %d messages\n%s" % (
            user, mailbox, len(got), self.dv.log_tail()))
        return got


class LmtpDelivery(LmtpCase):

    def test_mail_received_over_smtp_is_read_back_over_imap_byte_for_byte(self):
        srv = self.mta()
        data = message("byte for byte", b"line one\r\n..dot-stuffed line\r\n" +
                       b"x" * 990 + b"\r\n\r\nlast\r\n")
        self.send(srv, ["alice@example.org"], data)
        got = self.imap("alice@example.org")[0]
        # Dovecot prepends its own Return-Path, Delivered-To and Received; after them comes
        # exactly what imsd sent: its Received header, then the message as the client gave it
        # (the client's dot-stuffing undone once, and done again by imsd for LMTP)
        cut = got.index(b"Received: from client.imsd.test")
        head, rest = got[:cut], got[cut:]
        self.assertRegex(head, rb"^Return-Path: <postmaster@localhost>\r\nDelivered-To: "
                               rb"alice@example\.org\r\nReceived: from mx\.imsd\.test\r\n"
                               rb"\tby \S+ with LMTP\r\n(\t.*\r\n)*\tfor <alice@example\.org>; "
                               rb"[^\r\n]+\r\n$")
        self.assertRegex(rest, rb"^Received: from client\.imsd\.test \(\[127\.0\.0\.1\]\)\r\n"
                               rb"\tby mx\.imsd\.test \(imsd\) with ESMTP id ")
        sent = data.replace(b"\r\n..dot", b"\r\n.dot")
        self.assertTrue(rest.endswith(sent), "the message after imsd's Received differs")
        self.assertEqual(rest[rest.index(b"\r\nFrom: ") + 2:], sent)
        self.assertTrue(self.dv.log_lines("alice@example.org", "stored mail into mailbox "
                                          "'INBOX'"), self.dv.log_since())  # Sieve's keep
        self.assertNoMail(srv, "example.org", "alice")   # not in imsd's own Maildir

    def test_sieve_files_a_list_message_into_its_folder(self):
        srv = self.mta()
        self.send(srv, ["alice@example.org"], message("[list] weekly news"))
        self.imap("alice@example.org", "Lists")
        self.assertEqual(self.dv.imap_fetch_all("alice@example.org", USERS["alice@example.org"]),
                         [], "not in INBOX")
        self.assertTrue(self.dv.log_lines("sieve", "fileinto action: stored mail into "
                                          "mailbox 'Lists'"), self.dv.log_since())

    def test_a_full_mailbox_bounces_that_recipient_and_the_others_are_delivered(self):
        srv = self.mta()
        self.send(srv, ["bob@example.org", "full@example.org", "carol@example.org"],
                  message("quota", (b"q" * 70 + b"\r\n") * 60, to="bob@example.org"))
        self.imap("bob@example.org")
        self.imap("carol@example.org")
        # the over-quota recipient alone is bounced, with Dovecot's 552 5.2.2
        bounces = srv.wait_mail("localhost", "postmaster", 1)
        dsn = read_bytes(bounces[0])
        self.assertIn(b"Final-Recipient: rfc822; full@example.org", dsn)
        self.assertIn(b"Status: 5.2.2", dsn)
        self.assertIn(b"552 5.2.2", dsn)
        self.assertNotIn(b"bob@example.org\r\nAction: failed", dsn.replace(b"\n", b"\r\n"))
        self.assertNotIn(b"Final-Recipient: rfc822; bob@example.org", dsn)
        self.assertTrue(self.dv.log_lines("full@example.org", "Quota exceeded"),
                        self.dv.log_since())
        srv.wait_queue_empty()

    def test_dovecot_stopped_defers_and_the_mail_is_delivered_when_it_returns(self):
        srv = self.mta()
        self.dv.stop()
        self.send(srv, ["alice@example.org", "bob@example.org"], message("while away"))
        self.assertTrue(wait_for(lambda: re.search(r"event=deferred .*alice@example\.org",
                                                   srv.log_text()), timeout=15),
                        srv.log_tail_msg())
        self.assertTrue(srv.queue_files(), "still queued")
        self.dv.start()
        self.imap("alice@example.org", timeout=30)
        self.imap("bob@example.org", timeout=30)
        srv.wait_queue_empty(timeout=30)

    def test_connections_to_dovecot_are_reused_for_several_messages(self):
        srv = self.mta()
        for i in range(5):
            # one after another, each delivered before the next arrives: the idle
            # connection (kept 5 s) carries the next one
            self.send(srv, ["bob@example.org"], message("reuse %d" % i, to="bob@example.org"))
            self.imap("bob@example.org", count=i + 1)
        connects = self.dv.log_lines("lmtp(", "Connect from local")
        self.assertLess(len(connects), 3, "\n".join(connects))

    def test_kill_9_during_lmtp_delivery_loses_nothing(self):
        srv = self.mta()
        n = 40
        with srv.client() as c:
            self.assertReply(c.ehlo(), 250)
            for i in range(n):
                self.assertReply(c.cmd("MAIL FROM:<%s>" % SENDER), 250)
                self.assertReply(c.cmd("RCPT TO:<carol@example.org>"), 250)
                self.assertReply(c.cmd("DATA"), 354)
                c.send(message("kill %02d" % i, to="carol@example.org") + b".\r\n")
                self.assertReply(c.reply(), 250)
        # kill it while it delivers, twice
        for _ in range(2):
            wait_for(lambda: len(self.dv.log_lines("carol@example.org", "saved mail")) > 0,
                     timeout=10, interval=0.01)
            srv.kill9()
            srv.start()
        want = [b"kill %02d" % i for i in range(n)]
        got = []

        def all_there():
            got[:] = self.dv.imap_fetch_all("carol@example.org", USERS["carol@example.org"])
            return sorted(set(re.search(rb"Subject: (kill \d+)", m).group(1)
                              for m in got)) == want

        self.assertTrue(wait_for(all_there, timeout=60, interval=0.5),
                        "%d messages, not every one of the %d\n%s" % (len(got), n,
                                                                     self.dv.log_tail()))
        # at-least-once: a kill may repeat the deliveries in flight (at most QMGR_LMTP_DEST_MAX,
        # 10 connections to one server), never lose one
        self.assertLessEqual(len(got), n + 2 * 10)
        srv.wait_queue_empty(timeout=30)


class LmtpOverTcp(LmtpCase):
    transport = "inet"

    def test_delivery_over_lmtp_inet_to_dovecots_loopback_port(self):
        srv = self.mta()
        self.send(srv, ["bob@example.org"], message("over tcp", to="bob@example.org"))
        self.imap("bob@example.org")
        self.assertTrue(self.dv.log_lines("lmtp(", "Connect from 127.0.0.1"),
                        self.dv.log_since())


class LmtpQuotaTempfail(LmtpCase):
    """quota_full_tempfail = yes: Dovecot answers a full mailbox 452 4.2.2 after the text."""
    quota_tempfail = True

    def test_a_full_mailbox_with_452_defers_that_recipient_alone(self):
        srv = self.mta()
        self.send(srv, ["bob@example.org", "full@example.org"],
                  message("quota tempfail", (b"q" * 70 + b"\r\n") * 60, to="bob@example.org"))
        self.imap("bob@example.org")
        self.assertTrue(wait_for(lambda: re.search(r"event=deferred .*full@example\.org.*452",
                                                   srv.log_text()), timeout=15),
                        srv.log_tail_msg())
        self.assertNotRegex(srv.log_text(), r"event=deferred .*bob@example\.org")
        self.assertTrue(srv.queue_files(), "full@example.org stays queued")
        self.assertNoMail(srv, "localhost", "postmaster")      # no bounce (yet)


class LmtpDialogue(LmtpCase):

    def test_lhlo_then_the_extensions_dovecot_offers_pipelining_and_chunking(self):
        srv = self.mta()
        self.send(srv, ["bob@example.org", "carol@example.org"],
                  message("dialogue", to="bob@example.org"))
        self.imap("bob@example.org")
        self.imap("carol@example.org")
        log = srv.log_text()
        out = re.findall(r"relay=\S+ smtp=out line=(\"[^\"]*\"|\S+)", log)
        self.assertTrue(out, srv.log_tail_msg())
        self.assertTrue(out[0].strip('"').startswith("LHLO mx.imsd.test"), out[:3])
        self.assertFalse(any(x.strip('"').startswith("EHLO") for x in out), out)
        self.assertFalse(any(x.strip('"') == "STARTTLS" for x in out), out)
        # Dovecot offers CHUNKING: the text goes as BDAT ... LAST, not DATA
        self.assertTrue(any(re.match(r'"?BDAT \d+ LAST', x) for x in out), out)
        self.assertFalse(any(x.strip('"') == "DATA" for x in out), out)
        # one reply per recipient after the text, each in the log of its delivery
        self.assertRegex(log, r"event=delivered to=<bob@example\.org> .*mailer=lmtp .*status=2\.0\.0")
        self.assertRegex(log, r"event=delivered to=<carol@example\.org> .*mailer=lmtp")


class RecipientCheck(LmtpCase):
    """recipient_check = transport: Dovecot is asked at RCPT (an LMTP RCPT probe)."""

    def test_an_unknown_user_is_refused_at_rcpt_with_550_5_1_1(self):
        srv = self.mta(recipient_check="transport")
        with srv.client() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<%s>" % SENDER), 250)
            r = c.cmd("RCPT TO:<nobody@example.org>")
            self.assertReply(r, 550, "5.1.1")
            self.assertIn("nobody@example.org", r.text)
            self.assertReply(c.cmd("RCPT TO:<alice@example.org>"), 250)
            self.assertReply(c.cmd("RCPT TO:<anyone@localhost>"), 250, msg="a Maildir domain")
            # asked again within the cache's minute: the same answer, Dovecot not asked
            self.assertReply(c.cmd("RCPT TO:<nobody@example.org>"), 550, "5.1.1")
            self.assertReply(c.cmd("DATA"), 354)
            c.send(message("checked") + b".\r\n")
            self.assertReply(c.reply(), 250)
            c.cmd("QUIT")
        self.imap("alice@example.org")
        said = self.dv.log_lines("lmtp(nobody@example.org)", "Userdb lookup failed")
        self.assertEqual(len(said), 1, self.dv.log_since())
        self.assertRegex(srv.log_text(), r"event=reject stage=rcpt to=<nobody@example\.org> "
                                         r"reason=transport")
        self.assertNoMail(srv, "localhost", "postmaster")     # nothing bounced
        # the probe never left a message behind
        self.assertEqual(len(self.dv.imap_fetch_all("alice@example.org",
                                                    USERS["alice@example.org"])), 1)

    def test_rcpt_gets_451_4_3_0_when_dovecot_cannot_be_asked(self):
        srv = self.mta(recipient_check="transport")
        self.dv.stop()
        with srv.client() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<%s>" % SENDER), 250)
            self.assertReply(c.cmd("RCPT TO:<alice@example.org>"), 451, "4.3.0")
            self.assertReply(c.cmd("RCPT TO:<anyone@localhost>"), 250)
            c.cmd("QUIT")
        self.assertRegex(srv.log_text(), r"event=recipient-check-failed to=<alice@example\.org>")
        self.assertNoMail(srv, "localhost", "postmaster")


class ExplainRecipient(LmtpCase):
    def test_explain_recipient_names_the_lmtp_target(self):
        srv = self.mta()
        r = imsdtest.run_cli(["explain-recipient", "-c", srv.conf_path, "alice@example.org"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("lmtp", r.stdout)
        self.assertIn(self.dv.lmtp_socket, r.stdout)
        r = imsdtest.run_cli(["explain-recipient", "-c", srv.conf_path, "x@localhost"])
        self.assertIn("(Maildir)", r.stdout)
        self.assertNotIn("LMTP", r.stdout)
