//! End-to-end tests of `mss serve`: the real binary on an ephemeral port, called over HTTP.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use common::{Server, demo_file, import, shared_dir};
use reqwest::blocking::{Client, get};
use serde_json::Value;

/// One data directory with 3 000 synthetic entries, shared by the read-only tests.
fn data_dir() -> &'static std::path::Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = shared_dir("serve-3000");
        let file = demo_file(&dir, 3000, 21, false);
        import(&dir.join("data"), &file);
        dir
    })
}

fn server() -> Server {
    Server::start(
        &data_dir().join("data"),
        &["--cors-origin", "https://lps.example.test"],
    )
}

fn json(url: &str) -> (u16, String, Value) {
    let r = get(url).unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body: Value = r.json().unwrap();
    (status, ct, body)
}

fn problem(url: &str, status: u16) -> Value {
    let (got, ct, body) = json(url);
    assert_eq!(got, status, "{url}: {body}");
    assert_eq!(ct, "application/problem+json", "{url}");
    assert_eq!(body["status"], status);
    assert_eq!(body["type"], "about:blank");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    body
}

#[test]
fn probes_and_search() {
    let s = server();
    assert_eq!(get(s.url("/healthz")).unwrap().text().unwrap(), "ok\n");
    assert_eq!(
        get(s.url("/readyz")).unwrap().text().unwrap(),
        "ok: 3000 entries\n"
    );
    let (status, ct, body) = json(&s.url("/v1/directory/search?q=dup&limit=5"));
    assert_eq!(status, 200);
    assert_eq!(ct, "application/json");
    assert!(body["total"].as_u64().unwrap() >= 5, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    for e in results {
        assert!(e["address"].as_str().unwrap().contains('@'));
        assert!(e["bal_type"].is_string());
    }
    assert!(body["next_cursor"].is_string());
}

#[test]
fn paging_by_cursor_is_complete_and_without_repeats() {
    let s = server();
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut total = None;
    for _ in 0..200 {
        let mut url = s.url("/v1/directory/search?q=ma&limit=7");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, _, body) = json(&url);
        assert_eq!(status, 200, "{body}");
        let t = body["total"].as_u64().unwrap();
        assert_eq!(*total.get_or_insert(t), t, "total changed between pages");
        for e in body["results"].as_array().unwrap() {
            assert!(
                seen.insert(e["address"].as_str().unwrap().to_string()),
                "repeated {}",
                e["address"]
            );
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen.len() as u64,
        total.unwrap(),
        "pages must add up to the total"
    );
    assert!(seen.len() > 7, "more than one page expected");
}

#[test]
fn autocomplete_payload_and_entry_lookup() {
    let s = server();
    let (status, _, body) = json(&s.url("/v1/directory/autocomplete?q=dup&limit=5"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["query"], "dup");
    let suggestions = body["suggestions"].as_array().unwrap();
    assert!(!suggestions.is_empty());
    let first = &suggestions[0];
    for field in ["address", "label", "bal_type", "highlights"] {
        assert!(!first[field].is_null(), "{field} missing in {first}");
    }
    let label: Vec<char> = first["label"].as_str().unwrap().chars().collect();
    let [start, end] = [0, 1].map(|i| first["highlights"][0][i].as_u64().unwrap() as usize);
    let marked: String = label[start..end].iter().collect();
    assert!(
        marked.to_lowercase().starts_with("dup"),
        "highlight {marked:?} of {label:?}"
    );

    let address = first["address"].as_str().unwrap();
    let (status, _, entry) = json(&s.url(&format!("/v1/directory/entries/{address}")));
    assert_eq!(status, 200);
    assert_eq!(entry["address"], address);
    // the domain is case-insensitive
    let (local, domain) = address.split_once('@').unwrap();
    let (status, _, _) = json(&s.url(&format!(
        "/v1/directory/entries/{local}@{}",
        domain.to_uppercase()
    )));
    assert_eq!(status, 200);

    let p = problem(
        &s.url("/v1/directory/entries/nobody@nowhere.mssante.fr"),
        404,
    );
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("nobody@nowhere.mssante.fr")
    );
    let p = problem(&s.url("/v1/directory/entries/not-an-address"), 400);
    assert_eq!(p["invalid-params"][0]["name"], "address");
    // nothing typed: nothing suggested
    let (_, _, body) = json(&s.url("/v1/directory/autocomplete?q="));
    assert_eq!(body["suggestions"].as_array().unwrap().len(), 0);
}

#[test]
fn bad_input_is_problem_json_naming_the_parameter() {
    let s = server();
    let cases = [
        ("/v1/directory/search?q=a&limit=0", "limit"),
        ("/v1/directory/search?q=a&limit=101", "limit"),
        ("/v1/directory/search?q=a&limit=ten", "limit"),
        ("/v1/directory/search?q=a&colour=blue", "colour"),
        ("/v1/directory/search?q=a&q=b", "q"),
        ("/v1/directory/search?type=XYZ", "type"),
        ("/v1/directory/search?dept=20", "dept"),
        ("/v1/directory/search?postal_code=750", "postal_code"),
        ("/v1/directory/search?profession=1%200", "profession"),
        ("/v1/directory/search?q=dup&cursor=garbage", "cursor"),
        (
            "/v1/directory/search?q=dup&cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "cursor",
        ),
        ("/v1/directory/autocomplete?q=dup&cursor=x", "cursor"),
        ("/v1/directory/autocomplete?q=%01", "q"),
    ];
    for (path, name) in cases {
        let p = problem(&s.url(path), 400);
        assert_eq!(p["invalid-params"][0]["name"], name, "{path}: {p}");
    }
    let long = "a".repeat(201);
    let p = problem(&s.url(&format!("/v1/directory/search?q={long}")), 400);
    assert_eq!(p["detail"], "q: is 201 characters long; at most 200");
    let p = problem(&s.url("/v1/nothing-here"), 404);
    assert_eq!(p["title"], "Not Found");
    let r = Client::new()
        .delete(s.url("/v1/directory/search"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // hostile queries never fail the server
    for q in [
        "*",
        ")(",
        "%00",
        "%22%22",
        "%5C",
        "(%7C(mail%3D*))",
        "%F0%9F%92%89",
        "a%20b%20c%20d%20e%20f%20g%20h",
    ] {
        let (status, _, body) = json(&s.url(&format!("/v1/directory/search?q={q}")));
        assert!(status == 200 || status == 400, "{q}: {status} {body}");
    }
}

#[test]
fn metrics_cors_and_openapi() {
    let clients_dir = tempfile::tempdir().unwrap();
    let clients = clients_dir.path().join("clients.toml");
    let key = common::add_client(&clients, "prometheus", &["metrics:read"]);
    let s = Server::start(
        &data_dir().join("data"),
        &[
            "--cors-origin",
            "https://lps.example.test",
            "--clients",
            clients.to_str().unwrap(),
        ],
    );
    json(&s.url("/v1/directory/search?q=dup"));
    json(&s.url("/v1/directory/search?q=dup&limit=0"));
    assert_eq!(get(s.url("/metrics")).unwrap().status(), 401);
    // scrapers send the key as a bearer token
    let text = Client::new()
        .get(s.url("/metrics"))
        .bearer_auth(&key)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        text.contains(
            r#"mss_http_requests_total{route="/v1/directory/search",method="GET",status="200"}"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"status="400""#), "{text}");
    assert!(
        text.contains("mss_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(text.contains("mss_index_entries 3000"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("mss_index_size_bytes ") && !l.ends_with(" 0")),
        "{text}"
    );

    let pre = Client::new()
        .request(
            reqwest::Method::OPTIONS,
            s.url("/v1/directory/autocomplete?q=a"),
        )
        .header("Origin", "https://lps.example.test")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .unwrap();
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "https://lps.example.test"
    );
    let other = Client::new()
        .get(s.url("/v1/directory/autocomplete?q=a"))
        .header("Origin", "https://evil.example.test")
        .send()
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let served = get(s.url("/openapi.json")).unwrap().text().unwrap();
    let doc: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/directory/autocomplete"]["get"].is_object());
    let kept =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/api/openapi.json")).unwrap();
    assert_eq!(
        served, kept,
        "api/openapi.json is stale: run `MSS_UPDATE_OPENAPI=1 cargo test -p mss-api`"
    );
}

#[test]
fn widget_page_and_script_are_served() {
    let s = server();
    let page = get(s.url("/")).unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().unwrap();
    assert!(html.contains(r#"<script src="/widget/mss-autocomplete.js" defer></script>"#));
    assert!(html.contains("<mss-address-input"));
    let js = get(s.url("/widget/mss-autocomplete.js")).unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(
        js.text()
            .unwrap()
            .contains(r#"customElements.define("mss-address-input""#)
    );
}

#[test]
fn first_start_builds_the_sample_and_sigterm_stops_gracefully() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::start(&tmp.path().join("fresh"), &[]);
    assert_eq!(
        get(s.url("/readyz")).unwrap().text().unwrap(),
        "ok: 20000 entries\n"
    );
    let status = s.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    let said: Vec<String> = s.stderr_lines.try_iter().collect();
    assert!(said.iter().any(|l| l.contains("shutting down")), "{said:?}");
}

#[test]
fn configuration_file_with_flag_precedence() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("mss.toml");
    let data = data_dir().join("data");
    std::fs::write(
        &conf,
        format!(
            "data = {:?}\nlisten = \"127.0.0.1:1\"\ncors_origins = [\"https://from-file.test\"]\n",
            data
        ),
    )
    .unwrap();
    // --listen 127.0.0.1:0 (given by Server::start) wins over the file's port 1; the file's data dir is used
    let mut child = common::mss()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            conf.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let base = loop {
        let line = lines.next().expect("mss serve exited").unwrap();
        if let Some(rest) = line.strip_prefix("mss: serving on ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_string();
        }
    };
    let ready = (0..200).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(25));
        get(format!("{base}/readyz"))
            .ok()
            .filter(|r| r.status() == 200)
            .map(|r| r.text().unwrap())
    });
    assert_eq!(ready.as_deref(), Some("ok: 3000 entries\n"));
    let r = Client::new()
        .get(format!("{base}/healthz"))
        .header("Origin", "https://from-file.test")
        .send()
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://from-file.test"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    std::fs::write(&conf, "colour = \"blue\"\n").unwrap();
    let out = common::mss()
        .args(["serve", "--config", conf.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::stderr(&out).contains("unknown field `colour`"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn the_shell_example_runs_against_the_service() {
    let s = server();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/directory/rest-calls.sh"
    );
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(&s.base)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("\"suggestions\""), "{text}");
    assert!(text.contains("\"results\""), "{text}");
    assert!(
        text.contains("limit: must be a whole number from 1 to 100, got `500`"),
        "{text}"
    );
}
