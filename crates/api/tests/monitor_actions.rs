//! The call-inspection actions through the router: DescribeUserEvent, DescribeCallDetailInfo,
//! the legacy DescribeCallDetail and LCIC GetRoomEvent, with calls, sessions, events and quality
//! samples put into an in-memory store, and every documented validation error.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use hearth_store::{EventRecord, LeaveReason, QualitySample, Store};
use hearth_types::{CommId, RoomKey, UnixSecs, UserId};
use serde_json::{json, Value};

fn lcic(body: &Value) -> Request<Body> {
    signed_for("lcic", "2022-08-17", "GetRoomEvent", body, NOW)
}

fn event(comm_id: &CommId, user: &str, time_ms: i64, event_id: u32) -> EventRecord {
    EventRecord {
        sdk_app_id: APP,
        comm_id: comm_id.clone(),
        user_id: UserId(user.into()),
        time_ms,
        event_id,
        param_one: -1,
        param_two: -1,
    }
}

fn sample(
    comm_id: &CommId,
    user: &str,
    peer: &str,
    metric: &str,
    time: i64,
    value: f64,
) -> QualitySample {
    QualitySample {
        sdk_app_id: APP,
        comm_id: comm_id.clone(),
        user_id: UserId(user.into()),
        peer: peer.into(),
        metric: metric.into(),
        time: UnixSecs(time),
        value,
    }
}

/// Room 218695: alice from T to T+100, bob from T+10 to T+90; the call ends at T+100.
const T: i64 = NOW - 1800;

fn finished_call(h: &Harness) -> CommId {
    let c = add_call(
        &h.store,
        RoomKey::Num(218695),
        T,
        &[("alice", T, Some(T + 100)), ("bob", T + 10, Some(T + 90))],
    );
    h.store
        .finish_call(&c, UnixSecs(T + 100), LeaveReason::Normal)
        .unwrap();
    h.store
        .append_events(&[
            event(&c, "alice", T * 1000 + 5, 32788),
            event(&c, "alice", T * 1000 + 400, 32769),
            event(&c, "alice", T * 1000 + 300, 32768),
            event(&c, "bob", (T + 10) * 1000, 32788),
            event(&c, "alice", (T + 50) * 1000, 32770),
            event(&c, "alice", (T + 100) * 1000 + 20, 32789),
            // Written late (after the room ended): outside the room's lifetime.
            event(&c, "alice", (T + 200) * 1000, 32771),
        ])
        .unwrap();
    c
}

fn user_event(c: &CommId, user: &str, start: i64, end: i64) -> Value {
    json!({"SdkAppId": 1400000001, "CommId": c.as_str(), "RoomId": "218695", "UserId": user,
           "StartTime": start, "EndTime": end})
}

#[tokio::test]
async fn user_event_lists_a_users_events_in_time_order() {
    let h = harness();
    let c = finished_call(&h);
    let r = call(
        &h,
        signed("DescribeUserEvent", &user_event(&c, "alice", T, NOW), NOW),
    )
    .await;
    assert!(r.get("Error").is_none(), "{r}");
    let data = r["Data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{r}");
    assert_eq!(data[0]["PeerId"], "alice");
    let content = data[0]["Content"].as_array().unwrap();
    let ids: Vec<i64> = content
        .iter()
        .map(|e| e["EventId"].as_i64().unwrap())
        .collect();
    // EndTime after the room's end: the room's end is used, so the late 32771 is left out.
    assert_eq!(ids, [32788, 32768, 32769, 32770, 32789]);
    assert_eq!(content[0]["Time"], T * 1000 + 5);
    assert_eq!(content[0]["Type"], 0);
    assert_eq!(content[1]["Type"], 2, "video events are big-video events");
    assert_eq!(content[0]["ParamOne"], -1);
    assert_eq!(content[0]["ParamTwo"], -1);
    let times: Vec<i64> = content
        .iter()
        .map(|e| e["Time"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));

    // A narrower window.
    let r = call(
        &h,
        signed(
            "DescribeUserEvent",
            &user_event(&c, "alice", T + 1, T + 60),
            NOW,
        ),
    )
    .await;
    let ids: Vec<i64> = r["Data"][0]["Content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["EventId"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [32770]);

    // Bob's own events only.
    let r = call(
        &h,
        signed("DescribeUserEvent", &user_event(&c, "bob", T, NOW), NOW),
    )
    .await;
    assert_eq!(r["Data"][0]["PeerId"], "bob");
    assert_eq!(r["Data"][0]["Content"].as_array().unwrap().len(), 1);

    // No data: an empty array.
    for req in [
        user_event(&c, "carol", T, NOW),
        user_event(
            &CommId::new(APP, &RoomKey::Num(218695), UnixSecs(T - 5)),
            "alice",
            T,
            NOW,
        ),
        user_event(&c, "alice", T + 150, NOW),
    ] {
        let r = call(&h, signed("DescribeUserEvent", &req, NOW)).await;
        assert!(r.get("Error").is_none(), "{r}");
        assert_eq!(r["Data"], json!([]), "{req}");
    }
    // Values as strings (GET/form style) work too.
    let mut req = user_event(&c, "alice", T, NOW);
    req["SdkAppId"] = json!("1400000001");
    req["StartTime"] = json!(T.to_string());
    let r = call(&h, signed("DescribeUserEvent", &req, NOW)).await;
    assert_eq!(r["Data"][0]["Content"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn user_event_validation() {
    let h = harness();
    let c = finished_call(&h);
    let base = user_event(&c, "alice", T, NOW);
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases = [
        (without("CommId"), "MissingParameter.CommId"),
        (without("StartTime"), "MissingParameter.StartTs"),
        (without("EndTime"), "MissingParameter.EndTs"),
        (without("UserId"), "MissingParameter.UserId"),
        (without("RoomId"), "MissingParameter.RoomId"),
        (without("SdkAppId"), "MissingParameter.CommIdOrSdkAppId"),
        (with("CommId", json!("")), "MissingParameter.CommId"),
        (with("UserId", json!("")), "MissingParameter.UserId"),
        (with("RoomId", json!("")), "MissingParameter.RoomId"),
        (with("SdkAppId", json!("x")), "InvalidParameter.SdkAppid"),
        (with("UserId", json!(5)), "InvalidParameter.UserId"),
        (with("RoomId", json!(218695)), "InvalidParameter"),
        (with("RoomId", json!("218696")), "InvalidParameter"),
        (
            with("CommId", json!("1400000002_218695_1")),
            "InvalidParameter",
        ),
        (with("CommId", json!("garbage")), "InvalidParameter"),
        (with("CommId", json!(17)), "InvalidParameter"),
        (with("EndTime", json!(T - 1)), "InvalidParameter.EndTs"),
        (
            with("StartTime", json!(NOW + 10)),
            "InvalidParameter.StartTs",
        ),
        (
            with("StartTime", json!(NOW - 15 * 86_400)),
            "InvalidParameter.StartTsOversize",
        ),
        (
            with("SdkAppId", json!(1400000002)),
            "UnauthorizedOperation.SdkAppId",
        ),
        (with("Bogus", json!(1)), "UnknownParameter"),
    ];
    for (req, want) in cases {
        let r = call(&h, signed("DescribeUserEvent", &req, NOW)).await;
        assert_eq!(code(&r), want, "{req} → {r}");
    }
}

/// Alice and bob with a few samples each, upstream and downstream.
fn call_with_samples(h: &Harness) -> CommId {
    let c = add_call(
        &h.store,
        RoomKey::Num(7),
        T,
        &[("alice", T, None), ("bob", T + 10, Some(T + 500))],
    );
    h.store
        .append_quality(&[
            sample(&c, "alice", "", "bigvCapFps", T + 2, 30.0),
            sample(&c, "alice", "", "bigvCapFps", T + 4, 29.5),
            sample(&c, "alice", "bob", "aLoss", T + 4, 0.25),
            sample(&c, "alice", "", "aLoss", T + 2, 0.0),
            sample(&c, "bob", "", "bigvCapFps", T + 12, 15.0),
            sample(&c, "bob", "alice", "bigvWidth", T + 12, 640.0),
            sample(&c, "alice", "", "appCpu", T + 2, 0.5),
            sample(&c, "alice", "", "bigvCapFps", T + 4000, 1.0),
        ])
        .unwrap();
    c
}

fn detail(c: &CommId, extra: Value) -> Value {
    let mut v =
        json!({"SdkAppId": 1400000001, "CommId": c.as_str(), "StartTime": T, "EndTime": T + 3600});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// (UserId, PeerId, DataType, points) of each QualityData.
type Series = (String, String, String, Vec<(i64, f64)>);

fn series(r: &Value) -> Vec<Series> {
    r["Data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["UserId"].as_str().unwrap().to_owned(),
                d["PeerId"].as_str().unwrap().to_owned(),
                d["DataType"].as_str().unwrap().to_owned(),
                d["Content"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (p["Time"].as_i64().unwrap(), p["Value"].as_f64().unwrap()))
                    .collect(),
            )
        })
        .collect()
}

fn s(user: &str, peer: &str, metric: &str, points: &[(i64, f64)]) -> Series {
    (user.into(), peer.into(), metric.into(), points.to_vec())
}

#[tokio::test]
async fn call_detail_info_returns_users_and_quality_series() {
    let h = harness();
    let c = call_with_samples(&h);
    // Without DataType: the user list only.
    let r = call(
        &h,
        signed("DescribeCallDetailInfo", &detail(&c, json!({})), NOW),
    )
    .await;
    assert!(r.get("Error").is_none(), "{r}");
    assert_eq!(r["Total"], 2);
    let users = r["UserList"].as_array().unwrap();
    assert_eq!(users[0]["UserId"], "alice");
    assert_eq!(users[0]["RoomStr"], "7");
    assert_eq!(users[0]["Finished"], false);
    assert_eq!(users[0]["LeaveTs"], NOW);
    assert_eq!(users[1]["UserId"], "bob");
    assert_eq!(users[1]["LeaveTs"], T + 500);
    assert_eq!(users[1]["Finished"], true);
    assert_eq!(users[1]["ClientIp"], "10.0.0.7");
    assert_eq!(r["Data"], json!([]));

    // One metric: upstream series per user, in time order.
    let r = call(
        &h,
        signed(
            "DescribeCallDetailInfo",
            &detail(&c, json!({"DataType": ["bigvCapFps"]})),
            NOW,
        ),
    )
    .await;
    assert_eq!(
        series(&r),
        [
            s("alice", "", "bigvCapFps", &[(T + 2, 30.0), (T + 4, 29.5)]),
            s("bob", "", "bigvCapFps", &[(T + 12, 15.0)]),
        ]
    );
    // `all`: every metric, grouped by user, then spec order, upstream before downstream.
    let r = call(
        &h,
        signed(
            "DescribeCallDetailInfo",
            &detail(&c, json!({"DataType": ["all"]})),
            NOW,
        ),
    )
    .await;
    assert_eq!(
        series(&r),
        [
            s("alice", "", "appCpu", &[(T + 2, 0.5)]),
            s("alice", "", "bigvCapFps", &[(T + 2, 30.0), (T + 4, 29.5)]),
            s("alice", "", "aLoss", &[(T + 2, 0.0)]),
            s("alice", "bob", "aLoss", &[(T + 4, 0.25)]),
            s("bob", "", "bigvCapFps", &[(T + 12, 15.0)]),
            s("bob", "alice", "bigvWidth", &[(T + 12, 640.0)]),
        ]
    );
    // UserIds restricts both the list and the series.
    let r = call(
        &h,
        signed(
            "DescribeCallDetailInfo",
            &detail(
                &c,
                json!({"DataType": ["bigvWidth", "aLoss"], "UserIds": ["bob"]}),
            ),
            NOW,
        ),
    )
    .await;
    assert_eq!(r["Total"], 1);
    assert_eq!(r["UserList"][0]["UserId"], "bob");
    assert_eq!(
        series(&r),
        [s("bob", "alice", "bigvWidth", &[(T + 12, 640.0)])]
    );
    // Paging: the series follow the users of the page.
    let r = call(
        &h,
        signed(
            "DescribeCallDetailInfo",
            &detail(
                &c,
                json!({"DataType": ["bigvCapFps"], "PageNumber": 1, "PageSize": 1}),
            ),
            NOW,
        ),
    )
    .await;
    assert_eq!(r["Total"], 2);
    assert_eq!(r["UserList"].as_array().unwrap().len(), 1);
    assert_eq!(series(&r), [s("bob", "", "bigvCapFps", &[(T + 12, 15.0)])]);
    // A narrower window.
    let mut req = detail(
        &c,
        json!({"DataType": ["bigvCapFps"], "UserIds": ["alice"]}),
    );
    req["StartTime"] = json!(T + 3);
    req["EndTime"] = json!(T + 60);
    let r = call(&h, signed("DescribeCallDetailInfo", &req, NOW)).await;
    assert_eq!(series(&r), [s("alice", "", "bigvCapFps", &[(T + 4, 29.5)])]);
    // An unknown call of the right app: nothing.
    let other = CommId::new(APP, &RoomKey::Num(8), UnixSecs(T));
    let r = call(
        &h,
        signed(
            "DescribeCallDetailInfo",
            &detail(&other, json!({"DataType": ["all"]})),
            NOW,
        ),
    )
    .await;
    assert_eq!(
        (
            r["Total"].as_i64(),
            r["UserList"].clone(),
            r["Data"].clone()
        ),
        (Some(0), json!([]), json!([]))
    );
}

#[tokio::test]
async fn call_detail_info_validation() {
    let h = harness();
    let c = call_with_samples(&h);
    let base = detail(&c, json!({}));
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, x) in extra.as_object().unwrap() {
            b[k] = x.clone();
        }
        b
    };
    let without = |k: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let seven: Vec<String> = (0..7).map(|i| format!("u{i}")).collect();
    let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let cases = [
        (without("CommId"), "MissingParameter.CommId"),
        (without("SdkAppId"), "MissingParameter.SdkAppId"),
        (without("StartTime"), "MissingParameter.StartTs"),
        (without("EndTime"), "MissingParameter.EndTs"),
        (with(json!({"CommId": ""})), "MissingParameter.CommId"),
        (
            with(json!({"SdkAppId": "abc"})),
            "InvalidParameter.SdkAppId",
        ),
        (
            with(json!({"SdkAppId": 1400000002})),
            "UnauthorizedOperation.SdkAppId",
        ),
        (
            with(json!({"CommId": "1400000002_7_1"})),
            "InvalidParameter",
        ),
        (with(json!({"DataType": ["fps"]})), "InvalidParameter"),
        (with(json!({"DataType": "bigvCapFps"})), "InvalidParameter"),
        (
            with(json!({"StartTime": NOW + 5})),
            "InvalidParameter.StartTs",
        ),
        (with(json!({"EndTime": T - 1})), "InvalidParameter.EndTs"),
        (
            with(json!({"StartTime": NOW - 15 * 86_400})),
            "InvalidParameter.StartTsOversize",
        ),
        // DataType given: at most 1 hour, 6 users, 6 per page.
        (
            with(json!({"DataType": ["aBit"], "EndTime": T + 3601})),
            "InvalidParameter.QueryScaleOversize",
        ),
        (
            with(json!({"DataType": ["aBit"], "UserIds": seven})),
            "InvalidParameter.UserIdsMorethanSix",
        ),
        (
            with(json!({"DataType": ["aBit"], "PageNumber": 0, "PageSize": 7})),
            "InvalidParameter.PageSizeOversize",
        ),
        // Without: at most 4 hours, 100 per page.
        (
            with(json!({"EndTime": T + 4 * 3600 + 1})),
            "InvalidParameter.QueryScaleOversize",
        ),
        (
            with(json!({"PageNumber": 0, "PageSize": 101})),
            "InvalidParameter.PageSizeOversize",
        ),
        (
            with(json!({"PageNumber": 0, "PageSize": 0})),
            "InvalidParameter.PageSize",
        ),
        (
            with(json!({"PageNumber": -1, "PageSize": 5})),
            "InvalidParameter.PageNumber",
        ),
        (with(json!({"UserIds": many})), "InvalidParameter.UserIds"),
        (with(json!({"Bogus": 1})), "UnknownParameter"),
    ];
    for (req, want) in cases {
        let r = call(&h, signed("DescribeCallDetailInfo", &req, NOW)).await;
        assert_eq!(code(&r), want, "{req} → {r}");
    }
    // Limits that pass: 4 hours and 7 users without DataType; 6 users with.
    let six: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
    for req in [
        with(json!({"EndTime": T + 4 * 3600})),
        with(json!({"UserIds": seven, "PageNumber": 0, "PageSize": 100})),
        with(json!({"DataType": ["aBit"], "UserIds": six, "PageNumber": 0, "PageSize": 6})),
    ] {
        let r = call(&h, signed("DescribeCallDetailInfo", &req, NOW)).await;
        assert!(r.get("Error").is_none(), "{req} → {r}");
    }
}

#[tokio::test]
async fn legacy_call_detail_takes_strings_and_answers_like_call_detail_info() {
    let h = harness();
    let c = call_with_samples(&h);
    let req = json!({"SdkAppId": "1400000001", "CommId": c.as_str(), "StartTime": T, "EndTime": T + 3600,
                     "DataType": ["bigvCapFps"], "PageNumber": "0", "PageSize": "6"});
    let legacy = call(&h, signed("DescribeCallDetail", &req, NOW)).await;
    assert!(legacy.get("Error").is_none(), "{legacy}");
    let current = call(&h, signed("DescribeCallDetailInfo", &req, NOW)).await;
    for k in ["Total", "UserList", "Data"] {
        assert_eq!(legacy[k], current[k], "{k}");
    }
    assert_eq!(series(&legacy).len(), 2);

    let with = |extra: Value| {
        let mut b = req.clone();
        for (k, x) in extra.as_object().unwrap() {
            b[k] = x.clone();
        }
        b
    };
    let seven: Vec<String> = (0..7).map(|i| format!("u{i}")).collect();
    let cases = [
        // At most 1 hour even without DataType.
        (
            with(json!({"DataType": null, "EndTime": T + 3601})),
            "InvalidParameter.QueryScaleOversize",
        ),
        (
            with(json!({"PageSize": "7"})),
            "InvalidParameter.PageSizeOversize",
        ),
        // UserIds given: 6 per page.
        (
            with(json!({"DataType": null, "UserIds": ["alice"], "PageSize": "7"})),
            "InvalidParameter.PageSizeOversize",
        ),
        (with(json!({"DataType": null, "PageSize": "100"})), ""),
        (with(json!({"UserIds": seven})), "InvalidParameter"),
        (with(json!({"PageSize": "x"})), "InvalidParameter"),
        (with(json!({"SdkAppId": "x"})), "InvalidParameter.SdkAppId"),
        (with(json!({"EndTime": T - 1})), "InvalidParameter"),
        (
            with(json!({"StartTime": NOW - 15 * 86_400})),
            "InvalidParameter.StartTsOversize",
        ),
    ];
    for (req, want) in cases {
        let r = call(&h, signed("DescribeCallDetail", &req, NOW)).await;
        assert_eq!(code(&r), want, "{req} → {r}");
    }
    let mut missing = req.clone();
    missing.as_object_mut().unwrap().remove("CommId");
    let r = call(&h, signed("DescribeCallDetail", &missing, NOW)).await;
    assert_eq!(code(&r), "MissingParameter.CommId");
}

/// Room 42: a finished call (alice, bob) and a newer open one (carol still inside).
fn room_with_two_calls(h: &Harness) {
    let a = add_call(
        &h.store,
        RoomKey::Num(42),
        T,
        &[("alice", T, Some(T + 100)), ("bob", T + 10, Some(T + 50))],
    );
    h.store
        .finish_call(&a, UnixSecs(T + 100), LeaveReason::Normal)
        .unwrap();
    add_call(
        &h.store,
        RoomKey::Num(42),
        T + 200,
        &[("carol", T + 200, None)],
    );
    // A string room "42" is another room.
    add_call(
        &h.store,
        RoomKey::string("42").unwrap(),
        T + 5,
        &[("dave", T + 5, None)],
    );
}

fn kinds(r: &Value) -> Vec<(i64, String, Value)> {
    r["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["EventData"]["RoomId"], 42);
            (
                e["Timestamp"].as_i64().unwrap(),
                e["EventType"].as_str().unwrap().to_owned(),
                e["EventData"]["UserId"].clone(),
            )
        })
        .collect()
}

fn k(t: i64, kind: &str, user: Value) -> (i64, String, Value) {
    (t, kind.into(), user)
}

#[tokio::test]
async fn get_room_event_lists_the_rooms_calls_and_members() {
    let h = harness();
    room_with_two_calls(&h);
    let r = call(
        &h,
        lcic(&json!({"RoomId": 42, "SdkAppId": 1400000001, "Page": 1, "Limit": 100})),
    )
    .await;
    assert!(r.get("Error").is_none(), "{r}");
    assert_eq!(r["Total"], 8);
    assert_eq!(
        kinds(&r),
        [
            k(T, "RoomStart", json!("alice")),
            k(T, "MemberJoin", json!("alice")),
            k(T + 10, "MemberJoin", json!("bob")),
            k(T + 50, "MemberQuit", json!("bob")),
            k(T + 100, "MemberQuit", json!("alice")),
            k(T + 100, "RoomEnd", Value::Null),
            k(T + 200, "RoomStart", json!("carol")),
            k(T + 200, "MemberJoin", json!("carol")),
        ]
    );
    // Pages.
    let r = call(
        &h,
        lcic(&json!({"RoomId": 42, "SdkAppId": 1400000001, "Page": 2, "Limit": 3})),
    )
    .await;
    assert_eq!(r["Total"], 8);
    assert_eq!(
        kinds(&r),
        [
            k(T + 50, "MemberQuit", json!("bob")),
            k(T + 100, "MemberQuit", json!("alice")),
            k(T + 100, "RoomEnd", Value::Null),
        ]
    );
    let r = call(
        &h,
        lcic(&json!({"RoomId": 42, "SdkAppId": 1400000001, "Page": 9, "Limit": 3})),
    )
    .await;
    assert_eq!(
        (r["Total"].as_i64(), r["Events"].clone()),
        (Some(8), json!([]))
    );
    // Keyword: every matching event; Total unaffected.
    let r = call(&h, lcic(&json!({"RoomId": 42, "SdkAppId": 1400000001, "Page": 1, "Limit": 1, "Keyword": "MemberJoin"}))).await;
    assert_eq!(r["Total"], 8);
    assert_eq!(
        kinds(&r),
        [
            k(T, "MemberJoin", json!("alice")),
            k(T + 10, "MemberJoin", json!("bob")),
            k(T + 200, "MemberJoin", json!("carol")),
        ]
    );
    let r = call(&h, lcic(&json!({"RoomId": 42, "SdkAppId": 1400000001, "Page": 1, "Limit": 10, "Keyword": "RecordFinish"}))).await;
    assert_eq!(
        (r["Total"].as_i64(), r["Events"].clone()),
        (Some(8), json!([]))
    );
    // An empty Keyword is no filter; string values work.
    let r = call(&h, lcic(&json!({"RoomId": "42", "SdkAppId": "1400000001", "Page": "1", "Limit": "200", "Keyword": ""}))).await;
    assert_eq!(r["Events"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn get_room_event_validation() {
    let h = harness();
    room_with_two_calls(&h);
    let base = json!({"RoomId": 42, "SdkAppId": 1400000001, "Page": 1, "Limit": 10});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases = [
        (with("RoomId", json!(43)), "ResourceNotFound.Room"),
        (with("RoomId", json!(0)), "ResourceNotFound.Room"),
        (with("RoomId", json!(-4)), "ResourceNotFound.Room"),
        (
            with("RoomId", json!(99_999_999_999i64)),
            "ResourceNotFound.Room",
        ),
        (with("RoomId", json!("abc")), "InvalidParameter"),
        (
            with("SdkAppId", json!(1400000099)),
            "InvalidParameter.SdkAppId",
        ),
        (with("SdkAppId", json!("x")), "InvalidParameter.SdkAppId"),
        (
            with("SdkAppId", json!(1400000002)),
            "UnauthorizedOperation.SdkAppId",
        ),
        (with("Page", json!(0)), "InvalidParameter"),
        (with("Limit", json!(0)), "InvalidParameter"),
        (with("Limit", json!(201)), "InvalidParameter"),
        (with("Keyword", json!("CameraOn")), "InvalidParameter"),
        (without("RoomId"), "MissingParameter"),
        (without("SdkAppId"), "MissingParameter"),
        (without("Page"), "MissingParameter"),
        (without("Limit"), "MissingParameter"),
        (with("Bogus", json!(1)), "UnknownParameter"),
    ];
    for (req, want) in cases {
        let r = call(&h, lcic(&req)).await;
        assert_eq!(code(&r), want, "{req} → {r}");
    }
    // The trtc service does not have it, and lcic has no trtc actions.
    let r = call(&h, signed("GetRoomEvent", &base, NOW)).await;
    assert_eq!(code(&r), "InvalidAction");
}

#[tokio::test]
async fn describe_call_detail_is_no_longer_offline_but_others_are() {
    let h = harness();
    let r = call(&h, signed("DescribeDetailEvent", &json!({}), NOW)).await;
    assert_eq!(code(&r), "ActionOffline");
    let r = call(&h, signed("DescribeCallDetail", &json!({}), NOW)).await;
    assert_eq!(code(&r), "MissingParameter.CommId");
}

#[tokio::test]
async fn unusual_event_reports_sustained_packet_loss() {
    let h = harness();
    let c = add_call(
        &h.store,
        RoomKey::Num(31),
        T,
        &[("alice", T, None), ("bob", T, None)],
    );
    let other = add_call(&h.store, RoomKey::Num(32), T, &[("carol", T, None)]);
    let mut samples = Vec::new();
    for (i, v) in [5.0, 12.0, 15.0, 30.0, 2.0].into_iter().enumerate() {
        // alice's upstream audio: 3 lossy samples from T+4.
        samples.push(sample(&c, "alice", "", "aLoss", T + 2 * (i as i64 + 1), v));
        // bob receiving alice's video: only 2 in a row, not enough.
        samples.push(sample(
            &c,
            "bob",
            "alice",
            "bigvLoss",
            T + 2 * (i as i64 + 1),
            if i == 2 { 0.0 } else { v },
        ));
    }
    for i in 0..3 {
        samples.push(sample(
            &other,
            "carol",
            "alice",
            "bigvLoss",
            T + 100 + 2 * i,
            50.0,
        ));
        // Not a loss metric: ignored.
        samples.push(sample(
            &other,
            "carol",
            "",
            "bigvCapFps",
            T + 100 + 2 * i,
            50.0,
        ));
    }
    h.store.append_quality(&samples).unwrap();
    let req = json!({"SdkAppId": 1400000001, "StartTime": T, "EndTime": T + 3600});
    let r = call(&h, signed("DescribeUnusualEvent", &req, NOW)).await;
    assert!(r.get("Error").is_none(), "{r}");
    assert_eq!(r["Total"], 2, "{r}");
    assert_eq!(
        r["AbnormalExperienceList"],
        json!([
            {"UserId": "alice", "ExperienceId": 5, "RoomId": "31", "EventTime": T + 4,
             "AbnormalEventList": [{"AbnormalEventId": 2005, "PeerId": ""}]},
            {"UserId": "carol", "ExperienceId": 4, "RoomId": "32", "EventTime": T + 100,
             "AbnormalEventList": [{"AbnormalEventId": 2017, "PeerId": "alice"}]},
        ])
    );
    let mut one_room = req.clone();
    one_room["RoomId"] = json!("32");
    let r = call(&h, signed("DescribeUnusualEvent", &one_room, NOW)).await;
    assert_eq!(r["Total"], 1, "{r}");
    assert_eq!(r["AbnormalExperienceList"][0]["UserId"], "carol");

    let cases = [
        (
            json!({"SdkAppId": 1400000001, "StartTime": T, "EndTime": T + 3601}),
            "InvalidParameter.QueryScaleOversize",
        ),
        (
            json!({"SdkAppId": 1400000001, "StartTime": T, "EndTime": T - 1}),
            "InvalidParameter.EndTs",
        ),
        (
            json!({"SdkAppId": 1400000001, "StartTime": NOW - 15 * 86_400, "EndTime": NOW - 15 * 86_400 + 60}),
            "InvalidParameter.StartTsOversize",
        ),
        (
            json!({"SdkAppId": 1400000002, "StartTime": T, "EndTime": T + 60}),
            "UnauthorizedOperation.SdkAppId",
        ),
        (
            json!({"StartTime": T, "EndTime": T + 60}),
            "MissingParameter.SdkAppId",
        ),
        (
            json!({"SdkAppId": 1400000001, "EndTime": T + 60}),
            "MissingParameter.StartTs",
        ),
    ];
    for (req, want) in cases {
        let r = call(&h, signed("DescribeUnusualEvent", &req, NOW)).await;
        assert_eq!(code(&r), want, "{req} → {r}");
    }
}
