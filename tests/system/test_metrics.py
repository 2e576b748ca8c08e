"""The scrape endpoint and the textfile (metrics.listen, metrics.textfile), against real
daemons: the same text as `secretsfs metrics`, /metrics and /healthz and nothing else,
TLS that refuses a client without the configured certificate, a Unix socket, a textfile
replaced atomically that says secretsfs_up 0 once the daemon stops, and no secret value
in anything served (every value of each test searched for). Then a real Prometheus
(Debian's binary, on loopback, its own config and storage in a temp dir) scraping two
daemons over the fake Vault: after a rotation, secretsfs_secret_old_version_holders is 1
for the daemon whose reader still holds the old value and 0 for the other, through
Prometheus's HTTP API; and promtool checks and unit-tests deploy/monitoring/'s rules.

Run: SECRETSFS_BIN=BUILD/fuse/secretsfs /usr/bin/python3 -m pytest -q \
         tests/system/test_metrics.py
"""
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from conftest import binary, need, write_private

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MONITORING = os.path.join(ROOT, "deploy", "monitoring")
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))
from vault_fixture import VaultFake, make_pki  # noqa: E402
from test_ops import Opener, ctl, parse_prometheus, metric, read, wait_for  # noqa: E402

HOST_RULE = {"id": "host", "match": {"host": True}, "allow": ["*"]}


def value():
    return ("val-" + secrets.token_hex(12)).encode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def file_config(secrets_dir, values, metrics):
    for name, v in values.items():
        (secrets_dir / name).write_bytes(v)
    return {"backends": {"dev": {"type": "file", "dir": str(secrets_dir)}},
            "secrets": {n: {"backend": "dev", "refresh": "1s"} for n in values},
            "rules": [HOST_RULE], "metrics": metrics}


def http_get(port, path, method="GET", raw=None, context=None, timeout=10):
    """(status, headers, body) of one request; raw sends bytes as they are."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if context:
        s = context.wrap_socket(s, server_hostname="127.0.0.1")
    with s:
        s.sendall(raw if raw is not None else
                  ("%s %s HTTP/1.1\r\nHost: x\r\n\r\n" % (method, path)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    return status, headers, body


def series(text):
    """The set of (name, labels) of a text exposition, values left out."""
    return set(parse_prometheus(text))


def assert_no_value(blobs, values):
    for b in blobs:
        if isinstance(b, str):
            b = b.encode()
        for v in values:
            assert v not in b


# --------------------------------------------------------------------------- listener

def test_listener_serves_metrics_and_healthz_and_nothing_else(
        make_daemon, secrets_dir, tmp_path):
    vals = {"db_password": value(), "api_key": value()}
    port = free_port()
    textfile = tmp_path / "textfile" / "secretsfs.prom"
    textfile.parent.mkdir()
    d = make_daemon(file_config(secrets_dir, vals, {
        "listen": "127.0.0.1:%d" % port, "textfile": str(textfile),
        "interval": "1s"}))
    assert read(d, "db_password") == vals["db_password"]
    served = []

    st, h, body = http_get(port, "/metrics")
    served.append(body)
    assert st == 200 and h["content-type"].startswith("text/plain; version=0.0.4")
    assert int(h["content-length"]) == len(body)
    text = body.decode()
    # The same text as the control socket's: the same series.
    cli = ctl(d, "metrics").stdout
    served.append(cli)
    assert series(text) == series(cli)
    samples = parse_prometheus(text)
    assert metric(samples, "secretsfs_up") == 1
    assert metric(samples, "secretsfs_secret_state", secret="db_password",
                  state="fresh") + metric(samples, "secretsfs_secret_state",
                                          secret="db_password", state="due") == 1
    assert metric(samples, "secretsfs_secret_old_version_holders",
                  secret="db_password") == 0
    assert metric(samples, "secretsfs_secret_fetched_timestamp_seconds",
                  secret="db_password") > time.time() - 60
    vinfo = [dict(lb) for n, lb in samples if n == "secretsfs_secret_version_info"]
    assert [lb["secret"] for lb in vinfo] == ["db_password"]
    assert vinfo[0]["backend"] == "dev"
    assert re.fullmatch(r"[0-9a-f]{12}", vinfo[0]["version_id"])

    st, h, body = http_get(port, "/healthz")
    served.append(body)
    assert st == 200 and body.startswith(b"healthy: mounted on ")
    st, h, body = http_get(port, "/metrics", method="HEAD")
    assert st == 200 and body == b"" and int(h["content-length"]) > 100

    # Nothing else: no other path, no other method, nothing that is not HTTP/1.x.
    for path in ("/", "/metrics/", "/status", "/db_password", "/healthz/../metrics",
                 "/flush", "/refresh/db_password", "/%6detrics"):
        st, _, body = http_get(port, path)
        served.append(body)
        assert st == 404, path
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "TRACE"):
        st, h, body = http_get(port, "/metrics", method=method)
        served.append(body)
        assert st == 405 and h["allow"] == "GET, HEAD", method
    for raw in (b"GET /metrics\r\n\r\n", b"GET /metrics HTTP/2.0\r\n\r\n",
                b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\0" * 40 + b"\r\n\r\n",
                b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"a" * 5000 + b"\r\n\r\n"):
        st, _, body = http_get(port, None, raw=raw)
        served.append(body)
        assert st == 400, raw[:20]

    # The textfile: the same series, replaced whole, nothing left beside it.
    assert wait_for(lambda: textfile.exists(), timeout=5)
    first = os.stat(textfile).st_ino
    assert wait_for(lambda: os.stat(textfile).st_ino != first, timeout=5)
    tf = textfile.read_text()
    served.append(tf)
    assert series(tf) == series(text)
    assert stat.S_IMODE(os.stat(textfile).st_mode) == 0o644
    assert sorted(os.listdir(textfile.parent)) == ["secretsfs.prom"]
    assert_no_value(served + [d.log()], vals.values())

    d.stop()
    # The last write says the daemon is gone; the socket is closed.
    assert metric(parse_prometheus(textfile.read_text()), "secretsfs_up") == 0
    with pytest.raises(OSError):
        http_get(port, "/metrics", timeout=2)
    assert sorted(os.listdir(textfile.parent)) == ["secretsfs.prom"]


def test_listener_drops_a_client_that_drips_its_request(make_daemon, secrets_dir):
    """A head is due whole within a deadline, not within one per byte: a client
    that sends a byte every half second is cut off before it is done."""
    port = free_port()
    make_daemon(file_config(secrets_dir, {"x": value()},
                            {"listen": "127.0.0.1:%d" % port}))
    drip = b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 40
    slow = socket.create_connection(("127.0.0.1", port), timeout=20)
    sent = 0
    with pytest.raises(OSError):
        for c in drip:
            slow.sendall(bytes([c]))
            sent += 1
            time.sleep(0.5)
        slow.recv(1)        # not reached while the server keeps it
    slow.close()
    assert sent < len(drip)
    # The next scrape is served.
    st, _, body = http_get(port, "/metrics")
    assert st == 200 and b"secretsfs_up 1" in body


def test_listener_on_a_unix_socket(make_daemon, secrets_dir, tmp_path):
    vals = {"db_password": value()}
    sock = tmp_path / "m.sock"
    d = make_daemon(file_config(secrets_dir, vals, {"listen": "unix:%s" % sock}))
    assert read(d, "db_password") == vals["db_password"]
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)
    assert stat.S_IMODE(os.lstat(sock).st_mode) == 0o600
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(sock))
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\nsecretsfs_secret_old_version_holders{secret=\"db_password\"} 0\n" in data
    assert_no_value([data, d.log()], vals.values())
    d.stop()
    assert not sock.exists()


def test_listener_tls_refuses_a_client_without_the_certificate(
        make_daemon, secrets_dir, pki, tmp_path):
    vals = {"db_password": value()}
    port = free_port()
    d = make_daemon(file_config(secrets_dir, vals, {
        "listen": "127.0.0.1:%d" % port,
        "tls": {"cert_file": pki.server_cert, "key_file": pki.server_key,
                "client_ca_file": pki.ca}}))
    assert read(d, "db_password") == vals["db_password"]

    def ctx(cert=None, key=None):
        c = ssl.create_default_context(cafile=pki.ca)
        if cert:
            c.load_cert_chain(cert, key)
        return c

    st, _, body = http_get(port, "/metrics", context=ctx(pki.client_cert,
                                                         pki.client_key))
    assert st == 200 and b"secretsfs_secret_state{secret=\"db_password\"" in body
    assert_no_value([body], vals.values())
    st, _, _ = http_get(port, "/nope", context=ctx(pki.client_cert, pki.client_key))
    assert st == 404
    # No certificate, one of another CA, an expired one, plain HTTP: nothing served.
    for cert, key in ((None, None), (pki.client_otherca_cert, pki.client_otherca_key),
                      (pki.client_expired_cert, pki.client_expired_key)):
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError,
                            IndexError, ValueError)):
            st, _, body = http_get(port, "/metrics", context=ctx(cert, key))
            assert b"secretsfs" not in body
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    s.close()
    assert b"secretsfs" not in got and b"200 OK" not in got
    assert wait_for(lambda: "metrics: refused a TLS client from 127.0.0.1" in d.log(),
                    timeout=5), d.log()
    assert_no_value([d.log()], vals.values())


def test_listener_key_file_must_be_private(make_daemon, secrets_dir, pki, tmp_path):
    key = tmp_path / "server.key"
    shutil.copy(pki.server_key, key)
    os.chmod(key, 0o644)
    d = make_daemon(file_config(secrets_dir, {"x": value()}, {
        "listen": "127.0.0.1:%d" % free_port(),
        "tls": {"cert_file": pki.server_cert, "key_file": str(key),
                "client_ca_file": pki.ca}}), start=False)
    d.start(wait=False)
    assert d.proc.wait(20) != 0
    assert str(key) in d.log() and "server.key" in d.log(), d.log()


# --------------------------------------------------------------------------- Prometheus

def promtool():
    path = shutil.which("promtool")
    need(path, "promtool is not installed (Debian package prometheus)")
    return path


def test_promtool_checks_and_unit_tests_the_rules():
    rules = os.path.join(MONITORING, "secretsfs-rules.yml")
    r = subprocess.run([promtool(), "check", "rules", rules], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    # The unit-test file names each alert, firing and not.
    tests = os.path.join(MONITORING, "secretsfs-rules.test.yml")
    text = open(tests).read()
    for alert in re.findall(r"- alert: (\w+)", open(rules).read()):
        assert "alertname: %s\n" % alert in text, alert
    r = subprocess.run([promtool(), "test", "rules", "secretsfs-rules.test.yml"],
                       capture_output=True, text=True, timeout=120, cwd=MONITORING)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


class Prometheus:
    """Debian's prometheus on a loopback port of its own, its config and storage in
    a temp dir: never the system's instance (the package's service listens on :9090)."""

    def __init__(self, workdir, targets):
        self.dir = workdir
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        cfg = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                          "scrape_timeout": "900ms"},
               "rule_files": [os.path.join(MONITORING, "secretsfs-rules.yml")],
               "scrape_configs": [{"job_name": "secretsfs",
                                   "static_configs": [{"targets": targets}]}]}
        # JSON is YAML.
        (workdir / "prometheus.yml").write_text(json.dumps(cfg))
        self.log = open(workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [shutil.which("prometheus"), "--config.file=%s" % (workdir / "prometheus.yml"),
             "--storage.tsdb.path=%s" % (workdir / "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_text()
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("prometheus did not become ready:\n" + self.log_text())

    def log_text(self):
        return (self.dir / "prometheus.log").read_text(errors="replace")

    def query(self, expr):
        """The instant vector of expr: [(labels, value)]."""
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        return [(s["metric"], float(s["value"][1])) for s in doc["data"]["result"]]

    def by_instance(self, expr):
        return {labels["instance"]: v for labels, v in self.query(expr)}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def vault(tmp_path, pki):
    v = VaultFake.start(tmp_path / "vault", pki, quiet=True)
    yield v
    v.stop()


def vault_config(vault, port):
    return {"backends": {"vault": {
                "type": "vault", "address": vault.addr,
                "tls": {"ca_file": vault.ca, "client_cert": vault.client_cert,
                        "client_key": vault.client_key},
                "auth": {"method": "cert"}}},
            "secrets": {"db_password": {"backend": "vault", "ref": "fleet/db",
                                        "field": "password", "refresh": "1s"}},
            "rules": [HOST_RULE],
            "metrics": {"listen": "127.0.0.1:%d" % port}}


def test_prometheus_sees_which_node_still_holds_the_old_version(
        make_daemon, vault, tmp_path):
    need(shutil.which("prometheus"), "prometheus is not installed (Debian package "
         "prometheus)")
    v1, v2 = value(), value()
    vault.kv_put("secret", "fleet/db", {"password": v1.decode()})
    pa, pb = free_port(), free_port()
    a = make_daemon(vault_config(vault, pa), workdir=tmp_path / "a")
    b = make_daemon(vault_config(vault, pb), workdir=tmp_path / "b")
    ia, ib = "127.0.0.1:%d" % pa, "127.0.0.1:%d" % pb
    (tmp_path / "prom").mkdir()
    prom = Prometheus(tmp_path / "prom", [ia, ib])
    holder_a = Opener(a.path("db_password"))
    reader_b = Opener(b.path("db_password"))
    try:
        assert holder_a.read() == v1 and reader_b.read() == v1
        holders = 'secretsfs_secret_old_version_holders{secret="db_password"}'
        # Both scraped, both converged, each with its version.
        assert wait_for(lambda: prom.by_instance(holders) == {ia: 0, ib: 0},
                        timeout=30), (prom.query(holders), prom.log_text())
        assert wait_for(lambda: set(prom.by_instance(
            'secretsfs_secret_version_info{secret="db_password"}')) == {ia, ib},
            timeout=30)

        # One central rotation.
        vault.kv_put("secret", "fleet/db", {"password": v2.decode()})
        assert wait_for(lambda: read(a, "db_password") == v2, timeout=10)
        assert wait_for(lambda: read(b, "db_password") == v2, timeout=10)
        # On b the reader opens it again; on a it keeps the old value.
        assert reader_b.read() == v2
        assert wait_for(lambda: prom.by_instance(holders) == {ia: 1, ib: 0},
                        timeout=30), prom.query(holders)
        # The README's question: which nodes still hold the old db_password?
        assert [lb["instance"] for lb, _ in prom.query(holders + " > 0")] == [ia]
        # The version id changed with the rotation (two series in the window), and
        # both nodes serve the new version now.
        assert wait_for(lambda: prom.by_instance(
            'count by (instance) (count_over_time(secretsfs_secret_version_info'
            '{secret="db_password"}[5m]))') == {ia: 2, ib: 2}, timeout=30)
        state = prom.by_instance('secretsfs_secret_state{secret="db_password",'
                                 'state=~"fresh|due"}')
        assert len(state) == 2
        # Every expression of the dashboard is valid PromQL and finds series.
        dash = json.load(open(os.path.join(MONITORING, "grafana-dashboard.json")))
        exprs = [t["expr"].replace("$secret", ".+") for p in dash["panels"]
                 for t in p["targets"]]
        assert any("secretsfs_secret_old_version_holders" in e for e in exprs)
        for e in exprs:
            if "audit" not in e:        # no audit trail in this test
                assert prom.query(e), e
        # Prometheus loaded the alert rules.
        with urllib.request.urlopen(prom.url + "/api/v1/rules", timeout=10) as r:
            names = {rule["name"] for g in json.load(r)["data"]["groups"]
                     for rule in g["rules"]}
        assert "SecretsfsRotationNotConverged" in names

        # a's holder reopens: converged everywhere.
        assert holder_a.read() == v2
        assert wait_for(lambda: prom.by_instance(holders) == {ia: 0, ib: 0},
                        timeout=30), prom.query(holders)
        # Nothing scraped holds a value.
        bodies = [http_get(p, "/metrics")[2] for p in (pa, pb)]
        assert_no_value(bodies + [a.log(), b.log(), prom.log_text()], [v1, v2])
    finally:
        holder_a.finish()
        reader_b.finish()
        prom.stop()


def test_healthz_is_503_with_why_when_the_backend_is_down(make_daemon, vault,
                                                          tmp_path):
    v = value()
    vault.kv_put("secret", "fleet/db", {"password": v.decode()})
    port = free_port()
    cfg = vault_config(vault, port)
    cfg["cache"] = {"max_stale": "1s"}
    cfg["backends"]["vault"]["http"] = {"retry_base": "20ms", "retry_max": "100ms"}
    d = make_daemon(cfg)
    assert read(d, "db_password") == v
    assert http_get(port, "/healthz")[0] == 200
    vault.stop()

    def down():
        try:
            read(d, "db_password")
        except OSError:
            pass
        return http_get(port, "/healthz")[0] == 503
    assert wait_for(down, timeout=30)
    st, h, body = http_get(port, "/healthz")
    assert st == 503 and h["content-type"] == "text/plain; charset=utf-8"
    assert body.startswith(b"unhealthy: backend vault unreachable for "), body
    # /metrics still answers, and says so.
    st, _, body = http_get(port, "/metrics")
    assert st == 200
    samples = parse_prometheus(body.decode())
    assert metric(samples, "secretsfs_backend_up", backend="vault") == 0
    assert_no_value([body, d.log()], [v])
