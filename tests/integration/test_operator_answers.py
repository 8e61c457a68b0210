"""`imsd queue --json` (one JSON document, every outside string escaped) and
`imsd explain-recipient ADDRESS` (local or relay, aliases, the route: relayhost or the MX
list from the relay's resolver, TLS, and the queued mail to the address).

The MX cases use the dnsmasq peer: dest.test has two MX hosts on 127.0.0.3 and 127.0.0.4,
where nothing listens unless a test starts a scripted peer; retry_min is 30s so a queued
recipient stays deferred while the test looks at it.
"""

import json
import re
import time

import peers
from imsdtest import make_message, run_cli

MX = dict(mx=[("dest.test", "mx1.dest.test", 10), ("dest.test", "mx2.dest.test", 20)],
          hosts=[("mx1.dest.test", "127.0.0.3"), ("mx2.dest.test", "127.0.0.4")],
          null_mx=["nomail.test"])
# what a hostile remote server may answer: quotes, backslashes, braces, a tab, 8-bit text
HOSTILE_REASON = '451 4.3.0 "quoted" \\back\\slash {"json": [1]}\tand caf\xe9 </script>'
HOSTILE_SENDER = '"we\\"ird \\\\ sender"@example.org'       # "we\"ird \\ sender"@example.org
HOSTILE_RCPT = '"bob\\"x,y"@dest.test'


class OperatorCase(peers.RelayCase):

    def cli(self, srv, *args):
        return run_cli([args[0], "-c", srv.conf_path] + list(args[1:]))

    def queue_json(self, srv):
        p = self.cli(srv, "queue", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            self.fail("queue --json is not JSON (%s):\n%s" % (e, p.stdout))

    def explain(self, srv, address, status=0):
        p = self.cli(srv, "explain-recipient", address)
        self.assertEqual(p.returncode, status, "%s%s" % (p.stdout, p.stderr))
        return p.stdout


class QueueJson(OperatorCase):

    def test_empty_queue_is_an_empty_list(self):
        srv = self.sender()
        doc = self.queue_json(srv)
        self.assertEqual(doc["messages"], [])
        self.assertEqual(doc["count"], 0)
        self.assertEqual(doc["unreadable"], [])
        self.assertEqual(doc["spool_dir"], srv.spool_dir)

    def test_hostile_sender_address_and_reason_survive_as_json_strings(self):
        dns = self.dns(**MX)
        for host in ("127.0.0.3", "127.0.0.4"):
            self.peer(host, rcpt=lambda a, n: HOSTILE_REASON if "bob" in a else "250 2.1.5 ok")
        tx = self.sender(dns, retry_min="30s", retry_max="1h")
        t0 = int(time.time())
        with tx.client() as c:
            r = self.transaction(c, HOSTILE_SENDER, [HOSTILE_RCPT, "carol@dest.test"],
                                 make_message("hostile", to="carol@dest.test"))
            self.assertEqual(r.code, 250, r)
        qid = peers.qid_of(r.text)
        peers.wait_event(tx, "deferred", qid=qid)
        peers.wait_event(tx, "delivered", qid=qid)
        doc = self.queue_json(tx)
        self.assertEqual(doc["count"], 1)
        m = doc["messages"][0]
        self.assertEqual(m["id"], qid)
        self.assertEqual(m["sender"], '"we\\"ird \\\\ sender"@example.org')
        self.assertGreaterEqual(m["arrival"], t0 - 1)
        self.assertRegex(m["arrival_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertGreater(m["size"], 50)
        self.assertEqual(m["client"], "127.0.0.1")
        rc = {x["address"]: x for x in m["recipients"]}
        self.assertEqual(set(rc), {'"bob\\"x,y"@dest.test', "carol@dest.test"})
        bob = rc['"bob\\"x,y"@dest.test']
        self.assertEqual(bob["state"], "pending")
        self.assertEqual(bob["attempts"], 1)
        # the status is kept in memory only; the journal has the server's words
        self.assertIn("451 4.3.0", bob["last_error"])
        for piece in ('"quoted"', "\\back\\slash", '{"json": [1]}', "</script>"):
            self.assertIn(piece, bob["last_error"])
        self.assertGreater(bob["next_retry"], time.time())
        self.assertEqual(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(bob["next_retry"])),
                         bob["next_retry_time"])
        carol = rc["carol@dest.test"]
        self.assertEqual(carol["state"], "delivered")
        self.assertIsNone(carol["next_retry"])
        # the text listing still works on the same queue
        p = self.cli(tx, "queue")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(qid, p.stdout)

    def test_json_flag_may_come_before_or_after_the_configuration(self):
        srv = self.sender()
        p = run_cli(["queue", "--json", "-c", srv.conf_path])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["count"], 0)
        p = run_cli(["queue", "-c", srv.conf_path, "--jsonx"])
        self.assertEqual(p.returncode, 1)
        self.assertIn("usage:", p.stderr)


class ExplainRecipient(OperatorCase):

    def test_relay_address_shows_mx_list_with_preferences_addresses_tls_and_its_queue(self):
        dns = self.dns(**MX)
        tx = self.sender(dns, retry_min="30s", retry_max="1h")
        qid = self.send(tx, ["bob@dest.test"], "explain me")
        peers.wait_event(tx, "deferred", qid=qid)
        out = self.explain(tx, "Bob@Dest.Test")
        # the domain is lower-cased; a remote local part keeps its case (RFC 5321 2.4)
        self.assertTrue(out.startswith("relay  Bob@dest.test: "), out)
        self.assertIn("accepted at RCPT only from relay_networks 127.0.0.0/8", out)
        self.assertIn("dns_servers 127.0.0.1:%d; MX lookup for dest.test" % dns.port, out)
        self.assertRegex(out, r"\n    MX 10 mx1\.dest\.test: 127\.0\.0\.3 port %d\n" % self.p2)
        self.assertRegex(out, r"\n    MX 20 mx2\.dest\.test: 127\.0\.0\.4 port %d\n" % self.p2)
        self.assertLess(out.index("MX 10"), out.index("MX 20"))
        self.assertIn("tls: opportunistic", out)
        self.assertRegex(out, r"queued:\n  %s to bob@dest\.test \(from <alice@localhost>, \d+ "
                         r"bytes, arrived [-\d]+ [\d:]+ UTC \(\d+s ago\)\): deferred after 1 attempt, last error: "
                         r"x-imsd; mx\d\.dest\.test: connect: Connection refused; next retry "
                         r"\d{4}-\d\d-\d\d [\d:]+ UTC \(in \d+s\)\n" % qid, out)

    def test_domains_without_a_route_say_what_would_happen(self):
        dns = self.dns(**MX)
        tx = self.sender(dns)
        out = self.explain(tx, "x@nx.test")
        self.assertTrue(out.startswith("relay  "), out)
        self.assertIn("bounces with 5.1.2", out)
        out = self.explain(tx, "x@nomail.test")
        self.assertIn("null MX, RFC 7505", out)
        self.assertIn("5.1.10", out)
        self.assertIn("queued: nothing for this address", out)

    def test_implicit_mx_and_an_mx_that_is_this_server_are_named(self):
        dns = self.dns(mx=[("loop.test", "mx.imsd.test", 10)],
                       hosts=[("mx.imsd.test", "127.0.0.9"), ("plain.test", "127.0.0.8")])
        tx = self.sender(dns)           # its hostname is mx.imsd.test
        out = self.explain(tx, "x@plain.test")
        self.assertIn("no MX records: the domain's own address is used (implicit MX", out)
        self.assertRegex(out, r"\n    host plain\.test: 127\.0\.0\.8 port %d\n" % self.p2)
        out = self.explain(tx, "x@loop.test")
        self.assertRegex(out, r"MX 10 mx\.imsd\.test: 127\.0\.0\.9 port %d  \(this server "
                         r"itself: .*5\.4\.6\)" % self.p2)

    def test_relayhost_replaces_the_mx_lookup(self):
        dns = self.dns(**MX)
        tx = self.sender(dns, relayhost="[127.0.0.5]:%d" % self.p2)
        out = self.explain(tx, "bob@dest.test")
        self.assertIn("route: relayhost [127.0.0.5]:%d (every non-local domain goes there, "
                      "no MX lookup for dest.test)" % self.p2, out)
        self.assertIn("an address: no DNS", out)
        self.assertNotIn("MX 10", out)

    def test_local_address_names_the_alias_entry_its_mailboxes_and_relayed_targets(self):
        dns = self.dns(**MX)
        tx = self.sender(dns, start=False)
        rf = tx.write_file("recipients", "alice@localhost\nbob@localhost\n"
                           "sales@localhost: alice@localhost, bob@dest.test, sales@localhost\n")
        tx.set_conf(recipients_file=rf)
        out = self.explain(tx, "SALES@localhost")
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("local  sales@localhost: "), out)
        self.assertIn("  sales@localhost: alias in %s -> alice@localhost, bob@dest.test, "
                      "sales@localhost" % rf, lines)
        self.assertIn("    alice@localhost: local mailbox %s/localhost/alice/ (Maildir)"
                      % tx.mail_dir, lines)
        self.assertIn("    bob@dest.test: relayed (dest.test is not a local domain)", lines)
        self.assertIn("bob@dest.test:", lines)
        self.assertRegex(out, r"MX 10 mx1\.dest\.test: 127\.0\.0\.3")
        out = self.explain(tx, "alice@localhost")
        self.assertTrue(out.startswith("local  alice@localhost: localhost is in local_domains"))
        self.assertNotIn("route:", out)

    def test_refusals_agree_with_what_the_server_answers_at_rcpt(self):
        dns = self.dns(**MX)
        srv = self.sender(dns, start=False)
        rf = srv.write_file("recipients", "alice@localhost\n")
        srv.set_conf(recipients_file=rf, relay_networks="192.0.2.0/24")
        srv.start()
        for addr, code, word in (("nobody@localhost", 550, "refused  nobody@localhost: RCPT "
                                  "gets 550 5.1.1"),
                                 ("x/y@localhost", 550, "refused  x/y@localhost: RCPT gets "
                                  "550 5.1.3"),
                                 ("alice@localhost", 250, "local  alice@localhost"),
                                 ("bob@dest.test", 554, "relay  bob@dest.test")):
            out = self.explain(srv, addr)
            self.assertTrue(out.startswith(word), out)
            with srv.client() as c:
                c.ehlo()
                c.cmd("MAIL FROM:<a@example.org>")
                self.assertEqual(c.cmd("RCPT TO:<%s>" % addr).code, code, addr)
        out = self.explain(srv, "bob@dest.test")
        self.assertIn("relay_networks 192.0.2.0/24 or after AUTH; from anyone else 554 5.7.1",
                      out)

    def test_a_malformed_address_is_a_usage_error_naming_why(self):
        srv = self.sender()
        p = self.cli(srv, "explain-recipient", "not an address")
        self.assertEqual(p.returncode, 1)
        self.assertIn("imsd: explain-recipient: not an address is not an address: ", p.stderr)
        p = self.cli(srv, "explain-recipient", "a" * 70 + "@localhost")
        self.assertEqual(p.returncode, 1)
        self.assertIn("is not an address", p.stderr)
        p = self.cli(srv, "explain-recipient")
        self.assertEqual(p.returncode, 1)
        self.assertIn("explain-recipient", p.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
