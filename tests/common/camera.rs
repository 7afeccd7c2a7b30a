//! A page's camera for the operator-camera m-line: an encoded test pattern
//! sent from a [`Peer`] that honours the robot's keyframe requests.

use std::time::Duration;

use telepi::media::encoder::openh264::OpenH264Encoder;
use telepi::media::source::pattern::TestPattern;
use telepi::media::{VideoEncoder, VideoSource};

use super::Peer;

pub struct Camera {
    source: TestPattern,
    encoder: OpenH264Encoder,
    sent: u64,
    requests_served: usize,
}

impl Camera {
    pub fn new(width: u32, height: u32) -> Camera {
        Camera {
            source: TestPattern::new(width, height, 30).unwrap(),
            encoder: OpenH264Encoder::new(width, height, 30, 300_000).unwrap(),
            sent: 0,
            requests_served: 0,
        }
    }

    /// Sends `frames` frames (30 fps) from `sender`, running every peer between them.
    pub fn stream(&mut self, sender: &mut Peer, others: &mut [&mut Peer], frames: usize) {
        for _ in 0..frames {
            let keyframe = self.sent == 0 || sender.keyframe_requests > self.requests_served;
            self.requests_served = sender.keyframe_requests;
            let frame = self.source.next_frame().unwrap();
            if let Some(au) = self.encoder.encode(&frame, keyframe).unwrap() {
                sender.send_video(&au, self.sent * 3000);
            }
            self.sent += 1;
            sender.run_for(Duration::from_millis(5));
            for peer in others.iter_mut() {
                peer.run_for(Duration::from_millis(5));
            }
        }
    }
}
