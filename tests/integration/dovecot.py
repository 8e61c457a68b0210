"""dovecot — a private Dovecot (Debian's dovecot-core, -imapd, -lmtpd, -sieve) for the tests.

    dv = dovecot.Dovecot(self.tmp, users={"alice@example.org": "secret"})
    self.addCleanup(dv.stop)
    dv.start()
    srv = self.server(auth_backend="dovecot:unix:" + dv.auth_socket, ...)
    msgs = dv.imap_fetch_all("alice@example.org", "secret")      # imaplib, byte for byte

Everything is its own: the configuration file (`dovecot -c FILE`), base_dir (so every unix
socket: auth-client, auth-userdb, the LMTP socket), the state directory, the log file, the
mail and home directories, all under the test's directory; IMAP and LMTP listen on 127.0.0.1
ports of their own. The users are a passwd-file (SHA512-CRYPT hashes made by `doveadm pw`),
the passdb and the userdb at once, each user's mail stored as a Maildir under
mail/DOMAIN/USER/ and owned by the unprivileged uid the mail processes run as (nobody).
Sieve (Pigeonhole) runs for LMTP, the quota plugin counts storage (a user's limit is given
per user), and the log has auth and mail debugging on, which the tests quote.

Dovecot is started in the foreground (`dovecot -F`) as a child of the test, is ready when its
auth-client socket and both TCP ports accept connections, and is stopped by SIGTERM to that
pid (then SIGKILL to it if it has not gone after a bounded wait). The system's own Dovecot
service is never touched; scripts/deps.sh keeps it from starting at install.
"""

import grp
import imaplib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import imsdtest
from imsdtest import wait_for

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
MAIL_UID = 65534        # nobody: Dovecot refuses to deliver as root
MAIL_GID = 65534
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def available():
    """Skip the calling test ("not root", tests/run.py) when not root; fail it when Dovecot
    or its LMTP, IMAP and Sieve parts are missing (scripts/deps.sh test installs them)."""
    imsdtest.need_root("a private Dovecot (its mail processes switch to an unprivileged uid)")
    need = [DOVECOT, DOVEADM, "/usr/lib/dovecot/lmtp", "/usr/lib/dovecot/imap",
            "/usr/lib/dovecot/modules/lib90_sieve_plugin.so"]
    missing = [p for p in need if not os.path.exists(p)]
    if missing:
        raise AssertionError("Dovecot not installed (%s): scripts/deps.sh test installs "
                             "dovecot-core dovecot-imapd dovecot-lmtpd dovecot-sieve"
                             % ", ".join(missing))


def _short_dir(testdir):
    """Dovecot's unix sockets live under base_dir, and sun_path holds 107 bytes: the test's
    directory when its path leaves room (Dovecot's longest name there is ~30 bytes), else a
    directory of its own under /tmp."""
    d = os.path.join(testdir, "dovecot")
    if len(d) <= 60:
        os.makedirs(d, exist_ok=True)
        return d, False
    return tempfile.mkdtemp(prefix="imsd-dv-", dir="/tmp"), True


def keep_log(dv, name):
    """With IMSD_DOVECOT_LOGS=DIR, keep what Dovecot logged since dv.mark_log() as
    DIR/NAME.log (what each test made Dovecot say, for the record); otherwise nothing."""
    out = os.environ.get("IMSD_DOVECOT_LOGS")
    if not out:
        return
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name + ".log"), "w") as f:
        f.write(dv.log_since())


def hash_password(password):
    out = subprocess.run([DOVEADM, "-o", "stats_writer_socket_path=", "pw", "-s",
                          "SHA512-CRYPT", "-p", password], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError("doveadm pw failed: %s" % out.stderr)
    return out.stdout.strip()


class Dovecot:
    """A private Dovecot. users: {"user@domain": password}; quota: {"user@domain": "10K"}
    (storage limits; others unlimited); sieve: {"user@domain": script text}."""

    def __init__(self, testdir, users, quota=None, sieve=None, quota_tempfail=False,
                 debug=True, socket_mode="0660"):
        available()
        self.debug = debug
        self.socket_mode = socket_mode
        self.testdir = testdir
        self.dir = os.path.join(testdir, "dovecot-data")
        self.base, self._own_base = _short_dir(testdir)
        self.users = dict(users)
        self.quota = dict(quota or {})
        self.sieve = dict(sieve or {})
        self.quota_tempfail = quota_tempfail
        self.imap_port = imsdtest.free_port()
        self.lmtp_port = imsdtest.free_port()
        self.conf_path = os.path.join(self.dir, "dovecot.conf")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.run_dir = os.path.join(self.base, "run")
        self.auth_socket = os.path.join(self.run_dir, "auth-client")
        self.lmtp_socket = os.path.join(self.run_dir, "lmtp")
        self.mail_root = os.path.join(self.dir, "mail")
        self.proc = None
        self._log_at = 0
        # The mail processes run as nobody: every directory above the mail must let it in.
        for d in (testdir, self.dir):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        os.makedirs(self.mail_root, exist_ok=True)
        os.chown(self.mail_root, MAIL_UID, MAIL_GID)
        self._write_users()
        self._write_sieve()
        self._write_conf()

    # -- configuration
    def home(self, user):
        local, domain = user.split("@", 1)
        return os.path.join(self.mail_root, domain, local)

    def _write_users(self):
        lines = []
        for user, pw in sorted(self.users.items()):
            extra = ""
            if user in self.quota:
                extra = "userdb_quota_rule=*:storage=%s" % self.quota[user]
            # user:password:uid:gid:gecos:home:shell:extra_fields
            lines.append("%s:%s:%d:%d::%s::%s" % (user, hash_password(pw), MAIL_UID, MAIL_GID,
                                                  self.home(user), extra))
        path = os.path.join(self.dir, "users")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        # readable by Dovecot's auth process (user dovecot), as /etc/dovecot/users would be
        os.chown(path, 0, grp.getgrnam("dovecot").gr_gid)
        os.chmod(path, 0o640)

    def _write_sieve(self):
        for user in self.users:
            h = self.home(user)
            os.makedirs(h, exist_ok=True)
            for d in (os.path.dirname(h), h):
                os.chown(d, MAIL_UID, MAIL_GID)
            if user in self.sieve:
                p = os.path.join(h, ".dovecot.sieve")
                with open(p, "w") as f:
                    f.write(self.sieve[user])
                os.chown(p, MAIL_UID, MAIL_GID)

    def conf_text(self):
        """The configuration Dovecot runs with (the README quotes its main lines)."""
        return """\
# A private Dovecot for imsd's tests (tests/integration/dovecot.py).
base_dir = {run}
state_dir = {dir}/state
log_path = {dir}/dovecot.log
instance_name = imsd-test-dovecot
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
# the tests log in over loopback, which Dovecot counts as secured anyway
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_verbose = yes
auth_debug = {debug}
mail_debug = {debug}
log_timestamp = "%Y-%m-%d %H:%M:%S "
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = {uid}
last_valid_uid = {uid}
mail_location = maildir:~/Maildir
mail_plugins = quota
lmtp_save_to_detail_mailbox = no
recipient_delimiter = +
lda_mailbox_autocreate = yes
postmaster_address = postmaster@example.org
stats_writer_socket_path =

passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT username_format=%u {dir}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {dir}/users
}}

service auth {{
  # the socket imsd's auth_backend = dovecot:unix:PATH names (Postfix: private/auth)
  unix_listener auth-client {{
    mode = 0660
    user = root
  }}
  unix_listener auth-userdb {{
    mode = 0660
    user = root
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = {lmtp_mode}
    user = root
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}

protocol lmtp {{
  mail_plugins = $mail_plugins sieve
}}
plugin {{
  sieve = file:~/sieve;active=~/.dovecot.sieve
  quota = maildir:User quota
  quota_full_tempfail = {tempfail}
}}
""".format(run=self.run_dir, dir=self.dir, uid=MAIL_UID, lmtp=self.lmtp_port,
           imap=self.imap_port, tempfail="yes" if self.quota_tempfail else "no",
           debug="yes" if self.debug else "no", lmtp_mode=self.socket_mode)

    def _write_conf(self):
        os.makedirs(os.path.join(self.dir, "state"), exist_ok=True)
        with open(self.conf_path, "w") as f:
            f.write(self.conf_text())

    # -- the process
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def ready(self):
        if not self.running():
            return False
        if not os.path.exists(self.auth_socket):
            return False
        for port in (self.imap_port, self.lmtp_port):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                return False
        return True

    def start(self):
        assert not self.running()
        os.makedirs(self.run_dir, exist_ok=True)
        log = open(os.path.join(self.dir, "dovecot.stderr"), "ab")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf_path],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        if not wait_for(self.ready, timeout=START_TIMEOUT, interval=0.1):
            err = self.stderr_text()
            self.stop()
            raise AssertionError("Dovecot did not become ready within %.0fs:\n%s\n%s"
                                 % (START_TIMEOUT, err, self.log_tail()))
        return self

    def children(self):
        """PIDs of the master's child processes (auth, lmtp, imap, ...), from /proc."""
        if self.proc is None:
            return []
        kids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
            fields = st[st.rindex(")") + 2:].split()
            if int(fields[1]) == self.proc.pid:
                kids.append(int(d))
        return kids

    def stop(self):
        """Stop the master and every process it started, as `systemctl stop` would: SIGTERM
        to the master, and to any child still alive once it is gone (an auth process keeps
        serving the connections it has, otherwise), then SIGKILL to whatever lingers. Only
        the pids of this Dovecot are signalled."""
        if self.proc is None:
            return
        kids = self.children()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
        self.proc = None

        def alive(pid):
            try:
                with open("/proc/%d/stat" % pid) as f:
                    return f.read().split(") ")[-1][:1] not in ("Z", "X")
            except OSError:
                return False

        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = [p for p in kids if alive(p)]
            for p in left:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            if not wait_for(lambda: not any(alive(p) for p in left), timeout=5):
                continue
            break
        wait_for(lambda: not os.path.exists(self.auth_socket), timeout=5)

    def close(self):
        self.stop()
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    # -- what it logged
    def stderr_text(self):
        try:
            with open(os.path.join(self.dir, "dovecot.stderr"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "---- dovecot.log (last %d) ----\n" % n + "\n".join(
            self.log_text().splitlines()[-n:])

    def mark_log(self):
        """Remember where the log ends now; log_since() returns what came after."""
        self._log_at = len(self.log_text())

    def log_since(self):
        return self.log_text()[self._log_at:]

    def log_lines(self, *words, since_mark=True):
        """The log lines that contain every one of words (debug noise filtered out)."""
        text = self.log_since() if since_mark else self.log_text()
        return [ln for ln in text.splitlines() if all(w in ln for w in words)]

    # -- reading the mail back
    def imap(self, user, password):
        m = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        m.login(user, password)
        return m

    def imap_fetch_all(self, user, password, mailbox="INBOX"):
        """Every message in mailbox, as the exact bytes IMAP returns (RFC822), in UID order."""
        m = self.imap(user, password)
        try:
            typ, _ = m.select('"%s"' % mailbox, readonly=True)
            if typ != "OK":
                return []
            typ, data = m.uid("SEARCH", None, "ALL")
            uids = data[0].split()
            out = []
            for uid in uids:
                typ, d = m.uid("FETCH", uid, "(RFC822)")
                out.append(d[0][1])
            return out
        finally:
            try:
                m.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def imap_mailboxes(self, user, password):
        m = self.imap(user, password)
        try:
            typ, data = m.list()
            return [ln.decode().rsplit(" ", 1)[-1].strip('"') for ln in data]
        finally:
            m.logout()

    def wait_messages(self, user, password, count, mailbox="INBOX",
                      timeout=imsdtest.DELIVERY_TIMEOUT):
        """Poll over IMAP until mailbox holds count messages; return them."""
        got = []

        def enough():
            got[:] = self.imap_fetch_all(user, password, mailbox)
            return len(got) >= count

        wait_for(enough, timeout=timeout, interval=0.2)
        return got
