//! What the hardware (V4L2 M2M) encoder can serve when several cameras share
//! it: a Pi 4's encoder does 1080p30 in total, so the pixel rates of the
//! cameras that use it must add up to no more than that. One stream alone is
//! never refused here (the driver itself says what it cannot do).

/// 1920x1080 at 30 frames a second: a Pi 4's H.264 encoder, all streams together.
pub const M2M_PIXELS_PER_SECOND: u64 = 1920 * 1080 * 30;

/// One camera that would use the hardware encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct M2mStream<'a> {
    pub name: &'a str,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl M2mStream<'_> {
    fn pixels_per_second(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) * u64::from(self.fps)
    }
}

/// `Err` says why two or more streams together exceed the encoder.
pub fn check(streams: &[M2mStream]) -> Result<(), String> {
    if streams.len() < 2 {
        return Ok(());
    }
    let total: u64 = streams.iter().map(M2mStream::pixels_per_second).sum();
    if total <= M2M_PIXELS_PER_SECOND {
        return Ok(());
    }
    let each: Vec<String> = streams
        .iter()
        .map(|s| format!("{:?} {}x{}@{}", s.name, s.width, s.height, s.fps))
        .collect();
    Err(format!(
        "the hardware encoder cannot serve {}: together {} Mpixel/s, it does {} (1080p30 in total); \
         lower a size or fps, or give one camera encoder = \"openh264\"",
        each.join(" + "),
        total / 1_000_000,
        M2M_PIXELS_PER_SECOND / 1_000_000,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(name: &str, width: u32, height: u32, fps: u32) -> M2mStream<'_> {
        M2mStream {
            name,
            width,
            height,
            fps,
        }
    }

    #[test]
    fn one_stream_is_never_refused() {
        assert_eq!(check(&[stream("big", 4096, 4096, 60)]), Ok(()));
        assert_eq!(check(&[]), Ok(()));
    }

    #[test]
    fn streams_fitting_1080p30_together_pass() {
        let two_720p15 = [stream("a", 1280, 720, 15), stream("b", 1280, 720, 15)];
        assert_eq!(check(&two_720p15), Ok(()));
        let exactly = [stream("a", 1920, 1080, 15), stream("b", 1920, 1080, 15)];
        assert_eq!(check(&exactly), Ok(()));
    }

    #[test]
    fn two_1080p30_streams_are_refused_with_the_reason() {
        let err = check(&[
            stream("front", 1920, 1080, 30),
            stream("arm", 1920, 1080, 30),
        ])
        .unwrap_err();
        assert!(
            err.contains("\"front\" 1920x1080@30 + \"arm\" 1920x1080@30"),
            "{err}"
        );
        assert!(err.contains("124 Mpixel/s"), "{err}");
        assert!(err.contains("openh264"), "{err}");
    }
}
