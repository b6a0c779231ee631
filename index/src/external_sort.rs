//! External sort of prepared documents by name, for rebuilds.
//!
//! A rebuild's documents arrive in file order but the index numbers them in name order (see `engine`).
//! tantivy can sort each segment itself, but then it writes every stored record to a temporary store,
//! reads them back one by one in the new order (16 KB copied per record) and merges the segments with a
//! k-way merge that recompresses every record: 40 % of an import. Sorted here instead, the documents
//! reach tantivy in order, each segment holds a contiguous range of names, and the final merge only
//! concatenates (tantivy's disjoint-segments path).
//!
//! Documents are held in memory up to [`RUN_BYTES`]; beyond that every run is sorted and written to a
//! file (the last one too), and [`Sorted`] merges the runs. Memory stays bounded whatever the number of
//! entries. Written
//! by hand: no maintained crate sorts variable-length records externally with a bounded memory.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use crate::schema::SortKey;
use crate::{Error, Result, io};

/// Bytes of prepared documents held in memory before a run is written (~400 bytes a document). Larger
/// runs were no faster (48 MB: same import time, 15 MB more memory).
const RUN_BYTES: usize = 16 << 20;
/// I/O buffer of each run file.
const RUN_BUFFER: usize = 256 << 10;

#[derive(Clone, Copy)]
struct Slot {
    key: SortKey,
    start: usize,
    len: usize,
}

/// Documents being collected, in runs.
pub(crate) struct Spool {
    dir: PathBuf,
    arena: Vec<u8>,
    slots: Vec<Slot>,
    runs: Vec<PathBuf>,
    run_bytes: usize,
    len: usize,
    bytes: usize,
}

impl Spool {
    /// A spool writing its runs (if any) into `dir`, created on first use.
    pub(crate) fn new(dir: PathBuf) -> Self {
        Spool {
            dir,
            arena: Vec::new(),
            slots: Vec::new(),
            runs: Vec::new(),
            run_bytes: RUN_BYTES,
            len: 0,
            bytes: 0,
        }
    }

    /// Adds a prepared document.
    pub(crate) fn push(&mut self, key: SortKey, doc: &[u8]) -> Result<()> {
        if !self.arena.is_empty() && self.arena.len() + doc.len() > self.run_bytes {
            self.spill()?;
        }
        if self.arena.capacity() == 0 {
            // once: growing by doubling would copy the run several times
            self.arena.reserve_exact(self.run_bytes);
        }
        self.slots.push(Slot {
            key,
            start: self.arena.len(),
            len: doc.len(),
        });
        self.arena.extend_from_slice(doc);
        self.len += 1;
        self.bytes += doc.len();
        Ok(())
    }

    /// Sorts the documents in memory and writes them as a run file.
    fn spill(&mut self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(io(|| format!("creating {}", self.dir.display())))?;
        let path = self.dir.join(format!("run-{}", self.runs.len()));
        let context = || format!("writing {}", path.display());
        let file = File::create(&path).map_err(io(context))?;
        let mut out = BufWriter::with_capacity(RUN_BUFFER, file);
        self.slots.sort_unstable_by_key(|s| s.key);
        for s in &self.slots {
            let doc = &self.arena[s.start..s.start + s.len];
            let len = u32::try_from(doc.len()).map_err(|_| Error::Corrupt {
                reason: format!("a prepared document of {} bytes", doc.len()),
            })?;
            let mut header = [0u8; HEADER];
            header[..8].copy_from_slice(&s.key.name.to_le_bytes());
            header[8..16].copy_from_slice(&s.key.address.to_le_bytes());
            header[16..].copy_from_slice(&len.to_le_bytes());
            out.write_all(&header).map_err(io(context))?;
            out.write_all(doc).map_err(io(context))?;
        }
        out.flush().map_err(io(context))?;
        self.runs.push(path);
        self.arena.clear();
        self.slots.clear();
        Ok(())
    }

    /// The documents in key order.
    pub(crate) fn into_sorted(mut self) -> Result<Sorted> {
        if !self.runs.is_empty() && !self.slots.is_empty() {
            // the last run too: its memory is then free for the indexing that follows
            self.spill()?;
            self.arena = Vec::new();
        }
        self.slots.sort_unstable_by_key(|s| s.key);
        let mut sources = Vec::with_capacity(self.runs.len() + 1);
        for path in &self.runs {
            let file = File::open(path).map_err(io(|| format!("reading {}", path.display())))?;
            sources.push(Source::File {
                path: path.clone(),
                input: BufReader::with_capacity(RUN_BUFFER, file),
                doc: Vec::new(),
            });
        }
        sources.push(Source::Memory {
            arena: std::mem::take(&mut self.arena),
            slots: std::mem::take(&mut self.slots),
            next: 0,
        });
        let mut sorted = Sorted {
            len: self.len,
            bytes: self.bytes,
            sources,
            heap: BinaryHeap::new(),
        };
        for i in 0..sorted.sources.len() {
            if let Some(key) = sorted.sources[i].advance()? {
                sorted.heap.push(Reverse((key, i)));
            }
        }
        Ok(sorted)
    }
}

/// Key and length before each document of a run file.
const HEADER: usize = 20;

enum Source {
    Memory {
        arena: Vec<u8>,
        slots: Vec<Slot>,
        /// The slot after the current one.
        next: usize,
    },
    File {
        path: PathBuf,
        input: BufReader<File>,
        /// The current document.
        doc: Vec<u8>,
    },
}

impl Source {
    /// Moves to the next document; its key, or `None` at the end.
    fn advance(&mut self) -> Result<Option<SortKey>> {
        match self {
            Source::Memory { slots, next, .. } => {
                let key = slots.get(*next).map(|s| s.key);
                *next += 1;
                Ok(key)
            }
            Source::File { path, input, doc } => {
                let context = || format!("reading {}", path.display());
                let mut header = [0u8; HEADER];
                match input.read_exact(&mut header) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(io(context)(e)),
                }
                let word = |at: usize| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&header[at..at + 8]);
                    u64::from_le_bytes(b)
                };
                let mut len = [0u8; 4];
                len.copy_from_slice(&header[16..]);
                doc.resize(u32::from_le_bytes(len) as usize, 0);
                input.read_exact(doc).map_err(io(context))?;
                Ok(Some(SortKey {
                    name: word(0),
                    address: word(8),
                }))
            }
        }
    }

    /// The current document.
    fn doc(&self) -> &[u8] {
        match self {
            Source::Memory { arena, slots, next } => slots
                .get(next.wrapping_sub(1))
                .map_or(&[][..], |s| &arena[s.start..s.start + s.len]),
            Source::File { doc, .. } => doc,
        }
    }
}

/// The spooled documents in key order (a k-way merge of the runs).
pub(crate) struct Sorted {
    len: usize,
    bytes: usize,
    sources: Vec<Source>,
    heap: BinaryHeap<Reverse<(SortKey, usize)>>,
}

impl Sorted {
    /// Number of documents, given or not.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Mean size of a document.
    pub(crate) fn mean_size(&self) -> usize {
        self.bytes / self.len.max(1)
    }

    /// Appends the next document to `out` and returns its key; `None` when all were given.
    pub(crate) fn next_into(&mut self, out: &mut Vec<u8>) -> Result<Option<SortKey>> {
        let Some(Reverse((key, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let source = &mut self.sources[i];
        out.extend_from_slice(source.doc());
        if let Some(next) = source.advance()? {
            self.heap.push(Reverse((next, i)));
        }
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: u64, address: u64) -> SortKey {
        SortKey { name, address }
    }

    #[test]
    fn runs_merge_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(dir.path().join("spool"));
        // small runs: several files plus the run left in memory
        spool.run_bytes = 1000;
        let doc = |n: u64| vec![(n % 251) as u8; 300 + n as usize];
        let names = [9u64, 3, 7, 1, 12, 3, 0, 15, 8, 2, 11, 5, 14, 6, 4, 10, 13];
        for (i, &n) in names.iter().enumerate() {
            spool.push(key(n, i as u64), &doc(n)).unwrap();
        }
        assert!(spool.runs.len() >= 3, "{} runs", spool.runs.len());
        let mut sorted = spool.into_sorted().unwrap();
        assert_eq!(sorted.len(), names.len());
        let mut got = Vec::new();
        let mut out = Vec::new();
        while let Some(k) = sorted.next_into(&mut out).unwrap() {
            assert_eq!(out, doc(k.name), "the document of {k:?}");
            out.clear();
            got.push(k);
        }
        let mut want: Vec<SortKey> = names
            .iter()
            .enumerate()
            .map(|(i, &n)| key(n, i as u64))
            .collect();
        want.sort();
        assert_eq!(got, want);
    }
}
