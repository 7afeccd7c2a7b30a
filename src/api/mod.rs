//! The local API: the robot's own programs (a line follower, a lidar, a
//! horn, a motor controller of their own) talk to telepi over a Unix socket,
//! newline-delimited JSON both ways, in the data channel's style. They see
//! what the operator sends and who is connected, publish readings and
//! messages for the pages, and may drive the motors themselves
//! (`[drive] backend = "external"`) while telepi keeps the deadman, the
//! stop and the one operator. The protocol is in docs/reference/local-api.md.
//!
//! ```toml
//! [api]
//! socket = "/run/telepi/api.sock"  # unset (default): no API
//! mode = 0o660                     # the socket's file mode: who may connect
//! max_clients = 8
//! queue = 256                      # lines queued per program before the oldest are dropped
//! motor_timeout_ms = 1000          # a motor program silent this long has gone
//! ```
//!
//! [`core`] is sans-IO (bytes and time in, lines and [`ApiOutput`]s out);
//! [`socket`] is the thin I/O shell on the network loop.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

pub mod core;
pub mod message;
pub mod socket;

pub use self::core::{Api, ApiOutput, ClientId, Limits};
pub use message::{Audience, Event};

use crate::controls::Controls;
use crate::drive::external::MotorPort;
use socket::ApiSocket;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Where the socket goes; unset: no local API.
    pub socket: Option<PathBuf>,
    /// The socket's file mode. Connecting needs write permission on it, so
    /// 0o660 lets telepi's user and group in.
    pub mode: u32,
    pub max_clients: usize,
    pub queue: usize,
    pub motor_timeout_ms: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            socket: None,
            mode: 0o660,
            max_clients: 8,
            queue: 256,
            motor_timeout_ms: 1000,
        }
    }
}

impl ApiConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.mode > 0o777 {
            return Err(format!(
                "api mode {:o} is not a file mode (0o000..=0o777)",
                self.mode
            ));
        }
        if !(1..=64).contains(&self.max_clients) {
            return Err("api max_clients must be 1..=64".into());
        }
        if !(16..=65_536).contains(&self.queue) {
            return Err("api queue must be 16..=65536".into());
        }
        if !(100..=60_000).contains(&self.motor_timeout_ms) {
            return Err("api motor_timeout_ms must be 100..=60000".into());
        }
        Ok(())
    }

    fn limits(&self) -> Limits {
        Limits {
            max_clients: self.max_clients,
            queue: self.queue,
            motor_timeout: Duration::from_millis(self.motor_timeout_ms),
        }
    }
}

/// The core, its socket, and the external motors' port: what the network loop holds.
pub struct LocalApi {
    core: Api,
    socket: ApiSocket,
    motors: Option<MotorPort>,
}

impl LocalApi {
    /// Binds the socket `config` names (`None` when it names none).
    pub fn open(
        config: &ApiConfig,
        drive_backend: &'static str,
        controls: Arc<Controls>,
        motors: Option<MotorPort>,
    ) -> Result<Option<LocalApi>, String> {
        let Some(path) = &config.socket else {
            return Ok(None);
        };
        let socket = ApiSocket::bind(path, config.mode)?;
        tracing::info!(
            "local API on {} (mode {:o}){}",
            path.display(),
            config.mode,
            if motors.is_some() {
                ": waiting for a program to take the motors"
            } else {
                ""
            }
        );
        Ok(Some(LocalApi {
            core: Api::new(config.limits(), drive_backend, controls),
            socket,
            motors,
        }))
    }

    /// Resolves when the socket has something to do (see [`ApiSocket::ready`]).
    pub async fn ready(&self) {
        self.socket.ready().await
    }

    /// Accepts, reads and writes whatever is ready.
    pub fn service(&mut self, now: Instant) {
        self.socket.service(now, &mut self.core);
    }

    pub fn tick(&mut self, now: Instant) {
        self.core.tick(now);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.core.next_deadline()
    }

    pub fn publish(&mut self, event: &Event) {
        self.core.publish(event);
    }

    /// The next thing the session must do; a motor link change also goes
    /// to the drive backend, which reports it.
    pub fn poll_output(&mut self) -> Option<ApiOutput> {
        let output = self.core.poll_output()?;
        if let (ApiOutput::MotorLink { state, .. }, Some(port)) = (&output, &self.motors) {
            port.set_link(*state);
        }
        Some(output)
    }

    pub fn reply_error(&mut self, client: ClientId, reason: &str) {
        self.core.reply_error(client, reason);
    }

    /// Hands the external backend's outputs to the motor programs and
    /// writes everything queued as far as the sockets take it.
    pub fn flush(&mut self) {
        if let Some(port) = &self.motors {
            for output in port.take() {
                self.core.motor_output(output);
            }
        }
        self.socket.flush(&mut self.core);
    }

    pub fn status(&self) -> serde_json::Value {
        let mut status = self.core.status();
        status["socket"] = self.socket.path().display().to_string().into();
        status
    }
}
