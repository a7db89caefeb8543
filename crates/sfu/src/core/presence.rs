//! Who is in a room: each user's sessions by kind. A user is present while they have at least
//! one session; a second session of the same kind replaces the first (TRTC: entering twice
//! replaces the older entry).

use super::ParticipantId;
use hearth_types::UserId;
use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug)]
pub struct Presence<K> {
    users: HashMap<UserId, HashMap<K, ParticipantId>>,
}

impl<K> Default for Presence<K> {
    fn default() -> Self {
        Presence {
            users: HashMap::new(),
        }
    }
}

/// What adding a session changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// The user was not present before: they entered.
    pub entered: bool,
    /// The older session of the same kind that this one replaces.
    pub replaced: Option<ParticipantId>,
}

/// What removing a session changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// That session was registered (not replaced since): it is gone now.
    pub removed: bool,
    /// That was the user's last session: they exited.
    pub exited: bool,
    /// Nobody is left in the room.
    pub room_empty: bool,
}

impl<K: Eq + Hash + Clone> Presence<K> {
    pub fn add(&mut self, user: &UserId, key: K, pid: ParticipantId) -> Added {
        let sessions = self.users.entry(user.clone()).or_default();
        let entered = sessions.is_empty();
        let replaced = sessions.insert(key, pid).filter(|old| *old != pid);
        Added { entered, replaced }
    }

    /// Removes `pid` if it is still the user's session of that kind (a replaced session's late
    /// removal changes nothing).
    pub fn remove(&mut self, user: &UserId, key: &K, pid: ParticipantId) -> Removed {
        let mut exited = false;
        let mut removed = false;
        if let Some(sessions) = self.users.get_mut(user) {
            if sessions.get(key) == Some(&pid) {
                removed = true;
                sessions.remove(key);
                if sessions.is_empty() {
                    self.users.remove(user);
                    exited = true;
                }
            }
        }
        Removed {
            removed,
            exited,
            room_empty: self.users.is_empty(),
        }
    }

    pub fn session(&self, user: &UserId, key: &K) -> Option<ParticipantId> {
        self.users.get(user)?.get(key).copied()
    }

    pub fn users(&self) -> impl Iterator<Item = (&UserId, &HashMap<K, ParticipantId>)> {
        self.users.iter()
    }

    pub fn all_sessions(&self) -> impl Iterator<Item = (&K, ParticipantId)> + '_ {
        self.users
            .values()
            .flat_map(|s| s.iter().map(|(k, p)| (k, *p)))
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}
