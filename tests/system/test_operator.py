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
