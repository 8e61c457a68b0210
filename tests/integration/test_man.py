"""The man pages cannot drift from the program: man/imsd.conf.5 has an entry for every key
of the configuration schema (as `imsd check` prints them) with its default, and nothing
else; man/imsd.8 has an entry for every subcommand of `imsd --help`; `mandoc -T lint` finds
nothing in either.
"""

import os
import re
import subprocess
import unittest

import imsdtest
from imsdtest import ROOT, run_cli

MAN = os.path.join(ROOT, "man")
IMSD8 = os.path.join(MAN, "imsd.8")
CONF5 = os.path.join(MAN, "imsd.conf.5")


def section(text, name):
    """The text of one .Sh section of an mdoc page."""
    m = re.search(r"^\.Sh %s\n(.*?)(?=^\.Sh |\Z)" % re.escape(name), text, re.S | re.M)
    if not m:
        raise AssertionError("no .Sh %s section" % name)
    return m.group(1)


def entries(text, macro):
    """{name: entry text} for each `.It MACRO name` of a tag list, up to the next .It/.El."""
    out = {}
    for m in re.finditer(r"^\.It %s (\S+)\n(.*?)(?=^\.It |^\.El)" % macro, text, re.S | re.M):
        out[m.group(1)] = m.group(2)
    return out


class ManPages(unittest.TestCase):

    def schema(self, tmpdir):
        conf = os.path.join(tmpdir, "empty.conf")
        with open(conf, "w") as f:
            f.write("")
        p = run_cli(["check", "-c", conf])
        self.assertEqual(p.returncode, 0, p.stderr)
        keys = {}
        for line in p.stdout.splitlines():
            m = re.match(r"^([a-z_0-9]+) = (.*?)\s+# default", line)
            if m:
                keys[m.group(1)] = m.group(2)
        self.assertGreater(len(keys), 20, p.stdout)
        return keys

    def test_every_configuration_key_has_an_entry_with_its_default(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            keys = self.schema(d)
        with open(CONF5) as f:
            man = entries(section(f.read(), "KEYS"), "Cm")
        missing = sorted(set(keys) - set(man))
        self.assertEqual(missing, [], "keys of src/conf/conf.c without an entry in man/imsd.conf.5")
        extra = sorted(set(man) - set(keys))
        self.assertEqual(extra, [], "entries in man/imsd.conf.5 that are not configuration keys")
        for k, default in keys.items():
            self.assertIn("Default:", man[k], "%s: no Default: line" % k)
            if k in ("hostname",) or default == "":
                continue      # the system host name; unset/none/those in resolv.conf
            text = " ".join(man[k].split("Default:", 1)[1].split())
            self.assertIn(default, text, "%s: the default printed by imsd check is %r" % (k, default))

    def test_every_subcommand_has_an_entry(self):
        p = run_cli(["--help"])
        self.assertEqual(p.returncode, 0)
        cmds = set(re.findall(r"imsd ([a-z][a-z-]*)", p.stdout))
        self.assertIn("sendmail", cmds)
        with open(IMSD8) as f:
            text = f.read()
        man = entries(section(text, "COMMANDS"), "Ic")
        self.assertEqual(sorted(cmds - set(man)), [], "subcommands without an entry in man/imsd.8")
        self.assertEqual(sorted(set(man) - cmds), [], "entries in man/imsd.8 that are no subcommand")
        for s in ("SENDMAIL COMPATIBILITY", "SIGNALS", "FILES", "EXIT STATUS", "EXAMPLES"):
            section(text, s)

    def test_mandoc_lint_is_clean(self):
        mandoc = imsdtest.need_tool("mandoc", "mandoc")
        p = subprocess.run([mandoc, "-T", "lint", IMSD8, CONF5, os.path.join(MAN, "aliases.5")], capture_output=True, text=True,
                           timeout=60)
        # Before the package is installed, the pages cannot find each other in the manual
        # database, and mandoc mentions an old system database: neither is about our text.
        left = [l for l in (p.stdout + p.stderr).splitlines()
                if "outdated mandoc.db" not in l
                and not re.search(r"referenced manual not found: Xr (imsd 8|imsd\.conf 5)", l)]
        self.assertEqual(left, [], "mandoc -T lint:\n" + "\n".join(left))

class ListenSyntax(unittest.TestCase):
    """imsd.conf(5) and the README give the IPv6 listener syntax; the parser must take it."""

    def test_ipv6_listen_examples_of_the_docs_are_what_the_parser_accepts(self):
        import tempfile
        with open(CONF5) as f:
            man = f.read()
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        good = set(re.findall(r"^\.Ql (\[[0-9a-fA-F:]+\]:\d+)", man, re.M))
        self.assertIn("[::1]:25", good, "imsd.conf(5) gives an IPv6 listen example")
        self.assertIn("IPv6 as `[ADDR]:PORT`", readme)
        with tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "imsd.conf")
            for addr in sorted(good) + ["[ADDR]:PORT"]:
                with open(conf, "w") as f:
                    f.write("listen = %s\n" % addr.replace("ADDR", "::1").replace("PORT", "2525"))
                p = run_cli(["check", "-q", "-c", conf])
                self.assertEqual(p.returncode, 0, "%s: %s" % (addr, p.stderr))
            with open(conf, "w") as f:
                f.write("listen = [::1:25]\n")       # the form the man page once gave
            p = run_cli(["check", "-q", "-c", conf])
            self.assertEqual(p.returncode, 1)
            self.assertIn("IPv6 as [ADDR]:PORT", p.stderr)


if __name__ == "__main__":
    unittest.main()
