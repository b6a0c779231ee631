//! Writing the trail.
//!
//! Every line is appended with one `write()` on a file opened `O_APPEND`: the kernel places each at the end
//! of the file whole, so several threads and several processes (`mss serve`, and later others) may write the
//! same trail. Rotation renames the file and starts a new one; it runs under an exclusive `flock` on a sidecar
//! `<file>.lock` that every writer takes before rotating, and re-checks the size once it holds it, so two
//! writers never rotate twice nor overwrite a rotated file. A writer whose file was renamed by another
//! notices it at its next line (the path names another file) and reopens.
//!
//! Durability: a line is in the page cache when `write` returns, before the answer goes out, so it survives
//! the process being killed. A background thread `fdatasync`s the file at most once a second when lines
//! were written, and rotation syncs the closed file: a power cut loses at most the last second of lines.
//! Syncing every line would cost a disk flush per request, as much as the outbox's own commit of a batch,
//! and halve the acceptance rate of `POST /v1/batches`.

use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use time::OffsetDateTime;

use super::AuditRecord;
use super::files::TrailFiles;
use crate::Error;

/// How often written lines are flushed to the disk.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Where the trail goes and how long it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The current file (`<data>/audit.jsonl`); rotated files go beside it.
    pub path: PathBuf,
    /// Size past which the file is rotated.
    pub max_bytes: u64,
    /// Rotated files closed more than this many days ago are deleted.
    pub keep_days: u32,
}

impl AuditConfig {
    /// 64 MiB per file.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
    /// About six months, as the ANS asks of MSSanté traces (docs/mssante.md S2).
    pub const DEFAULT_KEEP_DAYS: u32 = 190;

    /// The trail at `path` with the default size and retention.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AuditConfig {
            path: path.into(),
            max_bytes: Self::DEFAULT_MAX_BYTES,
            keep_days: Self::DEFAULT_KEEP_DAYS,
        }
    }
}

/// The audit trail, open for appending. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct AuditLog {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: AuditConfig,
    files: TrailFiles,
    lock_path: PathBuf,
    current: Mutex<Current>,
    /// Lines written since the last sync.
    dirty: AtomicBool,
}

#[derive(Debug)]
struct Current {
    /// Shared with the sync thread, which syncs without holding the mutex.
    file: Arc<File>,
    /// Device and inode: whether the path still names this file.
    id: (u64, u64),
}

impl AuditLog {
    /// Opens (or creates, mode 0600, with its directory) the trail and deletes rotated files past
    /// retention. An existing file readable by others is narrowed to 0600, with a warning: the service owns
    /// it, and refusing to start would leave requests unaudited over a fault it can mend itself.
    pub fn open(config: AuditConfig) -> Result<AuditLog, Error> {
        if config.max_bytes == 0 {
            return Err(Error::invalid("audit max_bytes", "must be at least 1"));
        }
        if config.keep_days == 0 {
            return Err(Error::invalid("audit keep_days", "must be at least 1"));
        }
        let files = TrailFiles::new(&config.path)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(files.dir())
            .map_err(|e| Error::io(files.dir(), e))?;
        let current = open_current(&config.path)?;
        let mode = current
            .file
            .metadata()
            .map_err(|e| Error::io(&config.path, e))?
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %config.path.display(),
                mode = format!("{:o}", mode & 0o777),
                "the audit trail was readable by other users: narrowed to 0600"
            );
            current
                .file
                .set_permissions(Permissions::from_mode(0o600))
                .map_err(|e| Error::io(&config.path, e))?;
        }
        let mut lock_name = config.path.clone().into_os_string();
        lock_name.push(".lock");
        let lock_path = PathBuf::from(lock_name);
        end_cut_line(&config.path, &lock_path)?;
        let shared = Arc::new(Shared {
            lock_path,
            files,
            config,
            current: Mutex::new(current),
            dirty: AtomicBool::new(false),
        });
        shared.sweep();
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("audit-sync".into())
            .spawn(move || sync_every_second(&weak))
            .map_err(|e| Error::io(&shared.config.path, e))?;
        Ok(AuditLog { shared })
    }

    /// Appends `record` as one line, `json\n`, in one `write()`; rotates first when the line would take
    /// the file past `max_bytes`.
    pub fn write(&self, record: &AuditRecord) -> Result<(), Error> {
        let shared = &*self.shared;
        let path = &shared.config.path;
        let mut line = serde_json::to_vec(record).map_err(|e| Error::Format {
            path: path.clone(),
            reason: format!("audit record: {e}"),
        })?;
        line.push(b'\n');
        let mut current = shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shared.follow(&mut current)?;
        if shared.would_overflow(&current, line.len())? {
            shared.rotate(&mut current, line.len())?;
        }
        let written = loop {
            match (&*current.file).write(&line) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other.map_err(|e| Error::io(path, e))?,
            }
        };
        shared.dirty.store(true, Ordering::Release);
        if written < line.len() {
            // disk full: end the fragment so the next line starts whole; the reader reports the fragment
            let _ = (&*current.file).write(b"\n");
            return Err(Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("audit line cut after {written} of {} bytes", line.len()),
                ),
            ));
        }
        Ok(())
    }

    /// Flushes the written lines to the disk now (the background thread does it within a second).
    pub fn sync(&self) -> Result<(), Error> {
        self.shared.sync()
    }

    /// The current file.
    pub fn path(&self) -> &Path {
        &self.shared.config.path
    }
}

impl Shared {
    /// Reopens the path when it no longer names our file (another process rotated it).
    fn follow(&self, current: &mut Current) -> Result<(), Error> {
        let path = &self.config.path;
        match std::fs::metadata(path) {
            Ok(m) if (m.dev(), m.ino()) == current.id => Ok(()),
            Ok(_) => self.replace(current, open_current(path)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.replace(current, open_current(path)?)
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Moves to `next`, syncing the file left behind if it holds unsynced lines.
    fn replace(&self, current: &mut Current, next: Current) -> Result<(), Error> {
        if self.dirty.load(Ordering::Acquire) {
            current
                .file
                .sync_data()
                .map_err(|e| Error::io(&self.config.path, e))?;
        }
        *current = next;
        Ok(())
    }

    fn would_overflow(&self, current: &Current, line: usize) -> Result<bool, Error> {
        let size = current
            .file
            .metadata()
            .map_err(|e| Error::io(&self.config.path, e))?
            .len();
        // a line longer than max_bytes still goes whole into a file of its own
        Ok(size > 0 && size.saturating_add(line as u64) > self.config.max_bytes)
    }

    fn rotate(&self, current: &mut Current, line: usize) -> Result<(), Error> {
        let _lock = take_lock(&self.lock_path)?;
        // another writer may have rotated while we waited for the lock
        self.follow(current)?;
        if !self.would_overflow(current, line)? {
            return Ok(());
        }
        let path = &self.config.path;
        current.file.sync_data().map_err(|e| Error::io(path, e))?;
        let now = OffsetDateTime::now_utc();
        // two rotations within one millisecond (a tiny max_bytes): the later takes the next free name
        let mut closed = now;
        let mut target = self.files.rotated_path(closed)?;
        while std::fs::symlink_metadata(&target).is_ok() {
            closed += time::Duration::milliseconds(1);
            target = self.files.rotated_path(closed)?;
        }
        std::fs::rename(path, &target).map_err(|e| Error::io(path, e))?;
        *current = open_current(path)?;
        self.dirty.store(false, Ordering::Release);
        // the rename and the new file survive a power cut
        if let Err(e) = File::open(self.files.dir()).and_then(|d| d.sync_all()) {
            tracing::warn!(dir = %self.files.dir().display(), error = %e, "syncing the audit directory");
        }
        tracing::info!(rotated = %target.display(), "audit trail rotated");
        self.sweep_at(now);
        Ok(())
    }

    fn sweep(&self) {
        self.sweep_at(OffsetDateTime::now_utc());
    }

    /// Deletes old rotated files; a failure is logged, never stops the trail.
    fn sweep_at(&self, now: OffsetDateTime) {
        match self.files.sweep(self.config.keep_days, now) {
            Ok(deleted) => {
                for path in deleted {
                    tracing::info!(path = %path.display(), keep_days = self.config.keep_days, "old audit file deleted");
                }
            }
            Err(e) => tracing::warn!(error = %e, "deleting old audit files"),
        }
    }

    fn sync(&self) -> Result<(), Error> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let file = Arc::clone(
            &self
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .file,
        );
        file.sync_data().map_err(|e| {
            self.dirty.store(true, Ordering::Release);
            Error::io(&self.config.path, e)
        })
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Err(e) = self.sync() {
            tracing::warn!(error = %e, "syncing the audit trail");
        }
    }
}

fn sync_every_second(shared: &Weak<Shared>) {
    loop {
        std::thread::sleep(SYNC_INTERVAL);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Err(e) = shared.sync() {
            tracing::warn!(error = %e, "syncing the audit trail");
        }
    }
}

fn open_current(path: &Path) -> Result<Current, Error> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let m = file.metadata().map_err(|e| Error::io(path, e))?;
    Ok(Current {
        file: Arc::new(file),
        id: (m.dev(), m.ino()),
    })
}

/// The sidecar lock every writer holds to rotate, held until the file returned is dropped.
fn take_lock(lock_path: &Path) -> Result<File, Error> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(lock_path)
        .map_err(|e| Error::io(lock_path, e))?;
    lock.lock().map_err(|e| Error::io(lock_path, e))?;
    Ok(lock)
}

/// Ends with a newline a last line cut by a crash, so the first record of this run does not join it and
/// the reader reports only the fragment.
fn end_cut_line(path: &Path, lock_path: &Path) -> Result<(), Error> {
    let _lock = take_lock(lock_path)?;
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut last = [0u8];
    if len > 0 {
        file.read_exact_at(&mut last, len - 1)
            .map_err(|e| Error::io(path, e))?;
        if last[0] != b'\n' {
            (&file).write_all(b"\n").map_err(|e| Error::io(path, e))?;
        }
    }
    Ok(())
}
