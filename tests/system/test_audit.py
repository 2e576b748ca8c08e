"""The tamper-evident audit trail through a real mount.

Exact records for concurrent readers of several uids (allowed opens,
lookups denied by a rule and by default), a denied open that skips the
lookup (through /proc/PID/fd), fail closed on a full disk and recovery
without a torn line, SIGHUP after logrotate's mv, tampering caught by
`secretsfs audit verify` (edited, removed, inserted, reordered, truncated,
another key, and records cut from the head or the tail, the tail checked
against the running daemon's last record with -c and against --to),
`secretsfs audit show`, the stdout copy of the trail, no value or key in
the trail or the log, and "on_failure": "allow".

Run: cd /work/main && SECRETSFS_BIN=BUILD/fuse/secretsfs /usr/bin/python3 -m pytest -q \
         tests/system/test_audit.py
"""
import collections
import errno
import hashlib
import json
import os
import secrets
import signal
import stat
import subprocess
import threading
import time
from datetime import datetime, timezone

import pytest

from conftest import binary, require_fuse, run_as, write_private

# Fresh, distinctive values: a grep for one of them means something.
VALUES = {
    "db": ("db-" + secrets.token_hex(16)).encode(),
    "api": ("api-" + secrets.token_hex(16)).encode(),
    "admin": ("admin-" + secrets.token_hex(16)).encode(),
    "payroll": ("payroll-" + secrets.token_hex(16)).encode(),
}
NAME_OF = {"db_password": "db", "api_token": "api", "admin_key": "admin",
           "payroll_key": "payroll"}

# uid 1000 may read admin_key; every host process may read db_password and
# api_token; admin_key is explicitly denied to everyone else; payroll_key is
# named by no rule (default deny).
RULES = [
    {"id": "ops-admin", "match": {"host": True, "uid": 1000},
     "allow": ["admin_key"]},
    {"id": "host-apps", "match": {"host": True},
     "allow": ["db_password", "api_token"], "deny": ["admin_key"]},
]


def make_key(tmp_path, name="audit.key"):
    key = os.urandom(32).hex()
    path = write_private(tmp_path / name, key + "\n")
    return path, key


def config(secrets_dir, audit_file, key_file, **audit):
    for ref, value in VALUES.items():
        (secrets_dir / ref).write_bytes(value)
    section = {"file": str(audit_file), "key_file": str(key_file)}
    section.update(audit)
    return {
        "backends": {"dev": {"type": "file", "dir": str(secrets_dir)}},
        "secrets": {name: {"backend": "dev", "ref": ref, "mode": "0444"}
                    for name, ref in NAME_OF.items()},
        "rules": RULES,
        "audit": section,
    }


def version_of(secrets_dir, ref):
    ns = os.stat(secrets_dir / ref).st_mtime_ns
    return "%d.%09d" % (ns // 10**9, ns % 10**9)


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data == b"" or data.endswith(b"\n"), "torn last line in %s" % path
    return [json.loads(l) for l in data.decode().splitlines()]


def lines(path):
    with open(path) as f:
        return f.read().splitlines()


def verify(key_file, *files, args=()):
    """audit verify -k: exit 0 clean to a confirmed end, 1 tampered, 2
    usage or I/O, 3 clean but the end unconfirmed."""
    return subprocess.run([binary(), "audit", "verify", "-k", str(key_file)]
                          + list(args) + [str(f) for f in files],
                          capture_output=True, text=True, timeout=60)


def verify_live(d, *files, args=()):
    """audit verify -c: the running daemon is asked for its last record."""
    return subprocess.run([binary(), "audit", "verify", "-c",
                           str(d.config_path)] + list(args)
                          + [str(f) for f in files],
                          capture_output=True, text=True, timeout=60)


def read_secret(d, name):
    fd = os.open(d.path(name), os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def open_errno(d, name):
    try:
        read_secret(d, name)
    except OSError as e:
        return e.errno
    return 0


def wait_for(pred, timeout=10, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def audit_setup(tmp_path, secrets_dir, audit_dir=None, **audit):
    audit_dir = audit_dir or tmp_path / "audit"
    audit_dir.mkdir(exist_ok=True, mode=0o700)
    key_file, key = make_key(tmp_path)
    audit_file = audit_dir / "audit.log"
    return config(secrets_dir, audit_file, key_file, **audit), audit_file, \
        key_file, key


@pytest.fixture
def small_fs(tmp_path):
    """A 64 KiB tmpfs for the audit file, to fill up. Requested before
    make_daemon so that it is torn down after the daemon has stopped."""
    require_fuse()
    d = tmp_path / "small"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700",
                    "tmpfs", str(d)], check=True)
    yield d
    if subprocess.run(["umount", str(d)]).returncode != 0:
        subprocess.run(["umount", "-l", str(d)], check=False)


def fill(directory):
    filler = directory / "filler"
    out = subprocess.run(["dd", "if=/dev/zero", "of=%s" % filler, "bs=1024"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "No space left on device" in out.stderr
    assert os.statvfs(directory).f_bavail == 0
    return filler


# --------------------------------------------------------------------------
# 1. Exact records for concurrent readers.

READER = r"""
import hashlib, json, os, sys
mnt, plan = sys.argv[1], json.loads(sys.argv[2])
out = {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(), "res": []}
for name, how, count in plan:
    path = os.path.join(mnt, name)
    for _ in range(count):
        try:
            if how == "open":
                fd = os.open(path, os.O_RDONLY)
            else:
                # "reopen": the lookup as uid 1000 (allowed), then an open
                # of the inode as root through /proc, which skips the lookup.
                os.setegid(1000)
                os.seteuid(1000)
                try:
                    pfd = os.open(path, os.O_PATH)
                finally:
                    os.seteuid(0)
                    os.setegid(0)
                try:
                    fd = os.open("/proc/self/fd/%d" % pfd, os.O_RDONLY)
                finally:
                    os.close(pfd)
            try:
                data = os.read(fd, 4096)
            finally:
                os.close(fd)
            out["res"].append([name, how, 0, hashlib.sha256(data).hexdigest()])
        except OSError as e:
            out["res"].append([name, how, e.errno, None])
print(json.dumps(out))
"""

# Each phase's readers run at the same time: (uid, gid, [[secret, how, n]]).
# Within a phase no name is both allowed to one reader and denied to
# another: a denied lookup of a name whose dentry an allowed reader has
# just made positive reaches us twice (the kernel's revalidation, then a
# fresh lookup), so its count would depend on timing.
PHASES = [
    [
        (0, 0, [["db_password", "open", 40], ["api_token", "open", 25],
                ["admin_key", "open", 5], ["payroll_key", "open", 3]]),
        (1000, 1000, [["db_password", "open", 30],
                      ["payroll_key", "open", 4]]),
        (1001, 1001, [["api_token", "open", 20], ["admin_key", "open", 6]]),
        (1002, 1003, [["db_password", "open", 15], ["api_token", "open", 5],
                      ["admin_key", "open", 2], ["payroll_key", "open", 2]]),
    ],
    [
        (1000, 1000, [["admin_key", "open", 10], ["db_password", "open", 3]]),
        (1001, 1001, [["db_password", "open", 7]]),
    ],
]


def expected_result(uid, name, how):
    """(errno the reader sees, event, outcome, errno recorded, rule)."""
    assert how == "open"
    if name in ("db_password", "api_token"):
        return 0, "access", "allow", 0, "host-apps"
    if name == "admin_key":
        if uid == 1000:
            return 0, "access", "allow", 0, "ops-admin"
        return errno.ENOENT, "lookup_denied", "deny", errno.ENOENT, "host-apps"
    return errno.ENOENT, "lookup_denied", "deny", errno.ENOENT, "default-deny"


def run_readers(d, readers):
    """Run the readers at the same time; returns their parsed reports."""
    outs = [None] * len(readers)

    def reader(i, uid, gid, plan):
        outs[i] = run_as(uid, gid, ["/usr/bin/python3", "-c", READER,
                                    d.mountpoint, json.dumps(plan)],
                         timeout=120)

    threads = [threading.Thread(target=reader, args=(i,) + r)
               for i, r in enumerate(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reports = []
    for (uid, gid, plan), out in zip(readers, outs):
        assert out.returncode == 0, out.stderr.decode()
        res = json.loads(out.stdout)
        assert (res["uid"], res["gid"]) == (uid, gid)
        assert len(res["res"]) == sum(n for _, _, n in plan)
        reports.append(res)
    return reports


def record_key(r):
    return (r["event"], r["pid"], r["uid"], r["gid"], r["secret"],
            r["outcome"], r["errno"], r["rule"], r["version"])


def test_concurrent_readers_exact_records(make_daemon, secrets_dir, tmp_path):
    cfg, audit_file, key_file, _ = audit_setup(tmp_path, secrets_dir)
    d = make_daemon(cfg)
    digests = {name: hashlib.sha256(VALUES[ref]).hexdigest()
               for name, ref in NAME_OF.items()}
    want = collections.Counter()
    pids = set()
    t0 = datetime.now(timezone.utc)
    for readers in PHASES:
        for (uid, gid, _), res in zip(readers, run_readers(d, readers)):
            pids.add(res["pid"])
            for name, how, err, digest in res["res"]:
                got_err, event, outcome, rec_err, rule = \
                    expected_result(uid, name, how)
                assert err == got_err, (uid, name, how)
                if err == 0:
                    assert digest == digests[name]
                version = (version_of(secrets_dir, NAME_OF[name])
                           if outcome == "allow" else None)
                want[(event, res["pid"], uid, gid, name, outcome, rec_err,
                      rule, version)] += 1
    t1 = datetime.now(timezone.utc)
    assert len(pids) == sum(len(p) for p in PHASES)

    assert d.stop() == 0
    recs = records(audit_file)
    got = collections.Counter()
    for r in recs:
        if r["event"] not in ("access", "lookup_denied"):
            continue
        got[record_key(r)] += 1
        assert r["backend"] == "dev"
        assert r["ref"] == NAME_OF[r["secret"]]
        assert r["comm"] == "python3"
        assert r["container"] is None
        when = datetime.strptime(r["time"], "%Y-%m-%dT%H:%M:%S.%fZ") \
            .replace(tzinfo=timezone.utc)
        assert t0 <= when <= t1
    assert got == want
    # 155 opens allowed, 22 refused at the lookup. (The kernel checks the
    # name, then the attributes, before it opens: a denied caller is
    # stopped at the lookup, so no "access" record says "deny" here.)
    assert sum(n for k, n in want.items() if k[0] == "access") == 155
    assert sum(n for k, n in want.items() if k[0] == "lookup_denied") == 22
    # Nothing else: the start record, the accesses, the stop record.
    assert [r["event"] for r in recs[:1] + recs[-1:]] == ["start", "stop"]
    assert len(recs) == 155 + 22 + 2
    # One chain: seq 1..N, each prev the mac before it.
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    assert recs[0]["prev"] == "0" * 64
    for a, b in zip(recs, recs[1:]):
        assert b["prev"] == a["mac"]
    v = verify(key_file, audit_file)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "OK: %d records verified in 1 file" % len(recs) in v.stdout
    assert stat.S_IMODE(os.stat(audit_file).st_mode) == 0o600


def test_denied_open_that_skips_the_lookup_is_audited(make_daemon,
                                                      secrets_dir, tmp_path):
    cfg, audit_file, _, _ = audit_setup(tmp_path, secrets_dir)
    d = make_daemon(cfg)
    res, = run_readers(d, [(0, 0, [["admin_key", "reopen", 3]])])
    assert [r[2] for r in res["res"]] == [errno.ENOENT] * 3
    assert d.stop() == 0
    mine = [r for r in records(audit_file) if r.get("pid") == res["pid"]]
    assert len(mine) == 3
    for r in mine:
        assert (r["secret"], r["uid"], r["outcome"], r["errno"], r["rule"]) \
            == ("admin_key", 0, "deny", errno.ENOENT, "host-apps")


# --------------------------------------------------------------------------
# 2. A full audit filesystem: fail closed, recover, no torn line.

def test_full_audit_fs_fails_closed_and_recovers(small_fs, make_daemon,
                                                 secrets_dir, tmp_path):
    cfg, audit_file, key_file, _ = audit_setup(tmp_path, secrets_dir,
                                               audit_dir=small_fs)
    d = make_daemon(cfg)
    assert read_secret(d, "db_password") == VALUES["db"]
    filler = fill(small_fs)

    # The file's last page may still have room for a few records; after
    # that every open fails, and stays failing.
    outcomes = []
    for _ in range(40):
        outcomes.append(open_errno(d, "db_password"))
        if outcomes[-5:] == [errno.EIO] * 5:
            break
    ok = outcomes.count(0)
    assert outcomes == [0] * ok + [errno.EIO] * (len(outcomes) - ok)
    assert ok <= 4096 // 300 and len(outcomes) - ok >= 5
    # A denied name is refused with EIO too: its denial cannot be recorded.
    assert open_errno(d, "payroll_key") == errno.EIO
    log = d.log()
    assert log.count("audit: cannot write the access record: No space left "
                     "on device; refusing the access") == len(outcomes) - ok
    assert log.count("audit: cannot write the lookup_denied record: No space "
                     "left on device; refusing the access") == 1
    # Nothing half-written, and what is there verifies.
    recs = records(audit_file)
    assert [r["event"] for r in recs] == ["start"] + ["access"] * (1 + ok)
    # The daemon runs: its last record confirms the end of the file.
    v = verify_live(d, audit_file)
    assert v.returncode == 0, v.stdout + v.stderr
    assert ("end: the running daemon's last record, seq %d, is in the files"
            % recs[-1]["seq"]) in v.stdout

    os.unlink(filler)
    for _ in range(3):
        assert read_secret(d, "db_password") == VALUES["db"]
    assert open_errno(d, "payroll_key") == errno.ENOENT
    assert d.stop() == 0
    recs = records(audit_file)
    assert [r["event"] for r in recs] == \
        ["start"] + ["access"] * (4 + ok) + ["lookup_denied", "stop"]
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    v = verify(key_file, audit_file)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "OK: %d records verified" % len(recs) in v.stdout


# --------------------------------------------------------------------------
# 3. SIGHUP after logrotate's mv.

def test_sighup_after_mv_continues_the_chain_in_a_new_file(
        make_daemon, secrets_dir, tmp_path):
    cfg, audit_file, key_file, _ = audit_setup(tmp_path, secrets_dir)
    d = make_daemon(cfg)
    for _ in range(2):
        assert read_secret(d, "db_password") == VALUES["db"]
    # A SIGHUP with the file in place changes nothing.
    os.kill(d.pid, signal.SIGHUP)
    assert wait_for(lambda: d.log().count("audit: reopened") == 1), d.log()
    assert read_secret(d, "api_token") == VALUES["api"]
    assert os.listdir(audit_file.parent) == ["audit.log"]

    old = audit_file.parent / "audit.log.1"
    os.rename(audit_file, old)
    # Until SIGHUP, records follow the moved file.
    assert read_secret(d, "db_password") == VALUES["db"]
    assert not audit_file.exists()
    os.kill(d.pid, signal.SIGHUP)
    assert wait_for(lambda: d.log().count("audit: reopened") == 2), d.log()
    st = os.stat(audit_file)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size == 0
    assert read_secret(d, "api_token") == VALUES["api"]
    assert open_errno(d, "payroll_key") == errno.ENOENT
    assert d.stop() == 0

    old_recs, new_recs = records(old), records(audit_file)
    assert [(r["event"], r.get("secret")) for r in old_recs] == [
        ("start", None), ("access", "db_password"), ("access", "db_password"),
        ("access", "api_token"), ("access", "db_password")]
    assert [(r["event"], r.get("secret")) for r in new_recs] == [
        ("access", "api_token"), ("lookup_denied", "payroll_key"),
        ("stop", None)]
    assert new_recs[0]["seq"] == old_recs[-1]["seq"] + 1
    assert new_recs[0]["prev"] == old_recs[-1]["mac"]

    total = len(old_recs) + len(new_recs)
    for files in ((old, audit_file), (audit_file, old)):
        v = verify(key_file, *files)
        assert v.returncode == 0, v.stdout + v.stderr
        assert "OK: %d records verified in 2 files" % total in v.stdout
        assert "seq 1..%d" % total in v.stdout
        assert 'end: a "stop" record' in v.stdout
    # The new file alone has lost the head of the chain...
    first = new_recs[0]["seq"]
    v = verify(key_file, audit_file)
    assert v.returncode == 1, v.stdout + v.stderr
    assert ("%s:1: head-removed: the chain starts at seq %d, not 1: records "
            "1..%d are missing before it" % (audit_file, first, first - 1)) \
        in v.stdout
    # ...unless the old file went by retention, which --from says.
    v = verify(key_file, audit_file, args=["--from", str(first)])
    assert v.returncode == 0, v.stdout + v.stderr
    assert "OK: %d records verified in 1 file" % len(new_recs) in v.stdout
    for word in ("edited", "removed", "inserted", "reordered", "truncated"):
        assert word not in v.stdout


# --------------------------------------------------------------------------
# 4. Tampering.

@pytest.fixture
def trail(make_daemon, secrets_dir, tmp_path):
    """A stopped daemon's trail: start, accesses and denials, stop."""
    cfg, audit_file, key_file, key = audit_setup(tmp_path, secrets_dir)
    d = make_daemon(cfg)
    for name in ("db_password", "api_token", "db_password", "payroll_key",
                 "admin_key", "api_token", "db_password"):
        open_errno(d, name)
    assert d.stop() == 0
    return d, audit_file, key_file, key


def tampered(tmp_path, audit_file, name, edit):
    ls = lines(audit_file)
    edit(ls)
    path = tmp_path / name
    path.write_text("".join(l + "\n" for l in ls))
    return path


def test_tampering_is_detected_by_the_cli(trail, tmp_path):
    _, audit_file, key_file, _ = trail
    v = verify(key_file, audit_file)
    assert v.returncode == 0, v.stdout
    ls = lines(audit_file)
    assert len(ls) == 9
    # Line 5 is the denied payroll_key lookup.
    assert json.loads(ls[4])["event"] == "lookup_denied"

    def edit(ls):
        assert '"outcome":"deny"' in ls[4]
        ls[4] = ls[4].replace('"outcome":"deny"', '"outcome":"allow"')
    f = tampered(tmp_path, audit_file, "edited.log", edit)
    v = verify(key_file, f)
    assert v.returncode == 1
    assert "%s:5: edited: record seq 5 does not match its mac" % f in v.stdout
    assert "4 records verified before it" in v.stdout

    f = tampered(tmp_path, audit_file, "removed.log", lambda ls: ls.pop(3))
    v = verify(key_file, f)
    assert v.returncode == 1
    assert "%s:4: removed: expected seq 4, found seq 5" % f in v.stdout

    # A replayed copy of record 2 after record 6.
    f = tampered(tmp_path, audit_file, "inserted.log",
                 lambda ls: ls.insert(6, ls[1]))
    v = verify(key_file, f)
    assert v.returncode == 1
    assert ("%s:7: inserted: seq 2 repeats (expected 7): a copy of an "
            "earlier record" % f) in v.stdout
    assert "6 records verified before it" in v.stdout

    def swap(ls):
        ls[2], ls[3] = ls[3], ls[2]
    f = tampered(tmp_path, audit_file, "reordered.log", swap)
    v = verify(key_file, f)
    assert v.returncode == 1
    assert "%s:3: reordered:" % f in v.stdout

    f = tmp_path / "truncated.log"
    data = audit_file.read_bytes()
    f.write_bytes(data[:-40])
    v = verify(key_file, f)
    assert v.returncode == 1
    assert "%s:9: truncated:" % f in v.stdout

    other, _ = make_key(tmp_path, "other.key")
    v = verify(other, audit_file)
    assert v.returncode == 1
    assert "%s:1: foreign-key:" % audit_file in v.stdout

    # The first record deleted: the chain no longer starts at its genesis.
    f = tampered(tmp_path, audit_file, "head.log", lambda ls: ls.pop(0))
    v = verify(key_file, f)
    assert v.returncode == 1
    assert ("%s:1: head-removed: the chain starts at seq 2, not 1: records "
            "1..1 are missing before it" % f) in v.stdout
    assert "OK" not in v.stdout

    # The last two records deleted (the stop record among them): the chain
    # holds, so the end is unconfirmed: not OK, and not 0...
    def cut(ls):
        del ls[-2:]
    f = tampered(tmp_path, audit_file, "tail.log", cut)
    v = verify(key_file, f)
    assert v.returncode == 3, v.stdout + v.stderr
    assert "UNCONFIRMED END: 7 records verified in 1 file" in v.stdout
    assert "-c CONFIG" in v.stdout and "--to SEQ" in v.stdout
    assert "OK" not in v.stdout
    # ...and --to with the last seq shows the cut.
    v = verify(key_file, f, args=["--to", "9"])
    assert v.returncode == 1
    assert ("%s:7: tail-removed: the chain ends at seq 7, not 9 (--to): "
            "records 8..9 are missing from its end" % f) in v.stdout
    v = verify(key_file, audit_file, args=["--to", "9"])
    assert v.returncode == 0, v.stdout
    assert "end: seq 9, as --to says" in v.stdout


def test_tail_checked_against_the_running_daemon(make_daemon, secrets_dir,
                                                 tmp_path):
    """With -c and the daemon running, verify asks it for its last record
    before it reads the files: records cut from the end of the current file
    show, although the chain alone cannot see them."""
    cfg, audit_file, key_file, _ = audit_setup(tmp_path, secrets_dir)
    d = make_daemon(cfg)
    for name in ("db_password", "api_token", "payroll_key", "db_password"):
        open_errno(d, name)
    recs = records(audit_file)
    assert [r["event"] for r in recs] == \
        ["start", "access", "access", "lookup_denied", "access"]
    head = subprocess.run([binary(), "status", "--json", "-c",
                           str(d.config_path)], capture_output=True,
                          text=True, timeout=30)
    assert head.returncode == 0, head.stderr
    assert json.loads(head.stdout)["audit"]["seq"] == recs[-1]["seq"]
    assert json.loads(head.stdout)["audit"]["mac"] == recs[-1]["mac"]

    v = verify_live(d, audit_file)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "the daemon's last record is seq 5" in v.stderr
    assert "end: the running daemon's last record, seq 5" in v.stdout
    # Without the daemon's word the same file's end is unconfirmed.
    v = verify(key_file, audit_file)
    assert v.returncode == 3, v.stdout + v.stderr

    # The same trail with its last two records cut away.
    def cut(ls):
        del ls[-2:]
    f = tampered(tmp_path, audit_file, "cut.log", cut)
    v = verify_live(d, f)
    assert v.returncode == 1, v.stdout + v.stderr
    assert ("%s:3: tail-removed: the chain ends at seq 3, but the daemon's "
            "last record is seq 5: records 4..5 are missing from its end"
            % f) in v.stdout
    v = verify(key_file, f, args=["--to", "5"])
    assert v.returncode == 1
    assert "%s:3: tail-removed:" % f in v.stdout

    # A record the daemon writes after the question only adds to the file.
    assert read_secret(d, "api_token") == VALUES["api"]
    v = verify_live(d, audit_file)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "the daemon's last record is seq 6" in v.stderr

    # Stopped: the daemon no longer answers, and the stop record is the end.
    assert d.stop() == 0
    v = verify_live(d, audit_file)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "the end of the trail is judged from the files alone" in v.stderr
    assert 'end: a "stop" record' in v.stdout
    # Bad usage is 2, not a verdict on the trail.
    v = verify(key_file, audit_file, args=["--to", "0"])
    assert v.returncode == 2
    v = verify(key_file, tmp_path / "no-such.log")
    assert v.returncode == 2


def test_stdout_carries_the_same_records_as_the_file(make_daemon, secrets_dir,
                                                    tmp_path):
    """"stdout": true with -f: the daemon's stdout (kept apart from its log,
    which goes to stderr) is the trail, line for line, mac for mac."""
    cfg, audit_file, key_file, _ = audit_setup(tmp_path, secrets_dir,
                                               stdout=True)
    d = make_daemon(cfg, start=False)
    out_path = tmp_path / "daemon.stdout"
    with open(out_path, "wb") as out:
        d.logf = open(d.log_path, "ab")
        d.proc = subprocess.Popen(
            [binary(), "mount", "-f", "-c", str(d.config_path)],
            stdout=out, stderr=d.logf, stdin=subprocess.DEVNULL)
    d.wait_mounted()
    assert read_secret(d, "db_password") == VALUES["db"]
    assert open_errno(d, "payroll_key") == errno.ENOENT
    ok = run_as(1000, 1000, ["cat", d.path("admin_key")])
    assert ok.returncode == 0 and ok.stdout == VALUES["admin"]
    os.kill(d.pid, signal.SIGHUP)
    assert wait_for(lambda: "audit: reopened" in d.log()), d.log()
    assert read_secret(d, "api_token") == VALUES["api"]
    assert d.stop() == 0

    file_lines = lines(audit_file)
    out_lines = out_path.read_text().splitlines()
    assert [json.loads(l)["event"] for l in file_lines] == \
        ["start", "access", "lookup_denied", "access", "access", "stop"]
    assert out_lines == file_lines
    # The copy is a whole chain of its own, for a collector to verify.
    v = verify(key_file, out_path)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "OK: 6 records verified" in v.stdout
    for blob in (out_path.read_bytes(), d.log().encode()):
        for value in VALUES.values():
            assert value not in blob


# --------------------------------------------------------------------------
# 5. audit show.

def test_show_table_and_json_filter(trail, secrets_dir):
    d, audit_file, _, _ = trail
    out = subprocess.run([binary(), "audit", "show", str(audit_file)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    assert rows[0].split() == ["TIME", "EVENT", "OUTCOME", "SECRET", "VERSION",
                               "PID", "UID", "CONTAINER", "RULE"]
    recs = records(audit_file)
    assert len(rows) == 1 + len(recs)
    for row, r in zip(rows[1:], recs):
        cols = row.split()
        assert cols[0] == r["time"] and cols[1] == r["event"]
        if r["event"] in ("access", "lookup_denied"):
            assert cols[2] == r["outcome"] and cols[3] == r["secret"]
            assert cols[-1] == r["rule"]
    allowed = [row for row in rows if " access " in row and "db_password" in row]
    assert len(allowed) == 3
    for row in allowed:
        assert version_of(secrets_dir, "db") in row and "host-apps" in row
    assert sum("payroll_key" in row and "default-deny" in row
               for row in rows) == 1

    for glob, names in (("db_password", {"db_password"}),
                        ("*_key", {"payroll_key", "admin_key"})):
        out = subprocess.run([binary(), "audit", "show", "--json", "--secret",
                              glob, str(audit_file)],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        want = [l for l in lines(audit_file)
                if json.loads(l).get("secret") in names]
        assert want and out.stdout.splitlines() == want


# --------------------------------------------------------------------------
# 6. No value or key in the trail or the log.

def test_no_value_or_key_in_trail_or_log(make_daemon, secrets_dir, tmp_path):
    cfg, audit_file, key_file, key = audit_setup(tmp_path, secrets_dir)
    d = make_daemon(cfg)
    for name, ref in NAME_OF.items():
        got = open_errno(d, name)
        if name in ("db_password", "api_token"):
            assert got == 0 and read_secret(d, name) == VALUES[ref]
        else:
            assert got == errno.ENOENT
    ok = run_as(1000, 1000, ["cat", d.path("admin_key")])
    assert ok.returncode == 0 and ok.stdout == VALUES["admin"]
    assert d.stop() == 0
    recs = records(audit_file)
    assert sum(r["event"] == "access" and r["outcome"] == "allow"
               for r in recs) == 5
    trail_bytes = audit_file.read_bytes()
    log_bytes = d.log().encode()
    show = subprocess.run([binary(), "audit", "show", "--json",
                           str(audit_file)], capture_output=True, timeout=30)
    v = verify(key_file, audit_file)
    assert v.returncode == 0
    for blob in (trail_bytes, log_bytes, show.stdout, v.stdout.encode()):
        for value in VALUES.values():
            assert value not in blob
        assert key.encode() not in blob
        assert bytes.fromhex(key) not in blob


# --------------------------------------------------------------------------
# 7. on_failure: allow.

def test_on_failure_allow_serves_and_logs(small_fs, make_daemon, secrets_dir,
                                          tmp_path):
    cfg, audit_file, key_file, _ = audit_setup(tmp_path, secrets_dir,
                                               audit_dir=small_fs,
                                               on_failure="allow")
    d = make_daemon(cfg)
    assert read_secret(d, "db_password") == VALUES["db"]
    filler = fill(small_fs)
    n = 20
    for _ in range(n):
        assert read_secret(d, "db_password") == VALUES["db"]
    # A denial that cannot be recorded is still a denial.
    assert open_errno(d, "payroll_key") == errno.ENOENT
    recorded = sum(r["event"] == "access" for r in records(audit_file)) - 1
    assert recorded <= 4096 // 300
    log = d.log()
    lost = log.count("audit: cannot write the access record: No space left "
                     "on device (allowed by on_failure)")
    assert lost == n - recorded and lost >= 5
    assert log.count("audit: cannot write the lookup_denied record: No "
                     "space left on device (allowed by on_failure)") == 1
    assert "refusing the access" not in log

    os.unlink(filler)
    assert read_secret(d, "api_token") == VALUES["api"]
    assert d.stop() == 0
    recs = records(audit_file)
    assert [r["event"] for r in recs[-2:]] == ["access", "stop"]
    assert recs[-2]["secret"] == "api_token"
    v = verify(key_file, audit_file)
    assert v.returncode == 0, v.stdout + v.stderr


def test_rotation_is_logged_and_audited(make_daemon, secrets_dir, tmp_path):
    """A value that changes in the backend is a new version: one rotate
    record with both versions, and a log line, never the values."""
    key_file = tmp_path / "audit.key"
    key_file.write_text(os.urandom(32).hex())
    os.chmod(key_file, 0o600)
    audit_file = tmp_path / "audit" / "audit.log"
    audit_file.parent.mkdir()
    (secrets_dir / "r").write_bytes(b"first-value")
    d = make_daemon({
        "backends": {"dev": {"type": "file", "dir": str(secrets_dir)}},
        "secrets": {"r": {"backend": "dev", "refresh": "1s"}},
        "rules": [{"match": {"host": True}, "allow": ["*"]}],
        "audit": {"file": str(audit_file), "key_file": str(key_file)},
    })
    with open(d.path("r"), "rb") as f:
        assert f.read() == b"first-value"
    old = os.getxattr(d.path("r"), "user.secretsfs.version").decode()
    time.sleep(0.05)
    (secrets_dir / "r").write_bytes(b"second-value")
    deadline = time.monotonic() + 5
    while True:
        with open(d.path("r"), "rb") as f:
            if f.read() == b"second-value":
                break
        assert time.monotonic() < deadline, "new value never served"
        time.sleep(0.2)
    new = os.getxattr(d.path("r"), "user.secretsfs.version").decode()
    assert new != old
    assert d.stop() == 0
    rot = [r for r in records(audit_file) if r["event"] == "rotate"]
    assert len(rot) == 1
    assert (rot[0]["secret"], rot[0]["old_version"], rot[0]["new_version"]) \
        == ("r", old, new)
    assert "secret r: new version %s (was %s)" % (new, old) in d.log()
    text = audit_file.read_bytes() + d.log().encode()
    assert b"first-value" not in text and b"second-value" not in text
