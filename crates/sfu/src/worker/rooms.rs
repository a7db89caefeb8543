//! Room bookkeeping on a worker: the call (CommId) of each live room, who is present with how
//! many sessions, and the domain events of entering, leaving and calls starting and ending.

use super::peer::SessionKey;
use super::{now_ms, Worker};
use crate::client::Role;
use crate::command::{RoomUser, SfuError};
use crate::core::{ParticipantId, Presence, Room, StreamKind, TrackId};
use crate::events::{DomainEvent, EventKind};
use hearth_types::{CommId, RoomKey, SdkAppId, UnixSecs, UserId};
use rustc_hash::FxHashMap;

/// A worker-local number for a live room, so the packet path looks rooms up by integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RoomSlot(pub u64);

pub(crate) struct RoomState {
    pub app: SdkAppId,
    pub room: RoomKey,
    pub core: Room,
    pub comm_id: CommId,
    /// Sessions per user; a user is present while they have at least one.
    pub sessions: Presence<SessionKey>,
    /// Users the room's clients have been told about (`user_entered` sent).
    pub announced: std::collections::HashSet<UserId>,
    /// Users an operator blocked, and what of them.
    pub blocked: std::collections::HashMap<UserId, super::moderation::Blocked>,
    /// Set when this is a mirror of a room whose home is another worker: presence and calls
    /// are the home's, this worker only holds more viewers (`mirror.rs`).
    pub mirror: Option<super::mirror::Mirror>,
    /// Home: viewers of the room that other workers hold.
    pub remote: FxHashMap<ParticipantId, super::mirror::RemoteViewer>,
    /// Home: the workers each track's packets are handed to.
    pub relay_to: FxHashMap<TrackId, Vec<usize>>,
}

impl RoomState {
    pub fn new(app: SdkAppId, room: RoomKey, comm_id: CommId) -> Self {
        RoomState {
            app,
            room,
            core: Room::default(),
            comm_id,
            sessions: Presence::default(),
            announced: Default::default(),
            blocked: Default::default(),
            mirror: None,
            remote: FxHashMap::default(),
            relay_to: FxHashMap::default(),
        }
    }
}

impl Worker {
    /// Emits an event without waiting: a full queue drops it and counts the drop.
    pub(crate) fn emit(
        &mut self,
        app: SdkAppId,
        room: &RoomKey,
        comm_id: &CommId,
        user: &UserId,
        kind: EventKind,
    ) {
        let e = DomainEvent {
            at_ms: now_ms(),
            app,
            room: room.clone(),
            comm_id: comm_id.clone(),
            user: user.clone(),
            kind,
        };
        if self.events.try_send(e).is_err() {
            self.events_dropped += 1;
            if self.events_dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = self.events_dropped,
                    "domain event queue full; events dropped"
                );
            }
        }
    }

    /// The slot of a room, created (with a new call) if needed.
    pub(crate) fn room_slot(
        &mut self,
        app: SdkAppId,
        room: &RoomKey,
        creator: &UserId,
    ) -> RoomSlot {
        let key = (app, room.clone());
        if let Some(slot) = self.room_index.get(&key) {
            return *slot;
        }
        let slot = RoomSlot(self.next_participant().0);
        let comm_id = CommId::new(app, room, UnixSecs::now());
        self.emit(
            app,
            room,
            &comm_id,
            creator,
            EventKind::CallStarted {
                creator: creator.clone(),
            },
        );
        self.room_index.insert(key, slot);
        self.rooms
            .insert(slot, RoomState::new(app, room.clone(), comm_id));
        slot
    }

    /// The user who publishes through `owner` in a room: its peer here, or in a mirror, as
    /// the home said.
    pub(crate) fn owner_user(&self, slot: RoomSlot, owner: ParticipantId) -> Option<&UserId> {
        match self.rooms.get(&slot).and_then(|r| r.mirror.as_ref()) {
            Some(m) => m.user_of(owner),
            None => self.peers.get(&owner).map(|p| &p.user),
        }
    }

    pub(crate) fn find_room(&self, app: SdkAppId, room: &RoomKey) -> Option<RoomSlot> {
        self.room_index.get(&(app, room.clone())).copied()
    }

    /// Registers a session; returns the older session it replaces, if any.
    pub(crate) fn add_session(
        &mut self,
        slot: RoomSlot,
        user: &UserId,
        key: SessionKey,
        pid: ParticipantId,
        entered: EventKind,
    ) -> Option<ParticipantId> {
        let state = self
            .rooms
            .get_mut(&slot)
            .expect("the caller created the room");
        let (app, room, comm_id) = (state.app, state.room.clone(), state.comm_id.clone());
        let added = state.sessions.add(user, key, pid);
        let home = state.mirror.is_none();
        // Counted where the presence lives; a replaced session hands its place over.
        if home && added.replaced.is_none() {
            self.quota.hold(app, user);
        }
        if added.entered && home {
            self.emit(app, &room, &comm_id, user, entered);
        }
        added.replaced
    }

    /// Unregisters a session; emits Exited when it was the user's last, CallEnded when the
    /// room empties.
    pub(crate) fn drop_session(
        &mut self,
        slot: RoomSlot,
        user: &UserId,
        key: &SessionKey,
        pid: ParticipantId,
        exited: EventKind,
    ) {
        let Some(state) = self.rooms.get_mut(&slot) else {
            return;
        };
        let (app, room, comm_id) = (state.app, state.room.clone(), state.comm_id.clone());
        let removed = state.sessions.remove(user, key, pid);
        let (last, empty) = (removed.exited, removed.room_empty);
        if removed.removed && state.mirror.is_none() {
            self.quota.release(app, user);
        }
        if let Some(home) = state.mirror.as_ref().map(|m| m.home) {
            // Presence is the home's: it hears of the viewer, and the mirror goes with its last.
            let reason = match exited {
                EventKind::Exited { reason } => reason,
                _ => crate::events::ExitReason::Left,
            };
            if empty {
                self.rooms.remove(&slot);
                self.room_index.remove(&(app, room));
            }
            self.tell_home_gone(home, pid, reason);
            return;
        }
        if last {
            self.emit(app, &room, &comm_id, user, exited);
        }
        if empty {
            self.rooms.remove(&slot);
            self.room_index.remove(&(app, room.clone()));
            self.emit(app, &room, &comm_id, user, EventKind::CallEnded);
        }
    }

    pub(crate) fn room_users(
        &self,
        app: SdkAppId,
        room: &RoomKey,
    ) -> Result<Vec<RoomUser>, SfuError> {
        let slot = self.find_room(app, room).ok_or(SfuError::RoomNotFound)?;
        let state = &self.rooms[&slot];
        let mut users: Vec<RoomUser> = state
            .sessions
            .users()
            .map(|(user, sessions)| {
                let client = sessions
                    .get(&SessionKey::Client)
                    .and_then(|cid| Some((*cid, self.clients.get(cid)?)));
                // Who owns the user's tracks: its WHIP session, or its client (and the client's
                // publish connection).
                let owners: Vec<ParticipantId> = sessions
                    .get(&SessionKey::Publish)
                    .copied()
                    .into_iter()
                    .chain(client.iter().map(|(cid, _)| *cid))
                    .chain(client.iter().filter_map(|(_, c)| c.publish_peer))
                    .collect();
                let has = |kind: crate::core::MediaKind, stream: StreamKind| {
                    state.core.tracks().any(|(_, t)| {
                        owners.contains(&t.owner) && t.kind == kind && t.stream == stream
                    })
                };
                let anchor = match client {
                    Some((_, c)) => c.role() == Role::Anchor,
                    None => sessions.contains_key(&SessionKey::Publish),
                };
                RoomUser {
                    user: user.clone(),
                    sessions: sessions.len(),
                    anchor,
                    audio: has(crate::core::MediaKind::Audio, StreamKind::Main),
                    video: has(crate::core::MediaKind::Video, StreamKind::Main),
                    sub_video: has(crate::core::MediaKind::Video, StreamKind::Sub),
                }
            })
            .collect();
        users.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(users)
    }
}
