//! The synthetic camera: moving colour bars (or, camera-like, a panning
//! scene with sensor noise: [`super::scene`]) with the frame number and the
//! capture time burned in, both as digits (for people) and as a row of
//! black/white cells (for machines measuring latency from decoded frames).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::scene::Scene;
use crate::media::pace::Pacer;
use crate::media::{Frame, PixelFormat, SourceInfo, VideoSource};

/// Cells in the machine-readable stamp: 32 bits of capture time (ms since the
/// Unix epoch, modulo 2^32), most significant first.
pub const STAMP_BITS: u32 = 32;
/// Height of the stamp row in pixels, at the top of the frame.
pub const STAMP_HEIGHT: u32 = 16;

const Y_BLACK: u8 = 16;
const Y_WHITE: u8 = 235;

/// 5x7 glyphs for the digits, one byte per row, low 5 bits used.
const DIGITS: [[u8; 7]; 10] = [
    [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
    [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
    [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
    [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
    [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
    [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
    [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
    [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
    [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
];

/// (Y, U, V) of the classic bars: white, yellow, cyan, green, magenta, red, blue, black.
const BARS: [(u8, u8, u8); 8] = [
    (235, 128, 128),
    (210, 16, 146),
    (170, 166, 16),
    (145, 54, 34),
    (106, 202, 222),
    (81, 90, 240),
    (41, 240, 110),
    (16, 128, 128),
];

pub struct TestPattern {
    width: u32,
    height: u32,
    fps: u32,
    frame_no: u64,
    pacer: Pacer,
    /// Camera-like content instead of the bars.
    scene: Option<Scene>,
}

impl TestPattern {
    /// Width and height must be even (I420) and at least 64x64.
    pub fn new(width: u32, height: u32, fps: u32) -> std::io::Result<TestPattern> {
        if !width.is_multiple_of(2)
            || !height.is_multiple_of(2)
            || width < 64
            || height < 64
            || fps == 0
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "test pattern needs even size >= 64x64 and fps > 0, got {width}x{height}@{fps}"
                ),
            ));
        }
        Ok(TestPattern {
            width,
            height,
            fps,
            frame_no: 0,
            pacer: Pacer::new(Duration::from_secs(1) / fps),
            scene: None,
        })
    }

    /// A panning, noisy scene instead of the bars (same stamp and digits).
    pub fn camera_like(mut self) -> TestPattern {
        self.scene = Some(Scene::default());
        self
    }

    /// Draws frame number `n` captured at `epoch_ms` into an I420 buffer.
    pub fn draw(&self, n: u64, epoch_ms: u64, frame: &mut Frame) {
        let (w, h) = (self.width as usize, self.height as usize);
        let (luma, chroma) = frame.data.split_at_mut(w * h);
        let (u_plane, v_plane) = chroma.split_at_mut(w * h / 4);
        match &self.scene {
            Some(scene) => scene.draw(n, w, luma, u_plane, v_plane),
            None => draw_bars(n, w, h, luma, u_plane, v_plane),
        }
        self.draw_stamp(luma, epoch_ms);
        let scale = (h / 120).max(2);
        let text_top = h - 9 * scale;
        fill_plane(luma, w, 0, text_top - scale, w, 10 * scale, Y_BLACK);
        // Grey chroma under the stamp and the text, so they read black and white.
        for (top, rows) in [(0, STAMP_HEIGHT as usize), (text_top - scale, 10 * scale)] {
            fill_plane(u_plane, w / 2, 0, top / 2, w / 2, rows.div_ceil(2), 128);
            fill_plane(v_plane, w / 2, 0, top / 2, w / 2, rows.div_ceil(2), 128);
        }
        draw_number(luma, w, scale, scale, text_top, n);
        let ms_width = 14 * 6 * scale;
        draw_number(
            luma,
            w,
            scale,
            w.saturating_sub(ms_width + scale),
            text_top,
            epoch_ms,
        );
    }

    fn draw_stamp(&self, luma: &mut [u8], epoch_ms: u64) {
        let w = self.width as usize;
        let cell = w / STAMP_BITS as usize;
        for bit in 0..STAMP_BITS as usize {
            let on = (epoch_ms >> (STAMP_BITS as usize - 1 - bit)) & 1 == 1;
            let y = if on { Y_WHITE } else { Y_BLACK };
            fill_plane(luma, w, bit * cell, 0, cell, STAMP_HEIGHT as usize, y);
        }
    }
}

/// Reads the capture time stamp back from a decoded I420 luma plane.
pub fn read_stamp(luma: &[u8], width: usize) -> u32 {
    let cell = width / STAMP_BITS as usize;
    let row = STAMP_HEIGHT as usize / 2;
    (0..STAMP_BITS as usize).fold(0u32, |acc, bit| {
        let centre = luma[row * width + bit * cell + cell / 2];
        (acc << 1) | u32::from(centre > 128)
    })
}

/// The colour bars, scrolling one pixel per frame so motion is obvious and
/// encoders work for real, and a bouncing grey square for vertical motion.
fn draw_bars(n: u64, w: usize, h: usize, luma: &mut [u8], u_plane: &mut [u8], v_plane: &mut [u8]) {
    let shift = n as usize;
    let bar_width = w.div_ceil(BARS.len());
    let bar = |x: usize| BARS[((x + shift) % w) / bar_width];
    // Bars are vertical: draw one row of each plane, then copy it down
    // (row by row keeps the writes sequential; column order was 10x slower).
    let (first, rest) = luma.split_at_mut(w);
    for (x, px) in first.iter_mut().enumerate() {
        *px = bar(x).0;
    }
    for row in rest.chunks_exact_mut(w) {
        row.copy_from_slice(first);
    }
    let cw = w / 2;
    let (u_first, u_rest) = u_plane.split_at_mut(cw);
    let (v_first, v_rest) = v_plane.split_at_mut(cw);
    for x in 0..cw {
        let (_, u, v) = bar(2 * x);
        u_first[x] = u;
        v_first[x] = v;
    }
    for row in u_rest.chunks_exact_mut(cw) {
        row.copy_from_slice(u_first);
    }
    for row in v_rest.chunks_exact_mut(cw) {
        row.copy_from_slice(v_first);
    }
    let side = h / 6;
    let span = h - side - STAMP_HEIGHT as usize;
    let phase = (n as usize * 4) % (2 * span);
    let top = STAMP_HEIGHT as usize
        + if phase < span {
            phase
        } else {
            2 * span - phase
        };
    fill_plane(luma, w, w / 2 - side / 2, top, side, side, 128);
}

/// Fills a rectangle of one plane (luma, or a chroma plane at its own stride).
fn fill_plane(plane: &mut [u8], stride: usize, x: usize, y: usize, w: usize, h: usize, value: u8) {
    let height = plane.len() / stride;
    for row in y..(y + h).min(height) {
        let start = row * stride + x.min(stride);
        let end = row * stride + (x + w).min(stride);
        plane[start..end].fill(value);
    }
}

fn draw_number(luma: &mut [u8], stride: usize, scale: usize, x: usize, y: usize, n: u64) {
    for (i, digit) in n.to_string().bytes().enumerate() {
        let glyph = DIGITS[(digit - b'0') as usize];
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    let gx = x + (i * 6 + col) * scale;
                    fill_plane(luma, stride, gx, y + row * scale, scale, scale, Y_WHITE);
                }
            }
        }
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl VideoSource for TestPattern {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            name: if self.scene.is_some() {
                "pattern (camera-like)"
            } else {
                "pattern"
            }
            .into(),
            width: self.width,
            height: self.height,
            fps: self.fps,
            format: PixelFormat::I420,
        }
    }

    fn next_frame(&mut self) -> std::io::Result<Frame> {
        self.pacer.wait();
        let mut frame = Frame::black_i420(self.width, self.height);
        frame.captured = Instant::now();
        self.draw(self.frame_no, epoch_ms(), &mut frame);
        self.frame_no += 1;
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_reads_back_what_was_drawn() {
        let p = TestPattern::new(640, 480, 30).unwrap();
        let mut f = Frame::black_i420(640, 480);
        let ms = 1_700_000_123_456u64;
        p.draw(42, ms, &mut f);
        assert_eq!(read_stamp(&f.data, 640), ms as u32);
    }

    #[test]
    fn consecutive_frames_differ() {
        let p = TestPattern::new(320, 240, 30).unwrap();
        let (mut a, mut b) = (Frame::black_i420(320, 240), Frame::black_i420(320, 240));
        p.draw(1, 0, &mut a);
        p.draw(2, 0, &mut b);
        assert_ne!(a.data, b.data);
    }

    #[test]
    fn camera_like_content_keeps_the_stamp() {
        let p = TestPattern::new(640, 480, 30).unwrap().camera_like();
        let mut f = Frame::black_i420(640, 480);
        let ms = 1_795_221_349_205u64;
        p.draw(7, ms, &mut f);
        assert_eq!(read_stamp(&f.data, 640), ms as u32);
        assert_eq!(p.info().name, "pattern (camera-like)");
    }

    #[test]
    fn odd_or_tiny_sizes_are_refused() {
        assert!(TestPattern::new(641, 480, 30).is_err());
        assert!(TestPattern::new(32, 32, 30).is_err());
        assert!(TestPattern::new(640, 480, 0).is_err());
    }
}
