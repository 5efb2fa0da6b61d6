//! Records as rows of `COPY … FROM STDIN`'s text format: one row per line, columns separated
//! by a tab, `\N` for NULL, `\\`, `\t`, `\n` and `\r` escaped. The loader's `source` value
//! leads every row.
//!
//! - Each field is decoded as `export` decodes it (the writer's escapes; any other byte
//!   sequence is kept as written).
//! - **Rows are always UTF-8**, whatever the bytes (see [`escape`]): a value that is not
//!   UTF-8 is stored losslessly as `\xHH` text and counted ([`take_stored_as_hex`]), so no
//!   byte fails a row.
//! - **An empty field is NULL.** flatstore writes NULL and the empty string alike, so the
//!   loader cannot tell them apart; NULL is what every column type takes, and `coalesce(col,
//!   '')` gives the empty string back.
//! - **Times are converted here.** A value of a `timestamptz` (or `timestamp`) column that is
//!   decimal seconds since the epoch (`1795392000`, `1795392000.250`: what Kamailio's acc
//!   writes) becomes `2026-11-23 00:00:00.250+00`; any other value goes as it is, for the
//!   server to read (the session's time zone is UTC) or refuse.

use std::sync::atomic::{AtomicU64, Ordering};

use flatstore::line::decode::decode_field_lenient;
use flatstore::line::fields::split_fields;

/// Values [`escape`] stored as `\xHH` text because they were not UTF-8, since the last
/// [`take_stored_as_hex`]: one count for the process (one run), whichever thread writes rows.
static STORED_AS_HEX: AtomicU64 = AtomicU64::new(0);

/// How many values were stored as `\xHH` text since the last call (see [`escape`]); the count
/// starts again from 0.
pub fn take_stored_as_hex() -> u64 {
    STORED_AS_HEX.swap(0, Ordering::Relaxed)
}

/// What to say on standard error about the values of `what` (a file, a table) stored as
/// `\xHH` text since the last [`take_stored_as_hex`], which it calls; `None` when there were
/// none.
pub fn stored_as_hex_note(what: &dyn std::fmt::Display) -> Option<String> {
    match take_stored_as_hex() {
        0 => None,
        1 => Some(format!(
            "{what}: 1 value was not UTF-8: stored as \\xHH text"
        )),
        n => Some(format!(
            "{what}: {n} values were not UTF-8: stored as \\xHH text"
        )),
    }
}

/// How a column's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// As decoded.
    Plain,
    /// Epoch seconds as a time, with `+00` when `zone` (timestamptz).
    Time {
        /// The column is `timestamptz`.
        zone: bool,
    },
}

/// Turns records into COPY rows; its buffers are reused for every record.
#[derive(Debug)]
pub struct Rows {
    /// The `source` value, escaped, and its tab.
    lead: Vec<u8>,
    columns: Vec<Column>,
    field: Vec<u8>,
    /// The last second rendered (`YYYY-MM-DD HH:MM:SS`): records come in time order.
    last: Option<(u64, [u8; 19])>,
}

impl Rows {
    /// Rows whose first column is `source`, then one per entry of `columns`.
    pub fn new(source: &[u8], columns: Vec<Column>) -> Rows {
        let mut lead = Vec::new();
        escape(source, &mut lead);
        lead.push(b'\t');
        Rows {
            lead,
            columns,
            field: Vec::new(),
            last: None,
        }
    }

    /// The number of columns a record must have.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// Append the row of one record (`line`, without its `\n`) to `out`. `Err(columns)`, with
    /// `out` as it was, when the record does not have [`Rows::width`] columns.
    pub fn push(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<(), usize> {
        let start = out.len();
        out.extend_from_slice(&self.lead);
        // Most records hold no escape, no byte COPY must escape and nothing but UTF-8: their
        // fields are copied as they lie. One pass without early exit (vectorised).
        let plain = !line.iter().fold(false, |any, &b| {
            any | (b == b'%') | (b == b'\\') | (b == b'\t') | (b == b'\r')
        }) && std::str::from_utf8(line).is_ok();
        let mut count = 0;
        for raw in split_fields(line) {
            let Some(&column) = self.columns.get(count) else {
                count += 1;
                continue;
            };
            if count > 0 {
                out.push(b'\t');
            }
            count += 1;
            let value: &[u8] = if plain {
                raw
            } else {
                self.field.clear();
                decode_field_lenient(raw, &mut self.field);
                &self.field
            };
            if value.is_empty() {
                out.extend_from_slice(b"\\N");
                continue;
            }
            if let Column::Time { zone } = column
                && let Some((secs, fraction)) = epoch(value)
                && let Some(text) = render(&mut self.last, secs)
            {
                out.extend_from_slice(&text);
                if !fraction.is_empty() {
                    out.push(b'.');
                    out.extend_from_slice(fraction);
                }
                if zone {
                    out.extend_from_slice(b"+00");
                }
                continue;
            }
            if plain {
                out.extend_from_slice(value);
            } else {
                escape(value, out);
            }
        }
        if count != self.columns.len() {
            out.truncate(start);
            return Err(count);
        }
        out.push(b'\n');
        Ok(())
    }
}

/// `value` as seconds and fraction digits when it is `DIGITS` or `DIGITS.DIGITS`.
fn epoch(value: &[u8]) -> Option<(u64, &[u8])> {
    let (whole, fraction) = match memchr::memchr(b'.', value) {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &[][..]),
    };
    if whole.is_empty()
        || (value.len() > whole.len() && fraction.is_empty())
        || !fraction.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let mut secs: u64 = 0;
    for &b in whole {
        if !b.is_ascii_digit() {
            return None;
        }
        secs = secs.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((secs, fraction))
}

/// `secs` as `YYYY-MM-DD HH:MM:SS` (UTC), from the cache when it is the last second rendered;
/// `None` past the year 9999.
fn render(last: &mut Option<(u64, [u8; 19])>, secs: u64) -> Option<[u8; 19]> {
    if let Some((cached, text)) = last
        && *cached == secs
    {
        return Some(*text);
    }
    let text = civil(secs)?;
    *last = Some((secs, text));
    Some(text)
}

/// `secs` since the epoch as `YYYY-MM-DD HH:MM:SS` (proleptic Gregorian, UTC), by Howard
/// Hinnant's `civil_from_days`: a formatter per record costs more than the rest of the row.
fn civil(secs: u64) -> Option<[u8; 19]> {
    let days = i64::try_from(secs / 86_400).ok()?;
    let of_day = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if year > 9999 {
        return None;
    }
    let mut text = *b"0000-00-00 00:00:00";
    let mut put = |at: usize, width: usize, mut n: u64| {
        for i in (at..at + width).rev() {
            text[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year as u64);
    put(5, 2, month as u64);
    put(8, 2, day as u64);
    put(11, 2, of_day / 3600);
    put(14, 2, of_day / 60 % 60);
    put(17, 2, of_day % 60);
    Some(text)
}

/// `value` in COPY's text format: `\`, tab, newline and carriage return escaped.
///
/// **A value that is not UTF-8** (a raw Latin-1 byte, a `\xHH` blob byte) is stored as text
/// that is: each byte that is not part of a valid UTF-8 sequence becomes `\xHH` (uppercase),
/// and each `\` becomes `\x5C`, so that decoding `\xHH` in the stored text gives the exact
/// bytes back. Such values are counted for [`take_stored_as_hex`]. A value that is UTF-8 is
/// stored as it is (a literal `\x41` in it stays).
pub fn escape(value: &[u8], out: &mut Vec<u8>) {
    if !escape_uncounted(value, out) {
        STORED_AS_HEX.fetch_add(1, Ordering::Relaxed);
    }
}

/// [`escape`] without counting a value stored as `\xHH` text (to compare a value with rows
/// made before); whether `value` was UTF-8.
pub fn escape_uncounted(value: &[u8], out: &mut Vec<u8>) -> bool {
    if value.is_ascii() || std::str::from_utf8(value).is_ok() {
        escape_text(value, out);
        return true;
    }
    for chunk in value.utf8_chunks() {
        for part in chunk.valid().as_bytes().split_inclusive(|&b| b == b'\\') {
            match part.split_last() {
                Some((b'\\', text)) => {
                    escape_text(text, out);
                    hex_byte(b'\\', out);
                }
                _ => escape_text(part, out),
            }
        }
        for &b in chunk.invalid() {
            hex_byte(b, out);
        }
    }
    false
}

/// `byte` as `\xHH` text, in COPY's text format (its `\` doubled).
fn hex_byte(byte: u8, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&[
        b'\\',
        b'\\',
        b'x',
        HEX[usize::from(byte >> 4)],
        HEX[usize::from(byte & 15)],
    ]);
}

/// UTF-8 `value` in COPY's text format.
fn escape_text(value: &[u8], out: &mut Vec<u8>) {
    // Most values hold none of the four: copied whole, after one pass without early exit
    // (vectorised).
    let special = value.iter().fold(false, |any, &b| {
        any | (b == b'\\') | (b == b'\t') | (b == b'\n') | (b == b'\r')
    });
    if !special {
        out.extend_from_slice(value);
        return;
    }
    for &b in value {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rows: &mut Rows, line: &[u8]) -> Result<String, usize> {
        let mut out = b"kept|".to_vec();
        let result = rows.push(line, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        match result {
            Ok(()) => Ok(text["kept|".len()..].to_owned()),
            Err(count) => {
                assert_eq!(text, "kept|", "a refused record leaves nothing");
                Err(count)
            }
        }
    }

    #[test]
    fn fields_are_decoded_escaped_and_empty_is_null() {
        let mut rows = Rows::new(b"proxy\t1", vec![Column::Plain; 4]);
        assert_eq!(
            row(&mut rows, b"INVITE|a%7Cb||tab\\x09and\\x5cslash").as_deref(),
            Ok("proxy\\t1\tINVITE\ta|b\t\\N\ttab\\tand\\\\slash\n")
        );
        assert_eq!(
            row(&mut rows, b"a|b|c|d").as_deref(),
            Ok("proxy\\t1\ta\tb\tc\td\n")
        );
        assert_eq!(
            row(&mut rows, b"100%|cr\rlf|%0A|").as_deref(),
            Ok("proxy\\t1\t100%\tcr\\rlf\t\\n\t\\N\n")
        );
        assert_eq!(row(&mut rows, b"a|b|c"), Err(3));
        assert_eq!(row(&mut rows, b"a|b|c|d|e"), Err(5));
        assert_eq!(row(&mut rows, b""), Err(1));
    }

    /// The issue's poison values: kept as written, and bytes that are not UTF-8 stored as
    /// `\xHH` text (with `\` as `\x5C`), so every row is UTF-8.
    #[test]
    fn rows_are_utf8_whatever_the_bytes() {
        let mut rows = Rows::new(b"p", vec![Column::Plain; 3]);
        take_stored_as_hex();
        assert_eq!(
            row(&mut rows, b"50%ACME|caf\xc3\xa9|a\\b").as_deref(),
            Ok("p\t50%ACME\tcaf\u{e9}\ta\\\\b\n")
        );
        assert_eq!(
            row(&mut rows, b"50\xACME|\\xAC\\x5C|caf\xc3\xa9\xe9\\").as_deref(),
            Ok("p\t50\\\\xACME\t\\\\xAC\\\\x5C\tcaf\u{e9}\\\\xE9\\\\x5C\n")
        );
        assert_eq!(take_stored_as_hex(), 3);
        assert_eq!(take_stored_as_hex(), 0);
    }

    #[test]
    fn epoch_seconds_become_times_and_anything_else_is_left_to_the_server() {
        let mut rows = Rows::new(
            b"p",
            vec![
                Column::Plain,
                Column::Time { zone: true },
                Column::Time { zone: false },
            ],
        );
        assert_eq!(
            row(&mut rows, b"1795392000|1795392000|1795392000.250").as_deref(),
            Ok("p\t1795392000\t2026-11-23 00:00:00+00\t2026-11-23 00:00:00.250\n")
        );
        assert_eq!(
            row(&mut rows, b"x|2026-11-23 10:00:00|-5").as_deref(),
            Ok("p\tx\t2026-11-23 10:00:00\t-5\n")
        );
        assert_eq!(
            row(&mut rows, b"x|1.|99999999999999999999").as_deref(),
            Ok("p\tx\t1.\t99999999999999999999\n")
        );
        assert_eq!(
            row(&mut rows, b"x||0").as_deref(),
            Ok("p\tx\t\\N\t1970-01-01 00:00:00\n")
        );
    }

    #[test]
    fn times_are_rendered_as_chrono_renders_them() {
        let mut seconds = 0x5eed_u64;
        for _ in 0..20_000 {
            seconds = seconds
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let secs = (seconds >> 20) % 253_402_300_800; // up to 9999-12-31T23:59:59
            let chrono = chrono::DateTime::from_timestamp(secs as i64, 0)
                .expect("in range")
                .format("%Y-%m-%d %H:%M:%S")
                .to_string();
            assert_eq!(
                civil(secs).map(|t| t.to_vec()),
                Some(chrono.into_bytes()),
                "{secs}"
            );
        }
        for (secs, text) in [
            (0, "1970-01-01 00:00:00"),
            (951_782_400, "2000-02-29 00:00:00"),
            (253_402_300_799, "9999-12-31 23:59:59"),
        ] {
            assert_eq!(
                civil(secs).map(|t| t.to_vec()),
                Some(text.as_bytes().to_vec())
            );
        }
        assert_eq!(civil(253_402_300_800), None);
        assert_eq!(epoch(b"18446744073709551616"), None);
        assert_eq!(epoch(b"1.5"), Some((1, &b"5"[..])));
        assert_eq!(epoch(b".5"), None);
        assert_eq!(epoch(b"1.5.5"), None);
    }
}
