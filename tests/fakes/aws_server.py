#!/usr/bin/python3
"""A faithful local AWS Secrets Manager and AWS credential endpoints, for tests.

One process serves:

  HTTPS (--port, loopback)   Secrets Manager (awsJson1_1, every request SigV4-verified
                             with botocore's own signer), STS AssumeRoleWithWebIdentity
                             (awsQuery, unsigned), IMDSv2 and ECS container credentials,
                             and the test control routes under /_fake/.
  HTTP  (--http-port, 127.0.0.1, optional)
                             IMDSv2, ECS container credentials and STS: in real life the
                             first two are plain http on link-local addresses.

Wire facts come from /work/shared/reference/backend-api.md (PART B); each error text
not found there names its public source in a comment.  Nothing secret is ever logged:
the request log carries the endpoint, the operation and the status only.

Run with /usr/bin/python3 (Debian's botocore).  See --help, and tests/fakes/aws_fixture.py
for the Python API the system tests use.
"""

import argparse
import base64
import copy
import datetime
import fnmatch
import hashlib
import hmac
import json
import os
import secrets as _rand
import signal
import socket
import ssl
import string
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape as xml_escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

SERVICE = "secretsmanager"
TARGET_PREFIX = "secretsmanager."
JSON_CT = "application/x-amz-json-1.1"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
SIGV4_FMT = "%Y%m%dT%H%M%SZ"
ISO_FMT = "%Y-%m-%dT%H:%M:%SZ"
MAX_SKEW = 15 * 60
MAX_BODY = 1 << 20
MAX_SECRET = 65536
AWSCURRENT, AWSPREVIOUS, AWSPENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"

# Error texts.  Sources (public captures of real AWS answers):
#  - "The security token included in the request is invalid." (UnrecognizedClientException,
#    400, awsJson): aws/aws-sdk-php#2444, ArranJacques/laravel-aws-cognito-auth#25.
#  - "The security token included in the request is expired" (ExpiredTokenException, 400
#    on awsJson services): getsops/sops#621, grafana/timestream-datasource#92.
#  - "Request is missing Authentication Token" (MissingAuthenticationTokenException, 400
#    on awsJson services, a DynamoDB capture with the coral-qualified __type).
#  - "Signature expired: A is now earlier than B (C - 15 min.)" (InvalidSignatureException,
#    400): aws/aws-sdk-js#254; the "not yet current" twin: aws/aws-sdk-go#2194.
#  - "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
#    (IncompleteSignatureException): aws/aws-sdk-php#2469.
#  - "'X' not a valid key=value pair (missing equal-sign) in Authorization header: '...'"
#    (IncompleteSignatureException): iann0036/cloud9-sync#10.
#  - "Secrets Manager can't find the specified secret value for staging label: X":
#    aws/aws-sdk-js-v3#7701 (400); "...for VersionId: X": moto's tests, which copy AWS.
#  - "You can't perform this operation on the secret because it was marked for deletion."
#    (InvalidRequestException): external-secrets/kubernetes-external-secrets#114.
#  - "You can't create this secret because a secret with this name is already scheduled
#    for deletion.": redpanda-data/console#1835.
#  - STS InvalidIdentityToken awsQuery error document with <Type>Sender</Type>, status 400,
#    text/xml: awslabs/aws-sdk-rust#827 (message text below is the one captured there).
MSG_BAD_SIG = ("The request signature we calculated does not match the signature you "
               "provided. Check your AWS Secret Access Key and signing method. Consult "
               "the service documentation for details.")
MSG_BAD_TOKEN = "The security token included in the request is invalid."
MSG_EXPIRED_TOKEN = "The security token included in the request is expired"
MSG_MISSING_AUTH = "Request is missing Authentication Token"
MSG_NOT_FOUND = "Secrets Manager can't find the specified secret."
MSG_DELETED = ("You can't perform this operation on the secret because it was marked "
               "for deletion.")
MSG_THROTTLE = "Rate exceeded"
MSG_DECRYPT = ("Secrets Manager can't decrypt the protected secret text using the "
               "provided KMS key.")
MSG_INTERNAL = "An error occurred on the server side."
MSG_BAD_WEB_TOKEN = ("Couldn't retrieve verification key from your identity provider,  "
                     "please reference AssumeRoleWithWebIdentity documentation for "
                     "requirements")

AUTH_ERRORS = ("MissingAuthenticationTokenException", "IncompleteSignatureException",
               "InvalidSignatureException", "UnrecognizedClientException",
               "ExpiredTokenException")


class AwsError(Exception):
    def __init__(self, code, message, status=400):
        super().__init__(code)
        self.code = code
        self.message = message
        self.status = status


class Drop(Exception):
    """Close the connection without answering (fault "drop")."""


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(ISO_FMT)


def amz(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(SIGV4_FMT)


def rand_key(prefix):
    alphabet = string.ascii_uppercase + "234567"
    return prefix + "".join(_rand.choice(alphabet) for _ in range(16))


def rand_secret():
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(_rand.choice(alphabet) for _ in range(40))


def rand_session_token():
    # Real session tokens are long opaque base64 blobs (hundreds of bytes).
    return "FwoGZXIvYXdzEFAKE" + base64.b64encode(_rand.token_bytes(180)).decode()


# --------------------------------------------------------------------------- SigV4

class _VerifyingSigV4(SigV4Auth):
    """botocore's SigV4Auth, but signing exactly the headers the client says it signed.

    botocore drops user-agent/expect/x-amzn-trace-id when it signs; a server must not,
    or a client that (legitimately) signs user-agent would be refused.
    """

    def __init__(self, credentials, service, region, signed_names):
        super().__init__(credentials, service, region)
        self._signed_names = signed_names

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed_names:
                header_map[name.lower()] = value
        return header_map


def parse_authorization(value):
    """Split an AWS4-HMAC-SHA256 Authorization header; raise AwsError like AWS does."""
    algo, _, rest = value.strip().partition(" ")
    if algo != "AWS4-HMAC-SHA256":
        raise AwsError("IncompleteSignatureException",
                       "Unsupported AWS 'algorithm': '%s'" % algo)
    parts = {}
    for item in rest.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise AwsError("IncompleteSignatureException",
                           "'%s' not a valid key=value pair (missing equal-sign) in "
                           "Authorization header: '%s'." % (item, value))
        k, _, v = item.partition("=")
        parts[k.strip()] = v.strip()
    missing = [k for k in ("Credential", "Signature", "SignedHeaders") if not parts.get(k)]
    if missing:
        raise AwsError("IncompleteSignatureException",
                       " ".join("Authorization header requires '%s' parameter." % k
                                for k in missing) + " Authorization=" + value)
    return parts


def verify_sigv4(method, path, headers, body, lookup, region, service=SERVICE, now=None):
    """Verify one request's SigV4 signature the way AWS does.

    headers is a list of (name, value) pairs as received; lookup(akid) returns
    (secret_key, expected_session_token_or_None, expires_or_None, revoked) or None.
    Returns the access key id.  Raises AwsError with AWS's code and message.
    The signature itself is recomputed by botocore.auth.SigV4Auth.
    """
    if now is None:
        now = time.time()
    hdr = {}
    for k, v in headers:
        hdr.setdefault(k.lower(), []).append(v)

    def one(name):
        v = hdr.get(name)
        return v[0] if v else None

    authz = one("authorization")
    if authz is None:
        raise AwsError("MissingAuthenticationTokenException", MSG_MISSING_AUTH)
    parts = parse_authorization(authz)

    amz_date = one("x-amz-date")
    if amz_date is None:
        # botocore and our client always send X-Amz-Date; a Date-only request is
        # refused here although AWS would accept an RFC 1123 Date header.
        raise AwsError("IncompleteSignatureException",
                       "Authorization header requires existence of either a "
                       "'X-Amz-Date' or a 'Date' header. Authorization=" + authz)
    try:
        req_time = datetime.datetime.strptime(amz_date, SIGV4_FMT).replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        raise AwsError("IncompleteSignatureException",
                       "Date must be in ISO-8601 'basic format'. Got '%s'. See "
                       "http://en.wikipedia.org/wiki/ISO_8601" % amz_date)

    scope = parts["Credential"].split("/")
    if len(scope) != 5:
        raise AwsError("IncompleteSignatureException",
                       "Credential should be scoped to a valid region, service and "
                       "terminator. Authorization=" + authz)
    akid, sdate, sregion, sservice, term = scope
    if sdate != amz_date[:8]:
        raise AwsError("InvalidSignatureException",
                       "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                       "version of date from HTTP: '%s' != '%s', from '%s'."
                       % (sdate, amz_date[:8], amz_date))
    if sregion != region:
        raise AwsError("InvalidSignatureException",
                       "Credential should be scoped to a valid region. ")
    if sservice != service:
        raise AwsError("InvalidSignatureException",
                       "Credential should be scoped to correct service: '%s'. " % service)
    if term != "aws4_request":
        raise AwsError("InvalidSignatureException",
                       "Credential should be scoped with a valid terminator: "
                       "'aws4_request', not '%s'. " % term)

    signed = [h.strip().lower() for h in parts["SignedHeaders"].split(";") if h.strip()]
    if "host" not in signed:
        raise AwsError("IncompleteSignatureException",
                       "'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                       "Authorization.")
    # SigV4 requires every x-amz-* header to be signed (reference B4).  AWS's exact
    # answer to an unsigned one is not confirmed; the text below is the fake's own.
    for name in hdr:
        if name.startswith("x-amz-") and name not in signed:
            raise AwsError("IncompleteSignatureException",
                           "Header '%s' must be a 'SignedHeader' in the AWS "
                           "Authorization." % name)

    if req_time < now - MAX_SKEW:
        raise AwsError("InvalidSignatureException",
                       "Signature expired: %s is now earlier than %s (%s - 15 min.)"
                       % (amz_date, amz(now - MAX_SKEW), amz(now)))
    if req_time > now + MAX_SKEW:
        raise AwsError("InvalidSignatureException",
                       "Signature not yet current: %s is still later than %s (%s + 15 min.)"
                       % (amz_date, amz(now + MAX_SKEW), amz(now)))

    cred = lookup(akid)
    if cred is None:
        raise AwsError("UnrecognizedClientException", MSG_BAD_TOKEN)
    secret_key, want_token, expires, revoked = cred
    got_token = one("x-amz-security-token")
    if want_token is None:
        if got_token is not None:
            raise AwsError("UnrecognizedClientException", MSG_BAD_TOKEN)
    else:
        if got_token is None or revoked or not hmac.compare_digest(
                got_token.encode(), want_token.encode()):
            raise AwsError("UnrecognizedClientException", MSG_BAD_TOKEN)
        if expires is not None and now >= expires:
            raise AwsError("ExpiredTokenException", MSG_EXPIRED_TOKEN)

    # A signed x-amz-content-sha256 must be the body's hash: otherwise a body could be
    # swapped under a valid signature.  UNSIGNED-PAYLOAD is refused: Secrets Manager
    # clients (botocore, ours) always sign the payload.
    content_sha = one("x-amz-content-sha256")
    if content_sha is not None and content_sha != hashlib.sha256(body).hexdigest():
        raise AwsError("InvalidSignatureException", MSG_BAD_SIG)

    host = one("host") or ""
    req = AWSRequest(method=method, url="https://%s%s" % (host, path), data=body)
    for k, v in headers:
        if k.lower() in signed:
            req.headers[k] = v
    req.context["timestamp"] = amz_date
    signer = _VerifyingSigV4(Credentials(akid, secret_key, want_token), service, region,
                             set(signed))
    creq = signer.canonical_request(req)
    if signer.signed_headers(signer.headers_to_sign(req)) != ";".join(signed):
        # A header named in SignedHeaders is absent (or listed out of order).
        raise AwsError("InvalidSignatureException", MSG_BAD_SIG)
    sig = signer.signature(signer.string_to_sign(req, creq), req)
    if not hmac.compare_digest(sig.encode(), parts["Signature"].encode()):
        raise AwsError("InvalidSignatureException", MSG_BAD_SIG)
    return akid


# --------------------------------------------------------------------------- state

class Version:
    def __init__(self, vid, value, is_binary, created):
        self.vid = vid
        self.value = value          # bytes
        self.is_binary = is_binary
        self.created = created
        self.stages = []
        self.last_accessed = None

    def to_json(self):
        return {"vid": self.vid, "value": base64.b64encode(self.value).decode(),
                "is_binary": self.is_binary, "created": self.created,
                "stages": self.stages, "last_accessed": self.last_accessed}

    @classmethod
    def from_json(cls, d):
        v = cls(d["vid"], base64.b64decode(d["value"]), d["is_binary"], d["created"])
        v.stages = list(d["stages"])
        v.last_accessed = d.get("last_accessed")
        return v


class Secret:
    def __init__(self, name, arn, created, description=None, tags=None):
        self.name = name
        self.arn = arn
        self.created = created
        self.last_changed = created
        self.last_accessed = None
        self.description = description
        self.tags = tags or []
        self.deleted = None          # DeletedDate when scheduled for deletion
        self.versions = []           # creation order

    def version(self, vid):
        for v in self.versions:
            if v.vid == vid:
                return v
        return None

    def holder(self, stage):
        for v in self.versions:
            if stage in v.stages:
                return v
        return None

    def attach(self, v, stage):
        """Move stage onto v; moving AWSCURRENT makes the old holder AWSPREVIOUS."""
        old = self.holder(stage)
        if old is v:
            return
        if old is not None:
            old.stages.remove(stage)
        if stage == AWSCURRENT and old is not None:
            prev = self.holder(AWSPREVIOUS)
            if prev is not None:
                prev.stages.remove(AWSPREVIOUS)
            old.stages.append(AWSPREVIOUS)
        if stage == AWSPREVIOUS and AWSPREVIOUS in v.stages:
            return
        v.stages.append(stage)

    def stage_map(self, include_deprecated=False):
        return {v.vid: list(v.stages) for v in self.versions
                if v.stages or include_deprecated}

    def to_json(self):
        return {"name": self.name, "arn": self.arn, "created": self.created,
                "last_changed": self.last_changed, "last_accessed": self.last_accessed,
                "description": self.description, "tags": self.tags,
                "deleted": self.deleted, "versions": [v.to_json() for v in self.versions]}

    @classmethod
    def from_json(cls, d):
        s = cls(d["name"], d["arn"], d["created"], d.get("description"), d.get("tags"))
        s.last_changed = d.get("last_changed", s.created)
        s.last_accessed = d.get("last_accessed")
        s.deleted = d.get("deleted")
        s.versions = [Version.from_json(v) for v in d["versions"]]
        return s


def new_stats():
    return {
        "operations": {},               # Secrets Manager requests per operation
        "secrets": {},                  # SecretId as sent -> operation -> count
        "status": {},                   # Secrets Manager responses per HTTP status
        "errors": {},                   # Secrets Manager error codes
        "signature_failures": 0,        # any authentication failure
        "auth_errors": {},              # per authentication error code
        "access_keys": {},              # authenticated requests per access key id
        "session_token_requests": 0,    # authenticated with temporary credentials
        "credential_fetches": {},       # imds_token, imds_role, imds_credentials, ecs, sts
        "credential_failures": {},      # imds, ecs, sts
        "sts_unsigned": 0,
        "temp_credentials_issued": 0,
        "faults_fired": {},
        "connections": {"https": 0, "http": 0},
        "tls_resumed": 0,
        "client_certs": {},             # client certificate subject CN -> connections
    }


def bump(d, key, n=1):
    d[key] = d.get(key, 0) + n


class State:
    def __init__(self, cfg, state_file=None):
        self.lock = threading.RLock()
        self.cfg = cfg
        self.state_file = state_file
        self.secrets = {}            # name -> Secret
        self.static = {}             # akid -> {"secret_key", "user"}
        for c in cfg.get("credentials", []):
            self.static[c["access_key"]] = {"secret_key": c["secret_key"],
                                            "user": c.get("user", "secretsfs")}
        self.temp = {}               # akid -> dict(secret_key, token, expires, role, ...)
        self.imds_tokens = {}        # token -> expiry
        self.faults = []
        self.stats = new_stats()
        if state_file and os.path.exists(state_file):
            self._load()
        else:
            for s in cfg.get("secrets", []):
                value = (base64.b64decode(s["binary"]) if "binary" in s
                         else s["string"].encode())
                self.put_value(s["name"], value, "binary" in s, s.get("stages"),
                               s.get("version_id"), persist=False)
            self._save()

    # -- clock and config
    def now(self):
        return time.time() + float(self.cfg.get("clock_offset", 0))

    @property
    def region(self):
        return self.cfg["region"]

    @property
    def account(self):
        return self.cfg["account_id"]

    def role_arn(self):
        return "arn:aws:iam::%s:role/%s" % (self.account, self.cfg["role_name"])

    # -- persistence across restarts (secrets and issued temp credentials only)
    def _save(self):
        if not self.state_file:
            return
        data = {"secrets": [s.to_json() for s in self.secrets.values()],
                "temp": self.temp}
        tmp = self.state_file + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.state_file)

    def _load(self):
        with open(self.state_file) as f:
            data = json.load(f)
        for s in data.get("secrets", []):
            sec = Secret.from_json(s)
            self.secrets[sec.name] = sec
        self.temp = data.get("temp", {})

    # -- credentials
    def lookup(self, akid):
        with self.lock:
            if akid in self.static:
                return (self.static[akid]["secret_key"], None, None, False)
            t = self.temp.get(akid)
            if t is None:
                return None
            return (t["secret_key"], t["token"], t["expires"], t["revoked"])

    def principal(self, akid):
        with self.lock:
            if akid in self.static:
                return ("arn:aws:iam::%s:user/%s" % (self.account, self.static[akid]["user"]),
                        akid, None)
            t = self.temp[akid]
            return ("arn:aws:sts::%s:assumed-role/%s/%s"
                    % (self.account, t["role"], t["session"]), akid, t["role"])

    def issue_temp(self, source, session, lifetime):
        with self.lock:
            now = self.now()
            ttl = self.cfg.get("temp_cred_ttl")
            if ttl is not None:
                lifetime = min(lifetime, float(ttl))
            akid = rand_key("ASIA")
            cred = {"secret_key": rand_secret(), "token": rand_session_token(),
                    "expires": now + lifetime, "issued": now, "role": self.cfg["role_name"],
                    "session": session, "source": source, "revoked": False}
            self.temp[akid] = cred
            self.stats["temp_credentials_issued"] += 1
            self._save()
            return akid, dict(cred)

    def revoke_temp(self):
        with self.lock:
            for t in self.temp.values():
                t["revoked"] = True
            self._save()
            return len(self.temp)

    def expire_temp(self):
        with self.lock:
            now = self.now()
            for t in self.temp.values():
                t["expires"] = min(t["expires"], now)
            self._save()
            return len(self.temp)

    # -- deny rules: [{"principal": akid | "role:NAME" | "user:NAME" | "*",
    #                  "operation": "GetSecretValue" | "*", "secret": glob}]
    def denied(self, akid, op, name):
        arn, akid, role = self.principal(akid)
        for rule in self.cfg.get("deny", []):
            p = rule.get("principal", "*")
            if p != "*" and p != akid and not (role and p == "role:" + role) and not (
                    akid in self.static and p == "user:" + self.static[akid]["user"]):
                continue
            if rule.get("operation", "*") not in ("*", op):
                continue
            if name is not None and not fnmatch.fnmatchcase(name, rule.get("secret", "*")):
                continue
            return arn
        return None

    # -- faults
    def take_faults(self, op, secret_id, names):
        """Consume matching faults; return (slow_seconds, terminal_fault_or_None)."""
        with self.lock:
            slow = 0.0
            terminal = None
            keep = []
            for f in self.faults:
                match = (f.get("operation") in (None, "*", op) and
                         (f.get("secret_id") is None or f["secret_id"] == secret_id or
                          f["secret_id"] in names))
                if match and (f["kind"] == "slow" or terminal is None):
                    if f["kind"] == "slow":
                        slow += float(f.get("seconds", 1))
                    else:
                        terminal = f
                    bump(self.stats["faults_fired"], f["kind"])
                    if f.get("count", 1) > 0:
                        f["count"] = f.get("count", 1) - 1
                        if f["count"] == 0:
                            continue
                keep.append(f)
            self.faults = keep
            return slow, terminal

    # -- secrets
    def resolve(self, secret_id):
        """Name, full ARN, or partial ARN (without the -XXXXXX suffix) -> Secret."""
        s = self.secrets.get(secret_id)
        if s is not None:
            return s
        for s in self.secrets.values():
            if secret_id == s.arn or secret_id == s.arn[:-7]:
                return s
        return None

    def new_arn(self, name, suffix=None):
        alphabet = string.ascii_letters + string.digits
        if suffix is None:
            suffix = "".join(_rand.choice(alphabet) for _ in range(6))
        elif len(suffix) != 6 or any(c not in alphabet for c in suffix):
            raise ValueError("arn_suffix: six letters or digits")
        return "arn:aws:secretsmanager:%s:%s:secret:%s-%s" % (
            self.region, self.account, name, suffix)

    def put_value(self, name, value, is_binary, stages=None, vid=None, persist=True,
                  create=True, arn_suffix=None):
        """Add a version (control route and seeding); create the secret if needed,
        with arn_suffix (6 letters/digits) as its ARN's suffix when given."""
        with self.lock:
            now = round(self.now(), 3)
            s = self.secrets.get(name)
            if s is None:
                if not create:
                    raise AwsError("ResourceNotFoundException", MSG_NOT_FOUND)
                s = Secret(name, self.new_arn(name, arn_suffix), now)
                self.secrets[name] = s
            v = Version(vid or str(uuid.uuid4()), value, is_binary, now)
            s.versions.append(v)
            for st in (stages if stages else [AWSCURRENT]):
                s.attach(v, st)
            s.last_changed = now
            if persist:
                self._save()
            return s, v


# --------------------------------------------------------------------------- Secrets Manager

def _req_str(body, key, required=False, lo=1, hi=None):
    v = body.get(key)
    if v is None:
        if required:
            # Coral's standard constraint-violation answer (awsJson services); not
            # confirmed for Secrets Manager specifically.
            raise AwsError("ValidationException",
                           "1 validation error detected: Value null at '%s' failed to "
                           "satisfy constraint: Member must not be null"
                           % (key[0].lower() + key[1:]))
        return None
    if not isinstance(v, str):
        raise AwsError("SerializationException",
                       "Start of structure or map found where not expected.")
    if len(v) < lo or (hi is not None and len(v) > hi):
        raise AwsError("ValidationException",
                       "1 validation error detected: Value at '%s' failed to satisfy "
                       "constraint: Member must have length between %d and %d"
                       % (key[0].lower() + key[1:], lo, hi or 2048))
    return v


class SecretsManager:
    """Operations on State; each returns a JSON-able dict or raises AwsError."""

    def __init__(self, state):
        self.st = state

    def _secret(self, body, allow_deleted=False):
        sid = _req_str(body, "SecretId", required=True, hi=2048)
        s = self.st.resolve(sid)
        if s is None:
            raise AwsError("ResourceNotFoundException", MSG_NOT_FOUND)
        if s.deleted is not None and not allow_deleted:
            raise AwsError("InvalidRequestException", MSG_DELETED)
        return s

    def _value(self, body):
        ss, sb = body.get("SecretString"), body.get("SecretBinary")
        if ss is not None and sb is not None:
            raise AwsError("InvalidParameterException",
                           "You can't specify both a binary secret value and a string "
                           "secret value in the same secret.")
        if ss is not None:
            if not isinstance(ss, str):
                raise AwsError("SerializationException", "SecretString must be a string")
            value, is_binary = ss.encode(), False
        elif sb is not None:
            try:
                value = base64.b64decode(sb, validate=True)
            except (ValueError, TypeError):
                raise AwsError("SerializationException",
                               "Base64 encoded blob contains invalid characters")
            is_binary = True
        else:
            return None, None
        if len(value) > MAX_SECRET:
            raise AwsError("ValidationException",
                           "1 validation error detected: Value at 'secretString' failed "
                           "to satisfy constraint: Member must have length less than or "
                           "equal to 65536")
        return value, is_binary

    @staticmethod
    def _day(ts):
        return float(int(ts) - int(ts) % 86400)

    def GetSecretValue(self, body):
        s = self._secret(body)
        vid = _req_str(body, "VersionId", lo=32, hi=64)
        stage = _req_str(body, "VersionStage", hi=256)
        if vid is not None:
            v = s.version(vid)
            if v is None:
                raise AwsError("ResourceNotFoundException",
                               "Secrets Manager can't find the specified secret value "
                               "for VersionId: %s" % vid)
            if stage is not None and stage not in v.stages:
                # moto's text; AWS's own is not captured anywhere public I could find.
                raise AwsError("InvalidRequestException",
                               "You provided a VersionStage that is not associated to "
                               "the provided VersionId.")
        else:
            stage = stage or AWSCURRENT
            v = s.holder(stage)
            if v is None:
                raise AwsError("ResourceNotFoundException",
                               "Secrets Manager can't find the specified secret value "
                               "for staging label: %s" % stage)
        day = self._day(self.st.now())
        s.last_accessed = v.last_accessed = day
        out = {"ARN": s.arn, "Name": s.name, "VersionId": v.vid,
               "VersionStages": list(v.stages), "CreatedDate": v.created}
        if v.is_binary:
            out["SecretBinary"] = base64.b64encode(v.value).decode()
        else:
            out["SecretString"] = v.value.decode()
        return out

    def DescribeSecret(self, body):
        s = self._secret(body, allow_deleted=True)
        out = {"ARN": s.arn, "Name": s.name, "LastChangedDate": s.last_changed,
               "VersionIdsToStages": s.stage_map(), "CreatedDate": s.created}
        if s.description is not None:
            out["Description"] = s.description
        if s.last_accessed is not None:
            out["LastAccessedDate"] = s.last_accessed
        if s.deleted is not None:
            out["DeletedDate"] = s.deleted
        if s.tags:
            out["Tags"] = s.tags
        return out

    def ListSecretVersionIds(self, body):
        s = self._secret(body, allow_deleted=True)
        include = bool(body.get("IncludeDeprecated", False))
        versions = [v for v in s.versions if v.stages or include]
        start, limit = self._page(body, len(versions))
        out = {"ARN": s.arn, "Name": s.name, "Versions": []}
        for v in versions[start:start + limit]:
            e = {"VersionId": v.vid, "CreatedDate": v.created, "KmsKeyIds": ["DEFAULT"]}
            if v.stages:
                e["VersionStages"] = list(v.stages)
            if v.last_accessed is not None:
                e["LastAccessedDate"] = v.last_accessed
            out["Versions"].append(e)
        if start + limit < len(versions):
            out["NextToken"] = str(start + limit)
        return out

    def _page(self, body, total, max_limit=100):
        limit = body.get("MaxResults", max_limit)
        if not isinstance(limit, int) or not 1 <= limit <= max_limit:
            raise AwsError("InvalidParameterException",
                           "Invalid parameter MaxResults")
        tok = body.get("NextToken")
        if tok is None:
            return 0, limit
        try:
            start = int(tok)
        except (TypeError, ValueError):
            start = -1
        if not 0 <= start <= total:
            raise AwsError("InvalidNextTokenException",
                           "The NextToken value is invalid.")
        return start, limit

    def _new_version(self, s, body, default_stages):
        value, is_binary = self._value(body)
        token = _req_str(body, "ClientRequestToken", lo=32, hi=64)
        stages = body.get("VersionStages")
        if stages is not None and (not isinstance(stages, list) or not stages or
                                   not all(isinstance(x, str) for x in stages)):
            raise AwsError("InvalidParameterException",
                           "Invalid parameter VersionStages")
        if token is not None:
            old = s.version(token)
            if old is not None:
                if value is not None and old.value == value and old.is_binary == is_binary:
                    return old      # idempotent retry of the same request
                raise AwsError("ResourceExistsException",
                               "You can't modify an existing version, you can only "
                               "create a new version.")
        if value is None:
            return None
        now = round(self.st.now(), 3)
        v = Version(token or str(uuid.uuid4()), value, is_binary, now)
        s.versions.append(v)
        for st in (stages or default_stages):
            s.attach(v, st)
        s.last_changed = now
        return v

    def CreateSecret(self, body):
        name = _req_str(body, "Name", required=True, hi=512)
        old = self.st.secrets.get(name)
        if old is not None:
            if old.deleted is not None:
                raise AwsError("InvalidRequestException",
                               "You can't create this secret because a secret with this "
                               "name is already scheduled for deletion.")
            raise AwsError("ResourceExistsException",
                           "The operation failed because the secret %s already exists."
                           % name)
        body = dict(body)
        body.pop("VersionStages", None)
        now = round(self.st.now(), 3)
        tags = body.get("Tags") or []
        s = Secret(name, self.st.new_arn(name), now, body.get("Description"), tags)
        v = self._new_version(s, body, [AWSCURRENT])
        self.st.secrets[name] = s
        out = {"ARN": s.arn, "Name": s.name}
        if v is not None:
            out["VersionId"] = v.vid
        return out

    def PutSecretValue(self, body):
        s = self._secret(body)
        if body.get("SecretString") is None and body.get("SecretBinary") is None:
            raise AwsError("InvalidRequestException",
                           "You must provide either SecretString or SecretBinary.")
        v = self._new_version(s, body, [AWSCURRENT])
        return {"ARN": s.arn, "Name": s.name, "VersionId": v.vid,
                "VersionStages": list(v.stages)}

    def UpdateSecretVersionStage(self, body):
        s = self._secret(body)
        stage = _req_str(body, "VersionStage", required=True, hi=256)
        move = _req_str(body, "MoveToVersionId", lo=32, hi=64)
        remove = _req_str(body, "RemoveFromVersionId", lo=32, hi=64)
        holder = s.holder(stage)
        for vid in (move, remove):
            if vid is not None and s.version(vid) is None:
                raise AwsError("ResourceNotFoundException",
                               "Secrets Manager can't find the specified secret value "
                               "for VersionId: %s" % vid)
        if remove is not None and (holder is None or holder.vid != remove):
            raise AwsError("InvalidParameterException",
                           "The staging label %s is not currently attached to version "
                           "%s." % (stage, remove))
        if move is not None:
            if holder is not None and holder.vid != move and remove != holder.vid:
                raise AwsError("InvalidParameterException",
                               "The parameter RemoveFromVersionId can't be empty. Staging "
                               "label %s is currently attached to version %s, so you must "
                               "explicitly reference that version in RemoveFromVersionId."
                               % (stage, holder.vid))
            s.attach(s.version(move), stage)
        elif remove is not None:
            if stage == AWSCURRENT:
                raise AwsError("InvalidParameterException",
                               "You can only move staging label AWSCURRENT to a different "
                               "secret version. It can't be completely removed.")
            holder.stages.remove(stage)
        else:
            raise AwsError("InvalidParameterException",
                           "You must specify MoveToVersionId or RemoveFromVersionId.")
        s.last_changed = round(self.st.now(), 3)
        return {"ARN": s.arn, "Name": s.name}

    def DeleteSecret(self, body):
        s = self._secret(body, allow_deleted=True)
        force = bool(body.get("ForceDeleteWithoutRecovery", False))
        window = body.get("RecoveryWindowInDays")
        if force and window is not None:
            raise AwsError("InvalidParameterException",
                           "You can't use ForceDeleteWithoutRecovery in conjunction "
                           "with RecoveryWindowInDays.")
        now = round(self.st.now(), 3)
        if force:
            del self.st.secrets[s.name]
            return {"ARN": s.arn, "Name": s.name, "DeletionDate": now}
        if s.deleted is not None:
            raise AwsError("InvalidRequestException", MSG_DELETED)
        window = 30 if window is None else window
        if not isinstance(window, int) or not 7 <= window <= 30:
            raise AwsError("InvalidParameterException",
                           "The RecoveryWindowInDays value must be between 7 and 30 "
                           "days (inclusive).")
        s.deleted = now
        return {"ARN": s.arn, "Name": s.name, "DeletionDate": now + window * 86400}

    def RestoreSecret(self, body):
        s = self._secret(body, allow_deleted=True)
        s.deleted = None
        return {"ARN": s.arn, "Name": s.name}

    def _list_entry(self, s):
        e = {"ARN": s.arn, "Name": s.name, "LastChangedDate": s.last_changed,
             "SecretVersionsToStages": s.stage_map(), "CreatedDate": s.created}
        if s.description is not None:
            e["Description"] = s.description
        if s.last_accessed is not None:
            e["LastAccessedDate"] = s.last_accessed
        if s.deleted is not None:
            e["DeletedDate"] = s.deleted
        if s.tags:
            e["Tags"] = s.tags
        return e

    def _filtered(self, body, include_deleted):
        names = sorted(self.st.secrets)
        out = []
        for n in names:
            s = self.st.secrets[n]
            if s.deleted is not None and not include_deleted:
                continue
            ok = True
            for f in body.get("Filters") or []:
                key, vals = f.get("Key"), f.get("Values") or []
                if key == "name":
                    ok = ok and any(n.startswith(v) for v in vals)
                elif key == "all":
                    ok = ok and any(v in n or v in (s.description or "") for v in vals)
                elif key == "description":
                    ok = ok and any(v in (s.description or "") for v in vals)
                elif key in ("tag-key", "tag-value"):
                    field = "Key" if key == "tag-key" else "Value"
                    ok = ok and any(t.get(field, "").startswith(v)
                                    for t in s.tags for v in vals)
            if ok:
                out.append(s)
        return out

    def ListSecrets(self, body):
        found = self._filtered(body, bool(body.get("IncludePlannedDeletion", False)))
        if body.get("SortOrder") == "desc":
            found.reverse()
        start, limit = self._page(body, len(found))
        out = {"SecretList": [self._list_entry(s) for s in found[start:start + limit]]}
        if start + limit < len(found):
            out["NextToken"] = str(start + limit)
        return out

    def BatchGetSecretValue(self, body, deny=None):
        ids, filters = body.get("SecretIdList"), body.get("Filters")
        if (ids is None) == (filters is None):
            raise AwsError("InvalidParameterException",
                           "Either 'SecretIdList' or 'Filters' must be provided, but not both.")
        if ids is not None:
            if body.get("MaxResults") is not None:
                raise AwsError("InvalidParameterException",
                               "'Filters' not specified. 'Filters' must also be specified "
                               "when 'MaxResults' is provided.")
            if not isinstance(ids, list) or not 1 <= len(ids) <= 20:
                raise AwsError("InvalidParameterException", "Invalid parameter SecretIdList")
            start, targets = 0, ids
            nxt = None
        else:
            found = self._filtered(body, False)
            start, limit = self._page(body, len(found), max_limit=20)
            targets = [s.name for s in found[start:start + limit]]
            nxt = str(start + limit) if start + limit < len(found) else None
        out = {"SecretValues": [], "Errors": []}
        for sid in targets:
            try:
                s = self.st.resolve(sid)
                if deny is not None:
                    deny(sid, s.name if s else None)
                out["SecretValues"].append(self.GetSecretValue({"SecretId": sid}))
            except AwsError as e:
                out["Errors"].append({"SecretId": sid, "ErrorCode": e.code,
                                      "Message": e.message})
        if nxt is not None:
            out["NextToken"] = nxt
        return out


SM_OPS = ("GetSecretValue", "DescribeSecret", "ListSecretVersionIds", "PutSecretValue",
          "CreateSecret", "DeleteSecret", "RestoreSecret", "UpdateSecretVersionStage",
          "ListSecrets", "BatchGetSecretValue")
SM_MUTATING = ("PutSecretValue", "CreateSecret", "DeleteSecret", "RestoreSecret",
               "UpdateSecretVersionStage")


# --------------------------------------------------------------------------- HTTP

def log(msg):
    sys.stderr.write("aws-fake: %s\n" % msg)
    sys.stderr.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Server"
    sys_version = ""

    # ---- connection setup: TLS handshake in the connection's own thread
    def setup(self):
        srv = self.server
        self.request.settimeout(srv.io_timeout)
        if srv.tls_ctx is not None:
            self.request = srv.tls_ctx.wrap_socket(self.request, server_side=True)
        self.connection = self.request
        super().setup()
        with srv.state.lock:
            st = srv.state.stats
            st["connections"]["https" if srv.tls_ctx else "http"] += 1
            if srv.tls_ctx is not None:
                if self.request.session_reused:
                    st["tls_resumed"] += 1
                peer = self.request.getpeercert()
                if peer:
                    cn = [v for rdn in peer.get("subject", ()) for (k, v) in rdn
                          if k == "commonName"]
                    bump(st["client_certs"], cn[0] if cn else "?")

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        pass    # the default logs request lines; we log op + status only

    def log_error(self, fmt, *args):
        pass

    # ---- plumbing
    def _read_body(self):
        te = self.headers.get("Transfer-Encoding")
        if te and te.lower() == "chunked":
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise AwsError("SerializationException", "Request body too large", 413)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise AwsError("SerializationException", "Request body too large", 413)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body, ctype, headers=None, rid=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("x-amzn-RequestId", rid or str(uuid.uuid4()))
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status, obj, headers=None, ctype=JSON_CT):
        self._send(status, json.dumps(obj), ctype, headers)

    def _drop(self):
        self.close_connection = True
        try:
            self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def _dispatch(self):
        try:
            body = self._read_body()
        except (AwsError, ValueError):
            self._send(413, "", "text/plain")
            self.close_connection = True
            return
        path = urllib.parse.urlsplit(self.path).path
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            if path.startswith("/_fake/"):
                if not self.server.is_tls:
                    self._send(404, "404 - Not Found", "text/plain")
                else:
                    self._admin(path, body)
            elif path.startswith("/latest/"):
                self._imds(path)
            elif path == self.server.state.cfg["ecs_path"]:
                self._ecs()
            elif self.command == "POST" and ctype == "application/x-www-form-urlencoded":
                self._sts(body)
            elif self.command == "POST" and path == "/" and self.server.is_tls:
                self._secretsmanager(body)
            else:
                self._send(404, "404 - Not Found", "text/plain")
        except Drop:
            self._drop()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ---- faults shared by every endpoint
    def _apply_faults(self, op, secret_id=None, names=()):
        slow, f = self.server.state.take_faults(op, secret_id, names)
        if slow:
            time.sleep(slow)
        return f

    # ---- Secrets Manager
    def _sm_error(self, e, op):
        st = self.server.state
        cfg = st.cfg
        code = e.code
        if cfg.get("error_style") == "qualified":
            # Some AWS JSON services qualify the shape name (reference B3); clients
            # must keep the text after '#' (body) and before ':' (header).
            body_type = ("com.amazon.coral.service#" if code in AUTH_ERRORS
                         else "com.amazonaws.secretsmanager#") + code
            hdr_type = code + ":http://internal.amazon.com/coral/com.amazonaws.secretsmanager/"
        else:
            body_type, hdr_type = code, code
        obj = {"__type": body_type, cfg.get("message_key", "message"): e.message}
        with st.lock:
            bump(st.stats["status"], str(e.status))
            bump(st.stats["errors"], code)
            if code in AUTH_ERRORS:
                st.stats["signature_failures"] += 1
                bump(st.stats["auth_errors"], code)
        log("secretsmanager %s %d %s" % (op or "-", e.status, code))
        self._send_json(e.status, obj, {"X-Amzn-Errortype": hdr_type})

    def _secretsmanager(self, raw):
        st = self.server.state
        target = self.headers.get("X-Amz-Target") or ""
        op = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else None
        body = None
        try:
            body = json.loads(raw.decode() or "{}") if raw else {}
        except (ValueError, UnicodeDecodeError):
            body = None
        secret_id = body.get("SecretId") if isinstance(body, dict) else None
        if not isinstance(secret_id, str):
            secret_id = None
        with st.lock:
            bump(st.stats["operations"], op or "?")
            if secret_id is not None:
                bump(st.stats["secrets"].setdefault(secret_id, {}), op or "?")
        try:
            akid = verify_sigv4(self.command, self.path, self.headers.items(), raw,
                                st.lookup, st.region, SERVICE, st.now())
            with st.lock:
                bump(st.stats["access_keys"], akid)
                if akid.startswith("ASIA"):
                    st.stats["session_token_requests"] += 1
            if op is None or op not in SM_OPS:
                raise AwsError("UnknownOperationException", "")
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype != JSON_CT:
                raise AwsError("UnknownOperationException", "")
            if not isinstance(body, dict):
                raise AwsError("SerializationException",
                               "Start of structure or map found where not expected.")
            with st.lock:
                sec = st.resolve(secret_id) if secret_id else None
            names = (sec.name, sec.arn) if sec is not None else ()
            fault = self._apply_faults(op, secret_id, names)
            if fault is not None:
                self._sm_fault(fault, op, sec)
                return
            with st.lock:
                def check(sid, name):
                    arn = st.denied(akid, op, name if name is not None else sid)
                    if arn is not None:
                        raise AwsError("AccessDeniedException",
                                       "User: %s is not authorized to perform: "
                                       "secretsmanager:%s on resource: %s because no "
                                       "identity-based policy allows the "
                                       "secretsmanager:%s action" % (arn, op, sid, op))
                if op == "BatchGetSecretValue":
                    result = SecretsManager(st).BatchGetSecretValue(body, deny=check)
                else:
                    check(secret_id or "*", sec.name if sec is not None else
                          body.get("Name") if op == "CreateSecret" else None)
                    result = getattr(SecretsManager(st), op)(body)
                if op in SM_MUTATING:
                    st._save()
                bump(st.stats["status"], "200")
        except AwsError as e:
            self._sm_error(e, op)
            return
        except Drop:
            raise
        except Exception as e:     # a bug in the fake must still answer like AWS would
            log("secretsmanager %s internal error %s" % (op, type(e).__name__))
            self._sm_error(AwsError("InternalServiceError", MSG_INTERNAL, 500), op)
            return
        log("secretsmanager %s 200" % op)
        self._send_json(200, result)

    def _sm_fault(self, f, op, sec):
        kind = f["kind"]
        if kind == "drop":
            log("secretsmanager %s fault drop" % op)
            raise Drop()
        if kind == "throttle":
            raise AwsError("ThrottlingException", MSG_THROTTLE)
        if kind == "error500":
            raise AwsError("InternalServiceError", MSG_INTERNAL, 500)
        if kind == "unavailable":
            raise AwsError("ServiceUnavailable", "Service Unavailable", 503)
        if kind == "decryption_failure":
            raise AwsError("DecryptionFailure", MSG_DECRYPT)
        if kind == "access_denied":
            raise AwsError("AccessDeniedException",
                           "User: arn:aws:iam::%s:user/denied is not authorized to "
                           "perform: secretsmanager:%s" % (self.server.state.account, op))
        if kind == "malformed":
            with self.server.state.lock:
                bump(self.server.state.stats["status"], "200")
            log("secretsmanager %s 200 fault malformed" % op)
            self._send(200, '{"ARN": "arn:aws:secretsmanager:', JSON_CT)
            return
        if kind == "huge":
            size = int(f.get("size", 8 << 20))
            with self.server.state.lock:
                bump(self.server.state.stats["status"], "200")
            log("secretsmanager %s 200 fault huge" % op)
            self._send_json(200, {"ARN": sec.arn if sec else "arn", "Name":
                                  sec.name if sec else "x", "VersionId": str(uuid.uuid4()),
                                  "SecretString": "A" * size, "VersionStages": [AWSCURRENT],
                                  "CreatedDate": round(time.time(), 3)})
            return
        raise AwsError("InternalServiceError", "unknown fault kind %s" % kind, 500)

    # ---- credential endpoints: common fault handling
    def _cred_fault(self, endpoint):
        f = self._apply_faults(endpoint)
        if f is None:
            return False
        kind = f["kind"]
        with self.server.state.lock:
            bump(self.server.state.stats["credential_failures"], endpoint)
        log("%s %s fault %s" % (endpoint, self.command, kind))
        if kind == "drop":
            raise Drop()
        if kind == "malformed":
            self._send(200, "{\"AccessKeyId\": ", "application/json")
        elif kind == "throttle":
            if endpoint == "sts":
                self._sts_error("Throttling", MSG_THROTTLE, 400)
            else:
                self._send(429, "Too Many Requests", "text/plain")
        else:
            self._send(500 if kind != "unavailable" else 503, "Internal Server Error",
                       "text/plain")
        return True

    def _cred_fail(self, endpoint, status, body, ctype="text/plain"):
        with self.server.state.lock:
            bump(self.server.state.stats["credential_failures"], endpoint)
        log("%s %s %d" % (endpoint, self.command, status))
        self._send(status, body, ctype)

    # ---- IMDSv2
    def _imds(self, path):
        st = self.server.state
        if self._cred_fault("imds"):
            return
        now = st.now()
        if path == "/latest/api/token":
            if self.command != "PUT":
                return self._cred_fail("imds", 405, "")
            if self.headers.get("X-Forwarded-For") is not None:
                return self._cred_fail("imds", 403, "")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            try:
                ttl = int(ttl)
            except (TypeError, ValueError):
                return self._cred_fail("imds", 400, "")
            if not 1 <= ttl <= 21600:
                return self._cred_fail("imds", 400, "")
            token = base64.urlsafe_b64encode(_rand.token_bytes(42)).decode()
            with st.lock:
                st.imds_tokens[token] = now + ttl
                bump(st.stats["credential_fetches"], "imds_token")
            log("imds PUT token 200")
            return self._send(200, token, "text/plain",
                              {"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)})
        if self.command not in ("GET", "HEAD"):
            return self._cred_fail("imds", 405, "")
        token = self.headers.get("X-aws-ec2-metadata-token")
        with st.lock:
            exp = st.imds_tokens.get(token) if token is not None else None
        if token is None and not st.cfg.get("imds_v1"):
            return self._cred_fail("imds", 401, "")
        if token is not None and (exp is None or now >= exp):
            return self._cred_fail("imds", 401, "")
        role = st.cfg["role_name"]
        base = "/latest/meta-data/iam/security-credentials/"
        if path == base:
            with st.lock:
                bump(st.stats["credential_fetches"], "imds_role")
            log("imds GET role 200")
            return self._send(200, role, "text/plain")
        if path == base + role:
            akid, c = st.issue_temp("imds", "i-0fake0instance", 6 * 3600)
            with st.lock:
                bump(st.stats["credential_fetches"], "imds_credentials")
            log("imds GET credentials 200")
            return self._send_json(200, {
                "Code": "Success", "LastUpdated": iso(c["issued"]), "Type": "AWS-HMAC",
                "AccessKeyId": akid, "SecretAccessKey": c["secret_key"],
                "Token": c["token"], "Expiration": iso(c["expires"])},
                ctype="text/plain")
        if path == "/latest/meta-data/placement/region":
            return self._send(200, st.region, "text/plain")
        if path == "/latest/dynamic/instance-identity/document":
            return self._send_json(200, {"accountId": st.account, "region": st.region,
                                         "instanceId": "i-0fake0instance"},
                                   ctype="text/plain")
        return self._cred_fail("imds", 404, "404 - Not Found")

    # ---- ECS / EKS Pod Identity container credentials
    def _ecs(self):
        st = self.server.state
        if self._cred_fault("ecs"):
            return
        if self.command != "GET":
            return self._cred_fail("ecs", 405, "")
        want = st.cfg.get("ecs_token")
        if want is not None:
            got = self.headers.get("Authorization")
            # The Pod Identity agent answers 400 to a request with no Authorization
            # (epam/ai-dial-adapter-vertexai#520); its answer to a wrong token is not
            # documented: 401 here.
            if got is None:
                return self._cred_fail("ecs", 400, json.dumps(
                    {"code": "InvalidParameter", "message": "Authorization header missing"}),
                    "application/json")
            if not hmac.compare_digest(got.encode(), want.encode()):
                return self._cred_fail("ecs", 401, json.dumps(
                    {"code": "AccessDenied", "message": "Authorization token is invalid"}),
                    "application/json")
        akid, c = st.issue_temp("ecs", "ecs-task", 6 * 3600)
        with st.lock:
            bump(st.stats["credential_fetches"], "ecs")
        log("ecs GET credentials 200")
        return self._send_json(200, {
            "AccessKeyId": akid, "Expiration": iso(c["expires"]), "RoleArn": st.role_arn(),
            "SecretAccessKey": c["secret_key"], "Token": c["token"],
            "AccountId": st.account}, ctype="application/json")

    # ---- STS AssumeRoleWithWebIdentity (awsQuery, unsigned)
    def _sts_error(self, code, message, status=400):
        rid = str(uuid.uuid4())
        typ = "Sender" if status < 500 else "Receiver"
        doc = ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>%s</Type>\n'
               '    <Code>%s</Code>\n    <Message>%s</Message>\n  </Error>\n'
               '  <RequestId>%s</RequestId>\n</ErrorResponse>\n'
               % (STS_NS, typ, xml_escape(code), xml_escape(message), rid))
        with self.server.state.lock:
            bump(self.server.state.stats["credential_failures"], "sts")
        log("sts %s %d %s" % (self.command, status, code))
        self._send(status, doc, "text/xml", rid=rid)

    def _sts(self, raw):
        st = self.server.state
        try:
            form = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            form = {}
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        form = {**query, **form}
        action = form.get("Action")
        if action != "AssumeRoleWithWebIdentity":
            return self._sts_error("InvalidAction",
                                   "Could not find operation %s for version %s"
                                   % (action, form.get("Version", "NO_VERSION_SPECIFIED")))
        if self._cred_fault("sts"):
            return
        with st.lock:
            if self.headers.get("Authorization") is None:
                st.stats["sts_unsigned"] += 1
        for p in ("RoleArn", "RoleSessionName", "WebIdentityToken"):
            if not form.get(p):
                return self._sts_error("ValidationError",
                                       "1 validation error detected: Value null at '%s' "
                                       "failed to satisfy constraint: Member must not be "
                                       "null" % (p[0].lower() + p[1:]))
        duration = form.get("DurationSeconds", "3600")
        try:
            duration = int(duration)
        except ValueError:
            duration = -1
        if not 900 <= duration <= 43200:
            return self._sts_error("ValidationError",
                                   "1 validation error detected: Value '%s' at "
                                   "'durationSeconds' failed to satisfy constraint: Member "
                                   "must have value between 900 and 43200"
                                   % form.get("DurationSeconds"))
        tokens = st.cfg.get("web_identity_tokens") or []
        tok = form["WebIdentityToken"]
        if not any(hmac.compare_digest(tok.encode(), t.encode()) for t in tokens):
            return self._sts_error("InvalidIdentityToken", MSG_BAD_WEB_TOKEN)
        if form["RoleArn"] != st.role_arn():
            return self._sts_error("AccessDenied",
                                   "Not authorized to perform sts:AssumeRoleWithWebIdentity")
        session = form["RoleSessionName"]
        akid, c = st.issue_temp("sts", session, duration)
        with st.lock:
            bump(st.stats["credential_fetches"], "sts")
        rid = str(uuid.uuid4())
        role = st.cfg["role_name"]
        doc = (
            '<AssumeRoleWithWebIdentityResponse xmlns="%(ns)s">\n'
            '  <AssumeRoleWithWebIdentityResult>\n'
            '    <SubjectFromWebIdentityToken>system:serviceaccount:secretsfs:secretsfs'
            '</SubjectFromWebIdentityToken>\n'
            '    <Audience>sts.amazonaws.com</Audience>\n'
            '    <AssumedRoleUser>\n'
            '      <Arn>arn:aws:sts::%(acct)s:assumed-role/%(role)s/%(session)s</Arn>\n'
            '      <AssumedRoleId>AROAFAKE0ROLE0ID0FAKE:%(session)s</AssumedRoleId>\n'
            '    </AssumedRoleUser>\n'
            '    <Credentials>\n'
            '      <SessionToken>%(token)s</SessionToken>\n'
            '      <SecretAccessKey>%(secret)s</SecretAccessKey>\n'
            '      <Expiration>%(exp)s</Expiration>\n'
            '      <AccessKeyId>%(akid)s</AccessKeyId>\n'
            '    </Credentials>\n'
            '    <Provider>arn:aws:iam::%(acct)s:oidc-provider/oidc.fake.local</Provider>\n'
            '  </AssumeRoleWithWebIdentityResult>\n'
            '  <ResponseMetadata>\n'
            '    <RequestId>%(rid)s</RequestId>\n'
            '  </ResponseMetadata>\n'
            '</AssumeRoleWithWebIdentityResponse>\n'
        ) % {"ns": STS_NS, "acct": st.account, "role": xml_escape(role),
             "session": xml_escape(session), "token": xml_escape(c["token"]),
             "secret": xml_escape(c["secret_key"]), "exp": iso(c["expires"]),
             "akid": akid, "rid": rid}
        log("sts POST AssumeRoleWithWebIdentity 200")
        self._send(200, doc, "text/xml", rid=rid)

    # ---- control routes
    def _admin(self, path, raw):
        st = self.server.state
        want = st.cfg.get("admin_token")
        got = self.headers.get("X-Fake-Admin")
        if not want or got is None or not hmac.compare_digest(got.encode(), want.encode()):
            return self._send_json(403, {"error": "admin token required"},
                                   ctype="application/json")
        try:
            body = json.loads(raw.decode() or "{}") if raw else {}
        except ValueError:
            return self._send_json(400, {"error": "bad json"}, ctype="application/json")
        route = path[len("/_fake/"):]
        try:
            with st.lock:
                out = self._admin_route(route, body)
        except AwsError as e:
            return self._send_json(400, {"error": e.code, "message": e.message},
                                   ctype="application/json")
        except (KeyError, TypeError, ValueError) as e:
            return self._send_json(400, {"error": "bad request: %s" % type(e).__name__},
                                   ctype="application/json")
        if out is None:
            return self._send(404, "404 - Not Found", "text/plain")
        self._send_json(200, out, ctype="application/json")

    def _admin_route(self, route, body):
        st = self.server.state
        if route == "stats":
            return copy.deepcopy(st.stats)
        if route == "reset_stats":
            st.stats = new_stats()
            return {"ok": True}
        if route == "faults":
            if self.command == "GET":
                return {"faults": copy.deepcopy(st.faults)}
            if body.get("clear"):
                st.faults = []
            for f in body.get("add", []):
                if f.get("kind") not in ("throttle", "error500", "unavailable", "slow",
                                         "malformed", "drop", "decryption_failure",
                                         "access_denied", "huge"):
                    raise ValueError("kind")
                f.setdefault("count", 1)
                if not isinstance(f["count"], int) or f["count"] == 0:
                    raise ValueError("count")       # N > 0 times, or -1 = until cleared
                st.faults.append(dict(f))
            return {"faults": copy.deepcopy(st.faults)}
        if route == "secrets":
            if self.command == "DELETE" or body.get("delete"):
                s = st.secrets.pop(body["name"], None)
                st._save()
                return {"deleted": s is not None}
            if "binary" in body:
                value, is_binary = base64.b64decode(body["binary"]), True
            else:
                value, is_binary = body["string"].encode(), False
            s, v = st.put_value(body["name"], value, is_binary, body.get("stages"),
                                body.get("version_id"), arn_suffix=body.get("arn_suffix"))
            return {"ARN": s.arn, "Name": s.name, "VersionId": v.vid,
                    "VersionStages": list(v.stages)}
        if route == "describe":
            s = st.resolve(body["name"])
            if s is None:
                raise AwsError("ResourceNotFoundException", MSG_NOT_FOUND)
            return {"ARN": s.arn, "Name": s.name, "Deleted": s.deleted,
                    "VersionIdsToStages": s.stage_map(include_deprecated=True)}
        if route == "revoke_temp_credentials":
            return {"revoked": st.revoke_temp()}
        if route == "expire_temp_credentials":
            return {"expired": st.expire_temp()}
        if route == "temp_credentials":
            # Metadata only: key ids, source and expiry, never the secret parts.
            return {"credentials": [{"AccessKeyId": k, "source": t["source"],
                                     "expires": t["expires"], "revoked": t["revoked"]}
                                    for k, t in st.temp.items()]}
        if route == "config":
            allowed = ("clock_offset", "temp_cred_ttl", "deny", "error_style",
                       "message_key", "imds_v1", "web_identity_tokens", "ecs_token")
            for k, v in body.items():
                if k not in allowed:
                    raise ValueError(k)
                st.cfg[k] = v
            return {k: st.cfg.get(k) for k in allowed
                    if k not in ("web_identity_tokens", "ecs_token")}
        return None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, state, tls_ctx, io_timeout=60):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.state = state
        self.tls_ctx = tls_ctx
        self.is_tls = tls_ctx is not None
        self.io_timeout = io_timeout
        super().__init__(addr, Handler)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        # TLS handshake failures (bad or missing client cert, plain http on the TLS
        # port) are expected in tests: one line, no traceback.
        log("connection error: %s" % type(exc).__name__)


# --------------------------------------------------------------------------- main

def load_config(args):
    cfg = {}
    if args.config:
        with open(args.config) as f:
            cfg = json.load(f)
    cfg.setdefault("region", "us-east-1")
    cfg.setdefault("account_id", "123456789012")
    cfg.setdefault("role_name", "secretsfs-node-role")
    cfg.setdefault("ecs_path", "/v2/credentials/secretsfs-task")
    cfg.setdefault("credentials", [])
    cfg.setdefault("deny", [])
    if args.region:
        cfg["region"] = args.region
    if args.temp_cred_ttl is not None:
        cfg["temp_cred_ttl"] = args.temp_cred_ttl
    if args.admin_token:
        cfg["admin_token"] = args.admin_token
    if len(args.access_key) != len(args.secret_key):
        sys.exit("aws-fake: --access-key and --secret-key must come in pairs")
    for ak, sk in zip(args.access_key, args.secret_key):
        cfg["credentials"].append({"access_key": ak, "secret_key": sk})
    for t in args.web_identity_token:
        cfg.setdefault("web_identity_tokens", []).append(t)
    if args.ecs_token:
        cfg["ecs_token"] = args.ecs_token
    if args.imds_v1:
        cfg["imds_v1"] = True
    return cfg


def make_tls(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.load_verify_locations(args.client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1", help="HTTPS bind address (loopback)")
    ap.add_argument("--port", type=int, default=0, help="HTTPS port, 0 = any")
    ap.add_argument("--http-port", type=int, default=None,
                    help="also serve IMDS/ECS/STS over plain http on 127.0.0.1 (0 = any)")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca", help="require a client certificate signed by this CA")
    ap.add_argument("--ready-file", help='write {"port":N,"http_port":M,"pid":P} when ready')
    ap.add_argument("--region", default=None)
    ap.add_argument("--config", help="JSON config (credentials, tokens, seeds); keep it 0600")
    ap.add_argument("--state-file", help="persist secrets and temp credentials here")
    ap.add_argument("--access-key", action="append", default=[])
    ap.add_argument("--secret-key", action="append", default=[])
    ap.add_argument("--admin-token", default=None)
    ap.add_argument("--web-identity-token", action="append", default=[])
    ap.add_argument("--ecs-token", default=None)
    ap.add_argument("--imds-v1", action="store_true", help="allow IMDSv1 (no token)")
    ap.add_argument("--temp-cred-ttl", type=float, default=None,
                    help="cap the lifetime of issued temporary credentials (seconds)")
    args = ap.parse_args(argv)

    cfg = load_config(args)
    state = State(cfg, args.state_file)
    https = Server((args.host, args.port), state, make_tls(args))
    servers = [https]
    http_port = None
    if args.http_port is not None:
        http = Server(("127.0.0.1", args.http_port), state, None)
        servers.append(http)
        http_port = http.server_address[1]
    for s in servers:
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())

    port = https.server_address[1]
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"port": port, "http_port": http_port, "pid": os.getpid()}, f)
        os.replace(tmp, args.ready_file)
    log("listening https=%s:%d http=%s" % (args.host, port, http_port))
    done.wait()
    for s in servers:
        s.shutdown()
        s.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
