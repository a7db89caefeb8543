//! The custom messages AI bots send to the room (CmdId 1), in TRTC's formats: subtitles
//! (`type` 10000) and a conversation bot's state (`type` 10001: 1 listening, 2 thinking,
//! 3 speaking, 4 interrupted), the app's data of a round (`type` 10002: the LLM's `metainfo` or
//! ServerPushText's MetaInfo); and the one a client sends a conversation bot (CmdId 2, `type`
//! 20001: stop talking, for InterruptMode 1).

/// The command id of the bots' messages.
pub const CMD: u8 = 1;
/// The command id of a client's interrupt signal.
pub const INTERRUPT_CMD: u8 = 2;
/// A custom message holds 1 KB at most.
const MAX_MESSAGE: usize = 1024;

/// A conversation bot's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotState {
    Listening = 1,
    Thinking = 2,
    Speaking = 3,
    Interrupted = 4,
}

fn hms(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// One subtitle: what `sender` said (or is saying, `end` false) from `start` to `end_secs`
/// seconds of the task; the text is cut to fit 1 KB.
pub fn subtitle(
    sender: &str,
    text: &str,
    (start, end_secs): (f64, f64),
    round: &str,
    end: bool,
    language: &str,
) -> Vec<u8> {
    let mut text = text.to_owned();
    loop {
        let msg = serde_json::json!({
            "type": 10000,
            "sender": sender,
            "receiver": [],
            "payload": {
                "text": text,
                "start_time": hms(start),
                "end_time": hms(end_secs),
                "roundid": round,
                "end": end,
                "language": language,
            },
        })
        .to_string()
        .into_bytes();
        if msg.len() <= MAX_MESSAGE || text.is_empty() {
            return msg;
        }
        let mut at = text.len() - (msg.len() - MAX_MESSAGE).min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
}

/// The bot's state in round `round`; `error` says what went wrong (an LLM that failed).
pub fn bot_state(bot: &str, round: &str, state: BotState, error: Option<&str>) -> Vec<u8> {
    let mut payload = serde_json::json!({
        "roundid": round,
        "timestamp": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        "state": state as u8,
    });
    if let Some(e) = error {
        payload["error"] = serde_json::Value::String(e.chars().take(300).collect());
    }
    serde_json::json!({"type": 10001, "sender": bot, "receiver": [], "payload": payload})
        .to_string()
        .into_bytes()
}

/// The app's data of round `round` (TRTC's `type` 10002); `None` if it does not fit 1 KB.
pub fn meta_info(bot: &str, round: &str, payload: &serde_json::Value) -> Option<Vec<u8>> {
    let msg = serde_json::json!({
        "type": 10002, "sender": bot, "receiver": [], "roundid": round, "payload": payload,
    })
    .to_string()
    .into_bytes();
    (msg.len() <= MAX_MESSAGE).then_some(msg)
}

/// Whether a client's custom message tells `bot` to stop talking: `type` 20001 with `bot` among
/// its receivers (or no receivers).
pub fn is_interrupt(bot: &str, cmd_id: u8, data: &[u8]) -> bool {
    if cmd_id != INTERRUPT_CMD {
        return false;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return false;
    };
    let to_bot = match v.get("receiver").and_then(|r| r.as_array()) {
        None => true,
        Some(r) => r.is_empty() || r.iter().any(|u| u.as_str() == Some(bot)),
    };
    v.get("type").and_then(serde_json::Value::as_u64) == Some(20001) && to_bot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_trtc_shapes_within_1_kb() {
        let m: serde_json::Value = serde_json::from_slice(&subtitle(
            "alice",
            "turn on the kitchen lights",
            (3600.0, 3602.1),
            "t-alice-1",
            true,
            "en",
        ))
        .unwrap();
        assert_eq!(m["type"], 10000);
        assert_eq!(m["sender"], "alice");
        assert_eq!(m["payload"]["start_time"], "01:00:00");
        assert_eq!(m["payload"]["end_time"], "01:00:02");
        assert_eq!(m["payload"]["end"], true);
        let long = subtitle("a", &"é".repeat(2000), (0.0, 0.0), "r", false, "en");
        assert!(long.len() <= MAX_MESSAGE);
        assert!(serde_json::from_slice::<serde_json::Value>(&long).is_ok());
        let s: serde_json::Value =
            serde_json::from_slice(&bot_state("bot", "r1", BotState::Thinking, Some("x"))).unwrap();
        assert_eq!(
            (s["type"].as_u64(), s["payload"]["state"].as_u64()),
            (Some(10001), Some(2))
        );
        assert_eq!(s["payload"]["error"], "x");
    }

    #[test]
    fn interrupt_signals_name_the_bot_or_nobody() {
        let m = |r: &str| {
            format!(
                r#"{{"type":20001,"sender":"u","receiver":{r},"payload":{{"id":"1","timestamp":1}}}}"#
            )
        };
        assert!(is_interrupt("bot", 2, m(r#"["bot"]"#).as_bytes()));
        assert!(is_interrupt("bot", 2, m("[]").as_bytes()));
        assert!(!is_interrupt("bot", 2, m(r#"["other"]"#).as_bytes()));
        assert!(!is_interrupt("bot", 1, m(r#"["bot"]"#).as_bytes()));
        assert!(!is_interrupt("bot", 2, br#"{"type":10000}"#));
        assert!(!is_interrupt("bot", 2, b"not json"));
    }
}
