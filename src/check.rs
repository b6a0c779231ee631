//! `mss check`: the conformance checker (docs/mssante.md K1) over message files or stdin.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use mss_message::check::{CheckConfig, Finding, Severity, check_message};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The messages (.eml), or `-` for one message on stdin.
    #[arg(required = true, value_name = "FILE.eml")]
    pub files: Vec<PathBuf>,
    /// One JSON object per file: {"file", "errors", "warnings", "findings": [{rule, severity, where,
    /// message}]}.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub trust: crate::whitelist::TrustArgs,
}

pub fn check(data_dir: &Path, args: CheckArgs) -> Result<()> {
    if args.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        // a usage error, answered as clap answers the others (exit status 2)
        clap::Error::raw(
            clap::error::ErrorKind::ArgumentConflict,
            "stdin (-) can be read only once\n",
        )
        .exit();
    }
    let cfg = CheckConfig {
        trust: args.trust.trust(data_dir)?,
        ..CheckConfig::default()
    };
    let mut stdout = std::io::stdout().lock();
    let mut failed = 0usize;
    for file in &args.files {
        let raw = read(file)?;
        let findings = check_message(&raw, &cfg);
        let errors = count(&findings, Severity::Error);
        let warnings = count(&findings, Severity::Warning);
        if errors > 0 {
            failed += 1;
        }
        let name = file.display().to_string();
        if args.json {
            let line = FileReport {
                file: &name,
                errors,
                warnings,
                findings: &findings,
            };
            writeln!(stdout, "{}", serde_json::to_string(&line)?)?;
        } else {
            print_human(&mut stdout, &name, &findings, errors, warnings)?;
        }
    }
    stdout.flush()?;
    if failed > 0 {
        bail!("{failed} of {} message(s) not conformant", args.files.len());
    }
    Ok(())
}

/// One line of `--json`, its fields in this order.
#[derive(serde::Serialize)]
struct FileReport<'a> {
    file: &'a str,
    errors: usize,
    warnings: usize,
    findings: &'a [Finding],
}

fn read(file: &Path) -> Result<Vec<u8>> {
    let mut raw = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut raw)
            .context("reading the message from stdin")?;
    } else {
        raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    }
    Ok(raw)
}

fn count(findings: &[Finding], severity: Severity) -> usize {
    findings.iter().filter(|f| f.severity == severity).count()
}

fn print_human(
    out: &mut impl Write,
    name: &str,
    findings: &[Finding],
    errors: usize,
    warnings: usize,
) -> Result<()> {
    let verdict = if errors > 0 {
        "not conformant"
    } else {
        "conformant"
    };
    writeln!(
        out,
        "{name}: {verdict} ({errors} error(s), {warnings} warning(s))"
    )?;
    for f in findings {
        writeln!(
            out,
            "  {:<7} {:<10} {}: {}",
            f.severity.to_string(),
            f.rule,
            f.place,
            f.message
        )?;
    }
    Ok(())
}
