"""Test-side handle on the fake Vault (vault_server.py) and the test PKI (mkpki.sh).

    pki = make_pki(tmp / "pki")                 # idempotent, fast when already made
    vault = VaultFake.start(tmp / "vault", pki, token_ttl=3)
    vault.kv_put("secret", "app/db", {"password": "..."})      # like `vault kv put`
    ... run secretsfs against vault.addr with pki.client_cert/client_key, CA pki.ca ...
    vault.stats()["kv_reads"]["secret/data/app/db"]
    vault.faults(status_once={"code": 500, "prefix": "/v1/secret/data/app/db"})
    vault.stop()

restart() keeps the port and, through the server's --state-file, the secrets, tokens and
configuration; it loses faults (so it comes back unsealed) and statistics.
Uses only the standard library; run under /usr/bin/python3.
"""

import json
import os
import secrets
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
SERVER = os.path.join(HERE, "vault_server.py")
MKPKI = os.path.join(HERE, "mkpki.sh")


class Pki:
    """Paths of the files mkpki.sh makes. Attribute names: ca, ca_key, server_cert,
    server_key, client_cert, client_key, client2_cert, client2_key, client_expired_cert,
    client_expired_key, other_ca, other_ca_key, client_otherca_cert, client_otherca_key,
    server_otherca_cert, server_otherca_key."""

    def __init__(self, outdir):
        self.dir = os.path.abspath(os.fspath(outdir))
        j = lambda n: os.path.join(self.dir, n)     # noqa: E731
        self.ca, self.ca_key = j("ca.crt"), j("ca.key")
        self.other_ca, self.other_ca_key = j("other-ca.crt"), j("other-ca.key")
        for name in ("server", "client", "client2", "client-expired", "client-otherca",
                     "server-otherca"):
            attr = name.replace("-", "_")
            setattr(self, attr + "_cert", j(name + ".crt"))
            setattr(self, attr + "_key", j(name + ".key"))

    def __fspath__(self):
        return self.dir


def make_pki(outdir):
    """Run mkpki.sh OUTDIR (creates it); returns a Pki. Raises CalledProcessError on failure."""
    subprocess.run(["/bin/bash", MKPKI, os.fspath(outdir)], check=True)
    return Pki(outdir)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):
        return None


class VaultFakeError(Exception):
    def __init__(self, status, body):
        super().__init__("fake vault answered %s: %s" % (status, body))
        self.status, self.body = status, body


class VaultFake:
    """A running vault_server.py. Public attributes: addr ("https://127.0.0.1:PORT"), port,
    root_token, pki (Pki), ca (server CA file), client_cert, client_key, workdir, log_path,
    state_file, pid."""

    def __init__(self, workdir, pki, argv_extra, root_token, quiet):
        self.workdir = os.path.abspath(os.fspath(workdir))
        self.pki = pki
        self.root_token = root_token
        self.ca, self.client_cert, self.client_key = pki.ca, pki.client_cert, pki.client_key
        self.log_path = os.path.join(self.workdir, "vault.log")
        self.state_file = os.path.join(self.workdir, "state.json")
        self.ready_file = os.path.join(self.workdir, "ready.json")
        self._argv_extra = list(argv_extra)
        self._quiet = quiet
        self._proc = None
        self._mount_versions = {}
        self.port = 0
        self.addr = None
        self.pid = None
        self.ports = []
        self.addrs = []

    @classmethod
    def start(cls, workdir, pki_dir, *, port=0, root_token=None, token_ttl=None,
              token_max_ttl=None, mounts=None, config=None, client_ca=None,
              server_cert=None, server_key=None, quiet=False, timeout=15, tls_max=None,
              nodes=1, token_errors=None, client_cert_mode="require", http2=True):
        """Launch the server and wait until it listens.
        pki_dir: a Pki or the directory mkpki.sh filled. mounts: {"secret": 2, "kv": 1}
        (the default). config: dict with the keys of configure() (approle, kubernetes,
        cert, auth_mounts, ...), applied on a fresh state. client_ca: CA bundle the
        handshake accepts (default pki.ca); it is also the cert auth role "default".
        tls_max: "1.0".."1.3", the newest TLS version the server offers (default: 1.2+).
        nodes: HA, this many nodes over one shared storage (addrs[i], ports[i]; faults
        take node=i). client_cert_mode: "require" (tls_require_and_verify_client_cert,
        the default here because the suites test a listener that demands a certificate)
        or "request" (Vault's own default: no certificate needed for the handshake).
        http2: also offer HTTP/2 by ALPN, as Vault does.
        token_errors: "modern" (default), "multierror" (the same two
        messages as one go-multierror text) or "legacy" (older Vault, OpenBao: a dead
        token is "permission denied" alone); absent: $VAULT_FAKE_TOKEN_ERRORS if set,
        so a whole suite can be run against another Vault generation."""
        pki = pki_dir if isinstance(pki_dir, Pki) else Pki(pki_dir)
        workdir = os.fspath(workdir)
        os.makedirs(workdir, mode=0o700, exist_ok=True)
        root_token = root_token or "hvs." + secrets.token_urlsafe(18)
        token_file = os.path.join(workdir, "root-token")
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(root_token)
        argv = ["--cert", server_cert or pki.server_cert, "--key", server_key or pki.server_key,
                "--client-ca", os.fspath(client_ca or pki.ca), "--root-token-file", token_file]
        if tls_max:
            argv += ["--tls-max", tls_max]
        if token_ttl is not None:
            argv += ["--token-ttl", str(token_ttl)]
        if token_max_ttl is not None:
            argv += ["--token-max-ttl", str(token_max_ttl)]
        for name, ver in (mounts or {}).items():
            argv += ["--mount", "%s=%d" % (name, ver)]
        token_errors = token_errors or os.environ.get("VAULT_FAKE_TOKEN_ERRORS")
        if token_errors:
            config = dict(config or {}, token_errors=token_errors)
        if nodes > 1:
            argv += ["--nodes", str(nodes)]
        argv += ["--client-cert-mode", client_cert_mode]
        if http2:
            argv.append("--http2")
        if config:
            cfg_file = os.path.join(workdir, "config.json")
            fd = os.open(cfg_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(config, f)
            argv += ["--config", cfg_file]
        self = cls(workdir, pki, argv, root_token, quiet)
        self._launch(port, timeout)
        return self

    def _launch(self, port, timeout):
        try:
            os.unlink(self.ready_file)
        except FileNotFoundError:
            pass
        argv = [PYTHON, SERVER, "--port", str(port), "--ready-file", self.ready_file,
                "--state-file", self.state_file] + self._argv_extra
        if self.ports[1:]:
            argv += ["--node-ports", ",".join(str(p) for p in self.ports[1:])]
        if self._quiet:
            argv.append("--quiet")
        log = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=log)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError("fake vault exited with %s; see %s:\n%s"
                                   % (self._proc.returncode, self.log_path, self.log_tail()))
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
            raise RuntimeError("fake vault not ready after %ss; see %s" % (timeout, self.log_path))
        self.port, self.pid = ready["port"], ready["pid"]
        self.addr = "https://127.0.0.1:%d" % self.port
        self.ports = list(ready.get("ports") or [self.port])
        self.addrs = ["https://127.0.0.1:%d" % p for p in self.ports]

    def log_tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        """SIGTERM, then SIGKILL after 5 s. Idempotent."""
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
        """Stop and start again on the same port with the saved state (see module doc)."""
        port = self.port
        self.stop()
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._launch(port, timeout)
            except RuntimeError:
                # The old listener can linger for a moment; retry the bind briefly.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- HTTP --

    def ssl_context(self, cert=None, key=None):
        """Client context trusting pki.ca and presenting the given (default: client) cert."""
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.load_cert_chain(cert or self.client_cert, key or self.client_key)
        return ctx

    def request(self, method, path, body=None, token=None, namespace=None, headers=None,
                timeout=10, cert=None, key=None, node=0):
        """Raw request: returns (status, parsed JSON body or None, headers). token defaults
        to the root token; pass token="" for none. Never raises on HTTP status (nor
        follows a redirect). node: which HA node to ask."""
        hdrs = dict(headers or {})
        token = self.root_token if token is None else token
        if token:
            hdrs["X-Vault-Token"] = token
        if namespace:
            hdrs["X-Vault-Namespace"] = namespace
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        base = self.addrs[node] if self.addrs else self.addr
        req = urllib.request.Request(base + path, data=data, method=method, headers=hdrs)
        ctx = self.ssl_context(cert, key)
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                             _NoRedirect())
        try:
            with opener.open(req, timeout=timeout) as resp:
                status, raw, rh = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as e:
            status, raw, rh = e.code, e.read(), dict(e.headers)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return status, parsed, rh

    def _ok(self, method, path, body=None, namespace=None):
        status, parsed, _ = self.request(method, path, body, namespace=namespace)
        if status >= 300:
            raise VaultFakeError(status, parsed)
        return parsed

    def mount_version(self, mount):
        if mount not in self._mount_versions:
            data = self._ok("GET", "/v1/sys/internal/ui/mounts/" + mount)["data"]
            self._mount_versions[mount] = int(data["options"]["version"])
        return self._mount_versions[mount]

    def _quote(self, path):
        return urllib.parse.quote(path.strip("/"))

    def kv_put(self, mount, path, data, namespace=None, cas=None):
        """Write a secret with the root token, exactly like `vault kv put`.
        Returns the new version (KV v2) or None (KV v1)."""
        p = self._quote(path)
        if self.mount_version(mount) == 1:
            self._ok("POST", "/v1/%s/%s" % (mount, p), data, namespace)
            return None
        body = {"data": data}
        if cas is not None:
            body["options"] = {"cas": cas}
        return self._ok("POST", "/v1/%s/data/%s" % (mount, p), body, namespace)["data"]["version"]

    def kv_get(self, mount, path, version=None, namespace=None):
        """The secret's data map, or None when absent, deleted or destroyed."""
        p = self._quote(path)
        if self.mount_version(mount) == 1:
            url = "/v1/%s/%s" % (mount, p)
        else:
            url = "/v1/%s/data/%s" % (mount, p) + ("?version=%d" % version if version else "")
        status, parsed, _ = self.request("GET", url, namespace=namespace)
        if status == 404:
            return None
        if status != 200:
            raise VaultFakeError(status, parsed)
        return parsed["data"] if self.mount_version(mount) == 1 else parsed["data"]["data"]

    def kv_delete(self, mount, path, namespace=None, versions=None):
        """KV v2: soft-delete the latest version (or `versions`); KV v1: delete the key."""
        p = self._quote(path)
        if self.mount_version(mount) == 1:
            self._ok("DELETE", "/v1/%s/%s" % (mount, p), namespace=namespace)
        elif versions:
            self._ok("POST", "/v1/%s/delete/%s" % (mount, p), {"versions": list(versions)},
                     namespace)
        else:
            self._ok("DELETE", "/v1/%s/data/%s" % (mount, p), namespace=namespace)

    def kv_undelete(self, mount, path, versions, namespace=None):
        self._ok("POST", "/v1/%s/undelete/%s" % (mount, self._quote(path)),
                 {"versions": list(versions)}, namespace)

    def kv_destroy(self, mount, path, versions, namespace=None):
        self._ok("PUT", "/v1/%s/destroy/%s" % (mount, self._quote(path)),
                 {"versions": list(versions)}, namespace)

    def kv_delete_metadata(self, mount, path, namespace=None):
        """KV v2: remove the key and all its versions."""
        self._ok("DELETE", "/v1/%s/metadata/%s" % (mount, self._quote(path)),
                 namespace=namespace)

    def health(self):
        """(status, body) of GET /v1/sys/health."""
        status, parsed, _ = self.request("GET", "/v1/sys/health", token="")
        return status, parsed

    # -- control plane --

    def stats(self):
        return self._ok("GET", "/_fake/stats")

    def reset_stats(self):
        self._ok("POST", "/_fake/reset_stats", {})

    def faults(self, **kw):
        """POST /_fake/faults with kw as the JSON body, e.g. sealed=True,
        status_once=429, status_n={"code": 500, "count": 3, "prefix": "/v1/secret/"},
        slow=2.5, drop=True, reset={"count": 1}, malformed={"prefix": ...},
        oversized=10_000_000, handshake={"count": 2}, status={"code": 500, "rate": 0.1},
        standby="redirect" (or "forward", "no_leader", {"mode", "active"}), clear=True,
        node=1 (sealed/standby apply to that HA node), rate_limit={"rate": n,
        "interval": s, "prefix", "retry_after", "headers"} (Vault's rate limit quota),
        hold={"prefix", "count", "timeout"} (see release()).
        Returns {"sealed": bool, "standby": {...} or None, "faults": [...]}."""
        return self._ok("POST", "/_fake/faults", kw)

    def clear_faults(self):
        return self.faults(clear=True)

    def configure(self, **kw):
        """POST /_fake/config: token_ttl, token_max_ttl, mounts, auth_mounts, approle,
        kubernetes, jwt, cert, deny, token_errors ("modern"|"legacy"), user_lockout
        ({threshold, duration, counter_reset, disable}) (each replaces its whole section;
        approle and user_lockout also reset use counts and lockouts). Returns the config."""
        self._mount_versions = {}
        return self._ok("POST", "/_fake/config", kw)

    def release(self, count=None, wait_for=0, timeout=10):
        """Let requests held by the "hold" fault go on: `count` of them (default all that
        wait), after waiting up to `timeout` s for `wait_for` to be waiting. Returns how
        many were waiting."""
        body = {"wait_for": wait_for, "timeout": timeout}
        if count is not None:
            body["count"] = count
        return self._ok("POST", "/_fake/release", body)["waiting"]

    def approle_state(self):
        """GET /_fake/approle: per role, its secret_ids' uses and remaining uses, expiry,
        failed logins and lockout (locked, locked_for seconds). No credential values."""
        return self._ok("GET", "/_fake/approle")

    def revoke_tokens(self, tokens=None, accessors=None):
        """Revoke every issued token (default) or the given ones. Returns how many."""
        body = {}
        if tokens is not None:
            body["tokens"] = list(tokens)
        if accessors is not None:
            body["accessors"] = list(accessors)
        return self._ok("POST", "/_fake/revoke_tokens", body)["revoked"]
