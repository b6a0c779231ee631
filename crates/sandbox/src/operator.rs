//! Starting, serving and stopping the sandbox operator.
//!
//! [`start`] prepares the directory (PKI, PSC stand-in keys), launches the background process the caller
//! gives (the `mss` binary's `sandbox serve`), and returns once that process wrote the endpoints file.
//! [`serve`] is that process: it starts Dovecot and Postfix, the four fronts and the auto-responder, and
//! serves until SIGTERM. [`stop`] signals it, waits for it to remove its pid file, and removes the directory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::front::{self, Front, Recorder, Shared};
use crate::psc::{Psc, TokenValidator};
use crate::servers::{self, Internal};
use crate::{Error, Layout, Result, pki};

/// Default first port: the fronts take it and the next three, the internal servers the three after.
pub const DEFAULT_BASE_PORT: u16 = 12140;

/// How to start.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The sandbox directory (made).
    pub dir: std::path::PathBuf,
    /// First of the seven loopback ports.
    pub base_port: u16,
}

/// The test mailboxes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailboxes {
    /// A professional (PER, XOAUTH2).
    pub professional: String,
    /// An organisation (ORG, XOAUTH2).
    pub organisation: String,
    /// An application (APP, client certificate).
    pub application: String,
    /// A patient's Mon espace santé mailbox.
    pub patient: String,
}

/// The auto-responder's mailboxes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Responders {
    /// Answers with a VSM.
    pub vsm: String,
    /// Answers with a biology report.
    pub crbio: String,
}

/// What a vendor needs: the fronts as `host:port`, the PKI files, the mailboxes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// IMAP, PER/ORG front.
    pub imap: String,
    /// Submission, PER/ORG front.
    pub submission: String,
    /// IMAP, APP front.
    pub app_imap: String,
    /// Submission, APP front.
    pub app_submission: String,
    /// The CA of the fronts' certificate and of the client certificate.
    pub ca_file: String,
    /// The APP client certificate (PEM; a PKCS#12 without password is beside it as `client.p12`).
    pub client_cert: String,
    /// Its private key.
    pub client_key: String,
    /// The test mailboxes.
    pub mailboxes: Mailboxes,
    /// The auto-responder.
    pub responder: Responders,
}

#[derive(Debug, Serialize, Deserialize)]
struct Settings {
    base_port: u16,
}

impl Settings {
    fn ports(&self) -> [u16; 7] {
        let b = self.base_port;
        [b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6]
    }
    fn internal(&self) -> Internal {
        let p = self.ports();
        Internal {
            imap: p[4],
            lmtp: p[5],
            smtp: p[6],
        }
    }
}

/// Prepares `opts.dir` and launches `daemon` (which must run [`serve`] on the same directory) in the
/// background, detached from the caller's terminal; returns the endpoints once it serves.
pub fn start(opts: &StartOptions, mut daemon: Command) -> Result<Endpoints> {
    let layout = Layout::new(&opts.dir);
    if let Some(pid) = read_pid(&layout) {
        if alive(pid) {
            return Err(Error::AlreadyRunning(layout.dir.clone()));
        }
        // a sandbox that died without stopping: its servers may linger
        servers::stop_leftovers(&layout, pid);
        let _ = std::fs::remove_file(layout.pid());
        let _ = std::fs::remove_file(layout.endpoints());
    }
    servers::check_installed()?;
    let settings = Settings {
        base_port: opts.base_port,
    };
    if opts.base_port > u16::MAX - 7 {
        return Err(Error::Invalid(format!(
            "--base-port {}: too high",
            opts.base_port
        )));
    }
    for port in settings.ports() {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            return Err(Error::Invalid(format!(
                "port {port} of 127.0.0.1 is taken: choose another first port with --base-port (the sandbox uses seven from it)"
            )));
        }
    }
    std::fs::create_dir_all(&layout.dir)
        .map_err(Error::io(format!("creating {}", layout.dir.display())))?;
    pki::ensure(&layout.path("pki"))?;
    Psc::open_or_create(&layout.dir)?;
    let text = serde_json::to_string(&settings).unwrap_or_default();
    std::fs::write(layout.path("settings.json"), text)
        .map_err(Error::io("writing settings.json"))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.log())
        .map_err(Error::io(format!("opening {}", layout.log().display())))?;
    let log2 = log.try_clone().map_err(Error::io("opening the log"))?;
    use std::os::unix::process::CommandExt;
    let mut child = daemon
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(Error::io("starting the sandbox's background process"))?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(endpoints) = read_endpoints(&layout) {
            return Ok(endpoints);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(layout.log()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(Error::Start(format!(
                "the background process exited ({status}): {}",
                tail.join(" | ")
            )));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(Error::Start(format!(
                "not ready within 90 s; see {}",
                layout.log().display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The endpoints of the sandbox running from `dir`.
pub fn endpoints(dir: &Path) -> Result<Endpoints> {
    read_endpoints(&Layout::new(dir))
}

fn read_endpoints(layout: &Layout) -> Result<Endpoints> {
    let text = std::fs::read_to_string(layout.endpoints())
        .map_err(|_| Error::NotRunning(layout.dir.clone()))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Invalid(format!("{}: {e}", layout.endpoints().display())))
}

/// The background process: serves until SIGTERM or SIGINT, then stops everything it started.
pub async fn serve(dir: &Path) -> Result<()> {
    let layout = Layout::new(dir);
    let settings: Settings = std::fs::read_to_string(layout.path("settings.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| Error::NotRunning(layout.dir.clone()))?;
    let ports = settings.ports();
    let pki = pki::ensure(&layout.path("pki"))?;
    let tokens = TokenValidator::from_jwks_file(&layout.path("psc/jwks.json"))?;
    let (tls, app_tls) = front::tls_configs(&pki.server_cert, &pki.server_key, &pki.ca)?;
    let backend_secret = backend_secret()?;
    let internal = settings.internal();
    let servers = {
        let layout = layout.clone();
        let secret = backend_secret.clone();
        tokio::task::spawn_blocking(move || servers::start(&layout, internal, &secret))
            .await
            .map_err(|e| Error::Start(format!("starting the servers: {e}")))??
    };
    let shared = Arc::new(Shared {
        tokens,
        tls,
        app_tls,
        backend_imap: internal.imap,
        backend_smtp: internal.smtp,
        backend_secret,
        recorder: Recorder::open(&layout.connections())?,
    });
    let mut tasks = Vec::new();
    for (front, port) in [
        (Front::Imap, ports[0]),
        (Front::Submission, ports[1]),
        (Front::AppImap, ports[2]),
        (Front::AppSubmission, ports[3]),
    ] {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                servers.stop();
                return Err(Error::Start(format!("port {port}: {e}")));
            }
        };
        tasks.push(tokio::spawn(front::serve(listener, front, shared.clone())));
    }
    tasks.push(tokio::spawn(crate::responder::run(layout.clone())));
    let host = |p: u16| format!("127.0.0.1:{p}");
    let endpoints = Endpoints {
        imap: host(ports[0]),
        submission: host(ports[1]),
        app_imap: host(ports[2]),
        app_submission: host(ports[3]),
        ca_file: pki.ca.display().to_string(),
        client_cert: pki.client_cert.display().to_string(),
        client_key: pki.client_key.display().to_string(),
        mailboxes: crate::mailboxes(),
        responder: crate::responders(),
    };
    std::fs::write(layout.pid(), std::process::id().to_string())
        .map_err(Error::io("writing the pid file"))?;
    let tmp = layout.path("sandbox.json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(&endpoints).unwrap_or_default(),
    )
    .and_then(|()| std::fs::rename(&tmp, layout.endpoints()))
    .map_err(Error::io("writing sandbox.json"))?;
    tracing::info!(dir = %layout.dir.display(), "sandbox ready");

    wait_for_signal().await;
    tracing::info!("stopping");
    let _ = std::fs::remove_file(layout.endpoints());
    for t in &tasks {
        t.abort();
    }
    let _ = tokio::task::spawn_blocking(move || servers.stop()).await;
    let _ = std::fs::remove_file(layout.pid());
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn backend_secret() -> Result<String> {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Error::Crypto("no randomness".into()))?;
    Ok(mss_types::hex(&b))
}

/// Stops the sandbox running from `dir` and removes the directory (unless `keep_dir`: then only the
/// processes go, and the records stay for `report`).
pub fn stop(dir: &Path, keep_dir: bool) -> Result<()> {
    let layout = Layout::new(dir);
    let pid = read_pid(&layout).ok_or_else(|| Error::NotRunning(layout.dir.clone()))?;
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    // the process removes its pid file last (it may linger as a zombie of a parent that does not reap)
    while layout.pid().exists() && Instant::now() < deadline {
        if !alive(pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // whatever remains when the process died before stopping its servers
    servers::stop_leftovers(&layout, pid);
    if keep_dir {
        let _ = std::fs::remove_file(layout.pid());
        let _ = std::fs::remove_file(layout.endpoints());
        return Ok(());
    }
    std::fs::remove_dir_all(&layout.dir)
        .map_err(Error::io(format!("removing {}", layout.dir.display())))
}

fn read_pid(layout: &Layout) -> Option<rustix::process::Pid> {
    std::fs::read_to_string(layout.pid())
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw)
}

/// Whether the process runs (a zombie, which a parent that does not reap leaves behind, does not).
fn alive(pid: rustix::process::Pid) -> bool {
    if rustix::process::test_kill_process(pid).is_err() {
        return false;
    }
    let stat =
        std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())).unwrap_or_default();
    // the state follows the command name in parentheses
    !stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}
