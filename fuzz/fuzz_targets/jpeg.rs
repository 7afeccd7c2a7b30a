//! MJPEG frames (`jpeg_to_i420`) as a webcam could send them, and the
//! snapshot encoder (`i420_to_jpeg`) on what they decode to.
//!
//! Properties: a decoded frame is exactly an I420 frame of its size with
//! limited-range luma (16..=235); re-encoded as a snapshot it decodes again
//! to the same size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telepi::media::convert::{i420_len, i420_to_jpeg, jpeg_to_i420};
use telepi::media::Frame;

fuzz_target!(|data: &[u8]| {
    let Ok(image) = jpeg_to_i420(data) else {
        return;
    };
    let len = i420_len(image.width, image.height).expect("decoded size is I420-able");
    assert_eq!(image.data.len(), len);
    let luma = &image.data[..(image.width * image.height) as usize];
    assert!(
        luma.iter().all(|y| (16..=235).contains(y)),
        "luma out of range"
    );

    // Keep runs fast: the snapshot round trip only for small pictures.
    if u64::from(image.width) * u64::from(image.height) <= 256 * 256 {
        let frame = Frame::i420(image.width, image.height, image.data);
        let jpeg = i420_to_jpeg(&frame, 80).expect("an I420 frame encodes");
        let again = jpeg_to_i420(&jpeg).expect("our own snapshot decodes");
        assert_eq!((again.width, again.height), (image.width, image.height));
    }
});
