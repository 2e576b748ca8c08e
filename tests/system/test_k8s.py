"""Kubernetes workloads by the names operators use, through a real mount:
rules on namespace, service account, pod labels and container name, with
the pod resolved through a fake kubelet (tests/fakes/kubelet_server.py:
TLS, bearer token, nodes/proxy authorization, GET /pods).

The "pods" are real processes in made-up kubepods cgroups, under both the
systemd driver (containerd and CRI-O scopes) and the cgroupfs driver, as
test_access.py makes them.
"""
import errno
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from conftest import binary, need, require_fuse, write_private
from containers import FakeCgroups, Reader, cgroup2_mount, hex64

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "fakes"))
from kubelet_fixture import pod  # noqa: E402

VALUES = {
    "db_password": b"pay-db-7f3a9c0e",
    "session_key": b"front-session-42aa",
    "report_token": b"reports-only-9d1e",
    "ca_bundle": b"test-ca-bundle-0001",
}

RULES = [
    {"id": "payments-api", "match": {"k8s": {
        "namespace": "payments", "service_account": "payments-api"}},
     "allow": ["db_password"]},
    {"id": "frontend-web", "match": {"k8s": {
        "namespace": "front*", "label": {"app": "web"}}},
     "allow": ["session_key"]},
    {"id": "reports", "match": {"k8s": {
        "service_account": "reports", "container": "report"}},
     "allow": ["report_token"]},
]


# As containers.READER, but it reads again at every "go" until EOF.
LOOP_READER = r"""
import json, os, sys
procs, mnt = sys.argv[1], sys.argv[2]
names = sys.argv[3:]
with open(procs, "w") as f:
    f.write(str(os.getpid()))
print("ready", flush=True)
while sys.stdin.readline() == "go\n":
    out = {"read": {}, "list": None}
    for n in names:
        try:
            with open(os.path.join(mnt, n), "rb") as f:
                out["read"][n] = ["ok", f.read().hex()]
        except OSError as e:
            out["read"][n] = ["err", e.errno]
    try:
        out["list"] = sorted(os.listdir(mnt))
    except OSError as e:
        out["list"] = e.errno
    print(json.dumps(out), flush=True)
"""


class LoopReader(Reader):
    """A Reader that may read any number of times."""

    def __init__(self, cgroup_dir, mnt, names):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOOP_READER,
             os.path.join(cgroup_dir, "cgroup.procs"), mnt] + list(names),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("reader did not join %s" % cgroup_dir)


@pytest.fixture
def cgroups():
    require_fuse()
    need(cgroup2_mount() is not None, "no cgroup2 hierarchy is mounted")
    cg = FakeCgroups()
    yield cg
    cg.remove()


def slice_uid(u):
    return u.replace("-", "_")


class Pod:
    """A pod as the kubelet lists it and as its cgroup is named."""

    def __init__(self, ns, name, sa, container, runtime, labels=None,
                 driver="systemd"):
        self.ns, self.name, self.sa, self.container = ns, name, sa, container
        self.uid = str(uuid.uuid4())
        self.cid = hex64()
        self.runtime = runtime
        self.labels = labels or {}
        scheme = {"containerd": "containerd", "cri-o": "cri-o",
                  "kubepods": "containerd"}[runtime]
        self.doc = pod(ns, name, self.uid, sa,
                       [(container, "registry.example/%s:1" % container,
                         "%s://%s" % (scheme, self.cid))], labels=labels)
        if driver == "cgroupfs":
            self.cgroup = "kubepods/besteffort/pod%s/%s" % (self.uid, self.cid)
        elif runtime == "cri-o":
            self.cgroup = ("kubepods.slice/kubepods-burstable.slice/"
                           "kubepods-burstable-pod%s.slice/crio-%s.scope"
                           % (slice_uid(self.uid), self.cid))
        else:
            self.cgroup = ("kubepods.slice/kubepods-besteffort.slice/"
                           "kubepods-besteffort-pod%s.slice/"
                           "cri-containerd-%s.scope"
                           % (slice_uid(self.uid), self.cid))


def make_config(secrets_dir, tmp_path, kubelet, rules=RULES, **kl):
    for name, value in VALUES.items():
        (secrets_dir / name).write_bytes(value)
    write_private(tmp_path / "audit.key", os.urandom(32).hex() + "\n")
    k = {"url": kubelet.addr, "token_file": kubelet.token_file,
         "ca_file": kubelet.ca, "cache_ttl": "1h"}
    k.update(kl)
    return {
        "backends": {"dev": {"type": "file", "dir": str(secrets_dir)}},
        "secrets": {name: {"backend": "dev"} for name in VALUES},
        "rules": rules,
        "runtime": {"kubelet": k},
        "audit": {"file": str(tmp_path / "audit.log"),
                  "key_file": str(tmp_path / "audit.key"),
                  "flush_interval": 0},
    }


def audit_records(tmp_path):
    with open(tmp_path / "audit.log") as f:
        return [json.loads(line) for line in f if line.strip()]


def explain(daemon, *args):
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


def assert_reads(reader, readable):
    seen = reader.read()
    for name, value in VALUES.items():
        if name in readable:
            assert seen["read"][name] == ["ok", value.hex()], name
        else:
            assert seen["read"][name] == ["err", errno.ENOENT], name
    assert seen["list"] == sorted(readable)


def assert_explain(daemon, args, readable):
    head, table = explain(daemon, *args)
    assert set(table) == set(VALUES)
    for name, (access, rule) in table.items():
        if name in readable:
            assert (access, rule) == ("allow", readable[name]), (name, head)
        else:
            assert access == "deny", (name, head, table)
    return head


# ---- the attack first ---------------------------------------------------------

def test_a_cgroup_named_like_a_pod_the_kubelet_does_not_list_is_denied(
        make_daemon, secrets_dir, tmp_path, cgroups, kubelet):
    real = Pod("payments", "api-1", "payments-api", "api", "containerd")
    kubelet.set_pods([real.doc])
    # Even a rule that names no Kubernetes key denies an unlisted pod.
    rules = RULES + [{"id": "any-container", "match": {"any": True},
                      "allow": ["ca_bundle"]}]
    d = make_daemon(make_config(secrets_dir, tmp_path, kubelet, rules=rules))
    forged = Pod("payments", "api-1", "payments-api", "api", "containerd")
    # The real pod's uid with a container id the kubelet does not list,
    # and the real container id claimed under a CRI-O scope.
    other_ctr = Pod("payments", "api-1", "payments-api", "api", "containerd")
    other_ctr.uid = real.uid
    other_ctr.cgroup = real.cgroup.replace(real.cid, other_ctr.cid)
    wrong_rt = Pod("payments", "api-1", "payments-api", "api", "cri-o")
    wrong_rt.uid, wrong_rt.cid = real.uid, real.cid
    wrong_rt.cgroup = ("kubepods.slice/kubepods-besteffort.slice/"
                       "kubepods-besteffort-pod%s.slice/crio-%s.scope"
                       % (slice_uid(real.uid), real.cid))
    readers = []
    try:
        for p in (forged, other_ctr, wrong_rt, real):
            readers.append(Reader(cgroups.make(p.cgroup), d.mountpoint,
                                  VALUES))
        for r in readers[:3]:
            assert_reads(r, {})
            head = assert_explain(d, ["--pid", str(r.pid)], {})
            assert "not listed by the kubelet: denied" in head, head
        assert_reads(readers[3], {"db_password": "payments-api",
                                  "ca_bundle": "any-container"})
        recs = [r for r in audit_records(tmp_path) if r.get("pid") in
                [x.pid for x in readers[:3]]]
        assert recs and all(r["outcome"] == "deny" for r in recs)
        assert all(r["rule"] == "default-deny" for r in recs)
        assert all(r["k8s"]["state"] == "unlisted" and
                   r["k8s"]["namespace"] is None for r in recs)
        assert {r["k8s"]["pod_uid"] for r in recs} == {forged.uid, real.uid}
    finally:
        for r in readers:
            r.finish()


# ---- two pods, rules by namespace, service account and label -----------------

def test_pods_read_only_their_own_secrets(make_daemon, secrets_dir, tmp_path,
                                          cgroups, kubelet):
    pay = Pod("payments", "api-7d9f", "payments-api", "api", "containerd",
              labels={"app": "pay"})
    web = Pod("frontend", "web-0", "web", "nginx", "cri-o",
              labels={"app": "web"})
    rep = Pod("reports", "report-x", "reports", "report", "kubepods",
              driver="cgroupfs")
    # Same namespace as pay, another service account: nothing.
    other = Pod("payments", "cron-1", "default", "cron", "containerd",
                labels={"app": "web"})
    kubelet.set_pods([p.doc for p in (pay, web, rep, other)])
    d = make_daemon(make_config(secrets_dir, tmp_path, kubelet))
    cases = [(pay, {"db_password": "payments-api"}),
             (web, {"session_key": "frontend-web"}),
             (rep, {"report_token": "reports"}),
             (other, {})]
    readers = []
    try:
        for p, _ in cases:
            readers.append(Reader(cgroups.make(p.cgroup), d.mountpoint,
                                  VALUES))
        for r, (p, readable) in zip(readers, cases):
            assert_reads(r, readable)
            head = assert_explain(d, ["--pid", str(r.pid)], readable)
            assert ("k8s namespace %s, pod %s, service account %s, "
                    "container %s" % (p.ns, p.name, p.sa, p.container)) \
                in head, head
            head2 = assert_explain(d, ["--pod", "%s/%s" % (p.ns, p.name)],
                                   readable)
            assert "process %d " % r.pid in head2, head2
            assert_explain(d, ["--pod", "%s/%s" % (p.ns, p.name),
                               "--container", p.container], readable)
        recs = audit_records(tmp_path)
        for r, (p, readable) in zip(readers, cases):
            mine = [x for x in recs if x.get("pid") == r.pid]
            assert {x["secret"] for x in mine if x["outcome"] == "allow"} \
                == set(readable)
            for x in mine:
                assert x["k8s"] == {"state": "known", "namespace": p.ns,
                                    "pod": p.name, "service_account": p.sa,
                                    "container": p.container,
                                    "pod_uid": p.uid}, x
                assert x["container"]["id"] == p.cid
    finally:
        for r in readers:
            r.finish()
    # The host is in no pod: no k8s member, and nothing to read.
    assert os.listdir(d.mountpoint) == []
    host = [x for x in audit_records(tmp_path) if x.get("pid") == os.getpid()]
    assert all("k8s" not in x for x in host)


def test_explain_pod_errors(make_daemon, secrets_dir, tmp_path, kubelet):
    d = make_daemon(make_config(secrets_dir, tmp_path, kubelet), start=False)
    for args, msg in ((["--pod", "nobody/here"], "lists no such pod"),
                      (["--pod", "no-slash"], "expected NAMESPACE/NAME")):
        r = subprocess.run([binary(), "explain", "-c", str(d.config_path)]
                           + args, capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r
        assert msg in r.stderr, r.stderr


# ---- new pods, the kubelet down, the token refused ---------------------------

def test_a_new_pod_is_known_at_its_first_open_with_one_request(
        make_daemon, secrets_dir, tmp_path, cgroups, kubelet):
    pay = Pod("payments", "api-1", "payments-api", "api", "containerd")
    kubelet.set_pods([pay.doc])
    d = make_daemon(make_config(secrets_dir, tmp_path, kubelet))
    readers = []
    try:
        readers.append(LoopReader(cgroups.make(pay.cgroup), d.mountpoint,
                                  VALUES))
        assert_reads(readers[0], {"db_password": "payments-api"})
        late = Pod("frontend", "web-9", "web", "nginx", "cri-o",
                   labels={"app": "web"})
        kubelet.set_pods([pay.doc, late.doc])
        time.sleep(0.3)     # past min_refresh: this test counts requests
        kubelet.reset()
        readers.append(LoopReader(cgroups.make(late.cgroup), d.mountpoint,
                                  VALUES))
        assert_reads(readers[1], {"session_key": "frontend-web"})
        # The first open asked once; the other opens and the listing
        # used that answer, and so does the pod known before.
        assert_reads(readers[0], {"db_password": "payments-api"})
        assert kubelet.stats()["pods_requests"] == 1
    finally:
        for r in readers:
            r.finish()


def test_kubelet_down_known_pods_keep_reading_new_ones_are_denied(
        make_daemon, secrets_dir, tmp_path, cgroups, kubelet):
    pay = Pod("payments", "api-1", "payments-api", "api", "containerd")
    kubelet.set_pods([pay.doc])
    d = make_daemon(make_config(secrets_dir, tmp_path, kubelet,
                                cache_ttl="1s"))
    readers = []
    try:
        readers.append(LoopReader(cgroups.make(pay.cgroup), d.mountpoint,
                                  VALUES))
        assert_reads(readers[0], {"db_password": "payments-api"})
        late = Pod("frontend", "web-9", "web", "nginx", "cri-o",
                   labels={"app": "web"})
        kubelet.set_pods([pay.doc, late.doc])
        kubelet.stop()
        time.sleep(1.2)     # the snapshot is stale: every open asks
        assert_reads(readers[0], {"db_password": "payments-api"})
        readers.append(LoopReader(cgroups.make(late.cgroup), d.mountpoint,
                                  VALUES))
        assert_reads(readers[1], {})
        recs = [x for x in audit_records(tmp_path)
                if x.get("pid") == readers[1].pid]
        assert recs and all(x["outcome"] == "deny" for x in recs)
        assert all(x["k8s"]["state"] == "unreachable" and
                   x["k8s"]["pod_uid"] == late.uid for x in recs)
        assert "kubelet: %s unreachable" % kubelet.addr in d.log()
        # Back up: the new pod is recognised.
        kubelet.restart()
        time.sleep(0.3)
        assert_reads(readers[1], {"session_key": "frontend-web"})
        assert "kubelet: %s answers again" % kubelet.addr in d.log()
    finally:
        for r in readers:
            r.finish()


@pytest.mark.parametrize("which", ["wrong", "forbidden"])
def test_a_rejected_token_says_so_in_the_log(make_daemon, secrets_dir,
                                             tmp_path, cgroups, kubelet,
                                             which):
    pay = Pod("payments", "api-1", "payments-api", "api", "containerd")
    kubelet.set_pods([pay.doc])
    kubelet.write_token("not-a-token" if which == "wrong"
                        else kubelet.forbidden_token)
    d = make_daemon(make_config(secrets_dir, tmp_path, kubelet))
    r = Reader(cgroups.make(pay.cgroup), d.mountpoint, VALUES)
    try:
        assert_reads(r, {})
    finally:
        r.finish()
    if which == "wrong":
        assert ("kubelet: %s rejected the token in %s (401 Unauthorized)"
                % (kubelet.addr, kubelet.token_file)) in d.log(), d.log()
        assert kubelet.stats()["unauthorized"] >= 1
    else:
        assert ("kubelet: %s refused GET /pods (403 Forbidden): the service "
                "account needs \"get\" on nodes/proxy" % kubelet.addr) \
            in d.log(), d.log()
        assert kubelet.stats()["forbidden"] >= 1
    # The token itself never reaches the log.
    assert kubelet.forbidden_token not in d.log()
    assert kubelet.token not in d.log()


def test_status_names_the_pod_that_has_not_reopened(make_daemon, secrets_dir,
                                                    tmp_path, cgroups,
                                                    kubelet):
    pay = Pod("payments", "api-1", "payments-api", "api", "containerd")
    kubelet.set_pods([pay.doc])
    rules = RULES + [{"id": "host", "match": {"host": True},
                      "allow": ["db_password"]}]
    cfg = make_config(secrets_dir, tmp_path, kubelet, rules=rules)
    cfg["secrets"]["db_password"]["refresh"] = "1s"
    d = make_daemon(cfg)
    r = LoopReader(cgroups.make(pay.cgroup), d.mountpoint, VALUES)
    try:
        assert_reads(r, {"db_password": "payments-api"})
        p = secrets_dir / "db_password"
        old = os.stat(p).st_mtime_ns
        p.write_bytes(b"pay-db-rotated-2")
        os.utime(p, ns=(old + 10**9, old + 10**9))
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            with open(d.path("db_password"), "rb") as f:
                if f.read() == b"pay-db-rotated-2":
                    break
            time.sleep(0.2)
        st = subprocess.run([binary(), "status", "-c", str(d.config_path),
                             "--json"], capture_output=True, text=True,
                            timeout=30)
        assert st.returncode == 0, st.stderr
        (sec,) = [s for s in json.loads(st.stdout)["secrets"]
                  if s["name"] == "db_password"]
        (h,) = [h for h in sec["not_reopened"] if h.get("id") == pay.cid]
        assert h["k8s"] == {"namespace": "payments", "pod": "api-1",
                            "service_account": "payments-api",
                            "container": "api"}
        text = subprocess.run([binary(), "status", "-c", str(d.config_path)],
                              capture_output=True, text=True, timeout=30)
        assert ("pod payments/api-1 (service account payments-api, "
                "container api), container %s" % pay.cid[:12]) \
            in text.stdout, text.stdout
    finally:
        r.finish()


def test_the_kubelet_by_host_name(make_daemon, secrets_dir, tmp_path,
                                  cgroups, kubelet):
    # As with NODE_NAME: a host name, and the certificate checked for it,
    # from the sandboxed FUSE process. (libcurl answers "localhost" itself,
    # so the system resolver is not exercised here.)
    pay = Pod("payments", "api-1", "payments-api", "api", "containerd")
    kubelet.set_pods([pay.doc])
    d = make_daemon(make_config(secrets_dir, tmp_path, kubelet,
                                url="https://localhost:%d" % kubelet.port))
    r = Reader(cgroups.make(pay.cgroup), d.mountpoint, VALUES)
    try:
        assert_reads(r, {"db_password": "payments-api"})
    finally:
        r.finish()
    assert d.proc.poll() is None, d.log()
    assert kubelet.stats()["pods_requests"] >= 1
