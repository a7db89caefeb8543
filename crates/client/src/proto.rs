//! The JSON messages of protocol v1 as a client sends and reads them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoomId {
    Num(u32),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Anchor,
    Audience,
}

/// A roster entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct User {
    pub userid: String,
    #[serde(default)]
    pub audio: bool,
    #[serde(default)]
    pub video: bool,
    #[serde(default)]
    pub sub: bool,
    #[serde(default)]
    pub audio_muted: bool,
    #[serde(default)]
    pub video_muted: bool,
    /// A media bot of Hearth (recording, relay, …).
    #[serde(default)]
    pub bot: bool,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Out<'a> {
    Enter {
        v: u32,
        sdkappid: u32,
        userid: &'a str,
        usersig: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        roomid: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        strroomid: Option<&'a str>,
        role: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        privatemapkey: Option<&'a str>,
        autosubscribe: bool,
        bot: bool,
    },
    Exit {},
    Ping {},
    Subscribe {
        userid: &'a str,
        stream: &'static str,
        quality: &'static str,
    },
    Unsubscribe {
        userid: &'a str,
        stream: &'static str,
    },
    Answer {
        sdp: &'a str,
    },
    Publish {
        sdp: &'a str,
        tracks: Vec<PublishTrack<'a>>,
    },
    Custom {
        cmdid: u8,
        data: &'a str,
    },
}

#[derive(Debug, Serialize)]
pub(crate) struct PublishTrack<'a> {
    pub mid: &'a str,
    pub source: &'static str,
}

#[derive(Debug, Deserialize)]
pub(crate) struct OfferTrack {
    pub mid: String,
    pub userid: String,
    pub stream: String,
    pub kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum In {
    Entered {
        #[allow(dead_code)]
        session: String,
        roster: Vec<User>,
    },
    Exited {},
    Offer {
        sdp: String,
        tracks: Vec<OfferTrack>,
    },
    UserEntered {
        user: User,
    },
    UserExited {
        userid: String,
    },
    UserUpdated {
        user: User,
    },
    Notice {
        reason: String,
        message: String,
    },
    PublishAnswer {
        sdp: String,
    },
    Pong {},
    /// A custom message of another client (`data` in base64).
    Custom {
        userid: String,
        cmdid: u8,
        data: String,
    },
    Error {
        code: u16,
        message: String,
    },
    #[serde(other)]
    Other,
}
