//! Full rebuilds: a fresh generation, bulk-indexed, swapped in only once committed.
//!
//! Entries become prepared documents as they are parsed (on two threads for an extraction), go through
//! a spool that sorts them by name (see `external_sort`), and are indexed in that order by two threads, a chunk
//! of consecutive names into a segment of its own. The segments, disjoint ranges of names, are then
//! concatenated into the one segment of the new generation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::BufRead;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use mss_annuaire::extraction::{ExtractionReader, Lines, Record, Rejection, SeenAddresses};
use mss_annuaire::{Entry, MailAddress};
use tantivy::directory::error::{DeleteError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, FileHandle, MmapDirectory, OwnedBytes, TerminatingWrite, WatchCallback,
    WatchHandle, WritePtr,
};
use tantivy::indexer::{AddOperation, SegmentWriter, merge_filtered_segments};
use tantivy::{Directory, HasLen, Index, IndexSettings, Segment};

use crate::analysis::addr_hash;
use crate::codec;
use crate::external_sort::Spool;
use crate::generations::Layout;
use crate::schema::{self, EntryDoc, Fields, SortKey};
use crate::search::open_reader;
use crate::{Error, Result, io};

/// Threads that index, at most (one per core); parsing takes one more (see [`import`]).
const THREADS: usize = 2;
/// Bytes of lines in each parsing job.
const LINES_BYTES: usize = 256 << 10;
/// Doc store block size.
const DOCSTORE_BLOCK: usize = 4096;
/// Documents per segment before the final merge, at most. Bounds the memory of an import: each indexing
/// thread holds one chunk (~400 bytes a document: 28 MB) and its segment being built (~27 MB); fewer,
/// larger segments make the final merge cheaper (40 000: 1 M entries in 6.7 s, 64 000: 6.3 s).
const CHUNK_DOCS: usize = 64_000;

/// Documents per chunk for `total` documents on `threads` threads: chunks of equal size, in a multiple
/// of `threads`, so that no thread is left alone with the last one.
fn chunk_docs(total: usize, threads: usize) -> usize {
    let chunks = total.div_ceil(CHUNK_DOCS).next_multiple_of(threads).max(1);
    total.div_ceil(chunks).max(1)
}

/// Memory hint of a segment writer (sizes its term table).
const SEGMENT_MEMORY: usize = 32 << 20;
/// Where the spool's runs and the segments before the final merge are written, inside the generation.
const SPOOL_DIR: &str = "spool";
const PARTS_DIR: &str = "parts";

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
    fields: Fields,
    spool: Spool,
    seen: SeenAddresses,
    /// Later lines of an address already added: merged into the first one as the spool is read back
    /// (rare, so kept in memory).
    duplicates: Vec<Entry>,
    /// Red-listed addresses: left out even if another line of theirs was not red-listed.
    red: HashSet<MailAddress>,
    red_listed: u64,
    /// Scratch buffer of [`Builder::add`].
    doc: Vec<u8>,
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

/// Settings of the new generation: documents numbered in name order (the best of a large score level are
/// then its first documents, see `engine`), small store blocks (a hit reads one block; records are ~250
/// bytes, so 4 KiB holds ~16). The segments before the final merge are not sorted by tantivy: their
/// documents arrive sorted.
fn settings(sorted_by_tantivy: bool) -> IndexSettings {
    IndexSettings {
        docstore_blocksize: DOCSTORE_BLOCK,
        sort_by_field: sorted_by_tantivy.then(|| tantivy::IndexSortByField {
            field: schema::NAME_KEY.to_string(),
            order: tantivy::Order::Asc,
        }),
        // the two indexing threads already keep both cores busy
        docstore_compress_dedicated_thread: sorted_by_tantivy,
        ..Default::default()
    }
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, THREADS)
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
        let fields = Fields::resolve(&schema::schema())?;
        Ok(Builder {
            layout,
            name,
            spool: Spool::new(dir.join(SPOOL_DIR)),
            dir,
            fields,
            seen: SeenAddresses::new(),
            duplicates: Vec::new(),
            red: HashSet::new(),
            red_listed: 0,
            doc: Vec::new(),
            committed: false,
            _lock: lock,
        })
    }

    /// Adds an entry. A red-listed one is counted and left out; a repeated address is merged into the
    /// first one ([`Entry::merge`]) at commit.
    pub fn add(&mut self, entry: Entry) -> Result<()> {
        if entry.red_listed {
            self.add_red_listed(entry.address);
            return Ok(());
        }
        if !self.seen.first_time(&entry.address) {
            self.duplicates.push(entry);
            return Ok(());
        }
        self.doc.clear();
        let key = schema::prepare(self.fields, &entry, &mut self.doc);
        self.spool.push(key, &self.doc)
    }

    fn add_red_listed(&mut self, address: MailAddress) {
        self.red_listed += 1;
        self.red.insert(address);
    }

    /// [`Builder::add`] for an entry already prepared (by a parsing thread).
    fn add_prepared(&mut self, key: SortKey, address: &MailAddress, doc: &[u8]) -> Result<()> {
        if self.seen.first_time(address) {
            return self.spool.push(key, doc);
        }
        self.duplicates.push(entry_of(doc)?);
        Ok(())
    }

    /// Sorts, indexes and merges the entries, makes the new generation current and removes older ones.
    pub fn commit(mut self) -> Result<BuildStats> {
        let fixes = Fixes::new(
            std::mem::take(&mut self.duplicates),
            std::mem::take(&mut self.red),
        );
        let spool = std::mem::replace(&mut self.spool, Spool::new(PathBuf::new()));
        let started = std::time::Instant::now();
        let (segments, merged) = self.index_in_order(spool, fixes)?;
        tracing::debug!(segments = segments.len(), took = ?started.elapsed(), "rebuild: indexed in name order");
        let started = std::time::Instant::now();
        let index = self.merge(segments)?;
        tracing::debug!(took = ?started.elapsed(), "rebuild: segments merged");
        for scratch in [SPOOL_DIR, PARTS_DIR] {
            remove_scratch(&self.dir.join(scratch))?;
        }
        let entries = open_reader(&index)?.searcher().num_docs();
        self.layout.set_current(&self.name)?;
        self.committed = true;
        self.layout.remove_others(&[&self.name])?;
        Ok(BuildStats {
            entries,
            merged,
            red_listed: self.red_listed,
        })
    }

    /// Merges the segments into the index of the new generation.
    fn merge(&self, segments: Vec<Segment>) -> Result<Index> {
        let output = MmapDirectory::open(&self.dir).map_err(tantivy::TantivyError::from)?;
        if segments.is_empty() {
            return Ok(Index::create(output, schema::schema(), settings(true))?);
        }
        // Disjoint ranges of names are concatenated; if the late chunk overlaps them, tantivy merges by
        // name instead.
        let alive = vec![None; segments.len()];
        let index = merge_filtered_segments(&segments, settings(true), alive, output)?;
        // tantivy leaves a note of the merged segments as the commit payload, which is where the
        // sources' sync states go (see `search`): a fresh rebuild has none.
        let mut meta = index.load_metas()?;
        meta.payload = None;
        let mut json = serde_json::to_vec_pretty(&meta).map_err(|e| Error::Corrupt {
            reason: format!("the new index's meta.json does not serialise: {e}"),
        })?;
        json.push(b'\n');
        index
            .directory()
            .atomic_write(Path::new("meta.json"), &json)
            .map_err(io(|| {
                format!("writing {}", self.dir.join("meta.json").display())
            }))?;
        Ok(index)
    }

    /// Reads the spool back in name order, applies `fixes`, and indexes chunks of consecutive documents
    /// on [`THREADS`] threads, a segment each; returns the segments in name order and the lines merged.
    fn index_in_order(&self, spool: Spool, mut fixes: Fixes) -> Result<(Vec<Segment>, u64)> {
        let f = self.fields;
        let parts = Index::create(
            ScratchDirectory::open(self.dir.join(PARTS_DIR))?,
            schema::schema(),
            settings(false),
        )?;
        schema::register_tokenizers(&parts);
        let started = std::time::Instant::now();
        let mut sorted = spool.into_sorted()?;
        let chunk_docs = chunk_docs(sorted.len(), threads());
        tracing::debug!(documents = sorted.len(), mean_size = sorted.mean_size(), took = ?started.elapsed(), "rebuild: spool sorted");
        // rendezvous: a chunk is only filled while the indexing threads are busy with the others
        let (chunks, to_index) = mpsc::sync_channel::<(usize, Chunk)>(0);
        let to_index = Mutex::new(to_index);
        let (done, indexed) = mpsc::channel::<Result<(usize, Segment)>>();
        // chunks indexed, emptied, to fill again: fresh buffers cost page faults and regrowth
        let (recycle, recycled) = mpsc::channel::<Chunk>();
        let capacity = (chunk_docs * sorted.mean_size()).saturating_mul(9) / 8;
        let new_chunk = || {
            recycled
                .try_recv()
                .unwrap_or_else(|_| Chunk::with_capacity(capacity, chunk_docs))
        };
        let mut segments: Vec<(usize, Segment)> = std::thread::scope(|s| -> Result<_> {
            for _ in 0..threads() {
                let (to_index, done, parts) = (&to_index, done.clone(), &parts);
                let recycle = recycle.clone();
                s.spawn(move || {
                    loop {
                        let next = to_index.lock().ok().and_then(|rx| rx.recv().ok());
                        let Some((seq, chunk)) = next else { break };
                        let segment = index_chunk(parts, chunk).map(|(segment, emptied)| {
                            if let Some(chunk) = emptied {
                                let _ = recycle.send(chunk);
                            }
                            (seq, segment)
                        });
                        if done.send(segment).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(done);
            let stopped = || Error::Corrupt {
                reason: "an indexing thread stopped".into(),
            };
            drop(recycle);
            let mut seq = 0;
            let mut chunk = new_chunk();
            let mut late: Vec<(SortKey, Vec<u8>)> = Vec::new();
            while let Some(key) = sorted.next_into(&mut chunk.buf)? {
                let start = chunk.ranges.last().map_or(0, |r| r.end);
                if fixes.touches(key) {
                    let doc = chunk.buf.split_off(start);
                    match fixes.apply(f, &doc)? {
                        Fix::Keep => chunk.buf.extend_from_slice(&doc),
                        Fix::Drop => continue,
                        Fix::Replace(k, doc) if k == key => chunk.buf.extend_from_slice(&doc),
                        // its name changed: out of place here
                        Fix::Replace(k, doc) => {
                            late.push((k, doc));
                            continue;
                        }
                    }
                }
                chunk.ranges.push(start..chunk.buf.len());
                if chunk.ranges.len() == chunk_docs {
                    let full = std::mem::replace(&mut chunk, new_chunk());
                    chunks.send((seq, full)).map_err(|_| stopped())?;
                    seq += 1;
                }
            }
            late.extend(fixes.orphans(f));
            late.sort_by_key(|(k, _)| *k);
            for batch in [std::mem::take(&mut chunk), Chunk::of(late)] {
                if !batch.ranges.is_empty() {
                    chunks.send((seq, batch)).map_err(|_| stopped())?;
                    seq += 1;
                }
            }
            drop(chunks);
            let segments: Vec<(usize, Segment)> = indexed.iter().collect::<Result<_>>()?;
            if segments.len() != seq {
                return Err(stopped());
            }
            Ok(segments)
        })?;
        segments.sort_by_key(|(seq, _)| *seq);
        Ok((segments.into_iter().map(|(_, s)| s).collect(), fixes.merged))
    }
}

/// Removes a scratch directory of a rebuild (absent is fine).
fn remove_scratch(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io(|| format!("removing {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

/// Consecutive prepared documents, indexed into one segment.
#[derive(Default)]
struct Chunk {
    buf: Vec<u8>,
    ranges: Vec<Range<usize>>,
}

impl Chunk {
    fn with_capacity(bytes: usize, docs: usize) -> Chunk {
        Chunk {
            buf: Vec::with_capacity(bytes),
            ranges: Vec::with_capacity(docs),
        }
    }

    fn of(docs: Vec<(SortKey, Vec<u8>)>) -> Chunk {
        let mut chunk = Chunk::default();
        for (_, doc) in docs {
            let start = chunk.buf.len();
            chunk.buf.extend_from_slice(&doc);
            chunk.ranges.push(start..chunk.buf.len());
        }
        chunk
    }
}

/// The directory of the segments before the final merge: files that are never synced, and read with
/// `pread` rather than mapped. Those files are read once by the merge and removed; a crash loses the
/// whole rebuild anyway. Syncing them held each indexing thread ~0.15 s per import, and mapped, every
/// page the merge reads stayed in the process's resident memory (170 MB for a million entries). The
/// merged generation is written and synced as usual.
#[derive(Debug, Clone)]
struct ScratchDirectory {
    root: PathBuf,
    inner: MmapDirectory,
}

/// A file of a [`ScratchDirectory`]: flushed at the end, not synced.
struct UnsyncedFile(File);

impl std::io::Write for UnsyncedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl TerminatingWrite for UnsyncedFile {
    fn terminate_ref(&mut self, _: AntiCallToken) -> std::io::Result<()> {
        std::io::Write::flush(&mut self.0)
    }
}

impl ScratchDirectory {
    fn open(root: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&root).map_err(io(|| format!("creating {}", root.display())))?;
        let inner = MmapDirectory::open(&root).map_err(tantivy::TantivyError::from)?;
        Ok(ScratchDirectory { root, inner })
    }
}

/// A file read with `pread`, each read into its own buffer (freed once tantivy is done with it).
#[derive(Debug)]
struct ReadAtFile {
    file: File,
    len: usize,
}

impl HasLen for ReadAtFile {
    fn len(&self) -> usize {
        self.len
    }
}

impl FileHandle for ReadAtFile {
    fn read_bytes(&self, range: Range<usize>) -> std::io::Result<OwnedBytes> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0; range.len()];
        self.file.read_exact_at(&mut buf, range.start as u64)?;
        Ok(OwnedBytes::new(buf))
    }
}

impl Directory for ScratchDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        let full = self.root.join(path);
        let file = File::open(&full).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => OpenReadError::FileDoesNotExist(path.to_path_buf()),
            _ => OpenReadError::wrap_io_error(e, path.to_path_buf()),
        })?;
        let len = file
            .metadata()
            .map_err(|e| OpenReadError::wrap_io_error(e, path.to_path_buf()))?
            .len() as usize;
        Ok(Arc::new(ReadAtFile { file, len }))
    }
    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }
    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }
    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(self.root.join(path))
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    OpenWriteError::FileAlreadyExists(path.to_path_buf())
                }
                _ => OpenWriteError::wrap_io_error(e, path.to_path_buf()),
            })?;
        Ok(std::io::BufWriter::new(Box::new(UnsyncedFile(file))))
    }
    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }
    fn atomic_write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        self.inner.atomic_write(path, data)
    }
    fn sync_directory(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn watch(&self, callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(callback)
    }
}

/// Indexes a chunk into a new segment of `parts`; gives the chunk back emptied, to be filled again.
fn index_chunk(parts: &Index, mut chunk: Chunk) -> Result<(Segment, Option<Chunk>)> {
    let segment = parts.new_segment();
    let mut writer = SegmentWriter::for_segment(SEGMENT_MEMORY, segment.clone())?;
    let buf = Arc::new(std::mem::take(&mut chunk.buf));
    for range in chunk.ranges.drain(..) {
        let document = EntryDoc::spooled(Arc::clone(&buf), range);
        writer.add_document(AddOperation {
            opstamp: 0,
            document,
        })?;
    }
    let max_doc = writer.max_doc();
    tracing::trace!(
        documents = max_doc,
        memory = writer.mem_usage(),
        "rebuild: segment indexed"
    );
    writer.finalize()?;
    // the writer dropped every document, so the buffer is ours again
    let emptied = Arc::try_unwrap(buf).ok().map(|mut buf| {
        buf.clear();
        Chunk {
            buf,
            ranges: chunk.ranges,
        }
    });
    Ok((segment.with_max_doc(max_doc), emptied))
}

/// The entry of a prepared document.
fn entry_of(doc: &[u8]) -> Result<Entry> {
    let record = schema::stored_record(doc).ok_or_else(|| Error::Corrupt {
        reason: "a prepared document has no record".into(),
    })?;
    codec::decode(record).map_err(|reason| Error::Corrupt { reason })
}

/// What the spool's documents need once every line was read: later lines of the same address folded in,
/// red-listed addresses left out.
struct Fixes {
    /// Address hashes of the documents concerned.
    touched: HashSet<u64>,
    red: HashSet<MailAddress>,
    /// Later lines by address, in file order.
    later: HashMap<MailAddress, Vec<Entry>>,
    merged: u64,
}

enum Fix {
    Keep,
    Drop,
    Replace(SortKey, Vec<u8>),
}

impl Fixes {
    fn new(duplicates: Vec<Entry>, red: HashSet<MailAddress>) -> Fixes {
        let mut later: HashMap<MailAddress, Vec<Entry>> = HashMap::new();
        for e in duplicates {
            later.entry(e.address.clone()).or_default().push(e);
        }
        let touched = later
            .keys()
            .chain(&red)
            .map(|a| addr_hash(a.as_str()))
            .collect();
        Fixes {
            touched,
            red,
            later,
            merged: 0,
        }
    }

    fn touches(&self, key: SortKey) -> bool {
        !self.touched.is_empty() && self.touched.contains(&key.address)
    }

    /// What becomes of a spooled document whose address hash is touched.
    fn apply(&mut self, f: Fields, doc: &[u8]) -> Result<Fix> {
        let mut entry = entry_of(doc)?;
        let later = self.later.remove(&entry.address);
        self.merged += later.as_ref().map_or(0, |l| l.len() as u64);
        if self.red.contains(&entry.address) {
            return Ok(Fix::Drop);
        }
        let Some(later) = later else {
            // another address with the same hash
            return Ok(Fix::Keep);
        };
        for line in later {
            entry.merge(line);
        }
        let mut doc = Vec::new();
        let key = schema::prepare(f, &entry, &mut doc);
        Ok(Fix::Replace(key, doc))
    }

    /// Later lines whose first line is not in the spool (a hash collision in [`SeenAddresses`] took
    /// them for repeats): the first of each becomes the entry.
    fn orphans(&mut self, f: Fields) -> Vec<(SortKey, Vec<u8>)> {
        let mut out = Vec::new();
        for (address, lines) in std::mem::take(&mut self.later) {
            if self.red.contains(&address) {
                continue;
            }
            let mut lines = lines.into_iter();
            let Some(mut entry) = lines.next() else {
                continue;
            };
            for line in lines {
                entry.merge(line);
                self.merged += 1;
            }
            let mut doc = Vec::new();
            let key = schema::prepare(f, &entry, &mut doc);
            out.push((key, doc));
        }
        out
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // Abandoned: remove the half-built generation (its spool and segments with it).
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove an abandoned index generation");
        }
    }
}

/// Documents prepared by a parsing thread from a block of lines, in line order.
struct Parsed {
    buf: Vec<u8>,
    items: Vec<Item>,
}

enum Item {
    Doc {
        key: SortKey,
        address: MailAddress,
        range: Range<usize>,
    },
    RedListed(MailAddress),
    Rejected(Rejection),
}

fn parse(f: Fields, lines: &Lines, updated_at: Option<&str>) -> Parsed {
    let mut parsed = Parsed {
        buf: Vec::with_capacity(LINES_BYTES * 2),
        items: Vec::new(),
    };
    for record in lines.records(updated_at) {
        parsed.items.push(match record {
            Record::Entry(e) if e.red_listed => Item::RedListed(e.address),
            Record::Entry(e) => {
                let start = parsed.buf.len();
                let key = schema::prepare(f, &e, &mut parsed.buf);
                Item::Doc {
                    key,
                    address: e.address,
                    range: start..parsed.buf.len(),
                }
            }
            Record::Rejected(r) => Item::Rejected(r),
        });
    }
    parsed
}

/// Imports an extraction into `builder` and commits it: rejected lines go to `on_rejected`, progress
/// (lines read) to `on_progress`. An input error aborts the import and leaves the current index serving.
///
/// Lines are parsed and prepared on one thread per core plus one, a block each (the calling thread,
/// which reads the blocks and adds the results, is busy a third of the time: with one parsing thread per
/// core, the cores idled a quarter of the time), and added in file order (the first line of an address
/// is the one others are merged into).
pub fn import<R: BufRead>(
    mut builder: Builder,
    mut reader: ExtractionReader<R>,
    mut on_progress: impl FnMut(u64),
    mut on_rejected: impl FnMut(&Rejection),
) -> Result<ImportStats> {
    let mut stats = ImportStats::default();
    let updated_at = reader.updated_at().map(str::to_owned);
    let f = builder.fields;
    let threads = threads() + 1;
    let (jobs, to_parse) = mpsc::sync_channel::<(u64, Lines)>(threads);
    let to_parse = Mutex::new(to_parse);
    let (done, parsed) = mpsc::channel::<(u64, Parsed)>();
    std::thread::scope(|s| -> Result<()> {
        // owned here: dropping it on any return stops the parsing threads
        let jobs = jobs;
        for _ in 0..threads {
            let (to_parse, done, updated_at) = (&to_parse, done.clone(), updated_at.as_deref());
            s.spawn(move || {
                loop {
                    let next = to_parse.lock().ok().and_then(|rx| rx.recv().ok());
                    let Some((seq, lines)) = next else { break };
                    if done.send((seq, parse(f, &lines, updated_at))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        // Blocks read but not yet added: bounded, so memory is too (~1 MB a block with its documents),
        // and enough that the parsing threads keep busy while a run of the spool is written (~50 ms).
        let in_flight = 24;
        let (mut sent, mut next, mut ended) = (0u64, 0u64, false);
        let mut waiting: BTreeMap<u64, Parsed> = BTreeMap::new();
        loop {
            while !ended && sent - next < in_flight {
                match reader.read_lines(LINES_BYTES)? {
                    Some(lines) => {
                        jobs.send((sent, lines)).map_err(|_| Error::Corrupt {
                            reason: "a parsing thread stopped".into(),
                        })?;
                        sent += 1;
                    }
                    None => ended = true,
                }
            }
            if next == sent {
                return Ok(());
            }
            let block = loop {
                if let Some(block) = waiting.remove(&next) {
                    break block;
                }
                let (seq, block) = parsed.recv().map_err(|_| Error::Corrupt {
                    reason: "a parsing thread stopped".into(),
                })?;
                waiting.insert(seq, block);
            };
            next += 1;
            for item in block.items {
                match item {
                    Item::Doc {
                        key,
                        address,
                        range,
                    } => builder.add_prepared(key, &address, &block.buf[range])?,
                    Item::RedListed(address) => builder.add_red_listed(address),
                    Item::Rejected(r) => {
                        stats.rejected += 1;
                        on_rejected(&r);
                    }
                }
                stats.lines += 1;
            }
            on_progress(stats.lines);
        }
    })?;
    let built = builder.commit()?;
    stats.imported = built.entries;
    stats.merged = built.merged;
    stats.red_listed = built.red_listed;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use mss_annuaire::{BalType, Source};

    use super::*;
    use crate::schema::NAME_KEY;

    fn person(address: &str, first: &str, last: &str) -> Entry {
        let mut e = Entry::new(
            MailAddress::parse(address).unwrap(),
            BalType::Per,
            Source::Extraction,
        );
        e.first_name = Some(first.into());
        e.last_name = Some(last.into());
        e
    }

    /// Name keys of the documents of each segment, in document order.
    fn name_keys(data_dir: &Path) -> Vec<Vec<u64>> {
        let layout = Layout::new(data_dir);
        let current = layout.current().unwrap().unwrap();
        let index = Index::open_in_dir(layout.dir(&current)).unwrap();
        let searcher = open_reader(&index).unwrap().searcher();
        searcher
            .segment_readers()
            .iter()
            .map(|s| {
                let col = s.fast_fields().u64(NAME_KEY).unwrap();
                (0..s.max_doc()).filter_map(|d| col.first(d)).collect()
            })
            .collect()
    }

    #[test]
    fn one_segment_in_name_order_even_when_a_merge_renames_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Builder::create(dir.path()).unwrap();
        for i in 0..500 {
            let last = format!("Nom{:03}", (i * 7919) % 500);
            b.add(person(&format!("p{i}@medecin.mssante.fr"), "Marie", &last))
                .unwrap();
        }
        // known by its structure first; a later line gives the person's name, which sorts first
        let a = "zz@medecin.mssante.fr";
        let mut nameless = Entry::new(
            MailAddress::parse(a).unwrap(),
            BalType::Per,
            Source::Extraction,
        );
        nameless.organisation_name = Some("Zénith Santé".into());
        b.add(nameless).unwrap();
        b.add(person(a, "Aaron", "Abadie")).unwrap();
        // a red-listed repeat hides an address that was spooled
        let mut red = person("p3@medecin.mssante.fr", "Marie", "Rouge");
        red.red_listed = true;
        b.add(red).unwrap();
        let stats = b.commit().unwrap();
        assert_eq!((stats.entries, stats.merged, stats.red_listed), (500, 1, 1));

        let segments = name_keys(dir.path());
        assert_eq!(segments.len(), 1, "merged into one segment");
        let keys = &segments[0];
        assert_eq!(keys.len(), 500);
        assert!(
            keys.windows(2).all(|w| w[0] <= w[1]),
            "documents numbered in name order"
        );
        assert_eq!(
            keys[0],
            crate::analysis::name_key("Aaron Abadie"),
            "the renamed entry in its place"
        );
        let index = crate::DirectoryIndex::open(dir.path()).unwrap();
        assert_eq!(
            index.get(a).unwrap().unwrap().display_name(),
            "Aaron Abadie"
        );
        assert_eq!(index.get("p3@medecin.mssante.fr").unwrap(), None);
        let layout = Layout::new(dir.path());
        let generation = layout.dir(&layout.current().unwrap().unwrap());
        for scratch in [SPOOL_DIR, PARTS_DIR] {
            assert!(!generation.join(scratch).exists(), "{scratch} left behind");
        }
    }

    #[test]
    fn chunks_are_even_and_bounded() {
        for (total, threads) in [
            (1, 2),
            (7, 2),
            (535_000, 2),
            (1_000_000, 2),
            (80_001, 1),
            (0, 2),
        ] {
            let size = chunk_docs(total, threads);
            assert!((1..=CHUNK_DOCS).contains(&size), "{total}: {size}");
            let chunks = total.div_ceil(size);
            assert!(chunks <= total.div_ceil(CHUNK_DOCS).next_multiple_of(threads).max(1));
            if total >= threads {
                assert_eq!(chunks % threads, 0, "{total} in {chunks} chunks of {size}");
            }
        }
    }
}
