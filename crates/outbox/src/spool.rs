//! The bytes of the embedded outbox's messages, kept beside the SQLite file rather than in it.
//!
//! In the database a 58 KB message was written twice (to the WAL, then again by the checkpoint), and while
//! a chunk of 500 went in, the one connection the workers also need was held for the whole 29 MB. Here
//! each acceptance writes its messages once, one after the other, into a new segment file, syncs it and its
//! directory, and only then commits the rows that point at them (segment, offset, length): a row never
//! points at bytes that could be lost, and an acceptance that fails or crashes before its commit leaves at
//! most an unreferenced segment, never a half-accepted message. Segments are never changed once written,
//! but for a purged received message's bytes, overwritten with zeros in place ([`Spool::erase`]).
//! A small acceptance (one letter, as a DPI sends them one at a time over MLLP) stays in its row instead:
//! there the three syncs of a segment, its directory and the WAL cost more than the second write.
//! Written here because it is a few file operations no crate does for us in this shape.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Where a message's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    /// The segment's file name (no directory part).
    pub segment: String,
    pub offset: u64,
    pub len: u64,
}

/// The directory of segments.
#[derive(Debug, Clone)]
pub(crate) struct Spool {
    dir: PathBuf,
}

/// Distinguishes the segments one process creates in the same millisecond.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl Spool {
    /// The spool of the database file `db`: `outbox.sqlite` keeps its bytes under `outbox.spool/` (a
    /// database itself named `*.spool` under `*.spool.d/`).
    pub fn beside(db: &Path) -> Spool {
        Self::beside_named(db, "spool")
    }

    /// A spool of the database file `db` for another kind of bytes: `outbox.sqlite` keeps what `kind`
    /// names under `outbox.<kind>/` (the received messages under `outbox.inbox/`), so each kind can be
    /// purged on its own terms.
    pub fn beside_named(db: &Path, kind: &str) -> Spool {
        let dir = if db.extension().is_some_and(|e| e == kind) {
            db.with_extension(format!("{kind}.d"))
        } else {
            db.with_extension(kind)
        };
        Spool { dir }
    }

    /// Writes `contents` into a new segment and makes it durable; answers where each one is. Nothing is
    /// left behind when it fails (a full disk gives its room back).
    pub fn write<'a>(&self, contents: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<Place>> {
        self.ensure_dir()?;
        let (path, mut file) = self.create_segment()?;
        let segment = file_name(&path);
        let written = (|| -> io::Result<Vec<Place>> {
            let mut places = Vec::new();
            let mut offset = 0u64;
            for content in contents {
                file.write_all(content)?;
                let len = content.len() as u64;
                places.push(Place {
                    segment: segment.clone(),
                    offset,
                    len,
                });
                offset += len;
            }
            file.sync_data()?;
            // the new name must survive a power cut as well as the bytes
            sync_dir(&self.dir)?;
            Ok(places)
        })();
        written.map_err(|e| {
            drop(file);
            let _ = fs::remove_file(&path);
            unavailable(&path, &e)
        })
    }

    /// The bytes at `place`.
    pub fn read(&self, place: &Place) -> Result<Vec<u8>> {
        // the name comes from our own rows; still, it may only name a file of this directory
        if place.segment.is_empty() || place.segment.contains(['/', '\\']) || place.segment == ".."
        {
            return Err(Error::Store {
                reason: format!("spool segment name {:?} is not a file name", place.segment),
            });
        }
        let path = self.dir.join(&place.segment);
        let len = usize::try_from(place.len).map_err(|_| Error::Store {
            reason: format!("{}: length {} too large", path.display(), place.len),
        })?;
        let read = (|| -> io::Result<Vec<u8>> {
            let mut file = File::open(&path)?;
            file.seek(SeekFrom::Start(place.offset))?;
            let mut bytes = vec![0; len];
            file.read_exact(&mut bytes)?;
            Ok(bytes)
        })();
        read.map_err(|e| match e.kind() {
            // an accepted message whose bytes are gone or cut short: the outbox was damaged, retrying won't help
            io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof => Error::Store {
                reason: format!(
                    "{}: the bytes of an accepted message are missing ({e})",
                    path.display()
                ),
            },
            _ => unavailable(&path, &e),
        })
    }

    /// The segments written more than `age` ago (by the time in their name), oldest first: those a sweep
    /// may remove when no row points at them. Younger ones may belong to an acceptance still under way.
    pub fn older_than(&self, age: std::time::Duration) -> Result<Vec<String>> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let limit = now.saturating_sub(age.as_millis());
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(unavailable(&self.dir, &e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let name = file_name(&entry.map_err(|e| unavailable(&self.dir, &e))?.path());
            let written = name
                .strip_suffix(".seg")
                .and_then(|n| n.split('-').next())
                .and_then(|millis| millis.parse::<u128>().ok());
            if written.is_some_and(|w| w < limit) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Overwrites the bytes at `places` with zeros and syncs them: a purged message's bytes do not linger in
    /// a segment other messages still use (the one change a segment ever sees).
    pub fn erase(&self, places: &[Place]) -> Result<()> {
        for place in places {
            if place.segment.is_empty()
                || place.segment.contains(['/', '\\'])
                || place.segment == ".."
            {
                continue;
            }
            let path = self.dir.join(&place.segment);
            let erased = (|| -> io::Result<()> {
                let mut file = match OpenOptions::new().write(true).open(&path) {
                    Ok(f) => f,
                    // already removed with its segment
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(e),
                };
                file.seek(SeekFrom::Start(place.offset))?;
                let zeros = [0u8; 8192];
                let mut left = place.len;
                while left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    file.write_all(&zeros[..n])?;
                    left -= n as u64;
                }
                file.sync_data()
            })();
            erased.map_err(|e| unavailable(&path, &e))?;
        }
        Ok(())
    }

    /// Removes the segments `names` (no row points at them any more, or ever did).
    pub fn remove(&self, names: &[String]) -> Result<u64> {
        let mut removed = 0;
        for name in names {
            if name.is_empty() || name.contains(['/', '\\']) || name == ".." {
                continue;
            }
            let path = self.dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(unavailable(&path, &e)),
            }
        }
        if removed > 0 {
            sync_dir(&self.dir).map_err(|e| unavailable(&self.dir, &e))?;
        }
        Ok(removed)
    }

    fn ensure_dir(&self) -> Result<()> {
        if self.dir.is_dir() {
            return Ok(());
        }
        // health data: readable by the service's user only
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.dir)
            .map_err(|e| unavailable(&self.dir, &e))?;
        if let Some(parent) = self.dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent).map_err(|e| unavailable(parent, &e))?;
        }
        Ok(())
    }

    fn create_segment(&self) -> Result<(PathBuf, File)> {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        loop {
            let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
            let path = self
                .dir
                .join(format!("{millis:013}-{}-{seq}.seg", std::process::id()));
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(&path) {
                Ok(file) => return Ok((path, file)),
                // another process of the same id (a container) wrote this name: take the next
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(unavailable(&path, &e)),
            }
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Disk full, permissions, I/O: nothing was persisted, a later try may succeed.
fn unavailable(path: &Path, e: &io::Error) -> Error {
    Error::Unavailable {
        reason: format!("{}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_back_from_where_they_were_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::beside(&dir.path().join("outbox.sqlite"));
        let places = spool
            .write([b"first".as_slice(), b"", b"third one".as_slice()])
            .expect("write");
        assert_eq!(places.len(), 3);
        assert_eq!(
            places[0].segment, places[2].segment,
            "one segment per write"
        );
        assert_eq!((places[2].offset, places[2].len), (5, 9));
        assert_eq!(spool.read(&places[2]).expect("read"), b"third one");
        assert_eq!(spool.read(&places[1]).expect("read"), b"");
        assert!(
            dir.path()
                .join("outbox.spool")
                .join(&places[0].segment)
                .is_file()
        );

        let other = spool.write([b"again".as_slice()]).expect("write");
        assert_ne!(
            other[0].segment, places[0].segment,
            "a new segment per write"
        );

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
            let spool_dir = dir.path().join("outbox.spool");
            assert_eq!(
                mode(&spool_dir),
                0o700,
                "health data: the service's user only"
            );
            assert_eq!(mode(&spool_dir.join(&places[0].segment)), 0o600);
        }
    }

    #[test]
    fn a_database_named_spool_keeps_its_bytes_apart() {
        let spool = Spool::beside(Path::new("/data/queue.spool"));
        assert_eq!(spool.dir, Path::new("/data/queue.spool.d"));
        assert_eq!(
            Spool::beside(Path::new("/data/outbox")).dir,
            Path::new("/data/outbox.spool")
        );
        assert_eq!(
            Spool::beside_named(Path::new("/data/outbox.sqlite"), "inbox").dir,
            Path::new("/data/outbox.inbox")
        );
        assert_eq!(
            Spool::beside_named(Path::new("/data/q.inbox"), "inbox").dir,
            Path::new("/data/q.inbox.d")
        );
    }

    #[test]
    fn missing_or_foreign_bytes_are_a_store_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::beside(&dir.path().join("outbox.sqlite"));
        let place = spool.write([b"short".as_slice()]).expect("write");
        let beyond = Place {
            len: 6,
            ..place[0].clone()
        };
        let e = spool.read(&beyond).expect_err("cut short");
        assert!(matches!(e, Error::Store { .. }), "{e}");
        assert!(e.to_string().contains("missing"), "{e}");
        for segment in ["../outbox.sqlite", "..", "", "gone.seg"] {
            let e = spool
                .read(&Place {
                    segment: segment.into(),
                    offset: 0,
                    len: 1,
                })
                .expect_err(segment);
            assert!(matches!(e, Error::Store { .. }), "{segment}: {e}");
        }
    }
}
