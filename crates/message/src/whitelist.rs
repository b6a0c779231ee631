//! The national whitelist of the espace de confiance (`listeblanchemssante.xml`, docs/mssante.md M8).
//!
//! The file is published with a `checksum` file holding the SHA-256 hex of the XML; a file whose
//! checksum differs is refused as a whole. Domain names are compared case-insensitively; one domain
//! may appear several times, once per operator certificate DN.

use crate::Error;
use crate::xml::{Step, walk};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

/// Where the ANS publishes the list: the `main` branch of `ansforge/MSS-liste-blanche`, its
/// [`CHECKSUM_FILE`] beside it.
pub const PUBLISHED_URL: &str =
    "https://raw.githubusercontent.com/ansforge/MSS-liste-blanche/main/listeblanchemssante.xml";

/// The name of the file holding the list's SHA-256, beside the list.
pub const CHECKSUM_FILE: &str = "checksum";

const NAMESPACE: &str = "https://listeblanche.mssante.fr/schema";
const ROOT: &str = "ListeBlancheMSSante";

/// One `<Domaine>` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainEntry {
    /// `<Nom>` as written.
    pub name: String,
    /// `<Description>`.
    pub description: String,
    /// `<DNCertificatOperateur>`.
    pub operator_dn: String,
    /// `<DateMAJ>`.
    pub updated: String,
}

/// The loaded whitelist.
#[derive(Debug, Clone, Default)]
pub struct Whitelist {
    generated: String,
    // Lower-cased domain -> entries (one per operator DN).
    domains: HashMap<String, Vec<DomainEntry>>,
}

impl Whitelist {
    /// Loads the XML after checking it against the published SHA-256 (`checksum` file content:
    /// 64 hex digits, optionally followed by a file name as `sha256sum` prints it).
    pub fn load(xml: &[u8], checksum: &str) -> Result<Self, Error> {
        let expected = checksum
            .split_whitespace()
            .next()
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| Error::Whitelist("the checksum is not a SHA-256 hex digest".into()))?;
        let actual = mss_types::hex(&Sha256::digest(xml));
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(Error::Whitelist(format!(
                "SHA-256 of the XML is {actual}, the checksum says {}: file refused",
                expected.to_ascii_lowercase()
            )));
        }
        Self::parse(xml)
    }

    /// Loads `listeblanchemssante.xml` and its `checksum` file.
    pub fn from_files(xml: &Path, checksum: &Path) -> Result<Self, Error> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| Error::Io {
                context: format!("reading {}", p.display()),
                source,
            })
        };
        let bytes = read(xml)?;
        let sum = read(checksum)?;
        Self::load(&bytes, &String::from_utf8_lossy(&sum))
    }

    /// Parses the XML without a checksum (for a file already verified, or tests).
    pub fn parse(xml: &[u8]) -> Result<Self, Error> {
        let text = std::str::from_utf8(xml)
            .map_err(|e| Error::Whitelist(format!("not UTF-8 (byte {})", e.valid_up_to())))?;
        let mut wl = Whitelist::default();
        let mut entry: Option<DomainEntry> = None;
        let mut generated = String::new();
        walk(text, |path, step| {
            match step {
                Step::Open(e) => {
                    if path == ROOT {
                        if e.own_namespace()?.as_deref() != Some(NAMESPACE) {
                            return Err(format!("<{ROOT}> is not in the {NAMESPACE} namespace"));
                        }
                    } else if !path.starts_with("ListeBlancheMSSante/") {
                        return Err(format!("the root element is <{path}>, not <{ROOT}>"));
                    } else if path == "ListeBlancheMSSante/ListeDomaines/Domaine" {
                        entry = Some(DomainEntry::default());
                    }
                }
                Step::Text(t) => {
                    let field = path.strip_prefix("ListeBlancheMSSante/ListeDomaines/Domaine/");
                    match (field, entry.as_mut()) {
                        (Some("Nom"), Some(d)) => d.name.push_str(t),
                        (Some("Description"), Some(d)) => d.description.push_str(t),
                        (Some("DNCertificatOperateur"), Some(d)) => d.operator_dn.push_str(t),
                        (Some("DateMAJ"), Some(d)) => d.updated.push_str(t),
                        _ if path == "ListeBlancheMSSante/DateDeGeneration" => {
                            generated.push_str(t)
                        }
                        _ => {}
                    }
                }
                Step::Close => {
                    if path == "ListeBlancheMSSante/ListeDomaines/Domaine"
                        && let Some(mut d) = entry.take()
                    {
                        d.name = d.name.trim().to_string();
                        d.description = d.description.trim().to_string();
                        d.operator_dn = d.operator_dn.trim().to_string();
                        d.updated = d.updated.trim().to_string();
                        if d.name.is_empty() {
                            return Err("a <Domaine> without <Nom>".into());
                        }
                        wl.domains.entry(d.name.to_lowercase()).or_default().push(d);
                    }
                }
            }
            Ok(())
        })
        .map_err(Error::Whitelist)?;
        if wl.domains.is_empty() {
            return Err(Error::Whitelist("no <Domaine> in the file".into()));
        }
        wl.generated = generated.trim().to_string();
        Ok(wl)
    }

    /// `<DateDeGeneration>` as written.
    pub fn generated_at(&self) -> &str {
        &self.generated
    }

    /// Number of distinct domains.
    pub fn len(&self) -> usize {
        self.domains.len()
    }

    /// True when no domain is listed (never for a loaded file).
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// The entries of a domain (one per operator DN).
    pub fn domain(&self, domain: &str) -> &[DomainEntry] {
        self.domains
            .get(&domain.to_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// True when the domain is listed.
    pub fn contains(&self, domain: &str) -> bool {
        self.domains.contains_key(&domain.to_lowercase())
    }

    /// True when `address` may receive a health message: its domain is listed or is the patient
    /// domain of Mon espace santé.
    pub fn allows(&self, address: &str) -> bool {
        match address.rsplit_once('@') {
            Some((_, d)) => d.eq_ignore_ascii_case(crate::PATIENT_DOMAIN) || self.contains(d),
            None => false,
        }
    }

    /// Operator-side rule (docs/mssante.md M8): a sending domain and the DN of the certificate it came with
    /// must match one entry.
    pub fn accepts_operator(&self, domain: &str, certificate_dn: &str) -> bool {
        self.domain(domain)
            .iter()
            .any(|d| d.operator_dn == certificate_dn.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema">
  <DateDeGeneration>2026-11-02T06:00:00Z</DateDeGeneration>
  <ListeDomaines>
    <Domaine><Nom>ch-sud.mssante.fr</Nom><Description>CH Sud</Description>
      <DNCertificatOperateur>CN=a,OU=1,O=Op A,ST=Gironde (33),C=FR</DNCertificatOperateur><DateMAJ>2026-01-01T00:00:00Z</DateMAJ></Domaine>
    <Domaine><Nom>CH-Sud.mssante.fr</Nom><Description>CH Sud</Description>
      <DNCertificatOperateur>CN=b,OU=2,O=Op B,ST=Gironde (33),C=FR</DNCertificatOperateur><DateMAJ>2026-01-01T00:00:00Z</DateMAJ></Domaine>
  </ListeDomaines>
</ListeBlancheMSSante>"#;

    fn sha(x: &str) -> String {
        mss_types::hex(&Sha256::digest(x.as_bytes()))
    }

    #[test]
    fn loads_with_a_matching_checksum() {
        let wl = Whitelist::load(
            XML.as_bytes(),
            &format!("{}  listeblanchemssante.xml\n", sha(XML)),
        )
        .expect("loads");
        assert_eq!(wl.len(), 1);
        assert_eq!(wl.domain("ch-sud.mssante.fr").len(), 2);
        assert!(wl.allows("dr.x@CH-SUD.mssante.fr"));
        assert!(wl.allows("279035121518989@patient.mssante.fr"));
        assert!(!wl.allows("x@gmail.com"));
        assert!(!wl.allows("no-at-sign"));
        assert!(wl.accepts_operator("ch-sud.mssante.fr", "CN=b,OU=2,O=Op B,ST=Gironde (33),C=FR"));
        assert!(!wl.accepts_operator("ch-sud.mssante.fr", "CN=c,OU=3,O=Op C,ST=Gironde (33),C=FR"));
        assert_eq!(wl.generated_at(), "2026-11-02T06:00:00Z");
    }

    #[test]
    fn refuses_a_changed_file() {
        let changed = XML.replace("ch-sud", "ch-nord");
        let err = Whitelist::load(changed.as_bytes(), &sha(XML))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err,
            Some(format!(
                "whitelist: SHA-256 of the XML is {}, the checksum says {}: file refused",
                sha(&changed),
                sha(XML)
            ))
        );
        let err = Whitelist::load(XML.as_bytes(), "md5:abc")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("whitelist: the checksum is not a SHA-256 hex digest")
        );
    }

    #[test]
    fn refuses_other_xml() {
        let err = Whitelist::parse(b"<Other/>").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("whitelist: the root element is <Other>, not <ListeBlancheMSSante>")
        );
        let err = Whitelist::parse(
            b"<ListeBlancheMSSante xmlns=\"https://listeblanche.mssante.fr/schema\"/>",
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("whitelist: no <Domaine> in the file"));
    }
}
