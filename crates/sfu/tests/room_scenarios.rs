//! Scenarios of the sans-IO room core, driven with virtual time (an `Instant` the test moves
//! forward; nothing sleeps): forwarding, simulcast switching on keyframes, keyframe-request
//! throttling, downlink caps, layers the publisher pauses, and a user replacing their older
//! session.

use hearth_sfu::core::{
    Forward, KeyframeAsk, Layer, LayerChoice, MediaKind, ParticipantId, Presence, Room, StreamKind,
    SubscriptionId, TrackId, KEYFRAME_REQUEST_INTERVAL,
};
use hearth_types::UserId;
use std::time::{Duration, Instant};

const ALICE: ParticipantId = ParticipantId(1);
const BOB: ParticipantId = ParticipantId(2);
const CAROL: ParticipantId = ParticipantId(3);
const VIDEO: TrackId = TrackId(10);
const AUDIO: TrackId = TrackId(11);
const BOB_VIDEO: SubscriptionId = SubscriptionId(100);
const CAROL_VIDEO: SubscriptionId = SubscriptionId(101);
const BOB_AUDIO: SubscriptionId = SubscriptionId(102);

/// A room where Alice publishes simulcast video (3 layers) and audio; Bob and Carol subscribe.
struct Scenario {
    room: Room,
    now: Instant,
    out: Vec<Forward>,
}

impl Scenario {
    fn new(bob: LayerChoice, carol: LayerChoice) -> Self {
        let mut room = Room::default();
        room.add_track(VIDEO, ALICE, MediaKind::Video, StreamKind::Main);
        room.add_track(AUDIO, ALICE, MediaKind::Audio, StreamKind::Main);
        let mut s = Scenario {
            room,
            now: Instant::now(),
            out: Vec::new(),
        };
        // The publisher's layers become known as frames arrive.
        for l in 0..3 {
            s.frame(VIDEO, l, false);
        }
        assert!(s.room.subscribe(BOB_VIDEO, BOB, VIDEO, bob));
        assert!(s.room.subscribe(CAROL_VIDEO, CAROL, VIDEO, carol));
        assert!(s.room.subscribe(BOB_AUDIO, BOB, AUDIO, LayerChoice::Big));
        s
    }

    fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
    }

    /// One frame; returns the subscriptions it went to and the keyframe ask, if any.
    fn frame(
        &mut self,
        track: TrackId,
        layer: u8,
        keyframe: bool,
    ) -> (Vec<SubscriptionId>, Option<KeyframeAsk>) {
        self.out.clear();
        let bytes = 1000 * (usize::from(layer) + 1);
        let ask = self.room.on_frame(
            self.now,
            track,
            Layer(layer),
            keyframe,
            bytes,
            &mut self.out,
        );
        (self.out.iter().map(|f| f.subscription).collect(), ask)
    }

    /// One frame on each layer (a simulcast "frame time").
    fn all_layers(&mut self, keyframe: bool) -> Vec<(u8, Vec<SubscriptionId>)> {
        (0..3)
            .map(|l| (l, self.frame(VIDEO, l, keyframe).0))
            .collect()
    }
}

fn received(frames: &[(u8, Vec<SubscriptionId>)], sub: SubscriptionId) -> Vec<u8> {
    frames
        .iter()
        .filter(|(_, subs)| subs.contains(&sub))
        .map(|(l, _)| *l)
        .collect()
}

#[test]
fn audio_goes_to_every_subscriber_and_video_waits_for_a_keyframe() {
    let mut s = Scenario::new(LayerChoice::Big, LayerChoice::Small);
    assert_eq!(s.frame(AUDIO, 0, false).0, [BOB_AUDIO]);
    let before = s.all_layers(false);
    assert!(
        received(&before, BOB_VIDEO).is_empty(),
        "no video before a keyframe"
    );
    assert!(received(&before, CAROL_VIDEO).is_empty());
    let key = s.all_layers(true);
    assert_eq!(
        received(&key, BOB_VIDEO),
        [2],
        "big = the top layer, one layer per frame time"
    );
    assert_eq!(received(&key, CAROL_VIDEO), [0], "small = the lowest layer");
    s.advance(33);
    let next = s.all_layers(false);
    assert_eq!(received(&next, BOB_VIDEO), [2]);
    assert_eq!(received(&next, CAROL_VIDEO), [0]);
}

#[test]
fn waiting_subscribers_ask_for_a_keyframe_once_per_interval() {
    let mut s = Scenario::new(LayerChoice::Big, LayerChoice::Big);
    s.advance(10);
    let (_, first) = s.frame(VIDEO, 2, false);
    assert_eq!(
        first,
        Some(KeyframeAsk {
            publisher: ALICE,
            track: VIDEO,
            layer: Layer(2)
        })
    );
    let mut asks = 0;
    for _ in 0..10 {
        s.advance(33);
        asks += usize::from(s.frame(VIDEO, 2, false).1.is_some());
    }
    assert_eq!(asks, 0, "330 ms later the first request still stands");
    s.advance(KEYFRAME_REQUEST_INTERVAL.as_millis() as u64);
    assert!(
        s.frame(VIDEO, 2, false).1.is_some(),
        "after the interval the request is repeated"
    );
}

#[test]
fn picture_loss_from_many_subscribers_reaches_the_publisher_throttled() {
    let mut s = Scenario::new(LayerChoice::Big, LayerChoice::Big);
    s.all_layers(true);
    s.advance(1000);
    let first = s.room.on_keyframe_request(s.now, BOB_VIDEO);
    assert_eq!(
        first,
        Some(KeyframeAsk {
            publisher: ALICE,
            track: VIDEO,
            layer: Layer(2)
        })
    );
    assert_eq!(
        s.room.on_keyframe_request(s.now, CAROL_VIDEO),
        None,
        "same layer, same moment"
    );
    s.advance(100);
    assert_eq!(s.room.on_keyframe_request(s.now, BOB_VIDEO), None);
    s.advance(KEYFRAME_REQUEST_INTERVAL.as_millis() as u64);
    assert!(s.room.on_keyframe_request(s.now, CAROL_VIDEO).is_some());
}

#[test]
fn switching_big_to_small_happens_on_the_small_layers_keyframe() {
    let mut s = Scenario::new(LayerChoice::Big, LayerChoice::Big);
    s.all_layers(true);
    s.advance(1000);
    let ask = s.room.set_choice(BOB_VIDEO, LayerChoice::Small, s.now);
    assert_eq!(
        ask,
        Some(KeyframeAsk {
            publisher: ALICE,
            track: VIDEO,
            layer: Layer(0)
        })
    );
    for _ in 0..5 {
        s.advance(33);
        let f = s.all_layers(false);
        assert_eq!(
            received(&f, BOB_VIDEO),
            [2],
            "keeps the big layer until the small keyframe"
        );
        assert_eq!(received(&f, CAROL_VIDEO), [2]);
    }
    s.advance(33);
    let (subs, _) = s.frame(VIDEO, 0, true);
    assert_eq!(
        subs,
        [BOB_VIDEO],
        "switched on the keyframe; Carol stays on big"
    );
    let f = s.all_layers(false);
    assert_eq!(received(&f, BOB_VIDEO), [0]);
    assert_eq!(received(&f, CAROL_VIDEO), [2]);
}

#[test]
fn a_low_downlink_estimate_caps_the_layer_and_a_recovery_lifts_it() {
    let mut s = Scenario::new(LayerChoice::Big, LayerChoice::Big);
    // Two seconds of frames so each layer's bitrate is measured (layer l: (l+1) KB per frame).
    for _ in 0..60 {
        s.advance(33);
        s.all_layers(true);
    }
    let mut asks = Vec::new();
    // ~240 kbps for layer 0 and ~480 for layer 1 at 30 fps: 400 kbps fits only layer 0.
    s.room.on_estimate(s.now, BOB, 400_000, &mut asks);
    assert_eq!(
        asks,
        [KeyframeAsk {
            publisher: ALICE,
            track: VIDEO,
            layer: Layer(0)
        }]
    );
    s.advance(33);
    let (subs, _) = s.frame(VIDEO, 0, true);
    assert!(subs.contains(&BOB_VIDEO));
    let f = s.all_layers(false);
    assert_eq!(received(&f, BOB_VIDEO), [0]);
    assert_eq!(
        received(&f, CAROL_VIDEO),
        [2],
        "Carol's downlink is not Bob's"
    );
    asks.clear();
    s.advance(1000);
    s.room.on_estimate(s.now, BOB, 5_000_000, &mut asks);
    assert_eq!(
        asks,
        [KeyframeAsk {
            publisher: ALICE,
            track: VIDEO,
            layer: Layer(2)
        }]
    );
    s.advance(33);
    let f = s.all_layers(true);
    assert_eq!(
        received(&f, BOB_VIDEO).last(),
        Some(&2),
        "switched up on the top layer's keyframe"
    );
    s.advance(33);
    let f = s.all_layers(false);
    assert_eq!(received(&f, BOB_VIDEO), [2]);
}

#[test]
fn a_publisher_leaving_ends_its_subscriptions() {
    let mut s = Scenario::new(LayerChoice::Big, LayerChoice::Small);
    let (tracks, mut ended) = s.room.remove_participant(ALICE);
    ended.sort();
    assert_eq!(tracks.len(), 2);
    assert_eq!(ended, [BOB_VIDEO, CAROL_VIDEO, BOB_AUDIO]);
    assert_eq!(s.room.subscription_count(), 0);
    assert!(s.room.is_empty());
    assert_eq!(
        s.frame(VIDEO, 0, true),
        (vec![], None),
        "frames of a removed track go nowhere"
    );
}

#[test]
fn a_subscriber_leaving_ends_only_its_subscriptions() {
    let mut s = Scenario::new(LayerChoice::Big, LayerChoice::Small);
    let (tracks, mut ended) = s.room.remove_participant(BOB);
    ended.sort();
    assert!(tracks.is_empty());
    assert_eq!(ended, [BOB_VIDEO, BOB_AUDIO]);
    let f = s.all_layers(true);
    assert_eq!(received(&f, CAROL_VIDEO), [0]);
}

#[test]
fn a_user_entering_again_replaces_the_older_session() {
    #[derive(Clone, PartialEq, Eq, Hash, Debug)]
    enum Kind {
        Publish,
        Play,
    }
    let alice = UserId("alice".into());
    let mut p: Presence<Kind> = Presence::default();
    let first = p.add(&alice, Kind::Publish, ParticipantId(1));
    assert!(first.entered);
    assert_eq!(first.replaced, None);
    let again = p.add(&alice, Kind::Publish, ParticipantId(2));
    assert!(!again.entered, "still present: no second entry");
    assert_eq!(
        again.replaced,
        Some(ParticipantId(1)),
        "the older session is to be removed"
    );
    // The replaced session's removal arrives late and changes nothing.
    let late = p.remove(&alice, &Kind::Publish, ParticipantId(1));
    assert!(!late.exited && !late.room_empty);
    assert_eq!(p.session(&alice, &Kind::Publish), Some(ParticipantId(2)));
    // Another kind of session is not a replacement.
    assert_eq!(p.add(&alice, Kind::Play, ParticipantId(3)).replaced, None);
    assert!(!p.remove(&alice, &Kind::Publish, ParticipantId(2)).exited);
    let last = p.remove(&alice, &Kind::Play, ParticipantId(3));
    assert!(last.exited && last.room_empty);
}

#[test]
fn a_subscriber_who_came_before_the_upper_layers_moves_up_when_they_start() {
    let mut room = Room::default();
    room.add_track(VIDEO, ALICE, MediaKind::Video, StreamKind::Main);
    let mut out = Vec::new();
    let mut now = Instant::now();
    // Only the lowest layer flows when Bob subscribes (the encoder ramps up its layers).
    room.on_frame(now, VIDEO, Layer(0), true, 500, &mut out);
    assert!(room.subscribe(BOB_VIDEO, BOB, VIDEO, LayerChoice::Big));
    let mut asks = Vec::new();
    room.on_estimate(now, BOB, 3_000_000, &mut asks);
    out.clear();
    room.on_frame(now, VIDEO, Layer(0), true, 500, &mut out);
    assert_eq!(out.len(), 1, "forwarded the only layer there is");
    // The upper layers start: Bob's target moves to the top and he switches on its keyframe.
    now += Duration::from_millis(33);
    room.on_frame(now, VIDEO, Layer(1), false, 1000, &mut out);
    let ask = room.on_frame(now, VIDEO, Layer(2), false, 2000, &mut out);
    assert_eq!(
        ask.map(|a| a.layer),
        Some(Layer(2)),
        "asks for a keyframe on the new top layer"
    );
    now += Duration::from_millis(33);
    out.clear();
    room.on_frame(now, VIDEO, Layer(2), true, 2000, &mut out);
    assert_eq!(out.len(), 1);
    out.clear();
    room.on_frame(now, VIDEO, Layer(0), false, 500, &mut out);
    assert!(out.is_empty(), "no longer on the lowest layer");
}

#[test]
fn a_top_layer_that_stops_moves_its_subscribers_down_and_back_up_when_it_returns() {
    let mut s = Scenario::new(LayerChoice::Big, LayerChoice::Small);
    s.advance(33);
    s.all_layers(true);
    for _ in 0..30 {
        s.advance(33);
        assert_eq!(received(&s.all_layers(false), BOB_VIDEO), [2]);
    }
    // The publisher pauses its top layer (its uplink estimate fell); layers 0 and 1 go on.
    let mut asked = None;
    let mut waited = 0;
    while asked.is_none() {
        s.advance(33);
        waited += 33;
        assert!(waited < 1000, "no switch down within a second");
        s.frame(VIDEO, 0, false);
        let (subs, ask) = s.frame(VIDEO, 1, false);
        assert!(!subs.contains(&BOB_VIDEO), "not switched before a keyframe");
        asked = ask;
    }
    assert!(waited >= 600, "a short gap is not a stop ({waited} ms)");
    assert_eq!(
        asked,
        Some(KeyframeAsk {
            publisher: ALICE,
            track: VIDEO,
            layer: Layer(1)
        })
    );
    s.advance(33);
    s.frame(VIDEO, 0, false);
    let (subs, _) = s.frame(VIDEO, 1, true);
    assert!(
        subs.contains(&BOB_VIDEO),
        "switched down on layer 1's keyframe"
    );
    s.advance(33);
    s.frame(VIDEO, 0, false);
    assert!(s.frame(VIDEO, 1, false).0.contains(&BOB_VIDEO));
    assert_eq!(
        s.frame(VIDEO, 0, false).0,
        [CAROL_VIDEO],
        "small is untouched"
    );
    // A stray frame of the paused layer changes nothing.
    s.advance(33);
    assert_eq!(received(&s.all_layers(true), BOB_VIDEO), [1]);
    for _ in 0..20 {
        s.advance(33);
        s.frame(VIDEO, 0, false);
        assert!(s.frame(VIDEO, 1, false).0.contains(&BOB_VIDEO));
    }
    // The top layer comes back and stays: Bob moves up again, on its keyframe.
    let mut asked = None;
    let mut flowed = 0;
    while asked.is_none() {
        s.advance(33);
        flowed += 33;
        assert!(flowed < 1000, "no switch up within a second of flow");
        s.frame(VIDEO, 0, false);
        assert!(s.frame(VIDEO, 1, false).0.contains(&BOB_VIDEO));
        asked = s.frame(VIDEO, 2, false).1;
    }
    assert!(
        flowed >= 600,
        "up only after it flowed a while ({flowed} ms)"
    );
    assert_eq!(asked.map(|a| a.layer), Some(Layer(2)));
    s.advance(33);
    assert_eq!(
        received(&s.all_layers(true), BOB_VIDEO),
        [1, 2],
        "layer 1 until layer 2's keyframe"
    );
    s.advance(33);
    assert_eq!(received(&s.all_layers(false), BOB_VIDEO), [2]);
}

#[test]
fn a_pause_of_every_layer_changes_no_subscriber_layer() {
    let mut s = Scenario::new(LayerChoice::Big, LayerChoice::Small);
    s.advance(33);
    s.all_layers(true);
    for _ in 0..30 {
        s.advance(33);
        s.all_layers(false);
    }
    // The whole track pauses for 2 s (a camera stall); then layer 0's packets come first.
    s.advance(2000);
    for _ in 0..3 {
        assert_eq!(s.frame(VIDEO, 0, false), (vec![CAROL_VIDEO], None));
    }
    assert_eq!(s.frame(VIDEO, 2, false), (vec![BOB_VIDEO], None));
}

#[test]
fn a_layer_that_outgrows_a_steady_estimate_moves_its_subscribers_down() {
    let mut s = Scenario::new(LayerChoice::Big, LayerChoice::Small);
    let mut asks = Vec::new();
    s.room.on_estimate(s.now, BOB, 1_000_000, &mut asks);
    // Two seconds at 30 fps: layer 2 at 3 KB a frame is 720 kbps, within 85 % of 1 Mbps.
    for i in 0..60 {
        s.advance(33);
        s.all_layers(i == 0);
    }
    assert_eq!(received(&s.all_layers(false), BOB_VIDEO), [2]);
    // The publisher's top layer grows to 1.44 Mbps (its own estimate rose); Bob's stays.
    let mut asked = None;
    for _ in 0..60 {
        s.advance(33);
        s.out.clear();
        s.frame(VIDEO, 0, false);
        let ask = s.frame(VIDEO, 1, false).1;
        s.room
            .on_frame(s.now, VIDEO, Layer(2), false, 6000, &mut s.out);
        asked = asked.or(ask);
    }
    assert_eq!(
        asked.map(|a| a.layer),
        Some(Layer(1)),
        "re-capped without a new estimate"
    );
    s.advance(33);
    s.frame(VIDEO, 0, false);
    assert!(s.frame(VIDEO, 1, true).0.contains(&BOB_VIDEO));
}
