//! `mss compose`: a compose request (JSON) to a ready MSSanté message (.eml).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use mss_message::{ComposeConfig, ComposeRequest};

#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// The compose request (JSON, see examples/compose/), or `-` for stdin.
    #[arg(long, value_name = "REQUEST.json")]
    pub json: PathBuf,
    /// Where to write the message; written whole or not at all.
    #[arg(long, value_name = "FILE.eml")]
    pub out: PathBuf,
    /// Product reference (NIL) given at the product's declaration, sent as X-MSS-NIL.
    #[arg(long, env = "MSS_NIL", value_name = "REF")]
    pub nil: String,
    #[command(flatten)]
    pub trust: crate::whitelist::TrustArgs,
}

pub fn compose(data_dir: &Path, args: ComposeArgs) -> Result<()> {
    let text = if args.json.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the request from stdin")?
    } else {
        std::fs::read_to_string(&args.json)
            .with_context(|| format!("reading {}", args.json.display()))?
    };
    let request: ComposeRequest = serde_json::from_str(&text)
        .with_context(|| format!("compose request {}", args.json.display()))?;
    let mut config = ComposeConfig::new(args.nil);
    config.trust = args.trust.trust(data_dir)?;
    let message = mss_message::compose(&request, &config)?;
    write_atomically(&args.out, &message.raw)?;
    eprintln!(
        "mss: wrote {} ({} bytes, Message-ID {})",
        args.out.display(),
        message.raw.len(),
        message.message_id
    );
    Ok(())
}

/// Temp file in the same directory, fsync, rename: a reader never sees half a message.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .context("--out names no file")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}
