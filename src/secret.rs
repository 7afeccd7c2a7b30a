//! Checking passwords and secrets without leaking, through timing, how much
//! of a guess was right or how long the real one is.

use aws_lc_rs::{constant_time, digest, rand};

/// A fresh unguessable token: 128 random bits as 32 hex digits.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes).expect("the OS random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `presented` is `expected`. Both are hashed first, so the
/// comparison takes the same time whatever their lengths.
pub fn matches(expected: &str, presented: &str) -> bool {
    let want = digest::digest(&digest::SHA256, expected.as_bytes());
    let got = digest::digest(&digest::SHA256, presented.as_bytes());
    constant_time::verify_slices_are_equal(want.as_ref(), got.as_ref()).is_ok()
}

/// Whether `presented` grants what the operator secret guards: anything,
/// when no secret is configured.
pub fn grants_operator(configured: Option<&str>, presented: Option<&str>) -> bool {
    match (configured, presented) {
        (None, _) => true,
        (Some(want), Some(got)) => matches(want, got),
        (Some(_), None) => false,
    }
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

    #[test]
    fn tokens_are_long_and_new_each_time() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn without_a_secret_everyone_operates() {
        assert!(grants_operator(None, None));
        assert!(grants_operator(Some("s"), Some("s")));
        assert!(!grants_operator(Some("s"), Some("t")));
        assert!(!grants_operator(Some("s"), None));
    }
}
