"""Operating the broker through a real mount: central rotation, backend outages, who
still holds an old version, on_rotate signals, the control socket (status, metrics,
flush, refresh, health), SIGHUP reloads, and systemd readiness.

What the issue asks of the backends runs against both local fakes (tests/fakes/): every
test that takes the `side` fixture runs once against the Vault fake and once against
the AWS Secrets Manager fake, through a small adapter (VaultSide, AwsSide) that writes a
new version, stops and restarts the fake, and reads what the fake counted. Those are:
rotation under 16 readers; an outage (stale until max_stale, then EIO, then recovery
without a restart); a never-fetched secret with the backend stopped; status naming who
has not reopened since a rotation; on_rotate signals; metrics against the fake's own
counts; flush and refresh; a SIGHUP with a broken config. Vault only: a backend that
accepts TCP but never answers (the timeout bound is the same code for both). The file
backend covers what is not about a remote backend: delete-and-recreate grace,
directory and prefix refreshes, the control socket's permissions, a reload that adds and
removes secrets, and sd_notify. Readers in containers are made-up cgroups
(containers.py). Intervals are short (refresh 1 s, max_stale 3 s).

Run: SECRETSFS_BIN=BUILD/fuse/secretsfs /usr/bin/python3 -m pytest -q \
         tests/system/test_ops.py
"""
import errno
import json
import math
import os
import queue
import re
import secrets
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

from conftest import binary, is_mounted, need, require_fuse, run_as, write_private
from containers import FakeCgroups, cgroup2_mount, hex64

FAKES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes")
sys.path.insert(0, FAKES)
from aws_fixture import AwsFake  # noqa: E402
from vault_fixture import VaultFake, make_pki  # noqa: E402

HOST_RULE = {"id": "host", "match": {"host": True}, "allow": ["*"]}


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def vault(tmp_path_factory, pki):
    v = VaultFake.start(tmp_path_factory.mktemp("vault"), pki, quiet=True)
    yield v
    v.stop()


@pytest.fixture(scope="module")
def aws(tmp_path_factory, pki):
    f = AwsFake.start(tmp_path_factory.mktemp("aws"), pki.dir)
    yield f
    f.stop()


@pytest.fixture
def cgroups():
    require_fuse()
    need(cgroup2_mount() is not None, "no cgroup2 hierarchy is mounted")
    cg = FakeCgroups()
    yield cg
    cg.remove()


def vault_backend(vault, **http):
    h = {"retry_base": "20ms", "retry_max": "100ms"}
    h.update(http)
    return {"type": "vault", "address": vault.addr,
            "tls": {"ca_file": vault.ca, "client_cert": vault.client_cert,
                    "client_key": vault.client_key},
            "auth": {"method": "cert"}, "http": h}


def aws_backend(aws):
    # Static keys in the config come first in the credential chain.
    return {"type": "aws", "region": aws.region, "endpoint": aws.endpoint,
            "tls": {"ca_file": aws.ca_file},
            "credentials": {"access_key_id": aws.access_key,
                            "secret_access_key": aws.secret_key},
            "http": {"retry_base": "20ms", "retry_max": "100ms"}}


class VaultSide:
    """The Vault fake as backend "vault": a secret is a KV v2 path whose field "k"
    the mount serves; versions are KV versions."""
    name = "vault"

    def __init__(self, fake):
        self.fake = fake

    def key(self, what):
        return "ops/%s-%s" % (what, secrets.token_hex(4))

    def backend(self, **http):
        return vault_backend(self.fake, **http)

    def secret(self, key, **extra):
        return dict({"backend": self.name, "ref": key, "field": "k"}, **extra)

    def put(self, key, value):
        """Write a new version; returns its version as the mount shows it."""
        return str(self.fake.kv_put("secret", key, {"k": value.decode()}))

    def requests(self, key):
        """Fetches of key the fake saw, failed ones included."""
        return self.fake.stats()["by_path"].get("GET /v1/secret/data/" + key, 0)

    def fail_next(self, key):
        self.fake.faults(status_once={"code": 500, "prefix": "/v1/secret/data/" + key})

    def faults_fired(self):
        return sum(self.fake.stats()["faults"].values())

    def stop(self):
        self.fake.stop()

    def restart(self):
        self.fake.restart()


class AwsSide:
    """The Secrets Manager fake as backend "aws": a secret is a SecretString;
    versions are VersionIds."""
    name = "aws"

    def __init__(self, fake):
        self.fake = fake

    def key(self, what):
        return "ops-%s-%s" % (what, secrets.token_hex(4))

    def backend(self, **http):
        b = aws_backend(self.fake)
        b["http"].update(http)
        return b

    def secret(self, key, **extra):
        return dict({"backend": self.name, "ref": key}, **extra)

    def put(self, key, value):
        return self.fake.put_secret(key, string=value.decode())["VersionId"]

    def requests(self, key):
        return self.fake.count("GetSecretValue", key)

    def fail_next(self, key):
        self.fake.faults(kind="error500", count=1, operation="GetSecretValue",
                         secret_id=key)

    def faults_fired(self):
        return sum(self.fake.stats()["faults_fired"].values())

    def stop(self):
        self.fake.stop()

    def restart(self):
        self.fake.restart()


@pytest.fixture(params=["vault", "aws"])
def side(request):
    """Each backend fake in turn, running (an earlier test may have stopped it)."""
    fake = request.getfixturevalue(request.param)
    if not fake.running:
        fake.restart()
    return (VaultSide if request.param == "vault" else AwsSide)(fake)


def side_config(side, secrets_, rules=None, http=None, **extra):
    cfg = {"backends": {side.name: side.backend(**(http or {}))},
           "secrets": secrets_, "rules": rules or [HOST_RULE]}
    cfg.update(extra)
    return cfg


def with_audit(cfg, tmp_path, flush_interval=0):
    key = write_private(tmp_path / "audit.key", os.urandom(32).hex() + "\n")
    cfg["audit"] = {"file": str(tmp_path / "audit.log"), "key_file": str(key),
                    "flush_interval": flush_interval}
    return cfg


def audit_records(tmp_path):
    with open(tmp_path / "audit.log") as f:
        return [json.loads(line) for line in f if line.strip()]


def file_config(secrets_dir, values, secrets=None, rules=None, **extra):
    for name, value in values.items():
        (secrets_dir / name).write_bytes(value)
    cfg = {"backends": {"dev": {"type": "file", "dir": str(secrets_dir)}},
           "secrets": secrets or {n: {"backend": "dev"} for n in values},
           "rules": rules or [HOST_RULE]}
    cfg.update(extra)
    return cfg


def read(d, name):
    with open(d.path(name), "rb") as f:
        return f.read()


def read_errno(d, name):
    try:
        read(d, name)
    except OSError as e:
        return e.errno
    return 0


def wait_for(pred, timeout=10, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def rotate_file(secrets_dir, name, value):
    """A new version for the file backend: new bytes, a later mtime."""
    p = secrets_dir / name
    old = os.stat(p).st_mtime_ns if p.exists() else 0
    tmp = secrets_dir / (name + ".tmp")
    tmp.write_bytes(value)
    os.utime(tmp, ns=(old + 10**9, old + 10**9))
    os.rename(tmp, p)


def ctl(d, *args, sock=False, check=True):
    """The CLI against d's control socket: by -c CONFIG, or -s SOCKET."""
    verb, rest = args[0], list(args[1:])
    where = ["-s", d.mountpoint + ".sock"] if sock else ["-c", str(d.config_path)]
    r = subprocess.run([binary(), verb] + where + rest, capture_output=True,
                       text=True, timeout=60)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def status(d):
    return json.loads(ctl(d, "status", "--json").stdout)


def secret_status(d, name):
    return next(s for s in status(d)["secrets"] if s["name"] == name)


# A process that opens a secret when told to, and says when it gets SIGHUP.
OPENER = r"""
import json, os, signal, sys
procs, path = sys.argv[1], sys.argv[2]
if procs != "-":
    with open(procs, "w") as f:
        f.write(str(os.getpid()))
signal.signal(signal.SIGHUP, lambda s, f: print("signal %d" % s, flush=True))
print("ready", flush=True)
for line in sys.stdin:
    try:
        with open(path, "rb") as f:
            print(json.dumps(["ok", f.read().hex()]), flush=True)
    except OSError as e:
        print(json.dumps(["err", e.errno]), flush=True)
"""


class Opener:
    def __init__(self, path, cgroup_dir=None):
        procs = os.path.join(cgroup_dir, "cgroup.procs") if cgroup_dir else "-"
        self.proc = subprocess.Popen([sys.executable, "-c", OPENER, procs, path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.lines = queue.Queue()
        self.signals = []
        threading.Thread(target=self._pump, daemon=True).start()
        assert self._next(10) == "ready"

    @property
    def pid(self):
        return self.proc.pid

    def _pump(self):
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("signal "):
                self.signals.append(int(line.split()[1]))
            else:
                self.lines.put(line)

    def _next(self, timeout):
        return self.lines.get(timeout=timeout)

    def read(self):
        self.proc.stdin.write("read\n")
        self.proc.stdin.flush()
        kind, val = json.loads(self._next(10))
        return bytes.fromhex(val) if kind == "ok" else val

    def finish(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------- metrics

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)?\})? (\S+)(?: -?\d+)?$"
                    % (METRIC_NAME, LABEL, LABEL))
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_prometheus(text):
    """A strict reader of the text exposition format 0.0.4. Returns
    {(name, ((label, value), ...)): float}. Fails on: a sample before its TYPE, a
    family declared twice or split, an unknown type, a malformed line or value, a
    duplicate series, a counter that is negative or not *_total, histogram buckets
    that are not cumulative or whose +Inf bucket differs from _count."""
    types, samples, seen_families, current = {}, {}, [], None
    assert text.endswith("\n"), "the exposition must end with a newline"
    for line in text.splitlines():
        assert line, "empty line"
        if line.startswith("#"):
            parts = line.split(" ", 3)
            assert parts[0] == "#" and parts[1] in ("HELP", "TYPE"), line
            assert re.fullmatch(METRIC_NAME, parts[2]), line
            if parts[1] == "TYPE":
                assert parts[2] not in types, "family declared twice: " + line
                assert parts[3] in ("counter", "gauge", "histogram", "summary",
                                    "untyped"), line
                types[parts[2]] = parts[3]
                current = parts[2]
                seen_families.append(current)
            continue
        m = SAMPLE.match(line)
        assert m, "malformed sample: %r" % line
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        family = name
        if current and types.get(current) == "histogram" and \
                name in (current + "_bucket", current + "_sum", current + "_count"):
            family = current
        assert family == current, "sample outside its family: " + line
        v = float(value)        # accepts +Inf, -Inf, NaN like Prometheus
        pairs = tuple(LABEL_RE.findall(labels))
        assert len(set(k for k, _ in pairs)) == len(pairs), "duplicate label: " + line
        key = (name, pairs)
        assert key not in samples, "duplicate series: " + line
        samples[key] = v
        if types[family] == "counter":
            assert name.endswith("_total") and v >= 0, line
    for fam, typ in types.items():
        if typ != "histogram":
            continue
        series = {}
        for (name, pairs), v in samples.items():
            if name == fam + "_bucket":
                rest = tuple(p for p in pairs if p[0] != "le")
                le = dict(pairs)["le"]
                series.setdefault(rest, []).append(
                    (math.inf if le == "+Inf" else float(le), v))
        for rest, buckets in series.items():
            buckets.sort()
            counts = [c for _, c in buckets]
            assert counts == sorted(counts), "buckets not cumulative: %s" % fam
            assert buckets[-1][0] == math.inf, "no +Inf bucket: %s" % fam
            assert samples[(fam + "_count", rest)] == buckets[-1][1]
            assert (fam + "_sum", rest) in samples
    return samples


def metric(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


# --------------------------------------------------------------------------- rotation

def _rotation_under_readers(d, name, v1, v2, rotate, refresh_s):
    stop = threading.Event()
    bad, errors, first_new = [], [], []

    def reader():
        while not stop.is_set():
            try:
                fd = os.open(d.path(name), os.O_RDONLY)
                try:
                    chunks = []
                    while True:
                        c = os.read(fd, 4096)   # several FUSE reads per value
                        if not c:
                            break
                        chunks.append(c)
                finally:
                    os.close(fd)
                data = b"".join(chunks)
            except OSError as e:
                errors.append(e)
                continue
            if data == v2:
                if not first_new:
                    first_new.append(time.monotonic())
            elif data != v1:
                bad.append(len(data))

    assert read(d, name) == v1
    time.sleep(0.3)
    threads = [threading.Thread(target=reader) for _ in range(16)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        rotate()
        deadline = t0 + refresh_s + 3
        while not first_new and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)         # more reads of the new value
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert bad == [], "empty, partial or mixed values were read"
    assert errors == []
    assert first_new, "the new value never arrived"
    assert first_new[0] - t0 <= refresh_s + 1, first_new[0] - t0
    assert read(d, name) == v2


def test_rotation_reaches_16_readers_atomically(make_daemon, side, tmp_path):
    v1 = b"A" * 6000 + b"-1"
    v2 = b"B" * 9000 + b"-2"
    key = side.key("rot")
    ver1 = side.put(key, v1)
    d = make_daemon(with_audit(side_config(side, {"db": side.secret(key, refresh="1s")}),
                               tmp_path, flush_interval="1s"))
    assert os.getxattr(d.path("db"), "user.secretsfs.version").decode() == ver1
    st_old = os.stat(d.path("db"))
    new = []
    _rotation_under_readers(d, "db", v1, v2, lambda: new.append(side.put(key, v2)), 1)
    ver2 = new[0]
    assert ver2 != ver1
    # The version, the times and the size moved with the value.
    assert os.getxattr(d.path("db"), "user.secretsfs.version").decode() == ver2
    st = os.stat(d.path("db"))
    assert st.st_size == len(v2)
    assert st.st_mtime_ns > st_old.st_mtime_ns and st.st_ctime_ns > st_old.st_ctime_ns
    # Exactly one rotate record, with both versions, and never a value.
    recs = audit_records(tmp_path)
    rot = [r for r in recs if r["event"] == "rotate"]
    assert [(r["old_version"], r["new_version"]) for r in rot] == [(ver1, ver2)]
    text = (tmp_path / "audit.log").read_bytes() + d.log().encode()
    assert v1 not in text and v2 not in text
    # The rotate record precedes every access to the new version.
    first_new = next(i for i, r in enumerate(recs) if r["event"] == "access"
                     and r["version"] == ver2)
    assert recs.index(rot[0]) < first_new


# --------------------------------------------------------------------------- outages

def test_backend_outage_stale_then_eio_then_recovery(make_daemon, side, tmp_path):
    key = side.key("outage")
    value = b"still-here-" + secrets.token_hex(4).encode()
    side.put(key, value)
    d = make_daemon(with_audit(side_config(
        side, {"s": side.secret(key, refresh="1s")},
        http={"timeout": "2s", "connect_timeout": "1s", "max_retries": 0},
        cache={"max_stale": "3s"}), tmp_path))
    assert read(d, "s") == value
    # Keep it hot for a moment: refreshed in the background.
    for _ in range(15):
        assert read(d, "s") == value
        time.sleep(0.1)
    t_stop = time.monotonic()
    side.stop()
    try:
        first_fail = None
        stale_seen = healthy_while_stale = False
        while time.monotonic() - t_stop < 8:
            t = time.monotonic()
            err = read_errno(d, "s")
            took = time.monotonic() - t
            if err == 0:
                assert first_fail is None, "served again after failing closed"
                if not stale_seen and t - t_stop > 1.5:
                    st = secret_status(d, "s")
                    if st["state"] == "stale":
                        stale_seen = True
                        healthy_while_stale = ctl(d, "health", check=False).returncode == 0
                        be = status(d)["backends"][0]
                        assert be["reachable"] is False and be["errors"] >= 1
            else:
                assert err == errno.EIO
                # A fetch to a dead backend answers within its timeout.
                assert took < 2 + 0.5
                first_fail = t - t_stop
                break
            time.sleep(0.1)
        # The last good fetch was at most 1 s before the stop: served until
        # its expiry (1 s) + max_stale (3 s), not longer.
        assert first_fail is not None, "the stale value was served forever"
        assert 2.8 <= first_fail <= 5.5, first_fail
        assert stale_seen and healthy_while_stale
        assert read_errno(d, "s") == errno.EIO
        # Unhealthy once the backend has failed for longer than max_stale.
        assert wait_for(lambda: ctl(d, "health", check=False).returncode == 1,
                        timeout=4)
        r = ctl(d, "health", check=False)
        assert "backend %s unreachable" % side.name in r.stderr
        samples = parse_prometheus(ctl(d, "metrics").stdout)
        assert metric(samples, "secretsfs_cache_stale_served_total") >= 1
        assert metric(samples, "secretsfs_cache_expired_total") == 1
        assert metric(samples, "secretsfs_backend_up", backend=side.name) == 0
    finally:
        side.restart()
    # Back without a restart of the daemon.
    assert wait_for(lambda: read_errno(d, "s") == 0, timeout=6)
    assert read(d, "s") == value
    assert ctl(d, "health").returncode == 0
    assert side.requests(key) >= 1          # the restarted fake was asked
    log = d.log()
    assert "refresh failed; serving version" in log
    assert "dropped; reads fail with EIO until the backend answers" in log
    stale = [(r["secret"], r["action"]) for r in audit_records(tmp_path)
             if r["event"] == "stale"]
    assert ("s", "served") in stale and ("s", "expired") in stale
    assert value.decode() not in log


def test_never_fetched_secret_with_the_backend_down_fails_within_the_timeout(
        make_daemon, side, tmp_path):
    key = side.key("down")
    side.put(key, b"later")
    # Default retries: http.timeout bounds the whole request, retries included.
    d = make_daemon(with_audit(side_config(
        side, {"s": side.secret(key)},
        http={"timeout": "1500ms", "connect_timeout": "1s"}), tmp_path))
    side.stop()                 # connection refused
    try:
        results = []

        def one():
            t = time.monotonic()
            results.append((read_errno(d, "s"), time.monotonic() - t))
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert [e for e, _ in results] == [errno.EIO] * 4
        assert max(t for _, t in results) < 1.5 + 1, results
        be = status(d)["backends"][0]
        assert be["reachable"] is False and be["errors"] >= 1
        assert secret_status(d, "s")["version"] is None
        errs = [r for r in audit_records(tmp_path) if r["event"] == "backend_error"
                and r.get("secret") == "s"]
        assert errs, "the failed fetch is not in the audit trail"
        assert d.proc.poll() is None
    finally:
        side.restart()
    # The first read after the backend is back fetches it.
    assert wait_for(lambda: read_errno(d, "s") == 0, timeout=6)
    assert read(d, "s") == b"later"
    assert side.requests(key) >= 1


def test_never_fetched_secret_with_a_hung_backend_fails_within_the_timeout(
        make_daemon, vault):
    # A listener that never answers: TCP connects, TLS never starts.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    try:
        b = vault_backend(vault, timeout="1500ms", connect_timeout="1s",
                          max_retries=0)
        b["address"] = "https://127.0.0.1:%d" % hole.getsockname()[1]
        d = make_daemon({"backends": {"vault": b},
                         "secrets": {"s": {"backend": "vault", "ref": "ops/none"}},
                         "rules": [HOST_RULE]})
        results = []

        def one():
            t = time.monotonic()
            results.append((read_errno(d, "s"), time.monotonic() - t))
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        # Bounded by the HTTP timeouts: the kernel queues lookups of one
        # name behind each other, and those queued get the first one's
        # failure instead of a timeout each.
        assert [e for e, _ in results] == [errno.EIO] * 4
        assert max(t for _, t in results) < 1.5 + 1, results
        assert d.proc.poll() is None
    finally:
        hole.close()


def test_deleted_secret_is_served_for_the_grace_then_gone(make_daemon, secrets_dir):
    d = make_daemon(file_config(
        secrets_dir, {"db": b"one"},
        secrets={"db": {"backend": "dev", "refresh": "1s"}},
        cache={"delete_grace": "2s", "negative_ttl": "1s"}))
    assert read(d, "db") == b"one"
    # Delete and recreate, as some rotations do: no ENOENT in between.
    os.unlink(secrets_dir / "db")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.5:
        assert read(d, "db") == b"one"
        time.sleep(0.05)
    assert "the backend no longer has it" in d.log()
    rotate_file(secrets_dir, "db", b"two")
    assert wait_for(lambda: read(d, "db") == b"two", timeout=3)
    # Deleted for good: gone once the grace is over.
    os.unlink(secrets_dir / "db")
    t0 = time.monotonic()
    assert wait_for(lambda: read_errno(d, "db") == errno.ENOENT, timeout=6)
    assert time.monotonic() - t0 >= 1.5
    assert "deleted in the backend: no longer served" in d.log()


# --------------------------------------------------------------------------- status

def test_status_names_who_has_not_reopened_since_a_rotation(
        make_daemon, side, cgroups):
    cid = hex64()
    key = side.key("status")
    ver1 = side.put(key, b"version-one")
    d = make_daemon(side_config(
        side, {"db": side.secret(key, refresh="1s")},
        rules=[{"id": "svc", "match": {"container_id": cid}, "allow": ["db"]},
               HOST_RULE]))
    box = Opener(d.path("db"), cgroups.make("system.slice/docker-%s.scope" % cid))
    host = Opener(d.path("db"))
    try:
        assert box.read() == b"version-one"
        assert host.read() == b"version-one"
        st = secret_status(d, "db")
        assert st["version"] == ver1
        assert st["not_reopened"] == [] and st["holders"] == 2
        ver2 = side.put(key, b"version-two")
        # Anyone's read brings the new version in.
        assert wait_for(lambda: read(d, "db") == b"version-two", timeout=4)
        st = secret_status(d, "db")
        assert st["version"] == ver2 and st["previous_version"] == ver1
        assert st["rotated_at"] is not None
        behind = {(h["kind"], h.get("id"), h["pid"]): h for h in st["not_reopened"]}
        assert ("container", cid, box.pid) in behind
        assert ("process", None, host.pid) in behind
        c = behind[("container", cid, box.pid)]
        assert c["runtime"] == "docker" and c["version"] == ver1
        assert behind[("process", None, host.pid)]["comm"].startswith("python")
        text = ctl(d, "status").stdout
        assert "not reopened since version %s" % ver2 in text
        assert "container %s" % cid[:12] in text
        assert "process %d (" % host.pid in text
        # The container reopens: no longer named; the host process still is.
        assert box.read() == b"version-two"
        behind = [(h["kind"], h["pid"]) for h in secret_status(d, "db")["not_reopened"]]
        assert behind == [("process", host.pid)]
        assert host.read() == b"version-two"
        assert secret_status(d, "db")["not_reopened"] == []
        # A holder that exits is forgotten.
        host.finish()
        assert secret_status(d, "db")["holders"] == 2     # box and this test
    finally:
        box.finish()
        host.finish()


def test_on_rotate_signals_the_openers(make_daemon, side):
    kdb, kother = side.key("onrot"), side.key("bystander")
    side.put(kdb, b"one")
    side.put(kother, b"x")
    d = make_daemon(side_config(side, {
        "db": side.secret(kdb, refresh="1s", on_rotate={"signal": "SIGHUP"}),
        "other": side.secret(kother, refresh="1s")}))
    opener = Opener(d.path("db"))
    bystander = Opener(d.path("other"))
    try:
        assert opener.read() == b"one"
        assert bystander.read() == b"x"
        time.sleep(0.2)
        # Nobody reads: on_rotate keeps the secret fresh by itself.
        side.put(kdb, b"two")
        assert wait_for(lambda: opener.signals, timeout=4), d.log()
        assert opener.signals == [signal.SIGHUP]
        # The log line follows the kill(2) that the reader may see first.
        assert wait_for(lambda: "secret db: sent SIGHUP to pid %d (python"
                        % opener.pid in d.log(), timeout=4), d.log()
        time.sleep(0.3)
        assert bystander.signals == []
        # Told, it reloads: the new value.
        assert opener.read() == b"two"
        samples = parse_prometheus(ctl(d, "metrics").stdout)
        assert metric(samples, "secretsfs_rotation_signals_total") == 1
        assert metric(samples, "secretsfs_rotations_total") == 1
        assert secret_status(d, "db")["on_rotate"] == "SIGHUP"
    finally:
        opener.finish()
        bystander.finish()


def test_metrics_parse_and_count_the_reads(make_daemon, side, tmp_path):
    ka, kb = side.key("metrics-a"), side.key("metrics-b")
    side.put(ka, b"alpha")
    side.put(kb, b"beta")
    # No retries: one request the daemon counts is one request the fake sees.
    d = make_daemon(with_audit(side_config(
        side, {"a": side.secret(ka), "b": side.secret(kb)},
        rules=[{"id": "host", "match": {"host": True}, "allow": ["a"]}],
        http={"max_retries": 0}), tmp_path))
    faults0 = side.faults_fired()
    for _ in range(5):
        assert read(d, "a") == b"alpha"
    for _ in range(2):
        assert read_errno(d, "b") == errno.ENOENT
    with open(d.path("a"), "rb"):
        samples = parse_prometheus(ctl(d, "metrics", sock=True).stdout)
    assert metric(samples, "secretsfs_open_files") == 1
    assert metric(samples, "secretsfs_reads_total") == 6
    samples = parse_prometheus(ctl(d, "metrics").stdout)
    assert metric(samples, "secretsfs_open_files") == 0
    assert metric(samples, "secretsfs_reads_total") == 6
    assert metric(samples, "secretsfs_denials_total") >= 2
    assert metric(samples, "secretsfs_read_errors_total") == 0
    assert metric(samples, "secretsfs_cache_misses_total") == 1
    assert metric(samples, "secretsfs_cache_hits_total") >= 6
    # The backend side, against what the fake counted: one fetch of a, and
    # none of b, which the rules refuse before any fetch.
    assert side.requests(ka) == 1 and side.requests(kb) == 0
    assert metric(samples, "secretsfs_backend_requests_total", backend=side.name) == 1
    assert metric(samples, "secretsfs_backend_errors_total", backend=side.name) == 0
    assert metric(samples, "secretsfs_backend_request_duration_seconds_count",
                  backend=side.name) == 1
    assert metric(samples, "secretsfs_backend_up", backend=side.name) == 1
    assert metric(samples, "secretsfs_backend_info", backend=side.name,
                  type=side.name) == 1
    assert metric(samples, "secretsfs_up") == 1
    assert metric(samples, "secretsfs_locked_bytes") >= 1 << 20
    assert metric(samples, "secretsfs_cache_stale_served_total") == 0
    assert metric(samples, "secretsfs_audit_failures_total") == 0
    assert metric(samples, "secretsfs_audit_records_total") == \
        len(audit_records(tmp_path))
    # Forgotten, then a fetch the fake fails, then one it answers. Whether the
    # reader sees the failure depends on the kernel: a lookup that fails while
    # revalidating a cached name is dropped and made again. The counts do not.
    assert ctl(d, "flush", "a").returncode == 0
    side.fail_next(ka)
    eio = []
    assert wait_for(lambda: eio.append(read_errno(d, "a")) or eio[-1] == 0, timeout=5)
    assert set(eio[:-1]) <= {errno.EIO} and len(eio) <= 2, eio
    assert read(d, "a") == b"alpha"
    samples = parse_prometheus(ctl(d, "metrics").stdout)
    seen, failed = side.requests(ka), side.faults_fired() - faults0
    assert seen == 3 and failed == 1
    assert metric(samples, "secretsfs_backend_requests_total", backend=side.name) == seen
    assert metric(samples, "secretsfs_backend_errors_total", backend=side.name) == failed
    assert metric(samples, "secretsfs_backend_request_duration_seconds_count",
                  backend=side.name) == seen
    assert metric(samples, "secretsfs_backend_request_duration_seconds_sum",
                  backend=side.name) > 0
    assert metric(samples, "secretsfs_backend_up", backend=side.name) == 1
    assert metric(samples, "secretsfs_read_errors_total") == len(eio) - 1
    assert metric(samples, "secretsfs_reads_total") == 8
    be = status(d)["backends"][0]
    assert (be["requests"], be["errors"]) == (seen, failed)
    assert metric(samples, "secretsfs_audit_records_total") == \
        len(audit_records(tmp_path))


def test_prometheus_parser_refuses_what_prometheus_would():
    for broken in ("x 1", "# TYPE x counter\nx 1\n", "# TYPE x_total counter\n"
                   "x_total -1\n", "# TYPE y gauge\ny{a=\"1\" 2\n"):
        with pytest.raises(AssertionError):
            parse_prometheus(broken)


def test_flush_and_refresh_make_the_backend_fetch_again(make_daemon, side):
    ks, kt = side.key("flush-s"), side.key("flush-t")
    side.put(ks, b"v")
    side.put(kt, b"t")
    d = make_daemon(side_config(side, {"s": side.secret(ks), "t": side.secret(kt)}))

    def fetches():
        return side.requests(ks), side.requests(kt)
    assert read(d, "s") == b"v" and fetches() == (1, 0)
    assert read(d, "s") == b"v" and fetches() == (1, 0)     # cached for 60 s
    assert ctl(d, "flush", "s").stdout == "flushed s\n"
    assert read(d, "s") == b"v" and fetches() == (2, 0)
    assert read(d, "t") == b"t" and fetches() == (2, 1)
    assert ctl(d, "flush", sock=True).returncode == 0      # every secret
    assert read(d, "s") == b"v" and read(d, "t") == b"t" and fetches() == (3, 2)
    ver = side.put(ks, b"w")
    r = ctl(d, "refresh", "s")
    assert r.stdout == "refreshed s: version %s\n" % ver and fetches() == (4, 2)
    assert read(d, "s") == b"w" and fetches() == (4, 2)
    r = ctl(d, "flush", "nope", check=False)
    assert r.returncode == 1 and "no secret \"nope\"" in r.stderr
    r = ctl(d, "refresh", "nope", check=False)
    assert r.returncode == 1 and "no secret \"nope\"" in r.stderr
    r = ctl(d, "refresh", check=False)
    assert r.returncode == 2                                # NAME is required
    be = status(d)["backends"][0]
    assert be["name"] == side.name and be["reachable"] is True
    assert be["requests"] == sum(fetches())
    if side.name == "vault":
        # What the backend told us of its login, for status.
        assert be["auth"]["method"] == "cert" and be["auth"]["ok"] is True
        assert 0 < be["auth"]["expires_in_s"] <= be["auth"]["ttl_s"]
        assert "cert login ok" in ctl(d, "status").stdout


def test_refresh_of_directory_and_prefix_secrets(make_daemon, secrets_dir):
    (secrets_dir / "pay").mkdir()
    d = make_daemon(file_config(
        secrets_dir, {"app.json": b'{"k":"v1"}', "pay/stripe": b"s1"},
        secrets={"app": {"backend": "dev", "ref": "app.json", "as": "directory"},
                 "pay": {"backend": "dev", "ref": "pay", "as": "prefix"}}))
    assert read(d, "app/k") == b"v1" and read(d, "pay/stripe") == b"s1"
    rotate_file(secrets_dir, "app.json", b'{"k":"v2"}')
    rotate_file(secrets_dir / "pay", "stripe", b"s2")
    # Cached for the default minute, unless asked.
    assert read(d, "app/k") == b"v1" and read(d, "pay/stripe") == b"s1"
    assert ctl(d, "refresh", "app").stdout.startswith("refreshed app: version ")
    assert read(d, "app/k") == b"v2"
    assert ctl(d, "refresh", "pay").stdout == "refreshed pay: version -\n"
    assert read(d, "pay/stripe") == b"s2"


def test_control_socket_is_root_only_and_not_stolen(make_daemon, secrets_dir,
                                                     tmp_path):
    sock = str(tmp_path / "ctl.sock")
    d = make_daemon(file_config(secrets_dir, {"a": b"alpha"},
                                control={"socket": sock}),
                    workdir=tmp_path / "one")
    st = os.lstat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == 0
    assert "control socket %s" % sock in d.log()
    # Not for anyone else: the socket's mode stops them at connect(2).
    probe = "import socket; socket.socket(socket.AF_UNIX).connect(%r)" % sock
    r = run_as(65534, 65534, [sys.executable, "-c", probe], text=True)
    assert r.returncode != 0 and "PermissionError" in r.stderr
    # A second daemon configured with the same socket leaves it alone.
    d2 = make_daemon(file_config(secrets_dir, {"a": b"alpha"},
                                 control={"socket": sock}),
                     workdir=tmp_path / "two")
    assert "another daemon answers on %s" % sock in d2.log()
    assert read(d2, "a") == b"alpha"
    assert status(d)["pid"] == d.pid
    assert d2.stop() == 0
    assert os.path.exists(sock) and status(d)["pid"] == d.pid
    assert d.stop() == 0
    assert not os.path.exists(sock)


# --------------------------------------------------------------------------- reload

def test_sighup_with_a_broken_config_keeps_the_old_one(make_daemon, side, tmp_path):
    key = side.key("hup")
    side.put(key, b"alpha")
    cfg = with_audit(side_config(side, {"a": side.secret(key)}), tmp_path)
    d = make_daemon(cfg)
    assert read(d, "a") == b"alpha"
    write_private(d.config_path, '{"backends": {')
    os.kill(d.pid, signal.SIGHUP)
    assert wait_for(lambda: d.log().count("still running on the previous") == 1)
    assert "invalid JSON" in d.log()
    assert read(d, "a") == b"alpha" and os.listdir(d.mountpoint) == ["a"]
    # Valid JSON, but a backend that cannot be opened: its CA file is gone.
    bad = json.loads(json.dumps(cfg))
    bad["backends"][side.name]["tls"]["ca_file"] = str(tmp_path / "missing-ca.crt")
    write_private(d.config_path, json.dumps(bad))
    os.kill(d.pid, signal.SIGHUP)
    assert wait_for(lambda: d.log().count("still running on the previous") == 2), d.log()
    assert "missing-ca.crt" in d.log()
    # The old config still reaches the backend: a new version comes through.
    ver = side.put(key, b"alpha-2")
    assert ctl(d, "refresh", "a").stdout == "refreshed a: version %s\n" % ver
    assert read(d, "a") == b"alpha-2"
    reloads = [r for r in audit_records(tmp_path) if r["event"] == "reload"]
    assert [r["outcome"] for r in reloads] == ["error", "error"]
    assert status(d)["reloads"] == {"ok": 0, "error": 2}
    assert d.proc.poll() is None


def test_sighup_with_a_new_config_adds_removes_and_changes_rules(
        make_daemon, secrets_dir, tmp_path):
    values = {"a": b"alpha", "b": b"beta", "c": b"gamma", "d": b"delta"}
    cfg = with_audit(file_config(
        secrets_dir, values,
        secrets={n: {"backend": "dev"} for n in ("a", "b", "c")},
        rules=[{"id": "host", "match": {"host": True}, "allow": ["a", "b"]}]),
        tmp_path)
    d = make_daemon(cfg)
    assert sorted(os.listdir(d.mountpoint)) == ["a", "b"]
    assert read_errno(d, "c") == errno.ENOENT
    ino_b = os.stat(d.path("b")).st_ino
    held = os.open(d.path("a"), os.O_RDONLY)
    try:
        new = json.loads(json.dumps(cfg))
        new["secrets"] = {n: {"backend": "dev", "mode": "0440"}
                          for n in ("b", "c", "d")}
        new["rules"] = [{"id": "host2", "match": {"host": True},
                         "allow": ["b", "c", "d"]}]
        write_private(d.config_path, json.dumps(new))
        os.kill(d.pid, signal.SIGHUP)
        assert wait_for(lambda: "reloaded" in d.log()), d.log()
        assert "3 secrets (1 added, 1 removed, 0 redefined)" in d.log()
        assert sorted(os.listdir(d.mountpoint)) == ["b", "c", "d"]
        assert read_errno(d, "a") == errno.ENOENT
        assert read(d, "c") == b"gamma" and read(d, "d") == b"delta"
        st = os.stat(d.path("b"))
        assert st.st_ino == ino_b                       # same name, same inode
        assert stat.S_IMODE(st.st_mode) == 0o440        # the new attributes
        # A reader that opened a removed secret finishes with its snapshot.
        assert os.read(held, 100) == b"alpha"
    finally:
        os.close(held)
    recs = audit_records(tmp_path)
    reload = [r for r in recs if r["event"] == "reload"]
    assert len(reload) == 1 and reload[0]["outcome"] == "ok"
    assert reload[0]["count"] == 3 and reload[0]["config"] == str(d.config_path)
    rules = {r["secret"]: r["rule"] for r in recs if r["event"] == "access"}
    assert rules["c"] == "host2" and rules["a"] == "host"
    assert status(d)["reloads"] == {"ok": 1, "error": 0}
    assert d.stop() == 0
    v = subprocess.run([binary(), "audit", "verify", "-k", str(tmp_path / "audit.key"),
                        str(tmp_path / "audit.log")], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr


# --------------------------------------------------------------------------- systemd

@pytest.mark.parametrize("abstract", [False, True])
def test_sd_notify_ready_watchdog_reload_stopping(make_daemon, secrets_dir, tmp_path,
                                                  monkeypatch, abstract):
    require_fuse()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = "sfs-test-notify-%s" % secrets.token_hex(6)
        s.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    else:
        path = str(tmp_path / "notify.sock")
        s.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    s.settimeout(10)
    got = []

    def until(pred):
        while True:
            msg = s.recv(4096).decode()
            got.append(msg)
            if pred(msg):
                return msg
    try:
        d = make_daemon(file_config(secrets_dir, {"a": b"alpha"}), start=False)
        d.start(wait=False)
        ready = until(lambda m: "READY=1" in m.split("\n"))
        # The mount is live when systemd hears READY=1.
        assert is_mounted(d.mountpoint)
        assert "MAINPID=%d" % d.pid in ready.split("\n")
        assert any(line.startswith("STATUS=serving 1 secrets") for line in
                   ready.split("\n"))
        d.wait_mounted()
        assert read(d, "a") == b"alpha"
        until(lambda m: m == "WATCHDOG=1")
        until(lambda m: m == "WATCHDOG=1")
        os.kill(d.pid, signal.SIGHUP)
        until(lambda m: "RELOADING=1" in m.split("\n"))
        until(lambda m: "READY=1" in m.split("\n"))
        d.stop()
        until(lambda m: m == "STOPPING=1")
    finally:
        s.close()
