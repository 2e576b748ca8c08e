"""The Vault backend's aws (IAM) and jwt login methods (issue 16, item 5) against the
strict fake (tests/fakes/vault_server.py): the aws login's GetCallerIdentity is re-signed
by the fake with botocore and its X-Vault-AWS-IAM-Server-ID checked; the jwt login's
signature, iss, sub, aud, exp and bound claims are checked with fake_jwt. The token each
login yields then reads a secret; a refused login is one clear log line and no value.

Run: SECRETSFS_BIN=BUILD/fuse/secretsfs /usr/bin/python3 -m pytest -q tests/system/test_vault_logins.py
"""
import errno
import json
import os
import secrets
import sys
import time

import pytest

from conftest import write_private

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
import fake_jwt  # noqa: E402
from vault_fixture import VaultFake, make_pki  # noqa: E402
from test_vault_prod import audit_records, config, failure_lines, read, read_errno  # noqa: E402

AKID = "AKIAFAKEBROKER000001"
SECRET = "fake-secret-key-for-tests-0001"
SESSION_AKID = "ASIAFAKESESSION00001"
SESSION_SECRET = "fake-secret-key-for-tests-0002"
SESSION_TOKEN = "fake-session-token-" + secrets.token_hex(8)
AWS_CREDS = {AKID: {"secret_access_key": SECRET,
                    "arn": "arn:aws:iam::123456789012:user/secretsfs",
                    "user_id": "AIDAFAKEUSER0001"},
             SESSION_AKID: {"secret_access_key": SESSION_SECRET,
                            "session_token": SESSION_TOKEN,
                            "arn": "arn:aws:sts::123456789012:assumed-role/payments/i-0abc",
                            "user_id": "AROAFAKEROLE0001:i-0abc"}}
AWS_ROLES = {"secretsfs": {"bound_iam_principal_arn": ["arn:aws:iam::123456789012:user/secretsfs"],
                           "policies": ["secretsfs"]},
             "payments": {"bound_iam_principal_arn": ["arn:aws:iam::123456789012:role/pay*"],
                          "policies": ["secretsfs"]}}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def vault(tmp_path, pki):
    v = VaultFake.start(tmp_path / "vault", pki, quiet=True)
    yield v
    v.stop()


@pytest.fixture(scope="module")
def oidc_key():
    return fake_jwt.make_key("ES256")


def value():
    return "val-" + secrets.token_hex(12)


def logins(vault, kind):
    return vault.stats()["logins"].get(kind, 0)


def profile_files(tmp_path, profile, akid, secret, token=None):
    d = tmp_path / "aws"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (
        profile, akid, secret)
    if token:
        text += "aws_session_token = %s\n" % token
    return str(write_private(d / "credentials", text)), \
        str(write_private(d / "config", "[profile %s]\nregion = us-east-1\n" % profile))


def test_aws_login_with_a_profile_then_reads(make_daemon, vault, tmp_path):
    """Static keys from a named profile of a shared credentials file: the fake re-signs
    the GetCallerIdentity with botocore, finds the server id header signed, maps the ARN
    to the role, and the token reads the secret. No key reaches the log."""
    v = value()
    vault.configure(aws={"iam_server_id_header_value": "vault.test",
                         "credentials": AWS_CREDS, "roles": AWS_ROLES})
    vault.kv_put("secret", "aws/x", {"k": v})
    cred, conf = profile_files(tmp_path, "broker", AKID, SECRET)
    auth = {"method": "aws", "role": "secretsfs", "header_value": "vault.test",
            "profile": "broker", "credentials_file": cred, "config_file": conf}
    d = make_daemon(config(vault, tmp_path, {"s": {"backend": "vault", "ref": "aws/x",
                                                     "field": "k"}}, auth=auth))
    assert read(d, "s") == v.encode()
    assert logins(vault, "aws") == 1
    assert vault.stats()["sts_refusals"] == {}
    log = d.log()
    assert "logged in with aws auth" in log
    assert SECRET not in log and v not in log
    rec = [r for r in audit_records(tmp_path) if r.get("method") == "aws"]
    assert rec and rec[0].get("ok", True)


def test_aws_login_with_session_credentials_and_the_arn_role(make_daemon, vault, tmp_path):
    """Temporary credentials (a session token, signed as X-Amz-Security-Token) of an
    assumed role; no role in the config: Vault takes the ARN's role name ("payments")."""
    v = value()
    vault.configure(aws={"credentials": AWS_CREDS, "roles": AWS_ROLES})
    vault.kv_put("secret", "aws/y", {"k": v})
    cred, conf = profile_files(tmp_path, "default", SESSION_AKID, SESSION_SECRET,
                               SESSION_TOKEN)
    auth = {"method": "aws", "credentials_file": cred, "config_file": conf,
            "profile": "default"}
    d = make_daemon(config(vault, tmp_path, {"s": {"backend": "vault", "ref": "aws/y",
                                                     "field": "k"}}, auth=auth))
    assert read(d, "s") == v.encode()
    assert logins(vault, "aws") == 1
    assert SESSION_TOKEN not in d.log()


def test_aws_login_refused_without_the_server_id_header(make_daemon, vault, tmp_path):
    """Vault wants X-Vault-AWS-IAM-Server-ID and the config sends none: refused, one log
    line naming the header, no value; and wrong keys: STS's SignatureDoesNotMatch."""
    vault.configure(aws={"iam_server_id_header_value": "vault.test",
                         "credentials": AWS_CREDS, "roles": AWS_ROLES})
    vault.kv_put("secret", "aws/z", {"k": value()})
    cred, conf = profile_files(tmp_path, "broker", AKID, SECRET)
    auth = {"method": "aws", "role": "secretsfs", "profile": "broker",
            "credentials_file": cred, "config_file": conf}
    d = make_daemon(config(vault, tmp_path, {"s": {"backend": "vault", "ref": "aws/z",
                                                     "field": "k"}}, auth=auth))
    assert read_errno(d, "s") == errno.EACCES
    lines = failure_lines(d, "s")
    assert len(lines) == 1 and "X-Vault-AWS-IAM-Server-ID" in lines[0], d.log()

    other = tmp_path / "wrong-keys"
    cred, conf = profile_files(other, "broker", AKID, "not-the-secret")
    auth = dict(auth, header_value="vault.test", credentials_file=cred, config_file=conf)
    d2 = make_daemon(config(vault, other, {"s": {"backend": "vault", "ref": "aws/z",
                                                   "field": "k"}}, auth=auth), workdir=other)
    assert read_errno(d2, "s") == errno.EACCES
    assert "received error code 403 from STS" in "\n".join(failure_lines(d2, "s")), d2.log()
    assert vault.stats()["sts_refusals"] == {"SignatureDoesNotMatch": 1}
    assert "not-the-secret" not in d2.log()


def jwt_setup(vault, pub):
    vault.configure(jwt={"jwt_validation_pubkeys": [pub], "bound_issuer": "https://idp.test",
                         "roles": {"broker": {"bound_audiences": ["vault"],
                                              "bound_subject": "spiffe://pay/secretsfs",
                                              "policies": ["secretsfs"]}}})


def claims(**kw):
    now = int(time.time())
    c = {"iss": "https://idp.test", "sub": "spiffe://pay/secretsfs", "aud": "vault",
         "iat": now, "exp": now + 300}
    c.update(kw)
    return c


def test_jwt_login_reads_and_the_file_is_read_again(make_daemon, vault, tmp_path, oidc_key):
    """A workload token in a 0644 file behind a symlink (as projected tokens are): the
    login reads the secret; the file is read again at the next login, so a rotated token
    is the one sent; the token never reaches the log."""
    priv, pub = oidc_key
    jwt_setup(vault, pub)
    v = value()
    vault.kv_put("secret", "jwt/x", {"k": v})
    d0 = tmp_path / "proj"
    d0.mkdir()
    tok = fake_jwt.sign(priv, claims(), "ES256")
    real = d0 / "..data-token"
    real.write_text(tok)
    os.chmod(real, 0o644)
    link = d0 / "token"
    os.symlink(real.name, link)
    auth = {"method": "jwt", "role": "broker", "jwt_file": str(link)}
    cfg = config(vault, tmp_path, {"s": {"backend": "vault", "ref": "jwt/x", "field": "k"}},
                 auth=auth)
    d = make_daemon(cfg)
    assert read(d, "s") == v.encode()
    assert logins(vault, "jwt") == 1
    log = d.log()
    assert "logged in with jwt auth" in log and tok not in log
    login = [r for r in vault.stats()["recent"] if r["path"] == "/v1/auth/jwt/login"]
    assert login and login[-1]["status"] == 200


def test_jwt_login_with_a_wrong_or_expired_token_fails_clearly(make_daemon, vault, tmp_path,
                                                                oidc_key):
    """An expired token, and one signed by another key: the read fails, no value, one
    log line with Vault's reason; no token was issued."""
    priv, pub = oidc_key
    jwt_setup(vault, pub)
    vault.kv_put("secret", "jwt/y", {"k": value()})
    for name, tok, why in (
            ("expired", fake_jwt.sign(priv, claims(exp=int(time.time()) - 600), "ES256"),
             "token is expired"),
            ("forged", fake_jwt.sign(fake_jwt.make_key("ES256")[0], claims(), "ES256"),
             "signature")):
        wd = tmp_path / name
        wd.mkdir()
        f = write_private(wd / "token", tok, mode=0o644)
        cfg = config(vault, wd, {"s": {"backend": "vault", "ref": "jwt/y", "field": "k"}},
                     auth={"method": "jwt", "role": "broker", "jwt_file": str(f)})
        d = make_daemon(cfg, workdir=wd)
        assert read_errno(d, "s") == errno.EACCES
        lines = failure_lines(d, "s")
        assert len(lines) == 1 and "login with jwt auth failed" in lines[0], d.log()
        assert why in lines[0], lines
        assert tok not in d.log()
    assert logins(vault, "jwt") == 0


def test_aws_login_with_web_identity_credentials(make_daemon, vault, tmp_path, pki,
                                                 monkeypatch):
    """AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN: the chain trades the token for
    temporary credentials at the AWS fake's STS (AssumeRoleWithWebIdentity), and the
    GetCallerIdentity is signed with them and their session token. Which key STS
    issues is known only once it is issued, so the fake Vault learns it then (as real
    STS would know it all along): the first login is refused as InvalidClientTokenId,
    the next one, after the refusal's hold, logs in with the same web-identity keys."""
    from aws_fixture import AwsFake
    fake = AwsFake.start(tmp_path / "aws-fake", pki.dir)
    try:
        monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE",
                           fake.write_web_identity_token(tmp_path / "wi-token"))
        monkeypatch.setenv("AWS_ROLE_ARN", fake.role_arn)
        monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "secretsfs-test")
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        roles = {"node": {"bound_iam_principal_arn": [fake.role_arn],
                          "policies": ["secretsfs"]}}
        vault.configure(aws={"iam_server_id_header_value": "vault.test",
                             "credentials": {}, "roles": roles})
        v = value()
        vault.kv_put("secret", "aws/wi", {"k": v})
        auth = {"method": "aws", "role": "node", "header_value": "vault.test",
                "sts_endpoint": fake.http_endpoint}
        d = make_daemon(config(vault, tmp_path, {"s": {"backend": "vault", "ref": "aws/wi",
                                                         "field": "k"}}, auth=auth,
                               negative_ttl="1s"))
        assert read_errno(d, "s") == errno.EACCES
        assert vault.stats()["sts_refusals"] == {"InvalidClientTokenId": 1}
        with open(fake.state_path) as f:
            temp = json.load(f)["temp"]
        assert len(temp) == 1
        akid, t = next(iter(temp.items()))
        assert akid.startswith("ASIA") and t["source"] == "sts", t
        vault.configure(aws={"iam_server_id_header_value": "vault.test", "roles": roles,
                             "credentials": {akid: {
                                 "secret_access_key": t["secret_key"],
                                 "session_token": t["token"],
                                 "arn": "arn:aws:sts::%s:assumed-role/%s/%s" % (
                                     fake.account_id, t["role"], t["session"]),
                                 "user_id": "AROAFAKENODE:" + t["session"]}}})
        # the refusal is cached for negative_ttl, and the login held back 0.5-1 s
        time.sleep(1.5)
        assert read(d, "s") == v.encode()
        assert logins(vault, "aws") == 1
        assert len(fake.temp_credentials()) == 1    # the same keys, not fetched again
        assert t["secret_key"] not in d.log() and t["token"] not in d.log()
    finally:
        fake.stop()
