//! Room control while there is no media plane: the store is the only record of who is in a
//! room, so dismissing ends the stored call and closes its sessions.

use hearth_api::{RoomControl, RoomError, RoomFuture};
use hearth_store::{LeaveReason, Store};
use hearth_types::{RoomKey, SdkAppId, UnixSecs};
use std::sync::Arc;

pub struct StoredRooms {
    pub store: Arc<dyn Store>,
}

impl RoomControl for StoredRooms {
    fn dismiss(&self, app: SdkAppId, room: RoomKey) -> RoomFuture<'_, ()> {
        let store = self.store.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || dismiss(store.as_ref(), app, &room))
                .await
                .map_err(|e| RoomError::Unavailable(e.to_string()))?
        })
    }
}

fn dismiss(store: &dyn Store, app: SdkAppId, room: &RoomKey) -> Result<(), RoomError> {
    let unavailable = |e: hearth_store::StoreError| RoomError::Unavailable(e.to_string());
    let call = store
        .open_call(app, room)
        .map_err(unavailable)?
        .ok_or(RoomError::NotFound)?;
    let present = store.active_sessions(&call.comm_id).map_err(unavailable)?;
    if present.is_empty() {
        return Err(RoomError::NotFound);
    }
    store
        .finish_call(&call.comm_id, UnixSecs::now(), LeaveReason::RoomDismissed)
        .map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_store::{CallRecord, NewSession, SqliteStore};
    use hearth_types::{CommId, UserId};

    #[test]
    fn dismissing_closes_the_call_and_an_empty_room_does_not_exist() {
        let store = SqliteStore::open_in_memory().unwrap();
        let app = SdkAppId(1400000001);
        let room = RoomKey::Num(7);
        assert_eq!(dismiss(&store, app, &room), Err(RoomError::NotFound));
        let now = UnixSecs::now();
        let comm_id = CommId::new(app, &room, now);
        store
            .start_call(&CallRecord {
                comm_id: comm_id.clone(),
                sdk_app_id: app,
                room: room.clone(),
                creator: "alice".into(),
                created_at: now,
                destroyed_at: None,
            })
            .unwrap();
        store
            .open_session(&NewSession {
                comm_id: comm_id.clone(),
                sdk_app_id: app,
                user_id: UserId("alice".into()),
                joined_at: now,
                device_type: String::new(),
                sdk_version: String::new(),
                client_ip: "127.0.0.1".into(),
            })
            .unwrap();
        assert_eq!(
            dismiss(&store, app, &RoomKey::string("7").unwrap()),
            Err(RoomError::NotFound)
        );
        assert_eq!(dismiss(&store, app, &room), Ok(()));
        assert!(store.active_sessions(&comm_id).unwrap().is_empty());
        assert!(store.open_call(app, &room).unwrap().is_none());
        assert_eq!(dismiss(&store, app, &room), Err(RoomError::NotFound));
    }
}
