//! The SPS reader on arbitrary bytes, as a NAL unit and behind an SPS header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telepi::media::h264::sps::parse_sps;

fuzz_target!(|data: &[u8]| {
    let mut nal = Vec::with_capacity(data.len() + 1);
    nal.push(0x67);
    nal.extend_from_slice(data);
    for input in [data, &nal[..]] {
        if let Ok(info) = parse_sps(input) {
            assert!(info.width > 0 && info.height > 0, "{info:?}");
            assert!(info.id <= 31, "{info:?}");
        }
    }
});
