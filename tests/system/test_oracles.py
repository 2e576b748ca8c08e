"""No oracles: nothing a caller can measure tells it that a secret it may
not see exists. statfs reports the same for every caller, and a hidden
name and a missing one take the same path through the daemon: both are
identified, decided and recorded as lookup_denied before ENOENT, with the
same system calls.

The latency itself is a measurement, not an assertion here (a loaded
2-core machine cannot hold a 2 % bound): tests/bench/oracle_timing.py
measures it, and the README's Benchmarks section has its result.
"""
import collections
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from conftest import need, require_fuse
from containers import FakeCgroups, cgroup2_mount, hex64
from test_access import audit_records, config

VALUES = {"mine": b"granted-1", "theirs": b"hidden-2", "shared": b"both-3"}

PROBE = r"""
import json, os, sys
procs, mnt = sys.argv[1], sys.argv[2]
with open(procs, "w") as f:
    f.write(str(os.getpid()))
sv = os.statvfs(mnt)
print(json.dumps([sv.f_bsize, sv.f_frsize, sv.f_blocks, sv.f_bfree,
                  sv.f_bavail, sv.f_files, sv.f_ffree, sv.f_favail,
                  sv.f_flag, sv.f_namemax]), flush=True)
"""


@pytest.fixture
def cgroups():
    require_fuse()
    need(cgroup2_mount() is not None, "no cgroup2 hierarchy is mounted")
    cg = FakeCgroups()
    yield cg
    cg.remove()


def statfs_in(cgroup_dir, mnt):
    out = subprocess.run(
        [sys.executable, "-c", PROBE, os.path.join(cgroup_dir, "cgroup.procs"),
         mnt], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_statfs_is_the_same_for_every_caller(make_daemon, secrets_dir,
                                             tmp_path, cgroups):
    a, b = hex64(), hex64()
    rules = [
        {"id": "a", "match": {"container_id": a}, "allow": ["mine", "shared"]},
        {"id": "b", "match": {"container_id": b}, "allow": ["shared"]},
    ]
    d = make_daemon(config(secrets_dir, tmp_path, rules, values=VALUES))
    sa = statfs_in(cgroups.make("system.slice/docker-%s.scope" % a),
                   d.mountpoint)
    sb = statfs_in(cgroups.make("system.slice/docker-%s.scope" % b),
                   d.mountpoint)
    sn = statfs_in(cgroups.make("system.slice/docker-%s.scope" % hex64()),
                   d.mountpoint)
    assert sa == sb == sn, (sa, sb, sn)
    # No count at all: not of the secrets, not of what the caller sees.
    assert sa[5] == sa[6] == sa[7] == 0


LOOKER = r"""
import os, sys
procs, mnt, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = sys.argv[4:]
with open(procs, "w") as f:
    f.write(str(os.getpid()))
print("ready", flush=True)
for name in names:
    sys.stdin.readline()
    errs = set()
    for _ in range(n):
        try:
            os.stat(os.path.join(mnt, name))
            errs.add(0)
        except OSError as e:
            errs.add(e.errno)
    print(sorted(errs), flush=True)
"""


def test_hidden_and_missing_names_take_the_same_path(make_daemon,
                                                     secrets_dir, tmp_path,
                                                     cgroups):
    need(shutil.which("strace"), "strace is not installed")
    me = hex64()
    rules = [{"id": "mine", "match": {"container_id": me},
              "allow": ["mine"]}]
    # No per-caller limit: every request is recorded in full here.
    cfg = config(secrets_dir, tmp_path, rules, values=VALUES)
    cfg["audit"]["denied_per_caller"] = 0
    d = make_daemon(cfg)
    n = 200
    proc = subprocess.Popen(
        [sys.executable, "-c", LOOKER,
         os.path.join(cgroups.make("system.slice/docker-%s.scope" % me),
                      "cgroup.procs"), d.mountpoint, str(n),
         "theirs", "theirs", "no_such_name", "theirs", "no_such_name"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"

    def counted(name):
        """The FUSE process's system calls while the caller stats name n
        times: {syscall: calls}."""
        out = tmp_path / ("strace-%s-%d.txt" % (name, time.monotonic_ns()))
        st = subprocess.Popen(["strace", "-f", "-qq", "-c", "-o", str(out),
                               "-p", str(d.pid)],
                              stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)   # attached to every thread
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "[%d]" % errno.ENOENT
        time.sleep(0.2)
        st.send_signal(2)
        st.wait(30)
        calls = {}
        # % time, seconds, usecs/call, calls, [errors,] syscall
        for line in out.read_text().splitlines():
            f = line.split()
            if len(f) >= 5 and re.match(r"^[\d.]+$", f[0]) and \
                    f[-1] != "total":
                calls[f[-1]] = int(f[3])
        return calls

    try:
        # Warm: the caller's identity is read once, then cached.
        counted("theirs")
        hidden, missing = counted("theirs"), counted("no_such_name")
        hidden2, missing2 = counted("theirs"), counted("no_such_name")
    finally:
        proc.stdin.close()
        proc.wait(10)

    # The same system calls, in the same numbers, within what the other
    # threads of the daemon do meanwhile (a few per second at most).
    for h, m in ((hidden, missing), (hidden2, missing2)):
        for call in set(h) | set(m):
            a, b = h.get(call, 0), m.get(call, 0)
            assert abs(a - b) <= max(10, a // 50), (call, h, m)
        # And the work is there: a record written per request.
        assert h.get("write", 0) + h.get("writev", 0) >= n, h

    recs = [r for r in audit_records(tmp_path)
            if (r.get("container") or {}).get("id") == me]
    by = collections.Counter((r["event"], r["secret"], r.get("reason"),
                              r["errno"]) for r in recs)
    assert by[("lookup_denied", "theirs", "not allowed", errno.ENOENT)] \
        >= 3 * n
    assert by[("lookup_denied", "no_such_name", "no such secret",
               errno.ENOENT)] >= 2 * n
    assert set(k[0] for k in by) == {"lookup_denied"}
