"""Python API over tests/fakes/aws_server.py for the system tests.

    fake = AwsFake.start(workdir, pki_dir)          # pki_dir: ca.crt server.crt server.key
    fake.endpoint        https://127.0.0.1:PORT     Secrets Manager, STS, /_fake/ control
    fake.http_endpoint   http://127.0.0.1:HPORT     IMDSv2, ECS container credentials, STS
    fake.put_secret("db_password", string="hunter2")
    fake.faults(kind="throttle", count=1, operation="GetSecretValue")
    fake.stats()["operations"]["GetSecretValue"]
    fake.stop()

Every credential the fake accepts is generated here and handed to the server through a
0600 JSON config file, never argv or the environment.  The server runs under
/usr/bin/python3 (Debian's botocore).
"""

import base64
import http.client
import json
import os
import secrets as _rand
import signal
import ssl
import string
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).resolve().with_name("aws_server.py")


def _write_private(path, data):
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)


def _rand_str(n, alphabet=string.ascii_letters + string.digits):
    return "".join(_rand.choice(alphabet) for _ in range(n))


class AwsFakeError(RuntimeError):
    pass


class AwsFake:
    """A running aws_server.py subprocess and its test-facing facts."""

    def __init__(self):
        self.proc = None

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def start(cls, workdir, pki_dir, *, region="us-east-1", client_ca=False, http=True,
              port=0, http_port=0, temp_cred_ttl=None, secrets=None, deny=None,
              imds_v1=False, account_id="123456789012", role_name="secretsfs-node-role",
              extra_credentials=(), error_style=None, message_key=None,
              admin_cert=None, timeout=15.0):
        """Start the fake; return an AwsFake once it listens.

        workdir          the fake keeps its config, state, ready file and log in a
                         new private subdirectory aws-fake-XXXX of it (.workdir)
        pki_dir          holds ca.crt, server.crt, server.key (and client.crt/client.key
                         when client_ca=True and admin_cert is not given)
        client_ca        True: require a client certificate signed by pki_dir/ca.crt;
                         a path: require one signed by that CA
        http             also serve IMDS/ECS/STS over plain http on 127.0.0.1
        temp_cred_ttl    cap (seconds) on temporary credentials' lifetime
        secrets          {name: str | bytes} seeded as AWSCURRENT versions
        deny             [{"principal": akid|"role:NAME"|"user:NAME"|"*",
                           "operation": op|"*", "secret": glob}] -> AccessDeniedException
        extra_credentials  [(access_key, secret_key), ...] also accepted
        error_style      "qualified" to send com.amazonaws...#Code style error types
        message_key      "Message" to send the error text under a capital M
        """
        self = cls()
        Path(workdir).mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="aws-fake-", dir=str(workdir)))
        self.pki_dir = Path(pki_dir)
        self.ca_file = str(self.pki_dir / "ca.crt")
        self.region = region
        self.account_id = account_id
        self.role_name = role_name
        self.role_arn = "arn:aws:iam::%s:role/%s" % (account_id, role_name)
        self.access_key = "AKIA" + _rand_str(16, string.ascii_uppercase + "234567")
        self.secret_key = _rand_str(40, string.ascii_letters + string.digits + "+/")
        self.admin_token = _rand_str(32)
        self.ecs_token = _rand_str(48)
        self.ecs_path = "/v2/credentials/" + str(uuid.uuid4())
        # Shaped like a JWT (three base64url parts); the fake only compares it.
        self.web_identity_token = ".".join(
            base64.urlsafe_b64encode(_rand.token_bytes(n)).decode().rstrip("=")
            for n in (36, 120, 64))
        if client_ca is True:
            client_ca = self.ca_file
        self.client_ca = client_ca or None
        if admin_cert is None and self.client_ca:
            admin_cert = (str(self.pki_dir / "client.crt"), str(self.pki_dir / "client.key"))
        self.admin_cert = admin_cert
        self.config_path = self.workdir / "config.json"
        self.state_path = self.workdir / "state.json"
        self.ready_path = self.workdir / "ready.json"
        self.log_path = self.workdir / "server.log"

        cfg = {
            "region": region,
            "account_id": account_id,
            "role_name": role_name,
            "admin_token": self.admin_token,
            "ecs_path": self.ecs_path,
            "ecs_token": self.ecs_token,
            "web_identity_tokens": [self.web_identity_token],
            "credentials": [{"access_key": self.access_key, "secret_key": self.secret_key,
                             "user": "secretsfs"}]
            + [{"access_key": a, "secret_key": s, "user": "extra%d" % i}
               for i, (a, s) in enumerate(extra_credentials)],
            "deny": list(deny or []),
            "imds_v1": bool(imds_v1),
            "secrets": [],
        }
        if temp_cred_ttl is not None:
            cfg["temp_cred_ttl"] = temp_cred_ttl
        if error_style is not None:
            cfg["error_style"] = error_style
        if message_key is not None:
            cfg["message_key"] = message_key
        for name, value in (secrets or {}).items():
            if isinstance(value, bytes):
                cfg["secrets"].append({"name": name,
                                       "binary": base64.b64encode(value).decode()})
            else:
                cfg["secrets"].append({"name": name, "string": value})
        _write_private(self.config_path, json.dumps(cfg))
        self._want_http = http
        self._spawn(port, http_port if http else None, timeout)
        return self

    def _spawn(self, port, http_port, timeout):
        if self.ready_path.exists():
            self.ready_path.unlink()
        argv = [PYTHON, str(SERVER),
                "--cert", str(self.pki_dir / "server.crt"),
                "--key", str(self.pki_dir / "server.key"),
                "--config", str(self.config_path),
                "--state-file", str(self.state_path),
                "--ready-file", str(self.ready_path),
                "--port", str(port)]
        if http_port is not None:
            argv += ["--http-port", str(http_port)]
        if self.client_ca:
            argv += ["--client-ca", str(self.client_ca)]
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log,
                                         close_fds=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AwsFakeError("aws fake exited with %d; log: %s\n%s" % (
                    self.proc.returncode, self.log_path, self.log_tail()))
            if self.ready_path.exists():
                try:
                    ready = json.loads(self.ready_path.read_text())
                except ValueError:
                    ready = None
                if ready:
                    break
            time.sleep(0.02)
        else:
            self.stop(kill=True)
            raise AwsFakeError("aws fake not ready after %.0fs; log: %s" % (
                timeout, self.log_path))
        self.pid = ready["pid"]
        self.port = ready["port"]
        self.http_port = ready["http_port"]
        self.endpoint = "https://127.0.0.1:%d" % self.port
        self.http_endpoint = ("http://127.0.0.1:%d" % self.http_port
                              if self.http_port else None)

    def stop(self, kill=False):
        """Stop the server (SIGTERM, or SIGKILL with kill=True); idempotent."""
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def restart(self, timeout=15.0):
        """Stop and start again on the same ports.  Secrets and issued temporary
        credentials survive (state file); stats, faults and config changes do not."""
        self.stop()
        self._spawn(self.port, self.http_port if self._want_http else None, timeout)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def log_tail(self, n=4000):
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    # ------------------------------------------------------------------ derived facts
    @property
    def imds_endpoint(self):
        return self.http_endpoint

    @property
    def ecs_full_uri(self):
        return self.http_endpoint + self.ecs_path if self.http_endpoint else None

    def write_credentials_file(self, path, profile="default"):
        """AWS shared credentials file (INI, 0600) holding the static key."""
        _write_private(path, "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                       % (profile, self.access_key, self.secret_key))
        return str(path)

    def write_web_identity_token(self, path):
        """File for AWS_WEB_IDENTITY_TOKEN_FILE (0600)."""
        _write_private(path, self.web_identity_token)
        return str(path)

    def write_ecs_token(self, path):
        """File for AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (0600)."""
        _write_private(path, self.ecs_token)
        return str(path)

    def boto3_client(self, service="secretsmanager", access_key=None, secret_key=None,
                     session_token=None, **config):
        """A real boto3 client pointed at the fake (static key unless given others)."""
        import boto3
        import botocore.config
        return boto3.client(
            service, region_name=self.region, endpoint_url=self.endpoint,
            verify=self.ca_file,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            aws_session_token=session_token,
            config=botocore.config.Config(**config) if config else None)

    # ------------------------------------------------------------------ control routes
    def _ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.admin_cert:
            ctx.load_cert_chain(*self.admin_cert)
        return ctx

    def _admin(self, route, body=None, method="POST"):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port,
                                           context=self._ssl_context(), timeout=30)
        try:
            data = json.dumps(body or {}).encode()
            conn.request(method, "/_fake/" + route, body=data,
                         headers={"X-Fake-Admin": self.admin_token,
                                  "Content-Type": "application/json"})
            r = conn.getresponse()
            raw = r.read()
        finally:
            conn.close()
        if r.status != 200:
            raise AwsFakeError("control route %s: HTTP %d %s" % (route, r.status,
                                                                 raw[:200]))
        return json.loads(raw)

    def put_secret(self, name, string=None, binary=None, stages=None, version_id=None,
                   arn_suffix=None):
        """Add a version of name (creating the secret); default stage AWSCURRENT, which
        moves the old AWSCURRENT to AWSPREVIOUS.  A new secret's ARN ends in
        -<arn_suffix> (6 letters/digits) when given, else in 6 random ones.  Returns
        ARN, Name, VersionId, VersionStages."""
        if (string is None) == (binary is None):
            raise ValueError("give exactly one of string= or binary=")
        body = {"name": name}
        if string is not None:
            body["string"] = string
        else:
            body["binary"] = base64.b64encode(binary).decode()
        if stages is not None:
            body["stages"] = list(stages)
        if version_id is not None:
            body["version_id"] = version_id
        if arn_suffix is not None:
            body["arn_suffix"] = arn_suffix
        return self._admin("secrets", body)

    def delete_secret(self, name):
        """Remove a secret at once (as ForceDeleteWithoutRecovery would)."""
        return self._admin("secrets", {"name": name, "delete": True})["deleted"]

    def describe(self, name):
        """ARN, Name, Deleted, VersionIdsToStages (including unlabelled versions)."""
        return self._admin("describe", {"name": name})

    def stats(self):
        """Counters since start or reset_stats(); see new_stats() in aws_server.py:
        operations, secrets{SecretId:{op:n}}, status, errors, signature_failures,
        auth_errors, access_keys, session_token_requests, credential_fetches,
        credential_failures, sts_unsigned, temp_credentials_issued, faults_fired,
        connections{https,http}, tls_resumed, client_certs."""
        return self._admin("stats", method="GET")

    def count(self, operation, secret_id=None):
        """Requests the fake saw for operation (and SecretId, as sent)."""
        st = self.stats()
        if secret_id is None:
            return st["operations"].get(operation, 0)
        return st["secrets"].get(secret_id, {}).get(operation, 0)

    def reset_stats(self):
        self._admin("reset_stats")

    def faults(self, kind=None, count=1, operation=None, secret_id=None, seconds=None,
               size=None, clear=False):
        """Arm a fault for the next `count` matching requests (-1: until cleared).

        kind: throttle (ThrottlingException 400 / IMDS 429 / STS Throttling),
              error500 (InternalServiceError 500), unavailable (503), slow (sleep
              `seconds`, then answer normally), malformed (truncated JSON, 200),
              drop (close the connection), decryption_failure (DecryptionFailure),
              access_denied (AccessDeniedException), huge (200 with a `size`-byte
              SecretString).
        operation: a Secrets Manager operation, or "imds", "ecs", "sts"; None = any.
        secret_id: name or ARN; None = any.  clear=True removes armed faults first.
        Returns the list of armed faults."""
        body = {"clear": bool(clear), "add": []}
        if kind is not None:
            f = {"kind": kind, "count": count}
            for k, v in (("operation", operation), ("secret_id", secret_id),
                         ("seconds", seconds), ("size", size)):
                if v is not None:
                    f[k] = v
            body["add"].append(f)
        return self._admin("faults", body)["faults"]

    def clear_faults(self):
        return self.faults(clear=True)

    def config(self, **kw):
        """Change at run time: clock_offset (seconds the fake's clock is ahead),
        temp_cred_ttl, deny, error_style, message_key, imds_v1, web_identity_tokens,
        ecs_token."""
        return self._admin("config", kw)

    def revoke_temp_credentials(self):
        """Every temporary credential issued so far becomes unknown
        (UnrecognizedClientException)."""
        return self._admin("revoke_temp_credentials")["revoked"]

    def expire_temp_credentials(self):
        """Every temporary credential issued so far expires now
        (ExpiredTokenException)."""
        return self._admin("expire_temp_credentials")["expired"]

    def temp_credentials(self):
        """Issued temporary credentials: AccessKeyId, source, expires, revoked."""
        return self._admin("temp_credentials", method="GET")["credentials"]
