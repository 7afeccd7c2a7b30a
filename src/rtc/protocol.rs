//! Data-channel messages: JSON text, one object per message, tagged by `type`.

use serde::{Deserialize, Serialize};

/// Largest data-channel message we parse; anything bigger is refused unread.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Browser → robot.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Inbound {
    Ping { t: serde_json::Number },
}

/// Robot → browser.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Outbound {
    Pong { t: serde_json::Number },
    Error { reason: String },
}

impl Outbound {
    pub fn error(reason: impl Into<String>) -> Outbound {
        Outbound::Error {
            reason: reason.into(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("outbound messages always serialize")
    }
}

/// Parses one message, turning every failure into the reason sent back to the peer.
pub fn parse(text: &str) -> Result<Inbound, String> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(format!(
            "message too large ({} bytes, limit {MAX_MESSAGE_BYTES})",
            text.len()
        ));
    }
    serde_json::from_str(text).map_err(|e| format!("bad message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_round_trips_its_number_unchanged() {
        let Inbound::Ping { t } = parse(r#"{"type":"ping","t":1234.5}"#).unwrap();
        assert_eq!(Outbound::Pong { t }.to_json(), r#"{"type":"pong","t":1234.5}"#);
    }

    #[test]
    fn unknown_type_and_garbage_are_errors() {
        assert!(parse(r#"{"type":"fly"}"#).unwrap_err().contains("unknown variant"));
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"type":"ping","t":"soon"}"#).is_err());
        let huge = format!(r#"{{"type":"ping","t":1,"pad":"{}"}}"#, "x".repeat(5000));
        assert!(parse(&huge).unwrap_err().contains("too large"));
    }
}
