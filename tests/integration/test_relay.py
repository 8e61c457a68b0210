"""Relaying: MX routing through a real resolver (dnsmasq), delivery to a second imsd, to a
scripted SMTP peer and to a private Postfix (both directions), retries, and relay control.

Addresses: the sending imsd listens on 127.0.0.1:<harness port> and delivers to smtp_port
self.p2; receivers listen on 127.0.0.2 / 127.0.0.3 / 127.0.0.4 : self.p2. dnsmasq serves
.test on 127.0.0.1:<free port>. Nothing leaves 127.0.0.0/8.
"""

import json
import os
import re
import smtplib
import subprocess
import time
import unittest

import imsdtest
import peers
from imsdtest import SETTLE, make_message, read_bytes, wait_for

DEST_MX = dict(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.2")])
# the same name pointing at 127.0.0.3: a scripted peer there (or a trap that must stay unused)
TRAP_MX = dict(mx=[("dest.test", "mx1.dest.test", 10)], hosts=[("mx1.dest.test", "127.0.0.3")])


def received_headers(msg):
    return msg.get_all("Received") or []


class MxDelivery(peers.RelayCase):

    def test_mail_for_a_remote_domain_goes_to_its_mx_and_both_hops_add_received(self):
        dns = self.dns(**DEST_MX)
        rx = self.receiver("127.0.0.2")
        tx = self.sender(dns)
        self.send(tx, "bob@dest.test", "via mx")
        files = rx.wait_mail("dest.test", "bob", 1)
        msg = peers.parse_mail(files[0])
        self.assertEqual(msg["Subject"], "via mx")
        self.assertEqual(msg["Return-Path"], "<alice@localhost>", "envelope sender kept")
        rcv = received_headers(msg)
        self.assertEqual(len(rcv), 2, rcv)
        self.assertIn("by rx2.imsd.test", rcv[0], "the receiver's Received is on top")
        self.assertIn("from mx.imsd.test", rcv[0], "the sender said HELO with its hostname")
        self.assertIn("by mx.imsd.test", rcv[1], "the sender's own Received below it")
        ev = peers.wait_event(tx, "delivered", to="<bob@dest.test>")
        self.assertEqual(ev[0].get("mailer"), "smtp", ev[0]["_line"])
        self.assertIn("mx1.dest.test", ev[0]["_line"])
        tx.wait_queue_empty()
        self.assertIn(("MX", "dest.test"), dns.queries())
        time.sleep(SETTLE)
        self.assertEqual(len(rx.maildir_files("dest.test", "bob")), 1, "delivered exactly once")

    def test_temporary_refusal_of_mail_from_moves_on_to_the_next_mx(self):
        # RFC 5321 §5.1: the preferred MX answers 451 to MAIL FROM; the next one takes it.
        dns = self.dns(mx=[("dest.test", "mx1.dest.test", 10), ("dest.test", "mx2.dest.test", 20)],
                       hosts=[("mx1.dest.test", "127.0.0.3"), ("mx2.dest.test", "127.0.0.2")])
        busy = self.peer("127.0.0.3", mail=lambda addr, n: "451 4.3.2 try again later")
        rx = self.receiver("127.0.0.2")
        tx = self.sender(dns)
        self.send(tx, "bob@dest.test", "second mx after 451")
        files = rx.wait_mail("dest.test", "bob", 1)
        self.assertEqual(peers.parse_mail(files[0])["Subject"], "second mx after 451")
        tx.wait_queue_empty()
        self.assertGreaterEqual(busy.connections, 1, "the preferred MX was tried first")
        self.assertEqual(busy.delivered, [])

    def test_lowest_preference_mx_is_used_first(self):
        # the preferred MX is listed second on dnsmasq's command line
        dns = self.dns(mx=[("dest.test", "mx2.dest.test", 20), ("dest.test", "mx1.dest.test", 10)],
                       hosts=[("mx1.dest.test", "127.0.0.2"), ("mx2.dest.test", "127.0.0.3")])
        rx = self.receiver("127.0.0.2")
        backup = self.peer("127.0.0.3")
        tx = self.sender(dns)
        for i in range(3):
            self.send(tx, "bob@dest.test", "preference %d" % i)
        rx.wait_mail("dest.test", "bob", 3)
        tx.wait_queue_empty()
        self.assertEqual(backup.connections, 0, "the less preferred MX was never contacted")

    def test_second_mx_is_used_when_the_first_is_down(self):
        dns = self.dns(mx=[("dest.test", "mx1.dest.test", 10), ("dest.test", "mx2.dest.test", 20)],
                       hosts=[("mx1.dest.test", "127.0.0.2"), ("mx2.dest.test", "127.0.0.3")])
        self.assertFalse(peers.port_accepts("127.0.0.2", self.p2), "nothing on the first MX")
        rx = self.receiver("127.0.0.3")
        tx = self.sender(dns)
        self.send(tx, "bob@dest.test", "fallback")
        files = rx.wait_mail("dest.test", "bob", 1)
        self.assertEqual(peers.parse_mail(files[0])["Subject"], "fallback")
        ev = peers.wait_event(tx, "delivered", to="<bob@dest.test>")
        self.assertIn("mx2.dest.test", ev[0]["_line"])
        self.assertTrue(peers.log_events(tx, "relay-attempt-failed"),
                        "the failed attempt on the first MX is logged")
        self.assertFalse(peers.log_events(tx, "deferred"), "no retry needed: the second MX took it")
        self.assertFalse(peers.log_events(tx, "bounced"))

    def test_domain_without_mx_is_delivered_to_its_address_record(self):
        dns = self.dns(hosts=[("amx.test", "127.0.0.2")])
        rx = self.receiver("127.0.0.2", domains="amx.test")
        tx = self.sender(dns)
        self.send(tx, "bob@amx.test", "a record")
        rx.wait_mail("amx.test", "bob", 1)
        tx.wait_queue_empty()
        q = dns.queries()
        self.assertIn(("MX", "amx.test"), q)
        self.assertIn(("A", "amx.test"), q)

    def test_recipient_domain_is_case_insensitive_for_routing(self):
        dns = self.dns(**DEST_MX)
        rx = self.receiver("127.0.0.2")
        tx = self.sender(dns)
        self.send(tx, ["bob@DEST.Test", "carol@dest.TEST"], "upper case domain")
        rx.wait_mail("dest.test", "bob", 1)
        rx.wait_mail("dest.test", "carol", 1)
        tx.wait_queue_empty()

    def test_address_literal_recipient_is_delivered_without_dns(self):
        dns = self.dns(**DEST_MX)
        peer = self.peer("127.0.0.3")
        tx = self.sender(dns)
        self.send(tx, "bob@[127.0.0.3]", "literal")
        peer.wait_delivered(1)
        tx.wait_queue_empty()
        self.assertEqual(peer.delivered[0].rcpts, ["bob@[127.0.0.3]"])
        self.assertEqual([q for q in dns.queries() if "127" in q[1]], [])


class Relayhost(peers.RelayCase):

    def test_relayhost_address_with_port_replaces_mx_lookup(self):
        dns = self.dns(**TRAP_MX)      # it would say dest.test -> 127.0.0.3; nx.test: NXDOMAIN
        trap = self.peer("127.0.0.3")
        rx = self.receiver("127.0.0.2", domains="dest.test, nx.test")
        tx = self.sender(dns, relayhost="[127.0.0.2]:%d" % self.p2)
        self.send(tx, ["bob@dest.test", "carol@nx.test"], "relayhost")
        rx.wait_mail("dest.test", "bob", 1)
        rx.wait_mail("nx.test", "carol", 1)
        tx.wait_queue_empty()
        self.assertEqual(dns.queries(), [], "no DNS lookup with relayhost = [addr]")
        self.assertEqual(trap.connections, 0)

    def test_relayhost_host_name_is_looked_up(self):
        dns = self.dns(hosts=[("relay.test", "127.0.0.3")])
        peer = self.peer("127.0.0.3")
        tx = self.sender(dns, relayhost="relay.test:%d" % self.p2)
        self.send(tx, "bob@elsewhere.test", "relayhost name")
        peer.wait_delivered(1)
        tx.wait_queue_empty()
        self.assertNotIn("elsewhere.test", [q[1] for q in dns.queries()])

    def test_message_larger_than_one_write_is_relayed_whole(self):
        # A body of several 64 KiB chunks: the client must keep sending as the socket
        # drains (a regression: the relay once stalled after the first chunk).
        rx = self.receiver("127.0.0.2", domains="dest.test")
        tx = self.sender(None, relayhost="[127.0.0.2]:%d" % self.p2)
        lines = ["line %06d of a long message, with some text to fill it up......." % i
                 for i in range(5000)]
        body = "\r\n".join(lines) + "\r\n"
        self.assertGreater(len(body), 300 * 1024)
        self.send(tx, "bob@dest.test", "big relay", body=body)
        files = rx.wait_mail("dest.test", "bob", 1, timeout=20)
        tx.wait_queue_empty()
        got = read_bytes(files[0])
        self.assertIn(b"\n".join(l.encode() for l in lines) + b"\n", got)

    def test_relayhost_to_smtp_sink_delivers_every_message(self):
        sink = peers.SmtpSink(self.tmp, "127.0.0.3", self.p2)
        self.addCleanup(sink.stop)
        tx = self.sender(None, relayhost="[127.0.0.3]:%d" % self.p2)
        for i in range(5):
            self.send(tx, ["r%d@sink.test" % i], "sink %d" % i)
        tx.wait_queue_empty(15)
        files = wait_for(lambda: len(sink.files()) >= 5 and sink.files(), 5)
        self.assertEqual(len(files or []), 5, sink.files())
        ids = sorted(re.search(rb"Message-ID: <([^>]*)>", read_bytes(f)).group(1) for f in files)
        self.assertEqual(ids, sorted(b"sink-%d@imsd.test" % i for i in range(5)))
        self.assertEqual(len(peers.log_events(tx, "delivered")), 5)


class DnsOutcomes(peers.RelayCase):

    def assertRefusedOrBounced(self, tx, rcpt, status, subject):
        """SPEC: a null-MX or non-existent domain may be refused at RCPT (550 5.1.2) or
        accepted and bounced; either way no delivery is attempted."""
        c = self.client(tx)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<alice@localhost>"), 250)
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        if r.code != 250:
            self.assertReply(r, 550, "5.1.2")
            return None
        self.assertReply(c.cmd("DATA"), 354)
        c.send(make_message(subject, sender="alice@localhost", to=rcpt) + b".\r\n")
        self.assertReply(c.reply(), 250)
        c.cmd("QUIT")
        dsn = self.wait_dsns(tx, 1)[0]
        self.assertDsn(dsn, "failed", {rcpt: status}, subject=subject)
        tx.wait_queue_empty()
        self.assertFalse(peers.log_events(tx, "deferred"), "a permanent failure is not retried")
        return dsn

    def test_null_mx_domain_bounces_with_5_1_10_and_is_never_contacted(self):
        dns = self.dns(null_mx=["nullmx.test"], hosts=[("nullmx.test", "127.0.0.3")])
        peer = self.peer("127.0.0.3")
        tx = self.sender(dns)
        self.assertRefusedOrBounced(tx, "bob@nullmx.test", "5.1.10", "null mx")
        time.sleep(SETTLE)
        self.assertEqual(peer.connections, 0, "the A record of a null-MX domain is not used")
        self.assertNotIn(("A", "nullmx.test"), dns.queries())

    def test_nonexistent_domain_bounces_with_5_1_2(self):
        dns = self.dns(**DEST_MX)
        tx = self.sender(dns)
        self.assertRefusedOrBounced(tx, "bob@nx.test", "5.1.2", "nxdomain")

    def test_servfail_is_retried_and_not_bounced(self):
        dns = self.dns(servfail=["servfail.test"])
        tx = self.sender(dns)
        qid = self.send(tx, "bob@servfail.test", "servfail")
        evs = peers.wait_event(tx, "deferred", count=2, timeout=15, qid=qid)
        self.assertTrue(evs[0].get("status", "").startswith("4."), evs[0]["_line"])
        self.assertFalse(peers.log_events(tx, "bounced"))
        self.assertNoMail(tx, "localhost", "alice")
        self.assertTrue(tx.queue_files(), "still queued")

    def test_mx_on_one_of_my_own_listening_addresses_bounces_with_5_4_6(self):
        dns = self.dns(mx=[("loop.test", "mx.loop.test", 10)],
                       hosts=[("mx.loop.test", "127.0.0.5")])
        tx = self.sender(dns, start=False)
        peers.listen_also(tx, "127.0.0.5:%d" % self.p2)
        tx.start()
        self.send(tx, "bob@loop.test", "self mx")
        dsn = self.wait_dsns(tx, 1)[0]
        self.assertDsn(dsn, "failed", {"bob@loop.test": "5.4.6"}, subject="self mx")
        tx.wait_queue_empty()
        self.assertEqual(len(peers.log_events(tx, "received")), 1,
                         "it never connected to itself with the message")

    def test_mx_named_like_my_hostname_bounces_with_5_4_6(self):
        dns = self.dns(mx=[("loop.test", "mx.imsd.test", 10)],
                       hosts=[("mx.imsd.test", "127.0.0.3")])
        peer = self.peer("127.0.0.3")
        tx = self.sender(dns)
        self.send(tx, "bob@loop.test", "self name")
        dsn = self.wait_dsns(tx, 1)[0]
        self.assertDsn(dsn, "failed", {"bob@loop.test": "5.4.6"})
        self.assertEqual(peer.connections, 0)

    def test_less_preferred_mx_than_myself_is_not_used(self):
        # RFC 5321 §5.1: a client that finds itself in the MX list MUST discard its own entry
        # and every less preferred one (here: the backup at preference 20 would only send the
        # mail back to the primary, me).
        dns = self.dns(mx=[("loop.test", "mx1.loop.test", 10), ("loop.test", "mx2.loop.test", 20)],
                       hosts=[("mx1.loop.test", "127.0.0.5"), ("mx2.loop.test", "127.0.0.3")])
        backup = self.peer("127.0.0.3")
        tx = self.sender(dns, start=False)
        peers.listen_also(tx, "127.0.0.5:%d" % self.p2)
        tx.start()
        self.send(tx, "bob@loop.test", "self primary")
        wait_for(lambda: backup.delivered or tx.maildir_files("localhost", "alice"), 10)
        self.assertEqual(backup.delivered, [], "mail went to a less preferred MX than myself")
        dsn = self.wait_dsns(tx, 1)[0]
        self.assertDsn(dsn, "failed", {"bob@loop.test": "5.4.6"})

    def test_more_than_100_received_headers_are_refused_or_bounced_with_5_4_6(self):
        dns = self.dns(**TRAP_MX)
        peer = self.peer("127.0.0.3")
        tx = self.sender(dns)
        hops = "".join("Received: from h%d.test by h%d.test; Sat, 1 Jan 2000 00:00:00 +0000\r\n"
                       % (i, i + 1) for i in range(101))
        msg = hops.encode() + make_message("hops", sender="alice@localhost", to="bob@dest.test")
        c = self.client(tx)
        r = self.transaction(c, "alice@localhost", ["bob@dest.test"], msg)
        c.cmd("QUIT")
        if r.code == 250:          # accepted, then bounced
            dsn = self.wait_dsns(tx, 1)[0]
            self.assertDsn(dsn, "failed", {"bob@dest.test": "5.4.6"}, subject="hops")
        else:                      # or refused at the end of DATA
            self.assertReply(r, 554, "5.4.6")
        tx.wait_queue_empty()
        self.assertEqual(peer.connections, 0)
        # a message with a normal hop count on the same route is delivered
        hops = "".join("Received: from h%d.test by h%d.test; Sat, 1 Jan 2000 00:00:00 +0000\r\n"
                       % (i, i + 1) for i in range(20))
        code, text = peers.submit(tx, "alice@localhost", ["bob@dest.test"],
                                  hops.encode() + make_message("few hops", to="bob@dest.test"))
        self.assertEqual(code, 250, text)
        peer.wait_delivered(1)


class SmtpClientBehaviour(peers.RelayCase):

    def test_4xx_at_rcpt_is_retried_after_retry_min_and_then_delivered_once(self):
        dns = self.dns(**TRAP_MX)
        peer = self.peer("127.0.0.3", rcpt=lambda a, n: "451 4.3.0 try later" if n == 0
                         else "250 2.1.5 ok")
        tx = self.sender(dns)
        qid = self.send(tx, "bob@dest.test", "retry rcpt")
        d = peers.wait_event(tx, "deferred", qid=qid)[0]
        self.assertEqual(d.get("status"), "4.3.0", d["_line"])
        self.assertEqual(d.get("retry_in"), "1s", d["_line"])
        peer.wait_delivered(1, timeout=10)
        tx.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertEqual(len(peer.delivered), 1, peer.transactions)
        self.assertFalse(peers.log_events(tx, "bounced"))
        self.assertNoMail(tx, "localhost", "alice")

    def test_4xx_after_data_is_retried_and_then_delivered_once(self):
        dns = self.dns(**TRAP_MX)
        peer = self.peer("127.0.0.3", data=lambda t, n: "452 4.3.1 disk full" if n == 0
                         else "250 2.0.0 ok")
        tx = self.sender(dns)
        self.send(tx, "bob@dest.test", "retry data")
        wait_for(lambda: len(peer.delivered) >= 1, 10)
        tx.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertEqual(len(peer.transactions), 2, peer.transactions)
        self.assertEqual(len(peer.delivered), 1)
        self.assertEqual(peer.delivered[0].header("Subject"), "retry data")

    def test_retry_interval_doubles_up_to_retry_max(self):
        dns = self.dns(**TRAP_MX)
        times = []
        peer = self.peer("127.0.0.3", rcpt=lambda a, n: times.append(time.monotonic())
                         or "451 4.3.0 always later")
        tx = self.sender(dns, retry_min="1s", retry_max="2s")
        qid = self.send(tx, "bob@dest.test", "backoff")
        evs = peers.wait_event(tx, "deferred", count=3, timeout=15, qid=qid)
        self.assertEqual([e["retry_in"] for e in evs[:3]], ["1s", "2s", "2s"],
                         [e["_line"] for e in evs])
        self.assertEqual([e["attempts"] for e in evs[:3]], ["1", "2", "3"])
        # the schedule has a resolution of one second: retry_in N means N-1 .. N+1 s later
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertGreaterEqual(gaps[1], 1.0, gaps)
        self.assertLessEqual(gaps[0], 2.5, gaps)
        self.assertLessEqual(gaps[1], 3.5, gaps)
        self.assertEqual(peer.delivered, [])

    def test_lines_are_sent_with_crlf_and_dot_stuffed(self):
        dns = self.dns(**TRAP_MX)
        peer = self.peer("127.0.0.3")
        tx = self.sender(dns)
        body = (b"Subject: dots\r\nMessage-ID: <dots@imsd.test>\r\n\r\n"
                b".leading dot\r\n..two dots\r\n.\r\nbare lf line\nafter bare lf\r\n"
                b"bare\rcr inside\r\nlast\r\n")
        c = self.client(tx)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<alice@localhost>"), 250)
        self.assertReply(c.cmd("RCPT TO:<bob@dest.test>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        # the client stuffs: lines starting with "." get one more
        stuffed = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in body.split(b"\r\n"))
        c.send(stuffed + b".\r\n")
        self.assertReply(c.reply(), 250)
        peer.wait_delivered(1)
        raw = peer.delivered[0].raw
        for line in raw.split(b"\r\n")[:-1]:
            self.assertNotIn(b"\n", line, "bare LF sent downstream in %r" % raw)
            self.assertNotIn(b"\r", line, "bare CR sent downstream in %r" % raw)
        self.assertTrue(raw.endswith(b"\r\n"))
        self.assertIn(b"\r\n..leading dot\r\n...two dots\r\n..\r\nbare lf line\r\n"
                      b"after bare lf\r\n", raw, "dot-stuffed on the wire")
        data = peer.delivered[0].data
        self.assertIn(b"\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n", data)

    def test_ehlo_refused_falls_back_to_helo(self):
        dns = self.dns(**TRAP_MX)
        peer = self.peer("127.0.0.3", ehlo=None)
        tx = self.sender(dns)
        self.send(tx, "bob@dest.test", "helo only")
        peer.wait_delivered(1)
        self.assertEqual(peer.delivered[0].helo, "mx.imsd.test")
        verbs = [c.split()[0].upper() for _n, c in peer.commands]
        self.assertEqual(verbs[:2], ["EHLO", "HELO"], peer.commands)
        tx.wait_queue_empty()

    def test_message_over_the_peers_size_limit_bounces_without_sending_it(self):
        dns = self.dns(**TRAP_MX)
        peer = self.peer("127.0.0.3", ehlo=("PIPELINING", "SIZE 1000", "ENHANCEDSTATUSCODES"))
        tx = self.sender(dns)
        self.send(tx, "bob@dest.test", "too big", body=("y" * 70 + "\r\n") * 40)
        dsn = self.wait_dsns(tx, 1)[0]
        groups = self.assertDsn(dsn, "failed", {"bob@dest.test": "5."}, subject="too big")
        self.assertIn(groups[0]["status"], ("5.3.4", "5.2.3"), groups)
        self.assertEqual(peer.transactions, [], "nothing was sent")
        self.assertFalse([c for _n, c in peer.commands if c.upper().startswith("DATA")])

    def test_mx_that_greets_with_421_is_skipped_for_the_next(self):
        dns = self.dns(mx=[("dest.test", "mx1.dest.test", 10), ("dest.test", "mx2.dest.test", 20)],
                       hosts=[("mx1.dest.test", "127.0.0.2"), ("mx2.dest.test", "127.0.0.3")])
        self.peer("127.0.0.2", greeting="421 4.3.2 too busy, try another")
        peer = self.peer("127.0.0.3")
        tx = self.sender(dns)
        self.send(tx, "bob@dest.test", "busy primary")
        peer.wait_delivered(1)
        tx.wait_queue_empty()
        self.assertFalse(peers.log_events(tx, "deferred"))

    def send_8bit(self, tx, subject):
        c = self.client(tx)
        r = self.transaction(c, "alice@localhost", ["bob@dest.test"],
                             b"Subject: " + subject.encode() + b"\r\nMIME-Version: 1.0\r\n"
                             b"Content-Type: text/plain; charset=utf-8\r\n"
                             b"Content-Transfer-Encoding: 8bit\r\n\r\n"
                             b"h\xc3\xa9llo w\xc3\xb6rld\r\n",
                             mail_params=" BODY=8BITMIME")
        self.assertReply(r, 250)

    def test_8bit_message_goes_with_body_8bitmime_to_a_peer_that_offers_it(self):
        dns = self.dns(**TRAP_MX)
        peer = self.peer("127.0.0.3")
        tx = self.sender(dns)
        self.send_8bit(tx, "eight bit")
        peer.wait_delivered(1)
        self.assertIn("BODY=8BITMIME", peer.delivered[0].mail_params.upper())
        self.assertIn(b"h\xc3\xa9llo", peer.delivered[0].data)

    def test_8bit_message_is_never_sent_raw_to_a_peer_without_8bitmime(self):
        # RFC 6152 §3: 8-bit data goes only to a server that advertised 8BITMIME; otherwise the
        # client converts it to 7 bit (as Postfix does) or returns it as undeliverable (5.6.3).
        dns = self.dns(**TRAP_MX)
        peer = self.peer("127.0.0.3", ehlo=("PIPELINING", "ENHANCEDSTATUSCODES"))
        tx = self.sender(dns)
        self.send_8bit(tx, "eight bit to 7 bit peer")
        wait_for(lambda: peer.delivered or tx.maildir_files("localhost", "alice"), 10)
        for t in peer.delivered:
            self.assertNotIn("BODY=8BITMIME", t.mail_params.upper())
            high = [b for b in t.raw if b > 0x7F]
            self.assertEqual(high, [], "8-bit bytes sent to a peer without 8BITMIME: %r" % t.raw)
        if not peer.delivered:
            dsn = self.wait_dsns(tx, 1)[0]
            self.assertDsn(dsn, "failed", {"bob@dest.test": "5.6.3"})

    def test_8bit_message_is_converted_to_quoted_printable_for_a_peer_without_8bitmime(self):
        import quopri
        dns = self.dns(**TRAP_MX)
        peer = self.peer("127.0.0.3", ehlo=("PIPELINING", "ENHANCEDSTATUSCODES"))
        tx = self.sender(dns)
        self.send_8bit(tx, "converted")
        peer.wait_delivered(1)
        t = peer.delivered[0]
        self.assertEqual([b for b in t.raw if b > 0x7F], [])
        head, body = t.data.split(b"\r\n\r\n", 1)
        self.assertIn(b"Content-Transfer-Encoding: quoted-printable", head)
        self.assertNotIn(b"Content-Transfer-Encoding: 8bit", head)
        self.assertEqual(quopri.decodestring(body).replace(b"\n", b"\r\n").rstrip(b"\r\n"),
                         b"h\xc3\xa9llo w\xc3\xb6rld")
        self.assertIn("event=converted-to-7bit", tx.log_text())

    def test_our_dkim_signature_is_made_again_after_the_7bit_conversion(self):
        dns = self.dns(**TRAP_MX)
        peer = self.peer("127.0.0.3", ehlo=("PIPELINING", "ENHANCEDSTATUSCODES"))
        key = os.path.join(self.tmp, "s.key")
        p = subprocess.run([imsdtest.imsd_binary(), "dkim-keygen", "signed.test", "s1", key],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        record = "".join(re.findall(r'"([^"]*)"', p.stdout))
        tx = self.sender(dns, dkim_sign="signed.test:s1:" + key)
        c = self.client(tx)
        r = self.transaction(c, "a@signed.test", ["bob@dest.test"],
                             b"From: A <a@signed.test>\r\nSubject: signed 8bit\r\n"
                             b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                             b"Content-Transfer-Encoding: 8bit\r\n\r\nh\xc3\xa9llo\r\n",
                             mail_params=" BODY=8BITMIME")
        self.assertReply(r, 250)
        peer.wait_delivered(1)
        data = peer.delivered[0].data
        self.assertEqual(len(re.findall(rb"^DKIM-Signature:", data, re.M)), 1, data[:600])
        code = ("import dkim,sys\n"
                "rec=sys.argv[1].encode()\n"
                "m=sys.stdin.buffer.read()\n"
                "print(dkim.verify(m, dnsfunc=lambda n, timeout=5: rec))\n")
        p = subprocess.run(["/usr/bin/python3", "-c", code, record], input=data,
                           capture_output=True, timeout=60)
        self.assertEqual(p.stdout.decode().strip(), "True", p.stderr.decode())
        self.assertRegex(tx.log_text(), r"event=converted-to-7bit .*resigned=1")

    def test_several_recipients_of_one_domain_share_one_transaction(self):
        dns = self.dns(**TRAP_MX)
        peer = self.peer("127.0.0.3")
        tx = self.sender(dns)
        self.send(tx, ["a@dest.test", "b@dest.test", "c@dest.test"], "one transaction")
        peer.wait_delivered(1)
        tx.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertEqual(len(peer.delivered), 1, peer.transactions)
        self.assertEqual(sorted(peer.delivered[0].rcpts), ["a@dest.test", "b@dest.test",
                                                           "c@dest.test"])


class RelayControl(peers.RelayCase):
    """The classic relay tricks, addressed at the local domain `localhost`. Each is refused
    (554 5.7.1, or 501 for what is not an address at all) for a client outside relay_networks,
    and accepted (250) for one inside."""

    # what each hides: routed to a remote domain
    HIDDEN_REMOTE = [
        "user%example.org@localhost",
        "user%example.org@LOCALHOST",
        '"user@example.org"@localhost',
        "example.org!user@localhost",
        "@localhost:user@example.org",
        "@LOCALHOST,@localhost:user@example.org",
        "user@[192.0.2.1]",
        "USER@EXAMPLE.ORG",
        "user@Example.Org",
    ]
    # not valid addresses: refused with a syntax error from everyone
    SYNTAX = [
        "user@example.org@localhost",
        "user@localhost.",
        "user@example.org.",
    ]

    def rcpt_replies(self, c, addrs):
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.net>"), 250)
        return {a: c.cmd("RCPT TO:<%s>" % a) for a in addrs}

    def test_tricks_are_refused_for_a_client_outside_relay_networks(self):
        srv = self.server(relay_networks="192.0.2.0/24",
                          dns_servers="127.0.0.1:%d" % peers.free_port_on(udp=True))
        c = self.client(srv)
        rs = self.rcpt_replies(c, self.HIDDEN_REMOTE + self.SYNTAX + ["alice@localhost"])
        for a in self.HIDDEN_REMOTE:
            with self.subTest(rcpt=a):
                self.assertReply(rs[a], 554, "5.7.1")
        for a in self.SYNTAX:
            with self.subTest(rcpt=a):
                self.assertIn(rs[a].code, (501, 553, 554), rs[a])
                self.assertEqual(rs[a].text[0], "5", rs[a])
        self.assertReply(rs["alice@localhost"], 250)
        # the message goes to alice only; nothing is relayed, no odd mailbox appears
        self.assertReply(c.cmd("DATA"), 354)
        c.send(make_message("tricks refused") + b".\r\n")
        self.assertReply(c.reply(), 250)
        srv.wait_mail("localhost", "alice", 1)
        srv.wait_queue_empty()
        time.sleep(SETTLE)
        self.assertEqual(list(srv.all_mailboxes()), ["localhost/alice"])
        self.assertFalse(peers.log_events(srv, "deferred") + peers.log_events(srv, "bounced"))
        self.assertEqual([e["to"] for e in peers.log_events(srv, "delivered")],
                         ["<alice@localhost>"])

    def test_tricks_are_relayed_for_a_client_in_relay_networks(self):
        peer = self.peer("127.0.0.3")
        srv = self.sender(None, relayhost="[127.0.0.3]:%d" % self.p2)
        c = self.client(srv)
        rs = self.rcpt_replies(c, self.HIDDEN_REMOTE + self.SYNTAX)
        for a in self.HIDDEN_REMOTE:
            with self.subTest(rcpt=a):
                self.assertReply(rs[a], 250)
        for a in self.SYNTAX:
            with self.subTest(rcpt=a):
                self.assertEqual(rs[a].text[0], "5", "not an address, even for a relay client: "
                                 "%r" % rs[a])
        self.assertReply(c.cmd("DATA"), 354)
        c.send(make_message("tricks relayed") + b".\r\n")
        self.assertReply(c.reply(), 250)
        peer.wait_delivered(1)
        srv.wait_queue_empty()
        time.sleep(SETTLE)
        # each reaches the peer as the address it hid (several of them are the same one)
        got = sorted(r for t in peer.delivered for r in t.rcpts)
        self.assertEqual(got, ["USER@example.org", "user@[192.0.2.1]", "user@example.org"])
        self.assertEqual(srv.all_mailboxes(), {}, "nothing was delivered locally")

    def test_authorisation_is_by_client_address_from_a_namespace(self):
        """(b): one imsd in a private network namespace with relay_networks 127.0.0.0/8,
        listening on 0.0.0.0: a client whose source is the namespace's non-loopback address
        198.51.100.10 is refused, the same client from 127.0.0.1 is allowed."""
        import netns
        ns = netns.NetNS.create()          # "not root" skips; as root it works or fails
        self.addCleanup(ns.delete)
        srv = netns.NsServer(ns, os.path.join(self.tmp, "ns"), relay_networks="127.0.0.0/8",
                             dns_servers="127.0.0.1:53", relayhost="[127.0.0.1]:9")
        self.servers.append(srv)
        self.addCleanup(srv.close)
        srv.start()
        steps = [["read"], ["cmd", "EHLO c.test"], ["cmd", "MAIL FROM:<a@example.net>"]]
        steps += [["cmd", "RCPT TO:<%s>" % a] for a in self.HIDDEN_REMOTE]
        steps += [["cmd", "RSET"], ["cmd", "QUIT"]]
        for source, host, want in ((netns.NS_ADDR, netns.NS_ADDR, 554),
                                   ("127.0.0.1", "127.0.0.1", 250)):
            res = netns.client(ns, "raw", "--host", host, "--port", str(netns.PORT),
                               "--source", source, "--timeout", "10", "--cafile", "",
                               json.dumps(steps))
            self.assertNotIn("error", res, json.dumps(res, indent=1))
            replies = [ev["reply"] for ev in res["events"] if "reply" in ev]
            rcpt = replies[3:3 + len(self.HIDDEN_REMOTE)]
            for a, r in zip(self.HIDDEN_REMOTE, rcpt):
                with self.subTest(source=source, rcpt=a):
                    self.assertEqual(r["code"], want, r)
                    if want == 554:
                        self.assertIn("5.7.1", r["lines"][0])
        self.assertEqual(srv.queue_files(), [])


class PostfixPeer(peers.RelayCase):
    """A private Postfix (one per class) as the peer, in both directions: its smtpd listens on
    127.0.0.4:PF_PORT; its relayhost is [127.0.0.2]:RX_PORT, where each test's receiving imsd
    listens; mydestination pf.test (only Unix users exist there)."""

    pf = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.PF_PORT = peers.free_port_on("127.0.0.1", "127.0.0.4")
        cls.RX_PORT = peers.free_port_on("127.0.0.1", "127.0.0.2")
        cls.pf = peers.Postfix("127.0.0.4", cls.PF_PORT, "[127.0.0.2]:%d" % cls.RX_PORT)
        try:
            cls.pf.start()              # AssertionError with the reason when Postfix cannot run
        except BaseException:
            cls.pf.stop()
            cls.pf = None
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.pf is not None:
            cls.pf.stop()
        super().tearDownClass()

    def _callTestMethod(self, method):
        try:
            super()._callTestMethod(method)
        except unittest.SkipTest:
            raise
        except BaseException as e:
            if self.pf is not None and hasattr(e, "add_note"):
                e.add_note("---- postfix maillog (last 40 lines) ----\n"
                           + "\n".join(self.pf.log().splitlines()[-40:]))
            raise

    def rx(self, domains):
        return self.receiver("127.0.0.2", domains=domains, port=self.RX_PORT)

    def test_imsd_relays_to_postfix_which_relays_back_to_imsd(self):
        rx = self.rx("onward.test")
        tx = self.sender(None, relayhost="[127.0.0.4]:%d" % self.PF_PORT)
        self.send(tx, "bob@onward.test", "through postfix")
        files = rx.wait_mail("onward.test", "bob", 1, timeout=20)
        msg = peers.parse_mail(files[0])
        self.assertEqual(msg["Subject"], "through postfix")
        self.assertEqual(msg["Return-Path"], "<alice@localhost>")
        rcv = received_headers(msg)
        self.assertEqual(len(rcv), 3, rcv)
        self.assertIn("by rx2.imsd.test", rcv[0])
        self.assertIn("by pf.test (Postfix)", rcv[1])
        self.assertIn("mx.imsd.test", rcv[1], "imsd's HELO as Postfix recorded it")
        self.assertIn("by mx.imsd.test", rcv[2])
        ev = peers.wait_event(tx, "delivered", to="<bob@onward.test>")
        self.assertIn("127.0.0.4", ev[0]["_line"])
        self.assertTrue(self.pf.wait_log(r"to=<bob@onward\.test>, relay=127\.0\.0\.2"
                                         r"\[127\.0\.0\.2\]:%d.*status=sent" % self.RX_PORT),
                        self.pf.log()[-3000:])
        tx.wait_queue_empty()

    def test_postfix_relays_to_imsd(self):
        rx = self.rx("localhost")
        msg = make_message("from postfix", sender="someone@pf.test", to="carol@localhost")
        with smtplib.SMTP("127.0.0.4", self.PF_PORT, timeout=10) as s:
            s.ehlo("client.test")
            self.assertEqual(s.sendmail("someone@pf.test", ["carol@localhost"], msg), {})
        files = rx.wait_mail("localhost", "carol", 1, timeout=20)
        got = peers.parse_mail(files[0])
        self.assertEqual(got["Subject"], "from postfix")
        self.assertEqual(got["Return-Path"], "<someone@pf.test>")
        self.assertIn("from pf.test", received_headers(got)[0])
        self.assertTrue(self.pf.wait_log(r"to=<carol@localhost>.*status=sent"),
                        self.pf.log()[-3000:])

    def test_swaks_through_postfix_to_imsd(self):
        swaks = imsdtest.need_tool("swaks", "swaks")
        rx = self.rx("localhost")
        p = subprocess.run([swaks, "--server", "127.0.0.4", "--port", str(self.PF_PORT),
                            "--from", "swaks@pf.test", "--to", "dave@localhost",
                            "--helo", "client.test", "--header", "Subject: swaks via postfix",
                            "--timeout", "10"], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        files = rx.wait_mail("localhost", "dave", 1, timeout=20)
        self.assertEqual(peers.parse_mail(files[0])["Subject"], "swaks via postfix")

    def test_postfix_refusal_via_mx_becomes_an_rfc3464_bounce(self):
        dns = self.dns(mx=[("pf.test", "mail.pf.test", 10)], hosts=[("mail.pf.test", "127.0.0.4")])
        tx = self.sender(dns, smtp_port=self.PF_PORT)
        self.send(tx, "nosuchuser@pf.test", "postfix says no")
        dsn = self.wait_dsns(tx, 1, timeout=20)[0]
        groups = self.assertDsn(dsn, "failed", {"nosuchuser@pf.test": "5.1.1"},
                                subject="postfix says no")
        self.assertIn("550", groups[0].get("diagnostic-code", ""), groups)
        self.assertTrue(self.pf.wait_log(r"NOQUEUE: reject: RCPT from .*<nosuchuser@pf\.test>"),
                        self.pf.log()[-3000:])
        tx.wait_queue_empty()


if __name__ == "__main__":
    unittest.main()
