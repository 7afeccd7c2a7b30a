//! Serde helpers shared by the JSON messages of the data channel
//! (`session::protocol`) and of the local API (`api::message`).

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A present field, `null` included (a plain `Value` field would take a
/// missing one as `null`).
pub(crate) fn required<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    Value::deserialize(d)
}
