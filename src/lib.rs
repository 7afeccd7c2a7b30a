//! telepi: a Raspberry Pi robot driven from a browser.
//!
//! `main.rs` only wires these modules together; each one is usable (and
//! tested) on its own.

pub mod access;
pub mod api;
pub mod broker;
pub mod config;
pub mod controls;
pub mod drive;
pub mod hostport;
pub mod http;
pub mod json;
pub mod media;
pub mod metrics;
pub mod peer;
pub mod refusal;
pub mod rtc;
pub mod secret;
pub mod session;
pub mod status;
#[doc(hidden)]
pub mod testing;
pub mod tls;
