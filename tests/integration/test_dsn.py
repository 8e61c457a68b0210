"""Delivery status notifications on request (RFC 3461-3464): the DSN extension of EHLO, MAIL
(RET, ENVID) and RCPT (NOTIFY, ORCPT); reports that honour them; passing them on to a peer
that speaks DSN, and "relayed" for one that does not.

Remote peers are scripted SMTP servers on 127.0.0.3:self.p2 (dest.test's MX via dnsmasq)
that record every command line; the sender alice@localhost is local to the imsd under test,
so its reports land in MAIL_DIR/localhost/alice/new.
"""

import re
import time
import unittest

import peers
from imsdtest import SETTLE, make_message

MX = dict(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.3")])


class Dsn(peers.RelayCase):

    def dsn_send(self, srv, rcpts, subject, mail_params="", sender="alice@localhost",
                 body="Hello, body text.\r\n"):
        """One transaction; rcpts is a list of (address, RCPT parameters). Returns the qid."""
        msg = make_message(subject, body=body, sender=sender, to=rcpts[0][0])
        with srv.client() as c:
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<%s>%s" % (sender, mail_params)), 250)
            for addr, params in rcpts:
                self.assertReply(c.cmd("RCPT TO:<%s>%s" % (addr, params)), 250)
            self.assertReply(c.cmd("DATA"), 354)
            if not msg.endswith(b"\r\n"):
                msg += b"\r\n"
            c.send(msg + b".\r\n")
            r = c.reply()
            self.assertReply(r, 250)
            c.cmd("QUIT")
        return peers.qid_of(r.text)

    # -- the server side: EHLO and parameters

    def test_ehlo_advertises_dsn_and_parameters_are_checked(self):
        srv = self.server()
        with srv.client() as c:
            r = c.ehlo()
            self.assertIn("DSN", [line[4:] for line in r.lines], r)
            self.assertReply(c.cmd("MAIL FROM:<a@example.org> RET=FULL ENVID=abc+2Bd"), 250)
            self.assertReply(c.cmd("RCPT TO:<bob@localhost> NOTIFY=SUCCESS,DELAY "
                                   "ORCPT=rfc822;Bob+40x@example.org"), 250)
            self.assertReply(c.cmd("RCPT TO:<carol@localhost> NOTIFY=NEVER"), 250)
            for line, name in (("RCPT TO:<d@localhost> NOTIFY=NEVER,SUCCESS", "NOTIFY"),
                               ("RCPT TO:<d@localhost> NOTIFY=SOMETIMES", "NOTIFY"),
                               ("RCPT TO:<d@localhost> ORCPT=rfc822;bad+ZZ@x", "ORCPT"),
                               ("RCPT TO:<d@localhost> ORCPT=x400;a@b", "ORCPT"),
                               ("RCPT TO:<d@localhost> ORCPT=rfc822;" + "a" * 500 + "@b",
                                "ORCPT"),
                               ("RCPT TO:<d@localhost> NOTIFY=DELAY NOTIFY=DELAY", "NOTIFY")):
                r = c.cmd(line)
                self.assertReply(r, 501, "5.5.4")
                self.assertIn(name, r.text)
            c.cmd("RSET")
            for line, name in (("MAIL FROM:<a@example.org> RET=BODY", "RET"),
                               ("MAIL FROM:<a@example.org> ENVID=" + "x" * 101, "ENVID"),
                               ("MAIL FROM:<a@example.org> ENVID=a+0Ab", "ENVID")):
                r = c.cmd(line)
                self.assertReply(r, 501, "5.5.4")
                self.assertIn(name, r.text)
            # the longest ORCPT fits the longer RCPT line of RFC 3461 section 5
            self.assertReply(c.cmd("MAIL FROM:<a@example.org> ENVID=" + "x" * 100), 250)
            self.assertReply(c.cmd("RCPT TO:<bob@localhost> NOTIFY=SUCCESS,FAILURE,DELAY "
                                   "ORCPT=rfc822;" + "a" * 480 + "@example.org"), 250)

    # -- honouring them

    def test_notify_success_on_local_delivery_gets_a_delivered_report(self):
        srv = self.server()
        qid = self.dsn_send(srv, [("bob@localhost",
                                   " NOTIFY=SUCCESS ORCPT=rfc822;Bob+2Bx@localhost")],
                            "local success", mail_params=" ENVID=QQ+2B314")
        srv.wait_mail("localhost", "bob", 1)
        dsn = self.wait_dsns(srv, 1)[0]
        self.assertEqual(dsn["Return-Path"], "<>")
        self.assertEqual(dsn.get_content_type(), "multipart/report")
        self.assertEqual(dsn.get_param("report-type"), "delivery-status")
        _text, groups, per_msg, headers = peers.dsn_parts(dsn)
        self.assertEqual(per_msg.get("original-envelope-id"), "QQ+314", per_msg)
        self.assertEqual(len(groups), 1, groups)
        g = groups[0]
        self.assertEqual(g["action"], "delivered", g)
        self.assertEqual(g["status"], "2.0.0", g)
        self.assertEqual(g["final-recipient"].replace(" ", ""), "rfc822;bob@localhost", g)
        self.assertEqual(g["original-recipient"].replace(" ", ""), "rfc822;Bob+x@localhost", g)
        self.assertIn("Subject: local success", peers.headers_part_text(headers))
        peers.wait_event(srv, "success-notice", qid=qid)
        srv.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertEqual(len(srv.maildir_files("localhost", "alice")), 1, "one report only")

    def test_no_notify_and_notify_failure_get_no_success_report(self):
        srv = self.server()
        self.dsn_send(srv, [("bob@localhost", ""), ("carol@localhost", " NOTIFY=FAILURE")],
                      "no report")
        srv.wait_mail("localhost", "bob", 1)
        srv.wait_mail("localhost", "carol", 1)
        srv.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertNoMail(srv, "localhost", "alice")

    def test_notify_never_to_a_failing_remote_gets_no_bounce(self):
        dns = self.dns(**MX)
        peer = self.peer("127.0.0.3", rcpt=lambda a, n: "550 5.1.1 <%s>: unknown" % a)
        tx = self.sender(dns)
        qid = self.dsn_send(tx, [("bob@dest.test", " NOTIFY=NEVER"),
                                 ("carol@dest.test", " NOTIFY=SUCCESS,DELAY")], "never")
        peers.wait_event(tx, "bounced", count=2, qid=qid)
        peers.wait_event(tx, "removed", qid=qid)
        tx.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertNoMail(tx, "localhost", "alice")
        self.assertFalse(peers.log_events(tx, "bounce-queued", qid=qid))
        self.assertEqual(peer.delivered, [])

    def test_failure_report_names_only_those_that_asked_and_ret_hdrs_has_no_body(self):
        dns = self.dns(**MX)
        self.peer("127.0.0.3", rcpt=lambda a, n: "550 5.1.1 <%s>: unknown" % a)
        tx = self.sender(dns)
        self.dsn_send(tx, [("bob@dest.test", " NOTIFY=FAILURE ORCPT=rfc822;orig-bob@dest.test"),
                           ("carol@dest.test", " NOTIFY=NEVER"),
                           ("dave@dest.test", "")],
                      "hdrs only", mail_params=" RET=HDRS ENVID=env-1",
                      body="SECRET-BODY-LINE\r\n")
        dsn = self.wait_dsns(tx, 1)[0]
        groups = self.assertDsn(dsn, "failed", {"bob@dest.test": "5.1.1",
                                                "dave@dest.test": "5.1.1"},
                                subject="hdrs only")
        bob = [g for g in groups if "bob@" in g["final-recipient"]][0]
        self.assertEqual(bob["original-recipient"].replace(" ", ""),
                         "rfc822;orig-bob@dest.test", bob)
        _t, _g, per_msg, headers = peers.dsn_parts(dsn)
        self.assertEqual(per_msg.get("original-envelope-id"), "env-1", per_msg)
        self.assertEqual(headers.get_content_type(), "text/rfc822-headers")
        self.assertNotIn(b"SECRET-BODY-LINE", dsn.as_bytes())
        tx.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertEqual(len(tx.maildir_files("localhost", "alice")), 1)

    def test_ret_full_bounce_returns_the_whole_message(self):
        dns = self.dns(**MX)
        self.peer("127.0.0.3", rcpt=lambda a, n: "550 5.1.1 <%s>: unknown" % a)
        tx = self.sender(dns)
        self.dsn_send(tx, [("bob@dest.test", "")], "full return", mail_params=" RET=FULL",
                      body="THE-WHOLE-BODY-LINE\r\n")
        dsn = self.wait_dsns(tx, 1)[0]
        self.assertDsn(dsn, "failed", {"bob@dest.test": "5.1.1"})
        _t, _g, _m, orig = peers.dsn_parts(dsn)
        self.assertEqual(orig.get_content_type(), "message/rfc822")
        inner = orig.get_payload()[0]
        self.assertEqual(inner["Subject"], "full return")
        self.assertIn("THE-WHOLE-BODY-LINE", inner.get_payload())

    def test_no_delay_notice_without_delay_when_notify_was_given(self):
        dns = self.dns(**MX)
        self.peer("127.0.0.3", rcpt=lambda a, n: "451 4.2.0 busy")
        tx = self.sender(dns, retry_min="1s", retry_max="1s", delay_warning="2s")
        qid = self.dsn_send(tx, [("bob@dest.test", " NOTIFY=FAILURE"),
                                 ("carol@dest.test", " NOTIFY=DELAY")], "delay")
        dsn = self.wait_dsns(tx, 1)[0]
        self.assertDsn(dsn, "delayed", {"carol@dest.test": "4.2.0"})
        peers.wait_event(tx, "delay-notice", qid=qid)
        time.sleep(3)
        self.assertEqual(len(tx.maildir_files("localhost", "alice")), 1, "one notice")

    # -- relaying

    def test_peer_with_dsn_gets_the_parameters_and_imsd_sends_no_success_report(self):
        dns = self.dns(**MX)
        peer = self.peer("127.0.0.3", ehlo=("PIPELINING", "8BITMIME", "DSN",
                                            "ENHANCEDSTATUSCODES"))
        tx = self.sender(dns)
        qid = self.dsn_send(tx, [("bob@dest.test",
                                  " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2Bx@dest.test"),
                                 ("carol@dest.test", " NOTIFY=NEVER"),
                                 ("dave@dest.test", "")],
                            "pass on", mail_params=" RET=HDRS ENVID=QQ+2B314")
        peer.wait_delivered(1)
        peers.wait_event(tx, "removed", qid=qid)
        cmds = [c for _n, c in peer.commands]
        mail = [c for c in cmds if c.upper().startswith("MAIL")][0]
        self.assertRegex(mail, r"^MAIL FROM:<alice@localhost>.* RET=HDRS ENVID=QQ\+2B314$")
        rcpts = [c for c in cmds if c.upper().startswith("RCPT")]
        self.assertIn("RCPT TO:<bob@dest.test> NOTIFY=SUCCESS,FAILURE "
                      "ORCPT=rfc822;Bob+2Bx@dest.test", rcpts)
        self.assertIn("RCPT TO:<carol@dest.test> NOTIFY=NEVER", rcpts)
        self.assertIn("RCPT TO:<dave@dest.test>", rcpts)
        tx.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertNoMail(tx, "localhost", "alice")

    def test_peer_without_dsn_gets_no_parameters_and_success_is_reported_as_relayed(self):
        dns = self.dns(**MX)
        peer = self.peer("127.0.0.3")     # no DSN in its EHLO reply
        tx = self.sender(dns)
        qid = self.dsn_send(tx, [("bob@dest.test", " NOTIFY=SUCCESS ORCPT=rfc822;b@dest.test"),
                                 ("carol@dest.test", " NOTIFY=FAILURE")],
                            "relayed", mail_params=" ENVID=e2")
        peer.wait_delivered(1)
        for _n, c in peer.commands:
            self.assertNotRegex(c, r"(?i)NOTIFY=|ORCPT=|ENVID=|RET=", c)
        dsn = self.wait_dsns(tx, 1)[0]
        groups = self.assertDsn(dsn, "relayed", {"bob@dest.test": "2."}, subject="relayed")
        self.assertIn("mx1.dest.test", groups[0].get("remote-mta", ""), groups)
        _t, _g, per_msg, _h = peers.dsn_parts(dsn)
        self.assertEqual(per_msg.get("original-envelope-id"), "e2", per_msg)
        peers.wait_event(tx, "removed", qid=qid)
        tx.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertEqual(len(tx.maildir_files("localhost", "alice")), 1, "one report only")

    def test_queue_keeps_the_requests_across_a_restart(self):
        dns = self.dns(**MX)
        tx = self.sender(dns)          # no peer yet: the message stays queued
        qid = self.dsn_send(tx, [("bob@dest.test", " NOTIFY=SUCCESS ORCPT=rfc822;b@dest.test")],
                            "restart", mail_params=" RET=FULL ENVID=keep")
        peers.wait_event(tx, "deferred", qid=qid)
        tx.stop()
        peer = self.peer("127.0.0.3", ehlo=("PIPELINING", "DSN"))
        tx.start()
        peer.wait_delivered(1)
        cmds = [c for _n, c in peer.commands]
        self.assertTrue(any(re.search(r" RET=FULL ENVID=keep$", c) for c in cmds), cmds)
        self.assertIn("RCPT TO:<bob@dest.test> NOTIFY=SUCCESS ORCPT=rfc822;b@dest.test", cmds)


class DsnThroughPostfix(peers.RelayCase):
    """Real peers: imsd relays through a private Postfix (relayhost [127.0.0.4]:PF_PORT) whose
    own relayhost is a receiving imsd on [127.0.0.2]:RX_PORT (log_level debug, so its log
    shows every RCPT line Postfix sent). A second Postfix on 127.0.0.5 hides DSN from its
    EHLO reply (smtpd_discard_ehlo_keywords = dsn)."""

    pf = pf_nodsn = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.PF_PORT = peers.free_port_on("127.0.0.1", "127.0.0.4", "127.0.0.5")
        cls.RX_PORT = peers.free_port_on("127.0.0.1", "127.0.0.2")
        relay = "[127.0.0.2]:%d" % cls.RX_PORT
        try:
            cls.pf = peers.Postfix("127.0.0.4", cls.PF_PORT, relay)
            cls.pf.start()
            cls.pf_nodsn = peers.Postfix("127.0.0.5", cls.PF_PORT, relay, myhostname="pf2.test",
                                         extra={"smtpd_discard_ehlo_keywords": "dsn"})
            cls.pf_nodsn.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for pf in (cls.pf, cls.pf_nodsn):
            if pf is not None:
                pf.stop()
        cls.pf = cls.pf_nodsn = None
        super().tearDownClass()

    def _callTestMethod(self, method):
        try:
            super()._callTestMethod(method)
        except unittest.SkipTest:
            raise
        except BaseException as e:
            for pf in (self.pf, self.pf_nodsn):
                if pf is not None and hasattr(e, "add_note"):
                    e.add_note("---- postfix maillog (last 40 lines) ----\n"
                               + "\n".join(pf.log().splitlines()[-40:]))
            raise

    dsn_send = Dsn.dsn_send

    def test_postfix_gets_and_passes_on_notify_orcpt_and_envid(self):
        rx = self.receiver("127.0.0.2", domains="onward.test", port=self.RX_PORT,
                           log_level="debug")
        tx = self.sender(None, relayhost="[127.0.0.4]:%d" % self.PF_PORT)
        self.dsn_send(tx, [("bob@onward.test",
                        " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Orig+2Bbob@onward.test")],
                  "dsn via postfix", mail_params=" RET=HDRS ENVID=env+2Bpf")
        rx.wait_mail("onward.test", "bob", 1, timeout=20)
        self.assertTrue(self.pf.wait_log(r"to=<bob@onward\.test>.*status=sent"),
                        self.pf.log()[-3000:])
        log = rx.log_text()
        # what Postfix sent on: imsd's requests, unchanged
        self.assertRegex(log, r"MAIL FROM:<alice@localhost>[^\n]*RET=HDRS", log[-3000:])
        self.assertRegex(log, r"MAIL FROM:<alice@localhost>[^\n]*ENVID=env\+2Bpf", log[-3000:])
        self.assertRegex(log, r"RCPT TO:<bob@onward\.test>[^\n]*NOTIFY=SUCCESS,FAILURE",
                         log[-3000:])
        self.assertRegex(log, r"RCPT TO:<bob@onward\.test>[^\n]*ORCPT=rfc822;Orig\+2Bbob@onward"
                         r"\.test", log[-3000:])
        # Postfix speaks DSN: the report is its business (here the receiving imsd's)
        tx.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertNoMail(tx, "localhost", "alice")

    def test_postfix_without_dsn_gets_a_plain_transaction_and_imsd_reports_relayed(self):
        rx = self.receiver("127.0.0.2", domains="onward.test", port=self.RX_PORT,
                           log_level="debug")
        tx = self.sender(None, relayhost="[127.0.0.5]:%d" % self.PF_PORT)
        self.dsn_send(tx, [("carol@onward.test", " NOTIFY=SUCCESS")], "relayed via postfix",
                  mail_params=" ENVID=e3")
        rx.wait_mail("onward.test", "carol", 1, timeout=20)
        dsn = self.wait_dsns(tx, 1)[0]
        groups = self.assertDsn(dsn, "relayed", {"carol@onward.test": "2."})
        self.assertIn("127.0.0.5", groups[0].get("remote-mta", ""), groups)
        _t, _g, per_msg, _h = peers.dsn_parts(dsn)
        self.assertEqual(per_msg.get("original-envelope-id"), "e3", per_msg)
        log = rx.log_text()
        self.assertNotRegex(log, r"RCPT TO:<carol@onward\.test>[^\n]*NOTIFY=", log[-3000:])
