//! Fault injection: duplicated addresses and malformed lines, as the national file has.

use std::collections::BTreeSet;
use std::io::Write;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::extraction::{SEPARATOR, format_line};
use crate::model::{BalType, Entry};
use crate::{Error, Result};

use super::random::{chance, mix, pick, pick_index};
use super::sites::Sites;
use super::tables::{DATA, Kind, services_of, tables};
use super::{DemoOptions, DemoSummary, write_line};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    Truncated,
    BadAddress,
    UnknownType,
    BadUtf8,
}

const FAULTS: [Fault; 4] = [
    Fault::Truncated,
    Fault::BadAddress,
    Fault::UnknownType,
    Fault::BadUtf8,
];

/// Where fault lines go. Drawn from its own RNG so that the valid lines are the same with or without faults.
pub(super) struct FaultPlan {
    rng: ChaCha8Rng,
    /// The file's structures, for the second structure of duplicated addresses.
    sites: Sites,
    /// Base entries whose address gets a second line (moved to the next PER box).
    pub(super) duplicate_at: BTreeSet<usize>,
    /// Duplicates still wanted: set at a chosen index, taken by the next personal box.
    wanted: usize,
    /// Duplicate lines waiting for their position (a few lines after their original).
    pending: Vec<(usize, String)>,
    /// `(before base entry i, kind)`, sorted; `i == count` means at the end.
    pub(super) malformed: Vec<(usize, Fault)>,
    next_malformed: usize,
}

impl FaultPlan {
    pub(super) fn new(opts: &DemoOptions) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(opts.seed ^ 0x6661_756C_7473));
        let mut duplicate_at = BTreeSet::new();
        let mut malformed = Vec::new();
        let count = opts.count;
        if opts.faults && count > 0 {
            let duplicates = (count * 3).div_ceil(10_000).max(2).min(count);
            while duplicate_at.len() < duplicates {
                duplicate_at.insert(rng.random_range(0..count as u64) as usize);
            }
            let bad = (count * 5).div_ceil(10_000).max(FAULTS.len());
            let mut at: Vec<usize> = (0..bad)
                .map(|_| rng.random_range(1..=count as u64) as usize)
                .collect();
            at.sort_unstable();
            malformed = at
                .into_iter()
                .enumerate()
                .map(|(i, pos)| (pos, FAULTS[i % FAULTS.len()]))
                .collect();
        }
        FaultPlan {
            rng,
            sites: Sites::new(opts.seed),
            duplicate_at,
            wanted: 0,
            pending: Vec::new(),
            malformed,
            next_malformed: 0,
        }
    }

    /// Writes the fault lines due before base entry `index`.
    pub(super) fn before(
        &mut self,
        index: usize,
        last_line: &str,
        out: &mut impl Write,
        summary: &mut DemoSummary,
    ) -> std::io::Result<()> {
        while let Some(&(at, fault)) = self.malformed.get(self.next_malformed) {
            if at > index {
                break;
            }
            self.next_malformed += 1;
            write_line(out, &malformed_line(last_line, fault, &mut self.rng))?;
            summary.malformed += 1;
            summary.lines += 1;
        }
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].0 <= index {
                let (_, line) = self.pending.remove(i);
                write_line(out, line.as_bytes())?;
                summary.duplicates += 1;
                summary.entries += 1;
                summary.lines += 1;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// Notes base entry `index` (just written) and schedules its duplicate if one is wanted.
    pub(super) fn after(&mut self, index: usize, entry: &Entry) {
        if self.duplicate_at.remove(&index) {
            self.wanted += 1;
        }
        // duplicated addresses in the real file are people working in two structures
        if self.wanted > 0
            && entry.bal_type == BalType::Per
            && let Some(line) = duplicate_line(entry, &mut self.sites, &mut self.rng)
        {
            self.wanted -= 1;
            let at = index + 1 + pick_index(&mut self.rng, 30);
            self.pending.push((at, line));
        }
    }

    /// Writes what is left at the end: pending duplicates, wanted ones (of the last entry), malformed lines.
    pub(super) fn finish(
        &mut self,
        count: usize,
        last_line: &str,
        out: &mut impl Write,
        summary: &mut DemoSummary,
    ) -> Result<()> {
        let io_err = |e| Error::io("writing the demo extraction", e);
        if self.wanted > 0 && !last_line.is_empty() {
            let last = crate::extraction::parse_line(last_line, None)?;
            for _ in 0..self.wanted {
                if let Some(line) = duplicate_line(&last, &mut self.sites, &mut self.rng) {
                    self.pending.push((count, line));
                }
            }
            self.wanted = 0;
        }
        for (_, line) in std::mem::take(&mut self.pending) {
            write_line(out, line.as_bytes()).map_err(io_err)?;
            summary.duplicates += 1;
            summary.entries += 1;
            summary.lines += 1;
        }
        self.before(usize::MAX, last_line, out, summary)
            .map_err(io_err)
    }
}

/// The same box attached to another structure (another site, and a service at hospitals).
fn duplicate_line(original: &Entry, sites: &mut Sites, rng: &mut ChaCha8Rng) -> Option<String> {
    let t = tables();
    let prof = original
        .profession
        .as_ref()
        .and_then(|p| DATA.profession_index(&p.code))
        .unwrap_or(0);
    let dept = original
        .department
        .as_ref()
        .and_then(|d| DATA.department_index(d.as_str()))
        .unwrap_or_else(|| t.depts.pick(rng));
    let mut dup = original.clone();
    for _ in 0..16 {
        let kind = match DATA.professions[prof].places[t.places[prof].pick(rng)].0 {
            Some(k) => k,
            None => Kind::Cabinet,
        };
        let site = sites.pick(rng, dept, kind, prof);
        site.fill(&mut dup);
        dup.service = (site.kind.is_hospital() && chance(rng, 500))
            .then(|| pick(rng, services_of(Kind::Hopital)).0.to_string());
        if dup.structure() != original.structure() {
            return format_line(&dup).ok();
        }
    }
    None
}

/// A line a reader must reject, made from a real line so that it looks like the file's own mistakes.
fn malformed_line(line: &str, fault: Fault, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut cols: Vec<String> = line.split(SEPARATOR).map(str::to_string).collect();
    if cols.len() < 3 {
        cols = vec![
            "PER".into(),
            "a@b.fr".into(),
            "8".into(),
            String::new(),
            String::new(),
        ];
    }
    match fault {
        Fault::Truncated => {
            let keep = (rng.random_range(3..=20) as usize).min(cols.len() - 1);
            cols[..keep].join("|").into_bytes()
        }
        Fault::BadAddress => {
            let (local, domain) = cols[1].rsplit_once('@').unwrap_or(("x", "mssante.fr"));
            let tld_less = domain.split('.').next().unwrap_or("mssante");
            cols[1] = match rng.random_range(0..5) {
                0 => format!("{local}.{domain}"),
                1 => format!("{local} @{domain}"),
                2 => format!("{local}@{domain}."),
                3 => format!("{local}@@{domain}"),
                _ => format!("{local}@{tld_less}"),
            };
            cols.join("|").into_bytes()
        }
        Fault::UnknownType => {
            cols[0] = pick(rng, &["PERS", "BAL", "ORGA", "PRO", "MSS"]).to_string();
            cols.join("|").into_bytes()
        }
        Fault::BadUtf8 => {
            // as if one field had been saved in Latin-1
            let text = cols.join("|");
            let mut bytes = Vec::with_capacity(text.len() + 2);
            match text.char_indices().find(|(_, c)| !c.is_ascii()) {
                Some((i, c)) => {
                    bytes.extend_from_slice(&text.as_bytes()[..i]);
                    bytes.push(u8::try_from(u32::from(c)).unwrap_or(0xFF));
                    bytes.extend_from_slice(&text.as_bytes()[i + c.len_utf8()..]);
                }
                None => {
                    let i = text.find('|').map_or(0, |i| i + 1);
                    bytes.extend_from_slice(&text.as_bytes()[..i]);
                    bytes.extend_from_slice(&[0xFF, 0xFE]);
                    bytes.extend_from_slice(&text.as_bytes()[i..]);
                }
            }
            bytes
        }
    }
}
