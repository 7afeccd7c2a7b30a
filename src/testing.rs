//! For tests, in this crate and in `tests/`: what a test does when
//! something it needs (a tool, root) is missing on this machine.

use std::io::Write;

/// Says `SKIPPED` with the reason on stderr (written past the test
/// harness's capture, so it shows even when the test passes); under
/// `CI=true`, where every prerequisite must be there, panics instead.
pub fn skipped(reason: &str) {
    if in_ci(std::env::var("CI").ok().as_deref()) {
        panic!("{reason}: under CI=true every test must run, not skip");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

fn in_ci(ci: Option<&str>) -> bool {
    matches!(ci, Some("true" | "1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_means_true() {
        assert!(in_ci(Some("true")) && in_ci(Some("1")));
        assert!(!in_ci(None) && !in_ci(Some("")) && !in_ci(Some("false")));
    }
}
