"""Starts, updates and stops a mix relay through the official SDK, for bench/mixing.sh.

    relay_ctl.py start PORT SECRET_ID SECRET_KEY APP APP_KEY ROOM WIDTH HEIGHT FPS URL  -> TaskId
    relay_ctl.py swap PORT SECRET_ID SECRET_KEY APP TASK STAT_URL KEY  -> stream seconds at the update
    relay_ctl.py stop PORT SECRET_ID SECRET_KEY APP TASK
    relay_ctl.py latency FLV T_UPDATE WIDTH HEIGHT FPS  -> seconds from the update to the new layout

`swap` changes the grid to a custom layout of one small cell at the top left, so that the rest
of the picture turns to the (black) background; `latency` finds the first frame of the recorded
FLV after the update where it has.
"""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
import urllib.request

import numpy as np
from TLSSigAPIv2 import TLSSigAPIv2
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import models, trtc_client


def client(port, sid, skey):
    http = HttpProfile(protocol="http", endpoint=f"127.0.0.1:{port}", reqTimeout=30)
    return trtc_client.TrtcClient(credential.Credential(sid, skey), "", ClientProfile(httpProfile=http))


def call(c, action, params):
    req = getattr(models, f"{action}Request")()
    req.from_json_string(json.dumps(params))
    return getattr(c, action)(req)


def stream_secs(stat_url, key):
    xml = urllib.request.urlopen(stat_url, timeout=5).read()
    for s in ET.fromstring(xml).iter("stream"):
        if s.findtext("name") == key:
            return int(s.findtext("time") or 0) / 1000.0
    raise SystemExit(f"{key} is not published")


def latency(flv, t_update, w, h, fps):
    start = max(t_update - 1.0, 0.0)
    out = subprocess.run(["ffmpeg", "-v", "error", "-ss", str(start), "-i", flv, "-t", "6", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-"], capture_output=True, check=True).stdout
    frames = np.frombuffer(out, np.uint8).reshape(-1, h, w, 3)
    for i, f in enumerate(frames):
        # The bottom-right quarter is background (black) only in the new layout.
        if f[h // 2:, w // 2:].mean() < 8:
            return start + i / fps - t_update
    return float("nan")


def main():
    cmd = sys.argv[1]
    if cmd == "latency":
        flv, t, w, h, fps = sys.argv[2:7]
        print(f"{latency(flv, float(t), int(w), int(h), int(fps)):.2f}")
        return
    port, sid, skey, app = sys.argv[2:6]
    c = client(port, sid, skey)
    app = int(app)
    if cmd == "start":
        app_key, room, w, h, fps, url = sys.argv[6:12]
        bot = "bench-mix"
        print(call(c, "StartPublishCdnStream", {
            "SdkAppId": app, "RoomId": room, "RoomIdType": 0, "WithTranscoding": 1,
            "AgentParams": {"UserId": bot, "UserSig": TLSSigAPIv2(app, app_key).gen_sig(bot, 3600),
                            "MaxIdleTime": 300},
            "AudioParams": {"AudioEncode": {"SampleRate": 48000, "Channel": 2, "BitRate": 64}},
            "VideoParams": {"VideoEncode": {"Width": int(w), "Height": int(h), "Fps": int(fps),
                                            "BitRate": 1500, "Gop": 2},
                            "LayoutParams": {"MixLayoutMode": 3}, "BackGroundColor": "0x000000"},
            "PublishCdnParams": [{"PublishCdnUrl": url, "IsTencentCdn": 0}]}).TaskId)
    elif cmd == "swap":
        task, stat_url, key = sys.argv[6:9]
        t = stream_secs(stat_url, key)
        call(c, "UpdatePublishCdnStream", {
            "SdkAppId": app, "TaskId": task, "SequenceNumber": 1, "WithTranscoding": 1,
            "VideoParams": {"LayoutParams": {"MixLayoutMode": 4, "MixLayoutList": [
                {"LocationX": 0, "LocationY": 0, "ImageWidth": 320, "ImageHeight": 180}]}}})
        print(t)
    else:
        call(c, "StopPublishCdnStream", {"SdkAppId": app, "TaskId": sys.argv[6]})


main()
