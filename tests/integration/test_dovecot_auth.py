"""SMTP AUTH checked by a real Dovecot (issue 19, part 2): auth_backend = dovecot:unix:PATH.

A private Dovecot (dovecot.py: its own configuration, a passwd-file of SHA512-CRYPT hashes,
its auth-client socket under the test's directory) answers imsd's checks over Dovecot's
authentication protocol, as it answers Postfix's `smtpd_sasl_type = dovecot`. imsd runs in a
network namespace (netns.py) with a submission listener on port 587, so both sides of the
loopback rule are exercised: AUTH only after STARTTLS at 198.51.100.10, without TLS at
127.0.0.1. Each test also reads Dovecot's own log for what it was asked.
"""

import os
import re
import shutil
import tempfile
import time
import unittest

import dovecot
from netns import NS_ADDR, NsCase, plain_token

EHLO = ["cmd", "EHLO client.imsd.test"]
STARTTLS = [["cmd", "STARTTLS"], ["starttls"], EHLO]
SUBMISSION = 587
USERS = {"alice@example.org": "dovecot horse", "bob@example.org": "battery staple"}


class DovecotAuthOnSubmission(NsCase):
    with_users = False

    @classmethod
    def setUpClass(cls):
        cls.dv = None
        cls.dvdir = None
        try:
            dovecot.available()
        except unittest.SkipTest as e:
            cls._skip_reason = str(e)
            return
        cls.dvdir = tempfile.mkdtemp(prefix="imsd-dvauth-")
        cls.dv = dovecot.Dovecot(cls.dvdir, users=USERS)
        cls.dv.start()
        cls.server_conf = {
            "auth_backend": "dovecot:unix:" + cls.dv.auth_socket,
            "submission_listen": "0.0.0.0:%d" % SUBMISSION,
            "local_domains": "localhost example.org",
        }
        try:
            super().setUpClass()
        except BaseException:
            cls._stop_dovecot()
            raise

    @classmethod
    def _stop_dovecot(cls):
        if cls.dv is not None:
            cls.dv.close()
        if cls.dvdir is not None:
            shutil.rmtree(cls.dvdir, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls._stop_dovecot()

    def setUp(self):
        super().setUp()
        if not self.dv.running():
            self.dv.start()
        self.dv.mark_log()
        self._imsd_at = len(self.srv.log_text())

    def tearDown(self):
        dovecot.keep_log(self.dv, self._testMethodName)

    def imsd_log(self):
        return self.srv.log_text()[self._imsd_at:]

    def sub(self, steps, host=NS_ADDR):
        return self.raw(host, [["read"], EHLO] + steps + [["cmd", "QUIT"]], port=SUBMISSION)

    # ---- the mechanisms

    def test_ehlo_after_starttls_on_587_offers_the_mechanisms_dovecot_lists(self):
        rs = self.ok(self.sub(STARTTLS))
        self.assertIsNone(self.ehlo_line(rs[1], "AUTH"), "no AUTH before TLS: %r" % rs[1])
        self.assertEqual(self.ehlo_line(rs[3], "AUTH"), "AUTH PLAIN LOGIN", rs[3])
        self.assertRegex(self.srv.log_text(),
                         r"event=auth-backend-ready backend=dovecot socket=\S+ "
                         r"mechanisms=PLAIN,LOGIN")

    # ---- good passwords

    def test_auth_plain_with_dovecot_password_after_starttls_on_587_gets_235(self):
        rs = self.ok(self.sub(STARTTLS + [["auth_plain", "alice@example.org",
                                           USERS["alice@example.org"]],
                                          ["cmd", "MAIL FROM:<alice@example.org>"]]))
        self.assertCode(rs[4], 235, "2.7.0")
        self.assertCode(rs[5], 250)
        # Dovecot was asked for service smtp, with the session's addresses, as secured
        asked = self.dv.log_lines("client in: AUTH", "PLAIN", "service=smtp")
        self.assertEqual(len(asked), 1, self.dv.log_since())
        self.assertIn("lip=%s" % NS_ADDR, asked[0])
        self.assertIn("lport=%d" % SUBMISSION, asked[0])
        self.assertRegex(asked[0], r"\tsecured(\t|$)")
        self.assertIn("resp=<hidden>", asked[0])
        self.assertRegex(self.imsd_log(), r"event=auth-ok user=alice@example\.org mech=PLAIN "
                                          r"tls=yes")
        self.assertNotIn(USERS["alice@example.org"], self.srv.log_text())

    def test_auth_login_with_dovecot_password_sends_mail_with_esmtpsa_received(self):
        res = self.smtp(NS_ADDR, port=SUBMISSION, starttls=True,
                        login=("bob@example.org", USERS["bob@example.org"]),
                        auth_method="LOGIN", mail="bob@example.org",
                        rcpt=["carol@example.org"], subject="via dovecot auth")
        self.assertNotIn("error", res, res)
        self.assertEqual(res["login"]["code"], 235, res)
        files = self.srv.wait_mail("example.org", "carol", 1)
        self.assertEqual(len(files), 1)
        with open(files[0], "rb") as f:
            self.assertRegex(f.read(), rb"with ESMTPSA \(TLSv1\.[23]")
        asked = self.dv.log_lines("client in: AUTH", "LOGIN", "service=smtp")
        self.assertEqual(len(asked), 1, self.dv.log_since())
        self.assertTrue(self.dv.log_lines("client passdb out: OK", "user=bob@example.org"),
                        self.dv.log_since())

    def test_auth_on_loopback_without_tls_is_checked_by_dovecot(self):
        rs = self.ok(self.sub([["auth_plain", "alice@example.org",
                                USERS["alice@example.org"]]], host="127.0.0.1"))
        self.assertEqual(self.ehlo_line(rs[1], "AUTH"), "AUTH PLAIN LOGIN", rs[1])
        self.assertCode(rs[2], 235, "2.7.0")
        asked = self.dv.log_lines("client in: AUTH", "service=smtp")
        self.assertEqual(len(asked), 1, self.dv.log_since())
        self.assertIn("lip=127.0.0.1", asked[0])
        # loopback traffic never leaves the host: secured, as Dovecot itself counts it
        self.assertRegex(asked[0], r"\tsecured(\t|$)")

    def test_the_account_name_dovecot_gives_is_the_authenticated_user(self):
        # Dovecot's auth_username_format (%Lu) lower-cases; its OK names the account
        rs = self.ok(self.sub(STARTTLS + [["auth_plain", "Alice@Example.ORG",
                                           USERS["alice@example.org"]]]))
        self.assertCode(rs[4], 235, "2.7.0")
        self.assertRegex(self.imsd_log(), r"event=auth-ok user=Alice@Example\.ORG "
                                          r"account=alice@example\.org mech=PLAIN")

    # ---- bad passwords and the rules of today

    def test_wrong_dovecot_password_gets_delayed_535_and_dovecot_says_mismatch(self):
        t0 = time.monotonic()
        rs = self.ok(self.sub(STARTTLS + [["auth_plain", "alice@example.org", "wrong"],
                                          ["cmd", "NOOP"]]))
        took = time.monotonic() - t0
        self.assertCode(rs[4], 535, "5.7.8")
        self.assertCode(rs[5], 250)
        self.assertGreaterEqual(took, 2.0, "a failure is answered after the delay")
        self.assertTrue(self.dv.log_lines("Password mismatch"), self.dv.log_since())
        self.assertRegex(self.imsd_log(), r"event=auth-failed user=alice@example\.org "
                                          r"mech=PLAIN failures=1")

    def test_unknown_user_gets_535(self):
        rs = self.ok(self.sub(STARTTLS + [["auth_plain", "nobody@example.org", "x"]]))
        self.assertCode(rs[4], 535, "5.7.8")
        self.assertTrue(self.dv.log_lines("unknown user"), self.dv.log_since())

    def test_auth_before_tls_on_587_gets_538_and_dovecot_is_not_asked(self):
        rs = self.ok(self.sub([["auth_plain", "alice@example.org", USERS["alice@example.org"]]]))
        self.assertCode(rs[2], 538, "5.7.11")
        self.assertEqual(self.dv.log_lines("client in: AUTH"), [], self.dv.log_since())

    def test_a_mechanism_dovecot_does_not_list_gets_504(self):
        rs = self.ok(self.sub(STARTTLS + [["cmd", "AUTH CRAM-MD5"]]))
        self.assertCode(rs[4], 504, "5.5.4")

    # ---- Dovecot away

    def test_dovecot_stopped_gives_454_then_auth_works_when_it_is_back(self):
        self.dv.stop()
        rs = self.ok(self.sub(STARTTLS + [["auth_plain", "alice@example.org",
                                           USERS["alice@example.org"]],
                                          ["cmd", "NOOP"]]))
        self.assertCode(rs[4], 454, "4.7.0")
        self.assertCode(rs[5], 250, msg="the session goes on")
        self.assertRegex(self.imsd_log(), r"event=auth-tempfail user=alice@example\.org "
                                          r"mech=PLAIN reason=")
        self.dv.start()
        self.dv.mark_log()
        rs = self.ok(self.sub(STARTTLS + [["auth_plain", "alice@example.org",
                                           USERS["alice@example.org"]]]))
        self.assertCode(rs[4], 235, "2.7.0")

    def test_a_dovecot_restart_between_logins_is_not_noticed(self):
        # the idle pooled connection dies with the old Dovecot; the next check opens a new one
        rs = self.ok(self.sub(STARTTLS + [["auth_plain", "bob@example.org",
                                           USERS["bob@example.org"]]]))
        self.assertCode(rs[4], 235)
        self.dv.stop()
        self.dv.start()
        self.dv.mark_log()
        rs = self.ok(self.sub(STARTTLS + [["auth_plain", "bob@example.org",
                                           USERS["bob@example.org"]]]))
        self.assertCode(rs[4], 235, "2.7.0")


class DovecotConfig(unittest.TestCase):
    """The Dovecot keys in the configuration: errors name file, line and key."""

    def check(self, text, files=None):
        import imsdtest
        d = tempfile.mkdtemp(prefix="imsd-dvconf-")
        self.addCleanup(shutil.rmtree, d, True)
        for name, content in (files or {}).items():
            with open(os.path.join(d, name), "w") as f:
                f.write(content)
        p = os.path.join(d, "imsd.conf")
        with open(p, "w") as f:
            f.write("spool_dir = %s/spool\nmail_dir = %s/mail\n" % (d, d) +
                    text.replace("DIR/", d + "/"))
        self.dir = d
        return p, imsdtest.run_cli(["check", "-c", p])

    def test_auth_backend_dovecot_is_printed_by_check(self):
        p, r = self.check("auth_backend = dovecot:unix:/run/dovecot/auth-client\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("auth_backend = dovecot:unix:/run/dovecot/auth-client\n", r.stdout)

    def test_auth_backend_default_is_file(self):
        p, r = self.check("")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("auth_backend = file  # default\n", r.stdout)

    def test_bad_auth_backend_names_file_line_and_key(self):
        p, r = self.check("\nauth_backend = dovecot:inet:127.0.0.1:12345\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:4: auth_backend: " % p, r.stderr)
        self.assertIn("is not file or dovecot:unix:PATH", r.stderr)

    def test_a_socket_path_too_long_for_a_unix_socket_is_refused(self):
        p, r = self.check("auth_backend = dovecot:unix:/%s\n" % ("d" * 120))
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:3: auth_backend: " % p, r.stderr)
        self.assertIn("longer than 107 bytes", r.stderr)

    def test_auth_users_file_beside_dovecot_is_an_error(self):
        p, r = self.check("auth_users_file = /etc/imsd/users\n"
                          "auth_backend = dovecot:unix:/run/dovecot/auth-client\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:4: auth_backend: auth_users_file is not used with auth_backend"
                      % p, r.stderr)

    def test_transport_map_is_read_and_checked_against_local_domains(self):
        p, r = self.check("local_domains = example.org lists.example.org\n"
                          "transport_map = DIR/transport\n",
                          {"transport": "# exceptions\nlists.example.org maildir\n"
                                        "example.org lmtp:unix:/run/dovecot/lmtp\n"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"transport_map = \S+/transport  # not yet in effect\n")
        p, r = self.check("local_domains = example.org\ntransport_map = DIR/transport\n",
                          {"transport": "\nelsewhere.example lmtp:inet:127.0.0.1:24\n"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:4: transport_map: %s/transport:2: elsewhere.example is not in "
                      "local_domains" % (p, self.dir), r.stderr)

    def test_a_bad_transport_map_line_names_the_map_its_line_and_the_key(self):
        p, r = self.check("local_domains = example.org\ntransport_map = DIR/transport\n",
                          {"transport": "example.org lmtp:tcp:127.0.0.1:24\n"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:4: transport_map: %s/transport:1: \"lmtp:tcp:127.0.0.1:24\" is not "
                      "maildir, lmtp:unix:PATH or lmtp:inet:HOST:PORT" % (p, self.dir), r.stderr)

    def test_a_missing_transport_map_is_an_error(self):
        p, r = self.check("transport_map = DIR/nonexistent\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:3: transport_map: " % p, r.stderr)
        self.assertIn("nonexistent", r.stderr)

    def test_lmtp_mailbox_transport_is_marked_not_yet_in_effect(self):
        p, r = self.check("mailbox_transport = lmtp:inet:[::1]:24\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("mailbox_transport = lmtp:inet:[::1]:24  # not yet in effect\n", r.stdout)


if __name__ == "__main__":
    unittest.main()
