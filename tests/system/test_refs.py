"""One fetch per backend reference, and a version for every value (issue 16, items 2, 3).

A directory of 3 keys plus 2 `field` secrets on one Vault KV v2 ref are one backend answer:
one GET per refresh (counted at the fake), and after each of 20 rotations all five files
show the same `user.secretsfs.version` and a username/password pair of one version. The
rotation moment is made deterministic with the fake's "hold" fault: the refresh's GET waits
at the fake while the test reads every file, then the test releases it and reads again.
A KV v1 value has no version: the daemon makes one (a keyed digest), so a rewrite gives a
`rotate` audit record, a new version and the on_rotate signal, as for KV v2. A JSON
SecretString on AWS is one answer the same way.

Run: cd /work/main && SECRETSFS_BIN=BUILD/fuse/secretsfs /usr/bin/python3 -m pytest -q \
         tests/system/test_refs.py
"""
import json
import os
import re
import secrets
import signal
import threading
import time

import pytest

from test_ops import (HOST_RULE, Opener, audit_records, aws, aws_backend,  # noqa: F401
                      ctl, pki, read, vault, vault_backend, wait_for, with_audit)

XATTR = "user.secretsfs.version"


@pytest.fixture(autouse=True)
def _clear_vault_faults(request):
    """No hold outlives its test."""
    yield
    if "vault" in request.fixturenames:
        request.getfixturevalue("vault").clear_faults()


FILES = ("db/username", "db/password", "db/host", "user", "pass")


def version(d, name):
    return os.getxattr(d.path(name), XATTR).decode()


def snapshot(d):
    """Each file's version and bytes."""
    return {n: (version(d, n), read(d, n)) for n in FILES}


def assert_one_version(snap, ver, i):
    """All five files are version ver, and the pair is the one written with it."""
    assert {v for v, _ in snap.values()} == {ver}, snap.keys()
    assert snap["db/username"][1] == snap["user"][1] == b"user-%d" % i
    assert snap["db/password"][1] == snap["pass"][1] == b"pass-%d" % i
    assert snap["db/host"][1] == b"db.example"


def test_one_get_per_refresh_and_one_version_across_files(make_daemon, vault, tmp_path):
    key = "refs/db-%s" % secrets.token_hex(4)
    get = "GET /v1/secret/data/" + key

    def put(i):
        return str(vault.kv_put("secret", key, {"username": "user-%d" % i,
                                                "password": "pass-%d" % i,
                                                "host": "db.example"}))

    def gets():
        return vault.stats()["by_path"].get(get, 0)

    ver = put(0)
    # A long interval: only the test's refreshes fetch, never the scheduler.
    cfg = {"backends": {"vault": vault_backend(vault)},
           "secrets": {
               "db": {"backend": "vault", "ref": key, "as": "directory",
                      "refresh": "1h"},
               "user": {"backend": "vault", "ref": key, "field": "username",
                        "refresh": "1h"},
               "pass": {"backend": "vault", "ref": key, "field": "password",
                        "refresh": "1h"}},
           "rules": [HOST_RULE]}
    d = make_daemon(with_audit(cfg, tmp_path))
    before = gets()
    assert sorted(os.listdir(d.path("db"))) == ["host", "password", "username"]
    assert_one_version(snapshot(d), ver, 0)
    # Five files and the directory's listing: one request.
    assert gets() == before + 1

    for i in range(1, 21):
        old = ver
        ver = put(i)
        vault.faults(hold={"prefix": "/v1/secret/data/" + key, "count": 1})
        before = gets()
        done = []
        t = threading.Thread(target=lambda: done.append(
            ctl(d, "refresh", "db", check=False)))
        t.start()
        try:
            # The refresh's GET is at the fake, held: every file still shows
            # the old version whole.
            assert vault.release(count=0, wait_for=1) == 1
            assert_one_version(snapshot(d), old, i - 1)
        finally:
            vault.release()
            t.join(30)
        assert done and done[0].returncode == 0, done and done[0].stderr
        # Landed: every file shows the new version whole, from one GET.
        assert_one_version(snapshot(d), ver, i)
        assert gets() == before + 1, "round %d: %d GETs" % (i, gets() - before)
        assert vault.stats()["held"] >= i

    # Each file got its rotate record for each of the 20 versions, never torn:
    # the record names the version every file moved to.
    rot = [r for r in audit_records(tmp_path) if r["event"] == "rotate"]
    by_secret = {}
    for r in rot:
        by_secret.setdefault(r["secret"], []).append(r["new_version"])
    for name in FILES:
        assert by_secret.get(name) == [str(v) for v in range(2, 22)], name


def test_aws_json_secret_is_one_answer(make_daemon, aws):
    """A SecretString JSON on AWS has the same shape: one GetSecretValue per refresh."""
    key = "refs-aws-%s" % secrets.token_hex(4)

    def put(i):
        return aws.put_secret(key, string=json.dumps(
            {"username": "user-%d" % i, "password": "pass-%d" % i,
             "host": "db.example"}))["VersionId"]

    ver = put(0)
    cfg = {"backends": {"aws": aws_backend(aws)},
           "secrets": {
               "db": {"backend": "aws", "ref": key, "as": "directory", "refresh": "1h"},
               "user": {"backend": "aws", "ref": key, "field": "username",
                        "refresh": "1h"},
               "pass": {"backend": "aws", "ref": key, "field": "password",
                        "refresh": "1h"}},
           "rules": [HOST_RULE]}
    d = make_daemon(cfg)
    before = aws.count("GetSecretValue", key)
    assert_one_version(snapshot(d), ver, 0)
    assert aws.count("GetSecretValue", key) == before + 1
    for i in range(1, 4):
        ver = put(i)
        before = aws.count("GetSecretValue", key)
        assert ctl(d, "refresh", "user").returncode == 0
        assert_one_version(snapshot(d), ver, i)
        assert aws.count("GetSecretValue", key) == before + 1


def test_one_get_per_scheduled_refresh(make_daemon, vault):
    """Read hot, the five files are refreshed by the scheduler: one GET each time."""
    key = "refs/hot-%s" % secrets.token_hex(4)
    get = "GET /v1/secret/data/" + key
    vault.kv_put("secret", key, {"username": "u", "password": "p", "host": "h"})
    cfg = {"backends": {"vault": vault_backend(vault)},
           "secrets": {
               "db": {"backend": "vault", "ref": key, "as": "directory",
                      "refresh": "1s"},
               "user": {"backend": "vault", "ref": key, "field": "username",
                        "refresh": "1s"},
               "pass": {"backend": "vault", "ref": key, "field": "password",
                        "refresh": "1s"}},
           "rules": [HOST_RULE]}
    d = make_daemon(cfg)
    before = vault.stats()["by_path"].get(get, 0)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 4.0:
        for n in FILES:
            read(d, n)
        time.sleep(0.05)
    n = vault.stats()["by_path"].get(get, 0) - before
    # About one refresh a second of the one answer; six per second were one per file.
    assert 1 <= n <= 7, n


def test_kv1_rewrite_is_a_rotation(make_daemon, vault, tmp_path):
    key = "refs/v1-%s" % secrets.token_hex(4)
    vault.kv_put("kv", key, {"k": "first-" + secrets.token_hex(8)})
    b = vault_backend(vault)
    b["kv"] = {"mount": "kv", "version": 1}
    cfg = with_audit({"backends": {"vault": b},
                      "secrets": {"t": {"backend": "vault", "ref": key, "field": "k",
                                        "refresh": "1s",
                                        "on_rotate": {"signal": "SIGHUP"}}},
                      "rules": [HOST_RULE]}, tmp_path)
    d = make_daemon(cfg)
    opener = Opener(d.path("t"))
    try:
        first = opener.read()
        assert first.startswith(b"first-")
        v1 = version(d, "t")
        # A short digest, not the value, and the same on every read.
        assert re.fullmatch(r"[0-9a-f]{16}", v1), v1
        assert version(d, "t") == v1
        second = "second-" + secrets.token_hex(8)
        vault.kv_put("kv", key, {"k": second})
        # Nobody reads: on_rotate keeps it fresh, and tells the holder.
        assert wait_for(lambda: opener.signals, timeout=6), d.log()
        assert opener.signals == [signal.SIGHUP]
        assert opener.read() == second.encode()
        v2 = version(d, "t")
        assert re.fullmatch(r"[0-9a-f]{16}", v2) and v2 != v1
        rot = [r for r in audit_records(tmp_path) if r["event"] == "rotate"]
        assert [(r["secret"], r["old_version"], r["new_version"]) for r in rot] == \
            [("t", v1, v2)]
        text = (tmp_path / "audit.log").read_text() + d.log()
        assert second not in text and first.decode() not in text
    finally:
        opener.finish()
