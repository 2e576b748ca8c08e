"""Per-container access rules through a real mount: each container sees and
reads only its own secrets, the host sees nothing no rule gives it, and
`secretsfs explain` agrees with the mount.

Real containers run under Podman (runc, a busybox-only root filesystem,
no registry); container names and labels come from `podman system service`.
Docker, containerd, CRI-O and Kubernetes layouts are cgroups made by hand in
the cgroup2 hierarchy, with a reader process moved into each.
"""
import errno
import json
import os
import re
import subprocess
import uuid

import pytest

from conftest import binary, need, require_fuse, write_private
from containers import FakeCgroups, Reader, cgroup2_mount, hex64, unique_name

VALUES = {
    "db_password": b"pay-db-7f3a9c0e",
    "stripe_key": b"sk_test_51Hc0ffee",
    "session_key": b"front-session-42aa",
    "ca_bundle": b"test-ca-bundle-0001",
    "report_token": b"reports-only-9d1e",
}

SERVICE = "com.example.service"


def config(secrets_dir, tmp_path, rules, values=VALUES, **extra):
    for name, value in values.items():
        (secrets_dir / name).write_bytes(value)
    write_private(tmp_path / "audit.key", os.urandom(32).hex() + "\n")
    cfg = {
        "backends": {"dev": {"type": "file", "dir": str(secrets_dir)}},
        "secrets": {name: {"backend": "dev"} for name in values},
        "audit": {"file": str(tmp_path / "audit.log"),
                  "key_file": str(tmp_path / "audit.key"),
                  "flush_interval": 0},
    }
    if rules is not None:
        cfg["rules"] = rules
    cfg.update(extra)
    return cfg


def audit_records(tmp_path):
    with open(tmp_path / "audit.log") as f:
        return [json.loads(line) for line in f if line.strip()]


def explain(daemon, *args):
    """(the identity lines, {secret: (access, rule)}) from `secretsfs explain`."""
    r = subprocess.run([binary(), "explain", "-c", str(daemon.config_path)]
                       + list(args), capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, "explain %s: %s" % (args, r.stderr)
    lines = r.stdout.splitlines()
    top = next(i for i, l in enumerate(lines)
               if l.split() == ["SECRET", "ACCESS", "RULE"])
    table = {}
    for line in lines[top + 1:]:
        name, access, rule = line.split()
        table[name] = (access, rule)
    return "\n".join(lines[:top]), table


def assert_explain_agrees(daemon, args, readable, names=VALUES):
    """explain says allow for exactly the names the reader could read, each
    by the rule readable names (readable: {secret: rule id})."""
    head, table = explain(daemon, *args)
    assert set(table) == set(names)
    for name, (access, rule) in table.items():
        if name in readable:
            assert (access, rule) == ("allow", readable[name]), \
                (args, name, head, table)
        else:
            assert access == "deny", (args, name, head, table)
    return head


def assert_host_sees_nothing(daemon, names=VALUES, err=errno.ENOENT):
    for name in names:
        with pytest.raises(OSError) as e:
            open(daemon.path(name), "rb").close()
        assert e.value.errno == err, name
    assert os.listdir(daemon.mountpoint) == []


# ---- real containers (Podman) ----------------------------------------------

# Reads each name in one exec, so that a test costs one exec per container.
PROBE = r"""
for f in "$@"; do
  printf '@@begin %s\n' "$f"
  cat "/run/secrets/$f" 2>&1
  rc=$?
  printf '\n@@end %s %d\n' "$f" "$rc"
done
printf '@@ls\n'
ls -1 /run/secrets 2>&1
printf '@@lsrc %d\n' "$?"
"""


def probe(container, names=VALUES):
    """{name: (rc, output)} and the listing, as the container sees them."""
    r = container.exec(["/bin/sh", "-c", PROBE, "sh"] + list(names))
    assert r.returncode == 0, r.stderr
    reads = {m.group(1): (int(m.group(3)), m.group(2))
             for m in re.finditer(r"@@begin (\S+)\n(.*?)\n@@end \1 (\d+)\n",
                                  r.stdout, re.S)}
    assert set(reads) == set(names), r.stdout
    m = re.search(r"@@ls\n(.*)@@lsrc (\d+)\n", r.stdout, re.S)
    assert m and m.group(2) == "0", r.stdout
    return reads, sorted(m.group(1).split())


def assert_container_sees(container, readable):
    reads, listing = probe(container)
    for name, value in VALUES.items():
        rc, out = reads[name]
        if name in readable:
            assert (rc, out) == (0, value.decode()), (container.name, name)
        else:
            assert rc != 0, (container.name, name)
            assert "No such file or directory" in out, (container.name, out)
            assert value.decode() not in out
    assert listing == sorted(readable), container.name


def test_real_containers_by_name(make_daemon, secrets_dir, tmp_path, podman,
                                 engine):
    pay_name, front_name = unique_name("payment"), unique_name("frontend")
    rules = [
        {"id": "payment-api", "match": {"container_name": pay_name},
         "allow": ["db_password", "stripe_key"]},
        {"id": "frontend", "match": {"container_name": "sfs-test-*-frontend"},
         "allow": ["session_key"]},
        {"id": "podman", "match": {"runtime": "podman"},
         "allow": ["ca_bundle"]},
    ]
    d = make_daemon(config(secrets_dir, tmp_path, rules,
                           runtime={"socket": "unix://" + engine.socket}))
    pay = podman.run(pay_name, d.mountpoint, {SERVICE: "payment-api"})
    front = podman.run(front_name, d.mountpoint, {SERVICE: "frontend"})
    expect = {
        pay: {"db_password": "payment-api", "stripe_key": "payment-api",
              "ca_bundle": "podman"},
        front: {"session_key": "frontend", "ca_bundle": "podman"},
    }
    for c, readable in expect.items():
        assert_container_sees(c, readable)
    assert_host_sees_nothing(d)

    # explain agrees, by name (through the engine) and by pid.
    for c, readable in expect.items():
        head = assert_explain_agrees(d, ["--container", c.name], readable)
        assert 'runtime podman, container %s "%s"' % (c.id[:12], c.name) \
            in head, head
        assert "libpod-" + c.id in head
        assert_explain_agrees(d, ["--pid", str(c.pid)], readable)

    # Every access, allowed or not, is in the trail with the container.
    recs = audit_records(tmp_path)
    for c, readable in expect.items():
        mine = [r for r in recs if (r.get("container") or {}).get("id") == c.id]
        allowed = {r["secret"] for r in mine
                   if r["event"] == "access" and r["outcome"] == "allow"}
        denied = {r["secret"] for r in mine if r["outcome"] == "deny"}
        assert allowed == set(readable)
        assert denied == set(VALUES) - set(readable)
        for r in mine:
            assert r["container"]["name"] == c.name
            assert r["container"]["runtime"] == "podman"
            if r["outcome"] == "allow":
                assert r["rule"] == readable[r["secret"]]
    assert [r for r in recs if r.get("pid") == os.getpid()
            and r.get("outcome") == "allow"] == []


def test_real_containers_by_label(make_daemon, secrets_dir, tmp_path, podman,
                                  engine):
    rules = [
        {"id": "payment-api", "match": {"label": {SERVICE: "payment-api"}},
         "allow": ["db_password", "stripe_key"]},
        # deny wins over allow inside one rule.
        {"id": "frontend", "match": {"label": {SERVICE: "front*"}},
         "allow": ["*"], "deny": ["db_password", "stripe_key", "report_token"]},
        # Any value, but the label must be there.
        {"id": "labelled", "match": {"label": {SERVICE: "*"}},
         "allow": ["ca_bundle"]},
    ]
    d = make_daemon(config(secrets_dir, tmp_path, rules,
                           runtime={"socket": engine.socket}))
    pay = podman.run(unique_name("a"), d.mountpoint, {SERVICE: "payment-api"})
    front = podman.run(unique_name("b"), d.mountpoint, {SERVICE: "frontend"})
    bare = podman.run(unique_name("c"), d.mountpoint)
    expect = {
        pay: {"db_password": "payment-api", "stripe_key": "payment-api",
              "ca_bundle": "labelled"},
        front: {"session_key": "frontend", "ca_bundle": "frontend"},
        bare: {},
    }
    for c, readable in expect.items():
        assert_container_sees(c, readable)
    assert_host_sees_nothing(d)

    for c, readable in expect.items():
        head = assert_explain_agrees(d, ["--container", c.name], readable)
        if c is not bare:
            assert "label %s=%s" % (SERVICE, "payment-api" if c is pay
                                    else "frontend") in head, head
        assert_explain_agrees(d, ["--pid", str(c.pid)], readable)
    # The frontend's refusals come from its own rule's deny list.
    _, table = explain(d, "--container", front.name)
    assert table["db_password"] == ("deny", "frontend")
    assert table["report_token"] == ("deny", "frontend")
    _, table = explain(d, "--container", bare.name)
    assert set(table.values()) == {("deny", "default-deny")}


@pytest.mark.parametrize("socket", [None, "/nonexistent/podman.sock"],
                         ids=["no-socket", "engine-down"])
def test_label_rules_fail_closed_without_engine(make_daemon, secrets_dir,
                                                tmp_path, podman, socket):
    # Name and label rules cannot match without the engine's answer; rules
    # on what the cgroup says still do.
    rules = [
        {"id": "by-label", "match": {"label": {SERVICE: "*"}},
         "allow": ["*"]},
        {"id": "by-runtime", "match": {"runtime": "podman"},
         "allow": ["ca_bundle"]},
    ]
    extra = {"runtime": {"socket": socket}} if socket else {}
    d = make_daemon(config(secrets_dir, tmp_path, rules, **extra))
    c = podman.run(unique_name("nolookup"), d.mountpoint,
                   {SERVICE: "payment-api"})
    assert_container_sees(c, {"ca_bundle": "by-runtime"})
    head = assert_explain_agrees(d, ["--pid", str(c.pid)],
                                 {"ca_bundle": "by-runtime"})
    assert "label" not in head


# ---- made-up cgroup layouts --------------------------------------------------

TOKENS = {
    "docker_token": b"docker-value-01",
    "containerd_token": b"containerd-value-02",
    "crio_token": b"crio-value-03",
    "pod_token": b"pod-value-04",
    "legacy_token": b"kubepods-cgroupfs-05",
    "backup_token": b"backup-service-06",
}


@pytest.fixture
def cgroups():
    require_fuse()
    need(cgroup2_mount() is not None, "no cgroup2 hierarchy is mounted")
    cg = FakeCgroups()
    yield cg
    cg.remove()


def test_made_up_cgroup_layouts(make_daemon, secrets_dir, tmp_path, cgroups):
    A, B, C, D, E, F, G = (hex64() for _ in range(7))
    pod, pod_crio, pod_legacy = (str(uuid.uuid4()) for _ in range(3))
    unit = "sfs-test-%s.service" % A[:8]
    rules = [
        {"id": "docker-ids", "match": {"container_id": [A[:12], B]},
         "allow": ["docker_token"]},
        {"id": "containerd", "match": {
            "runtime": "containerd",
            "cgroup": cgroups.path_of("system.slice/cri-containerd-*.scope")},
         "allow": ["containerd_token"]},
        {"id": "cri-o", "match": {"runtime": "cri-o"},
         "allow": ["crio_token"]},
        {"id": "pod", "match": {"pod_uid": pod}, "allow": ["pod_token"]},
        {"id": "cgroupfs-pods", "match": {
            "cgroup": cgroups.path_of("kubepods/burstable/pod*/*")},
         "allow": ["legacy_token"]},
        {"id": "backup", "match": {"host": True, "unit": unit},
         "allow": ["backup_token"]},
    ]
    d = make_daemon(config(secrets_dir, tmp_path, rules, values=TOKENS))

    def slice_uid(u):
        return u.replace("-", "_")

    # (cgroup, runtime, container id, pod uid, readable: rule)
    layouts = [
        ("system.slice/docker-%s.scope" % A, "docker", A, "",
         {"docker_token": "docker-ids"}),
        ("docker/%s" % B, "docker", B, "", {"docker_token": "docker-ids"}),
        # A container may name a sub-cgroup after another container: the
        # outermost container component is the one that counts.
        ("system.slice/docker-%s.scope/docker-%s.scope" % (C, A), "docker",
         C, "", {}),
        ("system.slice/cri-containerd-%s.scope" % D, "containerd", D, "",
         {"containerd_token": "containerd"}),
        ("kubepods.slice/kubepods-pod%s.slice/crio-%s.scope"
         % (slice_uid(pod_crio), E), "cri-o", E, pod_crio,
         {"crio_token": "cri-o"}),
        ("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s"
         ".slice/cri-containerd-%s.scope" % (slice_uid(pod), F),
         "containerd", F, pod, {"pod_token": "pod"}),
        ("kubepods/burstable/pod%s/%s" % (pod_legacy, G), "kubepods", G,
         pod_legacy, {"legacy_token": "cgroupfs-pods"}),
        ("system.slice/%s" % unit, "systemd", "", "",
         {"backup_token": "backup"}),
        # A user's delegated subtree proves nothing, whatever its names.
        ("user.slice/user-4242.slice/user@4242.service/docker-%s.scope" % A,
         "systemd", "", "", {}),
    ]
    readers = []
    try:
        for rel, *_ in layouts:
            readers.append(Reader(cgroups.make(rel), d.mountpoint, TOKENS))
        for reader, (rel, runtime, cid, pod_uid, readable) in \
                zip(readers, layouts):
            assert reader.cgroup_line() == "0::" + cgroups.path_of(rel)
            seen = reader.read()
            for name, value in TOKENS.items():
                if name in readable:
                    assert seen["read"][name] == ["ok", value.hex()], \
                        (rel, name)
                else:
                    assert seen["read"][name] == ["err", errno.ENOENT], \
                        (rel, name)
            assert seen["list"] == sorted(readable), rel

            head = assert_explain_agrees(d, ["--pid", str(reader.pid)],
                                         readable, TOKENS)
            assert "runtime %s" % runtime in head, head
            if cid:
                assert "container %s" % cid[:12] in head, head
            else:
                assert "container" not in head, head
            if pod_uid:
                assert "pod %s" % pod_uid in head, head
            assert "cgroup %s\n" % cgroups.path_of(rel) in head + "\n", head

        recs = audit_records(tmp_path)
        for reader, (rel, runtime, cid, pod_uid, readable) in \
                zip(readers, layouts):
            mine = [r for r in recs if r.get("pid") == reader.pid]
            assert {r["secret"] for r in mine if r["outcome"] == "allow"} \
                == set(readable), rel
            assert {r["secret"] for r in mine if r["outcome"] == "deny"} \
                == set(TOKENS) - set(readable), rel
            for r in mine:
                assert r["cgroup"] == cgroups.path_of(rel)
                if cid:
                    assert r["container"]["id"] == cid
                    assert r["container"]["runtime"] == runtime
                else:
                    assert r["container"] is None
    finally:
        for reader in readers:
            reader.finish()
    assert_host_sees_nothing(d, TOKENS)


# ---- the answer to a denied name, and deny by default -----------------------

def test_denied_answers_eacces_when_configured(make_daemon, secrets_dir,
                                               tmp_path, cgroups):
    rules = [{"id": "host-ca", "match": {"host": True}, "allow": ["ca_bundle"]}]
    d = make_daemon(config(secrets_dir, tmp_path, rules,
                           access={"denied": "eacces"}))
    with open(d.path("ca_bundle"), "rb") as f:
        assert f.read() == VALUES["ca_bundle"]
    for name in set(VALUES) - {"ca_bundle"}:
        for call in (lambda p: open(p, "rb").close(), os.stat):
            with pytest.raises(OSError) as e:
                call(d.path(name))
            assert e.value.errno == errno.EACCES, name
    # A name that is not configured at all is still ENOENT.
    with pytest.raises(OSError) as e:
        open(d.path("no_such_secret"), "rb")
    assert e.value.errno == errno.ENOENT
    # The listing still leaves denied names out.
    assert os.listdir(d.mountpoint) == ["ca_bundle"]

    # A container no rule names gets EACCES too.
    reader = Reader(cgroups.make("system.slice/docker-%s.scope" % hex64()),
                    d.mountpoint, VALUES)
    try:
        seen = reader.read()
    finally:
        reader.finish()
    assert seen["read"] == {n: ["err", errno.EACCES] for n in VALUES}
    assert seen["list"] == []

    denied = [r for r in audit_records(tmp_path) if r.get("outcome") == "deny"]
    assert denied and {r["errno"] for r in denied} == {errno.EACCES}


@pytest.mark.parametrize("rules", [None, []], ids=["absent", "empty"])
def test_no_rules_denies_everything(make_daemon, secrets_dir, tmp_path,
                                    cgroups, rules):
    d = make_daemon(config(secrets_dir, tmp_path, rules))
    assert_host_sees_nothing(d)
    with pytest.raises(OSError) as e:
        os.stat(d.path("db_password"))
    assert e.value.errno == errno.ENOENT
    reader = Reader(cgroups.make("system.slice/docker-%s.scope" % hex64()),
                    d.mountpoint, VALUES)
    try:
        seen = reader.read()
        head, table = explain(d, "--pid", str(reader.pid))
    finally:
        reader.finish()
    assert seen["read"] == {n: ["err", errno.ENOENT] for n in VALUES}
    assert seen["list"] == []
    assert set(table.values()) == {("deny", "default-deny")}
    _, table = explain(d, "--pid", str(os.getpid()))
    assert set(table.values()) == {("deny", "default-deny")}
    assert "no access rules in the config" in d.log()
    assert "every secret is denied" in d.log()
    recs = audit_records(tmp_path)
    assert [r for r in recs if r.get("outcome") == "allow"] == []
    assert {r["rule"] for r in recs if r.get("outcome") == "deny"} == \
        {"default-deny"}


@pytest.mark.parametrize("arg", ["12x", "0", "-3", "", "99999999999"])
def test_explain_refuses_what_is_not_a_pid(secrets_dir, tmp_path, arg):
    """A typo must not explain some other process: `--pid 12x` once meant
    pid 12."""
    cfg = write_private(tmp_path / "c.json", json.dumps(
        config(secrets_dir, tmp_path, [{"id": "all", "match": {"any": True},
                                        "allow": ["*"]}])))
    r = subprocess.run([binary(), "explain", "-c", str(cfg), "--pid", arg],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "--pid %s: not a process id" % arg in r.stderr
    assert r.stdout == ""
