//! End-to-end properties: records spread over files, merged, paired, carried across runs.

use proptest::prelude::*;

use super::hash::content_id;
use super::layout::{Layout, RecordError};
use super::merge::merge_by_time;
use super::pairing::{Counts, FailedInvites, Paired, Pairer, PairingOptions};
use super::state::{self, ConsumedFile};
use super::{CallStatus, Cdr};

/// One line: method, from_tag, to_tag, callid, sip_code, sip_reason, time, extra8.
type Line = Vec<Vec<u8>>;

/// Short enough for calls to age within the generated times.
const SHORT_MAX_AGE_SECONDS: u64 = 6;
/// Long enough for no generated call to age.
const LONG_MAX_AGE_SECONDS: u64 = 100;
const EPOCH: i64 = 1_700_000_000;

fn layout() -> Layout {
    match Layout::kamailio_default(8) {
        Ok(layout) => layout,
        Err(error) => panic!("{error}"),
    }
}

fn options(max_age_seconds: u64) -> PairingOptions {
    PairingOptions {
        max_age_seconds,
        failed_invites: FailedInvites::MakeCdrs,
    }
}

fn line(fields: [&[u8]; 8]) -> Line {
    fields.iter().map(|field| field.to_vec()).collect()
}

/// A time `seconds` after [`EPOCH`] plus `millis`, written in one of the accepted forms.
fn time_text(seconds: i64, millis: Option<u16>, form: u8) -> Vec<u8> {
    let whole = EPOCH + seconds;
    let fraction = millis
        .map(|millis| format!(".{millis:03}"))
        .unwrap_or_default();
    let text = match form % 2 {
        0 => format!("{whole}{fraction}"),
        _ => match chrono::DateTime::from_timestamp(whole, 0) {
            Some(at) => format!("{}{fraction}", at.format("%Y-%m-%d %H:%M:%S")),
            None => panic!("{whole}"),
        },
    };
    text.into_bytes()
}

/// When and how one record of a call is written: seconds from the call's start, millis, the
/// time's form, whether the callee sent it (tags swapped), its extra.
type Moment = (i64, Option<u16>, u8, bool, u8);

fn moment(seconds: std::ops::Range<i64>) -> impl Strategy<Value = Moment> {
    (
        seconds,
        prop_oneof![Just(None), Just(Some(0)), Just(Some(500))],
        any::<u8>(),
        any::<bool>(),
        0u8..3,
    )
}

/// One call's records: its INVITE, re-INVITEs, BYE and duplicate BYEs, plus stray records.
#[derive(Clone, Debug)]
struct Call {
    callid: u8,
    start: i64,
    invite: Moment,
    reinvites: Vec<Moment>,
    bye: Option<Moment>,
    duplicate_byes: Vec<Moment>,
    failed_invite: Option<Moment>,
    ack: Option<Moment>,
    unreadable: bool,
}

fn call() -> impl Strategy<Value = Call> {
    (
        (0u8..5, 0i64..20, moment(0..1)),
        proptest::collection::vec(moment(0..8), 0..3),
        proptest::option::of(moment(-2..10)),
        proptest::collection::vec(moment(0..4), 0..2),
        (
            proptest::option::of(moment(0..10)),
            proptest::option::of(moment(0..10)),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (callid, start, invite),
                reinvites,
                bye,
                duplicate_byes,
                (failed_invite, ack, unreadable),
            )| {
                Call {
                    callid,
                    start,
                    invite,
                    reinvites,
                    bye,
                    duplicate_byes,
                    failed_invite,
                    ack,
                    unreadable,
                }
            },
        )
}

impl Call {
    fn lines(&self) -> Vec<Line> {
        let callid = format!("call-{}", self.callid).into_bytes();
        let record =
            |method: &[u8], code: &[u8], &(offset, millis, form, from_callee, extra): &Moment| {
                let (from, to): (&[u8], &[u8]) = if from_callee {
                    (b"callee", b"caller")
                } else {
                    (b"caller", b"callee")
                };
                let reason: &[u8] = if code == b"200" { b"OK" } else { b"Busy Here" };
                let time = time_text(self.start + offset, millis, form);
                line([
                    method,
                    from,
                    to,
                    &callid,
                    code,
                    reason,
                    &time,
                    &[b'a' + extra],
                ])
            };
        let mut lines = vec![record(b"INVITE", b"200", &self.invite)];
        lines.extend(self.reinvites.iter().map(|m| record(b"INVITE", b"200", m)));
        if let Some(bye) = &self.bye {
            lines.push(record(b"BYE", b"200", bye));
            lines.extend(
                self.duplicate_byes
                    .iter()
                    .map(|m| record(b"BYE", b"200", &(bye.0 + m.0, m.1, m.2, m.3, m.4))),
            );
        }
        lines.extend(
            self.failed_invite
                .iter()
                .map(|m| record(b"INVITE", b"486", m)),
        );
        lines.extend(self.ack.iter().map(|m| record(b"ACK", b"200", m)));
        if self.unreadable {
            lines.push(line([
                b"BYE", b"caller", b"callee", &callid, b"200", b"OK", b"soon", b"",
            ]));
        }
        lines
    }
}

/// What a run gives: CDRs and problems in order, unreadable lines, counts.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    cdrs: Vec<Cdr>,
    problems: Vec<String>,
    unreadable: Vec<RecordError>,
    counts: Counts,
}

impl Outcome {
    /// The same outcome with its lists sorted, to compare runs whose order may differ.
    fn sorted(mut self) -> Self {
        self.cdrs.sort();
        self.problems.sort();
        self
    }
}

/// Merges `files` by time and pairs the stream; `save_after` saves and restores the pairer
/// after that many lines.
fn run(files: Vec<Vec<Line>>, max_age_seconds: u64, save_after: Option<usize>) -> Outcome {
    let layout = layout();
    let stream = merge_by_time(files.into_iter().map(Vec::into_iter), |fields| {
        layout.time(fields).ok()
    });
    let mut pairer = Pairer::new(options(max_age_seconds));
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    let mut counts = Counts::default();
    for (index, fields) in stream.enumerate() {
        if save_after == Some(index) {
            pairer = save_and_restore(&pairer, max_age_seconds, &mut counts);
        }
        match layout.view(&fields) {
            Ok(record) => pairer.push_to(&record, &mut out),
            Err(error) => unreadable.push(error),
        }
    }
    let last = pairer.counts();
    pairer.finish_to(&mut out);
    let mut outcome = Outcome {
        cdrs: Vec::new(),
        problems: Vec::new(),
        unreadable,
        counts: Counts {
            other_methods: counts.other_methods + last.other_methods,
            reinvites: counts.reinvites + last.reinvites,
            ignored_failed_invites: counts.ignored_failed_invites + last.ignored_failed_invites,
            extra_byes: counts.extra_byes + last.extra_byes,
        },
    };
    for output in out {
        match output {
            Paired::Cdr(cdr) => outcome.cdrs.push(cdr),
            Paired::Problem(problem) => outcome.problems.push(problem.to_string()),
        }
    }
    outcome
}

/// Saves `pairer` (adding its counts to `counts`), checks the bytes read back to the same
/// bytes, and gives the restored pairer.
fn save_and_restore(pairer: &Pairer, max_age_seconds: u64, counts: &mut Counts) -> Pairer {
    let files = [ConsumedFile {
        content_id: content_id(b"acc_1.log"),
        hashed_bytes: 4096,
        consumed_bytes: 12345,
    }];
    let saved = state::save(pairer, &files);
    let restored = match state::restore(&saved, options(max_age_seconds)) {
        Ok(restored) => restored,
        Err(error) => panic!("{error}\n{}", saved.escape_ascii()),
    };
    assert_eq!(restored.files, files);
    assert_eq!(state::save(&restored.pairer, &files), saved);
    let seen = pairer.counts();
    counts.other_methods += seen.other_methods;
    counts.reinvites += seen.reinvites;
    counts.ignored_failed_invites += seen.ignored_failed_invites;
    counts.extra_byes += seen.extra_byes;
    restored.pairer
}

/// The lines of `calls` spread over `file_count` files by `spread`, each file in time order.
fn spread_over_files(calls: &[Call], spread: &[usize], file_count: usize) -> Vec<Vec<Line>> {
    let layout = layout();
    let mut files = vec![Vec::new(); file_count];
    let lines = calls.iter().flat_map(Call::lines);
    for (line, choice) in lines.zip(spread.iter().cycle()) {
        files[choice % file_count].push(line);
    }
    for file in &mut files {
        file.sort_by_key(|fields| layout.time(fields).ok().map(|time| time.epoch_nanos()));
    }
    files
}

proptest! {
    #[test]
    fn the_cdrs_do_not_depend_on_which_file_a_record_is_in(
        calls in proptest::collection::vec(call(), 1..5),
        spread in proptest::collection::vec(0usize..4, 1..40),
        file_count in 1usize..5,
    ) {
        let one_file = run(spread_over_files(&calls, &[0], 1), SHORT_MAX_AGE_SECONDS, None);
        let many_files = run(spread_over_files(&calls, &spread, file_count), SHORT_MAX_AGE_SECONDS, None);
        prop_assert_eq!(many_files.sorted(), one_file.sorted());
    }

    #[test]
    fn saving_and_restoring_midway_changes_nothing(
        calls in proptest::collection::vec(call(), 1..5),
        spread in proptest::collection::vec(0usize..4, 1..40),
        file_count in 1usize..5,
        save_after in 0usize..60,
    ) {
        let files = spread_over_files(&calls, &spread, file_count);
        let uninterrupted = run(files.clone(), SHORT_MAX_AGE_SECONDS, None);
        prop_assert_eq!(run(files, SHORT_MAX_AGE_SECONDS, Some(save_after)), uninterrupted);
    }

    #[test]
    fn every_answered_call_gives_exactly_one_cdr_from_its_earliest_invite_to_its_earliest_bye(
        calls in proptest::collection::vec(call(), 1..5),
        spread in proptest::collection::vec(0usize..4, 1..40),
        file_count in 1usize..5,
    ) {
        // Calls with distinct Call-IDs, each short enough never to age.
        let mut calls = calls;
        calls.sort_by_key(|call| call.callid);
        calls.dedup_by_key(|call| call.callid);
        let outcome = run(spread_over_files(&calls, &spread, file_count), LONG_MAX_AGE_SECONDS, None);
        for call in &calls {
            let callid = format!("call-{}", call.callid).into_bytes();
            let cdrs: Vec<&Cdr> = outcome
                .cdrs
                .iter()
                .filter(|cdr| cdr.callid == callid && cdr.status != CallStatus::Failed)
                .collect();
            let Some(bye) = &call.bye else {
                prop_assert_eq!(cdrs.iter().map(|cdr| cdr.status).collect::<Vec<_>>(), [CallStatus::Unterminated]);
                continue;
            };
            prop_assert_eq!(cdrs.len(), 1);
            let earliest_invite = std::iter::once(&call.invite)
                .chain(&call.reinvites)
                .map(|&(offset, millis, ..)| (offset, millis.unwrap_or(0)))
                .min();
            prop_assert_eq!(cdrs[0].status, CallStatus::Answered);
            let seconds = |time: Option<super::Timestamp>| {
                time.map(|time| (time.epoch_seconds() - EPOCH - call.start, (time.epoch_nanos() % 1_000_000_000 / 1_000_000) as u16))
            };
            prop_assert_eq!(seconds(cdrs[0].start), earliest_invite);
            let earliest_bye = std::iter::once((bye.0, bye.1.unwrap_or(0)))
                .chain(call.duplicate_byes.iter().map(|&(offset, millis, ..)| (bye.0 + offset, millis.unwrap_or(0))))
                .min();
            prop_assert_eq!(seconds(cdrs[0].end), earliest_bye);
        }
        // Every BYE after a call's first is counted, none is a problem.
        let extra_byes: usize = calls
            .iter()
            .filter(|call| call.bye.is_some())
            .map(|call| call.duplicate_byes.len())
            .sum();
        prop_assert_eq!(outcome.counts.extra_byes, extra_byes as u64);
        prop_assert_eq!(outcome.problems, Vec::<String>::new());
        let unreadable = calls.iter().filter(|call| call.unreadable).count();
        prop_assert_eq!(outcome.unreadable.len(), unreadable);
    }
}

#[test]
fn unreadable_times_are_reported_and_skipped_while_the_rest_is_paired() {
    let files = vec![
        vec![
            line([
                b"INVITE",
                b"a",
                b"b",
                b"cid",
                b"200",
                b"OK",
                b"1700000000",
                b"x",
            ]),
            line([b"BYE", b"a", b"b", b"cid", b"200", b"OK", b"yesterday", b""]),
        ],
        vec![line([
            b"BYE",
            b"b",
            b"a",
            b"cid",
            b"200",
            b"OK",
            b"1700000005",
            b"",
        ])],
    ];
    let outcome = run(files, SHORT_MAX_AGE_SECONDS, None);
    assert_eq!(outcome.unreadable.len(), 1);
    assert_eq!(
        outcome.unreadable[0].to_string(),
        "time \"yesterday\" cannot be read: not a time (expected epoch seconds or YYYY-MM-DD HH:MM:SS[.fff])"
    );
    assert_eq!(outcome.cdrs.len(), 1);
    assert_eq!(outcome.cdrs[0].status, CallStatus::Answered);
    assert_eq!(
        outcome.cdrs[0]
            .duration
            .map(|duration| duration.to_string()),
        Some("5".to_owned())
    );
}
