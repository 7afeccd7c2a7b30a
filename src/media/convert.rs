//! Pixel conversions: camera formats to I420 (limited-range BT.601, what the
//! encoders are fed) and I420 to JPEG for `/api/snapshot.jpg`.
//!
//! Every function checks sizes against the buffer it is given and returns an
//! error instead of panicking: camera buffers come from drivers and USB cables.

use std::borrow::Cow;
use std::io;

use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType, SamplingFactor};
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::{Frame, PixelFormat};

/// Where a driver put the rows of a raw frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    /// Bytes per row of the first plane (V4L2 `bytesperline`).
    pub stride: usize,
    /// Rows reserved for the luma plane of planar formats; some drivers pad
    /// the plane beyond `height` (e.g. to a multiple of 16).
    pub luma_rows: u32,
}

impl Layout {
    /// Rows of `stride` bytes, planes packed without padding rows.
    pub fn new(width: u32, height: u32, stride: usize) -> Layout {
        Layout {
            width,
            height,
            stride,
            luma_rows: height,
        }
    }
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn invalid_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Bytes in an I420 frame; errors for sizes 4:2:0 can't represent.
pub fn i420_len(width: u32, height: u32) -> io::Result<usize> {
    if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(invalid_input(format!(
            "I420 needs an even, non-zero width and height, got {width}x{height}"
        )));
    }
    // Driver and JPEG header sizes: the chroma half can overflow too (and on
    // 32-bit Pis a usize is 32 bits).
    (width as usize)
        .checked_mul(height as usize)
        .and_then(|luma| luma.checked_add(luma / 2))
        .ok_or_else(|| invalid_input(format!("frame size {width}x{height} overflows")))
}

/// Checks that `src` holds a frame of layout `l` whose first plane has
/// `bytes_per_pixel`, followed (for planar formats) by chroma planes of
/// `chroma_rows` rows of `stride / 2` (YU12: 2 planes) or `stride` (NV12: 1 plane)
/// bytes. Driver-supplied numbers go through checked arithmetic.
fn check_layout(src: &[u8], l: &Layout, bytes_per_pixel: usize, chroma: Chroma) -> io::Result<()> {
    i420_len(l.width, l.height)?;
    let (w, h) = (l.width as usize, l.height as usize);
    let row = w * bytes_per_pixel;
    if l.stride < row {
        return Err(invalid_input(format!(
            "stride {} is shorter than a {}-pixel row ({row} bytes)",
            l.stride, l.width
        )));
    }
    if l.luma_rows < l.height {
        return Err(invalid_input(format!(
            "luma plane of {} rows can't hold {} rows",
            l.luma_rows, l.height
        )));
    }
    let overflow = || invalid_input(format!("layout {l:?} overflows"));
    let plane = |rows: usize, stride: usize, last_row: usize| {
        stride.checked_mul(rows - 1)?.checked_add(last_row)
    };
    // Packed formats end after the last row; planar ones after their last chroma row.
    let needed = match chroma {
        Chroma::Packed => plane(h, l.stride, row),
        Chroma::Interleaved => l
            .stride
            .checked_mul(l.luma_rows as usize)
            .and_then(|y| y.checked_add(plane(h / 2, l.stride, w)?)),
        Chroma::Planar => {
            let u_plane = (l.stride / 2).checked_mul(l.luma_rows as usize / 2);
            l.stride.checked_mul(l.luma_rows as usize).and_then(|y| {
                y.checked_add(u_plane?)?
                    .checked_add(plane(h / 2, l.stride / 2, w / 2)?)
            })
        }
    }
    .ok_or_else(overflow)?;
    if src.len() < needed {
        return Err(invalid_data(format!(
            "{}x{} frame needs {needed} bytes, buffer has {}",
            l.width,
            l.height,
            src.len()
        )));
    }
    Ok(())
}

/// How a raw format stores chroma after (or within) its first plane.
#[derive(Clone, Copy)]
enum Chroma {
    Packed,
    Interleaved,
    Planar,
}

/// Splits an I420 buffer of `width`x`height` into its planes.
fn planes_mut(dst: &mut [u8], width: usize, height: usize) -> (&mut [u8], &mut [u8], &mut [u8]) {
    let (y, chroma) = dst.split_at_mut(width * height);
    let (u, v) = chroma.split_at_mut(width * height / 4);
    (y, u, v)
}

fn avg(a: u8, b: u8) -> u8 {
    (u16::from(a) + u16::from(b)).div_ceil(2) as u8
}

/// Packed 4:2:2 `Y0 U Y1 V` to I420; chroma of each row pair is averaged.
pub fn yuyv_to_i420(src: &[u8], l: &Layout) -> io::Result<Vec<u8>> {
    check_layout(src, l, 2, Chroma::Packed)?;
    let (w, h) = (l.width as usize, l.height as usize);
    let mut out = vec![0u8; i420_len(l.width, l.height)?];
    let (yp, up, vp) = planes_mut(&mut out, w, h);
    for row in (0..h).step_by(2) {
        let top = &src[row * l.stride..][..w * 2];
        let bottom = &src[(row + 1) * l.stride..][..w * 2];
        yp[row * w..][..w]
            .iter_mut()
            .zip(top.iter().step_by(2))
            .for_each(|(d, s)| *d = *s);
        yp[(row + 1) * w..][..w]
            .iter_mut()
            .zip(bottom.iter().step_by(2))
            .for_each(|(d, s)| *d = *s);
        let crow = row / 2 * (w / 2);
        for (i, (t, b)) in top.chunks_exact(4).zip(bottom.chunks_exact(4)).enumerate() {
            up[crow + i] = avg(t[1], b[1]);
            vp[crow + i] = avg(t[3], b[3]);
        }
    }
    Ok(out)
}

/// NV12 (Y plane, then interleaved `U V` at half resolution) to I420.
pub fn nv12_to_i420(src: &[u8], l: &Layout) -> io::Result<Vec<u8>> {
    check_layout(src, l, 1, Chroma::Interleaved)?;
    let (w, h) = (l.width as usize, l.height as usize);
    let mut out = vec![0u8; i420_len(l.width, l.height)?];
    let (yp, up, vp) = planes_mut(&mut out, w, h);
    for row in 0..h {
        yp[row * w..][..w].copy_from_slice(&src[row * l.stride..][..w]);
    }
    let uv = &src[l.stride * l.luma_rows as usize..];
    for row in 0..h / 2 {
        let line = &uv[row * l.stride..][..w];
        for (i, pair) in line.chunks_exact(2).enumerate() {
            up[row * (w / 2) + i] = pair[0];
            vp[row * (w / 2) + i] = pair[1];
        }
    }
    Ok(out)
}

/// YU12 (planar I420 as drivers lay it out, possibly with row padding) to packed I420.
pub fn yu12_to_i420(src: &[u8], l: &Layout) -> io::Result<Vec<u8>> {
    check_layout(src, l, 1, Chroma::Planar)?;
    let (w, h) = (l.width as usize, l.height as usize);
    let (cstride, crows) = (l.stride / 2, l.luma_rows as usize / 2);
    let mut out = vec![0u8; i420_len(l.width, l.height)?];
    let (yp, up, vp) = planes_mut(&mut out, w, h);
    for row in 0..h {
        yp[row * w..][..w].copy_from_slice(&src[row * l.stride..][..w]);
    }
    let u_src = &src[l.stride * l.luma_rows as usize..];
    let v_src = &u_src[cstride * crows..];
    for row in 0..h / 2 {
        up[row * (w / 2)..][..w / 2].copy_from_slice(&u_src[row * cstride..][..w / 2]);
        vp[row * (w / 2)..][..w / 2].copy_from_slice(&v_src[row * cstride..][..w / 2]);
    }
    Ok(out)
}

/// JFIF stores full-range values; I420 for the encoders is limited range.
fn full_to_limited_luma(v: u8) -> u8 {
    (16 + (u32::from(v) * 219 + 127) / 255) as u8
}

fn full_to_limited_chroma(v: u8) -> u8 {
    let c = (i32::from(v) - 128) * 224;
    // Round half away from zero so the mapping is symmetric around 128.
    let c = if c >= 0 {
        (c + 127) / 255
    } else {
        (c - 127) / 255
    };
    (128 + c) as u8
}

fn limited_to_full_luma(v: u8) -> u8 {
    ((i32::from(v) - 16) * 255 + 109)
        .div_euclid(219)
        .clamp(0, 255) as u8
}

fn limited_to_full_chroma(v: u8) -> u8 {
    let c = (i32::from(v) - 128) * 255;
    let c = if c >= 0 {
        (c + 112) / 224
    } else {
        (c - 112) / 224
    };
    (128 + c).clamp(0, 255) as u8
}

fn lut(f: fn(u8) -> u8) -> [u8; 256] {
    std::array::from_fn(|i| f(i as u8))
}

/// Webcam MJPEG often omits the Huffman tables (the AVI1 convention of using
/// the ones from the JPEG spec); insert the standard tables when no DHT
/// segment comes before the scan.
fn with_default_huffman_tables(jpeg: &[u8]) -> io::Result<Cow<'_, [u8]>> {
    if jpeg.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(invalid_data(
            "MJPEG frame does not start with a JPEG SOI marker".into(),
        ));
    }
    let mut pos = 2;
    loop {
        // Markers may be preceded by fill bytes (0xFF).
        while jpeg.get(pos) == Some(&0xFF) && jpeg.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (jpeg.get(pos), jpeg.get(pos + 1)) else {
            return Err(invalid_data("MJPEG frame ends before its scan".into()));
        };
        match marker {
            0xC4 => return Ok(Cow::Borrowed(jpeg)),
            0xDA => {
                let mut fixed = Vec::with_capacity(jpeg.len() + DEFAULT_DHT.len());
                fixed.extend_from_slice(&jpeg[..pos]);
                fixed.extend_from_slice(&DEFAULT_DHT);
                fixed.extend_from_slice(&jpeg[pos..]);
                return Ok(Cow::Owned(fixed));
            }
            // Standalone markers without a length field.
            0x01 | 0xD0..=0xD7 => pos += 2,
            _ => {
                let len = match jpeg.get(pos + 2..pos + 4) {
                    Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
                    _ => return Err(invalid_data("MJPEG frame ends inside a marker".into())),
                };
                if len < 2 {
                    return Err(invalid_data(format!(
                        "JPEG marker {marker:#04x} has length {len}"
                    )));
                }
                pos += 2 + len;
            }
        }
    }
}

/// An I420 picture decoded from a JPEG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420Image {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// Decodes one (M)JPEG frame to I420, whatever its chroma subsampling.
pub fn jpeg_to_i420(jpeg: &[u8]) -> io::Result<I420Image> {
    let jpeg = with_default_huffman_tables(jpeg)?;
    let decode = |colorspace: ColorSpace| {
        let options = DecoderOptions::default().jpeg_set_out_colorspace(colorspace);
        let mut decoder = JpegDecoder::new_with_options(ZCursor::new(&jpeg[..]), options);
        decoder
            .decode_headers()
            .map_err(|e| invalid_data(format!("JPEG header: {e:?}")))?;
        let input = decoder.input_colorspace();
        let (w, h) = decoder.dimensions().unwrap_or((0, 0));
        let (w, h) = (u32::try_from(w).unwrap_or(0), u32::try_from(h).unwrap_or(0));
        Ok::<_, io::Error>((decoder, input, w, h))
    };
    let (mut decoder, input, width, height) = decode(ColorSpace::YCbCr)?;
    let luma_only = match input {
        Some(ColorSpace::YCbCr) => false,
        Some(ColorSpace::Luma) => true,
        other => {
            return Err(invalid_data(format!(
                "unsupported JPEG colour space {other:?}"
            )))
        }
    };
    let len = i420_len(width, height)?;
    if luma_only {
        decoder = decode(ColorSpace::Luma)?.0;
    }
    let pixels = decoder
        .decode()
        .map_err(|e| invalid_data(format!("JPEG data: {e:?}")))?;
    let (w, h) = (width as usize, height as usize);
    let components = if luma_only { 1 } else { 3 };
    if pixels.len() < w * h * components {
        return Err(invalid_data(format!(
            "JPEG decoder returned {} bytes for {w}x{h}",
            pixels.len()
        )));
    }
    let (luma, chroma) = (lut(full_to_limited_luma), lut(full_to_limited_chroma));
    let mut out = vec![128u8; len];
    let (yp, up, vp) = planes_mut(&mut out, w, h);
    for (d, s) in yp.iter_mut().zip(pixels.iter().step_by(components)) {
        *d = luma[usize::from(*s)];
    }
    if !luma_only {
        // Decoder output is 4:4:4 YCbCr; average each 2x2 block of chroma.
        let at = |x: usize, y: usize, c: usize| u16::from(pixels[(y * w + x) * 3 + c]);
        for cy in 0..h / 2 {
            for cx in 0..w / 2 {
                let (x, y) = (cx * 2, cy * 2);
                let sum = |c| at(x, y, c) + at(x + 1, y, c) + at(x, y + 1, c) + at(x + 1, y + 1, c);
                up[cy * (w / 2) + cx] = chroma[usize::from((sum(1) + 2) / 4)];
                vp[cy * (w / 2) + cx] = chroma[usize::from((sum(2) + 2) / 4)];
            }
        }
    }
    Ok(I420Image {
        width,
        height,
        data: out,
    })
}

/// Feeds the JPEG encoder rows straight from the I420 planes.
struct I420Rows<'a> {
    width: u16,
    height: u16,
    y: &'a [u8],
    u: &'a [u8],
    v: &'a [u8],
    luma: [u8; 256],
    chroma: [u8; 256],
}

impl ImageBuffer for I420Rows<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, row: u16, buffers: &mut [Vec<u8>; 4]) {
        let w = usize::from(self.width);
        let row = usize::from(row);
        let y = &self.y[row * w..][..w];
        let u = &self.u[row / 2 * (w / 2)..][..w / 2];
        let v = &self.v[row / 2 * (w / 2)..][..w / 2];
        buffers[0].extend(y.iter().map(|&p| self.luma[usize::from(p)]));
        for (&cu, &cv) in u.iter().zip(v) {
            let (cu, cv) = (self.chroma[usize::from(cu)], self.chroma[usize::from(cv)]);
            buffers[1].extend([cu, cu]);
            buffers[2].extend([cv, cv]);
        }
    }
}

/// Encodes an I420 frame as a baseline 4:2:0 JPEG (`quality` 1..=100).
pub fn i420_to_jpeg(frame: &Frame, quality: u8) -> io::Result<Vec<u8>> {
    if frame.format != PixelFormat::I420 {
        return Err(invalid_input(format!(
            "snapshot needs an I420 frame, got {:?}",
            frame.format
        )));
    }
    let len = i420_len(frame.width, frame.height)?;
    if frame.data.len() < len {
        return Err(invalid_data(format!(
            "I420 {}x{} frame has {} of {len} bytes",
            frame.width,
            frame.height,
            frame.data.len()
        )));
    }
    let (Ok(width), Ok(height)) = (u16::try_from(frame.width), u16::try_from(frame.height)) else {
        return Err(invalid_input(format!(
            "{}x{} is too large for JPEG",
            frame.width, frame.height
        )));
    };
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (y, chroma) = frame.data.split_at(w * h);
    let (u, v) = chroma.split_at(w * h / 4);
    let rows = I420Rows {
        width,
        height,
        y,
        u,
        v,
        luma: lut(limited_to_full_luma),
        chroma: lut(limited_to_full_chroma),
    };
    let mut out = Vec::with_capacity(w * h / 8);
    let mut encoder = Encoder::new(&mut out, quality.clamp(1, 100));
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder
        .encode_image(rows)
        .map_err(|e| io::Error::other(format!("JPEG encode: {e}")))?;
    Ok(out)
}

/// The standard Huffman tables (JPEG spec Annex K.3) as one DHT segment.
const DEFAULT_DHT: [u8; 420] = {
    const DC_LUMA_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    const DC_CHROMA_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
    const DC_VALUES: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const AC_LUMA_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D];
    const AC_LUMA_VALUES: [u8; 162] = [
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
        0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52,
        0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25,
        0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45,
        0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64,
        0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83,
        0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
        0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6,
        0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3,
        0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8,
        0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
    ];
    const AC_CHROMA_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
    const AC_CHROMA_VALUES: [u8; 162] = [
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
        0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33,
        0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18,
        0x19, 0x1A, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44,
        0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63,
        0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A,
        0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
        0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4,
        0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA,
        0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7,
        0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
    ];
    // (class << 4 | id, code-length counts, values)
    const TABLES: [(u8, &[u8; 16], &[u8]); 4] = [
        (0x00, &DC_LUMA_BITS, &DC_VALUES),
        (0x10, &AC_LUMA_BITS, &AC_LUMA_VALUES),
        (0x01, &DC_CHROMA_BITS, &DC_VALUES),
        (0x11, &AC_CHROMA_BITS, &AC_CHROMA_VALUES),
    ];
    let mut out = [0u8; 420];
    out[0] = 0xFF;
    out[1] = 0xC4;
    out[2] = (418 >> 8) as u8;
    out[3] = (418 & 0xFF) as u8;
    let mut pos = 4;
    let mut t = 0;
    while t < TABLES.len() {
        let (class_id, bits, values) = TABLES[t];
        out[pos] = class_id;
        pos += 1;
        let mut i = 0;
        while i < 16 {
            out[pos] = bits[i];
            pos += 1;
            i += 1;
        }
        let mut i = 0;
        while i < values.len() {
            out[pos] = values[i];
            pos += 1;
            i += 1;
        }
        t += 1;
    }
    assert!(pos == 420, "DHT segment length");
    out
};

#[cfg(test)]
mod tests {
    use super::*;
    use jpeg_encoder::ColorType;

    fn rgb_to_jpeg(rgb: &[u8], width: u16, height: u16, sampling: SamplingFactor) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, 100);
        encoder.set_sampling_factor(sampling);
        encoder.encode(rgb, width, height, ColorType::Rgb).unwrap();
        out
    }

    #[test]
    fn yuyv_4x2_gives_exact_planes() {
        #[rustfmt::skip]
        let src = [
            10, 100, 20, 200, 30, 110, 40, 210,
            50, 102, 60, 202, 70, 112, 80, 212,
        ];
        let out = yuyv_to_i420(&src, &Layout::new(4, 2, 8)).unwrap();
        assert_eq!(out, [10, 20, 30, 40, 50, 60, 70, 80, 101, 111, 201, 211]);
    }

    #[test]
    fn yuyv_honours_stride_padding() {
        #[rustfmt::skip]
        let src = [
            1, 128, 2, 128, 9, 9,
            3, 130, 4, 126, 9, 9,
        ];
        let out = yuyv_to_i420(&src, &Layout::new(2, 2, 6)).unwrap();
        assert_eq!(out, [1, 2, 3, 4, 129, 127]);
    }

    #[test]
    fn odd_or_short_input_is_an_error_not_a_panic() {
        let e = yuyv_to_i420(&[0; 24], &Layout::new(3, 2, 6)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("3x2"), "{e}");
        assert!(yuyv_to_i420(&[0; 24], &Layout::new(4, 3, 8)).is_err());
        assert!(yuyv_to_i420(&[0; 15], &Layout::new(4, 2, 8)).is_err());
        assert!(
            yuyv_to_i420(&[0; 16], &Layout::new(4, 2, 4)).is_err(),
            "stride < row"
        );
        assert!(nv12_to_i420(&[0; 11], &Layout::new(4, 2, 4)).is_err());
        assert!(yu12_to_i420(&[0; 11], &Layout::new(4, 2, 4)).is_err());
        assert!(i420_len(0, 2).is_err());
        assert!(jpeg_to_i420(&[]).is_err());
        assert!(jpeg_to_i420(&[0xFF, 0xD8, 0xFF]).is_err());
        assert!(jpeg_to_i420(&[0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x01]).is_err());
    }

    #[test]
    fn nv12_deinterleaves_chroma() {
        let src = [1, 2, 3, 4, 5, 6, 7, 8, 100, 200, 101, 201];
        let out = nv12_to_i420(&src, &Layout::new(4, 2, 4)).unwrap();
        assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8, 100, 101, 200, 201]);
    }

    #[test]
    fn nv12_with_stride_and_padded_luma_plane() {
        // Width 2, stride 4, luma plane padded to 4 rows.
        let mut src = vec![0xEE; 4 * 4 + 4];
        src[0..2].copy_from_slice(&[1, 2]);
        src[4..6].copy_from_slice(&[3, 4]);
        src[16..18].copy_from_slice(&[50, 60]);
        let layout = Layout {
            luma_rows: 4,
            ..Layout::new(2, 2, 4)
        };
        assert_eq!(nv12_to_i420(&src, &layout).unwrap(), [1, 2, 3, 4, 50, 60]);
    }

    #[test]
    fn yu12_repacks_padded_planes() {
        // Width 2, stride 4: Y rows of 4, U/V rows of 2.
        let src = [1, 2, 0, 0, 3, 4, 0, 0, 50, 0, 60, 0];
        assert_eq!(
            yu12_to_i420(&src, &Layout::new(2, 2, 4)).unwrap(),
            [1, 2, 3, 4, 50, 60]
        );
        let packed = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        assert_eq!(
            yu12_to_i420(&packed, &Layout::new(4, 2, 4)).unwrap(),
            packed
        );
    }

    #[test]
    fn range_conversions_hit_the_endpoints() {
        assert_eq!(
            (full_to_limited_luma(0), full_to_limited_luma(255)),
            (16, 235)
        );
        assert_eq!(
            (full_to_limited_chroma(0), full_to_limited_chroma(128)),
            (16, 128)
        );
        assert_eq!(full_to_limited_chroma(255), 240);
        assert_eq!(
            (limited_to_full_luma(16), limited_to_full_luma(235)),
            (0, 255)
        );
        assert_eq!(
            (limited_to_full_luma(0), limited_to_full_luma(255)),
            (0, 255)
        );
        assert_eq!(
            (limited_to_full_chroma(16), limited_to_full_chroma(240)),
            (0, 255)
        );
        assert_eq!(limited_to_full_chroma(128), 128);
        for v in 0..=255u8 {
            assert!(limited_to_full_luma(full_to_limited_luma(v)).abs_diff(v) <= 1);
        }
    }

    fn solid_rgb(width: usize, height: usize, rgb: [u8; 3]) -> Vec<u8> {
        rgb.iter()
            .copied()
            .cycle()
            .take(width * height * 3)
            .collect()
    }

    #[test]
    fn jpeg_grey_decodes_to_known_i420() {
        let jpeg = rgb_to_jpeg(
            &solid_rgb(16, 8, [128, 128, 128]),
            16,
            8,
            SamplingFactor::F_2_1,
        );
        let img = jpeg_to_i420(&jpeg).unwrap();
        assert_eq!((img.width, img.height, img.data.len()), (16, 8, 192));
        // Full-range 128 maps to limited 126 (16 + 128 * 219 / 255).
        assert!(
            img.data[..128].iter().all(|&y| y.abs_diff(126) <= 1),
            "{:?}",
            &img.data[..8]
        );
        assert!(img.data[128..].iter().all(|&c| c.abs_diff(128) <= 1));
    }

    #[test]
    fn jpeg_colour_survives_every_subsampling() {
        // Pure red: BT.601 limited range is Y 81, U 90, V 240.
        for sampling in [
            SamplingFactor::F_1_1,
            SamplingFactor::F_2_1,
            SamplingFactor::F_2_2,
        ] {
            let jpeg = rgb_to_jpeg(&solid_rgb(32, 16, [255, 0, 0]), 32, 16, sampling);
            let img = jpeg_to_i420(&jpeg).unwrap();
            let (y, u, v) = (
                img.data[100],
                img.data[32 * 16 + 5],
                img.data[32 * 16 + 128 + 5],
            );
            assert!(
                y.abs_diff(81) <= 2 && u.abs_diff(90) <= 2 && v.abs_diff(240) <= 2,
                "{sampling:?}: {y} {u} {v}"
            );
        }
    }

    #[test]
    fn mjpeg_without_huffman_tables_gets_the_standard_ones() {
        let jpeg = rgb_to_jpeg(
            &solid_rgb(16, 16, [0, 0, 255]),
            16,
            16,
            SamplingFactor::F_2_1,
        );
        let expected = jpeg_to_i420(&jpeg).unwrap();
        // Strip the encoder's DHT segments (it writes the standard tables).
        let mut stripped = jpeg[..2].to_vec();
        let mut pos = 2;
        while jpeg[pos + 1] != 0xDA {
            let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
            if jpeg[pos + 1] != 0xC4 {
                stripped.extend_from_slice(&jpeg[pos..pos + 2 + len]);
            }
            pos += 2 + len;
        }
        stripped.extend_from_slice(&jpeg[pos..]);
        assert!(!stripped.windows(2).any(|w| w == [0xFF, 0xC4]));
        assert_eq!(jpeg_to_i420(&stripped).unwrap(), expected);
    }

    #[test]
    fn odd_sized_jpeg_is_rejected() {
        let jpeg = rgb_to_jpeg(&solid_rgb(15, 8, [1, 2, 3]), 15, 8, SamplingFactor::F_1_1);
        assert_eq!(
            jpeg_to_i420(&jpeg).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn snapshot_round_trips_through_jpeg() {
        // Left half white, right half black, neutral chroma.
        let (w, h) = (32usize, 16usize);
        let mut data = vec![128u8; w * h * 3 / 2];
        for row in 0..h {
            for x in 0..w {
                data[row * w + x] = if x < w / 2 { 235 } else { 16 };
            }
        }
        let jpeg = i420_to_jpeg(&Frame::i420(32, 16, data), 95).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9]);
        let back = jpeg_to_i420(&jpeg).unwrap();
        assert_eq!((back.width, back.height), (32, 16));
        assert!(back.data[2].abs_diff(235) <= 3, "{}", back.data[2]);
        assert!(back.data[w - 3].abs_diff(16) <= 3, "{}", back.data[w - 3]);
    }

    #[test]
    fn snapshot_rejects_what_it_cannot_encode() {
        let h264 = Frame {
            format: PixelFormat::H264,
            ..Frame::i420(16, 16, vec![0; 384])
        };
        assert!(i420_to_jpeg(&h264, 80).is_err());
        assert!(i420_to_jpeg(&Frame::i420(16, 16, vec![0; 100]), 80).is_err());
        assert!(i420_to_jpeg(&Frame::i420(15, 16, vec![0; 400]), 80).is_err());
    }

    #[test]
    fn default_dht_is_well_formed() {
        assert_eq!(&DEFAULT_DHT[..4], &[0xFF, 0xC4, 0x01, 0xA2]);
        // Each table's value count equals the sum of its code-length counts.
        let mut pos = 4;
        for _ in 0..4 {
            let n: usize = DEFAULT_DHT[pos + 1..pos + 17]
                .iter()
                .map(|&b| usize::from(b))
                .sum();
            pos += 17 + n;
        }
        assert_eq!(pos, DEFAULT_DHT.len());
    }

    /// Found by `fuzz/run.sh` (convert): a driver's 4294967294x4294967294
    /// frame overflowed the I420 size (luma + chroma) instead of being refused.
    #[test]
    fn huge_sizes_are_refused_not_overflowed() {
        let huge = u32::MAX - 1;
        assert_eq!(
            i420_len(huge, huge).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let layout = Layout {
            width: huge,
            height: huge,
            stride: usize::MAX - 1,
            luma_rows: u32::MAX,
        };
        assert!(yuyv_to_i420(&[0; 16], &layout).is_err());
        assert!(nv12_to_i420(&[0; 16], &layout).is_err());
        assert!(yu12_to_i420(&[0; 16], &layout).is_err());
    }
}
