//! Faults the tests inject to see that a thread of the run that panics ends the run with an
//! error rather than a hang: in debug builds only, when `FLATSTORE_FAULT_INJECTION` names the
//! place. A release build (what is installed) has no such switch.

/// Where a fault can be injected.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// Reading a line (of the main table: the reading thread).
    Reading,
    /// Writing a CDR (the pairing thread, for the main table's CDRs).
    Pairing,
}

/// Panics when the tests asked for a fault at `place` (debug builds only).
#[cfg(debug_assertions)]
pub(super) fn inject(place: Place) {
    use std::sync::OnceLock;
    static ASKED: OnceLock<Option<Place>> = OnceLock::new();
    let asked = ASKED.get_or_init(
        || match std::env::var("FLATSTORE_FAULT_INJECTION").as_deref() {
            Ok("reading") => Some(Place::Reading),
            Ok("pairing") => Some(Place::Pairing),
            _ => None,
        },
    );
    if *asked == Some(place) {
        panic!("a fault injected for a test (FLATSTORE_FAULT_INJECTION)");
    }
}

/// Nothing: a release build injects no fault.
#[cfg(not(debug_assertions))]
pub(super) fn inject(_place: Place) {}
