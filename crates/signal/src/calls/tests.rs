//! The call book in virtual time: each of the six outcomes, group calls, busy users, ring
//! timeouts, reconnect grace and the messages everyone involved hears.

use super::book::{CallBook, Now, Out, RoomExit, Who};
use super::rules::CallRequest;
use crate::proto::{ProtoError, ServerMsg};
use hearth_store::{CallLog, CallResult};
use hearth_types::{RoomKey, SdkAppId, UnixSecs};
use std::time::{Duration, Instant};

const APP: SdkAppId = SdkAppId(1400000001);
const RING: Duration = Duration::from_secs(30);
const GRACE: Duration = Duration::from_secs(10);
/// The enter bound of the tests that are not about it: longer than any of them.
const NO_ENTER_BOUND: Duration = Duration::from_secs(86_400);

struct World {
    book: CallBook,
    t0: Instant,
    at: Duration,
    sent: Vec<(String, ServerMsg)>,
    saved: Vec<CallLog>,
}

fn who(u: &str) -> Who {
    (APP, u.to_owned())
}

fn req(callees: &[&str], group: bool) -> CallRequest {
    CallRequest::parse(
        callees.iter().map(|s| s.to_string()).collect(),
        "video",
        group,
        None,
        None,
        None,
    )
    .unwrap()
}

impl World {
    fn new(online: &[&str]) -> Self {
        Self::with_enter_bound(online, NO_ENTER_BOUND)
    }

    fn with_enter_bound(online: &[&str], enter: Duration) -> Self {
        let mut w = World {
            book: CallBook::new(RING, GRACE, enter),
            t0: Instant::now(),
            at: Duration::ZERO,
            sent: Vec::new(),
            saved: Vec::new(),
        };
        for u in online {
            let now = w.now();
            w.book.login(now, who(u));
        }
        w.pump();
        w
    }

    fn now(&self) -> Now {
        Now {
            mono: self.t0 + self.at,
            wall: UnixSecs(1_000_000 + self.at.as_secs() as i64),
        }
    }

    fn pump(&mut self) {
        for o in self.book.drain() {
            match o {
                Out::Send((_, u), m) => self.sent.push((u, m)),
                Out::Save(l) => self.saved.push(l),
            }
        }
    }

    fn advance(&mut self, d: Duration) {
        self.at += d;
        let now = self.now();
        self.book.on_timeout(now);
        self.pump();
    }

    fn place(&mut self, caller: &str, r: CallRequest) -> String {
        let now = self.now();
        let id = self.book.place(now, who(caller), r).unwrap();
        self.pump();
        id
    }

    fn act(
        &mut self,
        f: fn(&mut CallBook, Now, Who, &str) -> Result<(), ProtoError>,
        u: &str,
        id: &str,
    ) -> Result<(), ProtoError> {
        let now = self.now();
        let r = f(&mut self.book, now, who(u), id);
        self.pump();
        r
    }

    /// Message types `user` heard, in order, then forgets them.
    fn heard(&mut self, user: &str) -> Vec<String> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sent)
            .into_iter()
            .partition(|(u, _)| u == user);
        self.sent = rest;
        mine.into_iter()
            .map(|(_, m)| {
                let v = serde_json::to_value(&m).unwrap();
                match v["result"].as_str() {
                    Some(r) => format!("{}:{r}", v["type"].as_str().unwrap()),
                    None => v["type"].as_str().unwrap().to_owned(),
                }
            })
            .collect()
    }

    fn enter(&mut self, user: &str, room: &RoomKey) {
        self.book.room_entered(who(user), room.clone());
        self.pump();
    }

    fn exit(&mut self, user: &str, room: &RoomKey, how: RoomExit) {
        let now = self.now();
        self.book.room_exited(now, who(user), room.clone(), how);
        self.pump();
    }

    /// `call_left` reasons `user` heard, in order (other messages are kept).
    fn left_reasons(&self, user: &str) -> Vec<(String, String)> {
        self.sent
            .iter()
            .filter(|(u, _)| u == user)
            .filter_map(|(_, m)| match m {
                ServerMsg::CallLeft { userid, reason, .. } => {
                    Some((userid.clone(), reason.to_string()))
                }
                _ => None,
            })
            .collect()
    }

    fn last_record(&self) -> &CallLog {
        self.saved.last().unwrap()
    }
}

#[test]
fn answered_then_hung_up_is_normal_end_with_three_timestamps() {
    let mut w = World::new(&["alice", "bob"]);
    let id = w.place("alice", req(&["bob"], false));
    assert_eq!(w.heard("alice"), ["call_placed"]);
    assert_eq!(w.heard("bob"), ["invited"]);
    assert_eq!(w.last_record().result, None);
    w.advance(Duration::from_secs(4));
    w.act(CallBook::accept, "bob", &id).unwrap();
    assert_eq!(w.heard("alice"), ["call_accepted"]);
    assert_eq!(w.heard("bob"), ["call_accepted"]);
    w.advance(Duration::from_secs(60));
    w.act(CallBook::hangup, "alice", &id).unwrap();
    assert_eq!(w.heard("alice"), ["call_left", "call_ended:NormalEnd"]);
    assert_eq!(w.heard("bob"), ["call_left", "call_ended:NormalEnd"]);
    let r = w.last_record();
    assert_eq!(r.result, Some(CallResult::NormalEnd));
    assert_eq!(r.started_at, UnixSecs(1_000_000));
    assert_eq!(r.accepted_at, Some(UnixSecs(1_000_004)));
    assert_eq!(r.ended_at, Some(UnixSecs(1_000_064)));
    assert_eq!(r.callees, ["bob"]);
    assert!(matches!(r.room, RoomKey::Num(_)));
    assert_eq!(w.saved.len(), 3, "placed, answered, ended");
    // Both are free again; the ended call is gone.
    assert!(matches!(
        w.act(CallBook::hangup, "bob", &id),
        Err(ProtoError::NotFound(_))
    ));
    w.place("bob", req(&["alice"], false));
}

#[test]
fn rejected_cancelled_and_unanswered_calls() {
    let mut w = World::new(&["alice", "bob"]);
    let id = w.place("alice", req(&["bob"], false));
    w.act(CallBook::reject, "bob", &id).unwrap();
    assert_eq!(w.last_record().result, Some(CallResult::Reject));
    assert_eq!(w.last_record().accepted_at, None);
    assert_eq!(
        w.heard("alice"),
        ["call_placed", "call_rejected", "call_ended:Reject"]
    );
    assert_eq!(
        w.heard("bob"),
        ["invited", "call_rejected", "call_ended:Reject"]
    );

    w.heard("bob");
    let id = w.place("alice", req(&["bob"], false));
    assert!(matches!(
        w.act(CallBook::cancel, "bob", &id),
        Err(ProtoError::Forbidden(_))
    ));
    w.act(CallBook::cancel, "alice", &id).unwrap();
    assert_eq!(w.last_record().result, Some(CallResult::Cancel));
    assert_eq!(w.heard("bob"), ["invited", "call_ended:Cancel"]);

    let id = w.place("alice", req(&["bob"], false));
    w.advance(RING - Duration::from_secs(1));
    assert!(w.last_record().result.is_none());
    w.advance(Duration::from_secs(1));
    assert_eq!(w.last_record().call_id, id);
    assert_eq!(w.last_record().result, Some(CallResult::NotAnswer));
    assert_eq!(w.last_record().ended_at, Some(UnixSecs(1_000_030)));
    assert!(matches!(
        w.act(CallBook::accept, "bob", &id),
        Err(ProtoError::NotFound(_))
    ));
}

#[test]
fn a_busy_callee_answers_call_busy_and_a_busy_caller_cannot_call() {
    let mut w = World::new(&["alice", "bob", "carol"]);
    let first = w.place("alice", req(&["bob"], false));
    w.heard("carol");
    let busy = w.place("carol", req(&["bob"], false));
    assert_eq!(
        w.heard("carol"),
        ["call_placed", "call_busy", "call_ended:CallBusy"]
    );
    assert_eq!(
        w.heard("bob"),
        ["invited"],
        "bob hears nothing of carol's call"
    );
    assert_eq!(w.last_record().call_id, busy);
    assert_eq!(w.last_record().result, Some(CallResult::CallBusy));
    let now = w.now();
    assert!(matches!(
        w.book.place(now, who("alice"), req(&["carol"], false)),
        Err(ProtoError::Conflict(_))
    ));
    // The first call is untouched.
    w.act(CallBook::accept, "bob", &first).unwrap();
}

#[test]
fn a_dropped_party_interrupts_after_the_grace_unless_back_in_time() {
    let mut w = World::new(&["alice", "bob"]);
    let id = w.place("alice", req(&["bob"], false));
    w.act(CallBook::accept, "bob", &id).unwrap();
    w.heard("alice");
    w.heard("bob");
    let now = w.now();
    w.book.logout(now, who("bob"), false);
    w.advance(GRACE - Duration::from_secs(1));
    let now = w.now();
    w.book.login(now, who("bob"));
    w.pump();
    assert_eq!(w.heard("bob"), ["call_state"]);
    w.advance(GRACE * 2);
    assert!(w.last_record().result.is_none(), "bob came back in time");

    let now = w.now();
    w.book.logout(now, who("bob"), false);
    w.advance(GRACE);
    assert_eq!(w.heard("alice"), ["call_left", "call_ended:Interrupt"]);
    assert_eq!(w.last_record().result, Some(CallResult::Interrupt));
}

#[test]
fn a_caller_dropping_before_an_answer_interrupts_and_logging_out_cancels() {
    let mut w = World::new(&["alice", "bob"]);
    w.place("alice", req(&["bob"], false));
    let now = w.now();
    w.book.logout(now, who("alice"), false);
    w.advance(GRACE);
    assert_eq!(w.last_record().result, Some(CallResult::Interrupt));
    let now = w.now();
    w.book.login(now, who("alice"));
    w.place("alice", req(&["bob"], false));
    let now = w.now();
    w.book.logout(now, who("alice"), true);
    w.pump();
    assert_eq!(w.last_record().result, Some(CallResult::Cancel));
}

#[test]
fn group_calls_carry_on_until_one_party_is_left() {
    let mut w = World::new(&["alice", "bob", "carol", "dave"]);
    let id = w.place("alice", req(&["bob", "carol", "dave"], true));
    w.act(CallBook::accept, "bob", &id).unwrap();
    w.act(CallBook::reject, "carol", &id).unwrap();
    w.act(CallBook::accept, "dave", &id).unwrap();
    assert!(matches!(
        w.act(CallBook::accept, "dave", &id),
        Err(ProtoError::Conflict(_))
    ));
    assert!(matches!(
        w.act(CallBook::accept, "eve", &id),
        Err(ProtoError::Forbidden(_))
    ));
    assert!(matches!(
        w.act(CallBook::cancel, "alice", &id),
        Err(ProtoError::Conflict(_))
    ));
    w.act(CallBook::hangup, "alice", &id).unwrap();
    assert!(w.last_record().result.is_none(), "bob and dave still talk");
    w.act(CallBook::hangup, "bob", &id).unwrap();
    let r = w.last_record();
    assert_eq!(r.result, Some(CallResult::NormalEnd));
    assert!(r.group);
    assert_eq!(r.callees, ["bob", "carol", "dave"]);
    assert_eq!(
        w.heard("dave"),
        [
            "invited",
            "call_accepted",
            "call_rejected",
            "call_accepted",
            "call_left",
            "call_left",
            "call_ended:NormalEnd"
        ]
    );
    assert_eq!(
        w.heard("carol"),
        ["invited", "call_accepted", "call_rejected"]
    );
}

#[test]
fn an_unanswered_group_call_ends_as_its_last_invitee_answered() {
    let mut w = World::new(&["alice", "bob", "carol"]);
    let id = w.place("alice", req(&["bob", "carol"], true));
    w.act(CallBook::reject, "bob", &id).unwrap();
    assert!(w.last_record().result.is_none(), "carol still rings");
    w.advance(RING);
    assert_eq!(w.last_record().result, Some(CallResult::NotAnswer));
}

#[test]
fn an_offline_invitee_rings_on_login_for_the_time_left() {
    let mut w = World::new(&["alice"]);
    let id = w.place("alice", req(&["bob"], false));
    w.advance(Duration::from_secs(12));
    let now = w.now();
    w.book.login(now, who("bob"));
    w.pump();
    let (_, msg) = w.sent.iter().rev().find(|(u, _)| u == "bob").unwrap();
    match msg {
        ServerMsg::Invited { call, timeout } => {
            assert_eq!(call.callid, id);
            assert_eq!(*timeout, 18);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_named_room_in_use_by_another_call_is_refused() {
    let mut w = World::new(&["alice", "bob", "carol", "dave"]);
    let mut r = req(&["bob"], false);
    r.room = Some(RoomKey::string("standup").unwrap());
    w.place("alice", r.clone());
    let now = w.now();
    assert!(matches!(
        w.book.place(
            now,
            who("carol"),
            CallRequest {
                callees: vec!["dave".into()],
                ..r
            }
        ),
        Err(ProtoError::Conflict(_))
    ));
}

#[test]
fn server_shutdown_interrupts_every_call() {
    let mut w = World::new(&["alice", "bob"]);
    let id = w.place("alice", req(&["bob"], false));
    w.act(CallBook::accept, "bob", &id).unwrap();
    let now = w.now();
    w.book.interrupt_all(now);
    w.pump();
    assert_eq!(w.last_record().result, Some(CallResult::Interrupt));
    assert_eq!(
        w.heard("bob"),
        ["invited", "call_accepted", "call_ended:Interrupt"]
    );
    // Nobody is left busy.
    w.place("bob", req(&["alice"], false));
}

/// Random sequences of every operation from a few users: whatever happens, a call's record is
/// never written after it ended, times are ordered, and once every call is over nobody is busy.
#[test]
fn random_play_keeps_the_book_consistent() {
    use rand::{Rng, SeedableRng};
    let users = ["u0", "u1", "u2", "u3", "u4"];
    for seed in 0..200u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut w = World::new(&users);
        let mut ids: Vec<String> = Vec::new();
        for _ in 0..60 {
            let u = users[rng.gen_range(0..users.len())];
            let id = ids
                .get(rng.gen_range(0..ids.len().max(1)))
                .cloned()
                .unwrap_or_default();
            let now = w.now();
            match rng.gen_range(0..9) {
                0 => {
                    let n = rng.gen_range(1..=3);
                    let callees: Vec<&str> =
                        users.iter().copied().filter(|c| *c != u).take(n).collect();
                    let group = callees.len() > 1 || rng.gen_bool(0.3);
                    if let Ok(id) = w.book.place(now, who(u), req(&callees, group)) {
                        ids.push(id);
                    }
                }
                1 => drop(w.book.accept(now, who(u), &id)),
                2 => drop(w.book.reject(now, who(u), &id)),
                3 => drop(w.book.cancel(now, who(u), &id)),
                4 => drop(w.book.hangup(now, who(u), &id)),
                5 => w.book.logout(now, who(u), rng.gen_bool(0.5)),
                6 => w.book.login(now, who(u)),
                _ => {
                    w.pump();
                    w.advance(Duration::from_secs(rng.gen_range(1..15)));
                }
            }
            w.pump();
        }
        w.advance(RING + GRACE);
        let now = w.now();
        w.book.interrupt_all(now);
        w.pump();
        let mut ended = std::collections::HashSet::new();
        for r in &w.saved {
            assert!(
                !ended.contains(&r.call_id),
                "seed {seed}: {r:?} saved after it ended"
            );
            if let Some(a) = r.accepted_at {
                assert!(r.started_at <= a, "seed {seed}: {r:?}");
            }
            if let Some(e) = r.ended_at {
                assert!(r.result.is_some() && r.accepted_at.is_none_or(|a| a <= e));
                ended.insert(r.call_id.clone());
            }
        }
        assert_eq!(ended.len(), ids.len(), "seed {seed}: every call ended once");
        assert_eq!(w.book.len(), 0);
        for u in users {
            let now = w.now();
            w.book.login(now, who(u));
            let other = if u == "u0" { "u1" } else { "u0" };
            let placed = w.book.place(now, who(u), req(&[other], false));
            assert!(placed.is_ok(), "seed {seed}: {u} still busy: {placed:?}");
            w.book.interrupt_all(now);
        }
    }
}

#[test]
fn a_party_removed_from_the_room_leaves_and_a_two_party_call_ends_as_interrupt() {
    let mut w = World::new(&["alice", "bob"]);
    let id = w.place("alice", req(&["bob"], false));
    let room = w.last_record().room.clone();
    w.act(CallBook::accept, "bob", &id).unwrap();
    w.enter("alice", &room);
    w.enter("bob", &room);
    w.heard("alice");
    w.heard("bob");
    // Leaving the room on one's own (or a network timeout) is not leaving the call.
    w.exit("bob", &room, RoomExit::Left);
    w.enter("bob", &room);
    assert!(w.sent.is_empty());
    // Removed in another room: nothing happens to this call.
    w.exit("bob", &RoomKey::Str("elsewhere".into()), RoomExit::Removed);
    assert!(w.sent.is_empty());
    w.exit("bob", &room, RoomExit::Removed);
    assert_eq!(
        w.left_reasons("alice"),
        [("bob".to_owned(), "removed".to_owned())]
    );
    assert_eq!(w.heard("alice"), ["call_left", "call_ended:Interrupt"]);
    assert_eq!(w.heard("bob"), ["call_left", "call_ended:Interrupt"]);
    assert_eq!(w.last_record().result, Some(CallResult::Interrupt));
    assert_eq!(w.book.len(), 0);
}

#[test]
fn a_group_call_goes_on_without_the_removed_and_ends_when_its_room_is_dismissed() {
    let mut w = World::new(&["alice", "bob", "carol"]);
    let id = w.place("alice", req(&["bob", "carol"], true));
    let room = w.last_record().room.clone();
    w.act(CallBook::accept, "bob", &id).unwrap();
    w.act(CallBook::accept, "carol", &id).unwrap();
    for u in ["alice", "bob", "carol"] {
        w.enter(u, &room);
        w.heard(u);
    }
    w.exit("carol", &room, RoomExit::Removed);
    assert_eq!(w.heard("alice"), ["call_left"]);
    assert_eq!(w.heard("bob"), ["call_left"]);
    assert_eq!(w.heard("carol"), ["call_left"]);
    assert_eq!(w.book.len(), 1);
    // Dismissing the room takes everyone out of it, one exit each.
    w.exit("alice", &room, RoomExit::Dismissed);
    assert_eq!(
        w.left_reasons("bob"),
        [("alice".to_owned(), "dismissed".to_owned())]
    );
    assert_eq!(w.heard("bob"), ["call_left", "call_ended:Interrupt"]);
    w.exit("bob", &room, RoomExit::Dismissed);
    assert_eq!(w.last_record().result, Some(CallResult::Interrupt));
    assert_eq!(w.book.len(), 0);
}

#[test]
fn a_party_who_never_enters_the_room_leaves_after_the_bound() {
    let bound = Duration::from_secs(20);
    let mut w = World::with_enter_bound(&["alice", "bob", "carol", "dave"], bound);
    // Alice is in the room before the call is answered; bob never comes.
    let id = w.place("alice", req(&["bob"], false));
    let room = w.last_record().room.clone();
    w.enter("alice", &room);
    w.act(CallBook::accept, "bob", &id).unwrap();
    w.heard("alice");
    w.heard("bob");
    w.advance(Duration::from_secs(19));
    assert!(w.sent.is_empty());
    w.advance(Duration::from_secs(1));
    assert_eq!(
        w.left_reasons("alice"),
        [("bob".to_owned(), "not_entered".to_owned())]
    );
    assert_eq!(w.heard("alice"), ["call_left", "call_ended:Interrupt"]);
    assert_eq!(w.last_record().result, Some(CallResult::Interrupt));

    // Carol enters in time (after accepting): the call goes on past the bound.
    let id = w.place("carol", req(&["dave"], false));
    let room = w.last_record().room.clone();
    w.act(CallBook::accept, "dave", &id).unwrap();
    w.advance(Duration::from_secs(5));
    w.enter("carol", &room);
    w.enter("dave", &room);
    w.advance(Duration::from_secs(30));
    assert_eq!(w.book.len(), 1);
    w.act(CallBook::hangup, "dave", &id).unwrap();
    assert_eq!(w.last_record().result, Some(CallResult::NormalEnd));
}
