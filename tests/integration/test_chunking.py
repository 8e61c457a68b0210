"""CHUNKING and BINARYMIME (RFC 3030): BDAT received with raw sockets (swaks has no BDAT),
and BDAT sent by imsd's relay client to a scripted peer and to a private Postfix (which
offers CHUNKING since 3.4; smtpd_discard_ehlo_keywords=chunking hides it).

Addresses: imsd listens on 127.0.0.1:<harness port>; scripted peers on 127.0.0.2:self.p2;
the Postfix smtpd on 127.0.0.4. Nothing leaves 127.0.0.0/8.
"""

import os
import re
import subprocess
import time
import unittest

import imsdtest
import peers
from imsdtest import ImsdCase, crlf_to_lf, make_message, read_bytes, split_delivered


def bdat_transaction(c, sender, rcpts, chunks, params="", ehlo=True):
    """MAIL, RCPT, then one BDAT per chunk (LAST on the final one), each waited for.
    Returns the replies to the BDAT commands."""
    if ehlo:
        r = c.ehlo()
        assert r.code == 250, r
    r = c.cmd("MAIL FROM:<%s>%s" % (sender, params))
    assert r.code == 250, r
    for a in rcpts:
        r = c.cmd("RCPT TO:<%s>" % a)
        assert r.code == 250, r
    out = []
    for i, ch in enumerate(chunks):
        last = i == len(chunks) - 1
        c.send(b"BDAT %d%s\r\n" % (len(ch), b" LAST" if last else b"") + ch)
        out.append(c.reply())
    return out


def delivered_rest(srv, user="alice", count=1):
    files = srv.wait_mail("localhost", user, count)
    return split_delivered(read_bytes(sorted(files)[-1]))


class ServerBdat(ImsdCase):

    def test_ehlo_offers_chunking_and_binarymime(self):
        srv = self.server()
        c = self.client(srv)
        r = c.ehlo()
        self.assertIn("250-CHUNKING", r.lines)
        self.assertIn("250-BINARYMIME", r.lines)

    def test_payload_holding_an_end_of_data_and_commands_is_stored_not_run(self):
        srv = self.server()
        c = self.client(srv)
        first = b"Subject: chunks\r\n\r\n.hidden dot line\r\n.\r\nQUIT\r\n"
        second = b"RSET\r\nMAIL FROM:<evil@example.org>\r\n..\r\nend\r\n"
        rs = bdat_transaction(c, "a@example.org", ["alice@localhost"], [first, second])
        self.assertReply(rs[0], 250, "2.0.0")
        self.assertIn("%d octets received" % len(first), rs[0].text)
        self.assertReply(rs[1], 250, "2.0.0")
        self.assertIn("queued as", rs[1].text)
        self.assertReply(c.cmd("QUIT"), 221)
        _, received, rest = delivered_rest(srv)
        self.assertIn(b"by mx.imsd.test (imsd) with ESMTP", received)
        self.assertEqual(rest, crlf_to_lf(first + second), "stored as sent: no dot removed")

    def test_pipelined_bdat_commands_get_their_replies_in_order(self):
        srv = self.server()
        c = self.client(srv)
        c.send(b"EHLO c.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@localhost>\r\n"
               b"BDAT 10\r\nSubject: pBDAT 7\r\n\r\n\r\nabcBDAT 5 LAST\r\ndef\r\nQUIT\r\n")
        rs = c.replies(7)
        self.assertEqual([r.code for r in rs], [250, 250, 250, 250, 250, 250, 221], rs)
        self.assertIn("10 octets received", rs[3].text)
        self.assertIn("7 octets received", rs[4].text)
        self.assertIn("queued as", rs[5].text)
        _, _, rest = delivered_rest(srv)
        self.assertEqual(rest, b"Subject: p\n\nabcdef\n")

    def test_message_size_limit_counts_across_chunks_552_after_the_chunk(self):
        srv = self.server(message_size_limit=2000)
        c = self.client(srv)
        chunk = b"x" * 900 + b"\r\n"
        c.send(b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@localhost>\r\n")
        c.replies(3)
        c.send(b"BDAT 902\r\n" + chunk + b"BDAT 902\r\n" + chunk + b"BDAT 902\r\n" + chunk
               + b"BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n")
        rs = c.replies(5)
        self.assertReply(rs[0], 250, "2.0.0")
        self.assertReply(rs[1], 250, "2.0.0")
        self.assertReply(rs[2], 552, "5.3.4")
        self.assertReply(rs[3], 503, "5.5.1", "a pipelined chunk after the failed one")
        self.assertReply(rs[4], 250, msg="the NOOP: QUIT in the chunk was not run")
        self.assertNoMail(srv, "localhost", "alice")
        self.assertEqual(srv.queue_files(), [])

    def test_a_huge_announced_chunk_is_read_and_refused_without_buffering_it(self):
        srv = self.server(message_size_limit=100000)
        c = self.client(srv)
        c.send(b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@localhost>\r\n")
        c.replies(3)
        size = 10000000
        c.send(b"BDAT %d LAST\r\n" % size)
        block = (b"y" * 998 + b"\r\n") * 64
        sent = 0
        while sent < size:
            n = min(len(block), size - sent)
            c.send(block[:n])
            sent += n
        self.assertReply(c.reply(), 552, "5.3.4")
        self.assertReply(c.cmd("NOOP"), 250)
        self.assertEqual(srv.queue_files(), [])

    def test_bdat_without_mail_is_503_and_its_payload_is_consumed(self):
        srv = self.server()
        c = self.client(srv)
        c.ehlo()
        c.send(b"BDAT 6 LAST\r\nQUIT\r\n")
        self.assertReply(c.reply(), 503, "5.5.1")
        self.assertReply(c.cmd("NOOP"), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        c.send(b"BDAT 6\r\nQUIT\r\n")
        r = c.reply()
        self.assertReply(r, 503, "5.5.1")
        self.assertIn("RCPT", r.text)
        self.assertReply(c.cmd("NOOP"), 250)

    def test_data_after_bdat_and_data_after_body_binarymime_are_503(self):
        srv = self.server()
        c = self.client(srv)
        c.ehlo()
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("RCPT TO:<alice@localhost>")
        c.send(b"BDAT 3\r\nA: ")
        self.assertReply(c.reply(), 250)
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertReply(c.cmd("RSET"), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org> BODY=BINARYMIME"), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        r = c.cmd("DATA")
        self.assertReply(r, 503, "5.5.1")
        self.assertIn("BINARYMIME", r.text)
        self.assertEqual(srv.queue_files(), [])

    def test_a_chunk_size_that_is_not_a_number_is_501_and_the_session_ends(self):
        srv = self.server()
        c = self.client(srv)
        c.ehlo()
        c.send(b"BDAT ten LAST\r\nQUIT\r\n")
        self.assertReply(c.reply(), 501, "5.5.4")
        self.assertTrue(c.closed_by_server())

    def test_binarymime_content_is_stored_exactly(self):
        srv = self.server()
        c = self.client(srv)
        payload = (b"Subject: bin\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream"
                   b"\r\nContent-Transfer-Encoding: binary\r\n\r\n" + bytes(range(256)) * 4
                   + b"\nbare LF\rbare CR\r\n")
        rs = bdat_transaction(c, "a@example.org", ["alice@localhost"],
                              [payload[:500], payload[500:]], params=" BODY=BINARYMIME")
        self.assertReply(rs[-1], 250)
        _, _, rest = delivered_rest(srv)
        self.assertEqual(rest, crlf_to_lf(payload))
        q = [e for e in peers.log_events(srv, "received")]
        self.assertTrue(q, srv.log_tail_msg())

    def test_text_bdat_lines_are_crlf_as_in_data(self):
        srv = self.server()
        c = self.client(srv)
        rs = bdat_transaction(c, "a@example.org", ["alice@localhost"],
                              [b"Subject: lf\n\nline one\nline two"])
        self.assertReply(rs[-1], 250)
        _, _, rest = delivered_rest(srv)
        self.assertEqual(rest, b"Subject: lf\n\nline one\nline two\n")

    def test_rset_between_chunks_leaves_nothing_queued(self):
        srv = self.server()
        c = self.client(srv)
        rs = bdat_transaction(c, "a@example.org", ["alice@localhost"], [b"Subject: x\r\n", b""])
        self.assertReply(rs[-1], 250)      # one complete message first (BDAT 0 LAST)
        delivered_rest(srv)
        self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 250)
        self.assertReply(c.cmd("RCPT TO:<bob@localhost>"), 250)
        c.send(b"BDAT 12\r\nSubject: y\r\n")
        self.assertReply(c.reply(), 250)
        self.assertReply(c.cmd("RSET"), 250)
        c.close()
        srv.wait_queue_empty()
        self.assertNoMail(srv, "localhost", "bob")

    def test_hop_limit_and_the_authentication_results_filter_apply_to_bdat(self):
        srv = self.server()
        c = self.client(srv)
        loop = b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n" * 101 + b"\r\nx\r\n"
        rs = bdat_transaction(c, "a@example.org", ["alice@localhost"], [loop[:3000], loop[3000:]])
        self.assertReply(rs[-1], 554, "5.4.6")
        ar = (b"Authentication-Results: mx.imsd.test; dkim=pass header.d=bank.example\r\n"
              b"Subject: forged\r\n\r\nbody\r\n")
        rs = bdat_transaction(c, "a@example.org", ["alice@localhost"], [ar[:30], ar[30:]],
                              ehlo=False)
        self.assertReply(rs[-1], 250)
        _, _, rest = delivered_rest(srv)
        self.assertEqual(rest, b"Subject: forged\n\nbody\n")

    def test_bdat_message_goes_through_the_check_job_dkim_signing(self):
        key = os.path.join(self.tmp, "k.key")
        p = subprocess.run([imsdtest.imsd_binary(), "dkim-keygen", "--ed25519", "localhost",
                            "s1", key], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        srv = self.server(dkim_sign="localhost:s1:%s" % key)
        c = self.client(srv)
        msg = make_message("signed chunks", sender="a@localhost")
        rs = bdat_transaction(c, "a@localhost", ["alice@localhost"], [msg[:40], msg[40:]])
        self.assertReply(rs[-1], 250)
        _, _, rest = delivered_rest(srv)
        self.assertTrue(rest.startswith(b"DKIM-Signature:"), rest[:300])
        self.assertIn(b"d=localhost", rest[:400])
        self.assertTrue(peers.log_events(srv, "dkim-signed"), srv.log_tail_msg())


class BdatMemory(ImsdCase):
    """A chunk announced huge is streamed: RSS per connection stays bounded (the optimised
    binary, as in test_limits: a sanitizer build's RSS says nothing)."""

    def test_huge_chunks_past_message_size_limit_cost_a_bounded_amount(self):
        srv = self.server(binary=imsdtest.release_binary(), log_level="warn",
                          message_size_limit=1048576)
        time.sleep(0.3)
        n = 50
        imsdtest.raise_nofile(n + 100)
        base = imsdtest.rss_kib(srv.proc.pid)
        socks = imsdtest.connect_many(srv.port, n)
        for s in socks:
            s.sendall(b"EHLO d\r\nMAIL FROM:<d@example.org>\r\nRCPT TO:<alice@localhost>\r\n"
                      b"BDAT 1000000000 LAST\r\n")
        line = b"z" * 998 + b"\r\n"
        written = imsdtest.blast(socks, line * 64, 6 * 1024 * 1024)
        peak = imsdtest.peak_rss(srv.proc.pid, 3.0)
        per = (peak - base) / n
        print("    BDAT past message_size_limit: RSS %d -> %d KiB, %.1f KiB per connection"
              % (base, peak, per), flush=True)
        self.assertGreater(written, n * 1024 * 1024, "the flood must pass the size limit")
        self.assertLess(per, 64)
        imsdtest.close_all(socks)
        self.assertEqual(srv.maildir_files("localhost", "alice"), [])


class RelayBdat(peers.RelayCase):
    """The relay client: BDAT to a peer that offers CHUNKING, DATA otherwise."""

    def relay_to_peer(self, ehlo):
        peer = self.peer("127.0.0.2", ehlo=ehlo)
        tx = self.sender(None, relayhost="[127.0.0.2]:%d" % self.p2)
        return peer, tx

    def bdat_submit(self, srv, payload, params="", rcpt="bob@dest.test"):
        c = self.client(srv)
        rs = bdat_transaction(c, "alice@localhost", [rcpt], [payload], params=params)
        self.assertReply(rs[-1], 250)
        c.cmd("QUIT")

    def bdat_commands(self, peer):
        return [cmd for _, cmd in peer.commands if cmd.upper().startswith("BDAT")]

    def test_a_peer_with_chunking_gets_bdat_and_the_same_text(self):
        peer, tx = self.relay_to_peer(("PIPELINING", "8BITMIME", "CHUNKING"))
        body = ".dot line\r\n.\r\nlast\r\n"
        self.send(tx, "bob@dest.test", "chunked relay", body=body)
        t = peer.wait_delivered(1)[0]
        cmds = self.bdat_commands(peer)
        self.assertEqual(len(cmds), 1, peer.commands)
        self.assertRegex(cmds[0], r"^BDAT \d+ LAST$")
        self.assertEqual(int(cmds[0].split()[1]), len(t.raw))
        self.assertNotIn("DATA", [cmd.upper() for _, cmd in peer.commands])
        self.assertTrue(t.data.endswith(b"\r\n\r\n" + body.encode()), t.data[-200:])
        self.assertTrue(t.data.startswith(b"Received: from "), t.data[:100])
        tx.wait_queue_empty()

    def test_a_large_message_goes_in_bounded_chunks_with_and_without_pipelining(self):
        for ehlo in (("PIPELINING", "CHUNKING"), ("CHUNKING",)):
            with self.subTest(ehlo=ehlo):
                peer, tx = self.relay_to_peer(ehlo)
                body = "".join("line %06d of a long message\r\n" % i for i in range(12000))
                self.send(tx, "bob@dest.test", "big", body=body)
                t = peer.wait_delivered(1)[0]
                cmds = self.bdat_commands(peer)
                self.assertGreater(len(cmds), 3, cmds)
                self.assertTrue(cmds[-1].endswith(" LAST"), cmds)
                self.assertFalse(any(c.endswith("LAST") for c in cmds[:-1]), cmds)
                self.assertTrue(all(int(c.split()[1]) <= 2 * 65536 + 2 for c in cmds), cmds)
                self.assertEqual(sum(int(c.split()[1]) for c in cmds), len(t.raw))
                self.assertTrue(t.data.endswith(body.encode()))
                tx.wait_queue_empty()
                peer.stop()
                tx.stop()

    def test_a_peer_without_chunking_gets_data(self):
        peer, tx = self.relay_to_peer(("PIPELINING", "8BITMIME"))
        self.send(tx, "bob@dest.test", "plain relay")
        t = peer.wait_delivered(1)[0]
        self.assertEqual(self.bdat_commands(peer), [])
        self.assertIn("DATA", [cmd.upper() for _, cmd in peer.commands])
        self.assertEqual(t.header("Subject"), "plain relay")

    def test_binarymime_goes_exactly_to_a_peer_that_offers_it(self):
        peer, tx = self.relay_to_peer(("PIPELINING", "CHUNKING", "BINARYMIME", "8BITMIME"))
        payload = (b"Subject: bin\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                   + bytes(range(256)) + b"\nbare\r")
        self.bdat_submit(tx, payload, " BODY=BINARYMIME")
        t = peer.wait_delivered(1)[0]
        self.assertIn("BODY=BINARYMIME", t.mail_params)
        self.assertTrue(t.raw.endswith(b"\r\n" + payload), t.raw[-100:])
        tx.wait_queue_empty()

    def test_binarymime_to_a_peer_without_it_bounces_with_5_6_3(self):
        for ehlo, missing in ((("PIPELINING", "CHUNKING", "8BITMIME"), "BINARYMIME"),
                              (("PIPELINING", "8BITMIME"), "CHUNKING and BINARYMIME")):
            with self.subTest(ehlo=ehlo):
                peer, tx = self.relay_to_peer(ehlo)
                payload = (b"Subject: bin bounce\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                           b"\x00\x01\n")
                self.bdat_submit(tx, payload, " BODY=BINARYMIME")
                dsn = self.wait_dsns(tx)[0]
                groups = self.assertDsn(dsn, statuses={"bob@dest.test": "5.6.3"})
                diag = groups[0].get("diagnostic-code", "")
                self.assertIn("BINARYMIME", diag)
                self.assertIn(missing, diag)
                self.assertEqual(peer.delivered, [])
                self.assertEqual(self.bdat_commands(peer), [])
                tx.wait_queue_empty()
                peer.stop()
                tx.stop()

    def test_a_refused_last_chunk_bounces_the_recipient(self):
        peer = self.peer("127.0.0.2", ehlo=("PIPELINING", "CHUNKING"),
                         data=lambda t, n: "554 5.7.1 no thanks")
        tx = self.sender(None, relayhost="[127.0.0.2]:%d" % self.p2)
        self.send(tx, "bob@dest.test", "refused chunk")
        dsn = self.wait_dsns(tx)[0]
        self.assertDsn(dsn, statuses={"bob@dest.test": "5.7.1"})
        self.assertTrue(self.bdat_commands(peer))


class PostfixChunking(peers.RelayCase):
    """imsd → a private Postfix → the receiving imsd. Postfix's smtpd counts the commands of
    each session in its disconnect log line (bdat=N or data=N); a second smtpd listener with
    smtpd_discard_ehlo_keywords=chunking logs as postfix-nochunk."""

    pf = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.PF_PORT = peers.free_port_on("127.0.0.1", "127.0.0.4")
        cls.PF_PORT2 = peers.free_port_on("127.0.0.1", "127.0.0.4")
        while cls.PF_PORT2 == cls.PF_PORT:
            cls.PF_PORT2 = peers.free_port_on("127.0.0.1", "127.0.0.4")
        cls.PF_PORT3 = peers.free_port_on("127.0.0.1", "127.0.0.4")
        while cls.PF_PORT3 in (cls.PF_PORT, cls.PF_PORT2):
            cls.PF_PORT3 = peers.free_port_on("127.0.0.1", "127.0.0.4")
        cls.RX_PORT = peers.free_port_on("127.0.0.1", "127.0.0.2")
        cls.pf = peers.Postfix("127.0.0.4", cls.PF_PORT, "[127.0.0.2]:%d" % cls.RX_PORT)
        with open(os.path.join(cls.pf.conf_dir, "master.cf"), "a") as f:
            f.write("\n127.0.0.4:%d  inet  n  -  n  -  -  smtpd\n"
                    "  -o syslog_name=postfix-nochunk\n"
                    "  -o smtpd_discard_ehlo_keywords=chunking\n"
                    "127.0.0.4:%d  inet  n  -  n  -  -  smtpd\n"
                    "  -o syslog_name=postfix-no8bit\n"
                    "  -o smtpd_discard_ehlo_keywords=8bitmime\n" % (cls.PF_PORT2, cls.PF_PORT3))
        try:
            cls.pf.start()
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

    def through_postfix(self, port, user, subject, body):
        rx = self.receiver("127.0.0.2", domains="onward.test", port=self.RX_PORT)
        tx = self.sender(None, relayhost="[127.0.0.4]:%d" % port)
        self.send(tx, "%s@onward.test" % user, subject, body=body)
        files = rx.wait_mail("onward.test", user, 1, timeout=20)
        msg = peers.parse_mail(files[0])
        self.assertEqual(msg["Subject"], subject)
        self.assertEqual(msg.get_payload(), body.replace("\r\n", "\n"))
        tx.wait_queue_empty()

    def test_postfix_receives_bdat_when_it_offers_chunking(self):
        body = ".leading dot\r\n" + "x" * 70 + "\r\n" * 3 + "y\r\n" * 40000
        self.through_postfix(self.PF_PORT, "bob", "postfix chunked", body)
        self.assertTrue(self.pf.wait_log(r"postfix/smtpd\[\d+\]: disconnect from \S+ ehlo=1 "
                                         r"mail=1 rcpt=1 bdat=[1-9]\d* quit=1"),
                        self.pf.log()[-3000:])

    def test_postfix_without_8bitmime_receives_quoted_printable(self):
        import email
        rx = self.receiver("127.0.0.2", domains="onward.test", port=self.RX_PORT)
        tx = self.sender(None, relayhost="[127.0.0.4]:%d" % self.PF_PORT3)
        c = self.client(tx)
        text = "h\u00e9llo w\u00f6rld, na\u00efve caf\u00e9 = ok  \r\nsecond line\r\n"
        r = self.transaction(c, "alice@localhost", ["dan@onward.test"],
                             b"Subject: to a 7-bit Postfix\r\nMIME-Version: 1.0\r\n"
                             b"Content-Type: text/plain; charset=utf-8\r\n"
                             b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text.encode(),
                             mail_params=" BODY=8BITMIME")
        self.assertReply(r, 250)
        files = rx.wait_mail("onward.test", "dan", 1, timeout=20)
        with open(files[0], "rb") as f:
            raw = f.read()
        msg = email.message_from_bytes(raw)
        self.assertEqual(msg["Content-Transfer-Encoding"], "quoted-printable")
        self.assertEqual(msg.get_payload(decode=True).decode().replace("\r\n", "\n"),
                         text.replace("\r\n", "\n"))
        self.assertIn("event=converted-to-7bit", tx.log_text())
        self.assertTrue(self.pf.wait_log(r"postfix-no8bit/smtpd\[\d+\]: disconnect from"),
                        self.pf.log()[-3000:])

    def test_postfix_without_chunking_receives_data(self):
        self.through_postfix(self.PF_PORT2, "carol", "postfix data", ".dot\r\nplain\r\n")
        self.assertTrue(self.pf.wait_log(r"postfix-nochunk/smtpd\[\d+\]: disconnect from \S+ "
                                         r"ehlo=1 mail=1 rcpt=1 data=1 quit=1"),
                        self.pf.log()[-3000:])
        self.assertIsNone(re.search(r"postfix-nochunk/smtpd\[\d+\]: disconnect .*bdat=",
                                    self.pf.log()))
