"""Fidelity of tests/fakes/aws_server.py, checked with real AWS clients.

A fake that only agrees with our own C client proves nothing, so every behaviour the
broker relies on is driven here through boto3/botocore (Debian's python3-boto3):
Secrets Manager operations and errors as botocore parses them, botocore's retry handler,
and botocore's own IMDSv2, container and STS web-identity credential code.

Run: cd /work/main && /usr/bin/python3 -m pytest -q tests/system/test_fake_aws.py
"""

import datetime
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import botocore.exceptions
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ContainerProvider, Credentials
from botocore.utils import ContainerMetadataFetcher

FAKES = Path(__file__).resolve().parent.parent / "fakes"
sys.path.insert(0, str(FAKES))

import aws_server  # noqa: E402
from aws_fixture import AwsFake  # noqa: E402

JSON_CT = "application/x-amz-json-1.1"
ARN_RE = r"^arn:aws:secretsmanager:us-east-1:123456789012:secret:%s-[A-Za-z0-9]{6}$"


# --------------------------------------------------------------------------- fixtures

def _throwaway_pki(d):
    """CA + server (SANs 127.0.0.1, ::1, localhost) + client, when mkpki.sh is absent."""
    def ossl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", d / "ca.key", "-out", d / "ca.crt", "-days", "2",
         "-subj", "/CN=aws-fake test CA")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n"
                                 "extendedKeyUsage=serverAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        (d / (name + ".ext")).write_text(ext)
        ossl("req", *ec, "-keyout", d / (name + ".key"), "-out", d / (name + ".csr"),
             "-subj", "/CN=secretsfs-" + name)
        ossl("x509", "-req", "-in", d / (name + ".csr"), "-CA", d / "ca.crt", "-CAkey",
             d / "ca.key", "-CAcreateserial", "-out", d / (name + ".crt"), "-days", "2",
             "-extfile", d / (name + ".ext"))


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    mkpki = FAKES / "mkpki.sh"
    if mkpki.exists():
        subprocess.run(["bash", str(mkpki), str(d)], check=True)
    else:
        _throwaway_pki(d)
    for f in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key"):
        assert (d / f).exists(), f
    return d


@pytest.fixture(scope="module")
def fake(tmp_path_factory, pki):
    f = AwsFake.start(tmp_path_factory.mktemp("aws"), pki)
    yield f
    f.stop()


@pytest.fixture(autouse=True)
def _clean_fake(request):
    """Leave the shared fake as found: no armed faults, default clock and policy."""
    yield
    if "fake" in request.fixturenames:
        f = request.getfixturevalue("fake")
        if f.running:
            f.clear_faults()
            f.config(clock_offset=0, temp_cred_ttl=None, deny=[], imds_v1=False)


@pytest.fixture
def sm(fake):
    # Legacy retry mode is botocore's default; pinned so that the retry test means it.
    return fake.boto3_client(retries={"mode": "legacy", "max_attempts": 4})


def unique(prefix="s"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def client_error(excinfo):
    e = excinfo.value
    return (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"],
            e.response["Error"]["Message"])


def raw_call(fake, op, body, creds=None, mutate=None, sign=True):
    """POST one Secrets Manager request signed by botocore; mutate(headers, data) may
    alter it after signing.  Returns (status, headers, parsed JSON body)."""
    data = json.dumps(body).encode()
    req = AWSRequest(method="POST", url=fake.endpoint + "/", data=data,
                     headers={"Content-Type": JSON_CT,
                              "X-Amz-Target": "secretsmanager." + op})
    if sign:
        c = creds or Credentials(fake.access_key, fake.secret_key)
        SigV4Auth(c, "secretsmanager", fake.region).add_auth(req)
    headers = dict(req.headers.items())
    if mutate is not None:
        headers, data = mutate(headers, data)
    ctx = ssl.create_default_context(cafile=fake.ca_file)
    conn = http.client.HTTPSConnection("127.0.0.1", fake.port, context=ctx, timeout=10)
    try:
        conn.request("POST", "/", body=data, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(r.read())
    finally:
        conn.close()


# --------------------------------------------------------------------------- SigV4 verifier

# The derived Secrets Manager vectors of backend-api.md B4 (reproduced there by botocore).
VEC_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
VEC_TOKEN = ("AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqw"
             "AeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8"
             "phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rK"
             "wT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJa"
             "bIQwj2ICCR/oLxBA==")
VEC_NOW = datetime.datetime(2015, 8, 30, 12, 36, tzinfo=datetime.timezone.utc).timestamp()
VEC_BODY = b'{"SecretId": "MyTestDatabaseSecret"}'


def _vector_headers(signed, sig, token=False):
    h = [("Host", "secretsmanager.us-east-1.amazonaws.com"),
         ("Content-Type", JSON_CT),
         ("X-Amz-Target", "secretsmanager.GetSecretValue"),
         ("X-Amz-Date", "20150830T123600Z")]
    if token:
        h.append(("X-Amz-Security-Token", VEC_TOKEN))
    h.append(("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
                               "secretsmanager/aws4_request, SignedHeaders=%s, Signature=%s"
                               % (signed, sig)))
    return h


@pytest.mark.parametrize("token,signed,sig", [
    (False, "content-type;host;x-amz-date;x-amz-target",
     "f3aff68bc0f53e0501b2692ed185ab4e78df2c562d7eff6384dc0fb657eb4eca"),
    (True, "content-type;host;x-amz-date;x-amz-security-token;x-amz-target",
     "d9f18bfb0daeccd4bd0bfdd9a180bf0134430364223e72355e1ca9819450e37e"),
])
def test_verifier_accepts_reference_vectors_and_rejects_any_change(token, signed, sig):
    def lookup(akid):
        return (VEC_SECRET, VEC_TOKEN if token else None, None, False) if \
            akid == "AKIDEXAMPLE" else None

    def verify(headers, body=VEC_BODY, now=VEC_NOW):
        return aws_server.verify_sigv4("POST", "/", headers, body, lookup, "us-east-1",
                                       now=now)

    assert verify(_vector_headers(signed, sig, token)) == "AKIDEXAMPLE"
    with pytest.raises(aws_server.AwsError) as e:
        verify(_vector_headers(signed, sig, token), body=VEC_BODY.replace(b"My", b"Yo"))
    assert e.value.code == "InvalidSignatureException"
    with pytest.raises(aws_server.AwsError) as e:
        verify(_vector_headers(signed, sig[:-1] + "0", token))
    assert (e.value.code, e.value.message) == ("InvalidSignatureException",
                                               aws_server.MSG_BAD_SIG)
    with pytest.raises(aws_server.AwsError) as e:
        verify(_vector_headers(signed, sig, token), now=VEC_NOW + 16 * 60)
    assert e.value.code == "InvalidSignatureException"
    assert e.value.message == ("Signature expired: 20150830T123600Z is now earlier than "
                               "20150830T123700Z (20150830T125200Z - 15 min.)")


# --------------------------------------------------------------------------- Secrets Manager

def test_create_and_get_string_secret(sm):
    name = unique("db_password")
    created = sm.create_secret(Name=name, SecretString="hunter2")
    assert re.match(ARN_RE % re.escape(name), created["ARN"])
    got = sm.get_secret_value(SecretId=name)
    assert got["SecretString"] == "hunter2"
    assert "SecretBinary" not in got
    assert got["Name"] == name and got["ARN"] == created["ARN"]
    assert got["VersionId"] == created["VersionId"]
    assert got["VersionStages"] == ["AWSCURRENT"]
    assert isinstance(got["CreatedDate"], datetime.datetime)
    assert abs(got["CreatedDate"].timestamp() - time.time()) < 60
    assert got["ResponseMetadata"]["RequestId"]


def test_binary_secret_round_trips_every_byte(sm, fake):
    name = unique("tls_key")
    value = bytes(range(256)) + b"\x00\xff"
    sm.create_secret(Name=name, SecretBinary=value)
    got = sm.get_secret_value(SecretId=name)
    assert got["SecretBinary"] == value
    assert "SecretString" not in got
    # The control route stores binary the same way.
    fake.put_secret(name, binary=b"\x01\x02")
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == b"\x01\x02"


def test_get_by_full_and_partial_arn(sm):
    name = unique("api")
    arn = sm.create_secret(Name=name, SecretString="v1")["ARN"]
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "v1"
    assert sm.get_secret_value(SecretId=arn[:-7])["SecretString"] == "v1"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.get_secret_value(SecretId=arn[:-6] + "zzzzzz")
    assert client_error(e)[0] == "ResourceNotFoundException"


def test_control_route_chosen_arn_suffix(sm, fake):
    """A secret seeded with a known ARN (the README's example names one), which
    boto3 then reads by that ARN; a suffix AWS could not have made is refused."""
    name = unique("prod/hsm-key")
    put = fake.put_secret(name, binary=b"\x00wrap", arn_suffix="AbCdEf")
    assert put["ARN"] == ("arn:aws:secretsmanager:us-east-1:123456789012:secret:%s-AbCdEf"
                          % name)
    assert sm.get_secret_value(SecretId=put["ARN"])["SecretBinary"] == b"\x00wrap"
    assert sm.describe_secret(SecretId=name)["ARN"] == put["ARN"]
    # The suffix is the secret's: a later version does not change it.
    assert fake.put_secret(name, binary=b"two", arn_suffix="ZZZZZZ")["ARN"] == put["ARN"]
    with pytest.raises(Exception) as e:
        fake.put_secret(unique("bad"), string="x", arn_suffix="a-b")
    assert "HTTP 400" in str(e.value)


def test_versions_stages_and_rotation(sm):
    name = unique("rotating")
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    put = sm.put_secret_value(SecretId=name, SecretString="two")
    v2 = put["VersionId"]
    assert v2 != v1 and put["VersionStages"] == ["AWSCURRENT"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    prev = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert (prev["SecretString"], prev["VersionId"], prev["VersionStages"]) == \
        ("one", v1, ["AWSPREVIOUS"])
    assert sm.get_secret_value(SecretId=name, VersionId=v1)["SecretString"] == "one"

    # A rotation: the new value is staged AWSPENDING, AWSCURRENT does not move...
    v3 = sm.put_secret_value(SecretId=name, SecretString="three",
                             VersionStages=["AWSPENDING"])["VersionId"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    pend = sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
    assert (pend["SecretString"], pend["VersionStages"]) == ("three", ["AWSPENDING"])
    # ...until finishSecret moves AWSCURRENT; the old current becomes AWSPREVIOUS.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT",
                                       MoveToVersionId=v3)
    assert client_error(e)[:2] == ("InvalidParameterException", 400)
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT",
                                   MoveToVersionId=v3, RemoveFromVersionId=v2)
    cur = sm.get_secret_value(SecretId=name)
    assert (cur["SecretString"], cur["VersionId"]) == ("three", v3)
    assert set(cur["VersionStages"]) == {"AWSCURRENT", "AWSPENDING"}
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["VersionId"] == v2

    desc = sm.describe_secret(SecretId=name)
    assert desc["VersionIdsToStages"] == {v2: ["AWSPREVIOUS"],
                                          v3: ["AWSPENDING", "AWSCURRENT"]}
    assert desc["Name"] == name and "DeletedDate" not in desc
    assert isinstance(desc["LastChangedDate"], datetime.datetime)

    listed = sm.list_secret_version_ids(SecretId=name)
    assert {v["VersionId"] for v in listed["Versions"]} == {v2, v3}
    listed = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)
    ids = {v["VersionId"]: v.get("VersionStages") for v in listed["Versions"]}
    assert ids[v1] is None and set(ids) == {v1, v2, v3}


def test_control_route_rotation_is_seen_by_boto3(sm, fake):
    name = unique("ctl")
    first = fake.put_secret(name, string="a")
    assert first["VersionStages"] == ["AWSCURRENT"]
    second = fake.put_secret(name, string="b")
    got = sm.get_secret_value(SecretId=name)
    assert (got["SecretString"], got["VersionId"]) == ("b", second["VersionId"])
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "a"
    fake.put_secret(name, string="c", stages=["AWSPENDING"])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "b"
    assert fake.describe(name)["VersionIdsToStages"][second["VersionId"]] == ["AWSCURRENT"]


def test_not_found_errors_as_botocore_parses_them(sm):
    with pytest.raises(sm.exceptions.ResourceNotFoundException) as e:
        sm.get_secret_value(SecretId=unique("missing"))
    assert client_error(e) == ("ResourceNotFoundException", 400,
                               "Secrets Manager can't find the specified secret.")
    assert e.value.response["ResponseMetadata"]["RequestId"]

    name = unique("staged")
    sm.create_secret(Name=name, SecretString="x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
    assert client_error(e) == ("ResourceNotFoundException", 400,
                               "Secrets Manager can't find the specified secret value for "
                               "staging label: AWSPENDING")
    vid = str(uuid.uuid4())
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.get_secret_value(SecretId=name, VersionId=vid)
    assert client_error(e)[2] == ("Secrets Manager can't find the specified secret value "
                                  "for VersionId: " + vid)
    with pytest.raises(sm.exceptions.ResourceExistsException):
        sm.create_secret(Name=name, SecretString="again")


def test_secret_without_value_has_no_awscurrent(sm):
    name = unique("empty")
    created = sm.create_secret(Name=name)
    assert "VersionId" not in created
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.get_secret_value(SecretId=name)
    assert client_error(e)[0] == "ResourceNotFoundException"
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"] == {}


def test_scheduled_and_forced_deletion(sm):
    name = unique("doomed")
    sm.create_secret(Name=name, SecretString="x")
    out = sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert out["DeletionDate"].timestamp() > time.time() + 6 * 86400
    with pytest.raises(sm.exceptions.InvalidRequestException) as e:
        sm.get_secret_value(SecretId=name)
    assert client_error(e) == ("InvalidRequestException", 400,
                               "You can't perform this operation on the secret because it "
                               "was marked for deletion.")
    assert "DeletedDate" in sm.describe_secret(SecretId=name)
    with pytest.raises(sm.exceptions.InvalidRequestException):
        sm.create_secret(Name=name, SecretString="y")
    sm.restore_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "x"
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.describe_secret(SecretId=name)


def test_list_secrets_and_batch_get(sm, fake):
    prefix = unique("batch")
    names = [prefix + "/a", prefix + "/b"]
    for n in names:
        sm.create_secret(Name=n, SecretString="v-" + n[-1])
    listed = sm.list_secrets(Filters=[{"Key": "name", "Values": [prefix]}])
    assert [s["Name"] for s in listed["SecretList"]] == names
    assert all(len(s["SecretVersionsToStages"]) == 1 for s in listed["SecretList"])
    # Debian's botocore (1.29) predates BatchGetSecretValue: signed raw request.
    status, _, out = raw_call(fake, "BatchGetSecretValue",
                              {"SecretIdList": names + [prefix + "/missing"]})
    assert status == 200
    assert {v["Name"]: v["SecretString"] for v in out["SecretValues"]} == \
        {names[0]: "v-a", names[1]: "v-b"}
    assert [(x["SecretId"], x["ErrorCode"]) for x in out["Errors"]] == \
        [(prefix + "/missing", "ResourceNotFoundException")]


# --------------------------------------------------------------------------- authentication

def test_wrong_secret_key_is_invalid_signature(fake):
    before = fake.stats()["signature_failures"]
    bad = fake.boto3_client(secret_key=fake.secret_key[:-1] + "x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.list_secrets()
    assert client_error(e) == ("InvalidSignatureException", 400, aws_server.MSG_BAD_SIG)
    st = fake.stats()
    assert st["signature_failures"] == before + 1
    assert st["auth_errors"]["InvalidSignatureException"] >= 1


def test_unknown_access_key_is_unrecognized_client(fake):
    bad = fake.boto3_client(access_key="AKIA" + "Z" * 16)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.get_secret_value(SecretId="anything")
    assert client_error(e) == ("UnrecognizedClientException", 400,
                               "The security token included in the request is invalid.")
    # A static key presented with a session token is not a valid credential either.
    bad = fake.boto3_client(session_token="bogus")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.list_secrets()
    assert client_error(e)[0] == "UnrecognizedClientException"


def test_error_wire_shape_and_headers(fake):
    status, headers, body = raw_call(fake, "GetSecretValue", {"SecretId": unique("none")})
    assert status == 400
    assert body == {"__type": "ResourceNotFoundException",
                    "message": "Secrets Manager can't find the specified secret."}
    assert headers["x-amzn-errortype"] == "ResourceNotFoundException"
    assert headers["content-type"] == JSON_CT
    assert re.match(r"^[0-9a-f-]{36}$", headers["x-amzn-requestid"])


def test_unsigned_and_malformed_requests(fake):
    status, _, body = raw_call(fake, "ListSecrets", {}, sign=False)
    assert (status, body["__type"]) == (400, "MissingAuthenticationTokenException")
    assert body["message"] == "Request is missing Authentication Token"

    def unsign_host(h, d):
        h["Authorization"] = h["Authorization"].replace("host;", "")
        return h, d
    status, _, body = raw_call(fake, "ListSecrets", {}, mutate=unsign_host)
    assert (status, body["__type"]) == (400, "IncompleteSignatureException")
    assert "'Host' or ':authority' must be a 'SignedHeader'" in body["message"]

    def tamper(h, d):
        return h, d.replace(b"}", b', "MaxResults": 1}')
    status, _, body = raw_call(fake, "ListSecrets", {}, mutate=tamper)
    assert (status, body["__type"]) == (400, "InvalidSignatureException")

    def unsigned_amz_header(h, d):
        h["X-Amz-Meta-Extra"] = "1"
        return h, d
    status, _, body = raw_call(fake, "ListSecrets", {}, mutate=unsigned_amz_header)
    assert (status, body["__type"]) == (400, "IncompleteSignatureException")

    def wrong_region(h, d):
        h["Authorization"] = h["Authorization"].replace("/us-east-1/", "/eu-west-1/")
        return h, d
    status, _, body = raw_call(fake, "ListSecrets", {}, mutate=wrong_region)
    assert (status, body["__type"]) == (400, "InvalidSignatureException")
    assert "scoped to a valid region" in body["message"]


def test_clock_skew_is_signature_expired(fake, sm):
    fake.config(clock_offset=20 * 60)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.list_secrets()
    code, status, msg = client_error(e)
    assert (code, status) == ("InvalidSignatureException", 400)
    assert re.match(r"^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z "
                    r"\(\d{8}T\d{6}Z - 15 min\.\)$", msg)
    fake.config(clock_offset=-20 * 60)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.list_secrets()
    assert client_error(e)[2].startswith("Signature not yet current: ")
    fake.config(clock_offset=0)
    assert "SecretList" in sm.list_secrets()


# --------------------------------------------------------------------------- faults

def test_throttling_is_retried_by_botocore(fake, sm):
    name = unique("hot")
    fake.put_secret(name, string="v")
    fake.reset_stats()
    fake.faults(kind="throttle", count=1, operation="GetSecretValue", secret_id=name)
    got = sm.get_secret_value(SecretId=name)
    assert got["SecretString"] == "v"
    assert got["ResponseMetadata"]["RetryAttempts"] == 1
    st = fake.stats()
    assert st["secrets"][name]["GetSecretValue"] == 2
    assert st["errors"] == {"ThrottlingException": 1}
    assert st["faults_fired"] == {"throttle": 1}


def test_throttling_error_shape_when_not_retried(fake):
    client = fake.boto3_client(retries={"mode": "legacy", "max_attempts": 0})
    fake.faults(kind="throttle", count=1)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.list_secrets()
    assert client_error(e) == ("ThrottlingException", 400, "Rate exceeded")


def test_internal_error_is_retried_and_fault_scope_is_respected(fake, sm):
    hit, other = unique("a"), unique("b")
    fake.put_secret(hit, string="1")
    fake.put_secret(other, string="2")
    fake.reset_stats()
    fake.faults(kind="error500", count=2, operation="GetSecretValue", secret_id=hit)
    assert sm.get_secret_value(SecretId=other)["SecretString"] == "2"
    assert sm.get_secret_value(SecretId=hit)["SecretString"] == "1"
    st = fake.stats()
    assert st["secrets"][other]["GetSecretValue"] == 1
    assert st["secrets"][hit]["GetSecretValue"] == 3
    assert st["status"]["500"] == 2


def test_decryption_failure_and_access_denied(fake, sm):
    name = unique("kms")
    fake.put_secret(name, string="v")
    fake.faults(kind="decryption_failure", secret_id=name)
    with pytest.raises(sm.exceptions.DecryptionFailure) as e:
        sm.get_secret_value(SecretId=name)
    assert client_error(e)[:2] == ("DecryptionFailure", 400)

    fake.config(deny=[{"principal": fake.access_key, "operation": "GetSecretValue",
                       "secret": name}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.get_secret_value(SecretId=name)
    code, status, msg = client_error(e)
    assert (code, status) == ("AccessDeniedException", 400)
    assert "secretsmanager:GetSecretValue" in msg and name in msg
    assert sm.describe_secret(SecretId=name)["Name"] == name    # only that op is denied


def test_slow_and_malformed_faults(fake, sm):
    name = unique("slow")
    fake.put_secret(name, string="v")
    fake.faults(kind="slow", seconds=0.6, secret_id=name)
    t0 = time.monotonic()
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"
    assert time.monotonic() - t0 >= 0.6
    fake.faults(kind="malformed", secret_id=name)
    ctx = ssl.create_default_context(cafile=fake.ca_file)
    req = AWSRequest(method="POST", url=fake.endpoint + "/",
                     data=json.dumps({"SecretId": name}).encode(),
                     headers={"Content-Type": JSON_CT,
                              "X-Amz-Target": "secretsmanager.GetSecretValue"})
    SigV4Auth(Credentials(fake.access_key, fake.secret_key), "secretsmanager",
              fake.region).add_auth(req)
    conn = http.client.HTTPSConnection("127.0.0.1", fake.port, context=ctx, timeout=10)
    conn.request("POST", "/", body=req.body, headers=dict(req.headers.items()))
    r = conn.getresponse()
    raw = r.read()
    conn.close()
    assert r.status == 200
    with pytest.raises(ValueError):
        json.loads(raw)


def test_drop_fault_closes_connection(fake):
    client = fake.boto3_client(retries={"mode": "legacy", "max_attempts": 0})
    fake.faults(kind="drop")
    with pytest.raises(botocore.exceptions.HTTPClientError):
        client.list_secrets()
    assert fake.stats()["faults_fired"]["drop"] == 1
    assert "SecretList" in client.list_secrets()


# --------------------------------------------------------------------------- credential endpoints

@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """An environment in which botocore finds no credentials but the ones under test."""
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    return monkeypatch


def _sm_with(fake, creds):
    return fake.boto3_client(access_key=creds.access_key, secret_key=creds.secret_key,
                             session_token=creds.token)


def test_imds_v2_credentials_through_botocore_chain(fake, clean_env):
    clean_env.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.imds_endpoint + "/")
    name = unique("imds")
    fake.put_secret(name, string="from-imds")
    fake.reset_stats()
    session = botocore.session.Session()
    creds = session.get_credentials()
    assert creds is not None and creds.method == "iam-role"
    frozen = creds.get_frozen_credentials()
    assert frozen.access_key.startswith("ASIA") and frozen.token
    got = _sm_with(fake, frozen).get_secret_value(SecretId=name)
    assert got["SecretString"] == "from-imds"
    st = fake.stats()
    assert st["credential_fetches"] == {"imds_token": 1, "imds_role": 1,
                                        "imds_credentials": 1}
    assert st["session_token_requests"] == 1 and st["access_keys"] == {frozen.access_key: 1}


def test_imds_v2_rejects_missing_bad_and_malformed_tokens(fake):
    base = fake.imds_endpoint + "/latest/meta-data/iam/security-credentials/"

    def get(url, headers=None, method="GET"):
        req = urllib.request.Request(url, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, ""

    assert get(base)[0] == 401
    assert get(base, {"X-aws-ec2-metadata-token": "not-a-token"})[0] == 401
    assert get(fake.imds_endpoint + "/latest/api/token", method="PUT")[0] == 400
    assert get(fake.imds_endpoint + "/latest/api/token", method="PUT",
               headers={"X-aws-ec2-metadata-token-ttl-seconds": "21601"})[0] == 400
    assert get(fake.imds_endpoint + "/latest/api/token", method="PUT",
               headers={"X-aws-ec2-metadata-token-ttl-seconds": "60",
                        "X-Forwarded-For": "10.0.0.1"})[0] == 403
    status, token = get(fake.imds_endpoint + "/latest/api/token", method="PUT",
                        headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    assert status == 200 and token
    hdr = {"X-aws-ec2-metadata-token": token}
    assert get(base, hdr) == (200, fake.role_name)
    status, doc = get(base + fake.role_name, hdr)
    doc = json.loads(doc)
    assert status == 200 and doc["Code"] == "Success" and doc["Type"] == "AWS-HMAC"
    assert set(doc) == {"Code", "LastUpdated", "Type", "AccessKeyId", "SecretAccessKey",
                        "Token", "Expiration"}
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", doc["Expiration"])
    assert get(base + "other-role", hdr)[0] == 404


def test_container_credentials_through_botocore(fake, tmp_path):
    # Debian's botocore (1.29) reads the token from AWS_CONTAINER_AUTHORIZATION_TOKEN
    # only; newer ones read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, which is what EKS
    # Pod Identity sets.  Read the file here the way those do.
    token_file = fake.write_ecs_token(tmp_path / "eks-pod-identity-token")
    assert oct(os.stat(token_file).st_mode & 0o777) == "0o600"
    environ = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": fake.ecs_full_uri,
               "AWS_CONTAINER_AUTHORIZATION_TOKEN": Path(token_file).read_text()}
    name = unique("ecs")
    fake.put_secret(name, string="from-ecs")
    creds = ContainerProvider(environ=environ).load()
    assert creds.method == "container-role"
    frozen = creds.get_frozen_credentials()
    assert frozen.access_key.startswith("ASIA")
    assert _sm_with(fake, frozen).get_secret_value(SecretId=name)["SecretString"] == "from-ecs"
    assert fake.stats()["credential_fetches"]["ecs"] >= 1

    bad = dict(environ, AWS_CONTAINER_AUTHORIZATION_TOKEN="wrong")
    fetcher = ContainerMetadataFetcher(sleep=lambda s: None)
    with pytest.raises(botocore.exceptions.CredentialRetrievalError):
        ContainerProvider(environ=bad, fetcher=fetcher).load()
    no_token = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": fake.ecs_full_uri}
    with pytest.raises(botocore.exceptions.CredentialRetrievalError):
        ContainerProvider(environ=no_token, fetcher=fetcher).load()


def _sts(fake, **config):
    # STS AssumeRoleWithWebIdentity is unsigned (authtype none); the dummy key only
    # keeps boto3 from searching the credential chain.
    return fake.boto3_client("sts", access_key="AKIDUNUSED", secret_key="unused",
                             **config)


def test_sts_web_identity_credentials(fake):
    name = unique("irsa")
    fake.put_secret(name, string="from-sts")
    fake.reset_stats()
    out = _sts(fake).assume_role_with_web_identity(
        RoleArn=fake.role_arn, RoleSessionName="secretsfs",
        WebIdentityToken=fake.web_identity_token, DurationSeconds=900)
    c = out["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA")
    assert isinstance(c["Expiration"], datetime.datetime)
    assert 800 < c["Expiration"].timestamp() - time.time() <= 901
    assert out["AssumedRoleUser"]["Arn"].endswith(":assumed-role/%s/secretsfs"
                                                  % fake.role_name)
    client = fake.boto3_client(access_key=c["AccessKeyId"], secret_key=c["SecretAccessKey"],
                               session_token=c["SessionToken"])
    assert client.get_secret_value(SecretId=name)["SecretString"] == "from-sts"
    st = fake.stats()
    assert st["credential_fetches"] == {"sts": 1} and st["sts_unsigned"] == 1

    # The same credentials without their session token are not credentials at all.
    tokenless = fake.boto3_client(access_key=c["AccessKeyId"],
                                  secret_key=c["SecretAccessKey"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        tokenless.get_secret_value(SecretId=name)
    assert client_error(e)[0] == "UnrecognizedClientException"


def test_sts_rejects_bad_web_identity_token(fake):
    sts = _sts(fake)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role_with_web_identity(RoleArn=fake.role_arn, RoleSessionName="xx",
                                          WebIdentityToken="eyJhbGciOi.bad.token")
    code, status, msg = client_error(e)
    assert (code, status) == ("InvalidIdentityToken", 400)
    assert msg == aws_server.MSG_BAD_WEB_TOKEN
    assert e.value.response["ResponseMetadata"]["RequestId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role_with_web_identity(RoleArn=fake.role_arn + "-other",
                                          RoleSessionName="xx",
                                          WebIdentityToken=fake.web_identity_token)
    assert client_error(e)[:2] == ("AccessDenied", 400)


def test_expired_temporary_credentials_are_refused(fake):
    fake.config(temp_cred_ttl=2)
    out = _sts(fake).assume_role_with_web_identity(
        RoleArn=fake.role_arn, RoleSessionName="short",
        WebIdentityToken=fake.web_identity_token)
    c = out["Credentials"]
    assert c["Expiration"].timestamp() - time.time() <= 3
    client = fake.boto3_client(access_key=c["AccessKeyId"], secret_key=c["SecretAccessKey"],
                               session_token=c["SessionToken"])
    assert "SecretList" in client.list_secrets()
    time.sleep(2.3)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.list_secrets()
    assert client_error(e) == ("ExpiredTokenException", 400,
                               "The security token included in the request is expired")


def test_expire_and_revoke_temporary_credentials(fake, clean_env):
    clean_env.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.imds_endpoint)
    frozen = botocore.session.Session().get_credentials().get_frozen_credentials()
    client = _sm_with(fake, frozen)
    assert "SecretList" in client.list_secrets()
    assert fake.expire_temp_credentials() >= 1
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.list_secrets()
    assert client_error(e)[0] == "ExpiredTokenException"

    fresh = botocore.session.Session().get_credentials().get_frozen_credentials()
    assert fresh.access_key != frozen.access_key
    client = _sm_with(fake, fresh)
    assert "SecretList" in client.list_secrets()
    assert fake.revoke_temp_credentials() >= 2
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.list_secrets()
    assert client_error(e)[0] == "UnrecognizedClientException"
    assert all(t["revoked"] for t in fake.temp_credentials())


# --------------------------------------------------------------------------- server setup

def test_mutual_tls_requires_a_client_certificate(tmp_path, pki):
    with AwsFake.start(tmp_path, pki, client_ca=True, http=False) as f:
        assert f.http_endpoint is None
        name = unique("mtls")
        f.put_secret(name, string="v")          # control route itself uses the client cert
        no_cert = f.boto3_client(retries={"mode": "legacy", "max_attempts": 0})
        with pytest.raises((botocore.exceptions.SSLError,
                            botocore.exceptions.ConnectionClosedError)):
            no_cert.get_secret_value(SecretId=name)
        with_cert = f.boto3_client(client_cert=(str(pki / "client.crt"),
                                                str(pki / "client.key")))
        assert with_cert.get_secret_value(SecretId=name)["SecretString"] == "v"
        assert sum(f.stats()["client_certs"].values()) >= 2
    assert not f.running


def test_restart_keeps_port_secrets_and_temp_credentials(tmp_path, pki):
    f = AwsFake.start(tmp_path, pki, secrets={"seeded": "s1", "seeded-bin": b"\x00\x01"})
    try:
        sm = f.boto3_client()
        assert sm.get_secret_value(SecretId="seeded")["SecretString"] == "s1"
        assert sm.get_secret_value(SecretId="seeded-bin")["SecretBinary"] == b"\x00\x01"
        sm.put_secret_value(SecretId="seeded", SecretString="s2")
        out = _sts(f).assume_role_with_web_identity(
            RoleArn=f.role_arn, RoleSessionName="rr", WebIdentityToken=f.web_identity_token)
        c = out["Credentials"]
        port, pid = f.port, f.pid
        f.stop()
        assert not f.running
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            f.boto3_client(retries={"mode": "legacy", "max_attempts": 0}).list_secrets()
        f.restart()
        assert (f.port, f.running) == (port, True) and f.pid != pid
        assert sm.get_secret_value(SecretId="seeded")["SecretString"] == "s2"
        assert sm.get_secret_value(SecretId="seeded", VersionStage="AWSPREVIOUS")[
            "SecretString"] == "s1"
        temp = f.boto3_client(access_key=c["AccessKeyId"], secret_key=c["SecretAccessKey"],
                              session_token=c["SessionToken"])
        assert "SecretList" in temp.list_secrets()
        assert f.stats()["operations"] == {"GetSecretValue": 2, "ListSecrets": 1}
    finally:
        f.stop()


def test_control_routes_need_the_admin_token(fake):
    ctx = ssl.create_default_context(cafile=fake.ca_file)
    for token in (None, "wrong"):
        conn = http.client.HTTPSConnection("127.0.0.1", fake.port, context=ctx, timeout=5)
        conn.request("GET", "/_fake/stats",
                     headers={"X-Fake-Admin": token} if token else {})
        r = conn.getresponse()
        r.read()
        conn.close()
        assert r.status == 403
    # Not on the plain-http listener either.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(
            fake.http_endpoint + "/_fake/stats", headers={"X-Fake-Admin": fake.admin_token}),
            timeout=5)
    assert e.value.code == 404


def test_log_and_files_hold_no_secret_values(fake, sm, tmp_path):
    value = "log-canary-" + uuid.uuid4().hex
    name = unique("canary")
    sm.create_secret(Name=name, SecretString=value)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == value
    bad = fake.boto3_client(secret_key="wrong")
    with pytest.raises(botocore.exceptions.ClientError):
        bad.get_secret_value(SecretId=name)
    log = fake.log_path.read_text()
    assert "secretsmanager GetSecretValue 200" in log
    for s in (value, fake.secret_key, fake.admin_token, fake.ecs_token,
              fake.web_identity_token, name):
        assert s not in log
    # The fake's config and state (which do hold them) are private to the owner.
    for p in (fake.config_path, fake.state_path):
        assert os.stat(p).st_mode & 0o077 == 0
    cmdline = Path("/proc/%d/cmdline" % fake.pid).read_bytes().decode()
    assert fake.secret_key not in cmdline and fake.admin_token not in cmdline
