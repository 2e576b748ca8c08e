"""Caller identity that cannot be forged: a cgroup path is believed only
where the kernel says no one but root could have made it, and a process is
the host only in the host's namespaces.

The attacks: an unprivileged user (uid 65534) given a delegated cgroup
subtree (chowned to it; marked delegated with the xattr systemd sets; a
user@<uid>.service subtree) names a child after a running container, in
every form the broker recognises, and moves a reader into it. And a process
in its own pid and mount namespaces, in a cgroup no runtime we know makes,
asks for the host's secrets.
"""
import errno
import os
import subprocess
import sys
import uuid

import pytest

from conftest import need, require_fuse, run_as
from containers import READER, FakeCgroups, Reader, cgroup2_mount, hex64, \
    unique_name
from test_access import assert_container_sees, audit_records, config, \
    explain

NOBODY = 65534

VALUES = {
    "db_password": b"pay-db-7f3a9c0e",
    "stripe_key": b"sk_test_51Hc0ffee",
    "session_key": b"front-session-42aa",
    "ca_bundle": b"test-ca-bundle-0001",
    "report_token": b"reports-only-9d1e",
}


@pytest.fixture
def cgroups():
    require_fuse()
    need(cgroup2_mount() is not None, "no cgroup2 hierarchy is mounted")
    cg = FakeCgroups()
    yield cg
    cg.remove()


def mkdir_as(uid, path):
    """mkdir as uid: what a user with a delegated subtree can do."""
    def demote():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    r = subprocess.run(["mkdir", path], preexec_fn=demote,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def forged_names(cid):
    """Every recognised form of container cid, each a path of children."""
    pod = str(uuid.uuid4())
    return [
        ["libpod-%s.scope" % cid],
        ["docker-%s.scope" % cid],
        ["cri-containerd-%s.scope" % cid],
        ["crio-%s.scope" % cid],
        ["kubepods", "burstable", "pod%s" % pod, cid],
        ["kubepods.slice", "kubepods-pod%s.slice" % pod.replace("-", "_"),
         "cri-containerd-%s.scope" % cid],
    ]


class Delegation:
    """A subtree given to NOBODY in one of three ways, below which NOBODY
    makes children as it likes."""

    def __init__(self, cgroups, how):
        self.cg = cgroups
        self.how = how
        tag = hex64()[:8]
        if how == "chowned":
            self.rel = "sfs-ci-%s.slice" % tag
        elif how == "xattr":
            # A Delegate=yes service: systemd chowns it to the service's
            # user and marks it; the mark alone must be enough here.
            self.rel = "system.slice/sfs-runner-%s.service" % tag
        else:
            self.rel = "user.slice/user-%d.slice/user@%d.service" \
                % (NOBODY, NOBODY)
        self.dir = cgroups.make(self.rel)
        if how == "xattr":
            os.setxattr(self.dir, "user.delegate", b"1")
        else:
            os.chown(self.dir, NOBODY, NOBODY)
            for f in ("cgroup.procs", "cgroup.subtree_control"):
                os.chown(os.path.join(self.dir, f), NOBODY, NOBODY)

    def child(self, parts):
        """Make parts below the subtree, as NOBODY where it may; its dir."""
        d, rel = self.dir, self.rel
        for p in parts:
            d = os.path.join(d, p)
            rel = rel + "/" + p
            if not os.path.isdir(d):
                if self.how == "xattr":
                    os.mkdir(d)
                else:
                    mkdir_as(NOBODY, d)
                self.cg.created.append(d)
        return d, self.cg.path_of(rel)


HOWS = ["chowned", "xattr", "user-manager"]


def forged_reader(deleg, parts, mnt, names):
    cdir, path = deleg.child(parts)
    return Reader(cdir, mnt, names), path


def assert_refused(d, tmp_path, reader, path, names, needle):
    seen = reader.read()
    for n in names:
        assert seen["read"][n] == ["err", errno.ENOENT], (path, n)
    assert seen["list"] == [], path
    head, table = explain(d, "--pid", str(reader.pid))
    assert "identity refused: " in head, head
    assert "container " not in head, head
    assert set(a for a, _ in table.values()) == {"deny"}, table
    mine = [r for r in audit_records(tmp_path) if r.get("pid") == reader.pid]
    assert mine, path
    for r in mine:
        assert r["outcome"] == "deny", r
        assert r["container"] is None, r
        assert needle in r["identity"], r
        assert r["cgroup"] == path


@pytest.mark.parametrize("how", HOWS)
def test_forged_container_reads_nothing(make_daemon, secrets_dir, tmp_path,
                                        podman, engine, cgroups, how):
    name = unique_name("victim")
    rules = [{"id": "payment", "match": {"container_name": name},
              "allow": ["db_password", "stripe_key"]}]
    d = make_daemon(config(secrets_dir, tmp_path, rules,
                           runtime={"socket": engine.socket}))
    victim = podman.run(name, d.mountpoint)
    # The rule holds for the real container: what is forged below is it.
    assert_container_sees(victim, {"db_password", "stripe_key"})

    deleg = Delegation(cgroups, how)
    needle = {"chowned": "owned by a user", "xattr": "delegated (xattr)",
              "user-manager": "user manager"}[how]
    readers = []
    try:
        for parts in forged_names(victim.id):
            r, path = forged_reader(deleg, parts, d.mountpoint,
                                    ["db_password", "stripe_key"])
            readers.append(r)
            assert_refused(d, tmp_path, r, path,
                           ["db_password", "stripe_key"], needle)
    finally:
        for r in readers:
            r.finish()
    # And the real container still reads.
    assert_container_sees(victim, {"db_password", "stripe_key"})


def test_rootless_matched_only_by_its_owner(make_daemon, secrets_dir,
                                            tmp_path, cgroups):
    cid = hex64()
    rules = [
        # Names the container but not who owns its cgroup: never holds.
        {"id": "by-id", "match": {"container_id": cid},
         "allow": ["db_password"]},
        {"id": "other-owner", "match": {"container_id": cid,
                                        "owner_uid": 4242},
         "allow": ["stripe_key"]},
        {"id": "rootless", "match": {"container_id": cid,
                                     "owner_uid": NOBODY},
         "allow": ["session_key"]},
    ]
    names = ["db_password", "stripe_key", "session_key"]
    d = make_daemon(config(secrets_dir, tmp_path, rules,
                           runtime={"rootless": True}))
    deleg = Delegation(cgroups, "user-manager")
    reader, path = forged_reader(
        deleg, ["user.slice", "libpod-%s.scope" % cid], d.mountpoint, names)
    try:
        seen = reader.read()
        assert seen["read"]["session_key"] == \
            ["ok", VALUES["session_key"].hex()]
        for n in ("db_password", "stripe_key"):
            assert seen["read"][n] == ["err", errno.ENOENT], n
        head, table = explain(d, "--pid", str(reader.pid))
        assert "runtime podman, container %s" % cid[:12] in head, head
        assert "rootless, owner uid %d" % NOBODY in head, head
        assert table["session_key"] == ("allow", "rootless")
        assert table["db_password"][0] == "deny"
        recs = [r for r in audit_records(tmp_path)
                if r.get("pid") == reader.pid]
        allowed = [r for r in recs if r["outcome"] == "allow"]
        assert [r["secret"] for r in allowed] == ["session_key"]
        assert all(r["owner_uid"] == NOBODY for r in recs)
        assert all(r["container"]["id"] == cid for r in recs)
    finally:
        reader.finish()

    # Without runtime.rootless the same subtree is refused outright.
    off = tmp_path / "off"
    off.mkdir()
    d2 = make_daemon(config(secrets_dir, off, rules), workdir=off)
    reader, path = forged_reader(
        deleg, ["user.slice", "libpod-%s.scope" % cid], d2.mountpoint, names)
    try:
        seen = reader.read()
        assert all(v == ["err", errno.ENOENT] for v in seen["read"].values())
        head, _ = explain(d2, "--pid", str(reader.pid))
        assert "identity refused: below a user manager" in head, head
    finally:
        reader.finish()


# ---- not the host unless it is the host ------------------------------------

class NsReader(Reader):
    """A Reader started by unshare in new pid and mount namespaces: the pid
    the broker sees is the reader's own (unshare --fork waits for it)."""

    def __init__(self, cgroup_dir, mnt, names, unshare=("-p", "-m", "-f")):
        self.proc = subprocess.Popen(
            ["unshare"] + list(unshare) + [sys.executable, "-c", READER,
             os.path.join(cgroup_dir, "cgroup.procs"), mnt] + list(names),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("reader did not join %s" % cgroup_dir)
        self._pid = None
        with open(os.path.join(cgroup_dir, "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
        assert len(pids) == 1, pids
        self._pid = pids[0]

    @property
    def pid(self):
        return self._pid


def test_unknown_runtime_is_not_the_host(make_daemon, secrets_dir, tmp_path,
                                         cgroups):
    values = {"host_only": b"host-secret-0c1d", "for_unknown": b"unk-77e1"}
    rules = [
        {"id": "host", "match": {"host": True}, "allow": ["host_only"]},
        {"id": "unknown", "match": {"runtime": "unknown"},
         "allow": ["for_unknown"]},
    ]
    d = make_daemon(config(secrets_dir, tmp_path, rules, values=values,
                           secrets={n: {"backend": "dev", "mode": "0444"}
                                    for n in values}))
    tag = hex64()[:8]
    # (cgroup, own namespaces?)
    cases = [
        ("lxc.payload.sfs-%s" % tag, True),
        ("machine.slice/systemd-nspawn@sfs-%s.service/payload" % tag, True),
        # The host's cgroup tree, but not its namespaces.
        ("system.slice/sfs-%s.service" % tag, True),
        # The host's namespaces, but a cgroup no host manager makes.
        ("lxc.payload.sfs-host-%s" % tag, False),
    ]
    readers = []
    try:
        for rel, ns in cases:
            cdir = cgroups.make(rel)
            r = NsReader(cdir, d.mountpoint, list(values)) if ns else \
                Reader(cdir, d.mountpoint, list(values))
            readers.append(r)
            seen = r.read()
            assert seen["read"]["host_only"] == ["err", errno.ENOENT], rel
            assert seen["read"]["for_unknown"] == \
                ["ok", values["for_unknown"].hex()], rel
            assert seen["list"] == ["for_unknown"], rel
            head, table = explain(d, "--pid", str(r.pid))
            assert "runtime unknown" in head, head
            assert table == {"host_only": ("deny", "default-deny"),
                             "for_unknown": ("allow", "unknown")}, table
            recs = [x for x in audit_records(tmp_path)
                    if x.get("pid") == r.pid]
            assert {x["secret"]: x["outcome"] for x in recs} == \
                {"host_only": "deny", "for_unknown": "allow"}, recs
            assert all(x["identity"] == "unknown runtime" for x in recs)
    finally:
        for r in readers:
            r.finish()
    # The host itself (this process: pid 1's namespaces, cgroup "/" or a
    # host slice) is still the host.
    with open(d.path("host_only"), "rb") as f:
        assert f.read() == values["host_only"]
    # So is another user's process: the daemon reads its status and
    # mountinfo without the ptrace access it has not.
    ok = run_as(NOBODY, NOBODY, ["cat", d.path("host_only")])
    assert ok.returncode == 0 and ok.stdout == values["host_only"], ok
    head, table = explain(d, "--pid", str(os.getpid()))
    assert "runtime host" in head, head
    assert table["host_only"] == ("allow", "host")
    assert table["for_unknown"] == ("deny", "default-deny")


def test_engine_pid_namespace_must_agree(make_daemon, secrets_dir, tmp_path,
                                         podman, engine, cgroups):
    """A host process root moves into a real container's cgroup has the
    container's path, which root alone could give it; the Engine API's
    State.Pid shows it is not in the container's pid namespace."""
    name = unique_name("victim")
    rules = [{"id": "payment", "match": {"container_name": name},
              "allow": ["db_password"]}]
    d = make_daemon(config(secrets_dir, tmp_path, rules,
                           runtime={"socket": engine.socket}))
    victim = podman.run(name, d.mountpoint)
    assert_container_sees(victim, {"db_password"})
    with open("/proc/%d/cgroup" % victim.pid) as f:
        line = [l for l in f.read().splitlines() if l.startswith("0::")][0]
    rel = line[3:]
    assert victim.id in rel, rel
    mnt, root = cgroup2_mount()
    assert root == "/"
    reader = Reader(os.path.join(mnt, rel.lstrip("/")), d.mountpoint,
                    ["db_password"])
    try:
        assert reader.cgroup_line() == line
        seen = reader.read()
        assert seen["read"]["db_password"] == ["err", errno.ENOENT]
        head, table = explain(d, "--pid", str(reader.pid))
        assert "identity refused: not in the container's pid namespace" \
            in head, head
        assert table["db_password"] == ("deny", "default-deny")
        recs = [r for r in audit_records(tmp_path)
                if r.get("pid") == reader.pid]
        assert recs and all(r["identity"] ==
                            "not in the container's pid namespace"
                            for r in recs), recs
    finally:
        reader.finish()
    assert_container_sees(victim, {"db_password"})
