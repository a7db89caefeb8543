"""A small signer for signature v1, HmacSHA1 / HmacSHA256 (spec §1.5), independent of the SDK.

Used for hand-built form requests the SDK will not send (bodies over 1 MB).
`test_signers.py` checks it against the spec's worked example.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import time
from urllib.parse import quote


def string_to_sign(method: str, host: str, params: dict[str, str]) -> str:
    """`METHOD + host + "/?" + name=value&...`, names in byte order, raw values, no Signature."""
    pairs = sorted(
        ((k, str(v)) for k, v in params.items() if k != "Signature"),
        key=lambda kv: kv[0].encode("utf-8"),
    )
    return f"{method}{host}/?" + "&".join(f"{k}={v}" for k, v in pairs)


def sign(secret_key: str, sts: str, method: str = "HmacSHA1") -> str:
    digest = hashlib.sha256 if method == "HmacSHA256" else hashlib.sha1
    mac = hmac.new(secret_key.encode("utf-8"), sts.encode("utf-8"), digest).digest()
    return base64.b64encode(mac).decode("ascii")


def encode(params: dict[str, str]) -> str:
    """Form/query encoding: values percent-encoded (RFC 3986, uppercase hex), keys as they are."""
    return "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())


def signed_params(
    secret_id: str,
    secret_key: str,
    *,
    action: str,
    host: str,
    business: dict[str, str],
    http_method: str = "POST",
    signature_method: str = "HmacSHA1",
    version: str = "2019-07-22",
    region: str = "ap-guangzhou",
    timestamp: int | None = None,
) -> dict[str, str]:
    """All parameters of a v1 request (common + business + Signature)."""
    params = dict(business)
    params.update(
        {
            "Action": action,
            "Version": version,
            "Region": region,
            "Timestamp": str(int(time.time()) if timestamp is None else timestamp),
            "Nonce": str(random.randint(1, 2**31)),
            "SecretId": secret_id,
            "SignatureMethod": signature_method,
        }
    )
    params["Signature"] = sign(
        secret_key, string_to_sign(http_method, host, params), signature_method
    )
    return params
