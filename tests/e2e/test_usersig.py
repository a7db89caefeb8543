"""UserSig interop, Hearth → official libraries: sigs printed by `hearth usersig` verify with the
official Python package's own HMAC code and the npm package's own HMAC code, and with an
independent reimplementation of verify (tlssig.py). Neither package ships a verify function.

The other direction (libs → Hearth) has no HTTP surface yet: gen_usersig_vectors.py/.js print
library-made sigs for a Rust test that reads HEARTH_USERSIG_VECTORS; the last tests here check
those generators' output.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

import pytest
import TLSSigAPIv2

import tlssig
from conftest import APP1, APP2, E2E_DIR, HEARTH_BIN, Hearth, hearth_env

IDENTIFIERS = ["alice", "user_01-x@example", "管理员", "a" * 32]

# Verifies sigs with the npm package's own signing code (`Api.prototype._hmacsha256`).
NODE_VERIFY = r"""
const zlib = require('zlib');
const { Api } = require('tls-sig-api-v2');
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = cases.map(({ sig, sdkappid, key }) => {
  try {
    const b64 = sig.replace(/\*/g, '+').replace(/-/g, '/').replace(/_/g, '=');
    const doc = JSON.parse(zlib.inflateSync(Buffer.from(b64, 'base64')).toString('utf8'));
    const api = new Api(sdkappid, key);
    const mac = api._hmacsha256(doc['TLS.identifier'], doc['TLS.time'], doc['TLS.expire'],
                                doc['TLS.userbuf'] === undefined ? null : doc['TLS.userbuf']);
    const ok = mac === doc['TLS.sig'] && doc['TLS.sdkappid'] === Number(sdkappid) && doc['TLS.ver'] === '2.0';
    return { ok, doc };
  } catch (e) {
    return { ok: false, error: String(e) };
  }
});
process.stdout.write(JSON.stringify(out));
"""


def hearth_usersig(h: Hearth, user: str, *extra: str, sdkappid: int = APP1) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(HEARTH_BIN), "usersig", "--sdkappid", str(sdkappid), "--user", user, *extra, "--config", str(h.config)],
        capture_output=True, text=True, timeout=30, env=hearth_env(),
    )


def make_sig(h: Hearth, user: str, *extra: str, sdkappid: int = APP1) -> str:
    r = hearth_usersig(h, user, *extra, sdkappid=sdkappid)
    assert r.returncode == 0, r.stderr
    sig = r.stdout.strip()
    assert sig and "\n" not in sig, r.stdout
    return sig


def package_mac(sdkappid: int, key: str, doc: dict) -> str:
    """TLS.sig as the official Python package computes it (its private __hmacsha256)."""
    api = TLSSigAPIv2.TLSSigAPIv2(sdkappid, key)
    return api._TLSSigAPIv2__hmacsha256(
        doc["TLS.identifier"], doc["TLS.time"], doc["TLS.expire"], doc.get("TLS.userbuf")
    ).decode()


def node_verify(node: str, cases: list[dict]) -> list[dict]:
    r = subprocess.run(
        [node, "-e", NODE_VERIFY], input=json.dumps(cases), capture_output=True, text=True,
        cwd=E2E_DIR, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("user", IDENTIFIERS)
def test_hearth_usersig_verifies_with_the_python_package(hearth, user):
    before = int(time.time())
    sig = make_sig(hearth, user, "--expire", "3600")
    after = int(time.time())
    key = hearth.app_keys[APP1]
    doc = tlssig.decode(sig)
    assert set(doc) == {"TLS.ver", "TLS.identifier", "TLS.sdkappid", "TLS.expire", "TLS.time", "TLS.sig"}, doc
    assert doc["TLS.ver"] == "2.0"
    assert doc["TLS.identifier"] == user
    assert doc["TLS.sdkappid"] == APP1 and isinstance(doc["TLS.sdkappid"], int)
    assert doc["TLS.expire"] == 3600
    assert before <= doc["TLS.time"] <= after
    assert package_mac(APP1, key, doc) == doc["TLS.sig"]
    assert tlssig.verify(sig, APP1, key) == doc
    # The url-base64 variant: no characters outside the TLS alphabet.
    assert set(sig) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-_")


def test_hearth_usersig_does_not_verify_with_another_key_or_app(hearth):
    sig = make_sig(hearth, "alice")
    doc = tlssig.decode(sig)
    assert package_mac(APP1, hearth.app_keys[APP2], doc) != doc["TLS.sig"]
    with pytest.raises(tlssig.SigError, match="bad signature"):
        tlssig.verify(sig, APP1, hearth.app_keys[APP2])
    with pytest.raises(tlssig.SigError, match="another SdkAppId"):
        tlssig.verify(sig, APP2, hearth.app_keys[APP1])
    with pytest.raises(tlssig.SigError, match="expired"):
        tlssig.verify(sig, APP1, hearth.app_keys[APP1], now=doc["TLS.time"] + doc["TLS.expire"] + 1)


def test_hearth_usersig_default_expire_is_180_days(hearth):
    doc = tlssig.verify(make_sig(hearth, "bob"), APP1, hearth.app_keys[APP1])
    assert doc["TLS.expire"] == 180 * 86400


def test_hearth_usersig_of_the_second_app(hearth):
    sig = make_sig(hearth, "carol", sdkappid=APP2)
    doc = tlssig.verify(sig, APP2, hearth.app_keys[APP2])
    assert package_mac(APP2, hearth.app_keys[APP2], doc) == doc["TLS.sig"]


def test_hearth_usersig_unknown_app_fails(hearth):
    r = hearth_usersig(hearth, "alice", sdkappid=1400009999)
    assert r.returncode != 0
    assert r.stdout.strip() == ""
    assert "1400009999" in r.stderr, r.stderr


def test_hearth_usersigs_verify_with_the_npm_package(hearth, node_bin):
    sigs = {u: make_sig(hearth, u, "--expire", "86400") for u in IDENTIFIERS}
    sigs2 = make_sig(hearth, "dave", sdkappid=APP2)
    k1, k2 = hearth.app_keys[APP1], hearth.app_keys[APP2]
    cases = [{"sig": s, "sdkappid": APP1, "key": k1} for s in sigs.values()]
    cases.append({"sig": sigs2, "sdkappid": APP2, "key": k2})
    # Negative controls: the node check must be able to fail.
    cases.append({"sig": sigs["alice"], "sdkappid": APP1, "key": k2})
    cases.append({"sig": sigs2, "sdkappid": APP1, "key": k2})
    results = node_verify(node_bin, cases)
    assert [r["ok"] for r in results] == [True] * (len(IDENTIFIERS) + 1) + [False, False], results
    for user, r in zip(IDENTIFIERS, results):
        assert r["doc"]["TLS.identifier"] == user
        assert r["doc"]["TLS.expire"] == 86400


# --------------------------------------------------------------------------------------------
# libs → Hearth: the vector generators a Rust test consumes (HEARTH_USERSIG_VECTORS=path).


def check_vectors(vectors: list[dict], lib_prefix: str) -> None:
    kinds = {v["kind"] for v in vectors}
    assert kinds == {"usersig", "privatemapkey", "privatemapkey_str"}, kinds
    for v in vectors:
        assert v["lib"].startswith(lib_prefix), v
        assert isinstance(v["sdkappid"], int) and isinstance(v["expire"], int), v
        if v["expect"] == "bad_signature":
            with pytest.raises(tlssig.SigError, match="bad signature"):
                tlssig.verify(v["sig"], v["sdkappid"], v["key"])
            continue
        assert v["expect"] == "valid"
        doc = tlssig.verify(v["sig"], v["sdkappid"], v["key"])
        assert doc["TLS.identifier"] == v["identifier"] and doc["TLS.expire"] == v["expire"]
        if v["kind"] == "usersig":
            assert "TLS.userbuf" not in doc
            continue
        buf = tlssig.parse_userbuf(base64.b64decode(doc["TLS.userbuf"]))
        assert buf["identifier"] == v["identifier"] and buf["sdkappid"] == v["sdkappid"]
        assert buf["room"] == v["room"] and buf["privilege"] == v["privilege"]
        assert buf["version"] == (1 if v["kind"] == "privatemapkey_str" else 0)
        assert abs(buf["expire_at"] - (doc["TLS.time"] + v["expire"])) <= 1
    assert sum(v["expect"] == "bad_signature" for v in vectors) >= 1


def test_python_vector_generator(tmp_path):
    out = tmp_path / "vectors.json"
    subprocess.run(
        [sys.executable, str(E2E_DIR / "gen_usersig_vectors.py"), "--sdkappid", str(APP1), "--out", str(out)],
        check=True, timeout=60,
    )
    check_vectors(json.loads(out.read_text(encoding="utf-8")), "python tls-sig-api-v2")


def test_node_vector_generator(node_bin):
    r = subprocess.run(
        [node_bin, str(E2E_DIR / "gen_usersig_vectors.js"), "--sdkappid", str(APP2), "--key", "k" * 64],
        capture_output=True, text=True, cwd=E2E_DIR, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    vectors = json.loads(r.stdout)
    assert {v["sdkappid"] for v in vectors} == {APP2} and {v["key"] for v in vectors} == {"k" * 64}
    check_vectors(vectors, "npm tls-sig-api-v2")


def test_combined_vector_file(tmp_path, node_bin):
    out = tmp_path / "all.json"
    subprocess.run(
        [sys.executable, str(E2E_DIR / "gen_usersig_vectors.py"), "--node", "--out", str(out)], check=True, timeout=60
    )
    vectors = json.loads(out.read_text(encoding="utf-8"))
    assert {v["lib"].split()[0] for v in vectors} == {"python", "npm"}
    assert len({v["key"] for v in vectors}) == 1
