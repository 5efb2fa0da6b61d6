//! A finer time than `time`, when a table's column names say its records carry one (Kamailio's
//! acc with `time_mode` 1 or 2): which columns, decided once per layout, and each record's time
//! taken from them when they read as a finer form of the same instant.

use super::FieldsRef;
use crate::cdr::time::Timestamp;

/// The names of the columns that carry a finer time than `time`, by name as acc writes them:
/// `time_exten` (its `time_mode` 1 microseconds, beside the seconds in `time_attr`),
/// `time_hires` (the name `examples/kamailio.cfg` gives acc's `time_attr`) and `time_attr`
/// (acc's default name for its `time_mode` 1 to 4 column). They stay extras.
pub(super) const FINER_TIME_NAMES: [&str; 3] = ["time_exten", "time_hires", "time_attr"];

/// Where a table's records carry a finer time than `time`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FinerTime {
    /// A column of epoch seconds with a fraction (acc's `time_mode` 2: `time_hires`, else
    /// `time_attr`).
    Decimal(usize),
    /// acc's `time_mode` 1: the microseconds (`time_exten`) and the whole seconds (`time_attr`;
    /// without that column, `time`'s own).
    Microseconds {
        micros: usize,
        seconds: Option<usize>,
    },
}

impl FinerTime {
    /// The finer time of a table whose columns have these `names`, if any: a `time_exten`
    /// column is `time_mode` 1; else a `time_hires` column, else a `time_attr` column, holds
    /// decimal seconds (`time_mode` 2; with modes 3 and 4, whose dates are no finer, each
    /// record falls back to `time`).
    pub(super) fn from_names<N: AsRef<[u8]>>(names: &[N]) -> Option<Self> {
        let column = |wanted: &str| {
            names
                .iter()
                .position(|name| name.as_ref() == wanted.as_bytes())
        };
        let [exten, hires, attr] = FINER_TIME_NAMES.map(column);
        match (exten, hires.or(attr)) {
            (Some(micros), _) => Some(Self::Microseconds {
                micros,
                seconds: attr,
            }),
            (None, decimal) => decimal.map(Self::Decimal),
        }
    }

    /// The time of a record whose `time` column reads `time`: the finer time its `fields`
    /// carry when they read as one and agree with `time` ([`Timestamp::refined_by`]), else
    /// `time` itself (an empty field, a date, a value of another second: never a guess).
    /// (Not inlined: tables without a finer time keep their time reading as it was.)
    #[inline(never)]
    pub(super) fn refine(self, fields: FieldsRef<'_>, time: Timestamp) -> Timestamp {
        let finer = match self {
            Self::Decimal(column) => Timestamp::parse_epoch_fraction(fields.get(column)),
            Self::Microseconds { micros, seconds } => {
                let seconds = match seconds {
                    Some(column) => Timestamp::parse_whole_epoch_seconds(fields.get(column)),
                    None => Some(time.epoch_seconds()),
                };
                seconds.and_then(|seconds| Timestamp::with_micros(seconds, fields.get(micros)))
            }
        };
        finer.map_or(time, |finer| time.refined_by(finer))
    }
}
