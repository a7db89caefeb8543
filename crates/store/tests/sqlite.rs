//! Behaviour of `SqliteStore` through the `Store` trait: persistence across reopen, tenants,
//! call and session lifecycles, windows and paging, reports, retention, telemetry, and
//! concurrent readers beside a writer.

use hearth_store::*;
use hearth_types::{CommId, RoomKey, SdkAppId, UnixSecs, UserId};
use std::sync::Arc;

const APP: SdkAppId = SdkAppId(1_400_000_001);
const OTHER_APP: SdkAppId = SdkAppId(1_400_000_002);
/// A UTC day start (2023-12-09).
const D: i64 = 19_700 * 86_400;
const DAY: i64 = 86_400;

fn t(s: i64) -> UnixSecs {
    UnixSecs(s)
}

fn user(u: &str) -> UserId {
    UserId(u.to_owned())
}

fn new_call(app: SdkAppId, room: RoomKey, created: i64) -> CallRecord {
    CallRecord {
        comm_id: CommId::new(app, &room, t(created)),
        sdk_app_id: app,
        room,
        creator: "alice".into(),
        created_at: t(created),
        destroyed_at: None,
    }
}

fn started(store: &SqliteStore, app: SdkAppId, room: RoomKey, created: i64) -> CallRecord {
    let call = new_call(app, room, created);
    store.start_call(&call).unwrap();
    call
}

fn join(store: &SqliteStore, call: &CallRecord, u: &str, at: i64) -> SessionId {
    store
        .open_session(&NewSession {
            comm_id: call.comm_id.clone(),
            sdk_app_id: call.sdk_app_id,
            user_id: user(u),
            joined_at: t(at),
            device_type: "web".into(),
            sdk_version: "5.0.0".into(),
            client_ip: "192.0.2.1".into(),
        })
        .unwrap()
}

/// A session from `joined` to `left`.
fn visit(store: &SqliteStore, call: &CallRecord, u: &str, joined: i64, left: i64) -> SessionId {
    let id = join(store, call, u, joined);
    store
        .close_session(id, t(left), LeaveReason::Normal)
        .unwrap();
    id
}

fn window(app: SdkAppId, start: i64, end: i64) -> CallQuery {
    CallQuery {
        sdk_app_id: app,
        start: t(start),
        end: t(end),
        room_string: None,
        offset: 0,
        limit: 100,
    }
}

fn comm_ids(page: &Page<CallRecord>) -> Vec<String> {
    page.items.iter().map(|c| c.comm_id.0.clone()).collect()
}

fn event(call: &CallRecord, u: &str, time_ms: i64, event_id: u32) -> EventRecord {
    EventRecord {
        sdk_app_id: call.sdk_app_id,
        comm_id: call.comm_id.clone(),
        user_id: user(u),
        time_ms,
        event_id,
        param_one: -1,
        param_two: -1,
    }
}

fn sample(call: &CallRecord, u: &str, metric: &str, time: i64, value: f64) -> QualitySample {
    QualitySample {
        sdk_app_id: call.sdk_app_id,
        comm_id: call.comm_id.clone(),
        user_id: user(u),
        peer: String::new(),
        metric: metric.into(),
        time: t(time),
        value,
    }
}

fn event_query(call: &CallRecord, u: &str, start_ms: i64, end_ms: i64) -> EventQuery {
    EventQuery {
        sdk_app_id: call.sdk_app_id,
        comm_id: call.comm_id.clone(),
        user_id: user(u),
        start_ms,
        end_ms,
    }
}

#[test]
fn store_is_shareable_across_threads() {
    fn assert_store<S: Store>() {}
    assert_store::<SqliteStore>();
}

#[test]
fn reopening_a_file_keeps_data_and_applies_no_migration_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.db");
    let app = AppRecord {
        sdk_app_id: APP,
        secret_key: "k".into(),
        admins: vec!["admin".into()],
        created_at: t(D),
    };
    let call = {
        let store = SqliteStore::open(&path).unwrap();
        store.upsert_app(&app).unwrap();
        let call = started(&store, APP, RoomKey::Num(7), D);
        join(&store, &call, "bob", D + 1);
        store.flush().unwrap();
        call
    };
    for _ in 0..2 {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.apps().unwrap(), vec![app.clone()]);
        assert_eq!(
            store.open_call(APP, &RoomKey::Num(7)).unwrap(),
            Some(call.clone())
        );
        assert_eq!(store.active_sessions(&call.comm_id).unwrap().len(), 1);
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(version >= 1);
}

#[test]
fn apps_and_credentials_are_upserted_and_listed() {
    let store = SqliteStore::open_in_memory().unwrap();
    let mut a = AppRecord {
        sdk_app_id: OTHER_APP,
        secret_key: "k2".into(),
        admins: vec![],
        created_at: t(1),
    };
    let b = AppRecord {
        sdk_app_id: APP,
        secret_key: "k1".into(),
        admins: vec!["x".into(), "y".into()],
        created_at: t(2),
    };
    store.upsert_app(&a).unwrap();
    store.upsert_app(&b).unwrap();
    a.secret_key = "rotated".into();
    a.admins = vec!["root".into()];
    store.upsert_app(&a).unwrap();
    assert_eq!(store.apps().unwrap(), vec![b, a]);

    let mut c = CredentialRecord {
        secret_id: "AKIDb".into(),
        secret_key: "s".into(),
        apps: vec![APP],
        created_at: t(3),
    };
    let d = CredentialRecord {
        secret_id: "AKIDa".into(),
        secret_key: "s2".into(),
        apps: vec![],
        created_at: t(4),
    };
    store.upsert_credential(&c).unwrap();
    store.upsert_credential(&d).unwrap();
    c.apps = vec![APP, OTHER_APP];
    store.upsert_credential(&c).unwrap();
    assert_eq!(store.credentials().unwrap(), vec![d, c]);
}

#[test]
fn call_lifecycle_closes_open_sessions_on_finish() {
    let store = SqliteStore::open_in_memory().unwrap();
    let room = RoomKey::Str("lobby".into());
    assert_eq!(store.open_call(APP, &room).unwrap(), None);
    let call = started(&store, APP, room.clone(), D);
    assert_eq!(store.open_call(APP, &room).unwrap(), Some(call.clone()));
    assert_eq!(store.call(APP, &call.comm_id).unwrap(), Some(call.clone()));
    assert_eq!(store.call(OTHER_APP, &call.comm_id).unwrap(), None);

    let early = visit(&store, &call, "alice", D, D + 10);
    let bob = join(&store, &call, "bob", D + 5);
    let carol = join(&store, &call, "carol", D + 6);
    assert!(bob < carol && early < bob);
    let active = store.active_sessions(&call.comm_id).unwrap();
    assert_eq!(
        active.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![bob, carol]
    );
    assert_eq!(active[0].room, room);
    assert_eq!(active[0].client_ip, "192.0.2.1");

    store
        .close_session(bob, t(D + 20), LeaveReason::Kicked)
        .unwrap();
    // Closing again keeps the first exit.
    store
        .close_session(bob, t(D + 30), LeaveReason::Normal)
        .unwrap();
    store
        .finish_call(&call.comm_id, t(D + 40), LeaveReason::RoomDismissed)
        .unwrap();

    assert_eq!(store.open_call(APP, &room).unwrap(), None);
    assert_eq!(
        store
            .call(APP, &call.comm_id)
            .unwrap()
            .unwrap()
            .destroyed_at,
        Some(t(D + 40))
    );
    assert!(store.active_sessions(&call.comm_id).unwrap().is_empty());
    let all = store
        .sessions_of_call(&SessionQuery {
            sdk_app_id: APP,
            comm_id: call.comm_id.clone(),
            start: t(0),
            end: t(i64::MAX),
            user_ids: vec![],
            offset: 0,
            limit: 10,
        })
        .unwrap();
    let exits: Vec<_> = all
        .items
        .iter()
        .map(|s| (s.user_id.0.as_str(), s.left_at, s.leave_reason))
        .collect();
    assert_eq!(
        exits,
        vec![
            ("alice", Some(t(D + 10)), Some(LeaveReason::Normal)),
            ("bob", Some(t(D + 20)), Some(LeaveReason::Kicked)),
            ("carol", Some(t(D + 40)), Some(LeaveReason::RoomDismissed)),
        ]
    );

    // The room can live again under a new CommId.
    let again = started(&store, APP, room.clone(), D + 100);
    assert_eq!(store.open_call(APP, &room).unwrap(), Some(again));
}

#[test]
fn numeric_and_string_rooms_with_the_same_digits_are_different_rooms() {
    let store = SqliteStore::open_in_memory().unwrap();
    let num = started(&store, APP, RoomKey::Num(123), D);
    assert_eq!(
        store.open_call(APP, &RoomKey::Str("123".into())).unwrap(),
        None
    );
    let s = started(&store, APP, RoomKey::Str("123".into()), D + 1);
    assert_eq!(
        store.open_call(APP, &RoomKey::Num(123)).unwrap(),
        Some(num.clone())
    );
    assert_eq!(
        store.open_call(APP, &RoomKey::Str("123".into())).unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        store.open_call(OTHER_APP, &RoomKey::Num(123)).unwrap(),
        None
    );
    // Both print as "123", so the room filter of a listing matches both.
    let q = CallQuery {
        room_string: Some("123".into()),
        ..window(APP, D, D + 10)
    };
    assert_eq!(store.calls_in_window(&q).unwrap().items, vec![num, s]);
}

#[test]
fn calls_overlapping_a_window_are_listed_oldest_first_in_pages() {
    let store = SqliteStore::open_in_memory().unwrap();
    let finish = |c: &CallRecord, at: i64| {
        store
            .finish_call(&c.comm_id, t(at), LeaveReason::Normal)
            .unwrap()
    };
    let before = started(&store, APP, RoomKey::Num(1), D - 100);
    finish(&before, D - 1); // ended just before the window
    let touching = started(&store, APP, RoomKey::Num(2), D - 50);
    finish(&touching, D); // ends exactly at the start
    let spanning = started(&store, APP, RoomKey::Num(3), D - 10);
    let inside_b = started(&store, APP, RoomKey::Num(5), D + 20);
    finish(&inside_b, D + 30);
    let inside_a = started(&store, APP, RoomKey::Num(4), D + 20);
    let at_end = started(&store, APP, RoomKey::Str("late".into()), D + 100);
    let after = started(&store, APP, RoomKey::Num(6), D + 101);
    started(&store, OTHER_APP, RoomKey::Num(3), D + 50);
    let _ = (before, after);

    let page = store.calls_in_window(&window(APP, D, D + 100)).unwrap();
    assert_eq!(page.total, 5);
    let mut same_second = vec![inside_a.comm_id.0.clone(), inside_b.comm_id.0.clone()];
    same_second.sort();
    let mut expected = vec![touching.comm_id.0.clone(), spanning.comm_id.0.clone()];
    expected.extend(same_second);
    expected.push(at_end.comm_id.0.clone());
    assert_eq!(comm_ids(&page), expected);

    let q = CallQuery {
        offset: 1,
        limit: 2,
        ..window(APP, D, D + 100)
    };
    let page2 = store.calls_in_window(&q).unwrap();
    assert_eq!(page2.total, 5);
    assert_eq!(comm_ids(&page2), expected[1..3].to_vec());
    let q = CallQuery {
        offset: 10,
        limit: 2,
        ..window(APP, D, D + 100)
    };
    let empty = store.calls_in_window(&q).unwrap();
    assert_eq!((empty.total, empty.items.len()), (5, 0));

    let q = CallQuery {
        room_string: Some("late".into()),
        ..window(APP, D, D + 100)
    };
    assert_eq!(store.calls_in_window(&q).unwrap().items, vec![at_end]);
    let q = CallQuery {
        room_string: Some("3".into()),
        ..window(APP, D, D + 100)
    };
    assert_eq!(store.calls_in_window(&q).unwrap().items, vec![spanning]);
}

#[test]
fn sessions_of_a_call_overlap_the_window_and_filter_by_user() {
    let store = SqliteStore::open_in_memory().unwrap();
    let call = started(&store, APP, RoomKey::Num(9), D);
    let other = started(&store, APP, RoomKey::Num(10), D);
    visit(&store, &call, "a", D, D + 9); // ends before the window
    let s1 = visit(&store, &call, "b", D + 5, D + 10); // touches its start
    let s2 = join(&store, &call, "a", D + 15); // still in
    let s3 = visit(&store, &call, "c", D + 20, D + 25);
    visit(&store, &call, "b", D + 31, D + 40); // starts after it
    visit(&store, &other, "b", D + 15, D + 16);

    let q = |users: &[&str], offset, limit| SessionQuery {
        sdk_app_id: APP,
        comm_id: call.comm_id.clone(),
        start: t(D + 10),
        end: t(D + 30),
        user_ids: users.iter().map(|u| user(u)).collect(),
        offset,
        limit,
    };
    let ids = |p: Page<SessionRecord>| (p.total, p.items.iter().map(|s| s.id).collect::<Vec<_>>());
    assert_eq!(
        ids(store.sessions_of_call(&q(&[], 0, 10)).unwrap()),
        (3, vec![s1, s2, s3])
    );
    assert_eq!(
        ids(store.sessions_of_call(&q(&[], 1, 1)).unwrap()),
        (3, vec![s2])
    );
    assert_eq!(
        ids(store.sessions_of_call(&q(&["a", "c"], 0, 10)).unwrap()),
        (2, vec![s2, s3])
    );
    assert_eq!(
        ids(store.sessions_of_call(&q(&["nobody"], 0, 10)).unwrap()),
        (0, vec![])
    );
    let wrong_app = SessionQuery {
        sdk_app_id: OTHER_APP,
        ..q(&[], 0, 10)
    };
    assert_eq!(store.sessions_of_call(&wrong_app).unwrap().total, 0);
}

#[test]
fn scale_buckets_count_online_peaks_and_distinct_per_bucket() {
    let store = SqliteStore::open_in_memory().unwrap();
    // Room 1 from 100 to 260: u1 100–250, u2 105–115 and again 130–140, u3 135–260.
    let a = started(&store, APP, RoomKey::Num(1), D + 100);
    visit(&store, &a, "u1", D + 100, D + 250);
    visit(&store, &a, "u2", D + 105, D + 115);
    visit(&store, &a, "u2", D + 130, D + 140);
    visit(&store, &a, "u3", D + 135, D + 260);
    store
        .finish_call(&a.comm_id, t(D + 260), LeaveReason::Normal)
        .unwrap();
    // Room "s" from 120, still open (counts until now): u4 from 120, still in.
    let b = started(&store, APP, RoomKey::Str("s".into()), D + 120);
    join(&store, &b, "u4", D + 120);
    let other = started(&store, OTHER_APP, RoomKey::Num(1), D + 100);
    visit(&store, &other, "u9", D + 100, D + 200);

    let bucket =
        |start: i64, online: (u64, u64), peak: (u64, u64), distinct: (u64, u64)| ScaleBucket {
            start: t(D + start),
            online_users: online.0,
            online_rooms: online.1,
            peak_users: peak.0,
            peak_rooms: peak.1,
            users: distinct.0,
            rooms: distinct.1,
        };
    let got = store
        .scale_buckets(APP, None, t(D + 100), t(D + 160), 20)
        .unwrap();
    assert_eq!(
        got,
        vec![
            // 100–120: u1, u2 (105–115); room 1; u4 and room "s" from 120, not in it.
            bucket(100, (1, 1), (2, 1), (2, 1)),
            // 120–140: u1, u4 at the start; u2 again 130–140 and u3 from 135: four at once.
            bucket(120, (2, 2), (4, 2), (4, 2)),
            // 140–160: u1, u3, u4 (u2 left at 140).
            bucket(140, (3, 2), (3, 2), (3, 2)),
        ]
    );
    // One room by its ID (numeric or string).
    let one = store
        .scale_buckets(APP, Some("s"), t(D + 100), t(D + 160), 20)
        .unwrap();
    assert_eq!(
        one.iter().map(|b| (b.users, b.rooms)).collect::<Vec<_>>(),
        vec![(0, 0), (1, 1), (1, 1)]
    );
    // After room 1 ended: only the open room and its user, up to now.
    let later = store
        .scale_buckets(APP, None, t(D + 300), t(D + 310), 10)
        .unwrap();
    assert_eq!(later, vec![bucket(300, (1, 1), (1, 1), (1, 1))]);
    // A partial last bucket, and an empty or inverted range.
    assert_eq!(
        store
            .scale_buckets(APP, None, t(D + 100), t(D + 105), 20)
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .scale_buckets(APP, None, t(D + 100), t(D + 100), 20)
        .unwrap()
        .is_empty());
    assert!(store
        .scale_buckets(APP, None, t(D + 100), t(D + 50), 20)
        .unwrap()
        .is_empty());
}

#[test]
fn daily_scale_counts_rooms_users_and_entries_per_day() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a = started(&store, APP, RoomKey::Num(1), D + 100);
    visit(&store, &a, "u1", D + 100, D + DAY + 40); // days 0 and 1
    visit(&store, &a, "u2", D + 200, D + 300);
    visit(&store, &a, "u2", D + 400, D + 500);
    store
        .finish_call(&a.comm_id, t(D + DAY + 50), LeaveReason::Normal)
        .unwrap();
    let b = started(&store, APP, RoomKey::Num(2), D + 2 * DAY + 10);
    visit(&store, &b, "u1", D + 2 * DAY + 20, D + 2 * DAY + 100);
    store
        .finish_call(&b.comm_id, t(D + 2 * DAY + 500), LeaveReason::Normal)
        .unwrap();
    let c = started(&store, OTHER_APP, RoomKey::Num(1), D + 100);
    visit(&store, &c, "u9", D + 100, D + 200);

    let day = |n: i64, rooms, users, entries| ScaleDay {
        day_start: t(D + n * DAY),
        rooms,
        users,
        entries,
    };
    assert_eq!(
        store.daily_scale(APP, t(D + 5000), t(D + 5 * DAY)).unwrap(),
        vec![day(2, 1, 1, 1), day(1, 1, 1, 0), day(0, 1, 2, 3)]
    );
    // `to` is exclusive; `from` counts from the start of its day.
    assert_eq!(
        store
            .daily_scale(APP, t(D + DAY + 7), t(D + 2 * DAY))
            .unwrap(),
        vec![day(1, 1, 1, 0)]
    );
    assert_eq!(
        store
            .daily_scale(APP, t(D + 3 * DAY), t(D + 9 * DAY))
            .unwrap(),
        vec![]
    );
    assert_eq!(store.daily_scale(APP, t(D + DAY), t(D)).unwrap(), vec![]);
    assert_eq!(
        store.daily_scale(OTHER_APP, t(D), t(D + DAY)).unwrap(),
        vec![day(0, 1, 1, 1)]
    );
    // Absurd bounds neither overflow nor hang.
    assert_eq!(
        store
            .daily_scale(APP, t(i64::MIN), t(i64::MAX))
            .unwrap()
            .len(),
        3
    );

    // An open call counts on every day up to `to` that is not in the future.
    let open = started(&store, APP, RoomKey::Num(3), D + 3 * DAY + 1);
    join(&store, &open, "u3", D + 3 * DAY + 2);
    let scale = store
        .daily_scale(APP, t(D + 3 * DAY), t(D + 6 * DAY))
        .unwrap();
    assert_eq!(
        scale,
        vec![day(5, 1, 1, 0), day(4, 1, 1, 0), day(3, 1, 1, 1)]
    );
}

#[test]
fn purge_removes_old_finished_calls_with_their_data_and_keeps_open_ones() {
    let store = SqliteStore::open_in_memory().unwrap();
    let old = started(&store, APP, RoomKey::Num(1), D);
    visit(&store, &old, "a", D, D + 10);
    join(&store, &old, "b", D + 1);
    store
        .append_events(&[event(&old, "a", D * 1000, 1), event(&old, "b", D * 1000, 1)])
        .unwrap();
    store
        .append_quality(&[sample(&old, "a", "rtt", D + 1, 20.0)])
        .unwrap();
    store
        .finish_call(&old.comm_id, t(D + 20), LeaveReason::Normal)
        .unwrap();

    let open = started(&store, APP, RoomKey::Num(2), D - DAY);
    join(&store, &open, "c", D - DAY);
    store
        .append_events(&[event(&open, "c", (D - DAY) * 1000, 1)])
        .unwrap();
    store
        .append_quality(&[sample(&open, "c", "rtt", D - DAY, 1.0)])
        .unwrap();

    let recent = started(&store, APP, RoomKey::Num(3), D + 50);
    visit(&store, &recent, "d", D + 50, D + 60);
    store
        .finish_call(&recent.comm_id, t(D + 200), LeaveReason::Normal)
        .unwrap();

    let task = |id: &str, ended: Option<i64>| TaskRecord {
        task_id: id.into(),
        sdk_app_id: APP,
        kind: "recording".into(),
        state: "done".into(),
        room: Some(RoomKey::Num(1)),
        params_json: "{}".into(),
        created_at: t(D),
        ended_at: ended.map(t),
    };
    store.upsert_task(&task("old", Some(D + 30))).unwrap();
    store.upsert_task(&task("recent", Some(D + 300))).unwrap();
    store.upsert_task(&task("running", None)).unwrap();

    let counts = store.purge_before(t(D + 100)).unwrap();
    assert_eq!(
        counts,
        PurgeCounts {
            calls: 1,
            sessions: 2,
            events: 2,
            quality_samples: 1,
            tasks: 1,
            call_logs: 0,
            rollups: 0
        }
    );
    assert_eq!(store.call(APP, &old.comm_id).unwrap(), None);
    assert!(store
        .user_events(&event_query(&old, "a", 0, i64::MAX))
        .unwrap()
        .is_empty());
    assert!(store.call(APP, &open.comm_id).unwrap().is_some());
    assert_eq!(store.active_sessions(&open.comm_id).unwrap().len(), 1);
    assert_eq!(
        store
            .user_events(&event_query(&open, "c", 0, i64::MAX))
            .unwrap()
            .len(),
        1
    );
    assert!(store.call(APP, &recent.comm_id).unwrap().is_some());
    assert_eq!(store.task(APP, "old").unwrap(), None);
    assert!(store.task(APP, "recent").unwrap().is_some());
    assert!(store.task(APP, "running").unwrap().is_some());

    assert_eq!(
        store.purge_before(t(D + 100)).unwrap(),
        PurgeCounts::default()
    );
}

#[test]
fn purge_works_through_many_calls_in_chunks() {
    let store = SqliteStore::open_in_memory().unwrap();
    for i in 0..600 {
        let c = started(&store, APP, RoomKey::Num(1 + i), D);
        visit(&store, &c, "u", D, D + 1);
        store
            .finish_call(&c.comm_id, t(D + 2), LeaveReason::Normal)
            .unwrap();
    }
    let counts = store.purge_before(t(D + 3)).unwrap();
    assert_eq!((counts.calls, counts.sessions), (600, 600));
    assert_eq!(
        store
            .calls_in_window(&window(APP, 0, i64::MAX))
            .unwrap()
            .total,
        0
    );
}

#[test]
fn events_and_quality_are_appended_and_filtered() {
    let store = SqliteStore::open_in_memory().unwrap();
    let call = started(&store, APP, RoomKey::Num(1), D);
    let other = started(&store, APP, RoomKey::Num(2), D);
    let ms = D * 1000;
    store
        .append_events(&[
            event(&call, "a", ms + 500, 5),
            event(&call, "a", ms + 100, 1),
            event(&call, "b", ms + 200, 2),
            event(&call, "a", ms + 900, 9),
            event(&other, "a", ms + 300, 3),
        ])
        .unwrap();
    store.append_events(&[]).unwrap();
    let got: Vec<_> = store
        .user_events(&event_query(&call, "a", ms + 100, ms + 500))
        .unwrap()
        .iter()
        .map(|e| (e.time_ms - ms, e.event_id, e.param_one))
        .collect();
    assert_eq!(got, vec![(100, 1, -1), (500, 5, -1)]);

    let mut peer = sample(&call, "b", "video_fps", D + 2, 15.0);
    peer.peer = "a".into();
    store
        .append_quality(&[
            sample(&call, "a", "rtt", D + 1, 40.0),
            sample(&call, "a", "loss", D + 1, 0.5),
            peer,
            sample(&call, "a", "rtt", D + 3, f64::NAN), // not storable; dropped
            sample(&call, "a", "rtt", D + 9, 41.0),
            sample(&other, "a", "rtt", D + 2, 99.0),
        ])
        .unwrap();
    let q = |users: &[&str], metrics: &[&str]| QualityQuery {
        sdk_app_id: APP,
        comm_id: call.comm_id.clone(),
        start: t(D),
        end: t(D + 5),
        user_ids: users.iter().map(|u| user(u)).collect(),
        metrics: metrics.iter().map(|m| m.to_string()).collect(),
    };
    let got = |q: QualityQuery| -> Vec<(String, String, String, f64)> {
        store
            .quality(&q)
            .unwrap()
            .into_iter()
            .flat_map(|s| {
                s.points
                    .into_iter()
                    .map(move |p| (s.user_id.0.clone(), s.peer.clone(), s.metric.clone(), p.1))
            })
            .collect()
    };
    let s = |u: &str, p: &str, m: &str, v: f64| (u.to_owned(), p.to_owned(), m.to_owned(), v);
    assert_eq!(
        got(q(&[], &[])),
        vec![
            s("a", "", "loss", 0.5),
            s("a", "", "rtt", 40.0),
            s("b", "a", "video_fps", 15.0)
        ]
    );
    assert_eq!(got(q(&["b"], &[])), vec![s("b", "a", "video_fps", 15.0)]);
    assert_eq!(got(q(&[], &["rtt"])), vec![s("a", "", "rtt", 40.0)]);
    assert_eq!(
        got(q(&["a"], &["loss", "video_fps"])),
        vec![s("a", "", "loss", 0.5)]
    );
}

#[test]
fn tasks_are_upserted_and_read_back() {
    let store = SqliteStore::open_in_memory().unwrap();
    let mut task = TaskRecord {
        task_id: "t-1".into(),
        sdk_app_id: APP,
        kind: "relay".into(),
        state: "running".into(),
        room: Some(RoomKey::Str("r".into())),
        params_json: r#"{"url":"rtmp://x"}"#.into(),
        created_at: t(D),
        ended_at: None,
    };
    store.upsert_task(&task).unwrap();
    assert_eq!(store.task(APP, "t-1").unwrap(), Some(task.clone()));
    assert_eq!(store.task(OTHER_APP, "t-1").unwrap(), None);
    task.state = "stopped".into();
    task.room = None;
    task.ended_at = Some(t(D + 5));
    store.upsert_task(&task).unwrap();
    assert_eq!(store.task(APP, "t-1").unwrap(), Some(task.clone()));
}

#[test]
fn ended_tasks_are_listed_by_window_and_open_ones_failed_at_start() {
    let store = SqliteStore::open_in_memory().unwrap();
    let task = |id: &str, kind: &str, created: i64, ended: Option<i64>| TaskRecord {
        task_id: id.into(),
        sdk_app_id: APP,
        kind: kind.into(),
        state: "Finished".into(),
        room: Some(RoomKey::Num(7)),
        params_json: "{}".into(),
        created_at: t(created),
        ended_at: ended.map(t),
    };
    store
        .upsert_task(&task("a", "recording", D, Some(D + 100)))
        .unwrap();
    store
        .upsert_task(&task("b", "recording", D + 200, Some(D + 300)))
        .unwrap();
    store
        .upsert_task(&task("c", "relay", D, Some(D + 100)))
        .unwrap();
    store
        .upsert_task(&task("open", "recording", D + 50, None))
        .unwrap();
    let ids = |from, to| -> Vec<String> {
        store
            .tasks_ended_between(APP, "recording", t(from), t(to))
            .unwrap()
            .into_iter()
            .map(|t| t.task_id)
            .collect()
    };
    assert_eq!(ids(D, D + 1000), vec!["a", "b"]);
    assert_eq!(ids(D + 150, D + 1000), vec!["b"]);
    assert_eq!(ids(D, D + 200), vec!["a"], "b started at the window's end");
    assert_eq!(store.fail_open_tasks(t(D + 400)).unwrap(), 1);
    let open = store.task(APP, "open").unwrap().unwrap();
    assert_eq!(
        (open.state.as_str(), open.ended_at),
        ("Failed", Some(t(D + 400)))
    );
    assert_eq!(store.fail_open_tasks(t(D + 500)).unwrap(), 0);

    // The console's pages: newest first, counted over all pages, one app only.
    let page = store.tasks_page(APP, 0, 2).unwrap();
    assert_eq!(page.total, 4);
    let ids: Vec<&str> = page.items.iter().map(|t| t.task_id.as_str()).collect();
    assert_eq!(ids, ["b", "open"]);
    let rest = store.tasks_page(APP, 2, 2).unwrap();
    let ids: Vec<&str> = rest.items.iter().map(|t| t.task_id.as_str()).collect();
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(store.tasks_page(OTHER_APP, 0, 10).unwrap().total, 0);
}

#[test]
fn unknown_values_in_the_database_are_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.db");
    let store = SqliteStore::open(&path).unwrap();
    let call = started(&store, APP, RoomKey::Num(1), D);
    let id = visit(&store, &call, "a", D, D + 1);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE sessions SET leave_reason = 'eaten' WHERE id = ?1",
        [id.0],
    )
    .unwrap();
    let q = SessionQuery {
        sdk_app_id: APP,
        comm_id: call.comm_id.clone(),
        start: t(0),
        end: t(i64::MAX),
        user_ids: vec![],
        offset: 0,
        limit: 10,
    };
    assert!(matches!(
        store.sessions_of_call(&q),
        Err(StoreError::Corrupt(_))
    ));
    conn.execute("UPDATE calls SET room_kind = 'str', room_string = 'x'", [])
        .unwrap();
    conn.execute_batch(
        "PRAGMA ignore_check_constraints = ON; UPDATE calls SET room_kind = 'planet';",
    )
    .unwrap();
    assert!(matches!(
        store.call(APP, &call.comm_id),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn readers_see_whole_transactions_while_a_writer_writes() {
    const BATCHES: i64 = 200;
    const BATCH: i64 = 10;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("hearth.db")).unwrap());
    let call = started(&store, APP, RoomKey::Num(1), D);

    let writer = {
        let (store, call) = (store.clone(), call.clone());
        std::thread::spawn(move || {
            for b in 0..BATCHES {
                let events: Vec<_> = (0..BATCH)
                    .map(|i| event(&call, "a", b * BATCH + i, 1))
                    .collect();
                store.append_events(&events).unwrap();
                let c = started(&store, APP, RoomKey::Num(2 + b as u32), D + 1 + b);
                join(&store, &c, "u", D + 1 + b);
                store
                    .finish_call(&c.comm_id, t(D + 2 + b), LeaveReason::Normal)
                    .unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let (store, call) = (store.clone(), call.clone());
            std::thread::spawn(move || {
                let mut last = 0;
                loop {
                    let n = store
                        .user_events(&event_query(&call, "a", 0, i64::MAX))
                        .unwrap()
                        .len();
                    assert_eq!(n as i64 % BATCH, 0, "saw half a batch");
                    assert!(n >= last, "went back in time");
                    last = n;
                    let page = store
                        .calls_in_window(&CallQuery {
                            limit: u64::MAX,
                            ..window(APP, 0, i64::MAX)
                        })
                        .unwrap();
                    assert_eq!(page.total as usize, page.items.len());
                    for c in page.items.iter().filter(|c| c.destroyed_at.is_some()) {
                        // A finished call never has open sessions (finish is one transaction).
                        assert!(store.active_sessions(&c.comm_id).unwrap().is_empty());
                    }
                    if n as i64 == BATCHES * BATCH {
                        break;
                    }
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(
        store
            .calls_in_window(&window(APP, 0, i64::MAX))
            .unwrap()
            .total,
        BATCHES as u64 + 1
    );
    store.flush().unwrap();
}

#[test]
fn finish_open_calls_closes_leftovers_of_a_crash() {
    let store = SqliteStore::open_in_memory().unwrap();
    let app = SdkAppId(1400000001);
    let room = RoomKey::Num(5);
    let comm_id = CommId::new(app, &room, UnixSecs(1000));
    store
        .start_call(&CallRecord {
            comm_id: comm_id.clone(),
            sdk_app_id: app,
            room: room.clone(),
            creator: "a".into(),
            created_at: UnixSecs(1000),
            destroyed_at: None,
        })
        .unwrap();
    store
        .open_session(&NewSession {
            comm_id: comm_id.clone(),
            sdk_app_id: app,
            user_id: UserId("a".into()),
            joined_at: UnixSecs(1000),
            device_type: String::new(),
            sdk_version: String::new(),
            client_ip: String::new(),
        })
        .unwrap();
    // The session's last sign of life: an event at 1500.4 s and a quality sample at 1502 s.
    store
        .append_events(&[EventRecord {
            sdk_app_id: app,
            comm_id: comm_id.clone(),
            user_id: UserId("a".into()),
            time_ms: 1_500_400,
            event_id: 32768,
            param_one: -1,
            param_two: -1,
        }])
        .unwrap();
    store
        .append_quality(&[QualitySample {
            sdk_app_id: app,
            comm_id: comm_id.clone(),
            user_id: UserId("a".into()),
            peer: String::new(),
            metric: "aBit".into(),
            time: UnixSecs(1502),
            value: 1.0,
        }])
        .unwrap();
    assert_eq!(
        store
            .finish_open_calls(UnixSecs(2000), LeaveReason::ServerShutdown)
            .unwrap(),
        1
    );
    assert!(store.open_call(app, &room).unwrap().is_none());
    let call = store.call(app, &comm_id).unwrap().unwrap();
    assert_eq!(
        call.destroyed_at,
        Some(UnixSecs(1502)),
        "closed at the last sign of life, not at the restart"
    );
    assert!(store.active_sessions(&comm_id).unwrap().is_empty());
    assert_eq!(
        store
            .finish_open_calls(UnixSecs(3000), LeaveReason::ServerShutdown)
            .unwrap(),
        0
    );
}

fn usage(app: SdkAppId, room: RoomKey, bucket: i64, secs: [f64; 6]) -> UsageRecord {
    UsageRecord {
        sdk_app_id: app,
        room,
        bucket: t(bucket),
        secs,
    }
}

#[test]
fn usage_sums_per_bucket_and_per_room_over_the_apps_asked() {
    let store = SqliteStore::open_in_memory().unwrap();
    let (r1, r2) = (RoomKey::Num(1), RoomKey::string("1").unwrap());
    store
        .add_usage(&[
            usage(APP, r1.clone(), D, [60.0, 0.0, 120.0, 0.0, 0.0, 0.0]),
            usage(APP, r2.clone(), D, [0.0, 30.0, 0.0, 0.0, 0.0, 0.0]),
            usage(APP, r1.clone(), D + 300, [0.0, 0.0, 0.0, 6.0, 0.0, 0.0]),
            usage(OTHER_APP, r1.clone(), D, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        ])
        .unwrap();
    // The same bucket again adds up.
    store
        .add_usage(&[usage(APP, r1.clone(), D, [2.0, 0.0, 0.0, 0.0, 0.0, 1.0])])
        .unwrap();
    let by_time = store.usage(&[APP], t(D), t(D + DAY), false).unwrap();
    assert_eq!(by_time.len(), 2);
    assert_eq!(by_time[0].bucket, t(D));
    assert_eq!(by_time[0].secs, [62.0, 30.0, 120.0, 0.0, 0.0, 1.0]);
    assert_eq!(by_time[1].secs, [0.0, 0.0, 0.0, 6.0, 0.0, 0.0]);
    let both = store
        .usage(&[APP, OTHER_APP], t(D), t(D + 300), false)
        .unwrap();
    assert_eq!(both.len(), 1, "the end is exclusive");
    assert_eq!(both[0].secs[0], 63.0);
    let by_room = store.usage(&[APP], t(D), t(D + DAY), true).unwrap();
    let rooms: Vec<_> = by_room
        .iter()
        .map(|u| (u.room.clone().unwrap(), u.secs))
        .collect();
    assert_eq!(
        rooms,
        [
            (r1, [62.0, 0.0, 120.0, 6.0, 0.0, 1.0]),
            (r2, [0.0, 30.0, 0.0, 0.0, 0.0, 0.0])
        ],
        "numeric room 1 and string room \"1\" are two rooms"
    );
    assert!(store
        .usage(&[], t(D), t(D + DAY), false)
        .unwrap()
        .is_empty());
}

#[test]
fn quality_buckets_count_entry_attempts_and_freezes_and_old_freezes_fold_into_hours() {
    let store = SqliteStore::open_in_memory().unwrap();
    let attempt = |at: i64, room: &str, ok: bool, join_ms: i64| EntryAttempt {
        sdk_app_id: APP,
        time_ms: at * 1000,
        room: room.into(),
        user_id: "u".into(),
        ok,
        join_ms,
        error: (!ok).then(|| "bad UserSig".into()),
    };
    for a in [
        attempt(D + 5, "1", true, 300),
        attempt(D + 6, "1", false, 10),
        attempt(D + 7, "2", true, 7_000),
        attempt(D + 15, "1", true, 100),
    ] {
        store.record_entry(&a).unwrap();
    }
    let freeze = |bucket: i64, room: u32, v: (f64, f64)| QualityRollup {
        sdk_app_id: APP,
        room: RoomKey::Num(room),
        bucket: t(bucket),
        video_ms: v.0,
        video_frozen_ms: v.1,
        audio_ms: 2000.0,
        audio_frozen_ms: 0.0,
        rtt_samples: 2,
        rtt_slow: room as u64 - 1,
    };
    store
        .add_quality_rollup(&[
            freeze(D, 1, (2000.0, 500.0)),
            freeze(D, 2, (2000.0, 0.0)),
            freeze(D + 10, 1, (4000.0, 0.0)),
        ])
        .unwrap();
    let b = store
        .quality_buckets(APP, None, t(D), t(D + 20), 10)
        .unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!((b[0].attempts, b[0].joined, b[0].joined_in_5s), (3, 2, 1));
    assert_eq!((b[0].video_ms, b[0].video_frozen_ms), (4000.0, 500.0));
    assert_eq!((b[0].rtt_samples, b[0].rtt_slow), (4, 1));
    assert_eq!((b[1].attempts, b[1].joined, b[1].video_ms), (1, 1, 4000.0));
    let room1 = store
        .quality_buckets(APP, Some("1"), t(D), t(D + 20), 20)
        .unwrap();
    assert_eq!(room1.len(), 1);
    assert_eq!((room1[0].attempts, room1[0].joined), (3, 2));
    assert_eq!(room1[0].video_ms, 6000.0);
    assert!(store
        .quality_buckets(OTHER_APP, None, t(D), t(D + 20), 10)
        .unwrap()
        .iter()
        .all(|b| b.attempts == 0 && b.video_ms == 0.0));

    // A purge folds these (long past a day old) into their hour: the hour's sum is kept.
    store.purge_before(t(D - DAY)).unwrap();
    let hour = store
        .quality_buckets(APP, None, t(D), t(D + 3600), 3600)
        .unwrap();
    assert_eq!((hour[0].video_ms, hour[0].video_frozen_ms), (8000.0, 500.0));
    assert_eq!((hour[0].rtt_samples, hour[0].rtt_slow), (6, 1));
    let fine = store
        .quality_buckets(APP, None, t(D + 10), t(D + 20), 10)
        .unwrap();
    assert_eq!(fine[0].video_ms, 0.0, "the 10-second rows are gone");
    // Retention removes them all.
    let counts = store.purge_before(t(D + DAY)).unwrap();
    assert_eq!(counts.rollups, 4 + 2);
    assert!(store
        .quality_buckets(APP, None, t(D), t(D + 3600), 3600)
        .unwrap()
        .iter()
        .all(|b| b.attempts == 0 && b.video_ms == 0.0));
}
