//! The network loop's part of `/api/status`, typed: built in one place
//! ([`RtcServer::status`](super::server)), serialized for `/api/status`,
//! read field by field by `/metrics` and the broker's presence message.
//! The keys are the field names; `crate::status::Status` adds the HTTPS and
//! broker parts.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Serialize;
use serde_json::Value;

use super::hub::{OperatorCameraStatus, PeerStatus};
use super::layers::ViewerLayer;
use crate::drive::{LinkState, Motors};
use crate::media::audio::AudioStatus;
use crate::media::display::DisplayStatus;
use crate::media::layer::LayerCounts;
use crate::media::pipeline::PipelineCounters;
use crate::media::record::RecordingStatus;
use crate::peer::{PeerId, Role};
use crate::rtc::publish::publisher::PublishStatus;

#[derive(Debug, Clone, Default, Serialize)]
pub struct LoopStatus {
    pub uptime_s: f64,
    pub operator: Option<PeerId>,
    pub motors: Motors,
    /// Each servo's position by name.
    pub servos: BTreeMap<String, f32>,
    pub drive_backend: &'static str,
    /// `None` for backends without a link that can fail (sim, gpio).
    pub drive_link: Option<LinkState>,
    /// All refused messages; `rejections` splits them by reason.
    pub rejected_messages: u64,
    pub messages_received: u64,
    /// Refused data-channel messages by reason (the session's names).
    pub rejections: BTreeMap<String, u64>,
    pub deadman_trips: u64,
    /// What the robot's programs published (their own JSON).
    pub readings: BTreeMap<String, Value>,
    /// The local API's clients (its own JSON, which its tests read).
    pub api: Option<Value>,
    pub peers: Vec<Peer>,
    pub ice: Ice,
    /// The first camera, as before there were several.
    pub video: Option<Camera>,
    pub cameras: Vec<Camera>,
    pub operator_camera: OperatorCameraStatus,
    pub audio: AudioStatus,
    pub recording: RecordingStatus,
    pub display: Option<DisplayStatus>,
    pub publish: Vec<PublishStatus>,
}

/// Counts by name from a struct of counters (the session's rejections),
/// the names as its fields spell them.
pub fn counts_by_name(counters: &impl Serialize) -> BTreeMap<String, u64> {
    match serde_json::to_value(counters) {
        Ok(Value::Object(map)) => (map.into_iter())
            .map(|(name, n)| (name, n.as_u64().unwrap_or(0)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// One peer: its transport (from the hub) with its role (from the session).
#[derive(Debug, Clone, Serialize)]
pub struct Peer {
    #[serde(flatten)]
    pub link: PeerStatus,
    /// `None` until its data channel joins the session.
    pub role: Option<Role>,
    /// Per camera: the layer it gets (`None` while it doesn't watch it).
    pub layers: Vec<Option<ViewerLayer>>,
}

#[cfg(test)]
impl Peer {
    /// A peer for tests of what renders the status: no estimate, RTT or frames yet.
    pub fn fixture(id: u64, state: &'static str, role: Option<Role>) -> Peer {
        Peer {
            link: PeerStatus {
                id: PeerId(id),
                state,
                remote: None,
                bitrate_estimate: None,
                rtt_ms: None,
                frames_sent: 0,
                frames_skipped: 0,
                receiving: vec![],
            },
            role,
            layers: vec![],
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Ice {
    pub public_addr: Option<SocketAddr>,
    pub stun_mapped: Option<SocketAddr>,
}

/// One camera: what it captures, how it encodes, its counters, and how many
/// of its frames went to peers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Camera {
    pub name: String,
    pub source: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub encoder: &'static str,
    /// The main encoder's target.
    pub bitrate: Option<u32>,
    pub layers: Layers,
    pub frames_sent_to_peers: u64,
    pub frames_skipped_for_peers: u64,
    #[serde(flatten)]
    pub counters: PipelineCounters,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Layers {
    pub main: LayerStatus,
    /// Only with `layers = "auto"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<LayerStatus>,
}

/// Per layer: its size, target bitrate and what it encoded since start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LayerStatus {
    pub width: u32,
    pub height: u32,
    pub bitrate: Option<u32>,
    /// Viewers on (or moving to) the low layer; the main layer has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewers: Option<usize>,
    #[serde(flatten)]
    pub counts: LayerCounts,
}
