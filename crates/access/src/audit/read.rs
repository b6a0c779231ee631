//! Reading the trail back: rotated files oldest first, then the current file, line by line. A damaged line
//! (a write cut by a crash or a full disk, an edit by hand) is reported with its file and line number and
//! reading goes on.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime};

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

impl AuditQuery {
    /// Reads a `--since` value: an RFC 3339 time (`2026-12-01T08:00:00Z`), a date (`2026-12-01`, midnight
    /// UTC), or a span back from `now` in days or hours (`7d`, `24h`).
    pub fn parse_since(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, Error> {
        let refused = || {
            Error::invalid(
                "since",
                format!(
                    "`{text}` is not a time: give 2026-12-01T08:00:00Z (RFC 3339), 2026-12-01 (midnight \
                     UTC) or a span back from now such as 7d or 24h"
                ),
            )
        };
        if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
            return Ok(t);
        }
        if let Ok(day) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
            return Ok(day.midnight().assume_utc());
        }
        let (count, unit): (&str, fn(i64) -> Duration) = if let Some(days) = text.strip_suffix('d')
        {
            (days, |n| Duration::days(n.min(1_000_000)))
        } else if let Some(hours) = text.strip_suffix('h') {
            (hours, |n| Duration::hours(n.min(24_000_000)))
        } else {
            return Err(refused());
        };
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refused());
        }
        let span = unit(count.parse().map_err(|_| refused())?);
        now.checked_sub(span).ok_or_else(refused)
    }
}

/// The trail whose current file is `path`, oldest record first: every record matching `query`, and an
/// [`Error::Format`] (`line N: …`, naming the file) for each damaged line. A rotated file closed well
/// before `since` is not opened.
pub fn read(path: &Path, query: &AuditQuery) -> Result<AuditEntries, Error> {
    let files = TrailFiles::new(path)?;
    // a writer that was mid-line when another rotated may append a record slightly later than the name
    let margin = Duration::minutes(1);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-06 07:31:02.5 UTC);

    #[test]
    fn since_reads_rfc3339_a_date_or_a_span_back_from_now() {
        let parse = |t| AuditQuery::parse_since(t, NOW);
        assert_eq!(
            parse("2026-12-01T08:00:00Z").unwrap(),
            datetime!(2026-12-01 08:00 UTC)
        );
        assert_eq!(
            parse("2026-12-01T09:00:00.250+01:00").unwrap(),
            datetime!(2026-12-01 08:00:00.25 UTC)
        );
        assert_eq!(
            parse("2026-12-01").unwrap(),
            datetime!(2026-12-01 00:00 UTC)
        );
        assert_eq!(parse("7d").unwrap(), datetime!(2026-11-29 07:31:02.5 UTC));
        assert_eq!(parse("24h").unwrap(), datetime!(2026-12-05 07:31:02.5 UTC));
        assert_eq!(parse("0h").unwrap(), NOW);
        for bad in [
            "",
            "d",
            "7",
            "7w",
            "-7d",
            "+7d",
            "7 d",
            "2026-13-01",
            "2026-12-01T08:00:00",
            "99999999999999999999d",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("since: `{bad}` is not a time")),
                "{bad}: {e}"
            );
        }
    }

    proptest! {
        #[test]
        fn since_never_panics(text in ".{0,40}") {
            let _ = AuditQuery::parse_since(&text, NOW);
        }

        #[test]
        fn since_spans_count_back_from_now(n in 0i64..100_000) {
            prop_assert_eq!(AuditQuery::parse_since(&format!("{n}d"), NOW).unwrap(), NOW - Duration::days(n));
            prop_assert_eq!(AuditQuery::parse_since(&format!("{n}h"), NOW).unwrap(), NOW - Duration::hours(n));
        }
    }
}
