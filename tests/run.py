#!/usr/bin/env python3
"""The one test runner: unit tests, integration tests and short fuzz runs.

    python3 tests/run.py --build build/asan --fuzz-build build/fuzz --fuzz-seconds 10
    python3 tests/run.py --only integration smuggl      # only tests whose name contains "smuggl"

(a) every executable in BUILD/tests/ is a unit-test program printing "ok FILE NAME",
    "FAIL FILE NAME [— why]" or "skip FILE NAME — why" per test; a crash, a timeout or a
    non-zero exit without a FAIL line counts as one failure (of the program);
(b) tests/integration/test_*.py run through unittest with IMSD=<abs BUILD/imsd>, one module
    per worker process, INTEGRATION_JOBS at a time;
(c) each FUZZ_BUILD/bin/fuzz_* runs for --fuzz-seconds with a fresh temporary corpus
    directory first (so nothing is written into the repository) and the seeds in
    tests/fuzz/corpus/<name>/ second; a crash is a failure. With --keep-corpus (make fuzz)
    what a run found that reaches new coverage is merged into tests/fuzz/corpus/<name>/.

The conventions every test lives by (README, "Tests"):

* Skips. A test may skip only for a reason this runner names as legitimate (LEGITIMATE_SKIPS
  below), and the runner checks that the reason holds: today the one reason is "not root"
  (the run is not as root, so namespaces, mounts and throwaway users are out of reach). A
  test says so with imsdtest.need_root(what) (a unit test prints "skip FILE NAME — not root:
  what"). Every other skip — a tool that is missing, an environment that refuses (`ip netns
  add`, a tmpfs mount), a peer that cannot start (Postfix) — is counted as a failure with
  its reason (imsdtest.need_tool fails a test whose tool is missing): `scripts/deps.sh
  test` installs every tool a test needs, so a missing one means a broken machine, not a
  test to leave out. Which reasons are legitimate is stated once at
  the top of the run; the skipped tests are listed with their reasons at the end.
* Counting. Every collected test gets exactly one outcome. A skip or an error in
  setUpClass (or setUpModule) counts once per test of the class (module); an error in
  tearDownClass (tearDownModule) fails every test of the class (module), since they shared
  what failed; a test with failing subtests is one failure. The run prints the number of
  tests collected, and passed + failed + skipped add up to it (a unit program that crashes
  counts as one more test; each fuzz target is one).
* Time. Each integration test, and each setUpClass/tearDownClass, runs under a watchdog of
  INTEGRATION_TEST_TIMEOUT seconds (--watchdog); a worker that prints nothing for that long
  plus WORKER_SILENCE_MARGIN seconds (--worker-silence) is stopped, and every test of its
  module that had no outcome yet fails: a hang fails the run instead of stalling it.

The last line printed is "N passed, N failed, N skipped" (CI parses it); the exit status is
1 when anything failed. Standard library only (Python 3.11).
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import unittest
import unittest.suite

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

UNIT_TIMEOUT = 60
INTEGRATION_TEST_TIMEOUT = 180   # a watchdog per integration test, far above any test's own bounds
WORKER_SILENCE_MARGIN = 120      # a worker silent for watchdog + this is hung: stop it
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}

# The reasons a test may skip for: a prefix of the skip reason, and the check that it holds
# in this run (a "not root" skip in a run as root is a failure). Nothing else is legitimate.
LEGITIMATE_SKIPS = {
    "not root": (lambda: os.geteuid() != 0,
                 "tests that need root (network namespaces, tmpfs mounts, throwaway users, "
                 "installing into a chroot) skip"),
}


def judge_skip(reason):
    """None when a skip with this reason is legitimate in this run, else why it is not."""
    reason = (reason or "").strip()
    for prefix, (holds, _) in LEGITIMATE_SKIPS.items():
        if reason == prefix or reason.startswith(prefix + ":"):
            if holds():
                return None
            return "skipped as %r, which does not hold in this run (euid %d)" % (
                prefix, os.geteuid())
    return "a skip whose reason is not legitimate under this runner (only %s)" % ", ".join(
        repr(p) for p in LEGITIMATE_SKIPS)


def skip_policy_line():
    held = [(p, what) for p, (holds, what) in LEGITIMATE_SKIPS.items() if holds()]
    if not held:
        return ("== skips: none is legitimate in this run (euid %d): every skip counts as a "
                "failure" % os.geteuid())
    return "== skips: legitimate in this run (euid %d): %s; any other skip counts as a failure" % (
        os.geteuid(), "; ".join("%r (%s)" % (p, what) for p, what in held))


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []          # (name, reason), for the recap
        self.skips = []             # (name, reason)

    @property
    def total(self):
        return self.passed + self.failed + self.skipped

    def count(self, status, name, reason=""):
        """Count an outcome already printed (by an integration worker)."""
        if status == "ok":
            self.passed += 1
        elif status == "skip":
            self.skipped += 1
            self.skips.append((name, reason))
        else:
            self.failed += 1
            self.failures.append((name, reason))

    def ok(self, name, detail=""):
        self.count("ok", name)
        print("ok %s%s" % (name, (" — " + detail) if detail else ""), flush=True)

    def fail(self, name, reason="", output=""):
        self.count("fail", name, reason)
        print("FAIL %s%s" % (name, (" — " + reason) if reason else ""), flush=True)
        if output:
            out = output.rstrip("\n")
            print("    " + out.replace("\n", "\n    "), flush=True)

    def skip(self, name, reason=""):
        """A skip, judged: an illegitimate one is counted and printed as a failure."""
        bad = judge_skip(reason)
        if bad:
            self.fail(name, "%s: %s" % (bad, reason))
            return
        self.count("skip", name, reason)
        print("skip %s — %s" % (name, reason), flush=True)


def matches(name, filters):
    return not filters or any(f in name for f in filters)


def tail(text, n):
    lines = text.splitlines()
    return "\n".join(lines[-n:])


# ---------------------------------------------------------------- unit tests

def is_executable_file(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def run_unit(build, filters, tally):
    tdir = os.path.join(build, "tests")
    print("== unit tests (%s)" % tdir, flush=True)
    if not os.path.isdir(tdir):
        tally.fail("unit", "no unit-test directory %s (build it with `make asan`)" % tdir)
        return
    progs = sorted(p for p in os.listdir(tdir) if is_executable_file(os.path.join(tdir, p)))
    if not progs:
        tally.fail("unit", "no unit-test programs in %s" % tdir)
        return
    line_re = re.compile(r"^(ok|FAIL|skip) (\S+) (\S+)(?:\s+— (.*))?\s*$")
    for prog in progs:
        path = os.path.join(tdir, prog)
        whole = matches(prog, filters)
        # stderr merged into stdout: t.h writes a test's failed CHECKs to stderr (unbuffered)
        # before its "FAIL" line (flushed), so the lines before a result line belong to it.
        try:
            p = subprocess.run([path], cwd=ROOT, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=UNIT_TIMEOUT)
            out = p.stdout.decode("utf-8", "replace")
            rc = p.returncode
            timed_out = False
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode("utf-8", "replace")
            rc = None
            timed_out = True
        saw_fail = False
        counted = 0
        pending = []            # output lines since the last result line
        for line in out.splitlines():
            m = line_re.match(line)
            if not m:
                pending.append(line)
                continue
            status, file, name, why = m.groups()
            full = "%s %s" % (os.path.basename(file), name)
            detail, pending = pending, []
            if not whole and not matches(full, filters):
                continue
            counted += 1
            if status == "ok":
                tally.ok("unit " + full)
            elif status == "skip":
                tally.skip("unit " + full, why or "")
            else:
                saw_fail = True
                tally.fail("unit " + full, why or "", "\n".join(detail[-60:]))
        if not whole and counted == 0:
            continue
        rest = "\n".join(pending[-80:])
        if timed_out:
            tally.fail("unit " + prog, "timed out after %d s" % UNIT_TIMEOUT, rest)
        elif rc < 0:
            tally.fail("unit " + prog, "killed by signal %d (crash)" % -rc, rest)
        elif rc != 0 and not saw_fail:
            tally.fail("unit " + prog, "exit status %d without a FAIL line (crash?)" % rc, rest)
        elif rc != 0 and pending and any(l.strip() for l in pending):
            # failed tests reported, but something (a leak report?) came after the last one
            tally.fail("unit " + prog, "exit status %d; output after the last test" % rc, rest)
        elif counted == 0 and rc == 0:
            tally.fail("unit " + prog, "printed no test results", rest)


# ---------------------------------------------------------------- integration tests

class WatchdogTimeout(Exception):
    pass


def arm_watchdog(seconds, what):
    def on_alarm(signum, frame):
        raise WatchdogTimeout("%s exceeded the runner's %d s watchdog" % (what, seconds))
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)


def disarm_watchdog():
    signal.alarm(0)


# The class and module fixtures run inside TestSuite's own methods; a suite that arms the
# watchdog around them. These are private methods of unittest.suite: check they are there,
# so that a Python without them fails loudly instead of running fixtures unguarded.
_FIXTURE_HOOKS = ("_handleClassSetUp", "_tearDownPreviousClass", "_handleModuleFixture",
                  "_handleModuleTearDown")
assert all(hasattr(unittest.TestSuite, h) for h in _FIXTURE_HOOKS), \
    "unittest.TestSuite lacks %s: the fixture watchdog needs them" % (_FIXTURE_HOOKS,)


class WatchdogSuite(unittest.TestSuite):
    """A flat suite whose setUpClass/tearDownClass/setUpModule/tearDownModule run under the
    watchdog (a WatchdogTimeout there is reported by unittest as the fixture's error)."""

    watchdog = INTEGRATION_TEST_TIMEOUT

    def _guard(self, hook, what, *args):
        arm_watchdog(self.watchdog, what)
        try:
            return getattr(super(), hook)(*args)
        finally:
            disarm_watchdog()

    def _handleClassSetUp(self, test, result):
        return self._guard("_handleClassSetUp", "setUpClass of %s" % type(test).__name__,
                           test, result)

    def _tearDownPreviousClass(self, test, result):
        return self._guard("_tearDownPreviousClass", "tearDownClass", test, result)

    def _handleModuleFixture(self, test, result):
        return self._guard("_handleModuleFixture", "setUpModule", test, result)

    def _handleModuleTearDown(self, result):
        return self._guard("_handleModuleTearDown", "tearDownModule", result)


def one_line(text):
    return " ".join((text or "").split())


class TallyResult(unittest.TestResult):
    """Gives each collected test exactly one outcome and prints it when it is known: one
    human line ("ok NAME — 1.2s", "FAIL NAME — reason" and the traceback, "skip NAME —
    reason") and one machine line for the parent ("@@RESULT status<TAB>id<TAB>reason").
    Class- and module-level skips and errors (unittest reports them once, on a placeholder)
    are given to every test of the class or module."""

    stopped = None                   # why the worker was stopped, once it is

    def __init__(self, tests, watchdog):
        super().__init__()
        self.collected = [t.id() for t in tests]
        self.outcome = {}            # id -> status
        self.watchdog = watchdog
        self._start = {}
        self._events = {}            # id -> [(status, reason, output)] while the test runs

    @staticmethod
    def key(test):
        if isinstance(test, unittest.case._SubTest):
            return test.test_case.id()
        return test.id()

    def emit(self, status, tid, reason="", output="", secs="", where=""):
        if status == "skip":
            bad = judge_skip(reason)
            if bad:
                status, reason = "fail", "%s: %s" % (bad, reason)
        if where:
            reason = "%s: %s" % (where, reason)
        self.outcome[tid] = status
        reason = one_line(reason)
        if status == "ok":
            print("ok %s%s" % (tid, (" — " + secs) if secs else ""), flush=True)
        elif status == "skip":
            print("skip %s — %s" % (tid, reason), flush=True)
        else:
            print("FAIL %s%s" % (tid, (" — " + reason) if reason else ""), flush=True)
            if output:
                print("    " + output.rstrip("\n").replace("\n", "\n    "), flush=True)
        print("@@RESULT %s\t%s\t%s" % (status, tid, reason), flush=True)

    # -- one test
    def startTest(self, test):
        super().startTest(test)
        self._start[test.id()] = time.monotonic()
        self._events[test.id()] = []
        arm_watchdog(self.watchdog, "the test")

    def stopTest(self, test):
        disarm_watchdog()
        super().stopTest(test)
        tid = test.id()
        events = self._events.pop(tid, [])
        t0 = self._start.get(tid)
        secs = "" if t0 is None else "%.1fs" % (time.monotonic() - t0)
        fails = [e for e in events if e[0] == "fail"]
        skips = [e for e in events if e[0] == "skip"]
        if fails:
            reason = fails[0][1] + ("" if len(fails) == 1 else " (and %d more)" % (len(fails) - 1))
            self.emit("fail", tid, reason, "\n".join(e[2] for e in fails if e[2]))
        elif skips:
            self.emit("skip", tid, skips[0][1])
        elif events and not self.stopped:
            self.emit("ok", tid, secs=secs)
        else:
            self.emit("fail", tid, self.stopped or "the test ended without an outcome")

    def _reason(self, err):
        exc = err[1]
        first = str(exc).strip().splitlines()
        return "%s: %s" % (type(exc).__name__, first[0] if first else "")

    def _event(self, test, status, reason="", output=""):
        if isinstance(test, unittest.suite._ErrorHolder):
            self._fixture(test.description, status, reason, output)
            return
        tid = self.key(test)
        if tid in self._events:
            self._events[tid].append((status, reason, output))
        else:                        # not between startTest and stopTest: give it at once
            self.emit(status, tid, reason, output)

    def _fixture(self, description, status, reason, output):
        m = re.match(r"^(\w+) \((.*)\)$", description)
        method, parent = (m.group(1), m.group(2)) if m else (description, description)
        targets = [t for t in self.collected if t.startswith(parent + ".")]
        if method.startswith("setUp"):
            targets = [t for t in targets if t not in self.outcome]
            where = method
        else:
            # a failed tearDownClass/tearDownModule: what the tests shared failed, so none
            # of them counts as passed
            where = "%s of %s failed" % (method, parent)
        if not targets:              # nothing to give it to: it is an outcome of its own
            self.collected.append(description)
            targets = [description]
        for i, t in enumerate(targets):
            self.emit(status, t, reason, output if i == 0 else "", where=where)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._event(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._event(test, "fail", self._reason(err), self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._event(test, "fail", self._reason(err), self._exc_info_to_string(err, test))

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._event(test, "fail", "%s %s" % (subtest._subDescription(), self._reason(err)),
                        self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._event(test, "skip", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._event(test, "ok")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._event(test, "fail", "unexpected success")


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


INTEGRATION_JOBS = 3    # test modules run side by side: they mostly wait on servers

# Modules that take longest start first so the parallel run ends together.
SLOW_FIRST = ["test_relay", "test_durability", "test_bounce", "test_tls", "test_auth",
              "test_queue_cmds", "test_smuggling", "test_data"]


def load_integration(idir, filters, module=None):
    loader = unittest.TestLoader()
    suite = loader.discover(idir, pattern=(module + ".py") if module else "test_*.py",
                            top_level_dir=idir)
    selected = []
    for t in iter_tests(suite):
        # a module that fails to import shows up as unittest.loader._FailedTest
        if matches(t.id(), filters) or type(t).__name__ == "_FailedTest":
            selected.append(t)
    return selected


def run_integration_worker(build, module, filters, idir, watchdog):
    """One module in this process; the parent reads the result lines."""
    os.environ["IMSD"] = os.path.abspath(os.path.join(build, "imsd"))
    # the optimised build, for the memory figures (test_limits); `make test` builds it
    os.environ.setdefault("IMSD_RELEASE", os.path.join(ROOT, "build", "imsd"))
    integ = os.path.join(HERE, "integration")    # the harness (imsdtest, netns, peers)
    for d in (integ, idir):
        if d not in sys.path:
            sys.path.insert(0, d)

    # The parent stops a hung worker with SIGTERM: leave through KeyboardInterrupt, which
    # unittest lets through, so that atexit handlers (namespaces, Postfix) still run.
    def on_term(signum, frame):
        TallyResult.stopped = "stopped by the runner (SIGTERM) while it ran: a hang"
        raise KeyboardInterrupt(TallyResult.stopped)
    signal.signal(signal.SIGTERM, on_term)
    try:
        tests = load_integration(idir, filters, module)
    except Exception:
        print("@@COLLECTED integration " + module, flush=True)
        TallyResult([], watchdog).emit("fail", "integration " + module,
                                       "could not load the tests", traceback.format_exc())
        return 0
    for t in tests:
        print("@@COLLECTED " + t.id(), flush=True)
    result = TallyResult(tests, watchdog)
    suite = WatchdogSuite(tests)
    suite.watchdog = watchdog
    try:
        suite.run(result)
    except KeyboardInterrupt as e:
        print("@@STOPPED %s" % e, flush=True)
        return 1
    print("@@DONE", flush=True)
    return 0


def stop_worker(proc, grace=30):
    """Stop a worker (started in a session of its own) and what it started: SIGTERM to
    the worker, then SIGKILL to its process group."""
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)       # the group is the worker's own (its pid)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


RESULT_RE = re.compile(r"^@@RESULT (ok|fail|skip)\t([^\t]*)\t(.*)$")


def collect_worker(mod, text, tally, why_missing, done):
    """Count a finished worker's outcomes; every test it listed and gave no outcome fails.
    done: the worker said it finished (a module none of whose tests the filters select
    lists none)."""
    collected, results = [], {}
    lines = []
    for line in text.splitlines():
        m = RESULT_RE.match(line)
        if m:
            results[m.group(2)] = (m.group(1), m.group(3))
        elif line.startswith("@@COLLECTED "):
            collected.append(line[len("@@COLLECTED "):])
        elif line.startswith("@@"):
            continue
        else:
            lines.append(line)
    for tid in list(results):
        if tid not in collected:
            collected.append(tid)    # a fixture's placeholder given an outcome of its own
    if collected or not done:
        print("-- %s: %d test%s" % (mod, len(collected), "" if len(collected) == 1 else "s"),
              flush=True)
    for line in lines:
        print(line, flush=True)
    if not collected:
        if not done:
            tally.fail("integration " + mod, "the test process listed no tests: %s"
                       % why_missing)
        return 0
    for tid in collected:
        if tid in results:
            status, reason = results[tid]
            tally.count(status, tid, reason)
        else:
            tally.fail(tid, "no outcome: %s" % why_missing)
    return len(collected)


def run_integration(build, filters, tally, idir, watchdog, silence):
    imsd = os.path.abspath(os.path.join(build, "imsd"))
    print("== integration tests (IMSD=%s, %d modules at a time)" % (imsd, INTEGRATION_JOBS),
          flush=True)
    if not is_executable_file(imsd):
        tally.fail("integration", "no server binary at %s (build it with `make asan`)" % imsd)
        return
    modules = sorted(f[:-3] for f in os.listdir(idir)
                     if f.startswith("test_") and f.endswith(".py"))
    modules.sort(key=lambda m: SLOW_FIRST.index(m) if m in SLOW_FIRST else len(SLOW_FIRST))
    pending = list(modules)
    running = []            # [module, Popen, output file, last size, time of last growth]
    try:
        while pending or running:
            while pending and len(running) < INTEGRATION_JOBS:
                mod = pending.pop(0)
                out = tempfile.TemporaryFile()
                cmd = [sys.executable, os.path.abspath(__file__), "--build", build,
                       "--integration-dir", idir, "--watchdog", str(watchdog),
                       "--integration-worker", mod] + list(filters)
                proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
                running.append([mod, proc, out, 0, time.monotonic()])
            time.sleep(0.2)
            for item in list(running):
                mod, proc, out, size, since = item
                hung = None
                if proc.poll() is None:
                    now = time.monotonic()
                    cur = os.fstat(out.fileno()).st_size
                    if cur != size:
                        item[3], item[4] = cur, now
                        continue
                    if now - since < watchdog + silence:
                        continue
                    hung = now - since
                    stop_worker(proc)
                running.remove(item)
                out.seek(0)
                text = out.read().decode("utf-8", "replace")
                out.close()
                done = hung is None and "\n@@DONE\n" in "\n" + text
                if hung is not None:
                    why = ("the test process printed nothing for %.0f s (watchdog %d s + %d s) "
                           "and was stopped: a hang" % (hung, watchdog, silence))
                elif not done:
                    why = "the test process died (exit status %s)" % proc.returncode
                else:
                    why = "the test process ended without one"
                collect_worker(mod, text, tally, why, done)
                if done and proc.returncode != 0:
                    tally.fail("integration " + mod, "the test process exited with status %d "
                               "after its tests" % proc.returncode)
    finally:
        for mod, proc, out, _, _ in running:
            stop_worker(proc, grace=10)


# ---------------------------------------------------------------- fuzzing

def fuzz_report(out):
    """libFuzzer's output without the progress and dictionary lines, which bury the report."""
    noise = re.compile(r'^(#\d+\s|\s*NEW_FUNC\[|".*" # Uses: \d+$|###### )')
    return "\n".join(l for l in out.splitlines() if not noise.match(l))


def keep_artifacts(work, fuzz_build, name):
    """Copy crash-/leak-/timeout-/oom- files out of the temporary directory, into
    FUZZ_BUILD/artifacts/NAME/ (the build tree, not the repository's tracked files)."""
    kept = []
    for n in sorted(os.listdir(work)):
        if re.match(r"(crash|leak|timeout|oom|slow-unit)-", n):
            dest = os.path.join(fuzz_build, "artifacts", name)
            os.makedirs(dest, exist_ok=True)
            shutil.copy(os.path.join(work, n), dest)
            kept.append(os.path.join(dest, n))
    return kept


def merge_corpus(binary, seeds, corpus, work):
    """Add to seeds (tests/fuzz/corpus/NAME) the inputs of corpus that reach new coverage
    (libFuzzer -merge=1 keeps the result minimal). Returns the number of files added."""
    os.makedirs(seeds, exist_ok=True)
    before = len(os.listdir(seeds))
    subprocess.run([binary, "-merge=1", "-rss_limit_mb=2048", seeds, corpus], cwd=work,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=600)
    return len(os.listdir(seeds)) - before


def run_fuzz(fuzz_build, seconds, filters, tally, keep_corpus=False):
    bdir = os.path.join(fuzz_build, "bin")
    print("== fuzz (%s, %d s each)" % (bdir, seconds), flush=True)
    if not os.path.isdir(bdir):
        tally.fail("fuzz", "no fuzz targets: %s does not exist (build them with `make fuzz-build`)" % bdir)
        return
    targets = sorted(p for p in os.listdir(bdir)
                     if p.startswith("fuzz_") and is_executable_file(os.path.join(bdir, p)))
    if not targets:
        tally.fail("fuzz", "no fuzz_* programs in %s" % bdir)
        return
    done_re = re.compile(r"Done (\d+) runs in (\d+) second")
    for name in targets:
        if not matches(name, filters):
            continue
        work = tempfile.mkdtemp(prefix="imsd-fuzz-%s-" % name)
        try:
            corpus = os.path.join(work, "corpus")
            os.mkdir(corpus)
            cmd = [os.path.join(bdir, name), "-max_total_time=%d" % seconds, "-timeout=10",
                   "-rss_limit_mb=2048", "-artifact_prefix=%s/" % work, corpus]
            seeds = os.path.join(HERE, "fuzz", "corpus", name)
            if os.path.isdir(seeds):
                cmd.append(seeds)
            try:
                p = subprocess.run(cmd, cwd=work, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   timeout=seconds + 120)
                out = p.stdout.decode("utf-8", "replace")
                rc = p.returncode
            except subprocess.TimeoutExpired as e:
                out = (e.stdout or b"").decode("utf-8", "replace")
                tally.fail("fuzz " + name, "did not finish within %d s" % (seconds + 120),
                           tail(out, 80))
                continue
            m = done_re.search(out)
            if rc == 0 and m:
                added = ""
                if keep_corpus:
                    n = merge_corpus(os.path.join(bdir, name), seeds, corpus, work)
                    added = ", %d input%s added to %s" % (n, "" if n == 1 else "s",
                                                          os.path.relpath(seeds, ROOT))
                tally.ok("fuzz " + name, "%s executions in %s s%s" % (m.group(1), m.group(2),
                                                                      added))
            else:
                how = ("killed by signal %d" % -rc) if rc < 0 else ("exit status %d" % rc)
                kept = keep_artifacts(work, fuzz_build, name)
                tally.fail("fuzz " + name, "%s%s" % (how, "" if m else ", no 'Done N runs' line"),
                           tail(fuzz_report(out), 120)
                           + "".join("\ncrashing input kept as %s" % k for k in kept))
        finally:
            shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build/asan",
                    help="build directory with imsd and tests/ (default build/asan)")
    ap.add_argument("--fuzz-build", default="build/fuzz",
                    help="fuzz build directory with bin/fuzz_* (default build/fuzz)")
    ap.add_argument("--fuzz-seconds", type=int, default=10, help="seconds per fuzz target")
    ap.add_argument("--keep-corpus", action="store_true",
                    help="merge what each fuzz run found into tests/fuzz/corpus/NAME (make fuzz)")
    ap.add_argument("--only", action="append", choices=["unit", "integration", "fuzz"],
                    help="run only this kind (repeatable)")
    ap.add_argument("--watchdog", type=int, default=INTEGRATION_TEST_TIMEOUT,
                    help="seconds an integration test or class fixture may take (default %d)"
                    % INTEGRATION_TEST_TIMEOUT)
    ap.add_argument("--worker-silence", type=int, default=WORKER_SILENCE_MARGIN,
                    help="seconds beyond the watchdog after which a silent worker is stopped "
                    "(default %d)" % WORKER_SILENCE_MARGIN)
    ap.add_argument("--integration-dir", default=os.path.join(HERE, "integration"),
                    help=argparse.SUPPRESS)       # the runner's self-test points it elsewhere
    ap.add_argument("--integration-worker", metavar="MODULE", help=argparse.SUPPRESS)
    ap.add_argument("filters", nargs="*",
                    help="run only tests whose name contains one of these strings")
    args = ap.parse_args()

    for k, v in SANITIZER_ENV.items():
        os.environ[k] = v
    idir = os.path.abspath(args.integration_dir)
    if args.integration_worker:
        return run_integration_worker(os.path.abspath(args.build), args.integration_worker,
                                      args.filters, idir, args.watchdog)
    kinds = args.only or ["unit", "integration", "fuzz"]
    tally = Tally()
    t0 = time.monotonic()
    print(skip_policy_line(), flush=True)
    counts = []
    for kind in ("unit", "integration", "fuzz"):
        if kind not in kinds:
            continue
        before = tally.total
        if kind == "unit":
            run_unit(os.path.abspath(args.build), args.filters, tally)
        elif kind == "integration":
            run_integration(os.path.abspath(args.build), args.filters, tally, idir,
                            args.watchdog, args.worker_silence)
        else:
            run_fuzz(os.path.abspath(args.fuzz_build), args.fuzz_seconds, args.filters, tally,
                     keep_corpus=args.keep_corpus)
        counts.append("%s %d" % (kind, tally.total - before))
    if tally.skips:
        print("== skipped (%d), each for a reason legitimate in this run:" % len(tally.skips))
        for n, why in tally.skips:
            print("   %s — %s" % (n, why))
    if tally.failures:
        print("== failed (%d):" % len(tally.failures))
        for n, why in tally.failures:
            print("   %s%s" % (n, (" — " + why[:200]) if why else ""))
    print("== collected %d test%s (%s); each has one outcome"
          % (tally.total, "" if tally.total == 1 else "s", ", ".join(counts)))
    print("== %.0f s" % (time.monotonic() - t0))
    print("%d passed, %d failed, %d skipped" % (tally.passed, tally.failed, tally.skipped),
          flush=True)
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
