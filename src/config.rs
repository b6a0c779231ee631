//! The TOML configuration file of `mss serve` (`--config`): read whole by `mss serve`, in part by the
//! commands that need one of its sections (`mss client`, `mss audit`).

use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;

/// The file at `path` as `T` (every section optional), or `T::default()` without a file.
pub fn load<T: DeserializeOwned + Default>(path: Option<&Path>) -> Result<T> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("configuration file {}", path.display()))
}
