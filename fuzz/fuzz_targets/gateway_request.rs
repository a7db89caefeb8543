//! Request parsing and signature verification of the API gateway, as `hearth_api::router` runs
//! them on every request: `transport::authenticate`, then business-parameter decoding.
//!
//! The input is a small text format, so that seeds are readable requests (see `fuzz/README.md`):
//!
//! ```text
//! <now> <mode>                    server time (Unix seconds) and raw | tc3 | v1
//! <METHOD> <query>                query without `?`, may be empty
//! <name>: <value>                 zero or more header lines
//!                                 an empty line
//! <body>                          the rest, any bytes
//! ```
//!
//! In mode `raw` the request is checked as written. In `tc3` and `v1` the harness first signs it
//! with the one credential's key, as a client would (TC3: recomputes `Signature=` of a parseable
//! `Authorization` header; v1: appends `Signature=` to the query or form body), so the fuzzer gets
//! past signature verification and into action resolution and parameter decoding.

#![no_main]

use hearth_api::params::{self, int};
use hearth_api::signature::{tc3, v1};
use hearth_api::transport::{authenticate, Received};
use hearth_api::Tenants;
use hearth_store::{AppRecord, CredentialRecord};
use hearth_types::{SdkAppId, UnixSecs};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;
use std::sync::OnceLock;

/// The spec's worked-example credential (§1.4.3, §1.5.2): `AKID` + 32 `*`, key 32 `*`.
const SECRET_ID: &str = "AKID********************************";
const SECRET_KEY: &str = "********************************";
const APP: u32 = 1400000001;
/// The timestamp of the spec's TC3 example, used when the first line gives none.
const DEFAULT_NOW: i64 = 1551113065;

fn tenants() -> &'static Tenants {
    static T: OnceLock<Tenants> = OnceLock::new();
    T.get_or_init(|| {
        Tenants::new(
            vec![AppRecord {
                sdk_app_id: SdkAppId(APP),
                secret_key: "0123456789abcdef0123456789abcdef".into(),
                admins: vec!["administrator".into()],
                created_at: UnixSecs(0),
            }],
            vec![CredentialRecord {
                secret_id: SECRET_ID.into(),
                secret_key: SECRET_KEY.into(),
                apps: vec![SdkAppId(APP)],
                created_at: UnixSecs(0),
            }],
        )
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Raw,
    Tc3,
    V1,
}

struct Request {
    now: i64,
    mode: Mode,
    method: Method,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse(data: &[u8]) -> Option<Request> {
    let (control, rest) = split_line(data);
    let control = String::from_utf8_lossy(trim_cr(control));
    let mut words = control.split_whitespace();
    let now = words
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or(DEFAULT_NOW);
    let mode = match words.next() {
        Some("tc3") => Mode::Tc3,
        Some("v1") => Mode::V1,
        _ => Mode::Raw,
    };

    let (request_line, mut rest) = split_line(rest);
    let request_line = trim_cr(request_line);
    let (method, query) = match request_line.iter().position(|&b| b == b' ') {
        Some(i) => (&request_line[..i], &request_line[i + 1..]),
        None => (request_line, &b""[..]),
    };
    let method = Method::from_bytes(method).ok()?;
    let query = String::from_utf8(query.to_vec()).ok()?;

    let mut headers = HeaderMap::new();
    loop {
        if rest.is_empty() {
            break;
        }
        let (line, after) = split_line(rest);
        rest = after;
        let line = trim_cr(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = HeaderName::from_bytes(&line[..colon]);
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        let value = HeaderValue::from_bytes(value);
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    Some(Request {
        now,
        mode,
        method,
        query,
        headers,
        body: rest.to_vec(),
    })
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn is_form(h: &HeaderMap) -> bool {
    header(h, "content-type").is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// Signs like a TC3 client: everything taken from the request, only `Signature=` replaced.
fn sign_tc3(r: &mut Request) {
    let Some(auth) = header(&r.headers, "authorization") else {
        return;
    };
    let Ok(a) = tc3::parse_authorization(auth) else {
        return;
    };
    let is_get = r.method == Method::GET;
    let timestamp = header(&r.headers, "x-tc-timestamp")
        .map(str::to_owned)
        .or_else(|| {
            let mut fields = pairs(r.query.as_bytes());
            if !is_get && is_form(&r.headers) {
                fields.extend(pairs(&r.body));
            }
            fields
                .into_iter()
                .find(|(k, _)| k == "Timestamp")
                .map(|(_, v)| v)
        });
    let Some(Ok(timestamp)) = timestamp.map(|t| t.trim().parse::<i64>()) else {
        return;
    };
    let mut signed = Vec::new();
    for name in &a.signed_headers {
        let Some(value) = header(&r.headers, name) else {
            return;
        };
        signed.push((name.clone(), value.to_owned()));
    }
    let payload_hash = if header(&r.headers, "x-tc-content-sha256") == Some("UNSIGNED-PAYLOAD") {
        tc3::sha256_hex(b"UNSIGNED-PAYLOAD")
    } else if is_get {
        tc3::sha256_hex(b"")
    } else {
        tc3::sha256_hex(&r.body)
    };
    let canonical = tc3::canonical_request(&tc3::CanonicalInput {
        method: if is_get { "GET" } else { "POST" },
        query: if is_get { &r.query } else { "" },
        headers: &signed,
        payload_hash: &payload_hash,
    });
    let sts = tc3::string_to_sign(&timestamp.to_string(), &a.date, &a.service, &canonical);
    let signature = tc3::sign(SECRET_KEY, &a.date, &a.service, &sts);
    let value = format!(
        "TC3-HMAC-SHA256 Credential={}/{}/{}/tc3_request, SignedHeaders={}, Signature={signature}",
        a.secret_id,
        a.date,
        a.service,
        a.signed_headers.join(";")
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers.insert("authorization", v);
    }
}

/// Signs like a v1 client: all decoded fields, then `Signature=` appended where they were sent.
fn sign_v1(r: &mut Request) {
    let is_get = r.method == Method::GET;
    let in_body = !is_get && is_form(&r.headers);
    let mut fields = pairs(r.query.as_bytes());
    if in_body {
        fields.extend(pairs(&r.body));
    }
    let method = v1::Method::from_param(
        fields
            .iter()
            .find(|(k, _)| k == "SignatureMethod")
            .map(|(_, v)| v.as_str()),
    );
    let host = header(&r.headers, "host").unwrap_or("");
    let sts = v1::string_to_sign(if is_get { "GET" } else { "POST" }, host, &fields);
    let signature = v1::sign(method, SECRET_KEY, &sts);
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("Signature", &signature)
        .finish();
    if in_body {
        if !r.body.is_empty() {
            r.body.push(b'&');
        }
        r.body.extend_from_slice(encoded.as_bytes());
    } else {
        if !r.query.is_empty() {
            r.query.push('&');
        }
        r.query.push_str(&encoded);
    }
}

/// Shaped like the monitoring actions' requests, to reach the typed-decoding error paths
/// (`MissingParameter.X`, `InvalidParameter.X`, `UnknownParameter`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RoomInfoLike {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "StartTime", deserialize_with = "int::de")]
    start_time: i64,
    #[serde(rename = "EndTime", deserialize_with = "int::de")]
    end_time: i64,
    #[serde(rename = "RoomId", default)]
    room_id: Option<String>,
    #[serde(rename = "UserIds", default)]
    user_ids: Option<Vec<String>>,
    #[serde(rename = "PageNumber", default, deserialize_with = "int::opt")]
    page_number: Option<i64>,
    #[serde(rename = "PageSize", default, deserialize_with = "int::opt")]
    page_size: Option<u8>,
}

/// `HEARTH_FUZZ_DEBUG=1` prints each outcome (to check what seeds reach).
fn debug() -> bool {
    static D: OnceLock<bool> = OnceLock::new();
    *D.get_or_init(|| std::env::var_os("HEARTH_FUZZ_DEBUG").is_some())
}

fuzz_target!(|data: &[u8]| {
    let Some(mut r) = parse(data) else {
        return;
    };
    match r.mode {
        Mode::Raw => {}
        Mode::Tc3 => sign_tc3(&mut r),
        Mode::V1 => sign_v1(&mut r),
    }

    // The pieces on their own.
    if let Some(auth) = header(&r.headers, "authorization") {
        let _ = tc3::parse_authorization(auth);
    }
    if let Ok(v) = params::nest(pairs(r.query.as_bytes())) {
        let _ = params::decode::<RoomInfoLike>(v);
    }

    // The whole of request handling up to the action.
    let received = Received {
        method: &r.method,
        headers: &r.headers,
        query: &r.query,
        body: &r.body,
    };
    match authenticate(&received, tenants(), UnixSecs(r.now)) {
        Ok(call) => {
            if debug() {
                eprintln!("ok: {} {}", call.action.name, call.params);
            }
            assert_eq!(call.caller.secret_id, SECRET_ID);
            assert!(call.params.is_object(), "params must be an object");
            let _ = params::decode::<Value>(call.params.clone())
                .expect("any object decodes as a Value");
            if let Err(e) = params::decode::<RoomInfoLike>(call.params) {
                let b = e.body();
                assert!(!b.code.is_empty());
            }
        }
        Err(e) => {
            let b = e.body();
            if debug() {
                eprintln!("error: {} {}", b.code, b.message);
            }
            assert!(!b.code.is_empty());
        }
    }
});
