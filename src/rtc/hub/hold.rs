//! Links that blip: a peer that falls silent for a moment (Wi-Fi dropout,
//! roaming, a stalled 4G link) is held, not dropped. Its motors are already
//! stopped by the session's deadman; the hub stops writing media into the
//! dead link, and the first datagram after the silence (RTCP, STUN, data)
//! brings it back with a keyframe asked for at once. Only the silence limit
//! ([`HubConfig::silence_timeout`]) ends it.

use std::collections::VecDeque;
use std::time::Instant;

use str0m::net::Transmit;

use super::peer::Peer;
use super::{HubConfig, HubEvent};

impl Peer {
    /// Connected and not held: media written to it can arrive.
    pub(super) fn sending(&self) -> bool {
        self.connected && self.held_since.is_none()
    }

    /// When the link counts as lost if nothing is heard before then. Only a
    /// peer that watches video sends continuously (RTCP); a data-only one
    /// may be quiet for seconds.
    pub(super) fn link_lost_at(&self, config: &HubConfig) -> Option<Instant> {
        let watches = self.video.iter().any(|t| t.on) || self.operator_camera.is_some();
        (self.sending() && watches).then(|| self.last_heard + config.link_lost_after)
    }

    /// On every timeout: holds the peer once its link has been silent too long.
    pub(super) fn hold_if_silent(&mut self, now: Instant, config: &HubConfig) {
        if self.link_lost_at(config).is_some_and(|at| now >= at) {
            tracing::info!(
                peer = %self.id,
                silent = ?now.saturating_duration_since(self.last_heard),
                "link lost: holding the peer for up to {:?}",
                config.silence_timeout
            );
            self.held_since = Some(self.last_heard);
        }
    }

    /// A datagram from the peer arrived at `now`.
    pub(super) fn heard(&mut self, now: Instant, events: &mut VecDeque<HubEvent>) {
        self.last_heard = now;
        if let Some(since) = self.held_since.take() {
            let silent = now.saturating_duration_since(since);
            tracing::info!(peer = %self.id, ?silent, "link back: keyframe requested");
            self.start_video_at_keyframe(events);
        }
    }

    /// Every datagram str0m sends. Media goes to the pair the browser
    /// nominated; when that moves (the browser's address changed, a NAT
    /// rebinding, an ICE restart onto a new path) the frames sent to the old
    /// address are lost and the decoder waits: ask for a keyframe at once.
    pub(super) fn follow_send_path(
        &mut self,
        transmit: &Transmit,
        events: &mut VecDeque<HubEvent>,
    ) {
        // STUN (first byte 0-3, RFC 7983) answers checks on any pair.
        if transmit.contents.first().is_none_or(|b| *b < 4) {
            return;
        }
        let before = self.sends_to.replace(transmit.destination);
        if self.connected && before.is_some_and(|b| b != transmit.destination) {
            tracing::info!(peer = %self.id, from = ?before, to = %transmit.destination,
                "send path moved: keyframe requested");
            self.start_video_at_keyframe(events);
        }
    }
}
