#!/usr/bin/env python3
"""The one test runner: unit tests, integration tests and short fuzz runs.

    python3 tests/run.py --build build/asan --fuzz-build build/fuzz --fuzz-seconds 10
    python3 tests/run.py --only integration smuggl      # only tests whose name contains "smuggl"

(a) every executable in BUILD/tests/ is a unit-test program printing "ok FILE NAME",
    "FAIL FILE NAME" or "skip FILE NAME — why" per test; a crash, a timeout or a non-zero exit without a FAIL line
    counts as one failure;
(b) tests/integration/test_*.py run through unittest with IMSD=<abs BUILD/imsd>;
(c) each FUZZ_BUILD/bin/fuzz_* runs for --fuzz-seconds with a fresh temporary corpus
    directory first (so nothing is written into the repository) and the seeds in
    tests/fuzz/corpus/<name>/ second; a crash is a failure. With --keep-corpus (make fuzz)
    what a run found that reaches new coverage is merged into tests/fuzz/corpus/<name>/.

The last line printed is "N passed, N failed, N skipped"; the exit status is 1 when
anything failed. Standard library only (Python 3.11).
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

UNIT_TIMEOUT = 60
INTEGRATION_TEST_TIMEOUT = 180   # a watchdog per integration test, far above any test's own bounds
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []          # names, for the recap

    def ok(self, name, detail=""):
        self.passed += 1
        print("ok %s%s" % (name, (" — " + detail) if detail else ""), flush=True)

    def fail(self, name, reason="", output=""):
        self.failed += 1
        self.failures.append(name)
        print("FAIL %s%s" % (name, (" — " + reason) if reason else ""), flush=True)
        if output:
            out = output.rstrip("\n")
            print("    " + out.replace("\n", "\n    "), flush=True)

    def skip(self, name, reason=""):
        self.skipped += 1
        print("skip %s%s" % (name, (" — " + reason) if reason else ""), flush=True)


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
                tally.fail("unit " + full, "", "\n".join(detail[-60:]))
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


class TallyResult(unittest.TestResult):
    """Prints one line per test and feeds the tally."""

    def __init__(self, tally):
        super().__init__()
        self.tally = tally
        self._start = {}

    @staticmethod
    def name(test):
        return test.id()

    def startTest(self, test):
        super().startTest(test)
        self._start[test.id()] = time.monotonic()

        def on_alarm(signum, frame):
            raise WatchdogTimeout("test exceeded the runner's %d s watchdog"
                                  % INTEGRATION_TEST_TIMEOUT)
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(INTEGRATION_TEST_TIMEOUT)

    def stopTest(self, test):
        signal.alarm(0)
        super().stopTest(test)

    def _secs(self, test):
        t0 = self._start.get(test.id())
        return "" if t0 is None else "%.1fs" % (time.monotonic() - t0)

    def addSuccess(self, test):
        super().addSuccess(test)
        self.tally.ok(self.name(test), self._secs(test))

    def _reason(self, err):
        exc = err[1]
        first = str(exc).strip().splitlines()
        return "%s: %s" % (type(exc).__name__, first[0] if first else "")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.tally.fail(self.name(test), self._reason(err), self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self.tally.fail(self.name(test), self._reason(err), self._exc_info_to_string(err, test))

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.tally.fail(subtest.id(), self._reason(err), self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.tally.skip(self.name(test), reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.tally.ok(self.name(test), "expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.tally.fail(self.name(test), "unexpected success")


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
    selected = unittest.TestSuite()
    for t in iter_tests(suite):
        # a module that fails to import shows up as unittest.loader._FailedTest
        if matches(t.id(), filters) or type(t).__name__ == "_FailedTest":
            selected.addTest(t)
    return selected


def run_integration_worker(build, module, filters):
    """One module in this process; the parent reads the result lines and the tally."""
    idir = os.path.join(HERE, "integration")
    os.environ["IMSD"] = os.path.abspath(os.path.join(build, "imsd"))
    # the optimised build, for the memory figures (test_limits); `make test` builds it
    os.environ.setdefault("IMSD_RELEASE", os.path.join(ROOT, "build", "imsd"))
    if idir not in sys.path:
        sys.path.insert(0, idir)
    tally = Tally()
    try:
        selected = load_integration(idir, filters, module)
    except Exception:
        tally.fail("integration " + module, "could not load the tests", traceback.format_exc())
    else:
        selected.run(TallyResult(tally))
    print("@@TALLY %d %d %d" % (tally.passed, tally.failed, tally.skipped))
    for n in tally.failures:
        print("@@FAILED " + n)
    return 0


def run_integration(build, filters, tally):
    idir = os.path.join(HERE, "integration")
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
    running = []            # (module, Popen, output file)
    while pending or running:
        while pending and len(running) < INTEGRATION_JOBS:
            mod = pending.pop(0)
            out = tempfile.TemporaryFile()
            cmd = [sys.executable, os.path.abspath(__file__), "--build", build,
                   "--integration-worker", mod] + list(filters)
            running.append((mod, subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL,
                                                  stdout=out, stderr=subprocess.STDOUT), out))
        time.sleep(0.2)
        for item in list(running):
            mod, proc, out = item
            if proc.poll() is None:
                continue
            running.remove(item)
            out.seek(0)
            text = out.read().decode("utf-8", "replace")
            out.close()
            got = False
            for line in text.splitlines():
                m = re.match(r"^@@TALLY (\d+) (\d+) (\d+)$", line)
                if m:
                    got = True
                    tally.passed += int(m.group(1))
                    tally.failed += int(m.group(2))
                    tally.skipped += int(m.group(3))
                elif line.startswith("@@FAILED "):
                    tally.failures.append(line[9:])
                else:
                    print(line, flush=True)
            if not got:
                tally.fail("integration " + mod, "the test process died (exit %s)"
                           % proc.returncode)


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
    ap.add_argument("--integration-worker", metavar="MODULE", help=argparse.SUPPRESS)
    ap.add_argument("filters", nargs="*",
                    help="run only tests whose name contains one of these strings")
    args = ap.parse_args()

    for k, v in SANITIZER_ENV.items():
        os.environ[k] = v
    if args.integration_worker:
        return run_integration_worker(os.path.abspath(args.build), args.integration_worker,
                                      args.filters)
    kinds = args.only or ["unit", "integration", "fuzz"]
    tally = Tally()
    t0 = time.monotonic()
    if "unit" in kinds:
        run_unit(os.path.abspath(args.build), args.filters, tally)
    if "integration" in kinds:
        run_integration(os.path.abspath(args.build), args.filters, tally)
    if "fuzz" in kinds:
        run_fuzz(os.path.abspath(args.fuzz_build), args.fuzz_seconds, args.filters, tally,
                 keep_corpus=args.keep_corpus)
    if tally.failures:
        print("== failed (%d):" % len(tally.failures))
        for n in tally.failures:
            print("   " + n)
    print("== %.0f s" % (time.monotonic() - t0))
    print("%d passed, %d failed, %d skipped" % (tally.passed, tally.failed, tally.skipped),
          flush=True)
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
