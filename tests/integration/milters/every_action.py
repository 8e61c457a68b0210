#!/usr/bin/python3
"""every_action — a milter written with Debian's python3-milter (pymilter) that takes every
action of the milter protocol, chosen by what the SMTP client sends, and writes what it saw
to a file, one JSON object a line, so a test can check the macros and the stages.

    /usr/bin/python3 every_action.py inet:PORT@127.0.0.1 SEEN_FILE

What it does (the test picks it by the names it uses):

  connect   from 127.0.0.66: reply 554 5.7.1 (setreply)        else continue
  HELO      reject.helo.test: 550 5.7.1; tempfail.helo.test: tempfail
  MAIL      mailreject@...: reject; mailtempfail@...: tempfail; mailaccept@...: accept
            (nothing more is asked for that message)
  RCPT      rcptreject@...: 550 5.1.1 "milter says no such user"; rcpttempfail@...:
            tempfail; rcptdiscard@...: discard (the whole message)
  end of message, by the Subject:
    "edit headers"     add X-Added, insert X-First at the top, change Subject, delete
                       X-Delete-Me, change the second X-Twice
    "replace body"     the body becomes "replaced body\r\n" in two replbody chunks
    "big body"         the body becomes 200 000 bytes of lines (several chunks)
    "add recipient"    add <added@localhost>; with params: <addedpar@localhost> NOTIFY=NEVER
    "delete recipient" delete <bob@localhost>
    "change sender"    the sender becomes <changed@example.org> (with SIZE=... kept out)
    "quarantine"       quarantine "held by the every_action milter"
    "eom reject"       550 5.7.1 "rejected at end of message" (a multi-line reply)
    "eom tempfail"     tempfail
    "eom discard"      discard
    "every action"     all the edits above at once, then accept
  anything else: accept at end of message, after a progress.

Every callback records {"stage", "macros" (the ones it asked for), ...}.
"""

import json
import sys

import Milter

SEEN = sys.argv[2]

# The macros Postfix sends at each stage, which a test expects imsd to send too.
CONNECT_MACROS = ("j", "{daemon_name}", "{client_addr}", "{client_name}", "{client_port}")
HELO_MACROS = ("{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{client_ptr}")
MAIL_MACROS = ("i", "{auth_type}", "{auth_authen}", "{mail_addr}", "{mail_host}")
RCPT_MACROS = ("i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}", "{mail_addr}")
EOM_MACROS = ("i", "{msg_id}", "j", "{daemon_addr}", "{if_addr}")


def record(obj):
    with open(SEEN, "a") as f:
        f.write(json.dumps(obj) + "\n")


def s(v):
    return v.decode(errors="replace") if isinstance(v, bytes) else v


class EveryAction(Milter.Base):

    def __init__(self):
        self.headers = []
        self.bodybuf = b""
        self.rcpts = []
        self.sender = None

    def negotiate(self, opts):
        """Milter.Base.negotiate, with the macro lists passed as str: pymilter 1.0.5's
        setsymlist hands the C module bytes under Python 3, which it refuses (TypeError),
        and the whole negotiation falls back to libmilter's defaults, with no lists."""
        self._actions, p, _, _ = opts
        for func, stage in Milter.MACRO_CALLBACKS.items():
            syms = getattr(getattr(self, func), "_symlist", None)
            if syms:
                self._ctx.setsymlist(stage, " ".join(syms))
        opts[1] = self._protocol = p & ~self.protocol_mask()
        opts[2] = opts[3] = 0
        return Milter.CONTINUE

    def macros(self, names):
        return {n: s(self.getsymval(n)) for n in names if self.getsymval(n) is not None}

    @Milter.symlist(*CONNECT_MACROS)
    def connect(self, hostname, family, hostaddr):
        record({"stage": "connect", "hostname": hostname, "hostaddr": list(hostaddr)
                if isinstance(hostaddr, tuple) else hostaddr,
                "macros": self.macros(CONNECT_MACROS)})
        if isinstance(hostaddr, tuple) and hostaddr[0] == "127.0.0.66":
            self.setreply("554", "5.7.1", "connect refused by the every_action milter")
            return Milter.REJECT
        return Milter.CONTINUE

    @Milter.symlist(*HELO_MACROS)
    def hello(self, name):
        record({"stage": "helo", "name": name, "macros": self.macros(HELO_MACROS)})
        if name == "reject.helo.test":
            self.setreply("550", "5.7.1", "HELO refused by the every_action milter")
            return Milter.REJECT
        if name == "tempfail.helo.test":
            return Milter.TEMPFAIL
        return Milter.CONTINUE

    @Milter.symlist(*MAIL_MACROS)
    def envfrom(self, f, *params):
        self.headers, self.bodybuf, self.rcpts, self.sender = [], b"", [], f
        record({"stage": "mail", "from": f, "params": list(params),
                "macros": self.macros(MAIL_MACROS)})
        if f.startswith("<mailreject@"):
            return Milter.REJECT
        if f.startswith("<mailtempfail@"):
            return Milter.TEMPFAIL
        if f.startswith("<mailaccept@"):
            return Milter.ACCEPT
        return Milter.CONTINUE

    @Milter.symlist(*RCPT_MACROS)
    def envrcpt(self, to, *params):
        record({"stage": "rcpt", "to": to, "params": list(params),
                "macros": self.macros(RCPT_MACROS)})
        if to.startswith("<rcptreject@"):
            self.setreply("550", "5.1.1", "milter says no such user")
            return Milter.REJECT
        if to.startswith("<rcpttempfail@"):
            return Milter.TEMPFAIL
        if to.startswith("<rcptdiscard@"):
            return Milter.DISCARD
        self.rcpts.append(to)
        return Milter.CONTINUE

    def data(self):
        record({"stage": "data"})
        return Milter.CONTINUE

    def header(self, name, value):
        self.headers.append([name, value])
        return Milter.CONTINUE

    def eoh(self):
        record({"stage": "eoh", "headers": self.headers})
        return Milter.CONTINUE

    def body(self, chunk):
        self.bodybuf += chunk
        return Milter.CONTINUE

    def subject(self):
        for n, v in self.headers:
            if n.lower() == "subject":
                return v
        return ""

    @Milter.symlist(*EOM_MACROS)
    def eom(self):
        subj = self.subject()
        record({"stage": "eom", "subject": subj, "body": self.bodybuf.decode(errors="replace"),
                "rcpts": self.rcpts, "macros": self.macros(EOM_MACROS)})
        self.progress()
        every = "every action" in subj
        if "edit headers" in subj or every:
            self.addheader("X-Added", "by the every_action milter")
            self.addheader("X-First", "inserted at the top", 0)
            self.chgheader("Subject", 1, subj + " (edited)")
            self.chgheader("X-Delete-Me", 1, "")
            self.chgheader("X-Twice", 2, "second, changed")
        if "replace body" in subj or every:
            self.replacebody(b"replaced ")
            self.replacebody(b"body\r\n")
        if "big body" in subj:
            line = b"0123456789" * 9 + b"\r\n"          # 92 bytes
            for _ in range(200000 // len(line) + 1):
                self.replacebody(line)
        if "add recipient" in subj or every:
            self.addrcpt("<added@localhost>")
            self.addrcpt("<addedpar@localhost>", "NOTIFY=NEVER")
        if "delete recipient" in subj or every:
            self.delrcpt("<bob@localhost>")
        if "change sender" in subj or every:
            self.chgfrom("<changed@example.org>")
        if "quarantine" in subj:
            self.quarantine("held by the every_action milter")
        if "eom reject" in subj:
            self.setreply("550", "5.7.1", "rejected at end of message", "by every_action")
            return Milter.REJECT
        if "eom tempfail" in subj:
            return Milter.TEMPFAIL
        if "eom discard" in subj:
            return Milter.DISCARD
        return Milter.ACCEPT

    def abort(self):
        record({"stage": "abort"})
        return Milter.CONTINUE

    def close(self):
        record({"stage": "close"})
        return Milter.CONTINUE


def main():
    Milter.factory = EveryAction
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY | Milter.ADDRCPT |
                     Milter.ADDRCPT_PAR | Milter.DELRCPT | Milter.CHGFROM | Milter.QUARANTINE |
                     Milter.SETSYMLIST)
    sys.stdout.write("every_action milter on %s\n" % sys.argv[1])
    sys.stdout.flush()
    Milter.runmilter("every_action", sys.argv[1], 60)


if __name__ == "__main__":
    main()
