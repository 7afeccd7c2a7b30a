//! `[control]`: who may operate.

use serde::Deserialize;

/// The `[control]` table of the config file.
///
/// ```toml
/// [control]
/// operator_secret = "hunter2"   # unset or "": the first to claim (or drive) operates
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub operator_secret: Option<String>,
}
