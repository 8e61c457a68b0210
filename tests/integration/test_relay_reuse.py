"""An idle relay connection carries mail only to a destination it was verified for (issue 24,
finding 10), and REQUIRETLS mail that no MX host can take over TLS is returned at once
(finding 11, RFC 8689 section 4.2.1).

Two MX host names, mx-a.dest.test and mx-b.dest.test, share one address (127.0.0.2, a
second imsd with a certificate for mx-a only); a.test has MX mx-a, b.test MX mx-b. A message
to a.test leaves a connection verified for mx-a idle; a message to b.test right after (well
within the five seconds a connection waits) must not ride it: for verify, dane, mta-sts and
REQUIRETLS alike it needs a connection of its own, verified for mx-b, and gets the failure
that connection meets (a certificate that does not name mx-b; TLSA records it does not
match; REQUIRETLS without DANE or MTA-STS for mx-b). The resolver is the AD-setting one of
test_tls_policy.py, with records for both names.
"""

import os
import socket
import ssl
import smtplib

import peers
from imsdtest import make_message
from test_tls_policy import (AdDNS, PolicyServer, TlsCase, make_cert, openssl, spki_sha256,
                             POLICY)


class TwoNamesDNS(AdDNS):
    """a.test MX mx-a.dest.test, b.test MX mx-b.dest.test, both A 127.0.0.2; TLSA records per
    MX host name (tlsa: {host: [(u, s, m, data)]}, absent = authenticated denial); MTA-STS
    TXT for the names in sts (mta-sts.DOMAIN A 127.0.0.1). Every answer has the AD bit."""

    def __init__(self, port, tlsa=None, sts=()):
        self.port_ = port
        self.tlsas = tlsa or {}
        self.sts = set(sts)
        super().__init__("none.invalid")

    def answer(self, qname, qtype):
        n = qname.lower()
        mx = {"a.test": "mx-a.dest.test", "b.test": "mx-b.dest.test"}
        if n in mx:
            return 0, ([(15, b"\0\x0a" + self.wire(mx[n]))] if qtype == 15 else [])
        if n in ("mx-a.dest.test", "mx-b.dest.test"):
            return 0, ([(1, socket.inet_aton("127.0.0.2"))] if qtype == 1 else [])
        for host, rrs in self.tlsas.items():
            if n == "_%d._tcp.%s" % (self.port_, host):
                return 0, ([(52, bytes([u, s, m]) + d) for u, s, m, d in rrs]
                           if qtype == 52 else [])
        for d in self.sts:
            if n == "_mta-sts." + d:
                t = b"v=STSv1; id=1;"
                return 0, ([(16, bytes([len(t)]) + t)] if qtype == 16 else [])
            if n == "mta-sts." + d:
                return 0, ([(1, socket.inet_aton("127.0.0.1"))] if qtype == 1 else [])
        return 3, []


class Reuse(TlsCase):

    def setUp(self):
        super().setUp()
        self.cert, self.key = make_cert(self.tmp, "good", "mx-a.dest.test")

    def resolver(self, **kw):
        d = TwoNamesDNS(self.p2, **kw)
        self.addCleanup(d.stop)
        return d

    def rx(self):
        return self.receiver("127.0.0.2", domains="a.test b.test", tls_cert_file=self.cert,
                             tls_key_file=self.key, tls_loopback="yes")

    def tx(self, dns, **conf):
        srv = self.server(start=False, **peers.sender_conf(dns.port, self.p2))
        srv.set_conf(smtp_tls_ca_file=self.ca, **conf)
        srv.start()
        return srv

    def first_then_second(self, tx, rx, reason):
        """a.test is delivered over a connection verified for mx-a; b.test, sent while that
        connection is idle, is deferred for what a connection of its own to mx-b meets."""
        self.send(tx, "bob@a.test", "to a")
        rx.wait_mail("a.test", "bob", 1)
        qid = self.send(tx, "bob@b.test", "to b")
        ev = peers.wait_event(tx, "deferred", qid=qid)
        self.assertIn(reason, ev[0]["_line"])
        self.assertEqual(rx.maildir_files("b.test", "bob"), [],
                         "b.test's mail rode the connection verified for mx-a")

    def test_verify_connection_for_one_name_is_not_reused_for_another_name(self):
        dns = self.resolver()
        rx = self.rx()
        tx = self.tx(dns, tls_policy="a.test:verify b.test:verify")
        self.first_then_second(tx, rx, "hostname mismatch")

    def test_dane_connection_for_one_name_is_not_reused_for_another_name(self):
        spki = spki_sha256(self.cert)
        dns = self.resolver(tlsa={"mx-a.dest.test": [(3, 1, 1, spki)],
                                  "mx-b.dest.test": [(3, 1, 1, bytes(32))]})
        rx = self.rx()
        tx = self.tx(dns, tls_policy="a.test:dane b.test:dane", dnssec_trust_resolver="yes")
        self.first_then_second(tx, rx, "DANE: no certificate matches the TLSA records")

    def test_mta_sts_connection_for_one_name_is_not_reused_for_another_name(self):
        dns = self.resolver(sts=("a.test", "b.test"))
        # one policy server for both domains, its certificate naming both policy hosts
        with open(os.path.join(self.tmp, "web.ext"), "w") as f:
            f.write("subjectAltName = DNS:mta-sts.a.test, DNS:mta-sts.b.test\n")
        for args in (["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", "web.key", "-out", "web.csr", "-subj", "/CN=mta-sts.a.test"],
                     ["x509", "-req", "-in", "web.csr", "-CA", "good-ca.pem", "-CAkey",
                      "good-ca.key", "-CAcreateserial", "-days", "2", "-extfile", "web.ext",
                      "-out", "web.pem"]):
            openssl(*args, cwd=self.tmp)
        web = PolicyServer(os.path.join(self.tmp, "web.pem"), os.path.join(self.tmp, "web.key"),
                           POLICY % ("enforce", "*.dest.test"))
        self.addCleanup(web.stop)
        rx = self.rx()
        tx = self.tx(dns, tls_policy="a.test:mta-sts b.test:mta-sts", mta_sts_port=web.port)
        self.first_then_second(tx, rx, "hostname mismatch")
        self.assertEqual(web.fetches, 2, "each domain's policy was fetched and applied")

    def submit_requiretls(self, tx, rcpt, subject):
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = False
        with smtplib.SMTP("127.0.0.1", tx.port, timeout=10) as s:
            s.ehlo("client.test")
            s.starttls(context=ctx)
            s.ehlo("client.test")
            s.sendmail("alice@localhost", [rcpt],
                       make_message(subject, sender="alice@localhost", to=rcpt),
                       mail_options=["REQUIRETLS"])

    def tls_tx(self, dns, **conf):
        cert, key = make_cert(self.tmp, "good", "mx.imsd.test")
        return self.tx(dns, tls_cert_file=cert, tls_key_file=key, tls_loopback="yes", **conf)

    def test_requiretls_mail_does_not_ride_a_connection_dane_verified_for_another_name(self):
        # the reviewer's case: mx-a has TLSA records, mx-b (same address) none
        dns = self.resolver(tlsa={"mx-a.dest.test": [(3, 1, 1, spki_sha256(self.cert))]})
        rx = self.rx()
        tx = self.tls_tx(dns, tls_policy="a.test:dane", dnssec_trust_resolver="yes")
        self.send(tx, "bob@a.test", "to a")
        rx.wait_mail("a.test", "bob", 1)
        self.submit_requiretls(tx, "bob@b.test", "requiretls to b")
        dsn = self.wait_dsns(tx)[0]
        self.assertDsn(dsn, statuses={"bob@b.test": "5.7.30"})
        self.assertEqual(rx.maildir_files("b.test", "bob"), [], "never sent less protected")

    def test_requiretls_to_a_host_with_tlsa_but_no_starttls_is_returned_at_once(self):
        # RFC 8689 4.2.1: no MX host can take it over verified TLS, so it is not sent and the
        # sender gets a non-delivery report at once (5.7.10), not a deferral
        dns = self.resolver(tlsa={"mx-a.dest.test": [(3, 1, 1, spki_sha256(self.cert))]})
        rx = self.receiver("127.0.0.2", domains="a.test b.test")      # no certificate
        tx = self.tls_tx(dns, dnssec_trust_resolver="yes")
        self.submit_requiretls(tx, "bob@a.test", "requiretls no starttls")
        dsn = self.wait_dsns(tx)[0]
        self.assertDsn(dsn, statuses={"bob@a.test": "5.7.10"})
        self.assertNotIn("event=deferred", tx.log_text())
        self.assertEqual(rx.maildir_files("a.test", "bob"), [])
