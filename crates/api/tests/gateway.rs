//! The gateway through its router, without a socket: signed requests in, envelopes out, with an
//! in-memory store holding real calls and sessions and a clock the test sets.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use hearth_store::Store;
use hearth_types::{CommId, RoomKey, UnixSecs};
use serde_json::{json, Value};

#[tokio::test]
async fn room_info_lists_calls_of_the_window_with_paging() {
    let h = harness();
    let a = add_call(
        &h.store,
        RoomKey::Num(123),
        NOW - 3000,
        &[("alice", NOW - 3000, None)],
    );
    let b = add_call(
        &h.store,
        RoomKey::string("123").unwrap(),
        NOW - 2000,
        &[("bob", NOW - 2000, Some(NOW - 1000))],
    );
    h.store
        .finish_call(&b, UnixSecs(NOW - 1000), hearth_store::LeaveReason::Normal)
        .unwrap();
    add_call(
        &h.store,
        RoomKey::Num(9),
        NOW - 90_000,
        &[("old", NOW - 90_000, None)],
    );
    h.store
        .finish_call(
            &CommId::new(APP, &RoomKey::Num(9), UnixSecs(NOW - 90_000)),
            UnixSecs(NOW - 89_000),
            hearth_store::LeaveReason::Normal,
        )
        .unwrap();

    let window = json!({"SdkAppId": 1400000001, "StartTime": NOW - 3600, "EndTime": NOW});
    let r = call(&h, signed("DescribeRoomInfo", &window, NOW)).await;
    assert_eq!(r["Total"], 2, "{r}");
    let list = r["RoomList"].as_array().unwrap();
    assert_eq!(list[0]["CommId"], a.as_str());
    assert_eq!(list[0]["RoomString"], "123");
    assert_eq!(list[0]["IsFinished"], false);
    assert_eq!(list[0]["UserId"], "alice");
    assert_eq!(list[1]["CommId"], b.as_str());
    assert_eq!(list[1]["RoomString"], "123");
    assert_eq!(list[1]["IsFinished"], true);
    assert_eq!(list[1]["DestroyTime"], NOW - 1000);
    assert_ne!(
        list[0]["CommId"], list[1]["CommId"],
        "numeric and string room 123 are different calls"
    );

    let mut paged = window.clone();
    paged["PageNumber"] = json!(1);
    paged["PageSize"] = json!(1);
    let r = call(&h, signed("DescribeRoomInfo", &paged, NOW)).await;
    assert_eq!(r["Total"], 2);
    assert_eq!(r["RoomList"].as_array().unwrap().len(), 1);
    assert_eq!(r["RoomList"][0]["CommId"], b.as_str());

    let mut filtered = window.clone();
    filtered["RoomId"] = json!("123");
    assert_eq!(
        call(&h, signed("DescribeRoomInfo", &filtered, NOW)).await["Total"],
        2
    );
    filtered["RoomId"] = json!("124");
    assert_eq!(
        call(&h, signed("DescribeRoomInfo", &filtered, NOW)).await["Total"],
        0
    );
}

#[tokio::test]
async fn user_info_lists_the_users_of_a_call() {
    let h = harness();
    let c = add_call(
        &h.store,
        RoomKey::Num(55),
        NOW - 600,
        &[
            ("alice", NOW - 600, Some(NOW - 100)),
            ("bob", NOW - 500, None),
        ],
    );
    let req = json!({"SdkAppId": 1400000001, "CommId": c.as_str(), "StartTime": NOW - 3600, "EndTime": NOW});
    let r = call(&h, signed("DescribeUserInfo", &req, NOW)).await;
    assert_eq!(r["Total"], 2, "{r}");
    let alice = &r["UserList"][0];
    assert_eq!(alice["UserId"], "alice");
    assert_eq!(alice["RoomStr"], "55");
    assert_eq!(alice["JoinTs"], NOW - 600);
    assert_eq!(alice["LeaveTs"], NOW - 100);
    assert_eq!(alice["Finished"], true);
    assert_eq!(alice["ClientIp"], "10.0.0.7");
    let bob = &r["UserList"][1];
    assert_eq!(bob["LeaveTs"], NOW, "a user still in the room leaves 'now'");
    assert_eq!(bob["Finished"], false);

    let mut only_bob = req.clone();
    only_bob["UserIds"] = json!(["bob"]);
    let r = call(&h, signed("DescribeUserInfo", &only_bob, NOW)).await;
    assert_eq!(r["Total"], 1);
    assert_eq!(r["UserList"][0]["UserId"], "bob");

    let mut foreign = req.clone();
    foreign["CommId"] = json!("1400000002_55_1799999400");
    assert_eq!(
        code(&call(&h, signed("DescribeUserInfo", &foreign, NOW)).await),
        "InvalidParameter"
    );
    let mut long = req.clone();
    long["StartTime"] = json!(NOW - 5 * 3600);
    assert_eq!(
        code(&call(&h, signed("DescribeUserInfo", &long, NOW)).await),
        "InvalidParameter.QueryScaleOversize"
    );
}

#[tokio::test]
async fn scale_info_counts_past_days_but_not_today() {
    let h = harness();
    let today = UnixSecs(NOW).day_start().0;
    let yesterday = today - 86_400;
    let c = add_call(
        &h.store,
        RoomKey::Num(1),
        yesterday + 100,
        &[
            ("a", yesterday + 100, Some(yesterday + 200)),
            ("b", yesterday + 150, Some(yesterday + 300)),
            ("a", yesterday + 400, Some(yesterday + 500)),
        ],
    );
    h.store
        .finish_call(
            &c,
            UnixSecs(yesterday + 600),
            hearth_store::LeaveReason::Normal,
        )
        .unwrap();
    add_call(
        &h.store,
        RoomKey::Num(2),
        today + 10,
        &[("c", today + 10, None)],
    );
    let req = json!({"SdkAppId": 1400000001, "StartTime": yesterday - 86_400, "EndTime": NOW});
    let r = call(&h, signed("DescribeScaleInfo", &req, NOW)).await;
    assert_eq!(r["Total"], 1, "{r}");
    let day = &r["ScaleList"][0];
    assert_eq!(day["Time"], yesterday);
    assert_eq!(day["RoomNumbers"], 1);
    assert_eq!(day["UserNumber"], 2);
    assert_eq!(day["UserCount"], 3);
}

#[tokio::test]
async fn dismiss_reaches_the_room_owner_and_empty_rooms_do_not_exist() {
    let h = harness();
    h.rooms.live.lock().unwrap().push((APP, RoomKey::Num(42)));
    h.rooms
        .live
        .lock()
        .unwrap()
        .push((APP, RoomKey::string("42").unwrap()));
    let r = call(
        &h,
        signed(
            "DismissRoom",
            &json!({"SdkAppId": 1400000001, "RoomId": 42}),
            NOW,
        ),
    )
    .await;
    assert!(r.get("Error").is_none(), "{r}");
    assert_eq!(
        h.rooms.live.lock().unwrap().len(),
        1,
        "only the numeric room went"
    );
    let r = call(
        &h,
        signed(
            "DismissRoom",
            &json!({"SdkAppId": 1400000001, "RoomId": 42}),
            NOW,
        ),
    )
    .await;
    assert_eq!(code(&r), "FailedOperation.RoomNotExist");
    let r = call(
        &h,
        signed(
            "DismissRoomByStrRoomId",
            &json!({"SdkAppId": 1400000001, "RoomId": "42"}),
            NOW,
        ),
    )
    .await;
    assert!(r.get("Error").is_none(), "{r}");
    let r = call(
        &h,
        signed(
            "DismissRoom",
            &json!({"SdkAppId": 1400000002, "RoomId": 42}),
            NOW,
        ),
    )
    .await;
    assert_eq!(code(&r), "UnauthorizedOperation.SdkAppId");
    let r = call(
        &h,
        signed(
            "DismissRoom",
            &json!({"SdkAppId": 1400000001, "RoomId": 4294967295u64}),
            NOW,
        ),
    )
    .await;
    assert_eq!(code(&r), "InvalidParameterValue.RoomId");
    let r = call(
        &h,
        signed(
            "DismissRoom",
            &json!({"SdkAppId": 1400000001, "RoomId": "abc"}),
            NOW,
        ),
    )
    .await;
    assert_eq!(code(&r), "InvalidParameter.RoomId");
    let r = call(
        &h,
        signed("DismissRoom", &json!({"SdkAppId": 1400000001}), NOW),
    )
    .await;
    assert_eq!(code(&r), "MissingParameter.RoomId");
}

#[tokio::test]
async fn timestamps_more_than_five_minutes_off_are_expired() {
    let h = harness();
    let req = json!({"SdkAppId": 1400000001, "StartTime": NOW - 60, "EndTime": NOW});
    assert!(call(&h, signed("DescribeRoomInfo", &req, NOW - 299))
        .await
        .get("Error")
        .is_none());
    assert!(call(&h, signed("DescribeRoomInfo", &req, NOW + 299))
        .await
        .get("Error")
        .is_none());
    assert_eq!(
        code(&call(&h, signed("DescribeRoomInfo", &req, NOW - 301)).await),
        "AuthFailure.SignatureExpire"
    );
    assert_eq!(
        code(&call(&h, signed("DescribeRoomInfo", &req, NOW + 301)).await),
        "AuthFailure.SignatureExpire"
    );
}

#[tokio::test]
async fn unknown_and_deleted_actions() {
    let h = harness();
    // Every action of the spec is built now (an unbuilt one would answer InvalidAction too).
    assert!(hearth_api::catalog::ACTIONS.iter().all(|a| a.built));
    assert_eq!(
        code(&call(&h, signed("Nope", &json!({}), NOW)).await),
        "InvalidAction"
    );
    assert_eq!(
        code(&call(&h, signed("DescribeRoomInformation", &json!({}), NOW)).await),
        "ActionOffline"
    );
}

#[tokio::test]
async fn a_tampered_body_fails_the_signature() {
    let h = harness();
    let req = signed(
        "DescribeRoomInfo",
        &json!({"SdkAppId": 1400000001, "StartTime": NOW - 60, "EndTime": NOW}),
        NOW,
    );
    let (parts, _) = req.into_parts();
    let tampered = Request::from_parts(
        parts,
        Body::from(
            json!({"SdkAppId": 1400000002, "StartTime": NOW - 60, "EndTime": NOW}).to_string(),
        ),
    );
    assert_eq!(
        code(&call(&h, tampered).await),
        "AuthFailure.SignatureFailure"
    );
}

#[tokio::test]
async fn remove_user_and_set_user_blocked_validate_and_reach_the_room_owner() {
    let h = harness();
    h.rooms.live.lock().unwrap().push((APP, RoomKey::Num(7)));
    h.rooms
        .live
        .lock()
        .unwrap()
        .push((APP, RoomKey::string("seven").unwrap()));
    let ok = |r: &Value| r.get("Error").is_none();
    let call_ok = |action: &'static str, body: Value| {
        let h = &h;
        async move { call(h, signed(action, &body, NOW)).await }
    };
    assert!(ok(&call_ok(
        "RemoveUser",
        json!({"SdkAppId": 1400000001, "RoomId": 7, "UserIds": ["a", "ghost"]})
    )
    .await));
    assert!(ok(&call_ok(
        "RemoveUserByStrRoomId",
        json!({"SdkAppId": 1400000001, "RoomId": "seven", "UserIds": ["a"]})
    )
    .await));
    assert!(ok(&call_ok(
        "SetUserBlocked",
        json!({"SdkAppId": 1400000001, "RoomId": 7, "UserId": "a", "IsMute": 1})
    )
    .await));
    assert!(ok(&call_ok(
        "SetUserBlockedByStrRoomId",
        json!({"SdkAppId": 1400000001, "StrRoomId": "\"seven\"", "UserId": "\"a\"", "IsMute": 0})
    )
    .await));
    let cases = [
        (
            "RemoveUser",
            json!({"SdkAppId": 1400000001, "RoomId": 8, "UserIds": ["a"]}),
            "FailedOperation.RoomNotExist",
        ),
        (
            "RemoveUser",
            json!({"SdkAppId": 1400000001, "RoomId": 7, "UserIds": []}),
            "InvalidParameter.UserIds",
        ),
        (
            "RemoveUser",
            json!({"SdkAppId": 1400000001, "RoomId": 7, "UserIds": (0..11).map(|i| format!("u{i}")).collect::<Vec<_>>()}),
            "InvalidParameter.UserIds",
        ),
        (
            "RemoveUser",
            json!({"SdkAppId": 1400000001, "RoomId": 7}),
            "MissingParameter.UserIds",
        ),
        (
            "RemoveUser",
            json!({"SdkAppId": 1400000001, "UserIds": ["a"]}),
            "MissingParameter.RoomId",
        ),
        (
            "RemoveUser",
            json!({"SdkAppId": 1400000001, "RoomId": "seven", "UserIds": ["a"]}),
            "InvalidParameter.RoomId",
        ),
        (
            "RemoveUser",
            json!({"SdkAppId": 1400000001, "RoomId": 0, "UserIds": ["a"]}),
            "InvalidParameterValue.RoomId",
        ),
        (
            "RemoveUser",
            json!({"SdkAppId": 1400000002, "RoomId": 7, "UserIds": ["a"]}),
            "UnauthorizedOperation.SdkAppId",
        ),
        (
            "RemoveUserByStrRoomId",
            json!({"SdkAppId": 1400000001, "RoomId": "bad/room", "UserIds": ["a"]}),
            "InvalidParameterValue.RoomId",
        ),
        (
            "RemoveUserByStrRoomId",
            json!({"SdkAppId": 1400000001, "RoomId": "nope", "UserIds": ["a"]}),
            "FailedOperation.RoomNotExist",
        ),
        (
            "SetUserBlocked",
            json!({"SdkAppId": 1400000001, "RoomId": 7, "UserId": "ghost", "IsMute": 1}),
            "FailedOperation.UserNotExist",
        ),
        (
            "SetUserBlocked",
            json!({"SdkAppId": 1400000001, "RoomId": 7, "UserId": "a", "IsMute": 4}),
            "InvalidParameter",
        ),
        (
            "SetUserBlocked",
            json!({"SdkAppId": 1400000001, "RoomId": 7, "UserId": "", "IsMute": 1}),
            "InvalidParameter.UserId",
        ),
        (
            "SetUserBlocked",
            json!({"SdkAppId": 1400000001, "RoomId": 8, "UserId": "a", "IsMute": 1}),
            "FailedOperation.RoomNotExist",
        ),
        (
            "SetUserBlocked",
            json!({"SdkAppId": 1400000001, "UserId": "a", "IsMute": 1}),
            "MissingParameter.RoomId",
        ),
        (
            "SetUserBlocked",
            json!({"SdkAppId": 1400000001, "RoomId": 7, "IsMute": 1}),
            "MissingParameter.UserId",
        ),
        (
            "SetUserBlocked",
            json!({"SdkAppId": 1400000002, "RoomId": 7, "UserId": "a", "IsMute": 1}),
            "UnauthorizedOperation.SdkAppId",
        ),
        (
            "SetUserBlockedByStrRoomId",
            json!({"SdkAppId": 1400000001, "UserId": "a", "IsMute": 1}),
            "MissingParameter.RoomId",
        ),
        (
            "SetUserBlockedByStrRoomId",
            json!({"SdkAppId": 1400000001, "RoomId": "seven", "UserId": "a", "IsMute": 1}),
            "UnknownParameter",
        ),
    ];
    for (action, body, want) in cases {
        let r = call_ok(action, body.clone()).await;
        assert_eq!(code(&r), want, "{action} {body}: {r}");
    }
}
