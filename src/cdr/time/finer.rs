//! The finer times Kamailio's acc writes beside `time` (its `time_mode` 1 and 2), read, and the
//! rule for taking one instead of the coarser `time` of the same record.
//!
//! acc takes one `gettimeofday` per record (`core2strar`, `src/modules/acc/acc.c`): `time` is
//! its whole seconds; `time_mode` 1 adds the seconds and the microseconds as two integers
//! (`%d`: `1795392000` and `5123`, which is .005123); `time_mode` 2 adds one double of seconds
//! and microseconds, which db_flatstore (and our writer) prints with `%f`: `1795392000.005123`.

use super::{MAX_FRACTION_DIGITS, NANOS_PER_UNIT, Timestamp};

/// The most digits a microseconds field has (999999).
const MICROS_DIGITS: usize = 6;

impl Timestamp {
    /// Reads epoch seconds written with a fraction (`1795392000.005123`, 1 to 9 digits after
    /// the `.`), as acc's `time_mode` 2 column holds them; `None` for anything else: whole
    /// seconds, a date (`time_mode` 3 and 4 write dates, 4 in UTC but 3 in local time), text.
    pub(in crate::cdr) fn parse_epoch_fraction(text: &[u8]) -> Option<Self> {
        Self::parse_epoch(text).filter(|time| time.fraction_digits > 0)
    }

    /// Reads whole epoch seconds (`1795392000`, no fraction, no date), as acc's `time_mode` 1
    /// seconds column holds them; `None` for anything else.
    pub(in crate::cdr) fn parse_whole_epoch_seconds(text: &[u8]) -> Option<i64> {
        Self::parse_epoch(text)
            .filter(|time| time.fraction_digits == 0)
            .map(|time| time.seconds)
    }

    /// Epoch seconds, as [`parse`](Self::parse) reads them; `None` for a date or anything else.
    /// (Through `parse`, so that its epoch reading keeps one caller and stays inlined there:
    /// it is the hot path of every record.)
    fn parse_epoch(text: &[u8]) -> Option<Self> {
        if text.get(4) == Some(&b'-') {
            return None;
        }
        Self::parse(text).ok()
    }

    /// `seconds` (whole epoch seconds) and the microseconds field `micros` (1 to 6 digits, the
    /// number of microseconds: `5123` is .005123, as acc's `time_mode` 1 writes `tv_usec`),
    /// written with 6 fraction digits; `None` when `micros` is not that.
    pub(in crate::cdr) fn with_micros(seconds: i64, micros: &[u8]) -> Option<Self> {
        if micros.is_empty() || micros.len() > MICROS_DIGITS {
            return None;
        }
        let value = micros.iter().try_fold(0u32, |value, &digit| {
            digit
                .is_ascii_digit()
                .then(|| value * 10 + u32::from(digit - b'0'))
        })?;
        Some(Self {
            seconds,
            nanos: value * NANOS_PER_UNIT[MICROS_DIGITS],
            fraction_digits: MICROS_DIGITS as u8,
        })
    }

    /// This time, or `finer` when `finer` says the same at this time's precision and more
    /// (the same second for whole seconds; the same milliseconds for a time written with 3
    /// digits; ...). A `finer` that disagrees is not taken: the record keeps this time, never
    /// another second (or day) than the one it was written with.
    pub(in crate::cdr) fn refined_by(self, finer: Self) -> Self {
        let digits = usize::from(self.fraction_digits).min(MAX_FRACTION_DIGITS);
        let unit = NANOS_PER_UNIT[digits];
        let agrees = finer.seconds == self.seconds && finer.nanos / unit == self.nanos / unit;
        if agrees && finer.fraction_digits > self.fraction_digits {
            finer
        } else {
            self
        }
    }
}
