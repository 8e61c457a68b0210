"""Outbound TLS policy (`smtp_tls`, `tls_policy`, `smtp_tls_ca_file`): the `verify` level.

The receiving MX is a second imsd on 127.0.0.2:self.p2 (tls_loopback = yes, so it offers
STARTTLS on that loopback address) with a certificate for mx1.dest.test issued by a test CA
made here with openssl; dnsmasq serves dest.test MX mx1.dest.test -> 127.0.0.2. The sender
trusts the test CA through smtp_tls_ca_file. A policy failure must defer (never plaintext),
with the reason in `imsd queue` and the log; explain-recipient says what is required.
"""

import os
import subprocess
import time

import peers
from imsdtest import SETTLE, run_cli

DEST_MX = dict(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_ca(d, name):
    """A CA (name-ca.pem, name-ca.key) in d."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", name + "-ca.key", "-out", name + "-ca.pem", "-days", "2",
            "-subj", "/CN=%s test CA" % name, cwd=d)
    return os.path.join(d, name + "-ca.pem")


def make_cert(d, ca, host):
    """A certificate for host (CN and subjectAltName) signed by ca; returns (cert, key)."""
    base = "%s-%s" % (ca, host)
    with open(os.path.join(d, base + ".ext"), "w") as f:
        f.write("subjectAltName = DNS:%s\n" % host)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=" + host, cwd=d)
    openssl("x509", "-req", "-in", base + ".csr", "-CA", ca + "-ca.pem", "-CAkey", ca + "-ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", base + ".ext", "-out", base + ".pem",
            cwd=d)
    return os.path.join(d, base + ".pem"), os.path.join(d, base + ".key")


class TlsPolicy(peers.RelayCase):

    def setUp(self):
        super().setUp()
        self.ca = make_ca(self.tmp, "good")

    def cli(self, srv, *args):
        return run_cli([args[0], "-c", srv.conf_path] + list(args[1:]))

    def tls_receiver(self, cert_host="mx1.dest.test", ca="good"):
        cert, key = make_cert(self.tmp, ca, cert_host)
        return self.receiver("127.0.0.2", tls_cert_file=cert, tls_key_file=key,
                             tls_loopback="yes")

    def assertDeferredFor(self, tx, rx, qid, reason):
        ev = peers.wait_event(tx, "deferred", qid=qid)
        self.assertIn(reason, ev[0]["_line"])
        p = self.cli(tx, "queue")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(qid, p.stdout)
        self.assertIn(reason, p.stdout, "imsd queue shows the policy failure")
        time.sleep(SETTLE)
        self.assertEqual(rx.maildir_files("dest.test", "bob"), [], "nothing sent in plaintext")

    def test_verify_delivers_over_tls_when_the_certificate_verifies(self):
        dns = self.dns(**DEST_MX)
        rx = self.tls_receiver()
        tx = self.sender(dns, tls_policy="dest.test:verify", smtp_tls_ca_file=self.ca)
        self.send(tx, "bob@dest.test", "verified")
        rx.wait_mail("dest.test", "bob", 1)
        peers.wait_event(tx, "relay-tls", host="mx1.dest.test")
        tx.wait_queue_empty()
        out = self.cli(tx, "explain-recipient", "bob@dest.test").stdout
        self.assertIn("tls: verify (tls_policy entry dest.test): TLS required by tls_policy for "
                      "dest.test", out)
        self.assertIn(self.ca, out)

    def test_verify_defers_on_an_untrusted_certificate(self):
        dns = self.dns(**DEST_MX)
        make_ca(self.tmp, "other")
        rx = self.tls_receiver(ca="other")
        tx = self.sender(dns, tls_policy="dest.test:verify", smtp_tls_ca_file=self.ca)
        qid = self.send(tx, "bob@dest.test", "untrusted")
        self.assertDeferredFor(tx, rx, qid, "TLS required by tls_policy for dest.test: "
                               "certificate verify failed: ")

    def test_verify_defers_when_the_name_does_not_match_the_mx(self):
        dns = self.dns(**DEST_MX)
        rx = self.tls_receiver(cert_host="elsewhere.test")
        tx = self.sender(dns, smtp_tls="verify", smtp_tls_ca_file=self.ca)
        qid = self.send(tx, "bob@dest.test", "mismatch")
        self.assertDeferredFor(tx, rx, qid, "TLS required by smtp_tls for dest.test: "
                               "certificate verify failed: hostname mismatch")

    def test_verify_defers_when_the_mx_offers_no_starttls(self):
        dns = self.dns(**DEST_MX)
        rx = self.receiver("127.0.0.2")         # no certificate: no STARTTLS
        tx = self.sender(dns, tls_policy=".test:opportunistic dest.test:verify",
                         smtp_tls_ca_file=self.ca)
        qid = self.send(tx, "bob@dest.test", "no starttls")
        self.assertDeferredFor(tx, rx, qid, "TLS required by tls_policy for dest.test: "
                               "the server does not offer STARTTLS")
        out = self.cli(tx, "explain-recipient", "bob@other.test").stdout
        self.assertIn("tls: opportunistic (tls_policy entry .test)", out)

    def test_opportunistic_default_still_delivers_in_plaintext(self):
        dns = self.dns(**DEST_MX)
        rx = self.receiver("127.0.0.2")
        tx = self.sender(dns, tls_policy="other.test:verify", smtp_tls_ca_file=self.ca)
        self.send(tx, "bob@dest.test", "plain")
        rx.wait_mail("dest.test", "bob", 1)
        out = self.cli(tx, "explain-recipient", "bob@dest.test").stdout
        self.assertIn("tls: opportunistic (smtp_tls, the default)", out)

    def test_unreadable_ca_file_is_a_configuration_error(self):
        srv = self.sender(start=False, smtp_tls="verify",
                          smtp_tls_ca_file=os.path.join(self.tmp, "missing.pem"))
        p = self.cli(srv, "check")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertRegex(p.stderr, r":\d+: smtp_tls_ca_file: .*missing\.pem: No such file")
