//! `backend = "external"`: a program on the local API ([`crate::api`])
//! moves the motors. [`Drive`](super::Drive) still mixes, ramps and runs the
//! deadman; this backend only posts what it would have written to pins into a
//! mailbox the network loop empties into the API after every step (both sit
//! on the loop's thread, so the lock is never contended). Whether a program
//! is there to act on it is the API's to say: it sets the link state.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::{Backend, DriveConfig, LinkState, Motors};

/// More outputs than this between two loop steps can't happen in practice
/// (a step is one datagram or one tick); the oldest go first if they do.
const MAILBOX_LIMIT: usize = 64;

/// What the drive asked the motors and servos to do.
#[derive(Debug, Clone, PartialEq)]
pub enum MotorOutput {
    Motors(Motors),
    Servo {
        index: usize,
        name: String,
        pulse_us: u32,
    },
}

struct Mailbox {
    outputs: VecDeque<MotorOutput>,
    link: LinkState,
}

/// The drive's end: a [`Backend`].
pub struct External {
    mailbox: Arc<Mutex<Mailbox>>,
    servo_names: Vec<String>,
}

/// The loop's end: takes the outputs, sets the link state.
pub struct MotorPort {
    mailbox: Arc<Mutex<Mailbox>>,
}

/// A connected backend and port; the link is `connecting` until a program takes the motors.
pub fn external(config: &DriveConfig) -> (External, MotorPort) {
    let mailbox = Arc::new(Mutex::new(Mailbox {
        outputs: VecDeque::new(),
        link: LinkState::Connecting,
    }));
    let backend = External {
        mailbox: mailbox.clone(),
        servo_names: config.servos.iter().map(|s| s.name.clone()).collect(),
    };
    (backend, MotorPort { mailbox })
}

impl External {
    fn post(&self, output: MotorOutput) {
        let mut mailbox = self.mailbox.lock().expect("mailbox lock");
        if mailbox.outputs.len() == MAILBOX_LIMIT {
            mailbox.outputs.pop_front();
        }
        mailbox.outputs.push_back(output);
    }
}

impl Backend for External {
    fn name(&self) -> &'static str {
        "external"
    }

    fn set_motors(&mut self, motors: Motors) {
        self.post(MotorOutput::Motors(motors));
    }

    fn set_servo(&mut self, index: usize, pulse_us: u32) {
        let name = self.servo_names.get(index).cloned().unwrap_or_default();
        self.post(MotorOutput::Servo {
            index,
            name,
            pulse_us,
        });
    }

    fn link(&self) -> Option<LinkState> {
        Some(self.mailbox.lock().expect("mailbox lock").link)
    }
}

impl MotorPort {
    /// Everything posted since the last call, oldest first.
    pub fn take(&self) -> Vec<MotorOutput> {
        let mut mailbox = self.mailbox.lock().expect("mailbox lock");
        mailbox.outputs.drain(..).collect()
    }

    pub fn set_link(&self, link: LinkState) {
        self.mailbox.lock().expect("mailbox lock").link = link;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::drive::{testing, Drive};

    #[test]
    fn the_drive_posts_its_outputs_and_the_deadman_posts_a_stop() {
        let config = testing::config(0.0);
        let (backend, port) = external(&config);
        let t = Instant::now();
        let mut drive = Drive::new(&config, Box::new(backend)).unwrap();
        let centre = MotorOutput::Servo {
            index: 0,
            name: "pan".into(),
            pulse_us: 1500,
        };
        assert_eq!(
            port.take(),
            [centre, MotorOutput::Motors(Motors::default())]
        );
        drive.drive(t, 1.0, 0.0);
        drive.tick(t + Duration::from_millis(config.deadman_ms));
        let full = Motors {
            left: 1.0,
            right: 1.0,
        };
        assert_eq!(
            port.take(),
            [
                MotorOutput::Motors(full),
                MotorOutput::Motors(Motors::default())
            ]
        );
        assert_eq!(port.take(), []);
        assert_eq!(drive.link(), Some(LinkState::Connecting));
        port.set_link(LinkState::Ok);
        assert_eq!(drive.link(), Some(LinkState::Ok));
        drop(drive);
        assert_eq!(port.take(), [MotorOutput::Motors(Motors::default())]);
    }

    #[test]
    fn a_mailbox_nobody_empties_keeps_the_newest() {
        let config = testing::config(0.0);
        let (mut backend, port) = external(&config);
        for i in 0..MAILBOX_LIMIT + 10 {
            backend.set_motors(Motors {
                left: i as f32,
                right: 0.0,
            });
        }
        let outputs = port.take();
        assert_eq!(outputs.len(), MAILBOX_LIMIT);
        assert_eq!(
            outputs.last(),
            Some(&MotorOutput::Motors(Motors {
                left: (MAILBOX_LIMIT + 9) as f32,
                right: 0.0
            }))
        );
    }
}
