//! ICE restarts: a page whose path broke (its address changed, a NAT
//! rebound, ICE failed) sends a new offer with new ICE credentials for the
//! session it has, and keeps its peer: the same id, role, recording and
//! presence entry. str0m takes the re-offer on the existing `Rtc`
//! (different remote credentials in an offer are a restart to it).
//!
//! The robot's own addresses may have moved since the session began (a new
//! DHCP lease, another uplink, a new public address learned by STUN): the
//! answer carries its candidates as they are now, and str0m, which drops
//! checks arriving on an address it has no candidate for, is told of them.
//!
//! Only the page that owns the session may restart it: it names the session
//! and the ICE username fragment its current offer had (both secret-like,
//! compared in constant time), and the DTLS fingerprint must not change.

use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::{Candidate, Input};

use super::sdp::{attribute, video_sections_have_h264};
use super::{Hub, PeerId};

/// At most one restart per session this often: a page stuck in a restart
/// loop must not keep the loop busy with SDP.
pub const RESTART_INTERVAL: Duration = Duration::from_secs(1);

/// Why a restart was refused; shown to the HTTP client as a 4xx reason.
#[derive(Debug, Clone, PartialEq)]
pub enum RestartError {
    UnknownSession(PeerId),
    WrongUfrag,
    NotARestart,
    FingerprintChanged,
    TooSoon,
    BadSdp(String),
    Rejected(String),
}

impl std::fmt::Display for RestartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartError::UnknownSession(p) => {
                write!(f, "no session {p} (it ended): connect anew")
            }
            RestartError::WrongUfrag => write!(f, "ICE restart: wrong ufrag for this session"),
            RestartError::NotARestart => {
                write!(
                    f,
                    "ICE restart: the offer keeps the old ufrag (not a restart)"
                )
            }
            RestartError::FingerprintChanged => {
                write!(
                    f,
                    "ICE restart: the DTLS fingerprint changed (a new connection?)"
                )
            }
            RestartError::TooSoon => write!(
                f,
                "ICE restart: too soon after the last one (at most one per {RESTART_INTERVAL:?})"
            ),
            RestartError::BadSdp(e) => write!(f, "malformed SDP offer: {e}"),
            RestartError::Rejected(e) => write!(f, "ICE restart rejected: {e}"),
        }
    }
}

impl Hub {
    /// Restarts ICE on session `id` with a new offer; `ufrag` is the one of
    /// the session's current offer, `candidates` the robot's now. Returns the
    /// SDP answer.
    pub fn restart(
        &mut self,
        now: Instant,
        id: PeerId,
        ufrag: &str,
        offer_sdp: &str,
        candidates: &[Candidate],
    ) -> Result<String, RestartError> {
        let peer = self
            .peers
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or(RestartError::UnknownSession(id))?;
        if !crate::secret::matches(&peer.remote_ufrag, ufrag) {
            return Err(RestartError::WrongUfrag);
        }
        if peer
            .last_restart
            .is_some_and(|at| now < at + RESTART_INTERVAL)
        {
            return Err(RestartError::TooSoon);
        }
        let new_ufrag = attribute(offer_sdp, "ice-ufrag")
            .ok_or_else(|| RestartError::BadSdp("no a=ice-ufrag".into()))?;
        if new_ufrag == peer.remote_ufrag {
            return Err(RestartError::NotARestart);
        }
        if attribute(offer_sdp, "fingerprint") != Some(peer.fingerprint.as_str()) {
            return Err(RestartError::FingerprintChanged);
        }
        if !video_sections_have_h264(offer_sdp) {
            return Err(RestartError::BadSdp("video without H.264".into()));
        }
        let offer = SdpOffer::from_sdp_string(offer_sdp)
            .map_err(|e| RestartError::BadSdp(e.to_string()))?;
        renew_candidates(peer, candidates);
        let answer = peer
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| RestartError::Rejected(e.to_string()));
        // Whatever str0m made of it, it must be polled before the next input.
        peer.drain(&mut self.transmits, &mut self.events);
        let answer = answer?.to_sdp_string();
        peer.last_restart = Some(now);
        peer.remote_ufrag = new_ufrag.to_string();
        // The robot's checks on the new credentials go out with the answer.
        if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
            return Err(RestartError::Rejected(e.to_string()));
        }
        peer.drain(&mut self.transmits, &mut self.events);
        tracing::info!(peer = %id, "ICE restart accepted");
        Ok(answer)
    }
}

/// Withdraws the robot's candidates that are gone and adds the new ones.
/// No candidates at all (every address gone for a moment) keeps the old.
fn renew_candidates(peer: &mut super::peer::Peer, candidates: &[Candidate]) {
    if candidates.is_empty() || candidates == peer.local_candidates.as_slice() {
        return;
    }
    for gone in peer
        .local_candidates
        .iter()
        .filter(|c| !candidates.contains(c))
    {
        peer.rtc.direct_api().invalidate_candidate(gone);
    }
    for new in candidates
        .iter()
        .filter(|c| !peer.local_candidates.contains(c))
    {
        peer.rtc.add_local_candidate(new.clone());
    }
    tracing::info!(peer = %peer.id, candidates = ?candidates.iter().map(|c| c.addr()).collect::<Vec<_>>(),
        "ICE restart: the robot's addresses changed since the session began");
    peer.local_candidates = candidates.to_vec();
}
