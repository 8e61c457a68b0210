"""The Debian package, installed into a throwaway Debian 12 root: dpkg -i creates the imsd
user and the directories, the installed binary serves with the installed configuration,
the installed /usr/sbin/sendmail submits (as root and as another user), the mail is
delivered, and dpkg --purge leaves nothing but what Debian policy keeps (the mailboxes under
/var/mail/imsd and the imsd system user, plus dpkg's own records and logs).

The package is installed into a chroot, never on this machine: the package Conflicts with
mail-transport-agent, and the test machine's MTA (Postfix, a test peer) must stay. The root
is made once with mmdebstrap from Debian's mirror (about 15 s) and cached as a tarball in
build/pkgtest/ (ignored by git; delete it to refresh); each run unpacks a fresh copy. The
whole run happens in new network, mount and PID namespaces: the installed server binds
127.0.0.1:25 of its own loopback, and every process it started ends with the namespace.

The package is the one `make deb` built, when it is newer than every file it is made from;
otherwise this test runs `make deb` (about 20 s).
"""

import glob
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import imsdtest
from imsdtest import ROOT

CACHE = os.path.join(ROOT, "build", "pkgtest")
ROOT_TAR = None      # named after INCLUDE below: a new dependency makes a new root
MIRROR = ["deb http://deb.debian.org/debian bookworm main",
          "deb http://deb.debian.org/debian-security bookworm-security main"]
# what the package depends on, so that dpkg -i needs no network
INCLUDE = ("adduser,init-system-helpers,libc-ares2,libssl3,libcrypt1,libopendkim11,libspf2-2,"
           "libopendmarc2,libpsl5,publicsuffix")
ROOT_TAR = os.path.join(CACHE, "bookworm-minbase-%s.tar"
                        % __import__("hashlib").sha256(INCLUDE.encode()).hexdigest()[:12])
SOURCES = ("src", "debian", "man", "dist", "Makefile")

# What may differ between the root before installing and after purging (Debian policy:
# system users are kept, mailboxes are user data; dpkg and its tools keep records and logs).
KEPT = re.compile(r"^(var/mail/imsd(/.*)?|etc/(passwd|group|shadow|gshadow)-?|var/lib/dpkg/.*|"
                  r"var/log/.*|var/cache/debconf/.*|tmp/.*|var/lib/systemd/deb-systemd-helper-"
                  r"(enabled|masked)(/.*)?|run(/.*)?|proc(/.*)?|etc/subuid-?|etc/subgid-?)$")

SCRIPT = r"""
set -eu
R=$1
ip link set lo up
mount -t proc proc "$R/proc"
echo "== dpkg -i"
chroot "$R" dpkg -i /tmp/imsd.deb
echo "== imsd check"
chroot "$R" /usr/sbin/imsd check -c /etc/imsd/imsd.conf
chroot "$R" stat -c '%n %U %G %a' /var/spool/imsd /var/spool/imsd/maildrop /var/mail/imsd
echo "== a message while imsd is not running: the maildrop keeps it"
printf 'To: root\nSubject: before start\n\nwaited in the maildrop\n' |
    chroot "$R" setpriv --reuid=65534 --regid=65534 --clear-groups /usr/sbin/sendmail -t -i
echo "== imsd run"
chroot "$R" /usr/sbin/imsd run -c /etc/imsd/imsd.conf >"$R/tmp/imsd.log" 2>&1 &
pid=$!
i=0
while [ ! -S "$R/var/spool/imsd/submit" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
echo "== sendmail"
printf 'To: root\nSubject: from the package\n\nhello\n' | chroot "$R" /usr/sbin/sendmail -t -i
printf 'Subject: as nobody\n\nhi\n' |
    chroot "$R" setpriv --reuid=65534 --regid=65534 --clear-groups /usr/sbin/sendmail root
i=0
while [ "$(ls "$R/var/mail/imsd/localhost/root/new" 2>/dev/null | wc -l)" -lt 3 ] && [ $i -lt 150 ]; do
    sleep 0.1; i=$((i+1))
done
echo "== mailq"
chroot "$R" /usr/bin/mailq
kill -TERM $pid
wait $pid || echo "imsd exited with status $?"
umount "$R/proc"
echo "== dpkg --purge"
chroot "$R" dpkg --purge imsd
echo "== done"
"""


def newest_source():
    t = 0.0
    for name in SOURCES:
        p = os.path.join(ROOT, name)
        if os.path.isfile(p):
            t = max(t, os.path.getmtime(p))
            continue
        for d, _, files in os.walk(p):
            for f in files:
                t = max(t, os.path.getmtime(os.path.join(d, f)))
    return t


def version():
    with open(os.path.join(ROOT, "src", "util", "version.h")) as f:
        return re.search(r'IMSD_VERSION "([^"]+)"', f.read()).group(1)


def tree(root):
    """Every path under root (relative), directories included, without following links."""
    out = set()
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        for n in dirs + files:
            out.add(os.path.normpath(os.path.join(rel, n)))
    return out


class Package(unittest.TestCase):

    def setUp(self):
        imsdtest.need_root("installing into a chroot")
        for tool, package in (("dpkg-buildpackage", "dpkg-dev"), ("dh", "debhelper"),
                              ("lintian", "lintian"), ("mmdebstrap", "mmdebstrap"),
                              ("unshare", "util-linux"), ("ip", "iproute2")):
            imsdtest.need_tool(tool, package)

    def package(self):
        deb = os.path.join(ROOT, "build", "imsd_%s_amd64.deb" % version())
        if not os.path.exists(deb) or os.path.getmtime(deb) < newest_source():
            p = subprocess.run(["make", "-C", ROOT, "--no-print-directory", "deb"],
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(p.returncode, 0, "make deb:\n" + p.stdout[-3000:] + p.stderr[-3000:])
        self.assertTrue(os.path.exists(deb), deb)
        return deb

    def debian_root(self):
        if not os.path.exists(ROOT_TAR):
            os.makedirs(CACHE, exist_ok=True)
            tmp = ROOT_TAR + ".part.tar"
            p = subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase",
                                "--include=" + INCLUDE, "bookworm", tmp] + MIRROR,
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(p.returncode, 0, "mmdebstrap:\n" + p.stderr[-3000:])
            os.rename(tmp, ROOT_TAR)
        work = tempfile.mkdtemp(prefix="imsd-pkgtest-")
        self.addCleanup(shutil.rmtree, work, ignore_errors=True)
        root = os.path.join(work, "root")
        os.makedirs(root)
        subprocess.run(["tar", "-C", root, "--numeric-owner", "-xpf", ROOT_TAR], check=True,
                       timeout=300)
        return root

    def test_install_send_deliver_purge(self):
        deb = self.package()
        lint = subprocess.run(["lintian", "--fail-on", "error", deb], capture_output=True,
                              text=True, timeout=300)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
        self.assertNotRegex(lint.stdout, r"(?m)^E: ")
        root = self.debian_root()
        before = tree(root)
        shutil.copy(deb, os.path.join(root, "tmp", "imsd.deb"))
        p = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "--",
                            "sh", "-c", SCRIPT, "sh", root],
                           capture_output=True, text=True, timeout=240)
        out = p.stdout + p.stderr
        log = ""
        if os.path.exists(os.path.join(root, "tmp", "imsd.log")):
            with open(os.path.join(root, "tmp", "imsd.log")) as f:
                log = f.read()
        self.assertEqual(p.returncode, 0, out + "\n---- imsd log ----\n" + log)
        self.assertIn("== done", out)

        # installed: the user, the directories, the configuration it serves with
        self.assertRegex(out, r"/var/spool/imsd imsd imsd 711\b")
        self.assertRegex(out, r"/var/spool/imsd/maildrop imsd imsd 1733\b")
        self.assertRegex(out, r"/var/mail/imsd imsd imsd 700\b")
        self.assertIn("configuration /etc/imsd/imsd.conf is valid", out)
        self.assertRegex(log, r"event=privileges user=imsd ")
        self.assertRegex(log, r"event=listening address=127\.0\.0\.1:25 ")
        self.assertRegex(log, r"event=pickup file=\S+ uid=65534 ")
        self.assertIn("Mail queue is empty", out)

        # delivered, each with the submitter's uid
        box = os.path.join(root, "var", "mail", "imsd", "localhost", "root", "new")
        mails = {}
        for f in glob.glob(os.path.join(box, "*")):
            with open(f, "rb") as fh:
                m = fh.read()
            mails[re.search(rb"^Subject: (.*)$", m, re.M).group(1)] = m
        self.assertEqual(sorted(mails), [b"as nobody", b"before start", b"from the package"],
                         out + log)
        self.assertIn(b"(imsd, from userid 0)", mails[b"from the package"])
        self.assertIn(b"(imsd, from userid 65534)", mails[b"as nobody"])
        self.assertIn(b"(imsd, from userid 65534)", mails[b"before start"])

        # purged: nothing left but what policy keeps
        after = tree(root)
        left = sorted(p for p in after - before if not KEPT.match(p))
        self.assertEqual(left, [], "left behind by dpkg --purge")
        for p in ("usr/sbin/imsd", "usr/sbin/sendmail", "usr/bin/mailq", "etc/imsd",
                  "var/spool/imsd", "lib/systemd/system/imsd.service"):
            self.assertFalse(os.path.lexists(os.path.join(root, p)), p)
        self.assertTrue(os.path.isdir(os.path.join(root, "var", "mail", "imsd")),
                        "the mailboxes are the users' mail and stay")


if __name__ == "__main__":
    unittest.main()
