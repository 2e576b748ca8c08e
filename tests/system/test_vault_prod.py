"""The Vault backend against what a production Vault punishes (issue 16), on a fresh strict
fake per test (tests/fakes/vault_server.py): a 403 is not a dead token.

A read that Vault's policy denies makes no login and leaves no token behind, in each of the
fake's token_errors modes ("modern": a dead token says "invalid token" too; "multierror":
the same as one text; "legacy", older Vault and OpenBao: "permission denied" alone, settled
by at most one lookup-self per interval); the refusal is remembered for cache.negative_ttl
(one backend request, one log line, an audit record); a use-limited AppRole serves a
minute of allowed and denied reads on one secret_id use; readers cannot drive a lockout with
refused credentials; a token replaced at max_ttl is revoked. Requests as real clients send
them: lists as GET ?list=true; a batch token replaced by a login with no renew-self; HTTP/2;
auth in a parent namespace; kv.version "auto". Vault HA ("addresses"): a sealed node moves
to the next, a standby's 307 followed only to a listed node (a second fake counts what an
unlisted one receives), a 429 backs off on its node.

Run: SECRETSFS_BIN=BUILD/fuse/secretsfs /usr/bin/python3 -m pytest -q tests/system/test_vault_prod.py
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
from vault_fixture import VaultFake, make_pki  # noqa: E402

ROLE_ID = "role-" + secrets.token_hex(8)
SECRET_ID = "sid-" + secrets.token_hex(12)
TOKEN_CHECK_S = 10      # VAULT_TOKEN_CHECK_MS, include/secretsfs/vault.h


def approle(num_uses=0, **extra):
    role = {"role_id": ROLE_ID, "secret_id": SECRET_ID, "policies": ["secretsfs"]}
    if num_uses:
        role["secret_id_num_uses"] = num_uses
    role.update(extra)
    return {"secretsfs": role}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def vault(tmp_path, pki):
    """A fresh fake per test: its token store and counters are this test's alone."""
    v = VaultFake.start(tmp_path / "vault", pki, quiet=True, config={"approle": approle()})
    yield v
    v.stop()


def value():
    return "val-" + secrets.token_hex(12)


def creds(tmp_path, secret_id=SECRET_ID):
    d = tmp_path / "creds"
    d.mkdir(mode=0o700, exist_ok=True)
    return {"method": "approle",
            "role_id_file": str(write_private(d / "role-id", ROLE_ID)),
            "secret_id_file": str(write_private(d / "secret-id", secret_id))}


def config(vault, tmp_path, secrets_, auth=None, negative_ttl="60s"):
    audit = tmp_path / "audit"
    audit.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = write_private(tmp_path / "audit.key", os.urandom(32).hex() + "\n")
    b = {"type": "vault", "address": vault.addr,
         "tls": {"ca_file": vault.ca, "client_cert": vault.client_cert,
                 "client_key": vault.client_key},
         "auth": auth or creds(tmp_path)}
    return {"backends": {"vault": b}, "secrets": secrets_,
            "cache": {"negative_ttl": negative_ttl},
            "audit": {"file": str(audit / "audit.log"), "key_file": str(key)},
            "rules": [{"id": "host", "match": {"host": True}, "allow": ["*"]}]}


def audit_records(tmp_path):
    with open(tmp_path / "audit" / "audit.log") as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def read(d, name):
    with open(d.path(name), "rb") as f:
        return f.read()


def read_errno(d, name):
    try:
        read(d, name)
    except OSError as e:
        return e.errno
    return 0


def live_tokens(vault, path="auth/approle/login"):
    """Tokens the fake still honours that a login on `path` made (its state file)."""
    now = time.time()
    with open(vault.state_file) as f:
        toks = json.load(f)["tokens"].values()
    return [t for t in toks if t["path"] == path and
            (not t.get("expire_at") or t["expire_at"] > now)]


def failure_lines(d, name):
    return [ln for ln in d.log().splitlines()
            if ln.startswith("secretsfs: secret %s: backend vault: " % name)]


def logins(vault, kind="approle"):
    return vault.stats()["logins"].get(kind, 0)


def lookup_calls(st):
    """lookup-self requests, answered or refused (stats "lookups" counts answers)."""
    return st["by_path"].get("GET /v1/auth/token/lookup-self", 0)


def revoke_self_calls(vault):
    return vault.stats()["by_path"].get("POST /v1/auth/token/revoke-self", 0)


def wait_for(pred, timeout=10, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


@pytest.mark.parametrize("mode", ["modern", "multierror", "legacy"])
def test_20_denied_reads_no_login_no_leaked_token_one_log_line(make_daemon, vault,
                                                               tmp_path, mode):
    ok, denied = value(), value()
    vault.configure(token_errors=mode, deny=["secret/data/p1/no"])
    vault.kv_put("secret", "p1/ok", {"k": ok})
    vault.kv_put("secret", "p1/no", {"k": denied})
    d = make_daemon(config(vault, tmp_path, {
        "ok": {"backend": "vault", "ref": "p1/ok", "field": "k"},
        "no": {"backend": "vault", "ref": "p1/no", "field": "k"}}))
    assert read(d, "ok") == ok.encode()
    assert logins(vault) == 1
    before = vault.stats()
    for _ in range(20):
        assert read_errno(d, "no") == errno.EACCES
    after = vault.stats()
    assert logins(vault) == 1, "a denied read logged in"
    assert after["login_failures"] == before["login_failures"]
    # The refusal is remembered for negative_ttl: one request reached Vault.
    assert after["acl_denied"]["secret/data/p1/no"] == 1
    # A token we just logged in with is known live: not even a lookup-self.
    assert lookup_calls(after) == lookup_calls(before)
    assert len(live_tokens(vault)) == 1, "tokens left behind"
    lines = failure_lines(d, "no")
    assert len(lines) == 1, lines
    assert "permission denied" in lines[0] and "Vault answered 403" in lines[0]
    errs = [r for r in audit_records(tmp_path) if r["event"] == "backend_error"
            and r["secret"] == "no"]
    assert len(errs) == 1 and errs[0]["errno"] == errno.EACCES
    assert read(d, "ok") == ok.encode()
    assert ok not in d.log() and denied not in d.log()


def test_legacy_bare_403_one_lookup_self_per_interval_and_dead_token_found(
        make_daemon, vault, tmp_path):
    """Older Vault and OpenBao say "permission denied" alone for a dead token too: with
    nothing remembered (negative_ttl 0) 20 denied reads past the check interval cost one
    lookup-self and no login; a revoked token is found by that lookup-self and replaced
    by one login."""
    ok, denied, fresh = value(), value(), value()
    vault.configure(token_errors="legacy", deny=["secret/data/p2/no"])
    vault.kv_put("secret", "p2/ok", {"k": ok})
    vault.kv_put("secret", "p2/no", {"k": denied})
    vault.kv_put("secret", "p2/fresh", {"k": fresh})
    d = make_daemon(config(vault, tmp_path, {
        "ok": {"backend": "vault", "ref": "p2/ok", "field": "k"},
        "no": {"backend": "vault", "ref": "p2/no", "field": "k"},
        "fresh": {"backend": "vault", "ref": "p2/fresh", "field": "k"}},
        negative_ttl="0s"))
    assert read(d, "ok") == ok.encode()
    assert logins(vault) == 1
    time.sleep(TOKEN_CHECK_S + 0.5)
    before = vault.stats()
    for _ in range(20):
        assert read_errno(d, "no") == errno.EACCES
    after = vault.stats()
    assert after["acl_denied"]["secret/data/p2/no"] == 20    # nothing remembered
    assert lookup_calls(after) - lookup_calls(before) == 1
    assert logins(vault) == 1
    assert after["invalid_token"] == 0                          # legacy bodies only

    time.sleep(TOKEN_CHECK_S + 0.5)
    assert vault.revoke_tokens() == 1
    revokes = revoke_self_calls(vault)
    before = vault.stats()
    assert read(d, "fresh") == fresh.encode()
    after = vault.stats()
    assert lookup_calls(after) - lookup_calls(before) == 1
    assert logins(vault) == 2
    # "permission denied" alone does not say the token is dead (a policy without
    # lookup-self says the same): it is revoked all the same, which Vault refuses.
    assert revoke_self_calls(vault) == revokes + 1
    assert [r["status"] for r in vault.stats()["recent"]
            if r["path"] == "/v1/auth/token/revoke-self"] == [403]
    assert len(live_tokens(vault)) == 1


def test_modern_dead_token_relogin_without_lookup_self(make_daemon, vault, tmp_path):
    v1 = value()
    vault.configure(token_errors="modern")
    vault.kv_put("secret", "p3/x", {"k": v1})
    vault.kv_put("secret", "p3/y", {"k": v1})
    # Two refs: files on one ref share one fetch, so b must ask again.
    d = make_daemon(config(vault, tmp_path, {
        "a": {"backend": "vault", "ref": "p3/x", "field": "k"},
        "b": {"backend": "vault", "ref": "p3/y"}}))
    assert read(d, "a") == v1.encode()
    assert vault.revoke_tokens() == 1
    before = vault.stats()
    assert json.loads(read(d, "b")) == {"k": v1}
    after = vault.stats()
    assert after["invalid_token"] > before["invalid_token"]
    assert lookup_calls(after) == lookup_calls(before)  # "invalid token" said it all
    assert revoke_self_calls(vault) == 0                # ... and that it is dead
    assert logins(vault) == 2
    assert len(live_tokens(vault)) == 1


def test_use_limited_approle_serves_a_minute_of_allowed_and_denied_reads(
        make_daemon, vault, tmp_path):
    """secret_id_num_uses 3: 100 reads over 60 s, allowed and denied, a short token TTL
    renewed meanwhile, nothing remembered (negative_ttl 0): one use of the secret_id."""
    vals = {n: value() for n in ("a", "b")}
    vault.configure(approle=approle(num_uses=3), token_ttl=15, token_max_ttl=3600,
                    deny=["secret/data/p4/no*"])
    for n, v in vals.items():
        vault.kv_put("secret", "p4/" + n, {"k": v})
    vault.kv_put("secret", "p4/no1", {"k": value()})
    secrets_ = {n: {"backend": "vault", "ref": "p4/" + n, "field": "k", "refresh": "2s"}
                for n in vals}
    secrets_.update({n: {"backend": "vault", "ref": "p4/" + n, "field": "k"}
                     for n in ("no1", "no2")})
    d = make_daemon(config(vault, tmp_path, secrets_, negative_ttl="0s"))
    wrong = []
    start = time.monotonic()
    for i in range(100):
        name = ("a", "no1", "b", "no2")[i % 4]
        got = read_errno(d, name)
        want = 0 if name in vals else errno.EACCES
        if got != want:
            wrong.append((i, name, got))
        time.sleep(max(0, start + (i + 1) * 0.6 - time.monotonic()))
    assert wrong == []
    st = vault.stats()
    assert st["renewals"] >= 2, st["renewals"]
    assert st["secret_id_uses"].get("secretsfs") == 1
    assert st["secret_ids_exhausted"] == {}
    role = vault.approle_state()["secretsfs"]
    assert role["secret_ids"][0]["remaining"] == 2
    assert role["failures"] == 0 and not role["locked"]
    assert len(live_tokens(vault)) == 1


def test_refused_credentials_cannot_be_driven_into_a_lockout(make_daemon, vault, tmp_path):
    """A wrong secret_id and 60 readers' opens in 3 s: logins are held back after each
    failure (1 s, doubling, jittered), so Vault sees at most 3 failures, the role is not
    locked (threshold 5), and the right secret_id logs in once the hold is over."""
    v = value()
    vault.configure(user_lockout={"threshold": 5, "duration": "15m",
                                  "counter_reset": "15m"})
    vault.kv_put("secret", "p5/x", {"k": v})
    auth = creds(tmp_path, secret_id="wrong-" + secrets.token_hex(6))
    d = make_daemon(config(vault, tmp_path, {
        "s": {"backend": "vault", "ref": "p5/x", "field": "k"}}, auth=auth,
        negative_ttl="0s"))
    end = time.monotonic() + 3
    n = 0
    while time.monotonic() < end:
        assert read_errno(d, "s") == errno.EACCES
        n += 1
        time.sleep(0.05)
    assert n >= 30
    failures = vault.stats()["login_failures"].get("approle", 0)
    assert 1 <= failures <= 3, failures
    role = vault.approle_state()["secretsfs"]
    assert not role["locked"] and role["failures"] == failures
    assert vault.stats()["lockouts"] == {}
    audit = [r for r in audit_records(tmp_path) if r["event"] == "auth"
             and r.get("action") == "login"]
    assert len(audit) == failures and all(r["outcome"] != "ok" for r in audit)
    write_private(tmp_path / "creds" / "secret-id", SECRET_ID)
    assert wait_for(lambda: read_errno(d, "s") == 0, timeout=20, step=0.2)
    assert read(d, "s") == v.encode()
    assert not vault.approle_state()["secretsfs"]["locked"]
    assert "wrong-" not in d.log()


def test_token_replaced_at_max_ttl_is_revoked(make_daemon, vault, tmp_path):
    """TTL 6 s, max_ttl 10 s: renewed at 4 s, then at 8 s the lease cannot grow back and
    the renewer logs in again while the token still lives; each token it replaces is
    revoked with revoke-self, so only the current one stays live."""
    v = value()
    vault.configure(token_ttl=6, token_max_ttl=10)
    vault.kv_put("secret", "p6/x", {"k": v})
    d = make_daemon(config(vault, tmp_path, {
        "s": {"backend": "vault", "ref": "p6/x", "field": "k"}}))
    assert read(d, "s") == v.encode()
    assert wait_for(lambda: logins(vault) >= 3, timeout=25)
    assert revoke_self_calls(vault) >= 2
    assert wait_for(lambda: len(live_tokens(vault)) == 1, timeout=3)
    assert read(d, "s") == v.encode()


# -- requests as real clients send them --

def test_lists_are_get_with_list_query(make_daemon, vault, tmp_path):
    """Gateways and WAFs refuse the LIST method: a prefix is listed with GET ?list=true
    (counted at the fake by how the list was asked), KV v2 and v1."""
    a, b = value(), value()
    vault.kv_put("secret", "p7/a", {"k": a})
    vault.kv_put("kv", "p7/b", {"k": b})
    d = make_daemon(config(vault, tmp_path, {
        "v2": {"backend": "vault", "ref": "p7", "as": "prefix", "field": "k"}}))
    assert os.listdir(d.path("v2")) == ["a"]
    assert read(d, "v2/a") == a.encode()
    st = vault.stats()
    assert st["lists"].get("secret/metadata/p7", 0) >= 1
    assert st["list_forms"].get("query", 0) >= 1
    assert "method" not in st["list_forms"], st["list_forms"]
    b2 = config(vault, tmp_path / "v1", {
        "v1": {"backend": "vault", "ref": "p7", "as": "prefix", "field": "k"}})
    b2["backends"]["vault"]["kv"] = {"mount": "kv", "version": 1}
    d1 = make_daemon(b2, workdir=tmp_path / "v1")
    assert os.listdir(d1.path("v1")) == ["b"]
    assert read(d1, "v1/b") == b.encode()
    st = vault.stats()
    assert st["lists"].get("kv/p7", 0) >= 1 and "method" not in st["list_forms"]


def test_batch_token_is_replaced_by_a_login_without_renew_or_revoke(make_daemon, vault,
                                                                   tmp_path):
    """A batch token (not renewable, not revocable) with a 3 s TTL: the renewer logs in
    again at about 2/3 of it, never calls renew-self or revoke-self (counted at the fake),
    and reads keep working throughout."""
    v = value()
    vault.configure(approle=approle(token_type="batch"), token_ttl=3)
    vault.kv_put("secret", "p8/x", {"k": v})
    d = make_daemon(config(vault, tmp_path, {
        "s": {"backend": "vault", "ref": "p8/x", "field": "k", "refresh": "1s"}}))
    fails = []
    end = time.monotonic() + 8
    while time.monotonic() < end:
        if read_errno(d, "s") != 0:
            fails.append(time.monotonic())
        time.sleep(0.2)
    assert fails == []
    st = vault.stats()
    assert logins(vault) >= 3, st["logins"]
    assert st["by_path"].get("POST /v1/auth/token/renew-self", 0) == 0
    assert revoke_self_calls(vault) == 0
    assert st["renewals"] == 0
    assert "a batch token cannot be renewed, logging in again" in d.log()
    assert read(d, "s") == v.encode()


def test_http2_is_negotiated_with_vault(make_daemon, vault, tmp_path):
    """The fake offers h2 by ALPN as Vault's Go listener does; libcurl takes it (its
    default for https): every request the daemon made arrived as HTTP/2."""
    v = value()
    vault.kv_put("secret", "p9/x", {"k": v})
    vault.kv_put("secret", "p9/y", {"k": v})
    d = make_daemon(config(vault, tmp_path, {
        "s": {"backend": "vault", "ref": "p9/x", "field": "k"},
        "p": {"backend": "vault", "ref": "p9", "as": "prefix", "field": "k"}}))
    assert read(d, "s") == v.encode()
    assert sorted(os.listdir(d.path("p"))) == ["x", "y"]
    ours = [r for r in vault.stats()["recent"] if r["token"] != "root"]
    assert {r["path"] for r in ours} >= {"/v1/auth/approle/login", "/v1/secret/data/p9/x",
                                         "/v1/secret/metadata/p9"}
    assert {r["proto"] for r in ours} == {"HTTP/2"}, ours
    assert vault.stats()["by_protocol"].get("HTTP/2", 0) >= 3


def test_auth_in_a_parent_namespace_secrets_in_a_child(make_daemon, vault, tmp_path):
    """The AppRole mount lives in "plat" only; the KV secret in "plat/team". With
    auth.namespace "plat" the login goes there and the reads to the child, where the
    parent's token works (Vault: a token acts in its namespace and below). Without it
    the login goes to the child, which has no approle mount: refused."""
    v = value()
    vault.configure(namespaces={"plat": {"auth_mounts": {"approle": "approle"}},
                                "plat/team": {"auth_mounts": {}}})
    vault.kv_put("secret", "p10/x", {"k": v}, namespace="plat/team")
    cfg = config(vault, tmp_path, {"s": {"backend": "vault", "ref": "p10/x", "field": "k"}},
                 auth=dict(creds(tmp_path), namespace="plat"))
    cfg["backends"]["vault"]["namespace"] = "plat/team"
    d = make_daemon(cfg)
    assert read(d, "s") == v.encode()
    recent = vault.stats()["recent"]
    login = [r for r in recent if r["path"] == "/v1/auth/approle/login"]
    reads = [r for r in recent if r["path"] == "/v1/secret/data/p10/x" and
             r["token"] == "token"]
    assert [r["namespace"] for r in login] == ["plat"] and login[0]["status"] == 200
    assert reads and {r["namespace"] for r in reads} == {"plat/team"}
    assert reads[-1]["status"] == 200

    other = tmp_path / "child-auth"
    cfg = config(vault, other, {"s": {"backend": "vault", "ref": "p10/x", "field": "k"}})
    cfg["backends"]["vault"]["namespace"] = "plat/team"
    bad = make_daemon(cfg, workdir=other)
    assert read_errno(bad, "s") == errno.EACCES
    login = [r for r in vault.stats()["recent"] if r["path"] == "/v1/auth/approle/login"]
    assert login[-1]["namespace"] == "plat/team" and login[-1]["status"] == 403
    assert logins(vault) == 1


@pytest.mark.parametrize("mount,ver", [("secret", 2), ("kv", 1)])
def test_kv_version_auto_asks_vault_once(make_daemon, vault, tmp_path, mount, ver):
    """kv.version "auto": one GET sys/internal/ui/mounts/<mount> (the token's, as the
    Vault CLI's preflight), then reads and lists of that version; a mount that is not
    there is Vault's preflight 403: EACCES, no login."""
    v = value()
    vault.kv_put(mount, "p11/x", {"k": v})
    cfg = config(vault, tmp_path, {
        "s": {"backend": "vault", "ref": "p11/x", "field": "k"},
        "p": {"backend": "vault", "ref": "p11", "as": "prefix", "field": "k"}})
    cfg["backends"]["vault"]["kv"] = {"mount": mount, "version": "auto"}
    d = make_daemon(cfg)
    assert read(d, "s") == v.encode()
    assert os.listdir(d.path("p")) == ["x"]
    st = vault.stats()
    asked = [r for r in st["recent"] if r["path"].startswith("/v1/sys/internal/ui/mounts/")
             and r["token"] == "token"]
    assert [(r["path"], r["status"]) for r in asked] == [
        ("/v1/sys/internal/ui/mounts/" + mount, 200)]
    read_path = ("/v1/secret/data/p11/x" if ver == 2 else "/v1/kv/p11/x")
    assert any(r["path"] == read_path and r["status"] == 200 for r in st["recent"])
    assert "%s is a KV version %d mount" % (mount, ver) in d.log()

    other = tmp_path / "nomount"
    cfg = config(vault, other, {"s": {"backend": "vault", "ref": "p11/x", "field": "k"}})
    cfg["backends"]["vault"]["kv"] = {"mount": "nomount", "version": "auto"}
    bad = make_daemon(cfg, workdir=other)
    assert read_errno(bad, "s") == errno.EACCES
    assert "preflight capability check returned 403" in bad.log()
    assert logins(vault) == 2        # one per daemon: the 403 made none


# -- Vault HA --

@pytest.fixture
def ha(tmp_path, pki):
    v = VaultFake.start(tmp_path / "ha", pki, quiet=True, nodes=2,
                        config={"approle": approle()})
    yield v
    v.stop()


def ha_config(ha, tmp_path, secrets_, addresses=None):
    cfg = config(ha, tmp_path, secrets_)
    b = cfg["backends"]["vault"]
    del b["address"]
    b["addresses"] = addresses or list(ha.addrs)
    b["http"] = {"timeout": "5s", "retry_max": "200ms"}
    return cfg


def test_ha_first_node_sealed_every_read_through_the_second(make_daemon, ha, tmp_path):
    vals = {"s%d" % i: value() for i in range(5)}
    for n, v in vals.items():
        ha.kv_put("secret", "p12/" + n, {"k": v})
    ha.faults(sealed=True, node=0)
    ha.reset_stats()
    d = make_daemon(ha_config(ha, tmp_path, {
        n: {"backend": "vault", "ref": "p12/" + n, "field": "k"} for n in vals}))
    for n, v in vals.items():
        assert read(d, n) == v.encode()
    st = ha.stats()
    assert st["token_by_node"].get("1", 0) >= len(vals)
    # The sealed node said 503 to the first request only: the answering node goes first.
    assert st["by_node"].get("0", 0) == 1, st["by_node"]


def test_ha_redirect_to_a_listed_node_is_followed_with_the_certificate(make_daemon, ha,
                                                                       tmp_path):
    """Node 0 is a standby without request forwarding: 307 to node 1 (listed). Followed
    once; node 1 demands a client certificate (the fake's listener requires one), so the
    answer proves it was presented."""
    v = value()
    ha.kv_put("secret", "p13/x", {"k": v})
    ha.faults(standby={"mode": "redirect", "active": ha.addrs[1]}, node=0)
    d = make_daemon(ha_config(ha, tmp_path, {
        "s": {"backend": "vault", "ref": "p13/x", "field": "k"}}))
    assert read(d, "s") == v.encode()
    st = ha.stats()
    assert st["standby"].get("redirect", 0) >= 1
    served = [r for r in st["recent"] if r["path"] == "/v1/secret/data/p13/x"
              and r["status"] == 200]
    assert served and served[-1]["node"] == 1


def test_ha_redirect_to_an_unlisted_address_is_not_followed(make_daemon, ha, tmp_path,
                                                            pki):
    """A standby pointing at an address the config does not name (a second fake, counting
    every request): never followed, no token sent there; the read is EIO, logged."""
    other = VaultFake.start(tmp_path / "other", pki, quiet=True)
    try:
        v = value()
        ha.kv_put("secret", "p14/x", {"k": v})
        ha.faults(standby={"mode": "redirect", "active": other.addr}, node=0)
        d = make_daemon(ha_config(ha, tmp_path, {
            "s": {"backend": "vault", "ref": "p14/x", "field": "k"}},
            addresses=[ha.addrs[0]]))
        assert read_errno(d, "s") == errno.EIO
        st = other.stats()
        assert st["requests"] == 0 and st["token_by_node"] == {}, st
        assert "redirects are not followed" in d.log()
    finally:
        other.stop()


def test_ha_429_backs_off_on_its_node(make_daemon, ha, tmp_path):
    """A rate limit quota on node 0 (429, Retry-After 1): the request waits and is
    retried there, not sent to the other node; counted at the fake, not timed."""
    v = value()
    ha.kv_put("secret", "p15/x", {"k": v})
    d = make_daemon(ha_config(ha, tmp_path, {
        "s": {"backend": "vault", "ref": "p15/x", "field": "k"}}))
    ha.faults(rate_limit={"rate": 1, "interval": 1, "retry_after": 1})
    ha.reset_stats()
    assert read(d, "s") == v.encode()
    st = ha.stats()
    assert st["rate_limited"] >= 1
    assert st["by_node"].get("1", 0) == 0, st["by_node"]
