"""sender_login_maps: DKIM signing and the envelope sender tied to the AUTH login (issue 24,
finding 9). Without it any authenticated user got any hosted domain's signature.

One imsd with a DKIM key for example.com (made by `imsd dkim-keygen`), AUTH users alice and
bob (offered on loopback without TLS), and the map: alice owns alice@example.com, bob owns
the whole of @example.org. Mail goes to a local mailbox, so the delivered file shows
whether it was signed.
"""

import os

from imsdtest import ImsdCase, make_message, run_cli
import netns

MAP = """# KEY LOGIN[, LOGIN ...]
alice@example.com   alice
@example.org        bob
sales@example.com   alice, bob
"""


class SenderLogins(ImsdCase):

    def setUp(self):
        super().setUp()
        self.key = os.path.join(self.tmp, "example.com.key")
        p = run_cli(["dkim-keygen", "example.com", "s1", self.key])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.users = netns.write_users(os.path.join(self.tmp, "users"))

    def login_server(self, with_map=True):
        conf = dict(auth_users_file=self.users, dkim_sign="example.com:s1:%s" % self.key)
        if with_map:
            path = os.path.join(self.tmp, "sender-logins")
            with open(path, "w") as f:
                f.write(MAP)
            conf["sender_login_maps"] = path
        return self.server(**conf)

    def session(self, srv, user):
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("AUTH PLAIN " + netns.plain_token(user, netns.PASSWORD)), 235)
        return c

    def send(self, c, mail_from, header_from, subject):
        r = c.cmd("MAIL FROM:<%s>" % mail_from)
        if r.code != 250:
            return "MAIL", r
        self.assertReply(c.cmd("RCPT TO:<bob@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(make_message(subject, sender=header_from, to="bob@localhost") + b".\r\n")
        return "DATA", c.reply()

    def test_a_login_signs_only_as_the_addresses_it_owns(self):
        srv = self.login_server()
        c = self.session(srv, "alice")
        stage, r = self.send(c, "alice@example.com", "alice@example.com", "own address")
        self.assertReply(r, 250)
        got = srv.wait_mail("localhost", "bob", 1)
        with open(got[0], "rb") as f:
            self.assertIn(b"DKIM-Signature:", f.read(), "alice's own address is signed")
        # the envelope: an address alice does not own
        stage, r = self.send(c, "ceo@example.com", "ceo@example.com", "forged envelope")
        self.assertEqual(stage, "MAIL")
        self.assertReply(r, 553, "5.7.1")
        self.assertIn("not owned by user alice", r.text)
        # the From: header: her envelope, someone else's From, refused rather than signed
        stage, r = self.send(c, "alice@example.com", "ceo@example.com", "forged from")
        self.assertEqual(stage, "DATA")
        self.assertReply(r, 550, "5.7.1")
        self.assertIn("From: address ceo@example.com is not owned by user alice", r.text)
        # a shared address, and the null sender
        stage, r = self.send(c, "sales@example.com", "sales@example.com", "shared")
        self.assertReply(r, 250)
        stage, r = self.send(c, "", "alice@example.com", "null sender")
        self.assertReply(r, 250)
        srv.wait_mail("localhost", "bob", 3)
        # bob owns a whole domain, and nothing of example.com but the shared address
        b = self.session(srv, "bob")
        stage, r = self.send(b, "anyone@example.org", "anyone@example.org", "bob's domain")
        self.assertReply(r, 250)
        stage, r = self.send(b, "alice@example.com", "alice@example.com", "not bob's")
        self.assertReply(r, 553, "5.7.1")
        log = srv.log_text()
        self.assertIn("event=sender-login-mismatch stage=mail from=ceo@example.com login=alice",
                      log)
        self.assertRegex(log, r"event=sender-login-mismatch login=alice reply=\"550 5\.7\.1")
        self.assertEqual(len(srv.wait_mail("localhost", "bob", 4)), 4)

    def test_without_the_map_any_login_still_gets_the_signature(self):
        # the documented default: the map is what ties logins to domains
        srv = self.login_server(with_map=False)
        c = self.session(srv, "bob")
        stage, r = self.send(c, "ceo@example.com", "ceo@example.com", "no map")
        self.assertReply(r, 250)
        got = srv.wait_mail("localhost", "bob", 1)
        with open(got[0], "rb") as f:
            self.assertIn(b"DKIM-Signature:", f.read())

    def test_a_bad_map_names_file_and_line(self):
        srv = self.server(start=False)
        bad = srv.write_file("bad-map", "alice@example.com alice\nnot-an-address bob\n")
        srv.set_conf(sender_login_maps=bad)
        p = run_cli(["check", "-c", srv.conf_path])
        self.assertEqual(p.returncode, 1)
        self.assertIn("bad-map:2: \"not-an-address\" is not an address or @domain", p.stderr)
        self.assertRegex(p.stderr, r"imsd\.conf:\d+: sender_login_maps")
