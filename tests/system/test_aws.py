"""The AWS Secrets Manager backend through a real mount, against the local fake
(tests/fakes/aws_server.py, which checks every signature with botocore's signer).

Covered: string and binary secrets, JSON field selection, a pinned VersionId, a
staging label, every credential source of the chain (config, environment, the
shared files, web identity, container by full URI and by relative URI on
169.254.170.2, IMDSv2), temporary credentials that lapse and are renewed without a
failed read, a token the server says expired, a wrong secret key, throttling and
5xx retries, error mapping, a client certificate for an endpoint that demands one,
50 concurrent first reads that make one request, the audit trail's auth records
of credential fetches, renewals and failures, and the README's AWS example as
written, with the fetcher as the real `secretsfs` user in a container's view.
After every test the daemon's log is searched for secret values and keys.

Run: SECRETSFS_BIN=build/fuse/secretsfs \\
         /usr/bin/python3 -m pytest -q tests/system/test_aws.py
"""
import base64
import ctypes
import errno
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import binary, need, write_private

FAKES = Path(__file__).resolve().parent.parent / "fakes"
sys.path.insert(0, str(FAKES))

from aws_fixture import AwsFake  # noqa: E402

XATTR_VERSION = "user.secretsfs.version"


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    need((FAKES / "mkpki.sh").exists(), "tests/fakes/mkpki.sh is missing")
    subprocess.run(["bash", str(FAKES / "mkpki.sh"), str(d)], check=True)
    return d


@pytest.fixture(scope="module")
def fake(tmp_path_factory, pki):
    f = AwsFake.start(tmp_path_factory.mktemp("aws"), pki)
    yield f
    f.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path, request):
    """No AWS variable from the caller leaks in; HOME is empty; IMDS is off unless a
    test turns it on. The daemon inherits os.environ (conftest's Popen)."""
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    home = tmp_path / "home"
    home.mkdir(mode=0o700, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield
    if "fake" in request.fixturenames:
        f = request.getfixturevalue("fake")
        if f.running:
            f.clear_faults()
            f.config(clock_offset=0, temp_cred_ttl=None, deny=[], imds_v1=False,
                     error_style="plain", message_key="message")


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def static_creds(fake, secret_key=None):
    return {"access_key_id": fake.access_key,
            "secret_access_key": secret_key or fake.secret_key}


def aws_config(fake, secrets, **backend):
    b = {"type": "aws", "region": fake.region, "endpoint": fake.endpoint,
         "tls": {"ca_file": fake.ca_file},
         "http": {"retry_base": "20ms", "retry_max": "200ms", "timeout": "10s"}}
    b.update(backend)
    return {
        "backends": {"sm": b},
        "secrets": {name: dict({"backend": "sm"}, **s) for name, s in secrets.items()},
        # Deny by default: these tests read from the host.
        "rules": [{"id": "host", "match": {"host": True}, "allow": ["*"]}],
    }


def read(d, name):
    with open(d.path(name), "rb") as f:
        return f.read()


def read_errno(d, name):
    with pytest.raises(OSError) as e:
        read(d, name)
    return e.value.errno


def assert_log_clean(d, *values):
    """No secret value, key or token in the daemon's log, in any form."""
    log = d.log_path.read_bytes() if d.log_path.exists() else b""
    # Every session token the fake issues starts so (aws_server.rand_session_token).
    assert b"FwoGZXIvYXdzEFAKE" not in log
    for v in values:
        if v is None:
            continue
        raw = v if isinstance(v, bytes) else v.encode()
        forms = {raw, base64.b64encode(raw)}
        if len(raw) >= 8:
            forms.add(raw[:8])
        for form in forms:
            assert form not in log, "a secret reached the daemon log"


# --------------------------------------------------------------------------- values

def test_string_secret_version_and_mtime(make_daemon, fake):
    name = unique("db")
    put = fake.put_secret(name, string="hunter2-correct-horse")
    d = make_daemon(aws_config(fake, {"db_password": {"ref": name}},
                               credentials=static_creds(fake)))
    assert read(d, "db_password") == b"hunter2-correct-horse"
    assert os.getxattr(d.path("db_password"), XATTR_VERSION).decode() == put["VersionId"]
    st = os.stat(d.path("db_password"))
    assert st.st_size == len("hunter2-correct-horse")
    # CreatedDate is the change time of the version: the fake made it just now.
    assert abs(st.st_mtime - time.time()) < 60
    assert fake.count("GetSecretValue", secret_id=name) >= 1
    assert_log_clean(d, "hunter2-correct-horse", fake.secret_key)


def test_secret_by_arn(make_daemon, fake):
    name = unique("arn")
    put = fake.put_secret(name, string="by-arn-value")
    d = make_daemon(aws_config(fake, {"s": {"ref": put["ARN"]}},
                               credentials=static_creds(fake)))
    assert read(d, "s") == b"by-arn-value"
    assert fake.count("GetSecretValue", secret_id=put["ARN"]) == 1


def test_binary_secret_every_byte(make_daemon, fake):
    name = unique("bin")
    value = bytes(range(256)) + b"\x00tail"
    fake.put_secret(name, binary=value)
    d = make_daemon(aws_config(fake, {"blob": {"ref": name}},
                               credentials=static_creds(fake)))
    assert read(d, "blob") == value
    assert os.stat(d.path("blob")).st_size == len(value)
    assert_log_clean(d, value[16:48], fake.secret_key)


def test_binary_secret_padding(make_daemon, fake):
    # 1 and 2 bytes of '=' padding, and none
    names = {}
    for n in (1, 2, 3, 4, 5):
        names["b%d" % n] = (unique("pad%d" % n), bytes([0xA0 + i for i in range(n)]))
        fake.put_secret(names["b%d" % n][0], binary=names["b%d" % n][1])
    d = make_daemon(aws_config(fake, {k: {"ref": v[0]} for k, v in names.items()},
                               credentials=static_creds(fake)))
    for k, (_, value) in names.items():
        assert read(d, k) == value


def test_json_field_selection(make_daemon, fake):
    name = unique("json")
    fake.put_secret(name, string=json.dumps(
        {"username": "svc-app", "password": "s3cr3t-pw-7", "port": 5432}))
    d = make_daemon(aws_config(fake, {
        "db_user": {"ref": name, "field": "username"},
        "db_password": {"ref": name, "field": "password"},
        "db_port": {"ref": name, "field": "port"},
        "db_missing": {"ref": name, "field": "nope"},
    }, credentials=static_creds(fake)))
    assert read(d, "db_user") == b"svc-app"
    assert read(d, "db_password") == b"s3cr3t-pw-7"
    assert read(d, "db_port") == b"5432"
    assert read_errno(d, "db_missing") in (errno.ENOENT, errno.EIO)
    assert_log_clean(d, "s3cr3t-pw-7", fake.secret_key)


def test_json_secret_as_a_directory(make_daemon, fake):
    name = unique("dir")
    fake.put_secret(name, string=json.dumps(
        {"username": "svc-dir", "password": "dir-pw-42", "port": 5432}))
    d = make_daemon(aws_config(fake, {
        "db": {"ref": name, "as": "directory"},
    }, credentials=static_creds(fake)))
    assert sorted(os.listdir(d.path("db"))) == ["password", "port", "username"]
    assert read(d, "db/password") == b"dir-pw-42"
    assert read(d, "db/port") == b"5432"
    assert read_errno(d, "db/nope") == errno.ENOENT
    version = os.getxattr(d.path("db/username"), "user.secretsfs.version")
    assert version.decode() in fake.describe(name)["VersionIdsToStages"]
    assert_log_clean(d, "dir-pw-42", fake.secret_key)


def test_pinned_version_id_and_stages(make_daemon, fake):
    name = unique("rot")
    v1 = fake.put_secret(name, string="value-one")
    v2 = fake.put_secret(name, string="value-two")          # AWSCURRENT moves here
    pending = fake.put_secret(name, string="value-pending", stages=["AWSPENDING"])
    d = make_daemon(aws_config(fake, {
        "current": {"ref": name},
        "pinned": {"ref": name, "version": v1["VersionId"]},
        "previous": {"ref": name, "version": "stage:AWSPREVIOUS"},
        "pending": {"ref": name, "version": "stage:AWSPENDING"},
        "no_such_version": {"ref": name, "version": str(uuid.uuid4())},
        "no_such_stage": {"ref": name, "version": "stage:NOPE"},
    }, credentials=static_creds(fake)))
    assert read(d, "current") == b"value-two"
    assert read(d, "pinned") == b"value-one"
    assert os.getxattr(d.path("pinned"), XATTR_VERSION).decode() == v1["VersionId"]
    assert read(d, "previous") == b"value-one"
    assert read(d, "pending") == b"value-pending"
    assert os.getxattr(d.path("pending"), XATTR_VERSION).decode() == pending["VersionId"]
    assert os.getxattr(d.path("current"), XATTR_VERSION).decode() == v2["VersionId"]
    assert read_errno(d, "no_such_version") == errno.ENOENT
    assert read_errno(d, "no_such_stage") == errno.ENOENT
    assert "ResourceNotFoundException" in d.log()
    assert_log_clean(d, "value-one", "value-two", "value-pending", fake.secret_key)


def test_backend_default_version_stage(make_daemon, fake):
    name = unique("stage")
    fake.put_secret(name, string="live")
    fake.put_secret(name, string="next", stages=["AWSPENDING"])
    d = make_daemon(aws_config(fake, {"s": {"ref": name}}, version_stage="AWSPENDING",
                                credentials=static_creds(fake)))
    assert read(d, "s") == b"next"


# --------------------------------------------------------------------------- errors

def test_not_found_is_enoent_and_logged_once_with_request_id(make_daemon, fake):
    gone = unique("gone")
    d = make_daemon(aws_config(fake, {"gone": {"ref": gone}},
                               credentials=static_creds(fake)))
    assert read_errno(d, "gone") == errno.ENOENT
    # One request (a refusal is not retried), and one line for it: not one
    # per layer the error passes through on its way to the reader.
    assert fake.count("GetSecretValue", secret_id=gone) == 1
    lines = [l for l in d.log().splitlines() if "ResourceNotFoundException" in l]
    assert len(lines) == 1, lines
    m = re.search(r"AWS ResourceNotFoundException \(request id ([0-9a-f-]{36})\): "
                  r"Secrets Manager can't find the specified secret\.$", lines[0])
    assert m, lines[0]


def test_qualified_error_types_and_capital_message(make_daemon, fake):
    fake.config(error_style="qualified", message_key="Message")
    d = make_daemon(aws_config(fake, {"gone": {"ref": unique("gone")}},
                               credentials=static_creds(fake)))
    assert read_errno(d, "gone") == errno.ENOENT
    log = d.log()
    assert "AWS ResourceNotFoundException (request id " in log
    assert "com.amazonaws" not in log
    assert "can't find the specified secret" in log


def test_wrong_secret_key_is_refused(make_daemon, fake):
    name = unique("sig")
    fake.put_secret(name, string="never-served")
    wrong = "W" * 40
    d = make_daemon(aws_config(fake, {"s": {"ref": name}},
                               credentials=static_creds(fake, secret_key=wrong)))
    assert read_errno(d, "s") in (errno.EACCES, errno.EIO)
    assert "InvalidSignatureException" in d.log()
    st = fake.stats()
    assert st["auth_errors"].get("InvalidSignatureException", 0) >= 1
    # A refusal is not retried.
    assert fake.count("GetSecretValue", secret_id=name) == 1
    assert_log_clean(d, "never-served", wrong, fake.secret_key)


def test_unknown_access_key_is_eacces(make_daemon, fake):
    name = unique("akid")
    fake.put_secret(name, string="x-value")
    d = make_daemon(aws_config(fake, {"s": {"ref": name}}, credentials={
        "access_key_id": "AKIAUNKNOWNUNKNOWN22", "secret_access_key": fake.secret_key}))
    assert read_errno(d, "s") == errno.EACCES
    assert "UnrecognizedClientException" in d.log()


def test_throttled_once_then_served(make_daemon, fake):
    name = unique("thr")
    fake.put_secret(name, string="after-throttle")
    fake.faults(kind="throttle", count=1, operation="GetSecretValue", secret_id=name)
    d = make_daemon(aws_config(fake, {"s": {"ref": name}},
                               credentials=static_creds(fake)))
    assert read(d, "s") == b"after-throttle"
    assert fake.count("GetSecretValue", secret_id=name) == 2
    assert fake.stats()["errors"].get("ThrottlingException") == 1
    assert "ThrottlingException" not in d.log()     # it worked: nothing to report


def test_server_errors_retried_then_given_up(make_daemon, fake):
    name = unique("5xx")
    fake.put_secret(name, string="after-500")
    fake.faults(kind="error500", count=2, operation="GetSecretValue", secret_id=name)
    d = make_daemon(aws_config(fake, {"s": {"ref": name}, "t": {"ref": name + "-t"}},
                               credentials=static_creds(fake)))
    assert read(d, "s") == b"after-500"
    assert fake.count("GetSecretValue", secret_id=name) == 3
    # Always failing: max_retries (3) retries, then EIO naming the error.
    fake.put_secret(name + "-t", string="unreachable")
    fake.faults(kind="unavailable", count=-1, operation="GetSecretValue",
                secret_id=name + "-t")
    assert read_errno(d, "t") == errno.EIO
    assert fake.count("GetSecretValue", secret_id=name + "-t") == 4
    assert "ServiceUnavailable" in d.log()


def test_decryption_failure_and_access_denied(make_daemon, fake):
    a, b = unique("kms"), unique("deny")
    fake.put_secret(a, string="kms-value")
    fake.put_secret(b, string="denied-value")
    fake.faults(kind="decryption_failure", count=-1, secret_id=a)
    fake.config(deny=[{"principal": "*", "operation": "GetSecretValue", "secret": b}])
    d = make_daemon(aws_config(fake, {"a": {"ref": a}, "b": {"ref": b}},
                               credentials=static_creds(fake)))
    assert read_errno(d, "a") == errno.EIO
    assert read_errno(d, "b") == errno.EACCES
    log = d.log()
    assert "AWS DecryptionFailure (request id " in log
    assert "AWS AccessDeniedException (request id " in log
    assert fake.count("GetSecretValue", secret_id=a) == 1   # not retried
    assert_log_clean(d, "kms-value", "denied-value", fake.secret_key)


def test_malformed_answer_is_eio(make_daemon, fake):
    name = unique("mal")
    fake.put_secret(name, string="fine-value")
    fake.faults(kind="malformed", count=-1, operation="GetSecretValue", secret_id=name)
    d = make_daemon(aws_config(fake, {"s": {"ref": name}},
                               credentials=static_creds(fake)))
    assert read_errno(d, "s") == errno.EIO
    assert "malformed" in d.log()


# --------------------------------------------------------------------------- mTLS

def test_client_certificate_for_an_mtls_egress_proxy(make_daemon, pki, tmp_path):
    """An endpoint that demands a client certificate (an mTLS-terminating egress
    proxy): with tls.client_cert/client_key the backend reads through it; without
    them every read fails with EIO and the log says the handshake was refused."""
    with AwsFake.start(tmp_path / "mtls", pki, client_ca=True, http=False) as f:
        name = unique("mtls")
        f.put_secret(name, string="through-the-proxy")
        f.reset_stats()
        cfg = aws_config(f, {"s": {"ref": name}}, credentials=static_creds(f),
                         tls={"ca_file": f.ca_file,
                              "client_cert": str(pki / "client.crt"),
                              "client_key": str(pki / "client.key")})
        d = make_daemon(cfg, workdir=tmp_path / "with-cert")
        assert read(d, "s") == b"through-the-proxy"
        st = f.stats()
        # The fake saw our certificate (mkpki.sh's CN) on the connection.
        assert st["client_certs"].get("secretsfs-client", 0) >= 1
        assert f.count("GetSecretValue", secret_id=name) == 1
        assert_log_clean(d, "through-the-proxy", f.secret_key)
        d.stop()

        f.reset_stats()
        d = make_daemon(aws_config(f, {"s": {"ref": name}}, credentials=static_creds(f),
                                   http={"retry_base": "10ms", "retry_max": "20ms",
                                         "max_retries": 1, "timeout": "10s"}),
                        workdir=tmp_path / "without-cert")
        assert read_errno(d, "s") == errno.EIO
        # Refused in the handshake: no request reached Secrets Manager.
        assert f.count("GetSecretValue") == 0
        lines = [l for l in d.log().splitlines() if "AWS GetSecretValue" in l]
        assert lines, d.log()
        # One line says what went wrong and what to look at: the server refused
        # us in TLS (its alert, or a hang-up mid-handshake when the alert is
        # lost), and we had no client certificate to offer.
        assert len(lines) == 1, lines
        assert "%s/: TLS: the server " % f.endpoint in lines[0], lines
        assert "no client certificate was configured" in lines[0], lines
        assert_log_clean(d, "through-the-proxy", f.secret_key)


# --------------------------------------------------------------------------- concurrency

def test_fifty_concurrent_first_reads_make_one_request(make_daemon, fake):
    name = unique("herd")
    fake.put_secret(name, string="one-request-value")
    # Hold the one request long enough for every reader to pile up behind it.
    fake.faults(kind="slow", seconds=0.5, count=1, operation="GetSecretValue",
                secret_id=name)
    d = make_daemon(aws_config(fake, {"s": {"ref": name}},
                               credentials=static_creds(fake)))
    barrier = threading.Barrier(50)
    results, errors = [], []

    def reader():
        try:
            barrier.wait(10)
            results.append(read(d, "s"))
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    assert results == [b"one-request-value"] * 50
    assert fake.count("GetSecretValue", secret_id=name) == 1


# --------------------------------------------------------------------------- credentials

def test_credentials_from_environment(make_daemon, fake, monkeypatch):
    name = unique("env")
    fake.put_secret(name, string="env-value")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", fake.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", fake.secret_key)
    monkeypatch.setenv("AWS_REGION", fake.region)
    cfg = aws_config(fake, {"s": {"ref": name}})
    del cfg["backends"]["sm"]["region"]         # from AWS_REGION
    d = make_daemon(cfg)
    assert read(d, "s") == b"env-value"
    assert fake.stats()["access_keys"].get(fake.access_key, 0) >= 1
    assert_log_clean(d, "env-value", fake.secret_key)


def test_credentials_from_shared_credentials_file(make_daemon, fake, monkeypatch,
                                                  tmp_path):
    name = unique("prof")
    fake.put_secret(name, string="profile-value")
    path = fake.write_credentials_file(tmp_path / "credentials", profile="secretsfs")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", path)
    monkeypatch.setenv("AWS_PROFILE", "secretsfs")
    d = make_daemon(aws_config(fake, {"s": {"ref": name}}))
    assert read(d, "s") == b"profile-value"
    assert_log_clean(d, "profile-value", fake.secret_key)


def test_credentials_from_default_files_and_config_profile(make_daemon, fake, tmp_path):
    """~/.aws/config with [profile x] named by the backend's "profile", and the
    region from that profile."""
    name = unique("cfgprof")
    fake.put_secret(name, string="config-profile-value")
    aws_dir = Path(os.environ["HOME"]) / ".aws"
    aws_dir.mkdir(mode=0o700)
    write_private(aws_dir / "credentials", "[default]\naws_access_key_id = AKIAWRONG\n"
                  "aws_secret_access_key = wrong\n")
    write_private(aws_dir / "config",
                  "# written by the test\n[default]\nregion = eu-west-3\n\n"
                  "[profile app]\nregion = %s\naws_access_key_id = %s\n"
                  "aws_secret_access_key = %s   ; inline comment\n"
                  % (fake.region, fake.access_key, fake.secret_key))
    cfg = aws_config(fake, {"s": {"ref": name}}, profile="app")
    del cfg["backends"]["sm"]["region"]
    d = make_daemon(cfg)
    assert read(d, "s") == b"config-profile-value"
    assert_log_clean(d, "config-profile-value", fake.secret_key)


def test_readable_credentials_file_is_refused(make_daemon, fake, monkeypatch, tmp_path):
    path = fake.write_credentials_file(tmp_path / "credentials")
    os.chmod(path, 0o644)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", path)
    d = make_daemon(aws_config(fake, {"s": {"ref": "x"}}), start=False)
    d.start(wait=False)
    assert d.proc.wait(10) != 0
    log = d.log()
    assert "chmod 600" in log and path in log
    assert_log_clean(d, fake.secret_key)


def test_no_credentials_anywhere_fails_at_start(make_daemon, fake):
    d = make_daemon(aws_config(fake, {"s": {"ref": "x"}}), start=False)
    d.start(wait=False)
    assert d.proc.wait(10) != 0
    assert "no AWS credentials" in d.log()


def web_identity(fake, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE",
                       fake.write_web_identity_token(tmp_path / "token"))
    monkeypatch.setenv("AWS_ROLE_ARN", fake.role_arn)
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "secretsfs-test")
    return {"sts_endpoint": fake.endpoint}


def container(fake, monkeypatch, tmp_path, token_in_file=True):
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", fake.ecs_full_uri)
    if token_in_file:
        monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                           fake.write_ecs_token(tmp_path / "ecs-token"))
    else:
        monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", fake.ecs_token)
    return {}


def imds(fake, monkeypatch, tmp_path, via_env=False):
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    if via_env:
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.imds_endpoint)
        return {}
    return {"imds_endpoint": fake.imds_endpoint}


SOURCES = {
    "web_identity": (web_identity, "sts"),
    "container_token_file": (container, "ecs"),
    "container_token_env": (lambda f, m, t: container(f, m, t, token_in_file=False),
                            "ecs"),
    "imds": (imds, "imds_credentials"),
    "imds_env_endpoint": (lambda f, m, t: imds(f, m, t, via_env=True),
                          "imds_credentials"),
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_temporary_credential_sources(make_daemon, fake, monkeypatch, tmp_path, source):
    setup, fetch_key = SOURCES[source]
    name = unique(source)
    fake.put_secret(name, string="temp-" + source)
    extra = setup(fake, monkeypatch, tmp_path)
    fake.reset_stats()
    d = make_daemon(aws_config(fake, {"s": {"ref": name}}, **extra))
    assert read(d, "s") == ("temp-" + source).encode()
    st = fake.stats()
    assert st["credential_fetches"].get(fetch_key, 0) == 1
    assert st["session_token_requests"] >= 1
    assert st["signature_failures"] == 0
    if source == "web_identity":
        assert st["sts_unsigned"] == 1
    if source.startswith("imds"):
        assert st["credential_fetches"].get("imds_token") == 1
        assert st["credential_fetches"].get("imds_role") == 1
    assert_log_clean(d, "temp-" + source, fake.secret_key, fake.web_identity_token,
                     fake.ecs_token)


class EcsHostNetns:
    """A network namespace of our own in which 169.254.170.2, the address the ECS
    agent serves on and that AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is resolved
    against, is a loopback address. The daemon runs in it (nsenter --net: the same
    mount namespace, so the mount is ours to read); this test process forwards
    169.254.170.2:80 to the fake's plain-http endpoint and a loopback port to its
    Secrets Manager endpoint, and keeps what the daemon sent to 169.254.170.2.

    The production code has no knob for the ECS host, and must not grow one for a
    test: the address is real here instead."""

    CLONE_NEWNET = 0x40000000
    ECS_HOST = "169.254.170.2"

    def __init__(self, fake):
        libc = ctypes.CDLL(None, use_errno=True)
        host = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        self.fd = None
        self.listeners = []
        self.requests = []              # the first bytes of each ECS connection
        try:
            if libc.unshare(self.CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
            try:
                self.fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
                for argv in (["ip", "link", "set", "lo", "up"],
                             ["ip", "addr", "add", self.ECS_HOST + "/32", "dev", "lo"]):
                    subprocess.run(["nsenter", "--net=" + self.nspath] + argv, check=True)
                # Sockets belong to the namespace they are made in.
                ecs = socket.create_server((self.ECS_HOST, 80))
                sm = socket.create_server(("127.0.0.1", 0))
            finally:
                if libc.setns(host, self.CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back to the host netns")
        finally:
            os.close(host)
        self.listeners = [ecs, sm]
        self.endpoint = "https://127.0.0.1:%d" % sm.getsockname()[1]
        for lsock, port, keep in ((ecs, fake.http_port, True), (sm, fake.port, False)):
            threading.Thread(target=self._serve, args=(lsock, port, keep),
                             daemon=True).start()

    @property
    def nspath(self):
        return "/proc/%d/fd/%d" % (os.getpid(), self.fd)

    def _serve(self, lsock, port, keep):
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", port))  # the host's loopback
            threading.Thread(target=self._pump, args=(c, u, keep), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src, dst, keep):
        first = True
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if keep and first:
                    self.requests.append(data)
                first = False
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        for s in self.listeners:
            s.close()
        if self.fd is not None:
            os.close(self.fd)


@pytest.mark.parametrize("token_in_file", [True, False], ids=["token-file", "token-env"])
def test_container_relative_uri_is_fetched_from_the_ecs_host(make_daemon, fake,
                                                            monkeypatch, tmp_path,
                                                            token_in_file):
    need(shutil.which("nsenter") and shutil.which("ip"), "nsenter and ip are needed")
    name = unique("ecsrel")
    fake.put_secret(name, string="relative-uri-value")
    ns = EcsHostNetns(fake)
    try:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", fake.ecs_path)
        # The SDKs take the relative URI over the full one: this one must not be used.
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI",
                           "http://127.0.0.1:9/v2/credentials/not-this-one")
        if token_in_file:
            monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                               fake.write_ecs_token(tmp_path / "ecs-token"))
        else:
            monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", fake.ecs_token)
        fake.reset_stats()
        cfg = aws_config(fake, {"s": {"ref": name}})
        cfg["backends"]["sm"]["endpoint"] = ns.endpoint
        d = make_daemon(cfg, start=False)
        d.start(prefix=["nsenter", "--net=" + ns.nspath])
        assert read(d, "s") == b"relative-uri-value"

        # One request reached 169.254.170.2:80, for exactly the relative URI.
        assert len(ns.requests) == 1
        head = ns.requests[0].split(b"\r\n\r\n")[0].decode().split("\r\n")
        assert head[0] == "GET %s HTTP/1.1" % fake.ecs_path
        fields = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            fields[k.strip().lower()] = v.strip()
        assert fields.get("host") == EcsHostNetns.ECS_HOST
        # The token as the Authorization header, as is (no scheme added). Compared
        # without letting pytest print either side.
        token_sent = fields.get("authorization") == fake.ecs_token
        assert token_sent, "the Authorization header is not the container token"
        st = fake.stats()
        assert st["credential_fetches"].get("ecs") == 1
        assert st["credential_failures"] == {}
        assert fake.count("GetSecretValue", secret_id=name) == 1
        assert_log_clean(d, "relative-uri-value", fake.ecs_token)
        d.stop()
    finally:
        ns.close()


def test_bad_web_identity_token_is_eacces(make_daemon, fake, monkeypatch, tmp_path):
    name = unique("badjwt")
    fake.put_secret(name, string="never")
    extra = web_identity(fake, monkeypatch, tmp_path)
    write_private(tmp_path / "token", "not.the.token")
    d = make_daemon(aws_config(fake, {"s": {"ref": name}}, **extra))
    assert read_errno(d, "s") == errno.EACCES
    assert "STS InvalidIdentityToken (request id " in d.log()
    assert fake.count("GetSecretValue", secret_id=name) == 0


def test_bad_container_token_is_eacces(make_daemon, fake, monkeypatch, tmp_path):
    name = unique("badecs")
    fake.put_secret(name, string="never")
    container(fake, monkeypatch, tmp_path)
    write_private(tmp_path / "ecs-token", "wrong-token")
    d = make_daemon(aws_config(fake, {"s": {"ref": name}}))
    assert read_errno(d, "s") == errno.EACCES
    assert "container credentials: HTTP 401" in d.log()
    assert_log_clean(d, fake.ecs_token)


@pytest.mark.parametrize("source", ["imds", "web_identity", "container_token_file"])
def test_expiring_credentials_are_renewed_without_a_failed_read(
        make_daemon, fake, monkeypatch, tmp_path, source):
    """5-second credentials, a secret refreshed every second, reads for three
    credential lifetimes: every GetSecretValue must succeed (the cache would hide a
    failed refresh behind the old value, so the fake's counters are the proof)."""
    setup, _ = SOURCES[source]
    name = unique("renew")
    fake.put_secret(name, string="renewed-value")
    extra = setup(fake, monkeypatch, tmp_path)
    fake.config(temp_cred_ttl=5)
    fake.reset_stats()
    d = make_daemon(aws_config(fake, {"s": {"ref": name, "refresh": "1s"}}, **extra))
    deadline = time.monotonic() + 16
    reads = 0
    while time.monotonic() < deadline:
        assert read(d, "s") == b"renewed-value"
        reads += 1
        time.sleep(0.2)
    st = fake.stats()
    assert st["errors"] == {}, st["errors"]
    assert st["signature_failures"] == 0
    assert st["operations"].get("GetSecretValue", 0) >= 10
    assert st["status"] == {"200": st["operations"]["GetSecretValue"]}
    # renewed ahead of every expiry: 16 s / (5 s * 2/3) is 4 or more sets
    assert st["temp_credentials_issued"] >= 4
    assert reads > 40
    assert "Expired" not in d.log()
    assert_log_clean(d, "renewed-value", fake.web_identity_token, fake.ecs_token)


def test_expired_token_answer_renews_once_and_retries(make_daemon, fake, monkeypatch,
                                                      tmp_path):
    name = unique("exp")
    fake.put_secret(name, string="still-served")
    extra = imds(fake, monkeypatch, tmp_path)
    fake.reset_stats()
    d = make_daemon(aws_config(fake, {"s": {"ref": name, "refresh": "1s"}}, **extra))
    assert read(d, "s") == b"still-served"
    assert fake.expire_temp_credentials() >= 1
    time.sleep(1.2)
    fake.put_secret(name, string="new-after-expiry")
    assert read(d, "s") == b"new-after-expiry"
    st = fake.stats()
    assert st["errors"].get("ExpiredTokenException") == 1
    assert st["credential_fetches"].get("imds_credentials") == 2
    assert fake.count("GetSecretValue", secret_id=name) == 3
    assert "ExpiredTokenException" not in d.log()


def test_revoked_credentials_are_eacces(make_daemon, fake, monkeypatch, tmp_path):
    name, other = unique("rev"), unique("rev")
    fake.put_secret(name, string="before-revoke")
    fake.put_secret(other, string="after-revoke")
    extra = imds(fake, monkeypatch, tmp_path)
    # Two refs: files on one ref share one fetch, so t must ask again.
    d = make_daemon(aws_config(fake, {"s": {"ref": name}, "t": {"ref": other}},
                               **extra))
    assert read(d, "s") == b"before-revoke"
    fake.revoke_temp_credentials()
    assert read_errno(d, "t") == errno.EACCES
    assert "UnrecognizedClientException" in d.log()


def test_credential_endpoint_down_is_eio_and_named(make_daemon, fake, monkeypatch):
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    d = make_daemon(aws_config(fake, {"s": {"ref": "x"}},
                               imds_endpoint="http://127.0.0.1:9",
                               http={"retry_base": "10ms", "retry_max": "20ms",
                                     "max_retries": 1}))
    assert read_errno(d, "s") == errno.EIO
    assert "AWS credentials (imds)" in d.log()


def test_concurrent_first_reads_fetch_credentials_once(make_daemon, fake, monkeypatch,
                                                       tmp_path):
    """30 different uncached secrets read at once with IMDS credentials: one set of
    credentials is fetched and shared, and every request is signed with it."""
    names = [unique("many%d" % i) for i in range(30)]
    for i, n in enumerate(names):
        fake.put_secret(n, string="value-%d" % i)
    extra = imds(fake, monkeypatch, tmp_path)
    fake.faults(kind="slow", seconds=0.5, count=1, operation="imds")
    fake.reset_stats()
    d = make_daemon(aws_config(fake, {"s%d" % i: {"ref": n}
                                      for i, n in enumerate(names)}, **extra))
    barrier = threading.Barrier(len(names))
    results, errors = {}, []

    def reader(i):
        try:
            barrier.wait(10)
            results[i] = read(d, "s%d" % i)
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(len(names))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    assert results == {i: b"value-%d" % i for i in range(len(names))}
    st = fake.stats()
    assert st["credential_fetches"].get("imds_credentials") == 1
    assert st["credential_fetches"].get("imds_token") == 1
    assert st["operations"]["GetSecretValue"] == len(names)
    assert st["session_token_requests"] == len(names)


# --------------------------------------------------------------------------- the README

ROOT = Path(__file__).resolve().parents[2]
FETCH_USER = "secretsfs"


def readme_aws_example():
    """The JSON block of the README's AWS Secrets Manager example, parsed."""
    text = (ROOT / "README.md").read_text()
    start = text.index("**AWS Secrets Manager**")
    m = re.compile(r"```json\n(.*?)\n```", re.S).search(text, start)
    assert m, "no ```json block after the README's AWS Secrets Manager heading"
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def fetch_user():
    """The real unprivileged user the fetcher runs as by default."""
    try:
        pw = pwd.getpwnam(FETCH_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", FETCH_USER], check=True)
        pw = pwd.getpwnam(FETCH_USER)
    assert pw.pw_uid != 0
    return pw.pw_uid, pw.pw_gid


def fetcher_uid(d):
    """The uid of the daemon's fetcher (secretsfs-fetch, a grandchild)."""
    def kids(pid, comm):
        out = []
        for e in os.listdir("/proc"):
            if not e.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % e) as f:
                    stat = f.read()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            if name == comm and int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                out.append(int(e))
        return out
    for helper in kids(d.pid, "secretsfs-priv"):
        for f in kids(helper, "secretsfs-fetch"):
            with open("/proc/%d/status" % f) as st:
                for line in st:
                    if line.startswith("Uid:"):
                        return int(line.split()[1])
    raise AssertionError("no fetcher process under %d" % d.pid)


def test_readme_aws_example(make_daemon, pki, podman, engine, fetch_user, tmp_path):
    """The README's AWS example, as written, against the fake: the JSON block is
    read from README.md now, and only the endpoint, the CA and the paths (mount,
    credentials file, Engine API socket, audit trail) are replaced. The fetcher
    runs as the real `secretsfs` user and reads the credentials file the README
    has it own, from a directory of that user's, as the README says to make it;
    a container with the label the rules name reads the three secrets."""
    uid, gid = fetch_user
    cfg = readme_aws_example()
    # conf/aws.json is the same example, for copying.
    assert json.loads((ROOT / "conf" / "aws.json").read_text()) == cfg
    sm = cfg["backends"]["sm"]
    assert "credentials" not in sm and "privsep" not in cfg
    profile = sm["profile"]
    # The credentials file is named in the config, somewhere the service may read
    # (not /root or /home: ProtectHome=yes, AppArmor), and the README's commands
    # make it the fetcher user's, private, in a directory of that user's.
    named = sm["credentials_file"]
    assert named.startswith("/etc/secretsfs/"), named
    readme = (ROOT / "README.md").read_text()
    for cmd in ("install -d -m 0711 /etc/secretsfs",
                "install -d -m 0700 -o secretsfs -g secretsfs " + os.path.dirname(named),
                "install -m 0600 -o secretsfs -g secretsfs /dev/null " + named):
        assert cmd in readme, cmd
    arn = cfg["secrets"]["hsm_wrap_key"]["ref"]
    hsm_name, hsm_suffix = re.fullmatch(
        r"arn:aws:secretsmanager:[a-z0-9-]+:\d{12}:secret:(.+)-(\w{6})", arn).groups()
    db = cfg["secrets"]["db_password"]["ref"]
    assert cfg["secrets"]["db_password_next"]["ref"] == db
    field = cfg["secrets"]["db_password"]["field"]

    f = AwsFake.start(tmp_path / "aws", pki, region=sm["region"],
                      account_id=arn.split(":")[4])
    try:
        current = "pay-db-" + uuid.uuid4().hex[:12]
        pending = "pay-db-next-" + uuid.uuid4().hex[:12]
        hsm = bytes(range(256))[::-1] + os.urandom(16)
        f.put_secret(db, string=json.dumps({"username": "payments", field: current}))
        f.put_secret(db, string=json.dumps({"username": "payments", field: pending}),
                     stages=["AWSPENDING"])
        assert f.put_secret(hsm_name, binary=hsm, arn_suffix=hsm_suffix)["ARN"] == arn

        # /etc/secretsfs: 0711 root; aws/ 0700 and aws/credentials 0600, the
        # fetcher user's (README: install -d ... /etc/secretsfs/aws, install ...).
        etc = Path(tempfile.mkdtemp(prefix="secretsfs-readme-"))
        os.chmod(etc, 0o711)
        try:
            aws_dir = etc / "aws"
            aws_dir.mkdir(mode=0o700)
            os.chown(aws_dir, uid, gid)
            creds = f.write_credentials_file(aws_dir / "credentials", profile=profile)
            os.chown(creds, uid, gid)
            ca = aws_dir / "ca.crt"
            shutil.copyfile(f.ca_file, ca)
            os.chown(ca, uid, gid)

            # The substitutions, and nothing else.
            sm["endpoint"] = f.endpoint
            sm["tls"]["ca_file"] = str(ca)
            sm["credentials_file"] = creds
            del cfg["mount"]["path"]            # conftest gives each test its own
            cfg["runtime"]["socket"] = engine.socket
            cfg["audit"]["file"] = str(tmp_path / "audit.log")
            cfg["audit"]["key_file"] = str(write_private(tmp_path / "audit.key",
                                                         os.urandom(32).hex() + "\n"))
            # privsep.user is left out of the README as its default; conftest
            # would put root there, so it is spelled out: the default, secretsfs.
            cfg["privsep"] = {"user": FETCH_USER}
            d = make_daemon(cfg)
            assert fetcher_uid(d) == uid

            c = podman.run("sfs-test-%s-payments" % uuid.uuid4().hex[:8], d.mountpoint,
                           {"app": "payments"})
            got = {}
            for name in ("db_password", "db_password_next", "hsm_wrap_key"):
                r = subprocess.run(["podman", "exec", c.name, "cat", "/run/secrets/" + name],
                                   capture_output=True, timeout=30)
                assert r.returncode == 0, (name, r.stderr)
                got[name] = r.stdout
            ok = got == {"db_password": current.encode(),
                         "db_password_next": pending.encode(), "hsm_wrap_key": hsm}
            assert ok, "the container did not read the values the fake holds"
            r = c.exec(["ls", "-ln", "/run/secrets/db_password"])
            assert r.returncode == 0, r.stderr
            mode, _, _, file_gid = r.stdout.split()[:4]
            assert (mode, file_gid) == ("-r--r-----", "1000")
            # The host is no "app: payments" container: nothing for it.
            assert read_errno(d, "db_password") == errno.ENOENT

            # Signed with the key of the profile in that file: no other source
            # has one (aws_env leaves no AWS_ variable, HOME is empty).
            st = f.stats()
            assert set(st["access_keys"]) == {f.access_key}
            assert st["signature_failures"] == 0
            assert_log_clean(d, current, pending, hsm[:32], f.secret_key)
        finally:
            shutil.rmtree(etc, ignore_errors=True)
    finally:
        f.stop()


# --------------------------------------------------------------------------- audit

def audit_auth(path):
    """The auth records of the audit trail at path."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [r for r in map(json.loads, text.splitlines()) if r["event"] == "auth"]


def reading_until(d, pred, timeout, step=0.2):
    """Read s every step (the reads make the daemon ask for credentials)
    until pred() holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        try:
            read(d, "s")
        except OSError:
            pass        # expired credentials while the endpoint is down
        time.sleep(step)
    return pred()


@pytest.mark.parametrize("source,method,endpoint", [
    ("imds", "imds", "imds"), ("web_identity", "web-identity", "sts")])
def test_credential_fetches_are_audited_without_keys(make_daemon, fake, monkeypatch,
                                                     tmp_path, source, method, endpoint):
    """Temporary credentials of 5 s: the first fetch is an auth "login", each
    renewal a "renew", both with the seconds they are good for; the
    credential endpoint failing is an auth record with outcome "error" and a
    fixed reason. As Vault's logins are, through the fetcher to the FUSE
    process's trail, which still verifies. No key or token in it."""
    setup, _ = SOURCES[source]
    name = unique("audited")
    fake.put_secret(name, string="audited-value")
    extra = setup(fake, monkeypatch, tmp_path)
    fake.config(temp_cred_ttl=5)
    key = write_private(tmp_path / "audit.key", os.urandom(32).hex())
    trail = tmp_path / "audit" / "audit.log"
    trail.parent.mkdir(mode=0o700)
    cfg = aws_config(fake, {"s": {"ref": name, "refresh": "1s"}}, **extra)
    cfg["audit"] = {"file": str(trail), "key_file": str(key)}
    d = make_daemon(cfg)
    assert read(d, "s") == b"audited-value"

    # The login, then a renewal ahead of the 5 s expiry.
    assert reading_until(d, lambda: any(r["action"] == "renew"
                                        for r in audit_auth(trail)), 30), \
        audit_auth(trail)
    recs = audit_auth(trail)
    assert recs[0]["action"] == "login"
    for r in recs[:2]:
        assert (r["backend"], r["method"], r["outcome"], r["errno"]) == \
            ("sm", method, "ok", 0)
        assert 1 <= r["ttl"] <= 5, r
        assert r["reason"] is None
    assert recs[1]["action"] == "renew"

    # The credential endpoint fails: a failed renewal is recorded.
    fake.faults(kind="unavailable", count=-1, operation=endpoint)
    assert reading_until(d, lambda: any(r["outcome"] == "error"
                                        for r in audit_auth(trail)), 30), \
        audit_auth(trail)
    fake.clear_faults()
    bad = next(r for r in audit_auth(trail) if r["outcome"] == "error")
    assert (bad["backend"], bad["method"], bad["action"]) == ("sm", method, "renew")
    assert bad["errno"] > 0 and bad["ttl"] == 0
    assert bad["reason"] == "credential service error"
    # And it recovers: an ok renewal after the failure.
    n_bad = len(audit_auth(trail))
    assert reading_until(d, lambda: any(r["outcome"] == "ok"
                                        for r in audit_auth(trail)[n_bad:]), 30)
    assert d.stop() == 0

    v = subprocess.run([binary(), "audit", "verify", "-k", str(key), str(trail)],
                       capture_output=True, text=True, timeout=60)
    assert v.returncode == 0, v.stdout + v.stderr
    blob = trail.read_bytes()
    assert b"FwoGZXIvYXdzEFAKE" not in blob           # every session token
    assert b"audited-value" not in blob
    for c in fake.temp_credentials():
        assert c["AccessKeyId"].encode() not in blob
    for v in (fake.secret_key, fake.web_identity_token):
        assert v.encode() not in blob
    assert_log_clean(d, "audited-value", fake.secret_key, fake.web_identity_token)
