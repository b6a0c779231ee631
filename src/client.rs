//! `mss client`: the clients of the REST service and their keys (docs/mssante.md S1). The file and its
//! rules are `mss_access::clients`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use mss_access::Scope;
use mss_access::clients::{ClientsFile, KeyKind, NewClient, NewKey};
use mss_types::MailAddress;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

/// Where the clients file is: `--clients`, else `[access] clients_file` of `--config`, else
/// `<data>/clients.toml`.
#[derive(Debug, Args, Default)]
pub struct ClientsLocation {
    /// The clients file [default: <data>/clients.toml, or `[access] clients_file` of --config].
    #[arg(long, global = true, env = "MSS_CLIENTS", value_name = "FILE")]
    pub clients: Option<PathBuf>,
}

/// `[access]` of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessFileConfig {
    /// The clients file.
    pub clients_file: Option<PathBuf>,
    /// `public` (default) or `key`: whether the directory routes need a key.
    pub directory: Option<DirectoryMode>,
    /// Keyless directory requests one address may make at once [default: 60].
    pub directory_burst: Option<u32>,
    /// Keyless directory requests one address may make per minute after that [default: 600].
    pub directory_per_minute: Option<u32>,
    /// The reverse proxies in front of the service, believed about the client they forward for
    /// (`Forwarded`, `X-Forwarded-For`): addresses or networks.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// Whether the directory routes need a key.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryMode {
    /// Public data: no key needed.
    Public,
    /// A key with directory:read.
    Key,
}

/// The clients file of this run.
pub fn clients_path(
    data_dir: &Path,
    location: &ClientsLocation,
    file: Option<&AccessFileConfig>,
) -> PathBuf {
    location
        .clients
        .clone()
        .or_else(|| file.and_then(|f| f.clients_file.clone()))
        .unwrap_or_else(|| data_dir.join(mss_access::clients::CLIENTS_FILE))
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    #[command(flatten)]
    pub location: ClientsLocation,
    /// The service's TOML configuration (for `[access] clients_file`).
    #[arg(long, global = true, env = "MSS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ClientCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Add a client and print its first key, once (the last line of stdout).
    Add(AddArgs),
    /// List the clients: key ids, scopes, senders, created, last used (never a key).
    List(ListArgs),
    /// Revoke every key of a client, or one key by its id; the service refuses it within 2 s.
    Revoke(RevokeArgs),
    /// Give a client a new key (printed once); the old one stays valid until revoked.
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The client's name (1-64 of A-Z a-z 0-9 . _ -).
    pub name: String,
    /// A scope: directory:read, messages:compose, messages:send, batches:write, batches:read,
    /// metrics:read, inbox:read, inbox:ack, outbox:read, outbox:manage (repeat for several).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<Scope>,
    /// A sending mailbox (BAL) the client may use; repeat; none: any the service holds credentials for.
    #[arg(long = "sender", value_name = "BAL")]
    pub senders: Vec<String>,
    /// A publishable key (mss_pk_) for web pages: directory:read only, from its --origin pages only.
    #[arg(long)]
    pub publishable: bool,
    /// A web origin (https://host[:port]) allowed to use the publishable key; repeat.
    #[arg(long = "origin", value_name = "URL")]
    pub origins: Vec<String>,
    /// Print a JSON object (with the key) instead.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// JSON Lines, one client each.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// A client name (all its keys) or a key id.
    pub name_or_key_id: String,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The client's name.
    pub name: String,
    /// Print a JSON object (with the key) instead.
    #[arg(long)]
    pub json: bool,
}

/// What `mss client` reads of `mss serve`'s configuration file: `[access]` (the rest is `mss serve`'s to
/// check).
#[derive(Debug, Default, Deserialize)]
struct ConfigView {
    access: Option<AccessFileConfig>,
}

pub fn run(data_dir: &Path, args: ClientArgs) -> Result<()> {
    let config = crate::config::load::<ConfigView>(args.config.as_deref())?;
    let path = clients_path(data_dir, &args.location, config.access.as_ref());
    let edit = |what: &str| format!("{what} in {}", path.display());
    match args.command {
        ClientCommand::Add(a) => {
            let senders = a
                .senders
                .iter()
                .map(|s| MailAddress::parse(s).with_context(|| format!("--sender {s}")))
                .collect::<Result<Vec<_>>>()?;
            let new = NewClient {
                name: a.name.clone(),
                scopes: a.scopes,
                senders,
                publishable: a.publishable,
                origins: a.origins,
            };
            let key = ClientsFile::edit(&path, |f| f.add(new))
                .with_context(|| edit("adding the client"))?;
            eprintln!(
                "mss: client `{}` added to {}; its key is shown once, below: keep it in a secret store",
                a.name,
                path.display()
            );
            print_key(&a.name, &key, a.json)
        }
        ClientCommand::Rotate(a) => {
            let key = ClientsFile::edit(&path, |f| f.rotate(&a.name))
                .with_context(|| edit("rotating the key"))?;
            eprintln!(
                "mss: new key {} for `{}`; the older keys stay valid until `mss client revoke KEY_ID`",
                key.id, a.name
            );
            print_key(&a.name, &key, a.json)
        }
        ClientCommand::Revoke(a) => {
            let revoked = ClientsFile::edit(&path, |f| f.revoke(&a.name_or_key_id))
                .with_context(|| edit("revoking"))?;
            if revoked.is_empty() {
                eprintln!("mss: {} was already revoked", a.name_or_key_id);
            } else {
                eprintln!(
                    "mss: revoked {}; a running service refuses {} within 2 s",
                    revoked.join(", "),
                    if revoked.len() == 1 { "it" } else { "them" }
                );
            }
            Ok(())
        }
        ClientCommand::List(a) => list(&path, a.json),
    }
}

/// The key alone on the last line of stdout, or a JSON object with it.
fn print_key(name: &str, key: &NewKey, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let object = serde_json::json!({
            "name": name,
            "key_id": key.id,
            "key": key.key.expose(),
        });
        writeln!(out, "{object}")?;
    } else {
        writeln!(out, "{}", key.key.expose())?;
    }
    Ok(())
}

fn list(path: &Path, json: bool) -> Result<()> {
    let file = ClientsFile::load(path)?;
    // the last-use file is a convenience: a damaged one must not hide the clients
    let used = file.last_used().unwrap_or_else(|e| {
        eprintln!("mss: warning: last-use times unreadable: {e}");
        Default::default()
    });
    let time = |t: &time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if !json && file.clients().is_empty() {
        eprintln!(
            "mss: no client in {}; add one with `mss client add NAME --scope SCOPE`",
            path.display()
        );
        return Ok(());
    }
    for c in file.clients() {
        let last_used = c.keys.iter().filter_map(|k| used.get(&k.id)).max();
        if json {
            let keys: Vec<_> = c
                .keys
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "id": k.id,
                        "created": time(&k.created),
                        "revoked": k.revoked.as_ref().map(time),
                        "last_used": used.get(&k.id).map(time),
                    })
                })
                .collect();
            let object = serde_json::json!({
                "name": c.name,
                "kind": c.kind,
                "scopes": c.scopes,
                "senders": c.senders,
                "origins": c.origins,
                "created": time(&c.created),
                "last_used": last_used.map(time),
                "keys": keys,
            });
            writeln!(out, "{object}")?;
            continue;
        }
        let keys: Vec<String> = c
            .keys
            .iter()
            .map(|k| match k.revoked {
                Some(_) => format!("{} (revoked)", k.id),
                None => k.id.clone(),
            })
            .collect();
        let scopes: Vec<&str> = c.scopes.iter().map(|s| s.as_str()).collect();
        writeln!(out, "{}", c.name)?;
        writeln!(
            out,
            "  kind: {}",
            match c.kind {
                KeyKind::Secret => "secret",
                KeyKind::Publishable => "publishable",
            }
        )?;
        writeln!(out, "  keys: {}", keys.join(", "))?;
        writeln!(out, "  scopes: {}", scopes.join(", "))?;
        if !c.senders.is_empty() {
            let senders: Vec<&str> = c.senders.iter().map(MailAddress::as_str).collect();
            writeln!(out, "  senders: {}", senders.join(", "))?;
        }
        if !c.origins.is_empty() {
            writeln!(out, "  origins: {}", c.origins.join(", "))?;
        }
        writeln!(out, "  created: {}", time(&c.created))?;
        writeln!(
            out,
            "  last used: {}",
            last_used.map_or_else(|| "never".to_string(), time)
        )?;
    }
    Ok(())
}
