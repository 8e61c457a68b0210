"""peers — the other side of relaying, for the relay/bounce/queue integration tests.

    dns = peers.Dnsmasq(self.tmp, mx=[("dest.test", "mx1.dest.test", 10)],
                        hosts=[("mx1.dest.test", "127.0.0.2")])
    self.addCleanup(dns.stop)
    rx = peers.SmtpPeer("127.0.0.3", port, rcpt=lambda addr, n: "250 2.1.5 ok")
    self.addCleanup(rx.stop)
    tx = self.server(**peers.sender_conf(dns.port, port))

* Dnsmasq: a private dnsmasq (Debian dnsmasq-base) on 127.0.0.1:<free port> answering only from
  its command line (`--local=/test/`, `--no-resolv`, `--no-hosts`): MX, A, null MX (`0 .`),
  NXDOMAIN for every other name under .test, and SERVFAIL for chosen domains (forwarded to a
  ServfailDNS responder).
* SmtpPeer: a scripted SMTP server (threads, standard library) on 127.0.0.x whose replies to
  RCPT and DATA are chosen per test; it records every transaction and the raw bytes of DATA.
* SmtpSink: Postfix's smtp-sink, dumping each message to a file.
* Postfix: a private Postfix instance (own config_directory, queue and maillog) started with
  `postfix -c DIR start` and stopped with `postfix -c DIR stop`.

Every address used is in 127.0.0.0/8; every process started here is signalled by its pid only
(Postfix through its own `postfix stop`); every wait is bounded.
"""

import atexit
import email
import email.policy
import os
import re
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import imsdtest
from imsdtest import wait_for

CMD_TIMEOUT = 30
DNSMASQ = "/usr/sbin/dnsmasq"
POSTFIX = "/usr/sbin/postfix"
SMTP_SINK = "/usr/sbin/smtp-sink"


# ---------------------------------------------------------------- ports

def port_free(port, hosts=("127.0.0.1",), udp=False):
    for h in hosts:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        try:
            s.bind((h, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port_on(*hosts, udp=False):
    """A TCP port (and UDP too when udp) free on every one of hosts (default 127.0.0.1)."""
    hosts = hosts or ("127.0.0.1",)
    for _ in range(200):
        p = imsdtest.free_port()
        if port_free(p, hosts) and (not udp or port_free(p, hosts, udp=True)):
            return p
    raise AssertionError("no free port on %s" % (hosts,))


def port_accepts(host, port, timeout=0.5):
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- DNS

def dns_query(name, qtype, port, server="127.0.0.1", timeout=2.0):
    """One UDP query; returns (rcode, ancount) or None on timeout."""
    tid = os.getpid() & 0xFFFF
    pkt = struct.pack(">HHHHHH", tid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        pkt += bytes([len(label)]) + label.encode()
    pkt += b"\0" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(pkt, (server, port))
        data, _ = s.recvfrom(4096)
    except (socket.timeout, OSError):
        return None
    finally:
        s.close()
    flags, _qd, an = struct.unpack(">HHH", data[2:8])
    return flags & 0xF, an


class ServfailDNS:
    """A UDP responder on 127.0.0.1 that answers every query with SERVFAIL (rcode 2)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 12:
                continue
            self.queries += 1
            # same id and question, QR=1, RD/RA copied, rcode 2, no answers
            flags = 0x8000 | (struct.unpack(">H", data[2:4])[0] & 0x0100) | 0x0080 | 2
            try:
                self.sock.sendto(data[:2] + struct.pack(">H", flags) + data[4:6]
                                 + b"\0\0\0\0\0\0" + data[12:], addr)
            except OSError:
                pass

    def stop(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()


class Dnsmasq:
    """dnsmasq on 127.0.0.1:<port>, authoritative-ish for .test from its command line only.

    mx: [(domain, host, preference)]; hosts: [(name, ipv4)]; null_mx: [domain];
    servfail: [domain] (answered SERVFAIL by a ServfailDNS behind dnsmasq). Any other name
    under .test is NXDOMAIN; a name with only an A record has no MX (NODATA)."""

    def __init__(self, tmpdir, mx=(), hosts=(), null_mx=(), servfail=()):
        imsdtest.need_tool(DNSMASQ, "dnsmasq-base")
        self.dir = tmpdir
        self.port = free_port_on("127.0.0.1", udp=True)
        self.log_path = os.path.join(tmpdir, "dnsmasq-%d.log" % self.port)
        self.servfail = ServfailDNS() if servfail else None
        args = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--listen-address=127.0.0.1", "--bind-interfaces", "--port=%d" % self.port,
                "--pid-file=", "--cache-size=0", "--log-queries", "--log-facility=-"]
        for d in servfail:
            args.append("--server=/%s/127.0.0.1#%d" % (d, self.servfail.port))
        args.append("--local=/test/")
        for dom, host, pref in mx:
            args.append("--mx-host=%s,%s,%d" % (dom, host, pref))
        for dom in null_mx:
            # RFC 7505: preference 0, exchange "." (the root): RDATA 00 00 00
            args.append("--dns-rr=%s,15,000000" % dom)
        for name, addr in hosts:
            args.append("--host-record=%s,%s" % (name, addr))
        self.args = args
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        atexit.register(self.stop)         # even if the test's cleanup is never reached
        # readiness probe: A queries for probe.test (NXDOMAIN), left out of queries()
        ok = wait_for(lambda: self.proc.poll() is None and
                      dns_query("probe.test", 1, self.port, timeout=0.05) is not None, 10, 0.01)
        if not ok:
            self.stop()
            raise AssertionError("dnsmasq did not answer on 127.0.0.1:%d: %s\n%s"
                                 % (self.port, " ".join(args), self.log()))

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def queries(self, name=None):
        """The names asked for, in order: [(type, name)], without the readiness probes."""
        out = [q for q in re.findall(r"query\[(\w+)\] (\S+) from", self.log())
               if q[1] != "probe.test"]
        return [q for q in out if name is None or q[1] == name]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()            # our own child, by pid
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.servfail is not None:
            self.servfail.stop()
            self.servfail = None


# ---------------------------------------------------------------- a scripted SMTP server

class Transaction:
    def __init__(self, conn_no, helo):
        self.conn_no = conn_no
        self.helo = helo
        self.mail_from = None
        self.mail_params = ""
        self.rcpts = []              # accepted recipients
        self.refused = []            # (recipient, reply)
        self.raw = b""               # DATA as on the wire (dot-stuffed, up to the final dot)
        self.chunks = []             # BDAT chunk payloads, in order (empty: DATA was used)
        self.data_reply = None
        self.time = None

    @property
    def data(self):
        """DATA un-stuffed, CRLF line endings kept (BDAT: the chunks as sent)."""
        if self.chunks:
            return self.raw
        lines = self.raw.split(b"\r\n")
        return b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)

    @property
    def message(self):
        return email.message_from_bytes(self.data, policy=email.policy.compat32)

    def header(self, name):
        return self.message.get(name)

    def __repr__(self):
        return "Transaction(from=<%s> rcpts=%r refused=%r %d bytes reply=%r)" % (
            self.mail_from, self.rcpts, self.refused, len(self.raw), self.data_reply)


class SmtpPeer:
    """A small SMTP server on (host, port) for tests: replies are scripted.

    rcpt(addr, n) -> reply line, where n counts earlier RCPTs for addr (0 the first time);
    data(tx, n) -> reply line for the final dot, n counting earlier DATA on this server;
    mail(addr, n) -> reply for MAIL FROM; ehlo: extension lines (None: EHLO refused with 502);
    greeting: the banner (anything but 220 ends the session after the client's next line).
    BDAT (RFC 3030) is understood whether or not CHUNKING is in ehlo: each chunk gets
    250 until LAST, whose reply is data(tx, n).
    Only *accepted* transactions (a 2xx after the dot) are in .delivered; .transactions has all.
    """

    def __init__(self, host, port, rcpt=None, data=None, mail=None,
                 ehlo=("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"), name="peer.test",
                 greeting=None):
        self.host, self.port = host, port
        self.rcpt_policy = rcpt or (lambda addr, n: "250 2.1.5 ok")
        self.data_policy = data or (lambda tx, n: "250 2.0.0 queued as peer%d" % n)
        self.mail_policy = mail or (lambda addr, n: "250 2.1.0 ok")
        self.ehlo_ext = ehlo
        self.name = name
        self.greeting = greeting or "220 %s ESMTP scripted test peer" % name
        self.lock = threading.Lock()
        self.transactions = []
        self.connections = 0
        self.commands = []           # (conn_no, line) for every command line received
        self.rcpt_seen = {}
        self.mail_seen = {}
        self.data_seen = 0
        peer = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 30

            def handle(self):
                peer._session(self.rfile, self.wfile)

        class TCPServer(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.srv = TCPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    @property
    def delivered(self):
        with self.lock:
            return [t for t in self.transactions
                    if t.data_reply is not None and t.data_reply.startswith("2")]

    def delivered_to(self, addr):
        return [t for t in self.delivered if addr in t.rcpts]

    def wait_delivered(self, count=1, timeout=imsdtest.DELIVERY_TIMEOUT):
        wait_for(lambda: len(self.delivered) >= count, timeout)
        return self.delivered

    def _session(self, rfile, wfile):
        with self.lock:
            self.connections += 1
            conn_no = self.connections

        def send(text):
            wfile.write(text.encode("latin-1") + b"\r\n")
            wfile.flush()

        send(self.greeting)
        if not self.greeting.startswith("220"):
            rfile.readline(4096)        # the client's QUIT, if it sends one
            send("221 2.0.0 bye")
            return
        helo = None
        tx = None
        while True:
            line = rfile.readline(4096)
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode("latin-1")
            with self.lock:
                self.commands.append((conn_no, cmd))
            verb = cmd.split(" ", 1)[0].upper()
            arg = cmd[len(verb):].strip()
            if verb == "EHLO":
                if self.ehlo_ext is None:
                    send("502 5.5.2 EHLO not implemented")
                    continue
                helo = arg
                ext = list(self.ehlo_ext)
                send("\r\n".join(["250-%s" % self.name] + ["250-%s" % e for e in ext[:-1]]
                                 + ["250 %s" % ext[-1]]) if ext else "250 %s" % self.name)
            elif verb == "HELO":
                helo = arg
                send("250 %s" % self.name)
            elif verb == "MAIL":
                m = re.match(r"(?i)FROM:\s*<([^>]*)>(.*)", arg)
                addr = m.group(1) if m else arg
                with self.lock:
                    n = self.mail_seen.get(addr, 0)
                    self.mail_seen[addr] = n + 1
                r = self.mail_policy(addr, n)
                if r.startswith("2"):
                    tx = Transaction(conn_no, helo)
                    tx.mail_from = addr
                    tx.mail_params = m.group(2).strip() if m else ""
                send(r)
            elif verb == "RCPT":
                if tx is None:
                    send("503 5.5.1 MAIL first")
                    continue
                m = re.match(r"(?i)TO:\s*<([^>]*)>", arg)
                addr = m.group(1) if m else arg
                with self.lock:
                    n = self.rcpt_seen.get(addr.lower(), 0)
                    self.rcpt_seen[addr.lower()] = n + 1
                r = self.rcpt_policy(addr, n)
                if r.startswith("2"):
                    tx.rcpts.append(addr)
                else:
                    tx.refused.append((addr, r))
                send(r)
            elif verb == "DATA":
                if tx is None or not tx.rcpts:
                    send("554 5.5.1 no valid recipients")
                    continue
                send("354 go ahead")
                raw = []
                while True:
                    l = rfile.readline(1 << 20)
                    if not l:
                        return
                    if l == b".\r\n":
                        break
                    raw.append(l)
                tx.raw = b"".join(raw)
                tx.time = time.monotonic()
                with self.lock:
                    n = self.data_seen
                    self.data_seen += 1
                r = self.data_policy(tx, n)
                tx.data_reply = r
                with self.lock:
                    self.transactions.append(tx)
                tx = None
                send(r)
            elif verb == "BDAT":
                m = re.match(r"(?i)(\d{1,9})( +LAST)? *$", arg)
                if not m:
                    send("501 5.5.4 bad BDAT")
                    return
                size, last = int(m.group(1)), bool(m.group(2))
                chunk = rfile.read(size)
                if len(chunk) < size:
                    return
                if tx is None or not tx.rcpts:
                    send("503 5.5.1 no valid recipients")
                    continue
                tx.chunks.append(chunk)
                if not last:
                    send("250 2.0.0 %d octets received" % size)
                    continue
                tx.raw = b"".join(tx.chunks)
                tx.time = time.monotonic()
                with self.lock:
                    n = self.data_seen
                    self.data_seen += 1
                r = self.data_policy(tx, n)
                tx.data_reply = r
                with self.lock:
                    self.transactions.append(tx)
                tx = None
                send(r)
            elif verb == "RSET":
                tx = None
                send("250 2.0.0 ok")
            elif verb == "NOOP":
                send("250 2.0.0 ok")
            elif verb == "QUIT":
                send("221 2.0.0 bye")
                return
            else:
                send("502 5.5.2 command not implemented")

    def stop(self):
        if self.srv is None:
            return
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(5)
        self.srv = None


# ---------------------------------------------------------------- smtp-sink

class SmtpSink:
    """Postfix's smtp-sink on host:port; each message is dumped into a file under dir."""

    def __init__(self, tmpdir, host, port):
        imsdtest.need_tool(SMTP_SINK, "postfix")
        self.dir = os.path.join(tmpdir, "sink-%s-%d" % (host, port))
        os.makedirs(self.dir)
        os.chmod(tmpdir, 0o755)
        os.chmod(self.dir, 0o777)        # smtp-sink drops to the postfix user
        self.host, self.port = host, port
        args = [SMTP_SINK] + (["-u", "postfix"] if os.geteuid() == 0 else []) + [
            "-d", os.path.join(self.dir, "%Y%m%d%H%M%S."), "%s:%d" % (host, port), "64"]
        self.log_path = self.dir + ".log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        atexit.register(self.stop)
        if not wait_for(lambda: self.proc.poll() is None and port_accepts(host, port), 10):
            self.stop()
            raise AssertionError("smtp-sink did not listen on %s:%d: %s" % (
                host, port, open(self.log_path, errors="replace").read()))

    def files(self):
        return sorted(os.path.join(self.dir, n) for n in os.listdir(self.dir))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()            # our own child, by pid
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ---------------------------------------------------------------- a private Postfix

class Postfix:
    """A private Postfix instance: config_directory, queue_directory, data_directory and
    maillog_file under one temporary directory; the smtpd listens on host:port only.

    Its own mail: mydestination = pf.test (local(8) delivery, so only Unix users such as
    `root`/`postfix` exist there: other local parts get 550 5.1.1 at RCPT); everything else goes
    to relayhost (an imsd under test). No DNS: peername lookups off, native host lookups."""

    def __init__(self, host, port, relayhost, myhostname="pf.test", extra=None):
        imsdtest.need_tool(POSTFIX, "postfix")
        self.dir = tempfile.mkdtemp(prefix="imsd-postfix-")
        os.chmod(self.dir, 0o755)
        self.conf_dir = os.path.join(self.dir, "conf")
        self.queue_dir = os.path.join(self.dir, "queue")
        self.data_dir = os.path.join(self.dir, "data")
        self.maillog = os.path.join(self.dir, "maillog")
        self.host, self.port = host, port
        self.started = False
        for d in (self.conf_dir, self.queue_dir, self.data_dir):
            os.makedirs(d)
        os.chmod(self.queue_dir, 0o755)
        try:
            shutil.chown(self.data_dir, "postfix", "postfix")
        except (LookupError, PermissionError) as e:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise AssertionError("cannot give %s to the postfix user: %s" % (self.data_dir, e))
        os.chmod(self.data_dir, 0o700)
        self._write_master_cf()
        conf = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            # Postfix refuses an inet_interfaces address that is not on an interface
            # (127.0.0.4 is routed to lo but not configured on it): the smtpd address is
            # set in master.cf instead; this one is also the smtp client's source address.
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": myhostname,
            "mydomain": myhostname,
            "myorigin": myhostname,
            "mydestination": myhostname,
            "mynetworks": "127.0.0.0/8",
            "relayhost": relayhost,
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.dir,
            "smtputf8_enable": "no",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "smtpd_peername_lookup": "no",
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "delay_warning_time": "0",
        }
        conf.update(extra or {})
        with open(os.path.join(self.conf_dir, "main.cf"), "w") as f:
            f.write("# written by tests/integration/peers.py\n")
            f.write("".join("%s = %s\n" % kv for kv in conf.items()))

    def _write_master_cf(self):
        out = []
        with open("/etc/postfix/master.cf") as f:
            for line in f.read().split("\n"):
                if line and not line[0].isspace() and not line.startswith("#"):
                    fields = line.split()
                    if len(fields) >= 8:
                        if fields[0] == "smtp" and fields[1] == "inet":
                            fields[0] = "%s:%d" % (self.host, self.port)
                        fields[4] = "n"          # no chroot: the queue has no etc/, lib/
                        line = "  ".join(fields)
                out.append(line)
        with open(os.path.join(self.conf_dir, "master.cf"), "w") as f:
            f.write("\n".join(out))

    def postfix(self, *args):
        """`postfix -c DIR ARGS` with a pseudo-terminal on stderr (Postfix writes its errors
        there only to a terminal); returns (status, output)."""
        cmd = " ".join([POSTFIX, "-c", self.conf_dir] + list(args))
        try:
            p = subprocess.run(["script", "-qec", cmd, "/dev/null"], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, errors="replace",
                               timeout=CMD_TIMEOUT)
        except FileNotFoundError:
            p = subprocess.run(cmd.split(), stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, errors="replace", timeout=CMD_TIMEOUT)
        return p.returncode, (p.stdout + p.stderr).replace("\r", "")

    def start(self):
        rc, out = self.postfix("check")
        if rc != 0:
            raise AssertionError("a private Postfix cannot be set up here: `postfix check` "
                                 "exited %d: %s %s" % (rc, out.strip(), self.log()[-1500:]))
        rc, out = self.postfix("start")
        self.started = True
        atexit.register(self.stop)         # in case tearDownClass is never reached
        if rc != 0 or not wait_for(lambda: port_accepts(self.host, self.port), 10):
            raise AssertionError("a private Postfix cannot be started here: `postfix start` "
                                 "exited %d: %s %s" % (rc, out.strip(), self.log()[-1500:]))

    def stop(self):
        if self.started:
            self.started = False
            try:
                self.postfix("stop")
            except subprocess.TimeoutExpired:
                pass
            # master exits after its children; wait for the pid file's process to go
            pidfile = os.path.join(self.queue_dir, "pid", "master.pid")
            try:
                pid = int(open(pidfile).read().split()[0])
            except (OSError, ValueError, IndexError):
                pid = None
            if pid:
                wait_for(lambda: not os.path.exists("/proc/%d" % pid), 10, 0.1)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=15):
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log()), timeout, 0.1)


# ---------------------------------------------------------------- imsd helpers

def sender_conf(dns_port=None, smtp_port=None, **extra):
    """Configuration for the sending imsd: relaying allowed from 127.0.0.0/8, fast retries;
    dns_servers always a local address (never the host's resolv.conf)."""
    conf = {
        "relay_networks": "127.0.0.0/8",
        "retry_min": "1s",
        "retry_max": "2s",
        "dns_servers": "127.0.0.1:%d" % (dns_port or free_port_on("127.0.0.1", udp=True)),
    }
    if smtp_port is not None:
        conf["smtp_port"] = smtp_port
    conf.update(extra)
    return conf


def listen_also(srv, *hostports):
    """Make srv (not yet started) listen on 127.0.0.1:srv.port (the harness probe) and on
    hostports ("127.0.0.2:2525")."""
    srv.set_conf(listen=", ".join(["127.0.0.1:%d" % srv.port] + list(hostports)))


LOG_KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def log_events(srv, event=None, **match):
    """Log lines of srv with event=EVENT (and key=value for each match), as dicts."""
    out = []
    for line in srv.log_text().splitlines():
        if "event=" not in line:
            continue
        kv = {k: v[1:-1] if v.startswith('"') else v for k, v in LOG_KV.findall(line)}
        kv["_line"] = line
        if event is not None and kv.get("event") != event:
            continue
        if all(kv.get(k) == v for k, v in match.items()):
            out.append(kv)
    return out


def wait_event(srv, event, count=1, timeout=imsdtest.DELIVERY_TIMEOUT, **match):
    evs = wait_for(lambda: len(log_events(srv, event, **match)) >= count
                   and log_events(srv, event, **match), timeout)
    if not evs:
        raise AssertionError("expected %d log line(s) with event=%s %s within %.0f s, found %d%s"
                             % (count, event, match, timeout, len(log_events(srv, event, **match)),
                                srv.log_tail_msg(80)))
    return evs


def submit(srv, sender, rcpts, msg, host="127.0.0.1"):
    """One transaction with smtplib; every recipient must be accepted; returns the reply to
    the final dot as (code, text)."""
    import smtplib
    with smtplib.SMTP(host, srv.port, timeout=imsdtest.SOCKET_TIMEOUT) as s:
        s.ehlo("client.imsd.test")
        s.mail(sender)
        for r in rcpts:
            code, text = s.rcpt(r)
            if code != 250:
                raise AssertionError("RCPT TO:<%s> got %d %r%s" % (r, code, text,
                                                                    srv.log_tail_msg()))
        code, text = s.data(msg)
        return code, text.decode("latin-1")


def qid_of(reply_text):
    """The queue id in a 250 reply to DATA ("... queued as ID"), or None."""
    m = re.search(r"queued as (\S+)", reply_text)
    return m.group(1) if m else None


def parse_mail(path):
    """A delivered Maildir file as an email.message.Message (compat32 policy)."""
    with open(path, "rb") as f:
        return email.message_from_bytes(f.read(), policy=email.policy.compat32)


def dsn_parts(msg):
    """(human-readable part, list of per-recipient field dicts, message-level fields dict,
    headers part) of an RFC 3464 report; raises AssertionError when it is not one."""
    if msg.get_content_type() != "multipart/report":
        raise AssertionError("not multipart/report: %s" % msg.get_content_type())
    if msg.get_param("report-type") != "delivery-status":
        raise AssertionError("report-type is %r" % msg.get_param("report-type"))
    parts = msg.get_payload()
    if not isinstance(parts, list) or len(parts) < 2:
        raise AssertionError("a report needs at least 2 parts, got %r" % parts)
    status = [p for p in parts if p.get_content_type() == "message/delivery-status"]
    if len(status) != 1:
        raise AssertionError("expected one message/delivery-status part, parts are %s"
                             % [p.get_content_type() for p in parts])
    # compat32 parses message/delivery-status as a list of Message objects (field groups)
    groups = status[0].get_payload()
    if isinstance(groups, str):
        groups = [email.message_from_string(g) for g in re.split(r"\r?\n\r?\n", groups.strip())
                  if g.strip()]
    per_msg = dict(groups[0].items()) if groups else {}
    per_rcpt = [dict((k.lower(), v) for k, v in g.items()) for g in groups[1:]]
    headers = [p for p in parts if p.get_content_type() in ("text/rfc822-headers",
                                                            "message/rfc822")]
    return parts[0], per_rcpt, {k.lower(): v for k, v in per_msg.items()}, \
        (headers[0] if headers else None)


def headers_part_text(part):
    """The text of a text/rfc822-headers (or message/rfc822) part."""
    if part is None:
        return ""
    p = part.get_payload(decode=True)
    if p is None:
        p = part.get_payload()
        if isinstance(p, list):
            return "".join(str(x) for x in p)
        return str(p)
    return p.decode("latin-1")


# ---------------------------------------------------------------- the test case base

class RelayCase(imsdtest.ImsdCase):
    """ImsdCase plus the peers: self.p2 is a port free on 127.0.0.1-127.0.0.5 (the smtp_port of
    the sending imsd, where receivers listen); every peer started here is stopped at cleanup;
    a failing test gets the dnsmasq query log and the peers' command logs attached."""

    PEER_HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")

    def setUp(self):
        super().setUp()
        self.p2 = free_port_on(*self.PEER_HOSTS)
        self.dnses = []
        self.peers = []

    def tearDown(self):
        # SIGTERM every running imsd of the test at once (each takes about a second to stop);
        # the harness cleanups then wait for each and check its exit status and log.
        for srv in self.servers:
            if srv.running:
                srv.send_signal(signal.SIGTERM)
        super().tearDown()

    def _callTestMethod(self, method):
        try:
            super()._callTestMethod(method)
        except unittest.SkipTest:
            raise
        except BaseException as e:
            if hasattr(e, "add_note"):
                for d in self.dnses:
                    e.add_note("---- dnsmasq queries ----\n%s" % d.queries())
                for p in self.peers:
                    e.add_note("---- peer %s:%d: %d connections, commands (last 40) ----\n%s\n%r"
                               % (p.host, p.port, p.connections,
                                  "\n".join("%d %s" % c for c in p.commands[-40:]),
                                  p.transactions))
            raise

    # -- peers
    def dns(self, **records):
        d = Dnsmasq(self.tmp, **records)
        self.dnses.append(d)
        self.addCleanup(d.stop)
        return d

    def peer(self, host, port=None, **kw):
        p = SmtpPeer(host, port or self.p2, **kw)
        self.peers.append(p)
        self.addCleanup(p.stop)
        return p

    def receiver(self, host="127.0.0.2", domains="dest.test", port=None, start=True, **conf):
        """A second imsd: local_domains domains, listening on host:port (default self.p2)."""
        conf.setdefault("hostname", "rx%s.imsd.test" % host.rsplit(".", 1)[1])
        conf.setdefault("dns_servers", "127.0.0.1:%d" % free_port_on(udp=True))   # never used
        srv = self.server(start=False, local_domains=domains, **conf)
        listen_also(srv, "%s:%d" % (host, port or self.p2))
        if start:
            srv.start()
        return srv

    def sender(self, dns=None, start=True, **conf):
        """The imsd under test as a relay: relay_networks 127.0.0.0/8, smtp_port self.p2,
        retry_min 1s, retry_max 2s, dns_servers the given Dnsmasq (else a dead local port)."""
        srv = self.server(start=False, **sender_conf(dns.port if dns else None, self.p2))
        srv.set_conf(**conf)
        if start:
            srv.start()
        return srv

    # -- mail
    def send(self, srv, rcpts, subject="relay test", sender="alice@localhost", body="Hello.\r\n",
             extra_headers=""):
        """Submit one message (Message-ID <subject-with-dashes@imsd.test>); returns its qid."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        msg = imsdtest.make_message(subject, body=body, sender=sender, to=rcpts[0],
                                    extra_headers=extra_headers)
        code, text = submit(srv, sender, rcpts, msg)
        self.assertEqual(code, 250, text)
        return qid_of(text)

    def mails(self, srv, domain, user):
        return [parse_mail(f) for f in srv.maildir_files(domain, user)]

    def wait_dsns(self, srv, count=1, domain="localhost", user="alice",
                  timeout=imsdtest.DELIVERY_TIMEOUT):
        """Wait for count messages in domain/user (the sender's Maildir) and return them parsed."""
        files = srv.wait_mail(domain, user, count, timeout)
        return [parse_mail(f) for f in files]

    def assertDsn(self, msg, action="failed", statuses=None, subject=None):
        """msg is an RFC 3464 report from MAILER-DAEMON to the sender with one group per entry
        of statuses ({recipient: status or status-prefix}); returns the per-recipient groups."""
        self.assertIn("MAILER-DAEMON@", msg.get("From", ""), "From of the report")
        self.assertEqual(msg.get("Return-Path"), "<>", "a report is sent from the null sender")
        _text, groups, per_msg, headers = dsn_parts(msg)
        self.assertTrue(per_msg.get("reporting-mta", "").startswith("dns;"), per_msg)
        if statuses is not None:
            got = {}
            for g in groups:
                fr = g.get("final-recipient", "")
                self.assertTrue(fr.lower().startswith("rfc822;"), g)
                got[fr.split(";", 1)[1].strip()] = g
            self.assertEqual(sorted(got), sorted(statuses), "recipients in the report")
            for rcpt, st in statuses.items():
                g = got[rcpt]
                self.assertEqual(g.get("action"), action, g)
                self.assertTrue(g.get("status", "").startswith(st), "Status of %s: %r, want %s"
                                % (rcpt, g.get("status"), st))
                self.assertRegex(g.get("status", ""), r"^[245]\.\d{1,3}\.\d{1,3}$", g)
        if subject is not None:
            self.assertIsNotNone(headers, "the report attaches the original headers")
            self.assertIn("Subject: %s" % subject, headers_part_text(headers))
        return groups
