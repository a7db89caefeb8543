//! Room control for the API, backed by the media plane: dismissing a room removes everyone
//! from it on its worker.

use hearth_api::{RoomControl, RoomError, RoomFuture};
use hearth_sfu::{SfuError, SfuHandle};
use hearth_types::{RoomKey, SdkAppId};

pub struct SfuRooms {
    pub sfu: SfuHandle,
}

impl RoomControl for SfuRooms {
    fn dismiss(&self, app: SdkAppId, room: RoomKey) -> RoomFuture<'_, ()> {
        Box::pin(async move {
            self.sfu.dismiss(app, room).await.map_err(|e| match e {
                SfuError::RoomNotFound => RoomError::NotFound,
                other => RoomError::Unavailable(other.to_string()),
            })
        })
    }
}
