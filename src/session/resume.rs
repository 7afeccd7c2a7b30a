//! The operator's resume token: handed out with the role, checked like a
//! secret (constant time), good for one change of operator only.

use super::Session;
use crate::peer::PeerId;
use crate::session::protocol::Outbound;

impl Session {
    /// Whether `token` is the current operator's resume token.
    pub(super) fn resume_matches(&self, token: &str) -> bool {
        self.resume
            .as_deref()
            .is_some_and(|want| crate::secret::matches(want, token))
    }

    /// Tells a peer its role; the operator gets its resume token with it.
    pub(super) fn send_role(&mut self, peer: PeerId) {
        let role = self.role(peer);
        let resume = self.resume.clone().filter(|_| self.operator == Some(peer));
        let text = Outbound::Role {
            role,
            resume: resume.as_deref(),
        }
        .to_json();
        self.outputs
            .push_back(super::SessionOutput::Send { peer, text });
    }
}
