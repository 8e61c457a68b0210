#!/usr/bin/env python3
"""authclient — one SMTP transaction from a chosen source address, for test_mailauth.py.

    authclient.py SPEC.json

SPEC: {"host", "port", "source", "helo", "mail", "rcpt": [...], "data_file"}. Runs inside the
test's network namespace (so the source address is one the test put on its loopback) and
prints one JSON object: {"connect": [code, text], "mail": [...], "rcpt": [[...], ...],
"data": [...]} — a step that was not reached is absent; "error" says why it stopped.
Standard library only."""

import json
import smtplib
import sys


def main():
    spec = json.load(open(sys.argv[1]))
    out = {}
    try:
        s = smtplib.SMTP(timeout=60, source_address=(spec["source"], 0))
        out["connect"] = list(s.connect(spec["host"], spec["port"]))
        out["connect"][1] = out["connect"][1].decode("latin-1")
        code, text = s.ehlo(spec.get("helo", "client.test"))
        code, text = s.docmd("MAIL", "FROM:<%s>" % spec["mail"])
        out["mail"] = [code, text.decode("latin-1")]
        if code != 250:
            raise StopIteration
        out["rcpt"] = []
        for r in spec["rcpt"]:
            code, text = s.docmd("RCPT", "TO:<%s>" % r)
            out["rcpt"].append([code, text.decode("latin-1")])
        if not any(c == 250 for c, _ in out["rcpt"]):
            raise StopIteration
        with open(spec["data_file"], "rb") as f:
            data = f.read()
        code, text = s.docmd("DATA")
        if code != 354:
            out["data"] = [code, text.decode("latin-1")]
            raise StopIteration
        s.send(data if data.endswith(b"\r\n") else data + b"\r\n")
        s.send(b".\r\n")
        code, text = s.getreply()
        out["data"] = [code, text.decode("latin-1")]
        s.quit()
    except StopIteration:
        pass
    except Exception as e:          # reported, not raised: the test asserts on it
        out["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
