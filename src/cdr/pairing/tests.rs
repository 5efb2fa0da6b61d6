//! The pairer's behaviour, record by record.

use super::keys::KeyParts;
use super::waiting::WAITING_SLACK;
use super::*;
use crate::cdr::hash::content_id;
use crate::cdr::layout::Layout;
use crate::cdr::parts::{Parts, push_part};

/// A pairer fed default-layout lines with one extra column (`extra8`).
struct Run {
    layout: Layout,
    pairer: Pairer,
    out: Vec<Paired>,
}

impl Run {
    fn new(failed_invites: FailedInvites, max_age_seconds: u64) -> Self {
        let layout = match Layout::kamailio_default(8) {
            Ok(layout) => layout,
            Err(error) => panic!("{error}"),
        };
        let options = PairingOptions {
            max_age_seconds,
            failed_invites,
        };
        Self {
            layout,
            pairer: Pairer::new(options),
            out: Vec::new(),
        }
    }

    fn day() -> Self {
        Self::new(FailedInvites::Ignore, DEFAULT_MAX_AGE_SECONDS)
    }

    /// Pushes `method|from_tag|to_tag|callid|sip_code|sip_reason|time|extra8`.
    fn push(&mut self, line: &str) {
        let fields: Vec<Vec<u8>> = line.split('|').map(|f| f.as_bytes().to_vec()).collect();
        match self.layout.view(&fields) {
            Ok(record) => self.pairer.push_to(&record, &mut self.out),
            Err(error) => panic!("{line}: {error}"),
        }
    }

    /// What came out so far, as CSV-like rows and problem messages.
    fn taken(&mut self) -> Vec<String> {
        rows(std::mem::take(&mut self.out))
    }

    fn finished(mut self) -> Vec<String> {
        self.pairer.finish_to(&mut self.out);
        rows(self.out)
    }
}

fn rows(out: Vec<Paired>) -> Vec<String> {
    out.into_iter()
        .map(|output| match output {
            Paired::Cdr(cdr) => cdr
                .fields()
                .iter()
                .map(|field| String::from_utf8_lossy(field).into_owned())
                .collect::<Vec<_>>()
                .join(","),
            Paired::Problem(problem) => problem.to_string(),
        })
        .collect()
}

#[test]
fn an_invite_and_its_bye_make_one_answered_cdr() {
    let mut run = Run::day();
    run.push("INVITE|a|b|cid|200|OK|1700000000|alice");
    run.push("BYE|a|b|cid|200|OK|1700000065|bye-extra");
    assert_eq!(
        run.taken(),
        Vec::<String>::new(),
        "made once the stream passes the BYE"
    );
    run.push("ACK|a|b|other|200|OK|1700000066|");
    assert_eq!(
        run.taken(),
        ["cid,a,b,2023-11-14T22:13:20Z,2023-11-14T22:14:25Z,65,200,OK,answered,alice"]
    );
    assert_eq!(run.pairer.counts().other_methods, 1);
    assert_eq!(run.finished(), Vec::<String>::new());
}

#[test]
fn an_opensips_cdr_mode_line_is_one_answered_cdr_without_a_bye() {
    let names = [
        "method",
        "from_tag",
        "to_tag",
        "callid",
        "sip_code",
        "sip_reason",
        "time",
        "setuptime",
        "created",
        "duration",
        "ms_duration",
    ];
    let mut run = Run::day();
    run.layout = match Layout::from_names(&names) {
        Ok(layout) => layout,
        Err(error) => panic!("{error}"),
    };
    run.push("INVITE|a|b|whole|200|OK|1700000000|3|1699999997|3|2040");
    assert_eq!(
        run.taken(),
        [
            "whole,a,b,2023-11-14T22:13:20Z,2023-11-14T22:13:22.040Z,2.040,200,OK,answered,3,1699999997"
        ],
        "made at once: the line is the whole call"
    );
    run.push("INVITE|c|d|request|200|OK|1700000001|1|1700000000|0|0");
    run.push("BYE|d|c|request|200|OK|1700000009|8|1700000000|0|0");
    run.push("ACK|c|d|other|200|OK|1700000010|0|1700000000|0|0");
    assert_eq!(
        run.taken(),
        ["request,c,d,2023-11-14T22:13:21Z,2023-11-14T22:13:29Z,8,200,OK,answered,1,1700000000"],
        "per-request lines of the same table still pair"
    );
    assert_eq!(run.finished(), Vec::<String>::new());
}

#[test]
fn records_prepared_ahead_pair_exactly_as_records_pushed_alone() {
    let long = "c".repeat(200);
    let lines = [
        "INVITE|a|b|cid|200|OK|1700000000|alice".to_owned(),
        "BYE|b|a|lone|200|OK|1700000001|".to_owned(),
        format!("INVITE|zz|aa|{long}|200|OK|1700000002|long"),
        "INVITE|a|b|cid|200|OK|1700000003|reinvite".to_owned(),
        "INVITE|b|a|cid|200|OK|1700000003|same-time".to_owned(),
        "BYE|a|b|cid|200|OK|1700000010|".to_owned(),
        "BYE|b|a|cid|200|OK|1700000011|duplicate".to_owned(),
        "BYE|a|b|cid|200|OK|1700000011|duplicate-too".to_owned(),
        "INVITE|x|y|lone|200|OK|1700000012|late".to_owned(),
        format!("BYE|aa|zz|{long}|200|OK|1700000013|"),
        "INVITE|a|b|cid|486|Busy|1700000014|failed".to_owned(),
        "INVITE|a|b|cid|2xx|OK|1700000014|unreadable".to_owned(),
        "ACK|a|b|cid|200|OK|1700000014|".to_owned(),
        "INVITE|a|b|cid|200|OK|1700000015|remembered".to_owned(),
    ];
    let (mut plain, mut ahead) = (Run::day(), Run::day());
    let mut prepared = PreparedKeys::default();
    let fields: Vec<Vec<Vec<u8>>> = lines
        .iter()
        .map(|line| line.split('|').map(|f| f.as_bytes().to_vec()).collect())
        .collect();
    for line in &fields {
        prepared.push(ahead.layout.view(line).ok().as_ref());
    }
    assert_eq!(prepared.len(), lines.len());
    ahead.pairer.warm(&prepared, 0..lines.len());
    for (index, (line, fields)) in lines.iter().zip(&fields).enumerate() {
        plain.push(line);
        let Ok(record) = ahead.layout.view(fields) else {
            panic!("{line}")
        };
        if let Some(ready) = prepared.get(index) {
            let key = KeyParts::of(&record);
            assert_eq!(ready.hash, key.fast_hash());
            let mut kept = Vec::new();
            key.push(&mut kept);
            assert_eq!(ready.key, kept.as_slice());
            if let Some(id) = ready.id {
                assert_eq!(id, content_id(ready.key), "{line}");
            }
        }
        ahead
            .pairer
            .push_prepared_to(&record, &prepared, index, &mut ahead.out);
    }
    assert_eq!(ahead.pairer.counts(), plain.pairer.counts());
    assert_eq!(ahead.taken(), plain.taken());
    assert_eq!(ahead.finished(), plain.finished());
    prepared.clear();
    assert!(prepared.is_empty());
}

#[test]
fn the_callees_bye_with_swapped_tags_pairs_and_the_callers_tags_stay() {
    let mut run = Run::day();
    run.push("INVITE|caller|callee|cid|200|OK|1700000000.120|x");
    run.push("BYE|callee|caller|cid|200|OK|1700000065.5|y");
    assert_eq!(
        run.finished(),
        [
            "cid,caller,callee,2023-11-14T22:13:20.120Z,2023-11-14T22:14:25.5Z,65.380,200,OK,answered,x"
        ]
    );
}

#[test]
fn a_reinvite_does_not_restart_the_call() {
    let mut run = Run::day();
    run.push("INVITE|zz|aa|cid|200|OK|1700000000|first");
    run.push("INVITE|aa|zz|cid|200|OK|1700000030|reinvite");
    run.push("BYE|zz|aa|cid|200|OK|1700000060|");
    assert_eq!(run.pairer.counts().reinvites, 1);
    assert_eq!(
        run.finished(),
        ["cid,zz,aa,2023-11-14T22:13:20Z,2023-11-14T22:14:20Z,60,200,OK,answered,first"]
    );
}

#[test]
fn an_earlier_invite_read_later_becomes_the_start() {
    let mut run = Run::day();
    run.push("INVITE|b|a|cid|200|OK|1700000010|reinvite");
    run.push("INVITE|a|b|cid|202|Accepted|1700000000|first");
    run.push("BYE|a|b|cid|200|OK|1700000060|");
    assert_eq!(
        run.finished(),
        ["cid,a,b,2023-11-14T22:13:20Z,2023-11-14T22:14:20Z,60,202,Accepted,answered,first"]
    );
}

#[test]
fn an_earlier_invite_read_later_also_ages_from_its_time() {
    let mut run = Run::new(FailedInvites::Ignore, 100);
    run.push("INVITE|a|b|cid|200|OK|1700000050|reinvite");
    run.push("INVITE|a|b|cid|200|OK|1700000000|first");
    run.push("ACK|x|y|z|200|OK|1700000100.5|");
    assert_eq!(
        run.taken(),
        ["cid,a,b,2023-11-14T22:13:20Z,,,200,OK,unterminated,first"]
    );
}

#[test]
fn calls_ended_at_the_same_time_come_out_in_call_order() {
    let mut run = Run::day();
    for callid in ["c", "a", "b"] {
        run.push(&format!("INVITE|x|y|{callid}|200|OK|1700000000|"));
    }
    for callid in ["b", "c", "a"] {
        run.push(&format!("BYE|x|y|{callid}|200|OK|1700000001|"));
    }
    let callids: Vec<String> = run
        .finished()
        .iter()
        .filter_map(|row| row.split(',').next().map(str::to_owned))
        .collect();
    assert_eq!(callids, ["a", "b", "c"]);
}

#[test]
fn a_bye_read_before_its_invite_waits_for_it() {
    let mut run = Run::day();
    run.push("BYE|b|a|cid|200|OK|1700000060|bye");
    run.push("INVITE|a|b|cid|200|OK|1700000000|invite");
    assert_eq!(
        run.finished(),
        ["cid,a,b,2023-11-14T22:13:20Z,2023-11-14T22:14:20Z,60,200,OK,answered,invite"]
    );
}

#[test]
fn crossed_and_repeated_byes_are_counted_not_a_second_cdr_nor_a_problem() {
    let mut run = Run::day();
    run.push("INVITE|a|b|cid|200|OK|1700000000|");
    // Both hung up at once: the caller's BYE and the callee's (tags swapped), same second.
    run.push("BYE|a|b|cid|200|OK|1700000060|");
    run.push("BYE|b|a|cid|200|OK|1700000060|");
    // The callee's BYE logged again after the call's CDR was made (a retransmission).
    run.push("BYE|b|a|cid|200|OK|1700000070|");
    assert_eq!(run.pairer.counts().extra_byes, 2);
    assert_eq!(
        run.finished(),
        ["cid,a,b,2023-11-14T22:13:20Z,2023-11-14T22:14:20Z,60,200,OK,answered,"]
    );
}

#[test]
fn a_crossed_bye_read_first_does_not_move_the_end_past_the_earliest() {
    let mut run = Run::day();
    run.push("INVITE|a|b|cid|200|OK|1700000000|");
    run.push("BYE|b|a|cid|200|OK|1700000060.5|");
    run.push("BYE|a|b|cid|200|OK|1700000060.25|");
    assert_eq!(run.pairer.counts().extra_byes, 1);
    assert_eq!(
        run.finished(),
        ["cid,a,b,2023-11-14T22:13:20Z,2023-11-14T22:14:20.25Z,60.25,200,OK,answered,"]
    );
}

#[test]
fn lone_sides_age_out_only_past_the_maximum_age() {
    let mut run = Run::new(FailedInvites::Ignore, 100);
    run.push("INVITE|a|b|open|200|OK|1700000000|invite-extra");
    run.push("BYE|c|d|orphan|200|OK|1700000000.5|bye-extra");
    run.push("ACK|x|y|z|200|OK|1700000100|");
    assert_eq!(
        run.taken(),
        Vec::<String>::new(),
        "exactly the maximum age is not past it"
    );
    run.push("ACK|x|y|z|200|OK|1700000100.001|");
    assert_eq!(
        run.taken(),
        ["open,a,b,2023-11-14T22:13:20Z,,,200,OK,unterminated,invite-extra"]
    );
    run.push("ACK|x|y|z|200|OK|1700000100.5|");
    assert_eq!(run.taken(), Vec::<String>::new());
    run.push("ACK|x|y|z|200|OK|1700000100.501|");
    assert_eq!(
        run.taken(),
        ["orphan,c,d,,2023-11-14T22:13:20.5Z,,,,unmatched_bye,bye-extra"]
    );
    run.push("BYE|b|a|open|200|OK|1700000102|late");
    assert_eq!(
        run.finished(),
        ["open,b,a,,2023-11-14T22:15:02Z,,,,unmatched_bye,late"],
        "an aged INVITE is gone: its late BYE is alone"
    );
}

#[test]
fn finish_emits_everything_open_whatever_its_age() {
    let mut run = Run::day();
    run.push("INVITE|a|b|open|200|OK|1700000000|");
    run.push("BYE|c|d|orphan|200|OK|1700000001|");
    run.push("INVITE|e|f|ended|200|OK|1700000001|");
    run.push("BYE|e|f|ended|200|OK|1700000002|");
    assert_eq!(run.pairer.open_calls(), 3);
    assert_eq!(
        run.finished(),
        [
            "ended,e,f,2023-11-14T22:13:21Z,2023-11-14T22:13:22Z,1,200,OK,answered,",
            "open,a,b,2023-11-14T22:13:20Z,,,200,OK,unterminated,",
            "orphan,c,d,,2023-11-14T22:13:21Z,,,,unmatched_bye,",
        ]
    );
}

#[test]
fn ended_calls_are_forgotten_past_the_maximum_age() {
    let mut run = Run::new(FailedInvites::Ignore, 100);
    run.push("INVITE|a|b|cid|200|OK|1700000000|");
    run.push("BYE|a|b|cid|200|OK|1700000010|");
    run.push("BYE|a|b|cid|200|OK|1700000110|");
    assert_eq!(run.taken().len(), 1, "the CDR");
    assert_eq!(
        run.pairer.counts().extra_byes,
        1,
        "a repeated BYE within the maximum age"
    );
    run.push("BYE|a|b|cid|200|OK|1700000111|");
    assert_eq!(
        run.finished(),
        ["cid,a,b,,2023-11-14T22:15:11Z,,,,unmatched_bye,"],
        "past it, the call is forgotten and the BYE is alone"
    );
}

#[test]
fn failed_invites_become_failed_cdrs_or_are_counted_as_asked() {
    let lines = [
        "INVITE|a|b|busy|486|Busy Here|1700000000|x",
        "INVITE|a|b|odd|2000|OK|1700000000|",
    ];
    let mut run = Run::new(FailedInvites::MakeCdrs, 100);
    lines.iter().for_each(|line| run.push(line));
    assert_eq!(
        run.finished(),
        [
            "busy,a,b,2023-11-14T22:13:20Z,,0,486,Busy Here,failed,x",
            "INVITE at 2023-11-14T22:13:20Z for call \"odd\" has status code \"2000\", which is not a 3-digit code",
        ]
    );
    let mut run = Run::new(FailedInvites::Ignore, 100);
    lines.iter().for_each(|line| run.push(line));
    assert_eq!(run.pairer.counts().ignored_failed_invites, 1);
    assert_eq!(run.finished().len(), 1);
}

#[test]
fn same_time_invites_give_the_same_cdr_in_either_order() {
    let invites = [
        "INVITE|b|a|cid|200|OK|1700000000|from-callee",
        "INVITE|a|b|cid|200|OK|1700000000|from-caller",
    ];
    let bye = "BYE|a|b|cid|200|OK|1700000000|";
    let mut runs = Vec::new();
    for lines in [[invites[0], bye, invites[1]], [invites[1], bye, invites[0]]] {
        let mut run = Run::day();
        lines.iter().for_each(|line| run.push(line));
        runs.push(run.finished());
    }
    assert_eq!(runs[0], runs[1]);
    // Which one is arbitrary (the smaller side: here the one whose From tag is the
    // greater tag), but it is the same whatever the order.
    assert_eq!(
        runs[0],
        ["cid,b,a,2023-11-14T22:13:20Z,2023-11-14T22:13:20Z,0,200,OK,answered,from-callee"]
    );
}

#[test]
fn an_open_call_and_its_waiting_entry_stay_small() {
    if cfg!(target_pointer_width = "64") {
        assert_eq!(std::mem::size_of::<Call>(), 96);
        assert_eq!(std::mem::size_of::<Waiting>(), 24);
    }
}

#[test]
fn calls_that_stopped_waiting_do_not_pile_up_in_the_queue() {
    // A day's maximum age: no lone side ages, so only compaction keeps the queue short.
    let mut run = Run::day();
    for call in 0..20_000u64 {
        run.push(&format!(
            "INVITE|a|b|c{call}|200|OK|{}|",
            1_700_000_000 + call
        ));
        if call >= 10 {
            run.push(&format!(
                "BYE|b|a|c{}|200|OK|{}|",
                call - 10,
                1_700_000_000 + call
            ));
        }
        let pairer = &run.pairer;
        assert!(pairer.lone <= 11, "{}", pairer.lone);
        assert!(pairer.waiting.len() <= 2 * pairer.lone + WAITING_SLACK);
    }
    assert_eq!(run.taken().len(), 19_989);
    assert!(run.pairer.calls.len() <= 12, "slots are reused");
    assert_eq!(run.finished().len(), 11);
}

#[test]
fn ended_calls_are_remembered_for_a_short_window_only() {
    // One call a second for an hour, each ended a second after its start: with a day's
    // maximum age, only the last ENDED_MEMORY_SECONDS of ended calls are remembered (plus
    // at most a quarter of that between sweeps), not the hour's 3,600.
    let mut run = Run::day();
    let window = ENDED_MEMORY_SECONDS as usize;
    for call in 0..3_600u64 {
        let start = 1_700_000_000 + call;
        run.push(&format!("INVITE|a|b|c{call}|200|OK|{start}|"));
        run.push(&format!("BYE|b|a|c{call}|200|OK|{}|", start + 1));
        assert!(run.pairer.closed.len() <= window + window / 4 + 2);
    }
    assert_eq!(run.pairer.carried_ends().len(), window);
    assert_eq!(run.taken().len(), 3_599);
    assert_eq!(run.pairer.open_calls(), 1);
}

#[test]
fn an_extra_bye_past_the_window_is_a_lone_bye_never_a_second_cdr() {
    let mut run = Run::day();
    run.push("INVITE|a|b|cid|200|OK|1700000000|");
    run.push("BYE|a|b|cid|200|OK|1700000010|");
    run.push("BYE|b|a|cid|200|OK|1700000310|within");
    assert_eq!(
        run.taken(),
        ["cid,a,b,2023-11-14T22:13:20Z,2023-11-14T22:13:30Z,10,200,OK,answered,"]
    );
    assert_eq!(run.pairer.counts().extra_byes, 1, "within the window");
    run.push("BYE|b|a|cid|200|OK|1700000311|past");
    assert_eq!(run.taken(), Vec::<String>::new(), "it waits for an INVITE");
    assert_eq!(
        run.finished(),
        ["cid,b,a,,2023-11-14T22:18:31Z,,,,unmatched_bye,past"]
    );
}

#[test]
fn parts_read_back_as_written() {
    let long = vec![7u8; 300];
    let mut bytes = Vec::new();
    for part in [&b""[..], b"x", &long] {
        push_part(&mut bytes, part);
    }
    assert_eq!(Parts(&bytes).collect::<Vec<_>>(), [&b""[..], b"x", &long]);
}
