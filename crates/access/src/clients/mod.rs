//! The clients of the REST service (docs/mssante.md S1): who they are, what their keys allow, and the file
//! that holds them (`<data>/clients.toml`), which `mss client` edits and `mss serve` watches.
//!
//! The file holds digests, never a key: a key is shown once, when it is made. Edits take a lock and replace
//! the file whole (write, sync, rename), so the service never reads half a file.

mod file;
mod key;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use mss_types::MailAddress;
use time::OffsetDateTime;

pub use file::{ClientRecord, ClientsFile, KeyRecord, NewClient};
pub use key::{KeyKind, NewKey, PresentedKey};

use crate::{Error, Scope};

/// Name of the clients file in the data directory.
pub const CLIENTS_FILE: &str = "clients.toml";

/// A client whose key was accepted: what the request may do.
#[derive(Debug)]
pub struct Client {
    /// Its name.
    pub name: String,
    /// Its kind of keys.
    pub kind: KeyKind,
    /// Its scopes.
    pub scopes: BTreeSet<Scope>,
    /// The sending mailboxes it may use; empty: any the service holds credentials for.
    pub senders: Vec<MailAddress>,
    /// The web origins a publishable key may be used from (`https://app.example.fr`).
    pub origins: Vec<String>,
}

impl Client {
    /// Whether it holds `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether it may send from `sender`.
    pub fn may_send_as(&self, sender: &MailAddress) -> bool {
        self.senders.is_empty() || self.senders.contains(sender)
    }

    /// Whether a browser page of `origin` may use its (publishable) key.
    pub fn allows_origin(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }
}

/// Why a presented key was refused. The caller answers the same 401 for each; only the audit says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// Not the shape of an mss key.
    Malformed,
    /// No key has its id.
    Unknown,
    /// The id is known, the rest is not its key.
    Wrong,
    /// The key was revoked.
    Revoked,
}

impl KeyRefusal {
    /// Its name in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRefusal::Malformed => "malformed_key",
            KeyRefusal::Unknown => "unknown_key",
            KeyRefusal::Wrong => "wrong_key",
            KeyRefusal::Revoked => "revoked_key",
        }
    }
}

/// One key of the registry.
struct KeyEntry {
    client: Arc<Client>,
    kind: KeyKind,
    digest: key::KeyDigest,
    revoked: bool,
    /// Last accepted use, seconds since the epoch (0: never), kept across reloads.
    last_used: Arc<AtomicI64>,
}

/// The keys of a clients file, by id: what a request is checked against.
#[derive(Default)]
pub struct Registry {
    keys: HashMap<String, KeyEntry>,
    clients: usize,
    origins: Vec<String>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("clients", &self.clients)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Registry {
    /// The registry of `file`, taking the last-use times of `previous` (a reload keeps them).
    pub fn new(file: &ClientsFile, previous: Option<&Registry>) -> Self {
        let mut keys = HashMap::new();
        let mut origins = Vec::new();
        for record in file.clients() {
            let client = Arc::new(Client {
                name: record.name.clone(),
                kind: record.kind,
                scopes: record.scopes.iter().copied().collect(),
                senders: record.senders.clone(),
                origins: record.origins.clone(),
            });
            origins.extend(record.origins.iter().cloned());
            for k in &record.keys {
                let last_used = previous
                    .and_then(|p| p.keys.get(&k.id))
                    .map_or_else(|| Arc::new(AtomicI64::new(0)), |e| Arc::clone(&e.last_used));
                keys.insert(
                    k.id.clone(),
                    KeyEntry {
                        client: Arc::clone(&client),
                        kind: record.kind,
                        digest: k.digest,
                        revoked: k.revoked.is_some(),
                        last_used,
                    },
                );
            }
        }
        Registry {
            keys,
            clients: file.clients().len(),
            origins,
        }
    }

    /// Whether any client is configured (without one, the service says how to add one).
    pub fn is_empty(&self) -> bool {
        self.clients == 0
    }

    /// The origins of every publishable key (the CORS layer lets them call).
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// The client of `presented` (the `X-Api-Key` value), or why not. The id finds the key; the digests
    /// are compared in constant time.
    pub fn authenticate(&self, presented: &str) -> Result<Arc<Client>, KeyRefusal> {
        let key = PresentedKey::parse(presented).ok_or(KeyRefusal::Malformed)?;
        let entry = self.keys.get(key.id).ok_or(KeyRefusal::Unknown)?;
        if entry.kind != key.kind || !entry.digest.matches(&key.digest()) {
            return Err(KeyRefusal::Wrong);
        }
        if entry.revoked {
            return Err(KeyRefusal::Revoked);
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        entry.last_used.store(now, Ordering::Relaxed);
        Ok(Arc::clone(&entry.client))
    }

    /// Last use of each key used since the service started (seconds since the epoch), for
    /// [`Clients::save_last_used`].
    fn last_used(&self) -> HashMap<String, i64> {
        self.keys
            .iter()
            .filter_map(|(id, e)| {
                let t = e.last_used.load(Ordering::Relaxed);
                (t > 0).then(|| (id.clone(), t))
            })
            .collect()
    }
}

/// What a file looks like from outside: edits replace the file (a new inode) and change its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamp {
    Absent,
    Present {
        modified: SystemTime,
        len: u64,
        inode: u64,
    },
}

impl Stamp {
    fn of(path: &Path) -> Result<Self, Error> {
        match std::fs::metadata(path) {
            Ok(m) => Ok(Stamp::Present {
                modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                len: m.len(),
                #[cfg(unix)]
                inode: std::os::unix::fs::MetadataExt::ino(&m),
                #[cfg(not(unix))]
                inode: 0,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Stamp::Absent),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

/// The clients file as the service sees it: reloaded when it changes ([`Clients::refresh`]).
pub struct Clients {
    path: PathBuf,
    current: RwLock<Arc<Registry>>,
    /// What the file looked like when last read (`None`: never read).
    seen: RwLock<Option<Stamp>>,
    /// Last-use times already written.
    saved_uses: RwLock<HashMap<String, i64>>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("path", &self.path)
            .field("registry", &*self.current())
            .finish()
    }
}

impl Clients {
    /// The clients of the file at `path` (absent: none yet).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let clients = Clients {
            path: path.into(),
            current: RwLock::new(Arc::new(Registry::default())),
            seen: RwLock::new(None),
            saved_uses: RwLock::new(HashMap::new()),
        };
        clients.refresh()?;
        Ok(clients)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The registry requests are checked against now.
    pub fn current(&self) -> Arc<Registry> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Reads the file again if it changed: `Ok(true)` when the registry was replaced. A file that does not
    /// read leaves the previous registry in place (the error says why).
    pub fn refresh(&self) -> Result<bool, Error> {
        let stamp = Stamp::of(&self.path)?;
        if Some(stamp) == *self.seen.read().unwrap_or_else(|p| p.into_inner()) {
            return Ok(false);
        }
        let file = ClientsFile::load(&self.path)?;
        let registry = Registry::new(&file, Some(&self.current()));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(registry);
        *self.seen.write().unwrap_or_else(|p| p.into_inner()) = Some(stamp);
        Ok(true)
    }

    /// Writes the last-use times that changed since the previous call beside the clients file (not into
    /// it: the service never rewrites what `mss client` edits). Returns whether anything was written.
    pub fn save_last_used(&self) -> Result<bool, Error> {
        let uses = self.current().last_used();
        let mut saved = self.saved_uses.write().unwrap_or_else(|p| p.into_inner());
        if uses.iter().all(|(id, t)| saved.get(id) == Some(t)) {
            return Ok(false);
        }
        file::merge_last_used(&self.path, &uses)?;
        saved.extend(uses);
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
