//! The LDAP source against a real OpenLDAP slapd (scripts/ldap-directory.sh): the national limits
//! (100 entries, 60 s per query), the project schema, 50 000 entries converted from `mss demo-data`.
//!
//! - the harvest through the 100-entry cap, interrupted then resumed, gives exactly the source file;
//! - an injection corpus never widens a name search, and never errs;
//! - size- and time-limited answers come back `partial`;
//! - a server that is down is a clear, typed error, and the REST search falls back to the local index;
//! - `mss serve --ldap-sync-every` harvests by itself, shows each run in `GET /v1/sources`, and goes on
//!   through an outage of the directory (its runs fail, then succeed again);
//! - entries gone from the directory leave the index only after a complete harvest;
//! - StartTLS, LDAPS and simple bind.
//!
//! The directories are started by the tests; without slapd they skip, except under CI (`CI` set), where
//! they fail.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::{Server, demo_file, import, stderr, stdout};
use mss_annuaire::ldap::{
    Filter, LdapClient, LdapConfig, Limit, Mapping, SearchQuery, Secret, refine_hint,
};
use mss_annuaire::{BalType, Entry, Error, Source, extraction};
use mss_index::{DirectoryIndex, SearchRequest};
use mss_testing::unavailable;
use serde_json::Value;

/// A running test directory, stopped when the test process exits (`--watch-pid`).
struct Directory {
    child: Child,
    vars: HashMap<String, String>,
    _tmp: Option<tempfile::TempDir>,
}

impl Directory {
    fn var(&self, k: &str) -> &str {
        self.vars
            .get(k)
            .map_or_else(|| panic!("{k} not printed"), String::as_str)
    }

    fn url(&self) -> &str {
        self.var("URL")
    }

    fn base(&self) -> &str {
        self.var("BASE")
    }

    fn config(&self) -> LdapConfig {
        LdapConfig::new(self.url(), self.base()).unwrap()
    }

    fn client(&self) -> LdapClient {
        LdapClient::new(self.config()).unwrap()
    }

    /// `ldapmodify`-family tool run as the directory's admin.
    fn admin(&self, tool: &str, args: &[&str], input: &str) {
        let mut child = Command::new(tool)
            .args(["-x", "-H", self.url(), "-D", self.var("ADMIN_DN"), "-y"])
            .arg(self.var("ADMIN_PASSWORD_FILE"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{tool}: {}", stderr(&out));
    }

    /// Stops slapd (the script then ends).
    fn kill_server(&mut self) {
        let _ = Command::new("kill")
            .arg(self.var("SLAPD_PID"))
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Directory {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// Starts `scripts/ldap-directory.sh` with `args`; `None` when slapd is not installed (outside CI).
fn start(args: &[&str]) -> Option<Directory> {
    let installed = Command::new("sh")
        .arg("-c")
        .arg("PATH=$PATH:/usr/sbin command -v slapd && command -v ldapsearch")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        unavailable("slapd or ldap-utils is not installed");
        return None;
    }
    let mut cmd = mss_testing::fixture_script("ldap-directory.sh");
    cmd.args(["--mss", env!("CARGO_BIN_EXE_mss")]);
    // Without `--dir`, the directory is a temp dir the script removes when it stops: a shared
    // directory lives in a static, never dropped, and its 300 MB would outlive every test run.
    let tmp = if args.contains(&"--dir") {
        None
    } else {
        let tmp = tempfile::tempdir().unwrap();
        cmd.arg("--dir").arg(tmp.path()).arg("--cleanup");
        Some(tmp)
    };
    match mss_testing::spawn_ready(cmd.args(args)) {
        Ok((child, vars)) => Some(Directory {
            child,
            vars,
            _tmp: tmp,
        }),
        Err((status, err)) if status.and_then(|s| s.code()) == Some(3) => {
            unavailable(err.trim());
            None
        }
        Err((status, err)) => panic!("scripts/ldap-directory.sh failed ({status:?}): {err}"),
    }
}

/// The 50 000-entry directory (with StartTLS and LDAPS), shared by the read-only tests.
fn national() -> Option<&'static Directory> {
    static DIR: OnceLock<Option<Directory>> = OnceLock::new();
    DIR.get_or_init(|| start(&["--entries", "50000", "--seed", "42", "--tls"]))
        .as_ref()
}

/// The source entries of a directory, as a harvest must give them back.
fn source_entries(d: &Directory) -> &'static HashMap<String, Entry> {
    static ENTRIES: OnceLock<HashMap<String, Entry>> = OnceLock::new();
    ENTRIES.get_or_init(|| read_extraction(Path::new(d.var("EXTRACTION"))))
}

fn read_extraction(path: &Path) -> HashMap<String, Entry> {
    extraction::read_path(path, |records| {
        let mut out = HashMap::new();
        for r in records {
            if let extraction::Record::Entry(e) = r? {
                out.insert(e.address.to_string(), comparable(*e));
            }
        }
        Ok::<_, Error>(out)
    })
    .unwrap()
}

/// An entry without what differs by nature between the sources: where it came from and its time stamp.
fn comparable(mut e: Entry) -> Entry {
    e.source = Source::Ldap;
    e.updated_at = None;
    e
}

fn index_entries(data: &Path) -> HashMap<String, Entry> {
    let index = DirectoryIndex::open(data).unwrap();
    let mut out = HashMap::new();
    let mut cursor = None;
    loop {
        let page = index
            .search(&SearchRequest {
                limit: 1000,
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

/// `mss` with the LDAP settings of the environment removed.
fn mss(args: &[&str]) -> Output {
    common::mss()
        .env_remove("MSS_LDAP_URL")
        .env_remove("MSS_LDAP_BASE")
        .env_remove("MSS_LDAP_BIND_DN")
        .env_remove("MSS_LDAP_PASSWORD")
        .env_remove("MSS_LDAP_MAPPING")
        .args(args)
        .output()
        .unwrap()
}

fn sync(data: &Path, d: &Directory, extra: &[&str]) -> Output {
    sync_from(data, d.url(), d.base(), extra)
}

fn sync_from(data: &Path, url: &str, base: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--data",
        data.to_str().unwrap(),
        "ldap-sync",
        "--url",
        url,
        "--base",
        base,
    ];
    args.extend_from_slice(extra);
    mss(&args)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn harvest_through_the_cap_gives_exactly_the_source_entries() {
    let Some(d) = national() else { return };
    assert_eq!(d.var("ENTRIES"), "50000");
    assert_eq!(d.var("SIZELIMIT"), "100");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // an interrupted first run (a query budget) leaves its progress behind...
    let first = sync(&data, d, &["--max-queries", "300"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("stopped after"),
        "{}",
        stdout(&first)
    );
    assert!(data.join("ldap-sync.state.json").is_file());
    let partial = index_entries(&data).len();
    assert!(partial > 0 && partial < 50_000, "{partial}");
    // ...and the next run resumes from it, to the end
    let second = sync(&data, d, &[]);
    let out = stdout(&second);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(out.contains("ldap-sync: complete: 50000 entries"), "{out}");
    assert!(out.contains("resumed"), "{out}");
    assert!(out.contains("the index holds 50000 entries"), "{out}");
    assert!(!data.join("ldap-sync.state.json").exists());
    assert!(!data.join("ldap-sync.state.json.seen").exists());
    // exactly the entries of the source file, field by field
    let expected = source_entries(d);
    let got: HashMap<String, Entry> = index_entries(&data)
        .into_iter()
        .map(|(a, e)| {
            assert_eq!(e.source, Source::Ldap);
            (a, comparable(e))
        })
        .collect();
    assert_eq!(got.len(), expected.len());
    for (address, e) in expected {
        assert_eq!(got.get(address), Some(e), "{address}");
    }
}

/// Hostile or odd search text: none may change the filter, widen the search, or fail.
const CORPUS: &[&str] = &[
    "*",
    "**",
    "*)(",
    ")(",
    "(",
    ")",
    "\\",
    "\\2a",
    "\\00",
    "\0",
    "a\0b",
    "(|(mail=*))",
    "*)(|(mail=*))",
    "martin)(|(sn=*",
    "*)(objectClass=*",
    "(&)",
    "(|)",
    "!",
    "(!(sn=x))",
    "sn=*",
    "=",
    "~=",
    ">=a",
    "m*n",
    "*artin",
    "%2a",
    "' OR '1'='1",
    "\u{202e}nitram",
    "Hélène",
    "ÉLODIE",
    "Ça",
    "名字",
    "\u{1F600}",
    "d\u{0301}",
    "l'hermite",
    "jean-pierre",
    "  ",
    "\t\n",
    "mar tin",
];

/// What the literal text allows: entries where every word starts a name attribute's value (case and
/// accents ignored: a bound at least as wide as the server's matching).
fn allowed(entries: &HashMap<String, Entry>, text: &str) -> usize {
    fn loose(s: &str) -> String {
        s.chars()
            .flat_map(char::to_lowercase)
            .map(|c| match c {
                'à' | 'â' | 'ä' => 'a',
                'é' | 'è' | 'ê' | 'ë' => 'e',
                'î' | 'ï' => 'i',
                'ô' | 'ö' => 'o',
                'ù' | 'û' | 'ü' => 'u',
                'ç' => 'c',
                c => c,
            })
            .filter(|c| *c != '\u{0301}')
            .collect()
    }
    let words: Vec<String> = text.split_whitespace().map(loose).collect();
    if words.is_empty() {
        return entries.len();
    }
    entries
        .values()
        .filter(|e| {
            let names: Vec<String> = [
                e.last_name.clone(),
                e.first_name.clone(),
                Some(e.display_name()),
            ]
            .into_iter()
            .flatten()
            .map(|n| loose(&n))
            .collect();
            words
                .iter()
                .all(|w| names.iter().any(|n| n.starts_with(w.as_str())))
        })
        .count()
}

#[test]
fn injection_corpus_never_widens_a_name_search() {
    let Some(d) = national() else { return };
    let entries = source_entries(d);
    let mut long = "a".repeat(5000);
    long.push(')');
    let mut corpus: Vec<String> = CORPUS.iter().map(|s| s.to_string()).collect();
    corpus.push(long);
    corpus.push("x ".repeat(200));
    corpus.push("(".repeat(300));
    assert!(corpus.len() >= 30);
    let client = Arc::new(d.client());
    let rt = runtime();
    let mut answered_something = false;
    for text in &corpus {
        let query = SearchQuery {
            text: text.clone(),
            limit: 100,
            ..SearchQuery::default()
        };
        let answer = rt
            .block_on(client.search(&query))
            .unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let bound = allowed(entries, text);
        assert!(
            answer.entries.len() <= bound,
            "{text:?}: {} results, the literal text allows {bound}",
            answer.entries.len()
        );
        for e in &answer.entries {
            assert!(entries.contains_key(e.address.as_str()));
        }
        if bound == 0 {
            assert!(
                answer.entries.is_empty() && answer.partial.is_none(),
                "{text:?}"
            );
        }
        answered_something |= !answer.entries.is_empty() && !text.trim().is_empty();
    }
    assert!(answered_something, "the corpus holds real names too");
    // the same through the CLI and REST: no result, no error
    for text in ["*", "*)(|(mail=*))", "\\2a"] {
        let out = mss(&[
            "search",
            "--source",
            "ldap",
            "--url",
            d.url(),
            "--json",
            text,
        ]);
        assert!(out.status.success(), "{text}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{text}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import(&data, &demo_file(tmp.path(), 200, 7, false));
    let server = Server::start(&data, &["--ldap-url", d.url(), "--ldap-base", d.base()]);
    for q in ["%2A", "%2A%29%28%7C%28mail%3D%2A%29%29", "%28", "%5C2a"] {
        let body: Value = reqwest::blocking::get(
            server.url(&format!("/v1/directory/search?source=ldap&q={q}&limit=100")),
        )
        .unwrap()
        .json()
        .unwrap();
        assert_eq!(body["source"], "ldap", "{q}: {body}");
        assert_eq!(body["total"], 0, "{q}: {body}");
        assert_eq!(body["partial"], false, "{q}: {body}");
    }
}

#[test]
fn size_and_time_limits_surface_as_partial() {
    let Some(d) = national() else { return };
    // everything: the server stops at its 100 entries
    let out = mss(&[
        "search",
        "--source",
        "ldap",
        "--url",
        d.url(),
        "--limit",
        "100",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(text.lines().filter(|l| l.contains('@')).count(), 100);
    assert!(text.contains("-- 100 results from"), "{text}");
    assert!(text.contains("(partial)"), "{text}");
    assert!(text.contains("add a word"), "{text}");
    let out = mss(&[
        "search",
        "--source",
        "ldap",
        "--url",
        d.url(),
        "--json",
        "ma",
    ]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), 10);
    assert!(stderr(&out).contains("mss: partial: "), "{}", stderr(&out));
    // a precise query is whole
    let entries = source_entries(d);
    let (e, q) = entries
        .values()
        .filter_map(|e| {
            Some((
                e,
                format!("{} {}", e.first_name.as_deref()?, e.last_name.as_deref()?),
            ))
        })
        .find(|(_, q)| allowed(entries, q) <= 5)
        .unwrap();
    let out = mss(&[
        "search",
        "--source",
        "ldap",
        "--url",
        d.url(),
        "--limit",
        "100",
        &q,
    ]);
    assert!(
        stdout(&out).contains(e.address.as_str()),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("partial"), "{}", stdout(&out));
    // REST: the same answer, flagged
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import(&data, &demo_file(tmp.path(), 200, 8, false));
    let server = Server::start(&data, &["--ldap-url", d.url(), "--ldap-base", d.base()]);
    let body: Value =
        reqwest::blocking::get(server.url("/v1/directory/search?source=ldap&q=ma&limit=100"))
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(body["source"], "ldap");
    assert_eq!(body["partial"], true);
    assert_eq!(body["total"], 100);
    assert!(body["hint"].as_str().unwrap().contains("narrow"), "{body}");
    let r = reqwest::blocking::get(server.url("/v1/directory/search?source=ldap&q=ma&cursor=x"))
        .unwrap();
    assert_eq!(r.status(), 400);
    // the time limit: 300 unindexed substring assertions over 50 000 entries take seconds; with a
    // 1-second limit the server stops and says so
    let slow = Filter::parse(&format!(
        "(|{})",
        (0..300)
            .map(|i| format!("(mssanteDeliveryLine=*zq{i}x*)"))
            .collect::<String>()
    ))
    .unwrap();
    let mut config = d.config();
    config.time_limit = Duration::from_secs(1);
    let client = LdapClient::new(config).unwrap();
    let page = runtime()
        .block_on(client.search_raw(&slow, &["mail".to_string()], 0))
        .unwrap();
    assert_eq!(page.limit, Some(Limit::Time));
    assert!(refine_hint(Limit::Time, 0).contains("time limit"));
}

#[test]
fn a_server_that_is_down_is_a_clear_error_and_rest_falls_back() {
    // a port nobody listens on
    let port = mss_testing::free_ports(1, 5);
    let url = format!("ldap://127.0.0.1:{port}");
    let client = LdapClient::new(LdapConfig::new(&url, "ou=bal,o=mssante,c=fr").unwrap()).unwrap();
    let err = runtime()
        .block_on(client.search(&SearchQuery {
            text: "martin".into(),
            ..SearchQuery::default()
        }))
        .unwrap_err();
    assert!(matches!(err, Error::LdapNetwork { .. }), "{err:?}");
    assert!(err.is_transient() && !err.is_permanent());
    assert!(err.to_string().contains("connection refused"), "{err}");
    // the CLI: one line, exit 1
    let out = mss(&["search", "--source", "ldap", "--url", &url, "martin"]);
    assert_eq!(out.status.code(), Some(1));
    let msg = stderr(&out);
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(
        msg.starts_with("mss: error: searching the LDAP directory: LDAP ldap://127.0.0.1:"),
        "{msg}"
    );
    assert!(msg.contains("connection refused"), "{msg}");
    let data_tmp = tempfile::tempdir().unwrap();
    let data = data_tmp.path().join("data");
    let out = sync_from(&data, &url, "ou=bal,o=mssante,c=fr", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("connection refused"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("run the same command again to resume"));
    // REST: the local index answers, saying so
    import(&data, &demo_file(data_tmp.path(), 500, 9, false));
    let server = Server::start(&data, &["--ldap-url", &url]);
    let body: Value =
        reqwest::blocking::get(server.url("/v1/directory/search?source=ldap&q=ma&limit=5"))
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(body["source"], "local", "{body}");
    assert_eq!(body["partial"], false);
    assert!(body["total"].as_u64().unwrap() > 0, "{body}");
    let warning = body["warning"].as_str().unwrap();
    assert!(
        warning.contains("did not answer") && warning.contains("local index"),
        "{warning}"
    );
    // no LDAP configured: source=ldap is a parameter error
    drop(server);
    let server = Server::start(&data, &[]);
    let r = reqwest::blocking::get(server.url("/v1/directory/search?source=ldap&q=ma")).unwrap();
    assert_eq!(r.status(), 400);
}

#[test]
fn the_service_survives_an_outage_of_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("slapd");
    let dir_s = dir.to_str().unwrap().to_string();
    let Some(mut d) = start(&["--dir", &dir_s, "--entries", "300", "--seed", "3"]) else {
        return;
    };
    let port = d.var("PORT").to_string();
    let data = tmp.path().join("data");
    import(&data, &demo_file(tmp.path(), 100, 4, false));
    let clients = tmp.path().join("clients.toml");
    let key = common::add_client(&clients, "ops", &["metrics:read"]);
    // the service harvests the directory itself, every second (anonymously, then bound)
    let (url, base) = (d.url().to_string(), d.base().to_string());
    let start_with = |bind: &[&str]| {
        let mut args = vec![
            "--ldap-url",
            &url,
            "--ldap-base",
            &base,
            "--ldap-sync-every",
            "1s",
            "--clients",
            clients.to_str().unwrap(),
        ];
        args.extend_from_slice(bind);
        Server::start(&data, &args).with_key(&key)
    };
    let server = start_with(&[]);
    // the last scheduled harvest of `server` once `outcome` (polled until a deadline), and the index's
    // size then
    let harvest_of = |server: &Server, outcome: &str| -> (Value, u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let v: Value = server
                .http
                .get(server.url("/v1/sources"))
                .send()
                .unwrap()
                .json()
                .unwrap();
            let ldap = v["sources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["source"] == "ldap")
                .unwrap()
                .clone();
            if ldap["schedule"]["last_attempt"]["outcome"] == outcome {
                return (ldap, v["entries"].as_u64().unwrap());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {outcome} harvest: {v:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let harvest = |outcome: &str| harvest_of(&server, outcome);
    let (ldap, entries) = harvest("ok");
    assert_eq!(entries, 400, "the harvest is served: {ldap:#}");
    assert_eq!(
        ldap["last"]["entries"], 300,
        "recorded with the index: {ldap:#}"
    );
    assert!(
        ldap["schedule"]["last_attempt"]["summary"]
            .as_str()
            .unwrap()
            .contains("300 entries"),
        "{ldap:#}"
    );
    let ask = || -> Value {
        reqwest::blocking::get(server.url("/v1/directory/search?source=ldap&q=m&limit=3"))
            .unwrap()
            .json()
            .unwrap()
    };
    assert_eq!(ask()["source"], "ldap");
    d.kill_server();
    let body = ask();
    assert_eq!(body["source"], "local", "{body}");
    assert!(body["warning"].is_string());
    // the service's harvests fail meanwhile, and say so; the index stays whole
    let (ldap, entries) = harvest("failed");
    assert_eq!(
        ldap["schedule"]["last_attempt"]["error_kind"], "transient",
        "{ldap:#}"
    );
    assert_eq!(entries, 400);
    // the directory comes back on the same port: the service reconnects
    let again = start(&[
        "--dir",
        &dir_s,
        "--port",
        &port,
        "--entries",
        "300",
        "--seed",
        "3",
    ]);
    let Some(restarted) = again else { return };
    assert_eq!(ask()["source"], "ldap", "reconnected");
    // and the next harvest succeeds, the failure kept for the ops team
    let (ldap, _) = harvest("ok");
    assert_eq!(
        ldap["schedule"]["last_error"]["outcome"], "failed",
        "{ldap:#}"
    );
    assert!(ldap["schedule"]["failed_runs"].as_u64().unwrap() >= 1);
    drop(server);
    // bound as the admin (of the directory as restarted: a new password)
    let admin = restarted.var("ADMIN_DN").to_string();
    let server = start_with(&[
        "--ldap-bind-dn",
        &admin,
        "--ldap-password-file",
        restarted.var("ADMIN_PASSWORD_FILE"),
    ]);
    harvest_of(&server, "ok");
    drop(server);
    // a refused bind: a permanent failure, the password in no error and no log line
    let wrong = tmp.path().join("wrong-password");
    std::fs::write(&wrong, "n0t-the-Passw0rd\n").unwrap();
    let server = start_with(&[
        "--ldap-bind-dn",
        &admin,
        "--ldap-password-file",
        wrong.to_str().unwrap(),
    ]);
    let (ldap, _) = harvest_of(&server, "failed");
    assert_eq!(
        ldap["schedule"]["last_attempt"]["error_kind"], "permanent",
        "{ldap:#}"
    );
    let logs: Vec<String> = server.stderr_lines.try_iter().collect();
    assert!(!ldap.to_string().contains("n0t-the-Passw0rd"));
    assert!(
        logs.iter().all(|l| !l.contains("n0t-the-Passw0rd")),
        "{logs:?}"
    );
}

#[test]
fn entries_leave_the_index_only_after_a_complete_harvest() {
    let Some(d) = start(&["--entries", "600", "--seed", "5"]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // the index also holds entries of the extraction: never touched by the harvest's clean-up
    import(&data, &demo_file(tmp.path(), 50, 99, false));
    let local: HashSet<String> = index_entries(&data).into_keys().collect();
    let out = sync(&data, &d, &["--concurrency", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("complete: 600 entries"),
        "{}",
        stdout(&out)
    );
    assert_eq!(index_entries(&data).len(), 650);
    // two mailboxes leave the directory, a red-listed one arrives
    let source = read_extraction(Path::new(d.var("EXTRACTION")));
    let mut gone: Vec<&String> = source.keys().collect();
    gone.sort();
    let gone = &gone[..2];
    let dns: String = gone
        .iter()
        .map(|a| format!("mail={a},{}\n", d.base()))
        .collect();
    d.admin("ldapdelete", &[], &dns);
    let red = format!(
        "dn: mail=secret@red.mssante.fr,{b}\nobjectClass: top\nobjectClass: mssanteBal\nmail: secret@red.mssante.fr\n\
         mssanteBalType: PER\nsn: Martin\ncn: Secret Martin\nmssanteRedListed: TRUE\n",
        b = d.base()
    );
    d.admin("ldapadd", &[], &red);
    // an incomplete harvest upserts but removes nothing
    let out = sync(&data, &d, &["--max-queries", "2"]);
    assert!(stdout(&out).contains("stopped after"), "{}", stdout(&out));
    let now = index_entries(&data);
    for a in gone {
        assert!(now.contains_key(*a), "{a} removed by an incomplete harvest");
    }
    // the complete one removes them, and only them
    let out = sync(&data, &d, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("2 removed"), "{}", stdout(&out));
    let now = index_entries(&data);
    assert_eq!(now.len(), 648);
    for a in gone {
        assert!(!now.contains_key(*a));
    }
    assert!(local.iter().all(|a| now.contains_key(a)));
    assert!(!now.contains_key("secret@red.mssante.fr"));
    // red-listed: never returned by a live search either
    let out = mss(&[
        "search",
        "--source",
        "ldap",
        "--url",
        d.url(),
        "--json",
        "secret",
    ]);
    assert_eq!(stdout(&out), "");
}

#[test]
fn starttls_ldaps_and_simple_bind() {
    let Some(d) = national() else { return };
    let ca = d.var("CA");
    let ldaps = d.var("LDAPS_URL");
    let search = |extra: &[&str]| {
        let mut args = vec!["search", "--source", "ldap", "--json", "--limit", "3"];
        args.extend_from_slice(extra);
        args.push("du");
        mss(&args)
    };
    for extra in [
        vec!["--url", d.url(), "--starttls", "--ca-file", ca],
        vec!["--url", ldaps, "--ca-file", ca],
    ] {
        let out = search(&extra);
        assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
        assert_eq!(stdout(&out).lines().count(), 3);
    }
    // a server certificate that the trusted CAs did not sign: refused, permanently
    let out = search(&["--url", ldaps]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("TLS: invalid peer certificate"),
        "{}",
        stderr(&out)
    );
    let mut config = LdapConfig::new(ldaps, d.base()).unwrap();
    config.ca_file = None;
    let err = runtime()
        .block_on(LdapClient::new(config).unwrap().connect())
        .unwrap_err();
    assert!(
        matches!(err, Error::LdapTls { .. }) && err.is_permanent(),
        "{err:?}"
    );
    // simple bind: the admin has no size limit
    let password = std::fs::read_to_string(d.var("ADMIN_PASSWORD_FILE")).unwrap();
    let out = mss(&[
        "search",
        "--source",
        "ldap",
        "--url",
        d.url(),
        "--bind-dn",
        d.var("ADMIN_DN"),
        "--password-file",
        d.var("ADMIN_PASSWORD_FILE"),
        "--limit",
        "2",
        "du",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = common::mss()
        .env("MSS_LDAP_PASSWORD", "not the password")
        .args(["search", "--source", "ldap", "--url", d.url(), "--bind-dn"])
        .arg(d.var("ADMIN_DN"))
        .arg("du")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let msg = stderr(&out);
    assert!(
        msg.contains("refused: invalid credentials (result code 49)"),
        "{msg}"
    );
    assert!(!msg.contains("not the password") && !msg.contains(password.trim()));
    let mut config = d.config();
    config.bind = mss_annuaire::ldap::Bind::Simple {
        dn: d.var("ADMIN_DN").into(),
        password: Secret::new("wrong"),
    };
    let err = runtime()
        .block_on(LdapClient::new(config).unwrap().connect())
        .unwrap_err();
    assert!(matches!(err, Error::LdapBind { code: 49, .. }) && err.is_permanent());
    assert!(!format!("{err:?}").contains("wrong"));
    // a mapping file changes what is read
    let tmp = tempfile::tempdir().unwrap();
    let mapping = tmp.path().join("mapping.toml");
    std::fs::write(&mapping, "[fields]\nfirst_name = \"\"\n").unwrap();
    let out = mss(&[
        "search",
        "--source",
        "ldap",
        "--url",
        d.url(),
        "--json",
        "--limit",
        "1",
        "--mapping",
        mapping.to_str().unwrap(),
        "dupont",
    ]);
    let e: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert!(e["first_name"].is_null(), "{e}");
    assert!(Mapping::load(&mapping).is_ok());
}

/// A directory of standard inetOrgPerson entries only (issue 18): no `mssanteBalType`, none of the
/// project schema's attributes.
const PLAIN_LDIF: &str = "\
dn: ou=bal,o=mssante,c=fr
objectClass: top
objectClass: organizationalUnit
ou: bal

dn: mail=anne.vasseur@medecin.mssante.fr,ou=bal,o=mssante,c=fr
objectClass: inetOrgPerson
mail: anne.vasseur@medecin.mssante.fr
cn: Anne Vasseur
sn: Vasseur
givenName: Anne
title: Médecin
l: Lyon
postalCode: 69003

dn: mail=paul.vasseur@infirmier.mssante.fr,ou=bal,o=mssante,c=fr
objectClass: inetOrgPerson
mail: paul.vasseur@infirmier.mssante.fr
cn: Paul Vasseur
sn: Vasseur
givenName: Paul
o: CHU de Nantes
l: Nantes
postalCode: 44093

dn: mail=marc.ledoux@medecin.mssante.fr,ou=bal,o=mssante,c=fr
objectClass: inetOrgPerson
mail: marc.ledoux@medecin.mssante.fr
cn: Marc Ledoux
sn: Ledoux
givenName: Marc

";

/// The warning a search or harvest of [`PLAIN_LDIF`] gives, once: `n` entries read.
fn plain_warning(n: usize, given: &str) -> String {
    format!(
        "{n} of {n} LDAP entries have no BAL type, {given}; mapped attributes no entry carries: \
         mssanteBalType (bal_type), mssantePersonIdType (person_id_type), mssantePersonId (person_id), \
         mssantePersonNationalId (person_national_id), mssanteOrganisationIdType (organisation_id_type), \
         mssanteOrganisationId (organisation_id), ou (service), personalTitle (civility), \
         mssanteProfessionCategoryCode (profession_category_code), mssanteProfessionCategoryLabel \
         (profession_category_label), mssanteProfessionCode (profession_code), mssanteSpecialityCode \
         (speciality_code), mssanteSpecialityLabel (speciality_label), mssanteDematerialisation \
         (dematerialisation), mssanteTradeName (organisation_trade_name), mssanteAddressComplement \
         (address_complement), postOfficeBox (address_distribution), mssanteStreetNumber (street_number), \
         mssanteStreetNumberComplement (street_number_complement), mssanteStreetType (street_type), street \
         (street_name), mssanteLocality (locality), mssanteDeliveryLine (delivery_line), mssanteDepartment \
         (department), co (country), mssanteRedListed (red_listed)"
    )
}

#[test]
fn a_directory_of_standard_attributes_only_is_read_and_says_what_it_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    let ldif = tmp.path().join("plain.ldif");
    std::fs::write(&ldif, PLAIN_LDIF).unwrap();
    let Some(d) = start(&["--ldif", ldif.to_str().unwrap()]) else {
        return;
    };
    // the live search returns the entries, typed from their names, and says once what they lack
    let answer = runtime()
        .block_on(d.client().search(&SearchQuery {
            text: "vasseur".into(),
            ..SearchQuery::default()
        }))
        .unwrap();
    let mut got: Vec<(String, BalType, Option<String>)> = answer
        .entries
        .iter()
        .map(|e| {
            (
                e.address.to_string(),
                e.bal_type,
                e.city().map(str::to_string),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "anne.vasseur@medecin.mssante.fr".into(),
                BalType::Per,
                Some("Lyon".into())
            ),
            (
                "paul.vasseur@infirmier.mssante.fr".into(),
                BalType::Per,
                Some("Nantes".into())
            ),
        ]
    );
    assert_eq!(answer.rejected, 0);
    let inferred = "inferred: PER for person names, ORG otherwise";
    assert_eq!(
        answer.warning.as_deref(),
        Some(plain_warning(2, inferred).as_str())
    );
    // the CLI prints it once, under the results
    let out = mss(&["search", "--source", "ldap", "--url", d.url(), "vasseur"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        text.lines().filter(|l| l.contains('@')).count(),
        2,
        "{text}"
    );
    assert_eq!(text.matches("have no BAL type").count(), 1, "{text}");
    assert!(
        text.contains(&format!("-- {}", plain_warning(2, inferred))),
        "{text}"
    );
    // the harvest collects every entry and warns once
    let data = tmp.path().join("data");
    let out = sync(&data, &d, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("ldap-sync: complete: 3 entries"),
        "{}",
        stdout(&out)
    );
    let log = stderr(&out);
    assert_eq!(log.matches("have no BAL type").count(), 1, "{log}");
    assert!(log.contains(&plain_warning(3, inferred)), "{log}");
    let indexed = index_entries(&data);
    let mut types: Vec<(&str, BalType)> = indexed
        .iter()
        .map(|(a, e)| (a.as_str(), e.bal_type))
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            ("anne.vasseur@medecin.mssante.fr", BalType::Per),
            ("marc.ledoux@medecin.mssante.fr", BalType::Per),
            ("paul.vasseur@infirmier.mssante.fr", BalType::Per),
        ]
    );
    // `bal_type_default` gives its type instead
    let mapping = tmp.path().join("mapping.toml");
    std::fs::write(&mapping, "bal_type_default = \"CAB\"\n").unwrap();
    let out = mss(&[
        "search",
        "--source",
        "ldap",
        "--url",
        d.url(),
        "--mapping",
        mapping.to_str().unwrap(),
        "--json",
        "ledoux",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let entry: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(entry["address"], "marc.ledoux@medecin.mssante.fr");
    assert_eq!(entry["bal_type"], "CAB");
    // Marc Ledoux alone has no title, organisation, postal code nor city either
    let alone = plain_warning(1, "given CAB (bal_type_default)")
        .replace(
            " mssanteSpecialityCode",
            " title (profession_label), mssanteSpecialityCode",
        )
        .replace(
            " mssanteTradeName",
            " o (organisation_name), mssanteTradeName",
        )
        .replace(
            " mssanteDepartment",
            " postalCode (postal_code), mssanteDepartment",
        )
        + ", l (city)";
    assert_eq!(stderr(&out).trim(), format!("mss: {alone}"));
}
