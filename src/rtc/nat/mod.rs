//! Getting through NATs: the robot's own STUN client (its public address),
//! the start-up check of the `turn:` servers, and the STUN messages and MD5
//! they need.
//!
//! Hand-written on purpose. str0m's STUN parser is for ICE and insists on
//! MESSAGE-INTEGRITY, which plain Binding answers and TURN's 401 challenge
//! lack. The STUN crates on crates.io are codecs only (the client logic here
//! would stay ours) and each brings a second crypto stack beside aws-lc-rs:
//! `stun_codec` 0.4 pulls RustCrypto's hmac, sha1 and md5 plus bytecodec and
//! trackable; `stun-rs` 0.1 pulls hmac-sha1, hmac-sha256, md5, rand and the
//! PRECIS crates. What we need is a few hundred lines, fuzzed
//! (`fuzz/fuzz_targets/stun.rs`) and run against coturn in `tests/nat/`.

pub mod md5;
pub mod stun;
pub mod stun_message;
pub mod turn_check;
