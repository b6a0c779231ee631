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
//! and checks each document's SHA-1 `hash` and `size` against METADATA.XML.

use crate::Error;
use crate::metadata::{self, DocumentEntry, Metadata};
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
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_entries: 10_000,
            // Twice the Mon espace santé message limit: generous for real traffic, bounded.
            max_total_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A document read from an archive, with its metadata entry (`Debug` shows the content's size).
#[derive(Clone, PartialEq, Eq)]
pub struct ReadDocument {
    /// Path inside the zip, as stored.
    pub path: String,
    /// The metadata entry (hash and size verified).
    pub entry: DocumentEntry,
    /// The bytes.
    pub content: Vec<u8>,
}

impl std::fmt::Debug for ReadDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadDocument")
            .field("path", &self.path)
            .field("entry", &self.entry)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .finish()
    }
}

/// One subset directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subset {
    /// Its directory, as stored (e.g. `IHE_XDM/SUBSET01`).
    pub dir: String,
    /// Its METADATA.XML.
    pub metadata: Metadata,
    /// Its documents, in METADATA.XML order.
    pub documents: Vec<ReadDocument>,
}

/// A read archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdmArchive {
    /// Subsets in zip order (usually one).
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
}

/// Reads an archive with the default limits. Errors are [`Error::Malformed`] naming the entry.
pub fn read_archive(bytes: &[u8]) -> Result<XdmArchive, Error> {
    read_archive_with(bytes, ReadLimits::default())
}

/// Reads an archive.
pub fn read_archive_with(bytes: &[u8], limits: ReadLimits) -> Result<XdmArchive, Error> {
    const Z: &str = "IHE_XDM.zip";
    let mut zip = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Error::malformed(Z, format!("not a zip archive: {e}")))?;
    if zip.len() > limits.max_entries {
        return Err(Error::malformed(
            Z,
            format!("{} entries, more than {}", zip.len(), limits.max_entries),
        ));
    }
    // Upper-cased path -> (index, stored path).
    let mut by_name: HashMap<String, (usize, String)> = HashMap::with_capacity(zip.len());
    let mut metadata_files = Vec::new();
    for i in 0..zip.len() {
        let name = match zip.name_for_index(i) {
            Some(Ok(n)) => n.into_owned(),
            _ => {
                return Err(Error::malformed(
                    Z,
                    format!("entry {i} has no readable name"),
                ));
            }
        };
        let upper = name.to_ascii_uppercase();
        let parts: Vec<&str> = upper.split('/').collect();
        if parts.len() == 3 && parts[0] == "IHE_XDM" && parts[2] == "METADATA.XML" {
            metadata_files.push((i, name.clone()));
        }
        by_name.insert(upper, (i, name));
    }
    if metadata_files.is_empty() {
        return Err(Error::malformed(Z, "no IHE_XDM/<subset>/METADATA.XML"));
    }
    let mut budget = limits.max_total_bytes;
    let mut subsets = Vec::with_capacity(metadata_files.len());
    for (i, meta_path) in metadata_files {
        let part = format!("{Z}/{meta_path}");
        let raw = read_entry(&mut zip, i, &part, &mut budget)?;
        let xml = std::str::from_utf8(&raw).map_err(|e| {
            Error::malformed(&part, format!("not UTF-8 (byte {})", e.valid_up_to()))
        })?;
        let metadata = metadata::read(xml).map_err(|r| Error::malformed(&part, r))?;
        let dir = meta_path
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        let mut documents = Vec::with_capacity(metadata.documents.len());
        for entry in &metadata.documents {
            let uri = entry.uri.trim().trim_start_matches("./");
            if uri.is_empty() {
                return Err(Error::malformed(
                    &part,
                    format!("document {} has no URI", entry.entry_uuid),
                ));
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
                return Err(Error::malformed(
                    &part,
                    format!("document {uri} is listed but not in the archive"),
                ));
            };
            let doc_part = format!("{Z}/{path}");
            let content = read_entry(&mut zip, index, &doc_part, &mut budget)?;
            if content.len() as u64 != entry.size {
                return Err(Error::malformed(
                    doc_part,
                    format!(
                        "size {} differs from METADATA.XML size {}",
                        content.len(),
                        entry.size
                    ),
                ));
            }
            let hash = mss_types::hex(&Sha1::digest(&content));
            if !hash.eq_ignore_ascii_case(entry.hash.trim()) {
                return Err(Error::malformed(
                    doc_part,
                    "SHA-1 differs from METADATA.XML hash",
                ));
            }
            documents.push(ReadDocument {
                path,
                entry: entry.clone(),
                content,
            });
        }
        subsets.push(Subset {
            dir,
            metadata,
            documents,
        });
    }
    Ok(XdmArchive {
        subsets,
        has_readme: by_name.contains_key("README.TXT"),
        has_index: by_name.contains_key("INDEX.HTM"),
    })
}

fn read_entry(
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    index: usize,
    part: &str,
    budget: &mut u64,
) -> Result<Vec<u8>, Error> {
    let file = zip
        .by_index(index)
        .map_err(|e| Error::malformed(part, format!("cannot open: {e}")))?;
    let declared = file.size();
    if declared > *budget {
        return Err(Error::malformed(part, "larger than the reading limit"));
    }
    let mut out = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    // Never trust the declared size: read at most the budget, plus one byte to detect excess.
    file.take(*budget + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::malformed(part, format!("cannot inflate: {e}")))?;
    if out.len() as u64 > *budget {
        return Err(Error::malformed(part, "larger than the reading limit"));
    }
    *budget -= out.len() as u64;
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
