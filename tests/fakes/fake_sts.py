"""The STS side of the fake Vault's aws (IAM) login: it plays sts:GetCallerIdentity for a
request the client signed and Vault replays (builtin/credential/aws/path_login.go
submitCallerIdentityRequest). The signature is checked by signing the same request again
with botocore's SigV4Auth and the fake's known test credentials, over exactly the headers
the client listed in SignedHeaders, at the client's X-Amz-Date. Needs python3-botocore;
imported only when an aws login arrives.
"""

import hmac
import time
from calendar import timegm
from urllib.parse import parse_qs, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

MAX_SKEW = 15 * 60      # STS refuses a signature more than 15 minutes off its clock


class STSError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self):
        return ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
                '<Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>'
                '<RequestId>00000000-0000-4000-8000-000000000000</RequestId>'
                '</ErrorResponse>' % (self.code, self.message))


class _Resigner(SigV4Auth):
    def __init__(self, creds, region, signed):
        super().__init__(creds, "sts", region)
        self.signed = signed

    def headers_to_sign(self, request):
        every = super().headers_to_sign(request)
        out = HTTPHeaders()
        for name in self.signed:
            if name in every:
                out[name] = every[name]
        return out


def _parse_authorization(value):
    if not value.startswith("AWS4-HMAC-SHA256 "):
        raise STSError(403, "IncompleteSignature", "Unsupported signature algorithm")
    fields = {}
    for part in value[len("AWS4-HMAC-SHA256 "):].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    try:
        akid, date, region, service, term = fields["Credential"].split("/")
        return akid, date, region, service, fields["SignedHeaders"].split(";"), \
            fields["Signature"]
    except (KeyError, ValueError):
        raise STSError(403, "IncompleteSignature", "Authorization header is malformed")


def caller_identity(method, url, body, headers, credentials, now=None):
    """The GetCallerIdentityResult ({Arn, UserId, Account}) for a validly signed request,
    else STSError. credentials: {access_key_id: {secret_access_key, session_token?, arn,
    user_id}}."""
    h = {k.lower(): (v[0] if isinstance(v, list) else v) for k, v in headers.items()}
    if "authorization" not in h:
        raise STSError(403, "MissingAuthenticationToken",
                       "Request is missing Authentication Token")
    akid, date, region, service, signed, signature = _parse_authorization(h["authorization"])
    form = parse_qs(body)
    form.update(parse_qs(urlsplit(url).query))
    if form.get("Action") != ["GetCallerIdentity"]:
        raise STSError(400, "InvalidAction", "Could not find operation %s"
                       % (form.get("Action") or [""])[0])
    cred = credentials.get(akid)
    if cred is None:
        raise STSError(403, "InvalidClientTokenId",
                       "The security token included in the request is invalid.")
    if cred.get("session_token") and h.get("x-amz-security-token") != cred["session_token"]:
        raise STSError(403, "InvalidClientTokenId",
                       "The security token included in the request is invalid.")
    amz_date = h.get("x-amz-date", "")
    try:
        t = timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise STSError(403, "IncompleteSignature", "X-Amz-Date is missing or malformed")
    if abs((time.time() if now is None else now) - t) > MAX_SKEW:
        raise STSError(403, "SignatureDoesNotMatch", "Signature expired: %s is now earlier "
                       "or later than the allowed 15 minutes" % amz_date)
    req = AWSRequest(method=method, url=url, data=body.encode(),
                     headers={k: v for k, v in h.items() if k != "authorization"})
    req.context["timestamp"] = amz_date
    signer = _Resigner(Credentials(akid, cred["secret_access_key"],
                                   cred.get("session_token")), region, signed)
    canonical = signer.canonical_request(req)
    expected = signer.signature(signer.string_to_sign(req, canonical), req)
    if not hmac.compare_digest(expected, signature) or date != amz_date[:8] \
            or service != "sts":
        raise STSError(403, "SignatureDoesNotMatch",
                       "The request signature we calculated does not match the signature "
                       "you provided. Check your AWS Secret Access Key and signing method.")
    arn = cred["arn"]
    return {"Arn": arn, "UserId": cred.get("user_id", "AIDAFAKE" + akid[-8:]),
            "Account": arn.split(":")[4]}


def parse_iam_arn(arn):
    """path_login.go parseIamArn: (canonical ARN, friendly name) or ValueError(Vault's
    text)."""
    parts = arn.split(":")
    if len(parts) != 6:
        raise ValueError("unrecognized arn: contains %d colon-separated parts, expected 6"
                         % len(parts))
    if parts[0] != "arn":
        raise ValueError('unrecognized arn: does not begin with "arn:"')
    if parts[2] not in ("iam", "sts"):
        raise ValueError("unrecognized service: %s, not one of iam or sts" % parts[2])
    segs = parts[5].split("/")
    if len(segs) < 2:
        raise ValueError('unrecognized arn: "%s" contains fewer than 2 slash-separated parts'
                         % parts[5])
    kind, name = segs[0], segs[-1]
    if kind == "assumed-role":
        kind, name = "role", segs[1]
    elif kind not in ("user", "role", "instance-profile"):
        raise ValueError('unrecognized principal type: "%s"' % kind)
    return "arn:%s:iam::%s:%s/%s" % (parts[1], parts[4], kind, name), name
