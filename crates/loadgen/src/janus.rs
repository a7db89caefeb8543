//! Janus VideoRoom signaling over its HTTP transport (`--janus`), so that the same publishers and
//! subscribers run against Janus as against Hearth: a publisher `joinandconfigure`s with its
//! offer and applies Janus's answer; a subscriber `join`s the publisher's feed, answers the
//! offer Janus makes, and `start`s. One Janus session (and handle) per client; events are read
//! by long-polling the session.

use crate::http;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A session with one VideoRoom handle.
pub struct Handle {
    server: http::Server,
    base: String,
    session: u64,
    handle: u64,
    /// Candidates Janus trickled (`a=candidate` values), read while waiting for events.
    pub candidates: std::cell::RefCell<Vec<String>>,
}

fn transaction() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!("lg{}", N.fetch_add(1, Ordering::Relaxed))
}

fn post(server: &http::Server, path: &str, body: &Value) -> Result<Value> {
    let r = http::request(
        server,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        &body.to_string(),
    )?;
    if r.status != 200 {
        bail!("{path}: HTTP {}: {}", r.status, r.body.trim());
    }
    let v: Value = serde_json::from_str(&r.body).context("Janus answered no JSON")?;
    if v["janus"] == "error" {
        bail!("{path}: {}", v["error"]);
    }
    Ok(v)
}

impl Handle {
    /// Creates a session and attaches the VideoRoom plugin. `base` is the transport's path
    /// (`/janus`).
    pub fn attach(server: &http::Server, base: &str) -> Result<Self> {
        let created = post(
            server,
            base,
            &json!({"janus": "create", "transaction": transaction()}),
        )?;
        let session = created["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("create: no session id in {created}"))?;
        let attached = post(
            server,
            &format!("{base}/{session}"),
            &json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": transaction()}),
        )?;
        let handle = attached["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("attach: no handle id in {attached}"))?;
        Ok(Handle {
            server: server.clone(),
            base: base.to_string(),
            session,
            handle,
            candidates: Default::default(),
        })
    }

    /// Sends a plugin message (with an optional JSEP) and waits for the plugin's event, which
    /// Janus delivers asynchronously after an `ack`.
    pub fn message(&self, body: Value, jsep: Option<Value>) -> Result<Value> {
        let mut m = json!({"janus": "message", "body": body, "transaction": transaction()});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        let path = format!("{}/{}/{}", self.base, self.session, self.handle);
        let r = post(&self.server, &path, &m)?;
        if r["janus"] == "event" {
            return Ok(r);
        }
        self.next_event(Duration::from_secs(15))
    }

    /// The next plugin event of this session (long poll).
    fn next_event(&self, within: Duration) -> Result<Value> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            let path = format!("{}/{}?maxev=1", self.base, self.session);
            let r = http::request(&self.server, "GET", &path, &[], "")?;
            let v: Value = serde_json::from_str(&r.body).context("Janus event: no JSON")?;
            let ev = if v.is_array() { v[0].clone() } else { v };
            match ev["janus"].as_str() {
                Some("event") => {
                    if let Some(e) = ev["plugindata"]["data"]["error"].as_str() {
                        bail!("VideoRoom: {e}");
                    }
                    return Ok(ev);
                }
                Some("trickle") => {
                    if let Some(c) = ev["candidate"]["candidate"].as_str() {
                        self.candidates.borrow_mut().push(c.to_string());
                    }
                }
                // keepalive (the long poll timed out), webrtcup, media: keep reading.
                _ => continue,
            }
        }
        bail!("no VideoRoom event within {within:?}")
    }

    /// Tells Janus that our candidates are all in the SDP we sent.
    pub fn trickle_done(&self) -> Result<()> {
        let path = format!("{}/{}/{}", self.base, self.session, self.handle);
        post(
            &self.server,
            &path,
            &json!({"janus": "trickle", "candidate": {"completed": true}, "transaction": transaction()}),
        )?;
        Ok(())
    }

    /// Ends the session.
    pub fn destroy(&self) {
        let _ = post(
            &self.server,
            &format!("{}/{}", self.base, self.session),
            &json!({"janus": "destroy", "transaction": transaction()}),
        );
    }
}

/// Joins `room` as a publisher with `offer`; returns Janus's answer and the publisher's feed id.
pub fn publish(h: &Handle, room: u64, display: &str, offer: &str) -> Result<(String, u64)> {
    let ev = h.message(
        json!({"request": "joinandconfigure", "ptype": "publisher", "room": room,
               "display": display, "audio": true, "video": true}),
        Some(json!({"type": "offer", "sdp": offer})),
    )?;
    let id = ev["plugindata"]["data"]["id"]
        .as_u64()
        .ok_or_else(|| anyhow!("joinandconfigure: no feed id in {ev}"))?;
    let sdp = ev["jsep"]["sdp"]
        .as_str()
        .ok_or_else(|| anyhow!("joinandconfigure: no answer in {ev}"))?;
    Ok((sdp.to_string(), id))
}

/// Joins `room` as a subscriber of `feed`; returns Janus's offer.
pub fn subscribe(h: &Handle, room: u64, feed: u64) -> Result<String> {
    let ev = h.message(
        json!({"request": "join", "ptype": "subscriber", "room": room,
               "streams": [{"feed": feed}]}),
        None,
    )?;
    ev["jsep"]["sdp"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("join: no offer in {ev}"))
}

/// Answers a subscriber's offer and starts the media.
pub fn start(h: &Handle, answer: &str) -> Result<()> {
    h.message(
        json!({"request": "start"}),
        Some(json!({"type": "answer", "sdp": answer})),
    )?;
    Ok(())
}

/// The audio and video `a=mid` of an SDP, in that order.
pub fn mids(sdp: &str) -> Result<[String; 2]> {
    let (mut audio, mut video, mut kind) = (None, None, "");
    for l in sdp.lines() {
        if let Some(m) = l.strip_prefix("m=") {
            kind = m.split_whitespace().next().unwrap_or("");
        } else if let Some(mid) = l.strip_prefix("a=mid:") {
            let slot = match kind {
                "audio" => &mut audio,
                "video" => &mut video,
                _ => continue,
            };
            slot.get_or_insert_with(|| mid.trim().to_string());
        }
    }
    match (audio, video) {
        (Some(a), Some(v)) => Ok([a, v]),
        _ => bail!("the offer lacks an audio or a video line"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_mids_by_kind() {
        let sdp =
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v1\r\nm=audio 9 x 111\r\na=mid:a0\r\n";
        assert_eq!(
            super::mids(sdp).unwrap(),
            ["a0".to_string(), "v1".to_string()]
        );
    }
}
