"""Recipients: recipients_file, aliases, unknown users, relaying denied, the recipient limit."""

import time

import peers
from imsdtest import SETTLE, ImsdCase, make_message, read_bytes

RECIPIENTS = """# valid local addresses
alice@localhost
Bob@LocalHost
sales@localhost: bob@localhost, carol@localhost
info@localhost: alice@localhost
"""


class RecipientsFile(ImsdCase):

    def setUp(self):
        super().setUp()
        self.srv = self.server(start=False)
        path = self.srv.write_file("recipients", RECIPIENTS)
        self.srv.set_conf(recipients_file=path)
        self.srv.start()

    def test_unknown_local_user_gets_550_5_1_1(self):
        c = self.client(self.srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<nobody@localhost>"), 550, "5.1.1")
        self.assertReply(c.cmd("RCPT TO:<carol@localhost>"), 550, "5.1.1",
                         msg="an alias target is not itself a listed address")
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)

    def test_listed_addresses_match_case_insensitively(self):
        c = self.client(self.srv)
        r = self.transaction(c, "a@example.org", ["ALICE@localhost", "bob@LOCALHOST"],
                             make_message("case"))
        self.assertReply(r, 250)
        self.srv.wait_mail("localhost", "alice", 1)
        self.srv.wait_mail("localhost", "bob", 1)

    def test_alias_expands_to_its_targets(self):
        c = self.client(self.srv)
        r = self.transaction(c, "a@example.org", ["sales@localhost"], make_message("to sales"))
        self.assertReply(r, 250)
        for user in ("bob", "carol"):
            f = self.srv.wait_mail("localhost", user, 1)
            self.assertIn(b"Subject: to sales", read_bytes(f[0]))
        time.sleep(1)
        self.assertNotIn("localhost/sales", self.srv.all_mailboxes())
        self.assertEqual(len(self.srv.maildir_files("localhost", "bob")), 1)
        self.assertEqual(len(self.srv.maildir_files("localhost", "carol")), 1)

    def test_alias_and_its_target_in_one_message_deliver_once(self):
        c = self.client(self.srv)
        r = self.transaction(c, "a@example.org", ["info@localhost", "alice@localhost"],
                             make_message("dedup"))
        self.assertReply(r, 250)
        self.srv.wait_mail("localhost", "alice", 1)
        time.sleep(1)
        self.assertEqual(len(self.srv.maildir_files("localhost", "alice")), 1,
                         "one copy per final recipient")

    def test_unknown_user_in_a_transaction_does_not_stop_the_others(self):
        c = self.client(self.srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<ghost@localhost>"), 550, "5.1.1")
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(make_message("partial") + b".\r\n")
        self.assertReply(c.reply(), 250)
        self.srv.wait_mail("localhost", "alice", 1)
        time.sleep(0.5)
        self.assertNotIn("localhost/ghost", self.srv.all_mailboxes())


class LocalParts(ImsdCase):

    def test_every_local_part_is_accepted_without_recipients_file(self):
        srv = self.server()
        c = self.client(srv)
        r = self.transaction(c, "a@example.org", ["anyone.at-all@localhost"], make_message("any"))
        self.assertReply(r, 250)
        srv.wait_mail("localhost", "anyone.at-all", 1)

    def test_local_part_with_slash_or_leading_dot_is_refused_with_550_5_1_3(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        for rcpt in ("<a/b@localhost>", '<"../etc"@localhost>', '<".hidden"@localhost>',
                     '<"a/../../x"@localhost>'):
            with self.subTest(rcpt=rcpt):
                self.assertReply(c.cmd("RCPT TO:" + rcpt), 550, "5.1.3")
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("RSET"), 250)
        # nothing escaped the mail root
        time.sleep(0.5)
        self.assertFalse(any(n.startswith(".") or "/" in n
                             for n in srv.all_mailboxes()))

    def test_multiple_local_domains(self):
        srv = self.server(local_domains="localhost, example.test  Other.Test")
        c = self.client(srv)
        r = self.transaction(c, "a@example.org",
                             ["alice@example.test", "bob@other.test", "carol@OTHER.TEST"],
                             make_message("domains"))
        self.assertReply(r, 250)
        srv.wait_mail("example.test", "alice", 1)
        srv.wait_mail("other.test", "bob", 1)
        srv.wait_mail("other.test", "carol", 1)


class Relaying(peers.RelayCase):

    def test_non_local_recipient_gets_554_5_7_1(self):
        srv = self.server()
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        for rcpt in ("user@example.org", "alice@localhost.example.org", "alice@sub.localhost"):
            with self.subTest(rcpt=rcpt):
                self.assertReply(c.cmd("RCPT TO:<%s>" % rcpt), 554, "5.7.1")
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)

    def test_percent_hack_and_bang_paths_are_not_relayed(self):
        """A client outside relay_networks hides remote addresses in local ones and sends
        the message. Everything non-local goes to relayhost, where a real SMTP listener
        stands in for the would-be destination: it is never contacted for that message,
        while a sentinel relayed afterwards for a client inside relay_networks, through the
        same imsd, does reach it (so the route to the listener works)."""
        target = self.peer("127.0.0.3")
        srv = self.server(**peers.sender_conf(
            relay_networks="127.0.0.2/32", relayhost="[127.0.0.3]:%d" % self.p2))
        c = self.client(srv)                       # from 127.0.0.1: outside relay_networks
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        tricks = ("user%example.org@localhost", "example.org!user@localhost",
                  "user%example.org%example.net@localhost")
        for rcpt in tricks:
            self.assertReply(c.cmd("RCPT TO:<%s>" % rcpt), 554, "5.7.1", msg=rcpt)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(make_message("hidden remote", to=tricks[0]) + b".\r\n")
        self.assertReply(c.reply(), 250)
        srv.wait_mail("localhost", "alice", 1)
        srv.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertEqual(target.connections, 0, "the relay target was contacted for the "
                         "message with the hidden addresses: %r" % target.transactions)
        self.assertEqual(list(srv.all_mailboxes()), ["localhost/alice"],
                         "no mailbox named after a hidden address")
        # the sentinel: relayed for 127.0.0.2, it must arrive at the listener
        c2 = self.client(srv, source="127.0.0.2")
        r = self.transaction(c2, "a@example.org", ["sentinel@example.org"],
                             make_message("relay sentinel", to="sentinel@example.org"))
        self.assertReply(r, 250)
        target.wait_delivered(1)
        srv.wait_queue_empty()
        time.sleep(SETTLE)
        got = [(t.rcpts, t.header("Subject")) for t in target.transactions]
        self.assertEqual(got, [(["sentinel@example.org"], "relay sentinel")],
                         "only the sentinel reaches the relay target")


class RecipientLimit(ImsdCase):

    def test_recipient_over_limit_gets_452_4_5_3_and_the_rest_is_delivered(self):
        srv = self.server(recipient_limit=3)
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        for user in ("u1", "u2", "u3"):
            self.assertReply(c.cmd("RCPT TO:<%s@localhost>" % user), 250)
        self.assertReply(c.cmd("RCPT TO:<u4@localhost>"), 452, "4.5.3")
        self.assertReply(c.cmd("RCPT TO:<u5@localhost>"), 452, "4.5.3")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(make_message("limited") + b".\r\n")
        self.assertReply(c.reply(), 250)
        for user in ("u1", "u2", "u3"):
            srv.wait_mail("localhost", user, 1)
        time.sleep(1)
        for user in ("u1", "u2", "u3"):
            self.assertEqual(len(srv.maildir_files("localhost", user)), 1)
        self.assertNoMail(srv, "localhost", "u4")
        self.assertNoMail(srv, "localhost", "u5")

    def test_limit_is_per_transaction(self):
        srv = self.server(recipient_limit=2)
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        for n in range(2):
            self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
            self.assertReply(c.cmd("RCPT TO:<x%d@localhost>" % n), 250)
            self.assertReply(c.cmd("RCPT TO:<y%d@localhost>" % n), 250)
            self.assertReply(c.cmd("RCPT TO:<z%d@localhost>" % n), 452, "4.5.3")
            self.assertReply(c.cmd("RSET"), 250)
