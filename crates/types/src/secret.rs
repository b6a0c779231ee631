//! [`Secret`]: a password or API key that must never reach a log line, an error message, a file or a
//! snapshot. The one secret type of the workspace (`mss-lps` builds its access tokens on it).

use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

const REDACTED: &str = "[redacted]";

/// A string that is wiped on drop and never printed: `Debug` and `Display` show `[redacted]`, it is not
/// `Serialize`, and the only way to the bytes is an explicit [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// Reads a secret file (a password or API key file): its first line, without the line end; the read
    /// buffer is wiped.
    pub fn from_file(path: &Path) -> std::io::Result<Self> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            std::io::Error::new(
                source.kind(),
                format!("reading the secret file {}: {source}", path.display()),
            )
        })?);
        Ok(Secret::new(text.lines().next().unwrap_or("")))
    }

    /// Reads a secret (a password file, stdin): everything up to the end, the final line break removed;
    /// the read buffer is wiped.
    pub fn from_reader(mut r: impl std::io::Read) -> std::io::Result<Self> {
        let mut buf = Zeroizing::new(Vec::new());
        r.read_to_end(&mut buf)?;
        let text = std::str::from_utf8(&buf)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"))?;
        Ok(Secret::new(text.trim_end_matches(['\r', '\n'])))
    }

    /// The secret itself: only for the bytes that go on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}
