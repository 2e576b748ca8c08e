"""Real and made-up containers for the system tests.

Two ways to put a reader in a container, as the broker sees it:

- Podman with runc and a root filesystem holding only Debian's static
  busybox: no registry, no image, a real runtime and real namespaces. The
  container's processes carry a host cgroup ".../libpod-<64 hex>" that the
  broker reads from /proc/<pid>/cgroup. `podman system service` serves the
  Docker-compatible Engine API the broker asks for names and labels.
- A cgroup made by hand in the cgroup2 hierarchy, named as Docker,
  containerd, CRI-O or the kubelet name theirs, and a Python child that
  moves itself into it before it touches the mount: fast, and it covers
  layouts no runtime on this machine produces.
"""
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "cat", "ls", "sleep", "echo", "printf")

# Without these runc cannot set the limits podman asks for here: it is
# refused to raise a hard limit above the one it was started with.
PODMAN_RUN = ["podman", "run", "--runtime", "runc",
              "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000"]


def build_rootfs(root):
    """A root filesystem of one static busybox and the applets tests use."""
    root = str(root)
    for d in ("bin", "proc", "sys", "dev", "etc", "tmp", "run/secrets"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
    for a in APPLETS:
        link = os.path.join(root, "bin", a)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    return root


def busybox_is_static():
    """Debian's busybox-static, not a dynamic busybox that needs a libc."""
    try:
        with open(BUSYBOX, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    # A dynamic ELF names its interpreter in a PT_INTERP segment.
    return head[:4] == b"\x7fELF" and b"/lib64/ld-linux" not in head \
        and b"/lib/ld-linux" not in head


class Container:
    def __init__(self, name, cid, pid):
        self.name = name
        self.id = cid
        self.pid = pid

    def exec(self, argv, timeout=30):
        return subprocess.run(["podman", "exec", self.name] + list(argv),
                              capture_output=True, text=True, timeout=timeout)


class Podman:
    """Starts containers and removes every one of them at cleanup()."""

    def __init__(self, rootfs):
        self.rootfs = rootfs
        self.names = []

    def run(self, name, mount, labels=None, cmd=("/bin/sleep", "300")):
        argv = list(PODMAN_RUN) + ["-d", "--name", name,
                                   "-v", "%s:/run/secrets:ro" % mount]
        for k, v in (labels or {}).items():
            argv += ["--label", "%s=%s" % (k, v)]
        argv += ["--rootfs", self.rootfs] + list(cmd)
        # Recorded before it starts: a half-started container is removed too.
        self.names.append(name)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("podman run %s failed (%d):\n%s"
                                 % (name, r.returncode, r.stderr))
        info = subprocess.run(
            ["podman", "inspect", "--format", "{{.Id}} {{.State.Pid}}", name],
            capture_output=True, text=True, timeout=30, check=True)
        cid, pid = info.stdout.split()
        return Container(name, cid, int(pid))

    def cleanup(self):
        if self.names:
            subprocess.run(["podman", "rm", "-f", "-t", "0"] + self.names,
                           capture_output=True, timeout=60)
            self.names = []


def unique_name(role):
    return "sfs-test-%s-%s" % (secrets.token_hex(4), role)


class EngineService:
    """`podman system service` on a private socket: the Engine API."""

    def __init__(self):
        # Short: a Unix socket path has to fit in 108 bytes.
        self.dir = tempfile.mkdtemp(prefix="sfs-engine-")
        self.socket = os.path.join(self.dir, "podman.sock")
        self.proc = None
        self.log = open(os.path.join(self.dir, "service.log"), "wb")

    def start(self, timeout=30):
        self.proc = subprocess.Popen(
            ["podman", "system", "service", "--time=0",
             "unix://" + self.socket],
            stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("podman system service exited with %s"
                                     % self.proc.returncode)
            if self.get("/_ping")[0] == 200:
                # The broker gives the engine a second per question: have
                # the service's first container query behind us.
                self.get("/containers/json?all=true")
                return self
            time.sleep(0.05)
        raise AssertionError("podman system service did not answer on "
                             + self.socket)

    def get(self, path):
        """(status, body) of a GET on the socket; (0, b"") if it is down."""
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(self.socket)
        except OSError:
            return 0, b""
        try:
            s.sendall(("GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n"
                       % path).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            return 0, b""
        finally:
            s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        try:
            return int(head.split()[1]), body
        except (IndexError, ValueError):
            return 0, b""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- cgroups made by hand -------------------------------------------------

def cgroup2_mount():
    """(mountpoint, root) of the cgroup2 hierarchy from our mountinfo, or
    None. root is the cgroup the mount shows at its top, as /proc/<pid>/cgroup
    paths are spelled: "/" on the host."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup2":
                return fields[4], fields[3]
    return None


def own_cgroup2():
    """This process's cgroup2 path (the "0::" line)."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].rstrip("\n")
    return None


def hex64():
    return secrets.token_hex(32)


class FakeCgroups:
    """Cgroups made under the cgroup2 mount; remove() undoes every one."""

    def __init__(self):
        found = cgroup2_mount()
        if found is None:
            raise RuntimeError("no cgroup2 hierarchy is mounted")
        self.mountpoint, self.root = found
        self.created = []

    def path_of(self, rel):
        """The path /proc/<pid>/cgroup shows for cgroup rel."""
        rel = rel.strip("/")
        return self.root.rstrip("/") + "/" + rel

    def make(self, rel):
        """mkdir -p rel under the mount; the directory of the new cgroup."""
        d = self.mountpoint
        for part in rel.strip("/").split("/"):
            d = os.path.join(d, part)
            if not os.path.isdir(d):
                os.mkdir(d)
                self.created.append(d)
        return d

    def _evacuate(self, d):
        home = own_cgroup2()
        target = None
        if home is not None and home.startswith(self.root):
            target = os.path.join(self.mountpoint,
                                  home[len(self.root):].lstrip("/"),
                                  "cgroup.procs")
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids = f.read().split()
        except OSError:
            return
        for pid in pids:
            for dest in (target, os.path.join(self.mountpoint, "cgroup.procs")):
                if dest is None:
                    continue
                try:
                    with open(dest, "w") as f:
                        f.write(pid)
                    break
                except OSError:
                    continue

    def remove(self):
        # Deepest first: a cgroup with children cannot be removed.
        for d in sorted(self.created, key=len, reverse=True):
            for _ in range(100):
                self._evacuate(d)
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    # An exiting task leaves its cgroup a moment later.
                    time.sleep(0.02)
        self.created = []


# The reader: joins its cgroup before it touches the mount (the broker
# caches identities per pid), then waits to be told to read, so that
# `secretsfs explain --pid` can look at it before and after.
READER = r"""
import json, os, sys
procs, mnt = sys.argv[1], sys.argv[2]
names = sys.argv[3:]
with open(procs, "w") as f:
    f.write(str(os.getpid()))
print("ready", flush=True)
if sys.stdin.readline() != "go\n":
    sys.exit(0)
out = {"read": {}, "list": None}
for n in names:
    try:
        with open(os.path.join(mnt, n), "rb") as f:
            out["read"][n] = ["ok", f.read().hex()]
    except OSError as e:
        out["read"][n] = ["err", e.errno]
try:
    out["list"] = sorted(os.listdir(mnt))
except OSError as e:
    out["list"] = e.errno
print(json.dumps(out), flush=True)
sys.stdin.readline()
"""


class Reader:
    """A process in cgroup dir that reads names from mnt when told to."""

    def __init__(self, cgroup_dir, mnt, names):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", READER,
             os.path.join(cgroup_dir, "cgroup.procs"), mnt] + list(names),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("reader did not join %s" % cgroup_dir)

    @property
    def pid(self):
        return self.proc.pid

    def cgroup_line(self):
        with open("/proc/%d/cgroup" % self.pid) as f:
            return [l for l in f.read().splitlines() if l.startswith("0::")][0]

    def read(self):
        """{"read": {name: ["ok", hex] | ["err", errno]}, "list": [...]}"""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def finish(self):
        """End the reader, whether or not it has read (EOF ends it)."""
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
