//! Checking passwords and secrets without leaking, through timing, how much
//! of a guess was right or how long the real one is.

use aws_lc_rs::{constant_time, digest};

/// Whether `presented` is `expected`. Both are hashed first, so the
/// comparison takes the same time whatever their lengths.
pub fn matches(expected: &str, presented: &str) -> bool {
    let want = digest::digest(&digest::SHA256, expected.as_bytes());
    let got = digest::digest(&digest::SHA256, presented.as_bytes());
    constant_time::verify_slices_are_equal(want.as_ref(), got.as_ref()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_secret_matches() {
        assert!(matches("hunter2", "hunter2"));
        assert!(!matches("hunter2", "hunter"));
        assert!(!matches("hunter2", "hunter22"));
        assert!(!matches("hunter2", ""));
        assert!(matches("", ""));
    }
}
