//! The API's only way to act on live rooms: a room-control handle supplied by whoever owns
//! the rooms (the media plane, or the store while there is none).

use crate::error::ApiError;
use hearth_types::{RoomKey, SdkAppId, UserId};
use std::future::Future;
use std::pin::Pin;

pub type RoomFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, RoomError>> + Send + 'a>>;

/// Why a room operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomError {
    /// Nobody is in that room.
    NotFound,
    /// The user is not in the room.
    UserNotFound,
    /// The owner of the rooms could not be reached or failed.
    Unavailable(String),
}

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        match e {
            RoomError::NotFound => ApiError::RoomNotExist,
            RoomError::UserNotFound => ApiError::UserNotExist,
            RoomError::Unavailable(why) => {
                tracing::error!(%why, "room control unavailable");
                ApiError::Internal
            }
        }
    }
}

/// What an operator blocks of a user (SetUserBlocked's IsMute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub audio: bool,
    pub video: bool,
}

/// A user in a live room, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LiveUser {
    #[serde(rename = "UserId")]
    pub user: UserId,
    /// `anchor` (publishes) or `audience`.
    #[serde(rename = "Role")]
    pub role: &'static str,
    /// Connections the user has in the room (a WHEP viewer has one per stream it plays).
    #[serde(rename = "Sessions")]
    pub sessions: usize,
    #[serde(rename = "Audio")]
    pub audio: bool,
    #[serde(rename = "Video")]
    pub video: bool,
    /// The screen share (TRTC's sub stream).
    #[serde(rename = "SubVideo")]
    pub sub_video: bool,
}

/// Operations on live rooms.
pub trait RoomControl: Send + Sync + 'static {
    /// Who is in the room now, by UserId.
    fn users(&self, app: SdkAppId, room: RoomKey) -> RoomFuture<'_, Vec<LiveUser>>;
    /// Removes everyone from the room and ends its call.
    fn dismiss(&self, app: SdkAppId, room: RoomKey) -> RoomFuture<'_, ()>;
    /// Removes the listed users (those not in the room are skipped); returns who was removed.
    fn remove_users(
        &self,
        app: SdkAppId,
        room: RoomKey,
        users: Vec<UserId>,
    ) -> RoomFuture<'_, Vec<UserId>>;
    /// Blocks (both false: unblocks) a user's audio and/or video.
    fn block_user(
        &self,
        app: SdkAppId,
        room: RoomKey,
        user: UserId,
        block: Block,
    ) -> RoomFuture<'_, ()>;
}
