"""tests/run.py itself: the counts add up, a class-level skip or error counts once per test,
an illegitimate skip fails, a hang fails the run instead of stalling it.

Each test runs the real runner on a fake build (shell scripts for imsd and the unit-test
programs) and a fake integration directory whose modules do what breaks a count: a setUpClass
that raises SkipTest for a broken environment, one that errors, one that outlives the
watchdog, a tearDownClass that fails, a test that skips for a missing tool, one that claims
"not root" as root, failing subtests, a module that cannot be imported, a test that blocks
the watchdog's signal and hangs, and a netns.NsCase whose `ip netns add` is refused (an `ip`
that fails, first in PATH). Once as root, where no skip is legitimate, and once as nobody,
where "not root" is.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import imsdtest

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_PY = os.path.join(os.path.dirname(HERE), "run.py")
WATCHDOG = 3            # seconds, for the fake tests
SILENCE = 4             # a worker silent for WATCHDOG + SILENCE is stopped

UNIT_FAKE = r"""#!/bin/sh
echo "ok fake_test.c passes"
echo "  fake_test.c:9: CHECK(x == 1) failed" >&2
echo "FAIL fake_test.c fails"
echo "skip fake_test.c needs_dnsmasq — dnsmasq not installed"
echo "skip fake_test.c needs_root — not root: mounting a tmpfs"
exit 1
"""

UNIT_CRASH = r"""#!/bin/sh
echo "ok crash_test.c first"
kill -SEGV $$
"""

COUNTS = r'''
import signal
import time
import unittest

import imsdtest
import netns


class SetUpClassSkipsForABrokenEnvironment(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise unittest.SkipTest("`ip netns add imsdt-0` failed (status 1): refused")

    def test_a(self):
        pass

    def test_b(self):
        pass

    def test_c(self):
        pass


class SetUpClassNeedsRoot(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        imsdtest.need_root("switching users")

    def test_a(self):
        pass

    def test_b(self):
        pass


class SetUpClassErrors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise RuntimeError("the peer cannot start")

    def test_a(self):
        pass

    def test_b(self):
        pass


class SetUpClassHangs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        time.sleep(60)

    def test_a(self):
        pass


class TearDownClassFails(unittest.TestCase):
    @classmethod
    def tearDownClass(cls):
        raise AssertionError("the shared server exited with status 1")

    def test_a(self):
        pass

    def test_b(self):
        pass


class Plain(unittest.TestCase):
    def test_passes(self):
        pass

    def test_fails(self):
        self.assertEqual(1, 2)

    def test_skips_for_a_missing_tool(self):
        self.skipTest("swaks not installed")

    def test_skips_as_not_root(self):
        imsdtest.need_root("a throwaway user")

    def test_two_subtests_fail(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertEqual(i, 0)


class NamespaceRefused(netns.NsCase):
    def test_a(self):
        pass

    def test_b(self):
        pass
'''

HANG = r'''
import signal
import time
import unittest


class BlocksTheWatchdog(unittest.TestCase):
    def test_1_passes(self):
        pass

    def test_2_hangs_with_the_alarm_blocked(self):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(120)

    def test_3_never_runs(self):
        pass
'''

BROKEN_IMPORT = r'''
import no_such_module_for_the_runner_test
'''

FAKE_IP = r"""#!/bin/sh
echo "RTNETLINK answers: Operation not permitted" >&2
exit 1
"""


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


class Runner(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="imsd-runner-test-")
        os.chmod(cls.tmp, 0o755)        # the second run is as nobody
        build = os.path.join(cls.tmp, "build")
        os.makedirs(os.path.join(build, "tests"))
        write(os.path.join(build, "imsd"), "#!/bin/sh\nexit 0\n", 0o755)
        write(os.path.join(build, "tests", "fake_test"), UNIT_FAKE, 0o755)
        write(os.path.join(build, "tests", "crash_test"), UNIT_CRASH, 0o755)
        idir = os.path.join(cls.tmp, "integration")
        os.makedirs(idir)
        write(os.path.join(idir, "test_fake_counts.py"), COUNTS)
        write(os.path.join(idir, "test_fake_hang.py"), HANG)
        write(os.path.join(idir, "test_fake_import.py"), BROKEN_IMPORT)
        bindir = os.path.join(cls.tmp, "bin")
        os.makedirs(bindir)
        write(os.path.join(bindir, "ip"), FAKE_IP, 0o755)
        for d in (build, os.path.join(build, "tests"), idir, bindir):
            os.chmod(d, 0o755)
        cls.build, cls.idir, cls.bindir = build, idir, bindir

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_runner(self, as_nobody=False):
        # as nobody: Debian's python3 (the one running this may live under /root)
        cmd = ["/usr/bin/python3" if as_nobody else sys.executable, RUN_PY,
               "--build", self.build, "--integration-dir", self.idir, "--only", "unit", "--only", "integration", "--watchdog", str(WATCHDOG),
               "--worker-silence", str(SILENCE)]
        if as_nobody:
            imsdtest.need_root("running the runner as nobody")
            cmd = [imsdtest.need_tool("setpriv", "util-linux"), "--reuid=65534",
                   "--regid=65534", "--clear-groups"] + cmd
        env = dict(os.environ, PATH=self.bindir + ":" + os.environ.get("PATH", ""))
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120, env=env, cwd=self.tmp)
        out = p.stdout + p.stderr
        return p.returncode, out

    def outcome(self, out, name):
        """The status printed last for test name (ok/FAIL/skip) and its reason (a failed
        tearDownClass turns the "ok" of each test of its class into a later "FAIL")."""
        ms = re.findall(r"^(ok|FAIL|skip) %s(?: — (.*))?$" % re.escape(name), out, re.M)
        self.assertTrue(ms, "no outcome line for %s in:\n%s" % (name, out))
        return ms[-1][0], ms[-1][1] or ""

    def check_common(self, out):
        c = "test_fake_counts."
        # a broken environment in setUpClass: one failure per test of the class, with reason
        for t in ("test_a", "test_b", "test_c"):
            st, why = self.outcome(out, c + "SetUpClassSkipsForABrokenEnvironment." + t)
            self.assertEqual(st, "FAIL")
            self.assertIn("not legitimate", why)
            self.assertIn("ip netns add", why)
        for t in ("test_a", "test_b"):
            st, why = self.outcome(out, c + "SetUpClassErrors." + t)
            self.assertEqual((st, "RuntimeError: the peer cannot start" in why), ("FAIL", True),
                             why)
            st, why = self.outcome(out, c + "TearDownClassFails." + t)
            self.assertEqual(st, "FAIL")
            self.assertIn("tearDownClass of test_fake_counts.TearDownClassFails failed", why)
        st, why = self.outcome(out, c + "SetUpClassHangs.test_a")
        self.assertEqual(st, "FAIL")
        self.assertIn("setUpClass of SetUpClassHangs exceeded the runner's %d s watchdog"
                      % WATCHDOG, why)
        self.assertEqual(self.outcome(out, c + "Plain.test_passes")[0], "ok")
        self.assertEqual(self.outcome(out, c + "Plain.test_fails")[0], "FAIL")
        st, why = self.outcome(out, c + "Plain.test_skips_for_a_missing_tool")
        self.assertEqual(st, "FAIL")
        self.assertIn("swaks not installed", why)
        st, why = self.outcome(out, c + "Plain.test_two_subtests_fail")
        self.assertEqual(st, "FAIL")
        self.assertIn("(and 1 more)", why)
        self.assertEqual(len(re.findall(r"^FAIL %sPlain\.test_two_subtests_fail" % c, out,
                                        re.M)), 1, "a test with failing subtests is one failure")
        # a hang the watchdog cannot end: the worker is stopped, the rest of its module fails
        h = "test_fake_hang.BlocksTheWatchdog."
        self.assertEqual(self.outcome(out, h + "test_1_passes")[0], "ok")
        st, why = self.outcome(out, h + "test_2_hangs_with_the_alarm_blocked")
        self.assertEqual(st, "FAIL")
        st, why = self.outcome(out, h + "test_3_never_runs")
        self.assertEqual(st, "FAIL")
        self.assertIn("no outcome: the test process printed nothing for", why)
        self.assertIn("a hang", why)
        self.assertRegex(out, r"(?m)^FAIL unittest\.loader\._FailedTest\.test_fake_import")
        # unit programs: a missing tool fails, a crash is one more failure
        self.assertEqual(self.outcome(out, "unit fake_test.c passes")[0], "ok")
        self.assertEqual(self.outcome(out, "unit fake_test.c fails")[0], "FAIL")
        st, why = self.outcome(out, "unit fake_test.c needs_dnsmasq")
        self.assertEqual(st, "FAIL")
        self.assertIn("dnsmasq not installed", why)
        self.assertEqual(self.outcome(out, "unit crash_test.c first")[0], "ok")
        st, why = self.outcome(out, "unit crash_test")
        self.assertEqual((st, why), ("FAIL", "killed by signal 11 (crash)"))

    def check_sum(self, out, collected, passed, failed, skipped):
        last = out.rstrip("\n").splitlines()[-1]
        self.assertEqual(last, "%d passed, %d failed, %d skipped" % (passed, failed, skipped),
                         out)
        m = re.search(r"^== collected (\d+) tests \(unit (\d+), integration (\d+)\)", out, re.M)
        self.assertTrue(m, out)
        self.assertEqual(int(m.group(1)), collected)
        self.assertEqual(int(m.group(2)) + int(m.group(3)), collected)
        self.assertEqual(passed + failed + skipped, collected)
        # the tests with an outcome line are the collected ones
        names = set(re.findall(r"^(?:ok|FAIL|skip) (.+?)(?: — .*)?$", out, re.M))
        self.assertEqual(len(names), collected, "\n".join(sorted(names)))

    def test_as_root_every_skip_fails_and_the_counts_add_up(self):
        imsdtest.need_root("a run in which no skip is legitimate")
        rc, out = self.run_runner()
        self.assertEqual(rc, 1, out)
        self.assertIn("== skips: none is legitimate in this run (euid 0)", out.splitlines()[0])
        c = "test_fake_counts."
        # "not root" claimed as root is not believed; need_root as root runs the test
        st, why = self.outcome(out, c + "Plain.test_skips_as_not_root")
        self.assertEqual(st, "ok", "need_root returns as root")
        for t in ("test_a", "test_b"):
            self.assertEqual(self.outcome(out, c + "SetUpClassNeedsRoot." + t)[0], "ok")
            # a namespace refused as root: each test of the NsCase fails with the reason
            st, why = self.outcome(out, c + "NamespaceRefused." + t)
            self.assertEqual(st, "FAIL")
            self.assertIn("Operation not permitted", why)
        st, why = self.outcome(out, "unit fake_test.c needs_root")
        self.assertEqual(st, "FAIL")
        self.assertIn("does not hold in this run", why)
        self.check_common(out)
        # unit 6: 2 ok, 4 fail; integration 21: 5 ok, 16 fail
        self.check_sum(out, 27, 7, 20, 0)
        self.assertNotIn("== skipped", out)

    def test_as_nobody_not_root_skips_are_counted_and_listed(self):
        rc, out = self.run_runner(as_nobody=True)
        self.assertEqual(rc, 1, out)
        self.assertIn("legitimate in this run (euid 65534): 'not root'", out.splitlines()[0])
        c = "test_fake_counts."
        names = [c + "SetUpClassNeedsRoot.test_a", c + "SetUpClassNeedsRoot.test_b",
                 c + "Plain.test_skips_as_not_root", c + "NamespaceRefused.test_a",
                 c + "NamespaceRefused.test_b", "unit fake_test.c needs_root"]
        for n in names:
            st, why = self.outcome(out, n)
            self.assertEqual(st, "skip", n)
            self.assertRegex(why, r"^(setUpClass: )?not root: ")
        self.check_common(out)
        # unit 6: 2 ok, 3 fail, 1 skip; integration 21: 2 ok, 14 fail, 5 skip
        self.check_sum(out, 27, 4, 17, 6)
        listed = out[out.index("== skipped (6)"):].splitlines()[1:7]
        self.assertEqual(sorted(l.split(" — ")[0].strip() for l in listed), sorted(names))


if __name__ == "__main__":
    unittest.main()
