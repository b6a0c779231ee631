//! One run of a directory source into the index, whole: the FHIR sync (full or delta) and the LDAP
//! harvest, then the removal of what the source no longer publishes and the record of the run
//! ([`Updater::set_source_state`]) committed with the entries. `mss fhir-sync`, `mss ldap-sync` and the
//! schedule of `mss serve` all run these, so a run means the same thing wherever it starts.

use std::path::Path;
use std::sync::Arc;

use mss_annuaire::Source;
use mss_annuaire::fhir::{self, Choice, FhirClient, Mode, Requested, SyncOptions, SyncReport};
use mss_annuaire::ldap::{self, HarvestOptions, HarvestReport, LdapClient};
use time::OffsetDateTime;

use crate::{DirectoryIndex, Result};

/// Name of the FHIR sync's progress file in the data directory.
pub const FHIR_STATE_FILE: &str = "fhir-sync.state.json";
/// Name of the LDAP harvest's progress file in the data directory.
pub const LDAP_STATE_FILE: &str = "ldap-sync.state.json";
/// Key of the LDAP harvest's record with the index (the FHIR sync's is [`fhir::mode::RECORD_KEY`]).
pub const LDAP_RECORD_KEY: &str = "ldap";

/// What a FHIR sync of `base` into `index` should be (`requested`, an interrupted sync in `state_file`,
/// the last one recorded with the index), at `now`.
pub fn fhir_plan(
    index: &DirectoryIndex,
    base: &str,
    requested: &Requested,
    state_file: &Path,
    now: OffsetDateTime,
) -> Result<Choice> {
    let recorded = index.source_state(fhir::mode::RECORD_KEY)?;
    Ok(fhir::choose_mode(
        requested,
        base,
        state_file,
        recorded.as_ref(),
        now,
    )?)
}

/// A FHIR sync run into the index.
#[derive(Debug)]
pub struct FhirRun {
    /// The sync's own report (`complete` false: stopped early, progress saved, nothing removed).
    pub report: SyncReport,
    /// Entries removed after it was complete (gone from the API, or no longer published by a resource).
    pub vanished: u64,
}

impl FhirRun {
    /// Entries written or removed.
    pub fn changed(&self) -> u64 {
        self.report.upserted + self.report.removed + self.vanished
    }
}

/// Runs the sync `options` describes from `client` into `index`; once complete, removes what the API
/// no longer has and records the run (the next delta starts at its `started_at`), all in one commit.
pub async fn fhir_into(
    index: &DirectoryIndex,
    client: &FhirClient,
    options: &SyncOptions,
    progress: impl FnMut(&fhir::SyncProgress),
    stop: impl Future<Output = ()>,
) -> Result<FhirRun> {
    let mut updater = index.writer()?;
    let report = fhir::sync(client, options, &mut updater, progress, stop).await?;
    if !report.complete {
        return Ok(FhirRun {
            report,
            vanished: 0,
        });
    }
    let vanished = if options.mode == Mode::Full {
        updater.remove_vanished(index, Source::Fhir, &report.seen)?
    } else {
        updater.remove_dropped(index, &report.carried)?
    };
    let base = &client.config().base;
    let mut record = fhir::mode::record(base, &report.started_at, &options.mode);
    record["resources"] = report.resources.into();
    record["written"] = report.upserted.into();
    record["removed"] = (report.removed + vanished).into();
    record["rejected"] = report.rejected.into();
    updater.set_source_state(fhir::mode::RECORD_KEY, record);
    updater.commit()?;
    Ok(FhirRun { report, vanished })
}

/// An LDAP harvest run into the index.
#[derive(Debug)]
pub struct LdapRun {
    /// The harvest's own report (`complete` false: stopped early or parts the server would not give;
    /// nothing removed).
    pub report: HarvestReport,
    /// Entries removed after it was complete (gone from the directory).
    pub removed: u64,
}

impl LdapRun {
    /// Entries written or removed.
    pub fn changed(&self) -> u64 {
        self.report.entries + self.removed
    }
}

/// Harvests `client`'s directory into `index` (upserts); once complete, removes the LDAP entries it no
/// longer holds and records the run, in one commit. The client's connections are closed at the end.
pub async fn ldap_into(
    index: &DirectoryIndex,
    client: Arc<LdapClient>,
    options: &HarvestOptions,
    progress: impl FnMut(&ldap::Progress),
    stop: impl Future<Output = ()>,
) -> Result<LdapRun> {
    let mapping = Arc::clone(&client.config().mapping);
    let server = client.config().url.clone();
    let mut updater = index.writer()?;
    let report = ldap::harvest(
        Arc::clone(&client),
        &mapping,
        options,
        &mut updater,
        progress,
        stop,
    )
    .await;
    client.close().await;
    let report = report?;
    if !report.complete {
        return Ok(LdapRun { report, removed: 0 });
    }
    let removed = updater.remove_vanished(index, Source::Ldap, &report.seen)?;
    // what the console and /metrics show of this source
    updater.set_source_state(
        LDAP_RECORD_KEY,
        serde_json::json!({
            "last_sync": fhir::mode::instant(OffsetDateTime::now_utc()),
            "server": server,
            "entries": report.entries,
            "rejected": report.rejected,
            "removed": removed,
        }),
    );
    updater.commit()?;
    Ok(LdapRun { report, removed })
}
