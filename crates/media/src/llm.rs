//! The conversation's LLM: OpenAI's chat-completions protocol at the caller's URL (which must
//! pass the address rules), streamed (server-sent events, `choices[0].delta.content`) or not;
//! bounded in time and size; the key goes in `Authorization` and is never logged. Besides the
//! text, an answer may carry `metainfo` (TRTC's pass-through: a `{"type": "meta.info",
//! "metainfo": {…}}` event, or `choices[0].message.metainfo`), which goes to the room as is.

use hearth_media_proto::Llm;
use hearth_outbound::Rules;
use std::time::Duration;
use tokio::sync::mpsc;

/// A whole answer may take this long.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of an answer at most.
const MAX_BYTES: usize = 1 << 20;

/// A piece of the answer as it comes.
#[derive(Debug, PartialEq)]
pub enum Piece {
    Text(String),
    /// Data for the app, not to be spoken.
    Meta(serde_json::Value),
}

/// Asks the LLM; each piece of the answer goes to `tokens` as it comes. `invoke`: the request
/// came from ControlAIConversation's InvokeLLM (header `X-Invoke-LLM: 1`).
pub async fn ask(
    cfg: &Llm,
    rules: &Rules,
    messages: serde_json::Value,
    invoke: bool,
    tokens: mpsc::UnboundedSender<Piece>,
) -> Result<(), String> {
    let checked = rules
        .check(&cfg.url, &["http", "https"])
        .await
        .map_err(|e| format!("LLM APIUrl: {e}"))?;
    let client = checked.client(TIMEOUT);
    let body = serde_json::json!({
        "model": cfg.model,
        "messages": messages,
        "stream": cfg.streaming,
    });
    let mut req = client
        .post(&cfg.url)
        .header("Authorization", format!("Bearer {}", cfg.key))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if invoke {
        req = req.header("X-Invoke-LLM", "1");
    }
    let mut resp = req
        .send()
        .await
        .map_err(|e| format!("the LLM could not be reached: {}", e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!("the LLM answered HTTP {}", resp.status().as_u16()));
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut total = 0usize;
    let mut sse = SseLines::default();
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(format!("the LLM's answer broke off: {}", e.without_url())),
        };
        total += chunk.len();
        if total > MAX_BYTES {
            return Err("the LLM's answer is larger than 1 MiB".into());
        }
        if cfg.streaming {
            for piece in sse.feed(&chunk) {
                match piece {
                    Sse::Token(t) => {
                        let _ = tokens.send(Piece::Text(t));
                    }
                    Sse::Meta(m) => {
                        let _ = tokens.send(Piece::Meta(m));
                    }
                    Sse::Done => return Ok(()),
                }
            }
        } else {
            buf.extend_from_slice(&chunk);
        }
    }
    if !cfg.streaming {
        let v: serde_json::Value = serde_json::from_slice(&buf)
            .map_err(|e| format!("the LLM's answer is not JSON: {e}"))?;
        let message = &v["choices"][0]["message"];
        let text = message["content"]
            .as_str()
            .ok_or("the LLM's answer has no choices[0].message.content")?;
        if message["metainfo"].is_object() {
            let _ = tokens.send(Piece::Meta(message["metainfo"].clone()));
        }
        let _ = tokens.send(Piece::Text(text.to_owned()));
    }
    Ok(())
}

/// What a server-sent event brought.
#[derive(Debug, PartialEq, Eq)]
enum Sse {
    Token(String),
    Meta(serde_json::Value),
    Done,
}

/// Splits a stream of bytes into SSE `data:` lines, across reads.
#[derive(Default)]
struct SseLines {
    partial: Vec<u8>,
}

impl SseLines {
    fn feed(&mut self, bytes: &[u8]) -> Vec<Sse> {
        self.partial.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(nl) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            let Some(data) = line.strip_prefix("data:") else {
                continue; // comments, event names, blank separators
            };
            let data = data.trim();
            if data == "[DONE]" {
                out.push(Sse::Done);
                continue;
            }
            let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
                continue;
            };
            if v["type"] == "meta.info" && v["metainfo"].is_object() {
                out.push(Sse::Meta(v["metainfo"].clone()));
                continue;
            }
            if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                if !t.is_empty() {
                    out.push(Sse::Token(t.to_owned()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_lines_split_across_reads() {
        let mut s = SseLines::default();
        let a = s.feed(b": keep-alive\n\ndata: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: {\"choi");
        assert!(a.is_empty(), "{a:?}");
        let b = s.feed(b"ces\":[{\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\ndata: {\"type\":\"meta.info\",\"metainfo\":{\"mood\":\"sunny\"}}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\ndata: [DONE]\n\n");
        assert_eq!(
            b,
            [
                Sse::Token("Hel".into()),
                Sse::Meta(serde_json::json!({"mood": "sunny"})),
                Sse::Token("lo".into()),
                Sse::Done
            ]
        );
    }
}
