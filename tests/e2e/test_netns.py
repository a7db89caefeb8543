"""Real networks: a client in a network namespace whose UDP to the server is dropped reaches
Hearth through TURN over TCP (Debian's coturn, started here, with the short-lived credentials
Hearth hands out in WHIP `Link` headers), and decodes media both ways with an aiortc user on the
host. The same client without TURN does not connect (the UDP block is real). Credentials
Hearth handed out are refused by coturn once expired. A server bound to one address announces
another (1:1 NAT). Chromium's paths (ICE over TCP, TURN in the browser SDK) are in
tests/browser/netns.test.js."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import aioice.turn
import pytest
import requests
import websockets

import netns
from conftest import APP1, start_hearth, stop_hearth
from media import Publisher, Viewer, endpoint_url, run, usersig
from ws_client import ws_url

pytestmark = pytest.mark.skipif(netns.available() is not None, reason=str(netns.available()))

HERE = Path(__file__).parent
SECRET = "turn-shared-secret-for-the-tests-0123"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A namespace (UDP to the host dropped), coturn on the host's end, and a Hearth whose
    media is bound there and which hands out TURN credentials for that coturn."""
    d = tmp_path_factory.mktemp("netns")
    ns = netns.NetNs("e2e", 91).up()
    turn = None
    h = None
    try:
        turn = netns.Coturn(d, ns.host_ip, SECRET).start()
        h = start_hearth(d, "netns", rate_limits=False, http_ip="0.0.0.0", env={
            "HEARTH_MEDIA_IP": ns.host_ip,
            "HEARTH_TURN_URLS": f"{turn.url('tcp')},{turn.url('udp')}",
            "HEARTH_TURN_SECRET": SECRET,
        })
        yield ns, turn, h
    finally:
        if h is not None:
            stop_hearth(h)
        if turn is not None:
            turn.stop()
        ns.down()


def far_client(ns: netns.NetNs, h, *, room: int, user: str, play: str, turn: bool,
               seconds: float = 12) -> subprocess.Popen:
    argv = [sys.executable, str(HERE / "netns_client.py"), "--host", f"{ns.host_ip}:{h.http_port}",
            "--app", str(APP1), "--key", h.app_keys[APP1], "--room", str(room), "--user", user,
            "--play", play, "--seconds", str(seconds)]
    if not turn:
        argv.append("--no-turn")
    return ns.popen(argv, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def first_line(proc: subprocess.Popen, timeout: float) -> dict:
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
    if not line:
        raise AssertionError(f"the namespace client said nothing:\n{proc.stderr.read()}")
    return json.loads(line)


def test_a_client_without_udp_publishes_and_plays_through_turn_over_tcp(net):
    ns, turn, h = net

    async def body():
        near = Publisher(h, APP1, "near", rgb=(200, 40, 40), hz=440.0, room=951)
        await near.start()

        # Without TURN the far side cannot connect: its UDP to the server is dropped.
        blocked = far_client(ns, h, room=952, user="far-blocked", play="near", turn=False,
                             seconds=0)
        out = await first_line(blocked, 60)
        assert not out["published"] and out["video"] == 0, out
        blocked.wait(20)

        far = far_client(ns, h, room=951, user="far", play="near", turn=True)
        out = await first_line(far, 60)
        # The server told it of both TURN URLs, with a credential for "far".
        assert len(out["links"]) == 2 and all('rel="ice-server"' in l for l in out["links"]), out
        assert f"<{turn.url('tcp')}>" in out["links"][0] and ':far"' in out["links"][0], out
        assert out["published"] and out["played"], out
        assert out["video"] >= 20 and out["audio"] >= 20, out
        r, g, b = out["rgb"]
        assert r > 150 and g < 90 and b < 90, out  # the near side's red

        # The host side decodes what the far side publishes (green).
        eye = Viewer(h, APP1, "near-eye", "far", room=951)
        await eye.start()
        await eye.wait_frames(20, 20, timeout=20)
        r, g, b = eye.counts.rgb
        assert g > 150 and r < 90 and b < 90, eye.counts
        await eye.close()
        await near.close()
        far.wait(30)
        assert far.returncode == 0, far.stderr.read()
        # coturn relayed it: an allocation over TCP for the far user.
        log = turn.log.read_text()
        assert f"connected to: {ns.ns_ip}" in log, log[-2000:]
        assert ":far>" in log and "ALLOCATE processed, success" in log, log[-2000:]

    run(body())


def test_turn_credentials_hearth_hands_out_expire_at_coturn(net, tmp_path):
    ns, turn, _ = net
    # A second server with a 2 s credential lifetime, for the same coturn.
    h = start_hearth(tmp_path, "turn-ttl", rate_limits=False, env={
        "HEARTH_TURN_URLS": turn.url("tcp"),
        "HEARTH_TURN_SECRET": SECRET,
        "HEARTH_TURN_TTL_SECS": "2",
    })
    try:
        async def allocate(username: str, password: str) -> None:
            transport, _ = await aioice.turn.create_turn_endpoint(
                asyncio.DatagramProtocol, server_addr=(turn.ip, turn.port), username=username,
                password=password, transport="tcp")
            transport.close()

        async def body():
            url = endpoint_url(h, "whip", APP1, room=961)
            r = await asyncio.to_thread(requests.options, url, headers={
                "Authorization": f"Bearer {usersig(h, APP1, 'ttl-user')}"}, timeout=10)
            assert r.status_code == 204, r.text
            link = r.headers["Link"]
            username = link.split('username="')[1].split('"')[0]
            password = link.split('credential="')[1].split('"')[0]
            assert username.endswith(":ttl-user") and int(username.split(":")[0]) <= time.time() + 3
            await allocate(username, password)  # valid now: coturn allocates
            await asyncio.sleep(3.5)
            with pytest.raises(Exception):
                await allocate(username, password)  # expired: refused
            # A request without a UserSig (a browser's pre-flight) gets no credentials.
            r = await asyncio.to_thread(requests.options, url, timeout=10)
            assert r.status_code == 204 and "Link" not in r.headers
            # The WebSocket protocol's enter answer carries them too.
            ws = await websockets.connect(ws_url(h))
            await ws.send(json.dumps({"type": "enter", "v": 1, "sdkappid": APP1, "userid": "ws-user",
                                      "usersig": usersig(h, APP1, "ws-user"), "roomid": 962}))
            entered = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.close()
            [server] = entered["ice_servers"]
            assert server["urls"] == [turn.url("tcp")], server
            assert server["username"].endswith(":ws-user") and server["credential"], server
            await allocate(server["username"], server["credential"])

        run(body())
    finally:
        stop_hearth(h)


def test_a_server_bound_to_one_address_announces_another(tmp_path):
    # 1:1 NAT: bind the private address, announce the public one (here a documentation
    # address, which nobody can reach: the test reads the answer, not the media).
    h = start_hearth(tmp_path, "announce", rate_limits=False, env={
        "HEARTH_MEDIA_IP": "127.0.0.1",
        "HEARTH_MEDIA_ANNOUNCE": "203.0.113.7,127.0.0.1",
    })
    try:
        async def body():
            p = Publisher(h, APP1, "nat-pub", room=971)
            await p.start()  # through the second announced address, on loopback
            answer = p.answer
            cands = [l for l in answer.splitlines() if l.startswith("a=candidate:")]
            assert any(" 203.0.113.7 " in c and " udp " in c.lower() for c in cands), cands
            assert any(" 203.0.113.7 " in c and "tcptype passive" in c for c in cands), cands
            assert any(" 127.0.0.1 " in c for c in cands), cands
            v = Viewer(h, APP1, "nat-eye", "nat-pub", room=971)
            await v.start()
            await v.wait_frames(10, 10)
            await v.close()
            await p.close()

        run(body())
    finally:
        stop_hearth(h)
