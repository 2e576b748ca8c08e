#!/usr/bin/env python3
"""The layering check fails where it must: test_check_layers.py CHECKER

On a small temporary tree that is clean, then broken one way at a time (an
upward include, libcurl or libfuse in the wrong layer, a private header that
is not beside its user, a header of no layer, an include cycle, a file that
is too long), the checker must pass the clean tree and fail each broken one
with a message naming the file and line at fault.
"""
import os
import shutil
import subprocess
import sys
import tempfile

CHECKER = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "check_layers.py")

CLEAN = {
    "include/secretsfs/log.h": "#include <stddef.h>\n",
    "include/secretsfs/http.h": "#include <secretsfs/log.h>\n",
    "include/secretsfs/cache.h": "#include <secretsfs/http.h>\n",
    "include/secretsfs/fs.h": "#include <secretsfs/cache.h>\n",
    "broker/base/log.c": "#include <secretsfs/log.h>\n",
    "broker/backends/http.c": "#include <curl/curl.h>\n"
                              "#include <secretsfs/http.h>\n",
    "broker/core/cache.c": '#include "cache_int.h"\n'
                           "#include <secretsfs/cache.h>\n"
                           "#include <secretsfs/log.h>\n",
    "broker/core/cache_lru.c": '#include "cache_int.h"\n',
    "broker/core/cache_int.h": "#include <secretsfs/cache.h>\n",
    "fuse/fs.c": "#include <fuse_lowlevel.h>\n#include <secretsfs/fs.h>\n",
}


def run(tree):
    root = tempfile.mkdtemp(prefix="check_layers.")
    try:
        for rel, text in tree.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        p = subprocess.run([sys.executable, CHECKER, root],
                           capture_output=True, text=True)
        return p.returncode, p.stdout
    finally:
        shutil.rmtree(root)


CASES = [
    ("an upward include",
     {"broker/base/log.c": "#include <secretsfs/log.h>\n"
                           "#include <secretsfs/cache.h>\n"},
     "broker/base/log.c:2: includes secretsfs/cache.h of core/"),
    ("a header that includes upward",
     {"include/secretsfs/http.h": "#include <secretsfs/fs.h>\n"},
     "include/secretsfs/http.h:1: includes secretsfs/fs.h of fuse/"),
    ("libcurl outside the backends",
     {"broker/core/cache.c": "#include <curl/curl.h>\n"},
     "broker/core/cache.c:1: <curl/curl.h> outside broker/backends/"),
    ("libfuse outside the adapter",
     {"broker/core/cache_lru.c": "#include <fuse_lowlevel.h>\n"},
     "broker/core/cache_lru.c:1: <fuse_lowlevel.h> outside fuse/"),
    ("a private header from another folder",
     {"broker/backends/http.c": '#include "cache_int.h"\n'},
     'broker/backends/http.c:1: "cache_int.h" is not beside it'),
    ("a header of no layer",
     {"include/secretsfs/orphan.h": "\n"},
     "include/secretsfs/orphan.h: no orphan.c"),
    ("an include cycle within a layer",
     {"include/secretsfs/sched.h": "#include <secretsfs/cache.h>\n",
      "broker/core/sched.c": "#include <secretsfs/sched.h>\n",
      "include/secretsfs/cache.h": "#include <secretsfs/sched.h>\n"},
     "include cycle: cache -> sched"),
    ("a file over the limit",
     {"broker/core/cache.c": "int x;\n" * 901},
     "broker/core/cache.c: 901 lines, over 900"),
]


def main():
    failures = 0
    rc, out = run(CLEAN)
    if rc != 0:
        print("FAIL: the clean tree is refused:\n" + out)
        failures += 1
    else:
        print("ok: the clean tree passes")
    for what, change, expect in CASES:
        tree = dict(CLEAN)
        tree.update(change)
        rc, out = run(tree)
        if rc != 1 or expect not in out:
            print("FAIL: %s: exit %d, expected %r in:\n%s" %
                  (what, rc, expect, out))
            failures += 1
        else:
            print("ok: %s is refused" % what)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
