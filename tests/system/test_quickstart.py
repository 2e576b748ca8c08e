"""The README's first command, deploy/quickstart.sh, run for real.

It installs its Debian packages, builds ./build, starts the local Vault over
mutual TLS, mounts, and reads a secret as `nobody`. Only where it works is
moved (a private state directory, a mountpoint and a free port), so that it
does not disturb a quickstart a developer left running on this machine.

The quickstart prints the demo secret on purpose: that is what it shows. This
test never prints its output whole; on failure it shows it with the value
masked.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import ROOT, is_mounted, require_fuse

HEADER_READ = "read by the unprivileged user 'nobody'"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_pidfile(path):
    try:
        with open(path) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


@pytest.fixture
def demo():
    require_fuse()
    # Both must be reachable by other users: the fetcher runs as
    # `secretsfs` and reads its keys under the state directory, and
    # `nobody` walks to the mount.
    top = tempfile.mkdtemp(prefix="secretsfs-quickstart-", dir="/var/tmp")
    os.chmod(top, 0o711)
    d = {"dir": os.path.join(top, "demo"), "mnt": os.path.join(top, "mnt"),
         "port": free_port()}
    os.mkdir(d["mnt"])
    os.chmod(d["mnt"], 0o755)
    yield d
    for p in ("secretsfs.pid", "vault.pid"):
        stop_pidfile(os.path.join(d["dir"], p))
    deadline = time.monotonic() + 10
    while is_mounted(d["mnt"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    if is_mounted(d["mnt"]):
        subprocess.run(["umount", "-l", d["mnt"]], check=False)
    shutil.rmtree(top, ignore_errors=True)


def masked(text, value):
    return text.replace(value, "<value>") if value else text


def test_quickstart_reads_a_vault_secret_through_the_mount(demo):
    env = dict(os.environ,
               SECRETSFS_DEMO_DIR=demo["dir"],
               SECRETSFS_DEMO_MOUNT=demo["mnt"],
               SECRETSFS_DEMO_PORT=str(demo["port"]))
    r = subprocess.run(["sh", "deploy/quickstart.sh"], cwd=ROOT, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=600)
    out = r.stdout
    lines = out.splitlines()
    value = None
    for i, line in enumerate(lines):
        if HEADER_READ in line and i + 1 < len(lines):
            value = lines[i + 1].strip()
            break

    def fail(why):
        pytest.fail("%s\n--- quickstart output (value masked) ---\n%s"
                    % (why, masked(out, value)))

    if r.returncode != 0:
        fail("quickstart exited with %d" % r.returncode)
    # `openssl rand -base64 18` in the script: 24 characters.
    if not value or not re.fullmatch(r"[A-Za-z0-9+/]{24}", value):
        fail("no 24-character value after the 'nobody' read")

    # The value nobody printed is the one Vault holds, read again here.
    with open(os.path.join(demo["mnt"], "db_password")) as f:
        if f.read() != value:
            fail("the value nobody read differs from the mount's")
    with open(os.path.join(demo["mnt"], "db", "password")) as f:
        if f.read() != value:
            fail("the directory view of the secret differs")
    # Printed once, by the deliberate cat; never by the log or audit dump.
    if out.count(value) != 1:
        fail("the value appears %d times in the output" % out.count(value))

    if not re.search(r"^-r-------- 1 nobody nogroup +24 .* db_password$",
                     out, re.M):
        fail("ls -l does not show db_password as 0400 nobody:nogroup, 24 bytes")
    if "Permission denied" not in out:
        fail("the other user's read was not refused by the file's mode")
    if out.count("Read-only file system") < 2:
        fail("the write and the create were not both refused with EROFS")
    for comm in ("secretsfs ", "secretsfs-priv", "secretsfs-fetch"):
        if not re.search(r"^%s\s+pid \d+" % re.escape(comm), out, re.M):
            fail("the process list lacks %s" % comm.strip())
    if not re.search(r"^OK: \d+ records verified", out, re.M):
        fail("the audit trail did not verify cleanly")

    # The last line says how to stop it; do exactly that.
    m = re.search(r"To unmount and stop:\s+kill (\d+) (\d+)", out)
    if not m:
        fail("no stop instruction")
    for pid in m.groups():
        os.kill(int(pid), signal.SIGTERM)
    deadline = time.monotonic() + 10
    while is_mounted(demo["mnt"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not is_mounted(demo["mnt"]), "SIGTERM did not unmount"
