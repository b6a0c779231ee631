//! `mss`: the command-line face of mss. Argument parsing, wiring and progress bars only; the work is done by
//! the library crates (`mss-annuaire`, `mss-index`, `mss-api`).

mod audit;
mod batch;
mod check;
mod cli;
mod client;
mod compose;
mod config;
mod data;
mod directory;
mod fhir;
mod hl7;
mod inbox;
mod ldap;
mod lps;
mod outbox;
mod progress;
mod runtime;
mod sandbox;
mod schedule;
mod search;
mod serve;
mod whitelist;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version on stdout (exit 0) and usage errors on stderr (exit 2)
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_tracing(cli.verbose);
    // a panic's message may quote what was being parsed (a received message is health data): the location
    // is enough to report it, and parsers' panics on outside input are contained where they happen
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        eprintln!("mss: internal error (panic){at}; its message is withheld as it may quote data");
    }));
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // one line: the chain of causes, outermost first
            let reason = e
                .chain()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": ");
            eprintln!("mss: error: {reason}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,mss=info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MSS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // colours only for a person at a terminal, never in files or journald
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
