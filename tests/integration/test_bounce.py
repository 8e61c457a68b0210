"""Bounces and delay notices: RFC 3464 reports to the envelope sender, per-recipient results,
delay_warning, queue_lifetime, and the null sender that is never bounced.

The remote side is a scripted SMTP peer on 127.0.0.3:self.p2 (dest.test's MX, via dnsmasq);
the sender alice@localhost is local to the sending imsd, so reports land in
MAIL_DIR/localhost/alice/new.
"""

import re
import time
import unittest

import peers
from imsdtest import SETTLE, make_message, wait_for

def mail_froms(peer):
    """The reverse paths of every MAIL command the peer received, in order."""
    return [re.match(r"(?i)MAIL FROM:\s*<([^>]*)>", c).group(1) for _n, c in peer.commands
            if c.upper().startswith("MAIL")]


MX = dict(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.3")])


class Bounces(peers.RelayCase):

    def test_5xx_at_rcpt_bounces_at_once_with_an_rfc3464_report(self):
        dns = self.dns(**MX)
        peer = self.peer("127.0.0.3", rcpt=lambda a, n: "550 5.1.1 <%s>: no such user here" % a)
        tx = self.sender(dns)
        t0 = time.monotonic()
        qid = self.send(tx, "bob@dest.test", "will bounce",
                        extra_headers="X-Original-Marker: 42\r\n")
        dsn = self.wait_dsns(tx, 1)[0]
        self.assertLess(time.monotonic() - t0, 5, "a 5xx is not retried: the bounce is immediate")
        # envelope and headers
        self.assertEqual(dsn["Return-Path"], "<>")
        self.assertIn("alice@localhost", dsn["To"] or "")
        self.assertIn("MAILER-DAEMON@mx.imsd.test", dsn["From"])
        self.assertTrue(dsn["Subject"], "the report has a Subject")
        self.assertTrue(dsn["Message-ID"] or dsn["Message-Id"], "the report has a Message-ID")
        self.assertTrue(dsn["Date"], "the report has a Date")
        self.assertEqual(dsn.get_content_type(), "multipart/report")
        self.assertEqual(dsn.get_param("report-type"), "delivery-status")
        # the parts
        text, groups, per_msg, headers = peers.dsn_parts(dsn)
        self.assertEqual(text.get_content_type(), "text/plain", "first part: human readable")
        self.assertIn("bob@dest.test", text.get_payload(decode=True).decode("latin-1"))
        self.assertEqual(per_msg.get("reporting-mta"), "dns; mx.imsd.test", per_msg)
        self.assertEqual(len(groups), 1, groups)
        g = groups[0]
        self.assertEqual(g["final-recipient"].replace(" ", ""), "rfc822;bob@dest.test", g)
        self.assertEqual(g["action"], "failed")
        self.assertEqual(g["status"], "5.1.1")
        self.assertTrue(g.get("diagnostic-code", "").startswith("smtp;"), g)
        self.assertIn("550 5.1.1", g["diagnostic-code"])
        if "remote-mta" in g:          # optional (RFC 3464 §2.3.5)
            self.assertIn("mx1.dest.test", g["remote-mta"], g)
        self.assertIsNotNone(headers, "the original headers are attached")
        self.assertEqual(headers.get_content_type(), "text/rfc822-headers")
        orig = peers.headers_part_text(headers)
        self.assertIn("Subject: will bounce", orig)
        self.assertIn("Message-ID: <will-bounce@imsd.test>", orig)
        self.assertIn("X-Original-Marker: 42", orig)
        self.assertNotIn("Hello.", orig, "headers only, not the body")
        # bookkeeping
        b = peers.wait_event(tx, "bounced", qid=qid)[0]
        self.assertEqual(b["status"], "5.1.1", b["_line"])
        bq = peers.wait_event(tx, "bounce-queued", qid=qid)[0]
        self.assertTrue(bq.get("dsn_qid"), bq["_line"])
        peers.wait_event(tx, "removed", qid=qid)
        tx.wait_queue_empty()
        self.assertFalse(peers.log_events(tx, "deferred"))
        self.assertEqual(peer.delivered, [])
        time.sleep(SETTLE)
        self.assertEqual(len(tx.maildir_files("localhost", "alice")), 1, "exactly one report")

    def test_5xx_after_data_bounces_every_recipient_in_one_report(self):
        dns = self.dns(**MX)
        peer = self.peer("127.0.0.3", data=lambda t, n: "554 5.6.0 content rejected")
        tx = self.sender(dns)
        self.send(tx, ["bob@dest.test", "carol@dest.test"], "data refused")
        dsn = self.wait_dsns(tx, 1)[0]
        self.assertDsn(dsn, "failed", {"bob@dest.test": "5.6.0", "carol@dest.test": "5.6.0"},
                       subject="data refused")
        tx.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertEqual(len(tx.maildir_files("localhost", "alice")), 1)
        self.assertEqual(len(peer.transactions), 1, "no retry after a 5xx")

    def test_mixed_results_one_bounce_one_retry_one_delivery(self):
        dns = self.dns(**MX)

        def rcpt(addr, n):
            if addr.startswith("perm@"):
                return "550 5.1.1 no such user"
            if addr.startswith("temp@") and n == 0:
                return "451 4.2.0 mailbox busy"
            return "250 2.1.5 ok"

        peer = self.peer("127.0.0.3", rcpt=rcpt)
        tx = self.sender(dns)
        qid = self.send(tx, ["ok@dest.test", "perm@dest.test", "temp@dest.test"], "mixed")
        wait_for(lambda: len(peer.delivered_to("temp@dest.test")) >= 1, 10)
        tx.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertEqual(len(peer.delivered_to("ok@dest.test")), 1, peer.transactions)
        self.assertEqual(len(peer.delivered_to("temp@dest.test")), 1, peer.transactions)
        self.assertEqual(peer.delivered_to("perm@dest.test"), [])
        self.assertEqual(len(peer.delivered), 2, "ok first, temp on the retry: %r"
                         % peer.transactions)
        self.assertEqual(peer.delivered[0].rcpts, ["ok@dest.test"])
        self.assertEqual(peer.delivered[1].rcpts, ["temp@dest.test"])
        dsns = self.mails(tx, "localhost", "alice")
        self.assertEqual(len(dsns), 1, "exactly one bounce")
        self.assertDsn(dsns[0], "failed", {"perm@dest.test": "5.1.1"}, subject="mixed")
        self.assertEqual([e["to"] for e in peers.log_events(tx, "bounced", qid=qid)],
                         ["<perm@dest.test>"])
        self.assertEqual([e["to"] for e in peers.log_events(tx, "deferred", qid=qid)],
                         ["<temp@dest.test>"])
        self.assertEqual(sorted(e["to"] for e in peers.log_events(tx, "delivered", qid=qid)),
                         ["<ok@dest.test>", "<temp@dest.test>"])

    def test_local_and_remote_recipients_of_one_message_are_independent(self):
        dns = self.dns(**MX)
        self.peer("127.0.0.3", rcpt=lambda a, n: "550 5.7.1 go away")
        tx = self.sender(dns)
        self.send(tx, ["bob@dest.test", "carol@localhost"], "half local")
        tx.wait_mail("localhost", "carol", 1)
        dsn = self.wait_dsns(tx, 1)[0]
        self.assertDsn(dsn, "failed", {"bob@dest.test": "5.7.1"})
        tx.wait_queue_empty()

    def test_delay_warning_is_sent_once_and_the_message_stays_queued(self):
        dns = self.dns(**MX)
        peer = self.peer("127.0.0.3", rcpt=lambda a, n: "451 4.4.5 system busy, later")
        tx = self.sender(dns, retry_min="1s", retry_max="1s", delay_warning="2s",
                         queue_lifetime="1h")
        qid = self.send(tx, "bob@dest.test", "slow")
        notices = self.wait_dsns(tx, 1, timeout=8)
        peers.wait_event(tx, "deferred", count=4, timeout=8, qid=qid)   # retries go on after it
        time.sleep(SETTLE)
        notices = self.mails(tx, "localhost", "alice")
        self.assertEqual(len(notices), 1, "exactly one delay notice")
        n = notices[0]
        self.assertIn("Delayed Mail", n["Subject"])
        groups = self.assertDsn(n, "delayed", {"bob@dest.test": "4."}, subject="slow")
        self.assertIn("451", groups[0].get("diagnostic-code", ""), groups)
        self.assertEqual(len(peers.log_events(tx, "delay-notice", qid=qid)), 1)
        self.assertFalse(peers.log_events(tx, "bounced"))
        self.assertTrue(tx.queue_files(), "the message is still queued")
        self.assertEqual(peer.delivered, [])

    def test_message_still_undelivered_after_queue_lifetime_bounces_with_5_4_7(self):
        dns = self.dns(**MX)
        self.peer("127.0.0.3", rcpt=lambda a, n: "451 4.4.5 system busy, later")
        tx = self.sender(dns, retry_min="1s", retry_max="1s", delay_warning="1h",
                         queue_lifetime="3s")
        t0 = time.monotonic()
        qid = self.send(tx, "bob@dest.test", "expires")
        dsn = self.wait_dsns(tx, 1, timeout=10)[0]
        self.assertGreaterEqual(time.monotonic() - t0, 1.9,
                                "not before queue_lifetime (3s, with 1s resolution)")
        groups = self.assertDsn(dsn, "failed", {"bob@dest.test": "5.4.7"}, subject="expires")
        self.assertIn("451", groups[0].get("diagnostic-code", ""),
                      "the report tells the last error: %r" % groups)
        tx.wait_queue_empty()
        self.assertTrue(peers.log_events(tx, "bounced", qid=qid, status="5.4.7"))
        time.sleep(SETTLE)
        self.assertEqual(len(tx.maildir_files("localhost", "alice")), 1, "no delay notice too")

    def test_null_sender_is_never_bounced(self):
        dns = self.dns(**MX)
        peer = self.peer("127.0.0.3", rcpt=lambda a, n: "550 5.1.1 no such user")
        tx = self.sender(dns)
        c = self.client(tx)
        r = self.transaction(c, "", ["bob@dest.test"], make_message("from null"))
        self.assertReply(r, 250)
        qid = peers.qid_of(r.text)
        peers.wait_event(tx, "bounce-dropped", qid=qid)
        tx.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertEqual(tx.all_mailboxes(), {}, "no report anywhere")
        self.assertFalse(peers.log_events(tx, "bounce-queued"))
        self.assertEqual(mail_froms(peer), [""], "tried once, never again")

    def test_report_to_a_remote_sender_is_relayed_from_the_null_sender(self):
        dns = self.dns(**MX)
        peer = self.peer("127.0.0.3", rcpt=lambda a, n: "550 5.1.1 unknown" if a.startswith("x@")
                         else "250 2.1.5 ok")
        tx = self.sender(dns)
        self.send(tx, "x@dest.test", "remote sender", sender="carol@dest.test")
        peer.wait_delivered(1)
        tx.wait_queue_empty()
        t = peer.delivered[0]
        self.assertEqual(t.mail_from, "", "a report is sent from <>")
        self.assertEqual(t.rcpts, ["carol@dest.test"])
        msg = t.message
        self.assertEqual(msg.get_content_type(), "multipart/report")
        _text, groups, _m, headers = peers.dsn_parts(msg)
        self.assertEqual([g["status"] for g in groups], ["5.1.1"])
        self.assertIn("Subject: remote sender", peers.headers_part_text(headers))
        self.assertEqual(tx.all_mailboxes(), {})

    def test_a_report_that_cannot_be_delivered_is_dropped_not_bounced(self):
        dns = self.dns(**MX)
        peer = self.peer("127.0.0.3", rcpt=lambda a, n: "550 5.1.1 unknown")
        tx = self.sender(dns)
        qid = self.send(tx, "x@dest.test", "double bounce", sender="carol@dest.test")
        dsn_qid = peers.wait_event(tx, "bounce-queued", qid=qid)[0]["dsn_qid"]
        peers.wait_event(tx, "bounce-dropped", qid=dsn_qid)
        tx.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertEqual(mail_froms(peer), ["carol@dest.test", ""], peer.commands)
        self.assertEqual(len(peers.log_events(tx, "bounce-queued")), 1, "no report about a report")


if __name__ == "__main__":
    unittest.main()
