"""Mail authentication (issue 9): DKIM signing, SPF, DKIM and DMARC checks, DNS lists.

Everything runs in a private network namespace the test creates: imsd listens on
198.51.100.10, the "Internet" clients connect from addresses the test puts on the namespace's
loopback (203.0.113.0/24), and dnsmasq on 127.0.0.1:53 inside it serves every record (SPF,
DKIM keys, DMARC policies, DNS lists). /etc/netns/NAME/resolv.conf points the namespace's
resolver at it, so the verifiers imsd did not write — dkimpy, pyspf and OpenDKIM's
opendkim-testmsg — ask the same server. No packet leaves the namespace.
"""

import json
import os
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

HERE = os.path.dirname(os.path.abspath(__file__))
AUTHCLIENT = os.path.join(HERE, "authclient.py")
DEBIAN_PY = "/usr/bin/python3"        # Debian's python3-dkim, python3-spf live here
DNSMASQ = "/usr/sbin/dnsmasq"

SERVER = netns.NS_ADDR                # 198.51.100.10
PORT = netns.PORT                     # imsd: checks, dmarc_reject, DNS lists, signing
PORT_SPF_REJECT = 2526                # a second imsd with spf_reject = yes
CLIENT = "203.0.113.5"                # permitted by the spf-pass records
CLIENT_LISTED = "203.0.113.66"        # on bl.test
CLIENT_ALLOWED = "203.0.113.77"       # on bl.test and on the allow-list wl.test
CLIENT_OTHER = "203.0.113.9"          # permitted by nothing
HOSTNAME = "mx.imsd.test"


def txt_arg(name, text):
    """A dnsmasq --txt-record with text split into strings of at most 255 characters (on
    dnsmasq's command line a comma separates the strings and quotes would be kept)."""
    assert "," not in text, text
    parts = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    return "--txt-record=%s,%s" % (name, ",".join(parts))


def parse_ar(msg):
    """The first Authentication-Results field of msg (bytes): (authserv-id, [(method, result,
    text)]) or None."""
    text = msg.decode("latin-1").replace("\r\n", "\n")
    head = text.split("\n\n", 1)[0]
    m = re.search(r"^Authentication-Results:(.*(?:\n[ \t].*)*)", head, re.M | re.I)
    if not m:
        return None
    value = re.sub(r"\n[ \t]+", " ", m.group(1)).strip()
    parts = [p.strip() for p in re.split(r';(?=(?:[^"]*"[^"]*")*[^"]*$)', value)]
    results = []
    for p in parts[1:]:
        mm = re.match(r"(\w+)=(\w+)(.*)", p)
        if mm:
            results.append((mm.group(1), mm.group(2), mm.group(3)))
    return parts[0], results


class MailAuth(ImsdCase):
    """One namespace, one dnsmasq and two imsd servers for the whole class."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ns = cls.dnsmasq = None
        cls.servers_ = []
        cls._skip = None
        cls.dir = tempfile.mkdtemp(prefix="imsd-mailauth-")
        try:
            cls.binary = imsd_binary()
            imsdtest.need_tool(DNSMASQ, "dnsmasq-base")
            cls.ns = netns.NetNS.create()
        except unittest.SkipTest as e:
            cls._skip = str(e)             # "not root": every test reports it (see setUp)
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
        ns = cls.ns
        for a in (CLIENT, CLIENT_LISTED, CLIENT_ALLOWED, CLIENT_OTHER):
            p = ns.run(["ip", "addr", "add", a + "/32", "dev", "lo"])
            assert p.returncode == 0, p.stderr
        cls.etc = "/etc/netns/" + ns.name
        os.makedirs(cls.etc, exist_ok=True)
        with open(os.path.join(cls.etc, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\n")
        # keys: imsd's own (made by imsd dkim-keygen) and a sender's outside (openssl)
        cls.keys = {}
        records = []
        for dom, sel, ed in (("rsa.test", "s1", False), ("ed.test", "e1", True),
                             ("both.test", "r1", False), ("both.test", "e1", True)):
            path = os.path.join(cls.dir, "%s-%s.key" % (dom, sel))
            args = [cls.binary, "dkim-keygen"] + (["--ed25519"] if ed else []) + [dom, sel, path]
            p = subprocess.run(args, capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            line = p.stdout.strip()
            assert line.startswith("%s._domainkey.%s. IN TXT \"v=DKIM1; k=%s; p="
                                   % (sel, dom, "ed25519" if ed else "rsa")), line
            assert oct(os.stat(path).st_mode & 0o777) == "0o600"
            value = "".join(re.findall(r'"([^"]*)"', line))
            records.append(("%s._domainkey.%s" % (sel, dom), value))
            cls.keys.setdefault(dom, []).append((sel, path))
        cls.ext_key = os.path.join(cls.dir, "ext.key")
        subprocess.run(["openssl", "genrsa", "-traditional", "-out", cls.ext_key, "2048"],
                       capture_output=True, check=True, timeout=60)
        pub = subprocess.run(["openssl", "rsa", "-in", cls.ext_key, "-pubout", "-outform", "DER"],
                             capture_output=True, check=True, timeout=60).stdout
        import base64
        records.append(("x1._domainkey.ext.test", "v=DKIM1; k=rsa; p=" +
                        base64.b64encode(pub).decode()))
        records.append(("o1._domainkey.ext.test", "v=DKIM1; k=rsa; p=" +
                        base64.b64encode(pub).decode()))
        # an Ed25519 key for dkimpy (a raw 32-byte seed, as dkimpy wants it)
        seed = os.urandom(32)
        cls.ext_ed_seed = base64.b64encode(seed)
        pubed = subprocess.run([DEBIAN_PY, "-c", "import nacl.signing,base64,sys;"
                                "k=nacl.signing.SigningKey(base64.b64decode(sys.argv[1]));"
                                "print(base64.b64encode(bytes(k.verify_key)).decode())",
                                cls.ext_ed_seed.decode()],
                               capture_output=True, text=True, check=True, timeout=60).stdout
        records.append(("x2._domainkey.exted.test", "v=DKIM1; k=ed25519; p=" + pubed.strip()))
        cls.records = dict(records)
        cls.odkim_sign = os.path.join(cls.dir, "odkim_sign")
        subprocess.run(["cc", "-O1", "-o", cls.odkim_sign, os.path.join(HERE, "odkim_sign.c"),
                        "-lopendkim"], check=True, capture_output=True, timeout=120)

        spf = {
            "spf-pass.test": "v=spf1 ip4:%s -all" % CLIENT,
            "spf-fail.test": "v=spf1 ip4:192.0.2.1 -all",
            "spf-soft.test": "v=spf1 ~all",
            "spf-neutral.test": "v=spf1 ?all",
            "spf-perm.test": "v=spf1 ip4:%s/99 -all" % CLIENT,
            "spf-void.test": "v=spf1 a:n1.spf-void.test a:n2.spf-void.test "
                             "a:n3.spf-void.test ip4:%s -all" % CLIENT,
            "spf-temp.test": "v=spf1 include:dead.spf-temp.test -all",
            "client.test": "v=spf1 ip4:%s -all" % CLIENT,
            "ext.test": "v=spf1 ip4:%s -all" % CLIENT,
            "exted.test": "v=spf1 ip4:%s -all" % CLIENT,
            "aligned.test": "v=spf1 ip4:%s -all" % CLIENT,
            "mail.relaxed.test": "v=spf1 ip4:%s -all" % CLIENT,
            "mail.strict.test": "v=spf1 ip4:%s -all" % CLIENT,
        }
        dmarc = {
            "aligned.test": "v=DMARC1; p=reject",
            "reject.test": "v=DMARC1; p=reject; rua=mailto:d@reject.test",  # (no commas)
            "none.test": "v=DMARC1; p=none",
            "quarantine.test": "v=DMARC1; p=quarantine",
            "sp.test": "v=DMARC1; p=none; sp=reject",
            "relaxed.test": "v=DMARC1; p=reject",
            "strict.test": "v=DMARC1; p=reject; aspf=s; adkim=s",
            "ext.test": "v=DMARC1; p=reject",
            "keytemp.test": "v=DMARC1; p=reject",
        }
        args = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--listen-address=127.0.0.1", "--bind-interfaces", "--port=53", "--user=root",
                "--pid-file=", "--cache-size=0", "--log-queries",
                "--log-facility=" + os.path.join(cls.dir, "dnsmasq.log"),
                # a dead upstream for one name: its lookups fail (temperror)
                "--server=/dead.spf-temp.test/127.0.0.3#5399",
                "--server=/_dmarc.dmarc-temp.test/127.0.0.3#5399",
                "--server=/spf-temp2.test/127.0.0.3#5399",
                "--server=/k1._domainkey.keytemp.test/127.0.0.3#5399",
                "--local=/test/"]
        for name, value in cls.records.items():
            args.append(txt_arg(name, value))
        for dom, value in spf.items():
            args.append(txt_arg(dom, value))
        for dom, value in dmarc.items():
            args.append(txt_arg("_dmarc." + dom, value))
        args.append("--host-record=spf-none.test,192.0.2.50")
        # the DNS lists (RFC 5782): reversed octets under the zone
        args.append("--host-record=66.113.0.203.bl.test,127.0.0.2")
        args.append("--host-record=77.113.0.203.bl.test,127.0.0.4")
        args.append("--host-record=77.113.0.203.wl.test,127.0.10.1")
        args.append("--host-record=2.0.0.127.bl.test,127.0.0.2")     # RFC 5782 test entry
        cls.dnsmasq = subprocess.Popen(ns.argv(args), stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            p = ns.run(["getent", "hosts", "spf-none.test"])
            if p.returncode == 0 or time.monotonic() > deadline:
                break
            if cls.dnsmasq.poll() is not None:
                raise AssertionError("dnsmasq exited: %s" % cls.dnsmasq.stderr.read())
            time.sleep(0.05)
        assert p.returncode == 0, "dnsmasq did not answer inside the namespace"

        sign = ", ".join("%s:%s:%s" % (dom, sel, path) for dom, lst in cls.keys.items()
                         for sel, path in lst)
        common = dict(hostname=HOSTNAME, local_domains="imsd.test",
                      dns_servers="127.0.0.1:53", inbound_checks="yes", log_level="debug")
        cls.srv = netns.NsServer(ns, os.path.join(cls.dir, "srv"), dkim_sign=sign,
                                 dnsbl="bl.test", dnswl="wl.test", **common)
        cls.servers_.append(cls.srv)
        cls.srv.start()
        cls.srv2 = netns.NsServer(ns, os.path.join(cls.dir, "srv2"), spf_reject="yes",
                                  listen="0.0.0.0:%d" % PORT_SPF_REJECT, **common)
        cls.srv2.port = PORT_SPF_REJECT
        cls.servers_.append(cls.srv2)
        cls.srv2.start()
        cls.n = 0

    @classmethod
    def _cleanup(cls):
        try:
            for s in cls.servers_:
                s.close()
        finally:
            if cls.dnsmasq is not None and cls.dnsmasq.poll() is None:
                cls.dnsmasq.terminate()          # our child, by pid
                try:
                    cls.dnsmasq.wait(5)
                except subprocess.TimeoutExpired:
                    cls.dnsmasq.kill()
                    cls.dnsmasq.wait(5)
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
        self.servers.extend(self.servers_)

    # -- helpers
    def message(self, frm, subject, body="Hello.\r\n", extra=""):
        type(self).n += 1
        marker = "m%d-%d@test" % (os.getpid(), self.n)
        return marker, ("From: %s\r\nTo: bob@imsd.test\r\nSubject: %s\r\nMessage-ID: <%s>\r\n"
                        "Date: Sun, 29 Nov 2026 00:00:00 +0000\r\n%s\r\n%s"
                        % (frm, subject, marker, extra, body)).encode()

    def send(self, source, mail, data, rcpt=("bob@imsd.test",), helo="client.test",
             port=PORT, host=SERVER):
        type(self).n += 1
        spec = os.path.join(self.dir, "spec-%d.json" % self.n)
        dfile = os.path.join(self.dir, "data-%d.eml" % self.n)
        with open(dfile, "wb") as f:
            f.write(data)
        with open(spec, "w") as f:
            json.dump({"host": host, "port": port, "source": source, "helo": helo,
                       "mail": mail, "rcpt": list(rcpt), "data_file": dfile}, f)
        p = self.ns.run([sys.executable, AUTHCLIENT, spec], timeout=120)
        try:
            return json.loads(p.stdout)
        except ValueError:
            raise AssertionError("authclient printed no JSON: %s %s" % (p.stdout, p.stderr))

    def delivered(self, marker, srv=None, timeout=imsdtest.DELIVERY_TIMEOUT):
        srv = srv or self.srv
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for f in srv.maildir_files("imsd.test", "bob"):
                with open(f, "rb") as fh:
                    data = fh.read()
                if marker.encode() in data:
                    return data
            time.sleep(0.05)
        raise AssertionError("no message %s delivered%s" % (marker, srv.log_tail_msg()))

    def accepted(self, res):
        self.assertNotIn("error", res, res)
        self.assertEqual(res.get("data", [0])[0], 250, res)

    def results(self, msg, method):
        ar = parse_ar(msg)
        self.assertIsNotNone(ar, "no Authentication-Results in %r" % msg[:600])
        self.assertEqual(ar[0], HOSTNAME)
        return [(r, rest) for m, r, rest in ar[1] if m == method]

    def pyspf(self, ip, sender, helo="client.test"):
        code = ("import spf,sys,json; print(json.dumps(spf.check2(i=sys.argv[1], s=sys.argv[2],"
                " h=sys.argv[3])))")
        p = self.ns.run([DEBIAN_PY, "-c", code, ip, sender, helo])
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)[0]

    def dkimpy_verify(self, msg, idx=0):
        code = ("import dkim,sys,json,dns.resolver\n"
                "recs=json.load(open(sys.argv[1]))\n"
                "def dnsfunc(name, timeout=5):\n"
                "    return recs.get(name.decode().rstrip('.'), '').encode() or None\n"
                "m=open(sys.argv[2],'rb').read()\n"
                "d=dkim.DKIM(m)\n"
                "print(json.dumps([d.verify(idx=i, dnsfunc=dnsfunc) for i in range(int(sys.argv[3]))]))\n")
        rfile = os.path.join(self.dir, "records.json")
        with open(rfile, "w") as f:
            json.dump(self.records, f)
        type(self).n += 1
        mfile = os.path.join(self.dir, "verify-%d.eml" % self.n)
        with open(mfile, "wb") as f:
            f.write(msg)
        nsig = len(re.findall(rb"^DKIM-Signature:", msg, re.M | re.I))
        p = subprocess.run([DEBIAN_PY, "-c", code, rfile, mfile, str(nsig)],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def opendkim_verify(self, msg):
        """opendkim-testmsg in verify mode, inside the namespace (its resolver asks our dnsmasq).
        Returns (exit status, stderr)."""
        p = subprocess.run(self.ns.argv(["opendkim-testmsg"]), input=msg, capture_output=True,
                           timeout=120)
        return p.returncode, p.stderr.decode("latin-1")

    # ------------------------------------------------------------ DKIM signing

    def signed_by_imsd(self, frm, body, subject="signed", extra=""):
        marker, data = self.message(frm, subject, body, extra)
        res = self.send("127.0.0.1", frm.split("<")[-1].rstrip(">"), data, host="127.0.0.1")
        self.accepted(res)
        return self.delivered(marker)

    BODIES = {
        "folded headers": ("Hello.\r\n", "X-Folded: one\r\n two\r\n\t three\r\n"),
        "trailing whitespace": ("line with trailing spaces   \r\ntab\t\r\n\r\n\r\n", ""),
        "empty body": ("", ""),
        "8-bit body": ("caf\xe9 \xfcber na\xefve\r\n", "Content-Type: text/plain; charset=latin-1\r\n"
                       "Content-Transfer-Encoding: 8bit\r\nMIME-Version: 1.0\r\n"),
    }

    def check_signed(self, dom, nsig):
        for what, (body, extra) in self.BODIES.items():
            with self.subTest(message=what):
                msg = self.signed_by_imsd("Alice <alice@%s>" % dom, body, extra=extra)
                self.assertEqual(len(re.findall(rb"^DKIM-Signature:", msg, re.M)), nsig, msg[:800])
                self.assertTrue(all(self.dkimpy_verify(msg)), "dkimpy: %s" % what)
                st, err = self.opendkim_verify(msg)
                self.assertEqual(st, 0, "opendkim-testmsg (%s): %s" % (what, err))

    def test_rsa_signatures_verify_with_dkimpy_and_opendkim(self):
        self.check_signed("rsa.test", 1)

    def test_ed25519_signatures_verify_with_dkimpy_and_opendkim(self):
        self.check_signed("ed.test", 1)

    def test_two_keys_for_a_domain_sign_twice_and_both_verify(self):
        msg = self.signed_by_imsd("Bob <b@both.test>", "two signatures\r\n")
        sigs = re.findall(rb"^DKIM-Signature:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*", msg, re.M)
        self.assertEqual(len(sigs), 2)
        self.assertTrue(any(b"a=rsa-sha256" in s for s in sigs))
        self.assertTrue(any(b"a=ed25519-sha256" in re.sub(rb"\s", b"", s) for s in sigs))
        self.assertEqual(self.dkimpy_verify(msg), [True, True])
        self.assertEqual(self.opendkim_verify(msg)[0], 0)

    def test_a_5_mb_attachment_is_signed_and_verifies(self):
        import base64
        blob = base64.encodebytes(os.urandom(3_800_000)).decode().replace("\n", "\r\n")
        body = ("--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
                "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + blob + "--b--\r\n")
        extra = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
        msg = self.signed_by_imsd("Alice <alice@rsa.test>", body, extra=extra)
        self.assertGreater(len(msg), 5_000_000)
        self.assertEqual(self.dkimpy_verify(msg), [True])
        self.assertEqual(self.opendkim_verify(msg)[0], 0)

    def test_the_from_header_is_oversigned_and_unlisted_domains_are_not_signed(self):
        msg = self.signed_by_imsd("Alice <alice@rsa.test>", "x\r\n")
        h = re.search(rb"[;\s]h=([^;]*);", re.sub(rb"\r\n[ \t]+", b" ", msg)).group(1).lower()
        self.assertEqual(h.replace(b" ", b"").split(b":").count(b"from"), 2, h)
        msg = self.signed_by_imsd("Carol <carol@unsigned.test>", "x\r\n")
        self.assertNotIn(b"DKIM-Signature:", msg)

    # ------------------------------------------------------------ SPF

    def spf_case(self, domain, expect, client=CLIENT, frm=None):
        marker, data = self.message(frm or "x@%s" % domain, "spf " + domain)
        res = self.send(client, "x@%s" % domain, data)
        self.accepted(res)
        got = self.results(self.delivered(marker), "spf")
        mailfrom = [r for r, rest in got if "smtp.mailfrom=" in rest]
        self.assertEqual(mailfrom, [expect], got)
        self.assertEqual(self.pyspf(client, "x@%s" % domain), expect,
                         "pyspf disagrees for %s" % domain)

    def test_spf_pass(self):
        self.spf_case("spf-pass.test", "pass")

    def test_spf_fail(self):
        self.spf_case("spf-fail.test", "fail")

    def test_spf_softfail(self):
        self.spf_case("spf-soft.test", "softfail")

    def test_spf_neutral(self):
        self.spf_case("spf-neutral.test", "neutral")

    def test_spf_none(self):
        self.spf_case("spf-none.test", "none")

    def test_spf_permerror_for_a_bad_record(self):
        self.spf_case("spf-perm.test", "permerror")

    def test_spf_permerror_after_more_than_two_void_lookups(self):
        self.spf_case("spf-void.test", "permerror")

    def test_spf_temperror_when_dns_fails(self):
        self.spf_case("spf-temp.test", "temperror")

    def test_spf_temperror_when_the_record_itself_cannot_be_looked_up(self):
        # (From: elsewhere: the DMARC record of spf-temp2.test cannot be looked up either,
        # and that alone is a 451, see the DMARC tests)
        self.spf_case("spf-temp2.test", "temperror", frm="x@spf-none.test")

    def test_spf_of_the_helo_name_is_recorded(self):
        marker, data = self.message("x@spf-pass.test", "helo")
        self.accepted(self.send(CLIENT, "x@spf-pass.test", data, helo="client.test"))
        got = self.results(self.delivered(marker), "spf")
        self.assertIn(("pass", " smtp.helo=client.test"), got)

    def test_spf_reject_yes_refuses_a_fail_at_mail_with_5_7_23(self):
        marker, data = self.message("x@spf-fail.test", "spf reject")
        res = self.send(CLIENT, "x@spf-fail.test", data, port=PORT_SPF_REJECT)
        self.assertEqual(res["mail"][0], 550, res)
        self.assertTrue(res["mail"][1].startswith("5.7.23 "), res)
        self.assertIn("spf-fail.test", res["mail"][1])
        marker, data = self.message("x@spf-pass.test", "spf reject pass")
        self.accepted(self.send(CLIENT, "x@spf-pass.test", data, port=PORT_SPF_REJECT))
        got = self.results(self.delivered(marker, srv=self.srv2), "spf")
        self.assertIn("pass", [r for r, _ in got])

    # ------------------------------------------------------------ DKIM verification

    def inbound_signed(self, signer, tamper=False):
        marker, data = self.message("Ext <x@ext.test>" if signer != "dkimpy-ed25519" else
                                    "Ext <x@exted.test>", "inbound " + signer,
                                    "A body line.\r\nAnother.\r\n")
        type(self).n += 1
        src = os.path.join(self.dir, "unsigned-%d.eml" % self.n)
        with open(src, "wb") as f:
            f.write(data)
        if signer == "opendkim":
            # libopendkim's rsa-sha256, as the opendkim milter signs (odkim_sign.c)
            p = subprocess.run([self.odkim_sign, "ext.test", "o1", self.ext_key], input=data,
                               capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            signed = p.stdout
        elif signer == "opendkim-testmsg":
            p = subprocess.run(["opendkim-testmsg", "-C", "-d", "ext.test", "-s", "o1", "-k",
                                self.ext_key], input=data, capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            signed = p.stdout
        else:
            if signer == "dkimpy-rsa":
                code = ("import dkim,sys;m=open(sys.argv[1],'rb').read();"
                        "s=dkim.sign(m,b'x1',b'ext.test',open(sys.argv[2],'rb').read(),"
                        "include_headers=[b'from',b'to',b'subject',b'message-id']);"
                        "sys.stdout.buffer.write(s+m)")
                args = [src, self.ext_key]
            else:
                code = ("import dkim,sys,base64;m=open(sys.argv[1],'rb').read();"
                        "s=dkim.sign(m,b'x2',b'exted.test',sys.argv[2].encode(),"
                        "signature_algorithm=b'ed25519-sha256',"
                        "include_headers=[b'from',b'to',b'subject']);sys.stdout.buffer.write(s+m)")
                args = [src, self.ext_ed_seed.decode()]
            p = subprocess.run([DEBIAN_PY, "-c", code] + args, capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            signed = p.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if tamper:
            signed = signed.replace(b"A body line.", b"A changed line.")
        res = self.send(CLIENT, "x@ext.test" if "ed25519" not in signer else "x@exted.test",
                        signed)
        self.accepted(res)
        return self.results(self.delivered(marker), "dkim")

    def test_dkimpy_rsa_signature_verifies_as_pass(self):
        got = self.inbound_signed("dkimpy-rsa")
        self.assertEqual(got[0][0], "pass", got)
        self.assertIn("header.d=ext.test", got[0][1])
        self.assertIn("header.s=x1", got[0][1])

    def test_dkimpy_ed25519_signature_verifies_as_pass(self):
        got = self.inbound_signed("dkimpy-ed25519")
        self.assertEqual(got[0][0], "pass", got)
        self.assertIn("header.a=ed25519-sha256", got[0][1])

    def test_opendkim_signature_verifies_as_pass(self):
        got = self.inbound_signed("opendkim")
        self.assertEqual(got[0][0], "pass", got)
        self.assertIn("header.s=o1", got[0][1])
        self.assertIn("header.a=rsa-sha256", got[0][1])

    def test_opendkim_testmsg_signs_rsa_sha1_which_gets_dkim_policy(self):
        # opendkim-testmsg has no algorithm option and signs rsa-sha1: RFC 8301 3.1
        got = self.inbound_signed("opendkim-testmsg")
        self.assertEqual(got[0][0], "policy", got)
        self.assertIn("RFC 8301", got[0][1])

    def test_a_body_changed_in_transit_gives_dkim_fail(self):
        got = self.inbound_signed("dkimpy-rsa", tamper=True)
        self.assertEqual(got[0][0], "fail", got)
        self.assertIn("body hash", got[0][1])

    def dkimpy_signed(self, data, selector, domain, alg=b"rsa-sha256"):
        code = ("import dkim,sys;m=sys.stdin.buffer.read();"
                "s=dkim.sign(m,sys.argv[2].encode(),sys.argv[3].encode(),open(sys.argv[1],'rb').read(),"
                "signature_algorithm=sys.argv[4].encode());sys.stdout.buffer.write(s+m)")
        p = subprocess.run([DEBIAN_PY, "-c", code, self.ext_key, selector, domain, alg.decode()],
                           input=data, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    def test_a_dkim_key_that_cannot_be_looked_up_is_temperror_and_451_under_p_reject(self):
        marker, data = self.message("K <k@keytemp.test>", "key temp", "B.\r\n")
        res = self.send(CLIENT, "x@spf-fail.test", self.dkimpy_signed(data, "k1", "keytemp.test"))
        self.assertEqual(res["data"][0], 451, res)
        self.assertTrue(res["data"][1].startswith("4.7.1 "), res)
        self.assertRegex(self.srv.log_text(), r"dkim=temperror:keytemp\.test")

    def test_rsa_sha1_signatures_do_not_pass(self):
        marker, data = self.message("Ext <x@ext.test>", "sha1", "B.\r\n")
        res = self.send(CLIENT_OTHER, "x@spf-fail.test",
                        self.dkimpy_signed(data, "x1", "ext.test", b"rsa-sha1"))
        self.assertEqual(res["data"][0], 550, res)      # ext.test is p=reject
        self.assertRegex(self.srv.log_text(), r"dkim=policy:ext\.test")

    def test_unsigned_mail_gets_dkim_none(self):
        marker, data = self.message("x@spf-pass.test", "unsigned")
        self.accepted(self.send(CLIENT, "x@spf-pass.test", data))
        self.assertEqual([r for r, _ in self.results(self.delivered(marker), "dkim")], ["none"])

    # ------------------------------------------------------------ DMARC

    def dmarc_case(self, frm, mail, client=CLIENT):
        marker, data = self.message(frm, "dmarc " + frm)
        return marker, self.send(client, mail, data)

    def test_dmarc_aligned_spf_pass_is_dmarc_pass(self):
        marker, res = self.dmarc_case("A <a@aligned.test>", "bounce@aligned.test")
        self.accepted(res)
        got = self.results(self.delivered(marker), "dmarc")
        self.assertEqual(got[0][0], "pass", got)
        self.assertIn("header.from=aligned.test", got[0][1])

    def test_dmarc_p_reject_failure_is_refused_with_550_5_7_1_naming_the_domain(self):
        marker, res = self.dmarc_case("CEO <ceo@reject.test>", "x@spf-pass.test")
        self.assertEqual(res["data"][0], 550, res)
        self.assertTrue(res["data"][1].startswith("5.7.1 "), res)
        self.assertIn("reject.test", res["data"][1])
        self.assertIn("policy", res["data"][1])
        self.assertNoMail(self.srv, "imsd.test", "nobody")
        self.assertTrue(self.srv.log_text().count("event=reject stage=data") >= 1)

    def test_dmarc_p_none_failure_is_delivered_with_the_header(self):
        marker, res = self.dmarc_case("N <n@none.test>", "x@spf-pass.test")
        self.accepted(res)
        got = self.results(self.delivered(marker), "dmarc")
        self.assertEqual(got[0][0], "fail", got)
        self.assertIn("p=none", got[0][1])

    def test_dmarc_p_quarantine_failure_is_delivered_and_recorded(self):
        marker, res = self.dmarc_case("Q <q@quarantine.test>", "x@spf-pass.test")
        self.accepted(res)
        got = self.results(self.delivered(marker), "dmarc")
        self.assertEqual(got[0][0], "fail", got)
        self.assertIn("p=quarantine", got[0][1])

    def test_dmarc_subdomain_policy_applies_to_subdomains(self):
        marker, res = self.dmarc_case("S <s@mail.sp.test>", "x@spf-pass.test")
        self.assertEqual(res["data"][0], 550, res)
        self.assertIn("sp.test", res["data"][1])

    def test_dmarc_relaxed_alignment_accepts_a_subdomain_spf_pass(self):
        marker, res = self.dmarc_case("R <r@relaxed.test>", "bounce@mail.relaxed.test")
        self.accepted(res)
        self.assertEqual(self.results(self.delivered(marker), "dmarc")[0][0], "pass")

    def test_dmarc_strict_alignment_refuses_a_subdomain_spf_pass(self):
        marker, res = self.dmarc_case("T <t@strict.test>", "bounce@mail.strict.test")
        self.assertEqual(res["data"][0], 550, res)
        self.assertIn("strict.test", res["data"][1])

    def test_dmarc_pass_through_an_aligned_dkim_signature(self):
        # the SPF domain (spf-fail.test) does not align; the dkimpy signature of ext.test does
        marker, data = self.message("Ext <x@ext.test>", "dkim aligned", "B.\r\n")
        code = ("import dkim,sys;m=sys.stdin.buffer.read();"
                "s=dkim.sign(m,b'x1',b'ext.test',open(sys.argv[1],'rb').read());"
                "sys.stdout.buffer.write(s+m)")
        p = subprocess.run([DEBIAN_PY, "-c", code, self.ext_key], input=data,
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        signed = p.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        res = self.send(CLIENT_OTHER, "x@spf-fail.test", signed)
        self.accepted(res)
        msg = self.delivered(marker)
        self.assertEqual(self.results(msg, "dmarc")[0][0], "pass")
        self.assertEqual(self.results(msg, "spf")[0][0], "fail")

    def test_a_dmarc_record_that_cannot_be_looked_up_gets_451_4_7_1_not_a_reject(self):
        marker, res = self.dmarc_case("T <t@dmarc-temp.test>", "x@spf-pass.test")
        self.assertEqual(res["data"][0], 451, res)
        self.assertTrue(res["data"][1].startswith("4.7.1 "), res)
        self.assertIn("dmarc-temp.test", res["data"][1])
        self.assertIn("try again later", res["data"][1])

    def test_a_malformed_line_does_not_hide_the_from_field(self):
        marker, data = self.message("CEO <ceo@reject.test>", "junk line",
                                    extra="X-Junk no colon here\r\n")
        data = data.replace(b"From: CEO", b"X-Junk no colon here\r\nFrom: CEO", 1)
        res = self.send(CLIENT, "x@spf-pass.test", data)
        self.assertEqual(res["data"][0], 550, res)
        self.assertIn("reject.test", res["data"][1])

    def test_a_header_section_too_large_to_evaluate_is_refused(self):
        pad = "".join("X-Pad-%05d: %s\r\n" % (i, "p" * 60) for i in range(15000))  # ~1.1 MB
        marker, data = self.message("CEO <ceo@reject.test>", "padded")
        data = pad.encode() + data
        res = self.send(CLIENT, "x@spf-pass.test", data)
        self.assertEqual(res["data"][0], 550, res)
        self.assertIn("header section", res["data"][1])

    def test_an_unparsable_from_is_refused(self):
        marker, data = self.message("PayPal <service@reject.test", "unterminated")
        res = self.send(CLIENT, "x@spf-pass.test", data)
        self.assertEqual(res["data"][0], 550, res)
        self.assertIn("From", res["data"][1])

    def test_several_from_domains_are_refused(self):
        marker, data = self.message("a@aligned.test, b@other.test", "two authors")
        res = self.send(CLIENT, "a@aligned.test", data)
        self.assertEqual(res["data"][0], 550, res)
        self.assertIn("From", res["data"][1])

    # ------------------------------------------------------------ the header itself

    def test_authentication_results_is_the_first_field_and_forged_ones_are_removed(self):
        forged = ("Authentication-Results: mx.imsd.test; dkim=pass header.d=paypal.com;\r\n"
                  "\tdmarc=pass header.from=paypal.com\r\n"
                  "Authentication-Results: other.example; spf=pass\r\n")
        marker, data = self.message("x@spf-pass.test", "forged", extra=forged)
        self.accepted(self.send(CLIENT, "x@spf-pass.test", data))
        msg = self.delivered(marker)
        fields = re.findall(rb"^([A-Za-z-]+):", msg.split(b"\r\n\r\n")[0], re.M)
        names = [f.lower() for f in fields if f.lower() != b"return-path"]
        self.assertEqual(names[0], b"authentication-results", fields)
        self.assertEqual(names[1], b"received", fields)
        self.assertEqual(msg.count(b"Authentication-Results: mx.imsd.test"), 1)
        self.assertNotIn(b"paypal", msg)
        self.assertIn(b"Authentication-Results: other.example; spf=pass", msg)
        self.assertIn("event=ar-removed", self.srv.log_text())

    def test_mail_from_relay_networks_and_loopback_is_not_checked(self):
        marker, data = self.message("CEO <ceo@reject.test>", "local")
        res = self.send("127.0.0.1", "x@spf-fail.test", data, host="127.0.0.1")
        self.accepted(res)
        self.assertIsNone(parse_ar(self.delivered(marker)))

    # ------------------------------------------------------------ DNS lists

    def test_a_listed_client_gets_554_naming_the_list_and_code(self):
        marker, data = self.message("x@spf-pass.test", "listed")
        res = self.send(CLIENT_LISTED, "x@spf-pass.test", data)
        self.assertEqual(res["connect"][0], 220, res)        # the banner first
        self.assertEqual(res["mail"][0], 554, res)
        self.assertTrue(res["mail"][1].startswith("5.7.1 "), res)
        self.assertIn("bl.test", res["mail"][1])
        self.assertIn("127.0.0.2", res["mail"][1])
        self.assertIn("203.0.113.66", res["mail"][1])
        self.assertRegex(self.srv.log_text(), r"event=dnsbl listed=yes score=1 dnsbl=bl\.test\(127\.0\.0\.2\)")

    def test_an_allow_list_entry_outweighs_a_block_list_entry(self):
        marker, data = self.message("x@spf-pass.test", "allowed")
        res = self.send(CLIENT_ALLOWED, "x@spf-pass.test", data)
        self.accepted(res)
        self.delivered(marker)
        self.assertIn("dnswl=wl.test(127.0.10.1)", self.srv.log_text())

    def test_an_unlisted_client_is_accepted(self):
        marker, data = self.message("x@spf-pass.test", "unlisted")
        self.accepted(self.send(CLIENT, "x@spf-pass.test", data))

    # ------------------------------------------------------------ explain-auth

    def test_explain_auth_prints_each_verdict_with_its_reason(self):
        marker, data = self.message("CEO <ceo@reject.test>", "explain")
        path = os.path.join(self.dir, "explain.eml")
        with open(path, "wb") as f:
            f.write(data.replace(b"\r\n", b"\n"))
        p = self.ns.run([self.binary, "explain-auth", "-c", self.srv.conf_path, path,
                         "--client-ip", CLIENT, "--helo", "client.test",
                         "--mail-from", "x@spf-pass.test"])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout
        self.assertIn("SPF (MAIL FROM x@spf-pass.test): pass", out)
        self.assertIn("DKIM: none", out)
        self.assertIn("DMARC (From: reject.test): fail (record of reject.test, p=reject)", out)
        self.assertIn("Verdict: 550 5.7.1", out)
        self.assertIn("Authentication-Results: mx.imsd.test;", out)


if __name__ == "__main__":
    unittest.main()
