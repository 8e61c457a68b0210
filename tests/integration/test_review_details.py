"""Details from the outside review (issue 13, point 6): HELP lists only what is offered, the
server's TLS key exchange is elliptic-curve only, and message_size_limit counts what the client
sent, not imsd's own Received header."""

import subprocess

from imsdtest import ImsdCase
import netns


def help_text(c):
    return c.cmd("HELP").text


class HelpListsWhatIsOffered(ImsdCase):

    def test_help_without_tls_or_auth_lists_neither(self):
        srv = self.server()
        c = self.client(srv)
        c.ehlo()
        t = help_text(c)
        self.assertNotIn("STARTTLS", t)
        self.assertNotIn("AUTH", t)
        self.assertIn("EHLO HELO MAIL RCPT DATA", t)

    def test_help_at_loopback_with_a_certificate_lists_auth_but_not_starttls(self):
        cert, key = netns.make_cert(self.tmp)
        users = netns.write_users(self.tmp + "/users")
        srv = self.server(tls_cert_file=cert, tls_key_file=key, auth_users_file=users)
        c = self.client(srv)
        self.assertNotIn("STARTTLS", c.ehlo().text)
        t = help_text(c)
        self.assertNotIn("STARTTLS", t, "STARTTLS is not offered at loopback")
        self.assertIn("AUTH", t)

    def test_help_lists_starttls_where_it_is_offered(self):
        cert, key = netns.make_cert(self.tmp)
        srv = self.server(tls_cert_file=cert, tls_key_file=key, tls_loopback="yes")
        c = self.client(srv)
        self.assertIn("STARTTLS", c.ehlo().text)
        self.assertIn("STARTTLS", help_text(c))


class EllipticCurveKeyExchangeOnly(ImsdCase):

    def s_client(self, srv, *extra):
        return subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                               "127.0.0.1:%d" % srv.port, "-brief"] + list(extra),
                              input="QUIT\n", capture_output=True, text=True, timeout=30)

    def test_ffdhe_groups_are_refused_and_x25519_works(self):
        cert, key = netns.make_cert(self.tmp)
        srv = self.server(tls_cert_file=cert, tls_key_file=key, tls_loopback="yes")
        for ver in ("-tls1_3", "-tls1_2"):
            bad = self.s_client(srv, ver, "-groups", "ffdhe2048")
            self.assertNotEqual(bad.returncode, 0, ver + ": " + bad.stdout + bad.stderr)
            self.assertNotIn("CONNECTION ESTABLISHED", bad.stdout + bad.stderr)
        good = self.s_client(srv, "-tls1_3", "-groups", "X25519")
        self.assertIn("CONNECTION ESTABLISHED", good.stdout + good.stderr)
        self.assertIn("X25519", good.stdout + good.stderr)


class SizeLimitCountsTheClientsBytes(ImsdCase):

    def message_of(self, size):
        head = b"Subject: exact\r\n\r\n"
        body = b""
        while len(head) + len(body) < size:
            room = size - len(head) - len(body)
            line = b"x" * min(76, max(room - 2, 0)) + b"\r\n"
            body += line[:room] if room < 2 else line
        data = head + body
        self.assertEqual(len(data), size)
        self.assertTrue(data.endswith(b"\r\n"))
        return data

    def test_message_of_exactly_the_limit_is_accepted_and_one_byte_more_is_not(self):
        srv = self.server(message_size_limit=2048)
        for size, code in ((2048, 250), (2049, 552)):
            c = self.client(srv)
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("MAIL FROM:<s@example.org> SIZE=%d" % min(size, 2048)), 250)
            self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
            self.assertReply(c.cmd("DATA"), 354)
            c.send(self.message_of(size) + b".\r\n")
            self.assertReply(c.reply(), code, msg="%d bytes" % size)
            c.cmd("QUIT")
        srv.wait_mail("localhost", "alice", 1)
