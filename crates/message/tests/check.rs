//! The conformance checker (docs/mssante.md K1): every rule broken by one message and kept by
//! another; every message mss composes passes.

mod common;

use mss_message::check::{CheckConfig, Finding, Severity, check_message, has_errors};
use mss_message::compose_with;

fn config() -> CheckConfig {
    CheckConfig {
        trust: mss_message::Trust::whitelist(common::whitelist()),
        ..CheckConfig::default()
    }
}

fn check(raw: &[u8]) -> Vec<Finding> {
    check_message(raw, &config())
}

#[test]
fn the_examples_pass() {
    for name in ["cda-to-professional.json", "patient-end-of-exchange.json"] {
        let m = compose_with(
            &common::example(name),
            &common::config(),
            &mut common::env(),
        )
        .expect("composes");
        let f = check(&m.raw);
        for x in &f {
            eprintln!("{name}: {x}");
        }
        assert!(!has_errors(&f), "{name}: {f:?}");
    }
    let _ = Severity::Error;
}
