//! Errors of the IM-style REST APIs and the one table mapping them to Tencent Chat's numeric
//! `ErrorCode`s and messages (the REST common codes 600xx, the account codes 700xx, and each
//! API's own codes).

use hearth_auth::UserSigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImError {
    /// 60002: the request line or query cannot be used (method, `random`, size).
    HttpParse(String),
    /// 60003: the body is not the JSON object the API takes.
    BadJson(String),
    /// 60006: `sdkappid` is not an application of this server.
    InvalidSdkAppId,
    /// 60007: the application called the REST APIs faster than Tencent Chat's limit.
    FrequencyLimit,
    /// 60009: no such API.
    NoSuchApi(String),
    /// 60010: `identifier` is not one of the application's administrators.
    NotAdmin,
    /// 60012: no `sdkappid` in the query.
    MissingSdkAppId,
    /// 60025: `identifier`, `usersig` or `contenttype` missing or wrong.
    BadUrlParameter(String),
    /// 70001
    UserSigExpired,
    /// 70003
    UserSigInvalid,
    /// 70009: signed with another key.
    UserSigMismatch,
    /// 70013
    IdentifierMismatch,
    /// 70014
    SdkAppIdMismatch,
    /// 70402: a required body field is missing or invalid.
    InvalidParameter(String),
    /// 101001
    Internal,
    /// 101050
    CallRecordNotFound,
}

impl ImError {
    /// (ErrorCode, ErrorInfo)
    pub fn parts(&self) -> (u32, String) {
        match self {
            ImError::HttpParse(m) => (60002, format!("HTTP parsing error: {m}")),
            ImError::BadJson(m) => (60003, format!("HTTP request JSON parsing error: {m}")),
            ImError::InvalidSdkAppId => (
                60006,
                "Invalid SDKAppID: no such application on this server.".into(),
            ),
            ImError::FrequencyLimit => (
                60007,
                format!(
                    "REST API call frequency exceeds the limit of {} requests per second per application; reduce the request rate.",
                    super::REQUESTS_PER_SEC
                ),
            ),
            ImError::NoSuchApi(p) => (60009, format!("Request resource error: no API at {p}.")),
            ImError::NotAdmin => (
                60010,
                "The request requires App administrator permissions: identifier is not an administrator of this application.".into(),
            ),
            ImError::MissingSdkAppId => (
                60012,
                "The RESTful API requires the SDKAppID: sdkappid is missing from the URL.".into(),
            ),
            ImError::BadUrlParameter(m) => (60025, format!("URL parameter error: {m}")),
            ImError::UserSigExpired => (70001, "UserSig expired.".into()),
            ImError::UserSigInvalid => (70003, "Illegal UserSig.".into()),
            ImError::UserSigMismatch => (
                70009,
                "UserSig verification failed: it was not made with this application's key.".into(),
            ),
            ImError::IdentifierMismatch => (
                70013,
                "The identifier in the request differs from the one the UserSig was made for."
                    .into(),
            ),
            ImError::SdkAppIdMismatch => (
                70014,
                "The SDKAppID in the request differs from the one the UserSig was made for."
                    .into(),
            ),
            ImError::InvalidParameter(m) => (70402, format!("Illegal request parameters: {m}")),
            ImError::Internal => (101001, "Internal server error, please retry.".into()),
            ImError::CallRecordNotFound => (101050, "The call record does not exist.".into()),
        }
    }
}

impl From<UserSigError> for ImError {
    fn from(e: UserSigError) -> Self {
        match e {
            UserSigError::Expired => ImError::UserSigExpired,
            UserSigError::WrongApp => ImError::SdkAppIdMismatch,
            UserSigError::BadSignature => ImError::UserSigMismatch,
            UserSigError::Malformed(_) | UserSigError::UnsupportedVersion(_) => {
                ImError::UserSigInvalid
            }
        }
    }
}
