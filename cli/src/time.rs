//! Times on the command line and in reports: ISO-8601, UTC.

use std::time::SystemTime;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use flatstore::cdr::Timestamp;

use crate::error::CliError;

/// A time given on the command line (clap value parser): `2026-11-23`,
/// `2026-11-23T10:00[:00]` (also with a space for the `T`), RFC 3339 with an offset
/// (`2026-11-23T10:00:00+01:00`, `…Z`), or `@SECONDS` since the epoch. UTC unless an offset
/// is given.
pub fn parse_instant(value: &str) -> Result<SystemTime, CliError> {
    let utc = if let Some(secs) = value.strip_prefix('@') {
        secs.parse()
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0))
    } else if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        Some(t.to_utc())
    } else {
        [
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(NaiveTime::MIN))
        })
        .map(|t| t.and_utc())
    };
    utc.map(SystemTime::from).ok_or_else(|| CliError::NotATime {
        value: value.to_owned(),
    })
}

/// A bound of `--since`/`--until` (clap value parser), in nanoseconds since the epoch: the
/// forms of [`parse_instant`], and also those of a record's time with a fraction
/// (`@1795392000.250`, `2026-11-23 10:00:00.250`), as [`Timestamp::parse`] reads them.
pub fn parse_record_bound(value: &str) -> Result<i128, CliError> {
    let record_form = match value.strip_prefix('@') {
        Some(secs) => Some(secs),
        None => (value.as_bytes().get(4) == Some(&b'-')).then_some(value),
    };
    if let Some(time) = record_form.and_then(|text| Timestamp::parse(text.as_bytes()).ok()) {
        return Ok(time.epoch_nanos());
    }
    let at = parse_instant(value).map_err(|_| CliError::NotARecordTime {
        value: value.to_owned(),
    })?;
    Ok(match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    })
}

/// `secs` since the epoch as `2026-11-23T10:00:00Z`; `None` beyond year ±262,000.
pub fn iso8601(secs: i64) -> Option<String> {
    DateTime::from_timestamp(secs, 0).map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A file time as `2026-11-23T10:00:00Z`.
pub fn file_time(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A time as `20261123T100000Z`, for file names.
pub fn file_name_time(t: SystemTime) -> String {
    DateTime::<Utc>::from(t)
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(value: &str) -> i64 {
        let t = parse_instant(value).expect(value);
        DateTime::<Utc>::from(t).timestamp()
    }

    #[test]
    fn command_line_times() {
        assert_eq!(secs("2026-11-23"), 1_795_392_000);
        assert_eq!(secs("2026-11-23T10:00"), 1_795_392_000 + 36_000);
        assert_eq!(secs("2026-11-23 10:00:05"), 1_795_392_000 + 36_005);
        assert_eq!(secs("2026-11-23T10:00:00+01:00"), 1_795_392_000 + 32_400);
        assert_eq!(secs("2026-11-23T10:00:00Z"), 1_795_392_000 + 36_000);
        assert_eq!(secs("@1700000000"), 1_700_000_000);
        assert!(parse_instant("yesterday").is_err());
        assert!(parse_instant("@x").is_err());
    }

    #[test]
    fn record_time_bounds() {
        let nanos = |secs: i128| secs * 1_000_000_000;
        let bound = |value: &str| parse_record_bound(value).expect(value);
        assert_eq!(bound("2026-11-23"), nanos(1_795_392_000));
        assert_eq!(bound("2026-11-23T10:00"), nanos(1_795_392_000 + 36_000));
        assert_eq!(
            bound("2026-11-23T10:00:00+01:00"),
            nanos(1_795_392_000 + 32_400)
        );
        assert_eq!(bound("@1795392000"), nanos(1_795_392_000));
        assert_eq!(bound("@1795392000.25"), nanos(1_795_392_000) + 250_000_000);
        assert_eq!(
            bound("2026-11-23 00:00:01.5"),
            nanos(1_795_392_001) + 500_000_000
        );
        assert_eq!(bound("1969-12-31"), -nanos(86_400));
        for bad in ["yesterday", "1795392000", "@x", "2026-13-01"] {
            assert!(parse_record_bound(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn iso_times() {
        assert_eq!(
            iso8601(1_795_392_000).as_deref(),
            Some("2026-11-23T00:00:00Z")
        );
        assert_eq!(iso8601(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(iso8601(i64::MAX), None);
        assert_eq!(file_time(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
