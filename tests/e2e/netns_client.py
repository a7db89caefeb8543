"""An aiortc user on the other side of a network namespace (netns.py): asks Hearth for its TURN
servers (WHIP `OPTIONS`, RFC 9725 `Link` headers), then publishes a colour and a tone with WHIP
and plays another publisher with WHEP through them. Prints one JSON line: the Link headers
seen, whether both connected, and the frames it decoded. Run by test_netns.py with
`ip netns exec`.

    netns_client.py --host 10.9.0.1:8080 --app 1400000001 --key <app key> --room 7
                    --user far --play near [--no-turn] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time

import requests
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCPeerConnection

import media
from media import Publisher, Viewer, wait_for


class Target:
    """What media.py's clients need of a server."""

    def __init__(self, host: str, app: int, key: str):
        self.host = host
        self.app_keys = {app: key}


def ice_servers_of(target: Target, app: int, user: str) -> tuple[list[str], list[RTCIceServer]]:
    """The WHIP endpoint's `Link` headers for this user, and the ICE servers they describe."""
    r = requests.options(f"http://{target.host}/whip/v1?sdkappid={app}",
                         headers={"Authorization": f"Bearer {media.usersig(target, app, user)}"},
                         timeout=10)
    r.raise_for_status()
    links = [v.strip() for v in r.headers.get("Link", "").split(",") if v.strip()]
    servers = []
    for link in links:
        m = re.match(r'<([^>]+)>;(.*)', link)
        params = dict(re.findall(r'\s*([\w-]+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        if params.get("rel") == "ice-server":
            servers.append(RTCIceServer(urls=m.group(1), username=params["username"],
                                        credential=params["credential"]))
    return links, servers


async def main(a: argparse.Namespace) -> dict:
    target = Target(a.host, a.app, a.key)
    links, servers = ice_servers_of(target, a.app, a.user)
    if a.no_turn:
        servers = []

    def pc() -> RTCPeerConnection:
        return RTCPeerConnection(RTCConfiguration(iceServers=servers,
                                                  bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))

    media.new_pc = lambda max_bundle=False: pc()
    out: dict = {"links": links, "published": False, "played": False, "video": 0, "audio": 0}
    pub = Publisher(target, a.app, a.user, rgb=(40, 200, 40), hz=880.0, room=a.room)
    view = Viewer(target, a.app, f"{a.user}-eye", a.play, room=a.room)
    try:
        await asyncio.gather(pub.start(), view.start())
        out["published"] = out["played"] = True
        await view.wait_frames(20, 20, timeout=20)
    except AssertionError as e:
        out["error"] = str(e)
    out["video"], out["audio"] = view.counts.video, view.counts.audio
    out["rgb"] = view.counts.rgb
    print(json.dumps(out), flush=True)
    # Keep publishing for the other side to decode, until told to stop or the time is up.
    if out["published"]:
        deadline = time.monotonic() + a.seconds
        await wait_for(lambda: time.monotonic() > deadline, a.seconds + 5, "the end")
    await pub.close()
    await view.close()
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--app", type=int, required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--room", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--play", required=True)
    p.add_argument("--no-turn", action="store_true")
    p.add_argument("--seconds", type=float, default=20)
    args = p.parse_args()
    media.run(main(args))
    sys.exit(0)
