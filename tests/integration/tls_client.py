#!/usr/bin/env python3
"""tls_client — an SMTP client for the TLS/AUTH integration tests, run *inside* a network
namespace (`ip netns exec NS python3 tls_client.py ...`); it prints one JSON object on stdout.

    tls_client.py raw --host 198.51.100.10 --port 2525 '[["read"], ["cmd", "EHLO c"], ["starttls"]]'
    tls_client.py smtplib --host 198.51.100.10 --port 2525 --starttls --login alice secret \
                          --mail s@example.org --rcpt alice@localhost --subject hi

raw: steps run in order and each adds one event to "events"; on an exception the output has
"error" and "failed_step" and the events so far. Steps:
    ["read"]                  read one (multi-line) reply
    ["cmd", LINE]             send LINE + CRLF and read one reply
    ["send", TEXT]            send TEXT as is (latin-1; put "\r\n" in it yourself)
    ["starttls"]              TLS handshake on the connection (client side); records version,
                              cipher, the server certificate's subject (when verified) and
                              the SHA-256 of its DER form
    ["silent", SECS]          wait SECS for input: records any bytes that arrive (should be none)
    ["until_close"]           read replies until the server closes the connection
    ["closed", SECS]          whether the server closes the connection within SECS
    ["auth_plain", USER, PW]  AUTH PLAIN with an initial response, one reply
    ["auth_login", USER, PW]  AUTH LOGIN, the 334 exchanges, the final reply
A reply is {"code": 250, "lines": ["250-...", ...], "elapsed": seconds}.

--smtps wraps the connection in TLS before anything is read (implicit TLS, RFC 8314).
TLS is verified against --cafile for --servername (mx.imsd.test) unless --cafile is empty.
Standard library only; every wait is bounded by --timeout.
"""

import argparse
import base64
import hashlib
import json
import re
import socket
import ssl
import sys
import time


def tls_context(cafile):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_info(sock):
    cert = sock.getpeercert() or {}
    subject = ", ".join("%s=%s" % kv for rdn in cert.get("subject", ()) for kv in rdn)
    name, proto, bits = sock.cipher()
    der = sock.getpeercert(binary_form=True) or b""
    return {"version": sock.version(), "cipher": name, "bits": bits, "subject": subject,
            "sha256": hashlib.sha256(der).hexdigest()}


class Conn:
    def __init__(self, args):
        src = (args.source, 0) if args.source else None
        self.sock = socket.create_connection((args.host, args.port), timeout=args.timeout,
                                             source_address=src)
        self.args = args
        self.buf = b""
        self.local = self.sock.getsockname()[0]
        self.peer = self.sock.getpeername()[0]

    def starttls(self):
        if self.buf:
            raise AssertionError("plaintext bytes buffered before the handshake: %r" % self.buf)
        ctx = tls_context(self.args.cafile)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.args.servername)
        return tls_info(self.sock)

    def send(self, data):
        self.sock.sendall(data.encode("latin-1") if isinstance(data, str) else data)

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection (unparsed: %r)" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("latin-1")

    def reply(self):
        t0 = time.monotonic()
        lines = []
        while True:
            line = self.readline()
            if not re.match(r"^\d{3}([ -]|$)", line):
                raise AssertionError("malformed reply line %r after %r" % (line, lines))
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                return {"code": int(line[:3]), "lines": lines,
                        "elapsed": round(time.monotonic() - t0, 3)}

    def silent(self, secs):
        """Bytes that arrive within secs (b"" when none; the buffer counts)."""
        got = self.buf
        self.sock.settimeout(secs)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return got, True
                got += chunk
        except (socket.timeout, TimeoutError):
            return got, False
        finally:
            self.sock.settimeout(self.args.timeout)

    def closed(self, secs):
        deadline = time.monotonic() + secs
        self.sock.settimeout(secs)
        try:
            while time.monotonic() < deadline:
                try:
                    chunk = self.sock.recv(65536)
                except (ConnectionResetError, ssl.SSLError, OSError) as e:
                    if isinstance(e, (socket.timeout, TimeoutError)):
                        return False
                    return True
                if not chunk:
                    return True
            return False
        finally:
            self.sock.settimeout(self.args.timeout)


def run_raw(args):
    out = {"events": []}
    steps = json.loads(args.steps)
    c = None
    try:
        c = Conn(args)
        out["local"], out["peer"] = c.local, c.peer
        if args.smtps:
            out["tls"] = c.starttls()
        for i, step in enumerate(steps):
            out["failed_step"] = i
            op = step[0]
            ev = {"op": op}
            if op == "read":
                ev["reply"] = c.reply()
            elif op == "cmd":
                ev["line"] = step[1]
                c.send(step[1] + "\r\n")
                ev["reply"] = c.reply()
            elif op == "send":
                ev["data"] = step[1]
                c.send(step[1])
            elif op == "starttls":
                ev["tls"] = c.starttls()
                out["tls"] = ev["tls"]
            elif op == "silent":
                got, eof = c.silent(float(step[1]))
                ev["data"], ev["eof"] = got.decode("latin-1"), eof
            elif op == "until_close":
                ev["replies"] = []
                while True:
                    try:
                        ev["replies"].append(c.reply())
                    except (EOFError, ConnectionResetError):
                        break
            elif op == "closed":
                ev["closed"] = c.closed(float(step[1]))
            elif op == "auth_plain":
                tok = base64.b64encode(("\0%s\0%s" % (step[1], step[2])).encode()).decode()
                c.send("AUTH PLAIN %s\r\n" % tok)
                ev["reply"] = c.reply()
            elif op == "auth_login":
                c.send("AUTH LOGIN\r\n")
                ev["replies"] = [c.reply()]
                for v in step[1:3]:
                    if ev["replies"][-1]["code"] != 334:
                        break
                    c.send(base64.b64encode(v.encode()).decode() + "\r\n")
                    ev["replies"].append(c.reply())
                ev["reply"] = ev["replies"][-1]
            else:
                raise ValueError("unknown step %r" % (step,))
            out["events"].append(ev)
        del out["failed_step"]
    except Exception as e:        # report, never hang or traceback without JSON
        out["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        if c is not None:
            try:
                c.sock.close()
            except OSError:
                pass
    return out


def run_smtplib(args):
    import smtplib
    out = {}
    ctx = tls_context(args.cafile)
    try:
        if args.smtps:
            sctx = tls_context(args.cafile)
            sctx.check_hostname = False       # still CERT_REQUIRED with a cafile; name below
            s = smtplib.SMTP_SSL(args.host, args.port, timeout=args.timeout, context=sctx)
            # smtplib verifies the name given as host; tests connect by address, so check the
            # certificate against servername by hand when one is requested
            if args.cafile:
                cert = s.sock.getpeercert()
                names = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
                if args.servername not in names:
                    raise AssertionError("certificate names %r, not %r" % (names, args.servername))
            out["tls"] = tls_info(s.sock)
        else:
            s = smtplib.SMTP(args.host, args.port, timeout=args.timeout)
        try:
            out["local"] = s.sock.getsockname()[0]
            code, msg = s.ehlo("smtplib.imsd.test")
            out["ehlo"] = {"code": code, "text": msg.decode("latin-1")}
            out["features"] = sorted(s.esmtp_features)
            if args.starttls:
                # smtplib would check the certificate against `host`, an address; wrap by hand
                # through the same API so the name checked is servername
                code, msg = s.docmd("STARTTLS")
                out["starttls"] = {"code": code, "text": msg.decode("latin-1")}
                if code != 220:
                    raise smtplib.SMTPResponseException(code, msg)
                s.sock = ctx.wrap_socket(s.sock, server_hostname=args.servername)
                s.file = None
                s.helo_resp = s.ehlo_resp = None
                s.esmtp_features = {}
                s.does_esmtp = False
                out["tls"] = tls_info(s.sock)
                code, msg = s.ehlo("smtplib.imsd.test")
                out["ehlo_tls"] = {"code": code, "text": msg.decode("latin-1")}
                out["features_tls"] = sorted(s.esmtp_features)
            if args.login:
                if args.auth_method:
                    s.user, s.password = args.login
                    code, msg = s.auth(args.auth_method,
                                       getattr(s, "auth_" + args.auth_method.lower()))
                else:
                    code, msg = s.login(*args.login)
                out["login"] = {"code": code, "text": msg.decode("latin-1")}
            if args.mail:
                msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@imsd.test>\r\n"
                       "\r\nsent by tls_client.py\r\n"
                       % (args.mail, ", ".join(args.rcpt), args.subject,
                          re.sub(r"\W", "-", args.subject)))
                out["refused"] = s.sendmail(args.mail, args.rcpt, msg.encode())
                out["sent"] = True
            s.quit()
        finally:
            s.close()
    except smtplib.SMTPResponseException as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
        out["smtp_code"], out["smtp_text"] = e.smtp_code, e.smtp_error.decode("latin-1")
    except smtplib.SMTPRecipientsRefused as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
        out["recipients_refused"] = {k: [v[0], v[1].decode("latin-1")]
                                     for k, v in e.recipients.items()}
    except Exception as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    for name in ("raw", "smtplib"):
        p = sub.add_parser(name)
        p.add_argument("--host", required=True)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--source", help="local address to bind before connecting")
        p.add_argument("--smtps", action="store_true", help="implicit TLS")
        p.add_argument("--cafile", default="")
        p.add_argument("--servername", default="mx.imsd.test")
        p.add_argument("--timeout", type=float, default=10.0)
        if name == "raw":
            p.add_argument("steps", help="JSON list of steps")
        else:
            p.add_argument("--starttls", action="store_true")
            p.add_argument("--login", nargs=2, metavar=("USER", "PASSWORD"))
            p.add_argument("--auth-method", choices=["PLAIN", "LOGIN"])
            p.add_argument("--mail")
            p.add_argument("--rcpt", action="append", default=[])
            p.add_argument("--subject", default="tls test")
    args = ap.parse_args()
    out = run_raw(args) if args.mode == "raw" else run_smtplib(args)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
