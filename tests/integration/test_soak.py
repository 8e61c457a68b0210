"""The short version of `make soak`: kill -9 the relaying imsd 5 times under load; nothing it
acknowledged may be lost (tests/soak/soak.py does 100 cycles)."""

import os
import sys
import tempfile
import shutil

from imsdtest import ImsdCase, imsd_binary

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "soak"))
import soak  # noqa: E402


class SoakShort(ImsdCase):

    def test_five_kill_9_cycles_under_relay_load_lose_nothing(self):
        work = tempfile.mkdtemp(prefix="imsd-soak-")
        self.addCleanup(shutil.rmtree, work, True)
        r = soak.run(5, 3, imsd_binary(), work, seed=1, drain_seconds=120,
                     log=lambda m: None)
        print("    " + soak.summary(r), flush=True)
        self.assertTrue(r["drained"], soak.summary(r))
        self.assertGreater(r["acknowledged"], 20, soak.summary(r))
        self.assertEqual(r["lost"], 0, soak.summary(r))
