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
use crate::client::{ClientEntered, ClientNotice, NoticeReason, Role, RosterUser};
use crate::command::{JoinRequest, Joined, SfuError};
use crate::core::{KeyframeAsk, Layer, MediaKind, ParticipantId, StreamKind, TrackId};
use crate::events::{EventKind, ExitReason};
use crate::offer::OfferDirection;
use hearth_types::{CommId, UserId};
use std::collections::HashMap;
use tokio::sync::mpsc;

/// Batches of packets queued towards one worker before more are dropped (and counted).
const RELAY_QUEUE: usize = 1024;

/// The longest a publisher's packet may take from the home's read to a mirror's fan-out.
const RELAY_MAX_AGE: std::time::Duration = std::time::Duration::from_millis(500);

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
    /// Who the room's clients see (for a protocol client placed on another worker).
    pub(crate) roster: Vec<RosterUser>,
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
    /// Home to mirror: what the room's clients are told of a user (all but `user` hear it).
    Notice {
        slot: RoomSlot,
        user: UserId,
        notice: ClientNotice,
    },
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
    /// Who the room's clients see, as the home last said.
    pub roster: std::collections::BTreeMap<UserId, RosterUser>,
}

impl Mirror {
    /// The user whose publishing participant `owner` is.
    pub fn user_of(&self, owner: ParticipantId) -> Option<&UserId> {
        self.publishers
            .iter()
            .find(|(_, o)| **o == owner)
            .map(|(u, _)| u)
    }
}

/// A session of a room held by another worker, as its home knows it: a WHEP viewer of one
/// publisher's stream, or (no publisher) a protocol client of the audience.
#[derive(Debug, Clone)]
pub(crate) struct RemoteViewer {
    pub user: UserId,
    pub publisher: Option<UserId>,
    pub stream: StreamKind,
}

impl RemoteViewer {
    fn key(&self) -> SessionKey {
        match &self.publisher {
            Some(p) => SessionKey::Play {
                publisher: p.clone(),
                stream: self.stream,
            },
            None => SessionKey::Client,
        }
    }

    /// Whether this session receives what `publisher` publishes (a client may receive anyone).
    fn receives(&self, publisher: &UserId) -> bool {
        self.publisher.as_ref().is_none_or(|p| p == publisher)
    }
}

/// The workers that hold sessions receiving `publisher` in a room (at its home).
fn viewing(room: &RoomState, publisher: &UserId) -> Vec<usize> {
    holding(room, |v| v.receives(publisher))
}

/// The workers that hold sessions of a room (at its home) for which `pred` holds.
fn holding(room: &RoomState, pred: impl Fn(&RemoteViewer) -> bool) -> Vec<usize> {
    let mut to: Vec<usize> = room
        .remote
        .iter()
        .filter(|(_, v)| pred(v))
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

    /// Mirror: packets from a room's home, fanned out to this worker's viewers. A packet that
    /// waited longer than [`RELAY_MAX_AGE`] since the home read it is dropped (this worker fell
    /// behind: its CPU was taken, or it stalled), and the next fresh packet of its layer makes
    /// the lines resume at a keyframe, so its viewers skip what is stale instead of playing it
    /// late.
    pub(crate) fn relayed(&mut self, batch: Vec<Relayed>) {
        let now = std::time::Instant::now();
        for mut r in batch {
            let key = (r.track, r.layer);
            if now.saturating_duration_since(r.wallclock) > RELAY_MAX_AGE {
                self.counters.relay_stale += 1;
                self.stale_layers.insert(key);
                continue;
            }
            if !self.stale_layers.is_empty() && self.stale_layers.remove(&key) {
                r.resumed = true;
            }
            self.fanout(&r);
        }
    }

    /// A keyframe ask for a track of another worker goes to it (one of this worker's own has
    /// no publisher here any more, and is dropped).
    pub(crate) fn ask_home(&self, ask: KeyframeAsk) {
        let home = worker_of_id(ask.track.0);
        if home == self.index {
            return;
        }
        self.send_ctl(
            home,
            Ctl::Keyframe {
                track: ask.track,
                layer: ask.layer,
            },
        );
    }

    pub(crate) fn handle_ctl(&mut self, msg: Ctl) {
        match msg {
            Ctl::Tracks {
                slot,
                publisher,
                owner,
                tracks,
            } => self.mirror_tracks(slot, publisher, owner, tracks),
            Ctl::Remove { viewer, reason } => {
                if self.clients.contains_key(&viewer) {
                    let notice = match reason {
                        ExitReason::Kicked => Some(NoticeReason::Kicked),
                        ExitReason::RoomDismissed => Some(NoticeReason::RoomDismissed),
                        ExitReason::Replaced => Some(NoticeReason::Replaced),
                        _ => None,
                    };
                    self.end_client(viewer, reason, notice);
                } else {
                    self.remove_peer(viewer, reason);
                }
            }
            Ctl::Notice { slot, user, notice } => self.mirror_notice(slot, user, notice),
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
            roster: Vec::new(),
        })
    }

    /// Home: what a protocol client placed on another worker needs: the room and its roster.
    pub(crate) fn describe_room(
        &self,
        app: hearth_types::SdkAppId,
        room: &hearth_types::RoomKey,
    ) -> Result<MirrorOf, SfuError> {
        let slot = self.find_room(app, room).ok_or(SfuError::RoomNotFound)?;
        Ok(MirrorOf {
            slot,
            comm_id: self.rooms[&slot].comm_id.clone(),
            simulcast: true,
            roster: self.roster(slot, None),
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
        self.mirror_room(&req, &of);
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
        if joined.is_err() {
            self.drop_empty_mirror(&of);
        }
        joined
    }

    /// Mirror: the room of `of`, made if needed, with the roster it brings.
    fn mirror_room(&mut self, req: &JoinRequest, of: &MirrorOf) {
        let key = (req.app, req.room.clone());
        if let Some(old) = self.room_index.get(&key).copied() {
            if old != of.slot {
                // A mirror of a call that ended at home while its removals are on the way.
                self.end_mirror(old);
            }
        }
        if !self.rooms.contains_key(&of.slot) {
            self.room_index.insert(key, of.slot);
            let mut state = RoomState::new(req.app, req.room.clone(), of.comm_id.clone());
            state.mirror = Some(Mirror {
                home: worker_of_id(of.slot.0),
                publishers: HashMap::new(),
                roster: Default::default(),
            });
            self.rooms.insert(of.slot, state);
        }
        if !of.roster.is_empty() {
            if let Some(m) = self.rooms.get_mut(&of.slot).and_then(|r| r.mirror.as_mut()) {
                m.roster = of
                    .roster
                    .iter()
                    .map(|u| (u.user.clone(), u.clone()))
                    .collect();
            }
        }
    }

    /// Mirror: removes a mirror that a refused join left without sessions.
    fn drop_empty_mirror(&mut self, of: &MirrorOf) {
        let empty = self
            .rooms
            .get(&of.slot)
            .is_some_and(|r| r.mirror.is_some() && r.sessions.users().next().is_none());
        if empty {
            if let Some(r) = self.rooms.remove(&of.slot) {
                self.room_index.remove(&(r.app, r.room));
            }
        }
    }

    /// Mirror: a protocol client of the audience, in a room whose home is another worker.
    pub(crate) fn enter_mirrored(
        &mut self,
        req: JoinRequest,
        autosubscribe: bool,
        notify: mpsc::Sender<ClientNotice>,
        of: MirrorOf,
        last: bool,
    ) -> Result<ClientEntered, SfuError> {
        self.mirror_room(&req, &of);
        let entered = self.client_enter(req, Role::Audience, autosubscribe, notify, last);
        if entered.is_err() {
            self.drop_empty_mirror(&of);
        }
        entered
    }

    /// Mirror: a notice of the home for the clients here; the roster copy follows it.
    fn mirror_notice(&mut self, slot: RoomSlot, user: UserId, notice: ClientNotice) {
        let Some(m) = self.rooms.get_mut(&slot).and_then(|r| r.mirror.as_mut()) else {
            return;
        };
        match &notice {
            ClientNotice::UserEntered(r) | ClientNotice::UserUpdated(r) => {
                m.roster.insert(r.user.clone(), r.clone());
            }
            ClientNotice::UserExited(u) => {
                m.roster.remove(u);
            }
            _ => {}
        }
        self.send_room(slot, &user, &notice);
    }

    /// Home: what the room's clients are told goes to the workers with clients of the room.
    pub(crate) fn notify_mirrors(&self, slot: RoomSlot, user: &UserId, notice: &ClientNotice) {
        let Some(room) = self.rooms.get(&slot) else {
            return;
        };
        for w in holding(room, |v| v.publisher.is_none()) {
            self.send_ctl(
                w,
                Ctl::Notice {
                    slot,
                    user: user.clone(),
                    notice: notice.clone(),
                },
            );
        }
    }

    /// Removes every viewer of a mirror (and with the last, the mirror).
    fn end_mirror(&mut self, slot: RoomSlot) {
        let Some(state) = self.rooms.get(&slot) else {
            return;
        };
        let pids: Vec<ParticipantId> = state.sessions.all_sessions().map(|(_, p)| p).collect();
        for pid in pids {
            if self.clients.contains_key(&pid) {
                self.end_client(pid, ExitReason::Replaced, Some(NoticeReason::Replaced));
            } else {
                self.remove_peer(pid, ExitReason::Replaced);
            }
        }
    }

    /// Home: a viewer another worker admitted is present, and receives its publisher's packets.
    pub(crate) fn attach(
        &mut self,
        req: JoinRequest,
        viewer: ParticipantId,
        publisher: Option<UserId>,
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
            anchor: false,
            bot: false,
        };
        let key = remote.key();
        let publisher = remote.publisher.clone();
        if let Some(room) = self.rooms.get_mut(&slot) {
            room.remote.insert(viewer, remote);
        }
        self.remote_rooms.insert(viewer, slot);
        if let Some(old) = self.add_session(slot, &req.user, key, viewer, entered) {
            if self.clients.contains_key(&old) {
                self.end_client(old, ExitReason::Replaced, Some(NoticeReason::Replaced));
            } else {
                self.remove_peer(old, ExitReason::Replaced);
            }
        }
        match publisher {
            Some(p) => self.sync_mirrors(slot, &p),
            // A client may receive every publisher of the room.
            None => {
                for user in self.publishing_users(slot) {
                    self.sync_mirrors(slot, &user);
                }
            }
        }
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
        let publishers = match v.publisher {
            Some(p) => vec![p],
            None => self.publishing_users(slot),
        };
        for p in publishers {
            self.sync_mirrors(slot, &p);
        }
    }

    /// Home: the users that publish a track in a room.
    fn publishing_users(&self, slot: RoomSlot) -> Vec<UserId> {
        let Some(room) = self.rooms.get(&slot) else {
            return Vec::new();
        };
        let mut users: Vec<UserId> = room
            .core
            .tracks()
            .filter_map(|(_, t)| self.peers.get(&t.owner).map(|p| p.user.clone()))
            .collect();
        users.sort();
        users.dedup();
        users
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
        self.renegotiate_room(slot);
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
