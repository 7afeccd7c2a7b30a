//! The loop's front door for other threads (HTTP, the broker, the STUN
//! resolver): [`Command`]s sent to the loop, answered over a reply channel.
//! Apart from the loop itself so that what the loop uses (ICE) can hold one.

use std::net::SocketAddr;

use smol::channel::Sender;

use crate::rtc::hub::{ConnectError, RestartError};
use crate::rtc::status::LoopStatus;
use crate::rtc::PeerId;

/// Requests from other threads (HTTP, signals) to the loop.
pub enum Command {
    Connect {
        sdp: String,
        secret: Option<String>,
        /// Watching only, whatever the secret (plain HTTP in view-only mode).
        view_only: bool,
        reply: Sender<Result<(PeerId, String), ConnectError>>,
    },
    Disconnect {
        peer: PeerId,
        reply: Sender<bool>,
    },
    /// An ICE restart of `peer`'s session; `ufrag` is its current offer's.
    Restart {
        peer: PeerId,
        ufrag: String,
        sdp: String,
        reply: Sender<Result<String, RestartError>>,
    },
    /// Close a peer on an operator's request; needs the secret when one is configured.
    Eject {
        peer: PeerId,
        secret: Option<String>,
        reply: Sender<Result<(), EjectError>>,
    },
    Status {
        reply: Sender<LoopStatus>,
    },
    /// The `stun:` servers, resolved afresh off the loop.
    StunServers(Vec<SocketAddr>),
    Shutdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EjectError {
    Forbidden,
    NoSuchPeer,
}

/// A cheap, cloneable, blocking front door to the loop for other threads.
#[derive(Clone)]
pub struct LoopHandle {
    commands: Sender<Command>,
}

impl LoopHandle {
    pub(super) fn new(commands: Sender<Command>) -> Self {
        LoopHandle { commands }
    }

    pub fn connect(
        &self,
        sdp: String,
        secret: Option<String>,
        view_only: bool,
    ) -> Result<(PeerId, String), ConnectError> {
        self.ask(|reply| Command::Connect {
            sdp,
            secret,
            view_only,
            reply,
        })
        .unwrap_or_else(|| Err(ConnectError::Rejected("the robot is shutting down".into())))
    }

    pub fn restart(
        &self,
        peer: PeerId,
        ufrag: String,
        sdp: String,
    ) -> Result<String, RestartError> {
        self.ask(|reply| Command::Restart {
            peer,
            ufrag,
            sdp,
            reply,
        })
        .unwrap_or_else(|| Err(RestartError::Rejected("the robot is shutting down".into())))
    }

    pub fn disconnect(&self, peer: PeerId) -> bool {
        self.ask(|reply| Command::Disconnect { peer, reply })
            .unwrap_or(false)
    }

    pub fn eject(&self, peer: PeerId, secret: Option<String>) -> Result<(), EjectError> {
        self.ask(|reply| Command::Eject {
            peer,
            secret,
            reply,
        })
        .unwrap_or(Err(EjectError::NoSuchPeer))
    }

    pub fn status(&self) -> Option<LoopStatus> {
        self.ask(|reply| Command::Status { reply })
    }

    /// False once the loop is gone.
    pub fn set_stun_servers(&self, servers: Vec<SocketAddr>) -> bool {
        self.commands
            .send_blocking(Command::StunServers(servers))
            .is_ok()
    }

    pub fn shutdown(&self) {
        let _ = self.commands.send_blocking(Command::Shutdown);
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = smol::channel::bounded(1);
        self.commands.send_blocking(make(tx)).ok()?;
        rx.recv_blocking().ok()
    }
}
