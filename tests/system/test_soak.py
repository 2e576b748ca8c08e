"""Sustained load: 64 readers in 8 made-up containers against the Vault backend while
every secret rotates every few seconds and the fake Vault fails 10 % of its requests.

Each container is a cgroup2 directory named as Docker names its scopes, under a slice
of this run's own (sfssoak-<pid>.slice, removed afterwards); its readers (soakread.c,
built here with cc: one process, 8 threads) move themselves into it, and the rules let
each container read only its own two secrets. Every value is self-checking
("v<N>:<payload>:<fnv1a-64>"), so a torn or mixed value cannot pass.

Asserted: no failed open or read (a cached value is served while refreshes fail), no
torn value, every container saw rotations, its neighbour's secret is ENOENT, the
audit trail has exactly one access record per open each container made and `secretsfs
audit verify` accepts it, and the daemon's VmRSS (growth < 2 MiB beyond 1.25 MiB
per FUSE worker thread the pool added; not under
AddressSanitizer, whose allocator owns RSS there) and fd count (< 8) are flat between the
sample after warm-up and the last one (sampled, never timed).

Short run (part of the suite): SOAK_SECONDS=60, the default. Long run:

    SOAK_SECONDS=3600 SOAK_PAUSE_MS=100 SECRETSFS_BIN=BUILD/fuse/secretsfs \\
        /usr/bin/python3 -m pytest -q tests/system/test_soak.py

SOAK_PAUSE_MS (default 20) is each reader's pause between opens: it bounds the audit
trail's growth (about 450 bytes per open).
"""
import errno
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time

import pytest

from conftest import binary, need, require_fuse, write_private
from containers import FakeCgroups, cgroup2_mount, hex64
from test_ops import HOST_RULE, vault_backend

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from vault_fixture import VaultFake, VaultFakeError, make_pki  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
PAUSE_MS = int(os.environ.get("SOAK_PAUSE_MS", "20"))
CONTAINERS, THREADS = 8, 8
ROTATE_EVERY = 2.0
FAIL_RATE = 0.1
RSS_SLACK_KIB = 2048
FD_SLACK = 8
# A FUSE worker thread brings a receive buffer of 1 MiB (libfuse's bufsize,
# FUSE_MAX_MAX_PAGES pages) and its stack: the pool grows on demand, up to
# its cap of 64, and each new thread is RSS that is not a leak.
PER_THREAD_KIB = 1280
MAX_THREADS = 96


def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h


def make_value(n):
    """Self-checking, and a different length for each version."""
    head = "v%d:%s" % (n, secrets.token_hex(64 + n % 37))
    return "%s:%016x" % (head, fnv1a(head.encode()))


def daemon_sample(pid):
    """VmRSS (KiB), open descriptors and threads of the daemon."""
    status = {}
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            k, _, v = ln.partition(":")
            status[k] = v.split()
    return (int(status["VmRSS"][0]), len(os.listdir("/proc/%d/fd" % pid)),
            int(status["Threads"][0]))


@pytest.fixture
def soak_cgroups():
    require_fuse()
    need(cgroup2_mount() is not None, "no cgroup2 hierarchy is mounted")
    cg = FakeCgroups()
    yield cg
    cg.remove()


@pytest.fixture(scope="module")
def soakread(tmp_path_factory):
    cc = shutil.which("cc")
    need(cc is not None, "no C compiler (cc)")
    out = tmp_path_factory.mktemp("soakread") / "soakread"
    subprocess.run([cc, "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread",
                    "-o", str(out), os.path.join(HERE, "soakread.c")], check=True)
    return str(out)


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    v = VaultFake.start(tmp_path_factory.mktemp("vault"), pki, quiet=True)
    yield v
    v.stop()


class Rotator(threading.Thread):
    """Writes a new version of every secret every ROTATE_EVERY seconds. The fake
    fails its writes too: a failed write is tried again."""

    def __init__(self, vault, refs):
        super().__init__(daemon=True)
        self.vault, self.refs = vault, refs
        self.version = {r: 1 for r in refs}
        self.stop_ev = threading.Event()
        self.rotations = 0
        self.error = None

    def put(self, ref, n):
        for _ in range(50):
            try:
                self.vault.kv_put("secret", ref, {"k": make_value(n)})
                return
            except VaultFakeError as e:
                if e.status != 500:
                    raise
        raise AssertionError("the fake refused 50 writes in a row")

    def run(self):
        try:
            while not self.stop_ev.wait(ROTATE_EVERY):
                for ref in self.refs:
                    self.version[ref] += 1
                    self.put(ref, self.version[ref])
                self.rotations += 1
        except Exception as e:     # reported by the test
            self.error = e


def asan_build():
    with open(binary(), "rb") as f:
        return b"__asan_init" in f.read()


def test_soak_64_readers_rotation_and_failing_backend(make_daemon, vault, soak_cgroups,
                                                      soakread, tmp_path):
    asan = asan_build()
    slice_ = "sfssoak-%d.slice" % os.getpid()
    ids = [hex64() for _ in range(CONTAINERS)]
    dirs = [soak_cgroups.make("%s/docker-%s.scope" % (slice_, i)) for i in ids]
    names = {i: ["c%d_a" % i, "c%d_b" % i] for i in range(CONTAINERS)}
    refs = {n: "soak/%s-%s" % (n, secrets.token_hex(3)) for ns in names.values()
            for n in ns}
    for ref in refs.values():
        vault.kv_put("secret", ref, {"k": make_value(1)})
    key = write_private(tmp_path / "audit.key", os.urandom(32).hex() + "\n")
    audit_file = tmp_path / "audit.log"
    rules = [{"id": "c%d" % i, "match": {"container_id": ids[i]}, "allow": names[i]}
             for i in range(CONTAINERS)] + [HOST_RULE]
    d = make_daemon({
        "backends": {"vault": vault_backend(vault)},
        "secrets": {n: {"backend": "vault", "ref": r, "field": "k", "refresh": "1s",
                        "mode": "0444"} for n, r in refs.items()},
        "rules": rules,
        "audit": {"file": str(audit_file), "key_file": str(key)}})
    # Cached before the faults start: from here on every read is of a cached value.
    for n in refs:
        with open(d.path(n), "rb") as f:
            assert f.read().startswith(b"v1:")

    vault.reset_stats()
    vault.faults(status={"code": 500, "rate": FAIL_RATE})
    rot = Rotator(vault, list(refs.values()))
    rot.start()
    procs = []
    samples = []
    try:
        for i in range(CONTAINERS):
            mine = [d.path(n) for n in names[i]]
            other = d.path(names[(i + 1) % CONTAINERS][0])
            p = subprocess.Popen([soakread, os.path.join(dirs[i], "cgroup.procs"),
                                  str(SECONDS), str(THREADS), str(PAUSE_MS), other] + mine,
                                 stdout=subprocess.PIPE, text=True)
            procs.append(p)
            assert p.stdout.readline() == "ready\n"
        t0 = time.monotonic()
        while any(p.poll() is None for p in procs):
            samples.append((time.monotonic() - t0, daemon_sample(d.pid)))
            time.sleep(1)
        results = [json.loads(p.stdout.read()) for p in procs]
        assert [p.wait() for p in procs] == [0] * CONTAINERS
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        rot.stop_ev.set()
        rot.join(30)
        vault.clear_faults()
    assert rot.error is None, rot.error
    st = vault.stats()

    # The backend really failed, and the secrets really rotated.
    assert st["faults"].get("status:500", 0) >= 10, st["faults"]
    assert rot.rotations >= SECONDS / ROTATE_EVERY / 2, rot.rotations
    for i, r in enumerate(results):
        assert r["open_errors"] == 0 and r["read_errors"] == 0, (i, r)
        assert r["torn"] == 0, (i, r)
        assert r["opens"] > 0, (i, r)
        assert r["denied_errno"] == errno.ENOENT, (i, r)
        # Every container saw new versions of both its secrets.
        assert min(r["max_version"]) >= 3, (i, r)
        assert max(r["max_version"]) <= max(rot.version.values()), (i, r)

    # One access record per open, per container; one denial each.
    assert d.stop() == 0
    allowed = {i: 0 for i in ids}
    denied = {i: set() for i in ids}
    own = {ids[i]: set(names[i]) for i in range(CONTAINERS)}
    with open(audit_file) as f:
        for line in f:
            rec = json.loads(line)
            c = rec.get("container")
            if not c or c.get("id") not in allowed:
                continue
            if rec["event"] == "access" and rec["outcome"] == "allow":
                assert rec["secret"] in own[c["id"]], rec
                allowed[c["id"]] += 1
            elif rec["event"] == "lookup_denied":
                denied[c["id"]].add(rec["secret"])
    assert [allowed[i] for i in ids] == [r["opens"] for r in results]
    # The kernel may look a refused name up more than once: one name each.
    assert [denied[ids[i]] for i in range(CONTAINERS)] == \
        [{names[(i + 1) % CONTAINERS][0]} for i in range(CONTAINERS)]
    v = subprocess.run([binary(), "audit", "verify", "-k", str(key), str(audit_file)],
                       capture_output=True, text=True, timeout=600)
    assert v.returncode == 0, v.stdout + v.stderr

    # Flat: the first sample after warm-up against the last.
    warm = max(5.0, SECONDS * 0.2)
    after = [s for t, s in samples if t >= warm]
    assert len(after) >= 2, samples
    (rss0, fd0, thr0), (rss1, fd1, thr1) = after[0], after[-1]
    assert max(t for _, _, t in after) <= MAX_THREADS, samples
    # Under AddressSanitizer RSS is its allocator's: freed memory waits in a
    # 256 MiB quarantine, and without one its bookkeeping still grows by some
    # MiB a minute. The normal build's run holds the daemon to the bound.
    if not asan:
        allowed = RSS_SLACK_KIB + max(0, thr1 - thr0) * PER_THREAD_KIB
        assert rss1 - rss0 < allowed, ("VmRSS grew", rss0, rss1, thr0, thr1,
                                       samples)
    assert fd1 - fd0 < FD_SLACK, ("fds grew", fd0, fd1, samples)
    total = sum(r["opens"] for r in results)
    print("soak: %.0f s, %d opens, %d rotations, %d injected 500s, VmRSS %d -> %d KiB, "
          "fds %d -> %d, threads %d -> %d"
          % (SECONDS, total, rot.rotations, st["faults"]["status:500"],
             rss0, rss1, fd0, fd1, thr0, thr1))
