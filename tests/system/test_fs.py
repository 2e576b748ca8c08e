"""The foundation through a real mount: reads, attributes, listing, refusals,
permissions, concurrency, locked memory, hardening, signals and bad configs."""
import errno
import os
import re
import signal
import stat
import subprocess
import threading
import time

import pytest

from conftest import binary, is_mounted, require_fuse, run_as, write_private

HERE = os.path.dirname(os.path.abspath(__file__))

VALUES = {
    "db": b"correct horse battery staple",
    "api.json": b'{"token":"tok-3b1f","user":"svc"}',
    "root_only": b"only root reads this",
}


def file_config(secrets_dir):
    for name, value in VALUES.items():
        (secrets_dir / name).write_bytes(value)
    return {
        "backends": {"dev": {"type": "file", "dir": str(secrets_dir)}},
        "secrets": {
            "db_password": {"backend": "dev", "ref": "db", "mode": "0440",
                            "uid": 1000, "gid": 1000},
            "api_token": {"backend": "dev", "ref": "api.json",
                          "field": "token", "mode": "0444"},
            "root_only": {"backend": "dev", "mode": "0400"},
        },
        # Deny by default: these tests read from the host.
        "rules": [{"id": "host", "match": {"host": True}, "allow": ["*"]}],
    }


NAMES = ["db_password", "api_token", "root_only"]


@pytest.fixture
def mounted(make_daemon, secrets_dir):
    return make_daemon(file_config(secrets_dir))


def test_read_secret(mounted):
    with open(mounted.path("db_password"), "rb") as f:
        assert f.read() == VALUES["db"]


def test_field_selection(mounted):
    with open(mounted.path("api_token"), "rb") as f:
        assert f.read() == b"tok-3b1f"


def test_partial_reads_and_offsets(mounted):
    fd = os.open(mounted.path("db_password"), os.O_RDONLY)
    try:
        assert os.pread(fd, 7, 0) == VALUES["db"][:7]
        assert os.pread(fd, 100, 8) == VALUES["db"][8:]
        assert os.pread(fd, 10, len(VALUES["db"])) == b""
    finally:
        os.close(fd)


def test_stat_shows_configured_attributes(mounted):
    st = os.stat(mounted.path("db_password"))
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o440
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    assert st.st_size == len(VALUES["db"])
    st = os.stat(mounted.path("api_token"))
    assert stat.S_IMODE(st.st_mode) == 0o444
    assert st.st_size == len(b"tok-3b1f")
    root = os.stat(mounted.mountpoint)
    assert stat.S_ISDIR(root.st_mode) and stat.S_IMODE(root.st_mode) == 0o555


def test_mtime_follows_the_version(mounted, secrets_dir):
    src = os.stat(secrets_dir / "db")
    st = os.stat(mounted.path("db_password"))
    assert st.st_mtime_ns == src.st_mtime_ns
    version = os.getxattr(mounted.path("db_password"), "user.secretsfs.version")
    assert version.decode() == "%d.%09d" % (src.st_mtime_ns // 10**9,
                                             src.st_mtime_ns % 10**9)


def test_readdir_lists_configured_names(mounted):
    assert sorted(os.listdir(mounted.mountpoint)) == \
        ["api_token", "db_password", "root_only"]


def test_mount_options(mounted):
    with open("/proc/self/mountinfo") as f:
        line = next(l for l in f if l.split()[4] == mounted.mountpoint)
    opts = line.split()[5].split(",")
    for o in ("ro", "nosuid", "nodev", "noexec"):
        assert o in opts
    assert "fuse.secretsfs secretsfs" in line
    # The daemon applies the modes itself, so every refusal is audited
    # (perm.h); the kernel's default_permissions would refuse unheard.
    assert "allow_other" in line and "default_permissions" not in line


def test_statfs_describes_a_read_only_filesystem_of_the_secrets(mounted):
    sv = os.statvfs(mounted.mountpoint)
    assert sv.f_flag & os.ST_RDONLY and sv.f_flag & os.ST_NOSUID
    assert sv.f_bsize == 4096
    # No count of the secrets: it would tell a caller how many are hidden.
    assert sv.f_files == 0
    assert sv.f_bfree == sv.f_bavail == sv.f_ffree == 0
    assert sv.f_namemax == 255


def test_mountpoint_on_the_command_line_wins(make_daemon, secrets_dir,
                                             tmp_path):
    """`mount -c CONFIG MOUNTPOINT`: the argument, not mount.path."""
    top = tmp_path / "top"
    top.mkdir()
    os.chmod(top, 0o755)
    (top / "from-config").mkdir()
    (top / "from-argv").mkdir()
    cfg = file_config(secrets_dir)
    cfg["mount"] = {"path": str(top / "from-config")}
    d = make_daemon(cfg, start=False, extra_args=[str(top / "from-argv")])
    d.mountpoint = str(top / "from-argv")
    d.start()
    assert is_mounted(top / "from-argv")
    assert not is_mounted(top / "from-config")
    assert sorted(os.listdir(top / "from-argv")) == sorted(NAMES)
    assert "serving 3 secrets on %s" % (top / "from-argv") in d.log()


def _refused(fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    return e.value.errno


def test_every_write_type_call_is_erofs(mounted):
    p = mounted.path
    cases = {
        "open O_WRONLY": lambda: os.open(p("db_password"), os.O_WRONLY),
        "open O_RDWR": lambda: os.open(p("db_password"), os.O_RDWR),
        "open O_TRUNC": lambda: os.open(p("db_password"), os.O_RDONLY | os.O_TRUNC),
        "create": lambda: os.open(p("new"), os.O_WRONLY | os.O_CREAT, 0o600),
        "mknod": lambda: os.mknod(p("fifo"), 0o600 | stat.S_IFIFO),
        "mkdir": lambda: os.mkdir(p("dir")),
        "unlink": lambda: os.unlink(p("db_password")),
        "rmdir": lambda: os.rmdir(p("db_password")),
        "rename": lambda: os.rename(p("db_password"), p("other")),
        "link": lambda: os.link(p("db_password"), p("hard")),
        "symlink": lambda: os.symlink("db_password", p("soft")),
        "chmod (setattr)": lambda: os.chmod(p("db_password"), 0o644),
        "chown (setattr)": lambda: os.chown(p("db_password"), 0, 0),
        "truncate (setattr)": lambda: os.truncate(p("db_password"), 0),
        "utime (setattr)": lambda: os.utime(p("db_password"), (0, 0)),
        "setxattr": lambda: os.setxattr(p("db_password"), "user.x", b"1"),
        "removexattr": lambda: os.removexattr(p("db_password"),
                                              "user.secretsfs.version"),
    }
    for what, call in cases.items():
        assert _refused(call) == errno.EROFS, what
    # Nothing changed.
    assert sorted(os.listdir(mounted.mountpoint)) == \
        ["api_token", "db_password", "root_only"]
    with open(p("db_password"), "rb") as f:
        assert f.read() == VALUES["db"]


def test_unknown_name_is_enoent(mounted):
    assert _refused(os.stat, mounted.path("nope")) == errno.ENOENT
    assert _refused(open, mounted.path("nope")) == errno.ENOENT


def test_non_root_reader_denied_by_mode(mounted):
    # uid 1000 is the owner of db_password (0440) and may read it.
    ok = run_as(1000, 1000, ["cat", mounted.path("db_password")])
    assert ok.returncode == 0 and ok.stdout == VALUES["db"]
    # root_only is 0400 root:root: another user gets EACCES from the kernel.
    probe = ("import os,sys\ntry:\n open(sys.argv[1]).read()\n"
             "except OSError as e:\n print(e.errno)\n")
    denied = run_as(1001, 1001, ["/usr/bin/python3", "-c", probe,
                                 mounted.path("root_only")])
    assert denied.stdout.strip() == str(errno.EACCES).encode()
    assert VALUES["root_only"] not in denied.stdout + denied.stderr


def test_64_threads_1000_reads_each(mounted):
    path = mounted.path("db_password")
    want = VALUES["db"]
    bad = []

    def reader():
        for _ in range(1000):
            fd = os.open(path, os.O_RDONLY)
            try:
                got = os.read(fd, 4096)
            finally:
                os.close(fd)
            if got != want:
                bad.append(len(got))

    threads = [threading.Thread(target=reader) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bad == []


def _status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(l.split(":", 1) for l in f if ":" in l)


def test_memory_is_locked_while_serving(mounted):
    with open(mounted.path("db_password"), "rb") as f:
        f.read()
    vmlck_kb = int(_status(mounted.pid)["VmLck"].split()[0])
    assert vmlck_kb > 0
    assert "locked" in mounted.log() and "bytes for secrets" in mounted.log()


def test_daemon_is_not_dumpable(make_daemon, secrets_dir):
    """Without CAP_SYS_PTRACE a parent may attach to its dumpable children
    only; the daemon must refuse even its parent."""
    probe = os.path.join(HERE, "ptrace_probe.py")
    base = ["setpriv", "--bounding-set", "-sys_ptrace", "/usr/bin/python3", probe]
    control = subprocess.run(base + ["sleep", "5"], capture_output=True,
                             text=True, timeout=30)
    assert control.stdout.strip() == "attach ok", control.stdout + control.stderr

    d = make_daemon(file_config(secrets_dir), start=False)
    out = subprocess.run(base + [binary(), "mount", "-f", "-c",
                                 str(d.config_path)],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "attach EPERM", out.stdout + out.stderr


def test_core_dumps_disabled(mounted):
    with open("/proc/%d/limits" % mounted.pid) as f:
        core = next(l for l in f if l.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]


def test_sigterm_unmounts(mounted):
    assert is_mounted(mounted.mountpoint)
    assert mounted.stop(signal.SIGTERM) == 0
    assert not is_mounted(mounted.mountpoint)
    assert "unmounting" in mounted.log()


def test_sigint_unmounts(mounted):
    assert mounted.stop(signal.SIGINT) == 0
    assert not is_mounted(mounted.mountpoint)


def _family(config_path):
    """pids of every process started with this config (daemon, helper,
    fetcher) and their comms."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/comm" % pid) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if str(config_path).encode() in argv:
            out[int(pid)] = comm
    return out


def _family_gone(config_path, timeout=10):
    deadline = time.monotonic() + timeout
    while _family(config_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _family(config_path) == {}


def _settled_family(config_path, timeout=10):
    """The family once the helper's repair child, a short-lived fork that
    bears the helper's name, has gone: its /proc entries may vanish while
    they are read."""
    deadline = time.monotonic() + timeout
    family = _family(config_path)
    while len(family) > 3 and time.monotonic() < deadline:
        time.sleep(0.05)
        family = _family(config_path)
    return family


def test_without_f_it_detaches_once_serving(make_daemon, secrets_dir, tmp_path):
    """`mount` without -f returns 0 only once the mount serves, leaves a
    daemon in its own session that keeps serving from its locked arena, and
    start-up errors still reach the terminal."""
    d = make_daemon(file_config(secrets_dir), start=False)
    r = subprocess.run([binary(), "mount", "-c", str(d.config_path)],
                       capture_output=True, text=True, timeout=60)
    family = _settled_family(d.config_path)
    try:
        assert r.returncode == 0, r.stderr
        # Served already when the command returned: no waiting here.
        assert is_mounted(d.mountpoint)
        assert "serving 3 secrets on %s" % d.mountpoint in r.stderr
        daemon = [p for p, c in family.items() if c == "secretsfs"]
        assert len(daemon) == 1, family
        assert set(family.values()) == \
            {"secretsfs", "secretsfs-fetch", "secretsfs-priv"}
        assert os.getsid(daemon[0]) == daemon[0]
        # The readiness pipe is gone once serving: the helper and fetcher
        # never held it, and the daemon keeps only its own self-pipes,
        # whose two ends it holds both.
        for pid, comm in family.items():
            links = [os.readlink("/proc/%d/fd/%s" % (pid, fd))
                     for fd in os.listdir("/proc/%d/fd" % pid)]
            pipes = [l for l in links if l.startswith("pipe:")]
            if comm == "secretsfs":
                assert all(pipes.count(p) == 2 for p in pipes), pipes
            else:
                assert pipes == [], (comm, links)
        # Many fresh opens: each allocates in the arena after the detach.
        for _ in range(200):
            with open(d.path("db_password"), "rb") as f:
                assert f.read() == VALUES["db"]
        os.kill(daemon[0], signal.SIGTERM)
        assert _family_gone(d.config_path)
        assert not is_mounted(d.mountpoint)
    finally:
        for pid in _family(d.config_path):
            os.kill(pid, signal.SIGKILL)

    # A failure before serving: exit 1, and the reason on stderr.
    (tmp_path / "a-file").write_text("")
    r = subprocess.run([binary(), "mount", "-c", str(d.config_path),
                        str(tmp_path / "a-file")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "a-file" in r.stderr
    # The helper follows the daemon out when its socket closes.
    assert _family_gone(d.config_path)


def test_stale_mount_cleared_at_start(make_daemon, secrets_dir, tmp_path):
    d = make_daemon(file_config(secrets_dir))
    d.kill9()
    with pytest.raises(OSError) as e:
        os.stat(d.mountpoint)
    assert e.value.errno == errno.ENOTCONN
    d2 = make_daemon(file_config(secrets_dir), workdir=tmp_path / "again")
    d2.stop()
    d3 = make_daemon({**file_config(secrets_dir),
                      "mount": {"path": d.mountpoint}},
                     workdir=tmp_path / "third")
    assert "cleared a stale mount at %s" % d.mountpoint in d3.log()
    with open(d3.path("db_password"), "rb") as f:
        assert f.read() == VALUES["db"]


def test_second_daemon_refuses_a_live_mount(make_daemon, secrets_dir, tmp_path):
    d = make_daemon(file_config(secrets_dir))
    other = make_daemon({**file_config(secrets_dir),
                         "mount": {"path": d.mountpoint}},
                        start=False, workdir=tmp_path / "other")
    other.start(wait=False)
    assert other.proc.wait(10) != 0
    assert "already served by a running secretsfs" in other.log()
    with open(d.path("db_password"), "rb") as f:
        assert f.read() == VALUES["db"]


def _mount_bad(tmp_path, text, mode=0o600):
    require_fuse()
    # As conftest's Daemon does: the fixtures' files are root's (line 1 only
    # gains columns, so the lines that errors name stay).
    if text.startswith("{"):
        text = '{"privsep": {"user": "root"}, ' + text[1:]
    cfg = write_private(tmp_path / "bad.json", text, mode)
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    out = subprocess.run([binary(), "mount", "-f", "-c", str(cfg), str(mnt)],
                         capture_output=True, text=True, timeout=30)
    return out, mnt


def test_bad_config_exits_nonzero_naming_the_key(tmp_path, secrets_dir):
    text = ('{\n  "backends": {"dev": {"type": "file", "dir": "%s"}},\n'
            '  "secrets": {\n    "db": {"backend": "dev", "mode": "0755"}\n  }\n}\n'
            % secrets_dir)
    out, mnt = _mount_bad(tmp_path, text)
    assert out.returncode != 0
    assert "bad.json:4:30: secrets.db.mode:" in out.stderr
    assert not is_mounted(str(mnt))
    check = subprocess.run([binary(), "check-config", str(tmp_path / "bad.json")],
                           capture_output=True, text=True)
    assert check.returncode == 1
    assert "secrets.db.mode" in check.stderr


def test_config_readable_by_others_is_refused(tmp_path, secrets_dir):
    text = ('{"backends": {"dev": {"type": "file", "dir": "%s"}}, "secrets": {}}'
            % secrets_dir)
    out, mnt = _mount_bad(tmp_path, text, mode=0o644)
    assert out.returncode != 0
    assert "group or other" in out.stderr
    assert not is_mounted(str(mnt))


def test_group_readable_secrets_dir_is_refused(tmp_path, secrets_dir):
    os.chmod(secrets_dir, 0o750)
    text = ('{"backends": {"dev": {"type": "file", "dir": "%s"}}, "secrets": {}}'
            % secrets_dir)
    out, mnt = _mount_bad(tmp_path, text)
    assert out.returncode != 0
    assert "chmod 700" in out.stderr
    assert not is_mounted(str(mnt))


def test_cli_help_version_and_check_config(tmp_path, secrets_dir):
    out = subprocess.run([binary(), "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for word in ("mount", "check-config", "--foreground", "--config"):
        assert word in out.stdout
    out = subprocess.run([binary(), "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("secretsfs ")
    out = subprocess.run([binary(), "frobnicate"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown command" in out.stderr
    cfg = write_private(tmp_path / "ok.json",
                        '{"backends": {"dev": {"type": "file", "dir": "%s"}},'
                        ' "privsep": {"user": "root"},'
                        ' "mount": {"path": "%s"},'
                        ' "secrets": {"a": {"backend": "dev"}}}'
                        % (secrets_dir, tmp_path / "mnt"))
    out = subprocess.run([binary(), "check-config", str(cfg)],
                         capture_output=True, text=True)
    assert out.returncode == 0
    assert "1 backend, 1 secret" in out.stdout


def test_cli_per_command_help():
    whole = subprocess.run([binary(), "--help"], capture_output=True, text=True)
    assert whole.returncode == 0
    for argv, row in (
            (["mount", "--help"], "  mount         mount the filesystem"),
            (["mount", "-c", "x.json", "-h"], "  mount         mount the filesystem"),
            (["check-config", "--help"], "  check-config  validate CONFIG"),
            (["audit", "verify", "-h"], "  audit verify  check the MAC chain"),
            (["status", "--help"], "  status        ask the running daemon"),
            (["help", "repair"], "  repair        give containers")):
        out = subprocess.run([binary()] + argv, capture_output=True, text=True)
        assert out.returncode == 0, (argv, out.stderr)
        name = row.split("  ")[1].strip()
        # That command's usage and help, the same row as in --help; no other's.
        assert out.stdout.startswith("usage: secretsfs %s " % name), out.stdout
        assert row in out.stdout and row in whole.stdout
        assert "\n       secretsfs " not in out.stdout, out.stdout
        assert "commands:" not in out.stdout
    out = subprocess.run([binary(), "mount", "--help"], capture_output=True, text=True)
    assert "options:\n  -c, --config FILE" in out.stdout
    # A command with sub-commands: all of them.
    out = subprocess.run([binary(), "audit", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "secretsfs audit verify" in out.stdout and "secretsfs audit show" in out.stdout
    out = subprocess.run([binary(), "frobnicate", "--help"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown command" in out.stderr


def test_missing_backend_secret_is_enoent(mounted, secrets_dir):
    os.unlink(secrets_dir / "root_only")
    assert _refused(open, mounted.path("root_only")) == errno.ENOENT


def test_values_never_in_the_log(mounted):
    for name in ("db_password", "api_token"):
        with open(mounted.path(name), "rb") as f:
            f.read()
    mounted.stop()
    log = mounted.log().encode()
    for value in VALUES.values():
        assert value not in log
    assert b"tok-3b1f" not in log


def test_shipped_configs_are_valid(tmp_path):
    """conf/ documents the keys; the daemon must accept what it shows
    (the document: its files are another host's)."""
    conf = os.path.join(HERE, "..", "..", "conf")
    for name in ("secretsfs.json", "quickstart.json", "aws.json"):
        with open(os.path.join(conf, name)) as f:
            text = f.read().replace("@SECRETS@", "/nonexistent")
            text = text.replace("@MOUNT@", "/run/secretsfs")
            text = text.replace("@DEMO@", "/var/lib/secretsfs-demo")
            text = text.replace("@FETCH@", "/var/lib/secretsfs-demo/fetcher")
            text = text.replace("@VAULT@", "https://127.0.0.1:8200")
        cfg = write_private(tmp_path / name, text)
        out = subprocess.run([binary(), "check-config", "--document",
                              str(cfg)], capture_output=True, text=True)
        assert out.returncode == 0, name + ": " + out.stderr
        assert ": ok: " in out.stdout


def test_directory_secret_one_file_per_key(make_daemon, secrets_dir):
    (secrets_dir / "db.json").write_bytes(
        b'{"username":"app","password":"s3cr3t-pw","port":5432}')
    d = make_daemon({
        "backends": {"dev": {"type": "file", "dir": str(secrets_dir)}},
        "secrets": {"db": {"backend": "dev", "ref": "db.json",
                           "as": "directory", "mode": "0440"}},
        "rules": [{"match": {"host": True}, "allow": ["db"]}],
    })
    st = os.stat(d.path("db"))
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o550
    assert sorted(os.listdir(d.path("db"))) == ["password", "port", "username"]
    with open(d.path("db/password"), "rb") as f:
        assert f.read() == b"s3cr3t-pw"
    with open(d.path("db/port"), "rb") as f:
        assert f.read() == b"5432"
    st = os.stat(d.path("db/username"))
    assert stat.S_IMODE(st.st_mode) == 0o440 and st.st_size == 3
    assert _refused(open, d.path("db/nope")) == errno.ENOENT
    assert _refused(os.open, d.path("db"), os.O_RDONLY | os.O_CREAT) in \
        (errno.EISDIR, errno.EROFS)
    # Inode numbers are stable across lookups.
    assert os.stat(d.path("db/password")).st_ino == \
        os.stat(d.path("db/password")).st_ino


def test_prefix_secret_lists_the_backend(make_daemon, secrets_dir):
    (secrets_dir / "payments").mkdir()
    (secrets_dir / "payments" / "stripe").write_bytes(b"sk_live_1")
    (secrets_dir / "payments" / "adyen").write_bytes(b"ak_2")
    (secrets_dir / "payments" / "nested").mkdir()
    d = make_daemon({
        "backends": {"dev": {"type": "file", "dir": str(secrets_dir)}},
        "secrets": {"pay": {"backend": "dev", "ref": "payments",
                            "as": "prefix", "refresh": "1s"}},
        "rules": [{"match": {"host": True}, "allow": ["pay"]}],
    })
    # Sub-folders are not files.
    assert sorted(os.listdir(d.path("pay"))) == ["adyen", "stripe"]
    with open(d.path("pay/stripe"), "rb") as f:
        assert f.read() == b"sk_live_1"
    # A secret added in the backend appears after the refresh interval.
    (secrets_dir / "payments" / "paypal").write_bytes(b"pp_3")
    deadline = time.monotonic() + 5
    while "paypal" not in os.listdir(d.path("pay")):
        assert time.monotonic() < deadline, "new secret never listed"
        time.sleep(0.2)
    with open(d.path("pay/paypal"), "rb") as f:
        assert f.read() == b"pp_3"


def test_directory_secrets_follow_the_rules(make_daemon, secrets_dir):
    (secrets_dir / "a.json").write_bytes(b'{"k":"v"}')
    (secrets_dir / "p").mkdir()
    (secrets_dir / "p" / "x").write_bytes(b"x")
    d = make_daemon({
        "backends": {"dev": {"type": "file", "dir": str(secrets_dir)}},
        "secrets": {"a": {"backend": "dev", "ref": "a.json", "as": "directory"},
                    "p": {"backend": "dev", "as": "prefix"}},
        "rules": [{"match": {"host": True}, "allow": ["a"]}],
    })
    assert os.listdir(d.mountpoint) == ["a"]
    assert _refused(os.listdir, d.path("p")) == errno.ENOENT
    assert _refused(open, d.path("p/x")) == errno.ENOENT
    with open(d.path("a/k"), "rb") as f:
        assert f.read() == b"v"


@pytest.mark.parametrize("limit,locked", [(65536, None), (8 << 20, 16 << 20)])
def test_memlock_too_small_refuses_to_start(tmp_path, secrets_dir, limit, locked):
    """Without CAP_IPC_LOCK and with a small RLIMIT_MEMLOCK the arena cannot
    be locked: the daemon must say so, name the limit and the size it
    wanted (the default, or memory.locked_bytes), and mount nothing."""
    require_fuse()
    memory = ', "memory": {"locked_bytes": %d}' % locked if locked else ""
    cfg = write_private(tmp_path / "c.json", (
        '{"backends": {"dev": {"type": "file", "dir": "%s"}},'
        ' "privsep": {"user": "root"},'
        ' "secrets": {"a": {"backend": "dev"}}%s}' % (secrets_dir, memory)))
    mnt = tmp_path / "mnt"
    out = subprocess.run(
        ["prlimit", "--memlock=%d:%d" % (limit, limit), "setpriv", "--bounding-set",
         "-ipc_lock", "--inh-caps", "-ipc_lock", binary(), "mount", "-f",
         "-c", str(cfg), str(mnt)],
        capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "RLIMIT_MEMLOCK is %d bytes" % limit in out.stderr, out.stderr
    assert "ulimit -l" in out.stderr
    m = re.search(r"cannot lock (\d+) bytes", out.stderr)
    assert m and int(m.group(1)) >= (locked or 32 << 20) > limit, out.stderr
    assert not is_mounted(str(mnt))
