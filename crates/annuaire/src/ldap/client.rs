//! The LDAP client: connection (plain, StartTLS or LDAPS), bind (anonymous or simple), timeouts,
//! reconnection, and live search.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::filter::Filter;
use super::mapping::{Field, Mapped, Mapping, Missing, RawEntry};
pub use crate::Secret;
use crate::model::{BalType, Department, Entry};
use crate::{Error, Result};

/// The national production directory (docs/mssante.md D2).
pub const PRODUCTION_URL: &str = "ldap://ldap.annuaire.mssante.fr:389";
/// The national partners' (test) directory.
pub const PARTNERS_URL: &str = "ldap://partenaires.annuaire.sante.fr:389";
/// Base DN of the mailboxes.
pub const DEFAULT_BASE: &str = "ou=bal,o=mssante,c=fr";
/// Most entries the national server returns for one query.
pub const NATIONAL_SIZE_LIMIT: usize = 100;
/// Longest the national server works on one query.
pub const NATIONAL_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Longest query text a live search sends; longer text cannot be a name and answers "no result".
pub const MAX_QUERY_CHARS: usize = 1024;
/// Most words a live search sends; more words cannot all be in one name and answer "no result".
pub const MAX_QUERY_WORDS: usize = 32;

/// How the client authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    /// No bind (the national directory is public).
    Anonymous,
    /// Simple bind with a DN and a password.
    Simple {
        /// The bind DN.
        dn: String,
        /// The password.
        password: Secret,
    },
}

/// Where the directory is and how to talk to it.
#[derive(Debug, Clone)]
pub struct LdapConfig {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// Base DN of the searches.
    pub base: String,
    /// Authentication.
    pub bind: Bind,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    pub starttls: bool,
    /// PEM file of the certificate authorities to trust for TLS (default: the system's).
    pub ca_file: Option<PathBuf>,
    /// TCP connection (and TLS handshake) timeout.
    pub connect_timeout: Duration,
    /// Longest wait for each reply of an operation.
    pub operation_timeout: Duration,
    /// Time limit sent with each search (whole seconds; zero leaves the server's).
    pub time_limit: Duration,
    /// Attribute mapping.
    pub mapping: Arc<Mapping>,
}

impl LdapConfig {
    /// Settings for `url` and `base` with the defaults: anonymous, no StartTLS, system CAs, 10 s to connect,
    /// the national time limit (60 s) and 5 s more to wait for replies, the default mapping.
    pub fn new(url: &str, base: &str) -> Result<Self> {
        let url = url.trim();
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("ldap" | "ldaps") => {}
            _ => {
                return Err(Error::LdapConfig(format!(
                    "URL `{url}`: expected ldap://host[:port] or ldaps://host[:port]"
                )));
            }
        }
        let host = url
            .split_once("://")
            .map_or("", |(_, r)| r)
            .trim_end_matches('/');
        if host.is_empty() || host.contains(['/', '?', ' ']) {
            return Err(Error::LdapConfig(format!(
                "URL `{url}`: expected ldap://host[:port] (no path: the base DN is given apart)"
            )));
        }
        let base = base.trim();
        if !base.is_empty() && base.split(',').any(|rdn| !rdn.contains('=')) {
            return Err(Error::LdapConfig(format!(
                "base DN `{base}` is not a DN (attr=value,attr=value...)"
            )));
        }
        Ok(LdapConfig {
            url: url.to_string(),
            base: base.to_string(),
            bind: Bind::Anonymous,
            starttls: false,
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            operation_timeout: NATIONAL_TIME_LIMIT + Duration::from_secs(5),
            time_limit: NATIONAL_TIME_LIMIT,
            mapping: Arc::new(Mapping::default()),
        })
    }

    fn ldaps(&self) -> bool {
        self.url.to_ascii_lowercase().starts_with("ldaps://")
    }
}

/// Why a server stopped before giving every matching entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Its size limit (result code 4): more entries match than it returns.
    Size,
    /// Its time limit (result code 3).
    Time,
    /// An administrative limit (result code 11): the query is too broad for it.
    Admin,
}

/// What a search returned, as the server sent it.
#[derive(Debug, Clone, Default)]
pub struct RawPage {
    /// The entries.
    pub entries: Vec<RawEntry>,
    /// Set when the server stopped early: the entries are only part of the matches.
    pub limit: Option<Limit>,
}

/// A live search: words and filters, as a user gives them.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Words; each must start a name ([`Mapping::name_search`] attributes). Taken literally.
    pub text: String,
    /// Only this mailbox type.
    pub bal_type: Option<BalType>,
    /// Only this profession code.
    pub profession: Option<String>,
    /// Only this speciality code.
    pub speciality: Option<String>,
    /// Only this department.
    pub department: Option<String>,
    /// Only this postal code.
    pub postal_code: Option<String>,
    /// Most entries wanted (1 to the server's limit; 0 means the server's limit).
    pub limit: usize,
}

/// The answer of a live search.
#[derive(Debug, Clone, Default)]
pub struct SearchAnswer {
    /// The entries, in the server's order.
    pub entries: Vec<Entry>,
    /// Set when the server stopped at a limit: more entries match.
    pub partial: Option<Limit>,
    /// How to refine, when the answer is partial or cannot match.
    pub hint: Option<String>,
    /// Server entries that were not readable mailboxes (see the log).
    pub rejected: usize,
    /// Red-listed entries dropped (a compliant server sends none).
    pub red_listed: usize,
    /// The filter sent, if one was (for `-v` output and tests).
    pub filter: Option<String>,
    /// Set when entries had no BAL type (a directory of standard attributes only): what they lacked
    /// ([`crate::ldap::mapping::Missing::warning`]). They are in `entries` all the same.
    pub warning: Option<String>,
}

/// The filter of a live search, or `None` when the text cannot match any name (too long, too many
/// words): then nothing is asked. User text only ever becomes assertion values.
pub fn search_filter(mapping: &Mapping, q: &SearchQuery) -> Result<Option<Filter>> {
    if q.text.chars().count() > MAX_QUERY_CHARS {
        return Ok(None);
    }
    let words: Vec<&str> = q.text.split_whitespace().collect();
    if words.len() > MAX_QUERY_WORDS {
        return Ok(None);
    }
    let mut parts = Vec::new();
    for w in words {
        parts.push(Filter::or(
            mapping.name_search().iter().map(|a| Filter::prefix(a, w)),
        ));
    }
    let mut eq = |field: Field, value: Option<String>| -> Result<()> {
        let Some(v) = value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        else {
            return Ok(());
        };
        let attr = mapping.first(field).ok_or_else(|| {
            Error::LdapConfig(format!(
                "the mapping has no attribute for `{}`, which this search filters on",
                field.name()
            ))
        })?;
        parts.push(Filter::equal(attr, v));
        Ok(())
    };
    eq(Field::BalType, q.bal_type.map(|t| t.code().to_string()))?;
    eq(Field::ProfessionCode, q.profession.clone())?;
    eq(Field::SpecialityCode, q.speciality.clone())?;
    let department = match q
        .department
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        Some(d) => Some(Department::parse(d)?.to_string()),
        None => None,
    };
    eq(Field::Department, department)?;
    eq(Field::PostalCode, q.postal_code.clone())?;
    if parts.is_empty() {
        parts.push(Filter::present(mapping.address()));
    }
    Ok(Some(Filter::and(parts)))
}

/// An LDAP directory client. Connects lazily, keeps one connection (operations are multiplexed on it),
/// and reconnects once when the connection broke. `Send + Sync`: share it in an `Arc`.
pub struct LdapClient {
    config: LdapConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: tokio::sync::Mutex<Option<ldap3::Ldap>>,
}

impl fmt::Debug for LdapClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapClient")
            .field("url", &self.config.url)
            .field("base", &self.config.base)
            .finish()
    }
}

impl LdapClient {
    /// A client for `config`. Reads the CA file now; does not connect.
    pub fn new(config: LdapConfig) -> Result<Self> {
        let tls = if config.ldaps() || config.starttls {
            Some(tls_config(config.ca_file.as_deref())?)
        } else {
            None
        };
        Ok(LdapClient {
            config,
            tls,
            conn: tokio::sync::Mutex::new(None),
        })
    }

    /// The settings.
    pub fn config(&self) -> &LdapConfig {
        &self.config
    }

    /// Connects and binds now (instead of at the first search).
    pub async fn connect(&self) -> Result<()> {
        self.handle().await.map(drop)
    }

    /// Closes the connection, if open (the next operation reconnects).
    pub async fn close(&self) {
        if let Some(mut ldap) = self.conn.lock().await.take() {
            let _ = ldap.unbind().await;
        }
    }

    async fn handle(&self) -> Result<ldap3::Ldap> {
        let mut guard = self.conn.lock().await;
        if let Some(ldap) = guard.as_mut()
            && !ldap.is_closed()
        {
            return Ok(ldap.clone());
        }
        let ldap = self.open().await?;
        *guard = Some(ldap.clone());
        Ok(ldap)
    }

    async fn forget(&self) {
        self.conn.lock().await.take();
    }

    async fn open(&self) -> Result<ldap3::Ldap> {
        let c = &self.config;
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(c.connect_timeout)
            .set_starttls(c.starttls && !c.ldaps());
        if let Some(tls) = &self.tls {
            settings = settings.set_config(Arc::clone(tls));
        }
        // the TCP connect is bounded by conn_timeout; StartTLS and the handshake by this one
        let connecting = LdapConnAsync::with_settings(settings, &c.url);
        let (conn, mut ldap) =
            tokio::time::timeout(c.connect_timeout + c.operation_timeout, connecting)
                .await
                .map_err(|_| self.timeout("connection", c.connect_timeout + c.operation_timeout))?
                .map_err(|e| self.error(e, "connection"))?;
        let url = c.url.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(%url, error = %e, "LDAP connection ended");
            }
        });
        if let Bind::Simple { dn, password } = &c.bind {
            let result = ldap
                .with_timeout(c.operation_timeout)
                .simple_bind(dn, password.expose())
                .await
                .map_err(|e| self.error(e, "bind"))?;
            if result.rc != 0 {
                return Err(Error::LdapBind {
                    url: c.url.clone(),
                    dn: dn.clone(),
                    code: result.rc,
                    message: result_message(result.rc, &result.text),
                });
            }
        }
        tracing::debug!(url = %c.url, "LDAP connected");
        Ok(ldap)
    }

    /// Searches the base DN's subtree with `filter`, asking for `attrs`, at most `size_limit` entries
    /// (0: the server's limit). A size, time or administrative limit is not an error: the entries come
    /// back with [`RawPage::limit`] set. A broken connection is reopened once.
    pub async fn search_raw(
        &self,
        filter: &Filter,
        attrs: &[String],
        size_limit: usize,
    ) -> Result<RawPage> {
        let text = filter.to_string();
        let c = &self.config;
        let size = i32::try_from(size_limit).unwrap_or(i32::MAX);
        let time = i32::try_from(c.time_limit.as_secs()).unwrap_or(i32::MAX);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut ldap = self.handle().await?;
            let answer = ldap
                .with_search_options(SearchOptions::new().sizelimit(size).timelimit(time))
                .with_timeout(c.operation_timeout)
                .search(&c.base, Scope::Subtree, &text, attrs.to_vec())
                .await;
            match answer {
                Ok(ldap3::SearchResult(entries, result)) => {
                    let limit = match result.rc {
                        0 => None,
                        3 => Some(Limit::Time),
                        4 => Some(Limit::Size),
                        11 => Some(Limit::Admin),
                        rc => {
                            return Err(Error::LdapOperation {
                                url: c.url.clone(),
                                operation: "search",
                                code: rc,
                                message: result_message(rc, &result.text),
                            });
                        }
                    };
                    let entries = entries
                        .into_iter()
                        .filter_map(|re| {
                            // ldap3 panics on an entry it cannot decode: keep that to this entry
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                SearchEntry::construct(re)
                            }))
                            .ok()
                        })
                        .map(|se| RawEntry::new(se.dn, se.attrs))
                        .collect();
                    return Ok(RawPage { entries, limit });
                }
                Err(e) => {
                    let broken = matches!(
                        e,
                        LdapError::Io { .. }
                            | LdapError::EndOfStream
                            | LdapError::OpSend { .. }
                            | LdapError::ResultRecv { .. }
                            | LdapError::Timeout { .. }
                    );
                    if broken {
                        self.forget().await;
                    }
                    // a timed-out search is not retried: the server is slow, not gone
                    if broken && attempt == 1 && !matches!(e, LdapError::Timeout { .. }) {
                        tracing::debug!(url = %c.url, error = %e, "LDAP connection lost; reconnecting");
                        continue;
                    }
                    return Err(self.error(e, "search"));
                }
            }
        }
    }

    /// A live search: the server's answer for the words and filters of `q`, read through the mapping,
    /// flagged partial when the server stopped at a limit, with a hint on how to refine.
    pub async fn search(&self, q: &SearchQuery) -> Result<SearchAnswer> {
        let mapping = &self.config.mapping;
        let Some(filter) = search_filter(mapping, q)? else {
            return Ok(SearchAnswer {
                hint: Some("no name in the directory is that long: shorten the query".to_string()),
                ..SearchAnswer::default()
            });
        };
        let limit = match q.limit {
            0 => NATIONAL_SIZE_LIMIT,
            n => n.min(NATIONAL_SIZE_LIMIT),
        };
        let page = self
            .search_raw(&filter, &mapping.requested_attributes(), limit)
            .await?;
        let mut answer = SearchAnswer {
            partial: page.limit,
            filter: Some(filter.to_string()),
            ..SearchAnswer::default()
        };
        let mut missing = Missing::default();
        for raw in &page.entries {
            missing.note(mapping, raw);
            match mapping.entry(raw) {
                Mapped::Entry(e) => answer.entries.push(*e),
                Mapped::RedListed(_) => answer.red_listed += 1,
                Mapped::Rejected { dn, reason } => {
                    tracing::warn!(%dn, %reason, "LDAP entry skipped");
                    answer.rejected += 1;
                }
            }
        }
        answer.entries.truncate(limit);
        answer.hint = page.limit.map(|l| refine_hint(l, answer.entries.len()));
        // said once, by the caller, with the answer
        answer.warning = missing.warning(mapping);
        Ok(answer)
    }

    fn timeout(&self, operation: &'static str, after: Duration) -> Error {
        Error::LdapTimeout {
            url: self.config.url.clone(),
            operation,
            seconds: after.as_secs_f64(),
        }
    }

    /// A client-side LDAP error, typed: network, TLS, timeout or protocol.
    fn error(&self, e: LdapError, operation: &'static str) -> Error {
        let url = self.config.url.clone();
        match e {
            LdapError::Timeout { .. } => {
                let after = if operation == "connection" {
                    self.config.connect_timeout
                } else {
                    self.config.operation_timeout
                };
                self.timeout(operation, after)
            }
            LdapError::Io { source } => {
                if let Some(tls) = source
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    return Error::LdapTls {
                        url,
                        reason: tls.to_string(),
                    };
                }
                let reason = match source.kind() {
                    std::io::ErrorKind::ConnectionRefused => {
                        "connection refused: is the server down, or the port wrong?".to_string()
                    }
                    std::io::ErrorKind::TimedOut => {
                        return self.timeout(operation, self.config.connect_timeout);
                    }
                    _ if operation == "connection" => format!("cannot connect: {source}"),
                    _ => format!("connection lost during the {operation}: {source}"),
                };
                Error::LdapNetwork { url, reason }
            }
            LdapError::Rustls { source } => Error::LdapTls {
                url,
                reason: source.to_string(),
            },
            LdapError::DNSName { source } => Error::LdapTls {
                url,
                reason: format!("the host is not a valid TLS server name: {source}"),
            },
            LdapError::EndOfStream | LdapError::ResultRecv { .. } | LdapError::OpSend { .. } => {
                Error::LdapNetwork {
                    url,
                    reason: format!("the server closed the connection during the {operation}"),
                }
            }
            LdapError::LdapResult { result } => Error::LdapOperation {
                url,
                operation: if operation == "connection" && self.config.starttls {
                    "StartTLS"
                } else {
                    operation
                },
                code: result.rc,
                message: result_message(result.rc, &result.text),
            },
            LdapError::UrlParsing { source } => Error::LdapConfig(format!("URL `{url}`: {source}")),
            LdapError::FilterParsing => {
                Error::LdapFilter(format!("the client refused the filter of the {operation}"))
            }
            other => Error::LdapNetwork {
                url,
                reason: format!("{operation}: {other}"),
            },
        }
    }
}

/// What to tell the user when the server stopped early.
pub fn refine_hint(limit: Limit, shown: usize) -> String {
    let why = match limit {
        Limit::Size => format!("the directory returned {shown} entries and more match"),
        Limit::Time => {
            "the directory stopped at its time limit before finding every match".to_string()
        }
        Limit::Admin => "the directory refused to search that broadly".to_string(),
    };
    format!(
        "{why}: add a word (last name, first name) or a filter (department, type, profession, speciality, \
         postal code) to narrow the search"
    )
}

/// The meaning of an LDAP result code (RFC 4511 Appendix A), with the server's text.
fn result_message(rc: u32, text: &str) -> String {
    let meaning = match rc {
        1 => "operations error",
        2 => "protocol error",
        3 => "time limit exceeded",
        4 => "size limit exceeded",
        7 => "authentication method not supported",
        8 => "stronger authentication required",
        10 => "referral: the base DN is not held by this server",
        11 => "administrative limit exceeded",
        13 => "confidentiality required (use StartTLS or ldaps://)",
        32 => "no such object: is the base DN right?",
        34 => "invalid DN syntax",
        48 => "inappropriate authentication",
        49 => "invalid credentials",
        50 => "insufficient access rights",
        51 => "the server is busy",
        52 => "the server is unavailable",
        53 => "the server is unwilling to perform",
        _ => "error",
    };
    let text = text.trim();
    if text.is_empty() {
        meaning.to_string()
    } else {
        format!("{meaning} ({text})")
    }
}

/// rustls settings: aws-lc-rs, and the CAs of `ca_file` or else the system's.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| Error::io(format!("reading the CA file {}", path.display()), e))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert
                    .map_err(|e| Error::LdapConfig(format!("CA file {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| Error::LdapConfig(format!("CA file {}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(Error::LdapConfig(format!(
                    "CA file {} holds no PEM certificate",
                    path.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::LdapConfig(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        LdapConfig::new(PRODUCTION_URL, DEFAULT_BASE).unwrap();
        LdapConfig::new("ldaps://h:636/", "").unwrap();
        for (url, base) in [
            ("http://h", DEFAULT_BASE),
            ("h:389", DEFAULT_BASE),
            ("ldap://", DEFAULT_BASE),
            ("ldap://h/ou=x", DEFAULT_BASE),
            ("ldap://h", "bal"),
        ] {
            assert!(LdapConfig::new(url, base).is_err(), "{url} {base}");
        }
        let s = format!(
            "{:?}",
            Bind::Simple {
                dn: "cn=a".into(),
                password: Secret::new("hunter2")
            }
        );
        assert!(!s.contains("hunter2"), "{s}");
    }

    #[test]
    fn live_search_filters_take_text_literally() {
        let m = Mapping::default();
        let q = |text: &str| SearchQuery {
            text: text.into(),
            ..SearchQuery::default()
        };
        let f = search_filter(&m, &q("du*)(mail=* jean")).unwrap().unwrap();
        assert_eq!(
            f.to_string(),
            "(&(|(sn=du\\2a\\29\\28mail=\\2a*)(givenName=du\\2a\\29\\28mail=\\2a*)(cn=du\\2a\\29\\28mail=\\2a*))\
             (|(sn=jean*)(givenName=jean*)(cn=jean*)))"
        );
        assert_eq!(
            search_filter(&m, &q("  ")).unwrap().unwrap().to_string(),
            "(mail=*)"
        );
        assert!(
            search_filter(&m, &q(&"a".repeat(MAX_QUERY_CHARS + 1)))
                .unwrap()
                .is_none()
        );
        let mut with = q("x");
        with.bal_type = Some(BalType::Org);
        with.department = Some("2a".into());
        assert_eq!(
            search_filter(&m, &with).unwrap().unwrap().to_string(),
            "(&(|(sn=x*)(givenName=x*)(cn=x*))(mssanteBalType=ORG)(mssanteDepartment=2A))"
        );
        with.department = Some("99x".into());
        assert!(search_filter(&m, &with).is_err());
    }
}
