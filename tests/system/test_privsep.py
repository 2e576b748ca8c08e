"""Privilege separation: the fetcher process, its user, capabilities and seccomp.

The daemon is three processes: the FUSE process (serves the mount, audits), the
privileged helper (mounts, repairs, restarts the fetcher, unmounts) and the fetcher
(talks to the backends). These tests run the fetcher as a real unprivileged user,
`secretsfs` (created here if missing), against the local Vault over mutual TLS and a
file backend, and read /proc to check what each process may do.

The seccomp test needs a binary built with -Dtest_hooks=true (tests/run-tests.sh
builds so): SIGUSR2 then makes the fetcher call unshare(2), outside its allow-list.

Run: cd /work/main && SECRETSFS_BIN=BUILD/fuse/secretsfs /usr/bin/python3 -m pytest -q \
         tests/system/test_privsep.py
"""
import errno
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import binary, require_fuse, write_private

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from vault_fixture import VaultFake, make_pki  # noqa: E402

USER = "secretsfs"
CAP_KILL = 1 << 5
CAP_IPC_LOCK = 1 << 14
SIGSYS = 31


@pytest.fixture(scope="module")
def fetch_user():
    require_fuse()
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", USER], check=True)
        pw = pwd.getpwnam(USER)
    assert pw.pw_uid != 0
    return pw.pw_uid, pw.pw_gid


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def vault(tmp_path_factory, pki):
    v = VaultFake.start(tmp_path_factory.mktemp("vault"), pki, quiet=True)
    yield v
    v.stop()


@pytest.fixture
def userdir(fetch_user):
    """The fetcher's own files: its TLS material and a file backend's directory,
    owned by its user and private, under a path that user can walk."""
    uid, gid = fetch_user
    base = tempfile.mkdtemp(prefix="secretsfs-privsep-")
    os.chmod(base, 0o755)
    own = os.path.join(base, "fetcher")
    os.mkdir(own, 0o700)
    os.chown(own, uid, gid)
    yield own
    shutil.rmtree(base, ignore_errors=True)


def give(path, uid, gid, text=None, src=None, mode=0o600):
    if src:
        shutil.copyfile(src, path)
    elif text is not None:
        with open(path, "w") as f:
            f.write(text)
    os.chmod(path, mode)
    os.chown(path, uid, gid)
    return path


def make_config(vault, userdir, fetch_user, tmp_path):
    """A config whose backends only the fetcher's user can use."""
    uid, gid = fetch_user
    tls = {}
    for key, src in (("ca_file", vault.ca), ("client_cert", vault.client_cert),
                     ("client_key", vault.client_key)):
        tls[key] = give(os.path.join(userdir, os.path.basename(src)), uid, gid,
                        src=src)
    files = os.path.join(userdir, "files")
    os.mkdir(files, 0o700)
    os.chown(files, uid, gid)
    values = {}
    for name in ("f1", "f2"):
        values[name] = "file-" + secrets.token_hex(12)
        give(os.path.join(files, name), uid, gid, text=values[name])
    for name in ("v1", "v2"):
        values[name] = "vault-" + secrets.token_hex(12)
        vault.kv_put("secret", "privsep/" + name, {"password": values[name]})
    key = write_private(tmp_path / "audit.key", os.urandom(32).hex() + "\n")
    audit = tmp_path / "audit.log"
    cfg = {
        "privsep": {"user": USER},
        "backends": {
            "vault": {"type": "vault", "address": vault.addr, "tls": tls,
                      "auth": {"method": "cert"}},
            "dev": {"type": "file", "dir": files},
        },
        "secrets": {
            "v1": {"backend": "vault", "ref": "privsep/v1", "field": "password"},
            "v2": {"backend": "vault", "ref": "privsep/v2", "field": "password"},
            "f1": {"backend": "dev", "ref": "f1"},
            "f2": {"backend": "dev", "ref": "f2"},
        },
        "rules": [{"id": "host", "match": {"host": True}, "allow": ["*"]}],
        "audit": {"file": str(audit), "key_file": str(key)},
    }
    return cfg, values, audit, key


def read(d, name):
    with open(d.path(name), "rb") as f:
        return f.read().decode()


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def children(pid, comm):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid and name == comm:
            found.append(int(entry))
    return found


def helper_of(d):
    h = children(d.pid, "secretsfs-priv")
    assert len(h) == 1, "expected one privileged helper under %d: %s" % (d.pid, h)
    return h[0]


def fetcher_of(d, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        f = children(helper_of(d), "secretsfs-fetch")
        if len(f) == 1:
            return f[0]
        time.sleep(0.05)
    raise AssertionError("no fetcher process under the helper")


def wait_new_fetcher(d, old, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        f = children(helper_of(d), "secretsfs-fetch")
        if len(f) == 1 and f[0] != old and "fetcher process %d started" % f[0] in d.log():
            return f[0]
        time.sleep(0.05)
    raise AssertionError("no new fetcher after %d:\n%s" % (old, d.log()))


def tcp_inodes():
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                inodes.add(line.split()[9])
    return inodes


def socket_inodes(pid):
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(link[8:-1])
    return out


def records(path):
    with open(path) as f:
        return [json.loads(l) for l in f]


def test_each_process_keeps_only_what_it_needs(make_daemon, vault, userdir,
                                               fetch_user, tmp_path):
    uid, gid = fetch_user
    cfg, values, _, _ = make_config(vault, userdir, fetch_user, tmp_path)
    d = make_daemon(cfg)
    # Both backends work through the unprivileged, sandboxed fetcher.
    assert read(d, "v1") == values["v1"]
    assert read(d, "f1") == values["f1"]

    fetcher = fetcher_of(d)
    st = proc_status(fetcher)
    assert st["Uid"] == [str(uid)] * 4
    assert st["Gid"] == [str(gid)] * 4
    assert st["Groups"] == []
    for k in ("CapEff", "CapPrm", "CapBnd"):
        assert int(st[k][0], 16) == CAP_IPC_LOCK, (k, st[k])
    assert st["CapAmb"] == ["0000000000000000"]
    assert st["NoNewPrivs"] == ["1"]
    assert st["Seccomp"] == ["2"]

    st = proc_status(d.pid)
    # uid 0 owns its root-owned files; of root's powers only these two stay.
    for k in ("CapEff", "CapPrm", "CapBnd"):
        assert int(st[k][0], 16) == CAP_KILL | CAP_IPC_LOCK, (k, st[k])
    assert st["NoNewPrivs"] == ["1"]
    assert st["Seccomp"] == ["2"]

    # The network is the fetcher's: it holds the TLS connection to Vault,
    # the FUSE process holds no TCP socket at all.
    tcp = tcp_inodes()
    assert socket_inodes(fetcher) & tcp
    assert not socket_inodes(d.pid) & tcp
    assert d.proc.poll() is None


def test_log_lines_name_their_process(make_daemon, vault, userdir, fetch_user,
                                      tmp_path):
    cfg, values, _, _ = make_config(vault, userdir, fetch_user, tmp_path)
    d = make_daemon(cfg)
    assert read(d, "v1") == values["v1"]
    lines = d.log().splitlines()
    # The Vault login happens in the fetcher; its line says so.
    assert any(ln.startswith("secretsfs[fetch]: vault backend vault: logged in "
                             "with cert auth") for ln in lines), lines
    # The FUSE process keeps the plain name.
    assert any(ln.startswith("secretsfs: fetcher process %d runs as %s"
                             % (fetcher_of(d), USER)) for ln in lines), lines
    assert not any(ln.startswith("secretsfs[fetch]: fetcher process")
                   for ln in lines), lines


def test_missing_user_is_a_clear_error(tmp_path, fetch_user):
    require_fuse()
    files = tmp_path / "files"
    files.mkdir(mode=0o700)
    cfg = write_private(tmp_path / "c.json", json.dumps({
        "privsep": {"user": "no-such-user-" + secrets.token_hex(3)},
        "backends": {"dev": {"type": "file", "dir": str(files)}},
        "secrets": {}}))
    mnt = tmp_path / "mnt"
    out = subprocess.run([binary(), "mount", "-f", "-c", str(cfg), str(mnt)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "privsep.user" in out.stderr and "useradd" in out.stderr


def test_kill9_fetcher_cached_reads_continue_then_restart(make_daemon, vault, userdir,
                                                         fetch_user, tmp_path):
    cfg, values, audit, _ = make_config(vault, userdir, fetch_user, tmp_path)
    d = make_daemon(cfg)
    assert read(d, "v1") == values["v1"]
    assert read(d, "f1") == values["f1"]
    old = fetcher_of(d)
    os.kill(old, signal.SIGKILL)
    # Cached secrets are served from the FUSE process, fetcher or not.
    for _ in range(50):
        assert read(d, "v1") == values["v1"]
        assert read(d, "f1") == values["f1"]
    new = wait_new_fetcher(d, old)
    # A secret never read before needs the new fetcher, and gets it.
    assert read(d, "v2") == values["v2"]
    assert read(d, "f2") == values["f2"]
    # It served, so it has dropped to its user like the first one.
    assert proc_status(new)["Uid"] == [str(fetch_user[0])] * 4
    assert d.proc.poll() is None
    log = d.log()
    assert "fetcher process %d killed by signal 9" % old in log
    recs = [r for r in records(audit) if r["event"] == "fetcher"]
    assert any(r["action"] == "exit" and "pid %d killed by signal 9" % old in r["reason"]
               for r in recs), recs
    assert any(r["action"] == "start" and "pid %d" % new in r["reason"] for r in recs), recs


def test_forbidden_syscall_kills_only_the_fetcher(make_daemon, vault, userdir,
                                                  fetch_user, tmp_path):
    cfg, values, audit, _ = make_config(vault, userdir, fetch_user, tmp_path)
    d = make_daemon(cfg)
    assert read(d, "f1") == values["f1"]
    helper = helper_of(d)
    old = fetcher_of(d)
    # Test builds: SIGUSR2 makes the fetcher call unshare(2).
    os.kill(old, signal.SIGUSR2)
    new = wait_new_fetcher(d, old)
    log = d.log()
    assert "fetcher process %d killed by signal %d (a system call outside its " \
        "seccomp allow-list)" % (old, SIGSYS) in log, log
    # Only the fetcher died: the mount kept serving, the helper is the same.
    assert d.proc.poll() is None
    assert helper_of(d) == helper
    assert read(d, "f1") == values["f1"]
    assert read(d, "v1") == values["v1"]
    recs = [r for r in records(audit) if r["event"] == "fetcher"]
    assert any(r["action"] == "exit" and "(seccomp)" in r["reason"] for r in recs), recs
    assert new != old


def test_stop_unmounts_and_every_process_exits(make_daemon, vault, userdir, fetch_user,
                                               tmp_path):
    cfg, values, _, _ = make_config(vault, userdir, fetch_user, tmp_path)
    d = make_daemon(cfg)
    assert read(d, "f1") == values["f1"]
    helper, fetcher = helper_of(d), fetcher_of(d)
    assert d.stop() == 0
    # Unmounted by the helper: the mountpoint is a plain directory again.
    with open("/proc/self/mountinfo") as f:
        assert os.path.realpath(d.mountpoint) not in f.read()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(os.path.exists("/proc/%d" % p)
                                              for p in (helper, fetcher)):
        time.sleep(0.05)
    for p in (helper, fetcher):
        try:
            with open("/proc/%d/stat" % p) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        assert state == "Z", "process %d still running after stop" % p
