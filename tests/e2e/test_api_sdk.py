"""The operator API through the official TencentCloud Python SDK (and, where the SDK will not send
such a request, hand-built requests signed by `tc3.py` / `v1sig.py`), against a real server."""

from __future__ import annotations

import json
import threading
import time
import types

import pytest
import requests
from tencentcloud.common import abstract_client
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.trtc.v20190722 import models

import tc3
import v1sig
from conftest import APP1, APP2, Hearth, sdk_client

# (signMethod, reqMethod): every way the SDK can sign and send a call.
SIGNINGS = [
    pytest.param(None, "POST", id="tc3-post-json"),
    pytest.param(None, "GET", id="tc3-get"),
    pytest.param("HmacSHA1", "GET", id="v1-sha1-get"),
    pytest.param("HmacSHA1", "POST", id="v1-sha1-post"),
    pytest.param("HmacSHA256", "GET", id="v1-sha256-get"),
    pytest.param("HmacSHA256", "POST", id="v1-sha256-post"),
]


def now() -> int:
    return int(time.time())


def window(span: int = 3600, ago: int = 0) -> dict:
    end = now() - ago
    return {"StartTime": end - span, "EndTime": end}


def room_info(app: int = APP1, **extra) -> dict:
    return {"SdkAppId": app, **window(), **extra}


def assert_serving(h: Hearth) -> None:
    """A valid call still succeeds (the server survived whatever came before)."""
    assert h.alive(), h.stderr()
    out = sdk_client(h).call_json("DescribeRoomInfo", room_info())
    assert out["Response"]["Total"] == 0, out


def expect_error(h: Hearth, code: str, call) -> TencentCloudSDKException:
    """`call()` raises the SDK exception with exactly `code` and a RequestId; then the server
    still serves a valid call."""
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    e = info.value
    assert e.code == code, f"expected {code}, got {e.code}: {e.message}"
    assert e.requestId, f"no RequestId with {code}"
    assert_serving(h)
    return e


def check_envelope(r: requests.Response) -> dict:
    """Spec §1.6 plus the SDK's needs: HTTP 200, Content-Type exactly application/json, a JSON
    `Response` object with a non-empty RequestId."""
    assert r.status_code == 200, (r.status_code, r.text[:500])
    assert r.headers.get("Content-Type") == "application/json", r.headers
    body = r.json()
    assert set(body) == {"Response"}, body
    rid = body["Response"].get("RequestId")
    assert isinstance(rid, str) and rid, body
    return body["Response"]


def raw_tc3(
    h: Hearth,
    action: str,
    payload: bytes | dict | None = None,
    *,
    method: str = "POST",
    query: str = "",
    cred=None,
    secret_key: str | None = None,
    headers: dict | None = None,
    session: requests.Session | None = None,
    **sign,
) -> dict:
    """A hand-built TC3 request; returns the checked `Response` object."""
    cred = cred or h.cred1
    if isinstance(payload, dict):
        payload = json.dumps(payload).encode()
    payload = payload or b""
    hdrs = tc3.signed_headers(
        cred.secret_id,
        secret_key or cred.secret_key,
        action=action,
        host=h.host,
        payload=payload,
        method=method,
        query=query,
        **sign,
    )
    hdrs.update(headers or {})
    url = h.url + (f"?{query}" if query else "")
    r = (session or requests).request(method, url, data=payload if method != "GET" else None, headers=hdrs, timeout=30)
    return check_envelope(r)


def error_code(resp: dict) -> str | None:
    return resp.get("Error", {}).get("Code")


# --------------------------------------------------------------------------------------------
# Valid calls


def test_describe_room_info_is_empty(hearth):
    req = models.DescribeRoomInfoRequest()
    req.SdkAppId = APP1
    w = window()
    req.StartTime, req.EndTime = w["StartTime"], w["EndTime"]
    req.PageNumber, req.PageSize = 0, 10
    resp = sdk_client(hearth).DescribeRoomInfo(req)
    assert resp.Total == 0
    assert resp.RoomList == []
    assert resp.RequestId


def test_describe_room_info_with_the_second_key_on_its_own_app(hearth):
    out = sdk_client(hearth, hearth.cred2).call_json("DescribeRoomInfo", room_info(APP2, RoomId="223"))
    assert out["Response"]["Total"] == 0
    assert out["Response"]["RoomList"] == []


def test_describe_user_info_of_an_unknown_call_is_empty(hearth):
    w = window()
    req = models.DescribeUserInfoRequest()
    req.SdkAppId = APP1
    req.CommId = f"{APP1}_123_{w['StartTime']}"
    req.StartTime, req.EndTime = w["StartTime"], w["EndTime"]
    req.UserIds = ["alice", "bob"]
    resp = sdk_client(hearth).DescribeUserInfo(req)
    assert resp.Total == 0
    assert resp.UserList in ([], None)
    raw = sdk_client(hearth).call_json(
        "DescribeUserInfo", {"SdkAppId": APP1, "CommId": req.CommId, **w}
    )["Response"]
    assert raw["Total"] == 0 and raw["UserList"] == []


def test_describe_scale_info_is_empty(hearth):
    req = models.DescribeScaleInfoRequest()
    req.SdkAppId = APP1
    w = window(span=3 * 86400)
    req.StartTime, req.EndTime = w["StartTime"], w["EndTime"]
    resp = sdk_client(hearth).DescribeScaleInfo(req)
    assert resp.Total == 0
    assert resp.ScaleList in ([], None)


def test_dismiss_room_of_an_empty_room(hearth):
    req = models.DismissRoomRequest()
    req.SdkAppId, req.RoomId = APP1, 1234
    expect_error(hearth, "FailedOperation.RoomNotExist", lambda: sdk_client(hearth).DismissRoom(req))


def test_dismiss_room_by_str_room_id_of_an_empty_room(hearth):
    req = models.DismissRoomByStrRoomIdRequest()
    req.SdkAppId, req.RoomId = APP1, "abcd"
    expect_error(
        hearth, "FailedOperation.RoomNotExist", lambda: sdk_client(hearth).DismissRoomByStrRoomId(req)
    )


@pytest.mark.parametrize("sign_method,req_method", SIGNINGS)
def test_every_signing_method_is_accepted(hearth, sign_method, req_method):
    c = sdk_client(hearth, sign_method=sign_method, req_method=req_method)
    out = c.call_json("DescribeRoomInfo", room_info(PageNumber=0, PageSize=100))["Response"]
    assert out["Total"] == 0 and out["RoomList"] == []
    # Arrays travel as UserIds.0/UserIds.1 in GET and form requests, as a JSON array otherwise.
    w = window()
    out = c.call_json(
        "DescribeUserInfo",
        {"SdkAppId": APP1, "CommId": f"{APP1}_7_{w['StartTime']}", "UserIds": ["a", "b"], **w},
    )["Response"]
    assert out["Total"] == 0 and out["UserList"] == []
    # A business error comes back the same way whatever the signing.
    with pytest.raises(TencentCloudSDKException) as e:
        c.call_json("DismissRoomByStrRoomId", {"SdkAppId": APP1, "RoomId": "no-such-room"})
    assert e.value.code == "FailedOperation.RoomNotExist"


def test_hand_built_tc3_requests_are_accepted(hearth):
    """The independent signer agrees with the server (POST JSON and GET with a query)."""
    out = raw_tc3(hearth, "DescribeRoomInfo", room_info())
    assert out["Total"] == 0 and out["RoomList"] == []
    w = window()
    q = f"SdkAppId={APP1}&StartTime={w['StartTime']}&EndTime={w['EndTime']}&PageNumber=0&PageSize=5"
    out = raw_tc3(hearth, "DescribeRoomInfo", method="GET", query=q)
    assert out["Total"] == 0 and out["RoomList"] == []


# --------------------------------------------------------------------------------------------
# Authentication errors


@pytest.mark.parametrize("sign_method,req_method", SIGNINGS)
def test_wrong_secret_key(hearth, sign_method, req_method):
    c = sdk_client(hearth, secret_key="not-the-right-key", sign_method=sign_method, req_method=req_method)
    expect_error(hearth, "AuthFailure.SignatureFailure", lambda: c.call_json("DescribeRoomInfo", room_info()))


@pytest.mark.parametrize("sign_method", [None, "HmacSHA256"])
def test_unknown_secret_id(hearth, sign_method):
    c = sdk_client(hearth, secret_id="AKIDnosuchkey0000000000000000000000", sign_method=sign_method)
    expect_error(hearth, "AuthFailure.SecretIdNotFound", lambda: c.call_json("DescribeRoomInfo", room_info()))


@pytest.mark.parametrize("skew", [-600, 600])
def test_stale_timestamp_hand_built(hearth, skew):
    resp = raw_tc3(hearth, "DescribeRoomInfo", room_info(), timestamp=now() + skew)
    assert error_code(resp) == "AuthFailure.SignatureExpire", resp
    assert_serving(hearth)


def test_timestamp_within_the_allowed_skew_is_accepted(hearth):
    resp = raw_tc3(hearth, "DescribeRoomInfo", room_info(), timestamp=now() - 240)
    assert "Error" not in resp, resp


@pytest.mark.parametrize("sign_method", [None, "HmacSHA1"])
def test_stale_timestamp_through_the_sdk(hearth, monkeypatch, sign_method):
    """The SDK's own clock 10 minutes behind: it signs a stale Timestamp."""
    real = time.time
    monkeypatch.setattr(abstract_client, "time", types.SimpleNamespace(time=lambda: real() - 600))
    c = sdk_client(hearth, sign_method=sign_method)
    with pytest.raises(TencentCloudSDKException) as e:
        c.call_json("DescribeRoomInfo", room_info())
    assert e.value.code == "AuthFailure.SignatureExpire"
    monkeypatch.undo()
    assert_serving(hearth)


@pytest.mark.parametrize(
    "authorization",
    [
        "garbage",
        "Basic dXNlcjpwYXNz",
        "TC3-HMAC-SHA256 Credential=AKIDx/2024-01-01/trtc/tc3_request, SignedHeaders=host, Signature=" + "a" * 64,
        "TC3-HMAC-SHA256 Credential=AKIDx, SignedHeaders=content-type;host, Signature=" + "a" * 64,
    ],
)
def test_garbage_authorization_header(hearth, authorization):
    resp = raw_tc3(hearth, "DescribeRoomInfo", room_info(), headers={"Authorization": authorization})
    assert error_code(resp) == "AuthFailure.InvalidAuthorization", resp
    assert_serving(hearth)


# --------------------------------------------------------------------------------------------
# Actions and versions


def test_unknown_action(hearth):
    expect_error(hearth, "InvalidAction", lambda: sdk_client(hearth).call_json("NoSuchAction", {}))


@pytest.mark.parametrize("action", ["DescribeRoomInformation", "DescribeUserInformation", "DescribeHistoryScale"])
def test_deleted_action_is_offline(hearth, action):
    expect_error(hearth, "ActionOffline", lambda: sdk_client(hearth).call_json(action, {"SdkAppId": APP1}))


def test_wrong_version(hearth):
    resp = raw_tc3(hearth, "DescribeRoomInfo", room_info(), version="2020-01-01")
    assert error_code(resp) == "NoSuchVersion", resp
    assert_serving(hearth)


# --------------------------------------------------------------------------------------------
# Parameters


def test_missing_sdk_app_id(hearth):
    expect_error(
        hearth, "MissingParameter.SdkAppId", lambda: sdk_client(hearth).call_json("DescribeRoomInfo", window())
    )


@pytest.mark.parametrize("sign_method,req_method", [(None, "POST"), ("HmacSHA1", "GET")])
def test_sdk_app_id_not_a_number(hearth, sign_method, req_method):
    c = sdk_client(hearth, sign_method=sign_method, req_method=req_method)
    expect_error(
        hearth,
        "InvalidParameter.SdkAppId",
        lambda: c.call_json("DescribeRoomInfo", {"SdkAppId": "abc", **window()}),
    )


def test_unknown_parameter(hearth):
    expect_error(
        hearth, "UnknownParameter", lambda: sdk_client(hearth).call_json("DescribeRoomInfo", room_info(Colour="red"))
    )


def test_page_size_over_100(hearth):
    expect_error(
        hearth,
        "InvalidParameter.PageSizeOversize",
        lambda: sdk_client(hearth).call_json("DescribeRoomInfo", room_info(PageNumber=0, PageSize=101)),
    )


def test_start_time_older_than_14_days(hearth):
    w = window(span=3600, ago=15 * 86400)
    expect_error(
        hearth,
        "InvalidParameter.StartTsOversize",
        lambda: sdk_client(hearth).call_json("DescribeRoomInfo", {"SdkAppId": APP1, **w}),
    )


def test_end_time_before_start_time(hearth):
    t = now()
    expect_error(
        hearth,
        "InvalidParameter.EndTs",
        lambda: sdk_client(hearth).call_json(
            "DescribeRoomInfo", {"SdkAppId": APP1, "StartTime": t - 60, "EndTime": t - 3600}
        ),
    )


def test_room_info_window_over_24_hours(hearth):
    expect_error(
        hearth,
        "InvalidParameter.QueryScaleOversize",
        lambda: sdk_client(hearth).call_json("DescribeRoomInfo", {"SdkAppId": APP1, **window(span=24 * 3600 + 1)}),
    )


def test_dismiss_room_zero(hearth):
    expect_error(
        hearth,
        "InvalidParameterValue.RoomId",
        lambda: sdk_client(hearth).call_json("DismissRoom", {"SdkAppId": APP1, "RoomId": 0}),
    )


def test_dismiss_room_by_str_room_id_with_a_slash(hearth):
    expect_error(
        hearth,
        "InvalidParameterValue.RoomId",
        lambda: sdk_client(hearth).call_json("DismissRoomByStrRoomId", {"SdkAppId": APP1, "RoomId": "bad/room"}),
    )


def test_key_of_one_app_acting_on_another(hearth):
    for action, params in [
        ("DescribeRoomInfo", room_info(APP2)),
        ("DismissRoom", {"SdkAppId": APP2, "RoomId": 1}),
        ("DismissRoomByStrRoomId", {"SdkAppId": APP2, "RoomId": "r1"}),
    ]:
        expect_error(
            hearth, "UnauthorizedOperation.SdkAppId", lambda: sdk_client(hearth).call_json(action, params)
        )
    expect_error(
        hearth,
        "UnauthorizedOperation.SdkAppId",
        lambda: sdk_client(hearth, hearth.cred2).call_json("DescribeRoomInfo", room_info(APP1)),
    )


# --------------------------------------------------------------------------------------------
# Transport


@pytest.mark.parametrize("body", [b"{not json", b'{"SdkAppId": 1400000001,', b"[1, 2]"])
def test_broken_json_body(hearth, body):
    resp = raw_tc3(hearth, "DescribeRoomInfo", body)
    assert error_code(resp) == "InvalidParameter.BodyParamsError", resp
    assert_serving(hearth)


def test_tc3_body_over_10_mb(hearth):
    filler = "x" * (10 * 1024 * 1024)
    body = json.dumps({**room_info(), "Padding": filler}).encode()
    assert len(body) > 10 * 1024 * 1024
    resp = raw_tc3(hearth, "DescribeRoomInfo", body)
    assert error_code(resp) == "RequestSizeLimitExceeded", resp
    assert_serving(hearth)


def test_tc3_body_just_under_10_mb_is_read(hearth):
    """Not rejected for size: it gets as far as the parameters (Padding is unknown)."""
    body = json.dumps({**room_info(), "Padding": ""}).encode()
    body = body.replace(b'"Padding": ""', b'"Padding": "' + b"x" * (10 * 1024 * 1024 - len(body) - 1) + b'"')
    assert len(body) < 10 * 1024 * 1024
    resp = raw_tc3(hearth, "DescribeRoomInfo", body)
    assert error_code(resp) == "UnknownParameter", resp


@pytest.mark.parametrize("signature_method", ["HmacSHA1", "HmacSHA256"])
def test_v1_form_over_1_mb(hearth, signature_method):
    params = v1sig.signed_params(
        hearth.cred1.secret_id,
        hearth.cred1.secret_key,
        action="DescribeRoomInfo",
        host=hearth.host,
        business={**{k: str(v) for k, v in room_info().items()}, "Padding": "y" * (1024 * 1024 + 1)},
        signature_method=signature_method,
    )
    r = requests.post(
        hearth.url,
        data=v1sig.encode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Host": hearth.host},
        timeout=30,
    )
    assert error_code(check_envelope(r)) == "RequestSizeLimitExceeded"
    assert_serving(hearth)


def test_v1_form_hand_built_is_accepted(hearth):
    params = v1sig.signed_params(
        hearth.cred1.secret_id,
        hearth.cred1.secret_key,
        action="DescribeRoomInfo",
        host=hearth.host,
        business={k: str(v) for k, v in room_info().items()},
    )
    r = requests.post(
        hearth.url,
        data=v1sig.encode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Host": hearth.host},
        timeout=30,
    )
    resp = check_envelope(r)
    assert resp.get("Total") == 0 and resp.get("RoomList") == [], resp


def test_get_over_32_kb(hearth):
    w = window()
    q = f"SdkAppId={APP1}&StartTime={w['StartTime']}&EndTime={w['EndTime']}&RoomId=" + "r" * (33 * 1024)
    resp = raw_tc3(hearth, "DescribeRoomInfo", method="GET", query=q)
    assert error_code(resp) == "RequestSizeLimitExceeded", resp
    assert_serving(hearth)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_http_methods(hearth, method):
    resp = raw_tc3(hearth, "DescribeRoomInfo", room_info(), method=method)
    assert error_code(resp) == "UnsupportedProtocol", resp
    assert_serving(hearth)


def test_every_response_is_a_json_envelope(hearth):
    """HTTP 200, Content-Type exactly application/json and a RequestId, success or not."""
    s = requests.Session()
    seen = {}
    seen["ok"] = raw_tc3(hearth, "DescribeRoomInfo", room_info(), session=s)
    seen["bad-key"] = raw_tc3(hearth, "DescribeRoomInfo", room_info(), secret_key="wrong", session=s)
    seen["garbage-auth"] = raw_tc3(
        hearth, "DescribeRoomInfo", room_info(), headers={"Authorization": "x"}, session=s
    )
    seen["no-auth"] = check_envelope(s.post(hearth.url, data=b"{}", headers={"Content-Type": "application/json"}))
    seen["empty-get"] = check_envelope(s.get(hearth.url))
    seen["put"] = check_envelope(s.put(hearth.url, data=b"{}"))
    seen["text-plain"] = raw_tc3(hearth, "DescribeRoomInfo", b"{}", content_type="text/plain", session=s)
    seen["unknown-action"] = raw_tc3(hearth, "NoSuchAction", b"{}", session=s)
    seen["no-such-product"] = raw_tc3(hearth, "DescribeRoomInfo", room_info(), service="cvm", session=s)
    assert "Error" not in seen["ok"]
    for name, resp in seen.items():
        if name != "ok":
            assert error_code(resp), (name, resp)
    # No Authorization header means v1, and v1 cannot carry a JSON body.
    assert error_code(seen["no-auth"]) == "AuthFailure.InvalidAuthorization", seen["no-auth"]
    assert error_code(seen["empty-get"]) == "MissingParameter", seen["empty-get"]
    assert error_code(seen["bad-key"]) == "AuthFailure.SignatureFailure"
    assert error_code(seen["garbage-auth"]) == "AuthFailure.InvalidAuthorization"
    assert error_code(seen["unknown-action"]) == "InvalidAction"
    assert error_code(seen["put"]) == "UnsupportedProtocol"
    assert error_code(seen["text-plain"]) == "UnsupportedProtocol"
    assert error_code(seen["no-such-product"]) == "NoSuchProduct"
    ids = [r["RequestId"] for r in seen.values()]
    assert len(set(ids)) == len(ids), "RequestIds repeat"


def test_concurrent_calls_are_all_answered(hearth):
    results: list = []

    def worker():
        c = sdk_client(hearth)
        for _ in range(5):
            results.append(c.call_json("DescribeRoomInfo", room_info())["Response"]["Total"])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [0] * 40


# --------------------------------------------------------------------------------------------
# Rate limits (spec §2.1: 20 requests per second per SecretId and action)


def test_rate_limit_burst(hearth_limited):
    h = hearth_limited
    a = sdk_client(h)
    b = sdk_client(h, h.cred2)
    a.call_json("DescribeRoomInfo", room_info())  # warm the connection; the bucket refills below
    time.sleep(1.1)
    codes = []
    other = None
    started = time.monotonic()
    for i in range(30):
        try:
            a.call_json("DescribeRoomInfo", room_info())
            codes.append("ok")
        except TencentCloudSDKException as e:
            codes.append(e.code)
        if i == 24:
            other = b.call_json("DescribeRoomInfo", room_info(APP2))["Response"]
    elapsed = time.monotonic() - started
    assert elapsed < 0.9, f"the burst took {elapsed:.2f}s; too slow to exceed 20/s"
    limited = codes.count("RequestLimitExceeded")
    assert set(codes) <= {"ok", "RequestLimitExceeded"}, codes
    assert limited > 0, codes
    # 20 in the bucket plus what refilled while the burst ran (20/s), plus one for rounding.
    assert codes.count("ok") <= 20 + int(20 * elapsed) + 1, (elapsed, codes)
    assert codes[:20] == ["ok"] * 20, codes
    assert other is not None and other["Total"] == 0, "another SecretId was throttled too"
    time.sleep(1.5)
    out = a.call_json("DescribeRoomInfo", room_info())["Response"]
    assert out["Total"] == 0


# --------------------------------------------------------------------------------------------
# More parameter checks (spec §2.3.3/2.3.4/2.3.26/2.3.30/2.3.31, §5.2), one call each.

T0 = now()
W1 = {"StartTime": T0 - 3600, "EndTime": T0}
COMM = f"{APP1}_1_{T0 - 3600}"
PARAM_CASES = [
    ("DescribeRoomInfo", {"SdkAppId": APP1, **W1, "PageNumber": -1, "PageSize": 5}, "InvalidParameter.PageNumber"),
    ("DescribeRoomInfo", {"SdkAppId": APP1, **W1, "PageNumber": 0, "PageSize": 0}, "InvalidParameter.PageSize"),
    ("DescribeRoomInfo", {"SdkAppId": APP1, "StartTime": T0 + 600, "EndTime": T0 + 700}, "InvalidParameter.StartTs"),
    ("DescribeRoomInfo", {"SdkAppId": APP1, "EndTime": T0}, "MissingParameter.StartTs"),
    ("DescribeRoomInfo", {"SdkAppId": APP1, "StartTime": T0 - 60}, "MissingParameter.EndTs"),
    ("DescribeRoomInfo", {"SdkAppId": 99999999999, **W1}, "InvalidParameter.SdkAppId"),
    ("DescribeRoomInfo", {"SdkAppId": 1.5, **W1}, "InvalidParameter.SdkAppId"),
    ("DescribeRoomInfo", {"SdkAppId": None, **W1}, "InvalidParameter.SdkAppId"),
    ("DescribeRoomInfo", {"SdkAppId": 1400000003, **W1}, "UnauthorizedOperation.SdkAppId"),
    ("DescribeUserInfo", {"SdkAppId": APP1, **W1}, "MissingParameter.CommId"),
    ("DescribeUserInfo", {"SdkAppId": APP1, "CommId": "nope", **W1}, "InvalidParameter"),
    ("DescribeUserInfo", {"SdkAppId": APP1, "CommId": f"{APP2}_1_{T0}", **W1}, "InvalidParameter"),
    ("DescribeUserInfo", {"SdkAppId": APP1, "CommId": COMM, "StartTime": T0 - 4 * 3600 - 1, "EndTime": T0},
     "InvalidParameter.QueryScaleOversize"),
    ("DescribeUserInfo", {"SdkAppId": APP1, "CommId": COMM, **W1, "UserIds": [f"u{i}" for i in range(101)]},
     "InvalidParameter.UserIds"),
    ("DescribeUserInfo", {"SdkAppId": APP1, "CommId": COMM, **W1, "PageNumber": 0, "PageSize": 101},
     "InvalidParameter.PageSizeOversize"),
    ("DescribeScaleInfo", {"SdkAppId": APP1, "StartTime": T0 - 15 * 86400, "EndTime": T0},
     "InvalidParameter.StartTsOversize"),
    ("DescribeScaleInfo", {"SdkAppId": APP1, "StartTime": T0 - 60, "EndTime": T0 - 3600}, "InvalidParameter.EndTs"),
    ("DescribeScaleInfo", {"StartTime": T0 - 60, "EndTime": T0}, "MissingParameter.SdkAppId"),
    ("DismissRoom", {"SdkAppId": APP1}, "MissingParameter.RoomId"),
    ("DismissRoom", {"RoomId": 5}, "MissingParameter.SdkAppId"),
    ("DismissRoom", {"SdkAppId": APP1, "RoomId": "abc"}, "InvalidParameter.RoomId"),
    ("DismissRoom", {"SdkAppId": APP1, "RoomId": 4294967295}, "InvalidParameterValue.RoomId"),
    ("DismissRoom", {"SdkAppId": APP1, "RoomId": -5}, "InvalidParameterValue.RoomId"),
    ("DismissRoom", {"SdkAppId": APP1, "RoomId": "1234"}, "FailedOperation.RoomNotExist"),
    ("DismissRoom", {"SdkAppId": APP1, "RoomId": 4294967294}, "FailedOperation.RoomNotExist"),
    ("DismissRoomByStrRoomId", {"SdkAppId": APP1}, "MissingParameter.RoomId"),
    ("DismissRoomByStrRoomId", {"SdkAppId": APP1, "RoomId": ""}, "InvalidParameterValue.RoomId"),
    ("DismissRoomByStrRoomId", {"SdkAppId": APP1, "RoomId": "r" * 65}, "InvalidParameterValue.RoomId"),
    ("DismissRoomByStrRoomId", {"SdkAppId": APP1, "RoomId": "中文"}, "InvalidParameterValue.RoomId"),
    ("DismissRoomByStrRoomId", {"SdkAppId": APP1, "RoomId": "r" * 64}, "FailedOperation.RoomNotExist"),
    ("DismissRoomByStrRoomId", {"SdkAppId": APP1, "RoomId": "!#$%&()+-:;<=.>?@[]^_{}|~, ok"},
     "FailedOperation.RoomNotExist"),
    ("RemoveUser", {"SdkAppId": APP1, "RoomId": 1, "UserIds": ["a"]}, "FailedOperation.RoomNotExist"),
    ("CreateCloudRecording", {"SdkAppId": APP1, "RoomId": "1"}, "MissingParameter.UserId"),
    ("StartPublishCdnStream", {"SdkAppId": APP1, "RoomId": "1"}, "MissingParameter"),
    ("StartAIConversation", {"SdkAppId": APP1, "RoomId": "1"}, "MissingParameter"),
    ("StartAITranscription", {"SdkAppId": APP1, "RoomId": "1"}, "MissingParameter"),
]


@pytest.mark.parametrize(
    "action,params,code", PARAM_CASES, ids=[f"{a}-{c}-{i}" for i, (a, _, c) in enumerate(PARAM_CASES)]
)
def test_parameter_errors(hearth, action, params, code):
    with pytest.raises(TencentCloudSDKException) as e:
        sdk_client(hearth).call_json(action, params)
    assert e.value.code == code, e.value.message


@pytest.mark.parametrize("sign_method,req_method", SIGNINGS)
def test_string_room_ids_survive_every_encoding(hearth, sign_method, req_method):
    """Spaces, '+', '&', '=', '%' in values: URL-encoded by the SDK, decoded by the server."""
    c = sdk_client(hearth, sign_method=sign_method, req_method=req_method)
    for room in ["room with space", "a+b=c&d", "x%20y", "!#$%&()+-:;<=.>?@[]^_{}|~,"]:
        with pytest.raises(TencentCloudSDKException) as e:
            c.call_json("DismissRoomByStrRoomId", {"SdkAppId": APP1, "RoomId": room})
        assert e.value.code == "FailedOperation.RoomNotExist", (room, e.value.message)


def test_temporary_token_is_refused(hearth):
    from tencentcloud.common import credential

    c = sdk_client(hearth)
    c.credential = credential.Credential(hearth.cred1.secret_id, hearth.cred1.secret_key, "some-token")
    expect_error(hearth, "AuthFailure.TokenFailure", lambda: c.call_json("DescribeRoomInfo", room_info()))


def test_charset_in_content_type_is_signed_and_accepted(hearth):
    resp = raw_tc3(hearth, "DescribeRoomInfo", room_info(), content_type="application/json; charset=utf-8")
    assert resp.get("Total") == 0, resp


def test_host_header_is_part_of_the_signature(hearth):
    body = json.dumps(room_info()).encode()
    signed_for_other_host = tc3.signed_headers(
        hearth.cred1.secret_id, hearth.cred1.secret_key, action="DescribeRoomInfo",
        host="trtc.tencentcloudapi.com", payload=body,
    )
    # Sent with the Host it was signed for: accepted (the server signs what it receives).
    r = requests.post(hearth.url, data=body, headers=signed_for_other_host, timeout=30)
    assert check_envelope(r).get("Total") == 0
    # The same signature with another Host: refused.
    r = requests.post(hearth.url, data=body, headers={**signed_for_other_host, "Host": hearth.host}, timeout=30)
    assert error_code(check_envelope(r)) == "AuthFailure.SignatureFailure"


def test_tampered_body_fails_the_signature(hearth):
    body = json.dumps(room_info()).encode()
    hdrs = tc3.signed_headers(
        hearth.cred1.secret_id, hearth.cred1.secret_key, action="DescribeRoomInfo", host=hearth.host, payload=body
    )
    tampered = body.replace(str(APP1).encode(), str(APP2).encode())
    r = requests.post(hearth.url, data=tampered, headers=hdrs, timeout=30)
    assert error_code(check_envelope(r)) == "AuthFailure.SignatureFailure"


def test_post_json_with_business_parameters_in_the_query(hearth):
    body = json.dumps(room_info()).encode()
    hdrs = tc3.signed_headers(
        hearth.cred1.secret_id, hearth.cred1.secret_key, action="DescribeRoomInfo", host=hearth.host, payload=body
    )
    r = requests.post(hearth.url + "?PageSize=5", data=body, headers=hdrs, timeout=30)
    assert error_code(check_envelope(r)) == "InvalidParameter"


def test_chunked_body_over_10_mb(hearth):
    """No Content-Length: the limit holds while the body streams in."""

    def chunks():
        yield b'{"SdkAppId": 1400000001, "Padding": "'
        for _ in range(11):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    hdrs = tc3.signed_headers(
        hearth.cred1.secret_id, hearth.cred1.secret_key, action="DescribeRoomInfo", host=hearth.host, payload=b"?"
    )
    r = requests.post(hearth.url, data=chunks(), headers=hdrs, timeout=30)
    assert error_code(check_envelope(r)) == "RequestSizeLimitExceeded"
    assert_serving(hearth)


def test_sdk_over_https_with_the_servers_cert(hearth):
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.trtc.v20190722 import trtc_client

    http = HttpProfile(protocol="https", endpoint=hearth.https_host, certification=str(hearth.cert))
    c = trtc_client.TrtcClient(
        credential.Credential(hearth.cred1.secret_id, hearth.cred1.secret_key), "ap-guangzhou", ClientProfile(httpProfile=http)
    )
    assert c.call_json("DescribeRoomInfo", room_info())["Response"]["Total"] == 0
    r = requests.get(f"https://{hearth.https_host}/", verify=str(hearth.cert), timeout=30)
    assert error_code(check_envelope(r)) == "MissingParameter"
    # Without trusting the cert the handshake fails (a real TLS listener, not plain HTTP).
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://{hearth.https_host}/healthz", timeout=30)


@pytest.mark.parametrize("req_method", ["POST", "GET"])
def test_sdk_unsigned_payload(hearth, req_method):
    """ClientProfile.unsignedPayload: X-TC-Content-SHA256: UNSIGNED-PAYLOAD is honoured."""
    c = sdk_client(hearth, req_method=req_method)
    c.profile.unsignedPayload = True
    assert c.call_json("DescribeRoomInfo", room_info())["Response"]["Total"] == 0


def test_extra_signed_headers_are_verified(hearth):
    t = now()
    body = json.dumps(room_info()).encode()
    hdrs = {
        "Host": hearth.host, "Content-Type": "application/json", "X-TC-Action": "DescribeRoomInfo",
        "X-TC-Version": "2019-07-22", "X-TC-Timestamp": str(t), "X-TC-Region": "ap-guangzhou",
    }
    signed_names = ("Host", "Content-Type", "X-TC-Action", "X-TC-Timestamp")
    canonical, signed = tc3.canonical_request("POST", "", [(k, hdrs[k]) for k in signed_names], body)
    assert signed == "content-type;host;x-tc-action;x-tc-timestamp"
    sig = tc3.signature(hearth.cred1.secret_key, t, "trtc", tc3.string_to_sign(t, "trtc", canonical))
    hdrs["Authorization"] = (
        f"TC3-HMAC-SHA256 Credential={hearth.cred1.secret_id}/{tc3.utc_date(t)}/trtc/tc3_request, "
        f"SignedHeaders={signed}, Signature={sig}"
    )
    assert check_envelope(requests.post(hearth.url, data=body, headers=hdrs, timeout=30)).get("Total") == 0
    hdrs["X-TC-Action"] = "DismissRoom"  # a signed header changed in transit
    r = requests.post(hearth.url, data=body, headers=hdrs, timeout=30)
    assert error_code(check_envelope(r)) == "AuthFailure.SignatureFailure"


def test_credential_scope_date_must_be_the_timestamps_utc_day(hearth):
    body = json.dumps(room_info()).encode()
    hdrs = tc3.signed_headers(
        hearth.cred1.secret_id, hearth.cred1.secret_key, action="DescribeRoomInfo", host=hearth.host, payload=body
    )
    hdrs["Authorization"] = hdrs["Authorization"].replace(tc3.utc_date(int(hdrs["X-TC-Timestamp"])), "2020-01-01")
    r = requests.post(hearth.url, data=body, headers=hdrs, timeout=30)
    assert error_code(check_envelope(r)) == "AuthFailure.SignatureFailure"


def test_tc3_form_post(hearth):
    w = window()
    body = f"SdkAppId={APP1}&StartTime={w['StartTime']}&EndTime={w['EndTime']}".encode()
    resp = raw_tc3(hearth, "DescribeRoomInfo", body, content_type="application/x-www-form-urlencoded")
    assert resp.get("Total") == 0, resp


@pytest.mark.parametrize(
    "mutate,code",
    [
        ("nonce-not-a-number", "InvalidParameter"),
        ("no-signature", "MissingParameter"),
        ("timestamp-not-a-number", "InvalidParameter"),
        ("signature-method-lowercase", "AuthFailure.SignatureFailure"),
        ("stale", "AuthFailure.SignatureExpire"),
    ],
)
def test_v1_common_parameter_errors(hearth, mutate, code):
    p = v1sig.signed_params(
        hearth.cred1.secret_id, hearth.cred1.secret_key, action="DescribeRoomInfo", host=hearth.host,
        business={k: str(v) for k, v in room_info().items()}, http_method="GET",
        timestamp=now() - 600 if mutate == "stale" else None,
    )
    if mutate == "nonce-not-a-number":
        p["Nonce"] = "abc"
    elif mutate == "no-signature":
        del p["Signature"]
    elif mutate == "timestamp-not-a-number":
        p["Timestamp"] = "abc"
    elif mutate == "signature-method-lowercase":
        # Spec §1.3.2: HmacSHA256 only when the parameter is exactly "HmacSHA256"; else HmacSHA1.
        p["SignatureMethod"] = "hmacsha256"
        p["Signature"] = v1sig.sign(hearth.cred1.secret_key, v1sig.string_to_sign("GET", hearth.host, p), "HmacSHA256")
    r = requests.get(hearth.url + "?" + v1sig.encode(p), timeout=30)
    assert error_code(check_envelope(r)) == code
