"""No stall after STARTTLS, in either direction.

A client with Nagle's algorithm on (Python's ssl, most libraries) sends its first command after
the TLS 1.3 handshake while its Finished message is still unacknowledged; if the server has
nothing to write at that moment, the ACK waits for the delayed-ACK timer and the command with
it: 40 ms on every STARTTLS session (the first round measured 41.8 ms). These tests run clients
and servers that imsd did not write and compare, in the same sessions, the first round trip
after the handshake with a later one that no stall can touch: a stall of that kind (Linux's
delayed-ACK timer is at least 40 ms) makes the first slower by 40 ms or more, and the tests fail
when the medians differ by STALL_MS / 2. The load of the machine slows both alike, so they
prove the absence of the stall without a latency bound; how fast the first reply is (the goal:
under 15 ms) is a benchmark figure, beside Postfix's (bench/bench.py, STARTTLS).
"""

import os
import socket
import ssl
import statistics
import threading
import time

from imsdtest import ImsdCase, free_port, make_message
import netns
import peers

STALL_MS = 40.0          # the smallest delayed-ACK timeout of Linux (TCP_DELACK_MIN)
ROUNDS = 20


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        lines.append(line)
        if line[3:4] != b"-":
            return b"".join(lines)


class ServerSideLatency(ImsdCase):

    def test_first_ehlo_after_starttls_is_answered_without_a_delayed_ack_stall(self):
        cert, key = netns.make_cert(self.tmp)
        srv = self.server(tls_cert_file=cert, tls_key_file=key, tls_loopback="yes",
                          log_level="info")
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False
        steps = {"handshake": [], "ehlo_after_tls": [], "mail": [], "transaction": []}
        for i in range(ROUNDS):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)  # Nagle on
            f = s.makefile("rb")
            read_reply(f)
            s.sendall(b"EHLO lat.example\r\n")
            self.assertIn(b"STARTTLS", read_reply(f))
            s.sendall(b"STARTTLS\r\n")
            self.assertTrue(read_reply(f).startswith(b"220"))
            t = time.perf_counter()
            ss = ctx.wrap_socket(s, server_hostname=netns.SERVER_NAME)
            steps["handshake"].append(time.perf_counter() - t)
            f = ss.makefile("rb")
            t = time.perf_counter()
            ss.sendall(b"EHLO lat.example\r\n")
            self.assertTrue(read_reply(f).startswith(b"250-"))
            steps["ehlo_after_tls"].append(time.perf_counter() - t)
            t = time.perf_counter()
            ss.sendall(b"MAIL FROM:<l@example.org>\r\n")
            self.assertTrue(read_reply(f).startswith(b"250 "))
            # the control: a round trip after one that acknowledged everything sent before
            steps["mail"].append(time.perf_counter() - t)
            ss.sendall(b"RCPT TO:<alice@localhost>\r\n")
            read_reply(f)
            ss.sendall(b"DATA\r\n")
            read_reply(f)
            ss.sendall(make_message("latency %d" % i) + b".\r\n")
            self.assertTrue(read_reply(f).startswith(b"250 "))
            steps["transaction"].append(time.perf_counter() - t)
            ss.sendall(b"QUIT\r\n")
            ss.close()
        med = {k: statistics.median(v) * 1000 for k, v in steps.items()}
        print("    median of %d: %s" % (ROUNDS, ", ".join("%s %.2f ms" % kv for kv in med.items())),
              flush=True)
        self.assertLess(med["ehlo_after_tls"] - med["mail"], STALL_MS / 2,
                        "the first reply after the handshake waits for something a later one "
                        "does not: a delayed-ACK stall (%r)" % med)


class TicketlessStartTlsPeer:
    """A STARTTLS SMTP server written with Python's ssl that issues no TLS 1.3 ticket (the
    case that exposes a client-side stall) and times, per session, the gap between the end of
    its handshake and the arrival of the client's EHLO. It closes each session after one
    message, so every message imsd relays starts a new TLS session."""

    def __init__(self, cert, key):
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.num_tickets = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.gaps = []               # handshake done -> the client's EHLO
        self.later = []              # our EHLO reply sent -> the client's next command
        self.delivered = 0
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    def session(self, c):
        c.settimeout(10)
        try:
            f = c.makefile("rb")
            c.sendall(b"220 ticketless.test ESMTP\r\n")
            tls = False
            ehlo_sent = None
            while True:
                line = f.readline()
                if not line:
                    return
                if ehlo_sent is not None:
                    self.later.append(time.perf_counter() - ehlo_sent)
                    ehlo_sent = None
                cmd = line.strip().upper()
                if cmd.startswith(b"EHLO"):
                    if tls and self._hs_done is not None:
                        self.gaps.append(time.perf_counter() - self._hs_done)
                        self._hs_done = None
                    ext = b"" if tls else b"250-STARTTLS\r\n"
                    c.sendall(b"250-ticketless.test\r\n250-PIPELINING\r\n" + ext +
                              b"250 8BITMIME\r\n")
                    if tls:
                        ehlo_sent = time.perf_counter()
                elif cmd == b"STARTTLS":
                    c.sendall(b"220 2.0.0 go ahead\r\n")
                    c = self.ctx.wrap_socket(c, server_side=True)
                    self._hs_done = time.perf_counter()
                    f = c.makefile("rb")
                    tls = True
                elif cmd == b"DATA":
                    c.sendall(b"354 go\r\n")
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    self.delivered += 1
                    c.sendall(b"250 2.0.0 ok\r\n")
                    return      # one message a session: every message is a new STARTTLS
                elif cmd == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 2.0.0 ok\r\n")
        except (OSError, ssl.SSLError):
            return
        finally:
            c.close()

    _hs_done = None

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


class ClientSideLatency(ImsdCase):

    def test_relay_client_sends_ehlo_after_starttls_at_once(self):
        cert, key = netns.make_cert(self.tmp, name="ticketless.test")
        peer = TicketlessStartTlsPeer(cert, key)
        self.addCleanup(peer.close)
        srv = self.server(**peers.sender_conf(relayhost="[127.0.0.1]:%d" % peer.port))
        n = 10
        for i in range(n):
            code, _ = peers.submit(srv, "s@localhost", ["r%d@remote.test" % i],
                                   make_message("client latency %d" % i))
            self.assertEqual(code, 250)
            deadline = time.monotonic() + 20
            while peer.delivered < i + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertEqual(peer.delivered, i + 1, srv.log_tail_msg())
        self.assertGreaterEqual(len(peer.gaps), n // 2, "imsd did not use STARTTLS: %r"
                                % srv.log_tail_msg())
        self.assertGreaterEqual(len(peer.later), n // 2, peer.later)
        med = statistics.median(peer.gaps) * 1000
        later = statistics.median(peer.later) * 1000
        print("    relay client: EHLO %.2f ms after the handshake, MAIL %.2f ms after the EHLO "
              "reply (medians of %d, %d)" % (med, later, len(peer.gaps), len(peer.later)),
              flush=True)
        self.assertLess(med - later, STALL_MS / 2,
                        "imsd's first command after the handshake waits for something a later "
                        "one does not: a delayed-ACK stall (%.2f ms vs %.2f ms)" % (med, later))
