"""debroot — a throwaway Debian 12 system booted under real systemd, for the package tests.

    root = debroot.cached_root()                 # bootstrapped once, shared, read-only
    with debroot.Container(root, files={"/root/imsd.deb": deb}) as c:
        c.run("apt-get", "install", "-y", "/root/imsd.deb")
        c.run("systemctl", "is-active", "imsd")  # inside the container, through nsenter

The root is made once with mmdebstrap from the Debian mirror this machine's apt uses
(deb.debian.org when none is found) and cached under /var/tmp/imsd-debroot-HASH/, HASH
naming the package list: a new package makes a new root. Two engineers may run the suite at
once: the root is built under a temporary name while holding a lock file and renamed into
place, and nobody ever writes into it afterwards.

Each Container mounts an overlay (the cached root below, an empty directory of its own
above) inside a mount namespace of its own, and boots it with `systemd-nspawn -b
--private-network --register=no --keep-unit`: the container has only its own loopback,
and its mounts vanish with the namespace when nspawn exits, however the test ends. Commands
run inside through `nsenter -t PID1 -a` (no system bus needed on the host; systemctl speaks
to the container's PID 1 over /run/systemd/private). nspawn gets SIGTERM when the test
process dies (PR_SET_PDEATHSIG), which shuts the container down; close() does the same and
waits, then removes the overlay's directories.
"""

import ctypes
import fcntl
import glob
import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import imsdtest

SUITE = "bookworm"
CACHE_DIR = "/var/tmp"
# systemd as PID 1 (and dbus, as on every Debian installation with systemd); the libraries
# the package depends on, so that `apt install ./imsd.deb` needs no network; bsd-mailx, the
# mail reader a user runs (it pulls exim4, Debian's default MTA, which the package replaces,
# as it would on a real machine)
PACKAGES = ("systemd,systemd-sysv,dbus,adduser,init-system-helpers,debconf,libc-ares2,libssl3,"
            "libcrypt1,libopendkim11,libspf2-2,libopendmarc2,libpsl5,publicsuffix,libidn2-0,"
            "libunistring2,libsystemd0,bsd-mailx,liblockfile-bin")
BOOT_TIMEOUT = 60
CMD_TIMEOUT = 120
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def skip_unless_possible():
    """Skip when not root (the one legitimate reason); fail naming the package when a tool
    is missing or the kernel cannot do it."""
    imsdtest.need_root("booting a Debian root under systemd-nspawn")
    for tool, package in (("systemd-nspawn", "systemd-container"), ("mmdebstrap", "mmdebstrap"),
                          ("nsenter", "util-linux"), ("unshare", "util-linux"),
                          ("dpkg-buildpackage", "dpkg-dev"), ("lintian", "lintian")):
        imsdtest.need_tool(tool, package)
    with open("/proc/filesystems") as f:
        if "overlay" not in f.read():
            raise AssertionError("the kernel has no overlay file system: the package test "
                                 "boots an overlay of the cached Debian root")


def host_mirrors():
    """The Debian and Debian security URIs this machine's apt is configured with."""
    main = sec = None
    texts = []
    for p in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*")):
        try:
            with open(p) as f:
                texts.append(f.read())
        except OSError:
            pass
    uris = []
    for t in texts:
        uris += re.findall(r"(?m)^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)", t)
        for line in re.findall(r"(?m)^URIs:\s*(.+)$", t):
            uris += line.split()
    for u in uris:
        u = u.rstrip("/")
        if sec is None and u.endswith("/debian-security"):
            sec = u
        elif main is None and u.endswith("/debian"):
            main = u
    main = main or "http://deb.debian.org/debian"
    sec = sec or "http://deb.debian.org/debian-security"
    return ["deb %s %s main" % (main, SUITE),
            "deb %s %s-updates main" % (main, SUITE),
            "deb %s %s-security main" % (sec, SUITE)]


def cached_root(packages=PACKAGES):
    """The path of the bootstrapped root, made now if this machine has none yet."""
    key = hashlib.sha256((SUITE + " " + packages).encode()).hexdigest()[:12]
    final = os.path.join(CACHE_DIR, "imsd-debroot-%s-%s" % (SUITE, key))
    if os.path.isfile(os.path.join(final, "etc", "debian_version")):
        return final
    with open(final + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)      # another engineer may be making it right now
        if os.path.isfile(os.path.join(final, "etc", "debian_version")):
            return final
        tmp = tempfile.mkdtemp(prefix=os.path.basename(final) + ".tmp-", dir=CACHE_DIR)
        try:
            p = subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase",
                                "--include=" + packages, SUITE, tmp] + host_mirrors(),
                               capture_output=True, text=True, timeout=900)
            if p.returncode != 0:
                raise AssertionError("mmdebstrap failed:\n" + p.stderr[-3000:])
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _pdeathsig():
    # nspawn shuts its container down on SIGTERM: sent when the test process dies
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG


class Container:
    def __init__(self, lower, files=None, name=None):
        self.lower = lower
        self.name = name or "imsdt-%s" % secrets.token_hex(4)
        self.work = tempfile.mkdtemp(prefix="imsd-nspawn-")
        self.upper = os.path.join(self.work, "upper")
        self.merged = os.path.join(self.work, "root")
        for d in (self.upper, os.path.join(self.work, "ovl"), self.merged):
            os.makedirs(d)
        # files placed above the root before it boots: {path inside: path here}
        for inside, here in (files or {}).items():
            rel = inside.strip("/")
            parts = rel.split("/")[:-1]
            for i in range(1, len(parts) + 1):     # parents as they are below (/root: 0700)
                d = "/".join(parts[:i])
                if not os.path.isdir(os.path.join(self.upper, d)):
                    os.mkdir(os.path.join(self.upper, d))
                    shutil.copystat(os.path.join(lower, d), os.path.join(self.upper, d))
            shutil.copy(here, os.path.join(self.upper, rel))
        self.console = os.path.join(self.work, "console.log")
        self.proc = None
        self.leader = None

    def __enter__(self):
        try:
            self.boot()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def boot(self):
        script = ('set -e; mount --make-rprivate /; '
                  'mount -t overlay overlay -o lowerdir="$1",upperdir="$2",workdir="$3" "$4"; '
                  'exec systemd-nspawn --quiet -D "$4" -M "$5" -b --private-network '
                  '--register=no --keep-unit')
        log = open(self.console, "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--", "sh", "-c", script, "sh", self.lower, self.upper,
             os.path.join(self.work, "ovl"), self.merged, self.name],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_pdeathsig)
        log.close()
        deadline = time.monotonic() + BOOT_TIMEOUT
        while self.leader is None:
            if self.proc.poll() is not None:
                raise AssertionError("systemd-nspawn exited with status %s:\n%s"
                                     % (self.proc.returncode, self.console_text()[-3000:]))
            if time.monotonic() > deadline:
                raise AssertionError("no systemd in the container after %d s:\n%s"
                                     % (BOOT_TIMEOUT, self.console_text()[-3000:]))
            self.leader = self._find_init()
            time.sleep(0.05)
        # PID 1 runs; wait for the boot to finish (running, or degraded with the reason)
        # (until systemd listens on /run/systemd/private, systemctl prints nothing)
        self.boot_state = ""
        while self.boot_state in ("", "offline", "initializing", "starting"):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            p = self.run("systemctl", "is-system-running", "--wait", check=False,
                         timeout=left)
            self.boot_state = p.stdout.strip()
            if self.boot_state in ("", "offline"):
                time.sleep(0.1)
        if self.boot_state not in ("running", "degraded"):
            raise AssertionError("the container did not boot (%s):\n%s" % (
                self.boot_state, self.console_text()[-3000:]))

    def _find_init(self):
        """PID (on the host) of the container's systemd: nspawn's child named systemd."""
        pids = [self.proc.pid]
        for _ in range(4):      # unshare execs sh, sh execs nspawn: the same pid; its child
            nxt = []
            for pid in pids:
                for f in glob.glob("/proc/%d/task/*/children" % pid):
                    try:
                        with open(f) as fh:
                            nxt += [int(x) for x in fh.read().split()]
                    except OSError:
                        pass
            for pid in nxt:
                try:
                    with open("/proc/%d/comm" % pid) as fh:
                        if fh.read().strip() == "systemd":
                            return pid
                except OSError:
                    pass
            pids = nxt
        return None

    def console_text(self):
        try:
            with open(self.console, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def run(self, *argv, check=True, input=None, timeout=CMD_TIMEOUT, user=None, text=True,
            net_only=False):
        """Run argv inside the container (every namespace of its PID 1, its root and its
        environment's PATH). user: run as that user (setpriv, with the user's groups)."""
        if self.leader is None:
            raise AssertionError("the container is not running")
        cmd = ["nsenter", "-t", str(self.leader)] + (["-n"] if net_only else ["-a", "--root", "--wd"])
        if not net_only:
            cmd += ["env", "-i", "PATH=" + PATH, "LANG=C.UTF-8", "TERM=dumb"]
            if user is not None:
                ids = subprocess.run(cmd + ["id", "-u", user], capture_output=True, text=True,
                                     timeout=timeout).stdout.strip()
                gid = subprocess.run(cmd + ["id", "-g", user], capture_output=True, text=True,
                                     timeout=timeout).stdout.strip()
                cmd += ["setpriv", "--reuid=" + ids, "--regid=" + gid, "--init-groups",
                        "--reset-env"]
                cmd += ["env", "PATH=" + PATH, "LANG=C.UTF-8"]
        cmd += list(argv)
        p = subprocess.run(cmd, input=input, capture_output=True, text=text, timeout=timeout,
                           errors="replace" if text else None)
        if check and p.returncode != 0:
            raise AssertionError("in the container, %s exited %d:\n%s%s" % (
                " ".join(argv), p.returncode, p.stdout if text else "",
                p.stderr if text else p.stderr.decode("utf-8", "replace")))
        return p

    def sh(self, script, **kw):
        return self.run("sh", "-c", script, **kw)

    def read(self, path):
        """A file of the container, as bytes (through /proc/PID1/root, without following a
        link out of it)."""
        return self.run("cat", "--", path, text=False).stdout

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)     # nspawn: power the container off
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                if self.leader is not None:     # the container's PID 1: its whole PID
                    try:                        # namespace ends with it
                        os.kill(self.leader, signal.SIGKILL)
                    except OSError:
                        pass
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.leader = None
        # the overlay was mounted in nspawn's own mount namespace: gone with it
        shutil.rmtree(self.work, ignore_errors=True)
