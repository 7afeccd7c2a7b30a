//! Just enough sequence parameter set (SPS) parsing to learn the picture size.

use std::io;

use super::annexb::{nal_type, NAL_SPS};

/// What the SPS says about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    pub profile_idc: u8,
    /// `constraint_set0_flag` .. `constraint_set5_flag` and reserved bits.
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub id: u32,
    /// Displayed size, after cropping.
    pub width: u32,
    pub height: u32,
}

fn bad_sps(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("malformed SPS: {what}"))
}

/// Reads bits MSB first from an RBSP (emulation prevention already removed).
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn bit(&mut self) -> io::Result<u32> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or_else(|| bad_sps("truncated"))?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u32::from(bit))
    }

    fn bits(&mut self, n: u32) -> io::Result<u32> {
        (0..n).try_fold(0, |acc, _| Ok(acc << 1 | self.bit()?))
    }

    /// Unsigned Exp-Golomb, ue(v).
    fn ue(&mut self) -> io::Result<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(bad_sps("Exp-Golomb code longer than 32 bits"));
            }
        }
        let value = (1u64 << zeros) - 1 + u64::from(self.bits(zeros)?);
        u32::try_from(value).map_err(|_| bad_sps("Exp-Golomb value out of range"))
    }

    /// Signed Exp-Golomb, se(v).
    fn se(&mut self) -> io::Result<i64> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

/// Removes emulation-prevention bytes (`00 00 03` becomes `00 00`).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

fn skip_scaling_list(r: &mut BitReader, size: usize) -> io::Result<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()?).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Parses a sequence parameter set NAL unit (header byte included).
pub fn parse_sps(nal: &[u8]) -> io::Result<SpsInfo> {
    if nal_type(nal) != NAL_SPS {
        return Err(bad_sps("not an SPS NAL unit"));
    }
    let rbsp = unescape(&nal[1..]);
    let mut r = BitReader {
        data: &rbsp,
        pos: 0,
    };
    let profile_idc = r.bits(8)? as u8;
    let constraint_flags = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    let id = r.ue()?;
    if id > 31 {
        return Err(bad_sps("seq_parameter_set_id > 31"));
    }
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return Err(bad_sps("chroma_format_idc > 3"));
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()? == 1;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue()?;
            if cycle > 255 {
                return Err(bad_sps("num_ref_frames_in_pic_order_cnt_cycle > 255"));
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        2 => {}
        _ => return Err(bad_sps("pic_order_cnt_type > 2")),
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut crop_left, mut crop_right, mut crop_top, mut crop_bottom) = (0u64, 0u64, 0u64, 0u64);
    if r.bit()? == 1 {
        crop_left = r.ue()?.into();
        crop_right = r.ue()?.into();
        crop_top = r.ue()?.into();
        crop_bottom = r.ue()?.into();
    }
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (sub_width, sub_height) = match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let field_factor = 2 - u64::from(frame_mbs_only);
    let width = width_mbs * 16;
    let height = height_map_units * 16 * field_factor;
    let crop_x = sub_width * (crop_left + crop_right);
    let crop_y = sub_height * field_factor * (crop_top + crop_bottom);
    if crop_x >= width || crop_y >= height {
        return Err(bad_sps("cropping larger than the picture"));
    }
    let (Ok(width), Ok(height)) = (
        u32::try_from(width - crop_x),
        u32::try_from(height - crop_y),
    ) else {
        return Err(bad_sps("picture size out of range"));
    };
    Ok(SpsInfo {
        profile_idc,
        constraint_flags,
        level_idc,
        id,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // SPS NAL units written by ffmpeg/libx264 (`-f h264`), see the test names.
    const SPS_640X480_BASELINE: &str = "6742c01ed900a03db0110000030001000003003c0f162e48";
    const SPS_1920X1080_BASELINE: &str = "6742c028d900780227e5c044000003000400000300f03c60c920";
    const SPS_1280X720_HIGH: &str = "6764001facd9405005bb0110000003001000000303c0f1831960";
    const SPS_642X362_HIGH444: &str = "67f4001e919b281485fc7cf80880000003008000001e078b16cb";

    #[test]
    fn sps_sizes_from_real_encoders() {
        let sps = parse_sps(&hex(SPS_640X480_BASELINE)).unwrap();
        assert_eq!((sps.width, sps.height), (640, 480));
        assert_eq!(
            (sps.profile_idc, sps.constraint_flags, sps.level_idc),
            (66, 0xC0, 30)
        );
        let sps = parse_sps(&hex(SPS_1920X1080_BASELINE)).unwrap();
        assert_eq!((sps.width, sps.height), (1920, 1080), "cropped from 1088");
        let sps = parse_sps(&hex(SPS_1280X720_HIGH)).unwrap();
        assert_eq!((sps.width, sps.height, sps.profile_idc), (1280, 720, 100));
        let sps = parse_sps(&hex(SPS_642X362_HIGH444)).unwrap();
        assert_eq!((sps.width, sps.height, sps.profile_idc), (642, 362, 244));
    }

    #[test]
    fn broken_sps_is_an_error() {
        // Everything up to the cropping fields lies in the first 8 bytes (the
        // rest is VUI, which isn't parsed).
        let sps = hex(SPS_640X480_BASELINE);
        for len in 0..8 {
            assert!(parse_sps(&sps[..len]).is_err(), "truncated to {len}");
        }
        assert!(parse_sps(&hex("68ce3880")).is_err(), "a PPS");
        assert!(
            parse_sps(&[0x67, 66, 0, 30, 0, 0, 0, 0, 0, 0]).is_err(),
            "endless Exp-Golomb"
        );
    }

    #[test]
    fn exp_golomb() {
        // 1 | 010 | 011 | 00100 | 00101 -> ue 0, 1, 2, 3, 4
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader {
            data: &data,
            pos: 0,
        };
        assert_eq!(
            (0..5).map(|_| r.ue().unwrap()).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        let mut r = BitReader {
            data: &data,
            pos: 1,
        };
        assert_eq!(
            (r.se().unwrap(), r.se().unwrap(), r.se().unwrap()),
            (1, -1, 2)
        );
    }

    #[test]
    fn unescape_drops_emulation_prevention() {
        assert_eq!(
            unescape(&[0, 0, 3, 1, 0, 0, 3, 0, 3]),
            [0, 0, 1, 0, 0, 0, 3]
        );
    }
}
