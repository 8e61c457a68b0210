#!/usr/bin/python3
"""broken — a milter that fails the way real ones do, for the tests of the default action:
it speaks the protocol correctly (standard library only, raw sockets) until the point its
mode names, and there it hangs, crashes or speaks garbage.

    python3 broken.py inet:PORT@127.0.0.1 SEEN_FILE MODE

MODE:
  hang-optneg      never answers the option negotiation
  garbage-optneg   answers it with bytes that are no milter packet
  hang-rcpt        negotiates, then never answers RCPT
  crash-rcpt       negotiates, then closes the connection at RCPT
  hang-eom         never answers the end of the message
  crash-eom        exits (the whole process) at the end of the message
  garbage-eom      answers the end of the message with an oversized packet length
  badreply-eom     answers it with a REPLYCODE that is no SMTP refusal ("250 fine")
  inject-eom       answers it with a header edit whose value starts a second field
  undeclared-eom   adds a header although it negotiated no actions

Every connection is handled in a thread of its own; each event is appended to SEEN_FILE
as a JSON line ({"conn": N, "cmd": "R"}, {"conn": N, "mode": "...", "did": "hang"}).
"""

import json
import os
import socket
import struct
import sys
import threading
import time

SPEC, SEEN, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
LOCK = threading.Lock()
# it answers nothing but OPTNEG, RCPT and BODYEOB: the other steps are "no reply" (NR_*)
NR_ALL_BUT_RCPT = 0x00001000 | 0x00002000 | 0x00004000 | 0x00010000 | 0x00020000 | \
    0x00040000 | 0x00080000 | 0x00000080


def record(obj):
    with LOCK, open(SEEN, "a") as f:
        f.write(json.dumps(obj) + "\n")


def pkt(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def read_packet(s):
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            return None, None
        head += chunk
    n = struct.unpack(">I", head)[0]
    data = b""
    while len(data) < n:
        chunk = s.recv(min(65536, n - len(data)))
        if not chunk:
            return None, None
        data += chunk
    return data[:1], data[1:]


def hang(conn, s):
    record({"conn": conn, "mode": MODE, "did": "hang"})
    # keep the connection open and read nothing more for far longer than any test timeout;
    # the MTA must give up and close it
    s.settimeout(600)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass


def serve(s, conn):
    with s:
        while True:
            cmd, data = read_packet(s)
            if cmd is None:
                record({"conn": conn, "eof": True})
                return
            record({"conn": conn, "cmd": cmd.decode(errors="replace")})
            if cmd == b"O":
                if MODE == "hang-optneg":
                    return hang(conn, s)
                if MODE == "garbage-optneg":
                    record({"conn": conn, "mode": MODE, "did": "garbage"})
                    s.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
                    continue
                actions = 0 if MODE == "undeclared-eom" else 0x1FF
                s.sendall(pkt(b"O", struct.pack(">III", 6, actions, NR_ALL_BUT_RCPT)))
            elif cmd == b"R":
                if MODE == "hang-rcpt":
                    return hang(conn, s)
                if MODE == "crash-rcpt":
                    record({"conn": conn, "mode": MODE, "did": "close"})
                    return
                s.sendall(pkt(b"c"))
            elif cmd == b"E":
                if MODE == "hang-eom":
                    return hang(conn, s)
                if MODE == "crash-eom":
                    record({"conn": conn, "mode": MODE, "did": "exit"})
                    os._exit(3)
                if MODE == "garbage-eom":
                    record({"conn": conn, "mode": MODE, "did": "garbage"})
                    s.sendall(struct.pack(">I", 0x7FFFFFF0) + b"h" + b"x" * 100)
                    continue
                if MODE == "badreply-eom":
                    s.sendall(pkt(b"y", b"250 fine\0"))
                    continue
                if MODE == "inject-eom":
                    s.sendall(pkt(b"h", b"X-Evil\0a\nBcc: victim@localhost\0") + pkt(b"a"))
                    continue
                if MODE == "undeclared-eom":
                    s.sendall(pkt(b"h", b"X-Undeclared\0yes\0") + pkt(b"a"))
                    continue
                s.sendall(pkt(b"a"))
            elif cmd in (b"Q",):
                return
            elif cmd == b"A":
                continue
            # every other command gets no reply (NR_* negotiated)


def main():
    port = int(SPEC.split(":")[1].split("@")[0])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    sys.stdout.write("broken milter (%s) on %s\n" % (MODE, SPEC))
    sys.stdout.flush()
    n = 0
    while True:
        s, _ = ls.accept()
        n += 1
        threading.Thread(target=serve, args=(s, n), daemon=True).start()


if __name__ == "__main__":
    main()
