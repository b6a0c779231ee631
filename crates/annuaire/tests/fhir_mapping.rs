//! FHIR resources → entries, on resources shaped as the ANS examples of docs/mssante.md D3, and on
//! arbitrary JSON (never a panic).

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use mss_annuaire::fhir::client::to_page;
use mss_annuaire::fhir::mapping::{self, Change, Included};
use mss_annuaire::fhir::resources::{
    Bundle, Organization, Practitioner, PractitionerRole, parse_as,
};
use mss_annuaire::fhir::{fixtures, resources};
use mss_annuaire::{BalType, Coded, Entry, Source, demo};
use proptest::prelude::*;
use serde_json::{Value, json};

/// A PER box as the v2 API shows it (`uc-bal-mss.md`), with the removed `digitization` still there and
/// a sub-extension nobody knows yet.
fn per_telecom(address: &str, red: bool) -> Value {
    json!({
        "system": "email",
        "value": address,
        "rank": 1,
        "extension": [
            {"url": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type",
             "valueCoding": {"system": "https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie", "code": "MSSANTE"}},
            {"url": "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata",
             "extension": [
                {"url": "type", "valueCodeableConcept": {"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL", "code": "PER"}]}},
                {"url": "description", "valueString": "BAL de Jean Dupont"},
                {"url": "service", "valueString": "Cardiologie"},
                {"url": "listeRouge", "valueBoolean": red},
                {"url": "digitization", "valueBoolean": true},
                {"url": "phone", "valueString": "0102030405"},
                {"url": "somethingNew", "valueInteger": 3}
             ]}
        ]
    })
}

fn practitioner_json() -> Value {
    json!({
        "resourceType": "Practitioner",
        "id": "003-138-xyz",
        "meta": {"lastUpdated": "2026-11-20T10:11:12.000+01:00", "profile": ["https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-dp-practitioner"]},
        "active": true,
        "identifier": [
            {"system": "https://rpps.esante.gouv.fr", "value": "10001234567"},
            {"type": {"coding": [{"system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203", "code": "IDNPS"}]},
             "system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810001234567"}
        ],
        "name": [{"use": "usual", "family": "DUPONT", "given": ["Jean"], "prefix": ["DR"]}],
        "qualification": [
            {"code": {"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante", "code": "10", "display": "Médecin"}]}},
            {"code": {"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale", "code": "SM04", "display": "Cardiologie et maladies vasculaires"}]}}
        ],
        "telecom": [
            {"system": "phone", "value": "0102030405"},
            per_telecom("jean.dupont@medecin.mssante.fr", false),
            per_telecom("j.dupont@hop.mssante.fr", true),
            {"system": "email", "value": "jean.dupont@gmail.com"}
        ],
        "extension": [{"url": "https://example.org/unknown", "valueString": "kept"}]
    })
}

fn organization_json() -> Value {
    let mut org_box = per_telecom("cardio@ch-dax.mssante.fr", false);
    org_box["extension"][1]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] =
        json!("ORG");
    json!({
        "resourceType": "Organization",
        "id": "org-dax",
        "meta": {"lastUpdated": "2026-11-19T00:00:00Z"},
        "active": true,
        "identifier": [{"type": {"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_G07-TypeIdentifiantStructure/FHIR/TRE-G07-TypeIdentifiantStructure", "code": "1"}]},
                        "system": "https://finess.esante.gouv.fr", "value": "400780193"}],
        "name": "CENTRE HOSPITALIER DE DAX",
        "alias": ["CH Dax Côte d'Argent"],
        "address": [{
            "line": ["BP 323", "BD YVES DU MANOIR"],
            "_line": [
                {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-postBox", "valueString": "BP 323"}]},
                {"extension": [
                    {"url": "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-streetNameType", "valueString": "BD"},
                    {"url": "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-streetNameBase", "valueString": "YVES DU MANOIR"}]}
            ],
            "postalCode": "40107", "city": "DAX CEDEX", "country": "FRANCE"
        }],
        "telecom": [org_box, {"system": "email", "value": "contact@ch-dax.fr"}]
    })
}

fn upserts(changes: &[Change]) -> Vec<&Entry> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Upsert(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn a_practitioner_gives_its_mss_boxes_only() {
    let p: Practitioner = parse_as("Practitioner", practitioner_json()).unwrap();
    assert!(p.extra.contains_key("extension"), "unknown elements kept");
    let changes = mapping::practitioner(&p);
    assert_eq!(changes.len(), 2, "{changes:?}");
    let e = upserts(&changes)[0];
    assert_eq!(e.address.as_str(), "jean.dupont@medecin.mssante.fr");
    assert_eq!(e.bal_type, BalType::Per);
    assert_eq!(e.source, Source::Fhir);
    assert_eq!(e.person_id.as_deref(), Some("10001234567"));
    assert_eq!(e.person_id_type.as_deref(), Some("8"));
    assert_eq!(e.person_national_id.as_deref(), Some("810001234567"));
    assert_eq!(
        (
            e.civility.as_deref(),
            e.first_name.as_deref(),
            e.last_name.as_deref()
        ),
        (Some("DR"), Some("Jean"), Some("DUPONT"))
    );
    assert_eq!(
        e.profession,
        Some(Coded {
            code: "10".into(),
            label: "Médecin".into()
        })
    );
    assert_eq!(e.speciality.as_ref().map(|c| c.code.as_str()), Some("SM04"));
    assert_eq!(e.service.as_deref(), Some("Cardiologie"));
    assert_eq!(
        e.dematerialisation,
        Some(true),
        "digitization is tolerated and read"
    );
    assert_eq!(
        e.updated_at.as_deref(),
        Some("2026-11-20T10:11:12.000+01:00")
    );
    // the red-listed box is a removal, never an entry
    assert!(matches!(&changes[1], Change::Remove(a) if a.as_str() == "j.dupont@hop.mssante.fr"));
}

#[test]
fn a_deactivated_practitioner_removes_its_boxes() {
    let mut v = practitioner_json();
    v["active"] = json!(false);
    let p: Practitioner = parse_as("Practitioner", v).unwrap();
    let changes = mapping::practitioner(&p);
    assert_eq!(changes.len(), 2);
    // its box is withdrawn (another resource may still publish it); the red-listed one is removed
    assert!(matches!(&changes[0], Change::Withdraw { address, resource }
        if address.as_str() == "jean.dupont@medecin.mssante.fr" && resource == "Practitioner/003-138-xyz"));
    assert!(matches!(&changes[1], Change::Remove(a) if a.as_str() == "j.dupont@hop.mssante.fr"));
}

fn role_bundle(organization: Value) -> Bundle {
    let bundle = json!({
        "resourceType": "Bundle", "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "PractitionerRole", "id": "r1",
                "meta": {"lastUpdated": "2026-11-18T00:00:00Z"},
                "practitioner": {"reference": "Practitioner/003-138-xyz"},
                "organization": {"reference": "Organization/org-dax"},
                "telecom": [per_telecom("jean.dupont@ch-dax.mssante.fr", false)]},
             "search": {"mode": "match"}},
            {"resource": practitioner_json(), "search": {"mode": "include"}},
            {"resource": organization, "search": {"mode": "include"}}
        ]
    });
    parse_as("bundle", bundle).unwrap()
}

#[test]
fn a_role_of_a_deactivated_organization_publishes_nothing() {
    let mut org = organization_json();
    org["active"] = json!(false);
    let page = to_page(role_bundle(org), "PractitionerRole?").unwrap();
    let published = page.published();
    assert_eq!(published.len(), 1);
    assert_eq!(
        published[0].resource.as_deref(),
        Some("PractitionerRole/r1")
    );
    assert_eq!(published[0].carried().count(), 0);
    assert!(
        matches!(&published[0].changes[..], [Change::Withdraw { address, resource }]
        if address.as_str() == "jean.dupont@ch-dax.mssante.fr" && resource == "PractitionerRole/r1")
    );
}

#[test]
fn a_role_box_is_stamped_with_the_latest_of_its_resources() {
    // role 2026-11-18, organization 2026-11-19, practitioner 2026-11-20T10:11:12+01:00
    let page = to_page(role_bundle(organization_json()), "PractitionerRole?").unwrap();
    let changes = page.changes();
    let e = upserts(&changes)[0];
    assert_eq!(
        e.updated_at.as_deref(),
        Some("2026-11-20T10:11:12.000+01:00")
    );
    assert_eq!(e.published_by, ["PractitionerRole/r1"]);
    let mut org = organization_json();
    org["meta"]["lastUpdated"] = json!("2026-11-20T09:12:00Z");
    let page = to_page(role_bundle(org), "PractitionerRole?").unwrap();
    assert_eq!(
        upserts(&page.changes())[0].updated_at.as_deref(),
        Some("2026-11-20T09:12:00Z"),
        "09:12 UTC is after 10:11 +01:00"
    );
}

#[test]
fn an_organization_gives_its_boxes_not_its_contact_email() {
    let o: Organization = parse_as("Organization", organization_json()).unwrap();
    let changes = mapping::organization(&o);
    assert_eq!(changes.len(), 1, "{changes:?}");
    let e = upserts(&changes)[0];
    assert_eq!(e.address.as_str(), "cardio@ch-dax.mssante.fr");
    assert_eq!(e.bal_type, BalType::Org);
    assert_eq!(e.organisation_id_type.as_deref(), Some("1"));
    assert_eq!(e.organisation_id.as_deref(), Some("400780193"));
    assert_eq!(
        e.organisation_name.as_deref(),
        Some("CENTRE HOSPITALIER DE DAX")
    );
    assert_eq!(
        e.organisation_trade_name.as_deref(),
        Some("CH Dax Côte d'Argent")
    );
    assert_eq!(e.address_distribution.as_deref(), Some("BP 323"));
    assert_eq!(e.street_type.as_deref(), Some("BD"));
    assert_eq!(e.street_name.as_deref(), Some("YVES DU MANOIR"));
    assert_eq!(e.delivery_line.as_deref(), Some("40107 DAX CEDEX"));
    assert_eq!(e.city(), Some("DAX"));
    assert_eq!(e.department.as_ref().map(|d| d.as_str()), Some("40"));
}

#[test]
fn a_role_takes_person_and_structure_from_its_includes() {
    let mut role_box = per_telecom("jean.dupont@ch-dax.mssante.fr", false);
    // the type coded in TRE_R256 (as in the MSS IG's query examples) is read too
    role_box["extension"][1]["extension"][0]["valueCodeableConcept"]["coding"][0]["system"] = json!(
        "https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie"
    );
    let bundle = json!({
        "resourceType": "Bundle", "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "PractitionerRole", "id": "r1",
                "practitioner": {"reference": "https://gateway.api.esante.gouv.fr/fhir/v2/Practitioner/003-138-xyz"},
                "organization": {"reference": "Organization/org-dax"},
                "code": [{"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante", "code": "10", "display": "Médecin"}]}],
                "telecom": [role_box]},
             "search": {"mode": "match"}},
            {"resource": practitioner_json(), "search": {"mode": "include"}},
            {"resource": organization_json(), "search": {"mode": "include"}}
        ]
    });
    let bundle: Bundle = parse_as("bundle", bundle).unwrap();
    let page = to_page(bundle, "PractitionerRole?").unwrap();
    assert_eq!(page.matches.len(), 1);
    let changes = page.changes();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let e = upserts(&changes)[0];
    assert_eq!(e.last_name.as_deref(), Some("DUPONT"));
    assert_eq!(
        e.organisation_name.as_deref(),
        Some("CENTRE HOSPITALIER DE DAX")
    );
    assert_eq!(e.bal_type, BalType::Per);
    assert_eq!(e.speciality.as_ref().map(|c| c.code.as_str()), Some("SM04"));
    // without its includes: the box alone
    let r: PractitionerRole = parse_as(
        "r",
        json!({"resourceType": "PractitionerRole", "telecom": [per_telecom("a@b.fr", false)]}),
    )
    .unwrap();
    let changes = mapping::practitioner_role(&r, &Included::default());
    assert_eq!(upserts(&changes)[0].organisation_name, None);
}

#[test]
fn fixtures_map_back_to_the_population() {
    let entries: Vec<Entry> = demo::entries(300, 11).collect();
    let p = fixtures::population(entries.clone(), "2026-11-01T00:00:00Z");
    let mut included = Included::default();
    for v in &p.practitioners {
        let r: Practitioner = parse_as("p", v.clone()).unwrap();
        included
            .practitioners
            .insert(format!("Practitioner/{}", r.id.clone().unwrap()), r);
    }
    for v in &p.organizations {
        let r: Organization = parse_as("o", v.clone()).unwrap();
        included
            .organizations
            .insert(format!("Organization/{}", r.id.clone().unwrap()), r);
    }
    let mut mapped = Vec::new();
    for r in included.practitioners.values() {
        mapped.extend(mapping::practitioner(r));
    }
    for r in included.organizations.values() {
        mapped.extend(mapping::organization(r));
    }
    for v in &p.roles {
        let r: PractitionerRole = parse_as("r", v.clone()).unwrap();
        mapped.extend(mapping::practitioner_role(&r, &included));
    }
    assert_eq!(mapped.len(), entries.len());
    for e in &entries {
        let m = upserts(&mapped)
            .into_iter()
            .find(|m| m.address == e.address)
            .unwrap();
        assert_eq!(
            (
                &m.last_name,
                &m.organisation_id,
                &m.postal_code,
                &m.street_name,
                &m.service
            ),
            (
                &e.last_name,
                &e.organisation_id,
                &e.postal_code,
                &e.street_name,
                &e.service
            ),
            "{}",
            e.address
        );
        assert_eq!(m.delivery_line, e.delivery_line);
        assert_eq!(m.bal_type, e.bal_type);
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z@.:/_ ]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "email", "MSSANTE", "type", "listeRouge", "service", "PER", "ORG", "include", "match",
            "Practitioner", "PractitionerRole", "Organization", "Bundle", "a@b.fr",
            "Practitioner/1", "Organization/1",
            "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type",
            "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata",
        ])
        .prop_map(|s| json!(s)),
    ];
    let keys = prop::sample::select(vec![
        "resourceType",
        "id",
        "active",
        "telecom",
        "system",
        "value",
        "extension",
        "url",
        "valueCoding",
        "valueCodeableConcept",
        "valueBoolean",
        "valueString",
        "coding",
        "code",
        "name",
        "family",
        "given",
        "prefix",
        "identifier",
        "address",
        "line",
        "_line",
        "postalCode",
        "city",
        "practitioner",
        "organization",
        "reference",
        "entry",
        "resource",
        "search",
        "mode",
        "link",
        "relation",
        "rank",
        "meta",
        "lastUpdated",
        "qualification",
        "alias",
    ]);
    leaf.prop_recursive(5, 96, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary JSON as a bundle, or as each resource type: an error or changes, never a panic.
    #[test]
    fn mapping_never_panics(v in arb_json(), ty in prop::sample::select(vec!["Bundle", "Practitioner", "PractitionerRole", "Organization"])) {
        let mut v = v;
        if let Value::Object(m) = &mut v {
            m.insert("resourceType".into(), json!(ty));
        }
        let body = serde_json::to_vec(&v).unwrap();
        if let Ok(b) = resources::parse_bundle("x", &body)
            && let Ok(page) = to_page(b, "x")
        {
            let _ = page.changes();
        }
        if let Ok(r) = resources::parse_resource(v) {
            let page = mss_annuaire::fhir::client::Page { matches: vec![r], ..Default::default() };
            let _ = page.changes();
        }
    }
}
