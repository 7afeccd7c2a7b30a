//! Why the configuration did not load: the command line, the file, its
//! TOML, its keys, or settings that are out of range or contradict.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A command-line mistake: a flag without its value, an unknown
    /// argument or board, an address that is not ADDR:PORT.
    #[error("{0}")]
    Usage(String),
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML; `origin` names the layer (the file, or `board NAME`).
    #[error("{origin}: {source}")]
    Syntax {
        origin: String,
        source: toml::de::Error,
    },
    /// An unknown key or a value of the wrong type, in the layers laid together.
    #[error("{origins}: {reason}")]
    Keys { origins: String, reason: String },
    /// Well-formed, but out of range or contradicting another setting.
    #[error("{0}")]
    Invalid(String),
}
