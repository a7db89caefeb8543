"""A small TC3-HMAC-SHA256 signer (spec §1.4), written from the spec and independent of the SDK.

Used to hand-build requests the official SDK will not send (stale timestamps, wrong versions,
broken bodies, oversized bodies). `test_signers.py` checks it against the spec's worked example.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import time
from typing import Iterable

ALGORITHM = "TC3-HMAC-SHA256"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def utc_date(timestamp: int) -> str:
    """The credential-scope date: the UTC day of the timestamp, `YYYY-MM-DD`."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d")


def canonical_request(
    method: str,
    query: str,
    headers: Iterable[tuple[str, str]],
    payload: bytes,
) -> tuple[str, str]:
    """(CanonicalRequest, SignedHeaders). `headers` are (name, value) pairs; they are lowercased,
    trimmed and sorted here. For GET the payload hash is that of the empty string."""
    items = sorted((k.lower(), v.strip().lower()) for k, v in headers)
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in items)
    signed_headers = ";".join(k for k, _ in items)
    payload_hash = sha256_hex(b"" if method == "GET" else payload)
    return (
        f"{method}\n/\n{query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        signed_headers,
    )


def string_to_sign(timestamp: int, service: str, canonical: str) -> str:
    scope = f"{utc_date(timestamp)}/{service}/tc3_request"
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{sha256_hex(canonical.encode('utf-8'))}"


def signing_key(secret_key: str, date: str, service: str) -> bytes:
    k_date = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    k_service = _hmac(k_date, service)
    return _hmac(k_service, "tc3_request")


def signature(secret_key: str, timestamp: int, service: str, sts: str) -> str:
    key = signing_key(secret_key, utc_date(timestamp), service)
    return hmac.new(key, sts.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(
    secret_id: str,
    secret_key: str,
    *,
    service: str,
    timestamp: int,
    method: str,
    host: str,
    content_type: str,
    payload: bytes = b"",
    query: str = "",
) -> str:
    """The `Authorization` header value for a request signed over content-type and host."""
    canonical, signed = canonical_request(
        method, query, [("Content-Type", content_type), ("Host", host)], payload
    )
    sts = string_to_sign(timestamp, service, canonical)
    sig = signature(secret_key, timestamp, service, sts)
    scope = f"{utc_date(timestamp)}/{service}/tc3_request"
    return f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={signed}, Signature={sig}"


def signed_headers(
    secret_id: str,
    secret_key: str,
    *,
    action: str,
    host: str,
    payload: bytes = b"",
    method: str = "POST",
    query: str = "",
    service: str = "trtc",
    version: str = "2019-07-22",
    region: str | None = "ap-guangzhou",
    timestamp: int | None = None,
    content_type: str | None = None,
) -> dict[str, str]:
    """All headers of a TC3 request: common parameters as X-TC-* headers plus Authorization."""
    ts = int(time.time()) if timestamp is None else timestamp
    if content_type is None:
        content_type = "application/x-www-form-urlencoded" if method == "GET" else "application/json"
    headers = {
        "Host": host,
        "Content-Type": content_type,
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(ts),
        "Authorization": authorization(
            secret_id,
            secret_key,
            service=service,
            timestamp=ts,
            method=method,
            host=host,
            content_type=content_type,
            payload=payload,
            query=query,
        ),
    }
    if region is not None:
        headers["X-TC-Region"] = region
    return headers
