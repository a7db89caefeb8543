"""UserSig (TLSSigAPIv2) decoding and verification, and the PrivateMapKey userbuf layout,
reimplemented from the official packages' source (PyPI `tls-sig-api-v2` 1.1 `TLSSigAPIv2.py`,
npm `tls-sig-api-v2` 1.0.2 `TLSSigAPIv2.js`). Neither package has a verify function.

Sig = url-base64( zlib( JSON{TLS.ver, TLS.identifier, TLS.sdkappid, TLS.expire, TLS.time,
[TLS.userbuf], TLS.sig} ) ), url-base64 being standard base64 with + → *, / → -, = → _.
TLS.sig = base64( HMAC-SHA256( key as UTF-8, "TLS.identifier:{id}\\nTLS.sdkappid:{app}\\n
TLS.time:{time}\\nTLS.expire:{expire}\\n" [+ "TLS.userbuf:{b64 userbuf}\\n"] ) ).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
import time
import zlib


class SigError(Exception):
    pass


def url_b64decode(text: str) -> bytes:
    std = text.replace("*", "+").replace("-", "/").replace("_", "=")
    return base64.b64decode(std + "=" * (-len(std) % 4), validate=True)


def decode(sig: str) -> dict:
    """The JSON document inside a sig (not verified)."""
    try:
        doc = json.loads(zlib.decompress(url_b64decode(sig)))
    except Exception as e:  # noqa: BLE001 - any decoding failure means a malformed sig
        raise SigError(f"malformed sig: {e}") from e
    if not isinstance(doc, dict):
        raise SigError("sig document is not a JSON object")
    return doc


def content_to_sign(identifier: str, sdkappid: int, t: int, expire: int, userbuf_b64: str | None) -> str:
    s = f"TLS.identifier:{identifier}\nTLS.sdkappid:{sdkappid}\nTLS.time:{t}\nTLS.expire:{expire}\n"
    if userbuf_b64 is not None:
        s += f"TLS.userbuf:{userbuf_b64}\n"
    return s


def expected_mac(key: str, doc: dict) -> str:
    content = content_to_sign(
        doc["TLS.identifier"], int(doc["TLS.sdkappid"]), int(doc["TLS.time"]), int(doc["TLS.expire"]),
        doc.get("TLS.userbuf"),
    )
    return base64.b64encode(hmac.new(key.encode(), content.encode(), hashlib.sha256).digest()).decode()


def verify(sig: str, sdkappid: int, key: str, now: int | None = None) -> dict:
    """Checks version, application, HMAC and expiry like a TRTC server; returns the document."""
    doc = decode(sig)
    if doc.get("TLS.ver") != "2.0":
        raise SigError(f"unsupported TLS.ver {doc.get('TLS.ver')!r}")
    if int(doc["TLS.sdkappid"]) != sdkappid:
        raise SigError("sig is for another SdkAppId")
    if not hmac.compare_digest(expected_mac(key, doc), doc["TLS.sig"]):
        raise SigError("bad signature")
    now = int(time.time()) if now is None else now
    if int(doc["TLS.time"]) + int(doc["TLS.expire"]) < now:
        raise SigError("expired")
    return doc


def userbuf(identifier: str, sdkappid: int, room: int | str, expire_at: int, privilege: int) -> bytes:
    """The PrivateMapKey userbuf, byte for byte as the official `_genUserbuf` writes it:
    version u8 (0 numeric room, 1 string room), identifier u16-length + bytes, sdkappid u32,
    room number u32 (0 for string rooms), absolute expire time u32, privilege map u32,
    account type u32 (0), string rooms only: room u16-length + bytes. Big-endian."""
    acct = identifier.encode()
    is_str = isinstance(room, str)
    buf = struct.pack(">BH", 1 if is_str else 0, len(acct)) + acct
    buf += struct.pack(">IIIII", sdkappid, 0 if is_str else room, expire_at, privilege, 0)
    if is_str:
        r = room.encode()
        buf += struct.pack(">H", len(r)) + r
    return buf


def parse_userbuf(buf: bytes) -> dict:
    ver = buf[0]
    (n,) = struct.unpack_from(">H", buf, 1)
    ident = buf[3 : 3 + n].decode()
    off = 3 + n
    app, room_num, expire_at, privilege, acct_type = struct.unpack_from(">IIIII", buf, off)
    off += 20
    out = {"identifier": ident, "sdkappid": app, "expire_at": expire_at, "privilege": privilege,
           "account_type": acct_type, "version": ver}
    if ver == 1:
        (m,) = struct.unpack_from(">H", buf, off)
        out["room"] = buf[off + 2 : off + 2 + m].decode()
        off += 2 + m
    else:
        out["room"] = room_num
    if off != len(buf):
        raise SigError(f"{len(buf) - off} trailing bytes in userbuf")
    return out
