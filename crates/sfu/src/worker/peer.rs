//! One WebRTC connection on a worker: its str0m `Rtc`, who it belongs to, and the maps from its
//! media lines to the room's tracks and subscriptions.

use super::gate::Gate;
use super::rewrite::Rewrite;
use crate::core::{Layer, ParticipantId, StreamKind, SubscriptionId, TrackId};
use hearth_types::UserId;
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;
use str0m::format::PayloadParams;
use str0m::media::{MediaKind, Mid, Pt, Rid};
use str0m::rtp::Ssrc;
use str0m::Rtc;

/// What a session does in its room. Sessions with equal keys of one user replace each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SessionKey {
    /// WHIP: the user's published streams.
    Publish,
    /// WHEP: playing one stream of one publisher.
    Play {
        publisher: UserId,
        stream: StreamKind,
    },
    /// A multi-party client (`docs/protocol.md`) with its two connections.
    Client,
}

/// An incoming media line: the room track it feeds and its simulcast rids by layer.
pub struct Inbound {
    pub track: TrackId,
    pub kind: MediaKind,
    /// `rids[layer]`; empty without simulcast.
    pub rids: Vec<Rid>,
    /// Muted by its client: nothing is forwarded.
    pub muted: bool,
    /// Blocked by an operator: nothing is forwarded.
    pub blocked: bool,
    /// What arrived since the last quality sample (frames of the top layer only).
    pub flow: Flow,
    /// Picture size per layer, read from keyframes.
    pub dims: [Option<(u16, u16)>; 4],
    /// The codec and RTP clock rate of the payload type seen last.
    pub format: Option<InFormat>,
    /// Layers (bit per layer) whose packets were held back (muted or blocked): their
    /// receivers resume at a keyframe.
    pub held: u8,
}

/// A publisher's payload type with what forwarding needs to know of it.
#[derive(Debug, Clone, Copy)]
pub struct InFormat {
    pub pt: Pt,
    pub params: PayloadParams,
}

/// An outgoing media line bound to a subscription: where it goes and how its packets are
/// renumbered.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub mid: Mid,
    pub kind: MediaKind,
    pub rewrite: Rewrite,
    /// The publisher's payload type and the one this line sends it as.
    pub pt_map: Option<(Pt, Pt)>,
    /// Its queue bound, and the wait for a keyframe after media was skipped (then the line
    /// renumbers on from what it sent last, so the receiver sees no gap it would wait for).
    pub gate: Gate,
    /// Set with the line's first video packet, when str0m's stream is configured: whether it
    /// paces the line (single-layer video is sent unpaced) and how long it keeps sent packets
    /// for NACKs (`nack.rs`), which is this.
    pub history: Option<std::time::Duration>,
    /// What the line carried since the last quality sample.
    pub flow: Flow,
}

impl Outgoing {
    /// A line bound to a new subscription; `rewrite` carries on the numbering of what the line
    /// sent before (a WHEP viewer whose publisher came back), or starts afresh.
    pub fn new(mid: Mid, kind: MediaKind, rewrite: Option<Rewrite>) -> Self {
        Outgoing {
            mid,
            kind,
            rewrite: rewrite.unwrap_or_default(),
            pt_map: None,
            gate: Gate::default(),
            history: None,
            flow: Flow::default(),
        }
    }
}

/// Bytes and frames of one media line since the last quality sample, and the picture size of
/// what it carried last.
#[derive(Debug, Default, Clone, Copy)]
pub struct Flow {
    pub bytes: u64,
    pub frames: u64,
    /// Video frames skipped while the line waited for a keyframe (the viewer's picture froze).
    pub skipped_frames: u64,
    pub dims: Option<(u16, u16)>,
}

impl Inbound {
    pub fn layer_of(&self, rid: Option<Rid>) -> Layer {
        match rid {
            None => Layer(0),
            Some(r) => Layer(self.rids.iter().position(|x| *x == r).unwrap_or(0) as u8),
        }
    }

    pub fn rid_of(&self, layer: Layer) -> Option<Rid> {
        self.rids.get(usize::from(layer.0)).copied()
    }
}

/// Addresses one peer's datagrams may come from at once (its candidate pairs).
pub const MAX_PEER_ADDRS: usize = 8;

pub struct Peer {
    pub id: ParticipantId,
    pub slot: super::rooms::RoomSlot,
    pub user: UserId,
    pub key: SessionKey,
    pub token: String,
    pub ufrag: String,
    pub rtc: Rtc,
    /// Every address its datagrams came from that str0m accepted (ICE checked), oldest first,
    /// at most [`MAX_PEER_ADDRS`]. A browser checks its backup candidate pairs now and then
    /// (Chromium every ~25 s): those addresses route to the peer too, and the one carrying its
    /// media keeps its route.
    pub addrs: Vec<SocketAddr>,
    pub created: Instant,
    pub connected: bool,
    /// The deadline str0m last asked for.
    pub next_timeout: Instant,
    pub inbound: HashMap<Mid, Inbound>,
    /// Outgoing media lines not yet bound to a track, by kind (WHEP answers them up front).
    pub free_out: Vec<(Mid, MediaKind)>,
    pub out_by_sub: FxHashMap<SubscriptionId, Outgoing>,
    pub sub_by_mid: HashMap<Mid, SubscriptionId>,
    /// Queued for polling after the current batch of work.
    pub dirty: bool,
    /// The multi-party client this connection belongs to, if any.
    pub client: Option<ParticipantId>,
    /// The remote closed DTLS (a goodbye rather than a timeout).
    pub remote_closed: bool,
    /// Latest packet loss (fraction) per media line, from RTCP receiver reports.
    pub loss: HashMap<Mid, f32>,
    /// The longest round-trip time any media line measured since the last quality sample.
    pub rtt: Option<std::time::Duration>,
    /// Incoming RTP streams by SSRC: their media line and simulcast rid.
    pub rx_streams: HashMap<Ssrc, (Mid, Option<Rid>)>,
    /// The numbering of outgoing lines between subscriptions (WHEP lines wait for their
    /// publisher to return, and must go on from where they stopped).
    pub parked: HashMap<Mid, Rewrite>,
}

impl Peer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: ParticipantId,
        slot: super::rooms::RoomSlot,
        user: UserId,
        key: SessionKey,
        token: String,
        ufrag: String,
        rtc: Rtc,
        now: Instant,
        client: Option<ParticipantId>,
    ) -> Self {
        Peer {
            id,
            slot,
            user,
            key,
            token,
            ufrag,
            rtc,
            addrs: Vec::new(),
            created: now,
            connected: false,
            next_timeout: now,
            inbound: HashMap::new(),
            free_out: Vec::new(),
            out_by_sub: FxHashMap::default(),
            sub_by_mid: HashMap::new(),
            dirty: false,
            client,
            remote_closed: false,
            loss: HashMap::new(),
            rtt: None,
            rx_streams: HashMap::new(),
            parked: HashMap::new(),
        }
    }
}

/// Orders simulcast rids from the lowest layer up. Chrome's `q;h;f` and `l;m;h` schemes and
/// numeric rids are recognised; anything else keeps the offer's order.
pub fn order_rids(mut rids: Vec<Rid>) -> Vec<Rid> {
    let names: Vec<String> = rids.iter().map(|r| r.to_string()).collect();
    let has = |n: &str| names.iter().any(|x| x == n);
    let rank = |name: &str| -> Option<u32> {
        if has("f") || has("q") {
            ["q", "h", "f"]
                .iter()
                .position(|x| *x == name)
                .map(|p| p as u32)
        } else if has("l") || has("m") {
            ["l", "m", "h"]
                .iter()
                .position(|x| *x == name)
                .map(|p| p as u32)
        } else {
            name.parse().ok()
        }
    };
    if names.iter().all(|n| rank(n).is_some()) {
        rids.sort_by_key(|r| rank(&r.to_string()));
    }
    rids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: Vec<Rid>) -> Vec<String> {
        v.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn orders_known_rid_schemes_low_to_high() {
        let r = |s: &str| Rid::from(s);
        assert_eq!(
            names(order_rids(vec![r("f"), r("h"), r("q")])),
            ["q", "h", "f"]
        );
        assert_eq!(
            names(order_rids(vec![r("h"), r("m"), r("l")])),
            ["l", "m", "h"]
        );
        assert_eq!(
            names(order_rids(vec![r("2"), r("0"), r("1")])),
            ["0", "1", "2"]
        );
        assert_eq!(names(order_rids(vec![r("b"), r("a")])), ["b", "a"]);
    }
}
