"""`GET /metrics` (Prometheus text format) reflects live media and API calls."""

from __future__ import annotations

import re

import requests

from conftest import APP1
from media import Publisher, Viewer, run, wait_for, wait_stats, is_empty


def scrape(h) -> dict[str, float]:
    r = requests.get(f"http://{h.host}/metrics", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain"), r.headers
    out = {}
    for line in r.text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def test_metrics_follow_a_live_session_and_api_calls(hearth_media):
    h = hearth_media

    async def body():
        before = scrape(h)
        pub = await Publisher(h, APP1, "metrics-pub", room=901).start()
        view = await Viewer(h, APP1, "metrics-view", "metrics-pub", room=901).start()
        await view.wait_frames(video=20, audio=20)
        live = scrape(h)
        assert live["hearth_rooms"] >= 1 and live["hearth_users"] >= 2, live
        assert live["hearth_peers"] >= 2 and live["hearth_tracks"] >= 2 and live["hearth_subscriptions"] >= 2, live
        assert live["hearth_media_frames_forwarded_total"] >= before["hearth_media_frames_forwarded_total"] + 40
        assert live["hearth_media_bytes_out_total"] > before["hearth_media_bytes_out_total"]
        assert live["hearth_media_datagrams_in_total"] > before["hearth_media_datagrams_in_total"]
        assert live["hearth_telemetry_dropped_total"] == 0
        await view.delete()
        await pub.delete()
        await view.close()
        await pub.close()
        await wait_stats(h, is_empty, 10, "the room gone")

    run(body())
    # API calls are counted by action and outcome.
    requests.get(f"http://{h.host}/?Action=DescribeRoomInfo", timeout=5)
    m = scrape(h)
    key = 'hearth_api_requests_total{action="unknown",code="MissingParameter"}'
    assert m.get(key, 0) >= 1, [k for k in m if k.startswith("hearth_api")]
    assert all(re.fullmatch(r'hearth_api_requests_total\{action="\w+",code="[\w.]+"\}', k) for k in m if k.startswith("hearth_api"))
