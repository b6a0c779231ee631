//! Fixtures: a throwaway PostgreSQL server (scripts/postgres.sh) shared by the tests of one binary, a fresh
//! database per test, and SQLite stores in temp dirs.
#![allow(dead_code)]

use std::sync::Arc;

use mss_outbox::{ManualClock, NewMessage, PostgresStore, SqliteStore, Store};
use mss_types::MailAddress;

pub use mss_testing::postgres::{fresh_database, postgres};
#[allow(unused_imports)] // worker.rs uses it, store.rs does not
pub use mss_testing::unavailable;

/// A PostgreSQL store on a fresh database.
pub async fn pg_store() -> Option<(Arc<dyn Store>, String)> {
    let pg = postgres()?;
    let url = fresh_database(pg).await;
    let store = PostgresStore::connect(&url, 8).await.expect("store");
    Some((Arc::new(store), url))
}

/// A PostgreSQL store on a fresh database, reading time from `clock`.
pub async fn pg_store_with(clock: &ManualClock) -> Option<(Arc<dyn Store>, String)> {
    let pg = postgres()?;
    let url = fresh_database(pg).await;
    let store = PostgresStore::connect(&url, 8).await.expect("store");
    Some((Arc::new(store.with_clock(Arc::new(clock.clone()))), url))
}

/// A SQLite store in a new temp dir, reading time from `clock`.
pub fn sqlite_store_with(clock: &ManualClock) -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join(SqliteStore::FILE_NAME)).expect("store");
    (Arc::new(store.with_clock(Arc::new(clock.clone()))), dir)
}

/// A SQLite store in a new temp dir (kept alive by the returned guard).
pub fn sqlite_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join(SqliteStore::FILE_NAME)).expect("store");
    (Arc::new(store), dir)
}

/// A test address.
pub fn address(s: &str) -> MailAddress {
    MailAddress::parse(s).expect("test address")
}

/// A message from `sender` to `recipients`, identified by `key`.
pub fn msg(key: &str, sender: &str, recipients: &[&str]) -> NewMessage {
    let message_id = format!("<{key}@mss.test>");
    NewMessage {
        idempotency_key: key.to_owned(),
        label: format!("{key}.eml"),
        sender: address(sender),
        auth_ref: format!("token:{sender}"),
        content: format!(
            "From: {sender}\r\nTo: {}\r\nSubject: {key}\r\nMessage-ID: {message_id}\r\n\r\nbody {key}\r\n",
            recipients.join(", ")
        )
        .into_bytes(),
        message_id,
        recipients: recipients.iter().map(|s| address(s)).collect(),
        dsn: true,
    }
}

/// `suite!(case, …)`: each `async fn case(store: Arc<dyn Store>)` of the file run once on a SQLite store
/// and once on a PostgreSQL one (skipped, said, when PostgreSQL cannot start).
#[allow(unused_macros)] // not every test binary uses it
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (store, _dir) = super::common::sqlite_store();
                    super::$case(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some((store, _url)) = super::common::pg_store().await else { return };
                    super::$case(store).await;
                }
            )*
        }
    };
}
