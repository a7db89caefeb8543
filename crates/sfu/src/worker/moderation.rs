//! What operators do to users in a live room (the API's RemoveUser and SetUserBlocked): remove
//! users with a notice, and block or unblock a user's audio and video.

use super::peer::SessionKey;
use super::Worker;
use crate::client::{ClientNotice, NoticeReason};

use crate::command::SfuError;
use crate::core::{Layer, MediaKind as CoreKind, ParticipantId};
use crate::events::{EventKind, ExitReason};
use hearth_types::{RoomKey, SdkAppId, UserId};
use str0m::media::MediaKind;

/// Which of a user's media an operator stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Blocked {
    pub audio: bool,
    pub video: bool,
}

impl Blocked {
    pub fn any(self) -> bool {
        self.audio || self.video
    }

    pub fn covers(self, kind: MediaKind) -> bool {
        match kind {
            MediaKind::Audio => self.audio,
            MediaKind::Video => self.video,
        }
    }
}

impl Worker {
    /// Removes each listed user that is in the room; returns those that were.
    pub(crate) fn kick(
        &mut self,
        app: SdkAppId,
        room: &RoomKey,
        users: &[UserId],
    ) -> Result<Vec<UserId>, SfuError> {
        let slot = self.find_room(app, room).ok_or(SfuError::RoomNotFound)?;
        let mut removed = Vec::new();
        for user in users {
            let Some(state) = self.rooms.get(&slot) else {
                break;
            };
            let sessions: Vec<(SessionKey, ParticipantId)> = state
                .sessions
                .users()
                .filter(|(u, _)| *u == user)
                .flat_map(|(_, s)| s.iter().map(|(k, p)| (k.clone(), *p)))
                .collect();
            if sessions.is_empty() {
                continue;
            }
            for (key, pid) in sessions {
                if key == SessionKey::Client && self.clients.contains_key(&pid) {
                    self.end_client(pid, ExitReason::Kicked, Some(NoticeReason::Kicked));
                } else {
                    self.remove_peer(pid, ExitReason::Kicked);
                }
            }
            removed.push(user.clone());
        }
        Ok(removed)
    }

    /// Blocks (or with both false, unblocks) a user's audio and video in a room: nothing of the
    /// blocked kinds is forwarded, the user may not publish it, the user is told; on unblock the
    /// user's video sends a keyframe at once.
    pub(crate) fn block(
        &mut self,
        app: SdkAppId,
        room: &RoomKey,
        user: &UserId,
        blocked: Blocked,
    ) -> Result<(), SfuError> {
        let slot = self.find_room(app, room).ok_or(SfuError::RoomNotFound)?;
        let state = self.rooms.get_mut(&slot).ok_or(SfuError::RoomNotFound)?;
        if !state.sessions.users().any(|(u, _)| u == user) {
            return Err(SfuError::UserNotFound);
        }
        let was = state.blocked.get(user).copied().unwrap_or_default();
        if blocked.any() {
            state.blocked.insert(user.clone(), blocked);
        } else {
            state.blocked.remove(user);
        }
        let owned: Vec<ParticipantId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.slot == slot && p.user == *user)
            .map(|(id, _)| *id)
            .collect();
        let mut unblocked_video = Vec::new();
        for pid in &owned {
            let Some(p) = self.peers.get_mut(pid) else {
                continue;
            };
            for inbound in p.inbound.values_mut() {
                inbound.blocked = blocked.covers(inbound.kind);
                if inbound.kind == MediaKind::Video && was.video && !blocked.video {
                    unblocked_video.push(inbound.track);
                }
            }
        }
        for track in unblocked_video {
            let Some(t) = self.rooms.get(&slot).and_then(|r| r.core.track(track)) else {
                continue;
            };
            let (publisher, top) = (t.owner, t.top);
            debug_assert_eq!(t.kind, CoreKind::Video);
            for layer in 0..=top.0 {
                self.ask_keyframe(crate::core::KeyframeAsk {
                    publisher,
                    track,
                    layer: Layer(layer),
                });
            }
        }
        if let Some(cid) = self.rooms[&slot]
            .sessions
            .session(user, &SessionKey::Client)
        {
            self.tell(
                cid,
                ClientNotice::Blocked {
                    audio: blocked.audio,
                    video: blocked.video,
                },
            );
        }
        let events = [
            (
                was.audio,
                blocked.audio,
                EventKind::AudioOff,
                EventKind::AudioOn,
            ),
            (
                was.video,
                blocked.video,
                EventKind::VideoOff,
                EventKind::VideoOn,
            ),
        ];
        for (before, after, off, on) in events {
            if before != after {
                self.emit_for(slot, user, if after { off } else { on });
            }
        }
        self.broadcast_user(slot, user);
        Ok(())
    }

    /// What of a user is blocked in a room.
    pub(crate) fn blocked(&self, slot: super::rooms::RoomSlot, user: &UserId) -> Blocked {
        self.rooms
            .get(&slot)
            .and_then(|r| r.blocked.get(user).copied())
            .unwrap_or_default()
    }
}
