//! Mon espace santé (MES): patient addresses and recognising messages that come from patients.

use crate::ins::Ins;
use crate::{InsAuthority, PATIENT_DOMAIN, Sex};

/// The MES address of a patient: `<INS>@patient.mssante.fr`.
pub fn patient_address(ins: &Ins) -> String {
    format!("{ins}@{PATIENT_DOMAIN}")
}

/// Splits an address into local part and domain (at the last `@`).
pub(crate) fn split_address(address: &str) -> Option<(&str, &str)> {
    address.rsplit_once('@')
}

/// True when the address is in the MES patient domain (case-insensitive).
pub fn is_patient_address(address: &str) -> bool {
    split_address(address).is_some_and(|(_, d)| d.eq_ignore_ascii_case(PATIENT_DOMAIN))
}

/// Who a received message comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderClass {
    /// A professional (or any non-patient) mailbox.
    Professional,
    /// A patient writing from Mon espace santé.
    Patient(PatientSender),
    /// The patient domain, but the address or display name does not follow the MES rule (local
    /// part not a valid INS, or no patient name shown): to be displayed with caution.
    Unverified {
        /// Why.
        reason: &'static str,
    },
}

/// A patient sender as MES presents it (ECO.3.1.2: show the name and the INS, not only the address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientSender {
    /// The INS of the address.
    pub ins: Ins,
    /// The patient's name from the `From:` display name.
    pub display_name: String,
}

/// Classifies a `From:` mailbox. A patient message is recognised by the domain **and** the MES
/// display-name rule: MES writes the patient's name as the display name (`Leo Dupond
/// <123456789012345@patient.mssante.fr>`), and the local part is the patient's INS (key checked).
pub fn classify_sender(address: &str, display_name: Option<&str>) -> SenderClass {
    let Some((local, domain)) = split_address(address) else {
        return SenderClass::Professional;
    };
    if !domain.eq_ignore_ascii_case(PATIENT_DOMAIN) {
        return SenderClass::Professional;
    }
    let Ok(ins) = Ins::parse(local) else {
        return SenderClass::Unverified {
            reason: "the local part is not a valid INS",
        };
    };
    let name = display_name.map(str::trim).unwrap_or("");
    if name.is_empty()
        || name.eq_ignore_ascii_case(address)
        || name.eq_ignore_ascii_case(local)
        || !name.chars().any(char::is_alphabetic)
    {
        return SenderClass::Unverified {
            reason: "no patient name in the display name",
        };
    }
    SenderClass::Patient(PatientSender {
        ins,
        display_name: name.to_string(),
    })
}

/// A patient identity as an XDM archive states it (`patientId` + `sourcePatientInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientIdentity {
    /// The identifier of `patientId` (an INS when `authority` is set).
    pub id: String,
    /// The INS authority, when the assigning authority is an INS-NIR OID.
    pub authority: Option<InsAuthority>,
    /// Assigning authority OID as written.
    pub authority_oid: String,
    /// `PID-5` family name.
    pub birth_name: Option<String>,
    /// `PID-5` given name.
    pub first_given_name: Option<String>,
    /// `PID-7` birth date.
    pub birth_date: Option<String>,
    /// `PID-8` sex.
    pub sex: Option<Sex>,
}

impl PatientIdentity {
    /// From a `patientId` CX and `sourcePatientInfo` values.
    pub fn from_metadata(patient_id: &str, info: &[String]) -> Option<Self> {
        let (id, oid) = crate::metadata::parse_cx(patient_id)?;
        let mut p = PatientIdentity {
            authority: InsAuthority::from_oid(&oid),
            id,
            authority_oid: oid,
            birth_name: None,
            first_given_name: None,
            birth_date: None,
            sex: None,
        };
        for v in info {
            if let Some(name) = v.strip_prefix("PID-5|") {
                let mut comps = name.split('^');
                p.birth_name = comps.next().map(crate::metadata::hl7_unescape);
                p.first_given_name = comps.next().map(crate::metadata::hl7_unescape);
            } else if let Some(d) = v.strip_prefix("PID-7|") {
                p.birth_date = Some(d.to_string());
            } else if let Some(s) = v.strip_prefix("PID-8|") {
                p.sex = match s {
                    "M" => Some(Sex::M),
                    "F" => Some(Sex::F),
                    "U" => Some(Sex::U),
                    _ => None,
                };
            }
        }
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_needs_domain_valid_ins_and_a_name() {
        let c = classify_sender(
            "279035121518989@patient.mssante.fr",
            Some(" Dominique Pat-Trois "),
        );
        match c {
            SenderClass::Patient(p) => {
                assert_eq!(p.ins.as_str(), "279035121518989");
                assert_eq!(p.display_name, "Dominique Pat-Trois");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            classify_sender("279035121518989@PATIENT.mssante.fr", None),
            SenderClass::Unverified {
                reason: "no patient name in the display name"
            }
        );
        assert_eq!(
            classify_sender(
                "279035121518989@patient.mssante.fr",
                Some("279035121518989")
            ),
            SenderClass::Unverified {
                reason: "no patient name in the display name"
            }
        );
        assert_eq!(
            classify_sender("279035121518988@patient.mssante.fr", Some("Leo Dupond")),
            SenderClass::Unverified {
                reason: "the local part is not a valid INS"
            }
        );
        assert_eq!(
            classify_sender("marie.martin@medecin.mssante.fr", Some("Dr_Marie_MARTIN")),
            SenderClass::Professional
        );
        // A look-alike domain is not the patient domain.
        assert_eq!(
            classify_sender("279035121518989@patient.mssante.fr.example", Some("Leo")),
            SenderClass::Professional
        );
    }

    #[test]
    fn identity_from_metadata() {
        let p = PatientIdentity::from_metadata(
            "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH",
            &[
                "PID-5|PAT-TROIS^DOMINIQUE^^^^^L".into(),
                "PID-7|19790328".into(),
                "PID-8|F".into(),
            ],
        )
        .expect("identity");
        assert_eq!(p.id, "279035121518989");
        assert_eq!(p.authority, Some(InsAuthority::Test));
        assert_eq!(p.birth_name.as_deref(), Some("PAT-TROIS"));
        assert_eq!(p.first_given_name.as_deref(), Some("DOMINIQUE"));
        assert_eq!(p.birth_date.as_deref(), Some("19790328"));
        assert_eq!(p.sex, Some(Sex::F));
    }
}
