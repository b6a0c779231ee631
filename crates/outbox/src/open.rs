//! Which store a location names, and the default worker name.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::{PostgresStore, SqliteStore, Store};

/// Opens the outbox: a `postgresql://` URL (a queue shared by several workers), a SQLite file path, or
/// `<data_dir>/outbox.sqlite` when no location is given.
pub async fn open_store(data_dir: &Path, location: Option<&str>) -> Result<Arc<dyn Store>> {
    Ok(match location {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            Arc::new(PostgresStore::connect(u, 8).await?)
        }
        Some(u) if u.contains("://") => {
            return Err(Error::invalid(
                "outbox",
                format!("expected a postgresql:// URL or a file path, got {u:?}"),
            ));
        }
        Some(path) => Arc::new(SqliteStore::open(Path::new(path))?),
        None => {
            std::fs::create_dir_all(data_dir).map_err(|e| Error::Unavailable {
                reason: format!("creating {}: {e}", data_dir.display()),
            })?;
            Arc::new(SqliteStore::open(&data_dir.join(SqliteStore::FILE_NAME))?)
        }
    })
}

/// The default worker name: the host name.
pub fn default_worker_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
