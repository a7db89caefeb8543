//! The API's only way to act on live rooms: a room-control handle supplied by whoever owns
//! the rooms (the media plane, or the store while there is none).

use crate::error::ApiError;
use hearth_types::{RoomKey, SdkAppId};
use std::future::Future;
use std::pin::Pin;

pub type RoomFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, RoomError>> + Send + 'a>>;

/// Why a room operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomError {
    /// Nobody is in that room.
    NotFound,
    /// The owner of the rooms could not be reached or failed.
    Unavailable(String),
}

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        match e {
            RoomError::NotFound => ApiError::RoomNotExist,
            RoomError::Unavailable(why) => {
                tracing::error!(%why, "room control unavailable");
                ApiError::Internal
            }
        }
    }
}

/// Operations on live rooms.
pub trait RoomControl: Send + Sync + 'static {
    /// Removes everyone from the room and ends its call.
    fn dismiss(&self, app: SdkAppId, room: RoomKey) -> RoomFuture<'_, ()>;
}
