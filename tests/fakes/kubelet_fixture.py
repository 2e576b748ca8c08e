"""Test-side handle on the fake kubelet (kubelet_server.py).

    pki = make_pki(tmp / "pki")
    kl = KubeletFake.start(tmp / "kubelet", pki)      # kl.token is allowed nodes/proxy
    kl.set_pods([pod("payments", "api", uid, "payments-api",
                     [("api", "registry.example/pay:1", "containerd://" + cid)],
                     labels={"app": "pay"})])
    kl.stats()["pods_requests"]
    kl.stop()

Tokens: kl.token (grants nodes/proxy), kl.forbidden_token (a user with no
grant: 403). Any other token is unknown to the TokenReview: 401.
"""

import json
import os
import secrets
import ssl
import subprocess
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
SERVER = os.path.join(HERE, "kubelet_server.py")


def container_status(name, image, container_id, restarts=0, running=True):
    """A core/v1 ContainerStatus as the kubelet reports it."""
    st = {"name": name, "image": image,
          "imageID": image.split(":")[0] + "@sha256:" + "0" * 64,
          "containerID": container_id, "ready": running, "started": running,
          "restartCount": restarts,
          "state": ({"running": {"startedAt": "2026-01-01T00:00:00Z"}}
                    if running else {"waiting": {"reason": "ContainerCreating"}}),
          "lastState": {}}
    if not container_id:
        del st["containerID"]
    return st


def pod(namespace, name, uid, service_account, containers, labels=None,
        init=(), ephemeral=(), node="node-1"):
    """A core/v1 Pod. containers, init, ephemeral: (name, image, containerID)."""
    def spec_c(c):
        return {"name": c[0], "image": c[1], "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "imagePullPolicy": "IfNotPresent"}
    doc = {
        "metadata": {"name": name, "namespace": namespace, "uid": uid,
                     "resourceVersion": "1", "creationTimestamp":
                     "2026-01-01T00:00:00Z", "labels": dict(labels or {}),
                     "annotations": {"kubernetes.io/config.source": "api"}},
        "spec": {"containers": [spec_c(c) for c in containers],
                 "serviceAccountName": service_account,
                 "serviceAccount": service_account,
                 "nodeName": node, "restartPolicy": "Always",
                 "dnsPolicy": "ClusterFirst"},
        "status": {"phase": "Running", "qosClass": "BestEffort",
                   "containerStatuses": [container_status(*c)
                                         for c in containers]},
    }
    if not labels:
        del doc["metadata"]["labels"]
    if init:
        doc["spec"]["initContainers"] = [spec_c(c) for c in init]
        doc["status"]["initContainerStatuses"] = [
            container_status(*c, running=False) for c in init]
    if ephemeral:
        doc["spec"]["ephemeralContainers"] = [
            {"name": c[0], "image": c[1], "targetContainerName":
             containers[0][0]} for c in ephemeral]
        doc["status"]["ephemeralContainerStatuses"] = [
            container_status(*c) for c in ephemeral]
    return doc


class KubeletFake:
    """A running kubelet_server.py. Attributes: addr, port, ca, token,
    forbidden_token, token_file (0600, holds token), workdir, log_path."""

    def __init__(self, workdir, pki):
        self.workdir = os.path.abspath(os.fspath(workdir))
        self.ca = pki.ca
        self.pki = pki
        self.pods_file = os.path.join(self.workdir, "pods.json")
        self.ready_file = os.path.join(self.workdir, "ready.json")
        self.log_path = os.path.join(self.workdir, "kubelet.log")
        self.token = "eyJ" + secrets.token_urlsafe(24)
        self.forbidden_token = "eyJ" + secrets.token_urlsafe(24)
        self.token_file = os.path.join(self.workdir, "token")
        self._proc = None
        self.port = 0
        self.addr = None

    @classmethod
    def start(cls, workdir, pki, pods=(), fine_grained=True, timeout=15,
              other_grants=()):
        """other_grants: the nodes/ subresources forbidden_token's user
        may get (none by default)."""
        self = cls(workdir, pki)
        os.makedirs(self.workdir, mode=0o700, exist_ok=True)
        tokens = os.path.join(self.workdir, "tokens.json")
        with open(tokens, "w") as f:
            json.dump({self.token: {"user": "system:serviceaccount:secretsfs:"
                                    "secretsfs", "grants": ["proxy"]},
                       self.forbidden_token: {"user": "system:serviceaccount:"
                                              "default:default",
                                              "grants": list(other_grants)}},
                      f)
        self.write_token(self.token)
        self.set_pods(pods)
        self._argv = [PYTHON, SERVER, "--cert", pki.server_cert, "--key",
                      pki.server_key, "--tokens", tokens, "--pods-file",
                      self.pods_file, "--ready-file", self.ready_file]
        if not fine_grained:
            self._argv.append("--no-fine-grained")
        self._launch(0, timeout)
        return self

    def write_token(self, token):
        """What the kubelet writes into a projected token volume."""
        tmp = self.token_file + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        os.replace(tmp, self.token_file)

    def set_pods(self, pods):
        tmp = self.pods_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(list(pods), f)
        os.replace(tmp, self.pods_file)

    def _launch(self, port, timeout):
        try:
            os.unlink(self.ready_file)
        except FileNotFoundError:
            pass
        log = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen(self._argv + ["--port", str(port)],
                                          stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=log)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError("fake kubelet exited; see " + self.log_path)
            try:
                with open(self.ready_file) as f:
                    ready = json.load(f)
                if ready.get("pid") == self._proc.pid:
                    break
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.02)
        else:
            self.stop()
            raise RuntimeError("fake kubelet not ready; see " + self.log_path)
        self.port = ready["port"]
        self.addr = "https://127.0.0.1:%d" % self.port

    def _fake(self, method, path):
        ctx = ssl.create_default_context(cafile=self.ca)
        req = urllib.request.Request(self.addr + path, method=method,
                                     data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return json.loads(r.read())

    def stats(self):
        return self._fake("GET", "/_fake/stats")

    def reset(self):
        self._fake("POST", "/_fake/reset")

    def stop(self):
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self, timeout=15):
        """Same port, same pods and tokens."""
        port = self.port
        self.stop()
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._launch(port, timeout)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def log_tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""
