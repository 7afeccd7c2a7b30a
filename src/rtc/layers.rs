//! Which encode each viewer of a camera gets: "simulcast inside the robot".
//! Per camera there is a main encode, which follows the fastest viewers (the
//! operator's link first), and at most one low layer (smaller, cheaper) for
//! viewers whose own link cannot carry the main one; the number of encodes
//! never grows with the number of viewers. A viewer moves between layers only
//! at a keyframe of the layer it moves to (which is asked for), and only after
//! its estimate has pointed the other way for a while, so it does not flap.
//!
//! Sans-IO like str0m: estimates and time go in ([`LayerPicker::update`]),
//! frames are admitted per viewer ([`LayerPicker::admit`]), encoder bitrates
//! and keyframe requests come out ([`LayerPicker::poll_output`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::PeerId;
use crate::media::bitrate::BitrateController;
pub use crate::media::layer::{Layer, Why};

/// Bounds of one encode's bitrate, bits per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub min: u32,
    pub max: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerConfig {
    pub main: Limits,
    /// `None`: one encode, following the slowest viewer (as before layers).
    pub low: Option<Limits>,
}

/// One viewer of the camera as the loop sees it now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewerLink {
    pub id: PeerId,
    /// The peer's latest bandwidth estimate, bits per second.
    pub estimate: Option<u64>,
    pub operator: bool,
}

/// What the camera's encoders must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerOutput {
    Bitrate(Layer, u32),
    /// Viewers wait for a keyframe of this layer to switch to it.
    Keyframe(Layer),
    /// What a viewer gets changed (for its page's HUD).
    Viewer(PeerId, ViewerLayer),
}

/// What `/api/status` and the HUD show of one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ViewerLayer {
    pub layer: Layer,
    /// The layer it is switching to, at that layer's next keyframe.
    pub switching_to: Option<Layer>,
    pub why: Why,
}

/// Estimates outside this range are nonsense (a broken or hostile receiver).
const SANE_ESTIMATE: std::ops::RangeInclusive<u64> = 10_000..=10_000_000_000;
/// A viewer moves up to the main layer once its usable estimate reaches
/// this share of the main bitrate, and back down only below the lower one:
/// estimates swing by a third under load even on a LAN (measured: a
/// loopback viewer's fell from 1.7 to 1.1 Mbit/s while the machine was busy).
const UP_TO_MAIN: f64 = 0.8;
const STAY_ON_MAIN: f64 = 0.5;
/// The share of its estimate a viewer's video may use (RTCP, RTX, audio, data).
const HEADROOM: f64 = 0.85;
/// How long the estimate must point to the other layer before moving down / up.
const DOWN_AFTER: Duration = Duration::from_millis(1000);
const UP_AFTER: Duration = Duration::from_millis(2000);
/// Shortest stay on a layer after a switch (or joining).
const MIN_DWELL: Duration = Duration::from_secs(2);
/// Keyframes asked for switches, per layer, at most once per this.
const SWITCH_KEYFRAME_GAP: Duration = Duration::from_secs(1);

struct Viewer {
    id: PeerId,
    /// The layer whose frames it gets.
    layer: Layer,
    /// The layer it should get; differs from `layer` until a keyframe of it.
    wanted: Layer,
    why: Why,
    /// Since when its estimate has pointed away from `wanted`.
    pointing_away_since: Option<Instant>,
    /// `None` until its first switch: a joiner whose link is slow moves down
    /// as soon as its estimate says so.
    last_switch: Option<Instant>,
    /// A nonsense estimate is logged once per viewer.
    warned: bool,
    /// What it was last told, so each change is told once.
    shown: Option<ViewerLayer>,
}

impl Viewer {
    fn shows(&self) -> ViewerLayer {
        ViewerLayer {
            layer: self.layer,
            switching_to: (self.wanted != self.layer).then_some(self.wanted),
            why: self.why,
        }
    }
}

pub struct LayerPicker {
    config: LayerConfig,
    viewers: Vec<Viewer>,
    main: BitrateController,
    low: Option<BitrateController>,
    last_switch_keyframe: [Option<Instant>; 2],
    outputs: VecDeque<LayerOutput>,
    /// The slowest SFU link the main encode is published on: a room's
    /// audience can't switch layers, so the main encode must fit it.
    main_cap: Option<u64>,
}

impl LayerPicker {
    pub fn new(config: LayerConfig) -> LayerPicker {
        LayerPicker {
            config,
            viewers: Vec::new(),
            main: BitrateController::new(config.main.min, config.main.max),
            low: (config.low).map(|low| BitrateController::new(low.min, low.max)),
            last_switch_keyframe: [None; 2],
            outputs: VecDeque::new(),
            main_cap: None,
        }
    }

    /// The estimate of the slowest link the main encode is published on
    /// (WHIP), if any; it caps the main bitrate from the next `update`.
    pub fn set_main_cap(&mut self, estimate: Option<u64>) {
        self.main_cap = estimate;
    }

    /// Feeds every current viewer of the camera (viewers missing from
    /// `links` are gone); decides layers, bitrates and keyframe requests.
    pub fn update(&mut self, now: Instant, links: &[ViewerLink]) {
        self.viewers
            .retain(|v| links.iter().any(|link| link.id == v.id));
        for link in links {
            if !self.viewers.iter().any(|v| v.id == link.id) {
                self.viewers.push(self.joining(link.id));
            }
        }
        let estimates: Vec<(ViewerLink, Option<u64>)> =
            links.iter().map(|link| (*link, self.sane(link))).collect();
        if self.low.is_none() {
            // One encode: it must fit the slowest link, as before layers.
            let lowest = estimates.iter().filter_map(|(_, e)| *e).min();
            self.set_bitrate(now, Layer::Main, capped(lowest, self.main_cap));
            self.tell_changes();
            return;
        }
        self.set_bitrate(
            now,
            Layer::Main,
            capped(
                leading_estimate(&estimates, self.config.main.min),
                self.main_cap,
            ),
        );
        let main_bitrate = f64::from(self.main.current());
        for (link, estimate) in &estimates {
            let viewer = (self.viewers.iter_mut())
                .find(|v| v.id == link.id)
                .expect("every link has a viewer");
            let Some(estimate) = *estimate else {
                if viewer.why != Why::Starting {
                    viewer.why = Why::NoEstimate;
                }
                viewer.pointing_away_since = None;
                continue;
            };
            let usable = estimate as f64 * HEADROOM;
            let stay = if viewer.wanted == Layer::Main {
                STAY_ON_MAIN
            } else {
                UP_TO_MAIN
            };
            let fits_main = usable >= main_bitrate * stay;
            let (desired, why) = if fits_main {
                (Layer::Main, Why::FastLink)
            } else {
                (Layer::Low, Why::SlowLink)
            };
            if desired == viewer.wanted {
                viewer.pointing_away_since = None;
                if viewer.layer == viewer.wanted {
                    viewer.why = why;
                }
                continue;
            }
            let since = *viewer.pointing_away_since.get_or_insert(now);
            let hold = if desired == Layer::Low {
                DOWN_AFTER
            } else {
                UP_AFTER
            };
            let dwelt = viewer.last_switch.is_none_or(|t| now >= t + MIN_DWELL);
            if now >= since + hold && dwelt {
                tracing::info!(peer = %viewer.id, estimate, ?desired, "viewer changes layer at the next keyframe");
                viewer.wanted = desired;
                viewer.why = why;
                viewer.last_switch = Some(now);
                viewer.pointing_away_since = None;
            }
        }
        let low_estimate = (estimates.iter())
            .filter(|(link, _)| self.wanted(link.id) == Some(Layer::Low))
            .filter_map(|(_, e)| *e)
            .min();
        self.set_bitrate(now, Layer::Low, low_estimate);
        self.ask_switch_keyframes(now);
        self.tell_changes();
    }

    /// Whether a frame of `layer` goes to viewer `id`. A viewer switching to
    /// `layer` switches at its keyframe; until then it keeps its old layer.
    pub fn admit(&mut self, id: PeerId, layer: Layer, keyframe: bool) -> bool {
        let Some(viewer) = self.viewers.iter_mut().find(|v| v.id == id) else {
            // Joined since the last update: viewers start on the main layer.
            return layer == Layer::Main;
        };
        if viewer.layer == layer {
            return true;
        }
        if viewer.wanted == layer && keyframe {
            tracing::info!(peer = %id, ?layer, "viewer switched layer at a keyframe");
            viewer.layer = layer;
            return true;
        }
        false
    }

    /// The layer a viewer's keyframe request (PLI/FIR, joining) is for.
    pub fn keyframe_layer(&self, id: PeerId) -> Layer {
        match self.viewers.iter().find(|v| v.id == id) {
            Some(v) if v.layer != v.wanted => v.wanted,
            Some(v) => v.layer,
            None => Layer::Main,
        }
    }

    pub fn viewer(&self, id: PeerId) -> Option<ViewerLayer> {
        self.viewers.iter().find(|v| v.id == id).map(Viewer::shows)
    }

    /// Viewers that get, or are switching to, the low layer: zero parks its encoder.
    pub fn low_viewers(&self) -> usize {
        let on_low = |v: &&Viewer| v.layer == Layer::Low || v.wanted == Layer::Low;
        self.viewers.iter().filter(on_low).count()
    }

    pub fn bitrate(&self, layer: Layer) -> Option<u32> {
        match layer {
            Layer::Main => Some(self.main.current()),
            Layer::Low => self.low.as_ref().map(BitrateController::current),
        }
    }

    pub fn poll_output(&mut self) -> Option<LayerOutput> {
        self.outputs.pop_front()
    }

    fn joining(&self, id: PeerId) -> Viewer {
        Viewer {
            id,
            layer: Layer::Main,
            wanted: Layer::Main,
            why: match self.low {
                Some(_) => Why::Starting,
                None => Why::Single,
            },
            pointing_away_since: None,
            last_switch: None,
            warned: false,
            shown: None,
        }
    }

    fn tell_changes(&mut self) {
        for viewer in &mut self.viewers {
            let now = viewer.shows();
            if viewer.shown != Some(now) {
                viewer.shown = Some(now);
                self.outputs.push_back(LayerOutput::Viewer(viewer.id, now));
            }
        }
    }

    fn wanted(&self, id: PeerId) -> Option<Layer> {
        self.viewers.iter().find(|v| v.id == id).map(|v| v.wanted)
    }

    /// The link's estimate if it is believable; else `None`, logged once per viewer.
    fn sane(&mut self, link: &ViewerLink) -> Option<u64> {
        let estimate = link.estimate?;
        if SANE_ESTIMATE.contains(&estimate) {
            return Some(estimate);
        }
        if let Some(viewer) = self.viewers.iter_mut().find(|v| v.id == link.id) {
            if !viewer.warned {
                viewer.warned = true;
                tracing::warn!(peer = %link.id, estimate, "nonsense bandwidth estimate ignored (logged once per peer)");
            }
        }
        None
    }

    fn set_bitrate(&mut self, now: Instant, layer: Layer, estimate: Option<u64>) {
        let controller = match layer {
            Layer::Main => &mut self.main,
            Layer::Low => match &mut self.low {
                Some(low) => low,
                None => return,
            },
        };
        if let Some(bps) = controller.update(now, estimate) {
            self.outputs.push_back(LayerOutput::Bitrate(layer, bps));
        }
    }

    /// A keyframe of each layer some viewer waits to switch to: at once, then
    /// again at most once per [`SWITCH_KEYFRAME_GAP`] while any still waits
    /// (a skipped or lost IDR does not strand it).
    fn ask_switch_keyframes(&mut self, now: Instant) {
        for (n, layer) in [Layer::Main, Layer::Low].into_iter().enumerate() {
            let waiting = (self.viewers.iter()).any(|v| v.wanted == layer && v.layer != layer);
            let last = &mut self.last_switch_keyframe[n];
            if waiting && last.is_none_or(|t| now >= t + SWITCH_KEYFRAME_GAP) {
                *last = Some(now);
                self.outputs.push_back(LayerOutput::Keyframe(layer));
            }
        }
    }
}

/// The estimate the main encode follows: the operator's (it drives from
/// this picture) if its link carries at least the main layer's floor, else
/// the fastest viewer's.
fn leading_estimate(estimates: &[(ViewerLink, Option<u64>)], main_min: u32) -> Option<u64> {
    let operator = (estimates.iter())
        .find(|(link, _)| link.operator)
        .and_then(|(_, e)| *e)
        .filter(|&e| e as f64 * HEADROOM >= f64::from(main_min));
    operator.or_else(|| estimates.iter().filter_map(|(_, e)| *e).max())
}

/// The lower of an estimate and a cap, where either may be missing.
fn capped(estimate: Option<u64>, cap: Option<u64>) -> Option<u64> {
    match (estimate, cap) {
        (Some(e), Some(c)) => Some(e.min(c)),
        (e, c) => e.or(c),
    }
}

#[cfg(test)]
#[path = "layers_tests.rs"]
mod tests;
