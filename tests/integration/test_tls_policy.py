"""Outbound TLS policy (`smtp_tls`, `tls_policy`, `smtp_tls_ca_file`): the `verify` level.

The receiving MX is a second imsd on 127.0.0.2:self.p2 (tls_loopback = yes, so it offers
STARTTLS on that loopback address) with a certificate for mx1.dest.test issued by a test CA
made here with openssl; dnsmasq serves dest.test MX mx1.dest.test -> 127.0.0.2. The sender
trusts the test CA through smtp_tls_ca_file. A policy failure must defer (never plaintext),
with the reason in `imsd queue` and the log; explain-recipient says what is required.
"""

import hashlib
import http.server
import os
import smtplib
import socket
import ssl
import struct
import subprocess
import threading
import time

import peers
from imsdtest import SETTLE, make_message, run_cli

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


class TlsCase(peers.RelayCase):
    """The test CA, a receiver with a certificate from it, and the checks of a deferral."""

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


class TlsPolicy(TlsCase):

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


# ---------------------------------------------------------------- DANE

class AdDNS:
    """A UDP responder on 127.0.0.1 for the DANE tests, standing in for a DNSSEC-validating
    resolver: MX dest.test -> mx1.dest.test, A mx1.dest.test -> 127.0.0.2, no AAAA, and the
    TLSA records given for tlsa_name (rcode tlsa_rcode); every answer has the AD bit when
    ad is true. Anything else is NXDOMAIN."""

    def __init__(self, tlsa_name, tlsa=(), ad=True, tlsa_rcode=0):
        self.tlsa_name, self.tlsa, self.ad, self.tlsa_rcode = tlsa_name, list(tlsa), ad, tlsa_rcode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.asked = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def wire(name):
        return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"

    def answer(self, qname, qtype):
        """(rcode, [(type, rdata)])"""
        n = qname.lower()
        if n == "dest.test":
            return 0, ([(15, b"\0\x0a" + self.wire("mx1.dest.test"))] if qtype == 15 else [])
        if n == "mx1.dest.test":
            return 0, ([(1, socket.inet_aton("127.0.0.2"))] if qtype == 1 else [])
        if n == self.tlsa_name:
            if self.tlsa_rcode:
                return self.tlsa_rcode, []
            return 0, ([(52, bytes([u, s, m]) + d) for u, s, m, d in self.tlsa]
                       if qtype == 52 else [])
        return 3, []

    def _run(self):
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                off, labels = 12, []
                while data[off]:
                    labels.append(data[off + 1:off + 1 + data[off]].decode())
                    off += 1 + data[off]
                qtype = struct.unpack(">H", data[off + 1:off + 3])[0]
                question = data[12:off + 5]
            except (IndexError, struct.error, UnicodeDecodeError):
                continue
            qname = ".".join(labels)
            self.asked.append((qname, qtype))
            rcode, rrs = self.answer(qname, qtype)
            if rcode == 2:
                flags = 0x8180 | 2
            else:
                flags = 0x8180 | (0x20 if self.ad else 0) | rcode
            out = data[:2] + struct.pack(">HHHHH", flags, 1, len(rrs), 0, 0) + question
            for t, rd in rrs:
                out += b"\xc0\x0c" + struct.pack(">HHIH", t, 1, 60, len(rd)) + rd
            try:
                self.sock.sendto(out, addr)
            except OSError:
                pass

    def stop(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()


def spki_sha256(cert):
    der = subprocess.run("openssl x509 -in '%s' -noout -pubkey | openssl pkey -pubin -outform DER"
                         % cert, shell=True, check=True, stdout=subprocess.PIPE).stdout
    return hashlib.sha256(der).digest()


def cert_sha256(cert):
    der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True,
                         stdout=subprocess.PIPE).stdout
    return hashlib.sha256(der).digest()


class DaneCase(TlsCase):
    """TlsCase plus a resolver that sets AD (AdDNS) and a sender trusting it."""

    def setUp(self):
        super().setUp()
        self.tlsa_name = "_%d._tcp.mx1.dest.test" % self.p2

    def resolver(self, **kw):
        d = AdDNS(self.tlsa_name, **kw)
        self.addCleanup(d.stop)
        return d

    def dane_sender(self, dns, **conf):
        conf.setdefault("tls_policy", "dest.test:dane")
        srv = self.server(start=False, **peers.sender_conf(dns.port, self.p2))
        srv.set_conf(dnssec_trust_resolver="yes", **conf)
        srv.start()
        return srv


class Dane(DaneCase):

    def test_dane_ee_spki_match_delivers_over_tls(self):
        cert, key = make_cert(self.tmp, "good", "mx1.dest.test")
        dns = self.resolver(tlsa=[(3, 1, 1, spki_sha256(cert))])
        rx = self.receiver("127.0.0.2", tls_cert_file=cert, tls_key_file=key, tls_loopback="yes")
        tx = self.dane_sender(dns)
        self.send(tx, "bob@dest.test", "dane-ee")
        rx.wait_mail("dest.test", "bob", 1)
        peers.wait_event(tx, "relay-dane", dane="tlsa")
        peers.wait_event(tx, "relay-tls", host="mx1.dest.test")
        self.assertIn((self.tlsa_name, 52), dns.asked)
        out = self.cli(tx, "explain-recipient", "bob@dest.test").stdout
        self.assertIn("tls: dane (tls_policy entry dest.test)", out)

    def test_dane_ta_full_certificate_of_the_ca_delivers(self):
        cert, key = make_cert(self.tmp, "good", "mx1.dest.test")
        chain = os.path.join(self.tmp, "chain.pem")
        with open(chain, "w") as f:
            f.write(open(cert).read() + open(self.ca).read())
        dns = self.resolver(tlsa=[(2, 0, 1, cert_sha256(self.ca))])
        rx = self.receiver("127.0.0.2", tls_cert_file=chain, tls_key_file=key, tls_loopback="yes")
        tx = self.dane_sender(dns)
        self.send(tx, "bob@dest.test", "dane-ta")
        rx.wait_mail("dest.test", "bob", 1)

    def test_tlsa_that_does_not_match_defers(self):
        cert, key = make_cert(self.tmp, "good", "mx1.dest.test")
        dns = self.resolver(tlsa=[(3, 1, 1, bytes(32))])
        rx = self.receiver("127.0.0.2", tls_cert_file=cert, tls_key_file=key, tls_loopback="yes")
        tx = self.dane_sender(dns)
        qid = self.send(tx, "bob@dest.test", "dane-mismatch")
        self.assertDeferredFor(tx, rx, qid, "TLS required by tls_policy for dest.test: DANE: no "
                               "certificate matches the TLSA records")

    def test_authenticated_tlsa_and_no_starttls_defers(self):
        dns = self.resolver(tlsa=[(3, 1, 1, bytes(32))])
        rx = self.receiver("127.0.0.2")
        tx = self.dane_sender(dns, tls_policy=None, smtp_tls="dane")
        qid = self.send(tx, "bob@dest.test", "dane-plain")
        self.assertDeferredFor(tx, rx, qid, "TLS required by smtp_tls for dest.test: the server "
                               "does not offer STARTTLS")

    def test_unusable_tlsa_records_still_require_tls_but_not_authentication(self):
        # RFC 7672 2.2 (and Postfix's "encrypt"): records that exist but none usable mean
        # mandatory TLS without authentication, never plaintext
        dns = self.resolver(tlsa=[(1, 1, 1, bytes(32)), (3, 1, 9, bytes(32))])
        rx = self.receiver("127.0.0.2")
        tx = self.dane_sender(dns)
        qid = self.send(tx, "bob@dest.test", "dane-unusable")
        self.assertDeferredFor(tx, rx, qid, "TLS required by tls_policy for dest.test: the "
                               "server does not offer STARTTLS")
        peers.wait_event(tx, "relay-dane", dane="unusable")

    def test_unusable_tlsa_records_deliver_over_unauthenticated_tls(self):
        make_ca(self.tmp, "other")          # a CA nobody trusts, a name that is not the MX's
        cert, key = make_cert(self.tmp, "other", "someone.else.test")
        dns = self.resolver(tlsa=[(1, 1, 1, bytes(32))])
        rx = self.receiver("127.0.0.2", tls_cert_file=cert, tls_key_file=key, tls_loopback="yes")
        tx = self.dane_sender(dns)
        self.send(tx, "bob@dest.test", "dane-unusable-tls")
        rx.wait_mail("dest.test", "bob", 1)
        peers.wait_event(tx, "relay-tls", host="mx1.dest.test")

    def test_failed_tlsa_lookup_defers(self):
        dns = self.resolver(tlsa_rcode=2)
        rx = self.receiver("127.0.0.2")
        tx = self.dane_sender(dns)
        qid = self.send(tx, "bob@dest.test", "dane-servfail")
        self.assertDeferredFor(tx, rx, qid, "TLS required by tls_policy for dest.test: DANE: "
                               "TLSA lookup failed: ")

    def test_authenticated_denial_is_opportunistic(self):
        dns = self.resolver(tlsa_rcode=3)
        rx = self.receiver("127.0.0.2")
        tx = self.dane_sender(dns)
        self.send(tx, "bob@dest.test", "dane-none")
        rx.wait_mail("dest.test", "bob", 1)
        peers.wait_event(tx, "relay-dane", dane="no-tlsa")

    def test_records_without_the_ad_bit_are_ignored(self):
        dns = self.resolver(tlsa=[(3, 1, 1, bytes(32))], ad=False)
        rx = self.receiver("127.0.0.2")
        tx = self.dane_sender(dns)
        self.send(tx, "bob@dest.test", "dane-insecure")
        rx.wait_mail("dest.test", "bob", 1)
        peers.wait_event(tx, "relay-dane", dane="insecure")

    def test_dane_without_a_trusted_resolver_is_a_configuration_error(self):
        srv = self.sender(start=False, tls_policy="dest.test:dane")
        p = self.cli(srv, "check")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertRegex(p.stderr, r":\d+: tls_policy: dane needs dnssec_trust_resolver = yes "
                         r"and dns_servers")


# ---------------------------------------------------------------- MTA-STS

class PolicyServer:
    """https://mta-sts.dest.test:PORT/.well-known/mta-sts.txt on 127.0.0.1 (Python's
    http.server with a certificate from the test CA); counts the fetches."""

    def __init__(self, cert, key, policy):
        self.policy = policy
        self.fetches = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/.well-known/mta-sts.txt":
                    self.send_error(404)
                    return
                outer.fetches += 1
                body = outer.policy.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class StsDNS(AdDNS):
    """AdDNS plus TXT _mta-sts.dest.test (sts_txt, None = none) and A mta-sts.dest.test."""

    def __init__(self, sts_txt, **kw):
        self.sts_txt = sts_txt
        super().__init__("none.invalid", ad=False, **kw)

    def answer(self, qname, qtype):
        n = qname.lower()
        if n == "_mta-sts.dest.test":
            if self.sts_txt is None:
                return 3, []
            t = self.sts_txt.encode()
            return 0, ([(16, bytes([len(t)]) + t)] if qtype == 16 else [])
        if n == "mta-sts.dest.test":
            return 0, ([(1, socket.inet_aton("127.0.0.1"))] if qtype == 1 else [])
        return super().answer(qname, qtype)


POLICY = "version: STSv1\r\nmode: %s\r\nmx: %s\r\nmax_age: 86400\r\n"


class MtaSts(TlsCase):

    def sts(self, mode="enforce", mx="*.dest.test", txt="v=STSv1; id=1;", ca="good",
            cert_host="mta-sts.dest.test"):
        dns = StsDNS(txt)
        self.addCleanup(dns.stop)
        cert, key = make_cert(self.tmp, ca, cert_host)
        web = PolicyServer(cert, key, POLICY % (mode, mx))
        self.addCleanup(web.stop)
        return dns, web

    def sts_sender(self, dns, web, **conf):
        conf.setdefault("tls_policy", "dest.test:mta-sts")
        srv = self.server(start=False, **peers.sender_conf(dns.port, self.p2))
        srv.set_conf(mta_sts_port=web.port, smtp_tls_ca_file=self.ca, **conf)
        srv.start()
        return srv

    def test_enforce_delivers_to_a_listed_mx_over_verified_tls_and_caches(self):
        dns, web = self.sts()
        rx = self.tls_receiver()
        tx = self.sts_sender(dns, web)
        self.send(tx, "bob@dest.test", "sts one")
        rx.wait_mail("dest.test", "bob", 1)
        peers.wait_event(tx, "relay-mta-sts", mode="enforce")
        peers.wait_event(tx, "relay-tls", host="mx1.dest.test")
        self.send(tx, "bob@dest.test", "sts two")
        rx.wait_mail("dest.test", "bob", 2)
        self.assertEqual(web.fetches, 1, "the second message used the cached policy")
        self.assertIn("(cached)", tx.log_text())
        dns.sts_txt = "v=STSv1; id=2;"            # a new id: fetched again
        self.send(tx, "bob@dest.test", "sts three")
        rx.wait_mail("dest.test", "bob", 3)
        self.assertEqual(web.fetches, 2)
        out = self.cli(tx, "explain-recipient", "bob@dest.test").stdout
        self.assertIn("tls: mta-sts (tls_policy entry dest.test)", out)

    def test_enforce_defers_when_the_policy_does_not_list_the_mx(self):
        dns, web = self.sts(mx="mail.elsewhere.test")
        rx = self.tls_receiver()
        tx = self.sts_sender(dns, web)
        qid = self.send(tx, "bob@dest.test", "sts mismatch")
        self.assertDeferredFor(tx, rx, qid, "TLS required by tls_policy for dest.test: MTA-STS "
                               "policy (mode enforce): the policy does not list this MX host")

    def test_enforce_defers_without_starttls(self):
        dns, web = self.sts()
        rx = self.receiver("127.0.0.2")
        tx = self.sts_sender(dns, web, tls_policy=None, smtp_tls="mta-sts")
        qid = self.send(tx, "bob@dest.test", "sts plain")
        self.assertDeferredFor(tx, rx, qid, "TLS required by smtp_tls for dest.test: MTA-STS "
                               "policy (mode enforce): the server does not offer STARTTLS")

    def test_testing_mode_delivers_anyway_and_logs(self):
        dns, web = self.sts(mode="testing", mx="mail.elsewhere.test")
        rx = self.receiver("127.0.0.2")
        tx = self.sts_sender(dns, web)
        self.send(tx, "bob@dest.test", "sts testing")
        rx.wait_mail("dest.test", "bob", 1)
        peers.wait_event(tx, "relay-mta-sts-mismatch", mode="testing", action="deliver-anyway")

    def test_no_record_or_an_untrusted_policy_server_means_no_policy(self):
        dns, web = self.sts(txt=None)
        rx = self.receiver("127.0.0.2")
        tx = self.sts_sender(dns, web)
        self.send(tx, "bob@dest.test", "sts none")
        rx.wait_mail("dest.test", "bob", 1)
        peers.wait_event(tx, "relay-mta-sts", mode="no-policy")
        self.assertEqual(web.fetches, 0)

    def test_policy_from_a_server_with_an_untrusted_certificate_is_not_used(self):
        make_ca(self.tmp, "other")
        dns, web = self.sts(ca="other")
        rx = self.receiver("127.0.0.2")
        tx = self.sts_sender(dns, web)
        self.send(tx, "bob@dest.test", "sts untrusted")
        rx.wait_mail("dest.test", "bob", 1)
        ev = peers.wait_event(tx, "relay-mta-sts", mode="no-policy")
        self.assertIn("certificate verify failed", ev[0]["_line"])


    def test_requiretls_mail_goes_over_an_enforced_mta_sts_policy(self):
        dns, web = self.sts()
        rx = self.tls_receiver()
        cert, key = make_cert(self.tmp, "good", "mx.imsd.test")
        tx = self.sts_sender(dns, web, tls_cert_file=cert, tls_key_file=key,
                             tls_loopback="yes")
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = False
        with smtplib.SMTP("127.0.0.1", tx.port, timeout=10) as s:
            s.ehlo("client.test")
            s.starttls(context=ctx)
            s.ehlo("client.test")
            self.assertIn("requiretls", s.esmtp_features)
            s.sendmail("alice@localhost", ["bob@dest.test"],
                       make_message("requiretls by mta-sts", sender="alice@localhost",
                                    to="bob@dest.test"),
                       mail_options=["REQUIRETLS"])
        rx.wait_mail("dest.test", "bob", 1)
        tx.wait_queue_empty()
        peers.wait_event(tx, "relay-mta-sts", mode="enforce")


# ---------------------------------------------------------------- REQUIRETLS

class RequireTls(DaneCase):

    def tls_sender(self, dns, **conf):
        cert, key = make_cert(self.tmp, "good", "mx.imsd.test")
        srv = self.server(start=False, **peers.sender_conf(dns.port, self.p2))
        srv.set_conf(tls_cert_file=cert, tls_key_file=key, tls_loopback="yes", **conf)
        srv.start()
        return srv

    def submit_requiretls(self, srv, subject):
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = False
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as s:
            s.ehlo("client.test")
            self.assertNotIn("requiretls", s.esmtp_features, "not before TLS")
            code, text = s.docmd("MAIL", "FROM:<alice@localhost> REQUIRETLS")
            self.assertEqual(code, 530, text)
            self.assertIn(b"5.7.10", text)
            s.starttls(context=ctx)
            s.ehlo("client.test")
            self.assertIn("requiretls", s.esmtp_features, "advertised after TLS")
            s.sendmail("alice@localhost", ["bob@dest.test"],
                       make_message(subject, sender="alice@localhost", to="bob@dest.test"),
                       mail_options=["REQUIRETLS"])

    def test_requiretls_mail_goes_to_a_dane_verified_peer_that_offers_it(self):
        cert, key = make_cert(self.tmp, "good", "mx1.dest.test")
        dns = self.resolver(tlsa=[(3, 1, 1, spki_sha256(cert))])
        rx = self.receiver("127.0.0.2", tls_cert_file=cert, tls_key_file=key, tls_loopback="yes")
        tx = self.tls_sender(dns, dnssec_trust_resolver="yes")
        self.submit_requiretls(tx, "requiretls ok")
        rx.wait_mail("dest.test", "bob", 1)
        tx.wait_queue_empty()

    def test_requiretls_mail_without_dane_or_mta_sts_bounces_with_5_7_30(self):
        cert, key = make_cert(self.tmp, "good", "mx1.dest.test")
        dns = self.resolver(tlsa_rcode=3)
        rx = self.receiver("127.0.0.2", tls_cert_file=cert, tls_key_file=key, tls_loopback="yes")
        tx = self.tls_sender(dns, dnssec_trust_resolver="yes")
        self.submit_requiretls(tx, "requiretls bounced")
        dsn = self.wait_dsns(tx)[0]
        self.assertDsn(dsn, statuses={"bob@dest.test": "5.7.30"})
        self.assertEqual(rx.maildir_files("dest.test", "bob"), [], "never sent less protected")
