//! The data directory and the embedded default dataset.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use mss_annuaire::extraction;
use mss_index::{Builder, DirectoryIndex, ImportStats};

/// Seed of the embedded sample (`mss demo-data --count 20000` with the default seed writes it again).
pub const SAMPLE_SEED: u64 = 20_240_101;

/// Entries in the embedded sample.
pub const SAMPLE_COUNT: usize = 20_000;

/// The embedded default dataset: a 20 k-entry synthetic extraction in the national format, zipped like the
/// national file. `tests/cli.rs` checks that it is exactly what the generator writes.
pub const SAMPLE_ZIP: &[u8] =
    include_bytes!("../assets/Extraction_Correspondance_MSSante_sample.zip");

/// `--data`, else `$XDG_DATA_HOME/mss`, else `~/.local/share/mss`.
pub fn data_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("mss"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("no data directory: give --data DIR or set MSS_DATA (HOME is not set)")?;
    Ok(PathBuf::from(home).join(".local/share/mss"))
}

/// Opens the index, building it from the embedded sample first when the data directory has none.
pub fn open_or_build_sample(data_dir: &Path) -> Result<DirectoryIndex> {
    if !DirectoryIndex::exists(data_dir) {
        eprintln!(
            "mss: no index in {}: building one from the embedded sample ({SAMPLE_COUNT} synthetic mailboxes); \
             run `mss import FILE` to load the national extraction",
            data_dir.display()
        );
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let stats = import_sample(data_dir)?;
        eprintln!("mss: sample index ready: {} entries", stats.imported);
    }
    DirectoryIndex::open(data_dir)
        .with_context(|| format!("opening the index in {}", data_dir.display()))
}

/// Builds the index from the embedded sample.
fn import_sample(data_dir: &Path) -> Result<ImportStats> {
    let builder = Builder::create(data_dir).context("preparing a new index generation")?;
    let mut input = io::Cursor::new(SAMPLE_ZIP);
    extraction::read_stream(&mut input, None, |records| {
        mss_index::import(builder, records, |_| {}, |_| {})
    })
    .context("importing the embedded sample")
}

/// Now, as RFC 3339 to the second: when a source's run is recorded with the index.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mss_annuaire::{demo, extraction};

    #[test]
    fn embedded_sample_is_what_the_generator_writes() {
        let (entries, rejected) =
            extraction::read_bytes(SAMPLE_ZIP).expect("the embedded sample reads");
        assert!(rejected.is_empty(), "{rejected:?}");
        let expected: Vec<_> = demo::entries(SAMPLE_COUNT, SAMPLE_SEED)
            .map(|mut e| {
                e.updated_at = Some("2026-11-23T00:00:00".into());
                e
            })
            .collect();
        assert!(
            entries == expected,
            "assets/ sample is stale: run scripts/make-sample.sh"
        );
    }
}
