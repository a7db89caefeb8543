"""Starts and stops a recording through the official SDK, for bench/recording.sh.

    recording_ctl.py create PORT SECRET_ID SECRET_KEY APP APP_KEY ROOM MODE WIDTH HEIGHT FPS  -> TaskId
    recording_ctl.py delete PORT SECRET_ID SECRET_KEY APP TASK
"""

import json
import sys

from TLSSigAPIv2 import TLSSigAPIv2
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.trtc.v20190722 import models, trtc_client


def client(port, sid, skey):
    http = HttpProfile(protocol="http", endpoint=f"127.0.0.1:{port}", reqTimeout=30)
    return trtc_client.TrtcClient(credential.Credential(sid, skey), "", ClientProfile(httpProfile=http))


def main():
    cmd, port, sid, skey, app = sys.argv[1:6]
    c = client(port, sid, skey)
    if cmd == "create":
        app_key, room, mode, w, h, fps = sys.argv[6:12]
        bot = f"bench-rec-{mode}"
        params = {
            "SdkAppId": int(app), "RoomId": room, "UserId": bot,
            "UserSig": TLSSigAPIv2(int(app), app_key).gen_sig(bot, 3600),
            "RecordParams": {"RecordMode": 2 if mode == "mixed" else 1, "StreamType": 2,
                             "OutputFormat": 3, "MaxIdleTime": 300},
            "StorageParams": {"CloudVod": {"TencentVod": {"MediaType": 0}}},
            "MixTranscodeParams": {"VideoParams": {"Width": int(w), "Height": int(h), "Fps": int(fps),
                                                   "BitRate": 1_500_000, "Gop": 2}},
        }
        req = models.CreateCloudRecordingRequest()
        req.from_json_string(json.dumps(params))
        print(c.CreateCloudRecording(req).TaskId)
    else:
        req = models.DeleteCloudRecordingRequest()
        req.from_json_string(json.dumps({"SdkAppId": int(app), "TaskId": sys.argv[6]}))
        c.DeleteCloudRecording(req)


main()
