//! Pixel format codes (fourccs) and their names.

/// A V4L2 pixel format code from its four characters.
pub const fn fourcc(code: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*code)
}

/// The flag V4L2 sets in the code of a format's big-endian twin (`v4l2_fourcc_be`).
const BIG_ENDIAN: u32 = 1 << 31;

/// The four characters of a pixel format code, for people; a big-endian
/// twin ends in `-BE`, the way v4l2-ctl shows it (`Y16 -BE`, `XR15-BE`).
pub fn fourcc_name(code: u32) -> String {
    let name: String = (code & !BIG_ENDIAN)
        .to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { ' ' })
        .collect();
    if code & BIG_ENDIAN != 0 {
        format!("{name}-BE")
    } else {
        name.trim_end().to_string()
    }
}

pub const FOURCC_YU12: u32 = fourcc(b"YU12");
pub const FOURCC_NV12: u32 = fourcc(b"NV12");
pub const FOURCC_YUYV: u32 = fourcc(b"YUYV");
pub const FOURCC_MJPG: u32 = fourcc(b"MJPG");
pub const FOURCC_JPEG: u32 = fourcc(b"JPEG");
pub const FOURCC_H264: u32 = fourcc(b"H264");
/// The kernel's `vicodec` test codec (Fast Walsh-Hadamard Transform).
pub const FOURCC_FWHT: u32 = fourcc(b"FWHT");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_round_trip() {
        assert_eq!(FOURCC_YUYV, 0x5659_5559);
        assert_eq!(fourcc_name(FOURCC_MJPG), "MJPG");
        assert_eq!(fourcc_name(fourcc(b"Y8\0\0")), "Y8");
    }

    #[test]
    fn big_endian_twins_are_named_apart() {
        // Two of the formats the kernel's vivid test camera offers.
        assert_eq!(fourcc_name(fourcc(b"Y16 ")), "Y16");
        assert_eq!(fourcc_name(fourcc(b"Y16 ") | BIG_ENDIAN), "Y16 -BE");
        assert_eq!(fourcc_name(fourcc(b"XR15") | BIG_ENDIAN), "XR15-BE");
    }
}
