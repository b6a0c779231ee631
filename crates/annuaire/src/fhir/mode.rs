//! Which sync a run does (an interrupted one first, then what was asked, then a delta since the last
//! complete sync recorded with the index, full the first time), and what a complete sync records for
//! the next one. Deltas go [`MAX_DELTA_DAYS`] back at most: the API refuses more.

use std::path::Path;

use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use super::MAX_DELTA_DAYS;
use super::sync::{Mode, pending};
use crate::{Error, Result};

/// Key under which a complete sync is recorded with the index (its `source_state`).
pub const RECORD_KEY: &str = "fhir";

/// The start of a delta: the time, and the FHIR value sent for it (as given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    /// When.
    pub time: OffsetDateTime,
    /// `_lastUpdated=ge` this: a date or an RFC 3339 time, as given.
    pub value: String,
}

impl Since {
    /// Reads a date (`YYYY-MM-DD`, midnight UTC) or an RFC 3339 time; `None` for anything else.
    pub fn parse(text: &str) -> Option<Since> {
        let text = text.trim();
        if let Ok(time) = OffsetDateTime::parse(text, &Rfc3339) {
            return Some(Since {
                time,
                value: text.to_string(),
            });
        }
        let date_format = time::macros::format_description!("[year]-[month]-[day]");
        let date = Date::parse(text, &date_format).ok()?;
        Some(Since {
            time: date.midnight().assume_utc(),
            value: text.to_string(),
        })
    }
}

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// Nothing: resume, else a delta since the last sync, else full.
    Auto,
    /// A full sync.
    Full,
    /// A delta since this time.
    Since(Since),
}

/// The mode of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Full or delta.
    pub mode: Mode,
    /// Full because the index records no earlier sync of this base.
    pub first: bool,
}

/// Chooses the mode of a sync of `base`: an interrupted sync of the same base (`state_file`) first
/// unless `requested` says otherwise, then a delta since the sync `recorded` with the index (under
/// [`RECORD_KEY`]), full when there is none. A delta starting more than [`MAX_DELTA_DAYS`] before `now`
/// is refused.
pub fn choose_mode(
    requested: &Requested,
    base: &str,
    state_file: &Path,
    recorded: Option<&serde_json::Value>,
    now: OffsetDateTime,
) -> Result<Choice> {
    let chosen = |mode| Choice { mode, first: false };
    match requested {
        Requested::Since(since) => {
            check_gap(since.time, now, &format!("--since {}", since.value))?;
            return Ok(chosen(Mode::Delta {
                since: since.value.clone(),
            }));
        }
        Requested::Full => return Ok(chosen(Mode::Full)),
        Requested::Auto => {}
    }
    if let Some((pending_base, mode)) = pending(state_file)?
        && pending_base == base
    {
        return Ok(chosen(mode));
    }
    let last_sync = recorded
        .filter(|s| s["base"].as_str() == Some(base))
        .and_then(|s| s["last_sync"].as_str());
    let Some(last_sync) = last_sync else {
        return Ok(Choice {
            mode: Mode::Full,
            first: true,
        });
    };
    let since = Since::parse(last_sync).ok_or_else(|| {
        Error::FhirConfig(format!(
            "the last sync time recorded with the index, `{last_sync}`, is neither a date (YYYY-MM-DD) \
             nor an RFC 3339 time"
        ))
    })?;
    check_gap(
        since.time,
        now,
        &format!("the last sync of {base}, {last_sync},"),
    )?;
    Ok(chosen(Mode::Delta { since: since.value }))
}

/// A delta may not start more than [`MAX_DELTA_DAYS`] before `now` (the API refuses it); `what` names
/// the start in the message.
pub fn check_gap(since: OffsetDateTime, now: OffsetDateTime, what: &str) -> Result<()> {
    let gap = now - since;
    if gap > time::Duration::days(MAX_DELTA_DAYS) {
        return Err(Error::FhirConfig(format!(
            "{what} was {} days ago: the FHIR API gives changes of the last {MAX_DELTA_DAYS} days at most; \
             run `mss fhir-sync --full` (or import the national extraction with `mss import`)",
            gap.whole_days(),
        )));
    }
    Ok(())
}

/// What a complete sync of `base` started at `started_at` records with the index, under
/// [`RECORD_KEY`]: the next delta starts there.
pub fn record(base: &str, started_at: &str, mode: &Mode) -> serde_json::Value {
    json!({"base": base, "last_sync": started_at, "mode": mode.summary()})
}

/// `now`, as a FHIR instant to the second (`2026-11-23T08:00:00Z`): a sync's `started_at`.
pub fn instant(now: OffsetDateTime) -> String {
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_default()
}

impl Mode {
    /// `full` or `delta since <time>`, as reports and the record say it.
    pub fn summary(&self) -> String {
        match self {
            Mode::Full => "full".to_string(),
            Mode::Delta { since } => format!("delta since {since}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const BASE: &str = "http://127.0.0.1:8080/fhir";
    const NOW: OffsetDateTime = datetime!(2026-11-23 08:00:00 UTC);

    fn no_state() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    #[test]
    fn since_reads_dates_and_rfc3339_times() {
        let d = Since::parse(" 2026-11-20 ").expect("a date");
        assert_eq!(d.time, datetime!(2026-11-20 00:00:00 UTC));
        assert_eq!(d.value, "2026-11-20");
        let t = Since::parse("2026-11-20T08:30:00+01:00").expect("a time");
        assert_eq!(t.time, datetime!(2026-11-20 07:30:00 UTC));
        assert_eq!(t.value, "2026-11-20T08:30:00+01:00");
        assert_eq!(Since::parse("yesterday"), None);
    }

    #[test]
    fn deltas_go_30_days_back_at_most() {
        assert!(check_gap(NOW - time::Duration::days(30), NOW, "x").is_ok());
        let err = check_gap(
            datetime!(2026-10-01 00:00:00 UTC),
            NOW,
            "--since 2026-10-01",
        )
        .expect_err("53 days back")
        .to_string();
        assert!(err.contains("--since 2026-10-01 was 53 days ago"), "{err}");
        assert!(
            err.contains("30 days") && err.contains("mss fhir-sync --full"),
            "{err}"
        );
    }

    #[test]
    fn what_was_asked_comes_before_the_record() {
        let dir = no_state();
        let state = dir.path().join("fhir-sync.state.json");
        let recorded = record(BASE, "2026-11-20T08:00:00Z", &Mode::Full);
        let full = choose_mode(&Requested::Full, BASE, &state, Some(&recorded), NOW).unwrap();
        assert_eq!(
            full,
            Choice {
                mode: Mode::Full,
                first: false
            }
        );
        let since = Requested::Since(Since::parse("2026-11-22").unwrap());
        let delta = choose_mode(&since, BASE, &state, Some(&recorded), NOW).unwrap();
        assert_eq!(
            delta.mode,
            Mode::Delta {
                since: "2026-11-22".into()
            }
        );
        let old = Requested::Since(Since::parse("2020-01-01").unwrap());
        assert!(choose_mode(&old, BASE, &state, None, NOW).is_err());
    }

    #[test]
    fn the_record_of_the_same_base_gives_the_next_delta() {
        let dir = no_state();
        let state = dir.path().join("fhir-sync.state.json");
        let first = choose_mode(&Requested::Auto, BASE, &state, None, NOW).unwrap();
        assert_eq!(
            first,
            Choice {
                mode: Mode::Full,
                first: true
            }
        );
        let recorded = record(BASE, "2026-11-20T08:00:00Z", &Mode::Full);
        assert_eq!(recorded["mode"], "full");
        let next = choose_mode(&Requested::Auto, BASE, &state, Some(&recorded), NOW).unwrap();
        assert_eq!(
            next.mode,
            Mode::Delta {
                since: "2026-11-20T08:00:00Z".into()
            }
        );
        let other = choose_mode(
            &Requested::Auto,
            "https://elsewhere/fhir",
            &state,
            Some(&recorded),
            NOW,
        )
        .unwrap();
        assert!(other.first, "another base's record does not count");
        let stale = record(BASE, "2026-09-01T00:00:00Z", &next.mode);
        assert_eq!(stale["mode"], "delta since 2026-11-20T08:00:00Z");
        assert!(choose_mode(&Requested::Auto, BASE, &state, Some(&stale), NOW).is_err());
    }

    #[test]
    fn instants_are_to_the_second() {
        assert_eq!(
            instant(datetime!(2026-11-23 08:00:00.123456 UTC)),
            "2026-11-23T08:00:00Z"
        );
    }
}
