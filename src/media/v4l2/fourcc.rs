//! Pixel format codes (fourccs) and their names.

/// A V4L2 pixel format code from its four characters.
pub const fn fourcc(code: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*code)
}

/// The four characters of a pixel format code, for people.
pub fn fourcc_name(code: u32) -> String {
    let name: String = code
        .to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { ' ' })
        .collect();
    name.trim_end().to_string()
}

pub const FOURCC_YU12: u32 = fourcc(b"YU12");
pub const FOURCC_NV12: u32 = fourcc(b"NV12");
pub const FOURCC_YUYV: u32 = fourcc(b"YUYV");
pub const FOURCC_MJPG: u32 = fourcc(b"MJPG");
pub const FOURCC_JPEG: u32 = fourcc(b"JPEG");
pub const FOURCC_H264: u32 = fourcc(b"H264");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_round_trip() {
        assert_eq!(FOURCC_YUYV, 0x5659_5559);
        assert_eq!(fourcc_name(FOURCC_MJPG), "MJPG");
        assert_eq!(fourcc_name(fourcc(b"Y8\0\0")), "Y8");
    }
}
