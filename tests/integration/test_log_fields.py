"""Log lines cannot be forged: every value from outside is one logfmt value, every event one line.

A quoted local part may hold spaces, '=' and '>' (RFC 5321 quoted-string); a peer's multi-line
reply holds line breaks. Neither may add a field or a line to imsd's log.
"""

import re

from imsdtest import ImsdCase, make_message, free_port
import peers

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug) ")


def logfmt(line):
    """key=value pairs of one log line, quoted values unescaped (\\" \\\\ \\xHH)."""
    out = []
    i, n = 0, len(line)
    while i < n:
        m = re.compile(r"(\w+)=").match(line, i)
        if not m or (i > 0 and line[i - 1] != " "):
            i += 1
            continue
        key, i = m.group(1), m.end()
        if i < n and line[i] == '"':
            i += 1
            val = []
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    if line[i + 1] == "x":
                        val.append(chr(int(line[i + 2:i + 4], 16)))
                        i += 4
                        continue
                    val.append(line[i + 1])
                    i += 2
                    continue
                val.append(line[i])
                i += 1
            i += 1
            out.append((key, "".join(val)))
        else:
            j = line.find(" ", i)
            j = n if j < 0 else j
            out.append((key, line[i:j]))
            i = j
    return out


class LogFields(ImsdCase):

    def test_quoted_sender_cannot_fake_fields_of_the_received_event(self):
        srv = self.server()
        forged = '"x> nrcpt=7 tls=yes auth=admin event=received from=<y"@b.c'
        c = self.client(srv)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<%s>" % forged), 250)
        self.assertReply(c.cmd("RCPT TO:<alice@localhost>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(make_message("forged fields") + b".\r\n")
        self.assertReply(c.reply(), 250)
        srv.wait_mail("localhost", "alice")
        lines = [l for l in srv.log_text().splitlines()
                 if dict(logfmt(l)).get("event") == "received"]
        self.assertEqual(len(lines), 1, lines)
        kv = logfmt(lines[0])
        keys = [k for k, _ in kv]
        self.assertEqual(keys.count("event"), 1, kv)
        self.assertEqual(keys.count("from"), 1, kv)
        self.assertNotIn("auth", keys, "a field forged by the sender: %s" % lines[0])
        d = dict(kv)
        self.assertEqual(d["from"], "<%s>" % forged)
        self.assertEqual(d["nrcpt"], "1")
        self.assertEqual(d["tls"], "no")
        # the delivery line of the same message says the same
        dl = [l for l in srv.log_text().splitlines()
              if dict(logfmt(l)).get("event") == "delivered"]
        self.assertEqual(dict(logfmt(dl[0]))["from"], "<%s>" % forged)

    def test_every_log_line_is_one_event_even_with_a_peers_multiline_reply(self):
        port = free_port()
        peer = peers.SmtpPeer("127.0.0.1", port, ehlo=("PIPELINING", "X-ONE event=forged a=b",
                                                         "ENHANCEDSTATUSCODES"),
                              data=lambda tx, n: "250-2.0.0 ok\r\n250 2.0.0 event=forged-too")
        self.addCleanup(peer.srv.shutdown)
        srv = self.server(**peers.sender_conf(relayhost="[127.0.0.1]:%d" % port))
        code, _ = peers.submit(srv, "s@localhost", ["r@remote.test"],
                               make_message("multi-line"))
        self.assertEqual(code, 250)
        peer.wait_delivered(1)
        peers.wait_event(srv, "delivered")
        text = srv.log_text()
        self.assertIn("X-ONE event=forged a=b", text.replace("\\x0a", " "))
        for line in text.splitlines():
            if line.startswith("==== harness"):
                continue
            self.assertRegex(line, TS, "a log line that is not an event of its own")
            kv = logfmt(line)
            self.assertLessEqual([k for k, _ in kv].count("event"), 1, line)
