//! telepi: a Raspberry Pi robot driven from a browser.
//!
//! `main.rs` only wires these modules together; each one is usable (and
//! tested) on its own.

pub mod config;
pub mod drive;
pub mod http;
pub mod media;
pub mod rtc;
pub mod secret;
