//! `/api/status`, typed: the network loop's part ([`LoopStatus`]) with the
//! HTTPS and broker parts the HTTP side adds. `/api/status` serializes it,
//! `/metrics` renders from its fields.

use serde::Serialize;

use crate::rtc::status::LoopStatus;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub robot: LoopStatus,
    /// `None` without HTTPS.
    pub https: Option<HttpsStatus>,
    /// `None` without `[broker]`.
    pub broker: Option<BrokerStatus>,
}

impl Status {
    /// The JSON document, keys in order as `/api/status` always had them.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("the status serializes")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpsStatus {
    pub listen: String,
    pub fingerprint_sha256: String,
    pub self_signed: bool,
}

/// The broker link's counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BrokerStatus {
    pub connected: bool,
    pub offers_answered: u64,
    pub requests_rejected: u64,
    pub reconnects: u64,
}
