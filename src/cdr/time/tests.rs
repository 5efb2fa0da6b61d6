//! Reading, writing and subtracting record times.

use super::*;

fn time(text: &str) -> Timestamp {
    match Timestamp::parse(text.as_bytes()) {
        Ok(time) => time,
        Err(error) => panic!("{text}: {error}"),
    }
}

#[test]
fn epoch_seconds_are_read_and_written_as_iso_8601() {
    assert_eq!(time("1700000000").to_string(), "2023-11-14T22:13:20Z");
    assert_eq!(time("0").to_string(), "1970-01-01T00:00:00Z");
    assert_eq!(time("1700000000").epoch_seconds(), 1_700_000_000);
}

#[test]
fn fractions_keep_exactly_their_digits() {
    assert_eq!(
        time("1700000000.123").to_string(),
        "2023-11-14T22:13:20.123Z"
    );
    assert_eq!(
        time("1700000000.120").to_string(),
        "2023-11-14T22:13:20.120Z"
    );
    assert_eq!(time("1700000000.5").to_string(), "2023-11-14T22:13:20.5Z");
    assert_eq!(
        time("1700000000.000000001").to_string(),
        "2023-11-14T22:13:20.000000001Z"
    );
    assert_eq!(time("1700000000.120").fraction_digits(), 3);
    assert_eq!(time("1700000000.120"), time("1700000000.120"));
    assert_ne!(time("1700000000.12"), time("1700000000.120"));
}

#[test]
fn the_date_form_is_utc() {
    assert_eq!(
        time("2026-11-23 10:00:00").to_string(),
        "2026-11-23T10:00:00Z"
    );
    assert_eq!(
        time("2026-11-23 10:00:00.120").to_string(),
        "2026-11-23T10:00:00.120Z"
    );
    assert_eq!(
        time("2023-11-14 22:13:20").epoch_seconds(),
        time("1700000000").epoch_seconds()
    );
    assert_eq!(time("2024-02-29 23:59:59.999999999").fraction_digits(), 9);
}

#[test]
fn the_written_form_reads_back_to_the_same_time() {
    for text in [
        "1700000000",
        "1700000000.120",
        "2026-11-23 10:00:00.5",
        "1960-01-01 00:00:00",
    ] {
        let written = time(text).to_string();
        assert_eq!(time(&written), time(text), "{written}");
    }
}

proptest::proptest! {
    #[test]
    fn any_epoch_time_reads_back_from_its_written_form(
        seconds in 0..=MAX_EPOCH_SECONDS,
        digits in 0usize..=9,
        fraction in 0u32..1_000_000_000,
    ) {
        let fraction = format!("{fraction:09}");
        let text = match digits {
            0 => seconds.to_string(),
            _ => format!("{seconds}.{}", &fraction[..digits]),
        };
        let read = time(&text);
        proptest::prop_assert_eq!(read.epoch_seconds(), seconds);
        proptest::prop_assert_eq!(usize::from(read.fraction_digits()), digits);
        proptest::prop_assert_eq!(time(&read.to_string()), read);
        let no_time = match digits {
            0 => "0".to_owned(),
            _ => format!("0.{}", "0".repeat(digits)),
        };
        proptest::prop_assert_eq!(Duration::between(&read, &read).to_string(), no_time);
    }
}

proptest::proptest! {
    /// The common form's quick reading agrees with the general one, and refuses nothing
    /// the general one reads in that form.
    #[test]
    fn milliseconds_read_quickly_read_as_the_general_reading_reads_them(
        text in proptest::collection::vec(
            proptest::prop_oneof![
                b'0'..=b'9',
                proptest::strategy::Just(b'.'),
                proptest::strategy::Just(b'/'),
                proptest::strategy::Just(b':'),
                0u8..=255,
            ],
            14,
        ),
        seconds in 0u64..10_000_000_000,
        milliseconds in 0u32..1000,
    ) {
        if let Some(quick) = Timestamp::parse_milliseconds(&text) {
            proptest::prop_assert_eq!(Ok(quick), Timestamp::parse_any_epoch_form(&text));
        }
        let common = format!("{seconds:010}.{milliseconds:03}");
        let quick = Timestamp::parse_milliseconds(common.as_bytes());
        proptest::prop_assert!(quick.is_some());
        proptest::prop_assert_eq!(
            quick.ok_or(TimeError::Malformed),
            Timestamp::parse_any_epoch_form(common.as_bytes())
        );
    }
}

proptest::proptest! {
    /// The calendar arithmetic agrees with chrono's for every date and time of day of
    /// years 0 to 9999, both ways, and chrono refuses exactly the dates refused here.
    #[test]
    fn dates_agree_with_chrono(
        year in 0i32..=9999,
        month in 0u32..=13,
        day in 0u32..=32,
        of_day in 0u32..86_400,
    ) {
        use chrono::{Datelike as _, NaiveDate};
        let (hour, minute, second) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
        let text = format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}");
        let ours = Timestamp::parse(text.as_bytes());
        match NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|date| date.and_hms_opt(hour, minute, second))
        {
            None => proptest::prop_assert_eq!(ours, Err(TimeError::NoSuchTime)),
            Some(at) => {
                let ours = time(&text);
                proptest::prop_assert_eq!(ours.epoch_seconds(), at.and_utc().timestamp());
                proptest::prop_assert_eq!(
                    ours.to_string(),
                    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
                );
                proptest::prop_assert_eq!(at.year(), year);
            }
        }
    }
}

proptest::proptest! {
    /// Times and durations are written as `core::fmt` would write them.
    #[test]
    fn written_forms_match_the_formatting_machinery(
        seconds in 0..=MAX_EPOCH_SECONDS,
        nanos in 0u32..1_000_000_000,
        digits in 0u8..=9,
        span in -(MAX_EPOCH_SECONDS as i128) * 1_000_000_000..(MAX_EPOCH_SECONDS as i128) * 1_000_000_000,
    ) {
        let scale = 10u32.pow(9 - u32::from(digits));
        let nanos = nanos / scale * scale;
        let fraction = match digits {
            0 => String::new(),
            _ => format!(".{:0width$}", nanos / scale, width = usize::from(digits)),
        };
        let at = match chrono::DateTime::from_timestamp(seconds, nanos) {
            Some(at) => at,
            None => panic!("{seconds}"),
        };
        let time = time(&format!("{seconds}{fraction}"));
        proptest::prop_assert_eq!(
            time.to_string(),
            format!("{}{fraction}Z", at.format("%Y-%m-%dT%H:%M:%S"))
        );
        let duration = Duration { nanos: span, fraction_digits: digits };
        let magnitude = span.unsigned_abs();
        let below = (magnitude % 1_000_000_000) as u32 / scale;
        let expected = format!(
            "{}{}{}",
            if span < 0 { "-" } else { "" },
            magnitude / 1_000_000_000,
            match digits {
                0 => String::new(),
                _ => format!(".{below:0width$}", width = usize::from(digits)),
            }
        );
        proptest::prop_assert_eq!(duration.to_string(), expected);
    }
}

#[test]
fn a_writer_that_remembers_the_date_writes_what_display_writes() {
    let mut writer = IsoWriter::new();
    for text in [
        "1700000000",
        "1700000001.5",
        "1700006399.999",
        "1700006400",
        "1699999999",
        "1960-01-01 00:00:00.120",
        "1959-12-31 23:59:59",
        "9999-12-31 23:59:59.999999999",
        "0000-01-01 00:00:00",
    ] {
        let mut written = Vec::new();
        writer.write(&time(text), &mut written);
        assert_eq!(
            String::from_utf8_lossy(&written),
            time(text).to_string(),
            "{text}"
        );
    }
}

#[test]
fn unreadable_times_are_errors_never_guesses() {
    let error = |text: &str| Timestamp::parse(text.as_bytes()).err();
    for text in [
        "",
        " 1700000000",
        "1700000000 ",
        "-5",
        "+5",
        "17e8",
        "1700000000.",
        ".5",
        "0x10",
        "1700000000.1.2",
        "2026-11-23",
        "2026-11-23 10:00",
        "2026/11/23 10:00:00",
        "2026-11-23 10:00:00+01:00",
        "2026-11-23 10:00:00.",
        "２０２６",
    ] {
        assert_eq!(error(text), Some(TimeError::Malformed), "{text:?}");
    }
    assert_eq!(error("1700000000.1234567890"), Some(TimeError::TooPrecise));
    assert_eq!(error("2026-02-29 10:00:00"), Some(TimeError::NoSuchTime));
    assert_eq!(error("2026-11-23 24:00:00"), Some(TimeError::NoSuchTime));
    assert_eq!(error("2026-11-23 23:59:60"), Some(TimeError::NoSuchTime));
    assert_eq!(error("253402300800"), Some(TimeError::OutOfRange));
    assert_eq!(error("999999999999"), Some(TimeError::OutOfRange));
    assert_eq!(error("9999999999999"), Some(TimeError::Malformed));
}

#[test]
fn durations_are_integers_for_whole_seconds_else_decimals() {
    let duration = |start: &str, end: &str| Duration::between(&time(start), &time(end));
    assert_eq!(duration("1700000000", "1700000065").to_string(), "65");
    assert_eq!(duration("1700000000", "1700000065.5").to_string(), "65.5");
    assert_eq!(
        duration("1700000000.250", "1700000065.5").to_string(),
        "65.250"
    );
    assert_eq!(duration("1700000000.9", "1700000001.1").to_string(), "0.2");
    assert_eq!(
        duration("2023-11-14 22:13:20", "1700000010.000001").to_string(),
        "10.000001"
    );
    assert_eq!(duration("1700000010", "1700000000").to_string(), "-10");
    assert_eq!(duration("1700000000.5", "1700000000").to_string(), "-0.5");
    assert_eq!(Duration::ZERO.to_string(), "0");
}

#[test]
fn acc_time_mode_2_is_epoch_seconds_with_a_fraction_and_nothing_else() {
    let read = |text: &str| Timestamp::parse_epoch_fraction(text.as_bytes()).map(|t| t.to_string());
    assert_eq!(
        read("1795392000.005123").as_deref(),
        Some("2026-11-23T00:00:00.005123Z")
    );
    assert_eq!(
        read("1795392000.5").as_deref(),
        Some("2026-11-23T00:00:00.5Z")
    );
    for no_finer in [
        "",
        "1795392000",
        "2026-11-23 00:00:00",
        "2026-11-23 00:00:00.5",
        "-1795392000.5",
        "nan",
        "1795392000.1234567890",
    ] {
        assert_eq!(read(no_finer), None, "{no_finer:?}");
    }
}

#[test]
fn acc_time_mode_1_is_whole_seconds_and_a_count_of_microseconds() {
    assert_eq!(
        Timestamp::parse_whole_epoch_seconds(b"1795392000"),
        Some(1_795_392_000)
    );
    for not_whole in [&b""[..], b"1795392000.5", b"2026-11-23 00:00:00", b"-1"] {
        assert_eq!(Timestamp::parse_whole_epoch_seconds(not_whole), None);
    }
    let with = |micros: &str| {
        Timestamp::with_micros(1_795_392_000, micros.as_bytes()).map(|t| t.to_string())
    };
    assert_eq!(with("5123").as_deref(), Some("2026-11-23T00:00:00.005123Z"));
    assert_eq!(
        with("999999").as_deref(),
        Some("2026-11-23T00:00:00.999999Z")
    );
    assert_eq!(with("0").as_deref(), Some("2026-11-23T00:00:00.000000Z"));
    for not_micros in ["", "1000000", "12a", "-5", " 5", "0.5"] {
        assert_eq!(with(not_micros), None, "{not_micros:?}");
    }
}

#[test]
fn a_finer_time_is_taken_only_when_it_agrees_at_the_coarser_precision() {
    let refined = |coarse: &str, finer: &str| time(coarse).refined_by(time(finer)).to_string();
    assert_eq!(
        refined("1795392000", "1795392000.999999"),
        "2026-11-23T00:00:00.999999Z"
    );
    assert_eq!(
        refined("2026-11-23 00:00:00", "1795392000.25"),
        "2026-11-23T00:00:00.25Z",
        "a date-form time is refined the same"
    );
    assert_eq!(
        refined("1795392000.120", "1795392000.120456"),
        "2026-11-23T00:00:00.120456Z"
    );
    // Disagreeing: another second, another day, other milliseconds; or no finer at all.
    for (coarse, finer) in [
        ("1795392000", "1795392001.5"),
        ("1795392000", "1795305600.5"),
        ("1795392000.120", "1795392000.121456"),
        ("1795392000.123456", "1795392000.123"),
        ("1795392000.5", "1795392000.5"),
    ] {
        assert_eq!(refined(coarse, finer), time(coarse).to_string(), "{finer}");
        assert_eq!(
            time(coarse).refined_by(time(finer)).fraction_digits(),
            time(coarse).fraction_digits()
        );
    }
}
