//! The AI transcription actions (spec §2.3.23–25): StartAITranscription (a robot that subtitles
//! the room, or one user, as custom messages with CmdId 1), DescribeAITranscription (by TaskId,
//! or SdkAppId and SessionId) and StopAITranscription; Describe and Stop serve the conversation
//! actions too (`ai_conversation`). Recognition runs on the server
//! (PocketSphinx, English); a language it cannot recognize is `FailedOperation.NotAbility`.

use super::record::{check_usersig, ranged};
use super::{fields, Ctx};
use crate::error::ApiError;
use crate::media::{AiKind, AiTaskRef, TaskError, TranscriptionStart};
use crate::params::{decode, int};
use hearth_media_proto::Transcription;
use hearth_types::{RoomKey, SdkAppId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The languages of RecognizeConfig (spec §3.31).
pub(super) const LANGUAGES: [&str; 20] = [
    "zh",
    "zh-TW",
    "zh-dialect",
    "en",
    "vi",
    "ja",
    "ko",
    "id",
    "th",
    "pt",
    "tr",
    "ar",
    "es",
    "hi",
    "fr",
    "ms",
    "fil",
    "de",
    "it",
    "ru",
];
/// The language when none is given (TRTC's is `zh`; the default engine knows English only).
pub(super) const DEFAULT_LANGUAGE: &str = "en";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TranscriptionParams {
    #[serde(rename = "UserId", default)]
    user_id: String,
    #[serde(rename = "UserSig", default)]
    user_sig: String,
    #[serde(rename = "MaxIdleTime", default, deserialize_with = "int::opt")]
    max_idle_time: Option<i64>,
    #[serde(rename = "TranscriptionMode", default, deserialize_with = "int::opt")]
    mode: Option<i64>,
    #[serde(rename = "TargetUserId", default)]
    target_user_id: Option<String>,
    #[serde(rename = "VoicePrint", default)]
    voice_print: Option<Value>,
    #[serde(rename = "TurnDetection", default)]
    turn_detection: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RecognizeConfig {
    #[serde(rename = "Language", default)]
    language: Option<String>,
    #[serde(rename = "AlternativeLanguage", default)]
    alternative: Vec<String>,
    #[serde(rename = "HotWordList", default)]
    hot_words: Option<String>,
    #[serde(rename = "VadSilenceTime", default, deserialize_with = "int::opt")]
    vad_silence_time: Option<i64>,
    #[serde(rename = "VadLevel", default, deserialize_with = "int::opt")]
    vad_level: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartParams {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "RoomId", default)]
    room_id: String,
    #[serde(rename = "RoomIdType", default, deserialize_with = "int::opt")]
    room_id_type: Option<i64>,
    #[serde(rename = "TranscriptionParams")]
    params: Option<TranscriptionParams>,
    #[serde(rename = "SessionId", default)]
    session_id: Option<String>,
    #[serde(rename = "RecognizeConfig", default)]
    recognize: Option<RecognizeConfig>,
    #[serde(rename = "TranslationConfig", default)]
    translation: Option<Value>,
}

#[derive(Serialize)]
struct TaskOut {
    #[serde(rename = "TaskId")]
    task_id: String,
}

/// The AI actions' way to check the caller's right to an app.
pub(super) fn check_ai_app(ctx: &Ctx, app: SdkAppId) -> Result<(), ApiError> {
    ctx.caller
        .check_app(app)
        .map_err(|_| ApiError::SdkAppIdNotUnderAppId(app.0))
}

/// A start that failed: a spent task budget is the AI actions' RequestRejection.
pub(super) fn start_error(e: TaskError) -> ApiError {
    match e {
        TaskError::Concurrency => ApiError::RequestRejection,
        other => other.into(),
    }
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::InvalidParameter(m.into())
}

/// RoomIdType of the AI actions: `0` numeric (the default), `1` string.
pub(super) fn room_of(id: &str, kind: Option<i64>) -> Result<RoomKey, ApiError> {
    if id.trim().is_empty() {
        return Err(ApiError::MissingParameterOf {
            detail: "RoomId",
            name: "RoomId".into(),
        });
    }
    let bad = |m: String| ApiError::InvalidParameterOf {
        detail: "RoomId",
        message: m,
    };
    match kind.unwrap_or(0) {
        0 => {
            let n = id.trim().parse::<u64>().map_err(|_| {
                bad(format!(
                    "RoomId {id:?} is not a numeric room; use RoomIdType 1 for string rooms."
                ))
            })?;
            RoomKey::num(n).map_err(|e| bad(e.to_string()))
        }
        1 => RoomKey::string(id).map_err(|e| bad(e.to_string())),
        v => Err(invalid(format!(
            "RoomIdType must be 0 (numeric) or 1 (string); got {v}."
        ))),
    }
}

/// HotWordList (`term|weight,term|weight`) as the phrases recognition is restricted to.
/// RecognizeConfig's or STTConfig's `Language` (`en-US` is read as `en`): one of the spec's
/// (whether the engine knows it is judged once the engine is known). `AlternativeLanguage` is
/// not done.
pub(super) fn language_of(
    language: Option<String>,
    alternative: &[String],
) -> Result<String, ApiError> {
    let language = match language.as_deref() {
        None | Some("") => DEFAULT_LANGUAGE.to_owned(),
        Some("en-US") => "en".to_owned(),
        Some(l) => l.to_owned(),
    };
    if !LANGUAGES.contains(&language.as_str()) {
        return Err(invalid(format!(
            "Language {language:?} is not one of the spec's."
        )));
    }
    if !alternative.is_empty() {
        return Err(ApiError::NotAbility(format!(
            "AlternativeLanguage {alternative:?}: this server recognizes one language per task."
        )));
    }
    Ok(language)
}

pub(super) fn phrases(list: Option<&str>) -> Result<Vec<String>, ApiError> {
    let Some(list) = list.filter(|l| !l.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in list.split(',') {
        let term = item.split('|').next().unwrap_or("").trim();
        if term.is_empty() || term.chars().count() > 30 {
            return Err(invalid(format!(
                "HotWordList: each term is 1 to 30 characters; got {term:?}."
            )));
        }
        out.push(term.to_owned());
    }
    if out.len() > 300 {
        return Err(invalid("HotWordList holds 300 terms at most."));
    }
    Ok(out)
}

pub async fn start_ai_transcription(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: StartParams = decode(params)?;
    let app = SdkAppId(p.sdk_app_id);
    check_ai_app(ctx, app)?;
    let room = room_of(&p.room_id, p.room_id_type)?;
    let t = p
        .params
        .ok_or_else(|| ApiError::MissingParameter("TranscriptionParams".into()))?;
    if t.user_id.trim().is_empty() {
        return Err(invalid("TranscriptionParams.UserId is required."));
    }
    if t.voice_print.is_some() || t.turn_detection.is_some() || p.translation.is_some() {
        return Err(ApiError::NotAbility(
            "VoicePrint, TurnDetection and TranslationConfig are not available on this server."
                .into(),
        ));
    }
    check_usersig(ctx, app, &t.user_id, &t.user_sig)?;
    let target = match ranged(t.mode, "TranscriptionMode", 0, 1, 0)? {
        0 => None,
        _ => Some(
            t.target_user_id
                .filter(|u| !u.trim().is_empty())
                .ok_or_else(|| invalid("TranscriptionMode 1 needs TargetUserId."))?,
        ),
    };
    if target.as_deref() == Some(t.user_id.as_str()) {
        return Err(invalid("TargetUserId is the robot itself."));
    }
    let max_idle = ranged(t.max_idle_time, "MaxIdleTime", 5, 86_400, 60)?;
    let rc = p.recognize.unwrap_or_default();
    let language = language_of(rc.language, &rc.alternative)?;
    let vad_silence_ms = ranged(rc.vad_silence_time, "VadSilenceTime", 240, 2000, 1000)? as u32;
    let vad_level = ranged(rc.vad_level, "VadLevel", 0, 3, 0)? as u8;
    let session_id = p.session_id.filter(|s| !s.is_empty());
    let req = TranscriptionStart {
        app,
        room,
        user_id: t.user_id,
        user_sig: t.user_sig,
        session_id,
        job: Transcription {
            target,
            language,
            vad_silence_ms,
            vad_level,
            phrases: phrases(rc.hot_words.as_deref())?,
            max_idle_secs: max_idle as u64,
            stt_python: String::new(),
            engine: None,
            endpoint: None,
            outbound_allow: Vec::new(),
        },
    };
    let task_id = ctx
        .state
        .media
        .start_transcription(req)
        .await
        .map_err(start_error)?;
    fields(&TaskOut { task_id })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DescribeParams {
    #[serde(rename = "TaskId", default)]
    task_id: Option<String>,
    #[serde(rename = "SdkAppId", default, deserialize_with = "int::opt")]
    sdk_app_id: Option<u32>,
    #[serde(rename = "SessionId", default)]
    session_id: Option<String>,
}

#[derive(Serialize)]
struct DescribeOut {
    #[serde(rename = "StartTime")]
    start_time: String,
    #[serde(rename = "Status")]
    status: &'static str,
    #[serde(rename = "TaskId")]
    task_id: String,
    #[serde(rename = "SessionId", skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
}

fn task_not_exist(e: TaskError) -> ApiError {
    match e {
        TaskError::NotFound | TaskError::Finished => ApiError::TaskNotExist,
        other => other.into(),
    }
}

/// DescribeAITranscription and DescribeAIConversation.
pub async fn describe_ai(
    ctx: &Ctx,
    kind: AiKind,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: DescribeParams = decode(params)?;
    let r = match (
        p.task_id.filter(|t| !t.is_empty()),
        p.sdk_app_id,
        p.session_id,
    ) {
        (Some(t), _, _) => AiTaskRef::Task(t),
        (None, Some(app), Some(s)) if !s.is_empty() => {
            let app = SdkAppId(app);
            check_ai_app(ctx, app)?;
            AiTaskRef::Session(app, s)
        }
        _ => {
            return Err(ApiError::InvalidParameterOf {
                detail: "TaskId",
                message: "Give TaskId, or an empty TaskId with SdkAppId and SessionId.".into(),
            })
        }
    };
    let info = ctx
        .state
        .media
        .describe_ai(kind, ctx.caller.apps.clone(), r)
        .await
        .map_err(task_not_exist)?;
    fields(&DescribeOut {
        start_time: super::usage::time_key(info.started.0),
        status: info.status,
        task_id: info.task_id,
        session_id: info.session_id,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StopParams {
    #[serde(rename = "TaskId", default)]
    task_id: String,
}

/// StopAITranscription and StopAIConversation.
pub async fn stop_ai(
    ctx: &Ctx,
    kind: AiKind,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: StopParams = decode(params)?;
    if p.task_id.trim().is_empty() {
        return Err(ApiError::InvalidParameterOf {
            detail: "TaskId",
            message: "TaskId is required.".into(),
        });
    }
    ctx.state
        .media
        .stop_ai(kind, ctx.caller.apps.clone(), p.task_id)
        .await
        .map_err(task_not_exist)?;
    Ok(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_words_become_phrases() {
        assert_eq!(
            phrases(Some("turn on the lights|10, hello world|11")).unwrap(),
            ["turn on the lights", "hello world"]
        );
        assert!(phrases(None).unwrap().is_empty());
        assert!(phrases(Some("a,,b")).is_err());
        assert!(room_of("12", None).is_ok());
        assert!(room_of("abc", Some(0)).is_err());
        assert_eq!(
            room_of("abc", Some(1)).unwrap(),
            RoomKey::string("abc").unwrap()
        );
    }
}
