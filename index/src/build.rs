//! Full rebuilds: a fresh generation, bulk-indexed, swapped in only once committed.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mss_annuaire::extraction::{Record, Rejection, SeenAddresses};
use mss_annuaire::{Entry, MailAddress};
use tantivy::indexer::NoMergePolicy;
use tantivy::indexer::UserOperation;
use tantivy::{Index, IndexWriter};

use crate::address::{HashSetQuery, entries_with};
use crate::analysis::addr_hash;
use crate::generations::Layout;
use crate::schema::{self, EntryDoc, Fields};
use crate::search::open_reader;
use crate::{Error, Result};

/// Indexing threads of a rebuild (the reader and the caller's parsing keep the rest busy).
const BUILD_THREADS: usize = 2;
/// Documents per message to the indexing threads (the channel holds 10 000 messages: more per
/// message would let the reader run far ahead and hold them all in memory).
const BATCH: usize = 2;
/// Doc store block size.
const DOCSTORE_BLOCK: usize = 4096;
/// Memory of each indexing thread before it flushes a segment: bounds the peak RSS of an import (the
/// sorting of each segment by name and the sorted merge map and hold more besides: 1 M entries peak at
/// 245 MB with 24 MiB, 332 MB with 40 MiB; smaller segments cost some CPU in the merge).
const BUILD_MEMORY_PER_THREAD: usize = 24 << 20;

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
    writer: Option<IndexWriter<EntryDoc>>,
    fields: Fields,
    seen: SeenAddresses,
    /// Later lines of an address already added: merged after the bulk commit (rare, so kept in memory).
    duplicates: Vec<Entry>,
    /// Red-listed addresses: removed at the end even if another line of theirs was not red-listed.
    red: HashSet<MailAddress>,
    red_listed: u64,
    /// Documents not yet handed to tantivy: sent by batches, one channel message each.
    batch: Vec<UserOperation<EntryDoc>>,
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
        // numbered past the stale ones before removing them: a generation name is never reused
        let (name, dir) = layout.create_next()?;
        let mut keep = vec![name.as_str()];
        keep.extend(current.as_deref());
        layout.remove_others(&keep)?;
        let settings = tantivy::IndexSettings {
            // Small blocks: a hit reads one block; records are ~250 bytes, so 4 KiB holds ~16.
            docstore_blocksize: DOCSTORE_BLOCK,
            // Documents numbered in name order: the best of a large score level are then its first
            // documents (see `engine`), instead of a walk of the whole order.
            sort_by_field: Some(tantivy::IndexSortByField {
                field: schema::NAME_KEY.to_string(),
                order: tantivy::Order::Asc,
            }),
            ..Default::default()
        };
        let index = Index::builder()
            .schema(schema::schema())
            .settings(settings)
            .create_in_dir(&dir)?;
        schema::register_tokenizers(&index);
        let fields = Fields::resolve(&index.schema())?;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, BUILD_THREADS);
        let writer = index
            .writer_with_num_threads::<EntryDoc>(threads, threads * BUILD_MEMORY_PER_THREAD)?;
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
            batch: Vec::with_capacity(BATCH),
            committed: false,
            _lock: lock,
        })
    }

    /// Hands the pending documents to the indexing threads, as one message.
    fn flush_batch(&mut self) -> Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.writer()?.run(batch)?;
        Ok(())
    }

    fn writer(&mut self) -> Result<&mut IndexWriter<EntryDoc>> {
        self.writer.as_mut().ok_or_else(|| Error::Corrupt {
            reason: "the rebuild's writer is gone after a failure".into(),
        })
    }

    /// Adds an entry. A red-listed one is counted and left out; a repeated address is merged into the
    /// first one ([`Entry::merge`]) at commit.
    pub fn add(&mut self, entry: Entry) -> Result<()> {
        self.add_boxed(Box::new(entry))
    }

    /// [`Builder::add`] for an entry already boxed, as the extraction reader gives them.
    fn add_boxed(&mut self, entry: Box<Entry>) -> Result<()> {
        if entry.red_listed {
            self.red_listed += 1;
            self.red.insert(entry.address.clone());
            return Ok(());
        }
        if !self.seen.first_time(&entry.address) {
            self.duplicates.push(*entry);
            return Ok(());
        }
        self.batch
            .push(UserOperation::Add(EntryDoc::new(self.fields, entry)));
        if self.batch.len() >= BATCH {
            self.flush_batch()?;
        }
        Ok(())
    }

    /// Commits, merges repeated addresses, makes the new generation current and removes older ones.
    pub fn commit(mut self) -> Result<BuildStats> {
        self.flush_batch()?;
        let mut writer = self.writer.take().ok_or_else(|| Error::Corrupt {
            reason: "the rebuild's writer is gone after a failure".into(),
        })?;
        writer.commit()?;
        // One segment answers faster (every query looks its words up once per segment). Merged before
        // the fix-up deletes anything: segments without deletions are merged by copying their stored
        // records as they are, instead of decompressing and compressing them again (a second a rebuild).
        let segments = self.index.searchable_segment_ids()?;
        if segments.len() > 1 {
            writer.merge(&segments).wait()?;
        }
        // The entries of repeated addresses then make one small segment of their own.
        let merged = self.fix_up(&mut writer)?;
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
    ///
    /// Documents are replaced by address hash: every entry with a touched hash is read back (one pass
    /// over the hash column), deleted, and written again as it ends up.
    fn fix_up(&mut self, writer: &mut IndexWriter<EntryDoc>) -> Result<u64> {
        if self.duplicates.is_empty() && self.red.is_empty() {
            return Ok(0);
        }
        let f = self.fields;
        let mut hashes: HashSet<u64> = self
            .duplicates
            .iter()
            .map(|e| addr_hash(e.address.as_str()))
            .collect();
        hashes.extend(self.red.iter().map(|a| addr_hash(a.as_str())));
        let searcher = open_reader(&self.index)?.searcher();
        // the first line of every touched address, as stored, in document order
        let mut entries: Vec<Entry> = entries_with(&searcher, &f, &hashes)?;
        let mut position: HashMap<MailAddress, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.address.clone(), i))
            .collect();
        let mut merged = 0;
        for line in std::mem::take(&mut self.duplicates) {
            match position.get(&line.address) {
                Some(&i) => {
                    entries[i].merge(line);
                    merged += 1;
                }
                // a hash collision in `SeenAddresses`: this address was never added
                None => {
                    position.insert(line.address.clone(), entries.len());
                    entries.push(line);
                }
            }
        }
        writer.delete_query(Box::new(HashSetQuery(Arc::new(hashes))))?;
        // one batch: one indexing thread, so the merged entries make one small segment
        let docs: Vec<UserOperation<EntryDoc>> = entries
            .into_iter()
            .filter(|e| !self.red.contains(&e.address))
            .map(|e| UserOperation::Add(EntryDoc::new(f, Box::new(e))))
            .collect();
        writer.run(docs)?;
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
            Record::Entry(e) => builder.add_boxed(e)?,
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
