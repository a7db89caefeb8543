//! One calling socket: a WebSocket whose first message was `login`. Authenticates the user,
//! relays call messages to the driver and the driver's messages back (adding a PrivateMapKey
//! for the call's room when the application requires one), and tells the driver when the
//! socket goes away.

use super::rules::{check_user_id, CallRequest};
use super::{CallReq, LineOut};
use crate::auth::{claimed_user, AppAuth};
use crate::limits::Flow;
use crate::proto::{check_version, CallInfo, ClientMsg, ProtoError, ServerMsg};
use crate::ws::{fail, next, send, IDLE_TIMEOUT};
use crate::Edge;
use axum::extract::ws::{Message, WebSocket};
use hearth_auth::{make_private_map_key, Privileges};
use hearth_types::{RoomKey, SdkAppId, UnixSecs};

/// Lifetime of the PrivateMapKeys handed out with calls.
const PMK_SECS: u32 = 24 * 3600;

/// Checks a `login` message; returns the user's application and id.
fn authenticate(edge: &Edge, msg: ClientMsg) -> Result<(SdkAppId, String), ProtoError> {
    let ClientMsg::Login {
        v,
        sdkappid,
        userid,
        usersig,
    } = msg
    else {
        return Err(ProtoError::Conflict(
            "the first message must be enter or login".into(),
        ));
    };
    check_version(v)?;
    let app = SdkAppId(sdkappid);
    claimed_user(&edge.apps, app, &usersig, &userid, UnixSecs::now())?;
    check_user_id(&userid).map_err(|e| ProtoError::Unauthorized(e.parts().1))?;
    Ok((app, userid))
}

/// Adds the recipient's PrivateMapKey for the call's room, when their application wants one.
fn with_room_key(
    auth: Option<&AppAuth>,
    app: SdkAppId,
    user: &str,
    mut msg: ServerMsg,
) -> ServerMsg {
    let Some(auth) = auth.filter(|a| a.require_private_map_key) else {
        return msg;
    };
    let call: &mut CallInfo = match &mut msg {
        ServerMsg::CallPlaced { call } => call,
        ServerMsg::Invited { call, .. } => call,
        ServerMsg::CallState { call, .. } => call,
        _ => return msg,
    };
    let room = match (&call.roomid, &call.strroomid) {
        (Some(n), _) => RoomKey::Num(*n),
        (None, Some(s)) => RoomKey::Str(s.clone()),
        (None, None) => return msg,
    };
    call.privatemapkey = Some(make_private_map_key(
        app,
        &auth.key,
        user,
        &room,
        PMK_SECS,
        Privileges::ALL,
        UnixSecs::now(),
    ));
    msg
}

fn request(msg: ClientMsg) -> Result<Option<CallReq>, ProtoError> {
    Ok(Some(match msg {
        ClientMsg::Call {
            callees,
            media,
            group,
            roomid,
            strroomid,
            timeout,
        } => CallReq::Place(CallRequest::parse(
            callees, &media, group, roomid, strroomid, timeout,
        )?),
        ClientMsg::Accept { callid } => CallReq::Accept(callid),
        ClientMsg::Reject { callid } => CallReq::Reject(callid),
        ClientMsg::Cancel { callid } => CallReq::Cancel(callid),
        ClientMsg::Hangup { callid } => CallReq::Hangup(callid),
        ClientMsg::Login { .. } => return Err(ProtoError::Conflict("already logged in".into())),
        ClientMsg::Ping {} | ClientMsg::Logout {} => return Ok(None),
        _ => {
            return Err(ProtoError::Conflict(
                "room messages need a room session (enter) on its own socket".into(),
            ))
        }
    }))
}

/// Serves a socket whose first message was `login`, until logout, a drop or replacement.
pub(crate) async fn run(edge: &Edge, mut socket: WebSocket, mut flow: Flow, first: ClientMsg) {
    let (app, user) = match authenticate(edge, first) {
        Ok(who) => who,
        Err(e) => {
            fail(&mut socket, &e, Some("login")).await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
    };
    let who = (app, user.clone());
    let (line, mut queue) = match edge.calls.login(who.clone()).await {
        Ok(l) => l,
        Err(e) => {
            fail(&mut socket, &e, Some("login")).await;
            return;
        }
    };
    let auth = edge.apps.get(&app);
    if send(
        &mut socket,
        &ServerMsg::LoggedIn {
            userid: user.clone(),
        },
    )
    .await
    {
        loop {
            // Biased to the queue: what a request caused is sent before the next message is
            // read, so a client's `ping` after a request is answered after those messages.
            tokio::select! {
                biased;
                out = queue.recv() => {
                    let Some(LineOut { msg, close }) = out else { break };
                    let msg = with_room_key(auth, app, &user, msg);
                    if !send(&mut socket, &msg).await { break; }
                    if close {
                        let _ = socket.send(Message::Close(None)).await;
                        break;
                    }
                }
                msg = tokio::time::timeout(IDLE_TIMEOUT, next(&mut socket, &mut flow)) => {
                    let msg = match msg {
                        Err(_) | Ok(None) => break,
                        Ok(Some(Ok(m))) => m,
                        Ok(Some(Err(e))) => {
                            if fail(&mut socket, &e, None).await { break; }
                            continue;
                        }
                    };
                    let name = msg.name();
                    let (pong, logout) = (matches!(msg, ClientMsg::Ping {}), matches!(msg, ClientMsg::Logout {}));
                    let result = match request(msg) {
                        Ok(Some(req)) => edge.calls.request(who.clone(), line, req).await,
                        Ok(None) => Ok(()),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = result {
                        if fail(&mut socket, &e, Some(name)).await { break; }
                    } else if pong {
                        if !send(&mut socket, &ServerMsg::Pong {}).await { break; }
                    } else if logout {
                        edge.calls.gone(who.clone(), line, true).await;
                        let _ = send(&mut socket, &ServerMsg::LoggedOut {}).await;
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                }
            }
        }
    }
    edge.calls.gone(who, line, false).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_auth::{verify_usersig, PrivateMapKey};

    fn placed(roomid: Option<u32>, strroomid: Option<&str>) -> ServerMsg {
        ServerMsg::CallPlaced {
            call: CallInfo {
                callid: "c".into(),
                caller: "alice".into(),
                callees: vec!["bob".into()],
                media: "video",
                group: false,
                roomid,
                strroomid: strroomid.map(str::to_owned),
                privatemapkey: None,
            },
        }
    }

    #[test]
    fn a_room_key_is_added_only_when_the_app_requires_one() {
        let app = SdkAppId(1400000001);
        let key = "0123456789abcdef0123456789abcdef";
        let relaxed = AppAuth {
            key: key.into(),
            require_private_map_key: false,
        };
        let msg = placed(Some(42), None);
        assert_eq!(with_room_key(Some(&relaxed), app, "bob", msg.clone()), msg);
        let strict = AppAuth {
            key: key.into(),
            require_private_map_key: true,
        };
        for (msg, room) in [
            (placed(Some(42), None), RoomKey::Num(42)),
            (
                placed(None, Some("standup")),
                RoomKey::Str("standup".into()),
            ),
        ] {
            let ServerMsg::CallPlaced { call } = with_room_key(Some(&strict), app, "bob", msg)
            else {
                panic!("message kind changed");
            };
            let pmk = call.privatemapkey.expect("a key for the room");
            let v = verify_usersig(&pmk, app, key, UnixSecs::now()).unwrap();
            let grant = PrivateMapKey::decode(&v.userbuf.unwrap()).unwrap();
            assert_eq!((grant.identifier.as_str(), grant.room), ("bob", room));
            assert!(grant.privileges.contains(Privileges::ALL));
        }
        let other = ServerMsg::CallEnded {
            callid: "c".into(),
            result: "Cancel",
        };
        assert_eq!(
            with_room_key(Some(&strict), app, "bob", other.clone()),
            other
        );
    }
}
