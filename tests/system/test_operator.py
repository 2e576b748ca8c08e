"""The operator's path (issue 20): what a person who makes a mistake is
told, without -f as with it, and what check-config, explain and status
say before and after a rollout."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import binary, is_mounted, require_fuse, write_private

VALUES = {"db": b"s3cret-db\n", "api": b"tok-api\n"}


def file_config(secrets_dir, **extra):
    for name, value in VALUES.items():
        (secrets_dir / name).write_bytes(value)
    cfg = {
        "backends": {"dev": {"type": "file", "dir": str(secrets_dir)}},
        "secrets": {
            "db_password": {"backend": "dev", "ref": "db", "mode": "0440"},
            "api_token": {"backend": "dev", "ref": "api", "mode": "0444"},
        },
        "rules": [{"id": "host", "match": {"host": True}, "allow": ["*"]}],
    }
    cfg.update(extra)
    return cfg


def _family(config_path):
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read()
        except OSError:
            continue
        if str(config_path).encode() in argv and b"mount" in argv:
            out.append(int(pid))
    return out


def mount_detached(d, *args, timeout=60):
    """`secretsfs mount -c FILE` without -f, the way a person runs it."""
    r = subprocess.run([binary(), "mount", "-c", str(d.config_path)]
                       + list(args), capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return r


def stop_family(d):
    for pid in _family(d.config_path):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while _family(d.config_path) and time.monotonic() < deadline:
        time.sleep(0.05)


# --- 1. start-up errors reach the person who started it -----------------

def test_without_f_a_missing_config_file_is_said_on_stderr(tmp_path):
    require_fuse()
    missing = tmp_path / "nope.json"
    r = subprocess.run([binary(), "mount", "-c", str(missing)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "%s: cannot open: No such file or directory" % missing in r.stderr


def test_without_f_an_unknown_key_is_said_with_its_place(make_daemon,
                                                          secrets_dir):
    cfg = file_config(secrets_dir)
    cfg["secrets"]["db_password"]["moed"] = "0440"
    d = make_daemon(cfg, start=False)
    r = mount_detached(d)
    assert r.returncode == 1
    assert str(d.config_path) in r.stderr
    assert "secrets.db_password.moed" in r.stderr
    assert not _family(d.config_path)


def test_without_f_a_non_empty_mountpoint_is_refused_and_said(
        make_daemon, secrets_dir, tmp_path):
    d = make_daemon(file_config(secrets_dir), start=False)
    os.makedirs(d.mountpoint, exist_ok=True)
    with open(os.path.join(d.mountpoint, "keep-me"), "w") as f:
        f.write("x")
    try:
        r = mount_detached(d)
        assert r.returncode == 1, r.stderr
        assert ('mountpoint %s is not empty (it holds "keep-me")'
                % d.mountpoint) in r.stderr
        assert not is_mounted(d.mountpoint)
        # What was there is still there, not hidden.
        assert os.listdir(d.mountpoint) == ["keep-me"]
    finally:
        stop_family(d)
        os.unlink(os.path.join(d.mountpoint, "keep-me"))
    # And -f says the same.
    with open(os.path.join(d.mountpoint, "keep-me"), "w") as f:
        f.write("x")
    try:
        r = subprocess.run([binary(), "mount", "-f", "-c", str(d.config_path)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1
        assert "is not empty" in r.stderr
    finally:
        os.unlink(os.path.join(d.mountpoint, "keep-me"))


def test_without_f_a_wrong_control_socket_path_is_said_and_it_serves(
        make_daemon, secrets_dir, tmp_path):
    sock = tmp_path / "no-such-dir" / "ctl.sock"
    d = make_daemon(file_config(secrets_dir,
                                control={"socket": str(sock)}), start=False)
    try:
        r = mount_detached(d)
        assert r.returncode == 0, r.stderr
        assert ("control socket: %s: its directory does not exist "
                "(No such file or directory); create it or fix "
                "control.socket; status, metrics and health are not "
                "available" % sock) in r.stderr
        assert "serving 2 secrets on %s" % d.mountpoint in r.stderr
        with open(d.path("api_token"), "rb") as f:
            assert f.read() == VALUES["api"]
    finally:
        stop_family(d)
    assert not is_mounted(d.mountpoint)


def test_without_syslog_it_says_so_once_and_logs_to_stderr(
        make_daemon, secrets_dir, tmp_path):
    """This host has no /dev/log (or the test hides it in a mount
    namespace): the daemon says so once, before-serving lines arrive
    through the readiness pipe, and a pipe on stderr is let go of with a
    last line saying the log ends there."""
    d = make_daemon(file_config(secrets_dir), start=False)
    prefix = []
    if os.path.exists("/dev/log"):
        prefix = ["unshare", "-m", "sh", "-c",
                  'mount -t tmpfs none /dev/log 2>/dev/null || '
                  'mount --bind /dev/null /dev/log; exec "$@"', "sh"]
    try:
        r = subprocess.run(prefix + [binary(), "mount", "-c",
                                     str(d.config_path)],
                           capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        assert r.stderr.count("no syslog socket at /dev/log") == 1, r.stderr
        assert "logging to stderr" in r.stderr
        assert "serving 2 secrets on %s" % d.mountpoint in r.stderr
        assert "no syslog and stderr is a pipe: the daemon's log ends " \
            "here" in r.stderr
    finally:
        stop_family(d)

    # With a file on stderr the daemon keeps logging there after serving.
    logf = tmp_path / "stderr.log"
    try:
        with open(logf, "w") as f:
            r = subprocess.run(prefix + [binary(), "mount", "-c",
                                         str(d.config_path)],
                               stdout=f, stderr=f, timeout=60,
                               stdin=subprocess.DEVNULL)
        assert r.returncode == 0, logf.read_text()
        pids = _family(d.config_path)
        assert pids
    finally:
        stop_family(d)
    text = logf.read_text()
    assert text.count("no syslog socket at /dev/log") == 1, text
    assert "serving 2 secrets" in text
    # Written by the daemon itself, after it detached.
    assert "SIGTERM: stopping" in text


# --- 2. check-config runs every check mount runs ------------------------

FETCH_USER = "secretsfs"


@pytest.fixture
def fetch_user():
    require_fuse()
    import pwd
    try:
        pw = pwd.getpwnam(FETCH_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", FETCH_USER], check=True)
        pw = pwd.getpwnam(FETCH_USER)
    assert pw.pw_uid != 0
    return pw.pw_uid, pw.pw_gid


@pytest.fixture
def walkable(tmp_path):
    """A 0755 directory any user can walk to (pytest's are 0700)."""
    import shutil
    import tempfile
    base = tempfile.mkdtemp(prefix="secretsfs-cc-")
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def check_config(path, *args):
    return subprocess.run([binary(), "check-config"] + list(args)
                          + [str(path)], capture_output=True, text=True,
                          timeout=30)


def write_config(tmp_path, cfg, name="c.json"):
    return write_private(tmp_path / name, json.dumps(cfg, indent=1))


def audit_key(path, mode=0o600):
    write_private(path, os.urandom(32).hex() + "\n", mode)
    return str(path)


def base_config(secrets_dir, tmp_path, **extra):
    cfg = file_config(secrets_dir)
    cfg["mount"] = {"path": str(tmp_path / "mnt")}
    cfg["privsep"] = {"user": "root"}
    cfg.update(extra)
    return cfg


def test_check_config_passes_what_mount_accepts(secrets_dir, tmp_path):
    cfg = base_config(secrets_dir, tmp_path, audit={
        "file": str(tmp_path / "audit.log"),
        "key_file": audit_key(tmp_path / "audit.key")})
    r = check_config(write_config(tmp_path, cfg))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.endswith(": ok: 1 backend, 2 secrets, mount %s\n"
                             % (tmp_path / "mnt"))


def test_check_config_refuses_a_missing_or_shared_audit_key(
        make_daemon, secrets_dir, tmp_path):
    key = tmp_path / "audit.key"
    cfg = base_config(secrets_dir, tmp_path, audit={
        "file": str(tmp_path / "audit.log"), "key_file": str(key)})
    path = write_config(tmp_path, cfg)
    r = check_config(path)
    assert r.returncode == 1
    assert ("%s: audit.key_file: audit key file %s: No such file or "
            "directory\n" % (path, key)) in r.stderr
    assert "%s: 1 error: mount would refuse to start" % path in r.stderr
    assert ": ok:" not in r.stdout
    # The document alone is fine.
    r = check_config(path, "--document")
    assert r.returncode == 0 and ": ok: " in r.stdout

    audit_key(key, mode=0o644)
    r = check_config(path)
    assert r.returncode == 1
    want = ("audit.key_file: audit key file %s: mode 0644 lets group or "
            "other access it; run `chmod 600 %s`" % (key, key))
    assert want in r.stderr
    # The path once, not twice.
    assert r.stderr.count(str(key)) == 2, r.stderr
    # And mount refuses it, with the same words.
    cfg["mount"] = {}
    d = make_daemon(cfg, start=False)
    m = subprocess.run([binary(), "mount", "-f", "-c", str(d.config_path)],
                       capture_output=True, text=True, timeout=60)
    assert m.returncode == 1
    assert "audit key file %s: mode 0644" % key in m.stderr


def test_check_config_opens_the_client_key_as_the_fetcher_user(
        make_daemon, secrets_dir, tmp_path, fetch_user, walkable):
    uid, gid = fetch_user
    cert = os.path.join(walkable, "client.crt")
    key = os.path.join(walkable, "client.key")
    with open(cert, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\n")
    os.chmod(cert, 0o644)
    with open(key, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\n")
    os.chmod(key, 0o600)   # root's: the fetcher user cannot open it
    cfg = {
        "mount": {"path": str(tmp_path / "mnt")},
        "privsep": {"user": FETCH_USER},
        "backends": {"v": {"type": "vault",
                           "address": "https://127.0.0.1:8200",
                           "tls": {"client_cert": cert, "client_key": key},
                           "auth": {"method": "cert"}}},
        "secrets": {"db": {"backend": "v", "ref": "app/db"}},
        "rules": [{"match": {"host": True}, "allow": ["db"]}],
    }
    path = write_config(tmp_path, cfg)
    r = check_config(path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert ("%s: backends.v: client key %s: Permission denied (as "
            "privsep.user %s, uid %u)\n" % (path, key, FETCH_USER, uid)) \
        in r.stderr
    # Given to the fetcher's user, it passes.
    os.chown(key, uid, gid)
    r = check_config(path)
    assert r.returncode == 0, r.stderr


def test_check_config_refuses_a_non_empty_mountpoint(secrets_dir, tmp_path):
    (tmp_path / "mnt").mkdir()
    (tmp_path / "mnt" / "left-over").write_text("x")
    path = write_config(tmp_path, base_config(secrets_dir, tmp_path))
    r = check_config(path)
    assert r.returncode == 1
    assert ('mount.path: mountpoint %s is not empty (it holds "left-over")'
            % (tmp_path / "mnt")) in r.stderr


def test_check_config_warns_about_rules_that_can_never_match(
        secrets_dir, tmp_path):
    cfg = base_config(secrets_dir, tmp_path)
    cfg["rules"] = [
        {"id": "web", "match": {"container_name": "web-*"},
         "allow": ["api_token"]},
        {"id": "typo", "match": {"host": True}, "allow": ["db_pasword"]},
        {"id": "gone", "match": {"host": True}, "allow": ["stripe_*"]},
        {"id": "ok", "match": {"host": True}, "allow": ["db_*", "api_token"]},
    ]
    path = write_config(tmp_path, cfg)
    r = check_config(path)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines == [
        '%s: warning: rules[0]: rule "web" matches on container_name, '
        "image or label, which only the runtime's Engine API knows: "
        "without runtime.socket it can never match" % path,
        '%s: warning: rules[1]: rule "typo": allow "db_pasword" names no '
        'configured secret (did you mean "db_password"?)' % path,
        '%s: warning: rules[2]: rule "gone": allow "stripe_*" names no '
        "configured secret" % path,
    ], r.stderr
    assert r.stdout.endswith("(with warnings)\n")


def test_check_config_warns_about_a_control_socket_it_cannot_make(
        secrets_dir, tmp_path):
    sock = tmp_path / "nodir" / "ctl.sock"
    cfg = base_config(secrets_dir, tmp_path, control={"socket": str(sock)})
    r = check_config(write_config(tmp_path, cfg))
    assert r.returncode == 0
    assert ("warning: control.socket: %s: its directory does not exist; "
            "create it or fix control.socket" % sock) in r.stderr


def test_did_you_mean_for_keys_and_commands(secrets_dir, tmp_path):
    cfg = base_config(secrets_dir, tmp_path)
    cfg["secrets"]["db_password"]["moed"] = "0440"
    r = check_config(write_config(tmp_path, cfg))
    assert r.returncode == 1
    assert 'secrets.db_password.moed: unknown key (did you mean "mode"?)' \
        in r.stderr
    r = subprocess.run([binary(), "chek-config"], capture_output=True,
                       text=True)
    assert r.returncode == 2
    assert 'unknown command "chek-config" (did you mean "check-config"?)' \
        in r.stderr
    r = subprocess.run([binary(), "frobnicate"], capture_output=True,
                       text=True)
    assert r.returncode == 2
    assert 'unknown command "frobnicate"\n' in r.stderr


# --- 3 and 4. the mode: refused by the daemon, audited, and explained ---

PROBE = ("import os, sys\n"
         "try:\n"
         "    fd = os.open(sys.argv[1], os.O_RDONLY)\n"
         "    os.read(fd, 64); os.close(fd); print('ok')\n"
         "except OSError as e:\n"
         "    print(e.errno)\n")


def as_user(uid, gid, groups=()):
    def demote():
        os.setgroups(list(groups))
        os.setgid(gid)
        os.setuid(uid)
    return demote


def probe(path, uid=None, gid=None, groups=(), prefix=()):
    kw = {}
    if uid is not None:
        kw["preexec_fn"] = as_user(uid, gid, groups)
    r = subprocess.run(list(prefix) + ["/usr/bin/python3", "-c", PROBE, path],
                       capture_output=True, text=True, timeout=30, **kw)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def can_access(path, mode, uid, gid, groups=()):
    r = subprocess.run(["/usr/bin/python3", "-c",
                        "import os, sys; print(os.access(sys.argv[1], %d))"
                        % mode, path], capture_output=True, text=True,
                       timeout=30, preexec_fn=as_user(uid, gid, groups))
    assert r.returncode == 0, r.stderr
    return r.stdout.strip() == "True"


def audit_records(tmp_path):
    with open(tmp_path / "audit.log") as f:
        return [json.loads(line) for line in f if line.strip()]


def mode_config(secrets_dir, tmp_path):
    write_private(tmp_path / "audit.key", os.urandom(32).hex() + "\n")
    (secrets_dir / "db.json").write_bytes(b'{"user": "app", "pw": "p4ss"}')
    cfg = file_config(secrets_dir)
    cfg["secrets"]["db_password"].update({"mode": "0440", "uid": 0,
                                          "gid": 1500})
    cfg["secrets"]["owned"] = {"backend": "dev", "ref": "api",
                               "mode": "0400", "uid": 1000, "gid": 1000}
    cfg["secrets"]["db"] = {"backend": "dev", "ref": "db.json",
                            "as": "directory", "mode": "0440", "uid": 0,
                            "gid": 1500}
    cfg["audit"] = {"file": str(tmp_path / "audit.log"),
                    "key_file": str(tmp_path / "audit.key"),
                    "flush_interval": 0}
    return cfg


def opens_of(tmp_path, secret):
    return [r for r in audit_records(tmp_path)
            if r["event"] == "access" and r["secret"] == secret]


def explain_pid(d, pid):
    r = subprocess.run([binary(), "explain", "-c", str(d.config_path),
                        "--pid", str(pid)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return r


def sleeper(uid=None, gid=None, groups=(), prefix=()):
    kw = {}
    if uid is not None:
        kw["preexec_fn"] = as_user(uid, gid, groups)
    p = subprocess.Popen(list(prefix) + ["sleep", "60"], **kw)
    # Wait for the exec (the child's comm becomes sleep).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/comm" % p.pid) as f:
                if f.read().strip() == "sleep":
                    break
        except OSError:
            pass
        time.sleep(0.01)
    return p


def row(out, name):
    return next(l for l in out.splitlines() if l.split()[:1] == [name])


def test_a_mode_refused_open_is_one_audited_deny(make_daemon, secrets_dir,
                                                  tmp_path):
    d = make_daemon(mode_config(secrets_dir, tmp_path))
    path = d.path("db_password")
    # Attack: a uid the mode refuses (0440 root:1500; 10001 is neither).
    assert probe(path, 10001, 10001) == str(13)
    recs = opens_of(tmp_path, "db_password")
    assert len(recs) == 1, recs
    r = recs[0]
    assert (r["outcome"], r["reason"], r["errno"], r["rule"], r["uid"],
            r["gid"], r["version"]) == \
        ("deny", "mode", 13, "host", 10001, 10001, None)
    # stat and access(2) as before: the attributes are visible, R_OK is not.
    st = subprocess.run(["stat", "-c", "%a %u %g", path], capture_output=True,
                        text=True, preexec_fn=as_user(10001, 10001))
    assert st.stdout.split() == ["440", "0", "1500"], st.stderr
    assert not can_access(path, os.R_OK, 10001, 10001)
    assert can_access(path, os.F_OK, 10001, 10001)
    assert can_access(d.path("api_token"), os.R_OK, 10001, 10001)
    # Allowed opens carry no reason: the other records are unchanged.
    assert probe(d.path("api_token"), 10001, 10001) == "ok"
    ok = opens_of(tmp_path, "api_token")[-1]
    assert ok["outcome"] == "allow" and "reason" not in ok


def test_a_supplementary_group_is_honoured(make_daemon, secrets_dir,
                                          tmp_path):
    d = make_daemon(mode_config(secrets_dir, tmp_path))
    path = d.path("db_password")
    # Only the supplementary group 1500 lets 10002 in (primary 10002).
    assert probe(path, 10002, 10002, groups=[1500]) == "ok"
    assert can_access(path, os.R_OK, 10002, 10002, groups=[1500])
    assert probe(path, 10002, 10002, groups=[1501]) == "13"
    outcomes = [(r["uid"], r["outcome"], r.get("reason"))
                for r in opens_of(tmp_path, "db_password")]
    assert outcomes == [(10002, "allow", None), (10002, "deny", "mode")]
    # The owner's bits decide for the owner, whatever the group's say.
    assert probe(d.path("owned"), 1000, 1000) == "ok"
    assert probe(d.path("owned"), 1001, 1000) == "13"
    # A directory secret: search and read of 0550 root:1500.
    assert probe(d.path("db/user"), 10001, 10001) == "13"
    assert probe(d.path("db/user"), 10002, 10002, groups=[1500]) == "ok"
    ls = subprocess.run(["ls", d.path("db")], capture_output=True, text=True,
                        preexec_fn=as_user(10001, 10001))
    assert ls.returncode != 0 and "Permission denied" in ls.stderr
    ls = subprocess.run(["ls", d.path("db")], capture_output=True, text=True,
                        preexec_fn=as_user(10002, 10002, [1500]))
    assert ls.returncode == 0 and ls.stdout.split() == ["pw", "user"]


def test_root_reads_by_capability_unless_it_dropped_it(make_daemon,
                                                       secrets_dir, tmp_path):
    """Decided: CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH in the caller's
    effective set read any mode, as the kernel's default_permissions did;
    a root without them is held to the mode like anyone."""
    d = make_daemon(mode_config(secrets_dir, tmp_path))
    path = d.path("owned")      # 0400 1000:1000
    assert probe(path) == "ok"
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    assert probe(path, prefix=drop) == "13"
    recs = [(r["uid"], r["outcome"], r.get("reason"))
            for r in opens_of(tmp_path, "owned")]
    assert recs == [(0, "allow", None), (0, "deny", "mode")]
    # explain sees the same difference.
    p = sleeper(prefix=drop)
    try:
        out = explain_pid(d, p.pid).stdout
        assert row(out, "owned").split()[:3] == ["owned", "EACCES", "host"]
    finally:
        p.kill()
        p.wait()
    p = sleeper()
    try:
        out = explain_pid(d, p.pid).stdout
        assert row(out, "owned").split() == ["owned", "allow", "host"]
    finally:
        p.kill()
        p.wait()


def test_explain_predicts_the_mode_and_the_mount(make_daemon, secrets_dir,
                                                 tmp_path):
    d = make_daemon(mode_config(secrets_dir, tmp_path))
    p = sleeper(10001, 10001)
    try:
        r = explain_pid(d, p.pid)
        assert row(r.stdout, "db_password") == (
            "%-32s %-6s %s  allow by rule host, but EACCES: mode 0440 "
            "root:1500, caller 10001:10001" % ("db_password", "EACCES",
                                               "host"))
        assert row(r.stdout, "api_token").split() == \
            ["api_token", "allow", "host"]
        assert "  mount %s: a live bind of %s" % (d.mountpoint, d.mountpoint) \
            in r.stdout
        assert r.stderr == ""
    finally:
        p.kill()
        p.wait()
    p = sleeper(10002, 10002, groups=[1500, 1600])
    try:
        r = explain_pid(d, p.pid)
        assert row(r.stdout, "db_password").split() == \
            ["db_password", "allow", "host"]
    finally:
        p.kill()
        p.wait()
    # A process that does not see the mount (a namespace of its own made
    # without it, as a container started before the broker): warned.
    p = sleeper(prefix=["unshare", "-m", "--propagation", "private", "sh",
                        "-c", 'umount -l "$0" && exec "$@"', d.mountpoint])
    try:
        r = explain_pid(d, p.pid)
        assert ("process %d sees no bind of %s: its container started "
                "before the broker mounted, or its bind lacks rslave"
                % (p.pid, d.mountpoint)) in r.stderr
        assert "a live bind" not in r.stdout
    finally:
        p.kill()
        p.wait()


# --- 5. status per process, due/stale/expired, last error, health ------

OPENER = r"""
import json, os, sys
procs, path = sys.argv[1], sys.argv[2]
if procs != "-":
    with open(procs, "w") as f:
        f.write(str(os.getpid()))
print("ready", flush=True)
for line in sys.stdin:
    try:
        with open(path, "rb") as f:
            print(json.dumps(["ok", f.read().hex()]), flush=True)
    except OSError as e:
        print(json.dumps(["err", e.errno]), flush=True)
"""


class Opener:
    """A long-lived process that reads the secret when told to."""

    def __init__(self, path, cgroup_dir=None):
        procs = os.path.join(cgroup_dir, "cgroup.procs") if cgroup_dir \
            else "-"
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", "-c", OPENER, procs, path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    @property
    def pid(self):
        return self.proc.pid

    def read(self):
        self.proc.stdin.write("read\n")
        self.proc.stdin.flush()
        kind, val = json.loads(self.proc.stdout.readline())
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


@pytest.fixture
def cgroups():
    from conftest import need
    from containers import FakeCgroups, cgroup2_mount
    require_fuse()
    need(cgroup2_mount() is not None, "no cgroup2 hierarchy is mounted")
    cg = FakeCgroups()
    yield cg
    cg.remove()


def ctl(d, *args, check=True):
    r = subprocess.run([binary(), args[0], "-c", str(d.config_path)]
                       + list(args[1:]), capture_output=True, text=True,
                       timeout=60)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def secret_status(d, name):
    st = json.loads(ctl(d, "status", "--json").stdout)
    return next(s for s in st["secrets"] if s["name"] == name)


def wait_for(pred, timeout=10, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def rotate(secrets_dir, name, value):
    p = secrets_dir / name
    old = os.stat(p).st_mtime_ns
    p.write_bytes(value)
    os.utime(p, ns=(old + 10**9, old + 10**9))


def test_status_names_a_long_lived_holder_a_sibling_did_not_clear(
        make_daemon, secrets_dir, cgroups):
    from containers import hex64
    cid = hex64()
    cfg = file_config(secrets_dir)
    cfg["secrets"]["db_password"]["refresh"] = "1s"
    cfg["rules"] = [{"id": "svc", "match": {"container_id": cid},
                     "allow": ["db_password"]},
                    {"id": "host", "match": {"host": True}, "allow": ["*"]}]
    d = make_daemon(cfg)
    scope = cgroups.make("system.slice/docker-%s.scope" % cid)
    long_lived = Opener(d.path("db_password"), scope)
    sibling = Opener(d.path("db_password"), scope)
    try:
        assert long_lived.read() == VALUES["db"]
        assert sibling.read() == VALUES["db"]
        rotate(secrets_dir, "db", b"rotated-db\n")
        assert wait_for(lambda: open(d.path("db_password"), "rb").read()
                        == b"rotated-db\n", timeout=5)
        # Another process of the same container reads the new version...
        assert sibling.read() == b"rotated-db\n"
        st = secret_status(d, "db_password")
        behind = [(h["kind"], h["id"], h["pid"]) for h in st["not_reopened"]]
        # ...and the long-lived one is still named, the sibling is not.
        assert behind == [("container", cid, long_lived.pid)], st
        text = ctl(d, "status").stdout
        assert "container %s" % cid[:12] in text
        assert "pid %d (python3)" % long_lived.pid in text
        assert "pid %d" % sibling.pid not in text
        # The sibling exits: nothing changes for the long-lived one.
        sibling.finish()
        behind = [h["pid"] for h in
                  secret_status(d, "db_password")["not_reopened"]]
        assert behind == [long_lived.pid]
        # It exits: forgotten.
        long_lived.finish()
        assert secret_status(d, "db_password")["not_reopened"] == []
    finally:
        sibling.finish()
        long_lived.finish()


def test_status_due_past_refresh_and_the_last_error(make_daemon,
                                                     secrets_dir):
    cfg = file_config(secrets_dir)
    cfg["secrets"]["api_token"]["refresh"] = "1s"
    cfg["secrets"]["bad_field"] = {"backend": "dev", "ref": "api",
                                   "field": "nope"}
    d = make_daemon(cfg)
    with open(d.path("api_token"), "rb") as f:
        assert f.read() == VALUES["api"]
    assert secret_status(d, "api_token")["state"] == "fresh"
    # Past refresh, idle (read again only when read): due, not fresh.
    assert wait_for(lambda: secret_status(d, "api_token")["state"] == "due",
                    timeout=5)
    # A wrong field: failed, and why.
    with pytest.raises(OSError):
        open(d.path("bad_field"), "rb").read()
    st = secret_status(d, "bad_field")
    assert st["state"] == "failed"
    assert 'field "nope"' in st["last_error"], st
    text = ctl(d, "status").stdout
    assert "  last error: " in text and 'field "nope"' in text
    # Fixed: the error goes. The field is looked up again in the next
    # value of its ref (refresh 1s), not at every read: until then the
    # read still fails.
    (secrets_dir / "api").write_bytes(b'{"nope": "now-there"}')

    def fixed():
        try:
            with open(d.path("bad_field"), "rb") as f:
                return f.read() == b"now-there"
        except OSError:
            return False
    assert wait_for(fixed, timeout=10, step=0.3)
    assert secret_status(d, "bad_field")["last_error"] is None


def test_health_is_degraded_for_a_backend_that_never_answered(
        make_daemon, secrets_dir, tmp_path):
    token = write_private(tmp_path / "token", "s.nothing-listens\n")
    cfg = file_config(secrets_dir)
    cfg["backends"]["v"] = {"type": "vault", "address": "http://127.0.0.1:9",
                            "tls": False,
                            "auth": {"method": "token",
                                     "token_file": str(token)},
                            "http": {"timeout": "1s", "max_retries": 0}}
    cfg["secrets"]["remote"] = {"backend": "v", "ref": "app/db"}
    d = make_daemon(cfg)
    # Nothing asked of it yet: healthy.
    assert ctl(d, "health").stdout.startswith("healthy: ")
    with pytest.raises(OSError):
        open(d.path("remote"), "rb").read()
    r = ctl(d, "health", check=False)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout.startswith("degraded: backend v has never answered (")
    assert "all failed): " in r.stdout
    # The file backend answers; the daemon is not unhealthy (exit 1).
    with open(d.path("api_token"), "rb") as f:
        assert f.read() == VALUES["api"]
    assert ctl(d, "health", check=False).returncode == 2


def test_status_stale_then_expired_past_max_stale(make_daemon, secrets_dir):
    cfg = file_config(secrets_dir)
    cfg["secrets"]["api_token"]["refresh"] = "1s"
    cfg["cache"] = {"max_stale": "2s"}
    d = make_daemon(cfg)
    with open(d.path("api_token"), "rb") as f:
        assert f.read() == VALUES["api"]
    # The backend fails (its file is now a directory): stale, then expired.
    os.unlink(secrets_dir / "api")
    os.mkdir(secrets_dir / "api")

    def state():
        try:
            open(d.path("api_token"), "rb").read()
        except OSError:
            pass
        return secret_status(d, "api_token")["state"]
    assert wait_for(lambda: state() == "stale", timeout=10, step=0.2)
    assert wait_for(lambda: state() == "expired", timeout=15, step=0.2)
    st = secret_status(d, "api_token")
    assert st["last_error"], st
    os.rmdir(secrets_dir / "api")
    (secrets_dir / "api").write_bytes(b"back\n")
    assert wait_for(lambda: state() in ("fresh", "due"), timeout=15,
                    step=0.3)
    assert secret_status(d, "api_token")["last_error"] is None


# --- a restart whose new mount reuses the dead one's device number -----

def test_a_reused_device_number_is_not_taken_for_the_dead_mount(
        make_daemon, secrets_dir, tmp_path):
    """After kill -9 with no bind of the dead mount left, the kernel may
    give the new mount the dead one's (freed) device number: the repair
    must still find the live mount, not log `cannot look for dead binds
    ... Transport endpoint is not connected`."""
    cfg = file_config(secrets_dir)
    first = make_daemon(cfg, workdir=tmp_path / "first")
    mp = first.mountpoint
    dead_dev = os.stat(mp).st_dev
    reused = None
    for i in range(5):
        first.kill9()
        d = make_daemon({**file_config(secrets_dir), "mount": {"path": mp}},
                        workdir=tmp_path / ("again%d" % i))
        assert wait_for(lambda: "cleared a stale mount" in d.log(), 10)
        # The helper looks for dead binds once the loop answers.
        time.sleep(1.0)
        if os.stat(mp).st_dev == dead_dev:
            reused = d
            break
        dead_dev = os.stat(mp).st_dev
        first = d
    assert reused is not None, "the kernel never reused the device number"
    assert "cannot look for dead binds" not in reused.log(), reused.log()
    with open(reused.path("api_token"), "rb") as f:
        assert f.read() == VALUES["api"]
