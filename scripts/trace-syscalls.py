#!/usr/bin/env python3
"""Which system calls does the installed service make, and are they all inside the unit's
SystemCallFilter? (How dist/imsd.service's filter was found; not part of make test.)

    python3 scripts/trace-syscalls.py [build/imsd_VERSION_amd64.deb]

Boots the cached Debian 12 root of the package test (tests/integration/debroot.py) under
systemd-nspawn, installs the package and strace (downloaded with `apt-get download` from
this machine's Debian mirror), runs imsd.service and its ExecReload commands under strace
with the filter lifted (a denied call would stop the trace where the service fails), sends
mail through sendmail, mail(1), SMTP and the maildrop, reloads, flushes, stops and starts,
then prints every distinct system call made and those the unit's SystemCallFilter lines
would deny. Exit status 1 when the filter denies one.
"""

import glob
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import debroot  # noqa: E402


def expand(group, cache={}):
    """The system calls of a systemd group (@name), nested groups expanded."""
    if not group.startswith("@"):
        return {group}
    if group not in cache:
        out = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True,
                             text=True, check=True).stdout
        names = set()
        for line in out.splitlines()[1:]:
            line = line.strip()
            if line and not line.startswith("#"):
                names |= expand(line.split()[0])
        cache[group] = names
    return cache[group]


def unit_filter(unit):
    """The set SystemCallFilter= lines allow (allow-list first, then ~ removes, names add)."""
    allowed = None
    with open(unit) as f:
        for line in f:
            m = re.match(r"^SystemCallFilter=(~?)(.*)$", line.strip())
            if not m:
                continue
            names = set()
            for w in m.group(2).split():
                names |= expand(w)
            if allowed is None:
                allowed = set() if m.group(1) else names
            elif m.group(1):
                allowed -= names
            else:
                allowed |= names
    return allowed


def main():
    debs = sys.argv[1:] or sorted(glob.glob(os.path.join(ROOT, "build", "imsd_*_amd64.deb")))
    if not debs:
        sys.exit("no package: make deb")
    dl = tempfile.mkdtemp(prefix="imsd-strace-")
    subprocess.run(["apt-get", "download", "strace", "libunwind8"], cwd=dl, check=True,
                   capture_output=True)
    files = {"/root/imsd.deb": debs[-1]}
    for f in os.listdir(dl):
        files["/root/" + f] = os.path.join(dl, f)
    allowed = unit_filter(os.path.join(ROOT, "dist", "imsd.service"))
    with debroot.Container(debroot.cached_root(), files=files) as c:
        c.sh("dpkg -i /root/libunwind8_*.deb /root/strace_*.deb >/dev/null")
        c.run("useradd", "-m", "alice")
        c.run("apt-get", "install", "-y", "-q", "/root/imsd.deb")
        tr = "/usr/bin/strace -f -qq -o /var/spool/imsd/trace.%s"
        c.sh("mkdir -p /etc/systemd/system/imsd.service.d && cat > "
             "/etc/systemd/system/imsd.service.d/trace.conf <<X\n[Service]\n"
             "SystemCallFilter=\nNotifyAccess=all\nExecStart=\n"
             "ExecStart=%s /usr/sbin/imsd run -c /etc/imsd/imsd.conf\nExecReload=\n"
             "ExecReload=%s /usr/sbin/imsd check -q -c /etc/imsd/imsd.conf\n"
             "ExecReload=%s /bin/sh -c 'kill -HUP \\$MAINPID'\nX\n"
             "systemctl daemon-reload; systemctl restart imsd" % (tr % "run", tr % "check",
                                                                   tr % "kill"))
        time.sleep(2)
        c.run("sendmail", "-t", "-i", input="To: root\nSubject: 1\n\nx\n")
        c.run("mail", "-s", "2", "root", input="x\n", user="alice")
        c.run("python3", "-c", "import smtplib;s=smtplib.SMTP('127.0.0.1',25);"
              "s.sendmail('a@example.org',['alice@localhost','bob@example.net'],"
              "'Subject: 3\\r\\n\\r\\nx\\r\\n');s.quit()", net_only=True)
        c.run("systemctl", "reload", "imsd")
        c.run("mailq")
        c.run("imsd", "flush", check=False)
        c.run("systemctl", "stop", "imsd")
        c.run("sendmail", "root", input="Subject: 4\n\nx\n", user="alice")
        c.run("systemctl", "start", "imsd")
        time.sleep(12)          # the maildrop pickup
        c.run("systemctl", "reload", "imsd")
        time.sleep(1)
        c.run("systemctl", "stop", "imsd")
        t = c.sh("cat /var/spool/imsd/trace.*").stdout
    used = set(re.findall(r"(?m)^\d+\s+([a-z_0-9]+)\(", t))
    used |= set(re.findall(r"<\.\.\. ([a-z_0-9]+) resumed", t))
    denied = sorted(used - allowed)
    print("%d system calls made: %s" % (len(used), " ".join(sorted(used))))
    print("denied by the unit's SystemCallFilter: %s" % (" ".join(denied) or "none"))
    return 1 if denied else 0


if __name__ == "__main__":
    sys.exit(main())
