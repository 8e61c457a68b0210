"""SMTP AUTH (RFC 4954) and submission (RFC 6409) under the loopback policy (issue 3).

AUTH PLAIN/LOGIN is offered on loopback connections without TLS and elsewhere only under TLS;
on a plaintext non-loopback connection it is refused with 538 5.7.11. Users come from
auth_users_file: alice has a yescrypt ($y$) hash, bob a SHA-512 crypt ($6$) hash (netns.USERS).
Each class runs one imsd inside its own network namespace (netns.py); without root the tests
are skipped, with the reason.
"""

import re
import unittest

from imsdtest import read_bytes, split_delivered
from netns import (NS_ADDR, NS_ADDR6, NsCase, PASSWORD, SUBMISSION_PORT, plain_token)

EHLO = ["cmd", "EHLO client.imsd.test"]


def auth_plain(user, password=PASSWORD):
    return ["auth_plain", user, password]


class AuthChecks:

    def received_of(self, user, subject):
        files = self.srv.wait_mail("localhost", user, 1)
        mine = [read_bytes(f) for f in files if b"Subject: %s\n" % subject.encode()
                in read_bytes(f)]
        self.assertEqual(len(mine), 1, "one message %r for %s" % (subject, user))
        return split_delivered(mine[0])[1]


class AuthOnLoopbackWithoutTls(AuthChecks, NsCase):
    """A client connecting to 127.0.0.1 (or ::1) gets AUTH without TLS."""

    def test_ehlo_at_loopback_offers_auth_plain_login_without_tls(self):
        for addr in ("127.0.0.1", "::1"):
            rs = self.ok(self.raw(addr, [["read"], EHLO, ["cmd", "QUIT"]]))
            self.assertEqual(self.ehlo_line(rs[1], "AUTH"), "AUTH PLAIN LOGIN",
                             "%s: %r" % (addr, rs[1]))
            self.assertNotIn("STARTTLS", self.ehlo_keywords(rs[1]))

    def test_auth_plain_with_yescrypt_hash_and_good_password_gets_235(self):
        rs = self.ok(self.raw("127.0.0.1", [["read"], EHLO, auth_plain("alice"),
                                            ["cmd", "QUIT"]]))
        self.assertCode(rs[2], 235, "2.7.0")

    def test_auth_login_with_sha512_hash_and_good_password_gets_235(self):
        res = self.raw("127.0.0.1", [["read"], EHLO, ["auth_login", "bob", PASSWORD],
                                     ["cmd", "QUIT"]])
        rs = self.ok(res)
        steps = [e for e in res["events"] if e["op"] == "auth_login"][0]["replies"]
        self.assertEqual([r["code"] for r in steps], [334, 334, 235], steps)
        self.assertCode(rs[2], 235, "2.7.0")

    def test_auth_plain_as_two_steps_with_empty_initial_challenge_gets_235(self):
        rs = self.ok(self.raw("127.0.0.1", [["read"], EHLO, ["cmd", "AUTH PLAIN"],
                                            ["cmd", plain_token("alice", PASSWORD)],
                                            ["cmd", "QUIT"]]))
        self.assertCode(rs[2], 334)
        self.assertCode(rs[3], 235, "2.7.0")

    def test_sasl_lines_of_12288_octets_are_read_and_12289_get_500_5_5_6(self):
        """RFC 4954 §4 through the real server: a line of the AUTH exchange of 12,288
        octets (besides CRLF) is read and judged as SASL, one of 12,289 fails the AUTH
        command with 500 5.5.6; as the answer to 334 and as AUTH with an initial response.
        The session goes on: a good AUTH after them gets 235."""
        resp_ok, resp_long = "A" * 12288, "A" * 12289      # base64 of NULs: not PLAIN
        cmd_ok = "AUTH PLAIN " + "A" * (12288 - 11)
        cmd_long = "AUTH PLAIN " + "A" * (12289 - 11)
        self.assertEqual([len(resp_ok), len(cmd_ok), len(resp_long), len(cmd_long)],
                         [12288, 12288, 12289, 12289])
        rs = self.ok(self.raw("127.0.0.1", [
            ["read"], EHLO,
            ["cmd", "AUTH PLAIN"], ["cmd", resp_ok],
            ["cmd", "AUTH PLAIN"], ["cmd", resp_long],
            ["cmd", cmd_ok], ["cmd", cmd_long],
            auth_plain("alice"), ["cmd", "QUIT"]]))
        self.assertCode(rs[2], 334)
        self.assertCode(rs[3], 501, "5.5.2", msg="12288 octets answering 334: read, decoded")
        self.assertIn("Malformed PLAIN", rs[3]["lines"][0])
        self.assertCode(rs[4], 334)
        self.assertCode(rs[5], 500, "5.5.6", msg="12289 octets answering 334")
        self.assertCode(rs[6], 501, "5.5.2", msg="a 12288-octet AUTH command: read as SASL")
        self.assertIn("Cannot decode", rs[6]["lines"][0])
        self.assertCode(rs[7], 500, "5.5.6", msg="a 12289-octet AUTH command")
        self.assertCode(rs[8], 235, "2.7.0")
        self.assertEqual(len(re.findall(r"event=bad-input reason=auth-line-too-long",
                                        self.srv.log_text())), 2)

    def test_second_auth_after_success_gets_503(self):
        rs = self.ok(self.raw("127.0.0.1", [["read"], EHLO, auth_plain("alice"),
                                            auth_plain("alice"), ["cmd", "QUIT"]]))
        self.assertCode(rs[2], 235)
        self.assertCode(rs[3], 503)

    def test_message_after_auth_at_loopback_has_esmtpa_received(self):
        res = self.smtp("127.0.0.1", login=("alice", PASSWORD), mail="alice@localhost",
                        rcpt=["dave@localhost"], subject="esmtpa at loopback")
        self.assertNotIn("error", res, res)
        self.assertEqual(res["login"]["code"], 235, res)
        received = self.received_of("dave", "esmtpa at loopback")
        self.assertRegex(received, rb"with ESMTPA\b", received)

    def test_bad_passwords_get_delayed_535_and_third_failure_disconnects_with_421(self):
        res = self.raw("127.0.0.1", [["read"], EHLO,
                                     auth_plain("alice", "wrong"),
                                     auth_plain("nosuchuser", PASSWORD),
                                     ["auth_login", "bob", "wrong"],
                                     ["until_close"]], timeout=20)
        rs = self.ok(res)
        for r in rs[2:4]:
            self.assertCode(r, 535, "5.7.8")
            self.assertGreaterEqual(r["elapsed"], 1.5, "failed AUTH is answered after a delay")
        third = [e for e in res["events"] if e["op"] == "auth_login"][0]["replies"]
        self.assertEqual([r["code"] for r in third[:2]], [334, 334], third)
        last = third[2:] + [e for e in res["events"] if e["op"] == "until_close"][0]["replies"]
        codes = [r["code"] for r in last]
        # the third failure: the 535 may precede the 421, then the server closes
        self.assertIn(codes, ([421], [535, 421]), last)
        self.assertCode(last[-1], 421, "4.7.0")
        self.assertNotRegex(self.srv.log_text(), re.escape(PASSWORD),
                            "a password must never be logged")


class AuthRequiresTlsAtNonLoopback(AuthChecks, NsCase):
    """A client connecting to 198.51.100.10 gets AUTH only after STARTTLS."""

    def test_auth_not_offered_before_tls_at_non_loopback_address(self):
        for addr in (NS_ADDR, NS_ADDR6):
            rs = self.ok(self.raw(addr, [["read"], EHLO, ["cmd", "QUIT"]]))
            self.assertNotIn("AUTH", self.ehlo_keywords(rs[1]), addr)
            self.assertIn("STARTTLS", self.ehlo_keywords(rs[1]), addr)

    def test_auth_offer_depends_on_address_connected_to_not_client_address(self):
        # client bound to 127.0.0.1, connecting to 198.51.100.10: no AUTH without TLS
        rs = self.ok(self.raw(NS_ADDR, [["read"], EHLO, auth_plain("alice"), ["cmd", "QUIT"]],
                              source="127.0.0.1"))
        self.assertNotIn("AUTH", self.ehlo_keywords(rs[1]))
        self.assertCode(rs[2], 538, "5.7.11")
        # client bound to 198.51.100.10, connecting to 127.0.0.1: AUTH without TLS
        rs = self.ok(self.raw("127.0.0.1", [["read"], EHLO, auth_plain("alice"),
                                            ["cmd", "QUIT"]], source=NS_ADDR))
        self.assertIn("AUTH", self.ehlo_keywords(rs[1]))
        self.assertCode(rs[2], 235)

    def test_auth_before_tls_at_non_loopback_address_gets_538(self):
        rs = self.ok(self.raw(NS_ADDR, [["read"], EHLO, auth_plain("alice"),
                                        ["cmd", "AUTH LOGIN"], ["cmd", "NOOP"],
                                        ["cmd", "QUIT"]]))
        self.assertCode(rs[2], 538, "5.7.11", msg="AUTH PLAIN before TLS")
        self.assertCode(rs[3], 538, "5.7.11", msg="AUTH LOGIN before TLS")
        self.assertCode(rs[4], 250)
        self.assertNotRegex(self.srv.log_text(), re.escape(PASSWORD))

    def test_auth_after_starttls_with_yescrypt_hash_gets_235(self):
        res = self.raw(NS_ADDR, [["read"], EHLO, ["cmd", "STARTTLS"], ["starttls"], EHLO,
                                 auth_plain("alice"), ["cmd", "MAIL FROM:<alice@localhost>"],
                                 ["cmd", "QUIT"]])
        rs = self.ok(res)
        self.assertCode(rs[2], 220)
        self.assertEqual(self.ehlo_line(rs[3], "AUTH"), "AUTH PLAIN LOGIN", rs[3])
        self.assertCode(rs[4], 235, "2.7.0")
        self.assertCode(rs[5], 250)

    def test_smtplib_login_after_starttls_sends_message_with_esmtpsa_received(self):
        res = self.smtp(NS_ADDR, starttls=True, login=("bob", PASSWORD), auth_method="LOGIN",
                        mail="bob@localhost", rcpt=["erin@localhost"], subject="esmtpsa")
        self.assertNotIn("error", res, res)
        self.assertNotIn("auth", res["features"], "no AUTH before TLS: %r" % res)
        self.assertIn("auth", res["features_tls"], res)
        self.assertEqual(res["login"]["code"], 235, res)
        received = self.received_of("erin", "esmtpsa")
        self.assertRegex(received, rb"with ESMTPSA \(TLSv1\.[23] with cipher \S+ \(\d+ bits\)\)",
                         received)


class NoCertificateNoAuthAtNonLoopback(AuthChecks, NsCase):
    """Without a certificate AUTH is never possible at a non-loopback address, but still works
    on loopback."""

    with_cert = False

    def test_auth_at_non_loopback_without_certificate_gets_538(self):
        rs = self.ok(self.raw(NS_ADDR, [["read"], EHLO, auth_plain("alice"), ["cmd", "QUIT"]]))
        self.assertNotIn("AUTH", self.ehlo_keywords(rs[1]))
        self.assertCode(rs[2], 538, "5.7.11")

    def test_auth_at_loopback_without_certificate_gets_235(self):
        rs = self.ok(self.raw("127.0.0.1", [["read"], EHLO, auth_plain("alice"),
                                            ["cmd", "QUIT"]]))
        self.assertIn("AUTH", self.ehlo_keywords(rs[1]))
        self.assertCode(rs[2], 235)


class SubmissionRequiresAuth(AuthChecks, NsCase):
    """submission_listen: MAIL is refused with 530 5.7.0 until the client authenticated."""

    server_conf = {"submission_listen": "0.0.0.0:%d, [::]:%d" % (SUBMISSION_PORT,
                                                                 SUBMISSION_PORT)}

    def test_mail_before_auth_gets_530_and_is_accepted_after_auth_at_loopback(self):
        rs = self.ok(self.raw("127.0.0.1", [
            ["read"], EHLO, ["cmd", "MAIL FROM:<alice@localhost>"], auth_plain("alice"),
            ["cmd", "MAIL FROM:<alice@localhost>"], ["cmd", "RCPT TO:<frank@localhost>"],
            ["cmd", "DATA"],
            ["send", "From: <alice@localhost>\r\nSubject: submitted\r\n\r\nhi\r\n.\r\n"],
            ["read"], ["cmd", "QUIT"]], port=SUBMISSION_PORT))
        self.assertIn("AUTH", self.ehlo_keywords(rs[1]))
        self.assertCode(rs[2], 530, "5.7.0")
        self.assertIn("Authentication required", rs[2]["lines"][0])
        self.assertCode(rs[3], 235)
        self.assertEqual([r["code"] for r in rs[4:8]], [250, 250, 354, 250], rs[4:8])
        received = self.received_of("frank", "submitted")
        self.assertRegex(received, rb"with ESMTPA\b", received)

    def test_submission_at_non_loopback_needs_starttls_then_auth(self):
        rs = self.ok(self.raw(NS_ADDR, [
            ["read"], EHLO, ["cmd", "MAIL FROM:<bob@localhost>"], auth_plain("bob"),
            ["cmd", "STARTTLS"], ["starttls"], EHLO, ["cmd", "MAIL FROM:<bob@localhost>"],
            auth_plain("bob"), ["cmd", "MAIL FROM:<bob@localhost>"], ["cmd", "QUIT"]],
            port=SUBMISSION_PORT))
        self.assertIn("STARTTLS", self.ehlo_keywords(rs[1]))
        self.assertNotIn("AUTH", self.ehlo_keywords(rs[1]))
        self.assertCode(rs[2], 530, "5.7.0", msg="MAIL before AUTH, plaintext")
        self.assertCode(rs[3], 538, "5.7.11", msg="AUTH before TLS at a non-loopback address")
        self.assertCode(rs[4], 220)
        self.assertIn("AUTH", self.ehlo_keywords(rs[5]))
        self.assertCode(rs[6], 530, "5.7.0", msg="MAIL before AUTH, under TLS")
        self.assertCode(rs[7], 235, "2.7.0")
        self.assertCode(rs[8], 250)

    def test_smtplib_submission_with_starttls_and_login_delivers(self):
        res = self.smtp(NS_ADDR, port=SUBMISSION_PORT, starttls=True, login=("alice", PASSWORD),
                        mail="alice@localhost", rcpt=["grace@localhost"], subject="sub-tls")
        self.assertNotIn("error", res, res)
        received = self.received_of("grace", "sub-tls")
        self.assertRegex(received, rb"with ESMTPSA\b", received)

    def test_plain_smtp_listener_still_accepts_mail_without_auth(self):
        rs = self.ok(self.raw(NS_ADDR, [["read"], EHLO, ["cmd", "MAIL FROM:<x@example.org>"],
                                        ["cmd", "RCPT TO:<alice@localhost>"],
                                        ["cmd", "QUIT"]]))
        self.assertCode(rs[2], 250)
        self.assertCode(rs[3], 250)


if __name__ == "__main__":
    unittest.main()
