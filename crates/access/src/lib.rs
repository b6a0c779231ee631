//! # mss-access — who may do what, and the trace of what was done
//!
//! - [`clients`]: the clients of the REST service and their keys (`mss_sk_…` secret, `mss_pk_…`
//!   publishable), stored hashed in a TOML file that `mss client` edits and `mss serve` watches;
//! - [`Scope`]: what a key allows;
//! - [`limit`]: the failed-key limiter (per source address) and the directory's per-address rate limit;
//! - [`audit`]: the audit trail of every request on health data, one JSON line each (docs/mssante.md S2).
//!
//! The rules are those of docs/mssante.md S1–S3. Nothing here ever holds a key in clear longer than it takes
//! to hash it, nor writes one anywhere.

pub mod audit;
pub mod clients;
mod error;
pub mod limit;
mod scope;

pub use error::Error;
pub use scope::Scope;
