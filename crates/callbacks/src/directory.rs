//! Who listens to what: per app, the callback key and a URL per event group. Read on every
//! event and every delivery, replaced whole when the operator changes the configuration (no
//! restart, no lock on the readers).

use arc_swap::ArcSwap;
use hearth_types::{RoomKey, SdkAppId};
use std::collections::HashMap;
use std::sync::Arc;

/// An event group: TRTC's `EventGroupId`, and Hearth's own for what TRTC defines none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// 1: rooms created and dismissed, users entering, leaving, switching roles (101–105).
    Room,
    /// 2: users' video, audio and substream starting and stopping (201–206).
    Media,
    /// 3: cloud recording (301–…).
    Recording,
    /// 14: AI transcription (1401 started, 1402 stopped).
    Transcription,
    /// 100 (Hearth's): relay, ingest and AI conversation tasks started (10001), ended (10002),
    /// a relay's CDN push connected or failing (10003).
    Tasks,
    /// TUICallKit's call-status callbacks (`Call.CallbackAfterStartCall`, `…EndCall`): their
    /// own body and URL query, not TRTC's envelope (stored as group 101).
    Calls,
}

impl Group {
    pub const ALL: [Group; 6] = [
        Group::Room,
        Group::Media,
        Group::Recording,
        Group::Transcription,
        Group::Tasks,
        Group::Calls,
    ];

    pub fn id(self) -> u16 {
        match self {
            Group::Room => 1,
            Group::Media => 2,
            Group::Recording => 3,
            Group::Transcription => 14,
            Group::Tasks => 100,
            Group::Calls => 101,
        }
    }

    pub fn from_id(id: u16) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.id() == id)
    }

    /// The group's name in the configuration (`room`, `media`, …).
    pub fn name(self) -> &'static str {
        match self {
            Group::Room => "room",
            Group::Media => "media",
            Group::Recording => "recording",
            Group::Transcription => "transcription",
            Group::Tasks => "tasks",
            Group::Calls => "calls",
        }
    }
}

/// One app's callbacks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppCallbacks {
    /// The key of `Sign` (TRTC: up to 32 letters and digits); empty: no signature.
    pub key: String,
    /// The URL of each group the app listens to.
    pub urls: HashMap<Group, String>,
}

/// Every app's callbacks, swapped whole.
#[derive(Clone, Default)]
pub struct Directory(Arc<ArcSwap<HashMap<SdkAppId, AppCallbacks>>>);

impl Directory {
    pub fn new(apps: HashMap<SdkAppId, AppCallbacks>) -> Self {
        Directory(Arc::new(ArcSwap::from_pointee(apps)))
    }

    /// The operator changed the configuration: from now on, events and deliveries use this.
    pub fn replace(&self, apps: HashMap<SdkAppId, AppCallbacks>) {
        self.0.store(Arc::new(apps));
    }

    /// Whether `app` listens to `group` (an event of it is worth queueing).
    pub fn wants(&self, app: SdkAppId, group: Group) -> bool {
        self.0
            .load()
            .get(&app)
            .is_some_and(|a| a.urls.contains_key(&group))
    }

    /// Where an event of `group` of `app` goes now, and the key it is signed with.
    pub fn target(&self, app: SdkAppId, group: Group) -> Option<(String, String)> {
        let apps = self.0.load();
        let a = apps.get(&app)?;
        Some((a.urls.get(&group)?.clone(), a.key.clone()))
    }
}

/// TUICallKit's callback commands, by the event type they are queued with.
pub fn call_command(event_type: u16) -> &'static str {
    match event_type {
        1 => "Call.CallbackAfterStartCall",
        _ => "Call.CallbackAfterEndCall",
    }
}

/// `RoomId` in a callback: a number for a numeric room, a string for a string room.
pub fn room_id(room: &RoomKey) -> serde_json::Value {
    match room {
        RoomKey::Num(n) => serde_json::json!(n),
        RoomKey::Str(s) => serde_json::json!(s),
    }
}
