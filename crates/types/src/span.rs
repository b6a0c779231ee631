//! Spans of time in configuration files: a whole number and one unit, `90s`, `15m`, `24h`, `7d` (the
//! form the audit trail's `--since 7d` already reads). Written here rather than taking humantime: one
//! number and one unit is all a schedule needs, and the messages name the configuration key.

use std::time::Duration;

use crate::Error;

/// The longest span accepted: a year (a schedule beyond that is a typo).
pub const MAX_SPAN: Duration = Duration::from_secs(366 * 24 * 3600);

/// `text` as a span (`30s`, `15m`, `24h`, `7d`), between one second and [`MAX_SPAN`]; `field` names the
/// setting in the error.
pub fn parse_span(field: &'static str, text: &str) -> Result<Duration, Error> {
    let refused = |why: &str| {
        Error::new(
            field,
            format!("`{text}` {why}: give a whole number and a unit, such as 30s, 15m, 24h or 7d"),
        )
    };
    let text_trimmed = text.trim();
    let Some(unit) = text_trimmed.chars().last() else {
        return Err(refused("is empty"));
    };
    let seconds_per_unit: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 24 * 3600,
        _ => return Err(refused("has no unit (s, m, h or d)")),
    };
    let count = &text_trimmed[..text_trimmed.len() - 1];
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused("is not a span"));
    }
    let span = count
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds_per_unit))
        .map(Duration::from_secs)
        .filter(|d| *d <= MAX_SPAN)
        .ok_or_else(|| refused("is longer than a year"))?;
    if span.is_zero() {
        return Err(refused("is zero"));
    }
    Ok(span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_in_each_unit_and_refusals_naming_the_field() {
        let ok = |t| parse_span("every", t).unwrap();
        assert_eq!(ok("1s"), Duration::from_secs(1));
        assert_eq!(ok("15m"), Duration::from_secs(900));
        assert_eq!(ok(" 24h "), Duration::from_secs(86_400));
        assert_eq!(ok("7d"), Duration::from_secs(604_800));
        for bad in [
            "",
            "15",
            "m",
            "-5m",
            "1.5h",
            "15 m",
            "0s",
            "1w",
            "400d",
            "99999999999999999999d",
        ] {
            let e = parse_span("fhir_sync_every", bad).unwrap_err();
            assert_eq!(e.field, "fhir_sync_every", "{bad}");
            assert!(e.reason.contains("15m"), "{bad}: {}", e.reason);
        }
    }
}
