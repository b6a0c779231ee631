//! The Annuaire Santé FHIR API v2 (docs/mssante.md D3): `https://gateway.api.esante.gouv.fr/fhir/v2`,
//! header `ESANTE-API-KEY`, at most 17 calls/s, 30 s timeout, pages of 50 by `next` link, deltas by
//! `_lastUpdated` at most 30 days back, deactivated resources with `active=false`.
//!
//! - [`resources`]: typed R4 resources (Practitioner, PractitionerRole, Organization, Bundle,
//!   OperationOutcome) that keep every element they do not name; errors name the resource and element.
//! - [`mapping`]: resources → [`Entry`](crate::Entry), one per MSSanté `telecom`; red-listed and
//!   deactivated boxes become removals.
//! - [`client`]: [`FhirClient`]: API key (never printed), client-side rate limit, timeouts, retries
//!   with backoff on 429 (`Retry-After`), 5xx and timeouts; `OperationOutcome` diagnostics in errors.
//! - [`sync`]: full and delta synchronisation into a [`HarvestSink`](crate::HarvestSink), resumable.
//! - [`mode`]: which sync a run does (resume, full, delta since the last one recorded with the index),
//!   deltas at most 30 days back.
//! - [`fixtures`]: ANS-shaped resources written from entries (`mss demo-data`'s population), for test
//!   servers.

pub mod client;
pub mod fixtures;
pub mod mapping;
pub mod mode;
pub mod resources;
pub mod sync;

pub use client::{FhirClient, FhirConfig, Published, RateLimiter, Search};
pub use mapping::{Change, Included};
pub use mode::{Choice, Requested, Since, check_gap, choose_mode};
pub use resources::{Bundle, Organization, Practitioner, PractitionerRole, Resource};
pub use sync::{
    Carried, Mode, Reconciled, SyncOptions, SyncProgress, SyncReport, SyncStopped, reconcile, sync,
};

/// The national API, version 2.
pub const PRODUCTION_BASE: &str = "https://gateway.api.esante.gouv.fr/fhir/v2";
/// Header carrying the API key.
pub const API_KEY_HEADER: &str = "ESANTE-API-KEY";
/// The national rate limit, calls per second per application.
pub const NATIONAL_RATE: u32 = 17;
/// The national request timeout.
pub const NATIONAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How far back a delta may go (« Les appels delta ne peuvent pas excéder plus de 30 jours »).
pub const MAX_DELTA_DAYS: i64 = 30;

/// fr-core e-mail type extension: the discriminant between MSSanté boxes and plain e-mail.
pub const EMAIL_TYPE_URL: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type";
/// Code system of the e-mail type.
pub const EMAIL_TYPE_SYSTEM: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie";
/// Table name matched in that system.
pub(crate) const EMAIL_TYPE_TABLE: &str = "TRE_R256";
/// The MSSanté code of the e-mail type.
pub const EMAIL_TYPE_MSSANTE: &str = "MSSANTE";
/// Mailbox metadata extension (type, description, responsible, service, listeRouge).
pub const MAILBOX_METADATA_URL: &str = "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata";
/// Code system of the mailbox type (PER, ORG, APP, CAB).
pub const BAL_TYPE_SYSTEM: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL";
pub(crate) const BAL_TYPE_TABLE: &str = "TRE_R257";
/// RPPS identifier systems (v2, then v1).
pub const RPPS_SYSTEMS: [&str; 2] = ["https://rpps.esante.gouv.fr", "http://rpps.fr"];
/// IDNPS (national professional identifier: type digit + RPPS/ADELI).
pub const IDNPS_SYSTEM: &str = "urn:oid:1.2.250.1.71.4.2.1";
/// FINESS identifier system.
pub const FINESS_SYSTEM: &str = "https://finess.esante.gouv.fr";
/// SIRET identifier system (INSEE's Sirene).
pub const SIRET_SYSTEM: &str = "https://sirene.fr";
/// Professions (TRE_G15-ProfessionSante).
pub const PROFESSION_SYSTEM: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante";
pub(crate) const PROFESSION_TABLE: &str = "TRE_G15";
/// Ordinal specialities (TRE_R38-SpecialiteOrdinale), the savoir-faire of the extraction.
pub const SPECIALITY_SYSTEM: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale";
/// Savoir-faire tables read for the speciality, in order: ordinal speciality, then competences and
/// other qualifications (R39 to R45), whichever comes first.
pub(crate) const SAVOIR_FAIRE_TABLES: [&str; 8] = [
    "TRE_R38", "TRE_R39", "TRE_R40", "TRE_R41", "TRE_R42", "TRE_R43", "TRE_R44", "TRE_R45",
];
/// Structure identifier types (TRE_G07: 1 FINESS, 2 SIREN, 3 SIRET, 4 RPPS cabinet rank).
pub const STRUCTURE_ID_TYPE_SYSTEM: &str = "https://mos.esante.gouv.fr/NOS/TRE_G07-TypeIdentifiantStructure/FHIR/TRE-G07-TypeIdentifiantStructure";
pub(crate) const STRUCTURE_ID_TYPE_TABLE: &str = "TRE_G07";
/// Prefix of the ISO 21090 address-part extensions fr-core puts on `Address.line`.
pub const ADXP: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-";
