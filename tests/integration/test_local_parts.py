"""Quoted local parts: what may name a mailbox, how the Received header writes it, and where
bounces to local senders go (issue 13, point 5)."""

import os

from imsdtest import ImsdCase, make_message, free_port
import peers


class LocalParts(ImsdCase):

    def test_local_parts_that_would_make_odd_mailboxes_are_refused(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<s@example.org>"), 250)
        for rcpt in ('"bob>; X-Evil: 1 ;"@localhost', '"b@x@localhost"@localhost',
                     '" bob"@localhost', '"bob "@localhost', '"a\\\\b"@localhost',
                     '"a\\"b"@localhost', '"a;b"@localhost', '".hidden"@localhost',
                     '"a/b"@localhost'):
            r = c.cmd("RCPT TO:<%s>" % rcpt)
            self.assertReply(r, 550, "5.1.3", msg=rcpt)
            self.assertIn("cannot name a mailbox", r.text)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(make_message("odd parts") + b".\r\n")
        self.assertReply(c.reply(), 250)
        srv.wait_mail("localhost", "alice")
        self.assertEqual(sorted(os.listdir(os.path.join(srv.mail_dir, "localhost"))), ["alice"],
                         "a mailbox was made for a refused local part")

    def test_received_for_clause_carries_the_requoted_address(self):
        srv = self.server()
        c = self.client(srv)
        r = self.transaction(c, "s@example.org", ['"John Smith"@localhost'],
                             make_message("quoted"))
        self.assertReply(r, 250)
        f = srv.wait_mail("localhost", "john smith")[0]
        with open(f, "rb") as fh:
            text = fh.read().decode()
        head = text.split("\n\n", 1)[0]
        self.assertIn('\tfor <"john smith"@localhost>;', head)


class BouncesToLocalSenders(ImsdCase):

    def sender_with_refusing_peer(self):
        port = free_port()
        peer = peers.SmtpPeer("127.0.0.1", port,
                              rcpt=lambda addr, n: "550 5.1.1 no such user here")
        self.addCleanup(peer.srv.shutdown)
        return self.server(**peers.sender_conf(relayhost="[127.0.0.1]:%d" % port,
                                               log_level="info"))

    def test_bounce_to_a_local_sender_goes_to_its_normalised_mailbox(self):
        srv = self.sender_with_refusing_peer()
        code, _ = peers.submit(srv, "Bob@LocalHost", ["nobody@remote.test"],
                               make_message("will bounce"))
        self.assertEqual(code, 250)
        f = srv.wait_mail("localhost", "bob")
        with open(f[0], "rb") as fh:
            self.assertIn(b"multipart/report", fh.read())
        srv.wait_queue_empty()

    def test_bounce_to_a_local_sender_that_names_no_mailbox_is_dropped_with_a_log_line(self):
        srv = self.sender_with_refusing_peer()
        code, _ = peers.submit(srv, '"a;b"@localhost', ["nobody@remote.test"],
                               make_message("bounce nowhere"))
        self.assertEqual(code, 250)
        ev = peers.wait_event(srv, "bounce-dropped")
        self.assertIn("cannot name a local mailbox", ev[0]["_line"])
        srv.wait_queue_empty()
        self.assertEqual(os.listdir(srv.mail_dir) if os.path.isdir(srv.mail_dir) else [], [])
