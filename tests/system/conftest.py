"""Shared fixtures for system tests: a real secretsfs mount of the built binary.

Run with Debian's interpreter (/usr/bin/python3 -m pytest): the fakes need
python3-hvac and python3-botocore. Under CI=true a test that cannot run here
(no /dev/fuse, not root, no podman) fails instead of skipping, so CI can never
go green on tests that did not run.
"""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition, why):
    """Skip when a prerequisite is missing; fail instead under CI=true."""
    if condition:
        return
    if IN_CI:
        pytest.fail("prerequisite missing in CI: " + why)
    pytest.skip(why)


def binary():
    path = os.environ.get("SECRETSFS_BIN")
    if path:
        return path
    for cand in (ROOT / "build" / "fuse" / "secretsfs",):
        if cand.exists():
            return str(cand)
    pytest.fail("secretsfs binary not found: set SECRETSFS_BIN or build into ./build")


def require_fuse():
    need(os.geteuid() == 0, "system tests run as root")
    need(os.path.exists("/dev/fuse"), "/dev/fuse is missing")


def is_mounted(mountpoint):
    real = os.path.realpath(mountpoint)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[4] == real and fields[sep + 1] == "fuse.secretsfs":
                return True
    return False


def write_private(path, text, mode=0o600):
    path = pathlib.Path(path)
    path.write_text(text)
    os.chmod(path, mode)
    return path


class Daemon:
    """One secretsfs process serving one mount, in the foreground."""

    def __init__(self, workdir, config, extra_args=()):
        self.workdir = pathlib.Path(workdir)
        # pytest's tmp dirs are 0700: non-root readers need a path they
        # can walk to, so mountpoints live in their own 0755 directory.
        self.tmpbase = None
        if "path" not in config.setdefault("mount", {}):
            self.tmpbase = tempfile.mkdtemp(prefix="secretsfs-test-")
            os.chmod(self.tmpbase, 0o755)
            config["mount"]["path"] = os.path.join(self.tmpbase, "mnt")
        self.mountpoint = config["mount"]["path"]
        # The fixtures' keys and files live in root's 0700 pytest dirs, so
        # the fetcher keeps uid 0 here (still without capabilities, in its
        # own process, under seccomp); test_privsep.py runs it as a real
        # unprivileged user.
        config.setdefault("privsep", {}).setdefault("user", "root")
        self.config_path = write_private(self.workdir / "secretsfs.json",
                                         json.dumps(config, indent=2))
        self.log_path = self.workdir / "daemon.log"
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self, wait=True, prefix=()):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            list(prefix) + [binary(), "mount", "-f", "-c", str(self.config_path)]
            + self.extra_args,
            stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if wait:
            self.wait_mounted()
        return self

    def wait_mounted(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("secretsfs exited with %s:\n%s"
                                     % (self.proc.returncode, self.log()))
            # A dead daemon's mount is listed too, and may answer for a
            # moment: wait for this daemon to say it is serving.
            if is_mounted(self.mountpoint) and not _stale(self.mountpoint) \
                    and "serving " in self.log():
                return
            time.sleep(0.02)
        raise AssertionError("mount did not appear:\n" + self.log())

    @property
    def pid(self):
        return self.proc.pid

    def path(self, name):
        return os.path.join(self.mountpoint, name)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.logf.close()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.logf.close()

    def cleanup(self):
        self.stop()
        if is_mounted(self.mountpoint) or _stale(self.mountpoint):
            subprocess.run(["umount", "-l", self.mountpoint], check=False)
        if self.tmpbase:
            for d in (self.mountpoint, self.tmpbase):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


def _stale(mountpoint):
    try:
        os.stat(mountpoint)
        return False
    except OSError as e:
        return e.errno == 107  # ENOTCONN


@pytest.fixture
def secrets_dir(tmp_path):
    """A private directory for the file backend."""
    d = tmp_path / "secrets"
    d.mkdir(mode=0o700)
    os.chmod(d, 0o700)
    return d


@pytest.fixture
def make_daemon(tmp_path):
    """Factory: make_daemon(config_dict) -> started Daemon; all cleaned up."""
    require_fuse()
    daemons = []

    def make(config, start=True, extra_args=(), workdir=None):
        wd = pathlib.Path(workdir or tmp_path)
        wd.mkdir(parents=True, exist_ok=True)
        d = Daemon(wd, config, extra_args)
        daemons.append(d)
        if start:
            d.start()
        return d

    yield make
    for d in daemons:
        d.cleanup()


def run_as(uid, gid, argv, **kw):
    """Run argv as another user (a real non-root reader)."""
    def demote():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return subprocess.run(argv, preexec_fn=demote, capture_output=True, **kw)


# ---- real containers (Podman), for the modules that use them --------------

@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    """A busybox root filesystem for `podman run --rootfs`."""
    from containers import BUSYBOX, build_rootfs, busybox_is_static
    require_fuse()
    need(shutil.which("podman"), "podman is not installed")
    need(shutil.which("runc"), "runc is not installed")
    need(os.path.exists(BUSYBOX) and busybox_is_static(),
         "busybox-static is not installed (%s)" % BUSYBOX)
    return build_rootfs(tmp_path_factory.mktemp("rootfs"))


@pytest.fixture(scope="module")
def engine(rootfs):
    """`podman system service`: the Docker-compatible Engine API socket."""
    from containers import EngineService
    svc = EngineService().start()
    yield svc
    svc.stop()


@pytest.fixture
def podman(make_daemon, rootfs):
    from containers import Podman
    # After make_daemon, so containers go before their mount does.
    p = Podman(rootfs)
    yield p
    p.cleanup()


# ---- the fake kubelet, for the modules that use it ------------------------

@pytest.fixture(scope="module")
def kubelet_pki(tmp_path_factory):
    import sys
    sys.path.insert(0, str(ROOT / "tests" / "fakes"))
    from vault_fixture import make_pki
    return make_pki(tmp_path_factory.mktemp("kubelet-pki"))


@pytest.fixture
def kubelet(tmp_path, kubelet_pki):
    """A fake kubelet (tests/fakes/kubelet_server.py) with no pods yet."""
    import sys
    sys.path.insert(0, str(ROOT / "tests" / "fakes"))
    from kubelet_fixture import KubeletFake
    k = KubeletFake.start(tmp_path / "kubelet", kubelet_pki)
    yield k
    k.stop()
