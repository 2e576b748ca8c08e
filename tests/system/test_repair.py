"""Surviving a crash of the whole daemon: running containers get their
mount back without a restart.

When the daemon dies (kill -9), every container's bind of its mount answers
ENOTCONN for good; a new daemon mounting afresh on the host does not reach
those binds. The repair (broker/proc/repair.c) clones the new mount, enters each
container's mount namespace and puts the clone where the dead bind was.
It runs at start-up once the daemon serves (broker/proc/daemon.c), and on demand with
`secretsfs repair -c CONFIG`. These tests take whichever comes first: they
wait a few seconds for the daemon's own repair, then run the command; the
final checks are the same either way.

Real containers: Podman with runc and a busybox-only root filesystem, as in
test_access.py; names come from `podman system service`.
"""
import errno
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import binary, need, write_private
from containers import unique_name

VALUES = {
    "db_password": b"pay-db-7f3a9c0e",
    "stripe_key": b"sk_test_51Hc0ffee",
    "session_key": b"front-session-42aa",
    "report_token": b"reports-only-9d1e",
}
PAYMENT = {"db_password", "stripe_key"}
FRONTEND = {"session_key"}

AUTOMATIC_WAIT = 5      # seconds the daemon gets to repair on its own
READ_AGAIN_WAIT = 5     # seconds after `secretsfs repair`


def config(secrets_dir, workdir, rules, engine):
    for name, value in VALUES.items():
        (secrets_dir / name).write_bytes(value)
    write_private(workdir / "audit.key", os.urandom(32).hex() + "\n")
    return {
        "backends": {"dev": {"type": "file", "dir": str(secrets_dir)}},
        "secrets": {name: {"backend": "dev"} for name in VALUES},
        "rules": rules,
        "runtime": {"socket": engine.socket},
        "audit": {"file": str(workdir / "audit.log"),
                  "key_file": str(workdir / "audit.key"),
                  "flush_interval": 0},
    }


def two_apps(podman, d):
    """A payment service and a frontend bound to d's mount."""
    pay = podman.run(unique_name("payment"), d.mountpoint)
    front = podman.run(unique_name("frontend"), d.mountpoint)
    return pay, front


def rules_for(pay_name, front_name):
    return [
        {"id": "payment-api", "match": {"container_name": pay_name},
         "allow": sorted(PAYMENT)},
        {"id": "frontend", "match": {"container_name": front_name},
         "allow": sorted(FRONTEND)},
    ]


PROBE = r"""
for f in "$@"; do
  printf '@@begin %s\n' "$f"
  cat "/run/secrets/$f" 2>&1
  printf '\n@@end %s %d\n' "$f" "$?"
done
printf '@@ls\n'
ls -1 /run/secrets 2>&1
printf '@@lsrc %d\n' "$?"
"""


def probe(container):
    """({name: (rc, output)}, listing output, ls rc) inside the container."""
    r = container.exec(["/bin/sh", "-c", PROBE, "sh"] + sorted(VALUES))
    assert r.returncode == 0, r.stderr
    reads = {m.group(1): (int(m.group(3)), m.group(2))
             for m in re.finditer(r"@@begin (\S+)\n(.*?)\n@@end \1 (\d+)\n",
                                  r.stdout, re.S)}
    assert set(reads) == set(VALUES), r.stdout
    m = re.search(r"@@ls\n(.*)@@lsrc (\d+)\n", r.stdout, re.S)
    assert m, r.stdout
    return reads, m.group(1), int(m.group(2))


def sees_exactly(container, readable):
    """True when the container reads exactly `readable`, and lists them."""
    reads, listing, lsrc = probe(container)
    for name, value in VALUES.items():
        rc, out = reads[name]
        if name in readable:
            if (rc, out) != (0, value.decode()):
                return False
        elif rc == 0 or "No such file or directory" not in out:
            return False
    return lsrc == 0 and sorted(listing.split()) == sorted(readable)


def assert_sees_exactly(container, readable):
    reads, listing, lsrc = probe(container)
    for name, value in VALUES.items():
        rc, out = reads[name]
        if name in readable:
            assert (rc, out) == (0, value.decode()), (container.name, name, out)
        else:
            assert rc != 0, (container.name, name)
            assert "No such file or directory" in out, (container.name, out)
            assert value.decode() not in out
    assert lsrc == 0 and sorted(listing.split()) == sorted(readable), \
        (container.name, listing)


def assert_dead(container):
    """Every read and the listing fail with ENOTCONN."""
    reads, listing, lsrc = probe(container)
    for name, (rc, out) in reads.items():
        assert rc != 0 and "Transport endpoint is not connected" in out, \
            (container.name, name, out)
    assert lsrc != 0 and "Transport endpoint is not connected" in listing


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def restart(d):
    """Start d's daemon again, same config and mountpoint, fresh log."""
    if d.log_path.exists():
        os.replace(d.log_path, str(d.log_path) + ".before-crash")
    d.start()


def repair(d, *args):
    r = subprocess.run([binary(), "repair", "-c", str(d.config_path)]
                       + list(args), capture_output=True, text=True,
                       timeout=60)
    return r


def secretsfs_binds(pid):
    """Lines of /proc/<pid>/mountinfo for fuse.secretsfs mounts."""
    with open("/proc/%d/mountinfo" % pid) as f:
        return [l.split() for l in f if " - fuse.secretsfs " in l]


def mount_source(pid, mountpoint):
    """The source (fsname) of the secretsfs mount at mountpoint, as process
    pid sees it, or None."""
    real = os.path.realpath(mountpoint)
    src = None
    with open("/proc/%d/mountinfo" % pid) as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[4] == real and fields[sep + 1] == "fuse.secretsfs":
                src = fields[sep + 2].replace("\\040", " ")
    return src


def repair_wired(pid, mountpoint):
    """Whether the mount carries the name that lets a restarted daemon
    repair its binds: "secretsfs:<mountpoint>", not a plain "secretsfs"."""
    return mount_source(pid, mountpoint) == \
        "secretsfs:" + os.path.realpath(mountpoint)


def audit_records(workdir):
    with open(workdir / "audit.log") as f:
        return [json.loads(line) for line in f if line.strip()]


def bring_back(d, expect, vouch):
    """Wait for the daemon's own repair, else run `secretsfs repair` (plain,
    then vouching for the containers in `vouch`). Which one worked."""
    def all_read():
        return all(sees_exactly(c, readable) for c, readable in expect.items())

    if wait_for(all_read, AUTOMATIC_WAIT):
        return "automatic", None
    r = repair(d)
    assert r.returncode == 0, r.stdout + r.stderr
    if wait_for(all_read, 1):
        return "repair", r
    # Without a record tying these dead mounts to this mountpoint (older
    # daemons mount with the plain fsname "secretsfs") the plain scan
    # leaves them alone, and says so.
    assert "not known to be binds of this mount left alone" in r.stdout, \
        r.stdout + r.stderr
    # The first by pid, any others by name (through the engine).
    vouched = ["--pid", str(vouch[0].pid)]
    for c in vouch[1:]:
        vouched += ["--container", c.name]
    r = repair(d, *vouched)
    assert r.returncode == 0, r.stdout + r.stderr
    assert wait_for(all_read, READ_AGAIN_WAIT), r.stdout + r.stderr
    return "repair --pid", r


def test_containers_read_again_after_kill9(make_daemon, secrets_dir,
                                           tmp_path, podman, engine):
    pay_name, front_name = unique_name("payment"), unique_name("frontend")
    d = make_daemon(config(secrets_dir, tmp_path,
                           rules_for(pay_name, front_name), engine))
    pay = podman.run(pay_name, d.mountpoint)
    front = podman.run(front_name, d.mountpoint)
    expect = {pay: PAYMENT, front: FRONTEND}
    for c, readable in expect.items():
        assert_sees_exactly(c, readable)
    before = {c: secretsfs_binds(c.pid) for c in expect}

    d.kill9()
    for c in expect:
        assert_dead(c)
    t0 = time.monotonic()
    restart(d)

    how, out = bring_back(d, expect, [pay, front])
    took = time.monotonic() - t0
    print("containers read again %.1fs after the restart, by %s" % (took, how))
    assert took < 30
    # The daemon repairs at start: nothing else may be needed.
    assert repair_wired(os.getpid(), d.mountpoint)
    assert how == "automatic", d.log()
    assert took < AUTOMATIC_WAIT + 1

    # The same containers (no restart), each still seeing only its own.
    for c, readable in expect.items():
        info = subprocess.run(["podman", "inspect", "--format",
                               "{{.State.Pid}}", c.name], capture_output=True,
                              text=True, check=True)
        assert int(info.stdout) == c.pid
        assert_sees_exactly(c, readable)
        # A new mount in the dead one's place: read-only and inert.
        binds = secretsfs_binds(c.pid)
        assert len(binds) == 1, binds
        fields = binds[0]
        assert fields[4] == "/run/secrets"
        assert fields[2] != before[c][0][2], "same (dead) superblock"
        for opt in ("ro", "nosuid", "nodev", "noexec"):
            assert opt in fields[5].split(","), fields
        w = c.exec(["/bin/sh", "-c", "echo x > /run/secrets/db_password"])
        assert w.returncode != 0
        assert "Read-only file system" in w.stderr, w.stderr
    # The host sees the new mount, and nothing no rule gives it.
    assert os.listdir(d.mountpoint) == []

    if how == "automatic":
        log = d.log()
        for c in expect:
            assert re.search(r"repaired the dead mount at /run/secrets of "
                             r"process %d\b" % c.pid, log), log
        recs = [r for r in audit_records(tmp_path) if r["event"] == "repair"]
        by_container = {(r.get("container") or {}).get("id"): r for r in recs}
        for c in expect:
            rec = by_container.get(c.id)
            assert rec, recs
            assert rec["outcome"] == "ok" and rec["target"] == "/run/secrets"
        v = subprocess.run([binary(), "audit", "verify", "-c",
                            str(d.config_path), str(tmp_path / "audit.log")],
                           capture_output=True, text=True, timeout=30)
        assert v.returncode == 0, v.stdout + v.stderr
    else:
        for c in expect:
            assert re.search(r"repaired the dead mount at /run/secrets of "
                             r"process %d\b" % c.pid, out.stderr), out.stderr
        assert "repaired 2 of 2 dead mounts" in out.stdout, out.stdout
    # No value in anything the repair said.
    said = d.log() + ((out.stdout + out.stderr) if out else "")
    for value in VALUES.values():
        assert value.decode() not in said


def test_another_daemons_dead_mounts_are_left_alone(make_daemon, secrets_dir,
                                                    tmp_path, podman, engine):
    a_name, b_name = unique_name("a"), unique_name("b")
    rules = [{"id": "a", "match": {"container_name": a_name},
              "allow": sorted(PAYMENT)},
             {"id": "b", "match": {"container_name": b_name},
              "allow": sorted(FRONTEND)}]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    da = make_daemon(config(secrets_dir, tmp_path / "a", rules, engine),
                     workdir=tmp_path / "a")
    db = make_daemon(config(secrets_dir, tmp_path / "b", rules, engine),
                     workdir=tmp_path / "b")
    ca = podman.run(a_name, da.mountpoint)
    cb = podman.run(b_name, db.mountpoint)
    assert_sees_exactly(ca, PAYMENT)
    assert_sees_exactly(cb, FRONTEND)

    # B is gone for good; A crashes and comes back.
    db.kill9()
    da.kill9()
    restart(da)
    bring_back(da, {ca: PAYMENT}, [ca])
    assert_sees_exactly(ca, PAYMENT)

    # Even vouched for, B's container does not get A's mount: its dead
    # mount is B's (B's dead mount is still at B's mountpoint here).
    r = repair(da, "--pid", str(cb.pid))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "repaired 0 of 0 dead mounts" in r.stdout, r.stdout
    assert_dead(cb)
    assert_sees_exactly(ca, PAYMENT)


def test_repair_with_nothing_dead_changes_nothing(make_daemon, secrets_dir,
                                                  tmp_path, podman, engine):
    pay_name = unique_name("payment")
    d = make_daemon(config(secrets_dir, tmp_path, rules_for(pay_name, "-"),
                           engine))
    pay = podman.run(pay_name, d.mountpoint)
    before = secretsfs_binds(pay.pid)
    r = repair(d, "--pid", str(pay.pid))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "repaired 0 of 0 dead mounts" in r.stdout, r.stdout
    assert "left alone" not in r.stdout
    # The live bind is the very same mount (same id, same superblock).
    assert secretsfs_binds(pay.pid) == before
    assert_sees_exactly(pay, PAYMENT)


def test_repair_needs_a_running_daemon(make_daemon, secrets_dir, tmp_path):
    (secrets_dir / "db_password").write_bytes(VALUES["db_password"])
    d = make_daemon({"backends": {"dev": {"type": "file",
                                          "dir": str(secrets_dir)}},
                     "secrets": {"db_password": {"backend": "dev"}}},
                    start=False)
    os.makedirs(d.mountpoint, exist_ok=True)
    r = repair(d)
    assert r.returncode == 1
    assert "is not served by a running secretsfs" in r.stderr, r.stderr
    # A process that does not exist cannot be vouched for.
    r = repair(d, "--pid", "0x")
    assert r.returncode == 2 and "not a process id" in r.stderr


def test_daemon_in_a_private_mount_namespace_serves_the_host(
        make_daemon, secrets_dir, tmp_path, podman, engine):
    """systemd's ProtectSystem=, PrivateTmp=, ReadWritePaths= run a service
    in a mount namespace of its own, slave to the host's: its mounts never
    reach the host. The daemon publishes a clone of its mount into the
    namespace it was started from (its parent's: PID 1 under systemd; this
    test here, through unshare, which execs the daemon), and after a crash
    the next daemon replaces the dead one there."""
    need(shutil.which("unshare"), "unshare (util-linux) is not installed")
    pay_name = unique_name("payment")
    d = make_daemon(config(secrets_dir, tmp_path, rules_for(pay_name, "-"),
                           engine), start=False)
    private = ["unshare", "--mount", "--propagation", "slave"]

    def start_private():
        d.start(wait=False, prefix=private)
        assert wait_for(lambda: "serving " in d.log()
                        or d.proc.poll() is not None, 10), d.log()
        assert d.proc.poll() is None, d.log()
        assert os.readlink("/proc/%d/ns/mnt" % d.pid) != \
            os.readlink("/proc/self/ns/mnt")

    start_private()
    assert repair_wired(d.pid, d.mountpoint)
    assert wait_for(lambda: mount_source(os.getpid(), d.mountpoint)
                    is not None, 5), d.log()
    os.stat(d.mountpoint)   # live on the host
    assert "published the mount at %s into the mount namespace of process %d"\
        % (os.path.realpath(d.mountpoint), os.getpid()) in d.log()
    pay = podman.run(pay_name, d.mountpoint)
    assert_sees_exactly(pay, PAYMENT)

    d.kill9()
    assert_dead(pay)
    with pytest.raises(OSError) as e:
        os.stat(d.mountpoint)
    assert e.value.errno == errno.ENOTCONN
    restart_log = str(d.log_path) + ".before-crash"
    os.replace(d.log_path, restart_log)
    start_private()
    # The host's dead mount is replaced, and the container's bind repaired.
    assert wait_for(lambda: sees_exactly(pay, PAYMENT), AUTOMATIC_WAIT), \
        d.log()
    os.stat(d.mountpoint)
    recs = [r for r in audit_records(tmp_path) if r["event"] == "repair"]
    assert any(r["pid"] == os.getpid() and r["outcome"] == "ok" and
               r["target"] == os.path.realpath(d.mountpoint)
               for r in recs), recs
    assert any((r.get("container") or {}).get("id") == pay.id and
               r["outcome"] == "ok" for r in recs), recs
