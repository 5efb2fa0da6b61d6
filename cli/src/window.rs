//! `--since`/`--until`: records chosen by their time column (`cat`, `export`, `cdr`), as
//! against `--modified-since`/`--modified-until`, which choose a directory's files by their
//! modification time.
//!
//! A record's time is read as the accounting run reads it
//! ([`flatstore::cdr::Timestamp::parse`]): integer or decimal seconds since the epoch, or
//! `YYYY-MM-DD HH:MM:SS[.fff]` UTC. The time column is the one named `time` (from `--columns`
//! or the table's `<table>.columns`), else Kamailio's 7th column.

use std::path::Path;

use flatstore::cdr::{TimeWindow, Timestamp};
use flatstore::line::decode::decode_field_lenient;
use flatstore::line::fields::split_fields;

use crate::error::NoTimeColumn;
use crate::exit::{Status, records};
use crate::time;

/// The name of the time column (Kamailio's acc).
pub const TIME_COLUMN: &str = "time";
/// Its position (from 0) in Kamailio's default layout, for a table without column names.
pub const DEFAULT_TIME_COLUMN: usize = 6;

/// Which records to read, by their time, as given on the command line; the rule (since ≤
/// time < until) is the library's [`TimeWindow`].
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Window {
    /// Only records whose time (the column named time, else the 7th) is at or after TIME:
    /// 2026-11-23, 2026-11-23T10:00:00, 2026-11-23 10:00:00.250, 2026-11-23T10:00:00+01:00 or
    /// @SECONDS[.fff] (UTC unless an offset is given).
    #[arg(long, value_name = "TIME", value_parser = time::parse_record_bound)]
    pub since: Option<i128>,
    /// Only records whose time is before TIME (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = time::parse_record_bound)]
    pub until: Option<i128>,
}

impl From<Window> for TimeWindow {
    fn from(window: Window) -> TimeWindow {
        TimeWindow {
            since: window.since,
            until: window.until,
        }
    }
}

/// The position (from 0) of the time column among `names`; Kamailio's 7th column when there are
/// no names. `Err` when names are given and none is `time`.
pub fn time_column(names: &[String], source: &str) -> Result<usize, NoTimeColumn> {
    if names.is_empty() {
        return Ok(DEFAULT_TIME_COLUMN);
    }
    names
        .iter()
        .position(|name| name == TIME_COLUMN)
        .ok_or_else(|| NoTimeColumn {
            column: TIME_COLUMN,
            names_from: source.to_owned(),
        })
}

/// Picks the records of a window out of line after line, counting those whose time cannot be
/// read (they are not picked: a time is never guessed).
#[derive(Debug)]
pub struct Picker {
    window: TimeWindow,
    column: usize,
    field: Vec<u8>,
    unreadable: u64,
    first_unreadable: u64,
}

impl Picker {
    /// Pick by `window`, reading the time at `column` (from 0).
    pub fn new(window: impl Into<TimeWindow>, column: usize) -> Picker {
        Picker {
            window: window.into(),
            column,
            field: Vec::new(),
            unreadable: 0,
            first_unreadable: 0,
        }
    }

    /// True when the record `line` (without its `\n`, encoded as written), line `number` of its
    /// file, is inside the window.
    pub fn wants(&mut self, line: &[u8], number: u64) -> bool {
        let Some(raw) = split_fields(line).nth(self.column) else {
            self.unreadable(number);
            return false;
        };
        self.field.clear();
        decode_field_lenient(raw, &mut self.field);
        match Timestamp::parse(&self.field) {
            Ok(time) => self.window.contains(&time),
            Err(_) => {
                self.unreadable(number);
                false
            }
        }
    }

    fn unreadable(&mut self, number: u64) {
        if self.unreadable == 0 {
            self.first_unreadable = number;
        }
        self.unreadable += 1;
    }

    /// Report the records of `path` whose time could not be read (a problem: exit status 1),
    /// and start counting for the next file.
    pub fn report(&mut self, path: &Path, status: &mut Status) {
        if self.unreadable > 0 {
            status.problem(format_args!(
                "{}: {} whose time (column {}) cannot be read (first: line {}): not selected \
                 by --since/--until",
                path.display(),
                records(self.unreadable),
                self.column + 1,
                self.first_unreadable
            ));
        }
        self.unreadable = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_picked_by_the_time_in_their_time_column() {
        let window = Window {
            since: Some(1_795_392_000 * 1_000_000_000),
            until: Some(1_795_392_060 * 1_000_000_000),
        };
        let mut picker = Picker::new(window, 2);
        assert!(picker.wants(b"INVITE|a|1795392000|x", 1));
        assert!(picker.wants(b"INVITE|a|1795392059.999|x", 2));
        assert!(
            !picker.wants(b"INVITE|a|1795392060|x", 3),
            "until is excluded"
        );
        assert!(!picker.wants(b"INVITE|a|1795391999.5|x", 4));
        assert!(picker.wants(b"INVITE|a|2026-11-23 00:00:30.250|x", 5));
        assert!(!picker.wants(b"INVITE|a|2026-11-23 00:01:00|x", 6));
        assert!(!picker.wants(b"INVITE|a|yesterday|x", 7));
        assert!(!picker.wants(b"INVITE|a", 8));
        assert_eq!((picker.unreadable, picker.first_unreadable), (2, 7));
        assert_eq!(time_column(&[], "x"), Ok(6));
        let names = ["method".to_string(), "time".to_string()];
        assert_eq!(time_column(&names, "x"), Ok(1));
        assert!(time_column(&names[..1], "acc.columns").is_err());
    }
}
