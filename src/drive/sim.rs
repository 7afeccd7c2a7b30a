//! The backend for machines without GPIO: nothing moves, the values show up
//! in telemetry and status (which [`Drive`](super::Drive) keeps) and in debug logs.

use super::{Backend, Motors};

#[derive(Debug, Default)]
pub struct Sim;

impl Backend for Sim {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn set_motors(&mut self, motors: Motors) {
        tracing::debug!(left = motors.left, right = motors.right, "sim motors");
    }

    fn set_servo(&mut self, index: usize, pulse_us: u32) {
        tracing::debug!(index, pulse_us, "sim servo");
    }
}
