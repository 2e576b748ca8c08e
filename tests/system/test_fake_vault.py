"""Fidelity of the fake Vault (tests/fakes/vault_server.py), checked with hvac, a real Vault
client, and with plain TLS sockets for the mutual-TLS rules.

Run: cd /work/main && /usr/bin/python3 -m pytest -q tests/system/test_fake_vault.py
"""

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import warnings

import hvac
import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from vault_fixture import VaultFake, VaultFakeError, make_pki  # noqa: E402
from conftest import SHARED, need  # noqa: E402

ENVELOPE_KEYS = ["request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info",
                 "warnings", "auth", "mount_type"]
VERSION_META_KEYS = {"created_time", "custom_metadata", "deletion_time", "destroyed", "version"}
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")

APPROLE = {"broker": {"role_id": "role-id-1234", "secret_id": "secret-id-5678",
                      "policies": ["secretsfs"]}}
KUBERNETES = {"secretsfs": {"jwts": ["jwt-good-1"], "policies": ["secretsfs"],
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
def _clean_faults(request):
    yield
    if "vault" in request.fixturenames:
        v = request.getfixturevalue("vault")
        v.clear_faults()
        v.configure(approle=APPROLE, kubernetes=KUBERNETES, deny=[], token_errors="modern",
                    user_lockout={}, token_ttl=3600, namespaces=None,
                    cert={"default": {"certificate_file": v.pki.ca, "policies": ["default"]}})


def client(vault, token=None, namespace=None, cert=None, key=None):
    return hvac.Client(url=vault.addr, token=token, namespace=namespace, verify=vault.ca,
                       cert=(cert or vault.client_cert, key or vault.client_key), timeout=10)


def root(vault, namespace=None):
    return client(vault, token=vault.root_token, namespace=namespace)


# -- PKI --

def test_mkpki_is_idempotent_and_keys_are_private(pki):
    before = {n: open(os.path.join(pki.dir, n), "rb").read() for n in os.listdir(pki.dir)
              if n.endswith((".crt", ".key"))}
    assert len(before) == 16
    again = make_pki(pki.dir)
    after = {n: open(os.path.join(pki.dir, n), "rb").read() for n in before}
    assert after == before
    for name in before:
        mode = os.stat(os.path.join(again.dir, name)).st_mode & 0o777
        assert mode == (0o600 if name.endswith(".key") else 0o644), name


def test_mkpki_certificates_chain_as_documented(pki):
    def verify(ca, cert):
        return subprocess.run(["openssl", "verify", "-CAfile", ca, cert],
                              capture_output=True, text=True)
    for good in (pki.server_cert, pki.client_cert, pki.client2_cert):
        assert verify(pki.ca, good).returncode == 0, good
    expired = verify(pki.ca, pki.client_expired_cert)
    assert expired.returncode != 0 and "expired" in expired.stdout + expired.stderr
    assert verify(pki.ca, pki.client_otherca_cert).returncode != 0
    assert verify(pki.other_ca, pki.client_otherca_cert).returncode == 0
    assert verify(pki.other_ca, pki.server_otherca_cert).returncode == 0
    san = subprocess.run(["openssl", "x509", "-in", pki.server_cert, "-noout", "-ext",
                          "subjectAltName"], capture_output=True, text=True).stdout
    assert "127.0.0.1" in san and "0:0:0:0:0:0:0:1" in san and "localhost" in san


# -- mutual TLS --

def tls_attempt(vault, cert=None, key=None, tls12=False):
    """bytes of an HTTP answer, or the exception that ended the connection."""
    ctx = ssl.create_default_context(cafile=vault.ca)
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        ctx.load_cert_chain(cert, key)
    raw = socket.create_connection(("127.0.0.1", vault.port), timeout=5)
    try:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"GET /v1/sys/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Connection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk
    except (ssl.SSLError, ConnectionError) as e:
        return e
    finally:
        raw.close()


def test_tls_valid_client_certs_are_served(vault, pki):
    for cert, key in ((pki.client_cert, pki.client_key), (pki.client2_cert, pki.client2_key)):
        answer = tls_attempt(vault, cert, key)
        assert isinstance(answer, bytes) and answer.startswith(b"HTTP/1.1 200 "), answer


@pytest.mark.parametrize("tls12", [False, True], ids=["tls13", "tls12"])
@pytest.mark.parametrize("which,reason", [
    ("none", "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
    ("expired", "certificate has expired"),
    ("otherca", "unable to get local issuer certificate"),
])
def test_tls_refuses_bad_client_certs(vault, pki, which, reason, tls12):
    cert = {"none": (None, None),
            "expired": (pki.client_expired_cert, pki.client_expired_key),
            "otherca": (pki.client_otherca_cert, pki.client_otherca_key)}[which]
    before = vault.stats()["handshake_failures"].get(reason, 0)
    answer = tls_attempt(vault, *cert, tls12=tls12)
    assert not (isinstance(answer, bytes) and answer.startswith(b"HTTP/")), answer
    if tls12:   # in TLS 1.2 the client learns of the refusal inside the handshake itself
        assert isinstance(answer, ssl.SSLError), answer
    assert vault.stats()["handshake_failures"].get(reason, 0) == before + 1


def test_tls_server_from_unknown_ca_is_rejected_by_hvac(tmp_path, pki):
    with VaultFake.start(tmp_path / "v", pki, quiet=True, server_cert=pki.server_otherca_cert,
                         server_key=pki.server_otherca_key) as other:
        with pytest.raises(requests.exceptions.SSLError):
            client(other).sys.read_health_status(method="GET")
        # The same server is fine for a client that trusts its CA: only the CA differs.
        ok = hvac.Client(url=other.addr, verify=pki.other_ca,
                         cert=(pki.client_cert, pki.client_key))
        assert ok.sys.read_health_status(method="GET")["initialized"] is True


# -- KV v2 --

def test_kv2_write_read_versions(vault):
    c = root(vault)
    w1 = c.secrets.kv.v2.create_or_update_secret("app/db", {"password": "pw-1"},
                                                 mount_point="secret")
    w2 = c.secrets.kv.v2.create_or_update_secret("app/db", {"password": "pw-2", "user": "u"},
                                                 mount_point="secret")
    assert list(w1) == ENVELOPE_KEYS
    assert set(w1["data"]) == VERSION_META_KEYS
    assert w2["data"]["version"] == w1["data"]["version"] + 1
    latest = c.secrets.kv.v2.read_secret_version("app/db", mount_point="secret")
    assert list(latest) == ENVELOPE_KEYS
    assert latest["mount_type"] == "kv" and latest["auth"] is None
    assert re.fullmatch(r"[0-9a-f-]{36}", latest["request_id"])
    assert latest["data"]["data"] == {"password": "pw-2", "user": "u"}
    meta = latest["data"]["metadata"]
    assert set(meta) == VERSION_META_KEYS and meta["version"] == w2["data"]["version"]
    assert RFC3339_NANO.match(meta["created_time"]) and meta["deletion_time"] == ""
    old = c.secrets.kv.v2.read_secret_version("app/db", version=w1["data"]["version"],
                                              mount_point="secret")
    assert old["data"]["data"] == {"password": "pw-1"}
    with pytest.raises(hvac.exceptions.InvalidPath):
        c.secrets.kv.v2.read_secret_version("app/db", version=99, mount_point="secret")


def test_kv2_missing_is_404_with_empty_errors(vault):
    status, body, headers = vault.request("GET", "/v1/secret/data/does/not/exist")
    assert status == 404 and body == {"errors": []}
    assert headers.get("Cache-Control") == "no-store"
    with pytest.raises(hvac.exceptions.InvalidPath):
        root(vault).secrets.kv.v2.read_secret_version("does/not/exist", mount_point="secret")


def test_kv2_list_and_metadata(vault):
    c = root(vault)
    for p in ("list/a", "list/b/c", "list/b/d"):
        c.secrets.kv.v2.create_or_update_secret(p, {"v": p}, mount_point="secret")
    c.secrets.kv.v2.create_or_update_secret("list/a", {"v": "again"}, mount_point="secret")
    keys = c.secrets.kv.v2.list_secrets("list", mount_point="secret")["data"]["keys"]
    assert keys == ["a", "b/"]
    assert c.secrets.kv.v2.list_secrets("list/b/", mount_point="secret")["data"]["keys"] == \
        ["c", "d"]
    # GET ?list=true is the same operation as the LIST method.
    status, body, _ = vault.request("GET", "/v1/secret/metadata/list?list=true")
    assert status == 200 and body["data"]["keys"] == ["a", "b/"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        c.secrets.kv.v2.list_secrets("list/nothing-here", mount_point="secret")
    status, body, _ = vault.request("LIST", "/v1/secret/metadata/list/nothing-here")
    assert status == 404 and body == {"errors": []}
    md = c.secrets.kv.v2.read_secret_metadata("list/a", mount_point="secret")["data"]
    assert md["current_version"] == 2 and md["oldest_version"] == 1
    assert sorted(md["versions"]) == ["1", "2"]
    assert set(md["versions"]["1"]) == {"created_time", "deletion_time", "destroyed"}
    assert md["delete_version_after"] == "0s" and md["cas_required"] is False


def test_kv2_delete_undelete_destroy(vault):
    c = root(vault)
    c.secrets.kv.v2.create_or_update_secret("del/x", {"k": "v1"}, mount_point="secret")
    c.secrets.kv.v2.create_or_update_secret("del/x", {"k": "v2"}, mount_point="secret")
    c.secrets.kv.v2.delete_latest_version_of_secret("del/x", mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidPath):
        c.secrets.kv.v2.read_secret_version("del/x", mount_point="secret")
    # A deleted version is a 404 that still carries the envelope and the metadata.
    status, body, _ = vault.request("GET", "/v1/secret/data/del/x")
    assert status == 404 and list(body) == ENVELOPE_KEYS
    assert body["data"]["data"] is None
    assert RFC3339_NANO.match(body["data"]["metadata"]["deletion_time"])
    assert c.secrets.kv.v2.read_secret_version("del/x", version=1,
                                               mount_point="secret")["data"]["data"] == {"k": "v1"}
    c.secrets.kv.v2.undelete_secret_versions("del/x", [2], mount_point="secret")
    assert c.secrets.kv.v2.read_secret_version("del/x", mount_point="secret")["data"]["data"] \
        == {"k": "v2"}
    c.secrets.kv.v2.destroy_secret_versions("del/x", [2], mount_point="secret")
    status, body, _ = vault.request("GET", "/v1/secret/data/del/x")
    assert status == 404 and body["data"]["metadata"]["destroyed"] is True
    assert body["data"]["data"] is None
    c.secrets.kv.v2.delete_metadata_and_all_versions("del/x", mount_point="secret")
    status, body, _ = vault.request("GET", "/v1/secret/metadata/del/x")
    assert status == 404 and body == {"errors": []}


def test_kv2_check_and_set(vault):
    c = root(vault)
    c.secrets.kv.v2.create_or_update_secret("cas/x", {"a": "1"}, mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        c.secrets.kv.v2.create_or_update_secret("cas/x", {"a": "2"}, cas=0,
                                                mount_point="secret")
    assert e.value.errors == ["check-and-set parameter did not match the current version"]
    assert c.secrets.kv.v2.create_or_update_secret("cas/x", {"a": "2"}, cas=1,
                                                   mount_point="secret")["data"]["version"] == 2


def test_kv2_rotation_through_the_fixture_is_what_hvac_reads(vault):
    v1 = vault.kv_put("secret", "rot/db", {"password": "before"})
    v2 = vault.kv_put("secret", "rot/db", {"password": "after"})
    assert v2 == v1 + 1
    got = root(vault).secrets.kv.v2.read_secret_version("rot/db", mount_point="secret")
    assert got["data"]["data"] == {"password": "after"}
    assert vault.kv_get("secret", "rot/db", version=v1) == {"password": "before"}
    vault.kv_delete("secret", "rot/db")
    assert vault.kv_get("secret", "rot/db") is None


def test_v1_style_path_on_a_v2_mount_is_404_with_warning(vault):
    status, body, _ = vault.request("GET", "/v1/secret/app/db")
    assert status == 404 and body["data"] is None
    assert "versioned K/V" in body["warnings"][0]


# -- KV v1 --

def test_kv1_read_write_list_delete(vault):
    c = root(vault)
    c.secrets.kv.v1.create_or_update_secret("v1app/token", {"token": "t1"}, mount_point="kv")
    c.secrets.kv.v1.create_or_update_secret("v1app/ttl", {"x": "y", "ttl": "1h"},
                                            mount_point="kv")
    got = c.secrets.kv.v1.read_secret("v1app/token", mount_point="kv")
    assert list(got) == ENVELOPE_KEYS
    assert got["data"] == {"token": "t1"} and got["lease_duration"] == 2764800
    assert c.secrets.kv.v1.read_secret("v1app/ttl", mount_point="kv")["lease_duration"] == 3600
    assert c.secrets.kv.v1.list_secrets("v1app", mount_point="kv")["data"]["keys"] == \
        ["token", "ttl"]
    assert vault.kv_put("kv", "v1app/token", {"token": "t2"}) is None
    assert vault.kv_get("kv", "v1app/token") == {"token": "t2"}
    c.secrets.kv.v1.delete_secret("v1app/token", mount_point="kv")
    with pytest.raises(hvac.exceptions.InvalidPath):
        c.secrets.kv.v1.read_secret("v1app/token", mount_point="kv")


def test_mount_version_detection(vault):
    status, body, _ = vault.request("GET", "/v1/sys/internal/ui/mounts/secret")
    assert status == 200 and body["data"]["options"]["version"] == "2"
    assert body["data"]["type"] == "kv"
    assert vault.mount_version("kv") == 1


# -- tokens and routing --

def test_bad_missing_or_bearer_token(vault):
    vault.kv_put("secret", "tok/x", {"a": "b"})
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        client(vault, token="hvs.notarealtoken000000000").secrets.kv.v2.read_secret_version(
            "tok/x", mount_point="secret")
    assert e.value.errors == ["permission denied", "invalid token"]
    status, body, headers = vault.request("GET", "/v1/secret/data/tok/x", token="")
    assert status == 403 and body == {"errors": ["permission denied"]}
    assert headers.get("Cache-Control") == "no-store"
    status, body, _ = vault.request("GET", "/v1/secret/data/tok/x", token="",
                                    headers={"Authorization": "Bearer " + vault.root_token})
    assert status == 200 and body["data"]["data"] == {"a": "b"}


def test_unknown_mount(vault):
    status, body, _ = vault.request("GET", "/v1/nomount/data/x")
    assert status == 404 and "no handler for route" in body["errors"][0]
    token = client(vault).auth.cert.login(cert_pem=vault.client_cert,
                                          key_pem=vault.client_key)["auth"]["client_token"]
    status, body, _ = vault.request("GET", "/v1/nomount/data/x", token=token)
    assert status == 403 and body == {"errors": ["permission denied"]}


def test_lookup_self_and_renew_self(vault):
    c = client(vault)
    login = c.auth.approle.login(role_id="role-id-1234", secret_id="secret-id-5678")
    look = c.auth.token.lookup_self()
    assert list(look) == ENVELOPE_KEYS and look["mount_type"] == "token"
    d = look["data"]
    assert d["id"] == login["auth"]["client_token"] and d["accessor"] == login["auth"]["accessor"]
    assert 0 < d["ttl"] <= d["creation_ttl"] == login["auth"]["lease_duration"]
    assert RFC3339_NANO.match(d["expire_time"]) and d["path"] == "auth/approle/login"
    assert d["policies"] == ["default", "secretsfs"]
    renewed = c.auth.token.renew_self(increment="30m")
    assert renewed["auth"]["client_token"] == d["id"]
    assert renewed["auth"]["lease_duration"] == 1800 and renewed["auth"]["renewable"] is True
    root_look = root(vault).auth.token.lookup_self()["data"]
    assert root_look["policies"] == ["root"] and root_look["expire_time"] is None


@pytest.fixture
def short_vault(tmp_path, pki):
    v = VaultFake.start(tmp_path / "short", pki, quiet=True, token_ttl=2, token_max_ttl=5)
    yield v
    v.stop()


def test_token_expiry_renewal_and_max_ttl(short_vault):
    v = short_vault
    v.kv_put("secret", "exp/x", {"a": "b"})
    a, b = client(v), client(v)
    t0 = time.monotonic()
    assert a.auth.cert.login(cert_pem=v.client_cert, key_pem=v.client_key)["auth"][
        "lease_duration"] == 2
    b.auth.cert.login(cert_pem=v.client_cert, key_pem=v.client_key)
    time.sleep(max(0, t0 + 1.0 - time.monotonic()))
    assert a.auth.token.renew_self()["auth"]["lease_duration"] == 2
    time.sleep(max(0, t0 + 2.5 - time.monotonic()))
    with pytest.raises(hvac.exceptions.Forbidden):      # b expired at t0+2
        b.secrets.kv.v2.read_secret_version("exp/x", mount_point="secret")
    with pytest.raises(hvac.exceptions.Forbidden):      # and cannot renew itself back
        b.auth.token.renew_self()
    # Logging in again works although hvac still sends the dead token (Vault ignores a
    # bad current token on login paths), and the new token reads.
    b.auth.cert.login(cert_pem=v.client_cert, key_pem=v.client_key)
    assert b.secrets.kv.v2.read_secret_version("exp/x", mount_point="secret")
    assert a.secrets.kv.v2.read_secret_version("exp/x", mount_point="secret")["data"]["data"] \
        == {"a": "b"}                                   # a was renewed until t0+3
    capped = a.auth.token.renew_self(increment=3600)    # max TTL: t0+5
    assert 1 <= capped["auth"]["lease_duration"] <= 3
    assert capped["warnings"] and "max_ttl" in capped["warnings"][0]
    time.sleep(max(0, t0 + 5.4 - time.monotonic()))
    with pytest.raises(hvac.exceptions.Forbidden):
        a.auth.token.lookup_self()
    stats = v.stats()
    assert stats["renewals"] == 2 and stats["logins"]["cert"] == 3


def test_revoke_tokens(vault):
    c = client(vault)
    c.auth.kubernetes.login(role="secretsfs", jwt="jwt-good-1")
    assert c.auth.token.lookup_self()["data"]["path"] == "auth/kubernetes/login"
    assert vault.revoke_tokens() >= 1
    with pytest.raises(hvac.exceptions.Forbidden):
        c.auth.token.lookup_self()
    assert root(vault).auth.token.lookup_self()["data"]["policies"] == ["root"]


# -- auth methods --

def test_cert_login(vault):
    c = client(vault)
    resp = c.auth.cert.login(cert_pem=vault.client_cert, key_pem=vault.client_key)
    assert list(resp) == ENVELOPE_KEYS and resp["mount_type"] == "cert"
    auth = resp["auth"]
    assert re.fullmatch(r"hvs\.[A-Za-z0-9]{24}", auth["client_token"])
    assert auth["renewable"] is True and auth["lease_duration"] == 3600
    assert auth["metadata"]["common_name"] == "secretsfs-client"
    assert auth["token_type"] == "service" and "default" in auth["policies"]
    assert c.token == auth["client_token"] and c.is_authenticated()
    vault.kv_put("secret", "cert/x", {"a": "b"})
    assert c.secrets.kv.v2.read_secret_version("cert/x", mount_point="secret")["data"]["data"] \
        == {"a": "b"}


def test_cert_login_role_constraints(vault, pki):
    vault.configure(cert={"exact": {"certificate_file": pki.ca,
                                    "allowed_common_names": ["secretsfs-client"],
                                    "policies": ["exact"]},
                          "glob": {"certificate_file": pki.ca,
                                   "allowed_common_names": ["secretsfs-client?"],
                                   "policies": ["glob"]}})
    c1 = client(vault)
    assert "exact" in c1.auth.cert.login(name="exact", cert_pem=pki.client_cert,
                                         key_pem=pki.client_key)["auth"]["policies"]
    c2 = client(vault, cert=pki.client2_cert, key=pki.client2_key)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        c2.auth.cert.login(name="exact", cert_pem=pki.client2_cert, key_pem=pki.client2_key)
    assert e.value.errors == ["invalid certificate or no client certificate supplied"]
    # Without a name every role is tried: client2 matches the glob role.
    assert "glob" in c2.auth.cert.login(cert_pem=pki.client2_cert,
                                        key_pem=pki.client2_key)["auth"]["policies"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        c1.auth.cert.login(name="no-such-role", cert_pem=pki.client_cert,
                           key_pem=pki.client_key)
    assert vault.stats()["login_failures"]["cert"] >= 2


def test_cert_login_role_must_match_the_issuing_ca(tmp_path, pki):
    bundle = tmp_path / "both-cas.pem"
    bundle.write_text(open(pki.ca).read() + open(pki.other_ca).read())
    cfg = {"cert": {"main": {"certificate_file": pki.ca, "policies": ["main"]}}}
    with VaultFake.start(tmp_path / "v", pki, quiet=True, client_ca=bundle, config=cfg) as v:
        other = client(v, cert=pki.client_otherca_cert, key=pki.client_otherca_key)
        # The handshake accepts the other CA (it is in the bundle), the role does not.
        assert other.sys.read_health_status(method="GET")["sealed"] is False
        with pytest.raises(hvac.exceptions.InvalidRequest):
            other.auth.cert.login(cert_pem=pki.client_otherca_cert,
                                  key_pem=pki.client_otherca_key)
        assert "main" in client(v).auth.cert.login(cert_pem=pki.client_cert,
                                                   key_pem=pki.client_key)["auth"]["policies"]
        v.configure(cert={"other": {"certificate_file": pki.other_ca, "policies": ["o"]}})
        assert "o" in other.auth.cert.login(cert_pem=pki.client_otherca_cert,
                                            key_pem=pki.client_otherca_key)["auth"]["policies"]


def test_approle_login(vault):
    c = client(vault)
    resp = c.auth.approle.login(role_id="role-id-1234", secret_id="secret-id-5678")
    assert resp["mount_type"] == "approle" and resp["auth"]["metadata"] == {"role_name": "broker"}
    assert c.is_authenticated()
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        client(vault).auth.approle.login(role_id="role-id-1234", secret_id="wrong")
    assert e.value.errors == ["invalid role or secret ID"]
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        client(vault).auth.approle.login(role_id="unknown", secret_id="secret-id-5678")
    assert e.value.errors == ["invalid role or secret ID"]
    status, body, _ = vault.request("POST", "/v1/auth/approle/login",
                                    {"role_id": "role-id-1234"}, token="")
    assert status == 400 and body == {"errors": ["missing secret_id"]}


def test_kubernetes_login(vault):
    c = client(vault)
    resp = c.auth.kubernetes.login(role="secretsfs", jwt="jwt-good-1")
    meta = resp["auth"]["metadata"]
    assert meta["role"] == "secretsfs" and meta["service_account_namespace"] == "kube-system"
    assert "secretsfs" in resp["auth"]["policies"] and c.is_authenticated()
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        client(vault).auth.kubernetes.login(role="secretsfs", jwt="jwt-forged")
    assert e.value.errors == ["permission denied"]
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        client(vault).auth.kubernetes.login(role="nope", jwt="jwt-good-1")
    assert e.value.errors == ['invalid role name "nope"']
    for body, msg in (({"jwt": "jwt-good-1"}, "missing role"), ({"role": "secretsfs"},
                                                                 "missing jwt")):
        status, answer, _ = vault.request("POST", "/v1/auth/kubernetes/login", body, token="")
        assert status == 400 and answer == {"errors": [msg]}


# -- health, seal, namespaces --

def test_health(vault):
    h = client(vault).sys.read_health_status(method="GET")
    assert h["initialized"] is True and h["sealed"] is False and h["standby"] is False
    assert abs(h["server_time_utc"] - time.time()) < 60 and h["version"]
    head = client(vault).sys.read_health_status(method="HEAD")
    assert head.status_code == 200 and head.content == b""


def test_sealed(vault):
    vault.kv_put("secret", "seal/x", {"a": "b"})
    assert vault.faults(sealed=True)["sealed"] is True
    with pytest.raises(hvac.exceptions.VaultDown) as e:
        root(vault).secrets.kv.v2.read_secret_version("seal/x", mount_point="secret")
    assert e.value.errors == ["Vault is sealed"]
    with pytest.raises(hvac.exceptions.VaultDown):
        client(vault).auth.cert.login(cert_pem=vault.client_cert, key_pem=vault.client_key)
    h = client(vault).sys.read_health_status(method="GET")
    assert h.status_code == 503 and h.json()["sealed"] is True
    # What the Go client does: every *code as 299 so that all states parse.
    status, body, _ = vault.request("GET", "/v1/sys/health?sealedcode=299&activecode=299")
    assert status == 299 and body["sealed"] is True
    vault.faults(sealed=False)
    assert root(vault).secrets.kv.v2.read_secret_version(
        "seal/x", mount_point="secret")["data"]["data"] == {"a": "b"}


def test_namespaces_are_separate_stores(vault):
    a = root(vault, namespace="team-a")
    a.secrets.kv.v2.create_or_update_secret("ns/x", {"who": "a"}, mount_point="secret")
    vault.kv_put("secret", "ns/x", {"who": "b"}, namespace="team-b/")
    assert a.secrets.kv.v2.read_secret_version("ns/x", mount_point="secret")["data"]["data"] \
        == {"who": "a"}
    assert vault.kv_get("secret", "ns/x", namespace="team-b") == {"who": "b"}
    with pytest.raises(hvac.exceptions.InvalidPath):
        root(vault).secrets.kv.v2.read_secret_version("ns/x", mount_point="secret")
    stats = vault.stats()
    assert stats["kv_reads"]["team-a/secret/data/ns/x"] >= 1
    assert any(r["namespace"] == "team-a" for r in stats["recent"])


# -- faults and statistics --

def test_status_faults_are_scoped_and_counted(vault):
    vault.kv_put("secret", "f/x", {"a": "b"})
    vault.kv_put("secret", "f/y", {"a": "c"})
    c = root(vault)
    vault.faults(status_once={"code": 429, "prefix": "/v1/secret/data/f/x"})
    with pytest.raises(hvac.exceptions.RateLimitExceeded) as e:
        c.secrets.kv.v2.read_secret_version("f/x", mount_point="secret")
    assert e.value.errors == ["rate limit quota exceeded"]
    assert c.secrets.kv.v2.read_secret_version("f/x", mount_point="secret")["data"]["data"] \
        == {"a": "b"}
    vault.faults(status_n={"code": 500, "count": 2, "prefix": "/v1/secret/data/f/x"})
    assert c.secrets.kv.v2.read_secret_version("f/y", mount_point="secret")  # out of scope
    for _ in range(2):
        with pytest.raises(hvac.exceptions.InternalServerError):
            c.secrets.kv.v2.read_secret_version("f/x", mount_point="secret")
    assert c.secrets.kv.v2.read_secret_version("f/x", mount_point="secret")
    assert vault.faults()["faults"] == []
    faults = vault.stats()["faults"]
    assert faults["status:429"] >= 1 and faults["status:500"] >= 2


def test_drop_fault_closes_without_answer(vault):
    vault.kv_put("secret", "f/drop", {"a": "b"})
    vault.faults(drop={"count": 1, "prefix": "/v1/secret/data/f/drop"})
    with pytest.raises(requests.exceptions.ConnectionError):
        root(vault).secrets.kv.v2.read_secret_version("f/drop", mount_point="secret")
    assert root(vault).secrets.kv.v2.read_secret_version("f/drop", mount_point="secret")


def test_malformed_and_oversized_faults(vault):
    vault.faults(malformed={"count": 1, "prefix": "/v1/secret/data/f/bad"})
    resp = root(vault).secrets.kv.v2.read_secret_version("f/bad", mount_point="secret")
    # hvac's JSON adapter hands back the raw response when a 200 is not JSON.
    assert isinstance(resp, requests.Response) and resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()
    size = 3 * 1024 * 1024
    vault.faults(oversized={"bytes": size, "count": 1, "prefix": "/v1/secret/data/f/big"})
    resp = requests.get(vault.addr + "/v1/secret/data/f/big", verify=vault.ca,
                        cert=(vault.client_cert, vault.client_key),
                        headers={"X-Vault-Token": vault.root_token}, timeout=30)
    assert resp.status_code == 200 and len(resp.content) == size
    assert int(resp.headers["Content-Length"]) == size
    assert len(resp.json()["data"]["data"]["pad"]) > size - 1024


def test_slow_fault(vault):
    vault.faults(slow={"seconds": 0.6, "prefix": "/v1/sys/health"})
    t = time.monotonic()
    assert client(vault).sys.read_health_status(method="GET")["sealed"] is False
    assert time.monotonic() - t >= 0.6
    vault.faults(slow=None)
    t = time.monotonic()
    client(vault).sys.read_health_status(method="GET")
    assert time.monotonic() - t < 0.5


def test_reset_fault_cuts_the_body_after_the_headers(vault):
    vault.kv_put("secret", "f/reset", {"a": "b"})
    vault.faults(reset={"count": 1, "prefix": "/v1/secret/data/f/reset"})
    with pytest.raises(requests.exceptions.RequestException):
        resp = requests.get(vault.addr + "/v1/secret/data/f/reset", verify=vault.ca,
                            cert=(vault.client_cert, vault.client_key),
                            headers={"X-Vault-Token": vault.root_token}, timeout=10)
        resp.json()
    assert vault.stats()["faults"]["reset"] == 1
    assert root(vault).secrets.kv.v2.read_secret_version("f/reset", mount_point="secret")


def test_handshake_fault_closes_new_connections(vault):
    before = vault.stats()["handshake_failures"].get("injected", 0)
    vault.faults(handshake={"count": 2})
    for _ in range(2):
        with pytest.raises((ssl.SSLError, OSError)):
            with socket.create_connection(("127.0.0.1", vault.port), timeout=5) as s:
                vault.ssl_context().wrap_socket(s, server_hostname="127.0.0.1")
    assert vault.stats()["handshake_failures"]["injected"] == before + 2
    assert vault.faults()["faults"] == []
    assert vault.health()[0] == 200


def test_rate_applies_a_fault_to_a_share_of_requests(vault):
    vault.reset_stats()
    vault.faults(status={"code": 500, "rate": 0.3, "prefix": "/v1/sys/health"})
    codes = [vault.health()[0] for _ in range(200)]
    vault.faults(status=None)
    # Binomial(200, 0.3): mean 60, sd 6.5; the bounds are 5 sd wide.
    assert 25 <= codes.count(500) <= 95, codes.count(500)
    assert codes.count(500) + codes.count(200) == 200
    assert vault.stats()["faults"]["status:500"] == codes.count(500)
    status, body, _ = vault.request("POST", "/_fake/faults", {"drop": {"rate": 2}})
    assert status == 400


def test_stats_count_reads_logins_and_connections(vault):
    vault.kv_put("secret", "st/x", {"a": "b"})
    vault.reset_stats()
    c = client(vault)
    c.auth.cert.login(cert_pem=vault.client_cert, key_pem=vault.client_key)
    for _ in range(3):
        c.secrets.kv.v2.read_secret_version("st/x", mount_point="secret")
    c.auth.token.renew_self()
    s = vault.stats()
    assert s["kv_reads"] == {"secret/data/st/x": 3}
    assert s["logins"] == {"cert": 1} and s["renewals"] == 1
    assert s["by_path"]["GET /v1/secret/data/st/x"] == 3
    assert s["status"] == {"200": 5}
    assert s["recent"][-1]["x_vault_request"] is True   # hvac sends X-Vault-Request
    assert s["connections"] <= 2                         # hvac reuses its connection
    vault.reset_stats()
    assert vault.stats()["kv_reads"] == {}


def test_control_routes_need_the_root_token(vault):
    status, body, _ = vault.request("GET", "/_fake/stats", token="hvs.wrong")
    assert status == 403 and body == {"errors": ["permission denied"]}
    status, body, _ = vault.request("POST", "/_fake/faults", {"bogus": 1})
    assert status == 400


def test_restart_keeps_port_secrets_and_tokens(tmp_path, pki):
    v = VaultFake.start(tmp_path / "r", pki, quiet=True)
    try:
        v.kv_put("secret", "keep/x", {"a": "b"})
        c = client(v)
        c.auth.cert.login(cert_pem=v.client_cert, key_pem=v.client_key)
        port, pid = v.port, v.pid
        v.restart()
        assert v.port == port and v.pid != pid and v.running
        assert c.secrets.kv.v2.read_secret_version("keep/x", mount_point="secret")[
            "data"]["data"] == {"a": "b"}
        assert v.stats()["kv_reads"] == {"secret/data/keep/x": 1}
    finally:
        v.stop()
    assert not v.running
    with pytest.raises(requests.exceptions.ConnectionError):
        client(v).sys.read_health_status(method="GET")


def test_log_has_no_secret_values(tmp_path, pki):
    with VaultFake.start(tmp_path / "l", pki) as v:
        v.kv_put("secret", "log/x", {"password": "do-not-log-me-4711"})
        assert v.kv_get("secret", "log/x") == {"password": "do-not-log-me-4711"}
        status, _, _ = v.request("POST", "/v1/auth/approle/login",
                                 {"role_id": "r", "secret_id": "also-secret-0815"}, token="")
        assert status == 400
    log = open(v.log_path).read()
    assert "POST /v1/secret/data/log/x 200" in log
    for secret in ("do-not-log-me-4711", "also-secret-0815", v.root_token):
        assert secret not in log


# -- the answers' shape against the reference examples --

REFERENCE = SHARED / "reference" / "api-examples" / "vault"
# The HTTPAuth fields of reference A1; the doc samples show only some of them.
HTTPAUTH_KEYS = {"client_token", "accessor", "policies", "token_policies", "identity_policies",
                 "metadata", "lease_duration", "renewable", "entity_id", "token_type", "orphan",
                 "mfa_requirement", "num_uses"}


def json_type(v):
    if v is None:
        return "null"
    for t, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                    (list, "array"), (dict, "object")):
        if isinstance(v, t):
            return name
    raise TypeError(type(v))


def shape_diff(ref, got, path="", extra_ok=None):
    """Where got's structure (keys, recursively, and JSON types) differs from ref's. The
    doc samples abbreviate the envelope and the auth block: there, and only there, got may
    carry more keys, and only the fields reference A1 names (extra_ok: path -> keys)."""
    extra_ok = extra_ok or {}
    if json_type(ref) != json_type(got):
        return ["%s: %s in the reference, %s from the fake" % (path or "/", json_type(ref),
                                                             json_type(got))]
    out = []
    if isinstance(ref, dict):
        for k in sorted(set(ref) - set(got)):
            out.append("%s/%s: missing from the fake" % (path, k))
        for k in sorted(set(got) - set(ref) - set(extra_ok.get(path, ()))):
            out.append("%s/%s: not in the reference" % (path, k))
        for k in sorted(set(ref) & set(got)):
            out += shape_diff(ref[k], got[k], "%s/%s" % (path, k), extra_ok)
    elif isinstance(ref, list):
        for i, item in enumerate(got):
            out += shape_diff(ref[0], item, "%s[%d]" % (path, i), extra_ok) if ref else []
    return out


def reference(name):
    need(REFERENCE.is_dir(), "the reference examples are not at %s (the repo is checked out "
         "next to shared/)" % REFERENCE)
    with open(REFERENCE / name) as f:
        return json.load(f)


def test_answers_have_the_reference_examples_shape(vault):
    envelope = {"": ENVELOPE_KEYS}
    # The examples' own data, so that data (a secret's keys) compares exactly too.
    assert vault.kv_put("secret", "shape/doc", {"foo": "bar"}) == 1
    assert vault.kv_put("secret", "shape/doc", {"foo": "bar"}) == 2
    vault.request("POST", "/v1/secret/metadata/shape/doc",
                  {"custom_metadata": {"owner": "jdoe", "mission_critical": "false"}})
    vault.kv_put("secret", "shape/list/foo", {"a": "b"})
    vault.kv_put("secret", "shape/list/foo/bar", {"a": "b"})
    vault.kv_put("kv", "shape/doc", {"foo": "bar", "ttl": "1h"})
    vault.kv_put("kv", "shape/list/foo", {"a": "b"})
    vault.kv_put("kv", "shape/list/foo/bar", {"a": "b"})
    cases = [
        ("kv-v2-read-secret-version.response.json", "GET", "/v1/secret/data/shape/doc", None),
        ("kv-v1-read-secret.response.json", "GET", "/v1/kv/shape/doc", None),
        ("kv-v2-list-secrets.response.json", "LIST", "/v1/secret/metadata/shape/list", None),
        ("kv-v1-list-secrets.response.json", "GET", "/v1/kv/shape/list?list=true", None),
        ("auth-cert-login.response.json", "POST", "/v1/auth/cert/login",
         reference("auth-cert-login.request.json")),
    ]
    vault.configure(cert={"cert1": {"certificate_file": vault.pki.ca, "policies": ["web"]}})
    for name, method, path, body in cases:
        status, got, _ = vault.request(method, path, body,
                                       token="" if "login" in path else None)
        assert status == 200, (name, status, got)
        assert list(got) == ENVELOPE_KEYS, name
        extra = dict(envelope, **({"/auth": HTTPAUTH_KEYS} if "login" in path else {}))
        assert shape_diff(reference(name), got, extra_ok=extra) == [], name
    # Values the examples pin down, beyond shape.
    _, kv1, _ = vault.request("GET", "/v1/kv/shape/doc")
    assert kv1["lease_duration"] == reference("kv-v1-read-secret.response.json")["lease_duration"]
    _, lst, _ = vault.request("LIST", "/v1/secret/metadata/shape/list")
    assert lst["data"]["keys"] == reference("kv-v2-list-secrets.response.json")["data"]["keys"]
    _, v2, _ = vault.request("GET", "/v1/secret/data/shape/doc")
    assert v2["data"]["metadata"]["custom_metadata"] == \
        reference("kv-v2-read-secret-version.response.json")["data"]["metadata"]["custom_metadata"]


def test_shape_diff_sees_a_difference():
    """The comparison above can fail: a changed type, a missing or an extra key."""
    ref = {"data": {"data": {"foo": "bar"}, "metadata": {"version": 2, "destroyed": False}}}
    assert shape_diff(ref, ref) == []
    bad = {"data": {"data": {"foo": "bar"}, "metadata": {"version": "2", "destroyed": False}}}
    assert shape_diff(ref, bad) == ["/data/metadata/version: integer in the reference, "
                                    "string from the fake"]
    assert shape_diff(ref, {"data": {"data": {"foo": "bar"}, "metadata": {"version": 2}}}) \
        == ["/data/metadata/destroyed: missing from the fake"]
    assert shape_diff(ref, dict(ref, auth=None)) == ["/auth: not in the reference"]
    assert shape_diff(ref, dict(ref, auth=None), extra_ok={"": ["auth"]}) == []
    assert shape_diff({"k": ["a"]}, {"k": ["a", 1]}) == \
        ["/k[1]: string in the reference, integer from the fake"]


# -- ACL deny list, standby, old TLS versions --

def test_denied_path_is_vaults_permission_denied(vault):
    tok = client(vault).auth.cert.login(cert_pem=vault.client_cert,
                                        key_pem=vault.client_key)["auth"]["client_token"]
    vault.kv_put("secret", "acl/no", {"a": "b"})
    vault.kv_put("secret", "acl/yes", {"a": "b"})
    vault.configure(deny=["secret/data/acl/no*"])
    c = client(vault, token=tok)
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        c.secrets.kv.v2.read_secret_version("acl/no", mount_point="secret")
    assert e.value.errors == ["1 error occurred:\n\t* permission denied\n\n"]
    assert c.secrets.kv.v2.read_secret_version("acl/yes", mount_point="secret")["data"]["data"] \
        == {"a": "b"}
    # Root is above policies; the deny list is per namespace-relative path.
    assert vault.kv_get("secret", "acl/no") == {"a": "b"}
    st = vault.stats()
    assert st["acl_denied"] == {"secret/data/acl/no": 1}
    with pytest.raises(VaultFakeError) as e:
        vault.configure(deny="secret/*")
    assert e.value.status == 400


def test_standby_modes(vault):
    vault.kv_put("secret", "sb/x", {"a": "b"})
    vault.faults(standby={"mode": "redirect", "active": "https://10.0.0.7:8200"})
    h = client(vault).sys.read_health_status(method="GET")
    assert h.status_code == 429 and h.json()["standby"] is True and h.json()["sealed"] is False
    status, body, _ = vault.request("GET", "/v1/sys/health?standbyok=true")
    assert status == 200 and body["standby"] is True
    status, _, _ = vault.request("GET", "/v1/sys/health?standbycode=299")
    assert status == 299

    def unfollowed(path, **headers):
        return requests.get(vault.addr + path, allow_redirects=False,
                            headers=dict(headers, **{"X-Vault-Token": vault.root_token}),
                            verify=vault.ca, cert=(vault.client_cert, vault.client_key),
                            timeout=10)
    # Redirect: 307, no body, Location = the active node + the same path and query.
    r = unfollowed("/v1/secret/data/sb/x?version=1")
    assert r.status_code == 307 and r.content == b""
    assert r.headers["Location"] == "https://10.0.0.7:8200/v1/secret/data/sb/x?version=1"
    # Forward: served as the active node serves it, unless the client refuses forwarding.
    vault.faults(standby={"mode": "forward", "active": "https://10.0.0.7:8200"})
    assert vault.kv_get("secret", "sb/x") == {"a": "b"}
    r = unfollowed("/v1/secret/data/sb/x", **{"X-Vault-No-Request-Forwarding": "true"})
    assert r.status_code == 307
    assert r.headers["Location"] == "https://10.0.0.7:8200/v1/secret/data/sb/x"
    vault.faults(standby="no_leader")
    status, body, _ = vault.request("GET", "/v1/secret/data/sb/x")
    assert status == 503 and body == {"errors": ["no active Vault instance found"]}
    assert vault.stats()["standby"] == {"redirect": 1, "forward": 1, "no_leader": 1}
    assert vault.faults(standby=False)["standby"] is None
    assert vault.kv_get("secret", "sb/x") == {"a": "b"}


def test_tls_max_offers_only_old_versions(tmp_path, pki):
    with VaultFake.start(tmp_path / "v", pki, quiet=True, tls_max="1.1") as old:
        ctx = ssl.create_default_context(cafile=pki.ca)
        ctx.load_cert_chain(pki.client_cert, pki.client_key)
        with pytest.raises(ssl.SSLError):
            with socket.create_connection(("127.0.0.1", old.port), timeout=10) as sock:
                ctx.wrap_socket(sock, server_hostname="127.0.0.1").close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with socket.create_connection(("127.0.0.1", old.port), timeout=10) as sock:
            with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                assert tls.version() == "TLSv1.1"


# -- strict rules (issue 16): dead tokens, AppRole limits and lockout, ui/mounts, list, HA --

DEAD = ["permission denied", "invalid token"]


def approle_token(vault, role_id="role-id-1234", secret_id="secret-id-5678"):
    return client(vault).auth.approle.login(role_id=role_id,
                                            secret_id=secret_id)["auth"]["client_token"]


def test_dead_tokens_say_invalid_token_a_missing_capability_does_not(vault):
    vault.kv_put("secret", "dead/x", {"a": "b"})
    # unknown
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        client(vault, token="hvs.AAAAAAAAAAAAAAAAAAAAAAAA").auth.token.lookup_self()
    assert e.value.errors == DEAD
    # revoked by revoke-self: 204, then the token is dead everywhere
    tok = approle_token(vault)
    r = requests.post(vault.addr + "/v1/auth/token/revoke-self",
                      headers={"X-Vault-Token": tok}, verify=vault.ca,
                      cert=(vault.client_cert, vault.client_key), timeout=10)
    assert r.status_code == 204 and r.content == b""
    c = client(vault, token=tok)
    for call in (c.auth.token.lookup_self, c.auth.token.renew_self,
                 lambda: c.secrets.kv.v2.read_secret_version("dead/x", mount_point="secret")):
        with pytest.raises(hvac.exceptions.Forbidden) as e:
            call()
        assert e.value.errors == DEAD
    # expired
    vault.configure(token_ttl=1)
    tok = approle_token(vault)
    time.sleep(1.2)
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        client(vault, token=tok).secrets.kv.v2.read_secret_version("dead/x",
                                                                    mount_point="secret")
    assert e.value.errors == DEAD
    # no token at all: permission denied alone
    status, body, _ = vault.request("GET", "/v1/secret/data/dead/x", token="")
    assert status == 403 and body == {"errors": ["permission denied"]}
    # a live token without the capability: permission denied only, never "invalid token"
    vault.configure(token_ttl=3600, deny=["secret/data/dead/*"])
    live = client(vault, token=approle_token(vault))
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        live.secrets.kv.v2.read_secret_version("dead/x", mount_point="secret")
    assert e.value.errors == ["1 error occurred:\n\t* permission denied\n\n"]
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        live.read("nomount/x")
    assert e.value.errors == ["permission denied"]
    assert live.auth.token.lookup_self()["data"]["path"] == "auth/approle/login"
    assert vault.stats()["invalid_token"] >= 5


def test_legacy_token_errors_say_permission_denied_alone(vault):
    vault.reset_stats()
    vault.configure(token_errors="legacy", deny=["secret/data/legacy/*"])
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        client(vault, token="hvs.AAAAAAAAAAAAAAAAAAAAAAAA").auth.token.lookup_self()
    assert e.value.errors == ["permission denied"]
    tok = approle_token(vault)
    client(vault, token=tok).auth.token.revoke_self()
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        client(vault, token=tok).auth.token.renew_self()
    assert e.value.errors == ["permission denied"]
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        client(vault, token=approle_token(vault)).secrets.kv.v2.read_secret_version(
            "legacy/x", mount_point="secret")
    assert e.value.errors == ["1 error occurred:\n\t* permission denied\n\n"]
    assert vault.stats()["invalid_token"] == 0
    vault.configure(token_errors="multierror")
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        client(vault, token="hvs.AAAAAAAAAAAAAAAAAAAAAAAA").auth.token.lookup_self()
    assert e.value.errors == ["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"]


def test_approle_secret_id_num_uses_and_ttl(vault):
    vault.reset_stats()
    vault.configure(approle={"limited": {"role_id": "rid-limited", "secret_id": "sid-3",
                                         "secret_id_num_uses": 3, "policies": ["p"]},
                             "short": {"role_id": "rid-short", "secret_id": "sid-ttl",
                                       "secret_id_ttl": "1s"}})
    for _ in range(3):
        approle_token(vault, "rid-limited", "sid-3")
    assert vault.approle_state()["limited"]["secret_ids"] == [
        {"uses": 3, "remaining": 0, "expired": False}]
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        approle_token(vault, "rid-limited", "sid-3")
    assert e.value.errors == ["invalid role or secret ID"]
    approle_token(vault, "rid-short", "sid-ttl")
    time.sleep(1.1)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        approle_token(vault, "rid-short", "sid-ttl")
    assert e.value.errors == ["invalid role or secret ID"]
    st = vault.stats()
    assert st["secret_id_uses"] == {"limited": 3, "short": 1}
    assert st["secret_ids_exhausted"] == {"limited": 1}
    assert st["secret_ids_expired"] == {"short": 1}
    assert vault.approle_state()["short"]["secret_ids"][0]["expired"] is True


def test_approle_user_lockout(vault):
    vault.reset_stats()
    vault.configure(user_lockout={"threshold": 3, "duration": "2s"})
    # Failures that are not ErrInvalidCredentials do not count: an unknown role_id, a
    # missing secret_id.
    for body in ({"role_id": "role-id-1234"}, {"role_id": "nope", "secret_id": "x"}):
        for _ in range(4):
            status, _, _ = vault.request("POST", "/v1/auth/approle/login", body, token="")
            assert status == 400
    assert vault.approle_state()["broker"]["failures"] == 0
    # Two bad secret IDs, then a good login, clears the count.
    for _ in range(2):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            approle_token(vault, secret_id="wrong")
    approle_token(vault)
    assert vault.approle_state()["broker"]["failures"] == 0
    for _ in range(3):
        with pytest.raises(hvac.exceptions.InvalidRequest) as e:
            approle_token(vault, secret_id="wrong")
        assert e.value.errors == ["invalid role or secret ID"]
    view = vault.approle_state()["broker"]
    assert view["locked"] is True and 0 < view["locked_for"] <= 2
    # Locked: even the right secret_id is refused, 403 permission denied.
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        approle_token(vault)
    assert e.value.errors == ["permission denied"]
    st = vault.stats()
    assert st["lockouts"] == {"broker": 1} and st["locked_refusals"] == {"broker": 1}
    time.sleep(2.1)
    assert approle_token(vault)
    assert vault.approle_state()["broker"]["locked"] is False


def test_approle_user_lockout_defaults_and_disable(vault):
    cfg = vault.configure()["user_lockout"]
    assert cfg == {"threshold": 5, "duration": 900, "counter_reset": 900, "disable": False}
    vault.configure(user_lockout={"disable": True})
    for _ in range(6):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            approle_token(vault, secret_id="wrong")
    assert approle_token(vault)


def ui_mounts(vault, path, token=None):
    c = hvac.Client(url=vault.addr, token=vault.root_token if token is None else token,
                    verify=vault.ca, cert=(vault.client_cert, vault.client_key), timeout=10,
                    adapter=hvac.adapters.RawAdapter)
    r = c.adapter.get("/v1/sys/internal/ui/mounts/" + path, raise_exception=False)
    return r.status_code, r.json()


def test_ui_mounts_answers_for_any_path_inside_a_mount(vault):
    for path, ver in (("secret", "2"), ("secret/data/app/db", "2"),
                      ("secret/metadata/x/", "2"), ("kv/team/a", "1")):
        status, body = ui_mounts(vault, path)
        assert status == 200, path
        d = body["data"]
        assert d["type"] == "kv" and d["options"] == {"version": ver}
        assert d["path"] == path.split("/")[0] + "/"
    status, body = ui_mounts(vault, "auth/approle/login")
    assert status == 200 and body["data"]["type"] == "approle"
    # A token from a login sees it too.
    status, body = ui_mounts(vault, "secret/data/x", token=approle_token(vault))
    assert status == 200 and body["data"]["options"]["version"] == "2"


def test_ui_mounts_refuses_unknown_paths_and_bad_tokens(vault):
    status, body = ui_mounts(vault, "nomount/some/key")
    assert status == 403 and body == {"errors": [
        "preflight capability check returned 403, please ensure client's policies grant "
        'access to path "nomount/some/key/"']}
    for token in ("", "hvs.AAAAAAAAAAAAAAAAAAAAAAAA"):
        status, body, _ = vault.request("GET", "/v1/sys/internal/ui/mounts/secret",
                                        token=token)
        assert status == 403 and body == {"errors": ["permission denied"]}
    vault.configure(deny=["secret/*"])
    status, body = ui_mounts(vault, "secret/data/x", token=approle_token(vault))
    assert status == 403 and "preflight capability check" in body["errors"][0]


def test_list_method_and_list_query(vault):
    vault.kv_put("secret", "lst/a", {"x": "1"})
    vault.kv_put("secret", "lst/sub/b", {"x": "2"})
    vault.kv_put("kv", "lst1/a", {"x": "1"})
    # hvac sends the LIST method
    assert root(vault).secrets.kv.v2.list_secrets("lst", mount_point="secret")[
        "data"]["keys"] == ["a", "sub/"]
    want = {"keys": ["a", "sub/"]}
    for q in ("list=true", "list=1", "list=T"):
        status, body, _ = vault.request("GET", "/v1/secret/metadata/lst?" + q)
        assert status == 200 and body["data"] == want, q
    status, body, _ = vault.request("GET", "/v1/kv/lst1?list=true")
    assert status == 200 and body["data"] == {"keys": ["a"]}
    # list=false is a read (a metadata read of a folder: absent), a bad value a bare 400
    status, body, _ = vault.request("GET", "/v1/secret/metadata/lst?list=false")
    assert status == 404 and body == {"errors": []}
    status, body, _ = vault.request("GET", "/v1/secret/metadata/lst?list=yes")
    assert status == 400 and body == {"errors": []}
    st = vault.stats()
    assert st["by_path"]["LIST /v1/secret/metadata/lst"] == 4
    # hvac's LIST once, GET ?list= three times on secret/, once on kv/
    assert st["list_forms"] == {"method": 1, "query": 4}


def test_batch_tokens_are_not_renewable(vault):
    """A role with token_type batch issues Vault's batch tokens: hvb., not renewable,
    and renew-self refuses them as expiration.go renewAuthEntry does (a 400)."""
    roles = {"batch": {"role_id": "batch-role", "secret_id": "batch-secret",
                       "policies": ["secretsfs"], "token_type": "batch"}}
    vault.configure(approle=roles)
    renewals = vault.stats()["renewals"]
    c = client(vault)
    login = c.auth.approle.login(role_id="batch-role", secret_id="batch-secret")
    auth = login["auth"]
    assert auth["client_token"].startswith("hvb.") and auth["token_type"] == "batch"
    assert auth["renewable"] is False and auth["lease_duration"] > 0
    look = c.auth.token.lookup_self()["data"]
    assert look["type"] == "batch" and look["renewable"] is False
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        c.auth.token.renew_self()
    assert e.value.errors == ["batch tokens cannot be renewed"]
    assert vault.stats()["renewals"] == renewals
    # A service token from the default role still renews.
    vault.configure(approle=APPROLE)
    c = client(vault)
    c.auth.approle.login(role_id="role-id-1234", secret_id="secret-id-5678")
    assert c.auth.token.renew_self()["auth"]["renewable"] is True


@pytest.fixture
def ha(tmp_path, pki):
    v = VaultFake.start(tmp_path / "ha", pki, quiet=True, nodes=2,
                        config={"approle": APPROLE})
    yield v
    v.stop()


def test_ha_sealed_node_and_standby_redirect_to_the_active_node(ha):
    assert len(ha.addrs) == 2 and ha.addrs[0] != ha.addrs[1]
    ha.kv_put("secret", "ha/x", {"a": "b"})
    ha.faults(node=0, sealed=True)
    with pytest.raises(hvac.exceptions.VaultDown) as e:
        root(ha).secrets.kv.v2.read_secret_version("ha/x", mount_point="secret")
    assert e.value.errors == ["Vault is sealed"]
    second = hvac.Client(url=ha.addrs[1], token=ha.root_token, verify=ha.ca,
                         cert=(ha.client_cert, ha.client_key), timeout=10)
    assert second.secrets.kv.v2.read_secret_version("ha/x", mount_point="secret")[
        "data"]["data"] == {"a": "b"}
    # Shared storage: a token from node 1 is valid on node 1 after node 0 unseals too.
    tok = hvac.Client(url=ha.addrs[1], verify=ha.ca, cert=(ha.client_cert, ha.client_key)
                      ).auth.approle.login(role_id="role-id-1234",
                                           secret_id="secret-id-5678")["auth"]["client_token"]
    ha.faults(node=0, sealed=False, standby="redirect")
    view = ha.faults(node=0)["nodes"]
    assert view[0]["standby"]["active"] == ha.addrs[1] and view[1]["standby"] is None
    ha.reset_stats()
    r = requests.get(ha.addrs[0] + "/v1/secret/data/ha/x?version=1", allow_redirects=False,
                     headers={"X-Vault-Token": tok}, verify=ha.ca,
                     cert=(ha.client_cert, ha.client_key), timeout=10)
    assert r.status_code == 307 and r.content == b""
    assert r.headers["Location"] == ha.addrs[1] + "/v1/secret/data/ha/x?version=1"
    r = requests.get(r.headers["Location"], headers={"X-Vault-Token": tok}, verify=ha.ca,
                     cert=(ha.client_cert, ha.client_key), timeout=10)
    assert r.status_code == 200 and r.json()["data"]["data"] == {"a": "b"}
    st = ha.stats()
    assert st["by_node"] == {"0": 1, "1": 1} and st["token_by_node"] == {"0": 1, "1": 1}
    assert [(x["node"], x["status"]) for x in st["recent"]] == [(0, 307), (1, 200)]
    h = requests.get(ha.addrs[0] + "/v1/sys/health", verify=ha.ca,
                     cert=(ha.client_cert, ha.client_key), timeout=10)
    assert h.status_code == 429 and h.json()["standby"] is True


def test_rate_limit_quota_answers_429_with_retry_after(vault):
    vault.kv_put("secret", "rl/x", {"a": "b"})
    vault.faults(rate_limit={"rate": 2, "interval": 3, "prefix": "/v1/secret/"})
    c = root(vault)
    for _ in range(2):
        c.secrets.kv.v2.read_secret_version("rl/x", mount_point="secret")
    with pytest.raises(hvac.exceptions.RateLimitExceeded) as e:
        c.secrets.kv.v2.read_secret_version("rl/x", mount_point="secret")
    assert e.value.errors == ['request path "secret/data/rl/x": rate limit quota exceeded']
    status, body, headers = vault.request("GET", "/v1/secret/data/rl/x")
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 3
    assert headers["X-Ratelimit-Limit"] == "2" and headers["X-Ratelimit-Remaining"] == "0"
    assert vault.health()[0] == 200                     # sys/health is exempt
    assert vault.stats()["rate_limited"] == 2
    vault.faults(rate_limit={"rate": 1, "interval": 60, "retry_after": 2})
    vault.request("GET", "/v1/secret/data/rl/x")
    status, _, headers = vault.request("GET", "/v1/secret/data/rl/x")
    assert status == 429 and headers["Retry-After"] == "2"


# -- Kubernetes TokenReview and the jwt auth method --

import fake_jwt  # noqa: E402

API_AUD = "https://kubernetes.default.svc.cluster.local"


@pytest.fixture(scope="module")
def keys():
    return {"api": fake_jwt.make_key("RS256"), "other": fake_jwt.make_key("RS256"),
            "oidc": fake_jwt.make_key("ES256")}


K8S_STRICT = {"vault": {"bound_service_account_names": ["secretsfs"],
                        "bound_service_account_namespaces": ["kube-system"],
                        "audience": "vault", "policies": ["secretsfs"]}}


def k8s_login(vault, token, role="vault"):
    return client(vault).auth.kubernetes.login(role=role, jwt=token)


def test_kubernetes_token_review_with_vaults_own_reviewer_jwt(vault, keys):
    api_priv, api_pub = keys["api"]
    reviewer = fake_jwt.service_account_token(api_priv, "vault-reviewer", "vault", API_AUD)
    vault.reset_stats()
    vault.configure(kubernetes=K8S_STRICT, kubernetes_config={
        "api_signing_keys": [api_pub], "token_reviewer_jwt": reviewer})
    sa = lambda **kw: fake_jwt.service_account_token(  # noqa: E731
        kw.pop("key", api_priv), kw.pop("name", "secretsfs"), kw.pop("ns", "kube-system"),
        kw.pop("aud", "vault"), **kw)
    meta = k8s_login(vault, sa())["auth"]["metadata"]
    assert meta["service_account_name"] == "secretsfs"
    assert meta["service_account_namespace"] == "kube-system"
    cases = [
        (sa(aud="other"), ["invalid audience (aud) claim: audience claim does not match any "
                           "expected audience"]),
        (sa(name="intruder"), ["service account name not authorized"]),
        (sa(ns="default"), ["namespace not authorized"]),
        (sa(key=keys["other"][0]), ["permission denied"]),      # not the API server's key
        # expired: Vault's own claim check (cap) says so before any TokenReview
        (sa(ttl=-400), ["invalid expiration time (exp) claim: token is expired"]),
        ("not-a-jwt", ["permission denied"]),
    ]
    for token, errors in cases:
        with pytest.raises(hvac.exceptions.Forbidden) as e:
            k8s_login(vault, token)
        assert e.value.errors == errors
    # With Vault's own reviewer, the client's token need not be valid for the API server.
    assert k8s_login(vault, sa(aud=["vault"]))
    # A reviewer JWT the API server refuses breaks every login.
    vault.configure(kubernetes_config={"api_signing_keys": [api_pub], "token_reviewer_jwt":
                                       fake_jwt.service_account_token(
                                           keys["other"][0], "r", "vault", API_AUD)})
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        k8s_login(vault, sa())
    assert e.value.errors == ["permission denied"]
    st = vault.stats()
    assert st["token_reviews"]["reviewer_jwt"] >= 4
    assert st["token_review_failures"] == {"token_not_valid": 1, "reviewer_unauthorized": 1}


def test_kubernetes_token_review_with_the_clients_jwt(vault, keys):
    api_priv, api_pub = keys["api"]
    vault.reset_stats()
    vault.configure(kubernetes=K8S_STRICT, kubernetes_config={"api_signing_keys": [api_pub]})
    # The client's token is the TokenReview bearer: its aud must include the API server's.
    only_vault = fake_jwt.service_account_token(api_priv, "secretsfs", "kube-system", "vault")
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        k8s_login(vault, only_vault)
    assert e.value.errors == ["permission denied"]
    both = fake_jwt.service_account_token(api_priv, "secretsfs", "kube-system",
                                          ["vault", API_AUD])
    assert k8s_login(vault, both)["auth"]["client_token"]
    assert vault.stats()["token_review_failures"] == {"reviewer_unauthorized": 1}
    # pem_keys: Vault checks the signature itself first; a foreign key is "permission denied"
    vault.configure(kubernetes_config={"api_signing_keys": [api_pub], "pem_keys": [api_pub]})
    assert k8s_login(vault, both)
    forged = fake_jwt.service_account_token(keys["other"][0], "secretsfs", "kube-system",
                                            ["vault", API_AUD])
    with pytest.raises(hvac.exceptions.Forbidden) as e:
        k8s_login(vault, forged)
    assert e.value.errors == ["permission denied"]


def test_jwt_login(vault, keys):
    priv, pub = keys["oidc"]
    vault.configure(jwt={"jwt_validation_pubkeys": [pub], "bound_issuer": "https://idp.test",
                         "roles": {"broker": {"bound_audiences": ["vault"],
                                              "bound_subject": "spiffe://pay/secretsfs",
                                              "bound_claims": {"env": ["prod", "dr"]},
                                              "policies": ["secretsfs"]}}})
    now = int(time.time())
    good = {"iss": "https://idp.test", "sub": "spiffe://pay/secretsfs", "aud": "vault",
            "env": "prod", "iat": now, "exp": now + 300}

    def login(claims=None, key=priv, alg="ES256", role="broker", token=None):
        tok = token or fake_jwt.sign(key, claims or good, alg)
        return client(vault).auth.jwt.jwt_login(role=role, jwt=tok)
    resp = login()
    assert resp["mount_type"] == "jwt" and "secretsfs" in resp["auth"]["policies"]
    bad = [
        ({"key": keys["api"][0], "alg": "RS256"},
         "error validating token: error verifying token signature: no known key "
         "successfully validated the token signature"),
        ({"claims": dict(good, aud="other")}, "error validating token: invalid audience "
         "(aud) claim: audience claim does not match any expected audience"),
        ({"claims": dict(good, exp=now - 120)},
         "error validating token: invalid expiration time (exp) claim: token is expired"),
        ({"claims": dict(good, nbf=now + 600, exp=now + 900)},
         "error validating token: invalid not before (nbf) claim: token not yet valid"),
        ({"claims": dict(good, sub="spiffe://pay/other")},
         "error validating token: invalid subject (sub) claim"),
        ({"claims": dict(good, iss="https://evil.test")},
         "error validating token: invalid issuer (iss) claim"),
        ({"claims": dict(good, env="dev")}, 'error validating claims: claim "env" does not '
         'match any associated bound claim values'),
        ({"claims": {k: v for k, v in good.items() if k != "env"}},
         'error validating claims: claim "env" is missing'),
        ({"claims": {k: v for k, v in good.items() if k not in ("iat", "exp")}},
         "error validating token: no issued at (iat), not before (nbf), or expiration time "
         "(exp) claims in token"),
        ({"role": "nope"}, 'role "nope" could not be found'),
    ]
    for kw, msg in bad:
        with pytest.raises(hvac.exceptions.InvalidRequest) as e:
            login(**kw)
        assert e.value.errors == [msg], kw
    # exp within cap's one minute of clock skew still passes
    assert login(dict(good, exp=now - 30))
    status, body, _ = vault.request("POST", "/v1/auth/jwt/login", {"role": "broker"},
                                    token="")
    assert status == 400 and body == {"errors": ["missing token"]}


# -- aws (IAM) login: the signed GetCallerIdentity, re-signed with botocore --

AWS_CREDS = {"AKIAFAKEBROKER000001": {"secret_access_key": "fake-secret-key-for-tests-0001",
                                      "arn": "arn:aws:iam::123456789012:user/secretsfs",
                                      "user_id": "AIDAFAKEUSER0001"},
             "ASIAFAKESESSION00001": {"secret_access_key": "fake-secret-key-for-tests-0002",
                                      "session_token": "fake-session-token",
                                      "arn": "arn:aws:sts::123456789012:assumed-role/"
                                             "payments/i-0abc",
                                      "user_id": "AROAFAKEROLE0001:i-0abc"}}


def botocore_login_body(akid, secret, token=None, server_id=None, role=None, tamper=None):
    """What Vault's Go client (builtin/credential/aws/cli.go) sends, built with botocore."""
    import base64
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    if server_id:
        headers["X-Vault-AWS-IAM-Server-ID"] = server_id
    req = AWSRequest(method="POST", url="https://sts.amazonaws.com/",
                     data=b"Action=GetCallerIdentity&Version=2011-06-15", headers=headers)
    SigV4Auth(Credentials(akid, secret, token), "sts", "us-east-1").add_auth(req)
    hdrs = {k: [v] for k, v in req.headers.items()}
    body = req.body if isinstance(req.body, bytes) else req.body.encode()
    if tamper:
        body = tamper(body)
    b = lambda x: base64.b64encode(x).decode()      # noqa: E731
    out = {"iam_http_request_method": "POST", "iam_request_url": b(req.url.encode()),
           "iam_request_body": b(body), "iam_request_headers": b(json.dumps(hdrs).encode())}
    if role:
        out["role"] = role
    return out


def test_aws_iam_login(vault):
    vault.reset_stats()
    vault.configure(aws={"iam_server_id_header_value": "vault.test", "credentials": AWS_CREDS,
                         "roles": {"secretsfs": {"bound_iam_principal_arn": [
                             "arn:aws:iam::123456789012:user/secretsfs"],
                             "policies": ["secretsfs"]},
                             "payments": {"bound_iam_principal_arn": [
                                 "arn:aws:iam::123456789012:role/pay*"]}}})
    # hvac's own signer
    resp = client(vault).auth.aws.iam_login("AKIAFAKEBROKER000001",
                                            "fake-secret-key-for-tests-0001",
                                            header_value="vault.test", role="secretsfs")
    meta = resp["auth"]["metadata"]
    assert meta["canonical_arn"] == "arn:aws:iam::123456789012:user/secretsfs"
    assert meta["account_id"] == "123456789012" and "secretsfs" in resp["auth"]["policies"]
    # botocore, a session token, an assumed role mapped to its role by the ARN's name
    body = botocore_login_body("ASIAFAKESESSION00001", "fake-secret-key-for-tests-0002",
                               token="fake-session-token", server_id="vault.test")
    status, answer, _ = vault.request("POST", "/v1/auth/aws/login", body, token="")
    assert status == 200, answer
    assert answer["auth"]["metadata"]["canonical_arn"] == \
        "arn:aws:iam::123456789012:role/payments"

    def refused(body):
        status, answer, _ = vault.request("POST", "/v1/auth/aws/login", body, token="")
        assert status == 400
        return answer["errors"][0]
    assert refused(botocore_login_body("AKIAFAKEBROKER000001", "fake-secret-key-for-tests-0001",
                                       role="secretsfs")) == \
        'error validating X-Vault-AWS-IAM-Server-ID header: missing header ' \
        '"X-Vault-AWS-IAM-Server-ID"'
    assert refused(botocore_login_body("AKIAFAKEBROKER000001", "fake-secret-key-for-tests-0001",
                                       server_id="other", role="secretsfs")) == \
        'error validating X-Vault-AWS-IAM-Server-ID header: expected "vault.test" but got ' \
        '"other"'
    err = refused(botocore_login_body("AKIAFAKEBROKER000001", "wrong-secret",
                                      server_id="vault.test", role="secretsfs"))
    assert err.startswith("error making upstream request: received error code 403 from STS: ")
    assert "<Code>SignatureDoesNotMatch</Code>" in err
    err = refused(botocore_login_body("AKIAFAKEBROKER000001", "fake-secret-key-for-tests-0001",
                                      server_id="vault.test", role="secretsfs",
                                      tamper=lambda b: b + b"&x=1"))
    assert "SignatureDoesNotMatch" in err
    err = refused(botocore_login_body("AKIAUNKNOWN000000000", "x", server_id="vault.test"))
    assert "<Code>InvalidClientTokenId</Code>" in err
    assert refused(botocore_login_body("ASIAFAKESESSION00001", "fake-secret-key-for-tests-0002",
                                       token="fake-session-token", server_id="vault.test",
                                       role="secretsfs")) == \
        'IAM Principal "arn:aws:sts::123456789012:assumed-role/payments/i-0abc" does not ' \
        'belong to the role "secretsfs"'
    assert refused(botocore_login_body("AKIAFAKEBROKER000001", "fake-secret-key-for-tests-0001",
                                       server_id="vault.test", role="nope")) == \
        "entry for role nope not found"
    assert refused({"iam_http_request_method": "GET"}) == \
        "invalid iam_http_request_method; currently only 'POST' is supported"
    assert refused({"iam_http_request_method": "POST"}) == "missing iam_request_url"
    assert vault.stats()["sts_refusals"] == {"SignatureDoesNotMatch": 2,
                                             "InvalidClientTokenId": 1}


# -- namespaces: tokens and auth mounts belong to one --

def test_namespace_scoping_of_tokens_and_auth_mounts(vault):
    vault.configure(namespaces={"team-a": {"auth_mounts": {"approle": "approle"}},
                                "team-a/child": {}, "team-b": {}})
    vault.kv_put("secret", "nsx/x", {"who": "a"}, namespace="team-a")
    vault.kv_put("secret", "nsx/x", {"who": "child"}, namespace="team-a/child")
    vault.kv_put("secret", "nsx/x", {"who": "b"}, namespace="team-b")
    a = client(vault, namespace="team-a")
    tok = a.auth.approle.login(role_id="role-id-1234",
                               secret_id="secret-id-5678")["auth"]["client_token"]
    assert a.auth.token.lookup_self()["data"]["namespace_path"] == "team-a/"
    read = lambda ns, path="nsx/x": client(vault, token=tok, namespace=ns).secrets.kv.v2 \
        .read_secret_version(path, mount_point="secret")["data"]["data"]  # noqa: E731
    assert read("team-a") == {"who": "a"}
    # a child namespace, by header or by path prefix
    assert read("team-a/child") == {"who": "child"}
    assert read("team-a", "nsx/x") == {"who": "a"}
    status, body, _ = vault.request("GET", "/v1/child/secret/data/nsx/x", token=tok,
                                    namespace="team-a")
    assert status == 200 and body["data"]["data"] == {"who": "child"}
    status, body, _ = vault.request("GET", "/v1/team-a/child/secret/data/nsx/x", token=tok)
    assert status == 200 and body["data"]["data"] == {"who": "child"}
    # a sibling, and the parent (root), refuse it
    for ns in ("team-b", None):
        with pytest.raises(hvac.exceptions.Forbidden) as e:
            read(ns)
        assert e.value.errors == ["permission denied"]
    status, body, _ = vault.request("GET", "/v1/team-b/secret/data/nsx/x", token=tok)
    assert status == 403 and body == {"errors": ["permission denied"]}
    assert vault.stats()["namespace_denied"] == 3
    # lookup-self goes to the token's own namespace whatever the header says
    assert client(vault, token=tok, namespace="team-b").auth.token.lookup_self()
    # auth mounts are per namespace: team-b has no approle mount
    status, body, _ = vault.request("POST", "/v1/auth/approle/login",
                                    {"role_id": "role-id-1234", "secret_id": "secret-id-5678"},
                                    token="", namespace="team-b")
    assert status == 403 and body == {"errors": ["permission denied"]}
    # a root-namespace token acts in every namespace
    root_ns_tok = approle_token(vault)
    assert client(vault, token=root_ns_tok, namespace="team-b").secrets.kv.v2 \
        .read_secret_version("nsx/x", mount_point="secret")["data"]["data"] == {"who": "b"}
    status, body, _ = vault.request("GET", "/v1/secret/data/x", namespace="nope")
    assert status == 404 and body == {"errors": ["namespace not found"]}
    vault.configure(namespaces=None)


# -- TLS: request a client certificate, require it only when configured --

def test_listener_requests_but_does_not_require_a_client_certificate(tmp_path, pki):
    with VaultFake.start(tmp_path / "v", pki, quiet=True, client_cert_mode="request",
                         config={"approle": APPROLE}) as v:
        answer = tls_attempt(v)             # no certificate: served
        assert isinstance(answer, bytes) and answer.startswith(b"HTTP/1.1 200 "), answer
        bare = hvac.Client(url=v.addr, verify=v.ca, timeout=10)
        assert bare.auth.approle.login(role_id="role-id-1234",
                                       secret_id="secret-id-5678")["auth"]["client_token"]
        r = requests.post(v.addr + "/v1/auth/cert/login", json={}, verify=v.ca, timeout=10)
        assert r.status_code == 400 and r.json() == {
            "errors": ["invalid certificate or no client certificate supplied"]}
        # The certificate is still asked for, and used by cert auth when given.
        assert "default" in client(v).auth.cert.login(
            cert_pem=v.client_cert, key_pem=v.client_key)["auth"]["policies"]
    # The fixture's default listener demands one (tls_require_and_verify_client_cert).
    with VaultFake.start(tmp_path / "r", pki, quiet=True) as r:
        assert isinstance(tls_attempt(r), Exception)


# -- HTTP/2 by ALPN, beside HTTP/1.1 --

def curl(v, *args, token=None):
    out = subprocess.run(["curl", "-sS", "--cacert", v.ca, "--cert", v.client_cert, "--key",
                          v.client_key, "-H", "X-Vault-Token: " + (token or v.root_token),
                          "-w", "\n%{http_version} %{http_code}"] + list(args),
                         capture_output=True, text=True, timeout=30)
    body, _, tail = out.stdout.rpartition("\n")
    return tail.split() + [body]


def need_h2():
    """The fake's HTTP/2 needs python3-h2 (tests/run-tests.sh installs it):
    a skip by hand, a failure under CI=true."""
    try:
        import h2  # noqa: F401
    except ImportError:
        need(False, "python3-h2 (the fake's HTTP/2)")


def test_http2_negotiated_by_alpn_and_http11_still_served(tmp_path, pki):
    need_h2()
    with VaultFake.start(tmp_path / "v", pki, quiet=True, http2=True) as v:
        v.kv_put("secret", "h2/x", {"a": "b"})
        # libcurl (what the product uses) picks h2 over TLS by default
        ver, code, body = curl(v, v.addr + "/v1/secret/data/h2/x")
        assert (ver, code) == ("2", "200") and json.loads(body)["data"]["data"] == {"a": "b"}
        ver, code, body = curl(v, "--http1.1", v.addr + "/v1/secret/data/h2/x")
        assert (ver, code) == ("1.1", "200")
        # errors, redirects and ?list= are the same answers over HTTP/2
        ver, code, body = curl(v, v.addr + "/v1/secret/data/h2/x",
                               token="hvs.AAAAAAAAAAAAAAAAAAAAAAAA")
        assert (ver, code) == ("2", "403")
        assert json.loads(body) == {"errors": ["permission denied", "invalid token"]}
        ver, code, body = curl(v, "-X", "LIST", v.addr + "/v1/secret/metadata/h2")
        assert code == "200" and json.loads(body)["data"]["keys"] == ["x"]
        # a request body, and the client certificate, reach cert auth over HTTP/2
        ver, code, body = curl(v, "-X", "POST", "-d", "{}", v.addr + "/v1/auth/cert/login")
        assert (ver, code) == ("2", "200") and json.loads(body)["auth"]["client_token"]
        # a body bigger than the initial flow-control window
        big = {"pad": "A" * 200000}
        v.kv_put("secret", "h2/big", big)
        ver, code, body = curl(v, v.addr + "/v1/secret/data/h2/big")
        assert (ver, code) == ("2", "200") and json.loads(body)["data"]["data"] == big
        v.faults(standby={"mode": "redirect", "active": "https://10.0.0.7:8200"})
        out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "--cacert", v.ca, "--cert",
                              v.client_cert, "--key", v.client_key, "-w",
                              "%{http_version} %{http_code} %{redirect_url}",
                              v.addr + "/v1/secret/data/h2/x"],
                             capture_output=True, text=True, timeout=30).stdout
        assert out == "2 307 https://10.0.0.7:8200/v1/secret/data/h2/x"
        v.clear_faults()
        st = v.stats()
        assert st["by_protocol"]["HTTP/2"] >= 6 and st["by_protocol"]["HTTP/1.1"] >= 1
        assert any(r["proto"] == "HTTP/2" for r in st["recent"])
    # Without http2 the fake offers HTTP/1.1 alone.
    with VaultFake.start(tmp_path / "o", pki, quiet=True, http2=False) as old:
        ver, code, _ = curl(old, old.addr + "/v1/sys/health")
        assert (ver, code) == ("1.1", "200")


def test_http2_streams_are_answered_concurrently_and_faults_keep_their_meaning(tmp_path,
                                                                               pki):
    need_h2()
    with VaultFake.start(tmp_path / "v", pki, quiet=True, http2=True) as v:
        v.kv_put("secret", "h2c/slow", {"a": "1"})
        v.kv_put("secret", "h2c/fast", {"a": "2"})
        v.faults(slow={"seconds": 2, "prefix": "/v1/secret/data/h2c/slow"})
        t0 = time.monotonic()
        # one connection, two streams: the fast one must not wait for the slow one
        out = subprocess.run(
            ["curl", "-sS", "--http2", "--parallel", "--parallel-immediate", "--cacert", v.ca,
             "--cert", v.client_cert, "--key", v.client_key, "-H",
             "X-Vault-Token: " + v.root_token, "-w", "%{http_version} %{time_total}\n",
             "-o", "/dev/null", v.addr + "/v1/secret/data/h2c/slow", "-o", "/dev/null",
             v.addr + "/v1/secret/data/h2c/fast"], capture_output=True, text=True, timeout=30)
        times = sorted(float(line.split()[1]) for line in out.stdout.split("\n") if line)
        assert len(times) == 2 and times[0] < 1.5 <= times[1], out.stdout
        assert time.monotonic() - t0 < 6
        v.clear_faults()
        v.faults(drop={"count": 1})
        ver, code, _ = curl(v, v.addr + "/v1/secret/data/h2c/fast")
        assert code == "000"
        v.faults(reset={"count": 1})
        r = subprocess.run(["curl", "-sS", "--cacert", v.ca, "--cert", v.client_cert, "--key",
                            v.client_key, "-H", "X-Vault-Token: " + v.root_token,
                            v.addr + "/v1/secret/data/h2c/fast"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode != 0
        ver, code, body = curl(v, v.addr + "/v1/secret/data/h2c/fast")
        assert (ver, code) == ("2", "200")


# -- hold: a test decides what happens while a request waits --

def test_hold_fault_waits_for_release(vault):
    import threading
    vault.kv_put("secret", "hold/x", {"v": "1"})
    vault.reset_stats()
    vault.faults(hold={"prefix": "/v1/secret/data/hold/x", "count": 1})
    got = []

    def reader():
        got.append(root(vault).secrets.kv.v2.read_secret_version(
            "hold/x", mount_point="secret")["data"]["data"])
    t = threading.Thread(target=reader)
    t.start()
    assert vault.release(count=0, wait_for=1) == 1      # it is waiting, still held
    assert vault.faults()["held_waiting"] == 1 and not got
    vault.kv_put("secret", "hold/x", {"v": "2"})         # the rotation, while it waits
    assert vault.release(wait_for=1) == 1
    t.join(10)
    assert got == [{"v": "2"}]
    # a hold nobody releases ends at its timeout; clear releases everything
    vault.faults(hold={"prefix": "/v1/secret/data/hold/x", "timeout": 0.3})
    t0 = time.monotonic()
    assert vault.kv_get("secret", "hold/x") == {"v": "2"}
    assert 0.25 <= time.monotonic() - t0 < 5
    st = vault.stats()
    assert st["held"] == 2 and st["hold_timeouts"] == 1
