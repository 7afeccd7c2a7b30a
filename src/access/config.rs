//! `[access]`: who may watch.

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// Guards the page and every endpoint; unset or "": anyone who reaches the robot may watch.
    pub viewer_password: Option<String>,
}
