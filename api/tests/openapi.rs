//! `api/openapi.json` is the document the code generates: this test fails when they differ.
//! `MSS_UPDATE_OPENAPI=1 cargo test -p mss-api --test openapi` rewrites the file.

#[test]
fn openapi_file_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let generated = mss_api::openapi_json();
    if std::env::var_os("MSS_UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).expect("writing api/openapi.json");
    }
    let kept = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        kept == generated,
        "api/openapi.json differs from the code; run `MSS_UPDATE_OPENAPI=1 cargo test -p mss-api --test openapi` and commit it"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).expect("valid JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/directory/search",
        "/v1/directory/autocomplete",
        "/v1/directory/entries/{address}",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} not documented"
        );
    }
}
