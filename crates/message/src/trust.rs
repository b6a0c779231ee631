//! The espace de confiance (docs/mssante.md M8): who a message may come from and go to.
//!
//! Either the installed national whitelist, or, while none is installed, the default rule: only
//! `mssante.fr` and its sub-domains (every MSSanté domain is one; `patient.mssante.fr` included). Nothing
//! outside it ever leaves, configured or not. One [`Trust`] is shared by every path of a process
//! (compose, a ready message's envelope, the outbox preparation); [`Trust::refresh`] swaps in a newer
//! installed whitelist for all of them at once.

use crate::whitelist::Whitelist;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// The file name of the installed national whitelist in the data directory.
pub const INSTALLED_WHITELIST: &str = "listeblanchemssante.xml";

/// The domain every MSSanté domain is under: the default rule without a whitelist.
pub const MSSANTE_DOMAIN: &str = "mssante.fr";

/// How a refusal tells the user to load the national whitelist.
const HOW_TO_LOAD: &str = "load the national whitelist with `mss whitelist update --xml listeblanchemssante.xml --checksum checksum`";

/// True when `domain` is `mssante.fr` or one of its sub-domains, compared case-insensitively on label
/// boundaries (`evilmssante.fr` and `mssante.fr.example.com` are not). A trailing root dot is accepted.
pub fn in_mssante_domain(domain: &str) -> bool {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    let Some(cut) = d.len().checked_sub(MSSANTE_DOMAIN.len()) else {
        return false;
    };
    let (head, tail) = match (d.get(..cut), d.get(cut..)) {
        (Some(h), Some(t)) => (h, t),
        _ => return false,
    };
    tail.eq_ignore_ascii_case(MSSANTE_DOMAIN)
        && (head.is_empty()
            || (head.len() > 1
                && head.ends_with('.')
                && !head.starts_with('.')
                && !head.contains("..")))
}

#[derive(Default)]
struct State {
    whitelist: Option<Arc<Whitelist>>,
    // The installed file and its modification time when read, for `refresh`.
    source: Option<PathBuf>,
    modified: Option<SystemTime>,
}

/// The espace de confiance of a process: the national whitelist, or the default `*.mssante.fr` rule.
/// Clones share one state, so a refreshed whitelist applies to every holder.
#[derive(Clone, Default)]
pub struct Trust {
    state: Arc<RwLock<State>>,
}

impl std::fmt::Debug for Trust {
    // a summary: the list has hundreds of domains
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.read().whitelist {
            Some(wl) => write!(f, "Trust(whitelist of {} domains)", wl.len()),
            None => write!(f, "Trust(mssante.fr and its sub-domains)"),
        }
    }
}

impl Trust {
    /// The default rule only: `mssante.fr` and its sub-domains.
    pub fn mssante_only() -> Self {
        Self::default()
    }

    /// An explicit whitelist (`--whitelist`), never refreshed.
    pub fn whitelist(whitelist: Arc<Whitelist>) -> Self {
        Trust {
            state: Arc::new(RwLock::new(State {
                whitelist: Some(whitelist),
                ..State::default()
            })),
        }
    }

    /// The whitelist installed in `data_dir` by [`install`], or the default rule when none is; kept in
    /// step with the file by [`Trust::refresh`].
    pub fn installed(data_dir: &Path) -> Result<Self> {
        let trust = Trust {
            state: Arc::new(RwLock::new(State {
                source: Some(data_dir.join(INSTALLED_WHITELIST)),
                ..State::default()
            })),
        };
        trust.refresh()?;
        Ok(trust)
    }

    /// Reloads the installed whitelist when its file changed since it was read (a no-op for the other
    /// kinds). On error the previous rule stays.
    pub fn refresh(&self) -> Result<bool> {
        let Some(path) = self.read().source.clone() else {
            return Ok(false);
        };
        let modified = match std::fs::metadata(&path) {
            Ok(m) => Some(m.modified().unwrap_or(SystemTime::UNIX_EPOCH)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(Error::Io {
                    context: format!("reading {}", path.display()),
                    source,
                });
            }
        };
        if modified == self.read().modified {
            return Ok(false);
        }
        let whitelist = match modified {
            Some(_) => {
                let bytes = std::fs::read(&path).map_err(|source| Error::Io {
                    context: format!("reading {}", path.display()),
                    source,
                })?;
                // verified when installed
                Some(Arc::new(Whitelist::parse(&bytes)?))
            }
            None => None,
        };
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.whitelist = whitelist;
        state.modified = modified;
        Ok(true)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The whitelist in force, if any.
    pub fn current(&self) -> Option<Arc<Whitelist>> {
        self.read().whitelist.clone()
    }

    /// True when `address` (`local@domain`) is inside the espace de confiance.
    pub fn allows(&self, address: &str) -> bool {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return false;
        };
        match &self.read().whitelist {
            Some(wl) => wl.allows(address),
            None => in_mssante_domain(domain),
        }
    }

    /// Refuses `address` (named, under `field`) when it is outside the espace de confiance.
    pub fn check(&self, field: &str, address: &str) -> Result<()> {
        if self.allows(address) {
            return Ok(());
        }
        let domain = address.rsplit_once('@').map_or(address, |(_, d)| d);
        let reason = if self.read().whitelist.is_some() {
            format!("{address}: domain {domain} is not in the MSSanté whitelist")
        } else {
            format!(
                "{address}: domain {domain} is outside the espace de confiance (without a national whitelist only mssante.fr and its sub-domains are allowed; {HOW_TO_LOAD})"
            )
        };
        Err(Error::refused(field, reason))
    }

    /// Checks a ready message's envelope: its sender (field `sender`) and each recipient
    /// (`recipients[i]`), under `field` when not empty.
    pub fn check_envelope(&self, field: &str, envelope: &mss_types::Envelope) -> Result<()> {
        let at = |f: String| {
            if field.is_empty() {
                f
            } else {
                format!("{field}.{f}")
            }
        };
        self.check(&at("sender".into()), envelope.from.as_str())?;
        for (i, r) in envelope.recipients.iter().enumerate() {
            self.check(&at(format!("recipients[{i}]")), r.as_str())?;
        }
        Ok(())
    }
}

/// Verifies `xml` against its published `checksum` and installs it into `data_dir` (a temporary file
/// renamed over the previous one, so a reader sees the old list or the new, never half of one).
/// A file that fails the check installs nothing.
pub fn install(data_dir: &Path, xml: &[u8], checksum: &str) -> Result<Whitelist> {
    let whitelist = Whitelist::load(xml, checksum)?;
    let io = |context: String| move |source| Error::Io { context, source };
    std::fs::create_dir_all(data_dir).map_err(io(format!("creating {}", data_dir.display())))?;
    let target = data_dir.join(INSTALLED_WHITELIST);
    let temp = data_dir.join(format!(".{INSTALLED_WHITELIST}.{}.tmp", std::process::id()));
    let written = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(xml)?;
        f.sync_all()
    })();
    if let Err(e) = written.and_then(|()| std::fs::rename(&temp, &target)) {
        let _ = std::fs::remove_file(&temp);
        return Err(io(format!("installing {}", target.display()))(e));
    }
    Ok(whitelist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_rule_on_label_boundaries() {
        for ok in [
            "mssante.fr",
            "MSSANTE.FR",
            "patient.mssante.fr",
            "a.b.MsSante.fr",
            "x.mssante.fr.",
        ] {
            assert!(in_mssante_domain(ok), "{ok}");
        }
        for no in [
            "evilmssante.fr",
            "mssante.fr.example.com",
            "gmail.com",
            "",
            ".mssante.fr",
            "a..mssante.fr",
            "fr",
            "mssante.frx",
        ] {
            assert!(!in_mssante_domain(no), "{no}");
        }
    }

    #[test]
    fn default_rule_refusal_says_how_to_load_the_whitelist() {
        let t = Trust::mssante_only();
        assert!(t.allows("dr@chu.mssante.fr"));
        let e = t
            .check("recipients.to[0]", "x@gmail.com")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "recipients.to[0]: x@gmail.com: domain gmail.com is outside the espace de confiance (without a national whitelist only mssante.fr and its sub-domains are allowed; load the national whitelist with `mss whitelist update --xml listeblanchemssante.xml --checksum checksum`)"
            )
        );
    }
}
