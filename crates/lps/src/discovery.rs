//! Auto-configuration (docs/mssante.md L4): the SRV records `_submission._tcp` and `_imap._tcp` of the BAL's domain;
//! priority 10 is the PER/ORG front (PSC), 20 the APP front (client certificate).
//!
//! Names are always looked up fully qualified (trailing dot): without it hickory applies search domains and
//! has been seen to hang (hickory-dns#3534).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use mss_types::BalType;

use crate::conn::Endpoint;
use crate::error::Error;

/// A boxed future, for object-safe async traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Priority (10 PER/ORG, 20 APP).
    pub priority: u16,
    /// Weight among equal priorities.
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host, fully qualified (trailing dot removed).
    pub target: String,
}

/// What discovery needs from DNS: SRV records and addresses. Implemented by [`DnsResolver`] (hickory) and
/// [`StaticResolver`] (in memory, for tests and fixed configurations).
pub trait SrvResolver: Send + Sync {
    /// SRV records of a fully qualified name (empty when there is none).
    fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<SrvRecord>, Error>>;
    /// Addresses of a host.
    fn ip<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, Error>>;
}

/// hickory-resolver on tokio.
#[derive(Clone)]
pub struct DnsResolver(TokioResolver);

impl DnsResolver {
    /// The system configuration (`/etc/resolv.conf`).
    pub fn system() -> Result<Self, Error> {
        let builder = TokioResolver::builder_tokio().map_err(|e| Error::Dns {
            name: "/etc/resolv.conf".into(),
            reason: e.to_string(),
            transient: false,
        })?;
        builder.build().map(DnsResolver).map_err(|e| Error::Dns {
            name: "resolver".into(),
            reason: e.to_string(),
            transient: false,
        })
    }

    /// One name server (UDP, then TCP), e.g. a local test server.
    pub fn with_server(addr: SocketAddr) -> Result<Self, Error> {
        let mut udp = ConnectionConfig::udp();
        udp.port = addr.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = addr.port();
        let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
        let config = ResolverConfig::from_parts(None, vec![], vec![ns]);
        TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .build()
            .map(DnsResolver)
            .map_err(|e| Error::Dns {
                name: addr.to_string(),
                reason: e.to_string(),
                transient: false,
            })
    }
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

fn dns_error(name: &str, e: &hickory_resolver::net::NetError) -> Error {
    Error::Dns {
        name: name.to_owned(),
        reason: e.to_string(),
        transient: !e.is_nx_domain(),
    }
}

impl SrvResolver for DnsResolver {
    fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<SrvRecord>, Error>> {
        Box::pin(async move {
            let q = fqdn(name);
            match self.0.srv_lookup(q.as_str()).await {
                Ok(lookup) => Ok(lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::SRV(srv) => Some(SrvRecord {
                            priority: srv.priority,
                            weight: srv.weight,
                            port: srv.port,
                            target: srv.target.to_ascii().trim_end_matches('.').to_owned(),
                        }),
                        _ => None,
                    })
                    .collect()),
                Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
                Err(e) => Err(dns_error(name, &e)),
            }
        })
    }

    fn ip<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, Error>> {
        Box::pin(async move {
            if let Ok(ip) = host.parse::<IpAddr>() {
                return Ok(vec![ip]);
            }
            let q = fqdn(host);
            match self.0.lookup_ip(q.as_str()).await {
                Ok(l) => Ok(l.iter().collect()),
                Err(e) => Err(dns_error(host, &e)),
            }
        })
    }
}

/// Answers from fixed tables.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    srv: HashMap<String, Vec<SrvRecord>>,
    hosts: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// Empty tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an SRV record for `name`.
    pub fn srv_record(
        mut self,
        name: &str,
        priority: u16,
        weight: u16,
        port: u16,
        target: &str,
    ) -> Self {
        self.srv
            .entry(fqdn(name).to_ascii_lowercase())
            .or_default()
            .push(SrvRecord {
                priority,
                weight,
                port,
                target: target.trim_end_matches('.').to_owned(),
            });
        self
    }

    /// Adds an address for `host`.
    pub fn host(mut self, host: &str, ip: IpAddr) -> Self {
        self.hosts
            .entry(fqdn(host).to_ascii_lowercase())
            .or_default()
            .push(ip);
        self
    }
}

impl SrvResolver for StaticResolver {
    fn srv<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<SrvRecord>, Error>> {
        let found = self
            .srv
            .get(&fqdn(name).to_ascii_lowercase())
            .cloned()
            .unwrap_or_default();
        Box::pin(async move { Ok(found) })
    }

    fn ip<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, Error>> {
        let found = match host.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![ip]),
            Err(_) => self
                .hosts
                .get(&fqdn(host).to_ascii_lowercase())
                .cloned()
                .ok_or_else(|| Error::Dns {
                    name: host.to_owned(),
                    reason: "no such host".into(),
                    transient: false,
                }),
        };
        Box::pin(async move { found })
    }
}

/// The two fronts of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEndpoints {
    /// SMTP submission.
    pub submission: Endpoint,
    /// IMAP.
    pub imap: Endpoint,
}

/// The SRV priority of the front for this mailbox type: 20 for APP, 10 otherwise.
pub fn srv_priority(bal_type: BalType) -> u16 {
    if bal_type == BalType::App { 20 } else { 10 }
}

/// Finds the submission and IMAP fronts of `domain` for a mailbox type, addresses resolved.
pub async fn discover(
    resolver: &dyn SrvResolver,
    domain: &str,
    bal_type: BalType,
) -> Result<ServerEndpoints, Error> {
    let priority = srv_priority(bal_type);
    let domain = domain.trim_end_matches('.');
    let submission = pick(resolver, &format!("_submission._tcp.{domain}."), priority).await?;
    let imap = pick(resolver, &format!("_imap._tcp.{domain}."), priority).await?;
    tracing::debug!(domain, %submission, %imap, "auto-configured from SRV");
    Ok(ServerEndpoints { submission, imap })
}

async fn pick(resolver: &dyn SrvResolver, name: &str, priority: u16) -> Result<Endpoint, Error> {
    let mut records: Vec<SrvRecord> = resolver
        .srv(name)
        .await?
        .into_iter()
        // "." as target: the service is decidedly not available (RFC 2782)
        .filter(|r| r.priority == priority && !r.target.is_empty())
        .collect();
    // heaviest first among equals; ties kept in answer order
    records.sort_by_key(|r| std::cmp::Reverse(r.weight));
    let no_service = || Error::NoService {
        name: name.to_owned(),
        priority,
    };
    let first = records.first().ok_or_else(no_service)?;
    let addrs = resolver.ip(&first.target).await?;
    Ok(Endpoint {
        host: first.target.clone(),
        port: first.port,
        addrs,
    })
}

/// Where a mailbox's servers are.
#[derive(Clone)]
pub enum ServerSource {
    /// Given explicitly (`--server HOST:PORT`, configuration).
    Explicit(ServerEndpoints),
    /// Auto-configured from the mailbox's domain.
    Srv(Arc<dyn SrvResolver>),
}

impl std::fmt::Debug for ServerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerSource::Explicit(e) => f.debug_tuple("Explicit").field(e).finish(),
            ServerSource::Srv(_) => f.write_str("Srv"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn picks_the_front_by_priority() {
        let r = StaticResolver::new()
            .srv_record("_submission._tcp.sante.test", 10, 1, 587, "psc.sante.test.")
            .srv_record(
                "_submission._tcp.sante.test",
                20,
                1,
                587,
                "authcli.sante.test.",
            )
            .srv_record("_imap._tcp.sante.test", 10, 1, 143, "psc.sante.test.")
            .srv_record("_imap._tcp.sante.test", 20, 1, 143, "authcli.sante.test.")
            .host("psc.sante.test", IpAddr::from([127, 0, 0, 1]))
            .host("authcli.sante.test", IpAddr::from([127, 0, 0, 2]));
        let per = discover(&r, "sante.test", BalType::Per).await.expect("per");
        assert_eq!(per.submission.host, "psc.sante.test");
        assert_eq!(per.imap.addrs, vec![IpAddr::from([127, 0, 0, 1])]);
        let app = discover(&r, "sante.test", BalType::App).await.expect("app");
        assert_eq!(app.submission.host, "authcli.sante.test");
        let none = discover(&r, "other.test", BalType::Org).await;
        assert!(
            matches!(none, Err(Error::NoService { priority: 10, .. })),
            "{none:?}"
        );
    }
}
