//! The directory model: one [`Entry`] per MSSanté mailbox (BAL).
//!
//! Fields follow the 31 columns of the national extraction file
//! (`Extraction_Correspondance_MSSante`, docs/mssante.md D1), typed, plus where the entry came from and
//! when. LDAP and FHIR sources map onto the same type.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;
pub use mss_types::{BalType, MailAddress};

/// Where an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Source {
    /// The public extraction file.
    Extraction,
    /// The national LDAP directory.
    Ldap,
    /// The Annuaire Santé FHIR API.
    Fhir,
}

impl Source {
    /// Lower-case name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Extraction => "extraction",
            Source::Ldap => "ldap",
            Source::Fhir => "fhir",
        }
    }
}

/// A code and its label, as the national nomenclatures (NOS) publish them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coded {
    /// The code, e.g. `10` for médecin, `SM54` for a speciality.
    pub code: String,
    /// Its label, e.g. `Médecin`.
    pub label: String,
}

/// A French department code: `01`–`95`, `2A`, `2B`, `971`–`976`, or `99` for abroad.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Department(String);

impl Department {
    /// Parses a department code (`1` is read as `01`; case-insensitive for Corsica).
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let raw = raw.trim();
        let code = raw.to_ascii_uppercase();
        let ok = match code.len() {
            1 => code.as_bytes()[0].is_ascii_digit() && code != "0",
            2 => {
                code == "2A"
                    || code == "2B"
                    || (code.bytes().all(|b| b.is_ascii_digit()) && code != "00" && code != "20")
            }
            3 => {
                code.starts_with("97") && matches!(code.as_bytes()[2], b'1'..=b'8')
                    || code == "986"
                    || code == "987"
                    || code == "988"
            }
            _ => false,
        };
        if !ok {
            return Err(Error::invalid(
                "department",
                format!("`{raw}` is not a French department code"),
            ));
        }
        Ok(Department(if code.len() == 1 {
            format!("0{code}")
        } else {
            code
        }))
    }

    /// The department of a French postal code (Corsica split by its 3rd digit, overseas on 3 digits).
    pub fn from_postal_code(postal_code: &str) -> Option<Self> {
        let pc = postal_code.trim();
        if pc.len() != 5 || !pc.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let code = match &pc[..2] {
            "20" => {
                if pc.as_bytes()[2] <= b'1' {
                    "2A".to_string()
                } else {
                    "2B".to_string()
                }
            }
            "97" | "98" => pc[..3].to_string(),
            "00" => return None,
            two => two.to_string(),
        };
        Department::parse(&code).ok()
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The department's name (`Loire-Atlantique` for `44`), for place words typed by name; `None` for
    /// codes that name no department (`99` abroad, the collectivities of `975`, `977`, `978`, `98x`).
    pub fn name(&self) -> Option<&'static str> {
        DEPARTMENT_NAMES
            .binary_search_by(|(code, _)| (*code).cmp(self.as_str()))
            .ok()
            .map(|i| DEPARTMENT_NAMES[i].1)
    }
}

/// The departments by code, sorted by code (INSEE, Code officiel géographique).
const DEPARTMENT_NAMES: [(&str, &str); 101] = [
    ("01", "Ain"),
    ("02", "Aisne"),
    ("03", "Allier"),
    ("04", "Alpes-de-Haute-Provence"),
    ("05", "Hautes-Alpes"),
    ("06", "Alpes-Maritimes"),
    ("07", "Ardèche"),
    ("08", "Ardennes"),
    ("09", "Ariège"),
    ("10", "Aube"),
    ("11", "Aude"),
    ("12", "Aveyron"),
    ("13", "Bouches-du-Rhône"),
    ("14", "Calvados"),
    ("15", "Cantal"),
    ("16", "Charente"),
    ("17", "Charente-Maritime"),
    ("18", "Cher"),
    ("19", "Corrèze"),
    ("21", "Côte-d'Or"),
    ("22", "Côtes-d'Armor"),
    ("23", "Creuse"),
    ("24", "Dordogne"),
    ("25", "Doubs"),
    ("26", "Drôme"),
    ("27", "Eure"),
    ("28", "Eure-et-Loir"),
    ("29", "Finistère"),
    ("2A", "Corse-du-Sud"),
    ("2B", "Haute-Corse"),
    ("30", "Gard"),
    ("31", "Haute-Garonne"),
    ("32", "Gers"),
    ("33", "Gironde"),
    ("34", "Hérault"),
    ("35", "Ille-et-Vilaine"),
    ("36", "Indre"),
    ("37", "Indre-et-Loire"),
    ("38", "Isère"),
    ("39", "Jura"),
    ("40", "Landes"),
    ("41", "Loir-et-Cher"),
    ("42", "Loire"),
    ("43", "Haute-Loire"),
    ("44", "Loire-Atlantique"),
    ("45", "Loiret"),
    ("46", "Lot"),
    ("47", "Lot-et-Garonne"),
    ("48", "Lozère"),
    ("49", "Maine-et-Loire"),
    ("50", "Manche"),
    ("51", "Marne"),
    ("52", "Haute-Marne"),
    ("53", "Mayenne"),
    ("54", "Meurthe-et-Moselle"),
    ("55", "Meuse"),
    ("56", "Morbihan"),
    ("57", "Moselle"),
    ("58", "Nièvre"),
    ("59", "Nord"),
    ("60", "Oise"),
    ("61", "Orne"),
    ("62", "Pas-de-Calais"),
    ("63", "Puy-de-Dôme"),
    ("64", "Pyrénées-Atlantiques"),
    ("65", "Hautes-Pyrénées"),
    ("66", "Pyrénées-Orientales"),
    ("67", "Bas-Rhin"),
    ("68", "Haut-Rhin"),
    ("69", "Rhône"),
    ("70", "Haute-Saône"),
    ("71", "Saône-et-Loire"),
    ("72", "Sarthe"),
    ("73", "Savoie"),
    ("74", "Haute-Savoie"),
    ("75", "Paris"),
    ("76", "Seine-Maritime"),
    ("77", "Seine-et-Marne"),
    ("78", "Yvelines"),
    ("79", "Deux-Sèvres"),
    ("80", "Somme"),
    ("81", "Tarn"),
    ("82", "Tarn-et-Garonne"),
    ("83", "Var"),
    ("84", "Vaucluse"),
    ("85", "Vendée"),
    ("86", "Vienne"),
    ("87", "Haute-Vienne"),
    ("88", "Vosges"),
    ("89", "Yonne"),
    ("90", "Territoire de Belfort"),
    ("91", "Essonne"),
    ("92", "Hauts-de-Seine"),
    ("93", "Seine-Saint-Denis"),
    ("94", "Val-de-Marne"),
    ("95", "Val-d'Oise"),
    ("971", "Guadeloupe"),
    ("972", "Martinique"),
    ("973", "Guyane"),
    ("974", "La Réunion"),
    ("976", "Mayotte"),
];

impl fmt::Display for Department {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Department {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Department::parse(&s)
    }
}

impl From<Department> for String {
    fn from(d: Department) -> String {
        d.0
    }
}

/// One MSSanté mailbox and everything the directory says about it.
///
/// Text fields are `None` when the source left them empty. Serialised with snake_case field names; this JSON
/// shape is what `mss search --json` and the REST API print, and it only grows (fields are never renamed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    /// `Adresse BAL`, normalised.
    pub address: MailAddress,
    /// `Type de BAL`.
    pub bal_type: BalType,
    /// `Type Identifiant PP`: `0` ADELI, `8` RPPS (TRE_G08).
    pub person_id_type: Option<String>,
    /// `Identifiant PP`: the RPPS or ADELI number.
    pub person_id: Option<String>,
    /// `Identification nationale PP`: the type digit followed by the identifier (IDNPS).
    pub person_national_id: Option<String>,
    /// `Type identifiant structure`: `1` FINESS, `2` SIREN, `3` SIRET, `4` RPPS cabinet rank (TRE_G07).
    pub organisation_id_type: Option<String>,
    /// `Identification Structure`.
    pub organisation_id: Option<String>,
    /// `Service de rattachement`.
    pub service: Option<String>,
    /// `Civilité d'exercice`: `DR`, `PR`, `M`, `MME`...
    pub civility: Option<String>,
    /// `Nom d'exercice`.
    pub last_name: Option<String>,
    /// `Prénom d'exercice`.
    pub first_name: Option<String>,
    /// `Catégorie profession` and its label (`C` civil, `M` military, `E` student).
    pub profession_category: Option<Coded>,
    /// `Code Profession` and `Libellé Profession` (TRE_G15).
    pub profession: Option<Coded>,
    /// `Code savoir-faire` and `Libellé savoir-faire`: the speciality.
    pub speciality: Option<Coded>,
    /// `Dématérialisation`: the owner accepts paperless exchange.
    pub dematerialisation: Option<bool>,
    /// `Raison Sociale structure BAL`.
    pub organisation_name: Option<String>,
    /// `Enseigne commerciale structure BAL`.
    pub organisation_trade_name: Option<String>,
    /// `L2COMPLEMENTLOCALISATION`: building, floor.
    pub address_complement: Option<String>,
    /// `L3COMPLEMENTDISTRIBUTION`: PO box, distribution detail.
    pub address_distribution: Option<String>,
    /// `L4NUMEROVOIE`.
    pub street_number: Option<String>,
    /// `L4COMPLEMENTNUMEROVOIE`: `B` bis, `T` ter...
    pub street_number_complement: Option<String>,
    /// `NL4TYPEVOIE`: `R` rue, `AV` avenue, `BD` boulevard...
    pub street_type: Option<String>,
    /// `L4LIBELLEVOIE`.
    pub street_name: Option<String>,
    /// `L5LIEUDITMENTION`.
    pub locality: Option<String>,
    /// `L6LIGNEACHEMINEMENT`: postal code and city, e.g. `75013 PARIS`.
    pub delivery_line: Option<String>,
    /// `Code postal structure BAL`.
    pub postal_code: Option<String>,
    /// `Département structure BAL`, or derived from the postal code when the column is empty.
    pub department: Option<Department>,
    /// `Pays structure BAL`.
    pub country: Option<String>,
    /// Other structures listed for the same address on further lines of the extraction (merged entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_structures: Vec<Structure>,
    /// Red-listed boxes are never indexed nor shown (FHIR `listeRouge`; the extraction does not carry them).
    #[serde(default)]
    pub red_listed: bool,
    /// Where this entry came from.
    pub source: Source,
    /// When the source produced it (RFC 3339): the extraction's time stamp, or the FHIR `meta.lastUpdated`
    /// (the latest of the resources the entry was built from).
    pub updated_at: Option<String>,
    /// The FHIR resources that publish this box (`PractitionerRole/123`): a delta re-reading one of them
    /// learns which boxes it dropped. Empty for other sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published_by: Vec<String>,
}

/// A structure an address is attached to, kept when several extraction lines carry the same address.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Structure {
    /// `Type identifiant structure`.
    pub organisation_id_type: Option<String>,
    /// `Identification Structure`.
    pub organisation_id: Option<String>,
    /// `Raison Sociale structure BAL`.
    pub organisation_name: Option<String>,
    /// `Service de rattachement`.
    pub service: Option<String>,
    /// `Code postal structure BAL`.
    pub postal_code: Option<String>,
    /// City, from `L6LIGNEACHEMINEMENT`.
    pub city: Option<String>,
}

impl Entry {
    /// An entry with only its address, type and source set.
    pub fn new(address: MailAddress, bal_type: BalType, source: Source) -> Self {
        Entry {
            address,
            bal_type,
            person_id_type: None,
            person_id: None,
            person_national_id: None,
            organisation_id_type: None,
            organisation_id: None,
            service: None,
            civility: None,
            last_name: None,
            first_name: None,
            profession_category: None,
            profession: None,
            speciality: None,
            dematerialisation: None,
            organisation_name: None,
            organisation_trade_name: None,
            address_complement: None,
            address_distribution: None,
            street_number: None,
            street_number_complement: None,
            street_type: None,
            street_name: None,
            locality: None,
            delivery_line: None,
            postal_code: None,
            department: None,
            country: None,
            other_structures: Vec::new(),
            red_listed: false,
            source,
            updated_at: None,
            published_by: Vec::new(),
        }
    }

    /// The city: the delivery line (`L6`) without its leading postal code and any `CEDEX` suffix.
    pub fn city(&self) -> Option<&str> {
        self.delivery_line
            .as_deref()
            .and_then(city_of_delivery_line)
    }

    /// The label users recognise: `Prénom NOM` for a person, the organisation (and service) otherwise.
    pub fn display_name(&self) -> String {
        let person = match (self.first_name.as_deref(), self.last_name.as_deref()) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (None, Some(l)) => Some(l.to_string()),
            (Some(f), None) => Some(f.to_string()),
            (None, None) => None,
        };
        if self.bal_type == BalType::Per
            && let Some(p) = person
        {
            return p;
        }
        let org = self
            .organisation_trade_name
            .as_deref()
            .or(self.organisation_name.as_deref());
        match (org, self.service.as_deref()) {
            (Some(o), Some(s)) => format!("{o} – {s}"),
            (Some(o), None) => o.to_string(),
            (None, Some(s)) => s.to_string(),
            (None, None) => self.address.to_string(),
        }
    }

    /// The structure fields of this entry, as kept for merged duplicates.
    pub fn structure(&self) -> Structure {
        Structure {
            organisation_id_type: self.organisation_id_type.clone(),
            organisation_id: self.organisation_id.clone(),
            organisation_name: self.organisation_name.clone(),
            service: self.service.clone(),
            postal_code: self.postal_code.clone(),
            city: self.city().map(str::to_string),
        }
    }

    /// Folds `other` (a later line for the same address) into `self`: empty fields are filled from it and a
    /// different structure is kept in [`Entry::other_structures`], so that nothing is lost.
    pub fn merge(&mut self, other: Entry) {
        let theirs = other.structure();
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = other.$f.clone(); } )* };
        }
        fill!(
            person_id_type,
            person_id,
            person_national_id,
            civility,
            last_name,
            first_name,
            profession_category,
            profession,
            speciality,
            dematerialisation
        );
        let ours = self.structure();
        let empty = Structure::default();
        if ours == empty {
            fill!(
                organisation_id_type,
                organisation_id,
                service,
                organisation_name,
                organisation_trade_name,
                address_complement,
                address_distribution,
                street_number,
                street_number_complement,
                street_type,
                street_name,
                locality,
                delivery_line,
                postal_code,
                department,
                country
            );
        } else if theirs != empty && theirs != ours && !self.other_structures.contains(&theirs) {
            self.other_structures.push(theirs);
        }
        for s in other.other_structures {
            if s != self.structure() && !self.other_structures.contains(&s) {
                self.other_structures.push(s);
            }
        }
        for r in other.published_by {
            if !self.published_by.contains(&r) {
                self.published_by.push(r);
            }
        }
    }
}

/// `75013 PARIS` -> `PARIS`; `13385 MARSEILLE CEDEX 05` -> `MARSEILLE`.
pub fn city_of_delivery_line(line: &str) -> Option<&str> {
    let line = line.trim();
    let rest = match line.split_once(' ') {
        Some((head, rest)) if head.len() == 5 && head.bytes().all(|b| b.is_ascii_digit()) => {
            rest.trim()
        }
        _ => line,
    };
    let rest = match rest.find(" CEDEX") {
        Some(i) => rest[..i].trim_end(),
        None => rest,
    };
    (!rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn departments_have_their_names() {
        assert!(
            DEPARTMENT_NAMES.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted by code"
        );
        for (code, _) in DEPARTMENT_NAMES {
            assert_eq!(Department::parse(code).unwrap().as_str(), code);
        }
        let name = |c: &str| Department::parse(c).unwrap().name();
        assert_eq!(name("44"), Some("Loire-Atlantique"));
        assert_eq!(name("2a"), Some("Corse-du-Sud"));
        assert_eq!(name("974"), Some("La Réunion"));
        assert_eq!(name("99"), None);
        assert_eq!(name("975"), None);
    }

    #[test]
    fn departments_from_codes_and_postal_codes() {
        assert_eq!(Department::parse("2a").unwrap().as_str(), "2A");
        assert_eq!(Department::parse("1").unwrap().as_str(), "01");
        assert_eq!(Department::parse("974").unwrap().as_str(), "974");
        assert!(Department::parse("20").is_err());
        assert!(Department::parse("979").is_err());
        let of = |pc| Department::from_postal_code(pc).map(|d| d.0);
        assert_eq!(of("20000").as_deref(), Some("2A"));
        assert_eq!(of("20200").as_deref(), Some("2B"));
        assert_eq!(of("97411").as_deref(), Some("974"));
        assert_eq!(of("75013").as_deref(), Some("75"));
        assert_eq!(of("7501"), None);
    }

    #[test]
    fn city_is_read_from_the_delivery_line() {
        assert_eq!(city_of_delivery_line("75013 PARIS"), Some("PARIS"));
        assert_eq!(
            city_of_delivery_line("13385 MARSEILLE CEDEX 05"),
            Some("MARSEILLE")
        );
        assert_eq!(city_of_delivery_line("SAINT-DENIS"), Some("SAINT-DENIS"));
        assert_eq!(city_of_delivery_line("  "), None);
    }

    #[test]
    fn merge_keeps_every_structure() {
        let addr = MailAddress::parse("a.b@medecin.mssante.fr").unwrap();
        let mut first = Entry::new(addr.clone(), BalType::Per, Source::Extraction);
        first.organisation_name = Some("Cabinet A".into());
        first.last_name = Some("B".into());
        let mut second = Entry::new(addr, BalType::Per, Source::Extraction);
        second.organisation_name = Some("Clinique B".into());
        second.first_name = Some("A".into());
        first.merge(second.clone());
        assert_eq!(first.first_name.as_deref(), Some("A"));
        assert_eq!(first.organisation_name.as_deref(), Some("Cabinet A"));
        assert_eq!(first.other_structures.len(), 1);
        assert_eq!(
            first.other_structures[0].organisation_name.as_deref(),
            Some("Clinique B")
        );
        first.merge(second);
        assert_eq!(
            first.other_structures.len(),
            1,
            "same structure twice is kept once"
        );
    }
}
