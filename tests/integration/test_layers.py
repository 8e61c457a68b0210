"""The layers of src/ hold: scripts/layers.py finds no include that runs back up in the tree,
and it does fail (naming file and line) on a tree where one module includes a module above
it, includes a module beside it that its row does not name, or is a folder without a row.
"""

import os
import subprocess
import sys
import tempfile
import unittest

from imsdtest import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "layers.py")


def run(src):
    return subprocess.run([sys.executable, SCRIPT, src], capture_output=True, text=True,
                          timeout=60)


def tree(d, files):
    for rel, text in files.items():
        path = os.path.join(d, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


class Layers(unittest.TestCase):

    def test_the_source_tree_has_no_include_running_back_up(self):
        p = run(os.path.join(ROOT, "src"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("layers: ok", p.stdout)

    def test_an_include_of_a_higher_module_fails_with_file_and_line(self):
        with tempfile.TemporaryDirectory() as d:
            tree(d, {
                "util/str.h": "#include <string.h>\n",
                "conf/conf.h": '#include "util/str.h"\n',
                "policy/outtls.h": '#include "conf/conf.h"\n',
                # the cycle of old: conf reaching up into policy
                "conf/conf.c": '#include "conf/conf.h"\n\n#include "policy/outtls.h"\n',
            })
            p = run(d)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(os.path.join(d, "conf", "conf.c") + ":3: includes policy/outtls.h", p.stderr)
        self.assertIn("runs back up", p.stderr)
        self.assertIn("1 include(s) break the layers", p.stderr)

    def test_an_include_sideways_on_the_same_floor_fails(self):
        with tempfile.TemporaryDirectory() as d:
            tree(d, {
                "deliver/relay.c": '#include "session/session.h"\n',
                "session/session.h": "\n",
            })
            p = run(d)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("relay.c:1: includes session/session.h", p.stderr)

    def test_a_module_without_a_row_fails(self):
        with tempfile.TemporaryDirectory() as d:
            tree(d, {"newroom/x.c": '#include "util/str.h"\n', "util/str.h": "\n"})
            p = run(d)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("module newroom has no row", p.stderr)

    def test_lower_includes_and_headers_beside_pass(self):
        with tempfile.TemporaryDirectory() as d:
            tree(d, {
                "util/str.h": "\n",
                "proto/smtp_path.h": '#include "util/str.h"\n',
                "session/session.c": '#include "session.h"\n#include "proto/smtp_path.h"\n'
                                     '#include <stdio.h>\n',
                "session/session.h": "\n",
            })
            p = run(d)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
