//! Every error the API answers with, and the one table that maps each to its TencentCloud code
//! and message (spec §1.8, §5). Handlers return [`ApiError`]; nothing else picks codes.

/// An error answered in the `Response.Error` envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    // --- transport and protocol (common codes) ---
    UnsupportedProtocol(String),
    RequestSizeLimitExceeded(String),
    RequestLimitExceeded {
        action: String,
        per_second: String,
    },
    MissingParameter(String),
    InvalidParameter(String),
    InvalidParameterValue(String),
    UnknownParameter(String),
    InvalidAction(String),
    ActionOffline(String),
    NoSuchVersion(String),
    NoSuchProduct(String),
    UnsupportedRegion(String),

    // --- authentication ---
    SignatureExpire,
    SignatureFailure,
    SecretIdNotFound,
    InvalidAuthorization(String),
    TokenFailure,

    // --- service codes with a detail part: `MissingParameter.X`, `InvalidParameter.X` ---
    /// A required parameter that has a documented `MissingParameter.<Detail>` code.
    MissingParameterOf {
        detail: &'static str,
        name: String,
    },
    /// A parameter that has a documented `InvalidParameter.<Detail>` code.
    InvalidParameterOf {
        detail: &'static str,
        message: String,
    },
    InvalidRoomIdValue(String),

    // --- business outcomes ---
    UnauthorizedSdkAppId(u32),
    RoomNotExist,
    SdkAppIdNotExist(u32),
    UserNotExist,
    /// LCIC: the room never existed (or left the retention window).
    LcicRoomNotFound,
    Internal,
    DbError,
    /// `FailedOperation` with what went wrong.
    FailedOperation(String),
    /// The media task budget is spent.
    RestrictedConcurrency,
    /// A media task that does not exist for this application, or has ended.
    TaskNotFound,
    /// FailedOperation.NotRtmpFunction: StartStreamIngest's AutoPush (relaying the ingest to a
    /// CDN) is not enabled on this server.
    NotRtmpFunction,
    /// FailedOperation.TaskExist: the same task is already running.
    TaskExist(String),
    /// FailedOperation.TaskFinished: the task has already ended.
    TaskFinished,
    /// FailedOperation.TaskNotExist (the stream-ingest and AI actions' way of saying it).
    TaskNotExist,
    /// FailedOperation.NotAbility: this server cannot do what was asked (the message says
    /// what: a language its speech engine lacks, …).
    NotAbility(String),
    /// FailedOperation.SdkAppIdNotUnderAppId: the AI actions' way of saying the SdkAppId is
    /// not the caller's.
    SdkAppIdNotUnderAppId(u32),
    /// ResourceInsufficient.RequestRejection: the AI actions' way of saying the media task
    /// budget is spent.
    RequestRejection,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.body();
        write!(f, "{}: {}", b.code, b.message)
    }
}

impl std::error::Error for ApiError {}

/// The code and message of an error, as put on the wire.
pub struct ApiErrorBody<'a> {
    pub code: std::borrow::Cow<'a, str>,
    pub message: String,
}

impl ApiError {
    /// The one table: error → (TencentCloud code, message).
    pub fn body(&self) -> ApiErrorBody<'_> {
        use std::borrow::Cow::{Borrowed, Owned};
        let (code, message): (std::borrow::Cow<'_, str>, String) = match self {
            ApiError::UnsupportedProtocol(m) => (
                Borrowed("UnsupportedProtocol"),
                format!("HTTP(S) request protocol error; only GET and POST requests are supported. {m}"),
            ),
            ApiError::RequestSizeLimitExceeded(m) => (
                Borrowed("RequestSizeLimitExceeded"),
                format!("The request size exceeds the upper limit. {m}"),
            ),
            ApiError::RequestLimitExceeded { action, per_second } => (
                Borrowed("RequestLimitExceeded"),
                format!("Your current request times exceed the frequency limit of {action} ({per_second})."),
            ),
            ApiError::MissingParameter(name) => (
                Borrowed("MissingParameter"),
                format!("The request is missing a required parameter `{name}`."),
            ),
            ApiError::InvalidParameter(m) => (Borrowed("InvalidParameter"), m.clone()),
            ApiError::InvalidParameterValue(m) => (Borrowed("InvalidParameterValue"), m.clone()),
            ApiError::UnknownParameter(name) => (
                Borrowed("UnknownParameter"),
                format!("The parameter `{name}` is not recognized."),
            ),
            ApiError::InvalidAction(a) => (
                Borrowed("InvalidAction"),
                format!("The API `{a}` does not exist."),
            ),
            ApiError::ActionOffline(a) => (
                Borrowed("ActionOffline"),
                format!("The API `{a}` has been deprecated."),
            ),
            ApiError::NoSuchVersion(v) => (
                Borrowed("NoSuchVersion"),
                format!("The API version `{v}` does not exist."),
            ),
            ApiError::NoSuchProduct(p) => (
                Borrowed("NoSuchProduct"),
                format!("The product `{p}` does not exist."),
            ),
            ApiError::UnsupportedRegion(r) => (
                Borrowed("UnsupportedRegion"),
                format!("The API does not support the region `{r}`."),
            ),
            ApiError::SignatureExpire => (
                Borrowed("AuthFailure.SignatureExpire"),
                "Signature expired. Timestamp and server time cannot differ by more than five minutes.".into(),
            ),
            ApiError::SignatureFailure => (
                Borrowed("AuthFailure.SignatureFailure"),
                "The provided credentials could not be validated. Please check your signature is correct.".into(),
            ),
            ApiError::SecretIdNotFound => (
                Borrowed("AuthFailure.SecretIdNotFound"),
                "The SecretId is not found, please ensure that your SecretId is correct.".into(),
            ),
            ApiError::InvalidAuthorization(m) => (
                Borrowed("AuthFailure.InvalidAuthorization"),
                format!("Authorization in the request header is invalid. {m}"),
            ),
            ApiError::TokenFailure => (
                Borrowed("AuthFailure.TokenFailure"),
                "Temporary credential tokens are not supported by this server.".into(),
            ),
            ApiError::MissingParameterOf { detail, name } => (
                Owned(format!("MissingParameter.{detail}")),
                format!("The request is missing a required parameter `{name}`."),
            ),
            ApiError::InvalidParameterOf { detail, message } => {
                (Owned(format!("InvalidParameter.{detail}")), message.clone())
            }
            ApiError::InvalidRoomIdValue(m) => (Borrowed("InvalidParameterValue.RoomId"), m.clone()),
            ApiError::UnauthorizedSdkAppId(app) => (
                Borrowed("UnauthorizedOperation.SdkAppId"),
                format!("No permission to manipulate SdkAppId {app}."),
            ),
            ApiError::RoomNotExist => (
                Borrowed("FailedOperation.RoomNotExist"),
                "The room does not exist.".into(),
            ),
            ApiError::SdkAppIdNotExist(app) => (
                Borrowed("FailedOperation.SdkAppIdNotExist"),
                format!("The application {app} does not exist."),
            ),
            ApiError::UserNotExist => (
                Borrowed("FailedOperation.UserNotExist"),
                "The user is not in the room.".into(),
            ),
            ApiError::LcicRoomNotFound => (
                Borrowed("ResourceNotFound.Room"),
                "The room does not exist.".into(),
            ),
            ApiError::Internal => (Borrowed("InternalError"), "Internal error.".into()),
            ApiError::FailedOperation(m) => (Borrowed("FailedOperation"), m.clone()),
            ApiError::RestrictedConcurrency => (
                Borrowed("FailedOperation.RestrictedConcurrency"),
                "Maximum number of concurrent media tasks reached: this server's budget for media tasks (media.cpu_budget) is spent.".into(),
            ),
            ApiError::TaskNotFound => (
                Borrowed("ResourceNotFound"),
                "The task does not exist, has ended, or is past its ResourceExpiredHour.".into(),
            ),
            ApiError::NotRtmpFunction => (
                Borrowed("FailedOperation.NotRtmpFunction"),
                "AutoPush (relaying the ingested stream to a CDN) is not enabled on this server; relay the room with StartPublishCdnStream.".into(),
            ),
            ApiError::TaskExist(m) => (Borrowed("FailedOperation.TaskExist"), m.clone()),
            ApiError::TaskFinished => (
                Borrowed("FailedOperation.TaskFinished"),
                "The task has already ended.".into(),
            ),
            ApiError::TaskNotExist => (
                Borrowed("FailedOperation.TaskNotExist"),
                "The task does not exist or has ended.".into(),
            ),
            ApiError::NotAbility(m) => (Borrowed("FailedOperation.NotAbility"), m.clone()),
            ApiError::RequestRejection => (
                Borrowed("ResourceInsufficient.RequestRejection"),
                "This server's media task budget is spent; try again later.".into(),
            ),
            ApiError::SdkAppIdNotUnderAppId(app) => (
                Borrowed("FailedOperation.SdkAppIdNotUnderAppId"),
                format!("SdkAppId {app} is not an application of this credential."),
            ),
            ApiError::DbError => (
                Borrowed("InternalError.DBError"),
                "An error occurred while querying the database.".into(),
            ),
        };
        ApiErrorBody { code, message }
    }
}

impl From<hearth_store::StoreError> for ApiError {
    fn from(e: hearth_store::StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        ApiError::DbError
    }
}

/// Documented `MissingParameter.<Detail>` / `InvalidParameter.<Detail>` codes by parameter name
/// (spec §5.2). Parameters not listed get the plain common code.
pub(crate) fn detail_for_param(name: &str) -> Option<&'static str> {
    Some(match name {
        "SdkAppId" => "SdkAppId",
        "RoomId" => "RoomId",
        "StrRoomId" => "RoomId",
        "UserId" => "UserId",
        "UserIds" => "UserIds",
        "CommId" => "CommId",
        "StartTime" => "StartTs",
        "EndTime" => "EndTs",
        "PageNumber" => "PageNumber",
        "PageSize" => "PageSize",
        "TaskId" => "TaskId",
        "RecordParams" => "RecordParams",
        "StorageParams" => "StorageParams",
        "RecordMode" => "RecordMode",
        "StreamType" => "StreamType",
        "UserSig" => "UserSig",
        "CloudStorage" => "CloudStorage",
        "Vendor" => "Vendor",
        "Region" => "Region",
        "Bucket" => "Bucket",
        "AccessKey" => "AccessKey",
        "SecretKey" => "SecretKey",
        _ => return None,
    })
}

/// Which detail codes exist for invalid parameters (a subset of [`detail_for_param`]; there is
/// no `InvalidParameter.CommId`).
pub(crate) fn invalid_detail_exists(detail: &str) -> bool {
    matches!(
        detail,
        "SdkAppId"
            | "RoomId"
            | "UserId"
            | "UserIds"
            | "StartTs"
            | "EndTs"
            | "PageNumber"
            | "PageSize"
            | "TaskId"
            | "UserSig"
    )
}

/// Which detail codes exist for missing parameters (a subset of [`detail_for_param`]).
pub(crate) fn missing_detail_exists(detail: &str) -> bool {
    matches!(
        detail,
        "SdkAppId"
            | "RoomId"
            | "UserId"
            | "UserIds"
            | "CommId"
            | "StartTs"
            | "EndTs"
            | "TaskId"
            | "RecordParams"
            | "StorageParams"
            | "RecordMode"
            | "StreamType"
            | "UserSig"
            | "CloudStorage"
            | "Vendor"
            | "Region"
            | "Bucket"
            | "AccessKey"
            | "SecretKey"
    )
}
