//! The attribute mapping: which LDAP attribute holds which field of an [`Entry`] (docs/mssante.md D2: data, not code).
//!
//! The default is `crates/annuaire/ldap/mapping.toml`, built in ([`DEFAULT_MAPPING`]); a file in the same
//! shape overrides it key by key ([`Mapping::from_toml`], [`Mapping::load`]). The same mapping reads
//! entries from a server ([`Mapping::entry`]), builds search filters, drives the harvest's splitting, and
//! writes test directories as LDIF ([`Mapping::write_ldif`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;

use base64::Engine as _;
use serde::Deserialize;

use super::filter::Attribute;
use crate::model::{BalType, Coded, Department, Entry, MailAddress, Source};
use crate::{Error, Result};

/// The built-in default mapping (`crates/annuaire/ldap/mapping.toml`).
pub const DEFAULT_MAPPING: &str = include_str!("../../ldap/mapping.toml");

/// The project schema for slapd (`crates/annuaire/ldap/mssante.ldif`, cn=config form).
pub const PROJECT_SCHEMA_LDIF: &str = include_str!("../../ldap/mssante.ldif");

/// A mappable field: an [`Entry`] field (coded fields have a code part and a label part), or one of the
/// derived values written to test directories (`display_name`, `city`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)]
pub enum Field {
    Address,
    BalType,
    PersonIdType,
    PersonId,
    PersonNationalId,
    OrganisationIdType,
    OrganisationId,
    Service,
    Civility,
    LastName,
    FirstName,
    ProfessionCategoryCode,
    ProfessionCategoryLabel,
    ProfessionCode,
    ProfessionLabel,
    SpecialityCode,
    SpecialityLabel,
    Dematerialisation,
    OrganisationName,
    OrganisationTradeName,
    AddressComplement,
    AddressDistribution,
    StreetNumber,
    StreetNumberComplement,
    StreetType,
    StreetName,
    Locality,
    DeliveryLine,
    PostalCode,
    Department,
    Country,
    RedListed,
    UpdatedAt,
    DisplayName,
    City,
}

const FIELDS: [(&str, Field); 35] = [
    ("address", Field::Address),
    ("bal_type", Field::BalType),
    ("person_id_type", Field::PersonIdType),
    ("person_id", Field::PersonId),
    ("person_national_id", Field::PersonNationalId),
    ("organisation_id_type", Field::OrganisationIdType),
    ("organisation_id", Field::OrganisationId),
    ("service", Field::Service),
    ("civility", Field::Civility),
    ("last_name", Field::LastName),
    ("first_name", Field::FirstName),
    ("profession_category_code", Field::ProfessionCategoryCode),
    ("profession_category_label", Field::ProfessionCategoryLabel),
    ("profession_code", Field::ProfessionCode),
    ("profession_label", Field::ProfessionLabel),
    ("speciality_code", Field::SpecialityCode),
    ("speciality_label", Field::SpecialityLabel),
    ("dematerialisation", Field::Dematerialisation),
    ("organisation_name", Field::OrganisationName),
    ("organisation_trade_name", Field::OrganisationTradeName),
    ("address_complement", Field::AddressComplement),
    ("address_distribution", Field::AddressDistribution),
    ("street_number", Field::StreetNumber),
    ("street_number_complement", Field::StreetNumberComplement),
    ("street_type", Field::StreetType),
    ("street_name", Field::StreetName),
    ("locality", Field::Locality),
    ("delivery_line", Field::DeliveryLine),
    ("postal_code", Field::PostalCode),
    ("department", Field::Department),
    ("country", Field::Country),
    ("red_listed", Field::RedListed),
    ("updated_at", Field::UpdatedAt),
    ("display_name", Field::DisplayName),
    ("city", Field::City),
];

impl Field {
    /// The key in the mapping file.
    pub fn name(self) -> &'static str {
        FIELDS
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |(n, _)| n)
    }
}

impl FromStr for Field {
    type Err = Error;
    fn from_str(s: &str) -> Result<Field> {
        FIELDS
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                Error::LdapConfig(format!(
                    "mapping: unknown field `{s}`; the fields are {}",
                    FIELDS.map(|(n, _)| n).join(", ")
                ))
            })
    }
}

/// How the harvest cuts along one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitBy {
    /// One sub-query per value seen, plus one for every other value.
    Value,
    /// One sub-query per next character seen after the current prefix, plus one for every other.
    Prefix,
}

/// One dimension of the harvest's splitting: an attribute and how to cut along it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The attribute.
    pub attribute: Attribute,
    /// How.
    pub by: SplitBy,
}

/// A resolved, checked mapping. Cheap to share in an `Arc`.
#[derive(Debug, Clone)]
pub struct Mapping {
    fields: BTreeMap<Field, Vec<Attribute>>,
    name_search: Vec<Attribute>,
    split: Vec<Split>,
    object_classes: Vec<String>,
    bal_type_default: Option<BalType>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileShape {
    /// The BAL type of entries without one (instead of inferring it).
    bal_type_default: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, OneOrMany>,
    search: Option<SearchShape>,
    harvest: Option<HarvestShape>,
    ldif: Option<LdifShape>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchShape {
    name: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HarvestShape {
    split: Vec<SplitShape>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SplitShape {
    field: String,
    by: SplitBy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LdifShape {
    object_classes: Vec<String>,
}

impl Default for Mapping {
    /// The built-in mapping ([`DEFAULT_MAPPING`]).
    fn default() -> Self {
        static DEFAULT: OnceLock<Mapping> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                Mapping::empty()
                    .overlay(DEFAULT_MAPPING)
                    .expect("the built-in LDAP mapping is valid (checked by a unit test)")
            })
            .clone()
    }
}

impl Mapping {
    fn empty() -> Self {
        Mapping {
            fields: BTreeMap::new(),
            name_search: Vec::new(),
            split: Vec::new(),
            object_classes: Vec::new(),
            bal_type_default: None,
        }
    }

    /// The default mapping with the keys of `text` (TOML, same shape as [`DEFAULT_MAPPING`]) replacing
    /// the default ones.
    pub fn from_toml(text: &str) -> Result<Self> {
        Mapping::default().overlay(text)
    }

    /// [`Mapping::from_toml`] of a file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading the LDAP mapping {}", path.display()), e))?;
        Mapping::from_toml(&text).map_err(|e| match e {
            Error::LdapConfig(m) => Error::LdapConfig(format!("{}: {m}", path.display())),
            e => e,
        })
    }

    fn overlay(mut self, text: &str) -> Result<Self> {
        let file: FileShape = toml::from_str(text)
            .map_err(|e| Error::LdapConfig(format!("mapping: {}", e.message())))?;
        for (name, attrs) in file.fields {
            let field: Field = name.parse()?;
            let names = match attrs {
                OneOrMany::One(a) => vec![a],
                OneOrMany::Many(v) => v,
            };
            let attrs = names
                .iter()
                .filter(|a| !a.trim().is_empty())
                .map(|a| checked(&format!("fields.{name}"), a))
                .collect::<Result<Vec<_>>>()?;
            if attrs.is_empty() {
                self.fields.remove(&field);
            } else {
                self.fields.insert(field, attrs);
            }
        }
        if let Some(search) = file.search {
            self.name_search = search
                .name
                .iter()
                .map(|a| checked("search.name", a))
                .collect::<Result<_>>()?;
        }
        if let Some(harvest) = file.harvest {
            self.split = Vec::new();
            for s in harvest.split {
                let field: Field = s.field.parse()?;
                let attribute = self.first(field).cloned().ok_or_else(|| {
                    Error::LdapConfig(format!(
                        "mapping: harvest.split uses field `{}`, which has no attribute",
                        s.field
                    ))
                })?;
                self.split.push(Split {
                    attribute,
                    by: s.by,
                });
            }
        }
        if let Some(ldif) = file.ldif {
            self.object_classes = ldif.object_classes;
        }
        if let Some(t) = file.bal_type_default.as_deref().map(str::trim) {
            self.bal_type_default =
                match t {
                    "" => None,
                    t => Some(t.parse::<BalType>().map_err(|e| {
                        Error::LdapConfig(format!("mapping: bal_type_default: {e}"))
                    })?),
                };
        }
        // the BAL type may be unmapped or absent: it is then inferred (see `Mapping::entry`)
        for required in [Field::Address] {
            if self.first(required).is_none() {
                return Err(Error::LdapConfig(format!(
                    "mapping: field `{}` must have an attribute",
                    required.name()
                )));
            }
        }
        if self.name_search.is_empty() {
            return Err(Error::LdapConfig(
                "mapping: search.name must list at least one attribute".into(),
            ));
        }
        if self.split.is_empty() {
            return Err(Error::LdapConfig(
                "mapping: harvest.split must list at least one dimension".into(),
            ));
        }
        Ok(self)
    }

    /// The attributes of `field`, first preferred.
    pub fn attributes_of(&self, field: Field) -> &[Attribute] {
        self.fields.get(&field).map_or(&[], Vec::as_slice)
    }

    /// The first attribute of `field`.
    pub fn first(&self, field: Field) -> Option<&Attribute> {
        self.attributes_of(field).first()
    }

    /// The attribute of the address (required).
    pub fn address(&self) -> &Attribute {
        self.first(Field::Address)
            .expect("checked when the mapping was made")
    }

    /// Attributes a name search looks in.
    pub fn name_search(&self) -> &[Attribute] {
        &self.name_search
    }

    /// The harvest's splitting dimensions, in order.
    pub fn split(&self) -> &[Split] {
        &self.split
    }

    /// Every attribute to ask the server for (mapped fields and splitting attributes), each once.
    pub fn requested_attributes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let all = self
            .fields
            .values()
            .flatten()
            .chain(self.split.iter().map(|s| &s.attribute))
            .chain(&self.name_search);
        for a in all {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(a.as_str())) {
                out.push(a.as_str().to_string());
            }
        }
        out
    }

    /// Reads a server entry. Red-listed entries and entries that cannot be read come back as such,
    /// never as an [`Entry`].
    pub fn entry(&self, raw: &RawEntry) -> Mapped {
        let text = |field: Field| -> Option<String> {
            self.attributes_of(field)
                .iter()
                .find_map(|a| raw.first(a))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(address) = text(Field::Address) else {
            return Mapped::Rejected {
                dn: raw.dn.clone(),
                reason: format!("no `{}` attribute", self.address()),
            };
        };
        let address = match MailAddress::parse(&address) {
            Ok(a) => a,
            Err(e) => {
                return Mapped::Rejected {
                    dn: raw.dn.clone(),
                    reason: e.to_string(),
                };
            }
        };
        if text(Field::RedListed).as_deref().and_then(parse_bool) == Some(true) {
            return Mapped::RedListed(address);
        }
        let bal_type = match text(Field::BalType).map(|t| t.parse::<BalType>()) {
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                return Mapped::Rejected {
                    dn: raw.dn.clone(),
                    reason: e.to_string(),
                };
            }
            // a directory of standard attributes only (inetOrgPerson) has no BAL type
            None => self.bal_type_default.unwrap_or_else(|| {
                let named = text(Field::LastName).is_some() || text(Field::FirstName).is_some();
                if named { BalType::Per } else { BalType::Org }
            }),
        };
        let coded = |code: Field, label: Field| match (text(code), text(label)) {
            (None, None) => None,
            (code, label) => Some(Coded {
                code: code.unwrap_or_default(),
                label: label.unwrap_or_default(),
            }),
        };
        let mut e = Entry::new(address, bal_type, Source::Ldap);
        e.person_id_type = text(Field::PersonIdType);
        e.person_id = text(Field::PersonId);
        e.person_national_id = text(Field::PersonNationalId);
        e.organisation_id_type = text(Field::OrganisationIdType);
        e.organisation_id = text(Field::OrganisationId);
        e.service = text(Field::Service);
        e.civility = text(Field::Civility);
        e.last_name = text(Field::LastName);
        e.first_name = text(Field::FirstName);
        e.profession_category = coded(
            Field::ProfessionCategoryCode,
            Field::ProfessionCategoryLabel,
        );
        e.profession = coded(Field::ProfessionCode, Field::ProfessionLabel);
        e.speciality = coded(Field::SpecialityCode, Field::SpecialityLabel);
        e.dematerialisation = text(Field::Dematerialisation)
            .as_deref()
            .and_then(parse_bool);
        e.organisation_name = text(Field::OrganisationName);
        e.organisation_trade_name = text(Field::OrganisationTradeName);
        e.address_complement = text(Field::AddressComplement);
        e.address_distribution = text(Field::AddressDistribution);
        e.street_number = text(Field::StreetNumber);
        e.street_number_complement = text(Field::StreetNumberComplement);
        e.street_type = text(Field::StreetType);
        e.street_name = text(Field::StreetName);
        e.locality = text(Field::Locality);
        e.postal_code = text(Field::PostalCode);
        e.delivery_line = text(Field::DeliveryLine).or_else(|| {
            let city = text(Field::City)?;
            Some(match &e.postal_code {
                Some(pc) => format!("{pc} {city}"),
                None => city,
            })
        });
        e.department = text(Field::Department)
            .and_then(|d| Department::parse(&d).ok())
            .or_else(|| {
                e.postal_code
                    .as_deref()
                    .and_then(Department::from_postal_code)
            });
        e.country = text(Field::Country);
        e.updated_at = text(Field::UpdatedAt).map(|t| generalized_time_to_rfc3339(&t));
        Mapped::Entry(Box::new(e))
    }

    /// The BAL type given to entries without one (`bal_type_default`); `None`: inferred, person names
    /// giving `PER`, anything else `ORG`.
    pub fn bal_type_default(&self) -> Option<BalType> {
        self.bal_type_default
    }

    /// The attribute values this mapping gives `entry` (first attribute of each field; derived
    /// `display_name` and `city` included), in field order.
    pub fn attributes(&self, e: &Entry) -> Vec<(&Attribute, String)> {
        fn s(v: &Option<String>) -> Option<String> {
            v.clone()
        }
        let code = |c: &Option<Coded>| c.as_ref().map(|c| c.code.clone());
        let label = |c: &Option<Coded>| c.as_ref().map(|c| c.label.clone());
        let boolean = |b: bool| if b { "TRUE" } else { "FALSE" }.to_string();
        let values: [(Field, Option<String>); 34] = [
            (Field::Address, Some(e.address.to_string())),
            (Field::BalType, Some(e.bal_type.code().to_string())),
            (Field::PersonIdType, s(&e.person_id_type)),
            (Field::PersonId, s(&e.person_id)),
            (Field::PersonNationalId, s(&e.person_national_id)),
            (Field::OrganisationIdType, s(&e.organisation_id_type)),
            (Field::OrganisationId, s(&e.organisation_id)),
            (Field::Service, s(&e.service)),
            (Field::Civility, s(&e.civility)),
            (Field::LastName, s(&e.last_name)),
            (Field::FirstName, s(&e.first_name)),
            (Field::ProfessionCategoryCode, code(&e.profession_category)),
            (
                Field::ProfessionCategoryLabel,
                label(&e.profession_category),
            ),
            (Field::ProfessionCode, code(&e.profession)),
            (Field::ProfessionLabel, label(&e.profession)),
            (Field::SpecialityCode, code(&e.speciality)),
            (Field::SpecialityLabel, label(&e.speciality)),
            (Field::Dematerialisation, e.dematerialisation.map(boolean)),
            (Field::OrganisationName, s(&e.organisation_name)),
            (Field::OrganisationTradeName, s(&e.organisation_trade_name)),
            (Field::AddressComplement, s(&e.address_complement)),
            (Field::AddressDistribution, s(&e.address_distribution)),
            (Field::StreetNumber, s(&e.street_number)),
            (
                Field::StreetNumberComplement,
                s(&e.street_number_complement),
            ),
            (Field::StreetType, s(&e.street_type)),
            (Field::StreetName, s(&e.street_name)),
            (Field::Locality, s(&e.locality)),
            (Field::DeliveryLine, s(&e.delivery_line)),
            (Field::PostalCode, s(&e.postal_code)),
            (
                Field::Department,
                e.department.as_ref().map(|d| d.to_string()),
            ),
            (Field::Country, s(&e.country)),
            (Field::RedListed, e.red_listed.then(|| boolean(true))),
            (Field::DisplayName, Some(e.display_name())),
            (Field::City, e.city().map(str::to_string)),
        ];
        values
            .into_iter()
            .filter_map(|(field, v)| {
                let v = v.filter(|v| !v.trim().is_empty())?;
                Some((self.first(field)?, v))
            })
            .collect()
    }

    /// Writes `entry` as one LDIF record (RFC 2849) under `base` (its DN: `<address attr>=<address>,base`),
    /// for loading a test directory with `slapadd`. Values that LDIF cannot carry as text are base64.
    pub fn write_ldif(&self, e: &Entry, base: &str, out: &mut impl Write) -> Result<()> {
        let mut rec = String::with_capacity(1024);
        let dn = format!(
            "{}={},{base}",
            self.address(),
            ldap3::dn_escape(e.address.as_str())
        );
        ldif_line(&mut rec, "dn", &dn);
        for oc in &self.object_classes {
            ldif_line(&mut rec, "objectClass", oc);
        }
        for (attr, value) in self.attributes(e) {
            ldif_line(&mut rec, attr.as_str(), &value);
        }
        rec.push('\n');
        out.write_all(rec.as_bytes())
            .map_err(|err| Error::io("writing LDIF", err))
    }
}

/// An attribute name of the mapping file, its errors naming the key.
fn checked(key: &str, name: &str) -> Result<Attribute> {
    Attribute::new(name.trim()).map_err(|e| match e {
        Error::LdapConfig(m) => Error::LdapConfig(format!("mapping: {key}: {m}")),
        e => e,
    })
}

/// Writes the entry of the base DN itself (and nothing above it): `ou=…`, `o=…`, `dc=…` or `c=…`.
pub fn write_ldif_base(base: &str, out: &mut impl Write) -> Result<()> {
    let first = base.split(',').next().unwrap_or("").trim();
    let (attr, value) = first
        .split_once('=')
        .ok_or_else(|| Error::LdapConfig(format!("base DN `{base}` has no `attr=value`")))?;
    let classes: &[&str] = match attr.to_ascii_lowercase().as_str() {
        "ou" => &["top", "organizationalUnit"],
        "o" => &["top", "organization"],
        "dc" => &["top", "dcObject", "organization"],
        "c" => &["top", "country"],
        other => {
            return Err(Error::LdapConfig(format!(
                "base DN `{base}`: cannot write an entry for `{other}=`; use ou=, o=, dc= or c="
            )));
        }
    };
    let mut rec = String::new();
    ldif_line(&mut rec, "dn", base);
    for c in classes {
        ldif_line(&mut rec, "objectClass", c);
    }
    ldif_line(&mut rec, attr, value);
    if attr.eq_ignore_ascii_case("dc") {
        ldif_line(&mut rec, "o", value);
    }
    rec.push('\n');
    out.write_all(rec.as_bytes())
        .map_err(|err| Error::io("writing LDIF", err))
}

/// `attr: value`, or `attr:: base64` when the value is not a LDIF SAFE-STRING (RFC 2849).
fn ldif_line(out: &mut String, attr: &str, value: &str) {
    let safe = value
        .bytes()
        .all(|b| b.is_ascii() && b != 0 && b != b'\n' && b != b'\r')
        && !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ');
    if safe {
        let _ = writeln!(out, "{attr}: {value}");
    } else {
        let _ = writeln!(
            out,
            "{attr}:: {}",
            base64::engine::general_purpose::STANDARD.encode(value)
        );
    }
}

/// LDAP Boolean (`TRUE`/`FALSE`) and the usual spellings of the extraction.
fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "oui" | "o" | "y" | "yes" => Some(true),
        "false" | "0" | "non" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// `20261123080000Z` -> `2026-11-23T08:00:00Z`; anything else is kept as is.
fn generalized_time_to_rfc3339(t: &str) -> String {
    let b = t.as_bytes();
    if b.len() >= 15 && b[..14].iter().all(u8::is_ascii_digit) && t.ends_with('Z') {
        return format!(
            "{}-{}-{}T{}:{}:{}Z",
            &t[0..4],
            &t[4..6],
            &t[6..8],
            &t[8..10],
            &t[10..12],
            &t[12..14]
        );
    }
    t.to_string()
}

/// An entry as a server sent it: its DN and its text values, attribute names in lower case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawEntry {
    /// The entry's DN.
    pub dn: String,
    /// Values by lower-case attribute name.
    pub attrs: HashMap<String, Vec<String>>,
}

impl RawEntry {
    /// An entry from `(name, values)` pairs; names are lower-cased, values of the same name merged.
    pub fn new(
        dn: impl Into<String>,
        attrs: impl IntoIterator<Item = (String, Vec<String>)>,
    ) -> Self {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in attrs {
            map.entry(k.to_ascii_lowercase()).or_default().extend(v);
        }
        RawEntry {
            dn: dn.into(),
            attrs: map,
        }
    }

    /// The values of `attr`.
    pub fn values(&self, attr: &Attribute) -> &[String] {
        self.attrs.get(attr.key()).map_or(&[], Vec::as_slice)
    }

    /// The first non-blank value of `attr`.
    pub fn first(&self, attr: &Attribute) -> Option<&str> {
        self.values(attr)
            .iter()
            .map(String::as_str)
            .find(|v| !v.trim().is_empty())
    }
}

/// What the entries of an answer lacked, gathered to be said once ([`Missing::warning`]) rather than
/// entry by entry: how many had no BAL type, and which mapped attributes none of them carried.
#[derive(Debug, Default, Clone)]
pub struct Missing {
    entries: usize,
    without_type: usize,
    carried: std::collections::HashSet<String>,
}

impl Missing {
    /// Notes one server entry.
    pub fn note(&mut self, mapping: &Mapping, raw: &RawEntry) {
        self.entries += 1;
        let has = |a: &Attribute| raw.values(a).iter().any(|v| !v.trim().is_empty());
        if !mapping.attributes_of(Field::BalType).iter().any(has) {
            self.without_type += 1;
        }
        for a in mapping.fields.values().flatten() {
            if has(a) {
                self.carried.insert(a.key().to_string());
            }
        }
    }

    /// Entries noted that had no BAL type.
    pub fn without_type(&self) -> usize {
        self.without_type
    }

    /// The warning to give once, when some entry had no BAL type: which mapped attributes no entry
    /// carried and what BAL type was given.
    pub fn warning(&self, mapping: &Mapping) -> Option<String> {
        if self.without_type == 0 {
            return None;
        }
        let mut absent: Vec<String> = Vec::new();
        for (field, attrs) in &mapping.fields {
            if !attrs.iter().any(|a| self.carried.contains(a.key())) {
                let names: Vec<&str> = attrs.iter().map(Attribute::as_str).collect();
                absent.push(format!("{} ({})", names.join("/"), field.name()));
            }
        }
        let given = match mapping.bal_type_default {
            Some(t) => format!("given {} (bal_type_default)", t.code()),
            None => "inferred: PER for person names, ORG otherwise".to_string(),
        };
        let absent = if absent.is_empty() {
            "none".to_string()
        } else {
            absent.join(", ")
        };
        Some(format!(
            "{} of {} LDAP entries have no BAL type, {given}; mapped attributes no entry carries: {absent}",
            self.without_type, self.entries
        ))
    }
}

/// What a server entry reads as.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// A mailbox.
    Entry(Box<Entry>),
    /// A red-listed mailbox: never shown nor indexed.
    RedListed(MailAddress),
    /// Not a readable mailbox (no or bad address, no or bad type).
    Rejected {
        /// The entry's DN.
        dn: String,
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo;

    /// What an LDAP server would hold for `e` under `m`: the attribute values, as a [`RawEntry`].
    fn raw(m: &Mapping, e: &Entry) -> RawEntry {
        RawEntry::new(
            format!("mail={},ou=bal,o=mssante,c=fr", e.address),
            m.attributes(e)
                .into_iter()
                .map(|(a, v)| (a.as_str().to_string(), vec![v])),
        )
    }

    #[test]
    fn the_default_mapping_is_valid_and_complete() {
        let m = Mapping::default();
        for (name, field) in FIELDS {
            assert_eq!(field.name(), name);
            assert!(m.first(field).is_some(), "{name} is not mapped by default");
        }
        assert_eq!(m.address().as_str(), "mail");
        assert_eq!(m.split().len(), 3);
        assert!(
            m.requested_attributes()
                .contains(&"modifyTimestamp".to_string())
        );
    }

    /// An inetOrgPerson entry: standard attributes only, no BAL type.
    fn plain(mail: &str, attrs: &[(&str, &str)]) -> RawEntry {
        let mut all = vec![("mail".to_string(), vec![mail.to_string()])];
        all.extend(
            attrs
                .iter()
                .map(|(a, v)| (a.to_string(), vec![v.to_string()])),
        );
        RawEntry::new(format!("mail={mail},ou=bal,o=mssante,c=fr"), all)
    }

    #[test]
    fn an_entry_without_bal_type_is_read_with_an_inferred_or_given_one() {
        let m = Mapping::default();
        let person = plain(
            "anne.martin@x.fr",
            &[("sn", "Martin"), ("givenName", "Anne")],
        );
        let service = plain(
            "urgences@x.fr",
            &[("o", "CHU de Nantes"), ("ou", "Urgences")],
        );
        let type_of = |m: &Mapping, raw: &RawEntry| match m.entry(raw) {
            Mapped::Entry(e) => e.bal_type,
            other => panic!("{other:?}"),
        };
        assert_eq!(type_of(&m, &person), BalType::Per);
        assert_eq!(type_of(&m, &service), BalType::Org);
        let fixed = Mapping::from_toml("bal_type_default = \"APP\"").unwrap();
        assert_eq!(fixed.bal_type_default(), Some(BalType::App));
        assert_eq!(type_of(&fixed, &person), BalType::App);
        // unmapped altogether: the same
        let unmapped = Mapping::from_toml("[fields]\nbal_type = \"\"").unwrap();
        assert_eq!(type_of(&unmapped, &person), BalType::Per);
        // a type the entry gives is still read, and a wrong one still refused
        let typed = plain("a@x.fr", &[("sn", "A"), ("mssanteBalType", "CAB")]);
        assert_eq!(type_of(&m, &typed), BalType::Cab);
        let wrong = plain("b@x.fr", &[("sn", "B"), ("mssanteBalType", "XYZ")]);
        assert!(matches!(m.entry(&wrong), Mapped::Rejected { .. }));
        let err = Mapping::from_toml("bal_type_default = \"PERSON\"").unwrap_err();
        assert!(err.to_string().contains("bal_type_default"), "{err}");
    }

    #[test]
    fn what_entries_lacked_is_said_once() {
        let m = Mapping::from_toml(
            "[fields]\nperson_id_type = \"\"\nperson_id = \"\"\nperson_national_id = \"\"\n\
             organisation_id_type = \"\"\norganisation_id = \"\"\ncivility = \"\"\n\
             profession_category_code = \"\"\nprofession_category_label = \"\"\n\
             profession_code = \"\"\nspeciality_code = \"\"\nspeciality_label = \"\"\n\
             dematerialisation = \"\"\norganisation_trade_name = \"\"\naddress_complement = \"\"\n\
             address_distribution = \"\"\nstreet_number = \"\"\nstreet_number_complement = \"\"\n\
             street_type = \"\"\nstreet_name = \"\"\nlocality = \"\"\ndelivery_line = \"\"\n\
             department = \"\"\ncountry = \"\"\nred_listed = \"\"\nupdated_at = \"\"\n",
        )
        .unwrap();
        let mut missing = Missing::default();
        missing.note(
            &m,
            &plain("a@x.fr", &[("sn", "A"), ("cn", "A"), ("l", "Lyon")]),
        );
        missing.note(
            &m,
            &plain(
                "b@x.fr",
                &[("sn", "B"), ("cn", "B"), ("postalCode", "69003")],
            ),
        );
        assert_eq!(missing.without_type(), 2);
        assert_eq!(
            missing.warning(&m).unwrap(),
            "2 of 2 LDAP entries have no BAL type, inferred: PER for person names, ORG otherwise; \
             mapped attributes no entry carries: mssanteBalType (bal_type), ou (service), \
             givenName (first_name), title (profession_label), o (organisation_name)"
        );
        // entries that all say their type: nothing to say
        let mut typed = Missing::default();
        typed.note(
            &m,
            &plain("c@x.fr", &[("sn", "C"), ("mssanteBalType", "PER")]),
        );
        assert_eq!(typed.warning(&m), None);
    }

    #[test]
    fn entries_round_trip_through_their_attributes() {
        let m = Mapping::default();
        for e in demo::entries(2000, 5) {
            let mut expected = e.clone();
            expected.source = Source::Ldap;
            expected.updated_at = None;
            match m.entry(&raw(&m, &e)) {
                Mapped::Entry(got) => assert_eq!(*got, expected),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn overrides_replace_keys_and_are_checked() {
        let m = Mapping::from_toml(
            "[fields]\nlast_name = [\"surname\", \"sn\"]\ncountry = \"\"\n[search]\nname = [\"cn\"]\n",
        )
        .unwrap();
        assert_eq!(m.attributes_of(Field::LastName).len(), 2);
        assert!(m.first(Field::Country).is_none());
        assert_eq!(m.first(Field::FirstName).unwrap().as_str(), "givenName");
        assert_eq!(m.name_search().len(), 1);
        let raw = RawEntry::new(
            "x",
            [
                ("MAIL".to_string(), vec!["a.b@x.fr".to_string()]),
                ("mssanteBalType".to_string(), vec!["per".to_string()]),
                ("SN".to_string(), vec!["B".to_string()]),
                ("co".to_string(), vec!["France".to_string()]),
            ],
        );
        let Mapped::Entry(e) = m.entry(&raw) else {
            panic!()
        };
        assert_eq!(e.last_name.as_deref(), Some("B"));
        assert_eq!(e.country, None);
        for bad in [
            "[fields]\nnickname = \"x\"",
            "[fields]\nlast_name = \"s n\"",
            "[fields]\naddress = \"\"",
            "[other]\nx = 1",
            "[harvest]\nsplit = [{ field = \"last_name\", by = \"word\" }]",
            "[fields]\nlast_name = \"\"\n[harvest]\nsplit = [{ field = \"last_name\", by = \"prefix\" }]",
        ] {
            let err = Mapping::from_toml(bad).unwrap_err();
            assert!(err.to_string().contains("mapping"), "{bad}: {err}");
        }
    }

    #[test]
    fn unreadable_and_red_listed_entries_are_set_apart() {
        let m = Mapping::default();
        let entry = |pairs: &[(&str, &str)]| {
            m.entry(&RawEntry::new(
                "cn=x",
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), vec![v.to_string()])),
            ))
        };
        assert!(matches!(entry(&[("cn", "x")]), Mapped::Rejected { .. }));
        assert!(matches!(
            entry(&[("mail", "not an address"), ("mssanteBalType", "PER")]),
            Mapped::Rejected { .. }
        ));
        assert!(matches!(
            entry(&[("mail", "a@b.fr"), ("mssanteBalType", "XYZ")]),
            Mapped::Rejected { .. }
        ));
        assert!(matches!(
            entry(&[
                ("mail", "a@b.fr"),
                ("mssanteBalType", "PER"),
                ("mssanteRedListed", "TRUE")
            ]),
            Mapped::RedListed(_)
        ));
        let Mapped::Entry(e) = entry(&[
            ("mail", "a@b.fr"),
            ("mssanteBalType", "ORG"),
            ("postalCode", "13385"),
            ("l", "MARSEILLE"),
            ("modifyTimestamp", "20261123080000Z"),
        ]) else {
            panic!()
        };
        assert_eq!(e.delivery_line.as_deref(), Some("13385 MARSEILLE"));
        assert_eq!(e.department.as_ref().map(|d| d.as_str()), Some("13"));
        assert_eq!(e.updated_at.as_deref(), Some("2026-11-23T08:00:00Z"));
    }

    #[test]
    fn ldif_is_safe_text_or_base64() {
        let m = Mapping::default();
        let e = demo::entries(50, 3)
            .find(|e| e.last_name.as_deref().is_some_and(|n| !n.is_ascii()) || e.service.is_some())
            .unwrap();
        let mut out = Vec::new();
        m.write_ldif(&e, "ou=bal,o=mssante,c=fr", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(&format!("dn: mail={},ou=bal", e.address)),
            "{text}"
        );
        assert!(text.is_ascii(), "{text}");
        assert!(text.contains("objectClass: mssanteBal\n"));
        assert!(text.ends_with("\n\n"));
        let mut base = Vec::new();
        write_ldif_base("ou=bal,o=mssante,c=fr", &mut base).unwrap();
        assert_eq!(
            String::from_utf8(base).unwrap(),
            "dn: ou=bal,o=mssante,c=fr\nobjectClass: top\nobjectClass: organizationalUnit\nou: bal\n\n"
        );
    }
}
