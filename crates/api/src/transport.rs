//! From an HTTP request as received to an authenticated action call: common parameters from
//! `X-TC-*` headers or query/form fields, business parameters from a JSON body, a form body or
//! the query string, size limits (spec §1.2), and TC3 or v1 signature verification.

use crate::catalog::{self, Action, Service};
use crate::error::ApiError;
use crate::params;
use crate::signature::{same, tc3, v1};
use crate::tenants::{Caller, Tenants};
use axum::http::{HeaderMap, Method};
use hearth_types::UnixSecs;
use serde_json::Value;

/// GET requests: at most 32 KB.
pub const MAX_GET_BYTES: usize = 32 * 1024;
/// POST signed with v1 (HmacSHA1/HmacSHA256): at most 1 MB.
pub const MAX_V1_POST_BYTES: usize = 1024 * 1024;
/// POST signed with TC3-HMAC-SHA256: at most 10 MB.
pub const MAX_TC3_POST_BYTES: usize = 10 * 1024 * 1024;
/// Largest allowed difference between the request timestamp and server time.
pub const MAX_SKEW_SECS: i64 = 300;

/// Common parameters that are not business parameters (v1 carries them among the others).
const COMMON_FIELDS: &[&str] = &[
    "Action",
    "Version",
    "Region",
    "Timestamp",
    "Nonce",
    "SecretId",
    "Signature",
    "SignatureMethod",
    "Token",
    "RequestClient",
    "Language",
];

/// The request as received.
pub struct Received<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// Raw query string, without `?`.
    pub query: &'a str,
    pub body: &'a [u8],
}

/// An authenticated call of a known, built action.
pub struct Call {
    pub action: &'static Action,
    pub caller: Caller,
    pub region: Option<String>,
    /// Business parameters as a JSON object.
    pub params: Value,
}

enum BodyKind {
    Json,
    Form,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let ct = header(headers, "content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let mime = ct.split(';').next().unwrap_or("").trim();
    match mime {
        "application/json" => Ok(BodyKind::Json),
        "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
        _ => Err(ApiError::UnsupportedProtocol(format!(
            "The Content-Type `{mime}` is not supported; use application/json or application/x-www-form-urlencoded."
        ))),
    }
}

fn decode_pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn take(fields: &mut Vec<(String, String)>, name: &str) -> Result<Option<String>, ApiError> {
    let mut found = None;
    let mut repeated = false;
    fields.retain(|(k, v)| {
        if k == name {
            repeated |= found.replace(v.clone()).is_some();
            false
        } else {
            true
        }
    });
    if repeated {
        return Err(ApiError::InvalidParameter(format!(
            "The parameter `{name}` is repeated."
        )));
    }
    Ok(found)
}

/// Authenticates and resolves a request. `now` is server time.
pub fn authenticate(r: &Received, tenants: &Tenants, now: UnixSecs) -> Result<Call, ApiError> {
    let is_get = match *r.method {
        Method::GET => true,
        Method::POST => false,
        _ => {
            return Err(ApiError::UnsupportedProtocol(format!(
                "The method {} is not allowed.",
                r.method
            )))
        }
    };
    if is_get && r.query.len() + r.body.len() > MAX_GET_BYTES {
        return Err(ApiError::RequestSizeLimitExceeded(
            "GET requests are limited to 32 KB.".into(),
        ));
    }
    match r.headers.get("authorization") {
        Some(auth) => {
            let auth = auth
                .to_str()
                .map_err(|_| ApiError::InvalidAuthorization("Not ASCII.".into()))?;
            authenticate_tc3(r, is_get, auth, tenants, now)
        }
        None => authenticate_v1(r, is_get, tenants, now),
    }
}

fn authenticate_tc3(
    r: &Received,
    is_get: bool,
    auth: &str,
    tenants: &Tenants,
    now: UnixSecs,
) -> Result<Call, ApiError> {
    // Business parameters and any common parameters sent as fields.
    let (mut fields, json_body) = if is_get {
        (decode_pairs(r.query.as_bytes()), None)
    } else {
        match body_kind(r.headers)? {
            BodyKind::Json => (decode_pairs(r.query.as_bytes()), Some(r.body)),
            BodyKind::Form => {
                let mut f = decode_pairs(r.query.as_bytes());
                f.extend(decode_pairs(r.body));
                (f, None)
            }
        }
    };
    let mut common = |header_name: &str, field: &str| -> Result<Option<String>, ApiError> {
        let from_field = take(&mut fields, field)?;
        Ok(header(r.headers, header_name)
            .map(str::to_owned)
            .or(from_field))
    };
    let action = common("x-tc-action", "Action")?;
    let version = common("x-tc-version", "Version")?;
    let region = common("x-tc-region", "Region")?;
    let timestamp = common("x-tc-timestamp", "Timestamp")?;
    let token = common("x-tc-token", "Token")?;
    for f in ["RequestClient", "Language"] {
        take(&mut fields, f)?;
    }
    let action = action.ok_or_else(|| ApiError::MissingParameter("Action".into()))?;
    let version = version.ok_or_else(|| ApiError::MissingParameter("Version".into()))?;
    let timestamp = parse_timestamp(timestamp)?;

    let a = tc3::parse_authorization(auth)?;
    check_skew(timestamp, now)?;
    let cred = tenants
        .credential(&a.secret_id)
        .ok_or(ApiError::SecretIdNotFound)?;
    if token.is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::TokenFailure);
    }
    if tc3::utc_date(timestamp).as_deref() != Some(a.date.as_str()) {
        return Err(ApiError::SignatureFailure);
    }
    let mut signed = Vec::with_capacity(a.signed_headers.len());
    for name in &a.signed_headers {
        let value = header(r.headers, name).ok_or(ApiError::SignatureFailure)?;
        signed.push((name.clone(), value.to_owned()));
    }
    let payload_hash = if header(r.headers, "x-tc-content-sha256") == Some("UNSIGNED-PAYLOAD") {
        tc3::sha256_hex(b"UNSIGNED-PAYLOAD")
    } else if is_get {
        tc3::sha256_hex(b"")
    } else {
        tc3::sha256_hex(r.body)
    };
    let method = if is_get { "GET" } else { "POST" };
    let query = if is_get { r.query } else { "" };
    let scope = format!("{}/{}/{}", a.secret_id, a.date, a.service);
    let kept = tenants.signing_keys.get(&scope);
    let key = kept.unwrap_or_else(|| tc3::signing_key(&cred.secret_key, &a.date, &a.service));
    let verify = |headers: &[(String, String)]| {
        let canonical = tc3::canonical_request(&tc3::CanonicalInput {
            method,
            query,
            headers,
            payload_hash: &payload_hash,
        });
        let sts = tc3::string_to_sign(&timestamp.to_string(), &a.date, &a.service, &canonical);
        let expected = tc3::sign_with(&key, &sts);
        same(expected.as_bytes(), a.signature.as_bytes())
    };
    if !verify(&signed) && !verify(&without_host_port(&signed)) {
        return Err(ApiError::SignatureFailure);
    }
    if kept.is_none() {
        tenants.signing_keys.keep(scope, key);
    }
    if !is_get && r.body.len() > MAX_TC3_POST_BYTES {
        return Err(ApiError::RequestSizeLimitExceeded(
            "TC3 POST requests are limited to 10 MB.".into(),
        ));
    }
    // The scope names the product. An SDK pointed at an address (`127.0.0.1:8080`) derives it
    // from the Host's first label ("127"): only then does the version tell instead.
    let host_label = header(r.headers, "host").and_then(|h| h.split(['.', ':']).next());
    let service = Service::from_name(&a.service)
        .or_else(|| {
            (host_label == Some(a.service.as_str()))
                .then(|| service_of_version(&version))
                .flatten()
        })
        .ok_or_else(|| ApiError::NoSuchProduct(a.service.clone()))?;
    let action = resolve(service, &version, &action)?;
    let params = match json_body {
        Some(body) => json_params(body, fields)?,
        None => params::nest(fields)?,
    };
    Ok(Call {
        action,
        caller: caller(cred),
        region,
        params,
    })
}

fn authenticate_v1(
    r: &Received,
    is_get: bool,
    tenants: &Tenants,
    now: UnixSecs,
) -> Result<Call, ApiError> {
    let mut fields = decode_pairs(r.query.as_bytes());
    if !is_get {
        if !matches!(body_kind(r.headers)?, BodyKind::Form) {
            return Err(ApiError::InvalidAuthorization(
                "JSON requests must be signed with TC3-HMAC-SHA256 in the Authorization header."
                    .into(),
            ));
        }
        if r.body.len() > MAX_V1_POST_BYTES {
            return Err(ApiError::RequestSizeLimitExceeded(
                "POST requests signed with HmacSHA1/HmacSHA256 are limited to 1 MB.".into(),
            ));
        }
        fields.extend(decode_pairs(r.body));
    }
    let signed_fields = fields.clone();
    let mut common = |name: &str| take(&mut fields, name);
    let action = common("Action")?.ok_or_else(|| ApiError::MissingParameter("Action".into()))?;
    let version = common("Version")?.ok_or_else(|| ApiError::MissingParameter("Version".into()))?;
    let region = common("Region")?;
    let timestamp = parse_timestamp(common("Timestamp")?)?;
    let nonce = common("Nonce")?.ok_or_else(|| ApiError::MissingParameter("Nonce".into()))?;
    if nonce.parse::<u64>().is_err() {
        return Err(ApiError::InvalidParameter(
            "The parameter `Nonce` must be a positive integer.".into(),
        ));
    }
    let secret_id =
        common("SecretId")?.ok_or_else(|| ApiError::MissingParameter("SecretId".into()))?;
    let signature =
        common("Signature")?.ok_or_else(|| ApiError::MissingParameter("Signature".into()))?;
    let method = v1::Method::from_param(common("SignatureMethod")?.as_deref());
    let token = common("Token")?;
    for f in COMMON_FIELDS {
        common(f)?;
    }

    check_skew(timestamp, now)?;
    let cred = tenants
        .credential(&secret_id)
        .ok_or(ApiError::SecretIdNotFound)?;
    if token.is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::TokenFailure);
    }
    let host = header(r.headers, "host").unwrap_or("");
    let sts = v1::string_to_sign(if is_get { "GET" } else { "POST" }, host, &signed_fields);
    let expected = v1::sign(method, &cred.secret_key, &sts);
    if !same(expected.as_bytes(), signature.as_bytes()) {
        return Err(ApiError::SignatureFailure);
    }
    let service = service_of_v1(host, &version);
    let action = resolve(service, &version, &action)?;
    Ok(Call {
        action,
        caller: caller(cred),
        region,
        params: params::nest(fields)?,
    })
}

/// v1 has no credential scope: the service is the Host's first label when it names one
/// (`trtc.tencentcloudapi.com`), else the one whose version was asked for.
fn service_of_v1(host: &str, version: &str) -> Service {
    let label = host.split('.').next().unwrap_or("");
    Service::from_name(label)
        .or_else(|| service_of_version(version))
        .unwrap_or(Service::Trtc)
}

fn service_of_version(version: &str) -> Option<Service> {
    [Service::Trtc, Service::Lcic]
        .into_iter()
        .find(|s| s.version() == version)
}

/// The signed headers with `host` cut to its hostname: the official Node.js SDK signs the
/// hostname of its endpoint but sends `Host` with the port, which only matters off the cloud.
fn without_host_port(signed: &[(String, String)]) -> Vec<(String, String)> {
    signed
        .iter()
        .map(
            |(name, value)| match (name.as_str(), value.rsplit_once(':')) {
                ("host", Some((host, port))) if port.bytes().all(|b| b.is_ascii_digit()) => {
                    (name.clone(), host.to_owned())
                }
                _ => (name.clone(), value.clone()),
            },
        )
        .collect()
}

fn caller(cred: &hearth_store::CredentialRecord) -> Caller {
    Caller {
        secret_id: cred.secret_id.clone(),
        apps: cred.apps.clone(),
    }
}

fn parse_timestamp(t: Option<String>) -> Result<i64, ApiError> {
    let t = t.ok_or_else(|| ApiError::MissingParameter("Timestamp".into()))?;
    t.trim().parse::<i64>().map_err(|_| {
        ApiError::InvalidParameter(
            "The parameter `Timestamp` must be a Unix time in seconds.".into(),
        )
    })
}

fn check_skew(timestamp: i64, now: UnixSecs) -> Result<(), ApiError> {
    if timestamp.abs_diff(now.0) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(ApiError::SignatureExpire);
    }
    Ok(())
}

fn resolve(service: Service, version: &str, name: &str) -> Result<&'static Action, ApiError> {
    if version != service.version() {
        return Err(ApiError::NoSuchVersion(version.to_owned()));
    }
    match catalog::find(service, name) {
        Some(a) if a.built => Ok(a),
        _ if catalog::DELETED.contains(&name) && service == Service::Trtc => {
            Err(ApiError::ActionOffline(name.to_owned()))
        }
        _ => Err(ApiError::InvalidAction(name.to_owned())),
    }
}

fn json_params(body: &[u8], query_fields: Vec<(String, String)>) -> Result<Value, ApiError> {
    let bad = |m: String| ApiError::InvalidParameterOf {
        detail: "BodyParamsError",
        message: m,
    };
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| bad(format!("The request body is not valid JSON: {e}.")))?
    };
    if !value.is_object() {
        return Err(bad("The request body must be a JSON object.".into()));
    }
    if !query_fields.is_empty() {
        return Err(ApiError::InvalidParameter(
            "Business parameters go in the JSON body, not in the query string, for POST requests."
                .into(),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_timestamps_are_expired_not_a_panic() {
        let now = UnixSecs(1_800_000_000);
        for t in [i64::MIN, i64::MAX, 0, -1] {
            assert_eq!(check_skew(t, now), Err(ApiError::SignatureExpire), "{t}");
        }
        assert_eq!(check_skew(now.0 - MAX_SKEW_SECS, now), Ok(()));
    }
}

#[cfg(test)]
mod node_sdk_tests {
    use super::*;

    #[test]
    fn the_host_port_can_be_dropped_for_sdks_that_sign_the_hostname() {
        let signed = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("host".to_owned(), "127.0.0.1:8080".to_owned()),
        ];
        let cut = without_host_port(&signed);
        assert_eq!(cut[1].1, "127.0.0.1");
        assert_eq!(cut[0], signed[0]);
        let odd = vec![("host".to_owned(), "http://example.com".to_owned())];
        assert_eq!(without_host_port(&odd), odd, "not a port: unchanged");
    }

    #[test]
    fn an_address_as_scope_service_falls_back_to_the_version() {
        assert_eq!(service_of_version("2019-07-22"), Some(Service::Trtc));
        assert_eq!(service_of_version("2022-08-17"), Some(Service::Lcic));
        assert_eq!(service_of_version("2017-03-12"), None);
    }
}
