//! Raw frames to H.264: openh264 in software, or the board's V4L2
//! memory-to-memory hardware encoder.

pub mod budget;
pub mod m2m;
pub mod openh264;
