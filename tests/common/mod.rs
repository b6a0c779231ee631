//! Helpers of the end-to-end tests: run the real `mss` binary, start `mss serve` on an ephemeral port.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `mss` binary built for these tests.
pub fn mss() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mss"));
    cmd.env_remove("MSS_DATA")
        .env_remove("MSS_LISTEN")
        .env_remove("MSS_CONFIG")
        .env_remove("MSS_CORS_ORIGINS")
        .env_remove("MSS_TLS_CERT")
        .env_remove("MSS_TLS_KEY")
        .env_remove("MSS_CLIENT_CA")
        .env_remove("MSS_INSECURE_HTTP");
    cmd
}

/// Runs `mss args...` and returns its output.
pub fn run(args: &[&str]) -> Output {
    mss().args(args).output().expect("running mss")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A directory for data shared by one test binary's tests. Such data lives in a static, never dropped,
/// so a temp dir would be left behind at every run: this one, under cargo's target tmp dir and named
/// for the fixture, is wiped and reused instead.
pub fn shared_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a shared test dir");
    dir
}

/// Writes a synthetic extraction of `count` entries and returns its path.
pub fn demo_file(dir: &Path, count: usize, seed: u64, faults: bool) -> PathBuf {
    let sub = dir.join(format!("demo-{count}-{seed}-{faults}"));
    std::fs::create_dir_all(&sub).expect("creating a temp dir");
    let path = sub.join("Extraction_Correspondance_MSSante_202611230800.txt");
    let count_s = count.to_string();
    let seed_s = seed.to_string();
    let mut args = vec!["demo-data", "--count", &count_s, "--seed", &seed_s, "--out"];
    let p = path.to_str().expect("utf-8 temp path");
    args.push(p);
    if faults {
        args.push("--faults");
    }
    let out = run(&args);
    assert!(out.status.success(), "demo-data failed: {}", stderr(&out));
    path
}

/// Imports `file` into `data`.
pub fn import(data: &Path, file: &Path) -> Output {
    let out = run(&[
        "--data",
        data.to_str().unwrap(),
        "import",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "import failed: {}", stderr(&out));
    out
}

/// A running `mss serve`, stopped (SIGTERM) when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub stderr_lines: mpsc::Receiver<String>,
    /// The HTTP client of the test: with a client key after [`Server::with_key`].
    pub http: reqwest::blocking::Client,
}

impl Server {
    /// Starts `mss serve` on 127.0.0.1:0 with `extra` arguments and waits until `/readyz` answers 200.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Server::start_with(data, extra, &reqwest::blocking::Client::new())
    }

    /// [`Server::start`] with a configuration file and a clients file, its HTTP client sending `key`.
    pub fn start_keyed(data: &Path, config: &Path, clients: &Path, key: &str) -> Server {
        let (config, clients) = (
            config.to_str().expect("utf-8"),
            clients.to_str().expect("utf-8"),
        );
        Server::start(data, &["--config", config, "--clients", clients]).with_key(key)
    }

    /// [`Server::start`], asking `/readyz` with `client` (an HTTPS client trusting the service's CA).
    pub fn start_with(data: &Path, extra: &[&str], client: &reqwest::blocking::Client) -> Server {
        // on an ephemeral loopback port unless `extra` says where
        let listen: &[&str] = if extra.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = mss()
            .args(["--data", data.to_str().unwrap(), "serve"])
            .args(listen)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting mss serve");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut base = None;
        let mut seen = Vec::new();
        while base.is_none() {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("mss serve did not start; stderr: {seen:?}"));
            if let Some(rest) = line.strip_prefix("mss: serving on ") {
                base = Some(
                    rest.split_whitespace()
                        .next()
                        .unwrap()
                        .trim_end_matches('/')
                        .to_string(),
                );
            }
            seen.push(line);
        }
        let server = Server {
            child,
            base: base.unwrap(),
            stderr_lines: rx,
            http: reqwest::blocking::Client::new(),
        };
        while Instant::now() < deadline {
            if let Ok(r) = client.get(server.url("/readyz")).send()
                && r.status() == 200
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("mss serve never became ready");
    }

    /// Sends `key` in `X-Api-Key` on every request of [`Server::http`].
    pub fn with_key(mut self, key: &str) -> Server {
        self.http = keyed_client(key);
        self
    }

    /// The body of `GET path` with the test's client (`/metrics`, as a scraper reads it).
    pub fn text(&self, path: &str) -> String {
        let response = self.http.get(self.url(path)).send().expect("request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.text().expect("body")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for mss") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "mss serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Installs, with `mss whitelist update`, a national whitelist listing `domains` into the data directory
/// `data` (docs/mssante.md M8): how the suites send to their test domains.
pub fn install_whitelist(data: &Path, domains: &[&str]) -> Output {
    let (xml, sum) = mss_testing::write_whitelist(&data.join("whitelist-source"), domains);
    let out = run(&[
        "--data",
        data.to_str().unwrap(),
        "whitelist",
        "update",
        "--xml",
        xml.to_str().unwrap(),
        "--checksum",
        sum.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "whitelist update: {}", stderr(&out));
    out
}

/// A data directory of this test binary whose whitelist lists the suites' test domains.
pub fn trusted_data() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let data = shared_dir("trusted-data");
        install_whitelist(&data, mss_testing::TEST_DOMAINS);
        data
    })
}

/// Adds a client to the clients file `clients` with the real `mss client add`; returns its key (the last
/// line of stdout).
pub fn add_client(clients: &Path, name: &str, scopes: &[&str]) -> String {
    let mut cmd = mss();
    cmd.args([
        "client",
        "add",
        name,
        "--clients",
        clients.to_str().unwrap(),
    ]);
    for s in scopes {
        cmd.args(["--scope", s]);
    }
    let out = cmd.output().expect("running mss client add");
    assert!(out.status.success(), "mss client add: {}", stderr(&out));
    stdout(&out).lines().last().expect("a key").to_string()
}

/// A blocking HTTP client sending `key` in `X-Api-Key` on every request.
pub fn keyed_client(key: &str) -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-api-key", key.parse().expect("a key is a header value"));
    reqwest::blocking::Client::builder()
        .default_headers(headers)
        .build()
        .expect("HTTP client")
}

/// The CDA example composed by `from` for `to` (an IHE_XDM letter asking for an MDN), with its CDA bytes.
pub fn xdm_letter(from: &str, to: &str, seed: u64) -> (mss_message::ComposedMessage, String) {
    let mut req: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/examples/compose/cda-to-professional.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("example"),
    )
    .expect("json");
    req["sender"]["address"] = from.into();
    req["recipients"] = serde_json::json!({ "to": [to] });
    let cda = req["documents"][0]["cda"]["text"]
        .as_str()
        .expect("cda")
        .to_owned();
    let req: mss_message::ComposeRequest = serde_json::from_value(req).expect("request");
    let mut cfg = mss_message::ComposeConfig::new("DEV935997");
    cfg.trust = mss_testing::trust(mss_testing::TEST_DOMAINS);
    let env = &mut mss_message::Env::fixed(time::OffsetDateTime::now_utc(), seed);
    (
        mss_message::compose_with(&req, &cfg, env).expect("compose"),
        cda,
    )
}

/// A name no other run uses (process id and time): batch ids, Message-IDs, mailboxes.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}{}x{nanos}", std::process::id())
}

/// A cheap random number below `max_ms` (no generator needed for kill moments).
pub fn jitter(max_ms: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u64::from(nanos.wrapping_mul(2_654_435_761) >> 8) % max_ms.max(1)
}

/// What a webhook receiver got, in order: each request's headers and body.
pub type Received = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// The LPS back-end's webhook receiver on loopback, served by `rt`, answering `status` to every POST on
/// `/hook`: its URL and what it got.
pub fn webhook_receiver(
    rt: &tokio::runtime::Runtime,
    status: axum::http::StatusCode,
) -> (String, Received) {
    let got = Received::default();
    let seen = std::sync::Arc::clone(&got);
    let url = rt.block_on(async move {
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let seen = std::sync::Arc::clone(&seen);
                    async move {
                        seen.lock().expect("lock").push((headers, body.to_vec()));
                        status
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    });
    (url, got)
}
