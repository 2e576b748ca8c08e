#!/usr/bin/python3
"""Can a caller tell a hidden secret from a missing name by the time a
stat() takes? Interleaved samples of both, from one made-up container, of
one daemon; prints the medians and their difference.

    sudo /usr/bin/python3 tests/bench/oracle_timing.py [--samples N] [--bin PATH]

A measurement, not a test: tests/system/test_oracles.py asserts the
structural property (the same records and system calls for both), which
is what makes the times equal; this shows how equal on this machine.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "system"))

from conftest import Daemon, write_private  # noqa: E402
from containers import FakeCgroups, hex64  # noqa: E402

SAMPLER = r"""
import json, os, random, sys, time
procs, mnt, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(procs, "w") as f:
    f.write(str(os.getpid()))
paths = {"hidden": os.path.join(mnt, "theirs"),
         "missing": os.path.join(mnt, "no_such_name")}
order = ["hidden", "missing"] * n
random.seed(7)
random.shuffle(order)
t = {"hidden": [], "missing": []}
ns = time.perf_counter_ns
for _ in range(2000):          # warm the identity cache and the CPU
    for p in paths.values():
        try:
            os.stat(p)
        except OSError:
            pass
for k in order:
    p = paths[k]
    a = ns()
    try:
        os.stat(p)
    except OSError:
        pass
    t[k].append(ns() - a)
print(json.dumps(t))
"""


def median(v):
    v = sorted(v)
    return v[len(v) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=30000)
    ap.add_argument("--bin", default=str(HERE.parents[1] / "build" / "fuse"
                                         / "secretsfs"))
    args = ap.parse_args()
    os.environ["SECRETSFS_BIN"] = args.bin
    work = pathlib.Path(tempfile.mkdtemp(prefix="sfs-oracle-"))
    secrets = work / "secrets"
    secrets.mkdir(mode=0o700)
    for name in ("mine", "theirs"):
        (secrets / name).write_bytes(b"value-of-" + name.encode())
    write_private(work / "audit.key", os.urandom(32).hex() + "\n")
    me = hex64()
    cfg = {
        "backends": {"dev": {"type": "file", "dir": str(secrets)}},
        "secrets": {"mine": {"backend": "dev"}, "theirs": {"backend": "dev"}},
        "rules": [{"id": "mine", "match": {"container_id": me},
                   "allow": ["mine"]}],
        "audit": {"file": str(work / "audit.log"),
                  "key_file": str(work / "audit.key"),
                  "denied_per_caller": 0},
    }
    d = Daemon(work, cfg).start()
    cg = FakeCgroups()
    try:
        cdir = cg.make("system.slice/docker-%s.scope" % me)
        out = subprocess.run(
            [sys.executable, "-c", SAMPLER,
             os.path.join(cdir, "cgroup.procs"), d.mountpoint,
             str(args.samples)], capture_output=True, text=True, check=True)
        t = json.loads(out.stdout)
    finally:
        d.cleanup()
        cg.remove()
    h, m = median(t["hidden"]) / 1000, median(t["missing"]) / 1000
    print("samples: 2 x %d, interleaved" % args.samples)
    print("median stat() of a hidden name:  %.1f us" % h)
    print("median stat() of a missing name: %.1f us" % m)
    print("difference: %+.1f %%" % ((h - m) / m * 100))


if __name__ == "__main__":
    main()
