#!/usr/bin/python3
"""A faithful local HashiCorp Vault for the secretsfs tests (Python standard library; the
jwt/kubernetes, aws and HTTP/2 parts load fake_jwt (python3-jwt), fake_sts (botocore) and
fake_h2 (python3-h2) only when used).

Wire behaviour follows /work/shared/reference/backend-api.md PART A: the /v1 envelope
(request_id, lease_id, renewable, lease_duration, data, wrap_info, warnings, auth,
mount_type), `{"errors":[...]}` errors, 404 `{"errors":[]}` for absent data and empty lists,
`Cache-Control: no-store` on every answer. HTTPS only. --client-cert-mode: "require" (the
default here, as deploy/quickstart.sh and the README promise mutual TLS; Vault's
tls_require_and_verify_client_cert: the handshake REFUSES a client without a certificate
signed by --client-ca) or "request" (Vault's own listener default: it asks for a client
certificate and serves clients without one; cert auth then has nothing to match). One
deviation: in "request" mode a presented certificate that does not verify still fails the
handshake (Python's ssl cannot defer verification as Go's tls.RequestClientCert does).
--http2 also offers HTTP/2 by ALPN, as Vault's Go listener does (see fake_h2).

/v1 routes
  GET|HEAD sys/health                      (?activecode= ?sealedcode= ?standbyok= ...)
  GET  sys/internal/ui/mounts/<any path>   the mount holding that path (type, options.version,
                                           path); 403 "preflight capability check ..." for a
                                           path in no mount, "permission denied" without a
                                           live token
  POST auth/<cert mount>/login             {"name": optional}; role matched against the
                                           handshake's client certificate
  POST auth/<approle mount>/login          {"role_id","secret_id"}
  POST auth/<kubernetes mount>/login       {"role","jwt"}; TokenReview-style checks for
                                           roles without a "jwts" list
  POST auth/<jwt mount>/login              {"role","jwt"}: signature, iss, sub, aud, exp, nbf,
                                           bound claims (jwt config)
  POST auth/<aws mount>/login              iam_http_request_method, iam_request_url, _body,
                                           _headers (base64): the signed GetCallerIdentity,
                                           re-signed with botocore (aws config)
  GET  auth/token/lookup-self, POST auth/token/renew-self {"increment"}, POST revoke-self
  KV v2 mount: data/<p> (GET ?version=, POST|PUT, DELETE), metadata/<p> (GET, LIST,
               POST|PUT, DELETE), delete/<p>, undelete/<p>, destroy/<p>, config
  KV v1 mount: <p> (GET, LIST, POST|PUT, DELETE)
  LIST is the LIST method or GET ?list=<Go bool> (?list=bogus: 400 {"errors":[]}).
  Tokens: X-Vault-Token, else "Authorization: Bearer". Each namespace has its own store.

Dead tokens (unknown, revoked, expired) get 403 ["permission denied", "invalid token"];
config token_errors "legacy" (older Vault, OpenBao) says ["permission denied"] alone. No
token at all is ["permission denied"]. AppRole roles may set secret_id_num_uses and
secret_id_ttl; approle logins are subject to Vault's user lockout (config user_lockout:
threshold 5, duration 15m, counter_reset 15m by default; a locked role_id gets 403
"permission denied"); GET /_fake/approle shows uses, remaining uses and lockouts.

HA: --nodes N listens on N ports over one shared storage; faults take "node": i for sealed
and standby (a standby's default active address is another node of this fake). A rate
limit quota (fault "rate_limit") answers 429 with Retry-After and X-Ratelimit-* headers.
stats "by_node", "token_by_node" and recent[].node say which node a request (and a
token) reached.

ACLs are modelled only as a deny list (config "deny"): a non-root token asking for a path
that matches one of its globs gets what Vault answers for a missing capability, 403
{"errors":["1 error occurred:\n\t* permission denied\n\n"]}. Otherwise any valid token may
do anything.

A standby node (fault "standby"): sys/health answers 429 (standbycode=, standbyok=true), and
every other /v1 request is, by mode, "forward": answered as the active node would (Vault's
default request forwarding); "redirect": 307 with Location: <active>/<same path>?<query> and no
body (forwarding disabled, or the client sent X-Vault-No-Request-Forwarding); "no_leader": 503
{"errors":["no active Vault instance found"]}.

Namespaces: the request's namespace is X-Vault-Namespace plus any leading path segments
naming a namespace ("/v1/team-a/secret/data/x"). A token belongs to the namespace it logged
in to and works there and in its children only (403 "permission denied" elsewhere). Config
namespaces {path: {auth_mounts}} makes the namespace list (and each one's auth mounts)
explicit: an unknown namespace is 404 "namespace not found". Without it any namespace
exists and has every auth mount.

Batch tokens (approle role token_type "batch"): hvb. prefix, auth.renewable false,
token_type "batch"; renew-self answers 400 "batch tokens cannot be renewed".
stats "list_forms" counts lists by how they were asked (LIST method, GET ?list=true).

Not modelled: response wrapping, PATCH, revoking a batch token.

Control routes (token: the root token), for the tests and for "the security team":
  GET  /_fake/stats                  counters (see State.new_stats)
  POST /_fake/reset_stats
  GET|POST /_fake/faults             see State.set_faults
  GET|POST /_fake/config             see State.configure (same JSON as --config FILE)
  GET  /_fake/approle                see State.approle_view
  POST /_fake/release                {"count": n, "wait_for": n, "timeout": s}: let held
                                     requests go on (fault "hold"), see State.release
  POST /_fake/revoke_tokens          {} = every non-root token, or {"tokens":[..]},
                                     {"accessors":[..]}
The root token also works on every /v1 route, so `vault kv put` equivalents (POST data/<p>)
are how a test rotates a secret.

stderr gets one line per request: method, path (no query), status. Never a body or token.
"""

import argparse
import fnmatch
import json
import os
import random
import re
import secrets
import signal
import socket
import ssl
import string
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

MAX_REQUEST_SIZE = 32 * 1024 * 1024     # Vault's MaxRequestSize
DEFAULT_LEASE_TTL = 2764800             # 768h, Vault's default lease TTL
DEFAULT_MAX_VERSIONS = 10               # KV v2 keeps 10 versions when max_versions is 0
VAULT_VERSION = "1.16.0"
HANDSHAKE_TIMEOUT = 10
IDLE_TIMEOUT = 60
RECENT_MAX = 500
B62 = string.ascii_letters + string.digits
# strconv.ParseBool, which Vault uses for ?list= (http/logical.go buildLogicalRequestNoAuth)
GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
            "0": False, "f": False, "F": False, "FALSE": False, "false": False,
            "False": False}
# Defaults of user lockout (helper/configutil/userlockout.go; docs concepts/user-lockout):
# 5 failed logins lock the alias for 15 minutes; the count resets after 15 idle minutes.
LOCKOUT_DEFAULTS = {"threshold": 5, "duration": 900, "counter_reset": 900, "disable": False}
# Auth methods user lockout applies to (docs concepts/user-lockout: ldap, userpass, approle)
LOCKOUT_METHODS = ("approle",)
TLS_VERSIONS = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
                "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}

V2_PATH_WARNING = ("Invalid path for a versioned K/V secrets engine. See the API docs for the "
                   "appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' "
                   "for this operation.")
STATUS_MESSAGES = {
    400: "invalid request", 403: "permission denied", 404: None, 405: "unsupported operation",
    412: "required index state not present", 429: "rate limit quota exceeded",
    500: "internal error", 502: "upstream error", 503: "Vault is sealed",
}


class VaultError(Exception):
    """An answer other than success: status + errors list (empty list = `{"errors":[]}`)."""

    def __init__(self, status, *errors):
        super().__init__(status)
        self.status = status
        self.errors = list(errors)


class InvalidCredentials(VaultError):
    """A VaultError that is also logical.ErrInvalidCredentials (sdk/logical/error.go): the
    client sees the same answer, the user lockout counts it."""


def rand62(n):
    return "".join(secrets.choice(B62) for _ in range(n))


def new_uuid():
    return str(uuid.uuid4())


def rfc3339(t_ns):
    """Go's RFC3339Nano in UTC: trailing zeros of the fraction dropped."""
    frac = ("%09d" % (t_ns % 1_000_000_000)).rstrip("0")
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t_ns // 1_000_000_000))
    return base + ("." + frac if frac else "") + "Z"


_DUR = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h|d)")
_DUR_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600,
             "d": 86400}


def parse_duration(v):
    """Vault accepts seconds as a number or a numeric string, or a Go duration ("1h30m")."""
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise ValueError("bad duration")
    if isinstance(v, (int, float)):
        return int(v)
    s = str(v).strip()
    if re.fullmatch(r"[0-9]+", s):
        return int(s)
    pos, total = 0, 0.0
    for m in _DUR.finditer(s):
        if m.start() != pos:
            raise ValueError("bad duration")
        total += float(m.group(1)) * _DUR_UNIT[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError("bad duration")
    return int(total)


def fmt_duration(secs):
    """Go's time.Duration.String() for whole seconds."""
    secs = int(secs)
    if secs == 0:
        return "0s"
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    out = ""
    if h:
        out += "%dh" % h
    if h or m:
        out += "%dm" % m
    return out + "%ds" % s


def sorted_deep(obj):
    """Go marshals map[string]interface{} with sorted keys; the envelope's data is such a map."""
    if isinstance(obj, dict):
        return {k: sorted_deep(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [sorted_deep(x) for x in obj]
    return obj


def pem_subjects(pem_text):
    """Subject DNs of every certificate in a PEM bundle, in getpeercert() form."""
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem_text,
                        re.S)
    subjects = []
    for block in blocks:
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
            f.write(block + "\n")
            f.flush()
            # Private but present since Python 3.2; the fake is stdlib-only by design.
            decoded = ssl._ssl._test_decode_cert(f.name)
        subjects.append(dn_key(decoded["subject"]))
    return subjects


def dn_key(dn):
    return tuple(tuple((k, v) for k, v in rdn) for rdn in dn)


def dn_cn(dn):
    for rdn in dn:
        for k, v in rdn:
            if k == "commonName":
                return v
    return ""


class State:
    """Everything the server knows. One lock; handlers hold it only briefly."""

    def __init__(self, args):
        self.lock = threading.RLock()
        self.root_token = args.root_token
        self.state_file = args.state_file
        self.token_ttl = args.token_ttl
        self.token_max_ttl = args.token_max_ttl
        self.mounts = {}
        for spec in args.mount or ["secret=2", "kv=1"]:
            name, _, ver = spec.partition("=")
            self.mounts[name.strip("/")] = int(ver or 2)
        self.auth_mounts = {"cert": "cert", "approle": "approle", "kubernetes": "kubernetes",
                            "jwt": "jwt", "aws": "aws"}
        self.approle = {}
        self.kubernetes = {}
        self.jwt = {}
        self.kubernetes_config = {}
        self.aws = {}
        self.namespaces = None      # None: implicit; else {path: {"auth_mounts": {..}}}
        with open(args.client_ca) as f:
            self.cert = {"default": {"certificate": f.read(), "policies": ["default"]}}
        self.cert_subjects = {}
        self.deny = []  # path globs denied to every non-root token
        self.token_errors = "modern"    # or "legacy": see Handler.dead_token_error
        self.user_lockout = dict(LOCKOUT_DEFAULTS)
        self.approle_usage = {}     # role -> {"issued": t, "uses": {index: n}}
        self.lockouts = {}          # "mount:role_id" -> {"failures", "last", "locked_at"}
        self.rate_limit = None      # see set_faults "rate_limit"
        self.rate_window = {}       # quota window start and count, per node
        self.hold_cond = threading.Condition(self.lock)
        self.hold_tickets = self.hold_released = self.held_waiting = 0
        self.kv1 = {}   # ns -> mount -> path -> data
        self.kv2 = {}   # ns -> mount -> path -> entry
        self.tokens = {}
        # HA: one entry per listening node, all sharing this storage (Vault HA with a
        # shared storage backend): sealed, standby (None or {"mode", "active"}), addr.
        self.nodes = [{"sealed": False, "standby": None, "addr": None}
                      for _ in range(max(1, getattr(args, "nodes", 1)))]
        self.faults = []
        self.cluster_id = new_uuid()
        self.cluster_name = "vault-cluster-" + secrets.token_hex(4)
        self.stats = self.new_stats()
        if self.state_file and os.path.exists(self.state_file):
            self.load()     # a restart: the saved config wins over --config
        elif args.config:
            with open(args.config) as f:
                self.configure(json.load(f))
        self.refresh_cert_subjects()

    # -- persistence: lets restart() keep secrets, tokens and config (not faults, stats) --

    PERSIST = ("token_ttl", "token_max_ttl", "mounts", "auth_mounts", "approle", "kubernetes",
               "cert", "deny", "kv1", "kv2", "tokens", "token_errors", "user_lockout",
               "approle_usage", "lockouts", "jwt", "kubernetes_config", "aws",
               "namespaces")

    def load(self):
        with open(self.state_file) as f:
            saved = json.load(f)
        for key in self.PERSIST:
            if key in saved:
                setattr(self, key, saved[key])

    def save(self):
        if not self.state_file:
            return
        blob = json.dumps({k: getattr(self, k) for k in self.PERSIST}).encode()
        tmp = self.state_file + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, self.state_file)

    # -- configuration --

    def configure(self, cfg):
        """Each key given replaces that whole section:
        token_ttl, token_max_ttl (seconds or "1h"), mounts {name: 1|2},
        auth_mounts {mount: "cert"|"approle"|"kubernetes"},
        approle {role_name: {role_id, secret_id | secret_ids [..] | null (no secret needed),
                             secret_id_num_uses (per secret_id), secret_id_ttl (from
                             configuration time), policies, token_ttl, token_max_ttl,
                             token_type "service" (default) | "batch"}},
        token_errors "modern" | "multierror" | "legacy", user_lockout {threshold, duration,
                     counter_reset, disable},
        kubernetes {role: {jwts [..], policies, service_account_name,
                           service_account_namespace, token_ttl, token_max_ttl}
                    (opaque tokens, accepted as listed: the old, kind mode), or
                    {bound_service_account_names [globs], bound_service_account_namespaces
                     [globs], audience, policies, ...}: real JWTs, TokenReview-checked},
        kubernetes_config {api_signing_keys [PEM]: keys of the fake API server that
                    TokenReview trusts; api_audiences [..] (default the in-cluster API
                    server's); token_reviewer_jwt: Vault's own reviewer JWT, or absent:
                    the client's JWT reviews itself; pem_keys [PEM]: Vault verifies the
                    signature locally too; issuer; revoked_uids [..]},
        aws {iam_server_id_header_value, credentials {access_key_id: {secret_access_key,
             session_token, arn, user_id}} (what the fake's STS knows), roles {name:
             {auth_type "iam", bound_iam_principal_arn [ARNs or globs ending in *],
              policies, token_ttl, token_max_ttl}}},
        namespaces [paths] | {path: {auth_mounts {mount: kind}}} | null (implicit),
        jwt {jwt_validation_pubkeys [PEM], bound_issuer, jwt_supported_algs [..],
             roles {name: {bound_audiences, bound_subject, bound_claims {claim: value |
                           [values]}, user_claim (default "sub"), policies, token_ttl,
                           token_max_ttl}}},
        cert {name: {certificate PEM | certificate_file path, allowed_common_names [globs],
                     policies, token_ttl, token_max_ttl}},
        deny [globs]: paths (relative to the namespace, as in a policy: "secret/data/team/*")
                     that no non-root token may use."""
        known = {"token_ttl", "token_max_ttl", "mounts", "auth_mounts", "approle",
                 "kubernetes", "cert", "deny", "token_errors", "user_lockout", "jwt",
                 "kubernetes_config", "aws", "namespaces"}
        unknown = set(cfg) - known
        if unknown:
            raise VaultError(400, "unknown config keys: " + ", ".join(sorted(unknown)))
        with self.lock:
            for key in ("token_ttl", "token_max_ttl"):
                if key in cfg:
                    setattr(self, key, parse_duration(cfg[key]))
            if "mounts" in cfg:
                self.mounts = {k.strip("/"): int(v) for k, v in cfg["mounts"].items()}
            if "auth_mounts" in cfg:
                self.auth_mounts = {k.strip("/"): v for k, v in cfg["auth_mounts"].items()}
            for key in ("approle", "kubernetes", "jwt", "kubernetes_config", "aws"):
                if key in cfg:
                    setattr(self, key, dict(cfg[key] or {}))
            if "approle" in cfg:
                # New roles, new secret IDs: their use counts and lockouts start afresh.
                self.approle_usage = {n: {"issued": time.time(), "uses": {}}
                                      for n in self.approle}
                self.lockouts = {}
            if "namespaces" in cfg:
                ns = cfg["namespaces"]
                if ns is None:
                    self.namespaces = None
                else:
                    if isinstance(ns, list):
                        ns = {n: {} for n in ns}
                    self.namespaces = {k.strip("/"): dict(v or {}) for k, v in ns.items()}
            if "token_errors" in cfg:
                if cfg["token_errors"] not in ("modern", "multierror", "legacy"):
                    raise VaultError(400, 'token_errors: "modern", "multierror" or "legacy"')
                self.token_errors = cfg["token_errors"]
            if "user_lockout" in cfg:
                ul = dict(LOCKOUT_DEFAULTS)
                for k, v in (cfg["user_lockout"] or {}).items():
                    if k not in LOCKOUT_DEFAULTS:
                        raise VaultError(400, "user_lockout: unknown key %s" % k)
                    ul[k] = bool(v) if k == "disable" else (
                        int(v) if k == "threshold" else parse_duration(v))
                self.user_lockout = ul
                self.lockouts = {}
            if "deny" in cfg:
                deny = cfg["deny"] or []
                if not isinstance(deny, list) or not all(isinstance(g, str) for g in deny):
                    raise VaultError(400, "deny: expected a list of path globs")
                self.deny = list(deny)
            if "cert" in cfg:
                roles = {}
                for name, role in (cfg["cert"] or {}).items():
                    role = dict(role)
                    if "certificate_file" in role:
                        with open(role.pop("certificate_file")) as f:
                            role["certificate"] = f.read()
                    roles[name] = role
                self.cert = roles
                self.refresh_cert_subjects()
            self.save()

    def refresh_cert_subjects(self):
        self.cert_subjects = {name: pem_subjects(role.get("certificate", ""))
                              for name, role in self.cert.items()}

    def public_config(self):
        with self.lock:
            return {"token_ttl": self.token_ttl, "token_max_ttl": self.token_max_ttl,
                    "mounts": self.mounts, "auth_mounts": self.auth_mounts,
                    "approle": self.approle, "kubernetes": self.kubernetes,
                    "deny": self.deny, "token_errors": self.token_errors,
                    "user_lockout": self.user_lockout, "jwt": self.jwt,
                    "kubernetes_config": {k: v for k, v in self.kubernetes_config.items()
                                          if k != "token_reviewer_jwt"},
                    "aws": {k: v for k, v in self.aws.items() if k != "credentials"},
                    "namespaces": self.namespaces,
                    "cert": {n: {k: v for k, v in r.items() if k != "certificate"}
                             for n, r in self.cert.items()}}

    # -- faults --

    TERMINAL = ("status", "drop", "reset", "malformed", "oversized")

    def set_faults(self, spec):
        """{"clear": true} drops every fault, unseals and makes the node active (applied first);
        {"sealed": bool};
        {"standby": false | "forward" | "redirect" | "no_leader" | {mode, active}}
                                                               this node becomes a standby
                                                               (see the module doc); active is
                                                               the active node's address
                                                               (default https://127.0.0.2:8200);
        {"status_once": 429 | {code, prefix}}                  next request only;
        {"status_n": {code, count, prefix}};
        {"status": 500 | {code, count, prefix, message, retry_after}};
        {"slow": seconds | {seconds, count, prefix}};
        {"drop": true | {count, prefix}}                       close without answering;
        {"reset": true | {count, prefix}}                      200 headers and part of the
                                                               body, then a TCP reset;
        {"malformed": true | {count, prefix}}                  200 with broken JSON;
        {"oversized": nbytes | {bytes, count, prefix}}         200, valid JSON of that size;
        {"handshake": true | {count}}                          new connections are closed
                                                               before the TLS handshake;
        {"hold": true | {count, prefix, timeout}}              the request waits, before it
                                                               is served, until POST
                                                               /_fake/release (or timeout,
                                                               default 30 s): a test decides
                                                               what happens meanwhile;
        {"rate_limit": {rate, interval, prefix, retry_after, headers}}  Vault's rate limit
                                                               quota (429, Retry-After);
        {"node": i}                                            sealed/standby apply to HA
                                                               node i.
        count absent/null = until cleared; prefix defaults to "/v1/" and matches the URL path.
        rate (0 < rate <= 1, default 1) applies a fault to that share of the requests it
        matches, chosen at random; only those count down.
        A value of false/null removes the faults of that kind. A list adds several."""
        with self.lock:
            if spec.get("clear"):
                self.faults = []
                self.hold_released = self.hold_tickets      # nobody stays held
                self.hold_cond.notify_all()
                self.rate_limit = None
                self.rate_window = {}
                for nd in self.nodes:
                    nd["sealed"], nd["standby"] = False, None
            try:
                node = self.nodes[int(spec.get("node") or 0)]
            except (IndexError, ValueError, TypeError):
                raise VaultError(400, "node: 0..%d" % (len(self.nodes) - 1))
            if "sealed" in spec:
                node["sealed"] = bool(spec["sealed"])
            if "standby" in spec:
                sb = spec["standby"]
                if sb is None or sb is False:
                    node["standby"] = None
                else:
                    sb = dict(sb) if isinstance(sb, dict) else {"mode": sb}
                    if sb.get("mode") not in ("forward", "redirect", "no_leader"):
                        raise VaultError(400, "standby mode: forward, redirect or no_leader")
                    # the active node: another node of this fake when there is one
                    others = [n["addr"] for n in self.nodes
                              if n is not node and n["addr"] and not n["standby"]]
                    sb.setdefault("active", others[0] if others else
                                  "https://127.0.0.2:8200")
                    node["standby"] = sb
            if "rate_limit" in spec:
                rl = spec["rate_limit"]
                if rl is None or rl is False:
                    self.rate_limit = None
                else:
                    rl = dict(rl) if isinstance(rl, dict) else {"rate": rl}
                    rl["rate"] = int(rl.get("rate", 1))
                    rl["interval"] = float(rl.get("interval", 1))
                    rl.setdefault("prefix", "/v1/")
                    rl.setdefault("headers", True)
                    self.rate_limit = rl
                self.rate_window = {}
            scalar = {"status_once": "code", "status_n": "code", "status": "code",
                      "slow": "seconds", "hold": "timeout", "drop": None, "reset": None,
                      "malformed": None, "oversized": "bytes", "handshake": None}
            for key, val in spec.items():
                if key in ("clear", "sealed", "standby", "node", "rate_limit"):
                    continue
                if key not in scalar:
                    raise VaultError(400, "unknown fault %r" % key)
                kind = "status" if key.startswith("status") else key
                if val is None or val is False:
                    self.faults = [f for f in self.faults if f["kind"] != kind]
                    continue
                for item in (val if isinstance(val, list) else [val]):
                    f = dict(item) if isinstance(item, dict) else (
                        {scalar[key]: item} if scalar[key] else {})
                    f["kind"] = kind
                    f.setdefault("prefix", "/v1/")
                    f.setdefault("count", 1 if key == "status_once" else None)
                    if key == "status_n" and f["count"] is None:
                        raise VaultError(400, "status_n needs a count")
                    if kind == "status":
                        f["code"] = int(f.get("code", 500))
                    if kind == "slow":
                        f["seconds"] = float(f.get("seconds", 1))
                    if kind == "hold":
                        f["timeout"] = float(f.get("timeout") or 30)
                    if kind == "oversized":
                        f["bytes"] = int(f.get("bytes", 64 * 1024 * 1024))
                    f["rate"] = float(f.get("rate", 1))
                    if not 0 < f["rate"] <= 1:
                        raise VaultError(400, "rate must be in (0, 1]")
                    self.faults.append(f)
            return self.fault_view()

    def fault_view(self):
        with self.lock:
            nd = self.nodes[0]
            return {"sealed": nd["sealed"], "held_waiting": self.held_waiting,
                    "standby": dict(nd["standby"]) if nd["standby"] else None,
                    "nodes": json.loads(json.dumps(self.nodes)),
                    "rate_limit": dict(self.rate_limit) if self.rate_limit else None,
                    "faults": [dict(f) for f in self.faults]}

    def take_faults(self, path):
        """The slow fault and the terminal fault that apply to this request, counted down."""
        slow = terminal = hold = None
        with self.lock:
            for f in self.faults:
                if f["kind"] == "handshake" or not path.startswith(f["prefix"]):
                    continue
                if f["kind"] == "hold" and hold is None:
                    hold = f
                if f["kind"] == "slow" and slow is None:
                    slow = f
                elif f["kind"] in self.TERMINAL and terminal is None:
                    terminal = f
            slow, terminal, hold = (f if f is not None and (f["rate"] >= 1 or
                                                           random.random() < f["rate"])
                                    else None for f in (slow, terminal, hold))
            for f in (slow, terminal, hold):
                if f is not None:
                    self.count_down(f)
        if hold is not None:
            self.hold(hold["timeout"])
        return (dict(slow) if slow else None), (dict(terminal) if terminal else None)

    def hold(self, timeout):
        """Wait for a release (POST /_fake/release) or the timeout."""
        with self.hold_cond:
            self.hold_tickets += 1
            ticket = self.hold_tickets
            self.stats["held"] += 1
            self.held_waiting += 1
            self.hold_cond.notify_all()
            self.hold_cond.wait_for(lambda: self.hold_released >= ticket, timeout)
            self.held_waiting -= 1
            if self.hold_released < ticket:
                self.stats["hold_timeouts"] += 1
            self.hold_cond.notify_all()

    def release(self, count=None, wait_for=0, timeout=10):
        """Let `count` held requests (default: all waiting) go on; first wait (up to
        timeout) until at least wait_for are waiting. Returns how many were waiting."""
        with self.hold_cond:
            self.hold_cond.wait_for(lambda: self.held_waiting >= wait_for, timeout)
            waiting = self.held_waiting
            n = waiting if count is None else int(count)
            self.hold_released = min(self.hold_tickets, self.hold_released + n)
            self.hold_cond.notify_all()
            return waiting

    def take_quota(self, node, rel):
        """None when the rate limit quota lets the request through, else the seconds until
        its window resets. Each node keeps its own window, as Vault nodes count their own
        requests; sys/health is exempt (quotas rate_limit_exempt_paths default)."""
        with self.lock:
            rl = self.rate_limit
            if rl is None or rel == "sys/health" or not ("/v1/" + rel).startswith(
                    rl["prefix"]):
                return None
            now = time.monotonic()
            w = self.rate_window.get(node)
            if w is None or now - w["start"] >= rl["interval"]:
                w = self.rate_window[node] = {"start": now, "count": 0}
            w["count"] += 1
            if w["count"] <= rl["rate"]:
                return None
            self.stats["rate_limited"] += 1
            return max(0.0, w["start"] + rl["interval"] - now)

    def take_handshake_fault(self):
        """True when a new connection is to be closed before its TLS handshake."""
        with self.lock:
            for f in self.faults:
                if f["kind"] == "handshake" and (f["rate"] >= 1 or
                                                 random.random() < f["rate"]):
                    self.count_down(f)
                    return True
        return False

    def count_down(self, f):
        name = f["kind"] + (":%d" % f["code"] if f["kind"] == "status" else "")
        self.bump("faults", name)
        if f["count"] is not None:
            f["count"] -= 1
            if f["count"] <= 0:
                self.faults.remove(f)

    # -- statistics --

    @staticmethod
    def new_stats():
        return {
            "requests": 0,          # every /v1 request, faulted or not
            "by_path": {},          # "GET /v1/secret/data/db": n (LIST shown as LIST)
            "by_route": {},         # "kv2.read", "kv1.list", "login.cert", ...: n
            "status": {},           # "200": n
            "kv_reads": {},         # "[ns/]secret/data/db": n, reads that reached the KV store
            "kv_writes": {},
            "lists": {},
            "logins": {},           # auth type: successful logins
            "login_failures": {},
            "renewals": 0,
            "lookups": 0,
            "tokens_issued": 0,
            "permission_denied": 0,
            "invalid_token": 0,     # 403s that said "invalid token" (modern token_errors)
            "secret_id_uses": {},   # role: successful logins that used a secret_id
            "secret_ids_exhausted": {},     # role: logins refused, secret_id_num_uses used up
            "secret_ids_expired": {},       # role: logins refused, secret_id_ttl passed
            "lockouts": {},         # role: times its role_id got locked
            "locked_refusals": {},  # role: logins refused (403) while locked
            "rate_limited": 0,      # 429s from the rate limit quota
            "held": 0,              # requests the hold fault made wait
            "hold_timeouts": 0,     # of which nobody released
            "by_node": {},          # node index: /v1 requests it received
            "token_by_node": {},    # node index: of which carried a token (where it went)
            "namespace_denied": 0,  # live tokens refused outside their namespace
            "by_protocol": {},      # "HTTP/1.1" | "HTTP/2": /v1 requests
            "list_forms": {},       # "method" (LIST) | "query" (GET ?list=true): lists
            "token_reviews": {},    # kubernetes: "reviewer_jwt" | "client_jwt": n
            "token_review_failures": {},    # why the fake API server refused
            "sts_refusals": {},     # aws login: STS error code: n
            "acl_denied": {},       # "[ns/]secret/data/db": n, 403s from the deny list
            "standby": {},          # mode: requests a standby node answered itself
            "faults": {},           # fault kind (status:N): times applied
            "connections": 0,       # TLS connections accepted (connection reuse checks)
            "tls_resumed": 0,       # of which resumed a TLS session
            "handshake_failures": {},   # reason: n
            "recent": [],           # last requests: method, path, namespace, status, token,
                                    # x_vault_request; never values
        }

    def bump(self, section, key=None, n=1):
        with self.lock:
            if key is None:
                self.stats[section] += n
            else:
                d = self.stats[section]
                d[key] = d.get(key, 0) + n

    def snapshot_stats(self):
        with self.lock:
            return json.loads(json.dumps(self.stats))

    def reset_stats(self):
        with self.lock:
            self.stats = self.new_stats()

    # -- tokens --

    def issue_token(self, path, policies, meta, ttl, max_ttl, display_name, namespace="",
                    token_type="service"):
        """token_type "batch": Vault's batch token (hvb. prefix, not renewable; docs
        concepts/tokens "Token types")."""
        now = time.time()
        ttl = self.token_ttl if ttl is None else parse_duration(ttl)
        max_ttl = self.token_max_ttl if max_ttl is None else parse_duration(max_ttl)
        ttl = min(ttl, max_ttl)
        tok = {
            "id": ("hvb." if token_type == "batch" else "hvs.") + rand62(24),
            "accessor": rand62(24), "type": token_type,
            "policies": sorted(set(["default"] + list(policies or []))),
            "meta": meta, "path": path, "display_name": display_name,
            "creation_time": now, "creation_ttl": ttl, "renew_ttl": ttl,
            "expire_at": now + ttl, "max_expire_at": now + max_ttl,
            "entity_id": new_uuid(), "namespace": namespace,
        }
        with self.lock:
            self.tokens[tok["id"]] = tok
            self.stats["tokens_issued"] += 1
            self.save()
        return tok

    def root_record(self):
        return {"id": self.root_token, "accessor": "root-accessor", "policies": ["root"],
                "meta": None, "path": "auth/token/root", "display_name": "root",
                "creation_time": 0, "creation_ttl": 0, "renew_ttl": 0, "expire_at": None,
                "max_expire_at": None, "entity_id": ""}

    def lookup_token(self, token_id):
        if not token_id:
            return None
        if self.root_token and secrets.compare_digest(token_id, self.root_token):
            return self.root_record()
        with self.lock:
            tok = self.tokens.get(token_id)
            if tok is None:
                return None
            if tok["expire_at"] is not None and tok["expire_at"] <= time.time():
                del self.tokens[token_id]
                self.save()
                return None
            return dict(tok)

    def renew_token(self, token_id, increment):
        """(token, warnings), or (None, None) when it vanished since it was checked."""
        warnings = None
        if token_id == self.root_token:
            return self.root_record(), None     # never expires: nothing to renew
        with self.lock:
            tok = self.tokens.get(token_id)
            if tok is None:
                return None, None
            now = time.time()
            want = tok["renew_ttl"] if increment is None else increment
            new_expire = now + want
            if new_expire > tok["max_expire_at"]:
                new_expire = tok["max_expire_at"]
                warnings = ['TTL of "%s" exceeded the effective max_ttl of "%s"; TTL value is '
                            'capped accordingly' % (fmt_duration(want),
                                                    fmt_duration(new_expire - now))]
            tok["expire_at"] = new_expire
            self.stats["renewals"] += 1
            self.save()
            return dict(tok), warnings

    def revoke(self, tokens=None, accessors=None):
        with self.lock:
            before = len(self.tokens)
            if tokens is None and accessors is None:
                self.tokens = {}
            else:
                tokens, accessors = set(tokens or []), set(accessors or [])
                self.tokens = {k: v for k, v in self.tokens.items()
                               if k not in tokens and v["accessor"] not in accessors}
            self.save()
            return before - len(self.tokens)

    # -- user lockout (request_handling.go isUserLocked, failedUserLoginProcess) --

    def _lock_entry(self, mount, alias):
        now = time.time()
        cfg = self.user_lockout
        e = self.lockouts.get(mount + ":" + alias)
        if e is None:
            return None
        if e["locked_at"] is not None and now - e["locked_at"] >= cfg["duration"]:
            # a lockout that has run its lockout_duration is forgotten
            del self.lockouts[mount + ":" + alias]
            return None
        if e["locked_at"] is None and now - e["last"] >= cfg["counter_reset"]:
            del self.lockouts[mount + ":" + alias]
            return None
        return e

    def is_locked(self, mount, alias):
        with self.lock:
            if self.user_lockout["disable"]:
                return False
            e = self._lock_entry(mount, alias)
            return bool(e and e["locked_at"] is not None)

    def login_failed(self, mount, alias, role_name):
        with self.lock:
            if self.user_lockout["disable"]:
                return
            e = self._lock_entry(mount, alias) or {"failures": 0, "last": 0,
                                                   "locked_at": None, "role": role_name}
            e["failures"] += 1
            e["last"] = time.time()
            if e["failures"] >= self.user_lockout["threshold"] and e["locked_at"] is None:
                e["locked_at"] = e["last"]
                self.bump("lockouts", role_name)
            self.lockouts[mount + ":" + alias] = e
            self.save()

    def login_succeeded(self, mount, alias):
        """A successful login clears the alias's failed-login entry."""
        with self.lock:
            if self.lockouts.pop(mount + ":" + alias, None) is not None:
                self.save()

    def approle_view(self):
        """Per role: secret_id uses and what is left of them, expiry, lockout. Never a
        secret_id or role_id value."""
        now = time.time()
        out = {}
        with self.lock:
            for name, role in self.approle.items():
                valid = role.get("secret_ids") or (
                    [role["secret_id"]] if role.get("secret_id") else [])
                usage = self.approle_usage.get(name, {"issued": now, "uses": {}})
                limit = int(role.get("secret_id_num_uses") or 0)
                ttl = parse_duration(role.get("secret_id_ttl")) or 0
                ids = []
                for i in range(len(valid)):
                    used = usage["uses"].get(str(i), 0)
                    ids.append({"uses": used,
                                "remaining": max(0, limit - used) if limit else None,
                                "expired": bool(ttl and now >= usage["issued"] + ttl)})
                mount = next((m for m, k in self.auth_mounts.items() if k == "approle"),
                             "approle")
                e = self._lock_entry(mount, str(role.get("role_id", "")))
                out[name] = {"secret_ids": ids, "failures": e["failures"] if e else 0,
                             "locked": bool(e and e["locked_at"] is not None),
                             "locked_for": (round(e["locked_at"] + self.user_lockout[
                                 "duration"] - now, 1) if e and e["locked_at"] else 0)}
        return out

    # -- namespaces --

    def known_namespaces(self):
        if self.namespaces is not None:
            out = set()
            for n in self.namespaces:      # a child implies its parents
                segs = n.split("/")
                out.update("/".join(segs[:i]) for i in range(1, len(segs) + 1))
            return out
        out = set(self.kv1) | set(self.kv2)
        out.update(t.get("namespace") or "" for t in self.tokens.values())
        out.discard("")
        return out

    def auth_mounts_in(self, ns):
        """Auth mounts are per namespace: with a namespace list, a namespace has only the
        auth_mounts configured for it (the root namespace: the top-level auth_mounts);
        without one, every namespace has the top-level ones."""
        with self.lock:
            if not ns or self.namespaces is None:
                return dict(self.auth_mounts)
            return dict((self.namespaces.get(ns) or {}).get("auth_mounts") or {})

    # -- mounts --

    def find_mount(self, rel):
        best = None
        for m in self.mounts:
            if (rel == m or rel.startswith(m + "/")) and (best is None or len(m) > len(best)):
                best = m
        return best

    def kv_store(self, version, ns, mount):
        top = self.kv1 if version == 1 else self.kv2
        return top.setdefault(ns, {}).setdefault(mount, {})


def list_keys(paths, prefix):
    """Children of `prefix` among `paths`; folders carry a trailing "/"."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    keys = set()
    for p in paths:
        if p.startswith(prefix) and p != prefix:
            rest = p[len(prefix):]
            head, sep, _ = rest.partition("/")
            keys.add(head + "/" if sep else head)
    return sorted(keys)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY each
    # keep-alive answer waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT

    # BaseHTTPRequestHandler would log to stderr with the query string; we log ourselves.
    def log_message(self, fmt, *args):
        pass

    def version_string(self):
        return "Vault"

    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_LIST(self):
        self.dispatch("LIST")

    def do_PATCH(self):
        self.dispatch("PATCH")

    # -- plumbing --

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_REQUEST_SIZE:
                    self.close_connection = True
                    raise VaultError(413, "http: request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_SIZE:
            self.close_connection = True
            raise VaultError(413, "http: request body too large")
        return self.rfile.read(length) if length else b""

    def json_body(self):
        if not self.body.strip():
            return {}
        try:
            obj = json.loads(self.body)
        except ValueError as e:
            raise VaultError(400, "failed to parse JSON input: %s" % e)
        if not isinstance(obj, dict):
            raise VaultError(400, "failed to parse JSON input: not an object")
        return obj

    def send(self, status, payload=None, raw=None, headers=None):
        """The only place that answers. payload: JSON-able; raw: bytes or a callable writer."""
        if payload is not None:
            raw = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if raw is not None:
            self.send_header("Content-Type", "application/json")
            size = raw[0] if isinstance(raw, tuple) else len(raw)
            self.send_header("Content-Length", str(size))
        elif status != 204:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if raw is not None and self.command != "HEAD":
            if isinstance(raw, tuple):
                raw[1](self.wfile)
            else:
                self.wfile.write(raw)
        self.log_line(status)

    def send_error_body(self, err):
        self.send(err.status, {"errors": err.errors})

    def log_line(self, status):
        st = self.server.state
        if self.url_path.startswith("/v1/"):
            with st.lock:
                st.bump("status", str(status))
                recent = st.stats["recent"]
                recent.append({"method": self.method, "path": self.url_path,
                               "node": self.server.node,
                               "proto": getattr(self, "proto", "HTTP/1.1"),
                               "namespace": self.namespace, "status": status,
                               "token": self.token_kind,
                               "x_vault_request": self.headers.get("X-Vault-Request") == "true"})
                del recent[:-RECENT_MAX]
        if not self.server.quiet:
            sys.stderr.write("vault-fake: %s %s %s\n" % (self.method, self.url_path, status))
            sys.stderr.flush()

    def envelope(self, data=None, auth=None, mount_type="", lease_duration=0, warnings=None):
        return {"request_id": new_uuid(), "lease_id": "", "renewable": False,
                "lease_duration": lease_duration,
                "data": sorted_deep(data) if data is not None else None,
                "wrap_info": None, "warnings": warnings, "auth": auth, "mount_type": mount_type}

    def token_id(self):
        tok = self.headers.get("X-Vault-Token")
        if tok:
            return tok
        authz = self.headers.get("Authorization", "")
        if authz.startswith("Bearer "):
            return authz[len("Bearer "):].strip()
        return None

    def dead_token_error(self, presented):
        """What Vault says for a token that is no longer (or never was) valid. Since 2024
        Vault adds "invalid token" beside "permission denied" for a revoked, expired or
        unknown token (Vault docs concepts/tokens.mdx, "Error Responses"); a request with
        no token at all is only "permission denied" (request_handling.go CheckToken /
        fetchACLTokenEntryAndEntity: empty ClientToken -> ErrPermissionDenied). Older Vault
        and OpenBao (vault/request_handling.go) say "permission denied" alone in both
        cases: config token_errors "legacy". The docs do not say whether the two messages
        are two entries of "errors" or one go-multierror text (how Vault renders other
        combined errors, e.g. the ACL's "1 error occurred"); "multierror" gives the latter,
        so a client can be tested against both."""
        st = self.server.state
        with st.lock:
            mode = st.token_errors
        if presented and mode != "legacy":
            st.bump("invalid_token")
            if mode == "multierror":
                return VaultError(403, "2 errors occurred:\n\t* permission denied\n\t* "
                                       "invalid token\n\n")
            return VaultError(403, "permission denied", "invalid token")
        return VaultError(403, "permission denied")

    def require_token(self):
        st = self.server.state
        tok = st.lookup_token(self.token_id())
        if tok is None:
            self.token_kind = "invalid" if self.token_id() else "none"
            st.bump("permission_denied")
            raise self.dead_token_error(bool(self.token_id()))
        self.token_kind = "root" if tok["policies"] == ["root"] else "token"
        return tok

    # -- dispatch --

    def dispatch(self, method):
        st = self.server.state
        url = urlsplit(self.path)
        self.url_path = unquote(url.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.method = method
        self.wire_method = method
        self.list_query_error = False
        if method == "GET" and self.query.get("list"):
            # http/logical.go: "list" goes through strconv.ParseBool; a value it refuses
            # is a bare 400 before any routing.
            flag = GO_BOOLS.get(self.query["list"])
            if flag is None:
                self.list_query_error = True
            elif flag:
                method = self.method = "LIST"
        self.namespace = self.headers.get("X-Vault-Namespace", "").strip("/")
        self.token_kind = "none"
        try:
            self.body = self.read_body()
            if self.url_path.startswith("/_fake/"):
                return self.control()
            if not self.url_path.startswith("/v1/"):
                raise VaultError(404, "404 page not found")
            st.bump("requests")
            st.bump("by_node", str(self.server.node))
            st.bump("by_protocol", getattr(self, "proto", "HTTP/1.1"))
            if self.token_id():
                st.bump("token_by_node", str(self.server.node))
            st.bump("by_path", "%s %s" % (method, self.url_path))
            if method == "LIST":
                # how the client asked: the LIST method, or GET ?list=true (what
                # gateways and WAFs that refuse unknown methods let through)
                st.bump("list_forms", "method" if self.wire_method == "LIST" else "query")
            slow, terminal = st.take_faults(self.url_path)
            if slow:
                time.sleep(slow["seconds"])
            if terminal and self.apply_fault(terminal):
                return
            rel = self.url_path[len("/v1/"):]
            with st.lock:
                node = dict(st.nodes[self.server.node])
            # consts.ErrSealed: a sealed node answers 503 "Vault is sealed" to all but
            # sys/health (http/handler.go)
            if node["sealed"] and rel != "sys/health":
                raise VaultError(503, "Vault is sealed")
            standby = node["standby"]
            if standby and rel != "sys/health" and self.answer_as_standby(standby):
                return
            wait = st.take_quota(self.server.node, rel)
            if wait is not None:
                return self.quota_exceeded(rel, wait)
            if self.list_query_error:
                raise VaultError(400)
            self.route(rel)
        except VaultError as err:
            self.send_error_body(err)
        except (ConnectionError, ssl.SSLError, socket.timeout):
            self.close_connection = True
        except Exception as e:   # a bug in the fake: say which, but never echo the body
            sys.stderr.write("vault-fake: internal error %s: %s\n" % (type(e).__name__, e))
            self.send(500, {"errors": ["internal error"]})

    def apply_fault(self, f):
        """True when the fault answered (or refused to answer) the request."""
        kind = f["kind"]
        if kind == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.log_line("dropped")
            return True
        if kind == "reset":
            # Headers promise a whole answer; half of it comes, then an RST
            # (SO_LINGER 0), as from a proxy or server that dies mid-response.
            raw = json.dumps(self.envelope(data={"data": {"pad": "A" * 512}},
                                           mount_type="kv")).encode()
            self.send_response_only(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw[:len(raw) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
            self.connection.close()
            self.log_line("reset")
            return True
        if kind == "status":
            code = f["code"]
            msg = f.get("message", STATUS_MESSAGES.get(code, "fault injected"))
            headers = {}
            if f.get("retry_after") is not None:
                headers["Retry-After"] = str(f["retry_after"])
            self.send(code, {"errors": [msg] if msg else []}, headers=headers)
            return True
        if kind == "malformed":
            self.send(200, raw=b'{"request_id":"' + new_uuid().encode()
                      + b'","lease_id":"","renewable":false,"data":{"data":{"value":"tru')
            return True
        if kind == "oversized":
            head = json.dumps(self.envelope(data={"data": {"pad": ""}}, mount_type="kv"),
                              separators=(",", ":"))
            cut = head.index('"pad":"') + len('"pad":"')
            pre, post = head[:cut].encode(), head[cut:].encode()
            pad = max(0, f["bytes"] - len(pre) - len(post))

            def writer(w, pre=pre, post=post, pad=pad):
                w.write(pre)
                chunk = b"A" * 65536
                left = pad
                while left > 0:
                    w.write(chunk[:min(left, len(chunk))])
                    left -= min(left, len(chunk))
                w.write(post)
            self.send(200, raw=(len(pre) + pad + len(post), writer))
            return True
        return False

    def quota_exceeded(self, rel, wait):
        """http/util.go rateLimitQuotaWrapping: 429, errors ["request path \"<path>\": rate
        limit quota exceeded"]; with rate limit response headers enabled, the quota's
        Retry-After and X-Ratelimit-* headers (vault/quotas/quotas_rate_limit.go)."""
        st = self.server.state
        with st.lock:
            rl = dict(st.rate_limit or {})
        headers = {}
        if rl.get("headers", True):
            retry = rl.get("retry_after")
            retry = int(retry) if retry is not None else max(1, int(-(-wait // 1)))
            headers = {"Retry-After": str(retry), "X-Ratelimit-Limit": str(rl.get("rate")),
                       "X-Ratelimit-Remaining": "0",
                       "X-Ratelimit-Reset": str(int(time.time() + wait))}
        self.send(429, {"errors": ['request path "%s": rate limit quota exceeded' % rel]},
                  headers=headers)

    def answer_as_standby(self, sb):
        """True when this standby answered itself (http/handler.go handleRequestForwarding,
        respondStandby); False when it forwards, i.e. the request is served as usual."""
        mode = sb["mode"]
        if mode == "forward" and not self.headers.get("X-Vault-No-Request-Forwarding"):
            return False
        self.server.state.bump("standby", mode)
        if mode == "no_leader":
            raise VaultError(503, "no active Vault instance found")
        active = urlsplit(sb["active"])
        query = urlsplit(self.path).query
        location = "%s://%s%s%s" % (active.scheme or "https", active.netloc,
                                    urlsplit(self.path).path, "?" + query if query else "")
        self.send(307, headers={"Location": location})
        return True

    def resolve_namespace(self, rel):
        """The request's namespace is X-Vault-Namespace joined with the longest leading
        part of the path that names a namespace (namespace store
        ResolveNamespaceFromRequest, called from request_handling.go); the rest is the
        path inside it. A namespace that does not exist is 404 "namespace not found".
        Without a configured namespace list, every header names a namespace (created on
        first use) and only known namespaces are taken from the path."""
        st = self.server.state
        header = self.namespace
        with st.lock:
            known = st.known_namespaces()
            strict = st.namespaces is not None
        if header and strict and header not in known:
            raise VaultError(404, "namespace not found")
        parts = rel.split("/")
        best = 0
        for i in range(1, len(parts)):
            cand = "/".join(([header] if header else []) + parts[:i])
            if cand in known:
                best = i
        if best:
            self.namespace = "/".join(([header] if header else []) + parts[:best])
            rel = "/".join(parts[best:])
        return rel

    def token_usable_here(self, tok, rel):
        """A token belongs to the namespace it logged in to and acts there and in its
        children, never in a parent or sibling (Vault Enterprise namespaces: a token's
        policies apply from its namespace down). The -self paths always go to the token's
        own namespace (request_handling.go: "auth/token/lookup-self", "renew-self",
        "revoke-self" use the token NS)."""
        tns = tok.get("namespace") or ""
        if not tns or rel in ("auth/token/lookup-self", "auth/token/renew-self",
                              "auth/token/revoke-self"):
            return True
        return self.namespace == tns or self.namespace.startswith(tns + "/")

    def acl_check(self, tok, rel):
        """The deny list stands in for policies: a denied capability is a 403 whose text
        Vault wraps with go-multierror (reference A2)."""
        st = self.server.state
        if tok["policies"] == ["root"]:
            return
        with st.lock:
            deny = list(st.deny)
        if any(fnmatch.fnmatchcase(rel, g) for g in deny):
            st.bump("permission_denied")
            st.bump("acl_denied", self.stat_key(rel))
            raise VaultError(403, "1 error occurred:\n\t* permission denied\n\n")

    def route(self, rel):
        st = self.server.state
        method = self.method
        if rel == "sys/health":
            return self.health()
        rel = self.resolve_namespace(rel)
        if rel.startswith("sys/internal/ui/mounts/") or rel == "sys/internal/ui/mounts":
            return self.ui_mount(rel[len("sys/internal/ui/mounts/"):])
        if rel.startswith("auth/"):
            parts = rel.split("/")
            if rel in ("auth/token/lookup-self",) and method in ("GET", "POST", "PUT"):
                return self.lookup_self()
            if rel == "auth/token/renew-self" and method in ("POST", "PUT"):
                return self.renew_self()
            if rel == "auth/token/revoke-self" and method in ("POST", "PUT"):
                tok = self.require_token()
                st.revoke(tokens=[tok["id"]])
                return self.send(204)
            mounts = st.auth_mounts_in(self.namespace)
            if len(parts) == 3 and parts[2] == "login" and parts[1] in mounts:
                if method not in ("POST", "PUT"):
                    raise VaultError(405, "unsupported operation")
                return self.login(parts[1], mounts[parts[1]])
        tok = self.require_token()
        if not self.token_usable_here(tok, rel):
            st.bump("namespace_denied")
            raise VaultError(403, "permission denied")
        self.acl_check(tok, rel)
        mount = st.find_mount(rel)
        if mount is None:
            if tok["policies"] == ["root"]:
                raise VaultError(404, 'no handler for route "%s". route entry not found.' % rel)
            raise VaultError(403, "permission denied")
        sub = rel[len(mount) + 1:]
        if st.mounts[mount] == 1:
            return self.kv1(mount, sub)
        return self.kv2(mount, sub)

    # -- sys --

    def health(self):
        st = self.server.state
        q = self.query
        with st.lock:
            node = dict(st.nodes[self.server.node])
        sealed, standby = node["sealed"], node["standby"]
        if sealed:
            code = int(q.get("sealedcode", 503))
        elif standby and q.get("standbyok") != "true":
            code = int(q.get("standbycode", 429))
        else:
            code = int(q.get("activecode", 200))
        body = {"clock_skew_ms": 0, "cluster_id": st.cluster_id, "cluster_name": st.cluster_name,
                "echo_duration_ms": 0, "enterprise": False, "initialized": True,
                "performance_standby": False, "replication_dr_mode": "disabled",
                "replication_performance_mode": "disabled", "sealed": sealed,
                "server_time_utc": int(time.time()), "standby": bool(standby),
                "version": VAULT_VERSION}
        if sealed:      # what a sealed node knows: no cluster identity, no replication state
            for k in ("cluster_id", "cluster_name", "clock_skew_ms", "echo_duration_ms"):
                body.pop(k)
            body.update(standby=True, replication_dr_mode="unknown",
                        replication_performance_mode="unknown")
        st.bump("by_route", "sys.health")
        self.send(code, body)

    def ui_mount(self, path):
        """logical_system.go pathInternalUIMountRead: any path inside a mount names that
        mount (router MatchingMountEntry, longest prefix); the path is sanitized to end
        in "/". The route is unauthenticated but the handler loads the caller's ACL itself
        (fetchACLTokenEntryAndEntity): no token or a dead one is a bare ErrPermissionDenied.
        A path in no mount, or a mount the token has no capability under (hasMountAccess),
        is a 403 carrying the "preflight capability check" text, so that the endpoint
        cannot be used to discover mounts; root is no exception for a missing mount."""
        st = self.server.state
        path = path.strip("/")
        if not path:
            raise VaultError(400, "path not set")
        tok = st.lookup_token(self.token_id())
        if tok is None:
            self.token_kind = "invalid" if self.token_id() else "none"
            st.bump("permission_denied")
            raise VaultError(403, "permission denied")
        self.token_kind = "root" if tok["policies"] == ["root"] else "token"
        preflight = VaultError(403, "preflight capability check returned 403, please ensure "
                                    "client's policies grant access to path \"%s/\"" % path)
        with st.lock:
            mount = st.find_mount(path)
            ver = st.mounts.get(mount)
            deny = list(st.deny)
            auth = None
            if mount is None and path.startswith("auth/"):
                name = path.split("/")[1]
                if name in st.auth_mounts:
                    auth = (name, st.auth_mounts[name])
        st.bump("by_route", "sys.internal-ui-mounts")
        if mount is None and auth is None:
            st.bump("permission_denied")
            raise preflight
        if tok["policies"] != ["root"] and mount is not None and any(
                fnmatch.fnmatchcase(mount + "/", g) or g in (mount + "/*", mount + "*")
                for g in deny):
            raise preflight     # the deny list takes the whole mount away
        if auth is not None:
            mtype, mpath, options = auth[1], auth[0] + "/", None
        else:
            mtype, mpath, options = "kv", mount + "/", {"version": str(ver)}
        data = {"accessor": "%s_%08x" % (mtype, (hash(mpath) & 0xffffffff)), "config": {
                    "default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0},
                "description": "", "external_entropy_access": False, "local": False,
                "options": options, "path": mpath, "plugin_version": "",
                "running_plugin_version": "v0.17.0+builtin", "seal_wrap": False,
                "type": mtype, "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, mpath))}
        self.send(200, self.envelope(data=data))

    # -- auth --

    def auth_block(self, tok, lease_duration, renewable=True):
        return {"client_token": tok["id"], "accessor": tok["accessor"],
                "policies": tok["policies"], "token_policies": tok["policies"],
                "metadata": tok["meta"], "lease_duration": int(lease_duration),
                "renewable": renewable, "entity_id": tok["entity_id"],
                "token_type": tok.get("type", "service"),
                "orphan": True, "mfa_requirement": None, "num_uses": 0}

    def login(self, mount, kind):
        st = self.server.state
        body = self.json_body()
        st.bump("by_route", "login." + kind)
        self.login_mount = mount
        # User lockout is checked before the auth method runs, keyed by mount and alias
        # (request_handling.go handleLoginRequest / isUserLocked): a locked alias gets
        # ErrPermissionDenied, a 403 "permission denied", even with good credentials.
        alias = str(body.get("role_id") or "").strip() if kind in LOCKOUT_METHODS else ""
        if alias and st.is_locked(mount, alias):
            st.bump("login_failures", kind)
            st.bump("locked_refusals", self.role_of(alias))
            raise VaultError(403, "permission denied")
        try:
            role_name, role, meta = getattr(self, "login_" + kind)(body)
        except InvalidCredentials as e:
            # Only ErrInvalidCredentials counts towards a lockout (request_handling.go:
            # routeErr == logical.ErrInvalidCredentials -> failedUserLoginProcess).
            st.bump("login_failures", kind)
            if alias:
                st.login_failed(mount, alias, self.role_of(alias))
            raise VaultError(e.status, *e.errors)
        except VaultError:
            st.bump("login_failures", kind)
            raise
        if alias:
            st.login_succeeded(mount, alias)
        tok = st.issue_token("auth/%s/login" % mount, role.get("policies"), meta,
                             role.get("token_ttl"), role.get("token_max_ttl"),
                             "%s-%s" % (mount, role_name), namespace=self.namespace,
                             token_type="batch" if role.get("token_type") == "batch"
                             else "service")
        st.bump("logins", kind)
        self.send(200, self.envelope(auth=self.auth_block(
            tok, tok["creation_ttl"], tok.get("type") != "batch"), mount_type=kind))

    def login_cert(self, body):
        st = self.server.state
        bad = VaultError(400, "invalid certificate or no client certificate supplied")
        peer = self.connection.getpeercert()
        if not peer:
            raise bad
        issuer, cn = dn_key(peer.get("issuer", ())), dn_cn(peer.get("subject", ()))
        wanted = body.get("name") or None
        with st.lock:
            roles = sorted(st.cert.items())
            subjects = dict(st.cert_subjects)
        for name, role in roles:
            # With a name, Vault loads only that role's certificates (path_login.go
            # loadTrustedCerts): an unknown name trusts nothing.
            if wanted and name != wanted:
                continue
            if issuer not in subjects.get(name, []):
                continue
            allowed = role.get("allowed_common_names")
            if allowed and not any(fnmatch.fnmatchcase(cn, g) for g in allowed):
                continue
            meta = {"authority_key_id": "", "cert_name": name, "common_name": cn,
                    "serial_number": str(int(peer.get("serialNumber", "0"), 16)),
                    "subject_key_id": ""}
            return name, role, meta
        raise bad

    def role_of(self, role_id):
        st = self.server.state
        with st.lock:
            for n, r in st.approle.items():
                if r.get("role_id") == role_id:
                    return n
        return "?"

    def login_approle(self, body):
        """builtin/credential/approle/path_login.go: an unknown role_id, and a missing
        secret_id, are plain 400s; a secret_id that does not exist (never did, used up by
        secret_id_num_uses, or expired by secret_id_ttl and tidied) is the same 400 body
        but ErrInvalidCredentials, which feeds the user lockout. The last permitted use
        deletes the secret_id (SecretIDNumUses == 1), so the next login fails."""
        st = self.server.state
        role_id = str(body.get("role_id") or "").strip()
        secret_id = str(body.get("secret_id") or "").strip()
        if not role_id:
            raise VaultError(400, "missing role_id")
        with st.lock:
            found = [(n, r) for n, r in st.approle.items() if r.get("role_id") == role_id]
            if not found:
                raise VaultError(400, "invalid role or secret ID")
            name, role = found[0]
            valid = role.get("secret_ids") or (
                [role["secret_id"]] if role.get("secret_id") else [])
            if not valid:      # bind_secret_id false
                return name, role, {"role_name": name}
            if not secret_id:
                raise VaultError(400, "missing secret_id")
            idx = next((i for i, s in enumerate(valid)
                        if secrets.compare_digest(secret_id, str(s))), None)
            if idx is None:
                raise InvalidCredentials(400, "invalid role or secret ID")
            usage = st.approle_usage.setdefault(name, {"issued": time.time(), "uses": {}})
            ttl = parse_duration(role.get("secret_id_ttl")) or 0
            if ttl and time.time() >= usage["issued"] + ttl:
                # Expired secret IDs are removed by the tidy function (path_tidy_user_id.go)
                st.bump("secret_ids_expired", name)
                raise InvalidCredentials(400, "invalid role or secret ID")
            limit = int(role.get("secret_id_num_uses") or 0)
            used = usage["uses"].get(str(idx), 0)
            if limit and used >= limit:
                st.bump("secret_ids_exhausted", name)
                raise InvalidCredentials(400, "invalid role or secret ID")
            usage["uses"][str(idx)] = used + 1
            st.bump("secret_id_uses", name)
            st.save()
        return name, role, {"role_name": name}

    def login_kubernetes(self, body):
        st = self.server.state
        role_name, jwt = body.get("role"), body.get("jwt")
        if not role_name:
            raise VaultError(400, "missing role")
        if not jwt:
            raise VaultError(400, "missing jwt")
        with st.lock:
            role = st.kubernetes.get(role_name)
            kcfg = dict(st.kubernetes_config)
        if role is None:
            raise VaultError(400, 'invalid role name "%s"' % role_name)
        if "jwts" not in role:
            return self.login_kubernetes_review(role_name, role, str(jwt), kcfg)
        if not any(secrets.compare_digest(str(jwt), str(j)) for j in role.get("jwts", [])):
            raise VaultError(403, "permission denied")
        meta = {"role": role_name,
                "service_account_name": role.get("service_account_name", "default"),
                "service_account_namespace": role.get("service_account_namespace", "default"),
                "service_account_secret_name": "",
                "service_account_uid": role.get("service_account_uid", new_uuid())}
        return role_name, role, meta

    def login_kubernetes_review(self, role_name, role, token, kcfg):
        """vault-plugin-auth-kubernetes path_login.go: parseAndValidateJWT (cap Validator,
        the signature checked only when pem_keys are configured; role "audience" as the
        expected aud; a failed signature is ErrPermissionDenied, other claim errors a 403
        carrying cap's text), then the bound service account name and namespace (403
        "service account name not authorized" / "namespace not authorized"), then a
        TokenReview (token_review.go): its bearer is token_reviewer_jwt when configured,
        else the client's own JWT, which the API server authenticates like any bearer,
        so its aud must then include the API server's audience. Any TokenReview failure
        is ErrPermissionDenied."""
        import fake_jwt
        st = self.server.state
        try:
            if kcfg.get("pem_keys"):
                claims = fake_jwt.verify_signature(token, kcfg["pem_keys"],
                                                   fake_jwt.DEFAULT_ALGS)
            else:
                claims = fake_jwt.unverified_claims(token)
        except fake_jwt.JWTInvalid:
            raise VaultError(403, "permission denied")
        try:
            fake_jwt.validate(claims, issuer=kcfg.get("issuer", ""),
                              auds=[role["audience"]] if role.get("audience") else (),
                              allow_missing_times=True)
        except fake_jwt.JWTInvalid as e:
            raise VaultError(403, str(e))
        name, ns, uid = self.service_account(claims)
        names = role.get("bound_service_account_names") or []
        if names != ["*"] and not any(fnmatch.fnmatchcase(name, g) for g in names):
            raise VaultError(403, "service account name not authorized")
        nss = role.get("bound_service_account_namespaces") or []
        if not (nss[:1] == ["*"] or any(fnmatch.fnmatchcase(ns, g) for g in nss)):
            raise VaultError(403, "namespace not authorized")
        why = self.token_review(token, claims, role, kcfg)
        st.bump("token_reviews", "reviewer_jwt" if kcfg.get("token_reviewer_jwt")
                else "client_jwt")
        if why:
            st.bump("token_review_failures", why)
            raise VaultError(403, "permission denied")
        meta = {"role": role_name, "service_account_name": name,
                "service_account_namespace": ns, "service_account_secret_name": "",
                "service_account_uid": uid}
        return role_name, role, meta

    @staticmethod
    def service_account(claims):
        """Legacy secret-based token claims, or a projected token's "kubernetes.io"."""
        k = claims.get("kubernetes.io")
        if isinstance(k, dict):
            sa = k.get("serviceaccount") or {}
            return sa.get("name", ""), k.get("namespace", ""), sa.get("uid", "")
        return (claims.get("kubernetes.io/serviceaccount/service-account.name", ""),
                claims.get("kubernetes.io/serviceaccount/namespace", ""),
                claims.get("kubernetes.io/serviceaccount/service-account.uid", ""))

    def token_review(self, token, claims, role, kcfg):
        """The fake API server's TokenReview: None when it authenticates the bearer and
        finds the reviewed token valid for the requested audiences, else why not."""
        import fake_jwt
        keys = kcfg.get("api_signing_keys") or []
        api_auds = kcfg.get("api_audiences") or ["https://kubernetes.default.svc.cluster.local"]

        def api_accepts(tok, auds):
            try:
                c = fake_jwt.verify_signature(tok, keys, fake_jwt.DEFAULT_ALGS)
                fake_jwt.validate(c, auds=auds)
            except fake_jwt.JWTInvalid:
                return None
            if self.service_account(c)[2] in (kcfg.get("revoked_uids") or []):
                return None
            return c
        bearer = kcfg.get("token_reviewer_jwt") or token
        if api_accepts(bearer, api_auds) is None:
            # 401 from the API server: "lookup failed: service account unauthorized ..."
            return "reviewer_unauthorized"
        # Spec.Audiences: the role's audience, else the token's own (token_review.go)
        want = [role["audience"]] if role.get("audience") else fake_jwt.audiences(claims)
        if api_accepts(token, want) is None:
            return "token_not_valid"
        return None

    def login_jwt(self, body):
        """vault-plugin-auth-jwt path_login.go pathLogin with jwt_validation_pubkeys: every
        refusal is an ErrorResponse with a nil error, i.e. a 400: "missing role", "role %q
        could not be found", "missing token", "error validating token: <cap's text>",
        "audience claim found in JWT but no audiences bound to the role", "error
        validating claims: <claims.go text>"."""
        import fake_jwt
        st = self.server.state
        with st.lock:
            cfg = json.loads(json.dumps(st.jwt))
        role_name = body.get("role") or cfg.get("default_role")
        if not role_name:
            raise VaultError(400, "missing role")
        role = (cfg.get("roles") or {}).get(role_name)
        if role is None:
            raise VaultError(400, 'role "%s" could not be found' % role_name)
        token = str(body.get("jwt") or "")
        if not token:
            raise VaultError(400, "missing token")
        bound_auds = role.get("bound_audiences") or []
        if isinstance(bound_auds, str):
            bound_auds = [bound_auds]
        try:
            claims = fake_jwt.verify_signature(token, cfg.get("jwt_validation_pubkeys") or [],
                                               cfg.get("jwt_supported_algs") or
                                               fake_jwt.DEFAULT_ALGS)
            fake_jwt.validate(claims, issuer=cfg.get("bound_issuer", ""),
                              subject=role.get("bound_subject", ""), auds=bound_auds)
        except fake_jwt.JWTInvalid as e:
            raise VaultError(400, "error validating token: %s" % e)
        if fake_jwt.audiences(claims) and not bound_auds:
            raise VaultError(400, "audience claim found in JWT but no audiences bound to the "
                                  "role")
        user_claim = role.get("user_claim", "sub")
        if user_claim not in claims:
            raise VaultError(400, 'claim "%s" not found in token' % user_claim)
        for claim, want in (role.get("bound_claims") or {}).items():
            if claim not in claims:
                raise VaultError(400, 'error validating claims: claim "%s" is missing' % claim)
            got = claims[claim]
            wants = want if isinstance(want, list) else [want]
            gots = got if isinstance(got, list) else [got]
            if not any(str(g) == str(w) for g in gots for w in wants):
                raise VaultError(400, 'error validating claims: claim "%s" does not match any '
                                      'associated bound claim values' % claim)
        return role_name, role, {"role": role_name}

    def login_aws(self, body):
        """builtin/credential/aws/path_login.go pathLoginUpdateIam: the four iam_* fields
        (url, body and headers base64; headers a JSON map), the X-Vault-AWS-IAM-Server-ID
        header when the config requires it (present, equal, and among SignedHeaders),
        then the request is replayed to STS (here fake_sts, which re-signs it), the ARN
        parsed, the role (default: the ARN's friendly name) and its bound principals
        checked. Every refusal is an ErrorResponse: 400."""
        import base64
        import fake_sts
        st = self.server.state
        with st.lock:
            cfg = json.loads(json.dumps(st.aws))
        method = body.get("iam_http_request_method") or ""
        if not method:
            raise VaultError(400, "missing iam_http_request_method")
        if method != "POST":
            raise VaultError(400, "invalid iam_http_request_method; currently only 'POST' "
                                  "is supported")

        def b64(field):
            raw = body.get(field) or ""
            if not raw:
                raise VaultError(400, "missing " + field)
            try:
                return base64.b64decode(raw, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise VaultError(400, "failed to base64 decode " + field)
        url = b64("iam_request_url")
        req_body = b64("iam_request_body")
        raw_headers = body.get("iam_request_headers")
        headers = raw_headers if isinstance(raw_headers, dict) else None
        if headers is None and raw_headers:
            try:    # framework.TypeHeader: base64 of JSON, or JSON
                text = raw_headers
                try:
                    text = base64.b64decode(raw_headers, validate=True).decode()
                except ValueError:
                    pass
                headers = json.loads(text)
            except ValueError:
                raise VaultError(400, "missing iam_request_headers")
        if not headers:
            raise VaultError(400, "missing iam_request_headers")
        headers = {k: (v if isinstance(v, list) else [v]) for k, v in headers.items()}
        want = cfg.get("iam_server_id_header_value")
        if want:
            hdr = "X-Vault-AWS-IAM-Server-ID"
            got = next((",".join(v) for k, v in headers.items() if k.lower() == hdr.lower()),
                       "")
            why = None
            if not got:
                why = 'missing header "%s"' % hdr
            elif got != want:
                why = 'expected "%s" but got "%s"' % (want, got)
            else:
                authz = next((",".join(v) for k, v in headers.items()
                              if k == "Authorization"), None)
                if authz is None:
                    why = "missing Authorization header"
                else:
                    m = re.match(r".*SignedHeaders=([^,]+)", authz)
                    if not m or hdr.lower() not in m.group(1).split(";"):
                        why = "vault header wasn't signed"
            if why:
                raise VaultError(400, "error validating %s header: %s" % (hdr, why))
        try:
            ident = fake_sts.caller_identity(method, url, req_body, headers,
                                             cfg.get("credentials") or {})
        except fake_sts.STSError as e:
            st.bump("sts_refusals", e.code)
            raise VaultError(400, "error making upstream request: received error code %d "
                                  "from STS: %s" % (e.status, e.body()))
        try:
            canonical, friendly = fake_sts.parse_iam_arn(ident["Arn"])
        except ValueError as e:
            raise VaultError(400, 'error parsing arn "%s": %s' % (ident["Arn"], e))
        role_name = body.get("role") or friendly
        role = (cfg.get("roles") or {}).get(role_name)
        if role is None:
            raise VaultError(400, "entry for role %s not found" % role_name)
        if role.get("auth_type", "iam") != "iam":
            raise VaultError(400, "auth method iam not allowed for role %s" % role_name)
        bound = role.get("bound_iam_principal_arn") or []
        bound = [bound] if isinstance(bound, str) else bound
        if bound and canonical not in bound and not any(
                b.endswith("*") and fnmatch.fnmatchcase(canonical, b) for b in bound):
            raise VaultError(400, 'IAM Principal "%s" does not belong to the role "%s"'
                             % (ident["Arn"], role_name))
        meta = {"account_id": ident["Account"], "auth_type": "iam",
                "canonical_arn": canonical, "client_arn": ident["Arn"],
                "client_user_id": ident["UserId"].split(":")[0], "inferred_aws_region": "",
                "inferred_entity_id": "", "inferred_entity_type": "",
                "role_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "aws-role:" + role_name))}
        return role_name, role, meta

    def lookup_self(self):
        st = self.server.state
        tok = self.require_token()
        st.bump("lookups")
        st.bump("by_route", "token.lookup-self")
        now = time.time()
        exp = tok["expire_at"]
        data = {"accessor": tok["accessor"], "creation_time": int(tok["creation_time"]),
                "creation_ttl": tok["creation_ttl"], "display_name": tok["display_name"],
                "entity_id": tok["entity_id"],
                "expire_time": rfc3339(int(exp * 1e9)) if exp else None,
                "explicit_max_ttl": 0, "id": tok["id"],
                "issue_time": rfc3339(int(tok["creation_time"] * 1e9)),
                "meta": tok["meta"], "num_uses": 0, "orphan": True, "path": tok["path"],
                "namespace_path": (tok.get("namespace") + "/") if tok.get("namespace") else "",
                "policies": tok["policies"],
                "renewable": exp is not None and tok.get("type") != "batch",
                "ttl": max(0, int(exp - now)) if exp else 0,
                "type": tok.get("type", "service")}
        self.send(200, self.envelope(data=data, mount_type="token"))

    def renew_self(self):
        st = self.server.state
        tok = self.require_token()
        body = self.json_body()
        st.bump("by_route", "token.renew-self")
        if tok.get("type") == "batch":
            # vault/expiration.go renewAuthEntry: logical.ErrorResponse, a 400
            raise VaultError(400, "batch tokens cannot be renewed")
        try:
            inc = parse_duration(body.get("increment"))
        except ValueError:
            raise VaultError(400, "invalid increment")
        tok, warnings = st.renew_token(tok["id"], inc)
        if tok is None:
            raise self.dead_token_error(True)
        ttl = max(0, int(round(tok["expire_at"] - time.time()))) if tok["expire_at"] else 0
        self.send(200, self.envelope(auth=self.auth_block(tok, ttl, tok["expire_at"] is not None),
                                     mount_type="token", warnings=warnings))

    # -- KV --

    def stat_key(self, rel):
        return (self.namespace + "/" if self.namespace else "") + rel

    def kv1(self, mount, key):
        st = self.server.state
        method = self.method
        rel = self.stat_key(mount + "/" + key)
        route = {"LIST": "list", "GET": "read", "POST": "write", "PUT": "write",
                 "DELETE": "delete"}.get(method)
        if route is None:
            raise VaultError(405, "unsupported operation")
        st.bump("by_route", "kv1." + route)
        body = self.json_body() if route == "write" else None
        with st.lock:
            store = st.kv_store(1, self.namespace, mount)
            if route == "list":
                st.bump("lists", rel)
                keys = list_keys(store, key)
                if not keys:
                    raise VaultError(404)
                answer = (200, self.envelope(data={"keys": keys}, mount_type="kv"))
            elif route == "read":
                st.bump("kv_reads", rel)
                data = store.get(key)
                if data is None:
                    raise VaultError(404)
                lease = DEFAULT_LEASE_TTL
                if "ttl" in data:
                    try:
                        lease = parse_duration(data["ttl"]) or DEFAULT_LEASE_TTL
                    except ValueError:
                        pass
                answer = (200, self.envelope(data=data, mount_type="kv", lease_duration=lease))
            elif route == "write":
                if not key:
                    raise VaultError(400, "missing path")
                if not body:
                    raise VaultError(400, "missing data fields")
                store[key] = body
                st.bump("kv_writes", rel)
                st.save()
                answer = (204, None)
            else:
                store.pop(key, None)
                st.save()
                answer = (204, None)
        self.send(*answer)

    KV2_OPS = {
        "data": {"GET": "read", "POST": "write", "PUT": "write", "DELETE": "delete_latest"},
        "metadata": {"GET": "metadata", "LIST": "list", "POST": "metadata_write",
                     "PUT": "metadata_write", "DELETE": "metadata_delete"},
        "delete": {"POST": "versions", "PUT": "versions"},
        "undelete": {"POST": "versions", "PUT": "versions"},
        "destroy": {"POST": "versions", "PUT": "versions"},
    }

    def kv2(self, mount, sub):
        """Handlers run under the state lock and return (status, payload); the answer is
        sent after the lock is released, so a slow reader cannot stall other requests."""
        st = self.server.state
        op, _, key = sub.partition("/")
        if op == "config" and self.method == "GET":
            return self.send(200, self.envelope(data={"cas_required": False,
                                                      "delete_version_after": "0s",
                                                      "max_versions": 0}, mount_type="kv"))
        if op not in self.KV2_OPS:
            return self.send(404, self.envelope(mount_type="kv", warnings=[V2_PATH_WARNING]))
        name = self.KV2_OPS[op].get(self.method)
        if name is None:
            raise VaultError(405, "unsupported operation")
        st.bump("by_route", "kv2.%s.%s" % (op, self.method.lower()))
        body = self.json_body() if self.method in ("POST", "PUT") else None
        if op != "metadata" or name != "list":
            key = key.strip("/")
        with st.lock:
            store = st.kv_store(2, self.namespace, mount)
            answer = getattr(self, "kv2_" + name)(store, mount, key, op, body)
            if self.method != "GET" and self.method != "LIST":
                st.save()
        self.send(*answer)

    @staticmethod
    def new_entry(now):
        return {"versions": {}, "current_version": 0, "oldest_version": 0, "created_ns": now,
                "updated_ns": now, "custom_metadata": None, "max_versions": 0,
                "cas_required": False, "delete_version_after": 0}

    @staticmethod
    def version_meta(entry, n):
        v = entry["versions"][str(n)]
        deleted = v["deletion_ns"] and v["deletion_ns"] <= time.time_ns()
        return {"created_time": rfc3339(v["created_ns"]),
                "custom_metadata": entry["custom_metadata"],
                "deletion_time": rfc3339(v["deletion_ns"]) if v["deletion_ns"] else "",
                "destroyed": v["destroyed"], "version": n}, bool(deleted or v["destroyed"])

    def kv2_read(self, store, mount, key, op, body):
        self.server.state.bump("kv_reads", self.stat_key("%s/data/%s" % (mount, key)))
        try:
            n = int(self.query.get("version", "0") or 0)
        except ValueError:
            raise VaultError(400, 'error converting input for field "version"')
        entry = store.get(key)
        if entry is None:
            raise VaultError(404)
        if n == 0:
            n = entry["current_version"]
        if str(n) not in entry["versions"]:
            raise VaultError(404)
        meta, gone = self.version_meta(entry, n)
        data = None if gone else entry["versions"][str(n)]["data"]
        # A deleted or destroyed version is a 404 that still carries the whole envelope.
        return (404 if gone else 200,
                self.envelope(data={"data": data, "metadata": meta}, mount_type="kv"))

    def kv2_write(self, store, mount, key, op, body):
        if not key:
            raise VaultError(400, "missing path")
        if "data" not in body:
            raise VaultError(400, "no data provided")
        if not isinstance(body["data"], dict):
            raise VaultError(400, "data must be a JSON object")
        entry = store.get(key)
        cur = entry["current_version"] if entry else 0
        cas = (body.get("options") or {}).get("cas")
        if cas is None and entry and entry["cas_required"]:
            raise VaultError(400, "check-and-set parameter required for this call")
        if cas is not None and int(cas) != cur:
            raise VaultError(400, "check-and-set parameter did not match the current version")
        now = time.time_ns()
        if entry is None:
            entry = store[key] = self.new_entry(now)
        n = cur + 1
        dva = entry["delete_version_after"]
        entry["versions"][str(n)] = {"data": body["data"], "created_ns": now,
                                     "deletion_ns": now + dva * 10**9 if dva else 0,
                                     "destroyed": False}
        entry["current_version"] = n
        entry["updated_ns"] = now
        keep = entry["max_versions"] or DEFAULT_MAX_VERSIONS
        for old in [v for v in entry["versions"] if int(v) <= n - keep]:
            del entry["versions"][old]
        entry["oldest_version"] = min(int(v) for v in entry["versions"])
        self.server.state.bump("kv_writes", self.stat_key("%s/data/%s" % (mount, key)))
        meta, _ = self.version_meta(entry, n)
        return 200, self.envelope(data=meta, mount_type="kv")

    def kv2_delete_latest(self, store, mount, key, op, body):
        entry = store.get(key)
        if entry and entry["current_version"]:
            v = entry["versions"].get(str(entry["current_version"]))
            if v and not v["deletion_ns"]:
                v["deletion_ns"] = time.time_ns()
        return 204, None

    def kv2_versions(self, store, mount, key, op, body):
        versions = body.get("versions")
        if not versions:
            raise VaultError(400, "no version number provided")
        entry = store.get(key)
        now = time.time_ns()
        for n in versions:
            v = entry["versions"].get(str(int(n))) if entry else None
            if v is None or v["destroyed"]:
                continue
            if op == "delete" and not v["deletion_ns"]:
                v["deletion_ns"] = now
            elif op == "undelete":
                v["deletion_ns"] = 0
            elif op == "destroy":
                v["destroyed"] = True
                v["data"] = None
        return 204, None

    def kv2_metadata(self, store, mount, key, op, body):
        entry = store.get(key)
        if entry is None:
            raise VaultError(404)
        versions = {}
        for n in entry["versions"]:
            meta, _ = self.version_meta(entry, int(n))
            versions[n] = {k: meta[k] for k in ("created_time", "deletion_time", "destroyed")}
        data = {"cas_required": entry["cas_required"],
                "created_time": rfc3339(entry["created_ns"]),
                "current_version": entry["current_version"],
                "custom_metadata": entry["custom_metadata"],
                "delete_version_after": fmt_duration(entry["delete_version_after"]),
                "max_versions": entry["max_versions"],
                "oldest_version": entry["oldest_version"],
                "updated_time": rfc3339(entry["updated_ns"]), "versions": versions}
        return 200, self.envelope(data=data, mount_type="kv")

    def kv2_list(self, store, mount, key, op, body):
        self.server.state.bump("lists", self.stat_key("%s/metadata/%s" % (mount, key)))
        keys = list_keys(store, key.lstrip("/"))
        if not keys:
            raise VaultError(404)
        return 200, self.envelope(data={"keys": keys}, mount_type="kv")

    def kv2_metadata_write(self, store, mount, key, op, body):
        if not key:
            raise VaultError(400, "missing path")
        now = time.time_ns()
        entry = store.setdefault(key, self.new_entry(now))
        try:
            if "max_versions" in body:
                entry["max_versions"] = int(body["max_versions"])
            if "cas_required" in body:
                entry["cas_required"] = bool(body["cas_required"])
            if "delete_version_after" in body:
                entry["delete_version_after"] = parse_duration(body["delete_version_after"]) or 0
        except ValueError as e:
            raise VaultError(400, str(e))
        if "custom_metadata" in body:
            entry["custom_metadata"] = {str(k): str(v) for k, v in
                                        (body["custom_metadata"] or {}).items()} or None
        entry["updated_ns"] = now
        return 204, None

    def kv2_metadata_delete(self, store, mount, key, op, body):
        store.pop(key, None)
        return 204, None

    # -- control plane --

    def control(self):
        st = self.server.state
        tok = self.token_id()
        if not (tok and st.root_token and secrets.compare_digest(tok, st.root_token)):
            raise VaultError(403, "permission denied")
        self.token_kind = "root"
        what, method = self.url_path[len("/_fake/"):], self.method
        if what == "stats" and method == "GET":
            return self.send(200, st.snapshot_stats())
        if what == "reset_stats" and method in ("POST", "PUT"):
            st.reset_stats()
            return self.send(204)
        if what == "faults":
            if method in ("POST", "PUT"):
                return self.send(200, st.set_faults(self.json_body()))
            return self.send(200, st.fault_view())
        if what == "config":
            if method in ("POST", "PUT"):
                try:
                    st.configure(self.json_body())
                except (ValueError, TypeError, OSError) as e:
                    raise VaultError(400, "bad config: %s" % e)
            return self.send(200, st.public_config())
        if what == "release" and method in ("POST", "PUT"):
            body = self.json_body()
            n = st.release(body.get("count"), int(body.get("wait_for") or 0),
                           float(body.get("timeout") or 10))
            return self.send(200, {"waiting": n})
        if what == "approle" and method == "GET":
            return self.send(200, st.approle_view())
        if what == "revoke_tokens" and method in ("POST", "PUT"):
            body = self.json_body()
            n = st.revoke(body.get("tokens"), body.get("accessors"))
            return self.send(200, {"revoked": n})
        raise VaultError(404, "no such control route")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, ctx, state, quiet, node=0):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        self.ctx, self.state, self.quiet, self.node = ctx, state, quiet, node
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        """The handshake runs in the connection's own thread, so a stuck client blocks
        only itself. A refused handshake is counted by reason, never answered."""
        request.settimeout(HANDSHAKE_TIMEOUT)
        if self.state.take_handshake_fault():
            self.state.bump("handshake_failures", "injected")
            request.close()
            return
        try:
            conn = self.ctx.wrap_socket(request, server_side=True)
        except ssl.SSLCertVerificationError as e:
            self.state.bump("handshake_failures", e.verify_message or "verify failed")
            self.log_refused(e.verify_message)
            return
        except ssl.SSLError as e:
            self.state.bump("handshake_failures", e.reason or type(e).__name__)
            self.log_refused(e.reason)
            return
        except OSError as e:
            self.state.bump("handshake_failures", type(e).__name__)
            return
        try:
            self.state.bump("connections")
            if conn.session_reused:
                self.state.bump("tls_resumed")
            conn.settimeout(IDLE_TIMEOUT)
            if conn.selected_alpn_protocol() == "h2":
                import fake_h2
                fake_h2.H2Session(conn, client_address, self, self.RequestHandlerClass).run()
            else:
                self.RequestHandlerClass(conn, client_address, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def log_refused(self, why):
        if not self.quiet:
            sys.stderr.write("vault-fake: TLS handshake refused: %s\n" % why)
            sys.stderr.flush()

    def handle_error(self, request, client_address):
        pass    # connection-level noise (resets) is expected in fault tests


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    p.add_argument("--nodes", type=int, default=1,
                   help="HA: listen as this many nodes (one port each) over shared storage")
    p.add_argument("--node-ports", default="",
                   help="ports of nodes 1.. (comma separated; 0 or absent = any free port)")
    p.add_argument("--cert", required=True, help="server certificate (PEM)")
    p.add_argument("--key", required=True, help="server private key (PEM)")
    p.add_argument("--client-ca", required=True,
                   help="CA bundle that client certificates must chain to; also the default "
                        "cert auth role 'default'")
    p.add_argument("--ready-file", help='written as {"port":N,"pid":N} once listening')
    p.add_argument("--state-file", help="persist secrets, tokens and config here (0600)")
    p.add_argument("--root-token", help="root token (prefer --root-token-file)")
    p.add_argument("--root-token-file", help="file holding the root token")
    p.add_argument("--token-ttl", type=parse_duration, default=3600)
    p.add_argument("--token-max-ttl", type=parse_duration, default=DEFAULT_LEASE_TTL)
    p.add_argument("--mount", action="append",
                   help="NAME=1|2 (repeatable; default secret=2 and kv=1)")
    p.add_argument("--config", help="JSON file, same keys as POST /_fake/config")
    p.add_argument("--quiet", action="store_true", help="no per-request log lines")
    p.add_argument("--http2", action=argparse.BooleanOptionalAction, default=False,
                   help="offer HTTP/2 by ALPN beside HTTP/1.1, as Vault does (needs "
                        "python3-h2)")
    p.add_argument("--client-cert-mode", choices=("request", "require"), default="require",
                   help="require: tls_require_and_verify_client_cert (default); request: "
                        "only ask for a client certificate (Vault's listener default)")
    p.add_argument("--tls-max", choices=sorted(TLS_VERSIONS),
                   help="offer no TLS version above this one (tests of a client's minimum); "
                        "below 1.2 the node also offers TLS 1.0 and the ciphers OpenSSL 3 "
                        "keeps only at security level 0, as an old server would")
    args = p.parse_args()
    if args.root_token_file:
        with open(args.root_token_file) as f:
            args.root_token = f.read().strip()
    if not args.root_token:
        args.root_token = "hvs." + rand62(24)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.tls_max:
        top = TLS_VERSIONS[args.tls_max]
        if top < ssl.TLSVersion.TLSv1_2:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.maximum_version = top
    ctx.load_cert_chain(args.cert, args.key)
    if args.http2:
        # Vault's Go http.Server offers h2 and http/1.1 by ALPN on TLS listeners.
        ctx.set_alpn_protocols(["h2", "http/1.1"])
    ctx.load_verify_locations(cafile=args.client_ca)
    # Vault's listener (command/server/listener_tcp.go): tls.RequestClientCert unless
    # tls_require_and_verify_client_cert, then tls.RequireAndVerifyClientCert.
    ctx.verify_mode = (ssl.CERT_REQUIRED if args.client_cert_mode == "require"
                       else ssl.CERT_OPTIONAL)

    state = State(args)
    extra = [int(x) for x in args.node_ports.split(",") if x.strip()]
    servers = []
    for i in range(max(1, args.nodes)):
        want = args.port if i == 0 else (extra[i - 1] if i - 1 < len(extra) else 0)
        servers.append(Server((args.bind, want), ctx, state, args.quiet, node=i))
    server = servers[0]
    ports = [sv.server_address[1] for sv in servers]
    host = "[%s]" % args.bind if ":" in args.bind else args.bind
    for i, p_ in enumerate(ports):
        state.nodes[i]["addr"] = "https://%s:%d" % (host, p_)
    port = ports[0]
    for sv in servers[1:]:
        threading.Thread(target=sv.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"port": port, "ports": ports, "pid": os.getpid()}, f)
        os.replace(tmp, args.ready_file)

    def stop(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
