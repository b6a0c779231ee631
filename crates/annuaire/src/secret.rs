//! [`Secret`]: a password or API key, kept out of `Debug`, logs and error messages.

use std::fmt;
use std::path::Path;

use crate::{Error, Result};

/// A password or API key. `Debug` prints `Secret(***)`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// Reads a secret file: its first line, without the line end.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading the secret file {}", path.display()), e))?;
        let line = text.lines().next().unwrap_or("");
        Ok(Secret(line.to_string()))
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}
