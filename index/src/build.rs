//! Full rebuilds: a fresh generation, bulk-indexed, swapped in only once committed.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use mss_annuaire::extraction::{Record, Rejection, SeenAddresses};
use mss_annuaire::{Entry, MailAddress};
use tantivy::indexer::NoMergePolicy;
use tantivy::{Index, IndexWriter, Term};

use crate::generations::Layout;
use crate::schema::{self, Fields};
use crate::search::{find, open_reader};
use crate::{Error, Result};

/// Indexing threads of a rebuild (the reader and the caller's parsing keep the rest busy).
const BUILD_THREADS: usize = 2;
/// Memory of each indexing thread before it flushes a segment: bounds the peak RSS of an import.
const BUILD_MEMORY_PER_THREAD: usize = 64 << 20;

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildStats {
    /// Entries in the new index.
    pub entries: u64,
    /// Entries folded into an earlier one with the same address.
    pub merged: u64,
    /// Red-listed entries left out.
    pub red_listed: u64,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Data lines read.
    pub lines: u64,
    /// Entries in the new index.
    pub imported: u64,
    /// Lines folded into an earlier line with the same address.
    pub merged: u64,
    /// Lines refused by the reader.
    pub rejected: u64,
    /// Red-listed entries left out.
    pub red_listed: u64,
}

/// A full rebuild into a fresh generation. Nothing is visible until [`Builder::commit`]; dropping the
/// builder (or the process dying) leaves the current index untouched.
pub struct Builder {
    layout: Layout,
    name: String,
    dir: PathBuf,
    index: Index,
    writer: Option<IndexWriter>,
    fields: Fields,
    seen: SeenAddresses,
    /// Later lines of an address already added: merged after the bulk commit (rare, so kept in memory).
    duplicates: Vec<Entry>,
    /// Red-listed addresses: removed at the end even if another line of theirs was not red-listed.
    red: HashSet<MailAddress>,
    red_listed: u64,
    committed: bool,
    _lock: File,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("generation", &self.name)
            .finish()
    }
}

impl Builder {
    /// Starts a rebuild in `data_dir` ([`Error::Busy`] if another one is running). Leftovers of
    /// interrupted rebuilds are removed; the current generation never is.
    pub fn create(data_dir: &Path) -> Result<Self> {
        let layout = Layout::new(data_dir);
        let lock = layout.lock_build()?;
        let current = layout.current()?;
        layout.remove_others(&current.iter().map(String::as_str).collect::<Vec<_>>())?;
        let (name, dir) = layout.create_next()?;
        let index = Index::create_in_dir(&dir, schema::schema())?;
        schema::register_tokenizers(&index);
        let fields = Fields::resolve(&index.schema())?;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, BUILD_THREADS);
        let writer = index.writer_with_num_threads(threads, threads * BUILD_MEMORY_PER_THREAD)?;
        // Segments are merged once, at the end: merging while indexing would compete for the two cores.
        writer.set_merge_policy(Box::new(NoMergePolicy));
        Ok(Builder {
            layout,
            name,
            dir,
            index,
            writer: Some(writer),
            fields,
            seen: SeenAddresses::new(),
            duplicates: Vec::new(),
            red: HashSet::new(),
            red_listed: 0,
            committed: false,
            _lock: lock,
        })
    }

    fn writer(&mut self) -> Result<&mut IndexWriter> {
        self.writer.as_mut().ok_or_else(|| Error::Corrupt {
            reason: "the rebuild's writer is gone after a failure".into(),
        })
    }

    /// Adds an entry. A red-listed one is counted and left out; a repeated address is merged into the
    /// first one ([`Entry::merge`]) at commit.
    pub fn add(&mut self, entry: Entry) -> Result<()> {
        if entry.red_listed {
            self.red_listed += 1;
            self.red.insert(entry.address);
            return Ok(());
        }
        if !self.seen.first_time(&entry.address) {
            self.duplicates.push(entry);
            return Ok(());
        }
        let doc = schema::document(&self.fields, &entry).map_err(|e| Error::Corrupt {
            reason: format!("entry {} does not serialise: {e}", entry.address),
        })?;
        self.writer()?.add_document(doc)?;
        Ok(())
    }

    /// Commits, merges repeated addresses, makes the new generation current and removes older ones.
    pub fn commit(mut self) -> Result<BuildStats> {
        let mut writer = self.writer.take().ok_or_else(|| Error::Corrupt {
            reason: "the rebuild's writer is gone after a failure".into(),
        })?;
        writer.commit()?;
        let merged = self.fix_up(&mut writer)?;
        // One segment answers faster (one term dictionary per field to look words up in).
        let segments = self.index.searchable_segment_ids()?;
        if segments.len() > 1 {
            writer.merge(&segments).wait()?;
        }
        writer.wait_merging_threads()?;
        let entries = open_reader(&self.index)?.searcher().num_docs();
        self.layout.set_current(&self.name)?;
        self.committed = true;
        self.layout.remove_others(&[&self.name])?;
        Ok(BuildStats {
            entries,
            merged,
            red_listed: self.red_listed,
        })
    }

    /// Folds the later lines of repeated addresses into the stored first one, and removes red-listed
    /// addresses; returns the number of lines merged.
    fn fix_up(&mut self, writer: &mut IndexWriter) -> Result<u64> {
        if self.duplicates.is_empty() && self.red.is_empty() {
            return Ok(0);
        }
        let searcher = open_reader(&self.index)?.searcher();
        let f = self.fields;
        let mut order: Vec<MailAddress> = Vec::new();
        let mut groups: HashMap<MailAddress, Vec<Entry>> = HashMap::new();
        for e in std::mem::take(&mut self.duplicates) {
            groups
                .entry(e.address.clone())
                .or_insert_with(|| {
                    order.push(e.address.clone());
                    Vec::new()
                })
                .push(e);
        }
        let mut merged = 0;
        for address in order {
            let Some(lines) = groups.remove(&address) else {
                continue;
            };
            if self.red.contains(&address) {
                continue;
            }
            let mut lines = lines.into_iter();
            let mut entry = match find(&searcher, &f, address.as_str())? {
                Some(first) => first,
                // a hash collision in `SeenAddresses`: this address was never added
                None => match lines.next() {
                    Some(e) => e,
                    None => continue,
                },
            };
            for line in lines {
                entry.merge(line);
                merged += 1;
            }
            writer.delete_term(Term::from_field_text(f.address, address.as_str()));
            let doc = schema::document(&f, &entry).map_err(|e| Error::Corrupt {
                reason: format!("entry {address} does not serialise: {e}"),
            })?;
            writer.add_document(doc)?;
        }
        for address in &self.red {
            writer.delete_term(Term::from_field_text(f.address, address.as_str()));
        }
        writer.commit()?;
        Ok(merged)
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // Abandoned: stop the indexing threads, then remove the half-built generation.
        drop(self.writer.take());
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove an abandoned index generation");
        }
    }
}

/// Lines between two progress calls.
const PROGRESS_EVERY: u64 = 10_000;

/// Imports extraction records into `builder` and commits it: rejected lines go to `on_rejected`, progress
/// (lines read) to `on_progress`. An input error aborts the import and leaves the current index serving.
pub fn import(
    mut builder: Builder,
    records: impl Iterator<Item = mss_annuaire::Result<Record>>,
    mut on_progress: impl FnMut(u64),
    mut on_rejected: impl FnMut(&Rejection),
) -> Result<ImportStats> {
    let mut stats = ImportStats::default();
    for record in records {
        match record? {
            Record::Entry(e) => builder.add(*e)?,
            Record::Rejected(r) => {
                stats.rejected += 1;
                on_rejected(&r);
            }
        }
        stats.lines += 1;
        if stats.lines.is_multiple_of(PROGRESS_EVERY) {
            on_progress(stats.lines);
        }
    }
    on_progress(stats.lines);
    let built = builder.commit()?;
    stats.imported = built.entries;
    stats.merged = built.merged;
    stats.red_listed = built.red_listed;
    Ok(stats)
}
