//! The files of one trail: the current file (`audit.jsonl`) and the rotated ones beside it
//! (`audit-20261206T073102123Z.jsonl`, named for the moment they were closed), and their retention.

use std::path::{Path, PathBuf};

use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::Error;

/// `20261206T073102123Z`: fixed width, so names sort in time order.
const STAMP: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second][subsecond digits:3]Z");

/// The current file of a trail and how its rotated files are named.
#[derive(Debug, Clone)]
pub(crate) struct TrailFiles {
    current: PathBuf,
    dir: PathBuf,
    /// `audit-`
    prefix: String,
    /// `.jsonl`, or empty when the file has no extension.
    suffix: String,
}

/// A rotated file and the moment it was closed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Rotated {
    pub closed: OffsetDateTime,
    pub path: PathBuf,
}

impl TrailFiles {
    /// The trail whose current file is `path`.
    pub fn new(path: &Path) -> Result<Self, Error> {
        let name = |part: Option<&std::ffi::OsStr>| {
            part.map(|p| {
                p.to_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::invalid("audit path", "the file name must be UTF-8"))
            })
            .transpose()
        };
        let stem = name(path.file_stem())?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::invalid("audit path", format!("{} names no file", path.display()))
            })?;
        let suffix = name(path.extension())?.map_or_else(String::new, |e| format!(".{e}"));
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(TrailFiles {
            current: path.to_path_buf(),
            dir,
            prefix: format!("{stem}-"),
            suffix,
        })
    }

    /// The current file.
    pub fn current(&self) -> &Path {
        &self.current
    }

    /// The directory holding the trail.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The name a file closed at `closed` takes.
    pub fn rotated_path(&self, closed: OffsetDateTime) -> Result<PathBuf, Error> {
        let stamp = closed
            .to_offset(UtcOffset::UTC)
            .format(STAMP)
            .map_err(|e| Error::invalid("audit rotation time", e.to_string()))?;
        Ok(self
            .dir
            .join(format!("{}{stamp}{}", self.prefix, self.suffix)))
    }

    /// When the file named `name` was closed, if it is one of this trail's rotated files.
    fn closed_at(&self, name: &str) -> Option<OffsetDateTime> {
        let stamp = name
            .strip_prefix(&self.prefix)?
            .strip_suffix(self.suffix.as_str())?;
        if stamp.len() != 19 {
            return None;
        }
        PrimitiveDateTime::parse(stamp, STAMP)
            .ok()
            .map(PrimitiveDateTime::assume_utc)
    }

    /// The rotated files, oldest first.
    pub fn rotated(&self) -> Result<Vec<Rotated>, Error> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut rotated = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let name = entry.file_name();
            if let Some(closed) = name.to_str().and_then(|n| self.closed_at(n)) {
                rotated.push(Rotated {
                    closed,
                    path: entry.path(),
                });
            }
        }
        rotated.sort();
        Ok(rotated)
    }

    /// Deletes the rotated files closed more than `keep_days` before `now` (by the time in their name: a
    /// copy or a `touch` does not change what they hold). Returns the files deleted.
    pub fn sweep(&self, keep_days: u32, now: OffsetDateTime) -> Result<Vec<PathBuf>, Error> {
        let limit = now - Duration::days(i64::from(keep_days));
        let mut deleted = Vec::new();
        for old in self.rotated()? {
            if old.closed >= limit {
                break;
            }
            match std::fs::remove_file(&old.path) {
                Ok(()) => deleted.push(old.path),
                // another writer swept it first
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&old.path, e)),
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn rotated_names_carry_the_closing_time_to_the_millisecond() {
        let files = TrailFiles::new(Path::new("/var/lib/mss/audit.jsonl")).unwrap();
        let p = files
            .rotated_path(datetime!(2026-12-06 07:31:02.123987 UTC))
            .unwrap();
        assert_eq!(p, Path::new("/var/lib/mss/audit-20261206T073102123Z.jsonl"));
        assert_eq!(
            files.closed_at("audit-20261206T073102123Z.jsonl"),
            Some(datetime!(2026-12-06 07:31:02.123 UTC))
        );
        for other in [
            "audit.jsonl",
            "audit.jsonl.lock",
            "audit-20261206T073102123Z.jsonl.gz",
            "audit-20261206T073102Z.jsonl",
            "audit-2026120XT073102123Z.jsonl",
            "other-20261206T073102123Z.jsonl",
        ] {
            assert_eq!(files.closed_at(other), None, "{other}");
        }
        let bare = TrailFiles::new(Path::new("trail")).unwrap();
        assert_eq!(
            bare.rotated_path(datetime!(2026-01-02 03:04:05 UTC))
                .unwrap(),
            Path::new("./trail-20260102T030405000Z")
        );
    }
}
