//! Room control for the API, backed by the media plane: who is in a room, and dismissing a
//! room removes everyone from it on its worker.

use hearth_api::{Block, LiveUser, RoomControl, RoomError, RoomFuture};
use hearth_sfu::{SfuError, SfuHandle};
use hearth_types::{RoomKey, SdkAppId, UserId};

pub struct SfuRooms {
    pub sfu: SfuHandle,
}

fn room_error(e: SfuError) -> RoomError {
    match e {
        SfuError::RoomNotFound => RoomError::NotFound,
        SfuError::UserNotFound => RoomError::UserNotFound,
        other => RoomError::Unavailable(other.to_string()),
    }
}

impl RoomControl for SfuRooms {
    fn users(&self, app: SdkAppId, room: RoomKey) -> RoomFuture<'_, Vec<LiveUser>> {
        Box::pin(async move {
            let users = self.sfu.room_users(app, room).await.map_err(room_error)?;
            Ok(users
                .into_iter()
                .map(|u| LiveUser {
                    user: u.user,
                    role: if u.anchor { "anchor" } else { "audience" },
                    sessions: u.sessions,
                    audio: u.audio,
                    video: u.video,
                    sub_video: u.sub_video,
                })
                .collect())
        })
    }

    fn remove_users(
        &self,
        app: SdkAppId,
        room: RoomKey,
        users: Vec<UserId>,
    ) -> RoomFuture<'_, Vec<UserId>> {
        Box::pin(async move { self.sfu.kick(app, room, users).await.map_err(room_error) })
    }

    fn block_user(
        &self,
        app: SdkAppId,
        room: RoomKey,
        user: UserId,
        block: Block,
    ) -> RoomFuture<'_, ()> {
        let blocked = hearth_sfu::Blocked {
            audio: block.audio,
            video: block.video,
        };
        Box::pin(async move {
            self.sfu
                .block(app, room, user, blocked)
                .await
                .map_err(room_error)
        })
    }

    fn dismiss(&self, app: SdkAppId, room: RoomKey) -> RoomFuture<'_, ()> {
        Box::pin(async move {
            self.sfu.dismiss(app, room).await.map_err(|e| match e {
                SfuError::RoomNotFound => RoomError::NotFound,
                other => RoomError::Unavailable(other.to_string()),
            })
        })
    }
}
