"""The container deployment (issue 20, point 7): the image's file tree,
assembled by the Dockerfile's own build-stage script from the binary just
built, runs the broker; a clean stop unmounts (libgcc_s is in the image),
and the broker's volume is a parent directory of the mountpoint, so that
a dead mount never keeps the runtime from starting it again."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

from conftest import binary, is_mounted, need, require_fuse
from test_deploy import assembly_script

FETCHER_UID = 65532     # the image's /etc/passwd, and deploy/systemd's sysusers


def assemble(tmp_path):
    """The final stage's tree, from the Dockerfile's assembly script."""
    need(os.path.exists("/usr/bin/fusermount3"), "fuse3 is not installed")
    staging, rootfs = tmp_path / "staging", tmp_path / "rootfs"
    (staging / "usr" / "sbin").mkdir(parents=True)
    shutil.copy2(binary(), staging / "usr" / "sbin" / "secretsfs")
    script = assembly_script().replace("/staging/", str(staging) + "/") \
        .replace("out=/rootfs", "out=" + str(rootfs))
    r = subprocess.run(["/bin/sh", "-c", script], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return rootfs


def image_config(rootfs, mount="/run/secretsfs.d/mnt"):
    """The deployment's layout inside the image: keys under /etc/secretsfs,
    a file backend owned by the fetcher's user."""
    dev = rootfs / "etc/secretsfs/dev"
    dev.mkdir(mode=0o700, parents=True, exist_ok=True)
    (dev / "db").write_bytes(b"from-the-image\n")
    for p in (dev, dev / "db"):
        os.chown(p, FETCHER_UID, FETCHER_UID)
    os.chmod(dev / "db", 0o600)
    cfg = {
        "mount": {"path": mount, "allow_other": True},
        "memory": {"locked_bytes": "4MiB"},
        "cache": {"max_bytes": "1MiB"},
        "backends": {"dev": {"type": "file", "dir": "/etc/secretsfs/dev"}},
        "secrets": {"db_password": {"backend": "dev", "ref": "db",
                                    "mode": "0444"}},
        "rules": [{"id": "all", "match": {"any": True},
                   "allow": ["db_password"]}],
    }
    path = rootfs / "etc/secretsfs/secretsfs.json"
    path.write_text(json.dumps(cfg))
    os.chmod(path, 0o600)
    return cfg


def wait_for(pred, timeout=10, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def test_the_image_stops_cleanly_and_unmounts(tmp_path):
    """libgcc_s.so.1 is in the image: glibc loads it for pthread_cancel at
    a clean stop; without it the stop aborted (exit 134) and left a dead
    mount."""
    require_fuse()
    rootfs = assemble(tmp_path)
    libs = [p for p in rootfs.rglob("libgcc_s.so.1")]
    assert libs, "libgcc_s.so.1 is not in the image"
    cfg = image_config(rootfs)
    mnt = rootfs / cfg["mount"]["path"].lstrip("/")
    (rootfs / "proc").mkdir(exist_ok=True)
    (rootfs / "dev").mkdir(exist_ok=True)
    (rootfs / "dev/fuse").touch()
    subprocess.run(["mount", "--bind", "/dev/fuse", str(rootfs / "dev/fuse")],
                   check=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(rootfs / "proc")],
                   check=True)
    log = tmp_path / "broker.log"
    proc = None
    try:
        with open(log, "wb") as f:
            proc = subprocess.Popen(
                ["chroot", str(rootfs), "/usr/sbin/secretsfs", "mount", "-f",
                 "-c", "/etc/secretsfs/secretsfs.json"],
                stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        assert wait_for(lambda: "serving " in log.read_text() or
                        proc.poll() is not None, timeout=20), log.read_text()
        assert proc.poll() is None, log.read_text()
        assert is_mounted(str(mnt))
        # The fetcher runs as the image's user and reads its own files.
        with open(mnt / "db_password", "rb") as f:
            assert f.read() == b"from-the-image\n"
        assert "runs as secretsfs (uid %d)" % FETCHER_UID in log.read_text()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
        text = log.read_text()
        assert rc == 0, text
        assert "libgcc_s" not in text
        assert not is_mounted(str(mnt))
        os.stat(mnt)        # not a dead mount: a plain directory again
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        if is_mounted(str(mnt)) or not os.path.isdir(mnt):
            subprocess.run(["umount", "-l", str(mnt)], check=False)
        subprocess.run(["umount", "-l", str(rootfs / "proc")], check=False)
        subprocess.run(["umount", "-l", str(rootfs / "dev/fuse")],
                       check=False)


# ---- the recipe under rootful Podman: stop, kill, restart --------------

CAPS = ["SYS_ADMIN", "SYS_CHROOT", "SYS_PTRACE", "SETUID", "SETGID",
        "SETPCAP", "IPC_LOCK", "KILL"]


def podman(*argv, timeout=120, check=True):
    r = subprocess.run(["podman"] + list(argv), capture_output=True,
                       text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, (argv, r.stdout, r.stderr)
    return r


def state(name):
    r = podman("inspect", "--format",
               "{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}} "
               "{{.RestartCount}}", name, check=False)
    return r.stdout.split() if r.returncode == 0 else []


def memlock():
    import resource
    hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    want = 64 << 20
    return want if hard == resource.RLIM_INFINITY or hard >= want else hard


@pytest.fixture
def deployment(tmp_path):
    """The broker image (the Dockerfile's tree, imported since no registry
    is reachable) run with compose.yaml's options, its volume a shared
    parent directory of the mountpoint, and a busybox root for the app."""
    import tempfile
    from containers import (BUSYBOX, PODMAN_RUN, build_rootfs,
                            busybox_is_static, unique_name)
    require_fuse()
    need(shutil.which("podman"), "podman is not installed")
    need(shutil.which("runc"), "runc is not installed")
    need(os.path.exists(BUSYBOX) and busybox_is_static(),
         "busybox-static is not installed (%s)" % BUSYBOX)
    tag = unique_name("img")
    base = pathlib.Path("/run/%s.d" % unique_name("vol"))
    etc = tmp_path / "etc-secretsfs"
    made = {"names": [], "image": None, "bound": False}
    # The app runs as 10001, as compose.yaml's does: its root must be
    # reachable by that user (pytest's directories are 0700).
    app_root = tempfile.mkdtemp(prefix="secretsfs-app-")
    try:
        os.chmod(app_root, 0o755)
        build_rootfs(app_root)
        image_root = assemble(tmp_path)
        # The host's secretsfs dir, bound read-only at /etc/secretsfs.
        cfg = image_config(tmp_path / "fake-root", mount=str(base / "mnt"))
        shutil.copytree(tmp_path / "fake-root/etc/secretsfs", etc,
                        symlinks=True)
        os.chmod(etc, 0o711)
        for p in (etc / "dev", etc / "dev" / "db"):
            os.chown(p, FETCHER_UID, FETCHER_UID)
        base.mkdir(mode=0o755)
        # A host whose / is not shared (this one): the volume's own mount,
        # made rshared, as the README says to do.
        subprocess.run(["mount", "--bind", str(base), str(base)], check=True)
        made["bound"] = True
        subprocess.run(["mount", "--make-rshared", str(base)], check=True)
        tar = subprocess.Popen(["tar", "-C", str(image_root), "-c", "."],
                               stdout=subprocess.PIPE)
        r = subprocess.run(["podman", "import", "-", "localhost/" + tag],
                           stdin=tar.stdout, capture_output=True, text=True,
                           timeout=300)
        tar.wait()
        assert r.returncode == 0, r.stderr
        made["image"] = "localhost/" + tag
        broker = unique_name("broker")
        argv = list(PODMAN_RUN) + [
            "-d", "--name", broker, "--network", "none",
            "--restart", "always", "--pid", "host", "--cgroupns", "host",
            "--device", "/dev/fuse:/dev/fuse", "--cap-drop", "ALL"]
        for c in CAPS:
            argv += ["--cap-add", c]
        argv += ["--security-opt", "no-new-privileges", "--read-only",
                 "--tmpfs", "/run:size=1m,mode=0755,noexec,nosuid,nodev",
                 # compose.yaml's 64 MiB, or what runc may set here.
                 "--ulimit", "memlock=%d:%d" % (memlock(), memlock()),
                 "--ulimit", "core=0:0",
                 "-v", "%s:%s:rshared" % (base, base),
                 "-v", "%s:/etc/secretsfs:ro" % etc,
                 # compose.yaml's: the host's cgroup tree, where callers'
                 # cgroup directories are checked (every v1 hierarchy).
                 "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
                 "--entrypoint", "/usr/sbin/secretsfs", made["image"],
                 "mount", "-f", "-c", "/etc/secretsfs/secretsfs.json"]
        made["names"].append(broker)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        yield {"broker": broker, "mnt": base / "mnt", "base": base,
               "cfg": cfg, "rootfs": app_root, "made": made,
               "unique_name": unique_name, "PODMAN_RUN": PODMAN_RUN}
    finally:
        if made["names"]:
            podman("rm", "-f", "-t", "0", *made["names"], check=False)
        for _ in range(3):
            subprocess.run(["umount", "-l", str(base / "mnt")],
                           capture_output=True)
        if made["bound"]:
            subprocess.run(["umount", "-l", str(base)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(app_root, ignore_errors=True)
        if made["image"]:
            podman("rmi", "-f", made["image"], check=False)


def serving(d, timeout=30):
    def ok():
        try:
            with open(d["mnt"] / "db_password", "rb") as f:
                return f.read() == b"from-the-image\n"
        except OSError:
            return False
    return wait_for(ok, timeout=timeout, step=0.2)


def app_reads(d, app, timeout=20):
    def ok():
        r = podman("exec", app, "/bin/cat", "/run/secrets/db_password",
                   check=False, timeout=30)
        return r.returncode == 0 and r.stdout == "from-the-image\n"
    return wait_for(ok, timeout=timeout, step=0.3)


def test_the_deployment_recovers_from_a_stop_and_a_crash_by_itself(
        deployment):
    need(os.geteuid() == 0, "rootful Podman")
    d = deployment
    logs = lambda: podman("logs", d["broker"], check=False).stderr + \
        podman("logs", d["broker"], check=False).stdout
    assert serving(d), logs()
    # The app container, bound as compose.yaml binds it.
    app = d["unique_name"]("app")
    d["made"]["names"].append(app)
    r = subprocess.run(list(d["PODMAN_RUN"]) + [
        "-d", "--name", app, "--network", "none", "--user", "10001:10001",
        "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "-v", "%s:/run/secrets:ro,rslave" % d["mnt"],
        "--rootfs", d["rootfs"], "/bin/sleep", "600"],
        capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert app_reads(d, app), logs()

    # A clean stop: exit 0, no abort, the mount gone (not left dead).
    podman("stop", "-t", "20", d["broker"])
    st = state(d["broker"])
    assert st[:2] == ["exited", "0"], (st, logs())
    assert "libgcc_s" not in logs()
    assert not is_mounted(str(d["mnt"]))
    os.stat(d["mnt"])
    # Started again: it serves, and the app reads again by itself.
    podman("start", d["broker"])
    assert serving(d), logs()
    assert app_reads(d, app), logs()

    # A crash: the runtime restarts it (restart: always) although the
    # mountpoint is dead, since the volume is its parent; the new broker
    # clears the dead mount and repairs the app's bind.
    # (Not `podman kill`: a restart policy ignores what a person stops.)
    before = state(d["broker"])
    os.kill(int(before[2]), signal.SIGKILL)
    assert wait_for(lambda: (lambda s: len(s) == 4 and s[0] == "running"
                             and s[3] != before[3])(state(d["broker"])),
                    timeout=60, step=0.5), (state(d["broker"]), logs())
    assert serving(d, timeout=60), logs()
    assert app_reads(d, app, timeout=60), logs()


def test_the_fetcher_uid_is_the_same_in_the_image_and_sysusers(tmp_path):
    """Key files chowned on the host to the fetcher's user must be the
    fetcher's inside the image too: one fixed uid in both."""
    line = next(l for l in (pathlib.Path(__file__).resolve().parents[2] /
                            "deploy/systemd/secretsfs.sysusers")
                .read_text().splitlines() if l.startswith("u "))
    assert line.split()[1:3] == ["secretsfs", str(FETCHER_UID)]
    script = assembly_script()
    assert "secretsfs:x:%d:%d:" % (FETCHER_UID, FETCHER_UID) in script
    assert "secretsfs:x:%d:" % FETCHER_UID in script


def test_the_examples_users_agree():
    """compose.yaml's payment-api user can read, by the file modes of
    conf/secretsfs.json, every secret that config's payment-api rule
    allows (explain would say EACCES otherwise)."""
    import yaml
    root = pathlib.Path(__file__).resolve().parents[2]
    compose = yaml.safe_load((root / "deploy/compose/compose.yaml")
                             .read_text())
    cfg = json.loads((root / "conf/secretsfs.json").read_text())
    uid, gid = (int(x) for x in
                str(compose["services"]["payment-api"]["user"]).split(":"))
    rule = next(r for r in cfg["rules"] if r["id"] == "payment-api")
    defaults = cfg.get("defaults", {})
    assert rule["allow"]
    for name in rule["allow"]:
        s = dict(defaults, **cfg["secrets"][name])
        mode = int(s.get("mode", "0400"), 8)
        owner, group = s.get("uid", 0), s.get("gid", 0)
        assert isinstance(owner, int) and isinstance(group, int), name
        if uid == owner:
            bits = mode >> 6
        elif gid == group:
            bits = mode >> 3
        else:
            bits = mode
        assert bits & 4, "%s: mode %o %d:%d refuses %d:%d" % (
            name, mode, owner, group, uid, gid)


def test_the_build_context_leaves_out_build_trees_git_and_keys():
    root = pathlib.Path(__file__).resolve().parents[2]
    lines = [l.strip() for l in (root / ".dockerignore").read_text()
             .splitlines() if l.strip() and not l.startswith("#")]
    for pattern in (".git", "build", "build*/", "**/*.key", "**/*.pem"):
        assert pattern in lines, pattern
    # Nothing the build stage needs is left out.
    for needed in ("meson.build", "broker", "fuse", "include", "conf"):
        assert needed not in lines
