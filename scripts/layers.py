#!/usr/bin/env python3
"""The layers of src/, enforced: which module may include which.

    python3 scripts/layers.py [SRC_DIR]        (run by `make test`; SRC_DIR defaults to src)

Every folder src/M/ is a module. A module sits on a floor and may include headers of the
modules its row below names, all on lower floors, and its own. Any other `#include "X/..."`
is an arrow running back up (or sideways), and this script prints it as FILE:LINE and exits
1. A folder that has no row is an error too: a new module says where it belongs here first.

The floors, bottom up (the folders on one floor do not include each other):

  0  util                       libc only
  1  proto conf tls             PURE parsers; the configuration schema; OpenSSL
  2  net queue                  event loop, threads, streams; the spool
  3  policy mailauth            PURE decisions; SPF, DKIM, DMARC, DNS lists
  4  cfg                        the loaded, reference-counted configuration snapshot
  5  session deliver            PURE inbound session; delivery agents
  6  sched                      the queue manager
  7  server                     imsd run: the wiring
  8  cli                        the command line

Standard library only.
"""

import os
import re
import sys

# module: (floor, the modules it may include besides itself)
LAYERS = {
    "util":     (0, set()),
    "proto":    (1, {"util"}),
    "conf":     (1, {"util"}),
    "tls":      (1, {"util"}),
    "net":      (2, {"util", "proto", "tls"}),
    "queue":    (2, {"util", "proto"}),
    "policy":   (3, {"util", "proto", "conf"}),
    "mailauth": (3, {"util", "proto", "conf", "net"}),
    "cfg":      (4, {"util", "proto", "conf", "tls", "net", "policy", "mailauth"}),
    "session":  (5, {"util", "proto", "conf", "policy"}),
    "deliver":  (5, {"util", "proto", "conf", "tls", "net", "queue", "policy", "mailauth",
                     "cfg"}),
    "sched":    (6, {"util", "proto", "conf", "tls", "net", "queue", "policy", "mailauth",
                     "cfg", "deliver"}),
    "server":   (7, {"util", "proto", "conf", "tls", "net", "queue", "policy", "mailauth",
                     "cfg", "session", "deliver", "sched"}),
    "cli":      (8, {"util", "proto", "conf", "tls", "net", "queue", "policy", "mailauth",
                     "cfg", "session", "deliver", "sched", "server"}),
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def table_errors(layers):
    """The table itself must point only down: every allowed module exists, on a lower floor."""
    errs = []
    for mod, (floor, allowed) in sorted(layers.items()):
        for dep in sorted(allowed):
            if dep not in layers:
                errs.append("layers table: %s may include %s, which has no row" % (mod, dep))
            elif layers[dep][0] >= floor:
                errs.append("layers table: %s (floor %d) may include %s (floor %d): not below"
                            % (mod, floor, dep, layers[dep][0]))
    return errs


def check(src, layers=LAYERS):
    """Return the list of violations in the tree under src, each one line."""
    errs = table_errors(layers)
    for mod in sorted(os.listdir(src)):
        mdir = os.path.join(src, mod)
        if not os.path.isdir(mdir):
            continue
        if mod not in layers:
            errs.append("%s/: module %s has no row in the layers table (scripts/layers.py)"
                        % (mdir, mod))
            continue
        floor, allowed = layers[mod]
        for name in sorted(os.listdir(mdir)):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(mdir, name)
            with open(path, encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = m.group(1)
                    if "/" not in target:
                        continue        # a header beside it, in the same module
                    dep = target.split("/", 1)[0]
                    if dep == mod or dep in allowed:
                        continue
                    if dep not in layers:
                        errs.append("%s:%d: includes %s: %s is not a module"
                                    % (path, lineno, target, dep))
                    elif layers[dep][0] >= floor:
                        errs.append("%s:%d: includes %s: %s (floor %d) may not include %s "
                                    "(floor %d): the arrow runs back up"
                                    % (path, lineno, target, mod, floor, dep, layers[dep][0]))
                    else:
                        errs.append("%s:%d: includes %s: %s may not include %s (not in its "
                                    "row of scripts/layers.py)" % (path, lineno, target, mod, dep))
    return errs


def main(argv):
    src = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))), "src")
    errs = check(src)
    for e in errs:
        print(e, file=sys.stderr)
    if errs:
        print("layers: %d include(s) break the layers" % len(errs), file=sys.stderr)
        return 1
    print("layers: ok (%d modules)" % len(LAYERS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
