//! A room spread over workers. A room lives on its home worker (by hash): its publishers,
//! presence, calls and moderation. When the home is full, more WHEP viewers are placed on other
//! workers, each holding a mirror of the room. The home hands each publisher packet to the
//! workers with viewers of that publisher, in batches over a bounded channel (no lock is shared:
//! every state has one owner); the mirrors fan it out as the home does. Keyframe asks and
//! departures come back over a control channel.

use super::forward::Relayed;
use super::peer::SessionKey;
use super::rooms::{RoomSlot, RoomState};
use super::sessions::Downlink;
use super::Worker;
use crate::command::{JoinRequest, Joined, SfuError};
use crate::core::{KeyframeAsk, Layer, MediaKind, ParticipantId, StreamKind, TrackId};
use crate::events::{EventKind, ExitReason};
use crate::offer::OfferDirection;
use hearth_types::{CommId, UserId};
use std::collections::HashMap;
use tokio::sync::mpsc;

/// Batches of packets queued towards one worker before more are dropped (and counted).
const RELAY_QUEUE: usize = 1024;

/// How long a home remembers a viewer that left before its attach arrived.
const GONE_EARLY_MEMORY: std::time::Duration = std::time::Duration::from_secs(30);

/// Ids a worker hands out carry its index in these high bits, so an id names its worker.
const ID_SHIFT: u32 = 40;

/// The first id worker `index` hands out.
pub(crate) fn first_id(index: usize) -> u64 {
    ((index as u64) << ID_SHIFT) + 1
}

/// The worker that handed out an id (a participant, a track, a room slot).
pub(crate) fn worker_of_id(id: u64) -> usize {
    (id >> ID_SHIFT) as usize
}

/// What a worker needs of a room's home to place a viewer of it.
#[derive(Debug, Clone)]
pub struct MirrorOf {
    pub(crate) slot: RoomSlot,
    pub(crate) comm_id: CommId,
    /// The publisher sends simulcast: the viewer's downlink is estimated.
    pub(crate) simulcast: bool,
}

/// Worker-to-worker messages other than media.
#[derive(Debug)]
pub(crate) enum Ctl {
    /// Home to mirror: the tracks `publisher` publishes now (through `owner`); none is none.
    Tracks {
        slot: RoomSlot,
        publisher: UserId,
        owner: Option<ParticipantId>,
        tracks: Vec<(TrackId, MediaKind, StreamKind)>,
    },
    /// Home to mirror: a viewer is removed (kicked, dismissed, replaced).
    Remove {
        viewer: ParticipantId,
        reason: ExitReason,
    },
    /// Mirror to home: a viewer left, timed out or was removed.
    Gone {
        viewer: ParticipantId,
        reason: ExitReason,
    },
    /// Mirror to home: ask a track's publisher for a keyframe.
    Keyframe { track: TrackId, layer: Layer },
}

/// A worker's ends of the channels to every worker (indexed by worker), and the packets
/// waiting for the next hand-over.
pub(crate) struct Links {
    media: Vec<mpsc::Sender<Vec<Relayed>>>,
    ctl: Vec<mpsc::UnboundedSender<Ctl>>,
    outbox: Vec<Vec<Relayed>>,
}

/// What a worker receives from the others.
pub(crate) struct Inbox {
    pub media: mpsc::Receiver<Vec<Relayed>>,
    pub ctl: mpsc::UnboundedReceiver<Ctl>,
}

/// The channels between `n` workers: worker `i` takes `links[i]` and `inboxes[i]`.
pub(crate) fn links(n: usize) -> (Vec<Links>, Vec<Inbox>) {
    let mut media = Vec::with_capacity(n);
    let mut ctl = Vec::with_capacity(n);
    let mut inboxes = Vec::with_capacity(n);
    for _ in 0..n {
        let (mtx, mrx) = mpsc::channel(RELAY_QUEUE);
        let (ctx, crx) = mpsc::unbounded_channel();
        media.push(mtx);
        ctl.push(ctx);
        inboxes.push(Inbox {
            media: mrx,
            ctl: crx,
        });
    }
    let links = (0..n)
        .map(|_| Links {
            media: media.clone(),
            ctl: ctl.clone(),
            outbox: (0..n).map(|_| Vec::new()).collect(),
        })
        .collect();
    (links, inboxes)
}

/// A room on a worker that is not its home.
#[derive(Debug)]
pub(crate) struct Mirror {
    pub home: usize,
    /// The home's publishing participant of each user whose tracks are mirrored.
    pub publishers: HashMap<UserId, ParticipantId>,
}

/// A viewer of a room held by another worker, as its home knows it.
#[derive(Debug, Clone)]
pub(crate) struct RemoteViewer {
    pub user: UserId,
    pub publisher: UserId,
    pub stream: StreamKind,
}

impl RemoteViewer {
    fn key(&self) -> SessionKey {
        SessionKey::Play {
            publisher: self.publisher.clone(),
            stream: self.stream,
        }
    }
}

/// The workers that hold viewers of `publisher` in a room (at its home).
fn viewing(room: &RoomState, publisher: &UserId) -> Vec<usize> {
    let mut to: Vec<usize> = room
        .remote
        .iter()
        .filter(|(_, v)| v.publisher == *publisher)
        .map(|(pid, _)| worker_of_id(pid.0))
        .collect();
    to.sort_unstable();
    to.dedup();
    to
}

impl Worker {
    fn send_ctl(&self, to: usize, msg: Ctl) {
        if let Some(tx) = self.links.ctl.get(to) {
            // Only fails when that worker has stopped (shutdown): nothing is left to tell.
            let _ = tx.send(msg);
        }
    }

    /// Home: queues a publisher's packet for the workers with viewers of its track.
    pub(crate) fn relay(&mut self, r: &Relayed) {
        let Some(room) = self.rooms.get(&r.slot) else {
            return;
        };
        let Some(to) = room.relay_to.get(&r.track) else {
            return;
        };
        for w in to {
            if let Some(out) = self.links.outbox.get_mut(*w) {
                out.push(r.clone());
            }
        }
    }

    /// Hands what is queued to the other workers, one batch each.
    pub(crate) fn flush_relays(&mut self) {
        for (w, out) in self.links.outbox.iter_mut().enumerate() {
            if out.is_empty() {
                continue;
            }
            let batch = std::mem::take(out);
            let n = batch.len() as u64;
            match self.links.media[w].try_send(batch) {
                Ok(()) => self.counters.packets_relayed += n,
                Err(_) => self.counters.relay_drops += n,
            }
        }
    }

    /// Mirror: packets from a room's home, fanned out to this worker's viewers.
    pub(crate) fn relayed(&mut self, batch: Vec<Relayed>) {
        for r in &batch {
            self.fanout(r);
        }
    }

    /// A keyframe ask for a track of another worker goes to it; returns false when the track
    /// is this worker's own.
    pub(crate) fn ask_home(&self, ask: KeyframeAsk) -> bool {
        let home = worker_of_id(ask.track.0);
        if home == self.index {
            return false;
        }
        self.send_ctl(
            home,
            Ctl::Keyframe {
                track: ask.track,
                layer: ask.layer,
            },
        );
        true
    }

    pub(crate) fn handle_ctl(&mut self, msg: Ctl) {
        match msg {
            Ctl::Tracks {
                slot,
                publisher,
                owner,
                tracks,
            } => self.mirror_tracks(slot, publisher, owner, tracks),
            Ctl::Remove { viewer, reason } => self.remove_peer(viewer, reason),
            Ctl::Gone { viewer, reason } => match self.remote_rooms.remove(&viewer) {
                Some(slot) => self.drop_remote(slot, viewer, reason),
                // Gone before its attach came: the attach is refused.
                None => {
                    self.gone_early.insert(viewer, std::time::Instant::now());
                }
            },
            Ctl::Keyframe { track, layer } => self.ask_keyframe(KeyframeAsk {
                publisher: self.tracks.get(&track).map_or(ParticipantId(0), |t| t.peer),
                track,
                layer,
            }),
        }
    }

    /// Home: what a viewer placed on another worker needs.
    pub(crate) fn describe(
        &self,
        app: hearth_types::SdkAppId,
        room: &hearth_types::RoomKey,
        publisher: &UserId,
        stream: StreamKind,
    ) -> Result<MirrorOf, SfuError> {
        let (slot, simulcast) = self.playable(app, room, publisher, stream)?;
        Ok(MirrorOf {
            slot,
            comm_id: self.rooms[&slot].comm_id.clone(),
            simulcast,
        })
    }

    /// Mirror: admits a WHEP viewer of a room whose home is another worker.
    pub(crate) fn play_mirrored(
        &mut self,
        req: JoinRequest,
        publisher: UserId,
        stream: StreamKind,
        offer: &str,
        of: MirrorOf,
        last: bool,
    ) -> Result<Joined, SfuError> {
        let key = (req.app, req.room.clone());
        if let Some(old) = self.room_index.get(&key).copied() {
            if old != of.slot {
                // A mirror of a call that ended at home while its removals are on the way.
                self.end_mirror(old);
            }
        }
        if !self.rooms.contains_key(&of.slot) {
            self.room_index.insert(key.clone(), of.slot);
            let mut state = RoomState::new(req.app, req.room.clone(), of.comm_id.clone());
            state.mirror = Some(Mirror {
                home: worker_of_id(of.slot.0),
                publishers: HashMap::new(),
            });
            self.rooms.insert(of.slot, state);
        }
        let downlink = if of.simulcast {
            Downlink::Estimated
        } else {
            Downlink::Fixed
        };
        let joined = self.admit(
            req,
            SessionKey::Play { publisher, stream },
            offer,
            OfferDirection::Receives,
            downlink,
            last,
        );
        if joined.is_err() && self.rooms[&of.slot].sessions.users().next().is_none() {
            self.rooms.remove(&of.slot);
            self.room_index.remove(&key);
        }
        joined
    }

    /// Removes every viewer of a mirror (and with the last, the mirror).
    fn end_mirror(&mut self, slot: RoomSlot) {
        let Some(state) = self.rooms.get(&slot) else {
            return;
        };
        let pids: Vec<ParticipantId> = state.sessions.all_sessions().map(|(_, p)| p).collect();
        for pid in pids {
            self.remove_peer(pid, ExitReason::Replaced);
        }
    }

    /// Home: a viewer another worker admitted is present, and receives its publisher's packets.
    pub(crate) fn attach(
        &mut self,
        req: JoinRequest,
        viewer: ParticipantId,
        publisher: UserId,
        stream: StreamKind,
        of: &MirrorOf,
    ) -> Result<(), SfuError> {
        let slot = of.slot;
        if !self.rooms.contains_key(&slot) {
            return Err(SfuError::RoomNotFound);
        }
        if self.gone_early.remove(&viewer).is_some() {
            return Err(SfuError::SessionNotFound);
        }
        let remote = RemoteViewer {
            user: req.user.clone(),
            publisher,
            stream,
        };
        let entered = EventKind::Entered {
            client_ip: req.client_ip,
            device_type: req.device_type,
            sdk_version: req.sdk_version,
        };
        let key = remote.key();
        let publisher = remote.publisher.clone();
        if let Some(room) = self.rooms.get_mut(&slot) {
            room.remote.insert(viewer, remote);
        }
        self.remote_rooms.insert(viewer, slot);
        if let Some(old) = self.add_session(slot, &req.user, key, viewer, entered) {
            self.remove_peer(old, ExitReason::Replaced);
        }
        self.sync_mirrors(slot, &publisher);
        Ok(())
    }

    /// Home: a viewer on another worker is gone; tells that worker when it does not know yet.
    pub(crate) fn remove_remote(&mut self, viewer: ParticipantId, reason: ExitReason) {
        let Some(slot) = self.remote_rooms.remove(&viewer) else {
            return;
        };
        self.send_ctl(worker_of_id(viewer.0), Ctl::Remove { viewer, reason });
        self.drop_remote(slot, viewer, reason);
    }

    fn drop_remote(&mut self, slot: RoomSlot, viewer: ParticipantId, reason: ExitReason) {
        let Some(v) = self
            .rooms
            .get_mut(&slot)
            .and_then(|r| r.remote.remove(&viewer))
        else {
            return;
        };
        let exited = EventKind::Exited { reason };
        self.drop_session(slot, &v.user, &v.key(), viewer, exited);
        self.sync_mirrors(slot, &v.publisher);
    }

    /// Home: tells the workers with viewers of `publisher` what it publishes now, and sets
    /// which workers each track of the room is relayed to.
    pub(crate) fn sync_mirrors(&mut self, slot: RoomSlot, publisher: &UserId) {
        let Some(room) = self.rooms.get(&slot) else {
            return;
        };
        if room.mirror.is_some() || (room.remote.is_empty() && room.relay_to.is_empty()) {
            return;
        }
        let owner = self.publisher_of(slot, publisher);
        let tracks: Vec<(TrackId, MediaKind, StreamKind)> = room
            .core
            .tracks()
            .filter(|(_, t)| Some(t.owner) == owner)
            .map(|(id, t)| (id, t.kind, t.stream))
            .collect();
        for w in &viewing(room, publisher) {
            self.send_ctl(
                *w,
                Ctl::Tracks {
                    slot,
                    publisher: publisher.clone(),
                    owner,
                    tracks: tracks.clone(),
                },
            );
        }
        // Every track of the room to the workers with viewers of its publisher.
        let mut relay_to = rustc_hash::FxHashMap::default();
        for (id, t) in room.core.tracks() {
            let Some(user) = self.peers.get(&t.owner).map(|p| &p.user) else {
                continue;
            };
            let to = viewing(room, user);
            if !to.is_empty() {
                relay_to.insert(id, to);
            }
        }
        if let Some(room) = self.rooms.get_mut(&slot) {
            room.relay_to = relay_to;
        }
    }

    /// Mirror: takes the home's list of a publisher's tracks, ending the subscriptions of
    /// tracks that went and binding viewers to new ones.
    fn mirror_tracks(
        &mut self,
        slot: RoomSlot,
        publisher: UserId,
        owner: Option<ParticipantId>,
        tracks: Vec<(TrackId, MediaKind, StreamKind)>,
    ) {
        let Some(room) = self.rooms.get_mut(&slot) else {
            return;
        };
        let Some(mirror) = room.mirror.as_mut() else {
            return;
        };
        let before = mirror.publishers.get(&publisher).copied();
        match owner {
            Some(o) => mirror.publishers.insert(publisher.clone(), o),
            None => mirror.publishers.remove(&publisher),
        };
        let gone: Vec<TrackId> = room
            .core
            .tracks()
            .filter(|(id, t)| Some(t.owner) == before && !tracks.iter().any(|x| x.0 == *id))
            .map(|(id, _)| id)
            .collect();
        let mut ended = Vec::new();
        for t in gone {
            ended.extend(room.core.remove_track(t));
        }
        if let Some(owner) = owner {
            for (id, kind, stream) in tracks {
                if room.core.track(id).is_none() {
                    room.core.add_track(id, owner, kind, stream);
                }
            }
        }
        self.end_subscriptions(ended);
        self.bind_viewers_of(slot, &publisher);
    }

    /// Home: forgets early departures whose attach never came.
    pub(crate) fn expire_gone_early(&mut self, now: std::time::Instant) {
        self.gone_early
            .retain(|_, at| now.saturating_duration_since(*at) < GONE_EARLY_MEMORY);
    }

    /// Mirror: a viewer's session closed; its home hears it (and ignores it when it removed
    /// the viewer itself).
    pub(crate) fn tell_home_gone(&self, home: usize, viewer: ParticipantId, reason: ExitReason) {
        self.send_ctl(home, Ctl::Gone { viewer, reason });
    }
}
