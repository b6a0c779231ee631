//! Deterministic generator of realistic synthetic extraction files.
//!
//! The national `Extraction_Correspondance_MSSante` cannot be downloaded in tests, so tests, benchmarks and
//! the embedded default dataset use files made here, in exactly the national format (31 `|`-separated
//! columns, see [`crate::extraction`]).
//!
//! - Deterministic: the only randomness is a `ChaCha8Rng` seeded from the seed and drawn through `u32`
//!   ranges, so a `(count, seed)` pair gives the same bytes on every platform. Entry `i` does not depend on
//!   `count`: a smaller file is a prefix of a bigger one with the same seed.
//! - Streaming: entries come one at a time. What is kept is bounded by the tables, not by the file: 8 bytes
//!   per address (a hash, for uniqueness), a few dozen recent people, and the structures drawn so far.
//! - Realistic: French names of many origins with a frequency skew, the TRE_G15 professions with their
//!   real weights, RPPS/ADELI/FINESS/SIRET identifiers with check digits, every department with real cities
//!   and consistent postal codes, structures (hospitals, clinics, cabinets, pharmacies, labs, EHPAD, centres
//!   de santé) shared by many boxes, and operator-like domains.
//! - A structure is a pure function of `(seed, department, kind, rank)`, so the same hospital keeps the
//!   same name, identifier and address on every line.
//!
//! Layout: `generator` draws the entries (people and the boxes of structures), `sites` the structures,
//! `ids` the national identifiers, `faults` the duplicated and malformed lines; `tables` reads the names,
//! places and professions of `data/` once; `text` folds names to ASCII local parts and slugs; `random`
//! holds the platform-independent draws and hashes.

mod faults;
mod generator;
mod ids;
mod random;
mod sites;
mod tables;
#[cfg(test)]
mod tests;
mod text;

use std::io::{BufWriter, Write};

use crate::extraction::{format_line, write_header};
use crate::{Error, Result};

use faults::FaultPlan;
pub use generator::Generator;

/// What [`write()`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DemoOptions {
    /// Number of distinct mailboxes (valid lines, without the fault lines).
    pub count: usize,
    /// Seed: the same seed always gives the same file.
    pub seed: u64,
    /// Also write a few duplicated addresses and malformed lines, as the real file has.
    pub faults: bool,
}

/// What [`write()`] wrote, counted exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DemoSummary {
    /// Data lines written (the header line is not counted): `entries + malformed`.
    pub lines: usize,
    /// Lines that read as an entry, duplicates included: `count + duplicates`.
    pub entries: usize,
    /// Extra lines repeating the address of an earlier line, with another structure.
    pub duplicates: usize,
    /// Lines a reader must reject (too few columns, bad address, unknown BAL type, invalid UTF-8).
    pub malformed: usize,
}

/// The `count` first entries for `seed`: valid, with unique addresses, no faults.
pub fn entries(count: usize, seed: u64) -> Generator {
    Generator::new(count, seed)
}

/// Writes a whole extraction (header and lines) to `out`, buffered, and says what it wrote.
///
/// Without faults the lines are exactly [`entries`]`(count, seed)`. With faults, the same lines come in the
/// same order, with duplicate and malformed lines inserted between them: about 0.03 % duplicates (at least 2,
/// at most `count`) and 0.05 % malformed lines (at least 4, one of each kind), when `count > 0`.
pub fn write(out: &mut impl Write, opts: &DemoOptions) -> Result<DemoSummary> {
    let io_err = |e| Error::io("writing the demo extraction", e);
    let mut out = BufWriter::with_capacity(1 << 16, out);
    write_header(&mut out).map_err(io_err)?;
    let mut plan = FaultPlan::new(opts);
    let mut summary = DemoSummary::default();
    let mut last_line = String::new();
    let mut index = 0;
    for entry in entries(opts.count, opts.seed) {
        plan.before(index, &last_line, &mut out, &mut summary)
            .map_err(io_err)?;
        let line = format_line(&entry)?;
        write_line(&mut out, line.as_bytes()).map_err(io_err)?;
        summary.entries += 1;
        summary.lines += 1;
        plan.after(index, &entry);
        last_line = line;
        index += 1;
    }
    plan.finish(index, &last_line, &mut out, &mut summary)?;
    out.flush().map_err(io_err)?;
    Ok(summary)
}

/// Writes one line and its end.
fn write_line(out: &mut impl Write, line: &[u8]) -> std::io::Result<()> {
    out.write_all(line)?;
    out.write_all(b"\n")
}
