//! A small FHIR server (axum) with what the national API does and a general server cannot be made to do
//! on demand: the `ESANTE-API-KEY` check, searchsets of 50 with `next` links to `_page?id=`,
//! `_lastUpdated=ge` filtering, `mailbox-mss:contains|exact`, reference searches with several values,
//! `_include` of a role's practitioner and organization, and injected faults (429 with `Retry-After`,
//! 5xx, slow answers, bodies that are not a Bundle). Every request is logged with its arrival time.
//!
//! Search semantics are ours (the realistic ones are exercised against a real FHIR server elsewhere);
//! the data comes from `mss_annuaire::fhir::fixtures`, the same population as `mss demo-data`.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, Response, StatusCode, Uri};
use mss_annuaire::fhir::fixtures::Population;
use serde_json::{Value, json};

/// Path under which the API is served (as the national gateway's).
pub const PREFIX: &str = "/fhir/v2";

/// A fault served instead of the next answer.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// This status with an OperationOutcome; `Retry-After` seconds if given.
    Status(u16, Option<u64>),
    /// This status with `Retry-After` as the HTTP-date this long from now (recorded in
    /// [`Store::retry_dates`]).
    StatusUntil(u16, Duration),
    /// This status with this `Retry-After` text.
    StatusWith(u16, &'static str),
    /// Waits this long, then answers normally.
    Delay(Duration),
    /// 200 with this body.
    Body(&'static str),
}

/// One request received.
#[derive(Debug, Clone)]
pub struct Logged {
    /// When it arrived.
    pub at: Instant,
    /// When it arrived, by the clock.
    pub wall: SystemTime,
    /// Path and query.
    pub uri: String,
    /// The `ESANTE-API-KEY` header sent, if any.
    pub api_key: Option<String>,
}

/// The server's data and behaviour, shared with the test.
#[derive(Default)]
pub struct Store {
    /// Resources by type (`Practitioner`...), in order.
    pub resources: HashMap<String, Vec<Value>>,
    /// The key required in `ESANTE-API-KEY` (none: no check).
    pub api_key: Option<String>,
    /// Faults served first, in order (the API-key check comes before them).
    pub faults: VecDeque<Fault>,
    /// Requests received.
    pub log: Vec<Logged>,
    /// The HTTP-dates sent by [`Fault::StatusUntil`], as the client reads them (to the second).
    pub retry_dates: Vec<SystemTime>,
    /// Search results by page id, serialized (compact: 100 k resources as `Value`s take gigabytes).
    pages: HashMap<String, Vec<Item>>,
    next_page: u64,
    /// Page size when `_count` is not given.
    pub page_size: usize,
}

impl Store {
    /// Loads a population.
    pub fn load(&mut self, p: &Population) {
        self.resources
            .insert("Practitioner".into(), p.practitioners.clone());
        self.resources
            .insert("PractitionerRole".into(), p.roles.clone());
        self.resources
            .insert("Organization".into(), p.organizations.clone());
    }

    /// The resource `Type/id`, to modify.
    pub fn resource(&mut self, key: &str) -> &mut Value {
        let (ty, id) = key.split_once('/').expect("Type/id");
        self.resources
            .get_mut(ty)
            .and_then(|list| list.iter_mut().find(|r| r["id"] == id))
            .unwrap_or_else(|| panic!("no {key}"))
    }
}

/// One search result: the resource and what it includes, as `(Type/id, JSON)`.
struct Item {
    key: String,
    json: String,
    included: Vec<(String, String)>,
}

/// A running fake; stops with the test process.
pub struct FakeFhir {
    pub store: Arc<Mutex<Store>>,
    pub addr: SocketAddr,
}

impl FakeFhir {
    /// Starts a server on 127.0.0.1:0 serving `population`.
    pub fn start(population: &Population) -> FakeFhir {
        Self::serve(population.clone())
    }

    /// Starts a server on 127.0.0.1:0 serving `population` (taken: no copy is kept).
    pub fn serve(population: Population) -> FakeFhir {
        let mut store = Store {
            page_size: 50,
            ..Store::default()
        };
        store
            .resources
            .insert("Practitioner".into(), population.practitioners);
        store
            .resources
            .insert("PractitionerRole".into(), population.roles);
        store
            .resources
            .insert("Organization".into(), population.organizations);
        let store = Arc::new(Mutex::new(store));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = Arc::clone(&store);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send");
                let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
                    let store = Arc::clone(&shared);
                    async move { handle(store, uri, headers).await }
                });
                axum::serve(listener, app).await.expect("serve");
            });
        });
        let addr = rx.recv().expect("fake FHIR server address");
        FakeFhir { store, addr }
    }

    /// The base URL (`http://127.0.0.1:port/fhir/v2`).
    pub fn base(&self) -> String {
        format!("http://{}{PREFIX}", self.addr)
    }

    /// Runs `f` on the store.
    pub fn with<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        f(&mut self.store.lock().expect("store"))
    }

    /// The request log so far.
    pub fn log(&self) -> Vec<Logged> {
        self.with(|s| s.log.clone())
    }
}

fn outcome(status: u16, code: &str, diagnostics: &str) -> Response<Body> {
    let body = json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]
    });
    Response::builder()
        .status(status)
        .header("content-type", "application/fhir+json")
        .body(Body::from(body.to_string()))
        .expect("response")
}

fn bundle(body: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/fhir+json")
        .body(Body::from(body.to_string()))
        .expect("response")
}

async fn handle(store: Arc<Mutex<Store>>, uri: Uri, headers: HeaderMap) -> Response<Body> {
    let key = headers
        .get("ESANTE-API-KEY")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let fault = {
        let mut s = store.lock().expect("store");
        s.log.push(Logged {
            at: Instant::now(),
            wall: SystemTime::now(),
            uri: uri.to_string(),
            api_key: key.clone(),
        });
        if let Some(want) = &s.api_key
            && key.as_deref() != Some(want.as_str())
        {
            return outcome(401, "security", "missing or wrong ESANTE-API-KEY");
        }
        let fault = s.faults.pop_front();
        if let Some(Fault::StatusUntil(_, d)) = fault {
            let text = httpdate::fmt_http_date(SystemTime::now() + d);
            s.retry_dates
                .push(httpdate::parse_http_date(&text).expect("own date"));
        }
        fault
    };
    match fault {
        Some(Fault::Status(status, retry_after)) => {
            let mut r = outcome(status, "transient", "injected failure");
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert("retry-after", s.to_string().parse().expect("header"));
            }
            return r;
        }
        Some(Fault::StatusUntil(status, _)) => {
            let mut r = outcome(status, "throttled", "injected failure");
            let date = store.lock().expect("store").retry_dates.last().copied();
            if let Some(date) = date {
                let text = httpdate::fmt_http_date(date);
                r.headers_mut()
                    .insert("retry-after", text.parse().expect("header"));
            }
            return r;
        }
        Some(Fault::StatusWith(status, value)) => {
            let mut r = outcome(status, "throttled", "injected failure");
            r.headers_mut()
                .insert("retry-after", value.parse().expect("header"));
            return r;
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Body(b)) => {
            return Response::builder()
                .status(200)
                .header("content-type", "application/fhir+json")
                .body(Body::from(b.to_string()))
                .expect("response");
        }
        None => {}
    }
    let path = uri.path();
    let Some(resource) = path.strip_prefix(PREFIX).map(|p| p.trim_matches('/')) else {
        return outcome(404, "not-found", "unknown path");
    };
    let params: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let base = format!("http://{host}{PREFIX}");
    let mut s = store.lock().expect("store");
    if resource == "_page" {
        let Some(id) = params.iter().find(|(k, _)| k == "id").map(|(_, v)| v) else {
            return outcome(400, "invalid", "_page needs id");
        };
        let Some(rest) = s.pages.remove(id) else {
            return outcome(410, "not-found", "page expired");
        };
        return bundle_text(page(&mut s, &base, rest));
    }
    if let Some((_, n)) = params.iter().find(|(k, _)| k == "_count") {
        s.page_size = n.parse().unwrap_or(50);
    }
    let Some(all) = s.resources.get(resource) else {
        return outcome(
            404,
            "not-supported",
            &format!("resource {resource} not served"),
        );
    };
    let matches: Vec<&Value> = all
        .iter()
        .filter(|r| {
            params
                .iter()
                .all(|(k, v)| k.starts_with('_') && k != "_lastUpdated" || matches_param(r, k, v))
        })
        .collect();
    let include = params.iter().any(|(k, _)| k == "_include");
    // what each match includes, resolved once per search (not per page)
    let by_key = |ty: &str| -> HashMap<String, &Value> {
        s.resources
            .get(ty)
            .into_iter()
            .flatten()
            .filter_map(|r| Some((format!("{ty}/{}", r["id"].as_str()?), r)))
            .collect()
    };
    let (people, orgs) = if include {
        (by_key("Practitioner"), by_key("Organization"))
    } else {
        (HashMap::new(), HashMap::new())
    };
    let key = |r: &Value| {
        format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap_or(""),
            r["id"].as_str().unwrap_or("")
        )
    };
    let items: Vec<Item> = matches
        .into_iter()
        .map(|r| {
            let mut included = Vec::new();
            if include {
                for (field, map) in [("practitioner", &people), ("organization", &orgs)] {
                    if let Some(found) = r[field]["reference"].as_str().and_then(|k| map.get(k)) {
                        included.push((key(found), found.to_string()));
                    }
                }
            }
            Item {
                key: key(r),
                json: r.to_string(),
                included,
            }
        })
        .collect();
    bundle_text(page(&mut s, &base, items))
}

fn bundle_text(body: String) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/fhir+json")
        .body(Body::from(body))
        .expect("response")
}

/// The first page of `results` as a Bundle's text; the rest is kept for its `next` link.
fn page(s: &mut Store, base: &str, mut results: Vec<Item>) -> String {
    let size = s.page_size.max(1);
    let rest = if results.len() > size {
        results.split_off(size)
    } else {
        Vec::new()
    };
    let mut entries = Vec::new();
    let mut included = std::collections::HashSet::new();
    for m in &results {
        entries.push(format!(
            r#"{{"fullUrl":"{base}/{}","resource":{},"search":{{"mode":"match"}}}}"#,
            m.key, m.json
        ));
    }
    for m in &results {
        for (key, json) in &m.included {
            if included.insert(key.clone()) {
                entries.push(format!(
                    r#"{{"fullUrl":"{base}/{key}","resource":{json},"search":{{"mode":"include"}}}}"#
                ));
            }
        }
    }
    let mut link = vec![json!({"relation": "self", "url": base})];
    if !rest.is_empty() {
        s.next_page += 1;
        let id = format!("p{}", s.next_page);
        s.pages.insert(id.clone(), rest);
        link.push(json!({"relation": "next", "url": format!("{base}/_page?id={id}")}));
    }
    format!(
        r#"{{"resourceType":"Bundle","type":"searchset","link":{},"entry":[{}]}}"#,
        Value::Array(link),
        entries.join(",")
    )
}

pub fn mailboxes(r: &Value) -> impl Iterator<Item = &str> {
    r["telecom"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            t["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["valueCoding"]["code"] == "MSSANTE")
        })
        .filter_map(|t| t["value"].as_str())
}

fn matches_param(r: &Value, k: &str, v: &str) -> bool {
    match k {
        "mailbox-mss:contains" => {
            mailboxes(r).any(|m| m.to_lowercase().contains(&v.to_lowercase()))
        }
        "mailbox-mss:exact" => mailboxes(r).any(|m| m == v),
        "_lastUpdated" => {
            let last = r["meta"]["lastUpdated"].as_str().unwrap_or("");
            match v.strip_prefix("ge") {
                Some(since) => last >= since,
                None => false,
            }
        }
        "practitioner" | "organization" => {
            let key = r[k]["reference"].as_str().unwrap_or("");
            v.split(',').any(|x| x == key)
        }
        "active" => r["active"].as_bool().map(|b| b.to_string()).as_deref() == Some(v),
        _ => false,
    }
}
