"""JWT checks for the fake Vault's jwt and kubernetes auth methods, and test-side signing.

Validation follows hashicorp/cap jwt.Validator (jwt/jwt.go validateAll), which Vault's jwt
and kubernetes auth plugins call: the signature first (a static key set: keyset.go), then
the alg header, iss, sub, aud, then the time claims with cap's leeways. The error strings
are cap's, because Vault puts them in its answers. Needs python3-jwt (PyJWT) and
cryptography; imported only when a JWT login is configured.
"""

import json
import time

import jwt as pyjwt
from jwt.algorithms import get_default_algorithms

# cap jwt: DefaultLeewaySeconds (for a missing exp or nbf) and go-jose jwt.DefaultLeeway
# (clock skew applied to every time claim).
DEFAULT_LEEWAY = 150
CLOCK_SKEW = 60
# What Vault's jwt method allows when jwt_supported_algs is empty (OpenBao
# consts.AllowedJWTSignatureAlgorithms); cap expects RS256 alone when given none.
DEFAULT_ALGS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384",
                "PS512", "EdDSA")


class JWTInvalid(Exception):
    """The text cap's Validator would return."""


def _load_keys(pems):
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    return [load_pem_public_key(p.encode() if isinstance(p, str) else p) for p in pems]


def verify_signature(token, pems, algs):
    """Claims of a token signed by one of the PEM public keys, else JWTInvalid."""
    try:
        header = pyjwt.get_unverified_header(token)
    except pyjwt.PyJWTError as e:
        raise JWTInvalid("error verifying token signature: %s" % e)
    alg = header.get("alg")
    algo = get_default_algorithms().get(alg)
    claims = None
    if algo is not None and alg != "none":
        signing_input, _, sig = token.rpartition(".")
        for key in _load_keys(pems):
            try:
                if algo.verify(signing_input.encode(), key,
                               pyjwt.utils.base64url_decode(sig.encode())):
                    payload = signing_input.split(".", 1)[1]
                    claims = json.loads(pyjwt.utils.base64url_decode(payload.encode()))
                    break
            except Exception:   # a key of another type, a malformed signature
                continue
    if claims is None:
        raise JWTInvalid("error verifying token signature: no known key successfully "
                         "validated the token signature")
    if alg not in (algs or ("RS256",)):
        raise JWTInvalid("invalid algorithm (alg) header parameter: token signed with "
                         "unexpected algorithm")
    return claims


def unverified_claims(token):
    try:
        return pyjwt.decode(token, options={"verify_signature": False})
    except pyjwt.PyJWTError as e:
        raise JWTInvalid("error verifying token signature: %s" % e)


def audiences(claims):
    aud = claims.get("aud")
    if aud is None:
        return []
    return [aud] if isinstance(aud, str) else list(aud)


def validate(claims, issuer="", subject="", auds=(), allow_missing_times=False, now=None):
    """cap jwt validateAll after the signature: raises JWTInvalid with cap's text."""
    if issuer and claims.get("iss") != issuer:
        raise JWTInvalid("invalid issuer (iss) claim")
    if subject and claims.get("sub") != subject:
        raise JWTInvalid("invalid subject (sub) claim")
    if auds and not set(auds) & set(audiences(claims)):
        raise JWTInvalid("invalid audience (aud) claim: audience claim does not match any "
                         "expected audience")
    iat, exp, nbf = (int(claims.get(k) or 0) for k in ("iat", "exp", "nbf"))
    if not (iat or exp or nbf):
        if allow_missing_times:
            return claims
        raise JWTInvalid("no issued at (iat), not before (nbf), or expiration time (exp) "
                         "claims in token")
    if not exp:
        exp = max(iat, nbf) + DEFAULT_LEEWAY
    if not nbf:
        nbf = iat if iat else exp - DEFAULT_LEEWAY
    now = time.time() if now is None else now
    if now + CLOCK_SKEW < nbf:
        raise JWTInvalid("invalid not before (nbf) claim: token not yet valid")
    if now - CLOCK_SKEW > exp:
        raise JWTInvalid("invalid expiration time (exp) claim: token is expired")
    if iat and now + CLOCK_SKEW < iat:
        raise JWTInvalid("invalid issued at (iat) claim: token issued in the future")
    return claims


# -- test side --

def make_key(kind="RS256"):
    """(private key PEM, public key PEM) for RS256 or ES256."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    if kind.startswith("ES"):
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return priv, pub


def sign(private_pem, claims, alg="RS256"):
    return pyjwt.encode(claims, private_pem, algorithm=alg)


def service_account_token(private_pem, name, namespace, aud, ttl=3600, alg="RS256",
                          iss="https://kubernetes.default.svc.cluster.local", uid=None,
                          now=None):
    """A projected service account token as the kubelet gets it from the API server."""
    now = int(time.time() if now is None else now)
    uid = uid or "0b9c7d4e-0000-4000-8000-%012d" % (abs(hash(name + namespace)) % 10**12)
    return sign(private_pem, {
        "iss": iss, "aud": [aud] if isinstance(aud, str) else list(aud),
        "sub": "system:serviceaccount:%s:%s" % (namespace, name),
        "iat": now, "nbf": now, "exp": now + ttl,
        "kubernetes.io": {"namespace": namespace,
                          "serviceaccount": {"name": name, "uid": uid}}}, alg)
