#!/usr/bin/env python3
"""Delivery to Dovecot (issue 19, part 4): imsd into its own Maildir, imsd to Dovecot over
LMTP, and Postfix to the same Dovecot over LMTP, in one run (bench/run.sh, `make bench`).

One private Dovecot (tests/integration/dovecot.py, debug logging off) with one user; the
client (bench/smtpload) sends TOTAL messages over SESS sessions of PER_CONN messages each to
that user at a local domain of the MTA; a rate is "messages / (time from the start of the
client until the mailbox holds every message)": for Maildir the files under imsd's
mail_dir, for LMTP the files under the user's Maildir in Dovecot (new/ and cur/). Each point
gets one unmeasured pilot run per target, then REPS runs each, the targets alternating; the
median is printed. Everything listens on 127.0.0.1 or on unix sockets under one temporary
directory; every wait is bounded.
"""
import argparse
import datetime
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))

import bench as B          # noqa: E402  (the Postfix and imsd wrappers of bench.py)
import dovecot             # noqa: E402

DOMAIN = "mail.bench"
USER = "bench@" + DOMAIN
SENDER = "sender@client.example"
POINTS = [(1024, 10, 10), (102400, 10, 10)]   # size, sessions, messages per connection


def count_files(*dirs):
    n = 0
    for d in dirs:
        try:
            n += len(os.listdir(d))
        except FileNotFoundError:
            pass
    return n


class Mailbox:
    """Where a target's messages end up, counted by directory listing."""

    def __init__(self, maildir):
        self.dirs = [os.path.join(maildir, "new"), os.path.join(maildir, "cur")]

    def count(self):
        return count_files(*self.dirs)

    def wait(self, target, deadline, stall=20.0):
        """Poll until count >= target; the time it got there, or None (deadline, or no new
        message for `stall` seconds)."""
        last, last_t = self.count(), time.monotonic()
        while True:
            n = self.count()
            now = time.monotonic()
            if n >= target:
                return now
            if n != last:
                last, last_t = n, now
            if now >= deadline or now - last_t > stall:
                return None
            time.sleep(0.02)


class Target:
    def __init__(self, name, port, mailbox, describe):
        self.name, self.port, self.mailbox, self.describe = name, port, mailbox, describe


def run_one(args, tg, size, sess, per_conn, total, failures):
    before = tg.mailbox.count()
    cmd = [args.smtpload, "-s", str(sess), "-m", str(total), "-r", str(per_conn), "-l",
           str(size), "-f", SENDER, "-t", USER, "-w", "120", "%s:%d" % (B.HOST, tg.port)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    t_client = time.monotonic() - t0
    if p.returncode != 0 or ("sent=%d" % total) not in p.stdout:
        failures.append("%s %d B: client exit %d: %s %s" % (tg.name, size, p.returncode,
                                                           p.stdout[-200:], p.stderr[-300:]))
        return None
    t_end = tg.mailbox.wait(before + total, t0 + 600)
    if t_end is None:
        failures.append("%s %d B: the mailbox got %d of %d messages (client done in %.1f s)"
                        % (tg.name, size, tg.mailbox.count() - before, total, t_client))
        return None
    return total / (t_end - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--imsd", default="build/imsd")
    ap.add_argument("--smtpload", required=True)
    ap.add_argument("--out", default="bench/results-dovecot.txt")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0, help="target length of one run")
    ap.add_argument("--max-total", type=int, default=4000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("dovecotbench: run as root (private Postfix and Dovecot)")
    dovecot.available()

    base = "/var/tmp" if os.path.isdir("/var/tmp") else None
    tmp = tempfile.mkdtemp(prefix="imsd-dvbench.", dir=base)
    os.chmod(tmp, 0o755)
    failures = []
    started = time.monotonic()
    dv = pf = im_md = im_lm = None
    results = {}
    try:
        im_port, im2_port, pf_port, dummy_sink = B.free_ports(4)
        dv = dovecot.Dovecot(tmp, users={USER: "bench password"}, debug=False,
                             socket_mode="0666")
        dv.start()
        user_maildir = os.path.join(dv.home(USER), "Maildir")

        # imsd storing the Maildir itself
        im_md = B.Imsd(args.imsd, tmp, im_port, dummy_sink, tag="imsd-maildir")
        im_md.settings.update(local_domains=DOMAIN)
        im_md.settings.pop("relayhost")
        md_conf = im_md.write_conf()
        im_md.start()
        # imsd delivering over LMTP to Dovecot
        im_lm = B.Imsd(args.imsd, tmp, im2_port, dummy_sink, tag="imsd-lmtp")
        im_lm.settings.update(local_domains=DOMAIN,
                              mailbox_transport="lmtp:unix:" + dv.lmtp_socket)
        im_lm.settings.pop("relayhost")
        lm_conf = im_lm.write_conf()
        im_lm.start()
        # Postfix delivering over LMTP to the same Dovecot
        pf = B.Postfix(tmp, pf_port, dummy_sink)
        pf_extra = ["relayhost =", "mydestination = " + DOMAIN, "local_recipient_maps =",
                    "mailbox_transport = lmtp:unix:" + dv.lmtp_socket]
        with open(os.path.join(pf.etc, "main.cf"), "a") as f:
            f.write("\n# dovecotbench: local mail to Dovecot over LMTP\n" +
                    "\n".join(pf_extra) + "\n")
        with open(os.path.join(pf.etc, "master.cf"), "a") as f:
            f.write("lmtp      unix  -       -       n       -       -       lmtp\n")
        pf.start()

        targets = [
            Target("imsd Maildir", im_port,
                   Mailbox(os.path.join(im_md.settings["mail_dir"], DOMAIN, "bench")),
                   "imsd writes mail_dir/%s/bench/ itself" % DOMAIN),
            Target("imsd LMTP", im2_port, Mailbox(user_maildir),
                   "imsd -> Dovecot LMTP (unix socket)"),
            Target("Postfix LMTP", pf_port, Mailbox(user_maildir),
                   "Postfix -> Dovecot LMTP (unix socket)"),
        ]
        for size, sess, per_conn in POINTS:
            pilot = {}
            for tg in targets:
                r = run_one(args, tg, size, sess, per_conn, sess * per_conn * 2, failures)
                pilot[tg.name] = r or 50.0
            rates = {tg.name: [] for tg in targets}
            totals = {}
            for rep in range(args.reps):
                order = targets if rep % 2 == 0 else [targets[0]] + targets[:0:-1]
                for tg in order:
                    unit = sess * per_conn
                    total = int(min(max(pilot[tg.name] * args.seconds, 2 * unit),
                                    args.max_total)) // unit * unit
                    totals[tg.name] = total
                    r = run_one(args, tg, size, sess, per_conn, total, failures)
                    if r is not None:
                        rates[tg.name].append(r)
            results[(size, sess, per_conn)] = (rates, totals)
            B.log("dovecotbench: %d B: %s" % (size, ", ".join(
                "%s %s" % (n, B.fmt_rate(statistics.median(v)) if v else "-")
                for n, v in rates.items())))
        dv_log_problems = [ln for ln in dv.log_text().splitlines()
                           if " Error: " in ln or " Fatal: " in ln or " Panic: " in ln]
    finally:
        for x in (im_md, im_lm):
            if x is not None:
                x.stop()
        if pf is not None:
            pf.stop()
        if dv is not None:
            dv.close()

    lines = []
    w = lines.append
    w("imsd and Postfix delivering to Dovecot over LMTP, beside imsd's own Maildir")
    w("=" * 78)
    w("date:     " + datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"))
    w("machine:  %s, %d CPUs, Linux %s; load at the end %s" % (
        platform.node(), os.cpu_count(), platform.release(),
        " ".join("%.2f" % x for x in os.getloadavg())))
    w("Dovecot:  " + subprocess.run([dovecot.DOVECOT, "--version"], capture_output=True,
                                    text=True).stdout.strip())
    w("command:  make bench  (bench/run.sh -> python3 bench/dovecotbench.py --reps %d "
      "--seconds %g)" % (args.reps, args.seconds))
    w("client:   %s -s SESS -m TOTAL -r PER_CONN -l SIZE -f %s -t %s -w 120 127.0.0.1:PORT"
      % (args.smtpload, SENDER, USER))
    w("rate:     messages / (client start -> the last message is in the mailbox), median "
      "of %d runs" % args.reps)
    w("")
    w("%-10s %-6s %-9s %16s %16s %16s" % ("size", "sess", "per conn", "imsd Maildir",
                                          "imsd LMTP", "Postfix LMTP"))
    for (size, sess, per_conn), (rates, totals) in results.items():
        cells = []
        for n in ("imsd Maildir", "imsd LMTP", "Postfix LMTP"):
            v = rates.get(n) or []
            cells.append("%s msg/s" % B.fmt_rate(statistics.median(v)) if v else "failed")
        w("%-10s %-6d %-9d %16s %16s %16s" % (
            "%d KiB" % (size // 1024), sess, per_conn, *cells))
    w("")
    w("each run: " + "; ".join("%s %s" % (k, v) for k, v in sorted(
        {n: t for (_, (r, t)) in results.items() for n, t in t.items()}.items())) +
      " messages (sized from a pilot run to ~%g s)" % args.seconds)
    w("imsd (LMTP) configuration:")
    w("    " + lm_conf.replace("\n", "\n    ").rstrip())
    w("Postfix main.cf additions (bench.py's private instance otherwise): " +
      "; ".join(pf_extra) + "; master.cf: lmtp unix - - n - - lmtp")
    w("Dovecot: tests/integration/dovecot.py's configuration, debug logging off; "
      "one user, mail_location = maildir:~/Maildir")
    if failures:
        w("")
        w("FAILURES:")
        for f in failures:
            w("  " + f)
    if dv_log_problems:
        w("Dovecot logged %d error lines, first: %s" % (len(dv_log_problems),
                                                        dv_log_problems[0]))
    w("took %.0f s" % (time.monotonic() - started))
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
