//! Record times: reading the forms Kamailio writes, keeping their precision, and writing them
//! back as ISO-8601 UTC; call durations as exact, signed seconds.

use std::fmt;

mod finer;

/// The latest time accepted, 9999-12-31T23:59:59 UTC, so every time has a four-digit year.
const MAX_EPOCH_SECONDS: i64 = 253_402_300_799;
/// The most fraction digits a time can have (nanoseconds).
const MAX_FRACTION_DIGITS: usize = 9;
const NANOS_PER_SECOND: i128 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
/// The longest text [`Timestamp::write_iso`] writes: `YYYY-MM-DDTHH:MM:SS.fffffffffZ`.
pub const MAX_ISO_LENGTH: usize = 30;

/// Why a time field could not be read. The record is skipped: a time is never guessed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Neither epoch seconds nor `YYYY-MM-DD HH:MM:SS[.fff]`.
    #[error("not a time (expected epoch seconds or YYYY-MM-DD HH:MM:SS[.fff])")]
    Malformed,
    /// A fraction with more than nine digits (finer than nanoseconds).
    #[error("more than 9 fraction digits")]
    TooPrecise,
    /// Well-formed, but no such instant (month 13, February 30, hour 24, ...).
    #[error("no such date or time of day")]
    NoSuchTime,
    /// After 9999-12-31T23:59:59Z.
    #[error("after the year 9999")]
    OutOfRange,
}

/// An instant in UTC that remembers how many fraction digits (0 to 9) it was written with, so
/// `1700000000.120` is written back as `…:20.120Z`, not `…:20.12Z`.
///
/// Ordering is by instant first; the same instant written with fewer digits sorts first.
/// Kept as whole epoch seconds and nanoseconds (16 bytes), so comparing and subtracting times
/// is integer arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z, rounded down (negative before 1970).
    seconds: i64,
    /// Below one second: 0 to 999,999,999.
    nanos: u32,
    fraction_digits: u8,
}

impl Timestamp {
    /// 1970-01-01T00:00:00Z, written without a fraction.
    pub const EPOCH: Self = Self {
        seconds: 0,
        nanos: 0,
        fraction_digits: 0,
    };

    /// Reads a time field: epoch seconds, whole or with 1 to 9 fraction digits
    /// (`1700000000`, `1700000000.123`), or a UTC date and time `YYYY-MM-DD HH:MM:SS` with an
    /// optional `.` and 1 to 9 fraction digits. The date form may also use `T` for the space
    /// and end in `Z`, so [`Display`](fmt::Display)'s output reads back to the same value.
    /// Nothing else is accepted: no sign, no spaces around, no time zone other than `Z`.
    pub fn parse(text: &[u8]) -> Result<Self, TimeError> {
        if text.get(4) == Some(&b'-') {
            Self::parse_date_form(text)
        } else {
            Self::parse_epoch_form(text)
        }
    }

    fn parse_epoch_form(text: &[u8]) -> Result<Self, TimeError> {
        match Self::parse_milliseconds(text) {
            Some(time) => Ok(time),
            None => Self::parse_any_epoch_form(text),
        }
    }

    fn parse_any_epoch_form(text: &[u8]) -> Result<Self, TimeError> {
        // One pass over the whole seconds, up to the first byte that is not a digit: the end,
        // or a `.` before the fraction.
        let mut seconds = 0u64;
        let mut whole = 0;
        while let Some(&digit) = text.get(whole)
            && digit.is_ascii_digit()
        {
            seconds = seconds
                .wrapping_mul(10)
                .wrapping_add(u64::from(digit - b'0'));
            whole += 1;
        }
        let fraction = match text.get(whole) {
            None => None,
            Some(b'.') => Some(&text[whole + 1..]),
            Some(_) => return Err(TimeError::Malformed),
        };
        // 1 to 12 digits (12 stay far from overflow).
        if whole == 0 || whole > 12 {
            return Err(TimeError::Malformed);
        }
        let (nanos, fraction_digits) = fraction_value(fraction)?;
        if seconds > MAX_EPOCH_SECONDS as u64 {
            return Err(TimeError::OutOfRange);
        }
        Ok(Self {
            // At most MAX_EPOCH_SECONDS: it fits.
            seconds: seconds as i64,
            nanos,
            fraction_digits,
        })
    }

    /// The common form `1795392000.123` (ten digits, `.`, three digits), eight digits at a
    /// time; `None` for anything else (which the general reading then reads, or refuses).
    fn parse_milliseconds(text: &[u8]) -> Option<Self> {
        let text: &[u8; 14] = text.try_into().ok()?;
        let mut first = [0u8; 8];
        first.copy_from_slice(&text[..8]);
        // The last eight bytes: digits 9 and 10, the `.`, the three fraction digits, padded
        // with two zero digits so that the word is all digits once the `.` is replaced.
        let mut last = [b'0'; 8];
        last[..6].copy_from_slice(&text[8..]);
        if last[2] != b'.' {
            return None;
        }
        last[2] = b'0';
        let (first, last) = (u64::from_le_bytes(first), u64::from_le_bytes(last));
        if !all_digits(first) || !all_digits(last) {
            return None;
        }
        // `last` reads dd0fff00: the whole seconds' last two digits, then the milliseconds.
        let last = eight_digits(last);
        let seconds = eight_digits(first) * 100 + last / 1_000_000;
        let milliseconds = (last / 100 % 10_000) as u32;
        Some(Self {
            // Ten digits are below MAX_EPOCH_SECONDS.
            seconds: seconds as i64,
            nanos: milliseconds * 1_000_000,
            fraction_digits: 3,
        })
    }

    fn parse_date_form(text: &[u8]) -> Result<Self, TimeError> {
        let text = text.strip_suffix(b"Z").unwrap_or(text);
        let (whole, fraction) = split_fraction(text);
        let [
            y1,
            y2,
            y3,
            y4,
            b'-',
            m1,
            m2,
            b'-',
            d1,
            d2,
            b' ' | b'T',
            h1,
            h2,
            b':',
            n1,
            n2,
            b':',
            s1,
            s2,
        ] = whole
        else {
            return Err(TimeError::Malformed);
        };
        let field = |digits: &[u8]| digits_value(digits).ok_or(TimeError::Malformed);
        let year = field(&[*y1, *y2, *y3, *y4])?;
        let [month, day, hour, minute, second] = [
            field(&[*m1, *m2])?,
            field(&[*d1, *d2])?,
            field(&[*h1, *h2])?,
            field(&[*n1, *n2])?,
            field(&[*s1, *s2])?,
        ];
        let (nanos, fraction_digits) = fraction_value(fraction)?;
        // Every value has at most four digits, so the conversions below cannot truncate.
        let (year, month, day) = (year as i64, month as u32, day as u32);
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(TimeError::NoSuchTime);
        }
        Ok(Self {
            seconds: days_from_civil(year, month, day) * SECONDS_PER_DAY
                + (hour * 3600 + minute * 60 + second) as i64,
            nanos,
            fraction_digits,
        })
    }

    /// How many fraction digits the time was written with (0 to 9).
    pub fn fraction_digits(&self) -> u8 {
        self.fraction_digits
    }

    /// Whole seconds since 1970-01-01T00:00:00Z, rounded down (negative before 1970).
    pub fn epoch_seconds(&self) -> i64 {
        self.seconds
    }

    /// Nanoseconds since 1970-01-01T00:00:00Z, exact.
    pub fn epoch_nanos(&self) -> i128 {
        i128::from(self.seconds) * NANOS_PER_SECOND + i128::from(self.nanos)
    }

    /// This time plus `length` (which may be negative), written with the finer of the two
    /// fractions: `end` of a call that started now and lasted `length`.
    pub fn plus(&self, length: &Duration) -> Self {
        let nanos = self.epoch_nanos() + length.nanos;
        Self {
            // Epoch seconds of any i64 time plus a call length stay far inside i64.
            seconds: nanos.div_euclid(NANOS_PER_SECOND) as i64,
            nanos: nanos.rem_euclid(NANOS_PER_SECOND) as u32,
            fraction_digits: self.fraction_digits.max(length.fraction_digits),
        }
    }

    /// The instant alone, as (whole epoch seconds, nanoseconds): ordered as the instants are,
    /// whatever the fraction digits.
    pub fn instant(&self) -> (i64, u32) {
        (self.seconds, self.nanos)
    }

    /// Appends the ISO-8601 UTC text that [`Display`](fmt::Display) writes (at most
    /// [`MAX_ISO_LENGTH`] bytes, all ASCII), without going through `core::fmt`. (An
    /// [`IsoWriter`] does the same faster for many times.)
    pub fn write_iso(&self, out: &mut Vec<u8>) {
        IsoWriter::new().write(self, out);
    }
}

/// Writes times as [`Timestamp::write_iso`] does, remembering the date of the last one: the
/// times of one day (most times of a run) are written without calendar arithmetic.
#[derive(Clone, Debug)]
pub struct IsoWriter {
    /// The day (since 1970-01-01) whose date `date` is; none at first.
    day: Option<i64>,
    /// `YYYY-MM-DD`.
    date: [u8; 10],
}

impl Default for IsoWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl IsoWriter {
    /// A writer that has written no time yet.
    pub fn new() -> Self {
        Self {
            day: None,
            date: *b"0000-00-00",
        }
    }

    /// Appends `time` as ISO-8601 UTC text (see [`Timestamp::write_iso`]).
    pub fn write(&mut self, time: &Timestamp, out: &mut Vec<u8>) {
        let day = time.seconds.div_euclid(SECONDS_PER_DAY);
        if self.day != Some(day) {
            let (year, month, day_of_month) = civil_from_days(day);
            // Years 0 to 9999 (parsing allows no other): four digits.
            let year = year as u32;
            for (at, value) in [
                (0, year / 100),
                (2, year % 100),
                (5, month),
                (8, day_of_month),
            ] {
                self.date[at..at + 2].copy_from_slice(&pair(value));
            }
            self.day = Some(day);
        }
        let of_day = time.seconds.rem_euclid(SECONDS_PER_DAY) as u32;
        let mut text = [0u8; MAX_ISO_LENGTH];
        text[..10].copy_from_slice(&self.date);
        text[10..19].copy_from_slice(b"T00:00:00");
        text[11..13].copy_from_slice(&pair(of_day / 3600));
        text[14..16].copy_from_slice(&pair(of_day / 60 % 60));
        text[17..19].copy_from_slice(&pair(of_day % 60));
        let end = 19 + put_fraction(&mut text[19..], time.nanos, time.fraction_digits);
        text[end] = b'Z';
        extend_by(out, &text, end + 1);
    }
}

/// ISO-8601 UTC with exactly the fraction digits the time was read with:
/// `2026-11-23T10:00:00Z`, `2026-11-23T10:00:00.120Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::with_capacity(MAX_ISO_LENGTH);
        self.write_iso(&mut text);
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

/// The exact, signed time from one [`Timestamp`] to another, written in seconds with as many
/// fraction digits as the more precise of the two times had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    nanos: i128,
    fraction_digits: u8,
}

impl Duration {
    /// No time at all, written `0`.
    pub const ZERO: Self = Self {
        nanos: 0,
        fraction_digits: 0,
    };

    /// `end - start`, exact; negative when `end` is before `start`.
    pub fn between(start: &Timestamp, end: &Timestamp) -> Self {
        Self {
            nanos: end.epoch_nanos() - start.epoch_nanos(),
            fraction_digits: start.fraction_digits.max(end.fraction_digits),
        }
    }

    /// `milliseconds` long, written with 3 fraction digits (`2.040`).
    pub fn from_millis(milliseconds: u64) -> Self {
        Self {
            nanos: i128::from(milliseconds) * 1_000_000,
            fraction_digits: 3,
        }
    }

    /// `seconds` long, written without a fraction.
    pub fn from_seconds(seconds: u64) -> Self {
        Self {
            nanos: i128::from(seconds) * NANOS_PER_SECOND,
            fraction_digits: 0,
        }
    }

    /// The length in nanoseconds (negative when the end is before the start).
    pub fn as_nanos(&self) -> i128 {
        self.nanos
    }

    /// How many fraction digits it is written with (0 to 9).
    pub fn fraction_digits(&self) -> u8 {
        self.fraction_digits
    }

    /// Appends the text that [`Display`](fmt::Display) writes (ASCII), without `core::fmt`.
    pub fn write_seconds(&self, out: &mut Vec<u8>) {
        if self.nanos < 0 {
            out.push(b'-');
        }
        let magnitude = self.nanos.unsigned_abs();
        // Below one second fits a u32. Up to 584 years fit a u64, which is quick; longer ones
        // take the slow way.
        let below_second = match u64::try_from(magnitude) {
            Ok(magnitude) => {
                push_decimal(out, magnitude / 1_000_000_000);
                (magnitude % 1_000_000_000) as u32
            }
            Err(_) => {
                out.extend_from_slice((magnitude / 1_000_000_000).to_string().as_bytes());
                (magnitude % 1_000_000_000) as u32
            }
        };
        let mut fraction = [0u8; MAX_FRACTION_DIGITS + 1];
        let length = put_fraction(&mut fraction, below_second, self.fraction_digits);
        extend_by(out, &fraction, length);
    }
}

/// Seconds: `65` when both times were whole seconds, else a decimal such as `65.500`;
/// a `-` in front when negative.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::with_capacity(48);
        self.write_seconds(&mut text);
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

/// "00" to "99".
static DIGIT_PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut value = 0;
    while value < 100 {
        pairs[2 * value] = b'0' + (value / 10) as u8;
        pairs[2 * value + 1] = b'0' + (value % 10) as u8;
        value += 1;
    }
    pairs
};

/// The two ASCII digits of `value % 100`.
fn pair(value: u32) -> [u8; 2] {
    let at = (value % 100) as usize * 2;
    [DIGIT_PAIRS[at], DIGIT_PAIRS[at + 1]]
}

/// `10^(9 - digits)`: what a fraction of `digits` digits is multiplied by to be nanoseconds.
const NANOS_PER_UNIT: [u32; MAX_FRACTION_DIGITS + 1] = [
    1_000_000_000,
    100_000_000,
    10_000_000,
    1_000_000,
    100_000,
    10_000,
    1_000,
    100,
    10,
    1,
];

/// Appends `value` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while value >= 100 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(&pair((value % 100) as u32));
        value /= 100;
    }
    if value >= 10 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(&pair(value as u32));
    } else {
        at -= 1;
        digits[at] = b'0' + value as u8;
    }
    out.extend_from_slice(&digits[at..]);
}

/// Writes `.` and the first `digits` of the nine digits of `nanos` (below one second) at the
/// start of `text` (at least ten bytes; those past the returned length are scratch); nothing
/// for 0 digits. Returns the length of what was written.
fn put_fraction(text: &mut [u8], nanos: u32, digits: u8) -> usize {
    if digits == 0 {
        return 0;
    }
    let mut all = [b'.'; MAX_FRACTION_DIGITS + 1];
    all[1] = b'0' + (nanos / 100_000_000 % 10) as u8;
    let rest = nanos % 100_000_000;
    for (at, value) in [
        (2, rest / 1_000_000),
        (4, rest / 10_000),
        (6, rest / 100),
        (8, rest),
    ] {
        all[at..at + 2].copy_from_slice(&pair(value));
    }
    // All ten bytes (a copy of fixed size, no call), of which the caller keeps `length`.
    text[..all.len()].copy_from_slice(&all);
    1 + usize::from(digits).min(MAX_FRACTION_DIGITS)
}

/// Appends the first `length` bytes of `bytes` to `out`: all of them are copied (a copy of
/// fixed size, which needs no call), then the rest is cut off again.
fn extend_by<const N: usize>(out: &mut Vec<u8>, bytes: &[u8; N], length: usize) {
    let keep = out.len() + length.min(N);
    out.extend_from_slice(bytes);
    out.truncate(keep);
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1 to 12) of `year`, proleptic Gregorian.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the date (proleptic Gregorian; Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The (year, month, day) of a day counted from 1970-01-01 (the inverse of
/// [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    // Both are small and positive: they fit.
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether each byte of `word` is an ASCII digit.
fn all_digits(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Each byte is 0x30 to 0x39: its high nibble is 3, and adding 6 keeps it so.
    word & (0xf0 * ONES) == 0x30 * ONES
        && word.wrapping_add(0x06 * ONES) & (0xf0 * ONES) == 0x30 * ONES
}

/// The value of the eight ASCII digits of `word` (checked with [`all_digits`]), the first
/// byte (the lowest) the most significant digit.
fn eight_digits(word: u64) -> u64 {
    let mut value = word - 0x3030_3030_3030_3030;
    value = (value * 10 + (value >> 8)) & 0x00ff_00ff_00ff_00ff;
    value = (value * 100 + (value >> 16)) & 0x0000_ffff_0000_ffff;
    (value * 10_000 + (value >> 32)) & 0xffff_ffff
}

/// Splits `text` at its first `.`: the part before, and the part after if there is a `.`.
fn split_fraction(text: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(b'.', text) {
        Some(dot) => (&text[..dot], Some(&text[dot + 1..])),
        None => (text, None),
    }
}

/// The value of 1 to 12 ASCII digits (12 digits stay far from overflow), else `None`.
fn digits_value(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    digits.iter().try_fold(0, |value, &digit| {
        digit
            .is_ascii_digit()
            .then(|| value * 10 + u64::from(digit - b'0'))
    })
}

/// The nanoseconds and digit count of an optional fraction (the digits after the `.`).
fn fraction_value(fraction: Option<&[u8]>) -> Result<(u32, u8), TimeError> {
    let Some(digits) = fraction else {
        return Ok((0, 0));
    };
    let mut value = 0u32;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return Err(TimeError::Malformed);
        }
        value = value.wrapping_mul(10).wrapping_add(u32::from(digit - b'0'));
    }
    match digits.len() {
        0 => Err(TimeError::Malformed),
        // At most nine digits: the value and the count both fit.
        count @ 1..=MAX_FRACTION_DIGITS => Ok((value * NANOS_PER_UNIT[count], count as u8)),
        _ => Err(TimeError::TooPrecise),
    }
}

#[cfg(test)]
mod tests;
