//! The `IHE_XDM.zip` archive: writer and reader.
//!
//! Layout written (IHE ITI-32 and the ANS portability draft, which makes `README.TXT` and
//! `INDEX.HTM` mandatory):
//!
//! ```text
//! README.TXT
//! INDEX.HTM
//! IHE_XDM/
//! IHE_XDM/SUBSET01/
//! IHE_XDM/SUBSET01/METADATA.XML
//! IHE_XDM/SUBSET01/DOC00001.XML ...   (ISO 9660 level 1: 8.3, upper case)
//! ```
//!
//! The reader matches names case-insensitively, accepts any subset directory name and several
//! subsets, resolves each `URI` relative to its subset (or, as in one ANS sample, to `IHE_XDM/`),
//! and checks each document's SHA-1 `hash` and `size` against METADATA.XML and its patient against
//! the submission set and the CDA header (docs/mssante.md R3). Entry names that would escape a
//! directory (`../`, absolute) and repeated names are never used; inflating stops at a total and
//! a per-entry ratio ([`ReadLimits`]). [`inspect_archive`] keeps every fault as a plain-words
//! problem and reads on; [`read_archive`] wants a flawless archive and fails on the first fault.

use crate::Error;
use crate::cda::CdaHeader;
use crate::metadata::{self, DocumentEntry, Metadata, Replacement};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::io::{Cursor, Read};
use time::OffsetDateTime;
use zip::ZipArchive;

/// The attachment name (ANS IG example spelling; `IHE_XDM.ZIP` is also seen and accepted).
pub const ATTACHMENT_NAME: &str = "IHE_XDM.zip";
/// The subset directory written.
pub const SUBSET: &str = "IHE_XDM/SUBSET01";
/// Deflate level of the documents (zlib's default trade-off).
pub const DEFLATE_LEVEL: i64 = 6;
/// Deflate level of METADATA.XML: its repeated markup compresses almost as well at the fastest
/// level, for a third of the time.
pub const METADATA_DEFLATE_LEVEL: i64 = 1;

/// The 8.3 name of the `n`-th document (1-based): `DOC00001.XML`.
pub fn document_name(n: usize) -> String {
    format!("DOC{n:05}.XML")
}

/// One file of the archive to write.
pub struct ArchiveFile<'a> {
    /// Path inside the zip.
    pub path: &'a str,
    /// Bytes.
    pub content: &'a [u8],
    /// Deflate level, or `None` to store: a few hundred bytes gain nothing from a fresh deflate
    /// stream, whose set-up costs more than compressing them.
    pub deflate: Option<i64>,
}

/// Why an archive could not be written (only sizes beyond the classic zip format, which no
/// message reaches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveError(pub String);

impl std::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Writes the zip: local headers, data, central directory (APPNOTE 6.3, no zip64, no data
/// descriptors). Directory entries for `IHE_XDM/` and the subset come before the first file under
/// them, for readers that expect them. Entry times are `mtime` (UTC, clamped to the DOS range).
///
/// Written here rather than with the `zip` crate's writer: each document is deflated straight
/// into the output and its header patched, with no intermediate buffer and one deflate state per
/// level, which keeps composition close to the cost of deflate itself (see the bench). Reading
/// still uses the `zip` crate; Python's `zipfile` checks the output in the tests.
pub fn write_archive(
    files: &[ArchiveFile<'_>],
    mtime: OffsetDateTime,
) -> Result<Vec<u8>, ArchiveError> {
    let capacity = files
        .iter()
        .map(|f| f.content.len() / 2 + 128)
        .sum::<usize>()
        + 512;
    let mut out = Vec::with_capacity(capacity);
    let (dos_time, dos_date) = dos_datetime(mtime);
    let mut central = Vec::with_capacity(64 * (files.len() + 2));
    let mut entries = 0u16;
    let mut dirs_done = false;
    for f in files {
        if !dirs_done && f.path.starts_with("IHE_XDM/") {
            for dir in ["IHE_XDM/".to_string(), format!("{SUBSET}/")] {
                let entry = Entry {
                    name: &dir,
                    method: 0,
                    crc: 0,
                    csize: 0,
                    usize: 0,
                    dir: true,
                };
                add_entry(&mut out, &mut central, &entry, dos_time, dos_date, |_| {
                    Ok(())
                })?;
                entries += 1;
            }
            dirs_done = true;
        }
        let usize = u32::try_from(f.content.len())
            .map_err(|_| ArchiveError(format!("{}: larger than 4 GiB", f.path)))?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(f.content);
        let mut entry = Entry {
            name: f.path,
            method: 0,
            crc: crc.finalize(),
            csize: usize,
            usize,
            dir: false,
        };
        match f.deflate {
            None => add_entry(&mut out, &mut central, &entry, dos_time, dos_date, |o| {
                o.extend_from_slice(f.content);
                Ok(())
            })?,
            Some(level) => {
                entry.method = 8;
                with_compressor(level, |c| {
                    add_entry(&mut out, &mut central, &entry, dos_time, dos_date, |o| {
                        deflate_into(c, f.content, o)
                    })
                })?;
            }
        }
        entries = entries
            .checked_add(1)
            .ok_or_else(|| ArchiveError("more than 65535 entries".into()))?;
    }
    let cd_offset =
        u32::try_from(out.len()).map_err(|_| ArchiveError("archive larger than 4 GiB".into()))?;
    let cd_size = u32::try_from(central.len())
        .map_err(|_| ArchiveError("central directory too large".into()))?;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // this disk, disk of the central directory
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&[0, 0]); // comment length
    Ok(out)
}

struct Entry<'a> {
    name: &'a str,
    method: u16,
    crc: u32,
    csize: u32,
    usize: u32,
    dir: bool,
}

/// Writes a local header, the data (by `data`), patches the compressed size, and appends the
/// central directory record.
fn add_entry(
    out: &mut Vec<u8>,
    central: &mut Vec<u8>,
    e: &Entry<'_>,
    time: u16,
    date: u16,
    data: impl FnOnce(&mut Vec<u8>) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    let offset =
        u32::try_from(out.len()).map_err(|_| ArchiveError("archive larger than 4 GiB".into()))?;
    let name_len = u16::try_from(e.name.len())
        .map_err(|_| ArchiveError(format!("{}: name too long", e.name)))?;
    // version needed 2.0 (deflate, directories); flags 0 (names are ASCII)
    let fixed = |buf: &mut Vec<u8>, csize: u32| {
        buf.extend_from_slice(&20u16.to_le_bytes());
        buf.extend_from_slice(&0u16.to_le_bytes());
        buf.extend_from_slice(&e.method.to_le_bytes());
        buf.extend_from_slice(&time.to_le_bytes());
        buf.extend_from_slice(&date.to_le_bytes());
        buf.extend_from_slice(&e.crc.to_le_bytes());
        buf.extend_from_slice(&csize.to_le_bytes());
        buf.extend_from_slice(&e.usize.to_le_bytes());
        buf.extend_from_slice(&name_len.to_le_bytes());
        buf.extend_from_slice(&0u16.to_le_bytes()); // extra field length
    };
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    let csize_at = out.len() + 14;
    fixed(out, e.csize);
    out.extend_from_slice(e.name.as_bytes());
    let start = out.len();
    data(out)?;
    let csize = u32::try_from(out.len() - start)
        .map_err(|_| ArchiveError(format!("{}: larger than 4 GiB", e.name)))?;
    out[csize_at..csize_at + 4].copy_from_slice(&csize.to_le_bytes());

    central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    central.extend_from_slice(&0x0314u16.to_le_bytes()); // made by: Unix, 2.0
    fixed(central, csize);
    central.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // comment length, disk start, internal attributes
    let external: u32 = if e.dir {
        (0o040_755 << 16) | 0x10
    } else {
        0o100_644 << 16
    };
    central.extend_from_slice(&external.to_le_bytes());
    central.extend_from_slice(&offset.to_le_bytes());
    central.extend_from_slice(e.name.as_bytes());
    Ok(())
}

thread_local! {
    /// One deflate state per thread, reset between files: a fresh one allocates (and page-faults)
    /// a few hundred KiB, which costs as much as deflating a small document, and one state for
    /// every level keeps the caches warm.
    static COMPRESSOR: std::cell::RefCell<Option<flate2::Compress>> =
        const { std::cell::RefCell::new(None) };
}

fn with_compressor<T>(
    level: i64,
    f: impl FnOnce(&mut flate2::Compress) -> Result<T, ArchiveError>,
) -> Result<T, ArchiveError> {
    let level = flate2::Compression::new(u32::try_from(level.clamp(0, 9)).unwrap_or(6));
    COMPRESSOR.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            let c = slot.get_or_insert_with(|| flate2::Compress::new(level, false));
            c.reset();
            c.set_level(level)
                .map_err(|e| ArchiveError(format!("deflate level: {e}")))?;
            f(c)
        }
        // Re-entered (cannot happen today): use a fresh state rather than panic.
        Err(_) => f(&mut flate2::Compress::new(level, false)),
    })
}

/// Raw deflate of `input` appended to `out`, growing `out` as needed.
fn deflate_into(
    c: &mut flate2::Compress,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ArchiveError> {
    // deflate never expands by more than ~0.1 % plus a few bytes; reserve that up front.
    out.reserve(input.len() + input.len() / 512 + 64);
    let start_in = c.total_in();
    loop {
        let consumed = usize::try_from(c.total_in() - start_in).unwrap_or(input.len());
        let status = c
            .compress_vec(&input[consumed..], out, flate2::FlushCompress::Finish)
            .map_err(|e| ArchiveError(format!("deflate: {e}")))?;
        match status {
            flate2::Status::StreamEnd => return Ok(()),
            flate2::Status::Ok | flate2::Status::BufError => out.reserve(out.capacity().max(4096)),
        }
    }
}

fn dos_datetime(t: OffsetDateTime) -> (u16, u16) {
    let year = u16::try_from(t.year().clamp(1980, 2107)).unwrap_or(1980);
    let date = ((year - 1980) << 9) | (u16::from(u8::from(t.month())) << 5) | u16::from(t.day());
    let time =
        (u16::from(t.hour()) << 11) | (u16::from(t.minute()) << 5) | u16::from(t.second() / 2);
    (time, date)
}

/// `README.TXT`: who made the media and what it holds (IHE ITI-32 asks for the creator's
/// identity and contact). CRLF line ends, as on removable media.
pub fn readme(product: &str, sender: &str, created: &str, documents: usize) -> String {
    format!(
        "IHE_XDM - message MSSante\r\n\
         \r\n\
         Cree par : mss {} (reference produit {product})\r\n\
         Expediteur : {sender}\r\n\
         Date de creation (UTC) : {created}\r\n\
         Contenu : {SUBSET}/METADATA.XML et {documents} document(s) CDA R2\r\n\
         \r\n\
         Ouvrir INDEX.HTM pour la liste des documents.\r\n",
        env!("CARGO_PKG_VERSION"),
    )
}

/// `INDEX.HTM`: a static list of the documents with links (no script).
pub fn index(entries: &[(String, String)]) -> String {
    let mut s = String::from(
        "<!DOCTYPE html>\r\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>IHE_XDM</title></head><body>\r\n<h1>Documents</h1>\r\n<ul>\r\n",
    );
    for (file, title) in entries {
        s.push_str(&format!(
            "<li><a href=\"{SUBSET}/{}\">{}</a></li>\r\n",
            crate::xml::esc(file),
            crate::xml::esc(title)
        ));
    }
    s.push_str("</ul>\r\n<p><a href=\"README.TXT\">README.TXT</a></p>\r\n</body></html>\r\n");
    s
}

/// Bounds on what the reader accepts (a hostile archive cannot make it allocate more).
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Most entries in the zip.
    pub max_entries: usize,
    /// Most decompressed bytes in all read entries.
    pub max_total_bytes: u64,
    /// Most bytes of one METADATA.XML (a few KiB per document in practice).
    pub max_metadata_bytes: u64,
    /// Largest ratio of inflated to compressed size of one entry, once it inflates beyond
    /// [`RATIO_FLOOR`] bytes (below, small repetitive files may legitimately compress better).
    pub max_ratio: u64,
}

/// Entries that inflate to no more than this are never held to [`ReadLimits::max_ratio`].
pub const RATIO_FLOOR: u64 = 1024 * 1024;

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_entries: 10_000,
            // Twice the Mon espace santé message limit: generous for real traffic, bounded.
            max_total_bytes: 64 * 1024 * 1024,
            max_metadata_bytes: 8 * 1024 * 1024,
            // CDA XML deflates 5 to 20 times; a zip bomb, a thousand times.
            max_ratio: 100,
        }
    }
}

/// A document read from an archive, with its metadata entry (`Debug` shows the content's size).
#[derive(Clone, PartialEq, Eq)]
pub struct ReadDocument {
    /// Path inside the zip, as stored.
    pub path: String,
    /// The metadata entry.
    pub entry: DocumentEntry,
    /// The bytes.
    pub content: Vec<u8>,
    /// SHA-1 of `content`, lower-case hex.
    pub sha1: String,
    /// `content` has the METADATA.XML `size`.
    pub size_ok: bool,
    /// `sha1` is the METADATA.XML `hash`.
    pub hash_ok: bool,
    /// The CDA R2 header, when the document is a readable CDA.
    pub cda: Option<CdaHeader>,
}

impl ReadDocument {
    /// The name problems and views give the document: its `URI` as METADATA.XML writes it.
    pub fn name(&self) -> &str {
        uri_of(&self.entry)
    }

    /// Size and hash both match METADATA.XML.
    pub fn verified(&self) -> bool {
        self.size_ok && self.hash_ok
    }
}

impl std::fmt::Debug for ReadDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadDocument")
            .field("path", &self.path)
            .field("entry", &self.entry)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .field("size_ok", &self.size_ok)
            .field("hash_ok", &self.hash_ok)
            .finish_non_exhaustive()
    }
}

/// One subset directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subset {
    /// Its directory, as stored (e.g. `IHE_XDM/SUBSET01`).
    pub dir: String,
    /// Its METADATA.XML.
    pub metadata: Metadata,
    /// Its documents found in the zip, in METADATA.XML order.
    pub documents: Vec<ReadDocument>,
}

/// A read archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdmArchive {
    /// Subsets in zip order (usually one) whose METADATA.XML could be read.
    pub subsets: Vec<Subset>,
    /// `README.TXT` present (any case).
    pub has_readme: bool,
    /// `INDEX.HTM` present (any case).
    pub has_index: bool,
}

impl XdmArchive {
    /// All documents of all subsets.
    pub fn documents(&self) -> impl Iterator<Item = &ReadDocument> {
        self.subsets.iter().flat_map(|s| s.documents.iter())
    }

    /// The submission set's `patientId` (CX) of the first subset, as written.
    pub fn patient_id(&self) -> Option<&str> {
        self.subsets
            .first()
            .map(|s| s.metadata.submission_set.patient_id.as_str())
            .filter(|p| !p.is_empty())
    }

    /// The replace requests of all subsets.
    pub fn replacements(&self) -> impl Iterator<Item = &Replacement> {
        self.subsets
            .iter()
            .flat_map(|s| s.metadata.replacements.iter())
    }
}

/// What reading an archive gave: what could be read, and every fault found, in plain words
/// (`hash mismatch: DOC00001.XML`, `unsafe entry name ../x`…). A fault never hides the rest: a
/// document that fails its hash is still there, flagged, and the other documents are read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XdmReading {
    /// `None` when the bytes are not a zip or hold no METADATA.XML at all.
    pub archive: Option<XdmArchive>,
    /// The faults, in the order found; empty when every document was verified.
    pub problems: Vec<String>,
    /// Bytes inflated (METADATA.XML and documents), counted against
    /// [`ReadLimits::max_total_bytes`].
    pub inflated: u64,
}

/// Reads an archive with the default limits, keeping every fault as a problem (never fails).
pub fn inspect_archive(bytes: &[u8]) -> XdmReading {
    inspect_archive_with(bytes, ReadLimits::default())
}

/// Reads an archive, keeping every fault as a problem (never fails).
pub fn inspect_archive_with(bytes: &[u8], limits: ReadLimits) -> XdmReading {
    let mut faults = Vec::new();
    let mut budget = limits.max_total_bytes;
    let archive = walk_archive(bytes, limits, &mut budget, &mut faults);
    XdmReading {
        archive,
        problems: faults.into_iter().map(|f| f.problem).collect(),
        inflated: limits.max_total_bytes - budget,
    }
}

/// Reads an archive with the default limits. Errors are [`Error::Malformed`] naming the entry.
pub fn read_archive(bytes: &[u8]) -> Result<XdmArchive, Error> {
    read_archive_with(bytes, ReadLimits::default())
}

/// Reads an archive that must be flawless: the first fault is the error.
pub fn read_archive_with(bytes: &[u8], limits: ReadLimits) -> Result<XdmArchive, Error> {
    let mut faults = Vec::new();
    let mut budget = limits.max_total_bytes;
    let archive = walk_archive(bytes, limits, &mut budget, &mut faults);
    match (faults.into_iter().next(), archive) {
        (Some(f), _) => Err(Error::malformed(f.part, f.reason)),
        (None, Some(a)) => Ok(a),
        (None, None) => Err(Error::malformed(ZIP, "unreadable")),
    }
}

const ZIP: &str = "IHE_XDM.zip";

/// A fault, worded twice: the short problem kept with a received message, and the part and
/// reason of the strict reader's [`Error::Malformed`].
struct Fault {
    problem: String,
    part: String,
    reason: String,
}

impl Fault {
    fn new(problem: impl Into<String>, part: impl Into<String>, reason: impl Into<String>) -> Self {
        Fault {
            problem: problem.into(),
            part: part.into(),
            reason: reason.into(),
        }
    }
}

/// A name as problems show it: control characters replaced, at most 120 characters.
fn shown(name: &str) -> String {
    let mut s: String = name
        .chars()
        .take(120)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if name.chars().count() > 120 {
        s.push('…');
    }
    s
}

/// A `../` component, an absolute path (`/x`, `\x`, `C:`), or a backslash separator: a name a
/// careless extractor would write outside its directory.
fn unsafe_name(name: &str) -> bool {
    name.starts_with('/')
        || name.starts_with('\\')
        || name.as_bytes().get(1) == Some(&b':')
        || name.split(['/', '\\']).any(|c| c == "..")
}

fn uri_of(entry: &DocumentEntry) -> &str {
    entry.uri.trim().trim_start_matches("./")
}

/// The one walk behind [`inspect_archive_with`] and [`read_archive_with`].
/// `budget` is what may still be inflated; what is inflated is taken from it.
fn walk_archive(
    bytes: &[u8],
    limits: ReadLimits,
    budget: &mut u64,
    faults: &mut Vec<Fault>,
) -> Option<XdmArchive> {
    let mut zip = match ZipArchive::new(Cursor::new(bytes)) {
        Ok(z) => z,
        Err(e) => {
            faults.push(Fault::new(
                "not a zip archive",
                ZIP,
                format!("not a zip archive: {e}"),
            ));
            return None;
        }
    };
    if zip.len() > limits.max_entries {
        faults.push(Fault::new(
            format!("too many entries: {}", zip.len()),
            ZIP,
            format!("{} entries, more than {}", zip.len(), limits.max_entries),
        ));
        return None;
    }
    // The zip crate keeps one of several entries of the same name and hides the others: repeated
    // names are found in the central directory itself.
    let listed = central_directory_names(bytes);
    if let Some(names) = &listed {
        let mut seen = std::collections::HashSet::with_capacity(names.len());
        for name in names {
            if !unsafe_name(name) && !seen.insert(name.to_ascii_uppercase()) {
                let problem = format!("duplicate entry name {}", shown(name));
                faults.push(Fault::new(problem.clone(), ZIP, problem));
            }
        }
    }
    // Upper-cased path -> (index, stored path); unsafe and repeated names are left out.
    let mut by_name: HashMap<String, (usize, String)> = HashMap::with_capacity(zip.len());
    let mut metadata_files = Vec::new();
    for i in 0..zip.len() {
        let name = match zip.name_for_index(i) {
            Some(Ok(n)) => n.into_owned(),
            _ => {
                faults.push(Fault::new(
                    format!("unreadable entry name (entry {i})"),
                    ZIP,
                    format!("entry {i} has no readable name"),
                ));
                continue;
            }
        };
        if unsafe_name(&name) {
            let problem = format!("unsafe entry name {}", shown(&name));
            faults.push(Fault::new(problem.clone(), ZIP, problem));
            continue;
        }
        let upper = name.to_ascii_uppercase();
        if by_name.contains_key(&upper) {
            if listed.is_none() {
                let problem = format!("duplicate entry name {}", shown(&name));
                faults.push(Fault::new(problem.clone(), ZIP, problem));
            }
            continue;
        }
        let parts: Vec<&str> = upper.split('/').collect();
        if parts.len() == 3 && parts[0] == "IHE_XDM" && parts[2] == "METADATA.XML" {
            metadata_files.push((i, name.clone()));
        }
        by_name.insert(upper, (i, name));
    }
    if metadata_files.is_empty() {
        faults.push(Fault::new(
            "no METADATA.XML",
            ZIP,
            "no IHE_XDM/<subset>/METADATA.XML",
        ));
        return None;
    }
    let mut subsets = Vec::with_capacity(metadata_files.len());
    for (i, meta_path) in metadata_files {
        let part = format!("{ZIP}/{meta_path}");
        let Some(metadata) = read_metadata(&mut zip, i, &meta_path, &limits, budget, faults) else {
            continue;
        };
        let dir = meta_path
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        let mut documents = Vec::with_capacity(metadata.documents.len());
        for entry in &metadata.documents {
            let uri = uri_of(entry);
            if uri.is_empty() {
                faults.push(Fault::new(
                    format!("document without URI: {}", shown(&entry.entry_uuid)),
                    &part,
                    format!("document {} has no URI", entry.entry_uuid),
                ));
                continue;
            }
            if unsafe_name(uri) {
                let problem = format!("unsafe document URI {}", shown(uri));
                faults.push(Fault::new(problem.clone(), &part, problem));
                continue;
            }
            let candidates = [
                format!("{dir}/{uri}"),
                format!("IHE_XDM/{uri}"),
                uri.to_string(),
            ];
            let Some((index, path)) = candidates
                .iter()
                .find_map(|c| by_name.get(&c.to_ascii_uppercase()))
                .cloned()
            else {
                faults.push(Fault::new(
                    format!("missing document: {}", shown(uri)),
                    &part,
                    format!("document {uri} is listed but not in the archive"),
                ));
                continue;
            };
            let doc_part = format!("{ZIP}/{path}");
            let content = match read_entry(&mut zip, index, &limits, *budget) {
                Ok(c) => c,
                Err(e) => {
                    faults.push(e.fault(uri, &doc_part));
                    continue;
                }
            };
            *budget -= content.len() as u64;
            let size_ok = content.len() as u64 == entry.size;
            if !size_ok {
                faults.push(Fault::new(
                    format!("size mismatch: {}", shown(uri)),
                    &doc_part,
                    format!(
                        "size {} differs from METADATA.XML size {}",
                        content.len(),
                        entry.size
                    ),
                ));
            }
            let sha1 = mss_types::hex(&Sha1::digest(&content));
            let hash_ok = sha1.eq_ignore_ascii_case(entry.hash.trim());
            if !hash_ok {
                faults.push(Fault::new(
                    format!("hash mismatch: {}", shown(uri)),
                    &doc_part,
                    "SHA-1 differs from METADATA.XML hash",
                ));
            }
            // Not every document is a CDA (a PDF may travel too): only a readable one is compared.
            let cda = crate::cda::parse_header(&content).ok();
            check_patient(
                &metadata.submission_set.patient_id,
                entry,
                cda.as_ref(),
                uri,
                &doc_part,
                faults,
            );
            documents.push(ReadDocument {
                path,
                entry: entry.clone(),
                content,
                sha1,
                size_ok,
                hash_ok,
                cda,
            });
        }
        subsets.push(Subset {
            dir,
            metadata,
            documents,
        });
    }
    Some(XdmArchive {
        subsets,
        has_readme: by_name.contains_key("README.TXT"),
        has_index: by_name.contains_key("INDEX.HTM"),
    })
}

/// The entry names of the central directory, in order, when it is a plain (not zip64) one that
/// reads through; `None` otherwise.
fn central_directory_names(bytes: &[u8]) -> Option<Vec<String>> {
    const EOCD: [u8; 4] = 0x0605_4b50u32.to_le_bytes();
    const RECORD: [u8; 4] = 0x0201_4b50u32.to_le_bytes();
    let u16_at = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_le_bytes(
            bytes.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let lowest = bytes.len().saturating_sub(22 + 65_535);
    let eocd = (lowest..=bytes.len().checked_sub(22)?)
        .rev()
        .find(|&i| bytes[i..i + 4] == EOCD)?;
    let count = u16_at(eocd + 10)?;
    let offset = u32::from_le_bytes(bytes.get(eocd + 16..eocd + 20)?.try_into().ok()?);
    if count == 0xFFFF || offset == u32::MAX {
        return None;
    }
    let mut at = usize::try_from(offset).ok()?;
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        if bytes.get(at..at + 4)? != RECORD {
            return None;
        }
        let (name_len, extra_len, comment_len) =
            (u16_at(at + 28)?, u16_at(at + 30)?, u16_at(at + 32)?);
        let name = bytes.get(at + 46..at + 46 + name_len)?;
        names.push(String::from_utf8_lossy(name).into_owned());
        at += 46 + name_len + extra_len + comment_len;
    }
    Some(names)
}

fn read_metadata(
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    index: usize,
    path: &str,
    limits: &ReadLimits,
    budget: &mut u64,
    faults: &mut Vec<Fault>,
) -> Option<Metadata> {
    let part = format!("{ZIP}/{path}");
    let metadata_limits = ReadLimits {
        max_total_bytes: limits.max_metadata_bytes.min(*budget),
        ..*limits
    };
    let raw = match read_entry(
        zip,
        index,
        &metadata_limits,
        metadata_limits.max_total_bytes,
    ) {
        Ok(raw) => raw,
        Err(EntryFault::OverTotal) if limits.max_metadata_bytes < *budget => {
            faults.push(Fault::new(
                format!("METADATA.XML over the size limit: {}", shown(path)),
                &part,
                "METADATA.XML larger than the reading limit",
            ));
            return None;
        }
        Err(e) => {
            faults.push(e.fault(path, &part));
            return None;
        }
    };
    *budget -= raw.len() as u64;
    let read = std::str::from_utf8(&raw)
        .map_err(|e| format!("not UTF-8 (byte {})", e.valid_up_to()))
        .and_then(metadata::read);
    match read {
        Ok(m) => Some(m),
        Err(reason) => {
            faults.push(Fault::new(
                format!("unreadable METADATA.XML: {reason}"),
                &part,
                reason,
            ));
            None
        }
    }
}

/// The document's patient (its own `patientId`, else the submission set's) against the
/// submission set and the CDA's `recordTarget/patientRole/id` (docs/mssante.md R3).
fn check_patient(
    set_patient: &str,
    entry: &DocumentEntry,
    cda: Option<&CdaHeader>,
    uri: &str,
    part: &str,
    faults: &mut Vec<Fault>,
) {
    let set = metadata::parse_cx(set_patient);
    let own = metadata::parse_cx(&entry.patient_id);
    if let (Some(s), Some(o)) = (&set, &own)
        && !same_patient(s, o)
    {
        faults.push(Fault::new(
            format!("patient differs from the submission set: {}", shown(uri)),
            part,
            "patientId differs from the submission set's",
        ));
    }
    let Some((id, oid)) = own.or(set) else {
        return;
    };
    if crate::InsAuthority::from_oid(&oid).is_some() && crate::Ins::parse(&id).is_err() {
        faults.push(Fault::new(
            format!("patient id is not a valid INS: {}", shown(uri)),
            part,
            "patientId is not a valid INS",
        ));
    }
    let Some(cda) = cda.filter(|c| !c.patient_ids.is_empty()) else {
        return;
    };
    let in_cda = cda.patient_ids.iter().any(|i| {
        i.extension.as_deref().is_some_and(|x| {
            same_patient(&(x.to_string(), i.root.clone()), &(id.clone(), oid.clone()))
        })
    });
    if !in_cda {
        faults.push(Fault::new(
            format!("patient differs from the CDA: {}", shown(uri)),
            part,
            "patientId differs from the CDA recordTarget",
        ));
    }
}

/// Same identifier under the same authority (INS letters `2A`/`2B` in either case).
fn same_patient(a: &(String, String), b: &(String, String)) -> bool {
    a.0.trim().eq_ignore_ascii_case(b.0.trim()) && a.1.trim() == b.1.trim()
}

/// Why an entry could not be read.
enum EntryFault {
    Open(String),
    Inflate(String),
    /// Over the bytes left in the total budget.
    OverTotal,
    /// Over the compression ratio.
    OverRatio,
}

impl EntryFault {
    /// `name` is what problems call the entry: a document's URI, METADATA.XML's path.
    fn fault(self, name: &str, part: &str) -> Fault {
        let name = shown(name);
        match self {
            EntryFault::Open(e) => Fault::new(
                format!("unreadable entry: {name}"),
                part,
                format!("cannot open: {e}"),
            ),
            EntryFault::Inflate(e) => Fault::new(
                format!("corrupt entry: {name}"),
                part,
                format!("cannot inflate: {e}"),
            ),
            EntryFault::OverTotal => Fault::new(
                "archive over the size limit",
                part,
                "larger than the reading limit",
            ),
            EntryFault::OverRatio => Fault::new(
                format!("compression ratio over the limit: {name}"),
                part,
                "compression ratio over the reading limit",
            ),
        }
    }
}

/// Inflates one entry, never beyond `budget` bytes nor the ratio limit, whatever sizes the zip
/// declares.
fn read_entry(
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    index: usize,
    limits: &ReadLimits,
    budget: u64,
) -> Result<Vec<u8>, EntryFault> {
    let file = zip
        .by_index(index)
        .map_err(|e| EntryFault::Open(e.to_string()))?;
    let by_ratio = file
        .compressed_size()
        .saturating_mul(limits.max_ratio)
        .max(RATIO_FLOOR);
    let cap = budget.min(by_ratio);
    let declared = file.size();
    if declared > budget {
        return Err(EntryFault::OverTotal);
    }
    if declared > by_ratio {
        return Err(EntryFault::OverRatio);
    }
    let mut out = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    // Read at most the cap, plus one byte to detect excess.
    file.take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| EntryFault::Inflate(e.to_string()))?;
    if out.len() as u64 > cap {
        return Err(if cap == budget {
            EntryFault::OverTotal
        } else {
            EntryFault::OverRatio
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_names_are_8_3_upper_case() {
        assert_eq!(document_name(1), "DOC00001.XML");
        assert_eq!(document_name(12), "DOC00012.XML");
        assert_eq!(document_name(1).len(), 12);
    }

    #[test]
    fn names_that_leave_the_directory_are_unsafe() {
        for name in [
            "../x",
            "a/../../x",
            "/etc/x",
            "\\x",
            "a\\..\\x",
            "C:x",
            "c:/x",
        ] {
            assert!(unsafe_name(name), "{name}");
        }
        for name in [
            "IHE_XDM/SUBSET01/DOC00001.XML",
            "a..b/x",
            "..x",
            "x/.../y",
            "",
        ] {
            assert!(!unsafe_name(name), "{name}");
        }
        assert_eq!(shown("a\u{7}b"), "a?b");
        assert_eq!(shown(&"x".repeat(130)), format!("{}…", "x".repeat(120)));
    }

    #[test]
    fn the_central_directory_lists_every_name_even_repeated() {
        let t = time::macros::datetime!(2026-11-23 10:00 UTC);
        let file = |path| ArchiveFile {
            path,
            content: b"x",
            deflate: None,
        };
        let zip = write_archive(&[file("a"), file("b/c"), file("a")], t).expect("zip");
        assert_eq!(
            central_directory_names(&zip),
            Some(vec!["a".to_string(), "b/c".to_string(), "a".to_string()])
        );
        assert_eq!(central_directory_names(b"PK\x05\x06 too short"), None);
        assert_eq!(central_directory_names(&zip[..zip.len() - 30]), None);
    }

    #[test]
    fn a_zip_without_metadata_is_refused() {
        let zip = write_archive(
            &[ArchiveFile {
                path: "README.TXT",
                content: b"x",
                deflate: None,
            }],
            time::macros::datetime!(2026-11-23 10:00 UTC),
        )
        .expect("zip");
        assert_eq!(
            read_archive(&zip).err().map(|e| e.to_string()).as_deref(),
            Some("IHE_XDM.zip: no IHE_XDM/<subset>/METADATA.XML")
        );
        assert_eq!(
            read_archive(b"PK\x03\x04 garbage")
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("IHE_XDM.zip: not a zip archive: invalid Zip archive: Could not find EOCD")
        );
    }
}
