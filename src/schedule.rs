//! The directory sources `mss serve` runs itself (`fhir_sync_every`, `ldap_sync_every`): the same runs
//! as `mss fhir-sync` and `mss ldap-sync` (`mss_index::sources`), with the settings of the
//! configuration, handed to the service's schedule (`mss_api::sync_periodically`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use mss_annuaire::fhir::{self, FhirClient, FhirConfig, Requested, SyncOptions};
use mss_annuaire::ldap::{HarvestOptions, LdapClient, LdapConfig};
use mss_api::{RunDone, SourceRun};
use mss_index::DirectoryIndex;
use mss_index::sources::{self, FHIR_STATE_FILE, LDAP_STATE_FILE};
use time::OffsetDateTime;
use tokio::sync::watch;

/// A source the service runs, its interval and its run.
pub struct Scheduled {
    /// `fhir` or `ldap`, the name its runs are recorded under.
    pub source: &'static str,
    /// Its interval.
    pub every: Duration,
    /// One run.
    pub run: SourceRun,
}

/// `key = value` as an interval, checked.
pub fn interval(key: &'static str, value: Option<&str>) -> Result<Option<Duration>> {
    value
        .map(|v| mss_types::span::parse_span(key, v))
        .transpose()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))
}

/// The FHIR delta sync every `every` from `config`'s API (`fhir_base`), into the index of `data_dir`.
pub fn fhir(data_dir: PathBuf, config: Option<FhirConfig>, every: Duration) -> Result<Scheduled> {
    let Some(config) = config else {
        bail!(
            "fhir_sync_every needs the FHIR API to read: set fhir_base in the configuration (or \
             --fhir-base / MSS_FHIR_BASE)"
        );
    };
    if config.api_key.is_none() && config.is_national() {
        bail!(
            "fhir_sync_every: the national API refuses every request without a key: set \
             fhir_api_key_file in the configuration (or --fhir-api-key-file, or {})",
            crate::fhir::API_KEY_ENV
        );
    }
    let run: SourceRun = Arc::new(move |stop| {
        let index = DirectoryIndex::open_or_create(&data_dir)?;
        let state_file = data_dir.join(FHIR_STATE_FILE);
        let now = OffsetDateTime::now_utc();
        let base = config.base.clone();
        let choice = sources::fhir_plan(&index, &base, &Requested::Auto, &state_file, now)?;
        let mut options = SyncOptions::new(choice.mode.clone(), fhir::mode::instant(now));
        options.state_file = Some(state_file);
        // a client per run: its connections belong to the run's runtime
        let client = FhirClient::new(config.clone())?;
        let run = runtime()?.block_on(sources::fhir_into(
            &index,
            &client,
            &options,
            |_| {},
            stopped(stop),
        ))?;
        let r = &run.report;
        Ok(RunDone {
            complete: r.complete,
            changed: run.changed(),
            summary: format!(
                "{} of {base}: {} resources in {} pages; {} written, {} removed, {} rejected",
                choice.mode.summary(),
                r.resources,
                r.pages,
                r.upserted,
                r.removed + run.vanished,
                r.rejected
            ),
        })
    });
    Ok(Scheduled {
        source: fhir::mode::RECORD_KEY,
        every,
        run,
    })
}

/// The LDAP harvest every `every` from `config`'s directory (`ldap_url`), into the index of `data_dir`.
pub fn ldap(data_dir: PathBuf, config: Option<LdapConfig>, every: Duration) -> Result<Scheduled> {
    let Some(config) = config else {
        bail!(
            "ldap_sync_every needs the LDAP directory to harvest: set ldap_url in the configuration \
             (or --ldap-url / MSS_LDAP_URL)"
        );
    };
    let run: SourceRun = Arc::new(move |stop| {
        let index = DirectoryIndex::open_or_create(&data_dir)?;
        let options = HarvestOptions {
            state_file: Some(data_dir.join(LDAP_STATE_FILE)),
            ..HarvestOptions::default()
        };
        let server = config.url.clone();
        let run = runtime()?.block_on(async {
            let client = Arc::new(LdapClient::new(config.clone())?);
            sources::ldap_into(&index, client, &options, |_| {}, stopped(stop)).await
        })?;
        let r = &run.report;
        let cut = if r.unsplittable.is_empty() {
            String::new()
        } else {
            format!(
                "; {} queries exceed the server's limit and cannot be cut further, nothing removed",
                r.unsplittable.len()
            )
        };
        Ok(RunDone {
            complete: r.complete,
            changed: run.changed(),
            summary: format!(
                "harvest of {server}: {} entries in {} queries, {} removed, {} rejected{cut}",
                r.entries, r.queries, run.removed, r.rejected
            ),
        })
    });
    Ok(Scheduled {
        source: sources::LDAP_RECORD_KEY,
        every,
        run,
    })
}

/// A runtime on the run's own thread: the service's stay free for the requests.
fn runtime() -> Result<tokio::runtime::Runtime, mss_index::Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| mss_index::Error::Io {
            context: "starting a directory source run".into(),
            source,
        })
}

/// Resolves when the service stops.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
