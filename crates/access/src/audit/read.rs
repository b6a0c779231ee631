//! Reading the trail back: rotated files oldest first, then the current file, line by line. A damaged line
//! (a write cut by a crash or a full disk, an edit by hand) is reported with its file and line number and
//! reading goes on.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::AuditRecord;
use super::files::TrailFiles;
use crate::Error;

/// Lines longer than this are reported as damaged without being held in memory (a record is well under
/// a kilobyte).
const MAX_LINE: usize = 1 << 20;

/// Which records to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only records of this time or later.
    pub since: Option<OffsetDateTime>,
    /// Only records of this client.
    pub client: Option<String>,
}

impl AuditQuery {
    fn matches(&self, record: &AuditRecord) -> bool {
        self.since.is_none_or(|since| record.time >= since)
            && self
                .client
                .as_deref()
                .is_none_or(|c| record.client.as_deref() == Some(c))
    }
}

/// The trail whose current file is `path`, oldest record first: every record matching `query`, and an
/// [`Error::Format`] (`line N: …`, naming the file) for each damaged line. A rotated file closed well
/// before `since` is not opened.
pub fn read(path: &Path, query: &AuditQuery) -> Result<AuditEntries, Error> {
    let files = TrailFiles::new(path)?;
    // a writer that was mid-line when another rotated may append a record slightly later than the name
    let margin = time::Duration::minutes(1);
    let mut paths: Vec<PathBuf> = files
        .rotated()?
        .into_iter()
        .filter(|r| query.since.is_none_or(|since| r.closed + margin >= since))
        .map(|r| r.path)
        .collect();
    paths.push(files.current().to_path_buf());
    paths.reverse();
    Ok(AuditEntries {
        query: query.clone(),
        pending: paths,
        open: None,
    })
}

/// The records of a trail, in order; see [`read`].
#[derive(Debug)]
pub struct AuditEntries {
    query: AuditQuery,
    /// Files still to read, the next last.
    pending: Vec<PathBuf>,
    open: Option<OpenFile>,
}

#[derive(Debug)]
struct OpenFile {
    path: PathBuf,
    reader: BufReader<File>,
    line: u64,
}

impl Iterator for AuditEntries {
    type Item = Result<AuditRecord, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some(open) = &mut self.open else {
                let path = self.pending.pop()?;
                match File::open(&path) {
                    Ok(file) => {
                        self.open = Some(OpenFile {
                            path,
                            reader: BufReader::new(file),
                            line: 0,
                        })
                    }
                    // not written yet, or swept by a writer since the listing
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Some(Err(Error::io(path, e))),
                }
                continue;
            };
            let mut buf = Vec::new();
            let line = match read_line(&mut open.reader, &mut buf) {
                Ok(Line::End) => {
                    self.open = None;
                    continue;
                }
                Ok(line) => line,
                Err(e) => {
                    let path = open.path.clone();
                    self.open = None;
                    return Some(Err(Error::io(path, e)));
                }
            };
            open.line += 1;
            let damaged = |reason: String| {
                Some(Err(Error::Format {
                    path: open.path.clone(),
                    reason: format!("line {}: {reason}", open.line),
                }))
            };
            match line {
                Line::TooLong => return damaged(format!("longer than {MAX_LINE} bytes")),
                Line::Whole if buf.is_empty() => return damaged("empty line".into()),
                _ => {}
            }
            match serde_json::from_slice::<AuditRecord>(&buf) {
                Ok(record) if self.query.matches(&record) => return Some(Ok(record)),
                Ok(_) => {}
                Err(e) => return damaged(format!("not an audit record: {}", without_position(&e))),
            }
        }
    }
}

enum Line {
    /// Ended by a newline (not kept).
    Whole,
    /// The end of the file came first: the last line of a file being written, or cut by a crash.
    Unterminated,
    /// Over [`MAX_LINE`]: skipped to its end.
    TooLong,
    End,
}

fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Line> {
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(match (any, too_long) {
                (false, _) => Line::End,
                (true, true) => Line::TooLong,
                (true, false) => Line::Unterminated,
            });
        }
        any = true;
        let (part, newline) = match memchr(chunk) {
            Some(i) => (&chunk[..i], true),
            None => (chunk, false),
        };
        if buf.len() + part.len() > MAX_LINE {
            too_long = true;
            buf.clear();
        } else if !too_long {
            buf.extend_from_slice(part);
        }
        let used = part.len() + usize::from(newline);
        reader.consume(used);
        if newline {
            return Ok(if too_long { Line::TooLong } else { Line::Whole });
        }
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// serde's message without its "at line 1 column 9", which would read as the file's line.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(message) => format!("{message} (column {})", e.column()),
        None => text,
    }
}
