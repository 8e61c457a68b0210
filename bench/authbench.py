#!/usr/bin/env python3
"""authbench — what DKIM signing and the inbound checks cost, in messages per second.

    bench/authbench.py --imsd build/imsd --smtpload PATH [--messages N] [--reps R] [--out F]

Run by bench/run.sh (make bench) after bench.py. Everything happens inside a network
namespace this script creates (and deletes): inside it, on the namespace's own loopback,

    smtpload --> imsd A (127.0.0.1, relay for the client, signs per variant)
             --> imsd B (198.51.100.10, local delivery for bench.example, checks per variant)
             --> Maildir (counted)

A relays to B's non-loopback address, so B sees a client outside relay_networks and
loopback: an Internet sender, whose mail gets SPF, DKIM and DMARC when inbound_checks is on.
dnsmasq in the namespace serves the sender domain's SPF record, DKIM keys and DMARC policy.
The figure is messages / (time from the start of the client until B's Maildir holds all of
them), median of R runs; each run is bounded in count and time.

Variants: A signs nothing / RSA / RSA + Ed25519; B checks off / on. The closing notes of
issue 9 quote this table.
"""
import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

NS_ADDR = "198.51.100.10"
PORT_A, PORT_B = 2601, 2602
SENDER = "bench@client.example"
RCPT = "rcpt@bench.example"


def log(msg):
    print(msg, flush=True)


class World:
    def __init__(self, imsd, tmp):
        self.imsd = os.path.abspath(imsd)
        self.tmp = tmp
        self.ns = "imsdb-" + secrets.token_hex(4)
        self.procs = []
        self.run(["ip", "netns", "add", self.ns], host=True)
        self.run(["ip", "link", "set", "lo", "up"])
        self.run(["ip", "addr", "add", NS_ADDR + "/32", "dev", "lo"])
        self.keys = {}
        recs = []
        for alg in ("rsa", "ed25519"):
            path = os.path.join(tmp, f"{alg}.key")
            args = [self.imsd, "dkim-keygen"] + (["--ed25519"] if alg == "ed25519" else []) + \
                ["client.example", alg, path]
            out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
            recs.append((f"{alg}._domainkey.client.example",
                         "".join(re.findall(r'"([^"]*)"', out))))
            self.keys[alg] = path
        recs.append(("client.example", f"v=spf1 ip4:{NS_ADDR} -all"))
        recs.append(("_dmarc.client.example", "v=DMARC1; p=reject"))
        args = ["/usr/sbin/dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--listen-address=127.0.0.1", "--bind-interfaces", "--port=53",
                "--user=root", "--pid-file=", "--local=/example/"]
        for name, text in recs:
            parts = [text[i:i + 255] for i in range(0, len(text), 255)]
            args.append(f"--txt-record={name},{','.join(parts)}")
        self.spawn(args, "dnsmasq")

    def argv(self, args):
        return ["ip", "netns", "exec", self.ns] + args

    def run(self, args, host=False):
        subprocess.run(args if host else self.argv(args), check=True, capture_output=True,
                       timeout=60)

    def spawn(self, args, name):
        log_f = open(os.path.join(self.tmp, name + ".log"), "ab")
        p = subprocess.Popen(self.argv(args), stdin=subprocess.DEVNULL, stdout=log_f,
                             stderr=log_f)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.terminate()          # our own child, by pid
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if p in self.procs:
            self.procs.remove(p)

    def close(self):
        for p in list(self.procs):
            self.stop(p)
        subprocess.run(["ip", "netns", "delete", self.ns], capture_output=True, timeout=60)

    def imsd_pair(self, sign, checks):
        """Start A and B for one variant; returns (A, B, B's maildir)."""
        d = tempfile.mkdtemp(dir=self.tmp)
        common = {"run_user": "root", "log_level": "warn", "max_connections": "5000",
                  "max_connections_per_ip": "5000", "dns_servers": "127.0.0.1:53"}
        a = dict(common, hostname="a.bench.test", listen=f"127.0.0.1:{PORT_A}",
                 spool_dir=f"{d}/a/spool", mail_dir=f"{d}/a/mail", local_domains="localhost",
                 relay_networks="127.0.0.0/8", relayhost=f"[{NS_ADDR}]:{PORT_B}")
        if sign:
            a["dkim_sign"] = ", ".join(f"client.example:{alg}:{self.keys[alg]}" for alg in sign)
        b = dict(common, hostname="b.bench.test", listen=f"{NS_ADDR}:{PORT_B}",
                 spool_dir=f"{d}/b/spool", mail_dir=f"{d}/b/mail", local_domains="bench.example",
                 relay_networks="192.0.2.0/24", inbound_checks="yes" if checks else "no")
        procs = []
        for name, conf in (("a", a), ("b", b)):
            path = f"{d}/{name}.conf"
            with open(path, "w") as f:
                f.write("".join(f"{k} = {v}\n" for k, v in conf.items()))
            procs.append(self.spawn([self.imsd, "run", "-c", path], f"imsd-{name}"))
        for port, host in ((PORT_A, "127.0.0.1"), (PORT_B, NS_ADDR)):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                r = subprocess.run(self.argv(["python3", "-c",
                                              f"import socket;socket.create_connection(('{host}',{port}),1).close()"]),
                                   capture_output=True)
                if r.returncode == 0:
                    break
                time.sleep(0.1)
            else:
                raise SystemExit(f"authbench: imsd on {host}:{port} did not start")
        return procs, f"{d}/b/mail/bench.example/rcpt/new"


def count(path):
    try:
        return len(os.listdir(path))
    except FileNotFoundError:
        return 0


def one_run(w, client, maildir, sessions, n, timeout=180):
    before = count(maildir)
    t0 = time.monotonic()
    if os.path.basename(client) == "smtp-source":
        # Postfix's own load generator: one message per connection, as smtpload -r 1
        cmd = [client, "-s", str(sessions), "-m", str(n), "-l", "1024", "-f", SENDER,
               "-t", RCPT, f"127.0.0.1:{PORT_A}"]
    else:
        cmd = [client, "-s", str(sessions), "-m", str(n), "-r", "1", "-l", "1024",
               "-f", SENDER, "-t", RCPT, "-w", "60", f"127.0.0.1:{PORT_A}"]
    p = subprocess.run(w.argv(cmd), capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        return None, "client: " + (p.stderr or p.stdout).strip()[:200]
    deadline = t0 + timeout
    while count(maildir) < before + n:
        if time.monotonic() > deadline:
            return None, f"only {count(maildir) - before} of {n} delivered"
        time.sleep(0.02)
    return n / (time.monotonic() - t0), None


def sample_headers(maildir):
    names = sorted(os.listdir(maildir))
    if not names:
        return ""
    with open(os.path.join(maildir, names[-1]), "rb") as f:
        head = f.read().split(b"\r\n\r\n")[0].decode("latin-1")
    keep = [l for l in re.split(r"\r?\n(?![ \t])", head)
            if l.startswith(("Authentication-Results", "DKIM-Signature"))]
    return "\n".join(keep)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--imsd", default="build/imsd")
    ap.add_argument("--smtpload", required=True,
                    help="the client: bench/smtpload, or /usr/sbin/smtp-source (Postfix's)")
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sessions", default="10,50")
    ap.add_argument("--out", default="bench/results-auth.txt")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("authbench: needs root (network namespace)")
    tmp = tempfile.mkdtemp(prefix="imsd-authbench-", dir="/var/tmp")
    w = World(args.imsd, tmp)
    variants = [("signing off, checks off", (), False),
                ("RSA signing, checks off", ("rsa",), False),
                ("RSA + Ed25519 signing, checks off", ("rsa", "ed25519"), False),
                ("RSA signing, checks on (SPF, DKIM, DMARC)", ("rsa",), True)]
    sessions = [int(s) for s in args.sessions.split(",")]
    table = {}
    samples = {}
    problems = []
    try:
        for label, sign, checks in variants:
            procs, maildir = w.imsd_pair(sign, checks)
            for s in sessions:
                rates = []
                for rep in range(args.reps):
                    r, why = one_run(w, args.smtpload, maildir, s, args.messages)
                    if r is None:
                        problems.append(f"{label} s={s} rep {rep + 1}: {why}")
                    else:
                        rates.append(r)
                table[(label, s)] = statistics.median(rates) if rates else None
                log(f"  {label:45s} s={s:3d}: " +
                    (f"{table[(label, s)]:8.0f} msgs/s" if rates else "failed"))
            samples[label] = sample_headers(maildir)
            for p in procs:
                w.stop(p)
    finally:
        w.close()
        shutil.rmtree(tmp, ignore_errors=True)
    base = {s: table.get((variants[0][0], s)) for s in sessions}
    lines = [f"imsd mail authentication cost (bench/authbench.py; 1 KiB messages, "
             f"{os.path.basename(args.smtpload)} -> imsd A -> imsd B -> Maildir, in a network "
             "namespace; at s=1 the client sends each message after the previous 250 from A)",
             f"messages per run {args.messages}, median of {args.reps}", ""]
    lines.append(f"{'variant':45s}" + "".join(f"  s={s:<3d} msgs/s  vs off" for s in sessions))
    for label, _, _ in variants:
        row = f"{label:45s}"
        for s in sessions:
            r = table.get((label, s))
            row += (f"  {r:12.0f}  {r / base[s]:6.2f}x" if r and base[s] else
                    f"  {'failed':>12s}  {'':7s}")
        lines.append(row)
    lines.append("")
    for label, text in samples.items():
        if text:
            lines.append(f"-- a delivered message's fields ({label}):")
            lines.append(text)
    if problems:
        lines.append("")
        lines.append("problems:")
        lines.extend("  " + p for p in problems)
    out = "\n".join(lines) + "\n"
    print(out)
    with open(args.out, "w") as f:
        f.write(out)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
