//! The raw camera format converters (`yuyv_to_i420`, `nv12_to_i420`,
//! `yu12_to_i420`) with arbitrary sizes, strides, padded luma planes and
//! buffer lengths, as V4L2 drivers report them.
//!
//! Input: a header, then the frame buffer. Header: a format byte (bit 7:
//! "huge" numbers, read as little-endian u32 width/height and u64 stride and
//! luma rows, to probe the overflow checks), then width, height, stride
//! padding and extra luma rows (one byte each, or as above).
//!
//! Properties: Ok only for even, non-zero sizes, with exactly an I420 frame
//! of that size; Y comes straight from the source rows (every other byte for
//! YUYV); YU12 without padding is copied unchanged; a buffer is accepted
//! exactly when it holds the layout (worked out here independently).
#![no_main]

use libfuzzer_sys::fuzz_target;
use telepi::media::convert::{i420_len, nv12_to_i420, yu12_to_i420, yuyv_to_i420, Layout};

fn take<const N: usize>(data: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = data.split_first_chunk::<N>()?;
    *data = rest;
    Some(*head)
}

/// Whether a frame of `l` fits in `len` bytes, worked out independently of
/// the converters (in u128, so nothing overflows).
fn acceptable(l: &Layout, bytes_per_pixel: usize, kind: u8, len: usize) -> bool {
    let (w, h) = (u128::from(l.width), u128::from(l.height));
    let (stride, rows) = (l.stride as u128, u128::from(l.luma_rows));
    if w == 0 || h == 0 || w % 2 == 1 || h % 2 == 1 {
        return false;
    }
    if stride < w * bytes_per_pixel as u128 || rows < h {
        return false;
    }
    let needed = match kind {
        0 => stride * (h - 1) + w * 2,
        1 => stride * rows + stride * (h / 2 - 1) + w,
        _ => stride * rows + stride / 2 * (rows / 2) + stride / 2 * (h / 2 - 1) + w / 2,
    };
    // The converters' own arithmetic is in usize: bigger layouts are refused.
    needed <= len as u128
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let Some([format]) = take::<1>(&mut data) else {
        return;
    };
    let bytes_per_pixel = if format % 3 == 0 { 2 } else { 1 };
    let layout = if format & 0x80 != 0 {
        let (Some(w), Some(h), Some(stride), Some(rows)) = (
            take::<4>(&mut data),
            take::<4>(&mut data),
            take::<8>(&mut data),
            take::<4>(&mut data),
        ) else {
            return;
        };
        Layout {
            width: u32::from_le_bytes(w),
            height: u32::from_le_bytes(h),
            stride: u64::from_le_bytes(stride) as usize,
            luma_rows: u32::from_le_bytes(rows),
        }
    } else {
        let Some([w, h, pad, extra_rows]) = take::<4>(&mut data) else {
            return;
        };
        let (w, h) = (u32::from(w), u32::from(h));
        // Bit 6 of the format byte: the stride is the raw byte (maybe too short).
        let stride = if format & 0x40 != 0 {
            usize::from(pad)
        } else {
            w as usize * bytes_per_pixel + usize::from(pad % 64)
        };
        Layout {
            luma_rows: h + u32::from(extra_rows % 16),
            ..Layout::new(w, h, stride)
        }
    };
    let src = data;
    let convert = match format % 3 {
        0 => yuyv_to_i420,
        1 => nv12_to_i420,
        _ => yu12_to_i420,
    };
    let result = convert(src, &layout);
    assert_eq!(
        result.is_ok(),
        acceptable(&layout, bytes_per_pixel, format % 3, src.len()),
        "{layout:?}, {} bytes: {:?}",
        src.len(),
        result.as_ref().err()
    );
    let Ok(out) = result else {
        return;
    };
    let (w, h) = (layout.width as usize, layout.height as usize);
    assert!(w > 0 && h > 0 && w % 2 == 0 && h % 2 == 0, "{layout:?}");
    assert_eq!(
        Ok(out.len()),
        i420_len(layout.width, layout.height).map_err(|_| ())
    );
    assert_eq!(out.len(), w * h * 3 / 2);
    for row in 0..h {
        let line = &src[row * layout.stride..];
        let y = &out[row * w..][..w];
        if bytes_per_pixel == 2 {
            assert!(y.iter().zip(line.iter().step_by(2)).all(|(a, b)| a == b));
        } else {
            assert_eq!(y, &line[..w]);
        }
    }
    if format % 3 == 2 && layout.stride == w && layout.luma_rows as usize == h {
        assert_eq!(out, src[..out.len()], "unpadded YU12 is I420 already");
    }
});
