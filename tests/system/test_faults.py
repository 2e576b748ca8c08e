"""Fault injection through a real mount: what the daemon does when the world breaks.

The fake Vault's fault switches (tests/fakes/vault_server.py: reset, handshake, slow,
revoke_tokens) and the OS (an unresolvable name, SIGKILL, RLIMIT_NOFILE) make the
faults; the daemon must answer each with a clean error or a retry, say so in its log
(and audit trail where it keeps one), and go on serving.

Covered elsewhere, not repeated here: 429/5xx retries, Retry-After, sealed, malformed
and oversized answers, unknown server CA, missing and expired client certificates
(test_vault.py); a revoked token logging in again (test_vault.py); a hung listener
that never starts TLS, and a backend outage served stale then EIO (test_ops.py); a
full audit filesystem failing closed and recovering (test_audit.py); a broken config
on SIGHUP (test_ops.py, and its garbage and key-path cases below); RLIMIT_MEMLOCK too
small at start (test_fs.py).

Run: SECRETSFS_BIN=BUILD/fuse/secretsfs /usr/bin/python3 -m pytest -q \
         tests/system/test_faults.py
"""
import errno
import json
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import time

import pytest

from conftest import write_private
from test_ops import (HOST_RULE, audit_records, ctl, file_config, read, read_errno,
                      vault_backend, wait_for, with_audit)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from vault_fixture import VaultFake, make_pki  # noqa: E402


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def vault(tmp_path_factory, pki):
    v = VaultFake.start(tmp_path_factory.mktemp("vault"), pki, quiet=True)
    yield v
    v.stop()


@pytest.fixture(autouse=True)
def _reset_vault(request):
    yield
    if "vault" in request.fixturenames:
        v = request.getfixturevalue("vault")
        v.clear_faults()
        v.configure(cert={"default": {"certificate_file": v.pki.ca,
                                      "policies": ["default"]}})


def value(n=24):
    return "val-" + secrets.token_hex(n)


def one_secret(vault, ref, tmp_path=None, backend=None, **secret):
    s = {"backend": "vault", "ref": ref, "field": "k"}
    s.update(secret)
    cfg = {"backends": {"vault": backend or vault_backend(vault)},
           "secrets": {"s": s}, "rules": [HOST_RULE]}
    return with_audit(cfg, tmp_path) if tmp_path else cfg


def fetch_errors(d):
    return [ln for ln in d.log().splitlines() if ": backend vault: " in ln]


def status(d):
    """By the socket, not the config: the config may be garbage by now."""
    return json.loads(ctl(d, "status", "--json", sock=True).stdout)


def fd_count(pid):
    """The daemon's descriptors, less the identity cache's pins: a cached
    caller holds its /proc/<tid>/comm open until it is evicted or found
    gone (broker/access/identity.c), which is not a leak."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if not re.fullmatch(r"/proc/\d+/comm", link):
            n += 1
    return n


def assert_serving(d):
    """Alive, and the control socket answers."""
    assert d.proc.poll() is None, d.log()
    assert status(d)["readers"]["open_files"] >= 0


# --------------------------------------------------------------------------- network

def test_reset_mid_response_is_retried_then_eio_and_named(make_daemon, vault):
    v = value()
    ref = "faults/reset"
    vault.kv_put("secret", ref, {"k": v})
    path = "/v1/secret/data/" + ref
    d = make_daemon(one_secret(vault, ref, backend=vault_backend(vault, max_retries=1)))
    # One reset: the request is sent again on a new connection and served.
    vault.reset_stats()
    vault.faults(reset={"count": 1, "prefix": path})
    assert read(d, "s") == v.encode()
    st = vault.stats()
    assert st["faults"]["reset"] == 1 and st["by_path"]["GET " + path] == 2
    # Every answer cut: EIO once the retries are spent, and the log says what broke.
    d2 = make_daemon(one_secret(vault, ref, backend=vault_backend(vault, max_retries=1)),
                     workdir=d.workdir / "d2")
    vault.reset_stats()
    vault.faults(reset={"prefix": path})
    assert read_errno(d2, "s") == errno.EIO
    assert vault.stats()["faults"]["reset"] == 2
    errs = fetch_errors(d2)
    assert errs and all(path in e for e in errs), d2.log()
    # A cut answer is not a handshake failure: the log must not send the
    # operator to the certificates.
    assert not any("handshake" in e for e in errs), errs
    assert_serving(d2)
    vault.clear_faults()
    assert read(d2, "s") == v.encode()
    assert v not in d.log() + d2.log()


def test_tls_handshake_refused_is_eio_then_recovers(make_daemon, vault):
    v = value()
    ref = "faults/hs"
    vault.kv_put("secret", ref, {"k": v})
    before = vault.stats()["handshake_failures"].get("injected", 0)
    # The fault is per connection, and the test's own control requests are
    # connections too: exactly as many as the daemon's one login attempt
    # makes (no retries), so the next control request gets through.
    vault.faults(handshake={"count": 1})
    d = make_daemon(one_secret(vault, ref, backend=vault_backend(vault, max_retries=0)))
    assert read_errno(d, "s") == errno.EIO
    assert vault.stats()["handshake_failures"]["injected"] == before + 1
    log = d.log()
    assert "login with cert auth failed" in log
    # OpenSSL sees the close either as EOF during the handshake or as a
    # syscall error: the daemon names the handshake either way.
    hs = [ln for ln in log.splitlines() if "/v1/auth/cert/login: TLS" in ln]
    assert hs and all("handshake" in ln for ln in hs), log
    assert_serving(d)
    assert status(d)["backends"][0]["errors"] >= 1
    assert vault.faults()["faults"] == []
    assert read(d, "s") == v.encode()


def test_unresolvable_backend_name_is_eio_others_still_served(make_daemon, vault):
    good = value()
    vault.kv_put("secret", "faults/dns", {"k": good})
    lost = vault_backend(vault, max_retries=1, timeout="5s")
    # RFC 6761: .invalid never resolves.
    lost["address"] = "https://vault-%s.invalid:8200" % secrets.token_hex(4)
    d = make_daemon({"backends": {"vault": vault_backend(vault), "lost": lost},
                     "secrets": {"good": {"backend": "vault", "ref": "faults/dns",
                                          "field": "k"},
                                 "gone": {"backend": "lost", "ref": "faults/dns",
                                          "field": "k"}},
                     "rules": [HOST_RULE]})
    assert read_errno(d, "gone") == errno.EIO
    assert "cannot resolve the host name" in d.log()
    assert read(d, "good") == good.encode()
    be = {b["name"]: b for b in status(d)["backends"]}
    assert be["lost"]["errors"] >= 1 and be["vault"]["errors"] == 0, be
    assert_serving(d)


def test_stalled_backend_is_bounded_by_the_http_timeout(make_daemon, vault):
    v = value()
    ref = "faults/stall"
    path = "/v1/secret/data/" + ref
    vault.kv_put("secret", ref, {"k": v})
    stall = 30
    d = make_daemon(one_secret(vault, ref, backend=vault_backend(
        vault, timeout="1500ms", max_retries=0)))
    vault.faults(slow={"seconds": stall, "count": 1, "prefix": path})
    t = time.monotonic()
    err = read_errno(d, "s")
    took = time.monotonic() - t
    assert err == errno.EIO
    # The fake held the request: the reader was let go by the daemon's
    # timeout, not by an answer.
    assert vault.stats()["faults"]["slow"] >= 1
    assert took < stall, took
    assert "%s: timed out after 1500 ms" % path in d.log()
    assert_serving(d)
    # The stalled request still sleeps in the fake; once the daemon stops
    # remembering the slow failure (as long as it took), a new one is served.
    assert wait_for(lambda: read_errno(d, "s") == 0, timeout=10, step=0.2)
    assert read(d, "s") == v.encode()


# --------------------------------------------------------------------------- credentials

def test_credentials_revoked_mid_run_relogin_or_clean_failure(make_daemon, vault,
                                                               tmp_path, pki):
    v1, v2, v3 = value(), value(), value()
    ref = "faults/revoke"
    vault.kv_put("secret", ref, {"k": v1})
    cfg = one_secret(vault, ref, tmp_path, backend=vault_backend(vault, max_retries=0),
                     refresh="1s")
    cfg["cache"] = {"max_stale": "1s"}
    d = make_daemon(cfg)
    assert read(d, "s") == v1.encode()

    def logins(outcome):
        return [r for r in audit_records(tmp_path) if r["event"] == "auth"
                and r.get("action") == "login" and r["outcome"] == outcome]
    assert len(logins("ok")) == 1
    # Revoked: the daemon logs in again, and the trail has the second login.
    vault.kv_put("secret", ref, {"k": v2})
    assert vault.revoke_tokens() >= 1
    assert wait_for(lambda: read(d, "s") == v2.encode(), timeout=8)
    assert len(logins("ok")) == 2
    # Revoked, and the role no longer takes our certificate: a clean failure.
    vault.configure(cert={"default": {"certificate_file": pki.other_ca,
                                      "policies": ["default"]}})
    vault.kv_put("secret", ref, {"k": v3})
    assert vault.revoke_tokens() >= 1
    # Refused credentials are EACCES (as for bad AppRole credentials), once
    # the cached value has outlived max_stale.
    assert wait_for(lambda: read_errno(d, "s") != 0, timeout=10, step=0.2)
    assert read_errno(d, "s") == errno.EACCES
    assert "login with cert auth failed: Vault answered 400" in d.log()
    failed = logins("error")
    assert failed and failed[-1]["backend"] == "vault" and failed[-1]["method"] == "cert"
    assert failed[-1]["reason"] == "credentials refused"
    errs = [r for r in audit_records(tmp_path) if r["event"] == "backend_error"
            and r["secret"] == "s"]
    assert errs and errs[-1]["errno"] == errno.EACCES, "the failed fetch is not in the trail"
    assert_serving(d)
    # The role takes our certificate again: served without a restart.
    vault.configure(cert={"default": {"certificate_file": pki.ca,
                                      "policies": ["default"]}})
    assert wait_for(lambda: read_errno(d, "s") == 0, timeout=8, step=0.2)
    assert read(d, "s") == v3.encode()
    log = d.log()
    for v in (v1, v2, v3):
        assert v not in log


# --------------------------------------------------------------------------- config

def test_garbage_config_on_sighup_keeps_serving_and_names_the_place(
        make_daemon, secrets_dir, tmp_path):
    cfg = with_audit(file_config(secrets_dir, {"a": b"alpha"}), tmp_path)
    d = make_daemon(cfg)
    assert read(d, "a") == b"alpha"
    # Not JSON at all, past the first line: the line is named.
    write_private(d.config_path, '{\n  "backends": {\n' + "\x00\xff garbage " * 8)
    os.kill(d.pid, signal.SIGHUP)
    assert wait_for(lambda: d.log().count("still running on the previous") == 1)
    err = [ln for ln in d.log().splitlines() if "still running on the previous" in ln][0]
    assert "%s:3:" % d.config_path in err and "invalid JSON" in err, err
    assert read(d, "a") == b"alpha"
    assert status(d)["reloads"] == {"ok": 0, "error": 1}
    # JSON, with a value of the wrong kind: the key path is named.
    bad = json.loads(json.dumps(cfg))
    bad["secrets"]["a"]["refresh"] = "soon"
    write_private(d.config_path, json.dumps(bad, indent=2))
    os.kill(d.pid, signal.SIGHUP)
    assert wait_for(lambda: d.log().count("still running on the previous") == 2)
    err = [ln for ln in d.log().splitlines() if "still running on the previous" in ln][1]
    assert "secrets.a.refresh" in err, err
    assert read(d, "a") == b"alpha"
    assert status(d)["reloads"] == {"ok": 0, "error": 2}
    assert ctl(d, "health", sock=True).returncode == 0
    assert [r["outcome"] for r in audit_records(tmp_path) if r["event"] == "reload"] \
        == ["error", "error"]


# --------------------------------------------------------------------------- readers

KILLABLE = r"""
import sys
print("opening", flush=True)
with open(sys.argv[1], "rb") as f:
    f.read()
"""


def test_reader_killed_during_a_slow_first_fetch(make_daemon, vault):
    v = value()
    ref = "faults/killed"
    path = "/v1/secret/data/" + ref
    vault.kv_put("secret", ref, {"k": v})
    vault.kv_put("secret", "faults/warm", {"k": value()})
    cfg = one_secret(vault, ref)
    cfg["secrets"]["warm"] = {"backend": "vault", "ref": "faults/warm", "field": "k"}
    d = make_daemon(cfg)
    read(d, "warm")         # logged in, a connection in the pool
    fds = fd_count(d.pid)
    vault.reset_stats()
    vault.faults(slow={"seconds": 3, "count": 1, "prefix": path})
    readers = [subprocess.Popen([sys.executable, "-c", KILLABLE, d.path("s")],
                                stdout=subprocess.PIPE, text=True) for _ in range(4)]
    for r in readers:
        assert r.stdout.readline() == "opening\n"
    # Every reader is blocked in open(2) behind the one held request.
    assert wait_for(lambda: vault.stats()["faults"].get("slow") == 1, timeout=5)
    time.sleep(0.2)
    assert all(r.poll() is None for r in readers)
    for r in readers:
        r.kill()
    for r in readers:
        assert r.wait(10) == -signal.SIGKILL
        r.stdout.close()
    assert_serving(d)
    # The fetch finishes on its own; its value is cached and served.
    assert read(d, "s") == v.encode()
    assert vault.stats()["by_path"]["GET " + path] == 1
    assert wait_for(lambda: status(d)["readers"]["open_files"] == 0)
    # No handle left behind by the interrupted opens (one more descriptor
    # is allowed; the connections themselves are the fetcher's).
    assert fd_count(d.pid) <= fds + 1, (fds, fd_count(d.pid))
    assert read(d, "warm")


def test_1000_fds_held_across_a_rotation_keep_the_old_value(make_daemon, vault):
    n = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 200
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    ref = "faults/held"
    # Large enough that a read in pieces could mix two versions.
    old, new = value(3000), value(3000)
    vault.kv_put("secret", ref, {"k": old})
    d = make_daemon(one_secret(vault, ref, refresh="1s"))
    held = []
    try:
        for _ in range(n):
            held.append(os.open(d.path("s"), os.O_RDONLY))
        assert status(d)["readers"]["open_files"] == n
        vault.kv_put("secret", ref, {"k": new})
        assert wait_for(lambda: read(d, "s") == new.encode(), timeout=10)
        for fd in held:
            got = b""
            while True:
                chunk = os.read(fd, 1000)
                if not chunk:
                    break
                got += chunk
            assert got == old.encode(), "a held fd saw %s" % (
                "the new value" if got == new.encode() else "a torn value")
        assert read(d, "s") == new.encode()
    finally:
        for fd in held:
            os.close(fd)
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert wait_for(lambda: status(d)["readers"]["open_files"] == 0)
    assert_serving(d)
