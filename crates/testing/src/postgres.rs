//! A throwaway PostgreSQL server (`scripts/postgres.sh`, loopback, temp dir) shared by the tests of one
//! binary, and a fresh database per test.

use std::process::Child;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{fixture_script, spawn_ready, unavailable};

/// The running server; it stops when this process exits.
pub struct Postgres {
    _child: Child,
    /// `postgresql://mss@127.0.0.1:PORT/postgres`.
    pub url: String,
    /// Its directory.
    pub dir: String,
}

static POSTGRES: OnceLock<Option<Postgres>> = OnceLock::new();

fn free_port() -> u16 {
    crate::free_ports(1, 1)
}

/// The PostgreSQL server of this test binary, started once; `None` (after saying why) when it cannot run.
pub fn postgres() -> Option<&'static Postgres> {
    POSTGRES
        .get_or_init(|| {
            match spawn_ready(
                fixture_script("postgres.sh")
                    .arg("--port")
                    .arg(free_port().to_string())
                    .arg("--cleanup"),
            ) {
                Ok((child, mut vars)) => Some(Postgres {
                    _child: child,
                    url: vars.remove("PGURL").unwrap_or_default(),
                    dir: vars.remove("DIR").unwrap_or_default(),
                }),
                Err((_, err)) => {
                    unavailable(&format!("PostgreSQL did not start: {err}"));
                    None
                }
            }
        })
        .as_ref()
}

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// The URL of a new, empty database on the test server.
pub async fn fresh_database(pg: &Postgres) -> String {
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    );
    let (client, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test server");
    let task = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    drop(client);
    let _ = task.await;
    format!("{}{name}", pg.url.trim_end_matches("postgres"))
}
