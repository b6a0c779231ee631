use super::*;

fn secret_client(name: &str, scopes: &[Scope]) -> NewClient {
    NewClient {
        name: name.into(),
        scopes: scopes.to_vec(),
        senders: vec![],
        publishable: false,
        origins: vec![],
    }
}

fn temp_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CLIENTS_FILE);
    (dir, path)
}

#[test]
fn the_file_holds_digests_never_a_key_and_is_private() {
    let (_dir, path) = temp_file();
    let key = ClientsFile::edit(&path, |f| {
        f.add(secret_client(
            "dpi",
            &[Scope::BatchesWrite, Scope::BatchesRead],
        ))
    })
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let secret_part = key.key.expose().rsplit('_').next().unwrap();
    assert!(!text.contains(secret_part), "{text}");
    assert!(text.contains(&format!("id = \"{}\"", key.id)), "{text}");
    assert!(text.contains("hash = \"sha256:"), "{text}");
    assert!(
        text.contains(r#"scopes = ["batches:write", "batches:read"]"#),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn a_key_is_accepted_until_revoked_and_every_other_key_is_refused_with_its_reason() {
    let (_dir, path) = temp_file();
    let key = ClientsFile::edit(&path, |f| {
        f.add(secret_client("dpi", &[Scope::BatchesRead]))
    })
    .unwrap();
    let clients = Clients::open(&path).unwrap();
    let registry = clients.current();
    let client = registry.authenticate(key.key.expose()).unwrap();
    assert_eq!(client.name, "dpi");
    assert!(client.allows(Scope::BatchesRead) && !client.allows(Scope::BatchesWrite));

    let text = key.key.expose();
    let last = text.chars().last().unwrap();
    let wrong = format!(
        "{}{}",
        &text[..text.len() - 1],
        if last == 'a' { 'b' } else { 'a' }
    );
    assert_eq!(
        registry.authenticate(&wrong).unwrap_err(),
        KeyRefusal::Wrong
    );
    let publishable_prefix = text.replacen("mss_sk_", "mss_pk_", 1);
    assert_eq!(
        registry.authenticate(&publishable_prefix).unwrap_err(),
        KeyRefusal::Wrong
    );
    let unknown = NewKey::generate(KeyKind::Secret).unwrap();
    assert_eq!(
        registry.authenticate(unknown.key.expose()).unwrap_err(),
        KeyRefusal::Unknown
    );
    assert_eq!(
        registry.authenticate("letmein").unwrap_err(),
        KeyRefusal::Malformed
    );

    let revoked = ClientsFile::edit(&path, |f| f.revoke(&key.id)).unwrap();
    assert_eq!(revoked, vec![key.id.clone()]);
    assert!(clients.refresh().unwrap());
    assert_eq!(
        clients.current().authenticate(text).unwrap_err(),
        KeyRefusal::Revoked
    );
    // revoking again changes nothing and says so
    assert_eq!(
        ClientsFile::edit(&path, |f| f.revoke("dpi")).unwrap(),
        Vec::<String>::new()
    );
    let e = ClientsFile::edit(&path, |f| f.revoke("nobody"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no client or key `nobody`"), "{e}");
}

#[test]
fn after_a_rotation_both_keys_work_until_the_old_one_is_revoked() {
    let (_dir, path) = temp_file();
    let old = ClientsFile::edit(&path, |f| {
        f.add(secret_client("lps", &[Scope::MessagesSend]))
    })
    .unwrap();
    let new = ClientsFile::edit(&path, |f| f.rotate("lps")).unwrap();
    assert_ne!(old.id, new.id);
    let clients = Clients::open(&path).unwrap();
    for k in [&old, &new] {
        assert_eq!(
            clients.current().authenticate(k.key.expose()).unwrap().name,
            "lps"
        );
    }
    ClientsFile::edit(&path, |f| f.revoke(&old.id)).unwrap();
    assert!(clients.refresh().unwrap());
    assert_eq!(
        clients
            .current()
            .authenticate(old.key.expose())
            .unwrap_err(),
        KeyRefusal::Revoked
    );
    assert_eq!(
        clients
            .current()
            .authenticate(new.key.expose())
            .unwrap()
            .name,
        "lps"
    );
    // nothing changed: no reload
    assert!(!clients.refresh().unwrap());
    let e = ClientsFile::edit(&path, |f| f.rotate("nobody"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no client or key `nobody`"), "{e}");
}

#[test]
fn adding_checks_every_argument_and_names_it() {
    let (_dir, path) = temp_file();
    let add = |c: NewClient| {
        ClientsFile::edit(&path, |f| f.add(c))
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    assert!(add(secret_client("dpi", &[])).starts_with("scope: give at least one --scope"));
    assert!(add(secret_client("a b", &[Scope::BatchesRead])).starts_with("name: "));
    let mut publishable = secret_client("widget", &[Scope::BatchesRead]);
    publishable.publishable = true;
    publishable.origins = vec!["https://dpi.example.fr".into()];
    assert!(add(publishable.clone()).contains("may only have directory:read, not batches:read"));
    publishable.scopes.clear();
    publishable.origins.clear();
    assert!(
        add(publishable.clone())
            .starts_with("origin: a publishable key needs at least one --origin")
    );
    let mut secret_with_origin = secret_client("dpi", &[Scope::BatchesRead]);
    secret_with_origin.origins = vec!["https://x.fr".into()];
    assert!(add(secret_with_origin).starts_with("origin: --origin binds publishable keys only"));
    ClientsFile::edit(&path, |f| {
        f.add(secret_client("dpi", &[Scope::BatchesRead]))
    })
    .unwrap();
    assert!(
        add(secret_client("dpi", &[Scope::BatchesRead]))
            .contains("client `dpi` exists; `mss client rotate dpi`")
    );
    assert_eq!(ClientsFile::load(&path).unwrap().clients().len(), 1);
}

#[test]
fn a_publishable_key_gets_directory_read_and_its_normalized_origins() {
    let (_dir, path) = temp_file();
    let key = ClientsFile::edit(&path, |f| {
        f.add(NewClient {
            name: "widget".into(),
            scopes: vec![],
            senders: vec![],
            publishable: true,
            origins: vec![
                "https://DPI.example.fr/".into(),
                "http://localhost:8081".into(),
            ],
        })
    })
    .unwrap();
    assert!(key.key.expose().starts_with("mss_pk_"));
    let clients = Clients::open(&path).unwrap();
    let registry = clients.current();
    let client = registry.authenticate(key.key.expose()).unwrap();
    assert_eq!(client.kind, KeyKind::Publishable);
    assert_eq!(
        client.scopes.iter().copied().collect::<Vec<_>>(),
        vec![Scope::DirectoryRead]
    );
    assert!(client.allows_origin("https://dpi.example.fr"));
    assert!(client.allows_origin("http://localhost:8081"));
    assert!(!client.allows_origin("https://evil.example.fr"));
    assert_eq!(
        registry.origins(),
        ["https://dpi.example.fr", "http://localhost:8081"]
    );
}

#[test]
fn origins_are_scheme_host_and_port_only() {
    use super::file::normalize_origin_for_tests as norm;
    assert_eq!(
        norm("https://App.Example.fr:8443/").unwrap(),
        "https://app.example.fr:8443"
    );
    for bad in [
        "app.example.fr",
        "ftp://x.fr",
        "https://x.fr/path",
        "https://u@x.fr",
        "https://x.fr:99999",
        "https://",
    ] {
        assert!(
            norm(bad).unwrap_err().to_string().starts_with("origin: "),
            "{bad}"
        );
    }
}

#[test]
fn senders_limit_the_mailboxes_a_client_may_use() {
    let (_dir, path) = temp_file();
    let allowed: MailAddress = "cardio@ch-exemple.mssante.fr".parse().unwrap();
    let key = ClientsFile::edit(&path, |f| {
        let mut c = secret_client("cardio", &[Scope::BatchesWrite]);
        c.senders = vec![allowed.clone()];
        f.add(c)
    })
    .unwrap();
    let clients = Clients::open(&path).unwrap();
    let client = clients.current().authenticate(key.key.expose()).unwrap();
    assert!(client.may_send_as(&allowed));
    assert!(!client.may_send_as(&"urgences@ch-exemple.mssante.fr".parse().unwrap()));
}

#[test]
fn last_use_is_kept_beside_the_file_and_survives_a_reload() {
    let (_dir, path) = temp_file();
    let key = ClientsFile::edit(&path, |f| {
        f.add(secret_client("dpi", &[Scope::BatchesRead]))
    })
    .unwrap();
    let clients = Clients::open(&path).unwrap();
    assert!(!clients.save_last_used().unwrap());
    clients.current().authenticate(key.key.expose()).unwrap();
    ClientsFile::edit(&path, |f| f.rotate("dpi")).unwrap();
    assert!(clients.refresh().unwrap());
    assert!(clients.save_last_used().unwrap());
    assert!(!clients.save_last_used().unwrap());
    let used = ClientsFile::load(&path).unwrap().last_used().unwrap();
    let when = used[&key.id];
    assert!((OffsetDateTime::now_utc() - when).whole_seconds().abs() < 60);
    assert_eq!(used.len(), 1);
}

#[test]
fn a_damaged_file_is_refused_naming_what_is_wrong_and_the_service_keeps_the_previous_keys() {
    let (_dir, path) = temp_file();
    let key = ClientsFile::edit(&path, |f| {
        f.add(secret_client("dpi", &[Scope::BatchesRead]))
    })
    .unwrap();
    let clients = Clients::open(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("batches:read", "batches:erase")).unwrap();
    let e = clients.refresh().unwrap_err().to_string();
    assert!(e.contains("unknown scope `batches:erase`"), "{e}");
    assert_eq!(
        clients
            .current()
            .authenticate(key.key.expose())
            .unwrap()
            .name,
        "dpi"
    );
    std::fs::write(
        &path,
        format!(
            "{text}\n{}",
            text.split("[[client]]")
                .nth(1)
                .map(|c| format!("[[client]]{c}"))
                .unwrap()
        ),
    )
    .unwrap();
    let e = ClientsFile::load(&path).unwrap_err().to_string();
    assert!(e.contains("client `dpi` appears twice"), "{e}");
}

#[test]
fn an_absent_file_means_no_client() {
    let (_dir, path) = temp_file();
    let clients = Clients::open(&path).unwrap();
    assert!(clients.current().is_empty());
    assert!(!clients.refresh().unwrap());
}
