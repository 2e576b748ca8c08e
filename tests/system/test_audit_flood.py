"""Denials that cannot flood the trail: one denied container doing tens of
thousands of lookups writes at most audit.denied_per_caller records per
interval in full plus one summary per interval, while an allowed container
reading at the same time loses no record and no read; and below the disk
reserve the allowed reads still succeed.
"""
import errno
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import need, require_fuse
from containers import FakeCgroups, cgroup2_mount, hex64
from test_access import audit_records, config

VALUES = {"ok_token": b"allowed-0a1b2c", "hidden": b"hidden-9f8e7d"}

# Joins its cgroup, waits for "go", then stats or reads `name` until
# `count` requests or `secs` seconds are done; prints what it got.
WORKER = r"""
import json, os, sys, time
procs, path, mode, count, secs = sys.argv[1:6]
count, secs = int(count), float(secs)
with open(procs, "w") as f:
    f.write(str(os.getpid()))
print("ready", flush=True)
sys.stdin.readline()
res = {"ok": 0, "errs": {}, "n": 0}
end = time.monotonic() + secs
while res["n"] < count and time.monotonic() < end:
    res["n"] += 1
    try:
        if mode == "stat":
            os.stat(path)
        else:
            with open(path, "rb") as f:
                f.read()
        res["ok"] += 1
    except OSError as e:
        res["errs"][e.errno] = res["errs"].get(e.errno, 0) + 1
print(json.dumps(res), flush=True)
"""


class Worker:
    def __init__(self, cgroup_dir, path, mode, count, secs):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER,
             os.path.join(cgroup_dir, "cgroup.procs"), path, mode,
             str(count), str(secs)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"
        self.pid = self.proc.pid

    def go(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def result(self):
        out = json.loads(self.proc.stdout.readline())
        self.proc.wait(30)
        return out


@pytest.fixture
def cgroups():
    require_fuse()
    need(cgroup2_mount() is not None, "no cgroup2 hierarchy is mounted")
    cg = FakeCgroups()
    yield cg
    cg.remove()


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs for the audit file."""
    require_fuse()
    d = tmp_path / "small"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700",
                    "tmpfs", str(d)], check=True)
    yield d
    if subprocess.run(["umount", str(d)]).returncode != 0:
        subprocess.run(["umount", "-l", str(d)], check=False)


def flood_config(secrets_dir, tmp_path, allowed_id, audit_dir=None,
                 **audit):
    rules = [{"id": "reader", "match": {"container_id": allowed_id},
              "allow": ["ok_token"]}]
    cfg = config(secrets_dir, tmp_path, rules, values=VALUES)
    if audit_dir is not None:
        cfg["audit"]["file"] = str(audit_dir / "audit.log")
    cfg["audit"].update(audit)
    return cfg


def records_of(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def test_denied_flood_is_summarised_and_allowed_reads_lose_nothing(
        make_daemon, secrets_dir, tmp_path, cgroups):
    bad, good = hex64(), hex64()
    limit, interval = 50, 1.0
    d = make_daemon(flood_config(secrets_dir, tmp_path, good,
                                 denied_per_caller=limit,
                                 denied_interval="1s"))
    flooder = Worker(cgroups.make("system.slice/docker-%s.scope" % bad),
                     d.path("hidden"), "stat", 60000, 6.0)
    reader = Worker(cgroups.make("system.slice/docker-%s.scope" % good),
                    d.path("ok_token"), "read", 1500, 30.0)
    t0 = time.monotonic()
    flooder.go()
    reader.go()
    flood = flooder.result()
    elapsed = time.monotonic() - t0
    got = reader.result()
    assert d.stop() == 0

    # Every denied request failed as a missing name does.
    assert flood["ok"] == 0 and flood["errs"] == {str(errno.ENOENT):
                                                  flood["n"]}, flood
    assert flood["n"] >= 10000, flood  # a flood, even on a loaded machine
    # The allowed reader lost no read ...
    assert got == {"ok": 1500, "errs": {}, "n": 1500}, got

    recs = audit_records(tmp_path)
    mine = [r for r in recs if (r.get("container") or {}).get("id") == bad]
    full = [r for r in mine if r["event"] == "lookup_denied"]
    summ = [r for r in mine if r["event"] == "denied_summary"]
    # ... and no record: one allowed access per read.
    allowed = [r for r in recs if r["event"] == "access" and
               (r.get("container") or {}).get("id") == good]
    assert len(allowed) == 1500
    assert all(r["outcome"] == "allow" and r["secret"] == "ok_token"
               for r in allowed)
    # At most `limit` in full per interval begun, and one summary each.
    intervals = int(elapsed / interval) + 2
    assert len(full) <= limit * intervals, (len(full), elapsed)
    assert 1 <= len(summ) <= intervals, (len(summ), elapsed)
    for s in summ:
        assert s["outcome"] == "deny"
        assert s["count"] > 0
        assert s["names_hash"].startswith("fnv1a64:")
        assert s["reason"] == "denied records over the per-caller limit"
        assert s["cgroup"].endswith("docker-%s.scope" % bad)
    # Nothing lost: every lookup the daemon saw is in full or in a count
    # (the kernel sends at least one LOOKUP per stat).
    assert len(full) + sum(s["count"] for s in summ) >= flood["n"]
    # The same names give the same hash: one name, one hash per count...
    # so two summaries of the same count agree.
    by_count = {}
    for s in summ:
        by_count.setdefault(s["count"], set()).add(s["names_hash"])
    assert all(len(h) == 1 for h in by_count.values()), by_count
    # What was written still verifies.
    from test_audit import verify
    v = verify(str(tmp_path / "audit.key"), str(tmp_path / "audit.log"))
    assert v.returncode == 0, v.stdout + v.stderr


def test_reserve_keeps_allowed_reads_working(make_daemon, secrets_dir,
                                             tmp_path, cgroups, small_fs):
    bad, good = hex64(), hex64()
    # No per-caller limit at all: only the reserve stands between the flood
    # and a full file system.
    d = make_daemon(flood_config(secrets_dir, tmp_path, good,
                                 audit_dir=small_fs, denied_per_caller=0,
                                 reserve="3MiB"))
    assert os.statvfs(small_fs).f_bavail * os.statvfs(small_fs).f_frsize \
        > 3 * 1024 * 1024
    # Leave a little under the reserve free: 3 MiB minus 256 KiB.
    free = os.statvfs(small_fs).f_bavail * os.statvfs(small_fs).f_frsize
    with open(small_fs / "filler", "wb") as f:
        f.write(b"\0" * (free - (3 * 1024 - 256) * 1024))
    flooder = Worker(cgroups.make("system.slice/docker-%s.scope" % bad),
                     d.path("hidden"), "stat", 20000, 10.0)
    flooder.go()
    flood = flooder.result()
    assert flood["errs"] == {str(errno.ENOENT): flood["n"]}, flood
    # 20,000 denied records would need ~13 MB; the file system has 4.
    reader = Worker(cgroups.make("system.slice/docker-%s.scope" % good),
                    d.path("ok_token"), "read", 200, 30.0)
    reader.go()
    got = reader.result()
    assert got == {"ok": 200, "errs": {}, "n": 200}, got
    assert d.stop() == 0

    recs = records_of(small_fs / "audit.log")
    full = [r for r in recs if r["event"] == "lookup_denied"]
    summ = [r for r in recs if r["event"] == "denied_summary"]
    # At most what the first 50 ms (the daemon's free-space check) let in.
    assert len(full) < 500, len(full)
    assert summ and all(s["reason"] == "audit disk reserve reached"
                        for s in summ), summ
    assert len(full) + sum(s["count"] for s in summ) >= flood["n"]
    allowed = [r for r in recs if r["event"] == "access"
               and r["outcome"] == "allow"]
    assert len(allowed) == 200
    assert recs[-1]["event"] == "stop"
