#!/usr/bin/env python3
"""Prints fresh UserSigs / PrivateMapKeys made by the official Python package (PyPI
`tls-sig-api-v2`), as a JSON array, for Hearth's Rust verifier to accept (libs → Hearth).

    .venv/bin/python tests/e2e/gen_usersig_vectors.py [--node] [--out FILE]

--node also runs gen_usersig_vectors.js (npm `tls-sig-api-v2`) and appends its vectors.

Each vector: sdkappid (int), key (the app's UserSig key), identifier, expire (seconds), sig,
kind ("usersig" | "privatemapkey" | "privatemapkey_str"), lib, expect ("valid" | "bad_signature");
PrivateMapKeys also room (int for "privatemapkey", string for "privatemapkey_str") and privilege
(int). "bad_signature" vectors are signed with another key than `key` and must be rejected.

The Python package 1.1 has no genPrivateMapKey: its PrivateMapKeys are `gen_sig_with_userbuf`
with the userbuf laid out as the official `_genUserbuf` does (see tlssig.userbuf).
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import TLSSigAPIv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tlssig  # noqa: E402

HERE = Path(__file__).resolve().parent
EXPIRE = 86400


def python_vectors(sdkappid: int, key: str) -> list[dict]:
    lib = f"python tls-sig-api-v2 {metadata.version('tls-sig-api-v2')}"
    api = TLSSigAPIv2.TLSSigAPIv2(sdkappid, key)
    out = []
    for ident in ["alice", "user_01-x", "管理员"]:
        out.append({"kind": "usersig", "identifier": ident, "expire": EXPIRE, "sig": api.gen_sig(ident, EXPIRE)})
    out.append({"kind": "usersig", "identifier": "default-expire", "expire": 180 * 86400,
                "sig": api.gen_sig("default-expire")})
    for room, privilege in [(1234, 255), (4294967294, 42)]:
        buf = tlssig.userbuf("alice", sdkappid, room, int(time.time()) + EXPIRE, privilege)
        out.append({"kind": "privatemapkey", "identifier": "alice", "expire": EXPIRE, "room": room,
                    "privilege": privilege, "sig": api.gen_sig_with_userbuf("alice", EXPIRE, buf)})
    for room, privilege in [("room-abc_1", 255), ("1234", 2)]:
        buf = tlssig.userbuf("bob", sdkappid, room, int(time.time()) + EXPIRE, privilege)
        out.append({"kind": "privatemapkey_str", "identifier": "bob", "expire": EXPIRE, "room": room,
                    "privilege": privilege, "sig": api.gen_sig_with_userbuf("bob", EXPIRE, buf)})
    for v in out:
        v.update(sdkappid=sdkappid, key=key, lib=lib, expect="valid")
    other = TLSSigAPIv2.TLSSigAPIv2(sdkappid, secrets.token_hex(32))
    out.append({"kind": "usersig", "identifier": "mallory", "expire": EXPIRE, "sig": other.gen_sig("mallory", EXPIRE),
                "sdkappid": sdkappid, "key": key, "lib": lib, "expect": "bad_signature"})
    return out


def node_vectors(sdkappid: int, key: str) -> list[dict]:
    r = subprocess.run(
        ["node", str(HERE / "gen_usersig_vectors.js"), "--sdkappid", str(sdkappid), "--key", key],
        check=True, capture_output=True, text=True, timeout=60,
    )
    return json.loads(r.stdout)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sdkappid", type=int, default=1400000001)
    p.add_argument("--key", default=None, help="the app's UserSig key (default: a fresh 64-hex key)")
    p.add_argument("--node", action="store_true", help="append the npm package's vectors")
    p.add_argument("--out", type=Path, help="write here instead of stdout")
    a = p.parse_args()
    key = a.key or secrets.token_hex(32)
    vectors = python_vectors(a.sdkappid, key)
    if a.node:
        vectors += node_vectors(a.sdkappid, key)
    text = json.dumps(vectors, ensure_ascii=False, indent=1) + "\n"
    if a.out:
        a.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
