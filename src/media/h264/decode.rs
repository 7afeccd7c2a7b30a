//! Pictures out of access units, with openh264's decoder: a snapshot of a
//! camera that only delivers H.264 (one IDR), and the local display (a stream).

use std::io;

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

use crate::media::convert::i420_len;
use crate::media::Frame;

/// Decodes a self-contained access unit (SPS, PPS and an IDR) into a packed
/// I420 frame. A fresh decoder each time: a snapshot is rare and must not
/// depend on what came before. Corrupt input is an error.
pub fn decode_idr(access_unit: &[u8]) -> io::Result<Frame> {
    StreamDecoder::new()?
        .decode(access_unit)?
        .ok_or_else(|| invalid("the keyframe decoded to no picture".into()))
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// One decoder for a whole stream (an IDR, then the frames that refer to
/// it), as a local screen shows it.
pub struct StreamDecoder(Decoder);

impl StreamDecoder {
    pub fn new() -> io::Result<StreamDecoder> {
        let decoder = Decoder::new().map_err(|e| io::Error::other(e.to_string()))?;
        Ok(StreamDecoder(decoder))
    }

    /// Decodes the next access unit into a packed I420 frame; `None` when it
    /// gave no picture yet. Corrupt input is an error.
    pub fn decode(&mut self, access_unit: &[u8]) -> io::Result<Option<Frame>> {
        let Some(picture) = self
            .0
            .decode(access_unit)
            .map_err(|e| invalid(format!("the H.264 decoder rejected the access unit: {e}")))?
        else {
            return Ok(None);
        };
        let (width, height) = picture.dimensions();
        let (y_stride, u_stride, v_stride) = picture.strides();
        let too_large = || invalid(format!("decoded picture {width}x{height} is too large"));
        let (w, h) = (
            u32::try_from(width).map_err(|_| too_large())?,
            u32::try_from(height).map_err(|_| too_large())?,
        );
        let mut data = Vec::with_capacity(i420_len(w, h)?);
        copy_plane(&mut data, picture.y(), y_stride, width, height)?;
        copy_plane(&mut data, picture.u(), u_stride, width / 2, height / 2)?;
        copy_plane(&mut data, picture.v(), v_stride, width / 2, height / 2)?;
        Ok(Some(Frame::i420(w, h, data)))
    }
}

/// Appends `rows` rows of `width` bytes from a plane whose rows are `stride` apart.
fn copy_plane(
    out: &mut Vec<u8>,
    plane: &[u8],
    stride: usize,
    width: usize,
    rows: usize,
) -> io::Result<()> {
    for row in 0..rows {
        let line = row
            .checked_mul(stride)
            .and_then(|start| plane.get(start..start.checked_add(width)?))
            .ok_or_else(|| {
                invalid(format!(
                    "decoded plane too short for {rows} rows of {width} (stride {stride})"
                ))
            })?;
        out.extend_from_slice(line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::encoder::openh264::OpenH264Encoder;
    use crate::media::h264::annexb::is_idr;
    use crate::media::source::pattern::TestPattern;
    use crate::media::{VideoEncoder, VideoSource};

    fn pattern_idr(width: u32, height: u32) -> (Frame, Vec<u8>) {
        let mut source = TestPattern::new(width, height, 30).unwrap();
        let mut encoder = OpenH264Encoder::new(width, height, 30, 2_000_000).unwrap();
        let frame = source.next_frame().unwrap();
        let au = encoder.encode(&frame, true).unwrap().unwrap();
        assert!(is_idr(&au));
        (frame, au)
    }

    #[test]
    fn an_idr_decodes_to_the_picture_that_was_encoded() {
        let (original, au) = pattern_idr(320, 240);
        let decoded = decode_idr(&au).unwrap();
        assert_eq!((decoded.width, decoded.height), (320, 240));
        assert_eq!(decoded.data.len(), original.data.len());
        let mean_error = decoded
            .data
            .iter()
            .zip(&original.data)
            .map(|(&a, &b)| u64::from(a.abs_diff(b)))
            .sum::<u64>()
            / original.data.len() as u64;
        assert!(mean_error < 8, "mean error {mean_error}");
    }

    #[test]
    fn corrupt_access_units_are_errors_not_panics() {
        let (_, au) = pattern_idr(160, 120);
        assert!(decode_idr(&[]).is_err());
        assert!(
            decode_idr(&[0, 0, 0, 1, 0x65, 0x88, 0x84]).is_err(),
            "an IDR without SPS/PPS"
        );
        // Cut short, or with bytes flipped: an error or a (damaged) picture of the right size.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200 {
            let mut bad = au[..au.len() * (round % 10 + 1) / 11].to_vec();
            for _ in 0..round % 7 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = 4 + (seed as usize) % (bad.len() - 4);
                bad[at] ^= (seed >> 32) as u8 | 1;
            }
            if let Ok(frame) = decode_idr(&bad) {
                assert_eq!(
                    frame.data.len(),
                    i420_len(frame.width, frame.height).unwrap()
                );
            }
        }
    }
}
