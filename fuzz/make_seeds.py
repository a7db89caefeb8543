#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/seeds/ (committed; rerun only to change it).

gateway_request seeds use the target's text format (see fuzz_targets/gateway_request.rs):
line 1 `<now> <mode>`, line 2 `<METHOD> <query>`, header lines, an empty line, the body.
The credential is the spec's worked-example one (AKID + 32 '*', key 32 '*').
usersig seeds start with a selector byte: 0 UserSig, 1 PrivateMapKey userbuf, 2 Authorization
header, 3 query string to nest.
"""
import base64, hashlib, hmac, json, os, struct, time, zlib
from urllib.parse import quote

HERE = os.path.dirname(os.path.abspath(__file__))
SID = "AKID" + "*" * 32
SKEY = "*" * 32
APP = 1400000001
APP_KEY = "0123456789abcdef0123456789abcdef"
T = 1700000000


def sha(b):
    return hashlib.sha256(b).hexdigest()


def hm(k, m):
    return hmac.new(k, m, hashlib.sha256).digest()


def tc3(ts, service, method, query, headers, body, key=SKEY):
    date = time.strftime("%Y-%m-%d", time.gmtime(ts))
    names = ";".join(n for n, _ in headers)
    canon = "%s\n/\n%s\n%s\n%s\n%s" % (
        method, query, "".join("%s:%s\n" % (n, v.strip().lower()) for n, v in headers), names,
        sha(b"" if method == "GET" else body))
    sts = "TC3-HMAC-SHA256\n%d\n%s/%s/tc3_request\n%s" % (ts, date, service, sha(canon.encode()))
    k = hm(hm(hm(("TC3" + key).encode(), date.encode()), service.encode()), b"tc3_request")
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    return "TC3-HMAC-SHA256 Credential=%s/%s/%s/tc3_request, SignedHeaders=%s, Signature=%s" % (
        SID, date, service, names, sig)


def request(now, mode, method, query, headers, body=b""):
    head = "%d %s\n%s %s\n" % (now, mode, method, query)
    head += "".join("%s: %s\n" % (n, v) for n, v in headers)
    return head.encode() + b"\n" + body


def write(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# Spec §1.4.3, byte for byte: valid signature, service cvm (not served: NoSuchProduct).
body = b'{"Limit": 1, "Filters": [{"Values": ["unnamed"], "Name": "instance-name"}]}'
write("gateway_request", "spec_1_4_3_tc3_post", request(1551113065, "raw", "POST", "", [
    ("Authorization", "TC3-HMAC-SHA256 Credential=%s/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=a7b8551448762bd123d6f79e81815e31a92013640a6cef36a08ad4b292a4d2f2" % SID),
    ("Content-Type", "application/json; charset=utf-8"),
    ("Host", "cvm.tencentcloudapi.com"),
    ("X-TC-Action", "DescribeInstances"),
    ("X-TC-Version", "2017-03-12"),
    ("X-TC-Timestamp", "1551113065"),
    ("X-TC-Region", "ap-guangzhou"),
], body))

# Spec §1.5.2: v1 GET with its published HmacSHA1 signature.
q = "Action=DescribeInstances&InstanceIds.0=ins-09dx96dg&Limit=20&Nonce=11886&Offset=0&Region=ap-guangzhou&SecretId=%s&Timestamp=1465185768&Version=2017-03-12&Signature=%s" % (
    quote(SID, safe=""), quote("7RAM2xfNMO9EiVTNmPg06MRnCvQ=", safe=""))
write("gateway_request", "spec_1_5_2_v1_get", request(1465185768, "raw", "GET", q, [
    ("Host", "cvm.tencentcloudapi.com")]))

# A valid trtc DescribeRoomInfo, TC3 JSON POST, signed here.
body = json.dumps({"SdkAppId": APP, "StartTime": T - 3600, "EndTime": T, "RoomId": "r1",
                   "PageNumber": 0, "PageSize": 10}).encode()
hdrs = [("content-type", "application/json"), ("host", "trtc.tencentcloudapi.com")]
write("gateway_request", "trtc_describe_room_info_tc3", request(T, "raw", "POST", "", [
    ("Authorization", tc3(T, "trtc", "POST", "", hdrs, body)),
    ("Content-Type", "application/json"), ("Host", "trtc.tencentcloudapi.com"),
    ("X-TC-Action", "DescribeRoomInfo"), ("X-TC-Version", "2019-07-22"),
    ("X-TC-Timestamp", str(T)), ("X-TC-Region", "ap-guangzhou")], body))

# The same with a placeholder signature, for mode tc3 (the harness signs).
zero = "TC3-HMAC-SHA256 Credential=%s/2023-11-14/trtc/tc3_request, SignedHeaders=content-type;host;x-tc-action, Signature=%s" % (SID, "0" * 64)
body = json.dumps({"SdkAppId": APP, "CommId": "1400000001_r1_1700000000", "StartTime": T - 60,
                   "EndTime": T, "UserIds": ["a", "b"]}).encode()
write("gateway_request", "trtc_describe_user_info_tc3_signing", request(T, "tc3", "POST", "", [
    ("Authorization", zero), ("Content-Type", "application/json; charset=utf-8"),
    ("Host", "trtc.tencentcloudapi.com"), ("X-TC-Action", "DescribeUserInfo"),
    ("X-TC-Version", "2019-07-22"), ("X-TC-Timestamp", str(T))], body))

# TC3 GET, parameters and common fields in the query (harness signs).
q = "Action=DescribeRoomInfo&Version=2019-07-22&Timestamp=%d&SdkAppId=%d&StartTime=%d&EndTime=%d&UserIds.0=u&Filters.0.Name=n&Filters.0.Values.0=v" % (T, APP, T - 10, T)
write("gateway_request", "trtc_get_tc3_signing", request(T, "tc3", "GET", q, [
    ("Authorization", zero.replace(";x-tc-action", "")), ("Content-Type", "application/x-www-form-urlencoded"),
    ("Host", "trtc.tencentcloudapi.com")]))

# TC3 form POST (harness signs).
body = ("Action=DismissRoom&Version=2019-07-22&SdkAppId=%d&RoomId=1234" % APP).encode()
write("gateway_request", "trtc_form_post_tc3_signing", request(T, "tc3", "POST", "", [
    ("Authorization", zero.replace(";x-tc-action", "")), ("Content-Type", "application/x-www-form-urlencoded"),
    ("Host", "trtc.tencentcloudapi.com"), ("X-TC-Timestamp", str(T)), ("X-TC-Token", "")], body))

# v1 GET and form POST (harness appends Signature=).
q = "Action=DescribeRoomInfo&Version=2019-07-22&Region=ap-guangzhou&Timestamp=%d&Nonce=11886&SecretId=%s&SdkAppId=%d&StartTime=%d&EndTime=%d&PageNumber=1&PageSize=20" % (
    T, quote(SID, safe=""), APP, T - 3600, T)
write("gateway_request", "trtc_v1_get_signing", request(T, "v1", "GET", q, [("Host", "trtc.tencentcloudapi.com")]))
body = ("Action=DescribeScaleInfo&Version=2019-07-22&Timestamp=%d&Nonce=7&SecretId=%s&SignatureMethod=HmacSHA256&SdkAppId=%d&StartTime=%d&EndTime=%d" % (
    T, quote(SID, safe=""), APP, T - 86400, T)).encode()
write("gateway_request", "trtc_v1_form_post_sha256_signing", request(T, "v1", "POST", "", [
    ("Host", "trtc.tencentcloudapi.com"), ("Content-Type", "application/x-www-form-urlencoded")], body))

# An lcic action, and junk of the usual shapes.
write("gateway_request", "lcic_v1_get_signing", request(T, "v1", "GET",
    "Action=DescribeRoom&Version=2022-08-17&Timestamp=%d&Nonce=1&SecretId=%s&RoomId=1" % (T, quote(SID, safe="")),
    [("Host", "lcic.tencentcloudapi.com")]))
write("gateway_request", "garbage_content_type", request(T, "raw", "PUT", "a=b", [
    ("Content-Type", "text/plain"), ("Authorization", "Basic Zm9vOmJhcg==")], b"\x00\xff"))


# usersig: a UserSig, a PrivateMapKey userbuf, an Authorization header, a query to nest.
def usersig(identifier, expire, t, userbuf=None):
    content = "TLS.identifier:%s\nTLS.sdkappid:%d\nTLS.time:%d\nTLS.expire:%d\n" % (identifier, APP, t, expire)
    doc = {"TLS.ver": "2.0", "TLS.identifier": identifier, "TLS.sdkappid": APP,
           "TLS.expire": expire, "TLS.time": t}
    if userbuf is not None:
        b = base64.b64encode(userbuf).decode()
        content += "TLS.userbuf:%s\n" % b
        doc["TLS.userbuf"] = b
    doc["TLS.sig"] = base64.b64encode(hmac.new(APP_KEY.encode(), content.encode(), hashlib.sha256).digest()).decode()
    z = zlib.compress(json.dumps(doc, separators=(",", ":")).encode())
    return base64.b64encode(z).decode().translate(str.maketrans("+/=", "*-_"))


def userbuf(identifier, room, expire_at, privileges):
    ident = identifier.encode()
    if isinstance(room, int):
        return struct.pack(">BH", 0, len(ident)) + ident + struct.pack(">IIIII", APP, room, expire_at, privileges, 0)
    r = room.encode()
    return struct.pack(">BH", 1, len(ident)) + ident + struct.pack(">IIIII", APP, 0, expire_at, privileges, 0) + struct.pack(">H", len(r)) + r


write("usersig", "usersig_valid", b"0" + usersig("alice", 86400, T).encode())
pmk = userbuf("bob", 1234, T + 300, 255)
write("usersig", "usersig_private_map_key", b"0" + usersig("bob", 300, T, pmk).encode())
write("usersig", "userbuf_num_room", b"1" + pmk)
write("usersig", "userbuf_num_room_trailing_zero_len", b"1" + pmk + b"\x00\x00")
write("usersig", "userbuf_str_room", b"1" + userbuf("carol", "room-one", T + 60, 0x2a))
write("usersig", "authorization_spec", ("2TC3-HMAC-SHA256 Credential=%s/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=a7b8551448762bd123d6f79e81815e31a92013640a6cef36a08ad4b292a4d2f2" % SID).encode())
write("usersig", "nest_query", b"3UserIds.0=a&UserIds.1=b&A.B=x&L.0.N=y&L.0.M.0=z&S=1")
write("usersig", "round_trip", b"R" + bytes(range(1, 64)))
