//! StartAIConversation (spec §2.3.18): a voice robot that listens to TargetUserId, asks an
//! OpenAI-compatible LLM (LLMConfig) and speaks the answer with the server's espeak-ng voice
//! (TTSConfig omitted, or `TTSType` `espeak`); the user's speech interrupts it (InterruptMode 0),
//! or the user's client does (InterruptMode 1: a custom message, `docs/ai-bots.md`).
//! UpdateAIConversation changes its settings live; ControlAIConversation makes it say a text
//! (ServerPushText) or ask the LLM (InvokeLLM). Describe and Stop are shared with transcription
//! (`ai`).

use super::ai::{check_ai_app, language_of, phrases, room_of, start_error};
use super::record::{check_usersig, ranged};
use super::{fields, Ctx};
use crate::error::ApiError;
use crate::media::{AiKind, ConversationStart, TaskError};
use crate::params::{decode, int};
use hearth_media_proto::{
    Command, Conversation, Endpoint, Llm, SttEngine, Transcription, Tts, TtsEngine,
};
use hearth_types::SdkAppId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Deserialize)]
struct AgentConfig {
    #[serde(rename = "UserId", default)]
    user_id: String,
    #[serde(rename = "UserSig", default)]
    user_sig: String,
    #[serde(rename = "TargetUserId", default)]
    target_user_id: String,
    #[serde(rename = "MaxIdleTime", default, deserialize_with = "int::opt")]
    max_idle_time: Option<i64>,
    #[serde(rename = "WelcomeMessage", default)]
    welcome: Option<String>,
    #[serde(rename = "InterruptMode", default, deserialize_with = "int::opt")]
    interrupt_mode: Option<i64>,
    #[serde(
        rename = "InterruptSpeechDuration",
        default,
        deserialize_with = "int::opt"
    )]
    interrupt_speech_ms: Option<i64>,
    /// SDK-only members this server does not do.
    #[serde(flatten)]
    other: Map<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SttConfig {
    #[serde(rename = "Language", default)]
    language: Option<String>,
    #[serde(rename = "AlternativeLanguage", default)]
    alternative: Vec<String>,
    #[serde(rename = "VadSilenceTime", default, deserialize_with = "int::opt")]
    vad_silence_time: Option<i64>,
    #[serde(rename = "VadLevel", default, deserialize_with = "int::opt")]
    vad_level: Option<i64>,
    /// Hearth reads `{"HotWordList": "term|weight,…"}` here (RecognizeConfig's syntax).
    #[serde(rename = "CustomParam", default)]
    custom: Option<String>,
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
    #[serde(rename = "AgentConfig")]
    agent: Option<AgentConfig>,
    #[serde(rename = "SessionId", default)]
    session_id: Option<String>,
    #[serde(rename = "STTConfig", default)]
    stt: Option<SttConfig>,
    #[serde(rename = "LLMConfig", default)]
    llm: Option<String>,
    #[serde(rename = "TTSConfig", default)]
    tts: Option<String>,
    #[serde(rename = "ExperimentalParams", default)]
    experimental: Option<String>,
}

#[derive(Serialize)]
struct TaskOut {
    #[serde(rename = "TaskId")]
    task_id: String,
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::InvalidParameter(m.into())
}

/// LLMConfig: the OpenAI chat-completions endpoint.
fn llm_of(raw: Option<&str>) -> Result<Llm, ApiError> {
    let raw = raw
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| invalid("LLMConfig is required: the robot needs an LLM to answer."))?;
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| invalid(format!("LLMConfig is not a JSON object: {e}.")))?;
    let Value::Object(o) = v else {
        return Err(invalid("LLMConfig is not a JSON object."));
    };
    let text = |k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("")
    };
    let kind = text("LLMType");
    if !kind.eq_ignore_ascii_case("openai") {
        return Err(ApiError::NotAbility(format!(
            "LLMType {kind:?}: this server speaks the OpenAI chat-completions protocol (LLMType openai)."
        )));
    }
    for k in ["Model", "APIKey", "APIUrl"] {
        if text(k).is_empty() {
            return Err(invalid(format!("LLMConfig.{k} is required.")));
        }
    }
    let int = |k: &str, lo: i64, hi: i64, default: i64| -> Result<i64, ApiError> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_i64()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| invalid(format!("LLMConfig.{k} must be {lo} to {hi}."))),
        }
    };
    Ok(Llm {
        url: text("APIUrl").to_owned(),
        key: text("APIKey").to_owned(),
        model: text("Model").to_owned(),
        streaming: o.get("Streaming").and_then(Value::as_bool).unwrap_or(true),
        history: int("History", 0, 50, 0)? as u32,
        history_mode: int("HistoryMode", 0, 1, 0)? as u8,
        outbound_allow: Vec::new(),
    })
}

/// The voices of the flite Debian ships.
const FLITE_VOICES: [&str; 6] = ["slt", "kal", "kal16", "awb", "rms", "awb_time"];

/// TTSConfig: the engine on the server (`TTSType` `espeak`, the default; `flite`; `piper`) or an
/// OpenAI-compatible speech endpoint (`openai`: `APIUrl`, `APIKey`, `Model`, `VoiceId`). Both
/// of the spec's shapes are read; the vendors they name (Tencent Cloud TTS, TRTC's `flow`)
/// cannot be reached from a self-hosted server.
fn tts_of(raw: Option<&str>) -> Result<Tts, ApiError> {
    let mut tts = Tts {
        engine: TtsEngine::Espeak,
        voice: "en-us".into(),
        speed: 1.0,
        endpoint: None,
    };
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(tts);
    };
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| invalid(format!("TTSConfig is not a JSON object: {e}.")))?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::trim);
    let kind = text("TTSType").unwrap_or("");
    let voice = text("VoiceId");
    tts.engine = match kind.to_ascii_lowercase().as_str() {
        "espeak" => TtsEngine::Espeak,
        "flite" => TtsEngine::Flite,
        "piper" => TtsEngine::Piper,
        "openai" => TtsEngine::Openai,
        _ => {
            return Err(ApiError::NotAbility(format!(
                "TTSType {kind:?} names a service this server cannot reach; use espeak, flite, piper or openai (an OpenAI-compatible speech endpoint), or omit TTSConfig."
            )))
        }
    };
    match tts.engine {
        TtsEngine::Espeak => {
            if let Some(voice) = voice {
                if voice.is_empty()
                    || voice.len() > 32
                    || !voice
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_+".contains(c))
                {
                    return Err(invalid(format!(
                        "TTSConfig.VoiceId {voice:?} is not an espeak-ng voice."
                    )));
                }
                tts.voice = voice.to_owned();
            }
        }
        TtsEngine::Flite => {
            let voice = voice.unwrap_or("slt");
            if !FLITE_VOICES.contains(&voice) {
                return Err(invalid(format!(
                    "TTSConfig.VoiceId {voice:?} is not a flite voice ({}).",
                    FLITE_VOICES.join(", ")
                )));
            }
            tts.voice = voice.to_owned();
        }
        TtsEngine::Piper => {
            if voice.is_some_and(|v| v != PIPER_VOICE) {
                return Err(ApiError::NotAbility(format!(
                    "TTSConfig.VoiceId: this server's piper voice is {PIPER_VOICE}."
                )));
            }
            tts.voice = PIPER_VOICE.into();
        }
        TtsEngine::Openai => {
            tts.endpoint = Some(endpoint_of(&v, "TTSConfig", "TTSType", "tts-1")?);
            let voice = voice.unwrap_or("alloy");
            if voice.is_empty() || voice.len() > 64 {
                return Err(invalid("TTSConfig.VoiceId is 1 to 64 characters."));
            }
            tts.voice = voice.to_owned();
        }
    }
    if let Some(speed) = v.get("Speed").and_then(Value::as_f64) {
        if !(0.5..=2.0).contains(&speed) {
            return Err(invalid("TTSConfig.Speed must be 0.5 to 2.0."));
        }
        tts.speed = speed as f32;
    }
    Ok(tts)
}

/// The piper voice `scripts/setup.sh --piper` installs.
const PIPER_VOICE: &str = "en_US-joe-medium";

/// What STTConfig.CustomParam may hold: `HotWordList` (RecognizeConfig's syntax) and the engine,
/// `STTType` `pocketsphinx`, `whisper` or `openai` (with `APIUrl`, `APIKey`, `Model`).
struct SttCustom {
    hot_words: Option<String>,
    engine: Option<SttEngine>,
    endpoint: Option<Endpoint>,
}

fn stt_custom(raw: Option<&str>) -> Result<SttCustom, ApiError> {
    let mut out = SttCustom {
        hot_words: None,
        engine: None,
        endpoint: None,
    };
    let Some(raw) = raw.filter(|c| !c.trim().is_empty()) else {
        return Ok(out);
    };
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| invalid(format!("STTConfig.CustomParam is not JSON: {e}.")))?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::trim);
    out.hot_words = text("HotWordList").map(str::to_owned);
    out.engine = match text("STTType").map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("pocketsphinx") => Some(SttEngine::Pocketsphinx),
        Some("whisper") => Some(SttEngine::Whisper),
        Some("openai") => Some(SttEngine::Openai),
        Some(other) => {
            return Err(ApiError::NotAbility(format!(
                "STTType {other:?}: this server's engines are pocketsphinx, whisper and openai (an OpenAI-compatible transcription endpoint)."
            )))
        }
    };
    if out.engine == Some(SttEngine::Openai) {
        out.endpoint = Some(endpoint_of(
            &v,
            "STTConfig.CustomParam",
            "STTType",
            "whisper-1",
        )?);
    }
    Ok(out)
}

/// An OpenAI-compatible endpoint named in a config object (`at`, of type `kind` openai):
/// `APIUrl` and `APIKey` required, `Model` defaulting to `model`.
fn endpoint_of(v: &Value, at: &str, kind: &str, model: &str) -> Result<Endpoint, ApiError> {
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("")
    };
    for k in ["APIUrl", "APIKey"] {
        if text(k).is_empty() {
            return Err(invalid(format!("{at}.{k} is required for {kind} openai.")));
        }
    }
    Ok(Endpoint {
        url: text("APIUrl").to_owned(),
        key: text("APIKey").to_owned(),
        model: Some(text("Model"))
            .filter(|m| !m.is_empty())
            .unwrap_or(model)
            .to_owned(),
    })
}

/// InterruptMode (0 the server's voice detection, 1 the client's signal) and
/// InterruptSpeechDuration (ms), each checked where given.
fn interrupt_of(
    mode: Option<i64>,
    speech_ms: Option<i64>,
) -> Result<(Option<u8>, Option<u32>), ApiError> {
    let mode = mode
        .map(|m| ranged(Some(m), "InterruptMode", 0, 1, 0))
        .transpose()?;
    let ms = speech_ms
        .map(|ms| ranged(Some(ms), "InterruptSpeechDuration", 100, 10_000, 500))
        .transpose()?;
    Ok((mode.map(|m| m as u8), ms.map(|ms| ms as u32)))
}

pub async fn start_ai_conversation(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: StartParams = decode(params)?;
    let app = SdkAppId(p.sdk_app_id);
    check_ai_app(ctx, app)?;
    let room = room_of(&p.room_id, p.room_id_type)?;
    let a = p
        .agent
        .ok_or_else(|| ApiError::MissingParameter("AgentConfig".into()))?;
    if a.user_id.trim().is_empty() || a.target_user_id.trim().is_empty() {
        return Err(invalid(
            "AgentConfig.UserId and AgentConfig.TargetUserId are required.",
        ));
    }
    if a.user_id == a.target_user_id {
        return Err(invalid("TargetUserId is the robot itself."));
    }
    if let Some(k) = a.other.keys().next() {
        return Err(ApiError::NotAbility(format!(
            "AgentConfig.{k} is not available on this server."
        )));
    }
    if p.experimental.is_some() {
        return Err(ApiError::NotAbility(
            "ExperimentalParams is not available on this server.".into(),
        ));
    }
    check_usersig(ctx, app, &a.user_id, &a.user_sig)?;
    let (interrupt_mode, interrupt_speech_ms) =
        interrupt_of(a.interrupt_mode, a.interrupt_speech_ms)?;
    let (interrupt_mode, interrupt_speech_ms) = (
        interrupt_mode.unwrap_or(0),
        interrupt_speech_ms.unwrap_or(500),
    );
    let max_idle = ranged(a.max_idle_time, "MaxIdleTime", 5, 86_400, 60)? as u64;
    let stt = p.stt.unwrap_or_default();
    let language = language_of(stt.language, &stt.alternative)?;
    let custom = stt_custom(stt.custom.as_deref())?;
    let job = Conversation {
        target: a.target_user_id,
        welcome: a.welcome.filter(|w| !w.trim().is_empty()),
        interrupt_mode,
        interrupt_speech_ms,
        stt: Transcription {
            target: None,
            language,
            vad_silence_ms: ranged(stt.vad_silence_time, "VadSilenceTime", 240, 2000, 1000)? as u32,
            vad_level: ranged(stt.vad_level, "VadLevel", 0, 3, 0)? as u8,
            phrases: phrases(custom.hot_words.as_deref())?,
            max_idle_secs: max_idle,
            stt_python: String::new(),
            engine: custom.engine,
            endpoint: custom.endpoint,
            outbound_allow: Vec::new(),
        },
        llm: llm_of(p.llm.as_deref())?,
        tts: tts_of(p.tts.as_deref())?,
    };
    let req = ConversationStart {
        app,
        room,
        user_id: a.user_id,
        user_sig: a.user_sig,
        session_id: p.session_id.filter(|s| !s.is_empty()),
        job,
    };
    let task_id = ctx
        .state
        .media
        .start_conversation(req)
        .await
        .map_err(start_error)?;
    fields(&TaskOut { task_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llm_and_tts_configs() {
        let l = llm_of(Some(
            r#"{"LLMType":"openai","Model":"m","APIKey":"k","APIUrl":"http://x/v1/chat/completions","History":5,"HistoryMode":1}"#,
        ))
        .unwrap();
        assert_eq!((l.history, l.history_mode, l.streaming), (5, 1, true));
        assert!(matches!(
            llm_of(Some("{broken")),
            Err(ApiError::InvalidParameter(_))
        ));
        assert!(matches!(
            llm_of(Some(
                r#"{"LLMType":"minimax","Model":"m","APIKey":"k","APIUrl":"u"}"#
            )),
            Err(ApiError::NotAbility(_))
        ));
        assert!(llm_of(Some(r#"{"LLMType":"openai","Model":"m","APIKey":"k"}"#)).is_err());
        assert_eq!(tts_of(None).unwrap().voice, "en-us");
        assert_eq!(
            tts_of(Some(r#"{"TTSType":"espeak","Speed":1.5}"#))
                .unwrap()
                .speed,
            1.5
        );
        let f = tts_of(Some(r#"{"TTSType":"flite","VoiceId":"kal"}"#)).unwrap();
        assert_eq!((f.engine, f.voice.as_str()), (TtsEngine::Flite, "kal"));
        assert!(tts_of(Some(r#"{"TTSType":"flite","VoiceId":"nope"}"#)).is_err());
        let o = tts_of(Some(
            r#"{"TTSType":"openai","APIUrl":"http://x/v1/audio/speech","APIKey":"k","VoiceId":"nova"}"#,
        ))
        .unwrap();
        assert_eq!(
            (o.voice.as_str(), o.endpoint.unwrap().model.as_str()),
            ("nova", "tts-1")
        );
        assert!(matches!(
            tts_of(Some(r#"{"TTSType":"openai","APIKey":"k"}"#)),
            Err(ApiError::InvalidParameter(_))
        ));
        assert_eq!(
            tts_of(Some(r#"{"TTSType":"piper"}"#)).unwrap().engine,
            TtsEngine::Piper
        );
        assert!(matches!(
            tts_of(Some(r#"{"TTSType":"tencent","AppId":1,"VoiceType":1008}"#)),
            Err(ApiError::NotAbility(_))
        ));
        assert!(matches!(
            tts_of(Some(
                r#"{"TTSType":"flow","VoiceId":"v","Model":"flow_01_turbo"}"#
            )),
            Err(ApiError::NotAbility(_))
        ));
        assert!(tts_of(Some(r#"{"TTSType":"espeak","VoiceId":"x; rm"}"#)).is_err());
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateParams {
    #[serde(rename = "TaskId", default)]
    task_id: String,
    #[serde(rename = "WelcomeMessage", default)]
    welcome: Option<String>,
    #[serde(rename = "InterruptMode", default, deserialize_with = "int::opt")]
    interrupt_mode: Option<i64>,
    #[serde(
        rename = "InterruptSpeechDuration",
        default,
        deserialize_with = "int::opt"
    )]
    interrupt_speech_ms: Option<i64>,
    #[serde(rename = "LLMConfig", default)]
    llm: Option<String>,
    #[serde(rename = "TTSConfig", default)]
    tts: Option<String>,
}

fn task_id_of(id: &str) -> Result<String, ApiError> {
    if id.trim().is_empty() {
        return Err(ApiError::InvalidParameterOf {
            detail: "TaskId",
            message: "TaskId is required.".into(),
        });
    }
    Ok(id.to_owned())
}

async fn command(ctx: &Ctx, id: String, c: Command) -> Result<Map<String, Value>, ApiError> {
    ctx.state
        .media
        .command_ai(AiKind::Conversation, ctx.caller.apps.clone(), id, c)
        .await
        .map_err(|e| match e {
            TaskError::NotFound | TaskError::Finished => ApiError::TaskNotExist,
            other => other.into(),
        })?;
    Ok(Map::new())
}

/// UpdateAIConversation: each given setting applies from its next use (the next sentence's
/// voice, the next LLM request, the next interruption check). A new WelcomeMessage has no use
/// once the robot has greeted.
pub async fn update_ai_conversation(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: UpdateParams = decode(params)?;
    let id = task_id_of(&p.task_id)?;
    let (interrupt_mode, interrupt_speech_ms) =
        interrupt_of(p.interrupt_mode, p.interrupt_speech_ms)?;
    let c = Command::UpdateConversation {
        welcome: p.welcome,
        interrupt_mode,
        interrupt_speech_ms,
        llm: p
            .llm
            .filter(|l| !l.trim().is_empty())
            .map(|l| llm_of(Some(&l)))
            .transpose()?,
        tts: p
            .tts
            .filter(|t| !t.trim().is_empty())
            .map(|t| tts_of(Some(&t)))
            .transpose()?,
    };
    command(ctx, id, c).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PushText {
    #[serde(rename = "Text", default)]
    text: Option<String>,
    #[serde(rename = "Interrupt", default)]
    interrupt: Option<bool>,
    #[serde(rename = "StopAfterPlay", default)]
    stop_after_play: Option<bool>,
    #[serde(rename = "AddHistory", default)]
    add_history: Option<bool>,
    #[serde(rename = "DropMode", default, deserialize_with = "int::opt")]
    drop_mode: Option<i64>,
    #[serde(rename = "Priority", default, deserialize_with = "int::opt")]
    priority: Option<i64>,
    #[serde(rename = "Audio", default)]
    audio: Option<String>,
    #[serde(rename = "MetaInfo", default)]
    meta: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvokeLlm {
    #[serde(rename = "Content", default)]
    content: Option<String>,
    #[serde(rename = "Interrupt", default)]
    interrupt: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlParams {
    #[serde(rename = "TaskId", default)]
    task_id: String,
    #[serde(rename = "Command", default)]
    command: String,
    #[serde(rename = "ServerPushText", default)]
    push: Option<PushText>,
    #[serde(rename = "InvokeLLM", default)]
    invoke: Option<InvokeLlm>,
    #[serde(rename = "TransparentData", default)]
    transparent: Option<Value>,
}

/// The longest ServerPushText.Audio: 60 s of 16 kHz samples.
const MAX_PUSH_AUDIO: usize = 60 * 16_000 * 2;

/// ServerPushText.Audio: base64 of mono 16-bit PCM at 16 kHz, or of a mono 16-bit WAV file.
fn push_audio(b64: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine as _;
    let bad = |m: &str| invalid(format!("ServerPushText.Audio {m}."));
    if b64.len() > MAX_PUSH_AUDIO / 3 * 4 + 64 {
        return Err(bad("is longer than 60 s"));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| bad("is not base64"))?;
    if raw.len() < 320 || (!raw.starts_with(b"RIFF") && raw.len() % 2 == 1) {
        return Err(bad("holds no 16-bit samples"));
    }
    Ok(raw)
}

/// ControlAIConversation: ServerPushText (the robot says a text) and InvokeLLM (a round with a
/// text from the server, the request carrying `X-Invoke-LLM: 1`).
pub async fn control_ai_conversation(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: ControlParams = decode(params)?;
    let id = task_id_of(&p.task_id)?;
    if p.transparent.is_some() {
        return Err(ApiError::NotAbility(
            "TransparentData is not available on this server.".into(),
        ));
    }
    let c = match p.command.as_str() {
        "ServerPushText" => {
            let t = p
                .push
                .ok_or_else(|| invalid("Command ServerPushText needs ServerPushText."))?;
            let audio = t.audio.as_deref().map(push_audio).transpose()?;
            let meta = t
                .meta
                .as_deref()
                .filter(|m| !m.trim().is_empty())
                .map(|m| match serde_json::from_str::<Value>(m) {
                    Ok(v @ Value::Object(_)) if m.len() <= 800 => Ok(v),
                    _ => Err(invalid(
                        "ServerPushText.MetaInfo must be a JSON object of 800 bytes at most.",
                    )),
                })
                .transpose()?;
            let text = t.text.unwrap_or_default();
            if (audio.is_none() && text.trim().is_empty()) || text.chars().count() > 500 {
                return Err(invalid(
                    "ServerPushText.Text must be 1 to 500 characters (or give Audio).",
                ));
            }
            Command::PushText {
                text,
                interrupt: t.interrupt.unwrap_or(false),
                stop_after_play: t.stop_after_play.unwrap_or(false),
                add_history: t.add_history.unwrap_or(false),
                queue_if_busy: ranged(t.drop_mode, "DropMode", 0, 1, 0)? == 1,
                protected: ranged(t.priority, "Priority", 0, 1, 0)? == 1,
                audio,
                meta,
            }
        }
        "InvokeLLM" => {
            let i = p
                .invoke
                .ok_or_else(|| invalid("Command InvokeLLM needs InvokeLLM."))?;
            let content = i.content.unwrap_or_default();
            if content.trim().is_empty() {
                return Err(invalid("InvokeLLM.Content is required."));
            }
            Command::InvokeLlm {
                content,
                interrupt: i.interrupt.unwrap_or(false),
            }
        }
        other => {
            return Err(invalid(format!(
                "Command must be ServerPushText or InvokeLLM; got {other:?}."
            )))
        }
    };
    command(ctx, id, c).await
}
