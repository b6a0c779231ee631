//! Issue 17, docs/mssante.md M8: nothing leaves the espace de confiance from the command line, whitelist
//! installed or not; `mss whitelist update` installs only a verified list.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::path::Path;

use common::{install_whitelist, mss, stderr};

/// `mss compose` of the CDA example with its first recipient replaced by `to`, in the data dir `data`.
fn compose(data: &Path, dir: &Path, to: &str) -> (std::process::Output, bool) {
    let example = std::fs::read_to_string(format!(
        "{}/examples/compose/cda-to-professional.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&example).unwrap();
    v["recipients"]["to"][0] = to.into();
    let json = dir.join("req.json");
    std::fs::write(&json, v.to_string()).unwrap();
    let out = dir.join("out.eml");
    let _ = std::fs::remove_file(&out);
    let o = mss()
        .args(["--data", data.to_str().unwrap(), "compose", "--nil", "DEV1"])
        .args([
            "--json",
            json.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    (o, out.exists())
}

/// `mss send` of a ready message from `from` to `to`: refused before connecting (nothing listens on port 1).
fn send(data: &Path, dir: &Path, from: &str, to: &str) -> std::process::Output {
    let eml = dir.join("m.eml");
    std::fs::write(
        &eml,
        format!("From: {from}\r\nTo: {to}\r\nMessage-ID: <s@x>\r\nSubject: s\r\n\r\nhi\r\n"),
    )
    .unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "not-a-token").unwrap();
    mss()
        .args([
            "--data",
            data.to_str().unwrap(),
            "send",
            eml.to_str().unwrap(),
        ])
        .args(["--from", from, "--token-file", token.to_str().unwrap()])
        .args(["--server", "localhost:1"])
        .output()
        .unwrap()
}

/// `mss batch --no-send` of one ready message and one compose request to `to`.
fn batch(data: &Path, dir: &Path, from: &str, to: &str) -> std::process::Output {
    let items = dir.join("items");
    let _ = std::fs::remove_dir_all(&items);
    std::fs::create_dir_all(&items).unwrap();
    std::fs::write(
        items.join("a.eml"),
        format!("From: {from}\r\nTo: {to}\r\nMessage-ID: <b@x>\r\nSubject: s\r\n\r\nhi\r\n"),
    )
    .unwrap();
    let request = serde_json::json!({
        "sender": {"address": from, "type": "PER", "first_name": "A", "last_name": "B"},
        "recipients": {"to": [to]},
        "subject": "s",
        "body": {"text": "t"}
    });
    std::fs::write(items.join("b.json"), request.to_string()).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "not-a-token").unwrap();
    mss()
        .args([
            "--data",
            data.to_str().unwrap(),
            "batch",
            items.to_str().unwrap(),
        ])
        .args(["--from", from, "--token-file", token.to_str().unwrap()])
        .args(["--server", "localhost:1", "--nil", "DEV1", "--no-send"])
        .output()
        .unwrap()
}

#[test]
fn without_a_whitelist_only_mssante_fr_and_its_sub_domains_are_inside() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for to in [
        "x@gmail.com",
        "x@evilmssante.fr",
        "x@mssante.fr.example.com",
    ] {
        let (o, written) = compose(&data, dir.path(), to);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{to}: {e}");
        assert!(!written, "{to}: a message was written");
        assert!(
            e.contains(&format!("recipients.to[0]: {to}: domain"))
                && e.contains("outside the espace de confiance")
                && e.contains("mss whitelist update"),
            "{e}"
        );

        let o = send(&data, dir.path(), "alice@ch.mssante.fr", to);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert!(
            e.contains(&format!("recipients[0]: {to}: domain"))
                && e.contains("mss whitelist update"),
            "{e}"
        );

        let o = batch(&data, dir.path(), "alice@ch.mssante.fr", to);
        let e = stderr(&o);
        assert!(
            e.contains(&format!(
                "a.eml: refused: message.recipients[0]: {to}: domain"
            )) && e.contains(&format!(
                "b.json: refused: compose.recipients.to[0]: {to}: domain"
            )),
            "{e}"
        );
        assert!(e.contains("0 new item(s) in the outbox"), "{e}");
    }
    // a sender outside is refused too
    let e = stderr(&send(
        &data,
        dir.path(),
        "alice@sante.test",
        "bob@ch.mssante.fr",
    ));
    assert!(
        e.contains("sender: alice@sante.test: domain sante.test is outside"),
        "{e}"
    );
    // inside: patient.mssante.fr and any mssante.fr domain, whatever the case
    let (o, written) = compose(&data, dir.path(), "Dr.X@CH-Nord.MSSante.fr");
    assert!(o.status.success() && written, "{}", stderr(&o));
}

#[test]
fn an_installed_whitelist_is_used_by_default_and_only_its_domains_are_inside() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    install_whitelist(
        &data,
        &["sante.test", "medecin.mssante.fr", "chu-exemple.mssante.fr"],
    );
    let (o, written) = compose(&data, dir.path(), "bob@sante.test");
    assert!(o.status.success() && written, "{}", stderr(&o));
    for to in ["x@gmail.com", "x@unlisted.mssante.fr"] {
        let (o, written) = compose(&data, dir.path(), to);
        let e = stderr(&o);
        assert!(
            !written && e.contains("is not in the MSSanté whitelist"),
            "{e}"
        );
        let e = stderr(&send(&data, dir.path(), "alice@sante.test", to));
        assert!(e.contains(&format!("recipients[0]: {to}: domain")), "{e}");
        let e = stderr(&batch(&data, dir.path(), "alice@sante.test", to));
        assert!(
            e.contains("a.eml: refused: message.recipients[0]")
                && e.contains("b.json: refused: compose.recipients.to[0]"),
            "{e}"
        );
    }
    let e = stderr(&batch(
        &data,
        dir.path(),
        "alice@sante.test",
        "bob@sante.test",
    ));
    assert!(e.contains("2 new item(s) in the outbox"), "{e}");
}

#[test]
fn a_whitelist_whose_checksum_differs_installs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (xml, sum) = mss_testing::write_whitelist(&dir.path().join("src"), &["gmail.com"]);
    std::fs::write(
        &sum,
        format!("{}  listeblanchemssante.xml\n", "0".repeat(64)),
    )
    .unwrap();
    let o = mss()
        .args(["--data", data.to_str().unwrap(), "whitelist", "update"])
        .args([
            "--xml",
            xml.to_str().unwrap(),
            "--checksum",
            sum.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("file refused"), "{}", stderr(&o));
    assert!(!data.join("listeblanchemssante.xml").exists());
    let leftovers = std::fs::read_dir(&data).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "something was written in the data directory");
    // and the default rule still holds
    let (o, written) = compose(&data, dir.path(), "x@gmail.com");
    assert!(!written && stderr(&o).contains("outside the espace de confiance"));
}

/// A local HTTP server publishing a list of `gmail.com` (and the example's other domains) as the ANS does (`/lb/listeblanchemssante.xml` and
/// `/lb/checksum`), and the same list beside a wrong checksum (`/bad/…`). Returns its base URL and the XML.
fn publication_server() -> (String, Vec<u8>) {
    use axum::Router;
    use axum::routing::get;
    use sha2::Digest;
    let xml =
        mss_testing::whitelist_xml(&["gmail.com", "medecin.mssante.fr", "chu-exemple.mssante.fr"])
            .into_bytes();
    // the national file holds the bare hex digest, without a newline
    let good = mss_types::hex(&sha2::Sha256::digest(&xml));
    let bad = "0".repeat(64);
    let (x1, x2) = (xml.clone(), xml.clone());
    let app = Router::new()
        .route(
            "/lb/listeblanchemssante.xml",
            get(move || async move { x1 }),
        )
        .route("/lb/checksum", get(move || async move { good }))
        .route(
            "/bad/listeblanchemssante.xml",
            get(move || async move { x2 }),
        )
        .route("/bad/checksum", get(move || async move { bad }));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (base, xml)
}

fn update(data: &Path, args: &[&str]) -> std::process::Output {
    mss()
        .args(["--data", data.to_str().unwrap(), "whitelist", "update"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_whitelist_downloaded_with_its_checksum_is_installed() {
    let (base, xml) = publication_server();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = update(
        &data,
        &["--url", &format!("{base}/lb/listeblanchemssante.xml")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("(3 domains)"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(data.join("listeblanchemssante.xml")).unwrap(),
        xml
    );
    // now the listed domain is inside
    let (o, written) = compose(&data, dir.path(), "x@gmail.com");
    assert!(written, "{}", stderr(&o));

    // a checksum named apart
    let other = dir.path().join("other");
    let o = update(
        &other,
        &[
            "--url",
            &format!("{base}/bad/listeblanchemssante.xml"),
            "--checksum-url",
            &format!("{base}/lb/checksum"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(other.join("listeblanchemssante.xml")).unwrap(),
        xml
    );
}

#[test]
fn a_downloaded_whitelist_that_does_not_verify_installs_nothing() {
    let (base, _) = publication_server();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = update(
        &data,
        &["--url", &format!("{base}/bad/listeblanchemssante.xml")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("file refused"), "{}", stderr(&o));
    let leftovers = std::fs::read_dir(&data).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "something was written in the data directory");

    let missing = format!("{base}/nowhere/listeblanchemssante.xml");
    let o = update(&data, &["--url", &missing]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("mss: error: downloading the whitelist: {missing}: HTTP 404 Not Found\n")
    );
    // the list over plain HTTP from elsewhere than loopback could be swapped with its checksum
    let o = update(
        &data,
        &["--url", "http://example.com/listeblanchemssante.xml"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "mss: error: http://example.com/listeblanchemssante.xml: only https:// is accepted \
         (http:// only to a loopback address)\n"
    );
    assert!(!data.join("listeblanchemssante.xml").exists());
}
