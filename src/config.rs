//! Configuration: TOML file plus command-line flags (flags win).
