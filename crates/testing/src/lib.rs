//! Test support shared by the workspace's tests, benchmarks and fuzz targets (a dev-dependency only, never
//! published): the fixture scripts of `scripts/` and how to start them, and with the `servers` feature (on by
//! default) the local API LPS operator with its PSC stand-in ([`lps`]) and a throwaway PostgreSQL
//! ([`postgres`]); [`fuzzing`] holds the bodies of the fuzz targets, which also run under proptest on stable.
//!
//! Not for production use: it starts processes and panics on failure.
#![allow(clippy::missing_panics_doc)]

#[cfg(feature = "servers")]
pub mod access;
pub mod fuzzing;
#[cfg(feature = "servers")]
pub mod lps;
#[cfg(feature = "servers")]
pub mod postgres;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The repository root (where `scripts/` is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The first of `count` consecutive loopback ports free now, below the kernel's ephemeral range (from
/// `ip_local_port_range`, 32768 by default): a port the kernel may hand out (`bind(0)`) can be taken by any
/// outgoing connection between this check and the server binding it, and a readiness probe connecting to
/// it before then may connect to itself. `salt` spreads concurrent callers.
pub fn free_ports(count: u16, salt: u32) -> u16 {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let (low, high) = (
        10_000u32,
        u32::from(ephemeral).saturating_sub(u32::from(count)),
    );
    let slots = high.saturating_sub(low) / u32::from(count.max(1));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id()
        ^ salt.wrapping_mul(2_654_435_761);
    for i in 0..200u32 {
        let slot = seed.wrapping_add(i.wrapping_mul(7_919)) % slots.max(1);
        let Ok(base) = u16::try_from(low + slot * u32::from(count.max(1))) else {
            continue;
        };
        if (0..count).all(|k| std::net::TcpListener::bind(("127.0.0.1", base + k)).is_ok()) {
            return base;
        }
    }
    panic!("no {count} free loopback ports below {ephemeral}");
}

/// Skips (prints why) outside CI, fails under CI.
pub fn unavailable(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("test server unavailable under CI: {why}");
    }
    eprintln!("SKIP: {why} (install with scripts/install-deps.sh)");
}

/// `bash scripts/NAME` with `--watch-pid` this process: the fixture stops when the test process exits,
/// however it ends. Add the script's own options, then start it with [`spawn_ready`].
pub fn fixture_script(name: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("scripts").join(name))
        .args(["--watch-pid", &std::process::id().to_string()]);
    cmd
}

/// A fixture script that said it is ready: the process, and the `KEY=VALUE` lines it printed before.
pub type Ready = (Child, HashMap<String, String>);

/// Starts a fixture script (`scripts/*.sh`: it prints `KEY=VALUE` lines then `READY` on stdout, and serves
/// until killed or until the process it watches exits) and waits for `READY`. Its stderr is drained in the
/// background, so a script that keeps logging never blocks on a full pipe. When it stops before `READY`:
/// its exit status and what it wrote on stderr.
pub fn spawn_ready(cmd: &mut Command) -> Result<Ready, (Option<std::process::ExitStatus>, String)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| (None, format!("cannot start: {e}")))?;
    let (err_tx, err_rx) = std::sync::mpsc::channel();
    if let Some(mut e) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
            let _ = err_tx.send(s);
        });
    }
    let mut vars = HashMap::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line == "READY" {
                return Ok((child, vars));
            }
            if let Some((k, v)) = line.split_once('=') {
                vars.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    let _ = child.kill();
    let status = child.wait().ok();
    // a daemon the script left behind may hold its stderr open: what came within a few seconds
    let err = err_rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    Err((status, err))
}

/// The test PKI of `scripts/lps-operator.sh --pki-only`, made in `dir/pki`: `ca` and `rogue-ca`, a `server`
/// certificate for localhost and 127.0.0.1, and client certificates `app` (of `ca`) and `rogue-app` (of
/// `rogue-ca`), each as `NAME.pem` and `NAME.key`. `None` (after saying why) when openssl is missing.
pub fn test_pki(dir: &Path) -> Option<PathBuf> {
    let made = Command::new("bash")
        .arg(repo_root().join("scripts/lps-operator.sh"))
        .args(["--pki-only", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        unavailable("openssl is needed for the test PKI");
        return None;
    }
    Some(dir.join("pki"))
}

/// The domains of the test suites' addresses: the whitelist the suites install, so that mail to the local
/// operator's test domains stays inside the espace de confiance (docs/mssante.md M8).
pub const TEST_DOMAINS: &[&str] = &[
    "sante.test",
    "mss.test",
    "batch.mss.test",
    "elsewhere.test",
    "mail.sante.test",
    "app.sante.test",
    "chu-exemple.mssante.fr",
    "medecin.mssante.fr",
    "labo-biologie-exemple.mssante.fr",
];

/// A national whitelist file (`listeblanchemssante.xml`, docs/mssante.md M8) listing `domains`.
pub fn whitelist_xml(domains: &[&str]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListeBlancheMSSante xmlns=\"https://listeblanche.mssante.fr/schema\">\n  <DateDeGeneration>2026-11-02T06:00:00Z</DateDeGeneration>\n  <ListeDomaines>\n",
    );
    for d in domains {
        xml.push_str(&format!(
            "    <Domaine><Nom>{d}</Nom><Description>test</Description><DNCertificatOperateur>CN=operator.test,O=Test,C=FR</DNCertificatOperateur><DateMAJ>2026-01-01T00:00:00Z</DateMAJ></Domaine>\n"
        ));
    }
    xml.push_str("  </ListeDomaines>\n</ListeBlancheMSSante>\n");
    xml
}

/// An espace de confiance made of a whitelist of `domains`.
pub fn trust(domains: &[&str]) -> mss_message::Trust {
    let wl = mss_message::Whitelist::parse(whitelist_xml(domains).as_bytes())
        .expect("the test whitelist parses");
    mss_message::Trust::whitelist(std::sync::Arc::new(wl))
}

/// Writes `listeblanchemssante.xml` listing `domains` and its `checksum` file into `dir`, as the national
/// list is published; returns their paths.
#[cfg(feature = "servers")]
pub fn write_whitelist(dir: &Path, domains: &[&str]) -> (PathBuf, PathBuf) {
    use sha2::Digest;
    let xml = whitelist_xml(domains);
    std::fs::create_dir_all(dir).expect("creating the whitelist dir");
    let x = dir.join("listeblanchemssante.xml");
    let c = dir.join("checksum");
    std::fs::write(&x, &xml).expect("writing the whitelist");
    let sum = mss_types::hex(&sha2::Sha256::digest(xml.as_bytes()));
    std::fs::write(&c, format!("{sum}  listeblanchemssante.xml\n")).expect("writing the checksum");
    (x, c)
}

/// Installs a whitelist of `domains` into the data directory `data`, as `mss whitelist update` does.
#[cfg(feature = "servers")]
pub fn install_whitelist(data: &Path, domains: &[&str]) {
    let src = data.join(".whitelist-source");
    let (x, c) = write_whitelist(&src, domains);
    let xml = std::fs::read(&x).expect("reading the whitelist");
    let sum = std::fs::read_to_string(&c).expect("reading the checksum");
    mss_message::trust::install(data, &xml, &sum).expect("installing the test whitelist");
}
