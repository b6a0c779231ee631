//! Secrets that must never reach a log line, an error message, a file or a snapshot.
//!
//! [`AccessToken`] is built on [`Secret`], the workspace's one secret type (from `mss-types`): both print
//! as `[redacted]` through `Debug` and `Display`, are not `Serialize`, and wipe their memory on drop. The
//! only way to the bytes is an explicit `expose()`.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use zeroize::Zeroizing;

pub use mss_types::Secret;

const REDACTED: &str = "[redacted]";

/// A Pro Santé Connect access token (a JWT), held in memory only for its lifetime (docs/mssante.md L5).
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Secret);

impl AccessToken {
    /// Wraps a token; surrounding blanks (a trailing newline from a file) are removed.
    pub fn new(token: impl Into<String>) -> Self {
        // the untrimmed original is wiped when it goes out of scope
        let token = Zeroizing::new(token.into());
        AccessToken(Secret::new(token.trim()))
    }

    /// The token itself: only for the bytes that go on the wire.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// Reads a token (a file, stdin); blanks around it are removed and the read buffer is wiped.
    pub fn from_reader(r: impl std::io::Read) -> std::io::Result<Self> {
        Secret::from_reader(r).map(|s| AccessToken::new(s.expose()))
    }

    /// The claims of the JWT payload, decoded **without verifying the signature**: the client only uses them
    /// to explain a refusal (expired, other issuer, other user) and to stop using a token that has expired.
    /// `None` when the token is not a JWT.
    pub fn claims(&self) -> Option<TokenClaims> {
        let payload = self.expose().split('.').nth(1)?;
        let json = Zeroizing::new(URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?);
        let mut claims: TokenClaims = serde_json::from_slice(&json).ok()?;
        let raw: serde_json::Value = serde_json::from_slice(&json).ok()?;
        claims.raw = match raw {
            serde_json::Value::Object(map) => map,
            _ => return None,
        };
        Some(claims)
    }

    /// Whether the `exp` claim is in the past (false when there is no readable `exp`).
    pub fn is_expired(&self) -> bool {
        self.claims().is_some_and(|c| c.is_expired_at(now_unix()))
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// What the client reads from a token's payload (never used as proof of anything).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenClaims {
    /// Issuer.
    #[serde(default)]
    pub iss: Option<String>,
    /// Subject (PSC: the national identifier of the professional).
    #[serde(default)]
    pub sub: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default)]
    pub exp: Option<i64>,
    /// Not before, seconds since the epoch.
    #[serde(default)]
    pub nbf: Option<i64>,
    /// Every claim, for the operator-specific user claim.
    #[serde(skip)]
    pub raw: serde_json::Map<String, serde_json::Value>,
}

impl TokenClaims {
    /// Whether `exp` is at or before `now` (seconds since the epoch).
    pub fn is_expired_at(&self, now: i64) -> bool {
        self.exp.is_some_and(|exp| exp <= now)
    }

    /// A string claim by name.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.raw.get(name).and_then(|v| v.as_str())
    }
}

pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `base64("user=" BAL "\x01auth=Bearer " token "\x01\x01")` (docs/mssante.md L2).
pub(crate) fn xoauth2_initial_response(user: &str, token: &AccessToken) -> Secret {
    let raw = Zeroizing::new(format!(
        "user={user}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ));
    Secret::new(STANDARD.encode(raw.as_bytes()))
}

/// SASL PLAIN: `base64(authzid \0 authcid \0 password)`; the BAL is the authentication identity.
pub(crate) fn plain_initial_response(user: &str, password: Option<&Secret>) -> Secret {
    let raw = Zeroizing::new(format!("\0{user}\0{}", password.map_or("", Secret::expose)));
    Secret::new(STANDARD.encode(raw.as_bytes()))
}

/// Removes every occurrence of the given secrets from a text that may come back from a server (some echo
/// the command they refuse).
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        if out.contains(*s) {
            out = out.replace(*s, REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn debug_and_display_redact() {
        let t = AccessToken::new("eyJhbGciOi.secret-part.sig\n");
        assert_eq!(format!("{t:?}"), "AccessToken([redacted])");
        assert_eq!(format!("{t}"), "[redacted]");
        assert_eq!(t.expose(), "eyJhbGciOi.secret-part.sig");
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
    }

    #[test]
    fn claims_are_read_without_verification() {
        let t = AccessToken::new(jwt(
            r#"{"iss":"https://psc","sub":"8100","exp":1,"email":"a@b.fr"}"#,
        ));
        let c = t.claims().expect("claims");
        assert_eq!(c.iss.as_deref(), Some("https://psc"));
        assert_eq!(c.string("email"), Some("a@b.fr"));
        assert!(t.is_expired());
        assert!(AccessToken::new("opaque").claims().is_none());
    }

    #[test]
    fn xoauth2_string_matches_the_spec() {
        let ir = xoauth2_initial_response("a@b.fr", &AccessToken::new("TOK"));
        let raw = STANDARD.decode(ir.expose()).expect("base64");
        assert_eq!(raw, b"user=a@b.fr\x01auth=Bearer TOK\x01\x01");
        let p = plain_initial_response("a@b.fr", None);
        assert_eq!(STANDARD.decode(p.expose()).expect("base64"), b"\0a@b.fr\0");
    }

    #[test]
    fn scrub_removes_echoed_secrets() {
        assert_eq!(
            scrub("500 bad AUTH abcdefgh123", &["abcdefgh123"]),
            "500 bad AUTH [redacted]"
        );
    }
}
