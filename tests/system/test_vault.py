"""The Vault backend through a real mount, against the local fake Vault over mutual TLS.

KV v1 and v2 reads, field selection, pinned versions, deleted/destroyed versions, every
auth method, token renewal and re-login, TLS failures (unknown server CA, no or expired
client certificate), client certificate rotation without a restart, retries on 429/5xx,
malformed and oversized answers, one backend request for 50 concurrent first reads, and
no value or token in the daemon's log; a pinned server key, $VAULT_NAMESPACE, a denied path
(403, no login), standby nodes, the cert role name, mtime from created_time, prefix
directories following writes and deletes, and servers offering only TLS below 1.2.

Run: cd /work/main && SECRETSFS_BIN=BUILD/fuse/secretsfs /usr/bin/python3 -m pytest -q \
         tests/system/test_vault.py
"""
import base64
import calendar
import errno
import json
import os
import re
import socket
import ssl
import stat
import secrets
import shutil
import subprocess
import sys
import threading
import time
import warnings

import pytest

from conftest import write_private

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from vault_fixture import VaultFake, make_pki  # noqa: E402

APPROLE_ID = "role-" + secrets.token_hex(8)
APPROLE_SECRET = "sid-" + secrets.token_hex(12)
JWT = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(24) + ".sig"
APPROLE = {"secretsfs": {"role_id": APPROLE_ID, "secret_id": APPROLE_SECRET,
                         "policies": ["secretsfs"]}}
KUBERNETES = {"secretsfs": {"jwts": [JWT], "policies": ["secretsfs"],
                            "service_account_name": "secretsfs",
                            "service_account_namespace": "kube-system"}}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def vault(tmp_path_factory, pki):
    v = VaultFake.start(tmp_path_factory.mktemp("vault"), pki, quiet=True,
                        config={"approle": APPROLE, "kubernetes": KUBERNETES})
    yield v
    v.stop()


@pytest.fixture(autouse=True)
def _reset_vault(request):
    """Every test starts from a clean fake: no faults, default roles and TTLs."""
    yield
    if "vault" in request.fixturenames:
        v = request.getfixturevalue("vault")
        v.clear_faults()
        v.configure(approle=APPROLE, kubernetes=KUBERNETES, token_ttl=3600,
                    token_max_ttl=2764800, deny=[],
                    cert={"default": {"certificate_file": v.pki.ca, "policies": ["default"]}})


def value():
    """A fresh secret value, so a grep of the log for it means something."""
    return "val-" + secrets.token_hex(12)


def backend(vault, auth=None, tls=None, **extra):
    b = {"type": "vault", "address": vault.addr,
         "tls": tls if tls is not None else {"ca_file": vault.ca,
                                             "client_cert": vault.client_cert,
                                             "client_key": vault.client_key},
         "auth": auth or {"method": "cert"}}
    b.update(extra)
    return b


def config(b, secrets_):
    # Processes on the host (this test) may read every secret.
    return {"backends": {"vault": b}, "secrets": secrets_,
            "rules": [{"id": "host", "match": {"host": True}, "allow": ["*"]}]}


def read(d, name):
    with open(d.path(name), "rb") as f:
        return f.read()


def read_errno(d, name):
    try:
        read(d, name)
    except OSError as e:
        return e.errno
    return 0


def all_tokens(vault):
    """Every token the fake has issued and still knows (its state file)."""
    with open(vault.state_file) as f:
        return list(json.load(f)["tokens"])


def assert_log_clean(d, vault, *values):
    log = d.log()
    for v in values:
        assert v not in log, "a secret value reached the daemon log"
    for tok in all_tokens(vault) + [vault.root_token]:
        assert tok not in log, "a Vault token reached the daemon log"


def fetch_failures(d):
    """The broker logs every failed fetch as "secret NAME: backend vault: why"."""
    return [ln for ln in d.log().splitlines() if ln.startswith("secretsfs: secret ")
            and ": backend vault: " in ln]


def wait_for(pred, timeout=10, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# -- KV reads --

def test_kv2_read_field_pinned_version_and_missing(make_daemon, vault):
    pw1, pw2 = value(), value()
    assert vault.kv_put("secret", "t1/db", {"password": pw1, "user": "svc"}) == 1
    assert vault.kv_put("secret", "t1/db", {"password": pw2, "user": "svc"}) == 2
    d = make_daemon(config(backend(vault), {
        "db.json": {"backend": "vault", "ref": "t1/db"},
        "db_password": {"backend": "vault", "ref": "t1/db", "field": "password"},
        "db_password_v1": {"backend": "vault", "ref": "t1/db", "field": "password",
                           "version": "1"},
        "db_password_v9": {"backend": "vault", "ref": "t1/db", "field": "password",
                           "version": "9"},
        "no_field": {"backend": "vault", "ref": "t1/db", "field": "nope"},
        "missing": {"backend": "vault", "ref": "t1/none"},
    }))
    assert json.loads(read(d, "db.json")) == {"password": pw2, "user": "svc"}
    assert read(d, "db_password") == pw2.encode()
    assert read(d, "db_password_v1") == pw1.encode()
    assert os.getxattr(d.path("db_password"), "user.secretsfs.version") == b"2"
    assert os.getxattr(d.path("db_password_v1"), "user.secretsfs.version") == b"1"
    assert read_errno(d, "db_password_v9") == errno.ENOENT
    assert read_errno(d, "missing") == errno.ENOENT
    assert read_errno(d, "no_field") == errno.ENOENT
    # Every request we made said X-Vault-Request: true.
    ours = [r for r in vault.stats()["recent"] if r["token"] in ("token", "none")
            and r["path"].startswith(("/v1/secret/", "/v1/auth/cert"))]
    assert ours and all(r["x_vault_request"] for r in ours)
    assert "logged in with cert auth, token ttl 3600s" in d.log()
    assert_log_clean(d, vault, pw1, pw2)


def test_whole_secret_as_a_directory(make_daemon, vault):
    pw, key = value(), value()
    vault.kv_put("secret", "t1b/app", {"password": pw, "api_key": key,
                                        "port": 5432})
    d = make_daemon(config(backend(vault), {
        "app": {"backend": "vault", "ref": "t1b/app", "as": "directory",
                "mode": "0440"},
        "app_v1": {"backend": "vault", "ref": "t1b/app", "as": "directory",
                   "version": "1"},
    }))
    assert sorted(os.listdir(d.path("app"))) == ["api_key", "password", "port"]
    assert read(d, "app/password") == pw.encode()
    assert read(d, "app/api_key") == key.encode()
    assert read(d, "app/port") == b"5432"
    assert read_errno(d, "app/nope") == errno.ENOENT
    assert os.getxattr(d.path("app/password"), "user.secretsfs.version") == b"1"
    assert stat.S_IMODE(os.stat(d.path("app/password")).st_mode) == 0o440
    # A directory pinned to version 1 keeps serving it after a write.
    assert vault.kv_put("secret", "t1b/app", {"password": "x" + pw}) == 2
    assert read(d, "app_v1/password") == pw.encode()
    assert_log_clean(d, vault, pw, key)


def test_kv2_deleted_and_destroyed_versions_are_enoent(make_daemon, vault):
    vals = [value() for _ in range(3)]
    for v in vals:
        vault.kv_put("secret", "t2/x", {"k": v})
    vault.kv_delete("secret", "t2/x")              # latest (3): soft-deleted
    vault.kv_destroy("secret", "t2/x", [1])
    d = make_daemon(config(backend(vault), {
        "latest": {"backend": "vault", "ref": "t2/x", "field": "k"},
        "v1": {"backend": "vault", "ref": "t2/x", "field": "k", "version": "1"},
        "v2": {"backend": "vault", "ref": "t2/x", "field": "k", "version": "2"},
    }))
    assert read(d, "v2") == vals[1].encode()
    assert read_errno(d, "latest") == errno.ENOENT
    assert read_errno(d, "v1") == errno.ENOENT
    log = d.log()
    assert "version 3 was deleted at" in log
    assert "version 1 is destroyed" in log
    assert_log_clean(d, vault, *vals)


def test_kv1_read_and_field(make_daemon, vault):
    v = value()
    vault.kv_put("kv", "t3/app", {"api_key": v, "region": "eu"})
    d = make_daemon(config(backend(vault, kv={"mount": "kv", "version": 1}), {
        "app.json": {"backend": "vault", "ref": "t3/app"},
        "api_key": {"backend": "vault", "ref": "t3/app", "field": "api_key"},
        "pinned": {"backend": "vault", "ref": "t3/app", "version": "1"},
        "missing": {"backend": "vault", "ref": "t3/none"},
    }))
    assert json.loads(read(d, "app.json")) == {"api_key": v, "region": "eu"}
    assert read(d, "api_key") == v.encode()
    assert read_errno(d, "pinned") == errno.ENOENT       # KV v1 keeps no versions
    assert read_errno(d, "missing") == errno.ENOENT
    assert "KV v1 keeps no versions" in d.log()
    assert_log_clean(d, vault, v)


def test_namespace_header(make_daemon, vault):
    inside, outside = value(), value()
    vault.kv_put("secret", "t4/x", {"k": inside}, namespace="team-a")
    vault.kv_put("secret", "t4/x", {"k": outside})
    d = make_daemon(config(backend(vault, namespace="team-a"), {
        "x": {"backend": "vault", "ref": "t4/x", "field": "k"}}))
    assert read(d, "x") == inside.encode()
    assert vault.stats()["kv_reads"].get("team-a/secret/data/t4/x") == 1


# -- auth methods --

def make_token(vault):
    """A real, renewable non-root token, made the way an operator would (AppRole)."""
    status, body, _ = vault.request("POST", "/v1/auth/approle/login",
                                    {"role_id": APPROLE_ID, "secret_id": APPROLE_SECRET},
                                    token="")
    assert status == 200
    return body["auth"]["client_token"]


@pytest.mark.parametrize("method", ["cert", "approle", "kubernetes", "token"])
def test_each_auth_method_logs_in_and_reads(make_daemon, vault, tmp_path, method):
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    if method == "cert":
        auth = {"method": "cert"}
    elif method == "approle":
        auth = {"method": "approle",
                "role_id_file": str(write_private(creds / "role-id", APPROLE_ID + "\n")),
                "secret_id_file": str(write_private(creds / "secret-id", APPROLE_SECRET))}
    elif method == "kubernetes":
        # A pod's service-account token file is 0644: accepted for this one file.
        jwt = write_private(creds / "token", JWT, mode=0o644)
        auth = {"method": "kubernetes", "role": "secretsfs", "jwt_file": str(jwt)}
    else:
        auth = {"method": "token",
                "token_file": str(write_private(creds / "vault-token", make_token(vault)))}
    v = value()
    vault.kv_put("secret", "t5/" + method, {"k": v})
    before = vault.stats()
    d = make_daemon(config(backend(vault, auth=auth), {
        "s": {"backend": "vault", "ref": "t5/" + method, "field": "k"}}))
    assert read(d, "s") == v.encode()
    after = vault.stats()
    if method == "token":
        assert after["lookups"] == before["lookups"] + 1
        assert after["logins"] == before["logins"]
    else:
        assert after["logins"].get(method, 0) == before["logins"].get(method, 0) + 1
    assert "logged in with %s auth" % method in d.log()
    assert_log_clean(d, vault, v, APPROLE_ID, APPROLE_SECRET, JWT)


def test_readable_approle_secret_id_is_refused_at_start(make_daemon, vault, tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    auth = {"method": "approle",
            "role_id_file": str(write_private(creds / "role-id", APPROLE_ID)),
            "secret_id_file": str(write_private(creds / "secret-id", APPROLE_SECRET,
                                                mode=0o640))}
    d = make_daemon(config(backend(vault, auth=auth), {
        "s": {"backend": "vault", "ref": "t6/x"}}), start=False)
    d.start(wait=False)
    assert d.proc.wait(10) != 0
    assert "secret-id" in d.log() and "chmod 600" in d.log()
    assert APPROLE_SECRET not in d.log()


def test_bad_approle_credentials_give_eacces(make_daemon, vault, tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    auth = {"method": "approle",
            "role_id_file": str(write_private(creds / "role-id", APPROLE_ID)),
            "secret_id_file": str(write_private(creds / "secret-id", "wrong-secret-id"))}
    vault.kv_put("secret", "t7/x", {"k": value()})
    d = make_daemon(config(backend(vault, auth=auth), {
        "s": {"backend": "vault", "ref": "t7/x", "field": "k"}}))
    assert read_errno(d, "s") == errno.EACCES
    assert "login with approle auth failed" in d.log()
    assert "invalid role or secret ID" in d.log()
    assert "wrong-secret-id" not in d.log()


# -- tokens: renewal, expiry, revocation --

def test_short_token_ttl_renewal_and_relogin_no_failed_read(make_daemon, vault):
    """TTL 3s, max_ttl 7s: renew-self at 2/3 of the lease until max_ttl, then a new login;
    reads every 100ms for 12s never fail and see a rotation within the refresh period."""
    vault.configure(token_ttl=3, token_max_ttl=7)
    v = value()
    vault.kv_put("secret", "t8/x", {"k": v})
    vault.reset_stats()
    d = make_daemon(config(backend(vault), {
        "s": {"backend": "vault", "ref": "t8/x", "field": "k", "refresh": "1s"}}))
    seen, failures, last_put = [], [], time.monotonic()
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        try:
            seen.append(read(d, "s").decode())
        except OSError as e:
            failures.append(e)
        if time.monotonic() - last_put > 4:
            v = value()
            vault.kv_put("secret", "t8/x", {"k": v})
            last_put = time.monotonic()
        time.sleep(0.1)
    assert failures == []
    assert wait_for(lambda: read(d, "s").decode() == v, timeout=3)
    st = vault.stats()
    assert st["renewals"] >= 2, st["renewals"]
    assert st["logins"].get("cert", 0) >= 2, st["logins"]
    # The renewer acted ahead of expiry (renewals above, and a new login when renew-self
    # could no longer extend the lease). A renewer late on a loaded machine may let one
    # request meet a dead token: that one logs in again and retries, so no fetch fails.
    assert "max_ttl reached" in d.log()
    assert fetch_failures(d) == []
    assert_log_clean(d, vault, *set(seen))


def test_revoked_token_logs_in_again_on_403(make_daemon, vault):
    v1, v2 = value(), value()
    vault.kv_put("secret", "t9/x", {"k": v1})
    d = make_daemon(config(backend(vault), {
        "s": {"backend": "vault", "ref": "t9/x", "field": "k", "refresh": "1s"}}))
    assert read(d, "s") == v1.encode()
    logins = vault.stats()["logins"]["cert"]
    vault.kv_put("secret", "t9/x", {"k": v2})
    assert vault.revoke_tokens() >= 1
    time.sleep(1.1)
    # Stale-if-error would hand back v1: v2 proves the refetch succeeded.
    assert read(d, "s") == v2.encode()
    st = vault.stats()
    assert st["logins"]["cert"] == logins + 1
    assert st["permission_denied"] >= 1
    assert fetch_failures(d) == []


def test_token_file_is_read_again_when_its_token_dies(make_daemon, vault, tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    tok_file = write_private(creds / "vault-token", make_token(vault))
    v1, v2 = value(), value()
    vault.kv_put("secret", "t10/x", {"k": v1})
    d = make_daemon(config(backend(vault, auth={"method": "token",
                                                 "token_file": str(tok_file)}), {
        "s": {"backend": "vault", "ref": "t10/x", "field": "k", "refresh": "1s"}}))
    assert read(d, "s") == v1.encode()
    # Vault Agent writes a new token and the old one is revoked.
    vault.revoke_tokens()
    new_tok = make_token(vault)
    write_private(creds / "vault-token.tmp", new_tok)
    os.rename(creds / "vault-token.tmp", tok_file)
    vault.kv_put("secret", "t10/x", {"k": v2})
    time.sleep(1.1)
    assert read(d, "s") == v2.encode()
    assert_log_clean(d, vault, v1, v2)


# -- TLS --

def test_server_from_unknown_ca_is_eio_and_logged(make_daemon, tmp_path, pki):
    with VaultFake.start(tmp_path / "v", pki, quiet=True, server_cert=pki.server_otherca_cert,
                         server_key=pki.server_otherca_key) as other:
        d = make_daemon(config(backend(other), {"s": {"backend": "vault", "ref": "x"}}))
        assert read_errno(d, "s") == errno.EIO
        assert "TLS: server certificate not verified by %s" % pki.ca in d.log()
        assert d.proc.poll() is None


def test_no_client_certificate_login_fails_eio(make_daemon, vault, tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    tok = write_private(creds / "vault-token", make_token(vault))
    before = sum(vault.stats()["handshake_failures"].values())
    d = make_daemon(config(backend(vault, tls={"ca_file": vault.ca},
                                   auth={"method": "token", "token_file": str(tok)}),
                           {"s": {"backend": "vault", "ref": "t11/x"}}))
    assert read_errno(d, "s") == errno.EIO
    log = d.log()
    assert "login with token auth failed" in log
    # The alert, or on a loaded machine the hang-up that came before it.
    assert ("TLS: the server refused the connection" in log or
            "TLS: the server closed the connection during the handshake" in log)
    assert "no client certificate was configured" in log
    assert sum(vault.stats()["handshake_failures"].values()) > before
    assert d.proc.poll() is None


def test_expired_client_certificate_login_fails_eio(make_daemon, vault, pki):
    d = make_daemon(config(backend(vault, tls={"ca_file": vault.ca,
                                               "client_cert": pki.client_expired_cert,
                                               "client_key": pki.client_expired_key}),
                           {"s": {"backend": "vault", "ref": "t12/x"}}))
    assert read_errno(d, "s") == errno.EIO
    log = d.log()
    assert "login with cert auth failed" in log
    assert pki.client_expired_cert in log
    # The server's alert names the cause; on a loaded machine it can hang
    # up before the alert reaches us, and the log says that instead.
    if "TLS: the server refused the connection" in log:
        assert "certificate expired" in log
    else:
        assert "TLS: the server closed the connection during the handshake" in log


def test_client_certificate_rotation_without_restart(make_daemon, vault, pki, tmp_path):
    """client.crt/key replaced by client2's through rename; Vault then accepts only
    CN=secretsfs-client2 and revokes the old token: the next read logs in again on a
    fresh connection that presents the new certificate."""
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    crt, key = creds / "client.crt", creds / "client.key"
    shutil.copy(pki.client_cert, crt)
    shutil.copy(pki.client_key, key)
    os.chmod(key, 0o600)
    v1, v2 = value(), value()
    vault.kv_put("secret", "t13/x", {"k": v1})
    d = make_daemon(config(backend(vault, tls={"ca_file": vault.ca, "client_cert": str(crt),
                                               "client_key": str(key)}),
                           {"s": {"backend": "vault", "ref": "t13/x", "field": "k",
                                  "refresh": "1s"}}))
    assert read(d, "s") == v1.encode()
    pid = d.pid

    # Rotate as cert-manager would: new files renamed over the old ones.
    shutil.copy(pki.client2_key, creds / "client.key.new")
    os.chmod(creds / "client.key.new", 0o600)
    shutil.copy(pki.client2_cert, creds / "client.crt.new")
    os.rename(creds / "client.key.new", key)
    os.rename(creds / "client.crt.new", crt)
    vault.configure(cert={"rotated": {"certificate_file": pki.ca,
                                      "allowed_common_names": ["secretsfs-client2"],
                                      "policies": ["default"]}})
    vault.revoke_tokens()
    vault.kv_put("secret", "t13/x", {"k": v2})
    logins = vault.stats()["logins"]["cert"]
    time.sleep(1.1)
    assert read(d, "s") == v2.encode()
    assert d.pid == pid and d.proc.poll() is None
    assert vault.stats()["logins"]["cert"] == logins + 1
    with open(vault.state_file) as f:
        cns = [t["meta"]["common_name"] for t in json.load(f)["tokens"].values()
               if t["path"] == "auth/cert/login"]
    assert cns == ["secretsfs-client2"]
    assert fetch_failures(d) == []


# -- faults --

@pytest.mark.parametrize("code", [429, 500, 503])
def test_transient_status_once_then_ok(make_daemon, vault, code):
    v = value()
    path = "t14/c%d" % code
    vault.kv_put("secret", path, {"k": v})
    d = make_daemon(config(backend(vault), {"s": {"backend": "vault", "ref": path,
                                                  "field": "k"}}))
    vault.faults(status_once={"code": code, "prefix": "/v1/secret/data/" + path})
    assert read(d, "s") == v.encode()
    st = vault.stats()
    assert st["by_path"]["GET /v1/secret/data/" + path] == 2
    assert st["kv_reads"]["secret/data/" + path] == 1
    assert st["faults"]["status:%d" % code] == 1


def test_retry_after_is_honoured(make_daemon, vault):
    v = value()
    vault.kv_put("secret", "t15/x", {"k": v})
    d = make_daemon(config(backend(vault), {"s": {"backend": "vault", "ref": "t15/x",
                                                  "field": "k"}}))
    vault.faults(status={"code": 429, "count": 1, "retry_after": 1,
                         "prefix": "/v1/secret/data/t15/x"})
    t0 = time.monotonic()
    assert read(d, "s") == v.encode()
    assert time.monotonic() - t0 >= 0.9
    assert vault.stats()["by_path"]["GET /v1/secret/data/t15/x"] == 2


def test_sealed_vault_is_eio_then_recovers(make_daemon, vault):
    v = value()
    vault.kv_put("secret", "t16/x", {"k": v})
    d = make_daemon(config(backend(vault, http={"timeout": "2s", "retry_max": "200ms"}),
                           {"s": {"backend": "vault", "ref": "t16/x", "field": "k"}}))
    vault.faults(sealed=True)
    assert read_errno(d, "s") == errno.EIO
    assert "Vault is sealed" in d.log()
    vault.faults(sealed=False)
    assert read(d, "s") == v.encode()


def test_malformed_and_oversized_answers_are_eio_daemon_stays_up(make_daemon, vault):
    good, bad, big = value(), value(), value()
    vault.kv_put("secret", "t17/good", {"k": good})
    vault.kv_put("secret", "t17/bad", {"k": bad})
    vault.kv_put("secret", "t17/big", {"k": big})
    d = make_daemon(config(backend(vault, http={"max_response_bytes": "64KiB"}), {
        "good": {"backend": "vault", "ref": "t17/good", "field": "k"},
        "bad": {"backend": "vault", "ref": "t17/bad", "field": "k"},
        "big": {"backend": "vault", "ref": "t17/big", "field": "k"},
    }))
    vault.faults(malformed={"prefix": "/v1/secret/data/t17/bad"},
                 oversized={"bytes": 200000, "prefix": "/v1/secret/data/t17/big"})
    assert read_errno(d, "bad") == errno.EIO
    assert read_errno(d, "big") == errno.EIO
    assert d.proc.poll() is None
    assert read(d, "good") == good.encode()
    log = d.log()
    assert "t17/bad: not a KV v2 answer" in log
    assert "larger than max_response_bytes (65536 bytes)" in log
    # Neither answer is retried: one request each.
    st = vault.stats()
    assert st["by_path"]["GET /v1/secret/data/t17/bad"] == 1
    assert st["by_path"]["GET /v1/secret/data/t17/big"] == 1
    vault.clear_faults()
    assert read(d, "bad") == bad.encode()
    assert read(d, "big") == big.encode()
    assert_log_clean(d, vault, good, bad, big)


def test_50_concurrent_first_reads_make_one_request(make_daemon, vault):
    v = value()
    vault.kv_put("secret", "t18/x", {"k": v})
    d = make_daemon(config(backend(vault), {"s": {"backend": "vault", "ref": "t18/x",
                                                  "field": "k"}}))
    vault.reset_stats()
    barrier = threading.Barrier(50)
    results, errors = [], []

    def reader():
        barrier.wait()
        try:
            results.append(read(d, "s"))
        except OSError as e:
            errors.append(e)
    threads = [threading.Thread(target=reader) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert results == [v.encode()] * 50
    st = vault.stats()
    assert st["kv_reads"] == {"secret/data/t18/x": 1}
    assert st["logins"].get("cert") == 1


def test_debug_log_has_no_values_tokens_or_credentials(make_daemon, vault, tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    auth = {"method": "approle",
            "role_id_file": str(write_private(creds / "role-id", APPROLE_ID)),
            "secret_id_file": str(write_private(creds / "secret-id", APPROLE_SECRET))}
    vault.configure(token_ttl=2)
    v = value()
    vault.kv_put("secret", "t19/x", {"k": v, "other": "o-" + v})
    d = make_daemon(config(backend(vault, auth=auth), {
        "s": {"backend": "vault", "ref": "t19/x", "refresh": "1s"}}),
        extra_args=["-d"])
    for _ in range(3):
        assert json.loads(read(d, "s"))["k"] == v
        time.sleep(1.2)
    assert "token renewed" in d.log()             # the debug lines did run
    assert_log_clean(d, vault, v, APPROLE_ID, APPROLE_SECRET)


def test_logins_and_renewals_are_audited_without_tokens(make_daemon, vault, tmp_path):
    audit_dir = tmp_path / "audit"
    audit_dir.mkdir(mode=0o700)
    key = write_private(tmp_path / "audit.key", os.urandom(32).hex() + "\n")
    vault.configure(token_ttl=2)
    v = value()
    vault.kv_put("secret", "t20/x", {"k": v})
    cfg = config(backend(vault), {"s": {"backend": "vault", "ref": "t20/x", "field": "k"}})
    cfg["audit"] = {"file": str(audit_dir / "audit.log"), "key_file": str(key)}
    d = make_daemon(cfg)
    assert read(d, "s") == v.encode()
    assert wait_for(lambda: "renew" in (audit_dir / "audit.log").read_text(), timeout=5)
    text = (audit_dir / "audit.log").read_text()
    recs = [json.loads(ln) for ln in text.splitlines()]
    auth = [r for r in recs if r.get("event") == "auth"]
    login = [r for r in auth if r.get("action") == "login"]
    renew = [r for r in auth if r.get("action") == "renew"]
    assert login and login[0]["backend"] == "vault" and login[0]["method"] == "cert"
    assert login[0]["outcome"] == "ok" and login[0]["ttl"] == 2
    assert renew and renew[0]["outcome"] == "ok"
    assert v not in text
    for tok in all_tokens(vault):
        assert tok not in text
    assert_log_clean(d, vault, v)



@pytest.mark.parametrize("kv", [2, 1])
def test_prefix_lists_the_kv_folder(make_daemon, vault, kv):
    mount = "secret" if kv == 2 else "kv"
    a, b, c = value(), value(), value()
    vault.kv_put(mount, "t21/a", {"k": a})
    vault.kv_put(mount, "t21/b", {"k": b})
    vault.kv_put(mount, "t21/sub/c", {"k": c})
    d = make_daemon(config(backend(vault, kv={"mount": mount, "version": kv}), {
        "team": {"backend": "vault", "ref": "t21", "as": "prefix", "field": "k"},
        "empty": {"backend": "vault", "ref": "t21-none", "as": "prefix"}}))
    # Sub-folders ("sub/") are not files.
    assert sorted(os.listdir(d.path("team"))) == ["a", "b"]
    assert read(d, "team/a") == a.encode()
    assert read(d, "team/b") == b.encode()
    assert os.listdir(d.path("empty")) == []
    listed = "secret/metadata/t21" if kv == 2 else "kv/t21"
    assert vault.stats()["lists"].get(listed, 0) >= 1
    assert_log_clean(d, vault, a, b, c)


# -- pinned public key, namespace from the environment, denied paths, standby --

def spki_pin(key_file):
    """curl's sha256// pin of a key: base64 of the SHA-256 of its DER SubjectPublicKeyInfo."""
    der = subprocess.run(["openssl", "pkey", "-in", key_file, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der,
                            check=True, capture_output=True).stdout
    return "sha256//" + base64.b64encode(digest).decode()


def test_pinned_public_key(make_daemon, vault, pki, tmp_path):
    v = value()
    vault.kv_put("secret", "t22/x", {"k": v})
    right = spki_pin(pki.server_key)
    wrong = spki_pin(pki.server_otherca_key)    # a real key, just not this server's
    assert right != wrong
    pem = tmp_path / "server-pub.pem"
    subprocess.run(["openssl", "pkey", "-in", pki.server_key, "-pubout", "-out", str(pem)],
                   check=True)

    def pinned(pin):
        return backend(vault, tls={"ca_file": vault.ca, "client_cert": vault.client_cert,
                                   "client_key": vault.client_key, "pinned_pubkey": pin})
    cfg = {"backends": {"right": pinned(right), "either": pinned(wrong + ";" + right),
                        "file": pinned(str(pem)), "wrong": pinned(wrong)},
           "secrets": {name: {"backend": name, "ref": "t22/x", "field": "k"}
                       for name in ("right", "either", "file", "wrong")},
           "rules": [{"id": "host", "match": {"host": True}, "allow": ["*"]}]}
    d = make_daemon(cfg)
    assert read(d, "right") == v.encode()
    assert read(d, "either") == v.encode()      # one of a list matches: a key rotation
    assert read(d, "file") == v.encode()        # a public key file
    assert read_errno(d, "wrong") == errno.EIO
    assert re.search(r"secret wrong: backend wrong: login with cert auth failed: "
                     r"POST \S+/v1/auth/cert/login: TLS: the server's public key does not "
                     r"match pinned_pubkey", d.log()), d.log()
    assert d.proc.poll() is None
    assert_log_clean(d, vault, v)


def test_namespace_from_vault_namespace(make_daemon, vault):
    """$VAULT_NAMESPACE is sent as X-Vault-Namespace when the config names none; a
    configured namespace wins over it."""
    env_ns, cfg_ns, root_ns = value(), value(), value()
    vault.kv_put("secret", "t23/x", {"k": env_ns}, namespace="team-env")
    vault.kv_put("secret", "t23/x", {"k": cfg_ns}, namespace="team-cfg")
    vault.kv_put("secret", "t23/x", {"k": root_ns})
    cfg = {"backends": {"env": backend(vault), "cfg": backend(vault, namespace="team-cfg")},
           "secrets": {"env": {"backend": "env", "ref": "t23/x", "field": "k"},
                       "cfg": {"backend": "cfg", "ref": "t23/x", "field": "k"}},
           "rules": [{"id": "host", "match": {"host": True}, "allow": ["*"]}]}
    d = make_daemon(cfg, start=False)
    d.start(prefix=["env", "VAULT_NAMESPACE=team-env"])
    assert read(d, "env") == env_ns.encode()
    assert read(d, "cfg") == cfg_ns.encode()
    seen = {r["namespace"] for r in vault.stats()["recent"]
            if r["path"] == "/v1/secret/data/t23/x" and r["token"] == "token"}
    assert seen == {"team-env", "team-cfg"}
    assert_log_clean(d, vault, env_ns, cfg_ns, root_ns)


def test_kv_read_denied_is_eacces_without_a_login(make_daemon, vault):
    ok, denied = value(), value()
    vault.kv_put("secret", "t24/ok", {"k": ok})
    vault.kv_put("secret", "t24/no", {"k": denied})
    vault.configure(deny=["secret/data/t24/no"])
    d = make_daemon(config(backend(vault), {
        "ok": {"backend": "vault", "ref": "t24/ok", "field": "k"},
        "no": {"backend": "vault", "ref": "t24/no", "field": "k"}}))
    assert read(d, "ok") == ok.encode()
    before = vault.stats()
    assert read_errno(d, "no") == errno.EACCES
    after = vault.stats()
    # "permission denied" from a token known live is a missing capability: no login,
    # no retry (a login per denied read used up secret_ids and locked roles out).
    assert after["logins"]["cert"] == before["logins"]["cert"]
    assert after["acl_denied"]["secret/data/t24/no"] == 1
    assert "secret/data/t24/no" not in after["kv_reads"]
    assert ("secret no: backend vault: secret/t24/no: permission denied (the token is "
            "valid; its policies do not allow this read); Vault answered 403: 1 error "
            "occurred: * permission denied") in d.log()
    assert read(d, "ok") == ok.encode()        # the new token still reads what it may
    assert_log_clean(d, vault, ok, denied)


@pytest.mark.parametrize("mode", ["redirect", "no_leader", "forward"])
def test_standby_node(make_daemon, vault, mode):
    """A standby forwards requests to the active node by default: reads work. One that
    redirects (307, forwarding off) is not followed, and one that knows no active node
    answers 503: with nothing cached either is EIO with a log line; the daemon stays up."""
    warm, cold = value(), value()
    vault.kv_put("secret", "t25/warm", {"k": warm})
    vault.kv_put("secret", "t25/" + mode, {"k": cold})
    d = make_daemon(config(backend(vault, http={"timeout": "3s", "retry_max": "200ms"}), {
        "warm": {"backend": "vault", "ref": "t25/warm", "field": "k"},
        "cold": {"backend": "vault", "ref": "t25/" + mode, "field": "k"}}))
    assert read(d, "warm") == warm.encode()    # logged in while the node was active
    vault.faults(standby={"mode": mode, "active": "https://127.0.0.2:8200"})
    status, health = vault.health()
    assert status == 429 and health["standby"] is True
    if mode == "forward":
        assert read(d, "cold") == cold.encode()
    else:
        assert read_errno(d, "cold") == errno.EIO
        log = d.log()
        if mode == "redirect":
            assert re.search(r"secret cold: backend vault: /v1/secret/data/t25/redirect: Vault "
                             r"answered 307, a redirect to https://127.0.0.2:8200 \(a standby "
                             r"node names its active node so\); redirects are not followed",
                             log), log
            assert vault.stats()["standby"]["redirect"] == 1
        else:
            assert ("secret cold: backend vault: /v1/secret/data/t25/no_leader: Vault "
                    "answered 503: no active Vault instance found") in log
        assert d.proc.poll() is None
    assert read(d, "warm") == warm.encode()     # cached: a standby costs no served value
    vault.faults(standby=False)
    assert read(d, "cold") == cold.encode()
    assert_log_clean(d, vault, warm, cold)


def test_cert_auth_role_name(make_daemon, vault, tmp_path):
    """auth.name reaches Vault: with two roles that both trust the client's CA, the token
    comes from the named one (unnamed, Vault would try "default" first); an unknown name
    trusts nothing and the login fails."""
    vault.configure(cert={"default": {"certificate_file": vault.pki.ca, "policies": ["default"]},
                          "ops": {"certificate_file": vault.pki.ca, "policies": ["ops"]}})
    v = value()
    vault.kv_put("secret", "t26/x", {"k": v})

    def cert_names():
        with open(vault.state_file) as f:
            return [t["meta"]["cert_name"] for t in json.load(f)["tokens"].values()
                    if t["path"] == "auth/cert/login"]
    before = cert_names()
    d = make_daemon(config(backend(vault, auth={"method": "cert", "name": "ops"}), {
        "s": {"backend": "vault", "ref": "t26/x", "field": "k"}}), workdir=tmp_path / "ops")
    assert read(d, "s") == v.encode()
    assert cert_names().count("ops") == before.count("ops") + 1
    assert cert_names().count("default") == before.count("default")

    failures = vault.stats()["login_failures"].get("cert", 0)
    bad = make_daemon(config(backend(vault, auth={"method": "cert", "name": "nope"}), {
        "s": {"backend": "vault", "ref": "t26/x", "field": "k"}}), workdir=tmp_path / "nope")
    assert read_errno(bad, "s") == errno.EACCES
    assert ("secret s: backend vault: login with cert auth failed: Vault answered 400: "
            "invalid certificate or no client certificate supplied") in bad.log()
    assert vault.stats()["login_failures"]["cert"] > failures
    assert bad.proc.poll() is None


# -- mtime, prefix refresh, TLS minimum --

def rfc3339_ns(s):
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z", s)
    assert m, s
    secs = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return secs * 10**9 + int((m.group(2) or "").ljust(9, "0"))


def test_kv2_mtime_is_the_versions_created_time(make_daemon, vault):
    a, b = value(), value()
    vault.kv_put("secret", "t27/x", {"k": a})
    vault.kv_put("secret", "t27/x", {"k": b})

    def created(n):
        status, body, _ = vault.request("GET", "/v1/secret/data/t27/x?version=%d" % n)
        assert status == 200
        return rfc3339_ns(body["data"]["metadata"]["created_time"])
    c1, c2 = created(1), created(2)
    assert c1 != c2
    d = make_daemon(config(backend(vault), {
        "latest": {"backend": "vault", "ref": "t27/x", "field": "k"},
        "v1": {"backend": "vault", "ref": "t27/x", "field": "k", "version": "1"},
        "dir": {"backend": "vault", "ref": "t27/x", "as": "directory"}}))
    assert read(d, "latest") == b.encode()
    assert os.stat(d.path("latest")).st_mtime_ns == c2
    assert os.stat(d.path("v1")).st_mtime_ns == c1
    assert os.stat(d.path("dir/k")).st_mtime_ns == c2
    assert os.getxattr(d.path("v1"), "user.secretsfs.version") == b"1"


def test_prefix_follows_writes_and_deletes_in_vault(make_daemon, vault, tmp_path):
    """A prefix is listed again every refresh: a key written appears, a key whose metadata
    is deleted (gone from LIST) disappears. A soft-deleted key is still listed, as Vault
    lists it; reading it serves the last value for cache.delete_grace, then ENOENT."""
    a, b, c, n = value(), value(), value(), value()
    for key, v in (("a", a), ("b", b), ("c", c)):
        vault.kv_put("secret", "t28/" + key, {"k": v})

    def mount(grace):
        cfg = config(backend(vault), {"team": {"backend": "vault", "ref": "t28", "as": "prefix",
                                               "field": "k", "refresh": "1s"}})
        cfg["cache"] = {"delete_grace": grace}
        return make_daemon(cfg, workdir=tmp_path / ("grace-" + grace))
    now, later = mount("0s"), mount("1h")

    def names(d):
        return sorted(os.listdir(d.path("team")))
    for d in (now, later):
        assert names(d) == ["a", "b", "c"]
        assert read(d, "team/c") == c.encode()

    vault.kv_put("secret", "t28/new", {"k": n})
    vault.kv_delete_metadata("secret", "t28/b")
    for d in (now, later):
        assert wait_for(lambda: names(d) == ["a", "c", "new"]), names(d)
        assert read(d, "team/new") == n.encode()
        assert read_errno(d, "team/b") == errno.ENOENT

    vault.kv_delete("secret", "t28/c")          # soft delete of the latest version
    assert wait_for(lambda: read_errno(now, "team/c") == errno.ENOENT)
    assert "c" in names(now)

    def deletion_seen():
        assert read(later, "team/c") == c.encode()
        return "secret team/c: backend vault: secret/t28/c: version 1 was deleted at" in \
            later.log()
    assert wait_for(deletion_seen)
    assert read(later, "team/c") == c.encode()  # within the hour's grace
    assert_log_clean(now, vault, a, b, c, n)
    assert_log_clean(later, vault, a, b, c, n)


LEGACY_OPENSSL_CNF = """openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1
CipherString = DEFAULT@SECLEVEL=0
"""


@pytest.mark.parametrize("tls_max", ["1.1", "1.0"])
def test_server_below_tls_1_2_is_refused(make_daemon, pki, tmp_path, tls_max):
    """The daemon runs with an OpenSSL configuration that allows TLS 1.0 (OpenSSL 3's own
    default already refuses it), so the refusal can only come from its TLS 1.2 minimum."""
    cnf = tmp_path / "legacy-openssl.cnf"
    cnf.write_text(LEGACY_OPENSSL_CNF)
    with VaultFake.start(tmp_path / "old", pki, quiet=True, tls_max=tls_max) as old:
        # The server does speak the old version to a client that allows it.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(pki.ca)
        ctx.load_cert_chain(pki.client_cert, pki.client_key)
        with warnings.catch_warnings():     # deprecated: the point of this client
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with socket.create_connection(("127.0.0.1", old.port), timeout=10) as sock:
            with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                assert tls.version() == {"1.1": "TLSv1.1", "1.0": "TLSv1"}[tls_max]
        d = make_daemon(config(backend(old, http={"timeout": "3s"}),
                               {"s": {"backend": "vault", "ref": "x", "field": "k"}}),
                        start=False)
        d.start(prefix=["env", "OPENSSL_CONF=" + str(cnf)])
        assert read_errno(d, "s") == errno.EIO
        assert re.search(r"secret s: backend vault: login with cert auth failed: POST "
                         r"\S+/v1/auth/cert/login: TLS: the server offers no TLS version we accept; "
                         r"TLS 1.2 is the least \((tlsv1 alert protocol version|unsupported "
                         r"protocol)\)", d.log()), \
            d.log()
        assert d.proc.poll() is None
