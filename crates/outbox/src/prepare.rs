//! From an item of a batch to what the outbox keeps ([`NewMessage`]): a ready message (RFC 5322 bytes) or a
//! compose request, checked, composed, with its Message-ID, envelope recipients and idempotency key. `mss
//! batch` (files, manifests) and `POST /v1/batches` (JSON items) both prepare their items here, so that they
//! check the same things and name the same faulty fields.

use std::path::{Path, PathBuf};

use mss_message::{ComposeConfig, ComposeRequest, Trust};
use mss_types::{MailAddress, hex};
use sha2::{Digest, Sha256};

use crate::Store;
use crate::error::{Error, Result};
use crate::model::{Accepted, NewMessage};

/// What an item carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// A ready message (RFC 5322, with a Message-ID), sent to its To, Cc and Bcc (Bcc removed).
    Message(Vec<u8>),
    /// A compose request, as JSON.
    Compose(serde_json::Value),
    /// A compose request as text (a file, a manifest line), parsed when prepared.
    ComposeText(String),
}

impl Content {
    /// The bytes the item was given as.
    fn input(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Content::Message(b) => b.into(),
            Content::ComposeText(s) => s.as_bytes().into(),
            Content::Compose(v) => v.to_string().into_bytes().into(),
        }
    }
}

/// Where an item's idempotency key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The caller's own key (1–256 characters, no control characters), per sender.
    Given(String),
    /// An item of a request without a key: its position and its JSON as sent (two equal letters at two
    /// positions are two messages; the same request sent again finds them).
    Position {
        /// Position in the request.
        index: usize,
        /// The item's JSON text.
        item: String,
    },
    /// An item of `mss batch`: its name and input bytes, so that running the same batch again finds it.
    Content,
}

/// One item of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// What the caller calls it (file name, `manifest:line`, its own reference), shown in statuses.
    pub label: String,
    /// How its idempotency key is made.
    pub key: KeySource,
    /// The message or the request.
    pub content: Content,
    /// Ask for delivery status notifications (a compose request may also ask in its own `receipts.dsn`).
    pub dsn: bool,
}

/// Who sends the items, and how the service composes.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The sending mailbox: every item must be from it.
    pub sender: &'a MailAddress,
    /// How it authenticates, as a reference (never a secret): see [`NewMessage::auth_ref`].
    pub auth_ref: &'a str,
    /// Composition of compose requests; none: they are refused ([`Error::Unconfigured`]).
    pub compose: Option<&'a ComposeConfig>,
    /// The espace de confiance a ready message's envelope must stay in (docs/mssante.md M8); compose
    /// requests are checked by their [`ComposeConfig::trust`].
    pub trust: &'a Trust,
    /// The REST client sending the items (none: the command line). Its batches are its own, and so are
    /// its idempotency keys: two clients sending the same items do not find each other's.
    pub owner: Option<&'a str>,
}

/// An item ready for the store, and its key as the caller knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The key as given or derived (the stored one may add the sender).
    pub key: String,
    /// What the outbox keeps.
    pub message: NewMessage,
}

/// An item's idempotency key: as the caller knows it, and as stored. The one place keys are derived: a
/// batch run again, or a request sent again, must find what an earlier run (of an earlier version) stored.
pub fn idempotency_key(sender: &MailAddress, item: &Item) -> Result<(String, String)> {
    Ok(match &item.key {
        KeySource::Given(k) => {
            if k.is_empty() || k.chars().count() > 256 || k.chars().any(char::is_control) {
                return Err(Error::invalid(
                    "idempotency_key",
                    "must be 1 to 256 characters, no control characters",
                ));
            }
            // keys are the caller's, per sender: two senders may use the same key
            (k.clone(), format!("{sender}/{k}"))
        }
        KeySource::Position { index, item } => {
            let mut h = Sha256::new();
            h.update((*index as u64).to_be_bytes());
            h.update(item.as_bytes());
            let key = format!("sha256:{}", hex(&h.finalize()));
            let stored = format!("{sender}/{key}");
            (key, stored)
        }
        KeySource::Content => {
            // SHA-256 over the length-prefixed sender, name and input bytes
            let mut h = Sha256::new();
            let input = item.content.input();
            for part in [
                sender.as_str().as_bytes(),
                item.label.as_bytes(),
                input.as_ref(),
            ] {
                h.update((part.len() as u64).to_be_bytes());
                h.update(part);
            }
            let key = hex(&h.finalize());
            (key.clone(), key)
        }
    })
}

/// A stored key scoped to its owner: `3:dpi/alice@x.fr/k1` (the owner's length first, so no pair of owner
/// and key reads as another's); unowned keys stay as they were.
pub fn owned_key(owner: Option<&str>, stored: String) -> String {
    match owner {
        Some(owner) => format!("{}:{owner}/{stored}", owner.len()),
        None => stored,
    }
}

/// Items written to the store per transaction by [`Acceptance`]: sending may start after the first one.
pub const CHUNK_ITEMS: usize = 500;

/// What an [`Acceptance`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcceptCounts {
    /// Items stored now.
    pub new: usize,
    /// Items whose idempotency key was already stored: nothing added.
    pub known: usize,
    /// Items refused (each handed to the caller with its reason).
    pub refused: usize,
}

/// Items of one batch accepted into the outbox a chunk at a time (the `mss batch` way): each chunk is
/// prepared, its refused items handed back one by one, and the rest written in one transaction, so that a
/// bad item never costs its neighbours and sending can start with the first chunk.
pub struct Acceptance<'a> {
    store: &'a dyn Store,
    batch_id: &'a str,
    items: std::slice::Iter<'a, Item>,
    origin: Origin<'a>,
    counts: AcceptCounts,
}

impl<'a> Acceptance<'a> {
    /// Accepts `items` into batch `batch_id` of `store`, sent from `origin`.
    pub fn new(
        store: &'a dyn Store,
        batch_id: &'a str,
        items: &'a [Item],
        origin: Origin<'a>,
    ) -> Self {
        Self {
            store,
            batch_id,
            items: items.iter(),
            origin,
            counts: AcceptCounts::default(),
        }
    }

    /// Prepares and stores the next chunk, handing each refused item and its reason to `refused`. `None`
    /// once every item has been through; an error of the store ends the acceptance (what was committed
    /// before stays).
    pub async fn next_chunk(
        &mut self,
        mut refused: impl FnMut(&Item, &Error),
    ) -> Option<Result<AcceptCounts>> {
        let mut chunk = Vec::with_capacity(CHUNK_ITEMS);
        let mut seen = 0;
        while chunk.len() < CHUNK_ITEMS {
            let Some(item) = self.items.next() else { break };
            seen += 1;
            // composing takes about a millisecond: off the runtime's threads when they send meanwhile
            match off_runtime(|| prepare(item, &self.origin)) {
                Ok(p) => chunk.push(p.message),
                Err(e) => {
                    self.counts.refused += 1;
                    refused(item, &e);
                }
            }
        }
        if seen == 0 {
            return None;
        }
        if !chunk.is_empty() {
            match self
                .store
                .enqueue(Some(self.batch_id), self.origin.owner, chunk)
                .await
            {
                Ok(outcomes) => {
                    for a in outcomes {
                        match a {
                            Accepted::New(_) => self.counts.new += 1,
                            Accepted::Existing(_) => self.counts.known += 1,
                        }
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(self.counts))
    }

    /// What was done so far.
    pub fn counts(&self) -> AcceptCounts {
        self.counts
    }
}

/// Runs blocking work where the runtime lets other tasks go on meanwhile (a multi-threaded runtime);
/// inline on a current-thread runtime, where `block_in_place` is not allowed.
fn off_runtime<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// Checks an item and turns it into what the outbox keeps. A refusal names the field at fault, relative
/// to the item (`compose.recipients.to[1]`, `message`; empty: the item as a whole): [`Error::Invalid`]
/// for its shape, [`Error::Refused`] for an MSSanté rule, [`Error::Unconfigured`] when this service
/// cannot compose.
pub fn prepare(item: &Item, origin: &Origin<'_>) -> Result<Prepared> {
    let sender = origin.sender;
    let (key, idempotency_key) = idempotency_key(sender, item)?;
    let idempotency_key = owned_key(origin.owner, idempotency_key);
    let (content, message_id, recipients, dsn) = match &item.content {
        Content::Message(bytes) => {
            let Some(id) = mss_lps::message_id(bytes) else {
                return Err(Error::invalid(
                    "message",
                    "no Message-ID: a stable Message-ID is needed to recognise a retry downstream",
                ));
            };
            let envelope = mss_lps::message_envelope(sender.clone(), bytes)
                .map_err(|e| Error::invalid("message", e.to_string()))?;
            if envelope.recipients.is_empty() {
                return Err(Error::invalid("message", "no recipient in To, Cc or Bcc"));
            }
            origin
                .trust
                .check_envelope("message", &envelope)
                .map_err(refused)?;
            (
                mss_lps::without_bcc(bytes).into_owned(),
                id,
                envelope.recipients,
                item.dsn,
            )
        }
        Content::Compose(_) | Content::ComposeText(_) => {
            let Some(cfg) = origin.compose else {
                return Err(Error::Unconfigured {
                    field: "compose".into(),
                    reason: "composition is not configured on this service (product reference)"
                        .into(),
                });
            };
            let request = compose_request(&item.content)?;
            let m = mss_message::compose(&request, cfg).map_err(|e| match e {
                mss_message::Error::Invalid { field, reason } => {
                    Error::invalid(format!("compose.{field}"), reason)
                }
                mss_message::Error::Refused { field, reason } => Error::Refused {
                    field: format!("compose.{field}"),
                    reason,
                },
                other => Error::invalid("compose", other.to_string()),
            })?;
            // the service's espace de confiance, whatever the compose settings say
            origin
                .trust
                .check_envelope("compose", &m.envelope)
                .map_err(refused)?;
            if !m
                .envelope
                .from
                .as_str()
                .eq_ignore_ascii_case(sender.as_str())
            {
                return Err(Error::Refused {
                    field: "compose.sender.address".into(),
                    reason: format!("{} is not the batch's sender {sender}", m.envelope.from),
                });
            }
            let dsn = item.dsn || m.envelope.dsn.is_some();
            (
                m.raw,
                format!("<{}>", m.message_id),
                m.envelope.recipients,
                dsn,
            )
        }
    };
    let message = NewMessage {
        idempotency_key,
        label: item.label.clone(),
        sender: sender.clone(),
        auth_ref: origin.auth_ref.to_owned(),
        message_id,
        content,
        recipients,
        dsn,
    };
    message.validate()?;
    Ok(Prepared { key, message })
}

/// An MSSanté rule's refusal, its field kept.
fn refused(e: mss_message::Error) -> Error {
    match e {
        mss_message::Error::Refused { field, reason } => Error::Refused { field, reason },
        other => Error::invalid("message", other.to_string()),
    }
}

/// The compose request of an item, its faulty field named under `compose`.
fn compose_request(content: &Content) -> Result<ComposeRequest> {
    let parsed = match content {
        Content::Compose(v) => serde_path_to_error::deserialize(v),
        Content::ComposeText(s) => {
            let mut json = serde_json::Deserializer::from_str(s);
            let r = serde_path_to_error::deserialize(&mut json);
            if r.is_ok() {
                json.end()
                    .map_err(|e| Error::invalid("compose", format!("after the request: {e}")))?;
            }
            r
        }
        Content::Message(_) => return Err(Error::invalid("compose", "not a compose request")),
    };
    parsed.map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "compose".to_owned()
        } else {
            format!("compose.{path}")
        };
        Error::invalid(field, e.into_inner().to_string())
    })
}

/// The batch of `mss batch` for an input path: the same sender and path name the same batch, run after run.
pub fn input_batch_id(sender: &MailAddress, input: &Path) -> String {
    let canonical = std::fs::canonicalize(input).unwrap_or_else(|_| input.to_owned());
    format!(
        "cli-{}",
        &hex(&Sha256::digest(format!(
            "{sender}\n{}",
            canonical.display()
        )))[..16]
    )
}

/// The batch of a request that names none: the same owner, sender and keys name the same batch. An
/// owner's batches are apart from other owners' and from unowned ones (whose ids are those of earlier
/// versions).
pub fn request_batch_id<'a>(
    sender: &str,
    owner: Option<&str>,
    keys: impl IntoIterator<Item = &'a str>,
) -> String {
    let mut h = Sha256::new();
    if let Some(owner) = owner {
        // an address never starts with NUL: no owned input reads as an unowned one
        h.update(b"\0owner");
        h.update((owner.len() as u64).to_be_bytes());
        h.update(owner.as_bytes());
    }
    h.update(sender.as_bytes());
    for k in keys {
        h.update((k.len() as u64).to_be_bytes());
        h.update(k.as_bytes());
    }
    format!("api-{}", &hex(&h.finalize())[..20])
}

/// The items of `mss batch`: a directory of `*.eml` ready messages and `*.json` compose requests (taken in
/// name order), or a JSON Lines manifest (see [`manifest`]). Keys derive from the items' names and bytes.
pub fn read_items(input: &Path, dsn: bool) -> Result<Vec<Item>> {
    let read_error = |path: &Path, e: std::io::Error| Error::Input {
        item: path.display().to_string(),
        reason: format!("cannot be read: {e}"),
    };
    if input.is_dir() {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(input)
            .map_err(|e| read_error(input, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(p.extension().and_then(|e| e.to_str()), Some("eml" | "json"))
            })
            .collect();
        paths.sort();
        return paths
            .into_iter()
            .map(|p| {
                let label = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let content = if p.extension().is_some_and(|e| e == "eml") {
                    Content::Message(std::fs::read(&p).map_err(|e| read_error(&p, e))?)
                } else {
                    Content::ComposeText(
                        std::fs::read_to_string(&p).map_err(|e| read_error(&p, e))?,
                    )
                };
                Ok(Item {
                    label,
                    key: KeySource::Content,
                    content,
                    dsn,
                })
            })
            .collect();
    }
    let text = std::fs::read_to_string(input).map_err(|e| read_error(input, e))?;
    let mut items = manifest(&text, input.parent().unwrap_or(Path::new(".")), input)?;
    for item in &mut items {
        item.dsn = dsn;
    }
    Ok(items)
}

/// A JSON Lines manifest (`name`, its paths relative to `base`): `{"eml": "path"}` lines point at ready
/// messages, any other object is a compose request. Blank lines are skipped; items are labelled
/// `name:line`.
pub fn manifest(text: &str, base: &Path, name: &Path) -> Result<Vec<Item>> {
    let name = name
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let label = format!("{name}:{}", i + 1);
        let refused = |reason: String| Error::Input {
            item: label.clone(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| refused(format!("not JSON: {e}")))?;
        let content = match value.get("eml") {
            Some(serde_json::Value::String(p)) => {
                let path = base.join(p);
                Content::Message(
                    std::fs::read(&path)
                        .map_err(|e| refused(format!("reading {}: {e}", path.display())))?,
                )
            }
            Some(_) => return Err(refused("\"eml\" must be a file path".into())),
            None if value.is_object() => Content::ComposeText(line.to_owned()),
            None => return Err(refused("expected a JSON object".into())),
        };
        out.push(Item {
            label,
            key: KeySource::Content,
            content,
            dsn: false,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sender() -> MailAddress {
        MailAddress::parse("labo@sante.test").expect("address")
    }

    fn eml(to: &str) -> Vec<u8> {
        format!(
            "From: labo@sante.test\r\nTo: {to}\r\nBcc: hidden@sante.test\r\nMessage-ID: <m1@sante.test>\r\n\r\nhi\r\n"
        )
        .into_bytes()
    }

    fn item(label: &str, content: Content) -> Item {
        Item {
            label: label.into(),
            key: KeySource::Content,
            content,
            dsn: false,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_acceptance_stores_chunks_and_hands_back_each_refused_item() {
        let dir = tempfile::tempdir().expect("dir");
        let store = crate::SqliteStore::open(&dir.path().join("outbox.sqlite")).expect("store");
        let mut items: Vec<Item> = (0..CHUNK_ITEMS + 2)
            .map(|i| {
                let bytes = format!(
                    "From: labo@sante.test\r\nTo: dr{i}@sante.test\r\nMessage-ID: <m{i}@sante.test>\r\n\r\nhi\r\n"
                );
                item(&format!("{i}.eml"), Content::Message(bytes.into_bytes()))
            })
            .collect();
        items[3] = item(
            "bad.eml",
            Content::Message(b"To: x@sante.test\r\n\r\nno id".to_vec()),
        );
        let sender = sender();
        let trust = mss_testing::trust(mss_testing::TEST_DOMAINS);
        let origin = Origin {
            sender: &sender,
            auth_ref: "token:labo",
            compose: None,
            trust: &trust,
            owner: None,
        };
        let mut refused = Vec::new();
        let mut after_each = Vec::new();
        let mut acceptance = Acceptance::new(&store, "b1", &items, origin);
        while let Some(chunk) = acceptance
            .next_chunk(|item, e| refused.push(format!("{}: {e}", item.label)))
            .await
        {
            after_each.push(chunk.expect("chunk"));
        }
        // the first chunk is full of good items: the bad one does not take a place in it
        assert_eq!(after_each.len(), 2);
        assert_eq!(after_each[0].new, CHUNK_ITEMS);
        assert_eq!(after_each[0].refused, 1);
        assert_eq!(
            acceptance.counts(),
            AcceptCounts {
                new: CHUNK_ITEMS + 1,
                known: 0,
                refused: 1
            }
        );
        assert_eq!(refused.len(), 1);
        assert!(refused[0].starts_with("bad.eml: "), "{refused:?}");
        assert!(refused[0].contains("Message-ID"), "{refused:?}");

        // the same items again: all known, nothing new
        let mut again = Acceptance::new(&store, "b1", &items, origin);
        while let Some(chunk) = again.next_chunk(|_, _| {}).await {
            chunk.expect("chunk");
        }
        assert_eq!(again.counts().known, CHUNK_ITEMS + 1);
        assert_eq!(again.counts().new, 0);
    }

    #[test]
    fn a_manifest_line_is_a_compose_request_or_an_eml_path() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("a.eml"), b"Message-ID: <a@x>\r\n\r\nhi").expect("write");
        let text = "{\"eml\": \"a.eml\"}\n\n{\"sender\": {}}\n";
        let items = manifest(text, dir.path(), Path::new("m.jsonl")).expect("manifest");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].label, "m.jsonl:1");
        assert!(matches!(&items[0].content, Content::Message(b) if b.starts_with(b"Message-ID")));
        assert_eq!(items[1].label, "m.jsonl:3");
        assert!(matches!(&items[1].content, Content::ComposeText(s) if s == "{\"sender\": {}}"));
        let e = manifest("[1]\n", dir.path(), Path::new("m.jsonl")).expect_err("refused");
        assert_eq!(e.to_string(), "m.jsonl:1: expected a JSON object");
        let e = manifest("{\"eml\": 3}\n", dir.path(), Path::new("m.jsonl")).expect_err("refused");
        assert_eq!(e.to_string(), "m.jsonl:1: \"eml\" must be a file path");
        let e = manifest(
            "{\"eml\": \"missing.eml\"}",
            dir.path(),
            Path::new("m.jsonl"),
        )
        .expect_err("refused");
        assert!(e.to_string().starts_with("m.jsonl:1: reading "), "{e}");
    }

    #[test]
    fn the_key_of_a_batch_file_is_the_one_earlier_versions_stored() {
        // SHA-256 over the length-prefixed sender, name and bytes: what `mss batch` always stored, so that
        // a run after an upgrade finds what an older run accepted
        let bytes = eml("bob@sante.test");
        let mut h = Sha256::new();
        for part in [b"labo@sante.test".as_slice(), b"0001.eml", &bytes] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        let want = hex(&h.finalize());
        let (key, stored) =
            idempotency_key(&sender(), &item("0001.eml", Content::Message(bytes))).expect("key");
        assert_eq!(
            (key.as_str(), stored.as_str()),
            (want.as_str(), want.as_str())
        );
        let (key, stored) = idempotency_key(
            &sender(),
            &Item {
                key: KeySource::Position {
                    index: 3,
                    item: "{}".into(),
                },
                ..item("x", Content::Message(Vec::new()))
            },
        )
        .expect("key");
        let mut h = Sha256::new();
        h.update(3u64.to_be_bytes());
        h.update(b"{}");
        assert_eq!(key, format!("sha256:{}", hex(&h.finalize())));
        assert_eq!(stored, format!("labo@sante.test/{key}"));
    }

    #[test]
    fn a_request_batch_id_is_the_earlier_one_without_an_owner_and_apart_with_one() {
        let keys = ["alice@sante.test/k1", "alice@sante.test/k2"];
        // SHA-256 over the sender and the length-prefixed keys: what the service always derived
        let mut h = Sha256::new();
        h.update(b"alice@sante.test");
        for k in keys {
            h.update((k.len() as u64).to_be_bytes());
            h.update(k.as_bytes());
        }
        let unowned = request_batch_id("alice@sante.test", None, keys);
        assert_eq!(unowned, format!("api-{}", &hex(&h.finalize())[..20]));
        assert_eq!(unowned, "api-453aefcb2eb08cb9c691");
        let dpi = request_batch_id("alice@sante.test", Some("dpi"), keys);
        let rdv = request_batch_id("alice@sante.test", Some("rdv"), keys);
        assert!(dpi.starts_with("api-") && dpi.len() == unowned.len());
        assert_ne!(dpi, unowned);
        assert_ne!(dpi, rdv);
        assert_eq!(dpi, request_batch_id("alice@sante.test", Some("dpi"), keys));
    }

    #[test]
    fn an_owner_has_its_own_idempotency_keys() {
        let trust = mss_testing::trust(mss_testing::TEST_DOMAINS);
        let origin = Origin {
            sender: &sender(),
            auth_ref: "token:labo",
            compose: None,
            trust: &trust,
            owner: None,
        };
        let given = Item {
            key: KeySource::Given("k1".into()),
            ..item("a.eml", Content::Message(eml("bob@sante.test")))
        };
        let stored = |owner| {
            let p = prepare(&given, &Origin { owner, ..origin }).expect("prepared");
            assert_eq!(p.key, "k1");
            p.message.idempotency_key
        };
        assert_eq!(stored(None), "labo@sante.test/k1");
        assert_eq!(stored(Some("dpi")), "3:dpi/labo@sante.test/k1");
        assert_eq!(stored(Some("dpi/x")), "5:dpi/x/labo@sante.test/k1");
        assert_eq!(owned_key(None, "abc".into()), "abc");
    }

    #[test]
    fn a_bad_item_of_a_batch_run_is_refused_by_itself_naming_the_field() {
        let cfg = ComposeConfig::new("NIL");
        let trust = mss_testing::trust(mss_testing::TEST_DOMAINS);
        let origin = Origin {
            sender: &sender(),
            auth_ref: "token:labo@sante.test",
            compose: Some(&cfg),
            trust: &trust,
            owner: None,
        };
        let ok = prepare(
            &item("a.eml", Content::Message(eml("bob@sante.test"))),
            &origin,
        )
        .expect("prepared");
        assert_eq!(
            ok.message
                .recipients
                .iter()
                .map(MailAddress::as_str)
                .collect::<Vec<_>>(),
            ["bob@sante.test", "hidden@sante.test"]
        );
        assert_eq!(ok.message.label, "a.eml");
        let cases = [
            (
                Content::ComposeText("{\"sender\": 1}".into()),
                "compose.sender",
            ),
            (Content::ComposeText("not json".into()), "compose"),
            (
                Content::Message(b"Message-ID: <a@x>\r\n\r\nhi".to_vec()),
                "message",
            ),
            (
                Content::Message(b"To: b@sante.test\r\n\r\nhi".to_vec()),
                "message",
            ),
        ];
        for (content, field) in cases {
            match prepare(&item("b", content.clone()), &origin) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{content:?}"),
                other => panic!("{content:?}: {other:?}"),
            }
        }
        let e = prepare(
            &item("c", Content::ComposeText("{}".into())),
            &Origin {
                compose: None,
                ..origin
            },
        )
        .expect_err("refused");
        assert!(matches!(e, Error::Unconfigured { .. }), "{e:?}");
    }

    #[test]
    fn a_ready_message_leaving_the_espace_de_confiance_is_refused() {
        let prep = |trust: &Trust, from: &str, to: &str| {
            let sender = MailAddress::parse(from).expect("address");
            let bytes = format!("From: {from}\r\nTo: {to}\r\nMessage-ID: <m1@x>\r\n\r\nhi\r\n");
            prepare(
                &item("a.eml", Content::Message(bytes.into_bytes())),
                &Origin {
                    sender: &sender,
                    auth_ref: "token:labo",
                    compose: None,
                    trust,
                    owner: None,
                },
            )
        };
        let field = |r: Result<Prepared>| match r {
            Err(Error::Refused { field, reason }) => format!("{field}: {reason}"),
            other => format!("{other:?}"),
        };
        let listed = mss_testing::trust(mss_testing::TEST_DOMAINS);
        let default = Trust::mssante_only();
        assert!(prep(&listed, "labo@sante.test", "bob@sante.test").is_ok());
        assert!(prep(&default, "labo@ch.mssante.fr", "bob@patient.mssante.fr").is_ok());
        assert_eq!(
            field(prep(&listed, "labo@sante.test", "x@gmail.com")),
            "message.recipients[0]: x@gmail.com: domain gmail.com is not in the MSSanté whitelist"
        );
        // listed domains only once a whitelist is installed, mssante.fr or not
        assert_eq!(
            field(prep(&listed, "labo@sante.test", "x@ch-unlisted.mssante.fr")),
            "message.recipients[0]: x@ch-unlisted.mssante.fr: domain ch-unlisted.mssante.fr is not in the MSSanté whitelist"
        );
        for to in [
            "x@gmail.com",
            "x@evilmssante.fr",
            "x@mssante.fr.example.com",
        ] {
            let f = field(prep(&default, "labo@ch.mssante.fr", to));
            assert!(
                f.starts_with(&format!("message.recipients[0]: {to}: domain")),
                "{f}"
            );
            assert!(f.contains("mss whitelist update"), "{f}");
        }
        let f = field(prep(&default, "labo@sante.test", "bob@ch.mssante.fr"));
        assert!(
            f.starts_with("message.sender: labo@sante.test: domain sante.test is outside"),
            "{f}"
        );
    }

    proptest! {
        #[test]
        fn any_manifest_text_is_parsed_or_refused_without_panicking(text in "\\PC{0,200}(\n\\PC{0,50}){0,4}") {
            let _ = manifest(&text, Path::new("/nonexistent"), Path::new("m.jsonl"));
        }
    }
}
