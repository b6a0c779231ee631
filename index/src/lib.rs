//! # mss-index — the local search index of MSSanté mailboxes
//!
//! This crate owns the on-disk tantivy index that every directory source lands in (docs/mssante.md D4): how entries
//! are analysed and stored, how the index is rebuilt and updated, and how it answers searches and
//! search-as-you-type.
//!
//! - [`Builder`] writes a full rebuild into a fresh generation directory and swaps it in atomically only
//!   once committed: a failed or interrupted import leaves the previous index serving. [`import`] drives a
//!   builder from an extraction reader.
//! - [`DirectoryIndex`] opens the current generation and answers [`DirectoryIndex::search`] (paged with a
//!   stable cursor), [`DirectoryIndex::autocomplete`] (suggestions with highlights) and
//!   [`DirectoryIndex::get`]; [`DirectoryIndex::writer`] gives an [`Updater`] for incremental upserts and
//!   deletions by address.
//! - The LDAP harvest and the FHIR sync write through an [`Updater`] (a
//!   [`HarvestSink`](mss_annuaire::HarvestSink)); once complete, [`Updater::remove_vanished`] and
//!   [`Updater::remove_dropped`] take out what the source no longer publishes.
//!
//! Matching: case and accent folding, hyphen/apostrophe splitting (and the glued form: `lhermite` finds
//! `L'Hermite`), prefix matching of the word being typed (the last one, unless the query ends with a
//! space), typo tolerance (1 edit from 4 letters, 2 from 8, a swap counting as one, the first letter taken
//! as typed), every word required except particles and articles (`de`, `la`, `le`...), which only add to
//! the score. Ranking: exact name word > name prefix > name with a typo, then organisation, profession and
//! place words; ties read alphabetically. Red-listed entries are never indexed.
//!
//! Searching does not go through tantivy's query machinery: every match scores a constant, and a small
//! engine of our own (`engine`) intersects posting lists rarest first and picks the best hits in a
//! stable order, which is what keeps short prefixes and common words fast.

mod address;
mod analysis;
mod build;
mod codec;
mod collect;
mod engine;
mod external_sort;
mod generations;
mod highlight;
mod query;
mod schema;
mod search;
pub mod sources;
mod sync;

use std::path::PathBuf;

use mss_annuaire::{BalType, Entry};
use serde::{Deserialize, Serialize};

pub use build::{BuildStats, Builder, ImportStats, import};
pub use search::{DirectoryIndex, Updater};

/// Largest page or suggestion list one call may ask for.
pub const MAX_LIMIT: usize = 1000;

/// Errors of the index. Messages name the parameter or place at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No index has been built in this data directory yet.
    #[error("no index in {}: run an import first", data_dir.display())]
    NotFound {
        /// The data directory looked in.
        data_dir: PathBuf,
    },
    /// Another rebuild or writer holds the index.
    #[error("the index in {} is being written by another import or writer", data_dir.display())]
    Busy {
        /// The index directory.
        data_dir: PathBuf,
    },
    /// A paging cursor that this index did not produce (the text says what is wrong with it).
    #[error("cursor: {0}")]
    InvalidCursor(String),
    /// A request parameter that cannot be used (limit, filter, address).
    #[error("{param}: {reason}")]
    InvalidParameter {
        /// The parameter name, as in [`SearchRequest`] and [`Filters`].
        param: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The index on disk does not read back as written.
    #[error("index damaged: {reason}")]
    Corrupt {
        /// What does not read.
        reason: String,
    },
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// tantivy failed.
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// Reading the directory source failed (during [`import`]).
    #[error(transparent)]
    Annuaire(#[from] mss_annuaire::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps an I/O error to [`Error::Io`]; `context` (which formats a path) is only called on failure.
pub(crate) fn io(context: impl FnOnce() -> String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io {
        context: context(),
        source,
    }
}

/// Filters narrowing a search; every filter set must match.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Default, Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Filters {
    /// Kind of mailbox.
    pub bal_type: Option<BalType>,
    /// Profession code (`10` médecin, `21` pharmacien...).
    pub profession: Option<String>,
    /// Speciality (savoir-faire) code, e.g. `SM04`.
    pub speciality: Option<String>,
    /// Department code (`75`, `2A`, `974`; `1` reads as `01`).
    pub department: Option<String>,
    /// Postal code of the structure.
    pub postal_code: Option<String>,
}

impl Filters {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.bal_type.is_none()
            && [
                &self.profession,
                &self.speciality,
                &self.department,
                &self.postal_code,
            ]
            .iter()
            .all(|f| f.as_deref().is_none_or(|s| s.trim().is_empty()))
    }
}

/// A search: words, filters and a page.
#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    /// What the user typed; empty lists every entry that passes the filters.
    pub q: String,
    /// Filters.
    pub filters: Filters,
    /// Page size, at most [`MAX_LIMIT`]; 0 only counts.
    pub limit: usize,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl SearchRequest {
    /// The same words and filters asked of the national LDAP directory live (it has no paging: the cursor
    /// is left out).
    pub fn ldap_query(&self) -> mss_annuaire::ldap::SearchQuery {
        mss_annuaire::ldap::SearchQuery {
            text: self.q.clone(),
            bal_type: self.filters.bal_type,
            profession: self.filters.profession.clone(),
            speciality: self.filters.speciality.clone(),
            department: self.filters.department.clone(),
            postal_code: self.filters.postal_code.clone(),
            limit: self.limit,
        }
    }
}

/// A page of results.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Serialize)]
pub struct SearchResults {
    /// Every match of the query and filters (all pages).
    pub total: u64,
    /// This page, best first.
    pub hits: Vec<Hit>,
    /// Cursor of the next page, when there is one.
    pub next_cursor: Option<String>,
    /// Words of the query left out because with them nothing matched (the least selective first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
}

/// Search-as-you-type suggestions, and the words left out to find any.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Suggestions {
    /// Best first.
    pub suggestions: Vec<Suggestion>,
    /// Words of the query left out because with them nothing matched.
    pub dropped: Vec<String>,
}

/// One result.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Serialize)]
pub struct Hit {
    /// The entry, as stored.
    pub entry: Entry,
    /// Its relevance (higher is better; comparable within one query only).
    pub score: f32,
}

/// One search-as-you-type suggestion: what a picker shows.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    /// The mailbox address.
    pub address: String,
    /// `Prénom NOM`, or the organisation and service ([`Entry::display_name`]).
    pub label: String,
    /// Profession label.
    pub profession: Option<String>,
    /// Speciality label.
    pub speciality: Option<String>,
    /// Organisation (trade name, else legal name).
    pub organisation: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Department code.
    pub department: Option<String>,
    /// Kind of mailbox.
    pub bal_type: BalType,
    /// Parts of `label` matching the query: `[start, end)` in code points, sorted, not overlapping.
    pub highlights: Vec<[usize; 2]>,
}
