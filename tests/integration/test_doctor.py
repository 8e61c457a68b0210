"""imsd doctor and imsd dns-records (issue 22): a host that has everything right gets only ok
lines and exit 0; each record wrong in its own way gets its fail line and its fix.

Everything runs inside a private network namespace the test creates. The host is
mx.example.test at 198.51.100.10 and 2001:db8::10 (on the namespace's lo), serving
example.test: imsd runs there as `nobody` with a certificate from a test CA, a DKIM key made
by `imsd dkim-keygen`, and dnsmasq on 127.0.0.1:53 inside the namespace serves the zone the
test builds (MX, A/AAAA, PTR, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, TLSA). The MTA-STS policy
is served over HTTPS by a Python server inside the namespace (198.51.100.10:8443, a
certificate for mta-sts.example.test from the test CA). Each wrong case restarts dnsmasq
with one record changed, or points the configuration at one wrong file, and runs doctor
again. No packet leaves the namespace.
"""

import copy
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import imsdtest
import netns
from imsdtest import ImsdCase, imsd_binary

DNSMASQ = "/usr/sbin/dnsmasq"
HOST = "mx.example.test"
DOMAIN = "example.test"
ADDR4 = netns.NS_ADDR                  # 198.51.100.10
ADDR6 = netns.NS_ADDR6                 # 2001:db8::10
OTHER = "192.0.2.25"                   # an address that is not this host
STS_PORT = 8443
RUN_USER = "nobody"
SPF = "v=spf1 ip4:%s ip6:%s -all" % (ADDR4, ADDR6)
POLICY = "version: STSv1\r\nmode: enforce\r\nmx: %s\r\nmax_age: 86400\r\n" % HOST

# A resolver standing in for a DNSSEC-validating one, for one TLSA name: its records (hex
# data), every answer with the AD bit; dnsmasq forwards that name to it (--proxy-dnssec
# keeps the bit).
AD_SERVER = r'''
import socket, struct, sys
name, port, records = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", port))
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(4096)
    off, labels = 12, []
    while data[off]:
        labels.append(data[off + 1:off + 1 + data[off]].decode())
        off += 1 + data[off]
    qtype = struct.unpack(">H", data[off + 1:off + 3])[0]
    question = data[12:off + 5]
    rrs = [bytes.fromhex(r) for r in records] if ".".join(labels).lower() == name and \
        qtype == 52 else []
    out = data[:2] + struct.pack(">HHHHH", 0x8180 | 0x20, 1, len(rrs), 0, 0) + question
    for rd in rrs:
        out += b"\xc0\x0c" + struct.pack(">HHIH", 52, 1, 60, len(rd)) + rd
    s.sendto(out, addr)
'''

STS_SERVER = r'''
import http.server, ssl, sys
cert, key, addr, port, policy = sys.argv[1:6]
body = open(policy, "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/.well-known/mta-sts.txt":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
httpd = http.server.HTTPServer((addr, int(port)), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print("ready", flush=True)
httpd.serve_forever()
'''


def openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(args), p.stderr))


def make_ca(d):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=doctor test CA",
            cwd=d)
    return os.path.join(d, "ca.pem")


def make_cert(d, base, names, days):
    """A certificate for names (the first is the CN) from the test CA, valid for days (a
    negative number: already expired); returns (cert, key)."""
    with open(os.path.join(d, base + ".ext"), "w") as f:
        f.write("subjectAltName = %s\n" % ", ".join("DNS:" + n for n in names))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=" + names[0], cwd=d)
    openssl("x509", "-req", "-in", base + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", str(days), "-extfile", base + ".ext",
            "-out", base + ".pem", cwd=d)
    return os.path.join(d, base + ".pem"), os.path.join(d, base + ".key")


def wire(name):
    labels = name.rstrip(".").split(".")
    return "".join("%02x%s" % (len(l), l.encode().hex()) for l in labels) + "00"


def ptr_name(addr):
    import ipaddress
    return ipaddress.ip_address(addr).reverse_pointer


def good_zone(dkim_record, tlsa):
    return {
        "mx": [(DOMAIN, HOST, 10)],
        "a": {HOST: [ADDR4, ADDR6], "mta-sts." + DOMAIN: [ADDR4]},
        "ptr": {ADDR4: HOST, ADDR6: HOST},
        "txt": {DOMAIN: SPF, HOST: SPF,
                "s1._domainkey." + DOMAIN: dkim_record,
                "_dmarc." + DOMAIN: "v=DMARC1; p=reject; rua=mailto:postmaster@" + DOMAIN,
                "_mta-sts." + DOMAIN: "v=STSv1; id=20260101",
                "_smtp._tls." + DOMAIN: "v=TLSRPTv1; rua=mailto:postmaster@" + DOMAIN},
        "tlsa": {"_25._tcp." + HOST: tlsa},
    }


def zone_args(z):
    import ipaddress
    args = []
    for dom, host, pref in z.get("mx", []):
        args.append("--mx-host=%s,%s,%d" % (dom, host, pref))
    for name, addrs in z.get("a", {}).items():
        for a in addrs:
            ip = ipaddress.ip_address(a)
            args.append("--dns-rr=%s,%d,%s" % (name, 1 if ip.version == 4 else 28,
                                              ip.packed.hex()))
    for a, name in z.get("ptr", {}).items():
        args.append("--dns-rr=%s,12,%s" % (ptr_name(a), wire(name)))
    for name, text in z.get("txt", {}).items():
        if text is None:
            continue
        assert "," not in text, text
        parts = [text[i:i + 255] for i in range(0, len(text), 255)]
        args.append("--txt-record=%s,%s" % (name, ",".join(parts)))
    for name, rec in z.get("tlsa", {}).items():
        if rec is not None:
            u, s, m, data = rec
            args.append("--dns-rr=%s,52,%02x%02x%02x%s" % (name, u, s, m, data))
    return args


class Doctor(ImsdCase):
    """One namespace, one imsd (as nobody), one MTA-STS web server for the class; dnsmasq is
    restarted with the zone each test wants."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ns = cls.srv = cls.dnsmasq = cls.web = None
        cls._skip = None
        cls.dir = tempfile.mkdtemp(prefix="imsd-doctor-")
        try:
            cls.binary = imsd_binary()
            imsdtest.need_tool(DNSMASQ, "dnsmasq-base")
            imsdtest.need_tool("openssl", "openssl")
            cls.ns = netns.NetNS.create()
        except unittest.SkipTest as e:
            cls._skip = str(e)
            return
        except BaseException:
            cls._cleanup()
            raise
        try:
            cls._setup_world()
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def _setup_world(cls):
        d = cls.dir
        os.chmod(d, 0o711)                # the run user passes through to its files
        nobody = pwd.getpwnam(RUN_USER)
        cls.uid, cls.gid = nobody.pw_uid, nobody.pw_gid
        cls.etc = "/etc/netns/" + cls.ns.name
        os.makedirs(cls.etc, exist_ok=True)
        with open(os.path.join(cls.etc, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\n")
        cls.ca = make_ca(d)
        cls.cert, cls.key = make_cert(d, "good", [HOST], 60)
        cls.web_cert, cls.web_key = make_cert(d, "web", ["mta-sts." + DOMAIN], 60)
        for k in (cls.key,):
            os.chown(k, 0, cls.gid)
            os.chmod(k, 0o640)
        # the DKIM key of the configuration, and another one (a stale record's)
        cls.dkim_key = os.path.join(d, "s1.key")
        cls.dkim_record = cls.keygen(cls.dkim_key)
        cls.other_record = cls.keygen(os.path.join(d, "old.key"))
        os.chown(cls.dkim_key, 0, cls.gid)
        os.chmod(cls.dkim_key, 0o640)
        cls.tlsa = (3, 1, 1, cls.spki_sha256(cls.cert))
        cls.zone = good_zone(cls.dkim_record, cls.tlsa)
        cls.start_dns(cls.zone)
        cls.policy_file = os.path.join(d, "policy.txt")
        with open(cls.policy_file, "w", newline="") as f:
            f.write(POLICY)
        cls.start_web()
        cls.conf = dict(
            hostname=HOST, local_domains=DOMAIN,
            listen="%s:25, [%s]:25, 127.0.0.1:25" % (ADDR4, ADDR6),
            dns_servers="127.0.0.1:53", tls_cert_file=cls.cert, tls_key_file=cls.key,
            smtp_tls_ca_file=cls.ca, mta_sts_port=str(STS_PORT),
            dkim_sign="%s:s1:%s" % (DOMAIN, cls.dkim_key), run_user=RUN_USER,
            relay_networks="127.0.0.1/32", retry_min="1h")
        cls.srv = netns.NsServer(cls.ns, os.path.join(d, "srv"), **cls.conf)
        cls.srv.port = 25
        cls.srv.start()

    @classmethod
    def keygen(cls, path):
        p = subprocess.run([cls.binary, "dkim-keygen", DOMAIN, "s1", path],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return "".join(re.findall(r'"([^"]*)"', p.stdout))

    @staticmethod
    def spki_sha256(cert):
        import hashlib
        der = subprocess.run("openssl x509 -in '%s' -noout -pubkey | openssl pkey -pubin "
                             "-outform DER" % cert, shell=True, check=True,
                             stdout=subprocess.PIPE).stdout
        return hashlib.sha256(der).hexdigest()

    @classmethod
    def start_dns(cls, zone, extra=()):
        cls.stop_dns()
        args = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--listen-address=127.0.0.1", "--bind-interfaces", "--port=53", "--user=root",
                "--pid-file=", "--cache-size=0", "--log-queries",
                "--log-facility=" + os.path.join(cls.dir, "dnsmasq.log")]
        args += list(extra) + ["--local=/test/", "--local=/arpa/"] + zone_args(zone)
        cls.dnsmasq = subprocess.Popen(cls.ns.argv(args), stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            p = cls.ns.run(["getent", "ahostsv4", HOST])
            if p.returncode == 0:
                return
            if cls.dnsmasq.poll() is not None:
                raise AssertionError("dnsmasq exited: %s" % cls.dnsmasq.stderr.read())
            if time.monotonic() > deadline:
                raise AssertionError("dnsmasq did not answer inside the namespace")
            time.sleep(0.05)

    @classmethod
    def stop_dns(cls):
        if cls.dnsmasq is not None and cls.dnsmasq.poll() is None:
            cls.dnsmasq.terminate()              # our child, by pid
            try:
                cls.dnsmasq.wait(5)
            except subprocess.TimeoutExpired:
                cls.dnsmasq.kill()
                cls.dnsmasq.wait(5)
        cls.dnsmasq = None

    @classmethod
    def start_web(cls):
        script = os.path.join(cls.dir, "sts_server.py")
        with open(script, "w") as f:
            f.write(STS_SERVER)
        cls.web = subprocess.Popen(cls.ns.argv([sys.executable, script, cls.web_cert,
                                                cls.web_key, ADDR4, str(STS_PORT),
                                                cls.policy_file]),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        line = cls.web.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError("the MTA-STS server did not start: %s" % cls.web.stderr.read())

    @classmethod
    def _cleanup(cls):
        try:
            if cls.srv is not None:
                cls.srv.close()
        finally:
            cls.stop_dns()
            if cls.web is not None and cls.web.poll() is None:
                cls.web.terminate()              # our child, by pid
                cls.web.wait(5)
            if getattr(cls, "etc", None):
                shutil.rmtree(cls.etc, ignore_errors=True)
            if cls.ns is not None:
                cls.ns.delete()
            shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        try:
            cls._cleanup()
        finally:
            super().tearDownClass()

    def setUp(self):
        if self._skip:
            self.skipTest(self._skip)
        super().setUp()
        self.servers.append(self.srv)

    # -- helpers
    def with_zone(self, change):
        """Serve the good zone changed by change(zone) for this test."""
        z = copy.deepcopy(self.zone)
        change(z)
        type(self).start_dns(z)
        self.addCleanup(type(self).start_dns, self.zone)

    def conf_with(self, **overrides):
        """A configuration file like the server's with overrides (doctor reads only it)."""
        conf = dict(self.srv.conf)
        conf.update(overrides)
        path = os.path.join(self.dir, "variant-%s.conf" % self._testMethodName)
        with open(path, "w") as f:
            f.write("".join("%s = %s\n" % kv for kv in conf.items() if kv[1] is not None))
        os.chmod(path, 0o644)
        return path

    def doctor(self, conf=None, *args):
        p = self.ns.run([self.binary, "doctor", "-c", conf or self.srv.conf_path, "--json"]
                        + list(args), timeout=180)
        try:
            doc = json.loads(p.stdout)
        except ValueError:
            raise AssertionError("doctor printed no JSON (status %d): %s\n%s"
                                 % (p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
        self.assertNotRegex(p.stderr, imsdtest.SANITIZER_RE, p.stderr)
        return p.returncode, doc

    def lines(self, doc, check, subject=None):
        out = [c for c in doc["checks"] if c["check"] == check and
               (subject is None or c["subject"] == subject)]
        self.assertTrue(out, "no %s line%s in %s" % (check, " for " + subject if subject else "",
                                                     json.dumps(doc, indent=1)[:6000]))
        return out

    def assertLine(self, doc, check, status, subject=None, found=None, fix=None):
        """The line of check (for subject) has status; found and fix (regexes) match."""
        ls = self.lines(doc, check, subject)
        hit = [l for l in ls if l["status"] == status and
               (found is None or re.search(found, l["found"])) and
               (fix is None or (l["fix"] and re.search(fix, l["fix"])))]
        self.assertTrue(hit, "no %s line %s%s%s%s among %s" % (
            check, status, " for " + subject if subject else "",
            " found~%r" % found if found else "", " fix~%r" % fix if fix else "",
            json.dumps(ls, indent=1)))
        return hit[0]

    def assertFailsWith(self, doc, rc, check, subject=None, found=None, fix=None):
        self.assertEqual(rc, 1, "a failed check gives exit status 1")
        self.assertEqual(doc["fail"], len([c for c in doc["checks"] if c["status"] == "fail"]))
        return self.assertLine(doc, check, "fail", subject, found, fix)

    # -- the host with everything right
    def test_a_host_with_everything_right_gets_only_ok_lines_and_exit_0(self):
        rc, doc = self.doctor()
        bad = [c for c in doc["checks"] if c["status"] != "ok"]
        self.assertEqual(bad, [], "every check ok")
        self.assertEqual(rc, 0)
        self.assertEqual(doc["fail"], 0)
        self.assertEqual(sorted(doc["addresses"]), sorted([ADDR4, ADDR6]))
        for check, subject in (("config", None), ("config.hostname", HOST), ("spool", None),
                               ("mailboxes", None), ("dns.host", HOST), ("dns.ptr", ADDR4),
                               ("dns.ptr", ADDR6), ("dns.mx", DOMAIN),
                               ("dns.spf", "%s from %s" % (DOMAIN, ADDR4)),
                               ("dns.spf", "%s from %s" % (DOMAIN, ADDR6)),
                               ("dns.spf-helo", "%s from %s" % (HOST, ADDR4)),
                               ("dns.dkim", "s1._domainkey." + DOMAIN), ("dns.dmarc", DOMAIN),
                               ("dns.mta-sts", DOMAIN), ("dns.tls-rpt", DOMAIN),
                               ("tls.certificate", None), ("tls.expiry", self.cert),
                               ("tls.chain", self.cert), ("tls.names", None),
                               ("tls.dane", HOST), ("tls.starttls", "%s:25" % ADDR4),
                               ("service", None), ("service.listen", "%s:25" % ADDR4),
                               ("queue", None)):
            self.assertLine(doc, check, "ok", subject)
        self.assertLine(doc, "config", "ok", found=r"read again as nobody \(uid \d+\)")
        self.assertLine(doc, "dns.mx", "ok", DOMAIN, found=r"MX 10 mx\.example\.test .* this host")
        self.assertLine(doc, "dns.mta-sts", "ok", DOMAIN, found=r"mode enforce")
        self.assertLine(doc, "tls.dane", "ok", HOST, found=r"the certificate matches")

    def test_the_text_output_is_one_line_per_check_and_a_summary(self):
        p = self.ns.run([self.binary, "doctor", "-c", self.srv.conf_path], timeout=180)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = p.stdout.splitlines()
        self.assertRegex(out[-1], r"^imsd doctor: \d+ ok, 0 warnings, 0 failures$")
        for l in out[:-1]:
            self.assertRegex(l, r"^ok   [a-z.-]+ +\S", l)

    # -- DNS, wrong one record at a time
    def test_missing_mx_fails_with_the_mx_record_to_publish(self):
        self.with_zone(lambda z: z.update(mx=[]))
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "dns.mx", DOMAIN, found=r"does not exist|no MX",
                             fix=r"example\.test\. IN MX 10 mx\.example\.test\.")

    def test_mx_pointing_elsewhere_fails(self):
        def change(z):
            z["mx"] = [(DOMAIN, "mx.elsewhere.test", 10)]
            z["a"]["mx.elsewhere.test"] = [OTHER]
        self.with_zone(change)
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "dns.mx", DOMAIN, found=r"MX 10 mx\.elsewhere\.test "
                             r"\(192\.0\.2\.25\)", fix=r"IN MX 10 mx\.example\.test\.")

    def test_missing_ptr_fails_with_the_reverse_record(self):
        self.with_zone(lambda z: z["ptr"].pop(ADDR4))
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "dns.ptr", ADDR4, found=r"no PTR record",
                             fix=r"10\.100\.51\.198\.in-addr\.arpa\. IN PTR mx\.example\.test")
        self.assertLine(doc, "dns.ptr", "ok", ADDR6)

    def test_ptr_naming_another_host_fails_as_a_mismatch_with_the_ehlo_name(self):
        def change(z):
            z["ptr"][ADDR4] = "host-10.provider.test"
            z["a"]["host-10.provider.test"] = [ADDR4]
        self.with_zone(change)
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "dns.ptr", ADDR4, found=r"host-10\.provider\.test "
                             r"resolves back, but imsd says EHLO mx\.example\.test",
                             fix=r"hostname = host-10\.provider\.test")

    def test_ptr_that_does_not_resolve_back_fails(self):
        self.with_zone(lambda z: z["ptr"].update({ADDR4: "ghost.provider.test"}))
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "dns.ptr", ADDR4, found=r"ghost\.provider\.test does "
                             r"not resolve back", fix=r"reverse DNS of 198\.51\.100\.10 to "
                             r"mx\.example\.test")

    def test_host_name_without_the_hosts_address_fails(self):
        self.with_zone(lambda z: z["a"].update({HOST: [ADDR4]}))
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "dns.host", HOST, found=r"not to every address",
                             fix=r"mx\.example\.test\. IN AAAA 2001:db8::10")

    def test_spf_excluding_the_host_fails_with_a_record_that_allows_it(self):
        self.with_zone(lambda z: z["txt"].update({DOMAIN: "v=spf1 ip4:%s -all" % OTHER}))
        rc, doc = self.doctor()
        l = self.assertFailsWith(doc, rc, "dns.spf", "%s from %s" % (DOMAIN, ADDR4),
                                 found=r"^fail for postmaster@example\.test",
                                 fix=r'example\.test\. IN TXT "v=spf1 ip4:192\.0\.2\.25 '
                                     r'ip4:198\.51\.100\.10 ip6:2001:db8::10 -all"')
        self.assertIn("receivers", l["why"])
        # DKIM still passes aligned: DMARC holds
        self.assertLine(doc, "dns.dmarc", "ok", DOMAIN)

    def test_missing_spf_fails_with_a_new_record(self):
        self.with_zone(lambda z: z["txt"].update({DOMAIN: None}))
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "dns.spf", "%s from %s" % (DOMAIN, ADDR6),
                             found=r"^none", fix=r'"v=spf1 ip4:198\.51\.100\.10 '
                             r'ip6:2001:db8::10 -all"')

    def test_stale_dkim_key_fails_with_the_record_of_the_configured_key(self):
        self.with_zone(lambda z: z["txt"].update({"s1._domainkey." + DOMAIN:
                                                  self.other_record}))
        rc, doc = self.doctor()
        l = self.assertFailsWith(doc, rc, "dns.dkim", "s1._domainkey." + DOMAIN,
                                 found=r"does not verify: fail")
        self.assertIn(self.dkim_record[:200].replace('"', ''), l["fix"].replace('" "', ''))

    def test_missing_dkim_record_fails(self):
        self.with_zone(lambda z: z["txt"].update({"s1._domainkey." + DOMAIN: None}))
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "dns.dkim", "s1._domainkey." + DOMAIN,
                             found=r"does not verify: permerror",
                             fix=r"s1\._domainkey\.example\.test\. IN TXT \"v=DKIM1; k=rsa; p=")

    def test_missing_dmarc_fails_with_a_p_none_record(self):
        self.with_zone(lambda z: z["txt"].update({"_dmarc." + DOMAIN: None}))
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "dns.dmarc", DOMAIN, found=r"no DMARC record",
                             fix=r'_dmarc\.example\.test\. IN TXT "v=DMARC1; p=none; '
                             r'rua=mailto:postmaster@example\.test"')

    def test_dmarc_reject_that_this_hosts_mail_fails_is_a_failure(self):
        def change(z):
            z["txt"][DOMAIN] = "v=spf1 ip4:%s -all" % OTHER
            z["txt"]["s1._domainkey." + DOMAIN] = None
        self.with_zone(change)
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "dns.dmarc", DOMAIN, found=r"^fail: p=reject")

    def test_mta_sts_record_without_a_reachable_policy_fails(self):
        self.with_zone(lambda z: z["a"].pop("mta-sts." + DOMAIN))
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "dns.mta-sts", DOMAIN, found=r"the policy is not",
                             fix=r"https://mta-sts\.example\.test/\.well-known/mta-sts\.txt")

    def test_mta_sts_policy_not_listing_the_mx_fails_in_enforce(self):
        with open(self.policy_file, "w", newline="") as f:
            f.write(POLICY.replace("mx: " + HOST, "mx: mail.elsewhere.test"))
        self.addCleanup(self.restore_policy)
        type(self).restart_web()
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "dns.mta-sts", DOMAIN, found=r"do not match the MX "
                             r"host mx\.example\.test")

    def restore_policy(self):
        with open(self.policy_file, "w", newline="") as f:
            f.write(POLICY)
        type(self).restart_web()

    @classmethod
    def restart_web(cls):
        if cls.web is not None and cls.web.poll() is None:
            cls.web.terminate()
            cls.web.wait(5)
        cls.start_web()

    def test_malformed_tls_rpt_record_fails(self):
        self.with_zone(lambda z: z["txt"].update({"_smtp._tls." + DOMAIN:
                                                  "v=TLSRPTv1; rua=postmaster"}))
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "dns.tls-rpt", DOMAIN, found=r"neither a mailto:",
                             fix=r'_smtp\._tls\.example\.test\. IN TXT "v=TLSRPTv1; '
                             r'rua=mailto:postmaster@example\.test"')

    def test_optional_records_not_published_are_ok(self):
        def change(z):
            for name in ("_mta-sts." + DOMAIN, "_smtp._tls." + DOMAIN):
                z["txt"][name] = None
            z["tlsa"]["_25._tcp." + HOST] = None
        self.with_zone(change)
        rc, doc = self.doctor()
        self.assertEqual(rc, 0, [c for c in doc["checks"] if c["status"] != "ok"])
        self.assertLine(doc, "dns.mta-sts", "ok", DOMAIN, found=r"not published")
        self.assertLine(doc, "dns.tls-rpt", "ok", DOMAIN, found=r"not published")
        self.assertLine(doc, "tls.dane", "ok", HOST, found=r"no TLSA records")

    def test_tlsa_record_not_matching_the_certificate_is_reported(self):
        self.with_zone(lambda z: z["tlsa"].update({"_25._tcp." + HOST: (3, 1, 1, "00" * 32)}))
        rc, doc = self.doctor()
        self.assertLine(doc, "tls.dane", "warn", HOST, found=r"does not match",
                        fix=r"_25\._tcp\.mx\.example\.test\. IN TLSA 3 1 1 " + self.tlsa[3])

    def ad_resolver(self, records):
        """The TLSA name served with the AD bit by AD_SERVER behind dnsmasq."""
        script = os.path.join(self.dir, "ad_server.py")
        with open(script, "w") as f:
            f.write(AD_SERVER)
        name = "_25._tcp." + HOST
        proc = subprocess.Popen(self.ns.argv([sys.executable, script, name, "5300"] +
                                             ["%02x%02x%02x%s" % r for r in records]),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

        def stop():
            proc.terminate()                     # our child, by pid
            proc.wait(5)
        self.addCleanup(stop)
        self.assertEqual(proc.stdout.readline().strip(), "ready", proc.stderr)
        z = copy.deepcopy(self.zone)
        z["tlsa"] = {}
        type(self).start_dns(z, extra=["--proxy-dnssec", "--server=/%s/127.0.0.1#5300" % name])
        self.addCleanup(type(self).start_dns, self.zone)

    def test_dnssec_authenticated_tlsa_that_does_not_match_fails(self):
        self.ad_resolver([(3, 1, 1, "00" * 32)])
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "tls.dane", HOST, found=r"does not match: DANE: no "
                             r"certificate matches",
                             fix=r"_25\._tcp\.mx\.example\.test\. IN TLSA 3 1 1 " + self.tlsa[3])

    def test_dnssec_authenticated_tlsa_that_matches_is_ok(self):
        self.ad_resolver([self.tlsa])
        rc, doc = self.doctor()
        self.assertLine(doc, "tls.dane", "ok", HOST, found=r"matches \(the answer is "
                        r"DNSSEC-authenticated\)")
        self.assertEqual(rc, 0, [c for c in doc["checks"] if c["status"] != "ok"])

    def test_signed_zone_without_tlsa_warns_with_the_record_to_publish(self):
        self.ad_resolver([])
        rc, doc = self.doctor()
        self.assertLine(doc, "tls.dane", "warn", HOST, found=r"the zone is signed",
                        fix=r"IN TLSA 3 1 1 " + self.tlsa[3])

    # -- the addresses, the service, the queue
    def test_address_option_replaces_the_listeners_addresses(self):
        rc, doc = self.doctor(None, "--address", "203.0.113.77")
        self.assertEqual(doc["addresses"], ["203.0.113.77"])
        self.assertLine(doc, "dns.addresses", "ok", found=r"203\.0\.113\.77 \(given with "
                        r"--address\)")
        self.assertFailsWith(doc, rc, "dns.ptr", "203.0.113.77", found=r"no PTR record")
        self.assertLine(doc, "dns.spf", "fail", "%s from 203.0.113.77" % DOMAIN,
                        fix=r"ip4:203\.0\.113\.77")
        self.assertLine(doc, "dns.mx", "fail", DOMAIN, found=r"MX 10 mx\.example\.test")

    def test_no_server_on_the_spool_fails_the_service(self):
        conf = self.conf_with(spool_dir=os.path.join(self.dir, "no-spool-here"))
        rc, doc = self.doctor(conf)
        self.assertLine(doc, "spool", "warn", found=r"does not exist yet")
        self.assertFailsWith(doc, rc, "service", found=r"no server is running",
                             fix=r"imsd run")

    def test_a_resolver_that_does_not_answer_fails_once_and_skips_the_dns_checks(self):
        # a UDP socket that reads every query and answers none: each lookup times out
        sink = subprocess.Popen(self.ns.argv([sys.executable, "-c", "import socket\n"
                                              "s = socket.socket(socket.AF_INET, "
                                              "socket.SOCK_DGRAM)\n"
                                              "s.bind(('127.0.0.1', 5398))\n"
                                              "print('ready', flush=True)\n"
                                              "while True:\n    s.recv(4096)\n"]),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)

        def stop():
            sink.terminate()                     # our child, by pid
            sink.wait(5)
        self.addCleanup(stop)
        self.assertEqual(sink.stdout.readline().strip(), "ready")
        rc, doc = self.doctor(self.conf_with(dns_servers="127.0.0.1:5398"))
        self.assertFailsWith(doc, rc, "dns.resolver", found=r"timeout|no answer",
                             fix=r"dns_servers")
        self.assertEqual([c for c in doc["checks"] if c["check"] in ("dns.ptr", "dns.mx",
                                                                     "dns.spf", "tls.dane")], [])

    def test_deferred_mail_is_counted_by_reason_and_destination(self):
        def change(z):
            z["mx"].append(("dead.test", "mx.dead.test", 10))
            z["a"]["mx.dead.test"] = [OTHER]
        self.with_zone(change)
        self.addCleanup(lambda: self.ns.run([self.binary, "delete", "-c", self.srv.conf_path,
                                             "ALL"]))
        for n in range(3):
            res = netns.client(self.ns, "smtplib", "--host", "127.0.0.1", "--port", "25",
                               "--cafile", "", "--mail", "alice@example.test", "--subject",
                               "to dead %d" % n, "--rcpt", "bob%d@dead.test" % n)
            self.assertNotIn("error", res, res)

        def deferred():
            p = self.ns.run([self.binary, "queue", "-c", self.srv.conf_path, "--json"])
            q = json.loads(p.stdout)
            return sum(1 for m in q["messages"] for r in m["recipients"]
                       if r["attempts"] > 0) == 3
        self.assertTrue(imsdtest.wait_for(deferred, 20), "three deferred recipients")
        rc, doc = self.doctor()
        self.assertLine(doc, "queue", "ok", found=r"^3 messages, 3 recipients waiting")
        self.assertLine(doc, "queue.deferrals", "warn", found=r"3 recipients deferred, 0 "
                        r"failed; most common: 3x x-imsd; connect to mx\.dead\.test: ")
        self.assertLine(doc, "queue.failures", "warn", "dead.test", found=r"^3 recipients, the "
                        r"last error: ", fix=r"imsd explain-recipient")

    # -- certificates
    def test_expired_certificate_fails(self):
        cert, key = make_cert(self.dir, "expired", [HOST], -1)
        os.chown(key, 0, self.gid)
        os.chmod(key, 0o640)
        rc, doc = self.doctor(self.conf_with(tls_cert_file=cert, tls_key_file=key))
        self.assertFailsWith(doc, rc, "tls.expiry", cert, found=r"^expired ",
                             fix=r"certbot renew.*systemctl reload imsd")
        self.assertLine(doc, "tls.chain", "fail", cert, found=r"certificate has expired")

    def test_certificate_expiring_within_21_days_warns(self):
        cert, key = make_cert(self.dir, "soon", [HOST], 10)
        os.chown(key, 0, self.gid)
        os.chmod(key, 0o640)
        rc, doc = self.doctor(self.conf_with(tls_cert_file=cert, tls_key_file=key))
        self.assertLine(doc, "tls.expiry", "warn", cert, found=r"in (9|10) days",
                        fix=r"certbot renew")

    def test_certificate_for_another_name_warns_on_names(self):
        cert, key = make_cert(self.dir, "othername", ["www.example.test"], 60)
        os.chown(key, 0, self.gid)
        os.chmod(key, 0o640)
        rc, doc = self.doctor(self.conf_with(tls_cert_file=cert, tls_key_file=key))
        self.assertLine(doc, "tls.names", "warn", found=r"does not name mx\.example\.test",
                        fix=r"certbot certonly --standalone -d mx\.example\.test")
        # MTA-STS enforce with a certificate that does not name the MX: senders would defer
        self.assertFailsWith(doc, rc, "dns.mta-sts", DOMAIN, found=r"does not verify for "
                             r"mx\.example\.test")

    # -- the spool
    def test_foreign_owned_directory_planted_in_the_queue_fails(self):
        planted = os.path.join(self.srv.spool_dir, "queue", "planted")
        os.mkdir(planted)
        self.addCleanup(shutil.rmtree, planted, True)
        os.chown(planted, 12345, 12345)
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "spool", planted, found=r"a directory, where imsd keeps "
                             r"a file, owned by uid 12345", fix=r"rm -r -- " + re.escape(planted))

    def test_foreign_owned_file_in_the_spool_fails_with_the_chown(self):
        planted = os.path.join(self.srv.spool_dir, "corrupt", "left-by-someone")
        with open(planted, "w") as f:
            f.write("x")
        self.addCleanup(os.unlink, planted)
        os.chown(planted, 12345, 12345)
        os.chmod(planted, 0o600)
        rc, doc = self.doctor()
        l = self.assertFailsWith(doc, rc, "spool", planted, found=r"owned by uid 12345, not by "
                                 r"the user imsd runs as")
        self.assertIn("chown nobody:nobody %s" % planted, l["fix"])

    def test_foreign_owned_directory_at_the_top_of_the_spool_fails_with_the_chown(self):
        planted = os.path.join(self.srv.spool_dir, "planted")
        os.mkdir(planted)
        self.addCleanup(shutil.rmtree, planted, True)
        os.chown(planted, 12345, 12345)
        rc, doc = self.doctor()
        l = self.assertFailsWith(doc, rc, "spool", planted, found=r"another user's")
        self.assertIn("chown -R nobody:nobody %s" % planted, l["fix"])

    def test_spool_directory_with_a_wrong_mode_fails_with_the_chmod(self):
        q = os.path.join(self.srv.spool_dir, "queue")
        os.chmod(q, 0o755)
        self.addCleanup(os.chmod, q, 0o700)
        rc, doc = self.doctor()
        self.assertFailsWith(doc, rc, "spool", q, found=r"mode 0755, imsd makes it 0700",
                             fix=r"chmod 0700 " + re.escape(q))

    def test_unreadable_key_for_the_run_user_fails_config(self):
        key = os.path.join(self.dir, "rootonly.key")
        shutil.copy(self.key, key)
        os.chmod(key, 0o600)
        rc, doc = self.doctor(self.conf_with(tls_key_file=key))
        self.assertFailsWith(doc, rc, "config", found=r"read as nobody",
                             fix=r"readable by nobody")

    # -- the records to publish
    def test_dns_records_prints_what_makes_every_record_check_pass(self):
        p = self.ns.run([self.binary, "dns-records", "-c", self.srv.conf_path, DOMAIN])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout
        for want in (r"^example\.test\. +IN MX +10 mx\.example\.test\.$",
                     r'^example\.test\. +IN TXT +"v=spf1 ip4:198\.51\.100\.10 '
                     r'ip6:2001:db8::10 -all"$',
                     r'^s1\._domainkey\.example\.test\. +IN TXT +"v=DKIM1; k=rsa; p=',
                     r'^_dmarc\.example\.test\. +IN TXT +"v=DMARC1; p=none; '
                     r'rua=mailto:postmaster@example\.test"$',
                     r'^_mta-sts\.example\.test\. +IN TXT +"v=STSv1; id=[0-9a-f]{16}"$',
                     r'^_smtp\._tls\.example\.test\. +IN TXT +"v=TLSRPTv1; '
                     r'rua=mailto:postmaster@example\.test"$',
                     r"^; +version: STSv1$", r"^; +mode: testing$",
                     r"^; +mx: mx\.example\.test$",
                     r"^; _25\._tcp\.mx\.example\.test\. +IN TLSA +3 1 1 " + self.tlsa[3],
                     r"^; 10\.100\.51\.198\.in-addr\.arpa\. +IN PTR +mx\.example\.test\.$"):
            self.assertRegex(out, re.compile(want, re.M))
        # publish exactly those records (and nothing else of the domain) and ask doctor
        zone = {"mx": [], "a": {}, "ptr": dict(self.zone["ptr"]), "txt": {}, "tlsa": {}}
        for line in out.splitlines():
            m = re.match(r"^(\S+)\. +IN (\S+) +(.*)$", line)
            if not m:
                continue
            name, typ, rdata = m.groups()
            if typ == "MX":
                pref, host = rdata.split()
                zone["mx"].append((name, host.rstrip("."), int(pref)))
            elif typ in ("A", "AAAA"):
                zone["a"].setdefault(name, []).append(rdata)
            elif typ == "TXT":
                zone["txt"][name] = "".join(re.findall(r'"([^"]*)"', rdata))
        zone["a"].setdefault("mta-sts." + DOMAIN, [ADDR4])
        type(self).start_dns(zone)
        self.addCleanup(type(self).start_dns, self.zone)
        rc, doc = self.doctor()
        for check in ("dns.mx", "dns.host", "dns.spf", "dns.spf-helo", "dns.dkim",
                      "dns.dmarc", "dns.tls-rpt"):
            for l in self.lines(doc, check):
                self.assertEqual(l["status"], "ok", l)
        # the policy served is the test's (mode enforce), the record's id is new: still a
        # policy fetched and judged
        self.assertLine(doc, "dns.mta-sts", "ok", DOMAIN)
