//! The FHIR source against a local FHIR server (tests/fhir_fake) serving ANS-shaped resources built from
//! the `mss demo-data` population:
//!
//! - a full sync gives exactly the population; a delta changes exactly what changed (name, new box,
//!   deactivated practitioner, red-listed box), every other entry byte for byte the same; it removes
//!   exactly the boxes a changed resource no longer publishes (dropped or readdressed telecom, a role
//!   without boxes, the roles of a deactivated organization) and keeps a box another resource still
//!   publishes; a delta more than 30 days back is refused;
//! - an interrupted sync resumes;
//! - 429 (with `Retry-After` in seconds or as an HTTP-date), 5xx and timeouts are retried, then
//!   reported; malformed answers name the resource and the element; the API key is sent, and appears in
//!   no log line;
//! - the client never sends more than 17 requests in any second (from the server's log);
//! - `GET /v1/directory/entries/{address}?refresh=true` asks the API and updates the index; the API failing
//!   for now is a 503 with `Retry-After`, refusing the lookup a 502.
//! - `mss serve` with `fhir_sync_every` runs the delta by itself (against the fake and the real R4 server),
//!   serves what it brought, shows each run and the next in `GET /v1/sources` and `/metrics`, and goes on
//!   through a source whose runs fail; a schedule without its source or with a bad span is refused at start.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;
mod fhir_fake;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{stderr, stdout};
use fhir_fake::{FakeFhir, Fault, Store};
use mss_annuaire::fhir::fixtures::{self, Population};
use mss_annuaire::fhir::{FhirClient, FhirConfig, Search};
use mss_annuaire::{Entry, Error, Source, demo};
use mss_index::{DirectoryIndex, SearchRequest};
use serde_json::{Value, json};

const KEY: &str = "k3y-4b9e-SECRET-do-not-log";
const FIXTURE_TIME: &str = "2026-11-01T08:00:00Z";

fn population(count: usize) -> (Vec<Entry>, Population) {
    let entries: Vec<Entry> = demo::entries(count, 7).collect();
    let p = fixtures::population(entries.clone(), FIXTURE_TIME);
    (entries, p)
}

fn key_file(dir: &Path) -> String {
    let path = dir.join("api-key");
    std::fs::write(&path, format!("{KEY}\n")).unwrap();
    path.to_str().unwrap().to_string()
}

fn fhir_sync(data: &Path, fake: &FakeFhir, extra: &[&str]) -> std::process::Output {
    let keyf = key_file(data.parent().unwrap());
    let base = fake.base();
    common::mss()
        .args([
            "--data",
            data.to_str().unwrap(),
            "fhir-sync",
            "--base",
            &base,
        ])
        .args(["--api-key-file", &keyf, "--rate", "0", "--quiet"])
        .args(extra)
        .output()
        .expect("running mss fhir-sync")
}

fn all_entries(data: &Path) -> BTreeMap<String, Entry> {
    let index = DirectoryIndex::open(data).unwrap();
    let mut out = BTreeMap::new();
    let mut cursor = None;
    loop {
        let page = index
            .search(&SearchRequest {
                limit: mss_index::MAX_LIMIT,
                cursor,
                ..SearchRequest::default()
            })
            .unwrap();
        for h in page.hits {
            out.insert(h.entry.address.to_string(), h.entry);
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

/// What the FHIR API carries of an entry, to compare a population with what a sync wrote.
fn carried(e: &Entry) -> serde_json::Value {
    json!({
        "bal_type": e.bal_type, "person_id": e.person_id, "person_id_type": e.person_id_type,
        "person_national_id": e.person_national_id, "civility": e.civility, "last_name": e.last_name,
        "first_name": e.first_name, "profession": e.profession, "speciality": e.speciality,
        "service": e.service, "organisation_id_type": e.organisation_id_type,
        "organisation_id": e.organisation_id, "organisation_name": e.organisation_name,
        "organisation_trade_name": e.organisation_trade_name, "street_number": e.street_number,
        "street_type": e.street_type, "street_name": e.street_name, "delivery_line": e.delivery_line,
        "postal_code": e.postal_code, "department": e.department, "country": e.country,
        "dematerialisation": e.dematerialisation,
    })
}

fn synced(dir: &Path, fake: &FakeFhir) -> std::path::PathBuf {
    let data = dir.join("data");
    let out = fhir_sync(&data, fake, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("full"), "{}", stdout(&out));
    data
}

#[test]
fn full_sync_equals_the_population() {
    let (entries, p) = population(800);
    let fake = FakeFhir::start(&p);
    fake.with(|s| s.api_key = Some(KEY.into()));
    let dir = tempfile::tempdir().unwrap();
    let data = synced(dir.path(), &fake);
    let got = all_entries(&data);
    let want: BTreeMap<String, &Entry> = entries
        .iter()
        .filter(|e| !e.red_listed)
        .map(|e| (e.address.to_string(), e))
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (address, e) in &want {
        let g = &got[address];
        assert_eq!(g.source, Source::Fhir);
        assert_eq!(g.updated_at.as_deref(), Some(FIXTURE_TIME));
        assert_eq!(carried(g), carried(e), "{address}");
    }
    // every request carried the key; pages of 50 were followed by `next` link
    let log = fake.log();
    assert!(log.iter().all(|l| l.api_key.as_deref() == Some(KEY)));
    assert!(log.iter().any(|l| l.uri.contains("/_page?id=")), "{log:?}");
}

/// The MSSanté boxes of a resource (not its plain e-mails).
fn boxes_of(r: &Value) -> Vec<String> {
    fhir_fake::mailboxes(r).map(str::to_string).collect()
}

/// The boxes of the roles whose `field` (`practitioner`, `organization`) refers to `reference`.
fn role_boxes(s: &Store, field: &str, reference: &str) -> Vec<String> {
    s.resources["PractitionerRole"]
        .iter()
        .filter(|r| r[field]["reference"] == reference)
        .flat_map(boxes_of)
        .collect()
}

fn key_of(r: &Value) -> String {
    format!(
        "{}/{}",
        r["resourceType"].as_str().unwrap(),
        r["id"].as_str().unwrap()
    )
}

/// Every entry compared whole, as the index serves it (time stamps and `published_by` included).
fn assert_exactly(after: &BTreeMap<String, Entry>, expected: &BTreeMap<String, Entry>) {
    let text = |m: &BTreeMap<String, Entry>| -> BTreeMap<String, String> {
        m.iter()
            .map(|(k, e)| (k.clone(), serde_json::to_string(e).unwrap()))
            .collect()
    };
    let (got, want) = (text(after), text(expected));
    let differing: std::collections::BTreeSet<&String> = got
        .keys()
        .chain(want.keys())
        .filter(|k| got.get(*k) != want.get(*k))
        .collect();
    let report: String = differing
        .iter()
        .map(|k| {
            format!(
                "\n{k}:\n  got      {:?}\n  expected {:?}",
                got.get(*k),
                want.get(*k)
            )
        })
        .collect();
    assert!(differing.is_empty(), "unexpected differences:{report}");
}

/// What a delta should leave: `before`, with `stamped` boxes re-read at `at` (their resource changed),
/// then `removed` ones gone.
fn expect(
    mut expected: BTreeMap<String, Entry>,
    stamped: &[String],
    removed: &[String],
    at: &str,
) -> BTreeMap<String, Entry> {
    for b in stamped {
        if let Some(e) = expected.get_mut(b) {
            e.updated_at = Some(at.into());
        }
    }
    for b in removed {
        expected.remove(b);
    }
    expected
}

#[test]
fn delta_changes_exactly_what_changed() {
    let (_, p) = population(600);
    let fake = FakeFhir::start(&p);
    let dir = tempfile::tempdir().unwrap();
    let data = synced(dir.path(), &fake);
    let before = all_entries(&data);
    let later = "2099-01-01T00:00:00Z";
    let mut expected = before.clone();
    let mut stamped = Vec::new();
    let mut removed = Vec::new();

    // a practitioner with a role box is renamed: his Practitioner changes, not the role
    let (renamed, renamed_boxes) = fake.with(|s| {
        let who = s.resources["PractitionerRole"][0]["practitioner"]["reference"]
            .as_str()
            .unwrap()
            .to_string();
        let p = s.resource(&who);
        p["name"][0]["family"] = json!("Nouveaunom");
        p["meta"]["lastUpdated"] = json!(later);
        let own = boxes_of(p);
        (
            who.clone(),
            [own, role_boxes(s, "practitioner", &who)].concat(),
        )
    });
    for b in &renamed_boxes {
        expected.get_mut(b).unwrap().last_name = Some("Nouveaunom".into());
    }
    stamped.extend(renamed_boxes.iter().cloned());
    // a new box on an organization, like its first one
    let new_box = "nouveau.service@ch-test.mssante.fr";
    let (org, like, org_boxes) = fake.with(|s| {
        let org = key_of(
            s.resources["Organization"]
                .iter()
                .find(|o| !boxes_of(o).is_empty())
                .unwrap(),
        );
        let o = s.resource(&org);
        let like = boxes_of(o)[0].clone();
        let mut t = o["telecom"][1].clone();
        assert_eq!(t["value"], like.as_str());
        t["value"] = json!(new_box);
        o["telecom"].as_array_mut().unwrap().push(t);
        o["meta"]["lastUpdated"] = json!(later);
        let own = boxes_of(o);
        (
            org.clone(),
            like,
            [own, role_boxes(s, "organization", &org)].concat(),
        )
    });
    let mut added = before[&like].clone();
    added.address = mss_annuaire::MailAddress::parse(new_box).unwrap();
    added.published_by = vec![org];
    expected.insert(new_box.to_string(), added);
    stamped.extend(org_boxes);
    // a practitioner with a box of his own is deactivated: his boxes and his roles' go
    fake.with(|s| {
        let key = key_of(
            s.resources["Practitioner"]
                .iter()
                .find(|p| !boxes_of(p).is_empty() && key_of(p) != renamed)
                .unwrap(),
        );
        let r = s.resource(&key);
        r["active"] = json!(false);
        r["meta"]["lastUpdated"] = json!(later);
        removed.extend(boxes_of(r));
        removed.extend(role_boxes(s, "practitioner", &key));
    });
    // a role box is red-listed
    let red = fake.with(|s| {
        let roles = s.resources.get_mut("PractitionerRole").unwrap();
        let r = roles
            .iter_mut()
            .rev()
            .find(|r| !renamed_boxes.contains(&boxes_of(r)[0]))
            .unwrap();
        let meta = r["telecom"][0]["extension"][1]["extension"]
            .as_array_mut()
            .unwrap();
        for sub in meta.iter_mut() {
            if sub["url"] == "listeRouge" {
                sub["valueBoolean"] = json!(true);
            }
        }
        r["meta"]["lastUpdated"] = json!(later);
        boxes_of(r)[0].clone()
    });
    removed.push(red);

    let requests_before = fake.log().len();
    let out = fhir_sync(&data, &fake, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("delta since"), "{}", stdout(&out));
    let log = fake.log();
    assert!(
        log[requests_before..]
            .iter()
            .any(|l| l.uri.contains("_lastUpdated=ge")),
        "{log:?}"
    );
    let after = all_entries(&data);
    assert!(after[new_box].source == Source::Fhir);
    assert!(!renamed_boxes.is_empty());
    assert_exactly(&after, &expect(expected, &stamped, &removed, later));
}

#[test]
fn delta_removes_exactly_the_boxes_a_resource_no_longer_publishes() {
    let (_, p) = population(300);
    let fake = FakeFhir::start(&p);
    // a box published by a role and by its practitioner too
    let (shared, shared_role, shared_person) = fake.with(|s| {
        let r = s.resources["PractitionerRole"].last().unwrap().clone();
        let person = r["practitioner"]["reference"].as_str().unwrap().to_string();
        let t = r["telecom"][0].clone();
        let p = s.resource(&person);
        p["telecom"].as_array_mut().unwrap().push(t);
        (boxes_of(&r)[0].clone(), key_of(&r), person)
    });
    let dir = tempfile::tempdir().unwrap();
    let data = synced(dir.path(), &fake);
    let before = all_entries(&data);
    assert_eq!(
        before[&shared].published_by,
        [shared_person.clone(), shared_role.clone()]
    );
    let shared_org = p.roles.last().unwrap()["organization"]["reference"]
        .as_str()
        .unwrap()
        .to_string();
    let later = "2099-01-01T00:00:00Z";
    let mut expected = before.clone();
    let mut stamped = Vec::new();
    let mut removed = Vec::new();
    let mut used = vec![shared_person.clone(), shared_org.clone()];

    fake.with(|s| {
        // a practitioner, still active, changes the address of his own box
        let pa = key_of(
            s.resources["Practitioner"]
                .iter()
                .find(|p| !boxes_of(p).is_empty() && !used.contains(&key_of(p)))
                .unwrap(),
        );
        used.push(pa.clone());
        let old = boxes_of(s.resource(&pa))[0].clone();
        let p = s.resource(&pa);
        let t = p["telecom"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|t| t["value"] == old.as_str())
            .unwrap();
        t["value"] = json!("nouvelle.adresse@medecin.mssante.fr");
        p["meta"]["lastUpdated"] = json!(later);
        let mut moved = before[&old].clone();
        moved.address =
            mss_annuaire::MailAddress::parse("nouvelle.adresse@medecin.mssante.fr").unwrap();
        moved.updated_at = Some(later.into());
        expected.insert(moved.address.to_string(), moved);
        removed.push(old);
        stamped.extend(boxes_of(s.resource(&pa)));
        stamped.extend(role_boxes(s, "practitioner", &pa));

        // an organization, still active, drops one of its boxes
        let ob = key_of(
            s.resources["Organization"]
                .iter()
                .find(|o| boxes_of(o).len() >= 2 && !used.contains(&key_of(o)))
                .unwrap(),
        );
        used.push(ob.clone());
        let o = s.resource(&ob);
        let dropped = o["telecom"].as_array_mut().unwrap().pop().unwrap();
        o["meta"]["lastUpdated"] = json!(later);
        removed.push(dropped["value"].as_str().unwrap().to_string());
        stamped.extend(boxes_of(s.resource(&ob)));
        stamped.extend(role_boxes(s, "organization", &ob));

        // a role, still active, loses its only box
        let rc = s.resources["PractitionerRole"]
            .iter()
            .find(|r| {
                !used.contains(&r["practitioner"]["reference"].as_str().unwrap().to_string())
                    && !used.contains(&r["organization"]["reference"].as_str().unwrap().to_string())
            })
            .map(key_of)
            .unwrap();
        let r = s.resource(&rc);
        removed.extend(boxes_of(r));
        r["telecom"] = json!([]);
        r["meta"]["lastUpdated"] = json!(later);

        // an organization with roles is deactivated; its roles are not touched
        let od = s.resources["PractitionerRole"]
            .iter()
            .rev()
            .map(|r| r["organization"]["reference"].as_str().unwrap().to_string())
            .find(|o| !used.contains(o))
            .unwrap();
        let o = s.resource(&od);
        o["active"] = json!(false);
        o["meta"]["lastUpdated"] = json!(later);
        removed.extend(boxes_of(o));
        removed.extend(role_boxes(s, "organization", &od));

        // the practitioner of the shared box drops it: his role still publishes it
        let p = s.resource(&shared_person);
        p["telecom"]
            .as_array_mut()
            .unwrap()
            .retain(|t| t["value"] != shared.as_str());
        p["meta"]["lastUpdated"] = json!(later);
        stamped.extend(boxes_of(s.resource(&shared_person)));
        stamped.extend(role_boxes(s, "practitioner", &shared_person));
    });
    expected.get_mut(&shared).unwrap().published_by = vec![shared_role];

    let out = fhir_sync(&data, &fake, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("delta since"), "{}", stdout(&out));
    assert!(removed.len() >= 4, "{removed:?}");
    let after = all_entries(&data);
    assert!(after.contains_key(&shared));
    assert_exactly(&after, &expect(expected, &stamped, &removed, later));
}

#[test]
fn a_full_sync_removes_what_the_api_no_longer_has() {
    let (entries, p) = population(300);
    let fake = FakeFhir::start(&p);
    let dir = tempfile::tempdir().unwrap();
    // an extraction entry in the same index: not the FHIR source's to remove
    let extraction = common::demo_file(dir.path(), 5, 99, false);
    let data = dir.path().join("data");
    common::import(&data, &extraction);
    let imported = all_entries(&data);
    let out = fhir_sync(&data, &fake, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = all_entries(&data);
    assert_eq!(before.len(), entries.len() + imported.len());

    // a practitioner with a box of his own vanishes from the API
    let vanished = fake.with(|s| {
        let list = s.resources.get_mut("Practitioner").unwrap();
        let i = list
            .iter()
            .position(|p| !p["telecom"].as_array().unwrap().is_empty())
            .unwrap();
        let p = list.remove(i);
        p["telecom"][0]["value"].as_str().unwrap().to_string()
    });
    // a delta cannot see it go
    let out = fhir_sync(&data, &fake, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(all_entries(&data).contains_key(&vanished));
    // a full sync removes it, and only it
    let out = fhir_sync(&data, &fake, &["--full"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 removed (gone from the API)"),
        "{}",
        stdout(&out)
    );
    let after = all_entries(&data);
    let mut expected = before.clone();
    expected.remove(&vanished);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (a, e) in &imported {
        assert_eq!(after[a].source, e.source, "{a} left alone");
    }
}

#[test]
fn deltas_more_than_30_days_back_are_refused() {
    let (_, p) = population(50);
    let fake = FakeFhir::start(&p);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = fhir_sync(&data, &fake, &["--since", "2020-01-01"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("30 days") && err.contains("mss fhir-sync --full"),
        "{err}"
    );
    assert!(fake.log().is_empty(), "nothing asked of the server");
    let out = fhir_sync(&data, &fake, &["--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--since: `yesterday`"));
}

#[test]
fn an_interrupted_sync_resumes() {
    let (entries, p) = population(400);
    let fake = FakeFhir::start(&p);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = fhir_sync(&data, &fake, &["--max-pages", "3", "--page-size", "20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("--max-pages"), "{}", stdout(&out));
    let partial = all_entries(&data).len();
    assert!(partial > 0 && partial < entries.len());
    let out = fhir_sync(&data, &fake, &["--page-size", "20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("resumed"), "{}", stdout(&out));
    assert_eq!(all_entries(&data).len(), entries.len());
}

fn client(fake: &FakeFhir, attempts: u32, timeout: Duration) -> FhirClient {
    let mut c = FhirConfig::new(&fake.base()).unwrap();
    c.api_key = Some(mss_annuaire::Secret::new(KEY));
    c.rate = 0;
    c.attempts = attempts;
    c.backoff = Duration::from_millis(20);
    c.timeout = timeout;
    FhirClient::new(c).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn transient_failures_are_retried_then_reported() {
    let (_, p) = population(50);
    let fake = FakeFhir::start(&p);
    let c = client(&fake, 3, Duration::from_millis(500));
    let search = Search::new("Organization").param("mailbox-mss:contains", "@");
    let rt = rt();

    // 429 with Retry-After: 1, then 503, then the answer
    fake.with(|s| {
        s.faults = [Fault::Status(429, Some(1)), Fault::Status(503, None)].into();
    });
    let page = rt.block_on(c.first_page(&search)).expect("retried");
    assert!(!page.matches.is_empty());
    let log = fake.log();
    assert_eq!(log.len(), 3);
    let waited = log[1].at - log[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After honoured: {waited:?}"
    );
    assert_eq!(c.retries(), 2);

    // 429 with Retry-After as an HTTP-date (RFC 9110 §10.2.3): not asked again before that time
    fake.with(|s| s.faults = [Fault::StatusUntil(429, Duration::from_secs(2))].into());
    let before = fake.log().len();
    let page = rt
        .block_on(c.first_page(&search))
        .expect("retried after the date");
    assert!(!page.matches.is_empty());
    let log = fake.log();
    assert_eq!(log.len(), before + 2);
    let date = fake.with(|s| s.retry_dates[0]);
    assert!(
        log[before + 1].wall >= date,
        "asked again at {:?}, before the Retry-After date {date:?}",
        log[before + 1].wall
    );
    // an absurd one (decades away): reported at once, saying why
    fake.with(|s| {
        s.faults = [Fault::StatusWith(429, "Fri, 01 Jan 2100 00:00:00 GMT")].into();
    });
    let before = fake.log().len();
    let err = rt.block_on(c.first_page(&search)).unwrap_err();
    assert_eq!(fake.log().len(), before + 1, "not retried");
    assert!(
        matches!(err, Error::FhirOutcome { status: 429, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("by Retry-After, more than the 120 s"),
        "{err}"
    );

    // three 502: reported, with the OperationOutcome's diagnostics, as transient
    fake.with(|s| s.faults = [Fault::Status(502, None); 3].into_iter().collect());
    let err = rt.block_on(c.first_page(&search)).unwrap_err();
    assert!(
        matches!(err, Error::FhirOutcome { status: 502, .. }),
        "{err}"
    );
    assert!(err.is_transient());
    assert!(err.to_string().contains("injected failure"), "{err}");

    // three slow answers: timeouts, reported
    fake.with(|s| {
        s.faults = [Fault::Delay(Duration::from_secs(2)); 3]
            .into_iter()
            .collect()
    });
    let err = rt.block_on(c.first_page(&search)).unwrap_err();
    assert!(matches!(err, Error::FhirTimeout { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("Organization?mailbox-mss:contains=@"),
        "{err}"
    );

    // a wrong key: 401, permanent, not retried, and the key is not in the message
    fake.with(|s| s.api_key = Some("another".into()));
    let before = fake.log().len();
    let err = rt.block_on(c.first_page(&search)).unwrap_err();
    assert!(
        matches!(err, Error::FhirOutcome { status: 401, .. }),
        "{err}"
    );
    assert!(err.is_permanent());
    assert_eq!(fake.log().len(), before + 1);
    assert!(!err.to_string().contains(KEY));
    assert!(!format!("{err:?} {c:?}").contains(KEY));
}

#[test]
fn malformed_answers_name_the_resource_and_field() {
    let (_, p) = population(20);
    let fake = FakeFhir::start(&p);
    let c = client(&fake, 1, Duration::from_secs(5));
    let search = Search::new("Practitioner").param("mailbox-mss:contains", "@");
    let rt = rt();
    let cases = [
        ("{not json", "not JSON"),
        (
            r#"{"resourceType":"Patient","id":"x"}"#,
            "field `resourceType`: expected a Bundle, got `Patient`",
        ),
        (
            r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"p1"}}]}"#,
            "Patient/p1 (entry[0] of Practitioner?mailbox-mss:contains=@), field `resourceType`: unexpected resource type `Patient`",
        ),
        (
            r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Practitioner","id":"p2","telecom":[{"system":"email","rank":"first"}]}}]}"#,
            "Practitioner/p2 (entry[0] of Practitioner?mailbox-mss:contains=@), field `telecom[0].rank`",
        ),
        (
            r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Organization","id":"o1","name":["a"]}}]}"#,
            "field `name`",
        ),
        (
            r#"{"resourceType":"Bundle","entry":[{"fullUrl":"x"}]}"#,
            "field `entry[0].resource`: missing",
        ),
    ];
    for (body, expected) in cases {
        fake.with(|s| s.faults = [Fault::Body(body)].into());
        let err = rt.block_on(c.first_page(&search)).unwrap_err();
        assert!(matches!(err, Error::FhirResponse { .. }), "{err}");
        assert!(err.is_permanent());
        assert!(err.to_string().contains(expected), "{body}: {err}");
    }
    // an OperationOutcome instead of a Bundle: its diagnostics
    fake.with(|s| {
        s.faults = [Fault::Body(
            r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"Parameter mailbox-mss-type not found"}]}"#,
        )]
        .into()
    });
    let err = rt.block_on(c.first_page(&search)).unwrap_err();
    assert!(
        err.to_string()
            .contains("Parameter mailbox-mss-type not found"),
        "{err}"
    );
}

#[test]
fn the_api_key_is_in_no_log_line() {
    let (_, p) = population(100);
    let fake = FakeFhir::start(&p);
    fake.with(|s| {
        s.api_key = Some(KEY.into());
        s.faults = [Fault::Status(503, None)].into();
    });
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let base = fake.base();
    let out = common::mss()
        .args([
            "--data",
            data.to_str().unwrap(),
            "-vv",
            "fhir-sync",
            "--base",
            &base,
        ])
        .args(["--rate", "0", "--quiet"])
        .env("MSS_FHIR_API_KEY", KEY)
        .env("MSS_LOG", "trace")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let logs = format!("{}{}", stdout(&out), stderr(&out));
    assert!(logs.contains("retrying"), "the retry is logged: {logs}");
    assert!(logs.lines().count() > 20, "trace logs were captured");
    assert!(!logs.contains(KEY), "the API key leaked into the logs");
    assert!(fake.log().iter().all(|l| l.api_key.as_deref() == Some(KEY)));

    // a wrong key: the error says so, without either key
    fake.with(|s| s.api_key = Some("the-right-one".into()));
    let out = common::mss()
        .args([
            "--data",
            data.to_str().unwrap(),
            "-vv",
            "fhir-sync",
            "--full",
            "--base",
            &base,
        ])
        .args(["--rate", "0", "--quiet"])
        .env("MSS_FHIR_API_KEY", KEY)
        .env("MSS_LOG", "trace")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let logs = format!("{}{}", stdout(&out), stderr(&out));
    assert!(logs.contains("HTTP 401"), "{logs}");
    assert!(!logs.contains(KEY) && !logs.contains("the-right-one"));
}

#[test]
fn the_client_never_exceeds_17_requests_per_second() {
    let (_, p) = population(600);
    let fake = FakeFhir::start(&p);
    let mut config = FhirConfig::new(&fake.base()).unwrap();
    config.page_size = Some(5);
    let c = FhirClient::new(config).unwrap();
    assert_eq!(c.config().rate, 17, "the national limit is the default");
    let search = Search::new("Practitioner");
    let pages = rt().block_on(async {
        let mut page = c.first_page(&search).await.unwrap();
        let mut n = 1;
        while let Some(next) = page.next.clone()
            && n < 45
        {
            page = c.next_page(&next, &search).await.unwrap();
            n += 1;
        }
        n
    });
    assert_eq!(pages, 45);
    let log = fake.log();
    assert_eq!(log.len(), 45);
    for (i, first) in log.iter().enumerate() {
        let in_window = log[i..]
            .iter()
            .take_while(|l| l.at - first.at < Duration::from_secs(1))
            .count();
        assert!(
            in_window <= 17,
            "{in_window} requests within a second from #{i}"
        );
    }
    let span = log[44].at - log[0].at;
    assert!(span >= Duration::from_secs(2), "{span:?}");
}

fn get(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::blocking::get(url).unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(serde_json::Value::Null))
}

#[test]
fn refresh_asks_the_api_and_updates_the_index() {
    let (_, p) = population(200);
    let fake = FakeFhir::start(&p);
    fake.with(|s| s.api_key = Some(KEY.into()));
    let dir = tempfile::tempdir().unwrap();
    let data = synced(dir.path(), &fake);
    let keyf = key_file(dir.path());
    let base = fake.base();
    let server =
        common::Server::start(&data, &["--fhir-base", &base, "--fhir-api-key-file", &keyf]);

    // a practitioner's own box, renamed at the source only
    let (who, address) = fake.with(|s| {
        let p = s.resources["Practitioner"]
            .iter()
            .find(|p| !p["telecom"].as_array().unwrap().is_empty())
            .unwrap()
            .clone();
        let key = format!("Practitioner/{}", p["id"].as_str().unwrap());
        s.resource(&key)["name"][0]["family"] = json!("Rafraichi");
        (key, p["telecom"][0]["value"].as_str().unwrap().to_string())
    });
    let url = server.url(&format!("/v1/directory/entries/{address}"));
    let (status, local) = get(&url);
    assert_eq!(status, 200);
    assert_ne!(
        local["last_name"], "Rafraichi",
        "the index is not refreshed yet"
    );
    let requests = fake.log().len();
    let (status, fresh) = get(&format!("{url}?refresh=true"));
    assert_eq!(status, 200, "{fresh}");
    assert_eq!(fresh["last_name"], "Rafraichi");
    let asked: Vec<String> = fake.log()[requests..]
        .iter()
        .map(|l| l.uri.clone())
        .collect();
    assert!(
        asked
            .iter()
            .any(|u| u.contains("mailbox-mss%3Aexact=") || u.contains("mailbox-mss:exact=")),
        "{asked:?}"
    );
    // the index was updated
    let (status, now) = get(&url);
    assert_eq!((status, &now["last_name"]), (200, &json!("Rafraichi")));

    // deactivated at the source: 404, and gone from the index
    fake.with(|s| s.resource(&who)["active"] = json!(false));
    let (status, problem) = get(&format!("{url}?refresh=true"));
    assert_eq!(status, 404, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("removed from the local index")
    );
    assert_eq!(get(&url).0, 404);

    // the API failing for now: 503 with Retry-After, naming the cause
    fake.with(|s| s.faults = [Fault::Status(503, None); 2].into_iter().collect());
    let r = reqwest::blocking::get(format!("{url}?refresh=true")).unwrap();
    let (status, retry_after) = (r.status().as_u16(), r.headers().get("retry-after").cloned());
    let problem: serde_json::Value = r.json().unwrap_or_default();
    assert_eq!(status, 503, "{problem}");
    assert_eq!(
        retry_after.as_ref().and_then(|v| v.to_str().ok()),
        Some("10")
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("HTTP 503"),
        "{problem}"
    );
    // the API refusing the lookup: 502, naming the cause, no Retry-After
    fake.with(|s| s.faults = [Fault::Status(401, None)].into_iter().collect());
    let r = reqwest::blocking::get(format!("{url}?refresh=true")).unwrap();
    let (status, retry_after) = (r.status().as_u16(), r.headers().get("retry-after").cloned());
    let problem: serde_json::Value = r.json().unwrap_or_default();
    assert_eq!(status, 502, "{problem}");
    assert!(retry_after.is_none(), "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("HTTP 401"),
        "{problem}"
    );

    // strict parameters
    let (status, problem) = get(&format!("{url}?refresh=yes"));
    assert_eq!(status, 400);
    assert_eq!(problem["invalid-params"][0]["name"], "refresh", "{problem}");
    assert_eq!(get(&format!("{url}?refresh=true&x=1")).0, 400);
    let logs: Vec<String> = server.stderr_lines.try_iter().collect();
    assert!(
        logs.iter().any(|l| l.contains("FHIR")),
        "the failed lookup is logged: {logs:?}"
    );
    assert!(logs.iter().all(|l| !l.contains(KEY)), "{logs:?}");
    drop(server);

    // a server without a FHIR API refuses refresh=true
    let server = common::Server::start(&data, &[]);
    let (status, problem) =
        get(&server.url(&format!("/v1/directory/entries/{address}?refresh=true")));
    assert_eq!(status, 400);
    assert!(
        problem["invalid-params"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("--fhir-base"),
        "{problem}"
    );
}

/// `GET /v1/sources` of `server` once `ready` says yes of it, polled until `deadline`.
fn sources_until(
    server: &common::Server,
    deadline: std::time::Instant,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        let r = server.http.get(server.url("/v1/sources")).send().unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().unwrap();
        if ready(&v) {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduled runs never got there: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn source<'a>(sources: &'a Value, name: &str) -> &'a Value {
    sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == name)
        .unwrap()
}

fn time_of(text: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        text.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

#[test]
fn the_service_syncs_by_itself_and_shows_each_run_and_the_next() {
    let (_, p) = population(200);
    let fake = FakeFhir::start(&p);
    fake.with(|s| s.api_key = Some(KEY.into()));
    let dir = tempfile::tempdir().unwrap();
    let data = synced(dir.path(), &fake);
    let keyf = key_file(dir.path());
    // a practitioner renamed at the source after the CLI's sync: the service's delta brings it
    let address = fake.with(|s| {
        let p = s
            .resources
            .get_mut("Practitioner")
            .unwrap()
            .iter_mut()
            .find(|p| !p["telecom"].as_array().unwrap().is_empty())
            .unwrap();
        p["name"][0]["family"] = json!("Programme");
        p["meta"]["lastUpdated"] = json!("2099-01-01T00:00:00Z");
        p["telecom"][0]["value"].as_str().unwrap().to_string()
    });
    let clients = dir.path().join("clients.toml");
    let key = common::add_client(&clients, "ops", &["metrics:read", "directory:read"]);
    let config = dir.path().join("mss.toml");
    // the LDAP directory does not answer (nothing listens on port 1): its runs fail, the service stays
    std::fs::write(
        &config,
        format!(
            "fhir_base = \"{}\"\nfhir_api_key_file = \"{keyf}\"\nfhir_sync_every = \"1s\"\n\
             ldap_url = \"ldap://127.0.0.1:1\"\nldap_sync_every = \"1s\"\n",
            fake.base()
        ),
    )
    .unwrap();
    let server = common::Server::start_keyed(&data, &config, &clients, &key);
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    // two runs of each: a failed run is tried again at the next one, and so is a good one
    let v = sources_until(&server, deadline, |v| {
        ["fhir", "ldap"]
            .iter()
            .all(|s| source(v, s)["schedule"]["runs"].as_u64().unwrap_or(0) >= 2)
    });
    let fhir = &source(&v, "fhir")["schedule"];
    assert_eq!(fhir["every_seconds"], 1, "{fhir:#}");
    let attempt = &fhir["last_attempt"];
    assert_eq!(attempt["outcome"], "ok", "{fhir:#}");
    assert!(
        attempt["summary"]
            .as_str()
            .unwrap()
            .starts_with("delta since"),
        "{fhir:#}"
    );
    assert!(fhir["last_error"].is_null(), "{fhir:#}");
    assert_eq!(fhir["failed_runs"], 0, "{fhir:#}");
    assert!(time_of(&attempt["finished"]) >= time_of(&attempt["started"]));
    if !fhir["running"].as_bool().unwrap() {
        assert!(
            time_of(&fhir["next_run"]) >= time_of(&attempt["finished"]),
            "{fhir:#}"
        );
    }
    // the run is recorded with the index, as a CLI run is
    let last = &source(&v, "fhir")["last"];
    assert_eq!(
        last["mode"],
        attempt["summary"]
            .as_str()
            .unwrap()
            .split(" of ")
            .next()
            .unwrap()
    );
    // the served index has the renamed practitioner, without a restart
    let r = server
        .http
        .get(server.url(&format!("/v1/directory/entries/{address}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["last_name"], "Programme");

    let ldap = &source(&v, "ldap")["schedule"];
    let failed = &ldap["last_attempt"];
    assert_eq!(failed["outcome"], "failed", "{ldap:#}");
    assert_eq!(failed["error_kind"], "transient", "{ldap:#}");
    assert!(
        failed["error"].as_str().unwrap().contains("127.0.0.1:1"),
        "the error names the server: {ldap:#}"
    );
    assert!(failed["changed"].is_null());
    assert_eq!(ldap["last_error"]["error"], failed["error"]);
    assert_eq!(ldap["failed_runs"], ldap["runs"], "{ldap:#}");
    assert!(
        source(&v, "ldap")["last"].is_null(),
        "no complete harvest recorded"
    );
    assert!(source(&v, "extraction")["schedule"].is_null());

    // /metrics says the same
    let metrics = server.text("/metrics");
    let value = |name: &str, source: &str| -> f64 {
        let prefix = format!("{name}{{source=\"{source}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{prefix} in {metrics}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("mss_directory_source_last_run_failed", "ldap"), 1.0);
    assert_eq!(value("mss_directory_source_last_run_failed", "fhir"), 0.0);
    assert_eq!(
        value("mss_directory_source_last_run_failed", "extraction"),
        0.0
    );
    assert!(
        value(
            "mss_directory_source_last_attempt_timestamp_seconds",
            "fhir"
        ) > 1.7e9
    );
    assert!(
        value(
            "mss_directory_source_last_attempt_timestamp_seconds",
            "ldap"
        ) > 1.7e9
    );
    assert_eq!(
        value(
            "mss_directory_source_next_run_timestamp_seconds",
            "extraction"
        ),
        0.0
    );
    assert!(
        value(
            "mss_directory_source_last_success_timestamp_seconds",
            "fhir"
        ) > 1.7e9
    );
    let logs: Vec<String> = server.stderr_lines.try_iter().collect();
    assert!(
        logs.iter()
            .any(|l| l.contains("directory source run failed") && l.contains("ldap")),
        "the failures are logged: {logs:?}"
    );
    assert!(logs.iter().all(|l| !l.contains(KEY)), "{logs:?}");
    drop(server);

    // a schedule without its source, or a span that is not one, is refused at start, naming the key
    for (text, expected) in [
        ("ldap_sync_every = \"24h\"\n", "ldap_sync_every needs"),
        ("fhir_sync_every = \"15m\"\n", "fhir_sync_every needs"),
        (
            "fhir_base = \"http://127.0.0.1:1/fhir\"\nfhir_sync_every = \"15\"\n",
            "fhir_sync_every: `15` has no unit",
        ),
        (
            "fhir_base = \"https://gateway.api.esante.gouv.fr/fhir/v2\"\nfhir_sync_every = \"15m\"\n",
            "fhir_sync_every: the national API refuses every request without a key",
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = common::run(&[
            "--data",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "{text}");
        assert!(stderr(&out).contains(expected), "{text}: {}", stderr(&out));
    }
}

/// Skips (saying why) outside CI, fails under CI.
fn unavailable(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("FHIR R4 test server unavailable under CI: {why}");
    }
    eprintln!("SKIP: {why} (install with scripts/install-deps.sh)");
}

/// The real FHIR R4 server of `tests/fhir/` (Medplum's router, in memory), seeded with `population`;
/// it exits when this process does (its stdin closes).
struct R4Server {
    child: std::process::Child,
    base: String,
}

impl R4Server {
    fn start(dir: &Path, p: &Population) -> Option<R4Server> {
        use std::io::{BufRead, BufReader, Write};
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fhir");
        if !root.join("node_modules/@medplum/fhir-router").is_dir() {
            unavailable("tests/fhir/node_modules missing (npm ci)");
            return None;
        }
        let seed = dir.join("seed.ndjson");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&seed).unwrap());
        for r in p.all() {
            serde_json::to_writer(&mut f, r).unwrap();
            f.write_all(b"\n").unwrap();
        }
        f.flush().unwrap();
        drop(f);
        let mut child = match std::process::Command::new("node")
            .arg("--experimental-websocket")
            .arg(root.join("server.mjs"))
            .arg("--seed")
            .arg(&seed)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                unavailable(&format!("node: {e}"));
                return None;
            }
        };
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("URL=")
            .unwrap_or_else(|| panic!("server said {line:?}"))
            .to_string();
        Some(R4Server { child, base })
    }
}

impl Drop for R4Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn full_and_delta_sync_against_a_real_fhir_r4_server() {
    let (entries, p) = population(400);
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = R4Server::start(dir.path(), &p) else {
        return;
    };
    let data = dir.path().join("data");
    let sync = |extra: &[&str]| {
        common::mss()
            .args([
                "--data",
                data.to_str().unwrap(),
                "fhir-sync",
                "--base",
                &server.base,
            ])
            .args(["--rate", "0", "--quiet"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = sync(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = all_entries(&data);
    assert_eq!(got.len(), entries.len(), "{}", stdout(&out));
    for e in &entries {
        assert_eq!(
            carried(&got[e.address.as_str()]),
            carried(e),
            "{}",
            e.address
        );
    }

    // changes through the server's REST API: it stamps meta.lastUpdated itself
    let http = reqwest::blocking::Client::new();
    let read = |key: &str| -> serde_json::Value {
        http.get(format!("{}/{key}", server.base))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let write = |key: &str, v: &serde_json::Value| {
        let r = http
            .put(format!("{}/{key}", server.base))
            .header("content-type", "application/fhir+json")
            .body(v.to_string())
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap());
    };
    let role = p.roles[0].clone();
    let who = role["practitioner"]["reference"]
        .as_str()
        .unwrap()
        .to_string();
    let mut person = read(&who);
    person["name"][0]["family"] = json!("Nouveaunom");
    write(&who, &person);
    let red_role = p.roles.last().unwrap().clone();
    assert_ne!(red_role["practitioner"]["reference"], who.as_str());
    let red_key = format!("PractitionerRole/{}", red_role["id"].as_str().unwrap());
    let mut r = read(&red_key);
    for sub in r["telecom"][0]["extension"][1]["extension"]
        .as_array_mut()
        .unwrap()
    {
        if sub["url"] == "listeRouge" {
            sub["valueBoolean"] = json!(true);
        }
    }
    write(&red_key, &r);
    // an organization, still active, drops one of its boxes
    let org = p
        .organizations
        .iter()
        .find(|o| boxes_of(o).len() >= 2)
        .unwrap();
    let org_key = key_of(org);
    let mut o = read(&org_key);
    let dropped = o["telecom"].as_array_mut().unwrap().pop().unwrap();
    write(&org_key, &o);

    let out = sync(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("delta since"), "{}", stdout(&out));
    let after = all_entries(&data);
    let renamed = role["telecom"][0]["value"].as_str().unwrap();
    assert_eq!(after[renamed].last_name.as_deref(), Some("Nouveaunom"));
    let red = red_role["telecom"][0]["value"].as_str().unwrap();
    assert!(!after.contains_key(red));
    assert!(!after.contains_key(dropped["value"].as_str().unwrap()));
    assert_eq!(after.len(), got.len() - 2);

    // a live lookup by exact address
    let c = FhirClient::new({
        let mut c = FhirConfig::new(&server.base).unwrap();
        c.rate = 0;
        c
    })
    .unwrap();
    let found = rt()
        .block_on(c.mailbox(&mss_annuaire::MailAddress::parse(renamed).unwrap()))
        .unwrap()
        .expect("published");
    assert_eq!(found.last_name.as_deref(), Some("Nouveaunom"));
    assert!(
        found.organisation_name.is_some(),
        "the role's form, with its structure"
    );
    let gone = rt()
        .block_on(c.mailbox(&mss_annuaire::MailAddress::parse(red).unwrap()))
        .unwrap();
    assert_eq!(gone, None);

    // `mss serve` with `fhir_sync_every` applies the next change by itself, and serves it
    let mut person = read(&who);
    person["name"][0]["family"] = json!("Programme");
    write(&who, &person);
    let clients = dir.path().join("clients.toml");
    let key = common::add_client(&clients, "ops", &["metrics:read", "directory:read"]);
    let config = dir.path().join("mss.toml");
    std::fs::write(
        &config,
        format!(
            "fhir_base = \"{}\"\nfhir_sync_every = \"1s\"\n",
            server.base
        ),
    )
    .unwrap();
    let service = common::Server::start_keyed(&data, &config, &clients, &key);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let v = sources_until(&service, deadline, |v| {
        let a = &source(v, "fhir")["schedule"]["last_attempt"];
        a["outcome"] == "ok" && a["changed"].as_u64().unwrap_or(0) >= 1
    });
    let fhir = &source(&v, "fhir")["schedule"];
    assert!(
        fhir["last_attempt"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("delta since"),
        "{fhir:#}"
    );
    let r = service
        .http
        .get(service.url(&format!("/v1/directory/entries/{renamed}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["last_name"], "Programme");
}
