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
    #[arg(
        long,
        value_name = "XML",
        requires = "checksum",
        required_unless_present = "url"
    )]
    pub xml: Option<PathBuf>,
    /// Its `checksum` file (SHA-256 hex).
    #[arg(long, value_name = "FILE", requires = "xml")]
    pub checksum: Option<PathBuf>,
    /// Download the list instead (https://, or http:// to loopback); `--url` alone: the national
    /// publication, raw.githubusercontent.com/ansforge/MSS-liste-blanche/main/listeblanchemssante.xml.
    #[arg(
        long,
        value_name = "URL",
        num_args = 0..=1,
        default_missing_value = mss_message::whitelist::PUBLISHED_URL,
        conflicts_with = "xml"
    )]
    pub url: Option<String>,
    /// Where its checksum is [default: the file `checksum` beside the list].
    #[arg(long, value_name = "URL", requires = "url")]
    pub checksum_url: Option<String>,
}

/// The list is about 620 domains (a few hundred kilobytes): anything far larger is not it.
const MAX_XML_BYTES: u64 = 32 << 20;
/// A SHA-256 in hex, perhaps followed by the file's name.
const MAX_CHECKSUM_BYTES: u64 = 4096;

pub fn run(data_dir: &Path, command: WhitelistCommand) -> Result<()> {
    match command {
        WhitelistCommand::Update(args) => {
            let (xml, sum) = match (&args.url, &args.xml, &args.checksum) {
                (Some(url), _, _) => download(url, args.checksum_url.as_deref())?,
                (None, Some(xml), Some(checksum)) => {
                    let read = |p: &Path| {
                        std::fs::read(p).with_context(|| format!("reading {}", p.display()))
                    };
                    (read(xml)?, read(checksum)?)
                }
                _ => anyhow::bail!("give --xml FILE --checksum FILE, or --url"),
            };
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

/// The list at `url` and its checksum (at `checksum_url`, or beside the list).
fn download(url: &str, checksum_url: Option<&str>) -> Result<(Vec<u8>, Vec<u8>)> {
    use mss_annuaire::publication::{FetchConfig, fetch, sibling};
    let checksum_url = match checksum_url {
        Some(u) => u.to_string(),
        None => sibling(url, mss_message::whitelist::CHECKSUM_FILE)?,
    };
    let runtime = crate::runtime::current_thread()?;
    runtime.block_on(async {
        let xml = fetch(url, &FetchConfig::new(MAX_XML_BYTES))
            .await
            .context("downloading the whitelist")?;
        let sum = fetch(&checksum_url, &FetchConfig::new(MAX_CHECKSUM_BYTES))
            .await
            .context("downloading its checksum")?;
        Ok((xml, sum))
    })
}
