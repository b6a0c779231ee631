//! On-disk layout: `<data_dir>/index/gen-<n>/` tantivy directories and `<data_dir>/index/CURRENT`, a text
//! file naming the generation that serves.
//!
//! A rebuild writes a fresh generation and only then replaces `CURRENT` (write to a temporary file, fsync,
//! rename, fsync the directory), so a reader sees either the old or the new generation, never a half-built
//! one. An interrupted rebuild leaves a stale `gen-*` directory behind, removed by the next rebuild.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result, io};

const CURRENT: &str = "CURRENT";
const PREFIX: &str = "gen-";
/// Held by a running rebuild, so that a second one does not remove the first one's directory.
const BUILD_LOCK: &str = "build.lock";

pub(crate) struct Layout {
    root: PathBuf,
}

/// The number of a generation directory name, if it is one.
fn number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Layout {
    pub(crate) fn new(data_dir: &Path) -> Self {
        Layout {
            root: data_dir.join("index"),
        }
    }

    pub(crate) fn dir(&self, generation: &str) -> PathBuf {
        self.root.join(generation)
    }

    /// The generation named by `CURRENT`, or `None` when there is none yet.
    pub(crate) fn current(&self) -> Result<Option<String>> {
        let path = self.root.join(CURRENT);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(|| format!("reading {}", path.display()))(e)),
        };
        let name = text.trim();
        if number(name).is_none() {
            return Err(Error::Corrupt {
                reason: format!("{} names `{name}`, not a generation", path.display()),
            });
        }
        Ok(Some(name.to_string()))
    }

    /// Makes `generation` current, atomically.
    pub(crate) fn set_current(&self, generation: &str) -> Result<()> {
        let tmp = self
            .root
            .join(format!("{CURRENT}.tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            writeln!(f, "{generation}")?;
            f.sync_all()?;
            fs::rename(&tmp, self.root.join(CURRENT))?;
            // the rename itself must reach the disk before we delete the previous generation
            File::open(&self.root)?.sync_all()
        };
        write().map_err(io(|| {
            format!("making {generation} current in {}", self.root.display())
        }))
    }

    /// Every generation directory present, by number.
    pub(crate) fn generations(&self) -> Result<Vec<(u64, String)>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(|| format!("listing {}", self.root.display()))(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(|| format!("listing {}", self.root.display())))?;
            if let Some(name) = entry.file_name().to_str()
                && let Some(n) = number(name)
            {
                out.push((n, name.to_string()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Takes the rebuild lock; `Error::Busy` when another rebuild holds it. Released when the file closes,
    /// including when the process dies.
    pub(crate) fn lock_build(&self) -> Result<File> {
        fs::create_dir_all(&self.root)
            .map_err(io(|| format!("creating {}", self.root.display())))?;
        let path = self.root.join(BUILD_LOCK);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(|| format!("opening {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(fs::TryLockError::WouldBlock) => Err(Error::Busy {
                data_dir: self.root.clone(),
            }),
            Err(fs::TryLockError::Error(e)) => Err(io(|| format!("locking {}", path.display()))(e)),
        }
    }

    /// Creates the next generation directory (one past every existing one).
    pub(crate) fn create_next(&self) -> Result<(String, PathBuf)> {
        let mut n = self.generations()?.last().map_or(1, |(n, _)| n + 1);
        if let Some(cur) = self.current()?.as_deref().and_then(number) {
            n = n.max(cur + 1);
        }
        loop {
            let name = format!("{PREFIX}{n}");
            let dir = self.dir(&name);
            match fs::create_dir(&dir) {
                Ok(()) => return Ok((name, dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(io(|| format!("creating {}", dir.display()))(e)),
            }
        }
    }

    /// Removes every generation but `keep` (best effort: a failure is logged, the index still works).
    pub(crate) fn remove_others(&self, keep: &[&str]) -> Result<()> {
        for (_, name) in self.generations()? {
            if keep.contains(&name.as_str()) {
                continue;
            }
            let dir = self.dir(&name);
            if let Err(e) = fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove an old index generation");
            }
        }
        Ok(())
    }
}

/// Bytes used by the files of a directory (not recursive: tantivy directories are flat).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
