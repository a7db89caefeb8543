//! One room's media graph: tracks by owner, subscriptions by track, and the per-frame decision
//! of who receives it. Identifiers are assigned by the caller's worker; the room only relates
//! them. Decisions are returned (forwards, keyframe asks); the caller performs them.

use super::layers::{FrameVerdict, LayerChoice, LayerSelector};
use super::{KeyframeThrottle, Layer, MediaKind, StreamKind};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(pub u64);

/// Layer bitrates are averaged over this window before they cap a subscriber's layer.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// Leave this share of the downlink estimate unused when picking a layer (headroom for audio,
/// retransmissions and estimate noise).
const ESTIMATE_USABLE_PERCENT: u64 = 85;
/// A layer silent this long while a lower one kept flowing has stopped: a simulcast encoder
/// pauses its upper layers when its uplink estimate or CPU falls (Chromium does, for seconds),
/// and its subscribers move down to what still flows instead of freezing. A stopped layer
/// counts again once it has flowed this long: Chromium sends a stray frame or two of a paused
/// layer, and following each would freeze its subscribers again.
const LAYER_STOPPED: Duration = Duration::from_millis(600);
/// A layer's packets closer together than this are one continuous run.
const LAYER_RUN_GAP: Duration = Duration::from_millis(400);

/// A published track.
#[derive(Debug)]
pub struct TrackInfo {
    pub owner: ParticipantId,
    pub kind: MediaKind,
    pub stream: StreamKind,
    /// Highest simulcast layer seen so far.
    pub top: Layer,
    /// Highest layer flowing now: subscribers are targeted at most here.
    active: Layer,
    throttle: KeyframeThrottle,
    subs: Vec<SubscriptionId>,
    rates: [LayerRate; 4],
    runs: [LayerRun; 4],
}

/// When a layer's last packet came, and since when it has been flowing without a pause.
#[derive(Debug, Default, Clone, Copy)]
struct LayerRun {
    last: Option<Instant>,
    since: Option<Instant>,
}

impl LayerRun {
    fn packet(&mut self, now: Instant) {
        if self
            .last
            .is_none_or(|t| now.saturating_duration_since(t) > LAYER_RUN_GAP)
        {
            self.since = Some(now);
        }
        self.last = Some(now);
    }

    fn silent_for(&self, now: Instant) -> Duration {
        self.last
            .map_or(Duration::MAX, |t| now.saturating_duration_since(t))
    }

    fn flowing_for(&self, now: Instant) -> Duration {
        self.since
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }
}

/// Bytes per layer over the current window, and the last complete window's bitrate.
#[derive(Debug, Default, Clone, Copy)]
struct LayerRate {
    window_start: Option<Instant>,
    bytes: u64,
    bps: u64,
}

impl LayerRate {
    /// Counts a packet; true when it closed a window (a new bitrate is measured).
    fn add(&mut self, now: Instant, bytes: usize) -> bool {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        let measured = elapsed >= RATE_WINDOW;
        if measured {
            self.bps = self.bytes * 8 * 1000 / (elapsed.as_millis().max(1) as u64);
            self.bytes = 0;
            self.window_start = Some(now);
        }
        self.bytes += bytes as u64;
        measured
    }
}

#[derive(Debug)]
struct Subscription {
    subscriber: ParticipantId,
    track: TrackId,
    /// Video only.
    layers: Option<LayerSelector>,
}

/// Send this frame to this subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub subscriber: ParticipantId,
    pub subscription: SubscriptionId,
}

/// Ask the publisher of `track` for a keyframe on `layer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyframeAsk {
    pub publisher: ParticipantId,
    pub track: TrackId,
    pub layer: Layer,
}

#[derive(Debug, Default)]
pub struct Room {
    tracks: HashMap<TrackId, TrackInfo>,
    /// Looked up for every receiver of every packet: a fast hash (the ids are ours).
    subs: FxHashMap<SubscriptionId, Subscription>,
    /// Downlink estimate per subscriber, bits per second.
    estimates: HashMap<ParticipantId, u64>,
}

impl Room {
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty() && self.subs.is_empty()
    }

    pub fn track(&self, id: TrackId) -> Option<&TrackInfo> {
        self.tracks.get(&id)
    }

    pub fn tracks(&self) -> impl Iterator<Item = (TrackId, &TrackInfo)> {
        self.tracks.iter().map(|(id, t)| (*id, t))
    }

    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// The track a subscription receives.
    pub fn subscribed_track(&self, sub: SubscriptionId) -> Option<TrackId> {
        self.subs.get(&sub).map(|s| s.track)
    }

    pub fn add_track(
        &mut self,
        id: TrackId,
        owner: ParticipantId,
        kind: MediaKind,
        stream: StreamKind,
    ) {
        self.tracks.insert(
            id,
            TrackInfo {
                owner,
                kind,
                stream,
                top: Layer(0),
                active: Layer(0),
                throttle: KeyframeThrottle::default(),
                subs: Vec::new(),
                rates: Default::default(),
                runs: Default::default(),
            },
        );
    }

    /// Removes a track; returns the subscriptions that ended with it.
    pub fn remove_track(&mut self, id: TrackId) -> Vec<SubscriptionId> {
        let Some(track) = self.tracks.remove(&id) else {
            return Vec::new();
        };
        for s in &track.subs {
            self.subs.remove(s);
        }
        track.subs
    }

    /// Subscribes; returns false when the track does not exist.
    pub fn subscribe(
        &mut self,
        id: SubscriptionId,
        subscriber: ParticipantId,
        track: TrackId,
        choice: LayerChoice,
    ) -> bool {
        let Some(t) = self.tracks.get_mut(&track) else {
            return false;
        };
        t.subs.push(id);
        let layers = (t.kind == MediaKind::Video).then(|| {
            let mut sel = LayerSelector::new(choice, t.active);
            sel.cap = cap_for(self.estimates.get(&subscriber).copied(), t);
            sel.retarget(t.active);
            sel
        });
        self.subs.insert(
            id,
            Subscription {
                subscriber,
                track,
                layers,
            },
        );
        true
    }

    pub fn unsubscribe(&mut self, id: SubscriptionId) {
        if let Some(s) = self.subs.remove(&id) {
            if let Some(t) = self.tracks.get_mut(&s.track) {
                t.subs.retain(|x| *x != id);
            }
        }
    }

    /// Changes big/small; asks for a keyframe on the new target when it changed.
    pub fn set_choice(
        &mut self,
        id: SubscriptionId,
        choice: LayerChoice,
        now: Instant,
    ) -> Option<KeyframeAsk> {
        let s = self.subs.get_mut(&id)?;
        let t = self.tracks.get_mut(&s.track)?;
        let sel = s.layers.as_mut()?;
        sel.choice = choice;
        if sel.retarget(t.active) {
            return ask(s.track, t, sel.target, now);
        }
        None
    }

    /// Removes everything a participant published or subscribed to; returns the subscriptions
    /// that ended (theirs and other people's to their tracks) and the tracks removed.
    pub fn remove_participant(
        &mut self,
        pid: ParticipantId,
    ) -> (Vec<TrackId>, Vec<SubscriptionId>) {
        let tracks: Vec<TrackId> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.owner == pid)
            .map(|(id, _)| *id)
            .collect();
        let mut ended = Vec::new();
        for t in &tracks {
            ended.extend(self.remove_track(*t));
        }
        let own: Vec<SubscriptionId> = self
            .subs
            .iter()
            .filter(|(_, s)| s.subscriber == pid)
            .map(|(id, _)| *id)
            .collect();
        for s in &own {
            self.unsubscribe(*s);
        }
        ended.extend(own);
        self.estimates.remove(&pid);
        (tracks, ended)
    }

    /// One incoming frame of `track` on `layer`: fills `out` with its receivers and returns a
    /// keyframe ask when a subscriber waits to switch to this layer.
    pub fn on_frame(
        &mut self,
        now: Instant,
        track: TrackId,
        layer: Layer,
        keyframe: bool,
        bytes: usize,
        out: &mut Vec<Forward>,
    ) -> Option<KeyframeAsk> {
        let t = self.tracks.get_mut(&track)?;
        let l = usize::from(layer.0.min(3));
        // A layer's bitrate moves with its publisher's own estimate: a new measurement re-caps
        // the subscribers as a new downlink estimate does (a layer that outgrew a steady
        // estimate would otherwise queue up in the pacer).
        let measured = t.rates[l].add(now, bytes);
        t.runs[l].packet(now);
        let mut wants_keyframe = false;
        let active = if layer > t.top {
            // A layer started.
            t.top = layer;
            Some(layer)
        } else if layer > t.active && t.runs[l].flowing_for(now) >= LAYER_STOPPED {
            // A stopped layer came back, and stayed.
            Some(layer)
        } else if layer < t.active
            && t.runs[usize::from(t.active.0)].silent_for(now) > LAYER_STOPPED
            && t.runs[l].flowing_for(now) >= LAYER_STOPPED
        {
            // The upper layers stopped while this one kept flowing: the highest one still
            // flowing is the top for now.
            (layer.0..t.active.0)
                .rev()
                .map(Layer)
                .find(|x| t.runs[usize::from(x.0)].silent_for(now) <= LAYER_RUN_GAP)
        } else {
            None
        };
        if let Some(active) = active {
            t.active = active;
        }
        if active.is_some() || measured {
            for s in &t.subs {
                let Some(sub) = self.subs.get_mut(s) else {
                    continue;
                };
                let estimate = self.estimates.get(&sub.subscriber).copied();
                if let Some(sel) = sub.layers.as_mut() {
                    sel.cap = cap_for(estimate, t);
                    sel.retarget(t.active);
                }
            }
        }
        for id in &t.subs {
            let Some(s) = self.subs.get_mut(id) else {
                continue;
            };
            let forward = match s.layers.as_mut() {
                None => true,
                Some(sel) => {
                    let v = sel.on_frame(layer, keyframe);
                    wants_keyframe |= sel.switching() && sel.target == layer && !keyframe;
                    v == FrameVerdict::Forward
                }
            };
            if forward {
                out.push(Forward {
                    subscriber: s.subscriber,
                    subscription: *id,
                });
            }
        }
        if wants_keyframe {
            return ask(track, t, layer, now);
        }
        None
    }

    /// A subscriber lost its picture (PLI/FIR): ask the publisher for the layer it receives,
    /// throttled.
    pub fn on_keyframe_request(
        &mut self,
        now: Instant,
        sub: SubscriptionId,
    ) -> Option<KeyframeAsk> {
        let s = self.subs.get(&sub)?;
        let layer = s
            .layers
            .as_ref()
            .map_or(Layer(0), |sel| sel.current.unwrap_or(sel.target));
        let t = self.tracks.get_mut(&s.track)?;
        ask(s.track, t, layer, now)
    }

    /// Loss on the way in: ask the publisher for a keyframe on `layer`, throttled.
    pub fn on_keyframe_request_for_track(
        &mut self,
        now: Instant,
        track: TrackId,
        layer: Layer,
    ) -> Option<KeyframeAsk> {
        let t = self.tracks.get_mut(&track)?;
        ask(track, t, layer, now)
    }

    /// A new downlink estimate for a subscriber: re-caps its video subscriptions; returns the
    /// keyframe asks for those whose target changed.
    pub fn on_estimate(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        bps: u64,
        asks: &mut Vec<KeyframeAsk>,
    ) {
        self.estimates.insert(subscriber, bps);
        for (_, s) in self
            .subs
            .iter_mut()
            .filter(|(_, s)| s.subscriber == subscriber)
        {
            let (Some(sel), Some(t)) = (s.layers.as_mut(), self.tracks.get_mut(&s.track)) else {
                continue;
            };
            sel.cap = cap_for(Some(bps), t);
            if sel.retarget(t.active) {
                asks.extend(ask(s.track, t, sel.target, now));
            }
        }
    }
}

fn ask(track: TrackId, t: &mut TrackInfo, layer: Layer, now: Instant) -> Option<KeyframeAsk> {
    t.throttle.allow(layer, now).then_some(KeyframeAsk {
        publisher: t.owner,
        track,
        layer,
    })
}

/// The highest layer whose measured bitrate fits the estimate; layer 0 always fits (a picture
/// at the lowest quality beats none), and unmeasured layers are not ruled out.
fn cap_for(estimate: Option<u64>, t: &TrackInfo) -> Layer {
    let Some(bps) = estimate else { return Layer(3) };
    let usable = bps * ESTIMATE_USABLE_PERCENT / 100;
    let mut cap = Layer(0);
    for l in 1..=t.top.0.min(3) {
        let rate = t.rates[usize::from(l)].bps;
        if rate == 0 || rate <= usable {
            cap = Layer(l);
        } else {
            break;
        }
    }
    cap
}
