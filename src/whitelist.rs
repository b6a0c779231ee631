//! `mss whitelist update` and the `--whitelist` options: which espace de confiance a command uses
//! (docs/mssante.md M8). The rule itself is `mss_message::Trust`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use mss_message::{Trust, Whitelist};

/// The whitelist a sending command uses: `--whitelist` if given, else the one installed in the data
/// directory, else only mssante.fr and its sub-domains.
#[derive(Debug, Args, Default)]
pub struct TrustArgs {
    /// National whitelist (listeblanchemssante.xml) instead of the one installed by `mss whitelist
    /// update`; senders and recipients outside it are refused.
    #[arg(long, requires = "whitelist_checksum", value_name = "XML")]
    pub whitelist: Option<PathBuf>,
    /// The whitelist's SHA-256 `checksum` file.
    #[arg(long, requires = "whitelist", value_name = "FILE")]
    pub whitelist_checksum: Option<PathBuf>,
}

impl TrustArgs {
    /// The espace de confiance of this run.
    pub fn trust(&self, data_dir: &Path) -> Result<Trust> {
        if let (Some(xml), Some(sum)) = (&self.whitelist, &self.whitelist_checksum) {
            return Ok(Trust::whitelist(Arc::new(Whitelist::from_files(xml, sum)?)));
        }
        installed(data_dir)
    }
}

/// The whitelist installed in `data_dir`, or the default rule (said once on stderr).
pub fn installed(data_dir: &Path) -> Result<Trust> {
    let trust = Trust::installed(data_dir)
        .with_context(|| format!("loading the whitelist installed in {}", data_dir.display()))?;
    if trust.current().is_none() {
        tracing::info!(
            "no national whitelist installed: only mssante.fr and its sub-domains may send and receive"
        );
    }
    Ok(trust)
}

#[derive(Debug, Subcommand)]
pub enum WhitelistCommand {
    /// Verify the national listeblanchemssante.xml against its checksum and install it into the data
    /// directory, where every command and `mss serve` use it.
    Update(UpdateArgs),
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// listeblanchemssante.xml (from ansforge/MSS-liste-blanche).
    #[arg(long, value_name = "XML")]
    pub xml: PathBuf,
    /// Its `checksum` file (SHA-256 hex).
    #[arg(long, value_name = "FILE")]
    pub checksum: PathBuf,
}

pub fn run(data_dir: &Path, command: WhitelistCommand) -> Result<()> {
    match command {
        WhitelistCommand::Update(args) => {
            let read =
                |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
            let xml = read(&args.xml)?;
            let sum = read(&args.checksum)?;
            let wl = mss_message::trust::install(data_dir, &xml, &String::from_utf8_lossy(&sum))?;
            eprintln!(
                "mss: whitelist of {} installed in {} ({} domains)",
                wl.generated_at(),
                data_dir.display(),
                wl.len()
            );
            Ok(())
        }
    }
}
