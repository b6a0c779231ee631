//! The national LDAP directory (docs/mssante.md D2): `ldap://ldap.annuaire.mssante.fr:389` (partners:
//! `ldap://partenaires.annuaire.sante.fr:389`), base `ou=bal,o=mssante,c=fr`, at most **100 entries and
//! one minute per query**, red-listed mailboxes never returned.
//!
//! - [`filter`]: RFC 4515 filters built from typed parts only; user text can never change a filter's
//!   structure.
//! - [`mapping`]: which attribute holds which [`Entry`](crate::Entry) field. The national attribute names
//!   are not public, so this is data: a documented default file (`crates/annuaire/ldap/mapping.toml`)
//!   overridable by a file, plus a project schema for slapd (`crates/annuaire/ldap/mssante.ldif`).
//! - [`client`]: [`LdapClient`]: anonymous or simple bind, plain / StartTLS / LDAPS, connection and
//!   operation timeouts, reconnection; live [`LdapClient::search`] that flags answers cut by the server's
//!   size or time limit ([`SearchAnswer::partial`]) and says how to refine.
//! - [`harvest`]: collects every entry despite the cap, by cutting over-full queries recursively
//!   (department, then name prefixes, then address prefixes), with bounded concurrency, resumable.
//!
//! Errors are [`crate::Error`]'s `Ldap*` variants; [`crate::Error::is_transient`] tells network trouble
//! from bad settings. Passwords live in a [`Secret`], which never prints.

pub mod client;
pub mod filter;
pub mod harvest;
pub mod mapping;

pub use client::{
    Bind, DEFAULT_BASE, LdapClient, LdapConfig, Limit, NATIONAL_SIZE_LIMIT, NATIONAL_TIME_LIMIT,
    PARTNERS_URL, PRODUCTION_URL, RawPage, SearchAnswer, SearchQuery, Secret, refine_hint,
    search_filter,
};
pub use filter::{Attribute, Filter, escape_value};
pub use harvest::{
    Directory, HarvestOptions, HarvestReport, HarvestSink, Progress, Stopped, harvest,
};
pub use mapping::{
    DEFAULT_MAPPING, Field, Mapped, Mapping, Missing, PROJECT_SCHEMA_LDIF, RawEntry, Split,
    SplitBy, write_ldif_base,
};
