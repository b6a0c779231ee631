//! The clients file: TOML, one `[[client]]` per client with its `[[client.key]]` digests. `mss client`
//! edits it under a lock and replaces it whole; the service only reads it, and keeps the last use of each
//! key in a file beside it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use mss_types::MailAddress;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::key::{KeyDigest, KeyKind, NewKey, is_key_id};
use crate::{Error, Scope};

const HEADER: &str = "# Clients of the mss REST service. Edit with `mss client`: it holds digests of the keys, never a key.\n\n";

/// A client as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRecord {
    /// Its name (1–64 of `A-Z a-z 0-9 . _ -`).
    pub name: String,
    /// Secret or publishable keys.
    pub kind: KeyKind,
    /// What its keys allow.
    pub scopes: Vec<Scope>,
    /// The sending mailboxes it may use (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub senders: Vec<MailAddress>,
    /// Origins its publishable keys work from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<String>,
    /// When it was added.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// Its keys, oldest first.
    #[serde(default, rename = "key")]
    pub keys: Vec<KeyRecord>,
}

/// A key as stored: its id and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredKey", into = "StoredKey")]
pub struct KeyRecord {
    /// Its public id.
    pub id: String,
    pub(crate) digest: KeyDigest,
    /// When it was made.
    pub created: OffsetDateTime,
    /// When it was revoked.
    pub revoked: Option<OffsetDateTime>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    id: String,
    hash: String,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    revoked: Option<OffsetDateTime>,
}

impl TryFrom<StoredKey> for KeyRecord {
    type Error = String;

    fn try_from(k: StoredKey) -> Result<Self, String> {
        if !is_key_id(&k.id) {
            return Err(format!("key id `{}` is not 12 base32 characters", k.id));
        }
        let digest = KeyDigest::from_stored(&k.hash)
            .ok_or_else(|| format!("key {}: hash is not `sha256:` and 64 hex digits", k.id))?;
        Ok(KeyRecord {
            id: k.id,
            digest,
            created: k.created,
            revoked: k.revoked,
        })
    }
}

impl From<KeyRecord> for StoredKey {
    fn from(k: KeyRecord) -> Self {
        StoredKey {
            id: k.id,
            hash: k.digest.to_stored(),
            created: k.created,
            revoked: k.revoked,
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default, rename = "client")]
    clients: Vec<ClientRecord>,
}

/// A client to add.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// Its name.
    pub name: String,
    /// Scopes (a publishable client gets `directory:read` when none is given).
    pub scopes: Vec<Scope>,
    /// Sending mailboxes it may use (none: any).
    pub senders: Vec<MailAddress>,
    /// Publishable: a key for web pages of `origins`.
    pub publishable: bool,
    /// Origins of a publishable key (`https://host[:port]`).
    pub origins: Vec<String>,
}

impl NewClient {
    /// The record to store, checked: errors name the argument.
    fn into_record(self, now: OffsetDateTime) -> Result<ClientRecord, Error> {
        check_name(&self.name)?;
        let mut scopes: Vec<Scope> = self.scopes;
        scopes.sort();
        scopes.dedup();
        let kind = if self.publishable {
            if scopes.is_empty() {
                scopes.push(Scope::DirectoryRead);
            }
            if let Some(s) = scopes.iter().find(|s| **s != Scope::DirectoryRead) {
                return Err(Error::invalid(
                    "scope",
                    format!(
                        "a publishable key is public (it sits in a web page): it may only have directory:read, not {s}"
                    ),
                ));
            }
            if self.origins.is_empty() {
                return Err(Error::invalid(
                    "origin",
                    "a publishable key needs at least one --origin (the web pages allowed to use it)",
                ));
            }
            if !self.senders.is_empty() {
                return Err(Error::invalid(
                    "sender",
                    "a publishable key cannot send: --sender is for secret keys",
                ));
            }
            KeyKind::Publishable
        } else {
            if scopes.is_empty() {
                return Err(Error::invalid(
                    "scope",
                    format!("give at least one --scope ({})", scope_list()),
                ));
            }
            if !self.origins.is_empty() {
                return Err(Error::invalid(
                    "origin",
                    "--origin binds publishable keys only (add --publishable)",
                ));
            }
            KeyKind::Secret
        };
        let mut origins = self
            .origins
            .iter()
            .map(|o| normalize_origin(o))
            .collect::<Result<Vec<_>, _>>()?;
        origins.dedup();
        let mut senders = self.senders;
        senders.dedup();
        Ok(ClientRecord {
            name: self.name,
            kind,
            scopes,
            senders,
            origins,
            created: now,
            keys: Vec::new(),
        })
    }
}

fn scope_list() -> String {
    Scope::ALL.map(Scope::as_str).join(", ")
}

fn check_name(name: &str) -> Result<(), Error> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            "1 to 64 characters among A-Z a-z 0-9 . _ -",
        ))
    }
}

/// `https://Host:443/` becomes `https://host:443`: scheme, host and port only, as browsers send `Origin`.
fn normalize_origin(origin: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::invalid("origin", format!("`{origin}`: {why}"));
    let lower = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return Err(bad(
            "expected scheme://host[:port], e.g. https://dpi.ch-exemple.fr",
        ));
    };
    if scheme != "https" && scheme != "http" {
        return Err(bad("the scheme must be https (or http)"));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    if !host_ok {
        return Err(bad("only scheme, host and port: no path, query or user"));
    }
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return Err(bad("the port is not a number from 0 to 65535"));
    }
    Ok(lower)
}

/// The clients file, loaded for editing or listing.
#[derive(Debug)]
pub struct ClientsFile {
    path: PathBuf,
    clients: Vec<ClientRecord>,
}

impl ClientsFile {
    /// Reads `path` (absent: no client yet). Errors name the file and the field.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io(path, e)),
        };
        let doc: Document = toml::from_str(&text).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            reason: e.to_string().trim_end().replace('\n', " "),
        })?;
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        for c in &doc.clients {
            let format = |reason: String| Error::Format {
                path: path.to_path_buf(),
                reason,
            };
            check_name(&c.name).map_err(|e| format(format!("client `{}`: {e}", c.name)))?;
            if !names.insert(c.name.as_str()) {
                return Err(format(format!("client `{}` appears twice", c.name)));
            }
            for k in &c.keys {
                if !ids.insert(k.id.as_str()) {
                    return Err(format(format!("key id {} appears twice", k.id)));
                }
            }
        }
        Ok(ClientsFile {
            path: path.to_path_buf(),
            clients: doc.clients,
        })
    }

    /// Loads `path` under the file's lock, applies `change` and, when it succeeds, replaces the file.
    pub fn edit<T>(
        path: &Path,
        change: impl FnOnce(&mut ClientsFile) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let _lock = lock(path)?;
        let mut file = ClientsFile::load(path)?;
        let out = change(&mut file)?;
        file.save()?;
        Ok(out)
    }

    /// The clients, in the order they were added.
    pub fn clients(&self) -> &[ClientRecord] {
        &self.clients
    }

    /// Adds a client with a first key, returned once.
    pub fn add(&mut self, new: NewClient) -> Result<NewKey, Error> {
        let now = now();
        let mut record = new.into_record(now)?;
        if self.clients.iter().any(|c| c.name == record.name) {
            return Err(Error::invalid(
                "name",
                format!(
                    "client `{}` exists; `mss client rotate {}` gives it a new key",
                    record.name, record.name
                ),
            ));
        }
        let key = self.new_key(record.kind, &mut record, now)?;
        self.clients.push(record);
        Ok(key)
    }

    /// Gives client `name` a new key; its other keys stay valid until revoked.
    pub fn rotate(&mut self, name: &str) -> Result<NewKey, Error> {
        let now = now();
        let index = self
            .clients
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| no_such("name", name))?;
        let mut record = self.clients[index].clone();
        let key = self.new_key(record.kind, &mut record, now)?;
        self.clients[index] = record;
        Ok(key)
    }

    /// Revokes every key of client `name_or_id`, or the key with that id. Returns the ids revoked now
    /// (empty when they already were).
    pub fn revoke(&mut self, name_or_id: &str) -> Result<Vec<String>, Error> {
        let now = now();
        let by_name = self.clients.iter().any(|c| c.name == name_or_id);
        let mut found = false;
        let mut revoked = Vec::new();
        for c in &mut self.clients {
            for k in &mut c.keys {
                if (by_name && c.name == name_or_id) || (!by_name && k.id == name_or_id) {
                    found = true;
                    if k.revoked.is_none() {
                        k.revoked = Some(now);
                        revoked.push(k.id.clone());
                    }
                }
            }
        }
        if found || by_name {
            Ok(revoked)
        } else {
            Err(no_such("name or key id", name_or_id))
        }
    }

    /// When each key was last used, as the service recorded it.
    pub fn last_used(&self) -> Result<HashMap<String, OffsetDateTime>, Error> {
        Ok(read_last_used(&last_used_path(&self.path))?
            .into_iter()
            .filter_map(|(id, t)| Some((id, OffsetDateTime::from_unix_timestamp(t).ok()?)))
            .collect())
    }

    fn new_key(
        &self,
        kind: KeyKind,
        record: &mut ClientRecord,
        now: OffsetDateTime,
    ) -> Result<NewKey, Error> {
        // 60-bit ids do not collide in practice; a collision is made impossible anyway
        loop {
            let key = NewKey::generate(kind)?;
            let taken = self
                .clients
                .iter()
                .chain(std::iter::once(&*record))
                .any(|c| c.keys.iter().any(|k| k.id == key.id));
            if !taken {
                record.keys.push(KeyRecord {
                    id: key.id.clone(),
                    digest: key.digest,
                    created: now,
                    revoked: None,
                });
                return Ok(key);
            }
        }
    }

    fn save(&self) -> Result<(), Error> {
        let doc = Document {
            clients: self.clients.clone(),
        };
        let body = toml::to_string(&doc).map_err(|e| Error::Format {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        replace_file(&self.path, format!("{HEADER}{body}").as_bytes())
    }
}

fn no_such(field: &'static str, what: &str) -> Error {
    Error::invalid(
        field,
        format!("no client or key `{what}`; `mss client list` shows them"),
    )
}

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

/// The lock `mss client` and the service take around a change: a sidecar file, so that the clients file
/// itself can be replaced by a rename.
fn lock(path: &Path) -> Result<std::fs::File, Error> {
    let lock_path = sibling(path, ".lock");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let file = private_options()
        .write(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| Error::io(&lock_path, e))?;
    file.lock().map_err(|e| Error::io(&lock_path, e))?;
    Ok(file)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Replaces `path` with `bytes` whole: written to a temporary file (mode 0600), synced, renamed over.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = sibling(path, &format!(".tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = private_options().write(true).truncate(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// The last-use file of a clients file: `clients.toml.last-used`.
fn last_used_path(path: &Path) -> PathBuf {
    sibling(path, ".last-used")
}

fn read_last_used(path: &Path) -> Result<BTreeMap<String, i64>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Merges `uses` (key id → seconds since the epoch) into the last-use file, under the clients file's lock.
pub(super) fn merge_last_used(clients: &Path, uses: &HashMap<String, i64>) -> Result<(), Error> {
    let _lock = lock(clients)?;
    let path = last_used_path(clients);
    // a damaged file only loses the times it held
    let mut all = read_last_used(&path).unwrap_or_default();
    for (id, t) in uses {
        let slot = all.entry(id.clone()).or_insert(0);
        *slot = (*slot).max(*t);
    }
    let bytes = serde_json::to_vec_pretty(&all).map_err(|e| Error::Format {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    replace_file(&path, &bytes)
}

#[cfg(test)]
pub(super) fn normalize_origin_for_tests(origin: &str) -> Result<String, Error> {
    normalize_origin(origin)
}
