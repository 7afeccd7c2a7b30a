//! Where encoded video and audio go. Every consumer (the peers, the WHIP
//! publishers, the recorder, the robot's screen) is a [`MediaSink`]; the
//! network loop hands each access unit, once, to a [`FanOut`] of them, and
//! asks the same fan-out how many watch each camera (so an unwatched
//! pipeline idles) and whether anyone needs a keyframe. The loop itself does
//! not know who consumes.

use std::time::Instant;

use super::audio::EncodedAudio;
use super::layer::Layer;
use super::EncodedFrame;

/// Which video an access unit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// One of the robot's cameras, by config order.
    Camera(usize),
    /// The operator's camera, as the robot received it from their browser.
    Operator,
}

/// A consumer of encoded media. Called on the network loop, so every method
/// returns at once: a sink queues the data or drops it, never waits.
pub trait MediaSink {
    /// One access unit of `feed`'s `layer` (the operator's camera has only
    /// [`Layer::Main`]), in order. A sink ignores what it does not take.
    fn video(&mut self, now: Instant, feed: Feed, layer: Layer, frame: &EncodedFrame);
    /// One microphone packet.
    fn audio(&mut self, _now: Instant, _packet: &EncodedAudio) {}
    /// How many watch robot camera `camera` through this sink.
    fn viewers(&self, camera: usize) -> usize;
    /// How many listen to the microphone through this sink.
    fn listeners(&self) -> usize {
        0
    }
    /// True once each time this sink needs a keyframe of `feed` (it
    /// started, it dropped frames, its decoder failed).
    fn take_keyframe_request(&mut self, feed: Feed) -> bool;
}

/// A consumer that may not be there (no screen configured) takes nothing.
impl<S: MediaSink> MediaSink for Option<S> {
    fn video(&mut self, now: Instant, feed: Feed, layer: Layer, frame: &EncodedFrame) {
        if let Some(sink) = self {
            sink.video(now, feed, layer, frame);
        }
    }

    fn audio(&mut self, now: Instant, packet: &EncodedAudio) {
        if let Some(sink) = self {
            sink.audio(now, packet);
        }
    }

    fn viewers(&self, camera: usize) -> usize {
        self.as_ref().map_or(0, |sink| sink.viewers(camera))
    }

    fn listeners(&self) -> usize {
        self.as_ref().map_or(0, MediaSink::listeners)
    }

    fn take_keyframe_request(&mut self, feed: Feed) -> bool {
        self.as_mut()
            .is_some_and(|sink| sink.take_keyframe_request(feed))
    }
}

/// Every consumer, borrowed for one call: no allocation per frame.
pub struct FanOut<'a, const N: usize> {
    sinks: [&'a mut dyn MediaSink; N],
}

impl<'a, const N: usize> FanOut<'a, N> {
    pub fn new(sinks: [&'a mut dyn MediaSink; N]) -> Self {
        FanOut { sinks }
    }

    pub fn video(&mut self, now: Instant, feed: Feed, layer: Layer, frame: &EncodedFrame) {
        for sink in &mut self.sinks {
            sink.video(now, feed, layer, frame);
        }
    }

    pub fn audio(&mut self, now: Instant, packet: &EncodedAudio) {
        for sink in &mut self.sinks {
            sink.audio(now, packet);
        }
    }

    /// Everybody watching camera `camera`: its pipeline idles at 0.
    pub fn viewers(&self, camera: usize) -> usize {
        self.sinks.iter().map(|sink| sink.viewers(camera)).sum()
    }

    pub fn listeners(&self) -> usize {
        self.sinks.iter().map(|sink| sink.listeners()).sum()
    }

    /// Whether any sink needs a keyframe of `feed`. Every sink's request is
    /// taken (no short circuit), so none lingers for the next round.
    pub fn take_keyframe_request(&mut self, feed: Feed) -> bool {
        (self.sinks.iter_mut()).fold(false, |any, sink| sink.take_keyframe_request(feed) | any)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Takes the main layer of one feed, like the recorder or the screen.
    #[derive(Default)]
    struct Taker {
        feed: Option<Feed>,
        got: Vec<(Feed, Vec<u8>)>,
        audio: usize,
        wants_keyframe: bool,
    }

    impl MediaSink for Taker {
        fn video(&mut self, _now: Instant, feed: Feed, layer: Layer, frame: &EncodedFrame) {
            if self.feed == Some(feed) && layer == Layer::Main {
                self.got.push((feed, frame.data.to_vec()));
            }
        }

        fn audio(&mut self, _now: Instant, _packet: &EncodedAudio) {
            self.audio += 1;
        }

        fn viewers(&self, camera: usize) -> usize {
            usize::from(self.feed == Some(Feed::Camera(camera)))
        }

        fn listeners(&self) -> usize {
            1
        }

        fn take_keyframe_request(&mut self, feed: Feed) -> bool {
            self.feed == Some(feed) && std::mem::take(&mut self.wants_keyframe)
        }
    }

    fn frame(byte: u8) -> EncodedFrame {
        EncodedFrame {
            data: Arc::from([byte].as_slice()),
            captured: Instant::now(),
            rtp_time: 0,
            keyframe: false,
        }
    }

    fn taker(feed: Feed) -> Taker {
        Taker {
            feed: Some(feed),
            ..Taker::default()
        }
    }

    #[test]
    fn each_frame_reaches_every_sink_that_takes_it_once() {
        let now = Instant::now();
        let (mut first, mut also_first) = (taker(Feed::Camera(0)), taker(Feed::Camera(0)));
        let (mut second, mut operator) = (taker(Feed::Camera(1)), taker(Feed::Operator));
        {
            let mut fan = FanOut::new([&mut first, &mut also_first, &mut second, &mut operator]);
            fan.video(now, Feed::Camera(0), Layer::Main, &frame(1));
            fan.video(now, Feed::Camera(0), Layer::Low, &frame(2));
            fan.video(now, Feed::Camera(1), Layer::Main, &frame(3));
            fan.video(now, Feed::Operator, Layer::Main, &frame(4));
        }
        assert_eq!(first.got, [(Feed::Camera(0), vec![1])]);
        assert_eq!(also_first.got, first.got);
        assert_eq!(second.got, [(Feed::Camera(1), vec![3])]);
        assert_eq!(operator.got, [(Feed::Operator, vec![4])]);
    }

    #[test]
    fn demand_is_the_sum_of_the_sinks() {
        let (mut a, mut b) = (taker(Feed::Camera(0)), taker(Feed::Camera(0)));
        let mut none: Option<Taker> = None;
        let fan = FanOut::new([&mut a, &mut b, &mut none]);
        assert_eq!(fan.viewers(0), 2);
        assert_eq!(fan.viewers(1), 0);
        assert_eq!(fan.listeners(), 2);
    }

    #[test]
    fn audio_reaches_every_sink_and_an_absent_one_takes_nothing() {
        let packet = EncodedAudio {
            data: Arc::from([0u8].as_slice()),
            captured: Instant::now(),
            rtp_time: 0,
        };
        let (mut a, mut b) = (taker(Feed::Camera(0)), Some(taker(Feed::Operator)));
        let mut none: Option<Taker> = None;
        FanOut::new([&mut a, &mut b, &mut none]).audio(Instant::now(), &packet);
        assert_eq!((a.audio, b.unwrap().audio), (1, 1));
    }

    #[test]
    fn every_keyframe_request_is_taken_at_once() {
        let mut a = taker(Feed::Camera(0));
        let mut b = taker(Feed::Camera(0));
        let mut other = taker(Feed::Operator);
        for sink in [&mut a, &mut b, &mut other] {
            sink.wants_keyframe = true;
        }
        let mut fan = FanOut::new([&mut a, &mut b, &mut other]);
        assert!(fan.take_keyframe_request(Feed::Camera(0)));
        // Both camera sinks were asked: neither lingers.
        assert!(!fan.take_keyframe_request(Feed::Camera(0)));
        assert!(fan.take_keyframe_request(Feed::Operator));
        assert!(!fan.take_keyframe_request(Feed::Operator));
    }
}
