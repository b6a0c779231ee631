//! Client keys for tests of guarded routes: a clients file with one client holding every scope.

use std::path::Path;
use std::sync::Arc;

use mss_access::Scope;
use mss_access::clients::{Clients, ClientsFile, NewClient};

/// Adds client `name` with `scopes` to the clients file at `path`; returns its key.
pub fn add_client(path: &Path, name: &str, scopes: &[Scope]) -> String {
    let key = ClientsFile::edit(path, |f| {
        f.add(NewClient {
            name: name.to_string(),
            scopes: scopes.to_vec(),
            senders: vec![],
            publishable: false,
            origins: vec![],
        })
    })
    .expect("adding a test client");
    key.key.expose().to_string()
}

/// The clients of `dir/clients.toml` after adding a client `test` with every scope, and its key.
pub fn every_scope(dir: &Path) -> (Arc<Clients>, String) {
    let path = dir.join(mss_access::clients::CLIENTS_FILE);
    let key = add_client(&path, "test", &Scope::ALL);
    let clients = Clients::open(&path).expect("opening the test clients file");
    (Arc::new(clients), key)
}
