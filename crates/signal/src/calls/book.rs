//! Every call in progress, sans-IO: placing, ringing, answering, leaving, ring timeouts and
//! reconnect grace, busy users, and the call's result. The driver feeds it messages and time
//! and carries out what it returns (messages to users, call records to save); it does no IO.

use super::rules::{self, CallRequest};
use crate::proto::{CallInfo, ProtoError, ServerMsg};
use hearth_store::{CallLog, CallMedia, CallResult};
use hearth_types::{RoomKey, SdkAppId, UnixSecs};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// A user of an application.
pub type Who = (SdkAppId, String);

/// The two clocks the book reads: monotonic for deadlines, wall for records.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub mono: Instant,
    pub wall: UnixSecs,
}

/// What the driver must do.
#[derive(Debug, PartialEq)]
pub enum Out {
    /// Deliver to the user's calling socket, if they have one.
    Send(Who, ServerMsg),
    /// Persist (insert or replace) the call's record.
    Save(CallLog),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Invitee {
    Ringing { until: Instant },
    Accepted,
    Rejected,
    Busy,
    NoAnswer,
    Left,
}

struct Call {
    log: CallLog,
    /// Per callee, in the order invited.
    invitees: Vec<(String, Invitee)>,
    caller_left: bool,
    /// Parties whose calling socket is gone, and when their grace ends.
    dropped: HashMap<String, Instant>,
    /// What ends the call if nobody accepts (the last invitee's answer).
    last_no: Option<CallResult>,
}

impl Call {
    fn info(&self) -> CallInfo {
        let (roomid, strroomid) = match &self.log.room {
            RoomKey::Num(n) => (Some(*n), None),
            RoomKey::Str(s) => (None, Some(s.clone())),
        };
        CallInfo {
            callid: self.log.call_id.clone(),
            caller: self.log.caller.clone(),
            callees: self.log.callees.clone(),
            media: match self.log.media {
                CallMedia::Audio => "audio",
                CallMedia::Video => "video",
            },
            group: self.log.group,
            roomid,
            strroomid,
            privatemapkey: None,
        }
    }

    fn invitee(&self, user: &str) -> Option<Invitee> {
        self.invitees
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, s)| *s)
    }

    fn set(&mut self, user: &str, state: Invitee) {
        if let Some(slot) = self.invitees.iter_mut().find(|(u, _)| u == user) {
            slot.1 = state;
        }
    }

    /// In the call now: the caller (unless left) and invitees who accepted and have not left.
    fn in_call(&self, user: &str) -> bool {
        if user == self.log.caller {
            return !self.caller_left;
        }
        self.invitee(user) == Some(Invitee::Accepted)
    }

    fn parties(&self) -> usize {
        usize::from(!self.caller_left)
            + self
                .invitees
                .iter()
                .filter(|(_, s)| *s == Invitee::Accepted)
                .count()
    }

    fn ringing(&self) -> impl Iterator<Item = &str> {
        self.invitees
            .iter()
            .filter(|(_, s)| matches!(s, Invitee::Ringing { .. }))
            .map(|(u, _)| u.as_str())
    }

    /// Everyone who hears about the call: the caller and invitees ringing or in it.
    fn involved(&self) -> Vec<String> {
        let mut v = Vec::with_capacity(self.invitees.len() + 1);
        if !self.caller_left {
            v.push(self.log.caller.clone());
        }
        v.extend(
            self.invitees
                .iter()
                .filter(|(_, s)| matches!(s, Invitee::Ringing { .. } | Invitee::Accepted))
                .map(|(u, _)| u.clone()),
        );
        v
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimerKind {
    Ring,
    Grace,
    /// A party of a connected call must be in the call's room by then.
    Enter,
}

/// Why a party leaves a call: what the others hear (`call_left`'s reason) and, when that ends
/// the call, its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Departure {
    /// Hung up or logged out.
    Hangup,
    /// The calling socket dropped and the grace ran out.
    Dropped,
    /// An operator removed the party from the call's room (RemoveUser).
    Removed,
    /// An operator dismissed the call's room (DismissRoom).
    Dismissed,
    /// Accepted, but never entered the call's room in time.
    NotEntered,
}

impl Departure {
    fn reason(self) -> &'static str {
        match self {
            Departure::Hangup => "hangup",
            Departure::Dropped => "dropped",
            Departure::Removed => "removed",
            Departure::Dismissed => "dismissed",
            Departure::NotEntered => "not_entered",
        }
    }

    /// The call's result when this departure ends it: only hanging up is a normal end.
    fn result(self) -> CallResult {
        match self {
            Departure::Hangup => CallResult::NormalEnd,
            _ => CallResult::Interrupt,
        }
    }
}

/// How a user left a room, as the call book cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomExit {
    /// Left, timed out or was replaced: their call goes on (they may come back).
    Left,
    /// Removed by an operator.
    Removed,
    /// The room was dismissed.
    Dismissed,
}

/// The calls of every application.
pub struct CallBook {
    ring_timeout: Duration,
    grace: Duration,
    enter_timeout: Duration,
    /// Sessions each user has in each room (the media plane's entries and exits).
    present: HashMap<(SdkAppId, String, RoomKey), u32>,
    calls: HashMap<String, Call>,
    /// The call each busy user is part of (placing, ringing for, or in).
    busy: HashMap<Who, String>,
    online: HashSet<Who>,
    timers: BTreeMap<(Instant, u64), (String, String, TimerKind)>,
    seq: u64,
    out: Vec<Out>,
}

impl CallBook {
    pub fn new(ring_timeout: Duration, grace: Duration, enter_timeout: Duration) -> Self {
        CallBook {
            ring_timeout,
            grace,
            enter_timeout,
            present: HashMap::new(),
            calls: HashMap::new(),
            busy: HashMap::new(),
            online: HashSet::new(),
            timers: BTreeMap::new(),
            seq: 0,
            out: Vec::new(),
        }
    }

    /// What to carry out since the last call.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Out> {
        self.out.drain(..)
    }

    /// Calls ringing or connected.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// When [`CallBook::on_timeout`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.keys().next().map(|(t, _)| *t)
    }

    fn timer(&mut self, at: Instant, call: &str, user: &str, kind: TimerKind) {
        self.seq += 1;
        self.timers
            .insert((at, self.seq), (call.to_owned(), user.to_owned(), kind));
    }

    fn send(&mut self, app: SdkAppId, to: &str, msg: ServerMsg) {
        self.out.push(Out::Send((app, to.to_owned()), msg));
    }

    fn tell_involved(&mut self, call_id: &str, msg: ServerMsg, also: Option<&str>) {
        let Some(call) = self.calls.get(call_id) else {
            return;
        };
        let app = call.log.sdk_app_id;
        let mut to = call.involved();
        if let Some(u) = also {
            if !to.iter().any(|t| t == u) {
                to.push(u.to_owned());
            }
        }
        for u in to {
            self.out.push(Out::Send((app, u), msg.clone()));
        }
    }

    fn save(&mut self, call_id: &str) {
        if let Some(c) = self.calls.get(call_id) {
            self.out.push(Out::Save(c.log.clone()));
        }
    }

    // --- calling sockets ---------------------------------------------------------------

    /// A user logged in: their grace (if any) ends, and they hear their current call.
    pub fn login(&mut self, now: Now, who: Who) {
        self.online.insert(who.clone());
        let Some(call_id) = self.busy.get(&who).cloned() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&call_id) else {
            return;
        };
        call.dropped.remove(&who.1);
        let msg = match call.invitee(&who.1) {
            Some(Invitee::Ringing { until }) => ServerMsg::Invited {
                call: call.info(),
                timeout: until.saturating_duration_since(now.mono).as_secs().max(1),
            },
            _ => ServerMsg::CallState {
                call: call.info(),
                accepted: call
                    .invitees
                    .iter()
                    .filter(|(_, s)| *s == Invitee::Accepted)
                    .map(|(u, _)| u.clone())
                    .collect(),
                ringing: call.ringing().map(str::to_owned).collect(),
            },
        };
        self.send(who.0, &who.1, msg);
    }

    /// A user's calling socket went away. `logout`: on purpose (hangs up at once); otherwise
    /// dropped (the reconnect grace starts if they are in a call). An invitee still ringing
    /// keeps ringing either way: they may log in again, elsewhere, in time.
    pub fn logout(&mut self, now: Now, who: Who, on_purpose: bool) {
        self.online.remove(&who);
        let Some(call_id) = self.busy.get(&who).cloned() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&call_id) else {
            return;
        };
        if !call.in_call(&who.1) {
            return;
        }
        if on_purpose {
            self.leave(now, &call_id, &who.1, Departure::Hangup);
        } else {
            let until = now.mono + self.grace;
            call.dropped.insert(who.1.clone(), until);
            self.timer(until, &call_id, &who.1, TimerKind::Grace);
        }
    }

    // --- call messages -----------------------------------------------------------------

    /// Places a call; the caller hears `call_placed` and invitees `invited` (or the call ends
    /// at once when every invitee is busy).
    pub fn place(&mut self, now: Now, caller: Who, req: CallRequest) -> Result<String, ProtoError> {
        if self.busy.contains_key(&caller) {
            return Err(ProtoError::Conflict("you are already in a call".into()));
        }
        let (app, caller_id) = caller.clone();
        if req.callees.contains(&caller_id) {
            return Err(ProtoError::BadRequest("you cannot call yourself".into()));
        }
        let room = match req.room {
            Some(room) => {
                if self
                    .calls
                    .values()
                    .any(|c| c.log.sdk_app_id == app && c.log.room == room)
                {
                    return Err(ProtoError::Conflict(
                        "another call is using that room".into(),
                    ));
                }
                room
            }
            None => loop {
                let room = rules::random_room();
                if !self
                    .calls
                    .values()
                    .any(|c| c.log.sdk_app_id == app && c.log.room == room)
                {
                    break room;
                }
            },
        };
        let call_id = uuid::Uuid::new_v4().to_string();
        let timeout = req.timeout.unwrap_or(self.ring_timeout);
        let mut call = Call {
            log: CallLog {
                call_id: call_id.clone(),
                sdk_app_id: app,
                caller: caller_id.clone(),
                media: req.media,
                group: req.group,
                callees: req.callees.clone(),
                room,
                started_at: now.wall,
                accepted_at: None,
                ended_at: None,
                result: None,
            },
            invitees: Vec::with_capacity(req.callees.len()),
            caller_left: false,
            dropped: HashMap::new(),
            last_no: None,
        };
        let until = now.mono + timeout;
        let mut busy = Vec::new();
        for callee in &req.callees {
            let who = (app, callee.clone());
            if self.busy.contains_key(&who) {
                call.invitees.push((callee.clone(), Invitee::Busy));
                call.last_no = Some(CallResult::CallBusy);
                busy.push(callee.clone());
            } else {
                call.invitees
                    .push((callee.clone(), Invitee::Ringing { until }));
            }
        }
        self.busy.insert(caller, call_id.clone());
        let info = call.info();
        let ringing: Vec<String> = call.ringing().map(str::to_owned).collect();
        self.out.push(Out::Save(call.log.clone()));
        self.calls.insert(call_id.clone(), call);
        self.send(
            app,
            &caller_id,
            ServerMsg::CallPlaced { call: info.clone() },
        );
        for callee in ringing {
            self.busy.insert((app, callee.clone()), call_id.clone());
            self.timer(until, &call_id, &callee, TimerKind::Ring);
            self.send(
                app,
                &callee,
                ServerMsg::Invited {
                    call: info.clone(),
                    timeout: timeout.as_secs(),
                },
            );
        }
        for callee in busy {
            let msg = ServerMsg::CallBusy {
                callid: call_id.clone(),
                userid: callee,
            };
            self.tell_involved(&call_id, msg, None);
        }
        self.settle(now, &call_id, None);
        Ok(call_id)
    }

    fn call_of(&self, who: &Who, call_id: &str) -> Result<&Call, ProtoError> {
        match self.calls.get(call_id) {
            Some(c) if c.log.sdk_app_id == who.0 => Ok(c),
            _ => Err(ProtoError::NotFound(
                "no such call (it may have ended)".into(),
            )),
        }
    }

    fn ringing_invitee(&self, who: &Who, call_id: &str) -> Result<(), ProtoError> {
        match self.call_of(who, call_id)?.invitee(&who.1) {
            Some(Invitee::Ringing { .. }) => Ok(()),
            Some(_) => Err(ProtoError::Conflict(
                "you have already answered this call".into(),
            )),
            None => Err(ProtoError::Forbidden(
                "you are not invited to this call".into(),
            )),
        }
    }

    pub fn accept(&mut self, now: Now, who: Who, call_id: &str) -> Result<(), ProtoError> {
        self.ringing_invitee(&who, call_id)?;
        let call = self.calls.get_mut(call_id).expect("checked above");
        call.set(&who.1, Invitee::Accepted);
        let first = call.log.accepted_at.is_none();
        let caller = call.log.caller.clone();
        if first {
            call.log.accepted_at = Some(now.wall);
            self.save(call_id);
            // Connected: the caller must be in the room too.
            self.expect_in_room(now, call_id, &caller);
        }
        self.expect_in_room(now, call_id, &who.1);
        let msg = ServerMsg::CallAccepted {
            callid: call_id.to_owned(),
            userid: who.1.clone(),
        };
        self.tell_involved(call_id, msg, None);
        Ok(())
    }

    pub fn reject(&mut self, now: Now, who: Who, call_id: &str) -> Result<(), ProtoError> {
        self.ringing_invitee(&who, call_id)?;
        self.answer_no(now, call_id, &who.1, Invitee::Rejected);
        Ok(())
    }

    pub fn cancel(&mut self, now: Now, who: Who, call_id: &str) -> Result<(), ProtoError> {
        let call = self.call_of(&who, call_id)?;
        if call.log.caller != who.1 {
            return Err(ProtoError::Forbidden(
                "only the caller can cancel a call".into(),
            ));
        }
        if call.log.accepted_at.is_some() {
            return Err(ProtoError::Conflict(
                "the call was answered; hang up instead".into(),
            ));
        }
        self.end(now, call_id, CallResult::Cancel, None);
        Ok(())
    }

    pub fn hangup(&mut self, now: Now, who: Who, call_id: &str) -> Result<(), ProtoError> {
        let call = self.call_of(&who, call_id)?;
        if matches!(call.invitee(&who.1), Some(Invitee::Ringing { .. })) {
            // Hanging up a ringing call is declining it.
            self.answer_no(now, call_id, &who.1, Invitee::Rejected);
            return Ok(());
        }
        if !call.in_call(&who.1) {
            return Err(ProtoError::Conflict("you are not in this call".into()));
        }
        self.leave(now, call_id, &who.1, Departure::Hangup);
        Ok(())
    }

    // --- the call's room ---------------------------------------------------------------

    /// The media plane says `who` entered `room`.
    pub fn room_entered(&mut self, who: Who, room: RoomKey) {
        *self.present.entry((who.0, who.1, room)).or_default() += 1;
    }

    /// The media plane says `who` left `room`: a party removed from their call's room, or whose
    /// room was dismissed, leaves the call.
    pub fn room_exited(&mut self, now: Now, who: Who, room: RoomKey, how: RoomExit) {
        let key = (who.0, who.1, room);
        if let Some(n) = self.present.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.present.remove(&key);
            }
        }
        let (app, user, room) = key;
        let why = match how {
            RoomExit::Left => return,
            RoomExit::Removed => Departure::Removed,
            RoomExit::Dismissed => Departure::Dismissed,
        };
        let Some(call_id) = self.busy.get(&(app, user.clone())).cloned() else {
            return;
        };
        let Some(call) = self.calls.get(&call_id) else {
            return;
        };
        if call.log.room == room && call.in_call(&user) {
            self.leave(now, &call_id, &user, why);
        }
    }

    /// Unless `user` is in the call's room already, they must enter it within the bound.
    fn expect_in_room(&mut self, now: Now, call_id: &str, user: &str) {
        let Some(call) = self.calls.get(call_id) else {
            return;
        };
        let key = (call.log.sdk_app_id, user.to_owned(), call.log.room.clone());
        if !self.present.contains_key(&key) {
            self.timer(
                now.mono + self.enter_timeout,
                call_id,
                user,
                TimerKind::Enter,
            );
        }
    }

    // --- time --------------------------------------------------------------------------

    /// Ends rings and graces that are due.
    pub fn on_timeout(&mut self, now: Now) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now.mono {
                break;
            }
            let ((at, _), (call_id, user, kind)) = entry.remove_entry();
            let Some(call) = self.calls.get(&call_id) else {
                continue;
            };
            match kind {
                TimerKind::Ring => {
                    if call.invitee(&user) == Some(Invitee::Ringing { until: at }) {
                        self.answer_no(now, &call_id, &user, Invitee::NoAnswer);
                    }
                }
                TimerKind::Grace => {
                    if call.dropped.get(&user) == Some(&at) {
                        self.leave(now, &call_id, &user, Departure::Dropped);
                    }
                }
                TimerKind::Enter => {
                    let key = (call.log.sdk_app_id, user.clone(), call.log.room.clone());
                    if call.in_call(&user) && !self.present.contains_key(&key) {
                        self.leave(now, &call_id, &user, Departure::NotEntered);
                    }
                }
            }
        }
    }

    /// Ends every call as `Interrupt` (the server is shutting down).
    pub fn interrupt_all(&mut self, now: Now) {
        let ids: Vec<String> = self.calls.keys().cloned().collect();
        for id in ids {
            self.end(now, &id, CallResult::Interrupt, None);
        }
    }

    // --- transitions -------------------------------------------------------------------

    /// An invitee declined or did not answer in time.
    fn answer_no(&mut self, now: Now, call_id: &str, user: &str, how: Invitee) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        call.set(user, how);
        let app = call.log.sdk_app_id;
        let (result, msg) = if how == Invitee::Rejected {
            (
                CallResult::Reject,
                ServerMsg::CallRejected {
                    callid: call_id.to_owned(),
                    userid: user.to_owned(),
                },
            )
        } else {
            (
                CallResult::NotAnswer,
                ServerMsg::CallNoAnswer {
                    callid: call_id.to_owned(),
                    userid: user.to_owned(),
                },
            )
        };
        call.last_no = Some(result);
        self.busy.remove(&(app, user.to_owned()));
        self.tell_involved(call_id, msg, Some(user));
        self.settle(now, call_id, Some(user));
    }

    /// A party leaves the call, for `why`.
    fn leave(&mut self, now: Now, call_id: &str, user: &str, why: Departure) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let connected = call.log.accepted_at.is_some();
        let result = why.result();
        if user == call.log.caller && !connected {
            // The caller leaving before anyone answered ends the call.
            let r = if why == Departure::Hangup {
                CallResult::Cancel
            } else {
                result
            };
            self.end(now, call_id, r, None);
            return;
        }
        let msg = ServerMsg::CallLeft {
            callid: call_id.to_owned(),
            userid: user.to_owned(),
            reason: why.reason(),
        };
        self.tell_involved(call_id, msg, None);
        let call = self.calls.get_mut(call_id).expect("present above");
        if user == call.log.caller {
            call.caller_left = true;
        } else {
            call.set(user, Invitee::Left);
        }
        call.dropped.remove(user);
        let app = call.log.sdk_app_id;
        self.busy.remove(&(app, user.to_owned()));
        if call.parties() <= 1 {
            self.end(now, call_id, result, Some(user));
        }
    }

    /// Ends a call nobody accepted once nobody rings any more (`also`: who answered last).
    fn settle(&mut self, now: Now, call_id: &str, also: Option<&str>) {
        let Some(call) = self.calls.get(call_id) else {
            return;
        };
        if call.log.accepted_at.is_none() && call.ringing().next().is_none() {
            let result = call.last_no.unwrap_or(CallResult::NotAnswer);
            self.end(now, call_id, result, also);
        }
    }

    fn end(&mut self, now: Now, call_id: &str, result: CallResult, also: Option<&str>) {
        let msg = ServerMsg::CallEnded {
            callid: call_id.to_owned(),
            result: result.as_str(),
        };
        self.tell_involved(call_id, msg, also);
        let Some(mut call) = self.calls.remove(call_id) else {
            return;
        };
        call.log.ended_at = Some(now.wall);
        call.log.result = Some(result);
        let app = call.log.sdk_app_id;
        for user in std::iter::once(&call.log.caller).chain(call.invitees.iter().map(|(u, _)| u)) {
            let who = (app, user.clone());
            if self.busy.get(&who).is_some_and(|c| c == call_id) {
                self.busy.remove(&who);
            }
        }
        self.out.push(Out::Save(call.log));
    }
}
