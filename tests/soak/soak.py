#!/usr/bin/env python3
"""soak — kill -9 imsd again and again under relay load; count what was lost.

    python3 tests/soak/soak.py [--cycles 100] [--clients 4] [--imsd build/imsd]

Two imsd instances on loopback: A receives from N client threads and relays everything to B
(relayhost), which delivers to Maildirs. Every message carries a unique tag in its Subject.
A killer kills A with SIGKILL at random moments (every 0.2-1.5 s) and restarts it on the
same spool, --cycles times, while the clients keep sending (and retry on refused
connections). Then the load stops, both queues drain (bounded), and the tags found in B's
Maildirs are compared with the tags A acknowledged with 250:

    soak: cycles=100 acknowledged=N delivered=N duplicated=N lost=0 unacknowledged-delivered=N

lost (acknowledged, never delivered) must be 0: the exit status is 1 otherwise, or when the
queues did not drain. duplicated counts tags delivered more than once (at-least-once after a
crash). Standard library only; traffic to 127.0.0.1 only; every loop bounded.
"""

import argparse
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import imsdtest  # noqa: E402


def send_one(port, tag, timeout=5):
    """One message on its own connection; True when imsd said 250 to the final dot."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    f = s.makefile("rb")
    try:
        def reply():
            while True:
                line = f.readline()
                if not line:
                    raise ConnectionError("closed")
                if line[3:4] != b"-":
                    return line
        if not reply().startswith(b"220"):
            return False
        s.sendall(b"EHLO soak.example\r\n")
        reply()
        s.sendall(b"MAIL FROM:<soak@example.org>\r\n")
        if not reply().startswith(b"250"):
            return False
        s.sendall(b"RCPT TO:<sink@remote.example>\r\n")
        if not reply().startswith(b"250"):
            return False
        s.sendall(b"DATA\r\n")
        if not reply().startswith(b"354"):
            return False
        s.sendall(b"Subject: %s\r\nMessage-ID: <%s@soak.example>\r\n\r\nsoak body\r\n.\r\n"
                  % (tag.encode(), tag.encode()))
        ok = reply().startswith(b"250")
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:
            pass
        return ok
    finally:
        s.close()


def delivered_tags(mail_dir):
    tags = []
    for d, _, files in os.walk(mail_dir):
        if not d.endswith("/new"):
            continue
        for n in files:
            try:
                with open(os.path.join(d, n), "rb") as fh:
                    for line in fh:
                        if line.startswith(b"Subject: "):
                            tags.append(line[9:].strip().decode())
                            break
                        if line in (b"\n", b"\r\n"):
                            break
            except OSError:
                pass
    return tags


def queue_empty(srv):
    q = os.path.join(srv.spool_dir, "queue")
    try:
        return not [n for n in os.listdir(q)]
    except FileNotFoundError:
        return True


def run(cycles, clients, binary, workdir, seed, drain_seconds=180, log=print):
    rnd = random.Random(seed)
    b = imsdtest.Server(os.path.join(workdir, "b"), start=False, binary=binary,
                        log_level="warn", local_domains="remote.example")
    b.start()
    a = imsdtest.Server(os.path.join(workdir, "a"), start=False, binary=binary, log_level="warn",
                        relay_networks="127.0.0.0/8", relayhost="[127.0.0.1]:%d" % b.port,
                        retry_min="1s", retry_max="2s")
    a.start()
    acked, lock, stop = [], threading.Lock(), threading.Event()
    counter = [0]

    def client():
        while not stop.is_set():
            with lock:
                counter[0] += 1
                tag = "soak-%d" % counter[0]
            try:
                if send_one(a.port, tag):
                    with lock:
                        acked.append(tag)
            except OSError:
                time.sleep(0.05)          # A is down: a real client retries later

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    try:
        for i in range(cycles):
            time.sleep(rnd.uniform(0.2, 1.5))
            a.kill9()                     # SIGKILL to our own child, by pid
            a.start()                     # same spool; waits until it greets
            if (i + 1) % 10 == 0:
                log("soak: %d/%d kills, %d acknowledged so far" % (i + 1, cycles, len(acked)))
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    load_s = time.monotonic() - t0
    ack = set(acked)
    deadline = time.monotonic() + drain_seconds
    drained = False
    while time.monotonic() < deadline:
        if queue_empty(a) and queue_empty(b) and ack <= set(delivered_tags(b.mail_dir)):
            drained = True
            break
        time.sleep(0.5)
    got = delivered_tags(b.mail_dir)
    counts = {}
    for t in got:
        counts[t] = counts.get(t, 0) + 1
    res = {
        "cycles": cycles,
        "acknowledged": len(ack),
        "delivered": len(counts),
        "duplicated": sum(1 for v in counts.values() if v > 1),
        "lost": len(ack - set(counts)),
        "unacknowledged_delivered": len(set(counts) - ack),
        "drained": drained,
        "seconds": round(load_s, 1),
    }
    for srv in (a, b):
        srv.stop()
    return res


def summary(r):
    return ("soak: cycles=%(cycles)d acknowledged=%(acknowledged)d delivered=%(delivered)d "
            "duplicated=%(duplicated)d lost=%(lost)d unacknowledged-delivered="
            "%(unacknowledged_delivered)d drained=%(drained)s load=%(seconds)ss" % r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--imsd", default=os.path.join(ROOT, "build", "imsd"))
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else int(time.time())
    work = tempfile.mkdtemp(prefix="imsd-soak-")
    print("soak: %d kill -9 cycles, %d clients, imsd %s, seed %d" % (a.cycles, a.clients,
                                                                    a.imsd, seed), flush=True)
    try:
        r = run(a.cycles, a.clients, os.path.abspath(a.imsd), work, seed,
                log=lambda m: print(m, flush=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(summary(r), flush=True)
    return 0 if r["lost"] == 0 and r["drained"] else 1


if __name__ == "__main__":
    sys.exit(main())
