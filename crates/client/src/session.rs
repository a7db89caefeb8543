//! A room session: the WebSocket, the subscribe connection and the task that drives both.
//! [`join`] enters and returns a [`Client`] handle and the stream of [`Event`]s.

use crate::proto::PublishTrack;
use crate::proto::{In, Out, Role, RoomId};
use crate::publisher::{PubEvent, Publisher};
use crate::subscriber::Subscriber;
use crate::{Codec, Event, Kind, Layer, Stream, TrackKey};
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How to enter.
#[derive(Debug, Clone)]
pub struct JoinParams {
    /// `ws://host:port/ws/v1`.
    pub url: String,
    pub sdk_app_id: u32,
    pub room: RoomId,
    pub user_id: String,
    pub user_sig: String,
    pub private_map_key: Option<String>,
    pub role: Role,
    /// Marks the session as a media bot in rosters (other bots skip it unless asked).
    pub bot: bool,
}

enum Cmd {
    Subscribe(String, Stream, bool),
    Keyframe(TrackKey),
    Publish(Option<Codec>, bool),
    Write(Kind, Layer, u64, Vec<u8>),
    Custom(u8, Vec<u8>),
    Exit,
}

/// The handle of a session; dropping it leaves the room.
#[derive(Clone)]
pub struct Client {
    cmds: mpsc::UnboundedSender<Cmd>,
}

impl Client {
    /// Subscribes to (or, `on` false, drops) a user's stream, audio and video.
    pub fn subscribe(&self, user: &str, stream: Stream, on: bool) {
        let _ = self.cmds.send(Cmd::Subscribe(user.to_owned(), stream, on));
    }

    /// Asks the sender of a video track for a keyframe.
    pub fn request_keyframe(&self, track: TrackKey) {
        let _ = self.cmds.send(Cmd::Keyframe(track));
    }

    /// Publishes a microphone (Opus) and a camera (`video`: VP8, VP9 or H.264) line; with
    /// `simulcast` the camera goes in a small and a full layer, so that subscribers can take
    /// small video. Frames follow with [`Client::send_frame`]. The role must be anchor.
    pub fn publish(&self, video: Codec, simulcast: bool) {
        let _ = self.cmds.send(Cmd::Publish(Some(video), simulcast));
    }

    /// Publishes a microphone (Opus) line only (a voice bot); frames follow with
    /// [`Client::send_frame`].
    pub fn publish_audio(&self) {
        let _ = self.cmds.send(Cmd::Publish(None, false));
    }

    /// Sends one whole frame (Opus packet; VP8 frame or H.264 access unit in Annex-B) with its
    /// RTP time (48 kHz audio, 90 kHz video). Video goes on the full layer. Frames before the
    /// connection is up are dropped.
    pub fn send_frame(&self, kind: Kind, rtp_time: u64, data: Vec<u8>) {
        let _ = self
            .cmds
            .send(Cmd::Write(kind, Layer::Full, rtp_time, data));
    }

    /// Sends a video frame of the small simulcast layer (see [`Client::publish`]).
    pub fn send_small_frame(&self, rtp_time: u64, data: Vec<u8>) {
        let _ = self
            .cmds
            .send(Cmd::Write(Kind::Video, Layer::Small, rtp_time, data));
    }

    /// Sends a custom message (command id 1–10, at most 1 KB) to the rest of the room, in order
    /// after what was sent before; a refusal comes back as [`Event::Error`].
    pub fn send_custom(&self, cmd_id: u8, data: Vec<u8>) {
        let _ = self.cmds.send(Cmd::Custom(cmd_id, data));
    }

    /// Leaves the room; [`Event::Closed`] follows.
    pub fn exit(&self) {
        let _ = self.cmds.send(Cmd::Exit);
    }
}

/// Frames waiting for the consumer at most; beyond, new frames are dropped (and counted).
const FRAME_QUEUE: usize = 2048;
const PING_EVERY: Duration = Duration::from_secs(5);
const ENTER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects and enters. Refusals (bad UserSig, PrivateMapKey, …) are errors with the server's
/// code and message.
pub async fn join(p: JoinParams) -> Result<(Client, mpsc::Receiver<Event>)> {
    let (mut ws, _) = tokio::time::timeout(ENTER_TIMEOUT, tokio_tungstenite::connect_async(&p.url))
        .await
        .map_err(|_| anyhow!("connecting to {}: timed out", p.url))?
        .with_context(|| format!("connecting to {}", p.url))?;
    let (roomid, strroomid) = match &p.room {
        RoomId::Num(n) => (Some(*n), None),
        RoomId::Str(s) => (None, Some(s.as_str())),
    };
    let enter = Out::Enter {
        v: 1,
        sdkappid: p.sdk_app_id,
        userid: &p.user_id,
        usersig: &p.user_sig,
        roomid,
        strroomid,
        role: match p.role {
            Role::Anchor => "anchor",
            Role::Audience => "audience",
        },
        privatemapkey: p.private_map_key.as_deref(),
        autosubscribe: false,
        bot: p.bot,
    };
    send(&mut ws, &enter).await?;
    let roster = tokio::time::timeout(ENTER_TIMEOUT, async {
        loop {
            match next_msg(&mut ws).await? {
                Some(In::Entered { roster, .. }) => return Ok(roster),
                Some(In::Error { code, message }) => bail!("enter refused: {code} {message}"),
                Some(_) => continue,
                None => bail!("the server closed the socket before entered"),
            }
        }
    })
    .await
    .map_err(|_| anyhow!("no answer to enter"))??;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::channel(FRAME_QUEUE);
    for u in roster {
        let _ = ev_tx.try_send(Event::UserEntered(u));
    }
    tokio::spawn(run(ws, cmd_rx, ev_tx));
    Ok((Client { cmds: cmd_tx }, ev_rx))
}

async fn send(ws: &mut Ws, m: &Out<'_>) -> Result<()> {
    let text = serde_json::to_string(m)?;
    ws.send(Message::text(text)).await?;
    Ok(())
}

/// The next protocol message; `None` when the socket closed.
async fn next_msg(ws: &mut Ws) -> Result<Option<In>> {
    while let Some(m) = ws.next().await {
        match m? {
            Message::Text(t) => return Ok(Some(serde_json::from_str(&t)?)),
            Message::Close(_) => return Ok(None),
            _ => continue,
        }
    }
    Ok(None)
}

struct State {
    sub: Option<Subscriber>,
    publ: Option<Publisher>,
    events: mpsc::Sender<Event>,
    dropped_frames: u64,
    frames: Vec<crate::Frame>,
    pub_events: Vec<PubEvent>,
}

async fn run(mut ws: Ws, mut cmds: mpsc::UnboundedReceiver<Cmd>, events: mpsc::Sender<Event>) {
    let mut st = State {
        sub: None,
        publ: None,
        events,
        dropped_frames: 0,
        frames: Vec::new(),
        pub_events: Vec::new(),
    };
    let mut buf = vec![0u8; 2000];
    let mut pbuf = vec![0u8; 2000];
    let mut ping = tokio::time::interval(PING_EVERY);
    let closed = loop {
        let deadline = st.sub.as_ref().map(|s| s.peer.next_timeout);
        let pub_deadline = st.publ.as_ref().map(|p| p.peer.next_timeout);
        tokio::select! {
            m = next_msg(&mut ws) => match m {
                Ok(Some(msg)) => {
                    if let Some(end) = st.on_message(&mut ws, msg).await {
                        break end;
                    }
                }
                Ok(None) => break ("closed".to_owned(), "the server closed the socket".to_owned()),
                Err(e) => break ("closed".to_owned(), format!("signaling failed: {e:#}")),
            },
            c = cmds.recv() => match c {
                Some(Cmd::Subscribe(user, stream, on)) => {
                    let m = if on {
                        Out::Subscribe { userid: &user, stream: stream.name(), quality: "big" }
                    } else {
                        Out::Unsubscribe { userid: &user, stream: stream.name() }
                    };
                    if send(&mut ws, &m).await.is_err() {
                        break ("closed".to_owned(), "signaling failed".to_owned());
                    }
                }
                Some(Cmd::Keyframe(t)) => {
                    if let Some(s) = st.sub.as_mut() {
                        s.request_keyframe(&t);
                        st.drive().await;
                    }
                }
                Some(Cmd::Publish(codec, simulcast)) => match Publisher::offer(codec, simulcast) {
                    Ok((p, (sdp, tracks))) => {
                        let tracks = tracks
                            .iter()
                            .map(|(mid, source)| PublishTrack { mid, source })
                            .collect();
                        if send(&mut ws, &Out::Publish { sdp: &sdp, tracks }).await.is_err() {
                            break ("closed".to_owned(), "signaling failed".to_owned());
                        }
                        st.publ = Some(p);
                    }
                    Err(e) => st.event(Event::Error { code: 0, message: format!("publish: {e:#}") }).await,
                },
                Some(Cmd::Write(kind, layer, rtp, data)) => {
                    if let Some(p) = st.publ.as_mut() {
                        p.write(kind, layer, rtp, data);
                        st.drive_pub().await;
                    }
                }
                Some(Cmd::Custom(cmdid, data)) => {
                    let data = base64::engine::general_purpose::STANDARD.encode(&data);
                    if send(&mut ws, &Out::Custom { cmdid, data: &data }).await.is_err() {
                        break ("closed".to_owned(), "signaling failed".to_owned());
                    }
                }
                Some(Cmd::Exit) | None => {
                    let _ = send(&mut ws, &Out::Exit {}).await;
                    let _ = ws.close(None).await;
                    break ("exit".to_owned(), "left the room".to_owned());
                }
            },
            r = recv(st.sub.as_ref().and_then(|s| s.peer.socket.as_ref()), &mut buf) => {
                if let (Ok((n, from)), Some(s)) = (r, st.sub.as_mut()) {
                    s.peer.receive(from, &buf[..n]);
                    // Take what else is queued before driving: one drive per burst.
                    while let Some(Ok((n, from))) = s.peer.socket.as_ref().map(|k| k.try_recv_from(&mut buf)) {
                        s.peer.receive(from, &buf[..n]);
                    }
                    st.drive().await;
                }
            },
            r = recv(st.publ.as_ref().and_then(|p| p.peer.socket.as_ref()), &mut pbuf) => {
                if let (Ok((n, from)), Some(p)) = (r, st.publ.as_mut()) {
                    p.peer.receive(from, &pbuf[..n]);
                    st.drive_pub().await;
                }
            },
            _ = sleep_until(deadline) => {
                if let Some(s) = st.sub.as_mut() {
                    s.peer.timeout();
                    st.drive().await;
                }
            },
            _ = sleep_until(pub_deadline) => {
                if let Some(p) = st.publ.as_mut() {
                    p.peer.timeout();
                    st.drive_pub().await;
                }
            },
            _ = ping.tick() => {
                if send(&mut ws, &Out::Ping {}).await.is_err() {
                    break ("closed".to_owned(), "signaling failed".to_owned());
                }
            },
        }
        if st.sub.as_ref().is_some_and(|s| !s.peer.rtc.is_alive())
            || st.publ.as_ref().is_some_and(|p| !p.peer.rtc.is_alive())
        {
            break (
                "timeout".to_owned(),
                "the media connection was lost".to_owned(),
            );
        }
    };
    if st.dropped_frames > 0 {
        tracing::warn!(
            dropped = st.dropped_frames,
            "frames dropped: the consumer fell behind"
        );
    }
    let _ = st
        .events
        .send(Event::Closed {
            reason: closed.0,
            message: closed.1,
        })
        .await;
}

async fn recv(
    socket: Option<&tokio::net::UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, std::net::SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(t: Option<std::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

impl State {
    /// Handles a server message; `Some((reason, message))` ends the session.
    async fn on_message(&mut self, ws: &mut Ws, msg: In) -> Option<(String, String)> {
        match msg {
            In::Offer { sdp, tracks } => {
                if self.sub.is_none() {
                    match Subscriber::new(&sdp) {
                        Ok(s) => self.sub = Some(s),
                        Err(e) => return Some(("closed".into(), format!("subscribe: {e:#}"))),
                    }
                }
                let sub = self.sub.as_mut().expect("just made");
                match sub.accept(&sdp, &tracks) {
                    Ok((answer, added, removed)) => {
                        if send(ws, &Out::Answer { sdp: &answer }).await.is_err() {
                            return Some(("closed".into(), "signaling failed".into()));
                        }
                        for t in removed {
                            let _ = self.events.send(Event::TrackRemoved(t)).await;
                        }
                        for t in added {
                            let _ = self.events.send(Event::TrackAdded(t)).await;
                        }
                        self.drive().await;
                    }
                    Err(e) => return Some(("closed".into(), format!("bad offer: {e:#}"))),
                }
            }
            In::PublishAnswer { sdp } => {
                if let Some(p) = self.publ.as_mut() {
                    if let Err(e) = p.accept(&sdp) {
                        return Some(("closed".into(), format!("bad publish answer: {e:#}")));
                    }
                    self.drive_pub().await;
                }
            }
            In::UserEntered { user } => self.event(Event::UserEntered(user)).await,
            In::UserUpdated { user } => self.event(Event::UserUpdated(user)).await,
            In::UserExited { userid } => self.event(Event::UserExited(userid)).await,
            In::Notice { reason, message } => {
                if reason != "blocked" && reason != "unblocked" {
                    return Some((reason, message));
                }
            }
            In::Error { code, message } => self.event(Event::Error { code, message }).await,
            In::Custom {
                userid,
                cmdid,
                data,
            } => match base64::engine::general_purpose::STANDARD.decode(data) {
                Ok(data) => {
                    self.event(Event::Custom {
                        user: userid,
                        cmd_id: cmdid,
                        data,
                    })
                    .await
                }
                Err(e) => tracing::warn!(error = %e, "a custom message's data is not base64"),
            },
            In::Exited {} => return Some(("exit".into(), "left the room".into())),
            In::Entered { .. } | In::Pong {} | In::Other => {}
        }
        None
    }

    async fn event(&mut self, e: Event) {
        let _ = self.events.send(e).await;
    }

    async fn drive(&mut self) {
        let Some(sub) = self.sub.as_mut() else {
            return;
        };
        sub.drive(&mut self.frames);
        for f in self.frames.drain(..) {
            if self.events.try_send(Event::Frame(f)).is_err() {
                self.dropped_frames += 1;
            }
        }
    }

    async fn drive_pub(&mut self) {
        let Some(p) = self.publ.as_mut() else {
            return;
        };
        p.drive(&mut self.pub_events);
        for e in std::mem::take(&mut self.pub_events) {
            match e {
                PubEvent::Keyframe(l) => self.event(Event::KeyframeRequested(l)).await,
            }
        }
    }
}
