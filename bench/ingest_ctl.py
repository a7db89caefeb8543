"""Starts and stops a stream ingest through the official SDK, for bench/ingest.sh.

    ingest_ctl.py start PORT SECRET_ID SECRET_KEY APP APP_KEY ROOM URL  -> TaskId
    ingest_ctl.py stop PORT SECRET_ID SECRET_KEY APP TASK
"""

import json
import sys

from TLSSigAPIv2 import TLSSigAPIv2
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import models, trtc_client


def call(port, sid, skey, action, params):
    http = HttpProfile(protocol="http", endpoint=f"127.0.0.1:{port}", reqTimeout=30)
    c = trtc_client.TrtcClient(credential.Credential(sid, skey), "", ClientProfile(httpProfile=http))
    req = getattr(models, f"{action}Request")()
    req.from_json_string(json.dumps(params))
    return json.loads(getattr(c, action)(req).to_json_string())


def main():
    cmd, port, sid, skey, app = sys.argv[1:6]
    if cmd == "start":
        app_key, room, url = sys.argv[6:9]
        sig = TLSSigAPIv2(int(app), app_key).gen_sig("robot", 3600)
        out = call(port, sid, skey, "StartStreamIngest", {
            "SdkAppId": int(app), "RoomId": room, "RoomIdType": 1, "UserId": "robot", "UserSig": sig,
            "StreamUrl": url, "RepeatNum": -1})
        print(out["TaskId"])
    elif cmd == "stop":
        call(port, sid, skey, "StopStreamIngest", {"SdkAppId": int(app), "TaskId": sys.argv[6]})
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
