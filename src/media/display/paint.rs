//! A decoded I420 picture onto a screen: BT.601 limited range (what the
//! encoders and decoders here use) to RGB in the screen's pixel layout,
//! scaled to fit keeping its aspect, centred, with black bars around it.

use std::io;
use std::ops::Range;

use super::{Geometry, PixelLayout};
use crate::media::convert::i420_len;
use crate::media::Frame;

/// Where the picture goes on the screen: the largest rectangle of the
/// picture's aspect that fits, centred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub columns: Range<usize>,
    pub rows: Range<usize>,
}

pub fn place(picture: (u32, u32), screen: (u32, u32)) -> Placement {
    let (pw, ph) = (u64::from(picture.0.max(1)), u64::from(picture.1.max(1)));
    let (sw, sh) = (u64::from(screen.0), u64::from(screen.1));
    // Full width if the picture is relatively wider than the screen, else full height.
    let (w, h) = if sw * ph <= sh * pw {
        (sw, (ph * sw / pw).min(sh))
    } else {
        ((pw * sh / ph).min(sw), sh)
    };
    let left = ((sw - w) / 2) as usize;
    let top = ((sh - h) / 2) as usize;
    Placement {
        columns: left..left + w as usize,
        rows: top..top + h as usize,
    }
}

/// Paints `frame` (I420) over the whole of `screen` (one image in
/// `geometry`'s layout: `stride` bytes per row): the picture where
/// [`place`] puts it, black elsewhere.
pub fn paint(frame: &Frame, geometry: &Geometry, screen: &mut [u8]) -> io::Result<()> {
    let (fw, fh) = (frame.width as usize, frame.height as usize);
    if frame.data.len() < i420_len(frame.width, frame.height)? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}x{} I420 frame of {} bytes is too short",
                fw,
                fh,
                frame.data.len()
            ),
        ));
    }
    check_screen(geometry, screen)?;
    let layout = &geometry.layout;
    let bytes = layout.bytes_per_pixel();
    let placed = place(
        (frame.width, frame.height),
        (geometry.width, geometry.height),
    );
    let (y_plane, chroma) = frame.data.split_at(fw * fh);
    let (u_plane, v_plane) = chroma.split_at((fw / 2) * (fh / 2));
    // Nearest neighbour: the source column of every screen column of the picture.
    let (cols, rows) = (placed.columns.len(), placed.rows.len());
    let source_x: Vec<usize> = (0..cols).map(|x| x * fw / cols.max(1)).collect();
    let black = layout.pack(0, 0, 0);
    for (y, line) in screen
        .chunks_exact_mut(geometry.stride)
        .take(geometry.height as usize)
        .enumerate()
    {
        let line = &mut line[..geometry.width as usize * bytes];
        if !placed.rows.contains(&y) {
            fill(line, black, bytes);
            continue;
        }
        let sy = (y - placed.rows.start) * fh / rows;
        let (left, rest) = line.split_at_mut(placed.columns.start * bytes);
        let (picture, right) = rest.split_at_mut(cols * bytes);
        fill(left, black, bytes);
        fill(right, black, bytes);
        let luma = &y_plane[sy * fw..][..fw];
        let u = &u_plane[(sy / 2) * (fw / 2)..][..fw / 2];
        let v = &v_plane[(sy / 2) * (fw / 2)..][..fw / 2];
        for (pixel, &sx) in picture.chunks_exact_mut(bytes).zip(&source_x) {
            let (r, g, b) = yuv_to_rgb(luma[sx], u[sx / 2], v[sx / 2]);
            put(pixel, layout.pack(r, g, b));
        }
    }
    Ok(())
}

/// Paints `screen` all black.
pub fn clear(geometry: &Geometry, screen: &mut [u8]) -> io::Result<()> {
    check_screen(geometry, screen)?;
    screen.fill(0);
    Ok(())
}

fn check_screen(geometry: &Geometry, screen: &[u8]) -> io::Result<()> {
    if screen.len() < geometry.image_len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "screen buffer of {} bytes is smaller than {}x{} at stride {}",
                screen.len(),
                geometry.width,
                geometry.height,
                geometry.stride
            ),
        ));
    }
    Ok(())
}

fn fill(line: &mut [u8], value: u32, bytes: usize) {
    for pixel in line.chunks_exact_mut(bytes) {
        put(pixel, value);
    }
}

/// Framebuffers hold pixels in the CPU's byte order.
fn put(pixel: &mut [u8], value: u32) {
    match pixel.len() {
        2 => pixel.copy_from_slice(&(value as u16).to_ne_bytes()),
        _ => pixel.copy_from_slice(&value.to_ne_bytes()),
    }
}

/// BT.601 limited range to full-range RGB, in 8.8 fixed point.
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> (u8, u8, u8) {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    (
        clamp(c + 409 * e),
        clamp(c - 100 * d - 208 * e),
        clamp(c + 516 * d),
    )
}

impl PixelLayout {
    /// One pixel's value: each 8-bit channel cut to its width and shifted to its place.
    pub fn pack(&self, r: u8, g: u8, b: u8) -> u32 {
        let channel =
            |value: u8, (offset, length): (u32, u32)| (u32::from(value) >> (8 - length)) << offset;
        channel(r, self.red) | channel(g, self.green) | channel(b, self.blue)
    }

    /// The 8-bit channels of a pixel value (the low bits of narrow channels are zero).
    pub fn unpack(&self, value: u32) -> (u8, u8, u8) {
        let channel = |(offset, length): (u32, u32)| {
            (((value >> offset) & ((1 << length) - 1)) << (8 - length)) as u8
        };
        (channel(self.red), channel(self.green), channel(self.blue))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(width: u32, height: u32, layout: PixelLayout, pad: usize) -> Geometry {
        Geometry {
            width,
            height,
            stride: width as usize * layout.bytes_per_pixel() + pad,
            layout,
        }
    }

    /// An I420 frame whose left half is one colour and right half another.
    fn halves(width: u32, height: u32, left: (u8, u8, u8), right: (u8, u8, u8)) -> Frame {
        let (w, h) = (width as usize, height as usize);
        let mut data = Vec::new();
        for plane in 0..3 {
            let (pw, ph) = if plane == 0 { (w, h) } else { (w / 2, h / 2) };
            let pick = |c: (u8, u8, u8)| [c.0, c.1, c.2][plane];
            for _ in 0..ph {
                data.extend((0..pw).map(|x| pick(if x < pw / 2 { left } else { right })));
            }
        }
        Frame::i420(width, height, data)
    }

    fn pixel(screen: &[u8], g: &Geometry, x: usize, y: usize) -> (u8, u8, u8) {
        let bytes = g.layout.bytes_per_pixel();
        let at = &screen[y * g.stride + x * bytes..][..bytes];
        let value = match bytes {
            2 => u32::from(u16::from_ne_bytes([at[0], at[1]])),
            _ => u32::from_ne_bytes([at[0], at[1], at[2], at[3]]),
        };
        g.layout.unpack(value)
    }

    #[test]
    fn limited_range_black_white_and_primaries_become_rgb() {
        assert_eq!(yuv_to_rgb(16, 128, 128), (0, 0, 0));
        assert_eq!(yuv_to_rgb(235, 128, 128), (255, 255, 255));
        let (r, g, b) = yuv_to_rgb(81, 90, 240);
        assert!(r > 250 && g < 5 && b < 5, "red: {r} {g} {b}");
        let (r, g, b) = yuv_to_rgb(41, 240, 110);
        assert!(r < 5 && g < 5 && b > 250, "blue: {r} {g} {b}");
    }

    #[test]
    fn both_layouts_pack_channels_where_the_framebuffer_wants_them() {
        assert_eq!(PixelLayout::RGB565.pack(255, 0, 0), 0xf800);
        assert_eq!(PixelLayout::RGB565.pack(0, 255, 0), 0x07e0);
        assert_eq!(PixelLayout::RGB565.pack(0, 0, 255), 0x001f);
        assert_eq!(PixelLayout::XRGB8888.pack(0x12, 0x34, 0x56), 0x0012_3456);
        assert_eq!(
            PixelLayout::XRGB8888.unpack(0x0012_3456),
            (0x12, 0x34, 0x56)
        );
        assert_eq!(PixelLayout::RGB565.unpack(0xf800), (0xf8, 0, 0));
    }

    #[test]
    fn a_wide_picture_on_a_tall_screen_gets_bars_above_and_below() {
        assert_eq!(
            place((320, 180), (640, 480)),
            Placement {
                columns: 0..640,
                rows: 60..420
            }
        );
        assert_eq!(
            place((320, 240), (1280, 720)),
            Placement {
                columns: 160..1120,
                rows: 0..720
            }
        );
        assert_eq!(
            place((640, 480), (640, 480)),
            Placement {
                columns: 0..640,
                rows: 0..480
            }
        );
    }

    #[test]
    fn the_picture_is_scaled_letterboxed_and_coloured_in_either_layout() {
        let red = (81, 90, 240);
        let blue = (41, 240, 110);
        let frame = halves(64, 36, red, blue);
        for layout in [PixelLayout::RGB565, PixelLayout::XRGB8888] {
            // A padded stride: rows are not packed end to end.
            let g = geometry(160, 120, layout, 12);
            let mut screen = vec![0xaa; g.image_len()];
            paint(&frame, &g, &mut screen).unwrap();
            // 64x36 → 160x90, rows 15..105.
            for (x, y) in [(0, 0), (159, 14), (80, 105), (80, 119)] {
                assert_eq!(pixel(&screen, &g, x, y), (0, 0, 0), "bar at {x},{y}");
            }
            let (r, g_, b) = pixel(&screen, &g, 10, 60);
            assert!(r > 240 && g_ < 8 && b < 8, "left half red: {r} {g_} {b}");
            let (r, g_, b) = pixel(&screen, &g, 150, 15);
            assert!(r < 8 && g_ < 8 && b > 240, "right half blue: {r} {g_} {b}");
            // The split lands in the middle of the screen.
            assert!(pixel(&screen, &g, 79, 60).0 > 240);
            assert!(pixel(&screen, &g, 80, 60).2 > 240);
        }
    }

    #[test]
    fn short_frames_and_small_screens_are_errors() {
        let g = geometry(32, 32, PixelLayout::XRGB8888, 0);
        let mut frame = halves(16, 16, (16, 128, 128), (16, 128, 128));
        let mut small = vec![0; g.image_len() - 1];
        assert!(paint(&frame, &g, &mut small).is_err());
        assert!(clear(&g, &mut small).is_err());
        frame.data.truncate(100);
        let mut screen = vec![0; g.image_len()];
        assert!(paint(&frame, &g, &mut screen).is_err());
    }
}
