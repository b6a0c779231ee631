//! Receiving benchmark: `cargo bench -p mss --bench inbox` (needs mbsync: package isync,
//! scripts/install-deps.sh).
//!
//! MSS_BENCH_INBOX_MESSAGES (default 10 000) XDM messages of about 60 KB (each an IHE_XDM carrying a CDA
//! of about 50 KB, composed like the batch benchmarks' letter) are delivered once into a mailbox of the
//! local operator's Dovecot (scripts/lps-operator.sh) over LMTP, in one session, then read out of
//! it by two clients, alternately (mss, mbsync, mss, mbsync), each time into an empty local store:
//! - the real `mss inbox sync` binary (`--retention keep`, the mailbox stays as it is): every message
//!   fetched, parsed, its archive's documents checked against METADATA.XML, written durably and committed
//!   to the inbox's SQLite store;
//! - mbsync (isync) pulling the same folder into a Maildir (its defaults: pipelined, fsync on).
//!
//! Both over the same IMAP endpoint and security: the operator's certificate-authenticated Dovecot (the
//! API LPS's APP mailboxes): STARTTLS with the same client certificate, then the login that Dovecot
//! accepts for it (mss: AUTHENTICATE PLAIN, mbsync: LOGIN). Printed: messages/s of each, the ratio
//! (goal: mss >= 1.0x mbsync, verification included) and each one's peak RSS (goal for mss: <= 200 MB
//! whatever the mailbox size) and CPU time, from /usr/bin/time. MSS_BENCH_INBOX_FETCH_SIZE=N passes
//! `--fetch-size N` to mss (default: its own, 500; MSS_BENCH_INBOX_FETCH_MB=M passes `--fetch-mb M`,
//! default 16). MSS_BENCH_INBOX_PERF=FILE records the first mss run with `perf record -g` into FILE.
//! Without the operator or mbsync it says so and exits.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mss_testing::lps::{Operator, operator};

mod common;

const MAILBOX: &str = "bench-inbox@sante.test";

fn main() {
    let n = std::env::var("MSS_BENCH_INBOX_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000usize);
    let Some(op) = operator() else {
        println!("SKIP: the test operator cannot run here (scripts/install-deps.sh)");
        return;
    };
    if Command::new("mbsync").arg("--version").output().is_err() {
        println!("SKIP: mbsync not installed (package isync, scripts/install-deps.sh)");
        return;
    }
    let time = Path::new("/usr/bin/time").exists();
    let messages = letters(n);
    let size = messages[0].len();
    println!(
        "inbox benchmark: {n} XDM messages of {} KB (CDA ~50 KB), {} cores, load average {}",
        size / 1024,
        std::thread::available_parallelism().map_or(1, |c| c.get()),
        load()
    );
    let start = Instant::now();
    deliver(op, &messages);
    println!(
        "  mailbox filled over LMTP in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    drop(messages);

    let work = tempfile::tempdir().expect("tempdir");
    let mut mss_runs = Vec::new();
    let mut mbsync_runs = Vec::new();
    for round in 0..2 {
        settle();
        let r = mss(op, work.path(), round, n, time);
        println!("{}", r.line());
        mss_runs.push(r);
        settle();
        let r = mbsync(op, work.path(), round, n, time);
        println!("{}", r.line());
        mbsync_runs.push(r);
    }
    let best = |runs: &[Run]| runs.iter().map(Run::rate).fold(0.0, f64::max);
    let ratio = best(&mss_runs) / best(&mbsync_runs);
    println!(
        "goal: mss >= 1.0x mbsync (best of 2 each, verification included): {ratio:.3}x -> {}",
        if ratio >= 1.0 { "met" } else { "NOT met" }
    );
    if let Some(peak) = mss_runs.iter().filter_map(|r| r.peak_kb).max() {
        let mb = peak as f64 / 1024.0;
        println!(
            "goal: mss peak RSS <= 200 MB: {mb:.0} MB -> {}",
            if mb <= 200.0 { "met" } else { "NOT met" }
        );
    }
}

struct Run {
    name: &'static str,
    n: usize,
    took: Duration,
    /// Peak RSS (KB) and user + system CPU seconds of the client process, from /usr/bin/time.
    peak_kb: Option<u64>,
    cpu: Option<f64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.n as f64 / self.took.as_secs_f64()
    }
    fn line(&self) -> String {
        let peak = self
            .peak_kb
            .map_or("?".to_owned(), |kb| format!("{:.0} MB", kb as f64 / 1024.0));
        let cpu = self.cpu.map_or("?".to_owned(), |c| format!("{c:.1} s"));
        format!(
            "{:<28} {:>7.1} msg/s ({:>6.1} s)   peak RSS {peak}, client CPU {cpu}",
            self.name,
            self.rate(),
            self.took.as_secs_f64()
        )
    }
}

/// `n` copies of the batch benchmarks' XDM letter to [`MAILBOX`], each with a Message-ID of its own (mss
/// keeps a Message-ID once).
fn letters(n: usize) -> Vec<Vec<u8>> {
    let mut req = common::letter();
    req["recipients"] = serde_json::json!({ "to": [MAILBOX] });
    let req: mss_message::ComposeRequest = serde_json::from_value(req).expect("request");
    let m = mss_message::compose(&req, &common::compose_config()).expect("compose");
    let header = format!("Message-ID: <{}>", m.message_id);
    let text = String::from_utf8(m.raw).expect("composed messages are ASCII");
    assert!(text.contains(&header), "Message-ID header");
    (0..n)
        .map(|i| {
            let id = format!("Message-ID: <inbox-bench.{i}.{}>", m.message_id);
            text.replacen(&header, &id, 1).into_bytes()
        })
        .collect()
}

/// Delivers every message into [`MAILBOX`] over the operator's LMTP (plain, loopback), one session, the
/// commands of each message pipelined (RFC 2033 requires PIPELINING).
fn deliver(op: &Operator, messages: &[Vec<u8>]) {
    let stream = TcpStream::connect(("127.0.0.1", op.port("LMTP_PORT"))).expect("lmtp");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, stream);
    let mut reply = |code: &str| {
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).expect("lmtp reply");
            assert!(
                line.starts_with(code),
                "LMTP: expected {code}, got {line:?}"
            );
            if line.as_bytes().get(3) != Some(&b'-') {
                return;
            }
        }
    };
    reply("220");
    writer
        .write_all(b"LHLO bench.sante.test\r\n")
        .expect("lhlo");
    writer.flush().expect("flush");
    reply("250");
    for raw in messages {
        write!(
            writer,
            "MAIL FROM:<alice@sante.test>\r\nRCPT TO:<{MAILBOX}>\r\nDATA\r\n"
        )
        .expect("envelope");
        writer.flush().expect("flush");
        reply("250");
        reply("250");
        reply("354");
        for line in raw.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                writer.write_all(b".").expect("dot");
            }
            writer.write_all(line).expect("data");
        }
        if !raw.ends_with(b"\n") {
            writer.write_all(b"\r\n").expect("eol");
        }
        writer.write_all(b".\r\n").expect("end of data");
        writer.flush().expect("flush");
        reply("250");
    }
    writer.write_all(b"QUIT\r\n").expect("quit");
    writer.flush().expect("flush");
}

/// What [`timed`] measured: wall time, peak RSS (KB), CPU seconds, standard output.
type Timed = (Duration, Option<u64>, Option<f64>, String);

/// Runs `cmd` under /usr/bin/time (when there) for its peak RSS and CPU time, and under `perf record`
/// writing `perf` when given; returns what it measured.
fn timed(mut cmd: Command, dir: &Path, time: bool, perf: Option<&str>) -> Timed {
    let rss = dir.join("peak-rss");
    let mut cmd = if time {
        let mut t = Command::new("/usr/bin/time");
        t.args(["-f", "%M %U %S", "-o"]).arg(&rss);
        if let Some(out) = perf {
            t.args(["perf", "record", "-g", "-o", out, "--"]);
        }
        t.arg(cmd.get_program());
        t.args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => t.env(k, v),
                None => t.env_remove(k),
            };
        }
        t
    } else {
        std::mem::replace(&mut cmd, Command::new("true"))
    };
    let start = Instant::now();
    let out = cmd.output().expect("run");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{:?}: {}{}",
        cmd.get_program(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let measured = std::fs::read_to_string(&rss).unwrap_or_default();
    let fields: Vec<&str> = measured
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let peak = fields.first().and_then(|f| f.parse().ok());
    let cpu = match (fields.get(1), fields.get(2)) {
        (Some(u), Some(s)) => u
            .parse::<f64>()
            .ok()
            .zip(s.parse::<f64>().ok())
            .map(|(u, s)| u + s),
        _ => None,
    };
    (
        took,
        peak,
        cpu,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn mss(op: &Operator, work: &Path, round: usize, n: usize, time: bool) -> Run {
    let dir = work.join(format!("mss-{round}"));
    std::fs::create_dir_all(&dir).expect("dir");
    let password = dir.join("p12-password");
    std::fs::write(&password, op.var("P12_PASSWORD")).expect("password");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mss"));
    cmd.env("MSS_CA_FILE", op.path("CA"))
        .env_remove("RUST_LOG")
        .arg("--data")
        .arg(dir.join("data"))
        .args(["inbox", "sync", "--from", MAILBOX, "--retention", "keep"])
        .arg("--cert")
        .arg(op.path("APP_P12"))
        .arg("--cert-password-file")
        .arg(&password)
        .args([
            "--server",
            &format!("localhost:{}", op.port("SUBMISSION_APP_PORT")),
            "--imap-server",
            &format!("localhost:{}", op.port("IMAP_APP_PORT")),
        ]);
    // MSS_BENCH_INBOX_FETCH_SIZE=N: mss's --fetch-size (messages per round trip and per commit)
    if let Ok(size) = std::env::var("MSS_BENCH_INBOX_FETCH_SIZE") {
        cmd.args(["--fetch-size", &size]);
    }
    // MSS_BENCH_INBOX_FETCH_MB=M: mss's --fetch-mb (bytes per round trip)
    if let Ok(mb) = std::env::var("MSS_BENCH_INBOX_FETCH_MB") {
        cmd.args(["--fetch-mb", &mb]);
    }
    // MSS_BENCH_INBOX_PERF=FILE: the first mss run under `perf record -g` (where the time goes)
    let perf = std::env::var("MSS_BENCH_INBOX_PERF").ok();
    let perf = perf.as_deref().filter(|_| round == 0 && time);
    let (took, peak_kb, cpu, out) = timed(cmd, &dir, time, perf);
    // every message new and none faulty: each archive was read and its documents matched METADATA.XML
    assert!(
        out.contains(&format!("inbox: {n} new (0 faulty)")),
        "mss inbox sync: {out}"
    );
    if round == 0 {
        verified(&dir.join("data"), n);
    }
    std::fs::remove_dir_all(&dir).expect("clean");
    Run {
        name: "mss inbox sync (verified)",
        n,
        took,
        peak_kb,
        cpu,
    }
}

/// What the first run kept, as `mss inbox list --json` shows it: `n` messages, each with its one document
/// read from the archive and no problem (a hash or size mismatch would be one).
fn verified(data: &Path, n: usize) {
    let out = Command::new(env!("CARGO_BIN_EXE_mss"))
        .arg("--data")
        .arg(data)
        .args(["inbox", "list", "--json"])
        .output()
        .expect("mss inbox list");
    assert!(out.status.success(), "mss inbox list");
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(rows.len(), n, "messages in the inbox");
    for row in &rows {
        assert_eq!(row["documents"], 1, "{row}");
        assert_eq!(row["problems"], serde_json::json!([]), "{row}");
    }
}

fn mbsync(op: &Operator, work: &Path, round: usize, n: usize, time: bool) -> Run {
    let dir = work.join(format!("mbsync-{round}"));
    let maildir = dir.join("mail");
    std::fs::create_dir_all(&maildir).expect("dir");
    let config = dir.join("mbsyncrc");
    let p = |k: &str| op.path(k).display().to_string();
    std::fs::write(
        &config,
        format!(
            "IMAPAccount operator\nHost localhost\nPort {port}\nUser {MAILBOX}\nPass unused\n\
             AuthMechs LOGIN\nSSLType STARTTLS\nSSLVersions TLSv1.2 TLSv1.3\n\
             CertificateFile {ca}\nClientCertificate {cert}\nClientKey {key}\n\n\
             IMAPStore far\nAccount operator\n\n\
             MaildirStore near\nPath {mail}/\nInbox {mail}/INBOX\n\n\
             Channel bench\nFar :far:INBOX\nNear :near:INBOX\nSync Pull\nCreate Near\nExpunge None\n\
             SyncState *\n",
            port = op.port("IMAP_APP_PORT"),
            ca = p("CA"),
            cert = p("APP_CERT"),
            key = p("APP_KEY"),
            mail = maildir.display(),
        ),
    )
    .expect("mbsyncrc");
    let mut cmd = Command::new("mbsync");
    cmd.arg("-q").arg("-c").arg(&config).arg("bench");
    let (took, peak_kb, cpu, _) = timed(cmd, &dir, time, None);
    let got = count_files(&maildir.join("INBOX"));
    assert_eq!(got, n, "mbsync: messages in the Maildir");
    std::fs::remove_dir_all(&dir).expect("clean");
    Run {
        name: "mbsync (isync)",
        n,
        took,
        peak_kb,
        cpu,
    }
}

fn count_files(maildir: &Path) -> usize {
    ["new", "cur"]
        .iter()
        .map(|d| {
            std::fs::read_dir(maildir.join(d))
                .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).count())
                .unwrap_or(0)
        })
        .sum()
}

/// Each run starts with the disk written out and the page cache dropped (root only), so that none pays for
/// what the one before it wrote, and each reads the mailbox from the disk (see benches/outbox.rs).
fn settle() {
    let synced = Command::new("sync").status().is_ok_and(|s| s.success());
    let dropped = std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    if !(synced && dropped) {
        println!("  (could not write out and drop the caches: a run may pay for an earlier one)");
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
