//! The rooms a mix takes streams from: its own, where the robot entered first, and any other a
//! custom layout or audio list names (a PK mix). The robot enters each with the task's UserId
//! and UserSig. Their events arrive on one channel, users of other rooms renamed to member ids
//! (`hearth_media_proto::member_id`), and requests go to the room a member id names.

use anyhow::Result;
use hearth_client::{Client, Event as RoomEvent, JoinParams, Role, RoomId, Stream, TrackKey};
use hearth_media_proto::{member_id, split_member, Join, RoomRef};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Events waiting for the task at most (frames beyond are dropped, as in the client).
const QUEUE: usize = 4096;

/// How a robot enters `room` with a task's identity (its UserId, UserSig, PrivateMapKey).
pub fn join_params(j: &Join, room: &RoomRef) -> JoinParams {
    JoinParams {
        url: j.ws_url.clone(),
        sdk_app_id: j.sdk_app_id,
        room: match room {
            RoomRef::Num(n) => RoomId::Num(*n),
            RoomRef::Str(s) => RoomId::Str(s.clone()),
        },
        user_id: j.user_id.clone(),
        user_sig: j.user_sig.clone(),
        private_map_key: j.private_map_key.clone(),
        role: Role::Anchor,
        bot: true,
    }
}

/// Exits the room and waits (briefly) until the exit went out, so that the room sees the
/// robot leave now rather than when its socket times out after the process is gone.
pub async fn leave(client: &Client, events: &mut mpsc::Receiver<hearth_client::Event>) {
    client.exit();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while let Some(ev) = events.recv().await {
            if matches!(ev, hearth_client::Event::Closed { .. }) {
                break;
            }
        }
    })
    .await;
}

/// Where entries into other rooms are reported: (room key, the client or why not).
pub type Entries = mpsc::UnboundedReceiver<(String, Result<Client, String>)>;

pub struct Rooms {
    main: Client,
    join: Join,
    /// Other rooms by key: their client once the robot is in.
    others: HashMap<String, Option<Client>>,
    tx: mpsc::Sender<RoomEvent>,
    entered: mpsc::UnboundedSender<(String, Result<Client, String>)>,
}

impl Rooms {
    /// Takes over the main room's events; returns the merged channel and where entries into
    /// other rooms are reported (to hand to [`Rooms::entered`]).
    pub fn new(
        main: Client,
        mut main_events: mpsc::Receiver<RoomEvent>,
        join: Join,
    ) -> (Self, mpsc::Receiver<RoomEvent>, Entries) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (entered_tx, entered_rx) = mpsc::unbounded_channel();
        let fwd = tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = main_events.recv().await {
                if fwd.send(ev).await.is_err() {
                    break;
                }
            }
        });
        (
            Rooms {
                main,
                join,
                others: HashMap::new(),
                tx,
                entered: entered_tx,
            },
            rx,
            entered_rx,
        )
    }

    /// The room key of a member id, if it names another room than the task's.
    fn other(&self, id: &str) -> Option<String> {
        let (_, room) = split_member(id);
        room.filter(|r| *r != self.join.room.key())
            .map(str::to_owned)
    }

    /// A member id as the task's room writes it (a member of the task's own room is its plain
    /// user id).
    pub fn normalize(&self, id: &str) -> String {
        match split_member(id) {
            (u, Some(r)) if r == self.join.room.key() => u.to_owned(),
            _ => id.to_owned(),
        }
    }

    /// Enters the room a member id names, if not in it yet.
    pub fn ensure(&mut self, id: &str) {
        let Some(key) = self.other(id) else { return };
        if self.others.contains_key(&key) {
            return;
        }
        let Some(room) = RoomRef::from_key(&key) else {
            return;
        };
        self.others.insert(key.clone(), None);
        // A PrivateMapKey is for the task's own room.
        let mut params = join_params(&self.join, &room);
        params.private_map_key = None;
        let tx = self.tx.clone();
        let entered = self.entered.clone();
        tokio::spawn(async move {
            match hearth_client::join(params).await {
                Ok((client, rx)) => {
                    let _ = entered.send((key.clone(), Ok(client)));
                    forward(rx, tx, room).await;
                }
                Err(e) => {
                    let _ = entered.send((key, Err(format!("{e:#}"))));
                }
            }
        });
    }

    /// The robot entered another room (or could not).
    pub fn entered(&mut self, key: String, r: Result<Client, String>) -> Option<String> {
        match r {
            Ok(c) => {
                self.others.insert(key, Some(c));
                None
            }
            Err(e) => Some(format!("the robot could not enter room {key}: {e}")),
        }
    }

    fn client_for(&self, id: &str) -> Option<(&Client, String)> {
        match self.other(id) {
            None => Some((&self.main, split_member(id).0.to_owned())),
            Some(k) => {
                let c = self.others.get(&k)?.as_ref()?;
                Some((c, split_member(id).0.to_owned()))
            }
        }
    }

    pub fn subscribe(&self, id: &str, stream: Stream, on: bool) {
        if let Some((c, user)) = self.client_for(id) {
            c.subscribe(&user, stream, on);
        }
    }

    pub fn request_keyframe(&self, track: TrackKey) {
        if let Some((c, user)) = self.client_for(&track.user) {
            c.request_keyframe(TrackKey {
                user: user.into(),
                ..track
            });
        }
    }

    pub fn exit(&self) {
        for c in self.others.values().flatten() {
            c.exit();
        }
    }
}

/// Another room's events, its users renamed to member ids; its session ending does not end the
/// task (the task's own room does).
async fn forward(mut rx: mpsc::Receiver<RoomEvent>, tx: mpsc::Sender<RoomEvent>, room: RoomRef) {
    // One renamed name per user, made once: frames carry it without allocating.
    let mut names: HashMap<Arc<str>, Arc<str>> = HashMap::new();
    let mut rename = |u: &Arc<str>| -> Arc<str> {
        names
            .entry(u.clone())
            .or_insert_with(|| member_id(u, &room).into())
            .clone()
    };
    while let Some(ev) = rx.recv().await {
        let ev = match ev {
            RoomEvent::UserEntered(mut u) => {
                u.userid = member_id(&u.userid, &room);
                RoomEvent::UserEntered(u)
            }
            RoomEvent::UserUpdated(mut u) => {
                u.userid = member_id(&u.userid, &room);
                RoomEvent::UserUpdated(u)
            }
            RoomEvent::UserExited(u) => RoomEvent::UserExited(member_id(&u, &room)),
            RoomEvent::TrackAdded(k) => RoomEvent::TrackAdded(TrackKey {
                user: rename(&k.user),
                ..k
            }),
            RoomEvent::TrackRemoved(k) => RoomEvent::TrackRemoved(TrackKey {
                user: rename(&k.user),
                ..k
            }),
            RoomEvent::Frame(mut f) => {
                f.track.user = rename(&f.track.user);
                RoomEvent::Frame(f)
            }
            RoomEvent::Closed { reason, message } => {
                tracing::warn!(room = %room.key(), %reason, %message, "left another room of the mix");
                break;
            }
            other => other,
        };
        if tx.send(ev).await.is_err() {
            break;
        }
    }
}
