//! The national extraction file `Extraction_Correspondance_MSSante_AAAAMMJJhhmm` (docs/mssante.md D1).
//!
//! UTF-8, `|`-separated, one header line of exactly [`HEADER`], one line per mailbox. The reader streams:
//! memory does not grow with the file (each line is read into one reused buffer). A bad line never stops the
//! import: it comes out as a [`Rejection`] naming its line number and reason.

use std::collections::HashSet;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::{BalType, Coded, Department, Entry, MailAddress, Source};
use crate::prehashed::PreHashed;
use crate::{Error, Result};

/// The 31 column names of the national file, in order.
pub const HEADER: [&str; 31] = [
    "Type de BAL",
    "Adresse BAL",
    "Type Identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Type identifiant structure",
    "Identification Structure",
    "Service de rattachement",
    "Civilité d'exercice",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Catégorie profession",
    "Libellé de catégorie profession",
    "Code Profession",
    "Libellé Profession",
    "Code savoir-faire",
    "Libellé savoir-faire",
    "Dématérialisation",
    "Raison Sociale structure BAL",
    "Enseigne commerciale structure BAL",
    "L2COMPLEMENTLOCALISATION structure BAL",
    "L3COMPLEMENTDISTRIBUTION structure BAL",
    "L4NUMEROVOIE structure BAL",
    "L4COMPLEMENTNUMEROVOIE structure BAL",
    "NL4TYPEVOIE structure BAL",
    "L4LIBELLEVOIE structure BAL",
    "L5LIEUDITMENTION structure BAL",
    "L6LIGNEACHEMINEMENT structure BAL",
    "Code postal structure BAL",
    "Département structure BAL",
    "Pays structure BAL",
];

/// Field separator of the file.
pub const SEPARATOR: char = '|';

/// Longest line kept in a rejection report; the rest is cut.
const MAX_REPORTED_LINE: usize = 512;

/// A line that could not be read as an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// Why it was refused, naming the field.
    pub reason: String,
    /// The line as read (lossy UTF-8, cut after 512 bytes).
    pub raw: String,
}

/// One line of the file, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A valid mailbox.
    Entry(Box<Entry>),
    /// A line that was refused.
    Rejected(Rejection),
}

/// Streaming reader of an extraction. Iterate it to get one [`Record`] per data line; an `Err` item is an I/O
/// failure of the input itself, after which the iteration ends.
pub struct ExtractionReader<R> {
    input: R,
    buf: Vec<u8>,
    line: u64,
    updated_at: Option<String>,
    failed: bool,
}

impl<R: BufRead> ExtractionReader<R> {
    /// Reads and checks the header; fails on an empty input or a header that is not exactly [`HEADER`].
    pub fn new(mut input: R, updated_at: Option<String>) -> Result<Self> {
        let mut buf = Vec::with_capacity(1024);
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io("reading the extraction header", e))?;
        if n == 0 {
            return Err(Error::Empty);
        }
        let text = trim_line_end(&buf);
        let text = text.strip_prefix("\u{feff}".as_bytes()).unwrap_or(text);
        let header = String::from_utf8_lossy(text);
        check_header(&header)?;
        Ok(ExtractionReader {
            input,
            buf,
            line: 1,
            updated_at,
            failed: false,
        })
    }

    /// Number of the last line read (the header is line 1).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Reads whole lines until at least `target` bytes are held (or the input ends), for parsing
    /// elsewhere with [`Lines::records`]; `Ok(None)` at the end of the input.
    pub fn read_lines(&mut self, target: usize) -> Result<Option<Lines>> {
        if self.failed {
            return Ok(None);
        }
        let first = self.line + 1;
        let mut bytes = Vec::with_capacity(target + 1024);
        while bytes.len() < target {
            match self.input.read_until(b'\n', &mut bytes) {
                Ok(0) => break,
                Ok(_) => self.line += 1,
                Err(e) => {
                    self.failed = true;
                    return Err(Error::io(
                        format!("reading the extraction at line {}", self.line + 1),
                        e,
                    ));
                }
            }
        }
        Ok((!bytes.is_empty()).then_some(Lines { first, bytes }))
    }

    /// The update time given to every entry (from the file name).
    pub fn updated_at(&self) -> Option<&str> {
        self.updated_at.as_deref()
    }
}

/// A block of whole data lines, read by [`ExtractionReader::read_lines`].
#[derive(Debug)]
pub struct Lines {
    /// Number of the first line (the header is line 1).
    first: u64,
    bytes: Vec<u8>,
}

impl Lines {
    /// The records of these lines, in order, as [`ExtractionReader`] gives them.
    pub fn records<'a>(&'a self, updated_at: Option<&'a str>) -> impl Iterator<Item = Record> + 'a {
        self.bytes
            .split_inclusive(|&b| b == b'\n')
            .zip(self.first..)
            .filter_map(move |(raw, line)| record(line, raw, updated_at))
    }
}

impl<R: BufRead> Iterator for ExtractionReader<R> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(Error::io(
                        format!("reading the extraction at line {}", self.line + 1),
                        e,
                    )));
                }
            }
            self.line += 1;
            if let Some(r) = record(self.line, &self.buf, self.updated_at.as_deref()) {
                return Some(Ok(r));
            }
        }
    }
}

/// The record of line number `line` (`raw` with or without its line end); `None` for a blank line, which
/// carries nothing (a trailing newline at the end of the file).
fn record(line: u64, raw: &[u8], updated_at: Option<&str>) -> Option<Record> {
    let bytes = trim_line_end(raw);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let reject = |reason: String| {
        let cut = &bytes[..bytes.len().min(MAX_REPORTED_LINE)];
        Some(Record::Rejected(Rejection {
            line,
            reason,
            raw: String::from_utf8_lossy(cut).into_owned(),
        }))
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return reject(format!("not valid UTF-8 at byte {}", e.valid_up_to() + 1)),
    };
    match parse_line(text, updated_at) {
        Ok(entry) => Some(Record::Entry(Box::new(entry))),
        Err(e) => reject(e.to_string()),
    }
}

fn trim_line_end(buf: &[u8]) -> &[u8] {
    let mut end = buf.len();
    while end > 0 && (buf[end - 1] == b'\n' || buf[end - 1] == b'\r') {
        end -= 1;
    }
    &buf[..end]
}

/// Checks a header line, naming the first column that differs.
pub fn check_header(line: &str) -> Result<()> {
    let mut found = line.split(SEPARATOR);
    for (i, expected) in HEADER.iter().enumerate() {
        let got = found.next().unwrap_or("");
        if got.trim() != *expected {
            return Err(Error::Header {
                column: i + 1,
                expected,
                found: got.to_string(),
            });
        }
    }
    match found.next() {
        // a trailing separator is tolerated: it adds an empty 32nd column and nothing else
        Some("") | None if found.next().is_none() => Ok(()),
        Some(extra) => Err(Error::Header {
            column: HEADER.len() + 1,
            expected: "(end of line)",
            found: extra.to_string(),
        }),
        None => Ok(()),
    }
}

/// Parses one data line (without its line end).
pub fn parse_line(line: &str, updated_at: Option<&str>) -> Result<Entry> {
    let mut cols: Vec<&str> = line.split(SEPARATOR).collect();
    if cols.len() == HEADER.len() + 1 && cols[HEADER.len()].trim().is_empty() {
        cols.pop();
    }
    if cols.len() != HEADER.len() {
        return Err(Error::invalid(
            "line",
            format!("has {} columns, expected {}", cols.len(), HEADER.len()),
        ));
    }
    let opt = |i: usize| -> Option<String> {
        let v = cols[i].trim();
        (!v.is_empty()).then(|| v.to_string())
    };
    let coded = |c: usize, l: usize| -> Option<Coded> {
        match (opt(c), opt(l)) {
            (None, None) => None,
            (code, label) => Some(Coded {
                code: code.unwrap_or_default(),
                label: label.unwrap_or_default(),
            }),
        }
    };
    let bal_type: BalType = cols[0].parse()?;
    let address = MailAddress::parse(cols[1])?;
    let mut e = Entry::new(address, bal_type, Source::Extraction);
    e.person_id_type = opt(2);
    e.person_id = opt(3);
    e.person_national_id = opt(4);
    e.organisation_id_type = opt(5);
    e.organisation_id = opt(6);
    e.service = opt(7);
    e.civility = opt(8);
    e.last_name = opt(9);
    e.first_name = opt(10);
    e.profession_category = coded(11, 12);
    e.profession = coded(13, 14);
    e.speciality = coded(15, 16);
    e.dematerialisation = parse_flag(cols[17]);
    e.organisation_name = opt(18);
    e.organisation_trade_name = opt(19);
    e.address_complement = opt(20);
    e.address_distribution = opt(21);
    e.street_number = opt(22);
    e.street_number_complement = opt(23);
    e.street_type = opt(24);
    e.street_name = opt(25);
    e.locality = opt(26);
    e.delivery_line = opt(27);
    e.postal_code = opt(28);
    e.department = parse_department(cols[29]).or_else(|| {
        e.postal_code
            .as_deref()
            .and_then(Department::from_postal_code)
    });
    e.country = opt(30);
    e.updated_at = updated_at.map(str::to_string);
    Ok(e)
}

/// `true`/`True`/`1`/`oui` and their opposites; anything else is unknown.
fn parse_flag(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "oui" | "o" | "y" | "yes" => Some(true),
        "false" | "0" | "non" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// A department code, or a label carrying its code in parentheses (`Paris (75)`).
fn parse_department(v: &str) -> Option<Department> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    Department::parse(v).ok().or_else(|| {
        let inner = v.rsplit_once('(')?.1.strip_suffix(')')?;
        Department::parse(inner).ok()
    })
}

/// Writes one entry as a data line in the national format (no line end).
///
/// Fails when a value cannot be represented: the format has no escaping, so a value holding `|` or a line
/// break is refused, naming the field.
pub fn format_line(e: &Entry) -> Result<String> {
    // borrowed, not cloned: the generator writes half a million lines with this
    fn s(v: &Option<String>) -> Option<&str> {
        v.as_deref()
    }
    fn code(c: &Option<Coded>) -> Option<&str> {
        c.as_ref().map(|c| c.code.as_str())
    }
    fn label(c: &Option<Coded>) -> Option<&str> {
        c.as_ref().map(|c| c.label.as_str())
    }
    let cols: [(&'static str, Option<&str>); 31] = [
        ("bal_type", Some(e.bal_type.code())),
        ("address", Some(e.address.as_str())),
        ("person_id_type", s(&e.person_id_type)),
        ("person_id", s(&e.person_id)),
        ("person_national_id", s(&e.person_national_id)),
        ("organisation_id_type", s(&e.organisation_id_type)),
        ("organisation_id", s(&e.organisation_id)),
        ("service", s(&e.service)),
        ("civility", s(&e.civility)),
        ("last_name", s(&e.last_name)),
        ("first_name", s(&e.first_name)),
        ("profession_category", code(&e.profession_category)),
        ("profession_category", label(&e.profession_category)),
        ("profession", code(&e.profession)),
        ("profession", label(&e.profession)),
        ("speciality", code(&e.speciality)),
        ("speciality", label(&e.speciality)),
        (
            "dematerialisation",
            e.dematerialisation
                .map(|b| if b { "true" } else { "false" }),
        ),
        ("organisation_name", s(&e.organisation_name)),
        ("organisation_trade_name", s(&e.organisation_trade_name)),
        ("address_complement", s(&e.address_complement)),
        ("address_distribution", s(&e.address_distribution)),
        ("street_number", s(&e.street_number)),
        ("street_number_complement", s(&e.street_number_complement)),
        ("street_type", s(&e.street_type)),
        ("street_name", s(&e.street_name)),
        ("locality", s(&e.locality)),
        ("delivery_line", s(&e.delivery_line)),
        ("postal_code", s(&e.postal_code)),
        ("department", e.department.as_ref().map(Department::as_str)),
        ("country", s(&e.country)),
    ];
    let mut line = String::with_capacity(256);
    for (i, (field, value)) in cols.into_iter().enumerate() {
        if i > 0 {
            line.push(SEPARATOR);
        }
        if let Some(v) = value {
            if v.contains([SEPARATOR, '\n', '\r']) {
                return Err(Error::invalid(
                    field,
                    "contains `|` or a line break, which the extraction format cannot carry",
                ));
            }
            line.push_str(v);
        }
    }
    Ok(line)
}

/// Writes the header line (with its line end).
pub fn write_header(out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{}", HEADER.join("|"))
}

/// The time stamp in a file name `Extraction_Correspondance_MSSante_AAAAMMJJhhmm[.txt|.zip]`, as
/// `AAAA-MM-JJThh:mm:00` (local time in Paris, as the agency writes it).
pub fn timestamp_from_file_name(name: &str) -> Option<String> {
    let stem = name.rsplit(['/', '\\']).next()?;
    let stem = stem.split('.').next()?;
    let digits = stem.rsplit('_').next()?;
    if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let d = |r: std::ops::Range<usize>| &digits[r];
    Some(format!(
        "{}-{}-{}T{}:{}:00",
        d(0..4),
        d(4..6),
        d(6..8),
        d(8..10),
        d(10..12)
    ))
}

/// Opens an extraction from a path (`-` for stdin), a plain `.txt` or a `.zip` holding one, recognised by its
/// content, not its name, and hands a checked reader to `f`.
pub fn read_path<T, E: From<Error>>(
    path: &Path,
    f: impl FnOnce(ExtractionReader<&mut dyn BufRead>) -> Result<T, E>,
) -> Result<T, E> {
    read_path_counting(path, &AtomicU64::new(0), f)
}

/// [`read_path`], adding to `consumed` the bytes read from the input as they are read (compressed bytes for
/// a zip), so that a progress bar can compare it with the file size.
pub fn read_path_counting<T, E: From<Error>>(
    path: &Path,
    consumed: &AtomicU64,
    f: impl FnOnce(ExtractionReader<&mut dyn BufRead>) -> Result<T, E>,
) -> Result<T, E> {
    let updated_at = path.to_str().and_then(timestamp_from_file_name);
    if path.as_os_str() == "-" {
        let stdin = io::stdin();
        let mut lock = BufReader::with_capacity(
            1 << 16,
            Counting {
                inner: stdin.lock(),
                consumed,
            },
        );
        return read_stream(&mut lock, updated_at, f);
    }
    let file = File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut input = BufReader::with_capacity(
        1 << 16,
        Counting {
            inner: file,
            consumed,
        },
    );
    if !is_zip(&mut input).map_err(|e| Error::io(format!("reading {}", path.display()), e))? {
        let input: &mut dyn BufRead = &mut input;
        return f(ExtractionReader::new(input, updated_at)?);
    }
    let mut archive = zip::ZipArchive::new(input.into_inner())
        .map_err(|e| Error::Zip(format!("{}: {e}", path.display())))?;
    let index = (0..archive.len())
        .find(|&i| {
            archive
                .name_for_index(i)
                .and_then(Result::ok)
                .is_some_and(|n| n.to_ascii_lowercase().ends_with(".txt"))
        })
        .ok_or_else(|| Error::Zip(format!("{} holds no .txt file", path.display())))?;
    let member = archive
        .by_index(index)
        .map_err(|e| Error::Zip(format!("{}: {e}", path.display())))?;
    let updated_at = member
        .name()
        .ok()
        .and_then(|n| timestamp_from_file_name(&n))
        .or(updated_at);
    let mut member = BufReader::with_capacity(1 << 16, member);
    f(ExtractionReader::new(
        &mut member as &mut dyn BufRead,
        updated_at,
    )?)
}

/// Reads an extraction from any stream (plain text or a zip), for stdin and tests.
pub fn read_stream<T, E: From<Error>>(
    input: &mut dyn BufRead,
    updated_at: Option<String>,
    f: impl FnOnce(ExtractionReader<&mut dyn BufRead>) -> Result<T, E>,
) -> Result<T, E> {
    let mut input = input;
    if !is_zip(&mut input).map_err(|e| Error::io("reading the extraction", e))? {
        return f(ExtractionReader::new(input, updated_at)?);
    }
    // Streaming zip read: a non-seekable input is read member by member from its local headers.
    loop {
        let member = zip::read::read_zipfile_from_stream(&mut input)
            .map_err(|e| Error::Zip(e.to_string()))?;
        let Some(mut member) = member else {
            return Err(Error::Zip("the archive holds no .txt file".into()).into());
        };
        let name = member.name().map(|n| n.into_owned()).unwrap_or_default();
        if name.to_ascii_lowercase().ends_with(".txt") {
            let updated_at = timestamp_from_file_name(&name).or(updated_at);
            let mut buffered = BufReader::with_capacity(1 << 16, &mut member);
            return f(ExtractionReader::new(
                &mut buffered as &mut dyn BufRead,
                updated_at,
            )?);
        }
        io::copy(&mut member, &mut io::sink())
            .map_err(|e| Error::io("skipping a zip member", e))?;
    }
}

/// Counts the bytes that go through a reader.
struct Counting<'a, R> {
    inner: R,
    consumed: &'a AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<'_, R> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

fn is_zip(input: &mut impl BufRead) -> io::Result<bool> {
    Ok(input.fill_buf()?.starts_with(b"PK\x03\x04"))
}

/// Tells whether an address was seen before in this import, to merge lines of the same mailbox.
///
/// Keeps 8 bytes per address (a 64-bit hash), not the entries: about 4 MB for the national 535 k lines. A
/// hash collision only makes the importer look for an earlier entry that isn't there, so it is harmless.
#[derive(Default)]
pub struct SeenAddresses {
    seen: HashSet<u64, PreHashed>,
    hasher: std::hash::RandomState,
}

impl SeenAddresses {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` the first time an address is given, `false` afterwards.
    pub fn first_time(&mut self, address: &MailAddress) -> bool {
        let mut h = self.hasher.build_hasher();
        h.write(address.as_str().as_bytes());
        self.seen.insert(h.finish())
    }

    /// Number of distinct addresses seen.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing was seen yet.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Reads a whole extraction held in memory (tests, small inputs).
pub fn read_bytes(bytes: &[u8]) -> Result<(Vec<Entry>, Vec<Rejection>)> {
    let mut cursor = io::Cursor::new(bytes);
    read_stream(&mut cursor, None, |reader| {
        let mut entries = Vec::new();
        let mut rejected = Vec::new();
        for record in reader {
            match record? {
                Record::Entry(e) => entries.push(*e),
                Record::Rejected(r) => rejected.push(r),
            }
        }
        Ok((entries, rejected))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> String {
        HEADER.join("|")
    }

    const LINE: &str = "PER|jean.dupont@Medecin.MSSante.fr|8|10001234567|810001234567|1|750712184|Cardiologie|DR|Dupont|Jean|C|Civil|10|Médecin|SM04|Cardiologie et maladies vasculaires|true|Hôpital Saint-Louis||Bâtiment A||1||AV|Claude Vellefaux||75010 PARIS|75010|75|France";

    #[test]
    fn reads_a_national_line() {
        let input = format!("{}\r\n{LINE}\r\n", header());
        let (entries, rejected) = read_bytes(input.as_bytes()).unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        let e = &entries[0];
        assert_eq!(e.address.as_str(), "jean.dupont@medecin.mssante.fr");
        assert_eq!(e.bal_type, BalType::Per);
        assert_eq!(e.profession.as_ref().unwrap().code, "10");
        assert_eq!(
            e.speciality.as_ref().unwrap().label,
            "Cardiologie et maladies vasculaires"
        );
        assert_eq!(e.dematerialisation, Some(true));
        assert_eq!(e.department.as_ref().unwrap().as_str(), "75");
        assert_eq!(e.city(), Some("PARIS"));
        assert_eq!(e.street_type.as_deref(), Some("AV"));
        assert_eq!(e.address_distribution, None);
    }

    #[test]
    fn header_mismatch_names_the_column() {
        let bad = header().replace("Nom d'exercice", "Nom");
        let err = read_bytes(bad.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "extraction header: column 10 should be `Nom d'exercice`, found `Nom`"
        );
        let short = HEADER[..5].join("|");
        let err = read_bytes(short.as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .contains("column 6 should be `Type identifiant structure`, found ``"),
            "{err}"
        );
        let long = format!("{}|Extra", header());
        let err = read_bytes(long.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("column 32"), "{err}");
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(matches!(read_bytes(b""), Err(Error::Empty)));
    }

    #[test]
    fn bom_and_trailing_separator_are_tolerated() {
        let input = format!("\u{feff}{}|\n{LINE}|\n", header());
        let (entries, rejected) = read_bytes(input.as_bytes()).unwrap();
        assert_eq!((entries.len(), rejected.len()), (1, 0));
    }

    #[test]
    fn bad_lines_are_reported_not_fatal() {
        let mut input = format!("{}\n", header()).into_bytes();
        input.extend_from_slice(b"PER|truncated@medecin.mssante.fr|8\n");
        input.extend_from_slice(LINE.replace("PER|", "XYZ|").as_bytes());
        input.push(b'\n');
        input.extend_from_slice(LINE.replace("jean.dupont@", "jean dupont@").as_bytes());
        input.push(b'\n');
        input.extend_from_slice(&LINE.as_bytes()[..40]);
        input.extend_from_slice(&[0xff, 0xfe]);
        input.extend_from_slice(&LINE.as_bytes()[40..]);
        input.push(b'\n');
        input.extend_from_slice(LINE.as_bytes());
        let (entries, rejected) = read_bytes(&input).unwrap();
        assert_eq!(entries.len(), 1);
        let got: Vec<(u64, &str)> = rejected
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(got[0], (2, "line: has 3 columns, expected 31"));
        assert_eq!(
            got[1],
            (3, "bal_type: `XYZ` is not one of PER, ORG, APP, CAB")
        );
        assert_eq!(got[2].0, 4);
        assert!(
            got[2]
                .1
                .starts_with("address: `jean dupont@Medecin.MSSante.fr`"),
            "{}",
            got[2].1
        );
        assert_eq!(got[3], (5, "not valid UTF-8 at byte 41"));
    }

    #[test]
    fn written_lines_read_back() {
        let (entries, _) = read_bytes(format!("{}\n{LINE}\n", header()).as_bytes()).unwrap();
        let line = format_line(&entries[0]).unwrap();
        assert_eq!(parse_line(&line, None).unwrap(), entries[0]);
        let mut bad = entries[0].clone();
        bad.service = Some("a|b".into());
        assert_eq!(
            format_line(&bad).unwrap_err().to_string(),
            "service: contains `|` or a line break, which the extraction format cannot carry"
        );
    }

    #[test]
    fn timestamps_come_from_the_file_name() {
        assert_eq!(
            timestamp_from_file_name("/tmp/Extraction_Correspondance_MSSante_202608261013.zip")
                .as_deref(),
            Some("2026-08-26T10:13:00")
        );
        assert_eq!(
            timestamp_from_file_name("extraction-correspondance-mssante.txt"),
            None
        );
    }

    #[test]
    fn department_label_with_code() {
        assert_eq!(
            parse_department("Corse-du-Sud (2A)").unwrap().as_str(),
            "2A"
        );
        assert_eq!(parse_department("nowhere"), None);
    }

    #[test]
    fn seen_addresses() {
        let mut seen = SeenAddresses::new();
        let a = MailAddress::parse("a@b.fr").unwrap();
        assert!(seen.first_time(&a));
        assert!(!seen.first_time(&a));
        assert_eq!(seen.len(), 1);
    }
}
