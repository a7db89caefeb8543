"""The hand-rolled signers used by the suite reproduce the spec's worked examples (§1.4.3, §1.5.2)."""

import tc3
import v1sig

SECRET_ID = "AKID" + "*" * 32
SECRET_KEY = "*" * 32


def test_tc3_matches_the_spec_worked_example():
    payload = b'{"Limit": 1, "Filters": [{"Values": ["unnamed"], "Name": "instance-name"}]}'
    assert tc3.sha256_hex(payload) == "99d58dfbc6745f6747f36bfca17dee5e6881dc0428a0a36f96199342bc5b4907"
    canonical, signed = tc3.canonical_request(
        "POST",
        "",
        [("Host", "cvm.tencentcloudapi.com"), ("Content-Type", "application/json; charset=utf-8")],
        payload,
    )
    assert canonical == (
        "POST\n/\n\n"
        "content-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
        "content-type;host\n"
        "99d58dfbc6745f6747f36bfca17dee5e6881dc0428a0a36f96199342bc5b4907"
    )
    assert signed == "content-type;host"
    assert tc3.sha256_hex(canonical.encode()) == "2815843035062fffda5fd6f2a44ea8a34818b0dc46f024b8b3786976a3adda7a"
    assert tc3.utc_date(1551113065) == "2019-02-25"
    assert tc3.signing_key(SECRET_KEY, "2019-02-25", "cvm").hex() == (
        "b596b923aad85185e2d1f6659d2a062e0a86731226e021e61bfe06f7ed05f5af"
    )
    sts = tc3.string_to_sign(1551113065, "cvm", canonical)
    assert sts == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "2815843035062fffda5fd6f2a44ea8a34818b0dc46f024b8b3786976a3adda7a"
    )
    assert tc3.signature(SECRET_KEY, 1551113065, "cvm", sts) == (
        "a7b8551448762bd123d6f79e81815e31a92013640a6cef36a08ad4b292a4d2f2"
    )
    assert tc3.authorization(
        SECRET_ID,
        SECRET_KEY,
        service="cvm",
        timestamp=1551113065,
        method="POST",
        host="cvm.tencentcloudapi.com",
        content_type="application/json; charset=utf-8",
        payload=payload,
    ) == (
        "TC3-HMAC-SHA256 Credential=AKID********************************/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=a7b8551448762bd123d6f79e81815e31a92013640a6cef36a08ad4b292a4d2f2"
    )


V1_PARAMS = {
    "Action": "DescribeInstances",
    "SecretId": SECRET_ID,
    "Timestamp": "1465185768",
    "Nonce": "11886",
    "Region": "ap-guangzhou",
    "InstanceIds.0": "ins-09dx96dg",
    "Offset": "0",
    "Limit": "20",
    "Version": "2017-03-12",
}


def test_v1_matches_the_spec_worked_example():
    sts = v1sig.string_to_sign("GET", "cvm.tencentcloudapi.com", V1_PARAMS)
    assert sts == (
        "GETcvm.tencentcloudapi.com/?Action=DescribeInstances&InstanceIds.0=ins-09dx96dg&Limit=20"
        "&Nonce=11886&Offset=0&Region=ap-guangzhou&SecretId=AKID********************************"
        "&Timestamp=1465185768&Version=2017-03-12"
    )
    assert v1sig.sign(SECRET_KEY, sts) == "7RAM2xfNMO9EiVTNmPg06MRnCvQ="
    assert v1sig.encode({"Signature": "7RAM2xfNMO9EiVTNmPg06MRnCvQ="}) == "Signature=7RAM2xfNMO9EiVTNmPg06MRnCvQ%3D"
    p256 = dict(V1_PARAMS, SignatureMethod="HmacSHA256")
    assert (
        v1sig.sign(SECRET_KEY, v1sig.string_to_sign("GET", "cvm.tencentcloudapi.com", p256), "HmacSHA256")
        == "JeJpKl2qfbiWZ3sk88EAhwAa4TIAZ3ZqEQoYJtT2OdU="
    )
    assert (
        v1sig.sign(SECRET_KEY, v1sig.string_to_sign("POST", "cvm.tencentcloudapi.com", V1_PARAMS))
        == "UJRjj2E0hyIuY/tcxvADU5NAFVk="
    )


def test_names_sort_by_bytes():
    assert v1sig.string_to_sign("GET", "h", {"InstanceIds.2": "b", "InstanceIds.12": "a"}) == (
        "GETh/?InstanceIds.12=a&InstanceIds.2=b"
    )
