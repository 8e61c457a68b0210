"""STARTTLS and the loopback policy (SPEC.md, first section; issue 3), implicit TLS (smtps),
and certificate configuration errors.

Each class runs one imsd inside its own network namespace (netns.py) listening on 0.0.0.0 and
[::]; clients run inside the namespace too: tls_client.py (Python ssl/smtplib) and
`openssl s_client -starttls smtp`. Without root these tests are skipped, with the reason.
"""

import os
import re
import signal
import subprocess
import time
import unittest

import imsdtest
import netns
from imsdtest import ImsdCase, read_bytes, run_cli, split_delivered, wait_for
from netns import NS_ADDR, NS_ADDR6, NsCase, PASSWORD, PORT, SERVER_NAME, SMTPS_PORT

LOOPBACK_454 = ("454 4.7.0 TLS not available on loopback connections; "
                "connect to a non-loopback address of this server")
NO_CERT_454 = "454 4.7.0 TLS not available: no certificate configured"

EHLO_AND_QUIT = [["read"], ["cmd", "EHLO client.imsd.test"], ["cmd", "QUIT"]]


class TlsChecks:
    """Shared helpers for the classes below."""

    def ehlo_at(self, host, **kw):
        """EHLO reply (dict) for a plaintext connection to host, after checking the greeting."""
        rs = self.ok(self.raw(host, EHLO_AND_QUIT, **kw))
        self.assertCode(rs[0], 220)
        self.assertCode(rs[1], 250)
        return rs[1]

    def assertExplainAgrees(self, address, offered):
        """`imsd explain-tls -c CONF address` says yes/no exactly as the server behaved."""
        word, text = self.explain(address)
        self.assertEqual(word, "yes" if offered else "no",
                         "server %s STARTTLS at %s but explain-tls says:\n%s"
                         % ("offered" if offered else "did not offer", address, text))
        self.assertGreater(len(text.splitlines()[0].split()), 1,
                           "explain-tls gives no reason: %r" % text)
        return text

    def starttls_session(self, host, after, **kw):
        """greeting, EHLO (STARTTLS offered), STARTTLS 220, handshake, then the steps after."""
        res = self.raw(host, [["read"], ["cmd", "EHLO client.imsd.test"], ["cmd", "STARTTLS"],
                              ["starttls"]] + after, **kw)
        rs = self.ok(res)
        self.assertIn("STARTTLS", self.ehlo_keywords(rs[1]), rs[1])
        self.assertCode(rs[2], 220, "2.0.0")
        return res, rs[3:]


class StartTlsAtNonLoopbackAddress(TlsChecks, NsCase):
    """A certificate is configured and the client connects to 198.51.100.10 (or 2001:db8::10):
    STARTTLS is offered and works, with the RFC 3207 rules."""

    def test_ehlo_at_non_loopback_address_offers_starttls_and_handshake_verifies(self):
        res, after = self.starttls_session(NS_ADDR, [["cmd", "EHLO client.imsd.test"],
                                                     ["cmd", "QUIT"]])
        self.assertEqual(res["local"], NS_ADDR)
        tls = res["tls"]
        self.assertIn(tls["version"], ("TLSv1.2", "TLSv1.3"), tls)
        self.assertEqual(tls["subject"], "commonName=" + SERVER_NAME)   # verified via CAfile
        self.assertCode(after[0], 250)
        self.assertCode(after[1], 221)

    def test_ehlo_at_ipv6_non_loopback_address_offers_starttls_and_handshake_works(self):
        res, after = self.starttls_session(NS_ADDR6, [["cmd", "EHLO client.imsd.test"],
                                                      ["cmd", "QUIT"]])
        self.assertEqual(res["local"], NS_ADDR6)
        self.assertCode(after[0], 250)
        self.assertNotIn("STARTTLS", self.ehlo_keywords(after[0]))

    def test_openssl_s_client_starttls_handshake_completes_and_server_answers_ehlo(self):
        p = self.ns.run(["openssl", "s_client", "-starttls", "smtp", "-name", "sclient.imsd.test",
                         "-connect", "%s:%d" % (NS_ADDR, PORT), "-CAfile", self.cert,
                         "-verify_hostname", SERVER_NAME, "-verify_return_error",
                         "-crlf", "-ign_eof"],
                        input="EHLO sclient.imsd.test\nQUIT\n")
        out = p.stdout
        what = "openssl s_client (status %d):\n%s\nstderr:\n%s" % (p.returncode, out, p.stderr)
        self.assertEqual(p.returncode, 0, what)
        self.assertRegex(out, r"New, TLSv1\.[23], Cipher is \S+", what)
        self.assertIn("Verify return code: 0 (ok)", out, what)
        # what the server said after the handshake: our EHLO's reply, then QUIT's
        post = out[out.index("Verify return code"):]
        ehlo = re.findall(r"^250[- ].*$", post, re.M)
        self.assertTrue(ehlo and ehlo[0].startswith("250-" + SERVER_NAME), what)
        self.assertTrue(any(l.startswith("250 ") for l in ehlo), what)
        self.assertNotIn("STARTTLS", "\n".join(ehlo), "EHLO under TLS offers STARTTLS: " + what)
        self.assertIn("250-AUTH PLAIN LOGIN", ehlo, "AUTH is offered under TLS: " + what)
        self.assertRegex(post, r"(?m)^221 ", what)

    def test_ehlo_after_handshake_lacks_starttls_and_session_is_reset(self):
        _, after = self.starttls_session(NS_ADDR, [
            ["cmd", "MAIL FROM:<early@example.org>"],     # before EHLO: the session was reset
            ["cmd", "EHLO client.imsd.test"],
            ["cmd", "STARTTLS"],                          # second STARTTLS
            ["cmd", "MAIL FROM:<s@example.org>"],
            ["cmd", "QUIT"]])
        self.assertCode(after[0], 503, msg="MAIL before the post-TLS EHLO")
        self.assertCode(after[1], 250)
        self.assertNotIn("STARTTLS", self.ehlo_keywords(after[1]), after[1])
        self.assertCode(after[2], 503, "5.5.1", msg="second STARTTLS")
        self.assertCode(after[3], 250, msg="the session still works after the refused STARTTLS")
        self.assertCode(after[4], 221)

    def test_transaction_started_before_starttls_is_forgotten(self):
        rs = self.ok(self.raw(NS_ADDR, [
            ["read"], ["cmd", "EHLO client.imsd.test"], ["cmd", "MAIL FROM:<before@example.org>"],
            ["cmd", "STARTTLS"], ["starttls"], ["cmd", "EHLO client.imsd.test"],
            ["cmd", "RCPT TO:<alice@localhost>"], ["cmd", "QUIT"]]))
        self.assertCode(rs[2], 250)
        self.assertCode(rs[3], 220)
        self.assertCode(rs[5], 503, msg="RCPT after TLS must not see the MAIL from before TLS")

    def test_starttls_with_an_argument_gets_501(self):
        rs = self.ok(self.raw(NS_ADDR, [["read"], ["cmd", "EHLO client.imsd.test"],
                                        ["cmd", "STARTTLS now"], ["cmd", "NOOP"],
                                        ["cmd", "QUIT"]]))
        self.assertCode(rs[2], 501, "5.5.4")
        self.assertCode(rs[3], 250, msg="still plaintext SMTP after the 501")

    def test_pipelined_rset_behind_starttls_is_discarded_not_answered(self):
        # CVE-2011-0411 class: "STARTTLS\r\nRSET\r\n" in one write; after the handshake the
        # first reply must be the NOOP's, and nothing may come before it.
        res = self.raw(NS_ADDR, [["read"], ["cmd", "EHLO client.imsd.test"],
                                 ["send", "STARTTLS\r\nRSET\r\n"], ["read"], ["starttls"],
                                 ["silent", 1.0], ["cmd", "NOOP"], ["cmd", "QUIT"],
                                 ["until_close"]])
        rs = self.ok(res)
        self.assertCode(rs[2], 220, "2.0.0", msg="reply to the pipelined STARTTLS")
        silent = [e for e in res["events"] if e["op"] == "silent"][0]
        self.assertEqual(silent["data"], "", "the server said something unprompted after the "
                                             "handshake (the RSET's reply?)")
        self.assertFalse(silent["eof"])
        self.assertCode(rs[3], 250, msg="the first reply after the handshake is the NOOP's")
        self.assertTrue(rs[3]["lines"][0].startswith("250"), rs[3])
        self.assertCode(rs[4], 221, msg="QUIT's reply comes next: no extra reply in between")
        self.assertEqual([e for e in res["events"] if e["op"] == "until_close"][0]["replies"], [])
        self.assertRegex(self.srv.log_text(), r"event=starttls-discarded-input bytes=6\b")

    def test_pipelined_transaction_behind_starttls_is_not_executed(self):
        # a whole injected transaction, valid even after the post-TLS reset (it starts with
        # EHLO): if it were executed its replies would arrive and the message would land
        injected = ("STARTTLS\r\nEHLO injected.example\r\nMAIL FROM:<evil@example.org>\r\n"
                    "RCPT TO:<injected@localhost>\r\nDATA\r\nSubject: injected\r\n\r\n"
                    "smuggled\r\n.\r\n")
        res = self.raw(NS_ADDR, [["read"], ["cmd", "EHLO client.imsd.test"],
                                 ["send", injected], ["read"], ["starttls"], ["silent", 1.0],
                                 ["cmd", "EHLO client.imsd.test"],
                                 ["cmd", "RCPT TO:<alice@localhost>"], ["cmd", "QUIT"]])
        rs = self.ok(res)
        self.assertCode(rs[2], 220)
        silent = [e for e in res["events"] if e["op"] == "silent"][0]
        self.assertEqual(silent["data"], "", "replies to the injected commands")
        self.assertCode(rs[3], 250)
        self.assertTrue(rs[3]["lines"][0].startswith("250-" + netns.SERVER_NAME), rs[3])
        self.assertCode(rs[4], 503, msg="no MAIL is in effect after the handshake")
        self.assertCode(rs[5], 221)
        self.assertRegex(self.srv.log_text(),
                         r"event=starttls-discarded-input bytes=%d\b" % (len(injected) - 10))
        self.assertNoMail(self.srv, "localhost", "injected")

    def test_starttls_depends_on_address_connected_to_not_client_address(self):
        # client bound to 127.0.0.1, connecting to 198.51.100.10: offered
        rs = self.ok(self.raw(NS_ADDR, EHLO_AND_QUIT, source="127.0.0.1"))
        self.assertIn("STARTTLS", self.ehlo_keywords(rs[1]))
        # client bound to 198.51.100.10, connecting to 127.0.0.1: not offered
        rs = self.ok(self.raw("127.0.0.1", EHLO_AND_QUIT, source=NS_ADDR))
        self.assertNotIn("STARTTLS", self.ehlo_keywords(rs[1]))

    def test_explain_tls_says_yes_for_non_loopback_addresses_as_the_server_did(self):
        for addr in (NS_ADDR, NS_ADDR6):
            offered = "STARTTLS" in self.ehlo_keywords(self.ehlo_at(addr))
            self.assertTrue(offered, addr)
            text = self.assertExplainAgrees(addr, offered)
            self.assertIn(SERVER_NAME, text, "explain-tls names the certificate's subject")

    def test_message_over_starttls_lands_in_maildir_with_esmtps_received(self):
        res = self.smtp(NS_ADDR, starttls=True, mail="tls-sender@example.org",
                        rcpt=["alice@localhost"], subject="over starttls")
        self.assertNotIn("error", res, res)
        self.assertIn("starttls", res["features"], res)
        self.assertNotIn("starttls", res["features_tls"], res)
        self.assertEqual(res["refused"], {})
        f = self.srv.wait_mail("localhost", "alice", 1)
        content = [read_bytes(x) for x in f]
        mine = [c for c in content if b"Subject: over starttls" in c]
        self.assertEqual(len(mine), 1, content)
        _, received, _ = split_delivered(mine[0])
        self.assertRegex(received, rb"with ESMTPS\b", received)
        self.assertNotRegex(received, rb"ESMTPSA", "no AUTH in this session")
        tls = res["tls"]
        self.assertIn(tls["version"].encode(), received, received)
        self.assertIn(tls["cipher"].encode(), received, received)

    def test_tls_versions_below_1_2_are_refused(self):
        p = self.ns.run(["openssl", "s_client", "-starttls", "smtp",
                         "-connect", "%s:%d" % (NS_ADDR, PORT), "-tls1_1",
                         "-cipher", "DEFAULT:@SECLEVEL=0"], input="")
        what = "s_client -tls1_1:\n%s\n%s" % (p.stdout, p.stderr)
        self.assertNotEqual(p.returncode, 0, what)
        self.assertNotRegex(p.stdout, r"New, TLSv1(\.1)?, Cipher is [A-Z]", what)
        self.assertNotIn("no protocols available", p.stderr,
                         "the client refused by itself; the test proves nothing: " + what)
        self.assertIn("alert protocol version", p.stderr, "the server's alert: " + what)

    def test_client_initiated_renegotiation_is_refused(self):
        # s_client's "R" command renegotiates (TLS 1.2); a server that refuses ends the
        # connection, so s_client exits by itself while its stdin is still open.
        p = subprocess.Popen(self.ns.argv(["openssl", "s_client", "-starttls", "smtp",
                                           "-connect", "%s:%d" % (NS_ADDR, PORT), "-tls1_2",
                                           "-crlf"]),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            p.stdin.write("R\n")         # alone: s_client only sees a command letter first
            p.stdin.flush()
            try:
                p.wait(10)
                exited = True
            except subprocess.TimeoutExpired:
                exited = False
        finally:
            if p.poll() is None:
                p.kill()                 # our own child, by pid
            out, err = p.communicate(timeout=10)
        what = "s_client -tls1_2 with R:\n%s\n%s" % (out[-1500:], err[-1500:])
        self.assertRegex(out, r"New, TLSv1\.2, Cipher is [A-Z]", what)
        self.assertIn("RENEGOTIATING", out + err, what)
        self.assertTrue(exited, "the connection is still open 10 s after a renegotiation "
                                "request: " + what)


class NoStartTlsAtLoopback(TlsChecks, NsCase):
    """The same configuration; a client connecting to 127.0.0.1 or ::1 is not offered STARTTLS
    and gets the 454 explanation when it tries anyway."""

    def test_ehlo_at_127_0_0_1_does_not_offer_starttls(self):
        self.assertNotIn("STARTTLS", self.ehlo_keywords(self.ehlo_at("127.0.0.1")))

    def test_ehlo_at_other_127_address_and_ipv6_loopback_does_not_offer_starttls(self):
        for addr in ("127.0.0.2", "::1"):
            self.assertNotIn("STARTTLS", self.ehlo_keywords(self.ehlo_at(addr)), addr)

    def test_starttls_at_loopback_gets_454_with_explanation_and_is_logged(self):
        for addr in ("127.0.0.1", "::1"):
            rs = self.ok(self.raw(addr, [["read"], ["cmd", "EHLO client.imsd.test"],
                                         ["cmd", "STARTTLS"], ["cmd", "NOOP"],
                                         ["cmd", "QUIT"]]))
            self.assertEqual(rs[2]["lines"], [LOOPBACK_454], addr)
            self.assertCode(rs[3], 250, msg="the session continues in plaintext")
        log = self.srv.log_text()
        self.assertRegex(log, r"event=starttls-refused reason=loopback local=127\.0\.0\.1\b")
        self.assertRegex(log, r"event=starttls-refused reason=loopback local=::1\b")

    def test_explain_tls_says_no_for_loopback_as_the_server_did(self):
        for addr in ("127.0.0.1", "::1"):
            offered = "STARTTLS" in self.ehlo_keywords(self.ehlo_at(addr))
            self.assertFalse(offered, addr)
            text = self.assertExplainAgrees(addr, offered)
            self.assertIn("loopback", text)
        # an IPv4-mapped loopback address is loopback too (SPEC: ::ffff:127.x.y.z)
        self.assertEqual(self.explain("::ffff:127.0.0.1")[0], "no")
        # the same configuration says yes for the non-loopback address
        self.assertExplainAgrees(NS_ADDR, True)


class StartTlsAtLoopbackWhenEnabled(TlsChecks, NsCase):
    """tls_loopback = yes: STARTTLS is offered on loopback connections too."""

    server_conf = {"tls_loopback": "yes"}

    def test_ehlo_at_127_0_0_1_offers_starttls_and_handshake_works(self):
        res, after = self.starttls_session("127.0.0.1", [["cmd", "EHLO client.imsd.test"],
                                                         ["cmd", "QUIT"]])
        self.assertEqual(res["local"], "127.0.0.1")
        self.assertIn(res["tls"]["version"], ("TLSv1.2", "TLSv1.3"))
        self.assertCode(after[0], 250)
        self.assertNotIn("STARTTLS", self.ehlo_keywords(after[0]))

    def test_openssl_s_client_starttls_at_loopback_completes(self):
        p = self.ns.run(["openssl", "s_client", "-starttls", "smtp",
                         "-connect", "127.0.0.1:%d" % PORT, "-CAfile", self.cert,
                         "-verify_hostname", SERVER_NAME, "-verify_return_error",
                         "-crlf", "-ign_eof"], input="EHLO sclient.imsd.test\nQUIT\n")
        what = "openssl s_client (status %d):\n%s\n%s" % (p.returncode, p.stdout, p.stderr)
        self.assertEqual(p.returncode, 0, what)
        self.assertRegex(p.stdout, r"New, TLSv1\.[23], Cipher is \S+", what)
        self.assertRegex(p.stdout, r"(?m)^250 ", what)

    def test_explain_tls_says_yes_for_loopback_as_the_server_did(self):
        for addr in ("127.0.0.1", "::1", NS_ADDR):
            offered = "STARTTLS" in self.ehlo_keywords(self.ehlo_at(addr))
            self.assertTrue(offered, addr)
            self.assertExplainAgrees(addr, offered)


class NoCertificateConfigured(TlsChecks, NsCase):
    """Without tls_cert_file/tls_key_file STARTTLS is offered nowhere and answered with 454."""

    with_cert = False

    def test_starttls_not_offered_at_non_loopback_address(self):
        self.assertNotIn("STARTTLS", self.ehlo_keywords(self.ehlo_at(NS_ADDR)))

    def test_starttls_at_non_loopback_address_gets_454_no_certificate(self):
        rs = self.ok(self.raw(NS_ADDR, [["read"], ["cmd", "EHLO client.imsd.test"],
                                        ["cmd", "STARTTLS"], ["cmd", "NOOP"], ["cmd", "QUIT"]]))
        self.assertEqual(rs[2]["lines"], [NO_CERT_454])
        self.assertCode(rs[3], 250)

    def test_explain_tls_says_no_without_certificate_as_the_server_did(self):
        for addr in (NS_ADDR, "127.0.0.1"):
            offered = "STARTTLS" in self.ehlo_keywords(self.ehlo_at(addr))
            self.assertFalse(offered, addr)
            self.assertExplainAgrees(addr, offered)


class ImplicitTlsOnSmtpsListener(TlsChecks, NsCase):
    """smtps_listen: the TLS handshake comes first, then the greeting, on any address
    (the loopback policy concerns STARTTLS only)."""

    server_conf = {"smtps_listen": "0.0.0.0:%d, [::]:%d" % (SMTPS_PORT, SMTPS_PORT)}

    def test_greeting_arrives_only_after_the_handshake(self):
        for addr in ("127.0.0.1", NS_ADDR):
            res = self.raw(addr, [["silent", 1.0], ["starttls"], ["read"],
                                  ["cmd", "EHLO client.imsd.test"], ["cmd", "QUIT"]],
                           port=SMTPS_PORT)
            rs = self.ok(res)
            silent = res["events"][0]
            self.assertEqual(silent["data"], "", "plaintext before the handshake at %s" % addr)
            self.assertIn(res["tls"]["version"], ("TLSv1.2", "TLSv1.3"))
            self.assertCode(rs[0], 220, msg="greeting under TLS at %s" % addr)
            self.assertCode(rs[1], 250)
            kws = self.ehlo_keywords(rs[1])
            self.assertNotIn("STARTTLS", kws, "TLS is already active")
            self.assertIn("AUTH", kws, "AUTH is offered under implicit TLS")

    def test_smtplib_smtp_ssl_sends_a_message_at_loopback_and_non_loopback(self):
        for addr, user in (("127.0.0.1", "alice"), (NS_ADDR, "bob")):
            res = self.smtp(addr, port=SMTPS_PORT, smtps=True, login=(user, PASSWORD),
                            mail="%s@localhost" % user, rcpt=["carol@localhost"],
                            subject="smtps from %s" % user)
            self.assertNotIn("error", res, res)
            self.assertEqual(res["refused"], {})
        files = self.srv.wait_mail("localhost", "carol", 2)
        for f in files:
            _, received, _ = split_delivered(read_bytes(f))
            self.assertRegex(received, rb"with ESMTPSA\b", received)

    def test_plain_listener_still_speaks_plaintext_first(self):
        rs = self.ok(self.raw(NS_ADDR, EHLO_AND_QUIT))
        self.assertIn("STARTTLS", self.ehlo_keywords(rs[1]))


class CertificateReload(TlsChecks, NsCase):
    """SIGHUP re-reads the certificate; a reload with a bad one keeps the old and says so."""

    def reload(self, **conf):
        """Change the configuration, SIGHUP, and wait for the server's reload log line."""
        before = self.srv.log_text().count("event=reload")
        self.srv.set_conf(**conf)
        self.srv.send_signal(signal.SIGHUP)
        ok = wait_for(lambda: self.srv.log_text().count("event=reload") > before, 5)
        self.assertTrue(ok, "no event=reload... log line within 5 s of SIGHUP")
        time.sleep(0.2)
        return self.srv.log_text()

    def served_cert_at(self, host):
        """The SHA-256 of the certificate the server presents after STARTTLS at host."""
        res, _ = self.starttls_session(host, [["cmd", "QUIT"]], cafile=None)
        return res["tls"]["sha256"]

    def test_reload_with_missing_certificate_keeps_the_old_one_and_logs_why(self):
        missing = os.path.join(self.dir, "missing.crt")
        try:
            log = self.reload(tls_cert_file=missing)
            self.assertRegex(log, r"event=reload-failed .*%s" % re.escape(missing))
            self.assertEqual(self.served_cert_at(NS_ADDR), netns.cert_sha256(self.cert),
                             "the old certificate is still served")
        finally:
            self.reload(tls_cert_file=self.cert)

    def test_reload_with_new_certificate_serves_it_to_new_sessions(self):
        d = os.path.join(self.dir, "new")
        os.makedirs(d, exist_ok=True)
        cert, key = netns.make_cert(d, name="mx2.imsd.test")
        try:
            log = self.reload(tls_cert_file=cert, tls_key_file=key)
            self.assertIn("event=reloaded", log)
            self.assertEqual(self.served_cert_at(NS_ADDR), netns.cert_sha256(cert),
                             "the new certificate is served after SIGHUP")
        finally:
            self.reload(tls_cert_file=self.cert, tls_key_file=self.key)
        self.assertEqual(self.served_cert_at(NS_ADDR), netns.cert_sha256(self.cert))


class CertificateConfigurationErrors(ImsdCase):
    """`imsd check` rejects unusable certificate settings, naming the key and the file."""

    def setUp(self):
        super().setUp()
        imsdtest.need_tool("openssl", "openssl")
        self.cert, self.key = netns.make_cert(self.tmp)

    def check(self, **conf):
        srv = self.server(start=False, **conf)
        return run_cli(["check", "-c", srv.conf_path]), srv

    def test_check_with_missing_certificate_file_exits_1_naming_key_and_file(self):
        missing = os.path.join(self.tmp, "no-such.crt")
        p, _ = self.check(tls_cert_file=missing, tls_key_file=self.key)
        what = "stdout %r stderr %r" % (p.stdout, p.stderr)
        self.assertEqual(p.returncode, 1, what)
        self.assertIn("tls_cert_file", p.stderr, what)
        self.assertIn(missing, p.stderr, what)

    def test_check_with_missing_key_file_exits_1_naming_key_and_file(self):
        missing = os.path.join(self.tmp, "no-such.key")
        p, _ = self.check(tls_cert_file=self.cert, tls_key_file=missing)
        what = "stdout %r stderr %r" % (p.stdout, p.stderr)
        self.assertEqual(p.returncode, 1, what)
        self.assertIn("tls_key_file", p.stderr, what)
        self.assertIn(missing, p.stderr, what)

    def test_check_with_key_not_matching_certificate_exits_1(self):
        other = os.path.join(self.tmp, "other")
        os.mkdir(other)
        _, other_key = netns.make_cert(other)
        p, _ = self.check(tls_cert_file=self.cert, tls_key_file=other_key)
        what = "stdout %r stderr %r" % (p.stdout, p.stderr)
        self.assertEqual(p.returncode, 1, what)
        self.assertTrue(other_key in p.stderr or self.cert in p.stderr, what)

    def test_check_with_good_certificate_exits_0(self):
        p, _ = self.check(tls_cert_file=self.cert, tls_key_file=self.key)
        self.assertEqual(p.returncode, 0, "stdout %r stderr %r" % (p.stdout, p.stderr))

    def test_run_with_missing_certificate_file_refuses_to_start(self):
        missing = os.path.join(self.tmp, "no-such.crt")
        srv = self.server(start=False, tls_cert_file=missing, tls_key_file=self.key)
        try:
            p = subprocess.run([srv.binary, "run", "-c", srv.conf_path],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=10, cwd=srv.dir)
        except subprocess.TimeoutExpired:
            self.fail("imsd run started (and was killed after 10 s) with a missing certificate")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(missing, p.stderr)


if __name__ == "__main__":
    unittest.main()
