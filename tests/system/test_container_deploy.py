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
