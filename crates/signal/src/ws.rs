//! Hearth's client protocol over WebSocket (`docs/protocol.md`): one task per socket that
//! authenticates the `enter`, relays client messages to the client's media worker, and relays
//! the worker's notices (offers, roster, endings) back; a dropped socket detaches the session
//! so a reconnect can resume it.

use crate::auth::{check_private_map_key, claimed_user};
use crate::limits::Flow;
use crate::proto::{
    check_version, ClientMsg, OfferTrack, ProtoError, ServerMsg, User, MAX_FRAME_BYTES,
};
use crate::Edge;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use base64::Engine as _;
use hearth_auth::Privileges;
use hearth_sfu::client::{ClientEntered, ClientNotice, NoticeReason, Role, RosterUser, Source};
use hearth_sfu::core::{LayerChoice, ParticipantId, StreamKind};
use hearth_sfu::{JoinRequest, SessionRef};
use hearth_types::{RoomKey, SdkAppId, UnixSecs, UserId};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The first message must arrive this soon.
const ENTER_TIMEOUT: Duration = Duration::from_secs(10);
/// A socket silent this long is closed (clients ping every few seconds).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Remote users one stats report may describe.
const MAX_REPORTED_REMOTES: usize = 64;
/// Notices queued for a client before the worker drops them (a stuck client).
const NOTICE_QUEUE: usize = 256;

pub async fn upgrade(
    State(edge): State<Arc<Edge>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let began = Instant::now();
    let agent: String = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(64)
        .collect();
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| run(edge, socket, peer, agent, began))
}

pub(crate) async fn send(socket: &mut WebSocket, msg: &ServerMsg) -> bool {
    match serde_json::to_string(msg) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

/// Sends the error; returns true when the socket must close.
pub(crate) async fn fail(
    socket: &mut WebSocket,
    e: &ProtoError,
    request: Option<&'static str>,
) -> bool {
    let (code, message, close) = e.parts();
    let _ = send(
        socket,
        &ServerMsg::Error {
            code,
            message,
            request,
        },
    )
    .await;
    if close {
        close_gracefully(socket).await;
    }
    close
}

/// How long a closing socket waits for the client's close frame.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// Sends a close frame and reads (discarding) until the client's close, for a moment: a socket
/// dropped while the client still sends is reset, and a reset loses what the client had not
/// read yet (the error that explains the close).
pub(crate) async fn close_gracefully(socket: &mut WebSocket) {
    if socket.send(Message::Close(None)).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_DRAIN, async {
        while let Some(Ok(m)) = socket.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Reads the next protocol message: text JSON, within size and the socket's send budget;
/// pings/pongs skipped.
pub(crate) async fn next(
    socket: &mut WebSocket,
    flow: &mut Flow,
) -> Option<Result<ClientMsg, ProtoError>> {
    loop {
        let msg = match socket.recv().await? {
            Ok(m) => m,
            Err(e) => {
                let text = e.to_string();
                return Some(Err(if text.contains("too long") || text.contains("size") {
                    ProtoError::TooLarge
                } else {
                    ProtoError::BadRequest(text)
                }));
            }
        };
        let len = match &msg {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            _ => 0,
        };
        if len > 0 {
            if let Err(e) = flow.take(len, Instant::now()) {
                return Some(Err(e));
            }
        }
        return Some(match msg {
            Message::Text(t) => serde_json::from_str::<ClientMsg>(t.as_str())
                .map_err(|e| ProtoError::BadRequest(format!("bad message: {e}"))),
            Message::Binary(_) => Err(ProtoError::Binary),
            Message::Close(_) => return None,
            Message::Ping(_) | Message::Pong(_) => continue,
        });
    }
}

fn user_msg(u: RosterUser) -> User {
    User {
        userid: u.user.0,
        audio: u.audio,
        video: u.video,
        sub: u.sub,
        audio_muted: u.audio_muted,
        video_muted: u.video_muted,
        bot: u.bot,
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Anchor => "anchor",
        Role::Audience => "audience",
    }
}

fn parse_role(s: Option<&str>) -> Result<Role, ProtoError> {
    match s {
        None | Some("anchor") => Ok(Role::Anchor),
        Some("audience") => Ok(Role::Audience),
        Some(other) => Err(ProtoError::BadRequest(format!("unknown role {other:?}"))),
    }
}

fn parse_source(s: &str) -> Result<Source, ProtoError> {
    match s {
        "mic" => Ok(Source::Mic),
        "camera" => Ok(Source::Camera),
        "screen" => Ok(Source::Screen),
        other => Err(ProtoError::BadRequest(format!("unknown source {other:?}"))),
    }
}

fn parse_stream(s: Option<&str>) -> Result<StreamKind, ProtoError> {
    match s {
        None | Some("main") => Ok(StreamKind::Main),
        Some("sub") => Ok(StreamKind::Sub),
        Some(other) => Err(ProtoError::BadRequest(format!("unknown stream {other:?}"))),
    }
}

fn session_token(s: &SessionRef) -> String {
    format!("{}.{}.{}", s.worker, s.peer.0, s.token)
}

fn parse_session_token(t: &str) -> Option<SessionRef> {
    let mut parts = t.splitn(3, '.');
    let worker = parts.next()?.parse().ok()?;
    let peer = parts.next()?.parse().ok()?;
    let token = parts.next()?.to_owned();
    Some(SessionRef {
        worker,
        peer: ParticipantId(peer),
        token,
    })
}

/// `began`: when the upgrade request came (an entry's join time counts from it).
async fn run(
    edge: Arc<Edge>,
    mut socket: WebSocket,
    peer: SocketAddr,
    agent: String,
    began: Instant,
) {
    let (notify_tx, mut notify_rx) = mpsc::channel(NOTICE_QUEUE);
    let mut flow = Flow::new(&edge.sockets, Instant::now());
    let first = match tokio::time::timeout(ENTER_TIMEOUT, next(&mut socket, &mut flow)).await {
        Err(_) => {
            fail(&mut socket, &ProtoError::EnterTimeout, None).await;
            return;
        }
        Ok(None) => return,
        Ok(Some(Err(e))) => {
            let close = fail(&mut socket, &e, None).await;
            if !close {
                let _ = fail(
                    &mut socket,
                    &ProtoError::Conflict("the first message must be enter or login".into()),
                    None,
                )
                .await;
                let _ = socket.send(Message::Close(None)).await;
            }
            return;
        }
        Ok(Some(Ok(m))) => m,
    };
    // Counted against the user and the application until the socket ends.
    let claimed = match &first {
        ClientMsg::Enter {
            sdkappid, userid, ..
        }
        | ClientMsg::Login {
            sdkappid, userid, ..
        } => Some((SdkAppId(*sdkappid), userid.clone())),
        _ => None,
    };
    let _hold = match claimed.map(|(app, user)| edge.sockets.hold(app, &user)) {
        Some(Err(e)) => {
            fail(&mut socket, &e, Some(first.name())).await;
            return;
        }
        Some(Ok(h)) => Some(h),
        None => None,
    };
    if matches!(first, ClientMsg::Login { .. }) {
        crate::calls::line::run(&edge, socket, flow, first).await;
        return;
    }
    // A fresh entry (not a resumed session) is an attempt the join success rates count.
    let attempt = match &first {
        ClientMsg::Enter {
            sdkappid,
            userid,
            roomid,
            strroomid,
            resume: None,
            ..
        } => Some((
            SdkAppId(*sdkappid),
            roomid.map_or_else(|| strroomid.clone().unwrap_or_default(), |n| n.to_string()),
            userid.clone(),
        )),
        _ => None,
    };
    let outcome = enter(&edge, first, peer, &agent, notify_tx).await;
    if let Some((app, room, user)) = attempt {
        let refused = outcome.as_ref().err().map(|e| {
            let (code, message, _) = e.parts();
            format!("{code} {message}")
        });
        edge.record_entry(app, room, user, began, refused);
    }
    let entered = match outcome {
        Ok(e) => e,
        Err(e) => {
            fail(&mut socket, &e, Some("enter")).await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
    };
    let (entered, role, user) = entered;
    let session = entered.session.clone();
    let hello = ServerMsg::Entered {
        session: session_token(&session),
        userid: user.0.clone(),
        role: role_name(role),
        roster: entered.roster.into_iter().map(user_msg).collect(),
        ice_servers: edge.ice_servers(&user.0).into_iter().collect(),
    };
    if !send(&mut socket, &hello).await {
        let _ = edge.sfu.client_detach(session).await;
        return;
    }
    let mut ended = false;
    loop {
        tokio::select! {
            msg = tokio::time::timeout(IDLE_TIMEOUT, next(&mut socket, &mut flow)) => {
                let msg = match msg {
                    Err(_) | Ok(None) => break,
                    Ok(Some(m)) => m,
                };
                let msg = match msg {
                    Ok(m) => m,
                    Err(e) => {
                        if fail(&mut socket, &e, None).await { break; }
                        continue;
                    }
                };
                let name = msg.name();
                match handle(&edge, &session, msg).await {
                    Ok(Reply::None) => {}
                    Ok(Reply::Send(m)) => { if !send(&mut socket, &m).await { break; } }
                    Ok(Reply::Exit) => {
                        let _ = send(&mut socket, &ServerMsg::Exited {}).await;
                        let _ = socket.send(Message::Close(None)).await;
                        ended = true;
                        break;
                    }
                    Err(e) => { if fail(&mut socket, &e, Some(name)).await { break; } }
                }
            }
            notice = notify_rx.recv() => {
                let Some(notice) = notice else { break };
                let (msg, end) = notice_msg(notice);
                if !send(&mut socket, &msg).await { break; }
                if end {
                    let _ = socket.send(Message::Close(None)).await;
                    ended = true;
                    break;
                }
            }
        }
    }
    if !ended {
        tracing::debug!(user = %user, role = role_name(role), "client socket dropped; session may resume");
        let _ = edge.sfu.client_detach(session).await;
    }
}

fn notice_msg(n: ClientNotice) -> (ServerMsg, bool) {
    match n {
        ClientNotice::Offer { sdp, tracks } => (
            ServerMsg::Offer {
                sdp,
                tracks: tracks
                    .into_iter()
                    .map(|t| OfferTrack {
                        mid: t.mid,
                        userid: t.user.0,
                        stream: if t.stream == StreamKind::Sub {
                            "sub"
                        } else {
                            "main"
                        },
                        kind: if t.audio { "audio" } else { "video" },
                    })
                    .collect(),
            },
            false,
        ),
        ClientNotice::UserEntered(u) => (ServerMsg::UserEntered { user: user_msg(u) }, false),
        ClientNotice::UserUpdated(u) => (ServerMsg::UserUpdated { user: user_msg(u) }, false),
        ClientNotice::UserExited(u) => (ServerMsg::UserExited { userid: u.0 }, false),
        ClientNotice::Blocked { audio, video } => {
            let (reason, message) = match (audio, video) {
                (false, false) => (
                    "unblocked",
                    "an operator allowed your audio and video again".to_owned(),
                ),
                (a, v) => {
                    let what = match (a, v) {
                        (true, true) => "audio and video",
                        (true, false) => "audio",
                        _ => "video",
                    };
                    ("blocked", format!("an operator blocked your {what}"))
                }
            };
            (ServerMsg::Notice { reason, message }, false)
        }
        ClientNotice::Custom {
            user,
            cmd_id,
            seq,
            data,
        } => (
            ServerMsg::Custom {
                userid: user.0,
                cmdid: cmd_id,
                seq,
                data: base64::engine::general_purpose::STANDARD.encode(&data[..]),
            },
            false,
        ),
        ClientNotice::Ended(reason) => {
            let (reason, message) = match reason {
                NoticeReason::Kicked => ("kicked", "an operator removed you from the room"),
                NoticeReason::RoomDismissed => ("room_dismissed", "the room was dismissed"),
                NoticeReason::Replaced => {
                    ("replaced", "you entered the room from another connection")
                }
                NoticeReason::Timeout => ("timeout", "the media connection was lost"),
                NoticeReason::ServerShutdown => ("server_shutdown", "the server is shutting down"),
            };
            (
                ServerMsg::Notice {
                    reason,
                    message: message.into(),
                },
                true,
            )
        }
    }
}

type Entered = (ClientEntered, Role, UserId);

async fn enter(
    edge: &Edge,
    msg: ClientMsg,
    peer: SocketAddr,
    agent: &str,
    notify: mpsc::Sender<ClientNotice>,
) -> Result<Entered, ProtoError> {
    let ClientMsg::Enter {
        v,
        sdkappid,
        userid,
        usersig,
        roomid,
        strroomid,
        role,
        privatemapkey,
        autosubscribe,
        resume,
        bot,
    } = msg
    else {
        return Err(ProtoError::Conflict(
            "the first message must be enter or login".into(),
        ));
    };
    check_version(v)?;
    let app = SdkAppId(sdkappid);
    let room = match (roomid, strroomid) {
        (Some(n), None) => RoomKey::num(n),
        (None, Some(s)) => RoomKey::string(&s),
        _ => {
            return Err(ProtoError::BadRequest(
                "give exactly one of roomid and strroomid".into(),
            ))
        }
    }
    .map_err(|e| ProtoError::BadRequest(e.to_string()))?;
    let role = parse_role(role.as_deref())?;
    let now = UnixSecs::now();
    let (user, auth) = claimed_user(&edge.apps, app, &usersig, &userid, now)?;
    let mut needed = Privileges::ENTER_ROOM | Privileges::RECV_AUDIO | Privileges::RECV_VIDEO;
    if role == Role::Anchor {
        needed = needed | Privileges::SEND_AUDIO | Privileges::SEND_VIDEO;
    }
    check_private_map_key(
        auth,
        app,
        &user,
        &room,
        privatemapkey.as_deref(),
        needed,
        now,
    )
    .map_err(|e| match e {
        crate::error::EdgeError::Forbidden(m) => ProtoError::Forbidden(m.into()),
        other => ProtoError::Forbidden(format!("{other:?}")),
    })?;
    let entered: ClientEntered = match resume.as_deref().and_then(parse_session_token) {
        Some(session) => edge.sfu.client_attach(session, notify).await?,
        None => {
            let req = JoinRequest {
                app,
                room,
                user: user.clone(),
                client_ip: peer.ip().to_string(),
                device_type: if bot == Some(true) { "Bot" } else { "Web" }.into(),
                sdk_version: agent.to_owned(),
                bot: bot == Some(true),
            };
            edge.sfu
                .client_enter(req, role, autosubscribe.unwrap_or(true), notify)
                .await?
        }
    };
    Ok((entered, role, user))
}

enum Reply {
    None,
    Send(ServerMsg),
    Exit,
}

async fn handle(edge: &Edge, session: &SessionRef, msg: ClientMsg) -> Result<Reply, ProtoError> {
    let s = session.clone();
    Ok(match msg {
        ClientMsg::Enter { .. } => return Err(ProtoError::Conflict("already entered".into())),
        ClientMsg::Login { .. }
        | ClientMsg::Logout {}
        | ClientMsg::Call { .. }
        | ClientMsg::Accept { .. }
        | ClientMsg::Reject { .. }
        | ClientMsg::Cancel { .. }
        | ClientMsg::Hangup { .. } => {
            return Err(ProtoError::Conflict(
                "call messages need a calling socket (login) of their own".into(),
            ))
        }
        ClientMsg::Exit {} => {
            edge.sfu.client_exit(s).await?;
            Reply::Exit
        }
        ClientMsg::Ping {} => Reply::Send(ServerMsg::Pong {}),
        ClientMsg::Custom { cmdid, data } => {
            let data = base64::engine::general_purpose::STANDARD
                .decode(data.as_bytes())
                .map_err(|_| ProtoError::BadRequest("data must be base64".into()))?;
            edge.sfu.client_custom(s, cmdid, data).await?;
            Reply::None
        }
        ClientMsg::Stats {
            capture_fps,
            app_cpu,
            sys_cpu,
            remote,
        } => {
            if remote.len() > MAX_REPORTED_REMOTES {
                return Err(ProtoError::BadRequest(format!(
                    "at most {MAX_REPORTED_REMOTES} remote users per report"
                )));
            }
            let mut samples = Vec::new();
            let mut add = |peer: &str,
                           metric: &'static str,
                           v: Option<f64>,
                           max: f64|
             -> Result<(), ProtoError> {
                match v {
                    None => Ok(()),
                    Some(v) if v.is_finite() && (0.0..=max).contains(&v) => {
                        samples.push((peer.to_owned(), metric, v));
                        Ok(())
                    }
                    Some(_) => Err(ProtoError::BadRequest(format!("{metric} out of range"))),
                }
            };
            add("", "bigvCapFps", capture_fps, 240.0)?;
            add("", "appCpu", app_cpu, 100.0)?;
            add("", "sysCpu", sys_cpu, 100.0)?;
            for r in &remote {
                add(&r.userid, "bigvDecFps", r.decode_fps, 240.0)?;
                add(&r.userid, "bigvBlock", r.video_block_ms, 60_000.0)?;
                add(&r.userid, "aBlock", r.audio_block_ms, 60_000.0)?;
            }
            edge.sfu.client_report(s, samples).await?;
            Reply::None
        }
        ClientMsg::Publish { sdp, tracks } => {
            let mut sources = Vec::with_capacity(tracks.len());
            for t in tracks {
                sources.push((t.mid, parse_source(&t.source)?));
            }
            let sdp = edge.sfu.client_publish(s, sdp, sources).await?;
            Reply::Send(ServerMsg::PublishAnswer { sdp })
        }
        ClientMsg::Answer { sdp } => {
            edge.sfu.client_answer(s, sdp).await?;
            Reply::None
        }
        ClientMsg::Subscribe {
            userid,
            stream,
            quality,
        } => {
            let quality = match quality.as_deref() {
                None | Some("big") => LayerChoice::Big,
                Some("small") => LayerChoice::Small,
                Some(q) => return Err(ProtoError::BadRequest(format!("unknown quality {q:?}"))),
            };
            edge.sfu
                .client_subscribe(
                    s,
                    UserId(userid),
                    parse_stream(stream.as_deref())?,
                    Some(quality),
                    true,
                )
                .await?;
            Reply::None
        }
        ClientMsg::Unsubscribe { userid, stream } => {
            edge.sfu
                .client_subscribe(
                    s,
                    UserId(userid),
                    parse_stream(stream.as_deref())?,
                    None,
                    false,
                )
                .await?;
            Reply::None
        }
        ClientMsg::Mute { source, muted } => {
            edge.sfu
                .client_mute(s, parse_source(&source)?, muted)
                .await?;
            Reply::None
        }
        ClientMsg::Unpublish { source } => {
            edge.sfu.client_unpublish(s, parse_source(&source)?).await?;
            Reply::None
        }
        ClientMsg::Role { role } => {
            let role = parse_role(Some(&role))?;
            edge.sfu.client_role(s, role).await?;
            Reply::Send(ServerMsg::Role {
                role: role_name(role),
            })
        }
    })
}
