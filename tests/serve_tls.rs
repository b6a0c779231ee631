//! `mss serve` over TLS: the real binary with certificates of a throwaway PKI, called with a real HTTPS
//! client (reqwest, rustls); and the refusal of plain HTTP beyond loopback.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Server, mss, stderr};
use reqwest::blocking::Client;
use reqwest::tls::{Certificate, Identity, Version};

/// The throwaway PKI (made once per test binary), or `None` without openssl.
fn pki() -> Option<&'static Path> {
    static PKI: OnceLock<Option<PathBuf>> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-tls-pki");
        let _ = std::fs::remove_dir_all(&dir);
        mss_testing::test_pki(&dir)
    })
    .as_deref()
}

fn file(pki: &Path, name: &str) -> String {
    pki.join(name).to_str().unwrap().to_owned()
}

/// A data directory of its own (the service builds the sample index into it).
fn data(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("serve-tls")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An HTTPS client trusting only the test CA, presenting the certificate `identity` (`app`, `rogue-app`).
fn client(pki: &Path, identity: Option<&str>) -> reqwest::blocking::ClientBuilder {
    let ca = Certificate::from_pem(&std::fs::read(pki.join("ca.pem")).unwrap()).unwrap();
    let mut builder = Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10));
    if let Some(name) = identity {
        let mut pem = std::fs::read(pki.join(format!("{name}.key"))).unwrap();
        pem.extend(std::fs::read(pki.join(format!("{name}.pem"))).unwrap());
        builder = builder.identity(Identity::from_pem(&pem).unwrap());
    }
    builder
}

fn healthz(client: &Client, s: &Server) -> reqwest::Result<String> {
    client
        .get(s.url("/healthz"))
        .send()?
        .error_for_status()?
        .text()
}

/// Every stderr line the service wrote so far (waiting up to a second for more).
fn stderr_so_far(s: &Server) -> Vec<String> {
    let mut lines = Vec::new();
    while let Ok(line) = s.stderr_lines.recv_timeout(Duration::from_secs(1)) {
        lines.push(line);
    }
    lines
}

#[test]
fn https_with_tls_1_2_and_1_3_from_the_configuration_file_and_no_plain_http() {
    let Some(pki) = pki() else { return };
    let dir = data("https");
    let config = dir.join("mss.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            file(pki, "server.pem"),
            file(pki, "server.key")
        ),
    )
    .unwrap();
    let https = client(pki, None).build().unwrap();
    let mut s = Server::start_with(
        &dir.join("data"),
        &["--config", config.to_str().unwrap()],
        &https,
    );
    assert!(s.base.starts_with("https://127.0.0.1:"), "{}", s.base);
    assert_eq!(healthz(&https, &s).unwrap(), "ok\n");
    let tls12 = client(pki, None)
        .tls_version_max(Version::TLS_1_2)
        .build()
        .unwrap();
    assert_eq!(healthz(&tls12, &s).unwrap(), "ok\n", "TLS 1.2");
    let tls13 = client(pki, None)
        .tls_version_min(Version::TLS_1_3)
        .build()
        .unwrap();
    assert_eq!(healthz(&tls13, &s).unwrap(), "ok\n", "TLS 1.3");
    // a real route, not only the probe
    let search = https
        .get(s.url("/v1/directory/search?q=a&limit=1"))
        .send()
        .unwrap();
    assert_eq!(search.status(), 200);

    let plain = s.base.replacen("https://", "http://", 1);
    let refused = Client::new().get(format!("{plain}/healthz")).send();
    assert!(refused.is_err(), "plain HTTP answered: {refused:?}");
    // a client that does not trust the service's CA is refused by itself, and the service keeps serving
    assert!(Client::new().get(s.url("/healthz")).send().is_err());
    assert_eq!(healthz(&https, &s).unwrap(), "ok\n");

    let status = s.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        stderr_so_far(&s).iter().any(|l| l == "mss: stopped"),
        "graceful shutdown"
    );
}

#[test]
fn client_certificates_of_the_client_ca_only_and_their_subject_logged() {
    let Some(pki) = pki() else { return };
    let dir = data("client-ca");
    let clients = dir.join("clients.toml");
    let key = common::add_client(&clients, "labo", &["batches:read"]);
    let app = client(pki, Some("app")).build().unwrap();
    let s = Server::start_with(
        &dir.join("data"),
        &[
            "-v",
            "--tls-cert",
            &file(pki, "server.pem"),
            "--tls-key",
            &file(pki, "server.key"),
            "--client-ca",
            &file(pki, "ca.pem"),
            "--clients",
            clients.to_str().unwrap(),
        ],
        &app,
    );
    // the audit trail names the certificate's subject beside the key's client
    let r = app
        .get(s.url("/v1/batches/none"))
        .header("x-api-key", &key)
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    let trail = std::fs::read_to_string(dir.join("data/audit.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(trail.trim()).unwrap();
    assert_eq!(line["client"], "labo");
    let subject = line["certificate"].as_str().unwrap();
    assert!(
        subject.contains("O=LABORATOIRE TEST") && subject.contains("CN=labo.app.sante.test"),
        "{subject}"
    );
    assert_eq!(healthz(&app, &s).unwrap(), "ok\n");
    let logged = stderr_so_far(&s);
    assert!(
        logged
            .iter()
            .any(|l| l.contains("client certificate accepted")
                && l.contains("O=LABORATOIRE TEST")
                && l.contains("CN=labo.app.sante.test")),
        "{logged:#?}"
    );

    // the same subject, but from another CA
    let rogue = client(pki, Some("rogue-app")).build().unwrap();
    let refused = healthz(&rogue, &s);
    assert!(refused.is_err(), "rogue certificate accepted: {refused:?}");
    let anonymous = client(pki, None).build().unwrap();
    let refused = healthz(&anonymous, &s);
    assert!(refused.is_err(), "no certificate accepted: {refused:?}");
    assert!(
        !stderr_so_far(&s)
            .iter()
            .any(|l| l.contains("client certificate accepted")),
        "a refused client was named"
    );
    assert_eq!(healthz(&app, &s).unwrap(), "ok\n");
}

#[test]
fn unusable_tls_files_stop_the_start_naming_the_file() {
    let Some(pki) = pki() else { return };
    let dir = data("bad-files");
    let start = |cert: &str, key: &str| {
        let out = mss()
            .args(["--data", dir.join("data").to_str().unwrap()])
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--tls-cert", cert, "--tls-key", key])
            .output()
            .unwrap();
        assert!(!out.status.success(), "started with {cert} and {key}");
        let err = stderr(&out);
        assert!(!err.contains("serving on"), "{err}");
        err
    };
    let missing = file(pki, "missing.pem");
    let err = start(&missing, &file(pki, "server.key"));
    assert!(err.contains(&missing), "{err}");

    let not_a_key = file(pki, "ca.pem");
    let err = start(&file(pki, "server.pem"), &not_a_key);
    assert!(err.contains(&not_a_key), "{err}");

    let other_key = file(pki, "app.key");
    let err = start(&file(pki, "server.pem"), &other_key);
    assert!(err.contains(&other_key), "{err}");
    assert!(err.contains("does not match"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");

    // a certificate without its key is refused by the arguments
    let out = mss()
        .args(["--data", dir.join("data").to_str().unwrap()])
        .args(["serve", "--tls-cert", &file(pki, "server.pem")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--tls-key"), "{}", stderr(&out));
}

/// Starts `mss serve --listen 0.0.0.0:0` with `extra`; stops it as soon as it serves. Its stderr, and
/// whether it served.
fn beyond_loopback(extra: &[&str], env: &[(&str, &str)]) -> (Vec<String>, bool) {
    let dir = data(&format!("any-{}", extra.len() + env.len()));
    let mut child = mss()
        .args(["--data", dir.join("data").to_str().unwrap()])
        .args(["serve", "--listen", "0.0.0.0:0"])
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lines = Vec::new();
    let mut served = false;
    for line in BufReader::new(err).lines().map_while(Result::ok) {
        served = line.starts_with("mss: serving on http://0.0.0.0:");
        lines.push(line);
        if served || Instant::now() > deadline {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    (lines, served)
}

#[test]
fn plain_http_beyond_loopback_needs_insecure_http_and_is_warned_about() {
    let (err, served) = beyond_loopback(&[], &[]);
    assert!(!served, "{err:#?}");
    assert!(
        err.iter()
            .any(|l| l.contains("refusing to serve plain HTTP on 0.0.0.0:0")
                && l.contains("--insecure-http")),
        "{err:#?}"
    );

    let (err, served) = beyond_loopback(&["--insecure-http"], &[]);
    assert!(served, "{err:#?}");
    assert!(
        err.iter()
            .any(|l| l.starts_with("mss: warning: serving plain HTTP on 0.0.0.0:0")),
        "{err:#?}"
    );

    let (err, served) = beyond_loopback(&[], &[("MSS_INSECURE_HTTP", "true")]);
    assert!(served, "MSS_INSECURE_HTTP: {err:#?}");

    let config = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-tls-insecure.toml");
    std::fs::write(&config, "[server]\ninsecure_http = true\n").unwrap();
    let (err, served) = beyond_loopback(&["--config", config.to_str().unwrap()], &[]);
    assert!(served, "[server] insecure_http: {err:#?}");
}
