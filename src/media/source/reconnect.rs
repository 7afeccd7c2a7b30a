//! A camera that can go away and come back: a USB webcam pulled out, a
//! driver that fails mid-stream. On an error the device is closed at once
//! (so the kernel can tear the node down and bring it back), and every later
//! call tries to open it again; meanwhile the video thread's calls fail fast
//! with one stable message, and viewers keep their connection (and the
//! robot its teleop) with a frozen picture until frames flow again.

use std::io;
use std::time::Instant;

use crate::media::{Frame, SourceInfo, VideoSource};

type Opener = Box<dyn FnMut() -> io::Result<Box<dyn VideoSource>> + Send>;

pub struct Reconnecting {
    open: Opener,
    source: Option<Box<dyn VideoSource>>,
    /// What the stream was set up with; a device that comes back in another
    /// mode is not used (the encoder and every peer expect this one).
    info: SourceInfo,
    lost_at: Option<Instant>,
}

impl Reconnecting {
    /// Opens the source now (an error here is a startup error) and keeps
    /// `open` to reopen it after a failure.
    pub fn new(mut open: Opener) -> io::Result<Reconnecting> {
        let source = open()?;
        Ok(Reconnecting {
            info: source.info(),
            open,
            source: Some(source),
            lost_at: None,
        })
    }

    fn reopen(&mut self) -> io::Result<()> {
        let source = (self.open)().map_err(|e| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                format!("camera lost, reopening it: {e}"),
            )
        })?;
        let info = source.info();
        if (info.width, info.height, info.format)
            != (self.info.width, self.info.height, self.info.format)
        {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!(
                    "camera back as {}x{} {:?}, but the stream is {}x{} {:?}: restart telepi to switch",
                    info.width, info.height, info.format, self.info.width, self.info.height, self.info.format
                ),
            ));
        }
        let gone = self.lost_at.take().map(|t| t.elapsed());
        tracing::info!("{}: camera back after {gone:.1?}", self.info.name);
        self.source = Some(source);
        Ok(())
    }
}

impl VideoSource for Reconnecting {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn next_frame(&mut self) -> io::Result<Frame> {
        if self.source.is_none() {
            self.reopen()?;
        }
        let source = self.source.as_mut().expect("opened above");
        source.next_frame().map_err(|e| {
            // Closing it lets the driver release an unplugged device.
            self.source = None;
            self.lost_at = Some(Instant::now());
            io::Error::new(e.kind(), format!("camera lost: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use super::*;
    use crate::media::PixelFormat;

    /// A source that plays a script: `Ok(n)` frames of width `n`, then an error.
    struct Scripted {
        width: u32,
        frames: usize,
    }

    impl VideoSource for Scripted {
        fn info(&self) -> SourceInfo {
            SourceInfo {
                name: "v4l2:/dev/video9".into(),
                width: self.width,
                height: 2,
                fps: 30,
                format: PixelFormat::I420,
            }
        }

        fn next_frame(&mut self) -> io::Result<Frame> {
            if self.frames == 0 {
                return Err(io::Error::other("DQBUF: No such device"));
            }
            self.frames -= 1;
            Ok(Frame {
                width: self.width,
                height: 2,
                format: PixelFormat::I420,
                data: vec![0; self.width as usize * 3],
                captured: Instant::now(),
            })
        }
    }

    /// An opener that hands out the scripted devices in turn (an `Err` = still unplugged).
    fn opener(script: Vec<Result<(u32, usize), &'static str>>) -> (Opener, Arc<Mutex<usize>>) {
        let opened = Arc::new(Mutex::new(0));
        let count = opened.clone();
        let mut script: VecDeque<_> = script.into();
        let open = move || -> io::Result<Box<dyn VideoSource>> {
            *count.lock().unwrap() += 1;
            match script.pop_front().expect("opened more often than scripted") {
                Ok((width, frames)) => Ok(Box::new(Scripted { width, frames })),
                Err(e) => Err(io::Error::new(io::ErrorKind::NotFound, e)),
            }
        };
        (Box::new(open), opened)
    }

    #[test]
    fn a_lost_camera_is_reopened_and_frames_flow_again() {
        let (open, opened) = opener(vec![
            Ok((4, 1)),
            Err("/dev/video9: No such file or directory"),
            Ok((4, 1)),
        ]);
        let mut camera = Reconnecting::new(open).unwrap();
        assert!(camera.next_frame().is_ok());
        let lost = camera.next_frame().unwrap_err();
        assert!(lost.to_string().contains("No such device"), "{lost}");
        let still_gone = camera.next_frame().unwrap_err();
        assert_eq!(still_gone.kind(), io::ErrorKind::NotConnected);
        assert!(
            still_gone.to_string().contains("camera lost"),
            "{still_gone}"
        );
        assert!(camera.next_frame().is_ok(), "back");
        assert_eq!(*opened.lock().unwrap(), 3);
    }

    #[test]
    fn a_camera_back_in_another_mode_is_not_used() {
        let (open, _) = opener(vec![Ok((4, 1)), Ok((8, 5)), Ok((4, 5))]);
        let mut camera = Reconnecting::new(open).unwrap();
        assert!(camera.next_frame().is_ok());
        assert!(camera.next_frame().is_err());
        let other = camera.next_frame().unwrap_err();
        assert!(other.to_string().contains("8x2"), "{other}");
        assert_eq!(camera.next_frame().unwrap().width, 4);
        assert_eq!(camera.info().width, 4);
    }

    #[test]
    fn a_camera_missing_at_start_is_a_startup_error() {
        let (open, _) = opener(vec![Err("/dev/video9: No such file or directory")]);
        assert!(Reconnecting::new(open).is_err());
    }
}
